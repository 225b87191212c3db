/* wal_reader.c — reading a WAL or MANIFEST back, telling a torn tail from
 * corruption in the middle (format and rules: wal.h).
 *
 * The whole file is viewed at once (mapped when the file system can, read
 * otherwise): recovery reads logs nobody writes any more, and the view makes
 * the forward scan after a bad record simple. Every length and offset read
 * from the file is checked against the view's bounds before use. */
#include "wal.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "wal_format.h"

struct lsm_wal_reader {
	sisy_file *f;
	const uint8_t *data; /* the file's bytes: mapped, or `owned` */
	uint8_t *owned;
	size_t len;
	lsm_wal_kind kind;
	uint64_t number;
	uint64_t pos;  /* next record */
	uint64_t last; /* offset of the record last returned */
	uint64_t valid_end;
	bool header_done;
	bool torn;
	bool done;
	char path[];
};

static sisy_err wal_read_whole(lsm_wal_reader *r)
{
	uint64_t size;
	sisy_err rc = sisy_file_size(r->f, &size);
	if (rc != SISY_OK)
		return rc;
	if (size == 0)
		return SISY_OK;
	rc = sisy_file_map(r->f, &r->data, &r->len);
	if (rc == SISY_OK)
		return SISY_OK;
	if (rc != SISY_E_NOTSUP)
		return rc;
	if (size > SIZE_MAX / 2)
		return sisy_errf(SISY_E_TOOBIG, "wal_reader.c: %s is too big",
				 r->path);
	r->owned = malloc((size_t)size);
	if (r->owned == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "wal_reader.c: out of memory reading %s",
				 r->path);
	size_t got;
	rc = sisy_file_pread(r->f, r->owned, (size_t)size, 0, &got);
	if (rc != SISY_OK)
		return rc;
	r->data = r->owned;
	r->len = got;
	return SISY_OK;
}

sisy_err lsm_wal_reader_open(sisy_fs *fs, const char *path, lsm_wal_kind kind,
			     uint64_t number, lsm_wal_reader **out)
{
	size_t plen = strlen(path) + 1;
	lsm_wal_reader *r = calloc(1, sizeof *r + plen);
	if (r == NULL)
		return sisy_errf(SISY_E_NOMEM, "wal_reader.c: out of memory");
	memcpy(r->path, path, plen);
	r->kind = kind;
	r->number = number;
	sisy_err rc = sisy_fs_open(fs, path, SISY_O_READ, &r->f);
	if (rc == SISY_OK)
		rc = wal_read_whole(r);
	if (rc != SISY_OK) {
		lsm_wal_reader_close(r);
		return rc;
	}
	*out = r;
	return SISY_OK;
}

void lsm_wal_reader_close(lsm_wal_reader *r)
{
	if (r == NULL)
		return;
	if (r->f != NULL)
		sisy_file_close(r->f); /* also unmaps */
	free(r->owned);
	free(r);
}

/* The payload length of a valid record at off, or 0 when none is there.
 * The header checksum is tried first: it rejects a wrong offset for the
 * cost of hashing 20 bytes, which keeps the scan after a bad record linear
 * even through a huge torn record. */
static uint32_t wal_valid_at(const lsm_wal_reader *r, uint64_t off)
{
	if (off + LSM_WAL_RECORD_HEADER > r->len)
		return 0;
	const uint8_t *p = r->data + off;
	uint32_t len = sisy_get_u32(p + 4);
	if (len == 0 || len > LSM_WAL_MAX_RECORD ||
	    len > r->len - off - LSM_WAL_RECORD_HEADER ||
	    sisy_get_u32(p + 8) != wal_header_crc(r->number, off, len))
		return 0;
	uint32_t crc =
	    wal_record_crc(r->number, off, p + LSM_WAL_RECORD_HEADER, len);
	return crc == sisy_get_u32(p) ? len : 0;
}

/* A record at r->pos failed to verify: torn tail or corruption? */
static sisy_err wal_bad_record(lsm_wal_reader *r)
{
	uint64_t bad = r->pos;
	for (uint64_t off = bad + 1; off + LSM_WAL_RECORD_HEADER < r->len;
	     off++) {
		if (wal_valid_at(r, off) != 0)
			return sisy_errf(SISY_E_CORRUPT,
					 "wal_reader.c: %s: bad record at "
					 "offset %llu, followed by a valid "
					 "one at offset %llu; the log is "
					 "corrupt in the middle",
					 r->path, (unsigned long long)bad,
					 (unsigned long long)off);
	}
	r->torn = true;
	r->valid_end = bad;
	r->done = true;
	return SISY_E_NOTFOUND;
}

static sisy_err wal_check_header(lsm_wal_reader *r)
{
	r->header_done = true;
	if (r->len < LSM_WAL_HEADER) {
		/* Created but the header never made it to disk: nothing was
		 * ever acknowledged from this file. */
		r->torn = r->len > 0;
		r->valid_end = 0;
		r->done = true;
		return SISY_E_NOTFOUND;
	}
	const uint8_t *h = r->data;
	if (sisy_get_u32(h + 28) != sisy_checksum32(h, 28)) {
		/* Garbage or zeros where the header should be: a torn create
		 * unless a valid record (which names this file) follows. */
		r->pos = 0;
		return wal_bad_record(r);
	}
	if (memcmp(h, wal_magic(r->kind), 8) != 0)
		return sisy_errf(SISY_E_CORRUPT,
				 "wal_reader.c: %s: not a %s file (bad magic "
				 "at offset 0)",
				 r->path,
				 r->kind == LSM_WAL_LOG ? "WAL" : "MANIFEST");
	if (sisy_get_u32(h + 8) != LSM_WAL_VERSION)
		return sisy_errf(SISY_E_VERSION,
				 "wal_reader.c: %s: format version %u, this "
				 "build reads version %u",
				 r->path, sisy_get_u32(h + 8), LSM_WAL_VERSION);
	if (sisy_get_u64(h + 16) != r->number)
		return sisy_errf(SISY_E_CORRUPT,
				 "wal_reader.c: %s: header names file %llu; "
				 "the file was renamed or is corrupt",
				 r->path,
				 (unsigned long long)sisy_get_u64(h + 16));
	r->pos = LSM_WAL_HEADER;
	return SISY_OK;
}

sisy_err lsm_wal_next(lsm_wal_reader *r, sisy_slice *payload)
{
	if (!r->header_done) {
		sisy_err rc = wal_check_header(r);
		if (rc != SISY_OK)
			return rc;
	}
	if (r->done)
		return SISY_E_NOTFOUND;
	if (r->pos == r->len) {
		r->valid_end = r->pos;
		r->done = true;
		return SISY_E_NOTFOUND;
	}
	uint32_t len = wal_valid_at(r, r->pos);
	if (len == 0)
		return wal_bad_record(r);
	r->last = r->pos;
	*payload =
	    sisy_slice_make(r->data + r->pos + LSM_WAL_RECORD_HEADER, len);
	r->pos += LSM_WAL_RECORD_HEADER + len;
	return SISY_OK;
}

bool lsm_wal_reader_torn(const lsm_wal_reader *r)
{
	return r->torn;
}

uint64_t lsm_wal_reader_valid_end(const lsm_wal_reader *r)
{
	return r->valid_end;
}

uint64_t lsm_wal_reader_offset(const lsm_wal_reader *r)
{
	return r->last;
}
