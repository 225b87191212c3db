/* handler.c — requests: decode, check bounds and role, route (loop, read
 * pool or apply thread), build the Response, answer in order (srv_int.h).
 *
 * Roles are checked here, where the request executes on this node (a
 * proxied request in the cluster arrives with its user and is checked
 * again by the node that executes it):
 *   readonly : GET MGET EXISTS SCAN PING INFO WHOAMI, own USER PASSWORD
 *   readwrite: + PUT DEL BATCH
 *   admin    : + USER ADD / DEL / LIST / ROLE, anyone's USER PASSWORD
 */
#include "srv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "lsm.h"
#include "sisy.pb-c.h"
#include "wire.h"

#define MGET_REPLY_MAX (SISY_FRAME_MAX - 64 * 1024)

void handler_req_free(srv_req *r)
{
	if (r->msg)
		sisy__request__free_unpacked(r->msg, NULL);
	if (r->ops != &r->op1)
		free(r->ops);
	sisy_buf_free(&r->out);
	free(r);
}

/* Packs resp into r->out; a reply too big for a frame becomes TOO_BIG. */
static void pack(srv_req *r, Sisy__Response *resp)
{
	resp->id = r->msg ? r->msg->id : 0;
	size_t n = sisy__response__get_packed_size(resp);
	if (n > SISY_FRAME_MAX - SISY_SEAL_OVERHEAD - SISY_SEAL_HEADER) {
		Sisy__Response small = SISY__RESPONSE__INIT;
		small.id = resp->id;
		small.status = SISY__STATUS__TOO_BIG;
		small.message = "the reply would exceed the frame limit; ask "
				"for less";
		pack(r, &small);
		return;
	}
	sisy_buf_clear(&r->out);
	if (sisy_buf_reserve(&r->out, n) != SISY_OK) {
		r->out.len = 0;
		return;
	}
	sisy__response__pack(resp, r->out.data);
	r->out.len = n;
}

static void fail(srv_req *r, sisy_err e, const char *msg)
{
	Sisy__Response resp = SISY__RESPONSE__INIT;
	resp.status = (Sisy__Status)sisy_wire_err_status(e);
	resp.message = (char *)(msg && *msg ? msg : sisy_strerror(e));
	pack(r, &resp);
}

/* --------------------------------------------------------------- checks */

static const char *check_key(ProtobufCBinaryData k)
{
	if (k.len == 0)
		return "a key must not be empty";
	if (k.len > SISY_MAX_KEY)
		return "key exceeds the limit of 16384 bytes";
	return NULL;
}

static sisy_kv_cond_kind cond_of(const Sisy__Condition *c, uint64_t *v)
{
	*v = 0;
	if (c == NULL)
		return SISY_KV_COND_NONE;
	if (c->kind_case == SISY__CONDITION__KIND_IF_VERSION) {
		*v = c->if_version;
		return c->if_version ? SISY_KV_COND_VERSION
				     : SISY_KV_COND_ABSENT;
	}
	if (c->kind_case == SISY__CONDITION__KIND_IF_ABSENT)
		return SISY_KV_COND_ABSENT;
	return SISY_KV_COND_NONE;
}

static sisy_role needed_role(const srv_conn *c, const Sisy__Request *m)
{
	switch (m->op_case) {
	case SISY__REQUEST__OP_PUT:
	case SISY__REQUEST__OP_DEL:
	case SISY__REQUEST__OP_BATCH:
		return SISY_ROLE_READWRITE;
	case SISY__REQUEST__OP_USER_ADD:
	case SISY__REQUEST__OP_USER_DEL:
	case SISY__REQUEST__OP_USER_LIST:
	case SISY__REQUEST__OP_USER_ROLE:
		return SISY_ROLE_ADMIN;
	case SISY__REQUEST__OP_USER_PASSWORD:
		return m->user_password->name[0] == '\0' ||
			       strcmp(m->user_password->name, c->user) == 0
			   ? SISY_ROLE_READONLY
			   : SISY_ROLE_ADMIN;
	default:
		return SISY_ROLE_READONLY;
	}
}

