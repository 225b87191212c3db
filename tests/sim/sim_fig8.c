/* sim_fig8.c — the "Figure 8" fault profile: a fault schedule that plays
 * the history of Figure 8 of the Raft paper on purpose, so that a core
 * which commits entries of older terms by counting replicas (bug switch
 * commit_old_term) is caught in a few hundred seeds instead of tens of
 * thousands.
 *
 * Which seeds: one in SIM_FIG8_ONE_IN, chosen by a PRNG of its own seeded
 * from the seed (so the other seeds draw exactly the numbers they drew
 * before the profile existed and replay as they did). In a profile seed
 * every node runs with one-entry appends (max_msg_entries 1: a follower
 * can acknowledge an old-term entry without the new leader's no-op behind
 * it), and the fault schedule repeats this play during the fault phase,
 * each step an ordinary fault a real cluster can see (partitions, a crash,
 * slow messages), triggered by what a network observer sees (a leader's
 * proposal, a new leader, a commit index that moved):
 *
 *   ISOLATED  a leader L1 (term T) has just taken a client write X at
 *             index i: L1 is isolated at once, so X stays on L1 alone.
 *   REGAIN    the rest elect L2 (term > T), whose no-op lands at or below
 *             i: L2 is isolated at once (its no-op stays on L2 alone). L1
 *             rejoins a group of exactly a quorum (L1 and quorum - 1 other
 *             voters; everyone else alone), where only L1 can win: its last
 *             term T beats theirs.
 *   REPLAY    L1 leads again (term T2 > T) and re-replicates X one entry at
 *             a time, while its appends carrying entries of T2 (the no-op
 *             first) are slow (20-60 ms more), so X reaches a quorum first.
 *             The moment L1's commit index reaches i, L1 is isolated (and
 *             crashed, half the time) before anyone hears of the commit,
 *             and L2 joins a quorum group without L1.
 *   AFTER     in that group L2's last term (> T) beats the followers' (T):
 *             L2 wins and overwrites i. A correct core never counted X (its
 *             commit waited for the no-op, so the group holds a newer last
 *             term than L2 and L2 loses); a broken one committed X, and L2's
 *             win breaks leader completeness. After 300-800 ms all heals.
 *
 * A step that does not come within its deadline (an election that went
 * elsewhere, a loss) abandons the play: all heals and the ordinary faults
 * resume; the next play starts 50-400 ms later. While a play runs, the
 * ordinary fault schedule, leader churn and commit hits stand still (they
 * would undo the partitions), and it starts only with every voter up, no
 * membership change queued or pending.
 */
#include <stdio.h>

#include "sim.h"

#define SIM_FIG8_ONE_IN 8
#define STEP_DEADLINE	(1500 * SIM_MS)

#define U(x) ((unsigned long long)(x))

enum { EV_DEADLINE = 0, EV_CRASH = 1 };

void sim_fig8_init(sim *s)
{
	sisy_rand own;
	sisy_rand_seed(&own, s->seed ^ 0x46696775726538ull);
	s->f8.on = sisy_rand_below(&own, SIM_FIG8_ONE_IN) == 0;
	s->f8.stage = SIM_F8_IDLE;
}

bool sim_fig8_busy(const sim *s)
{
	return s->f8.stage != SIM_F8_IDLE && s->phase == SIM_PHASE_FAULTS;
}

static void schedule(sim *s, sim_time after, uint64_t kind)
{
	sim_event ev = {
	    .type = SIM_EV_FIG8, .slot = -1, .a = s->f8.gen, .b = kind};
	sim_schedule(s, s->now + after, &ev);
}

/* Moves to stage with a fresh deadline (older deadline events go stale). */
static void enter(sim *s, int stage, sim_time deadline)
{
	s->f8.stage = stage;
	s->f8.gen++;
	schedule(s, deadline, EV_DEADLINE);
}

static void finish(sim *s, const char *why)
{
	sim_net_heal_all(s);
	s->partition_gen++;
	s->f8.stage = SIM_F8_IDLE;
	s->f8.gen++;
	s->f8.next_try = s->now + sim_rand_range(s, 50 * SIM_MS, 400 * SIM_MS);
	sim_tracef(s, "FIG8 play ends (%s): network healed", why);
}

static bool is_voter(const sim *s, int slot)
{
	for (int k = 0; k < s->f8.nvoters; k++)
		if (s->f8.voters[k] == slot)
			return true;
	return false;
}

/* Partitions the world: `head` and quorum - 1 other up voters (never
 * `avoid`) in one group, every other node alone. */
static void quorum_group(sim *s, int head, int avoid)
{
	int side[SIM_MAX_SLOTS], cand[SIM_MAX_SLOTS], k = 0;
	for (int i = 0; i < s->nslots; i++) {
		side[i] = i + 1;
		if (i != head && i != avoid && is_voter(s, i) &&
		    s->nodes[i].state == SIM_NODE_UP)
			cand[k++] = i;
	}
	side[head] = 0;
	char desc[96] = "";
	size_t len =
	    (size_t)snprintf(desc, sizeof desc, "n%llu", U(s->nodes[head].id));
	for (int need = s->f8.nvoters / 2; need > 0 && k > 0; need--) {
		int j = (int)sisy_rand_below(&s->rand, (uint64_t)k);
		side[cand[j]] = 0;
		if (len < sizeof desc - 8)
			len +=
			    (size_t)snprintf(desc + len, sizeof desc - len,
					     " n%llu", U(s->nodes[cand[j]].id));
		cand[j] = cand[--k];
	}
	for (int i = 0; i < s->nslots; i++)
		for (int j = 0; j < s->nslots; j++)
			s->net.blocked[i][j] = side[i] != side[j];
	s->partition_gen++;
	sim_tracef(s, "FIG8 partition: {%s} together, every other node alone",
		   desc);
}

