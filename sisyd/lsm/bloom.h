/* bloom.h — the Bloom filter each SSTable keeps over its user keys.
 *
 * A cache-blocked Bloom filter: all probes of a key fall in one 64-byte
 * block, so a lookup costs one cache miss instead of k (the filters of a
 * database rarely stay in cache, and a missing key is checked against a
 * table on every level). The price is a slightly higher false-positive
 * rate at the same size: about 1.0% instead of 0.82% at 10 bits per key.
 *
 * FILTER LAYOUT
 *   block[nblocks]  64 bytes = 512 bits each, nblocks >= 1; bit j of a
 *                   block is byte[j / 8] >> (j % 8) & 1
 *   k               u8, the number of probes (1..30)
 *
 * PROBES
 *   h  = xxh64(user_key, seed 0)            (sisy_hash64)
 *   block = (h >> 32) * nblocks >> 32       (the high half picks the block)
 *   g_0 = low 32 bits of h; g_(i+1) = g_i * 0x9e3779b9 mod 2^32
 *   probe i (0 <= i < k) tests bit g_(i+1) >> 23 of the block (its top 9
 *   bits: a position in 0..511)
 * Two hashes from one xxh64, as double hashing does, but the in-block
 * positions come from a multiplicative sequence (as RocksDB's cache-local
 * filter): plain double hashing, (h1 + i * h2) mod 512, measured up to
 * twice the false positives of theory inside a 512-bit block.
 * Sizing: nblocks = ceil(keys * bits_per_key / 512), at least 1;
 * k = round(bits_per_key * ln 2), clamped to 1..30.
 *
 * A filter whose k byte is outside 1..30 (a future format) matches every
 * key, so it can only cost time, never a wrong answer.
 */
#ifndef SISY_LSM_BLOOM_H
#define SISY_LSM_BLOOM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "hash.h"

#define LSM_BLOOM_MAX_K 30
#define LSM_BLOOM_BLOCK 64 /* bytes */
/* Filters are at most this big (a table of ~400M keys at 10 bits/key). */
#define LSM_BLOOM_MAX_BYTES ((size_t)1 << 29)

typedef struct lsm_bloom_builder {
	uint64_t *hashes; /* one per key added */
	size_t n, cap;
	int bits_per_key;
} lsm_bloom_builder;

void lsm_bloom_builder_init(lsm_bloom_builder *b, int bits_per_key);
void lsm_bloom_builder_free(lsm_bloom_builder *b);
/* Remembers a user key (the caller skips repeats of the same key). */
sisy_err lsm_bloom_builder_add(lsm_bloom_builder *b, sisy_slice user_key);
/* Appends the filter for every key added so far to out; the builder is
 * emptied. */
sisy_err lsm_bloom_builder_finish(lsm_bloom_builder *b, sisy_buf *out);

/* The probes' hash of a user key (so a caller can hash once). */
static inline uint64_t lsm_bloom_hash(sisy_slice user_key)
{
	return sisy_hash64(user_key.data, user_key.len, 0);
}
/* False only if the key was certainly not added. len >= 1. */
bool lsm_bloom_may_match(const uint8_t *filter, size_t len, uint64_t hash);
/* Checks a filter's shape (length, k): false if it is malformed. */
bool lsm_bloom_valid(const uint8_t *filter, size_t len);

#endif
