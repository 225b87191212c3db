/* wal_reader.c — reading a WAL or MANIFEST back, telling a torn tail from
 * corruption in the middle (format and rules: wal.h, READING).
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
	uint32_t version; /* of the header; 0 until it verified */
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

/* A record that verified. */
typedef struct wal_rec {
	uint32_t len;	 /* payload bytes */
	uint32_t hdr;	 /* header bytes */
	uint64_t synced; /* the file's synced size when it was written */
} wal_rec;

/* Whether a valid record of format `version` starts at off. The header
 * checksum is tried first: it rejects a wrong offset for the cost of
 * hashing 28 bytes, which keeps the scan after a bad record linear even
 * through a huge torn record. */
static bool wal_valid_at(const lsm_wal_reader *r, uint32_t version,
			 uint64_t off, wal_rec *out)
{
	uint32_t hdr = wal_record_header(version);
	if (off + hdr > r->len)
		return false;
	const uint8_t *p = r->data + off;
	uint32_t len = sisy_get_u32(p + 4);
	uint64_t synced = version < 2 ? 0 : sisy_get_u64(p + 8);
	uint32_t hcrc = sisy_get_u32(p + hdr - 4);
	if (len == 0 || len > LSM_WAL_MAX_RECORD || len > r->len - off - hdr ||
	    synced > off ||
	    hcrc != wal_header_crc(version, r->number, off, len, synced))
		return false;
	uint32_t crc =
	    wal_record_crc(version, r->number, off, synced, p + hdr, len);
	if (crc != sisy_get_u32(p))
		return false;
	*out = (wal_rec){.len = len, .hdr = hdr, .synced = synced};
	return true;
}

/* The bytes [from, to) hold a lost sector: some 512-byte-aligned sector
 * whose part in the range, up to the sector's end, is all zeros. That is
 * what a crash of a disk that reorders unsynced writes leaves where a
 * sector of an append never landed (zeros past the old end of the file). */
static bool wal_lost_sector(const lsm_wal_reader *r, uint64_t from, uint64_t to)
{
	for (uint64_t q = (from / LSM_WAL_SECTOR + 1) * LSM_WAL_SECTOR; q <= to;
	     q += LSM_WAL_SECTOR) {
		uint64_t a =
		    q - LSM_WAL_SECTOR < from ? from : q - LSM_WAL_SECTOR;
		uint64_t i = a;
		while (i < q && r->data[i] == 0)
			i++;
		if (i == q)
			return true;
	}
	return false;
}

static sisy_err wal_torn_at(lsm_wal_reader *r, uint64_t bad)
{
	r->torn = true;
	r->valid_end = bad;
	r->done = true;
	return SISY_E_NOTFOUND;
}

/* A record at r->pos failed to verify: torn tail or corruption? (wal.h,
 * READING.) Every later valid record is visited, since any of them may
 * vouch that the bad bytes were synced. A header that did not verify
 * leaves the version unknown: both formats are tried. */
static sisy_err wal_bad_record(lsm_wal_reader *r)
{
	uint64_t bad = r->pos;
	bool first = true;
	for (uint64_t off = bad + 1; off + LSM_WAL_RECORD_HEADER_V1 < r->len;) {
		wal_rec rec;
		uint32_t v = r->version != 0 ? r->version : LSM_WAL_VERSION;
		bool ok = wal_valid_at(r, v, off, &rec);
		if (!ok && r->version == 0) {
			v = 1;
			ok = wal_valid_at(r, v, off, &rec);
		}
		if (!ok) {
			off++;
			continue;
		}
		if (v < 2 || rec.synced > bad)
			return sisy_errf(SISY_E_CORRUPT,
					 "wal_reader.c: %s: bad record at "
					 "offset %llu, followed by a valid "
					 "one at offset %llu written after "
					 "the file was synced to %llu bytes; "
					 "the log is corrupt in the middle",
					 r->path, (unsigned long long)bad,
					 (unsigned long long)off,
					 (unsigned long long)rec.synced);
		if (first && !wal_lost_sector(r, bad, off))
			return sisy_errf(SISY_E_CORRUPT,
					 "wal_reader.c: %s: bad record at "
					 "offset %llu, followed by a valid "
					 "one at offset %llu, and the damage "
					 "is no lost write; the log is "
					 "corrupt in the middle",
					 r->path, (unsigned long long)bad,
					 (unsigned long long)off);
		first = false;
		off += rec.hdr + rec.len;
	}
	return wal_torn_at(r, bad);
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
	uint32_t version = sisy_get_u32(h + 8);
	if (version < 1 || version > LSM_WAL_VERSION)
		return sisy_errf(SISY_E_VERSION,
				 "wal_reader.c: %s: format version %u, this "
				 "build reads versions 1 to %u",
				 r->path, version, LSM_WAL_VERSION);
	if (sisy_get_u64(h + 16) != r->number)
		return sisy_errf(SISY_E_CORRUPT,
				 "wal_reader.c: %s: header names file %llu; "
				 "the file was renamed or is corrupt",
				 r->path,
				 (unsigned long long)sisy_get_u64(h + 16));
	r->version = version;
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
	wal_rec rec;
	if (!wal_valid_at(r, r->version, r->pos, &rec))
		return wal_bad_record(r);
	r->last = r->pos;
	*payload = sisy_slice_make(r->data + r->pos + rec.hdr, rec.len);
	r->pos += rec.hdr + rec.len;
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