static const char *put_op(sisy_kv_op *op, const Sisy__PutRequest *p)
{
	const char *bad = check_key(p->key);
	if (bad)
		return bad;
	if (p->value.len > SISY_MAX_VALUE)
		return "value exceeds the limit of 8 MiB";
	op->del = false;
	op->key = sisy_slice_make(p->key.data, p->key.len);
	op->value = sisy_slice_make(p->value.data, p->value.len);
	op->cond = cond_of(p->cond, &op->cond_version);
	return NULL;
}

static const char *del_op(sisy_kv_op *op, const Sisy__DelRequest *d)
{
	const char *bad = check_key(d->key);
	if (bad)
		return bad;
	op->del = true;
	op->key = sisy_slice_make(d->key.data, d->key.len);
	op->value = sisy_slice_make(NULL, 0);
	op->cond = cond_of(d->cond, &op->cond_version);
	return NULL;
}

/* Validates a request and decides where it runs. A failure is answered
 * at once (REQ_LOCAL with r->out set). */
static void classify(srv_conn *c, srv_req *r)
{
	Sisy__Request *m = r->msg;
	const char *bad = NULL;
	r->kind = REQ_LOCAL;
	if (c->role < needed_role(c, m)) {
		char msg[160];
		snprintf(msg, sizeof msg,
			 "permission denied: user %s has role %s", c->user,
			 sisy_role_name(c->role));
		fail(r, SISY_E_PERM, msg);
		return;
	}
	switch (m->op_case) {
	case SISY__REQUEST__OP_GET:
		bad = check_key(m->get->key);
		r->kind = REQ_READ;
		break;
	case SISY__REQUEST__OP_EXISTS:
		bad = check_key(m->exists->key);
		r->kind = REQ_READ;
		break;
	case SISY__REQUEST__OP_MGET:
		if (m->mget->n_keys == 0 ||
		    m->mget->n_keys > SISY_MAX_MGET_KEYS)
			bad = "MGET takes 1 to 10000 keys";
		for (size_t i = 0; !bad && i < m->mget->n_keys; i++)
			bad = check_key(m->mget->keys[i]);
		r->kind = REQ_READ;
		break;
	case SISY__REQUEST__OP_SCAN:
		r->kind = REQ_READ;
		break;
	case SISY__REQUEST__OP_PUT:
		r->ops = &r->op1;
		r->nops = 1;
		bad = put_op(&r->op1, m->put);
		r->kind = REQ_WRITE;
		break;
	case SISY__REQUEST__OP_DEL:
		r->ops = &r->op1;
		r->nops = 1;
		bad = del_op(&r->op1, m->del);
		r->kind = REQ_WRITE;
		break;
	case SISY__REQUEST__OP_BATCH: {
		size_t n = m->batch->n_ops;
		if (n == 0 || n > SISY_MAX_BATCH_OPS) {
			bad = "a batch holds 1 to 10000 operations";
			break;
		}
		r->ops = calloc(n, sizeof *r->ops);
		if (r->ops == NULL) {
			bad = "out of memory";
			break;
		}
		r->nops = n;
		for (size_t i = 0; !bad && i < n; i++) {
			const Sisy__BatchOp *op = m->batch->ops[i];
			if (op->op_case == SISY__BATCH_OP__OP_PUT)
				bad = put_op(&r->ops[i], op->put);
			else if (op->op_case == SISY__BATCH_OP__OP_DEL)
				bad = del_op(&r->ops[i], op->del);
			else
				bad = "a batch operation is neither put nor "
				      "delete";
		}
		r->kind = REQ_WRITE;
		break;
	}
	case SISY__REQUEST__OP_USER_ADD:
	case SISY__REQUEST__OP_USER_DEL:
	case SISY__REQUEST__OP_USER_PASSWORD:
	case SISY__REQUEST__OP_USER_ROLE:
		/* User changes are writes: ordered with the data, and in the
		 * cluster they become replicated commands. */
		r->kind = REQ_WRITE;
		break;
	case SISY__REQUEST__OP_PING:
	case SISY__REQUEST__OP_INFO:
	case SISY__REQUEST__OP_WHOAMI:
	case SISY__REQUEST__OP_USER_LIST:
		break;
	default:
		fail(r, SISY_E_NOTSUP,
		     "unknown request (is the server older than the client?)");
		return;
	}
	if (bad) {
		r->kind = REQ_LOCAL;
		fail(r, strstr(bad, "exceeds") ? SISY_E_TOOBIG : SISY_E_INVAL,
		     bad);
	}
}

