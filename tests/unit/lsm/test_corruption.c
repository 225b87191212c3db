/* Corruption tests: flipped bits in an SSTable, in the middle of the WAL,
 * in the MANIFEST and in CURRENT, and a table that went missing, each give
 * a clear SISY_E_CORRUPT naming the file -- never a crash, never a wrong
 * value, never "not found" for a key that exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_fault.h"
#include "gate_fs.h"
#include "lsm.h"
#include "lsm_test_util.h"

#define DBDIR "/db"
enum { NKEYS = 600 };

typedef struct fx {
	sisy_fs_fault *ff;
	sisy_lsm *db;
} fx;

static sisy_err open_db(fx *f)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = DBDIR;
	o.fs = sisy_fs_fault_fs(f->ff);
	o.block_size = 512;
	o.block_cache_bytes = 0;
	f->db = NULL;
	return sisy_lsm_open(&o, &f->db);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	f->ff = sisy_fs_fault_new(9);
	assert_int_equal(open_db(f), SISY_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	if (f->db != NULL)
		(void)sisy_lsm_close(f->db);
	sisy_fs_fault_free(f->ff);
	free(f);
	return 0;
}

static size_t kv(char *k, char *v, int i)
{
	tu_key(k, 32, (uint64_t)i);
	return (size_t)snprintf(v, 100, "value-%d-%040d", i, i * 7);
}

static void fill(fx *f, int flags)
{
	for (int i = 0; i < NKEYS; i++) {
		char k[32], v[100];
		size_t vl = kv(k, v, i);
		assert_int_equal(
		    sisy_lsm_put(f->db, k, strlen(k), v, vl, flags), SISY_OK);
	}
}

typedef struct find_ctx {
	const char *suffix;
	char name[64];
} find_ctx;

static void find_fn(void *arg, const char *name)
{
	find_ctx *c = arg;
	size_t n = strlen(name), s = strlen(c->suffix);
	if (n > s && strcmp(name + n - s, c->suffix) == 0)
		snprintf(c->name, sizeof c->name, "%s", name);
	if (strncmp(name, c->suffix, s) == 0) /* prefix (MANIFEST-) */
		snprintf(c->name, sizeof c->name, "%s", name);
}

/* The path of (one) file whose name ends with (or starts with) suffix. */
static void find_file(fx *f, const char *suffix, char *out, size_t cap)
{
	find_ctx c = {.suffix = suffix};
	assert_int_equal(
	    sisy_fs_list(sisy_fs_fault_fs(f->ff), DBDIR, find_fn, &c), SISY_OK);
	assert_true(c.name[0] != '\0');
	snprintf(out, cap, "%s/%s", DBDIR, c.name);
}

/* Reads every key: the right value or SISY_E_CORRUPT naming a table.
 * Returns how many reads reported corruption. */
static int read_all_checked(fx *f)
{
	int corrupt = 0;
	for (int i = 0; i < NKEYS; i++) {
		char k[32], v[100];
		size_t vl = kv(k, v, i);
		sisy_buf b = {0};
		sisy_err rc = sisy_lsm_get(f->db, NULL, k, strlen(k), &b);
		if (rc == SISY_E_CORRUPT) {
			if (strstr(sisy_errmsg(), ".sst") == NULL)
				fail_msg("corruption reported without the "
					 "file: %s",
					 sisy_errmsg());
			corrupt++;
		} else {
			if (rc != SISY_OK)
				fail_msg("key %d: %s (%s): a wrong answer", i,
					 sisy_errname(rc), sisy_errmsg());
			assert_int_equal(b.len, vl);
			assert_memory_equal(b.data, v, vl);
		}
		sisy_buf_free(&b);
	}
	/* a scan returns correct entries until it stops with the error */
	sisy_lsm_iter *it = sisy_lsm_iter_new(f->db, NULL);
	int i = 0;
	for (sisy_lsm_iter_seek_first(it); sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it), i++) {
		char k[32], v[100];
		size_t vl = kv(k, v, i), gl, gvl;
		const uint8_t *g = sisy_lsm_iter_key(it, &gl);
		assert_int_equal(gl, strlen(k));
		assert_memory_equal(g, k, gl);
		const uint8_t *gv = sisy_lsm_iter_value(it, &gvl);
		assert_int_equal(gvl, vl);
		assert_memory_equal(gv, v, vl);
	}
	sisy_err st = sisy_lsm_iter_status(it);
	if (st == SISY_OK)
		assert_int_equal(i, NKEYS);
	else
		assert_int_equal(st, SISY_E_CORRUPT);
	sisy_lsm_iter_free(it);
	return corrupt;
}

