/* fs_fault_tree.c — the in-memory model behind the fault layer: inodes
 * with current and durable bytes and the log of unsynced changes between
 * them, directories with current and durable entries, path resolution,
 * garbage collection, and what a crash keeps (fs_fault_int.h has the
 * invariants). Callers hold the mutex.
 *
 * Paths: "/a//b/./c" and "a/b/c" name the same file; ".." is refused. Every
 * component but the last must be an existing directory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_fault_int.h"

uint64_t fs_fault_usage(const ff_inode *ino)
{
	if (ino->is_dir)
		return 0;
	return ino->cur.len > ino->reserved ? ino->cur.len : ino->reserved;
}

/* Would growing `ino` to a usage of `new_usage` exceed the capacity? */
bool fs_fault_over_capacity(const sisy_fs_fault *ff, const ff_inode *ino,
			    uint64_t new_usage)
{
	uint64_t old = fs_fault_usage(ino);
	if (ff->capacity == 0 || new_usage <= old)
		return false;
	return ff->used - old + new_usage > ff->capacity;
}

void fs_fault_account(sisy_fs_fault *ff, uint64_t old_usage,
		      const ff_inode *ino)
{
	assert(ff->used >= old_usage);
	ff->used = ff->used - old_usage + fs_fault_usage(ino);
}

static sisy_err path_split(const char *path, ff_path *p)
{
	size_t len = strlen(path);
	if (len >= sizeof p->buf)
		return sisy_errf(SISY_E_TOOBIG,
				 "fs_fault: path too long: %.64s...", path);
	memcpy(p->buf, path, len + 1);
	p->n = 0;
	char *save = NULL;
	for (char *c = strtok_r(p->buf, "/", &save); c != NULL;
	     c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0)
			return sisy_errf(
			    SISY_E_INVAL,
			    "fs_fault: %s: \"..\" is not supported", path);
		if (strlen(c) > FF_NAME_MAX)
			return sisy_errf(SISY_E_TOOBIG,
					 "fs_fault: %s: name too long", path);
		if (p->n == FF_DEPTH_MAX)
			return sisy_errf(SISY_E_TOOBIG,
					 "fs_fault: %s: too deep", path);
		p->comp[p->n++] = c;
	}
	return SISY_OK;
}

ff_dirent *fs_fault_dir_find(ff_dirents *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->v[i].name, name) == 0)
			return &d->v[i];
	return NULL;
}

sisy_err fs_fault_dir_add(ff_dirents *d, const char *name, ff_inode *ino)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 8;
		ff_dirent *v = realloc(d->v, cap * sizeof *v);
		if (v == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "fs_fault: out of memory");
		d->v = v;
		d->cap = cap;
	}
	char *nm = strdup(name);
	if (nm == NULL)
		return sisy_errf(SISY_E_NOMEM, "fs_fault: out of memory");
	d->v[d->n].name = nm;
	d->v[d->n].ino = ino;
	d->n++;
	return SISY_OK;
}

void fs_fault_dir_remove(ff_dirents *d, ff_dirent *e)
{
	assert(e >= d->v && e < d->v + d->n);
	free(e->name);
	*e = d->v[--d->n];
}

void fs_fault_dirents_free(ff_dirents *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	memset(d, 0, sizeof *d);
}

sisy_err fs_fault_dirents_copy(ff_dirents *dst, const ff_dirents *src)
{
	ff_dirents tmp = {0};
	for (size_t i = 0; i < src->n; i++) {
		if (fs_fault_dir_add(&tmp, src->v[i].name, src->v[i].ino) !=
		    SISY_OK) {
			fs_fault_dirents_free(&tmp);
			return SISY_E_NOMEM;
		}
	}
	fs_fault_dirents_free(dst);
	*dst = tmp;
	return SISY_OK;
}

void fs_fault_ops_free(ff_inode *ino)
{
	for (size_t i = 0; i < ino->nops; i++)
		free(ino->ops[i].data);
	free(ino->ops);
	ino->ops = NULL;
	ino->nops = ino->ops_cap = 0;
	ino->op_units = 0;
}

