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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_write_read_everywhere, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_not_leader_hint, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
