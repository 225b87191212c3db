/* Tests sisyd/server end to end in one process: a real server on a
 * loopback port (its own thread) and the real client library. Every
 * request type, pipelining order, conditions and batches, roles, user
 * management ending sessions, trust decisions, persistence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "client.h"
#include "clock.h"
#include "server.h"
#include "session.h"
#include "trust.h"

typedef struct fixture {
	char dir[256];
	char host[64];
	char passfile[300];
	char known[300];
	char key_path[300];
	sisy_server *srv;
	pthread_t th;
	sisy_server_config cfg;
} fixture;

static fixture F;

static void *run(void *arg)
{
	sisy_server_run(arg);
	return NULL;
}

static void opts(sisy_client_opts *o, const char *user, const char *pw);

/* Until the node has elected itself and applied its first entries (the
 * first admin), logins are answered "not ready" (SISY_E_FAILED). */
static void wait_ready(void)
{
	sisy_client_opts o;
	sisy_client *c = NULL;
	opts(&o, "admin", "s3cret");
	uint64_t end = sisy_now_ms() + 10000;
	sisy_err rc;
	while ((rc = sisy_client_connect(&o, &c)) == SISY_E_FAILED &&
	       sisy_now_ms() < end)
		usleep(10 * 1000);
	assert_int_equal(rc, SISY_OK);
	sisy_client_close(c);
}

static void start(void)
{
	assert_int_equal(sisy_server_open(&F.cfg, NULL, &F.srv), SISY_OK);
	snprintf(F.host, sizeof F.host, "127.0.0.1:%u",
		 sisy_server_port(F.srv));
	assert_int_equal(pthread_create(&F.th, NULL, run, F.srv), 0);
	wait_ready();
}

static void stop(void)
{
	sisy_server_stop(F.srv);
	pthread_join(F.th, NULL);
	sisy_server_free(F.srv);
	F.srv = NULL;
}

