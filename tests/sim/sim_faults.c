/* sim_faults.c — the fault schedule of the fault phase.
 *
 * For --steps simulated milliseconds, every 10 ms to fault_gap_max (a
 * per-seed storminess) one random action: a partition (isolate a node,
 * isolate the leader, split the cluster in two, or block some links one
 * way; each heals after a while), a crash of one node (the leader more
 * often) or a power failure of several at once (each restarts 20-1500 ms
 * later from what its disk kept), the loss of a node's disk (gone for good;
 * the operator removes it and adds a fresh node), a planned replacement, a
 * shrink or growth of the cluster (3..5 voters), a leadership transfer, or
 * a change of the network's loss, duplication, delay and reordering.
 *
 * Leader churn: with a per-seed probability, a node that has just become
 * leader is crashed or isolated 0-30 ms later, so leaders come and go
 * while they still hold entries of older terms (the Figure 8 situations of
 * the Raft paper); and with another, a leader whose commit index has just
 * moved is crashed or isolated 0-3 ms later, before its followers learn
 * of it.
 *
 * The Figure 8 profile (sim_fig8.c): one seed in 8 (chosen by a PRNG of its
 * own, so the other seeds draw the same numbers as without it) runs with
 * one-entry appends and, between ordinary faults, plays the history of
 * Figure 8 of the Raft paper on purpose, with partitions, a crash and slow
 * messages only: a leader L1 is isolated the moment it takes a client write
 * X; the next leader L2 is isolated the moment it wins (its no-op stays on
 * it alone); L1 rejoins a group of exactly a quorum, where only it can win,
 * and re-replicates X while the appends carrying its new term's entries
 * (the no-op first) are 20-60 ms slow; the moment its commit index reaches
 * X it is isolated (half the time also crashed) and L2 rejoins a quorum
 * group without it, where L2's newer last term wins. A correct core waits
 * for its no-op before counting X, so L2 cannot win there; a core that
 * counts old-term replicas (commit_old_term) has committed X and L2's
 * victory breaks leader completeness. While a play runs (at most ~5 s, a
 * step that misses its 1.5 s deadline abandons it) the ordinary faults,
 * leader churn and commit hits stand still.
 *
 * The lost-quorum profile (sim_lostq.c): one seed in 8 of the others (a
 * PRNG of its own again) plays a membership history instead: with 3 or 5
 * voters all up, a follower's disk is lost and the operator replaces it;
 * the moment another old voter acknowledges the promotion of the new node
 * to the leader, the leader loses its disk (with 5 nodes one more old voter
 * too; half the time the acker crashes). A quorum of the configuration just
 * appended is left, none of the one before it: a core that puts a
 * configuration in force only at commit (config_at_commit) never elects a
 * leader again. The ordinary faults, leader churn and commit hits stand
 * still while a play runs.
 */
#include <string.h>

#include "sim.h"

#define MIN_VOTERS 3
#define MAX_VOTERS 5

#define U(x) ((unsigned long long)(x))

static void schedule(sim *s, int type, sim_time after, uint64_t a)
{
	sim_event ev = {.type = (uint16_t)type, .slot = -1, .a = a};
	sim_schedule(s, s->now + after, &ev);
}

void sim_faults_start(sim *s)
{
	static const sim_time gaps[] = {100 * SIM_MS, 250 * SIM_MS,
					600 * SIM_MS};
	s->fault_gap_max = gaps[sisy_rand_below(&s->rand, 3)];
	static const uint32_t churn[] = {0, 0, 300, 700};
	s->leader_churn_pm = churn[sisy_rand_below(&s->rand, 4)];
	static const uint32_t hits[] = {0, 5, 20};
	s->commit_hit_pm = hits[sisy_rand_below(&s->rand, 3)];
	if (s->f8.on)
		s->f8.next_try =
		    s->now + sim_rand_range(s, 100 * SIM_MS, 1500 * SIM_MS);
	if (s->lq.on)
		s->lq.next_try =
		    s->now + sim_rand_range(s, 100 * SIM_MS, 1500 * SIM_MS);
	schedule(s, SIM_EV_FAULT, sim_rand_range(s, 100 * SIM_MS, 300 * SIM_MS),
		 0);
	schedule(s, SIM_EV_OPERATOR, 50 * SIM_MS, 0);
	schedule(s, SIM_EV_END_FAULTS, s->opts.steps * SIM_MS, 0);
}

