/* election.c — roles, election timeouts, pre-vote and vote.
 *
 * A voter that hears nothing for its randomized timeout (drawn from
 * [election_ticks, 2 * election_ticks) by the instance's PRNG) campaigns.
 * With pre-vote it first asks, at term + 1 but without bumping its own
 * term, whether a quorum would vote for it; only then does it bump the term
 * and ask for real, so a node that was partitioned away cannot disrupt a
 * healthy leader by coming back with a high term. With check-quorum a node
 * that heard from a leader within the election timeout ignores (pre)votes
 * ("leader lease" for votes) unless the request is part of a leadership
 * transfer.
 *
 * Durability: a vote grant (and a candidate's own vote for itself) leaves
 * only once the term and vote it promises are durable (raft_send_durable);
 * pre-votes promise nothing.
 */
#include "raft_int.h"

int raft_is_voter(const sisy_raft *r)
{
	return sisy_raft_membership_is_voter(&r->conf, r->id);
}

void raft_reset_timeout(sisy_raft *r)
{
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->randomized_timeout =
	    r->cfg.election_ticks +
	    (uint32_t)sisy_rand_below(&r->rand, r->cfg.election_ticks);
}

/* Leaves whatever role we had, at `term`. */
static void reset_role(sisy_raft *r, uint64_t term)
{
	if (r->role == SISY_RAFT_LEADER)
		raft_read_fail_all(r);
	if (term != r->term) {
		assert(term > r->term);
		r->term = term;
		r->vote = SISY_RAFT_NONE;
	}
	r->leader = SISY_RAFT_NONE;
	raft_reset_timeout(r);
	r->n_votes = 0;
	r->transferee = SISY_RAFT_NONE;
	r->bcast_pending = 0;
	r->uncommitted_bytes = 0;
}

void raft_become_follower(sisy_raft *r, uint64_t term, uint64_t leader)
{
	reset_role(r, term);
	r->role = SISY_RAFT_FOLLOWER;
	r->leader = leader;
}

static void send_vote_requests(sisy_raft *r, uint8_t type, uint64_t term,
			       int transfer)
{
	for (uint32_t k = 0; k < r->conf.n_voters; k++) {
		uint64_t id = r->conf.voters[k];
		if (id == r->id)
			continue;
		sisy_raft_msg m = {0};
		m.type = type;
		m.to = id;
		m.term = term;
		m.log_term = raft_log_last_term(&r->log);
		m.index = raft_log_last(&r->log);
		m.flags = transfer ? SISY_RAFT_FLAG_TRANSFER : 0;
		raft_send(r, &m);
	}
}

/* Records one answer; returns the number of grants and rejections among
 * the current voters. */
static void tally(sisy_raft *r, uint64_t from, int granted, uint32_t *yes,
		  uint32_t *no)
{
	uint32_t k;
	for (k = 0; k < r->n_votes; k++)
		if (r->votes[k].id == from)
			break;
	if (k == r->n_votes && k < SISY_RAFT_MAX_NODES &&
	    sisy_raft_membership_is_voter(&r->conf, from)) {
		r->votes[k].id = from;
		r->votes[k].granted = (uint8_t)granted;
		r->n_votes++;
	}
	*yes = *no = 0;
	for (k = 0; k < r->n_votes; k++) {
		if (!sisy_raft_membership_is_voter(&r->conf, r->votes[k].id))
			continue;
		if (r->votes[k].granted)
			(*yes)++;
		else
			(*no)++;
	}
}

static void poll(sisy_raft *r, uint64_t from, int granted);

static void become_candidate(sisy_raft *r, int transfer)
{
	reset_role(r, r->term + 1);
	r->role = SISY_RAFT_CANDIDATE;
	r->vote = r->id;
	send_vote_requests(r, SISY_RAFT_MSG_VOTE, r->term, transfer);
	/* Our own vote counts only once it is durable, like anyone's. */
	sisy_raft_msg self = {0};
	self.type = SISY_RAFT_MSG_VOTE_RESP;
	self.to = r->id;
	self.term = r->term;
	raft_send_durable(r, &self);
}

static void become_pre_candidate(sisy_raft *r)
{
	/* Term and vote stay: a pre-vote changes nothing durable. */
	r->leader = SISY_RAFT_NONE;
	raft_reset_timeout(r);
	r->n_votes = 0;
	r->role = SISY_RAFT_PRE_CANDIDATE;
	send_vote_requests(r, SISY_RAFT_MSG_PRE_VOTE, r->term + 1, 0);
	poll(r, r->id, 1);
}

