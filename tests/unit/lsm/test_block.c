/* Tests sisyd/lsm/block.c: building prefix-compressed blocks, seeking and
 * scanning them, and decoding damaged blocks without crashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block.h"
#include "dbformat.h"
#include "rand.h"

/* Internal key for ("%0*d" of num, padded to ulen bytes, seq, VALUE). */
static sisy_slice ikey(sisy_buf *b, int num, size_t ulen, uint64_t seq)
{
	char u[512];
	assert_true(ulen < sizeof u);
	memset(u, 'p', ulen);
	char digits[16];
	int n = snprintf(digits, sizeof digits, "%08d", num);
	memcpy(u + ulen - (size_t)n, digits, (size_t)n);
	assert_int_equal(
	    lsm_ikey(b, sisy_slice_make(u, ulen), seq, LSM_TYPE_VALUE),
	    SISY_OK);
	return sisy_buf_slice(b);
}

static size_t value_of(char *out, int num)
{
	/* Lengths vary from 0 to 40 bytes. */
	size_t len = (size_t)(num * 7 % 41);
	for (size_t i = 0; i < len; i++)
		out[i] = (char)('a' + (num + (int)i) % 26);
	return len;
}

/* Builds a block of keys 2*i (i < n) so odd numbers are absent. */
static sisy_slice build(lsm_block_builder *bb, int n, size_t ulen)
{
	sisy_buf k = {0};
	char v[64];
	for (int i = 0; i < n; i++) {
		size_t vl = value_of(v, 2 * i);
		assert_int_equal(lsm_block_builder_add(bb,
						       ikey(&k, 2 * i, ulen, 5),
						       sisy_slice_make(v, vl)),
				 SISY_OK);
	}
	size_t est = lsm_block_builder_estimate(bb);
	sisy_slice out;
	assert_int_equal(lsm_block_builder_finish(bb, &out), SISY_OK);
	assert_int_equal(out.len, est);
	sisy_buf_free(&k);
	return out;
}

static void check_entry(lsm_block_cursor *c, int num, size_t ulen)
{
	sisy_buf k = {0};
	char v[64];
	assert_true(lsm_block_cursor_valid(c));
	sisy_slice want = ikey(&k, num, ulen, 5);
	sisy_slice got = lsm_block_cursor_key(c);
	assert_int_equal(got.len, want.len);
	assert_memory_equal(got.data, want.data, want.len);
	size_t vl = value_of(v, num);
	sisy_slice gv = lsm_block_cursor_value(c);
	assert_int_equal(gv.len, vl);
	if (vl > 0)
		assert_memory_equal(gv.data, v, vl);
	sisy_buf_free(&k);
}

static void round_trip(int n, int interval, size_t ulen)
{
	lsm_block_builder bb;
	lsm_block_builder_init(&bb, interval);
	sisy_slice data = build(&bb, n, ulen);
	lsm_block blk;
	assert_int_equal(lsm_block_parse(&blk, data.data, data.len), SISY_OK);
	assert_int_equal(blk.nrestarts,
			 n == 0 ? 1 : (n + interval - 1) / interval);
	lsm_block_cursor c;
	lsm_block_cursor_init(&c, &blk);
	assert_false(lsm_block_cursor_valid(&c));
	lsm_block_cursor_seek_first(&c);
	for (int i = 0; i < n; i++) {
		check_entry(&c, 2 * i, ulen);
		lsm_block_cursor_next(&c);
	}
	assert_false(lsm_block_cursor_valid(&c));
	assert_int_equal(lsm_block_cursor_status(&c), SISY_OK);

	sisy_buf k = {0};
	for (int t = -1; t <= 2 * n; t++) {
		/* Exact keys land on themselves, odd ones on the next even. */
		lsm_block_cursor_seek(&c, ikey(&k, t < 0 ? 0 : t, ulen, 5));
		int want = t < 0 ? 0 : (t + 1) / 2 * 2;
		if (want >= 2 * n) {
			assert_false(lsm_block_cursor_valid(&c));
			assert_int_equal(lsm_block_cursor_status(&c), SISY_OK);
		} else {
			check_entry(&c, want, ulen);
		}
	}
	/* An older snapshot of a present key: seq 4 < 5 sorts after the
	 * entry, so the seek lands on the next key. */
	if (n >= 2) {
		lsm_block_cursor_seek(&c, ikey(&k, 0, ulen, 4));
		check_entry(&c, 2, ulen);
		lsm_block_cursor_seek(&c, ikey(&k, 0, ulen, 6));
		check_entry(&c, 0, ulen);
	}
	sisy_buf_free(&k);
	lsm_block_cursor_free(&c);
	lsm_block_builder_free(&bb);
}

