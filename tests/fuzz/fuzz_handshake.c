/* Fuzz target: both ends of the handshake and the login messages.
 *
 * Input: byte 0 selects what the bytes pretend to be:
 *   0: a ClientHello reaching the server (sisy_hs_server_answer)
 *   1: a ServerHello reaching a client (sisy_hs_client_finish)
 *   2: LoginStart / LoginProof / LoginChallenge / LoginResult decoders
 * A fixed node identity (seeded from a constant) keeps runs reproducible.
 * Invariant: a ServerHello built from fuzzed bytes is never accepted
 * (it would need the node's signature). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"
#include "sisy.pb-c.h"
#include "trust.h"

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
	memset(seed, 7, sizeof seed);
	crypto_sign_seed_keypair(ck.pk, ck.sk, seed);
	memset(ck.cluster_id, 1, sizeof ck.cluster_id);
	sisy_trust_node_new(&ck, 1, &id);
	ready = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		init();
	if (size < 1)
		return 0;
	sisy_slice in = sisy_slice_make(data + 1, size - 1);
	sisy_buf out = {0};
	sisy_session s;
	switch (data[0] % 3) {
	case 0: {
		int purpose;
		(void)sisy_hs_server_answer(&id, in, &out, &s, &purpose);
		break;
	}
	case 1: {
		sisy_hs_client hs;
		sisy_hs_server_info info;
		(void)sisy_hs_client_hello(&hs, &out);
		sisy_err rc = sisy_hs_client_finish(&hs, in, &info, &s);
		CHECK(rc != SISY_OK);
		break;
	}
	default: {
		Sisy__LoginStart *a =
		    sisy__login_start__unpack(NULL, in.len, in.data);
		Sisy__LoginProof *b =
		    sisy__login_proof__unpack(NULL, in.len, in.data);
		Sisy__LoginChallenge *c =
		    sisy__login_challenge__unpack(NULL, in.len, in.data);
		Sisy__LoginResult *d =
		    sisy__login_result__unpack(NULL, in.len, in.data);
		if (a)
			sisy__login_start__free_unpacked(a, NULL);
		if (b)
			sisy__login_proof__free_unpacked(b, NULL);
		if (c)
			sisy__login_challenge__free_unpacked(c, NULL);
		if (d)
			sisy__login_result__free_unpacked(d, NULL);
	}
	}
	sisy_buf_free(&out);
	return 0;
}
