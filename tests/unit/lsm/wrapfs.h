/* wrapfs.h — a pass-through sisy_fs for the table-layer tests: it forwards
 * every call to an inner file system, and can
 *   - refuse sisy_file_map (SISY_E_NOTSUP), to drive the pread + block-cache
 *     path of the table reader on a file system that could map;
 *   - count the files currently open and the opens so far, to show that the
 *     table cache bounds open files and closes a table only once unpinned;
 *   - count the bytes of the files mapped now and their peak, to show that
 *     the map budget bounds them (a file's mapping lives until its close or
 *     unmap).
 * Header-only (each test is one source file); static inline so a test that
 * uses part of it builds without warnings.
 */
#ifndef SISY_TEST_WRAPFS_H
#define SISY_TEST_WRAPFS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "fs.h"

typedef struct wrapfs {
	sisy_fs base;
	sisy_fs *inner;
	bool no_map;
	atomic_int open_files;
	atomic_int opens;
	atomic_llong mapped;	  /* bytes of the files mapped now */
	atomic_llong mapped_peak; /* the most ever mapped at once */
} wrapfs;

typedef struct wrapfs_file {
	sisy_file base;
	sisy_file *inner;
	long long mapped; /* this file's mapping, 0: none */
} wrapfs_file;

#define WRAPFS_INNER(f) (((wrapfs_file *)(f))->inner)
#define WRAPFS_FS(fs)	(((wrapfs *)(fs))->inner)

