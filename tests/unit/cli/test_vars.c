/* Tests sisy-cli/vars.c: names, order, limits, booleans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "vars.h"

static void test_set_get_unset(void **state)
{
	(void)state;
	cli_vars v = {0};
	assert_int_equal(cli_vars_set(&v, "b", sisy_slice_str("2")), SISY_OK);
	assert_int_equal(cli_vars_set(&v, "a", sisy_slice_make("\0x", 2)),
			 SISY_OK);
	assert_int_equal(cli_vars_set(&v, "c_1", sisy_slice_str("")), SISY_OK);
	assert_int_equal(v.n, 3);
	/* Sorted by name, for a stable \set listing. */
	assert_string_equal(v.v[0].name, "a");
	assert_string_equal(v.v[1].name, "b");
	assert_string_equal(v.v[2].name, "c_1");
	const sisy_buf *a = cli_vars_get(&v, "a", 1);
	assert_non_null(a);
	assert_int_equal(a->len, 2);
	assert_memory_equal(a->data, "\0x", 2);
	/* Lookup by a (pointer, length) that is not NUL-terminated. */
	assert_non_null(cli_vars_get(&v, "bcd", 1));
	assert_null(cli_vars_get(&v, "bc", 2));
	assert_null(cli_vars_get(&v, "", 0));
	/* Replace keeps one entry. */
	assert_int_equal(cli_vars_set(&v, "b", sisy_slice_str("22")), SISY_OK);
	assert_int_equal(v.n, 3);
	assert_int_equal(cli_vars_get(&v, "b", 1)->len, 2);
	cli_vars_unset(&v, "b");
	cli_vars_unset(&v, "nope");
	assert_int_equal(v.n, 2);
	assert_null(cli_vars_get(&v, "b", 1));
	assert_string_equal(v.v[1].name, "c_1");
	cli_vars_free(&v);
	assert_int_equal(v.n, 0);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(cli_vars_name_ok("ON_ERROR_STOP", 13));
	assert_true(cli_vars_name_ok("_x9", 3));
	assert_false(cli_vars_name_ok("9x", 2));
	assert_false(cli_vars_name_ok("a-b", 3));
	assert_false(cli_vars_name_ok("", 0));
	char longname[CLI_VARNAME_MAX + 2];
	memset(longname, 'a', sizeof longname);
	longname[CLI_VARNAME_MAX + 1] = '\0';
	assert_true(cli_vars_name_ok(longname, CLI_VARNAME_MAX));
	assert_false(cli_vars_name_ok(longname, CLI_VARNAME_MAX + 1));
	cli_vars v = {0};
	assert_int_equal(cli_vars_set(&v, longname, sisy_slice_str("x")),
			 SISY_E_INVAL);
	assert_int_equal(cli_vars_set(&v, "a b", sisy_slice_str("x")),
			 SISY_E_INVAL);
	assert_int_equal(v.n, 0);
}

static void test_limits(void **state)
{
	(void)state;
	cli_vars v = {0};
	static char big[CLI_VARVALUE_MAX + 1];
	assert_int_equal(
	    cli_vars_set(&v, "big", sisy_slice_make(big, sizeof big)),
	    SISY_E_TOOBIG);
	assert_int_equal(
	    cli_vars_set(&v, "big", sisy_slice_make(big, sizeof big - 1)),
	    SISY_OK);
	for (unsigned i = 1; i < CLI_VARS_MAX; i++) {
		char name[16];
		snprintf(name, sizeof name, "v%u", i);
		assert_int_equal(cli_vars_set(&v, name, sisy_slice_str("x")),
				 SISY_OK);
	}
	assert_int_equal(v.n, CLI_VARS_MAX);
	assert_int_equal(cli_vars_set(&v, "one_more", sisy_slice_str("x")),
			 SISY_E_TOOBIG);
	/* Replacing works on a full table. */
	assert_int_equal(cli_vars_set(&v, "v7", sisy_slice_str("y")), SISY_OK);
	cli_vars_free(&v);
}

static void test_bools(void **state)
{
	(void)state;
	const char *yes[] = {"on", "ON", "true", "True", "yes", "1"};
	const char *no[] = {"off", "Off", "false", "no", "0"};
	const char *neither[] = {"", "2", "o", "onn", "t", "y"};
	for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
		assert_int_equal(cli_bool_parse(sisy_slice_str(yes[i])), 1);
	for (size_t i = 0; i < sizeof no / sizeof *no; i++)
		assert_int_equal(cli_bool_parse(sisy_slice_str(no[i])), 0);
	for (size_t i = 0; i < sizeof neither / sizeof *neither; i++)
		assert_int_equal(cli_bool_parse(sisy_slice_str(neither[i])),
				 -1);
	cli_vars v = {0};
	assert_false(cli_vars_bool(&v, "ON_ERROR_STOP", false));
	assert_true(cli_vars_bool(&v, "ON_ERROR_STOP", true));
	cli_vars_set(&v, "ON_ERROR_STOP", sisy_slice_str("1"));
	assert_true(cli_vars_bool(&v, "ON_ERROR_STOP", false));
	cli_vars_set(&v, "ON_ERROR_STOP", sisy_slice_str("junk"));
	assert_false(cli_vars_bool(&v, "ON_ERROR_STOP", false));
	cli_vars_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_set_get_unset),
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_bools),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
