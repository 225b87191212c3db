/* Tests libcommon/frame.c: the incremental frame reader and writer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "rand.h"

/* Feeds `n` bytes in pieces of `step` (0: random sizes); collects frames. */
static size_t feed_all(sisy_frame_reader *r, const uint8_t *d, size_t n,
		       size_t step, sisy_rand *rnd, sisy_buf *frames,
		       size_t *count, sisy_err *err)
{
	size_t off = 0;
	*err = SISY_OK;
	while (off < n) {
		size_t piece = step ? step : 1 + sisy_rand_below(rnd, 7);
		if (piece > n - off)
			piece = n - off;
		size_t in = 0;
		while (in < piece) {
			size_t used;
			bool done;
			sisy_slice f;
			*err = sisy_frame_feed(r, d + off + in, piece - in,
					       &used, &done, &f);
			if (*err != SISY_OK)
				return off + in;
			in += used;
			if (done) {
				sisy_buf_append_u32(frames, (uint32_t)f.len);
				sisy_buf_append(frames, f.data, f.len);
				(*count)++;
				sisy_frame_reader_next(r);
			}
		}
		off += piece;
	}
	return off;
}

static void test_roundtrip_any_split(void **state)
{
	(void)state;
	sisy_buf wire = {0}, expect = {0};
	const char *msgs[] = {"", "a", "hello world", ""};
	char big[5000];
	memset(big, 'x', sizeof big);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(
		    sisy_frame_append(&wire, msgs[i], strlen(msgs[i])),
		    SISY_OK);
		sisy_buf_append_u32(&expect, (uint32_t)strlen(msgs[i]));
		sisy_buf_append(&expect, msgs[i], strlen(msgs[i]));
	}
	assert_int_equal(sisy_frame_append(&wire, big, sizeof big), SISY_OK);
	sisy_buf_append_u32(&expect, sizeof big);
	sisy_buf_append(&expect, big, sizeof big);
	/* Header is big-endian. */
	assert_int_equal(wire.data[3], 0);
	assert_int_equal(wire.data[4 + 3], 1);

	sisy_rand rnd;
	sisy_rand_seed(&rnd, 42);
	size_t steps[] = {1, 2, 3, 4, 5, 4096, 0, 0, 0};
	for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
		sisy_frame_reader r;
		sisy_buf got = {0};
		size_t count = 0;
		sisy_err err;
		sisy_frame_reader_init(&r, 8192);
		feed_all(&r, wire.data, wire.len, steps[s], &rnd, &got, &count,
			 &err);
		assert_int_equal(err, SISY_OK);
		assert_int_equal(count, 5);
		assert_int_equal(got.len, expect.len);
		assert_memory_equal(got.data, expect.data, got.len);
		assert_false(sisy_frame_reader_partial(&r));
		sisy_frame_reader_free(&r);
		sisy_buf_free(&got);
	}
	sisy_buf_free(&wire);
	sisy_buf_free(&expect);
}

static void test_too_big_before_allocating(void **state)
{
	(void)state;
	/* 4 GiB - 1 announced: refused on the header, nothing allocated. */
	uint8_t hdr[4] = {0xff, 0xff, 0xff, 0xff};
	sisy_frame_reader r;
	sisy_frame_reader_init(&r, SISY_FRAME_MAX_PRELOGIN);
	size_t used;
	bool done;
	sisy_slice f;
	assert_int_equal(sisy_frame_feed(&r, hdr, 4, &used, &done, &f),
			 SISY_E_TOOBIG);
	assert_false(done);
	assert_int_equal(r.payload.cap, 0);
	/* Stays failed. */
	assert_int_equal(sisy_frame_feed(&r, hdr, 1, &used, &done, &f),
			 SISY_E_TOOBIG);
	sisy_frame_reader_free(&r);

	/* Exactly the maximum is fine, one more is not. */
	uint8_t ok[4] = {0, 0, 0x10, 0x00}; /* 4096 */
	sisy_frame_reader_init(&r, 4096);
	assert_int_equal(sisy_frame_feed(&r, ok, 4, &used, &done, &f), SISY_OK);
	assert_true(sisy_frame_reader_partial(&r));
	sisy_frame_reader_free(&r);
	uint8_t bad[4] = {0, 0, 0x10, 0x01};
	sisy_frame_reader_init(&r, 4096);
	assert_int_equal(sisy_frame_feed(&r, bad, 4, &used, &done, &f),
			 SISY_E_TOOBIG);
	sisy_frame_reader_free(&r);
}

