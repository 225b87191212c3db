/* test_node_sm.c — the replicated state machine (sm.c, sm_meta.c) driven
 * directly with log entries, on an in-memory file system: versions are
 * indexes, conditions decided at apply (also within one batch), the
 * exactly-once client table (duplicates, stale, window, trimming, expiry
 * and eviction by log position, surviving a restart; the newest result in
 * the client's header, one header write per batch, headers of the older
 * layout), users and roles,
 * join tokens, the membership record, replay idempotence.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coding.h"
#include "fs_fault.h"
#include "node_int.h"
#include "rand.h"

typedef struct fx {
	sisy_fs_fault *ff;
	sisy_fs *fs;
	node_sm sm;
	node_users *users;
	node_sm_cfg cfg;
	uint64_t index;
	sisy_buf events;
} fx;

static void fx_open(fx *f)
{
	assert_int_equal(
	    node_sm_open(&f->sm, f->fs, "/g1", &f->cfg, NULL, f->users),
	    SISY_OK);
}

static int setup(void **state)
{
	fx *f = calloc(1, sizeof *f);
	f->ff = sisy_fs_fault_new(3);
	f->fs = sisy_fs_fault_fs(f->ff);
	f->users = node_users_new();
	f->cfg = (node_sm_cfg){.self = 1,
			       .group = SISY_NODE_META_GROUP,
			       .client_expire_entries = 1000000,
			       .client_window = 64,
			       .max_clients = 1000,
			       .token_expire_entries = 1000};
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	node_sm_close(&f->sm);
	node_users_free(f->users);
	sisy_fs_fault_free(f->ff);
	sisy_buf_free(&f->events);
	free(f);
	return 0;
}

/* Applies commands as consecutive entries in ONE apply call. */
static void apply_n(fx *f, const sisy_node_cmd *c, size_t n, node_applied *out)
{
	sisy_buf b[256];
	sisy_raft_entry e[256];
	size_t nout = 0;
	assert_true(n <= 256);
	for (size_t i = 0; i < n; i++) {
		memset(&b[i], 0, sizeof b[i]);
		assert_int_equal(node_cmd_encode(&c[i], &b[i]), SISY_OK);
		e[i] = (sisy_raft_entry){.term = 1,
					 .index = ++f->index,
					 .type = SISY_RAFT_ENTRY_NORMAL,
					 .data = b[i].data,
					 .len = b[i].len};
	}
	assert_int_equal(node_sm_apply(&f->sm, e, n, out, &nout, &f->events, 0),
			 SISY_OK);
	assert_int_equal(nout, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(out[i].index, e[i].index);
		assert_int_equal(out[i].term, e[i].term);
		assert_int_equal(out[i].client_id, c[i].client_id);
		assert_int_equal(out[i].seq, c[i].seq);
		sisy_buf_free(&b[i]);
	}
}

static sisy_node_result apply1(fx *f, const sisy_node_cmd *c)
{
	node_applied a;
	apply_n(f, c, 1, &a);
	return a.res;
}

static void noops(fx *f, uint64_t n)
{
	sisy_raft_entry *e = calloc(n, sizeof *e);
	size_t nout;
	for (uint64_t i = 0; i < n; i++)
		e[i] = (sisy_raft_entry){.term = 1,
					 .index = ++f->index,
					 .type = SISY_RAFT_ENTRY_NOOP};
	assert_int_equal(
	    node_sm_apply(&f->sm, e, n, NULL, &nout, &f->events, 0), SISY_OK);
	assert_int_equal(nout, 0);
	free(e);
}

static void init_cluster(fx *f)
{
	sisy_node_init in = {.node_id = 1, .admin_user = "admin"};
	memset(in.cluster_id, 3, sizeof in.cluster_id);
	in.admin_verifier.opslimit = SISY_AUTH_OPS_MIN;
	in.admin_verifier.memlimit = SISY_AUTH_MEM_MIN;
	sisy_buf b = {0};
	node_applied a;
	size_t nout;
	assert_int_equal(node_cmd_encode_init(&in, &b), SISY_OK);
	sisy_raft_entry e = {
	    .term = 1, .index = ++f->index, .data = b.data, .len = b.len};
	assert_int_equal(node_sm_apply(&f->sm, &e, 1, &a, &nout, &f->events, 0),
			 SISY_OK);
	assert_int_equal(a.res.status, SISY_OK);
	sisy_buf_free(&b);
}

static sisy_node_cmd put(sisy_node_op *op, const char *k, const char *v,
			 uint64_t client, uint64_t seq)
{
	*op = (sisy_node_op){.key = sisy_slice_str(k),
			     .value = sisy_slice_str(v)};
	return (sisy_node_cmd){.kind = SISY_NODE_CMD_KV,
			       .client_id = client,
			       .seq = seq,
			       .lowest_unanswered = seq,
			       .ops = op,
			       .nops = 1};
}

static uint64_t version_of(fx *f, const char *key)
{
	sisy_buf k = {0}, v = {0};
	sisy_buf_append_u8(&k, NS_DATA);
	sisy_buf_append(&k, key, strlen(key));
	sisy_err rc = sisy_lsm_get(f->sm.db, NULL, k.data, k.len, &v);
	uint64_t ver = rc == SISY_OK && v.len >= 8 ? sisy_get_u64(v.data) : 0;
	sisy_buf_free(&k);
	sisy_buf_free(&v);
	return ver;
}

/* A key's version is the index of its entry; a condition sees the earlier
 * commands of the same batch. */
static void test_versions_and_conditions(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	sisy_node_op o[3];
	sisy_node_cmd c[3];
	node_applied a[3];
	c[0] = put(&o[0], "k", "1", 0, 0);
	c[1] = put(&o[1], "k", "2", 0, 0);
	o[1].cond = SISY_NODE_COND_VERSION;
	o[1].cond_version = f->index + 1; /* c[0]'s index */
	c[2] = put(&o[2], "k", "3", 0, 0);
	o[2].cond = SISY_NODE_COND_ABSENT;
	apply_n(f, c, 3, a);
	assert_int_equal(a[0].res.status, SISY_OK);
	assert_int_equal(a[1].res.status, SISY_OK);
	assert_int_equal(a[1].res.index, a[0].index + 1);
	assert_int_equal(a[2].res.status, SISY_E_CONFLICT);
	assert_int_equal(a[2].res.current_version, a[1].index);
	assert_int_equal(version_of(f, "k"), a[1].index);
	assert_int_equal(f->sm.applied, a[2].index);
}