static int setup(void **state)
{
	(void)state;
	snprintf(F.dir, sizeof F.dir, "/tmp/sisy-test-server.XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	char node[280];
	snprintf(node, sizeof node, "%s/node", F.dir);
	assert_int_equal(
	    sisy_server_init_dir(node, "admin", "s3cret", "127.0.0.1:7420"),
	    SISY_OK);
	snprintf(F.passfile, sizeof F.passfile, "%s/passfile", F.dir);
	snprintf(F.known, sizeof F.known, "%s/known_servers", F.dir);
	snprintf(F.key_path, sizeof F.key_path, "%.200s/cluster.pub", node);
	sisy_config_defaults(&F.cfg);
	snprintf(F.cfg.data_dir, sizeof F.cfg.data_dir, "%s", node);
	snprintf(F.cfg.listen, sizeof F.cfg.listen, "127.0.0.1:0");
	F.cfg.scan_page_max = 7; /* make SCAN page */
	F.cfg.auth_free_failures = 100;
	start();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	stop();
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", F.dir);
	return system(cmd);
}

static void opts(sisy_client_opts *o, const char *user, const char *pw)
{
	sisy_client_opts_init(o);
	o->hosts = F.host;
	o->user = user;
	o->password = pw;
	o->server_key = F.key_path;
	o->passfile = F.passfile;
	o->known_servers = NULL;
	o->io_timeout_ms = 20000;
}

static sisy_client *connect_as(const char *user, const char *pw)
{
	sisy_client_opts o;
	sisy_client *c = NULL;
	opts(&o, user, pw);
	sisy_err rc = sisy_client_connect(&o, &c);
	if (rc != SISY_OK)
		fail_msg("connect as %s: %s: %s", user, sisy_errname(rc),
			 sisy_errmsg());
	return c;
}

static sisy_slice S(const char *s)
{
	return sisy_slice_str(s);
}

static void test_round_trips(void **state)
{
	(void)state;
	sisy_client *c = connect_as("admin", "s3cret");
	sisy_client_info info;
	sisy_client_get_info(c, &info);
	assert_string_equal(info.user, "admin");
	assert_int_equal(info.role, SISY_ROLE_ADMIN);
	assert_int_equal(info.node_id, 1);
	assert_int_equal(sisy_client_ping(c), SISY_OK);

	uint64_t v1 = 0, v2 = 0, v = 0;
	sisy_buf val = {0};
	bool found = true, existed = false;
	assert_int_equal(sisy_client_get(c, S("rt:none"), &val, &found, &v),
			 SISY_OK);
	assert_false(found);
	assert_int_equal(sisy_client_put(c, S("rt:a"), S("1"), NULL, &v1),
			 SISY_OK);
	assert_int_equal(sisy_client_put(c, S("rt:a"), S("22"), NULL, &v2),
			 SISY_OK);
	assert_true(v2 > v1);
	assert_int_equal(sisy_client_get(c, S("rt:a"), &val, &found, &v),
			 SISY_OK);
	assert_true(found);
	assert_int_equal(v, v2);
	assert_int_equal(val.len, 2);
	assert_memory_equal(val.data, "22", 2);
	/* An empty value is found, with zero length. */
	assert_int_equal(sisy_client_put(c, S("rt:empty"), S(""), NULL, NULL),
			 SISY_OK);
	assert_int_equal(sisy_client_get(c, S("rt:empty"), &val, &found, NULL),
			 SISY_OK);
	assert_true(found);
	assert_int_equal(val.len, 0);
	/* Binary keys and values. */
	uint8_t bk[3] = {0, 0xff, 0}, bv[4] = {1, 0, 2, 0};
	assert_int_equal(sisy_client_put(c, sisy_slice_make(bk, 3),
					 sisy_slice_make(bv, 4), NULL, NULL),
			 SISY_OK);
	assert_int_equal(
	    sisy_client_get(c, sisy_slice_make(bk, 3), &val, &found, NULL),
	    SISY_OK);
	assert_int_equal(val.len, 4);
	assert_memory_equal(val.data, bv, 4);
	/* EXISTS, DEL. */
	bool ex = false;
	assert_int_equal(sisy_client_exists(c, S("rt:a"), &ex), SISY_OK);
	assert_true(ex);
	assert_int_equal(sisy_client_del(c, S("rt:a"), NULL, &existed),
			 SISY_OK);
	assert_true(existed);
	assert_int_equal(sisy_client_del(c, S("rt:a"), NULL, &existed),
			 SISY_OK);
	assert_false(existed);
	assert_int_equal(sisy_client_exists(c, S("rt:a"), &ex), SISY_OK);
	assert_false(ex);
	/* MGET: one entry per key, in order, missing ones marked. */
	sisy_slice keys[3] = {S("rt:empty"), S("rt:nope"),
			      sisy_slice_make(bk, 3)};
	sisy_req q = {
	    .op = SISY_OP_MGET, .keys = keys, .nkeys = 3, .with_version = true};
	sisy_reply *r;
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_OK);
	assert_int_equal(r->nentries, 3);
	assert_true(r->entries[0].found);
	assert_int_equal(r->entries[0].value.len, 0);
	assert_true(r->entries[0].version > 0);
	assert_false(r->entries[1].found);
	assert_true(r->entries[2].found);
	assert_memory_equal(r->entries[2].value.data, bv, 4);
	sisy_reply_free(r);
	/* WHOAMI, INFO. */
	q = (sisy_req){.op = SISY_OP_WHOAMI};
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_string_equal(r->user, "admin");
	assert_int_equal(r->role, SISY_ROLE_ADMIN);
	sisy_reply_free(r);
	q = (sisy_req){.op = SISY_OP_INFO};
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	bool saw_applied = false;
	for (size_t i = 0; i < r->nentries; i++)
		if (sisy_slice_eq(r->entries[i].key, S("raft.applied_index")))
			saw_applied = true;
	assert_true(saw_applied);
	sisy_reply_free(r);
	/* PING echoes its payload. */
	q = (sisy_req){.op = SISY_OP_PING, .value = S("echo me")};
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_true(sisy_slice_eq(r->value, S("echo me")));
	sisy_reply_free(r);
	sisy_buf_free(&val);
	sisy_client_close(c);
}