void raft_campaign(sisy_raft *r, int transfer)
{
	if (!raft_is_voter(r) || r->role == SISY_RAFT_LEADER)
		return;
	if (r->cfg.pre_vote && !transfer)
		become_pre_candidate(r);
	else
		become_candidate(r, transfer);
}

void raft_become_leader(sisy_raft *r)
{
	assert(r->role == SISY_RAFT_CANDIDATE);
	r->role = SISY_RAFT_LEADER;
	r->leader = r->id;
	r->n_votes = 0;
	r->election_elapsed = 0;
	r->heartbeat_elapsed = 0;
	r->read_round = r->read_acked = 0;
	raft_progress_reset_all(r);
	/* An uncommitted config entry from an earlier term is still pending. */
	r->pending_conf_index = r->conf_index;
	r->uncommitted_bytes = raft_log_bytes_between(&r->log, r->commit + 1,
						      raft_log_last(&r->log));
	/* The no-op: committing it commits every earlier entry (§5.4.2) and
	 * opens ReadIndex and membership changes for this term. */
	sisy_raft_entry noop = {0};
	noop.type = SISY_RAFT_ENTRY_NOOP;
	if (raft_leader_append(r, &noop, 1) != SISY_OK)
		raft_oom(r, "no-op entry"); /* commits with the next entry */
	r->bcast_pending = 1;
}

static void poll(sisy_raft *r, uint64_t from, int granted)
{
	uint32_t yes, no;
	tally(r, from, granted, &yes, &no);
	uint32_t q = raft_quorum(&r->conf);
	if (yes >= q) {
		if (r->role == SISY_RAFT_PRE_CANDIDATE)
			become_candidate(r, 0);
		else
			raft_become_leader(r);
	} else if (no > r->conf.n_voters - q) {
		raft_become_follower(r, r->term, SISY_RAFT_NONE);
	}
}

/* Only a voter restarts the count when its timeout passes (it campaigns).
 * A learner's count keeps growing (saturating): restarted, it would put
 * the learner back inside its old leader's lease (raft.c, in_lease) at
 * every timeout, so it would ignore most (pre-)votes -- and a learner that
 * missed its own promotion holds a vote the new configuration needs. */
void raft_tick_election(sisy_raft *r)
{
	if (r->election_elapsed < UINT32_MAX)
		r->election_elapsed++;
	if (r->election_elapsed >= r->randomized_timeout && raft_is_voter(r)) {
		r->election_elapsed = 0;
		raft_campaign(r, 0);
	}
}

void raft_handle_vote(sisy_raft *r, const sisy_raft_msg *m)
{
	int pre = m->type == SISY_RAFT_MSG_PRE_VOTE;
	int can_vote =
	    r->vote == m->from ||
	    (r->vote == SISY_RAFT_NONE && r->leader == SISY_RAFT_NONE) ||
	    (pre && m->term > r->term);
#ifdef SISY_RAFT_BUG_VOTE_NO_LOG_CHECK
	int log_ok = 1;
#else
	int log_ok = raft_log_up_to_date(&r->log, m->log_term, m->index);
#endif
	sisy_raft_msg resp = {0};
	resp.type = pre ? SISY_RAFT_MSG_PRE_VOTE_RESP : SISY_RAFT_MSG_VOTE_RESP;
	resp.to = m->from;
	if (can_vote && log_ok) {
		resp.term = m->term;
		if (pre) {
			raft_send(r, &resp);
			return;
		}
		r->election_elapsed = 0;
		r->vote = m->from;
		raft_send_durable(r, &resp);
		return;
	}
	resp.term = r->term;
	resp.reject = 1;
	raft_send(r, &resp);
}

void raft_handle_vote_resp(sisy_raft *r, const sisy_raft_msg *m)
{
	if (m->type == SISY_RAFT_MSG_PRE_VOTE_RESP) {
		/* A grant carries the term we asked for; a rejection ours. */
		if (r->role != SISY_RAFT_PRE_CANDIDATE)
			return;
		if (m->reject ? m->term != r->term : m->term != r->term + 1)
			return;
	} else {
		if (r->role != SISY_RAFT_CANDIDATE || m->term != r->term)
			return;
	}
	poll(r, m->from, !m->reject);
}
