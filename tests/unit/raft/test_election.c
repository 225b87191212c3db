/* Tests sisyd/raft/election.c: randomized timeouts, elections, pre-vote,
 * check-quorum, the vote's log check, the no-op of a new term, and the
 * commit rule of §5.4.2 (only current-term entries commit by counting). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void no_pre_vote(sisy_raft_config *c)
{
	c->pre_vote = 0;
	c->check_quorum = 0;
}

static void no_check_quorum(sisy_raft_config *c)
{
	c->check_quorum = 0;
}

/* Ticks until some node leads; returns the ticks it took. */
static int tick_until_leader(struct harness *h, int max)
{
	for (int t = 1; t <= max; t++) {
		h_tick(h, 1);
		if (h_leader(h))
			return t;
	}
	return -1;
}

static void test_single_node_elects_itself(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 1, NULL);
	int t = tick_until_leader(&h, 40);
	assert_true(t >= 10 && t < 20); /* [election, 2 * election) */
	sisy_raft_status st = h_status(&h, 1);
	assert_int_equal(st.term, 2);
	/* The no-op of term 2 is committed and handed out for apply. */
	assert_int_equal(st.commit, 2);
	struct h_node *n = &h.nodes[1];
	assert_int_equal(n->applied_index, 2);
	assert_int_equal(n->applied[n->n_applied - 1].type,
			 SISY_RAFT_ENTRY_NOOP);
	assert_int_equal(n->applied[n->n_applied - 1].term, 2);
	h_free(&h);
}

static void test_timeouts_are_randomized_by_seed(void **state)
{
	(void)state;
	int seen[20] = {0};
	int distinct = 0;
	for (uint64_t seed = 1; seed <= 24; seed++) {
		sisy_raft_config cfg;
		sisy_raft_config_default(&cfg, 1);
		cfg.rand_seed = seed;
		sisy_raft *r;
		assert_int_equal(sisy_raft_create(&cfg, &r), SISY_OK);
		sisy_raft_membership m = {0};
		m.voters[m.n_voters++] = 1;
		m.voters[m.n_voters++] = 2;
		m.voters[m.n_voters++] = 3;
		sisy_raft_conf_change cc = {
		    SISY_RAFT_CONF_ADD_VOTER, 1, {NULL, 0}};
		sisy_buf b = {0};
		assert_int_equal(sisy_raft_conf_encode(&cc, &m, &b), SISY_OK);
		sisy_raft_entry e = {1, 1, SISY_RAFT_ENTRY_CONFIG, b.data,
				     b.len};
		sisy_raft_hard_state hs = {1, 0, 1};
		assert_int_equal(sisy_raft_restore(r, &hs, NULL, &e, 1, 0),
				 SISY_OK);
		sisy_buf_free(&b);
		int t;
		sisy_raft_status st;
		for (t = 1; t < 100; t++) {
			sisy_raft_tick(r);
			sisy_raft_get_status(r, &st);
			if (st.role != SISY_RAFT_FOLLOWER)
				break;
		}
		assert_int_equal(st.role, SISY_RAFT_PRE_CANDIDATE);
		assert_int_equal(st.term, 1); /* pre-vote bumps nothing */
		assert_true(t >= 10 && t < 20);
		if (!seen[t]++)
			distinct++;
		sisy_raft_destroy(r);
	}
	assert_true(distinct >= 4);
}

static void test_three_nodes_agree_on_one_leader(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	assert_true(tick_until_leader(&h, 60) > 0);
	uint64_t l = h_leader(&h);
	h_tick(&h, 5);
	assert_int_equal(h_leader(&h), l);
	uint64_t term = h_status(&h, l).term;
	for (uint64_t id = 1; id <= 3; id++) {
		sisy_raft_status st = h_status(&h, id);
		assert_int_equal(st.leader, l);
		assert_int_equal(st.term, term);
		assert_int_equal(st.commit, h_status(&h, l).last_index);
		if (id != l)
			assert_int_equal(st.role, SISY_RAFT_FOLLOWER);
	}
	h_free(&h);
}

static void test_prevote_keeps_partitioned_node_harmless(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	uint64_t term = h_status(&h, 1).term;
	h_isolate(&h, 3);
	h_tick(&h, 100);
	/* It kept pre-voting, never bumping its term... */
	assert_int_equal(h_status(&h, 3).term, term);
	assert_int_not_equal(h_status(&h, 3).role, SISY_RAFT_LEADER);
	h_heal(&h);
	h_tick(&h, 30);
	/* ...so rejoining does not depose the healthy leader. */
	assert_int_equal(h_leader(&h), 1);
	assert_int_equal(h_status(&h, 1).term, term);
	assert_int_equal(h_status(&h, 3).leader, 1);
	h_free(&h);
}

static void test_without_prevote_rejoin_disrupts(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, no_pre_vote);
	h_elect(&h, 1);
	uint64_t term = h_status(&h, 1).term;
	h_isolate(&h, 3);
	h_tick(&h, 100);
	assert_true(h_status(&h, 3).term > term + 2);
	h_heal(&h);
	h_tick(&h, 60);
	/* The contrast that shows what pre-vote buys. */
	assert_true(h_status(&h, 1).term > term);
	h_free(&h);
}

static void test_check_quorum_steps_down(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_isolate(&h, 1);
	int t;
	for (t = 1; t <= 40; t++) {
		h_tick(&h, 1);
		if (h_status(&h, 1).role != SISY_RAFT_LEADER)
			break;
	}
	/* Within two election timeouts (one full check period). */
	assert_true(t <= 20);
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_FOLLOWER);
	h_free(&h);
}

