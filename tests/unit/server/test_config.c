/* Tests sisyd/server/config.c: defaults, the file, flags, bad values. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static void test_defaults_and_set(void **state)
{
	(void)state;
	sisy_server_config c;
	sisy_config_defaults(&c);
	assert_string_equal(c.listen, "127.0.0.1:7420");
	assert_true(c.max_unauth > 0 && c.max_unauth < c.max_connections);
	assert_int_equal(sisy_config_set(&c, "max_pipeline", "17"), SISY_OK);
	assert_int_equal(c.max_pipeline, 17);
	assert_int_equal(sisy_config_set(&c, "sync", "on"), SISY_OK);
	assert_true(c.sync);
	/* The Raft log always fsyncs: turning it off is refused, loudly. */
	assert_int_equal(sisy_config_set(&c, "sync", "false"), SISY_E_INVAL);
	assert_true(c.sync);
	/* ... unless explicitly unsafe, for benchmarks (off by default). */
	assert_false(c.unsafe_no_fsync);
	assert_int_equal(sisy_config_set(&c, "unsafe_no_fsync", "true"),
			 SISY_OK);
	assert_true(c.unsafe_no_fsync);
	assert_int_equal(sisy_config_set(&c, "unsafe_no_fsync", "no"), SISY_OK);
	assert_false(c.unsafe_no_fsync);
	/* compaction yields the CPU by default; a nice beyond 19 is refused */
	assert_int_equal(c.compaction_nice, 10);
	assert_int_equal(sisy_config_set(&c, "compaction_nice", "20"),
			 SISY_E_INVAL);
	assert_int_equal(sisy_config_set(&c, "compaction_nice", "0"), SISY_OK);
	assert_int_equal(c.compaction_nice, 0);
	assert_int_equal(sisy_config_set(&c, "peer_routes",
					 "2=127.0.0.1:9002,13=[::1]:9013"),
			 SISY_OK);
	char route[64];
	assert_true(sisy_config_route(&c, 13, route, sizeof route));
	assert_string_equal(route, "[::1]:9013");
	assert_true(sisy_config_route(&c, 2, route, sizeof route));
	assert_string_equal(route, "127.0.0.1:9002");
	assert_false(sisy_config_route(&c, 1, route, sizeof route));
	assert_int_equal(sisy_config_set(&c, "peer_routes", "2=nohostport"),
			 SISY_E_INVAL);
	assert_int_equal(sisy_config_set(&c, "peer_routes", "0=h:1"),
			 SISY_E_INVAL);
	assert_true(sisy_config_route(&c, 2, route, sizeof route));
	assert_string_equal(sisy_config_advertise(&c), c.listen);
	assert_int_equal(sisy_config_set(&c, "advertise", "10.0.0.5:7420"),
			 SISY_OK);
	assert_string_equal(sisy_config_advertise(&c), "10.0.0.5:7420");
	assert_int_equal(sisy_config_set(&c, "memtable_bytes", "8388608"),
			 SISY_OK);
	assert_int_equal(c.memtable_bytes, 8388608);
	/* Unknown keys, junk numbers, out of range, negative: refused. */
	assert_int_equal(sisy_config_set(&c, "max_pipline", "1"), SISY_E_INVAL);
	assert_int_equal(sisy_config_set(&c, "max_pipeline", "12x"),
			 SISY_E_INVAL);
	assert_int_equal(sisy_config_set(&c, "max_pipeline", "0"),
			 SISY_E_INVAL);
	assert_int_equal(sisy_config_set(&c, "max_pipeline", "-1"),
			 SISY_E_INVAL);
	assert_int_equal(sisy_config_set(&c, "sync", "maybe"), SISY_E_INVAL);
	assert_int_equal(sisy_config_set(&c, "log_level", "loud"),
			 SISY_E_INVAL);
	assert_int_equal(c.max_pipeline, 17); /* untouched by failures */
	bool is_bool = false;
	assert_true(sisy_config_known("sync", &is_bool));
	assert_true(is_bool);
	assert_false(sisy_config_known("nonsense", NULL));
}

static void test_file(void **state)
{
	(void)state;
	char path[] = "/tmp/sisy-test-conf.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "# comment\n\n  listen = 0.0.0.0:9000  \n"
			   "idle_timeout_ms=1500\nsync = true\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	sisy_server_config c;
	sisy_config_defaults(&c);
	assert_int_equal(sisy_config_load(&c, path, true), SISY_OK);
	assert_string_equal(c.listen, "0.0.0.0:9000");
	assert_int_equal(c.idle_timeout_ms, 1500);
	assert_true(c.sync);
	/* A bad line names the file and line. */
	FILE *f = fopen(path, "a");
	fputs("no equals sign here\n", f);
	fclose(f);
	assert_int_equal(sisy_config_load(&c, path, true), SISY_E_INVAL);
	assert_non_null(strstr(sisy_errmsg(), ":6:"));
	unlink(path);
	assert_int_equal(sisy_config_load(&c, path, false), SISY_OK);
	assert_int_equal(sisy_config_load(&c, path, true), SISY_E_NOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults_and_set),
	    cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
