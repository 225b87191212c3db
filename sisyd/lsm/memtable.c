/* memtable.c — a skiplist in an arena (see memtable.h).
 *
 * Node layout, one arena allocation per entry:
 *   mt_node { key ptr, klen, vlen, next[height] } || ikey || value
 * key points just past next[height]; the value follows the key.
 *
 * Lock-free readers: a node is fully initialised (its bytes and its own next
 * pointers) before the writer publishes it with a release store into its
 * predecessors; readers follow next pointers with acquire loads, so they see
 * either the old list or the new one with a complete node. max_height is
 * read relaxed: a reader that sees a stale (lower) height only starts lower;
 * one that sees a higher height finds NULL at the new levels of head, which
 * is safe. Height: 1 + geometric(1/4), at most MT_MAX_HEIGHT (as LevelDB).
 *
 * Bloom filter (optional): a blocked filter over user keys -- each key sets
 * MT_BLOOM_PROBES bits inside one 64-byte block, so a check costs one cache
 * line. The writer sets a key's bits before publishing its node. A reader
 * may see stale (missing) bits only for entries written after its sequence
 * number was taken: the engine takes that number under a mutex after the
 * insert finished, so every entry a read may see has its bits visible, and
 * a "no" from the filter is always right for the read asking.
 *
 * Runs: a memtable larger than its run size (lsm_memtable_new_runs) is a
 * stack of skiplists, each of about run_bytes, every one with its own head
 * and filter. The writer inserts into the newest only; once that holds
 * run_bytes it starts another, published to readers with a release store
 * of nruns. Why: an insert costs what the skiplist it goes into costs --
 * ~30 compares and their cache misses at 4 MiB, more at 32 -- so a large
 * memtable made of small runs inserts as cheaply as a small one, while the
 * engine flushes (and compacts) far less often, and a flush drops every
 * overwritten version across the runs (docs/engine.md "Memtable runs").
 * Entries go in sequence order in practice, so a newer run only holds
 * newer versions; lookups still compare sequence numbers across runs
 * (each run keeps its largest) and never rely on that. */
#include "memtable.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

/* The filter's hash is XXH3 inlined: it lives only in memory (nothing
 * stores or shares it), and a call into libxxhash's xxh64 cost three times
 * the instructions for a 16-byte key. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define MT_MAX_HEIGHT	12
#define MT_BLOOM_PROBES 6
#define MT_BLOOM_SEED	0x6d656d74ull

typedef struct mt_node {
	const uint8_t *key;
	uint32_t klen;
	uint32_t vlen;
	_Atomic(struct mt_node *) next[];
} mt_node;

/* At most this many runs: a lookup probes every run's filter, so a huge
 * memtable gets larger runs instead of more. */
#define MT_MAX_RUNS 16

/* One skiplist of the memtable. Written by the writer before nruns counts
 * it, then only through atomics. */
typedef struct mt_run {
	mt_node *head;
	_Atomic int max_height;
	_Atomic uint64_t max_seq; /* largest sequence number in the run */
	_Atomic uint64_t *bloom;  /* 8 words (64 bytes) per block; or NULL */
	uint64_t bloom_blocks;
	size_t start; /* arena bytes allocated when the run began */
} mt_run;

struct lsm_memtable {
	_Atomic int refs;
	_Atomic int
	    nruns; /* runs[0..nruns) are readable; the last is written */
	_Atomic uint64_t entries;
	uint64_t rnd; /* writer-only PRNG state */
	lsm_arena *arena;
	size_t bytes;	    /* expected size (0: unknown, no filter) */
	size_t run_bytes;   /* a new run past this many bytes (0: never) */
	size_t bloom_bytes; /* entry bytes each run's filter is sized for */
	mt_run runs[MT_MAX_RUNS];
};

/* Internal-key order on raw pointers: lsm_ikey_cmp without building
 * slices. The reference order, for checks; searches use mt_before. */
static inline int mt_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
			 size_t blen)
{
	int c = lsm_user_cmp(a, alen - 8, b, blen - 8);
	if (c != 0)
		return c;
	uint64_t ta = sisy_get_u64(a + alen - 8),
		 tb = sisy_get_u64(b + blen - 8);
	return ta > tb ? -1 : ta < tb;
}

/* True when node n sorts before the internal key k (user part of ulen
 * bytes): mt_cmp(n, k) < 0, the one question every search step asks.
 * Eight bytes at a time, like lsm_user_cmp, but with no byte loop for a
 * tail: every internal key has its 8-byte trailer after the user part, so
 * eight bytes read at any offset up to the shorter user length stay inside
 * both keys, and the bytes past that length are shifted out. */
