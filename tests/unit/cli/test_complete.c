/* Tests sisy-cli/complete.c: which words complete where, and in what case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "complete.h"

static cli_complete_ctx ctx_of(const char *before)
{
	return cli_complete_context(before, strlen(before));
}

/* All completions of text in ctx, joined by spaces. */
static const char *all(cli_complete_ctx ctx, const char *text)
{
	static char joined[512];
	char w[64];
	size_t iter = 0, len = 0;
	joined[0] = '\0';
	while (cli_complete_next(ctx, text, &iter, w, sizeof w)) {
		len += (size_t)snprintf(joined + len, sizeof joined - len,
					"%s%s", len ? " " : "", w);
	}
	return joined;
}

static void test_context(void **state)
{
	(void)state;
	assert_int_equal(ctx_of(""), CLI_COMPLETE_COMMAND);
	assert_int_equal(ctx_of("   "), CLI_COMPLETE_COMMAND);
	assert_int_equal(ctx_of("GET k; "), CLI_COMPLETE_COMMAND);
	assert_int_equal(ctx_of("GET "), CLI_COMPLETE_KEYWORD);
	assert_int_equal(ctx_of("SCAN PREFIX a "), CLI_COMPLETE_KEYWORD);
	assert_int_equal(ctx_of("\\format "), CLI_COMPLETE_FORMAT);
	assert_int_equal(ctx_of("GET k; \\format "), CLI_COMPLETE_FORMAT);
	assert_int_equal(ctx_of("\\i "), CLI_COMPLETE_FILE);
	assert_int_equal(ctx_of("\\o "), CLI_COMPLETE_FILE);
	assert_int_equal(ctx_of("\\set x "), CLI_COMPLETE_NONE);
	/* ';' inside a backslash command does not start a statement. */
	assert_int_equal(ctx_of("\\echo a; "), CLI_COMPLETE_NONE);
}

static void test_words(void **state)
{
	(void)state;
	assert_string_equal(all(CLI_COMPLETE_COMMAND, "GE"), "GET");
	assert_string_equal(all(CLI_COMPLETE_COMMAND, "ge"), "get");
	assert_string_equal(all(CLI_COMPLETE_COMMAND, "P"), "PUT PING");
	assert_string_equal(all(CLI_COMPLETE_COMMAND, "\\t"), "\\timing \\t");
	assert_string_equal(all(CLI_COMPLETE_COMMAND, "zz"), "");
	assert_string_equal(all(CLI_COMPLETE_KEYWORD, "li"), "limit list");
	assert_string_equal(all(CLI_COMPLETE_KEYWORD, "V"), "VERSION");
	assert_string_equal(all(CLI_COMPLETE_FORMAT, "c"), "csv");
	assert_string_equal(all(CLI_COMPLETE_FORMAT, ""),
			    "aligned unaligned csv json");
	assert_string_equal(all(CLI_COMPLETE_NONE, ""), "");
	/* Every command word is offered for an empty word. */
	const char *cmds = all(CLI_COMPLETE_COMMAND, "");
	assert_non_null(strstr(cmds, "SCAN"));
	assert_non_null(strstr(cmds, "\\watch"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_context),
	    cmocka_unit_test(test_words),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
