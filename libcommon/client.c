/* client.c — connecting, the handshake, trust, login and framed I/O of the
 * blocking client (client.h). Requests live in client_req.c.
 *
 * I/O: the socket is non-blocking and every wait is a poll() with the
 * client's timeout, so a silent server can never hang a caller forever.
 * While flushing a long pipeline we also read, so a server that answers
 * while we still write never deadlocks against us.
 */
#include "client_int.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "clock.h"
#include "sisy.pb-c.h"
#include "trust.h"
#include "wire.h"

#define READ_CHUNK 65536

/* Written once (pthread_once) from $HOME, read-only afterwards: the only
 * process-wide state of the library, and immutable. */
static char default_known[4096], default_passfile[4096];
static pthread_once_t paths_once = PTHREAD_ONCE_INIT;

static void init_paths(void)
{
	const char *home = getenv("HOME");
	if (home == NULL || *home == '\0')
		return;
	snprintf(default_known, sizeof default_known, "%s/.sisy/known_servers",
		 home);
	snprintf(default_passfile, sizeof default_passfile, "%s/.sisy/passfile",
		 home);
}

void sisy_client_opts_init(sisy_client_opts *o)
{
	memset(o, 0, sizeof *o);
	pthread_once(&paths_once, init_paths);
	o->known_servers = default_known[0] ? default_known : NULL;
	o->passfile = default_passfile[0] ? default_passfile : NULL;
}

void sisy_client_opts_env(sisy_client_opts *o)
{
	const char *v;
	if ((v = getenv("SISY_HOST")) && *v)
		o->hosts = v;
	if ((v = getenv("SISY_PORT")) && *v) {
		long p = strtol(v, NULL, 10);
		if (p > 0 && p < 65536)
			o->default_port = (uint16_t)p;
	}
	if ((v = getenv("SISY_USER")) && *v)
		o->user = v;
	if ((v = getenv("SISY_PASSWORD")))
		o->password = v;
	if ((v = getenv("SISY_SERVER_KEY")) && *v)
		o->server_key = v;
	if ((v = getenv("SISY_KNOWN_SERVERS")) && *v)
		o->known_servers = v;
	if ((v = getenv("SISY_PASSFILE")) && *v)
		o->passfile = v;
}

sisy_err sisy_client_fingerprint(const char *key_b64, char *out)
{
	uint8_t pk[SISY_SIGN_PK];
	sisy_err rc = sisy_trust_parse_key(key_b64, pk);
	if (rc == SISY_OK)
		sisy_trust_fingerprint(pk, out);
	return rc;
}

void sisy_client_get_info(const sisy_client *c, sisy_client_info *out)
{
	out->host = c->host;
	out->user = c->user;
	out->role = c->role;
	out->node_id = c->node_id;
	out->node_role = c->node_role;
	out->fingerprint = c->fingerprint;
	out->version = c->sess.version;
	out->client_id = c->client_id;
}

uint64_t sisy_client_id(const sisy_client *c)
{
	return c->client_id;
}

size_t sisy_client_inflight(const sisy_client *c)
{
	return c->pend_count;
}

sisy_err client_fail(sisy_client *c, sisy_err rc)
{
	c->dead = true;
	return rc;
}

/* ------------------------------------------------------------------ I/O */

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = sisy_now_ms();
	return now >= deadline ? 0 : (int)(deadline - now);
}

/* Reads what is available into c->in. SISY_E_AGAIN when nothing was. */
static sisy_err read_some(sisy_client *c)
{
	if (c->in_off == c->in.len) {
		c->in_off = 0;
		sisy_buf_clear(&c->in);
	}
	sisy_err rc = sisy_buf_reserve(&c->in, READ_CHUNK);
	if (rc != SISY_OK)
		return rc;
	ssize_t n = read(c->fd, c->in.data + c->in.len, READ_CHUNK);
	if (n > 0) {
		c->in.len += (size_t)n;
		return SISY_OK;
	}
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return SISY_E_AGAIN;
	return sisy_errf(SISY_E_CONN, "client.c: connection to %s lost%s%s",
			 c->host, n < 0 ? ": " : " (closed by the server)",
			 n < 0 ? strerror(errno) : "");
}

