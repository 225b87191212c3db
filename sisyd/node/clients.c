/* clients.c — the in-memory index of the exactly-once client table.
 *
 * The table itself is replicated state in the engine (namespace 'c' for a
 * client's header, 'r' for its recorded results, docs/node.md); this hash
 * map mirrors the headers so that the apply thread decides "new, duplicate
 * or stale" without a disk read in the common case (a sequence above
 * max_seq is new). Open addressing with linear probing and backward-shift
 * deletion; id 0 marks an empty slot; load factor at most 1/2. Bounded by
 * the max_clients option (the state machine evicts beyond it).
 *
 * Each client also holds its inline results (NODE_INLINE at most, ascending
 * seq, in a malloc'd array that grows to the depth the client pipelines)
 * and encodes/decodes its header record (layouts in node_int.h).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "node_int.h"

/* splitmix64's finaliser: every id bit reaches the low bits the mask keeps,
 * in a handful of instructions (the table is probed several times per
 * write; the layout is in-memory only, never replicated). */
static size_t slot_of(const node_clients *t, uint64_t id)
{
	id ^= id >> 30;
	id *= 0xbf58476d1ce4e5b9ull;
	id ^= id >> 27;
	id *= 0x94d049bb133111ebull;
	id ^= id >> 31;
	return (size_t)(id & (t->cap - 1));
}

void node_clients_free(node_clients *t)
{
	uint64_t moves = t->moves;
	node_clients_clear(t);
	free(t->slots);
	memset(t, 0, sizeof *t);
	t->moves = moves + 1;
}

void node_clients_clear(node_clients *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].inl);
	if (t->slots)
		memset(t->slots, 0, t->cap * sizeof *t->slots);
	t->n = 0;
	t->moves++;
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
	t->moves++;
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
	free(c->inl);
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
	t->moves++;
}

/* ---- inline results ------------------------------------------------------
 */

const sisy_node_result *node_client_res_find(const node_client *c, uint64_t seq)
{
	const node_res_ent *e = c->inl ? c->inl + c->inl_head : NULL;
	size_t lo = 0, hi = c->ninl;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < c->ninl && e[lo].seq == seq ? &e[lo].res : NULL;
}

/* Room for one more entry at the end of the array, when there is none
 * (out of line: node_client_res_add's common path stays small). */
static __attribute__((noinline)) sisy_err res_room(node_client *c)
{
	if (c->ninl < c->inl_cap &&
	    (c->ninl <= c->inl_cap / 2 || c->inl_cap >= NODE_INLINE)) {
		/* Slide down: amortised over the pops that freed the head;
		 * the array never grows past NODE_INLINE entries (at most
		 * NODE_INLINE - 1 are held when one is added). */
		memmove(c->inl, c->inl + c->inl_head, c->ninl * sizeof *c->inl);
		c->inl_head = 0;
		return SISY_OK;
	}
	uint32_t cap = c->inl_cap ? c->inl_cap * 2 : 2;
	node_res_ent *n = malloc(cap * sizeof *n);
	if (n == NULL)
		return SISY_E_NOMEM;
	if (c->ninl)
		memcpy(n, c->inl + c->inl_head, c->ninl * sizeof *n);
	free(c->inl);
	c->inl = n;
	c->inl_cap = cap;
	c->inl_head = 0;
	return SISY_OK;
}

sisy_err node_client_res_add(node_client *c, uint64_t seq,
			     const sisy_node_result *res)
{
	assert(c->ninl < NODE_INLINE); /* res_room relies on it */
	assert(node_client_res_find(c, seq) == NULL);
	sisy_err rc;
	if (c->inl_head + c->ninl >= c->inl_cap &&
	    (rc = res_room(c)) != SISY_OK)
		return rc;
	node_res_ent *e = c->inl + c->inl_head;
	size_t i = c->ninl;
	while (i > 0 && e[i - 1].seq > seq) /* out of order: rare */
		i--;
	if (i < c->ninl)
		memmove(e + i + 1, e + i, (c->ninl - i) * sizeof *e);
	e[i].seq = seq;
	e[i].res = *res;
	e[i].res.duplicate = false;
	c->ninl++;
	return SISY_OK;
}

bool node_client_res_pop(node_client *c, uint64_t bound, node_res_ent *out)
{
	if (c->ninl == 0 || c->inl[c->inl_head].seq >= bound)
		return false;
	*out = c->inl[c->inl_head];
	c->inl_head++;
	if (--c->ninl == 0)
		c->inl_head = 0;
	return true;
}

size_t node_client_res_drop(node_client *c, uint64_t bound)
{
	if (c->ninl == 0)
		return 0;
	const node_res_ent *e = c->inl + c->inl_head;
	size_t k = 0;
	while (k < c->ninl && e[k].seq < bound)
		k++;
	c->inl_head += (uint32_t)k;
	c->ninl -= (uint32_t)k;
	if (c->ninl == 0)
		c->inl_head = 0;
	return k;
}

/* ---- the header record ---------------------------------------------------
 */

