/* fs_fault_file.c — the sisy_file operations of the fault layer: open,
 * read, write, sync, truncate, preallocate, map. Each takes the mutex and
 * passes the gate (crash, injected errors) first; a write changes the
 * current bytes and logs the change for the next sync or crash.
 *
 * A failed sync (injected) makes nothing durable and keeps the unsynced bytes
 * in the op log: what a crash keeps afterwards is still made of them.
 * Callers must treat a failed sync as fatal, as with the real fdatasync.
 */
#include <stdlib.h>
#include <string.h>

#include "fs_fault_int.h"

static sisy_err write_at(ff_file *f, const void *buf, size_t n, uint64_t off,
			 const char *what)
{
	sisy_fs_fault *ff = f->ff;
	ff_inode *ino = f->ino;
	sisy_err rc = fs_fault_file_gate(f, SISY_FAULT_WRITE, what);
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
	if (fs_fault_over_capacity(ff, ino, new_usage))
		return sisy_errf(
		    SISY_E_NOSPC,
		    "fs_fault: %s %s: no space left (capacity %llu "
		    "bytes)",
		    what, f->path, (unsigned long long)ff->capacity);
	uint64_t old = fs_fault_usage(ino);
	if ((rc = sisy_buf_reserve(
		 &ino->cur, end > ino->cur.len ? end - ino->cur.len : 0)) !=
		SISY_OK ||
	    (rc = fs_fault_op_log(ino, OP_WRITE, off, buf, n)) != SISY_OK)
		return rc;
	rc = fs_fault_buf_write(&ino->cur, off, buf,
				n); /* cannot fail: reserved */
	assert(rc == SISY_OK);
	fs_fault_account(ff, old, ino);
	return SISY_OK;
}

sisy_err fs_fault_file_open(sisy_fs *fs, const char *path, int flags,
			    sisy_file **out)
{
	sisy_fs_fault *ff = fs_fault_of(fs);
	ff_file *f = calloc(1, sizeof *f);
	char *pcopy = strdup(path);
	if (f == NULL || pcopy == NULL) {
		free(f);
		free(pcopy);
		return sisy_errf(SISY_E_NOMEM,
				 "fs_fault: open %s: out of memory", path);
	}
	fs_fault_lock(ff);
	bool mutates = (flags & (SISY_O_CREATE | SISY_O_TRUNC)) != 0;
	sisy_err rc = fs_fault_gate(ff, mutates ? SISY_FAULT_OPEN : 0, "open",
				    path, NULL);
	ff_path p;
	ff_inode *parent, *ino;
	const char *name = NULL;
	if (rc != SISY_OK)
		goto fail;
	if ((rc = fs_fault_resolve_parent(ff, path, &p, &parent, &name)) !=
	    SISY_OK)
		goto fail;
	ff_dirent *e = fs_fault_dir_find(&parent->ents, name);
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
		ino = fs_fault_inode_new(ff, false);
		if (ino == NULL ||
		    fs_fault_dir_add(&parent->ents, name, ino) != SISY_OK) {
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
		uint64_t old = fs_fault_usage(ino);
		if ((rc = fs_fault_op_log(ino, OP_TRUNC, 0, NULL, 0)) !=
		    SISY_OK)
			goto fail;
		ino->cur.len = 0;
		fs_fault_account(ff, old, ino);
	}
	ino->opens++;
	ff->handles++;
	f->base.fs = fs;
	f->ff = ff;
	f->ino = ino;
	f->flags = flags;
	f->epoch = ff->epoch;
	f->path = pcopy;
	fs_fault_unlock(ff);
	*out = &f->base;
	return SISY_OK;
fail:
	fs_fault_unlock(ff);
	free(f);
	free(pcopy);
	return rc;
}

sisy_err fs_fault_file_close(sisy_file *file)
{
	ff_file *f = (ff_file *)file;
	sisy_fs_fault *ff = f->ff;
	sisy_err rc = SISY_OK;
	fs_fault_lock(ff);
	if (f->epoch != ff->epoch) {
		rc = fs_fault_crashed_err("close", f->path);
	} else {
		assert(f->ino->opens > 0);
		f->ino->opens--;
		fs_fault_drop_current(ff, f->ino);
		fs_fault_gc(ff);
		if (ff->crashed)
			rc = fs_fault_crashed_err("close", f->path);
	}
	assert(ff->handles > 0);
	ff->handles--;
	fs_fault_unlock(ff);
	free(f->map);
	free(f->path);
	free(f);
	return rc;
}