/* Exactly once: a duplicate gets the first answer and changes nothing; a
 * sequence below the reported lowest is stale; the window is bounded. */
static void test_exactly_once(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	sisy_node_op o[2];
	sisy_node_cmd c[2];
	node_applied a[2];
	c[0] = put(&o[0], "x", "first", 9, 3);
	o[0].cond = SISY_NODE_COND_ABSENT;
	c[1] = c[0]; /* retried within the same batch */
	apply_n(f, c, 2, a);
	assert_int_equal(a[0].res.status, SISY_OK);
	assert_false(a[0].res.duplicate);
	assert_int_equal(a[1].res.status, SISY_OK);
	assert_true(a[1].res.duplicate);
	assert_int_equal(a[1].res.index, a[0].index);
	/* And in a later batch: still the first answer, not CONFLICT. */
	sisy_node_result r = apply1(f, &c[0]);
	assert_true(r.duplicate);
	assert_int_equal(r.status, SISY_OK);
	assert_int_equal(r.index, a[0].index);
	assert_int_equal(version_of(f, "x"), a[0].index);
	/* seq 4 says 4 is the lowest unanswered: 3 is forgotten. */
	c[1] = put(&o[1], "y", "v", 9, 4);
	assert_int_equal(apply1(f, &c[1]).status, SISY_OK);
	r = apply1(f, &c[0]);
	assert_int_equal(r.status, SISY_E_STALE);
	assert_int_equal(version_of(f, "x"), a[0].index);
	/* The window: at most client_window sequences past the lowest. */
	c[1] = put(&o[1], "z", "v", 9, 4 + 64);
	c[1].lowest_unanswered = 4;
	assert_int_equal(apply1(f, &c[1]).status, SISY_E_BUSY);
	c[1].seq = 4 + 63;
	assert_int_equal(apply1(f, &c[1]).status, SISY_OK);
	/* Results survive a restart (flushed by close: the WAL is off). */
	node_sm_close(&f->sm);
	fx_open(f);
	c[1] = put(&o[1], "y", "v", 9, 4);
	r = apply1(f, &c[1]);
	assert_true(r.duplicate);
	assert_int_equal(f->sm.clients.n, 1);
}

/* Clients idle for client_expire_entries entries are dropped at an index
 * divisible by NODE_EXPIRE_EVERY (the same point on every replica); the
 * least recently active is evicted when the table is full. */
static void test_client_expiry_and_eviction(void **state)
{
	fx *f = *state;
	f->cfg.client_expire_entries = 1500;
	f->cfg.max_clients = 3;
	fx_open(f);
	init_cluster(f);
	sisy_node_op o;
	sisy_node_cmd c = put(&o, "a", "1", 100, 1);
	assert_int_equal(apply1(f, &c).status, SISY_OK);
	c = put(&o, "b", "1", 200, 1);
	assert_int_equal(apply1(f, &c).status, SISY_OK);
	noops(f, NODE_EXPIRE_EVERY * 2 - f->index - 1);
	assert_int_equal(f->sm.clients.n, 2);
	/* Keep 200 alive; the next checkpoint drops only 100. */
	c = put(&o, "b", "2", 200, 2);
	assert_int_equal(apply1(f, &c).status, SISY_OK);
	noops(f, NODE_EXPIRE_EVERY * 3 - f->index);
	assert_null(node_clients_find(&f->sm.clients, 100));
	assert_non_null(node_clients_find(&f->sm.clients, 200));
	/* A retry from the expired client is new to the table now. */
	c = put(&o, "a", "1", 100, 1);
	assert_false(apply1(f, &c).duplicate);
	/* Full table: the least recently active (200) goes. */
	c = put(&o, "c", "1", 300, 1);
	assert_int_equal(apply1(f, &c).status, SISY_OK);
	c = put(&o, "d", "1", 400, 1);
	assert_int_equal(apply1(f, &c).status, SISY_OK);
	assert_int_equal(f->sm.clients.n, 3);
	assert_null(node_clients_find(&f->sm.clients, 200));
	node_sm_close(&f->sm);
	fx_open(f);
	assert_int_equal(f->sm.clients.n, 3);
	assert_null(node_clients_find(&f->sm.clients, 200));
}

/* Expiry work per checkpoint is bounded (20000 engine operations); the
 * least recently active go first, the rest at the next checkpoint. */
static void test_expiry_is_bounded(void **state)
{
	fx *f = *state;
	f->cfg.client_expire_entries = 2000;
	f->cfg.client_window = 8192;
	fx_open(f);
	init_cluster(f);
	/* Five clients with 4000 unanswered results each (cost 4001 each),
	 * interleaved so that they all expire at the same checkpoint. */
	sisy_node_op o[15];
	sisy_node_cmd c[15];
	node_applied a[15];
	for (uint64_t seq = 1; seq <= 4000; seq += 3) {
		size_t k = 0;
		for (uint64_t s2 = seq; s2 < seq + 3 && s2 <= 4000; s2++)
			for (uint64_t id = 1; id <= 5; id++, k++) {
				c[k] = put(&o[k], "k", "v", id, s2);
				c[k].lowest_unanswered = 1;
			}
		apply_n(f, c, k, a);
	}
	assert_int_equal(f->sm.clients.n, 5);
	uint64_t cp = (f->index + 2000) / NODE_EXPIRE_EVERY + 1;
	noops(f, cp * NODE_EXPIRE_EVERY - f->index);
	assert_int_equal(f->sm.clients.n, 1);
	assert_non_null(node_clients_find(&f->sm.clients, 5));
	noops(f, NODE_EXPIRE_EVERY);
	assert_int_equal(f->sm.clients.n, 0);
}

static sisy_node_result user(fx *f, uint8_t kind, const char *as,
			     const char *name, sisy_role role)
{
	sisy_node_cmd c = {
	    .kind = kind, .user = as, .name = name, .role = role};
	c.verifier.opslimit = SISY_AUTH_OPS_MIN;
	c.verifier.memlimit = SISY_AUTH_MEM_MIN;
	return apply1(f, &c);
}

/* Roles checked at apply follow a role change inside the same apply
 * call: writes of one user before and after it, in one batch of entries. */
