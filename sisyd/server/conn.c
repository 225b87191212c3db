/* conn.c — one connection on the event loop: reading frames, writing
 * sealed frames, the handshakes (srv_int.h).
 *
 * Accepted connections (every one starts as CK_CLIENT in CONN_HELLO):
 *
 *   HELLO --ClientHello(CLIENT)--> LOGIN --LoginStart--> PROOF
 *         --LoginProof--> READY            (\--wrong--> PENALTY -> closed)
 *   HELLO --ClientHello(PEER|SNAPSHOT, cert)--> NODE_PROOF --NodeProof-->
 *         READY as CK_PEER_IN / CK_SNAP_IN
 *   HELLO --ClientHello(JOIN)--> READY as CK_JOIN (join.c)
 *
 * Before READY the frame limit is SISY_FRAME_MAX_PRELOGIN and the whole
 * dance has a deadline (server.c sweeps). The server never runs Argon2id:
 * a login costs one key exchange, one signature and one signature check.
 * A wrong proof is answered only after the rate limiter's delay
 * (ratelimit.c); a right one at once. A node proves its certified key on
 * its first sealed frame (NodeProof) and must be a member (peer.c).
 *
 * Dialed connections (CK_PEER_OUT, CK_SNAP_OUT; conn_dial):
 *
 *   CONNECTING --connected--> (ClientHello sent) SERVER_HELLO
 *     --ServerHello: the expected node of our cluster--> (NodeProof sent)
 *     READY
 */
#include "srv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "peer.pb-c.h"
#include "sisy.pb-c.h"

#define READ_CHUNK 65536

/* Appends a frame (sealed unless still in the handshake) to the output. */
static void frame_out(sisy_server *s, srv_conn *c, const void *msg, size_t len,
		      bool sealed)
{
	if (c->dead)
		return;
	size_t start = c->out.len;
	sisy_err rc = sisy_buf_reserve(&c->out, SISY_FRAME_HDR);
	if (rc == SISY_OK) {
		c->out.len += SISY_FRAME_HDR;
		if (sealed)
			rc = sisy_session_seal(&c->sess, msg, len, &c->out);
		else
			rc = sisy_buf_append(&c->out, msg, len);
	}
	if (rc != SISY_OK) {
		c->out.len = start;
		srv_conn_close(s, c, "out of memory sealing a frame");
		return;
	}
	size_t plen = c->out.len - start - SISY_FRAME_HDR;
	sisy_put_be32(c->out.data + start, (uint32_t)plen);
}

void conn_seal_batch(sisy_server *s, srv_conn *c)
{
	if (c->rbatch_n == 0)
		return;
	frame_out(s, c, c->rbatch.data, c->rbatch.len, true);
	c->rbatch_n = 0;
	sisy_buf_clear(&c->rbatch);
	if (c->rbatch.cap > 256 * 1024)
		sisy_buf_free(&c->rbatch);
}

void conn_send_frame(sisy_server *s, srv_conn *c, const void *msg, size_t len,
		     bool sealed)
{
	conn_seal_batch(s, c);
	frame_out(s, c, msg, len, sealed);
}

/* A batch stays within SISY_BATCH_TARGET bytes unless one reply alone is
 * larger (that one then travels in a frame of its own), so a frame never
 * exceeds what a single reply may be (handler_pack). */
void conn_send_reply(sisy_server *s, srv_conn *c, const void *msg, size_t len)
{
	if (c->dead)
		return;
	if (c->rbatch_n > 0 &&
	    (c->rbatch_n == SISY_BATCH_MAX_MSGS ||
	     c->rbatch.len + SISY_BATCH_HDR_MAX + len > SISY_BATCH_TARGET))
		conn_seal_batch(s, c);
	if (sisy_batch_append(&c->rbatch, msg, len) != SISY_OK) {
		srv_conn_close(s, c, "out of memory batching replies");
		return;
	}
	c->rbatch_n++;
	if (c->rbatch.len >= SISY_BATCH_TARGET)
		conn_seal_batch(s, c);
}

size_t conn_unsent(const srv_conn *c)
{
	return c->out.len - c->out_off;
}

void conn_send_msg(sisy_server *s, srv_conn *c, const void *protobuf_msg)
{
	const ProtobufCMessage *m = protobuf_msg;
	size_t n = protobuf_c_message_get_packed_size(m);
	if (sisy_buf_reserve(&c->plain, n) != SISY_OK) {
		srv_conn_close(s, c, "out of memory");
		return;
	}
	protobuf_c_message_pack(m, c->plain.data);
	conn_send_frame(s, c, c->plain.data, n, true);
}

