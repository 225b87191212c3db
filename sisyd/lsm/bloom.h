/* bloom.h — the Bloom filter each SSTable keeps over its user keys.
 *
 * FILTER LAYOUT
 *   bits[nbytes]  the bit array, nbits = 8 * nbytes (>= 64); bit i is
 *                 bits[i / 8] >> (i % 8) & 1
 *   k             u8, the number of probes (1..30)
 *
 * PROBES
 *   h  = xxh64(user_key, seed 0)            (sisy_hash64)
 *   h1 = low 32 bits of h, h2 = high 32 bits of h
 *   probe i (0 <= i < k) tests bit  ((h1 + i * h2) mod 2^32) * nbits >> 32
 * (double hashing; the multiply-shift maps a 32-bit value onto [0, nbits)
 * without a division). k = round(bits_per_key * ln 2), clamped to 1..30.
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
/* Filters are at most 2^32 bits, so probes fit the 32-bit mapping. */
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
