/* fs_fault.c — the in-memory crash and fault-injection file system
 * (see fs_fault.h for the model the callers code against).
 *
 * State. Everything lives under one mutex in a sisy_fs_fault:
 *   - inodes: a file has `cur` (what reads see) and `dur` (what a crash
 *     keeps) plus `ops`, the log of writes and truncates made since its last
 *     sync. Invariant: cur == apply(dur, ops). A sync applies ops to dur and
 *     empties the log, so it costs the unsynced bytes, not the file size.
 *     A directory has `ents` (current entries) and `dur_ents` (as of its last
 *     sisy_fs_sync_dir); hard links are two entries naming one inode.
 *   - a crash sets `crashed` and bumps `epoch`: every handle remembers the
 *     epoch it was opened in, so handles from before a crash are dead forever.
 *     Restart then sets every directory's ents to dur_ents and every file's
 *     cur to dur plus (with torn writes on) a random prefix of its op log, in
 *     the order the ops were made: a prefix of the bytes written since the
 *     last sync survives, whether they were appends or pwrites in the middle
 *     of the file. A truncate in the log counts as one unit of that prefix.
 *     With torn sectors on, the disk reorders instead: the file gets its old
 *     or its new size, and each 512-byte sector that the unsynced ops
 *     changed is, at random, all old or all new (zeros past an end).
 *   - memory: an inode lives while it is reachable from the root through
 *     current or durable entries, or is held by a live handle or lock; gc()
 *     sweeps the rest (mark and sweep, run after the operations that drop
 *     references). A file that no current name and no live handle reach can
 *     never be read again before a crash, so its current bytes are dropped
 *     at once (the disk gives that space back); a crash restores it from dur.
 *   - space: `used` is the sum over files of max(size, preallocated bytes),
 *     current state; with a capacity set, a write, truncate or preallocate
 *     that would push it over fails with SISY_E_NOSPC and changes nothing.
 *
 * Maps: sisy_file_map() hands out a private copy of the file's bytes taken at
 * map time, valid until unmap or close, even across a crash or later writes.
 * Our callers only map immutable files (SSTables), where a copy and a shared
 * mapping are indistinguishable.
 *
 * A failed sync (injected) makes nothing durable and keeps the unsynced bytes
 * in the op log: what a crash keeps afterwards is still a prefix of them.
 * Callers must treat a failed sync as fatal, as with the real fdatasync.
 *
 * Paths: "/a//b/./c" and "a/b/c" name the same file; ".." is refused. Every
 * component but the last must be an existing directory.
 */
#include "fs_fault.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "rand.h"

#define FF_PATH_MAX  4096
#define FF_DEPTH_MAX 64
#define FF_NAME_MAX  255
#define FF_SECTOR    512

typedef struct ff_inode ff_inode;

typedef struct ff_dirent {
	char *name;
	ff_inode *ino;
} ff_dirent;

typedef struct ff_dirents {
	ff_dirent *v;
	size_t n, cap;
} ff_dirents;

enum { OP_WRITE, OP_TRUNC };

typedef struct ff_op {
	int kind;
	uint64_t off; /* OP_WRITE: where; OP_TRUNC: the new size */
	uint8_t *data;
	size_t len, cap;
} ff_op;

struct ff_inode {
	bool is_dir;
	bool mark;   /* gc */
	bool locked; /* held by a live sisy_lockfile */
	uint32_t cur_links;
	uint32_t opens; /* live handles and locks */
	uint64_t reserved;
	/* file */
	sisy_buf cur, dur;
	ff_op *ops;
	size_t nops, ops_cap;
	uint64_t op_units; /* write bytes + one per truncate */
	/* directory */
	ff_dirents ents, dur_ents;
};

typedef struct ff_rule {
	int mask;
	char *substr;
	uint64_t skip, count;
	sisy_err err;
} ff_rule;

struct sisy_fs_fault {
	sisy_fs base;
	pthread_mutex_t mu;
	sisy_rand rng;
	ff_inode *root;
	ff_inode **inodes;
	size_t ninodes, inodes_cap;
	uint64_t epoch;
	bool crashed;
	uint64_t crash_at; /* 0: not armed; else the mutation number to fail */
	uint64_t mutations;
	bool torn;
	bool torn_sectors;
	char *ignore_dir_sync;
	ff_rule *rules;
	size_t nrules;
	uint64_t capacity, used;
	size_t handles; /* open sisy_file and lock handles, live or dead */
};

typedef struct ff_file {
	sisy_file base;
	sisy_fs_fault *ff;
	ff_inode *ino;
	int flags;
	uint64_t epoch;
	char *path;
	uint8_t *map;
	size_t map_len;
} ff_file;

