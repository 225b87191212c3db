/* Tests sisyd/lsm/memtable.c: visibility by sequence, deletes, order and
 * seeks against a sorted reference, and lock-free readers running while the
 * single writer inserts; each on a plain memtable, one with a Bloom filter,
 * and one made of many small runs (skiplists) with a filter each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lsm_test_util.h"
#include "memtable.h"
#include "rand.h"

static sisy_slice S(const char *s)
{
	return sisy_slice_str(s);
}

static lsm_mem_result get_at(lsm_memtable *m, const char *key, uint64_t seq,
			     sisy_slice *v)
{
	sisy_buf k = {0};
	assert_int_equal(lsm_ikey(&k, S(key), seq, LSM_TYPE_SEEK), SISY_OK);
	lsm_mem_result r = lsm_memtable_get(m, sisy_buf_slice(&k), v);
	sisy_buf_free(&k);
	return r;
}

/* Tests run on a plain memtable, on one with a Bloom filter, and on one
 * of 4 KiB runs: up to 16 of them, the last taking whatever comes after. */
enum { MT_PLAIN = 0, MT_BLOOM = 1, MT_RUNS = 2 };

static lsm_memtable *new_mt(void **state)
{
	switch ((uintptr_t)*state) {
	case MT_BLOOM:
		return lsm_memtable_new_sized(256 << 10);
	case MT_RUNS:
		return lsm_memtable_new_runs(64 << 10, 4 << 10);
	default:
		return lsm_memtable_new();
	}
}

static int with_bloom(void **state)
{
	*state = (void *)MT_BLOOM;
	return 0;
}

static int with_runs(void **state)
{
	*state = (void *)MT_RUNS;
	return 0;
}

static void test_versions_and_deletes(void **state)
{
	lsm_memtable *m = new_mt(state);
	assert_non_null(m);
	assert_int_equal(
	    lsm_memtable_add(m, 1, LSM_TYPE_VALUE, S("k"), S("v1")), SISY_OK);
	assert_int_equal(lsm_memtable_add(m, 3, LSM_TYPE_DELETE, S("k"), S("")),
			 SISY_OK);
	assert_int_equal(
	    lsm_memtable_add(m, 5, LSM_TYPE_VALUE, S("k"), S("v5")), SISY_OK);
	assert_int_equal(lsm_memtable_add(m, 2, LSM_TYPE_VALUE, S("j"), S("J")),
			 SISY_OK);
	assert_int_equal(
	    lsm_memtable_add(m, 4, LSM_TYPE_VALUE, S("kk"), S("KK")), SISY_OK);
	sisy_slice v;
	assert_int_equal(get_at(m, "k", 0, &v), LSM_MEM_MISS);
	for (uint64_t s = 1; s <= 2; s++) {
		assert_int_equal(get_at(m, "k", s, &v), LSM_MEM_FOUND);
		assert_true(sisy_slice_eq(v, S("v1")));
	}
	assert_int_equal(get_at(m, "k", 3, &v), LSM_MEM_DELETED);
	assert_int_equal(get_at(m, "k", 4, &v), LSM_MEM_DELETED);
	assert_int_equal(get_at(m, "k", 5, &v), LSM_MEM_FOUND);
	assert_true(sisy_slice_eq(v, S("v5")));
	assert_int_equal(get_at(m, "k", LSM_MAX_SEQ, &v), LSM_MEM_FOUND);
	/* neighbours are distinct keys, not prefixes of each other */
	assert_int_equal(get_at(m, "kk", 9, &v), LSM_MEM_FOUND);
	assert_true(sisy_slice_eq(v, S("KK")));
	assert_int_equal(get_at(m, "kk", 3, &v), LSM_MEM_MISS);
	assert_int_equal(get_at(m, "a", 9, &v), LSM_MEM_MISS);
	assert_int_equal(get_at(m, "z", 9, &v), LSM_MEM_MISS);
	assert_int_equal(lsm_memtable_entries(m), 5);
	assert_true(lsm_memtable_usage(m) > 0);
	lsm_memtable_unref(m);
}

typedef struct ref_entry {
	uint8_t ikey[32];
	size_t klen;
	uint32_t val;
} ref_entry;

static int ref_cmp(const void *a, const void *b)
{
	const ref_entry *x = a, *y = b;
	return lsm_ikey_cmp(sisy_slice_make(x->ikey, x->klen),
			    sisy_slice_make(y->ikey, y->klen));
}

