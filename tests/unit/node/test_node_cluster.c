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
#include "node_int.h"

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

static bool led_by(tc *c, void *arg)
{
	return tc_leader(c) == *(int *)arg;
}

/* Hands leadership to `to`, as an operator would: the core drops an
 * attempt the target does not finish within an election timeout (a slow
 * disk), so ask again until it took. */
static void transfer_to(tc *c, int to)
{
	uint64_t end = sisy_now_ms() + TC_WAIT_MS;
	while (tc_leader(c) != to) {
		int l = tc_wait_leader(c);
		if (l != to)
			sisy_node_transfer(c->n[l].node, 1, c->n[to].id);
		tc_wait(c, led_by, &to, 1000);
		if (sisy_now_ms() > end)
			fail_msg("leadership never moved to slot %d", to);
	}
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
	transfer_to(c, to);
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

/* A membership change through the leader, retried while another change
 * is still pending (as a server would), and waited for. */
static sisy_err change(tc *c, uint8_t kind, uint64_t id)
{
	twrite w = {0};
	uint64_t end = sisy_now_ms() + TC_WAIT_MS;
	sisy_err rc;
	for (;;) {
		int l = tc_wait_leader(c);
		rc = sisy_node_change(c->n[l].node, 1, kind, id, NULL, NULL,
				      wcb, &w);
		if (rc != SISY_E_CONFLICT || sisy_now_ms() > end)
			break;
		tc_pump(c);
	}
	if (rc != SISY_OK)
		return rc;
	assert_true(tc_wait(c, write_done, &w, TC_WAIT_MS));
	return w.status;
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

typedef struct snap_wait {
	int slot;
} snap_wait;

static bool compacted(tc *c, void *arg)
{
	sisy_node_status st;
	int slot = *(int *)arg;
	return sisy_node_status_get(c->n[slot].node, 1, &st) == SISY_OK &&
	       st.snapshot_index > 0;
}

static bool all_compacted(tc *c, void *arg)
{
	(void)arg;
	for (int i = 0; i < c->nslots; i++)
		if (c->n[i].up && !compacted(c, &i))
			return false;
	return true;
}

/* The log is compacted below the engines' durable applied index (the
 * engines are flushed for it); a node added then catches up from a
 * snapshot (the client table and users inside), is promoted to voter, and
 * can lead; every node restarts from compacted state. */
static void test_snapshot_learner_compaction(void **state)
{
	tc *c = *state;
	c->opts.compact_entries = 20;
	c->opts.compact_keep = 0;
	c->opts.flush_ticks = 5;
	tc_start(c, 3);
	assert_int_equal(user_cmd(c, SISY_NODE_CMD_USER_ADD, "admin", "carol",
				  SISY_ROLE_READWRITE)
			     .status,
			 SISY_OK);
	sisy_node_op op = {.key = sisy_slice_str("eo"),
			   .value = sisy_slice_str("1"),
			   .cond = SISY_NODE_COND_ABSENT};
	sisy_node_cmd once = {.kind = SISY_NODE_CMD_KV,
			      .client_id = 61,
			      .seq = 1,
			      .lowest_unanswered = 1,
			      .user = "admin",
			      .ops = &op,
			      .nops = 1};
	twrite w;
	assert_int_equal(tc_propose(c, tc_leader(c), &once, &w), SISY_OK);
	assert_int_equal(w.res.status, SISY_OK);
	uint64_t first = w.res.index;
	put_many(c, "s", 60, 62);
	assert_true(tc_wait(c, all_compacted, NULL, TC_WAIT_MS));
	int slot = tc_join(c, true);
	sisy_node_status st;
	assert_int_equal(sisy_node_status_get(c->n[slot].node, 1, &st),
			 SISY_OK);
	assert_true(st.snapshots_installed >= 1);
	assert_true(c->snapshots_streamed >= 1);
	assert_int_equal(tc_barrier(c, slot), SISY_OK);
	assert_true(all_have(c, 60, "s"));
	assert_true(
	    sisy_node_user_lookup(c->n[slot].node, "carol", NULL, NULL));
	/* The new node leads; the client table it got in the snapshot
	 * answers the retry with the first answer. */
	transfer_to(c, slot);
	assert_int_equal(tc_propose(c, slot, &once, &w), SISY_OK);
	assert_int_equal(w.res.status, SISY_OK);
	assert_true(w.res.duplicate);
	assert_int_equal(w.res.index, first);
	/* Restarting from compacted logs and snapshot-installed engines. */
	put_many(c, "t", 10, 63);
	for (int i = 0; i < c->nslots; i++)
		tc_close(c, i);
	for (int i = 0; i < c->nslots; i++)
		tc_open(c, i);
	tc_wait_leader(c);
	for (int i = 0; i < c->nslots; i++)
		assert_int_equal(tc_barrier(c, i), SISY_OK);
	assert_true(all_have(c, 60, "s"));
	assert_true(all_have(c, 10, "t"));
}

/* A removed node is refused by the others (it may never learn of its
 * removal: the leader stops replicating to it as soon as the change is in
 * its log) and cannot disrupt the cluster. */
static void test_removed_node_refused(void **state)
{
	tc *c = *state;
	tc_start(c, 3);
	int l = tc_leader(c);
	int gone = follower_of(c, l);
	assert_int_equal(change(c, SISY_NODE_REMOVE, c->n[gone].id), SISY_OK);
	for (int i = 0; i < 3; i++)
		if (i != gone)
			assert_false(sisy_node_peer_allowed(
			    c->n[i].node, c->n[gone].id, c->n[gone].key));
	/* It times out and asks for votes: refused, no disruption. */
	uint64_t before = c->refused;
	assert_int_equal(tc_put(c, "still", "works", 71, 1, NULL), SISY_OK);
	uint64_t end = sisy_now_ms() + 2000;
	while (c->refused == before && sisy_now_ms() < end)
		tc_pump(c);
	assert_true(c->refused > before);
	assert_int_equal(tc_leader(c), l);
	assert_int_equal(tc_put(c, "and", "still", 71, 2, NULL), SISY_OK);
}

/* A node that lost its disk cannot come back as itself: its directory is
 * no node any more; forced back under its old id with a new key it is
 * refused; it joins again under a new id and catches up. */
static void test_lost_disk_rejoins_as_new_node(void **state)
{
	tc *c = *state;
	tc_start(c, 3);
	put_many(c, "d", 10, 81);
	int l = tc_leader(c);
	int lost = follower_of(c, l);
	uint64_t old_id = c->n[lost].id;
	tc_close(c, lost);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", c->n[lost].dir);
	assert_int_equal(system(cmd), 0);
	sisy_node *nd = NULL;
	sisy_node_opts o = c->opts;
	o.dir = c->n[lost].dir;
	o.send = (sisy_node_send_fn)1; /* never called: open must fail */
	assert_int_equal(sisy_node_open(&o, &nd), SISY_E_NOTFOUND);
	/* Forced: an identity for the old id with a fresh key. */
	sisy_node_init in = {.node_id = old_id, .address = c->n[lost].addr};
	memcpy(in.cluster_id, c->cluster_id, sizeof in.cluster_id);
	memset(in.node_key, 0x5a, sizeof in.node_key);
	assert_int_equal(sisy_node_init_joined(NULL, c->n[lost].dir, &in),
			 SISY_OK);
	memcpy(c->n[lost].key, in.node_key, sizeof in.node_key);
	tc_open(c, lost);
	uint64_t before = c->refused;
	uint64_t end = sisy_now_ms() + 3000;
	while (c->refused == before && sisy_now_ms() < end)
		tc_pump(c);
	assert_true(c->refused > before);
	sisy_node_status st;
	assert_int_equal(sisy_node_status_get(c->n[lost].node, 1, &st),
			 SISY_OK);
	assert_int_equal(st.applied, 0); /* it learned nothing */
	assert_int_equal(tc_leader(c), l);
	tc_close(c, lost);
	/* The operator's way: remove the old member, add a fresh one. */
	assert_int_equal(change(c, SISY_NODE_REMOVE, old_id), SISY_OK);
	int fresh = tc_join(c, true);
	assert_true(c->n[fresh].id > old_id);
	assert_int_equal(tc_barrier(c, fresh), SISY_OK);
	assert_true(all_have(c, 10, "d"));
}

static bool led_elsewhere(tc *c, void *arg)
{
	int slot = *(int *)arg;
	return !sisy_node_shutdown_step(c->n[slot].node) &&
	       other_leader(c, arg);
}

/* SIGTERM on a leader: leadership moves before it stops. */
static void test_shutdown_hands_over(void **state)
{
	tc *c = *state;
	tc_start(c, 3);
	int l = tc_leader(c);
	assert_true(sisy_node_shutdown_step(c->n[l].node));
	assert_true(tc_wait(c, led_elsewhere, &l, TC_WAIT_MS));
	tc_close(c, l);
	assert_int_equal(tc_put(c, "after", "handover", 91, 1, NULL), SISY_OK);
}

static bool read_answered(tc *c, void *arg)
{
	(void)c;
	return ((twrite *)arg)->done;
}

static void rcb(void *ctx, sisy_err status)
{
	twrite *w = ctx;
	w->done = true;
	w->status = status;
}

/* A follower cut off from the others never serves a linearizable read
 * (it fails or times out); after healing it serves the newest data. */
static void test_partitioned_follower_read(void **state)
{
	tc *c = *state;
	tc_start(c, 3);
	int l = tc_leader(c);
	int f = follower_of(c, l);
	assert_int_equal(tc_put(c, "p", "old", 95, 1, NULL), SISY_OK);
	assert_int_equal(tc_barrier(c, f), SISY_OK);
	cut_off(c, f, true);
	assert_int_equal(tc_put(c, "p", "new", 95, 2, NULL), SISY_OK);
	twrite w = {0};
	sisy_err rc = sisy_node_read_index(c->n[f].node, 1, rcb, &w);
	if (rc == SISY_OK) {
		assert_true(tc_wait(c, read_answered, &w, TC_WAIT_MS));
		assert_int_not_equal(w.status, SISY_OK);
	} else {
		assert_int_equal(rc, SISY_E_NOLEADER);
	}
	cut_off(c, f, false);
	char val[16];
	assert_int_equal(tc_barrier(c, f), SISY_OK);
	assert_true(tc_get(c, f, "p", val, sizeof val, NULL));
	assert_string_equal(val, "new");
}

/* With the apply queues bounded to nothing (every job in flight is "too
 * much"), leaders refuse proposals with BUSY while applying lags and
 * followers drop APPENDs until their apply catches up: writes still all
 * complete (retried, as a server's client would), nothing is lost, and
 * no election happens: heartbeats never wait for the apply thread. */
static void test_backpressure_keeps_leader(void **state)
{
	tc *c = *state;
	c->opts.max_apply_lag_bytes = 1;
	c->opts.max_apply_queue_bytes = 1;
	tc_start(c, 3);
	int l = tc_leader(c);
	sisy_node_status st;
	assert_int_equal(sisy_node_status_get(c->n[l].node, 1, &st), SISY_OK);
	uint64_t term = st.term;
	for (int k = 0; k < 100; k++) {
		char key[16];
		snprintf(key, sizeof key, "bp%d", k);
		sisy_node_op op = {.key = sisy_slice_str(key),
				   .value = sisy_slice_str("val")};
		sisy_node_cmd cmd = {.kind = SISY_NODE_CMD_KV,
				     .client_id = 99,
				     .seq = 1 + (uint64_t)k,
				     .lowest_unanswered = 1 + (uint64_t)k,
				     .user = "admin",
				     .ops = &op,
				     .nops = 1};
		twrite w;
		sisy_err rc;
		uint64_t end = sisy_now_ms() + TC_WAIT_MS;
		while ((rc = tc_propose(c, l, &cmd, &w)) == SISY_E_BUSY) {
			assert_true(sisy_now_ms() < end);
			tc_pump(c);
		}
		assert_int_equal(rc, SISY_OK);
		assert_int_equal(w.status, SISY_OK);
		if (w.res.status != SISY_OK)
			fail_msg("%s: %s dup %d index %" PRIu64, key,
				 sisy_errname(w.res.status), w.res.duplicate,
				 w.res.index);
		/* The next proposal comes while this one's apply may still be
		 * queued on the followers. */
		if (k % 10 == 0)
			for (int i = 0; i < 3; i++)
				tc_pump(c);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(tc_barrier(c, i), SISY_OK);
	char val[16];
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 100; k++) {
			char key[16];
			snprintf(key, sizeof key, "bp%d", k);
			if (!tc_get(c, i, key, val, sizeof val, NULL)) {
				tc_dump(c);
				fail_msg("slot %d lacks %s (leader %d)", i, key,
					 l);
			}
		}
	assert_int_equal(tc_leader(c), l);
	assert_int_equal(sisy_node_status_get(c->n[l].node, 1, &st), SISY_OK);
	assert_int_equal(st.term, term);
}

/* The apply thread of every node sleeps with nothing queued. */
static bool all_apply_idle(tc *c, void *arg)
{
	(void)arg;
	for (int i = 0; i < c->nslots; i++) {
		sisy_node *n = c->n[i].node;
		if (!c->n[i].up)
			continue;
		pthread_mutex_lock(&n->amu);
		bool idle = n->asleep && n->aq_head == NULL;
		pthread_mutex_unlock(&n->amu);
		if (!idle)
			return false;
	}
	return true;
}

static void apply_jobs(tc *c, int slot, uint64_t *loop, uint64_t *thread)
{
	sisy_node_status st;
	assert_int_equal(sisy_node_status_get(c->n[slot].node, 1, &st),
			 SISY_OK);
	*loop = st.apply_jobs_on_loop;
	*thread = st.apply_jobs_on_thread;
}

/* apply.c: with the apply thread idle, committed entries are applied on
 * the loop; a job the engine could not take without waiting (here: more
 * than a memtable) goes to the thread. Either way every replica holds
 * every write. The memtables are made of four runs, so jobs fill and
 * flush memtables of several runs. */
static void test_apply_on_loop_or_thread(void **state)
{
	tc *c = *state;
	c->opts.memtable_bytes = 256 << 10;
	c->opts.memtable_run_bytes = 64 << 10;
	tc_start(c, 3);
	int l = tc_leader(c);
	uint64_t loop0, thread0, loop1, thread1;
	apply_jobs(c, l, &loop0, &thread0);
	for (int k = 0; k < 20; k++) {
		char key[16];
		snprintf(key, sizeof key, "small%d", k);
		assert_true(tc_wait(c, all_apply_idle, NULL, TC_WAIT_MS));
		assert_int_equal(tc_put(c, key, "v", 21, 1 + (uint64_t)k, NULL),
				 SISY_OK);
	}
	apply_jobs(c, l, &loop1, &thread1);
	assert_true(loop1 - loop0 >= 20);
	assert_int_equal(thread1, thread0);

	size_t big_len = 200 << 10; /* 2 x 200 KiB > the memtable */
	char *big = malloc(big_len + 1);
	assert_non_null(big);
	memset(big, 'b', big_len);
	big[big_len] = '\0';
	assert_true(tc_wait(c, all_apply_idle, NULL, TC_WAIT_MS));
	assert_int_equal(tc_put(c, "big", big, 21, 21, NULL), SISY_OK);
	apply_jobs(c, l, &loop0, &thread0);
	assert_true(thread0 > thread1);

	char *val = malloc(big_len + 1);
	assert_non_null(val);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tc_barrier(c, i), SISY_OK);
		assert_true(tc_get(c, i, "big", val, big_len + 1, NULL));
		assert_memory_equal(val, big, big_len + 1);
		for (int k = 0; k < 20; k++) {
			char key[16];
			snprintf(key, sizeof key, "small%d", k);
			assert_true(tc_get(c, i, key, val, 16, NULL));
			assert_string_equal(val, "v");
		}
	}
	free(val);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_apply_on_loop_or_thread, setup,
					    teardown),
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
	    cmocka_unit_test_setup_teardown(test_snapshot_learner_compaction,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_removed_node_refused, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_lost_disk_rejoins_as_new_node,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_shutdown_hands_over, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_partitioned_follower_read,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_backpressure_keeps_leader,
					    setup, teardown),
	};
	if (getenv("NODE_TEST"))
		cmocka_set_test_filter(getenv("NODE_TEST"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
