/* Tests sisy-cli/out.c: the exact bytes of every format, with and without
 * -t, for an empty value, a missing key (no row), binary and awkward text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "limits.h"
#include "out.h"

typedef struct cap {
	char *buf;
	size_t len;
	FILE *fp;
	cli_out o;
} cap;

static void cap_open(cap *c, cli_format fmt, bool tuples)
{
	memset(c, 0, sizeof *c);
	c->fp = open_memstream(&c->buf, &c->len);
	assert_non_null(c->fp);
	cli_out_init(&c->o, c->fp);
	c->o.fmt = fmt;
	c->o.tuples_only = tuples;
}

/* Closes the stream and checks what was written, byte for byte. */
static void cap_is(cap *c, const void *want, size_t n)
{
	assert_int_equal(cli_out_flush(&c->o), SISY_OK);
	fclose(c->fp);
	if (c->len != n || memcmp(c->buf, want, n) != 0)
		fail_msg("got [%.*s] (%zu bytes), want [%.*s] (%zu)",
			 (int)c->len, c->buf, c->len, (int)n,
			 (const char *)want, n);
	cli_out_free(&c->o);
	free(c->buf);
}

static void cap_str(cap *c, const char *want)
{
	cap_is(c, want, strlen(want));
}

static const cli_col value_col[] = {{"value", CLI_COL_TEXT}};
static const cli_col kv_cols[] = {{"key", CLI_COL_TEXT},
				  {"value", CLI_COL_TEXT}};

/* A GET: one row with `v`, or none when v is NULL (missing key). */
static void get(cap *c, const char *v, size_t n)
{
	assert_int_equal(cli_out_begin(&c->o, value_col, 1), SISY_OK);
	if (v != NULL) {
		sisy_slice cell = sisy_slice_make(v, n);
		assert_int_equal(cli_out_row(&c->o, &cell), SISY_OK);
	}
	assert_int_equal(cli_out_end(&c->o), SISY_OK);
}

static void rows2(cap *c, const char *const *cells, size_t nrows)
{
	assert_int_equal(cli_out_begin(&c->o, kv_cols, 2), SISY_OK);
	for (size_t r = 0; r < nrows; r++) {
		sisy_slice s[2] = {sisy_slice_str(cells[2 * r]),
				   sisy_slice_str(cells[2 * r + 1])};
		assert_int_equal(cli_out_row(&c->o, s), SISY_OK);
	}
	assert_int_equal(cli_out_end(&c->o), SISY_OK);
}

