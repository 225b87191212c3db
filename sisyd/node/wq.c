/* wq.c — the node's writes to the shared Raft log, and learning when they
 * are durable (loop thread).
 *
 * Writes are handed to sisy_raftlog at once. When the log refuses for now
 * (its queue is full: SISY_E_BUSY; the disk is full: SISY_E_NOSPC) the
 * write, and every later one, waits in the node's own FIFO (a copy) and is
 * handed over at the end of a later turn, in order: the log's order is the
 * order the Raft cores produced. Any other error stops the node.
 *
 * Durability: see node_int.h. A persisting ready of group g is recorded as
 * (persist id, marker M) where M is the marker the current turn will queue;
 * when the log reports group 0's hard state with term >= M durable, every
 * record queued before that marker is durable, so g's ready is.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

#define WQ_STACK_ENTRIES 64 /* entries of one append built on the stack */

static bool retryable(sisy_err rc)
{
	return rc == SISY_E_BUSY || rc == SISY_E_NOSPC;
}

static sisy_err run_op(sisy_node *n, const node_wop *w)
{
	switch (w->kind) {
	case WOP_APPEND:
		return sisy_raftlog_append(n->log, w->group, w->ents, w->n);
	case WOP_HARDSTATE:
		return sisy_raftlog_set_hardstate(n->log, w->group, &w->hs);
	case WOP_COMPACT:
		return sisy_raftlog_compact(n->log, w->group, w->index);
	case WOP_SNAPSHOT:
		return sisy_raftlog_set_snapshot(n->log, w->group, w->index,
						 w->term);
	}
	return SISY_E_INTERNAL;
}

static void wop_free(node_wop *w)
{
	free(w->ents);
	free(w->mem);
	free(w);
}

static void wq_push(sisy_node *n, node_wop *w)
{
	w->next = NULL;
	if (n->wq_tail)
		n->wq_tail->next = w;
	else
		n->wq_head = w;
	n->wq_tail = w;
}

/* A heap copy of w with its own copy of the payloads, to wait in the FIFO.
 */
static node_wop *keep_copy(sisy_node *n, const node_wop *w)
{
	size_t bytes = 0;
	for (size_t i = 0; i < w->n; i++)
		bytes += w->ents[i].len;
	node_wop *k = malloc(sizeof *k);
	sisy_raftlog_entry *e = malloc(w->n * sizeof *e + 1);
	uint8_t *mem = malloc(bytes + 1);
	if (k == NULL || e == NULL || mem == NULL) {
		free(k);
		free(e);
		free(mem);
		node_fail(n, sisy_errf(SISY_E_NOMEM, "out of memory"),
			  "queueing a raft log write");
		return NULL;
	}
	*k = *w;
	size_t off = 0;
	for (size_t i = 0; i < w->n; i++) {
		e[i] = w->ents[i];
		if (e[i].len)
			memcpy(mem + off, w->ents[i].data, e[i].len);
		e[i].data = mem + off;
		off += e[i].len;
	}
	k->ents = e;
	k->mem = mem;
	k->next = NULL;
	return k;
}

/* Runs w now if nothing waits before it; otherwise, or when the log says
 * "later", keeps a copy. w and its payloads stay the caller's: the common
 * case (the log takes it at once) allocates nothing here. */
static void submit(sisy_node *n, const node_wop *w)
{
	if (n->failed)
		return;
	if (n->wq_head == NULL) {
		sisy_err rc = run_op(n, w);
		if (rc == SISY_OK)
			return;
		if (!retryable(rc)) {
			node_fail(n, rc, "writing the raft log");
			return;
		}
		if (rc == SISY_E_NOSPC)
			n->nospace = true;
	}
	node_wop *k = keep_copy(n, w);
	if (k != NULL)
		wq_push(n, k);
}

void node_wq_append(sisy_node *n, uint64_t group, const sisy_raft_entry *e,
		    size_t cnt)
{
	sisy_raftlog_entry stack[WQ_STACK_ENTRIES];
	sisy_raftlog_entry *le = stack;
	sisy_buf *s = &n->scratch;
	sisy_err rc = SISY_OK;
	if (cnt == 0)
		return;
	if (cnt > WQ_STACK_ENTRIES)
		le = malloc(cnt * sizeof *le);
	if (le == NULL)
		rc = SISY_E_NOMEM;
	sisy_buf_clear(s);
	/* Payloads go into one scratch buffer that may move as it grows:
	 * offsets first (in .len), pointers once it is complete. */
	for (size_t i = 0; i < cnt && rc == SISY_OK; i++) {
		le[i].len = s->len;
		rc = node_payload_build(&e[i], s);
	}
	if (rc != SISY_OK) {
		node_fail(n, sisy_errf(SISY_E_NOMEM, "out of memory"),
			  "building raft log records");
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		size_t off = le[i].len;
		size_t end = i + 1 < cnt ? le[i + 1].len : s->len;
		le[i] = (sisy_raftlog_entry){.index = e[i].index,
					     .term = e[i].term,
					     .data = s->data + off,
					     .len = end - off};
	}
	submit(n,
	       &(node_wop){
		   .kind = WOP_APPEND, .group = group, .ents = le, .n = cnt});
out:
	if (le != stack)
		free(le);
}

