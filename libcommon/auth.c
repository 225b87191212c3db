/* auth.c — verifiers, login proofs, fake salts and the client key cache
 * (auth.h). The cache file is rewritten whole (atomic rename) so a crash
 * never leaves half a line; lines it does not own are kept verbatim.
 */
#include "auth.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "trust.h"

#define LOGIN_TAG	"sisy-login-v1"
#define CACHE_TAG	"sisy-keycache-v1"
#define CACHE_PREFIX	"#sisy-key v1 "
#define CACHE_MAX_BYTES (1024u * 1024)
#define FAKE_TAG	"sisy-fake-salt-v1"

bool sisy_auth_user_valid(const char *name)
{
	size_t n = 0;
	for (const char *p = name; *p; p++, n++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '@' || c == '-'))
			return false;
	}
	return n >= 1 && n <= SISY_AUTH_MAX_USER;
}

bool sisy_auth_params_valid(uint64_t opslimit, uint64_t memlimit)
{
	return opslimit >= SISY_AUTH_OPS_MIN && opslimit <= SISY_AUTH_OPS_MAX &&
	       memlimit >= SISY_AUTH_MEM_MIN && memlimit <= SISY_AUTH_MEM_MAX;
}

sisy_err sisy_auth_derive(const char *password, const uint8_t *salt,
			  uint64_t opslimit, uint64_t memlimit,
			  uint8_t seed[SISY_AUTH_SEED])
{
	if (!sisy_auth_params_valid(opslimit, memlimit))
		return sisy_errf(SISY_E_INVAL,
				 "auth.c: Argon2id cost out of bounds "
				 "(ops %" PRIu64 ", mem %" PRIu64 ")",
				 opslimit, memlimit);
	if (crypto_pwhash(seed, SISY_AUTH_SEED, password, strlen(password),
			  salt, opslimit, (size_t)memlimit,
			  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return sisy_errf(SISY_E_NOMEM,
				 "auth.c: Argon2id failed (out of memory?)");
	return SISY_OK;
}

void sisy_auth_keypair(const uint8_t seed[SISY_AUTH_SEED],
		       uint8_t pk[SISY_AUTH_PK], uint8_t sk[SISY_AUTH_SK])
{
	crypto_sign_seed_keypair(pk, sk, seed);
}

sisy_err sisy_auth_make_verifier(const char *password, sisy_auth_verifier *out)
{
	uint8_t seed[SISY_AUTH_SEED], sk[SISY_AUTH_SK];
	randombytes_buf(out->salt, sizeof out->salt);
	out->opslimit = SISY_AUTH_OPS_MIN;
	out->memlimit = SISY_AUTH_MEM_MIN;
	sisy_err rc = sisy_auth_derive(password, out->salt, out->opslimit,
				       out->memlimit, seed);
	if (rc == SISY_OK)
		sisy_auth_keypair(seed, out->pk, sk);
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(sk, sizeof sk);
	return rc;
}

static size_t login_message(const uint8_t T[32], const char *user, uint8_t *m,
			    size_t cap)
{
	size_t tl = strlen(LOGIN_TAG), ul = strlen(user);
	if (tl + 32 + ul > cap)
		return 0;
	memcpy(m, LOGIN_TAG, tl);
	memcpy(m + tl, T, 32);
	memcpy(m + tl + 32, user, ul);
	return tl + 32 + ul;
}

void sisy_auth_prove(const uint8_t sk[SISY_AUTH_SK], const uint8_t T[32],
		     const char *user, uint8_t sig[SISY_AUTH_SIG])
{
	uint8_t m[64 + 32 + 1024];
	size_t n = login_message(T, user, m, sizeof m);
	crypto_sign_detached(sig, NULL, m, n, sk);
}

bool sisy_auth_check(const uint8_t pk[SISY_AUTH_PK], const uint8_t T[32],
		     const char *user, const uint8_t sig[SISY_AUTH_SIG])
{
	uint8_t m[64 + 32 + 1024];
	size_t n = login_message(T, user, m, sizeof m);
	if (n == 0)
		return false;
	return crypto_sign_verify_detached(sig, m, n, pk) == 0;
}

void sisy_auth_fake_salt(const uint8_t secret[32], const char *user,
			 uint8_t salt[SISY_AUTH_SALT])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, secret, 32, SISY_AUTH_SALT);
	crypto_generichash_update(&st, (const uint8_t *)FAKE_TAG,
				  strlen(FAKE_TAG));
	crypto_generichash_update(&st, (const uint8_t *)user, strlen(user));
	crypto_generichash_final(&st, salt, SISY_AUTH_SALT);
}

/* ------------------------------------------------------------ key cache */

static void cache_check(const uint8_t seed[SISY_AUTH_SEED],
			const char *password, uint8_t out[16])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, seed, SISY_AUTH_SEED, 16);
	crypto_generichash_update(&st, (const uint8_t *)CACHE_TAG,
				  strlen(CACHE_TAG));
	crypto_generichash_update(&st, (const uint8_t *)password,
				  strlen(password));
	crypto_generichash_final(&st, out, 16);
}

typedef struct cache_line {
	char fpr[80], user[80], salt[40], check[40], seed[64];
	uint64_t ops, mem;
} cache_line;

static bool parse_line(const char *line, cache_line *c)
{
	if (strncmp(line, CACHE_PREFIX, strlen(CACHE_PREFIX)) != 0)
		return false;
	return sscanf(line + strlen(CACHE_PREFIX),
		      "%79s %79s %39s %" SCNu64 " %" SCNu64 " %39s %63s",
		      c->fpr, c->user, c->salt, &c->ops, &c->mem, c->check,
		      c->seed) == 7;
}