static void test_sstable_bit_flips(void **state)
{
	fx *f = *state;
	fill(f, 0);
	assert_int_equal(sisy_lsm_compact_all(f->db), SISY_OK);
	assert_int_equal(sisy_lsm_close(f->db), SISY_OK);
	f->db = NULL;
	char path[128];
	find_file(f, ".sst", path, sizeof path);
	uint64_t size;
	assert_int_equal(
	    sisy_fs_file_size(sisy_fs_fault_fs(f->ff), path, &size), SISY_OK);
	int flips = 0, detected = 0, open_refused = 0;
	for (uint64_t off = 0; off < size; off += off + 80 < size ? 53 : 1) {
		assert_int_equal(sisy_fs_fault_corrupt(f->ff, path, off, 0x20),
				 SISY_OK);
		sisy_err rc = open_db(f);
		if (rc != SISY_OK) {
			assert_int_equal(rc, SISY_E_CORRUPT);
			open_refused++;
		} else {
			detected += read_all_checked(f) > 0;
			assert_int_equal(sisy_lsm_close(f->db), SISY_OK);
		}
		f->db = NULL;
		assert_int_equal(sisy_fs_fault_corrupt(f->ff, path, off, 0x20),
				 SISY_OK);
		flips++;
	}
	fprintf(stderr,
		"  %d flips in a %llu-byte table: %d reported on read, %d at "
		"open, none answered wrong\n",
		flips, (unsigned long long)size, detected, open_refused);
	assert_true(detected + open_refused > flips / 2);
	/* intact again: all good */
	assert_int_equal(open_db(f), SISY_OK);
	assert_int_equal(read_all_checked(f), 0);

	/* a compaction meeting the damage stops the engine, loudly; reads
	 * go on */
	assert_int_equal(sisy_lsm_close(f->db), SISY_OK);
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, path, 100, 0x01),
			 SISY_OK);
	assert_int_equal(open_db(f), SISY_OK);
	for (int i = 0; i < NKEYS; i += 2) {
		char k[32];
		tu_key(k, sizeof k, (uint64_t)i);
		assert_int_equal(sisy_lsm_put(f->db, k, strlen(k), "x", 1, 0),
				 SISY_OK);
	}
	sisy_err rc = sisy_lsm_compact_all(f->db);
	assert_true(rc == SISY_E_CORRUPT || rc == SISY_E_FAILED);
	assert_non_null(sisy_lsm_failed(f->db));
	assert_non_null(strstr(sisy_lsm_failed(f->db), ".sst"));
	char k[32];
	tu_key(k, sizeof k, 0);
	sisy_buf b = {0};
	assert_int_equal(sisy_lsm_get(f->db, NULL, k, strlen(k), &b), SISY_OK);
	assert_memory_equal(b.data, "x", 1);
	sisy_buf_free(&b);
}

static void test_missing_table(void **state)
{
	fx *f = *state;
	fill(f, 0);
	assert_int_equal(sisy_lsm_flush(f->db), SISY_OK);
	assert_int_equal(sisy_lsm_close(f->db), SISY_OK);
	char path[128];
	find_file(f, ".sst", path, sizeof path);
	assert_int_equal(sisy_fs_unlink(sisy_fs_fault_fs(f->ff), path),
			 SISY_OK);
	assert_int_equal(open_db(f), SISY_OK);
	char k[32];
	tu_key(k, sizeof k, 5);
	sisy_buf b = {0};
	assert_int_equal(sisy_lsm_get(f->db, NULL, k, strlen(k), &b),
			 SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), ".sst"));
	sisy_lsm_iter *it = sisy_lsm_iter_new(f->db, NULL);
	sisy_lsm_iter_seek_first(it);
	assert_false(sisy_lsm_iter_valid(it));
	assert_int_equal(sisy_lsm_iter_status(it), SISY_E_CORRUPT);
	sisy_lsm_iter_free(it);
}

