/* Tests sisyd/lsm/db_iter.c (and level_iter.c through it): full scans and
 * seeks over data spread across mem, imm and several levels with
 * overwrites and deletes, a view that stays fixed while writes, flushes
 * and compactions go on, and files kept alive by an open iterator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "lsm_test_util.h"
#include "rand.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "iter");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmdir(dir);
	return 0;
}

static sisy_lsm *open_small_l1(size_t l1)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = dir;
	o.memtable_bytes = 64 << 10;
	o.target_file_bytes = 64 << 10;
	o.l1_max_bytes = l1;
	sisy_lsm *db;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_OK);
	return db;
}

static sisy_lsm *open_small(void)
{
	return open_small_l1(256 << 10);
}

enum { NKEYS = 5000 };

/* ref[k] = version of key k, or -1 when absent */
static void write_random(sisy_lsm *db, int *ref, int ops, sisy_rand *r, int tag)
{
	for (int i = 0; i < ops; i++) {
		int k = (int)sisy_rand_below(r, NKEYS);
		char key[32], val[64];
		size_t kl = tu_key(key, sizeof key, (uint64_t)k);
		if (sisy_rand_chance(r, 1, 4)) {
			assert_int_equal(sisy_lsm_delete(db, key, kl, 0),
					 SISY_OK);
			ref[k] = -1;
		} else {
			int vl =
			    snprintf(val, sizeof val, "%d.%d.%040d", tag, i, k);
			assert_int_equal(
			    sisy_lsm_put(db, key, kl, val, (size_t)vl, 0),
			    SISY_OK);
			ref[k] = tag * 1000000 + i;
		}
	}
}

static void check_value(const uint8_t *v, size_t vl, int k, int version)
{
	char want[64];
	int n = snprintf(want, sizeof want, "%d.%d.%040d", version / 1000000,
			 version % 1000000, k);
	assert_int_equal(vl, (size_t)n);
	assert_memory_equal(v, want, vl);
}

/* A full scan matches ref exactly. */
static void scan_matches(sisy_lsm *db, const sisy_lsm_snapshot *snap,
			 const int *ref)
{
	sisy_lsm_iter *it = sisy_lsm_iter_new(db, snap);
	assert_non_null(it);
	assert_false(sisy_lsm_iter_valid(it)); /* not positioned yet */
	int k = 0;
	for (sisy_lsm_iter_seek_first(it); sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it)) {
		while (k < NKEYS && ref[k] < 0)
			k++;
		assert_true(k < NKEYS);
		char key[32];
		size_t kl = tu_key(key, sizeof key, (uint64_t)k), gl, vl;
		const uint8_t *g = sisy_lsm_iter_key(it, &gl);
		assert_int_equal(gl, kl);
		assert_memory_equal(g, key, kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		check_value(v, vl, k, ref[k]);
		k++;
	}
	while (k < NKEYS && ref[k] < 0)
		k++;
	assert_int_equal(k, NKEYS);
	assert_int_equal(sisy_lsm_iter_status(it), SISY_OK);
	sisy_lsm_iter_free(it);
}

