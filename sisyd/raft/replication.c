/* replication.c — AppendEntries, heartbeats and the commit rule.
 *
 * Leader side: entries appended by propose() (or the no-op) are sent at the
 * next ready (raft_bcast_append), so a burst of proposals leaves as a few
 * batched APPENDs (bounded by cfg.max_msg_bytes / max_msg_entries) instead
 * of one message each; a follower in REPLICATE gets up to
 * cfg.max_inflight_msgs of them pipelined. A rejection carries the
 * follower's conflict hint (the term at the rejected index and the first
 * index of that term, or its last index + 1 with term 0), so one round trip
 * skips a whole term instead of one entry. Commit (§5.3, §5.4.2): the
 * highest index a quorum of voters holds durably, and only if that entry is
 * of the leader's current term; the leader counts itself by its *durable*
 * index, never by what it merely appended.
 *
 * Follower side: an APPEND whose previous entry matches is accepted: the
 * first conflicting entry and everything after it are dropped, the rest
 * appended, and commit moves to min(leader commit, last new entry). The
 * answer (accept or reject) is held until the log it describes is durable.
 *
 * Lost messages: a PROBE is re-sent on a heartbeat response, at most once
 * per heartbeat interval (the periodic heartbeat after it went out); a
 * REPLICATE follower that stops acknowledging while it still answers
 * heartbeats for an election timeout falls back to PROBE.
 */
#include "raft_int.h"

void raft_commit_to(sisy_raft *r, uint64_t c)
{
	c = raft_min(c, raft_log_last(&r->log));
	if (c <= r->commit)
		return;
	uint64_t old = r->commit;
	r->commit = c;
	if (r->role == SISY_RAFT_LEADER) {
		uint64_t b = raft_log_bytes_between(&r->log, old + 1, c);
		r->uncommitted_bytes -= raft_min(b, r->uncommitted_bytes);
	}
	raft_conf_on_commit(r, old);
	/* A leader that is no longer a voter leaves once its removal
	 * commits, after telling the others the commit index. */
	if (r->role == SISY_RAFT_LEADER && !raft_is_voter(r) &&
	    r->commit >= r->conf_index) {
		raft_bcast_append(r);
		uint64_t best = SISY_RAFT_NONE;
		for (uint32_t k = 0; k < r->n_prs; k++) {
			struct raft_progress *pr = &r->prs[k];
			if (!pr->learner && pr->match == raft_log_last(&r->log))
				best = pr->id;
		}
		if (best != SISY_RAFT_NONE) { /* hand over at once */
			sisy_raft_msg m = {0};
			m.type = SISY_RAFT_MSG_TIMEOUT_NOW;
			m.to = best;
			raft_send(r, &m);
		}
		raft_become_follower(r, r->term, SISY_RAFT_NONE);
	}
}

int raft_maybe_commit(sisy_raft *r)
{
	uint64_t mci = raft_progress_quorum_match(r);
	if (mci <= r->commit)
		return 0;
#ifndef SISY_RAFT_BUG_COMMIT_OLD_TERM
	if (raft_log_term_or0(&r->log, mci) != r->term)
		return 0;
#endif
	raft_commit_to(r, mci);
	return 1;
}

sisy_err raft_leader_append(sisy_raft *r, sisy_raft_entry *e, size_t n)
{
	uint64_t from = raft_log_last(&r->log) + 1;
	uint64_t bytes = 0;
	for (size_t k = 0; k < n; k++) {
		e[k].term = r->term;
		e[k].index = from + k;
		bytes += e[k].len;
	}
	sisy_err rc = raft_log_append(&r->log, e, n);
	if (rc != SISY_OK)
		return rc;
	r->uncommitted_bytes += bytes;
	raft_conf_on_append(r, from);
	r->bcast_pending = 1;
	return SISY_OK;
}

/* One APPEND (or SNAPSHOT) to pr if it can take one. */
static int send_one(sisy_raft *r, struct raft_progress *pr, int empty_ok)
{
	if (raft_progress_is_paused(r, pr))
		return 0;
	uint64_t prev = pr->next - 1, prev_term;
	if (pr->next < raft_log_first(&r->log) ||
	    !raft_log_term(&r->log, prev, &prev_term)) {
		raft_send_snapshot(r, pr);
		return 1;
	}
	uint64_t last = raft_log_last(&r->log);
	size_t n = raft_log_span(&r->log, pr->next, last, r->cfg.max_msg_bytes,
				 r->cfg.max_msg_entries);
	if (n == 0 && !empty_ok && pr->state == SISY_RAFT_REPLICATE)
		return 0;
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_APPEND;
	m.to = pr->id;
	m.log_term = prev_term;
	m.index = prev;
	m.commit = r->commit;
	m.n_entries = n; /* m.entries is resolved when the ready is built */
	raft_send(r, &m);
	if (pr->state == SISY_RAFT_REPLICATE) {
		if (n > 0) {
			pr->next = prev + n + 1;
			raft_progress_infl_add(r, pr, prev + n);
		}
	} else {
		pr->paused = 1;
		pr->probe_hb = r->heartbeat_seq;
	}
	return 1;
}

