/* Tests sisy-cli/parse.c: every command's syntax, keywords only from bare
 * words, numbers, and the messages of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lex.h"
#include "parse.h"

static cli_lexed lx;
static cli_cmd cmd;

static int teardown(void **state)
{
	(void)state;
	cli_cmd_free(&cmd);
	cli_lexed_free(&lx);
	return 0;
}

static sisy_err parse_opts(const char *s, bool cluster)
{
	cli_parse_opts o = {.cluster = cluster};
	cli_cmd_free(&cmd);
	sisy_err rc = cli_lex(s, strlen(s), NULL, &lx);
	if (rc != SISY_OK)
		return rc;
	assert_int_equal(lx.nstmts, 1);
	return cli_parse(&lx, &lx.stmts[0], &o, &cmd);
}

static sisy_err parse(const char *s)
{
	return parse_opts(s, false);
}

static void arg_is(const cli_arg *a, const char *want, bool file)
{
	assert_true(a->present);
	assert_int_equal(a->file, file);
	assert_int_equal(a->data.len, strlen(want));
	assert_memory_equal(a->data.data, want, a->data.len);
}

static void err_has(const char *s, const char *want)
{
	assert_int_equal(parse(s), SISY_E_INVAL);
	if (strstr(sisy_errmsg(), want) == NULL)
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", s,
			 sisy_errmsg(), want);
}

static void test_get(void **state)
{
	(void)state;
	assert_int_equal(parse("GET k1"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_GET);
	arg_is(&cmd.key, "k1", false);
	assert_false(cmd.with_version);
	/* Keywords in any case. */
	assert_int_equal(parse("get 'a b' with Version"), SISY_OK);
	arg_is(&cmd.key, "a b", false);
	assert_true(cmd.with_version);
	assert_int_equal(parse("GET @keyfile"), SISY_OK);
	arg_is(&cmd.key, "keyfile", true);
	err_has("GET", "GET: expected a key; usage: GET key [WITH VERSION]");
	err_has("GET k WITH", "expected VERSION after WITH");
	err_has("GET k extra", "unexpected \"extra\"");
	/* A quoted keyword is not a keyword. */
	err_has("GET k 'WITH' VERSION", "unexpected \"WITH\"");
}

