/* bump.h — a bump allocator over a fixed buffer that lives inside the
 * object it serves (a client's reply, a server's request), spilling to
 * malloc'd chunks once the buffer is full: a usual message is unpacked
 * with no allocation of its own and freed with its object.
 *
 * Invariants: *used <= cap; every block is 16-byte aligned (the buffer
 * must be); chunks form a list owned by the object, released only by
 * sisy_bump_free_chunks. Nothing is freed one block at a time.
 */
#ifndef SISY_BUMP_H
#define SISY_BUMP_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

typedef struct sisy_bump_chunk {
	struct sisy_bump_chunk *next;
	_Alignas(16) uint8_t data[];
} sisy_bump_chunk;

/* n bytes from base[*used, cap), else a new chunk; NULL when out of
 * memory. */
static inline void *sisy_bump_alloc(uint8_t *base, size_t cap, size_t *used,
				    sisy_bump_chunk **chunks, size_t n)
{
	size_t need = (n + 15) & ~(size_t)15;
	if (need >= n && *used + need <= cap) {
		void *p = base + *used;
		*used += need;
		return p;
	}
	if (n > SIZE_MAX - sizeof(sisy_bump_chunk))
		return NULL;
	sisy_bump_chunk *k = malloc(sizeof *k + n);
	if (k == NULL)
		return NULL;
	k->next = *chunks;
	*chunks = k;
	return k->data;
}

static inline void sisy_bump_free_chunks(sisy_bump_chunk **chunks)
{
	while (*chunks) {
		sisy_bump_chunk *k = *chunks;
		*chunks = k->next;
		free(k);
	}
}

#endif