/* ------------------------------------------------------- local requests */

static void add_info(Sisy__InfoEntry *e, Sisy__InfoEntry **p, size_t *n,
		     const char *sec, const char *name, char *val)
{
	sisy__info_entry__init(&e[*n]);
	e[*n].section = (char *)sec;
	e[*n].name = (char *)name;
	e[*n].value = val;
	p[*n] = &e[*n];
	(*n)++;
}

static void run_info(sisy_server *s, srv_req *r)
{
	enum { N = 24 };
	Sisy__InfoEntry e[N];
	Sisy__InfoEntry *p[N];
	char v[N][64];
	size_t n = 0;
	sisy_lsm_stats st;
	sisy_lsm_get_stats(sisy_kv_engine(s->kv), &st);
	const char *sec = r->msg->info->section;
#define INFO(section, name, ...)                                   \
	do {                                                       \
		if (n < N && (!sec[0] || !strcmp(sec, section))) { \
			snprintf(v[n], sizeof v[n], __VA_ARGS__);  \
			add_info(e, p, &n, section, name, v[n]);   \
		}                                                  \
	} while (0)
	INFO("server", "version", "%s", "0.1.0");
	INFO("server", "protocol", "%u", r->conn->sess.version);
	INFO("server", "node_id", "%llu", (unsigned long long)s->id.node_id);
	INFO("server", "role", "%s", "standalone");
	INFO("server", "uptime_s", "%llu",
	     (unsigned long long)((sisy_now_ms() - s->started_ms) / 1000));
	INFO("clients", "connections", "%zu", s->nconns - s->ndead);
	INFO("clients", "unauthenticated", "%zu", s->nunauth);
	INFO("clients", "accepted", "%llu", (unsigned long long)s->n_accepted);
	INFO("clients", "logins", "%llu", (unsigned long long)s->n_logins);
	INFO("clients", "login_failures", "%llu",
	     (unsigned long long)s->n_login_failures);
	INFO("clients", "timeouts", "%llu", (unsigned long long)s->n_timeouts);
	INFO("clients", "evicted", "%llu", (unsigned long long)s->n_evicted);
	INFO("clients", "protocol_errors", "%llu",
	     (unsigned long long)s->n_proto_errors);
	INFO("store", "requests", "%llu", (unsigned long long)s->n_requests);
	INFO("store", "applied_index", "%llu",
	     (unsigned long long)sisy_kv_applied(s->kv));
	INFO("store", "sync", "%s", s->cfg.sync ? "true" : "false");
	INFO("store", "gets", "%llu", (unsigned long long)st.gets);
	INFO("store", "puts", "%llu", (unsigned long long)st.puts);
	INFO("store", "deletes", "%llu", (unsigned long long)st.deletes);
	INFO("store", "memtable_bytes", "%llu",
	     (unsigned long long)st.memtable_bytes);
	INFO("store", "cache_bytes", "%llu",
	     (unsigned long long)st.cache_bytes);
	INFO("store", "wal_syncs", "%llu", (unsigned long long)st.wal_syncs);
	INFO("store", "compactions", "%llu",
	     (unsigned long long)st.compactions);
	INFO("users", "count", "%zu", sisy_users_count(s->users));
#undef INFO
	Sisy__InfoResult ir = SISY__INFO_RESULT__INIT;
	ir.n_entries = n;
	ir.entries = p;
	Sisy__Response resp = SISY__RESPONSE__INIT;
	resp.result_case = SISY__RESPONSE__RESULT_INFO;
	resp.info = &ir;
	pack(r, &resp);
}

typedef struct user_list_ctx {
	Sisy__UserInfo *u;
	Sisy__UserInfo **p;
	size_t n, cap;
} user_list_ctx;

