/* sim_check.c — Raft's safety properties, checked after every ready.
 *
 * Entries are identified by a chain hash: hash(previous chain, index, term,
 * type, data), so two nodes with equal chains at an index hold equal logs
 * up to it. Ledgers, global to the run:
 *   ledger     (index, term) -> chain, from every entry any node appended:
 *              a second chain for the same (index, term) breaks LOG
 *              MATCHING;
 *   leaders    term -> leader: a second leader breaks ELECTION SAFETY;
 *   votes      (voter, term) -> candidate: two grants in one term break
 *              election safety (the vote was not durable);
 *   committed  index -> chain, from each node's commit index over its own
 *              log: two chains at one index break STATE MACHINE SAFETY, and
 *              so does a node truncating an entry at or below its own
 *              commit;
 *   applied    index -> chain, from every entry handed out for apply: two
 *              chains at one index break STATE MACHINE SAFETY.
 * LEADER COMPLETENESS: a new leader's log must hold the newest committed
 * and the newest applied entry (chains equal; covered by its compaction
 * point is accepted when the point's chain agrees), and when a commit is
 * first recorded, every current leader whose term is at least the
 * reporter's must hold it. Acknowledged writes are applied entries, so a
 * lost acknowledged write shows up as a leader without it; the lincheck at
 * the end checks what clients saw.
 * DURABILITY PROMISES (--no-promise-checks turns them off): a vote grant
 * leaves only once the vote is durable, an append acknowledgement only once
 * the acknowledged entries are; a node applies only entries in its durable
 * log (sim_node.c).
 *
 * The per-node log view (what the core's log holds, as its readies tell)
 * lives here too.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "sim.h"

/* ---- a small (u64, u64) -> u64 map, k1 != 0 ---------------------------------
 */

static uint64_t mix(uint64_t a, uint64_t b)
{
	uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL);
	x ^= x >> 31;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 29;
	return x;
}

static void map_put(sim_u64map *m, uint64_t k1, uint64_t k2, uint64_t v);

static void map_grow(sim_u64map *m)
{
	sim_u64map old = *m;
	m->cap = old.cap ? old.cap * 2 : 256;
	m->n = 0;
	m->k1 = calloc(m->cap, sizeof *m->k1);
	m->k2 = calloc(m->cap, sizeof *m->k2);
	m->v = calloc(m->cap, sizeof *m->v);
	if (!m->k1 || !m->k2 || !m->v)
		abort();
	for (size_t i = 0; i < old.cap; i++)
		if (old.k1[i])
			map_put(m, old.k1[i], old.k2[i], old.v[i]);
	free(old.k1);
	free(old.k2);
	free(old.v);
}

static bool map_get(const sim_u64map *m, uint64_t k1, uint64_t k2, uint64_t *v)
{
	if (!m->cap)
		return false;
	for (size_t i = mix(k1, k2) & (m->cap - 1);;
	     i = (i + 1) & (m->cap - 1)) {
		if (!m->k1[i])
			return false;
		if (m->k1[i] == k1 && m->k2[i] == k2) {
			*v = m->v[i];
			return true;
		}
	}
}

static void map_put(sim_u64map *m, uint64_t k1, uint64_t k2, uint64_t v)
{
	assert(k1 != 0);
	if ((m->n + 1) * 2 > m->cap)
		map_grow(m);
	size_t i = mix(k1, k2) & (m->cap - 1);
	while (m->k1[i] && !(m->k1[i] == k1 && m->k2[i] == k2))
		i = (i + 1) & (m->cap - 1);
	if (!m->k1[i])
		m->n++;
	m->k1[i] = k1;
	m->k2[i] = k2;
	m->v[i] = v;
}

static void map_free(sim_u64map *m)
{
	free(m->k1);
	free(m->k2);
	free(m->v);
	memset(m, 0, sizeof *m);
}

void sim_check_free(sim_check *c)
{
	map_free(&c->leaders);
	map_free(&c->votes);
	map_free(&c->ledger);
	free(c->committed);
	free(c->applied);
	memset(c, 0, sizeof *c);
}

static void ensure(sim_check *c, uint64_t index)
{
	if (index < c->cap)
		return;
	size_t nc = c->cap ? c->cap : 1024;
	while (nc <= index)
		nc *= 2;
	c->committed = realloc(c->committed, nc * sizeof *c->committed);
	c->applied = realloc(c->applied, nc * sizeof *c->applied);
	if (!c->committed || !c->applied)
		abort();
	memset(c->committed + c->cap, 0, (nc - c->cap) * sizeof *c->committed);
	memset(c->applied + c->cap, 0, (nc - c->cap) * sizeof *c->applied);
	c->cap = nc;
}

