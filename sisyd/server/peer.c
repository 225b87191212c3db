/* peer.c — connections between nodes (srv_int.h, peer.proto).
 *
 * One connection per ordered pair of nodes: everything node A sends to
 * node B (Raft batches, forwarded requests and their answers, reports)
 * goes over the connection A dialed to B; B never writes on it. So each
 * side's sending is independent of the other's dialing, and two nodes
 * dialing each other at once need no tie-break.
 *
 * Sending. The node's send callback (peer_send) gets one RaftBatch frame
 * per destination per loop turn (sisyd/node batches a turn's messages);
 * it is sealed into the connection's output at once and written with
 * everything else at the end of the turn: one write(2) per peer per turn.
 * While the connection is being set up, messages wait in a bounded queue
 * (SRV_PEER_QUEUE; past it they are dropped: Raft retries); a connection
 * whose unsent output passed SRV_PEER_OUT_MAX drops new messages too.
 *
 * Dialing. A peer is dialed when something is to be sent to it and no
 * connection is up or on its way, at most once per backoff period (50 ms,
 * doubling to 500 ms, back to 50 ms once a handshake succeeds). A sign
 * that the peer is up again cuts the wait short: its own connection to us
 * passing its NodeProof dials at once (a restarted node, a healed link),
 * and any frame from it brings the next dial within BACKOFF_MIN_MS. So a
 * node that comes back is reached in a round trip, not after the backoff
 * grew while it was away, and dialing stays at most one per
 * BACKOFF_MIN_MS however many frames arrive. The address
 * comes from peer_routes (a fault proxy), else the membership (the node's
 * address book), else the address the peer announced in its NodeProof
 * (a node that just joined knows nobody's address until it hears from
 * them). The handshake (conn.c) checks that the node answering is the one
 * dialed, of our cluster, with the key the membership knows.
 *
 * Receiving. A node's connection to us is accepted once its certificate
 * (checked in the hello) and its NodeProof hold and the node is allowed
 * (sisy_node_peer_allowed: in the membership with that key, or anyone of
 * our cluster while we know no membership yet). A RaftBatch frame is
 * handed to the node as it is; a node the node refuses (removed, key
 * changed) loses its connection.
 *
 * Reports. Every SRV_REPORT_MS each node sends every member a NodeReport
 * (its role, term, commit and applied index): CLUSTER NODES shows them.
 * Sending them also keeps a connection to every member up, so an election
 * does not wait for a dial.
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

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 500

/* The table is full: a node that is no member any more and that we are
 * not connected to makes room (removed and replaced nodes come and go
 * over a cluster's life). */
static bool evict_one(sisy_server *s)
{
	sisy_node_status st;
	if (s->node == NULL ||
	    sisy_node_status_get(s->node, SRV_GROUP, &st) != SISY_OK)
		return false;
	for (size_t i = 0; i < s->npeers; i++) {
		srv_peer *p = s->peers[i];
		bool member = false;
		for (size_t m = 0; m < st.n_members; m++)
			member = member || st.members[m].id == p->id;
		if (member || p->out != NULL)
			continue;
		sisy_buf_free(&p->pending);
		free(p);
		s->peers[i] = s->peers[--s->npeers];
		return true;
	}
	return false;
}

srv_peer *peer_get(sisy_server *s, uint64_t id, bool create)
{
	for (size_t i = 0; i < s->npeers; i++)
		if (s->peers[i]->id == id)
			return s->peers[i];
	if (!create || id == 0 || id == s->id.node_id ||
	    (s->npeers == SRV_MAX_PEERS && !evict_one(s)))
		return NULL;
	srv_peer *p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	p->id = id;
	p->backoff_ms = BACKOFF_MIN_MS;
	s->peers[s->npeers++] = p;
	return p;
}

bool peer_addr(sisy_server *s, uint64_t id, char *out, size_t cap)
{
	if (sisy_config_route(&s->cfg, id, out, cap))
		return true;
	if (s->node && sisy_node_peer_addr(s->node, id, out, cap))
		return true;
	srv_peer *p = peer_get(s, id, false);
	if (p && p->hint[0]) {
		snprintf(out, cap, "%s", p->hint);
		return true;
	}
	return false;
}

static void dial(sisy_server *s, srv_peer *p)
{
	char addr[SISY_NODE_MAX_ADDR + 1];
	uint64_t now = sisy_now_ms();
	if (p->out != NULL || now < p->next_dial_ms || s->closing)
		return;
	p->next_dial_ms = now + p->backoff_ms;
	p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							   : p->backoff_ms * 2;
	if (!peer_addr(s, p->id, addr, sizeof addr))
		return;
	srv_conn *c = conn_dial(s, addr, CK_PEER_OUT, p->id);
	if (c == NULL)
		return;
	c->peer = p;
	p->out = c;
}

