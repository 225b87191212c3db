/* lincheck_search.c — the per-key linearizability search (Wing-Gong with
 * Lowe's memoization, as Porcupine does it).
 *
 * The operations become events, sorted by time: a call event per operation
 * and a return event per operation with a definite outcome (an unknown one
 * never returns). Ties put calls first, so equal times count as concurrent.
 * The events form a doubly-linked list. The calls before the first return
 * left in the list are the operations that may take effect next. A legal
 * pure one (an ok get, a cas that did not swap) is taken at once with no
 * alternative (see is_pure). Otherwise each of them, earliest response
 * first, is a candidate: if legal in the current state and the pair (set of
 * linearized operations, new state) has not been explored before, it is
 * linearized: its call and return events are unlinked (dancing links;
 * relinked in LIFO order on backtrack) and the search goes on from the new
 * configuration. When no candidate fits, the first pending return had to
 * take effect by now but no order tried allowed it: backtrack. The search
 * succeeds once no return event is left (every definite operation is
 * linearized; unknown ones may stay out).
 *
 * Invariants: the stack holds the linearized calls in order, with the state
 * before each; `lin` is the bitset of linearized operations (bit i = op i,
 * ops in call order, so the set is "all below a frontier, some in a window
 * above it" and memo entries stay small). Every step consumes budget; the
 * memo is capped in bytes. A pair found in the memo has already been
 * explored to a dead end, so it is skipped.
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
	int forced;  /* a pure op taken without alternatives */
	size_t rank; /* its place in its configuration's trial order */
} frame;

/* Memo entries are stored compactly: every op before the first word of
 * `lin` that is not all ones is linearized, none after its last nonzero
 * word, so an entry is [nwords << 32 | state][first word index][words...]
 * over just that window — a few words however long the history. */
