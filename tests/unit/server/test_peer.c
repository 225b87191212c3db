/* Tests who may talk to a node (sisyd/server conn.c, peer.c, join.c,
 * init.c): a real server in-process, and hand-made node connections.
 *   - a certificate of another cluster is refused in the hello;
 *   - a certificate of this cluster for a node id that is not a member, or
 *     for a member id with another key, gets through the hello but is
 *     refused at its NodeProof (the connection is closed);
 *   - a NodeProof signed for another session is refused;
 *   - the join flow in one process: CLUSTER ADD NODE's token, then
 *     sisy_server_join() certifies a fresh key for the reserved id; a
 *     second use of the token is refused, and so is a token whose cluster
 *     key fingerprint is not the server's;
 *   - CLUSTER NODES lists the learner the join added. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "clock.h"
#include "peer.pb-c.h"
#include "server.h"
#include "session.h"
#include "sisy.pb-c.h"
#include "srv_int.h"
#include "trust.h"

typedef struct fixture {
	char dir[256], node[300], host[64], key_path[320], passfile[320];
	sisy_server *srv;
	pthread_t th;
	sisy_server_config cfg;
	uint16_t port;
} fixture;

static fixture F;

static void *run(void *arg)
{
	sisy_server_run(arg);
	return NULL;
}

static sisy_client *admin(void)
{
	sisy_client_opts o;
	sisy_client *c = NULL;
	sisy_client_opts_init(&o);
	o.hosts = F.host;
	o.user = "admin";
	o.password = "s3cret";
	o.server_key = F.key_path;
	o.passfile = F.passfile;
	o.known_servers = NULL;
	uint64_t end = sisy_now_ms() + 10000;
	sisy_err rc;
	while ((rc = sisy_client_connect(&o, &c)) == SISY_E_FAILED &&
	       sisy_now_ms() < end)
		usleep(10 * 1000);
	if (rc != SISY_OK)
		fail_msg("connect: %s", sisy_errmsg());
	return c;
}

static int setup(void **state)
{
	(void)state;
	snprintf(F.dir, sizeof F.dir, "/tmp/sisy-test-peer.XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	snprintf(F.node, sizeof F.node, "%s/node", F.dir);
	snprintf(F.key_path, sizeof F.key_path, "%s/cluster.pub", F.node);
	snprintf(F.passfile, sizeof F.passfile, "%s/passfile", F.dir);
	/* A fixed port: the membership records the address peers and
	 * joiners are told about. */
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t al = sizeof a;
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	getsockname(s, (struct sockaddr *)&a, &al);
	F.port = ntohs(a.sin_port);
	close(s);
	snprintf(F.host, sizeof F.host, "127.0.0.1:%u", F.port);
	assert_int_equal(
	    sisy_server_init_dir(F.node, "admin", "s3cret", F.host), SISY_OK);
	sisy_config_defaults(&F.cfg);
	snprintf(F.cfg.data_dir, sizeof F.cfg.data_dir, "%s", F.node);
	snprintf(F.cfg.listen, sizeof F.cfg.listen, "%s", F.host);
	assert_int_equal(sisy_server_open(&F.cfg, NULL, &F.srv), SISY_OK);
	assert_int_equal(pthread_create(&F.th, NULL, run, F.srv), 0);
	sisy_client_close(admin());
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	sisy_server_stop(F.srv);
	pthread_join(F.th, NULL);
	sisy_server_free(F.srv);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", F.dir);
	return system(cmd);
}

/* ------------------------------------------------- a hand-made node */

typedef struct dial {
	int fd;
	sisy_frame_reader rd;
	sisy_session sess;
	sisy_buf frame;
} dial;

static void dial_open(dial *d)
{
	memset(d, 0, sizeof *d);
	d->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(F.port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(d->fd, (struct sockaddr *)&a, sizeof a), 0);
	sisy_frame_reader_init(&d->rd, 1u << 20);
}

static void dial_close(dial *d)
{
	close(d->fd);
	sisy_frame_reader_free(&d->rd);
	sisy_buf_free(&d->frame);
	sisy_session_wipe(&d->sess);
}

static void send_frame(dial *d, const uint8_t *p, size_t n, bool sealed)
{
	sisy_buf b = {0};
	sisy_buf s = {0};
	if (sealed) {
		assert_int_equal(sisy_session_seal(&d->sess, p, n, &s),
				 SISY_OK);
		p = s.data;
		n = s.len;
	}
	assert_int_equal(sisy_frame_append(&b, p, n), SISY_OK);
	assert_int_equal(write(d->fd, b.data, b.len), (ssize_t)b.len);
	sisy_buf_free(&b);
	sisy_buf_free(&s);
}

