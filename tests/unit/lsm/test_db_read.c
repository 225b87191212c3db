/* Tests sisyd/lsm/db_read.c's memory-only lookup, sisy_lsm_get_cached: it
 * answers what sisy_lsm_get answers wherever that needs no file access
 * (memtables, open tables' Bloom filters and key ranges, blocks in the block
 * cache, mapped blocks already used), and SISY_E_AGAIN everywhere else —
 * without opening a file or reading a byte of one (the engine's read
 * counters and a counting file system show it), and never with an older
 * value than sisy_lsm_get would give. On the real disk (mappings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lsm.h"
#include "lsm_test_util.h"
#include "wrapfs.h"

#define NKEYS 3000

typedef struct fx {
	char dir[256];
	wrapfs w;
	sisy_lsm_options o;
	sisy_lsm *db;
} fx;

static int setup(void **state)
{
	fx *x = calloc(1, sizeof *x);
	tu_mkdtemp(x->dir, sizeof x->dir, "dbread");
	wrapfs_init(&x->w, sisy_fs_posix(), false);
	sisy_lsm_options_init(&x->o);
	x->o.dir = x->dir;
	x->o.fs = &x->w.base;
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	if (x->db)
		assert_int_equal(sisy_lsm_close(x->db), SISY_OK);
	tu_rmdir(x->dir);
	free(x);
	return 0;
}

static void db_open(fx *x)
{
	if (x->db)
		assert_int_equal(sisy_lsm_close(x->db), SISY_OK);
	x->db = NULL;
	if (sisy_lsm_open(&x->o, &x->db) != SISY_OK)
		fail_msg("open: %s", sisy_errmsg());
}

static void put(fx *x, uint64_t n, const char *tag)
{
	char k[32], v[64];
	size_t kl = tu_key(k, sizeof k, n);
	int vl = snprintf(v, sizeof v, "%s-value-of-%" PRIu64, tag, n);
	assert_int_equal(sisy_lsm_put(x->db, k, kl, v, (size_t)vl, 0), SISY_OK);
}

static void fill(fx *x, const char *tag)
{
	for (uint64_t n = 0; n < NKEYS; n++)
		put(x, n, tag);
}

/* sisy_lsm_get_cached of key n: its code; on SISY_OK the value must be
 * tag's. */
static sisy_err cached(fx *x, uint64_t n, const char *tag)
{
	char k[32], want[64];
	size_t kl = tu_key(k, sizeof k, n);
	int wl = snprintf(want, sizeof want, "%s-value-of-%" PRIu64, tag, n);
	sisy_buf v = {0};
	sisy_err rc = sisy_lsm_get_cached(x->db, NULL, k, kl, &v);
	if (rc == SISY_OK) {
		assert_int_equal(v.len, (size_t)wl);
		assert_memory_equal(v.data, want, (size_t)wl);
	}
	sisy_buf_free(&v);
	return rc;
}

static void get_ok(fx *x, uint64_t n, const char *tag)
{
	char k[32], want[64];
	size_t kl = tu_key(k, sizeof k, n);
	int wl = snprintf(want, sizeof want, "%s-value-of-%" PRIu64, tag, n);
	sisy_buf v = {0};
	assert_int_equal(sisy_lsm_get(x->db, NULL, k, kl, &v), SISY_OK);
	assert_int_equal(v.len, (size_t)wl);
	assert_memory_equal(v.data, want, (size_t)wl);
	sisy_buf_free(&v);
}

/* What a memory-only lookup must not change: file bytes read, opens. */
typedef struct io_mark {
	uint64_t bytes_read, cache_misses;
	int opens;
} io_mark;

static io_mark mark(fx *x)
{
	sisy_lsm_stats s;
	sisy_lsm_get_stats(x->db, &s);
	return (io_mark){s.bytes_read, s.cache_misses,
			 atomic_load(&x->w.opens)};
}

static void assert_no_io_since(fx *x, io_mark m)
{
	io_mark now = mark(x);
	assert_int_equal(now.bytes_read, m.bytes_read);
	assert_int_equal(now.cache_misses, m.cache_misses);
	assert_int_equal(now.opens, m.opens);
}

static void test_memtable(void **state)
{
	fx *x = *state;
	db_open(x);
	fill(x, "a");
	char k[32];
	size_t kl = tu_key(k, sizeof k, 7);
	assert_int_equal(sisy_lsm_delete(x->db, k, kl, 0), SISY_OK);
	io_mark m = mark(x);
	for (uint64_t n = 0; n < NKEYS; n += 97)
		assert_int_equal(cached(x, n, "a"),
				 n == 7 ? SISY_E_NOTFOUND : SISY_OK);
	assert_int_equal(cached(x, NKEYS + 5, "a"), SISY_E_NOTFOUND);
	assert_no_io_since(x, m);
}

/* Tables read with pread: a block serves memory-only lookups once a normal
 * read has put it into the block cache, and never without a cache. */