int sim_leader_slot(const sim *s)
{
	int best = -1;
	uint64_t best_term = 0;
	for (int i = 0; i < s->nslots; i++) {
		const sim_node *n = &s->nodes[i];
		if (n->state != SIM_NODE_UP)
			continue;
		sisy_raft_status st;
		sisy_raft_get_status(n->r, &st);
		if (st.role == SISY_RAFT_LEADER && st.term > best_term) {
			best = i;
			best_term = st.term;
		}
	}
	return best;
}

static int random_slot(sim *s, int state)
{
	int cand[SIM_MAX_SLOTS], k = 0;
	for (int i = 0; i < s->nslots; i++)
		if (s->nodes[i].state == state)
			cand[k++] = i;
	return k ? cand[sisy_rand_below(&s->rand, (uint64_t)k)] : -1;
}

/* ---- partitions -------------------------------------------------------------
 */

static void block(sim *s, int a, int b)
{
	s->net.blocked[a][b] = 1;
}

static void isolate(sim *s, int x)
{
	for (int i = 0; i < s->nslots; i++)
		if (i != x) {
			block(s, x, i);
			block(s, i, x);
		}
}

static void partition(sim *s)
{
	uint64_t kind = sisy_rand_below(&s->rand, 100);
	sim_net_heal_all(s);
	s->partition_gen++;
	if (kind < 30) {
		sim_tracef(s, "partition healed");
		return;
	}
	if (kind < 55) {
		int x = random_slot(s, SIM_NODE_UP);
		if (x < 0)
			return;
		isolate(s, x);
		sim_tracef(s, "PARTITION n%llu isolated", U(s->nodes[x].id));
	} else if (kind < 70) {
		int x = sim_leader_slot(s);
		if (x < 0)
			return;
		isolate(s, x);
		sim_tracef(s, "PARTITION leader n%llu isolated",
			   U(s->nodes[x].id));
	} else if (kind < 85) {
		uint8_t side[SIM_MAX_SLOTS];
		char desc[128] = "";
		size_t len = 0;
		for (int i = 0; i < s->nslots; i++) {
			side[i] = (uint8_t)sisy_rand_below(&s->rand, 2);
			if (side[i] && len < sizeof desc - 8)
				len += (size_t)snprintf(
				    desc + len, sizeof desc - len, " n%llu",
				    U(s->nodes[i].id));
		}
		for (int i = 0; i < s->nslots; i++)
			for (int j = 0; j < s->nslots; j++)
				if (side[i] != side[j])
					block(s, i, j);
		sim_tracef(s, "PARTITION split {%s } from the rest", desc);
	} else {
		int links = (int)sim_rand_range(s, 1, 4);
		for (int k = 0; k < links; k++) {
			int a =
			    (int)sisy_rand_below(&s->rand, (uint64_t)s->nslots);
			int b =
			    (int)sisy_rand_below(&s->rand, (uint64_t)s->nslots);
			if (a == b)
				continue;
			block(s, a, b);
			sim_tracef(s,
				   "PARTITION one-way n%llu -> n%llu blocked",
				   U(s->nodes[a].id), U(s->nodes[b].id));
		}
	}
	schedule(s, SIM_EV_HEAL_LINK,
		 sim_rand_range(s, 100 * SIM_MS, 2000 * SIM_MS),
		 s->partition_gen);
}

void sim_heal_link(sim *s, uint64_t gen)
{
	if (gen != s->partition_gen || s->phase != SIM_PHASE_FAULTS)
		return;
	sim_net_heal_all(s);
	sim_tracef(s, "partition healed");
}

/* ---- crashes ---- */

void sim_lose_disk(sim *s, sim_node *n, const char *by)
{
	if (n->state == SIM_NODE_DOWN)
		s->down_count--;
	sim_tracef(s, "%sDISK LOST n%llu: remove it, add a new node", by,
		   U(n->id));
	sim_node_stop_forever(s, n, "disk lost");
	sim_operator_push(s, SIM_TASK_REMOVE, n->id, false);
	sim_operator_push(s, SIM_TASK_ADD, 0, false);
}

