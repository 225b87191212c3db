/* write.c — proposals and their waiters, membership changes, leadership
 * transfer and learner promotion (loop thread).
 *
 * A waiter is keyed by (term, index) where the core placed the command and
 * remembers the command's (client id, seq). It is answered when the apply
 * thread reports that index applied: with the state machine's result if
 * the applied entry is that command (same term: Raft's log matching makes
 * (term, index) name one entry; the client id and sequence are checked as
 * well), otherwise SISY_E_UNKNOWN_OUTCOME. When the node stops being the
 * leader every waiter is answered SISY_E_UNKNOWN_OUTCOME at once: the
 * command may still commit under the next leader, and a retry with the
 * same client id and seq is safe (exactly-once). Waiters are a FIFO in
 * index order (a leader's proposals only go up), bounded by
 * max_pending_writes for the node.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

static node_waiter *waiter_head(node_group *g)
{
	return g->nw ? &g->waiters[g->headw] : NULL;
}

static void waiter_pop(node_group *g)
{
	g->headw = (g->headw + 1) % g->capw;
	g->nw--;
	g->n->nwaiters--;
}

sisy_err node_waiter_add(node_group *g, uint64_t term, uint64_t index,
			 uint64_t client_id, uint64_t seq,
			 sisy_node_write_cb cb, void *ctx)
{
	if (g->nw == g->capw) {
		size_t cap = g->capw ? g->capw * 2 : 64;
		node_waiter *v = malloc(cap * sizeof *v);
		if (v == NULL)
			return sisy_errf(SISY_E_NOMEM, "node: out of memory");
		for (size_t i = 0; i < g->nw; i++)
			v[i] = g->waiters[(g->headw + i) % g->capw];
		free(g->waiters);
		g->waiters = v;
		g->headw = 0;
		g->capw = cap;
	}
	g->waiters[(g->headw + g->nw) % g->capw] =
	    (node_waiter){term, index, client_id, seq, cb, ctx};
	g->nw++;
	g->n->nwaiters++;
	return SISY_OK;
}

void node_waiters_fail(node_group *g, sisy_err status)
{
	node_waiter *w;
	while ((w = waiter_head(g)) != NULL) {
		node_waiter copy = *w;
		waiter_pop(g);
		copy.cb(copy.ctx, status, NULL);
	}
}

void node_waiters_applied(node_group *g, const node_applied *a, size_t n)
{
	node_waiter *w;
	for (size_t i = 0; i < n; i++) {
		while ((w = waiter_head(g)) != NULL && w->index <= a[i].index) {
			node_waiter c = *w;
			waiter_pop(g);
			bool mine =
			    c.index == a[i].index && c.term == a[i].term &&
			    c.client_id == a[i].client_id && c.seq == a[i].seq;
			if (mine)
				c.cb(c.ctx, SISY_OK, &a[i].res);
			else
				c.cb(c.ctx, SISY_E_UNKNOWN_OUTCOME, NULL);
		}
	}
	/* Applied without a result for it (covered by a snapshot). */
	while ((w = waiter_head(g)) != NULL && w->index <= g->applied) {
		node_waiter c = *w;
		waiter_pop(g);
		c.cb(c.ctx, SISY_E_UNKNOWN_OUTCOME, NULL);
	}
}

/* Why a group cannot take a write now, or SISY_OK. */
static sisy_err admit(sisy_node *n, node_group *g)
{
	if (n->failed)
		return sisy_errf(SISY_E_FAILED, "node: stopped: %s",
				 n->failmsg);
	if (n->closing || n->shutting_down)
		return sisy_errf(SISY_E_BUSY, "node: shutting down");
	if (g->role != SISY_RAFT_LEADER)
		return g->leader ? sisy_errf(SISY_E_NOTLEADER,
					     "node: not the leader of group "
					     "%" PRIu64 "; node %" PRIu64 " is",
					     g->id, g->leader)
				 : sisy_errf(SISY_E_NOLEADER,
					     "node: group %" PRIu64
					     " has no leader now",
					     g->id);
	if (n->nospace)
		return sisy_errf(SISY_E_NOSPC,
				 "node: disk full: writes are refused, reads "
				 "work");
	if (n->nwaiters >= n->o.max_pending_writes)
		return sisy_errf(SISY_E_BUSY, "node: %zu writes pending",
				 n->nwaiters);
	if (g->installing || g->queued_bytes > n->o.max_apply_lag_bytes)
		return sisy_errf(SISY_E_BUSY,
				 "node: applying is behind (%zu bytes "
				 "queued); retry shortly",
				 g->queued_bytes);
	return SISY_OK;
}

