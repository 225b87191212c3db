/* Tests sisyd/raft/replication.c and progress.c: replication, batching
 * bounded by bytes and count, pipelining within the in-flight window,
 * fast conflict backtracking with hints, recovery from lost APPENDs, and
 * at most one PROBE per heartbeat interval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

/* What the filter saw: APPENDs with entries from `watch_from` to
 * `watch_to`. */
static uint64_t watch_from, watch_to;
static size_t n_appends, max_ents, max_bytes, n_rejects;
static uint64_t drop_every; /* drop every n-th message if nonzero */
static uint64_t seen;

static int watch(struct harness *h, const sisy_raft_msg *m)
{
	(void)h;
	seen++;
	if (drop_every && seen % drop_every == 0)
		return 0;
	if (m->type == SISY_RAFT_MSG_APPEND && m->from == watch_from &&
	    m->to == watch_to && m->n_entries > 0) {
		n_appends++;
		size_t b = 0;
		for (size_t k = 0; k < m->n_entries; k++)
			b += m->entries[k].len;
		if (m->n_entries > max_ents)
			max_ents = m->n_entries;
		if (b > max_bytes)
			max_bytes = b;
	}
	if (m->type == SISY_RAFT_MSG_APPEND_RESP && m->reject &&
	    m->from == watch_to)
		n_rejects++;
	return 1;
}

static void watch_reset(uint64_t from, uint64_t to)
{
	watch_from = from;
	watch_to = to;
	n_appends = max_ents = max_bytes = n_rejects = 0;
	drop_every = seen = 0;
}

static void propose_n(struct harness *h, uint64_t id, int n, const char *pfx)
{
	char buf[32];
	for (int i = 0; i < n; i++) {
		snprintf(buf, sizeof buf, "%s%06d", pfx, i);
		assert_int_equal(h_propose(h, id, buf, NULL), SISY_OK);
	}
}

static void test_replicates_and_applies_everywhere(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	uint64_t idx;
	for (int i = 0; i < 10; i++) {
		char buf[16];
		snprintf(buf, sizeof buf, "v%d", i);
		assert_int_equal(h_propose(&h, 1, buf, &idx), SISY_OK);
		h_settle(&h);
	}
	for (uint64_t id = 1; id <= 3; id++) {
		assert_int_equal(h.nodes[id].applied_index, idx);
		assert_int_equal(h_applied_find(&h, id, "v9"), idx);
	}
	h_check_applied(&h);
	h_free(&h);
}

static void test_batches_many_proposals_into_one_append(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	watch_reset(1, 2);
	h.filter = watch;
	propose_n(&h, 1, 100, "b");
	h_settle(&h);
	assert_int_equal(n_appends, 1); /* 100 proposals, one message */
	assert_int_equal(max_ents, 100);
	assert_int_equal(h.nodes[2].applied_index, h_status(&h, 1).commit);
	h_free(&h);
}

static void max16(sisy_raft_config *c)
{
	c->max_msg_entries = 16;
}

static void max_100_bytes(sisy_raft_config *c)
{
	c->max_msg_bytes = 100;
}

static void test_batch_bounded_by_count(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, max16);
	h_elect(&h, 1);
	watch_reset(1, 2);
	h.filter = watch;
	propose_n(&h, 1, 100, "c");
	h_settle(&h);
	assert_int_equal(max_ents, 16);
	assert_int_equal(n_appends, 7); /* ceil(100 / 16) */
	assert_int_equal(h.nodes[2].applied_index, h_status(&h, 1).commit);
	h_free(&h);
}

static void test_batch_bounded_by_bytes(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, max_100_bytes);
	h_elect(&h, 1);
	watch_reset(1, 2);
	h.filter = watch;
	propose_n(&h, 1, 50, "d"); /* 7 bytes each */
	h_settle(&h);
	assert_true(max_bytes <= 100);
	assert_int_equal(max_ents, 14); /* 14 * 7 = 98 */
	assert_int_equal(n_appends, 4); /* 14 + 14 + 14 + 8 */
	h_free(&h);
}

static void window4(sisy_raft_config *c)
{
	c->max_msg_entries = 1;
	c->max_inflight_msgs = 4;
}

