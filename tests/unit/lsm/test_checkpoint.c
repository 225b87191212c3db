/* Tests sisyd/lsm/checkpoint.c: the copy holds every write acknowledged
 * before the call (memtable included) and the matching metadata, nothing
 * written after, shares tables by hard link, outlives the source's
 * compactions, and opens and evolves as a database of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lsm.h"
#include "lsm_test_util.h"

static char base[256], src[300], dst[300];

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(base, sizeof base, "ckpt");
	snprintf(src, sizeof src, "%s/src", base);
	snprintf(dst, sizeof dst, "%s/copy", base);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmdir(base);
	return 0;
}

static sisy_lsm *open_at(const char *d, bool wal)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = d;
	o.wal = wal;
	o.memtable_bytes = 64 << 10;
	sisy_lsm *db = NULL;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_OK);
	return db;
}

static void put_n(sisy_lsm *db, int from, int to, const char *tag)
{
	for (int i = from; i < to; i++) {
		char k[32], v[64];
		size_t kl = tu_key(k, sizeof k, (uint64_t)i);
		int vl = snprintf(v, sizeof v, "%s-%d-%030d", tag, i, i);
		assert_int_equal(sisy_lsm_put(db, k, kl, v, (size_t)vl, 0),
				 SISY_OK);
	}
}

static void check_n(sisy_lsm *db, int from, int to, const char *tag)
{
	for (int i = from; i < to; i++) {
		char k[32], v[64];
		size_t kl = tu_key(k, sizeof k, (uint64_t)i);
		sisy_buf b = {0};
		sisy_err rc = sisy_lsm_get(db, NULL, k, kl, &b);
		if (tag == NULL) {
			assert_int_equal(rc, SISY_E_NOTFOUND);
		} else {
			int vl =
			    snprintf(v, sizeof v, "%s-%d-%030d", tag, i, i);
			assert_int_equal(rc, SISY_OK);
			assert_int_equal(b.len, (size_t)vl);
			assert_memory_equal(b.data, v, b.len);
		}
		sisy_buf_free(&b);
	}
}

static void set_meta(sisy_lsm *db, const char *m)
{
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	sisy_lsm_batch_set_meta(b, m, strlen(m));
	assert_int_equal(sisy_lsm_write(db, b, 0), SISY_OK);
	sisy_lsm_batch_free(b);
}

static void expect_meta(sisy_lsm *db, const char *want)
{
	for (int which = 0; which < 2; which++) {
		sisy_buf b = {0};
		assert_int_equal(sisy_lsm_meta(db, which, &b), SISY_OK);
		assert_int_equal(b.len, strlen(want));
		assert_memory_equal(b.data, want, b.len);
		sisy_buf_free(&b);
	}
}

static void checkpoint_round_trip(bool wal)
{
	sisy_lsm *db = open_at(src, wal);
	put_n(db, 0, 3000, "old");
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	put_n(db, 3000, 3100, "mem"); /* still in the memtable */
	assert_int_equal(sisy_lsm_delete(db, "key0000000007", 13, 0), SISY_OK);
	set_meta(db, "applied=42");
	uint64_t seq = sisy_lsm_last_seq(db);
	assert_int_equal(sisy_lsm_checkpoint(db, dst), SISY_OK);
	assert_int_equal(sisy_lsm_checkpoint(db, dst), SISY_E_EXISTS);
	/* after the checkpoint */
	put_n(db, 0, 100, "new");
	set_meta(db, "applied=43");

	/* the tables are shared, not copied */
	DIR *d = opendir(dst);
	struct dirent *e;
	int tables = 0;
	while ((e = readdir(d)) != NULL) {
		if (strstr(e->d_name, ".sst") == NULL)
			continue;
		char p[700];
		struct stat st;
		snprintf(p, sizeof p, "%s/%s", dst, e->d_name);
		assert_int_equal(stat(p, &st), 0);
		assert_true(st.st_nlink >= 2);
		tables++;
	}
	closedir(d);
	assert_true(tables > 0);

	/* the source moves on and deletes its old tables */
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);

	sisy_lsm *cp = open_at(dst, wal);
	assert_int_equal(sisy_lsm_last_seq(cp), seq);
	expect_meta(cp, "applied=42");
	check_n(cp, 0, 7, "old");
	check_n(cp, 7, 8, NULL);
	check_n(cp, 8, 3000, "old");
	check_n(cp, 3000, 3100, "mem");
	/* it is a database of its own */
	put_n(cp, 5000, 5010, "cp");
	assert_int_equal(sisy_lsm_compact_all(cp), SISY_OK);
	assert_int_equal(sisy_lsm_close(cp), SISY_OK);
	db = open_at(src, wal);
	check_n(db, 0, 100, "new");
	check_n(db, 5000, 5010, NULL);
	expect_meta(db, "applied=43");
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	cp = open_at(dst, wal);
	check_n(cp, 5000, 5010, "cp");
	check_n(cp, 0, 7, "old");
	assert_int_equal(sisy_lsm_close(cp), SISY_OK);
}

static void test_checkpoint_with_wal(void **state)
{
	(void)state;
	checkpoint_round_trip(true);
}

static void test_checkpoint_without_wal(void **state)
{
	(void)state;
	checkpoint_round_trip(false);
}

static void test_checkpoint_of_empty_db(void **state)
{
	(void)state;
	sisy_lsm *db = open_at(src, true);
	assert_int_equal(sisy_lsm_checkpoint(db, dst), SISY_OK);
	assert_int_equal(sisy_lsm_checkpoint(db, ""), SISY_E_INVAL);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	sisy_lsm *cp = open_at(dst, true);
	assert_int_equal(sisy_lsm_last_seq(cp), 0);
	expect_meta(cp, "");
	assert_int_equal(sisy_lsm_close(cp), SISY_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_checkpoint_with_wal, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_checkpoint_without_wal, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_checkpoint_of_empty_db, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