/* The next frame into d->frame; SISY_E_CLOSED on EOF, SISY_E_TIMEOUT. */
static sisy_err read_frame(dial *d, int ms)
{
	uint8_t byte;
	uint64_t end = sisy_now_ms() + (uint64_t)ms;
	for (;;) {
		struct pollfd p = {d->fd, POLLIN, 0};
		uint64_t now = sisy_now_ms();
		if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
			return SISY_E_TIMEOUT;
		ssize_t n = read(d->fd, &byte, 1);
		if (n <= 0)
			return SISY_E_CLOSED;
		size_t used;
		bool done = false;
		sisy_slice f;
		assert_int_equal(
		    sisy_frame_feed(&d->rd, &byte, 1, &used, &done, &f),
		    SISY_OK);
		if (done) {
			sisy_buf_set(&d->frame, f.data, f.len);
			sisy_frame_reader_next(&d->rd);
			return SISY_OK;
		}
	}
}

/* Hello as `id` for purpose PEER; the handshake's outcome. */
static sisy_err peer_hello(dial *d, const sisy_node_identity *id)
{
	sisy_hs_client hs;
	sisy_hs_server_info info;
	sisy_buf hello = {0};
	assert_int_equal(
	    sisy_hs_client_hello_as(&hs, SISY_PURPOSE_PEER, id, &hello),
	    SISY_OK);
	send_frame(d, hello.data, hello.len, false);
	sisy_buf_free(&hello);
	sisy_err rc = read_frame(d, 5000);
	if (rc != SISY_OK)
		return rc;
	return sisy_hs_client_finish(&hs, sisy_buf_slice(&d->frame), &info,
				     &d->sess);
}

static void send_proof(dial *d, const sisy_node_identity *id,
		       const uint8_t T[32])
{
	uint8_t sig[SISY_SIGN_BYTES];
	sisy_hs_node_prove(id, T, sig);
	Sisy__NodeProof np = SISY__NODE_PROOF__INIT;
	np.signature.data = sig;
	np.signature.len = sizeof sig;
	np.address = "127.0.0.1:1";
	uint8_t buf[256];
	size_t n = sisy__node_proof__get_packed_size(&np);
	sisy__node_proof__pack(&np, buf);
	send_frame(d, buf, n, true);
}

/* ------------------------------------------------------------ tests */

static void test_other_cluster_refused(void **state)
{
	(void)state;
	sisy_cluster_key other;
	sisy_node_identity id;
	sisy_trust_cluster_new(&other);
	sisy_trust_node_new(&other, 2, &id);
	dial d;
	dial_open(&d);
	sisy_err rc = peer_hello(&d, &id);
	assert_int_not_equal(rc, SISY_OK);
	assert_non_null(strstr(sisy_errmsg(), "certificate"));
	dial_close(&d);
}

static void expect_closed_after_proof(const sisy_node_identity *id,
				      bool right_transcript)
{
	dial d;
	dial_open(&d);
	assert_int_equal(peer_hello(&d, id), SISY_OK);
	uint8_t T[32];
	memcpy(T, d.sess.transcript, 32);
	if (!right_transcript)
		T[0] ^= 1; /* a proof made for another session */
	send_proof(&d, id, T);
	assert_int_equal(read_frame(&d, 5000), SISY_E_CLOSED);
	dial_close(&d);
}

static void test_non_member_refused_at_proof(void **state)
{
	(void)state;
	sisy_cluster_key ck;
	sisy_node_identity id;
	assert_int_equal(sisy_trust_load_cluster(F.node, &ck), SISY_OK);
	/* Node 7: a valid certificate of this cluster, no member. */
	sisy_trust_node_new(&ck, 7, &id);
	expect_closed_after_proof(&id, true);
	/* Node 1 is a member, but with another key (a wiped disk coming back
	 * under its old id): refused too. */
	sisy_trust_node_new(&ck, 1, &id);
	expect_closed_after_proof(&id, true);
	sodium_memzero(&ck, sizeof ck);
}

static void test_proof_for_another_session_refused(void **state)
{
	(void)state;
	sisy_node_identity me;
	/* The server's own identity: a member with the right key, but the
	 * node's own id is never a peer, and a proof for another transcript
	 * never counts. */
	assert_int_equal(sisy_trust_load_node(F.node, &me), SISY_OK);
	expect_closed_after_proof(&me, false);
	sodium_memzero(&me, sizeof me);
}

static sisy_err add_node(sisy_client *c, const char *addr, sisy_buf *token,
			 uint64_t *id)
{
	sisy_req q = {.op = SISY_OP_CLUSTER_ADD_NODE, .address = addr};
	sisy_reply *r;
	sisy_err rc = sisy_client_call(c, &q, &r);
	if (rc == SISY_OK)
		rc = r->err;
	if (rc == SISY_OK) {
		sisy_buf_set(token, r->value.data, r->value.len);
		sisy_buf_append_u8(token, 0);
		*id = r->node_id;
	}
	sisy_reply_free(r);
	return rc;
}

