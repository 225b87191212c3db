/* init.c — making a node's data directory: `sisyd init` (a new cluster)
 * and `sisyd init --join TOKEN` (a node joining one) (server.h).
 *
 * A data directory holds (docs/operations.md):
 *   cluster.key, cluster.pub  the cluster signing key (trust.h; every
 *                             member holds it: docs/security.md)
 *   node.identity             this node's id, key and certificate (trust.h)
 *   NODE, raftlog/, g<id>/    the node's Raft log and engines (sisyd/node)
 *   sisyd.conf                optional settings (join writes listen there)
 * node.identity is written last: a directory without it is not a node
 * (the server refuses it), and init refuses a directory that has one.
 *
 * Joining runs before any server: it is a blocking client (poll() with a
 * deadline on every wait) that speaks the JOIN handshake to the members
 * named in the token, in turn, following NOT_LEADER to the leader.
 */
#include "srv_int.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "peer.pb-c.h"
#include "sisy.pb-c.h"
#include "wire.h"

#define JOIN_TRIES 8

static sisy_err prepare(const char *dir)
{
	char path[1200];
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return sisy_errf(sisy_err_from_errno(errno),
				 "cannot create %s: %s", dir, strerror(errno));
	snprintf(path, sizeof path, "%s/node.identity", dir);
	if (access(path, F_OK) == 0)
		return sisy_errf(SISY_E_EXISTS,
				 "%s is already initialised; refusing to "
				 "overwrite its keys",
				 dir);
	return SISY_OK;
}

sisy_err sisy_server_init_dir(const char *dir, const char *admin_user,
			      const char *admin_password, const char *address)
{
	sisy_cluster_key ck;
	sisy_node_identity id;
	sisy_node_init in;
	sisy_err rc;
	if (sodium_init() < 0)
		return sisy_errf(SISY_E_INTERNAL, "libsodium init failed");
	if (!sisy_auth_user_valid(admin_user))
		return sisy_errf(SISY_E_INVAL, "invalid admin user name");
	if ((rc = prepare(dir)) != SISY_OK)
		return rc;
	memset(&in, 0, sizeof in);
	if ((rc = sisy_auth_make_verifier(admin_password,
					  &in.admin_verifier)) != SISY_OK)
		return rc;
	sisy_trust_cluster_new(&ck);
	sisy_trust_node_new(&ck, 1, &id);
	memcpy(in.cluster_id, ck.cluster_id, sizeof in.cluster_id);
	in.node_id = 1;
	memcpy(in.node_key, id.node_pk, sizeof in.node_key);
	in.address = address;
	in.admin_user = admin_user;
	if ((rc = sisy_trust_save_cluster(dir, &ck)) == SISY_OK &&
	    (rc = sisy_node_bootstrap(NULL, dir, &in)) == SISY_OK)
		rc = sisy_trust_save_node(dir, &id);
	sodium_memzero(&ck, sizeof ck);
	sodium_memzero(&id, sizeof id);
	return rc;
}

/* ------------------------------------------------------------- joining */

typedef struct jconn {
	int fd;
	uint64_t deadline;
	sisy_frame_reader rd;
	sisy_session sess;
	sisy_buf buf;
	char addr[SISY_NODE_MAX_ADDR + 1];
} jconn;

static int left_ms(const jconn *j)
{
	uint64_t now = sisy_now_ms();
	return now >= j->deadline ? 0 : (int)(j->deadline - now);
}

static sisy_err j_connect(jconn *j, const char *addr)
{
	char host[256], port[16];
	const char *colon = strrchr(addr, ':');
	if (colon == NULL || (size_t)(colon - addr) >= sizeof host)
		return sisy_errf(SISY_E_INVAL, "bad address %s", addr);
	size_t hl = (size_t)(colon - addr);
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl >= 2) {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	}
	snprintf(port, sizeof port, "%s", colon + 1);
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(host, port, &hints, &res) != 0)
		return sisy_errf(SISY_E_CONN, "cannot resolve %s", addr);
	j->fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sisy_err rc = SISY_OK;
	if (j->fd < 0 || connect(j->fd, res->ai_addr, res->ai_addrlen) != 0)
		rc = sisy_errf(SISY_E_CONN, "cannot connect to %s: %s", addr,
			       strerror(errno));
	freeaddrinfo(res);
	return rc;
}

