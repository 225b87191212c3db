/* sim_lostq.c — the "lost quorum" fault profile: a fault schedule that
 * plays, on purpose, the membership history in which a core whose
 * configuration takes effect at commit instead of at append (bug switch
 * config_at_commit) is left with no quorum of the configuration it
 * believes in, while the configuration in its log still has one; so that
 * bug is caught in a few dozen seeds with 3 nodes too (it was not found
 * in 25,000 seeds with 3 nodes, and took 1,522 with 5).
 *
 * Which seeds: one in SIM_LOSTQ_ONE_IN of the seeds that are not Figure 8
 * seeds (sim_fig8.c), chosen by a PRNG of its own seeded from the seed, so
 * every other seed draws exactly the numbers it drew before the profile
 * existed and replays as it did. In a profile seed the fault schedule
 * repeats this play during the fault phase, each step an ordinary fault a
 * real cluster can see (a lost disk, the operator's replacement, a crash),
 * triggered by what an observer of the operator and the network sees:
 *
 *   start       the cluster has an odd number of voters (3 or 5), all up,
 *               no learner, a leader, no change pending or queued: the
 *               network heals and a voter C other than the leader loses its
 *               disk. The operator removes C (k voters left, k even) and
 *               adds a fresh node D: as a learner, then promoted to voter
 *               by a config entry P appended at the leader A.
 *   REPLACING   waits for the operator to propose P; the voters before P
 *               (k of them, A among them) are remembered.
 *   PROMOTING   the moment a voter B of them (not A) sends A its first
 *               acknowledgement of P, A loses its disk, and so do k/2 - 1
 *               more of the old voters (never B; none with 3 nodes), and
 *               half the time B crashes too (it restarts 20-1500 ms later
 *               from its disk: P, and a lazily written commit index below
 *               P).
 *   AFTER       for 1-2 s the ordinary faults stand still; then all heals
 *               and they resume; the next play starts 0.5-2 s later.
 *
 * Why it bites: k/2 + 1 of the k + 1 voters of P are left (B, D and the
 * old voters not lost), a quorum of P, but only k/2 of the k old voters,
 * not a quorum of those. The leader lost its disk before B's ack reached
 * it, so nobody has committed P. A correct core has P in force at append
 * on B: B campaigns in P's configuration, D (voter or learner) and the
 * others grant it, and the operator then replaces A. A core that puts a
 * configuration in force at commit has every survivor reasoning from the
 * older configuration: no quorum of it is left, D thinks it is a learner,
 * and no leader is ever elected again (the liveness check reports it after
 * the recovery phase).
 *
 * A step that does not come within its deadline (the operator stuck, an
 * ack that never comes) abandons the play. While a play runs the ordinary
 * fault schedule, leader churn and commit hits stand still.
 */
#include "sim.h"

#define SIM_LOSTQ_ONE_IN 8
#define REPLACE_DEADLINE (3000 * SIM_MS)
#define PROMOTE_DEADLINE (1000 * SIM_MS)

#define U(x) ((unsigned long long)(x))

enum { EV_DEADLINE = 0, EV_LOSE = 1 };

void sim_lostq_init(sim *s)
{
	sisy_rand own;
	sisy_rand_seed(&own, s->seed ^ 0x4c6f737451756full);
	s->lq.on = !s->f8.on && sisy_rand_below(&own, SIM_LOSTQ_ONE_IN) == 0;
	s->lq.stage = SIM_LQ_IDLE;
}

bool sim_lostq_busy(const sim *s)
{
	return s->lq.stage != SIM_LQ_IDLE && s->phase == SIM_PHASE_FAULTS;
}

static void schedule(sim *s, sim_time after, uint64_t kind, uint64_t c)
{
	sim_event ev = {.type = SIM_EV_LOSTQ,
			.slot = -1,
			.a = s->lq.gen,
			.b = kind,
			.c = c};
	sim_schedule(s, s->now + after, &ev);
}

/* Moves to stage with a fresh deadline (older events go stale). */
static void enter(sim *s, int stage, sim_time deadline)
{
	s->lq.stage = stage;
	s->lq.gen++;
	schedule(s, deadline, EV_DEADLINE, 0);
}

static void finish(sim *s, const char *why)
{
	sim_net_heal_all(s);
	s->partition_gen++;
	s->lq.stage = SIM_LQ_IDLE;
	s->lq.gen++;
	s->lq.next_try = s->now + sim_rand_range(s, 500 * SIM_MS, 2 * SIM_S);
	sim_tracef(s, "LOSTQ play ends (%s): network healed", why);
}

