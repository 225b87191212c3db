/* writes.c — what runs on the leader: PUT, DEL, BATCH, user changes, and
 * CLUSTER ADD NODE / REMOVE NODE / FAILOVER (srv_int.h).
 *
 * A write becomes a proposal to the metadata group carrying the client's
 * ORIGINAL (client id, sequence, lowest unanswered) and the user's name;
 * it is answered from the node's callback once the entry is committed and
 * applied here (the node's table of waiters, keyed by (term, index)). The
 * state machine checks the user's role again where the entry is applied.
 *
 * Where it runs:
 *   this node leads            -> proposed here
 *   another node leads          -> forwarded to it (forward.c); a request
 *                                  that was itself forwarded to us is
 *                                  answered NOT_LEADER instead (no chains)
 *   no leader known, or busy    -> parked: tried again every tick and at
 *   handing over, a membership     once when a leader appears, until
 *   change pending                 leader_wait_ms have passed, then
 *                                  NO_LEADER (or the last error)
 * A leader that loses its role answers its pending writes OUTCOME_UNKNOWN
 * (never "failed": they may still commit); the client retries with the
 * same client id and sequence, which the exactly-once table makes safe.
 *
 * CLUSTER FAILOVER waits (parked) until this node no longer leads.
 */
#include "srv_int.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "sisy.pb-c.h"

/* ---------------------------------------------------------- parking */

/* The parked list is a FIFO: requests are tried again in the order they
 * were parked, so the writes of one connection keep their order. And a
 * connection's later writes are not dispatched while one of its writes is
 * parked (handler.c), so they cannot overtake it. */
static void count_parked(srv_req *r, int d)
{
	if (r->conn && r->kind == REQ_WRITE)
		r->conn->parked_writes =
		    (size_t)((long)r->conn->parked_writes + d);
}

void park(sisy_server *s, srv_req *r)
{
	assert(!r->parked && !r->in_node);
	r->parked = true;
	reqlist_push(&s->parked, &s->parked_tail, r);
	s->nparked++;
	count_parked(r, 1);
}

void unpark(sisy_server *s, srv_req *r)
{
	assert(r->parked);
	reqlist_remove(&s->parked, &s->parked_tail, r);
	r->parked = false;
	s->nparked--;
	count_parked(r, -1);
}

void parked_tick(sisy_server *s)
{
	/* Detach the list: a retry that parks again joins the new one. */
	srv_req *list = s->parked;
	s->parked = s->parked_tail = NULL;
	while (list) {
		srv_req *r = list;
		srv_conn *c = r->conn; /* r may be freed by its retry */
		list = r->pnext;
		r->pnext = r->pprev = NULL;
		r->parked = false;
		s->nparked--;
		count_parked(r, -1);
		if (r->kind == REQ_READ)
			reads_retry(s, r);
		else
			writes_retry(s, r);
		/* Its connection's next writes may go now. */
		if (c && !c->dead && c->parked_writes == 0 && c->undispatched)
			handler_dispatch(s, c);
	}
}

/* ---------------------------------------------------------- answers */

static void answer_ok(srv_req *r, uint64_t version, bool existed)
{
	pack_write_ok(r, version, existed);
}

static void answer_conflict(srv_req *r, const sisy_node_result *res)
{
	char msg[96];
	Sisy__WriteResult w = SISY__WRITE_RESULT__INIT;
	Sisy__Response resp = SISY__RESPONSE__INIT;
	w.failed_op = res->failed_op;
	w.current_version = res->current_version;
	if (r->nops > 1)
		snprintf(msg, sizeof msg,
			 "condition failed (operation %u of the batch); "
			 "nothing was applied",
			 res->failed_op + 1);
	else
		snprintf(msg, sizeof msg,
			 res->current_version
			     ? "condition failed: the key's version is %llu"
			     : "condition failed: the key does not exist",
			 (unsigned long long)res->current_version);
	resp.status = SISY__STATUS__CONFLICT;
	resp.message = msg;
	resp.result_case = SISY__RESPONSE__RESULT_WRITE;
	resp.write = &w;
	handler_pack(r, &resp);
}

static const char *user_named(const Sisy__Request *m)
{
	switch (m->op_case) {
	case SISY__REQUEST__OP_USER_ADD:
		return m->user_add->name;
	case SISY__REQUEST__OP_USER_DEL:
		return m->user_del->name;
	case SISY__REQUEST__OP_USER_ROLE:
		return m->user_role->name;
	case SISY__REQUEST__OP_USER_PASSWORD:
		return m->user_password->name;
	default:
		return "";
	}
}