static void test_role_change_within_one_apply(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_ADD, "admin", "w", SISY_ROLE_READWRITE)
		.status,
	    SISY_OK);
	sisy_node_op o[6];
	sisy_node_cmd c[6];
	node_applied a[6];
	c[0] = put(&o[0], "a", "1", 0, 0);
	c[0].user = "w";
	c[1] = c[0];
	c[2] = (sisy_node_cmd){.kind = SISY_NODE_CMD_USER_ROLE,
			       .user = "admin",
			       .name = "w",
			       .role = SISY_ROLE_READONLY};
	c[3] = put(&o[3], "b", "1", 0, 0);
	c[3].user = "w";
	c[4] = put(&o[4], "c", "1", 0, 0);
	c[4].user = "admin";
	c[5] = c[3];
	apply_n(f, c, 6, a);
	assert_int_equal(a[0].res.status, SISY_OK);
	assert_int_equal(a[1].res.status, SISY_OK);
	assert_int_equal(a[2].res.status, SISY_OK);
	assert_int_equal(a[3].res.status, SISY_E_PERM);
	assert_int_equal(a[4].res.status, SISY_OK);
	assert_int_equal(a[5].res.status, SISY_E_PERM);
	assert_int_equal(version_of(f, "b"), 0);
}

static void test_users_and_roles(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	assert_int_equal(node_users_count(f->users), 1);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_ADD, "admin", "ro", SISY_ROLE_READONLY)
		.status,
	    SISY_OK);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_ADD, "admin", "ro", SISY_ROLE_READONLY)
		.status,
	    SISY_E_EXISTS);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_ADD, "admin", "bad name", 1).status,
	    SISY_E_INVAL);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_ADD, "ro", "x", SISY_ROLE_ADMIN).status,
	    SISY_E_PERM);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_ADD, "ghost", "x", SISY_ROLE_ADMIN)
		.status,
	    SISY_E_PERM);
	/* Own password: allowed for anyone; someone else's: admin only. */
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_PASSWORD, "ro", "ro", 0).status,
	    SISY_OK);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_PASSWORD, "ro", "admin", 0).status,
	    SISY_E_PERM);
	/* A read-only user cannot write. */
	sisy_node_op o;
	sisy_node_cmd c = put(&o, "k", "v", 0, 0);
	c.user = "ro";
	assert_int_equal(apply1(f, &c).status, SISY_E_PERM);
	c.user = "admin";
	assert_int_equal(apply1(f, &c).status, SISY_OK);
	/* The last admin stays; role changes and deletions are events. */
	assert_int_equal(user(f, SISY_NODE_CMD_USER_ROLE, "admin", "admin",
			      SISY_ROLE_READWRITE)
			     .status,
			 SISY_E_PERM);
	sisy_buf_clear(&f->events);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_ROLE, "admin", "ro", SISY_ROLE_READWRITE)
		.status,
	    SISY_OK);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_DEL, "admin", "ro", 0).status, SISY_OK);
	assert_int_equal(f->events.len, 6);
	assert_memory_equal(f->events.data, "ro\0ro\0", 6);
	assert_int_equal(
	    user(f, SISY_NODE_CMD_USER_DEL, "admin", "ro", 0).status,
	    SISY_E_NOTFOUND);
	/* The table is rebuilt from the engine on open. */
	node_sm_close(&f->sm);
	node_users_clear(f->users);
	fx_open(f);
	assert_int_equal(node_users_count(f->users), 1);
	assert_true(node_users_get(f->users, "admin", NULL));
}

static sisy_node_result token(fx *f, uint8_t kind, uint8_t secret,
			      uint8_t keybyte)
{
	sisy_node_cmd c = {.kind = kind, .user = "admin", .address = "h:1"};
	memset(c.token, secret, sizeof c.token);
	memset(c.node_key, keybyte, sizeof c.node_key);
	return apply1(f, &c);
}

/* Node ids come from the replicated counter; a token is claimed once, by
 * one key, within its lifetime in log entries. */
static void test_join_tokens(void **state)
{
	fx *f = *state;
	fx_open(f);
	assert_int_equal(token(f, SISY_NODE_CMD_TOKEN_NEW, 1, 0).status,
			 SISY_E_INVAL); /* no cluster record yet */
	init_cluster(f);
	sisy_node_result r1 = token(f, SISY_NODE_CMD_TOKEN_NEW, 1, 0);
	sisy_node_result r2 = token(f, SISY_NODE_CMD_TOKEN_NEW, 2, 0);
	assert_int_equal(r1.status, SISY_OK);
	assert_int_equal(r1.node_id, 2);
	assert_int_equal(r2.node_id, 3);
	assert_int_equal(token(f, SISY_NODE_CMD_TOKEN_NEW, 1, 0).status,
			 SISY_E_EXISTS);
	sisy_node_result c = token(f, SISY_NODE_CMD_TOKEN_CLAIM, 1, 0xaa);
	assert_int_equal(c.status, SISY_OK);
	assert_int_equal(c.node_id, 2);
	/* The same node asking again is answered the same; another is not. */
	assert_int_equal(token(f, SISY_NODE_CMD_TOKEN_CLAIM, 1, 0xaa).status,
			 SISY_OK);
	assert_int_equal(token(f, SISY_NODE_CMD_TOKEN_CLAIM, 1, 0xbb).status,
			 SISY_E_PERM);
	assert_int_equal(token(f, SISY_NODE_CMD_TOKEN_CLAIM, 9, 0xbb).status,
			 SISY_E_NOTFOUND);
	noops(f, 1001);
	assert_int_equal(token(f, SISY_NODE_CMD_TOKEN_CLAIM, 2, 0xcc).status,
			 SISY_E_PERM); /* expired */
	/* The counter is replicated state: it survives a restart. */
	node_sm_close(&f->sm);
	fx_open(f);
	assert_int_equal(token(f, SISY_NODE_CMD_TOKEN_NEW, 3, 0).node_id, 4);
}

static void conf(fx *f, uint8_t type, uint64_t id, const char *addr,
		 uint8_t keyb, const sisy_raft_membership *after)
{
	uint8_t key[SISY_NODE_KEY];
	sisy_buf ctx = {0}, data = {0};
	memset(key, keyb, sizeof key);
	if (addr)
		assert_int_equal(node_conf_ctx_encode(addr, key, &ctx),
				 SISY_OK);
	sisy_raft_conf_change cc = {
	    .type = type, .node_id = id, .ctx = sisy_buf_slice(&ctx)};
	assert_int_equal(sisy_raft_conf_encode(&cc, after, &data), SISY_OK);
	sisy_raft_entry e = {.term = 1,
			     .index = ++f->index,
			     .type = SISY_RAFT_ENTRY_CONFIG,
			     .data = data.data,
			     .len = data.len};
	node_applied a;
	size_t nout;
	assert_int_equal(node_sm_apply(&f->sm, &e, 1, &a, &nout, &f->events, 0),
			 SISY_OK);
	assert_int_equal(nout, 1);
	assert_int_equal(a.res.node_id, id);
	sisy_buf_free(&ctx);
	sisy_buf_free(&data);
}

