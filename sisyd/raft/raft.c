/* raft.c — life cycle, input validation, step dispatch, proposals, status.
 *
 * sisy_raft_step() applies the term rules common to every message before
 * dispatching by type (Raft §5.1, with pre-vote and check-quorum as in the
 * thesis §9.6):
 *   - a higher term makes us a follower at that term, except a pre-vote
 *     (nothing durable changes) and a (pre)vote inside the check-quorum
 *     lease, which is ignored unless it is part of a leadership transfer;
 *   - a lower term is dropped, but a stale leader's APPEND/HEARTBEAT gets an
 *     answer at our term (so it steps down) and a stale pre-vote or read
 *     request a rejection (so it stops waiting).
 * Messages are checked for shape (addressing, contiguous entries, bounded
 * membership) before anything else; a malformed one changes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

void sisy_raft_config_default(sisy_raft_config *cfg, uint64_t id)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->id = id;
	cfg->election_ticks = 10;
	cfg->heartbeat_ticks = 1;
	cfg->pre_vote = 1;
	cfg->check_quorum = 1;
	cfg->max_inflight_msgs = 64;
	cfg->max_msg_bytes = 1 << 20;
	cfg->max_msg_entries = 1024;
	cfg->max_entry_bytes = 1 << 20;
	cfg->max_uncommitted_bytes = 64 << 20;
	cfg->max_apply_bytes = 4 << 20;
	cfg->max_pending_reads = 4096;
	cfg->rand_seed = id;
}

static sisy_err check_config(const sisy_raft_config *c)
{
	if (c->id == SISY_RAFT_NONE)
		return sisy_errf(SISY_E_INVAL, "raft: node id must be nonzero");
	if (c->heartbeat_ticks < 1 || c->election_ticks <= c->heartbeat_ticks)
		return sisy_errf(SISY_E_INVAL, "raft: need election_ticks > "
					       "heartbeat_ticks >= 1");
	if (c->max_inflight_msgs < 1 || c->max_inflight_msgs > 4096)
		return sisy_errf(SISY_E_INVAL,
				 "raft: max_inflight_msgs must be 1..4096");
	if (c->max_msg_bytes < 1 || c->max_msg_entries < 1 ||
	    c->max_entry_bytes < 1 || c->max_apply_bytes < 1 ||
	    c->max_uncommitted_bytes < 1)
		return sisy_errf(SISY_E_INVAL,
				 "raft: size limits must be >= 1");
	if (c->max_pending_reads < 1 || c->max_pending_reads > (1u << 20))
		return sisy_errf(SISY_E_INVAL,
				 "raft: max_pending_reads must be 1..2^20");
	return SISY_OK;
}

sisy_err sisy_raft_create(const sisy_raft_config *cfg, sisy_raft **out)
{
	sisy_err rc = check_config(cfg);
	if (rc != SISY_OK)
		return rc;
	sisy_raft *r = calloc(1, sizeof *r);
	if (!r)
		goto nomem;
	r->cfg = *cfg;
	r->id = cfg->id;
	sisy_rand_seed(&r->rand, cfg->rand_seed);
	raft_log_init(&r->log);
	r->infl_pool =
	    calloc((size_t)SISY_RAFT_MAX_NODES * cfg->max_inflight_msgs,
		   sizeof *r->infl_pool);
	r->reads = calloc(cfg->max_pending_reads, sizeof *r->reads);
	if (!r->infl_pool || !r->reads)
		goto nomem;
	r->role = SISY_RAFT_FOLLOWER;
	r->unstable = 1;
	raft_reset_timeout(r);
	*out = r;
	return SISY_OK;
nomem:
	sisy_raft_destroy(r);
	return sisy_errf(SISY_E_NOMEM, "raft: cannot allocate an instance");
}

void sisy_raft_destroy(sisy_raft *r)
{
	if (!r)
		return;
	raft_log_free(&r->log);
	free(r->infl_pool);
	free(r->reads);
	free(r->pq);
	free(r->out);
	free(r->held);
	free(r->rs);
	free(r);
}

static int membership_ok(const sisy_raft_membership *m)
{
	return m->n_voters <= SISY_RAFT_MAX_NODES &&
	       m->n_learners <= SISY_RAFT_MAX_NODES - m->n_voters;
}

/* Entries e[0..n) follow (prev_index, prev_term) contiguously with
 * non-decreasing terms no greater than max_term. */
