/* trust.h — who is who: the cluster signing key, node identities certified
 * by it, and the client's pinned cluster keys (known_servers).
 *
 * A node certificate is an Ed25519 signature by the cluster key over
 *   "sisy-cert-v1" (12 bytes) || cluster_id (16) || node_id (8, big-endian)
 *   || node_pk (32)
 * so a node key is bound to one node id of one cluster.
 *
 * Files (text, one "name value" per line, '#' comments; secrets 0600):
 *   DIR/cluster.key   the cluster's signing key (secret)
 *   DIR/cluster.pub   "sisy-ed25519 <base64 public key>"
 *   DIR/node.identity version, cluster_id, node_id, node_sk, cluster_pk,
 *                     cert_sig (secret)
 * known_servers (client side), one line per trusted cluster key:
 *   host:port[,host:port...] sisy-ed25519 <base64 public key>
 */
#ifndef SISY_TRUST_H
#define SISY_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define SISY_SIGN_PK	32
#define SISY_SIGN_SK	64
#define SISY_SIGN_BYTES 64
#define SISY_CLUSTER_ID 16
/* base64 of 32 bytes with padding, plus NUL. */
#define SISY_KEY_B64_LEN 45

typedef struct sisy_cluster_key {
	uint8_t pk[SISY_SIGN_PK];
	uint8_t sk[SISY_SIGN_SK];
	uint8_t cluster_id[SISY_CLUSTER_ID];
} sisy_cluster_key;

typedef struct sisy_node_identity {
	uint8_t cluster_id[SISY_CLUSTER_ID];
	uint64_t node_id;
	uint8_t node_pk[SISY_SIGN_PK];
	uint8_t node_sk[SISY_SIGN_SK];
	uint8_t cluster_pk[SISY_SIGN_PK];
	uint8_t cert_sig[SISY_SIGN_BYTES];
} sisy_node_identity;

/* A new cluster: fresh signing key and random cluster id. */
sisy_err sisy_trust_cluster_new(sisy_cluster_key *out);
/* A new node identity for node_id, certified by the cluster key. */
sisy_err sisy_trust_node_new(const sisy_cluster_key *ck, uint64_t node_id,
			     sisy_node_identity *out);
/* Certifies an existing node key (a joining node's) for node_id. */
void sisy_trust_cert_sign(const sisy_cluster_key *ck, uint64_t node_id,
			  const uint8_t node_pk[SISY_SIGN_PK],
			  uint8_t sig[SISY_SIGN_BYTES]);
/* Checks a certificate's signature against cluster_pk. */
bool sisy_trust_cert_valid(const uint8_t cluster_pk[SISY_SIGN_PK],
			   const uint8_t cluster_id[SISY_CLUSTER_ID],
			   uint64_t node_id,
			   const uint8_t node_pk[SISY_SIGN_PK],
			   const uint8_t sig[SISY_SIGN_BYTES]);

/* Key files in a data directory (see above). Writes are atomic (temp file,
 * fsync, rename, directory fsync) with mode 0600. */
sisy_err sisy_trust_save_cluster(const char *dir, const sisy_cluster_key *k);
sisy_err sisy_trust_load_cluster(const char *dir, sisy_cluster_key *k);
sisy_err sisy_trust_save_node(const char *dir, const sisy_node_identity *id);
sisy_err sisy_trust_load_node(const char *dir, sisy_node_identity *id);

/* Base64 (standard alphabet, padded). */
void sisy_trust_b64(const uint8_t *bin, size_t len, char *out, size_t outcap);
/* Decodes exactly `len` bytes; false otherwise. Surrounding space ignored. */
bool sisy_trust_unb64(const char *b64, uint8_t *bin, size_t len);
/* "BLAKE2b:<base64 of BLAKE2b-256(pk)>" (at most 64 bytes with NUL). */
void sisy_trust_fingerprint(const uint8_t pk[SISY_SIGN_PK], char out[64]);
/* Parses a key given by a user: "<base64>" or "sisy-ed25519 <base64>", or
 * a path to a file whose first such line holds it. */
sisy_err sisy_trust_parse_key(const char *text, uint8_t pk[SISY_SIGN_PK]);

/* Writes a whole file atomically (temp file in the same directory, fsync,
 * rename, directory fsync) with the given mode; for key and user files. */
sisy_err sisy_trust_write_file(const char *path, const void *data, size_t len,
			       unsigned mode);
/* Reads a whole small file (at most max bytes) NUL-terminated into *out
 * (malloc'd). SISY_E_NOTFOUND when missing. */
sisy_err sisy_trust_read_file(const char *path, size_t max, char **out,
			      size_t *len);

/* --- known_servers ------------------------------------------------------- */

typedef enum sisy_known {
	SISY_KNOWN_TRUSTED = 0, /* the key is pinned (for any host) */
	SISY_KNOWN_CHANGED,	/* the host is pinned to another key */
	SISY_KNOWN_UNKNOWN,	/* neither */
} sisy_known;

/* A missing file is an empty one. At most 10,000 lines are read. */
sisy_err sisy_trust_known_check(const char *path, const char *host,
				const uint8_t pk[SISY_SIGN_PK],
				sisy_known *out);
/* Appends "host sisy-ed25519 <key>", creating the file (0600) and its
 * directory (0700) when missing. */
sisy_err sisy_trust_known_add(const char *path, const char *host,
			      const uint8_t pk[SISY_SIGN_PK]);

#endif
