/* test_node_cluster.c — sisyd/node as a replicated cluster: three (or
 * more) nodes in this process (harness.h), each with its own directory,
 * Raft log writer and apply thread.
 */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clock.h"
#include "harness.h"

static int setup(void **state)
{
	tc *c = calloc(1, sizeof *c);
	tc_init(c);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	tc *c = *state;
	tc_free(c);
	free(c);
	return 0;
}

static int follower_of(tc *c, int leader)
{
	for (int i = 0; i < c->nslots; i++)
		if (i != leader && c->n[i].up)
			return i;
	return -1;
}

/* Write on the leader; a linearizable read on the leader and on each
 * follower sees it, with the same version (the entry's index). */
static void test_write_read_everywhere(void **state)
{
	tc *c = *state;
	sisy_node_result res;
	char val[64];
	uint64_t ver;
	tc_start(c, 3);
	assert_int_equal(tc_put(c, "alpha", "one", 11, 1, &res), SISY_OK);
	assert_true(res.index > 2);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tc_barrier(c, i), SISY_OK);
		assert_true(tc_get(c, i, "alpha", val, sizeof val, &ver));
		assert_string_equal(val, "one");
		assert_int_equal(ver, res.index);
	}
	/* A write through the leader is visible on a follower right after a
	 * barrier there, every time. */
	int l = tc_leader(c);
	int f = follower_of(c, l);
	for (int k = 0; k < 20; k++) {
		char key[16], v[16];
		snprintf(key, sizeof key, "k%d", k);
		snprintf(v, sizeof v, "v%d", k);
		assert_int_equal(tc_put(c, key, v, 11, 2 + (uint64_t)k, NULL),
				 SISY_OK);
		assert_int_equal(tc_barrier(c, f), SISY_OK);
		assert_true(tc_get(c, f, key, val, sizeof val, NULL));
		assert_string_equal(val, v);
	}
}

/* A follower refuses a proposal and names the leader and its address. */
static void test_not_leader_hint(void **state)
{
	tc *c = *state;
	char addr[64];
	tc_start(c, 3);
	int l = tc_leader(c);
	int f = follower_of(c, l);
	sisy_node_op op = {.key = sisy_slice_str("k"),
			   .value = sisy_slice_str("v")};
	sisy_node_cmd cmd = {.kind = SISY_NODE_CMD_KV, .ops = &op, .nops = 1};
	twrite w;
	assert_int_equal(tc_propose(c, f, &cmd, &w), SISY_E_NOTLEADER);
	assert_int_equal(sisy_node_leader(c->n[f].node, 1, addr, sizeof addr),
			 c->n[l].id);
	assert_string_equal(addr, c->n[l].addr);
}

static bool all_have(tc *c, int nkeys, const char *prefix)
{
	char key[32], want[32], val[64];
	for (int i = 0; i < c->nslots; i++) {
		if (!c->n[i].up)
			continue;
		for (int k = 0; k < nkeys; k++) {
			snprintf(key, sizeof key, "%s%d", prefix, k);
			snprintf(want, sizeof want, "val-%d", k);
			if (!tc_get(c, i, key, val, sizeof val, NULL) ||
			    strcmp(val, want) != 0)
				return false;
		}
	}
	return true;
}

static void put_many(tc *c, const char *prefix, int n, uint64_t client)
{
	for (int k = 0; k < n; k++) {
		char key[32], v[32];
		snprintf(key, sizeof key, "%s%d", prefix, k);
		snprintf(v, sizeof v, "val-%d", k);
		assert_int_equal(
		    tc_put(c, key, v, client, 1 + (uint64_t)k, NULL), SISY_OK);
	}
}

/* Every acknowledged write survives closing and reopening every node (and
 * a follower restarted alone while writes go on catches up). */
