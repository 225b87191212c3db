/* Tests the engine end to end (sisyd/lsm/db_*.c): open/close and options,
 * put/get/delete, atomic batches, flushes and compactions under a small
 * memtable, reopen after each, WAL on and off, statistics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dirent.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <time.h>

#include "db.h"
#include "gate_fs.h"
#include "lsm.h"
#include "lsm_test_util.h"
#include "rand.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "db");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmdir(dir);
	return 0;
}

static sisy_lsm_options opts(void)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = dir;
	return o;
}

static sisy_lsm *open_db(const sisy_lsm_options *o)
{
	sisy_lsm *db = NULL;
	sisy_err rc = sisy_lsm_open(o, &db);
	if (rc != SISY_OK)
		fprintf(stderr, "open: %s\n", sisy_errmsg());
	assert_int_equal(rc, SISY_OK);
	return db;
}

static void put_s(sisy_lsm *db, const char *k, const char *v)
{
	assert_int_equal(sisy_lsm_put(db, k, strlen(k), v, strlen(v), 0),
			 SISY_OK);
}

static void expect(sisy_lsm *db, const char *k, const char *v)
{
	sisy_buf b = {0};
	sisy_err rc = sisy_lsm_get(db, NULL, k, strlen(k), &b);
	if (v == NULL) {
		assert_int_equal(rc, SISY_E_NOTFOUND);
	} else {
		if (rc != SISY_OK)
			fprintf(stderr, "get %s: %s\n", k, sisy_errmsg());
		assert_int_equal(rc, SISY_OK);
		assert_int_equal(b.len, strlen(v));
		assert_memory_equal(b.data, v, b.len);
	}
	sisy_buf_free(&b);
}

static void test_put_get_delete_reopen(void **state)
{
	(void)state;
	sisy_lsm_options o = opts();
	sisy_lsm *db = open_db(&o);
	expect(db, "a", NULL);
	put_s(db, "a", "1");
	put_s(db, "b", "2");
	put_s(db, "a", "3");
	expect(db, "a", "3");
	expect(db, "b", "2");
	assert_int_equal(sisy_lsm_delete(db, "b", 1, 0), SISY_OK);
	expect(db, "b", NULL);
	assert_int_equal(sisy_lsm_delete(db, "nothing", 7, 0), SISY_OK);
	/* empty values are values, not deletes */
	assert_int_equal(sisy_lsm_put(db, "e", 1, "", 0, 0), SISY_OK);
	expect(db, "e", "");
	assert_int_equal(sisy_lsm_last_seq(db), 6);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	/* recovered from the WAL */
	db = open_db(&o);
	expect(db, "a", "3");
	expect(db, "b", NULL);
	expect(db, "e", "");
	assert_int_equal(sisy_lsm_last_seq(db), 6);
	/* from a table after a flush */
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	expect(db, "a", "3");
	put_s(db, "a", "4");
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	db = open_db(&o);
	expect(db, "a", "4");
	expect(db, "b", NULL);
	assert_int_equal(sisy_lsm_last_seq(db), 7);
	assert_null(sisy_lsm_failed(db));
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

/* Recovery writes what the WAL replays to a table; no snapshot exists
 * while the database opens, so only each key's newest version goes there
 * (a tombstone included). */
