/* Tests sisy-cli/opts.c: flag > environment > default, psql-style option
 * syntax, host lists, and the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "opts.h"
#include "out.h"

/* A fake environment: NAME=VALUE strings, NULL-terminated. */
static const char *fake_env(void *ctx, const char *name)
{
	for (const char *const *e = ctx; *e; e++) {
		size_t n = strlen(name);
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	}
	return NULL;
}

static cli_opts o;

static int teardown(void **state)
{
	(void)state;
	cli_opts_free(&o);
	return 0;
}

#define ARGV(...)                             \
	(char *[])                            \
	{                                     \
		"sisy-cli", __VA_ARGS__, NULL \
	}
#define ARGC(...) ((int)(sizeof(ARGV(__VA_ARGS__)) / sizeof(char *)) - 1)
#define PARSE(env, ...)                                                \
	cli_opts_parse(ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), fake_env, \
		       (void *)(env), &o)

static const char *no_env[] = {NULL};
static const char *full_env[] = {"SISY_HOST=envhost:9000,other",
				 "SISY_PORT=8000", "SISY_USER=envuser",
				 "SISY_PASSWORD=envpw", NULL};

static void test_defaults(void **state)
{
	(void)state;
	char *argv[] = {"sisy-cli", NULL};
	assert_int_equal(cli_opts_parse(1, argv, fake_env, no_env, &o),
			 SISY_OK);
	assert_int_equal(o.nhosts, 1);
	assert_string_equal(o.hosts[0].name, "127.0.0.1");
	assert_int_equal(o.hosts[0].port, 7420);
	assert_string_equal(o.user, "admin");
	assert_null(o.password);
	assert_int_equal(o.format, -1);
	assert_int_equal(o.consistency, -1);
	assert_int_equal(o.nactions, 0);
	assert_false(o.tuples_only || o.quiet || o.no_rc || o.pipe);
}

static void test_env_beats_default(void **state)
{
	(void)state;
	char *argv[] = {"sisy-cli", NULL};
	assert_int_equal(cli_opts_parse(1, argv, fake_env, full_env, &o),
			 SISY_OK);
	assert_int_equal(o.nhosts, 2);
	assert_string_equal(o.hosts[0].name, "envhost");
	assert_int_equal(o.hosts[0].port, 9000);
	/* SISY_PORT is the port of hosts given without one. */
	assert_string_equal(o.hosts[1].name, "other");
	assert_int_equal(o.hosts[1].port, 8000);
	assert_string_equal(o.user, "envuser");
	assert_string_equal(o.password, "envpw");
}

static void test_flag_beats_env(void **state)
{
	(void)state;
	assert_int_equal(
	    PARSE(full_env, "-h", "flaghost", "-p", "7001", "-U", "flaguser"),
	    SISY_OK);
	assert_int_equal(o.nhosts, 1);
	assert_string_equal(o.hosts[0].name, "flaghost");
	assert_int_equal(o.hosts[0].port, 7001);
	assert_string_equal(o.user, "flaguser");
	/* No flag for the password: the environment still gives it. */
	assert_string_equal(o.password, "envpw");
	cli_opts_free(&o);
	/* -p alone applies to SISY_HOST's hosts without a port. */
	assert_int_equal(PARSE(full_env, "-p7002"), SISY_OK);
	assert_int_equal(o.hosts[0].port, 9000);
	assert_int_equal(o.hosts[1].port, 7002);
	cli_opts_free(&o);
	/* Long forms, both spellings. */
	assert_int_equal(
	    PARSE(full_env, "--host=a:1", "--port", "2", "--user", "u"),
	    SISY_OK);
	assert_string_equal(o.hosts[0].name, "a");
	assert_int_equal(o.hosts[0].port, 1);
	assert_string_equal(o.user, "u");
}

static void test_empty_env_is_unset(void **state)
{
	(void)state;
	static const char *env[] = {"SISY_HOST=", "SISY_USER=", NULL};
	char *argv[] = {"sisy-cli", NULL};
	assert_int_equal(cli_opts_parse(1, argv, fake_env, env, &o), SISY_OK);
	assert_string_equal(o.hosts[0].name, "127.0.0.1");
	assert_string_equal(o.user, "admin");
}