void sim_crash_restart(sim *s, sim_node *n)
{
	sim_node_crash(s, n);
	s->down_count++;
	sim_event ev = {
	    .type = SIM_EV_RESTART, .slot = (int16_t)n->slot, .inc = n->inc};
	sim_schedule(s, s->now + sim_rand_range(s, 20 * SIM_MS, 1500 * SIM_MS),
		     &ev);
}

/* Several nodes lose power at once: whatever none of them synced is gone
 * everywhere (the case that shows an acknowledgement given too early). */
static void power_failure(sim *s)
{
	int k = 0;
	for (int i = 0; i < s->nslots; i++)
		if (s->nodes[i].state == SIM_NODE_UP &&
		    sisy_rand_chance(&s->rand, 2, 3)) {
			sim_crash_restart(s, &s->nodes[i]);
			k++;
		}
	sim_tracef(s, "POWER FAILURE: %d nodes crashed at once", k);
}

static void crash(sim *s)
{
	if (sisy_rand_chance(&s->rand, 1, 6)) {
		power_failure(s);
		return;
	}
	if (s->down_count >= s->opts.nodes - 1)
		return;
	int x = sisy_rand_chance(&s->rand, 2, 5) ? sim_leader_slot(s) : -1;
	if (x < 0)
		x = random_slot(s, SIM_NODE_UP);
	if (x < 0)
		return;
	sim_crash_restart(s, &s->nodes[x]);
}

/* ---- membership ---- */

/* The leader's committed membership (false if no leader or a change is in
 * flight). */
static bool membership(sim *s, sisy_raft_membership *m)
{
	int l = sim_leader_slot(s);
	if (l < 0 || s->op.n)
		return false;
	sisy_raft_status st;
	sisy_raft_get_status(s->nodes[l].r, &st);
	*m = st.membership;
	return st.pending_conf_index == 0;
}

/* A voter of m whose node is up (or, !up_only, down), or -1. */
static int pick_voter(sim *s, const sisy_raft_membership *m, bool up_only)
{
	int cand[SIM_MAX_SLOTS], k = 0;
	for (uint32_t i = 0; i < m->n_voters; i++) {
		int x = sim_slot_of(s, m->voters[i]);
		if (x >= 0 &&
		    (s->nodes[x].state == SIM_NODE_UP ||
		     (!up_only && s->nodes[x].state == SIM_NODE_DOWN)))
			cand[k++] = x;
	}
	return k ? cand[sisy_rand_below(&s->rand, (uint64_t)k)] : -1;
}

static void membership_fault(sim *s)
{
	sisy_raft_membership m;
	if (!membership(s, &m) || s->nslots >= SIM_MAX_SLOTS)
		return;
	uint64_t kind = sisy_rand_below(&s->rand, 4);
	int x = pick_voter(s, &m, kind != 0);
	if (kind == 0 && x >= 0 && m.n_voters >= MIN_VOTERS) {
		sim_lose_disk(s, &s->nodes[x], "");
	} else if (kind == 1 && x >= 0 && m.n_voters >= MIN_VOTERS) {
		sim_tracef(s, "REPLACE n%llu: remove it, add a new node",
			   U(s->nodes[x].id));
		sim_operator_push(s, SIM_TASK_REMOVE, s->nodes[x].id, true);
		sim_operator_push(s, SIM_TASK_ADD, 0, false);
	} else if (kind == 2 && x >= 0 && m.n_voters > MIN_VOTERS) {
		sim_tracef(s, "SHRINK: remove n%llu", U(s->nodes[x].id));
		sim_operator_push(s, SIM_TASK_REMOVE, s->nodes[x].id, true);
	} else if (kind == 3 && m.n_voters < MAX_VOTERS) {
		sim_tracef(s, "GROW: add a new node");
		sim_operator_push(s, SIM_TASK_ADD, 0, false);
	}
}

/* ---- leadership ---- */

static void transfer(sim *s)
{
	int l = sim_leader_slot(s);
	if (l < 0)
		return;
	sim_node *n = &s->nodes[l];
	sisy_raft_status st;
	sisy_raft_get_status(n->r, &st);
	if (st.membership.n_voters < 2)
		return;
	uint64_t to =
	    st.membership
		.voters[sisy_rand_below(&s->rand, st.membership.n_voters)];
	if (to == n->id)
		return;
	sisy_err rc = sisy_raft_transfer(n->r, to);
	sim_tracef(s, "TRANSFER leadership n%llu -> n%llu: %s", U(n->id), U(to),
		   sisy_errname(rc));
	s->transfers++;
	sim_node_pump(s, n);
}