/* What the state machine said about a user change. */
static void answer_user(srv_req *r, const sisy_node_result *res)
{
	char msg[320];
	const char *name = user_named(r->msg);
	if (name[0] == '\0')
		name = r->user;
	switch (res->status) {
	case SISY_OK:
		answer_ok(r, res->index, res->existed);
		return;
	case SISY_E_NOTFOUND:
		snprintf(msg, sizeof msg, "no user named %s", name);
		break;
	case SISY_E_EXISTS:
		snprintf(msg, sizeof msg, "a user named %s exists already",
			 name);
		break;
	case SISY_E_PERM:
		snprintf(msg, sizeof msg,
			 "permission denied (user %s may not do this, or %s "
			 "is the last admin: a cluster keeps at least one)",
			 r->user, name);
		break;
	case SISY_E_TOOBIG:
		snprintf(msg, sizeof msg, "the user table is full");
		break;
	default:
		snprintf(msg, sizeof msg, "%s", sisy_strerror(res->status));
	}
	handler_fail(r, res->status, msg);
}

/* The join token for CLUSTER ADD NODE: the secret, the cluster key's
 * fingerprint, the new node's id and address, and where to find the
 * cluster (this node first: it leads now). */
static void answer_token(sisy_server *s, srv_req *r,
			 const sisy_node_result *res)
{
	srv_token t;
	sisy_node_status st;
	sisy_buf text = {0};
	memset(&t, 0, sizeof t);
	memcpy(t.secret, r->token, sizeof t.secret);
	token_cluster_fpr(s->id.cluster_pk, t.cluster_fpr);
	t.node_id = res->node_id;
	snprintf(t.address, sizeof t.address, "%s",
		 r->msg->cluster_add_node->address);
	snprintf(t.addrs[t.naddrs++], sizeof t.addrs[0], "%s",
		 sisy_config_advertise(&s->cfg));
	if (sisy_node_status_get(s->node, SRV_GROUP, &st) == SISY_OK)
		for (size_t i = 0; i < st.n_members; i++)
			if (st.members[i].id != s->id.node_id &&
			    st.members[i].address[0] &&
			    t.naddrs < TOKEN_MAX_ADDRS)
				snprintf(t.addrs[t.naddrs++], sizeof t.addrs[0],
					 "%s", st.members[i].address);
	sisy_err rc = token_encode(&t, &text);
	sodium_memzero(&t, sizeof t);
	if (rc != SISY_OK) {
		handler_fail(r, rc, sisy_errmsg());
	} else {
		Sisy__ClusterAddNodeResult ar =
		    SISY__CLUSTER_ADD_NODE_RESULT__INIT;
		ar.token = (char *)text.data;
		ar.node_id = res->node_id;
		Sisy__Response resp = SISY__RESPONSE__INIT;
		resp.result_case = SISY__RESPONSE__RESULT_CLUSTER_ADD_NODE;
		resp.cluster_add_node = &ar;
		handler_pack(r, &resp);
		sisy_log(s->log, SISY_LOG_INFO, "server",
			 "join token issued by %s for node %" PRIu64 " at %s",
			 r->user, res->node_id,
			 r->msg->cluster_add_node->address);
	}
	sodium_memzero(text.data, text.cap);
	sisy_buf_free(&text);
}

void writes_answer(srv_req *r, sisy_err status, const sisy_node_result *res)
{
	if (status != SISY_OK) {
		handler_fail(r, status,
			     status == SISY_E_UNKNOWN_OUTCOME
				 ? "the leader lost its role before the "
				   "write was answered: it may or may not "
				   "apply; retry with the same client id and "
				   "sequence"
				 : "the server is shutting down");
		return;
	}
	switch (r->msg->op_case) {
	case SISY__REQUEST__OP_PUT:
	case SISY__REQUEST__OP_DEL:
	case SISY__REQUEST__OP_BATCH:
		if (res->status == SISY_OK)
			answer_ok(r, res->index, res->existed);
		else if (res->status == SISY_E_CONFLICT)
			answer_conflict(r, res);
		else if (res->status == SISY_E_STALE)
			handler_fail(r, SISY_E_INVAL,
				     "this write's sequence number was "
				     "answered already (below the client's "
				     "lowest unanswered)");
		else if (res->status == SISY_E_BUSY)
			handler_fail(r, SISY_E_BUSY,
				     "too many unanswered writes from this "
				     "client; wait for answers");
		else if (res->status == SISY_E_PERM)
			handler_fail(r, SISY_E_PERM,
				     "permission denied (the user's role "
				     "changed)");
		else
			handler_fail(r, res->status, NULL);
		break;
	case SISY__REQUEST__OP_CLUSTER_ADD_NODE:
		if (res->status == SISY_OK)
			answer_token(r->srv, r, res);
		else
			handler_fail(r, res->status,
				     res->status == SISY_E_PERM
					 ? "permission denied"
					 : NULL);
		break;
	case SISY__REQUEST__OP_CLUSTER_REMOVE_NODE:
		if (res->status == SISY_OK)
			answer_ok(r, res->index, false);
		else
			handler_fail(r, res->status, NULL);
		break;
	default:
		answer_user(r, res);
	}
}