static void list_one(void *ctx, const sisy_user *user)
{
	user_list_ctx *l = ctx;
	if (l->n >= l->cap)
		return;
	sisy__user_info__init(&l->u[l->n]);
	l->u[l->n].name = strdup(user->name);
	l->u[l->n].role = (Sisy__Role)user->role;
	l->p[l->n] = &l->u[l->n];
	l->n++;
}

static void run_user_list(sisy_server *s, srv_req *r)
{
	user_list_ctx l = {0};
	l.cap = sisy_users_count(s->users) + 16;
	l.u = calloc(l.cap, sizeof *l.u);
	l.p = calloc(l.cap, sizeof *l.p);
	if (l.u && l.p) {
		sisy_users_list(s->users, list_one, &l);
		Sisy__UserListResult ul = SISY__USER_LIST_RESULT__INIT;
		ul.n_users = l.n;
		ul.users = l.p;
		Sisy__Response resp = SISY__RESPONSE__INIT;
		resp.result_case = SISY__RESPONSE__RESULT_USER_LIST;
		resp.user_list = &ul;
		pack(r, &resp);
	} else {
		fail(r, SISY_E_NOMEM, "out of memory");
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.u[i].name);
	free(l.u);
	free(l.p);
}

static void run_local(sisy_server *s, srv_conn *c, srv_req *r)
{
	Sisy__Response resp = SISY__RESPONSE__INIT;
	switch (r->msg->op_case) {
	case SISY__REQUEST__OP_PING: {
		Sisy__PingResult pr = SISY__PING_RESULT__INIT;
		pr.payload = r->msg->ping->payload;
		resp.result_case = SISY__RESPONSE__RESULT_PING;
		resp.ping = &pr;
		pack(r, &resp);
		break;
	}
	case SISY__REQUEST__OP_WHOAMI: {
		Sisy__WhoAmIResult w = SISY__WHO_AM_IRESULT__INIT;
		w.user = c->user;
		w.role = (Sisy__Role)c->role;
		w.node_id = s->id.node_id;
		w.cluster_id.data = s->id.cluster_id;
		w.cluster_id.len = sizeof s->id.cluster_id;
		w.node_role = "standalone";
		w.version = c->sess.version;
		resp.result_case = SISY__RESPONSE__RESULT_WHOAMI;
		resp.whoami = &w;
		pack(r, &resp);
		break;
	}
	case SISY__REQUEST__OP_INFO:
		run_info(s, r);
		break;
	case SISY__REQUEST__OP_USER_LIST:
		run_user_list(s, r);
		break;
	default:
		fail(r, SISY_E_INTERNAL, "not a local request");
	}
}

/* ------------------------------------------------------------ the queue */

srv_req *handler_decode(srv_conn *c, sisy_slice msg)
{
	srv_req *r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	r->conn = c;
	r->msg = sisy__request__unpack(NULL, msg.len, msg.data);
	if (r->msg == NULL || r->msg->op_case == SISY__REQUEST__OP__NOT_SET) {
		/* Undecodable: answer (id 0) and keep the session; the frame
		 * itself was authentic, so the stream is intact. */
		r->kind = REQ_LOCAL;
		fail(r, SISY_E_INVAL, "malformed request");
	} else {
		classify(c, r);
	}
	return r;
}

void handler_on_request(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	srv_req *r = handler_decode(c, msg);
	if (r == NULL) {
		srv_conn_close(s, c, "out of memory");
		return;
	}
	s->n_requests++;
	if (c->tail)
		c->tail->next = r;
	else
		c->head = r;
	c->tail = r;
	if (c->undispatched == NULL)
		c->undispatched = r;
	c->nreq++;
	r->bytes = msg.len;
	c->queued_bytes += msg.len;
}