static void network_quality(sim *s)
{
	sim_net *net = &s->net;
	net->loss_pm = sisy_rand_chance(&s->rand, 1, 3)
			   ? 0
			   : (uint32_t)sim_rand_range(s, 0, 150);
	net->dup_pm = (uint32_t)sim_rand_range(s, 0, 50);
	net->slow_pm = (uint32_t)sim_rand_range(s, 0, 100);
	net->delay_min = sim_rand_range(s, 100, 1000);
	net->delay_jitter = sim_rand_range(s, 500, 10 * SIM_MS);
	sim_tracef(s, "NETWORK loss %u%% dup %u%% slow %u%% delay %.1f+%.1f ms",
		   net->loss_pm / 10, net->dup_pm / 10, net->slow_pm / 10,
		   (double)net->delay_min / 1000.0,
		   (double)net->delay_jitter / 1000.0);
}

void sim_fault(sim *s)
{
	if (s->phase != SIM_PHASE_FAULTS)
		return;
	schedule(s, SIM_EV_FAULT,
		 sim_rand_range(s, 10 * SIM_MS, s->fault_gap_max), 0);
	uint64_t r = sisy_rand_below(&s->rand, 1000);
	if (sim_fig8_busy(s) || sim_lostq_fault(s))
		return; /* a profile's play holds the network */
	if (r < 250)
		partition(s);
	else if (r < 380)
		crash(s);
	else if (r < 430)
		membership_fault(s);
	else if (r < 510)
		transfer(s);
	else if (r < 610)
		network_quality(s);
}

void sim_new_leader(sim *s, sim_node *n)
{
	if (sim_fig8_new_leader(s, n) || sim_lostq_busy(s))
		return;
	if (s->phase != SIM_PHASE_FAULTS ||
	    sisy_rand_below(&s->rand, 1000) >= s->leader_churn_pm)
		return;
	sim_event ev = {.type = SIM_EV_LEADER_FAULT,
			.slot = (int16_t)n->slot,
			.inc = n->inc};
	/* A third of the hits land before the new leader's first messages
	 * are out (they are dropped on arrival at a blocked link). */
	sim_time after = sisy_rand_chance(&s->rand, 1, 3)
			     ? 0
			     : sim_rand_range(s, 1 * SIM_MS, 30 * SIM_MS);
	sim_schedule(s, s->now + after, &ev);
}

void sim_leader_committed(sim *s, sim_node *n)
{
	if (n->state != SIM_NODE_UP)
		return;
	sisy_raft_status st;
	sisy_raft_get_status(n->r, &st);
	bool moved = st.commit > n->last_commit;
	n->last_commit = st.commit;
	if (sim_fig8_committed(s, n, &st) || sim_lostq_busy(s))
		return;
	if (!moved || st.role != SISY_RAFT_LEADER ||
	    s->phase != SIM_PHASE_FAULTS ||
	    sisy_rand_below(&s->rand, 1000) >= s->commit_hit_pm)
		return;
	/* Hit before the followers hear of the new commit index. */
	sim_event ev = {.type = SIM_EV_LEADER_FAULT,
			.slot = (int16_t)n->slot,
			.inc = n->inc};
	sim_schedule(s, s->now + sim_rand_range(s, 0, 3 * SIM_MS), &ev);
}

void sim_leader_fault(sim *s, sim_node *n)
{
	if (s->phase != SIM_PHASE_FAULTS || n->last_role != SISY_RAFT_LEADER ||
	    sim_fig8_busy(s) || sim_lostq_busy(s))
		return;
	if (sisy_rand_chance(&s->rand, 1, 2)) {
		sim_crash_restart(s, n);
		return;
	}
	sim_net_heal_all(s);
	s->partition_gen++;
	isolate(s, n->slot);
	sim_tracef(s, "PARTITION young leader n%llu isolated", U(n->id));
	schedule(s, SIM_EV_HEAL_LINK,
		 sim_rand_range(s, 50 * SIM_MS, 500 * SIM_MS),
		 s->partition_gen);
}
