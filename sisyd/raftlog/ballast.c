/* ballast.c — reserve space for a full disk.
 *
 * A log that fills the disk cannot free space by itself: segments are
 * deleted only after a compaction's BASE record is durable, and that record
 * waits in the queue behind the batch the full disk refused. So the log
 * keeps <dir>/ballast, reserve_bytes of zeros written at open. When the disk
 * is full and a compaction is waiting, the writer deletes the ballast: the
 * stuck batch and the BASE records behind it fit, old segments go, and the
 * ballast is written again after the next deletion of segments (best
 * effort: a disk still full skips it).
 *
 * The file holds nothing; recovery ignores it.
 */
#include <stdio.h>

#include "internal.h"

#define BALLAST_NAME "ballast"

static sisy_err ballast_path(sisy_raftlog *lg, char *out, size_t cap)
{
	if (snprintf(out, cap, "%s/%s", lg->dir, BALLAST_NAME) >= (int)cap)
		return sisy_errf(SISY_E_TOOBIG, "raftlog: path too long: %s",
				 lg->dir);
	return SISY_OK;
}

sisy_err raftlog_ballast_make(sisy_raftlog *lg)
{
	char path[4096];
	sisy_file *f = NULL;
	uint64_t size = 0;
	bool exists, created = false;
	sisy_err rc = ballast_path(lg, path, sizeof path);
	if (rc != SISY_OK || lg->o.reserve_bytes == 0)
		return rc;
	if ((rc = sisy_fs_exists(lg->o.fs, path, &exists)) != SISY_OK)
		return rc;
	if (exists &&
	    (rc = sisy_fs_file_size(lg->o.fs, path, &size)) != SISY_OK)
		return rc;
	if (exists && size >= lg->o.reserve_bytes) {
		lg->ballast = true;
		return SISY_OK;
	}
	if ((rc = sisy_fs_open(lg->o.fs, path,
			       SISY_O_WRITE | SISY_O_CREATE | SISY_O_TRUNC,
			       &f)) != SISY_OK)
		goto out;
	created = true;
	for (uint64_t off = 0; off < lg->o.reserve_bytes && rc == SISY_OK;) {
		size_t n = lg->o.reserve_bytes - off < lg->nzeros
			       ? (size_t)(lg->o.reserve_bytes - off)
			       : lg->nzeros;
		rc = sisy_file_pwrite(f, lg->zeros, n, off);
		off += n;
	}
	if (rc == SISY_OK)
		rc = sisy_file_sync(f);
	sisy_err crc = sisy_file_close(f);
	if (rc == SISY_OK)
		rc = crc;
	if (rc == SISY_OK)
		rc = sisy_fs_sync_dir(lg->o.fs, lg->dir);
out:
	if (rc == SISY_E_NOSPC) {
		sisy_log(lg->o.logger, SISY_LOG_WARN, "raftlog",
			 "%s: no room for the %llu-byte ballast; a full disk "
			 "may stall compaction",
			 path, (unsigned long long)lg->o.reserve_bytes);
		if (created)
			sisy_fs_unlink(lg->o.fs, path);
		return SISY_OK;
	}
	if (rc == SISY_OK)
		lg->ballast = true;
	return rc;
}

sisy_err raftlog_ballast_release(sisy_raftlog *lg)
{
	char path[4096];
	sisy_err rc = ballast_path(lg, path, sizeof path);
	if (rc == SISY_OK)
		rc = sisy_fs_unlink(lg->o.fs, path);
	if (rc == SISY_OK || rc == SISY_E_NOTFOUND)
		rc = sisy_fs_sync_dir(lg->o.fs, lg->dir);
	if (rc == SISY_OK) {
		lg->ballast = false;
		sisy_log(lg->o.logger, SISY_LOG_WARN, "raftlog",
			 "disk full: released the %llu-byte ballast so that "
			 "compaction can go through",
			 (unsigned long long)lg->o.reserve_bytes);
	}
	return rc;
}
