/* Tests libcommon/auth.c: verifiers, login proofs bound to a transcript,
 * fake salts, and the passfile key cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "trust.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	assert_true(sodium_init() >= 0);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/sisy-test-auth.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	return system(cmd);
}

/* One Argon2id derivation is shared by the tests (it is slow on purpose). */
static sisy_auth_verifier ver;
static uint8_t seed[SISY_AUTH_SEED];

static void test_verifier_and_proof(void **state)
{
	(void)state;
	uint8_t pk[SISY_AUTH_PK], sk[SISY_AUTH_SK], sig[SISY_AUTH_SIG];
	uint8_t T[32], T2[32];
	assert_int_equal(sisy_auth_make_verifier("correct horse", &ver),
			 SISY_OK);
	assert_true(ver.opslimit >= crypto_pwhash_OPSLIMIT_INTERACTIVE);
	assert_true(ver.memlimit >= crypto_pwhash_MEMLIMIT_INTERACTIVE);
	/* The client side: derive from the same password and salt. */
	assert_int_equal(sisy_auth_derive("correct horse", ver.salt,
					  ver.opslimit, ver.memlimit, seed),
			 SISY_OK);
	sisy_auth_keypair(seed, pk, sk);
	assert_memory_equal(pk, ver.pk, SISY_AUTH_PK);
	randombytes_buf(T, sizeof T);
	randombytes_buf(T2, sizeof T2);
	sisy_auth_prove(sk, T, "alice", sig);
	assert_true(sisy_auth_check(ver.pk, T, "alice", sig));
	/* Bound to the transcript and to the user name. */
	assert_false(sisy_auth_check(ver.pk, T2, "alice", sig));
	assert_false(sisy_auth_check(ver.pk, T, "alicf", sig));
	sig[5] ^= 1;
	assert_false(sisy_auth_check(ver.pk, T, "alice", sig));
	/* A wrong password derives a key that does not verify. */
	uint8_t wseed[SISY_AUTH_SEED], wpk[SISY_AUTH_PK];
	assert_int_equal(sisy_auth_derive("correct horsf", ver.salt,
					  ver.opslimit, ver.memlimit, wseed),
			 SISY_OK);
	sisy_auth_keypair(wseed, wpk, sk);
	sisy_auth_prove(sk, T, "alice", sig);
	assert_false(sisy_auth_check(ver.pk, T, "alice", sig));
}

static void test_params_and_names(void **state)
{
	(void)state;
	uint8_t s[SISY_AUTH_SEED];
	/* Below the interactive cost is refused, on both ends. */
	assert_false(sisy_auth_params_valid(1, SISY_AUTH_MEM_MIN));
	assert_false(sisy_auth_params_valid(SISY_AUTH_OPS_MIN, 8192));
	assert_false(
	    sisy_auth_params_valid(SISY_AUTH_OPS_MIN, SISY_AUTH_MEM_MAX * 2));
	assert_int_equal(sisy_auth_derive("x", ver.salt, 1, 8192, s),
			 SISY_E_INVAL);
	assert_true(sisy_auth_user_valid("admin"));
	assert_true(sisy_auth_user_valid("a.b-c_d@e"));
	assert_false(sisy_auth_user_valid(""));
	assert_false(sisy_auth_user_valid("has space"));
	assert_false(sisy_auth_user_valid("semi;colon"));
	char longname[80];
	memset(longname, 'a', sizeof longname);
	longname[65] = '\0';
	assert_false(sisy_auth_user_valid(longname));
	longname[64] = '\0';
	assert_true(sisy_auth_user_valid(longname));
}

static void test_fake_salt(void **state)
{
	(void)state;
	uint8_t k1[32], k2[32], a[16], b[16], c[16];
	randombytes_buf(k1, 32);
	randombytes_buf(k2, 32);
	sisy_auth_fake_salt(k1, "mallory", a);
	sisy_auth_fake_salt(k1, "mallory", b);
	assert_memory_equal(a, b, 16); /* stable: asking twice says nothing */
	sisy_auth_fake_salt(k1, "trudy", c);
	assert_memory_not_equal(a, c, 16);
	sisy_auth_fake_salt(k2, "mallory", c);
	assert_memory_not_equal(a, c, 16);
}

static void test_key_cache(void **state)
{
	(void)state;
	char path[400];
	uint8_t got[SISY_AUTH_SEED];
	bool found;
	snprintf(path, sizeof path, "%s/sub/passfile", tmpdir);
	sisy_auth_cache_key k = {"BLAKE2b:abc", "alice", ver.salt, ver.opslimit,
				 ver.memlimit};
	/* Missing file: nothing found, no error. */
	assert_int_equal(sisy_auth_cache_get(path, &k, NULL, got, &found),
			 SISY_OK);
	assert_false(found);
	assert_int_equal(sisy_auth_cache_put(path, &k, "correct horse", seed),
			 SISY_OK);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Same password: hit. No password: hit. Other password: miss. */
	assert_int_equal(
	    sisy_auth_cache_get(path, &k, "correct horse", got, &found),
	    SISY_OK);
	assert_true(found);
	assert_memory_equal(got, seed, sizeof seed);
	assert_int_equal(sisy_auth_cache_get(path, &k, NULL, got, &found),
			 SISY_OK);
	assert_true(found);
	assert_int_equal(sisy_auth_cache_get(path, &k, "wrong", got, &found),
			 SISY_OK);
	assert_false(found);
	/* Another salt (the password was changed): miss. */
	uint8_t salt2[16];
	memcpy(salt2, ver.salt, 16);
	salt2[0] ^= 1;
	sisy_auth_cache_key k2 = k;
	k2.salt = salt2;
	assert_int_equal(sisy_auth_cache_get(path, &k2, NULL, got, &found),
			 SISY_OK);
	assert_false(found);
	/* The user's own lines survive cache updates. */
	FILE *f = fopen(path, "a");
	fputs("host:7420:alice:plain-password\n", f);
	fclose(f);
	assert_int_equal(sisy_auth_cache_put(path, &k, "correct horse", seed),
			 SISY_OK);
	char *text = NULL;
	assert_int_equal(sisy_trust_read_file(path, 65536, &text, NULL),
			 SISY_OK);
	assert_non_null(strstr(text, "host:7420:alice:plain-password\n"));
	/* Exactly one cache line for (cluster, user). */
	char *first = strstr(text, "#sisy-key v1 BLAKE2b:abc alice ");
	assert_non_null(first);
	assert_null(strstr(first + 1, "#sisy-key v1 BLAKE2b:abc alice "));
	free(text);
	assert_int_equal(sisy_auth_cache_drop(path, "BLAKE2b:abc", "alice"),
			 SISY_OK);
	assert_int_equal(sisy_auth_cache_get(path, &k, NULL, got, &found),
			 SISY_OK);
	assert_false(found);
	/* A passfile others can read is never written to. */
	chmod(path, 0644);
	assert_int_equal(sisy_auth_cache_put(path, &k, "correct horse", seed),
			 SISY_E_PERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verifier_and_proof),
	    cmocka_unit_test(test_params_and_names),
	    cmocka_unit_test(test_fake_salt),
	    cmocka_unit_test(test_key_cache),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
