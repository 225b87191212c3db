/* conn.c — the shell's backend over the client library (see conn.h).
 *
 * State: `c` is the live session or NULL after a loss; `client_id` (0
 * until the first connection picks one) and `next_seq` survive reconnects.
 * Every request but the writes is one round trip on the current session;
 * a session error closes it (c = NULL) and is returned, so the shell
 * reports it and calls reconnect() before its next command.
 */
#include "conn.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "limits.h"

typedef struct conn {
	cli_backend base;
	sisy_client_opts opts;
	char hosts[CLI_HOSTS_MAX * (CLI_HOSTNAME_MAX + 9)];
	char user[CLI_USER_MAX + 1];
	char password[CLI_PASSWORD_MAX + 1];
	char server_key[512];
	char passfile[4096];
	sisy_client *c;
	uint64_t client_id;
	uint64_t next_seq;
	unsigned deadline_ms;
	cli_conn_desc desc; /* of the last session, for the prompt */
	/* --pipe: sequence numbers in flight are the client's business;
	 * only their count matters here. */
} conn;

static conn *C(cli_backend *b)
{
	return (conn *)b;
}

static void drop(conn *k)
{
	sisy_client_close(k->c);
	k->c = NULL;
}

static sisy_err connect_now(conn *k)
{
	assert(k->c == NULL);
	k->opts.client_id = k->client_id;
	k->opts.first_seq = k->next_seq;
	sisy_err rc = sisy_client_connect(&k->opts, &k->c);
	if (rc != SISY_OK) {
		k->c = NULL;
		return rc;
	}
	sisy_client_info info;
	sisy_client_get_info(k->c, &info);
	k->client_id = info.client_id;
	snprintf(k->desc.user, sizeof k->desc.user, "%s", info.user);
	snprintf(k->desc.host, sizeof k->desc.host, "%s", info.host);
	snprintf(k->desc.node_role, sizeof k->desc.node_role, "%s",
		 info.node_role ? info.node_role : "");
	snprintf(k->desc.fingerprint, sizeof k->desc.fingerprint, "%s",
		 info.fingerprint ? info.fingerprint : "");
	return SISY_OK;
}

/* Keeps the reply's message for sisy_errmsg(). */
static sisy_err outcome(const sisy_reply *r)
{
	if (r->err == SISY_OK)
		return SISY_OK;
	return sisy_errf(r->err, "%s",
			 r->message[0] ? r->message : sisy_strerror(r->err));
}

/* One round trip of a read (or any request not retried). */
static sisy_err call(conn *k, const sisy_req *q, sisy_reply **r)
{
	*r = NULL;
	if (k->c == NULL)
		return sisy_errf(SISY_E_CONN, "not connected");
	sisy_err rc = sisy_client_call(k->c, q, r);
	if (rc != SISY_OK) {
		sisy_reply_free(*r);
		*r = NULL;
		if (cli_err_is_lost(rc) || rc == SISY_E_NOMEM) {
			char msg[512];
			snprintf(msg, sizeof msg, "%s", sisy_errmsg());
			drop(k);
			rc = sisy_errf(rc, "%s", msg);
		}
		return rc;
	}
	rc = outcome(*r);
	if (rc == SISY_E_CLOSED)
		drop(k); /* the server ended the session after this reply */
	return rc;
}

static bool retryable(sisy_err e)
{
	return e == SISY_E_UNKNOWN_OUTCOME || e == SISY_E_NOLEADER ||
	       e == SISY_E_NOTLEADER || e == SISY_E_BUSY;
}

static void pause_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* A write: numbered once, retried with the same number until a definite
 * answer or the deadline (see conn.h). *r is the definite reply. */
