/* fs_fault.c — the fault-injecting file system's names (rename, unlink,
 * link, mkdir, rmdir, sync_dir, list, lock), the gate every operation passes
 * (counting mutations, firing an armed crash, applying injected errors),
 * and the control API of fs_fault.h. The model itself is in
 * fs_fault_tree.c, the file operations in fs_fault_file.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_fault_int.h"

sisy_err fs_fault_crashed_err(const char *what, const char *path)
{
	return sisy_errf(SISY_E_CRASHED, "fs_fault: %s %s: simulated crash",
			 what, path ? path : "");
}

static void do_crash(sisy_fs_fault *ff)
{
	ff->crashed = true;
	ff->crash_at = 0;
	ff->epoch++;
}

static bool rule_matches(const ff_rule *r, int kind, const char *p1,
			 const char *p2)
{
	if ((r->mask & kind) == 0)
		return false;
	if (r->substr == NULL)
		return true;
	return (p1 != NULL && strstr(p1, r->substr) != NULL) ||
	       (p2 != NULL && strstr(p2, r->substr) != NULL);
}

/* Counts the operation, fires an armed crash, applies injection rules.
 * Every matching rule advances its own skip/count, even when an earlier rule
 * already decided to fail the operation. */
sisy_err fs_fault_gate(sisy_fs_fault *ff, int kind, const char *what,
		       const char *p1, const char *p2)
{
	if (ff->crashed)
		return fs_fault_crashed_err(what, p1);
	if (kind & SISY_FAULT_MUTATIONS) {
		ff->mutations++;
		if (ff->crash_at != 0 && ff->mutations >= ff->crash_at) {
			do_crash(ff);
			return fs_fault_crashed_err(what, p1);
		}
	}
	sisy_err fail = SISY_OK;
	for (size_t i = 0; i < ff->nrules; i++) {
		ff_rule *r = &ff->rules[i];
		if (!rule_matches(r, kind, p1, p2))
			continue;
		if (r->skip > 0) {
			r->skip--;
			continue;
		}
		if (r->count == 0)
			continue;
		if (r->count != UINT64_MAX)
			r->count--;
		if (fail == SISY_OK)
			fail = r->err;
	}
	if (fail != SISY_OK)
		return sisy_errf(fail, "fs_fault: %s %s: injected %s", what,
				 p1 ? p1 : "", sisy_errname(fail));
	return SISY_OK;
}

sisy_err fs_fault_file_gate(ff_file *f, int kind, const char *what)
{
	if (f->epoch != f->ff->epoch)
		return fs_fault_crashed_err(what, f->path);
	return fs_fault_gate(f->ff, kind, what, f->path, NULL);
}

static sisy_err ff_rename(sisy_fs *fs, const char *from, const char *to)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_path pf, pt;
	ff_inode *dfrom, *dto;
	const char *nfrom = NULL, *nto = NULL;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_gate(ff, SISY_FAULT_RENAME, "rename", from, to);
	if (rc != SISY_OK ||
	    (rc = fs_fault_resolve_parent(ff, from, &pf, &dfrom, &nfrom)) !=
		SISY_OK ||
	    (rc = fs_fault_resolve_parent(ff, to, &pt, &dto, &nto)) != SISY_OK)
		goto out;
	ff_dirent *src = fs_fault_dir_find(&dfrom->ents, nfrom);
	if (src == NULL) {
		rc = sisy_errf(SISY_E_NOTFOUND,
			       "fs_fault: rename %s: not found", from);
		goto out;
	}
	ff_inode *ino = src->ino;
	ff_dirent *dst = fs_fault_dir_find(&dto->ents, nto);
	if (dst != NULL && dst->ino == ino)
		goto out; /* POSIX: renaming a file onto itself does nothing */
	if (dst != NULL && (dst->ino->is_dir != ino->is_dir ||
			    (dst->ino->is_dir && dst->ino->ents.n > 0))) {
		rc = sisy_errf(SISY_E_EXISTS,
			       "fs_fault: rename %s to %s: target exists and "
			       "cannot be replaced",
			       from, to);
		goto out;
	}
	if (ino->is_dir) {
		/* A directory must not move below itself. */
		for (size_t i = 0; i + 1 < pt.n; i++) {
			ff_inode *d;
			if (fs_fault_walk_dir(ff, &pt, i + 1, to, &d) ==
				SISY_OK &&
			    d == ino) {
				rc = sisy_errf(
				    SISY_E_INVAL,
				    "fs_fault: rename %s into itself", from);
				goto out;
			}
		}
	}
	if (dst != NULL) {
		ff_inode *old = dst->ino;
		dst->ino = ino;
		ino->cur_links++;
		assert(old->cur_links > 0);
		old->cur_links--;
		fs_fault_drop_current(ff, old);
	} else if ((rc = fs_fault_dir_add(&dto->ents, nto, ino)) != SISY_OK) {
		goto out;
	} else {
		ino->cur_links++;
	}
	src = fs_fault_dir_find(&dfrom->ents,
				nfrom); /* dir_add may have moved it */
	assert(src != NULL && src->ino == ino);
	fs_fault_unlink_entry(ff, dfrom, src);
	fs_fault_gc(ff);