static void test_restart_keeps_acknowledged(void **state)
{
	tc *c = *state;
	tc_start(c, 3);
	put_many(c, "a", 30, 21);
	int f = follower_of(c, tc_leader(c));
	tc_close(c, f);
	put_many(c, "b", 30, 22);
	tc_open(c, f);
	assert_int_equal(tc_barrier(c, f), SISY_OK);
	assert_true(all_have(c, 30, "a"));
	assert_true(all_have(c, 30, "b"));
	for (int i = 0; i < 3; i++)
		tc_close(c, i);
	for (int i = 0; i < 3; i++)
		tc_open(c, i);
	tc_wait_leader(c);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tc_barrier(c, i), SISY_OK);
	assert_true(all_have(c, 30, "a"));
	assert_true(all_have(c, 30, "b"));
	/* And the cluster still takes writes with the same client ids. */
	assert_int_equal(tc_put(c, "after", "x", 21, 31, NULL), SISY_OK);
}

static void cut_off(tc *c, int slot, bool cut)
{
	for (int i = 0; i < c->nslots; i++) {
		c->cut[slot][i] = cut;
		c->cut[i][slot] = cut;
	}
}

static bool other_leader(tc *c, void *arg)
{
	int old = *(int *)arg;
	int l = tc_leader(c);
	return l >= 0 && l != old;
}

static bool write_done(tc *c, void *arg)
{
	(void)c;
	return ((twrite *)arg)->done;
}

static void wcb(void *ctx, sisy_err status, const sisy_node_result *res)
{
	twrite *w = ctx;
	w->done = true;
	w->status = status;
	if (res)
		w->res = *res;
}

/* A leader cut off from the majority answers its pending write "outcome
 * unknown" when it steps down, never "failed"; the client's retry (same
 * id and seq) at the new leader applies the write exactly once. */
static void test_leader_loss_outcome_unknown(void **state)
{
	tc *c = *state;
	tc_start(c, 3);
	int l = tc_leader(c);
	cut_off(c, l, true);
	sisy_node_op op = {.key = sisy_slice_str("once"),
			   .value = sisy_slice_str("v"),
			   .cond = SISY_NODE_COND_ABSENT};
	sisy_node_cmd cmd = {.kind = SISY_NODE_CMD_KV,
			     .client_id = 31,
			     .seq = 1,
			     .lowest_unanswered = 1,
			     .user = "admin",
			     .ops = &op,
			     .nops = 1};
	twrite w = {0};
	assert_int_equal(sisy_node_propose(c->n[l].node, 1, &cmd, wcb, &w),
			 SISY_OK);
	assert_true(tc_wait(c, write_done, &w, TC_WAIT_MS));
	assert_int_equal(w.status, SISY_E_UNKNOWN_OUTCOME);
	assert_true(tc_wait(c, other_leader, &l, TC_WAIT_MS));
	cut_off(c, l, false);
	/* The retry: applied once, answered OK. */
	sisy_node_result res;
	assert_int_equal(tc_put(c, "x", "y", 32, 1, NULL), SISY_OK);
	int nl = tc_leader(c);
	assert_int_equal(tc_propose(c, nl, &cmd, &w), SISY_OK);
	assert_int_equal(w.status, SISY_OK);
	assert_int_equal(w.res.status, SISY_OK);
	res = w.res;
	/* Again: the first answer, not a CONFLICT of IF ABSENT. */
	assert_int_equal(tc_propose(c, nl, &cmd, &w), SISY_OK);
	assert_int_equal(w.status, SISY_OK);
	assert_int_equal(w.res.status, SISY_OK);
	assert_true(w.res.duplicate);
	assert_int_equal(w.res.index, res.index);
	/* The old leader rejoined and agrees. */
	char val[16];
	uint64_t ver;
	assert_int_equal(tc_barrier(c, l), SISY_OK);
	assert_true(tc_get(c, l, "once", val, sizeof val, &ver));
	assert_int_equal(ver, res.index);
}

/* The client table is replicated state: after a leadership transfer the
 * new leader answers a retried write with the first answer; a sequence the
 * client reported answered is refused as stale. */
