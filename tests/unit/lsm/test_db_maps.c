/* Tests sisyd/lsm/db_maps.c: the engine's map plan. With a map budget that
 * holds the upper levels and part of the last one, every L0 and L1 table
 * maps and the last level maps in key order as far as the budget goes
 * (greedily: a table maps when it fits in what the tables before it in
 * that order left) — whatever order the reads open the tables in, even
 * when the last level's tables open first, which first come, first served
 * would have mapped. When compactions move the data down, the plan follows
 * the new version: retired tables give their bytes back and the budget is
 * never exceeded (the wrapper file system's peak). sisy_lsm_stats'
 * mapped_bytes is what is mapped. Files live in the in-memory fault file
 * system, behind a wrapper that counts the bytes mapped at any moment. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fs_fault.h"
#include "lsm_test_util.h"
#include "wrapfs.h"

#define NKEYS 8000
#define VLEN  200

typedef struct fx {
	sisy_fs_fault *ff;
	wrapfs w;
	sisy_lsm_options o;
	sisy_lsm *db;
} fx;

static int setup(void **state)
{
	fx *x = calloc(1, sizeof *x);
	x->ff = sisy_fs_fault_new(3);
	wrapfs_init(&x->w, sisy_fs_fault_fs(x->ff), false);
	sisy_lsm_options_init(&x->o);
	x->o.dir = "/db";
	x->o.fs = &x->w.base;
	x->o.memtable_bytes = 64 << 10;
	x->o.target_file_bytes = 64 << 10;
	x->o.l1_max_bytes = 256 << 10;
	x->o.block_cache_bytes = 64 << 10;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	if (x->db != NULL)
		assert_int_equal(sisy_lsm_close(x->db), SISY_OK);
	sisy_fs_fault_free(x->ff);
	free(x);
	return 0;
}

static void reopen(fx *x)
{
	if (x->db != NULL)
		assert_int_equal(sisy_lsm_close(x->db), SISY_OK);
	x->db = NULL;
	if (sisy_lsm_open(&x->o, &x->db) != SISY_OK)
		fail_msg("open: %s", sisy_errmsg());
}

/* Options under which the engine never compacts by itself, so the levels
 * stay as they are while the test looks at them. */
static void no_compactions(fx *x)
{
	x->o.l0_compaction_trigger = 1000;
	x->o.l0_slowdown_trigger = 1000;
	x->o.l0_stop_trigger = 1000;
	x->o.l1_max_bytes = (size_t)1 << 40;
}

static void put(fx *x, int i)
{
	char k[32], v[VLEN];
	size_t kl = tu_key(k, sizeof k, (uint64_t)i);
	memset(v, 'a' + i % 26, sizeof v);
	assert_int_equal(sisy_lsm_put(x->db, k, kl, v, sizeof v, 0), SISY_OK);
}

/* Reads every key, last key first: the last level's last tables open
 * before anything else. */
static void read_all_backwards(fx *x)
{
	sisy_buf v = {0};
	char k[32];
	for (int i = NKEYS - 1; i >= 0; i--) {
		size_t kl = tu_key(k, sizeof k, (uint64_t)i);
		assert_int_equal(sisy_lsm_get(x->db, NULL, k, kl, &v), SISY_OK);
		assert_int_equal(v.len, VLEN);
		assert_int_equal(v.data[0], 'a' + i % 26);
	}
	sisy_buf_free(&v);
}

/* Builds a database with tables in L0, L1 and L2, left as it is. */
static void build(fx *x)
{
	reopen(x);
	for (int i = 0; i < NKEYS; i++)
		put(x, (int)(((uint64_t)i * 7919) % NKEYS));
	assert_int_equal(sisy_lsm_flush(x->db), SISY_OK);
	for (int i = 0; i < NKEYS; i += 16) /* one more table, in L0 */
		put(x, i);
	assert_int_equal(sisy_lsm_flush(x->db), SISY_OK);
	no_compactions(x);
	reopen(x);
}

static int last_level(const lsm_version *v)
{
	int last = 0;
	for (int l = 0; l < LSM_NUM_LEVELS; l++)
		if (v->nfiles[l] > 0)
			last = l;
	return last;
}

static bool table_mapped(fx *x, const lsm_file_meta *f)
{
	lsm_table *t;
	lsm_table_ref *ref;
	assert_int_equal(
	    lsm_table_cache_get(x->db->tc, f->number, f->size, &t, &ref),
	    SISY_OK);
	bool m = lsm_table_mapped(t);
	lsm_table_cache_release(x->db->tc, ref);
	return m;
}

/* The plan's promise on the current version: the tables map in the order
 * L0 newest first, L1, L2, ... in key order, each one that fits in what
 * those before it left. Returns the bytes of the tables mapped. */
