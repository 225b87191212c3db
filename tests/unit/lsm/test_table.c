/* Tests sisyd/lsm/table_builder.c and table_reader.c: round trips through
 * every read path (file mapping or pread; with or without a block cache;
 * raw or zlib blocks), Bloom filters, damaged tables — a flipped byte
 * anywhere must give SISY_E_CORRUPT or the right answer, never a crash or a
 * wrong answer — and the map budget (a table maps only when its file fits;
 * racing reservations never exceed the limit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs_fault.h"
#include "hash.h"
#include "table_fixture.h"
#include "wrapfs.h"

/* How a test reads its table. */
typedef struct mode {
	bool map;	  /* false: the reader must use pread */
	bool cache;	  /* a block cache */
	bool compression; /* zlib blocks */
} mode;

static const mode modes[] = {
    {true, false, false}, {true, true, false},	 {true, true, true},
    {false, true, false}, {false, false, false}, {false, true, true},
    {false, false, true},
};

typedef struct env {
	sisy_fs_fault *ff;
	wrapfs w;     /* over ff; refuses maps when !mode.map */
	lsm_cache *c; /* NULL without cache */
	lsm_counters counters;
} env;

static void env_init(env *e, const mode *m)
{
	memset(e, 0, sizeof *e);
	e->ff = sisy_fs_fault_new(1);
	wrapfs_init(&e->w, sisy_fs_fault_fs(e->ff), !m->map);
	assert_int_equal(sisy_fs_mkdir(&e->w.base, "/db"), SISY_OK);
	e->c = m->cache ? lsm_cache_new(1 << 20, 4) : NULL;
}

static void env_free(env *e)
{
	lsm_cache_free(e->c);
	sisy_fs_fault_free(e->ff);
}

static lsm_table *open_table(env *e, const char *path, uint64_t size,
			     bool verify)
{
	sisy_file *f;
	assert_int_equal(sisy_fs_open(&e->w.base, path, SISY_O_READ, &f),
			 SISY_OK);
	lsm_table *t = NULL;
	sisy_err rc =
	    lsm_table_open(f, size, path, e->c, NULL, &e->counters, verify, &t);
	if (rc != SISY_OK)
		fail_msg("open %s: %s", path, sisy_errmsg());
	return t;
}

static lsm_table_options opts(bool compression, size_t block_size)
{
	lsm_table_options o;
	lsm_table_options_init(&o);
	o.compression = compression;
	o.block_size = block_size;
	return o;
}

/* Every lookup of every user key, present and absent, newest and at older
 * sequence numbers, must give the reference answer. */
static void check_gets(lsm_table *t, const tf_set *s)
{
	sisy_buf lk = {0};
	tf_got g = {0};
	for (int num = -1; num <= 2 * s->users; num++) {
		uint64_t seqs[] = {LSM_MAX_SEQ,
				   100 + (uint64_t)num / 2 * 10 + 2,
				   100 + (uint64_t)num / 2 * 10 + 1, 5};
		for (size_t j = 0; j < sizeof seqs / sizeof *seqs; j++) {
			if (num < 0 && j > 0)
				break;
			sisy_slice lookup =
			    tf_lookup(&lk, s, num < 0 ? 0 : num, seqs[j]);
			int want = tf_expect_get(s, lookup);
			bool found = true;
			g.calls = 0;
			assert_int_equal(
			    lsm_table_get(t, lookup, tf_got_fn, &g, &found),
			    SISY_OK);
			assert_int_equal(found, want >= 0);
			assert_int_equal(g.calls, want >= 0 ? 1 : 0);
			if (want >= 0) {
				assert_true(sisy_slice_eq(
				    sisy_buf_slice(&g.key), tf_key(s, want)));
				assert_true(sisy_slice_eq(
				    sisy_buf_slice(&g.val), tf_val(s, want)));
			}
		}
	}
	sisy_buf_free(&lk);
	tf_got_free(&g);
}

static void check_scan(lsm_iter *it, const tf_set *s)
{
	lsm_iter_seek_first(it);
	for (int i = 0; i < s->n; i++) {
		assert_true(lsm_iter_valid(it));
		assert_true(sisy_slice_eq(lsm_iter_key(it), tf_key(s, i)));
		assert_true(sisy_slice_eq(lsm_iter_value(it), tf_val(s, i)));
		lsm_iter_next(it);
	}
	assert_false(lsm_iter_valid(it));
	assert_int_equal(lsm_iter_status(it), SISY_OK);
}

