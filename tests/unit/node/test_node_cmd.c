/* test_node_cmd.c — the node's byte layouts (cmd.c) and the client table
 * index (clients.c): round trips, and malformed input refused without
 * crashing (every truncation, trailing bytes, unknown versions).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "node_int.h"
#include "rand.h"

static void verifier(sisy_auth_verifier *v, uint8_t seed)
{
	memset(v, 0, sizeof *v);
	memset(v->salt, seed, sizeof v->salt);
	memset(v->pk, seed ^ 0xff, sizeof v->pk);
	v->opslimit = SISY_AUTH_OPS_MIN + seed;
	v->memlimit = SISY_AUTH_MEM_MIN;
}

static void test_kv_round_trip(void **state)
{
	(void)state;
	sisy_node_op ops[3] = {
	    {.key = sisy_slice_str("a"), .value = sisy_slice_str("1")},
	    {.key = sisy_slice_str("bb"),
	     .value = sisy_slice_make("", 0),
	     .cond = SISY_NODE_COND_VERSION,
	     .cond_version = 1234567890123ULL},
	    {.del = true,
	     .key = sisy_slice_str("ccc"),
	     .cond = SISY_NODE_COND_ABSENT},
	};
	sisy_node_cmd c = {.kind = SISY_NODE_CMD_KV,
			   .client_id = 0xfeedface,
			   .seq = 42,
			   .lowest_unanswered = 40,
			   .user = "alice",
			   .ops = ops,
			   .nops = 3};
	sisy_buf b = {0};
	node_cmd_view v;
	assert_int_equal(node_cmd_encode(&c, &b), SISY_OK);
	assert_int_equal(node_cmd_decode(sisy_buf_slice(&b), &v), SISY_OK);
	assert_int_equal(v.kind, SISY_NODE_CMD_KV);
	assert_int_equal(v.client_id, 0xfeedface);
	assert_int_equal(v.seq, 42);
	assert_int_equal(v.lowest, 40);
	assert_string_equal(v.user, "alice");
	assert_int_equal(v.nops, 3);
	for (int i = 0; i < 3; i++) {
		assert_true(sisy_slice_eq(v.ops[i].key, ops[i].key));
		assert_int_equal(v.ops[i].del, ops[i].del);
		assert_int_equal(v.ops[i].cond, ops[i].cond);
		assert_int_equal(v.ops[i].cond_version, ops[i].cond_version);
		if (!ops[i].del)
			assert_true(
			    sisy_slice_eq(v.ops[i].value, ops[i].value));
	}
	node_cmd_view_free(&v);
	sisy_buf_free(&b);
}

static void test_meta_round_trips(void **state)
{
	(void)state;
	uint8_t kinds[] = {SISY_NODE_CMD_USER_ADD,  SISY_NODE_CMD_USER_DEL,
			   SISY_NODE_CMD_USER_ROLE, SISY_NODE_CMD_USER_PASSWORD,
			   SISY_NODE_CMD_TOKEN_NEW, SISY_NODE_CMD_TOKEN_CLAIM};
	for (size_t k = 0; k < sizeof kinds; k++) {
		sisy_node_cmd c = {.kind = kinds[k],
				   .user = "root",
				   .name = "bob.smith@x",
				   .role = SISY_ROLE_READWRITE,
				   .address = "10.0.0.7:7420"};
		verifier(&c.verifier, (uint8_t)k);
		memset(c.token, 0x11 + (int)k, sizeof c.token);
		memset(c.node_key, 0x22, sizeof c.node_key);
		sisy_buf b = {0};
		node_cmd_view v;
		assert_int_equal(node_cmd_encode(&c, &b), SISY_OK);
		assert_int_equal(node_cmd_decode(sisy_buf_slice(&b), &v),
				 SISY_OK);
		assert_int_equal(v.kind, kinds[k]);
		assert_string_equal(v.user, "root");
		switch (kinds[k]) {
		case SISY_NODE_CMD_USER_ADD:
		case SISY_NODE_CMD_USER_PASSWORD:
			assert_memory_equal(&v.verifier, &c.verifier,
					    sizeof c.verifier);
			/* fall through */
		case SISY_NODE_CMD_USER_DEL:
		case SISY_NODE_CMD_USER_ROLE:
			assert_string_equal(v.name, "bob.smith@x");
			if (kinds[k] != SISY_NODE_CMD_USER_DEL &&
			    kinds[k] != SISY_NODE_CMD_USER_PASSWORD)
				assert_int_equal(v.role, SISY_ROLE_READWRITE);
			break;
		default: {
			/* The log holds the token's hash, never the token. */
			uint8_t h[32];
			node_token_hash(c.token, h);
			assert_memory_equal(v.token_hash, h, 32);
			assert_null(memmem(b.data, b.len, c.token, 32));
			if (kinds[k] == SISY_NODE_CMD_TOKEN_NEW)
				assert_string_equal(v.address, "10.0.0.7:7420");
			else
				assert_memory_equal(v.node_key, c.node_key, 32);
		}
		}
		node_cmd_view_free(&v);
		sisy_buf_free(&b);
	}
}