static void test_grows_with_data_not_announcement(void **state)
{
	(void)state;
	/* A peer announcing 16 MiB and sending 10 bytes costs ~10 bytes. */
	uint8_t d[14] = {0x01, 0x00, 0x00, 0x00};
	sisy_frame_reader r;
	sisy_frame_reader_init(&r, SISY_FRAME_MAX);
	size_t used;
	bool done;
	sisy_slice f;
	assert_int_equal(sisy_frame_feed(&r, d, sizeof d, &used, &done, &f),
			 SISY_OK);
	assert_int_equal(used, sizeof d);
	assert_false(done);
	assert_true(r.payload.cap < 4096);
	sisy_frame_reader_free(&r);
}

static void test_set_max_applies_to_next_frame(void **state)
{
	(void)state;
	sisy_buf wire = {0};
	char big[6000] = {0};
	sisy_frame_append(&wire, "hi", 2);
	sisy_frame_append(&wire, big, sizeof big);
	sisy_frame_reader r;
	sisy_frame_reader_init(&r, SISY_FRAME_MAX_PRELOGIN);
	size_t used;
	bool done;
	sisy_slice f;
	assert_int_equal(
	    sisy_frame_feed(&r, wire.data, wire.len, &used, &done, &f),
	    SISY_OK);
	assert_true(done);
	assert_int_equal(used, 6);
	sisy_frame_reader_next(&r);
	sisy_frame_reader_set_max(&r, SISY_FRAME_MAX);
	assert_int_equal(sisy_frame_feed(&r, wire.data + used, wire.len - used,
					 &used, &done, &f),
			 SISY_OK);
	assert_true(done);
	assert_int_equal(f.len, sizeof big);
	sisy_frame_reader_free(&r);
	sisy_buf_free(&wire);
}

/* sisy_frame_whole hands out, in place, exactly the frames the reader
 * would have assembled, and declines whatever the reader must see: a
 * frame not all there, one over the maximum, a reader in the middle of a
 * frame or failed. */
static void test_whole_frames_in_place(void **state)
{
	(void)state;
	sisy_frame_reader r;
	sisy_buf b = {0};
	const char *msgs[] = {"", "a", "hello world"};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(
		    sisy_frame_append(&b, msgs[i], strlen(msgs[i])), SISY_OK);
	sisy_frame_reader_init(&r, 64);
	size_t off = 0;
	for (size_t i = 0; i < 3; i++) {
		sisy_slice f;
		size_t used;
		/* One byte short of the frame: not whole. */
		assert_false(sisy_frame_whole(
		    &r, b.data + off, SISY_FRAME_HDR + strlen(msgs[i]) - 1, &f,
		    &used));
		assert_true(
		    sisy_frame_whole(&r, b.data + off, b.len - off, &f, &used));
		assert_int_equal(used, SISY_FRAME_HDR + strlen(msgs[i]));
		assert_int_equal(f.len, strlen(msgs[i]));
		assert_ptr_equal(f.data, b.data + off + SISY_FRAME_HDR);
		assert_memory_equal(f.data, msgs[i], f.len);
		off += used;
	}
	assert_int_equal(off, b.len);
	assert_false(sisy_frame_whole(&r, b.data, 0, NULL, NULL));
	/* Over the maximum: the reader has to refuse it. */
	sisy_frame_reader_set_max(&r, 5);
	off = SISY_FRAME_HDR + 0 + SISY_FRAME_HDR + 1;
	sisy_slice f;
	size_t used;
	assert_false(
	    sisy_frame_whole(&r, b.data + off, b.len - off, &f, &used));
	/* A reader holding part of a header: the bytes continue its frame. */
	sisy_frame_reader_set_max(&r, 64);
	bool done;
	assert_int_equal(sisy_frame_feed(&r, b.data, 2, &used, &done, &f),
			 SISY_OK);
	assert_false(done);
	assert_false(sisy_frame_whole(&r, b.data + 2, b.len - 2, &f, &used));
	sisy_frame_reader_free(&r);
	sisy_buf_free(&b);
}

static void test_append_refuses_oversize(void **state)
{
	(void)state;
	sisy_buf b = {0};
	static const uint8_t x = 0;
	assert_int_equal(sisy_frame_append(&b, &x, (size_t)SISY_FRAME_MAX + 1),
			 SISY_E_TOOBIG);
	assert_int_equal(b.len, 0);
	sisy_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_any_split),
	    cmocka_unit_test(test_too_big_before_allocating),
	    cmocka_unit_test(test_grows_with_data_not_announcement),
	    cmocka_unit_test(test_set_max_applies_to_next_frame),
	    cmocka_unit_test(test_append_refuses_oversize),
	    cmocka_unit_test(test_whole_frames_in_place),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