static void test_recovery_table_keeps_newest_versions(void **state)
{
	(void)state;
	sisy_lsm_options o = opts();
	sisy_lsm *db = open_db(&o);
	char v[128];
	for (int i = 0; i < 2000; i++) {
		int n = snprintf(v, sizeof v, "%04d", i);
		memset(v + n, 'x', 100 - (size_t)n);
		assert_int_equal(sisy_lsm_put(db, "k", 1, v, 100, 0), SISY_OK);
	}
	put_s(db, "d", "gone");
	assert_int_equal(sisy_lsm_delete(db, "d", 1, 0), SISY_OK);
	put_s(db, "z", "last");
	uint64_t last = sisy_lsm_last_seq(db);
	assert_int_equal(sisy_lsm_close(db), SISY_OK); /* WAL on: no flush */
	db = open_db(&o);
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	uint64_t table_bytes = 0;
	for (int l = 0; l < 7; l++)
		table_bytes += st.bytes_per_level[l];
	/* 2,000 versions of k would be ~230 KB; three entries are tiny */
	assert_true(table_bytes > 0);
	assert_true(table_bytes < 8192);
	memset(v, 'x', 100);
	memcpy(v, "1999", 4);
	v[100] = '\0';
	expect(db, "k", v);
	expect(db, "d", NULL);
	expect(db, "z", "last");
	assert_int_equal(sisy_lsm_last_seq(db), last);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

static void test_options(void **state)
{
	(void)state;
	sisy_lsm_options o = opts();
	sisy_lsm *db = NULL;
	o.dir = NULL;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_E_INVAL);
	o = opts();
	o.memtable_bytes = 10;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "memtable_bytes"));
	o = opts();
	o.l0_stop_trigger = 2; /* below the slowdown trigger */
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_E_INVAL);
	o = opts();
	o.bg_nice = 20;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "bg_nice"));
	/* a missing directory without create_if_missing */
	o = opts();
	char sub[300];
	snprintf(sub, sizeof sub, "%s/sub", dir);
	o.dir = sub;
	o.create_if_missing = false;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_E_NOTFOUND);
	assert_null(db);
	o.create_if_missing = true;
	db = open_db(&o);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	o.error_if_exists = true;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_E_EXISTS);
	/* an existing empty directory without create_if_missing */
	o = opts();
	o.create_if_missing = false;
	assert_int_equal(sisy_lsm_open(&o, &db), SISY_E_NOTFOUND);
	assert_int_equal(sisy_lsm_close(NULL), SISY_OK);
}

