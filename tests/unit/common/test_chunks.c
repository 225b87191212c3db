/* Tests libcommon/chunks.c: blocks carved from counted chunks keep their
 * bytes whatever the order they are dropped in, are 8-byte aligned, and
 * everything goes back to malloc (ASan/valgrind would report a leak). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "chunks.h"
#include "rand.h"

#define LIVE 600

typedef struct blk {
	uint8_t *p;
	size_t len;
	uint8_t fill;
} blk;

static void check(const blk *b)
{
	assert_int_equal((uintptr_t)b->p % 8, 0);
	for (size_t j = 0; j < b->len; j++)
		assert_int_equal(b->p[j], (uint8_t)(b->fill + j));
}

static size_t pick_len(sisy_rand *r)
{
	switch (sisy_rand_below(r, 20)) {
	case 0:
		return SISY_CHUNKS_BIG + 1 + (size_t)sisy_rand_below(r, 40000);
	case 1:
		return SISY_CHUNKS_BIG - (size_t)sisy_rand_below(r, 8);
	default:
		return 1 + (size_t)sisy_rand_below(r, 700);
	}
}

/* Random allocations, each dropped from the front, the back or the middle
 * of the live set; every live block is checked after each step. */
static void test_blocks_keep_their_bytes(void **state)
{
	(void)state;
	static blk live[LIVE];
	size_t n = 0;
	sisy_chunks c = {0};
	sisy_rand r;
	sisy_rand_seed(&r, 11);
	for (int step = 0; step < 20000; step++) {
		if (n < LIVE && sisy_rand_below(&r, 100) < 55) {
			blk *b = &live[n++];
			b->len = pick_len(&r);
			b->fill = (uint8_t)sisy_rand_next(&r);
			b->p = sisy_rand_below(&r, 30) == 0
				   ? sisy_chunks_alloc_own(b->len)
				   : sisy_chunks_alloc(&c, b->len);
			assert_non_null(b->p);
			for (size_t j = 0; j < b->len; j++)
				b->p[j] = (uint8_t)(b->fill + j);
		} else if (n > 0) {
			uint64_t how = sisy_rand_below(&r, 4);
			size_t k = how == 0   ? 0
				   : how == 1 ? n - 1
					      : (size_t)sisy_rand_below(&r, n);
			sisy_chunks_drop(&c, live[k].p);
			memmove(&live[k], &live[k + 1],
				(n - k - 1) * sizeof live[0]);
			n--;
		}
		if (step % 97 == 0)
			for (size_t k = 0; k < n; k++)
				check(&live[k]);
	}
	for (size_t k = 0; k < n; k++) {
		check(&live[k]);
		sisy_chunks_drop(&c, live[k].p);
	}
	sisy_chunks_free(&c);
	assert_null(c.tail);
	assert_null(c.spare);
}

/* A steady first-in first-out stream reuses its chunks: the tail and the
 * spare take turns, with no chunk of its own per block. */
static void test_fifo_reuses_two_chunks(void **state)
{
	(void)state;
	static uint8_t *q[1000];
	sisy_chunks c = {0};
	size_t head = 0, tail = 0;
	void *seen[2] = {NULL, NULL};
	size_t distinct = 0;
	for (int i = 0; i < 200000; i++) {
		q[tail++ % 1000] = sisy_chunks_alloc(&c, 100);
		assert_non_null(q[(tail - 1) % 1000]);
		if (tail - head == 200)
			sisy_chunks_drop(&c, q[head++ % 1000]);
		if (c.tail != seen[0] && c.tail != seen[1]) {
			seen[distinct++ % 2] = c.tail;
		}
	}
	while (head < tail)
		sisy_chunks_drop(&c, q[head++ % 1000]);
	/* 200 live blocks of ~112 bytes fit in one 64 KiB chunk: the stream
	 * needs only two (the tail, and the one it is leaving). */
	assert_true(distinct <= 3);
	sisy_chunks_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blocks_keep_their_bytes),
	    cmocka_unit_test(test_fifo_reuses_two_chunks),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