static void test_order_and_seek_vs_reference(void **state)
{
	uint64_t seed = tu_seed("memtable order");
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	enum { N = 20000 };
	ref_entry *ref = calloc(N, sizeof *ref);
	lsm_memtable *m = new_mt(state);
	for (int i = 0; i < N; i++) {
		char key[24];
		/* few distinct keys, so many versions of each */
		size_t kl = tu_key(key, sizeof key, sisy_rand_below(&r, 3000));
		uint64_t seq = (uint64_t)i + 1;
		lsm_vtype t = sisy_rand_chance(&r, 1, 5) ? LSM_TYPE_DELETE
							 : LSM_TYPE_VALUE;
		uint32_t val = (uint32_t)sisy_rand_next(&r);
		assert_int_equal(
		    lsm_memtable_add(m, seq, t, sisy_slice_make(key, kl),
				     sisy_slice_make(&val, sizeof val)),
		    SISY_OK);
		memcpy(ref[i].ikey, key, kl);
		sisy_put_u64(ref[i].ikey + kl, lsm_trailer(seq, t));
		ref[i].klen = kl + 8;
		ref[i].val = t == LSM_TYPE_VALUE ? val : 0;
	}
	qsort(ref, N, sizeof *ref, ref_cmp);
	lsm_iter *it = lsm_memtable_iter_new(m);
	lsm_memtable_unref(m); /* the iterator keeps it alive */
	int n = 0;
	for (lsm_iter_seek_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		sisy_slice k = lsm_iter_key(it), v = lsm_iter_value(it);
		assert_true(sisy_slice_eq(
		    k, sisy_slice_make(ref[n].ikey, ref[n].klen)));
		if (lsm_ikey_type(k) == LSM_TYPE_VALUE) {
			assert_int_equal(v.len, 4);
			assert_memory_equal(v.data, &ref[n].val, 4);
		} else {
			assert_int_equal(v.len, 0);
		}
		n++;
	}
	assert_int_equal(n, N);
	assert_int_equal(lsm_iter_status(it), SISY_OK);
	/* seeks land on the reference's lower bound */
	for (int i = 0; i < 2000; i++) {
		char key[24];
		size_t kl = tu_key(key, sizeof key, sisy_rand_below(&r, 3100));
		uint64_t seq = sisy_rand_below(&r, N + 10);
		ref_entry t;
		memcpy(t.ikey, key, kl);
		sisy_put_u64(t.ikey + kl, lsm_trailer(seq, LSM_TYPE_SEEK));
		t.klen = kl + 8;
		size_t lo = 0, hi = N;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (ref_cmp(&ref[mid], &t) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		lsm_iter_seek(it, sisy_slice_make(t.ikey, t.klen));
		if (lo == N) {
			assert_false(lsm_iter_valid(it));
		} else {
			assert_true(lsm_iter_valid(it));
			assert_true(sisy_slice_eq(
			    lsm_iter_key(it),
			    sisy_slice_make(ref[lo].ikey, ref[lo].klen)));
		}
	}
	lsm_iter_destroy(it);
	free(ref);
}

/* Keys with long shared prefixes, keys that are prefixes of others, and
 * bytes 0x00/0xff: the skiplist skips the prefix both search bounds share
 * with the key, so its order, seeks and gets must still match
 * lsm_ikey_cmp over every such key. */
typedef struct pfx_entry {
	uint8_t ikey[64];
	size_t klen;
} pfx_entry;

static int pfx_cmp(const void *a, const void *b)
{
	const pfx_entry *x = a, *y = b;
	return lsm_ikey_cmp(sisy_slice_make(x->ikey, x->klen),
			    sisy_slice_make(y->ikey, y->klen));
}

static size_t pfx_key(sisy_rand *r, uint8_t *out)
{
	static const char *const pre[] = {"",
					  "a",
					  "user:000",
					  "user:0000000",
					  "user:00000000",
					  "user:000000000000000000000000",
					  "user:00000000000000000000000:"};
	static const uint8_t alpha[] = {0x00, '0', '1', 'a', 0xff};
	const char *p = pre[sisy_rand_below(r, 7)];
	size_t n = strlen(p);
	memcpy(out, p, n);
	size_t tail = sisy_rand_below(r, 13);
	for (size_t i = 0; i < tail; i++)
		out[n++] = alpha[sisy_rand_below(r, 5)];
	return n;
}

static void test_shared_prefixes_vs_reference(void **state)
{
	sisy_rand r;
	sisy_rand_seed(&r, tu_seed("memtable prefixes"));
	enum { N = 6000 };
	pfx_entry *ref = calloc(N, sizeof *ref);
	assert_non_null(ref);
	lsm_memtable *m = new_mt(state);
	for (int i = 0; i < N; i++) {
		uint8_t key[48];
		size_t kl = pfx_key(&r, key);
		uint64_t seq = (uint64_t)i + 1;
		assert_int_equal(lsm_memtable_add(m, seq, LSM_TYPE_VALUE,
						  sisy_slice_make(key, kl),
						  sisy_slice_make(&seq, 8)),
				 SISY_OK);
		memcpy(ref[i].ikey, key, kl);
		sisy_put_u64(ref[i].ikey + kl,
			     lsm_trailer(seq, LSM_TYPE_VALUE));
		ref[i].klen = kl + 8;
	}
	qsort(ref, N, sizeof *ref, pfx_cmp);
	lsm_iter *it = lsm_memtable_iter_new(m);
	int n = 0;
	for (lsm_iter_seek_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		assert_true(n < N);
		assert_true(
		    sisy_slice_eq(lsm_iter_key(it),
				  sisy_slice_make(ref[n].ikey, ref[n].klen)));
		n++;
	}
	assert_int_equal(n, N);
	for (int i = 0; i < 3000; i++) {
		pfx_entry t;
		size_t kl = pfx_key(&r, t.ikey);
		uint64_t seq = sisy_rand_below(&r, N + 10);
		sisy_put_u64(t.ikey + kl, lsm_trailer(seq, LSM_TYPE_SEEK));
		t.klen = kl + 8;
		size_t lo = 0, hi = N;
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (pfx_cmp(&ref[mid], &t) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		lsm_iter_seek(it, sisy_slice_make(t.ikey, t.klen));
		if (lo == N) {
			assert_false(lsm_iter_valid(it));
		} else {
			assert_true(lsm_iter_valid(it));
			assert_true(sisy_slice_eq(
			    lsm_iter_key(it),
			    sisy_slice_make(ref[lo].ikey, ref[lo].klen)));
		}
		/* a get finds the newest version at or below seq */
		sisy_slice v;
		lsm_mem_result got =
		    lsm_memtable_get(m, sisy_slice_make(t.ikey, t.klen), &v);
		bool same_user = lo < N && ref[lo].klen == t.klen &&
				 memcmp(ref[lo].ikey, t.ikey, kl) == 0;
		assert_int_equal(got, same_user ? LSM_MEM_FOUND : LSM_MEM_MISS);
		if (same_user) {
			uint64_t want = lsm_ikey_seq(
			    sisy_slice_make(ref[lo].ikey, ref[lo].klen));
			assert_int_equal(v.len, 8);
			assert_memory_equal(v.data, &want, 8);
		}
	}
	lsm_iter_destroy(it);
	lsm_memtable_unref(m);
	free(ref);
}

/* --- concurrent readers ----------------------------------------------------
 */

enum { CONC_N = 30000 };

typedef struct conc {
	lsm_memtable *m;
	_Atomic uint64_t published; /* keys [0, published) are in */
	_Atomic bool stop;
	_Atomic uint64_t checks;
	_Atomic int failures;
} conc;

static void *conc_reader(void *arg)
{
	conc *c = arg;
	sisy_rand r;
	sisy_rand_seed(&r, (uintptr_t)&r);
	while (!atomic_load(&c->stop)) {
		uint64_t pub = atomic_load(&c->published);
		if (pub == 0)
			continue;
		/* every published key is found with its value */
		uint64_t k = sisy_rand_below(&r, pub);
		char key[24], ik[40];
		size_t kl = tu_key(key, sizeof key, k);
		memcpy(ik, key, kl);
		sisy_put_u64((uint8_t *)ik + kl,
			     lsm_trailer(LSM_MAX_SEQ, LSM_TYPE_SEEK));
		sisy_slice v;
		if (lsm_memtable_get(c->m, sisy_slice_make(ik, kl + 8), &v) !=
			LSM_MEM_FOUND ||
		    v.len != sizeof k || memcmp(v.data, &k, sizeof k) != 0)
			atomic_fetch_add(&c->failures, 1);
		/* a scan sees at least what was published, in order */
		lsm_iter *it = lsm_memtable_iter_new(c->m);
		uint64_t n = 0;
		sisy_buf prev = {0};
		for (lsm_iter_seek_first(it); lsm_iter_valid(it);
		     lsm_iter_next(it)) {
			sisy_slice key_now = lsm_iter_key(it);
			if (n > 0 &&
			    lsm_ikey_cmp(sisy_buf_slice(&prev), key_now) >= 0)
				atomic_fetch_add(&c->failures, 1);
			sisy_buf_set(&prev, key_now.data, key_now.len);
			n++;
		}
		if (n < pub)
			atomic_fetch_add(&c->failures, 1);
		sisy_buf_free(&prev);
		lsm_iter_destroy(it);
		atomic_fetch_add(&c->checks, 1);
	}
	return NULL;
}

/* Batch inserts (interleaved searches) give the same memtable as one add
 * per entry: tricky keys (shared prefixes, empty, 0x00/0xff), repeats of a
 * key inside a batch (so that a search's predecessor is overtaken by the
 * batch's own entries), deletes, batches of one key only and of every
 * size, and every level of the skiplist in order. */
static void test_batches_vs_single_adds(void **state)
{
	sisy_rand r;
	sisy_rand_seed(&r, tu_seed("memtable batches"));
	enum { BATCHES = 300, MAXB = 300 };
	lsm_memtable *a = new_mt(state), *b = new_mt(state);
	lsm_mem_op *ops = calloc(MAXB, sizeof *ops);
	uint8_t(*keys)[48] = calloc(MAXB, 48);
	uint64_t *vals = calloc(MAXB, sizeof *vals);
	assert_true(ops && keys && vals);
	uint64_t seq = 1, total = 0;
	for (int bi = 0; bi < BATCHES; bi++) {
		size_t n = 1 + sisy_rand_below(&r, MAXB);
		bool one_key = sisy_rand_below(&r, 10) == 0;
		for (size_t i = 0; i < n; i++) {
			size_t kl;
			if (i > 0 && (one_key || sisy_rand_below(&r, 8) == 0)) {
				/* a key already in this batch */
				size_t j = sisy_rand_below(&r, i);
				kl = ops[j].key.len;
				memcpy(keys[i], keys[j], kl);
			} else {
				kl = pfx_key(&r, keys[i]);
			}
			vals[i] = seq;
			bool del = sisy_rand_below(&r, 6) == 0;
			ops[i] = (lsm_mem_op){
			    .key = sisy_slice_make(keys[i], kl),
			    .value = sisy_slice_make(&vals[i], 8),
			    .seq = seq++,
			    .type = del ? LSM_TYPE_DELETE : LSM_TYPE_VALUE};
			assert_int_equal(
			    lsm_memtable_add(b, ops[i].seq, ops[i].type,
					     ops[i].key, ops[i].value),
			    SISY_OK);
		}
		assert_int_equal(lsm_memtable_add_batch(a, ops, n), SISY_OK);
		total += n;
		if (bi % 50 == 0)
			assert_true(lsm_memtable_check_levels(a));
	}
	assert_int_equal(lsm_memtable_entries(a), total);
	assert_true(lsm_memtable_check_levels(a));
	assert_true(lsm_memtable_check_levels(b));
	lsm_iter *ia = lsm_memtable_iter_new(a), *ib = lsm_memtable_iter_new(b);
	uint64_t seen = 0;
	lsm_iter_seek_first(ia);
	lsm_iter_seek_first(ib);
	for (; lsm_iter_valid(ib); lsm_iter_next(ia), lsm_iter_next(ib)) {
		assert_true(lsm_iter_valid(ia));
		assert_true(sisy_slice_eq(lsm_iter_key(ia), lsm_iter_key(ib)));
		assert_true(
		    sisy_slice_eq(lsm_iter_value(ia), lsm_iter_value(ib)));
		seen++;
	}
	assert_false(lsm_iter_valid(ia));
	assert_int_equal(seen, total);
	/* every version found by a search too: the upper levels are right */
	sisy_buf look = {0};
	for (lsm_iter_seek_first(ib); lsm_iter_valid(ib); lsm_iter_next(ib)) {
		sisy_slice ik = lsm_iter_key(ib);
		sisy_slice uk = sisy_slice_make(ik.data, ik.len - 8);
		uint64_t tr = sisy_get_u64(ik.data + ik.len - 8);
		assert_int_equal(lsm_ikey(&look, uk, tr >> 8, LSM_TYPE_SEEK),
				 SISY_OK);
		sisy_slice va = {0}, vb = {0};
		lsm_mem_result ra =
		    lsm_memtable_get(a, sisy_buf_slice(&look), &va);
		lsm_mem_result rb =
		    lsm_memtable_get(b, sisy_buf_slice(&look), &vb);
		assert_int_equal(ra, rb);
		assert_int_not_equal(ra, LSM_MEM_MISS);
		if (ra == LSM_MEM_FOUND)
			assert_true(sisy_slice_eq(va, vb));
	}
	sisy_buf_free(&look);
	lsm_iter_destroy(ia);
	lsm_iter_destroy(ib);
	lsm_memtable_unref(a);
	lsm_memtable_unref(b);
	free(ops);
	free(keys);
	free(vals);
}

static void test_concurrent_readers(void **state)
{
	conc c = {.m = new_mt(state)};
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, conc_reader, &c),
				 0);
	/* insert in a shuffled order so inserts land everywhere in the list */
	uint64_t *order = malloc(CONC_N * sizeof *order);
	for (uint64_t i = 0; i < CONC_N; i++)
		order[i] = i;
	sisy_rand r;
	sisy_rand_seed(&r, 7);
	for (uint64_t i = CONC_N - 1; i > 0; i--) {
		uint64_t j = sisy_rand_below(&r, i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	/* Readers check keys [0, published): publish only the contiguous
	 * prefix that is complete. */
	bool *in = calloc(CONC_N, 1);
	uint64_t prefix = 0;
	for (uint64_t i = 0; i < CONC_N; i++) {
		uint64_t k = order[i];
		char key[24];
		size_t kl = tu_key(key, sizeof key, k);
		assert_int_equal(
		    lsm_memtable_add(c.m, i + 1, LSM_TYPE_VALUE,
				     sisy_slice_make(key, kl),
				     sisy_slice_make(&k, sizeof k)),
		    SISY_OK);
		in[k] = true;
		while (prefix < CONC_N && in[prefix])
			prefix++;
		atomic_store(&c.published, prefix);
	}
	/* let the readers check the full table at least a few times */
	uint64_t before = atomic_load(&c.checks);
	for (int spin = 0; spin < 100000 && atomic_load(&c.checks) < before + 4;
	     spin++)
		usleep(100);
	atomic_store(&c.stop, true);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&c.checks) >= before + 4);
	assert_int_equal(atomic_load(&c.failures), 0);
	free(in);
	free(order);
	lsm_memtable_unref(c.m);
}

