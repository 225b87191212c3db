/* session.c — handshake and sealed frames (session.h, docs/protocol.md).
 *
 * Transcript: H1 = BLAKE2b-256(ClientHello bytes as sent); the server signs
 *   "sisy-hs-v1" || H1 || ServerHelloBody bytes
 * with its certified node key, and both sides compute
 *   T = BLAKE2b-256("sisy-transcript-v1" || H1 || ServerHelloBody bytes).
 * Stream keys: the crypto_kx session keys, each keyed-hashed with T
 * (BLAKE2b(key = kx key, msg = T)), so they belong to this transcript only
 * (versions, certificate and both ephemeral keys included).
 *
 * Version 3 frames: tag (1 byte: 0 message, 3 final, in clear and
 * authenticated as additional data) || AES-256-GCM ciphertext || MAC (16).
 * The nonce is the frame's number in its direction (0, 1, ...: 4 zero
 * bytes then the number, big-endian), counted by both sides and never
 * sent; each direction has its own key, so a nonce is never reused under
 * a key, and a replayed, reordered or dropped frame is opened under the
 * wrong nonce and fails authentication, as with a secretstream.
 */
#include "session.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisy.pb-c.h"

#define HS_SIG_TAG  "sisy-hs-v1"
#define HS_T_TAG    "sisy-transcript-v1"
#define HS_PEER_TAG "sisy-peer-v1"

typedef crypto_secretstream_xchacha20poly1305_state stream_state;
#define ABYTES	  crypto_secretstream_xchacha20poly1305_ABYTES
#define TAG_MSG	  crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
#define TAG_FINAL crypto_secretstream_xchacha20poly1305_TAG_FINAL

/* ------------------------------------------------------------ streams */

uint32_t sisy_proto_version_max(void)
{
	/* libsodium's AES-GCM needs AES-NI and PCLMUL (sodium_init has
	 * probed the CPU); without them, version 2's secretstream */
	return crypto_aead_aes256gcm_is_available() ? 3u : 2u;
}

static void gcm_nonce(uint64_t n, uint8_t out[crypto_aead_aes256gcm_NPUBBYTES])
{
	memset(out, 0, crypto_aead_aes256gcm_NPUBBYTES);
	for (int i = 0; i < 8; i++)
		out[crypto_aead_aes256gcm_NPUBBYTES - 1 - i] =
		    (uint8_t)(n >> (8 * i));
}

static sisy_err seal_gcm(sisy_session *s, const void *msg, size_t len,
			 unsigned char tag, sisy_buf *out)
{
	if (s->tx_count == UINT64_MAX)
		return sisy_errf(SISY_E_PROTO,
				 "session.c: 2^64 frames sealed; the session "
				 "ends");
	sisy_err rc =
	    sisy_buf_reserve(out, 1 + len + crypto_aead_aes256gcm_ABYTES);
	if (rc != SISY_OK)
		return rc;
	uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES];
	gcm_nonce(s->tx_count++, nonce);
	uint8_t *p = out->data + out->len;
	p[0] = tag;
	unsigned long long clen = 0;
	crypto_aead_aes256gcm_encrypt_afternm(p + 1, &clen, msg, len, p, 1,
					      NULL, nonce, &s->gtx);
	out->len += 1 + (size_t)clen;
	return SISY_OK;
}

static sisy_err seal(sisy_session *s, const void *msg, size_t len,
		     unsigned char tag, sisy_buf *out)
{
	if (s->broken)
		return sisy_errf(SISY_E_PROTO, "session.c: session is broken");
	if (s->version >= 3)
		return seal_gcm(s, msg, len, tag, out);
	size_t need = len + ABYTES + (s->tx_started ? 0 : SISY_SEAL_HEADER);
	sisy_err rc = sisy_buf_reserve(out, need);
	if (rc != SISY_OK)
		return rc;
	if (!s->tx_started) {
		crypto_secretstream_xchacha20poly1305_init_push(
		    &s->tx, out->data + out->len, s->txkey);
		out->len += SISY_SEAL_HEADER;
		s->tx_started = true;
	}
	unsigned long long clen = 0;
	crypto_secretstream_xchacha20poly1305_push(
	    &s->tx, out->data + out->len, &clen, msg, len, NULL, 0, tag);
	out->len += (size_t)clen;
	return SISY_OK;
}

