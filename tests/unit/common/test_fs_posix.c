/* Tests libcommon/fs_posix.c: the real file system behind sisy_fs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/sisy-test-fs-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd);
}

static void path_of(char *out, const char *name)
{
	snprintf(out, 512, "%s/%s", dir, name);
}

static void test_write_read_append(void **state)
{
	(void)state;
	sisy_fs *fs = sisy_fs_posix();
	char p[512];
	path_of(p, "a");
	sisy_file *f;
	assert_int_equal(sisy_fs_open(fs, p, SISY_O_WRITE | SISY_O_CREATE, &f),
			 SISY_OK);
	assert_int_equal(sisy_file_append(f, "hello", 5), SISY_OK);
	assert_int_equal(sisy_file_append(f, " world", 6), SISY_OK);
	assert_int_equal(sisy_file_pwrite(f, "J", 1, 0), SISY_OK);
	assert_int_equal(sisy_file_append(f, "!", 1), SISY_OK);
	assert_int_equal(sisy_file_sync(f), SISY_OK);
	uint64_t sz;
	assert_int_equal(sisy_file_size(f, &sz), SISY_OK);
	assert_int_equal(sz, 12);
	char buf[32];
	size_t got;
	assert_int_equal(sisy_file_pread(f, buf, sizeof buf, 0, &got), SISY_OK);
	assert_int_equal(got, 12);
	assert_memory_equal(buf, "Jello world!", 12);
	assert_int_equal(sisy_file_truncate(f, 5), SISY_OK);
	assert_int_equal(sisy_file_append(f, "X", 1), SISY_OK);
	assert_int_equal(sisy_file_pread(f, buf, sizeof buf, 0, &got), SISY_OK);
	assert_int_equal(got, 6);
	assert_memory_equal(buf, "JelloX", 6);
	const uint8_t *m;
	size_t mlen;
	assert_int_equal(sisy_file_map(f, &m, &mlen), SISY_OK);
	assert_int_equal(mlen, 6);
	assert_memory_equal(m, "JelloX", 6);
	assert_int_equal(sisy_file_close(f), SISY_OK);
}

static void test_missing_file(void **state)
{
	(void)state;
	char p[512];
	path_of(p, "nope");
	sisy_file *f;
	assert_int_equal(sisy_fs_open(sisy_fs_posix(), p, SISY_O_READ, &f),
			 SISY_E_NOTFOUND);
	assert_non_null(strstr(sisy_errmsg(), "nope"));
}

static void test_lock_same_process(void **state)
{
	(void)state;
	sisy_fs *fs = sisy_fs_posix();
	char p[512];
	path_of(p, "LOCK");
	sisy_lockfile *a, *b;
	assert_int_equal(sisy_fs_lock(fs, p, &a), SISY_OK);
	assert_int_equal(sisy_fs_lock(fs, p, &b), SISY_E_LOCKED);
	assert_int_equal(sisy_fs_unlock(a), SISY_OK);
	assert_int_equal(sisy_fs_lock(fs, p, &b), SISY_OK);
	assert_int_equal(sisy_fs_unlock(b), SISY_OK);
}

static int count_cb_n;
static void count_cb(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	count_cb_n++;
}

static void test_atomic_write_and_list(void **state)
{
	(void)state;
	sisy_fs *fs = sisy_fs_posix();
	char p[512];
	path_of(p, "CURRENT");
	assert_int_equal(sisy_fs_write_atomic(fs, dir, p, "one\n", 4), SISY_OK);
	assert_int_equal(sisy_fs_write_atomic(fs, dir, p, "two\n", 4), SISY_OK);
	uint8_t *data;
	size_t len;
	assert_int_equal(sisy_fs_read_all(fs, p, 100, &data, &len), SISY_OK);
	assert_int_equal(len, 4);
	assert_memory_equal(data, "two\n", 4);
	free(data);
	assert_int_equal(sisy_fs_read_all(fs, p, 2, &data, &len),
			 SISY_E_TOOBIG);
	count_cb_n = 0;
	assert_int_equal(sisy_fs_list(fs, dir, count_cb, NULL), SISY_OK);
	assert_true(count_cb_n >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_write_read_append),
	    cmocka_unit_test(test_missing_file),
	    cmocka_unit_test(test_lock_same_process),
	    cmocka_unit_test(test_atomic_write_and_list),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