#define U(x) ((unsigned long long)(x))

/* ---- chains and the ledger
 * ---------------------------------------------------- */

uint64_t sim_chain(uint64_t prev, const sisy_raft_entry *e)
{
	uint64_t seed = mix(prev, e->index) ^ mix(e->term, e->type);
	uint64_t h = sisy_hash64(e->data, e->len, seed);
	return h ? h : 1; /* 0 means "unknown" */
}

void sim_check_entry(sim *s, sim_node *n, uint64_t index, uint64_t term,
		     uint64_t chain)
{
	uint64_t have;
	if (!map_get(&s->chk.ledger, index, term, &have)) {
		map_put(&s->chk.ledger, index, term, chain);
		return;
	}
	if (have != chain)
		sim_fail(s, "log-matching",
			 "n%llu holds entry %llu/%llu with a different "
			 "prefix or content than another node had for the "
			 "same index and term",
			 U(n->id), U(index), U(term));
}

uint64_t sim_check_chain_of(sim *s, uint64_t index, uint64_t term)
{
	uint64_t have;
	if (index == 0)
		return 0;
	if (map_get(&s->chk.ledger, index, term, &have))
		return have;
	/* Known only through a snapshot nobody appended in this run:
	 * name it by (index, term) and remember the name. */
	have = mix(index, term) | 1;
	map_put(&s->chk.ledger, index, term, have);
	return have;
}

/* ---- the log view -----------------------------------------------------------
 */

void sim_view_free(sim_view *v)
{
	free(v->term);
	free(v->chain);
	memset(v, 0, sizeof *v);
}

uint64_t sim_view_last(const sim_view *v)
{
	return v->base_index + v->n;
}

uint64_t sim_view_chain(const sim_view *v, uint64_t i)
{
	if (i == v->base_index)
		return v->base_chain;
	if (i < v->base_index || i > sim_view_last(v))
		return 0;
	return v->chain[i - v->base_index - 1];
}

static uint64_t view_term(const sim_view *v, uint64_t i)
{
	if (i == v->base_index)
		return v->base_term;
	if (i < v->base_index || i > sim_view_last(v))
		return 0;
	return v->term[i - v->base_index - 1];
}

void sim_view_reset(sim *s, sim_view *v, uint64_t index, uint64_t term)
{
	v->base_index = index;
	v->base_term = term;
	v->base_chain = sim_check_chain_of(s, index, term);
	v->n = 0;
}

void sim_view_append(sim *s, sim_node *n, const sisy_raft_entry *e, size_t cnt)
{
	sim_view *v = &n->view;
	if (cnt == 0)
		return;
	uint64_t first = e[0].index;
	assert(first > v->base_index && first <= sim_view_last(v) + 1);
	for (uint64_t i = first; i <= sim_view_last(v) && i <= n->ledger_commit;
	     i++) {
		uint64_t k = i - first;
		if (k >= cnt || e[k].term != view_term(v, i)) {
			sim_fail(s, "state-machine-safety",
				 "n%llu truncates entry %llu/%llu at or "
				 "below its commit index %llu",
				 U(n->id), U(i), U(view_term(v, i)),
				 U(n->ledger_commit));
			return;
		}
	}
	v->n = (size_t)(first - v->base_index - 1);
	if (v->n + cnt > v->cap) {
		v->cap = (v->n + cnt) * 2;
		v->term = realloc(v->term, v->cap * sizeof *v->term);
		v->chain = realloc(v->chain, v->cap * sizeof *v->chain);
		if (!v->term || !v->chain)
			abort();
	}
	for (size_t k = 0; k < cnt; k++) {
		uint64_t prev = v->n ? v->chain[v->n - 1] : v->base_chain;
		if (e[k].index != sim_view_last(v) + 1) {
			sim_fail(s, "interface",
				 "n%llu: entries not contiguous at %llu",
				 U(n->id), U(e[k].index));
			return;
		}
		uint64_t ch = sim_chain(prev, &e[k]);
		v->term[v->n] = e[k].term;
		v->chain[v->n] = ch;
		v->n++;
		sim_check_entry(s, n, e[k].index, e[k].term, ch);
	}
}