static void connected(sisy_server *s, srv_conn *c);

void conn_on_writable(sisy_server *s, srv_conn *c)
{
	if (c->state == CONN_CONNECTING) {
		connected(s, c);
		return;
	}
	while (c->out_off < c->out.len) {
		ssize_t n = write(c->fd, c->out.data + c->out_off,
				  c->out.len - c->out_off);
		if (n > 0) {
			c->out_off += (size_t)n;
			c->stall_ms = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (c->stall_ms == 0)
				c->stall_ms = sisy_now_ms();
			break;
		}
		srv_conn_close(s, c, "write failed");
		return;
	}
	if (c->out_off == c->out.len) {
		c->out_off = 0;
		sisy_buf_clear(&c->out);
		if (c->out.cap > 256 * 1024)
			sisy_buf_free(&c->out);
		c->stall_ms = 0;
		if (c->closing) {
			srv_conn_close(s, c, "session ended");
			return;
		}
	}
	if (c->kind == CK_SNAP_OUT)
		snap_on_writable(s, c);
	if (!c->dead)
		srv_conn_update_events(s, c);
}

/* Sends what is queued and closes (a goodbye, a refusal). */
static void finish(sisy_server *s, srv_conn *c)
{
	c->closing = true;
	conn_on_writable(s, c);
}

void conn_end_session(sisy_server *s, srv_conn *c)
{
	if (c->dead || c->closing)
		return;
	sisy_buf fin = {0};
	if (sisy_session_seal_final(&c->sess, &fin) == SISY_OK) {
		/* The final frame is sealed already: frame it raw. */
		conn_send_frame(s, c, fin.data, fin.len, false);
	}
	sisy_buf_free(&fin);
	finish(s, c);
}

/* ------------------------------------------------------ accepting side */

static void on_hello(sisy_server *s, srv_conn *c, sisy_slice frame)
{
	sisy_buf out = {0};
	int purpose = 0;
	sisy_hs_peer peer;
	sisy_err rc = sisy_hs_server_answer_node(&s->id, frame, &out, &c->sess,
						 &purpose, &peer);
	if (out.len)
		conn_send_frame(s, c, out.data, out.len, false);
	sisy_buf_free(&out);
	if (rc != SISY_OK) {
		s->n_proto_errors++;
		sisy_log(s->log,
			 rc == SISY_E_PERM ? SISY_LOG_WARN : SISY_LOG_DEBUG,
			 "server", "%s: %s", c->addr, sisy_errmsg());
		finish(s, c);
		return;
	}
	switch (purpose) {
	case SISY_PURPOSE_PEER:
	case SISY_PURPOSE_SNAPSHOT:
		c->kind =
		    purpose == SISY_PURPOSE_PEER ? CK_PEER_IN : CK_SNAP_IN;
		c->peer_id = peer.node_id;
		memcpy(c->peer_pk, peer.node_pk, sizeof c->peer_pk);
		c->state = CONN_NODE_PROOF;
		break;
	case SISY_PURPOSE_JOIN:
		/* The token in its JoinRequest is what authorises it. */
		c->kind = CK_JOIN;
		c->state = CONN_READY;
		break;
	default:
		if (s->stop_requested) {
			/* Shutting down: a client goes to another node. */
			finish(s, c);
			return;
		}
		c->state = CONN_LOGIN;
	}
	conn_on_writable(s, c);
}

/* The replicated user table is there once the first entries (the
 * cluster record and first admin) are applied: a node that just started
 * from `sisyd init`, or joined and has not caught up, has none yet. */
static bool users_ready(sisy_server *s)
{
	sisy_node_status st;
	return sisy_node_status_get(s->node, SRV_GROUP, &st) == SISY_OK &&
	       st.applied >= 2;
}