sisy_err client_flush(sisy_client *c)
{
	uint64_t deadline = sisy_now_ms() + c->io_timeout_ms;
	if (c->dead)
		return sisy_errf(SISY_E_CONN, "client.c: connection is gone");
	sisy_err src = client_seal_batch(c);
	if (src != SISY_OK)
		return src;
	while (c->out_off < c->out.len) {
		ssize_t n = write(c->fd, c->out.data + c->out_off,
				  c->out.len - c->out_off);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return client_fail(
			    c, sisy_errf(SISY_E_CONN,
					 "client.c: writing to %s: %s", c->host,
					 strerror(errno)));
		struct pollfd p = {.fd = c->fd, .events = POLLOUT | POLLIN};
		int t = remaining_ms(deadline);
		int pr = poll(&p, 1, t);
		if (pr == 0)
			return client_fail(c, sisy_errf(SISY_E_TIMEOUT,
							"client.c: %s stopped "
							"reading",
							c->host));
		if (pr > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
			sisy_err rc = read_some(c);
			if (rc != SISY_OK && rc != SISY_E_AGAIN)
				return client_fail(c, rc);
		}
	}
	c->out_off = 0;
	sisy_buf_clear(&c->out);
	if (c->out.cap > 1024 * 1024)
		sisy_buf_free(&c->out);
	return SISY_OK;
}

/* The next message of the batch in c->plain into c->msg; SISY_E_AGAIN
 * when it is used up. */
static sisy_err next_in_batch(sisy_client *c)
{
	bool done;
	sisy_err rc = sisy_batch_next(sisy_buf_slice(&c->plain), &c->plain_off,
				      &c->msg, &done);
	if (rc != SISY_OK)
		return client_fail(c,
				   sisy_errf(SISY_E_PROTO, "client.c: %s: %s",
					     c->host, sisy_errmsg()));
	return done ? SISY_E_AGAIN : SISY_OK;
}

/* A frame just opened into c->plain: its first message into c->msg. */
static sisy_err first_msg(sisy_client *c)
{
	size_t n;
	if (!c->batched) {
		c->msg = sisy_buf_slice(&c->plain);
		return SISY_OK;
	}
	if (sisy_batch_check(sisy_buf_slice(&c->plain), &n) != SISY_OK)
		return client_fail(c,
				   sisy_errf(SISY_E_PROTO, "client.c: %s: %s",
					     c->host, sisy_errmsg()));
	c->plain_off = 0;
	return next_in_batch(c);
}

/* The next message: from the current batch, else from the next whole frame
 * buffered in c->in (opened into c->plain); or SISY_E_AGAIN. */
static sisy_err next_buffered(sisy_client *c)
{
	if (c->batched && c->plain_off < c->plain.len)
		return next_in_batch(c);
	while (c->in_off < c->in.len) {
		size_t used = 0;
		bool done = false;
		sisy_slice frame;
		sisy_err rc = sisy_frame_feed(&c->rd, c->in.data + c->in_off,
					      c->in.len - c->in_off, &used,
					      &done, &frame);
		c->in_off += used;
		if (rc != SISY_OK)
			return client_fail(c, sisy_errf(SISY_E_PROTO,
							"client.c: %s",
							sisy_errmsg()));
		if (done) {
			rc = sisy_session_open(&c->sess, frame, &c->plain);
			sisy_frame_reader_next(&c->rd);
			if (rc == SISY_E_CLOSED)
				return client_fail(
				    c, sisy_errf(SISY_E_CLOSED,
						 "client.c: %s ended the "
						 "session",
						 c->host));
			if (rc != SISY_OK)
				return client_fail(c, rc);
			return first_msg(c);
		}
	}
	return SISY_E_AGAIN;
}

sisy_err client_try_msg(sisy_client *c)
{
	if (c->dead)
		return sisy_errf(SISY_E_CONN, "client.c: connection is gone");
	sisy_err rc = next_buffered(c);
	if (rc != SISY_E_AGAIN)
		return rc;
	rc = read_some(c);
	if (rc == SISY_OK)
		return next_buffered(c);
	if (rc == SISY_E_AGAIN)
		return rc;
	return client_fail(c, rc);
}