/* The peer showed it is up: forget the backoff. `now`: dial at once if no
 * connection is up or on its way; else the next dial waits at most
 * BACKOFF_MIN_MS. */
static void peer_is_up(sisy_server *s, srv_peer *p, bool now)
{
	uint64_t soon = sisy_now_ms() + BACKOFF_MIN_MS;
	p->backoff_ms = BACKOFF_MIN_MS;
	if (now)
		p->next_dial_ms = 0;
	else if (p->next_dial_ms > soon)
		p->next_dial_ms = soon;
	if (now && p->out == NULL)
		dial(s, p);
}

void peer_send_msg(sisy_server *s, uint64_t to, const uint8_t *msg, size_t len)
{
	srv_peer *p = peer_get(s, to, true);
	if (p == NULL)
		return;
	srv_conn *c = p->out;
	if (c != NULL && c->state == CONN_READY && !c->dead) {
		if (msg == NULL)
			return;
		if (conn_unsent(c) > SRV_PEER_OUT_MAX)
			return; /* it does not keep up: Raft resends */
		conn_send_frame(s, c, msg, len, true);
		srv_conn_want_flush(s, c);
		return;
	}
	/* Out of memory drops the message whole, as a full queue does. */
	if (msg != NULL &&
	    p->pending.len + SISY_FRAME_HDR + len <= SRV_PEER_QUEUE)
		(void)sisy_frame_append(&p->pending, msg, len);
	dial(s, p);
}

void peer_send(void *ctx, uint64_t to, const uint8_t *frame, size_t len)
{
	peer_send_msg(ctx, to, frame, len);
}

static void send_report_to(sisy_server *s, uint64_t to,
			   const sisy_node_status *st);

void peer_out_ready(sisy_server *s, srv_conn *c)
{
	srv_peer *p = c->peer;
	if (p == NULL)
		return;
	p->backoff_ms = BACKOFF_MIN_MS;
	p->next_dial_ms = 0;
	size_t off = 0;
	while (off + SISY_FRAME_HDR <= p->pending.len && !c->dead) {
		uint32_t n = sisy_get_be32(p->pending.data + off);
		conn_send_frame(s, c, p->pending.data + off + SISY_FRAME_HDR, n,
				true);
		off += SISY_FRAME_HDR + (size_t)n;
	}
	sisy_buf_free(&p->pending);
	sisy_node_status st;
	if (!c->dead && s->node &&
	    sisy_node_status_get(s->node, SRV_GROUP, &st) == SISY_OK)
		send_report_to(s, p->id, &st);
}

void peer_out_closed(sisy_server *s, srv_conn *c)
{
	srv_peer *p = c->peer;
	c->peer = NULL;
	if (p == NULL || p->out != c)
		return;
	p->out = NULL;
	sisy_buf_free(&p->pending);
	if (s->closing || s->node == NULL)
		return;
	sisy_node_report_unreachable(s->node, p->id);
	fwd_peer_lost(s, p->id);
}

void peer_free_all(sisy_server *s)
{
	for (size_t i = 0; i < s->npeers; i++) {
		sisy_buf_free(&s->peers[i]->pending);
		free(s->peers[i]);
	}
	s->npeers = 0;
}

/* ------------------------------------------------------------ receiving */

/* A refused node redials every second: say so once a minute per id. */
static bool warn_refused(sisy_server *s, uint64_t id)
{
	uint64_t now = sisy_now_ms();
	size_t slot = id % (sizeof s->refused / sizeof s->refused[0]);
	if (s->refused[slot].id == id && now - s->refused[slot].ms < 60000)
		return false;
	s->refused[slot].id = id;
	s->refused[slot].ms = now;
	return true;
}

bool peer_check_proof(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	Sisy__NodeProof *np = sisy__node_proof__unpack(NULL, msg.len, msg.data);
	bool ok = np != NULL && np->signature.len == SISY_SIGN_BYTES &&
		  sisy_hs_node_check(c->peer_pk, c->sess.transcript,
				     np->signature.data);
	if (ok && !sisy_node_peer_allowed(s->node, c->peer_id, c->peer_pk)) {
		ok = false;
		sisy_log(s->log,
			 warn_refused(s, c->peer_id) ? SISY_LOG_WARN
						     : SISY_LOG_DEBUG,
			 "server",
			 "node %" PRIu64 " (from %s) is not a member, or not "
			 "with this key (a node whose data was lost joins "
			 "again under a new id): refused",
			 c->peer_id, c->addr);
	}
	srv_peer *p = ok ? peer_get(s, c->peer_id, true) : NULL;
	if (p && np->address && np->address[0] &&
	    strlen(np->address) <= SISY_NODE_MAX_ADDR)
		snprintf(p->hint, sizeof p->hint, "%s", np->address);
	if (p)
		peer_is_up(s, p, true);
	if (np)
		sisy__node_proof__free_unpacked(np, NULL);
	return ok;
}