void sim_view_compact(sim_view *v, uint64_t index)
{
	assert(index >= v->base_index && index <= sim_view_last(v));
	if (index == v->base_index)
		return;
	size_t drop = (size_t)(index - v->base_index);
	v->base_chain = v->chain[drop - 1];
	v->base_term = v->term[drop - 1];
	v->base_index = index;
	memmove(v->term, v->term + drop, (v->n - drop) * sizeof *v->term);
	memmove(v->chain, v->chain + drop, (v->n - drop) * sizeof *v->chain);
	v->n -= drop;
}

/* ---- leader completeness
 * ------------------------------------------------------ */

/* Does n's log hold `chain` at `index`? Below its compaction point the
 * point itself must agree with what the ledger says about it. */
static bool holds(const sim_check *c, const sim_node *n, uint64_t index,
		  uint64_t chain, const uint64_t *ledger)
{
	const sim_view *v = &n->view;
	if (index >= v->base_index)
		return sim_view_chain(v, index) == chain;
	uint64_t at_base = v->base_index < c->cap ? ledger[v->base_index] : 0;
	return at_base == 0 || at_base == v->base_chain;
}

static void check_leader_has(sim *s, sim_node *n, uint64_t term)
{
	sim_check *c = &s->chk;
	if (c->committed_max &&
	    !holds(c, n, c->committed_max, c->committed[c->committed_max],
		   c->committed))
		sim_fail(s, "leader-completeness",
			 "n%llu leads term %llu without committed entry %llu",
			 U(n->id), U(term), U(c->committed_max));
	else if (c->applied_max &&
		 !holds(c, n, c->applied_max, c->applied[c->applied_max],
			c->applied))
		sim_fail(s, "leader-completeness",
			 "n%llu leads term %llu without entry %llu, which a "
			 "node applied%s",
			 U(n->id), U(term), U(c->applied_max),
			 c->acked_max_index >= c->applied_max
			     ? " and a client was told is written"
			     : "");
}

/* A commit at `index` was first recorded by a node in `term`: every leader
 * of a term >= it must hold the entry. */
static void check_leaders_hold(sim *s, uint64_t index, uint64_t term)
{
	for (int i = 0; i < s->nslots && !s->violated; i++) {
		sim_node *l = &s->nodes[i];
		if (l->state != SIM_NODE_UP ||
		    l->last_role != SISY_RAFT_LEADER || l->last_term < term)
			continue;
		if (!holds(&s->chk, l, index, s->chk.committed[index],
			   s->chk.committed))
			sim_fail(s, "leader-completeness",
				 "entry %llu committed, but n%llu, leader of "
				 "term %llu, does not hold it",
				 U(index), U(l->id), U(l->last_term));
	}
}

/* ---- after each ready
 * --------------------------------------------------------- */

static void record_commits(sim *s, sim_node *n, const sisy_raft_status *st)
{
	sim_check *c = &s->chk;
	uint64_t upto = st->commit;
	if (upto > sim_view_last(&n->view))
		upto = sim_view_last(&n->view);
	for (uint64_t i = n->ledger_commit + 1; i <= upto && !s->violated;
	     i++) {
		uint64_t ch = sim_view_chain(&n->view, i);
		if (!ch)
			continue;
		ensure(c, i);
		if (c->committed[i] && c->committed[i] != ch) {
			sim_fail(s, "state-machine-safety",
				 "n%llu commits a different entry at %llu "
				 "(term %llu) than was committed before",
				 U(n->id), U(i), U(view_term(&n->view, i)));
			return;
		}
		if (!c->committed[i]) {
			c->committed[i] = ch;
			if (i > c->committed_max)
				c->committed_max = i;
			check_leaders_hold(s, i, st->term);
		}
	}
	if (upto > n->ledger_commit)
		n->ledger_commit = upto;
}

void sim_check_after_ready(sim *s, sim_node *n)
{
	if (s->violated || n->state != SIM_NODE_UP)
		return;
	sisy_raft_status st;
	sisy_raft_get_status(n->r, &st);
	if (st.role == SISY_RAFT_LEADER) {
		uint64_t who;
		if (!map_get(&s->chk.leaders, st.term, 0, &who)) {
			map_put(&s->chk.leaders, st.term, 0, n->id);
			check_leader_has(s, n, st.term);
		} else if (who != n->id) {
			sim_fail(s, "election-safety",
				 "n%llu and n%llu both lead term %llu", U(who),
				 U(n->id), U(st.term));
		}
	}
	if (!s->violated)
		record_commits(s, n, &st);
}