static int entries_ok(const sisy_raft_entry *e, size_t n, uint64_t prev_index,
		      uint64_t prev_term, uint64_t max_term)
{
	for (size_t k = 0; k < n; k++) {
		if (e[k].index != prev_index + 1 + k || e[k].term < prev_term ||
		    e[k].term > max_term ||
		    e[k].type > SISY_RAFT_ENTRY_CONFIG ||
		    (e[k].len > 0 && !e[k].data))
			return 0;
		prev_term = e[k].term;
	}
	return 1;
}

sisy_err sisy_raft_restore(sisy_raft *r, const sisy_raft_hard_state *hs,
			   const sisy_raft_snapshot_meta *snap,
			   const sisy_raft_entry *ents, size_t n_ents,
			   uint64_t applied)
{
	assert(!r->in_ready);
	if (r->term != 0 || r->log.len != 0 || r->log.snap.index != 0)
		return sisy_errf(SISY_E_INVAL, "raft: restore on a used "
					       "instance");
	sisy_raft_snapshot_meta s;
	memset(&s, 0, sizeof s);
	if (snap)
		s = *snap;
	if (!membership_ok(&s.membership) ||
	    !entries_ok(ents, n_ents, s.index, s.term, UINT64_MAX))
		return sisy_errf(SISY_E_CORRUPT,
				 "raft: restored log does not follow its "
				 "snapshot at %llu contiguously",
				 (unsigned long long)s.index);
	raft_log_reset(&r->log, &s);
	sisy_err rc = raft_log_append(&r->log, ents, n_ents);
	if (rc != SISY_OK) {
		raft_log_reset(&r->log, &(sisy_raft_snapshot_meta){0});
		return rc;
	}
	uint64_t last = raft_log_last(&r->log);
	r->term = raft_max(hs->term, raft_log_last_term(&r->log));
	r->vote = r->term == hs->term ? hs->vote : SISY_RAFT_NONE;
	/* What the state machine applied was committed, even if the lazily
	 * written commit index on disk lags it: never hand it out again. */
	r->commit =
	    raft_min(raft_max(raft_max(hs->commit, s.index), applied), last);
	r->applied = raft_min(raft_max(applied, s.index), r->commit);
	r->unstable = last + 1;
	r->durable = last;
	r->hs_term = hs->term;
	r->hs_vote = hs->vote;
	r->hs_commit = hs->commit;
	r->soft_term = r->term;
	raft_conf_refresh(r);
	raft_reset_timeout(r);
	raft_check_invariants(r);
	return SISY_OK;
}

void sisy_raft_tick(sisy_raft *r)
{
	assert(!r->in_ready);
	if (r->role == SISY_RAFT_LEADER)
		raft_tick_leader(r);
	else
		raft_tick_election(r);
	raft_check_invariants(r);
}

static sisy_err check_msg(const sisy_raft *r, const sisy_raft_msg *m)
{
	if (m->type < 1 || m->type > SISY_RAFT_MSG_TYPE_MAX)
		return sisy_errf(SISY_E_INVAL, "raft: unknown message type %d",
				 m->type);
	if (m->to != r->id || m->from == SISY_RAFT_NONE || m->from == r->id)
		return sisy_errf(SISY_E_INVAL,
				 "raft: message %s from %llu to %llu is "
				 "misaddressed (I am %llu)",
				 sisy_raft_msg_type_name(m->type),
				 (unsigned long long)m->from,
				 (unsigned long long)m->to,
				 (unsigned long long)r->id);
	if (m->type == SISY_RAFT_MSG_APPEND &&
	    ((m->n_entries > 0 && !m->entries) ||
	     !entries_ok(m->entries, m->n_entries, m->index, m->log_term,
			 m->term)))
		return sisy_errf(SISY_E_INVAL,
				 "raft: APPEND from %llu carries "
				 "non-contiguous entries",
				 (unsigned long long)m->from);
	if (m->type == SISY_RAFT_MSG_SNAPSHOT &&
	    (!membership_ok(&m->snapshot.membership) ||
	     m->snapshot.term > m->term))
		return sisy_errf(SISY_E_INVAL, "raft: malformed SNAPSHOT");
	return SISY_OK;
}