static void test_batches_are_atomic(void **state)
{
	(void)state;
	sisy_lsm_options o = opts();
	sisy_lsm *db = open_db(&o);
	put_s(db, "x", "old");
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	sisy_lsm_batch_put(b, "k1", 2, "v1", 2);
	sisy_lsm_batch_put(b, "k2", 2, "v2", 2);
	sisy_lsm_batch_delete(b, "x", 1);
	sisy_lsm_batch_put(b, "k1", 2, "v1b", 3); /* later op wins */
	const sisy_lsm_snapshot *before = sisy_lsm_snapshot_new(db);
	assert_int_equal(sisy_lsm_write(db, b, SISY_LSM_SYNC), SISY_OK);
	assert_int_equal(sisy_lsm_last_seq(db), 1 + 4);
	expect(db, "k1", "v1b");
	expect(db, "k2", "v2");
	expect(db, "x", NULL);
	/* the snapshot taken before sees none of it */
	sisy_buf v = {0};
	assert_int_equal(sisy_lsm_get(db, before, "k2", 2, &v),
			 SISY_E_NOTFOUND);
	assert_int_equal(sisy_lsm_get(db, before, "x", 1, &v), SISY_OK);
	assert_memory_equal(v.data, "old", 3);
	sisy_buf_free(&v);
	sisy_lsm_snapshot_release(db, before);
	/* an empty batch is a no-op */
	sisy_lsm_batch_clear(b);
	assert_int_equal(sisy_lsm_write(db, b, 0), SISY_OK);
	assert_int_equal(sisy_lsm_last_seq(db), 5);
	assert_int_equal(sisy_lsm_write(db, b, SISY_LSM_SYNC | SISY_LSM_NOSYNC),
			 SISY_E_INVAL);
	sisy_lsm_batch_free(b);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	db = open_db(&o);
	expect(db, "k1", "v1b");
	expect(db, "x", NULL);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

/* Writes n keys with values derived from (i, round); small memtables so
 * flushes and compactions run. */
static void fill(sisy_lsm *db, int n, int round, sisy_rand *r)
{
	for (int i = 0; i < n; i++) {
		char k[32], v[128];
		int key = (int)sisy_rand_below(r, (uint64_t)n);
		size_t kl = tu_key(k, sizeof k, (uint64_t)key);
		int vl =
		    snprintf(v, sizeof v, "value-%d-%d-%080d", key, round, key);
		assert_int_equal(sisy_lsm_put(db, k, kl, v, (size_t)vl, 0),
				 SISY_OK);
	}
}

static void test_flush_and_compaction(void **state)
{
	(void)state;
	sisy_lsm_options o = opts();
	o.memtable_bytes = 64 << 10;
	o.target_file_bytes = 64 << 10;
	o.l1_max_bytes = 256 << 10;
	o.block_cache_bytes = 1 << 20;
	sisy_lsm *db = open_db(&o);
	sisy_rand r;
	sisy_rand_seed(&r, tu_seed("flush_and_compaction"));
	enum { N = 20000 };
	/* the last value written for each key */
	int *last = calloc(N, sizeof *last);
	for (int i = 0; i < N; i++)
		last[i] = -1;
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			char k[32], v[128];
			int key = (int)sisy_rand_below(&r, N);
			size_t kl = tu_key(k, sizeof k, (uint64_t)key);
			int vl = snprintf(v, sizeof v, "value-%d-%d-%060d", key,
					  round * N + i, key);
			assert_int_equal(
			    sisy_lsm_put(db, k, kl, v, (size_t)vl, 0), SISY_OK);
			last[key] = round * N + i;
			if (i % 7 == 0) {
				key = (int)sisy_rand_below(&r, N);
				kl = tu_key(k, sizeof k, (uint64_t)key);
				assert_int_equal(sisy_lsm_delete(db, k, kl, 0),
						 SISY_OK);
				last[key] = -1;
			}
		}
	}
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	assert_true(st.flushes > 10);
	assert_true(st.compactions > 0);
	assert_true(st.compaction_bytes_written > 0);
	assert_true(st.puts == 3 * N);
	int files = 0;
	for (int l = 1; l < 7; l++)
		files += st.files_per_level[l];
	assert_true(files > 0);
	for (int pass = 0; pass < 2; pass++) {
		for (int key = 0; key < N; key++) {
			char k[32], v[128];
			size_t kl = tu_key(k, sizeof k, (uint64_t)key);
			sisy_buf b = {0};
			sisy_err rc = sisy_lsm_get(db, NULL, k, kl, &b);
			if (last[key] < 0) {
				assert_int_equal(rc, SISY_E_NOTFOUND);
			} else {
				assert_int_equal(rc, SISY_OK);
				int vl =
				    snprintf(v, sizeof v, "value-%d-%d-%060d",
					     key, last[key], key);
				assert_int_equal(b.len, (size_t)vl);
				assert_memory_equal(b.data, v, b.len);
			}
			sisy_buf_free(&b);
		}
		/* and again after a reopen and a full compaction */
		assert_int_equal(sisy_lsm_close(db), SISY_OK);
		db = open_db(&o);
		assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	}
	sisy_lsm_get_stats(db, &st);
	int nonempty = 0;
	for (int l = 0; l < 7; l++)
		nonempty += st.files_per_level[l] > 0;
	assert_int_equal(nonempty, 1); /* everything in one level */
	assert_int_equal(st.files_per_level[0], 0);
	free(last);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	(void)fill;
}

static void test_wal_off_close_flushes(void **state)
{
	(void)state;
	sisy_lsm_options o = opts();
	o.wal = false;
	sisy_lsm *db = open_db(&o);
	put_s(db, "k", "v");
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.wal_bytes, 0);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	db = open_db(&o);
	expect(db, "k", "v");
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.files_per_level[0] + st.files_per_level[1] +
			     st.files_per_level[2],
			 1);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	/* switching the WAL back on keeps the data */
	o.wal = true;
	db = open_db(&o);
	expect(db, "k", "v");
	put_s(db, "k2", "v2");
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	o.wal = false;
	db = open_db(&o);
	expect(db, "k2", "v2");
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

typedef struct rw_ctx {
	sisy_lsm *db;
	_Atomic int done;
	_Atomic int errors;
	uint64_t seed;
} rw_ctx;

enum { RW_KEYS = 2000, RW_ROUNDS = 6 };

