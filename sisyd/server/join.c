/* join.c — the leader's side of `sisyd init --join TOKEN` (srv_int.h,
 * peer.proto JoinRequest / JoinResponse, docs/operations.md).
 *
 * A joining node has no certificate yet: it opens a JOIN connection (the
 * handshake proves who WE are; it checks our cluster key against the
 * fingerprint in its token) and sends one JoinRequest: the token's secret,
 * its fresh identity key, its address. Here, on the leader:
 *   1. TOKEN_CLAIM is proposed: the claim goes through the log, so a token
 *      works once, whichever node leads; the state machine answers the
 *      node id that CLUSTER ADD NODE reserved (the same id again for the
 *      same key asking twice);
 *   2. the node is added to the metadata group as a learner, with the
 *      address and key it proved (retried while another membership change
 *      is pending); the leader promotes it to voter once it caught up;
 *   3. its key is certified for that id with the cluster key, and the
 *      answer carries the certificate and the cluster key itself (every
 *      member holds it: docs/security.md).
 * Not the leader: NOT_LEADER with the leader's address; the joiner asks
 * there. Each step is bounded (JOIN_MS); a joiner that goes away midway
 * leaves a claimed token (get a new one) and perhaps a learner that never
 * shows up (CLUSTER REMOVE NODE it).
 */
#include "srv_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "peer.pb-c.h"
#include "sisy.pb-c.h"
#include "wire.h"

#define JOIN_MS	      10000
#define JOINS_AT_ONCE 4 /* unauthenticated work (a log entry each): few */

struct srv_join {
	srv_join *next; /* s->joins: waiting to retry the membership change */
	bool waiting;
	srv_conn *c;  /* NULL once the joiner is gone */
	bool in_node; /* a node callback will come */
	uint8_t token[SISY_NODE_TOKEN];
	uint8_t pk[SISY_NODE_KEY];
	char address[SISY_NODE_MAX_ADDR + 1];
	uint64_t node_id;
	uint64_t deadline_ms;
	sisy_server *s;
};