static void on_report(sisy_server *s, uint64_t from, const Sisy__NodeReport *r)
{
	srv_peer *p = peer_get(s, from, true);
	if (p == NULL || r->node_id != from)
		return;
	p->has_report = true;
	p->report_ms = sisy_now_ms();
	p->term = r->term;
	p->leader = r->leader;
	p->commit = r->commit;
	p->applied = r->applied;
	p->role = (uint8_t)r->role;
	p->learner = r->learner;
	if (r->address && strlen(r->address) <= SISY_NODE_MAX_ADDR)
		snprintf(p->address, sizeof p->address, "%s", r->address);
}

/* The field number of a PeerMessage's body, read from its first key. */
static uint64_t body_field(sisy_slice msg)
{
	uint64_t key = 0;
	if (sisy_get_varint64(msg.data, msg.data + msg.len, &key) == NULL)
		return 0;
	return key >> 3;
}

void peer_on_frame(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	srv_peer *p = peer_get(s, c->peer_id, false);
	if (p && p->out == NULL)
		peer_is_up(s, p, false);
	if (body_field(msg) == SISY__PEER_MESSAGE__BODY_RAFT) {
		/* Raft batches go to the node as they are. */
		sisy_err rc = sisy_node_step(s->node, msg.data, msg.len);
		if (rc == SISY_E_PERM) {
			s->n_peer_refused++;
			srv_conn_close(s, c,
				       "the node is no longer a member (or "
				       "not with this key)");
		} else if (rc == SISY_E_PROTO) {
			s->n_proto_errors++;
			srv_conn_close(s, c, "a malformed Raft batch");
		}
		return;
	}
	Sisy__PeerMessage *pm =
	    sisy__peer_message__unpack(NULL, msg.len, msg.data);
	if (pm == NULL) {
		s->n_proto_errors++;
		srv_conn_close(s, c, "a malformed peer message");
		return;
	}
	switch (pm->body_case) {
	case SISY__PEER_MESSAGE__BODY_FORWARD:
		fwd_on_request(s, c->peer_id, pm); /* takes pm */
		return;
	case SISY__PEER_MESSAGE__BODY_FORWARD_RESPONSE:
		fwd_on_response(s, c->peer_id, pm);
		break;
	case SISY__PEER_MESSAGE__BODY_REPORT:
		on_report(s, c->peer_id, pm->report);
		break;
	default:
		s->n_proto_errors++;
		srv_conn_close(s, c, "an unexpected peer message");
	}
	sisy__peer_message__free_unpacked(pm, NULL);
}

/* ---------------------------------------------------------- reports */

static void send_report_to(sisy_server *s, uint64_t to,
			   const sisy_node_status *st)
{
	Sisy__NodeReport r = SISY__NODE_REPORT__INIT;
	r.node_id = s->id.node_id;
	r.address = (char *)sisy_config_advertise(&s->cfg);
	r.group = st->group;
	r.term = st->term;
	r.role = st->role;
	r.leader = st->leader;
	r.commit = st->commit;
	r.applied = st->applied;
	for (size_t i = 0; i < st->n_members; i++)
		if (st->members[i].id == s->id.node_id)
			r.learner = !st->members[i].voter;
	Sisy__PeerMessage pm = SISY__PEER_MESSAGE__INIT;
	pm.body_case = SISY__PEER_MESSAGE__BODY_REPORT;
	pm.report = &r;
	uint8_t buf[512];
	size_t n = sisy__peer_message__get_packed_size(&pm);
	if (n > sizeof buf)
		return;
	sisy__peer_message__pack(&pm, buf);
	peer_send_msg(s, to, buf, n);
}

void peer_tick(sisy_server *s)
{
	uint64_t now = sisy_now_ms();
	/* Whatever waits for a connection gets its dial. */
	for (size_t i = 0; i < s->npeers; i++)
		if (s->peers[i]->pending.len > 0)
			dial(s, s->peers[i]);
	if (now - s->last_report_ms < SRV_REPORT_MS)
		return;
	s->last_report_ms = now;
	sisy_node_status st;
	if (sisy_node_status_get(s->node, SRV_GROUP, &st) != SISY_OK ||
	    st.removed)
		return;
	for (size_t i = 0; i < st.n_members; i++)
		if (st.members[i].id != s->id.node_id)
			send_report_to(s, st.members[i].id, &st);
}
