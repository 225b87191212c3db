/* Tests the shell's runner, executor and backslash commands (sisy-cli/
 * shell.c, exec.c, meta.c) end to end against the in-memory fake backend:
 * output of every command, exit statuses, ON_ERROR_STOP, file:line errors,
 * \i, batches, :NAME substitution, paging, lost connections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_backend.h"
#include "shell.h"

typedef struct T {
	fake_backend fake;
	cli_shell sh;
	char *out, *err;
	size_t outlen, errlen;
	FILE *outf, *errf;
	FILE *in;
} T;

static T *t;

static int setup(void **state)
{
	(void)state;
	t = calloc(1, sizeof *t);
	fake_init(&t->fake);
	t->outf = open_memstream(&t->out, &t->outlen);
	t->errf = open_memstream(&t->err, &t->errlen);
	t->in = fmemopen((void *)"stdin-bytes", 11, "r");
	cli_shell_init(&t->sh, &t->fake.base, t->in, t->outf, t->errf);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	cli_shell_free(&t->sh);
	fclose(t->outf);
	fclose(t->errf);
	fclose(t->in);
	free(t->out);
	free(t->err);
	fake_free(&t->fake);
	free(t);
	return 0;
}

/* Forgets what was printed so far (new streams: a memstream cannot be
 * truncated). */
static void clear(void)
{
	fclose(t->outf);
	fclose(t->errf);
	free(t->out);
	free(t->err);
	t->out = t->err = NULL;
	t->outf = open_memstream(&t->out, &t->outlen);
	t->errf = open_memstream(&t->err, &t->errlen);
	t->sh.stdout_fp = t->outf;
	t->sh.err = t->errf;
	t->sh.out.fp = t->sh.out_file ? t->sh.out_file : t->outf;
}

static const char *out(void)
{
	fflush(t->outf);
	return t->outlen ? t->out : "";
}

static const char *err(void)
{
	fflush(t->errf);
	return t->errlen ? t->err : "";
}

/* Runs a script as if it were a file called "s.sisy". */
static void script(const char *text)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	assert_non_null(f);
	cli_shell_run_stream(&t->sh, f, "s.sisy");
	fclose(f);
}

static void cmd(const char *text)
{
	cli_shell_run_command(&t->sh, text);
}

static void out_is(const char *want)
{
	if (strcmp(out(), want) != 0)
		fail_msg("stdout [%s], want [%s]; stderr [%s]", out(), want,
			 err());
}

static void err_has(const char *want)
{
	if (strstr(err(), want) == NULL)
		fail_msg("stderr [%s] lacks [%s]", err(), want);
}

static void value_is(const char *key, const char *want)
{
	const fake_entry *e = fake_find(&t->fake, key, strlen(key));
	if (want == NULL) {
		assert_null(e);
		return;
	}
	assert_non_null(e);
	assert_int_equal(e->value.len, strlen(want));
	assert_memory_equal(e->value.data, want, e->value.len);
}

static void set_format(cli_format f, bool tuples)
{
	t->sh.out.fmt = f;
	t->sh.out.tuples_only = tuples;
}

/* ------------------------------------------------ the acceptance core */

static void test_put_get_at(void **state)
{
	(void)state;
	set_format(CLI_FMT_UNALIGNED, true);
	cmd("PUT bar:k1 'hello world'");
	out_is("PUT 1 VERSION 1\n");
	clear();
	cmd("GET bar:k1");
	out_is("hello world\n");
	clear();
	cmd("PUT bar:empty ''");
	clear();
	/* Empty value: one empty line. Missing key: nothing, no error. */
	cmd("GET bar:empty");
	out_is("\n");
	clear();
	cmd("GET bar:missing");
	out_is("");
	assert_string_equal(err(), "");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_OK);
}