static inline bool mt_before(const mt_node *n, const uint8_t *k, size_t ulen)
{
	const uint8_t *a = n->key;
	size_t au = n->klen - 8, m = au < ulen ? au : ulen, i = 0;
	for (; i + 8 <= m; i += 8) {
		uint64_t x = sisy_get_u64(a + i), y = sisy_get_u64(k + i);
		if (x != y)
			return __builtin_bswap64(x) < __builtin_bswap64(y);
	}
	if (i < m) {
		unsigned drop = 8 * (unsigned)(8 - (m - i)); /* 8..56 */
		uint64_t x = __builtin_bswap64(sisy_get_u64(a + i)) >> drop,
			 y = __builtin_bswap64(sisy_get_u64(k + i)) >> drop;
		if (x != y)
			return x < y;
	}
	if (au != ulen)
		return au < ulen;
	/* same user key: the newer (larger trailer) sorts first */
	return sisy_get_u64(a + au) > sisy_get_u64(k + ulen);
}

static inline mt_node *mt_next(mt_node *n, int level)
{
	return atomic_load_explicit(&n->next[level], memory_order_acquire);
}

static mt_node *mt_node_alloc(lsm_memtable *m, int height, size_t klen,
			      size_t vlen)
{
	size_t hdr = sizeof(mt_node) + sizeof(mt_node *) * (size_t)height;
	mt_node *n = lsm_arena_alloc(m->arena, hdr + klen + vlen);
	if (n == NULL)
		return NULL;
	n->key = (const uint8_t *)n + hdr;
	n->klen = (uint32_t)klen;
	n->vlen = (uint32_t)vlen;
	for (int i = 0; i < height; i++)
		atomic_init(&n->next[i], NULL);
	return n;
}

/* Sets up run r (not yet counted in nruns). On failure r holds nothing
 * to free (its head, if any, is in the arena). */
static sisy_err mt_run_init(lsm_memtable *m, mt_run *r)
{
	memset(r, 0, sizeof *r);
	r->head = mt_node_alloc(m, MT_MAX_HEIGHT, 0, 0);
	if (r->head == NULL)
		return SISY_E_NOMEM;
	if (m->bloom_bytes > 0) {
		/* one bit per 8 bytes of entries: ~10+ bits per key for
		 * entries of 80 bytes and more */
		r->bloom_blocks = m->bloom_bytes / 8 / 512 + 1;
		r->bloom = calloc(r->bloom_blocks * 8, sizeof(uint64_t));
		if (r->bloom == NULL)
			return SISY_E_NOMEM;
	}
	atomic_init(&r->max_height, 1);
	atomic_init(&r->max_seq, 0);
	r->start = lsm_arena_allocated(m->arena);
	return SISY_OK;
}

lsm_memtable *lsm_memtable_new_runs(size_t bytes, size_t run_bytes)
{
	lsm_memtable *m = calloc(1, sizeof *m);
	if (m == NULL)
		return NULL;
	m->arena = lsm_arena_new();
	if (m->arena == NULL)
		goto fail;
	m->bytes = bytes;
	if (run_bytes > 0 && bytes / run_bytes > MT_MAX_RUNS)
		run_bytes = (bytes + MT_MAX_RUNS - 1) / MT_MAX_RUNS;
	m->run_bytes = run_bytes > 0 && run_bytes < bytes ? run_bytes : 0;
	m->bloom_bytes = m->run_bytes > 0 ? m->run_bytes : bytes;
	if (mt_run_init(m, &m->runs[0]) != SISY_OK)
		goto fail;
	atomic_init(&m->refs, 1);
	atomic_init(&m->nruns, 1);
	atomic_init(&m->entries, 0);
	m->rnd = 0x9e3779b97f4a7c15ull ^ (uintptr_t)m;
	return m;
fail:
	lsm_arena_free(m->arena);
	free(m);
	return NULL;
}

lsm_memtable *lsm_memtable_new_sized(size_t bytes)
{
	return lsm_memtable_new_runs(bytes, 0);
}

lsm_memtable *lsm_memtable_new(void)
{
	return lsm_memtable_new_sized(0);
}

/* The run the writer inserts into: the newest, or a new one once the
 * newest holds run_bytes -- unless the memtable is nearly full anyway (a
 * last run of a few entries would only cost lookups a probe). Out of
 * memory for a new run, the newest takes the entries: slower, not wrong. */
static mt_run *mt_writer_run(lsm_memtable *m)
{
	int n = atomic_load_explicit(&m->nruns, memory_order_relaxed);
	mt_run *r = &m->runs[n - 1];
	if (m->run_bytes == 0 || n == MT_MAX_RUNS)
		return r;
	size_t used = lsm_arena_allocated(m->arena);
	if (used - r->start < m->run_bytes ||
	    used + m->run_bytes / 4 >= m->bytes)
		return r;
	mt_run *nr = &m->runs[n];
	if (mt_run_init(m, nr) != SISY_OK)
		return r;
	atomic_store_explicit(&m->nruns, n + 1, memory_order_release);
	return nr;
}

