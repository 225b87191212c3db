/* lincheck_search.c — the per-key linearizability search (Wing-Gong with
 * Lowe's memoization, as Porcupine does it).
 *
 * The operations become events, sorted by time: a call event per operation
 * and a return event per operation with a definite outcome (an unknown one
 * never returns). Ties put calls first, so equal times count as concurrent.
 * The events form a doubly-linked list. Walking it from the front, a call
 * event is a candidate linearization point: if the operation is legal in the
 * current state and the pair (set of linearized operations, new state) has
 * not been explored before, it is linearized: its call and return events are
 * unlinked (dancing links; relinked in LIFO order on backtrack) and the walk
 * restarts from the front. Meeting a return event means that operation had
 * to take effect by now but none of the orders tried allowed it: backtrack.
 * The search succeeds once no return event is left (every definite
 * operation is linearized; unknown ones may stay out).
 *
 * Invariants: the stack holds the linearized calls in order, with the state
 * before each; `lin` is the bitset of linearized operations (bit i = op i).
 * Every step consumes budget; memo growth is capped by bytes. A pair found
 * in the memo has already been explored to a dead end, so it is skipped.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck_int.h"

typedef struct ev {
	struct ev *prev, *next;
	struct ev *ret; /* a call's return event, NULL if none */
	size_t op;
	int is_call;
} ev;

typedef struct frame {
	ev *call;
	uint32_t state;
} frame;

/* Memo: open addressing over entry numbers; entry i occupies `words`+1
 * uint64s in `keys` (the bitset, then the state). */
typedef struct memo {
	uint32_t *slots; /* entry+1, 0 = empty */
	size_t nslots;
	uint64_t *keys;
	size_t nkeys, capkeys;
	size_t words;
	size_t max_memory;
} memo;

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static size_t memo_bytes(const memo *m, size_t nslots, size_t capkeys)
{
	return nslots * sizeof(uint32_t) + capkeys * (m->words + 1) * 8;
}

static uint64_t memo_hash(const memo *m, const uint64_t *lin, uint32_t state)
{
	uint64_t h = 0;
	for (size_t w = 0; w < m->words; w++)
		h = mix64(h ^ lin[w]);
	return mix64(h ^ state);
}

static int memo_grow_slots(memo *m)
{
	size_t ns = m->nslots ? m->nslots * 2 : 1024;
	if (memo_bytes(m, ns, m->capkeys) > m->max_memory || ns > UINT32_MAX)
		return -1;
	uint32_t *s = calloc(ns, sizeof *s);
	if (!s)
		return -1;
	for (size_t i = 0; i < m->nslots; i++) {
		uint32_t e = m->slots[i];
		if (!e)
			continue;
		const uint64_t *k = m->keys + (size_t)(e - 1) * (m->words + 1);
		size_t j = memo_hash(m, k, (uint32_t)k[m->words]) & (ns - 1);
		while (s[j])
			j = (j + 1) & (ns - 1);
		s[j] = e;
	}
	free(m->slots);
	m->slots = s;
	m->nslots = ns;
	return 0;
}

/* Inserts (lin, state); 1 if inserted, 0 if present, -1 on exhaustion. */
static int memo_insert(memo *m, const uint64_t *lin, uint32_t state)
{
	if ((m->nkeys + 1) * 2 > m->nslots && memo_grow_slots(m) != 0)
		return -1;
	size_t stride = m->words + 1;
	size_t j = memo_hash(m, lin, state) & (m->nslots - 1);
	while (m->slots[j]) {
		const uint64_t *k =
		    m->keys + (size_t)(m->slots[j] - 1) * stride;
		if (k[m->words] == state &&
		    memcmp(k, lin, m->words * sizeof *lin) == 0)
			return 0;
		j = (j + 1) & (m->nslots - 1);
	}
	if (m->nkeys == m->capkeys) {
		size_t nc = m->capkeys ? m->capkeys * 2 : 1024;
		if (memo_bytes(m, m->nslots, nc) > m->max_memory)
			return -1;
		uint64_t *k = realloc(m->keys, nc * stride * sizeof *k);
		if (!k)
			return -1;
		m->keys = k;
		m->capkeys = nc;
	}
	uint64_t *dst = m->keys + m->nkeys * stride;
	memcpy(dst, lin, m->words * sizeof *lin);
	dst[m->words] = state;
	m->nkeys++;
	m->slots[j] = (uint32_t)m->nkeys;
	return 1;
}

/* Applies op to state: 1 and *next if legal, 0 if not. */
static int step(const lincheck_kop *op, uint32_t state, uint32_t *next)
{
	switch (op->kind) {
	case SISY_LINCHECK_PUT:
		*next = op->value;
		return 1;
	case SISY_LINCHECK_DEL:
		*next = 0;
		return 1;
	case SISY_LINCHECK_GET:
		*next = state;
		return state == op->value;
	case SISY_LINCHECK_CAS:
		if (op->unknown) {
			*next = state == op->expect ? op->value : state;
			return 1;
		}
		if (op->swapped) {
			*next = op->value;
			return state == op->expect;
		}
		*next = state;
		return state != op->expect;
	}
	assert(!"bad op kind");
	return 0;
}

typedef struct sort_key {
	int64_t t;
	int is_ret;
	size_t op;
} sort_key;

static int sort_key_cmp(const void *a, const void *b)
{
	const sort_key *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	if (x->is_ret != y->is_ret)
		return x->is_ret - y->is_ret;
	return x->op < y->op ? -1 : x->op > y->op;
}