static void test_put(void **state)
{
	(void)state;
	assert_int_equal(parse("PUT k v"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_PUT);
	arg_is(&cmd.key, "k", false);
	arg_is(&cmd.value, "v", false);
	assert_int_equal(cmd.cond, CLI_COND_NONE);
	assert_int_equal(parse("PUT k @- IF VERSION 18446744073709551615"),
			 SISY_OK);
	arg_is(&cmd.value, "-", true);
	assert_int_equal(cmd.cond, CLI_COND_VERSION);
	assert_true(cmd.cond_version == UINT64_MAX);
	assert_int_equal(parse("put k '' if absent"), SISY_OK);
	arg_is(&cmd.value, "", false);
	assert_int_equal(cmd.cond, CLI_COND_ABSENT);
	/* A value that spells a keyword is a value. */
	assert_int_equal(parse("PUT IF IF"), SISY_OK);
	arg_is(&cmd.key, "IF", false);
	arg_is(&cmd.value, "IF", false);
	err_has("PUT k", "expected a value");
	err_has("PUT k v IF", "expected VERSION n or ABSENT after IF");
	err_has("PUT k v IF VERSION", "expected the version");
	err_has("PUT k v IF VERSION 18446744073709551616",
		"whole number from 0 to 2^64-1");
	err_has("PUT k v IF VERSION -1", "whole number");
	err_has("PUT k v IF VERSION 1x", "whole number");
	err_has("PUT k v IF ABSENT IF ABSENT", "unexpected \"IF\"");
}

static void test_del_exists_mget(void **state)
{
	(void)state;
	assert_int_equal(parse("DEL k IF VERSION 7"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_DEL);
	assert_int_equal(cmd.cond_version, 7);
	/* IF ABSENT makes no sense for a delete. */
	err_has("DEL k IF ABSENT", "expected VERSION n after IF");
	assert_int_equal(parse("EXISTS k"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_EXISTS);
	err_has("EXISTS a b", "unexpected \"b\"");
	assert_int_equal(parse("MGET a 'b c' x'00'"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_MGET);
	assert_int_equal(cmd.nkeys, 3);
	arg_is(&cmd.keys[1], "b c", false);
	assert_int_equal(cmd.keys[2].data.len, 1);
	assert_int_equal(cmd.keys[2].data.data[0], 0);
	err_has("MGET", "expected at least one key");
}

static void test_scan(void **state)
{
	(void)state;
	assert_int_equal(parse("SCAN"), SISY_OK);
	assert_int_equal(cmd.scan, CLI_SCAN_ALL);
	assert_false(cmd.has_limit);
	assert_int_equal(parse("SCAN PREFIX bar: LIMIT 20000"), SISY_OK);
	assert_int_equal(cmd.scan, CLI_SCAN_PREFIX);
	arg_is(&cmd.from, "bar:", false);
	assert_true(cmd.has_limit);
	assert_int_equal(cmd.limit, 20000);
	assert_int_equal(parse("scan from a to b limit 0"), SISY_OK);
	assert_int_equal(cmd.scan, CLI_SCAN_RANGE);
	arg_is(&cmd.from, "a", false);
	arg_is(&cmd.to, "b", false);
	assert_int_equal(cmd.limit, 0);
	assert_int_equal(parse("SCAN FROM a"), SISY_OK);
	assert_false(cmd.to.present);
	assert_int_equal(parse("SCAN LIMIT 5"), SISY_OK);
	assert_int_equal(cmd.scan, CLI_SCAN_ALL);
	err_has("SCAN PREFIX", "expected a prefix");
	err_has("SCAN LIMIT", "expected the limit");
	err_has("SCAN TO b", "unexpected \"TO\"");
	err_has("SCAN PREFIX a FROM b", "unexpected \"FROM\"");
	err_has("SCAN LIMIT 1 LIMIT 2", "unexpected \"LIMIT\"");
}

static void test_bare_commands(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		cli_cmd_kind k;
	} cases[] = {
	    {"BEGIN", CLI_CMD_BEGIN},	    {"commit", CLI_CMD_COMMIT},
	    {"RollBack", CLI_CMD_ROLLBACK}, {"PING", CLI_CMD_PING},
	    {"INFO", CLI_CMD_INFO},	    {"WHOAMI", CLI_CMD_WHOAMI},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		assert_int_equal(parse(cases[i].s), SISY_OK);
		assert_int_equal(cmd.kind, cases[i].k);
	}
	err_has("PING x", "PING: unexpected \"x\"");
	err_has("BEGIN now", "unexpected");
	/* INFO takes one optional section name */
	assert_int_equal(parse("INFO engine"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_INFO);
	arg_is(&cmd.key, "engine", false);
	err_has("INFO engine raft", "INFO: unexpected \"raft\"");
	err_has("INFO @f", "not a file");
}

static void test_users(void **state)
{
	(void)state;
	assert_int_equal(parse("USER ADD bob ROLE readwrite PASSWORD 's3 t'"),
			 SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_USER_ADD);
	arg_is(&cmd.key, "bob", false);
	assert_int_equal(cmd.role, CLI_ROLE_READWRITE);
	arg_is(&cmd.value, "s3 t", false);
	assert_int_equal(parse("user add bob role ADMIN"), SISY_OK);
	assert_int_equal(cmd.role, CLI_ROLE_ADMIN);
	assert_false(cmd.value.present);
	assert_int_equal(parse("USER DEL bob"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_USER_DEL);
	assert_int_equal(parse("USER LIST"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_USER_LIST);
	assert_int_equal(parse("USER PASSWORD"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_USER_PASSWORD);
	assert_false(cmd.key.present);
	assert_int_equal(parse("USER PASSWORD bob"), SISY_OK);
	arg_is(&cmd.key, "bob", false);
	assert_false(cmd.value.present);
	assert_int_equal(parse("USER PASSWORD bob pw"), SISY_OK);
	arg_is(&cmd.value, "pw", false);
	assert_int_equal(parse("USER ROLE bob readonly"), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_USER_ROLE);
	assert_int_equal(cmd.role, CLI_ROLE_READONLY);
	err_has("USER ADD bob", "expected ROLE");
	err_has("USER ADD bob ROLE boss",
		"the role must be readonly, readwrite or admin");
	err_has("USER ROLE bob", "expected a role");
	err_has("USER", "expected ADD, DEL, LIST, PASSWORD or ROLE");
	err_has("USER LIST x", "USER LIST: unexpected");
	err_has("USER PASSWORD a b c", "unexpected \"c\"");
}

static void test_cluster_only_when_offered(void **state)
{
	(void)state;
	err_has("CLUSTER NODES", "unknown command \"CLUSTER\"");
	assert_int_equal(parse_opts("CLUSTER NODES", true), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_CLUSTER_NODES);
	assert_int_equal(parse_opts("cluster add node 10.0.0.2:7420", true),
			 SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_CLUSTER_ADD_NODE);
	arg_is(&cmd.key, "10.0.0.2:7420", false);
	assert_int_equal(parse_opts("CLUSTER REMOVE NODE 3", true), SISY_OK);
	assert_int_equal(cmd.node_id, 3);
	assert_int_equal(parse_opts("CLUSTER FAILOVER", true), SISY_OK);
	assert_false(cmd.has_node_id);
	assert_int_equal(parse_opts("CLUSTER FAILOVER TO 2", true), SISY_OK);
	assert_true(cmd.has_node_id);
	assert_int_equal(cmd.node_id, 2);
	assert_int_equal(parse_opts("CLUSTER INFO", true), SISY_OK);
	assert_int_equal(cmd.kind, CLI_CMD_CLUSTER_INFO);
	assert_int_equal(parse_opts("CLUSTER REMOVE NODE x", true),
			 SISY_E_INVAL);
	assert_int_equal(parse_opts("CLUSTER", true), SISY_E_INVAL);
}

static void test_unknown(void **state)
{
	(void)state;
	err_has("NOSUCHCOMMAND x", "unknown command \"NOSUCHCOMMAND\"");
	err_has("'GET' k", "unknown command \"GET\"");
	/* Raw bytes are never echoed into a message. */
	err_has("x'1b5b324a'", "unknown command \"\\x1b[2J\"");
}

static void test_u64(void **state)
{
	(void)state;
	uint64_t v;
	assert_true(cli_parse_u64(sisy_slice_str("0"), &v));
	assert_int_equal(v, 0);
	assert_true(cli_parse_u64(sisy_slice_str("00042"), &v));
	assert_int_equal(v, 42);
	assert_true(cli_parse_u64(sisy_slice_str("18446744073709551615"), &v));
	assert_true(v == UINT64_MAX);
	assert_false(cli_parse_u64(sisy_slice_str("18446744073709551616"), &v));
	assert_false(cli_parse_u64(sisy_slice_str("99999999999999999999"), &v));
	assert_false(cli_parse_u64(sisy_slice_str(""), &v));
	assert_false(cli_parse_u64(sisy_slice_str("+1"), &v));
	assert_false(cli_parse_u64(sisy_slice_str("1 "), &v));
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(cli_cmd_name(CLI_CMD_USER_ADD), "USER ADD");
	assert_true(cli_cmd_is_write(CLI_CMD_PUT));
	assert_true(cli_cmd_is_write(CLI_CMD_DEL));
	assert_false(cli_cmd_is_write(CLI_CMD_GET));
	assert_false(cli_cmd_is_write(CLI_CMD_USER_ADD));
	for (int k = 0; k < CLI_CMD__COUNT; k++)
		assert_true(strlen(cli_cmd_usage((cli_cmd_kind)k)) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_get, teardown),
	    cmocka_unit_test_teardown(test_put, teardown),
	    cmocka_unit_test_teardown(test_del_exists_mget, teardown),
	    cmocka_unit_test_teardown(test_scan, teardown),
	    cmocka_unit_test_teardown(test_bare_commands, teardown),
	    cmocka_unit_test_teardown(test_users, teardown),
	    cmocka_unit_test_teardown(test_cluster_only_when_offered, teardown),
	    cmocka_unit_test_teardown(test_unknown, teardown),
	    cmocka_unit_test_teardown(test_u64, teardown),
	    cmocka_unit_test_teardown(test_names, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
