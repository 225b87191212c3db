/* ready.c — the ready / advance / persisted protocol and the outbox.
 *
 * Durability bookkeeping:
 *   unstable     first log index not yet given out in a ready to persist;
 *   pq           one record per ready with a persist_id, in order: the last
 *                log index that will be durable once that id is;
 *   durable      the prefix of our log known to be on disk as we hold it;
 *   persisted_id the highest id the caller reported durable.
 * A truncation at `from` (a conflicting suffix replaced, or a snapshot
 * installed) clips `durable` and every pending record to from - 1: the disk
 * still holds the old suffix until the ready that replaces it persists.
 *
 * Held messages: raft_send_durable() tags a message with the persist id
 * that covers the state it promises — the id of the next ready if
 * something is still waiting to be given out, else the last id given out —
 * and releases it when persisted() reaches that id (at once if it already
 * has). So no vote grant or append acknowledgement can leave before what
 * it promises is durable, whatever the caller does.
 *
 * Outbox APPENDs carry no entry pointers until the ready is built (the log
 * array may move when it grows); a truncation or compaction drops queued
 * APPENDs whose entries changed, which the protocol sees as lost messages.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"
#include "log.h"

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 1;
	size_t n = *cap ? *cap * 2 : 16;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * elem);
	if (!q)
		return 0;
	*p = q;
	*cap = n;
	return 1;
}

void raft_oom(sisy_raft *r, const char *what)
{
	sisy_log(r->cfg.logger, SISY_LOG_WARN, "raft",
		 "node %llu: out of memory (%s); dropped, as if lost",
		 (unsigned long long)r->id, what);
}

void raft_send(sisy_raft *r, sisy_raft_msg *m)
{
	m->from = r->id;
	if (m->term == 0)
		m->term = r->term;
	assert(m->to != r->id);
	if (!grow((void **)&r->out, &r->cap_out, r->n_out + 1,
		  sizeof *r->out)) {
		raft_oom(r, "outbox");
		return;
	}
	r->out[r->n_out++] = *m;
}

static void release(sisy_raft *r, sisy_raft_msg *m)
{
	if (m->to == r->id) /* a candidate's own vote */
		raft_handle_vote_resp(r, m);
	else
		raft_send(r, m);
}

static int persist_pending(const sisy_raft *r)
{
	return r->install_pending || r->unstable <= raft_log_last(&r->log) ||
	       r->hs_term != r->term || r->hs_vote != r->vote;
}

void raft_send_durable(sisy_raft *r, sisy_raft_msg *m)
{
	m->from = r->id;
	if (m->term == 0)
		m->term = r->term;
#ifdef SISY_RAFT_BUG_ACK_BEFORE_DURABLE
	release(r, m);
	return;
#endif
	uint64_t need = r->last_persist_id + (persist_pending(r) ? 1 : 0);
	if (need <= r->persisted_id) {
		release(r, m);
		return;
	}
	if (!grow((void **)&r->held, &r->cap_held, r->n_held + 1,
		  sizeof *r->held)) {
		raft_oom(r, "held message");
		return;
	}
	r->held[r->n_held].m = *m;
	r->held[r->n_held].need = need;
	r->n_held++;
}

void raft_outbox_purge(sisy_raft *r, uint64_t from)
{
	uint64_t first = raft_log_first(&r->log);
	size_t kept = 0;
	for (size_t k = 0; k < r->n_out; k++) {
		const sisy_raft_msg *m = &r->out[k];
		int drop =
		    m->type == SISY_RAFT_MSG_APPEND && m->n_entries > 0 &&
		    (m->index + m->n_entries >= from || m->index + 1 < first);
		if (!drop)
			r->out[kept++] = *m;
	}
	r->n_out = kept;
}

void raft_durable_clip(sisy_raft *r, uint64_t from)
{
	assert(from > 0);
	r->durable = raft_min(r->durable, from - 1);
	for (size_t k = 0; k < r->pq_len; k++)
		r->pq[k].last = raft_min(r->pq[k].last, from - 1);
}

sisy_err raft_push_read_state(sisy_raft *r, uint64_t ctx, uint64_t index,
			      int failed)
{
	if (!grow((void **)&r->rs, &r->cap_rs, r->n_rs + 1, sizeof *r->rs)) {
		raft_oom(r, "read state");
		return SISY_E_NOMEM;
	}
	sisy_raft_read_state *s = &r->rs[r->n_rs++];
	s->ctx = ctx;
	s->index = index;
	s->failed = (uint8_t)failed;
	return SISY_OK;
}

/* The highest index that may be handed out for apply. */
static uint64_t apply_limit(const sisy_raft *r)
{
	if (r->install_pending)
		return r->applied;
#ifdef SISY_RAFT_BUG_APPLY_BEFORE_COMMIT
	return raft_max(r->applied, r->durable);
#else
	return raft_max(r->applied, raft_min(r->commit, r->durable));
#endif
}

static int soft_changed(const sisy_raft *r)
{
	return r->role != r->soft_role || r->leader != r->soft_leader ||
	       r->term != r->soft_term;
}