/* The membership record follows config entries: addresses and keys from
 * the change's context, kept across promotions, dropped on removal. */
static void test_membership_record(void **state)
{
	fx *f = *state;
	fx_open(f);
	sisy_raft_membership m = {.n_voters = 1, .voters = {1}};
	conf(f, SISY_RAFT_CONF_ADD_VOTER, 1, "a:1", 1, &m);
	m.n_learners = 1;
	m.learners[0] = 2;
	conf(f, SISY_RAFT_CONF_ADD_LEARNER, 2, "b:2", 2, &m);
	m = (sisy_raft_membership){.n_voters = 2, .voters = {1, 2}};
	conf(f, SISY_RAFT_CONF_ADD_VOTER, 2, NULL, 0, &m);
	assert_int_equal(f->sm.members.n, 2);
	assert_int_equal(f->sm.members.m[1].id, 2);
	assert_true(f->sm.members.m[1].voter);
	assert_string_equal(f->sm.members.m[1].address, "b:2");
	assert_int_equal(f->sm.members.m[1].key[0], 2);
	m = (sisy_raft_membership){.n_voters = 1, .voters = {2}};
	conf(f, SISY_RAFT_CONF_REMOVE, 1, NULL, 0, &m);
	node_sm_close(&f->sm);
	fx_open(f);
	assert_int_equal(f->sm.members.n, 1);
	assert_int_equal(f->sm.members.m[0].id, 2);
	assert_string_equal(f->sm.members.m[0].address, "b:2");
}

/* Entries at or below the applied index (a replay after a restart or a
 * snapshot) are skipped: no result, no change. */
/* Engine records of one namespace (and the total size of their values). */
static size_t count_ns(fx *f, uint8_t ns, size_t *vbytes)
{
	sisy_lsm_iter *it = sisy_lsm_iter_new(f->sm.db, NULL);
	size_t n = 0;
	if (vbytes)
		*vbytes = 0;
	assert_non_null(it);
	for (sisy_lsm_iter_seek(it, &ns, 1); sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = sisy_lsm_iter_key(it, &kl);
		(void)sisy_lsm_iter_value(it, &vl);
		if (k[0] != ns)
			break;
		n++;
		if (vbytes)
			*vbytes += vl;
	}
	assert_int_equal(sisy_lsm_iter_status(it), SISY_OK);
	sisy_lsm_iter_free(it);
	return n;
}

/* A client that waits for each answer: the newest result lives in the
 * client's header, no result record is written (nor deleted), and a retry
 * of the last command still gets its first answer, after a restart too. */
static void test_exactly_once_header_result(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	sisy_node_op o;
	sisy_node_cmd c;
	sisy_node_result r;
	uint64_t last = 0;
	for (uint64_t seq = 1; seq <= 50; seq++) {
		c = put(&o, "k", "v", 7, seq);
		r = apply1(f, &c);
		assert_int_equal(r.status, SISY_OK);
		assert_false(r.duplicate);
		last = r.index;
	}
	size_t vb;
	assert_int_equal(count_ns(f, NS_RESULT, NULL), 0);
	assert_int_equal(count_ns(f, NS_CLIENT, &vb), 1);
	/* v3 header: 24 bytes, tag, r_end 0, count 1, one short result
	 * (distance 0, status, index back 0) */
	assert_int_equal(vb, NODE_CLIENT_REC + 3 + 3);
	node_sm_close(&f->sm);
	fx_open(f);
	r = apply1(f, &c);
	assert_true(r.duplicate);
	assert_int_equal(r.status, SISY_OK);
	assert_int_equal(r.index, last);
	assert_int_equal(version_of(f, "k"), last);
	c = put(&o, "k", "v", 7, 49);
	assert_int_equal(apply1(f, &c).status, SISY_E_STALE);
	/* A conditional write's refusal is a result like any other. */
	c = put(&o, "k", "w", 7, 51);
	o.cond = SISY_NODE_COND_ABSENT;
	r = apply1(f, &c);
	assert_int_equal(r.status, SISY_E_CONFLICT);
	assert_int_equal(r.current_version, last);
	o.cond = SISY_NODE_COND_NONE; /* the retry carries the same command */
	r = apply1(f, &c);
	assert_true(r.duplicate);
	assert_int_equal(r.status, SISY_E_CONFLICT);
	assert_int_equal(r.current_version, last);
}

/* A pipelining client (lowest stays behind): every result in the window
 * answers its retries with the first answer, whether it was written in the
 * same batch or an earlier one, and across a restart; all of them live in
 * the header (40 < NODE_INLINE); results below a new lowest are gone. */
static void test_exactly_once_pipelined(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	sisy_node_op o[16];
	sisy_node_cmd c[16];
	node_applied a[16];
	uint64_t idx[41] = {0};
	/* seqs 1..40 in batches of 8, lowest 1; each batch ends with a retry
	 * of its first command */
	for (uint64_t seq = 1; seq <= 40; seq += 8) {
		for (size_t i = 0; i < 8; i++) {
			c[i] = put(&o[i], "p", "v", 11, seq + i);
			c[i].lowest_unanswered = 1;
		}
		c[8] = c[0];
		apply_n(f, c, 9, a);
		for (size_t i = 0; i < 8; i++) {
			assert_int_equal(a[i].res.status, SISY_OK);
			assert_false(a[i].res.duplicate);
			idx[seq + i] = a[i].index;
		}
		assert_true(a[8].res.duplicate);
		assert_int_equal(a[8].res.index, idx[seq]);
	}
	/* 1..40 in the header: one header write per batch is all that
	 * reaches the engine of it */
	assert_int_equal(count_ns(f, NS_RESULT, NULL), 0);
	assert_int_equal(count_ns(f, NS_CLIENT, NULL), 1);
	for (int restart = 0; restart < 2; restart++) {
		for (uint64_t seq = 1; seq <= 40; seq++) {
			c[0] = put(&o[0], "p", "v", 11, seq);
			c[0].lowest_unanswered = 1;
			sisy_node_result r = apply1(f, &c[0]);
			assert_true(r.duplicate);
			assert_int_equal(r.index, idx[seq]);
		}
		node_sm_close(&f->sm);
		fx_open(f);
	}
	/* lowest moves to 30 with seq 41: 1..29 are gone (STALE, deleted) */
	c[0] = put(&o[0], "p", "v", 11, 41);
	c[0].lowest_unanswered = 30;
	assert_int_equal(apply1(f, &c[0]).status, SISY_OK);
	assert_int_equal(count_ns(f, NS_RESULT, NULL), 0);
	assert_int_equal(node_clients_find(&f->sm.clients, 11)->ninl, 41 - 29);
	c[0] = put(&o[0], "p", "v", 11, 29);
	assert_int_equal(apply1(f, &c[0]).status, SISY_E_STALE);
	c[0] = put(&o[0], "p", "v", 11, 30);
	c[0].lowest_unanswered = 30;
	sisy_node_result r = apply1(f, &c[0]);
	assert_true(r.duplicate);
	assert_int_equal(r.index, idx[30]);
}

