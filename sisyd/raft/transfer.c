/* transfer.c — planned leadership transfer (thesis §3.10).
 *
 * The leader stops accepting proposals (SISY_E_BUSY), brings the target's
 * log up to its last index, then sends MSG_TIMEOUT_NOW; the target starts
 * an election at once, skipping pre-vote, and its vote requests carry
 * SISY_RAFT_FLAG_TRANSFER so voters answer even inside their check-quorum
 * lease. If the target has not taken over within an election timeout the
 * attempt is dropped and the leader serves again. A new transfer replaces
 * an older one.
 */
#include "raft_int.h"

void raft_transfer_abort(sisy_raft *r)
{
	r->transferee = SISY_RAFT_NONE;
	r->transfer_elapsed = 0;
}

void raft_transfer_maybe_fire(sisy_raft *r, struct raft_progress *pr)
{
	if (r->transferee != pr->id || pr->match != raft_log_last(&r->log))
		return;
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_TIMEOUT_NOW;
	m.to = pr->id;
	raft_send(r, &m);
}

sisy_err sisy_raft_transfer(sisy_raft *r, uint64_t to)
{
	assert(!r->in_ready);
	if (r->role != SISY_RAFT_LEADER)
		return sisy_errf(SISY_E_NOTLEADER,
				 "raft: only the leader can transfer "
				 "leadership");
	if (to == r->id || !sisy_raft_membership_is_voter(&r->conf, to))
		return sisy_errf(SISY_E_INVAL,
				 "raft: cannot transfer leadership to %llu "
				 "(self or not a voter)",
				 (unsigned long long)to);
	if (r->transferee == to)
		return SISY_OK;
	struct raft_progress *pr = raft_progress_find(r, to);
	assert(pr);
	r->transferee = to;
	r->transfer_elapsed = 0;
	if (pr->match == raft_log_last(&r->log))
		raft_transfer_maybe_fire(r, pr);
	else
		raft_send_append(r, pr, 0);
	return SISY_OK;
}

void raft_handle_timeout_now(sisy_raft *r, const sisy_raft_msg *m)
{
	(void)m;
	if (r->role == SISY_RAFT_FOLLOWER)
		raft_campaign(r, 1);
}