static void test_wal_corruption_in_the_middle(void **state)
{
	fx *f = *state;
	fill(f, SISY_LSM_SYNC); /* 600 records in the WAL, no table */
	assert_int_equal(sisy_lsm_close(f->db), SISY_OK); /* WAL stays */
	f->db = NULL;
	char path[128];
	find_file(f, ".log", path, sizeof path);
	uint64_t size;
	assert_int_equal(
	    sisy_fs_file_size(sisy_fs_fault_fs(f->ff), path, &size), SISY_OK);
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, path, size / 2, 0x04),
			 SISY_OK);
	for (int attempt = 0; attempt < 2; attempt++) {
		/* refused, with file and offset -- and nothing changed, so a
		 * second attempt says the same */
		assert_int_equal(open_db(f), SISY_E_CORRUPT);
		assert_null(f->db);
		assert_non_null(strstr(sisy_errmsg(), ".log"));
		assert_non_null(strstr(sisy_errmsg(), "offset"));
	}
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, path, size / 2, 0x04),
			 SISY_OK);
	/* damage in the very last record reads as a torn tail: that write
	 * is dropped (indistinguishable from one cut by a crash) */
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, path, size - 3, 0x04),
			 SISY_OK);
	assert_int_equal(open_db(f), SISY_OK);
	for (int i = 0; i < NKEYS; i++) {
		char k[32], v[100];
		size_t vl = kv(k, v, i);
		sisy_buf b = {0};
		sisy_err rc = sisy_lsm_get(f->db, NULL, k, strlen(k), &b);
		assert_int_equal(rc, i < NKEYS - 1 ? SISY_OK : SISY_E_NOTFOUND);
		if (rc == SISY_OK)
			assert_memory_equal(b.data, v, vl);
		sisy_buf_free(&b);
	}
}

static void test_manifest_and_current_corruption(void **state)
{
	fx *f = *state;
	fill(f, 0);
	assert_int_equal(sisy_lsm_flush(f->db), SISY_OK);
	assert_int_equal(sisy_lsm_close(f->db), SISY_OK);
	f->db = NULL;
	char man[128];
	find_file(f, "MANIFEST-", man, sizeof man);
	/* inside the snapshot record, the MANIFEST's first */
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, man, 40, 0x10), SISY_OK);
	assert_int_equal(open_db(f), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "MANIFEST"));
	assert_non_null(strstr(sisy_errmsg(), "offset"));
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, man, 40, 0x10), SISY_OK);
	/* its header */
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, man, 2, 0x10), SISY_OK);
	assert_int_equal(open_db(f), SISY_E_CORRUPT);
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, man, 2, 0x10), SISY_OK);
	/* CURRENT */
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, DBDIR "/CURRENT", 16, 1),
			 SISY_OK);
	assert_int_equal(open_db(f), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "CURRENT"));
	assert_int_equal(sisy_fs_fault_corrupt(f->ff, DBDIR "/CURRENT", 16, 1),
			 SISY_OK);
	/* all undone: it opens with everything */
	assert_int_equal(open_db(f), SISY_OK);
	assert_int_equal(read_all_checked(f), 0);
	/* CURRENT lost while tables exist: refuse to start over */
	assert_int_equal(sisy_lsm_close(f->db), SISY_OK);
	f->db = NULL;
	assert_int_equal(
	    sisy_fs_unlink(sisy_fs_fault_fs(f->ff), DBDIR "/CURRENT"), SISY_OK);
	assert_int_equal(open_db(f), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "CURRENT"));
}

typedef struct two_logs {
	sisy_fs_fault *ff;
	gate_fs gate;
	sisy_lsm *db;
	char old_log[128]; /* imm's WAL: the lower-numbered log */
} two_logs;

static void lowest_log(void *arg, const char *name)
{
	two_logs *t = arg;
	size_t n = strlen(name);
	if (n > 4 && strcmp(name + n - 4, ".log") == 0) {
		char p[128];
		snprintf(p, sizeof p, "%s/%s", DBDIR, name);
		if (t->old_log[0] == '\0' || strcmp(p, t->old_log) < 0)
			snprintf(t->old_log, sizeof t->old_log, "%s", p);
	}
}

/* Leaves a crashed disk with two WALs: the old one (a full memtable whose
 * flush was held) and the new one, which got one more write, synced or
 * not. */