static void test_actions_in_order(void **state)
{
	(void)state;
	assert_int_equal(PARSE(no_env, "-c", "PUT a 1", "-f", "x.sisy",
			       "--command=GET a", "-f-", "-cPING"),
			 SISY_OK);
	assert_int_equal(o.nactions, 5);
	assert_int_equal(o.actions[0].kind, CLI_ACT_COMMAND);
	assert_string_equal(o.actions[0].arg, "PUT a 1");
	assert_int_equal(o.actions[1].kind, CLI_ACT_FILE);
	assert_string_equal(o.actions[1].arg, "x.sisy");
	assert_string_equal(o.actions[2].arg, "GET a");
	assert_int_equal(o.actions[3].kind, CLI_ACT_FILE);
	assert_string_equal(o.actions[3].arg, "-");
	assert_string_equal(o.actions[4].arg, "PING");
}

static void test_bundles_and_formats(void **state)
{
	(void)state;
	assert_int_equal(PARSE(no_env, "-At", "-qX", "-c", "GET k"), SISY_OK);
	assert_int_equal(o.format, CLI_FMT_UNALIGNED);
	assert_true(o.tuples_only && o.quiet && o.no_rc);
	cli_opts_free(&o);
	/* A bundle may end in an option that takes the next argument. */
	assert_int_equal(PARSE(no_env, "-Atc", "GET k"), SISY_OK);
	assert_int_equal(o.nactions, 1);
	assert_string_equal(o.actions[0].arg, "GET k");
	assert_true(o.tuples_only);
	cli_opts_free(&o);
	/* The last format flag wins. */
	assert_int_equal(PARSE(no_env, "--csv", "--json"), SISY_OK);
	assert_int_equal(o.format, CLI_FMT_JSON);
	cli_opts_free(&o);
	assert_int_equal(PARSE(no_env, "--json", "-A", "-o", "out.txt"),
			 SISY_OK);
	assert_int_equal(o.format, CLI_FMT_UNALIGNED);
	assert_string_equal(o.output, "out.txt");
}

static void test_vars_and_misc(void **state)
{
	(void)state;
	assert_int_equal(PARSE(no_env, "-v", "ON_ERROR_STOP=1", "--set=x=a=b",
			       "--variable", "E="),
			 SISY_OK);
	assert_int_equal(o.nsets, 3);
	assert_string_equal(o.sets[0], "ON_ERROR_STOP=1");
	assert_string_equal(o.sets[1], "x=a=b");
	assert_string_equal(o.sets[2], "E=");
	cli_opts_free(&o);
	assert_int_equal(PARSE(no_env, "--consistency=stale", "--pipe", "-w",
			       "--server-key", "KEY"),
			 SISY_OK);
	assert_int_equal(o.consistency, 1);
	assert_true(o.pipe && o.never_prompt && !o.prompt_password);
	assert_string_equal(o.server_key, "KEY");
	cli_opts_free(&o);
	assert_int_equal(PARSE(no_env, "-W", "-?", "-V"), SISY_OK);
	assert_true(o.prompt_password && o.help && o.version);
}

static void err_has(sisy_err rc, const char *want)
{
	assert_int_equal(rc, SISY_E_INVAL);
	if (strstr(sisy_errmsg(), want) == NULL)
		fail_msg("message \"%s\" lacks \"%s\"", sisy_errmsg(), want);
	/* A failed parse leaves nothing to free. */
	assert_null(o.actions);
}