sisy_err sisy_session_seal(sisy_session *s, const void *msg, size_t len,
			   sisy_buf *out)
{
	return seal(s, msg, len, TAG_MSG, out);
}

sisy_err sisy_session_seal_final(sisy_session *s, sisy_buf *out)
{
	return seal(s, "", 0, TAG_FINAL, out);
}

static sisy_err broken(sisy_session *s, const char *why)
{
	s->broken = true;
	return sisy_errf(SISY_E_PROTO, "session.c: %s; the session ends", why);
}

/* The message or the end of the stream, by tag. */
static sisy_err opened(sisy_session *s, unsigned char tag, size_t mlen)
{
	if (tag == TAG_FINAL) {
		s->rx_final = true;
		if (mlen != 0)
			return broken(s, "final frame with data");
		return sisy_errf(SISY_E_CLOSED, "session.c: peer said goodbye");
	}
	if (tag != TAG_MSG)
		return broken(s, "unexpected stream tag");
	return SISY_OK;
}

static sisy_err open_gcm(sisy_session *s, const uint8_t *p, size_t n,
			 sisy_buf *out)
{
	if (n < 1 + crypto_aead_aes256gcm_ABYTES)
		return broken(s, "sealed frame too short");
	size_t mlen_max = n - 1 - crypto_aead_aes256gcm_ABYTES;
	sisy_err rc = sisy_buf_reserve(out, mlen_max + 1);
	if (rc != SISY_OK)
		return rc;
	uint8_t nonce[crypto_aead_aes256gcm_NPUBBYTES];
	if (s->rx_count == UINT64_MAX)
		return broken(s, "2^64 frames opened");
	gcm_nonce(s->rx_count++, nonce);
	unsigned long long mlen = 0;
	if (crypto_aead_aes256gcm_decrypt_afternm(out->data, &mlen, NULL, p + 1,
						  n - 1, p, 1, nonce,
						  &s->grx) != 0)
		return broken(s, "a frame failed authentication (tampered, "
				 "replayed, reordered or dropped)");
	out->len = (size_t)mlen;
	return opened(s, p[0], out->len);
}

sisy_err sisy_session_open(sisy_session *s, sisy_slice payload, sisy_buf *out)
{
	sisy_buf_clear(out);
	if (s->broken)
		return sisy_errf(SISY_E_PROTO, "session.c: session is broken");
	if (s->rx_final)
		return broken(s, "a frame after the peer's final frame");
	const uint8_t *p = payload.data;
	size_t n = payload.len;
	if (s->version >= 3)
		return open_gcm(s, p, n, out);
	if (!s->rx_started) {
		if (n < SISY_SEAL_HEADER)
			return broken(s, "first sealed frame too short");
		if (crypto_secretstream_xchacha20poly1305_init_pull(
			&s->rx, p, s->rxkey) != 0)
			return broken(s, "bad stream header");
		p += SISY_SEAL_HEADER;
		n -= SISY_SEAL_HEADER;
		s->rx_started = true;
	}
	if (n < ABYTES)
		return broken(s, "sealed frame too short");
	sisy_err rc = sisy_buf_reserve(out, n - ABYTES + 1);
	if (rc != SISY_OK)
		return rc;
	unsigned long long mlen = 0;
	unsigned char tag = 0;
	if (crypto_secretstream_xchacha20poly1305_pull(
		&s->rx, out->data, &mlen, &tag, p, n, NULL, 0) != 0)
		return broken(s, "a frame failed authentication (tampered, "
				 "replayed, reordered or dropped)");
	out->len = (size_t)mlen;
	return opened(s, tag, out->len);
}

void sisy_session_wipe(sisy_session *s)
{
	sodium_memzero(s, sizeof *s);
}

/* The session's keys from the kx keys and the transcript; version 3 also
 * expands its AES keys once. */
static void session_keys(sisy_session *s, uint32_t version,
			 const uint8_t rx[32], const uint8_t tx[32]);

/* Binds a kx key to the transcript. */
static void bind_key(uint8_t out[32], const uint8_t kx[32], const uint8_t T[32])
{
	crypto_generichash(out, 32, T, 32, kx, 32);
}