static void test_missing_never_stops(void **state)
{
	(void)state;
	cli_shell_set(&t->sh, "ON_ERROR_STOP", sisy_slice_str("1"));
	script("GET nope\nMGET nope nada\nEXISTS nope\nDEL nope\n"
	       "PUT after 1\n");
	value_is("after", "1");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_OK);
	err_has("");
	assert_string_equal(err(), "");
}

static void test_on_error_stop(void **state)
{
	(void)state;
	cli_shell_set(&t->sh, "ON_ERROR_STOP", sisy_slice_str("on"));
	script("PUT bar:a 1\nNOSUCHCOMMAND x\nPUT bar:b 2\n");
	value_is("bar:a", "1");
	value_is("bar:b", NULL);
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_STOPPED);
	/* The message names the file and line. */
	err_has("s.sisy:2: error: unknown command \"NOSUCHCOMMAND\"");
	assert_true(t->sh.quit);
}

static void test_without_stop_goes_on(void **state)
{
	(void)state;
	script("PUT a 1\nNOSUCHCOMMAND\nPUT b 2\nGET\n");
	value_is("a", "1");
	value_is("b", "2");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_FAILED);
	err_has("s.sisy:2: error: unknown command");
	err_has("s.sisy:4: error: GET: expected a key");
	/* Also the rest of a line stops at an error with ON_ERROR_STOP. */
	clear();
	cli_shell_set(&t->sh, "ON_ERROR_STOP", sisy_slice_str("true"));
	script("PUT c 1; BAD; PUT d 1\n");
	value_is("c", "1");
	value_is("d", NULL);
}

static void test_error_locations(void **state)
{
	(void)state;
	cmd("GET");
	err_has("sisy-cli: error: GET: expected a key");
	clear();
	t->sh.interactive = true;
	cli_shell_line(&t->sh, "GET", 3);
	assert_string_equal(err(), "error: GET: expected a key; usage: GET "
				   "key [WITH VERSION]\n");
}

/* ----------------------------------------------------- every command */

static void test_formats_of_get(void **state)
{
	(void)state;
	fake_put(&t->fake, "k", 1, "v,1", 3);
	cmd("GET k WITH VERSION");
	out_is(" value | version \n-------+---------\n v,1   |       1\n"
	       "(1 row)\n\n");
	clear();
	set_format(CLI_FMT_CSV, false);
	cmd("GET k WITH VERSION");
	out_is("value,version\n\"v,1\",1\n");
	clear();
	set_format(CLI_FMT_JSON, false);
	cmd("GET k WITH VERSION");
	out_is("[{\"value\":\"v,1\",\"version\":1}]\n");
	clear();
	cmd("GET missing");
	out_is("[]\n");
}

static void test_binary_values(void **state)
{
	(void)state;
	cmd("PUT x'00ff' x'0a1b00'");
	value_is("\0", NULL);
	const fake_entry *e = fake_find(&t->fake, "\0\xff", 2);
	assert_non_null(e);
	assert_memory_equal(e->value.data, "\n\x1b\0", 3);
	clear();
	/* Escaped in aligned mode, raw with -At. */
	set_format(CLI_FMT_ALIGNED, true);
	cmd("GET x'00ff'");
	out_is(" \\n\\x1b\\x00\n\n");
	clear();
	set_format(CLI_FMT_UNALIGNED, true);
	cmd("GET x'00ff'");
	fflush(t->outf);
	assert_int_equal(t->outlen, 4);
	assert_memory_equal(t->out, "\n\x1b\0\n", 4);
}

static void test_conditions(void **state)
{
	(void)state;
	set_format(CLI_FMT_UNALIGNED, true);
	cmd("PUT k v1 IF ABSENT");
	out_is("PUT 1 VERSION 1\n");
	cmd("PUT k v2 IF ABSENT");
	err_has("sisy-cli: error: PUT: the key exists (IF ABSENT); nothing "
		"was written: key exists");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_FAILED);
	value_is("k", "v1");
	clear();
	cmd("PUT k v3 IF VERSION 1");
	out_is("PUT 1 VERSION 2\n");
	cmd("PUT k v4 IF VERSION 1");
	err_has("PUT: the key's version is not 1; nothing was written");
	value_is("k", "v3");
	cmd("DEL k IF VERSION 1");
	value_is("k", "v3");
	clear();
	cmd("DEL k IF VERSION 2");
	out_is("DEL 1\n");
	value_is("k", NULL);
	clear();
	cmd("DEL k");
	out_is("DEL 0\n");
}