void fs_fault_inode_free(ff_inode *ino)
{
	sisy_buf_free(&ino->cur);
	sisy_buf_free(&ino->dur);
	fs_fault_ops_free(ino);
	fs_fault_dirents_free(&ino->ents);
	fs_fault_dirents_free(&ino->dur_ents);
	free(ino);
}

ff_inode *fs_fault_inode_new(sisy_fs_fault *ff, bool is_dir)
{
	if (ff->ninodes == ff->inodes_cap) {
		size_t cap = ff->inodes_cap ? ff->inodes_cap * 2 : 64;
		ff_inode **v = realloc(ff->inodes, cap * sizeof *v);
		if (v == NULL)
			return NULL;
		ff->inodes = v;
		ff->inodes_cap = cap;
	}
	ff_inode *ino = calloc(1, sizeof *ino);
	if (ino == NULL)
		return NULL;
	ino->is_dir = is_dir;
	ff->inodes[ff->ninodes++] = ino;
	return ino;
}

/* Sets buf's length to n, zero-filling any growth. */
sisy_err fs_fault_buf_resize(sisy_buf *b, size_t n)
{
	if (n > b->len) {
		sisy_err rc = sisy_buf_reserve(b, n - b->len);
		if (rc != SISY_OK)
			return rc;
		memset(b->data + b->len, 0, n - b->len);
	}
	b->len = n;
	return SISY_OK;
}

sisy_err fs_fault_buf_write(sisy_buf *b, uint64_t off, const void *data,
			    size_t n)
{
	if (off + n > b->len) {
		sisy_err rc = fs_fault_buf_resize(b, (size_t)(off + n));
		if (rc != SISY_OK)
			return rc;
	}
	if (n)
		memcpy(b->data + off, data, n);
	return SISY_OK;
}

static sisy_err op_apply(sisy_buf *b, const ff_op *op, size_t n)
{
	if (op->kind == OP_TRUNC)
		return fs_fault_buf_resize(b, (size_t)op->off);
	return fs_fault_buf_write(b, op->off, op->data, n);
}

/* Logs an op; consecutive writes that extend each other share one entry. */
sisy_err fs_fault_op_log(ff_inode *ino, int kind, uint64_t off,
			 const void *data, size_t n)
{
	ff_op *last = ino->nops ? &ino->ops[ino->nops - 1] : NULL;
	if (kind == OP_WRITE && last != NULL && last->kind == OP_WRITE &&
	    last->off + last->len == off) {
		if (n > last->cap - last->len) {
			size_t cap = last->cap * 2;
			if (cap < last->len + n)
				cap = last->len + n;
			uint8_t *d = realloc(last->data, cap);
			if (d == NULL)
				return sisy_errf(SISY_E_NOMEM,
						 "fs_fault: out of memory");
			last->data = d;
			last->cap = cap;
		}
		memcpy(last->data + last->len, data, n);
		last->len += n;
		ino->op_units += n;
		return SISY_OK;
	}
	if (ino->nops == ino->ops_cap) {
		size_t cap = ino->ops_cap ? ino->ops_cap * 2 : 8;
		ff_op *v = realloc(ino->ops, cap * sizeof *v);
		if (v == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "fs_fault: out of memory");
		ino->ops = v;
		ino->ops_cap = cap;
	}
	ff_op op = {.kind = kind, .off = off};
	if (kind == OP_WRITE && n > 0) {
		op.data = malloc(n);
		if (op.data == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "fs_fault: out of memory");
		memcpy(op.data, data, n);
		op.len = op.cap = n;
	}
	ino->ops[ino->nops++] = op;
	ino->op_units += kind == OP_TRUNC ? 1 : n;
	return SISY_OK;
}