void raft_send_append(sisy_raft *r, struct raft_progress *pr, int empty_ok)
{
	int sent = 0;
	while (r->role == SISY_RAFT_LEADER &&
	       pr->next <= raft_log_last(&r->log) && send_one(r, pr, 0)) {
		sent = 1;
		if (pr->state != SISY_RAFT_REPLICATE)
			break;
	}
	if (!sent && empty_ok && r->role == SISY_RAFT_LEADER)
		send_one(r, pr, 1);
}

void raft_bcast_append(sisy_raft *r)
{
	for (uint32_t k = 0; k < r->n_prs; k++)
		raft_send_append(r, &r->prs[k], 1);
}

void raft_bcast_heartbeat(sisy_raft *r)
{
	for (uint32_t k = 0; k < r->n_prs; k++) {
		struct raft_progress *pr = &r->prs[k];
		sisy_raft_msg m = {0};
		m.type = SISY_RAFT_MSG_HEARTBEAT;
		m.to = pr->id;
		/* Never past what the follower is known to hold. */
		m.commit = raft_min(pr->match, r->commit);
		m.ctx = r->read_round;
		raft_send(r, &m);
	}
}

void raft_tick_leader(sisy_raft *r)
{
	r->heartbeat_elapsed++;
	r->election_elapsed++;
	for (uint32_t k = 0; k < r->n_prs; k++) {
		struct raft_progress *pr = &r->prs[k];
		if (pr->ticks_since_contact < UINT32_MAX)
			pr->ticks_since_contact++;
		if (pr->state == SISY_RAFT_REPLICATE && pr->infl_count > 0 &&
		    ++pr->stall_ticks >= r->cfg.election_ticks &&
		    pr->ticks_since_contact < r->cfg.election_ticks) {
			/* Alive but silent about our APPENDs: lost. */
			raft_progress_become_probe(pr);
			raft_send_append(r, pr, 0);
		}
		if (pr->state == SISY_RAFT_SNAPSHOT &&
		    ++pr->snapshot_ticks >= 20 * r->cfg.election_ticks)
			raft_progress_become_probe(pr); /* never reported */
	}
	if (r->transferee != SISY_RAFT_NONE &&
	    ++r->transfer_elapsed >= r->cfg.election_ticks)
		raft_transfer_abort(r);
	if (r->election_elapsed >= r->cfg.election_ticks) {
		r->election_elapsed = 0;
		if (r->cfg.check_quorum && !raft_progress_quorum_active(r)) {
			raft_become_follower(r, r->term, SISY_RAFT_NONE);
			return;
		}
		for (uint32_t k = 0; k < r->n_prs; k++)
			r->prs[k].recent_active = 0;
	}
	if (r->heartbeat_elapsed >= r->cfg.heartbeat_ticks) {
		r->heartbeat_elapsed = 0;
		r->heartbeat_seq++;
		raft_bcast_heartbeat(r);
	}
}

void raft_truncate(sisy_raft *r, uint64_t from)
{
	raft_assert_safe(from > r->commit);
	raft_log_truncate(&r->log, from);
	/* Only a broken-rule build gets here with from <= commit. */
	if (r->commit >= from)
		r->commit = from - 1;
	if (r->applied >= from)
		r->applied = from - 1;
	r->unstable = raft_min(r->unstable, from);
	raft_durable_clip(r, from);
	raft_outbox_purge(r, from);
}

/* The follower's hint for a rejected APPEND at prev index `i`. */
static void conflict_hint(const sisy_raft *r, uint64_t i, sisy_raft_msg *resp)
{
	uint64_t t;
	if (i > raft_log_last(&r->log) || !raft_log_term(&r->log, i, &t)) {
		resp->hint_index = raft_log_last(&r->log) + 1;
		resp->hint_term = 0;
		return;
	}
	resp->hint_term = t;
	resp->hint_index = raft_log_first_of_term(&r->log, t, r->commit + 1, i);
}

