/* forward.c — followers forward what must run on the leader (seed §4),
 * and the leader runs what followers forward (srv_int.h, peer.proto).
 *
 * Follower side. A client's write (or user change, or CLUSTER ADD /
 * REMOVE / FAILOVER) that arrives at a follower goes to the leader as a
 * ForwardRequest holding the ORIGINAL Request (its id, client id, sequence
 * and lowest unanswered sequence) and the user's name; the leader's
 * ForwardResponse is relayed to the client as it is. In flight, a forward
 * is in a table by forward id (ids grow by one; the table has
 * SRV_MAX_FORWARDS slots, and a slot still taken when its id comes round
 * again means BUSY) and in a list in sending order (timeouts, and lost
 * connections, walk it). The leader's NOT_LEADER / NO_LEADER mean "not
 * here": the request is parked and tried again (writes.c) until its
 * deadline; its BUSY (backpressure) goes to the client as it is. A forward
 * whose connection broke, or whose answer did not come within
 * forward_timeout_ms (or, once another node leads, within two election
 * timeouts: a partitioned old leader may never answer) may or may not have
 * been applied: a request that carries a client id and sequence is simply
 * tried again (exactly-once makes the repeat safe); any other is answered
 * OUTCOME_UNKNOWN. A forward goes only over a connection that is up: with
 * the leader unreachable, the request waits for a leader that is.
 *
 * Leader side. A ForwardRequest from node F is decoded, the user's role is
 * looked up in THIS node's copy of the replicated user table (the role the
 * follower sent is not trusted), checked, and run as a local write would
 * be, except that it is never forwarded again: not being the leader (any
 * more) is answered at once, and the follower retries. The answer goes
 * back on this node's own connection to F.
 */
#include "srv_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coding.h"
#include "peer.pb-c.h"
#include "sisy.pb-c.h"

/* ---------------------------------------------------------- the table */

static void fwd_remove(sisy_server *s, srv_req *r)
{
	size_t slot = r->fwd_out_id % SRV_MAX_FORWARDS;
	if (s->fwd[slot] == r)
		s->fwd[slot] = NULL;
	reqlist_remove(&s->fwd_head, &s->fwd_tail, r);
	r->fwd_out_id = 0;
	s->nfwd--;
}

/* Safe to send again: the node applies it once per (client id, seq). */
static bool repeatable(const srv_req *r)
{
	if (r->msg->client_id == 0)
		return false;
	switch (r->msg->op_case) {
	case SISY__REQUEST__OP_PUT:
	case SISY__REQUEST__OP_DEL:
	case SISY__REQUEST__OP_BATCH:
	case SISY__REQUEST__OP_USER_ADD:
	case SISY__REQUEST__OP_USER_DEL:
	case SISY__REQUEST__OP_USER_ROLE:
	case SISY__REQUEST__OP_USER_PASSWORD:
		return true;
	default:
		return false;
	}
}

/* The forward's outcome is unknown: try again, or say so. */
static void lost(sisy_server *s, srv_req *r, const char *why)
{
	uint64_t now = sisy_now_ms();
	if (repeatable(r) && !s->closing && r->attempts < 8) {
		r->attempts++;
		if (r->deadline_ms < now + s->cfg.leader_wait_ms)
			r->deadline_ms = now + s->cfg.leader_wait_ms;
		park(s, r);
		return;
	}
	char msg[200];
	snprintf(msg, sizeof msg,
		 "%s: the write may or may not have been applied; retry "
		 "with the same client id and sequence",
		 why);
	handler_fail(r, SISY_E_UNKNOWN_OUTCOME, msg);
	handler_complete(s, r);
}

/* ---------------------------------------------------- follower side */

