/* readindex.c — linearizable reads without touching the log (§6.4).
 *
 * A read (local, or forwarded by a follower as MSG_READ_INDEX) waits in the
 * leader's queue until the leader has committed an entry of its own term
 * (its no-op): before that its commit index may lag what an earlier leader
 * committed. Then, at the next ready, every waiting read joins one "round":
 * the round records the commit index and is confirmed by a heartbeat
 * broadcast carrying the round number (ctx); once a quorum of voters has
 * echoed that round or a later one, no other leader can have existed when
 * the round began, so every read in it may be served at the recorded index
 * once the state machine has applied that far. Reads arriving meanwhile
 * wait for the next round: one heartbeat round per batch, not per read.
 * Leases are not used: correctness never depends on clocks.
 *
 * Bounds: at most cfg.max_pending_reads queued (SISY_E_AGAIN beyond), at
 * most MAX_ROUNDS unconfirmed rounds at a time. A leader that loses its
 * role fails every queued read (a failed read state locally, a rejecting
 * READ_INDEX_RESP to a follower), so nobody waits for a dead round.
 */
#include "raft_int.h"

#define MAX_ROUNDS 4

sisy_err raft_read_enqueue(sisy_raft *r, uint64_t from, uint64_t ctx)
{
	if (r->n_reads >= r->cfg.max_pending_reads)
		return sisy_errf(SISY_E_AGAIN, "raft: %u reads already queued",
				 r->cfg.max_pending_reads);
	struct raft_read *rd = &r->reads[r->n_reads++];
	rd->from = from;
	rd->ctx = ctx;
	rd->round = 0;
	rd->index = 0;
	return SISY_OK;
}

int raft_read_can_start(const sisy_raft *r)
{
	if (r->role != SISY_RAFT_LEADER ||
	    raft_log_term_or0(&r->log, r->commit) != r->term ||
	    r->read_round - r->read_acked >= MAX_ROUNDS)
		return 0;
	for (uint32_t k = 0; k < r->n_reads; k++)
		if (r->reads[k].round == 0)
			return 1;
	return 0;
}

void raft_read_start_round(sisy_raft *r)
{
	uint64_t round = ++r->read_round;
	for (uint32_t k = 0; k < r->n_reads; k++) {
		if (r->reads[k].round == 0) {
			r->reads[k].round = round;
			r->reads[k].index = r->commit;
		}
	}
	raft_bcast_heartbeat(r);
	raft_read_check(r); /* a single voter confirms itself */
}

static void answer(sisy_raft *r, const struct raft_read *rd, int failed)
{
	if (rd->from == r->id) {
		raft_push_read_state(r, rd->ctx, rd->index, failed);
		return;
	}
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_READ_INDEX_RESP;
	m.to = rd->from;
	m.ctx = rd->ctx;
	m.index = rd->index;
	m.reject = (uint8_t)failed;
	raft_send(r, &m);
}

void raft_read_check(sisy_raft *r)
{
	if (r->role != SISY_RAFT_LEADER)
		return;
	uint64_t acked =
	    raft_min(raft_progress_quorum_read_ack(r), r->read_round);
	if (acked <= r->read_acked)
		return;
	r->read_acked = acked;
	uint32_t kept = 0;
	for (uint32_t k = 0; k < r->n_reads; k++) {
		struct raft_read *rd = &r->reads[k];
		if (rd->round != 0 && rd->round <= acked)
			answer(r, rd, 0);
		else
			r->reads[kept++] = *rd;
	}
	r->n_reads = kept;
}

void raft_read_fail_all(sisy_raft *r)
{
	for (uint32_t k = 0; k < r->n_reads; k++) {
		r->reads[k].index = 0;
		answer(r, &r->reads[k], 1);
	}
	r->n_reads = 0;
	r->read_round = r->read_acked = 0;
}

void raft_handle_read_index(sisy_raft *r, const sisy_raft_msg *m)
{
	if (r->role == SISY_RAFT_LEADER &&
	    raft_read_enqueue(r, m->from, m->ctx) == SISY_OK)
		return;
	struct raft_read rd = {m->from, m->ctx, 0, 0};
	answer(r, &rd, 1);
}

void raft_handle_read_index_resp(sisy_raft *r, const sisy_raft_msg *m)
{
	raft_push_read_state(r, m->ctx, m->reject ? 0 : m->index, m->reject);
}

sisy_err sisy_raft_read_index(sisy_raft *r, uint64_t ctx)
{
	assert(!r->in_ready);
	if (r->role == SISY_RAFT_LEADER)
		return raft_read_enqueue(r, r->id, ctx);
	if (r->role != SISY_RAFT_FOLLOWER || r->leader == SISY_RAFT_NONE)
		return sisy_errf(SISY_E_NOLEADER,
				 "raft: no known leader to ask for a read "
				 "index");
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_READ_INDEX;
	m.to = r->leader;
	m.ctx = ctx;
	raft_send(r, &m);
	return SISY_OK;
}
