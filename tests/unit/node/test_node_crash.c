/* test_node_crash.c — sisyd/node under machine crashes (libcommon's fault
 * layer: everything not synced is lost, torn writes keep a random prefix):
 * no acknowledged write is ever lost, whatever the crash point, because a
 * write is acknowledged only once it is applied from a durable log, and
 * the engine (WAL off) recovers from the Raft log.
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

#define MAX_KEYS 4096

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

typedef struct acked {
	int n;
	uint64_t version[MAX_KEYS];
} acked;

static void wcb(void *ctx, sisy_err status, const sisy_node_result *res)
{
	twrite *w = ctx;
	w->done = true;
	w->status = status;
	if (res)
		w->res = *res;
}

/* Writes key k on slot (the leader); true if acknowledged OK. Stops
 * waiting when the node fails. */
static bool write_key(tc *c, int slot, int k, uint64_t *version)
{
	char key[32], val[32];
	snprintf(key, sizeof key, "key-%d", k);
	snprintf(val, sizeof val, "value-%d", k);
	sisy_node_op op = {.key = sisy_slice_str(key),
			   .value = sisy_slice_str(val)};
	sisy_node_cmd cmd = {.kind = SISY_NODE_CMD_KV,
			     .client_id = 777,
			     .seq = 1 + (uint64_t)k,
			     .lowest_unanswered = 1 + (uint64_t)k,
			     .user = "admin",
			     .ops = &op,
			     .nops = 1};
	twrite w = {0};
	if (sisy_node_propose(c->n[slot].node, 1, &cmd, wcb, &w) != SISY_OK)
		return false;
	uint64_t end = sisy_now_ms() + TC_WAIT_MS;
	while (!w.done && !c->n[slot].failed && sisy_now_ms() < end)
		tc_pump(c);
	if (!w.done || w.status != SISY_OK || w.res.status != SISY_OK)
		return false;
	*version = w.res.index;
	return true;
}

static void check_all(tc *c, int slot, const acked *a)
{
	char key[32], want[32], val[64];
	uint64_t ver;
	assert_int_equal(tc_barrier(c, slot), SISY_OK);
	for (int k = 0; k < a->n; k++) {
		if (a->version[k] == 0)
			continue; /* not acknowledged: may or may not be */
		snprintf(key, sizeof key, "key-%d", k);
		snprintf(want, sizeof want, "value-%d", k);
		if (!tc_get(c, slot, key, val, sizeof val, &ver))
			fail_msg("acknowledged %s lost on slot %d", key, slot);
		assert_string_equal(val, want);
		assert_int_equal(ver, a->version[k]);
	}
}

/* Crash, lose what was not synced, reboot the "machine", reopen. */
static void crash_and_reopen(tc *c, int slot)
{
	tnode *t = &c->n[slot];
	if (!sisy_fs_fault_crashed(t->ff))
		sisy_fs_fault_crash(t->ff);
	tc_close(c, slot);
	sisy_fs_fault_restart(t->ff);
	tc_open(c, slot);
}

/* A one-node cluster on the fault layer, crashed at many points while it
 * takes writes: after each reboot every acknowledged write is there, with
 * its version. */
static void test_single_node_crash_points(void **state)
{
	tc *c = *state;
	static acked a;
	memset(&a, 0, sizeof a);
	c->opts.flush_ticks = 3; /* engine flushes race with the crashes */
	c->opts.compact_entries = 30;
	c->opts.compact_keep = 5;
	c->fault_next = true;
	tc_start(c, 1);
	sisy_fs_fault_set_torn_writes(c->n[0].ff, true);
	for (int round = 0; round < 12; round++) {
		tc_wait_leader(c);
		/* A few writes, then a crash armed some operations ahead. */
		for (int i = 0; i < 5 && a.n < MAX_KEYS; i++, a.n++)
			assert_true(write_key(c, 0, a.n, &a.version[a.n]));
		sisy_fs_fault_crash_after(c->n[0].ff,
					  1 + (uint64_t)(round * 7 % 40));
		while (!c->n[0].failed && a.n < MAX_KEYS) {
			uint64_t v = 0;
			if (write_key(c, 0, a.n, &v))
				a.version[a.n] = v;
			a.n++;
		}
		crash_and_reopen(c, 0);
		tc_wait_leader(c);
		check_all(c, 0, &a);
	}
}