typedef struct ff_lock {
	sisy_lockfile base;
	sisy_fs_fault *ff;
	ff_inode *ino;
	uint64_t epoch;
} ff_lock;

typedef struct ff_path {
	char buf[FF_PATH_MAX];
	const char *comp[FF_DEPTH_MAX];
	size_t n;
} ff_path;

static const sisy_fs_ops fault_ops;

/* --- small helpers -------------------------------------------------------- */

static sisy_fs_fault *ff_of(sisy_fs *fs)
{
	assert(fs->ops == &fault_ops);
	return (sisy_fs_fault *)fs;
}

static void lock_ff(sisy_fs_fault *ff)
{
	pthread_mutex_lock(&ff->mu);
}

static void unlock_ff(sisy_fs_fault *ff)
{
	pthread_mutex_unlock(&ff->mu);
}

static uint64_t usage(const ff_inode *ino)
{
	if (ino->is_dir)
		return 0;
	return ino->cur.len > ino->reserved ? ino->cur.len : ino->reserved;
}

/* Would growing `ino` to a usage of `new_usage` exceed the capacity? */
static bool over_capacity(const sisy_fs_fault *ff, const ff_inode *ino,
			  uint64_t new_usage)
{
	uint64_t old = usage(ino);
	if (ff->capacity == 0 || new_usage <= old)
		return false;
	return ff->used - old + new_usage > ff->capacity;
}

static void account(sisy_fs_fault *ff, uint64_t old_usage, const ff_inode *ino)
{
	assert(ff->used >= old_usage);
	ff->used = ff->used - old_usage + usage(ino);
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

static ff_dirent *dir_find(ff_dirents *d, const char *name)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->v[i].name, name) == 0)
			return &d->v[i];
	return NULL;
}

static sisy_err dir_add(ff_dirents *d, const char *name, ff_inode *ino)
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

static void dir_remove(ff_dirents *d, ff_dirent *e)
{
	assert(e >= d->v && e < d->v + d->n);
	free(e->name);
	*e = d->v[--d->n];
}

static void dirents_free(ff_dirents *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].name);
	free(d->v);
	memset(d, 0, sizeof *d);
}

static sisy_err dirents_copy(ff_dirents *dst, const ff_dirents *src)
{
	ff_dirents tmp = {0};
	for (size_t i = 0; i < src->n; i++) {
		if (dir_add(&tmp, src->v[i].name, src->v[i].ino) != SISY_OK) {
			dirents_free(&tmp);
			return SISY_E_NOMEM;
		}
	}
	dirents_free(dst);
	*dst = tmp;
	return SISY_OK;
}

static void ops_free(ff_inode *ino)
{
	for (size_t i = 0; i < ino->nops; i++)
		free(ino->ops[i].data);
	free(ino->ops);
	ino->ops = NULL;
	ino->nops = ino->ops_cap = 0;
	ino->op_units = 0;
}

static void inode_free(ff_inode *ino)
{
	sisy_buf_free(&ino->cur);
	sisy_buf_free(&ino->dur);
	ops_free(ino);
	dirents_free(&ino->ents);
	dirents_free(&ino->dur_ents);
	free(ino);
}

static ff_inode *inode_new(sisy_fs_fault *ff, bool is_dir)
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
static sisy_err buf_resize(sisy_buf *b, size_t n)
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

static sisy_err buf_write(sisy_buf *b, uint64_t off, const void *data, size_t n)
{
	if (off + n > b->len) {
		sisy_err rc = buf_resize(b, (size_t)(off + n));
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
		return buf_resize(b, (size_t)op->off);
	return buf_write(b, op->off, op->data, n);
}

/* Logs an op; consecutive writes that extend each other share one entry. */
static sisy_err op_log(ff_inode *ino, int kind, uint64_t off, const void *data,
		       size_t n)
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
static sisy_err inode_sync(ff_inode *ino)
{
	for (size_t i = 0; i < ino->nops; i++) {
		sisy_err rc =
		    op_apply(&ino->dur, &ino->ops[i], ino->ops[i].len);
		if (rc != SISY_OK)
			return rc;
	}
	ops_free(ino);
	assert(ino->dur.len == ino->cur.len);
	return SISY_OK;
}

/* A file nothing can reach in the current state any more. */
static void inode_drop_current(sisy_fs_fault *ff, ff_inode *ino)
{
	if (ino->is_dir || ino->cur_links > 0 || ino->opens > 0)
		return;
	uint64_t old = usage(ino);
	sisy_buf_free(&ino->cur);
	ops_free(ino);
	ino->reserved = 0;
	account(ff, old, ino);
}

/* --- garbage collection --------------------------------------------------- */

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

static void gc(sisy_fs_fault *ff)
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
		ff->used -= usage(ino);
		inode_free(ino);
	}
	ff->ninodes = keep;
}

