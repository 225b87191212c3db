/* conn.c — one client connection on the event loop: reading frames,
 * writing replies, and the pre-login states (srv_int.h).
 *
 *   HELLO --ClientHello--> LOGIN --LoginStart--> PROOF --LoginProof--> READY
 *                                                  \--wrong--> PENALTY ->
 * closed Before READY the frame limit is SISY_FRAME_MAX_PRELOGIN and the whole
 * dance must finish within handshake_timeout_ms (server.c sweeps). The
 * server never runs Argon2id: a login costs one key exchange, one
 * signature and one signature check. A wrong proof is answered only after
 * the rate limiter's delay (ratelimit.c); a right one at once.
 */
#include "srv_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "sisy.pb-c.h"

#define READ_CHUNK 65536

/* Appends a frame (sealed unless still in the handshake) to the output. */
void conn_send_frame(sisy_server *s, srv_conn *c, const void *msg, size_t len,
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
		srv_conn_close(s, c, "out of memory sealing a reply");
		return;
	}
	size_t plen = c->out.len - start - SISY_FRAME_HDR;
	c->out.data[start] = (uint8_t)(plen >> 24);
	c->out.data[start + 1] = (uint8_t)(plen >> 16);
	c->out.data[start + 2] = (uint8_t)(plen >> 8);
	c->out.data[start + 3] = (uint8_t)plen;
}

void conn_on_writable(sisy_server *s, srv_conn *c)
{
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

static void send_msg(sisy_server *s, srv_conn *c, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	if (sisy_buf_reserve(&c->plain, n) != SISY_OK) {
		srv_conn_close(s, c, "out of memory");
		return;
	}
	protobuf_c_message_pack(m, c->plain.data);
	conn_send_frame(s, c, c->plain.data, n, true);
}

static void on_hello(sisy_server *s, srv_conn *c, sisy_slice frame)
{
	sisy_buf out = {0};
	int purpose = 0;
	sisy_err rc =
	    sisy_hs_server_answer(&s->id, frame, &out, &c->sess, &purpose);
	if (out.len)
		conn_send_frame(s, c, out.data, out.len, false);
	sisy_buf_free(&out);
	if (rc != SISY_OK) {
		s->n_proto_errors++;
		sisy_log(s->log, SISY_LOG_DEBUG, "server", "%s: %s", c->addr,
			 sisy_errmsg());
		finish(s, c);
		return;
	}
	c->state = CONN_LOGIN;
	conn_on_writable(s, c);
}

static void on_login_start(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	Sisy__LoginStart *ls =
	    sisy__login_start__unpack(NULL, msg.len, msg.data);
	if (ls == NULL || !sisy_auth_user_valid(ls->user)) {
		/* Not even a plausible name: still a challenge, so that
		 * malformed names look like unknown ones. */
		memset(&c->login, 0, sizeof c->login);
		snprintf(c->login.name, sizeof c->login.name, "%s", "?");
		c->login_known = false;
	} else {
		c->login_known =
		    sisy_users_lookup(s->users, ls->user, &c->login);
		if (!c->login_known) {
			memset(&c->login, 0, sizeof c->login);
			snprintf(c->login.name, sizeof c->login.name, "%s",
				 ls->user);
		}
	}
	if (ls)
		sisy__login_start__free_unpacked(ls, NULL);
	if (!c->login_known) {
		sisy_auth_fake_salt(s->fake_salt_key, c->login.name,
				    c->login.v.salt);
		c->login.v.opslimit = SISY_AUTH_OPS_MIN;
		c->login.v.memlimit = SISY_AUTH_MEM_MIN;
		memcpy(c->login.v.pk, s->dummy_pk, sizeof c->login.v.pk);
	}
	Sisy__LoginChallenge ch = SISY__LOGIN_CHALLENGE__INIT;
	ch.salt.data = c->login.v.salt;
	ch.salt.len = sizeof c->login.v.salt;
	ch.opslimit = c->login.v.opslimit;
	ch.memlimit = c->login.v.memlimit;
	ch.alg = crypto_pwhash_ALG_ARGON2ID13;
	send_msg(s, c, &ch.base);
	c->state = CONN_PROOF;
	conn_on_writable(s, c);
}

static void send_login_result(sisy_server *s, srv_conn *c, bool ok)
{
	Sisy__LoginResult lr = SISY__LOGIN_RESULT__INIT;
	lr.status = ok ? SISY__STATUS__OK : SISY__STATUS__AUTH_FAILED;
	lr.message = ok ? "" : "wrong user name or password";
	if (ok) {
		lr.user = c->user;
		lr.role = (Sisy__Role)c->role;
		lr.node_id = s->id.node_id;
		lr.node_role = "standalone";
	}
	send_msg(s, c, &lr.base);
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
		  sisy_auth_check(c->login.v.pk, c->sess.transcript,
				  c->login.name, lp->signature.data) &&
		  c->login_known;
	if (lp)
		sisy__login_proof__free_unpacked(lp, NULL);
	if (ok) {
		snprintf(c->user, sizeof c->user, "%s", c->login.name);
		c->role = c->login.role;
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
	    ratelimit_fail(s->rl, c->addr, c->login.name, sisy_now_ms());
	sisy_log(s->log, SISY_LOG_INFO, "server",
		 "failed login for '%s' from %s%s", c->login.name, c->addr,
		 delay ? " (answer delayed)" : "");
	if (delay == 0) {
		conn_penalty_expired(s, c);
		return;
	}
	c->state = CONN_PENALTY;
	c->penalty_ms = sisy_now_ms() + delay;
	srv_conn_update_events(s, c);
}

/* One complete frame. Returns false when the connection is done. */
static bool on_frame(sisy_server *s, srv_conn *c, sisy_slice frame)
{
	if (c->state == CONN_HELLO) {
		on_hello(s, c, frame);
		return !c->dead && !c->closing;
	}
	sisy_err rc = sisy_session_open(&c->sess, frame, &c->plain);
	if (rc == SISY_E_CLOSED) {
		finish(s, c); /* the client said goodbye */
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
	case CONN_READY:
		handler_on_request(s, c, msg);
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
		srv_conn_close(s, c, "closed by the client");
		return;
	}
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			srv_conn_close(s, c, "read failed");
		return;
	}
	c->active_ms = sisy_now_ms();
	size_t off = 0;
	while (off < (size_t)n && !c->dead) {
		size_t used = 0;
		bool done = false;
		sisy_slice frame;
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
	if (c->state == CONN_READY)
		handler_dispatch(s, c);
	srv_conn_update_events(s, c);
}
