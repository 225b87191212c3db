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

/* The builder hashes every key of every table written (flushes and
 * compactions): xxh64 compiled inline here, from the same header as the
 * library's, so the same function as lsm_bloom_hash (sisy_hash64), without
 * a call into the shared library per key. test_bloom checks they agree. */
#define XXH_INLINE_ALL
#include <xxhash.h>

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
	b->hashes[b->n++] = XXH64(user_key.data, user_key.len, 0);
	return SISY_OK;
}

static int bloom_k(int bits_per_key)
{
	/* round(bits_per_key * ln 2) in integers (no libm) */
	long k = ((long)bits_per_key * 6931 + 5000) / 10000;
	return k < 1 ? 1 : k > LSM_BLOOM_MAX_K ? LSM_BLOOM_MAX_K : (int)k;
}

/* The probe sequence (bloom.h): g is the low half of the key's hash; each
 * probe multiplies it by an odd constant and takes the top 9 bits. */
#define BLOOM_MULT 0x9e3779b9u

/* The block of the filter that holds a key's probes. */
static inline size_t bloom_block(uint64_t hash, size_t nblocks)
{
	return (size_t)(((hash >> 32) * (uint64_t)nblocks) >> 32);
}

sisy_err lsm_bloom_builder_finish(lsm_bloom_builder *b, sisy_buf *out)
{
	int k = bloom_k(b->bits_per_key);
	size_t bits = b->n * (size_t)b->bits_per_key;
	size_t nblocks =
	    (bits + 8 * LSM_BLOOM_BLOCK - 1) / (8 * LSM_BLOOM_BLOCK);
	if (nblocks < 1)
		nblocks = 1;
	if (nblocks > LSM_BLOOM_MAX_BYTES / LSM_BLOOM_BLOCK)
		nblocks =
		    LSM_BLOOM_MAX_BYTES / LSM_BLOOM_BLOCK; /* still correct */
	size_t nbytes = nblocks * LSM_BLOOM_BLOCK;
	sisy_err rc = sisy_buf_reserve(out, nbytes + 1);
	if (rc != SISY_OK)
		return rc;
	uint8_t *bytes = out->data + out->len;
	memset(bytes, 0, nbytes);
	for (size_t j = 0; j < b->n; j++) {
		uint8_t *blk = bytes + bloom_block(b->hashes[j], nblocks) *
					   LSM_BLOOM_BLOCK;
		uint32_t g = (uint32_t)b->hashes[j];
		for (int i = 0; i < k; i++) {
			g *= BLOOM_MULT;
			uint32_t bit = g >> 23;
			blk[bit >> 3] |= (uint8_t)(1u << (bit & 7));
		}
	}
	bytes[nbytes] = (uint8_t)k;
	out->len += nbytes + 1;
	b->n = 0;
	return SISY_OK;
}

bool lsm_bloom_valid(const uint8_t *filter, size_t len)
{
	(void)filter; /* any k is acceptable: see bloom.h */
	return len >= LSM_BLOOM_BLOCK + 1 && len - 1 <= LSM_BLOOM_MAX_BYTES &&
	       (len - 1) % LSM_BLOOM_BLOCK == 0;
}

bool lsm_bloom_may_match(const uint8_t *filter, size_t len, uint64_t hash)
{
	assert(lsm_bloom_valid(filter, len));
	uint32_t k = filter[len - 1];
	if (k < 1 || k > LSM_BLOOM_MAX_K)
		return true;
	const uint8_t *blk =
	    filter +
	    bloom_block(hash, (len - 1) / LSM_BLOOM_BLOCK) * LSM_BLOOM_BLOCK;
	uint32_t g = (uint32_t)hash;
	for (uint32_t i = 0; i < k; i++) {
		g *= BLOOM_MULT;
		uint32_t bit = g >> 23;
		if ((blk[bit >> 3] & (1u << (bit & 7))) == 0)
			return false;
	}
	return true;
}