static int in_lease(const sisy_raft *r)
{
	return r->cfg.check_quorum && r->leader != SISY_RAFT_NONE &&
	       r->election_elapsed < r->cfg.election_ticks;
}

static int from_leader(uint8_t type)
{
	return type == SISY_RAFT_MSG_APPEND ||
	       type == SISY_RAFT_MSG_HEARTBEAT ||
	       type == SISY_RAFT_MSG_SNAPSHOT;
}

static void reply_stale(sisy_raft *r, const sisy_raft_msg *m)
{
	sisy_raft_msg resp = {0};
	resp.to = m->from;
	resp.reject = 1;
	if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
	    (m->type == SISY_RAFT_MSG_APPEND ||
	     m->type == SISY_RAFT_MSG_HEARTBEAT))
		resp.type = SISY_RAFT_MSG_APPEND_RESP;
	else if (m->type == SISY_RAFT_MSG_PRE_VOTE)
		resp.type = SISY_RAFT_MSG_PRE_VOTE_RESP;
	else if (m->type == SISY_RAFT_MSG_READ_INDEX)
		resp.type = SISY_RAFT_MSG_READ_INDEX_RESP, resp.ctx = m->ctx;
	else
		return;
	raft_send(r, &resp);
}

/* Term rules; 0 if the message is done with. */
static int step_term(sisy_raft *r, const sisy_raft_msg *m)
{
	int vote_req =
	    m->type == SISY_RAFT_MSG_VOTE || m->type == SISY_RAFT_MSG_PRE_VOTE;
	if (m->term > r->term) {
		if (vote_req && in_lease(r) &&
		    !(m->flags & SISY_RAFT_FLAG_TRANSFER))
			return 0;
		if (m->type == SISY_RAFT_MSG_PRE_VOTE ||
		    (m->type == SISY_RAFT_MSG_PRE_VOTE_RESP && !m->reject))
			return 1;
		raft_become_follower(r, m->term,
				     from_leader(m->type) ? m->from
							  : SISY_RAFT_NONE);
		return 1;
	}
	if (m->term < r->term) {
		reply_stale(r, m);
		return 0;
	}
	return 1;
}

static void step_leader_msg(sisy_raft *r, const sisy_raft_msg *m)
{
	/* Same term, sent by a leader: if we are not it, it is ours. */
	if (r->role == SISY_RAFT_LEADER)
		return; /* two leaders in one term: only a broken build */
	if (r->role != SISY_RAFT_FOLLOWER)
		raft_become_follower(r, r->term, m->from);
	if (m->type == SISY_RAFT_MSG_APPEND)
		raft_handle_append(r, m);
	else if (m->type == SISY_RAFT_MSG_HEARTBEAT)
		raft_handle_heartbeat(r, m);
	else
		raft_handle_snapshot(r, m);
}