/* Runs readers may search: runs[0..n) are fully set up. */
static inline int mt_nruns(const lsm_memtable *m)
{
	return atomic_load_explicit(&((lsm_memtable *)m)->nruns,
				    memory_order_acquire);
}

/* The block and the bit positions of a user key. */
static inline uint64_t mt_bloom_hash(sisy_slice ukey)
{
	return XXH3_64bits_withSeed(ukey.data, ukey.len, MT_BLOOM_SEED);
}

static void mt_bloom_add(mt_run *r, sisy_slice ukey)
{
	uint64_t h = mt_bloom_hash(ukey);
	_Atomic uint64_t *blk = r->bloom + (h % r->bloom_blocks) * 8;
	uint32_t bits = (uint32_t)(h >> 32), delta = (bits >> 17) | 1;
	for (int i = 0; i < MT_BLOOM_PROBES; i++, bits += delta) {
		_Atomic uint64_t *w = &blk[(bits >> 6) & 7];
		/* single writer: load and store, no locked RMW needed */
		uint64_t v = atomic_load_explicit(w, memory_order_relaxed);
		atomic_store_explicit(w, v | (1ull << (bits & 63)),
				      memory_order_relaxed);
	}
}

/* h = mt_bloom_hash(user key); r has a filter. */
static bool mt_bloom_may_match(const mt_run *r, uint64_t h)
{
	_Atomic uint64_t *blk = r->bloom + (h % r->bloom_blocks) * 8;
	uint32_t bits = (uint32_t)(h >> 32), delta = (bits >> 17) | 1;
	for (int i = 0; i < MT_BLOOM_PROBES; i++, bits += delta) {
		uint64_t v = atomic_load_explicit(&blk[(bits >> 6) & 7],
						  memory_order_relaxed);
		if ((v & (1ull << (bits & 63))) == 0)
			return false;
	}
	return true;
}

void lsm_memtable_ref(lsm_memtable *m)
{
	atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void lsm_memtable_unref(lsm_memtable *m)
{
	if (m == NULL)
		return;
	int old = atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel);
	assert(old > 0);
	if (old == 1) {
		int n = atomic_load_explicit(&m->nruns, memory_order_relaxed);
		for (int i = 0; i < n; i++)
			free(m->runs[i].bloom);
		lsm_arena_free(m->arena);
		free(m);
	}
}

static int mt_random_height(lsm_memtable *m)
{
	/* xorshift64*: cheap, and only the writer touches it. */
	int h = 1;
	for (;;) {
		m->rnd ^= m->rnd >> 12;
		m->rnd ^= m->rnd << 25;
		m->rnd ^= m->rnd >> 27;
		uint64_t r = m->rnd * 0x2545F4914F6CDD1Dull;
		for (int shift = 0; shift < 64; shift += 2) {
			if (h >= MT_MAX_HEIGHT || ((r >> shift) & 3) != 0)
				return h;
			h++;
		}
	}
}

/* A key being searched for, with what mt_before_k needs at hand. */
typedef struct mt_key {
	uint64_t fast_klen;   /* 24 when w/bw hold the key's first 16 bytes */
	uint64_t w[2], bw[2]; /* user key bytes 0-15: as read, byte-swapped */
	uint64_t trailer;     /* (w, bw and trailer: only when fast) */
	const uint8_t *key;   /* the internal key */
	size_t ulen;	      /* its user part's length */
} mt_key;

static void mt_key_init(mt_key *s, const uint8_t *key, size_t klen)
{
	assert(klen >= 8);
	s->key = key;
	s->ulen = klen - 8;
	s->fast_klen = UINT64_MAX; /* never: mt_before does it all */
	if (s->ulen >= 16) {
		s->fast_klen = 24;
		for (int i = 0; i < 2; i++) {
			s->w[i] = sisy_get_u64(s->key + 8 * i);
			s->bw[i] = __builtin_bswap64(s->w[i]);
		}
		s->trailer = sisy_get_u64(s->key + s->ulen);
	}
}

/* mt_before(n, k->key, k->ulen), with the key's first two words at hand:
 * typical keys (16 bytes and more) are decided by the first word that
 * differs, or by the trailer when both are 16 bytes long. */
static inline bool mt_before_k(const mt_node *n, const mt_key *k)
{
	/* both user keys of 16 bytes or more */
	if ((uint64_t)n->klen >= k->fast_klen) {
		const uint8_t *a = n->key;
		uint64_t x = sisy_get_u64(a);
		if (x != k->w[0])
			return __builtin_bswap64(x) < k->bw[0];
		x = sisy_get_u64(a + 8);
		if (x != k->w[1])
			return __builtin_bswap64(x) < k->bw[1];
		if (n->klen == 24 && k->ulen == 16)
			return sisy_get_u64(a + 16) > k->trailer;
	}
	return mt_before(n, k->key, k->ulen);
}

