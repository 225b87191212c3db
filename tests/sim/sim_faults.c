/* sim_faults.c — the fault schedule, the operator, and the liveness phase.
 *
 * Fault phase (--steps simulated milliseconds): every 20-250 ms one random
 * action — a partition (isolate a node, isolate the leader, split the
 * cluster in two, or block some links one way; each heals after a while),
 * a crash (any node, the leader more often; it restarts 20-1500 ms later
 * from what its disk kept), the loss of a node's disk (the node is gone for
 * good and the operator replaces it), a planned replacement of a live
 * member, a leadership transfer, or a change of the network's loss,
 * duplication, delay and reordering.
 *
 * The operator replaces one member at a time through single-server
 * membership changes at the current leader, retrying until each step is
 * committed: remove the old member; start a fresh node with a NEW id (a
 * node never comes back with its old identity and an empty log); add it as
 * a learner; promote it to voter once it has caught up.
 *
 * Recovery phase: faults stop (links healed, loss and duplication off,
 * crashed nodes restarted). Within LIVENESS_BOUND of simulated time a
 * leader must be known to every member, every entry it holds must be
 * committed and applied everywhere, the operator's change must be done, and
 * a write and a read issued after the faults stopped must have succeeded;
 * otherwise that is a liveness violation.
 */
#include <string.h>

#include "sim.h"

#define LIVENESS_BOUND	   (10 * SIM_S)
#define CLIENTS_AFTER_HEAL (1500 * SIM_MS)
#define MAX_REPLACEMENTS   6

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

/* ---- crashes, lost disks, replacements
 * ------------------------------------------ */

static void crash_one(sim *s, sim_node *n)
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
			crash_one(s, &s->nodes[i]);
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
	crash_one(s, &s->nodes[x]);
}

/* A voter of the leader's (committed) membership, or -1. */
static int pick_voter(sim *s, bool up_only)
{
	int l = sim_leader_slot(s);
	if (l < 0)
		return -1;
	sisy_raft_status st;
	sisy_raft_get_status(s->nodes[l].r, &st);
	if (st.pending_conf_index || st.membership.n_voters < 3)
		return -1;
	int cand[SIM_MAX_SLOTS], k = 0;
	for (uint32_t i = 0; i < st.membership.n_voters; i++) {
		int x = sim_slot_of(s, st.membership.voters[i]);
		if (x >= 0 &&
		    (s->nodes[x].state == SIM_NODE_UP ||
		     (!up_only && s->nodes[x].state == SIM_NODE_DOWN)))
			cand[k++] = x;
	}
	return k ? cand[sisy_rand_below(&s->rand, (uint64_t)k)] : -1;
}

static bool can_replace(const sim *s)
{
	return !s->op.busy && s->replacements < MAX_REPLACEMENTS &&
	       s->nslots < SIM_MAX_SLOTS;
}

static void lose_disk(sim *s)
{
	if (!can_replace(s))
		return;
	int x = pick_voter(s, false);
	if (x < 0)
		return;
	sim_node *n = &s->nodes[x];
	if (n->state == SIM_NODE_DOWN)
		s->down_count--;
	sim_tracef(s, "DISK LOST n%llu: it is removed and replaced", U(n->id));
	sim_node_stop_forever(s, n, "disk lost");
	s->op = (sim_operator){n->id, 0, true, false};
}

static void planned_replacement(sim *s)
{
	if (!can_replace(s))
		return;
	int x = pick_voter(s, true);
	if (x < 0)
		return;
	sim_tracef(s, "REPLACE n%llu (planned: remove, then add a new node)",
		   U(s->nodes[x].id));
	s->op = (sim_operator){s->nodes[x].id, 0, true, true};
}

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
	if (r < 250)
		partition(s);
	else if (r < 380)
		crash(s);
	else if (r < 400)
		lose_disk(s);
	else if (r < 430)
		planned_replacement(s);
	else if (r < 510)
		transfer(s);
	else if (r < 610)
		network_quality(s);
}

/* ---- the operator
 * ---------------------------------------------------------------- */

static sisy_err propose_conf(sim *s, sim_node *l, int type, uint64_t id)
{
	sisy_raft_conf_change cc = {(uint8_t)type, id, {NULL, 0}};
	uint64_t term, index;
	sisy_err rc = sisy_raft_propose_conf(l->r, &cc, &term, &index);
	static const char *const names[] = {"?", "add voter", "add learner",
					    "remove"};
	if (rc == SISY_OK)
		sim_tracef(s, "CONF n%llu proposes %s n%llu at %llu/%llu",
			   U(l->id), names[type], U(id), U(index), U(term));
	sim_node_pump(s, l);
	return rc;
}

static bool caught_up(sim_node *l, uint64_t id, uint64_t commit)
{
	sisy_raft_progress pr[SIM_MAX_SLOTS];
	size_t n = sisy_raft_get_progress(l->r, pr, SIM_MAX_SLOTS);
	for (size_t i = 0; i < n && i < SIM_MAX_SLOTS; i++)
		if (pr[i].id == id)
			return pr[i].match >= commit;
	return false;
}