static void isolate(sim *s, int x)
{
	for (int i = 0; i < s->nslots; i++)
		if (i != x)
			s->net.blocked[x][i] = s->net.blocked[i][x] = 1;
}

static bool same(const sim *s, int slot, uint32_t inc, const sim_node *n)
{
	return n->slot == slot && n->inc == inc;
}

void sim_fig8_proposed(sim *s, sim_node *n, uint64_t term, uint64_t index)
{
	if (!s->f8.on || s->f8.stage != SIM_F8_IDLE ||
	    s->phase != SIM_PHASE_FAULTS || s->now < s->f8.next_try ||
	    s->down_count || s->op.n)
		return;
	sisy_raft_status st;
	sisy_raft_get_status(n->r, &st);
	if (st.role != SISY_RAFT_LEADER || st.pending_conf_index ||
	    st.last_index != index || st.membership.n_voters < 3)
		return;
	s->f8.nvoters = 0;
	for (uint32_t k = 0; k < st.membership.n_voters; k++) {
		int x = sim_slot_of(s, st.membership.voters[k]);
		if (x < 0 || s->nodes[x].state != SIM_NODE_UP)
			return;
		s->f8.voters[s->f8.nvoters++] = x;
	}
	s->f8.l1 = n->slot;
	s->f8.l1_inc = n->inc;
	s->f8.term1 = term;
	s->f8.index = index;
	s->f8.plays++;
	sim_net_heal_all(s);
	s->partition_gen++;
	isolate(s, n->slot);
	sim_tracef(s,
		   "FIG8 play %llu: leader n%llu isolated holding %llu/%llu "
		   "alone",
		   U(s->f8.plays), U(n->id), U(index), U(term));
	enter(s, SIM_F8_ISOLATED, STEP_DEADLINE);
}

bool sim_fig8_new_leader(sim *s, sim_node *n)
{
	if (!sim_fig8_busy(s))
		return false;
	sim_fig8 *f = &s->f8;
	sisy_raft_status st;
	sisy_raft_get_status(n->r, &st);
	if (f->stage == SIM_F8_ISOLATED && !same(s, f->l1, f->l1_inc, n) &&
	    st.term > f->term1) {
		f->l2 = n->slot;
		f->l2_inc = n->inc;
		sim_tracef(s, "FIG8 new leader n%llu (term %llu) isolated",
			   U(n->id), U(st.term));
		quorum_group(s, f->l1, f->l2);
		enter(s, SIM_F8_REGAIN, STEP_DEADLINE);
	} else if (f->stage == SIM_F8_REGAIN) {
		if (same(s, f->l1, f->l1_inc, n)) {
			sim_tracef(s,
				   "FIG8 n%llu leads again (term %llu): its "
				   "term's appends are slow",
				   U(n->id), U(st.term));
			enter(s, SIM_F8_REPLAY, STEP_DEADLINE);
		} else {
			finish(s, "another node won");
		}
	}
	return true;
}

bool sim_fig8_committed(sim *s, sim_node *n, const sisy_raft_status *st)
{
	if (!sim_fig8_busy(s))
		return false;
	sim_fig8 *f = &s->f8;
	if (f->stage != SIM_F8_REPLAY || !same(s, f->l1, f->l1_inc, n) ||
	    st->role != SISY_RAFT_LEADER || st->commit < f->index)
		return true;
	sim_tracef(s, "FIG8 n%llu committed %llu (term %llu): hit it now",
		   U(n->id), U(st->commit), U(st->term));
	/* Its messages still in flight are dropped on arrival. */
	quorum_group(s, f->l2, f->l1);
	enter(s, SIM_F8_AFTER, sim_rand_range(s, 300 * SIM_MS, 800 * SIM_MS));
	if (sisy_rand_chance(&s->rand, 1, 2))
		schedule(s, 0, EV_CRASH);
	return true;
}

sim_time sim_fig8_delay(sim *s, int from_slot, const sisy_raft_msg *m)
{
	if (!sim_fig8_busy(s) || s->f8.stage != SIM_F8_REPLAY ||
	    from_slot != s->f8.l1 || m->type != SISY_RAFT_MSG_APPEND ||
	    m->n_entries == 0 || m->entries[m->n_entries - 1].term != m->term)
		return 0;
	return sim_rand_range(s, 20 * SIM_MS, 60 * SIM_MS);
}

void sim_fig8_event(sim *s, const sim_event *ev)
{
	sim_fig8 *f = &s->f8;
	if (ev->a != f->gen || f->stage == SIM_F8_IDLE)
		return;
	if (s->phase != SIM_PHASE_FAULTS) {
		f->stage = SIM_F8_IDLE; /* the recovery phase healed all */
		return;
	}
	if (ev->b == EV_CRASH) {
		sim_node *n = &s->nodes[f->l1];
		if (n->state == SIM_NODE_UP && n->inc == f->l1_inc)
			sim_crash_restart(s, n);
		return;
	}
	static const char *const why[] = {
	    [SIM_F8_ISOLATED] = "no new leader in time",
	    [SIM_F8_REGAIN] = "the old leader did not win again in time",
	    [SIM_F8_REPLAY] = "no commit in time",
	    [SIM_F8_AFTER] = "played out",
	};
	finish(s, why[f->stage]);
}