/* The first node >= key at or after x, descending from `level` (x < key
 * at every level from there down); fills prev[level..0] if asked.
 * `next != last_bigger` also stops at the end of a level: last_bigger is
 * NULL until a node after the key is known, and from then on every level
 * reaches that node before its end. */
static mt_node *mt_search_from(mt_node *x, int level, const uint8_t *key,
			       size_t klen, mt_node **prev)
{
	mt_node *last_bigger = NULL; /* skip re-comparing the same node */
	mt_key k;
	mt_key_init(&k, key, klen);
	for (;;) {
		mt_node *next = mt_next(x, level);
		if (next != last_bigger && mt_before_k(next, &k)) {
			x = next;
			continue;
		}
		if (prev != NULL)
			prev[level] = x;
		if (level == 0)
			return next;
		last_bigger = next;
		level--;
	}
}

/* The first node >= key in run r; fills prev[level] with its predecessors
 * if asked. */
static mt_node *mt_find_ge(mt_run *r, const uint8_t *key, size_t klen,
			   mt_node **prev)
{
	int level =
	    atomic_load_explicit(&r->max_height, memory_order_relaxed) - 1;
	return mt_search_from(r->head, level, key, klen, prev);
}

/* A new node holding key@seq (and the value), not yet linked. */
static sisy_err mt_make(lsm_memtable *m, mt_run *r, uint64_t seq, lsm_vtype t,
			sisy_slice key, sisy_slice value, mt_node **out,
			int *height)
{
	assert(seq <= LSM_MAX_SEQ);
	assert(key.len <= UINT32_MAX - 8 && value.len <= UINT32_MAX);
	if (t == LSM_TYPE_DELETE)
		value.len = 0;
	size_t klen = key.len + 8;
	*height = mt_random_height(m);
	mt_node *n = mt_node_alloc(m, *height, klen, value.len);
	if (n == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "memtable.c: out of memory "
				 "adding a %zu-byte entry",
				 klen + value.len);
	uint8_t *p = (uint8_t *)n->key;
	if (key.len)
		memcpy(p, key.data, key.len);
	sisy_put_u64(p + key.len, lsm_trailer(seq, t));
	if (value.len)
		memcpy(p + klen, value.data, value.len);
	if (r->bloom != NULL)
		mt_bloom_add(r, key); /* before the node is published */
	/* before too: a reader that may see the entry sees the maximum */
	if (seq > atomic_load_explicit(&r->max_seq, memory_order_relaxed))
		atomic_store_explicit(&r->max_seq, seq, memory_order_relaxed);
	*out = n;
	return SISY_OK;
}

/* Links n (of the given height) into run r after prev[0..height-1]; the
 * levels above the current maximum start at head. */
static void mt_link(lsm_memtable *m, mt_run *r, mt_node *n, int height,
		    mt_node **prev)
{
	int max = atomic_load_explicit(&r->max_height, memory_order_relaxed);
	if (height > max) {
		for (int i = max; i < height; i++)
			prev[i] = r->head;
		atomic_store_explicit(&r->max_height, height,
				      memory_order_relaxed);
	}
	for (int i = 0; i < height; i++) {
		atomic_store_explicit(
		    &n->next[i],
		    atomic_load_explicit(&prev[i]->next[i],
					 memory_order_relaxed),
		    memory_order_relaxed);
		atomic_store_explicit(&prev[i]->next[i], n,
				      memory_order_release);
	}
	atomic_fetch_add_explicit(&m->entries, 1, memory_order_relaxed);
}

sisy_err lsm_memtable_add(lsm_memtable *m, uint64_t seq, lsm_vtype t,
			  sisy_slice key, sisy_slice value)
{
	mt_node *n;
	int height;
	mt_run *r = mt_writer_run(m);
	sisy_err rc = mt_make(m, r, seq, t, key, value, &n, &height);
	if (rc != SISY_OK)
		return rc;
	mt_node *prev[MT_MAX_HEIGHT];
	mt_node *ge = mt_find_ge(r, n->key, n->klen, prev);
	assert(ge == NULL || mt_cmp(ge->key, ge->klen, n->key, n->klen) != 0);
	(void)ge;
	mt_link(m, r, n, height, prev);
	return SISY_OK;
}

