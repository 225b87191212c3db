/* Tests sisyd/raft/transfer.c: planned leadership transfer with
 * TIMEOUT_NOW, catching the target up first, refusing proposals meanwhile,
 * and giving up after an election timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void test_transfer_to_caught_up_follower(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	uint64_t term = h_status(&h, 1).term;
	uint64_t tn = h.sent_by_type[SISY_RAFT_MSG_TIMEOUT_NOW];
	assert_int_equal(sisy_raft_transfer(h.nodes[1].r, 2), SISY_OK);
	h_settle(&h);
	/* No ticks needed: the followers' check-quorum lease does not stop
	 * a transfer's election. */
	assert_int_equal(h.sent_by_type[SISY_RAFT_MSG_TIMEOUT_NOW] - tn, 1);
	assert_int_equal(h_leader(&h), 2);
	assert_int_equal(h_status(&h, 2).term, term + 1);
	assert_int_equal(h_status(&h, 1).role, SISY_RAFT_FOLLOWER);
	assert_int_equal(h_status(&h, 1).leader, 2);
	assert_int_equal(h_propose(&h, 2, "after", NULL), SISY_OK);
	h_settle(&h);
	assert_true(h_applied_find(&h, 1, "after") > 0);
	h_free(&h);
}

static void test_transfer_catches_target_up_first(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_isolate(&h, 3);
	uint64_t x;
	for (int i = 0; i < 5; i++)
		assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	h_heal(&h);
	assert_int_equal(sisy_raft_transfer(h.nodes[1].r, 3), SISY_OK);
	/* Proposals are refused while leadership is being handed over. */
	assert_int_equal(h_propose(&h, 1, "no", NULL), SISY_E_BUSY);
	sisy_raft_status st = h_status(&h, 1);
	assert_int_equal(st.transferee, 3);
	h_tick(&h, 2);
	assert_int_equal(h_leader(&h), 3);
	assert_true(h_status(&h, 3).last_index > x);
	h_check_applied(&h);
	h_free(&h);
}

static void test_transfer_gives_up_after_election_timeout(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_isolate(&h, 3);
	h.cut[1][2] = h.cut[2][1] = 0;
	assert_int_equal(sisy_raft_transfer(h.nodes[1].r, 3), SISY_OK);
	h_tick(&h, 9);
	assert_int_equal(h_status(&h, 1).transferee, 3);
	assert_int_equal(h_propose(&h, 1, "no", NULL), SISY_E_BUSY);
	h_tick(&h, 1); /* the 10th tick: one election timeout */
	assert_int_equal(h_status(&h, 1).transferee, SISY_RAFT_NONE);
	assert_int_equal(h_leader(&h), 1);
	assert_int_equal(h_propose(&h, 1, "yes", NULL), SISY_OK);
	h_free(&h);
}

static void test_transfer_errors(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	assert_int_equal(sisy_raft_transfer(h.nodes[2].r, 3), SISY_E_NOTLEADER);
	assert_int_equal(sisy_raft_transfer(h.nodes[1].r, 1), SISY_E_INVAL);
	assert_int_equal(sisy_raft_transfer(h.nodes[1].r, 7), SISY_E_INVAL);
	h_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_transfer_to_caught_up_follower),
	    cmocka_unit_test(test_transfer_catches_target_up_first),
	    cmocka_unit_test(test_transfer_gives_up_after_election_timeout),
	    cmocka_unit_test(test_transfer_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
