/* Fuzz target: what a node that is not yet trusted can make a server
 * decode, and the join token an operator pastes:
 *   byte 0 % 3 == 0: a ClientHello on a node's port
 *                    (sisy_hs_server_answer_node: purposes, certificates);
 *   byte 0 % 3 == 1: a join token (token_decode);
 *   byte 0 % 3 == 2: a PeerMessage (JoinRequest, ForwardRequest, reports)
 *                    and a NodeProof, as the server unpacks them.
 * Invariants: a PEER/SNAPSHOT hello is accepted only with a certificate
 * that verifies under this node's cluster key for its cluster id (fuzzed
 * bytes cannot forge one); a token that decodes re-encodes to a token that
 * decodes to the same fields. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peer.pb-c.h"
#include "sisy.pb-c.h"
#include "srv_int.h"

/* Invariants hold in release builds too (no assert: NDEBUG drops it). */
#define CHECK(x)                                                       \
	do {                                                           \
		if (!(x)) {                                            \
			fprintf(stderr, "invariant failed: %s\n", #x); \
			abort();                                       \
		}                                                      \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static sisy_node_identity id;
static bool ready;

static void init(void)
{
	uint8_t seed[32];
	sisy_cluster_key ck;
	if (sodium_init() < 0)
		abort();
	memset(seed, 9, sizeof seed);
	crypto_sign_seed_keypair(ck.pk, ck.sk, seed);
	memset(ck.cluster_id, 2, sizeof ck.cluster_id);
	sisy_trust_node_new(&ck, 1, &id);
	ready = true;
}

static void hello(sisy_slice in)
{
	sisy_buf out = {0};
	sisy_session s;
	sisy_hs_peer peer;
	int purpose = -1;
	sisy_err rc =
	    sisy_hs_server_answer_node(&id, in, &out, &s, &purpose, &peer);
	if (rc == SISY_OK && (purpose == SISY_PURPOSE_PEER ||
			      purpose == SISY_PURPOSE_SNAPSHOT)) {
		CHECK(peer.node_id != 0);
		Sisy__ClientHello *ch =
		    sisy__client_hello__unpack(NULL, in.len, in.data);
		CHECK(ch != NULL && ch->client_cert != NULL);
		CHECK(sisy_trust_cert_valid(id.cluster_pk, id.cluster_id,
					    peer.node_id, peer.node_pk,
					    ch->client_cert->signature.data));
		sisy__client_hello__free_unpacked(ch, NULL);
	}
	sisy_session_wipe(&s);
	sisy_buf_free(&out);
}

static void token(sisy_slice in)
{
	char text[8192];
	size_t n = in.len < sizeof text - 1 ? in.len : sizeof text - 1;
	memcpy(text, in.data, n);
	text[n] = '\0';
	srv_token t, u;
	if (token_decode(text, &t) != SISY_OK)
		return;
	sisy_buf b = {0};
	CHECK(token_encode(&t, &b) == SISY_OK);
	CHECK(token_decode((const char *)b.data, &u) == SISY_OK);
	CHECK(memcmp(t.secret, u.secret, sizeof t.secret) == 0);
	CHECK(memcmp(t.cluster_fpr, u.cluster_fpr, sizeof t.cluster_fpr) == 0);
	CHECK(t.node_id == u.node_id && t.naddrs == u.naddrs);
	CHECK(strcmp(t.address, u.address) == 0);
	for (size_t i = 0; i < t.naddrs; i++)
		CHECK(strcmp(t.addrs[i], u.addrs[i]) == 0);
	sisy_buf_free(&b);
}

static void messages(sisy_slice in)
{
	Sisy__PeerMessage *pm =
	    sisy__peer_message__unpack(NULL, in.len, in.data);
	if (pm) {
		if (pm->body_case == SISY__PEER_MESSAGE__BODY_JOIN &&
		    pm->join->address)
			CHECK(strlen(pm->join->address) < in.len + 1);
		sisy__peer_message__free_unpacked(pm, NULL);
	}
	Sisy__NodeProof *np = sisy__node_proof__unpack(NULL, in.len, in.data);
	if (np) {
		uint8_t T[32] = {0};
		if (np->signature.len == SISY_SIGN_BYTES)
			CHECK(!sisy_hs_node_check(id.node_pk, T,
						  np->signature.data));
		sisy__node_proof__free_unpacked(np, NULL);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		init();
	if (size < 1)
		return 0;
	sisy_slice in = sisy_slice_make(data + 1, size - 1);
	switch (data[0] % 3) {
	case 0:
		hello(in);
		break;
	case 1:
		token(in);
		break;
	default:
		messages(in);
	}
	return 0;
}
