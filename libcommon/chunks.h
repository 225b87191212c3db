/* chunks.h — small blocks carved from shared chunks that count their live
 * blocks, for data freed mostly in the order it was allocated (a log's
 * entries: compacted at the front, truncated at the back).
 *
 * A malloc and a free per block cost ~370 instructions a pair on glibc;
 * carving is a bump and a counter. Each block is preceded by a pointer to
 * its chunk; a chunk goes back to malloc when its last block is dropped and
 * it is not the one being carved (the tail); one empty chunk is kept as a
 * spare, so a steady stream reuses two chunks. A block of more than
 * SISY_CHUNKS_BIG bytes gets a chunk of its own, freed with it.
 *
 * Not thread-safe: the owner serializes every call (a lock, or one thread).
 * Memory held: the live blocks, the tail's unused room, the spare, and the
 * dead blocks of chunks that still hold a live one (order of allocation ~
 * order of freeing keeps these few). Blocks are 8-byte aligned.
 */
#ifndef SISY_CHUNKS_H
#define SISY_CHUNKS_H

#include <stddef.h>

#define SISY_CHUNKS_BYTES (64u << 10)
#define SISY_CHUNKS_BIG	  (SISY_CHUNKS_BYTES / 4)

struct sisy_chunk;
typedef struct sisy_chunks {
	struct sisy_chunk *tail;  /* blocks are carved from here */
	struct sisy_chunk *spare; /* an empty chunk kept for reuse */
} sisy_chunks;

/* len (> 0) bytes, or NULL when out of memory. */
void *sisy_chunks_alloc(sisy_chunks *c, size_t len);
/* A block in a chunk of its own, touching no sisy_chunks: callable without
 * the owner's serialization (a big payload copied outside a lock), and so
 * is sisy_chunks_drop of such a block. NULL when out of memory. */
void *sisy_chunks_alloc_own(size_t len);
/* Gives back a block from sisy_chunks_alloc on this c, or from
 * sisy_chunks_alloc_own. */
void sisy_chunks_drop(sisy_chunks *c, void *block);
/* Frees the chunks; every block must have been dropped. */
void sisy_chunks_free(sisy_chunks *c);

#endif