/* --- the gate every operation passes -------------------------------------- */

static sisy_err crashed_err(const char *what, const char *path)
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
static sisy_err gate(sisy_fs_fault *ff, int kind, const char *what,
		     const char *p1, const char *p2)
{
	if (ff->crashed)
		return crashed_err(what, p1);
	if (kind & SISY_FAULT_MUTATIONS) {
		ff->mutations++;
		if (ff->crash_at != 0 && ff->mutations >= ff->crash_at) {
			do_crash(ff);
			return crashed_err(what, p1);
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

static sisy_err file_gate(ff_file *f, int kind, const char *what)
{
	if (f->epoch != f->ff->epoch)
		return crashed_err(what, f->path);
	return gate(f->ff, kind, what, f->path, NULL);
}

/* --- path resolution ------------------------------------------------------ */

/* Walks the first `depth` components of p; they must all be directories. */
static sisy_err walk_dir(sisy_fs_fault *ff, const ff_path *p, size_t depth,
			 const char *path, ff_inode **out)
{
	ff_inode *d = ff->root;
	for (size_t i = 0; i < depth; i++) {
		ff_dirent *e = dir_find(&d->ents, p->comp[i]);
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
static sisy_err resolve_parent(sisy_fs_fault *ff, const char *path, ff_path *p,
			       ff_inode **parent, const char **name)
{
	sisy_err rc = path_split(path, p);
	if (rc != SISY_OK)
		return rc;
	if (p->n == 0)
		return sisy_errf(SISY_E_INVAL,
				 "fs_fault: %s: the root has no parent", path);
	*name = p->comp[p->n - 1];
	return walk_dir(ff, p, p->n - 1, path, parent);
}

/* Finds the inode `path` names (the root for "/"), or NULL. */
static sisy_err resolve(sisy_fs_fault *ff, const char *path, ff_inode **out)
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
	rc = walk_dir(ff, &p, p.n - 1, path, &d);
	if (rc != SISY_OK)
		return rc;
	ff_dirent *e = dir_find(&d->ents, p.comp[p.n - 1]);
	if (e == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "fs_fault: %s: not found",
				 path);
	*out = e->ino;
	return SISY_OK;
}

/* --- files ---------------------------------------------------------------- */

static sisy_err ff_open(sisy_fs *fs, const char *path, int flags,
			sisy_file **out)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_file *f = calloc(1, sizeof *f);
	char *pcopy = strdup(path);
	if (f == NULL || pcopy == NULL) {
		free(f);
		free(pcopy);
		return sisy_errf(SISY_E_NOMEM,
				 "fs_fault: open %s: out of memory", path);
	}
	lock_ff(ff);
	bool mutates = (flags & (SISY_O_CREATE | SISY_O_TRUNC)) != 0;
	sisy_err rc =
	    gate(ff, mutates ? SISY_FAULT_OPEN : 0, "open", path, NULL);
	ff_path p;
	ff_inode *parent, *ino;
	const char *name = NULL;
	if (rc != SISY_OK)
		goto fail;
	if ((rc = resolve_parent(ff, path, &p, &parent, &name)) != SISY_OK)
		goto fail;
	ff_dirent *e = dir_find(&parent->ents, name);
	if (e != NULL && (flags & SISY_O_CREATE) && (flags & SISY_O_EXCL)) {
		rc =
		    sisy_errf(SISY_E_EXISTS, "fs_fault: open %s: exists", path);
		goto fail;
	}
	if (e == NULL && !(flags & SISY_O_CREATE)) {
		rc = sisy_errf(SISY_E_NOTFOUND, "fs_fault: open %s: not found",
			       path);
		goto fail;
	}
	if (e != NULL && e->ino->is_dir) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: open %s: is a directory", path);
		goto fail;
	}
	if ((flags & SISY_O_TRUNC) && !(flags & SISY_O_WRITE)) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: open %s: TRUNC needs WRITE", path);
		goto fail;
	}
	if (e == NULL) {
		ino = inode_new(ff, false);
		if (ino == NULL ||
		    dir_add(&parent->ents, name, ino) != SISY_OK) {
			rc =
			    sisy_errf(SISY_E_NOMEM,
				      "fs_fault: open %s: out of memory", path);
			goto fail; /* an orphan inode is swept by the next gc */
		}
		ino->cur_links = 1;
	} else {
		ino = e->ino;
	}
	if ((flags & SISY_O_TRUNC) && ino->cur.len > 0) {
		uint64_t old = usage(ino);
		if ((rc = op_log(ino, OP_TRUNC, 0, NULL, 0)) != SISY_OK)
			goto fail;
		ino->cur.len = 0;
		account(ff, old, ino);
	}
	ino->opens++;
	ff->handles++;
	f->base.fs = fs;
	f->ff = ff;
	f->ino = ino;
	f->flags = flags;
	f->epoch = ff->epoch;
	f->path = pcopy;
	unlock_ff(ff);
	*out = &f->base;
	return SISY_OK;
fail:
	unlock_ff(ff);
	free(f);
	free(pcopy);
	return rc;
}

static sisy_err ff_close(sisy_file *file)
{
	ff_file *f = (ff_file *)file;
	sisy_fs_fault *ff = f->ff;
	sisy_err rc = SISY_OK;
	lock_ff(ff);
	if (f->epoch != ff->epoch) {
		rc = crashed_err("close", f->path);
	} else {
		assert(f->ino->opens > 0);
		f->ino->opens--;
		inode_drop_current(ff, f->ino);
		gc(ff);
		if (ff->crashed)
			rc = crashed_err("close", f->path);
	}
	assert(ff->handles > 0);
	ff->handles--;
	unlock_ff(ff);
	free(f->map);
	free(f->path);
	free(f);
	return rc;
}

static sisy_err ff_pread(sisy_file *file, void *buf, size_t n, uint64_t off,
			 size_t *got)
{
	ff_file *f = (ff_file *)file;
	lock_ff(f->ff);
	sisy_err rc = file_gate(f, SISY_FAULT_READ, "read");
	if (rc == SISY_OK) {
		const sisy_buf *b = &f->ino->cur;
		size_t k = 0;
		if (off < b->len)
			k = b->len - off < n ? (size_t)(b->len - off) : n;
		if (k)
			memcpy(buf, b->data + off, k);
		*got = k;
	}
	unlock_ff(f->ff);
	return rc;
}

static sisy_err write_at(ff_file *f, const void *buf, size_t n, uint64_t off,
			 const char *what)
{
	sisy_fs_fault *ff = f->ff;
	ff_inode *ino = f->ino;
	sisy_err rc = file_gate(f, SISY_FAULT_WRITE, what);
	if (rc != SISY_OK)
		return rc;
	if (!(f->flags & SISY_O_WRITE))
		return sisy_errf(SISY_E_INVAL,
				 "fs_fault: %s %s: file opened read-only", what,
				 f->path);
	if (off > SIZE_MAX / 2 || n > SIZE_MAX / 2 - off)
		return sisy_errf(SISY_E_TOOBIG, "fs_fault: %s %s: too large",
				 what, f->path);
	uint64_t end = off + n;
	uint64_t new_usage = end > ino->cur.len ? end : ino->cur.len;
	if (new_usage < ino->reserved)
		new_usage = ino->reserved;
	if (over_capacity(ff, ino, new_usage))
		return sisy_errf(
		    SISY_E_NOSPC,
		    "fs_fault: %s %s: no space left (capacity %llu "
		    "bytes)",
		    what, f->path, (unsigned long long)ff->capacity);
	uint64_t old = usage(ino);
	if ((rc = sisy_buf_reserve(
		 &ino->cur, end > ino->cur.len ? end - ino->cur.len : 0)) !=
		SISY_OK ||
	    (rc = op_log(ino, OP_WRITE, off, buf, n)) != SISY_OK)
		return rc;
	rc = buf_write(&ino->cur, off, buf, n); /* cannot fail: reserved */
	assert(rc == SISY_OK);
	account(ff, old, ino);
	return SISY_OK;
}

static sisy_err ff_pwrite(sisy_file *file, const void *buf, size_t n,
			  uint64_t off)
{
	ff_file *f = (ff_file *)file;
	lock_ff(f->ff);
	sisy_err rc = write_at(f, buf, n, off, "write");
	unlock_ff(f->ff);
	return rc;
}

static sisy_err ff_append(sisy_file *file, const void *buf, size_t n)
{
	ff_file *f = (ff_file *)file;
	lock_ff(f->ff);
	sisy_err rc = write_at(f, buf, n, f->ino->cur.len, "append");
	unlock_ff(f->ff);
	return rc;
}

static sisy_err ff_sync(sisy_file *file)
{
	ff_file *f = (ff_file *)file;
	lock_ff(f->ff);
	sisy_err rc = file_gate(f, SISY_FAULT_SYNC, "sync");
	if (rc == SISY_OK)
		rc = inode_sync(f->ino);
	unlock_ff(f->ff);
	return rc;
}

static sisy_err ff_truncate(sisy_file *file, uint64_t size)
{
	ff_file *f = (ff_file *)file;
	sisy_fs_fault *ff = f->ff;
	ff_inode *ino = f->ino;
	lock_ff(ff);
	sisy_err rc = file_gate(f, SISY_FAULT_TRUNCATE, "truncate");
	if (rc != SISY_OK)
		goto out;
	if (!(f->flags & SISY_O_WRITE)) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: truncate %s: file opened read-only",
			       f->path);
		goto out;
	}
	if (size > SIZE_MAX / 2) {
		rc = sisy_errf(SISY_E_TOOBIG,
			       "fs_fault: truncate %s: too large", f->path);
		goto out;
	}
	uint64_t new_usage = size > ino->reserved ? size : ino->reserved;
	if (over_capacity(ff, ino, new_usage)) {
		rc = sisy_errf(SISY_E_NOSPC,
			       "fs_fault: truncate %s: no space left", f->path);
		goto out;
	}
	uint64_t old = usage(ino);
	if ((rc = op_log(ino, OP_TRUNC, size, NULL, 0)) != SISY_OK)
		goto out;
	if ((rc = buf_resize(&ino->cur, (size_t)size)) != SISY_OK)
		goto out;
	account(ff, old, ino);