void sim_check_apply(sim *s, sim_node *n, const sisy_raft_entry *e)
{
	sim_check *c = &s->chk;
	uint64_t ch = sim_view_chain(&n->view, e->index);
	if (!ch || view_term(&n->view, e->index) != e->term) {
		sim_fail(s, "interface",
			 "n%llu: applies %llu/%llu, which its log does not "
			 "hold",
			 U(n->id), U(e->index), U(e->term));
		return;
	}
	ensure(c, e->index);
	if (c->applied[e->index] && c->applied[e->index] != ch) {
		sim_fail(s, "state-machine-safety",
			 "n%llu applies a different entry at %llu (term %llu) "
			 "than another node applied there",
			 U(n->id), U(e->index), U(e->term));
		return;
	}
	if (c->committed[e->index] && c->committed[e->index] != ch) {
		sim_fail(s, "state-machine-safety",
			 "n%llu applies entry %llu/%llu, but a different "
			 "entry was committed there",
			 U(n->id), U(e->index), U(e->term));
		return;
	}
	c->applied[e->index] = ch;
	if (e->index > c->applied_max)
		c->applied_max = e->index;
}

void sim_check_acked(sim *s, uint64_t index, uint64_t term)
{
	s->chk.acked++;
	if (index > s->chk.acked_max_index) {
		s->chk.acked_max_index = index;
		s->chk.acked_max_term = term;
	}
}

void sim_check_msg_out(sim *s, sim_node *n, const sisy_raft_msg *m)
{
	const sim_disk *d = &n->disk;
	if (m->type == SISY_RAFT_MSG_VOTE_RESP && !m->reject) {
		uint64_t who;
		if (map_get(&s->chk.votes, n->id, m->term, &who) &&
		    who != m->to) {
			sim_fail(s, "election-safety",
				 "n%llu granted its vote in term %llu to "
				 "n%llu and to n%llu",
				 U(n->id), U(m->term), U(who), U(m->to));
			return;
		}
		map_put(&s->chk.votes, n->id, m->term, m->to);
		if (s->opts.promise_checks && d->hs.term <= m->term &&
		    !(d->hs.term == m->term && d->hs.vote == m->to))
			sim_fail(s, "durability",
				 "n%llu grants n%llu its vote in term %llu "
				 "before it is durable (durable: term %llu "
				 "vote %llu)",
				 U(n->id), U(m->to), U(m->term), U(d->hs.term),
				 U(d->hs.vote));
	}
	if (m->type == SISY_RAFT_MSG_APPEND_RESP && !m->reject &&
	    s->opts.promise_checks) {
		/* The term the log holds at the acknowledged index, unless a
		 * snapshot installed since has moved the log past it (then
		 * the entries the ack was about are below the view). A held
		 * ack may leave after a newer leader's entry replaced the
		 * acknowledged one in the log (vt > m->term): what is durable
		 * there must then be from the acknowledged leader's term or
		 * older, as the acknowledged entry was. */
		uint64_t vt = m->index > n->view.base_index
				  ? view_term(&n->view, m->index)
				  : 0;
		uint64_t dt = sim_disk_term(d, m->index);
		bool ok =
		    m->index <= d->base.index ||
		    (m->index <= sim_disk_last(d) &&
		     (vt == 0 || dt == vt || (vt > m->term && dt <= m->term)));
		if (!ok)
			sim_fail(s, "durability",
				 "n%llu acknowledges to n%llu (term %llu) its "
				 "log up to %llu (term %llu there), but its "
				 "durable log ends at %llu (and holds term "
				 "%llu there)",
				 U(n->id), U(m->to), U(m->term), U(m->index),
				 U(vt), U(sim_disk_last(d)),
				 U(sim_disk_term(d, m->index)));
	}
}

void sim_check_final(sim *s)
{
	/* Every acknowledged write is in the applied ledger (it was applied
	 * before the ack) and in every leader elected since (checked at each
	 * election); here: the final leader holds the newest one. */
	int l = sim_leader_slot(s);
	sim_check *c = &s->chk;
	if (l < 0 || !c->acked_max_index || s->violated)
		return;
	sim_node *n = &s->nodes[l];
	if (!holds(c, n, c->acked_max_index, c->applied[c->acked_max_index],
		   c->applied))
		sim_fail(s, "acknowledged-write-lost",
			 "the final leader n%llu lacks entry %llu/%llu, an "
			 "acknowledged write",
			 U(n->id), U(c->acked_max_index), U(c->acked_max_term));
}