static void session_keys(sisy_session *s, uint32_t version,
			 const uint8_t rx[32], const uint8_t tx[32])
{
	bind_key(s->txkey, tx, s->transcript);
	bind_key(s->rxkey, rx, s->transcript);
	s->version = version;
	if (version >= 3) {
		crypto_aead_aes256gcm_beforenm(&s->gtx, s->txkey);
		crypto_aead_aes256gcm_beforenm(&s->grx, s->rxkey);
		s->tx_count = s->rx_count = 0;
	}
}

static void transcript(const uint8_t h1[32], sisy_slice body, uint8_t T[32])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, 32);
	crypto_generichash_update(&st, (const uint8_t *)HS_T_TAG,
				  strlen(HS_T_TAG));
	crypto_generichash_update(&st, h1, 32);
	crypto_generichash_update(&st, body.data, body.len);
	crypto_generichash_final(&st, T, 32);
}

/* "sisy-hs-v1" || H1 || body, into a malloc'd buffer. */
static uint8_t *sig_message(const uint8_t h1[32], sisy_slice body, size_t *len)
{
	size_t tl = strlen(HS_SIG_TAG);
	*len = tl + 32 + body.len;
	uint8_t *m = malloc(*len);
	if (m == NULL)
		return NULL;
	memcpy(m, HS_SIG_TAG, tl);
	memcpy(m + tl, h1, 32);
	if (body.len)
		memcpy(m + tl + 32, body.data, body.len);
	return m;
}

/* A node's certificate as it travels (pointing into id). */
static void cert_of(Sisy__NodeCert *cert, const sisy_node_identity *id)
{
	cert->cluster_id.data = (uint8_t *)id->cluster_id;
	cert->cluster_id.len = SISY_CLUSTER_ID;
	cert->node_id = id->node_id;
	cert->node_pk.data = (uint8_t *)id->node_pk;
	cert->node_pk.len = SISY_SIGN_PK;
	cert->cluster_pk.data = (uint8_t *)id->cluster_pk;
	cert->cluster_pk.len = SISY_SIGN_PK;
	cert->signature.data = (uint8_t *)id->cert_sig;
	cert->signature.len = SISY_SIGN_BYTES;
}

/* ------------------------------------------------------------- client */

sisy_err sisy_hs_client_hello(sisy_hs_client *hs, sisy_buf *out)
{
	return sisy_hs_client_hello_as(hs, SISY_PURPOSE_CLIENT, NULL, out);
}

static sisy_err hello(sisy_hs_client *hs, int purpose,
		      const sisy_node_identity *id, uint32_t max_version,
		      sisy_buf *out);

sisy_err sisy_hs_client_hello_as(sisy_hs_client *hs, int purpose,
				 const sisy_node_identity *id, sisy_buf *out)
{
	return hello(hs, purpose, id, sisy_proto_version_max(), out);
}

sisy_err sisy_hs_client_hello_max(sisy_hs_client *hs, uint32_t max_version,
				  sisy_buf *out)
{
	assert(max_version >= SISY_PROTO_VERSION_MIN &&
	       max_version <= SISY_PROTO_VERSION_MAX);
	uint32_t max = sisy_proto_version_max();
	return hello(hs, SISY_PURPOSE_CLIENT, NULL,
		     max_version < max ? max_version : max, out);
}

static sisy_err hello(sisy_hs_client *hs, int purpose,
		      const sisy_node_identity *id, uint32_t max_version,
		      sisy_buf *out)
{
	Sisy__ClientHello ch = SISY__CLIENT_HELLO__INIT;
	Sisy__NodeCert cert = SISY__NODE_CERT__INIT;
	assert(purpose >= SISY_PURPOSE_CLIENT && purpose <= SISY_PURPOSE_JOIN);
	crypto_kx_keypair(hs->eph_pk, hs->eph_sk);
	hs->min_version = SISY_PROTO_VERSION_MIN;
	hs->max_version = max_version;
	ch.min_version = hs->min_version;
	ch.max_version = hs->max_version;
	ch.ephemeral_pk.data = hs->eph_pk;
	ch.ephemeral_pk.len = sizeof hs->eph_pk;
	ch.purpose = (Sisy__Purpose)purpose;
	if (id != NULL) {
		cert_of(&cert, id);
		ch.client_cert = &cert;
	}
	size_t n = sisy__client_hello__get_packed_size(&ch);
	sisy_err rc = sisy_buf_reserve(out, n);
	if (rc != SISY_OK)
		return rc;
	sisy__client_hello__pack(&ch, out->data + out->len);
	crypto_generichash(hs->hello_hash, 32, out->data + out->len, n, NULL,
			   0);
	out->len += n;
	return SISY_OK;
}