static sisy_err call_write(conn *k, sisy_req *q, sisy_reply **r)
{
	uint64_t deadline = sisy_now_ms() + k->deadline_ms;
	uint64_t backoff = 20;
	bool maybe_applied = false;
	char last[512] = "";
	sisy_err last_rc = SISY_E_CONN;
	*r = NULL;
	if (k->c == NULL)
		return sisy_errf(SISY_E_CONN, "not connected");
	q->seq = k->next_seq++;
	for (;;) {
		sisy_err rc = SISY_OK;
		if (k->c == NULL) {
			rc = connect_now(k);
			if (rc == SISY_E_AUTH || rc == SISY_E_KEYCHANGED ||
			    rc == SISY_E_UNTRUSTED || rc == SISY_E_VERSION) {
				/* No retry can help; if the write went out
				 * before, nobody knows whether it applied. */
				if (maybe_applied)
					break;
				return rc;
			}
		}
		if (rc == SISY_OK) {
			rc = sisy_client_call(k->c, q, r);
			if (rc == SISY_OK) {
				rc = outcome(*r);
				if (!retryable(rc)) {
					if (rc == SISY_E_CLOSED)
						drop(k);
					return rc;
				}
				maybe_applied = maybe_applied ||
						rc == SISY_E_UNKNOWN_OUTCOME;
			} else {
				/* Sent, perhaps; the answer is lost. */
				maybe_applied = true;
				drop(k);
			}
			sisy_reply_free(*r);
			*r = NULL;
		}
		last_rc = rc;
		snprintf(last, sizeof last, "%s", sisy_errmsg());
		uint64_t now = sisy_now_ms();
		if (now + backoff >= deadline)
			break;
		pause_ms(backoff);
		backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
	}
	if (!maybe_applied)
		return sisy_errf(last_rc, "%s (gave up after %u ms)", last,
				 k->deadline_ms);
	return sisy_errf(SISY_E_UNKNOWN_OUTCOME,
			 "the outcome of the write is unknown: it may or may "
			 "not have been applied (retried for %u ms; last: "
			 "%.300s)",
			 k->deadline_ms, last);
}

static sisy_consistency consistency(bool stale)
{
	return stale ? SISY_CONSISTENCY_STALE : SISY_CONSISTENCY_LINEARIZABLE;
}

static sisy_cond cond_of(cli_cond c, uint64_t v)
{
	sisy_cond out = {.kind = c == CLI_COND_VERSION	? SISY_COND_VERSION
				 : c == CLI_COND_ABSENT ? SISY_COND_ABSENT
							: SISY_COND_NONE,
			 .version = v};
	return out;
}

/* --------------------------------------------------------- operations */

static sisy_err k_get(cli_backend *b, sisy_slice key, bool stale, sisy_buf *val,
		      bool *found, uint64_t *version)
{
	sisy_req q = {.op = SISY_OP_GET,
		      .key = key,
		      .consistency = consistency(stale),
		      .with_version = true};
	sisy_reply *r;
	sisy_err rc = call(C(b), &q, &r);
	if (rc == SISY_OK) {
		*found = r->found;
		*version = r->version;
		rc = sisy_buf_set(val, r->value.data, r->value.len);
		if (rc == SISY_OK)
			rc = sisy_buf_reserve(val, 1);
	}
	sisy_reply_free(r);
	return rc;
}

static sisy_err k_write(cli_backend *b, const cli_write *w, uint64_t *version,
			bool *existed)
{
	sisy_req q = {.op = w->del ? SISY_OP_DEL : SISY_OP_PUT,
		      .key = w->key,
		      .value = w->value,
		      .cond = cond_of(w->cond, w->cond_version)};
	sisy_reply *r;
	sisy_err rc = call_write(C(b), &q, &r);
	if (rc == SISY_OK) {
		*version = r->version;
		*existed = r->existed;
	}
	sisy_reply_free(r);
	return rc;
}

static sisy_err k_exists(cli_backend *b, sisy_slice key, bool stale,
			 bool *found)
{
	sisy_req q = {.op = SISY_OP_EXISTS,
		      .key = key,
		      .consistency = consistency(stale)};
	sisy_reply *r;
	sisy_err rc = call(C(b), &q, &r);
	if (rc == SISY_OK)
		*found = r->found;
	sisy_reply_free(r);
	return rc;
}

/* Passes a reply's entries to fn. */
static sisy_err entries(const sisy_reply *r, cli_kv_fn fn, void *ctx)
{
	sisy_err rc = SISY_OK;
	for (size_t i = 0; i < r->nentries && rc == SISY_OK; i++) {
		cli_kv kv = {.key = r->entries[i].key,
			     .value = r->entries[i].value,
			     .version = r->entries[i].version,
			     .found = r->entries[i].found};
		rc = fn(ctx, &kv);
	}
	return rc;
}

static sisy_err k_mget(cli_backend *b, const sisy_slice *keys, size_t n,
		       bool stale, cli_kv_fn fn, void *ctx)
{
	sisy_req q = {.op = SISY_OP_MGET,
		      .keys = keys,
		      .nkeys = n,
		      .consistency = consistency(stale)};
	sisy_reply *r;
	sisy_err rc = call(C(b), &q, &r);
	if (rc == SISY_OK && r->nentries != n)
		rc = sisy_errf(SISY_E_PROTO,
			       "the server answered MGET of %zu keys with %zu",
			       n, r->nentries);
	if (rc == SISY_OK)
		rc = entries(r, fn, ctx);
	sisy_reply_free(r);
	return rc;
}