static void test_bloom_filters_absent_keys(void **state)
{
	(void)state;
	/* with a filter: present keys always "may", absent ones rarely */
	lsm_memtable *m = lsm_memtable_new_sized(1 << 20);
	lsm_memtable *plain = lsm_memtable_new();
	enum { N = 8000 };
	for (uint64_t i = 0; i < N; i++) {
		char key[24];
		size_t kl = tu_key(key, sizeof key, i * 2);
		assert_int_equal(lsm_memtable_add(m, i + 1, LSM_TYPE_VALUE,
						  sisy_slice_make(key, kl),
						  sisy_slice_make("v", 1)),
				 SISY_OK);
	}
	int false_pos = 0;
	for (uint64_t i = 0; i < N; i++) {
		char key[24];
		size_t kl = tu_key(key, sizeof key, i * 2);
		assert_true(
		    lsm_memtable_may_contain(m, sisy_slice_make(key, kl)));
		kl = tu_key(key, sizeof key, i * 2 + 1);
		false_pos +=
		    lsm_memtable_may_contain(m, sisy_slice_make(key, kl));
		/* without a filter the answer is always "may" */
		assert_true(
		    lsm_memtable_may_contain(plain, sisy_slice_make(key, kl)));
	}
	/* 1 MiB -> 2^17 bits for 8000 keys (16 bits/key): well under 2% */
	assert_true(false_pos < N / 50);
	lsm_memtable_unref(m);
	lsm_memtable_unref(plain);
}