/* Batch insert: the searches of up to MT_GROUP entries run interleaved.
 * Every step of a search visits one node, whose cache line is almost never
 * in cache (the skiplist spans megabytes, in insertion order): one search
 * alone waits for some twenty misses in a row. Here each step only
 * prefetches the node the search goes to next and moves on to the next
 * search; by the time it comes back the line has arrived, so the misses of
 * the group overlap instead of adding up.
 * All searches of a group run against the list as it was; inserting them
 * one after the other, each predecessor found is still before its key. At
 * a level where the predecessor's successor is still the one the search
 * saw, nothing came between and the entry goes right there; otherwise a
 * short walk forward steps over the group's entries inserted meanwhile
 * (which are in cache).
 * The instruction count matters as much as the misses (the server applies
 * writes on its event loop): a pass visits only the searches still
 * running (a compact list, finished ones swapped out), and each search
 * carries its key's first words (mt_key) so most compares are one load. */
#define MT_GROUP 8

typedef struct mt_search {
	mt_node *x;	   /* last node known to be before the key */
	mt_node *next;	   /* its successor at `level`, prefetched */
	mt_node *last_big; /* a node known to be after the key, or NULL */
	int level;
	mt_key k;		      /* the entry's key */
	mt_node *prev[MT_MAX_HEIGHT]; /* predecessor at each level */
	mt_node *succ[MT_MAX_HEIGHT]; /* and its successor then */
} mt_search;

/* The node's header and the start of its key; without a branch: a
 * prefetch of NULL (the end of a level) is a harmless hint. */
static inline void mt_prefetch(const mt_node *n)
{
	uintptr_t p = (uintptr_t)n;
	__builtin_prefetch((const void *)p);
	/* the key may start or end on the next line */
	__builtin_prefetch((const void *)(p + 64));
}

/* One step of a search: decide on the prefetched successor, then prefetch
 * the next node to visit. False once the search has its predecessors. */
static inline bool mt_step(mt_search *s)
{
	mt_node *next = s->next, *big = s->last_big;
	int level = s->level;
	if (next != big && mt_before_k(next, &s->k)) {
		s->x = next; /* move right: a new node to fetch */
		s->next = mt_next(next, level);
		mt_prefetch(s->next);
		return true;
	}
	mt_node *x = s->x;
	for (;;) {
		s->prev[level] = x;
		s->succ[level] = next;
		if (level == 0)
			return false;
		level--;
		big = next;
		next = mt_next(x, level);
		if (next != big) { /* a node not seen yet */
			s->level = level;
			s->last_big = big;
			s->next = next;
			mt_prefetch(next);
			return true;
		}
		/* same successor one level down: decided without a fetch */
	}
}

/* Links k after the predecessors its search found, stepping over the
 * group's entries linked since. */
static void mt_link_found(lsm_memtable *m, mt_run *r, mt_node *k, int height,
			  mt_search *s, int max)
{
	mt_node **prev = s->prev;
	int cur = atomic_load_explicit(&r->max_height, memory_order_relaxed);
	int top = height < cur ? height : cur;
	assert(max <= cur);
	for (int l = max; l < top; l++) { /* levels born meanwhile */
		prev[l] = r->head;
		s->succ[l] = NULL;
	}
	for (int l = 0; l < top; l++) {
		mt_node *nx = mt_next(prev[l], l);
		if (nx != s->succ[l]) { /* entries linked in between */
			while (nx != NULL && mt_before_k(nx, &s->k)) {
				prev[l] = nx;
				nx = mt_next(nx, l);
			}
		}
		/* checked against the reference order (debug builds) */
		assert(prev[l] == r->head || mt_cmp(prev[l]->key, prev[l]->klen,
						    k->key, k->klen) < 0);
		assert(nx == NULL ||
		       mt_cmp(nx->key, nx->klen, k->key, k->klen) > 0);
	}
	mt_link(m, r, k, height, prev);
}

sisy_err lsm_memtable_add_batch(lsm_memtable *m, const lsm_mem_op *ops,
				size_t n)
{
	mt_search s[MT_GROUP];
	mt_node *node[MT_GROUP];
	int height[MT_GROUP];
	mt_search *active[MT_GROUP];
	for (size_t base = 0; base < n; base += MT_GROUP) {
		size_t g = n - base < MT_GROUP ? n - base : MT_GROUP;
		sisy_err rc = SISY_OK;
		mt_run *r =
		    mt_writer_run(m); /* the group's searches: one run */
		for (size_t i = 0; i < g; i++) {
			const lsm_mem_op *op = &ops[base + i];
			rc = mt_make(m, r, op->seq, op->type, op->key,
				     op->value, &node[i], &height[i]);
			if (rc != SISY_OK) {
				g = i; /* those made so far still go in */
				break;
			}
		}
		int max =
		    atomic_load_explicit(&r->max_height, memory_order_relaxed);
		mt_node *top = mt_next(r->head, max - 1);
		for (size_t i = 0; i < g; i++) {
			s[i].x = r->head;
			s[i].next = top;
			s[i].last_big = NULL;
			mt_key_init(&s[i].k, node[i]->key, node[i]->klen);
			s[i].level = max - 1;
			active[i] = &s[i];
		}
		mt_prefetch(top);
		for (size_t na = g; na > 0;)
			for (size_t j = 0; j < na;)
				if (mt_step(active[j]))
					j++;
				else
					active[j] = active[--na];
		for (size_t i = 0; i < g; i++)
			mt_link_found(m, r, node[i], height[i], &s[i], max);
		if (rc != SISY_OK)
			return rc;
	}
	return SISY_OK;
}