static void test_exactly_once_across_leaders(void **state)
{
	tc *c = *state;
	tc_start(c, 3);
	sisy_node_op op = {.key = sisy_slice_str("ctr"),
			   .value = sisy_slice_str("1"),
			   .cond = SISY_NODE_COND_ABSENT};
	sisy_node_cmd cmd = {.kind = SISY_NODE_CMD_KV,
			     .client_id = 41,
			     .seq = 5,
			     .lowest_unanswered = 5,
			     .user = "admin",
			     .ops = &op,
			     .nops = 1};
	twrite w;
	int l = tc_leader(c);
	assert_int_equal(tc_propose(c, l, &cmd, &w), SISY_OK);
	assert_int_equal(w.res.status, SISY_OK);
	assert_false(w.res.duplicate);
	uint64_t first = w.res.index;
	int to = follower_of(c, l);
	assert_int_equal(sisy_node_transfer(c->n[l].node, 1, c->n[to].id),
			 SISY_OK);
	assert_true(tc_wait(c, other_leader, &l, TC_WAIT_MS));
	int nl = tc_leader(c);
	assert_int_equal(tc_propose(c, nl, &cmd, &w), SISY_OK);
	assert_int_equal(w.status, SISY_OK);
	assert_int_equal(w.res.status, SISY_OK);
	assert_true(w.res.duplicate);
	assert_int_equal(w.res.index, first);
	/* seq 6 reports 6 as the lowest unanswered: 5 is forgotten. */
	op.cond = SISY_NODE_COND_NONE;
	cmd.seq = 6;
	cmd.lowest_unanswered = 6;
	assert_int_equal(tc_propose(c, nl, &cmd, &w), SISY_OK);
	assert_int_equal(w.res.status, SISY_OK);
	cmd.seq = 5;
	assert_int_equal(tc_propose(c, nl, &cmd, &w), SISY_OK);
	assert_int_equal(w.res.status, SISY_E_STALE);
}

static sisy_node_result kv(tc *c, sisy_node_op *ops, size_t n)
{
	static uint64_t seq = 100;
	sisy_node_cmd cmd = {.kind = SISY_NODE_CMD_KV,
			     .client_id = 51,
			     .seq = seq,
			     .lowest_unanswered = seq,
			     .user = "admin",
			     .ops = ops,
			     .nops = n};
	seq++;
	twrite w;
	assert_int_equal(tc_propose(c, tc_leader(c), &cmd, &w), SISY_OK);
	assert_int_equal(w.status, SISY_OK);
	return w.res;
}

/* Conditions are decided where entries apply, against versions that are
 * Raft indexes; a batch is all or nothing. */
static void test_cas_at_apply(void **state)
{
	tc *c = *state;
	tc_start(c, 3);
	sisy_node_op put = {.key = sisy_slice_str("k"),
			    .value = sisy_slice_str("v1")};
	sisy_node_result r1 = kv(c, &put, 1);
	assert_int_equal(r1.status, SISY_OK);
	put.cond = SISY_NODE_COND_VERSION;
	put.cond_version = r1.index;
	put.value = sisy_slice_str("v2");
	sisy_node_result r2 = kv(c, &put, 1);
	assert_int_equal(r2.status, SISY_OK);
	assert_true(r2.index > r1.index);
	sisy_node_result r3 = kv(c, &put, 1); /* stale version */
	assert_int_equal(r3.status, SISY_E_CONFLICT);
	assert_int_equal(r3.current_version, r2.index);
	put.cond = SISY_NODE_COND_ABSENT;
	assert_int_equal(kv(c, &put, 1).status, SISY_E_CONFLICT);
	/* A batch whose second condition fails changes nothing. */
	sisy_node_op b[2] = {
	    {.key = sisy_slice_str("b1"), .value = sisy_slice_str("x")},
	    {.key = sisy_slice_str("k"),
	     .value = sisy_slice_str("v3"),
	     .cond = SISY_NODE_COND_VERSION,
	     .cond_version = r1.index},
	};
	sisy_node_result rb = kv(c, b, 2);
	assert_int_equal(rb.status, SISY_E_CONFLICT);
	assert_int_equal(rb.failed_op, 1);
	char val[16];
	uint64_t ver;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tc_barrier(c, i), SISY_OK);
		assert_false(tc_get(c, i, "b1", val, sizeof val, NULL));
		assert_true(tc_get(c, i, "k", val, sizeof val, &ver));
		assert_string_equal(val, "v2");
		assert_int_equal(ver, r2.index);
	}
	/* DEL reports whether the key existed. */
	sisy_node_op del = {.del = true, .key = sisy_slice_str("k")};
	assert_true(kv(c, &del, 1).existed);
	assert_false(kv(c, &del, 1).existed);
}