static uint64_t check_plan(fx *x, uint64_t budget, int *partial_level)
{
	pthread_mutex_lock(&x->db->mu);
	lsm_version *v = x->db->vs->current;
	lsm_version_ref(v);
	pthread_mutex_unlock(&x->db->mu);
	uint64_t left = budget, mapped = 0;
	*partial_level = -1;
	for (int l = 0; l < LSM_NUM_LEVELS; l++) {
		for (int j = 0; j < v->nfiles[l]; j++) {
			int i = l == 0 ? v->nfiles[0] - 1 - j : j;
			const lsm_file_meta *f = v->files[l][i];
			bool fits = f->size <= left;
			if (table_mapped(x, f) != fits)
				fail_msg("L%d table %llu (%llu bytes, %llu "
					 "left of %llu): mapped %d",
					 l, (unsigned long long)f->number,
					 (unsigned long long)f->size,
					 (unsigned long long)left,
					 (unsigned long long)budget, !fits);
			if (fits) {
				left -= f->size;
				mapped += f->size;
			} else if (*partial_level < 0) {
				*partial_level = l;
			}
		}
	}
	lsm_version_unref_unlocked(v, &x->db->mu);
	return mapped;
}

static void check_books(fx *x, uint64_t budget, uint64_t mapped)
{
	sisy_lsm_stats st;
	sisy_lsm_get_stats(x->db, &st);
	assert_int_equal(st.mapped_bytes, mapped);
	assert_int_equal(atomic_load(&x->w.mapped), (long long)mapped);
	assert_true((uint64_t)atomic_load(&x->w.mapped_peak) <= budget);
}

static void test_upper_levels_map_first(void **state)
{
	fx *x = *state;
	build(x);
	sisy_lsm_stats st;
	sisy_lsm_get_stats(x->db, &st);
	assert_true(st.files_per_level[0] >= 1);
	assert_true(st.files_per_level[1] >= 1);
	assert_true(st.files_per_level[2] >= 4);
	/* Room for L0, L1 and half of L2. */
	uint64_t budget = st.bytes_per_level[0] + st.bytes_per_level[1] +
			  st.bytes_per_level[2] / 2;
	x->o.mmap_bytes = budget;
	reopen(x);
	atomic_store(&x->w.mapped_peak, 0);
	read_all_backwards(x);
	int partial;
	uint64_t mapped = check_plan(x, budget, &partial);
	assert_int_equal(partial, 2); /* L0 and L1 whole, L2 in part */
	check_books(x, budget, mapped);
	assert_true(mapped > st.bytes_per_level[0] + st.bytes_per_level[1]);
	/* First come, first served would have mapped the tables read first,
	 * from the end of L2 backwards; the plan mapped L2 from its start
	 * (only a small table near the end may fill what is left). */
	pthread_mutex_lock(&x->db->mu);
	const lsm_version *v = x->db->vs->current;
	const lsm_file_meta *first = v->files[2][0];
	const lsm_file_meta *second_last = v->files[2][v->nfiles[2] - 2];
	pthread_mutex_unlock(&x->db->mu);
	assert_true(table_mapped(x, first));
	assert_false(table_mapped(x, second_last));
	assert_int_equal(sisy_lsm_close(x->db), SISY_OK);
	x->db = NULL;
	assert_int_equal(atomic_load(&x->w.mapped), 0);
}

/* Compacting everything into the last level retires every table the plan
 * held: their bytes go back, and the new tables map in key order. */
static void test_plan_follows_compactions(void **state)
{
	fx *x = *state;
	build(x);
	sisy_lsm_stats st;
	sisy_lsm_get_stats(x->db, &st);
	uint64_t total = 0;
	for (int l = 0; l < 7; l++)
		total += st.bytes_per_level[l];
	uint64_t budget = total / 3;
	x->o.mmap_bytes = budget;
	reopen(x);
	atomic_store(&x->w.mapped_peak, 0);
	read_all_backwards(x);
	int partial;
	uint64_t mapped = check_plan(x, budget, &partial);
	check_books(x, budget, mapped);
	assert_int_equal(sisy_lsm_compact_all(x->db), SISY_OK);
	read_all_backwards(x);
	mapped = check_plan(x, budget, &partial);
	pthread_mutex_lock(&x->db->mu);
	int last = last_level(x->db->vs->current);
	for (int l = 0; l < last; l++)
		assert_int_equal(x->db->vs->current->nfiles[l], 0);
	pthread_mutex_unlock(&x->db->mu);
	assert_int_equal(partial, last);
	assert_true(mapped > 0);
	/* No retired table is still mapped: all mapped bytes are the
	 * current version's. */
	check_books(x, budget, mapped);
}

/* mmap_bytes = 0 never maps, whatever the plan; SIZE_MAX maps every
 * table (the plan picks them all). */
static void test_budget_extremes(void **state)
{
	fx *x = *state;
	build(x);
	int partial;
	x->o.mmap_bytes = 0;
	reopen(x);
	atomic_store(&x->w.mapped_peak, 0);
	read_all_backwards(x);
	assert_int_equal(check_plan(x, 0, &partial), 0);
	check_books(x, 0, 0);
	x->o.mmap_bytes = SIZE_MAX;
	reopen(x);
	read_all_backwards(x);
	uint64_t mapped = check_plan(x, UINT64_MAX, &partial);
	assert_int_equal(partial, -1);
	check_books(x, UINT64_MAX, mapped);
	sisy_lsm_stats st;
	sisy_lsm_get_stats(x->db, &st);
	uint64_t total = 0;
	for (int l = 0; l < 7; l++)
		total += st.bytes_per_level[l];
	assert_int_equal(mapped, total);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_upper_levels_map_first, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_plan_follows_compactions,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_budget_extremes, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