sisy_err client_read_msg(sisy_client *c)
{
	uint64_t deadline = sisy_now_ms() + c->io_timeout_ms;
	for (;;) {
		sisy_err rc = next_buffered(c);
		if (rc != SISY_E_AGAIN)
			return rc;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int pr = poll(&p, 1, remaining_ms(deadline));
		if (pr == 0)
			return client_fail(
			    c, sisy_errf(SISY_E_TIMEOUT,
					 "client.c: no answer from %s "
					 "within %u ms",
					 c->host, c->io_timeout_ms));
		if (pr < 0 && errno != EINTR)
			return client_fail(c, sisy_errf(SISY_E_CONN,
							"client.c: poll: %s",
							strerror(errno)));
		rc = read_some(c);
		if (rc != SISY_OK && rc != SISY_E_AGAIN)
			return client_fail(c, rc);
	}
}

int sisy_client_fd(const sisy_client *c)
{
	return c->fd;
}

/* Seals msg into c->out as one frame. */
static sisy_err seal_frame(sisy_client *c, const void *msg, size_t len)
{
	/* Seal into scratch space after a reserved header, then frame. */
	size_t start = c->out.len;
	sisy_err rc = sisy_buf_reserve(&c->out, SISY_FRAME_HDR);
	if (rc != SISY_OK)
		return rc;
	c->out.len += SISY_FRAME_HDR;
	rc = sisy_session_seal(&c->sess, msg, len, &c->out);
	if (rc != SISY_OK) {
		c->out.len = start;
		return rc;
	}
	size_t plen = c->out.len - start - SISY_FRAME_HDR;
	if (plen > SISY_FRAME_MAX) {
		/* The stream already advanced: this session cannot go on. */
		c->out.len = start;
		return client_fail(c, sisy_errf(SISY_E_TOOBIG,
						"client.c: request of %zu "
						"bytes exceeds the frame limit",
						plen));
	}
	sisy_put_be32(c->out.data + start, (uint32_t)plen);
	return SISY_OK;
}

sisy_err client_seal_batch(sisy_client *c)
{
	if (c->batch_n == 0)
		return SISY_OK;
	sisy_err rc = seal_frame(c, c->batch.data, c->batch.len);
	c->batch_n = 0;
	sisy_buf_clear(&c->batch);
	if (c->batch.cap > 1024 * 1024)
		sisy_buf_free(&c->batch);
	return rc;
}

sisy_err client_queue_msg(sisy_client *c, const void *msg, size_t len)
{
	sisy_err rc = client_seal_batch(c);
	return rc == SISY_OK ? seal_frame(c, msg, len) : rc;
}

/* Plaintext frame I/O for the handshake. */
static sisy_err read_plain_frame(sisy_client *c, sisy_buf *out)
{
	uint64_t deadline = sisy_now_ms() + c->io_timeout_ms;
	for (;;) {
		while (c->in_off < c->in.len) {
			size_t used;
			bool done;
			sisy_slice frame;
			sisy_err rc = sisy_frame_feed(
			    &c->rd, c->in.data + c->in_off,
			    c->in.len - c->in_off, &used, &done, &frame);
			c->in_off += used;
			if (rc != SISY_OK)
				return sisy_errf(SISY_E_PROTO,
						 "client.c: %s is not speaking "
						 "the sisy protocol (%s)",
						 c->host, sisy_errmsg());
			if (done) {
				rc = sisy_buf_set(out, frame.data, frame.len);
				sisy_frame_reader_next(&c->rd);
				return rc;
			}
		}
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int pr = poll(&p, 1, remaining_ms(deadline));
		if (pr == 0)
			return sisy_errf(SISY_E_TIMEOUT,
					 "client.c: %s did not answer the "
					 "handshake",
					 c->host);
		sisy_err rc = read_some(c);
		if (rc != SISY_OK && rc != SISY_E_AGAIN)
			return rc;
	}
}

/* ------------------------------------------------------------ connecting */

static sisy_err tcp_connect(const char *host, const char *port,
			    uint32_t timeout_ms, int *out)
{
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_family = AF_UNSPEC;
	int gai = getaddrinfo(host, port, &hints, &res);
	if (gai != 0)
		return sisy_errf(SISY_E_CONN, "client.c: cannot resolve %s: %s",
				 host, gai_strerror(gai));
	sisy_err rc = SISY_E_CONN;
	int err = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family,
				ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
		    errno != EINPROGRESS) {
			err = errno;
			close(fd);
			continue;
		}
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int pr = poll(&p, 1, (int)timeout_ms);
		socklen_t sl = sizeof err;
		if (pr <= 0) {
			err = pr == 0 ? ETIMEDOUT : errno;
			close(fd);
			continue;
		}
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
		if (err != 0) {
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		*out = fd;
		rc = SISY_OK;
		break;
	}
	freeaddrinfo(res);
	if (rc != SISY_OK)
		return sisy_errf(SISY_E_CONN,
				 "client.c: cannot connect to %s:%s: %s", host,
				 port, strerror(err ? err : ECONNREFUSED));
	return SISY_OK;
}