/* Dispatches in order, under the rule in srv_int.h. */
void handler_dispatch(sisy_server *s, srv_conn *c)
{
	/* Everything before `undispatched` was dispatched: no rescans, so a
	 * deep pipeline costs O(1) per request. */
	srv_req *r;
	for (r = c->undispatched; r; r = r->next) {
		if (r->kind != REQ_WRITE && c->running_writes > 0)
			break;
		if (r->kind == REQ_WRITE && c->running_reads > 0)
			break;
		r->dispatched = true;
		if (r->kind == REQ_LOCAL) {
			if (r->out.len == 0)
				run_local(s, c, r);
			r->done = true;
			continue;
		}
		if (r->kind == REQ_READ)
			c->running_reads++;
		else
			c->running_writes++;
		work_submit(s, r);
	}
	c->undispatched = r;
	handler_flush_replies(s, c);
}

/* Seals the finished replies at the head, in order. */
void handler_flush_replies(sisy_server *s, srv_conn *c)
{
	while (c->head && c->head->done && !c->dead) {
		srv_req *r = c->head;
		c->head = r->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->nreq--;
		c->queued_bytes -= r->bytes;
		conn_send_frame(s, c, r->out.data, r->out.len, true);
		handler_req_free(r);
	}
	if (!c->dead)
		srv_conn_want_flush(s, c);
}

static void end_sessions_of(sisy_server *s, const char *user)
{
	for (srv_conn *c = s->conns; c; c = c->next)
		if (!c->dead && c->state == CONN_READY &&
		    strcmp(c->user, user) == 0) {
			/* Replies already finished still go out first. */
			handler_flush_replies(s, c);
			conn_end_session(s, c);
		}
}

void handler_complete(sisy_server *s, srv_req *r)
{
	srv_conn *c = r->conn;
	if (r->kind == REQ_READ)
		c->running_reads--;
	else
		c->running_writes--;
	r->done = true;
	if (c->dead) {
		/* Nobody to answer: it is freed with the connection. */
		return;
	}
	char end_user[sizeof r->end_user];
	snprintf(end_user, sizeof end_user, "%s", r->end_user);
	handler_dispatch(s, c);
	if (end_user[0])
		end_sessions_of(s, end_user);
	srv_conn_update_events(s, c);
}

/* -------------------------------------------------------- worker side */

typedef struct scan_ctx {
	Sisy__KeyValue *kv;
	Sisy__KeyValue **p;
	sisy_buf *bufs; /* owned copies of keys and values */
	size_t n, cap;
	size_t bytes, max_bytes;
	bool with_version, keys_only, more;
	sisy_err err;
} scan_ctx;

static bool scan_one(void *ctx, sisy_slice key, sisy_slice val,
		     uint64_t version)
{
	scan_ctx *sc = ctx;
	if (sc->n == sc->cap || sc->bytes >= sc->max_bytes) {
		sc->more = true;
		return false;
	}
	size_t i = sc->n;
	sisy_buf *b = &sc->bufs[i];
	size_t vl = sc->keys_only ? 0 : val.len;
	if (sisy_buf_reserve(b, key.len + vl) != SISY_OK) {
		sc->err = SISY_E_NOMEM;
		return false;
	}
	memcpy(b->data, key.data, key.len);
	if (vl)
		memcpy(b->data + key.len, val.data, vl);
	b->len = key.len + vl;
	sisy__key_value__init(&sc->kv[i]);
	sc->kv[i].key.data = b->data;
	sc->kv[i].key.len = key.len;
	sc->kv[i].value.data = b->data + key.len;
	sc->kv[i].value.len = vl;
	sc->kv[i].version = sc->with_version ? version : 0;
	sc->kv[i].found = true;
	sc->p[i] = &sc->kv[i];
	sc->n++;
	sc->bytes += key.len + vl + 16;
	return true;
}

/* The smallest key above every key starting with prefix (empty: none). */
static size_t prefix_end(const uint8_t *p, size_t n, uint8_t *out)
{
	while (n > 0 && p[n - 1] == 0xff)
		n--;
	if (n == 0)
		return 0;
	memcpy(out, p, n);
	out[n - 1]++;
	return n;
}

