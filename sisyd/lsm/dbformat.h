/* dbformat.h — internal keys and file names shared by every layer of the
 * engine (memtable, tables, versions). Internal; not installed.
 *
 * INTERNAL KEY
 *   user_key bytes || trailer (8 bytes, little-endian) where
 *   trailer = (sequence << 8) | type,  sequence < 2^56.
 * Order: user key ascending (memcmp), then trailer DESCENDING, so the newest
 * version of a key comes first. To find the newest version visible at
 * sequence s, seek to lsm_ikey(user_key, s, LSM_TYPE_SEEK).
 *
 * FILES in a database directory
 *   NNNNNN.sst        SSTables            (lsm_file_name(.., LSM_FILE_TABLE))
 *   NNNNNN.log        write-ahead logs    (LSM_FILE_WAL)
 *   MANIFEST-NNNNNN   version edits       (LSM_FILE_MANIFEST)
 *   CURRENT           name of the live MANIFEST, replaced atomically
 *   LOCK              held while open
 *   *.tmp             half-written files, removed at open
 * One counter numbers all of them.
 */
#ifndef SISY_LSM_DBFORMAT_H
#define SISY_LSM_DBFORMAT_H

#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "coding.h"

#define LSM_MAX_SEQ    ((UINT64_C(1) << 56) - 1)
#define LSM_NUM_LEVELS 7

typedef enum lsm_vtype {
	LSM_TYPE_DELETE = 0,
	LSM_TYPE_VALUE = 1,
} lsm_vtype;
/* The highest type: seeks use it so they land on every type at a sequence. */
#define LSM_TYPE_SEEK LSM_TYPE_VALUE

static inline uint64_t lsm_trailer(uint64_t seq, lsm_vtype t)
{
	return (seq << 8) | (uint64_t)t;
}

/* Writes the internal key for (user_key, seq, t) into buf (cleared first). */
static inline sisy_err lsm_ikey(sisy_buf *buf, sisy_slice user_key,
				uint64_t seq, lsm_vtype t)
{
	buf->len = 0;
	sisy_err rc = sisy_buf_append(buf, user_key.data, user_key.len);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(buf, lsm_trailer(seq, t));
	return rc;
}

/* Accessors; ikey.len >= 8 is a precondition (callers validate input). */
static inline sisy_slice lsm_ikey_user(sisy_slice ikey)
{
	return sisy_slice_make(ikey.data, ikey.len - 8);
}
static inline uint64_t lsm_ikey_trailer(sisy_slice ikey)
{
	return sisy_get_u64(ikey.data + ikey.len - 8);
}
static inline uint64_t lsm_ikey_seq(sisy_slice ikey)
{
	return lsm_ikey_trailer(ikey) >> 8;
}
static inline lsm_vtype lsm_ikey_type(sisy_slice ikey)
{
	return (lsm_vtype)(lsm_ikey_trailer(ikey) & 0xff);
}

/* User-key order: memcmp, shorter first on a common prefix (as
 * sisy_slice_cmp), eight bytes at a time as big-endian words: for short
 * keys cheaper than a call to memcmp (flushes, compactions and lookups
 * compare keys of ~16 bytes millions of times). */
static inline int lsm_user_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
			       size_t blen)
{
	size_t n = alen < blen ? alen : blen, i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x, y;
		memcpy(&x, a + i, 8);
		memcpy(&y, b + i, 8);
		if (x != y) {
			x = __builtin_bswap64(x);
			y = __builtin_bswap64(y);
			return x < y ? -1 : 1;
		}
	}
	for (; i < n; i++)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return alen < blen ? -1 : alen > blen;
}

/* The internal-key order described above. */
static inline int lsm_ikey_cmp(sisy_slice a, sisy_slice b)
{
	int c = lsm_user_cmp(a.data, a.len - 8, b.data, b.len - 8);
	if (c != 0)
		return c;
	uint64_t ta = lsm_ikey_trailer(a), tb = lsm_ikey_trailer(b);
	return ta > tb ? -1 : ta < tb;
}

/* A comparator over raw keys, for blocks and iterators. */
typedef int (*lsm_cmp_fn)(sisy_slice a, sisy_slice b);

typedef enum lsm_file_kind {
	LSM_FILE_TABLE,
	LSM_FILE_WAL,
	LSM_FILE_MANIFEST,
} lsm_file_kind;

/* "<dir>/000042.sst" etc. Returns snprintf's result. */
static inline int lsm_file_name(char *out, size_t cap, const char *dir,
				uint64_t num, lsm_file_kind kind)
{
	switch (kind) {
	case LSM_FILE_TABLE:
		return snprintf(out, cap, "%s/%06llu.sst", dir,
				(unsigned long long)num);
	case LSM_FILE_WAL:
		return snprintf(out, cap, "%s/%06llu.log", dir,
				(unsigned long long)num);
	case LSM_FILE_MANIFEST:
	default:
		return snprintf(out, cap, "%s/MANIFEST-%06llu", dir,
				(unsigned long long)num);
	}
}

#endif