static void test_exists_mget(void **state)
{
	(void)state;
	fake_put(&t->fake, "a", 1, "1", 1);
	fake_put(&t->fake, "c", 1, "", 0);
	set_format(CLI_FMT_UNALIGNED, true);
	cmd("EXISTS a; EXISTS b");
	out_is("true\nfalse\n");
	clear();
	/* A row per key that exists, in the order asked. */
	cmd("MGET c b a");
	out_is("c|\na|1\n");
	clear();
	set_format(CLI_FMT_JSON, false);
	cmd("EXISTS a");
	out_is("[{\"exists\":true}]\n");
}

static void test_scan_pages_and_limit(void **state)
{
	(void)state;
	for (int i = 0; i < 25; i++) {
		char k[16];
		snprintf(k, sizeof k, "p:%02d", i);
		fake_put(&t->fake, k, strlen(k), "v", 1);
	}
	fake_put(&t->fake, "q", 1, "other", 5);
	t->fake.page_max = 4;
	set_format(CLI_FMT_UNALIGNED, true);
	cmd("SCAN PREFIX p: LIMIT 10");
	/* LIMIT bounds the total across pages. */
	const char *o = out();
	size_t lines = 0;
	for (const char *p = o; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 10);
	assert_true(strncmp(o, "p:00|v\np:01|v\n", 14) == 0);
	assert_non_null(strstr(o, "p:09|v\n"));
	assert_null(strstr(o, "p:10"));
	assert_int_equal(t->fake.scan_pages, 3);
	clear();
	/* Without LIMIT every key, paged transparently. */
	t->fake.scan_pages = 0;
	cmd("SCAN PREFIX p:");
	lines = 0;
	for (const char *p = out(); *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 25);
	assert_int_equal(t->fake.scan_pages, 7);
	clear();
	cmd("SCAN FROM p:23 TO q");
	out_is("p:23|v\np:24|v\n");
	clear();
	cmd("SCAN FROM p:24");
	out_is("p:24|v\nq|other\n");
	clear();
	t->fake.scan_pages = 0;
	cmd("SCAN LIMIT 0");
	out_is("");
	assert_int_equal(t->fake.scan_pages, 0);
	clear();
	set_format(CLI_FMT_ALIGNED, false);
	cmd("SCAN PREFIX q");
	out_is(" key | value \n-----+-------\n q   | other\n(1 row)\n\n");
}

static void test_scan_error_midway(void **state)
{
	(void)state;
	for (int i = 0; i < 10; i++) {
		char k[8];
		snprintf(k, sizeof k, "k%d", i);
		fake_put(&t->fake, k, strlen(k), "v", 1);
	}
	t->fake.page_max = 3;
	t->fake.fail_next = SISY_E_BUSY;
	t->fake.fail_countdown = 1;
	set_format(CLI_FMT_JSON, false);
	cmd("SCAN");
	/* What came is printed as a well-formed document, then the error. */
	out_is("[{\"key\":\"k0\",\"value\":\"v\"},\n"
	       "{\"key\":\"k1\",\"value\":\"v\"},\n"
	       "{\"key\":\"k2\",\"value\":\"v\"}]\n");
	err_has("injected SISY_E_BUSY");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_FAILED);
}

