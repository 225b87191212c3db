/* Tests sisyd/lsm/arena.c: alignment, no overlap between allocations, big
 * allocations, usage accounting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "rand.h"

static void test_alignment_and_no_overlap(void **state)
{
	(void)state;
	lsm_arena *a = lsm_arena_new();
	assert_non_null(a);
	sisy_rand r;
	sisy_rand_seed(&r, 42);
	enum { N = 5000 };
	uint8_t **ptrs = calloc(N, sizeof *ptrs);
	size_t *lens = calloc(N, sizeof *lens);
	size_t total = 0;
	for (int i = 0; i < N; i++) {
		/* mostly small, some bigger than a quarter block */
		lens[i] =
		    1 + (size_t)sisy_rand_below(&r, i % 50 == 0 ? 40000 : 300);
		ptrs[i] = lsm_arena_alloc(a, lens[i]);
		assert_non_null(ptrs[i]);
		assert_int_equal((uintptr_t)ptrs[i] % LSM_ARENA_ALIGN, 0);
		memset(ptrs[i], i & 0xff, lens[i]);
		total += lens[i];
	}
	/* Had any two allocations overlapped, a later memset would have
	 * overwritten an earlier one's pattern. */
	for (int i = 0; i < N; i++)
		for (size_t j = 0; j < lens[i]; j++)
			assert_int_equal(ptrs[i][j], i & 0xff);
	assert_true(lsm_arena_usage(a) >= total);
	/* Bounded waste: block tails and alignment, not a blow-up. */
	assert_true(lsm_arena_usage(a) < total * 2 + 4 * LSM_ARENA_BLOCK);
	free(ptrs);
	free(lens);
	lsm_arena_free(a);
}

static void test_usage_grows_by_blocks(void **state)
{
	(void)state;
	lsm_arena *a = lsm_arena_new();
	assert_int_equal(lsm_arena_usage(a), 0);
	assert_non_null(lsm_arena_alloc(a, 8));
	size_t one = lsm_arena_usage(a);
	assert_true(one >= LSM_ARENA_BLOCK);
	/* Small allocations come from the same block... */
	for (int i = 0; i < 100; i++)
		assert_non_null(lsm_arena_alloc(a, 16));
	assert_int_equal(lsm_arena_usage(a), one);
	/* ...a big one gets a block of its own, sized to it. */
	assert_non_null(lsm_arena_alloc(a, 3 * LSM_ARENA_BLOCK));
	size_t two = lsm_arena_usage(a);
	assert_true(two >= one + 3 * LSM_ARENA_BLOCK);
	assert_true(two < one + 4 * LSM_ARENA_BLOCK);
	/* and the current small block is still used afterwards */
	assert_non_null(lsm_arena_alloc(a, 16));
	assert_int_equal(lsm_arena_usage(a), two);
	lsm_arena_free(a);
	lsm_arena_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alignment_and_no_overlap),
	    cmocka_unit_test(test_usage_grows_by_blocks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
