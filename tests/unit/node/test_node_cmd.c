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

/* The KV layout of cmd.c's header comment, byte by byte, as a reference for
 * the encoder (which writes it in place). */
static void ref_varint(sisy_buf *b, uint64_t v)
{
	while (v >= 0x80) {
		sisy_buf_append_u8(b, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	sisy_buf_append_u8(b, (uint8_t)v);
}

static void ref_kv(const sisy_node_cmd *c, sisy_buf *b)
{
	size_t ulen = c->user ? strlen(c->user) : 0;
	sisy_buf_append_u8(b, 1);
	sisy_buf_append_u8(b, SISY_NODE_CMD_KV);
	for (int w = 0; w < 3; w++) {
		uint64_t x = w == 0   ? c->client_id
			     : w == 1 ? c->seq
				      : c->lowest_unanswered;
		for (int i = 0; i < 8; i++)
			sisy_buf_append_u8(b, (uint8_t)(x >> (8 * i)));
	}
	sisy_buf_append_u8(b, (uint8_t)ulen);
	sisy_buf_append(b, c->user ? c->user : "", ulen);
	ref_varint(b, c->nops);
	for (size_t i = 0; i < c->nops; i++) {
		const sisy_node_op *op = &c->ops[i];
		sisy_buf_append_u8(b, (uint8_t)(op->del | op->cond << 1));
		if (op->cond == SISY_NODE_COND_VERSION)
			ref_varint(b, op->cond_version);
		ref_varint(b, op->key.len);
		sisy_buf_append(b, op->key.data, op->key.len);
		if (!op->del) {
			ref_varint(b, op->value.len);
			sisy_buf_append(b, op->value.data, op->value.len);
		}
	}
}

/* Random KV commands (users of 0..64 bytes, 1..5 ops of every flag, keys and
 * values across varint length boundaries, 64-bit fields of every width):
 * the encoder's bytes are the reference's, appended after what the buffer
 * held, and the decoder gives every field back. */
static void test_kv_bytes_vs_reference(void **state)
{
	(void)state;
	static uint8_t data[SISY_NODE_MAX_KEY + 300];
	sisy_rand r;
	sisy_rand_seed(&r, 11);
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (uint8_t)sisy_rand_next(&r);
	sisy_buf got = {0}, want = {0};
	for (int it = 0; it < 3000; it++) {
		sisy_node_op ops[5];
		char user[SISY_AUTH_MAX_USER + 1];
		size_t ulen = sisy_rand_below(&r, SISY_AUTH_MAX_USER + 1);
		for (size_t i = 0; i < ulen; i++)
			user[i] = (char)('a' + sisy_rand_below(&r, 26));
		user[ulen] = '\0';
		size_t nops = 1 + sisy_rand_below(&r, 5);
		for (size_t j = 0; j < nops; j++) {
			size_t kl =
			    1 + sisy_rand_below(&r, j % 2 ? 200
							  : SISY_NODE_MAX_KEY);
			size_t vl = sisy_rand_below(&r, it % 3 ? 130 : 300);
			ops[j] = (sisy_node_op){
			    .del = sisy_rand_below(&r, 3) == 0,
			    .key = sisy_slice_make(
				data + sisy_rand_below(&r, 300), kl),
			    .value = sisy_slice_make(
				data + sisy_rand_below(&r, 300), vl),
			    .cond = (uint8_t)sisy_rand_below(&r, 3),
			    .cond_version =
				sisy_rand_next(&r) >> sisy_rand_below(&r, 64)};
		}
		sisy_node_cmd c = {.kind = SISY_NODE_CMD_KV,
				   .client_id = sisy_rand_next(&r),
				   .seq = sisy_rand_next(&r) >>
					  sisy_rand_below(&r, 64),
				   .lowest_unanswered = sisy_rand_next(&r),
				   .user = it % 7 ? user : NULL,
				   .ops = ops,
				   .nops = nops};
		sisy_buf_clear(&got);
		sisy_buf_clear(&want);
		size_t pre = sisy_rand_below(&r, 4);
		sisy_buf_append(&got, "xyz", pre);
		sisy_buf_append(&want, "xyz", pre);
		ref_kv(&c, &want);
		/* into buffers one byte short of the whole and exactly as
		 * large, holding the prefix already */
		for (size_t slack = 0; slack < 2; slack++) {
			sisy_buf t = {malloc(want.len - 1 + slack), pre,
				      want.len - 1 + slack};
			memcpy(t.data, "xyz", pre);
			assert_int_equal(node_cmd_encode(&c, &t), SISY_OK);
			assert_int_equal(t.len, want.len);
			assert_memory_equal(t.data, want.data, want.len);
			sisy_buf_free(&t);
		}
		assert_int_equal(node_cmd_encode(&c, &got), SISY_OK);
		assert_int_equal(got.len, want.len);
		assert_memory_equal(got.data, want.data, want.len);
		node_cmd_view v;
		memset(&v, 0xa5, sizeof v);
		assert_int_equal(
		    node_cmd_decode(
			sisy_slice_make(got.data + pre, got.len - pre), &v),
		    SISY_OK);
		assert_int_equal(v.kind, SISY_NODE_CMD_KV);
		assert_int_equal(v.client_id, c.client_id);
		assert_int_equal(v.seq, c.seq);
		assert_int_equal(v.lowest, c.lowest_unanswered);
		assert_string_equal(v.user, c.user ? c.user : "");
		assert_int_equal(v.nops, nops);
		for (size_t j = 0; j < nops; j++) {
			assert_int_equal(v.ops[j].del, ops[j].del);
			assert_int_equal(v.ops[j].cond, ops[j].cond);
			assert_int_equal(v.ops[j].cond_version,
					 ops[j].cond == SISY_NODE_COND_VERSION
					     ? ops[j].cond_version
					     : 0);
			assert_true(sisy_slice_eq(v.ops[j].key, ops[j].key));
			assert_int_equal(v.ops[j].value.len,
					 ops[j].del ? 0 : ops[j].value.len);
			if (!ops[j].del)
				assert_true(sisy_slice_eq(v.ops[j].value,
							  ops[j].value));
		}
		node_cmd_view_free(&v);
		if (c.user == NULL)
			ulen = 0;
		/* A NUL in the user name, or a flag byte out of range, is
		 * refused. */
		if (ulen > 0) {
			size_t at = pre + 27 + sisy_rand_below(&r, ulen);
			uint8_t old = got.data[at];
			got.data[at] = 0;
			assert_int_equal(
			    node_cmd_decode(
				sisy_slice_make(got.data + pre, got.len - pre),
				&v),
			    SISY_E_CORRUPT);
			got.data[at] = old;
		}
		size_t flags = pre + 27 + ulen + 1; /* nops < 128 */
		uint8_t old = got.data[flags];
		got.data[flags] = (uint8_t)(it % 2 ? 8 : 6); /* bit 3; cond 3 */
		assert_int_equal(
		    node_cmd_decode(
			sisy_slice_make(got.data + pre, got.len - pre), &v),
		    SISY_E_CORRUPT);
		got.data[flags] = old;
	}
	/* A user name over the limit is refused, the buffer untouched. */
	char longname[SISY_AUTH_MAX_USER + 2];
	memset(longname, 'u', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	sisy_node_op op = {.key = sisy_slice_str("k")};
	sisy_node_cmd c = {
	    .kind = SISY_NODE_CMD_KV, .user = longname, .ops = &op, .nops = 1};
	sisy_buf_clear(&got);
	assert_int_equal(node_cmd_encode(&c, &got), SISY_E_TOOBIG);
	assert_int_equal(got.len, 0);
	sisy_buf_free(&got);
	sisy_buf_free(&want);
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

static void fill_client(node_client *c, sisy_rand *r)
{
	c->lowest = 1000 + sisy_rand_next(r) % 1000;
	c->max_seq = c->lowest + sisy_rand_next(r) % 200;
	c->last_index = 1u << 20;
	c->r_end = sisy_rand_next(r) % 2 ? c->lowest + 5 : 0;
	uint64_t lo = c->max_seq >= c->lowest + NODE_INLINE - 1
			  ? c->max_seq - NODE_INLINE + 1
			  : c->lowest;
	/* out of order on purpose: add() keeps them sorted */
	for (uint64_t s = c->max_seq + 1; s-- > lo;) {
		if (s != c->max_seq && sisy_rand_next(r) % 3 == 0)
			continue;
		sisy_node_result res = {
		    .status = (sisy_err)(sisy_rand_next(r) % SISY_ERR__COUNT),
		    .index = c->last_index - sisy_rand_next(r) % 100000,
		    .existed = sisy_rand_next(r) % 2};
		if (sisy_rand_next(r) % 4 == 0) { /* long form */
			res.failed_op = (uint32_t)(sisy_rand_next(r) % 5);
			res.current_version = sisy_rand_next(r) % 9;
			res.node_id = sisy_rand_next(r) % 3;
			res.index = sisy_rand_next(r);
		}
		assert_int_equal(node_client_res_add(c, s, &res), SISY_OK);
	}
}

/* Header records (v3) decode to what was encoded, short and long results
 * alike; every cut of one, a trailing byte and the broken orders are
 * refused; v1 and v2 records still load. */
static void test_client_header_codec(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, 5);
	sisy_buf b = {0}, b2 = {0};
	for (int round = 0; round < 300; round++) {
		node_client c = {.id = 1}, d = {.id = 1};
		fill_client(&c, &r);
		assert_int_equal(node_client_encode(&c, &b), SISY_OK);
		assert_true(b.len <= NODE_CLIENT_REC_MAX);
		assert_int_equal(node_client_decode(&d, b.data, b.len),
				 SISY_OK);
		assert_int_equal(d.lowest, c.lowest);
		assert_int_equal(d.max_seq, c.max_seq);
		assert_int_equal(d.last_index, c.last_index);
		assert_int_equal(d.r_end, c.r_end);
		assert_int_equal(d.ninl, c.ninl);
		for (uint64_t s = c.lowest; s <= c.max_seq; s++) {
			const sisy_node_result *x = node_client_res_find(&c, s),
					       *y = node_client_res_find(&d, s);
			assert_true((x == NULL) == (y == NULL));
			if (x == NULL)
				continue;
			assert_int_equal(x->status, y->status);
			assert_int_equal(x->index, y->index);
			assert_int_equal(x->failed_op, y->failed_op);
			assert_int_equal(x->current_version,
					 y->current_version);
			assert_int_equal(x->existed, y->existed);
			assert_int_equal(x->node_id, y->node_id);
		}
		assert_int_equal(node_client_encode(&d, &b2), SISY_OK);
		assert_memory_equal(b.data, b2.data, b.len);
		free(d.inl);
		for (size_t cut = 0; cut < b.len; cut++) {
			node_client e = {.id = 1};
			if (cut == NODE_CLIENT_REC)
				continue; /* a v1 record */
			assert_int_equal(node_client_decode(&e, b.data, cut),
					 SISY_E_CORRUPT);
			free(e.inl);
		}
		assert_int_equal(sisy_buf_append_u8(&b, 0), SISY_OK);
		node_client e = {.id = 1};
		assert_int_equal(node_client_decode(&e, b.data, b.len),
				 SISY_E_CORRUPT);
		free(e.inl);
		free(c.inl);
	}
	/* two results, then broken by hand */
	node_client c = {
	    .id = 1, .lowest = 10, .max_seq = 12, .last_index = 50};
	sisy_node_result res = {.status = SISY_OK, .index = 50};
	assert_int_equal(node_client_res_add(&c, 12, &res), SISY_OK);
	res.index = 49;
	assert_int_equal(node_client_res_add(&c, 10, &res), SISY_OK);
	assert_int_equal(node_client_encode(&c, &b), SISY_OK);
	/* | 24 | 2 | r_end 0 | n 2 | d 0 st 0 back 0 | d 2 st 0 back 1 | */
	assert_int_equal(b.len, NODE_CLIENT_REC + 3 + 3 + 3);
	uint8_t bad[64];
	const struct {
		size_t at;
		uint8_t val;
	} breaks[] = {
	    {NODE_CLIENT_REC, 3},	 /* unknown layout */
	    {NODE_CLIENT_REC + 2, 65},	 /* count above NODE_INLINE */
	    {NODE_CLIENT_REC + 6, 0},	 /* distances not increasing */
	    {NODE_CLIENT_REC + 6, 3},	 /* seq below lowest */
	    {NODE_CLIENT_REC + 4, 0x7f}, /* status out of range */
	    {NODE_CLIENT_REC + 4, 0x81}, /* unknown result form */
	    {NODE_CLIENT_REC + 8, 51},	 /* index below zero */
	};
	for (size_t i = 0; i < sizeof breaks / sizeof breaks[0]; i++) {
		node_client e = {.id = 1};
		memcpy(bad, b.data, b.len);
		bad[breaks[i].at] = breaks[i].val;
		assert_int_equal(node_client_decode(&e, bad, b.len),
				 SISY_E_CORRUPT);
		free(e.inl);
	}
	/* v1: no results inline, records up to max_seq; v2: max_seq's */
	node_client e = {.id = 1};
	assert_int_equal(node_client_decode(&e, b.data, NODE_CLIENT_REC),
			 SISY_OK);
	assert_int_equal(e.ninl, 0);
	assert_int_equal(e.r_end, 13);
	memcpy(bad, b.data, NODE_CLIENT_REC);
	res = (sisy_node_result){.status = SISY_E_CONFLICT, .index = 7};
	node_result_encode(&res, bad + NODE_CLIENT_REC);
	assert_int_equal(node_client_decode(&e, bad, NODE_CLIENT_REC_RES),
			 SISY_OK);
	assert_int_equal(e.ninl, 1);
	assert_int_equal(e.r_end, 12);
	assert_int_equal(node_client_res_find(&e, 12)->status, SISY_E_CONFLICT);
	free(e.inl);
	free(c.inl);
	sisy_buf_free(&b);
	sisy_buf_free(&b2);
}

/* Inline results stay sorted through in-order and out-of-order adds and
 * pops from the front, across the array's slides and growth. */
static void test_client_inline_results(void **state)
{
	(void)state;
	node_client c = {.id = 1};
	sisy_node_result res = {0};
	uint64_t next = 1, front = 1;
	for (int i = 0; i < 2000; i++) {
		res.index = next;
		assert_int_equal(node_client_res_add(&c, next, &res), SISY_OK);
		if (i % 5 == 0) { /* a gap filled out of order */
			next += 2;
			res.index = next - 1;
			assert_int_equal(node_client_res_add(&c, next, &res),
					 SISY_OK);
			assert_int_equal(
			    node_client_res_add(&c, next - 1, &res), SISY_OK);
		}
		next++;
		node_res_ent out;
		while (c.ninl > (i < 1000 ? 20u : NODE_INLINE - 3) &&
		       node_client_res_pop(&c, next, &out)) {
			assert_int_equal(out.seq, front);
			front++;
		}
		assert_false(node_client_res_pop(&c, front, &out));
		assert_true(c.inl_cap <= NODE_INLINE);
	}
	for (uint64_t s = front; s < next; s++)
		assert_non_null(node_client_res_find(&c, s));
	assert_null(node_client_res_find(&c, front - 1));
	assert_null(node_client_res_find(&c, next));
	/* dropping below a bound: none, some, all (the array restarts) */
	node_client d = {.id = 2};
	for (uint64_t s = 1; s <= 30; s++) {
		res.index = 100 + s;
		assert_int_equal(node_client_res_add(&d, s, &res), SISY_OK);
	}
	assert_int_equal(node_client_res_drop(&d, 1), 0);
	assert_int_equal(node_client_res_drop(&d, 11), 10);
	assert_int_equal(d.ninl, 20);
	assert_null(node_client_res_find(&d, 10));
	assert_int_equal(node_client_res_find(&d, 11)->index, 111);
	assert_int_equal(node_client_res_find(&d, 30)->index, 130);
	assert_int_equal(node_client_res_drop(&d, 11), 0);
	node_res_ent out;
	assert_true(node_client_res_pop(&d, 12, &out));
	assert_int_equal(out.seq, 11);
	assert_int_equal(node_client_res_drop(&d, 1000), 19);
	assert_int_equal(d.ninl, 0);
	assert_int_equal(d.inl_head, 0);
	assert_int_equal(node_client_res_drop(&d, 1000), 0);
	assert_int_equal(node_client_res_add(&d, 31, &res), SISY_OK);
	assert_non_null(node_client_res_find(&d, 31));
	free(d.inl);
	/* a table frees what its clients hold */
	node_clients t = {0};
	node_client *tc = node_clients_add(&t, 9);
	assert_non_null(tc);
	assert_int_equal(node_client_res_add(tc, 1, &res), SISY_OK);
	tc = node_clients_add(&t, 10);
	assert_non_null(tc);
	assert_int_equal(node_client_res_add(tc, 1, &res), SISY_OK);
	node_clients_del(&t, 9);
	node_clients_free(&t);
	free(c.inl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kv_round_trip),
	    cmocka_unit_test(test_meta_round_trips),
	    cmocka_unit_test(test_init_round_trip),
	    cmocka_unit_test(test_malformed_refused),
	    cmocka_unit_test(test_kv_bytes_vs_reference),
	    cmocka_unit_test(test_encode_bounds),
	    cmocka_unit_test(test_result_and_ctx),
	    cmocka_unit_test(test_clients_index),
	    cmocka_unit_test(test_client_header_codec),
	    cmocka_unit_test(test_client_inline_results),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
