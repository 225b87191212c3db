/* handler.c — client requests: decode, check bounds and role, route
 * (loop, ReadIndex + read pool, the leader), answer in order (srv_int.h).
 *
 * Roles are checked here, where the request arrives, and again where it
 * executes: a write forwarded to the leader is checked by the leader
 * against its own copy of the replicated user table (forward.c), and by
 * the state machine when the entry is applied (sisyd/node).
 *   readonly : GET MGET EXISTS SCAN PING INFO WHOAMI, own USER PASSWORD,
 *              CLUSTER INFO, CLUSTER NODES
 *   readwrite: + PUT DEL BATCH
 *   admin    : + USER ADD / DEL / LIST / ROLE, anyone's USER PASSWORD,
 *              CLUSTER ADD NODE / REMOVE NODE / FAILOVER
 */
#include "srv_int.h"

#include <assert.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "peer.pb-c.h"
#include "sisy.pb-c.h"
#include "wire.h"

void handler_req_free(srv_req *r)
{
	sisy_server *s = r->srv;
	if (r->holder)
		sisy__peer_message__free_unpacked(r->holder, NULL);
	/* else r->msg lives in r's arena and chunks */
	sisy_bump_free_chunks(&r->chunks);
	if (r->ops != &r->op1)
		free(r->ops);
	if (s != NULL && s->nspare < SRV_REQ_SPARE &&
	    r->out.cap <= SRV_REQ_SPARE_OUT) {
		/* Kept for the next request, with its reply buffer. */
		r->next = s->spare;
		s->spare = r;
		s->nspare++;
		return;
	}
	sisy_buf_free(&r->out);
	free(r);
}

void handler_spare_free(sisy_server *s)
{
	while (s->spare) {
		srv_req *r = s->spare;
		s->spare = r->next;
		sisy_buf_free(&r->out);
		free(r);
	}
	s->nspare = 0;
}

