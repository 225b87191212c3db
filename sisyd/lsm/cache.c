/* cache.c — the sharded LRU cache of cache.h (block cache, table cache).
 *
 * DESIGN
 *   2^bits shards, each a mutex, a chained hash table that doubles when its
 *   load passes 1, and two circular lists:
 *     lru     entries in the cache that nobody pins (refs == 1), oldest first:
 *             the eviction candidates;
 *     in_use  entries in the cache that some handle pins (refs >= 2).
 *   An entry's refs count its handles plus one while it is in the cache.
 *   An erased or replaced entry leaves the table and both lists at once
 *   (in_cache = false); it is freed when its last handle goes.
 *
 * INVARIANTS (per shard, under its mutex)
 *   usage = sum of the charges of entries with in_cache;
 *   after an insert, usage > capacity only if every entry on lru is gone,
 *   i.e. only pinned entries keep it above capacity;
 *   capacities of the shards add up exactly to the cache's capacity (the
 *   remainder of the split goes to the first shards), so a table cache of
 *   max_open entries never holds more than max_open unpinned files.
 *
 * Deleters run after the shard mutex is released, so a deleter may be slow
 * (closing a file) or use another cache without holding this one up.
 */
#include "cache.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "hash.h"

#define CACHE_MIN_BUCKETS    16
#define CACHE_MAX_SHARD_BITS 8

typedef struct cache_entry {
	struct cache_entry *next_hash;	 /* bucket chain; free list when dead */
	struct cache_entry *prev, *next; /* lru or in_use list */
	lsm_cache_deleter deleter;
	void *value;
	size_t charge;
	uint64_t hash;
	uint32_t refs;
	bool in_cache;
	size_t klen;
	uint8_t key[]; /* klen bytes */
} cache_entry;

typedef struct cache_shard {
	pthread_mutex_t mu;
	size_t capacity;
	size_t usage;
	cache_entry lru;    /* dummy head: lru.next is the oldest */
	cache_entry in_use; /* dummy head */
	cache_entry **buckets;
	size_t nbuckets; /* power of two */
	size_t count;	 /* entries in the table */
} cache_shard;

struct lsm_cache {
	size_t capacity;
	int shard_bits;
	_Atomic uint64_t next_id;
	cache_shard shards[];
};

static void list_init(cache_entry *head)
{
	head->next = head;
	head->prev = head;
}

static void list_remove(cache_entry *e)
{
	e->next->prev = e->prev;
	e->prev->next = e->next;
	e->next = e->prev = NULL;
}

/* Appends e as the newest entry of the list. */
static void list_append(cache_entry *head, cache_entry *e)
{
	e->next = head;
	e->prev = head->prev;
	e->prev->next = e;
	e->next->prev = e;
}

/* The keys the engine uses are 8 bytes (table numbers) or 16 (cache id,
 * block offset): mix those inline (a multiply and the splitmix64 finaliser,
 * so both the top bits, which pick the shard, and the low bits, which pick
 * the bucket, depend on every input bit). Hashes never leave the process. */
static inline uint64_t key_hash(const void *key, size_t klen)
{
	if (klen != 8 && klen != 16)
		return sisy_hash64(key, klen, 0);
	const uint8_t *p = key;
	uint64_t h = sisy_get_u64(p) * UINT64_C(0x9e3779b97f4a7c15);
	if (klen == 16)
		h ^= sisy_get_u64(p + 8) + UINT64_C(0x632be59bd9b4e019);
	h ^= h >> 30;
	h *= UINT64_C(0xbf58476d1ce4e5b9);
	h ^= h >> 27;
	h *= UINT64_C(0x94d049bb133111eb);
	h ^= h >> 31;
	return h;
}

static cache_shard *shard_of(lsm_cache *c, uint64_t hash)
{
	if (c->shard_bits == 0)
		return &c->shards[0];
	return &c->shards[hash >> (64 - c->shard_bits)];
}

/* The slot that points at the entry with this key (or at NULL, where it
 * would be chained). */
