/* Tests sisy-cli/pipe.c: --pipe sends PUT/DEL lines, counts successes and
 * failures, reports failures by line, and keeps at most the window in
 * flight. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fake_backend.h"
#include "limits.h"
#include "pipe.h"
#include "shell.h"

typedef struct run {
	int status;
	char *out, *err;
	size_t outlen, errlen;
} run;

static void pipe_text(fake_backend *f, const char *text, run *r)
{
	FILE *in = fmemopen((void *)text, strlen(text), "r");
	FILE *out = open_memstream(&r->out, &r->outlen);
	FILE *err = open_memstream(&r->err, &r->errlen);
	r->status = cli_pipe_run(&f->base, in, out, err, "<stdin>");
	fclose(in);
	fclose(out);
	fclose(err);
}

static void run_free(run *r)
{
	free(r->out);
	free(r->err);
}

static void test_counts(void **state)
{
	(void)state;
	fake_backend f;
	fake_init(&f);
	run r;
	pipe_text(&f,
		  "PUT a 1\n"
		  "-- a comment\n"
		  "\n"
		  "PUT b 'two words'; DEL a\n"
		  "GET b\n"
		  "PUT b 3 IF ABSENT\n"
		  "PUT c x'00ff'\r\n"
		  "PUT 'unterminated\n"
		  "DEL b IF VERSION 2\n",
		  &r);
	assert_string_equal(r.out,
			    "sent 6, succeeded 5, failed 3, unknown 0\n");
	assert_int_equal(r.status, CLI_EXIT_FAILED);
	/* Each failure names its line. */
	assert_non_null(strstr(r.err, "<stdin>:5: error: --pipe takes PUT and "
				      "DEL only, not GET"));
	assert_non_null(strstr(r.err, "<stdin>:6: error: key exists"));
	assert_non_null(strstr(r.err, "<stdin>:8: error: unterminated"));
	assert_null(fake_find(&f, "a", 1));
	assert_null(fake_find(&f, "b", 1));
	const fake_entry *c = fake_find(&f, "c", 1);
	assert_non_null(c);
	assert_int_equal(c->value.len, 2);
	run_free(&r);
	fake_free(&f);
}

static void test_many_stays_in_window(void **state)
{
	(void)state;
	fake_backend f;
	fake_init(&f);
	size_t n = 3 * CLI_PIPE_WINDOW + 7;
	char *text = malloc(n * 32);
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "PUT k%05zu v%zu\n", i, i);
	run r;
	pipe_text(&f, text, &r);
	char want[64];
	snprintf(want, sizeof want,
		 "sent %zu, succeeded %zu, failed 0, unknown 0\n", n, n);
	assert_string_equal(r.out, want);
	assert_int_equal(r.status, CLI_EXIT_OK);
	assert_int_equal(f.n, n);
	/* The fake's queue holds 512; the window must keep below it. */
	assert_true(CLI_PIPE_WINDOW <= 512);
	assert_int_equal(f.pipe_n, 0);
	free(text);
	run_free(&r);
	fake_free(&f);
}

static void test_lost_connection(void **state)
{
	(void)state;
	fake_backend f;
	fake_init(&f);
	f.fail_next = SISY_E_CONN;
	f.fail_countdown = 2;
	run r;
	pipe_text(&f, "PUT a 1\nPUT b 1\nPUT c 1\nPUT d 1\n", &r);
	/* The two in flight have no answer: their outcome is unknown. */
	assert_string_equal(r.out,
			    "sent 2, succeeded 0, failed 1, unknown 2\n");
	assert_int_equal(r.status, CLI_EXIT_UNKNOWN);
	assert_non_null(strstr(r.err, "<stdin>:3: error: fake: injected"));
	assert_non_null(strstr(r.err, "lost with 2 writes in flight"));
	assert_null(fake_find(&f, "d", 1));
	run_free(&r);
	fake_free(&f);
}

static void test_unknown_outcome(void **state)
{
	(void)state;
	fake_backend f;
	fake_init(&f);
	f.fail_next = SISY_E_UNKNOWN_OUTCOME;
	run r;
	pipe_text(&f, "PUT a 1\nPUT b 1\n", &r);
	assert_string_equal(r.out,
			    "sent 2, succeeded 1, failed 0, unknown 1\n");
	assert_int_equal(r.status, CLI_EXIT_UNKNOWN);
	run_free(&r);
	fake_free(&f);
}

static void test_lost_with_nothing_in_flight(void **state)
{
	(void)state;
	fake_backend f;
	fake_init(&f);
	f.fail_next = SISY_E_CONN;
	run r;
	pipe_text(&f, "PUT a 1\nPUT b 1\n", &r);
	assert_string_equal(r.out,
			    "sent 0, succeeded 0, failed 1, unknown 0\n");
	assert_int_equal(r.status, CLI_EXIT_CONNECT);
	run_free(&r);
	fake_free(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_counts),
	    cmocka_unit_test(test_many_stays_in_window),
	    cmocka_unit_test(test_lost_connection),
	    cmocka_unit_test(test_unknown_outcome),
	    cmocka_unit_test(test_lost_with_nothing_in_flight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