static void run_scan(sisy_server *s, srv_req *r)
{
	const Sisy__ScanRequest *q = r->msg->scan;
	scan_ctx sc = {0};
	uint8_t *endkey = NULL;
	sisy_slice from = {0}, to = {0};
	uint32_t limit = q->limit && q->limit < s->cfg.scan_page_max
			     ? q->limit
			     : s->cfg.scan_page_max;
	sc.cap = limit;
	sc.max_bytes = s->cfg.scan_page_bytes;
	sc.with_version = q->with_version;
	sc.keys_only = q->keys_only;
	sc.kv = calloc(limit, sizeof *sc.kv);
	sc.p = calloc(limit, sizeof *sc.p);
	sc.bufs = calloc(limit, sizeof *sc.bufs);
	if (!sc.kv || !sc.p || !sc.bufs) {
		fail(r, SISY_E_NOMEM, "out of memory");
		goto done;
	}
	if (q->range_case == SISY__SCAN_REQUEST__RANGE_BOUNDS && q->bounds) {
		from =
		    sisy_slice_make(q->bounds->from.data, q->bounds->from.len);
		to = sisy_slice_make(q->bounds->to.data, q->bounds->to.len);
	} else if (q->range_case == SISY__SCAN_REQUEST__RANGE_PREFIX &&
		   q->prefix.len > 0) {
		endkey = malloc(q->prefix.len);
		if (endkey == NULL) {
			fail(r, SISY_E_NOMEM, "out of memory");
			goto done;
		}
		from = sisy_slice_make(q->prefix.data, q->prefix.len);
		to = sisy_slice_make(
		    endkey, prefix_end(q->prefix.data, q->prefix.len, endkey));
	}
	sisy_err rc = sisy_kv_scan(
	    s->kv, from, to,
	    sisy_slice_make(q->resume_after.data, q->resume_after.len),
	    scan_one, &sc);
	if (rc == SISY_OK && sc.err != SISY_OK)
		rc = sc.err;
	if (rc != SISY_OK) {
		fail(r, rc, sisy_errmsg());
		goto done;
	}
	Sisy__ScanResult res = SISY__SCAN_RESULT__INIT;
	res.n_entries = sc.n;
	res.entries = sc.p;
	res.more = sc.more && sc.n > 0;
	if (res.more)
		res.resume_after = sc.kv[sc.n - 1].key;
	Sisy__Response resp = SISY__RESPONSE__INIT;
	resp.result_case = SISY__RESPONSE__RESULT_SCAN;
	resp.scan = &res;
	pack(r, &resp);
done:
	for (size_t i = 0; sc.bufs && i < sc.cap; i++)
		sisy_buf_free(&sc.bufs[i]);
	free(sc.bufs);
	free(sc.kv);
	free(sc.p);
	free(endkey);
}

static void run_mget(sisy_server *s, srv_req *r)
{
	const Sisy__MGetRequest *q = r->msg->mget;
	size_t n = q->n_keys, total = 0;
	Sisy__KeyValue *kv = calloc(n, sizeof *kv);
	Sisy__KeyValue **p = calloc(n, sizeof *p);
	sisy_buf *vals = calloc(n, sizeof *vals);
	sisy_err rc = kv && p && vals ? SISY_OK : SISY_E_NOMEM;
	for (size_t i = 0; i < n && rc == SISY_OK; i++) {
		bool found;
		uint64_t version = 0;
		sisy__key_value__init(&kv[i]);
		p[i] = &kv[i];
		rc = sisy_kv_get(
		    s->kv, sisy_slice_make(q->keys[i].data, q->keys[i].len),
		    &found, &version, &vals[i]);
		kv[i].key = q->keys[i];
		kv[i].found = found;
		kv[i].value.data = vals[i].data;
		kv[i].value.len = found ? vals[i].len : 0;
		kv[i].version = q->with_version ? version : 0;
		total += q->keys[i].len + vals[i].len + 16;
		if (total > MGET_REPLY_MAX)
			rc = sisy_errf(SISY_E_TOOBIG,
				       "the values asked for exceed the reply "
				       "limit; ask for fewer keys");
	}
	if (rc != SISY_OK) {
		fail(r, rc, sisy_errmsg());
	} else {
		Sisy__MGetResult res = SISY__MGET_RESULT__INIT;
		res.n_entries = n;
		res.entries = p;
		Sisy__Response resp = SISY__RESPONSE__INIT;
		resp.result_case = SISY__RESPONSE__RESULT_MGET;
		resp.mget = &res;
		pack(r, &resp);
	}
	for (size_t i = 0; vals && i < n; i++)
		sisy_buf_free(&vals[i]);
	free(vals);
	free(kv);
	free(p);
}