out:
	fs_fault_unlock(ff);
	return rc;
}

static sisy_err ff_unlink(sisy_fs *fs, const char *path)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_path p;
	ff_inode *parent;
	const char *name = NULL;
	fs_fault_lock(ff);
	sisy_err rc =
	    fs_fault_gate(ff, SISY_FAULT_UNLINK, "unlink", path, NULL);
	if (rc != SISY_OK || (rc = fs_fault_resolve_parent(
				  ff, path, &p, &parent, &name)) != SISY_OK)
		goto out;
	ff_dirent *e = fs_fault_dir_find(&parent->ents, name);
	if (e == NULL) {
		rc = sisy_errf(SISY_E_NOTFOUND,
			       "fs_fault: unlink %s: not found", path);
		goto out;
	}
	if (e->ino->is_dir) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: unlink %s: is a directory", path);
		goto out;
	}
	fs_fault_unlink_entry(ff, parent, e);
	fs_fault_gc(ff);
out:
	fs_fault_unlock(ff);
	return rc;
}

static sisy_err ff_link(sisy_fs *fs, const char *from, const char *to)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_path pt;
	ff_inode *src, *dto;
	const char *nto = NULL;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_gate(ff, SISY_FAULT_LINK, "link", from, to);
	if (rc != SISY_OK ||
	    (rc = fs_fault_resolve(ff, from, &src)) != SISY_OK ||
	    (rc = fs_fault_resolve_parent(ff, to, &pt, &dto, &nto)) != SISY_OK)
		goto out;
	if (src->is_dir) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: link %s: is a directory", from);
		goto out;
	}
	if (fs_fault_dir_find(&dto->ents, nto) != NULL) {
		rc = sisy_errf(SISY_E_EXISTS, "fs_fault: link %s: exists", to);
		goto out;
	}
	if ((rc = fs_fault_dir_add(&dto->ents, nto, src)) != SISY_OK)
		goto out;
	src->cur_links++;
out:
	fs_fault_unlock(ff);
	return rc;
}

static sisy_err ff_mkdir(sisy_fs *fs, const char *path)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_path p;
	ff_inode *parent, *d;
	const char *name = NULL;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_gate(ff, SISY_FAULT_MKDIR, "mkdir", path, NULL);
	if (rc != SISY_OK || (rc = fs_fault_resolve_parent(
				  ff, path, &p, &parent, &name)) != SISY_OK)
		goto out;
	if (fs_fault_dir_find(&parent->ents, name) != NULL) {
		rc = sisy_errf(SISY_E_EXISTS, "fs_fault: mkdir %s: exists",
			       path);
		goto out;
	}
	if ((d = fs_fault_inode_new(ff, true)) == NULL ||
	    (rc = fs_fault_dir_add(&parent->ents, name, d)) != SISY_OK) {
		rc = sisy_errf(SISY_E_NOMEM,
			       "fs_fault: mkdir %s: out of memory", path);
		goto out;
	}
	d->cur_links = 1;
out:
	fs_fault_unlock(ff);
	return rc;
}

static sisy_err ff_rmdir(sisy_fs *fs, const char *path)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_path p;
	ff_inode *parent;
	const char *name = NULL;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_gate(ff, SISY_FAULT_UNLINK, "rmdir", path, NULL);
	if (rc != SISY_OK || (rc = fs_fault_resolve_parent(
				  ff, path, &p, &parent, &name)) != SISY_OK)
		goto out;
	ff_dirent *e = fs_fault_dir_find(&parent->ents, name);
	if (e == NULL) {
		rc = sisy_errf(SISY_E_NOTFOUND, "fs_fault: rmdir %s: not found",
			       path);
	} else if (!e->ino->is_dir) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: rmdir %s: not a directory", path);
	} else if (e->ino->ents.n > 0) {
		rc = sisy_errf(SISY_E_EXISTS, "fs_fault: rmdir %s: not empty",
			       path);
	} else {
		fs_fault_unlink_entry(ff, parent, e);
		fs_fault_gc(ff);
	}
