/* cache.h — a sharded LRU cache bounded in bytes (the block cache), also used
 * with charge 1 per entry as the table cache's store.
 *
 * Entries are reference-counted: lookup/insert return a handle that pins the
 * entry until released; an evicted or erased entry is freed (its deleter
 * called) when its last handle goes. Capacity is split evenly over 2^bits
 * shards, each with its own mutex, so concurrent readers rarely contend.
 * Usage may exceed capacity only by pinned entries. Thread-safe. */
#ifndef SISY_LSM_CACHE_H
#define SISY_LSM_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct lsm_cache lsm_cache;
typedef struct lsm_cache_handle lsm_cache_handle;
typedef void (*lsm_cache_deleter)(const void *key, size_t klen, void *value);

/* NULL on ENOMEM. shard_bits 0..8 (4 is a good default). */
lsm_cache *lsm_cache_new(size_t capacity, int shard_bits);
/* Every handle must have been released. */
void lsm_cache_free(lsm_cache *c);

/* Inserts (replacing an entry with the same key) and returns a pinned handle.
 * The key bytes are copied. NULL on ENOMEM (deleter is then called). */
lsm_cache_handle *lsm_cache_insert(lsm_cache *c, const void *key, size_t klen,
				   void *value, size_t charge,
				   lsm_cache_deleter deleter);
/* A pinned handle, or NULL when absent. */
lsm_cache_handle *lsm_cache_lookup(lsm_cache *c, const void *key, size_t klen);
void lsm_cache_release(lsm_cache *c, lsm_cache_handle *h);
void *lsm_cache_value(lsm_cache_handle *h);
/* Drops the entry (freed once unpinned). */
void lsm_cache_erase(lsm_cache *c, const void *key, size_t klen);
/* A fresh id, for callers that share the cache and prefix their keys. */
uint64_t lsm_cache_new_id(lsm_cache *c);
size_t lsm_cache_usage(lsm_cache *c);
size_t lsm_cache_capacity(lsm_cache *c);

#endif
