/* chunks.c — blocks carved from counted chunks (see chunks.h).
 *
 * Layout of a chunk: header | { chunk pointer (8) | block, padded to 8 }...
 * Invariants: live counts the chunk's blocks not yet dropped; the tail and
 * the spare are NULL or SISY_CHUNKS_BYTES chunks; a chunk that is neither
 * the tail nor the spare has live > 0 (it is freed when live reaches 0);
 * an own chunk holds one block and is freed with it.
 */
#include "chunks.h"

#include <assert.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sisy_chunk {
	size_t live;
	bool own; /* one block's own chunk: never the tail nor the spare */
	size_t used, cap; /* bytes of mem[] handed out / available */
	alignas(8) uint8_t mem[];
};

typedef struct sisy_chunk chunk;

static size_t block_bytes(size_t len)
{
	return sizeof(chunk *) + ((len + 7) & ~(size_t)7);
}

static chunk *chunk_new(size_t cap, bool own)
{
	chunk *c = malloc(sizeof *c + cap);
	if (c != NULL)
		*c = (chunk){.live = 0, .own = own, .used = 0, .cap = cap};
	return c;
}

static void *carve(chunk *c, size_t need)
{
	uint8_t *p = c->mem + c->used;
	assert(c->cap - c->used >= need);
	memcpy(p, &c, sizeof c);
	c->used += need;
	c->live++;
	return p + sizeof c;
}

void *sisy_chunks_alloc_own(size_t len)
{
	assert(len > 0);
	if (len > SIZE_MAX / 2)
		return NULL;
	size_t need = block_bytes(len);
	chunk *c = chunk_new(need, true);
	return c ? carve(c, need) : NULL;
}

void *sisy_chunks_alloc(sisy_chunks *d, size_t len)
{
	assert(len > 0);
	if (len > SISY_CHUNKS_BIG)
		return sisy_chunks_alloc_own(len);
	size_t need = block_bytes(len);
	chunk *c = d->tail;
	if (c != NULL && c->cap - c->used >= need)
		return carve(c, need);
	if (c != NULL && c->live == 0) {
		c->used = 0; /* nothing in it lives: start it over */
		return carve(c, need);
	}
	/* A new tail; the old one goes when its last block does. */
	if (d->spare != NULL) {
		c = d->spare;
		d->spare = NULL;
	} else if ((c = chunk_new(SISY_CHUNKS_BYTES, false)) == NULL) {
		return NULL;
	}
	d->tail = c;
	return carve(c, need);
}

void sisy_chunks_drop(sisy_chunks *d, void *block)
{
	chunk *c;
	assert(block != NULL);
	memcpy(&c, (uint8_t *)block - sizeof c, sizeof c);
	assert(c->live > 0);
	if (c->own) { /* touches nothing shared (chunks.h) */
		assert(c->live == 1);
		free(c);
		return;
	}
	if (--c->live > 0)
		return;
	if (c == d->tail) {
		c->used = 0; /* empty again: carve it from the start */
	} else if (d->spare == NULL) {
		c->used = 0;
		d->spare = c;
	} else {
		free(c);
	}
}

void sisy_chunks_free(sisy_chunks *d)
{
	assert(d->tail == NULL || d->tail->live == 0);
	free(d->tail);
	free(d->spare);
	d->tail = d->spare = NULL;
}
