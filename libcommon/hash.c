/* hash.c — wrappers over libxxhash (see hash.h). */
#include "hash.h"

#define XXH_STATIC_LINKING_ONLY /* for the stack-allocated XXH3 state */
#include <xxhash.h>

uint32_t sisy_checksum32(const void *data, size_t len)
{
	return (uint32_t)XXH3_64bits(data, len);
}

uint32_t sisy_checksum32_2(const void *a, size_t alen, const void *b,
			   size_t blen)
{
	XXH3_state_t st;
	XXH3_64bits_reset(&st);
	XXH3_64bits_update(&st, a, alen);
	XXH3_64bits_update(&st, b, blen);
	return (uint32_t)XXH3_64bits_digest(&st);
}

uint64_t sisy_hash64(const void *data, size_t len, uint64_t seed)
{
	return XXH64(data, len, seed);
}