static void test_batches(void **state)
{
	(void)state;
	set_format(CLI_FMT_UNALIGNED, true);
	script("BEGIN\nPUT a 1\nDEL gone\nPUT b 2\nCOMMIT\n");
	/* The delete of a missing key changes nothing. */
	out_is("BEGIN\nQUEUED\nQUEUED\nQUEUED\nCOMMIT 3 VERSION 2\n");
	value_is("a", "1");
	value_is("b", "2");
	assert_int_equal(t->fake.batches, 1);
	assert_int_equal(t->fake.writes, 3);
	clear();
	/* Nothing reaches the server before COMMIT; ROLLBACK drops all. */
	script("BEGIN\nPUT c 3\nROLLBACK\n");
	value_is("c", NULL);
	assert_int_equal(t->fake.batches, 1);
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_OK);
	/* Reads inside a batch are refused. */
	clear();
	script("BEGIN\nGET a\nCOMMIT\n");
	err_has("s.sisy:2: error: GET inside a batch");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_FAILED);
	/* All or nothing: a failing condition writes nothing. */
	clear();
	script("BEGIN\nPUT x 1\nPUT a 9 IF ABSENT\nCOMMIT\n");
	err_has("the condition of write 2 (PUT a) did not hold; nothing "
		"was written");
	value_is("x", NULL);
	value_is("a", "1");
	assert_false(t->sh.batch.open);
	/* Misuse. */
	clear();
	script("COMMIT\nBEGIN\nBEGIN\nROLLBACK\nROLLBACK\n");
	err_has("s.sisy:1: error: COMMIT without BEGIN");
	err_has("s.sisy:3: error: a batch is already open");
	err_has("s.sisy:5: warning: no batch is open");
}

static void test_batch_left_open(void **state)
{
	(void)state;
	cmd("BEGIN");
	cmd("PUT a 1");
	cli_shell_finish(&t->sh);
	err_has("the input ended inside a batch: 1 queued write discarded");
	value_is("a", NULL);
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_FAILED);
}

static void test_ping_info_whoami_users(void **state)
{
	(void)state;
	set_format(CLI_FMT_UNALIGNED, true);
	cmd("PING");
	out_is("PONG\n");
	clear();
	cmd("WHOAMI");
	out_is("admin|admin|1|standalone\n");
	clear();
	cmd("INFO");
	out_is("server.version|fake-1\nengine.keys|0\n");
	clear();
	cmd("INFO engine");
	out_is("engine.keys|0\n");
	clear();
	cmd("INFO ENGINE; INFO eng; INFO server");
	out_is("engine.keys|0\nserver.version|fake-1\n");
	clear();
	cmd("USER ADD bob ROLE readwrite PASSWORD 'p w'");
	out_is("USER ADD\n");
	assert_string_equal(t->fake.users[0].password, "p w");
	clear();
	cmd("USER ROLE bob readonly; USER LIST");
	out_is("USER ROLE\nbob|readonly\n");
	clear();
	cmd("USER PASSWORD bob newpw; USER DEL bob; USER LIST");
	out_is("USER PASSWORD\nUSER DEL\n");
	assert_int_equal(t->fake.nusers, 0);
	clear();
	cmd("USER DEL bob");
	err_has("no user bob");
	/* No password and no terminal to ask on: a clear error. */
	clear();
	cmd("USER ADD carol ROLE admin");
	err_has("give the password in the command");
	assert_int_equal(t->fake.nusers, 0);
	/* User names cannot hold NUL. */
	clear();
	cmd("USER DEL x'6100'");
	err_has("without NUL");
}

static sisy_err fake_prompt(void *ctx, const char *prompt, char *buf,
			    size_t cap)
{
	int *calls = ctx;
	(*calls)++;
	snprintf(buf, cap, "typed");
	return strstr(prompt, "carol") || strstr(prompt, "again") ||
		       strstr(prompt, "admin")
		   ? SISY_OK
		   : SISY_E_INVAL;
}

static void test_password_prompt(void **state)
{
	(void)state;
	int calls = 0;
	t->sh.prompt_password = fake_prompt;
	t->sh.prompt_ctx = &calls;
	cmd("USER ADD carol ROLE admin");
	assert_int_equal(calls, 2);
	assert_string_equal(t->fake.users[0].password, "typed");
	/* USER PASSWORD alone: the session's own user. */
	cmd("USER ADD admin ROLE admin PASSWORD old; USER PASSWORD");
	assert_int_equal(calls, 4);
	assert_string_equal(t->fake.users[1].password, "typed");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_OK);
}