static void test_join(void **state)
{
	(void)state;
	sisy_client *c = admin();
	sisy_buf token = {0};
	uint64_t id = 0;
	assert_int_equal(add_node(c, "127.0.0.1:9", &token, &id), SISY_OK);
	assert_int_equal(id, 2);
	char jdir[400], addr[300], jdir2[400];
	snprintf(jdir, sizeof jdir, "%s/joined", F.dir);
	uint64_t got = 0;
	assert_int_equal(sisy_server_join(jdir, (char *)token.data, NULL, &got,
					  addr, sizeof addr),
			 SISY_OK);
	assert_int_equal(got, 2);
	assert_string_equal(addr, "127.0.0.1:9");
	/* What it got: an identity for node 2 certified by this cluster, and
	 * the cluster key. */
	sisy_node_identity jid, me;
	sisy_cluster_key ck;
	assert_int_equal(sisy_trust_load_node(jdir, &jid), SISY_OK);
	assert_int_equal(sisy_trust_load_node(F.node, &me), SISY_OK);
	assert_int_equal(sisy_trust_load_cluster(jdir, &ck), SISY_OK);
	assert_int_equal(jid.node_id, 2);
	assert_memory_equal(jid.cluster_pk, me.cluster_pk, SISY_SIGN_PK);
	assert_memory_equal(ck.pk, me.cluster_pk, SISY_SIGN_PK);
	/* The token works once. */
	snprintf(jdir2, sizeof jdir2, "%s/joined2", F.dir);
	assert_int_equal(sisy_server_join(jdir2, (char *)token.data, NULL, &got,
					  addr, sizeof addr),
			 SISY_E_AUTH);
	/* A token naming another cluster key is refused before anything is
	 * sent. */
	srv_token t;
	assert_int_equal(token_decode((char *)token.data, &t), SISY_OK);
	t.cluster_fpr[0] ^= 1;
	sisy_buf forged = {0};
	assert_int_equal(token_encode(&t, &forged), SISY_OK);
	sisy_buf_append_u8(&forged, 0);
	snprintf(jdir2, sizeof jdir2, "%s/joined3", F.dir);
	assert_int_equal(sisy_server_join(jdir2, (char *)forged.data, NULL,
					  &got, addr, sizeof addr),
			 SISY_E_KEYCHANGED);
	/* The joined node is a learner of the membership now. */
	sisy_req q = {.op = SISY_OP_CLUSTER_NODES};
	sisy_reply *r;
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_OK);
	assert_int_equal(r->nnodes, 2);
	bool saw = false;
	for (size_t i = 0; i < r->nnodes; i++)
		if (r->nodes[i].id == 2) {
			saw = true;
			assert_false(r->nodes[i].voter);
			assert_string_equal(r->nodes[i].address, "127.0.0.1:9");
		}
	assert_true(saw);
	sisy_reply_free(r);
	/* Its certified key is accepted now: the connection stays open after
	 * its proof and a report (a refused one is closed at once). */
	dial d;
	dial_open(&d);
	assert_int_equal(peer_hello(&d, &jid), SISY_OK);
	send_proof(&d, &jid, d.sess.transcript);
	Sisy__NodeReport rep = SISY__NODE_REPORT__INIT;
	rep.node_id = 2;
	Sisy__PeerMessage pm = SISY__PEER_MESSAGE__INIT;
	pm.body_case = SISY__PEER_MESSAGE__BODY_REPORT;
	pm.report = &rep;
	uint8_t buf[128];
	size_t n = sisy__peer_message__get_packed_size(&pm);
	sisy__peer_message__pack(&pm, buf);
	send_frame(&d, buf, n, true);
	assert_int_equal(read_frame(&d, 300), SISY_E_TIMEOUT);
	dial_close(&d);
	/* Only an admin makes tokens. */
	q = (sisy_req){.op = SISY_OP_USER_ADD,
		       .user = "reader",
		       .password = "r-pw",
		       .role = SISY_ROLE_READWRITE};
	assert_int_equal(sisy_client_call(c, &q, &r), SISY_OK);
	assert_int_equal(r->err, SISY_OK);
	sisy_reply_free(r);
	sisy_client_opts o;
	sisy_client *rc2 = NULL;
	sisy_client_opts_init(&o);
	o.hosts = F.host;
	o.user = "reader";
	o.password = "r-pw";
	o.server_key = F.key_path;
	o.passfile = NULL;
	o.known_servers = NULL;
	assert_int_equal(sisy_client_connect(&o, &rc2), SISY_OK);
	assert_int_equal(add_node(rc2, "127.0.0.1:10", &token, &id),
			 SISY_E_PERM);
	sisy_client_close(rc2);
	sodium_memzero(&jid, sizeof jid);
	sodium_memzero(&me, sizeof me);
	sisy_buf_free(&forged);
	sisy_buf_free(&token);
	sodium_memzero(&ck, sizeof ck);
	sisy_client_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_other_cluster_refused),
	    cmocka_unit_test(test_non_member_refused_at_proof),
	    cmocka_unit_test(test_proof_for_another_session_refused),
	    cmocka_unit_test(test_join),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