static sisy_err k_scan_page(cli_backend *b, const cli_scan_page *p,
			    cli_kv_fn fn, void *ctx, bool *more,
			    sisy_buf *resume)
{
	sisy_req q = {.op = SISY_OP_SCAN,
		      .consistency = consistency(p->stale),
		      .scan_kind = p->mode == CLI_SCAN_RANGE ? SISY_SCAN_RANGE
							     : SISY_SCAN_PREFIX,
		      .prefix = p->prefix,
		      .from = p->from,
		      .to = p->to,
		      .limit = p->limit};
	if (p->has_resume)
		q.resume_after = p->resume_after;
	sisy_reply *r;
	sisy_err rc = call(C(b), &q, &r);
	if (rc == SISY_OK)
		rc = entries(r, fn, ctx);
	if (rc == SISY_OK) {
		*more = r->more;
		/* Resume after the last key returned (the server says so
		 * too; the key is what the shell can check). */
		sisy_slice last = r->nentries ? r->entries[r->nentries - 1].key
					      : r->resume_after;
		rc = sisy_buf_set(resume, last.data, last.len);
	}
	sisy_reply_free(r);
	return rc;
}

static sisy_err k_batch(cli_backend *b, const cli_write *ops, size_t n,
			uint64_t *version, size_t *failed_op)
{
	sisy_batch_op *bo = calloc(n, sizeof *bo);
	if (bo == NULL)
		return sisy_errf(SISY_E_NOMEM, "conn.c: out of memory");
	for (size_t i = 0; i < n; i++) {
		bo[i].del = ops[i].del;
		bo[i].key = ops[i].key;
		bo[i].value = ops[i].value;
		bo[i].cond = cond_of(ops[i].cond, ops[i].cond_version);
	}
	sisy_req q = {.op = SISY_OP_BATCH, .ops = bo, .nops = n};
	sisy_reply *r;
	sisy_err rc = call_write(C(b), &q, &r);
	if (r != NULL) {
		*version = r->version;
		*failed_op = r->failed_op;
	}
	sisy_reply_free(r);
	free(bo);
	return rc;
}

/* A request whose reply is a list of key/value entries, each handed to fn. */
static sisy_err call_entries(cli_backend *b, sisy_op op, cli_kv_fn fn,
			     void *ctx)
{
	sisy_req q = {.op = op};
	sisy_reply *r;
	sisy_err rc = call(C(b), &q, &r);
	if (rc == SISY_OK)
		rc = entries(r, fn, ctx);
	sisy_reply_free(r);
	return rc;
}

/* A request whose reply carries nothing but its status. */
static sisy_err call_status(cli_backend *b, const sisy_req *q)
{
	sisy_reply *r;
	sisy_err rc = call(C(b), q, &r);
	sisy_reply_free(r);
	return rc;
}

static sisy_err k_ping(cli_backend *b)
{
	sisy_req q = {.op = SISY_OP_PING};
	return call_status(b, &q);
}

static sisy_err k_info(cli_backend *b, cli_kv_fn fn, void *ctx)
{
	return call_entries(b, SISY_OP_INFO, fn, ctx);
}

static sisy_err k_whoami(cli_backend *b, cli_whoami *out)
{
	sisy_req q = {.op = SISY_OP_WHOAMI};
	sisy_reply *r;
	sisy_err rc = call(C(b), &q, &r);
	if (rc == SISY_OK) {
		snprintf(out->user, sizeof out->user, "%s",
			 r->user ? r->user : "");
		snprintf(out->role, sizeof out->role, "%s",
			 sisy_role_name(r->role));
		out->node_id = r->node_id;
		snprintf(out->node_role, sizeof out->node_role, "%s",
			 r->node_role ? r->node_role : "");
	}
	sisy_reply_free(r);
	return rc;
}

static sisy_role role_of(cli_role r)
{
	return r == CLI_ROLE_READONLY	 ? SISY_ROLE_READONLY
	       : r == CLI_ROLE_READWRITE ? SISY_ROLE_READWRITE
	       : r == CLI_ROLE_ADMIN	 ? SISY_ROLE_ADMIN
					 : SISY_ROLE_NONE;
}

static sisy_err user_write(cli_backend *b, sisy_req *q)
{
	sisy_reply *r;
	sisy_err rc = call_write(C(b), q, &r);
	sisy_reply_free(r);
	return rc;
}

