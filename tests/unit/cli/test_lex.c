/* Tests sisy-cli/lex.c: statements, quoting, escapes, hex literals, @file,
 * :NAME substitution, comments and the errors of each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lex.h"

static cli_lexed lx;

static int teardown(void **state)
{
	(void)state;
	cli_lexed_free(&lx);
	return 0;
}

static sisy_err lex(const char *s, const cli_vars *vars)
{
	return cli_lex(s, strlen(s), vars, &lx);
}

/* Token i of the whole line equals the n bytes at want. */
static void tok_is(size_t i, cli_tok_kind kind, const void *want, size_t n)
{
	assert_true(i < lx.ntoks);
	assert_int_equal(lx.toks[i].kind, kind);
	sisy_slice s = cli_tok_slice(&lx, i);
	assert_int_equal(s.len, n);
	assert_memory_equal(s.data, want, n);
}

static void tok_str(size_t i, cli_tok_kind kind, const char *want)
{
	tok_is(i, kind, want, strlen(want));
}

static void test_words_and_statements(void **state)
{
	(void)state;
	assert_int_equal(lex("  PUT k1   v1 ;GET k1;; ", NULL), SISY_OK);
	assert_int_equal(lx.nstmts, 2);
	assert_int_equal(lx.ntoks, 5);
	assert_int_equal(lx.stmts[0].first, 0);
	assert_int_equal(lx.stmts[0].ntoks, 3);
	assert_false(lx.stmts[0].meta);
	assert_int_equal(lx.stmts[1].first, 3);
	assert_int_equal(lx.stmts[1].ntoks, 2);
	tok_str(0, CLI_TOK_WORD, "PUT");
	tok_str(2, CLI_TOK_WORD, "v1");
	tok_str(4, CLI_TOK_WORD, "k1");
	/* The statement's own text, for \watch. */
	const char *line = "  PUT k1   v1 ;GET k1;; ";
	assert_int_equal(lx.stmts[0].src_len, strlen("PUT k1   v1"));
	assert_memory_equal(line + lx.stmts[0].src_off, "PUT k1   v1",
			    lx.stmts[0].src_len);
	assert_memory_equal(line + lx.stmts[1].src_off, "GET k1",
			    lx.stmts[1].src_len);
	/* Empty input and blank lines hold no statement. */
	assert_int_equal(lex("", NULL), SISY_OK);
	assert_int_equal(lx.nstmts, 0);
	assert_int_equal(lex(" \t ", NULL), SISY_OK);
	assert_int_equal(lx.nstmts, 0);
}

static void test_quotes(void **state)
{
	(void)state;
	assert_int_equal(lex("PUT 'a b' \"c;d\" ''", NULL), SISY_OK);
	assert_int_equal(lx.nstmts, 1);
	tok_str(1, CLI_TOK_STRING, "a b");
	tok_str(2, CLI_TOK_STRING, "c;d");
	tok_str(3, CLI_TOK_STRING, "");
	/* Pieces concatenate; a doubled quote is the quote itself. */
	assert_int_equal(lex("w'y'z 'it''s' \"say \"\"hi\"\"\" a'\"'b", NULL),
			 SISY_OK);
	tok_str(0, CLI_TOK_STRING, "wyz");
	tok_str(1, CLI_TOK_STRING, "it's");
	tok_str(2, CLI_TOK_STRING, "say \"hi\"");
	tok_str(3, CLI_TOK_STRING, "a\"b");
	/* A quoted word is never a keyword, even if it spells one. */
	assert_int_equal(lex("'GET'", NULL), SISY_OK);
	tok_str(0, CLI_TOK_STRING, "GET");
}

