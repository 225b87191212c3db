/* ldata.c — where the in-memory log keeps its entries' data (log.c).
 *
 * An entry's data used to be one malloc and one free per entry; at tens of
 * thousands of proposals a second that was ~370 instructions per entry on
 * the event loop. The log frees entries almost only in order (compaction at
 * the front, a conflicting suffix at the back), so data is carved out of
 * chunks instead: each piece is preceded by a pointer to its chunk, and a
 * chunk counts its live pieces. Pieces are bumped from the current chunk
 * (the tail); a chunk goes back to malloc when its last piece is dropped
 * and it is not the tail (one empty chunk is kept as a spare, so a steady
 * stream reuses two chunks). A piece of more than RAFT_LDATA_BIG bytes gets
 * a chunk of its own, freed with it.
 *
 * Layout of a chunk: header | { chunk pointer (8) | data, padded to 8 } ...
 * Invariants: live counts the pieces of the chunk not yet dropped; the tail
 * and the spare are NULL or RAFT_LDATA_CHUNK-sized; a chunk that is neither
 * the tail nor the spare has live > 0. Memory held: the live data, plus at
 * most two chunks (the tail's unused room and the spare), plus the dead
 * pieces of chunks that still hold a live one (bounded by the chunk size
 * times the chunks in use).
 */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

#define RAFT_LDATA_CHUNK (64u << 10)
#define RAFT_LDATA_BIG	 (RAFT_LDATA_CHUNK / 4)

struct raft_ldata_chunk {
	size_t live;
	size_t used, cap; /* bytes of mem[] handed out / available */
	alignas(8) uint8_t mem[];
};

typedef struct raft_ldata_chunk chunk;

static size_t piece_bytes(size_t len)
{
	return sizeof(chunk *) + ((len + 7) & ~(size_t)7);
}

static chunk *chunk_new(size_t cap)
{
	chunk *c = malloc(sizeof *c + cap);
	if (c != NULL)
		*c = (chunk){.live = 0, .used = 0, .cap = cap};
	return c;
}

/* A chunk with nothing live and not the tail: keep it as the spare, or
 * free it. */
static void chunk_retire(struct raft_ldata *d, chunk *c)
{
	assert(c->live == 0 && c != d->tail);
	if (d->spare == NULL && c->cap == RAFT_LDATA_CHUNK) {
		c->used = 0;
		d->spare = c;
	} else {
		free(c);
	}
}

/* The chunk to carve `need` bytes from, or NULL (out of memory). */
static chunk *room(struct raft_ldata *d, size_t need)
{
	chunk *c = d->tail;
	if (need > RAFT_LDATA_BIG)
		return chunk_new(need);
	if (c != NULL && c->cap - c->used >= need)
		return c;
	if (c != NULL && c->live == 0) {
		c->used = 0; /* nothing in it lives: start it over */
		return c;
	}
	/* A new tail; the old one goes when its last piece does. */
	if (d->spare != NULL) {
		c = d->spare;
		d->spare = NULL;
	} else if ((c = chunk_new(RAFT_LDATA_CHUNK)) == NULL) {
		return NULL;
	}
	d->tail = c;
	return c;
}

uint8_t *raft_ldata_put(struct raft_ldata *d, const uint8_t *data, size_t len)
{
	assert(len > 0);
	size_t need = piece_bytes(len);
	chunk *c = room(d, need);
	if (c == NULL)
		return NULL;
	uint8_t *p = c->mem + c->used;
	memcpy(p, &c, sizeof c);
	memcpy(p + sizeof c, data, len);
	c->used += need;
	c->live++;
	return p + sizeof c;
}

void raft_ldata_drop(struct raft_ldata *d, const uint8_t *data)
{
	chunk *c;
	assert(data != NULL);
	memcpy(&c, data - sizeof c, sizeof c);
	assert(c->live > 0);
	if (--c->live > 0)
		return;
	if (c == d->tail)
		c->used = 0; /* empty again: reuse it from the start */
	else
		chunk_retire(d, c);
}

void raft_ldata_free(struct raft_ldata *d)
{
	/* Every piece has been dropped (log.c drops its entries first). */
	assert(d->tail == NULL || d->tail->live == 0);
	free(d->tail);
	free(d->spare);
	d->tail = d->spare = NULL;
}