static void check_seeks(lsm_iter *it, const tf_set *s, uint64_t seed)
{
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	sisy_buf lk = {0};
	for (int i = 0; i < 300; i++) {
		int num =
		    (int)sisy_rand_below(&r, (uint64_t)(2 * s->users + 2));
		uint64_t seq = sisy_rand_below(&r, 3) == 0
				   ? LSM_MAX_SEQ
				   : 100 + sisy_rand_below(
					       &r, (uint64_t)s->users * 10 + 1);
		sisy_slice target = tf_lookup(&lk, s, num, seq);
		int want = tf_lower_bound(s, target);
		lsm_iter_seek(it, target);
		/* A few steps forward from there, too. */
		for (int step = 0; step < 3; step++, want++) {
			if (want >= s->n) {
				assert_false(lsm_iter_valid(it));
				break;
			}
			assert_true(lsm_iter_valid(it));
			assert_true(
			    sisy_slice_eq(lsm_iter_key(it), tf_key(s, want)));
			assert_true(
			    sisy_slice_eq(lsm_iter_value(it), tf_val(s, want)));
			lsm_iter_next(it);
		}
	}
	assert_int_equal(lsm_iter_status(it), SISY_OK);
	sisy_buf_free(&lk);
}

static void round_trip(const mode *m, const tf_set *s, size_t block_size)
{
	env e;
	env_init(&e, m);
	lsm_table_options o = opts(m->compression, block_size);
	uint64_t size;
	assert_int_equal(tf_build(&e.w.base, "/db/000001.sst", &o, s, &size),
			 SISY_OK);
	lsm_table *t = open_table(&e, "/db/000001.sst", size, true);
	check_gets(t, s);
	lsm_iter *it = lsm_table_iter_new(t, true);
	check_scan(it, s);
	check_seeks(it, s, 99);
	lsm_iter_destroy(it);
	it = lsm_table_iter_new(t, false);
	check_scan(it, s);
	lsm_iter_destroy(it);
	assert_int_equal(lsm_table_verify(t), SISY_OK);
	lsm_table_close(t);
	env_free(&e);
}

static void test_round_trips_every_read_path(void **state)
{
	(void)state;
	tf_set s;
	tf_set_make(&s, 2000, 16, 120, true, 1);
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++) {
		round_trip(&modes[i], &s, 4096);
		round_trip(&modes[i], &s, 300); /* many small blocks */
	}
	tf_set_free(&s);
}

static void test_big_values_and_long_keys(void **state)
{
	(void)state;
	tf_set s;
	/* Values up to 20 KiB (blocks hold one entry past block_size) and
	 * 300-byte keys (past the cursor's inline key buffer). */
	tf_set_make(&s, 60, 300, 20000, true, 2);
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
		round_trip(&modes[i], &s, 4096);
	tf_set_free(&s);
}

static void test_single_and_empty_tables(void **state)
{
	(void)state;
	tf_set s;
	tf_set_make(&s, 1, 16, 10, false, 3);
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
		round_trip(&modes[i], &s, 4096);
	tf_set_free(&s);
	tf_set_make(&s, 0, 16, 10, false, 3);
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
		round_trip(&modes[i], &s, 4096);
	tf_set_free(&s);
}