void fwd_out(sisy_server *s, srv_req *r, uint64_t to)
{
	srv_peer *p = peer_get(s, to, true);
	uint64_t now = sisy_now_ms();
	if (p == NULL || p->out == NULL || p->out->state != CONN_READY) {
		/* Not connected (yet): dial, and wait for it or for another
		 * leader. */
		peer_send_msg(s, to, NULL, 0);
		if (now < r->deadline_ms && !s->closing) {
			park(s, r);
			return;
		}
		handler_fail(r, SISY_E_NOLEADER,
			     "the leader is unreachable from this node; "
			     "retry, or ask another node");
		handler_complete(s, r);
		return;
	}
	if (s->fwd == NULL)
		s->fwd = calloc(SRV_MAX_FORWARDS, sizeof *s->fwd);
	uint64_t id = ++s->fwd_next;
	if (s->fwd == NULL || s->fwd[id % SRV_MAX_FORWARDS] != NULL) {
		handler_fail(r, SISY_E_BUSY,
			     "too many writes forwarded to the leader; retry "
			     "shortly");
		handler_complete(s, r);
		return;
	}
	Sisy__ForwardRequest fr = SISY__FORWARD_REQUEST__INIT;
	fr.forward_id = id;
	fr.user = r->user;
	fr.role = (Sisy__Role)r->role;
	fr.request = r->msg;
	Sisy__PeerMessage pm = SISY__PEER_MESSAGE__INIT;
	pm.body_case = SISY__PEER_MESSAGE__BODY_FORWARD;
	pm.forward = &fr;
	size_t n = sisy__peer_message__get_packed_size(&pm);
	uint8_t *buf = malloc(n);
	if (buf == NULL) {
		handler_fail(r, SISY_E_NOMEM, "out of memory");
		handler_complete(s, r);
		return;
	}
	sisy__peer_message__pack(&pm, buf);
	peer_send_msg(s, to, buf, n);
	free(buf);
	r->fwd_out_id = id;
	r->fwd_out_to = to;
	r->fwd_sent_ms = now;
	s->fwd[id % SRV_MAX_FORWARDS] = r;
	reqlist_push(&s->fwd_head, &s->fwd_tail, r);
	s->nfwd++;
	s->n_forwarded++;
}

void fwd_on_response(sisy_server *s, uint64_t from, Sisy__PeerMessage *pm)
{
	const Sisy__ForwardResponse *fr = pm->forward_response;
	uint64_t id = fr->forward_id;
	srv_req *r = s->fwd ? s->fwd[id % SRV_MAX_FORWARDS] : NULL;
	if (r == NULL || r->fwd_out_id != id || r->fwd_out_to != from)
		return; /* timed out meanwhile, or not ours */
	fwd_remove(s, r);
	Sisy__Response *resp = fr->response;
	if (resp == NULL) {
		lost(s, r, "the leader sent an empty answer");
		return;
	}
	switch (resp->status) {
	case SISY__STATUS__NOT_LEADER:
	case SISY__STATUS__NO_LEADER:
		/* Not applied: ask again (the leader may have changed). */
		if (sisy_now_ms() < r->deadline_ms && !s->closing) {
			park(s, r);
			return;
		}
		break;
	case SISY__STATUS__OUTCOME_UNKNOWN:
		lost(s, r, "the leader lost its role meanwhile");
		return;
	default:
		break;
	}
	handler_pack(r, resp);
	handler_complete(s, r);
}

void fwd_peer_lost(sisy_server *s, uint64_t to)
{
	srv_req *next;
	for (srv_req *r = s->fwd_head; r; r = next) {
		next = r->pnext;
		if (r->fwd_out_to != to)
			continue;
		fwd_remove(s, r);
		lost(s, r, "the connection to the leader broke");
	}
}

void fwd_leader_changed(sisy_server *s, uint64_t leader)
{
	/* The old leader, if alive, answers its pending writes at once
	 * (OUTCOME_UNKNOWN, or the result); give it two election timeouts,
	 * then stop waiting for it. */
	s->fwd_hurry_leader = leader;
	s->fwd_hurry_ms =
	    sisy_now_ms() + 2ull * s->cfg.election_ticks * s->cfg.tick_ms;
}