static inline sisy_err wrapfs_open(sisy_fs *fs, const char *path, int flags,
				   sisy_file **out)
{
	wrapfs_file *w = calloc(1, sizeof *w);
	if (w == NULL)
		return SISY_E_NOMEM;
	sisy_err rc = sisy_fs_open(WRAPFS_FS(fs), path, flags, &w->inner);
	if (rc != SISY_OK) {
		free(w);
		return rc;
	}
	w->base.fs = fs;
	atomic_fetch_add(&((wrapfs *)fs)->open_files, 1);
	atomic_fetch_add(&((wrapfs *)fs)->opens, 1);
	*out = &w->base;
	return SISY_OK;
}
static inline void wrapfs_unmapped(sisy_file *f)
{
	wrapfs_file *w = (wrapfs_file *)f;
	atomic_fetch_sub(&((wrapfs *)f->fs)->mapped, w->mapped);
	w->mapped = 0;
}
static inline sisy_err wrapfs_close(sisy_file *f)
{
	wrapfs_unmapped(f);
	sisy_err rc = sisy_file_close(WRAPFS_INNER(f));
	atomic_fetch_sub(&((wrapfs *)f->fs)->open_files, 1);
	free(f);
	return rc;
}
static inline sisy_err wrapfs_pread(sisy_file *f, void *buf, size_t n,
				    uint64_t off, size_t *got)
{
	return sisy_file_pread(WRAPFS_INNER(f), buf, n, off, got);
}
static inline sisy_err wrapfs_pwrite(sisy_file *f, const void *buf, size_t n,
				     uint64_t off)
{
	return sisy_file_pwrite(WRAPFS_INNER(f), buf, n, off);
}
static inline sisy_err wrapfs_append(sisy_file *f, const void *buf, size_t n)
{
	return sisy_file_append(WRAPFS_INNER(f), buf, n);
}
static inline sisy_err wrapfs_sync(sisy_file *f)
{
	return sisy_file_sync(WRAPFS_INNER(f));
}
static inline sisy_err wrapfs_truncate(sisy_file *f, uint64_t size)
{
	return sisy_file_truncate(WRAPFS_INNER(f), size);
}
static inline sisy_err wrapfs_size(sisy_file *f, uint64_t *size)
{
	return sisy_file_size(WRAPFS_INNER(f), size);
}
static inline sisy_err wrapfs_preallocate(sisy_file *f, uint64_t size)
{
	return sisy_file_preallocate(WRAPFS_INNER(f), size);
}
static inline sisy_err wrapfs_map(sisy_file *f, const uint8_t **data,
				  size_t *len)
{
	wrapfs *fs = (wrapfs *)f->fs;
	wrapfs_file *w = (wrapfs_file *)f;
	if (fs->no_map)
		return sisy_errf(SISY_E_NOTSUP, "wrapfs: map refused");
	sisy_err rc = sisy_file_map(WRAPFS_INNER(f), data, len);
	if (rc == SISY_OK && w->mapped == 0) {
		w->mapped = (long long)*len;
		long long now =
		    atomic_fetch_add(&fs->mapped, w->mapped) + w->mapped;
		long long peak = atomic_load(&fs->mapped_peak);
		while (now > peak && !atomic_compare_exchange_weak(
					 &fs->mapped_peak, &peak, now))
			;
	}
	return rc;
}
static inline sisy_err wrapfs_unmap(sisy_file *f)
{
	wrapfs_unmapped(f);
	return sisy_file_unmap(WRAPFS_INNER(f));
}
static inline sisy_err wrapfs_rename(sisy_fs *fs, const char *a, const char *b)
{
	return sisy_fs_rename(WRAPFS_FS(fs), a, b);
}
static inline sisy_err wrapfs_unlink(sisy_fs *fs, const char *p)
{
	return sisy_fs_unlink(WRAPFS_FS(fs), p);
}
static inline sisy_err wrapfs_link(sisy_fs *fs, const char *a, const char *b)
{
	return sisy_fs_link(WRAPFS_FS(fs), a, b);
}
static inline sisy_err wrapfs_mkdir(sisy_fs *fs, const char *p)
{
	return sisy_fs_mkdir(WRAPFS_FS(fs), p);
}
static inline sisy_err wrapfs_rmdir(sisy_fs *fs, const char *p)
{
	return sisy_fs_rmdir(WRAPFS_FS(fs), p);
}
static inline sisy_err wrapfs_sync_dir(sisy_fs *fs, const char *p)
{
	return sisy_fs_sync_dir(WRAPFS_FS(fs), p);
}
static inline sisy_err wrapfs_exists(sisy_fs *fs, const char *p, bool *e)
{
	return sisy_fs_exists(WRAPFS_FS(fs), p, e);
}
static inline sisy_err wrapfs_file_size(sisy_fs *fs, const char *p, uint64_t *s)
{
	return sisy_fs_file_size(WRAPFS_FS(fs), p, s);
}
static inline sisy_err wrapfs_list(sisy_fs *fs, const char *d,
				   sisy_fs_list_fn fn, void *ctx)
{
	return sisy_fs_list(WRAPFS_FS(fs), d, fn, ctx);
}
static inline sisy_err wrapfs_lock(sisy_fs *fs, const char *p,
				   sisy_lockfile **out)
{
	return sisy_fs_lock(WRAPFS_FS(fs), p, out);
}
static inline sisy_err wrapfs_unlock(sisy_lockfile *lk)
{
	return sisy_fs_unlock(lk);
}

static const sisy_fs_ops wrapfs_ops = {
    .open = wrapfs_open,
    .close = wrapfs_close,
    .pread = wrapfs_pread,
    .pwrite = wrapfs_pwrite,
    .append = wrapfs_append,
    .sync = wrapfs_sync,
    .truncate = wrapfs_truncate,
    .size = wrapfs_size,
    .preallocate = wrapfs_preallocate,
    .map = wrapfs_map,
    .unmap = wrapfs_unmap,
    .rename = wrapfs_rename,
    .unlink = wrapfs_unlink,
    .link = wrapfs_link,
    .mkdir = wrapfs_mkdir,
    .rmdir = wrapfs_rmdir,
    .sync_dir = wrapfs_sync_dir,
    .exists = wrapfs_exists,
    .file_size = wrapfs_file_size,
    .list = wrapfs_list,
    .lock = wrapfs_lock,
    .unlock = wrapfs_unlock,
};

static inline void wrapfs_init(wrapfs *w, sisy_fs *inner, bool no_map)
{
	w->base.ops = &wrapfs_ops;
	w->inner = inner;
	w->no_map = no_map;
	atomic_init(&w->open_files, 0);
	atomic_init(&w->opens, 0);
	atomic_init(&w->mapped, 0);
	atomic_init(&w->mapped_peak, 0);
}

#endif