static void test_round_trips(void **state)
{
	(void)state;
	int intervals[] = {1, 2, 3, 16, 1000};
	int sizes[] = {0, 1, 2, 15, 16, 17, 100, 1000};
	for (size_t i = 0; i < sizeof intervals / sizeof *intervals; i++)
		for (size_t j = 0; j < sizeof sizes / sizeof *sizes; j++)
			round_trip(sizes[j], intervals[i], 16);
}

static void test_long_keys_use_the_heap(void **state)
{
	(void)state;
	/* Keys longer than the cursor's inline buffer, sharing long
	 * prefixes: the cursor must switch to its heap key mid-block. */
	round_trip(200, 16, LSM_BLOCK_INLINE_KEY + 50);
	round_trip(50, 4, 400);
}

static void test_builder_reset_reuses(void **state)
{
	(void)state;
	lsm_block_builder bb;
	lsm_block_builder_init(&bb, 16);
	for (int round = 0; round < 3; round++) {
		sisy_slice data = build(&bb, 40 + round, 16);
		lsm_block blk;
		assert_int_equal(lsm_block_parse(&blk, data.data, data.len),
				 SISY_OK);
		lsm_block_cursor c;
		lsm_block_cursor_init(&c, &blk);
		lsm_block_cursor_seek_first(&c);
		int n = 0;
		while (lsm_block_cursor_valid(&c)) {
			check_entry(&c, 2 * n, 16);
			n++;
			lsm_block_cursor_next(&c);
		}
		assert_int_equal(n, 40 + round);
		lsm_block_builder_reset(&bb);
		assert_true(lsm_block_builder_empty(&bb));
	}
	lsm_block_builder_free(&bb);
}

/* The table builder reads a sealed block's last key from its builder after
 * the reset, so last_key must survive it; the next block's first entry
 * must still store its whole key (shared 0), even when it shares a prefix
 * with that key. */
static void test_last_key_survives_reset(void **state)
{
	(void)state;
	lsm_block_builder bb;
	lsm_block_builder_init(&bb, 16);
	assert_int_equal(lsm_block_builder_last_key(&bb).len, 0);
	sisy_buf k = {0};
	for (int i = 0; i < 5; i++) {
		sisy_slice key = ikey(&k, i, 16, 5);
		assert_int_equal(
		    lsm_block_builder_add(&bb, key, sisy_slice_make("v", 1)),
		    SISY_OK);
		sisy_slice last = lsm_block_builder_last_key(&bb);
		assert_int_equal(last.len, key.len);
		assert_memory_equal(last.data, key.data, key.len);
	}
	sisy_slice out;
	assert_int_equal(lsm_block_builder_finish(&bb, &out), SISY_OK);
	lsm_block_builder_reset(&bb);
	sisy_slice last = lsm_block_builder_last_key(&bb);
	sisy_slice want = ikey(&k, 4, 16, 5);
	assert_int_equal(last.len, want.len);
	assert_memory_equal(last.data, want.data, want.len);

	/* key 5 shares 15 of its 16 user-key bytes with key 4 */
	sisy_slice key = ikey(&k, 5, 16, 5);
	assert_int_equal(
	    lsm_block_builder_add(&bb, key, sisy_slice_make("w", 1)), SISY_OK);
	assert_int_equal(lsm_block_builder_finish(&bb, &out), SISY_OK);
	assert_int_equal(out.data[0], 0);		 /* shared */
	assert_int_equal(out.data[1], (uint8_t)key.len); /* unshared */
	lsm_block blk;
	assert_int_equal(lsm_block_parse(&blk, out.data, out.len), SISY_OK);
	lsm_block_cursor c;
	lsm_block_cursor_init(&c, &blk);
	lsm_block_cursor_seek_first(&c);
	assert_true(lsm_block_cursor_valid(&c));
	assert_memory_equal(lsm_block_cursor_key(&c).data, key.data, key.len);
	lsm_block_cursor_free(&c);
	sisy_buf_free(&k);
	lsm_block_builder_free(&bb);
}

static void test_prefix_compression_saves_space(void **state)
{
	(void)state;
	lsm_block_builder a, b;
	lsm_block_builder_init(&a, 16);
	lsm_block_builder_init(&b, 1);
	sisy_slice da = build(&a, 100, 64), db = build(&b, 100, 64);
	/* 64-byte user keys differing in the last few digits: interval 16
	 * stores ~6 whole keys, interval 1 stores all 100. */
	assert_true(da.len + 90 * 50 < db.len);
	lsm_block_builder_free(&a);
	lsm_block_builder_free(&b);
}