/* --- batch inserts: key shapes and orders -----------------------------------
 * The skiplist's searches compare keys a word at a time, decide keys of 16
 * bytes and more from two cached words and the trailer, shift out bytes past
 * a short key, and a batch links its entries after predecessors found
 * before the batch's earlier entries went in. Keys here hit each case: empty
 * and shorter than 8 bytes, 8/15/16/17 and more bytes sharing prefixes, the
 * same user key several times in one batch (newest first), bytes
 * 0x00/0x7f/0x80/0xff where a wrong word order or sign would show; entries
 * arrive in ascending, descending and random order, into an empty memtable
 * (so heights grow during the first batches). After every batch each level
 * is in order (lsm_memtable_check_levels, which compares with
 * lsm_user_cmp) and a full scan equals the sorted reference. */
typedef struct shape_op {
	uint8_t key[40];
	size_t klen;
	uint64_t seq;
	lsm_vtype type;
} shape_op;

static int shape_ikey_cmp(const shape_op *a, const shape_op *b)
{
	uint8_t x[48], y[48];
	memcpy(x, a->key, a->klen);
	sisy_put_u64(x + a->klen, lsm_trailer(a->seq, a->type));
	memcpy(y, b->key, b->klen);
	sisy_put_u64(y + b->klen, lsm_trailer(b->seq, b->type));
	return lsm_ikey_cmp(sisy_slice_make(x, a->klen + 8),
			    sisy_slice_make(y, b->klen + 8));
}