static void on_login_start(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	Sisy__LoginStart *ls =
	    sisy__login_start__unpack(NULL, msg.len, msg.data);
	memset(&c->login, 0, sizeof c->login);
	c->login_known = false;
	/* Decided now: the table may fill in before the proof comes. */
	c->login_not_ready = !users_ready(s);
	if (ls == NULL || !sisy_auth_user_valid(ls->user)) {
		/* Not even a plausible name: still a challenge, so that
		 * malformed names look like unknown ones. */
		snprintf(c->login_name, sizeof c->login_name, "%s", "?");
	} else {
		snprintf(c->login_name, sizeof c->login_name, "%s", ls->user);
		c->login_known = sisy_node_user_lookup(
		    s->node, ls->user, &c->login_role, &c->login);
	}
	if (ls)
		sisy__login_start__free_unpacked(ls, NULL);
	if (!c->login_known) {
		sisy_auth_fake_salt(s->fake_salt_key, c->login_name,
				    c->login.salt);
		c->login.opslimit = SISY_AUTH_OPS_MIN;
		c->login.memlimit = SISY_AUTH_MEM_MIN;
		memcpy(c->login.pk, s->dummy_pk, sizeof c->login.pk);
	}
	Sisy__LoginChallenge ch = SISY__LOGIN_CHALLENGE__INIT;
	ch.salt.data = c->login.salt;
	ch.salt.len = sizeof c->login.salt;
	ch.opslimit = c->login.opslimit;
	ch.memlimit = c->login.memlimit;
	ch.alg = crypto_pwhash_ALG_ARGON2ID13;
	conn_send_msg(s, c, &ch.base);
	c->state = CONN_PROOF;
	conn_on_writable(s, c);
}

static void send_login_result(sisy_server *s, srv_conn *c, bool ok)
{
	Sisy__LoginResult lr = SISY__LOGIN_RESULT__INIT;
	lr.status = ok ? SISY__STATUS__OK : SISY__STATUS__AUTH_FAILED;
	lr.message = ok ? "" : "wrong user name or password";
	if (!ok && !c->login_known && c->login_not_ready) {
		lr.status = SISY__STATUS__UNAVAILABLE;
		lr.message = "this node has no user table yet (it is starting "
			     "or catching up with the cluster); retry in a "
			     "moment";
	}
	if (ok) {
		lr.user = c->user;
		lr.role = (Sisy__Role)c->role;
		lr.node_id = s->id.node_id;
		lr.node_role = s->role_name;
	}
	conn_send_msg(s, c, &lr.base);
}

void conn_penalty_expired(sisy_server *s, srv_conn *c)
{
	send_login_result(s, c, false);
	finish(s, c);
}

static void on_login_proof(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	Sisy__LoginProof *lp =
	    sisy__login_proof__unpack(NULL, msg.len, msg.data);
	/* Unknown users are checked against a dummy key, so both paths cost
	 * the same. */
	bool ok = lp && lp->signature.len == SISY_AUTH_SIG &&
		  sisy_auth_check(c->login.pk, c->sess.transcript,
				  c->login_name, lp->signature.data) &&
		  c->login_known;
	if (lp)
		sisy__login_proof__free_unpacked(lp, NULL);
	if (ok) {
		snprintf(c->user, sizeof c->user, "%s", c->login_name);
		c->role = c->login_role;
		sodium_memzero(&c->login, sizeof c->login);
		c->state = CONN_READY;
		srv_unauth_remove(s, c);
		sisy_frame_reader_set_max(&c->rd, SISY_FRAME_MAX);
		s->n_logins++;
		send_login_result(s, c, true);
		conn_on_writable(s, c);
		return;
	}
	s->n_login_failures++;
	uint32_t delay =
	    !c->login_known && c->login_not_ready
		? 0
		: ratelimit_fail(s->rl, c->addr, c->login_name, sisy_now_ms());
	sisy_log(s->log, SISY_LOG_INFO, "server",
		 "failed login for '%s' from %s%s", c->login_name, c->addr,
		 delay ? " (answer delayed)" : "");
	if (delay == 0) {
		conn_penalty_expired(s, c);
		return;
	}
	c->state = CONN_PENALTY;
	c->penalty_ms = sisy_now_ms() + delay;
	srv_conn_update_events(s, c);
}

static void on_node_proof(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	if (!peer_check_proof(s, c, msg)) {
		s->n_peer_refused++;
		srv_conn_close(s, c, "node refused");
		return;
	}
	c->state = CONN_READY;
	srv_unauth_remove(s, c);
	sisy_frame_reader_set_max(&c->rd, SRV_PEER_FRAME_MAX);
	snprintf(c->user, sizeof c->user, "node %" PRIu64, c->peer_id);
}

/* -------------------------------------------------------- dialing side */