static void test_real_file_mapping(void **state)
{
	(void)state;
	char dir[] = "/tmp/sisy-test-table-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[64];
	snprintf(path, sizeof path, "%s/000001.sst", dir);
	tf_set s;
	tf_set_make(&s, 3000, 16, 100, true, 4);
	lsm_table_options o = opts(false, 4096);
	uint64_t size;
	sisy_fs *fs = sisy_fs_posix();
	assert_int_equal(tf_build(fs, path, &o, &s, &size), SISY_OK);
	sisy_file *f;
	assert_int_equal(sisy_fs_open(fs, path, SISY_O_READ, &f), SISY_OK);
	lsm_counters c = {0};
	lsm_cache *cache = lsm_cache_new(1 << 20, 4);
	lsm_table *t;
	assert_int_equal(
	    lsm_table_open(f, size, path, cache, NULL, &c, true, &t), SISY_OK);
	check_gets(t, &s);
	/* Raw blocks are read in place from the mapping: the block cache is
	 * not used at all. */
	assert_int_equal(LSM_READ(&c, cache_misses), 0);
	assert_int_equal(lsm_cache_usage(cache), 0);
	lsm_iter *it = lsm_table_iter_new(t, true);
	check_scan(it, &s);
	lsm_iter_destroy(it);
	lsm_table_close(t);
	lsm_cache_free(cache);
	tf_set_free(&s);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_bloom_filter_skips_absent_keys(void **state)
{
	(void)state;
	mode m = {true, false, false};
	tf_set s;
	tf_set_make(&s, 5000, 16, 50, false, 5);
	for (int bits = 0; bits <= 10; bits += 10) {
		env e;
		env_init(&e, &m);
		lsm_table_options o = opts(false, 4096);
		o.bloom_bits_per_key = bits;
		uint64_t size;
		assert_int_equal(
		    tf_build(&e.w.base, "/db/000002.sst", &o, &s, &size),
		    SISY_OK);
		lsm_table *t = open_table(&e, "/db/000002.sst", size, true);
		sisy_buf lk = {0};
		tf_got g = {0};
		bool found;
		for (int num = 1; num < 2 * s.users; num += 2) {
			assert_int_equal(
			    lsm_table_get(t,
					  tf_lookup(&lk, &s, num, LSM_MAX_SEQ),
					  tf_got_fn, &g, &found),
			    SISY_OK);
			assert_false(found);
		}
		uint64_t neg = LSM_READ(&e.counters, bloom_negatives);
		uint64_t pos = LSM_READ(&e.counters, bloom_positives);
		if (bits == 0) {
			assert_int_equal(neg + pos, 0);
		} else {
			/* 5000 absent keys at 10 bits/key: ~0.8% get through.
			 */
			assert_int_equal(neg + pos, 5000);
			assert_true(pos < 5000 * 2 / 100);
		}
		/* Present keys always pass the filter. */
		for (int num = 0; num < 2 * s.users; num += 2) {
			assert_int_equal(
			    lsm_table_get(t,
					  tf_lookup(&lk, &s, num, LSM_MAX_SEQ),
					  tf_got_fn, &g, &found),
			    SISY_OK);
			assert_true(found);
		}
		assert_int_equal(LSM_READ(&e.counters, bloom_negatives), neg);
		sisy_buf_free(&lk);
		tf_got_free(&g);
		lsm_table_close(t);
		env_free(&e);
	}
	tf_set_free(&s);
}

static void test_block_cache_serves_repeat_reads(void **state)
{
	(void)state;
	mode m = {false, true, false};
	env e;
	env_init(&e, &m);
	tf_set s;
	tf_set_make(&s, 500, 16, 100, false, 6);
	lsm_table_options o = opts(false, 4096);
	uint64_t size;
	assert_int_equal(tf_build(&e.w.base, "/db/000003.sst", &o, &s, &size),
			 SISY_OK);
	lsm_table *t = open_table(&e, "/db/000003.sst", size, true);
	sisy_buf lk = {0};
	tf_got g = {0};
	bool found;
	sisy_slice k = tf_lookup(&lk, &s, 0, LSM_MAX_SEQ);
	assert_int_equal(lsm_table_get(t, k, tf_got_fn, &g, &found), SISY_OK);
	assert_int_equal(LSM_READ(&e.counters, cache_misses), 1);
	assert_int_equal(LSM_READ(&e.counters, cache_hits), 0);
	assert_true(lsm_cache_usage(e.c) > 0);
	uint64_t read = LSM_READ(&e.counters, bytes_read);
	assert_int_equal(lsm_table_get(t, k, tf_got_fn, &g, &found), SISY_OK);
	assert_int_equal(LSM_READ(&e.counters, cache_hits), 1);
	assert_int_equal(LSM_READ(&e.counters, bytes_read), read);
	/* A scan that does not fill the cache leaves its usage alone. */
	size_t usage = lsm_cache_usage(e.c);
	lsm_iter *it = lsm_table_iter_new(t, false);
	check_scan(it, &s);
	lsm_iter_destroy(it);
	assert_int_equal(lsm_cache_usage(e.c), usage);
	it = lsm_table_iter_new(t, true);
	check_scan(it, &s);
	lsm_iter_destroy(it);
	assert_true(lsm_cache_usage(e.c) > usage);
	sisy_buf_free(&lk);
	tf_got_free(&g);
	lsm_table_close(t);
	env_free(&e);
	tf_set_free(&s);
}

static void test_compression_kept_only_when_smaller(void **state)
{
	(void)state;
	mode m = {true, false, false};
	env e;
	env_init(&e, &m);
	uint64_t raw, zip;
	tf_set s;
	tf_set_make(&s, 2000, 16, 200, true, 7);
	lsm_table_options o = opts(false, 4096);
	assert_int_equal(tf_build(&e.w.base, "/db/a.sst", &o, &s, &raw),
			 SISY_OK);
	o.compression = true;
	assert_int_equal(tf_build(&e.w.base, "/db/b.sst", &o, &s, &zip),
			 SISY_OK);
	/* Values repeat their first half: about a third smaller at least. */
	assert_true(zip < raw * 3 / 4);
	tf_set_free(&s);
	/* Random values do not compress: every block stays raw, so the file
	 * is byte for byte what it is without compression. */
	tf_set_make(&s, 2000, 16, 200, false, 7);
	o.compression = false;
	assert_int_equal(tf_build(&e.w.base, "/db/c.sst", &o, &s, &raw),
			 SISY_OK);
	o.compression = true;
	assert_int_equal(tf_build(&e.w.base, "/db/d.sst", &o, &s, &zip),
			 SISY_OK);
	assert_int_equal(zip, raw);
	uint8_t *a, *b;
	size_t alen, blen;
	assert_int_equal(
	    sisy_fs_read_all(&e.w.base, "/db/c.sst", 1 << 24, &a, &alen),
	    SISY_OK);
	assert_int_equal(
	    sisy_fs_read_all(&e.w.base, "/db/d.sst", 1 << 24, &b, &blen),
	    SISY_OK);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
	tf_set_free(&s);
	env_free(&e);
}

static void test_builder_reports_size_and_entries(void **state)
{
	(void)state;
	mode m = {true, false, false};
	env e;
	env_init(&e, &m);
	tf_set s;
	tf_set_make(&s, 1000, 16, 100, false, 8);
	sisy_file *f;
	assert_int_equal(sisy_fs_open(&e.w.base, "/db/x.sst",
				      SISY_O_WRITE | SISY_O_CREATE, &f),
			 SISY_OK);
	lsm_table_options o = opts(false, 4096);
	lsm_table_builder *b;
	assert_int_equal(lsm_table_builder_new(&o, f, "x.sst", &e.counters, &b),
			 SISY_OK);
	uint64_t last = 0, bytes = 0;
	for (int i = 0; i < s.n; i++) {
		assert_int_equal(
		    lsm_table_builder_add(b, tf_key(&s, i), tf_val(&s, i)),
		    SISY_OK);
		uint64_t sz = lsm_table_builder_size(b);
		assert_true(sz >= last);
		last = sz;
		bytes += s.e[i].klen + s.e[i].vlen;
		/* the last key, across block boundaries too (the caller's
		 * largest key) */
		sisy_slice lk = lsm_table_builder_last_key(b);
		assert_int_equal(lk.len, tf_key(&s, i).len);
		assert_memory_equal(lk.data, tf_key(&s, i).data, lk.len);
	}
	assert_int_equal(lsm_table_builder_entries(b), s.n);
	/* The estimate tracks the data: within 20% of keys + values. */
	assert_true(last > bytes * 8 / 10 && last < bytes * 12 / 10);
	uint64_t size;
	assert_int_equal(lsm_table_builder_finish(b, &size), SISY_OK);
	assert_true(size >= last);
	uint64_t fsize;
	assert_int_equal(sisy_file_size(f, &fsize), SISY_OK);
	assert_int_equal(fsize, size);
	assert_int_equal(LSM_READ(&e.counters, bytes_written), size);
	assert_int_equal(sisy_file_close(f), SISY_OK);
	tf_set_free(&s);
	env_free(&e);
}

static void test_write_errors_are_reported(void **state)
{
	(void)state;
	mode m = {true, false, false};
	env e;
	env_init(&e, &m);
	tf_set s;
	tf_set_make(&s, 3000, 16, 100, false, 9);
	lsm_table_options o = opts(false, 4096);
	uint64_t size;
	/* Fail the second append: the error must surface (from add or from
	 * finish), and it is sticky. */
	sisy_fs_fault_inject(e.ff, SISY_FAULT_WRITE, "e.sst", 1, UINT64_MAX,
			     SISY_E_NOSPC);
	assert_int_equal(tf_build(&e.w.base, "/db/e.sst", &o, &s, &size),
			 SISY_E_NOSPC);
	sisy_fs_fault_clear_injections(e.ff);
	tf_set_free(&s);
	env_free(&e);
}

/* User keys over a tiny alphabet with 0x00 and 0xff, of many lengths, all
 * behind one shared prefix (some keys are prefixes of others): the index
 * search compares the bytes after the shared prefix as zero-padded
 * integers, which must never change an answer. One entry per block. */
static int cmp_user(const void *a, const void *b)
{
	const sisy_buf *x = a, *y = b;
	return sisy_slice_cmp(sisy_buf_slice(x), sisy_buf_slice(y));
}

static void random_user(sisy_rand *r, sisy_buf *out)
{
	static const uint8_t alpha[] = {0x00, 0x01, 'a', 0xff};
	out->len = 0;
	sisy_buf_append(out, "pp", 2);
	int len = (int)sisy_rand_below(r, 13);
	for (int i = 0; i < len; i++)
		sisy_buf_append_u8(out, alpha[sisy_rand_below(r, 4)]);
}

static void test_index_search_with_odd_keys(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, 13);
	enum { N = 600 };
	sisy_buf users[N];
	memset(users, 0, sizeof users);
	for (int i = 0; i < N; i++)
		random_user(&r, &users[i]);
	qsort(users, N, sizeof *users, cmp_user);
	int n = 0; /* dedupe */
	for (int i = 0; i < N; i++) {
		if (n > 0 && cmp_user(&users[n - 1], &users[i]) == 0)
			continue;
		sisy_buf t = users[n];
		users[n] = users[i];
		users[i] = t;
		n++;
	}
	tf_set s = {calloc((size_t)n, sizeof(tf_entry)), n, 0, 0};
	for (int i = 0; i < n; i++) {
		sisy_buf k = {0};
		lsm_ikey(&k, sisy_buf_slice(&users[i]), 7, LSM_TYPE_VALUE);
		s.e[i].ikey = k.data;
		s.e[i].klen = k.len;
		s.e[i].val = malloc(4);
		sisy_put_u32(s.e[i].val, (uint32_t)i);
		s.e[i].vlen = 4;
	}
	mode m = {true, false, false};
	env e;
	env_init(&e, &m);
	lsm_table_options o = opts(false, 16);
	uint64_t size;
	assert_int_equal(tf_build(&e.w.base, "/db/000012.sst", &o, &s, &size),
			 SISY_OK);
	lsm_table *t = open_table(&e, "/db/000012.sst", size, true);
	lsm_iter *it = lsm_table_iter_new(t, true);
	sisy_buf probe = {0}, lk = {0};
	tf_got g = {0};
	for (int i = 0; i < 4000; i++) {
		if (i < n)
			sisy_buf_set(&probe, users[i].data, users[i].len);
		else
			random_user(&r, &probe);
		if (i % 7 == 0) /* outside the shared prefix, too */
			probe.data[sisy_rand_below(&r, 2)] ^= 0x10;
		uint64_t seq = 6 + sisy_rand_below(&r, 3);
		lsm_ikey(&lk, sisy_buf_slice(&probe), seq, LSM_TYPE_SEEK);
		sisy_slice lookup = sisy_buf_slice(&lk);
		int want = tf_expect_get(&s, lookup);
		bool found;
		g.calls = 0;
		assert_int_equal(
		    lsm_table_get(t, lookup, tf_got_fn, &g, &found), SISY_OK);
		assert_int_equal(found, want >= 0);
		if (want >= 0)
			assert_true(sisy_slice_eq(sisy_buf_slice(&g.val),
						  tf_val(&s, want)));
		int lb = tf_lower_bound(&s, lookup);
		lsm_iter_seek(it, lookup);
		if (lb == s.n) {
			assert_false(lsm_iter_valid(it));
		} else {
			assert_true(lsm_iter_valid(it));
			assert_true(
			    sisy_slice_eq(lsm_iter_key(it), tf_key(&s, lb)));
		}
	}
	lsm_iter_destroy(it);
	sisy_buf_free(&probe);
	sisy_buf_free(&lk);
	tf_got_free(&g);
	lsm_table_close(t);
	env_free(&e);
	tf_set_free(&s);
	for (int i = 0; i < N; i++)
		sisy_buf_free(&users[i]);
}