static void test_conditions_and_batches(void **state)
{
	(void)state;
	sisy_client *c = connect_as("admin", "s3cret");
	uint64_t v = 0, v2 = 0;
	sisy_cond absent = {SISY_COND_ABSENT, 0};
	assert_int_equal(sisy_client_put(c, S("cas:k"), S("a"), &absent, &v),
			 SISY_OK);
	assert_int_equal(sisy_client_put(c, S("cas:k"), S("b"), &absent, NULL),
			 SISY_E_CONFLICT);
	sisy_cond wrong = {SISY_COND_VERSION, v + 100};
	sisy_req q = {.op = SISY_OP_PUT,
		      .key = S("cas:k"),
		      .value = S("c"),
		      .cond = wrong};
	sisy_reply *r;
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_E_CONFLICT);
	assert_int_equal(r->version, v); /* tells the current version */
	sisy_reply_free(r);
	sisy_cond right = {SISY_COND_VERSION, v};
	assert_int_equal(sisy_client_put(c, S("cas:k"), S("d"), &right, &v2),
			 SISY_OK);
	assert_true(v2 > v);
	assert_int_equal(sisy_client_del(c, S("cas:k"), &right, NULL),
			 SISY_E_CONFLICT);
	right.version = v2;
	assert_int_equal(sisy_client_del(c, S("cas:k"), &right, NULL), SISY_OK);

	/* A batch whose 3rd condition fails applies nothing. Conditions
	 * are checked against the state before the batch. */
	assert_int_equal(sisy_client_put(c, S("b:0"), S("old"), NULL, NULL),
			 SISY_OK);
	sisy_batch_op ops[3] = {
	    {.key = S("b:1"), .value = S("x")},
	    {.key = S("b:2"), .value = S("y")},
	    {.key = S("b:0"), .value = S("z"), .cond = absent},
	};
	q = (sisy_req){.op = SISY_OP_BATCH, .ops = ops, .nops = 3};
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_E_CONFLICT);
	assert_int_equal(r->failed_op, 2);
	sisy_reply_free(r);
	bool ex = true;
	assert_int_equal(sisy_client_exists(c, S("b:1"), &ex), SISY_OK);
	assert_false(ex);
	/* Without it: all applied, one version for all. */
	q.nops = 2;
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_OK);
	uint64_t bv = r->version;
	sisy_reply_free(r);
	uint64_t v1b = 0, v2b = 0;
	bool found;
	assert_int_equal(sisy_client_get(c, S("b:1"), NULL, &found, &v1b),
			 SISY_OK);
	assert_int_equal(sisy_client_get(c, S("b:2"), NULL, &found, &v2b),
			 SISY_OK);
	assert_int_equal(v1b, bv);
	assert_int_equal(v2b, bv);
	/* Delete + put in one batch. */
	sisy_batch_op ops2[2] = {{.del = true, .key = S("b:1")},
				 {.key = S("b:3"), .value = S("w")}};
	q = (sisy_req){.op = SISY_OP_BATCH, .ops = ops2, .nops = 2};
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_OK);
	sisy_reply_free(r);
	assert_int_equal(sisy_client_exists(c, S("b:1"), &ex), SISY_OK);
	assert_false(ex);
	sisy_client_close(c);
}

static uint64_t info_value(sisy_client *c, const char *key);

/* PUT k=i, GET k, repeatedly on one key: each GET sees the PUT before it
 * and not the one after; then DEL and GET. 2n + 2 requests in flight. */