void sim_operator_step(sim *s)
{
	schedule(s, SIM_EV_OPERATOR, 50 * SIM_MS, 0);
	sim_operator *op = &s->op;
	int ls = sim_leader_slot(s);
	if (!op->busy || ls < 0)
		return;
	sim_node *l = &s->nodes[ls];
	sisy_raft_status st;
	sisy_raft_get_status(l->r, &st);
	if (st.pending_conf_index)
		return; /* a change is in flight: wait for it to commit */
	const sisy_raft_membership *m = &st.membership;
	if (sisy_raft_membership_is_voter(m, op->remove_id) ||
	    sisy_raft_membership_is_learner(m, op->remove_id)) {
		propose_conf(s, l, SISY_RAFT_CONF_REMOVE, op->remove_id);
		return;
	}
	if (op->stop_removed) {
		/* A removed node keeps running (and may campaign) until the
		 * operator gets round to stopping it. */
		schedule(s, SIM_EV_STOP_NODE, sim_rand_range(s, 0, 3 * SIM_S),
			 op->remove_id);
		op->stop_removed = false;
	}
	if (!op->add_id) {
		op->add_id = s->next_id++;
		sim_node_start_fresh(s, s->nslots, op->add_id);
	}
	if (!sisy_raft_membership_is_voter(m, op->add_id) &&
	    !sisy_raft_membership_is_learner(m, op->add_id)) {
		propose_conf(s, l, SISY_RAFT_CONF_ADD_LEARNER, op->add_id);
		return;
	}
	if (sisy_raft_membership_is_learner(m, op->add_id)) {
		if (caught_up(l, op->add_id, st.commit))
			propose_conf(s, l, SISY_RAFT_CONF_ADD_VOTER,
				     op->add_id);
		return;
	}
	sim_tracef(s, "CONF replacement of n%llu by n%llu done",
		   U(op->remove_id), U(op->add_id));
	op->busy = false;
	s->replacements++;
}

void sim_stop_removed(sim *s, uint64_t id)
{
	int x = sim_slot_of(s, id);
	if (x < 0 || s->nodes[x].state == SIM_NODE_GONE)
		return;
	if (s->nodes[x].state == SIM_NODE_DOWN)
		s->down_count--;
	sim_node_stop_forever(s, &s->nodes[x], "removed from the cluster");
}

/* ---- recovery and liveness
 * -------------------------------------------------------- */

void sim_end_faults(sim *s)
{
	s->phase = SIM_PHASE_RECOVERY;
	s->heal_at = s->now;
	s->clients_stop_at = s->now + CLIENTS_AFTER_HEAL;
	s->liveness_deadline = s->now + LIVENESS_BOUND;
	sim_net_heal_all(s);
	s->net.loss_pm = s->net.dup_pm = s->net.slow_pm = 0;
	s->net.delay_min = 300;
	s->net.delay_jitter = 2 * SIM_MS;
	sim_tracef(s, "FAULTS END: network healed, crashed nodes restart");
	for (int i = 0; i < s->nslots; i++)
		if (s->nodes[i].state == SIM_NODE_DOWN)
			sim_node_restart(s, &s->nodes[i]);
	s->down_count = 0;
	schedule(s, SIM_EV_LIVENESS, 20 * SIM_MS, 0);
}

/* NULL when the cluster has settled, else what is still missing. */
static const char *unsettled(sim *s, char *buf, size_t cap)
{
	int ls = sim_leader_slot(s);
	if (ls < 0)
		return "no leader";
	sim_node *l = &s->nodes[ls];
	sisy_raft_status st;
	sisy_raft_get_status(l->r, &st);
	if (st.pending_conf_index || s->op.busy)
		return "the membership change has not finished";
	if (st.commit != st.last_index) {
		snprintf(buf, cap, "leader n%llu has committed %llu of %llu",
			 U(l->id), U(st.commit), U(st.last_index));
		return buf;
	}
	const sisy_raft_membership *m = &st.membership;
	for (uint32_t i = 0; i < m->n_voters + m->n_learners; i++) {
		uint64_t id = i < m->n_voters ? m->voters[i]
					      : m->learners[i - m->n_voters];
		int x = sim_slot_of(s, id);
		if (x < 0 || s->nodes[x].state != SIM_NODE_UP) {
			snprintf(buf, cap, "member n%llu is not running",
				 U(id));
			return buf;
		}
		if (x == ls)
			continue;
		sisy_raft_status fs;
		sisy_raft_get_status(s->nodes[x].r, &fs);
		if (fs.leader != l->id || fs.term != st.term ||
		    s->nodes[x].applied != st.commit) {
			snprintf(buf, cap,
				 "n%llu: leader n%llu term %llu applied %llu; "
				 "leader n%llu term %llu commit %llu",
				 U(id), U(fs.leader), U(fs.term),
				 U(s->nodes[x].applied), U(l->id), U(st.term),
				 U(st.commit));
			return buf;
		}
	}
	if (l->applied != st.commit)
		return "the leader has not applied its commit";
	if (s->now < s->clients_stop_at)
		return "clients still running";
	for (int i = 0; i < s->nclients; i++)
		if (s->clients[i].busy)
			return "a client operation is outstanding";
	if (!s->ok_puts_after_heal || !s->ok_gets_after_heal)
		return "no write and read succeeded after the faults stopped";
	return NULL;
}

void sim_liveness_check(sim *s)
{
	char buf[256];
	const char *why = unsettled(s, buf, sizeof buf);
	if (!why) {
		sim_tracef(s, "settled %.0f ms after the faults stopped",
			   (double)(s->now - s->heal_at) / 1000.0);
		s->phase = SIM_PHASE_DONE;
		return;
	}
	if (s->now >= s->liveness_deadline) {
		sim_fail(s, "liveness", "%.0f s after the faults stopped: %s",
			 (double)LIVENESS_BOUND / 1e6, why);
		return;
	}
	schedule(s, SIM_EV_LIVENESS, 20 * SIM_MS, 0);
}
