/* Tests sisyd/lsm/table_cache.c: lookups through the cache, the bound on
 * open files, LRU order, pinning (a table in use is never closed under its
 * user), eviction of deleted tables, errors, and concurrent readers. Files
 * live in the in-memory fault file system behind a wrapper that counts the
 * files open at any moment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_fault.h"
#include "table_fixture.h"
#include "wrapfs.h"

#define NTABLES 10

typedef struct fixture {
	sisy_fs_fault *ff;
	wrapfs w;
	lsm_cache *blocks;
	lsm_counters counters;
	tf_set sets[NTABLES + 1]; /* table numbers 1..NTABLES */
	uint64_t sizes[NTABLES + 1];
} fixture;

static int setup(void **state)
{
	fixture *fx = calloc(1, sizeof *fx);
	fx->ff = sisy_fs_fault_new(2);
	wrapfs_init(&fx->w, sisy_fs_fault_fs(fx->ff), false);
	fx->blocks = lsm_cache_new(1 << 20, 4);
	if (sisy_fs_mkdir(&fx->w.base, "/db") != SISY_OK)
		return -1;
	lsm_table_options o;
	lsm_table_options_init(&o);
	for (int n = 1; n <= NTABLES; n++) {
		char path[64];
		lsm_file_name(path, sizeof path, "/db", (uint64_t)n,
			      LSM_FILE_TABLE);
		tf_set_make(&fx->sets[n], 300, 16, 60, false, (uint64_t)n);
		if (tf_build(&fx->w.base, path, &o, &fx->sets[n],
			     &fx->sizes[n]) != SISY_OK)
			return -1;
	}
	atomic_store(&fx->w.opens, 0);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	fixture *fx = *state;
	for (int n = 1; n <= NTABLES; n++)
		tf_set_free(&fx->sets[n]);
	lsm_cache_free(fx->blocks);
	sisy_fs_fault_free(fx->ff);
	free(fx);
	return 0;
}

static lsm_table_cache *new_cache(fixture *fx, int max_open)
{
	lsm_table_cache *tc;
	assert_int_equal(lsm_table_cache_new(&fx->w.base, "/db", max_open,
					     fx->blocks, &fx->counters, true,
					     &tc),
			 SISY_OK);
	return tc;
}

/* Looks up every 7th user key of table n and checks the answers. */
static void check_table(fixture *fx, lsm_table_cache *tc, int n)
{
	const tf_set *s = &fx->sets[n];
	sisy_buf lk = {0};
	tf_got g = {0};
	for (int num = 0; num < 2 * s->users; num += 7) {
		sisy_slice lookup = tf_lookup(&lk, s, num, LSM_MAX_SEQ);
		int want = tf_expect_get(s, lookup);
		bool found;
		assert_int_equal(lsm_table_cache_lookup(tc, (uint64_t)n,
							fx->sizes[n], lookup,
							tf_got_fn, &g, &found),
				 SISY_OK);
		assert_int_equal(found, want >= 0);
		if (want >= 0)
			assert_true(sisy_slice_eq(sisy_buf_slice(&g.val),
						  tf_val(s, want)));
	}
	sisy_buf_free(&lk);
	tf_got_free(&g);
}

static int open_files(fixture *fx)
{
	return atomic_load(&fx->w.open_files);
}
static int opens(fixture *fx)
{
	return atomic_load(&fx->w.opens);
}

static void test_lookups_and_lru_bound(void **state)
{
	fixture *fx = *state;
	lsm_table_cache *tc = new_cache(fx, 3);
	for (int n = 1; n <= 3; n++)
		check_table(fx, tc, n);
	assert_int_equal(opens(fx), 3);
	assert_int_equal(open_files(fx), 3);
	/* Hits: nothing reopened. */
	for (int round = 0; round < 3; round++)
		for (int n = 1; n <= 3; n++)
			check_table(fx, tc, n);
	assert_int_equal(opens(fx), 3);
	/* 4 evicts the least recently used, 1; 2 and 3 stay open. */
	check_table(fx, tc, 4);
	assert_int_equal(opens(fx), 4);
	assert_int_equal(open_files(fx), 3);
	check_table(fx, tc, 2);
	check_table(fx, tc, 3);
	assert_int_equal(opens(fx), 4);
	check_table(fx, tc, 1);
	assert_int_equal(opens(fx), 5);
	/* Cycling through all of them never keeps more than 3 open. */
	for (int round = 0; round < 3; round++)
		for (int n = 1; n <= NTABLES; n++) {
			check_table(fx, tc, n);
			assert_true(open_files(fx) <= 3);
		}
	lsm_table_cache_free(tc);
	assert_int_equal(open_files(fx), 0);
}