/* ---------------------------------------------------- values, files */

static void test_values_from_files(void **state)
{
	(void)state;
	char path[] = "/tmp/cli_test_shell_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "file\0data", 9), 9);
	close(fd);
	char line[128];
	snprintf(line, sizeof line, "PUT k @%s", path);
	cmd(line);
	const fake_entry *e = fake_find(&t->fake, "k", 1);
	assert_non_null(e);
	assert_int_equal(e->value.len, 9);
	assert_memory_equal(e->value.data, "file\0data", 9);
	unlink(path);
	cmd(line);
	err_has("cannot open");
	/* @- reads standard input, unless the script itself comes from it. */
	cmd("PUT s @-");
	value_is("s", "stdin-bytes");
	clear();
	t->sh.stdin_is_script = true;
	cmd("PUT s2 @-");
	err_has("@- cannot read standard input");
	value_is("s2", NULL);
}

static void test_variables(void **state)
{
	(void)state;
	set_format(CLI_FMT_UNALIGNED, true);
	script("\\set k user:1\n\\set v 'a b' c\nPUT :k :v\nGET :'k'\n"
	       "GET user::k\n");
	value_is("user:1", "a bc");
	/* user::k is not a whole-token reference: a key as typed. */
	out_is("PUT 1 VERSION 1\na bc\n");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_OK);
	clear();
	script("GET :nope\n\\unset k\nGET :k\n");
	err_has("s.sisy:1: error: variable :nope is not set");
	err_has("s.sisy:3: error: variable :k is not set");
	clear();
	script("\\set\n");
	out_is("v = 'a bc'\n");
	/* Variables with a meaning are checked. */
	clear();
	script("\\set ON_ERROR_STOP maybe\n\\set CONSISTENCY eventual\n"
	       "\\set 9x 1\n");
	err_has("s.sisy:1: error: ON_ERROR_STOP must be on or off");
	err_has("s.sisy:2: error: CONSISTENCY must be linearizable or stale");
	err_has("s.sisy:3: error: \\set: invalid variable name");
	assert_false(shell_stale(&t->sh));
	script("\\set CONSISTENCY stale\n");
	assert_true(shell_stale(&t->sh));
}

static void test_include(void **state)
{
	(void)state;
	char inc[] = "/tmp/cli_test_inc_XXXXXX";
	int fd = mkstemp(inc);
	const char body[] = "PUT i1 1\nBAD\nPUT i2 2\n";
	assert_int_equal(write(fd, body, sizeof body - 1),
			 (ssize_t)sizeof body - 1);
	close(fd);
	char s[256];
	snprintf(s, sizeof s, "PUT before 1\n\\i %s\nPUT after 1\n", inc);
	script(s);
	/* Errors inside the included file name it and its line. */
	char want[128];
	snprintf(want, sizeof want, "%s:2: error: unknown command", inc);
	err_has(want);
	value_is("i2", "2");
	value_is("after", "1");
	/* With ON_ERROR_STOP the whole run stops, also the includer. */
	clear();
	cli_shell_set(&t->sh, "ON_ERROR_STOP", sisy_slice_str("1"));
	snprintf(s, sizeof s, "\\i %s\nPUT after2 1\n", inc);
	fake_free(&t->fake);
	fake_init(&t->fake);
	script(s);
	value_is("i1", "1");
	value_is("i2", NULL);
	value_is("after2", NULL);
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_STOPPED);
	unlink(inc);
}