static void test_without_check_quorum_leader_stays(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, no_check_quorum);
	h_elect(&h, 1);
	h_isolate(&h, 1);
	h_tick(&h, 40);
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_LEADER);
	h_free(&h);
}

static void test_vote_requires_up_to_date_log(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_isolate(&h, 3);
	uint64_t idx;
	assert_int_equal(h_propose(&h, 1, "x", &idx), SISY_OK);
	h_settle(&h);
	assert_int_equal(h_status(&h, 1).commit, idx);
	h_heal(&h);
	h_isolate(&h, 1);
	/* 3 lacks "x": 2 must refuse it (the lease is bypassed by the forced
	 * campaign, so only the log check stands in the way). */
	sisy_raft_campaign(h.nodes[3].r);
	h_settle(&h);
	assert_int_not_equal(h_status(&h, 3).role, SISY_RAFT_LEADER);
	h_tick(&h, 60);
	uint64_t l = h_leader(&h);
	assert_int_equal(l, 2);
	assert_true(h_status(&h, 2).last_index > idx);
	h_free(&h);
}

static void test_noop_opens_each_term(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_elect(&h, 2);
	for (uint64_t id = 1; id <= 3; id++) {
		struct h_node *n = &h.nodes[id];
		/* index 1 boot config, 2 no-op of term 2, 3 no-op of 3 */
		assert_int_equal(n->applied_index, 3);
		assert_int_equal(n->applied[1].type, SISY_RAFT_ENTRY_NOOP);
		assert_int_equal(n->applied[1].term, 2);
		assert_int_equal(n->applied[2].type, SISY_RAFT_ENTRY_NOOP);
		assert_int_equal(n->applied[2].term, 3);
	}
	h_check_applied(&h);
	h_free(&h);
}

static void one_entry_per_msg(sisy_raft_config *c)
{
	c->max_msg_entries = 1;
}

/* Figure 8 of the Raft paper: an entry of an old term that reaches a
 * majority is not committed by counting; it commits with the new leader's
 * first entry of its own term. */
static void test_old_term_entry_not_committed_by_counting(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, one_entry_per_msg);
	h_elect(&h, 1); /* term 2, no-op at 2 */
	for (uint64_t id = 1; id <= 3; id++)
		h_isolate(&h, id);
	uint64_t x;
	assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	assert_int_equal(x, 3); /* term 2, on 1 alone */
	h_tick(&h, 25);		/* 1 loses its quorum and steps down */
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_FOLLOWER);
	assert_int_equal(h_status(&h, 2).term, 2);
	assert_int_equal(h_status(&h, 3).term, 2);
	/* Only 1 <-> 3 works; 3 makes its writes durable only when told. */
	h.cut[1][3] = h.cut[3][1] = 0;
	h.nodes[3].auto_persist = 0;
	sisy_raft_campaign(h.nodes[1].r);
	for (int i = 0; i < 20; i++) {
		h_settle(&h);
		if (h_status(&h, 3).last_index >= 4)
			break;
		h_persist(&h, 3, UINT64_MAX);
	}
	assert_int_equal(h_leader(&h), 1);
	assert_int_equal(h_status(&h, 1).term, 3);
	/* 3 holds x durably (and the term-3 no-op, not yet durably). */
	assert_int_equal(h_status(&h, 3).last_index, 4);
	assert_int_equal(h_status(&h, 3).durable_index, 3);
	/* A majority (1 and 3) holds x, but it is of term 2: no commit. */
	assert_int_equal(h_status(&h, 1).commit, 2);
	assert_int_equal(h_applied_find(&h, 1, "x"), 0);
	h_persist(&h, 3, UINT64_MAX);
	h_settle(&h);
	/* The no-op of term 3 commits, and x with it. */
	assert_int_equal(h_status(&h, 1).commit, 4);
	assert_int_equal(h_applied_find(&h, 1, "x"), 3);
	h_free(&h);
}

static void test_election_after_leader_crash(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 5, NULL);
	h_elect(&h, 1);
	uint64_t idx;
	assert_int_equal(h_propose(&h, 1, "a", &idx), SISY_OK);
	h_settle(&h);
	h_crash(&h, 1);
	assert_true(tick_until_leader(&h, 60) > 0);
	uint64_t l = h_leader(&h);
	assert_int_not_equal(l, 1);
	assert_int_equal(h_propose(&h, l, "b", NULL), SISY_OK);
	h_settle(&h);
	h_restart(&h, 1);
	h_tick(&h, 5);
	assert_int_equal(h_applied_find(&h, 1, "a"), idx);
	assert_true(h_applied_find(&h, 1, "b") > idx);
	h_check_applied(&h);
	h_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_single_node_elects_itself),
	    cmocka_unit_test(test_timeouts_are_randomized_by_seed),
	    cmocka_unit_test(test_three_nodes_agree_on_one_leader),
	    cmocka_unit_test(test_prevote_keeps_partitioned_node_harmless),
	    cmocka_unit_test(test_without_prevote_rejoin_disrupts),
	    cmocka_unit_test(test_check_quorum_steps_down),
	    cmocka_unit_test(test_without_check_quorum_leader_stays),
	    cmocka_unit_test(test_vote_requires_up_to_date_log),
	    cmocka_unit_test(test_noop_opens_each_term),
	    cmocka_unit_test(test_old_term_entry_not_committed_by_counting),
	    cmocka_unit_test(test_election_after_leader_crash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
