/* block.h — the sorted, prefix-compressed blocks SSTables are made of (data
 * blocks and the index block). Internal to the table layer.
 *
 * BLOCK LAYOUT (all integers little-endian, varints LEB128)
 *   entry*      shared:varint32 unshared:varint32 vlen:varint32
 *               key_delta[unshared] value[vlen]
 *   restart*    u32 offset of an entry whose shared == 0
 *   nrestarts   u32 (>= 1)
 * An entry's key is the first `shared` bytes of the previous entry's key
 * followed by key_delta. Every `interval`-th entry is a restart point: it
 * stores its whole key (shared = 0) and its offset is listed, so a seek
 * binary-searches the restarts and then scans at most interval-1 entries.
 *
 * Keys are internal keys (dbformat.h), compared with lsm_ikey_cmp, and at
 * least 8 bytes long: the decoder rejects anything shorter, so a damaged
 * block can never make the comparator read out of bounds.
 *
 * Every decoded length and offset is checked against the block's bounds;
 * a block that does not decode makes the cursor invalid with status
 * SISY_E_CORRUPT (the table layer adds the file name and offset).
 */
#ifndef SISY_LSM_BLOCK_H
#define SISY_LSM_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

/* A block is at most this big (it holds at most one entry past the target
 * size, and an entry is bounded by the engine's key and value limits). */
#define LSM_BLOCK_MAX_SIZE (64u * 1024 * 1024)

/* --- building ------------------------------------------------------------ */

typedef struct lsm_block_builder {
	sisy_buf buf;	   /* entries, then (after finish) the restarts */
	sisy_buf restarts; /* u32 offsets */
	sisy_buf last_key; /* survives resets: see lsm_block_builder_last_key */
	int interval;
	int counter; /* entries since the last restart */
	uint32_t entries;
	bool finished;
} lsm_block_builder;

void lsm_block_builder_init(lsm_block_builder *b, int restart_interval);
void lsm_block_builder_free(lsm_block_builder *b);
/* Empties the builder for the next block (keeps its memory). */
void lsm_block_builder_reset(lsm_block_builder *b);
/* Keys must strictly increase (lsm_ikey_cmp) and be >= 8 bytes. */
sisy_err lsm_block_builder_add(lsm_block_builder *b, sisy_slice key,
			       sisy_slice value);
/* The size the block would have if finished now. */
size_t lsm_block_builder_estimate(const lsm_block_builder *b);
static inline bool lsm_block_builder_empty(const lsm_block_builder *b)
{
	return b->entries == 0;
}
/* The key added last, kept across resets (the last block's last key after
 * a reset) until the next add; empty before the first add. */
static inline sisy_slice lsm_block_builder_last_key(const lsm_block_builder *b)
{
	return sisy_buf_slice(&b->last_key);
}
/* Appends the restarts; *out borrows the builder's bytes until reset. */
sisy_err lsm_block_builder_finish(lsm_block_builder *b, sisy_slice *out);

/* --- reading ------------------------------------------------------------- */

typedef struct lsm_block {
	const uint8_t *data;
	uint32_t data_end;  /* where the restart array starts */
	uint32_t nrestarts; /* >= 1 */
} lsm_block;

/* Checks the restart array's bounds; SISY_E_CORRUPT if it is malformed. */
sisy_err lsm_block_parse(lsm_block *b, const uint8_t *data, size_t size);

/* Keys up to this long are decoded without touching the heap. */
#define LSM_BLOCK_INLINE_KEY 120

/* A position in a block, forward only. Lives on the stack or inside an
 * iterator: no allocation unless a key is longer than LSM_BLOCK_INLINE_KEY.
 * The block's bytes must outlive the cursor's use of them. Not copyable
 * (call lsm_block_cursor_init again instead). */
typedef struct lsm_block_cursor {
	lsm_block blk;
	uint32_t cur;  /* offset of the current entry; data_end: invalid */
	uint32_t next; /* offset just past the current entry */
	sisy_slice value;
	size_t klen;
	uint8_t *kheap; /* key storage when it outgrows kinl */
	size_t kcap;
	sisy_err status;
	uint8_t kinl[LSM_BLOCK_INLINE_KEY];
} lsm_block_cursor;

/* Points the cursor at block b (not positioned: invalid until a seek). */
void lsm_block_cursor_init(lsm_block_cursor *c, const lsm_block *b);
/* Frees the cursor's heap key, if any; the cursor may be re-initialised. */
void lsm_block_cursor_free(lsm_block_cursor *c);
void lsm_block_cursor_seek_first(lsm_block_cursor *c);
/* First entry with key >= target (lsm_ikey_cmp; target.len >= 8). */
void lsm_block_cursor_seek(lsm_block_cursor *c, sisy_slice target);
void lsm_block_cursor_next(lsm_block_cursor *c);

static inline bool lsm_block_cursor_valid(const lsm_block_cursor *c)
{
	return c->cur < c->blk.data_end;
}
static inline sisy_slice lsm_block_cursor_key(const lsm_block_cursor *c)
{
	return sisy_slice_make(c->kheap != NULL ? c->kheap : c->kinl, c->klen);
}
static inline sisy_slice lsm_block_cursor_value(const lsm_block_cursor *c)
{
	return c->value;
}
/* SISY_OK, SISY_E_CORRUPT (the block does not decode) or SISY_E_NOMEM. */
static inline sisy_err lsm_block_cursor_status(const lsm_block_cursor *c)
{
	return c->status;
}

#endif