static sisy_err k_user_add(cli_backend *b, const char *name, cli_role role,
			   const char *password)
{
	sisy_req q = {.op = SISY_OP_USER_ADD,
		      .user = name,
		      .role = role_of(role),
		      .password = password};
	return user_write(b, &q);
}

static sisy_err k_user_del(cli_backend *b, const char *name)
{
	sisy_req q = {.op = SISY_OP_USER_DEL, .user = name};
	return user_write(b, &q);
}

static sisy_err k_user_list(cli_backend *b, cli_kv_fn fn, void *ctx)
{
	return call_entries(b, SISY_OP_USER_LIST, fn, ctx);
}

static sisy_err k_user_password(cli_backend *b, const char *name,
				const char *password)
{
	sisy_req q = {
	    .op = SISY_OP_USER_PASSWORD, .user = name, .password = password};
	return user_write(b, &q);
}

static sisy_err k_user_role(cli_backend *b, const char *name, cli_role role)
{
	sisy_req q = {
	    .op = SISY_OP_USER_ROLE, .user = name, .role = role_of(role)};
	return user_write(b, &q);
}

/* CLUSTER requests: the client library offers them (issue 5); a server
 * without them answers UNSUPPORTED. */
static bool k_has_cluster(cli_backend *b)
{
	(void)b;
	return true;
}

static sisy_err k_cluster_info(cli_backend *b, cli_kv_fn fn, void *ctx)
{
	return call_entries(b, SISY_OP_CLUSTER_INFO, fn, ctx);
}

static sisy_err k_cluster_nodes(cli_backend *b, cli_node_fn fn, void *ctx)
{
	sisy_req q = {.op = SISY_OP_CLUSTER_NODES};
	sisy_reply *r;
	sisy_err rc = call(C(b), &q, &r);
	for (size_t i = 0; rc == SISY_OK && i < r->nnodes; i++) {
		const sisy_cluster_node *n = &r->nodes[i];
		cli_node row = {.id = n->id,
				.term = n->term,
				.commit_index = n->commit_index,
				.applied_index = n->applied_index,
				.lag = n->lag};
		snprintf(row.address, sizeof row.address, "%s",
			 n->address ? n->address : "");
		snprintf(row.role, sizeof row.role, "%s",
			 n->role ? n->role : "");
		rc = fn(ctx, &row);
	}
	sisy_reply_free(r);
	return rc;
}

static sisy_err k_cluster_add_node(cli_backend *b, const char *address,
				   sisy_buf *token)
{
	sisy_req q = {.op = SISY_OP_CLUSTER_ADD_NODE, .address = address};
	sisy_reply *r;
	sisy_err rc = call(C(b), &q, &r);
	if (rc == SISY_OK)
		rc = sisy_buf_set(token, r->value.data, r->value.len);
	sisy_reply_free(r);
	return rc;
}

static sisy_err k_cluster_remove_node(cli_backend *b, uint64_t id)
{
	sisy_req q = {.op = SISY_OP_CLUSTER_REMOVE_NODE, .node_id = id};
	return call_status(b, &q);
}

static sisy_err k_cluster_failover(cli_backend *b, bool has_to, uint64_t to)
{
	sisy_req q = {.op = SISY_OP_CLUSTER_FAILOVER,
		      .node_id = has_to ? to : 0};
	return call_status(b, &q);
}

/* --pipe: one attempt each; the shell counts what failed. */
static sisy_err k_pipe_send(cli_backend *b, const cli_write *w)
{
	conn *k = C(b);
	if (k->c == NULL)
		return sisy_errf(SISY_E_CONN, "not connected");
	sisy_req q = {.op = w->del ? SISY_OP_DEL : SISY_OP_PUT,
		      .key = w->key,
		      .value = w->value,
		      .cond = cond_of(w->cond, w->cond_version),
		      .seq = k->next_seq};
	sisy_err rc = sisy_client_send(k->c, &q, NULL);
	if (rc == SISY_OK)
		k->next_seq++;
	else if (cli_err_is_lost(rc))
		drop(k);
	return rc;
}

static sisy_err k_pipe_recv(cli_backend *b, sisy_err *result)
{
	conn *k = C(b);
	sisy_reply *r = NULL;
	if (k->c == NULL)
		return sisy_errf(SISY_E_CONN, "not connected");
	sisy_err rc = sisy_client_recv(k->c, &r);
	if (rc != SISY_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", sisy_errmsg());
		drop(k);
		return sisy_errf(rc, "%s", msg);
	}
	*result = outcome(r);
	if (*result == SISY_E_CLOSED)
		drop(k);
	sisy_reply_free(r);
	return SISY_OK;
}

