/* session.h — the secure session: handshake and sealed frames.
 *
 * Only libsodium's high-level constructions: crypto_kx (ephemeral key
 * exchange), crypto_sign (Ed25519: the cluster certifies nodes, a node
 * signs the transcript), crypto_generichash (BLAKE2b: transcript, key
 * binding) and, for every later frame, crypto_aead_aes256gcm (protocol
 * version 3, where both sides' CPUs have AES-NI) or
 * crypto_secretstream_xchacha20poly1305 (versions 1 and 2).
 * docs/protocol.md walks through it; sisy.proto has the messages.
 *
 * The handshake functions are pure (bytes in, bytes out, no I/O, no
 * clock), so tests and fuzzers drive them directly.
 *
 *   client: sisy_hs_client_hello()  -> ClientHello payload
 *   server: sisy_hs_server_answer() -> ServerHello payload + session
 *   client: sisy_hs_client_finish() -> verified server identity + session
 *
 * Session invariants: each direction is one secretstream, or one AES-GCM
 * key whose nonce is the frame's number in the direction (never sent: both
 * sides count), so a frame that was altered, replayed, reordered or
 * dropped fails to open; the first
 * failure marks the session broken and every later call fails (the
 * connection must end). A stream ends with a FINAL-tagged frame
 * (sisy_session_seal_final); a message after it is a protocol error, and an
 * EOF before it means the stream was truncated.
 */
#ifndef SISY_SESSION_H
#define SISY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "buf.h"
#include "err.h"
#include "trust.h"

/* 1: one message per sealed frame. 2: after login, a client session's
 * frames carry batches of requests / responses (frame.h "batches").
 * 3: as 2, frames sealed with AES-256-GCM instead of XChaCha20-Poly1305
 * (about 3x cheaper for a small frame here); offered and accepted only
 * where crypto_aead_aes256gcm_is_available(), see sisy_proto_version_max.
 * The largest version this build knows: */
#define SISY_PROTO_VERSION_MIN 1u
#define SISY_PROTO_VERSION_MAX 3u
/* The largest version this process speaks: 3 with AES-NI, else 2. */
uint32_t sisy_proto_version_max(void);
/* Bytes a sealed frame adds to its message at most (in version 3 a tag
 * byte and the 16-byte MAC; with a secretstream the same 17 bytes, and
 * the first frame also carries the stream header). */
#define SISY_SEAL_OVERHEAD crypto_secretstream_xchacha20poly1305_ABYTES
#define SISY_SEAL_HEADER   crypto_secretstream_xchacha20poly1305_HEADERBYTES

enum {
	SISY_PURPOSE_CLIENT = 0,
	SISY_PURPOSE_PEER = 1,
	SISY_PURPOSE_SNAPSHOT = 2,
	SISY_PURPOSE_JOIN = 3
};

