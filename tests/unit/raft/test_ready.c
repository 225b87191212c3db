/* Tests sisyd/raft/ready.c: the ready / advance / persisted protocol and the
 * ordering rules — a vote grant or an append acknowledgement leaves only
 * after what it promises is durable, a candidate's own vote and a leader's
 * own log count only once durable, nothing is applied beyond the node's
 * durable log, and a truncation un-claims durability of the old suffix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

/* Counts messages of one type from one node as they are delivered. */
static uint8_t count_type;
static uint64_t count_from;
static size_t counted;
static uint64_t counted_max_index;

static int counter(struct harness *h, const sisy_raft_msg *m)
{
	(void)h;
	if (m->type == count_type && m->from == count_from && !m->reject) {
		counted++;
		if (m->index > counted_max_index)
			counted_max_index = m->index;
	}
	return 1;
}

static void count_reset(uint8_t type, uint64_t from)
{
	count_type = type;
	count_from = from;
	counted = 0;
	counted_max_index = 0;
}

static void test_append_ack_waits_for_persist(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h.nodes[2].auto_persist = 0;
	count_reset(SISY_RAFT_MSG_APPEND_RESP, 2);
	h.filter = counter;
	uint64_t x;
	assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	/* 2 has x in memory (last index) but has not acknowledged it. */
	assert_int_equal(h_status(&h, 2).last_index, x);
	assert_int_equal(h_status(&h, 2).durable_index, x - 1);
	assert_int_equal(counted, 0);
	h_persist(&h, 2, UINT64_MAX);
	h_settle(&h);
	assert_true(counted >= 1); /* (the commit's empty APPEND too) */
	assert_int_equal(counted_max_index, x);
	h_free(&h);
}

static void test_vote_grant_waits_for_persist(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h.nodes[2].auto_persist = 0;
	h.nodes[3].auto_persist = 0;
	count_reset(SISY_RAFT_MSG_VOTE_RESP, 2);
	h.filter = counter;
	sisy_raft_campaign(h.nodes[1].r);
	h_settle(&h);
	/* 2 voted (term and vote set) but the grant is held. */
	assert_int_equal(h_status(&h, 2).vote, 1);
	assert_int_equal(counted, 0);
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_CANDIDATE);
	/* The model disk still holds the old vote: a crash now forgets it,
	 * and nobody was told. */
	assert_int_equal(h.nodes[2].hs.vote, 0);
	h_persist(&h, 2, UINT64_MAX);
	assert_int_equal(h.nodes[2].hs.vote, 1);
	h_settle(&h);
	assert_int_equal(counted, 1);
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_LEADER);
	h_free(&h);
}

static void test_candidate_self_vote_waits_for_persist(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 1, NULL);
	h.nodes[1].auto_persist = 0;
	sisy_raft_campaign(h.nodes[1].r);
	h_settle(&h);
	/* Alone, its own vote is a quorum — but only once durable. */
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_CANDIDATE);
	h_persist(&h, 1, UINT64_MAX);
	h_settle(&h);
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_LEADER);
	h_free(&h);
}

static void test_leader_counts_itself_only_when_durable(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_isolate(&h, 3);
	h.nodes[1].auto_persist = 0;
	uint64_t x;
	assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	/* Sent before its own append was durable; 2 acknowledged. */
	assert_int_equal(h_status(&h, 2).durable_index, x);
	/* 1 + 2 is a quorum only counting 1's durable log: no commit yet. */
	assert_int_equal(h_status(&h, 1).commit, x - 1);
	h_persist(&h, 1, UINT64_MAX);
	h_settle(&h);
	assert_int_equal(h_status(&h, 1).commit, x);
	assert_int_equal(h_applied_find(&h, 1, "x"), x);
	h_free(&h);
}

static void test_leader_applies_only_its_durable_log(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h.nodes[1].auto_persist = 0;
	uint64_t x;
	assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	/* 2 and 3 are a quorum without the leader: x is committed... */
	assert_int_equal(h_status(&h, 1).commit, x);
	/* ...but not applied on 1 until its own copy is durable. */
	assert_int_equal(h_applied_find(&h, 1, "x"), 0);
	assert_true(h.nodes[1].applied_index < x);
	h_persist(&h, 1, UINT64_MAX);
	h_settle(&h);
	assert_int_equal(h_applied_find(&h, 1, "x"), x);
	h_free(&h);
}

