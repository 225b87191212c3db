/* sim_operator.c — the simulated operator: membership changes.
 *
 * The operator works through a short queue of tasks, one single-server
 * change at a time, at whichever node currently leads, and retries each
 * step until the leader's configuration shows it committed (no pending
 * config entry):
 *   REMOVE id  until id is no longer a member; a removed node that is still
 *              running is stopped 0-5 s later (until then it may campaign:
 *              a removed server must not disrupt or split the cluster);
 *   ADD        start a fresh node with a NEW id and an empty disk (a node
 *              never comes back with its old identity and an empty log),
 *              add it as a learner, promote it to voter once its match
 *              index has reached the leader's commit.
 * Tasks come from the fault schedule: a lost disk (REMOVE + ADD), a
 * planned replacement (REMOVE + ADD), shrinking (REMOVE) and growing (ADD)
 * the cluster between 3 and 5 voters.
 */
#include <string.h>

#include "sim.h"

#define U(x) ((unsigned long long)(x))

static void schedule(sim *s, int type, sim_time after, uint64_t a)
{
	sim_event ev = {.type = (uint16_t)type, .slot = -1, .a = a};
	sim_schedule(s, s->now + after, &ev);
}

bool sim_operator_push(sim *s, int kind, uint64_t id, bool linger)
{
	sim_operator *op = &s->op;
	if (op->n == SIM_OP_TASKS)
		return false;
	op->q[op->n++] = (sim_task){kind, id, linger};
	return true;
}

static void pop(sim_operator *op)
{
	memmove(op->q, op->q + 1, (op->n - 1) * sizeof *op->q);
	op->n--;
}

static void propose_conf(sim *s, sim_node *l, int type, uint64_t id)
{
	static const char *const names[] = {"?", "add voter", "add learner",
					    "remove"};
	sisy_raft_conf_change cc = {(uint8_t)type, id, {NULL, 0}};
	uint64_t term, index;
	sisy_err rc = sisy_raft_propose_conf(l->r, &cc, &term, &index);
	if (rc == SISY_OK) {
		sim_tracef(s, "CONF n%llu proposes %s n%llu at %llu/%llu",
			   U(l->id), names[type], U(id), U(index), U(term));
		sim_lostq_proposed(s, l, type, id, index);
	}
	sim_node_pump(s, l);
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

static bool is_member(const sisy_raft_membership *m, uint64_t id)
{
	return sisy_raft_membership_is_voter(m, id) ||
	       sisy_raft_membership_is_learner(m, id);
}

/* One step of a REMOVE; true when the task is done. */
static bool step_remove(sim *s, sim_node *l, const sisy_raft_membership *m,
			sim_task *t)
{
	if (is_member(m, t->id)) {
		propose_conf(s, l, SISY_RAFT_CONF_REMOVE, t->id);
		return false;
	}
	sim_tracef(s, "CONF n%llu removed", U(t->id));
	if (t->linger)
		schedule(s, SIM_EV_STOP_NODE, sim_rand_range(s, 0, 5 * SIM_S),
			 t->id);
	return true;
}

/* One step of an ADD; true when the task is done. */
static bool step_add(sim *s, sim_node *l, const sisy_raft_status *st,
		     sim_task *t)
{
	if (!t->id) {
		if (s->nslots >= SIM_MAX_SLOTS)
			return true; /* no room left: give the task up */
		t->id = s->next_id++;
		sim_node_start_fresh(s, s->nslots, t->id);
	}
	const sisy_raft_membership *m = &st->membership;
	if (!is_member(m, t->id)) {
		propose_conf(s, l, SISY_RAFT_CONF_ADD_LEARNER, t->id);
		return false;
	}
	if (sisy_raft_membership_is_learner(m, t->id)) {
		if (caught_up(l, t->id, st->commit))
			propose_conf(s, l, SISY_RAFT_CONF_ADD_VOTER, t->id);
		return false;
	}
	sim_tracef(s, "CONF n%llu added as a voter", U(t->id));
	return true;
}

void sim_operator_step(sim *s)
{
	schedule(s, SIM_EV_OPERATOR, 50 * SIM_MS, 0);
	sim_operator *op = &s->op;
	int ls = sim_leader_slot(s);
	if (op->n == 0 || ls < 0)
		return;
	sim_node *l = &s->nodes[ls];
	sisy_raft_status st;
	sisy_raft_get_status(l->r, &st);
	if (st.pending_conf_index)
		return; /* a change is in flight: wait for it to commit */
	sim_task *t = &op->q[0];
	bool done = t->kind == SIM_TASK_REMOVE
			? step_remove(s, l, &st.membership, t)
			: step_add(s, l, &st, t);
	if (done) {
		pop(op);
		s->conf_changes++;
	}
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
