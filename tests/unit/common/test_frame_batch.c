/* Tests libcommon/frame_batch.c: batches of messages in one frame payload
 * (protocol version 2): round trips of messages of every length class
 * (empty, one-byte and multi-byte length prefixes), what a protobuf
 * decoder would read (field 1, length-delimited), and refusal of every
 * malformed batch without reading past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "rand.h"

static void test_round_trip(void **state)
{
	(void)state;
	static const size_t lens[] = {0, 1, 127, 128, 300, 16383, 16384, 70000};
	const size_t n = sizeof lens / sizeof lens[0];
	sisy_buf b = {0};
	uint8_t *src = malloc(70000);
	sisy_rand r;
	sisy_rand_seed(&r, 7);
	for (size_t i = 0; i < 70000; i++)
		src[i] = (uint8_t)sisy_rand_next(&r);
	for (size_t i = 0; i < n; i++) {
		if (i % 2) {
			assert_int_equal(sisy_batch_append(&b, src, lens[i]),
					 SISY_OK);
		} else {
			uint8_t *p = sisy_batch_reserve(&b, lens[i]);
			assert_non_null(p);
			memcpy(p, src, lens[i]);
			b.len += lens[i];
		}
	}
	size_t count = 0;
	assert_int_equal(sisy_batch_check(sisy_buf_slice(&b), &count), SISY_OK);
	assert_int_equal(count, n);
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		sisy_slice m;
		bool done;
		assert_int_equal(
		    sisy_batch_next(sisy_buf_slice(&b), &off, &m, &done),
		    SISY_OK);
		assert_false(done);
		assert_int_equal(m.len, lens[i]);
		if (m.len)
			assert_memory_equal(m.data, src, m.len);
	}
	sisy_slice m;
	bool done;
	assert_int_equal(sisy_batch_next(sisy_buf_slice(&b), &off, &m, &done),
			 SISY_OK);
	assert_true(done);
	/* The wire bytes of the second message (length 1): tag, length. */
	assert_int_equal(b.data[0], 0x0a);
	assert_int_equal(b.data[1], 0);
	assert_int_equal(b.data[2], 0x0a);
	assert_int_equal(b.data[3], 1);
	sisy_buf_free(&b);
	free(src);
}

static sisy_err check_bytes(const uint8_t *d, size_t n)
{
	size_t count;
	/* A copy of exactly n bytes, so ASan sees any read past it. */
	uint8_t *c = malloc(n ? n : 1);
	memcpy(c, d, n);
	sisy_err rc = sisy_batch_check(sisy_slice_make(c, n), &count);
	free(c);
	return rc;
}

static void test_malformed(void **state)
{
	(void)state;
	static const uint8_t ok[] = {0x0a, 2, 'h', 'i'};
	assert_int_equal(check_bytes(ok, sizeof ok), SISY_OK);
	/* empty; another tag; length past the end; truncated length; a
	 * length over 32 bits; trailing garbage after a good message */
	static const uint8_t tag[] = {0x12, 0};
	static const uint8_t past[] = {0x0a, 3, 'h', 'i'};
	static const uint8_t trunc[] = {0x0a, 0x80};
	static const uint8_t huge[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x7f};
	static const uint8_t tail[] = {0x0a, 1, 'x', 0x0a};
	assert_int_equal(check_bytes(ok, 0), SISY_E_PROTO);
	assert_int_equal(check_bytes(tag, sizeof tag), SISY_E_PROTO);
	assert_int_equal(check_bytes(past, sizeof past), SISY_E_PROTO);
	assert_int_equal(check_bytes(trunc, sizeof trunc), SISY_E_PROTO);
	assert_int_equal(check_bytes(huge, sizeof huge), SISY_E_PROTO);
	assert_int_equal(check_bytes(tail, sizeof tail), SISY_E_PROTO);
	/* Random bytes never crash or read outside (ASan). */
	sisy_rand r;
	sisy_rand_seed(&r, 11);
	uint8_t junk[64];
	for (int t = 0; t < 20000; t++) {
		size_t n = sisy_rand_below(&r, sizeof junk + 1);
		for (size_t i = 0; i < n; i++)
			junk[i] = (uint8_t)(sisy_rand_below(&r, 4) == 0
						? 0x0a
						: sisy_rand_below(&r, 256));
		(void)check_bytes(junk, n);
	}
}

/* Every two-byte length (minimal or not, as the generic varint reader
 * takes them) gives the length it encodes, and a body one byte short of
 * it is refused. */
static void test_two_byte_lengths(void **state)
{
	(void)state;
	uint8_t *b = calloc(1, 3 + 16384);
	assert_non_null(b);
	for (unsigned b0 = 0x80; b0 <= 0xff; b0++)
		for (unsigned b1 = 0; b1 < 0x80; b1++) {
			size_t len = (b0 & 0x7f) | (size_t)b1 << 7;
			b[0] = 0x0a;
			b[1] = (uint8_t)b0;
			b[2] = (uint8_t)b1;
			size_t off = 0;
			sisy_slice m;
			bool done;
			assert_int_equal(
			    sisy_batch_next(sisy_slice_make(b, 3 + len), &off,
					    &m, &done),
			    SISY_OK);
			assert_false(done);
			assert_int_equal(m.len, len);
			assert_ptr_equal(m.data, b + 3);
			assert_int_equal(off, 3 + len);
			if (len > 0)
				assert_int_equal(check_bytes(b, 3 + len - 1),
						 SISY_E_PROTO);
		}
	free(b);
}

static void test_count_limit(void **state)
{
	(void)state;
	sisy_buf b = {0};
	for (unsigned i = 0; i < SISY_BATCH_MAX_MSGS; i++)
		assert_int_equal(sisy_batch_append(&b, "", 0), SISY_OK);
	size_t count = 0;
	assert_int_equal(sisy_batch_check(sisy_buf_slice(&b), &count), SISY_OK);
	assert_int_equal(count, SISY_BATCH_MAX_MSGS);
	assert_int_equal(sisy_batch_append(&b, "", 0), SISY_OK);
	assert_int_equal(sisy_batch_check(sisy_buf_slice(&b), &count),
			 SISY_E_PROTO);
	sisy_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_malformed),
	    cmocka_unit_test(test_two_byte_lengths),
	    cmocka_unit_test(test_count_limit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