out:
	unlock_ff(ff);
	return rc;
}

static sisy_err ff_size(sisy_file *file, uint64_t *size)
{
	ff_file *f = (ff_file *)file;
	lock_ff(f->ff);
	sisy_err rc = file_gate(f, 0, "size");
	if (rc == SISY_OK)
		*size = f->ino->cur.len;
	unlock_ff(f->ff);
	return rc;
}

/* Bookkeeping only: reserves space against the capacity, like fallocate
 * with KEEP_SIZE; the visible size does not change. */
static sisy_err ff_preallocate(sisy_file *file, uint64_t size)
{
	ff_file *f = (ff_file *)file;
	sisy_fs_fault *ff = f->ff;
	lock_ff(ff);
	sisy_err rc = file_gate(f, SISY_FAULT_TRUNCATE, "preallocate");
	if (rc == SISY_OK && size > f->ino->reserved) {
		uint64_t new_usage =
		    size > f->ino->cur.len ? size : f->ino->cur.len;
		if (over_capacity(ff, f->ino, new_usage)) {
			rc = sisy_errf(
			    SISY_E_NOSPC,
			    "fs_fault: preallocate %s: no space left", f->path);
		} else {
			uint64_t old = usage(f->ino);
			f->ino->reserved = size;
			account(ff, old, f->ino);
		}
	}
	unlock_ff(ff);
	return rc;
}