void handler_run_read(sisy_server *s, srv_req *r)
{
	Sisy__Request *m = r->msg;
	Sisy__Response resp = SISY__RESPONSE__INIT;
	sisy_buf val = {0};
	bool found = false;
	uint64_t version = 0;
	sisy_err rc;
	switch (m->op_case) {
	case SISY__REQUEST__OP_GET: {
		rc = sisy_kv_get(
		    s->kv, sisy_slice_make(m->get->key.data, m->get->key.len),
		    &found, &version, &val);
		if (rc != SISY_OK) {
			fail(r, rc, sisy_errmsg());
			break;
		}
		Sisy__GetResult g = SISY__GET_RESULT__INIT;
		g.found = found;
		g.value.data = val.data;
		g.value.len = found ? val.len : 0;
		g.version = m->get->with_version ? version : 0;
		resp.result_case = SISY__RESPONSE__RESULT_GET;
		resp.get = &g;
		pack(r, &resp);
		break;
	}
	case SISY__REQUEST__OP_EXISTS: {
		rc = sisy_kv_get(
		    s->kv,
		    sisy_slice_make(m->exists->key.data, m->exists->key.len),
		    &found, &version, NULL);
		if (rc != SISY_OK) {
			fail(r, rc, sisy_errmsg());
			break;
		}
		Sisy__ExistsResult e = SISY__EXISTS_RESULT__INIT;
		e.exists = found;
		resp.result_case = SISY__RESPONSE__RESULT_EXISTS;
		resp.exists = &e;
		pack(r, &resp);
		break;
	}
	case SISY__REQUEST__OP_MGET:
		run_mget(s, r);
		break;
	case SISY__REQUEST__OP_SCAN:
		run_scan(s, r);
		break;
	default:
		fail(r, SISY_E_INTERNAL, "not a read");
	}
	sisy_buf_free(&val);
}

static bool verifier_of(const Sisy__Verifier *v, sisy_auth_verifier *out)
{
	if (v == NULL || v->salt.len != SISY_AUTH_SALT ||
	    v->public_key.len != SISY_AUTH_PK ||
	    v->alg != crypto_pwhash_ALG_ARGON2ID13 ||
	    !sisy_auth_params_valid(v->opslimit, v->memlimit))
		return false;
	memcpy(out->salt, v->salt.data, SISY_AUTH_SALT);
	memcpy(out->pk, v->public_key.data, SISY_AUTH_PK);
	out->opslimit = v->opslimit;
	out->memlimit = v->memlimit;
	return true;
}