/* ---------------------------------------------------------- proposing */

static void on_written(void *ctx, sisy_err status, const sisy_node_result *res)
{
	srv_req *r = ctx;
	r->in_node = false;
	writes_answer(r, status, res);
	handler_complete(r->srv, r);
}

static bool fill_verifier(const Sisy__Verifier *v, sisy_auth_verifier *out)
{
	if (v == NULL || v->salt.len != SISY_AUTH_SALT ||
	    v->public_key.len != SISY_AUTH_PK)
		return false;
	memcpy(out->salt, v->salt.data, SISY_AUTH_SALT);
	memcpy(out->pk, v->public_key.data, SISY_AUTH_PK);
	out->opslimit = v->opslimit;
	out->memlimit = v->memlimit;
	return true;
}

static sisy_err propose(sisy_server *s, srv_req *r)
{
	const Sisy__Request *m = r->msg;
	sisy_node_cmd cmd;
	memset(&cmd, 0, sizeof cmd);
	cmd.client_id = m->client_id;
	cmd.seq = m->seq;
	cmd.lowest_unanswered = m->lowest_unanswered;
	cmd.user = r->user;
	switch (m->op_case) {
	case SISY__REQUEST__OP_PUT:
	case SISY__REQUEST__OP_DEL:
	case SISY__REQUEST__OP_BATCH:
		cmd.kind = SISY_NODE_CMD_KV;
		cmd.ops = r->ops;
		cmd.nops = r->nops;
		break;
	case SISY__REQUEST__OP_USER_ADD:
		cmd.kind = SISY_NODE_CMD_USER_ADD;
		cmd.name = m->user_add->name;
		cmd.role = (sisy_role)m->user_add->role;
		fill_verifier(m->user_add->verifier, &cmd.verifier);
		break;
	case SISY__REQUEST__OP_USER_DEL:
		cmd.kind = SISY_NODE_CMD_USER_DEL;
		cmd.name = m->user_del->name;
		break;
	case SISY__REQUEST__OP_USER_ROLE:
		cmd.kind = SISY_NODE_CMD_USER_ROLE;
		cmd.name = m->user_role->name;
		cmd.role = (sisy_role)m->user_role->role;
		break;
	case SISY__REQUEST__OP_USER_PASSWORD:
		cmd.kind = SISY_NODE_CMD_USER_PASSWORD;
		cmd.name = m->user_password->name[0] ? m->user_password->name
						     : r->user;
		fill_verifier(m->user_password->verifier, &cmd.verifier);
		break;
	case SISY__REQUEST__OP_CLUSTER_ADD_NODE:
		/* One token per request, whatever the retries. No client
		 * sequence: a retried ADD NODE just makes another token. */
		if (!r->token_set) {
			sisy_node_token_random(r->token);
			r->token_set = true;
		}
		cmd.kind = SISY_NODE_CMD_TOKEN_NEW;
		cmd.client_id = cmd.seq = cmd.lowest_unanswered = 0;
		cmd.address = m->cluster_add_node->address;
		memcpy(cmd.token, r->token, sizeof cmd.token);
		break;
	default:
		return sisy_errf(SISY_E_INTERNAL, "writes.c: not a write");
	}
	return sisy_node_propose(s->node, SRV_GROUP, &cmd, on_written, r);
}

/* Runs r here; SISY_OK when a node callback (or, for FAILOVER, the
 * parked wait) will finish it. */