/* Writes a client of an older layout straight into the engine, then
 * reopens the state machine on it: 'r' records for seqs [from, to] (OK,
 * index 100 + seq) and the header record hdr. */
static void reopen_with_old_client(fx *f, uint64_t id, uint64_t from,
				   uint64_t to, const uint8_t *hdr, size_t len)
{
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	assert_non_null(b);
	uint8_t k[17] = {NS_RESULT}, r[NODE_RESULT_LEN];
	for (int i = 0; i < 8; i++)
		k[1 + i] = (uint8_t)(id >> (56 - 8 * i));
	for (uint64_t seq = from; seq <= to; seq++) {
		sisy_node_result res = {.status = SISY_OK, .index = 100 + seq};
		for (int i = 0; i < 8; i++)
			k[9 + i] = (uint8_t)(seq >> (56 - 8 * i));
		node_result_encode(&res, r);
		assert_int_equal(
		    sisy_lsm_batch_put(b, k, sizeof k, r, sizeof r), SISY_OK);
	}
	k[0] = NS_CLIENT;
	assert_int_equal(sisy_lsm_batch_put(b, k, 9, hdr, len), SISY_OK);
	assert_int_equal(sisy_lsm_write(f->sm.db, b, 0), SISY_OK);
	sisy_lsm_batch_free(b);
	node_sm_close(&f->sm);
	fx_open(f);
}

/* A table written before results moved into the header (24-byte headers,
 * every result a record) is read as it is: retries get their answers,
 * and the client goes on with the new layout. */
static void test_exactly_once_old_headers(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	uint8_t v[NODE_CLIENT_REC];
	sisy_put_u64(v, 5);
	sisy_put_u64(v + 8, 6);
	sisy_put_u64(v + 16, f->index);
	reopen_with_old_client(f, 21, 5, 6, v, sizeof v);
	sisy_node_op o;
	sisy_node_cmd c = put(&o, "q", "v", 21, 6);
	c.lowest_unanswered = 5;
	sisy_node_result res = apply1(f, &c);
	assert_true(res.duplicate);
	assert_int_equal(res.index, 106);
	c = put(&o, "q", "v", 21, 7);
	c.lowest_unanswered = 6;
	assert_false(apply1(f, &c).duplicate);
	c = put(&o, "q", "v", 21, 6);
	c.lowest_unanswered = 6;
	res = apply1(f, &c);
	assert_true(res.duplicate);
	assert_int_equal(res.index, 106);
	assert_int_equal(count_ns(f, NS_RESULT, NULL), 1); /* 5 trimmed */
	c = put(&o, "q", "v", 21, 5);
	assert_int_equal(apply1(f, &c).status, SISY_E_STALE);
}

/* A client pipelining deeper than NODE_INLINE: the oldest results spill
 * to 'r' records (and only those the client may still retry), every retry
 * gets its first answer, in the batch and after a restart, and a rising
 * lowest deletes the spilled records. */
static void test_exactly_once_deep_pipeline(void **state)
{
	fx *f = *state;
	f->cfg.client_window = 4096;
	fx_open(f);
	init_cluster(f);
	enum { DEPTH = NODE_INLINE + 40 };
	static sisy_node_op o[DEPTH + 1];
	static sisy_node_cmd c[DEPTH + 1];
	static node_applied a[DEPTH + 1];
	uint64_t idx[DEPTH + 1] = {0};
	for (size_t i = 0; i < DEPTH; i++) {
		c[i] = put(&o[i], "d", "v", 12, i + 1);
		c[i].lowest_unanswered = 1;
	}
	c[DEPTH] = c[0]; /* a retry of a spilled one in the same batch */
	apply_n(f, c, DEPTH + 1, a);
	for (size_t i = 0; i < DEPTH; i++) {
		assert_int_equal(a[i].res.status, SISY_OK);
		assert_false(a[i].res.duplicate);
		idx[i + 1] = a[i].index;
	}
	assert_true(a[DEPTH].res.duplicate);
	assert_int_equal(a[DEPTH].res.index, idx[1]);
	assert_int_equal(count_ns(f, NS_RESULT, NULL), DEPTH - NODE_INLINE);
	for (int restart = 0; restart < 2; restart++) {
		for (uint64_t seq = 1; seq <= DEPTH; seq += 7) {
			c[0] = put(&o[0], "d", "v", 12, seq);
			c[0].lowest_unanswered = 1;
			sisy_node_result r = apply1(f, &c[0]);
			assert_true(r.duplicate);
			assert_int_equal(r.index, idx[seq]);
		}
		node_sm_close(&f->sm);
		fx_open(f);
	}
	/* lowest to 21: spilled 1..20 deleted, 21..40 stay records */
	c[0] = put(&o[0], "d", "v", 12, DEPTH + 1);
	c[0].lowest_unanswered = 21;
	assert_int_equal(apply1(f, &c[0]).status, SISY_OK);
	assert_int_equal(count_ns(f, NS_RESULT, NULL),
			 DEPTH - NODE_INLINE - 19);
	c[0] = put(&o[0], "d", "v", 12, 20);
	assert_int_equal(apply1(f, &c[0]).status, SISY_E_STALE);
	c[0] = put(&o[0], "d", "v", 12, 22);
	c[0].lowest_unanswered = 21;
	assert_int_equal(apply1(f, &c[0]).index, idx[22]);
	/* lowest past every record: all deleted, the rest inline */
	c[0] = put(&o[0], "d", "v", 12, DEPTH + 2);
	c[0].lowest_unanswered = DEPTH;
	assert_int_equal(apply1(f, &c[0]).status, SISY_OK);
	assert_int_equal(count_ns(f, NS_RESULT, NULL), 0);
	assert_int_equal(node_clients_find(&f->sm.clients, 12)->ninl, 3);
}