int sisy_raft_has_ready(const sisy_raft *r)
{
	if (r->n_out || r->n_rs || persist_pending(r) ||
	    r->hs_commit != r->commit || soft_changed(r) ||
	    r->applied < apply_limit(r))
		return 1;
	return r->role == SISY_RAFT_LEADER &&
	       (r->bcast_pending || raft_read_can_start(r));
}

/* Work deferred to the ready so it batches: one read round for every read
 * queued since the last ready, one APPEND per follower for every proposal
 * since then. */
static void flush(sisy_raft *r)
{
	if (r->role != SISY_RAFT_LEADER)
		return;
	if (raft_read_can_start(r))
		raft_read_start_round(r);
	if (r->bcast_pending) {
		r->bcast_pending = 0;
		raft_bcast_append(r);
	}
}

static void ready_persist(sisy_raft *r, sisy_raft_ready *rd)
{
	uint64_t last = raft_log_last(&r->log);
	if (persist_pending(r)) {
		if (!grow((void **)&r->pq, &r->pq_cap, r->pq_len + 1,
			  sizeof *r->pq)) {
			raft_oom(r, "persist queue"); /* retried next ready */
			return;
		}
		rd->persist_id = ++r->last_persist_id;
		r->pq[r->pq_len].id = rd->persist_id;
		r->pq[r->pq_len].last = last;
		r->pq_len++;
		if (r->install_pending) {
			r->rd_snap = r->install;
			rd->snapshot = &r->rd_snap;
			r->applied = r->install.index;
			r->install_pending = 0;
		}
		if (r->unstable <= last) {
			assert(r->unstable >= raft_log_first(&r->log));
			rd->entries = raft_log_at(&r->log, r->unstable);
			rd->n_entries = (size_t)(last - r->unstable + 1);
			r->unstable = last + 1;
		}
	}
	if (rd->persist_id || r->hs_commit != r->commit) {
		rd->has_hard_state = 1;
		rd->hard_state.term = r->term;
		rd->hard_state.vote = r->vote;
		rd->hard_state.commit = r->commit;
		r->hs_term = r->term;
		r->hs_vote = r->vote;
		r->hs_commit = r->commit;
	}
}

void sisy_raft_get_ready(sisy_raft *r, sisy_raft_ready *rd)
{
	assert(!r->in_ready);
	memset(rd, 0, sizeof *rd);
	flush(r);
	if (soft_changed(r)) {
		rd->soft_changed = 1;
		r->soft_role = r->role;
		r->soft_leader = r->leader;
		r->soft_term = r->term;
	}
	rd->role = r->role;
	rd->leader = r->leader;
	rd->term = r->term;
	ready_persist(r, rd);
	uint64_t hi = apply_limit(r);
	if (!rd->snapshot && r->applied < hi) {
		uint64_t lo = r->applied + 1;
		size_t n = raft_log_span(&r->log, lo, hi,
					 r->cfg.max_apply_bytes, SIZE_MAX);
		rd->committed = raft_log_at(&r->log, lo);
		rd->n_committed = n;
		r->applied = lo + n - 1;
	}
	for (size_t k = 0; k < r->n_out; k++) {
		sisy_raft_msg *m = &r->out[k];
		if (m->type == SISY_RAFT_MSG_APPEND && m->n_entries > 0)
			m->entries = raft_log_at(&r->log, m->index + 1);
	}
	rd->msgs = r->out;
	rd->n_msgs = r->n_out;
	rd->reads = r->rs;
	rd->n_reads = r->n_rs;
	r->in_ready = 1;
	raft_check_invariants(r);
}

void sisy_raft_advance(sisy_raft *r)
{
	assert(r->in_ready);
	r->n_out = 0;
	r->n_rs = 0;
	r->in_ready = 0;
}

void sisy_raft_persisted(sisy_raft *r, uint64_t id)
{
	assert(!r->in_ready);
	assert(id <= r->last_persist_id);
	if (id <= r->persisted_id)
		return;
	r->persisted_id = id;
	size_t k = 0;
	while (k < r->pq_len && r->pq[k].id <= id)
		r->durable = r->pq[k++].last;
	if (k > 0)
		memmove(r->pq, r->pq + k, (r->pq_len - k) * sizeof *r->pq);
	r->pq_len -= k;
	/* Release in order; a released self-vote may make us leader, which
	 * queues more — those carry a later `need`. */
	size_t kept = 0, n = r->n_held;
	for (k = 0; k < n; k++) {
		if (r->held[k].need <= id) {
			sisy_raft_msg m = r->held[k].m;
			release(r, &m);
		} else {
			r->held[kept++] = r->held[k];
		}
	}
	if (kept < n)
		memmove(r->held + kept, r->held + n,
			(r->n_held - n) * sizeof *r->held);
	r->n_held = kept + (r->n_held - n);
	if (r->role == SISY_RAFT_LEADER && raft_maybe_commit(r))
		r->bcast_pending = 1;
	raft_check_invariants(r);
}
