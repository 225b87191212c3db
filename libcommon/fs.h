/* fs.h — the file I/O interface every durable component goes through.
 *
 * The engine (sisyd/lsm) and the Raft log (sisyd/raftlog) never call open(2),
 * write(2) or fsync(2) directly: they call these functions on a sisy_fs. In
 * production that is sisy_fs_posix(); tests plug in sisy_fs_fault (see
 * fs_fault.h), an in-memory file system that models what a machine crash
 * loses and can fail any operation with ENOSPC or EIO.
 *
 * Durability model (the contract both implementations honour, and the one the
 * callers must code against):
 *   - file contents written since the file's last sisy_file_sync() may be
 *     lost by a crash (the fault layer may keep any prefix of them);
 *   - a new name (create, rename, link, unlink) becomes durable only when its
 *     directory is synced with sisy_fs_sync_dir();
 *   - sisy_fs_rename() is atomic: after a crash the name refers to either the
 *     old or the new file, never to a mix.
 * Paths are plain strings; implementations do not resolve "..".
 *
 * All functions return SISY_OK or an error code, with a message naming the
 * path attached (sisy_errmsg()). ENOSPC maps to SISY_E_NOSPC, EIO and other
 * device failures to SISY_E_IO, a missing file to SISY_E_NOTFOUND.
 */
#ifndef SISY_FS_H
#define SISY_FS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

typedef struct sisy_fs sisy_fs;
typedef struct sisy_file sisy_file;
typedef struct sisy_lockfile sisy_lockfile;

/* Open flags (combine with |). Without SISY_O_WRITE a file is read-only. */
enum {
	SISY_O_READ = 0,
	SISY_O_WRITE = 1 << 0,	/* allow writes */
	SISY_O_CREATE = 1 << 1, /* create when missing */
	SISY_O_EXCL = 1 << 2,	/* with CREATE: fail if it exists */
	SISY_O_TRUNC = 1 << 3,	/* truncate to zero on open */
};

/* A directory entry as listed by sisy_fs_list(). */
typedef void (*sisy_fs_list_fn)(void *ctx, const char *name);

/* The operations an implementation provides. Callers use the wrappers below. */
typedef struct sisy_fs_ops {
	sisy_err (*open)(sisy_fs *fs, const char *path, int flags,
			 sisy_file **out);
	sisy_err (*close)(sisy_file *f);
	sisy_err (*pread)(sisy_file *f, void *buf, size_t n, uint64_t off,
			  size_t *got);
	sisy_err (*pwrite)(sisy_file *f, const void *buf, size_t n,
			   uint64_t off);
	sisy_err (*append)(sisy_file *f, const void *buf, size_t n);
	sisy_err (*sync)(sisy_file *f);
	sisy_err (*truncate)(sisy_file *f, uint64_t size);
	sisy_err (*size)(sisy_file *f, uint64_t *size);
	sisy_err (*preallocate)(sisy_file *f, uint64_t size);
	/* Map a file that will not change while mapped; SISY_E_NOTSUP allowed.
	 */
	sisy_err (*map)(sisy_file *f, const uint8_t **data, size_t *len);
	sisy_err (*unmap)(sisy_file *f);

	sisy_err (*rename)(sisy_fs *fs, const char *from, const char *to);
	sisy_err (*unlink)(sisy_fs *fs, const char *path);
	sisy_err (*link)(sisy_fs *fs, const char *from, const char *to);
	sisy_err (*mkdir)(sisy_fs *fs, const char *path);
	sisy_err (*rmdir)(sisy_fs *fs, const char *path);
	sisy_err (*sync_dir)(sisy_fs *fs, const char *path);
	sisy_err (*exists)(sisy_fs *fs, const char *path, bool *exists);
	sisy_err (*file_size)(sisy_fs *fs, const char *path, uint64_t *size);
	sisy_err (*list)(sisy_fs *fs, const char *dir, sisy_fs_list_fn fn,
			 void *ctx);
	/* An exclusive lock on `path` (created if needed). A second lock on the
	 * same path fails with SISY_E_LOCKED, whether from this process or
	 * another. */
	sisy_err (*lock)(sisy_fs *fs, const char *path, sisy_lockfile **out);
	sisy_err (*unlock)(sisy_lockfile *lk);
} sisy_fs_ops;

/* Base of every file system object; implementations embed it first. */
struct sisy_fs {
	const sisy_fs_ops *ops;
};

/* Base of every open file; implementations embed it first. */
struct sisy_file {
	sisy_fs *fs;
};

/* Base of a lock handle; implementations embed it first. */
struct sisy_lockfile {
	sisy_fs *fs;
};

/* The real file system. A single shared, stateless instance. */
sisy_fs *sisy_fs_posix(void);