/* Builds the event list (sentinel head) in `evs` (2n slots). */
static int build_events(const lincheck_kop *ops, size_t n, ev *evs, ev *head)
{
	sort_key *keys = malloc(2 * n * sizeof *keys);
	if (!keys)
		return -1;
	size_t nk = 0;
	for (size_t i = 0; i < n; i++) {
		keys[nk++] = (sort_key){ops[i].call, 0, i};
		if (!ops[i].unknown)
			keys[nk++] = (sort_key){ops[i].ret, 1, i};
	}
	qsort(keys, nk, sizeof *keys, sort_key_cmp);
	ev **call_of = calloc(n, sizeof *call_of);
	if (!call_of) {
		free(keys);
		return -1;
	}
	ev *prev = head;
	head->prev = NULL;
	for (size_t k = 0; k < nk; k++) {
		ev *e = &evs[k];
		e->op = keys[k].op;
		e->is_call = !keys[k].is_ret;
		e->ret = NULL;
		e->prev = prev;
		e->next = NULL;
		prev->next = e;
		prev = e;
		if (e->is_call) {
			call_of[e->op] = e;
		} else {
			assert(call_of[e->op] != NULL); /* call <= ret */
			call_of[e->op]->ret = e;
		}
	}
	free(call_of);
	free(keys);
	return 0;
}

static void unlink_ev(ev *e)
{
	e->prev->next = e->next;
	if (e->next)
		e->next->prev = e->prev;
}

static void relink_ev(ev *e)
{
	e->prev->next = e;
	if (e->next)
		e->next->prev = e;
}

static void lift(ev *call)
{
	unlink_ev(call);
	if (call->ret)
		unlink_ev(call->ret);
}

static void unlift(ev *call)
{
	if (call->ret)
		relink_ev(call->ret);
	relink_ev(call);
}

static void note_dead_end(const frame *stack, size_t depth, size_t stuck,
			  uint32_t state, lincheck_failure *fail)
{
	if (depth < fail->depth)
		return;
	fail->depth = depth;
	fail->stuck = stuck;
	fail->state = state;
	size_t k = depth < LINCHECK_PREFIX_MAX ? depth : LINCHECK_PREFIX_MAX;
	for (size_t i = 0; i < k; i++)
		fail->prefix[i] = stack[depth - k + i].call->op;
	fail->nprefix = k;
}

typedef struct search {
	const lincheck_kop *ops;
	size_t n;
	ev *evs;
	ev head;
	frame *stack;
	uint64_t *lin;
	memo m;
} search;

static void search_free(search *s)
{
	free(s->evs);
	free(s->stack);
	free(s->lin);
	free(s->m.slots);
	free(s->m.keys);
}

static sisy_lincheck_verdict run(search *s, lincheck_budget *b,
				 lincheck_failure *fail)
{
	size_t depth = 0, pending = 0;
	uint32_t state = 0;
	for (size_t i = 0; i < s->n; i++)
		pending += !s->ops[i].unknown;
	ev *e = s->head.next;
	for (;;) {
		if (pending == 0)
			return SISY_LINCHECK_LINEARIZABLE;
		assert(e != NULL); /* a pending op's return event is ahead */
		if (e->is_call) {
			if (b->steps_left == 0)
				return SISY_LINCHECK_UNKNOWN;
			b->steps_left--;
			b->steps_used++;
			const lincheck_kop *op = &s->ops[e->op];
			uint32_t next;
			if (step(op, state, &next)) {
				s->lin[e->op / 64] |= 1ull << (e->op % 64);
				int r = memo_insert(&s->m, s->lin, next);
				if (r < 0) {
					fail->memory_exhausted = 1;
					return SISY_LINCHECK_UNKNOWN;
				}
				if (r == 1) {
					s->stack[depth++] = (frame){e, state};
					state = next;
					pending -= !op->unknown;
					lift(e);
					e = s->head.next;
					continue;
				}
				s->lin[e->op / 64] &= ~(1ull << (e->op % 64));
			}
			e = e->next;
			continue;
		}
		note_dead_end(s->stack, depth, e->op, state, fail);
		if (depth == 0)
			return SISY_LINCHECK_NOT_LINEARIZABLE;
		frame f = s->stack[--depth];
		unlift(f.call);
		s->lin[f.call->op / 64] &= ~(1ull << (f.call->op % 64));
		pending += !s->ops[f.call->op].unknown;
		state = f.state;
		e = f.call->next;
	}
}

sisy_lincheck_verdict lincheck_search(const lincheck_kop *ops, size_t n,
				      lincheck_budget *b,
				      lincheck_failure *fail)
{
	memset(fail, 0, sizeof *fail);
	if (n == 0)
		return SISY_LINCHECK_LINEARIZABLE;
	search s;
	memset(&s, 0, sizeof s);
	s.ops = ops;
	s.n = n;
	s.m.words = (n + 63) / 64;
	s.m.max_memory = b->max_memory;
	s.evs = malloc(2 * n * sizeof *s.evs);
	s.stack = malloc(n * sizeof *s.stack);
	s.lin = calloc(s.m.words, sizeof *s.lin);
	sisy_lincheck_verdict v = SISY_LINCHECK_UNKNOWN;
	if (!s.evs || !s.stack || !s.lin ||
	    build_events(ops, n, s.evs, &s.head) != 0) {
		fail->memory_exhausted = 1;
		goto out;
	}
	v = run(&s, b, fail);
out:
	search_free(&s);
	return v;
}