/* Makes a file's current bytes durable. */
sisy_err fs_fault_inode_sync(ff_inode *ino)
{
	for (size_t i = 0; i < ino->nops; i++) {
		sisy_err rc =
		    op_apply(&ino->dur, &ino->ops[i], ino->ops[i].len);
		if (rc != SISY_OK)
			return rc;
	}
	fs_fault_ops_free(ino);
	assert(ino->dur.len == ino->cur.len);
	return SISY_OK;
}

/* A file nothing can reach in the current state any more. */
void fs_fault_drop_current(sisy_fs_fault *ff, ff_inode *ino)
{
	if (ino->is_dir || ino->cur_links > 0 || ino->opens > 0)
		return;
	uint64_t old = fs_fault_usage(ino);
	sisy_buf_free(&ino->cur);
	fs_fault_ops_free(ino);
	ino->reserved = 0;
	fs_fault_account(ff, old, ino);
}

void fs_fault_unlink_entry(sisy_fs_fault *ff, ff_inode *parent, ff_dirent *e)
{
	ff_inode *ino = e->ino;
	fs_fault_dir_remove(&parent->ents, e);
	assert(ino->cur_links > 0);
	ino->cur_links--;
	fs_fault_drop_current(ff, ino);
}

static void mark(ff_inode *ino)
{
	if (ino->mark)
		return;
	ino->mark = true;
	if (!ino->is_dir)
		return;
	for (size_t i = 0; i < ino->ents.n; i++)
		mark(ino->ents.v[i].ino);
	for (size_t i = 0; i < ino->dur_ents.n; i++)
		mark(ino->dur_ents.v[i].ino);
}

void fs_fault_gc(sisy_fs_fault *ff)
{
	for (size_t i = 0; i < ff->ninodes; i++)
		ff->inodes[i]->mark = false;
	mark(ff->root);
	for (size_t i = 0; i < ff->ninodes; i++)
		if (ff->inodes[i]->opens > 0)
			mark(ff->inodes[i]);
	size_t keep = 0;
	for (size_t i = 0; i < ff->ninodes; i++) {
		ff_inode *ino = ff->inodes[i];
		if (ino->mark) {
			ff->inodes[keep++] = ino;
			continue;
		}
		ff->used -= fs_fault_usage(ino);
		fs_fault_inode_free(ino);
	}
	ff->ninodes = keep;
}

/* Walks the first `depth` components of p; they must all be directories. */
sisy_err fs_fault_walk_dir(sisy_fs_fault *ff, const ff_path *p, size_t depth,
			   const char *path, ff_inode **out)
{
	ff_inode *d = ff->root;
	for (size_t i = 0; i < depth; i++) {
		ff_dirent *e = fs_fault_dir_find(&d->ents, p->comp[i]);
		if (e == NULL)
			return sisy_errf(SISY_E_NOTFOUND,
					 "fs_fault: %s: directory %s not found",
					 path, p->comp[i]);
		if (!e->ino->is_dir)
			return sisy_errf(SISY_E_INVAL,
					 "fs_fault: %s: %s is not a directory",
					 path, p->comp[i]);
		d = e->ino;
	}
	*out = d;
	return SISY_OK;
}

/* Splits `path` into its parent directory and last name. */
sisy_err fs_fault_resolve_parent(sisy_fs_fault *ff, const char *path,
				 ff_path *p, ff_inode **parent,
				 const char **name)
{
	sisy_err rc = path_split(path, p);
	if (rc != SISY_OK)
		return rc;
	if (p->n == 0)
		return sisy_errf(SISY_E_INVAL,
				 "fs_fault: %s: the root has no parent", path);
	*name = p->comp[p->n - 1];
	return fs_fault_walk_dir(ff, p, p->n - 1, path, parent);
}