static int shape_asc(const void *a, const void *b)
{
	return shape_ikey_cmp(a, b);
}

static int shape_desc(const void *a, const void *b)
{
	return shape_ikey_cmp(b, a);
}

static size_t shape_key(sisy_rand *r, uint8_t *out)
{
	static const char *const pre[] = {"",
					  "a",
					  "ab",
					  "abcdefg",
					  "abcdefgh",
					  "abcdefghijklmno",
					  "abcdefghijklmnop",
					  "abcdefghijklmnopq",
					  "key0000000000001",
					  "key00000000000012"};
	static const uint8_t tail[] = {0x00, 'a', 0x7f, 0x80, 0xff};
	const char *p = pre[sisy_rand_below(r, 10)];
	size_t n = strlen(p);
	memcpy(out, p, n);
	/* bytes changed inside the first 16: 0x7f/0x80 in either word */
	if (n > 0 && sisy_rand_below(r, 4) == 0)
		out[sisy_rand_below(r, n)] = tail[sisy_rand_below(r, 5)];
	size_t t = sisy_rand_below(r, 4);
	for (size_t i = 0; i < t; i++)
		out[n++] = tail[sisy_rand_below(r, 5)];
	return n;
}

/* Every entry of m in order, equal to ref[0..n) sorted ascending. */
static void shape_check_scan(lsm_memtable *m, shape_op *ref, size_t n)
{
	qsort(ref, n, sizeof *ref, shape_asc);
	lsm_iter *it = lsm_memtable_iter_new(m);
	assert_non_null(it);
	size_t i = 0;
	for (lsm_iter_seek_first(it); lsm_iter_valid(it); lsm_iter_next(it)) {
		assert_true(i < n);
		sisy_slice k = lsm_iter_key(it);
		assert_int_equal(k.len, ref[i].klen + 8);
		assert_memory_equal(k.data, ref[i].key, ref[i].klen);
		assert_int_equal(lsm_ikey_seq(k), ref[i].seq);
		i++;
	}
	assert_int_equal(i, n);
	lsm_iter_destroy(it);
}