static void *rw_reader(void *arg)
{
	rw_ctx *c = arg;
	sisy_rand r;
	sisy_rand_seed(&r, c->seed);
	int *seen = calloc(RW_KEYS, sizeof *seen); /* newest round seen */
	sisy_buf b = {0};
	while (!atomic_load(&c->done)) {
		for (int i = 0; i < 200; i++) {
			int k = (int)sisy_rand_below(&r, RW_KEYS);
			char key[32];
			size_t kl = tu_key(key, sizeof key, (uint64_t)k);
			sisy_err rc = sisy_lsm_get(c->db, NULL, key, kl, &b);
			int round = -1, kk = -1;
			if (rc == SISY_OK) {
				char text[64];
				snprintf(text, sizeof text, "%.*s",
					 (int)(b.len < 60 ? b.len : 60),
					 (const char *)b.data);
				sscanf(text, "r%d-k%d", &round, &kk);
			}
			/* a key, once seen, never goes back in time */
			if ((rc != SISY_OK && rc != SISY_E_NOTFOUND) ||
			    (rc == SISY_OK && (kk != k || round < seen[k])) ||
			    (rc == SISY_E_NOTFOUND && seen[k] > 0))
				atomic_fetch_add(&c->errors, 1);
			if (rc == SISY_OK)
				seen[k] = round;
		}
		/* a scan is sorted and made of well-formed values */
		sisy_lsm_iter *it = sisy_lsm_iter_new(c->db, NULL);
		int prev = -1;
		for (sisy_lsm_iter_seek_first(it); sisy_lsm_iter_valid(it);
		     sisy_lsm_iter_next(it)) {
			size_t kl;
			const uint8_t *kp = sisy_lsm_iter_key(it, &kl);
			char text[40];
			snprintf(text, sizeof text, "%.*s",
				 (int)(kl < 30 ? kl : 30), (const char *)kp);
			int k = -1;
			sscanf(text, "key%d", &k);
			if (k <= prev)
				atomic_fetch_add(&c->errors, 1);
			prev = k;
		}
		if (sisy_lsm_iter_status(it) != SISY_OK)
			atomic_fetch_add(&c->errors, 1);
		sisy_lsm_iter_free(it);
	}
	sisy_buf_free(&b);
	free(seen);
	return NULL;
}

static void test_readers_during_writes_and_compactions(void **state)
{
	(void)state;
	sisy_lsm_options o = opts();
	o.memtable_bytes = 64 << 10;
	o.target_file_bytes = 64 << 10;
	o.l1_max_bytes = 256 << 10;
	sisy_lsm *db = open_db(&o);
	rw_ctx c = {.db = db, .seed = tu_seed("readers_during_writes")};
	pthread_t th[2];
	for (int i = 0; i < 2; i++) {
		rw_ctx *ci = &c;
		pthread_create(&th[i], NULL, rw_reader, ci);
	}
	/* the writer: every key once per round, rounds ascending */
	for (int round = 1; round <= RW_ROUNDS; round++) {
		for (int k = 0; k < RW_KEYS; k++) {
			char key[32], v[128];
			size_t kl = tu_key(key, sizeof key, (uint64_t)k);
			int vl =
			    snprintf(v, sizeof v, "r%d-k%d-%060d", round, k, k);
			assert_int_equal(
			    sisy_lsm_put(db, key, kl, v, (size_t)vl, 0),
			    SISY_OK);
		}
		if (round == 3)
			assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	}
	atomic_store(&c.done, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(atomic_load(&c.errors), 0);
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	assert_true(st.flushes > 5 && st.compactions > 0);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

static void test_statistics(void **state)
{
	(void)state;
	sisy_lsm_options o = opts();
	o.compression = true; /* compressed blocks go through the cache */
	o.block_cache_bytes = 1 << 20;
	sisy_lsm *db = open_db(&o);
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.puts + st.deletes + st.batches + st.gets, 0);
	for (int i = 0; i < 500; i++) {
		char k[32], v[200];
		size_t kl = tu_key(k, sizeof k, (uint64_t)i);
		int vl = snprintf(v, sizeof v, "%0150d", i);
		assert_int_equal(sisy_lsm_put(db, k, kl, v, (size_t)vl,
					      i == 0 ? SISY_LSM_SYNC : 0),
				 SISY_OK);
	}
	assert_int_equal(sisy_lsm_delete(db, "key0000000001", 13, 0), SISY_OK);
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	sisy_lsm_batch_put(b, "b", 1, "b", 1);
	assert_int_equal(sisy_lsm_write(db, b, 0), SISY_OK);
	sisy_lsm_batch_free(b);
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.puts, 500);
	assert_int_equal(st.deletes, 1);
	assert_int_equal(st.batches, 1);
	assert_true(st.wal_bytes > 500 * 150);
	assert_true(st.bytes_written >= st.wal_bytes);
	assert_true(st.wal_syncs >= 1);
	assert_true(st.memtable_bytes > 500 * 150);
	assert_int_equal(st.flushes, 0);
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.flushes, 1);
	uint64_t tables = 0;
	int files = 0;
	for (int l = 0; l < 7; l++) {
		tables += st.bytes_per_level[l];
		files += st.files_per_level[l];
	}
	assert_int_equal(files, 1);
	assert_true(tables > 0);
	assert_true(st.bytes_written >= st.wal_bytes + tables);
	/* reads from the table: the cache and the Bloom filter at work */
	sisy_buf v = {0};
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 500; i += 10) {
			char k[32];
			size_t kl = tu_key(k, sizeof k, (uint64_t)i);
			assert_int_equal(sisy_lsm_get(db, NULL, k, kl, &v),
					 SISY_OK);
			k[kl++] =
			    'x'; /* absent, but inside the table's range */
			assert_int_equal(sisy_lsm_get(db, NULL, k, kl, &v),
					 SISY_E_NOTFOUND);
		}
	sisy_buf_free(&v);
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.gets, 200);
	assert_true(st.bloom_negatives >= 80);	/* most absent keys */
	assert_true(st.bloom_positives >= 100); /* every present key */
	assert_true(st.cache_misses > 0);
	assert_true(st.cache_hits > 0); /* the second round */
	assert_true(st.cache_bytes > 0);
	assert_true(st.bytes_read > 0);
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	sisy_lsm_get_stats(db, &st);
	assert_true(st.compactions >= 1);
	assert_true(st.compaction_bytes_read > 0);
	assert_true(st.compaction_bytes_written > 0);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