static bool bytes_len(const ProtobufCBinaryData *b, size_t n)
{
	return b->len == n && b->data != NULL;
}

sisy_err sisy_hs_client_finish(sisy_hs_client *hs, sisy_slice server_hello,
			       sisy_hs_server_info *info, sisy_session *s)
{
	Sisy__ServerHello *sh = NULL;
	Sisy__ServerHelloBody *body = NULL;
	uint8_t *msg = NULL;
	size_t mlen;
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	sisy_err rc = SISY_E_PROTO;

	memset(s, 0, sizeof *s);
	sh = sisy__server_hello__unpack(NULL, server_hello.len,
					server_hello.data);
	if (sh == NULL) {
		rc = sisy_errf(SISY_E_PROTO,
			       "session.c: the server's hello is malformed "
			       "(is this a sisyd port?)");
		goto fail;
	}
	if (sh->status != SISY__STATUS__OK) {
		rc = sisy_errf(sh->status == SISY__STATUS__UNSUPPORTED
				   ? SISY_E_VERSION
				   : SISY_E_PROTO,
			       "session.c: the server refused the handshake: "
			       "%.200s",
			       sh->message ? sh->message : "");
		goto fail;
	}
	body =
	    sisy__server_hello_body__unpack(NULL, sh->body.len, sh->body.data);
	if (body == NULL || body->cert == NULL ||
	    !bytes_len(&body->ephemeral_pk, crypto_kx_PUBLICKEYBYTES) ||
	    !bytes_len(&sh->signature, SISY_SIGN_BYTES) ||
	    !bytes_len(&body->cert->cluster_id, SISY_CLUSTER_ID) ||
	    !bytes_len(&body->cert->node_pk, SISY_SIGN_PK) ||
	    !bytes_len(&body->cert->cluster_pk, SISY_SIGN_PK) ||
	    !bytes_len(&body->cert->signature, SISY_SIGN_BYTES)) {
		rc = sisy_errf(SISY_E_PROTO,
			       "session.c: the server's hello is malformed");
		goto fail;
	}
	if (body->version < hs->min_version ||
	    body->version > hs->max_version) {
		rc = sisy_errf(SISY_E_PROTO,
			       "session.c: the server chose protocol version "
			       "%u, outside what was offered",
			       body->version);
		goto fail;
	}
	const Sisy__NodeCert *c = body->cert;
	if (!sisy_trust_cert_valid(c->cluster_pk.data, c->cluster_id.data,
				   c->node_id, c->node_pk.data,
				   c->signature.data)) {
		rc = sisy_errf(SISY_E_PROTO,
			       "session.c: the node's certificate is not "
			       "signed by the cluster key it names");
		goto fail;
	}
	sisy_slice bs = sisy_slice_make(sh->body.data, sh->body.len);
	msg = sig_message(hs->hello_hash, bs, &mlen);
	if (msg == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "session.c: out of memory");
		goto fail;
	}
	if (crypto_sign_verify_detached(sh->signature.data, msg, mlen,
					c->node_pk.data) != 0) {
		rc = sisy_errf(SISY_E_PROTO,
			       "session.c: the server's handshake signature "
			       "is wrong (tampered or impersonated)");
		goto fail;
	}
	if (crypto_kx_client_session_keys(rx, tx, hs->eph_pk, hs->eph_sk,
					  body->ephemeral_pk.data) != 0) {
		rc = sisy_errf(SISY_E_PROTO,
			       "session.c: bad server ephemeral key");
		goto fail;
	}
	transcript(hs->hello_hash, bs, s->transcript);
	session_keys(s, body->version, rx, tx);
	memcpy(info->cluster_pk, c->cluster_pk.data, SISY_SIGN_PK);
	memcpy(info->cluster_id, c->cluster_id.data, SISY_CLUSTER_ID);
	memcpy(info->node_pk, c->node_pk.data, SISY_SIGN_PK);
	info->node_id = c->node_id;
	rc = SISY_OK;