static sisy_err execute(sisy_server *s, srv_req *r)
{
	const Sisy__Request *m = r->msg;
	sisy_err rc;
	switch (m->op_case) {
	case SISY__REQUEST__OP_CLUSTER_REMOVE_NODE:
		rc = sisy_node_change(s->node, SRV_GROUP, SISY_NODE_REMOVE,
				      m->cluster_remove_node->node_id, NULL,
				      NULL, on_written, r);
		if (rc == SISY_OK)
			r->in_node = true;
		return rc;
	case SISY__REQUEST__OP_CLUSTER_FAILOVER:
		if (sisy_node_leader(s->node, SRV_GROUP, NULL, 0) !=
		    s->id.node_id)
			return sisy_errf(SISY_E_NOTLEADER, "not the leader");
		rc = sisy_node_transfer(s->node, SRV_GROUP,
					m->cluster_failover->to);
		if (rc == SISY_OK) {
			r->attempts = UINT32_MAX; /* transferring: wait */
			park(s, r);
		}
		return rc;
	default:
		rc = propose(s, r);
		if (rc == SISY_OK)
			r->in_node = true;
		return rc;
	}
}

/* FAILOVER: done once this node no longer leads. */
static void failover_wait(sisy_server *s, srv_req *r)
{
	uint64_t to = r->msg->cluster_failover->to;
	uint64_t leader = sisy_node_leader(s->node, SRV_GROUP, NULL, 0);
	if (leader != s->id.node_id && leader != 0) {
		if (to == 0 || leader == to) {
			answer_ok(r, 0, false);
		} else {
			char msg[160];
			snprintf(msg, sizeof msg,
				 "node %" PRIu64 " was elected instead of "
				 "node %" PRIu64 "; ask again",
				 leader, to);
			handler_fail(r, SISY_E_CONFLICT, msg);
		}
		handler_complete(s, r);
		return;
	}
	if (sisy_now_ms() >= r->deadline_ms) {
		handler_fail(r, SISY_E_TIMEOUT,
			     "leadership did not move in time (is the "
			     "target a caught-up voter that is up?)");
		handler_complete(s, r);
		return;
	}
	park(s, r);
}

/* Worth waiting for: the situation changes by itself shortly. BUSY is
 * backpressure (applying lags, too many writes wait) and is answered at
 * once, except while this node hands its leadership over. */
static bool transient(sisy_server *s, sisy_err rc)
{
	return rc == SISY_E_NOLEADER || rc == SISY_E_CONFLICT ||
	       (rc == SISY_E_BUSY && s->draining);
}

static void try_write(sisy_server *s, srv_req *r)
{
	char addr[SISY_NODE_MAX_ADDR + 1];
	if (r->conn && r->conn->dead) {
		handler_fail(r, SISY_E_CLOSED, "the client left");
		handler_complete(s, r);
		return;
	}
	if (r->attempts == UINT32_MAX) {
		failover_wait(s, r);
		return;
	}
	/* The leader's address only when an answer names it (formatting it
	 * for every write cost ~650 instructions per PUT). */
	uint64_t leader = sisy_node_leader(s->node, SRV_GROUP, NULL, 0);
	if (leader != 0 && leader != s->id.node_id && r->conn != NULL &&
	    !s->closing) {
		fwd_out(s, r, leader);
		return;
	}
	sisy_err rc = execute(s, r);
	if (rc == SISY_OK)
		return;
	char msg[300];
	snprintf(msg, sizeof msg, "%s", sisy_errmsg());
	if (r->conn == NULL) {
		/* Forwarded to us: the follower waits and retries, not us. */
		if (rc == SISY_E_NOTLEADER || rc == SISY_E_NOLEADER) {
			leader = sisy_node_leader(s->node, SRV_GROUP, addr,
						  sizeof addr);
			snprintf(msg, sizeof msg, "%s",
				 leader ? addr : "no leader known");
		}
		handler_fail(r, rc, msg);
		handler_complete(s, r);
		return;
	}
	if (transient(s, rc) && sisy_now_ms() < r->deadline_ms && !s->closing) {
		park(s, r);
		return;
	}
	if (rc == SISY_E_NOLEADER)
		snprintf(msg, sizeof msg,
			 "no leader elected within %u ms (is a majority of "
			 "the cluster up?)",
			 s->cfg.leader_wait_ms);
	handler_fail(r, rc, msg);
	handler_complete(s, r);
}

void writes_start(sisy_server *s, srv_req *r)
{
	r->deadline_ms = s->turn_ms + s->cfg.leader_wait_ms;
	try_write(s, r);
}

void writes_retry(sisy_server *s, srv_req *r)
{
	try_write(s, r);
}
