/* Tests sisyd/server/ratelimit.c: free failures, doubling delays, the cap,
 * per-source and per-user keys, forgetting after a quiet minute. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "srv_int.h"

static void test_delays(void **state)
{
	(void)state;
	ratelimit *rl = ratelimit_new(2, 100, 1000);
	uint64_t t = 1000000;
	assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "bob", t), 0);
	assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "bob", t), 0);
	assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "bob", t), 100);
	assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "bob", t), 200);
	assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "bob", t), 400);
	assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "bob", t), 800);
	assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "bob", t), 1000);
	for (int i = 0; i < 100; i++)
		assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "bob", t),
				 1000);
	/* The user's count follows it to another address... */
	assert_int_equal(ratelimit_fail(rl, "10.0.0.2", "bob", t), 1000);
	/* ...and the address's to another user. */
	assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "eve", t), 1000);
	/* Fresh address and user: free again. */
	assert_int_equal(ratelimit_fail(rl, "10.0.0.3", "carol", t), 0);
	/* A quiet minute forgets. */
	assert_int_equal(ratelimit_fail(rl, "10.0.0.1", "bob", t + 61000), 0);
	ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_delays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