sisy_err sisy_raft_step(sisy_raft *r, const sisy_raft_msg *m)
{
	assert(!r->in_ready);
	sisy_err rc = check_msg(r, m);
	if (rc != SISY_OK)
		return rc;
	if (!step_term(r, m))
		return SISY_OK;
	switch (m->type) {
	case SISY_RAFT_MSG_PRE_VOTE:
	case SISY_RAFT_MSG_VOTE:
		raft_handle_vote(r, m);
		break;
	case SISY_RAFT_MSG_PRE_VOTE_RESP:
	case SISY_RAFT_MSG_VOTE_RESP:
		raft_handle_vote_resp(r, m);
		break;
	case SISY_RAFT_MSG_APPEND:
	case SISY_RAFT_MSG_HEARTBEAT:
	case SISY_RAFT_MSG_SNAPSHOT:
		step_leader_msg(r, m);
		break;
	case SISY_RAFT_MSG_APPEND_RESP:
		if (r->role == SISY_RAFT_LEADER)
			raft_handle_append_resp(r, m);
		break;
	case SISY_RAFT_MSG_HEARTBEAT_RESP:
		if (r->role == SISY_RAFT_LEADER)
			raft_handle_heartbeat_resp(r, m);
		break;
	case SISY_RAFT_MSG_TIMEOUT_NOW:
		raft_handle_timeout_now(r, m);
		break;
	case SISY_RAFT_MSG_READ_INDEX:
		raft_handle_read_index(r, m);
		break;
	case SISY_RAFT_MSG_READ_INDEX_RESP:
		raft_handle_read_index_resp(r, m);
		break;
	}
	raft_check_invariants(r);
	return SISY_OK;
}

static sisy_err check_can_propose(const sisy_raft *r)
{
	if (r->role != SISY_RAFT_LEADER)
		return sisy_errf(SISY_E_NOTLEADER,
				 "raft: not the leader "
				 "(leader is %llu)",
				 (unsigned long long)r->leader);
	if (r->transferee != SISY_RAFT_NONE)
		return sisy_errf(SISY_E_BUSY,
				 "raft: leadership transfer to %llu in "
				 "progress",
				 (unsigned long long)r->transferee);
	return SISY_OK;
}

sisy_err sisy_raft_propose(sisy_raft *r, sisy_slice data, uint64_t *term,
			   uint64_t *index)
{
	assert(!r->in_ready);
	sisy_err rc = check_can_propose(r);
	if (rc != SISY_OK)
		return rc;
	if (data.len > r->cfg.max_entry_bytes)
		return sisy_errf(SISY_E_TOOBIG,
				 "raft: entry of %zu bytes over the %zu limit",
				 data.len, r->cfg.max_entry_bytes);
	if (r->uncommitted_bytes > 0 &&
	    r->uncommitted_bytes + data.len > r->cfg.max_uncommitted_bytes)
		return sisy_errf(SISY_E_AGAIN,
				 "raft: %llu uncommitted bytes; wait for "
				 "commits",
				 (unsigned long long)r->uncommitted_bytes);
	sisy_raft_entry e = {0};
	e.type = SISY_RAFT_ENTRY_NORMAL;
	e.data = data.data;
	e.len = data.len;
	if ((rc = raft_leader_append(r, &e, 1)) != SISY_OK)
		return rc;
	if (term)
		*term = e.term;
	if (index)
		*index = e.index;
	return SISY_OK;
}

sisy_err sisy_raft_propose_conf(sisy_raft *r, const sisy_raft_conf_change *cc,
				uint64_t *term, uint64_t *index)
{
	assert(!r->in_ready);
	sisy_err rc = check_can_propose(r);
	if (rc != SISY_OK)
		return rc;
	if (raft_log_term_or0(&r->log, r->commit) != r->term)
		return sisy_errf(SISY_E_CONFLICT,
				 "raft: a new leader changes membership only "
				 "after committing an entry of its term");
	if (r->pending_conf_index > r->commit)
		return sisy_errf(SISY_E_CONFLICT,
				 "raft: membership change at %llu still "
				 "pending",
				 (unsigned long long)r->pending_conf_index);
	sisy_raft_membership after;
	if ((rc = raft_membership_change(&r->conf, cc, &after)) != SISY_OK)
		return rc;
	sisy_buf buf = {0};
	if ((rc = sisy_raft_conf_encode(cc, &after, &buf)) != SISY_OK)
		goto fail;
	sisy_raft_entry e = {0};
	e.type = SISY_RAFT_ENTRY_CONFIG;
	e.data = buf.data;
	e.len = buf.len;
	if ((rc = raft_leader_append(r, &e, 1)) != SISY_OK)
		goto fail;
	r->pending_conf_index = e.index;
	if (term)
		*term = e.term;
	if (index)
		*index = e.index;
fail:
	sisy_buf_free(&buf);
	return rc;
}

