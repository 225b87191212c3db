/* Tests sisy-cli/text.c: UTF-8 checks, escaping for display, file reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "text.h"

static void esc_is(const void *in, size_t n, const char *want, size_t cols)
{
	sisy_buf b = {0};
	size_t got = cli_escape_append(&b, sisy_slice_make(in, n));
	assert_int_equal(b.len, strlen(want));
	if (b.len)
		assert_memory_equal(b.data, want, b.len);
	assert_int_equal(got, cols);
	sisy_buf_free(&b);
}

static void test_escape(void **state)
{
	(void)state;
	esc_is("plain", 5, "plain", 5);
	esc_is("", 0, "", 0);
	esc_is("a\\b", 3, "a\\\\b", 4);
	esc_is("l1\nl2\t\r", 7, "l1\\nl2\\t\\r", 10);
	esc_is("\0\x1b[2J\x7f", 6, "\\x00\\x1b[2J\\x7f", 15);
	/* Valid UTF-8 passes and counts one column per code point. */
	esc_is("h\xc3\xa9llo \xe2\x82\xac", 10, "h\xc3\xa9llo \xe2\x82\xac", 7);
	esc_is("\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80", 1);
	/* Invalid UTF-8, overlongs, surrogates and C1 controls are bytes. */
	esc_is("\xff\xfe", 2, "\\xff\\xfe", 8);
	esc_is("\xc0\xaf", 2, "\\xc0\\xaf", 8);
	esc_is("\xed\xa0\x80", 3, "\\xed\\xa0\\x80", 12);
	esc_is("\xc2\x9b", 2, "\\xc2\\x9b", 8);
	esc_is("\xe2\x82", 2, "\\xe2\\x82", 8);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(cli_utf8_valid(sisy_slice_str("")));
	assert_true(cli_utf8_valid(sisy_slice_str("abc \xc3\xa9")));
	assert_true(cli_utf8_valid(sisy_slice_make("a\0b", 3)));
	assert_false(cli_utf8_valid(sisy_slice_str("\x80")));
	assert_false(cli_utf8_valid(sisy_slice_str("\xf4\x90\x80\x80")));
	assert_false(cli_utf8_valid(sisy_slice_str("\xe0\x80\x80")));
	assert_int_equal(cli_utf8_seq((const uint8_t *)"\xf4\x8f\xbf\xbf", 4),
			 4);
}

static void test_show(void **state)
{
	(void)state;
	char buf[32];
	assert_string_equal(
	    cli_show(sisy_slice_str("a\nb"), 40, buf, sizeof buf), "a\\nb");
	assert_string_equal(
	    cli_show(sisy_slice_str("abcdefgh"), 3, buf, sizeof buf), "abc...");
	/* Never overruns the buffer. */
	char small[6];
	assert_string_equal(
	    cli_show(sisy_slice_str("abcdefgh"), 40, small, sizeof small),
	    "abcde");
}

static void test_read_file(void **state)
{
	(void)state;
	char path[] = "/tmp/cli_test_text_XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\0bin\xff", 5), 5);
	close(fd);
	sisy_buf b = {0};
	assert_int_equal(cli_read_file(path, stdin, 5, &b), SISY_OK);
	assert_int_equal(b.len, 5);
	assert_memory_equal(b.data, "\0bin\xff", 5);
	assert_int_equal(cli_read_file(path, stdin, 4, &b), SISY_E_TOOBIG);
	unlink(path);
	assert_int_equal(cli_read_file(path, stdin, 5, &b), SISY_E_NOTFOUND);
	assert_non_null(strstr(sisy_errmsg(), "cannot open"));
	/* "-" reads the given stream. */
	FILE *f = fmemopen("from stdin", 10, "r");
	assert_int_equal(cli_read_file("-", f, 100, &b), SISY_OK);
	assert_int_equal(b.len, 10);
	assert_memory_equal(b.data, "from stdin", 10);
	fclose(f);
	sisy_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_show),
	    cmocka_unit_test(test_read_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
