/* Tests sisyd/lsm/dbformat.h: the word-at-a-time user-key comparison
 * (lsm_user_cmp) and the internal-key order built on it agree with the
 * plain definitions (memcmp, shorter first; then the trailer descending) on
 * keys made to trip a word compare: every length around the word size,
 * long shared prefixes, and bytes whose sign or order a wrong byte swap
 * would flip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "dbformat.h"
#include "lsm_test_util.h"
#include "rand.h"

static int sign(int c)
{
	return (c > 0) - (c < 0);
}

/* A key of len bytes from a small alphabet (many equal bytes, so many long
 * common prefixes), extreme values included. */
static void random_key(sisy_rand *r, uint8_t *k, size_t len)
{
	static const uint8_t alpha[] = {0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff};
	for (size_t i = 0; i < len; i++)
		k[i] = alpha[sisy_rand_below(r, sizeof alpha)];
}

static void test_user_cmp_matches_memcmp_order(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, tu_seed("test_user_cmp_matches_memcmp_order"));
	uint8_t a[40], b[40];
	for (int t = 0; t < 200000; t++) {
		size_t alen = sisy_rand_below(&r, sizeof a + 1);
		size_t blen = sisy_rand_below(&r, sizeof b + 1);
		random_key(&r, a, alen);
		/* b: often a copy of a's prefix with one change, or longer */
		size_t common = alen < blen ? alen : blen;
		random_key(&r, b, blen);
		if (sisy_rand_below(&r, 2)) {
			memcpy(b, a, common);
			if (common > 0 && sisy_rand_below(&r, 2))
				b[sisy_rand_below(&r, common)] ^=
				    (uint8_t)(1u << sisy_rand_below(&r, 8));
		}
		int want = sign(sisy_slice_cmp(sisy_slice_make(a, alen),
					       sisy_slice_make(b, blen)));
		assert_int_equal(sign(lsm_user_cmp(a, alen, b, blen)), want);
		assert_int_equal(sign(lsm_user_cmp(b, blen, a, alen)), -want);
	}
}

static void test_ikey_cmp_orders_user_then_newest_first(void **state)
{
	(void)state;
	sisy_buf x = {0}, y = {0};
	/* equal user keys: the higher sequence number first */
	assert_int_equal(
	    lsm_ikey(&x, sisy_slice_str("0123456789abcdef"), 9, LSM_TYPE_VALUE),
	    SISY_OK);
	assert_int_equal(
	    lsm_ikey(&y, sisy_slice_str("0123456789abcdef"), 8, LSM_TYPE_VALUE),
	    SISY_OK);
	assert_true(lsm_ikey_cmp(sisy_buf_slice(&x), sisy_buf_slice(&y)) < 0);
	assert_true(lsm_ikey_cmp(sisy_buf_slice(&y), sisy_buf_slice(&x)) > 0);
	assert_int_equal(lsm_ikey_cmp(sisy_buf_slice(&x), sisy_buf_slice(&x)),
			 0);
	/* the user key decides before the trailer, also when one user key
	 * is a prefix of the other across a word boundary */
	assert_int_equal(
	    lsm_ikey(&x, sisy_slice_str("0123456789abcdef"), 1, LSM_TYPE_VALUE),
	    SISY_OK);
	assert_int_equal(lsm_ikey(&y, sisy_slice_str("0123456789abcdef0"), 9,
				  LSM_TYPE_VALUE),
			 SISY_OK);
	assert_true(lsm_ikey_cmp(sisy_buf_slice(&x), sisy_buf_slice(&y)) < 0);
	/* byte 0x80 sorts after 0x7f (unsigned), in the first word */
	assert_int_equal(
	    lsm_ikey(&x, sisy_slice_make("\x7f", 1), 1, LSM_TYPE_VALUE),
	    SISY_OK);
	assert_int_equal(
	    lsm_ikey(&y, sisy_slice_make("\x80", 1), 9, LSM_TYPE_VALUE),
	    SISY_OK);
	assert_true(lsm_ikey_cmp(sisy_buf_slice(&x), sisy_buf_slice(&y)) < 0);
	sisy_buf_free(&x);
	sisy_buf_free(&y);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_user_cmp_matches_memcmp_order),
	    cmocka_unit_test(test_ikey_cmp_orders_user_then_newest_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