static void test_batch_key_shapes_and_orders(void **state)
{
	sisy_rand r;
	sisy_rand_seed(&r, tu_seed("memtable batch shapes"));
	enum { N = 1500, MAXB = 260 };
	shape_op *gen = calloc(N, sizeof *gen), *ref = calloc(N, sizeof *ref);
	lsm_mem_op *ops = calloc(MAXB, sizeof *ops);
	assert_true(gen && ref && ops);
	for (int order = 0; order < 3; order++) { /* asc, desc, random */
		for (size_t i = 0; i < N; i++) {
			if (i > 0 && sisy_rand_below(&r, 4) == 0) {
				/* the same user key again, nearby: often
				 * in the same batch */
				size_t back = 1 + sisy_rand_below(&r, 8);
				size_t j = i > back ? i - back : 0;
				memcpy(gen[i].key, gen[j].key, gen[j].klen);
				gen[i].klen = gen[j].klen;
			} else {
				gen[i].klen = shape_key(&r, gen[i].key);
			}
			gen[i].seq = i + 1;
			gen[i].type = sisy_rand_below(&r, 5) == 0
					  ? LSM_TYPE_DELETE
					  : LSM_TYPE_VALUE;
		}
		if (order == 0)
			qsort(gen, N, sizeof *gen, shape_asc);
		else if (order == 1)
			qsort(gen, N, sizeof *gen, shape_desc);
		lsm_memtable *a = new_mt(state), *b = new_mt(state);
		assert_true(a && b);
		size_t done = 0;
		while (done < N) {
			size_t n = 1 + sisy_rand_below(&r, MAXB);
			if (n > N - done)
				n = N - done;
			for (size_t i = 0; i < n; i++) {
				shape_op *g = &gen[done + i];
				ops[i] = (lsm_mem_op){
				    .key = sisy_slice_make(g->key, g->klen),
				    .value = sisy_slice_make(&g->seq, 8),
				    .seq = g->seq,
				    .type = g->type};
				assert_int_equal(
				    lsm_memtable_add(b, g->seq, g->type,
						     ops[i].key, ops[i].value),
				    SISY_OK);
				ref[done + i] = *g;
			}
			assert_int_equal(lsm_memtable_add_batch(a, ops, n),
					 SISY_OK);
			done += n;
			assert_int_equal(lsm_memtable_entries(a), done);
			assert_true(lsm_memtable_check_levels(a));
			assert_true(lsm_memtable_check_levels(b));
			shape_check_scan(a, ref, done);
			shape_check_scan(b, ref, done);
		}
		/* each version is what a read at its sequence number gets */
		sisy_buf look = {0};
		for (size_t i = 0; i < N; i++) {
			sisy_slice uk =
			    sisy_slice_make(gen[i].key, gen[i].klen);
			assert_int_equal(
			    lsm_ikey(&look, uk, gen[i].seq, LSM_TYPE_SEEK),
			    SISY_OK);
			sisy_slice v = {0};
			lsm_mem_result got =
			    lsm_memtable_get(a, sisy_buf_slice(&look), &v);
			if (gen[i].type == LSM_TYPE_DELETE) {
				assert_int_equal(got, LSM_MEM_DELETED);
			} else {
				assert_int_equal(got, LSM_MEM_FOUND);
				assert_int_equal(v.len, 8);
				assert_memory_equal(v.data, &gen[i].seq, 8);
			}
		}
		sisy_buf_free(&look);
		lsm_memtable_unref(a);
		lsm_memtable_unref(b);
	}
	free(gen);
	free(ref);
	free(ops);
}