/* "host:port" or "[v6]:port" into its parts. */
static bool split_addr(const char *addr, char *host, size_t hcap, char *port,
		       size_t pcap)
{
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || colon[1] == '\0')
		return false;
	size_t hl = (size_t)(colon - addr);
	const char *h = addr;
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hcap || strlen(colon + 1) >= pcap)
		return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	snprintf(port, pcap, "%s", colon + 1);
	return true;
}

srv_conn *conn_dial(sisy_server *s, const char *addr, conn_kind kind,
		    uint64_t peer_id)
{
	char host[256], port[16];
	struct addrinfo hints = {0}, *res = NULL;
	if (!split_addr(addr, host, sizeof host, port, sizeof port)) {
		sisy_log(s->log, SISY_LOG_WARN, "server",
			 "node %" PRIu64 ": bad address '%s'", peer_id, addr);
		return NULL;
	}
	hints.ai_socktype = SOCK_STREAM;
	/* IP literals (the usual case) resolve without a lookup; a host
	 * name is resolved here, on the loop (docs/server.md). */
	hints.ai_flags = AI_NUMERICHOST;
	if (getaddrinfo(host, port, &hints, &res) != 0) {
		hints.ai_flags = 0;
		if (getaddrinfo(host, port, &hints, &res) != 0)
			return NULL;
	}
	int fd = socket(res->ai_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, res->ai_addr, res->ai_addrlen) != 0 &&
		       errno != EINPROGRESS)) {
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return NULL;
	}
	freeaddrinfo(res);
	srv_conn *c = srv_conn_add(s, fd, kind, CONN_CONNECTING);
	if (c == NULL)
		return NULL;
	c->peer_id = peer_id;
	snprintf(c->addr, sizeof c->addr, "%s", addr);
	return c;
}

static void connected(sisy_server *s, srv_conn *c)
{
	int err = 0;
	socklen_t sl = sizeof err;
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl) != 0 ||
	    err != 0) {
		srv_conn_close(s, c, err ? strerror(err) : "connect failed");
		return;
	}
	c->hs = calloc(1, sizeof *c->hs);
	sisy_buf hello = {0};
	int purpose =
	    c->kind == CK_PEER_OUT ? SISY_PURPOSE_PEER : SISY_PURPOSE_SNAPSHOT;
	if (c->hs == NULL || sisy_hs_client_hello_as(c->hs, purpose, &s->id,
						     &hello) != SISY_OK) {
		sisy_buf_free(&hello);
		srv_conn_close(s, c, "out of memory");
		return;
	}
	c->state = CONN_SERVER_HELLO;
	conn_send_frame(s, c, hello.data, hello.len, false);
	sisy_buf_free(&hello);
	conn_on_writable(s, c);
}

static void on_server_hello(sisy_server *s, srv_conn *c, sisy_slice frame)
{
	sisy_hs_server_info info;
	sisy_err rc = sisy_hs_client_finish(c->hs, frame, &info, &c->sess);
	sodium_memzero(c->hs, sizeof *c->hs);
	free(c->hs);
	c->hs = NULL;
	if (rc != SISY_OK) {
		srv_conn_close(s, c, sisy_errmsg());
		return;
	}
	/* The node we meant, of our cluster (same key, same id). */
	if (sodium_memcmp(info.cluster_pk, s->id.cluster_pk, SISY_SIGN_PK) !=
		0 ||
	    sodium_memcmp(info.cluster_id, s->id.cluster_id, SISY_CLUSTER_ID) !=
		0) {
		s->n_peer_refused++;
		srv_conn_close(s, c, "a node of another cluster answered");
		return;
	}
	if (info.node_id != c->peer_id ||
	    !sisy_node_peer_allowed(s->node, info.node_id, info.node_pk)) {
		s->n_peer_refused++;
		sisy_log(s->log, SISY_LOG_WARN, "server",
			 "dialed node %" PRIu64 " at %s, node %" PRIu64
			 " answered (or a key the membership does not "
			 "know): refused",
			 c->peer_id, c->addr, info.node_id);
		srv_conn_close(s, c, "the wrong node answered");
		return;
	}
	memcpy(c->peer_pk, info.node_pk, sizeof c->peer_pk);
	uint8_t sig[SISY_SIGN_BYTES];
	sisy_hs_node_prove(&s->id, c->sess.transcript, sig);
	Sisy__NodeProof np = SISY__NODE_PROOF__INIT;
	np.signature.data = sig;
	np.signature.len = sizeof sig;
	np.address = (char *)sisy_config_advertise(&s->cfg);
	conn_send_msg(s, c, &np.base);
	c->state = CONN_READY;
	sisy_frame_reader_set_max(&c->rd, SRV_PEER_FRAME_MAX);
	snprintf(c->user, sizeof c->user, "node %" PRIu64, c->peer_id);
	if (c->kind == CK_PEER_OUT)
		peer_out_ready(s, c);
	else
		snap_out_ready(s, c);
	srv_conn_want_flush(s, c);
}