static void test_follower_applies_only_its_durable_log(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h.nodes[2].auto_persist = 0;
	uint64_t x, y;
	assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	assert_int_equal(h_propose(&h, 1, "y", &y), SISY_OK);
	h_settle(&h);
	/* Later APPENDs told 2 that x (and y) committed; 2 holds them only
	 * in memory. (The harness also checks applied <= durable after
	 * every ready.) */
	assert_true(h_status(&h, 2).commit >= x);
	assert_int_equal(h_applied_find(&h, 2, "x"), 0);
	h_persist(&h, 2, UINT64_MAX);
	h_settle(&h);
	assert_int_equal(h_applied_find(&h, 2, "x"), x);
	h_free(&h);
}

static void test_crash_loses_only_unacknowledged(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h.nodes[2].auto_persist = 0;
	h_isolate(&h, 3);
	uint64_t x;
	assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	assert_int_equal(h_status(&h, 1).commit, x - 1);
	h_crash(&h, 2); /* x was never acknowledged by 2: not committed */
	h_restart(&h, 2);
	assert_int_equal(h_status(&h, 2).last_index, x - 1);
	h.nodes[2].auto_persist = 1;
	h_tick(&h, 3);
	assert_int_equal(h_status(&h, 1).commit, x);
	assert_int_equal(h_applied_find(&h, 2, "x"), x);
	h_check_applied(&h);
	h_free(&h);
}

/* A bare follower driven by hand. */
static sisy_raft *bare_follower(void)
{
	sisy_raft_config cfg;
	sisy_raft_config_default(&cfg, 2);
	sisy_raft *r;
	assert_int_equal(sisy_raft_create(&cfg, &r), SISY_OK);
	sisy_raft_membership m = {0};
	m.voters[m.n_voters++] = 1;
	m.voters[m.n_voters++] = 2;
	m.voters[m.n_voters++] = 3;
	sisy_raft_conf_change cc = {SISY_RAFT_CONF_ADD_VOTER, 1, {NULL, 0}};
	sisy_buf b = {0};
	assert_int_equal(sisy_raft_conf_encode(&cc, &m, &b), SISY_OK);
	sisy_raft_entry e = {1, 1, SISY_RAFT_ENTRY_CONFIG, b.data, b.len};
	sisy_raft_hard_state hs = {1, 0, 1};
	assert_int_equal(sisy_raft_restore(r, &hs, NULL, &e, 1, 1), SISY_OK);
	sisy_buf_free(&b);
	return r;
}

static sisy_raft_msg append(uint64_t from, uint64_t term, uint64_t prev,
			    uint64_t prev_term, const sisy_raft_entry *e,
			    size_t n, uint64_t commit)
{
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_APPEND;
	m.from = from;
	m.to = 2;
	m.term = term;
	m.index = prev;
	m.log_term = prev_term;
	m.entries = e;
	m.n_entries = n;
	m.commit = commit;
	return m;
}

/* Takes a ready and returns its persist id, counting accepted
 * APPEND_RESPs (with their max index). */
static uint64_t take(sisy_raft *r, size_t *acks, uint64_t *max_index)
{
	sisy_raft_ready rd;
	sisy_raft_get_ready(r, &rd);
	for (size_t k = 0; k < rd.n_msgs; k++) {
		if (rd.msgs[k].type == SISY_RAFT_MSG_APPEND_RESP &&
		    !rd.msgs[k].reject) {
			(*acks)++;
			if (rd.msgs[k].index > *max_index)
				*max_index = rd.msgs[k].index;
		}
	}
	uint64_t id = rd.persist_id;
	sisy_raft_advance(r);
	return id;
}

static void test_truncation_unclaims_durability(void **state)
{
	(void)state;
	sisy_raft *r = bare_follower();
	size_t acks = 0;
	uint64_t maxi = 0;
	const uint8_t a = 'a', b = 'b', c = 'c';
	sisy_raft_entry old[2] = {{2, 2, 0, &a, 1}, {2, 3, 0, &b, 1}};
	sisy_raft_msg m = append(1, 2, 1, 1, old, 2, 1);
	assert_int_equal(sisy_raft_step(r, &m), SISY_OK);
	uint64_t id1 = take(r, &acks, &maxi);
	assert_true(id1 > 0);
	assert_int_equal(acks, 0); /* held until id1 persists */
	/* A leader of term 3 replaces index 2 before id1 is durable. */
	sisy_raft_entry neu[1] = {{3, 2, 0, &c, 1}};
	m = append(3, 3, 1, 1, neu, 1, 1);
	assert_int_equal(sisy_raft_step(r, &m), SISY_OK);
	uint64_t id2 = take(r, &acks, &maxi);
	assert_true(id2 > id1);
	sisy_raft_persisted(r, id1);
	sisy_raft_status st;
	sisy_raft_get_status(r, &st);
	/* The disk now holds the old 2..3, which our log no longer has. */
	assert_int_equal(st.durable_index, 1);
	assert_int_equal(st.last_index, 2);
	/* The ack for the old leader (index 3, term 2) may go: it was true
	 * when made. The new leader's ack waits for id2. */
	acks = 0;
	maxi = 0;
	take(r, &acks, &maxi);
	assert_int_equal(acks, 1);
	assert_int_equal(maxi, 3);
	sisy_raft_persisted(r, id2);
	sisy_raft_get_status(r, &st);
	assert_int_equal(st.durable_index, 2);
	acks = 0;
	maxi = 0;
	take(r, &acks, &maxi);
	assert_int_equal(acks, 1);
	assert_int_equal(maxi, 2);
	sisy_raft_destroy(r);
}