/* Forwards still waiting on a node that no longer leads. */
static void hurry(sisy_server *s)
{
	srv_req *next;
	s->fwd_hurry_ms = 0;
	for (srv_req *r = s->fwd_head; r; r = next) {
		next = r->pnext;
		if (r->fwd_out_to == s->fwd_hurry_leader ||
		    r->msg->op_case == SISY__REQUEST__OP_CLUSTER_FAILOVER)
			continue; /* a failover answers after the change */
		fwd_remove(s, r);
		lost(s, r, "the leader changed before it answered");
	}
}

void fwd_tick(sisy_server *s)
{
	uint64_t now = sisy_now_ms();
	if (s->fwd_hurry_ms && now >= s->fwd_hurry_ms)
		hurry(s);
	while (s->fwd_head &&
	       now - s->fwd_head->fwd_sent_ms > s->cfg.forward_timeout_ms) {
		srv_req *r = s->fwd_head;
		fwd_remove(s, r);
		lost(s, r, "the leader did not answer in time");
	}
}

void fwd_free_all(sisy_server *s)
{
	while (s->fwd_head) {
		srv_req *r = s->fwd_head;
		fwd_remove(s, r);
		handler_fail(r, SISY_E_CLOSED, "the server is shutting down");
		handler_complete(s, r);
	}
	free(s->fwd);
	s->fwd = NULL;
}

/* ------------------------------------------------------ leader side */

void fwd_on_request(sisy_server *s, uint64_t from, Sisy__PeerMessage *pm)
{
	const Sisy__ForwardRequest *f = pm->forward;
	srv_req *r = calloc(1, sizeof *r);
	if (r == NULL) {
		sisy__peer_message__free_unpacked(pm, NULL);
		return;
	}
	r->srv = s;
	r->holder = pm;
	r->msg = f->request;
	r->fwd_from = from;
	r->fwd_id = f->forward_id;
	s->n_forwards_in++;
	if (r->msg == NULL || r->msg->op_case == SISY__REQUEST__OP__NOT_SET) {
		handler_fail(r, SISY_E_INVAL, "malformed forwarded request");
		fwd_answer(s, r);
		return;
	}
	/* The role as this node's user table has it, not as sent. */
	snprintf(r->user, sizeof r->user, "%s", f->user ? f->user : "");
	r->role = SISY_ROLE_NONE;
	if (sisy_auth_user_valid(r->user))
		sisy_node_user_lookup(s->node, r->user, &r->role, NULL);
	handler_classify(r);
	if (r->kind != REQ_WRITE) {
		if (r->out.len == 0)
			handler_fail(r, SISY_E_INVAL,
				     "only writes are forwarded");
		fwd_answer(s, r);
		return;
	}
	writes_start(s, r);
}

/* PeerMessage{forward_response{forward_id, response}}, the response being
 * r->out as packed already (no unpack/repack). */
void fwd_answer(sisy_server *s, srv_req *r)
{
	if (!s->closing) {
		uint8_t inner_hdr[1 + 10 + 1 + 10], outer_hdr[1 + 10];
		size_t ih = 0, oh = 0;
		inner_hdr[ih++] = (1 << 3) | 0; /* forward_id, varint */
		ih += sisy_put_varint64(inner_hdr + ih, r->fwd_id);
		inner_hdr[ih++] = (2 << 3) | 2; /* response, bytes */
		ih += sisy_put_varint64(inner_hdr + ih, r->out.len);
		size_t inner = ih + r->out.len;
		outer_hdr[oh++] = (3 << 3) | 2; /* forward_response */
		oh += sisy_put_varint64(outer_hdr + oh, inner);
		uint8_t *buf = malloc(oh + inner);
		if (buf != NULL) {
			memcpy(buf, outer_hdr, oh);
			memcpy(buf + oh, inner_hdr, ih);
			if (r->out.len)
				memcpy(buf + oh + ih, r->out.data, r->out.len);
			peer_send_msg(s, r->fwd_from, buf, oh + inner);
			free(buf);
		}
	}
	handler_req_free(r);
}