/* Polls (bounded, 30 s) until the engine has `queued` writers queued and
 * `stalled` waiting on the background thread (-1: don't care). */
static bool wait_state(sisy_lsm *db, int queued, int stalled)
{
	for (int i = 0; i < 300000; i++) {
		int q, s;
		lsm_db_debug_state(db, &q, &s);
		if ((queued < 0 || q == queued) &&
		    (stalled < 0 || s == stalled))
			return true;
		usleep(100);
	}
	return false;
}

typedef struct putter {
	sisy_lsm *db;
	int first, n;
	int flags;
	sisy_err rc;
} putter;

static void *putter_main(void *arg)
{
	putter *p = arg;
	p->rc = SISY_OK;
	for (int i = p->first; i < p->first + p->n && p->rc == SISY_OK; i++) {
		char k[32], v[128];
		size_t kl = tu_key(k, sizeof k, (uint64_t)i);
		int vl = snprintf(v, sizeof v, "v%d-%0100d", i, i);
		p->rc = sisy_lsm_put(p->db, k, kl, v, (size_t)vl, p->flags);
	}
	return NULL;
}

static void test_group_commit_one_sync_for_many(void **state)
{
	(void)state;
	gate_fs g;
	gate_init(&g, sisy_fs_posix());
	sisy_lsm_options o = opts();
	o.fs = &g.base;
	sisy_lsm *db = open_db(&o);
	sisy_lsm_stats st;
	sisy_lsm_get_stats(db, &st);
	uint64_t syncs_before = st.wal_syncs;
	gate_arm(&g, GATE_SYNC, ".log");
	/* A syncs the WAL and is held there, at the front of the queue */
	putter p[4];
	pthread_t th[4];
	p[0] = (putter){db, 0, 1, SISY_LSM_SYNC, SISY_OK};
	pthread_create(&th[0], NULL, putter_main, &p[0]);
	assert_true(gate_wait_parked(&g, 1));
	/* three more synced writers queue up behind it */
	for (int i = 1; i < 4; i++) {
		p[i] = (putter){db, i, 1, SISY_LSM_SYNC, SISY_OK};
		pthread_create(&th[i], NULL, putter_main, &p[i]);
	}
	assert_true(wait_state(db, 4, -1));
	gate_open(&g);
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(p[i].rc, SISY_OK);
	}
	/* A's sync, then one sync for the group of the other three */
	assert_int_equal(gate_passed_syncs(&g), 2);
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.wal_syncs, syncs_before + 2);
	for (int i = 0; i < 4; i++) {
		char k[32];
		size_t kl = tu_key(k, sizeof k, (uint64_t)i);
		sisy_buf b = {0};
		assert_int_equal(sisy_lsm_get(db, NULL, k, kl, &b), SISY_OK);
		sisy_buf_free(&b);
	}
	assert_int_equal(sisy_lsm_last_seq(db), 4);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	gate_destroy(&g);
}