typedef struct memo {
	uint32_t *slots; /* arena offset + 1, 0 = empty */
	size_t nslots;
	uint64_t *arena;
	size_t len, cap;
	size_t nkeys;
	size_t max_memory;
	uint64_t *scratch; /* the entry being looked up */
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

static size_t entry_words(const uint64_t *e)
{
	return 2 + (size_t)(e[0] >> 32);
}

static uint64_t entry_hash(const uint64_t *e)
{
	uint64_t h = 0;
	for (size_t w = 0, n = entry_words(e); w < n; w++)
		h = mix64(h ^ e[w]);
	return h;
}

/* Builds the compact entry for (lin[0..words), state) in m->scratch. */
static void entry_make(memo *m, const uint64_t *lin, size_t words,
		       uint32_t state)
{
	size_t lo = 0, hi = words;
	while (lo < words && lin[lo] == ~0ull)
		lo++;
	while (hi > lo && lin[hi - 1] == 0)
		hi--;
	m->scratch[0] = (uint64_t)(hi - lo) << 32 | state;
	m->scratch[1] = lo;
	memcpy(m->scratch + 2, lin + lo, (hi - lo) * sizeof *lin);
}

static size_t memo_bytes(size_t nslots, size_t cap)
{
	return nslots * sizeof(uint32_t) + cap * sizeof(uint64_t);
}

static int memo_grow_slots(memo *m)
{
	size_t ns = m->nslots ? m->nslots * 2 : 1024;
	if (memo_bytes(ns, m->cap) > m->max_memory || ns > UINT32_MAX)
		return -1;
	uint32_t *s = calloc(ns, sizeof *s);
	if (!s)
		return -1;
	for (size_t i = 0; i < m->nslots; i++) {
		uint32_t off = m->slots[i];
		if (!off)
			continue;
		size_t j = entry_hash(m->arena + off - 1) & (ns - 1);
		while (s[j])
			j = (j + 1) & (ns - 1);
		s[j] = off;
	}
	free(m->slots);
	m->slots = s;
	m->nslots = ns;
	return 0;
}

/* Inserts (lin, state); 1 if inserted, 0 if present, -1 on exhaustion. */
static int memo_insert(memo *m, const uint64_t *lin, size_t words,
		       uint32_t state)
{
	if ((m->nkeys + 1) * 2 > m->nslots && memo_grow_slots(m) != 0)
		return -1;
	entry_make(m, lin, words, state);
	size_t n = entry_words(m->scratch);
	size_t j = entry_hash(m->scratch) & (m->nslots - 1);
	while (m->slots[j]) {
		const uint64_t *e = m->arena + m->slots[j] - 1;
		if (e[0] == m->scratch[0] && /* same length and state */
		    memcmp(e + 1, m->scratch + 1, (n - 1) * sizeof *e) == 0)
			return 0;
		j = (j + 1) & (m->nslots - 1);
	}
	if (m->len + n > m->cap) {
		size_t nc = m->cap ? m->cap * 2 : 4096;
		while (nc < m->len + n)
			nc *= 2;
		if (memo_bytes(m->nslots, nc) > m->max_memory ||
		    nc >= UINT32_MAX)
			return -1;
		uint64_t *a = realloc(m->arena, nc * sizeof *a);
		if (!a)
			return -1;
		m->arena = a;
		m->cap = nc;
	}
	memcpy(m->arena + m->len, m->scratch, n * sizeof *m->scratch);
	m->slots[j] = (uint32_t)(m->len + 1);
	m->len += n;
	m->nkeys++;
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

/* A pure op (an ok get, an ok cas that did not swap) changes nothing. If
 * one is legal now and may be placed now (its call precedes every pending
 * return), some valid order places it now if any valid order exists: move
 * it forward in that order; no state in between changes and no real-time
 * constraint is broken. So it is taken without trying alternatives. */
static int is_pure(const lincheck_kop *op)
{
	return !op->unknown &&
	       (op->kind == SISY_LINCHECK_GET ||
		(op->kind == SISY_LINCHECK_CAS && !op->swapped));
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
	size_t depth;
	ev **cand; /* this configuration's candidates, trial order */
	uint64_t *lin;
	size_t words;
	size_t pending; /* definite ops not linearized */
	uint32_t state;
	memo m;
} search;

static void search_free(search *s)
{
	free(s->evs);
	free(s->stack);
	free(s->cand);
	free(s->lin);
	free(s->m.slots);
	free(s->m.arena);
	free(s->m.scratch);
}

static void set_bit(uint64_t *lin, size_t i)
{
	lin[i / 64] |= 1ull << (i % 64);
}

static void clear_bit(uint64_t *lin, size_t i)
{
	lin[i / 64] &= ~(1ull << (i % 64));
}

/* Tries to linearize the op of call event e: 1 done, 0 illegal or already
 * explored, -1 memory exhausted. */
static int try_op(search *s, ev *e, int forced, size_t rank)
{
	const lincheck_kop *op = &s->ops[e->op];
	uint32_t next;
	if (!step(op, s->state, &next))
		return 0;
	set_bit(s->lin, e->op);
	int r = memo_insert(&s->m, s->lin, s->words, next);
	if (r != 1) {
		clear_bit(s->lin, e->op);
		return r;
	}
	s->stack[s->depth++] = (frame){e, s->state, forced, rank};
	s->state = next;
	s->pending -= !op->unknown;
	lift(e);
	return 1;
}

/* Undoes the top frame; returns it. */
static frame pop(search *s)
{
	frame f = s->stack[--s->depth];
	unlift(f.call);
	clear_bit(s->lin, f.call->op);
	s->pending += !s->ops[f.call->op].unknown;
	s->state = f.state;
	return f;
}

/* A legal pure op among those that may be placed now, or NULL. */
static ev *find_forced(search *s)
{
	for (ev *e = s->head.next; e && e->is_call; e = e->next) {
		uint32_t next;
		if (is_pure(&s->ops[e->op]) &&
		    step(&s->ops[e->op], s->state, &next))
			return e;
	}
	return NULL;
}

static int spend(lincheck_budget *b)
{
	if (b->steps_left == 0)
		return 0;
	b->steps_left--;
	b->steps_used++;
	return 1;
}

/* Earliest response first: an operation that must take effect soonest is
 * tried first (unknown ones, never due, last). Ties by index, so the order
 * of a configuration is always the same and a backtrack can resume it. */
static int cand_cmp(const void *a, const void *b, void *arg)
{
	const lincheck_kop *ops = arg;
	const ev *x = *(ev *const *)a, *y = *(ev *const *)b;
	const lincheck_kop *p = &ops[x->op], *q = &ops[y->op];
	int64_t rp = p->unknown ? INT64_MAX : p->ret;
	int64_t rq = q->unknown ? INT64_MAX : q->ret;
	if (rp != rq)
		return rp < rq ? -1 : 1;
	return x->op < y->op ? -1 : x->op > y->op;
}

/* The operations that may take effect next (calls before the first return
 * left), in trial order; *due is that first return. */
static size_t candidates(search *s, ev **due)
{
	size_t k = 0;
	ev *e = s->head.next;
	for (; e && e->is_call; e = e->next)
		s->cand[k++] = e;
	*due = e;
	qsort_r(s->cand, k, sizeof *s->cand, cand_cmp, (void *)s->ops);
	return k;
}

static sisy_lincheck_verdict run(search *s, lincheck_budget *b,
				 lincheck_failure *fail)
{
	size_t rank = 0, ncand = 0;
	ev *due = NULL;
	int fresh = 1; /* at a configuration not looked at yet */
	for (;;) {
		if (s->pending == 0)
			return SISY_LINCHECK_LINEARIZABLE;
		int r = 0;
		if (fresh) {
			fresh = 0;
			ev *f = find_forced(s);
			if (f) {
				if (!spend(b))
					return SISY_LINCHECK_UNKNOWN;
				r = try_op(s, f, 1, 0);
				if (r == 1) {
					fresh = 1;
					continue;
				}
				goto dead_end; /* explored before */
			}
			ncand = candidates(s, &due);
			rank = 0;
		}
		for (; rank < ncand; rank++) {
			if (!spend(b))
				return SISY_LINCHECK_UNKNOWN;
			if ((r = try_op(s, s->cand[rank], 0, rank)) != 0)
				break;
		}
		if (r == 1) {
			fresh = 1;
			continue;
		}
		/* due's response came and no order placed it in time. */
		note_dead_end(s->stack, s->depth, due->op, s->state, fail);
	dead_end:
		if (r < 0) {
			fail->memory_exhausted = 1;
			return SISY_LINCHECK_UNKNOWN;
		}
		/* Backtrack past forced frames: they had no alternative. */
		frame top;
		do {
			if (s->depth == 0)
				return SISY_LINCHECK_NOT_LINEARIZABLE;
			top = pop(s);
		} while (top.forced);
		ncand = candidates(s, &due);
		rank = top.rank + 1;
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
	s.words = (n + 63) / 64;
	s.m.max_memory = b->max_memory;
	s.evs = malloc(2 * n * sizeof *s.evs);
	s.stack = malloc(n * sizeof *s.stack);
	s.cand = malloc(n * sizeof *s.cand);
	s.lin = calloc(s.words, sizeof *s.lin);
	s.m.scratch = malloc((s.words + 2) * sizeof *s.m.scratch);
	for (size_t i = 0; i < n; i++)
		s.pending += !ops[i].unknown;
	sisy_lincheck_verdict v = SISY_LINCHECK_UNKNOWN;
	if (!s.evs || !s.stack || !s.cand || !s.lin || !s.m.scratch ||
	    build_events(ops, n, s.evs, &s.head) != 0) {
		fail->memory_exhausted = 1;
		goto out;
	}
	v = run(&s, b, fail);
out:
	search_free(&s);
	return v;
}