static void crash_with_two_logs(two_logs *t, bool sync_last)
{
	t->ff = sisy_fs_fault_new(21);
	gate_init(&t->gate, sisy_fs_fault_fs(t->ff));
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = DBDIR;
	o.fs = &t->gate.base;
	o.memtable_bytes = 64 << 10;
	assert_int_equal(sisy_lsm_open(&o, &t->db), SISY_OK);
	gate_arm(&t->gate, GATE_SYNC, ".sst"); /* hold the flush */
	for (int i = 0; i < 1000; i++) {
		char k[32], v[100];
		size_t vl = kv(k, v, i);
		assert_int_equal(sisy_lsm_put(t->db, k, strlen(k), v, vl, 0),
				 SISY_OK);
	}
	assert_true(gate_wait_parked(&t->gate, 1));
	assert_int_equal(sisy_lsm_put(t->db, "last", 4, "x", 1,
				      sync_last ? SISY_LSM_SYNC : 0),
			 SISY_OK);
	sisy_fs_fault_crash(t->ff);
	gate_open(&t->gate);
	(void)sisy_lsm_close(t->db);
	t->db = NULL;
	sisy_fs_fault_restart(t->ff);
	assert_int_equal(
	    sisy_fs_list(sisy_fs_fault_fs(t->ff), DBDIR, lowest_log, t),
	    SISY_OK);
	assert_true(t->old_log[0] != '\0');
}

static sisy_err reopen_two(two_logs *t)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = DBDIR;
	o.fs = sisy_fs_fault_fs(t->ff);
	t->db = NULL;
	return sisy_lsm_open(&o, &t->db);
}

static void test_damage_in_a_synced_earlier_log(void **state)
{
	(void)state;
	/* the synced write synced the old log and sealed it in the new one:
	 * damage at the old log's end is corruption, not a torn write -- it
	 * must not silently drop the new log's synced write */
	two_logs t = {0};
	crash_with_two_logs(&t, true);
	uint64_t size;
	assert_int_equal(
	    sisy_fs_file_size(sisy_fs_fault_fs(t.ff), t.old_log, &size),
	    SISY_OK);
	assert_int_equal(sisy_fs_fault_corrupt(t.ff, t.old_log, size - 3, 0x08),
			 SISY_OK);
	assert_int_equal(reopen_two(&t), SISY_E_CORRUPT);
	assert_non_null(strstr(sisy_errmsg(), "complete"));
	assert_int_equal(sisy_fs_fault_corrupt(t.ff, t.old_log, size - 3, 0x08),
			 SISY_OK);
	assert_int_equal(reopen_two(&t), SISY_OK);
	sisy_buf b = {0};
	assert_int_equal(sisy_lsm_get(t.db, NULL, "last", 4, &b), SISY_OK);
	char k[32];
	tu_key(k, sizeof k, 999);
	assert_int_equal(sisy_lsm_get(t.db, NULL, k, strlen(k), &b), SISY_OK);
	sisy_buf_free(&b);
	assert_int_equal(sisy_lsm_close(t.db), SISY_OK);
	gate_destroy(&t.gate);
	sisy_fs_fault_free(t.ff);
}

static void test_unsynced_earlier_log_torn_is_a_crash(void **state)
{
	(void)state;
	/* nothing was synced after the switch: a torn old log means the
	 * crash came first; the newer log is dropped and the engine opens
	 * to a prefix of the writes */
	two_logs t = {0};
	crash_with_two_logs(&t, false);
	assert_int_equal(reopen_two(&t), SISY_OK);
	sisy_buf b = {0};
	sisy_err last = sisy_lsm_get(t.db, NULL, "last", 4, &b);
	assert_true(last == SISY_OK || last == SISY_E_NOTFOUND);
	int present = 0;
	for (int i = 0; i < 1000; i++) {
		char k[32], v[100];
		size_t vl = kv(k, v, i);
		sisy_err rc = sisy_lsm_get(t.db, NULL, k, strlen(k), &b);
		if (rc == SISY_OK) {
			assert_int_equal(i, present); /* a prefix */
			assert_memory_equal(b.data, v, vl);
			present++;
		} else {
			assert_int_equal(rc, SISY_E_NOTFOUND);
		}
	}
	if (last == SISY_OK)
		assert_int_equal(present, 1000);
	sisy_buf_free(&b);
	assert_int_equal(sisy_lsm_close(t.db), SISY_OK);
	gate_destroy(&t.gate);
	sisy_fs_fault_free(t.ff);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
	    T(test_sstable_bit_flips),
	    T(test_missing_table),
	    T(test_wal_corruption_in_the_middle),
	    T(test_manifest_and_current_corruption),
	    cmocka_unit_test(test_damage_in_a_synced_earlier_log),
	    cmocka_unit_test(test_unsynced_earlier_log_torn_is_a_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
