/* Tests sisyd/raft/raft.c: configuration and restore validation, message
 * validation, the term rules of step, proposal error codes, and the
 * status / progress a node shows in CLUSTER NODES. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void test_config_validation(void **state)
{
	(void)state;
	sisy_raft_config c;
	sisy_raft *r = NULL;
	sisy_raft_config_default(&c, 0);
	assert_int_equal(sisy_raft_create(&c, &r), SISY_E_INVAL);
	sisy_raft_config_default(&c, 1);
	c.election_ticks = c.heartbeat_ticks;
	assert_int_equal(sisy_raft_create(&c, &r), SISY_E_INVAL);
	sisy_raft_config_default(&c, 1);
	c.max_inflight_msgs = 0;
	assert_int_equal(sisy_raft_create(&c, &r), SISY_E_INVAL);
	sisy_raft_config_default(&c, 1);
	c.max_msg_bytes = 0;
	assert_int_equal(sisy_raft_create(&c, &r), SISY_E_INVAL);
	assert_null(r);
	sisy_raft_config_default(&c, 1);
	assert_int_equal(sisy_raft_create(&c, &r), SISY_OK);
	/* A fresh instance knows no membership: it never campaigns. */
	for (int i = 0; i < 100; i++)
		sisy_raft_tick(r);
	sisy_raft_status st;
	sisy_raft_get_status(r, &st);
	assert_int_equal(st.role, SISY_RAFT_FOLLOWER);
	assert_int_equal(st.term, 0);
	assert_false(sisy_raft_has_ready(r));
	sisy_raft_destroy(r);
	assert_string_equal(sisy_raft_bug(), "");
}

static void test_restore_validation(void **state)
{
	(void)state;
	sisy_raft_config c;
	sisy_raft_config_default(&c, 1);
	sisy_raft *r;
	assert_int_equal(sisy_raft_create(&c, &r), SISY_OK);
	const uint8_t d = 'x';
	sisy_raft_entry gap[2] = {{1, 1, 0, &d, 1}, {1, 3, 0, &d, 1}};
	sisy_raft_hard_state hs = {1, 0, 1};
	assert_int_equal(sisy_raft_restore(r, &hs, NULL, gap, 2, 0),
			 SISY_E_CORRUPT);
	sisy_raft_entry down[2] = {{2, 1, 0, &d, 1}, {1, 2, 0, &d, 1}};
	assert_int_equal(sisy_raft_restore(r, &hs, NULL, down, 2, 0),
			 SISY_E_CORRUPT);
	/* After a snapshot at 5, the log must start at 6. */
	sisy_raft_snapshot_meta snap = {0};
	snap.index = 5;
	snap.term = 2;
	snap.membership.voters[snap.membership.n_voters++] = 1;
	sisy_raft_entry at7[1] = {{2, 7, 0, &d, 1}};
	assert_int_equal(sisy_raft_restore(r, &hs, &snap, at7, 1, 0),
			 SISY_E_CORRUPT);
	/* A good one: commit beyond the log is clamped, the term raised to
	 * the last entry's. */
	sisy_raft_entry ok[2] = {{2, 6, 0, &d, 1}, {3, 7, 0, &d, 1}};
	sisy_raft_hard_state hs2 = {2, 1, 99};
	assert_int_equal(sisy_raft_restore(r, &hs2, &snap, ok, 2, 5), SISY_OK);
	sisy_raft_status st;
	sisy_raft_get_status(r, &st);
	assert_int_equal(st.commit, 7);
	assert_int_equal(st.term, 3);
	assert_int_equal(st.vote, SISY_RAFT_NONE);
	assert_int_equal(st.first_index, 6);
	assert_int_equal(st.applied, 5);
	assert_true(st.is_voter);
	/* Restoring twice is refused. */
	assert_int_equal(sisy_raft_restore(r, &hs2, &snap, ok, 2, 5),
			 SISY_E_INVAL);
	/* The raised term must be persisted before anything else. */
	sisy_raft_ready rd;
	sisy_raft_get_ready(r, &rd);
	assert_true(rd.persist_id > 0);
	assert_int_equal(rd.hard_state.term, 3);
	assert_int_equal(rd.n_committed, 2); /* 6 and 7: durable, committed */
	sisy_raft_advance(r);
	sisy_raft_destroy(r);
}

