/* Tests sisyd/server/token.c: the join token round-trips every field, and
 * anything that is not a whole token is refused (truncated, altered
 * prefix, trailing bytes, bad addresses). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "srv_int.h"

static void sample(srv_token *t)
{
	memset(t, 0, sizeof *t);
	for (int i = 0; i < 32; i++) {
		t->secret[i] = (uint8_t)(i * 7 + 1);
		t->cluster_fpr[i] = (uint8_t)(255 - i);
	}
	t->node_id = 0x0102030405060708ull;
	snprintf(t->address, sizeof t->address, "10.1.2.3:7420");
	t->naddrs = 3;
	snprintf(t->addrs[0], sizeof t->addrs[0], "127.0.0.1:7001");
	snprintf(t->addrs[1], sizeof t->addrs[1], "[::1]:7002");
	snprintf(t->addrs[2], sizeof t->addrs[2], "db3.example:7003");
}

static void test_round_trip(void **state)
{
	(void)state;
	srv_token t, u;
	sisy_buf b = {0};
	sample(&t);
	assert_int_equal(token_encode(&t, &b), SISY_OK);
	assert_int_equal(strncmp((char *)b.data, "sisy-join-1.", 12), 0);
	assert_int_equal(strlen((char *)b.data), b.len);
	/* Whitespace around it (a pasted token) is fine. */
	char text[4096];
	snprintf(text, sizeof text, "  %s\n", (char *)b.data);
	assert_int_equal(token_decode(text, &u), SISY_OK);
	assert_memory_equal(u.secret, t.secret, 32);
	assert_memory_equal(u.cluster_fpr, t.cluster_fpr, 32);
	assert_true(u.node_id == t.node_id);
	assert_string_equal(u.address, t.address);
	assert_int_equal(u.naddrs, 3);
	for (size_t i = 0; i < 3; i++)
		assert_string_equal(u.addrs[i], t.addrs[i]);
	sisy_buf_free(&b);
}

static void test_refused(void **state)
{
	(void)state;
	srv_token t, u;
	sisy_buf b = {0};
	sample(&t);
	assert_int_equal(token_encode(&t, &b), SISY_OK);
	char text[4096];
	snprintf(text, sizeof text, "%s", (char *)b.data);
	size_t n = strlen(text);
	/* Every truncation is refused. */
	for (size_t cut = 0; cut < n; cut++) {
		char c = text[cut];
		text[cut] = '\0';
		assert_int_equal(token_decode(text, &u), SISY_E_INVAL);
		text[cut] = c;
	}
	/* Another prefix, or a character outside base64url. */
	text[5] = 'X';
	assert_int_equal(token_decode(text, &u), SISY_E_INVAL);
	text[5] = 'j';
	text[n - 3] = '+';
	assert_int_equal(token_decode(text, &u), SISY_E_INVAL);
	/* No addresses, or an address with a space, do not encode. */
	t.naddrs = 0;
	assert_int_equal(token_encode(&t, &b), SISY_E_INVAL);
	sample(&t);
	t.address[0] = '\0';
	assert_int_equal(token_encode(&t, &b), SISY_E_INVAL);
	sisy_buf_free(&b);
	/* The fingerprint is BLAKE2b-256 of the key: distinct keys differ. */
	uint8_t k1[SISY_SIGN_PK] = {1}, k2[SISY_SIGN_PK] = {2}, f1[32], f2[32];
	token_cluster_fpr(k1, f1);
	token_cluster_fpr(k2, f2);
	assert_memory_not_equal(f1, f2, 32);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