static void test_concurrent_writers(void **state)
{
	(void)state;
	sisy_lsm_options o = opts();
	o.memtable_bytes = 64 << 10;
	sisy_lsm *db = open_db(&o);
	enum { T = 4, N = 3000 };
	putter p[T];
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		p[i] =
		    (putter){db, i * N, N, i == 0 ? SISY_LSM_SYNC : 0, SISY_OK};
		pthread_create(&th[i], NULL, putter_main, &p[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(p[i].rc, SISY_OK);
	}
	assert_int_equal(sisy_lsm_last_seq(db), T * N);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	db = open_db(&o);
	for (int i = 0; i < T * N; i++) {
		char k[32], v[128];
		size_t kl = tu_key(k, sizeof k, (uint64_t)i);
		int vl = snprintf(v, sizeof v, "v%d-%0100d", i, i);
		sisy_buf b = {0};
		assert_int_equal(sisy_lsm_get(db, NULL, k, kl, &b), SISY_OK);
		assert_int_equal(b.len, (size_t)vl);
		assert_memory_equal(b.data, v, b.len);
		sisy_buf_free(&b);
	}
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

/* Writes the same ten keys and flushes. */
static void flush_round(sisy_lsm *db, int round)
{
	for (int i = 0; i < 10; i++) {
		char k[32], v[32];
		size_t kl = tu_key(k, sizeof k, (uint64_t)i);
		int vl = snprintf(v, sizeof v, "r%d", round);
		assert_int_equal(sisy_lsm_put(db, k, kl, v, (size_t)vl, 0),
				 SISY_OK);
	}
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
}

static void test_writers_slow_down_then_wait(void **state)
{
	(void)state;
	gate_fs g;
	gate_init(&g, sisy_fs_posix());
	sisy_lsm_options o = opts();
	o.fs = &g.base;
	o.memtable_bytes = 64 << 10;
	o.l0_compaction_trigger = 2;
	o.l0_slowdown_trigger = 2;
	o.l0_stop_trigger = 3;
	sisy_lsm *db = open_db(&o);
	/* Nothing behind: a NOWAIT write goes in, the memtable can take a
	 * whole memtable's worth after one switch, not more. */
	assert_false(sisy_lsm_write_would_wait(db, 0));
	assert_false(sisy_lsm_write_would_wait(db, (64 << 10) - 1));
	assert_true(sisy_lsm_write_would_wait(db, 64 << 10));
	assert_int_equal(sisy_lsm_put(db, "n", 1, "0", 1, SISY_LSM_NOWAIT),
			 SISY_OK);
	/* Compactions read their input tables; flushes never read. Holding
	 * table reads holds the first compaction and nothing else. */
	gate_arm(&g, GATE_READ, ".sst");
	sisy_lsm_stats st;
	/* flushes of overlapping keys land in L2, L1, then L0 twice */
	for (int round = 0; round < 4; round++)
		flush_round(db, round);
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.files_per_level[0], 2);
	assert_true(gate_wait_parked(&g, 1)); /* the L0 compaction */
	assert_int_equal(st.stalls, 0);

	/* NOWAIT at the slowdown trigger: BUSY at once, nothing written,
	 * no stall counted */
	assert_true(sisy_lsm_write_would_wait(db, 0));
	assert_int_equal(sisy_lsm_put(db, "n", 1, "1", 1, SISY_LSM_NOWAIT),
			 SISY_E_BUSY);
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.stalls, 0);

	/* L0 at the slowdown trigger: each write sleeps 1 ms once */
	assert_int_equal(sisy_lsm_put(db, "s", 1, "1", 1, 0), SISY_OK);
	sisy_lsm_get_stats(db, &st);
	assert_int_equal(st.stalls, 1);
	assert_true(st.stall_micros >= 1000);

	/* fill the memtable twice over: the writer must wait for the flush
	 * the held background thread cannot do -- and not fail */
	putter p = {db, 100000, 2000, 0, SISY_OK};
	pthread_t th;
	pthread_create(&th, NULL, putter_main, &p);
	assert_true(wait_state(db, -1, 1));
	assert_int_equal(p.rc, SISY_OK);
	/* ... and behind a waiting writer */
	assert_int_equal(sisy_lsm_put(db, "n", 1, "2", 1, SISY_LSM_NOWAIT),
			 SISY_E_BUSY);
	uint64_t stalled_before = st.stall_micros;
	gate_open(&g);
	pthread_join(th, NULL);
	assert_int_equal(p.rc, SISY_OK);
	sisy_lsm_get_stats(db, &st);
	assert_true(st.stall_micros > stalled_before);
	assert_true(st.stalls >= 2);
	assert_int_equal(sisy_lsm_compact_all(db), SISY_OK);
	sisy_buf b = {0};
	char k[32];
	size_t kl = tu_key(k, sizeof k, 100000 + 1999);
	assert_int_equal(sisy_lsm_get(db, NULL, k, kl, &b), SISY_OK);
	kl = tu_key(k, sizeof k, 3);
	assert_int_equal(sisy_lsm_get(db, NULL, k, kl, &b), SISY_OK);
	assert_memory_equal(b.data, "r3", 2);
	/* the refused NOWAIT writes left nothing */
	assert_int_equal(sisy_lsm_get(db, NULL, "n", 1, &b), SISY_OK);
	assert_int_equal(b.len, 1);
	assert_memory_equal(b.data, "0", 1);
	sisy_buf_free(&b);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	gate_destroy(&g);
}

