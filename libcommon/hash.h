/* hash.h — the project's hashes, all from libxxhash.
 *
 *  sisy_checksum32: guards every on-disk block and record (XXH3-64, low 32
 *                   bits); fast enough to verify on every read.
 *  sisy_hash64:     xxh64 with a seed: Bloom filters (double hashing), the
 *                   shard ring, hash tables. Stable across versions and
 *                   machines, because it is persisted (filters) and shared
 *                   (the ring). */
#ifndef SISY_HASH_H
#define SISY_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t sisy_checksum32(const void *data, size_t len);
/* Checksum of two consecutive pieces, as if they were one buffer. */
uint32_t sisy_checksum32_2(const void *a, size_t alen, const void *b,
			   size_t blen);
uint64_t sisy_hash64(const void *data, size_t len, uint64_t seed);

#endif