static cache_entry **table_slot(cache_shard *s, const void *key, size_t klen,
				uint64_t hash)
{
	cache_entry **p = &s->buckets[hash & (s->nbuckets - 1)];
	while (*p != NULL && ((*p)->hash != hash || (*p)->klen != klen ||
			      memcmp((*p)->key, key, klen) != 0))
		p = &(*p)->next_hash;
	return p;
}

/* Doubles the bucket array; on ENOMEM keeps the old one (chains grow). */
static void table_grow(cache_shard *s)
{
	size_t n = s->nbuckets * 2;
	cache_entry **b = calloc(n, sizeof *b);
	if (b == NULL)
		return;
	for (size_t i = 0; i < s->nbuckets; i++) {
		cache_entry *e = s->buckets[i];
		while (e != NULL) {
			cache_entry *next = e->next_hash;
			cache_entry **slot = &b[e->hash & (n - 1)];
			e->next_hash = *slot;
			*slot = e;
			e = next;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
}

/* Drops one reference; a dead entry goes onto *dead for freeing later. */
static void entry_unref(cache_shard *s, cache_entry *e, cache_entry **dead)
{
	assert(e->refs > 0);
	e->refs--;
	if (e->refs == 0) {
		assert(!e->in_cache);
		e->next_hash = *dead;
		*dead = e;
	} else if (e->in_cache && e->refs == 1) {
		list_remove(e);
		list_append(&s->lru, e);
	}
}

/* Takes e out of the cache (the table slot *slot points at e). */
static void entry_detach(cache_shard *s, cache_entry **slot, cache_entry *e,
			 cache_entry **dead)
{
	assert(*slot == e && e->in_cache);
	*slot = e->next_hash;
	e->next_hash = NULL;
	s->count--;
	s->usage -= e->charge;
	e->in_cache = false;
	list_remove(e);
	entry_unref(s, e, dead);
}

static void free_dead(cache_entry *dead)
{
	while (dead != NULL) {
		cache_entry *next = dead->next_hash;
		if (dead->deleter != NULL)
			dead->deleter(dead->key, dead->klen, dead->value);
		free(dead);
		dead = next;
	}
}

/* Evicts unpinned entries, oldest first, until usage fits. */
static void shard_evict(cache_shard *s, cache_entry **dead)
{
	while (s->usage > s->capacity && s->lru.next != &s->lru) {
		cache_entry *old = s->lru.next;
		assert(old->refs == 1);
		entry_detach(s, table_slot(s, old->key, old->klen, old->hash),
			     old, dead);
	}
}

lsm_cache *lsm_cache_new(size_t capacity, int shard_bits)
{
	assert(shard_bits >= 0 && shard_bits <= CACHE_MAX_SHARD_BITS);
	size_t n = (size_t)1 << shard_bits;
	lsm_cache *c = calloc(1, sizeof *c + n * sizeof(cache_shard));
	if (c == NULL)
		return NULL;
	c->capacity = capacity;
	c->shard_bits = shard_bits;
	atomic_init(&c->next_id, 1);
	size_t i;
	for (i = 0; i < n; i++) {
		cache_shard *s = &c->shards[i];
		s->capacity = capacity / n + (i < capacity % n ? 1 : 0);
		list_init(&s->lru);
		list_init(&s->in_use);
		s->nbuckets = CACHE_MIN_BUCKETS;
		s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
		if (s->buckets == NULL ||
		    pthread_mutex_init(&s->mu, NULL) != 0) {
			free(s->buckets);
			goto fail;
		}
	}
	return c;
fail:
	while (i-- > 0) {
		pthread_mutex_destroy(&c->shards[i].mu);
		free(c->shards[i].buckets);
	}
	free(c);
	return NULL;
}

void lsm_cache_free(lsm_cache *c)
{
	if (c == NULL)
		return;
	size_t n = (size_t)1 << c->shard_bits;
	for (size_t i = 0; i < n; i++) {
		cache_shard *s = &c->shards[i];
		/* Every handle is released: nothing is on in_use. */
		assert(s->in_use.next == &s->in_use);
		cache_entry *dead = NULL;
		while (s->lru.next != &s->lru) {
			cache_entry *e = s->lru.next;
			entry_detach(s, table_slot(s, e->key, e->klen, e->hash),
				     e, &dead);
		}
		free_dead(dead);
		assert(s->count == 0 && s->usage == 0);
		pthread_mutex_destroy(&s->mu);
		free(s->buckets);
	}
	free(c);
}

lsm_cache_handle *lsm_cache_insert(lsm_cache *c, const void *key, size_t klen,
				   void *value, size_t charge,
				   lsm_cache_deleter deleter)
{
	cache_entry *e = malloc(sizeof *e + klen);
	if (e == NULL) {
		if (deleter != NULL)
			deleter(key, klen, value);
		return NULL;
	}
	memcpy(e->key, key, klen);
	e->klen = klen;
	e->value = value;
	e->charge = charge;
	e->deleter = deleter;
	e->hash = key_hash(key, klen);
	e->refs = 1; /* the returned handle */
	e->in_cache = false;
	e->next_hash = e->prev = e->next = NULL;

	cache_shard *s = shard_of(c, e->hash);
	cache_entry *dead = NULL;
	pthread_mutex_lock(&s->mu);
	/* A shard of capacity 0 caches nothing: the entry lives only as long
	 * as its handle (a cache that is turned off still works). */
	if (s->capacity > 0) {
		cache_entry **slot = table_slot(s, key, klen, e->hash);
		if (*slot != NULL)
			entry_detach(s, slot, *slot, &dead);
		slot = table_slot(s, key, klen, e->hash);
		*slot = e;
		e->in_cache = true;
		e->refs++;
		s->count++;
		s->usage += charge;
		list_append(&s->in_use, e);
		if (s->count > s->nbuckets)
			table_grow(s);
		shard_evict(s, &dead);
	}
	pthread_mutex_unlock(&s->mu);
	free_dead(dead);
	return (lsm_cache_handle *)e;
}

lsm_cache_handle *lsm_cache_lookup(lsm_cache *c, const void *key, size_t klen)
{
	uint64_t hash = key_hash(key, klen);
	cache_shard *s = shard_of(c, hash);
	pthread_mutex_lock(&s->mu);
	cache_entry *e = *table_slot(s, key, klen, hash);
	if (e != NULL) {
		assert(e->in_cache);
		if (e->refs == 1) { /* first pin: lru -> in_use */
			list_remove(e);
			list_append(&s->in_use, e);
		}
		e->refs++;
	}
	pthread_mutex_unlock(&s->mu);
	return (lsm_cache_handle *)e;
}

void lsm_cache_release(lsm_cache *c, lsm_cache_handle *h)
{
	cache_entry *e = (cache_entry *)h;
	cache_shard *s = shard_of(c, e->hash);
	cache_entry *dead = NULL;
	pthread_mutex_lock(&s->mu);
	entry_unref(s, e, &dead);
	/* An entry that was pinned while the shard overflowed can go now. */
	shard_evict(s, &dead);
	pthread_mutex_unlock(&s->mu);
	free_dead(dead);
}

void *lsm_cache_value(lsm_cache_handle *h)
{
	return ((cache_entry *)h)->value;
}

void lsm_cache_erase(lsm_cache *c, const void *key, size_t klen)
{
	uint64_t hash = key_hash(key, klen);
	cache_shard *s = shard_of(c, hash);
	cache_entry *dead = NULL;
	pthread_mutex_lock(&s->mu);
	cache_entry **slot = table_slot(s, key, klen, hash);
	if (*slot != NULL)
		entry_detach(s, slot, *slot, &dead);
	pthread_mutex_unlock(&s->mu);
	free_dead(dead);
}

uint64_t lsm_cache_new_id(lsm_cache *c)
{
	return atomic_fetch_add_explicit(&c->next_id, 1, memory_order_relaxed);
}

size_t lsm_cache_usage(lsm_cache *c)
{
	size_t n = (size_t)1 << c->shard_bits, total = 0;
	for (size_t i = 0; i < n; i++) {
		pthread_mutex_lock(&c->shards[i].mu);
		total += c->shards[i].usage;
		pthread_mutex_unlock(&c->shards[i].mu);
	}
	return total;
}

size_t lsm_cache_capacity(lsm_cache *c)
{
	return c->capacity;
}