/* ----------------------------------------------------------- frames */

/* One complete frame. Returns false when the connection is done. */
static bool on_frame(sisy_server *s, srv_conn *c, sisy_slice frame)
{
	if (c->state == CONN_HELLO) {
		on_hello(s, c, frame);
		return !c->dead && !c->closing;
	}
	if (c->state == CONN_SERVER_HELLO) {
		on_server_hello(s, c, frame);
		return !c->dead;
	}
	sisy_err rc = sisy_session_open(&c->sess, frame, &c->plain);
	if (rc == SISY_E_CLOSED) {
		finish(s, c); /* the other end said goodbye */
		return false;
	}
	if (rc != SISY_OK) {
		s->n_proto_errors++;
		srv_conn_close(s, c, sisy_errmsg());
		return false;
	}
	sisy_slice msg = sisy_buf_slice(&c->plain);
	switch (c->state) {
	case CONN_LOGIN:
		on_login_start(s, c, msg);
		break;
	case CONN_PROOF:
		on_login_proof(s, c, msg);
		break;
	case CONN_NODE_PROOF:
		on_node_proof(s, c, msg);
		break;
	case CONN_READY:
		switch (c->kind) {
		case CK_CLIENT:
			if (c->sess.version >= 2)
				handler_on_batch(s, c, msg);
			else
				handler_on_request(s, c, msg);
			break;
		case CK_PEER_IN:
			peer_on_frame(s, c, msg);
			break;
		case CK_SNAP_IN:
		case CK_SNAP_OUT:
			snap_on_frame(s, c, msg);
			break;
		case CK_JOIN:
			join_on_frame(s, c, msg);
			break;
		default:
			/* Nothing comes back on our own Raft connections. */
			srv_conn_close(s, c, "unexpected frame");
		}
		break;
	default:
		srv_conn_close(s, c, "unexpected frame");
		return false;
	}
	return !c->dead && !c->closing && c->state != CONN_PENALTY;
}

void conn_on_readable(sisy_server *s, srv_conn *c)
{
	uint8_t buf[READ_CHUNK];
	if (!c->reading)
		return;
	/* A handshake storm gets a bounded share of each loop iteration. */
	if (c->state != CONN_READY) {
		if (s->handshake_budget == 0)
			return;
		s->handshake_budget--;
	}
	ssize_t n = read(c->fd, buf, sizeof buf);
	if (n == 0) {
		srv_conn_close(s, c, "closed by the other end");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			srv_conn_close(s, c, "read failed");
		return;
	}
	c->active_ms = s->turn_ms;
	size_t off = 0;
	while (off < (size_t)n && !c->dead) {
		size_t used = 0;
		bool done = false;
		sisy_slice frame;
		if (sisy_frame_whole(&c->rd, buf + off, (size_t)n - off, &frame,
				     &used)) {
			/* In place, from buf: no copy into the reader. */
			off += used;
			if (!on_frame(s, c, frame))
				return;
			continue;
		}
		sisy_err rc = sisy_frame_feed(
		    &c->rd, buf + off, (size_t)n - off, &used, &done, &frame);
		off += used;
		if (rc != SISY_OK) {
			s->n_proto_errors++;
			srv_conn_close(s, c, sisy_errmsg());
			return;
		}
		if (!done)
			break;
		bool go_on = on_frame(s, c, frame);
		if (!c->dead)
			sisy_frame_reader_next(&c->rd);
		if (!go_on)
			return; /* anything after a goodbye is ignored */
	}
	if (c->dead)
		return;
	c->partial_ms = sisy_frame_reader_partial(&c->rd)
			    ? (c->partial_ms ? c->partial_ms : c->active_ms)
			    : 0;
	if (c->kind == CK_CLIENT && c->state == CONN_READY)
		handler_dispatch(s, c);
	srv_conn_update_events(s, c);
}