/* --- corruption ---------------------------------------------------------- */

static bool mentions(const char *msg, const char *what)
{
	return strstr(msg, what) != NULL;
}

/* Everything a reader can do with a table that has one flipped byte. With
 * verify on, each answer is either right or SISY_E_CORRUPT naming the file
 * and an offset; lsm_table_verify must find the damage, since every byte of
 * a table is covered by a checksum. With verify off, wrong answers are
 * allowed but crashes are not. Returns whether the damage was detected. */
static bool probe_damaged(env *e, const char *path, uint64_t size,
			  const tf_set *s, bool verify)
{
	sisy_file *f;
	assert_int_equal(sisy_fs_open(&e->w.base, path, SISY_O_READ, &f),
			 SISY_OK);
	lsm_table *t;
	sisy_err rc =
	    lsm_table_open(f, size, path, e->c, NULL, NULL, verify, &t);
	if (rc != SISY_OK) {
		assert_true(rc == SISY_E_CORRUPT || rc == SISY_E_VERSION);
		assert_true(mentions(sisy_errmsg(), path));
		return true;
	}
	bool detected = false;
	sisy_buf lk = {0};
	tf_got g = {0};
	for (int num = 0; num < 2 * s->users; num++) {
		sisy_slice lookup = tf_lookup(&lk, s, num, LSM_MAX_SEQ);
		int want = tf_expect_get(s, lookup);
		bool found;
		g.calls = 0;
		rc = lsm_table_get(t, lookup, tf_got_fn, &g, &found);
		if (rc != SISY_OK) {
			assert_int_equal(rc, SISY_E_CORRUPT);
			assert_true(mentions(sisy_errmsg(), path));
			assert_true(mentions(sisy_errmsg(), "offset"));
			detected = true;
			continue;
		}
		if (!verify)
			continue;
		assert_int_equal(found, want >= 0);
		if (want >= 0) {
			assert_true(sisy_slice_eq(sisy_buf_slice(&g.key),
						  tf_key(s, want)));
			assert_true(sisy_slice_eq(sisy_buf_slice(&g.val),
						  tf_val(s, want)));
		}
	}
	lsm_iter *it = lsm_table_iter_new(t, true);
	lsm_iter_seek_first(it);
	int i = 0;
	for (; lsm_iter_valid(it); lsm_iter_next(it), i++) {
		assert_true(i < s->n || !verify);
		if (verify) {
			assert_true(
			    sisy_slice_eq(lsm_iter_key(it), tf_key(s, i)));
			assert_true(
			    sisy_slice_eq(lsm_iter_value(it), tf_val(s, i)));
		}
		if (i > 10 * s->n)
			break;
	}
	rc = lsm_iter_status(it);
	if (rc != SISY_OK) {
		assert_int_equal(rc, SISY_E_CORRUPT);
		assert_true(mentions(sisy_errmsg(), path));
		detected = true;
	} else if (verify) {
		assert_int_equal(i, s->n); /* no error: the whole table */
	}
	lsm_iter_destroy(it);
	rc = lsm_table_verify(t);
	if (rc != SISY_OK) {
		assert_int_equal(rc, SISY_E_CORRUPT);
		assert_true(mentions(sisy_errmsg(), path));
		detected = true;
	}
	sisy_buf_free(&lk);
	tf_got_free(&g);
	lsm_table_close(t);
	return detected;
}