static void pipeline_in_order(sisy_client *c, int n)
{
	char val[32];
	for (int i = 0; i < n; i++) {
		snprintf(val, sizeof val, "v%d", i);
		sisy_req p = {
		    .op = SISY_OP_PUT, .key = S("pipe:k"), .value = S(val)};
		sisy_req g = {.op = SISY_OP_GET, .key = S("pipe:k")};
		assert_int_equal(sisy_client_send(c, &p, NULL), SISY_OK);
		assert_int_equal(sisy_client_send(c, &g, NULL), SISY_OK);
	}
	sisy_req d = {.op = SISY_OP_DEL, .key = S("pipe:k")};
	sisy_req g = {.op = SISY_OP_GET, .key = S("pipe:k")};
	assert_int_equal(sisy_client_send(c, &d, NULL), SISY_OK);
	assert_int_equal(sisy_client_send(c, &g, NULL), SISY_OK);
	assert_int_equal(sisy_client_inflight(c), (size_t)(2 * n + 2));
	uint64_t last_version = 0;
	for (int i = 0; i < n; i++) {
		sisy_reply *r;
		assert_int_equal(sisy_client_recv(c, &r), SISY_OK);
		assert_int_equal(r->op, SISY_OP_PUT);
		assert_int_equal(r->err, SISY_OK);
		assert_true(r->version > last_version);
		last_version = r->version;
		sisy_reply_free(r);
		assert_int_equal(sisy_client_recv(c, &r), SISY_OK);
		assert_int_equal(r->op, SISY_OP_GET);
		assert_true(r->found);
		snprintf(val, sizeof val, "v%d", i);
		assert_true(sisy_slice_eq(r->value, S(val)));
		sisy_reply_free(r);
	}
	sisy_reply *r;
	assert_int_equal(sisy_client_recv(c, &r), SISY_OK);
	assert_true(r->existed);
	sisy_reply_free(r);
	assert_int_equal(sisy_client_recv(c, &r), SISY_OK);
	assert_false(r->found);
	sisy_reply_free(r);
	assert_int_equal(sisy_client_inflight(c), 0);
}

/* Every protocol version: 3 (the default where the CPU has AES-NI: frames
 * sealed with AES-256-GCM), 2 (requests and replies travel in batches,
 * here more than SISY_BATCH_MAX_MSGS deep, so over several frames each
 * way) and 1 (a client built before batches: one message a frame), agreed
 * by both ends. */
static void test_pipelining_in_order(void **state)
{
	(void)state;
	for (uint32_t v = sisy_proto_version_max(); v >= 1; v--) {
		sisy_client_opts o;
		sisy_client *c = NULL;
		opts(&o, "admin", "s3cret");
		o.max_version = v;
		assert_int_equal(sisy_client_connect(&o, &c), SISY_OK);
		sisy_client_info ci;
		sisy_client_get_info(c, &ci);
		assert_int_equal(ci.version, v);
		assert_int_equal(info_value(c, "server.protocol"), v);
		pipeline_in_order(c, v >= 2 ? 1500 : 300);
		sisy_client_close(c);
	}
}

typedef struct scan_acc {
	int n;
	char last[64];
	bool sorted;
} scan_acc;

static bool acc(void *ctx, const sisy_kv *kv)
{
	scan_acc *a = ctx;
	char k[64];
	snprintf(k, sizeof k, "%.*s", (int)kv->key.len, kv->key.data);
	if (a->n && strcmp(a->last, k) >= 0)
		a->sorted = false;
	snprintf(a->last, sizeof a->last, "%s", k);
	a->n++;
	return true;
}