static void test_pipelines_within_inflight_window(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, window4);
	h_elect(&h, 1);
	h_isolate(&h, 3);
	h.nodes[2].auto_persist = 0; /* 2 acknowledges only when told */
	watch_reset(1, 2);
	h.filter = watch;
	uint64_t base = h_status(&h, 1).last_index;
	propose_n(&h, 1, 10, "p");
	h_settle(&h);
	/* Four APPENDs out at once, none acknowledged, no more sent. */
	assert_int_equal(n_appends, 4);
	sisy_raft_progress pr[4];
	assert_int_equal(sisy_raft_get_progress(h.nodes[1].r, pr, 4), 2);
	const sisy_raft_progress *p2 = pr[0].id == 2 ? &pr[0] : &pr[1];
	assert_int_equal(p2->state, SISY_RAFT_REPLICATE);
	assert_int_equal(p2->inflight, 4);
	assert_int_equal(p2->match, base);
	assert_int_equal(p2->next, base + 5);
	assert_int_equal(h_status(&h, 1).commit, base);
	/* Each persist releases acks; the window slides until done. */
	for (int i = 0; i < 10 && h_status(&h, 1).commit < base + 10; i++) {
		h_persist(&h, 2, UINT64_MAX);
		h_settle(&h);
	}
	assert_int_equal(h_status(&h, 1).commit, base + 10);
	assert_int_equal(n_appends, 10);
	h_free(&h);
}

static void test_conflict_hint_skips_a_whole_term(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	/* 1, cut off, piles up 50 entries of term 2 nobody else has. */
	h_isolate(&h, 1);
	propose_n(&h, 1, 50, "old");
	h_settle(&h);
	h_tick(&h, 25); /* steps down (check-quorum); 2 and 3 elect */
	uint64_t l = h_leader(&h);
	assert_true(l == 2 || l == 3);
	propose_n(&h, l, 20, "new");
	h_settle(&h);
	/* A fresh leader whose log is long starts probing at its end, far
	 * past where 1 diverged. */
	l = l == 2 ? 3 : 2;
	h_elect(&h, l);
	watch_reset(l, 1);
	h.filter = watch;
	h_heal(&h);
	h_tick(&h, 3);
	/* One rejection is enough to find the match point (the probe
	 * walked back 20 entries in one step). */
	assert_true(n_rejects >= 1 && n_rejects <= 2);
	assert_int_equal(h_status(&h, 1).last_index,
			 h_status(&h, l).last_index);
	assert_int_equal(h_applied_find(&h, 1, "old000001"), 0);
	assert_true(h_applied_find(&h, 1, "new000019") > 0);
	h_check_applied(&h);
	h_free(&h);
}

static void test_short_follower_log_one_round_trip(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	h_isolate(&h, 3);
	for (int i = 0; i < 5; i++) {
		propose_n(&h, 1, 20, "s");
		h_settle(&h);
	}
	watch_reset(1, 3);
	h.filter = watch;
	h_heal(&h);
	h_tick(&h, 2);
	/* The leader probed at its last index; 3's "my log ends at N"
	 * brought next straight back. */
	assert_true(n_rejects <= 1);
	assert_int_equal(h.nodes[3].applied_index, h_status(&h, 1).commit);
	h_free(&h);
}

static void test_recovers_from_lost_messages(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	watch_reset(0, 0);
	drop_every = 3;
	h.filter = watch;
	uint64_t idx = 0;
	for (int i = 0; i < 30; i++) {
		char buf[16];
		snprintf(buf, sizeof buf, "l%d", i);
		uint64_t l = h_leader(&h);
		if (l && h_propose(&h, l, buf, &idx) == SISY_OK)
			h_settle(&h);
		h_tick(&h, 1);
	}
	drop_every = 0;
	h_tick(&h, 40);
	uint64_t l = h_leader(&h);
	assert_int_not_equal(l, 0);
	uint64_t c = h_status(&h, l).commit;
	for (uint64_t id = 1; id <= 3; id++)
		assert_int_equal(h.nodes[id].applied_index, c);
	h_check_applied(&h);
	h_free(&h);
}

static void test_restarted_follower_catches_up(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	propose_n(&h, 1, 10, "r");
	h_settle(&h);
	h_crash(&h, 2);
	propose_n(&h, 1, 10, "q");
	h_settle(&h);
	h_restart(&h, 2);
	h_tick(&h, 3);
	assert_int_equal(h.nodes[2].applied_index, h_status(&h, 1).commit);
	assert_true(h_applied_find(&h, 2, "q000009") > 0);
	h_check_applied(&h);
	h_free(&h);
}