/* --- wrappers --------------------------------------------------------- */

static inline sisy_err sisy_fs_open(sisy_fs *fs, const char *path, int flags,
				    sisy_file **out)
{
	return fs->ops->open(fs, path, flags, out);
}
static inline sisy_err sisy_file_close(sisy_file *f)
{
	return f->fs->ops->close(f);
}
/* Reads up to n bytes at off; *got < n only at end of file. */
static inline sisy_err sisy_file_pread(sisy_file *f, void *buf, size_t n,
				       uint64_t off, size_t *got)
{
	return f->fs->ops->pread(f, buf, n, off, got);
}
static inline sisy_err sisy_file_pwrite(sisy_file *f, const void *buf, size_t n,
					uint64_t off)
{
	return f->fs->ops->pwrite(f, buf, n, off);
}
/* Appends at the end of the file (all n bytes or an error). */
static inline sisy_err sisy_file_append(sisy_file *f, const void *buf, size_t n)
{
	return f->fs->ops->append(f, buf, n);
}
/* Makes the file's contents (not its name) durable: fdatasync. */
static inline sisy_err sisy_file_sync(sisy_file *f)
{
	return f->fs->ops->sync(f);
}
static inline sisy_err sisy_file_truncate(sisy_file *f, uint64_t size)
{
	return f->fs->ops->truncate(f, size);
}
static inline sisy_err sisy_file_size(sisy_file *f, uint64_t *size)
{
	return f->fs->ops->size(f, size);
}
/* Reserves space up to `size` without changing the visible size where the
 * platform allows (fallocate KEEP_SIZE); a hint, may be a no-op. */
static inline sisy_err sisy_file_preallocate(sisy_file *f, uint64_t size)
{
	return f->fs->ops->preallocate(f, size);
}
static inline sisy_err sisy_file_map(sisy_file *f, const uint8_t **data,
				     size_t *len)
{
	return f->fs->ops->map(f, data, len);
}
static inline sisy_err sisy_file_unmap(sisy_file *f)
{
	return f->fs->ops->unmap(f);
}
static inline sisy_err sisy_fs_rename(sisy_fs *fs, const char *from,
				      const char *to)
{
	return fs->ops->rename(fs, from, to);
}
static inline sisy_err sisy_fs_unlink(sisy_fs *fs, const char *path)
{
	return fs->ops->unlink(fs, path);
}
/* Hard link: `to` names the same file as `from`. */
static inline sisy_err sisy_fs_link(sisy_fs *fs, const char *from,
				    const char *to)
{
	return fs->ops->link(fs, from, to);
}
static inline sisy_err sisy_fs_mkdir(sisy_fs *fs, const char *path)
{
	return fs->ops->mkdir(fs, path);
}
static inline sisy_err sisy_fs_rmdir(sisy_fs *fs, const char *path)
{
	return fs->ops->rmdir(fs, path);
}
/* Makes the directory's entries (creates, renames, unlinks) durable. */
static inline sisy_err sisy_fs_sync_dir(sisy_fs *fs, const char *path)
{
	return fs->ops->sync_dir(fs, path);
}
static inline sisy_err sisy_fs_exists(sisy_fs *fs, const char *path,
				      bool *exists)
{
	return fs->ops->exists(fs, path, exists);
}
static inline sisy_err sisy_fs_file_size(sisy_fs *fs, const char *path,
					 uint64_t *size)
{
	return fs->ops->file_size(fs, path, size);
}
/* Calls fn for every entry of dir except "." and "..", in no set order. */
static inline sisy_err sisy_fs_list(sisy_fs *fs, const char *dir,
				    sisy_fs_list_fn fn, void *ctx)
{
	return fs->ops->list(fs, dir, fn, ctx);
}
static inline sisy_err sisy_fs_lock(sisy_fs *fs, const char *path,
				    sisy_lockfile **out)
{
	return fs->ops->lock(fs, path, out);
}
static inline sisy_err sisy_fs_unlock(sisy_lockfile *lk)
{
	return lk == NULL ? SISY_OK : lk->fs->ops->unlock(lk);
}

/* --- helpers built on the interface (fs_util.c) ------------------------ */

/* Reads a whole (small) file into a malloc'd buffer; caller frees *data. */
sisy_err sisy_fs_read_all(sisy_fs *fs, const char *path, size_t max,
			  uint8_t **data, size_t *len);

/* Writes `data` to `path` durably and atomically: write a temporary file,
 * sync it, rename it over `path`, sync the directory `dir`. */
sisy_err sisy_fs_write_atomic(sisy_fs *fs, const char *dir, const char *path,
			      const void *data, size_t len);

/* mkdir that succeeds when the directory already exists. */
sisy_err sisy_fs_mkdir_p(sisy_fs *fs, const char *path);

#endif