fail:
	sodium_memzero(rx, sizeof rx);
	sodium_memzero(tx, sizeof tx);
	sodium_memzero(hs->eph_sk, sizeof hs->eph_sk);
	free(msg);
	if (body)
		sisy__server_hello_body__free_unpacked(body, NULL);
	if (sh)
		sisy__server_hello__free_unpacked(sh, NULL);
	return rc;
}

/* ------------------------------------------------------------- server */

static sisy_err refuse(sisy_buf *out, Sisy__Status st, const char *why,
		       sisy_err code)
{
	Sisy__ServerHello sh = SISY__SERVER_HELLO__INIT;
	sh.status = st;
	sh.message = (char *)why;
	size_t n = sisy__server_hello__get_packed_size(&sh);
	sisy_buf_clear(out);
	if (sisy_buf_reserve(out, n) == SISY_OK) {
		sisy__server_hello__pack(&sh, out->data);
		out->len = n;
	}
	return sisy_errf(code, "session.c: handshake refused: %s", why);
}

/* The dialing node's certificate: of this cluster, and valid. */
static bool peer_cert_ok(const sisy_node_identity *id, const Sisy__NodeCert *c,
			 sisy_hs_peer *peer)
{
	if (c == NULL || !bytes_len(&c->cluster_id, SISY_CLUSTER_ID) ||
	    !bytes_len(&c->node_pk, SISY_SIGN_PK) ||
	    !bytes_len(&c->cluster_pk, SISY_SIGN_PK) ||
	    !bytes_len(&c->signature, SISY_SIGN_BYTES) || c->node_id == 0)
		return false;
	if (sodium_memcmp(c->cluster_pk.data, id->cluster_pk, SISY_SIGN_PK) !=
		0 ||
	    sodium_memcmp(c->cluster_id.data, id->cluster_id,
			  SISY_CLUSTER_ID) != 0)
		return false;
	if (!sisy_trust_cert_valid(id->cluster_pk, id->cluster_id, c->node_id,
				   c->node_pk.data, c->signature.data))
		return false;
	peer->node_id = c->node_id;
	memcpy(peer->node_pk, c->node_pk.data, SISY_SIGN_PK);
	return true;
}

static sisy_err server_answer(const sisy_node_identity *id,
			      sisy_slice client_hello, sisy_buf *out,
			      sisy_session *s, int *purpose,
			      sisy_hs_peer *peer);

sisy_err sisy_hs_server_answer(const sisy_node_identity *id,
			       sisy_slice client_hello, sisy_buf *out,
			       sisy_session *s, int *purpose)
{
	return server_answer(id, client_hello, out, s, purpose, NULL);
}

sisy_err sisy_hs_server_answer_node(const sisy_node_identity *id,
				    sisy_slice client_hello, sisy_buf *out,
				    sisy_session *s, int *purpose,
				    sisy_hs_peer *peer)
{
	assert(peer != NULL);
	memset(peer, 0, sizeof *peer);
	return server_answer(id, client_hello, out, s, purpose, peer);
}