/* A 3-node cluster whose leader runs on the fault layer crashes: the
 * others take over, and the crashed node comes back from what it had
 * synced, catches up, and agrees on every acknowledged write. */
static void test_leader_crash_in_cluster(void **state)
{
	tc *c = *state;
	static acked a;
	memset(&a, 0, sizeof a);
	tc_start(c, 2);
	c->fault_next = true;
	int f = tc_join(c, true);
	uint64_t end = sisy_now_ms() + TC_WAIT_MS;
	while (tc_leader(c) != f) {
		int l = tc_wait_leader(c);
		if (l != f)
			sisy_node_transfer(c->n[l].node, 1, c->n[f].id);
		for (int i = 0; i < 50; i++)
			tc_pump(c);
		assert_true(sisy_now_ms() < end);
	}
	for (; a.n < 40; a.n++)
		assert_true(write_key(c, f, a.n, &a.version[a.n]));
	sisy_fs_fault_crash(c->n[f].ff);
	tc_close(c, f);
	int l = tc_wait_leader(c);
	for (; a.n < 80; a.n++)
		assert_true(write_key(c, l, a.n, &a.version[a.n]));
	sisy_fs_fault_restart(c->n[f].ff);
	tc_open(c, f);
	for (int i = 0; i < 3; i++)
		check_all(c, i, &a);
}

typedef struct pending {
	twrite w;
	char key[32];
} pending;

static bool all_answered(tc *c, void *arg)
{
	(void)c;
	pending *p = arg;
	for (int i = 0; p[i].key[0]; i++)
		if (!p[i].w.done)
			return false;
	return true;
}

/* A full disk refuses writes with SISY_E_NOSPC and keeps serving reads;
 * once space is back, the writes caught by the full disk complete (a
 * committed or accepted entry is never dropped) and new ones work. */
static void test_full_disk(void **state)
{
	tc *c = *state;
	static pending p[600];
	memset(p, 0, sizeof p);
	c->fault_next = true;
	tc_start(c, 1);
	assert_int_equal(tc_put(c, "before", "full", 5, 1, NULL), SISY_OK);
	sisy_fs_fault_set_capacity(c->n[0].ff,
				   sisy_fs_fault_used(c->n[0].ff) + 64 * 1024);
	static char big[2048];
	memset(big, 'x', sizeof big - 1);
	sisy_err rc = SISY_OK;
	int n = 0;
	uint64_t end = sisy_now_ms() + TC_WAIT_MS;
	while (rc != SISY_E_NOSPC && n < 599) {
		snprintf(p[n].key, sizeof p[n].key, "full-%d", n);
		sisy_node_op op = {.key = sisy_slice_str(p[n].key),
				   .value = sisy_slice_str(big)};
		sisy_node_cmd cmd = {.kind = SISY_NODE_CMD_KV,
				     .user = "admin",
				     .ops = &op,
				     .nops = 1};
		rc = sisy_node_propose(c->n[0].node, 1, &cmd, wcb, &p[n].w);
		if (rc == SISY_OK)
			n++;
		else
			p[n].key[0] = '\0';
		assert_true(rc == SISY_OK || rc == SISY_E_NOSPC ||
			    rc == SISY_E_BUSY);
		tc_pump(c);
		assert_true(sisy_now_ms() < end);
	}
	assert_int_equal(rc, SISY_E_NOSPC);
	assert_false(c->n[0].failed);
	/* Reads still work. */
	char val[16];
	assert_int_equal(tc_barrier(c, 0), SISY_OK);
	assert_true(tc_get(c, 0, "before", val, sizeof val, NULL));
	assert_string_equal(val, "full");
	/* Space comes back: everything accepted completes. */
	sisy_fs_fault_set_capacity(c->n[0].ff, 0);
	assert_true(tc_wait(c, all_answered, p, TC_WAIT_MS));
	for (int i = 0; i < n; i++) {
		assert_int_equal(p[i].w.status, SISY_OK);
		assert_int_equal(p[i].w.res.status, SISY_OK);
	}
	assert_int_equal(tc_put(c, "after", "space", 5, 2, NULL), SISY_OK);
	assert_false(c->n[0].failed);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_single_node_crash_points,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_leader_crash_in_cluster, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_full_disk, setup, teardown),
	};
	if (getenv("NODE_TEST"))
		cmocka_set_test_filter(getenv("NODE_TEST"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