static sisy_err ff_map(sisy_file *file, const uint8_t **data, size_t *len)
{
	ff_file *f = (ff_file *)file;
	lock_ff(f->ff);
	sisy_err rc = file_gate(f, SISY_FAULT_READ, "map");
	if (rc == SISY_OK && f->map == NULL) {
		const sisy_buf *b = &f->ino->cur;
		if (b->len == 0) {
			rc = sisy_errf(SISY_E_NOTSUP,
				       "fs_fault: map %s: empty file", f->path);
		} else if ((f->map = malloc(b->len)) == NULL) {
			rc = sisy_errf(SISY_E_NOMEM,
				       "fs_fault: map %s: out of memory",
				       f->path);
		} else {
			memcpy(f->map, b->data, b->len);
			f->map_len = b->len;
		}
	}
	if (rc == SISY_OK) {
		*data = f->map;
		*len = f->map_len;
	}
	unlock_ff(f->ff);
	return rc;
}

static sisy_err ff_unmap(sisy_file *file)
{
	ff_file *f = (ff_file *)file;
	free(f->map);
	f->map = NULL;
	f->map_len = 0;
	return SISY_OK;
}

/* --- names ---------------------------------------------------------------- */

static void unlink_entry(sisy_fs_fault *ff, ff_inode *parent, ff_dirent *e)
{
	ff_inode *ino = e->ino;
	dir_remove(&parent->ents, e);
	assert(ino->cur_links > 0);
	ino->cur_links--;
	inode_drop_current(ff, ino);
}

static sisy_err ff_rename(sisy_fs *fs, const char *from, const char *to)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_path pf, pt;
	ff_inode *dfrom, *dto;
	const char *nfrom = NULL, *nto = NULL;
	lock_ff(ff);
	sisy_err rc = gate(ff, SISY_FAULT_RENAME, "rename", from, to);
	if (rc != SISY_OK ||
	    (rc = resolve_parent(ff, from, &pf, &dfrom, &nfrom)) != SISY_OK ||
	    (rc = resolve_parent(ff, to, &pt, &dto, &nto)) != SISY_OK)
		goto out;
	ff_dirent *src = dir_find(&dfrom->ents, nfrom);
	if (src == NULL) {
		rc = sisy_errf(SISY_E_NOTFOUND,
			       "fs_fault: rename %s: not found", from);
		goto out;
	}
	ff_inode *ino = src->ino;
	ff_dirent *dst = dir_find(&dto->ents, nto);
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
			if (walk_dir(ff, &pt, i + 1, to, &d) == SISY_OK &&
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
		inode_drop_current(ff, old);
	} else if ((rc = dir_add(&dto->ents, nto, ino)) != SISY_OK) {
		goto out;
	} else {
		ino->cur_links++;
	}
	src = dir_find(&dfrom->ents, nfrom); /* dir_add may have moved it */
	assert(src != NULL && src->ino == ino);
	unlink_entry(ff, dfrom, src);
	gc(ff);
