/* fs_posix.c — sisy_fs over the real file system (POSIX + Linux calls).
 *
 * Stateless: one shared instance. Directory locks use open-file-description
 * locks (F_OFD_SETLK) so that a second lock taken by the same process on the
 * same path fails too; classic fcntl locks would silently succeed there.
 */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct posix_file {
	sisy_file base;
	int fd;
	char *path;
	const uint8_t *map;
	size_t map_len;
	uint64_t end;  /* append offset; valid when have_end */
	bool have_end; /* learnt from fstat on first append */
} posix_file;

typedef struct posix_lock {
	sisy_lockfile base;
	int fd;
} posix_lock;

static sisy_err sys_err(const char *op, const char *path)
{
	int e = errno;
	return sisy_errf(sisy_err_from_errno(e), "%s %s: %s", op,
			 path ? path : "?", strerror(e));
}

static sisy_err px_open(sisy_fs *fs, const char *path, int flags,
			sisy_file **out)
{
	int oflags = O_CLOEXEC;
	oflags |= (flags & SISY_O_WRITE) ? O_RDWR : O_RDONLY;
	if (flags & SISY_O_CREATE)
		oflags |= O_CREAT;
	if (flags & SISY_O_EXCL)
		oflags |= O_EXCL;
	if (flags & SISY_O_TRUNC)
		oflags |= O_TRUNC;
	int fd = open(path, oflags, 0644);
	if (fd < 0)
		return sys_err("open", path);
	posix_file *f = calloc(1, sizeof *f);
	char *p = strdup(path);
	if (f == NULL || p == NULL) {
		free(f);
		free(p);
		close(fd);
		return sisy_errf(SISY_E_NOMEM, "open %s: out of memory", path);
	}
	f->base.fs = fs;
	f->fd = fd;
	f->path = p;
	*out = &f->base;
	return SISY_OK;
}

static sisy_err px_close(sisy_file *file)
{
	posix_file *f = (posix_file *)file;
	sisy_err rc = SISY_OK;
	if (f->map != NULL)
		munmap((void *)f->map, f->map_len);
	if (close(f->fd) != 0)
		rc = sys_err("close", f->path);
	free(f->path);
	free(f);
	return rc;
}

