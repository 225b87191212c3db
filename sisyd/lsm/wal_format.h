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

/* The fields every record checksum covers: file number, offset, length
 * and (version 2) the synced size. Returns the seed's length. */
static inline size_t wal_seed(uint8_t out[28], uint32_t version,
			      uint64_t number, uint64_t offset, uint32_t len,
			      uint64_t synced)
{
	sisy_put_u64(out, number);
	sisy_put_u64(out + 8, offset);
	sisy_put_u32(out + 16, len);
	if (version < 2)
		return 20;
	sisy_put_u64(out + 20, synced);
	return 28;
}

/* The checksum of a record header's fields (a cheap first test). */
static inline uint32_t wal_header_crc(uint32_t version, uint64_t number,
				      uint64_t offset, uint32_t len,
				      uint64_t synced)
{
	uint8_t h[28];
	size_t n = wal_seed(h, version, number, offset, len, synced);
	return sisy_checksum32(h, n);
}

/* The checksum of a record at `offset` of file `number`. */
static inline uint32_t wal_record_crc(uint32_t version, uint64_t number,
				      uint64_t offset, uint64_t synced,
				      const uint8_t *payload, uint32_t len)
{
	uint8_t seed[28];
	size_t n = wal_seed(seed, version, number, offset, len, synced);
	return sisy_checksum32_2(seed, n, payload, len);
}

/* Record header size of a format version. */
static inline uint32_t wal_record_header(uint32_t version)
{
	return version < 2 ? LSM_WAL_RECORD_HEADER_V1 : LSM_WAL_RECORD_HEADER;
}

#endif