out:
	unlock_ff(ff);
	return rc;
}

static sisy_err ff_unlink(sisy_fs *fs, const char *path)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_path p;
	ff_inode *parent;
	const char *name = NULL;
	lock_ff(ff);
	sisy_err rc = gate(ff, SISY_FAULT_UNLINK, "unlink", path, NULL);
	if (rc != SISY_OK ||
	    (rc = resolve_parent(ff, path, &p, &parent, &name)) != SISY_OK)
		goto out;
	ff_dirent *e = dir_find(&parent->ents, name);
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
	unlink_entry(ff, parent, e);
	gc(ff);
out:
	unlock_ff(ff);
	return rc;
}

static sisy_err ff_link(sisy_fs *fs, const char *from, const char *to)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_path pt;
	ff_inode *src, *dto;
	const char *nto = NULL;
	lock_ff(ff);
	sisy_err rc = gate(ff, SISY_FAULT_LINK, "link", from, to);
	if (rc != SISY_OK || (rc = resolve(ff, from, &src)) != SISY_OK ||
	    (rc = resolve_parent(ff, to, &pt, &dto, &nto)) != SISY_OK)
		goto out;
	if (src->is_dir) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: link %s: is a directory", from);
		goto out;
	}
	if (dir_find(&dto->ents, nto) != NULL) {
		rc = sisy_errf(SISY_E_EXISTS, "fs_fault: link %s: exists", to);
		goto out;
	}
	if ((rc = dir_add(&dto->ents, nto, src)) != SISY_OK)
		goto out;
	src->cur_links++;
out:
	unlock_ff(ff);
	return rc;
}

static sisy_err ff_mkdir(sisy_fs *fs, const char *path)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_path p;
	ff_inode *parent, *d;
	const char *name = NULL;
	lock_ff(ff);
	sisy_err rc = gate(ff, SISY_FAULT_MKDIR, "mkdir", path, NULL);
	if (rc != SISY_OK ||
	    (rc = resolve_parent(ff, path, &p, &parent, &name)) != SISY_OK)
		goto out;
	if (dir_find(&parent->ents, name) != NULL) {
		rc = sisy_errf(SISY_E_EXISTS, "fs_fault: mkdir %s: exists",
			       path);
		goto out;
	}
	if ((d = inode_new(ff, true)) == NULL ||
	    (rc = dir_add(&parent->ents, name, d)) != SISY_OK) {
		rc = sisy_errf(SISY_E_NOMEM,
			       "fs_fault: mkdir %s: out of memory", path);
		goto out;
	}
	d->cur_links = 1;
out:
	unlock_ff(ff);
	return rc;
}

static sisy_err ff_rmdir(sisy_fs *fs, const char *path)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_path p;
	ff_inode *parent;
	const char *name = NULL;
	lock_ff(ff);
	sisy_err rc = gate(ff, SISY_FAULT_UNLINK, "rmdir", path, NULL);
	if (rc != SISY_OK ||
	    (rc = resolve_parent(ff, path, &p, &parent, &name)) != SISY_OK)
		goto out;
	ff_dirent *e = dir_find(&parent->ents, name);
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
		unlink_entry(ff, parent, e);
		gc(ff);
	}
out:
	unlock_ff(ff);
	return rc;
}

static sisy_err ff_sync_dir(sisy_fs *fs, const char *path)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_inode *d;
	lock_ff(ff);
	sisy_err rc = gate(ff, SISY_FAULT_SYNC_DIR, "sync_dir", path, NULL);
	if (rc != SISY_OK || (rc = resolve(ff, path, &d)) != SISY_OK)
		goto out;
	if (!d->is_dir) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: sync_dir %s: not a directory", path);
		goto out;
	}
	if (ff->ignore_dir_sync != NULL && strstr(path, ff->ignore_dir_sync))
		goto out; /* pretend: the test wants the sync left out */
	if ((rc = dirents_copy(&d->dur_ents, &d->ents)) != SISY_OK) {
		rc =
		    sisy_errf(rc, "fs_fault: sync_dir %s: out of memory", path);
		goto out;
	}
	gc(ff); /* entries only the old durable list held may be garbage now */
out:
	unlock_ff(ff);
	return rc;
}