static void test_missing_vs_empty_every_mode(void **state)
{
	(void)state;
	static const struct {
		cli_format fmt;
		bool t;
		const char *missing, *empty, *hello;
	} cases[] = {
	    {CLI_FMT_ALIGNED, false, " value \n-------\n(0 rows)\n\n",
	     " value \n-------\n \n(1 row)\n\n",
	     " value \n-------\n hello\n(1 row)\n\n"},
	    {CLI_FMT_ALIGNED, true, "\n", " \n\n", " hello\n\n"},
	    {CLI_FMT_UNALIGNED, false, "value\n(0 rows)\n",
	     "value\n\n(1 row)\n", "value\nhello\n(1 row)\n"},
	    /* -At: the acceptance contract. */
	    {CLI_FMT_UNALIGNED, true, "", "\n", "hello\n"},
	    {CLI_FMT_CSV, false, "value\n", "value\n\"\"\n", "value\nhello\n"},
	    {CLI_FMT_CSV, true, "", "\"\"\n", "hello\n"},
	    {CLI_FMT_JSON, false, "[]\n", "[{\"value\":\"\"}]\n",
	     "[{\"value\":\"hello\"}]\n"},
	    {CLI_FMT_JSON, true, "[]\n", "[{\"value\":\"\"}]\n",
	     "[{\"value\":\"hello\"}]\n"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		cap c;
		cap_open(&c, cases[i].fmt, cases[i].t);
		get(&c, NULL, 0);
		cap_str(&c, cases[i].missing);
		cap_open(&c, cases[i].fmt, cases[i].t);
		get(&c, "", 0);
		cap_str(&c, cases[i].empty);
		cap_open(&c, cases[i].fmt, cases[i].t);
		get(&c, "hello", 5);
		cap_str(&c, cases[i].hello);
	}
}

static void test_aligned_layout(void **state)
{
	(void)state;
	cap c;
	cap_open(&c, CLI_FMT_ALIGNED, false);
	const char *cells[] = {"bar:k1", "hello world", "k", "v"};
	rows2(&c, cells, 2);
	/* psql's layout: centred header, padded cells, none after the last
	 * column, a footer and a blank line. */
	cap_str(&c, "  key   |    value    \n"
		    "--------+-------------\n"
		    " bar:k1 | hello world\n"
		    " k      | v\n"
		    "(2 rows)\n\n");
	/* Numbers align to the right. */
	static const cli_col cols[] = {{"value", CLI_COL_TEXT},
				       {"version", CLI_COL_INT}};
	cap_open(&c, CLI_FMT_ALIGNED, false);
	assert_int_equal(cli_out_begin(&c.o, cols, 2), SISY_OK);
	sisy_slice r1[2] = {sisy_slice_str("a"), sisy_slice_str("7")};
	sisy_slice r2[2] = {sisy_slice_str("bb"), sisy_slice_str("12345678")};
	cli_out_row(&c.o, r1);
	cli_out_row(&c.o, r2);
	cli_out_end(&c.o);
	cap_str(&c, " value | version  \n"
		    "-------+----------\n"
		    " a     |        7\n"
		    " bb    | 12345678\n"
		    "(2 rows)\n\n");
}

static void test_aligned_escapes_binary(void **state)
{
	(void)state;
	cap c;
	cap_open(&c, CLI_FMT_ALIGNED, true);
	/* Control bytes and invalid UTF-8 are escaped; the width counts
	 * the escaped form; UTF-8 counts code points. */
	const char *cells[] = {"\x1b[31m", "a\nb", "caf\xc3\xa9", "\xff\\"};
	rows2(&c, cells, 2);
	cap_str(&c, " \\x1b[31m | a\\nb\n"
		    " caf\xc3\xa9     | \\xff\\\\\n\n");
}

static void test_unaligned_raw(void **state)
{
	(void)state;
	cap c;
	cap_open(&c, CLI_FMT_UNALIGNED, true);
	assert_int_equal(cli_out_begin(&c.o, kv_cols, 2), SISY_OK);
	sisy_slice r[2] = {sisy_slice_str("k"), sisy_slice_make("\0\xff\n", 3)};
	cli_out_row(&c.o, r);
	cli_out_end(&c.o);
	/* -At prints the bytes as they are. */
	cap_is(&c, "k|\0\xff\n\n", 6);
	cap_open(&c, CLI_FMT_UNALIGNED, false);
	const char *cells[] = {"a", "1", "b", "2"};
	rows2(&c, cells, 2);
	cap_str(&c, "key|value\na|1\nb|2\n(2 rows)\n");
}

static void test_csv_quoting(void **state)
{
	(void)state;
	cap c;
	cap_open(&c, CLI_FMT_CSV, false);
	const char *cells[] = {"a,b",  "say \"hi\"", "l1\nl2",
			       "cr\r", " sp ",	     ""};
	rows2(&c, cells, 3);
	cap_str(&c, "key,value\n"
		    "\"a,b\",\"say \"\"hi\"\"\"\n"
		    "\"l1\nl2\",\"cr\r\"\n"
		    " sp ,\n");
}

static void test_json(void **state)
{
	(void)state;
	cap c;
	cap_open(&c, CLI_FMT_JSON, false);
	const char *cells[] = {"q\"\\", "t\t\x01", "caf\xc3\xa9", "\x7f"};
	rows2(&c, cells, 2);
	cap_str(&c, "[{\"key\":\"q\\\"\\\\\",\"value\":\"t\\t\\u0001\"},\n"
		    "{\"key\":\"caf\xc3\xa9\",\"value\":\"\x7f\"}]\n");
	/* Bytes that are not UTF-8 become {"hex": ...}; INT and BOOL
	 * columns are bare numbers and booleans. */
	static const cli_col cols[] = {{"value", CLI_COL_TEXT},
				       {"version", CLI_COL_INT},
				       {"exists", CLI_COL_BOOL}};
	cap_open(&c, CLI_FMT_JSON, false);
	cli_out_begin(&c.o, cols, 3);
	sisy_slice r[3] = {sisy_slice_make("\0\xff", 2), sisy_slice_str("42"),
			   sisy_slice_str("true")};
	cli_out_row(&c.o, r);
	cli_out_end(&c.o);
	cap_str(&c, "[{\"value\":{\"hex\":\"00ff\"},\"version\":42,"
		    "\"exists\":true}]\n");
}

static void test_tags(void **state)
{
	(void)state;
	cap c;
	cap_open(&c, CLI_FMT_ALIGNED, true);
	cli_out_tag(&c.o, "PUT 1 VERSION 3");
	cap_str(&c, "PUT 1 VERSION 3\n");
	cap_open(&c, CLI_FMT_JSON, false);
	cli_out_tag(&c.o, "DEL \"x\"");
	cap_str(&c, "{\"status\":\"DEL \\\"x\\\"\"}\n");
	cap_open(&c, CLI_FMT_CSV, false);
	c.o.quiet = true;
	cli_out_tag(&c.o, "PUT 1 VERSION 3");
	cap_str(&c, "");
}

static void test_aligned_chunks(void **state)
{
	(void)state;
	/* More rows than one chunk: all printed, widths per chunk, header
	 * once, the footer counts every row. */
	cap c;
	cap_open(&c, CLI_FMT_ALIGNED, false);
	cli_out_begin(&c.o, value_col, 1);
	size_t n = CLI_ALIGN_CHUNK_ROWS + 3;
	for (size_t i = 0; i < n; i++) {
		sisy_slice s = sisy_slice_str(
		    i < CLI_ALIGN_CHUNK_ROWS ? "a" : "longer-value");
		cli_out_row(&c.o, &s);
	}
	cli_out_end(&c.o);
	fflush(c.fp);
	size_t lines = 0;
	for (size_t i = 0; i < c.len; i++)
		lines += c.buf[i] == '\n';
	assert_int_equal(lines, 2 + n + 2);
	assert_non_null(strstr(c.buf, " value \n-------\n a\n"));
	assert_non_null(strstr(c.buf, "\n longer-value\n(1003 rows)\n\n"));
	fclose(c.fp);
	cli_out_free(&c.o);
	free(c.buf);
}

static void test_abort_and_formats(void **state)
{
	(void)state;
	cap c;
	cap_open(&c, CLI_FMT_JSON, false);
	cli_out_begin(&c.o, value_col, 1);
	sisy_slice s = sisy_slice_str("x");
	cli_out_row(&c.o, &s);
	cli_out_abort(&c.o);
	/* Still a well-formed document, with no footer. */
	cap_str(&c, "[{\"value\":\"x\"}]\n");
	assert_int_equal(cli_format_parse("csv"), CLI_FMT_CSV);
	assert_int_equal(cli_format_parse("unaligned"), CLI_FMT_UNALIGNED);
	assert_int_equal(cli_format_parse("CSV"), -1);
	assert_string_equal(cli_format_name(CLI_FMT_JSON), "json");
}

static void test_write_error_sticky(void **state)
{
	(void)state;
	FILE *f = fopen("/dev/full", "w");
	if (f == NULL)
		skip();
	setvbuf(f, NULL, _IONBF, 0);
	cli_out o;
	cli_out_init(&o, f);
	assert_int_equal(cli_out_tag(&o, "PONG"), SISY_E_NOSPC);
	assert_int_equal(cli_out_tag(&o, "PONG"), SISY_E_NOSPC);
	assert_int_equal(cli_out_flush(&o), SISY_E_NOSPC);
	fclose(f);
	cli_out_free(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_missing_vs_empty_every_mode),
	    cmocka_unit_test(test_aligned_layout),
	    cmocka_unit_test(test_aligned_escapes_binary),
	    cmocka_unit_test(test_unaligned_raw),
	    cmocka_unit_test(test_csv_quoting),
	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_tags),
	    cmocka_unit_test(test_aligned_chunks),
	    cmocka_unit_test(test_abort_and_formats),
	    cmocka_unit_test(test_write_error_sticky),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