static void test_init_round_trip(void **state)
{
	(void)state;
	sisy_node_init in = {.node_id = 9, .admin_user = "admin"};
	memset(in.cluster_id, 7, sizeof in.cluster_id);
	verifier(&in.admin_verifier, 3);
	sisy_buf b = {0};
	node_cmd_view v;
	assert_int_equal(node_cmd_encode_init(&in, &b), SISY_OK);
	assert_int_equal(node_cmd_decode(sisy_buf_slice(&b), &v), SISY_OK);
	assert_int_equal(v.kind, NODE_CMD_INIT);
	assert_int_equal(v.node_id, 9);
	assert_memory_equal(v.cluster_id, in.cluster_id, 16);
	assert_string_equal(v.name, "admin");
	node_cmd_view_free(&v);
	sisy_buf_free(&b);
}

/* Every prefix of a valid command, and one byte more, is refused. */
static void test_malformed_refused(void **state)
{
	(void)state;
	sisy_node_op ops[2] = {
	    {.key = sisy_slice_str("key"), .value = sisy_slice_str("value")},
	    {.del = true, .key = sisy_slice_str("k2")},
	};
	sisy_node_cmd c = {.kind = SISY_NODE_CMD_KV,
			   .client_id = 1,
			   .seq = 1,
			   .user = "u",
			   .ops = ops,
			   .nops = 2};
	sisy_buf b = {0};
	node_cmd_view v;
	assert_int_equal(node_cmd_encode(&c, &b), SISY_OK);
	for (size_t n = 0; n < b.len; n++)
		assert_int_equal(
		    node_cmd_decode(sisy_slice_make(b.data, n), &v),
		    SISY_E_CORRUPT);
	sisy_buf_append_u8(&b, 0);
	assert_int_equal(node_cmd_decode(sisy_buf_slice(&b), &v),
			 SISY_E_CORRUPT);
	b.len--;
	b.data[0] = 2; /* a version this node does not know */
	assert_int_equal(node_cmd_decode(sisy_buf_slice(&b), &v),
			 SISY_E_CORRUPT);
	b.data[0] = 1;
	b.data[1] = 99; /* an unknown kind */
	assert_int_equal(node_cmd_decode(sisy_buf_slice(&b), &v),
			 SISY_E_CORRUPT);
	/* Random bytes never crash the decoder. */
	sisy_rand r;
	sisy_rand_seed(&r, 5);
	uint8_t junk[64];
	for (int i = 0; i < 20000; i++) {
		size_t n = sisy_rand_below(&r, sizeof junk);
		for (size_t k = 0; k < n; k++)
			junk[k] = (uint8_t)sisy_rand_next(&r);
		if (n > 1 && i % 2)
			junk[0] = 1, junk[1] = (uint8_t)(1 + i % 8);
		if (node_cmd_decode(sisy_slice_make(junk, n), &v) == SISY_OK)
			node_cmd_view_free(&v);
	}
	sisy_buf_free(&b);
}