lsm_mem_result lsm_memtable_get(lsm_memtable *m, sisy_slice lookup,
				sisy_slice *value)
{
	assert(lookup.len >= 8);
	size_t ulen = lookup.len - 8;
	int nr = mt_nruns(m);
	uint64_t h = 0;
	if (m->runs[0].bloom != NULL)
		h = mt_bloom_hash(sisy_slice_make(lookup.data, ulen));
	/* newest run first; an older run can only hold a newer version if
	 * entries went in out of sequence order, which its max_seq tells */
	mt_node *n = NULL;
	uint64_t n_seq = 0;
	for (int i = nr - 1; i >= 0; i--) {
		mt_run *r = &m->runs[i];
		if (n != NULL &&
		    atomic_load_explicit(&r->max_seq, memory_order_relaxed) <=
			n_seq)
			continue;
		if (r->bloom != NULL && !mt_bloom_may_match(r, h))
			continue;
		mt_node *x = mt_find_ge(r, lookup.data, lookup.len, NULL);
		if (x == NULL || x->klen - 8 != ulen ||
		    memcmp(x->key, lookup.data, ulen) != 0)
			continue;
		uint64_t seq = sisy_get_u64(x->key + ulen) >> 8;
		if (n == NULL || seq > n_seq) {
			n = x;
			n_seq = seq;
		}
	}
	if (n == NULL)
		return LSM_MEM_MISS;
	if ((sisy_get_u64(n->key + ulen) & 0xff) == LSM_TYPE_DELETE)
		return LSM_MEM_DELETED;
	*value = sisy_slice_make(n->key + n->klen, n->vlen);
	return LSM_MEM_FOUND;
}

bool lsm_memtable_may_contain(const lsm_memtable *m, sisy_slice user_key)
{
	if (m->runs[0].bloom == NULL)
		return true;
	uint64_t h = mt_bloom_hash(user_key);
	int nr = mt_nruns(m);
	for (int i = 0; i < nr; i++)
		if (m->runs[i].bloom == NULL ||
		    mt_bloom_may_match(&m->runs[i], h))
			return true;
	return false;
}

int lsm_memtable_runs(const lsm_memtable *m)
{
	return mt_nruns(m);
}

size_t lsm_memtable_usage(const lsm_memtable *m)
{
	return lsm_arena_allocated(m->arena);
}

size_t lsm_memtable_memory(const lsm_memtable *m)
{
	return lsm_arena_usage(m->arena);
}

bool lsm_memtable_check_levels(lsm_memtable *m)
{
	int nr = mt_nruns(m);
	for (int i = 0; i < nr; i++) {
		mt_run *r = &m->runs[i];
		int max =
		    atomic_load_explicit(&r->max_height, memory_order_relaxed);
		for (int l = 0; l < max; l++)
			for (mt_node *x = mt_next(r->head, l), *y; x != NULL;
			     x = y) {
				y = mt_next(x, l);
				if (y != NULL && mt_cmp(x->key, x->klen, y->key,
							y->klen) >= 0)
					return false;
			}
	}
	return true;
}

uint64_t lsm_memtable_entries(const lsm_memtable *m)
{
	return atomic_load_explicit(&m->entries, memory_order_relaxed);
}

/* --- iterator ------------------------------------------------------------ */

/* Read-ahead for scans from the start (a flush). Nodes lie in the arena in
 * insertion order, so a scan in key order misses the cache on nearly every
 * node, and a prefetch of just the next node cannot hide that: walking one
 * list is a chain of dependent loads. So the scan runs several chains at
 * once, ahead of it:
 *   - a scout hops along level 1 (nodes of height >= 2, about one in four),
 *     each hop prefetching the next level-1 node, and stays at most
 *     MTI_SEGS hops ahead of the scan;
 *   - every hop opens a segment (the level-0 nodes between two level-1
 *     nodes) and a walker prefetches its nodes one by one; the open
 *     segments' walkers take turns, so their misses overlap.
 * A segment closes when the scan reaches its end node. Prefetches are only
 * hints: the scan itself follows the real links, so concurrent inserts
 * (readers share this iterator) cannot make it wrong, only less helped. */
#define MTI_SEGS       8 /* open segments: ~32 nodes ahead */
#define MTI_WALK_STEPS 2 /* walker steps per scan step */

