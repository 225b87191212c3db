/* Tests sisyd/raft/readindex.c: reads wait for the term's no-op to commit,
 * one heartbeat round serves every read queued behind it, followers get a
 * read index from the leader, a leader without a quorum serves nothing (no
 * leases), and lost leadership fails queued reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void test_read_waits_for_noop_commit(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h.nodes[2].auto_persist = 0;
	h.nodes[3].auto_persist = 0;
	sisy_raft_campaign(h.nodes[1].r);
	h_settle(&h);
	h_persist(&h, 2, UINT64_MAX); /* releases the vote grants */
	h_persist(&h, 3, UINT64_MAX);
	h_settle(&h);
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_LEADER);
	uint64_t noop = h_status(&h, 1).last_index;
	assert_true(h_status(&h, 1).commit < noop);
	assert_int_equal(sisy_raft_read_index(h.nodes[1].r, 7), SISY_OK);
	h_settle(&h);
	h_tick(&h, 3); /* heartbeats go round, yet the read must wait */
	assert_int_equal(h.nodes[1].n_reads, 0);
	h_persist(&h, 2, UINT64_MAX);
	h_settle(&h);
	assert_int_equal(h_status(&h, 1).commit, noop);
	assert_int_equal(h.nodes[1].n_reads, 1);
	assert_int_equal(h.nodes[1].reads[0].ctx, 7);
	assert_int_equal(h.nodes[1].reads[0].index, noop);
	assert_false(h.nodes[1].reads[0].failed);
	h_free(&h);
}

static void test_one_heartbeat_round_serves_a_batch(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	uint64_t x;
	assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	uint64_t hb = h.sent_by_type[SISY_RAFT_MSG_HEARTBEAT];
	for (uint64_t c = 1; c <= 5; c++)
		assert_int_equal(sisy_raft_read_index(h.nodes[1].r, c),
				 SISY_OK);
	h_settle(&h);
	/* One round: one heartbeat per follower for five reads. */
	assert_int_equal(h.sent_by_type[SISY_RAFT_MSG_HEARTBEAT] - hb, 2);
	assert_int_equal(h.nodes[1].n_reads, 5);
	for (size_t k = 0; k < 5; k++) {
		assert_int_equal(h.nodes[1].reads[k].ctx, k + 1);
		assert_int_equal(h.nodes[1].reads[k].index, x);
		assert_false(h.nodes[1].reads[k].failed);
	}
	/* The next batch gets its own round. */
	assert_int_equal(sisy_raft_read_index(h.nodes[1].r, 9), SISY_OK);
	h_settle(&h);
	assert_int_equal(h.sent_by_type[SISY_RAFT_MSG_HEARTBEAT] - hb, 4);
	assert_int_equal(h.nodes[1].n_reads, 6);
	h_free(&h);
}

static void test_single_node_reads_at_once(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 1, NULL);
	h_elect(&h, 1);
	assert_int_equal(sisy_raft_read_index(h.nodes[1].r, 3), SISY_OK);
	h_settle(&h);
	assert_int_equal(h.nodes[1].n_reads, 1);
	assert_int_equal(h.nodes[1].reads[0].index, h_status(&h, 1).commit);
	h_free(&h);
}

static void test_follower_gets_read_index_from_leader(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	uint64_t x;
	assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	assert_int_equal(sisy_raft_read_index(h.nodes[2].r, 42), SISY_OK);
	h_settle(&h);
	assert_int_equal(h.nodes[2].n_reads, 1);
	assert_int_equal(h.nodes[2].reads[0].ctx, 42);
	assert_int_equal(h.nodes[2].reads[0].index, x);
	assert_false(h.nodes[2].reads[0].failed);
	assert_int_equal(h.nodes[1].n_reads, 0); /* not the leader's own */
	h_free(&h);
}

static void test_follower_without_leader_refuses(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	assert_int_equal(sisy_raft_read_index(h.nodes[2].r, 1),
			 SISY_E_NOLEADER);
	h_free(&h);
}

static void no_check_quorum(sisy_raft_config *c)
{
	c->check_quorum = 0;
}

static void test_deposed_leader_serves_no_reads(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, no_check_quorum);
	h_elect(&h, 1);
	h_isolate(&h, 1);
	h_elect(&h, 2); /* the majority moves on */
	assert_int_equal(h_propose(&h, 2, "y", NULL), SISY_OK);
	h_settle(&h);
	/* 1 still believes it leads (no check-quorum); a lease would let it
	 * answer from stale state. ReadIndex cannot confirm: no answer. */
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_LEADER);
	assert_int_equal(sisy_raft_read_index(h.nodes[1].r, 5), SISY_OK);
	h_tick(&h, 50);
	assert_int_equal(h.nodes[1].n_reads, 0);
	/* Back in touch, it learns the new term; the read fails. */
	h_heal(&h);
	h_tick(&h, 2);
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_FOLLOWER);
	assert_int_equal(h.nodes[1].n_reads, 1);
	assert_true(h.nodes[1].reads[0].failed);
	h_free(&h);
}

static void test_step_down_fails_queued_reads(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_isolate(&h, 1);
	assert_int_equal(sisy_raft_read_index(h.nodes[1].r, 8), SISY_OK);
	h_settle(&h);
	assert_int_equal(h.nodes[1].n_reads, 0);
	h_tick(&h, 25); /* check-quorum deposes it */
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_FOLLOWER);
	assert_int_equal(h.nodes[1].n_reads, 1);
	assert_int_equal(h.nodes[1].reads[0].ctx, 8);
	assert_true(h.nodes[1].reads[0].failed);
	h_free(&h);
}

static void small_queue(sisy_raft_config *c)
{
	c->max_pending_reads = 4;
}

static void test_read_queue_is_bounded(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, small_queue);
	h_elect(&h, 1);
	h_isolate(&h, 1); /* nothing confirms: the queue fills */
	for (uint64_t c = 0; c < 4; c++)
		assert_int_equal(sisy_raft_read_index(h.nodes[1].r, c),
				 SISY_OK);
	assert_int_equal(sisy_raft_read_index(h.nodes[1].r, 4), SISY_E_AGAIN);
	h_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_read_waits_for_noop_commit),
	    cmocka_unit_test(test_one_heartbeat_round_serves_a_batch),
	    cmocka_unit_test(test_single_node_reads_at_once),
	    cmocka_unit_test(test_follower_gets_read_index_from_leader),
	    cmocka_unit_test(test_follower_without_leader_refuses),
	    cmocka_unit_test(test_deposed_leader_serves_no_reads),
	    cmocka_unit_test(test_step_down_fails_queued_reads),
	    cmocka_unit_test(test_read_queue_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