static void test_encode_bounds(void **state)
{
	(void)state;
	sisy_buf b = {0};
	static uint8_t big[SISY_NODE_MAX_KEY + 1];
	sisy_node_op op = {.key = sisy_slice_make(big, sizeof big)};
	sisy_node_cmd c = {.kind = SISY_NODE_CMD_KV, .ops = &op, .nops = 1};
	assert_int_equal(node_cmd_encode(&c, &b), SISY_E_TOOBIG);
	sisy_buf_clear(&b);
	op.key = sisy_slice_make(big, SISY_NODE_MAX_KEY);
	assert_int_equal(node_cmd_encode(&c, &b), SISY_OK);
	sisy_buf_clear(&b);
	op.key = sisy_slice_make("", 0);
	assert_int_equal(node_cmd_encode(&c, &b), SISY_E_TOOBIG);
	sisy_buf_clear(&b);
	c.nops = 0;
	assert_int_equal(node_cmd_encode(&c, &b), SISY_E_INVAL);
	sisy_buf_clear(&b);
	c.kind = 55;
	assert_int_equal(node_cmd_encode(&c, &b), SISY_E_INVAL);
	sisy_buf_free(&b);
}

static void test_result_and_ctx(void **state)
{
	(void)state;
	sisy_node_result r = {.status = SISY_E_CONFLICT,
			      .index = 1ULL << 40,
			      .failed_op = 7,
			      .current_version = 99,
			      .existed = true,
			      .node_id = 5},
			 back;
	uint8_t enc[NODE_RESULT_LEN];
	node_result_encode(&r, enc);
	assert_true(node_result_decode(enc, sizeof enc, &back));
	assert_int_equal(back.status, r.status);
	assert_int_equal(back.index, r.index);
	assert_int_equal(back.failed_op, 7);
	assert_int_equal(back.current_version, 99);
	assert_true(back.existed);
	assert_int_equal(back.node_id, 5);
	assert_false(node_result_decode(enc, sizeof enc - 1, &back));
	enc[0] = 2;
	assert_false(node_result_decode(enc, sizeof enc, &back));

	uint8_t key[SISY_NODE_KEY], key2[SISY_NODE_KEY];
	char addr[SISY_NODE_MAX_ADDR + 1];
	memset(key, 0xab, sizeof key);
	sisy_buf b = {0};
	assert_int_equal(node_conf_ctx_encode("host:1", key, &b), SISY_OK);
	assert_true(
	    node_conf_ctx_decode(sisy_buf_slice(&b), addr, sizeof addr, key2));
	assert_string_equal(addr, "host:1");
	assert_memory_equal(key, key2, sizeof key);
	assert_false(node_conf_ctx_decode(sisy_slice_make(b.data, 10), addr,
					  sizeof addr, key2));
	char longaddr[SISY_NODE_MAX_ADDR + 2];
	memset(longaddr, 'x', sizeof longaddr - 1);
	longaddr[sizeof longaddr - 1] = '\0';
	sisy_buf_clear(&b);
	assert_int_equal(node_conf_ctx_encode(longaddr, key, &b),
			 SISY_E_TOOBIG);
	sisy_buf_free(&b);
}

/* The open-addressing index keeps every live id findable through
 * deletions (backward shift) and growth. */
static void test_clients_index(void **state)
{
	(void)state;
	node_clients t = {0};
	enum { N = 5000 };
	static uint64_t ids[N];
	sisy_rand r;
	sisy_rand_seed(&r, 11);
	for (int i = 0; i < N; i++) {
		ids[i] = sisy_rand_next(&r) | 1;
		node_client *c = node_clients_add(&t, ids[i]);
		assert_non_null(c);
		c->max_seq = (uint64_t)i;
	}
	assert_int_equal(t.n, N);
	for (int i = 0; i < N; i += 2)
		node_clients_del(&t, ids[i]);
	assert_int_equal(t.n, N / 2);
	for (int i = 0; i < N; i++) {
		node_client *c = node_clients_find(&t, ids[i]);
		if (i % 2 == 0) {
			assert_null(c);
		} else {
			assert_non_null(c);
			assert_int_equal(c->max_seq, (uint64_t)i);
		}
	}
	assert_null(node_clients_find(&t, 0));
	node_clients_clear(&t);
	assert_null(node_clients_find(&t, ids[1]));
	node_clients_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kv_round_trip),
	    cmocka_unit_test(test_meta_round_trips),
	    cmocka_unit_test(test_init_round_trip),
	    cmocka_unit_test(test_malformed_refused),
	    cmocka_unit_test(test_encode_bounds),
	    cmocka_unit_test(test_result_and_ctx),
	    cmocka_unit_test(test_clients_index),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