static void test_empty(void **state)
{
	(void)state;
	sisy_lsm *db = open_small();
	sisy_lsm_iter *it = sisy_lsm_iter_new(db, NULL);
	sisy_lsm_iter_seek_first(it);
	assert_false(sisy_lsm_iter_valid(it));
	sisy_lsm_iter_seek(it, "a", 1);
	assert_false(sisy_lsm_iter_valid(it));
	assert_int_equal(sisy_lsm_iter_status(it), SISY_OK);
	sisy_lsm_iter_free(it);
	/* only deletes: still empty */
	assert_int_equal(sisy_lsm_put(db, "a", 1, "1", 1, 0), SISY_OK);
	assert_int_equal(sisy_lsm_delete(db, "a", 1, 0), SISY_OK);
	it = sisy_lsm_iter_new(db, NULL);
	sisy_lsm_iter_seek_first(it);
	assert_false(sisy_lsm_iter_valid(it));
	sisy_lsm_iter_free(it);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

static void test_scan_and_seek_across_levels(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, tu_seed("iter scan"));
	sisy_lsm *db = open_small();
	int *ref = malloc(NKEYS * sizeof *ref);
	for (int i = 0; i < NKEYS; i++)
		ref[i] = -1;
	for (int tag = 1; tag <= 6; tag++) {
		write_random(db, ref, 4000, &r, tag);
		scan_matches(db, NULL, ref);
		if (tag == 3)
			assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	}
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	int levels = 0;
	for (int l = 0; l < 7; l++)
		levels += st.files_per_level[l] > 0;
	assert_true(levels >= 2); /* data really is spread out */
	/* seeks land on the first live key >= target */
	sisy_lsm_iter *it = sisy_lsm_iter_new(db, NULL);
	for (int i = 0; i < 1000; i++) {
		int t = (int)sisy_rand_below(&r, NKEYS + 10);
		char key[32];
		size_t kl = tu_key(key, sizeof key, (uint64_t)t);
		sisy_lsm_iter_seek(it, key, kl);
		int k = t;
		while (k < NKEYS && ref[k] < 0)
			k++;
		if (k >= NKEYS) {
			assert_false(sisy_lsm_iter_valid(it));
			continue;
		}
		assert_true(sisy_lsm_iter_valid(it));
		size_t gl, vl;
		const uint8_t *g = sisy_lsm_iter_key(it, &gl);
		kl = tu_key(key, sizeof key, (uint64_t)k);
		assert_int_equal(gl, kl);
		assert_memory_equal(g, key, kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		check_value(v, vl, k, ref[k]);
		/* and walking on from a seek works */
		sisy_lsm_iter_next(it);
		int k2 = k + 1;
		while (k2 < NKEYS && ref[k2] < 0)
			k2++;
		assert_int_equal(sisy_lsm_iter_valid(it), k2 < NKEYS);
	}
	/* a key between stored keys, and one before all */
	sisy_lsm_iter_seek(it, "a", 1);
	assert_true(sisy_lsm_iter_valid(it));
	sisy_lsm_iter_free(it);
	free(ref);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

/* The names of the tables in dir, in one string. */
static char *table_names(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t cap = 1 << 16, len = 0;
	char *s = calloc(1, cap);
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".sst") != NULL && len + 300 < cap)
			len += (size_t)snprintf(s + len, cap - len, "%s/%s\n",
						dir, e->d_name);
	closedir(d);
	return s;
}

static int count_tables(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL)
		n += strstr(e->d_name, ".sst") != NULL;
	closedir(d);
	return n;
}

static void test_view_is_fixed_and_pins_files(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, tu_seed("iter view"));
	/* a big L1 limit: after compact_all no compaction is due, so the
	 * background thread is idle and the directory holds exactly the
	 * live tables once open has returned */
	sisy_lsm *db = open_small_l1(8 << 20);
	int *ref = malloc(NKEYS * sizeof *ref),
	    *later = malloc(NKEYS * sizeof *later);
	for (int i = 0; i < NKEYS; i++)
		ref[i] = -1;
	write_random(db, ref, 6000, &r, 1);
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	db = open_small_l1(8 << 20);
	write_random(db, ref, 300, &r, 2); /* some in mem, no flush */
	sisy_lsm_iter *it = sisy_lsm_iter_new(db, NULL);
	char *pinned = table_names();
	assert_true(strlen(pinned) > 0);
	/* the world moves on: writes, deletes, flushes, a full compaction
	 * that replaces the tables the iterator was built on */
	memcpy(later, ref, NKEYS * sizeof *ref);
	write_random(db, later, 6000, &r, 3);
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	/* the tables it reads stay on disk while it pins them */
	for (char *p = pinned, *nl; (nl = strchr(p, '\n')) != NULL;
	     p = nl + 1) {
		*nl = '\0';
		assert_int_equal(access(p, F_OK), 0);
	}
	free(pinned);
	int k = 0;
	for (sisy_lsm_iter_seek_first(it); sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it)) {
		while (ref[k] < 0)
			k++;
		size_t vl;
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		check_value(v, vl, k, ref[k]);
		k++;
	}
	assert_int_equal(sisy_lsm_iter_status(it), SISY_OK);
	sisy_lsm_iter_free(it);
	scan_matches(db, NULL, later);
	/* unpinned, they go: at the latest when the engine closes */
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	int live = 0;
	for (int l = 0; l < 7; l++)
		live += st.files_per_level[l];
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	assert_int_equal(count_tables(), live);
	free(ref);
	free(later);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_empty, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_and_seek_across_levels,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_view_is_fixed_and_pins_files,
					    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