void node_wq_hardstate(sisy_node *n, uint64_t group,
		       const sisy_raft_hard_state *hs)
{
	submit(n, &(node_wop){.kind = WOP_HARDSTATE,
			      .group = group,
			      .hs = {hs->term, hs->vote, hs->commit}});
}

void node_wq_compact(sisy_node *n, uint64_t group, uint64_t index)
{
	submit(n, &(node_wop){
		      .kind = WOP_COMPACT, .group = group, .index = index});
}

void node_wq_snapshot(sisy_node *n, uint64_t group, uint64_t index,
		      uint64_t term)
{
	submit(n, &(node_wop){.kind = WOP_SNAPSHOT,
			      .group = group,
			      .index = index,
			      .term = term});
}

void node_wq_persist(node_group *g, uint64_t persist_id)
{
	sisy_node *n = g->n;
	if (g->np == g->capp) {
		size_t cap = g->capp ? g->capp * 2 : 16;
		node_persist *v = malloc(cap * sizeof *v);
		if (v == NULL) {
			node_fail(n, sisy_errf(SISY_E_NOMEM, "out of memory"),
				  "tracking a persist");
			return;
		}
		for (size_t i = 0; i < g->np; i++)
			v[i] = g->persists[(g->headp + i) % g->capp];
		free(g->persists);
		g->persists = v;
		g->headp = 0;
		g->capp = cap;
	}
	g->persists[(g->headp + g->np) % g->capp] =
	    (node_persist){persist_id, n->mark_next};
	g->np++;
	n->mark_needed = true;
}

void node_wq_flush(sisy_node *n)
{
	while (n->wq_head != NULL && !n->failed) {
		node_wop *w = n->wq_head;
		sisy_err rc = run_op(n, w);
		if (retryable(rc)) {
			n->nospace = rc == SISY_E_NOSPC;
			break;
		}
		if (rc != SISY_OK)
			node_fail(n, rc, "writing the raft log");
		n->wq_head = w->next;
		if (n->wq_head == NULL)
			n->wq_tail = NULL;
		wop_free(w);
	}
	if (n->wq_head == NULL)
		n->nospace = false;
	if (n->mark_needed && !n->failed) {
		sisy_raft_hard_state hs = {n->mark_next, 0, 0};
		n->mark_needed = false;
		n->mark_next++;
		node_wq_hardstate(n, NODE_MARK_GROUP, &hs);
	}
}

void node_wq_drain(sisy_node *n)
{
	sisy_raftlog_durable rep[64];
	size_t k;
	sisy_err rc;
	do {
		rc = sisy_raftlog_drain(n->log, rep, 64, &k);
		for (size_t i = 0; i < k; i++)
			if (rep[i].group == NODE_MARK_GROUP &&
			    (rep[i].what & SISY_RAFTLOG_DURABLE_HARDSTATE) &&
			    rep[i].hs.term > n->mark_durable)
				n->mark_durable = rep[i].hs.term;
	} while (rc == SISY_OK && k == 64);
	if (rc != SISY_OK && rc != SISY_E_FAILED)
		rc = SISY_OK;
	if (rc == SISY_E_FAILED)
		node_fail(n, rc, "the raft log");
	for (size_t gi = 0; gi < n->ngroups; gi++) {
		node_group *g = n->groups[gi];
		uint64_t id = 0;
		while (g->np > 0 &&
		       g->persists[g->headp].mark <= n->mark_durable) {
			id = g->persists[g->headp].persist_id;
			g->headp = (g->headp + 1) % g->capp;
			g->np--;
		}
		if (id != 0 && !n->failed)
			sisy_raft_persisted(g->raft, id);
	}
}

void node_wq_free(sisy_node *n)
{
	while (n->wq_head) {
		node_wop *w = n->wq_head;
		n->wq_head = w->next;
		wop_free(w);
	}
	n->wq_tail = NULL;
}
