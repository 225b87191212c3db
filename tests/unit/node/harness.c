/* harness.c — the in-process cluster of harness.h. */
#include "harness.h"

#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "clock.h"

static void on_send(void *ctx, uint64_t to, const uint8_t *frame, size_t len)
{
	tnode *t = ctx;
	tc *c = t->c;
	tframe *f = calloc(1, sizeof *f);
	assert_non_null(f);
	f->data = malloc(len);
	assert_non_null(f->data);
	memcpy(f->data, frame, len);
	f->len = len;
	f->from = t->slot;
	f->to = to;
	if (c->tail)
		c->tail->next = f;
	else
		c->head = f;
	c->tail = f;
}

static void on_user(void *ctx, const char *user)
{
	tnode *t = ctx;
	t->user_events++;
	snprintf(t->last_user_event, sizeof t->last_user_event, "%s", user);
}

void tc_verifier(sisy_auth_verifier *v, uint8_t seed)
{
	memset(v, 0, sizeof *v);
	memset(v->salt, seed, sizeof v->salt);
	memset(v->pk, seed + 1, sizeof v->pk);
	v->opslimit = SISY_AUTH_OPS_MIN;
	v->memlimit = SISY_AUTH_MEM_MIN;
}

void tc_init(tc *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->root, sizeof c->root, "/tmp/sisy-node-test-XXXXXX");
	assert_non_null(mkdtemp(c->root));
	for (int i = 0; i < SISY_NODE_CLUSTER_ID; i++)
		c->cluster_id[i] = (uint8_t)(0xc0 + i);
	c->tick_ms = 15;
	sisy_node_opts_default(&c->opts);
	c->opts.election_ticks = 10;
	c->opts.heartbeat_ticks = 1;
	c->opts.flush_ticks = 20;
	c->last_tick_ms = sisy_now_ms();
}

int tc_slot_of(tc *c, uint64_t id)
{
	for (int i = 0; i < c->nslots; i++)
		if (c->n[i].id == id)
			return i;
	return -1;
}

static tnode *new_slot(tc *c, uint64_t id)
{
	bool fault = c->fault_next;
	c->fault_next = false;
	assert_true(c->nslots < TC_MAX);
	tnode *t = &c->n[c->nslots];
	memset(t, 0, sizeof *t);
	t->c = c;
	t->slot = c->nslots++;
	t->id = id;
	snprintf(t->dir, sizeof t->dir, "%s/n%d", c->root, t->slot);
	snprintf(t->addr, sizeof t->addr, "127.0.0.1:%d", 7400 + t->slot);
	for (int i = 0; i < SISY_NODE_KEY; i++)
		t->key[i] = (uint8_t)(t->slot * 31 + i + 1);
	if (fault) {
		t->ff = sisy_fs_fault_new(1000 + (uint64_t)t->slot);
		t->fs = sisy_fs_fault_fs(t->ff);
		snprintf(t->dir, sizeof t->dir, "/n%d", t->slot);
	} else {
		t->fs = sisy_fs_posix();
	}
	return t;
}

void tc_open(tc *c, int slot)
{
	tnode *t = &c->n[slot];
	sisy_node_opts o = c->opts;
	o.fs = t->fs;
	o.dir = t->dir;
	o.send = on_send;
	o.send_ctx = t;
	o.on_user_change = on_user;
	o.user_ctx = t;
	o.rand_seed = 77 + (uint64_t)slot;
	sisy_err rc = sisy_node_open(&o, &t->node);
	if (rc != SISY_OK)
		fail_msg("open node %d: %s", slot, sisy_errmsg());
	t->up = true;
	t->failed = false;
}

