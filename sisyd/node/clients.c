/* clients.c — the in-memory index of the exactly-once client table.
 *
 * The table itself is replicated state in the engine (namespace 'c' for a
 * client's header, 'r' for its recorded results, docs/node.md); this hash
 * map mirrors the headers so that the apply thread decides "new, duplicate
 * or stale" without a disk read in the common case (a sequence above
 * max_seq is new). Open addressing with linear probing and backward-shift
 * deletion; id 0 marks an empty slot; load factor at most 1/2. Bounded by
 * the max_clients option (the state machine evicts beyond it).
 */
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "node_int.h"

static size_t slot_of(const node_clients *t, uint64_t id)
{
	uint8_t b[8];
	memcpy(b, &id, 8);
	return (size_t)(sisy_hash64(b, 8, 0) & (t->cap - 1));
}

void node_clients_free(node_clients *t)
{
	free(t->slots);
	memset(t, 0, sizeof *t);
}

void node_clients_clear(node_clients *t)
{
	if (t->slots)
		memset(t->slots, 0, t->cap * sizeof *t->slots);
	t->n = 0;
}

node_client *node_clients_find(node_clients *t, uint64_t id)
{
	if (t->cap == 0 || id == 0)
		return NULL;
	for (size_t i = slot_of(t, id);; i = (i + 1) & (t->cap - 1)) {
		if (t->slots[i].id == id)
			return &t->slots[i];
		if (t->slots[i].id == 0)
			return NULL;
	}
}

static bool grow(node_clients *t)
{
	size_t cap = t->cap ? t->cap * 2 : 64;
	node_client *old = t->slots;
	size_t oldcap = t->cap;
	node_client *s = calloc(cap, sizeof *s);
	if (s == NULL)
		return false;
	t->slots = s;
	t->cap = cap;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].id == 0)
			continue;
		size_t j = slot_of(t, old[i].id);
		while (s[j].id != 0)
			j = (j + 1) & (cap - 1);
		s[j] = old[i];
	}
	free(old);
	return true;
}

node_client *node_clients_add(node_clients *t, uint64_t id)
{
	node_client *c = node_clients_find(t, id);
	if (c != NULL)
		return c;
	if ((t->n + 1) * 2 > t->cap && !grow(t))
		return NULL;
	size_t i = slot_of(t, id);
	while (t->slots[i].id != 0)
		i = (i + 1) & (t->cap - 1);
	memset(&t->slots[i], 0, sizeof t->slots[i]);
	t->slots[i].id = id;
	t->n++;
	return &t->slots[i];
}

void node_clients_del(node_clients *t, uint64_t id)
{
	node_client *c = node_clients_find(t, id);
	if (c == NULL)
		return;
	size_t mask = t->cap - 1;
	size_t i = (size_t)(c - t->slots);
	/* Backward shift: pull later members of the run into the hole when
	 * their home slot does not lie cyclically in (hole, j]. */
	for (size_t j = (i + 1) & mask; t->slots[j].id != 0;
	     j = (j + 1) & mask) {
		size_t home = slot_of(t, t->slots[j].id);
		bool stays =
		    i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (stays)
			continue;
		t->slots[i] = t->slots[j];
		i = j;
	}
	memset(&t->slots[i], 0, sizeof t->slots[i]);
	t->n--;
}
