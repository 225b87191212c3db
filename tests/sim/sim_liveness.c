/* sim_liveness.c — the recovery phase and the liveness check.
 *
 * At --steps milliseconds the faults stop: links heal, loss, duplication
 * and reordering stop, crashed nodes restart (a lost disk stays lost; the
 * operator finishes replacing it). Clients keep going for
 * CLIENTS_AFTER_HEAL, then stop issuing. Within LIVENESS_BOUND of the
 * faults stopping the cluster must settle: one leader known to every
 * member at its term, every entry it holds committed and applied on every
 * member, no membership change pending, no client operation outstanding,
 * and at least one write and one read issued after the faults stopped
 * succeeded. Otherwise the run fails with a liveness violation naming what
 * was still missing.
 */
#include <stdio.h>

#include "sim.h"

#define LIVENESS_BOUND	   (10 * SIM_S)
#define CLIENTS_AFTER_HEAL (1500 * SIM_MS)

#define U(x) ((unsigned long long)(x))

static void schedule(sim *s, int type, sim_time after, uint64_t a)
{
	sim_event ev = {.type = (uint16_t)type, .slot = -1, .a = a};
	sim_schedule(s, s->now + after, &ev);
}

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
	if (st.pending_conf_index || s->op.n)
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