static void test_errors(void **state)
{
	(void)state;
	err_has(PARSE(no_env, "-Z"), "unknown option -Z");
	err_has(PARSE(no_env, "--bogus=1"), "unknown option --bogus");
	err_has(PARSE(no_env, "-c"), "option -c needs a value");
	err_has(PARSE(no_env, "--file"), "option --file needs a value");
	err_has(PARSE(no_env, "--csv=1"), "--csv takes no value");
	err_has(PARSE(no_env, "GET", "k"), "unexpected argument \"GET\"");
	err_has(PARSE(no_env, "-p", "0"), "-p: the port must be 1-65535");
	err_has(PARSE(no_env, "-p", "65536"), "port");
	err_has(PARSE(no_env, "-h", "a:x"), "-h: host \"a:x\"");
	err_has(PARSE(no_env, "-h", "a,,b"), "empty");
	err_has(PARSE(no_env, "-v", "1x=2"), "expected NAME=VALUE");
	err_has(PARSE(no_env, "-v", "novalue"), "expected NAME=VALUE");
	err_has(PARSE(no_env, "--consistency=eventual"),
		"--consistency must be linearizable or stale");
	err_has(PARSE(no_env, "--pipe", "-c", "PING"), "--pipe");
	err_has(PARSE(no_env, "-U", ""), "user name");
	static const char *bad_port[] = {"SISY_PORT=http", NULL};
	char *argv[] = {"sisy-cli", NULL};
	err_has(cli_opts_parse(1, argv, fake_env, bad_port, &o),
		"SISY_PORT: the port must be");
	/* "--" ends the options. */
	err_has(PARSE(no_env, "--", "-c"), "unexpected argument \"-c\"");
}

static void test_hosts(void **state)
{
	(void)state;
	cli_host h[4];
	size_t n;
	assert_int_equal(
	    cli_hosts_parse("a,b:2,[::1]:3,[fe80::1]", 9, h, 4, &n), SISY_OK);
	assert_int_equal(n, 4);
	assert_string_equal(h[0].name, "a");
	assert_int_equal(h[0].port, 9);
	assert_int_equal(h[1].port, 2);
	assert_string_equal(h[2].name, "::1");
	assert_int_equal(h[2].port, 3);
	assert_string_equal(h[3].name, "fe80::1");
	assert_int_equal(h[3].port, 9);
	assert_int_equal(cli_hosts_parse("a,b,c,d,e", 9, h, 4, &n),
			 SISY_E_INVAL);
	assert_int_equal(cli_hosts_parse("::1", 9, h, 4, &n), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "[addr]:port"));
	assert_int_equal(cli_hosts_parse("[::1", 9, h, 4, &n), SISY_E_INVAL);
	assert_int_equal(cli_hosts_parse("[::1]x", 9, h, 4, &n), SISY_E_INVAL);
	assert_int_equal(cli_hosts_parse("a b", 9, h, 4, &n), SISY_E_INVAL);
	assert_int_equal(cli_hosts_parse("a:", 9, h, 4, &n), SISY_E_INVAL);
	uint16_t p;
	assert_true(cli_port_parse("65535", &p));
	assert_int_equal(p, 65535);
	assert_false(cli_port_parse("", &p));
	assert_false(cli_port_parse("123456", &p));
	assert_false(cli_port_parse("-1", &p));
}

static void test_usage_mentions_everything(void **state)
{
	(void)state;
	const char *u = cli_opts_usage();
	const char *must[] = {
	    "--host",	  "--port",	   "--user",	    "--no-password",
	    "--password", "--server-key",  "--consistency", "--command",
	    "--file",	  "--set",	   "--no-sisyrc",   "--pipe",
	    "--no-align", "--tuples-only", "--csv",	    "--json",
	    "--output",	  "--quiet",	   "--help",	    "--version",
	    "SISY_HOST",  "SISY_PORT",	   "SISY_USER"};
	for (size_t i = 0; i < sizeof must / sizeof *must; i++)
		if (strstr(u, must[i]) == NULL)
			fail_msg("--help does not mention %s", must[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_defaults, teardown),
	    cmocka_unit_test_teardown(test_env_beats_default, teardown),
	    cmocka_unit_test_teardown(test_flag_beats_env, teardown),
	    cmocka_unit_test_teardown(test_empty_env_is_unset, teardown),
	    cmocka_unit_test_teardown(test_actions_in_order, teardown),
	    cmocka_unit_test_teardown(test_bundles_and_formats, teardown),
	    cmocka_unit_test_teardown(test_vars_and_misc, teardown),
	    cmocka_unit_test_teardown(test_errors, teardown),
	    cmocka_unit_test_teardown(test_hosts, teardown),
	    cmocka_unit_test(test_usage_mentions_everything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