bool sim_lostq_fault(sim *s)
{
	sim_lostq *q = &s->lq;
	if (!q->on)
		return false;
	if (q->stage != SIM_LQ_IDLE)
		return true;
	if (s->now < q->next_try || s->down_count || s->op.n ||
	    s->nslots >= SIM_MAX_SLOTS)
		return false;
	int ls = sim_leader_slot(s);
	if (ls < 0)
		return false;
	sisy_raft_status st;
	sisy_raft_get_status(s->nodes[ls].r, &st);
	const sisy_raft_membership *m = &st.membership;
	if (st.pending_conf_index || m->n_learners || m->n_voters % 2 == 0)
		return false;
	int cand[SIM_MAX_SLOTS], k = 0;
	for (uint32_t i = 0; i < m->n_voters; i++) {
		int x = sim_slot_of(s, m->voters[i]);
		if (x < 0 || s->nodes[x].state != SIM_NODE_UP)
			return false;
		if (x != ls)
			cand[k++] = x;
	}
	if (k == 0)
		return false;
	q->plays++;
	sim_net_heal_all(s);
	s->partition_gen++;
	sim_tracef(s, "LOSTQ play %llu: leader n%llu, %u voters", U(q->plays),
		   U(s->nodes[ls].id), m->n_voters);
	sim_lose_disk(s,
		      &s->nodes[cand[sisy_rand_below(&s->rand, (uint64_t)k)]],
		      "LOSTQ ");
	enter(s, SIM_LQ_REPLACING, REPLACE_DEADLINE);
	return true;
}

void sim_lostq_proposed(sim *s, sim_node *l, int type, uint64_t id,
			uint64_t index)
{
	sim_lostq *q = &s->lq;
	if (!sim_lostq_busy(s) || q->stage != SIM_LQ_REPLACING ||
	    type != SISY_RAFT_CONF_ADD_VOTER)
		return;
	sisy_raft_status st;
	sisy_raft_get_status(l->r, &st);
	/* The voters before P (whether the leader's status shows P in force
	 * or not: that is the bug's business). */
	q->nold = 0;
	for (uint32_t i = 0; i < st.membership.n_voters; i++)
		if (st.membership.voters[i] != id)
			q->old[q->nold++] = st.membership.voters[i];
	q->leader = l->slot;
	q->leader_inc = l->inc;
	q->index = index;
	sim_tracef(s, "LOSTQ promotion at %llu on n%llu: waiting for an ack",
		   U(index), U(l->id));
	enter(s, SIM_LQ_PROMOTING, PROMOTE_DEADLINE);
}

static bool is_old(const sim_lostq *q, uint64_t id)
{
	for (int k = 0; k < q->nold; k++)
		if (q->old[k] == id)
			return true;
	return false;
}

void sim_lostq_sent(sim *s, int from_slot, const sisy_raft_msg *m)
{
	sim_lostq *q = &s->lq;
	if (!sim_lostq_busy(s) || q->stage != SIM_LQ_PROMOTING ||
	    m->type != SISY_RAFT_MSG_APPEND_RESP || m->reject ||
	    m->index < q->index || from_slot == q->leader ||
	    m->to != s->nodes[q->leader].id || !is_old(q, m->from))
		return;
	/* Lose them before the ack arrives (every delay is >= 100 us). */
	q->gen++;
	schedule(s, 0, EV_LOSE, (uint64_t)from_slot);
	q->stage = SIM_LQ_AFTER;
}

/* The ack of P left B: A and k/2 - 1 other old voters lose their disks,
 * and B crashes half the time. */
static void lose(sim *s, int b)
{
	sim_lostq *q = &s->lq;
	sim_node *a = &s->nodes[q->leader];
	if (a->state != SIM_NODE_UP || a->inc != q->leader_inc) {
		finish(s, "the leader went away first");
		return;
	}
	sim_tracef(s, "LOSTQ n%llu acked %llu: its leader loses its disk",
		   U(s->nodes[b].id), U(q->index));
	int cand[SIM_MAX_SLOTS], k = 0;
	for (int i = 0; i < q->nold; i++) {
		int x = sim_slot_of(s, q->old[i]);
		if (x >= 0 && x != b && x != q->leader &&
		    s->nodes[x].state != SIM_NODE_GONE)
			cand[k++] = x;
	}
	sim_lose_disk(s, a, "LOSTQ ");
	for (int more = q->nold / 2 - 1; more > 0 && k > 0; more--) {
		int j = (int)sisy_rand_below(&s->rand, (uint64_t)k);
		sim_lose_disk(s, &s->nodes[cand[j]], "LOSTQ ");
		cand[j] = cand[--k];
	}
	if (sisy_rand_chance(&s->rand, 1, 2) &&
	    s->nodes[b].state == SIM_NODE_UP) {
		sim_tracef(s, "LOSTQ n%llu crashes", U(s->nodes[b].id));
		sim_crash_restart(s, &s->nodes[b]);
	}
	enter(s, SIM_LQ_AFTER, sim_rand_range(s, 1 * SIM_S, 2 * SIM_S));
}

void sim_lostq_event(sim *s, const sim_event *ev)
{
	sim_lostq *q = &s->lq;
	if (ev->a != q->gen || q->stage == SIM_LQ_IDLE)
		return;
	if (s->phase != SIM_PHASE_FAULTS) {
		q->stage = SIM_LQ_IDLE; /* the recovery phase healed all */
		return;
	}
	if (ev->b == EV_LOSE) {
		lose(s, (int)ev->c);
		return;
	}
	static const char *const why[] = {
	    [SIM_LQ_REPLACING] = "no promotion in time",
	    [SIM_LQ_PROMOTING] = "no ack in time",
	    [SIM_LQ_AFTER] = "played out",
	};
	finish(s, why[q->stage]);
}
