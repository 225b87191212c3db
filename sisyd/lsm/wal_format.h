/* wal_format.h — the checksums and header codec shared by wal_writer.c and
 * wal_reader.c (layout: wal.h). Internal to the record log. */
#ifndef SISY_LSM_WAL_FORMAT_H
#define SISY_LSM_WAL_FORMAT_H

#include <stdint.h>
#include <string.h>

#include "coding.h"
#include "hash.h"
#include "wal.h"

static inline const char *wal_magic(lsm_wal_kind kind)
{
	return kind == LSM_WAL_LOG ? "SISYWAL" : "SISYMAN"; /* + NUL: 8 */
}

static inline void wal_encode_header(uint8_t h[LSM_WAL_HEADER],
				     lsm_wal_kind kind, uint64_t number)
{
	memset(h, 0, LSM_WAL_HEADER);
	memcpy(h, wal_magic(kind), 8);
	sisy_put_u32(h + 8, LSM_WAL_VERSION);
	sisy_put_u64(h + 16, number);
	sisy_put_u32(h + 28, sisy_checksum32(h, 28));
}

/* The checksum of a record header's fields (a cheap first test). */
static inline uint32_t wal_header_crc(uint64_t number, uint64_t offset,
				      uint32_t len)
{
	uint8_t h[20];
	sisy_put_u64(h, number);
	sisy_put_u64(h + 8, offset);
	sisy_put_u32(h + 16, len);
	return sisy_checksum32(h, sizeof h);
}

/* The checksum of a record at `offset` of file `number`. */
static inline uint32_t wal_record_crc(uint64_t number, uint64_t offset,
				      const uint8_t *payload, uint32_t len)
{
	uint8_t seed[20];
	sisy_put_u64(seed, number);
	sisy_put_u64(seed + 8, offset);
	sisy_put_u32(seed + 16, len);
	return sisy_checksum32_2(seed, sizeof seed, payload, len);
}

#endif