static void test_escapes(void **state)
{
	(void)state;
	assert_int_equal(
	    lex("'\\n\\t\\r\\\\\\'\\\"\\0\\x41\\xfF\\a\\b\\f\\v'", NULL),
	    SISY_OK);
	const char want[] = {'\n', '\t',       '\r', '\\', '\'', '"', '\0',
			     'A',  (char)0xff, '\a', '\b', '\f', '\v'};
	tok_is(0, CLI_TOK_STRING, want, sizeof want);
	/* Outside quotes a backslash is an ordinary byte. */
	assert_int_equal(lex("PUT a\\nb c", NULL), SISY_OK);
	tok_str(1, CLI_TOK_WORD, "a\\nb");
	/* Unknown escapes and short \x are errors naming the column. */
	assert_int_equal(lex("PUT k '\\q'", NULL), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "unknown escape \\q"));
	assert_non_null(strstr(sisy_errmsg(), "column 8"));
	assert_int_equal(lx.nstmts, 0);
	assert_int_equal(lex("'\\x4'", NULL), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "two hex digits"));
	assert_int_equal(lex("'abc\\", NULL), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "unterminated"));
}

static void test_unterminated(void **state)
{
	(void)state;
	assert_int_equal(lex("PUT k 'open", NULL), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "unterminated quoted string "
					      "starting at column 7"));
	assert_int_equal(lex("PUT k \"a\"\"", NULL), SISY_E_INVAL);
	assert_int_equal(lx.ntoks, 0);
}

static void test_hex(void **state)
{
	(void)state;
	assert_int_equal(lex("PUT x'00ff' X'DEadbeef' x''", NULL), SISY_OK);
	tok_is(1, CLI_TOK_STRING, "\x00\xff", 2);
	tok_is(2, CLI_TOK_STRING, "\xde\xad\xbe\xef", 4);
	tok_is(3, CLI_TOK_STRING, "", 0);
	/* A word that merely starts with x is a word. */
	assert_int_equal(lex("xyz x", NULL), SISY_OK);
	tok_str(0, CLI_TOK_WORD, "xyz");
	tok_str(1, CLI_TOK_WORD, "x");
	assert_int_equal(lex("x'abc'", NULL), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "odd number"));
	assert_int_equal(lex("x'zz'", NULL), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "not a hex digit"));
	assert_int_equal(lex("x'00", NULL), SISY_E_INVAL);
	assert_int_equal(lex("x'00'ab", NULL), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "put a space"));
}

static void test_file_tokens(void **state)
{
	(void)state;
	assert_int_equal(lex("PUT k @/tmp/v.bin;PUT k2 @- ", NULL), SISY_OK);
	tok_str(2, CLI_TOK_FILE, "/tmp/v.bin");
	tok_str(5, CLI_TOK_FILE, "-");
	assert_int_equal(lex("PUT k @'my file'", NULL), SISY_OK);
	tok_str(2, CLI_TOK_FILE, "my file");
	/* Quoted, it is text; inside a word it is a byte. */
	assert_int_equal(lex("'@x' a@b", NULL), SISY_OK);
	tok_str(0, CLI_TOK_STRING, "@x");
	tok_str(1, CLI_TOK_WORD, "a@b");
	assert_int_equal(lex("PUT k @", NULL), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), "needs a file name"));
	assert_int_equal(lex("PUT k @'a\\0b'", NULL), SISY_E_INVAL);
}