static void test_include_self_is_bounded(void **state)
{
	(void)state;
	char inc[] = "/tmp/cli_test_self_XXXXXX";
	int fd = mkstemp(inc);
	char body[128];
	snprintf(body, sizeof body, "\\i %s\n", inc);
	assert_int_equal(write(fd, body, strlen(body)), (ssize_t)strlen(body));
	close(fd);
	script(body);
	err_has("nested more than 16 deep");
	assert_int_equal(t->sh.depth, 0);
	unlink(inc);
}

static void test_meta_settings(void **state)
{
	(void)state;
	script("\\format csv\n\\t on\nGET k\nPUT k 'a,b'\nGET k\n\\a\n\\t\n"
	       "\\echo hello 'big world' x'41'\n");
	out_is("Output format is csv.\nTuples only is on.\n"
	       "PUT 1 VERSION 1\n\"a,b\"\n"
	       "Output format is aligned.\nTuples only is off.\n"
	       "hello big world A\n");
	clear();
	script("\\format yaml\n\\timing maybe\n\\bogus\n\\q\nPUT never 1\n");
	err_has("s.sisy:1: error: \\format: expected aligned");
	err_has("s.sisy:2: error: expected on or off");
	err_has("s.sisy:3: error: invalid command \\bogus");
	value_is("never", NULL);
	assert_true(t->sh.quit);
}

static void test_timing(void **state)
{
	(void)state;
	script("\\timing on\nPING\n");
	const char *o = out();
	assert_non_null(strstr(o, "Timing is on.\nPONG\nTime: "));
	assert_non_null(strstr(o, " ms\n"));
}

static void test_output_file(void **state)
{
	(void)state;
	char path[] = "/tmp/cli_test_o_XXXXXX";
	close(mkstemp(path));
	char s[128];
	snprintf(s, sizeof s,
		 "\\t\n\\a\n\\o %s\nPING\n\\echo to-stdout\n"
		 "\\o\nPING\n",
		 path);
	script(s);
	/* Results go to the file; \echo and settings stay on stdout. */
	out_is("Tuples only is on.\nOutput format is unaligned.\nto-stdout\n"
	       "PONG\n");
	FILE *f = fopen(path, "r");
	char buf[64] = "";
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_string_equal(buf, "PONG\n");
	unlink(path);
}

static void test_watch(void **state)
{
	(void)state;
	fake_put(&t->fake, "w", 1, "1", 1);
	set_format(CLI_FMT_UNALIGNED, true);
	script("\\watch 0.01 2\n");
	err_has("no command to repeat yet");
	clear();
	script("GET w\n\\watch 0.01 3\n");
	const char *o = out();
	size_t n = 0;
	for (const char *p = o; (p = strstr(p, "(every 0.01s)\n\n1\n")); p++)
		n++;
	assert_int_equal(n, 3);
	assert_int_equal(t->fake.calls, 4);
	/* An error ends the watch. */
	clear();
	t->fake.calls = 0;
	t->fake.fail_next = SISY_E_BUSY;
	t->fake.fail_countdown = 1;
	script("\\watch 0.01 5\n");
	assert_int_equal(t->fake.calls, 2);
	script("\\watch 0 1\n\\watch 1 0\n");
	err_has("the interval must be");
	err_has("the count must be");
}

static void test_help(void **state)
{
	(void)state;
	script("\\?\n");
	assert_non_null(strstr(out(), "\\watch [SEC [COUNT]]"));
	clear();
	script("\\h\n");
	assert_non_null(strstr(out(), "PUT key value [IF VERSION n | IF "
				      "ABSENT]"));
	/* CLUSTER commands are listed only when the server has them. */
	assert_null(strstr(out(), "CLUSTER"));
	clear();
	script("\\h user add\n");
	assert_non_null(strstr(out(), "USER ADD name ROLE"));
	assert_null(strstr(out(), "USER DEL"));
	clear();
	script("\\h user\n");
	assert_non_null(strstr(out(), "USER DEL name"));
	assert_non_null(strstr(out(), "USER LIST"));
	clear();
	script("\\h nosuch\n");
	err_has("\\h: no command \"nosuch\"");
}