static sisy_err j_write(jconn *j, const uint8_t *p, size_t n)
{
	while (n > 0) {
		struct pollfd pf = {j->fd, POLLOUT, 0};
		if (poll(&pf, 1, left_ms(j)) <= 0)
			return sisy_errf(SISY_E_TIMEOUT, "%s: timed out",
					 j->addr);
		ssize_t w = write(j->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return sisy_errf(SISY_E_CONN, "%s: %s", j->addr,
					 strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return SISY_OK;
}

/* The next frame into j->buf. */
static sisy_err j_read(jconn *j)
{
	uint8_t chunk[4096];
	for (;;) {
		struct pollfd pf = {j->fd, POLLIN, 0};
		if (poll(&pf, 1, left_ms(j)) <= 0)
			return sisy_errf(SISY_E_TIMEOUT,
					 "%s did not answer in time", j->addr);
		/* One byte at a time past a frame is not needed: the other
		 * side sends one frame and waits. */
		ssize_t n = read(j->fd, chunk, sizeof chunk);
		if (n <= 0)
			return sisy_errf(SISY_E_CONN,
					 "%s closed the connection", j->addr);
		size_t used = 0;
		bool done = false;
		sisy_slice frame;
		sisy_err rc = sisy_frame_feed(&j->rd, chunk, (size_t)n, &used,
					      &done, &frame);
		if (rc != SISY_OK)
			return rc;
		if (done) {
			rc = sisy_buf_set(&j->buf, frame.data, frame.len);
			sisy_frame_reader_next(&j->rd);
			return rc;
		}
	}
}

/* One attempt at `addr`. SISY_E_NOTLEADER with *redirect set: ask there. */
static sisy_err join_once(const char *addr, const srv_token *t,
			  const uint8_t pk[SISY_SIGN_PK], const char *my_addr,
			  Sisy__JoinResponse **out, char *redirect, size_t rcap)
{
	jconn j;
	sisy_hs_client hs;
	sisy_hs_server_info info;
	sisy_buf f = {0};
	Sisy__PeerMessage *pm = NULL;
	memset(&j, 0, sizeof j);
	j.fd = -1;
	j.deadline = sisy_now_ms() + 15000;
	snprintf(j.addr, sizeof j.addr, "%s", addr);
	sisy_frame_reader_init(&j.rd, 1u << 20);
	sisy_err rc = j_connect(&j, addr);
	if (rc == SISY_OK)
		rc = sisy_hs_client_hello_as(&hs, SISY_PURPOSE_JOIN, NULL,
					     &j.buf);
	if (rc == SISY_OK)
		rc = sisy_frame_append(&f, j.buf.data, j.buf.len);
	if (rc == SISY_OK)
		rc = j_write(&j, f.data, f.len);
	if (rc == SISY_OK)
		rc = j_read(&j);
	if (rc == SISY_OK)
		rc = sisy_hs_client_finish(&hs, sisy_buf_slice(&j.buf), &info,
					   &j.sess);
	uint8_t fpr[32];
	if (rc == SISY_OK) {
		token_cluster_fpr(info.cluster_pk, fpr);
		if (sodium_memcmp(fpr, t->cluster_fpr, 32) != 0)
			rc = sisy_errf(SISY_E_KEYCHANGED,
				       "%s presents another cluster key than "
				       "the token names: refusing to join it",
				       addr);
	}
	if (rc == SISY_OK) {
		Sisy__JoinRequest jq = SISY__JOIN_REQUEST__INIT;
		jq.token.data = (uint8_t *)t->secret;
		jq.token.len = sizeof t->secret;
		jq.node_pk.data = (uint8_t *)pk;
		jq.node_pk.len = SISY_SIGN_PK;
		jq.address = (char *)my_addr;
		Sisy__PeerMessage q = SISY__PEER_MESSAGE__INIT;
		q.body_case = SISY__PEER_MESSAGE__BODY_JOIN;
		q.join = &jq;
		size_t n = sisy__peer_message__get_packed_size(&q);
		uint8_t *p = malloc(n);
		if (p == NULL) {
			rc = SISY_E_NOMEM;
		} else {
			sisy__peer_message__pack(&q, p);
			sisy_buf_clear(&f);
			rc = sisy_buf_reserve(&f, SISY_FRAME_HDR);
			if (rc == SISY_OK) {
				f.len = SISY_FRAME_HDR;
				rc = sisy_session_seal(&j.sess, p, n, &f);
			}
			sodium_memzero(p, n);
			free(p);
		}
		if (rc == SISY_OK) {
			size_t pl = f.len - SISY_FRAME_HDR;
			f.data[0] = (uint8_t)(pl >> 24);
			f.data[1] = (uint8_t)(pl >> 16);
			f.data[2] = (uint8_t)(pl >> 8);
			f.data[3] = (uint8_t)pl;
			rc = j_write(&j, f.data, f.len);
		}
	}
	if (rc == SISY_OK)
		rc = j_read(&j);
	if (rc == SISY_OK) {
		sisy_buf plain = {0};
		rc = sisy_session_open(&j.sess, sisy_buf_slice(&j.buf), &plain);
		if (rc == SISY_OK)
			pm = sisy__peer_message__unpack(NULL, plain.len,
							plain.data);
		if (plain.data)
			sodium_memzero(plain.data, plain.cap);
		sisy_buf_free(&plain);
		if (rc == SISY_OK &&
		    (pm == NULL ||
		     pm->body_case != SISY__PEER_MESSAGE__BODY_JOIN_RESPONSE))
			rc = sisy_errf(SISY_E_PROTO, "%s sent no join answer",
				       addr);
	}
	if (rc == SISY_OK) {
		Sisy__JoinResponse *jr = pm->join_response;
		rc = sisy_wire_status_err(jr->status);
		if (rc == SISY_E_NOTLEADER && jr->leader_address)
			snprintf(redirect, rcap, "%s", jr->leader_address);
		if (rc != SISY_OK)
			rc = sisy_errf(rc, "%s: %.300s", addr,
				       jr->message ? jr->message : "");
	}
	if (rc == SISY_OK) {
		*out = pm->join_response;
		pm->join_response = NULL; /* kept by the caller */
		pm->body_case = SISY__PEER_MESSAGE__BODY__NOT_SET;
	}
	if (pm)
		sisy__peer_message__free_unpacked(pm, NULL);
	if (j.fd >= 0)
		close(j.fd);
	sisy_frame_reader_free(&j.rd);
	sisy_session_wipe(&j.sess);
	sisy_buf_free(&j.buf);
	sisy_buf_free(&f);
	return rc;
}

/* Writes the keys, the identity and the node's directory. */
static sisy_err save_joined(const char *dir, const Sisy__JoinResponse *jr,
			    const uint8_t pk[SISY_SIGN_PK],
			    const uint8_t sk[SISY_SIGN_SK], const char *address)
{
	const Sisy__NodeCert *c = jr->cert;
	sisy_cluster_key ck;
	sisy_node_identity id;
	uint8_t derived[SISY_SIGN_PK];
	sisy_err rc = SISY_OK;
	if (c == NULL || c->cluster_id.len != SISY_CLUSTER_ID ||
	    c->cluster_pk.len != SISY_SIGN_PK ||
	    c->signature.len != SISY_SIGN_BYTES ||
	    c->node_pk.len != SISY_SIGN_PK ||
	    jr->cluster_key.len != SISY_SIGN_SK || jr->node_id == 0 ||
	    c->node_id != jr->node_id ||
	    memcmp(c->node_pk.data, pk, SISY_SIGN_PK) != 0 ||
	    !sisy_trust_cert_valid(c->cluster_pk.data, c->cluster_id.data,
				   c->node_id, pk, c->signature.data))
		return sisy_errf(SISY_E_PROTO,
				 "the join answer holds no valid certificate "
				 "for this node");
	crypto_sign_ed25519_sk_to_pk(derived, jr->cluster_key.data);
	if (memcmp(derived, c->cluster_pk.data, SISY_SIGN_PK) != 0)
		return sisy_errf(SISY_E_PROTO,
				 "the cluster key sent does not match the "
				 "cluster's public key");
	memset(&ck, 0, sizeof ck);
	memcpy(ck.pk, c->cluster_pk.data, SISY_SIGN_PK);
	memcpy(ck.sk, jr->cluster_key.data, SISY_SIGN_SK);
	memcpy(ck.cluster_id, c->cluster_id.data, SISY_CLUSTER_ID);
	memset(&id, 0, sizeof id);
	memcpy(id.cluster_id, ck.cluster_id, SISY_CLUSTER_ID);
	id.node_id = jr->node_id;
	memcpy(id.node_pk, pk, SISY_SIGN_PK);
	memcpy(id.node_sk, sk, SISY_SIGN_SK);
	memcpy(id.cluster_pk, ck.pk, SISY_SIGN_PK);
	memcpy(id.cert_sig, c->signature.data, SISY_SIGN_BYTES);
	sisy_node_init in;
	memset(&in, 0, sizeof in);
	memcpy(in.cluster_id, ck.cluster_id, SISY_CLUSTER_ID);
	in.node_id = jr->node_id;
	memcpy(in.node_key, pk, SISY_NODE_KEY);
	in.address = address;
	if ((rc = sisy_trust_save_cluster(dir, &ck)) == SISY_OK &&
	    (rc = sisy_node_init_joined(NULL, dir, &in)) == SISY_OK)
		rc = sisy_trust_save_node(dir, &id);
	sodium_memzero(&ck, sizeof ck);
	sodium_memzero(&id, sizeof id);
	return rc;
}

sisy_err sisy_server_join(const char *dir, const char *token_text,
			  const char *address, uint64_t *node_id,
			  char *my_address, size_t cap)
{
	srv_token t;
	uint8_t pk[SISY_SIGN_PK], sk[SISY_SIGN_SK];
	char target[SISY_NODE_MAX_ADDR + 1], lasterr[512] = "";
	Sisy__JoinResponse *jr = NULL;
	sisy_err rc, last = SISY_E_CONN;
	if (sodium_init() < 0)
		return sisy_errf(SISY_E_INTERNAL, "libsodium init failed");
	if ((rc = token_decode(token_text, &t)) != SISY_OK)
		return rc;
	if (address == NULL || address[0] == '\0')
		address = t.address;
	snprintf(my_address, cap, "%s", address);
	if ((rc = prepare(dir)) != SISY_OK)
		goto done;
	crypto_sign_keypair(pk, sk);
	/* The members in the token's order, following redirects; bounded. */
	size_t next = 0;
	int tries = 0;
	snprintf(target, sizeof target, "%.255s", t.addrs[next++]);
	for (;;) {
		char redirect[SISY_NODE_MAX_ADDR + 1] = "";
		last = join_once(target, &t, pk, address, &jr, redirect,
				 sizeof redirect);
		if (last == SISY_OK)
			break;
		snprintf(lasterr, sizeof lasterr, "%s", sisy_errmsg());
		if (last == SISY_E_KEYCHANGED || last == SISY_E_AUTH ||
		    ++tries >= JOIN_TRIES)
			break;
		if (last == SISY_E_NOTLEADER && redirect[0]) {
			snprintf(target, sizeof target, "%s", redirect);
		} else if (next < t.naddrs) {
			snprintf(target, sizeof target, "%.255s",
				 t.addrs[next++]);
		} else {
			/* Every member tried: an election may be on; wait a
			 * little and go round again. */
			struct timespec ts = {0, 300 * 1000000L};
			nanosleep(&ts, NULL);
			next = 0;
			snprintf(target, sizeof target, "%.255s",
				 t.addrs[next++]);
		}
	}
	if (last != SISY_OK) {
		rc = sisy_errf(last, "joining failed: %s", lasterr);
		goto done;
	}
	*node_id = jr->node_id;
	rc = save_joined(dir, jr, pk, sk, address);
done:
	if (jr) {
		if (jr->cluster_key.data)
			sodium_memzero(jr->cluster_key.data,
				       jr->cluster_key.len);
		sisy__join_response__free_unpacked(jr, NULL);
	}
	sodium_memzero(sk, sizeof sk);
	sodium_memzero(&t, sizeof t);
	return rc;
}
