/* bloom.c — building and probing Bloom filters (layout in bloom.h).
 *
 * The builder keeps one 64-bit hash per key rather than the keys, so a
 * table's filter costs 8 bytes per key while it is built, whatever the key
 * size, and the bit array is sized once the key count is known.
 */
#include "bloom.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void lsm_bloom_builder_init(lsm_bloom_builder *b, int bits_per_key)
{
	assert(bits_per_key >= 1);
	memset(b, 0, sizeof *b);
	b->bits_per_key = bits_per_key;
}

void lsm_bloom_builder_free(lsm_bloom_builder *b)
{
	free(b->hashes);
	b->hashes = NULL;
	b->n = b->cap = 0;
}

sisy_err lsm_bloom_builder_add(lsm_bloom_builder *b, sisy_slice user_key)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1024;
		uint64_t *h = realloc(b->hashes, cap * sizeof *h);
		if (h == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "bloom.c: out of memory for %zu keys",
					 cap);
		b->hashes = h;
		b->cap = cap;
	}
	b->hashes[b->n++] = lsm_bloom_hash(user_key);
	return SISY_OK;
}

static int bloom_k(int bits_per_key)
{
	/* round(bits_per_key * ln 2) in integers (no libm) */
	long k = ((long)bits_per_key * 6931 + 5000) / 10000;
	return k < 1 ? 1 : k > LSM_BLOOM_MAX_K ? LSM_BLOOM_MAX_K : (int)k;
}

/* The probe sequence of bloom.h. */
static inline uint32_t bloom_bit(uint32_t h1, uint32_t h2, uint32_t i,
				 uint64_t nbits)
{
	uint32_t g = h1 + i * h2;
	return (uint32_t)(((uint64_t)g * nbits) >> 32);
}

sisy_err lsm_bloom_builder_finish(lsm_bloom_builder *b, sisy_buf *out)
{
	int k = bloom_k(b->bits_per_key);
	size_t nbytes = (b->n * (size_t)b->bits_per_key + 7) / 8;
	if (nbytes < 8)
		nbytes = 8;
	if (nbytes > LSM_BLOOM_MAX_BYTES)
		nbytes = LSM_BLOOM_MAX_BYTES; /* more false positives, still
						 correct */
	sisy_err rc = sisy_buf_reserve(out, nbytes + 1);
	if (rc != SISY_OK)
		return rc;
	uint8_t *bits = out->data + out->len;
	memset(bits, 0, nbytes);
	uint64_t nbits = (uint64_t)nbytes * 8;
	for (size_t j = 0; j < b->n; j++) {
		uint32_t h1 = (uint32_t)b->hashes[j];
		uint32_t h2 = (uint32_t)(b->hashes[j] >> 32);
		for (int i = 0; i < k; i++) {
			uint32_t bit = bloom_bit(h1, h2, (uint32_t)i, nbits);
			bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
		}
	}
	bits[nbytes] = (uint8_t)k;
	out->len += nbytes + 1;
	b->n = 0;
	return SISY_OK;
}

bool lsm_bloom_valid(const uint8_t *filter, size_t len)
{
	(void)filter; /* any k is acceptable: see bloom.h */
	return len >= 9 && len - 1 <= LSM_BLOOM_MAX_BYTES;
}

bool lsm_bloom_may_match(const uint8_t *filter, size_t len, uint64_t hash)
{
	assert(lsm_bloom_valid(filter, len));
	uint32_t k = filter[len - 1];
	if (k < 1 || k > LSM_BLOOM_MAX_K)
		return true;
	uint64_t nbits = (uint64_t)(len - 1) * 8;
	uint32_t h1 = (uint32_t)hash, h2 = (uint32_t)(hash >> 32);
	/* The probes hit unrelated cache lines of a filter that is often not
	 * in cache: start every load first, so the misses overlap instead of
	 * following one another. */
	uint32_t bits[LSM_BLOOM_MAX_K];
	for (uint32_t i = 0; i < k; i++) {
		bits[i] = bloom_bit(h1, h2, i, nbits);
		__builtin_prefetch(filter + (bits[i] >> 3));
	}
	for (uint32_t i = 0; i < k; i++) {
		if ((filter[bits[i] >> 3] & (1u << (bits[i] & 7))) == 0)
			return false;
	}
	return true;
}