typedef struct sisy_session {
	crypto_secretstream_xchacha20poly1305_state tx, rx;
	crypto_aead_aes256gcm_state gtx, grx; /* version 3: expanded keys */
	uint64_t tx_count, rx_count;	      /* version 3: frame numbers */
	uint8_t txkey[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	uint8_t rxkey[crypto_secretstream_xchacha20poly1305_KEYBYTES];
	uint8_t transcript[32]; /* T: what login proofs sign */
	uint32_t version;	/* agreed protocol version */
	bool tx_started, rx_started;
	bool rx_final; /* the peer ended its stream cleanly */
	bool broken;
} sisy_session;

/* Seals msg into one frame payload (append to out, no length prefix). */
sisy_err sisy_session_seal(sisy_session *s, const void *msg, size_t len,
			   sisy_buf *out);
/* The last frame of this direction. */
sisy_err sisy_session_seal_final(sisy_session *s, sisy_buf *out);
/* Opens one frame payload into out (replacing its contents). SISY_E_PROTO
 * on any failure (the session is then broken); SISY_E_CLOSED when the
 * frame was the peer's FINAL one (out is empty). */
sisy_err sisy_session_open(sisy_session *s, sisy_slice payload, sisy_buf *out);
/* Wipes the keys. */
void sisy_session_wipe(sisy_session *s);

/* --- client side --------------------------------------------------------- */

typedef struct sisy_hs_client {
	uint8_t eph_pk[crypto_kx_PUBLICKEYBYTES];
	uint8_t eph_sk[crypto_kx_SECRETKEYBYTES];
	uint8_t hello_hash[32];
	uint32_t min_version, max_version;
} sisy_hs_client;

/* What the client learned about the server, once verified. */
typedef struct sisy_hs_server_info {
	uint8_t cluster_pk[SISY_SIGN_PK];
	uint8_t cluster_id[SISY_CLUSTER_ID];
	uint64_t node_id;
	uint8_t node_pk[SISY_SIGN_PK];
} sisy_hs_server_info;

/* Fresh ephemeral keys; writes the ClientHello payload into out. */
sisy_err sisy_hs_client_hello(sisy_hs_client *hs, sisy_buf *out);
/* The same for another purpose: a node opening a PEER or SNAPSHOT
 * connection presents its certificate (id); JOIN presents none (id NULL).
 * The dialing node then proves its key with sisy_hs_node_prove as its
 * first sealed message (sisy.proto NodeProof). */
sisy_err sisy_hs_client_hello_as(sisy_hs_client *hs, int purpose,
				 const sisy_node_identity *id, sisy_buf *out);
/* A client session's hello offering versions MIN..max_version only (a
 * client built for an older protocol or without AES-NI; tests of
 * compatibility). max_version is capped at sisy_proto_version_max(). */
sisy_err sisy_hs_client_hello_max(sisy_hs_client *hs, uint32_t max_version,
				  sisy_buf *out);
/* Checks the ServerHello: version, certificate (signed by the cluster key
 * it names; whether THAT key is trusted is the caller's business, see
 * trust.h), transcript signature; then derives the session. SISY_E_VERSION
 * when the server refused the version, SISY_E_PROTO for anything forged or
 * malformed. Wipes the ephemeral secret either way. */
sisy_err sisy_hs_client_finish(sisy_hs_client *hs, sisy_slice server_hello,
			       sisy_hs_server_info *info, sisy_session *s);

/* --- server side --------------------------------------------------------- */

/* Answers a ClientHello: on success *out holds the ServerHello payload, *s
 * the session and *purpose the client's stated purpose. On a refusal the
 * returned code says why (SISY_E_PROTO malformed, SISY_E_VERSION no common
 * version, SISY_E_NOTSUP purpose) and *out, if not empty, holds a refusal
 * ServerHello worth sending before closing. */
sisy_err sisy_hs_server_answer(const sisy_node_identity *id,
			       sisy_slice client_hello, sisy_buf *out,
			       sisy_session *s, int *purpose);

/* The dialing node's certified identity (PEER / SNAPSHOT hellos). */
typedef struct sisy_hs_peer {
	uint64_t node_id;
	uint8_t node_pk[SISY_SIGN_PK];
} sisy_hs_peer;

/* sisy_hs_server_answer for a node's port, which also serves nodes: a PEER
 * or SNAPSHOT hello must carry a certificate of this node's cluster (same
 * cluster key and id; *peer gets its node id and key, and the caller still
 * checks the membership and, on the first sealed frame, the proof:
 * sisy_hs_node_check); JOIN carries none. A missing or foreign
 * certificate is refused (SISY_E_PERM) before any key exchange. */
sisy_err sisy_hs_server_answer_node(const sisy_node_identity *id,
				    sisy_slice client_hello, sisy_buf *out,
				    sisy_session *s, int *purpose,
				    sisy_hs_peer *peer);

/* --- node proof (both sides) --------------------------------------------- */

/* Ed25519 by the node key over "sisy-peer-v1" || T: the dialing node's
 * proof that it holds the certified key, bound to this session. */
void sisy_hs_node_prove(const sisy_node_identity *id, const uint8_t T[32],
			uint8_t sig[SISY_SIGN_BYTES]);
bool sisy_hs_node_check(const uint8_t node_pk[SISY_SIGN_PK],
			const uint8_t T[32],
			const uint8_t sig[SISY_SIGN_BYTES]);

#endif