void tc_close(tc *c, int slot)
{
	tnode *t = &c->n[slot];
	if (!t->up)
		return;
	t->up = false;
	sisy_node_close(t->node);
	t->node = NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tc_free(tc *c)
{
	for (int i = 0; i < c->nslots; i++) {
		tc_close(c, i);
		if (c->n[i].ff)
			sisy_fs_fault_free(c->n[i].ff);
	}
	while (c->head) {
		tframe *f = c->head;
		c->head = f->next;
		free(f->data);
		free(f);
	}
	nftw(c->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- the loop
 * ---------------------------------------------------------------- */

static void stream_snapshot(tc *c, tnode *from, sisy_node_snap_out *s)
{
	int to = tc_slot_of(c, sisy_node_snap_out_to(s));
	sisy_buf f = {0};
	bool last = false;
	sisy_err rc = SISY_E_CONN;
	sisy_node_snap_in *in = NULL;
	if (to < 0 || !c->n[to].up || c->cut[from->slot][to])
		goto out;
	tnode *t = &c->n[to];
	rc = sisy_node_snap_out_frame(s, 4096, &f, &last);
	if (rc == SISY_OK)
		rc = sisy_node_snap_in_begin(t->node, f.data, f.len, &in);
	bool complete = false;
	while (rc == SISY_OK && !last) {
		rc = sisy_node_snap_out_frame(s, 4096, &f, &last);
		if (rc == SISY_OK)
			rc = sisy_node_snap_in_frame(in, f.data, f.len,
						     &complete);
	}
	if (rc == SISY_OK && !complete)
		rc = SISY_E_PROTO;
	if (rc == SISY_OK) {
		rc = sisy_node_snap_in_install(t->node, in);
		in = NULL;
		c->snapshots_streamed++;
	}
	if (in)
		sisy_node_snap_in_abort(t->node, in);
out:
	sisy_node_snap_out_done(from->node, s,
				rc == SISY_E_STALE ? SISY_OK : rc);
	sisy_buf_free(&f);
}

static bool deliver(tc *c)
{
	tframe *f = c->head;
	bool any = f != NULL;
	c->head = c->tail = NULL;
	while (f) {
		tframe *next = f->next;
		int to = tc_slot_of(c, f->to);
		if (to >= 0 && c->n[to].up && !c->cut[f->from][to] &&
		    c->n[f->from].up) {
			sisy_err rc =
			    sisy_node_step(c->n[to].node, f->data, f->len);
			if (rc == SISY_E_PERM)
				c->refused++;
		} else if (c->n[f->from].up) {
			/* As a server whose connection broke would. */
			sisy_node_report_unreachable(c->n[f->from].node, f->to);
		}
		free(f->data);
		free(f);
		f = next;
	}
	return any;
}

static void process_all(tc *c)
{
	for (int i = 0; i < c->nslots; i++)
		if (c->n[i].up &&
		    sisy_node_process(c->n[i].node) == SISY_E_FAILED)
			c->n[i].failed = true;
}

void tc_pump(tc *c)
{
	process_all(c);
	bool busy = deliver(c);
	for (int i = 0; i < c->nslots; i++) {
		sisy_node_snap_out *s;
		while (c->n[i].up &&
		       (s = sisy_node_snap_out_next(c->n[i].node)) != NULL) {
			stream_snapshot(c, &c->n[i], s);
			busy = true;
		}
	}
	uint64_t now = sisy_now_ms();
	if (now - c->last_tick_ms > 10 * c->tick_ms)
		c->last_tick_ms = now - c->tick_ms; /* no tick storms */
	while (now - c->last_tick_ms >= c->tick_ms) {
		c->last_tick_ms += c->tick_ms;
		for (int i = 0; i < c->nslots; i++)
			if (c->n[i].up)
				sisy_node_tick(c->n[i].node);
		busy = true;
	}
	process_all(c);
	if (busy || c->head)
		return;
	struct pollfd p[2 * TC_MAX];
	int np = 0;
	for (int i = 0; i < c->nslots; i++)
		if (c->n[i].up) {
			p[np++] = (struct pollfd){
			    sisy_node_log_fd(c->n[i].node), POLLIN, 0};
			p[np++] = (struct pollfd){
			    sisy_node_apply_fd(c->n[i].node), POLLIN, 0};
		}
	poll(p, (nfds_t)np, 2);
}

void tc_dump(tc *c)
{
	for (int i = 0; i < c->nslots; i++) {
		sisy_node_status st;
		if (!c->n[i].up ||
		    sisy_node_status_get(c->n[i].node, 1, &st) != SISY_OK)
			continue;
		fprintf(stderr,
			"slot %d id %" PRIu64 " role %u term %" PRIu64
			" leader %" PRIu64 " commit %" PRIu64
			" applied %" PRIu64 " last %" PRIu64 " members %zu%s\n",
			i, st.id, st.role, st.term, st.leader, st.commit,
			st.applied, st.last_index, st.n_members,
			st.removed ? " removed" : "");
		for (size_t k = 0; k < st.n_members; k++)
			fprintf(stderr,
				"   member %" PRIu64 " %s match %" PRIu64 "\n",
				st.members[k].id,
				st.members[k].voter ? "voter" : "learner",
				st.members[k].match);
	}
}

bool tc_wait(tc *c, bool (*pred)(tc *, void *), void *arg, unsigned ms)
{
	uint64_t end = sisy_now_ms() + ms;
	while (!pred(c, arg)) {
		if (sisy_now_ms() > end) {
			tc_dump(c);
			return false;
		}
		tc_pump(c);
	}
	return true;
}

int tc_leader(tc *c)
{
	int best = -1;
	uint64_t term = 0;
	for (int i = 0; i < c->nslots; i++) {
		sisy_node_status st;
		if (!c->n[i].up ||
		    sisy_node_status_get(c->n[i].node, 1, &st) != SISY_OK)
			continue;
		if (st.role == 3 && st.term >= term) {
			best = i;
			term = st.term;
		}
	}
	return best;
}

static bool has_leader(tc *c, void *arg)
{
	(void)arg;
	return tc_leader(c) >= 0;
}

int tc_wait_leader(tc *c)
{
	if (!tc_wait(c, has_leader, NULL, TC_WAIT_MS))
		fail_msg("no leader elected");
	return tc_leader(c);
}

/* ---- requests
 * ------------------------------------------------------------------- */

static void write_cb(void *ctx, sisy_err status, const sisy_node_result *res)
{
	twrite *w = ctx;
	w->done = true;
	w->status = status;
	if (res)
		w->res = *res;
}

static bool write_done(tc *c, void *arg)
{
	(void)c;
	return ((twrite *)arg)->done;
}

sisy_err tc_propose(tc *c, int slot, const sisy_node_cmd *cmd, twrite *w)
{
	memset(w, 0, sizeof *w);
	sisy_err rc = sisy_node_propose(c->n[slot].node, 1, cmd, write_cb, w);
	if (rc != SISY_OK)
		return rc;
	if (!tc_wait(c, write_done, w, TC_WAIT_MS))
		fail_msg("a write was never answered");
	return SISY_OK;
}

sisy_err tc_put(tc *c, const char *key, const char *val, uint64_t client,
		uint64_t seq, sisy_node_result *res)
{
	sisy_node_op op = {.key = sisy_slice_str(key),
			   .value = sisy_slice_str(val)};
	sisy_node_cmd cmd = {.kind = SISY_NODE_CMD_KV,
			     .client_id = client,
			     .seq = seq,
			     .lowest_unanswered = seq,
			     .user = "admin",
			     .ops = &op,
			     .nops = 1};
	uint64_t end = sisy_now_ms() + TC_WAIT_MS;
	for (;;) {
		twrite w;
		int l = tc_leader(c);
		sisy_err rc =
		    l < 0 ? SISY_E_NOLEADER : tc_propose(c, l, &cmd, &w);
		if (rc == SISY_OK && w.status == SISY_OK) {
			if (res)
				*res = w.res;
			return w.res.status;
		}
		if (rc == SISY_OK)
			rc = w.status; /* outcome unknown: retry, same seq */
		if (sisy_now_ms() > end)
			fail_msg("put %s: %s", key, sisy_errname(rc));
		tc_pump(c);
	}
}

static void read_cb(void *ctx, sisy_err status)
{
	twrite *w = ctx;
	w->done = true;
	w->status = status;
}

sisy_err tc_barrier(tc *c, int slot)
{
	uint64_t end = sisy_now_ms() + TC_WAIT_MS;
	for (;;) {
		twrite w = {0};
		sisy_err rc =
		    sisy_node_read_index(c->n[slot].node, 1, read_cb, &w);
		if (rc == SISY_OK) {
			if (!tc_wait(c, write_done, &w, TC_WAIT_MS))
				fail_msg("a read barrier was never answered");
			rc = w.status;
		}
		/* As a server would: wait a bounded time for a leader. */
		if (rc != SISY_E_NOLEADER || sisy_now_ms() > end)
			return rc;
		tc_pump(c);
	}
}

bool tc_get(tc *c, int slot, const char *key, char *val, size_t cap,
	    uint64_t *version)
{
	sisy_buf v = {0};
	bool found = false;
	uint64_t ver = 0;
	sisy_err rc = sisy_node_get(c->n[slot].node, 1, sisy_slice_str(key),
				    &found, &ver, &v);
	assert_int_equal(rc, SISY_OK);
	snprintf(val, cap, "%.*s", (int)v.len, v.data ? (char *)v.data : "");
	if (version)
		*version = ver;
	sisy_buf_free(&v);
	return found;
}

/* ---- membership
 * ----------------------------------------------------------------- */

typedef struct voter_wait {
	uint64_t id;
} voter_wait;

/* Every running node has the promotion in its log (and so counts the
 * new node as a voter). */
static bool is_voter(tc *c, void *arg)
{
	voter_wait *vw = arg;
	for (int k = 0; k < c->nslots; k++) {
		sisy_node_status st;
		bool voter = false;
		if (!c->n[k].up)
			continue;
		if (sisy_node_status_get(c->n[k].node, 1, &st) != SISY_OK)
			return false;
		for (size_t i = 0; i < st.n_members; i++)
			if (st.members[i].id == vw->id)
				voter = st.members[i].voter;
		if (!voter)
			return false;
	}
	return true;
}

/* Proposes cmd at the current leader, retrying while the cluster is busy
 * (apply backpressure) or between leaders, until TC_WAIT_MS passes. */
static void propose_until_ok(tc *c, const sisy_node_cmd *cmd, twrite *w)
{
	uint64_t end = sisy_now_ms() + TC_WAIT_MS;
	for (;;) {
		int l = tc_wait_leader(c);
		sisy_err rc = tc_propose(c, l, cmd, w);
		if (rc == SISY_OK)
			return;
		if (rc != SISY_E_BUSY && rc != SISY_E_NOTLEADER &&
		    rc != SISY_E_NOLEADER)
			fail_msg("propose: %s", sisy_errname(rc));
		if (sisy_now_ms() > end)
			fail_msg("propose: still %s", sisy_errname(rc));
		tc_pump(c);
	}
}

int tc_join(tc *c, bool wait_voter)
{
	twrite w;
	int l;
	sisy_node_cmd cmd = {.kind = SISY_NODE_CMD_TOKEN_NEW, .user = "admin"};
	tnode *t = new_slot(c, 0);
	sisy_node_token_random(cmd.token);
	cmd.address = t->addr;
	propose_until_ok(c, &cmd, &w);
	assert_int_equal(w.status, SISY_OK);
	assert_int_equal(w.res.status, SISY_OK);
	t->id = w.res.node_id;
	assert_true(t->id > 1);
	sisy_node_init in = {.node_id = t->id, .address = t->addr};
	memcpy(in.cluster_id, c->cluster_id, sizeof in.cluster_id);
	memcpy(in.node_key, t->key, sizeof in.node_key);
	assert_int_equal(sisy_node_init_joined(t->fs, t->dir, &in), SISY_OK);
	tc_open(c, t->slot);
	/* The join: the token is claimed through the log, then the node is
	 * added as a learner with the key it proved. */
	cmd.kind = SISY_NODE_CMD_TOKEN_CLAIM;
	cmd.user = NULL;
	memcpy(cmd.node_key, t->key, SISY_NODE_KEY);
	propose_until_ok(c, &cmd, &w);
	assert_int_equal(w.status, SISY_OK);
	assert_int_equal(w.res.status, SISY_OK);
	assert_int_equal(w.res.node_id, t->id);
	l = tc_wait_leader(c);
	memset(&w, 0, sizeof w);
	sisy_err rc;
	uint64_t end = sisy_now_ms() + TC_WAIT_MS;
	while ((rc = sisy_node_change(c->n[l].node, 1, SISY_NODE_ADD_LEARNER,
				      t->id, t->addr, t->key, write_cb, &w)) ==
	       SISY_E_CONFLICT) {
		assert_true(sisy_now_ms() < end);
		tc_pump(c);
	}
	assert_int_equal(rc, SISY_OK);
	assert_true(tc_wait(c, write_done, &w, TC_WAIT_MS));
	assert_int_equal(w.status, SISY_OK);
	if (wait_voter) {
		voter_wait vw = {t->id};
		if (!tc_wait(c, is_voter, &vw, TC_WAIT_MS))
			fail_msg("node %" PRIu64 " was never promoted", t->id);
	}
	return t->slot;
}

void tc_start(tc *c, int n)
{
	tnode *t = new_slot(c, 1);
	sisy_node_init in = {
	    .node_id = 1, .address = t->addr, .admin_user = "admin"};
	memcpy(in.cluster_id, c->cluster_id, sizeof in.cluster_id);
	memcpy(in.node_key, t->key, sizeof in.node_key);
	tc_verifier(&in.admin_verifier, 9);
	assert_int_equal(sisy_node_bootstrap(t->fs, t->dir, &in), SISY_OK);
	tc_open(c, 0);
	tc_wait_leader(c);
	for (int i = 1; i < n; i++)
		tc_join(c, true);
}