sisy_err sisy_auth_cache_get(const char *path, const sisy_auth_cache_key *k,
			     const char *password, uint8_t seed[SISY_AUTH_SEED],
			     bool *found)
{
	char *data = NULL;
	char salt_b64[40];
	*found = false;
	sisy_err rc = sisy_trust_read_file(path, CACHE_MAX_BYTES, &data, NULL);
	if (rc == SISY_E_NOTFOUND)
		return SISY_OK;
	if (rc != SISY_OK)
		return rc;
	sisy_trust_b64(k->salt, SISY_AUTH_SALT, salt_b64, sizeof salt_b64);
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line && !*found;
	     line = strtok_r(NULL, "\n", &save)) {
		cache_line c;
		if (!parse_line(line, &c) || strcmp(c.fpr, k->fingerprint) ||
		    strcmp(c.user, k->user) || strcmp(c.salt, salt_b64) ||
		    c.ops != k->opslimit || c.mem != k->memlimit)
			continue;
		uint8_t check[16], want[16];
		if (!sisy_trust_unb64(c.seed, seed, SISY_AUTH_SEED) ||
		    !sisy_trust_unb64(c.check, want, sizeof want))
			continue;
		if (password != NULL) {
			cache_check(seed, password, check);
			if (sodium_memcmp(check, want, sizeof want) != 0)
				continue;
		}
		*found = true;
	}
	if (!*found)
		sodium_memzero(seed, SISY_AUTH_SEED);
	sodium_memzero(data, strlen(data));
	free(data);
	return SISY_OK;
}

/* Rewrites the file without the (fpr, user) entries, plus `extra`. */
static sisy_err cache_rewrite(const char *path, const char *fpr,
			      const char *user, const char *extra)
{
	char *data = NULL;
	sisy_buf out = {0};
	struct stat st;
	sisy_err rc = sisy_trust_read_file(path, CACHE_MAX_BYTES, &data, NULL);
	if (rc == SISY_E_NOTFOUND) {
		char dir[4096];
		snprintf(dir, sizeof dir, "%s", path);
		char *slash = strrchr(dir, '/');
		if (slash && slash != dir) {
			*slash = '\0';
			if (mkdir(dir, 0700) != 0 && errno != EEXIST)
				return sisy_errf(
				    SISY_E_IO, "auth.c: cannot create %s", dir);
		}
		rc = SISY_OK;
	} else if (rc != SISY_OK) {
		return rc;
	} else if (stat(path, &st) == 0 && (st.st_mode & 077) != 0) {
		rc = sisy_errf(SISY_E_PERM,
			       "auth.c: %s is readable by others (mode %o); "
			       "not caching a key there (chmod 600 it)",
			       path, (unsigned)(st.st_mode & 0777));
		goto fail;
	}
	for (char *line = data; line && *line;) {
		char *next = strchr(line, '\n');
		size_t len = next ? (size_t)(next - line) : strlen(line);
		cache_line c;
		char tmp[1024];
		bool drop = false;
		if (len < sizeof tmp) {
			memcpy(tmp, line, len);
			tmp[len] = '\0';
			drop = parse_line(tmp, &c) && !strcmp(c.fpr, fpr) &&
			       !strcmp(c.user, user);
			sodium_memzero(tmp, sizeof tmp);
		}
		if (!drop &&
		    ((rc = sisy_buf_append(&out, line, len)) != SISY_OK ||
		     (rc = sisy_buf_append_u8(&out, '\n')) != SISY_OK))
			goto fail;
		line = next ? next + 1 : NULL;
	}
	if (extra &&
	    (rc = sisy_buf_append(&out, extra, strlen(extra))) != SISY_OK)
		goto fail;
	rc = sisy_trust_write_file(path, out.data ? out.data : (uint8_t *)"",
				   out.len, 0600);
fail:
	if (data) {
		sodium_memzero(data, strlen(data));
		free(data);
	}
	if (out.data)
		sodium_memzero(out.data, out.cap);
	sisy_buf_free(&out);
	return rc;
}

sisy_err sisy_auth_cache_put(const char *path, const sisy_auth_cache_key *k,
			     const char *password,
			     const uint8_t seed[SISY_AUTH_SEED])
{
	char salt_b64[40], seed_b64[64], check_b64[40], line[512];
	uint8_t check[16];
	if (!sisy_auth_user_valid(k->user) || strpbrk(k->fingerprint, " \n"))
		return sisy_errf(SISY_E_INVAL, "auth.c: bad cache key");
	cache_check(seed, password ? password : "", check);
	sisy_trust_b64(k->salt, SISY_AUTH_SALT, salt_b64, sizeof salt_b64);
	sisy_trust_b64(seed, SISY_AUTH_SEED, seed_b64, sizeof seed_b64);
	sisy_trust_b64(check, sizeof check, check_b64, sizeof check_b64);
	snprintf(line, sizeof line,
		 CACHE_PREFIX "%s %s %s %" PRIu64 " %" PRIu64 " %s %s\n",
		 k->fingerprint, k->user, salt_b64, k->opslimit, k->memlimit,
		 check_b64, seed_b64);
	sisy_err rc = cache_rewrite(path, k->fingerprint, k->user, line);
	sodium_memzero(line, sizeof line);
	sodium_memzero(seed_b64, sizeof seed_b64);
	return rc;
}

sisy_err sisy_auth_cache_drop(const char *path, const char *fingerprint,
			      const char *user)
{
	return cache_rewrite(path, fingerprint, user, NULL);
}
