/* Tests sisy-cli/passfile.c: matching, wildcards, escapes, the mode check,
 * and that the client library's cached-key lines are skipped. */
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

#include "passfile.h"

static char path[64];

static void write_file(const char *text, mode_t mode)
{
	snprintf(path, sizeof path, "/tmp/cli_passfile_XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static sisy_err lookup(const char *host, unsigned port, const char *user,
		       char *pw, bool *found)
{
	cli_host h = {.port = (uint16_t)port};
	snprintf(h.name, sizeof h.name, "%s", host);
	return cli_passfile_lookup(path, &h, 1, user, pw, 64, found);
}

static const char file[] =
    "# comment\n"
    "#sisy-key v1 BLAKE2b:abc admin salt 2 67108864 check key\n"
    "\n"
    "db1:7420:admin:first\n"
    "db1:7420:admin:second-never-used\n"
    "db2:*:admin:any\\:port\r\n"
    "*:7421:*:wild\n"
    "esc\\:aped:7420:bo\\\\b:x\n"
    "short:line\n"
    "db3:7420:admin:pass:with:colons\n";

static void test_matching(void **state)
{
	(void)state;
	char pw[64];
	bool found;
	write_file(file, 0600);
	assert_int_equal(lookup("db1", 7420, "admin", pw, &found), SISY_OK);
	assert_true(found);
	/* The first match wins. */
	assert_string_equal(pw, "first");
	/* Wildcards, an escaped colon, and a CRLF line end. */
	assert_int_equal(lookup("db2", 1, "admin", pw, &found), SISY_OK);
	assert_true(found);
	assert_string_equal(pw, "any:port");
	assert_int_equal(lookup("elsewhere", 7421, "carol", pw, &found),
			 SISY_OK);
	assert_true(found);
	assert_string_equal(pw, "wild");
	assert_int_equal(lookup("esc:aped", 7420, "bo\\b", pw, &found),
			 SISY_OK);
	assert_true(found);
	assert_string_equal(pw, "x");
	/* The password field runs to the end of the line. */
	assert_int_equal(lookup("db3", 7420, "admin", pw, &found), SISY_OK);
	assert_string_equal(pw, "pass:with:colons");
	/* No entry: not an error. */
	assert_int_equal(lookup("db1", 7420, "bob", pw, &found), SISY_OK);
	assert_false(found);
	assert_int_equal(lookup("db1", 9, "admin", pw, &found), SISY_OK);
	assert_false(found);
	/* The #sisy-key line is never read as an entry. */
	assert_int_equal(lookup("#sisy-key v1 BLAKE2b", 1, "admin", pw, &found),
			 SISY_OK);
	assert_false(found);
}

static void test_several_hosts(void **state)
{
	(void)state;
	write_file(file, 0600);
	cli_host h[2] = {{.name = "nohost", .port = 7420},
			 {.name = "db1", .port = 7420}};
	char pw[64];
	bool found;
	assert_int_equal(
	    cli_passfile_lookup(path, h, 2, "admin", pw, sizeof pw, &found),
	    SISY_OK);
	assert_true(found);
	assert_string_equal(pw, "first");
}

static void test_mode_refused(void **state)
{
	(void)state;
	const mode_t bad[] = {0640, 0604, 0660, 0644, 0666, 0610};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char pw[64] = "";
		bool found = true;
		write_file(file, bad[i]);
		assert_int_equal(lookup("db1", 7420, "admin", pw, &found),
				 SISY_E_PERM);
		assert_false(found);
		assert_string_equal(pw, "");
		assert_non_null(strstr(sisy_errmsg(), "chmod 0600"));
		assert_int_equal(cli_passfile_check(path), SISY_E_PERM);
		unlink(path);
	}
	/* 0400 is stricter than 0600 and fine. */
	write_file(file, 0400);
	char pw[64];
	bool found;
	assert_int_equal(lookup("db1", 7420, "admin", pw, &found), SISY_OK);
	assert_true(found);
	assert_int_equal(cli_passfile_check(path), SISY_OK);
}

static void test_missing_and_not_regular(void **state)
{
	(void)state;
	char pw[64];
	bool found = true;
	snprintf(path, sizeof path, "/tmp/cli_passfile_none_%d", (int)getpid());
	assert_int_equal(lookup("db1", 7420, "admin", pw, &found), SISY_OK);
	assert_false(found);
	assert_int_equal(cli_passfile_check(path), SISY_E_NOTFOUND);
	/* A directory, or a symbolic link, is refused. */
	snprintf(path, sizeof path, "/tmp/cli_passfile_dir_%d", (int)getpid());
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(lookup("db1", 7420, "admin", pw, &found), SISY_E_PERM);
	rmdir(path);
	write_file(file, 0600);
	char link[80];
	snprintf(link, sizeof link, "%s.lnk", path);
	assert_int_equal(symlink(path, link), 0);
	cli_host h = {.name = "db1", .port = 7420};
	assert_int_equal(
	    cli_passfile_lookup(link, &h, 1, "admin", pw, sizeof pw, &found),
	    SISY_E_PERM);
	unlink(link);
}

static void test_long_lines(void **state)
{
	(void)state;
	size_t n = CLI_PASSFILE_LINE_MAX + 10;
	char *text = malloc(n + 2);
	memset(text, 'a', n);
	text[n] = '\n';
	text[n + 1] = '\0';
	write_file(text, 0600);
	free(text);
	char pw[64];
	bool found;
	assert_int_equal(lookup("db1", 7420, "admin", pw, &found),
			 SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), ":1: line longer"));
	unlink(path);
	/* A password longer than the caller's buffer is an error, not a
	 * silently cut password. */
	write_file("h:1:u:0123456789\n", 0600);
	cli_host h = {.name = "h", .port = 1};
	assert_int_equal(cli_passfile_lookup(path, &h, 1, "u", pw, 8, &found),
			 SISY_E_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_matching, teardown),
	    cmocka_unit_test_teardown(test_several_hosts, teardown),
	    cmocka_unit_test_teardown(test_mode_refused, teardown),
	    cmocka_unit_test_teardown(test_missing_and_not_regular, teardown),
	    cmocka_unit_test_teardown(test_long_lines, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