static void test_restore_applied_counts_as_committed(void **state)
{
	(void)state;
	sisy_raft_config c;
	sisy_raft_config_default(&c, 1);
	sisy_raft *r;
	assert_int_equal(sisy_raft_create(&c, &r), SISY_OK);
	sisy_raft_membership m = {0};
	m.voters[m.n_voters++] = 1;
	m.voters[m.n_voters++] = 2;
	sisy_raft_conf_change cc = {SISY_RAFT_CONF_ADD_VOTER, 1, {NULL, 0}};
	sisy_buf b = {0};
	assert_int_equal(sisy_raft_conf_encode(&cc, &m, &b), SISY_OK);
	const uint8_t d = 'x';
	sisy_raft_entry e[4] = {{1, 1, SISY_RAFT_ENTRY_CONFIG, b.data, b.len},
				{2, 2, 0, &d, 1},
				{2, 3, 0, &d, 1},
				{2, 4, 0, &d, 1}};
	/* The commit on disk (lazily written) lags what the engine
	 * applied durably. */
	sisy_raft_hard_state hs = {2, 1, 1};
	assert_int_equal(sisy_raft_restore(r, &hs, NULL, e, 4, 3), SISY_OK);
	sisy_buf_free(&b);
	sisy_raft_status st;
	sisy_raft_get_status(r, &st);
	assert_int_equal(st.commit, 3);
	assert_int_equal(st.applied, 3);
	/* Entries 2 and 3 are not handed out a second time. */
	while (sisy_raft_has_ready(r)) {
		sisy_raft_ready rd;
		sisy_raft_get_ready(r, &rd);
		assert_int_equal(rd.n_committed, 0);
		sisy_raft_advance(r);
	}
	sisy_raft_destroy(r);
}

static void test_malformed_messages_rejected(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	sisy_raft *r = h.nodes[2].r;
	sisy_raft_status before = h_status(&h, 2);
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_HEARTBEAT;
	m.from = 1;
	m.to = 3; /* not me */
	m.term = before.term + 5;
	assert_int_equal(sisy_raft_step(r, &m), SISY_E_INVAL);
	m.to = 2;
	m.from = 0;
	assert_int_equal(sisy_raft_step(r, &m), SISY_E_INVAL);
	m.from = 2; /* from myself */
	assert_int_equal(sisy_raft_step(r, &m), SISY_E_INVAL);
	m.from = 1;
	m.type = 0;
	assert_int_equal(sisy_raft_step(r, &m), SISY_E_INVAL);
	m.type = SISY_RAFT_MSG_TYPE_MAX + 1;
	assert_int_equal(sisy_raft_step(r, &m), SISY_E_INVAL);
	/* An APPEND whose entries do not follow its prev index. */
	const uint8_t d = 'x';
	sisy_raft_entry e[2] = {{before.term, before.last_index + 2, 0, &d, 1},
				{before.term, before.last_index + 3, 0, &d, 1}};
	m.type = SISY_RAFT_MSG_APPEND;
	m.index = before.last_index;
	m.log_term = before.term;
	m.entries = e;
	m.n_entries = 2;
	assert_int_equal(sisy_raft_step(r, &m), SISY_E_INVAL);
	/* An entry from a term above the message's. */
	e[0].index = before.last_index + 1;
	e[1].index = before.last_index + 2;
	e[1].term = m.term + 1;
	assert_int_equal(sisy_raft_step(r, &m), SISY_E_INVAL);
	/* None of it changed anything. */
	sisy_raft_status after = h_status(&h, 2);
	assert_int_equal(after.term, before.term);
	assert_int_equal(after.last_index, before.last_index);
	assert_false(sisy_raft_has_ready(r));
	h_free(&h);
}

static void test_stale_term_messages(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_elect(&h, 2);
	sisy_raft_status before = h_status(&h, 3);
	/* A heartbeat from a deposed leader of an older term is dropped
	 * but answered at our term, so the old leader steps down. */
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_HEARTBEAT;
	m.from = 1;
	m.to = 3;
	m.term = before.term - 1;
	m.commit = 99;
	assert_int_equal(sisy_raft_step(h.nodes[3].r, &m), SISY_OK);
	sisy_raft_ready rd;
	sisy_raft_get_ready(h.nodes[3].r, &rd);
	assert_int_equal(rd.n_msgs, 1);
	assert_int_equal(rd.msgs[0].type, SISY_RAFT_MSG_APPEND_RESP);
	assert_int_equal(rd.msgs[0].term, before.term);
	assert_int_equal(rd.msgs[0].to, 1);
	sisy_raft_advance(h.nodes[3].r);
	sisy_raft_status after = h_status(&h, 3);
	assert_int_equal(after.leader, 2);
	assert_int_equal(after.commit, before.commit);
	h_free(&h);
}