static sisy_err ff_exists(sisy_fs *fs, const char *path, bool *exists)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_inode *ino;
	lock_ff(ff);
	sisy_err rc = gate(ff, 0, "exists", path, NULL);
	if (rc == SISY_OK) {
		sisy_err r = resolve(ff, path, &ino);
		if (r == SISY_OK || r == SISY_E_NOTFOUND || r == SISY_E_INVAL)
			*exists = r == SISY_OK;
		else
			rc = r;
	}
	unlock_ff(ff);
	return rc;
}

static sisy_err ff_file_size(sisy_fs *fs, const char *path, uint64_t *size)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_inode *ino;
	lock_ff(ff);
	sisy_err rc = gate(ff, 0, "stat", path, NULL);
	if (rc == SISY_OK && (rc = resolve(ff, path, &ino)) == SISY_OK)
		*size = ino->is_dir ? 0 : ino->cur.len;
	unlock_ff(ff);
	return rc;
}

/* Names are copied out first so that fn may call back into the fs. */
static sisy_err ff_list(sisy_fs *fs, const char *dir, sisy_fs_list_fn fn,
			void *ctx)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_inode *d;
	ff_dirents names = {0};
	lock_ff(ff);
	sisy_err rc = gate(ff, 0, "list", dir, NULL);
	if (rc == SISY_OK && (rc = resolve(ff, dir, &d)) == SISY_OK) {
		if (!d->is_dir)
			rc = sisy_errf(SISY_E_INVAL,
				       "fs_fault: list %s: not a directory",
				       dir);
		else if (dirents_copy(&names, &d->ents) != SISY_OK)
			rc = sisy_errf(SISY_E_NOMEM,
				       "fs_fault: list %s: out of memory", dir);
	}
	unlock_ff(ff);
	if (rc == SISY_OK)
		for (size_t i = 0; i < names.n; i++)
			fn(ctx, names.v[i].name);
	dirents_free(&names);
	return rc;
}