/* Sequences applied out of order (a proxy's copy overtaken by a retry):
 * one inside the inline span is inserted in order, one below it becomes an
 * 'r' record at once; both answer their retries, across a restart. */
static void test_exactly_once_out_of_order(void **state)
{
	fx *f = *state;
	f->cfg.client_window = 4096;
	fx_open(f);
	init_cluster(f);
	sisy_node_op o;
	sisy_node_cmd c;
	uint64_t top = NODE_INLINE + 10;
	c = put(&o, "o", "v", 13, top);
	c.lowest_unanswered = 1;
	uint64_t i_top = apply1(f, &c).index;
	c = put(&o, "o", "v", 13, top - 3);
	c.lowest_unanswered = 1;
	uint64_t i_in = apply1(f, &c).index;
	c = put(&o, "o", "v", 13, 2);
	c.lowest_unanswered = 1;
	uint64_t i_out = apply1(f, &c).index;
	assert_int_equal(count_ns(f, NS_RESULT, NULL), 1);
	for (int restart = 0; restart < 2; restart++) {
		uint64_t seqs[3] = {top, top - 3, 2},
			 want[3] = {i_top, i_in, i_out};
		for (int i = 0; i < 3; i++) {
			c = put(&o, "o", "v", 13, seqs[i]);
			c.lowest_unanswered = 1;
			sisy_node_result r = apply1(f, &c);
			assert_true(r.duplicate);
			assert_int_equal(r.index, want[i]);
		}
		node_sm_close(&f->sm);
		fx_open(f);
	}
	/* an unrecorded seq in between still applies */
	c = put(&o, "o", "v", 13, top - 1);
	c.lowest_unanswered = 1;
	sisy_node_result r = apply1(f, &c);
	assert_false(r.duplicate);
	assert_int_equal(r.status, SISY_OK);
}

/* Headers of the v2 layout (24 bytes + max_seq's result, the others 'r'
 * records) load: retries of both kinds answer, and the next write turns
 * the header into v3 and trims the records below lowest. */
static void test_exactly_once_v2_headers(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	uint8_t v[NODE_CLIENT_REC_RES];
	sisy_node_result top = {
	    .status = SISY_E_CONFLICT, .index = 106, .current_version = 3};
	sisy_put_u64(v, 4);
	sisy_put_u64(v + 8, 6);
	sisy_put_u64(v + 16, f->index);
	node_result_encode(&top, v + NODE_CLIENT_REC);
	reopen_with_old_client(f, 22, 4, 5, v, sizeof v);
	sisy_node_op o;
	sisy_node_cmd c = put(&o, "q", "v", 22, 6);
	c.lowest_unanswered = 4;
	sisy_node_result res = apply1(f, &c);
	assert_true(res.duplicate);
	assert_int_equal(res.status, SISY_E_CONFLICT);
	assert_int_equal(res.current_version, 3);
	c = put(&o, "q", "v", 22, 4);
	c.lowest_unanswered = 4;
	assert_int_equal(apply1(f, &c).index, 104);
	c = put(&o, "q", "v", 22, 7);
	c.lowest_unanswered = 5;
	assert_false(apply1(f, &c).duplicate);
	assert_int_equal(count_ns(f, NS_RESULT, NULL), 1); /* 4 trimmed */
	node_sm_close(&f->sm);
	fx_open(f);
	for (uint64_t seq = 5; seq <= 6; seq++) {
		c = put(&o, "q", "v", 22, seq);
		c.lowest_unanswered = 5;
		res = apply1(f, &c);
		assert_true(res.duplicate);
		assert_int_equal(res.index, 100 + seq);
	}
	c = put(&o, "q", "v", 22, 4);
	assert_int_equal(apply1(f, &c).status, SISY_E_STALE);
}

static void test_replay_is_skipped(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	sisy_node_op o;
	sisy_node_cmd c = put(&o, "r", "1", 5, 1);
	sisy_buf b = {0};
	assert_int_equal(node_cmd_encode(&c, &b), SISY_OK);
	sisy_raft_entry e = {
	    .term = 1, .index = ++f->index, .data = b.data, .len = b.len};
	node_applied a;
	size_t nout;
	assert_int_equal(node_sm_apply(&f->sm, &e, 1, &a, &nout, &f->events, 0),
			 SISY_OK);
	assert_int_equal(nout, 1);
	uint64_t applied = f->sm.applied;
	assert_int_equal(node_sm_apply(&f->sm, &e, 1, &a, &nout, &f->events, 0),
			 SISY_OK);
	assert_int_equal(nout, 0);
	assert_int_equal(f->sm.applied, applied);
	/* The applied index and its term are in the engine's metadata. */
	uint64_t ai, at;
	assert_int_equal(node_sm_meta(f->sm.db, SISY_LSM_META_LATEST, &ai, &at),
			 SISY_OK);
	assert_int_equal(ai, applied);
	assert_int_equal(at, 1);
	sisy_buf_free(&b);
}

/* Everything in the engine of f, in key order, as | klen | key | vlen |
 * value | records. */