out:
	fs_fault_unlock(ff);
	return rc;
}

static sisy_err ff_sync_dir(sisy_fs *fs, const char *path)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_inode *d;
	fs_fault_lock(ff);
	sisy_err rc =
	    fs_fault_gate(ff, SISY_FAULT_SYNC_DIR, "sync_dir", path, NULL);
	if (rc != SISY_OK || (rc = fs_fault_resolve(ff, path, &d)) != SISY_OK)
		goto out;
	if (!d->is_dir) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: sync_dir %s: not a directory", path);
		goto out;
	}
	if (ff->ignore_dir_sync != NULL && strstr(path, ff->ignore_dir_sync))
		goto out; /* pretend: the test wants the sync left out */
	if ((rc = fs_fault_dirents_copy(&d->dur_ents, &d->ents)) != SISY_OK) {
		rc =
		    sisy_errf(rc, "fs_fault: sync_dir %s: out of memory", path);
		goto out;
	}
	fs_fault_gc(
	    ff); /* entries only the old durable list held may be garbage now */
out:
	fs_fault_unlock(ff);
	return rc;
}

static sisy_err ff_exists(sisy_fs *fs, const char *path, bool *exists)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_inode *ino;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_gate(ff, 0, "exists", path, NULL);
	if (rc == SISY_OK) {
		sisy_err r = fs_fault_resolve(ff, path, &ino);
		if (r == SISY_OK || r == SISY_E_NOTFOUND || r == SISY_E_INVAL)
			*exists = r == SISY_OK;
		else
			rc = r;
	}
	fs_fault_unlock(ff);
	return rc;
}

static sisy_err ff_file_size(sisy_fs *fs, const char *path, uint64_t *size)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_inode *ino;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_gate(ff, 0, "stat", path, NULL);
	if (rc == SISY_OK && (rc = fs_fault_resolve(ff, path, &ino)) == SISY_OK)
		*size = ino->is_dir ? 0 : ino->cur.len;
	fs_fault_unlock(ff);
	return rc;
}

/* Names are copied out first so that fn may call back into the fs. */
static sisy_err ff_list(sisy_fs *fs, const char *dir, sisy_fs_list_fn fn,
			void *ctx)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_inode *d;
	ff_dirents names = {0};
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_gate(ff, 0, "list", dir, NULL);
	if (rc == SISY_OK && (rc = fs_fault_resolve(ff, dir, &d)) == SISY_OK) {
		if (!d->is_dir)
			rc = sisy_errf(SISY_E_INVAL,
				       "fs_fault: list %s: not a directory",
				       dir);
		else if (fs_fault_dirents_copy(&names, &d->ents) != SISY_OK)
			rc = sisy_errf(SISY_E_NOMEM,
				       "fs_fault: list %s: out of memory", dir);
	}
	fs_fault_unlock(ff);
	if (rc == SISY_OK)
		for (size_t i = 0; i < names.n; i++)
			fn(ctx, names.v[i].name);
	fs_fault_dirents_free(&names);
	return rc;
}

static sisy_err ff_lock_path(sisy_fs *fs, const char *path, sisy_lockfile **out)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_lock *lk = calloc(1, sizeof *lk);
	if (lk == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "fs_fault: lock %s: out of memory", path);
	ff_path p;
	ff_inode *parent, *ino;
	const char *name = NULL;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_gate(ff, SISY_FAULT_OPEN, "lock", path, NULL);
	if (rc != SISY_OK || (rc = fs_fault_resolve_parent(
				  ff, path, &p, &parent, &name)) != SISY_OK)
		goto fail;
	ff_dirent *e = fs_fault_dir_find(&parent->ents, name);
	if (e != NULL && e->ino->is_dir) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: lock %s: is a directory", path);
		goto fail;
	}
	if (e == NULL) {
		ino = fs_fault_inode_new(ff, false);
		if (ino == NULL ||
		    fs_fault_dir_add(&parent->ents, name, ino) != SISY_OK) {
			rc =
			    sisy_errf(SISY_E_NOMEM,
				      "fs_fault: lock %s: out of memory", path);
			goto fail;
		}
		ino->cur_links = 1;
	} else {
		ino = e->ino;
	}
	if (ino->locked) {
		rc = sisy_errf(SISY_E_LOCKED,
			       "%s is locked: another process (or handle) is "
			       "using this directory",
			       path);
		goto fail;
	}
	ino->locked = true;
	ino->opens++;
	ff->handles++;
	lk->base.fs = fs;
	lk->ff = ff;
	lk->ino = ino;
	lk->epoch = ff->epoch;
	fs_fault_unlock(ff);
	*out = &lk->base;
	return SISY_OK;