/* The trust decision (client.h, TRUST). */
static sisy_err check_trust(const sisy_client_opts *o, const char *host,
			    const uint8_t pk[SISY_SIGN_PK], const char *fpr)
{
	if (o->server_key) {
		uint8_t want[SISY_SIGN_PK];
		sisy_err rc = sisy_trust_parse_key(o->server_key, want);
		if (rc != SISY_OK)
			return rc;
		if (sodium_memcmp(want, pk, SISY_SIGN_PK) != 0)
			return sisy_errf(SISY_E_KEYCHANGED,
					 "%s presents cluster key %s, not the "
					 "one given (server key); refusing",
					 host, fpr);
		return SISY_OK;
	}
	sisy_known k = SISY_KNOWN_UNKNOWN;
	if (o->known_servers) {
		sisy_err rc =
		    sisy_trust_known_check(o->known_servers, host, pk, &k);
		if (rc != SISY_OK)
			return rc;
	}
	if (k == SISY_KNOWN_TRUSTED)
		return SISY_OK;
	if (k == SISY_KNOWN_CHANGED)
		return sisy_errf(SISY_E_KEYCHANGED,
				 "WARNING: the server key of %s has changed "
				 "(now %s). Someone may be impersonating the "
				 "cluster. If the cluster was re-created on "
				 "purpose, remove its line from %s",
				 host, fpr, o->known_servers);
	if (o->confirm == NULL || !o->confirm(o->confirm_ctx, host, fpr))
		return sisy_errf(SISY_E_UNTRUSTED,
				 "the cluster key of %s (%s) is not trusted; "
				 "give it with --server-key / SISY_SERVER_KEY "
				 "or accept it once in an interactive shell",
				 host, fpr);
	if (o->known_servers) {
		sisy_err rc = sisy_trust_known_add(o->known_servers, host, pk);
		if (rc != SISY_OK)
			return rc;
	}
	return SISY_OK;
}