static void unlink_waiting(sisy_server *s, srv_join *j)
{
	for (srv_join **p = &s->joins; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	j->next = NULL;
	j->waiting = false;
}

/* j is done with the joiner's connection: it leaves the waiting list, and is
 * freed unless a node callback is still to come (it frees j then). */
static void release(sisy_server *s, srv_join *j)
{
	j->c = NULL;
	if (j->waiting)
		unlink_waiting(s, j);
	if (!j->in_node) {
		s->njoins--;
		sodium_memzero(j, sizeof *j);
		free(j);
	}
}

/* Sends the answer and ends the connection; frees j when it can. */
static void reply(sisy_server *s, srv_join *j, sisy_err rc, const char *msg)
{
	srv_conn *c = j->c;
	if (c != NULL && !c->dead) {
		char leader_addr[SISY_NODE_MAX_ADDR + 1] = "";
		Sisy__JoinResponse jr = SISY__JOIN_RESPONSE__INIT;
		Sisy__NodeCert cert = SISY__NODE_CERT__INIT;
		uint8_t sig[SISY_SIGN_BYTES];
		uint64_t groups[1] = {SRV_GROUP};
		jr.status = (Sisy__Status)sisy_wire_err_status(rc);
		jr.message = (char *)(msg ? msg : "");
		if (rc == SISY_E_NOTLEADER) {
			sisy_node_leader(s->node, SRV_GROUP, leader_addr,
					 sizeof leader_addr);
			jr.leader_address = leader_addr;
		}
		if (rc == SISY_OK) {
			sisy_trust_cert_sign(&s->ck, j->node_id, j->pk, sig);
			cert.cluster_id.data = s->ck.cluster_id;
			cert.cluster_id.len = SISY_CLUSTER_ID;
			cert.node_id = j->node_id;
			cert.node_pk.data = j->pk;
			cert.node_pk.len = SISY_SIGN_PK;
			cert.cluster_pk.data = s->ck.pk;
			cert.cluster_pk.len = SISY_SIGN_PK;
			cert.signature.data = sig;
			cert.signature.len = sizeof sig;
			jr.node_id = j->node_id;
			jr.cert = &cert;
			jr.n_groups = 1;
			jr.groups = groups;
			jr.cluster_key.data = s->ck.sk;
			jr.cluster_key.len = SISY_SIGN_SK;
		}
		Sisy__PeerMessage pm = SISY__PEER_MESSAGE__INIT;
		pm.body_case = SISY__PEER_MESSAGE__BODY_JOIN_RESPONSE;
		pm.join_response = &jr;
		conn_send_msg(s, c, &pm);
		sodium_memzero(c->plain.data, c->plain.cap);
		c->closing = true;
		srv_conn_want_flush(s, c);
		c->join = NULL;
		sisy_log(s->log, rc == SISY_OK ? SISY_LOG_INFO : SISY_LOG_WARN,
			 "server", "join from %s as node %" PRIu64 ": %s",
			 c->addr, j->node_id, rc == SISY_OK ? "accepted" : msg);
	}
	release(s, j);
}

static bool is_member(sisy_server *s, uint64_t id)
{
	sisy_node_status st;
	if (sisy_node_status_get(s->node, SRV_GROUP, &st) != SISY_OK)
		return false;
	for (size_t i = 0; i < st.n_members; i++)
		if (st.members[i].id == id)
			return true;
	return false;
}

static void on_added(void *ctx, sisy_err status, const sisy_node_result *res);

static void add_learner(sisy_server *s, srv_join *j)
{
	if (is_member(s, j->node_id)) {
		reply(s, j, SISY_OK, NULL); /* the same node, again */
		return;
	}
	sisy_err rc =
	    sisy_node_change(s->node, SRV_GROUP, SISY_NODE_ADD_LEARNER,
			     j->node_id, j->address, j->pk, on_added, j);
	if (rc == SISY_OK) {
		j->in_node = true;
		return;
	}
	if ((rc == SISY_E_CONFLICT || rc == SISY_E_BUSY) &&
	    sisy_now_ms() < j->deadline_ms) {
		if (!j->waiting) {
			j->waiting = true;
			j->next = s->joins;
			s->joins = j;
		}
		return;
	}
	reply(s, j, rc, sisy_errmsg());
}

static void on_added(void *ctx, sisy_err status, const sisy_node_result *res)
{
	srv_join *j = ctx;
	sisy_server *s = j->s;
	j->in_node = false;
	if (status == SISY_OK && res->status == SISY_OK)
		reply(s, j, SISY_OK, NULL);
	else
		reply(s, j, status != SISY_OK ? status : res->status,
		      "adding the node to the membership failed; run "
		      "`sisyd init --join` again");
}

static void on_claimed(void *ctx, sisy_err status, const sisy_node_result *res)
{
	srv_join *j = ctx;
	sisy_server *s = j->s;
	j->in_node = false;
	if (j->c == NULL || s->closing) {
		reply(s, j, SISY_E_CLOSED, NULL);
		return;
	}
	if (status != SISY_OK) {
		reply(s, j, status,
		      "the leader changed while the token was claimed; try "
		      "again");
		return;
	}
	switch (res->status) {
	case SISY_OK:
		j->node_id = res->node_id;
		add_learner(s, j);
		return;
	case SISY_E_NOTFOUND:
		reply(s, j, SISY_E_AUTH,
		      "unknown join token (CLUSTER ADD NODE makes one)");
		return;
	case SISY_E_PERM:
		reply(s, j, SISY_E_AUTH,
		      "the join token was used already or has expired; make "
		      "a new one with CLUSTER ADD NODE");
		return;
	default:
		reply(s, j, res->status, "the token claim failed");
	}
}

void join_on_frame(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	if (c->join != NULL) {
		srv_conn_close(s, c, "one join request per connection");
		return;
	}
	Sisy__PeerMessage *pm =
	    sisy__peer_message__unpack(NULL, msg.len, msg.data);
	const Sisy__JoinRequest *jq =
	    pm && pm->body_case == SISY__PEER_MESSAGE__BODY_JOIN ? pm->join
								 : NULL;
	srv_join *j = calloc(1, sizeof *j);
	if (j == NULL || jq == NULL || jq->token.len != SISY_NODE_TOKEN ||
	    jq->node_pk.len != SISY_NODE_KEY || jq->address == NULL ||
	    strlen(jq->address) == 0 ||
	    strlen(jq->address) > SISY_NODE_MAX_ADDR) {
		if (pm)
			sisy__peer_message__free_unpacked(pm, NULL);
		free(j);
		s->n_proto_errors++;
		srv_conn_close(s, c, "a malformed join request");
		return;
	}
	if (s->njoins >= JOINS_AT_ONCE) {
		sisy__peer_message__free_unpacked(pm, NULL);
		free(j);
		srv_conn_close(s, c, "too many joins at once");
		return;
	}
	s->njoins++;
	j->s = s;
	j->c = c;
	c->join = j;
	memcpy(j->token, jq->token.data, sizeof j->token);
	memcpy(j->pk, jq->node_pk.data, sizeof j->pk);
	snprintf(j->address, sizeof j->address, "%s", jq->address);
	sodium_memzero(jq->token.data, jq->token.len);
	sisy__peer_message__free_unpacked(pm, NULL);
	j->deadline_ms = sisy_now_ms() + JOIN_MS;
	/* The handshake time limit no longer applies: this one is bounded
	 * by JOIN_MS. */
	c->state = CONN_READY;
	srv_unauth_remove(s, c);
	sisy_node_cmd cmd;
	memset(&cmd, 0, sizeof cmd);
	cmd.kind = SISY_NODE_CMD_TOKEN_CLAIM;
	cmd.address = j->address;
	memcpy(cmd.token, j->token, sizeof cmd.token);
	memcpy(cmd.node_key, j->pk, sizeof cmd.node_key);
	sisy_err rc =
	    sisy_node_propose(s->node, SRV_GROUP, &cmd, on_claimed, j);
	sodium_memzero(cmd.token, sizeof cmd.token);
	if (rc == SISY_OK) {
		j->in_node = true;
		return;
	}
	reply(s, j, rc,
	      rc == SISY_E_NOTLEADER  ? "not the leader"
	      : rc == SISY_E_NOLEADER ? "no leader now; try again shortly"
				      : sisy_errmsg());
}

void join_closed(sisy_server *s, srv_conn *c)
{
	srv_join *j = c->join;
	c->join = NULL;
	if (j == NULL)
		return;
	release(s, j);
}

void join_tick(sisy_server *s)
{
	srv_join *list = s->joins;
	s->joins = NULL;
	while (list) {
		srv_join *j = list;
		list = j->next;
		j->next = NULL;
		j->waiting = false;
		add_learner(s, j);
	}
}