typedef struct mti_seg {
	mt_node *walk; /* the walker: last node prefetched */
	mt_node
	    *end; /* the level-1 node closing the segment (NULL: list end) */
} mti_seg;

typedef struct mt_iter {
	lsm_iter base;
	lsm_memtable *m;
	mt_run *run;
	mt_node *node;
	bool skip_shadowed; /* a flush iterator (lsm_memtable_flush_iter_new) */
	uint64_t smallest;  /* its oldest snapshot */
	bool ahead;	    /* read-ahead on (after seek_first) */
	mt_node *scout;	    /* last level-1 node reached; NULL: at the end */
	mti_seg seg[MTI_SEGS]; /* ring, oldest first */
	int first, nseg;
	unsigned turn; /* round robin over the walkers (wraps) */
} mt_iter;

/* The first lines of a node: header, key and (at small values) value. */
static inline void mti_prefetch(const mt_node *n)
{
	const char *p = (const char *)n;
	__builtin_prefetch(p);
	__builtin_prefetch(p + 64);
	__builtin_prefetch(p + 128);
}

/* The scan reached (or skipped) node n: the segment it enters is its own
 * from now on. */
static inline void mti_close_segs(mt_iter *i, const mt_node *n)
{
	while (i->nseg > 0 && i->seg[i->first].end == n) {
		i->first = (i->first + 1) % MTI_SEGS;
		i->nseg--;
	}
}

static void mti_read_ahead(mt_iter *i)
{
	mti_close_segs(i, i->node);
	if (i->nseg < MTI_SEGS && i->scout != NULL) {
		/* the scout was prefetched on its previous hop */
		mt_node *next = mt_next(i->scout, 1);
		mti_seg *s = &i->seg[(i->first + i->nseg++) % MTI_SEGS];
		s->walk = i->scout;
		s->end = next;
		i->scout = next;
		if (next != NULL)
			mti_prefetch(next);
	}
	for (int k = 0; k < MTI_WALK_STEPS && i->nseg > 0; k++) {
		int at = (i->first + (int)(i->turn++ % (unsigned)i->nseg)) %
			 MTI_SEGS;
		mti_seg *s = &i->seg[at];
		if (s->walk == NULL || s->walk == s->end)
			continue;
		s->walk = mt_next(s->walk, 0);
		if (s->walk != NULL && s->walk != s->end)
			mti_prefetch(s->walk);
	}
}

static bool mti_valid(lsm_iter *it)
{
	return ((mt_iter *)it)->node != NULL;
}

static void mti_seek_first(lsm_iter *it)
{
	mt_iter *i = (mt_iter *)it;
	i->node = mt_next(i->run->head, 0);
	i->ahead = true;
	i->scout = i->run->head; /* head has every level */
	i->first = i->nseg = 0;
	i->turn = 0;
	mti_read_ahead(i);
}

static void mti_seek(lsm_iter *it, sisy_slice target)
{
	mt_iter *i = (mt_iter *)it;
	i->node = mt_find_ge(i->run, target.data, target.len, NULL);
	i->ahead = false; /* point reads and short scans: not worth it */
}

static void mti_next(lsm_iter *it)
{
	mt_iter *i = (mt_iter *)it;
	mt_node *n = i->node;
	assert(n != NULL);
	mt_node *x = mt_next(n, 0);
	/* Versions of one user key follow each other, newest first: once n
	 * is visible to every snapshot, the older ones after it are not
	 * visible to any. */
	if (i->skip_shadowed &&
	    sisy_get_u64(n->key + n->klen - 8) >> 8 <= i->smallest) {
		while (x != NULL && x->klen == n->klen &&
		       lsm_user_cmp(x->key, x->klen - 8, n->key, n->klen - 8) ==
			   0) {
			if (i->ahead)
				mti_close_segs(i, x); /* x may end one */
			x = mt_next(x, 0);
		}
	}
	i->node = x;
	if (i->ahead)
		mti_read_ahead(i);
}

static sisy_slice mti_key(lsm_iter *it)
{
	mt_node *n = ((mt_iter *)it)->node;
	return sisy_slice_make(n->key, n->klen);
}

static sisy_slice mti_value(lsm_iter *it)
{
	mt_node *n = ((mt_iter *)it)->node;
	return sisy_slice_make(n->key + n->klen, n->vlen);
}

static sisy_err mti_status(lsm_iter *it)
{
	(void)it;
	return SISY_OK;
}

static void mti_destroy(lsm_iter *it)
{
	mt_iter *i = (mt_iter *)it;
	lsm_memtable_unref(i->m);
	free(i);
}

