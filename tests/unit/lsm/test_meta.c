/* Tests metadata stored with batches (sisyd/lsm/db_meta.c and the write,
 * flush and recovery paths): LATEST and DURABLE with the WAL on and off,
 * and that after a machine crash the metadata and the data it describes
 * come back together (the contract Raft's applied index relies on). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_fault.h"
#include "lsm.h"
#include "lsm_test_util.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "meta");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmdir(dir);
	return 0;
}

static void expect_meta(sisy_lsm *db, int which, const char *want)
{
	sisy_buf b = {0};
	assert_int_equal(sisy_lsm_meta(db, which, &b), SISY_OK);
	assert_int_equal(b.len, strlen(want));
	if (b.len)
		assert_memory_equal(b.data, want, b.len);
	sisy_buf_free(&b);
}

static void write_meta(sisy_lsm *db, const char *key, const char *meta,
		       int flags)
{
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	if (key != NULL)
		assert_int_equal(
		    sisy_lsm_batch_put(b, key, strlen(key), meta, strlen(meta)),
		    SISY_OK);
	assert_int_equal(sisy_lsm_batch_set_meta(b, meta, strlen(meta)),
			 SISY_OK);
	assert_int_equal(sisy_lsm_write(db, b, flags), SISY_OK);
	sisy_lsm_batch_free(b);
}

static sisy_lsm *open_at(const char *d, sisy_fs *fs, bool wal)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = d;
	o.fs = fs;
	o.wal = wal;
	sisy_lsm *db = NULL;
	sisy_err rc = sisy_lsm_open(&o, &db);
	if (rc != SISY_OK)
		fprintf(stderr, "open: %s\n", sisy_errmsg());
	assert_int_equal(rc, SISY_OK);
	return db;
}

static void test_meta_with_wal(void **state)
{
	(void)state;
	sisy_lsm *db = open_at(dir, NULL, true);
	expect_meta(db, SISY_LSM_META_LATEST, "");
	expect_meta(db, SISY_LSM_META_DURABLE, "");
	write_meta(db, "a", "m1", SISY_LSM_NOSYNC);
	expect_meta(db, SISY_LSM_META_LATEST, "m1");
	expect_meta(db, SISY_LSM_META_DURABLE, "");
	/* a synced write makes everything before it durable */
	assert_int_equal(sisy_lsm_put(db, "b", 1, "b", 1, SISY_LSM_SYNC),
			 SISY_OK);
	expect_meta(db, SISY_LSM_META_DURABLE, "m1");
	/* metadata alone, no operations: no sequence number taken */
	uint64_t seq = sisy_lsm_last_seq(db);
	write_meta(db, NULL, "m2", 0);
	assert_int_equal(sisy_lsm_last_seq(db), seq);
	expect_meta(db, SISY_LSM_META_LATEST, "m2");
	expect_meta(db, SISY_LSM_META_DURABLE, "m1");
	/* a flush makes it durable too */
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	expect_meta(db, SISY_LSM_META_DURABLE, "m2");
	write_meta(db, "c", "m3", 0);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	db = open_at(dir, NULL, true);
	expect_meta(db, SISY_LSM_META_LATEST, "m3");
	expect_meta(db, SISY_LSM_META_DURABLE, "m3");
	/* empty metadata is a value too */
	write_meta(db, NULL, "", SISY_LSM_SYNC);
	expect_meta(db, SISY_LSM_META_LATEST, "");
	expect_meta(db, SISY_LSM_META_DURABLE, "");
	sisy_buf b = {0};
	assert_int_equal(sisy_lsm_meta(db, 7, &b), SISY_E_INVAL);
	sisy_lsm_batch *big = sisy_lsm_batch_new();
	char *m = calloc(1, SISY_LSM_MAX_META + 1);
	assert_int_equal(sisy_lsm_batch_set_meta(big, m, SISY_LSM_MAX_META + 1),
			 SISY_E_TOOBIG);
	assert_int_equal(sisy_lsm_batch_set_meta(big, m, SISY_LSM_MAX_META),
			 SISY_OK);
	assert_int_equal(sisy_lsm_write(db, big, 0), SISY_OK);
	assert_int_equal(sisy_lsm_meta(db, SISY_LSM_META_LATEST, &b), SISY_OK);
	assert_int_equal(b.len, SISY_LSM_MAX_META);
	sisy_buf_free(&b);
	free(m);
	sisy_lsm_batch_free(big);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