static sisy_err ff_lock_path(sisy_fs *fs, const char *path, sisy_lockfile **out)
{
	sisy_fs_fault *ff = ff_of(fs);
	ff_lock *lk = calloc(1, sizeof *lk);
	if (lk == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "fs_fault: lock %s: out of memory", path);
	ff_path p;
	ff_inode *parent, *ino;
	const char *name = NULL;
	lock_ff(ff);
	sisy_err rc = gate(ff, SISY_FAULT_OPEN, "lock", path, NULL);
	if (rc != SISY_OK ||
	    (rc = resolve_parent(ff, path, &p, &parent, &name)) != SISY_OK)
		goto fail;
	ff_dirent *e = dir_find(&parent->ents, name);
	if (e != NULL && e->ino->is_dir) {
		rc = sisy_errf(SISY_E_INVAL,
			       "fs_fault: lock %s: is a directory", path);
		goto fail;
	}
	if (e == NULL) {
		ino = inode_new(ff, false);
		if (ino == NULL ||
		    dir_add(&parent->ents, name, ino) != SISY_OK) {
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
	unlock_ff(ff);
	*out = &lk->base;
	return SISY_OK;
fail:
	unlock_ff(ff);
	free(lk);
	return rc;
}

static sisy_err ff_unlock(sisy_lockfile *l)
{
	ff_lock *lk = (ff_lock *)l;
	sisy_fs_fault *ff = lk->ff;
	lock_ff(ff);
	if (lk->epoch == ff->epoch) { /* a crash already freed the lock */
		assert(lk->ino->locked && lk->ino->opens > 0);
		lk->ino->locked = false;
		lk->ino->opens--;
		inode_drop_current(ff, lk->ino);
		gc(ff);
	}
	assert(ff->handles > 0);
	ff->handles--;
	unlock_ff(ff);
	free(lk);
	return SISY_OK;
}

static const sisy_fs_ops fault_ops = {
    .open = ff_open,
    .close = ff_close,
    .pread = ff_pread,
    .pwrite = ff_pwrite,
    .append = ff_append,
    .sync = ff_sync,
    .truncate = ff_truncate,
    .size = ff_size,
    .preallocate = ff_preallocate,
    .map = ff_map,
    .unmap = ff_unmap,
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

/* --- the control interface ------------------------------------------------ */

sisy_fs_fault *sisy_fs_fault_new(uint64_t seed)
{
	sisy_fs_fault *ff = calloc(1, sizeof *ff);
	if (ff == NULL)
		return NULL;
	ff->base.ops = &fault_ops;
	pthread_mutex_init(&ff->mu, NULL);
	sisy_rand_seed(&ff->rng, seed);
	ff->torn = true;
	ff->root = inode_new(ff, true);
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
		inode_free(ff->inodes[i]);
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
	lock_ff(ff);
	if (!ff->crashed)
		do_crash(ff);
	unlock_ff(ff);
}

void sisy_fs_fault_crash_after(sisy_fs_fault *ff, uint64_t n)
{
	assert(n >= 1);
	lock_ff(ff);
	ff->crash_at = ff->mutations + n;
	unlock_ff(ff);
}

bool sisy_fs_fault_crashed(sisy_fs_fault *ff)
{
	lock_ff(ff);
	bool c = ff->crashed;
	unlock_ff(ff);
	return c;
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
	if (buf_resize(&out, len) != SISY_OK)
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
static void restore_file(sisy_fs_fault *ff, ff_inode *ino)
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
	ops_free(ino);
	/* Whatever the crash kept is what is on the disk now. */
	if (sisy_buf_set(&ino->dur, ino->cur.data, ino->cur.len) != SISY_OK)
		abort();
}

static void count_links(ff_inode *d)
{
	for (size_t i = 0; i < d->ents.n; i++) {
		ff_inode *c = d->ents.v[i].ino;
		if (c->cur_links++ == 0 && c->is_dir)
			count_links(c);
	}
}

void sisy_fs_fault_restart(sisy_fs_fault *ff)
{
	lock_ff(ff);
	if (!ff->crashed)
		do_crash(ff); /* a restart without a crash is a crash */
	for (size_t i = 0; i < ff->ninodes; i++) {
		ff_inode *ino = ff->inodes[i];
		ino->opens = 0; /* every handle died with the process */
		ino->locked = false;
		ino->cur_links = 0;
		if (ino->is_dir) {
			if (dirents_copy(&ino->ents, &ino->dur_ents) != SISY_OK)
				abort();
		} else {
			restore_file(ff, ino);
		}
	}
	ff->root->cur_links = 1;
	count_links(ff->root);
	gc(ff);
	ff->used = 0;
	for (size_t i = 0; i < ff->ninodes; i++)
		ff->used += usage(ff->inodes[i]);
	ff->crashed = false;
	ff->crash_at = 0;
	unlock_ff(ff);
}

uint64_t sisy_fs_fault_mutations(sisy_fs_fault *ff)
{
	lock_ff(ff);
	uint64_t n = ff->mutations;
	unlock_ff(ff);
	return n;
}

void sisy_fs_fault_set_torn_writes(sisy_fs_fault *ff, bool on)
{
	lock_ff(ff);
	ff->torn = on;
	unlock_ff(ff);
}

void sisy_fs_fault_set_torn_sectors(sisy_fs_fault *ff, bool on)
{
	lock_ff(ff);
	ff->torn_sectors = on;
	unlock_ff(ff);
}

void sisy_fs_fault_ignore_dir_sync(sisy_fs_fault *ff, const char *substr)
{
	char *s = substr != NULL ? strdup(substr) : NULL;
	assert(substr == NULL || s != NULL);
	lock_ff(ff);
	free(ff->ignore_dir_sync);
	ff->ignore_dir_sync = s;
	unlock_ff(ff);
}

void sisy_fs_fault_inject(sisy_fs_fault *ff, int op_mask,
			  const char *path_substr, uint64_t skip,
			  uint64_t count, sisy_err err)
{
	assert(err != SISY_OK);
	char *s = path_substr != NULL ? strdup(path_substr) : NULL;
	lock_ff(ff);
	ff_rule *v = realloc(ff->rules, (ff->nrules + 1) * sizeof *v);
	if (v == NULL || (path_substr != NULL && s == NULL))
		abort(); /* a test harness cannot go on without its rule */
	ff->rules = v;
	ff->rules[ff->nrules++] = (ff_rule){op_mask, s, skip, count, err};
	unlock_ff(ff);
}

void sisy_fs_fault_clear_injections(sisy_fs_fault *ff)
{
	lock_ff(ff);
	for (size_t i = 0; i < ff->nrules; i++)
		free(ff->rules[i].substr);
	free(ff->rules);
	ff->rules = NULL;
	ff->nrules = 0;
	unlock_ff(ff);
}

void sisy_fs_fault_set_capacity(sisy_fs_fault *ff, uint64_t bytes)
{
	lock_ff(ff);
	ff->capacity = bytes;
	unlock_ff(ff);
}

uint64_t sisy_fs_fault_used(sisy_fs_fault *ff)
{
	lock_ff(ff);
	uint64_t u = ff->used;
	unlock_ff(ff);
	return u;
}

sisy_err sisy_fs_fault_corrupt(sisy_fs_fault *ff, const char *path,
			       uint64_t off, uint8_t xor_mask)
{
	ff_inode *ino;
	lock_ff(ff);
	sisy_err rc = resolve(ff, path, &ino);
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
	unlock_ff(ff);
	return rc;
}
