/* Tests sisyd/lsm/cache.c: the sharded LRU cache bounded by charge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "coding.h"
#include "rand.h"

/* Values are malloc'd ints; the deleter counts calls, and counts the calls
 * whose key is not the key the value was stored under (it may run on any
 * thread, so it does not assert itself). */
static atomic_int deleted;
static atomic_int bad_deletes;

static void int_deleter(const void *key, size_t klen, void *value)
{
	int *v = value;
	if (klen != 4 || (int)sisy_get_u32(key) != *v)
		atomic_fetch_add(&bad_deletes, 1);
	atomic_fetch_add(&deleted, 1);
	free(v);
}

static void key_of(uint8_t k[4], int i)
{
	sisy_put_u32(k, (uint32_t)i);
}

static lsm_cache_handle *put(lsm_cache *c, int i, size_t charge)
{
	uint8_t k[4];
	key_of(k, i);
	int *v = malloc(sizeof *v);
	*v = i;
	return lsm_cache_insert(c, k, 4, v, charge, int_deleter);
}

static void put_release(lsm_cache *c, int i, size_t charge)
{
	lsm_cache_handle *h = put(c, i, charge);
	assert_non_null(h);
	lsm_cache_release(c, h);
}

/* The value stored under i, or -1 when absent. */
static int get(lsm_cache *c, int i)
{
	uint8_t k[4];
	key_of(k, i);
	lsm_cache_handle *h = lsm_cache_lookup(c, k, 4);
	if (h == NULL)
		return -1;
	int v = *(int *)lsm_cache_value(h);
	lsm_cache_release(c, h);
	return v;
}

static int setup(void **state)
{
	(void)state;
	atomic_store(&deleted, 0);
	atomic_store(&bad_deletes, 0);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	return atomic_load(&bad_deletes) == 0 ? 0 : -1;
}

static void test_insert_lookup(void **state)
{
	(void)state;
	lsm_cache *c = lsm_cache_new(1000, 4);
	assert_non_null(c);
	assert_int_equal(get(c, 1), -1);
	put_release(c, 1, 10);
	put_release(c, 2, 20);
	assert_int_equal(get(c, 1), 1);
	assert_int_equal(get(c, 2), 2);
	assert_int_equal(get(c, 3), -1);
	assert_int_equal(lsm_cache_usage(c), 30);
	assert_int_equal(lsm_cache_capacity(c), 1000);
	/* Replacing a key frees the old value and charges the new one. */
	put_release(c, 1, 15);
	assert_int_equal(atomic_load(&deleted), 1);
	assert_int_equal(lsm_cache_usage(c), 35);
	lsm_cache_erase(c, (const uint8_t[]){2, 0, 0, 0}, 4);
	assert_int_equal(get(c, 2), -1);
	assert_int_equal(atomic_load(&deleted), 2);
	assert_int_equal(lsm_cache_usage(c), 15);
	lsm_cache_free(c);
	assert_int_equal(atomic_load(&deleted), 3);
}

static void test_lru_eviction_by_charge(void **state)
{
	(void)state;
	/* One shard, so the LRU order is global. */
	lsm_cache *c = lsm_cache_new(100, 0);
	for (int i = 0; i < 10; i++)
		put_release(c, i, 10);
	assert_int_equal(lsm_cache_usage(c), 100);
	/* Touch 0 so that 1 is now the oldest. */
	assert_int_equal(get(c, 0), 0);
	put_release(c, 10, 10);
	assert_int_equal(get(c, 1), -1);
	assert_int_equal(get(c, 0), 0);
	assert_int_equal(get(c, 2), 2);
	/* A big entry pushes out as many old ones as it needs. */
	put_release(c, 11, 35);
	assert_true(lsm_cache_usage(c) <= 100);
	/* 100 + 35: the four oldest (3, 4, 5, 6) make room; 7 stays. */
	assert_int_equal(get(c, 3), -1);
	assert_int_equal(get(c, 4), -1);
	assert_int_equal(get(c, 5), -1);
	assert_int_equal(get(c, 6), -1);
	assert_int_equal(get(c, 7), 7);
	assert_int_equal(get(c, 11), 11);
	assert_int_equal(get(c, 10), 10);
	assert_int_equal(lsm_cache_usage(c), 95);
	lsm_cache_free(c);
	assert_int_equal(atomic_load(&deleted), 12);
}

static void test_pinned_entries_survive(void **state)
{
	(void)state;
	lsm_cache *c = lsm_cache_new(50, 0);
	lsm_cache_handle *pinned = put(c, 1, 40);
	/* Over capacity, but the only other entry is pinned: the new one stays
	 * as long as its own handle, and usage exceeds capacity only by
	 * pinned entries. */
	lsm_cache_handle *h2 = put(c, 2, 40);
	assert_int_equal(lsm_cache_usage(c), 80);
	lsm_cache_release(c, h2); /* unpinned and over capacity: goes */
	assert_int_equal(get(c, 2), -1);
	assert_int_equal(lsm_cache_usage(c), 40);
	for (int i = 3; i < 20; i++)
		put_release(c, i, 10);
	/* Entry 1 outlived all that churn because it was pinned. */
	assert_int_equal(*(int *)lsm_cache_value(pinned), 1);
	assert_int_equal(get(c, 1), 1);
	/* Erasing a pinned entry hides it but keeps the value alive. */
	int before = atomic_load(&deleted);
	lsm_cache_erase(c, (const uint8_t[]){1, 0, 0, 0}, 4);
	assert_int_equal(get(c, 1), -1);
	assert_int_equal(atomic_load(&deleted), before);
	assert_int_equal(*(int *)lsm_cache_value(pinned), 1);
	lsm_cache_release(c, pinned);
	assert_int_equal(atomic_load(&deleted), before + 1);
	lsm_cache_free(c);
}