static sisy_err core_err(sisy_err rc)
{
	if (rc == SISY_E_AGAIN)
		return sisy_errf(SISY_E_BUSY, "node: too many uncommitted "
					      "writes; retry shortly");
	return rc;
}

sisy_err sisy_node_propose(sisy_node *n, uint64_t group,
			   const sisy_node_cmd *cmd, sisy_node_write_cb cb,
			   void *ctx)
{
	node_group *g = node_group_find(n, group);
	sisy_buf *b = &n->cmd_buf; /* reused: no allocation per proposal */
	uint64_t term, index;
	if (g == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "node: no group %" PRIu64,
				 group);
	sisy_buf_clear(b);
	sisy_err rc = admit(n, g);
	if (rc == SISY_OK)
		rc = node_cmd_encode(cmd, b);
	if (rc == SISY_OK && b->len > NODE_MAX_ENTRY)
		rc = sisy_errf(SISY_E_TOOBIG,
			       "node: a command of %zu bytes; the limit is %u",
			       b->len, NODE_MAX_ENTRY);
	if (rc == SISY_OK)
		rc = core_err(sisy_raft_propose(g->raft, sisy_buf_slice(b),
						&term, &index));
	if (rc == SISY_OK)
		rc = node_waiter_add(g, term, index, cmd->client_id, cmd->seq,
				     cb, ctx);
	if (b->cap > NODE_CMD_BUF_KEEP)
		sisy_buf_free(b); /* a big batch does not pin its memory */
	return rc;
}

uint64_t sisy_node_leader(sisy_node *n, uint64_t group, char *addr, size_t cap)
{
	node_group *g = node_group_find(n, group);
	uint64_t id = g ? g->leader : 0;
	if (addr && cap) {
		addr[0] = '\0';
		if (id)
			sisy_node_peer_addr(n, id, addr, cap);
	}
	return id;
}

/* ---- membership
 * -------------------------------------------------------------- */

sisy_err sisy_node_change(sisy_node *n, uint64_t group, uint8_t kind,
			  uint64_t node_id, const char *address,
			  const uint8_t key[SISY_NODE_KEY],
			  sisy_node_write_cb cb, void *ctx)
{
	node_group *g = node_group_find(n, group);
	sisy_raft_conf_change cc;
	sisy_buf b = {0};
	uint64_t term, index;
	if (g == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "node: no group %" PRIu64,
				 group);
	sisy_err rc = admit(n, g);
	if (rc != SISY_OK)
		return rc;
	memset(&cc, 0, sizeof cc);
	cc.node_id = node_id;
	switch (kind) {
	case SISY_NODE_ADD_LEARNER:
	case SISY_NODE_ADD_VOTER: {
		node_peer *p = node_book_find(n, node_id);
		if (key == NULL && p != NULL && p->has_key)
			key = p->key;
		if (address == NULL && p != NULL)
			address = p->address;
		if (key == NULL || address == NULL)
			return sisy_errf(SISY_E_INVAL,
					 "node: adding node %" PRIu64
					 " needs its address and key",
					 node_id);
		cc.type = kind == SISY_NODE_ADD_LEARNER
			      ? SISY_RAFT_CONF_ADD_LEARNER
			      : SISY_RAFT_CONF_ADD_VOTER;
		rc = node_conf_ctx_encode(address, key, &b);
		break;
	}
	case SISY_NODE_REMOVE:
		cc.type = SISY_RAFT_CONF_REMOVE;
		break;
	default:
		return sisy_errf(SISY_E_INVAL, "node: unknown change %u", kind);
	}
	cc.ctx = sisy_buf_slice(&b);
	if (rc == SISY_OK)
		rc = core_err(
		    sisy_raft_propose_conf(g->raft, &cc, &term, &index));
	if (rc == SISY_OK && cb != NULL)
		rc = node_waiter_add(g, term, index, 0, 0, cb, ctx);
	sisy_buf_free(&b);
	return rc;
}