/* Runs: versions of one key spread over several runs, some inserted out
 * of sequence order (an older version in a newer run): a lookup still
 * finds the newest visible one, and a flush keeps exactly the versions a
 * snapshot may need. */
static void test_runs_versions_out_of_order(void **state)
{
	(void)state;
	lsm_memtable *m = lsm_memtable_new_runs(64 << 10, 4 << 10);
	assert_non_null(m);
	static char big[3000];
	memset(big, 'x', sizeof big);
	uint64_t filler = 1000;
	/* each filler entry (3 KB) pushes the newest run towards 4 KiB */
	struct {
		uint64_t seq;
		lsm_vtype t;
		const char *v;
	} vers[] = {{10, LSM_TYPE_VALUE, "ten"},
		    {5, LSM_TYPE_VALUE, "five"},
		    {20, LSM_TYPE_DELETE, ""},
		    {15, LSM_TYPE_VALUE, "fifteen"}};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(lsm_memtable_add(m, vers[i].seq, vers[i].t,
						  S("k"), S(vers[i].v)),
				 SISY_OK);
		for (int j = 0; j < 2; j++) {
			char fk[24];
			size_t fl = tu_key(fk, sizeof fk, filler);
			assert_int_equal(
			    lsm_memtable_add(m, filler++, LSM_TYPE_VALUE,
					     sisy_slice_make(fk, fl),
					     sisy_slice_make(big, sizeof big)),
			    SISY_OK);
		}
	}
	/* one run per version of k at least */
	assert_true(lsm_memtable_runs(m) >= 4);
	assert_true(lsm_memtable_check_levels(m));
	sisy_slice v;
	assert_int_equal(get_at(m, "k", 4, &v), LSM_MEM_MISS);
	for (uint64_t s = 5; s <= 30; s++) {
		lsm_mem_result r = get_at(m, "k", s, &v);
		if (s >= 20) {
			assert_int_equal(r, LSM_MEM_DELETED);
			continue;
		}
		assert_int_equal(r, LSM_MEM_FOUND);
		const char *want = s >= 15   ? "fifteen"
				   : s >= 10 ? "ten"
					     : "five";
		assert_true(sisy_slice_eq(v, S(want)));
	}
	assert_true(lsm_memtable_may_contain(m, S("k")));
	/* flushes at three oldest snapshots: the versions of k they keep */
	struct {
		uint64_t smallest;
		uint64_t keep[4];
	} fl[] = {{0, {20, 15, 10, 5}},
		  {12, {20, 15, 10, 0}},
		  {16, {20, 15, 0, 0}},
		  {100, {20, 0, 0, 0}}};
	for (size_t f = 0; f < 4; f++) {
		lsm_iter *it = lsm_memtable_flush_iter_new(m, fl[f].smallest);
		assert_non_null(it);
		size_t nk = 0, nfill = 0;
		for (lsm_iter_seek_first(it); lsm_iter_valid(it);
		     lsm_iter_next(it)) {
			sisy_slice k = lsm_iter_key(it);
			if (k.len == 9 && k.data[0] == 'k') {
				assert_true(nk < 4);
				assert_int_equal(lsm_ikey_seq(k),
						 fl[f].keep[nk]);
				nk++;
			} else {
				nfill++;
			}
		}
		assert_int_equal(lsm_iter_status(it), SISY_OK);
		assert_true(nk == 4 || fl[f].keep[nk] == 0);
		assert_int_equal(nfill, 8);
		lsm_iter_destroy(it);
	}
	lsm_memtable_unref(m);
}

/* Random versions with shuffled sequence numbers, in a memtable of one run
 * and in one of many: both give the same lookups at every sequence number,
 * and a flush at a random oldest snapshot yields exactly the reference's
 * versions (every version newer than the snapshot, plus the newest one at
 * or below it). */