static sisy_err px_pread(sisy_file *file, void *buf, size_t n, uint64_t off,
			 size_t *got)
{
	posix_file *f = (posix_file *)file;
	size_t done = 0;
	while (done < n) {
		ssize_t r = pread(f->fd, (char *)buf + done, n - done,
				  (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return sys_err("read", f->path);
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return SISY_OK;
}

static sisy_err write_all(posix_file *f, const void *buf, size_t n,
			  uint64_t off)
{
	size_t done = 0;
	while (done < n) {
		ssize_t r = pwrite(f->fd, (const char *)buf + done, n - done,
				   (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return sys_err("write", f->path);
		}
		done += (size_t)r;
	}
	return SISY_OK;
}

static sisy_err px_pwrite(sisy_file *file, const void *buf, size_t n,
			  uint64_t off)
{
	posix_file *f = (posix_file *)file;
	sisy_err rc = write_all(f, buf, n, off);
	if (f->have_end && (rc != SISY_OK || off + n > f->end))
		f->have_end =
		    false; /* the end moved: re-learn on next append */
	return rc;
}

static sisy_err px_append(sisy_file *file, const void *buf, size_t n)
{
	posix_file *f = (posix_file *)file;
	if (!f->have_end) {
		struct stat st;
		if (fstat(f->fd, &st) != 0)
			return sys_err("stat", f->path);
		f->end = (uint64_t)st.st_size;
		f->have_end = true;
	}
	sisy_err rc = write_all(f, buf, n, f->end);
	if (rc != SISY_OK) {
		f->have_end = false; /* a short write moved the end: re-learn */
		return rc;
	}
	f->end += n;
	return SISY_OK;
}

static sisy_err px_sync(sisy_file *file)
{
	posix_file *f = (posix_file *)file;
	/* A failed fdatasync may have dropped dirty pages: the caller must
	 * treat it as fatal for this file, never retry and carry on. */
	if (fdatasync(f->fd) != 0)
		return sys_err("fdatasync", f->path);
	return SISY_OK;
}

static sisy_err px_truncate(sisy_file *file, uint64_t size)
{
	posix_file *f = (posix_file *)file;
	f->have_end = false;
	if (ftruncate(f->fd, (off_t)size) != 0)
		return sys_err("truncate", f->path);
	return SISY_OK;
}

static sisy_err px_size(sisy_file *file, uint64_t *size)
{
	posix_file *f = (posix_file *)file;
	struct stat st;
	if (fstat(f->fd, &st) != 0)
		return sys_err("stat", f->path);
	*size = (uint64_t)st.st_size;
	return SISY_OK;
}

static sisy_err px_preallocate(sisy_file *file, uint64_t size)
{
	posix_file *f = (posix_file *)file;
	if (fallocate(f->fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)size) != 0) {
		if (errno == EOPNOTSUPP || errno == ENOSYS)
			return SISY_OK; /* only a hint */
		return sys_err("fallocate", f->path);
	}
	return SISY_OK;
}

static sisy_err px_map(sisy_file *file, const uint8_t **data, size_t *len)
{
	posix_file *f = (posix_file *)file;
	if (f->map == NULL) {
		uint64_t sz;
		sisy_err rc = px_size(file, &sz);
		if (rc != SISY_OK)
			return rc;
		if (sz == 0)
			return sisy_errf(SISY_E_NOTSUP, "map %s: empty file",
					 f->path);
		void *m =
		    mmap(NULL, (size_t)sz, PROT_READ, MAP_SHARED, f->fd, 0);
		if (m == MAP_FAILED)
			return sys_err("mmap", f->path);
		f->map = m;
		f->map_len = (size_t)sz;
	}
	*data = f->map;
	*len = f->map_len;
	return SISY_OK;
}

static sisy_err px_unmap(sisy_file *file)
{
	posix_file *f = (posix_file *)file;
	if (f->map != NULL)
		munmap((void *)f->map, f->map_len);
	f->map = NULL;
	f->map_len = 0;
	return SISY_OK;
}

static sisy_err px_rename(sisy_fs *fs, const char *from, const char *to)
{
	(void)fs;
	if (rename(from, to) != 0)
		return sys_err("rename", from);
	return SISY_OK;
}

static sisy_err px_unlink(sisy_fs *fs, const char *path)
{
	(void)fs;
	if (unlink(path) != 0)
		return sys_err("unlink", path);
	return SISY_OK;
}

static sisy_err px_link(sisy_fs *fs, const char *from, const char *to)
{
	(void)fs;
	if (link(from, to) != 0)
		return sys_err("link", to);
	return SISY_OK;
}

static sisy_err px_mkdir(sisy_fs *fs, const char *path)
{
	(void)fs;
	if (mkdir(path, 0755) != 0)
		return sys_err("mkdir", path);
	return SISY_OK;
}

static sisy_err px_rmdir(sisy_fs *fs, const char *path)
{
	(void)fs;
	if (rmdir(path) != 0)
		return sys_err("rmdir", path);
	return SISY_OK;
}

static sisy_err px_sync_dir(sisy_fs *fs, const char *path)
{
	(void)fs;
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return sys_err("open directory", path);
	sisy_err rc = SISY_OK;
	if (fsync(fd) != 0)
		rc = sys_err("fsync directory", path);
	close(fd);
	return rc;
}

static sisy_err px_exists(sisy_fs *fs, const char *path, bool *exists)
{
	(void)fs;
	struct stat st;
	if (stat(path, &st) == 0) {
		*exists = true;
		return SISY_OK;
	}
	if (errno == ENOENT) {
		*exists = false;
		return SISY_OK;
	}
	return sys_err("stat", path);
}

static sisy_err px_file_size(sisy_fs *fs, const char *path, uint64_t *size)
{
	(void)fs;
	struct stat st;
	if (stat(path, &st) != 0)
		return sys_err("stat", path);
	*size = (uint64_t)st.st_size;
	return SISY_OK;
}

static sisy_err px_list(sisy_fs *fs, const char *dir, sisy_fs_list_fn fn,
			void *ctx)
{
	(void)fs;
	DIR *d = opendir(dir);
	if (d == NULL)
		return sys_err("opendir", dir);
	struct dirent *e;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			fn(ctx, e->d_name);
		errno = 0;
	}
	sisy_err rc = errno != 0 ? sys_err("readdir", dir) : SISY_OK;
	closedir(d);
	return rc;
}

static sisy_err px_lock(sisy_fs *fs, const char *path, sisy_lockfile **out)
{
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return sys_err("open lock file", path);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
	if (fcntl(fd, F_OFD_SETLK, &fl) != 0) {
		int e = errno;
		close(fd);
		if (e == EACCES || e == EAGAIN)
			return sisy_errf(SISY_E_LOCKED,
					 "%s is locked: another process (or "
					 "handle) is using this directory",
					 path);
		errno = e;
		return sys_err("lock", path);
	}
	posix_lock *lk = calloc(1, sizeof *lk);
	if (lk == NULL) {
		close(fd);
		return sisy_errf(SISY_E_NOMEM, "lock %s: out of memory", path);
	}
	lk->base.fs = fs;
	lk->fd = fd;
	*out = &lk->base;
	return SISY_OK;
}

static sisy_err px_unlock(sisy_lockfile *l)
{
	posix_lock *lk = (posix_lock *)l;
	close(lk->fd); /* closing the description releases the OFD lock */
	free(lk);
	return SISY_OK;
}

static const sisy_fs_ops posix_ops = {
    .open = px_open,
    .close = px_close,
    .pread = px_pread,
    .pwrite = px_pwrite,
    .append = px_append,
    .sync = px_sync,
    .truncate = px_truncate,
    .size = px_size,
    .preallocate = px_preallocate,
    .map = px_map,
    .unmap = px_unmap,
    .rename = px_rename,
    .unlink = px_unlink,
    .link = px_link,
    .mkdir = px_mkdir,
    .rmdir = px_rmdir,
    .sync_dir = px_sync_dir,
    .exists = px_exists,
    .file_size = px_file_size,
    .list = px_list,
    .lock = px_lock,
    .unlock = px_unlock,
};

static sisy_fs posix_fs = {&posix_ops};

sisy_fs *sisy_fs_posix(void)
{
	return &posix_fs;
}
