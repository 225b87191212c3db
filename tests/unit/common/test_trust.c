/* Tests libcommon/trust.c: certificates, key files, known_servers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "trust.h"

static char tmpdir[256];

static int setup(void **state)
{
	(void)state;
	assert_true(sodium_init() >= 0);
	snprintf(tmpdir, sizeof tmpdir, "/tmp/sisy-test-trust.XXXXXX");
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

static void test_cert_binds_id_and_cluster(void **state)
{
	(void)state;
	sisy_cluster_key ck;
	sisy_node_identity id;
	sisy_trust_cluster_new(&ck);
	sisy_trust_node_new(&ck, 3, &id);
	assert_true(sisy_trust_cert_valid(ck.pk, ck.cluster_id, 3, id.node_pk,
					  id.cert_sig));
	assert_false(sisy_trust_cert_valid(ck.pk, ck.cluster_id, 4, id.node_pk,
					   id.cert_sig));
	uint8_t other_id[SISY_CLUSTER_ID];
	memcpy(other_id, ck.cluster_id, sizeof other_id);
	other_id[0] ^= 1;
	assert_false(
	    sisy_trust_cert_valid(ck.pk, other_id, 3, id.node_pk, id.cert_sig));
	sisy_cluster_key ck2;
	sisy_trust_cluster_new(&ck2);
	assert_false(sisy_trust_cert_valid(ck2.pk, ck.cluster_id, 3, id.node_pk,
					   id.cert_sig));
}

static void test_key_files(void **state)
{
	(void)state;
	sisy_cluster_key ck, ck2;
	sisy_node_identity id, id2;
	sisy_trust_cluster_new(&ck);
	sisy_trust_node_new(&ck, 1, &id);
	assert_int_equal(sisy_trust_save_cluster(tmpdir, &ck), SISY_OK);
	assert_int_equal(sisy_trust_save_node(tmpdir, &id), SISY_OK);
	assert_int_equal(sisy_trust_load_cluster(tmpdir, &ck2), SISY_OK);
	assert_int_equal(sisy_trust_load_node(tmpdir, &id2), SISY_OK);
	assert_memory_equal(&ck, &ck2, sizeof ck);
	assert_memory_equal(&id, &id2, sizeof id);
	char path[400];
	struct stat st;
	snprintf(path, sizeof path, "%s/node.identity", tmpdir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(path, sizeof path, "%s/cluster.key", tmpdir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* cluster.pub parses as a server key, by path and by contents. */
	uint8_t pk[SISY_SIGN_PK];
	snprintf(path, sizeof path, "%s/cluster.pub", tmpdir);
	assert_int_equal(sisy_trust_parse_key(path, pk), SISY_OK);
	assert_memory_equal(pk, ck.pk, sizeof pk);
	char b64[SISY_KEY_B64_LEN], line[80];
	sisy_trust_b64(ck.pk, sizeof ck.pk, b64, sizeof b64);
	memset(pk, 0, sizeof pk);
	assert_int_equal(sisy_trust_parse_key(b64, pk), SISY_OK);
	assert_memory_equal(pk, ck.pk, sizeof pk);
	snprintf(line, sizeof line, "sisy-ed25519 %s", b64);
	assert_int_equal(sisy_trust_parse_key(line, pk), SISY_OK);
	assert_int_equal(sisy_trust_parse_key("not-a-key", pk), SISY_E_INVAL);
	/* A tampered identity file (cert no longer matches) is refused. */
	id.node_id = 2;
	assert_int_equal(sisy_trust_save_node(tmpdir, &id), SISY_OK);
	assert_int_equal(sisy_trust_load_node(tmpdir, &id2), SISY_E_CORRUPT);
}

static void test_known_servers(void **state)
{
	(void)state;
	char path[400];
	uint8_t a[SISY_SIGN_PK], b[SISY_SIGN_PK], sk[SISY_SIGN_SK];
	sisy_known k;
	crypto_sign_keypair(a, sk);
	crypto_sign_keypair(b, sk);
	snprintf(path, sizeof path, "%s/dot-sisy/known_servers", tmpdir);
	assert_int_equal(sisy_trust_known_check(path, "h1:7420", a, &k),
			 SISY_OK);
	assert_int_equal(k, SISY_KNOWN_UNKNOWN);
	assert_int_equal(sisy_trust_known_add(path, "h1:7420", a), SISY_OK);
	assert_int_equal(sisy_trust_known_check(path, "h1:7420", a, &k),
			 SISY_OK);
	assert_int_equal(k, SISY_KNOWN_TRUSTED);
	/* The cluster key is trusted on any host (a new node, say). */
	assert_int_equal(sisy_trust_known_check(path, "h9:1", a, &k), SISY_OK);
	assert_int_equal(k, SISY_KNOWN_TRUSTED);
	/* Another key on a pinned host: changed. Elsewhere: unknown. */
	assert_int_equal(sisy_trust_known_check(path, "h1:7420", b, &k),
			 SISY_OK);
	assert_int_equal(k, SISY_KNOWN_CHANGED);
	assert_int_equal(sisy_trust_known_check(path, "h2:7420", b, &k),
			 SISY_OK);
	assert_int_equal(k, SISY_KNOWN_UNKNOWN);
	/* Comma-separated host lists and junk lines. */
	FILE *f = fopen(path, "a");
	fputs("# comment\ngarbage line\nh3:1,h4:2 sisy-ed25519 !!!\n", f);
	fclose(f);
	assert_int_equal(sisy_trust_known_add(path, "h5:1,h6:2", b), SISY_OK);
	assert_int_equal(sisy_trust_known_check(path, "h6:2", a, &k), SISY_OK);
	assert_int_equal(k, SISY_KNOWN_TRUSTED);
	assert_int_equal(sisy_trust_known_check(path, "h1:7420", b, &k),
			 SISY_OK);
	assert_int_equal(k, SISY_KNOWN_TRUSTED);
	char fpr[64], fpr2[64];
	sisy_trust_fingerprint(a, fpr);
	sisy_trust_fingerprint(b, fpr2);
	assert_int_equal(strncmp(fpr, "BLAKE2b:", 8), 0);
	assert_string_not_equal(fpr, fpr2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cert_binds_id_and_cluster),
	    cmocka_unit_test(test_key_files),
	    cmocka_unit_test(test_known_servers),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
