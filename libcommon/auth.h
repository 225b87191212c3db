/* auth.h — password login without sending the password (SCRAM-like).
 *
 *   seed     = Argon2id(password, salt, opslimit, memlimit)   (32 bytes)
 *   (pk, sk) = Ed25519 key pair from seed (crypto_sign_seed_keypair)
 *   verifier = (salt, opslimit, memlimit, pk)  -- all the server keeps
 *   proof    = Ed25519 signature by sk over
 *              "sisy-login-v1" || T (handshake transcript, 32) || user
 * The expensive derivation runs on the client (or wherever the password is
 * typed: `USER ADD` derives the verifier on the admin's client); the server
 * only verifies a signature, so a login storm costs it microseconds each.
 * A stolen verifier does not let anyone log in (pk is public-key material)
 * and costs an Argon2id per guess to attack. A proof is bound to one
 * handshake transcript, so it cannot be replayed on another connection.
 * Unknown users get a stable fake salt (keyed hash of the name), so the
 * challenge does not tell which names exist.
 *
 * Client key cache (passfile lines, see client.h):
 *   #sisy-key v1 <cluster-fpr> <user> <salt b64> <ops> <mem> <check b64>
 *   <seed b64>
 * check = BLAKE2b-128(key = seed, "sisy-keycache-v1" || password): tells
 * whether a given password is the one the seed came from.
 */
#ifndef SISY_AUTH_H
#define SISY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "err.h"

#define SISY_AUTH_SALT	   16
#define SISY_AUTH_SEED	   32
#define SISY_AUTH_PK	   32
#define SISY_AUTH_SK	   64
#define SISY_AUTH_SIG	   64
#define SISY_AUTH_MAX_USER 64
/* Bounds on what a verifier may ask for: never below libsodium's
 * interactive cost (server refuses), never above these (the client refuses
 * to burn more than this on a server's say-so). */
#define SISY_AUTH_OPS_MIN crypto_pwhash_OPSLIMIT_INTERACTIVE
#define SISY_AUTH_MEM_MIN crypto_pwhash_MEMLIMIT_INTERACTIVE
#define SISY_AUTH_OPS_MAX 16ULL
#define SISY_AUTH_MEM_MAX (1024ULL * 1024 * 1024)

typedef struct sisy_auth_verifier {
	uint8_t salt[SISY_AUTH_SALT];
	uint64_t opslimit;
	uint64_t memlimit;
	uint8_t pk[SISY_AUTH_PK];
} sisy_auth_verifier;

/* True when a user name is acceptable: 1..64 of [A-Za-z0-9_.@-]. */
bool sisy_auth_user_valid(const char *name);
/* True when the cost parameters are within [MIN, MAX]. */
bool sisy_auth_params_valid(uint64_t opslimit, uint64_t memlimit);

/* Argon2id. Slow on purpose (tens of ms, 64 MiB at the minimum cost). */
sisy_err sisy_auth_derive(const char *password, const uint8_t *salt,
			  uint64_t opslimit, uint64_t memlimit,
			  uint8_t seed[SISY_AUTH_SEED]);
/* A verifier for a new password: random salt, the minimum cost. */
sisy_err sisy_auth_make_verifier(const char *password, sisy_auth_verifier *out);
void sisy_auth_keypair(const uint8_t seed[SISY_AUTH_SEED],
		       uint8_t pk[SISY_AUTH_PK], uint8_t sk[SISY_AUTH_SK]);

void sisy_auth_prove(const uint8_t sk[SISY_AUTH_SK], const uint8_t T[32],
		     const char *user, uint8_t sig[SISY_AUTH_SIG]);
bool sisy_auth_check(const uint8_t pk[SISY_AUTH_PK], const uint8_t T[32],
		     const char *user, const uint8_t sig[SISY_AUTH_SIG]);

/* Stable fake salt for an unknown user (secret: a per-node random key). */
void sisy_auth_fake_salt(const uint8_t secret[32], const char *user,
			 uint8_t salt[SISY_AUTH_SALT]);

/* --- client key cache ---------------------------------------------------- */

typedef struct sisy_auth_cache_key {
	const char *fingerprint; /* cluster key fingerprint */
	const char *user;
	const uint8_t *salt;
	uint64_t opslimit, memlimit;
} sisy_auth_cache_key;

/* Looks up a seed in the passfile. password may be NULL (any entry for the
 * key matches); otherwise only an entry derived from it. *found false when
 * none (a missing file is not an error). */
sisy_err sisy_auth_cache_get(const char *path, const sisy_auth_cache_key *k,
			     const char *password, uint8_t seed[SISY_AUTH_SEED],
			     bool *found);
/* Replaces the entry for (fingerprint, user) with this seed; creates the
 * file 0600 (and its directory 0700) when missing; refuses to write a file
 * that others can read (SISY_E_PERM). Other lines are kept as they are. */
sisy_err sisy_auth_cache_put(const char *path, const sisy_auth_cache_key *k,
			     const char *password,
			     const uint8_t seed[SISY_AUTH_SEED]);
/* Removes the entries for (fingerprint, user). */
sisy_err sisy_auth_cache_drop(const char *path, const char *fingerprint,
			      const char *user);

#endif