void sisy_raft_campaign(sisy_raft *r)
{
	assert(!r->in_ready);
	raft_campaign(r, 1);
}

void sisy_raft_report_unreachable(sisy_raft *r, uint64_t to)
{
	assert(!r->in_ready);
	if (r->role != SISY_RAFT_LEADER)
		return;
	struct raft_progress *pr = raft_progress_find(r, to);
	if (pr && pr->state == SISY_RAFT_REPLICATE)
		raft_progress_become_probe(pr);
}

void sisy_raft_get_status(const sisy_raft *r, sisy_raft_status *st)
{
	memset(st, 0, sizeof *st);
	st->id = r->id;
	st->role = r->role;
	st->is_voter = (uint8_t)raft_is_voter(r);
	st->term = r->term;
	st->vote = r->vote;
	st->leader = r->leader;
	st->commit = r->commit;
	st->applied = r->applied;
	st->first_index = raft_log_first(&r->log);
	st->last_index = raft_log_last(&r->log);
	st->durable_index = r->durable;
	st->log_bytes = r->log.bytes;
	st->transferee = r->transferee;
	st->pending_conf_index =
	    r->pending_conf_index > r->commit ? r->pending_conf_index : 0;
	st->compaction = r->log.snap;
	st->membership = r->conf;
}

size_t sisy_raft_get_progress(const sisy_raft *r, sisy_raft_progress *out,
			      size_t cap)
{
	if (r->role != SISY_RAFT_LEADER)
		return 0;
	for (uint32_t k = 0; k < r->n_prs && k < cap; k++) {
		const struct raft_progress *pr = &r->prs[k];
		sisy_raft_progress *o = &out[k];
		memset(o, 0, sizeof *o);
		o->id = pr->id;
		o->is_learner = pr->learner;
		o->state = pr->state;
		o->recent_active = pr->recent_active;
		o->match = pr->match;
		o->next = pr->next;
		o->inflight = pr->infl_count;
		o->pending_snapshot = pr->pending_snapshot;
		o->ticks_since_contact = pr->ticks_since_contact;
	}
	return r->n_prs;
}

const char *sisy_raft_bug(void)
{
#ifdef SISY_RAFT_BUG_NAME
	return SISY_RAFT_BUG_NAME;
#else
	return "";
#endif
}

const char *sisy_raft_msg_type_name(int type)
{
	static const char *const names[] = {
	    "?",
	    "PRE_VOTE",
	    "PRE_VOTE_RESP",
	    "VOTE",
	    "VOTE_RESP",
	    "APPEND",
	    "APPEND_RESP",
	    "HEARTBEAT",
	    "HEARTBEAT_RESP",
	    "SNAPSHOT",
	    "TIMEOUT_NOW",
	    "READ_INDEX",
	    "READ_INDEX_RESP",
	};
	if (type < 1 || type > SISY_RAFT_MSG_TYPE_MAX)
		return "?";
	return names[type];
}

#ifdef SISY_DEBUG
void raft_check_invariants(const sisy_raft *r)
{
	const struct raft_log *l = &r->log;
	(void)l;
	assert(r->commit >= l->snap.index || r->install_pending);
	assert(r->commit <= raft_log_last(l));
	assert(r->durable <= raft_log_last(l));
	assert(r->unstable <= raft_log_last(l) + 1);
	assert(r->unstable >= raft_log_first(l));
	assert(r->n_reads <= r->cfg.max_pending_reads);
	assert(r->role != SISY_RAFT_LEADER || r->leader == r->id);
#ifndef SISY_RAFT_BUGGY
	assert(r->applied <= r->commit);
#endif
	for (uint32_t k = 0; k < r->n_prs; k++) {
		assert(r->prs[k].id != r->id);
		assert(r->prs[k].match < r->prs[k].next);
		assert(r->role != SISY_RAFT_LEADER ||
		       r->prs[k].next <= raft_log_last(l) + 1);
	}
}
#endif
