/* table_format.h — the framing of an SSTable: block handles, the block
 * trailer and the footer. Internal to the table layer; docs/format-sstable.md
 * describes the same bytes for readers of the format.
 *
 * FILE
 *   data block*      (ikey -> value, block.h layout)        each + trailer
 *   filter block?    (bloom.h layout; absent when bloom bits = 0 or no keys)
 *   index block      (separator ikey -> data block handle)       + trailer
 *   footer           LSM_FOOTER_SIZE bytes
 *
 * BLOCK HANDLE   offset:varint64 size:varint64   (size excludes the trailer)
 *
 * BLOCK TRAILER  (5 bytes after every block's stored bytes)
 *   type      u8   LSM_BLOCK_RAW (0) or LSM_BLOCK_ZLIB (1)
 *   checksum  u32  sisy_checksum32(stored bytes || type byte)
 * A ZLIB block stores  raw_len:varint32 || raw deflate stream (RFC 1951, no
 * zlib header: the trailer's checksum already guards it); it decompresses to
 * exactly raw_len bytes of block.h layout. Filter and index blocks are
 * always RAW.
 *
 * FOOTER (56 bytes, at file_size - 56)
 *   [0, 40)   filter handle, index handle, zero padding
 *             (a filter handle of size 0 means "no filter")
 *   [40, 44)  u32 format version (LSM_TABLE_VERSION)
 *   [44, 48)  u32 sisy_checksum32 of bytes [0, 44)
 *   [48, 56)  u64 magic LSM_TABLE_MAGIC (the bytes "sisytbl1")
 */
#ifndef SISY_LSM_TABLE_FORMAT_H
#define SISY_LSM_TABLE_FORMAT_H

#include <stdint.h>
#include <string.h>

#include "coding.h"
#include "err.h"
#include "hash.h"

#define LSM_TABLE_MAGIC	   UINT64_C(0x316c627479736973)
#define LSM_TABLE_VERSION  1
#define LSM_FOOTER_SIZE	   56
#define LSM_FOOTER_HANDLES 40
#define LSM_BLOCK_TRAILER  5
#define LSM_HANDLE_MAX	   (2 * SISY_VARINT64_MAX)

enum { LSM_BLOCK_RAW = 0, LSM_BLOCK_ZLIB = 1 };

typedef struct lsm_block_handle {
	uint64_t offset;
	uint64_t size;
} lsm_block_handle;

static inline size_t lsm_handle_encode(uint8_t *p, lsm_block_handle h)
{
	size_t n = sisy_put_varint64(p, h.offset);
	return n + sisy_put_varint64(p + n, h.size);
}

/* NULL when [p, end) does not start with a handle. */
static inline const uint8_t *
lsm_handle_decode(const uint8_t *p, const uint8_t *end, lsm_block_handle *h)
{
	p = sisy_get_varint64(p, end, &h->offset);
	if (p != NULL)
		p = sisy_get_varint64(p, end, &h->size);
	return p;
}

typedef struct lsm_footer {
	lsm_block_handle filter;
	lsm_block_handle index;
} lsm_footer;

static inline void lsm_footer_encode(uint8_t out[LSM_FOOTER_SIZE],
				     const lsm_footer *f)
{
	memset(out, 0, LSM_FOOTER_SIZE);
	size_t n = lsm_handle_encode(out, f->filter);
	lsm_handle_encode(out + n, f->index);
	sisy_put_u32(out + 40, LSM_TABLE_VERSION);
	sisy_put_u32(out + 44, sisy_checksum32(out, 44));
	sisy_put_u64(out + 48, LSM_TABLE_MAGIC);
}

/* SISY_E_CORRUPT (bad magic or checksum, malformed handles) or
 * SISY_E_VERSION; no message attached (the caller knows the file). */
static inline sisy_err lsm_footer_decode(const uint8_t in[LSM_FOOTER_SIZE],
					 lsm_footer *f)
{
	if (sisy_get_u64(in + 48) != LSM_TABLE_MAGIC)
		return SISY_E_CORRUPT;
	if (sisy_get_u32(in + 44) != sisy_checksum32(in, 44))
		return SISY_E_CORRUPT;
	if (sisy_get_u32(in + 40) != LSM_TABLE_VERSION)
		return SISY_E_VERSION;
	const uint8_t *p =
	    lsm_handle_decode(in, in + LSM_FOOTER_HANDLES, &f->filter);
	if (p == NULL ||
	    lsm_handle_decode(p, in + LSM_FOOTER_HANDLES, &f->index) == NULL)
		return SISY_E_CORRUPT;
	return SISY_OK;
}

/* The checksum a trailer carries: over the stored bytes and the type byte,
 * which follow each other in the file (data[size] is the type). */
static inline uint32_t lsm_block_checksum(const uint8_t *data, size_t size)
{
	return sisy_checksum32(data, size + 1);
}

#endif