static void test_ready_entries_truncate_and_replace(void **state)
{
	(void)state;
	sisy_raft *r = bare_follower();
	const uint8_t a = 'a', b = 'b', c = 'c';
	sisy_raft_entry old[2] = {{2, 2, 0, &a, 1}, {2, 3, 0, &b, 1}};
	sisy_raft_msg m = append(1, 2, 1, 1, old, 2, 1);
	assert_int_equal(sisy_raft_step(r, &m), SISY_OK);
	sisy_raft_ready rd;
	sisy_raft_get_ready(r, &rd);
	assert_int_equal(rd.n_entries, 2);
	assert_int_equal(rd.entries[0].index, 2);
	assert_true(rd.has_hard_state);
	assert_int_equal(rd.hard_state.term, 2);
	sisy_raft_advance(r);
	sisy_raft_entry neu[1] = {{3, 3, 0, &c, 1}};
	m = append(3, 3, 2, 2, neu, 1, 1);
	assert_int_equal(sisy_raft_step(r, &m), SISY_OK);
	sisy_raft_get_ready(r, &rd);
	/* Only the replaced suffix, starting where the disk must cut. */
	assert_int_equal(rd.n_entries, 1);
	assert_int_equal(rd.entries[0].index, 3);
	assert_int_equal(rd.entries[0].term, 3);
	assert_memory_equal(rd.entries[0].data, "c", 1);
	sisy_raft_advance(r);
	assert_false(sisy_raft_has_ready(r));
	sisy_raft_destroy(r);
}

static void test_commit_only_hard_state_needs_no_sync(void **state)
{
	(void)state;
	sisy_raft *r = bare_follower();
	const uint8_t a = 'a';
	sisy_raft_entry e[1] = {{2, 2, 0, &a, 1}};
	sisy_raft_msg m = append(1, 2, 1, 1, e, 1, 1);
	assert_int_equal(sisy_raft_step(r, &m), SISY_OK);
	sisy_raft_ready rd;
	sisy_raft_get_ready(r, &rd);
	uint64_t id = rd.persist_id;
	sisy_raft_advance(r);
	sisy_raft_persisted(r, id);
	sisy_raft_get_ready(r, &rd); /* the released ack */
	sisy_raft_advance(r);
	sisy_raft_msg hb = {0};
	hb.type = SISY_RAFT_MSG_HEARTBEAT;
	hb.from = 1;
	hb.to = 2;
	hb.term = 2;
	hb.commit = 2;
	assert_int_equal(sisy_raft_step(r, &hb), SISY_OK);
	sisy_raft_get_ready(r, &rd);
	assert_int_equal(rd.persist_id, 0);
	assert_true(rd.has_hard_state);
	assert_int_equal(rd.hard_state.commit, 2);
	assert_int_equal(rd.n_committed, 1); /* durable and committed */
	assert_int_equal(rd.committed[0].index, 2);
	sisy_raft_advance(r);
	sisy_raft_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_ack_waits_for_persist),
	    cmocka_unit_test(test_vote_grant_waits_for_persist),
	    cmocka_unit_test(test_candidate_self_vote_waits_for_persist),
	    cmocka_unit_test(test_leader_counts_itself_only_when_durable),
	    cmocka_unit_test(test_leader_applies_only_its_durable_log),
	    cmocka_unit_test(test_follower_applies_only_its_durable_log),
	    cmocka_unit_test(test_crash_loses_only_unacknowledged),
	    cmocka_unit_test(test_truncation_unclaims_durability),
	    cmocka_unit_test(test_ready_entries_truncate_and_replace),
	    cmocka_unit_test(test_commit_only_hard_state_needs_no_sync),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