static void corrupt_every_byte(const mode *m, bool verify, size_t nmasks)
{
	env e;
	env_init(&e, m);
	tf_set s;
	tf_set_make(&s, 40, 16, 40, true, 10);
	lsm_table_options o = opts(m->compression, 256);
	uint64_t size;
	const char *path = "/db/000009.sst";
	assert_int_equal(tf_build(&e.w.base, path, &o, &s, &size), SISY_OK);
	assert_false(probe_damaged(&e, path, size, &s, verify));
	const uint8_t masks[] = {0x01, 0xa5}; /* one bit; several bits */
	assert_true(nmasks >= 1 && nmasks <= sizeof masks);
	for (uint64_t off = 0; off < size; off++) {
		for (size_t k = 0; k < nmasks; k++) {
			assert_int_equal(
			    sisy_fs_fault_corrupt(e.ff, path, off, masks[k]),
			    SISY_OK);
			bool detected =
			    probe_damaged(&e, path, size, &s, verify);
			if (verify && !detected)
				fail_msg("flipping byte %llu of %llu (mask "
					 "0x%02x) went unnoticed",
					 (unsigned long long)off,
					 (unsigned long long)size, masks[k]);
			assert_int_equal(
			    sisy_fs_fault_corrupt(e.ff, path, off, masks[k]),
			    SISY_OK);
		}
	}
	/* Truncated files (a short read of the footer or a block). */
	for (uint64_t len = 0; len < size; len += 7)
		assert_true(probe_damaged(&e, path, len, &s, verify));
	tf_set_free(&s);
	env_free(&e);
}