static void test_meta_without_wal(void **state)
{
	(void)state;
	sisy_lsm *db = open_at(dir, NULL, false);
	write_meta(db, "a", "applied=1", SISY_LSM_SYNC);
	expect_meta(db, SISY_LSM_META_LATEST, "applied=1");
	/* no WAL: even a "synced" write is durable only once flushed */
	expect_meta(db, SISY_LSM_META_DURABLE, "");
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	expect_meta(db, SISY_LSM_META_DURABLE, "applied=1");
	/* metadata alone is flushed as well, with nothing else to flush */
	write_meta(db, NULL, "applied=2", 0);
	expect_meta(db, SISY_LSM_META_DURABLE, "applied=1");
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	expect_meta(db, SISY_LSM_META_DURABLE, "applied=2");
	write_meta(db, "b", "applied=3", 0);
	assert_int_equal(sisy_lsm_close(db), SISY_OK); /* close flushes */
	db = open_at(dir, NULL, false);
	expect_meta(db, SISY_LSM_META_LATEST, "applied=3");
	expect_meta(db, SISY_LSM_META_DURABLE, "applied=3");
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

/* Crashes the machine under an open engine and reopens. */
static sisy_lsm *crash_and_reopen(sisy_fs_fault *ff, sisy_lsm *db, bool wal)
{
	sisy_fs_fault_crash(ff);
	(void)sisy_lsm_close(db); /* fails: the disk is gone */
	sisy_fs_fault_restart(ff);
	return open_at("/db", sisy_fs_fault_fs(ff), wal);
}

static bool has(sisy_lsm *db, const char *k)
{
	sisy_buf b = {0};
	sisy_err rc = sisy_lsm_get(db, NULL, k, strlen(k), &b);
	sisy_buf_free(&b);
	assert_true(rc == SISY_OK || rc == SISY_E_NOTFOUND);
	return rc == SISY_OK;
}

static void test_durable_is_what_a_crash_leaves_wal_off(void **state)
{
	(void)state;
	sisy_fs_fault *ff = sisy_fs_fault_new(5);
	sisy_lsm *db = open_at("/db", sisy_fs_fault_fs(ff), false);
	write_meta(db, "k1", "applied=1", 0);
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	write_meta(db, "k2", "applied=2", 0);
	expect_meta(db, SISY_LSM_META_DURABLE, "applied=1");
	db = crash_and_reopen(ff, db, false);
	expect_meta(db, SISY_LSM_META_LATEST, "applied=1");
	expect_meta(db, SISY_LSM_META_DURABLE, "applied=1");
	assert_true(has(db, "k1"));
	assert_false(has(db, "k2"));
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	sisy_fs_fault_free(ff);
}

static void test_meta_and_data_travel_together(void **state)
{
	(void)state;
	/* WAL on, torn writes on: a crash may keep any prefix of the
	 * unsynced records; whatever survives, the metadata names exactly
	 * the batches whose data is there, and DURABLE never goes back */
	for (uint64_t seed = 1; seed <= 40; seed++) {
		sisy_fs_fault *ff = sisy_fs_fault_new(seed);
		sisy_lsm *db = open_at("/db", sisy_fs_fault_fs(ff), true);
		int synced = (int)(seed % 5);
		int total = synced + 1 + (int)(seed % 7);
		for (int i = 1; i <= total; i++) {
			char k[16], m[32];
			snprintf(k, sizeof k, "k%02d", i);
			snprintf(m, sizeof m, "applied=%d", i);
			write_meta(db, k, m, i <= synced ? SISY_LSM_SYNC : 0);
		}
		db = crash_and_reopen(ff, db, true);
		sisy_buf b = {0};
		assert_int_equal(sisy_lsm_meta(db, SISY_LSM_META_LATEST, &b),
				 SISY_OK);
		int applied = 0;
		if (b.len > 0) {
			char text[64];
			snprintf(text, sizeof text, "%.*s", (int)b.len,
				 (const char *)b.data);
			assert_int_equal(sscanf(text, "applied=%d", &applied),
					 1);
		}
		sisy_buf_free(&b);
		assert_true(applied >= synced && applied <= total);
		for (int i = 1; i <= total; i++) {
			char k[16];
			snprintf(k, sizeof k, "k%02d", i);
			assert_int_equal(has(db, k), i <= applied);
		}
		assert_int_equal(sisy_lsm_close(db), SISY_OK);
		sisy_fs_fault_free(ff);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_meta_with_wal, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_meta_without_wal, setup,
					    teardown),
	    cmocka_unit_test(test_durable_is_what_a_crash_leaves_wal_off),
	    cmocka_unit_test(test_meta_and_data_travel_together),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