static void test_scan_pages(void **state)
{
	(void)state;
	sisy_client *c = connect_as("admin", "s3cret");
	char k[32];
	for (int i = 0; i < 50; i++) {
		snprintf(k, sizeof k, "scan:%03d", i);
		sisy_req p = {.op = SISY_OP_PUT, .key = S(k), .value = S(k)};
		assert_int_equal(sisy_client_send(c, &p, NULL), SISY_OK);
	}
	for (int i = 0; i < 50; i++) {
		sisy_reply *r;
		assert_int_equal(sisy_client_recv(c, &r), SISY_OK);
		assert_int_equal(r->err, SISY_OK);
		sisy_reply_free(r);
	}
	sisy_client_put(c, S("scam"), S("before"), NULL, NULL);
	sisy_client_put(c, S("scao"), S("after"), NULL, NULL);
	/* One page is at most the server's page size (7 here). */
	sisy_req q = {.op = SISY_OP_SCAN, .prefix = S("scan:")};
	sisy_reply *r;
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_int_equal(r->nentries, 7);
	assert_true(r->more);
	assert_true(sisy_slice_eq(r->resume_after, S("scan:006")));
	sisy_reply_free(r);
	/* The helper pages through all of it, in order, prefix only. */
	scan_acc a = {.sorted = true};
	assert_int_equal(sisy_client_scan(c, &q, 0, acc, &a), SISY_OK);
	assert_int_equal(a.n, 50);
	assert_true(a.sorted);
	/* A total limit bounds it. */
	a = (scan_acc){.sorted = true};
	assert_int_equal(sisy_client_scan(c, &q, 20, acc, &a), SISY_OK);
	assert_int_equal(a.n, 20);
	assert_string_equal(a.last, "scan:019");
	/* Range [from, to). */
	q = (sisy_req){.op = SISY_OP_SCAN,
		       .scan_kind = SISY_SCAN_RANGE,
		       .from = S("scan:010"),
		       .to = S("scan:020")};
	a = (scan_acc){.sorted = true};
	assert_int_equal(sisy_client_scan(c, &q, 0, acc, &a), SISY_OK);
	assert_int_equal(a.n, 10);
	assert_string_equal(a.last, "scan:019");
	sisy_client_close(c);
}

static bool yes(void *ctx, const char *host, const char *fpr)
{
	(void)ctx;
	(void)host;
	return strncmp(fpr, "BLAKE2b:", 8) == 0;
}

static void test_auth_and_trust(void **state)
{
	(void)state;
	sisy_client_opts o;
	sisy_client *c = NULL;
	char msg_wrong[256], msg_unknown[256];
	opts(&o, "admin", "wrong");
	assert_int_equal(sisy_client_connect(&o, &c), SISY_E_AUTH);
	snprintf(msg_wrong, sizeof msg_wrong, "%s", sisy_errmsg());
	opts(&o, "nobody", "wrong");
	assert_int_equal(sisy_client_connect(&o, &c), SISY_E_AUTH);
	snprintf(msg_unknown, sizeof msg_unknown, "%s", sisy_errmsg());
	/* Nothing but the name differs between the two answers. */
	char *p = strstr(msg_wrong, "admin");
	assert_non_null(p);
	memmove(p + 6, p + 5, strlen(p + 5) + 1);
	memcpy(p, "nobody", 6);
	assert_string_equal(msg_wrong, msg_unknown);

	/* A different pinned key: changed. */
	uint8_t pk[SISY_SIGN_PK], sk[SISY_SIGN_SK];
	char b64[SISY_KEY_B64_LEN];
	crypto_sign_keypair(pk, sk);
	sisy_trust_b64(pk, sizeof pk, b64, sizeof b64);
	opts(&o, "admin", "s3cret");
	o.server_key = b64;
	assert_int_equal(sisy_client_connect(&o, &c), SISY_E_KEYCHANGED);
	/* No key given, empty known_servers, no terminal: untrusted. */
	opts(&o, "admin", "s3cret");
	o.server_key = NULL;
	o.known_servers = F.known;
	assert_int_equal(sisy_client_connect(&o, &c), SISY_E_UNTRUSTED);
	/* known_servers pins this host to another key: changed. */
	assert_int_equal(sisy_trust_known_add(F.known, F.host, pk), SISY_OK);
	assert_int_equal(sisy_client_connect(&o, &c), SISY_E_KEYCHANGED);
	remove(F.known);
	/* Trust on first use: the callback says yes, the key is pinned. */
	o.confirm = yes;
	assert_int_equal(sisy_client_connect(&o, &c), SISY_OK);
	sisy_client_close(c);
	o.confirm = NULL;
	assert_int_equal(sisy_client_connect(&o, &c), SISY_OK);
	sisy_client_close(c);
}