static void test_every_flipped_byte_is_caught(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
		corrupt_every_byte(&modes[i], true, i < 3 ? 2 : 1);
}

static void test_unverified_damage_never_crashes(void **state)
{
	(void)state;
	mode m1 = {true, false, false}, m2 = {false, true, true};
	corrupt_every_byte(&m1, false, 2);
	corrupt_every_byte(&m2, false, 2);
}

static void test_bad_version_and_magic(void **state)
{
	(void)state;
	mode m = {true, false, false};
	env e;
	env_init(&e, &m);
	tf_set s;
	tf_set_make(&s, 10, 16, 10, false, 11);
	lsm_table_options o = opts(false, 4096);
	uint64_t size;
	const char *path = "/db/000010.sst";
	assert_int_equal(tf_build(&e.w.base, path, &o, &s, &size), SISY_OK);
	/* A future version with a valid footer checksum: SISY_E_VERSION. */
	uint8_t *data;
	size_t len;
	assert_int_equal(
	    sisy_fs_read_all(&e.w.base, path, 1 << 20, &data, &len), SISY_OK);
	uint8_t *ft = data + len - 56;
	sisy_put_u32(ft + 40, 2);
	sisy_put_u32(ft + 44, sisy_checksum32(ft, 44));
	assert_int_equal(
	    sisy_fs_write_atomic(&e.w.base, "/db", path, data, len), SISY_OK);
	sisy_file *f;
	assert_int_equal(sisy_fs_open(&e.w.base, path, SISY_O_READ, &f),
			 SISY_OK);
	lsm_table *t;
	assert_int_equal(
	    lsm_table_open(f, size, path, NULL, NULL, NULL, true, &t),
	    SISY_E_VERSION);
	assert_true(mentions(sisy_errmsg(), path));
	/* Not a table at all. */
	memset(data, 'x', len);
	assert_int_equal(
	    sisy_fs_write_atomic(&e.w.base, "/db", path, data, len), SISY_OK);
	assert_int_equal(sisy_fs_open(&e.w.base, path, SISY_O_READ, &f),
			 SISY_OK);
	assert_int_equal(
	    lsm_table_open(f, size, path, NULL, NULL, NULL, true, &t),
	    SISY_E_CORRUPT);
	assert_true(mentions(sisy_errmsg(), "footer"));
	free(data);
	tf_set_free(&s);
	env_free(&e);
}