static const lsm_iter_ops mt_iter_ops = {
    .valid = mti_valid,
    .seek_first = mti_seek_first,
    .seek = mti_seek,
    .next = mti_next,
    .key = mti_key,
    .value = mti_value,
    .status = mti_status,
    .destroy = mti_destroy,
};

/* An iterator over one run. */
static lsm_iter *mt_run_iter_new(lsm_memtable *m, mt_run *r, bool flush,
				 uint64_t smallest)
{
	mt_iter *i = calloc(1, sizeof *i);
	if (i == NULL)
		return NULL;
	i->base.ops = &mt_iter_ops;
	i->m = m;
	i->run = r;
	i->skip_shadowed = flush;
	i->smallest = smallest;
	lsm_memtable_ref(m);
	return &i->base;
}

/* A flush over several runs: their merge, less every version shadowed by
 * a newer one of its user key that every snapshot sees. Each run already
 * leaves out its own shadowed versions; this drops those shadowed by a
 * version in a newer run. Keys stay in the arena, so the last one shown
 * can be compared after the merge has moved on. */
typedef struct mt_dedup_iter {
	lsm_iter base;
	lsm_iter *merged;
	uint64_t smallest;
} mt_dedup_iter;

static bool mdi_valid(lsm_iter *it)
{
	return lsm_iter_valid(((mt_dedup_iter *)it)->merged);
}

static void mdi_seek_first(lsm_iter *it)
{
	lsm_iter_seek_first(((mt_dedup_iter *)it)->merged);
}

static void mdi_seek(lsm_iter *it, sisy_slice target)
{
	lsm_iter_seek(((mt_dedup_iter *)it)->merged, target);
}

static void mdi_next(lsm_iter *it)
{
	mt_dedup_iter *d = (mt_dedup_iter *)it;
	sisy_slice k = lsm_iter_key(d->merged);
	lsm_iter_next(d->merged);
	if (sisy_get_u64(k.data + k.len - 8) >> 8 > d->smallest)
		return; /* some snapshot may still need what follows */
	while (lsm_iter_valid(d->merged)) {
		sisy_slice x = lsm_iter_key(d->merged);
		if (x.len != k.len ||
		    lsm_user_cmp(x.data, x.len - 8, k.data, k.len - 8) != 0)
			break;
		lsm_iter_next(d->merged);
	}
}

static sisy_slice mdi_key(lsm_iter *it)
{
	return lsm_iter_key(((mt_dedup_iter *)it)->merged);
}

static sisy_slice mdi_value(lsm_iter *it)
{
	return lsm_iter_value(((mt_dedup_iter *)it)->merged);
}

static sisy_err mdi_status(lsm_iter *it)
{
	return lsm_iter_status(((mt_dedup_iter *)it)->merged);
}

static void mdi_destroy(lsm_iter *it)
{
	lsm_iter_destroy(((mt_dedup_iter *)it)->merged);
	free(it);
}

static const lsm_iter_ops mt_dedup_iter_ops = {
    .valid = mdi_valid,
    .seek_first = mdi_seek_first,
    .seek = mdi_seek,
    .next = mdi_next,
    .key = mdi_key,
    .value = mdi_value,
    .status = mdi_status,
    .destroy = mdi_destroy,
};

/* One run: its iterator. Several: their merge (the runs present now; an
 * entry added later to a new run is newer than any snapshot the caller
 * holds, since the engine takes sequence numbers after inserting). */
static lsm_iter *mt_iter_new(lsm_memtable *m, bool flush, uint64_t smallest)
{
	int nr = mt_nruns(m);
	if (nr == 1)
		return mt_run_iter_new(m, &m->runs[0], flush, smallest);
	lsm_iter *kids[MT_MAX_RUNS];
	for (int i = 0; i < nr; i++) {
		/* newest first: the merge's order for equal keys (never met:
		 * sequence numbers are distinct) */
		kids[i] =
		    mt_run_iter_new(m, &m->runs[nr - 1 - i], flush, smallest);
		if (kids[i] == NULL) {
			while (i-- > 0)
				lsm_iter_destroy(kids[i]);
			return NULL;
		}
	}
	lsm_iter *merged = lsm_merge_iter_new_ikey(kids, nr, 0);
	if (merged == NULL || !flush)
		return merged;
	mt_dedup_iter *d = calloc(1, sizeof *d);
	if (d == NULL) {
		lsm_iter_destroy(merged);
		return NULL;
	}
	d->base.ops = &mt_dedup_iter_ops;
	d->merged = merged;
	d->smallest = smallest;
	return &d->base;
}

lsm_iter *lsm_memtable_iter_new(lsm_memtable *m)
{
	return mt_iter_new(m, false, 0);
}

lsm_iter *lsm_memtable_flush_iter_new(lsm_memtable *m,
				      uint64_t smallest_snapshot)
{
	return mt_iter_new(m, true, smallest_snapshot);
}