static sisy_err login(sisy_client *c, const sisy_client_opts *o,
		      const char *user)
{
	Sisy__LoginChallenge *ch = NULL;
	Sisy__LoginResult *res = NULL;
	uint8_t seed[SISY_AUTH_SEED], pk[SISY_AUTH_PK], sk[SISY_AUTH_SK],
	    sig[SISY_AUTH_SIG];
	bool cached = false, derived = false;
	sisy_err rc;

	Sisy__LoginStart ls = SISY__LOGIN_START__INIT;
	ls.user = (char *)user;
	size_t n = sisy__login_start__get_packed_size(&ls);
	if ((rc = sisy_buf_reserve(&c->plain, n)) != SISY_OK)
		goto fail;
	sisy__login_start__pack(&ls, c->plain.data);
	if ((rc = client_queue_msg(c, c->plain.data, n)) != SISY_OK ||
	    (rc = client_flush(c)) != SISY_OK ||
	    (rc = client_read_msg(c)) != SISY_OK)
		goto fail;
	ch = sisy__login_challenge__unpack(NULL, c->plain.len, c->plain.data);
	if (ch == NULL || ch->salt.len != SISY_AUTH_SALT ||
	    !sisy_auth_params_valid(ch->opslimit, ch->memlimit) ||
	    ch->alg != crypto_pwhash_ALG_ARGON2ID13) {
		rc =
		    sisy_errf(SISY_E_PROTO,
			      "client.c: bad login challenge from %s", c->host);
		goto fail;
	}
	sisy_auth_cache_key ck = {c->fingerprint, user, ch->salt.data,
				  ch->opslimit, ch->memlimit};
	if (o->passfile && sisy_auth_cache_get(o->passfile, &ck, o->password,
					       seed, &cached) != SISY_OK)
		cached = false;
	if (!cached) {
		if (o->password == NULL) {
			rc = sisy_errf(SISY_E_AUTH,
				       "no password for user %s (and no cached "
				       "key in the passfile)",
				       user);
			goto fail;
		}
		rc = sisy_auth_derive(o->password, ch->salt.data, ch->opslimit,
				      ch->memlimit, seed);
		if (rc != SISY_OK)
			goto fail;
		derived = true;
	}
	sisy_auth_keypair(seed, pk, sk);
	sisy_auth_prove(sk, c->sess.transcript, user, sig);
	Sisy__LoginProof lp = SISY__LOGIN_PROOF__INIT;
	lp.signature.data = sig;
	lp.signature.len = sizeof sig;
	n = sisy__login_proof__get_packed_size(&lp);
	if ((rc = sisy_buf_reserve(&c->plain, n)) != SISY_OK)
		goto fail;
	sisy__login_proof__pack(&lp, c->plain.data);
	if ((rc = client_queue_msg(c, c->plain.data, n)) != SISY_OK ||
	    (rc = client_flush(c)) != SISY_OK ||
	    (rc = client_read_msg(c)) != SISY_OK)
		goto fail;
	res = sisy__login_result__unpack(NULL, c->plain.len, c->plain.data);
	if (res == NULL) {
		rc = sisy_errf(SISY_E_PROTO, "client.c: bad login result");
		goto fail;
	}
	if (res->status != SISY__STATUS__OK) {
		if (cached && o->passfile)
			sisy_auth_cache_drop(o->passfile, c->fingerprint, user);
		rc = sisy_errf(
		    sisy_wire_status_err(res->status) == SISY_E_AUTH
			? SISY_E_AUTH
			: sisy_wire_status_err(res->status),
		    "authentication failed for user %s at %s%s%.200s", user,
		    c->host, res->message[0] ? ": " : "", res->message);
		goto fail;
	}
	if (derived && o->passfile)
		(void)sisy_auth_cache_put(o->passfile, &ck, o->password, seed);
	snprintf(c->user, sizeof c->user, "%s", res->user);
	snprintf(c->node_role, sizeof c->node_role, "%s", res->node_role);
	c->role = (sisy_role)res->role;
	c->node_id = res->node_id;
	rc = SISY_OK;
fail:
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(sk, sizeof sk);
	if (ch)
		sisy__login_challenge__free_unpacked(ch, NULL);
	if (res)
		sisy__login_result__free_unpacked(res, NULL);
	return rc;
}

static void client_free(sisy_client *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	sisy_session_wipe(&c->sess);
	sisy_frame_reader_free(&c->rd);
	sisy_buf_free(&c->out);
	sisy_buf_free(&c->in);
	sisy_buf_free(&c->plain);
	sisy_buf_free(&c->batch);
	free(c->pend);
	free(c);
}

/* One host: connect, handshake, trust, login. */
static sisy_err connect_one(const sisy_client_opts *o, const char *host,
			    const char *port, sisy_client **out)
{
	sisy_hs_client hs;
	sisy_hs_server_info info;
	sisy_client *c = calloc(1, sizeof *c);
	if (c == NULL)
		return sisy_errf(SISY_E_NOMEM, "client.c: out of memory");
	c->fd = -1;
	c->io_timeout_ms = o->io_timeout_ms ? o->io_timeout_ms : 30000;
	c->pend = calloc(SISY_CLIENT_MAX_INFLIGHT, sizeof *c->pend);
	snprintf(c->host, sizeof c->host, "%s:%s", host, port);
	sisy_frame_reader_init(&c->rd, SISY_FRAME_MAX_PRELOGIN);
	sisy_err rc = c->pend ? SISY_OK : SISY_E_NOMEM;
	if (rc != SISY_OK)
		goto fail;
	rc = tcp_connect(host, port,
			 o->connect_timeout_ms ? o->connect_timeout_ms : 5000,
			 &c->fd);
	if (rc != SISY_OK)
		goto fail;
	sisy_buf hello = {0};
	if ((rc = sisy_hs_client_hello_max(
		 &hs, o->max_version ? o->max_version : SISY_PROTO_VERSION_MAX,
		 &hello)) == SISY_OK)
		rc = sisy_frame_append(&c->out, hello.data, hello.len);
	sisy_buf_free(&hello);
	if (rc != SISY_OK || (rc = client_flush(c)) != SISY_OK ||
	    (rc = read_plain_frame(c, &c->plain)) != SISY_OK)
		goto fail;
	rc = sisy_hs_client_finish(&hs, sisy_buf_slice(&c->plain), &info,
				   &c->sess);
	if (rc != SISY_OK)
		goto fail;
	sisy_trust_fingerprint(info.cluster_pk, c->fingerprint);
	if ((rc = check_trust(o, c->host, info.cluster_pk, c->fingerprint)) !=
	    SISY_OK)
		goto fail;
	if ((rc = login(c, o, o->user ? o->user : "admin")) != SISY_OK)
		goto fail;
	c->batched = c->sess.version >= 2;
	sisy_buf_clear(&c->plain); /* the login result: no batch */
	c->plain_off = 0;
	sisy_frame_reader_set_max(&c->rd, SISY_FRAME_MAX);
	c->client_id = o->client_id;
	while (c->client_id == 0)
		randombytes_buf(&c->client_id, sizeof c->client_id);
	c->next_seq = o->first_seq ? o->first_seq : 1;
	c->next_id = 1;
	*out = c;
	return SISY_OK;
fail:
	client_free(c);
	return rc;
}