/* --- concurrency --------------------------------------------------------- */

typedef struct reader {
	lsm_table *t;
	const tf_set *s;
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
	for (int i = 0; i < 3000; i++) {
		int num = (int)sisy_rand_below(&rnd, (uint64_t)r->s->users * 2);
		sisy_slice lookup = tf_lookup(&lk, r->s, num, LSM_MAX_SEQ);
		int want = tf_expect_get(r->s, lookup);
		bool found;
		if (lsm_table_get(r->t, lookup, tf_got_fn, &g, &found) !=
			SISY_OK ||
		    found != (want >= 0) ||
		    (want >= 0 && !sisy_slice_eq(sisy_buf_slice(&g.val),
						 tf_val(r->s, want))))
			r->errors++;
	}
	sisy_buf_free(&lk);
	tf_got_free(&g);
	return NULL;
}

static void test_concurrent_readers(void **state)
{
	(void)state;
	tf_set s;
	tf_set_make(&s, 3000, 16, 100, false, 12);
	mode ms[] = {{true, false, false}, {false, true, false}};
	for (size_t mi = 0; mi < 2; mi++) {
		env e;
		env_init(&e, &ms[mi]);
		/* A small cache, so readers also race on evictions. */
		lsm_cache_free(e.c);
		e.c = ms[mi].cache ? lsm_cache_new(16 * 1024, 4) : NULL;
		lsm_table_options o = opts(false, 4096);
		uint64_t size;
		assert_int_equal(
		    tf_build(&e.w.base, "/db/000011.sst", &o, &s, &size),
		    SISY_OK);
		lsm_table *t = open_table(&e, "/db/000011.sst", size, true);
		pthread_t th[4];
		reader rd[4];
		for (int i = 0; i < 4; i++) {
			rd[i] = (reader){t, &s, 50 + (uint64_t)i, 0};
			assert_int_equal(
			    pthread_create(&th[i], NULL, reader_run, &rd[i]),
			    0);
		}
		for (int i = 0; i < 4; i++) {
			pthread_join(th[i], NULL);
			assert_int_equal(rd[i].errors, 0);
		}
		lsm_table_close(t);
		env_free(&e);
	}
	tf_set_free(&s);
}

/* --- the map budget ------------------------------------------------------ */

static void test_map_budget_take_and_give(void **state)
{
	(void)state;
	lsm_map_budget b;
	lsm_map_budget_init(&b, 100);
	assert_true(lsm_map_budget_take(&b, 60));
	assert_false(lsm_map_budget_take(&b, 41)); /* never granted in part */
	assert_true(lsm_map_budget_take(&b, 40));
	assert_int_equal(lsm_map_budget_used(&b), 100);
	assert_false(lsm_map_budget_take(&b, 1));
	lsm_map_budget_give(&b, 60);
	assert_int_equal(lsm_map_budget_used(&b), 40);
	assert_false(lsm_map_budget_take(&b, UINT64_MAX));
	assert_true(lsm_map_budget_take(&b, 0));
	lsm_map_budget_give(&b, 40);
	assert_int_equal(lsm_map_budget_used(&b), 0);
	/* No bound: sizes up to the largest add up without wrapping. */
	lsm_map_budget_init(&b, UINT64_MAX);
	assert_true(lsm_map_budget_take(&b, UINT64_MAX - 1));
	assert_true(lsm_map_budget_take(&b, 1));
	assert_false(lsm_map_budget_take(&b, 1));
	lsm_map_budget_give(&b, UINT64_MAX);
	assert_int_equal(lsm_map_budget_used(&b), 0);
	lsm_map_budget_init(&b, 0);
	assert_false(lsm_map_budget_take(&b, 1));
}