/* peer NULL: a client-only port. */
static sisy_err server_answer(const sisy_node_identity *id,
			      sisy_slice client_hello, sisy_buf *out,
			      sisy_session *s, int *purpose, sisy_hs_peer *peer)
{
	Sisy__ClientHello *ch = NULL;
	uint8_t *msg = NULL, *bodybuf = NULL;
	size_t mlen, blen;
	uint8_t eph_pk[crypto_kx_PUBLICKEYBYTES];
	uint8_t eph_sk[crypto_kx_SECRETKEYBYTES];
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	uint8_t h1[32], sig[SISY_SIGN_BYTES];
	sisy_err rc;

	memset(s, 0, sizeof *s);
	sisy_buf_clear(out);
	ch = sisy__client_hello__unpack(NULL, client_hello.len,
					client_hello.data);
	if (ch == NULL || !bytes_len(&ch->ephemeral_pk, sizeof eph_pk) ||
	    ch->min_version > ch->max_version) {
		rc = refuse(out, SISY__STATUS__INVALID, "malformed hello",
			    SISY_E_PROTO);
		goto fail;
	}
	*purpose = (int)ch->purpose;
	uint32_t lo = ch->min_version > SISY_PROTO_VERSION_MIN
			  ? ch->min_version
			  : SISY_PROTO_VERSION_MIN;
	uint32_t max = sisy_proto_version_max();
	uint32_t hi = ch->max_version < max ? ch->max_version : max;
	if (lo > hi) {
		char why[96];
		snprintf(why, sizeof why,
			 "no protocol version in common (server speaks "
			 "%u..%u)",
			 SISY_PROTO_VERSION_MIN, max);
		rc =
		    refuse(out, SISY__STATUS__UNSUPPORTED, why, SISY_E_VERSION);
		goto fail;
	}
	if (ch->purpose != SISY__PURPOSE__CLIENT &&
	    (peer == NULL || ch->purpose > SISY__PURPOSE__JOIN)) {
		rc = refuse(out, SISY__STATUS__UNSUPPORTED,
			    "this port serves clients only", SISY_E_NOTSUP);
		goto fail;
	}
	if ((ch->purpose == SISY__PURPOSE__PEER ||
	     ch->purpose == SISY__PURPOSE__SNAPSHOT) &&
	    !peer_cert_ok(id, ch->client_cert, peer)) {
		rc = refuse(out, SISY__STATUS__PERMISSION_DENIED,
			    "no valid node certificate of this cluster",
			    SISY_E_PERM);
		goto fail;
	}
	crypto_generichash(h1, sizeof h1, client_hello.data, client_hello.len,
			   NULL, 0);
	crypto_kx_keypair(eph_pk, eph_sk);
	if (crypto_kx_server_session_keys(rx, tx, eph_pk, eph_sk,
					  ch->ephemeral_pk.data) != 0) {
		rc = refuse(out, SISY__STATUS__INVALID, "bad ephemeral key",
			    SISY_E_PROTO);
		goto fail;
	}

	Sisy__NodeCert cert = SISY__NODE_CERT__INIT;
	cert_of(&cert, id);
	Sisy__ServerHelloBody body = SISY__SERVER_HELLO_BODY__INIT;
	body.version = hi;
	body.ephemeral_pk.data = eph_pk;
	body.ephemeral_pk.len = sizeof eph_pk;
	body.cert = &cert;
	blen = sisy__server_hello_body__get_packed_size(&body);
	bodybuf = malloc(blen);
	if (bodybuf == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "session.c: out of memory");
		goto fail;
	}
	sisy__server_hello_body__pack(&body, bodybuf);
	sisy_slice bs = sisy_slice_make(bodybuf, blen);
	msg = sig_message(h1, bs, &mlen);
	if (msg == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "session.c: out of memory");
		goto fail;
	}
	crypto_sign_detached(sig, NULL, msg, mlen, id->node_sk);

	Sisy__ServerHello sh = SISY__SERVER_HELLO__INIT;
	sh.body.data = bodybuf;
	sh.body.len = blen;
	sh.signature.data = sig;
	sh.signature.len = sizeof sig;
	size_t n = sisy__server_hello__get_packed_size(&sh);
	if ((rc = sisy_buf_reserve(out, n)) != SISY_OK)
		goto fail;
	sisy__server_hello__pack(&sh, out->data);
	out->len = n;

	transcript(h1, bs, s->transcript);
	session_keys(s, hi, rx, tx);
	rc = SISY_OK;
fail:
	sodium_memzero(eph_sk, sizeof eph_sk);
	sodium_memzero(rx, sizeof rx);
	sodium_memzero(tx, sizeof tx);
	free(msg);
	free(bodybuf);
	if (ch)
		sisy__client_hello__free_unpacked(ch, NULL);
	return rc;
}

/* ------------------------------------------------------------- node proof */

static void peer_message(const uint8_t T[32], uint8_t out[12 + 32])
{
	memcpy(out, HS_PEER_TAG, 12);
	memcpy(out + 12, T, 32);
}

void sisy_hs_node_prove(const sisy_node_identity *id, const uint8_t T[32],
			uint8_t sig[SISY_SIGN_BYTES])
{
	uint8_t m[12 + 32];
	peer_message(T, m);
	crypto_sign_detached(sig, NULL, m, sizeof m, id->node_sk);
}

bool sisy_hs_node_check(const uint8_t node_pk[SISY_SIGN_PK],
			const uint8_t T[32], const uint8_t sig[SISY_SIGN_BYTES])
{
	uint8_t m[12 + 32];
	peer_message(T, m);
	return crypto_sign_verify_detached(sig, m, sizeof m, node_pk) == 0;
}
