/* Tests sisyd/lsm/table_cache.c: lookups through the cache, the bound on
 * open files, LRU order, pinning (a table in use is never closed under its
 * user), eviction of deleted tables, errors, concurrent readers, and the map
 * budget (the bytes of table files mapped at once, observed by the wrapper
 * file system, never exceed it — also through a whole engine that flushes
 * and compacts), and the map plan (only the tables picked, greedily in the
 * order given, map; open tables that disagree with a new plan are reopened
 * the planned way; a table starved of the budget maps once there is room).
 * Files live in the in-memory fault file system behind a wrapper that
 * counts the files open and the bytes mapped at any moment. */
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
#include "lsm.h"
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

static lsm_table_cache *new_cache_mapping(fixture *fx, int max_open,
					  uint64_t mmap_bytes)
{
	lsm_table_cache *tc;
	assert_int_equal(lsm_table_cache_new(&fx->w.base, "/db", max_open,
					     fx->blocks, mmap_bytes,
					     &fx->counters, true, &tc),
			 SISY_OK);
	return tc;
}

static lsm_table_cache *new_cache(fixture *fx, int max_open)
{
	return new_cache_mapping(fx, max_open, UINT64_MAX);
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

static long long mapped_now(fixture *fx)
{
	return atomic_load(&fx->w.mapped);
}
static long long mapped_peak(fixture *fx)
{
	return atomic_load(&fx->w.mapped_peak);
}

/* Whether table n reads through a mapping (opening it if needed). */
static bool is_mapped(fixture *fx, lsm_table_cache *tc, int n)
{
	lsm_table *t;
	lsm_table_ref *ref;
	assert_int_equal(
	    lsm_table_cache_get(tc, (uint64_t)n, fx->sizes[n], &t, &ref),
	    SISY_OK);
	bool m = lsm_table_mapped(t);
	lsm_table_cache_release(tc, ref);
	return m;
}

/* The budget's books agree with what the file system has mapped. */
static void check_books(fixture *fx, lsm_table_cache *tc, uint64_t budget)
{
	assert_int_equal(lsm_table_cache_mapped_bytes(tc),
			 (uint64_t)mapped_now(fx));
	assert_true((uint64_t)mapped_peak(fx) <= budget);
}

static void test_map_budget_first_come(void **state)
{
	fixture *fx = *state;
	/* Room for tables 1-3 exactly: every later one reads with pread. */
	uint64_t budget = fx->sizes[1] + fx->sizes[2] + fx->sizes[3];
	lsm_table_cache *tc = new_cache_mapping(fx, 2 * NTABLES, budget);
	uint64_t misses = atomic_load(&fx->counters.cache_misses);
	for (int n = 1; n <= NTABLES; n++) {
		check_table(fx, tc, n);
		check_books(fx, tc, budget);
	}
	for (int n = 1; n <= NTABLES; n++)
		assert_int_equal(is_mapped(fx, tc, n), n <= 3);
	assert_int_equal(mapped_now(fx), (long long)budget);
	/* The tables that were not mapped went through the block cache. */
	assert_true(atomic_load(&fx->counters.cache_misses) > misses);
	/* Closing a mapped table gives its bytes back, and the first table
	 * used next that was starved of them and now fits takes them: it is
	 * reopened, mapped. */
	lsm_table_cache_evict(tc, 2);
	assert_int_equal(mapped_now(fx),
			 (long long)(fx->sizes[1] + fx->sizes[3]));
	check_books(fx, tc, budget);
	int before = opens(fx);
	bool fits = fx->sizes[4] <= fx->sizes[2];
	assert_int_equal(is_mapped(fx, tc, 4), fits);
	assert_int_equal(opens(fx), before + fits);
	check_books(fx, tc, budget);
	check_table(fx, tc, 4);
	/* No room left for table 2 then: it stays unmapped without being
	 * reopened on every use (it was never starved when 4 took it). */
	before = opens(fx);
	check_table(fx, tc, 2);
	check_table(fx, tc, 2);
	assert_int_equal(is_mapped(fx, tc, 2), !fits);
	assert_int_equal(opens(fx), before + 1);
	check_books(fx, tc, budget);
	lsm_table_cache_free(tc);
	assert_int_equal(mapped_now(fx), 0);
}

static void test_map_budget_holds_pinned_tables(void **state)
{
	fixture *fx = *state;
	uint64_t budget = fx->sizes[3];
	lsm_table_cache *tc = new_cache_mapping(fx, 1, budget);
	lsm_iter *it = lsm_table_cache_iter(tc, 3, fx->sizes[3], true);
	assert_non_null(it);
	lsm_iter_seek_first(it);
	assert_true(lsm_iter_valid(it));
	/* Evicted but pinned: table 3 stays mapped and charged, so table 4
	 * (opened meanwhile) must do without a mapping. */
	lsm_table_cache_evict(tc, 3);
	assert_int_equal(lsm_table_cache_mapped_bytes(tc), fx->sizes[3]);
	assert_false(is_mapped(fx, tc, 4));
	check_table(fx, tc, 4);
	check_books(fx, tc, budget);
	const tf_set *s = &fx->sets[3];
	for (int i = 0; i < s->n; i++, lsm_iter_next(it)) {
		assert_true(lsm_iter_valid(it));
		assert_true(sisy_slice_eq(lsm_iter_key(it), tf_key(s, i)));
	}
	lsm_iter_destroy(it);
	assert_int_equal(lsm_table_cache_mapped_bytes(tc), 0);
	assert_int_equal(mapped_now(fx), 0);
	/* Room again: table 3 maps when opened next. */
	assert_true(is_mapped(fx, tc, 3));
	lsm_table_cache_free(tc);
}

static void test_map_budget_zero_never_maps(void **state)
{
	fixture *fx = *state;
	lsm_table_cache *tc = new_cache_mapping(fx, 3, 0);
	for (int round = 0; round < 2; round++)
		for (int n = 1; n <= NTABLES; n++) {
			check_table(fx, tc, n);
			assert_false(is_mapped(fx, tc, n));
		}
	lsm_iter *it = lsm_table_cache_iter(tc, 5, fx->sizes[5], false);
	int cnt = 0;
	for (lsm_iter_seek_first(it); lsm_iter_valid(it); lsm_iter_next(it))
		assert_true(sisy_slice_eq(lsm_iter_value(it),
					  tf_val(&fx->sets[5], cnt++)));
	assert_int_equal(cnt, fx->sets[5].n);
	assert_int_equal(lsm_iter_status(it), SISY_OK);
	lsm_iter_destroy(it);
	assert_int_equal(mapped_peak(fx), 0);
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

static void concurrent_readers(fixture *fx, uint64_t budget)
{
	lsm_table_cache *tc = new_cache_mapping(fx, 3, budget);
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
	check_books(fx, tc, budget);
	lsm_table_cache_free(tc);
	assert_int_equal(open_files(fx), 0);
	assert_int_equal(mapped_now(fx), 0);
}

static void test_concurrent_readers(void **state)
{
	concurrent_readers(*state, UINT64_MAX);
}

/* Tables opened and closed by racing readers, with room for about two. */
static void test_concurrent_readers_map_budget(void **state)
{
	fixture *fx = *state;
	concurrent_readers(fx, fx->sizes[1] + fx->sizes[2]);
	assert_true(mapped_peak(fx) > 0);
}

/* --- the map plan --------------------------------------------------------- */

static void plan(lsm_table_cache *tc, fixture *fx, const int *order, int n)
{
	lsm_map_candidate c[NTABLES];
	assert_true(n <= NTABLES);
	for (int i = 0; i < n; i++)
		c[i] = (lsm_map_candidate){(uint64_t)order[i],
					   fx->sizes[order[i]]};
	assert_int_equal(lsm_table_cache_plan(tc, c, (size_t)n), SISY_OK);
}

/* The tables picked map, in whatever order they are opened; the others
 * read with pread even while the budget has room for them. */
static void test_map_plan_picks_in_order(void **state)
{
	fixture *fx = *state;
	uint64_t budget = fx->sizes[5] + fx->sizes[4] + fx->sizes[3];
	lsm_table_cache *tc = new_cache_mapping(fx, 2 * NTABLES, budget);
	for (int n = 1; n <= NTABLES; n++) /* no plan yet: anyone may */
		assert_true(lsm_table_cache_may_map(tc, (uint64_t)n));
	const int order[] = {5, 4, 3, 2, 1, 6, 7, 8, 9, 10};
	plan(tc, fx, order, NTABLES);
	for (int n = 1; n <= NTABLES; n++) {
		assert_int_equal(lsm_table_cache_may_map(tc, (uint64_t)n),
				 n >= 3 && n <= 5);
		check_table(fx, tc, n); /* 1 and 2 open first, unmapped */
		check_books(fx, tc, budget);
	}
	for (int n = 1; n <= NTABLES; n++)
		assert_int_equal(is_mapped(fx, tc, n), n >= 3 && n <= 5);
	assert_int_equal(mapped_now(fx), (long long)budget);
	/* A number the plan never heard of (a table retired meanwhile)
	 * does not map either. */
	assert_false(lsm_table_cache_may_map(tc, 99));
	lsm_table_cache_free(tc);
	assert_int_equal(mapped_now(fx), 0);
}

/* Greedy: a candidate too big for what is left is passed over, and a
 * later one that fits is still picked. The sizes are the plan's (the
 * engine passes each file's size). */
static void test_map_plan_skips_what_does_not_fit(void **state)
{
	fixture *fx = *state;
	uint64_t budget = fx->sizes[1] + fx->sizes[2];
	lsm_table_cache *tc = new_cache_mapping(fx, 2 * NTABLES, budget);
	lsm_map_candidate c[] = {
	    {1, fx->sizes[1]}, {7, budget}, {2, fx->sizes[2]}, {3, 1}};
	assert_int_equal(lsm_table_cache_plan(tc, c, 4), SISY_OK);
	assert_true(lsm_table_cache_may_map(tc, 1));
	assert_false(lsm_table_cache_may_map(tc, 7));
	assert_true(lsm_table_cache_may_map(tc, 2));
	assert_false(lsm_table_cache_may_map(tc, 3)); /* nothing left */
	for (int n = 1; n <= NTABLES; n++)
		assert_int_equal(is_mapped(fx, tc, n), n <= 2);
	check_books(fx, tc, budget);
	/* An empty plan maps nothing; nor does a budget of 0 whatever the
	 * plan says. */
	assert_int_equal(lsm_table_cache_plan(tc, NULL, 0), SISY_OK);
	assert_int_equal(mapped_now(fx), 0);
	for (int n = 1; n <= NTABLES; n++)
		assert_false(is_mapped(fx, tc, n));
	lsm_table_cache_free(tc);
	tc = new_cache_mapping(fx, 2 * NTABLES, 0);
	assert_int_equal(lsm_table_cache_plan(tc, c, 4), SISY_OK);
	for (int n = 1; n <= 4; n++)
		assert_false(lsm_table_cache_may_map(tc, (uint64_t)n));
	lsm_table_cache_free(tc);
}

/* Tables open when a plan comes that disagree with it are dropped and
 * reopened the planned way at their next use; the others stay open. */
static void test_map_plan_reopens_what_disagrees(void **state)
{
	fixture *fx = *state;
	uint64_t budget = fx->sizes[1] + fx->sizes[2] + fx->sizes[3];
	lsm_table_cache *tc = new_cache_mapping(fx, 2 * NTABLES, budget);
	const int all[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	plan(tc, fx, all, NTABLES); /* 1-3 picked */
	for (int n = NTABLES; n >= 1; n--)
		check_table(fx, tc, n);
	assert_int_equal(mapped_now(fx), (long long)budget);
	int before = opens(fx);
	/* 3 stays picked; 9 and 10 (if they fit) take the place of 1 and 2,
	 * which are not even listed any more (retired). */
	const int order[] = {3, 9, 10, 4};
	plan(tc, fx, order, 4);
	bool fit = fx->sizes[3] + fx->sizes[9] + fx->sizes[10] <= budget;
	assert_int_equal(mapped_now(fx), (long long)fx->sizes[3]);
	for (int n = 1; n <= NTABLES; n++)
		check_table(fx, tc, n);
	for (int n = 1; n <= NTABLES; n++)
		assert_int_equal(is_mapped(fx, tc, n),
				 n == 3 || n == 9 || (n == 10 && fit));
	/* Reopened: 1, 2 (now pread), 9 and 10 (picked); 3 and the rest
	 * were right already. */
	assert_int_equal(opens(fx), before + 4);
	check_books(fx, tc, budget);
	/* The same plan again changes nothing. */
	before = opens(fx);
	plan(tc, fx, order, 4);
	for (int n = 1; n <= NTABLES; n++)
		check_table(fx, tc, n);
	assert_int_equal(opens(fx), before);
	lsm_table_cache_free(tc);
	assert_int_equal(mapped_now(fx), 0);
}

/* A picked table opened while a table no longer picked is pinned (and
 * keeps its bytes) reads with pread; once the pin goes, its next use
 * reopens it, mapped — and only then, not on every use before. */
static void test_map_plan_starved_table_maps_later(void **state)
{
	fixture *fx = *state;
	uint64_t budget =
	    fx->sizes[1] > fx->sizes[2] ? fx->sizes[1] : fx->sizes[2];
	lsm_table_cache *tc = new_cache_mapping(fx, 2 * NTABLES, budget);
	const int first[] = {1, 2};
	plan(tc, fx, first, 2);
	lsm_iter *it = lsm_table_cache_iter(tc, 1, fx->sizes[1], true);
	lsm_iter_seek_first(it);
	assert_true(lsm_iter_valid(it));
	assert_int_equal(mapped_now(fx), (long long)fx->sizes[1]);
	const int order[] = {2};
	plan(tc, fx, order, 1);
	/* 1 left the cache but is pinned: still mapped, still charged. */
	assert_int_equal(mapped_now(fx), (long long)fx->sizes[1]);
	int before = opens(fx);
	for (int i = 0; i < 3; i++)
		check_table(fx, tc, 2);
	assert_false(is_mapped(fx, tc, 2));
	assert_int_equal(opens(fx), before + 1);
	lsm_iter_destroy(it);
	assert_int_equal(mapped_now(fx), 0);
	check_table(fx, tc, 2);
	assert_true(is_mapped(fx, tc, 2));
	assert_int_equal(opens(fx), before + 2);
	check_books(fx, tc, budget);
	lsm_table_cache_free(tc);
}

/* --- the budget through the engine ---------------------------------------- */

static void engine_put(sisy_lsm *db, int i)
{
	char k[32], v[200];
	int kl = snprintf(k, sizeof k, "k%08d", i);
	memset(v, 'a' + i % 26, sizeof v);
	assert_int_equal(sisy_lsm_put(db, k, (size_t)kl, v, sizeof v, 0),
			 SISY_OK);
}

static void engine_get(sisy_lsm *db, int i)
{
	sisy_buf v = {0};
	char k[32];
	int kl = snprintf(k, sizeof k, "k%08d", i);
	assert_int_equal(sisy_lsm_get(db, NULL, k, (size_t)kl, &v), SISY_OK);
	assert_int_equal(v.len, 200);
	assert_int_equal(v.data[199], 'a' + i % 26);
	sisy_buf_free(&v);
}

static void engine_check(sisy_lsm *db, int n)
{
	for (int i = 0; i < n; i++)
		engine_get(db, i);
	sisy_lsm_iter *it = sisy_lsm_iter_new(db, NULL);
	int cnt = 0;
	for (sisy_lsm_iter_seek_first(it); sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it))
		cnt++;
	assert_int_equal(sisy_lsm_iter_status(it), SISY_OK);
	assert_int_equal(cnt, n);
	sisy_lsm_iter_free(it);
}

/* An engine whose tables hold several times its map budget: flushes,
 * compactions, gets and scans never map more than the budget at once, and
 * everything reads back, mapped or not. */
static void test_engine_map_budget(void **state)
{
	fixture *fx = *state;
	const uint64_t budget = 256 << 10;
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = "/eng";
	o.fs = &fx->w.base;
	o.memtable_bytes = 64 << 10;
	o.target_file_bytes = 64 << 10;
	o.l1_max_bytes = 256 << 10;
	o.block_cache_bytes = 64 << 10;
	o.mmap_bytes = budget;
	sisy_lsm *db;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_OK);
	const int n = 8000; /* ~1.7 MB of entries */
	for (int i = 0; i < n; i++) {
		engine_put(db, (i * 7919) % n);
		if (i % 1000 == 999) /* reads while tables come and go */
			for (int j = 0; j <= i; j += 5)
				engine_get(db, (j * 7919) % n);
	}
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	engine_check(db, n);
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	engine_check(db, n);
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	uint64_t table_bytes = 0;
	for (int l = 0; l < 7; l++)
		table_bytes += st.bytes_per_level[l];
	assert_true(table_bytes > 4 * budget);
	assert_true(mapped_peak(fx) > 0);
	assert_true((uint64_t)mapped_peak(fx) <= budget);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	assert_int_equal(mapped_now(fx), 0);
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
	    cmocka_unit_test_setup_teardown(test_map_budget_first_come, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_map_budget_holds_pinned_tables,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map_budget_zero_never_maps,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_readers_map_budget,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map_plan_picks_in_order, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_map_plan_skips_what_does_not_fit, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_map_plan_reopens_what_disagrees, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_map_plan_starved_table_maps_later, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine_map_budget, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
