/* Tests explicit snapshots (sisyd/lsm/db_snapshot.c) and how compaction
 * honours them (db_compact.c): a snapshot keeps seeing old values through
 * overwrites, deletes, flushes and compactions; once released, compaction
 * drops the shadowed versions and the tombstones; a flush writes only the
 * versions some snapshot (or the present) can see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "lsm_test_util.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "snap");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmdir(dir);
	return 0;
}

static sisy_lsm *open_db(void)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = dir;
	o.memtable_bytes = 64 << 10;
	sisy_lsm *db;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_OK);
	return db;
}

static void expect_at(sisy_lsm *db, const sisy_lsm_snapshot *s, const char *k,
		      const char *v)
{
	sisy_buf b = {0};
	sisy_err rc = sisy_lsm_get(db, s, k, strlen(k), &b);
	if (v == NULL) {
		assert_int_equal(rc, SISY_E_NOTFOUND);
	} else {
		assert_int_equal(rc, SISY_OK);
		assert_int_equal(b.len, strlen(v));
		assert_memory_equal(b.data, v, b.len);
	}
	sisy_buf_free(&b);
}

static uint64_t table_bytes(sisy_lsm *db)
{
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	uint64_t sum = 0;
	for (int l = 0; l < 7; l++)
		sum += st.bytes_per_level[l];
	return sum;
}

static void test_snapshot_sees_the_past(void **state)
{
	(void)state;
	sisy_lsm *db = open_db();
	assert_int_equal(sisy_lsm_put(db, "a", 1, "a1", 2, 0), SISY_OK);
	assert_int_equal(sisy_lsm_put(db, "b", 1, "b1", 2, 0), SISY_OK);
	const sisy_lsm_snapshot *s1 = sisy_lsm_snapshot_new(db);
	assert_int_equal(sisy_lsm_snapshot_seq(s1), 2);
	assert_int_equal(sisy_lsm_put(db, "a", 1, "a2", 2, 0), SISY_OK);
	assert_int_equal(sisy_lsm_delete(db, "b", 1, 0), SISY_OK);
	assert_int_equal(sisy_lsm_put(db, "c", 1, "c2", 2, 0), SISY_OK);
	const sisy_lsm_snapshot *s2 = sisy_lsm_snapshot_new(db);
	assert_int_equal(sisy_lsm_snapshot_seq(s2), 5);
	assert_int_equal(sisy_lsm_put(db, "a", 1, "a3", 2, 0), SISY_OK);
	for (int phase = 0; phase < 3; phase++) {
		expect_at(db, s1, "a", "a1");
		expect_at(db, s1, "b", "b1");
		expect_at(db, s1, "c", NULL);
		expect_at(db, s2, "a", "a2");
		expect_at(db, s2, "b", NULL);
		expect_at(db, s2, "c", "c2");
		expect_at(db, NULL, "a", "a3");
		/* the same through an iterator on the snapshot */
		sisy_lsm_iter *it = sisy_lsm_iter_new(db, s1);
		sisy_lsm_iter_seek_first(it);
		size_t n;
		assert_true(sisy_lsm_iter_valid(it));
		assert_memory_equal(sisy_lsm_iter_value(it, &n), "a1", 2);
		sisy_lsm_iter_next(it);
		assert_memory_equal(sisy_lsm_iter_key(it, &n), "b", 1);
		sisy_lsm_iter_next(it);
		assert_false(sisy_lsm_iter_valid(it));
		sisy_lsm_iter_free(it);
		if (phase == 0)
			assert_int_equal(sisy_lsm_flush(db), SISY_OK);
		if (phase == 1)
			assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	}
	sisy_lsm_snapshot_release(db, s2);
	sisy_lsm_snapshot_release(db, s1);
	sisy_lsm_snapshot_release(db, NULL);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