fail:
	fs_fault_unlock(ff);
	free(lk);
	return rc;
}

static sisy_err ff_unlock(sisy_lockfile *l)
{
	ff_lock *lk = (ff_lock *)l;
	sisy_fs_fault *ff = lk->ff;
	fs_fault_lock(ff);
	if (lk->epoch == ff->epoch) { /* a crash already freed the lock */
		assert(lk->ino->locked && lk->ino->opens > 0);
		lk->ino->locked = false;
		lk->ino->opens--;
		fs_fault_drop_current(ff, lk->ino);
		fs_fault_gc(ff);
	}
	assert(ff->handles > 0);
	ff->handles--;
	fs_fault_unlock(ff);
	free(lk);
	return SISY_OK;
}

const sisy_fs_ops fs_fault_ops = {
    .open = fs_fault_file_open,
    .close = fs_fault_file_close,
    .pread = fs_fault_file_pread,
    .pwrite = fs_fault_file_pwrite,
    .append = fs_fault_file_append,
    .sync = fs_fault_file_sync,
    .truncate = fs_fault_file_truncate,
    .size = fs_fault_file_size,
    .preallocate = fs_fault_file_preallocate,
    .map = fs_fault_file_map,
    .unmap = fs_fault_file_unmap,
    .rename = ff_rename,
    .unlink = ff_unlink,
    .link = ff_link,
    .mkdir = ff_mkdir,
    .rmdir = ff_rmdir,
    .sync_dir = ff_sync_dir,
    .exists = ff_exists,
    .file_size = ff_file_size,
    .list = ff_list,
    .lock = ff_lock_path,
    .unlock = ff_unlock,
};

sisy_fs_fault *sisy_fs_fault_new(uint64_t seed)
{
	sisy_fs_fault *ff = calloc(1, sizeof *ff);
	if (ff == NULL)
		return NULL;
	ff->base.ops = &fs_fault_ops;
	pthread_mutex_init(&ff->mu, NULL);
	sisy_rand_seed(&ff->rng, seed);
	ff->torn = true;
	ff->root = fs_fault_inode_new(ff, true);
	if (ff->root == NULL) {
		free(ff->inodes);
		pthread_mutex_destroy(&ff->mu);
		free(ff);
		return NULL;
	}
	ff->root->cur_links = 1;
	return ff;
}

void sisy_fs_fault_free(sisy_fs_fault *ff)
{
	if (ff == NULL)
		return;
	assert(ff->handles == 0 && "close every file and lock first");
	for (size_t i = 0; i < ff->ninodes; i++)
		fs_fault_inode_free(ff->inodes[i]);
	free(ff->inodes);
	sisy_fs_fault_clear_injections(ff);
	free(ff->ignore_dir_sync);
	pthread_mutex_destroy(&ff->mu);
	free(ff);
}

sisy_fs *sisy_fs_fault_fs(sisy_fs_fault *ff)
{
	return &ff->base;
}

void sisy_fs_fault_crash(sisy_fs_fault *ff)
{
	fs_fault_lock(ff);
	if (!ff->crashed)
		do_crash(ff);
	fs_fault_unlock(ff);
}

void sisy_fs_fault_crash_after(sisy_fs_fault *ff, uint64_t n)
{
	assert(n >= 1);
	fs_fault_lock(ff);
	ff->crash_at = ff->mutations + n;
	fs_fault_unlock(ff);
}

bool sisy_fs_fault_crashed(sisy_fs_fault *ff)
{
	fs_fault_lock(ff);
	bool c = ff->crashed;
	fs_fault_unlock(ff);
	return c;
}