/* A user change, on the apply thread. */
static void run_user_change(sisy_server *s, srv_req *r)
{
	Sisy__Request *m = r->msg;
	sisy_err rc = SISY_OK;
	sisy_user u;
	memset(&u, 0, sizeof u);
	switch (m->op_case) {
	case SISY__REQUEST__OP_USER_ADD:
		if (!sisy_auth_user_valid(m->user_add->name) ||
		    m->user_add->role < SISY__ROLE__READONLY ||
		    m->user_add->role > SISY__ROLE__ADMIN ||
		    !verifier_of(m->user_add->verifier, &u.v)) {
			rc = sisy_errf(SISY_E_INVAL,
				       "bad user name, role, or a password "
				       "cost below the minimum");
			break;
		}
		snprintf(u.name, sizeof u.name, "%s", m->user_add->name);
		u.role = (sisy_role)m->user_add->role;
		rc = sisy_users_add(s->users, &u);
		break;
	case SISY__REQUEST__OP_USER_DEL:
		rc = sisy_users_del(s->users, m->user_del->name);
		if (rc == SISY_OK)
			snprintf(r->end_user, sizeof r->end_user, "%s",
				 m->user_del->name);
		break;
	case SISY__REQUEST__OP_USER_ROLE:
		if (m->user_role->role < SISY__ROLE__READONLY ||
		    m->user_role->role > SISY__ROLE__ADMIN) {
			rc = sisy_errf(SISY_E_INVAL, "bad role");
			break;
		}
		rc = sisy_users_set_role(s->users, m->user_role->name,
					 (sisy_role)m->user_role->role);
		if (rc == SISY_OK)
			snprintf(r->end_user, sizeof r->end_user, "%s",
				 m->user_role->name);
		break;
	case SISY__REQUEST__OP_USER_PASSWORD: {
		const char *name = m->user_password->name[0]
				       ? m->user_password->name
				       : r->conn->user;
		if (!verifier_of(m->user_password->verifier, &u.v)) {
			rc = sisy_errf(SISY_E_INVAL,
				       "bad verifier or a password cost below "
				       "the minimum");
			break;
		}
		rc = sisy_users_set_verifier(s->users, name, &u.v);
		break;
	}
	default:
		rc = sisy_errf(SISY_E_INTERNAL, "not a user change");
	}
	if (rc != SISY_OK) {
		fail(r, rc, sisy_errmsg());
		return;
	}
	Sisy__WriteResult w = SISY__WRITE_RESULT__INIT;
	Sisy__Response resp = SISY__RESPONSE__INIT;
	resp.result_case = SISY__RESPONSE__RESULT_WRITE;
	resp.write = &w;
	pack(r, &resp);
}

static void answer_write(srv_req *r)
{
	sisy_kv_cmd *c = &r->cmd;
	Sisy__WriteResult w = SISY__WRITE_RESULT__INIT;
	Sisy__Response resp = SISY__RESPONSE__INIT;
	resp.result_case = SISY__RESPONSE__RESULT_WRITE;
	resp.write = &w;
	if (c->result == SISY_E_CONFLICT) {
		char msg[96];
		w.failed_op = c->failed_op;
		w.current_version = c->current_version;
		if (r->nops > 1)
			snprintf(msg, sizeof msg,
				 "condition failed (operation %u of the "
				 "batch); nothing was applied",
				 c->failed_op + 1);
		else
			snprintf(msg, sizeof msg,
				 c->current_version
				     ? "condition failed: the key's version "
				       "is %llu"
				     : "condition failed: the key does not "
				       "exist",
				 (unsigned long long)c->current_version);
		resp.status = SISY__STATUS__CONFLICT;
		resp.message = msg;
		pack(r, &resp);
		return;
	}
	if (c->result != SISY_OK) {
		fail(r, c->result,
		     c->result == SISY_E_NOSPC
			 ? "disk full: writes are refused, reads work"
			 : "the engine failed to apply the write");
		return;
	}
	w.version = c->index;
	w.existed = c->existed;
	pack(r, &resp);
}

/* Applies a run of writes in order: data writes in groups (one engine
 * batch each), user changes one by one between them. */
void handler_run_writes(sisy_server *s, srv_req **reqs, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (reqs[i]->nops == 0) {
			run_user_change(s, reqs[i]);
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && reqs[j]->nops > 0)
			j++;
		sisy_kv_cmd *cmds = calloc(j - i, sizeof *cmds);
		if (cmds == NULL) {
			for (size_t k = i; k < j; k++)
				fail(reqs[k], SISY_E_NOMEM, "out of memory");
			i = j;
			continue;
		}
		for (size_t k = i; k < j; k++) {
			cmds[k - i].ops = reqs[k]->ops;
			cmds[k - i].nops = reqs[k]->nops;
		}
		sisy_err rc = sisy_kv_apply(s->kv, cmds, j - i);
		if (rc != SISY_OK)
			sisy_log(s->log, SISY_LOG_ERROR, "server",
				 "applying %zu writes failed: %s", j - i,
				 sisy_errmsg());
		for (size_t k = i; k < j; k++) {
			reqs[k]->cmd = cmds[k - i];
			answer_write(reqs[k]);
		}
		free(cmds);
		i = j;
	}
}
