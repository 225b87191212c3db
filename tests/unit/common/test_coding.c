/* Tests libcommon/coding.h, err.c, buf.c and rand.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "buf.h"
#include "coding.h"
#include "err.h"
#include "rand.h"

static void test_varint_roundtrip(void **state)
{
	(void)state;
	uint64_t vals[] = {0,	      1,	  127,
			   128,	      300,	  16383,
			   16384,     UINT32_MAX, (uint64_t)UINT32_MAX + 1,
			   UINT64_MAX};
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		uint8_t b[SISY_VARINT64_MAX];
		size_t n = sisy_put_varint64(b, vals[i]);
		assert_int_equal(n, sisy_varint_len(vals[i]));
		uint64_t out;
		assert_ptr_equal(sisy_get_varint64(b, b + n, &out), b + n);
		assert_true(out == vals[i]);
		/* Every truncation is rejected, never read past the end. */
		for (size_t cut = 0; cut < n; cut++)
			assert_null(sisy_get_varint64(b, b + cut, &out));
	}
}

static void test_varint_overflow(void **state)
{
	(void)state;
	uint8_t b[11];
	memset(b, 0xff, sizeof b);
	uint64_t v;
	assert_null(sisy_get_varint64(b, b + sizeof b, &v));
	uint32_t v32;
	uint8_t big[SISY_VARINT64_MAX];
	size_t n = sisy_put_varint64(big, (uint64_t)UINT32_MAX + 5);
	assert_null(sisy_get_varint32(big, big + n, &v32));
}

static void test_fixed(void **state)
{
	(void)state;
	uint8_t b[8];
	sisy_put_u32(b, 0x01020304);
	assert_int_equal(b[0], 4);
	assert_int_equal(sisy_get_u32(b), 0x01020304);
	sisy_put_u64(b, 0x0102030405060708ULL);
	assert_true(sisy_get_u64(b) == 0x0102030405060708ULL);
	sisy_put_be32(b, 0x01020304);
	assert_int_equal(b[0], 1);
	assert_int_equal(sisy_get_be32(b), 0x01020304);
}

static void test_err(void **state)
{
	(void)state;
	assert_string_equal(sisy_strerror(SISY_E_NOSPC),
			    "no space left on device");
	assert_string_equal(sisy_errname(SISY_E_IO), "SISY_E_IO");
	assert_int_equal(sisy_errf(SISY_E_CORRUPT, "bad at %d", 7),
			 SISY_E_CORRUPT);
	assert_string_equal(sisy_errmsg(), "bad at 7");
	/* Wrapping the current message must not read the buffer it writes. */
	sisy_errf(SISY_E_IO, "inner %s", "cause");
	sisy_errf(SISY_E_IO, "outer: %s", sisy_errmsg());
	assert_string_equal(sisy_errmsg(), "outer: inner cause");
	sisy_errclear();
	assert_string_equal(sisy_errmsg(), "");
}

static void test_buf(void **state)
{
	(void)state;
	sisy_buf b = {0};
	for (int i = 0; i < 1000; i++)
		assert_int_equal(sisy_buf_append_u8(&b, (uint8_t)i), SISY_OK);
	assert_int_equal(b.len, 1000);
	assert_int_equal(b.data[999], (uint8_t)999);
	sisy_buf_free(&b);
	assert_null(b.data);
}

/* Every append, starting at every fill of a buffer (so each one meets
 * both its in-place path and its growing path, and a varint that needs
 * all ten bytes meets an almost full buffer), writes the same bytes as the
 * plain encoders into an array. */
static void test_buf_appends_at_every_fill(void **state)
{
	(void)state;
	const uint64_t vals[] = {0,	    1, 127, 128, 0x1234567890abcdefULL,
				 UINT64_MAX};
	for (size_t fill = 0; fill <= 80; fill++) {
		for (size_t vi = 0; vi < sizeof vals / sizeof vals[0]; vi++) {
			uint64_t v = vals[vi];
			uint8_t want[128];
			size_t n = fill;
			sisy_buf b = {0};
			memset(want, 0xa5, fill);
			assert_int_equal(sisy_buf_reserve(&b, 1), SISY_OK);
			for (size_t i = 0; i < fill; i++)
				assert_int_equal(sisy_buf_append_u8(&b, 0xa5),
						 SISY_OK);
			assert_int_equal(sisy_buf_append_varint(&b, v),
					 SISY_OK);
			n += sisy_put_varint64(want + n, v);
			assert_int_equal(sisy_buf_append_u64(&b, v), SISY_OK);
			sisy_put_u64(want + n, v);
			n += 8;
			assert_int_equal(sisy_buf_append_u32(&b, (uint32_t)v),
					 SISY_OK);
			sisy_put_u32(want + n, (uint32_t)v);
			n += 4;
			assert_int_equal(sisy_buf_append_u8(&b, (uint8_t)v),
					 SISY_OK);
			want[n++] = (uint8_t)v;
			assert_int_equal(sisy_buf_append(&b, &vals[vi], 8),
					 SISY_OK);
			memcpy(want + n, &vals[vi], 8);
			n += 8;
			assert_int_equal(sisy_buf_append(&b, NULL, 0), SISY_OK);
			assert_int_equal(b.len, n);
			assert_true(b.cap >= b.len);
			assert_memory_equal(b.data, want, n);
			sisy_buf_free(&b);
		}
	}
}

static void test_rand_replays(void **state)
{
	(void)state;
	sisy_rand a, b;
	sisy_rand_seed(&a, 42);
	sisy_rand_seed(&b, 42);
	for (int i = 0; i < 100; i++)
		assert_true(sisy_rand_next(&a) == sisy_rand_next(&b));
	for (int i = 0; i < 1000; i++)
		assert_true(sisy_rand_below(&a, 7) < 7);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_varint_roundtrip),
	    cmocka_unit_test(test_varint_overflow),
	    cmocka_unit_test(test_fixed),
	    cmocka_unit_test(test_err),
	    cmocka_unit_test(test_buf),
	    cmocka_unit_test(test_buf_appends_at_every_fill),
	    cmocka_unit_test(test_rand_replays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