static void test_cluster_commands(void **state)
{
	(void)state;
	/* Not offered: not a command at all. */
	cmd("CLUSTER NODES");
	err_has("unknown command \"CLUSTER\"");
	clear();
	t->fake.cluster = true;
	t->sh.popts.cluster = true;
	set_format(CLI_FMT_CSV, false);
	cmd("CLUSTER NODES");
	/* The failover check reads columns id and role from this. */
	out_is("id,address,role,term,commit_index,applied_index,lag\n"
	       "1,127.0.0.1:7421,follower,4,90,89,0\n"
	       "2,127.0.0.1:7422,leader,4,90,88,1\n"
	       "3,127.0.0.1:7423,follower,4,90,87,2\n");
	clear();
	set_format(CLI_FMT_UNALIGNED, true);
	cmd("CLUSTER ADD NODE 10.0.0.9:7420");
	out_is("join-token-for-10.0.0.9:7420\n");
	clear();
	cmd("CLUSTER INFO; CLUSTER FAILOVER TO 3");
	out_is("cluster.nodes|3\nCLUSTER FAILOVER\n");
	assert_int_equal(t->fake.failover_to, 3);
	clear();
	cmd("CLUSTER REMOVE NODE 9");
	err_has("no node 9");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_FAILED);
	clear();
	cmd("\\h cluster");
	assert_non_null(strstr(out(), "CLUSTER FAILOVER [TO id]"));
}

/* ------------------------------------------------ connections, status */

static void test_lost_connection_reconnects(void **state)
{
	(void)state;
	set_format(CLI_FMT_UNALIGNED, true);
	t->fake.fail_next = SISY_E_CONN;
	script("PING\nPUT a 1\n");
	err_has("s.sisy:1: error: the connection to the server was lost");
	/* The next command reconnected first and ran. */
	assert_int_equal(t->fake.reconnects, 1);
	value_is("a", "1");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_FAILED);
}

static void test_reconnect_fails_in_script(void **state)
{
	(void)state;
	t->fake.fail_next = SISY_E_CONN;
	t->fake.reconnect_fails = true;
	script("PING\nPUT a 1\nPUT b 1\n");
	err_has("s.sisy:2: error: cannot reconnect: fake: connection refused");
	/* Nothing more can run in a script: exit status 2, no retries. */
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_CONNECT);
	assert_int_equal(t->fake.reconnects, 1);
	assert_true(t->sh.quit);
}

static void test_reconnect_fails_interactive(void **state)
{
	(void)state;
	t->sh.interactive = true;
	t->fake.fail_next = SISY_E_CONN;
	t->fake.reconnect_fails = true;
	cli_shell_line(&t->sh, "PING", 4);
	char prompt[128];
	cli_shell_prompt(&t->sh, prompt, sizeof prompt);
	assert_string_equal(prompt, "admin@127.0.0.1:7420!> ");
	cli_shell_line(&t->sh, "PING", 4);
	assert_false(t->sh.quit);
	t->fake.reconnect_fails = false;
	cli_shell_line(&t->sh, "PING", 4);
	assert_int_equal(t->fake.reconnects, 2);
	cli_shell_prompt(&t->sh, prompt, sizeof prompt);
	assert_string_equal(prompt, "admin@127.0.0.1:7420=> ");
	cli_shell_line(&t->sh, "BEGIN", 5);
	cli_shell_prompt(&t->sh, prompt, sizeof prompt);
	assert_string_equal(prompt, "admin@127.0.0.1:7420*> ");
}

static void test_unknown_outcome_status(void **state)
{
	(void)state;
	cli_shell_set(&t->sh, "ON_ERROR_STOP", sisy_slice_str("1"));
	t->fake.fail_next = SISY_E_UNKNOWN_OUTCOME;
	script("PUT a 1\nPUT b 1\n");
	/* 4 outranks the 3 of ON_ERROR_STOP. */
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_UNKNOWN);
	value_is("b", NULL);
}