static void test_pinned_table_stays_open(void **state)
{
	fixture *fx = *state;
	lsm_table_cache *tc = new_cache(fx, 2);
	lsm_table *t;
	lsm_table_ref *ref;
	assert_int_equal(lsm_table_cache_get(tc, 1, fx->sizes[1], &t, &ref),
			 SISY_OK);
	/* Churn every other table through the cache. A pinned table cannot be
	 * evicted (usage may exceed max_open only by pinned tables), so the
	 * others share what is left: at most 2 files open in all. */
	for (int n = 2; n <= NTABLES; n++) {
		check_table(fx, tc, n);
		assert_true(open_files(fx) <= 2);
	}
	sisy_buf lk = {0};
	tf_got g = {0};
	bool found;
	sisy_slice lookup = tf_lookup(&lk, &fx->sets[1], 0, LSM_MAX_SEQ);
	assert_int_equal(lsm_table_get(t, lookup, tf_got_fn, &g, &found),
			 SISY_OK);
	assert_int_equal(found, tf_expect_get(&fx->sets[1], lookup) >= 0);
	lsm_table_cache_release(tc, ref);
	assert_true(open_files(fx) <= 2);
	/* Unpinned, it is the most recently used: still cached. */
	int before = opens(fx);
	check_table(fx, tc, 1);
	assert_int_equal(opens(fx), before);
	sisy_buf_free(&lk);
	tf_got_free(&g);
	lsm_table_cache_free(tc);
}

static void test_iterator_pins_its_table(void **state)
{
	fixture *fx = *state;
	lsm_table_cache *tc = new_cache(fx, 1);
	lsm_iter *it = lsm_table_cache_iter(tc, 3, fx->sizes[3], true);
	assert_non_null(it);
	lsm_iter_seek_first(it);
	const tf_set *s = &fx->sets[3];
	for (int i = 0; i < s->n; i++) {
		/* Other tables come and go meanwhile. */
		if (i % 50 == 0)
			check_table(fx, tc, 1 + i / 50 % NTABLES);
		assert_true(lsm_iter_valid(it));
		assert_true(sisy_slice_eq(lsm_iter_key(it), tf_key(s, i)));
		assert_true(sisy_slice_eq(lsm_iter_value(it), tf_val(s, i)));
		lsm_iter_next(it);
	}
	assert_false(lsm_iter_valid(it));
	assert_int_equal(lsm_iter_status(it), SISY_OK);
	lsm_iter_destroy(it);
	assert_true(open_files(fx) <= 1);
	lsm_table_cache_free(tc);
	assert_int_equal(open_files(fx), 0);
}