static void test_runs_vs_reference(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, tu_seed("memtable runs"));
	enum { N = 6000, KEYS = 500 };
	ref_entry *ref = calloc(N, sizeof *ref);
	uint64_t *seqs = calloc(N, sizeof *seqs);
	assert_true(ref && seqs);
	for (int i = 0; i < N; i++)
		seqs[i] = (uint64_t)i + 1;
	/* mostly in order, with stretches shuffled */
	for (int i = 0; i + 1 < N; i++)
		if (sisy_rand_chance(&r, 1, 4)) {
			int j = i + 1 + (int)sisy_rand_below(&r, 40);
			if (j >= N)
				j = N - 1;
			uint64_t t = seqs[i];
			seqs[i] = seqs[j];
			seqs[j] = t;
		}
	lsm_memtable *one = lsm_memtable_new(),
		     *runs = lsm_memtable_new_runs(128 << 10, 8 << 10);
	for (int i = 0; i < N; i++) {
		char key[24];
		size_t kl = tu_key(key, sizeof key, sisy_rand_below(&r, KEYS));
		lsm_vtype t = sisy_rand_chance(&r, 1, 6) ? LSM_TYPE_DELETE
							 : LSM_TYPE_VALUE;
		uint32_t val = (uint32_t)seqs[i];
		for (int w = 0; w < 2; w++)
			assert_int_equal(
			    lsm_memtable_add(w ? runs : one, seqs[i], t,
					     sisy_slice_make(key, kl),
					     sisy_slice_make(&val, sizeof val)),
			    SISY_OK);
		memcpy(ref[i].ikey, key, kl);
		sisy_put_u64(ref[i].ikey + kl, lsm_trailer(seqs[i], t));
		ref[i].klen = kl + 8;
		ref[i].val = t == LSM_TYPE_VALUE ? val : 0;
	}
	assert_true(lsm_memtable_runs(runs) > 8);
	assert_int_equal(lsm_memtable_runs(one), 1);
	assert_true(lsm_memtable_check_levels(runs));
	qsort(ref, N, sizeof *ref, ref_cmp);
	/* lookups agree at random sequence numbers */
	for (int i = 0; i < 4000; i++) {
		char key[24];
		size_t kl =
		    tu_key(key, sizeof key, sisy_rand_below(&r, KEYS + 20));
		key[kl] = 0;
		uint64_t seq = sisy_rand_below(&r, N + 10);
		sisy_slice va = {0}, vb = {0};
		lsm_mem_result ra = get_at(one, key, seq, &va);
		lsm_mem_result rb = get_at(runs, key, seq, &vb);
		assert_int_equal(ra, rb);
		if (ra == LSM_MEM_FOUND)
			assert_true(sisy_slice_eq(va, vb));
	}
	/* flushes */
	for (int f = 0; f < 6; f++) {
		uint64_t smallest = f == 0 ? 0 : sisy_rand_below(&r, N + 10);
		for (int w = 0; w < 2; w++) {
			lsm_iter *it = lsm_memtable_flush_iter_new(
			    w ? runs : one, smallest);
			assert_non_null(it);
			lsm_iter_seek_first(it);
			for (int i = 0; i < N; i++) {
				/* ref[i] is kept unless an earlier version
				 * of its key at or below smallest hides it */
				bool hidden = false;
				for (int j = i - 1;
				     j >= 0 && ref[j].klen == ref[i].klen &&
				     memcmp(ref[j].ikey, ref[i].ikey,
					    ref[i].klen - 8) == 0;
				     j--)
					if (lsm_ikey_seq(sisy_slice_make(
						ref[j].ikey, ref[j].klen)) <=
					    smallest)
						hidden = true;
				if (hidden)
					continue;
				assert_true(lsm_iter_valid(it));
				assert_true(sisy_slice_eq(
				    lsm_iter_key(it),
				    sisy_slice_make(ref[i].ikey, ref[i].klen)));
				lsm_iter_next(it);
			}
			assert_false(lsm_iter_valid(it));
			assert_int_equal(lsm_iter_status(it), SISY_OK);
			lsm_iter_destroy(it);
		}
	}
	lsm_memtable_unref(one);
	lsm_memtable_unref(runs);
	free(seqs);
	free(ref);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_versions_and_deletes),
	    cmocka_unit_test(test_order_and_seek_vs_reference),
	    cmocka_unit_test(test_concurrent_readers),
	    cmocka_unit_test_setup(test_versions_and_deletes, with_bloom),
	    cmocka_unit_test_setup(test_order_and_seek_vs_reference,
				   with_bloom),
	    cmocka_unit_test_setup(test_concurrent_readers, with_bloom),
	    cmocka_unit_test(test_bloom_filters_absent_keys),
	    cmocka_unit_test(test_shared_prefixes_vs_reference),
	    cmocka_unit_test(test_batches_vs_single_adds),
	    cmocka_unit_test_setup(test_batches_vs_single_adds, with_bloom),
	    cmocka_unit_test_setup(test_shared_prefixes_vs_reference,
				   with_bloom),
	    cmocka_unit_test(test_batch_key_shapes_and_orders),
	    cmocka_unit_test_setup(test_batch_key_shapes_and_orders,
				   with_bloom),
	    cmocka_unit_test_setup(test_versions_and_deletes, with_runs),
	    cmocka_unit_test_setup(test_order_and_seek_vs_reference, with_runs),
	    cmocka_unit_test_setup(test_concurrent_readers, with_runs),
	    cmocka_unit_test_setup(test_batches_vs_single_adds, with_runs),
	    cmocka_unit_test_setup(test_shared_prefixes_vs_reference,
				   with_runs),
	    cmocka_unit_test_setup(test_batch_key_shapes_and_orders, with_runs),
	    cmocka_unit_test(test_runs_versions_out_of_order),
	    cmocka_unit_test(test_runs_vs_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