static const sisy_raft_progress *find_pr(const sisy_raft_progress *pr, size_t n,
					 uint64_t id)
{
	for (size_t k = 0; k < n; k++)
		if (pr[k].id == id)
			return &pr[k];
	fail();
	return NULL;
}

static void test_unreachable_falls_back_to_probe(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	sisy_raft_progress pr[2];
	sisy_raft_get_progress(h.nodes[1].r, pr, 2);
	assert_int_equal(find_pr(pr, 2, 2)->state, SISY_RAFT_REPLICATE);
	sisy_raft_report_unreachable(h.nodes[1].r, 2);
	sisy_raft_get_progress(h.nodes[1].r, pr, 2);
	const sisy_raft_progress *p2 = find_pr(pr, 2, 2);
	assert_int_equal(p2->state, SISY_RAFT_PROBE);
	assert_int_equal(p2->next, p2->match + 1);
	/* The next exchange finds the match again and pipelines on. */
	assert_int_equal(h_propose(&h, 1, "u", NULL), SISY_OK);
	h_tick(&h, 1);
	sisy_raft_get_progress(h.nodes[1].r, pr, 2);
	assert_int_equal(find_pr(pr, 2, 2)->state, SISY_RAFT_REPLICATE);
	assert_true(h_applied_find(&h, 2, "u") > 0);
	h_free(&h);
}

/* A link that stalled (not dropped) delivers its backlog at once: the
 * answers to hundreds of heartbeats reach the leader together. In PROBE
 * each of them used to send the same APPEND again (up to max_msg_bytes
 * each: megabytes queued for a follower that needed one). A PROBE goes
 * out again at most once per heartbeat interval. */
static void heartbeat_resp_burst(struct harness *h, uint64_t from, int n)
{
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_HEARTBEAT_RESP;
	m.from = from;
	m.to = 1;
	m.term = h_status(h, 1).term;
	for (int k = 0; k < n; k++)
		assert_int_equal(sisy_raft_step(h->nodes[1].r, &m), SISY_OK);
	h_settle(h);
}

static void test_probe_resent_once_per_heartbeat(void **state)
{
	(void)state;
	struct harness h;
	h_init(&h, 3, NULL);
	h_elect(&h, 1);
	/* The leader hears nothing from 3 (its answers are lost), and
	 * probes it: one APPEND out, then paused. */
	h.cut[3][1] = 1;
	sisy_raft_report_unreachable(h.nodes[1].r, 3);
	watch_reset(1, 3);
	h.filter = watch;
	assert_int_equal(h_propose(&h, 1, "p", NULL), SISY_OK);
	h_settle(&h);
	assert_int_equal(n_appends, 1);
	/* A burst of stale heartbeat answers before the next heartbeat:
	 * nothing is sent again. */
	n_appends = 0;
	heartbeat_resp_burst(&h, 3, 50);
	assert_int_equal(n_appends, 0);
	/* After a heartbeat, the probe may go again: once for the burst. */
	h_tick(&h, 1);
	n_appends = 0;
	heartbeat_resp_burst(&h, 3, 50);
	assert_int_equal(n_appends, 1);
	/* Healed, 3 catches up through heartbeat-driven probes alone. */
	h.cut[3][1] = 0;
	h_tick(&h, 3);
	assert_true(h_applied_find(&h, 3, "p") > 0);
	h_check_applied(&h);
	h_free(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replicates_and_applies_everywhere),
	    cmocka_unit_test(test_batches_many_proposals_into_one_append),
	    cmocka_unit_test(test_batch_bounded_by_count),
	    cmocka_unit_test(test_batch_bounded_by_bytes),
	    cmocka_unit_test(test_pipelines_within_inflight_window),
	    cmocka_unit_test(test_conflict_hint_skips_a_whole_term),
	    cmocka_unit_test(test_short_follower_log_one_round_trip),
	    cmocka_unit_test(test_recovers_from_lost_messages),
	    cmocka_unit_test(test_restarted_follower_catches_up),
	    cmocka_unit_test(test_unreachable_falls_back_to_probe),
	    cmocka_unit_test(test_probe_resent_once_per_heartbeat),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
