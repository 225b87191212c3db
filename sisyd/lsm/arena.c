/* arena.c — block bump allocator (see arena.h).
 *
 * Small requests come from the current LSM_ARENA_BLOCK-byte block; a request
 * larger than a quarter block gets a block of its own, so the tail of the
 * current block is not wasted on it. Every block starts with a header that
 * links it into a list freed by lsm_arena_free(). */
#include "arena.h"

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct arena_block {
	struct arena_block *next;
	alignas(LSM_ARENA_ALIGN) unsigned char data[];
} arena_block;

struct lsm_arena {
	unsigned char *ptr;  /* next free byte of the current block */
	size_t left;	     /* bytes left in the current block */
	arena_block *blocks; /* every block, newest first */
	_Atomic size_t usage;
	_Atomic size_t allocated;
};

lsm_arena *lsm_arena_new(void)
{
	return calloc(1, sizeof(lsm_arena));
}

void lsm_arena_free(lsm_arena *a)
{
	if (a == NULL)
		return;
	arena_block *b = a->blocks;
	while (b != NULL) {
		arena_block *next = b->next;
		free(b);
		b = next;
	}
	free(a);
}

static unsigned char *arena_new_block(lsm_arena *a, size_t bytes)
{
	arena_block *b = malloc(sizeof(arena_block) + bytes);
	if (b == NULL)
		return NULL;
	b->next = a->blocks;
	a->blocks = b;
	atomic_fetch_add_explicit(&a->usage, sizeof(arena_block) + bytes,
				  memory_order_relaxed);
	return b->data;
}

void *lsm_arena_alloc(lsm_arena *a, size_t n)
{
	assert(n > 0);
	if (n > SIZE_MAX - LSM_ARENA_ALIGN)
		return NULL;
	n = (n + LSM_ARENA_ALIGN - 1) & ~(size_t)(LSM_ARENA_ALIGN - 1);
	atomic_fetch_add_explicit(&a->allocated, n, memory_order_relaxed);
	if (n <= a->left) {
		unsigned char *p = a->ptr;
		a->ptr += n;
		a->left -= n;
		return p;
	}
	if (n > LSM_ARENA_BLOCK / 4)
		return arena_new_block(a, n);
	unsigned char *p = arena_new_block(a, LSM_ARENA_BLOCK);
	if (p == NULL)
		return NULL;
	a->ptr = p + n;
	a->left = LSM_ARENA_BLOCK - n;
	return p;
}

size_t lsm_arena_usage(const lsm_arena *a)
{
	return atomic_load_explicit(&a->usage, memory_order_relaxed);
}

size_t lsm_arena_allocated(const lsm_arena *a)
{
	return atomic_load_explicit(&a->allocated, memory_order_relaxed);
}
