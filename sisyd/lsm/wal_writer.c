/* wal_writer.c — appending records to a WAL or MANIFEST (format: wal.h).
 *
 * Each record goes out in one append (header and payload copied into a
 * scratch buffer), so the group commit costs one write(2). Invariants:
 * `size` is the length of the file's valid prefix; after a failed append
 * the file is truncated back to it, so later records never follow a partial
 * one (which recovery would rightly call corruption). `synced` <= `size` is
 * the prefix the last successful fdatasync made durable; every record
 * carries it, so a reader can tell damage in synced bytes (corruption) from
 * unsynced writes a crash lost (a torn tail). */
#include "wal.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal_format.h"

/* Payloads above this are written in two appends rather than copied. */
#define WAL_COPY_MAX (1u << 20)

struct lsm_wal_writer {
	sisy_file *f;
	uint64_t number;
	uint64_t size;
	uint64_t synced;
	bool broken;
	sisy_buf scratch;
	char path[];
};

sisy_err lsm_wal_create(sisy_fs *fs, const char *path, lsm_wal_kind kind,
			uint64_t number, lsm_wal_writer **out)
{
	size_t plen = strlen(path) + 1;
	lsm_wal_writer *w = calloc(1, sizeof *w + plen);
	if (w == NULL)
		return sisy_errf(SISY_E_NOMEM, "wal_writer.c: out of memory");
	memcpy(w->path, path, plen);
	w->number = number;
	sisy_err rc = sisy_fs_open(
	    fs, path, SISY_O_WRITE | SISY_O_CREATE | SISY_O_EXCL, &w->f);
	if (rc != SISY_OK)
		goto fail;
	uint8_t h[LSM_WAL_HEADER];
	wal_encode_header(h, kind, number);
	if ((rc = sisy_file_append(w->f, h, sizeof h)) != SISY_OK)
		goto fail;
	w->size = LSM_WAL_HEADER;
	*out = w;
	return SISY_OK;
fail:
	if (w->f != NULL) {
		sisy_file_close(w->f);
		sisy_fs_unlink(fs, path);
	}
	free(w);
	return rc;
}

/* Cuts the file back to its valid prefix after a failed append. */
static void wal_undo(lsm_wal_writer *w, sisy_err rc)
{
	char msg[512];
	snprintf(msg, sizeof msg, "%s", sisy_errmsg());
	if (sisy_file_truncate(w->f, w->size) != SISY_OK) {
		char why[256];
		snprintf(why, sizeof why, "%s", sisy_errmsg());
		w->broken = true;
		sisy_errf(rc,
			  "%s; cutting %s back to %llu bytes failed too: %s",
			  msg, w->path, (unsigned long long)w->size, why);
	}
}

sisy_err lsm_wal_add(lsm_wal_writer *w, sisy_slice payload)
{
	assert(!w->broken);
	if (payload.len == 0 || payload.len > LSM_WAL_MAX_RECORD)
		return sisy_errf(SISY_E_TOOBIG,
				 "wal_writer.c: record of %zu bytes out of "
				 "range 1..%u",
				 payload.len, LSM_WAL_MAX_RECORD);
	uint8_t h[LSM_WAL_RECORD_HEADER];
	uint32_t len = (uint32_t)payload.len;
	sisy_put_u32(h, wal_record_crc(LSM_WAL_VERSION, w->number, w->size,
				       w->synced, payload.data, len));
	sisy_put_u32(h + 4, len);
	sisy_put_u64(h + 8, w->synced);
	sisy_put_u32(h + 16, wal_header_crc(LSM_WAL_VERSION, w->number, w->size,
					    len, w->synced));
	sisy_err rc;
	if (payload.len <= WAL_COPY_MAX) {
		w->scratch.len = 0;
		rc = sisy_buf_reserve(&w->scratch, sizeof h + payload.len);
		if (rc != SISY_OK)
			return rc;
		memcpy(w->scratch.data, h, sizeof h);
		memcpy(w->scratch.data + sizeof h, payload.data, payload.len);
		rc = sisy_file_append(w->f, w->scratch.data,
				      sizeof h + payload.len);
	} else {
		rc = sisy_file_append(w->f, h, sizeof h);
		if (rc == SISY_OK)
			rc = sisy_file_append(w->f, payload.data, payload.len);
	}
	if (rc != SISY_OK) {
		wal_undo(w, rc);
		return rc;
	}
	w->size += sizeof h + payload.len;
	return SISY_OK;
}

sisy_err lsm_wal_sync(lsm_wal_writer *w)
{
	sisy_err rc = sisy_file_sync(w->f);
	if (rc != SISY_OK)
		w->broken = true;
	else
		w->synced = w->size;
	return rc;
}

bool lsm_wal_broken(const lsm_wal_writer *w)
{
	return w->broken;
}

uint64_t lsm_wal_size(const lsm_wal_writer *w)
{
	return w->size;
}

uint64_t lsm_wal_number(const lsm_wal_writer *w)
{
	return w->number;
}

sisy_err lsm_wal_close(lsm_wal_writer *w)
{
	if (w == NULL)
		return SISY_OK;
	sisy_err rc = sisy_file_close(w->f);
	sisy_buf_free(&w->scratch);
	free(w);
	return rc;
}