typedef struct budget_user {
	lsm_map_budget *b;
	atomic_ullong *held;
	uint64_t seed;
	int over; /* times more was held than the limit */
	int granted;
} budget_user;

static void *budget_user_run(void *arg)
{
	budget_user *u = arg;
	sisy_rand r;
	sisy_rand_seed(&r, u->seed);
	for (int i = 0; i < 20000; i++) {
		uint64_t n = 1 + sisy_rand_below(&r, 40);
		if (!lsm_map_budget_take(u->b, n))
			continue;
		u->granted++;
		if (atomic_fetch_add(u->held, n) + n > u->b->limit)
			u->over++;
		atomic_fetch_sub(u->held, n);
		lsm_map_budget_give(u->b, n);
	}
	return NULL;
}

/* Racing reservations never hold more than the limit together. */
static void test_map_budget_concurrent(void **state)
{
	(void)state;
	lsm_map_budget b;
	lsm_map_budget_init(&b, 100);
	atomic_ullong held = 0;
	pthread_t th[4];
	budget_user u[4];
	for (int i = 0; i < 4; i++) {
		u[i] = (budget_user){&b, &held, 90 + (uint64_t)i, 0, 0};
		assert_int_equal(
		    pthread_create(&th[i], NULL, budget_user_run, &u[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(u[i].over, 0);
		assert_true(u[i].granted > 0);
	}
	assert_int_equal(lsm_map_budget_used(&b), 0);
}

/* A table maps its file only when the whole file fits in the budget, and
 * reads the same either way. */
static void test_table_maps_within_budget(void **state)
{
	(void)state;
	mode m = {true, true, false};
	env e;
	env_init(&e, &m);
	tf_set s;
	tf_set_make(&s, 1000, 16, 100, false, 13);
	lsm_table_options o = opts(false, 4096);
	uint64_t size;
	const char *path = "/db/000012.sst";
	assert_int_equal(tf_build(&e.w.base, path, &o, &s, &size), SISY_OK);
	for (int fits = 0; fits <= 1; fits++) {
		lsm_map_budget b;
		lsm_map_budget_init(&b, size - 1 + (uint64_t)fits);
		sisy_file *f;
		assert_int_equal(sisy_fs_open(&e.w.base, path, SISY_O_READ, &f),
				 SISY_OK);
		lsm_table *t;
		assert_int_equal(lsm_table_open(f, size, path, e.c, &b,
						&e.counters, true, &t),
				 SISY_OK);
		assert_int_equal(lsm_table_mapped(t), fits);
		assert_int_equal(lsm_map_budget_used(&b), fits ? size : 0);
		assert_int_equal(atomic_load(&e.w.mapped),
				 fits ? (long long)size : 0);
		uint64_t misses = LSM_READ(&e.counters, cache_misses);
		check_gets(t, &s);
		/* Only the pread path goes through the block cache. */
		assert_int_equal(LSM_READ(&e.counters, cache_misses) > misses,
				 !fits);
		lsm_iter *it = lsm_table_iter_new(t, true);
		check_scan(it, &s);
		lsm_iter_destroy(it);
		assert_int_equal(lsm_table_verify(t), SISY_OK);
		lsm_table_close(t);
		assert_int_equal(lsm_map_budget_used(&b), 0);
		assert_int_equal(atomic_load(&e.w.mapped), 0);
	}
	tf_set_free(&s);
	env_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips_every_read_path),
	    cmocka_unit_test(test_big_values_and_long_keys),
	    cmocka_unit_test(test_single_and_empty_tables),
	    cmocka_unit_test(test_real_file_mapping),
	    cmocka_unit_test(test_bloom_filter_skips_absent_keys),
	    cmocka_unit_test(test_block_cache_serves_repeat_reads),
	    cmocka_unit_test(test_compression_kept_only_when_smaller),
	    cmocka_unit_test(test_builder_reports_size_and_entries),
	    cmocka_unit_test(test_write_errors_are_reported),
	    cmocka_unit_test(test_index_search_with_odd_keys),
	    cmocka_unit_test(test_every_flipped_byte_is_caught),
	    cmocka_unit_test(test_unverified_damage_never_crashes),
	    cmocka_unit_test(test_bad_version_and_magic),
	    cmocka_unit_test(test_concurrent_readers),
	    cmocka_unit_test(test_map_budget_take_and_give),
	    cmocka_unit_test(test_map_budget_concurrent),
	    cmocka_unit_test(test_table_maps_within_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