static void test_variables(void **state)
{
	(void)state;
	cli_vars vars = {0};
	assert_int_equal(cli_vars_set(&vars, "k", sisy_slice_str("a b;c")),
			 SISY_OK);
	assert_int_equal(
	    cli_vars_set(&vars, "bin", sisy_slice_make("\0\xff", 2)), SISY_OK);
	assert_int_equal(cli_vars_set(&vars, "kw", sisy_slice_str("LIMIT")),
			 SISY_OK);
	assert_int_equal(lex("GET :k :'bin' :\"kw\";GET :k", &vars), SISY_OK);
	assert_int_equal(lx.nstmts, 2);
	/* One token each, never re-split, never a keyword. */
	tok_str(1, CLI_TOK_STRING, "a b;c");
	tok_is(2, CLI_TOK_STRING, "\0\xff", 2);
	tok_str(3, CLI_TOK_STRING, "LIMIT");
	tok_str(5, CLI_TOK_STRING, "a b;c");
	/* Only a whole token is substituted: keys like user:k stay. */
	assert_int_equal(lex("GET user:k :k:x ':k'", &vars), SISY_OK);
	tok_str(1, CLI_TOK_WORD, "user:k");
	tok_str(2, CLI_TOK_WORD, ":k:x");
	tok_str(3, CLI_TOK_STRING, ":k");
	/* A colon alone, or before a non-name, is text. */
	assert_int_equal(lex("GET : :1 :'x y'", &vars), SISY_OK);
	tok_str(1, CLI_TOK_WORD, ":");
	tok_str(2, CLI_TOK_WORD, ":1");
	/* An unset variable is an error, not a literal. */
	assert_int_equal(lex("GET :nope", &vars), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), ":nope is not set"));
	assert_int_equal(lex("GET :k", NULL), SISY_E_INVAL);
	cli_vars_free(&vars);
}

static void test_comments(void **state)
{
	(void)state;
	assert_int_equal(lex("-- a comment; GET x", NULL), SISY_OK);
	assert_int_equal(lx.nstmts, 0);
	assert_int_equal(lex("GET k -- trailing", NULL), SISY_OK);
	assert_int_equal(lx.nstmts, 1);
	assert_int_equal(lx.ntoks, 2);
	/* Inside a word or quotes it is text. */
	assert_int_equal(lex("PUT a--b '--'", NULL), SISY_OK);
	tok_str(1, CLI_TOK_WORD, "a--b");
	tok_str(2, CLI_TOK_STRING, "--");
}

static void test_meta(void **state)
{
	(void)state;
	assert_int_equal(lex("\\set x 'a b';c -- d", NULL), SISY_OK);
	assert_int_equal(lx.nstmts, 1);
	assert_true(lx.stmts[0].meta);
	tok_str(0, CLI_TOK_WORD, "\\set");
	tok_str(1, CLI_TOK_WORD, "x");
	/* ';' and '--' are ordinary inside a backslash command. */
	tok_str(2, CLI_TOK_STRING, "a b;c");
	tok_str(3, CLI_TOK_WORD, "--");
	tok_str(4, CLI_TOK_WORD, "d");
	/* After a command, a backslash command ends the line. */
	assert_int_equal(lex("GET k; \\timing on; GET j", NULL), SISY_OK);
	assert_int_equal(lx.nstmts, 2);
	assert_false(lx.stmts[0].meta);
	assert_true(lx.stmts[1].meta);
	assert_int_equal(lx.stmts[1].ntoks, 4);
	/* A backslash later in a statement is part of a word. */
	assert_int_equal(lex("GET \\x", NULL), SISY_OK);
	assert_false(lx.stmts[0].meta);
	tok_str(1, CLI_TOK_WORD, "\\x");
}

static void test_binary_line(void **state)
{
	(void)state;
	/* NUL bytes in the line are data, not its end. */
	const char line[] = "PUT k a\0b";
	assert_int_equal(cli_lex(line, sizeof line - 1, NULL, &lx), SISY_OK);
	tok_is(2, CLI_TOK_WORD, "a\0b", 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_words_and_statements, teardown),
	    cmocka_unit_test_teardown(test_quotes, teardown),
	    cmocka_unit_test_teardown(test_escapes, teardown),
	    cmocka_unit_test_teardown(test_unterminated, teardown),
	    cmocka_unit_test_teardown(test_hex, teardown),
	    cmocka_unit_test_teardown(test_file_tokens, teardown),
	    cmocka_unit_test_teardown(test_variables, teardown),
	    cmocka_unit_test_teardown(test_comments, teardown),
	    cmocka_unit_test_teardown(test_meta, teardown),
	    cmocka_unit_test_teardown(test_binary_line, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