/* Walks a (possibly damaged) block every way a reader does. Must never
 * crash or read out of bounds (ASan watches); errors are CORRUPT. */
static void poke(const uint8_t *data, size_t len)
{
	/* A private copy of exactly len bytes, so ASan sees any overrun. */
	uint8_t *copy = malloc(len > 0 ? len : 1);
	memcpy(copy, data, len);
	lsm_block blk;
	if (lsm_block_parse(&blk, copy, len) != SISY_OK) {
		free(copy);
		return;
	}
	lsm_block_cursor c;
	lsm_block_cursor_init(&c, &blk);
	lsm_block_cursor_seek_first(&c);
	for (size_t steps = 0; lsm_block_cursor_valid(&c); steps++) {
		assert_true(steps <= len); /* every entry takes >= 1 byte */
		assert_true(lsm_block_cursor_key(&c).len >= 8);
		lsm_block_cursor_next(&c);
	}
	sisy_err rc = lsm_block_cursor_status(&c);
	assert_true(rc == SISY_OK || rc == SISY_E_CORRUPT);
	sisy_buf k = {0};
	for (int t = 0; t < 40; t += 3) {
		lsm_block_cursor_seek(&c, ikey(&k, t, 16, 5));
		rc = lsm_block_cursor_status(&c);
		assert_true(rc == SISY_OK || rc == SISY_E_CORRUPT);
	}
	sisy_buf_free(&k);
	lsm_block_cursor_free(&c);
	free(copy);
}

static void test_damaged_blocks_never_crash(void **state)
{
	(void)state;
	lsm_block_builder bb;
	lsm_block_builder_init(&bb, 4);
	sisy_slice data = build(&bb, 20, 16);
	uint8_t *buf = malloc(data.len);
	memcpy(buf, data.data, data.len);
	const uint8_t masks[] = {0x01, 0x10, 0x80, 0xff};
	for (size_t off = 0; off < data.len; off++) {
		for (size_t m = 0; m < sizeof masks; m++) {
			buf[off] ^= masks[m];
			poke(buf, data.len);
			buf[off] ^= masks[m];
		}
	}
	for (size_t len = 0; len <= data.len; len++)
		poke(buf, len); /* truncations */
	sisy_rand r;
	sisy_rand_seed(&r, 7);
	for (int i = 0; i < 2000; i++) { /* random garbage */
		for (size_t j = 0; j < data.len; j++)
			buf[j] = (uint8_t)sisy_rand_next(&r);
		/* Plausible restart counts make the decoder work harder. */
		sisy_put_u32(buf + data.len - 4,
			     (uint32_t)sisy_rand_below(&r, 6));
		poke(buf, data.len);
	}
	free(buf);
	lsm_block_builder_free(&bb);
}

static void test_parse_rejects_bad_trailers(void **state)
{
	(void)state;
	uint8_t b[16] = {0};
	lsm_block blk;
	assert_int_equal(lsm_block_parse(&blk, b, 4), SISY_E_CORRUPT);
	sisy_put_u32(b + 12, 0); /* no restarts */
	assert_int_equal(lsm_block_parse(&blk, b, 16), SISY_E_CORRUPT);
	sisy_put_u32(b + 12, 4); /* restarts would overlap the count */
	assert_int_equal(lsm_block_parse(&blk, b, 16), SISY_E_CORRUPT);
	sisy_put_u32(b + 12, 3); /* exactly fills: no entries, 3 restarts */
	assert_int_equal(lsm_block_parse(&blk, b, 16), SISY_OK);
	assert_int_equal(blk.data_end, 0);
	sisy_put_u32(b + 12, 1); /* a restart offset past the entries */
	sisy_put_u32(b + 8, 9);
	assert_int_equal(lsm_block_parse(&blk, b, 16), SISY_OK);
	lsm_block_cursor c;
	lsm_block_cursor_init(&c, &blk);
	lsm_block_cursor_seek_first(&c);
	assert_false(lsm_block_cursor_valid(&c));
	assert_int_equal(lsm_block_cursor_status(&c), SISY_E_CORRUPT);
	lsm_block_cursor_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_long_keys_use_the_heap),
	    cmocka_unit_test(test_builder_reset_reuses),
	    cmocka_unit_test(test_last_key_survives_reset),
	    cmocka_unit_test(test_prefix_compression_saves_space),
	    cmocka_unit_test(test_damaged_blocks_never_crash),
	    cmocka_unit_test(test_parse_rejects_bad_trailers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