void raft_handle_append(sisy_raft *r, const sisy_raft_msg *m)
{
	r->election_elapsed = 0;
	r->leader = m->from;
	sisy_raft_msg resp = {0};
	resp.type = SISY_RAFT_MSG_APPEND_RESP;
	resp.to = m->from;
	if (m->index < r->commit) { /* all of it we already committed */
		resp.index = r->commit;
		raft_send_durable(r, &resp);
		return;
	}
	uint64_t t;
	if (!raft_log_term(&r->log, m->index, &t) || t != m->log_term) {
		resp.reject = 1;
		resp.index = m->index;
		conflict_hint(r, m->index, &resp);
		raft_send_durable(r, &resp);
		return;
	}
	size_t k;
	for (k = 0; k < m->n_entries; k++) {
		const sisy_raft_entry *e = &m->entries[k];
		if (!raft_log_term(&r->log, e->index, &t) || t != e->term)
			break;
	}
	if (k < m->n_entries) {
		uint64_t from = m->entries[k].index;
		if (from <= raft_log_last(&r->log))
			raft_truncate(r, from);
		if (raft_log_append(&r->log, &m->entries[k],
				    m->n_entries - k) != SISY_OK) {
			raft_conf_on_append(r, from);
			raft_oom(r, "append entries"); /* as if lost */
			return;
		}
		raft_conf_on_append(r, from);
	}
	uint64_t last_new = m->index + m->n_entries;
	raft_commit_to(r, raft_min(m->commit, last_new));
	resp.index = last_new;
	raft_send_durable(r, &resp);
}

/* Where to probe next after a rejection (see the file comment). */
static uint64_t reject_next(const sisy_raft *r, const struct raft_progress *pr,
			    const sisy_raft_msg *m)
{
	uint64_t next = m->hint_index;
	if (m->hint_term != 0) {
		uint64_t j =
		    raft_log_last_le_term(&r->log, m->hint_term, m->index);
		if (j > 0 && raft_log_term_or0(&r->log, j) == m->hint_term)
			next = j + 1;
	}
	next = raft_min(next, m->index);
	return raft_max(next, pr->match + 1);
}

void raft_handle_append_resp(sisy_raft *r, const sisy_raft_msg *m)
{
	struct raft_progress *pr = raft_progress_find(r, m->from);
	if (!pr)
		return;
	pr->recent_active = 1;
	pr->ticks_since_contact = 0;
	if (m->reject) {
		if (pr->state == SISY_RAFT_SNAPSHOT ||
		    (pr->state == SISY_RAFT_REPLICATE &&
		     m->index <= pr->match) ||
		    (pr->state == SISY_RAFT_PROBE && m->index != pr->next - 1))
			return; /* stale */
		uint64_t next = reject_next(r, pr, m);
		raft_progress_become_probe(pr);
		pr->next = next;
		raft_send_append(r, pr, 0);
		return;
	}
	int moved = raft_progress_update(pr, m->index);
	int probe_ok = pr->state == SISY_RAFT_PROBE && m->index == pr->match &&
		       pr->next == pr->match + 1;
	if (!moved && !probe_ok)
		return;
	if (pr->state == SISY_RAFT_PROBE)
		raft_progress_become_replicate(pr);
	else if (pr->state == SISY_RAFT_SNAPSHOT &&
		 pr->match >= pr->pending_snapshot)
		raft_progress_become_replicate(pr);
	else if (pr->state == SISY_RAFT_REPLICATE)
		raft_progress_infl_free_to(r, pr, m->index);
	if (raft_maybe_commit(r))
		r->bcast_pending = 1;
	if (r->role != SISY_RAFT_LEADER)
		return; /* a removed leader just left */
	raft_transfer_maybe_fire(r, pr);
	raft_send_append(r, pr, 0);
}

void raft_handle_heartbeat(sisy_raft *r, const sisy_raft_msg *m)
{
	r->election_elapsed = 0;
	r->leader = m->from;
	raft_commit_to(r, m->commit);
	sisy_raft_msg resp = {0};
	resp.type = SISY_RAFT_MSG_HEARTBEAT_RESP;
	resp.to = m->from;
	resp.ctx = m->ctx;
	raft_send(r, &resp);
}

void raft_handle_heartbeat_resp(sisy_raft *r, const sisy_raft_msg *m)
{
	struct raft_progress *pr = raft_progress_find(r, m->from);
	if (!pr)
		return;
	pr->recent_active = 1;
	pr->ticks_since_contact = 0;
	if (m->ctx > pr->read_ack) {
		pr->read_ack = raft_min(m->ctx, r->read_round);
		raft_read_check(r);
	}
	/* A PROBE is sent again at most once per heartbeat interval: the
	 * answers to a stalled link's backlog of heartbeats (or to ReadIndex
	 * rounds) arrive by the hundred, and each would otherwise send the
	 * same APPEND of up to max_msg_bytes again. */
	if (pr->state == SISY_RAFT_PROBE && pr->probe_hb != r->heartbeat_seq)
		pr->paused = 0;
	/* Behind: send what is missing, or at least an empty APPEND at
	 * `next`, whose rejection tells us our APPENDs were lost (say, the
	 * follower restarted). */
	if (pr->match < raft_log_last(&r->log))
		raft_send_append(r, pr, 1);
}