static void test_status_order(void **state)
{
	(void)state;
	cli_shell_raise(&t->sh, CLI_EXIT_FAILED);
	assert_int_equal(cli_shell_status(&t->sh), 1);
	cli_shell_raise(&t->sh, CLI_EXIT_STOPPED);
	assert_int_equal(cli_shell_status(&t->sh), 3);
	cli_shell_raise(&t->sh, CLI_EXIT_FAILED);
	assert_int_equal(cli_shell_status(&t->sh), 3);
	cli_shell_raise(&t->sh, CLI_EXIT_CONNECT);
	assert_int_equal(cli_shell_status(&t->sh), 2);
	cli_shell_raise(&t->sh, CLI_EXIT_UNKNOWN);
	assert_int_equal(cli_shell_status(&t->sh), 4);
	cli_shell_raise(&t->sh, CLI_EXIT_CONNECT);
	assert_int_equal(cli_shell_status(&t->sh), 4);
}

static void test_interactive_stop_only_ends_include(void **state)
{
	(void)state;
	t->sh.interactive = true;
	cli_shell_set(&t->sh, "ON_ERROR_STOP", sisy_slice_str("1"));
	cli_shell_line(&t->sh, "BAD", 3);
	/* At the prompt ON_ERROR_STOP has nothing to stop. */
	assert_false(t->sh.stop_script);
	assert_false(t->sh.quit);
	char inc[] = "/tmp/cli_test_iinc_XXXXXX";
	int fd = mkstemp(inc);
	assert_int_equal(write(fd, "BAD\nPUT z 1\n", 12), 12);
	close(fd);
	char line[64];
	snprintf(line, sizeof line, "\\i %s", inc);
	cli_shell_line(&t->sh, line, strlen(line));
	value_is("z", NULL);
	assert_true(t->sh.stop_script);
	assert_false(t->sh.quit);
	unlink(inc);
}

static void test_long_line_and_crlf(void **state)
{
	(void)state;
	/* CRLF scripts work; a NUL inside a line is data. */
	script("PUT a 1\r\nPUT b 2\r\n");
	value_is("a", "1");
	value_is("b", "2");
	assert_int_equal(cli_shell_status(&t->sh), CLI_EXIT_OK);
	/* A missing final newline still runs the last line. */
	script("PUT c 3");
	value_is("c", "3");
}

static void test_not_connected(void **state)
{
	(void)state;
	cli_shell sh;
	cli_shell_init(&sh, NULL, t->in, t->outf, t->errf);
	cli_shell_run_command(&sh, "PING");
	err_has("not connected");
	cli_shell_run_command(&sh, "\\echo still works");
	assert_non_null(strstr(out(), "still works"));
	cli_shell_free(&sh);
}

int main(void)
{
#define T_(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T_(test_put_get_at),
	    T_(test_missing_never_stops),
	    T_(test_on_error_stop),
	    T_(test_without_stop_goes_on),
	    T_(test_error_locations),
	    T_(test_formats_of_get),
	    T_(test_binary_values),
	    T_(test_conditions),
	    T_(test_exists_mget),
	    T_(test_scan_pages_and_limit),
	    T_(test_scan_error_midway),
	    T_(test_batches),
	    T_(test_batch_left_open),
	    T_(test_ping_info_whoami_users),
	    T_(test_password_prompt),
	    T_(test_values_from_files),
	    T_(test_variables),
	    T_(test_include),
	    T_(test_include_self_is_bounded),
	    T_(test_meta_settings),
	    T_(test_timing),
	    T_(test_output_file),
	    T_(test_watch),
	    T_(test_help),
	    T_(test_cluster_commands),
	    T_(test_lost_connection_reconnects),
	    T_(test_reconnect_fails_in_script),
	    T_(test_reconnect_fails_interactive),
	    T_(test_unknown_outcome_status),
	    T_(test_status_order),
	    T_(test_interactive_stop_only_ends_include),
	    T_(test_long_line_and_crlf),
	    T_(test_not_connected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