void handler_pack(srv_req *r, void *response)
{
	Sisy__Response *resp = response;
	resp->id = r->msg ? r->msg->id : 0;
	size_t n = sisy__response__get_packed_size(resp);
	if (n > SISY_FRAME_MAX - SISY_SEAL_OVERHEAD - SISY_SEAL_HEADER -
		    SISY_BATCH_HDR_MAX) {
		Sisy__Response small = SISY__RESPONSE__INIT;
		small.status = SISY__STATUS__TOO_BIG;
		small.message = "the reply would exceed the frame limit; ask "
				"for less";
		handler_pack(r, &small);
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

void handler_fail(srv_req *r, sisy_err e, const char *msg)
{
	Sisy__Response resp = SISY__RESPONSE__INIT;
	resp.status = (Sisy__Status)sisy_wire_err_status(e);
	resp.message = (char *)(msg && *msg ? msg : sisy_strerror(e));
	handler_pack(r, &resp);
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

static uint8_t cond_of(const Sisy__Condition *c, uint64_t *v)
{
	*v = 0;
	if (c == NULL)
		return SISY_NODE_COND_NONE;
	if (c->kind_case == SISY__CONDITION__KIND_IF_VERSION) {
		*v = c->if_version;
		return c->if_version ? SISY_NODE_COND_VERSION
				     : SISY_NODE_COND_ABSENT;
	}
	if (c->kind_case == SISY__CONDITION__KIND_IF_ABSENT)
		return SISY_NODE_COND_ABSENT;
	return SISY_NODE_COND_NONE;
}

static sisy_role needed_role(const srv_req *r)
{
	const Sisy__Request *m = r->msg;
	switch (m->op_case) {
	case SISY__REQUEST__OP_PUT:
	case SISY__REQUEST__OP_DEL:
	case SISY__REQUEST__OP_BATCH:
		return SISY_ROLE_READWRITE;
	case SISY__REQUEST__OP_USER_ADD:
	case SISY__REQUEST__OP_USER_DEL:
	case SISY__REQUEST__OP_USER_LIST:
	case SISY__REQUEST__OP_USER_ROLE:
	case SISY__REQUEST__OP_CLUSTER_ADD_NODE:
	case SISY__REQUEST__OP_CLUSTER_REMOVE_NODE:
	case SISY__REQUEST__OP_CLUSTER_FAILOVER:
		return SISY_ROLE_ADMIN;
	case SISY__REQUEST__OP_USER_PASSWORD:
		return m->user_password->name[0] == '\0' ||
			       strcmp(m->user_password->name, r->user) == 0
			   ? SISY_ROLE_READONLY
			   : SISY_ROLE_ADMIN;
	default:
		return SISY_ROLE_READONLY;
	}
}

static const char *put_op(sisy_node_op *op, const Sisy__PutRequest *p)
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

static const char *del_op(sisy_node_op *op, const Sisy__DelRequest *d)
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

static bool verifier_ok(const Sisy__Verifier *v)
{
	return v != NULL && v->salt.len == SISY_AUTH_SALT &&
	       v->public_key.len == SISY_AUTH_PK &&
	       v->alg == crypto_pwhash_ALG_ARGON2ID13 &&
	       sisy_auth_params_valid(v->opslimit, v->memlimit);
}

static bool role_ok(Sisy__Role r)
{
	return r >= SISY__ROLE__READONLY && r <= SISY__ROLE__ADMIN;
}

/* host:port, printable, at most SISY_NODE_MAX_ADDR bytes. */
static bool address_ok(const char *a)
{
	size_t n = strlen(a);
	const char *colon = strrchr(a, ':');
	if (n == 0 || n > SISY_NODE_MAX_ADDR || colon == NULL || colon == a ||
	    colon[1] == '\0')
		return false;
	for (size_t i = 0; i < n; i++)
		if (a[i] <= ' ' || a[i] > '~' || a[i] == ',')
			return false;
	return true;
}

static const char *classify_batch(srv_req *r, const Sisy__BatchRequest *b)
{
	size_t n = b->n_ops;
	if (n == 0 || n > SISY_MAX_BATCH_OPS)
		return "a batch holds 1 to 10000 operations";
	r->ops = calloc(n, sizeof *r->ops);
	if (r->ops == NULL)
		return "out of memory";
	r->nops = n;
	const char *bad = NULL;
	for (size_t i = 0; !bad && i < n; i++) {
		const Sisy__BatchOp *op = b->ops[i];
		if (op->op_case == SISY__BATCH_OP__OP_PUT)
			bad = put_op(&r->ops[i], op->put);
		else if (op->op_case == SISY__BATCH_OP__OP_DEL)
			bad = del_op(&r->ops[i], op->del);
		else
			bad = "a batch operation is neither put nor delete";
	}
	return bad;
}

static const char *classify_user(const Sisy__Request *m)
{
	switch (m->op_case) {
	case SISY__REQUEST__OP_USER_ADD:
		if (!sisy_auth_user_valid(m->user_add->name) ||
		    !role_ok(m->user_add->role) ||
		    !verifier_ok(m->user_add->verifier))
			return "bad user name, role, or a password cost below "
			       "the minimum";
		return NULL;
	case SISY__REQUEST__OP_USER_DEL:
		return sisy_auth_user_valid(m->user_del->name)
			   ? NULL
			   : "bad user name";
	case SISY__REQUEST__OP_USER_ROLE:
		if (!sisy_auth_user_valid(m->user_role->name) ||
		    !role_ok(m->user_role->role))
			return "bad user name or role";
		return NULL;
	default: /* USER_PASSWORD */
		if (m->user_password->name[0] &&
		    !sisy_auth_user_valid(m->user_password->name))
			return "bad user name";
		return verifier_ok(m->user_password->verifier)
			   ? NULL
			   : "bad verifier or a password cost below the "
			     "minimum";
	}
}

void handler_classify(srv_req *r)
{
	Sisy__Request *m = r->msg;
	const char *bad = NULL;
	r->kind = REQ_LOCAL;
	r->stale = m->consistency == SISY__CONSISTENCY__STALE;
	if (r->role < needed_role(r)) {
		char msg[160];
		snprintf(msg, sizeof msg,
			 "permission denied: user %s has role %s", r->user,
			 sisy_role_name(r->role));
		handler_fail(r, SISY_E_PERM, msg);
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
	case SISY__REQUEST__OP_BATCH:
		bad = classify_batch(r, m->batch);
		r->kind = REQ_WRITE;
		break;
	case SISY__REQUEST__OP_USER_ADD:
	case SISY__REQUEST__OP_USER_DEL:
	case SISY__REQUEST__OP_USER_PASSWORD:
	case SISY__REQUEST__OP_USER_ROLE:
		/* Replicated commands of the metadata group. */
		bad = classify_user(m);
		r->kind = REQ_WRITE;
		break;
	case SISY__REQUEST__OP_CLUSTER_ADD_NODE:
		if (!address_ok(m->cluster_add_node->address))
			bad = "CLUSTER ADD NODE needs host:port (at most 255 "
			      "bytes)";
		r->kind = REQ_WRITE;
		break;
	case SISY__REQUEST__OP_CLUSTER_REMOVE_NODE:
		if (m->cluster_remove_node->node_id == 0)
			bad = "CLUSTER REMOVE NODE needs a node id";
		r->kind = REQ_WRITE;
		break;
	case SISY__REQUEST__OP_CLUSTER_FAILOVER:
		r->kind = REQ_WRITE;
		break;
	case SISY__REQUEST__OP_PING:
	case SISY__REQUEST__OP_INFO:
	case SISY__REQUEST__OP_WHOAMI:
	case SISY__REQUEST__OP_USER_LIST:
	case SISY__REQUEST__OP_CLUSTER_INFO:
	case SISY__REQUEST__OP_CLUSTER_NODES:
		break;
	default:
		handler_fail(
		    r, SISY_E_NOTSUP,
		    "unknown request (is the server older than the client?)");
		return;
	}
	if (bad) {
		r->kind = REQ_LOCAL;
		handler_fail(
		    r, strstr(bad, "exceeds") ? SISY_E_TOOBIG : SISY_E_INVAL,
		    bad);
	}
}

/* ------------------------------------------------------- local requests */

typedef struct user_list_ctx {
	Sisy__UserInfo *u;
	Sisy__UserInfo **p;
	size_t n, cap;
} user_list_ctx;

static void list_one(void *ctx, const char *name, sisy_role role)
{
	user_list_ctx *l = ctx;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		Sisy__UserInfo *u = realloc(l->u, cap * sizeof *u);
		if (u == NULL)
			return;
		l->u = u;
		l->cap = cap;
	}
	sisy__user_info__init(&l->u[l->n]);
	l->u[l->n].name = strdup(name);
	l->u[l->n].role = (Sisy__Role)role;
	if (l->u[l->n].name != NULL)
		l->n++;
}

static void run_user_list(sisy_server *s, srv_req *r)
{
	user_list_ctx l = {0};
	sisy_node_users_list(s->node, list_one, &l);
	l.p = calloc(l.n + 1, sizeof *l.p);
	if (l.p) {
		for (size_t i = 0; i < l.n; i++)
			l.p[i] = &l.u[i];
		Sisy__UserListResult ul = SISY__USER_LIST_RESULT__INIT;
		ul.n_users = l.n;
		ul.users = l.p;
		Sisy__Response resp = SISY__RESPONSE__INIT;
		resp.result_case = SISY__RESPONSE__RESULT_USER_LIST;
		resp.user_list = &ul;
		handler_pack(r, &resp);
	} else {
		handler_fail(r, SISY_E_NOMEM, "out of memory");
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
		handler_pack(r, &resp);
		break;
	}
	case SISY__REQUEST__OP_WHOAMI: {
		Sisy__WhoAmIResult w = SISY__WHO_AM_IRESULT__INIT;
		w.user = c->user;
		w.role = (Sisy__Role)c->role;
		w.node_id = s->id.node_id;
		w.cluster_id.data = s->id.cluster_id;
		w.cluster_id.len = sizeof s->id.cluster_id;
		w.node_role = s->role_name;
		w.version = c->sess.version;
		resp.result_case = SISY__RESPONSE__RESULT_WHOAMI;
		resp.whoami = &w;
		handler_pack(r, &resp);
		break;
	}
	case SISY__REQUEST__OP_INFO:
		cluster_server_info(s, r);
		break;
	case SISY__REQUEST__OP_USER_LIST:
		run_user_list(s, r);
		break;
	case SISY__REQUEST__OP_CLUSTER_INFO:
		cluster_info(s, r);
		break;
	case SISY__REQUEST__OP_CLUSTER_NODES:
		cluster_nodes(s, r);
		break;
	default:
		handler_fail(r, SISY_E_INTERNAL, "not a local request");
	}
}

/* ------------------------------------------------------------ the queue */

/* r (spare or fresh) made ready for msg: everything zeroed but the arena,
 * which needs no zeroing, and the reply buffer's memory, which is kept. */
static srv_req *decode_into(srv_req *r, srv_conn *c, sisy_slice msg)
{
	sisy_buf out = r->out;
	memset(r, 0, offsetof(srv_req, arena));
	r->out = (sisy_buf){.data = out.data, .cap = out.cap};
	r->conn = c;
	memcpy(r->user, c->user, sizeof r->user);
	r->role = c->role;
	r->msg = decode_request(r, msg);
	if (r->msg == NULL || r->msg->op_case == SISY__REQUEST__OP__NOT_SET) {
		/* Undecodable: answer (id 0) and keep the session; the frame
		 * itself was authentic, so the stream is intact. */
		r->kind = REQ_LOCAL;
		handler_fail(r, SISY_E_INVAL, "malformed request");
	} else {
		handler_classify(r);
	}
	return r;
}

srv_req *handler_decode(srv_conn *c, sisy_slice msg)
{
	srv_req *r = malloc(sizeof *r);
	if (r == NULL)
		return NULL;
	r->out = (sisy_buf){0};
	return decode_into(r, c, msg);
}

void handler_on_request(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	srv_req *r = s->spare;
	if (r != NULL) {
		s->spare = r->next;
		s->nspare--;
		r = decode_into(r, c, msg);
	} else {
		r = handler_decode(c, msg);
	}
	if (r == NULL) {
		srv_conn_close(s, c, "out of memory");
		return;
	}
	r->srv = s;
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

void handler_on_batch(sisy_server *s, srv_conn *c, sisy_slice batch)
{
	size_t n, off = 0;
	/* Checked whole first: a broken batch queues nothing. */
	if (sisy_batch_check(batch, &n) != SISY_OK) {
		s->n_proto_errors++;
		srv_conn_close(s, c, sisy_errmsg());
		return;
	}
	for (size_t i = 0; i < n && !c->dead; i++) {
		sisy_slice msg;
		bool done;
		(void)sisy_batch_next(batch, &off, &msg, &done);
		handler_on_request(s, c, msg);
	}
}

/* Dispatches in order, under the rule in srv_int.h. A request that
 * finishes at once (refused, answered from local state) completes inside
 * the loop below; `dispatching` keeps handler_complete from re-entering. */
void handler_dispatch(sisy_server *s, srv_conn *c)
{
	/* Everything before `undispatched` was dispatched: no rescans, so a
	 * deep pipeline costs O(1) per request. */
	srv_req *r;
	if (c->dispatching)
		return;
	c->dispatching = true;
	while ((r = c->undispatched) != NULL && !c->dead) {
		if (r->kind != REQ_WRITE && c->running_writes > 0)
			break;
		if (r->kind == REQ_WRITE &&
		    (c->running_reads > 0 || c->parked_writes > 0))
			break;
		r->dispatched = true;
		c->undispatched = r->next;
		if (r->kind == REQ_LOCAL) {
			if (r->out.len == 0)
				run_local(s, c, r);
			r->done = true;
		} else if (r->kind == REQ_READ) {
			c->running_reads++;
			reads_start(s, r);
		} else {
			c->running_writes++;
			writes_start(s, r);
		}
	}
	c->dispatching = false;
	if (!c->dead)
		handler_flush_replies(s, c);
}

/* Seals the finished replies at the head, in order. */
void handler_flush_replies(sisy_server *s, srv_conn *c)
{
	bool queued = false;
	while (c->head && c->head->done && !c->dead) {
		srv_req *r = c->head;
		c->head = r->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->nreq--;
		c->queued_bytes -= r->bytes;
		if (c->sess.version >= 2)
			conn_send_reply(s, c, r->out.data, r->out.len);
		else
			conn_send_frame(s, c, r->out.data, r->out.len, true);
		handler_req_free(r);
		queued = true;
	}
	/* Only with something to write: a dispatch that only started
	 * requests (every PUT at P=1) flushed, sealed and re-checked the
	 * events of a connection with nothing to send. */
	if (!c->dead && (queued || c->closing))
		srv_conn_want_flush(s, c);
}

void handler_end_sessions(sisy_server *s, const char *user)
{
	for (srv_conn *c = s->conns; c; c = c->next)
		if (!c->dead && c->kind == CK_CLIENT &&
		    c->state == CONN_READY && strcmp(c->user, user) == 0) {
			/* Replies already finished still go out first. */
			handler_flush_replies(s, c);
			conn_end_session(s, c);
		}
}

void handler_complete(sisy_server *s, srv_req *r)
{
	srv_conn *c = r->conn;
	assert(!r->parked && !r->in_node && r->fwd_out_id == 0);
	if (c == NULL) {
		fwd_answer(s, r); /* a follower's request: back to it */
		return;
	}
	if (r->kind == REQ_READ)
		c->running_reads--;
	else
		c->running_writes--;
	r->done = true;
	if (c->dead || c->dispatching)
		return; /* freed with the connection / the dispatch loop goes
			   on */
	if (s->defer_dispatch && c->undispatched == NULL) {
		/* An apply batch answers many requests of a connection at
		 * once: flush its replies and update its events once for all
		 * of them, after the node's turn. Only when nothing waits to
		 * be dispatched: a request this one held back (a read behind
		 * a write) starts now, so that the node's turn still sees
		 * it. */
		if (!c->completed) {
			c->completed = true;
			c->cnext = s->completed;
			s->completed = c;
		}
		return;
	}
	handler_dispatch(s, c);
	if (!c->dead)
		srv_conn_update_events(s, c);
}

void handler_run_completed(sisy_server *s)
{
	assert(!s->defer_dispatch);
	while (s->completed) {
		srv_conn *c = s->completed;
		s->completed = c->cnext;
		c->completed = false;
		c->cnext = NULL;
		if (c->dead || c->dispatching)
			continue;
		handler_dispatch(s, c);
		if (!c->dead)
			srv_conn_update_events(s, c);
	}
}
