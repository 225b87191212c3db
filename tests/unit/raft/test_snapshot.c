/* Tests sisyd/raft/snapshot.c: compaction, a leader sending a snapshot to a
 * follower that needs compacted entries, installing it (state machine,
 * membership, commit), restarting from a snapshot, and the meta helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void propose_n(struct harness *h, uint64_t id, int n, const char *pfx)
{
	char buf[32];
	for (int i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "%s%d", pfx, i);
		assert_int_equal(h_propose(h, id, buf, NULL), SISY_OK);
		h_settle(h);
	}
}

static void test_lagging_follower_installs_snapshot(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_isolate(&h, 3);
	propose_n(&h, 1, 20, "s");
	uint64_t applied = h.nodes[1].applied_index;
	h_compact(&h, 1, applied);
	sisy_raft_status st = h_status(&h, 1);
	assert_int_equal(st.first_index, applied + 1);
	assert_int_equal(st.compaction.index, applied);
	assert_int_equal(st.compaction.membership.n_voters, 3);
	uint64_t snaps = h.sent_by_type[SISY_RAFT_MSG_SNAPSHOT];
	h_heal(&h);
	h_tick(&h, 3);
	assert_int_equal(h.sent_by_type[SISY_RAFT_MSG_SNAPSHOT] - snaps, 1);
	sisy_raft_status s3 = h_status(&h, 3);
	assert_int_equal(s3.compaction.index, applied);
	assert_int_equal(s3.commit, st.commit);
	assert_int_equal(s3.membership.n_voters, 3);
	/* Its state machine came from the snapshot data. */
	assert_int_equal(h.nodes[3].applied_index, applied);
	assert_true(h_applied_find(&h, 3, "s19") > 0);
	/* And it keeps replicating normally afterwards. */
	propose_n(&h, 1, 3, "t");
	assert_int_equal(h.nodes[3].applied_index, h_status(&h, 1).commit);
	h_check_applied(&h);
	h_free(&h);
}

static void test_snapshot_install_waits_for_persist(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_isolate(&h, 3);
	propose_n(&h, 1, 5, "w");
	h_compact(&h, 1, h.nodes[1].applied_index);
	h.nodes[3].auto_persist = 0;
	h_heal(&h);
	h_tick(&h, 3);
	/* Delivered and installed in 3's core, but not acknowledged until
	 * 3's state machine holds it durably: the leader does not count 3
	 * past its old match. */
	uint64_t snap_index = h_status(&h, 1).compaction.index;
	assert_int_equal(h_status(&h, 3).compaction.index, snap_index);
	sisy_raft_progress pr[2];
	assert_int_equal(sisy_raft_get_progress(h.nodes[1].r, pr, 2), 2);
	const sisy_raft_progress *p3 = pr[0].id == 3 ? &pr[0] : &pr[1];
	assert_true(p3->match < snap_index);
	assert_int_not_equal(p3->state, SISY_RAFT_REPLICATE);
	h_persist(&h, 3, UINT64_MAX);
	h.nodes[3].auto_persist = 1;
	h_tick(&h, 2);
	assert_int_equal(sisy_raft_get_progress(h.nodes[1].r, pr, 2), 2);
	p3 = pr[0].id == 3 ? &pr[0] : &pr[1];
	assert_int_equal(p3->state, SISY_RAFT_REPLICATE);
	assert_int_equal(p3->match, h_status(&h, 1).last_index);
	h_free(&h);
}

static void test_restart_from_snapshot(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	propose_n(&h, 1, 10, "r");
	for (uint64_t id = 1; id <= 3; id++)
		h_compact(&h, id, h.nodes[id].applied_index - 2);
	propose_n(&h, 1, 2, "z");
	for (uint64_t id = 1; id <= 3; id++) {
		h_crash(&h, id);
		h_restart(&h, id);
	}
	/* Each restarts from its compaction point and replays the rest. */
	sisy_raft_status st = h_status(&h, 2);
	assert_true(st.compaction.index > 0);
	assert_int_equal(st.first_index, st.compaction.index + 1);
	h_tick(&h, 60);
	uint64_t l = h_leader(&h);
	assert_int_not_equal(l, 0);
	assert_int_equal(h_propose(&h, l, "after", NULL), SISY_OK);
	h_settle(&h);
	for (uint64_t id = 1; id <= 3; id++) {
		assert_true(h_applied_find(&h, id, "z1") > 0);
		assert_true(h_applied_find(&h, id, "after") > 0);
	}
	h_check_applied(&h);
	h_free(&h);
}

static void test_compact_and_meta_ranges(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	propose_n(&h, 1, 5, "m");
	sisy_raft *r = h.nodes[1].r;
	sisy_raft_status st = h_status(&h, 1);
	sisy_raft_snapshot_meta meta;
	/* Beyond what was handed out for apply: refused. */
	assert_int_equal(sisy_raft_compact(r, st.applied + 1, &meta),
			 SISY_E_RANGE);
	assert_int_equal(sisy_raft_meta_at(r, st.last_index, &meta), SISY_OK);
	assert_int_equal(meta.index, st.last_index);
	assert_int_equal(meta.term, st.term);
	assert_int_equal(meta.membership.n_voters, 3);
	assert_int_equal(sisy_raft_meta_at(r, st.last_index + 1, &meta),
			 SISY_E_RANGE);
	assert_int_equal(sisy_raft_compact(r, 4, &meta), SISY_OK);
	assert_int_equal(meta.index, 4);
	assert_int_equal(sisy_raft_meta_at(r, 3, &meta), SISY_E_RANGE);
	assert_int_equal(sisy_raft_meta_at(r, 4, &meta), SISY_OK);
	/* Compacting to or below the point again changes nothing. */
	assert_int_equal(sisy_raft_compact(r, 2, &meta), SISY_OK);
	assert_int_equal(meta.index, 4);
	assert_int_equal(h_status(&h, 1).first_index, 5);
	h_free(&h);
}

static void test_snapshot_already_covered_is_acknowledged(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	propose_n(&h, 1, 3, "c");
	sisy_raft_status st = h_status(&h, 2);
	/* A stale snapshot (below 2's commit) changes nothing. */
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_SNAPSHOT;
	m.from = 1;
	m.to = 2;
	m.term = st.term;
	m.snapshot.index = 2;
	m.snapshot.term = 2;
	m.snapshot.membership = st.membership;
	assert_int_equal(sisy_raft_step(h.nodes[2].r, &m), SISY_OK);
	h_settle(&h);
	sisy_raft_status after = h_status(&h, 2);
	assert_int_equal(after.first_index, st.first_index);
	assert_int_equal(after.last_index, st.last_index);
	assert_int_equal(after.commit, st.commit);
	h_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_lagging_follower_installs_snapshot),
	    cmocka_unit_test(test_snapshot_install_waits_for_persist),
	    cmocka_unit_test(test_restart_from_snapshot),
	    cmocka_unit_test(test_compact_and_meta_ranges),
	    cmocka_unit_test(test_snapshot_already_covered_is_acknowledged),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