static void test_pread_path(void **state)
{
	fx *x = *state;
	x->o.mmap_bytes = 0;
	db_open(x);
	fill(x, "a");
	assert_int_equal(sisy_lsm_flush(x->db), SISY_OK);
	db_open(x); /* an empty table cache and block cache */
	io_mark m = mark(x);
	assert_int_equal(cached(x, 10, "a"), SISY_E_AGAIN); /* not open */
	assert_no_io_since(x, m);
	get_ok(x, 10, "a"); /* opens the table, reads the block */
	m = mark(x);
	assert_int_equal(cached(x, 10, "a"), SISY_OK);
	assert_int_equal(cached(x, 11, "a"), SISY_OK); /* same block */
	/* Past the table's last key: decided by its key range. */
	assert_int_equal(cached(x, NKEYS + 5, "a"), SISY_E_NOTFOUND);
	assert_no_io_since(x, m);
	/* A block far away was never read. */
	assert_int_equal(cached(x, NKEYS - 10, "a"), SISY_E_AGAIN);
	assert_no_io_since(x, m);
	get_ok(x, NKEYS - 10, "a");
	assert_int_equal(cached(x, NKEYS - 10, "a"), SISY_OK);

	x->o.block_cache_bytes = 0;
	db_open(x);
	get_ok(x, 10, "a");
	m = mark(x);
	assert_int_equal(cached(x, 10, "a"), SISY_E_AGAIN);
	assert_no_io_since(x, m);
}

/* Mapped tables: a block counts as memory once used since the table
 * opened; before, its page may still be on the disk. */
static void test_mapped(void **state)
{
	fx *x = *state;
	db_open(x);
	fill(x, "a");
	assert_int_equal(sisy_lsm_flush(x->db), SISY_OK);
	db_open(x);
	get_ok(x, 20, "a"); /* opens (and maps) the table */
	assert_true(atomic_load(&x->w.mapped) > 0);
	io_mark m = mark(x);
	assert_int_equal(cached(x, 20, "a"), SISY_OK);
	assert_int_equal(cached(x, NKEYS - 20, "a"), SISY_E_AGAIN);
	assert_no_io_since(x, m);
	get_ok(x, NKEYS - 20, "a");
	assert_int_equal(cached(x, NKEYS - 20, "a"), SISY_OK);
}

/* A newer table that cannot be read from memory hides an older one that
 * could: the answer is AGAIN (or the newer value), never the older value. */
static void test_never_older(void **state)
{
	fx *x = *state;
	x->o.mmap_bytes = 0;
	db_open(x);
	fill(x, "old");
	assert_int_equal(sisy_lsm_flush(x->db), SISY_OK);
	db_open(x);
	for (uint64_t n = 0; n < NKEYS; n++)
		get_ok(x, n, "old"); /* every block of the old table cached */
	for (uint64_t n = 0; n < NKEYS; n += 2)
		put(x, n, "new");
	assert_int_equal(sisy_lsm_flush(x->db), SISY_OK);
	size_t again = 0;
	for (uint64_t n = 0; n < NKEYS; n++) {
		sisy_err rc = cached(x, n, n % 2 ? "old" : "new");
		assert_true(rc == SISY_OK || rc == SISY_E_AGAIN);
		again += rc == SISY_E_AGAIN;
	}
	/* The old keys' lookups pass the new table by its Bloom filter
	 * (mostly), the new keys' need its blocks. */
	assert_true(again >= NKEYS / 2);
	for (uint64_t n = 0; n < NKEYS; n++)
		get_ok(x, n, n % 2 ? "old" : "new");
	for (uint64_t n = 0; n < NKEYS; n++)
		assert_int_equal(cached(x, n, n % 2 ? "old" : "new"), SISY_OK);
}

/* L0/L1 tables stay open for lookups while a version lists them (pinned by
 * their file metas, version.c); once compaction retires them and no
 * version lists them, they close: no file stays open for good, and every
 * lookup answers right before and after. */
static void test_pinned_tables_close_when_retired(void **state)
{
	fx *x = *state;
	int before = atomic_load(&x->w.open_files);
	db_open(x);
	fill(x, "a");
	assert_int_equal(sisy_lsm_flush(x->db), SISY_OK);
	for (uint64_t n = 0; n < NKEYS; n += 2)
		put(x, n, "b");
	assert_int_equal(sisy_lsm_flush(x->db), SISY_OK);
	for (uint64_t n = 0; n < NKEYS; n++)
		get_ok(x, n, n % 2 ? "a" : "b"); /* pins both L0 tables */
	int with_two = atomic_load(&x->w.open_files);
	/* pinned: served from memory with no table-cache open */
	io_mark m = mark(x);
	assert_int_equal(cached(x, 7, "a"), SISY_OK);
	assert_int_equal(cached(x, 8, "b"), SISY_OK);
	assert_no_io_since(x, m);
	assert_int_equal(sisy_lsm_compact_all(x->db), SISY_OK);
	for (uint64_t n = 0; n < NKEYS; n++)
		get_ok(x, n, n % 2 ? "a" : "b");
	/* the two L0 tables went: closed, though they were pinned; the
	 * table(s) that replaced them are open at most */
	sisy_lsm_stats st;
	sisy_lsm_get_stats(x->db, &st);
	assert_int_equal(st.files_per_level[0], 0);
	int tables = 0;
	for (int l = 0; l < 7; l++)
		tables += st.files_per_level[l];
	assert_true(atomic_load(&x->w.open_files) <= with_two - 2 + tables);
	assert_int_equal(sisy_lsm_close(x->db), SISY_OK);
	x->db = NULL;
	assert_int_equal(atomic_load(&x->w.open_files), before);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_memtable),
	    T(test_pread_path),
	    T(test_mapped),
	    T(test_never_older),
	    T(test_pinned_tables_close_when_retired),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
