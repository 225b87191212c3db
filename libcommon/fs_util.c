/* fs_util.c — small helpers built only on the sisy_fs interface, so they
 * work the same over the real disk and the fault layer. */
#include "fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sisy_err sisy_fs_read_all(sisy_fs *fs, const char *path, size_t max,
			  uint8_t **data, size_t *len)
{
	sisy_file *f = NULL;
	uint8_t *buf = NULL;
	uint64_t size;
	size_t got;
	sisy_err rc = sisy_fs_open(fs, path, SISY_O_READ, &f);
	if (rc != SISY_OK)
		return rc;
	if ((rc = sisy_file_size(f, &size)) != SISY_OK)
		goto fail;
	if (size > max) {
		rc = sisy_errf(SISY_E_TOOBIG, "%s: %llu bytes, more than %zu",
			       path, (unsigned long long)size, max);
		goto fail;
	}
	buf = malloc(size ? (size_t)size : 1);
	if (buf == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "%s: out of memory", path);
		goto fail;
	}
	if ((rc = sisy_file_pread(f, buf, (size_t)size, 0, &got)) != SISY_OK)
		goto fail;
	sisy_file_close(f);
	*data = buf;
	*len = got;
	return SISY_OK;
fail:
	free(buf);
	sisy_file_close(f);
	return rc;
}

sisy_err sisy_fs_write_atomic(sisy_fs *fs, const char *dir, const char *path,
			      const void *data, size_t len)
{
	char tmp[4096];
	sisy_file *f = NULL;
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
		return sisy_errf(SISY_E_TOOBIG, "path too long: %s", path);
	sisy_err rc = sisy_fs_open(
	    fs, tmp, SISY_O_WRITE | SISY_O_CREATE | SISY_O_TRUNC, &f);
	if (rc != SISY_OK)
		return rc;
	if ((rc = sisy_file_append(f, data, len)) != SISY_OK ||
	    (rc = sisy_file_sync(f)) != SISY_OK) {
		sisy_file_close(f);
		sisy_fs_unlink(fs, tmp);
		return rc;
	}
	if ((rc = sisy_file_close(f)) != SISY_OK)
		return rc;
	if ((rc = sisy_fs_rename(fs, tmp, path)) != SISY_OK)
		return rc;
	return sisy_fs_sync_dir(fs, dir);
}

sisy_err sisy_fs_mkdir_p(sisy_fs *fs, const char *path)
{
	bool exists = false;
	sisy_err rc = sisy_fs_exists(fs, path, &exists);
	if (rc != SISY_OK || exists)
		return rc;
	rc = sisy_fs_mkdir(fs, path);
	return rc == SISY_E_EXISTS ? SISY_OK : rc;
}