/* Not the core's recent_active: it is cleared every election timeout, and
 * a check that happens to run right after the clearing would never see
 * anyone active. */
bool node_heard_from(const sisy_node *n, const sisy_raft_progress *p)
{
	return p->ticks_since_contact < n->o.election_ticks;
}

/* The voter (not us) whose log is furthest, among those heard from. */
static uint64_t best_voter(node_group *g)
{
	sisy_raft_progress pr[SISY_RAFT_MAX_NODES];
	size_t k = sisy_raft_get_progress(g->raft, pr, SISY_RAFT_MAX_NODES);
	uint64_t best = 0, match = 0;
	for (size_t i = 0; i < k && i < SISY_RAFT_MAX_NODES; i++)
		if (!pr[i].is_learner && pr[i].id != g->n->id &&
		    node_heard_from(g->n, &pr[i]) &&
		    (best == 0 || pr[i].match > match)) {
			best = pr[i].id;
			match = pr[i].match;
		}
	return best;
}

sisy_err sisy_node_transfer(sisy_node *n, uint64_t group, uint64_t to)
{
	node_group *g = node_group_find(n, group);
	if (g == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "node: no group %" PRIu64,
				 group);
	if (to == 0 && (to = best_voter(g)) == 0)
		return g->role == SISY_RAFT_LEADER
			   ? sisy_errf(SISY_E_INVAL,
				       "node: no other voter to hand "
				       "leadership to")
			   : sisy_errf(SISY_E_NOTLEADER,
				       "node: not the leader");
	return sisy_raft_transfer(g->raft, to);
}

bool sisy_node_shutdown_step(sisy_node *n)
{
	bool leading = false;
	n->shutting_down = true;
	for (size_t i = 0; i < n->ngroups; i++) {
		node_group *g = n->groups[i];
		sisy_raft_status st;
		if (g->role != SISY_RAFT_LEADER)
			continue;
		sisy_raft_get_status(g->raft, &st);
		if (st.membership.n_voters <= 1)
			continue; /* nobody to hand over to */
		leading = true;
		if (st.transferee == SISY_RAFT_NONE)
			sisy_node_transfer(n, g->id, 0);
	}
	return leading;
}

/* A learner whose log is close to the leader's becomes a voter (one change
 * at a time; the core refuses while another is pending). */
void node_promote_learners(node_group *g)
{
	sisy_raft_status st;
	sisy_raft_progress pr[SISY_RAFT_MAX_NODES];
	if (g->role != SISY_RAFT_LEADER || g->n->shutting_down)
		return;
	sisy_raft_get_status(g->raft, &st);
	if (st.pending_conf_index != 0 || st.membership.n_learners == 0)
		return;
	size_t k = sisy_raft_get_progress(g->raft, pr, SISY_RAFT_MAX_NODES);
	for (size_t i = 0; i < k && i < SISY_RAFT_MAX_NODES; i++) {
		/* match 0: it never acknowledged anything (a progress starts
		 * as "just heard from", so a learner that is not even
		 * running would otherwise be promoted in a young cluster and
		 * take the quorum with it). */
		if (!pr[i].is_learner || !node_heard_from(g->n, &pr[i]) ||
		    pr[i].match == 0 || pr[i].match + 64 < st.last_index)
			continue;
		sisy_err rc =
		    sisy_node_change(g->n, g->id, SISY_NODE_ADD_VOTER, pr[i].id,
				     NULL, NULL, NULL, NULL);
		sisy_log(g->n->o.logger, SISY_LOG_INFO, "node",
			 "group %" PRIu64 ": promoting learner %" PRIu64
			 " (match %" PRIu64 " of %" PRIu64 "): %s",
			 g->id, pr[i].id, pr[i].match, st.last_index,
			 rc == SISY_OK ? "proposed" : sisy_errmsg());
		return;
	}
}