/* Finds the inode `path` names (the root for "/"), or NULL. */
sisy_err fs_fault_resolve(sisy_fs_fault *ff, const char *path, ff_inode **out)
{
	ff_path p;
	sisy_err rc = path_split(path, &p);
	if (rc != SISY_OK)
		return rc;
	if (p.n == 0) {
		*out = ff->root;
		return SISY_OK;
	}
	ff_inode *d;
	rc = fs_fault_walk_dir(ff, &p, p.n - 1, path, &d);
	if (rc != SISY_OK)
		return rc;
	ff_dirent *e = fs_fault_dir_find(&d->ents, p.comp[p.n - 1]);
	if (e == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "fs_fault: %s: not found",
				 path);
	*out = e->ino;
	return SISY_OK;
}

/* Copies [from, to) of src into dst (both at the same offsets), zeros
 * where src is shorter. */
static void copy_range(sisy_buf *dst, const sisy_buf *src, size_t from,
		       size_t to)
{
	size_t have = src->len > from ? src->len - from : 0;
	size_t n = to - from < have ? to - from : have;
	if (n)
		memcpy(dst->data + from, src->data + from, n);
	memset(dst->data + from + n, 0, to - from - n);
}

/* A file after a crash of a disk that reorders writes: the old or the new
 * size, and each sector of it old or new at random. */
static void restore_sectors(sisy_fs_fault *ff, ff_inode *ino)
{
	sisy_buf nw = {0}, out = {0};
	if (sisy_buf_set(&nw, ino->dur.data, ino->dur.len) != SISY_OK)
		abort();
	for (size_t i = 0; i < ino->nops; i++)
		if (op_apply(&nw, &ino->ops[i], ino->ops[i].len) != SISY_OK)
			abort();
	const sisy_buf *old = &ino->dur;
	size_t len = nw.len;
	if (old->len != nw.len && sisy_rand_below(&ff->rng, 2))
		len = old->len;
	if (fs_fault_buf_resize(&out, len) != SISY_OK)
		abort();
	for (size_t s = 0; s < len; s += FF_SECTOR) {
		size_t e = s + FF_SECTOR < len ? s + FF_SECTOR : len;
		bool same = e <= old->len && e <= nw.len &&
			    memcmp(old->data + s, nw.data + s, e - s) == 0;
		bool use_new = same || sisy_rand_below(&ff->rng, 2);
		copy_range(&out, use_new ? &nw : old, s, e);
	}
	sisy_buf_free(&nw);
	sisy_buf_free(&ino->cur);
	ino->cur = out;
}

/* A file after the crash: its durable bytes, then a prefix of the ops (or,
 * with torn sectors, a random mix of old and new sectors). */
void fs_fault_restore_file(sisy_fs_fault *ff, ff_inode *ino)
{
	uint64_t keep = 0;
	if (ff->torn && ff->torn_sectors && ino->nops > 0) {
		restore_sectors(ff, ino);
		goto done;
	}
	if (ff->torn && ino->op_units > 0)
		keep = sisy_rand_below(&ff->rng, ino->op_units + 1);
	sisy_buf_free(&ino->cur);
	/* Allocation failures here cannot be reported; a test that runs out
	 * of memory has bigger problems, so treat them as fatal. */
	if (sisy_buf_set(&ino->cur, ino->dur.data, ino->dur.len) != SISY_OK)
		abort();
	for (size_t i = 0; i < ino->nops && keep > 0; i++) {
		const ff_op *op = &ino->ops[i];
		uint64_t units = op->kind == OP_TRUNC ? 1 : op->len;
		size_t n = op->len;
		if (units > keep)
			n = (size_t)keep; /* the torn one: only a prefix */
		if (op_apply(&ino->cur, op, n) != SISY_OK)
			abort();
		keep -= units < keep ? units : keep;
	}
done:
	fs_fault_ops_free(ino);
	/* Whatever the crash kept is what is on the disk now. */
	if (sisy_buf_set(&ino->dur, ino->cur.data, ino->cur.len) != SISY_OK)
		abort();
}

void fs_fault_count_links(ff_inode *d)
{
	for (size_t i = 0; i < d->ents.n; i++) {
		ff_inode *c = d->ents.v[i].ino;
		if (c->cur_links++ == 0 && c->is_dir)
			fs_fault_count_links(c);
	}
}