static void test_evict_deleted_table(void **state)
{
	fixture *fx = *state;
	lsm_table_cache *tc = new_cache(fx, 5);
	check_table(fx, tc, 5);
	assert_int_equal(open_files(fx), 1);
	lsm_table_cache_evict(tc, 5);
	assert_int_equal(open_files(fx), 0);
	assert_int_equal(sisy_fs_unlink(&fx->w.base, "/db/000005.sst"),
			 SISY_OK);
	lsm_table *t;
	lsm_table_ref *ref;
	assert_int_equal(lsm_table_cache_get(tc, 5, fx->sizes[5], &t, &ref),
			 SISY_E_NOTFOUND);
	assert_non_null(strstr(sisy_errmsg(), "/db/000005.sst"));
	/* An iterator over a missing table is empty and says why. */
	lsm_iter *it = lsm_table_cache_iter(tc, 5, fx->sizes[5], true);
	assert_non_null(it);
	sisy_errclear();
	lsm_iter_seek_first(it);
	assert_false(lsm_iter_valid(it));
	assert_int_equal(lsm_iter_status(it), SISY_E_NOTFOUND);
	assert_non_null(strstr(sisy_errmsg(), "000005.sst"));
	lsm_iter_destroy(it);
	/* Evicting a table that is pinned closes it at release. */
	assert_int_equal(lsm_table_cache_get(tc, 6, fx->sizes[6], &t, &ref),
			 SISY_OK);
	lsm_table_cache_evict(tc, 6);
	assert_int_equal(open_files(fx), 1);
	lsm_table_cache_release(tc, ref);
	assert_int_equal(open_files(fx), 0);
	lsm_table_cache_free(tc);
}

static void test_failed_opens_are_not_cached(void **state)
{
	fixture *fx = *state;
	lsm_table_cache *tc = new_cache(fx, 5);
	lsm_table *t;
	lsm_table_ref *ref;
	/* Wrong size: the footer is not where the caller says. */
	assert_int_equal(lsm_table_cache_get(tc, 7, fx->sizes[7] - 1, &t, &ref),
			 SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "000007.sst"));
	assert_int_equal(open_files(fx), 0);
	int before = opens(fx);
	assert_int_equal(lsm_table_cache_get(tc, 7, fx->sizes[7], &t, &ref),
			 SISY_OK);
	assert_int_equal(opens(fx), before + 1);
	lsm_table_cache_release(tc, ref);
	lsm_table_cache_free(tc);
}

typedef struct reader {
	fixture *fx;
	lsm_table_cache *tc;
	uint64_t seed;
	int errors;
} reader;

static void *reader_run(void *arg)
{
	reader *r = arg;
	sisy_rand rnd;
	sisy_rand_seed(&rnd, r->seed);
	sisy_buf lk = {0};
	tf_got g = {0};
	for (int i = 0; i < 4000; i++) {
		int n = 1 + (int)sisy_rand_below(&rnd, NTABLES);
		const tf_set *s = &r->fx->sets[n];
		int num = (int)sisy_rand_below(&rnd, (uint64_t)s->users * 2);
		sisy_slice lookup = tf_lookup(&lk, s, num, LSM_MAX_SEQ);
		int want = tf_expect_get(s, lookup);
		bool found;
		if (i % 100 == 0) { /* and some scans, which pin */
			lsm_iter *it = lsm_table_cache_iter(
			    r->tc, (uint64_t)n, r->fx->sizes[n], false);
			int cnt = 0;
			for (lsm_iter_seek_first(it); lsm_iter_valid(it);
			     lsm_iter_next(it))
				cnt++;
			if (cnt != s->n || lsm_iter_status(it) != SISY_OK)
				r->errors++;
			lsm_iter_destroy(it);
		}
		if (lsm_table_cache_lookup(r->tc, (uint64_t)n, r->fx->sizes[n],
					   lookup, tf_got_fn, &g,
					   &found) != SISY_OK ||
		    found != (want >= 0) ||
		    (want >= 0 &&
		     !sisy_slice_eq(sisy_buf_slice(&g.val), tf_val(s, want))))
			r->errors++;
	}
	sisy_buf_free(&lk);
	tf_got_free(&g);
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	fixture *fx = *state;
	lsm_table_cache *tc = new_cache(fx, 3);
	pthread_t th[4];
	reader rd[4];
	for (int i = 0; i < 4; i++) {
		rd[i] = (reader){fx, tc, 70 + (uint64_t)i, 0};
		assert_int_equal(
		    pthread_create(&th[i], NULL, reader_run, &rd[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(rd[i].errors, 0);
	}
	assert_true(open_files(fx) <= 3);
	lsm_table_cache_free(tc);
	assert_int_equal(open_files(fx), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_lookups_and_lru_bound, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pinned_table_stays_open, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_iterator_pins_its_table, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_evict_deleted_table, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_failed_opens_are_not_cached,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_readers, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