static sisy_node_result user_cmd(tc *c, uint8_t kind, const char *as,
				 const char *name, sisy_role role)
{
	sisy_node_cmd cmd = {
	    .kind = kind, .user = as, .name = name, .role = role};
	tc_verifier(&cmd.verifier, 3);
	twrite w;
	assert_int_equal(tc_propose(c, tc_leader(c), &cmd, &w), SISY_OK);
	assert_int_equal(w.status, SISY_OK);
	return w.res;
}

/* Users are replicated: added on the leader, known on every node; role
 * changes and deletions raise the end-sessions event on every node; roles
 * are checked where commands apply. */
static void test_users_replicated(void **state)
{
	tc *c = *state;
	sisy_role role;
	tc_start(c, 3);
	assert_int_equal(user_cmd(c, SISY_NODE_CMD_USER_ADD, "admin", "bob",
				  SISY_ROLE_READWRITE)
			     .status,
			 SISY_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tc_barrier(c, i), SISY_OK);
		assert_true(
		    sisy_node_user_lookup(c->n[i].node, "bob", &role, NULL));
		assert_int_equal(role, SISY_ROLE_READWRITE);
	}
	assert_int_equal(
	    user_cmd(c, SISY_NODE_CMD_USER_ADD, "bob", "eve", SISY_ROLE_ADMIN)
		.status,
	    SISY_E_PERM);
	assert_int_equal(user_cmd(c, SISY_NODE_CMD_USER_ROLE, "admin", "bob",
				  SISY_ROLE_READONLY)
			     .status,
			 SISY_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tc_barrier(c, i), SISY_OK);
		assert_int_equal(c->n[i].user_events, 1);
		assert_string_equal(c->n[i].last_user_event, "bob");
	}
	/* bob is read-only now: his write is refused where it applies. */
	sisy_node_op op = {.key = sisy_slice_str("k"),
			   .value = sisy_slice_str("v")};
	sisy_node_cmd w1 = {
	    .kind = SISY_NODE_CMD_KV, .user = "bob", .ops = &op, .nops = 1};
	twrite w;
	assert_int_equal(tc_propose(c, tc_leader(c), &w1, &w), SISY_OK);
	assert_int_equal(w.res.status, SISY_E_PERM);
	/* The last admin cannot go. */
	assert_int_equal(
	    user_cmd(c, SISY_NODE_CMD_USER_DEL, "admin", "admin", 0).status,
	    SISY_E_PERM);
	assert_int_equal(
	    user_cmd(c, SISY_NODE_CMD_USER_DEL, "admin", "bob", 0).status,
	    SISY_OK);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tc_barrier(c, i), SISY_OK);
		assert_false(
		    sisy_node_user_lookup(c->n[i].node, "bob", NULL, NULL));
		assert_int_equal(c->n[i].user_events, 2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_write_read_everywhere, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_not_leader_hint, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_restart_keeps_acknowledged,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leader_loss_outcome_unknown,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exactly_once_across_leaders,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cas_at_apply, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_users_replicated, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