void sisy_fs_fault_restart(sisy_fs_fault *ff)
{
	fs_fault_lock(ff);
	if (!ff->crashed)
		do_crash(ff); /* a restart without a crash is a crash */
	for (size_t i = 0; i < ff->ninodes; i++) {
		ff_inode *ino = ff->inodes[i];
		ino->opens = 0; /* every handle died with the process */
		ino->locked = false;
		ino->cur_links = 0;
		if (ino->is_dir) {
			if (fs_fault_dirents_copy(&ino->ents, &ino->dur_ents) !=
			    SISY_OK)
				abort();
		} else {
			fs_fault_restore_file(ff, ino);
		}
	}
	ff->root->cur_links = 1;
	fs_fault_count_links(ff->root);
	fs_fault_gc(ff);
	ff->used = 0;
	for (size_t i = 0; i < ff->ninodes; i++)
		ff->used += fs_fault_usage(ff->inodes[i]);
	ff->crashed = false;
	ff->crash_at = 0;
	fs_fault_unlock(ff);
}

uint64_t sisy_fs_fault_mutations(sisy_fs_fault *ff)
{
	fs_fault_lock(ff);
	uint64_t n = ff->mutations;
	fs_fault_unlock(ff);
	return n;
}

void sisy_fs_fault_set_torn_writes(sisy_fs_fault *ff, bool on)
{
	fs_fault_lock(ff);
	ff->torn = on;
	fs_fault_unlock(ff);
}

void sisy_fs_fault_set_torn_sectors(sisy_fs_fault *ff, bool on)
{
	fs_fault_lock(ff);
	ff->torn_sectors = on;
	fs_fault_unlock(ff);
}

void sisy_fs_fault_ignore_dir_sync(sisy_fs_fault *ff, const char *substr)
{
	char *s = substr != NULL ? strdup(substr) : NULL;
	assert(substr == NULL || s != NULL);
	fs_fault_lock(ff);
	free(ff->ignore_dir_sync);
	ff->ignore_dir_sync = s;
	fs_fault_unlock(ff);
}

void sisy_fs_fault_inject(sisy_fs_fault *ff, int op_mask,
			  const char *path_substr, uint64_t skip,
			  uint64_t count, sisy_err err)
{
	assert(err != SISY_OK);
	char *s = path_substr != NULL ? strdup(path_substr) : NULL;
	fs_fault_lock(ff);
	ff_rule *v = realloc(ff->rules, (ff->nrules + 1) * sizeof *v);
	if (v == NULL || (path_substr != NULL && s == NULL))
		abort(); /* a test harness cannot go on without its rule */
	ff->rules = v;
	ff->rules[ff->nrules++] = (ff_rule){op_mask, s, skip, count, err};
	fs_fault_unlock(ff);
}

void sisy_fs_fault_clear_injections(sisy_fs_fault *ff)
{
	fs_fault_lock(ff);
	for (size_t i = 0; i < ff->nrules; i++)
		free(ff->rules[i].substr);
	free(ff->rules);
	ff->rules = NULL;
	ff->nrules = 0;
	fs_fault_unlock(ff);
}

void sisy_fs_fault_set_capacity(sisy_fs_fault *ff, uint64_t bytes)
{
	fs_fault_lock(ff);
	ff->capacity = bytes;
	fs_fault_unlock(ff);
}

uint64_t sisy_fs_fault_used(sisy_fs_fault *ff)
{
	fs_fault_lock(ff);
	uint64_t u = ff->used;
	fs_fault_unlock(ff);
	return u;
}

sisy_err sisy_fs_fault_corrupt(sisy_fs_fault *ff, const char *path,
			       uint64_t off, uint8_t xor_mask)
{
	ff_inode *ino;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_resolve(ff, path, &ino);
	if (rc != SISY_OK)
		goto out;
	if (ino->is_dir || (off >= ino->cur.len && off >= ino->dur.len)) {
		rc = sisy_errf(SISY_E_RANGE,
			       "fs_fault: corrupt %s: offset %llu out of range",
			       path, (unsigned long long)off);
		goto out;
	}
	if (off < ino->cur.len)
		ino->cur.data[off] ^= xor_mask;
	if (off < ino->dur.len)
		ino->dur.data[off] ^= xor_mask;
	/* Unsynced writes covering the byte carry the flip too, so a later
	 * sync or crash does not quietly undo it. */
	for (size_t i = 0; i < ino->nops; i++) {
		ff_op *op = &ino->ops[i];
		if (op->kind == OP_WRITE && off >= op->off &&
		    off < op->off + op->len)
			op->data[off - op->off] ^= xor_mask;
	}
out:
	fs_fault_unlock(ff);
	return rc;
}