static void test_replace_while_pinned(void **state)
{
	(void)state;
	lsm_cache *c = lsm_cache_new(100, 2);
	lsm_cache_handle *old = put(c, 7, 10);
	lsm_cache_handle *h = put(c, 7, 10);
	/* Both handles work; lookups see the new entry; usage counts it once.
	 */
	assert_int_equal(*(int *)lsm_cache_value(old), 7);
	assert_int_equal(lsm_cache_usage(c), 10);
	assert_int_equal(atomic_load(&deleted), 0);
	lsm_cache_release(c, old);
	assert_int_equal(atomic_load(&deleted), 1);
	lsm_cache_release(c, h);
	assert_int_equal(get(c, 7), 7);
	lsm_cache_free(c);
	assert_int_equal(atomic_load(&deleted), 2);
}

static void test_zero_capacity_caches_nothing(void **state)
{
	(void)state;
	lsm_cache *c = lsm_cache_new(0, 4);
	lsm_cache_handle *h = put(c, 1, 10);
	assert_non_null(h);
	assert_int_equal(*(int *)lsm_cache_value(h), 1);
	assert_int_equal(get(c, 1), -1);
	assert_int_equal(lsm_cache_usage(c), 0);
	lsm_cache_release(c, h);
	assert_int_equal(atomic_load(&deleted), 1);
	lsm_cache_free(c);
}

static void test_shards_split_capacity_exactly(void **state)
{
	(void)state;
	/* 20 unit entries over 16 shards: the total never exceeds 20, whatever
	 * shards the keys hash to. */
	lsm_cache *c = lsm_cache_new(20, 4);
	for (int i = 0; i < 5000; i++) {
		put_release(c, i, 1);
		assert_true(lsm_cache_usage(c) <= 20);
	}
	int present = 0;
	for (int i = 0; i < 5000; i++)
		present += get(c, i) == i;
	assert_int_equal((size_t)present, lsm_cache_usage(c));
	assert_true(present > 0);
	lsm_cache_free(c);
	assert_int_equal(atomic_load(&deleted), 5000);
}

static void test_many_keys_grow_table(void **state)
{
	(void)state;
	lsm_cache *c = lsm_cache_new(1u << 20, 1);
	for (int i = 0; i < 20000; i++)
		put_release(c, i, 1);
	for (int i = 0; i < 20000; i++)
		assert_int_equal(get(c, i), i);
	assert_int_equal(lsm_cache_usage(c), 20000);
	lsm_cache_free(c);
}

static void test_new_ids_are_distinct(void **state)
{
	(void)state;
	lsm_cache *c = lsm_cache_new(10, 0);
	uint64_t a = lsm_cache_new_id(c), b = lsm_cache_new_id(c);
	assert_true(a != b);
	assert_true(a != 0 && b != 0);
	lsm_cache_free(c);
}

/* Threads insert, look up, erase and pin keys from a small key space; a
 * value always carries its key, so a lookup that returned a wrong or freed
 * value would fail the check (or trip ASan). */
typedef struct worker {
	lsm_cache *c;
	uint64_t seed;
} worker;

static void *worker_run(void *arg)
{
	worker *w = arg;
	sisy_rand r;
	sisy_rand_seed(&r, w->seed);
	for (int i = 0; i < 20000; i++) {
		int k = (int)sisy_rand_below(&r, 500);
		uint64_t op = sisy_rand_below(&r, 10);
		if (op < 3) {
			put_release(w->c, k, 1 + sisy_rand_below(&r, 8));
		} else if (op == 3) {
			uint8_t key[4];
			key_of(key, k);
			lsm_cache_erase(w->c, key, 4);
		} else {
			uint8_t key[4];
			key_of(key, k);
			lsm_cache_handle *h = lsm_cache_lookup(w->c, key, 4);
			if (h != NULL) {
				if (*(int *)lsm_cache_value(h) != k)
					return (void *)1;
				lsm_cache_release(w->c, h);
			}
		}
	}
	return NULL;
}

static void test_concurrent_use(void **state)
{
	(void)state;
	lsm_cache *c = lsm_cache_new(600, 4);
	pthread_t th[4];
	worker w[4];
	for (int i = 0; i < 4; i++) {
		w[i].c = c;
		w[i].seed = 100 + (uint64_t)i;
		assert_int_equal(
		    pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(th[i], &ret);
		assert_null(ret);
	}
	assert_true(lsm_cache_usage(c) <= 600);
	lsm_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_insert_lookup, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_lru_eviction_by_charge, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pinned_entries_survive, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_replace_while_pinned, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_zero_capacity_caches_nothing,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shards_split_capacity_exactly,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_keys_grow_table, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_new_ids_are_distinct, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_use, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