static void small_limits(sisy_raft_config *c)
{
	c->max_entry_bytes = 16;
	c->max_uncommitted_bytes = 40;
}

static void test_proposal_errors(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, small_limits);
	assert_int_equal(h_propose(&h, 1, "x", NULL), SISY_E_NOTLEADER);
	h_elect(&h, 1);
	assert_int_equal(h_propose(&h, 2, "x", NULL), SISY_E_NOTLEADER);
	assert_int_equal(h_propose(&h, 1, "0123456789abcdefg", NULL),
			 SISY_E_TOOBIG);
	/* Without followers nothing commits; the window fills. */
	h_isolate(&h, 1);
	int ok = 0;
	while (h_propose(&h, 1, "0123456789", NULL) == SISY_OK)
		ok++;
	assert_int_equal(ok, 4); /* 40 bytes of 10-byte entries */
	assert_int_equal(h_propose(&h, 1, "0123456789", NULL), SISY_E_AGAIN);
	h_heal(&h);
	h_tick(&h, 2);
	assert_int_equal(h_propose(&h, 1, "0123456789", NULL), SISY_OK);
	h_free(&h);
}

static void test_status_and_progress(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	uint64_t x;
	assert_int_equal(h_propose(&h, 1, "x", &x), SISY_OK);
	h_settle(&h);
	h_tick(&h, 1);
	sisy_raft_status st = h_status(&h, 1);
	assert_int_equal(st.id, 1);
	assert_int_equal(st.role, SISY_RAFT_LEADER);
	assert_int_equal(st.leader, 1);
	assert_int_equal(st.commit, x);
	assert_int_equal(st.applied, x);
	assert_int_equal(st.last_index, x);
	assert_int_equal(st.durable_index, x);
	assert_int_equal(st.membership.n_voters, 3);
	sisy_raft_progress pr[8];
	assert_int_equal(sisy_raft_get_progress(h.nodes[1].r, pr, 8), 2);
	for (int k = 0; k < 2; k++) {
		assert_true(pr[k].id == 2 || pr[k].id == 3);
		assert_int_equal(pr[k].state, SISY_RAFT_REPLICATE);
		assert_int_equal(pr[k].match, x);
		assert_int_equal(pr[k].next, x + 1);
		assert_int_equal(pr[k].inflight, 0);
		assert_true(pr[k].recent_active);
		assert_int_equal(pr[k].ticks_since_contact, 0);
	}
	/* A silent follower shows its lag and its silence. */
	h_crash(&h, 3);
	assert_int_equal(h_propose(&h, 1, "y", NULL), SISY_OK);
	h_tick(&h, 4);
	assert_int_equal(sisy_raft_get_progress(h.nodes[1].r, pr, 8), 2);
	const sisy_raft_progress *p3 = pr[0].id == 3 ? &pr[0] : &pr[1];
	assert_int_equal(p3->match, x);
	assert_int_equal(p3->ticks_since_contact, 4);
	/* Followers have no progress to show. */
	assert_int_equal(sisy_raft_get_progress(h.nodes[2].r, pr, 8), 0);
	assert_string_equal(sisy_raft_msg_type_name(SISY_RAFT_MSG_APPEND),
			    "APPEND");
	assert_string_equal(sisy_raft_msg_type_name(99), "?");
	h_free(&h);
}

static void test_soft_state_reported_on_change(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	uint64_t before = h.nodes[2].soft_changes;
	h_elect(&h, 1);
	/* 2 learned the new term and leader. */
	assert_true(h.nodes[2].soft_changes > before);
	before = h.nodes[2].soft_changes;
	h_tick(&h, 5);
	assert_int_equal(h.nodes[2].soft_changes, before);
	h_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_config_validation),
	    cmocka_unit_test(test_restore_validation),
	    cmocka_unit_test(test_restore_applied_counts_as_committed),
	    cmocka_unit_test(test_malformed_messages_rejected),
	    cmocka_unit_test(test_stale_term_messages),
	    cmocka_unit_test(test_proposal_errors),
	    cmocka_unit_test(test_status_and_progress),
	    cmocka_unit_test(test_soft_state_reported_on_change),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