/* Splits "h1[:p1],[v6]:p2,h3" and tries each; trust and authentication
 * failures stop at once (another host would not change the verdict and
 * must not mask it). */
sisy_err sisy_client_connect(const sisy_client_opts *o, sisy_client **out)
{
	char list[2048], port_def[8], host[256], port[8];
	char lasterr[512] = "";
	sisy_err last = SISY_E_CONN;
	if (sodium_init() < 0)
		return sisy_errf(SISY_E_INTERNAL, "client.c: libsodium init");
	snprintf(list, sizeof list, "%s", o->hosts ? o->hosts : "127.0.0.1");
	snprintf(port_def, sizeof port_def, "%u",
		 o->default_port ? o->default_port : SISY_DEFAULT_PORT);
	if (o->user && !sisy_auth_user_valid(o->user))
		return sisy_errf(SISY_E_AUTH, "invalid user name '%.80s'",
				 o->user);
	char *save = NULL;
	for (char *h = strtok_r(list, ",", &save); h;
	     h = strtok_r(NULL, ",", &save)) {
		while (*h == ' ')
			h++;
		char *colon;
		if (h[0] == '[' && (colon = strchr(h, ']'))) {
			*colon = '\0';
			snprintf(host, sizeof host, "%s", h + 1);
			snprintf(port, sizeof port, "%s",
				 colon[1] == ':' ? colon + 2 : port_def);
		} else if ((colon = strrchr(h, ':')) &&
			   strchr(h, ':') == colon) {
			*colon = '\0';
			snprintf(host, sizeof host, "%s", h);
			snprintf(port, sizeof port, "%s", colon + 1);
		} else {
			snprintf(host, sizeof host, "%s", h);
			snprintf(port, sizeof port, "%s", port_def);
		}
		last = connect_one(o, host, port, out);
		if (last == SISY_OK)
			return SISY_OK;
		snprintf(lasterr, sizeof lasterr, "%s", sisy_errmsg());
		if (last == SISY_E_KEYCHANGED || last == SISY_E_UNTRUSTED ||
		    last == SISY_E_AUTH || last == SISY_E_VERSION)
			break;
	}
	return sisy_errf(last, "%s", lasterr);
}

void sisy_client_close(sisy_client *c)
{
	if (c == NULL)
		return;
	if (!c->dead && c->fd >= 0 && c->sess.tx_started) {
		/* Best effort goodbye: lets the server tell a clean end from a
		 * truncated stream. Never waits. Requests sent but not yet
		 * flushed go first, as they would have with version 1. */
		(void)client_seal_batch(c);
		size_t start = c->out.len;
		if (sisy_buf_reserve(&c->out, SISY_FRAME_HDR) == SISY_OK) {
			c->out.len += SISY_FRAME_HDR;
			if (sisy_session_seal_final(&c->sess, &c->out) ==
			    SISY_OK) {
				size_t pl = c->out.len - start - SISY_FRAME_HDR;
				sisy_put_be32(c->out.data + start,
					      (uint32_t)pl);
				ssize_t w =
				    write(c->fd, c->out.data + c->out_off,
					  c->out.len - c->out_off);
				(void)w;
			}
		}
	}
	client_free(c);
}