sisy_err fs_fault_file_pread(sisy_file *file, void *buf, size_t n, uint64_t off,
			     size_t *got)
{
	ff_file *f = (ff_file *)file;
	fs_fault_lock(f->ff);
	sisy_err rc = fs_fault_file_gate(f, SISY_FAULT_READ, "read");
	if (rc == SISY_OK) {
		const sisy_buf *b = &f->ino->cur;
		size_t k = 0;
		if (off < b->len)
			k = b->len - off < n ? (size_t)(b->len - off) : n;
		if (k)
			memcpy(buf, b->data + off, k);
		*got = k;
	}
	fs_fault_unlock(f->ff);
	return rc;
}

sisy_err fs_fault_file_pwrite(sisy_file *file, const void *buf, size_t n,
			      uint64_t off)
{
	ff_file *f = (ff_file *)file;
	fs_fault_lock(f->ff);
	sisy_err rc = write_at(f, buf, n, off, "write");
	fs_fault_unlock(f->ff);
	return rc;
}

sisy_err fs_fault_file_append(sisy_file *file, const void *buf, size_t n)
{
	ff_file *f = (ff_file *)file;
	fs_fault_lock(f->ff);
	sisy_err rc = write_at(f, buf, n, f->ino->cur.len, "append");
	fs_fault_unlock(f->ff);
	return rc;
}

sisy_err fs_fault_file_sync(sisy_file *file)
{
	ff_file *f = (ff_file *)file;
	fs_fault_lock(f->ff);
	sisy_err rc = fs_fault_file_gate(f, SISY_FAULT_SYNC, "sync");
	if (rc == SISY_OK)
		rc = fs_fault_inode_sync(f->ino);
	fs_fault_unlock(f->ff);
	return rc;
}

sisy_err fs_fault_file_truncate(sisy_file *file, uint64_t size)
{
	ff_file *f = (ff_file *)file;
	sisy_fs_fault *ff = f->ff;
	ff_inode *ino = f->ino;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_file_gate(f, SISY_FAULT_TRUNCATE, "truncate");
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
	if (fs_fault_over_capacity(ff, ino, new_usage)) {
		rc = sisy_errf(SISY_E_NOSPC,
			       "fs_fault: truncate %s: no space left", f->path);
		goto out;
	}
	uint64_t old = fs_fault_usage(ino);
	if ((rc = fs_fault_op_log(ino, OP_TRUNC, size, NULL, 0)) != SISY_OK)
		goto out;
	if ((rc = fs_fault_buf_resize(&ino->cur, (size_t)size)) != SISY_OK)
		goto out;
	fs_fault_account(ff, old, ino);
out:
	fs_fault_unlock(ff);
	return rc;
}

sisy_err fs_fault_file_size(sisy_file *file, uint64_t *size)
{
	ff_file *f = (ff_file *)file;
	fs_fault_lock(f->ff);
	sisy_err rc = fs_fault_file_gate(f, 0, "size");
	if (rc == SISY_OK)
		*size = f->ino->cur.len;
	fs_fault_unlock(f->ff);
	return rc;
}

/* Bookkeeping only: reserves space against the capacity, like fallocate
 * with KEEP_SIZE; the visible size does not change. */
sisy_err fs_fault_file_preallocate(sisy_file *file, uint64_t size)
{
	ff_file *f = (ff_file *)file;
	sisy_fs_fault *ff = f->ff;
	fs_fault_lock(ff);
	sisy_err rc = fs_fault_file_gate(f, SISY_FAULT_TRUNCATE, "preallocate");
	if (rc == SISY_OK && size > f->ino->reserved) {
		uint64_t new_usage =
		    size > f->ino->cur.len ? size : f->ino->cur.len;
		if (fs_fault_over_capacity(ff, f->ino, new_usage)) {
			rc = sisy_errf(
			    SISY_E_NOSPC,
			    "fs_fault: preallocate %s: no space left", f->path);
		} else {
			uint64_t old = fs_fault_usage(f->ino);
			f->ino->reserved = size;
			fs_fault_account(ff, old, f->ino);
		}
	}
	fs_fault_unlock(ff);
	return rc;
}

sisy_err fs_fault_file_map(sisy_file *file, const uint8_t **data, size_t *len)
{
	ff_file *f = (ff_file *)file;
	fs_fault_lock(f->ff);
	sisy_err rc = fs_fault_file_gate(f, SISY_FAULT_READ, "map");
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
	fs_fault_unlock(f->ff);
	return rc;
}

sisy_err fs_fault_file_unmap(sisy_file *file)
{
	ff_file *f = (ff_file *)file;
	free(f->map);
	f->map = NULL;
	f->map_len = 0;
	return SISY_OK;
}