/* The nice value of this process's thread named `comm`, or INT_MIN. */
static int thread_nice(const char *comm)
{
	DIR *d = opendir("/proc/self/task");
	int nice = INT_MIN;
	struct dirent *e;
	while (d != NULL && nice == INT_MIN && (e = readdir(d)) != NULL) {
		char path[300], buf[512];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/comm",
			 e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		bool match = fgets(buf, sizeof buf, f) != NULL &&
			     strncmp(buf, comm, strlen(comm)) == 0 &&
			     buf[strlen(comm)] == '\n';
		fclose(f);
		if (!match)
			continue;
		snprintf(path, sizeof path, "/proc/self/task/%s/stat",
			 e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		/* after "(comm) ": fields 3.. ; nice is field 19 */
		if (fgets(buf, sizeof buf, f) != NULL) {
			char *p = strrchr(buf, ')');
			int field = 2;
			for (; p != NULL && *p && field < 19; p++)
				if (*p == ' ')
					field++;
			if (p != NULL && field == 19)
				nice = atoi(p);
		}
		fclose(f);
	}
	if (d != NULL)
		closedir(d);
	return nice;
}

/* bg_nice lowers the background thread alone (it sets its own nice as it
 * starts: waited for, bounded). */
static void test_bg_nice(void **state)
{
	(void)state;
	int base = getpriority(PRIO_PROCESS, 0);
	sisy_lsm_options o = opts();
	o.bg_nice = 7;
	sisy_lsm *db = open_db(&o);
	int want = base + 7 > 19 ? 19 : base + 7;
	uint64_t end = sisy_now_ms() + 10000;
	while (thread_nice("sisy-lsm-bg") != want && sisy_now_ms() < end)
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	assert_int_equal(thread_nice("sisy-lsm-bg"), want);
	assert_int_equal(getpriority(PRIO_PROCESS, 0), base);
	assert_int_equal(sisy_lsm_put(db, "k", 1, "v", 1, 0), SISY_OK);
	assert_int_equal(sisy_lsm_flush(db), SISY_OK);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_put_get_delete_reopen, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_recovery_table_keeps_newest_versions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_options, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bg_nice, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batches_are_atomic, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_flush_and_compaction, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(
		test_readers_during_writes_and_compactions, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_statistics, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wal_off_close_flushes, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_group_commit_one_sync_for_many,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_writers, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_writers_slow_down_then_wait,
					    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