static size_t k_pipe_inflight(cli_backend *b)
{
	conn *k = C(b);
	return k->c ? sisy_client_inflight(k->c) : 0;
}

static sisy_err k_reconnect(cli_backend *b)
{
	conn *k = C(b);
	drop(k);
	return connect_now(k);
}

static bool k_connected(cli_backend *b)
{
	return C(b)->c != NULL;
}

static void k_describe(cli_backend *b, cli_conn_desc *out)
{
	*out = C(b)->desc;
}

static void k_destroy(cli_backend *b)
{
	conn *k = C(b);
	drop(k);
	explicit_bzero(k->password, sizeof k->password);
	free(k);
}

static const cli_backend_ops conn_ops = {
    .get = k_get,
    .write = k_write,
    .exists = k_exists,
    .mget = k_mget,
    .scan_page = k_scan_page,
    .batch = k_batch,
    .ping = k_ping,
    .info = k_info,
    .whoami = k_whoami,
    .user_add = k_user_add,
    .user_del = k_user_del,
    .user_list = k_user_list,
    .user_password = k_user_password,
    .user_role = k_user_role,
    .has_cluster = k_has_cluster,
    .cluster_info = k_cluster_info,
    .cluster_nodes = k_cluster_nodes,
    .cluster_add_node = k_cluster_add_node,
    .cluster_remove_node = k_cluster_remove_node,
    .cluster_failover = k_cluster_failover,
    .pipe_send = k_pipe_send,
    .pipe_recv = k_pipe_recv,
    .pipe_inflight = k_pipe_inflight,
    .reconnect = k_reconnect,
    .connected = k_connected,
    .describe = k_describe,
    .destroy = k_destroy,
};

/* "h1:p1,[v6]:p2" from the parsed host list. */
static void join_hosts(const cli_conn_params *p, char *out, size_t cap)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < p->nhosts; i++) {
		bool v6 = strchr(p->hosts[i].name, ':') != NULL;
		int n = snprintf(out + len, cap - len, "%s%s%s%s:%u",
				 i ? "," : "", v6 ? "[" : "", p->hosts[i].name,
				 v6 ? "]" : "", p->hosts[i].port);
		assert(n > 0 && (size_t)n < cap - len);
		len += (size_t)n;
	}
}

sisy_err cli_conn_open(const cli_conn_params *p, cli_backend **out)
{
	assert(p->nhosts >= 1 && p->nhosts <= CLI_HOSTS_MAX);
	conn *k = calloc(1, sizeof *k);
	if (k == NULL)
		return sisy_errf(SISY_E_NOMEM, "conn.c: out of memory");
	k->base.ops = &conn_ops;
	k->next_seq = 1;
	k->deadline_ms =
	    p->write_deadline_ms ? p->write_deadline_ms : CLI_WRITE_DEADLINE_MS;
	sisy_client_opts_init(&k->opts);
	/* SISY_SERVER_KEY, SISY_KNOWN_SERVERS, SISY_PASSFILE; the shell has
	 * resolved hosts, port, user and password itself (flags first). */
	sisy_client_opts_env(&k->opts);
	join_hosts(p, k->hosts, sizeof k->hosts);
	snprintf(k->user, sizeof k->user, "%s", p->user);
	k->opts.hosts = k->hosts;
	k->opts.default_port = p->hosts[0].port;
	k->opts.user = k->user;
	k->opts.password = NULL;
	if (p->password != NULL) {
		snprintf(k->password, sizeof k->password, "%s", p->password);
		k->opts.password = k->password;
	}
	if (p->server_key != NULL) {
		snprintf(k->server_key, sizeof k->server_key, "%s",
			 p->server_key);
		k->opts.server_key = k->server_key;
	}
	if (p->passfile_set) {
		k->opts.passfile = NULL;
		if (p->passfile != NULL) {
			snprintf(k->passfile, sizeof k->passfile, "%s",
				 p->passfile);
			k->opts.passfile = k->passfile;
		}
	}
	k->opts.confirm = p->confirm;
	k->opts.confirm_ctx = p->confirm_ctx;
	sisy_err rc = connect_now(k);
	if (rc != SISY_OK) {
		k_destroy(&k->base);
		return rc;
	}
	*out = &k->base;
	return SISY_OK;
}