#define ST_LONG 0x80u

static bool res_short(const node_client *c, const sisy_node_result *r)
{
	return r->failed_op == 0 && r->current_version == 0 &&
	       r->node_id == 0 && r->index <= c->last_index &&
	       (unsigned)r->status < 0x40u;
}

sisy_err node_client_encode(const node_client *c, sisy_buf *out)
{
	sisy_buf_clear(out);
	sisy_err rc = sisy_buf_reserve(out, NODE_CLIENT_REC_MAX);
	if (rc != SISY_OK)
		return rc;
	assert(c->ninl <= NODE_INLINE);
	uint8_t *p = out->data;
	sisy_put_u64(p, c->lowest);
	sisy_put_u64(p + 8, c->max_seq);
	sisy_put_u64(p + 16, c->last_index);
	p += NODE_CLIENT_REC;
	*p++ = 2;
	p += sisy_put_varint64(p, c->r_end > c->lowest ? c->r_end : 0);
	*p++ = (uint8_t)c->ninl;
	for (size_t i = c->ninl; i-- > 0;) {
		const node_res_ent *e = &c->inl[c->inl_head + i];
		assert(e->seq <= c->max_seq && e->seq >= c->lowest);
		p += sisy_put_varint64(p, c->max_seq - e->seq);
		if (res_short(c, &e->res)) {
			*p++ = (uint8_t)((unsigned)e->res.status |
					 (e->res.existed ? 0x40u : 0));
			p += sisy_put_varint64(p, c->last_index - e->res.index);
		} else {
			*p++ = ST_LONG;
			node_result_encode(&e->res, p);
			p += NODE_RESULT_LEN;
		}
	}
	out->len = (size_t)(p - out->data);
	assert(out->len <= NODE_CLIENT_REC_MAX);
	return SISY_OK;
}

sisy_err node_client_decode(node_client *c, const uint8_t *v, size_t len)
{
	assert(c->ninl == 0);
	if (len < NODE_CLIENT_REC)
		return SISY_E_CORRUPT;
	c->lowest = sisy_get_u64(v);
	c->max_seq = sisy_get_u64(v + 8);
	c->last_index = sisy_get_u64(v + 16);
	const uint8_t *p = v + NODE_CLIENT_REC, *end = v + len;
	sisy_node_result r;
	if (len == NODE_CLIENT_REC) { /* v1: every result is a record */
		c->r_end = c->max_seq + 1;
		return SISY_OK;
	}
	if (p[0] == 1) { /* v2: max_seq's result inline, the rest records */
		if (len != NODE_CLIENT_REC_RES ||
		    !node_result_decode(p, NODE_RESULT_LEN, &r))
			return SISY_E_CORRUPT;
		c->r_end = c->max_seq;
		return c->max_seq >= c->lowest
			   ? node_client_res_add(c, c->max_seq, &r)
			   : SISY_OK;
	}
	if (p[0] != 2 || end - p < 3)
		return SISY_E_CORRUPT;
	p++;
	uint64_t n = 0, prev = 0;
	if ((p = sisy_get_varint64(p, end, &c->r_end)) == NULL || p == end)
		return SISY_E_CORRUPT;
	n = *p++;
	if (n > NODE_INLINE)
		return SISY_E_CORRUPT;
	/* seqs descending: added at the front would be out of order, so
	 * collect the distances first (n is small) */
	uint64_t d[NODE_INLINE];
	sisy_node_result rs[NODE_INLINE];
	for (uint64_t i = 0; i < n; i++) {
		uint64_t back;
		if ((p = sisy_get_varint64(p, end, &d[i])) == NULL ||
		    p == end || (i > 0 && d[i] <= prev) ||
		    d[i] >= NODE_INLINE || d[i] > c->max_seq ||
		    c->max_seq - d[i] < c->lowest)
			return SISY_E_CORRUPT;
		prev = d[i];
		uint8_t st = *p++;
		if (st == ST_LONG) {
			if (end - p < NODE_RESULT_LEN ||
			    !node_result_decode(p, NODE_RESULT_LEN, &rs[i]))
				return SISY_E_CORRUPT;
			p += NODE_RESULT_LEN;
		} else if (st < ST_LONG && (st & 0x3fu) < SISY_ERR__COUNT) {
			if ((p = sisy_get_varint64(p, end, &back)) == NULL ||
			    back > c->last_index)
				return SISY_E_CORRUPT;
			memset(&rs[i], 0, sizeof rs[i]);
			rs[i].status = (sisy_err)(st & 0x3fu);
			rs[i].existed = (st & 0x40u) != 0;
			rs[i].index = c->last_index - back;
		} else {
			return SISY_E_CORRUPT;
		}
	}
	if (p != end)
		return SISY_E_CORRUPT;
	for (uint64_t i = n; i-- > 0;) {
		sisy_err rc = node_client_res_add(c, c->max_seq - d[i], &rs[i]);
		if (rc != SISY_OK)
			return rc;
	}
	return SISY_OK;
}