static void dump_engine(fx *f, sisy_buf *out)
{
	sisy_lsm_iter *it = sisy_lsm_iter_new(f->sm.db, NULL);
	assert_non_null(it);
	for (sisy_lsm_iter_seek(it, "", 0); sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = sisy_lsm_iter_key(it, &kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		sisy_buf_append_u32(out, (uint32_t)kl);
		sisy_buf_append(out, k, kl);
		sisy_buf_append_u32(out, (uint32_t)vl);
		sisy_buf_append(out, v, vl);
	}
	assert_int_equal(sisy_lsm_iter_status(it), SISY_OK);
	sisy_lsm_iter_free(it);
}

static fx *fx_new(const node_sm_cfg *cfg, uint64_t seed)
{
	fx *g = calloc(1, sizeof *g);
	g->ff = sisy_fs_fault_new(seed);
	g->fs = sisy_fs_fault_fs(g->ff);
	g->users = node_users_new();
	g->cfg = *cfg;
	fx_open(g);
	init_cluster(g);
	return g;
}

#define DIFF_IDS 400

/* The same random stream of commands applied in batches of up to 256
 * entries (one apply call each) to f and one entry per apply call to g:
 * the same answers and the same engine contents, byte for byte. Clients
 * 1..nids send runs of commands (as pipelining clients do), and runs of
 * two clients often interleave (A, B, A: the client found last before a
 * new one is added, the table grown or a member evicted, and after);
 * retries, stale and out-of-window sequences, conditions and deletes over
 * ten keys. What the apply call keeps across the entries of a batch (the
 * client found last, the overlay, staged results) must change no outcome. */
static void batched_vs_single(fx *f, fx *g, uint64_t nids, uint64_t seed,
			      int rounds)
{
	static const char *keys[10] = {"k0", "k1", "k2", "k3", "k4",
				       "k5", "k6", "k7", "k8", "k9"};
	static uint64_t next[DIFF_IDS + 1], low[DIFF_IDS + 1];
	static sisy_node_op o[256];
	static sisy_node_cmd c[256];
	static node_applied a[256];
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	assert_true(nids <= DIFF_IDS);
	memset(next, 0, sizeof next);
	memset(low, 0, sizeof low);
	size_t seen[SISY_ERR__COUNT] = {0}, dups = 0;
	uint64_t prev[2] = {1, 1};
	for (int round = 0; round < rounds; round++) {
		size_t n = 1 + sisy_rand_below(&r, 256), k = 0;
		while (k < n) {
			uint64_t id = sisy_rand_below(&r, 3) == 0
					  ? prev[0]
					  : 1 + sisy_rand_below(&r, nids);
			size_t run = sisy_rand_below(&r, 2)
					 ? 1
					 : 1 + sisy_rand_below(&r, 20);
			prev[0] = prev[1];
			prev[1] = id;
			for (; run > 0 && k < n; run--, k++) {
				const char *key = keys[sisy_rand_below(&r, 10)];
				uint64_t seq, pick = sisy_rand_below(&r, 10);
				if (pick == 9) { /* ahead: past the window? */
					seq = next[id] + 1 +
					      sisy_rand_below(&r, 80);
				} else if (pick < 7 || next[id] < 2) {
					seq = ++next[id];
					uint64_t back = sisy_rand_below(&r, 40);
					if (seq > back && seq - back > low[id])
						low[id] = seq - back;
				} else { /* a retry, or a stale seq */
					seq = next[id] -
					      sisy_rand_below(&r, next[id] - 1);
				}
				c[k] = put(&o[k], key, keys[k % 10], id, seq);
				c[k].lowest_unanswered = low[id] ? low[id] : 1;
				if (sisy_rand_below(&r, 8) == 0)
					c[k].lowest_unanswered =
					    1 + sisy_rand_below(&r, seq);
				switch (sisy_rand_below(&r, 6)) {
				case 0:
					o[k].del = true;
					break;
				case 1:
					o[k].cond = SISY_NODE_COND_ABSENT;
					break;
				case 2:
					o[k].cond = SISY_NODE_COND_VERSION;
					o[k].cond_version =
					    f->index - sisy_rand_below(&r, 30);
					break;
				}
			}
		}
		apply_n(f, c, n, a);
		for (size_t i = 0; i < n; i++) {
			node_applied one;
			apply_n(g, &c[i], 1, &one);
			assert_int_equal(one.index, a[i].index);
			assert_int_equal(one.res.status, a[i].res.status);
			assert_int_equal(one.res.duplicate, a[i].res.duplicate);
			assert_int_equal(one.res.index, a[i].res.index);
			assert_int_equal(one.res.existed, a[i].res.existed);
			assert_int_equal(one.res.failed_op, a[i].res.failed_op);
			assert_int_equal(one.res.current_version,
					 a[i].res.current_version);
			seen[a[i].res.status]++;
			dups += a[i].res.duplicate;
		}
	}
	/* the stream reached every outcome */
	assert_true(seen[SISY_OK] > 0 && seen[SISY_E_CONFLICT] > 0 &&
		    seen[SISY_E_STALE] > 0 && seen[SISY_E_BUSY] > 0 &&
		    dups > 0);
	assert_int_equal(f->sm.clients.n, g->sm.clients.n);
	sisy_buf df = {0}, dg = {0};
	dump_engine(f, &df);
	dump_engine(g, &dg);
	assert_int_equal(df.len, dg.len);
	assert_memory_equal(df.data, dg.data, df.len);
	sisy_buf_free(&df);
	sisy_buf_free(&dg);
}

/* The engine's user-data records, byte for byte: | NS_DATA | key | ->
 * | index of the last write, u64 LE | value |; a delete removes the key.
 * Values empty, short, and longer than any before (the scratch buffer
 * grows), in one-op and multi-op commands of one batch. */
static void test_engine_records_exact(void **state)
{
	fx *f = *state;
	fx_open(f);
	init_cluster(f);
	static char big[700];
	for (size_t i = 0; i < sizeof big - 1; i++)
		big[i] = (char)('!' + i % 90);
	sisy_node_op o[4],
	    m[3] = {
		{.key = sisy_slice_str("bb"), .value = sisy_slice_make("", 0)},
		{.del = true, .key = sisy_slice_str("a")},
		{.key = sisy_slice_str("ccc"), .value = sisy_slice_str(big)},
	    };
	sisy_node_cmd c[4];
	node_applied a[4];
	c[0] = put(&o[0], "a", "hello", 0, 0);
	c[1] = put(&o[1], "dd", "x", 0, 0);
	c[2] = c[0];
	c[2].ops = m;
	c[2].nops = 3;
	c[3] = put(&o[3], "e", "a value of some length", 0, 0);
	apply_n(f, c, 4, a);
	for (int i = 0; i < 4; i++)
		assert_int_equal(a[i].res.status, SISY_OK);
	struct {
		const char *key, *value;
		uint64_t index;
	} want[] = {{"bb", "", a[2].index},
		    {"ccc", big, a[2].index},
		    {"dd", "x", a[1].index},
		    {"e", "a value of some length", a[3].index}};
	sisy_buf exp = {0}, got = {0};
	for (size_t i = 0; i < 4; i++) {
		size_t kl = strlen(want[i].key), vl = strlen(want[i].value);
		sisy_buf_append_u32(&exp, (uint32_t)(1 + kl));
		sisy_buf_append_u8(&exp, NS_DATA);
		sisy_buf_append(&exp, want[i].key, kl);
		sisy_buf_append_u32(&exp, (uint32_t)(8 + vl));
		for (int b = 0; b < 8; b++)
			sisy_buf_append_u8(&exp,
					   (uint8_t)(want[i].index >> (8 * b)));
		sisy_buf_append(&exp, want[i].value, vl);
	}
	sisy_lsm_iter *it = sisy_lsm_iter_new(f->sm.db, NULL);
	uint8_t ns = NS_DATA;
	for (sisy_lsm_iter_seek(it, &ns, 1); sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = sisy_lsm_iter_key(it, &kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		if (k[0] != NS_DATA)
			break;
		sisy_buf_append_u32(&got, (uint32_t)kl);
		sisy_buf_append(&got, k, kl);
		sisy_buf_append_u32(&got, (uint32_t)vl);
		sisy_buf_append(&got, v, vl);
	}
	sisy_lsm_iter_free(it);
	assert_int_equal(got.len, exp.len);
	assert_memory_equal(got.data, exp.data, exp.len);
	sisy_buf_free(&exp);
	sisy_buf_free(&got);
}

/* The slot id takes in a table holding only it: its home slot. */
static size_t home_slot(uint64_t id)
{
	node_clients t = {0};
	node_client *c = node_clients_add(&t, id);
	size_t h = (size_t)(c - t.slots);
	assert_int_equal(t.cap, 64);
	node_clients_free(&t);
	return h;
}

/* Applies, in ONE apply call: client x (seq s), client y's first command
 * (which evicts or grows the table), x again (s + 1), and a retry of x's
 * s; checks the answers and x's record. */
static void x_y_x(fx *f, uint64_t x, uint64_t y, uint64_t s)
{
	sisy_node_op o[4];
	sisy_node_cmd c[4];
	node_applied a[4];
	c[0] = put(&o[0], "a", "1", x, s);
	c[1] = put(&o[1], "b", "1", y, 1);
	c[2] = put(&o[2], "c", "1", x, s + 1);
	c[3] = c[0];
	for (int i = 0; i < 4; i++)
		c[i].lowest_unanswered = i == 1 ? 1 : s;
	apply_n(f, c, 4, a);
	assert_int_equal(a[0].res.status, SISY_OK);
	assert_false(a[0].res.duplicate);
	assert_int_equal(a[2].res.status, SISY_OK);
	assert_false(a[2].res.duplicate);
	assert_true(a[3].res.duplicate);
	assert_int_equal(a[3].res.index, a[0].index);
	node_client *cx = node_clients_find(&f->sm.clients, x);
	assert_non_null(cx);
	assert_int_equal(cx->max_seq, s + 1);
	assert_int_equal(cx->last_index, a[2].index);
	assert_non_null(node_clients_find(&f->sm.clients, y));
}

/* Within one apply call, the client looked up last is found again while
 * the table has moved no member: here one moves between two commands of
 * the same client, by a backward shift (eviction) and by a grow. */
static void test_client_found_again_after_moves(void **state)
{
	fx *f = *state;
	f->cfg.max_clients = 2;
	fx_open(f);
	init_cluster(f);
	/* e and x share a home slot: e sits there, x right after it. */
	uint64_t e = 1000, x = 1001;
	while (home_slot(x) != home_slot(e))
		x++;
	sisy_node_op o;
	sisy_node_cmd c = put(&o, "e", "1", e, 1);
	assert_int_equal(apply1(f, &c).status, SISY_OK);
	c = put(&o, "x", "1", x, 1);
	assert_int_equal(apply1(f, &c).status, SISY_OK);
	size_t h = home_slot(e);
	assert_ptr_equal(node_clients_find(&f->sm.clients, e),
			 &f->sm.clients.slots[h]);
	assert_ptr_equal(node_clients_find(&f->sm.clients, x),
			 &f->sm.clients.slots[(h + 1) & 63]);
	/* A new client evicts e (the least recently active): x shifts
	 * back into e's slot between its two commands. */
	x_y_x(f, x, 5000, 2);
	assert_null(node_clients_find(&f->sm.clients, e));
	assert_ptr_equal(node_clients_find(&f->sm.clients, x),
			 &f->sm.clients.slots[h]);
	node_sm_close(&f->sm);
	/* 32 clients fill half of 64 slots: the 33rd grows the table. */
	f->cfg.max_clients = 1000;
	fx *g = fx_new(&f->cfg, 9);
	for (uint64_t id = 1; id <= 32; id++) {
		c = put(&o, "k", "v", id, 1);
		assert_int_equal(apply1(g, &c).status, SISY_OK);
	}
	assert_int_equal(g->sm.clients.cap, 64);
	x_y_x(g, 7, 33, 2);
	assert_int_equal(g->sm.clients.cap, 128);
	fx_open(f); /* for teardown */
	teardown((void **)&g);
}

static void test_batched_equals_one_by_one(void **state)
{
	fx *f = *state;
	/* 120 clients over a table of at most 31 (64 slots, half full):
	 * evictions inside batches, backward shifts moving members */
	f->cfg.max_clients = 31;
	fx_open(f);
	init_cluster(f);
	fx *g = fx_new(&f->cfg, 4);
	batched_vs_single(f, g, 120, 77, 40);
	assert_int_equal(f->sm.clients.n, 31);
	assert_int_equal(f->sm.clients.cap, 64);
	teardown((void **)&g);
	/* 400 clients, none evicted: the table grows inside batches */
	node_sm_cfg cfg = f->cfg;
	cfg.max_clients = 1000;
	fx *h = fx_new(&cfg, 5), *i = fx_new(&cfg, 6);
	batched_vs_single(h, i, 400, 78, 40);
	assert_true(h->sm.clients.cap >= 512); /* grown 3 times or more */
	teardown((void **)&h);
	teardown((void **)&i);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_versions_and_conditions, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_exactly_once, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exactly_once_header_result,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exactly_once_pipelined, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_exactly_once_old_headers,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_client_expiry_and_eviction,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_expiry_is_bounded, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_users_and_roles, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_join_tokens, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_membership_record, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_exactly_once_deep_pipeline,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exactly_once_out_of_order,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exactly_once_v2_headers, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_role_change_within_one_apply,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_engine_records_exact, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_client_found_again_after_moves,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_batched_equals_one_by_one,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay_is_skipped, setup,
					    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