static void test_roles_and_users(void **state)
{
	(void)state;
	sisy_client *adm = connect_as("admin", "s3cret");
	sisy_req q = {.op = SISY_OP_USER_ADD,
		      .user = "reader",
		      .password = "r-pass",
		      .role = SISY_ROLE_READONLY};
	sisy_reply *r;
	assert_int_equal(sisy_client_call(adm, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_OK);
	sisy_reply_free(r);
	assert_int_equal(sisy_client_call(adm, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_E_EXISTS);
	sisy_reply_free(r);

	sisy_client *rd = connect_as("reader", "r-pass");
	bool found;
	assert_int_equal(sisy_client_get(rd, S("x"), NULL, &found, NULL),
			 SISY_OK);
	assert_int_equal(sisy_client_put(rd, S("x"), S("y"), NULL, NULL),
			 SISY_E_PERM);
	q = (sisy_req){.op = SISY_OP_USER_LIST};
	assert_int_equal(sisy_client_call(rd, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_E_PERM);
	sisy_reply_free(r);
	q = (sisy_req){.op = SISY_OP_USER_DEL, .user = "admin"};
	assert_int_equal(sisy_client_call(rd, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_E_PERM);
	sisy_reply_free(r);

	/* The admin lists users. */
	q = (sisy_req){.op = SISY_OP_USER_LIST};
	assert_int_equal(sisy_client_call(adm, &q, &r), SISY_OK);
	assert_int_equal(r->nentries, 2);
	assert_true(sisy_slice_eq(r->entries[1].key, S("reader")));
	assert_true(sisy_slice_eq(r->entries[1].value, S("readonly")));
	sisy_reply_free(r);

	/* Changing the role ends the user's sessions. */
	q = (sisy_req){.op = SISY_OP_USER_ROLE,
		       .user = "reader",
		       .role = SISY_ROLE_READWRITE};
	assert_int_equal(sisy_client_call(adm, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_OK);
	sisy_reply_free(r);
	sisy_err rc = sisy_client_ping(rd);
	assert_true(rc == SISY_E_CLOSED || rc == SISY_E_CONN);
	sisy_client_close(rd);

	/* With the new role, writes work; the user changes its password. */
	rd = connect_as("reader", "r-pass");
	assert_int_equal(sisy_client_put(rd, S("x"), S("y"), NULL, NULL),
			 SISY_OK);
	q = (sisy_req){.op = SISY_OP_USER_PASSWORD, .password = "r-pass-2"};
	assert_int_equal(sisy_client_call(rd, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_OK);
	sisy_reply_free(r);
	/* ...but not someone else's. */
	q = (sisy_req){
	    .op = SISY_OP_USER_PASSWORD, .user = "admin", .password = "x"};
	assert_int_equal(sisy_client_call(rd, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_E_PERM);
	sisy_reply_free(r);
	sisy_client_opts o;
	sisy_client *c2 = NULL;
	opts(&o, "reader", "r-pass");
	assert_int_equal(sisy_client_connect(&o, &c2), SISY_E_AUTH);
	sisy_client *rd2 = connect_as("reader", "r-pass-2");
	sisy_client_close(rd2);

	/* Deleting the user ends its session and its logins. */
	q = (sisy_req){.op = SISY_OP_USER_DEL, .user = "reader"};
	assert_int_equal(sisy_client_call(adm, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_OK);
	sisy_reply_free(r);
	rc = sisy_client_ping(rd);
	assert_true(rc == SISY_E_CLOSED || rc == SISY_E_CONN);
	sisy_client_close(rd);
	opts(&o, "reader", "r-pass-2");
	assert_int_equal(sisy_client_connect(&o, &c2), SISY_E_AUTH);
	/* The last admin cannot be removed or demoted. */
	q = (sisy_req){.op = SISY_OP_USER_DEL, .user = "admin"};
	assert_int_equal(sisy_client_call(adm, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_E_PERM);
	sisy_reply_free(r);
	q = (sisy_req){.op = SISY_OP_USER_ROLE,
		       .user = "admin",
		       .role = SISY_ROLE_READONLY};
	assert_int_equal(sisy_client_call(adm, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_E_PERM);
	sisy_reply_free(r);
	sisy_client_close(adm);
}

static void test_restart_keeps_data_and_versions(void **state)
{
	(void)state;
	sisy_client *c = connect_as("admin", "s3cret");
	uint64_t v = 0, v2 = 0, got = 0;
	assert_int_equal(sisy_client_put(c, S("persist"), S("yes"), NULL, &v),
			 SISY_OK);
	sisy_client_close(c);
	stop();
	start();
	c = connect_as("admin", "s3cret");
	sisy_buf val = {0};
	bool found = false;
	assert_int_equal(sisy_client_get(c, S("persist"), &val, &found, &got),
			 SISY_OK);
	assert_true(found);
	assert_int_equal(got, v);
	assert_int_equal(sisy_client_put(c, S("persist2"), S("x"), NULL, &v2),
			 SISY_OK);
	assert_true(v2 > v);
	sisy_buf_free(&val);
	sisy_client_close(c);
}

/* Thousands of sessions at once, each with bounded memory: all logged in
 * (one Argon2id, then the cached key), all answered, then all gone. */
static void test_many_sessions(void **state)
{
	(void)state;
	enum { N = 1500 };
	sisy_client **cs = calloc(N, sizeof *cs);
	assert_non_null(cs);
	for (int i = 0; i < N; i++)
		cs[i] = connect_as("admin", "s3cret");
	for (int i = 0; i < N; i++) {
		sisy_req q = {.op = SISY_OP_PING};
		assert_int_equal(sisy_client_send(cs[i], &q, NULL), SISY_OK);
		assert_int_equal(sisy_client_flush(cs[i]), SISY_OK);
	}
	for (int i = 0; i < N; i++) {
		sisy_reply *r;
		assert_int_equal(sisy_client_recv(cs[i], &r), SISY_OK);
		assert_int_equal(r->err, SISY_OK);
		sisy_reply_free(r);
	}
	sisy_client *c = cs[0];
	sisy_req q = {.op = SISY_OP_INFO, .info_section = "clients"};
	sisy_reply *r;
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	bool seen = false;
	for (size_t i = 0; i < r->nentries; i++)
		if (sisy_slice_eq(r->entries[i].key,
				  S("clients.connections"))) {
			char v[32];
			snprintf(v, sizeof v, "%.*s",
				 (int)r->entries[i].value.len,
				 r->entries[i].value.data);
			assert_true(atoi(v) >= N);
			seen = true;
		}
	assert_true(seen);
	sisy_reply_free(r);
	for (int i = 0; i < N; i++)
		sisy_client_close(cs[i]);
	free(cs);
}

typedef struct bad_login {
	sisy_err rc;
	uint64_t ms;
	volatile int finished;
} bad_login;

static void *try_bad_login(void *arg)
{
	bad_login *b = arg;
	sisy_client_opts o;
	sisy_client *c = NULL;
	opts(&o, "admin", "not-the-password");
	o.passfile = NULL; /* derive, do not consult the cache */
	uint64_t t0 = sisy_now_ms();
	b->rc = sisy_client_connect(&o, &c);
	b->ms = sisy_now_ms() - t0;
	__atomic_store_n(&b->finished, 1, __ATOMIC_RELEASE);
	sisy_client_close(c);
	return NULL;
}

static uint64_t info_value(sisy_client *c, const char *key)
{
	sisy_req q = {.op = SISY_OP_INFO};
	sisy_reply *r;
	uint64_t v = 0;
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	for (size_t i = 0; i < r->nentries; i++)
		if (sisy_slice_eq(r->entries[i].key, S(key))) {
			char b[32];
			snprintf(b, sizeof b, "%.*s",
				 (int)r->entries[i].value.len,
				 r->entries[i].value.data);
			v = strtoull(b, NULL, 10);
		}
	sisy_reply_free(r);
	return v;
}

/* INFO's engine section follows the engine: written keys are in a memtable,
 * and the rows describe every level. */
static void test_info_engine_section(void **state)
{
	(void)state;
	sisy_client *c = connect_as("admin", "s3cret");
	uint64_t v;
	for (int i = 0; i < 50; i++) {
		char k[16];
		snprintf(k, sizeof k, "eng%02d", i);
		assert_int_equal(sisy_client_put(c, S(k), S("v"), NULL, &v),
				 SISY_OK);
	}
	assert_true(info_value(c, "engine.memtable_bytes") > 0);
	sisy_req q = {.op = SISY_OP_INFO, .info_section = "engine"};
	sisy_reply *r;
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	bool levels = false;
	assert_true(r->nentries >= 10);
	for (size_t i = 0; i < r->nentries; i++) {
		sisy_slice k = r->entries[i].key;
		assert_true(k.len > 7 && memcmp(k.data, "engine.", 7) == 0);
		if (sisy_slice_eq(k, S("engine.files_per_level"))) {
			/* seven levels, comma-separated */
			size_t commas = 0;
			for (size_t j = 0; j < r->entries[i].value.len; j++)
				commas += r->entries[i].value.data[j] == ',';
			assert_int_equal(commas, 6);
			levels = true;
		}
	}
	assert_true(levels);
	sisy_reply_free(r);
	sisy_client_close(c);
}

/* A failed login's answer is delayed by the rate limiter; a right one,
 * from the same address for the same user, meanwhile is not. */
static void test_failed_logins_delayed_valid_not(void **state)
{
	(void)state;
	stop();
	F.cfg.auth_free_failures = 0;
	F.cfg.auth_delay_ms = 3000;
	F.cfg.auth_delay_max_ms = 3000;
	start();
	sisy_client *adm = connect_as("admin", "s3cret");
	uint64_t failures0 = info_value(adm, "clients.login_failures");
	bad_login b = {0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, try_bad_login, &b), 0);
	/* Wait (bounded) until the server has judged the wrong proof. */
	for (int i = 0;
	     i < 3000 && info_value(adm, "clients.login_failures") == failures0;
	     i++)
		usleep(10000);
	assert_true(info_value(adm, "clients.login_failures") > failures0);
	/* Its answer is held back; a right login goes through meanwhile. */
	sisy_client *ok = connect_as("admin", "s3cret");
	assert_int_equal(sisy_client_ping(ok), SISY_OK);
	assert_false(__atomic_load_n(&b.finished, __ATOMIC_ACQUIRE));
	pthread_join(th, NULL);
	assert_int_equal(b.rc, SISY_E_AUTH);
	assert_true(b.ms >= 3000); /* the penalty, a lower bound */
	sisy_client_close(ok);
	sisy_client_close(adm);
	stop();
	F.cfg.auth_free_failures = 100;
	start();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trips),
	    cmocka_unit_test(test_conditions_and_batches),
	    cmocka_unit_test(test_pipelining_in_order),
	    cmocka_unit_test(test_scan_pages),
	    cmocka_unit_test(test_auth_and_trust),
	    cmocka_unit_test(test_roles_and_users),
	    cmocka_unit_test(test_many_sessions),
	    cmocka_unit_test(test_failed_logins_delayed_valid_not),
	    cmocka_unit_test(test_info_engine_section),
	    cmocka_unit_test(test_restart_keeps_data_and_versions),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