static void test_compaction_keeps_what_snapshots_need(void **state)
{
	(void)state;
	sisy_lsm *db = open_db();
	enum { N = 300, V = 1000 };
	char *val = malloc(V);
	/* N keys, each written 10 times with a snapshot in between */
	const sisy_lsm_snapshot *snaps[10];
	for (int round = 0; round < 10; round++) {
		for (int i = 0; i < N; i++) {
			char k[32];
			size_t kl = tu_key(k, sizeof k, (uint64_t)i);
			memset(val, 'a' + round, V);
			assert_int_equal(sisy_lsm_put(db, k, kl, val, V, 0),
					 SISY_OK);
		}
		snaps[round] = sisy_lsm_snapshot_new(db);
	}
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	/* every version is still needed */
	uint64_t with = table_bytes(db);
	assert_true(with >= 10ull * N * V);
	for (int round = 0; round < 10; round++) {
		char k[32];
		size_t kl = tu_key(k, sizeof k, 7);
		sisy_buf b = {0};
		assert_int_equal(sisy_lsm_get(db, snaps[round], k, kl, &b),
				 SISY_OK);
		assert_int_equal(b.data[0], 'a' + round);
		sisy_buf_free(&b);
	}
	/* released: only the newest version of each key survives */
	for (int round = 0; round < 10; round++)
		sisy_lsm_snapshot_release(db, snaps[round]);
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	uint64_t without = table_bytes(db);
	assert_true(without >= (uint64_t)N * V);
	assert_true(without < 2ull * N * V);

	/* tombstones: deleting everything leaves (almost) nothing once no
	 * snapshot needs the values and no lower level holds the keys */
	const sisy_lsm_snapshot *keep = sisy_lsm_snapshot_new(db);
	for (int i = 0; i < N; i++) {
		char k[32];
		size_t kl = tu_key(k, sizeof k, (uint64_t)i);
		assert_int_equal(sisy_lsm_delete(db, k, kl, 0), SISY_OK);
	}
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	assert_true(table_bytes(db) >= (uint64_t)N * V); /* keep needs them */
	expect_at(db, NULL, "key0000000007", NULL);
	sisy_lsm_snapshot_release(db, keep);
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	assert_true(table_bytes(db) < 4096);
	sisy_lsm_iter *it = sisy_lsm_iter_new(db, NULL);
	sisy_lsm_iter_seek_first(it);
	assert_false(sisy_lsm_iter_valid(it));
	sisy_lsm_iter_free(it);
	free(val);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

/* A flush leaves out the versions no snapshot can see (compaction's rule,
 * applied by the memtable's flush iterator), and keeps the ones a snapshot
 * still reads. */
static void test_flush_keeps_only_what_snapshots_need(void **state)
{
	(void)state;
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = dir;
	o.memtable_bytes = 4 << 20; /* everything below fits: one flush */
	sisy_lsm *db;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_OK);
	enum { N = 100, V = 1000 };
	char *val = malloc(V);
	const sisy_lsm_snapshot *snap = NULL;
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < N; i++) {
			char k[32];
			size_t kl = tu_key(k, sizeof k, (uint64_t)i);
			memset(val, 'a' + round, V);
			assert_int_equal(sisy_lsm_put(db, k, kl, val, V, 0),
					 SISY_OK);
		}
		if (round == 2)
			snap = sisy_lsm_snapshot_new(db);
	}
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	/* per key: rounds 4 and 3 (newer than the snapshot) and round 2 (what
	 * the snapshot reads); rounds 1 and 0 are shadowed by round 2 for
	 * every reader */
	uint64_t bytes = table_bytes(db);
	assert_true(bytes >= 3ull * N * V && bytes < 4ull * N * V);
	sisy_buf b = {0};
	char k[32];
	size_t kl = tu_key(k, sizeof k, 42);
	assert_int_equal(sisy_lsm_get(db, snap, k, kl, &b), SISY_OK);
	assert_int_equal(b.data[0], 'c');
	assert_int_equal(sisy_lsm_get(db, NULL, k, kl, &b), SISY_OK);
	assert_int_equal(b.data[0], 'e');
	sisy_lsm_snapshot_release(db, snap);

	/* no snapshot: only the newest version of each key is written */
	for (int round = 0; round < 5; round++) {
		for (int i = 0; i < N; i++) {
			kl = tu_key(k, sizeof k, (uint64_t)i);
			memset(val, 'f' + round, V);
			assert_int_equal(sisy_lsm_put(db, k, kl, val, V, 0),
					 SISY_OK);
		}
	}
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	uint64_t added = table_bytes(db) - bytes;
	assert_true(added >= (uint64_t)N * V && added < 2ull * N * V);
	assert_int_equal(sisy_lsm_get(db, NULL, k, kl, &b), SISY_OK);
	assert_int_equal(b.data[0], 'j');
	sisy_buf_free(&b);
	free(val);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_snapshot_sees_the_past, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_compaction_keeps_what_snapshots_need, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_flush_keeps_only_what_snapshots_need, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
