/* Tests the directory LOCK (sisyd/lsm/db_open.c): a second open of the
 * same directory fails clearly, from this process and from another, and
 * the lock goes with close (or with the process). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lsm.h"
#include "lsm_test_util.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "lock");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tu_rmdir(dir);
	return 0;
}

static sisy_err try_open(sisy_lsm **db)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = dir;
	*db = NULL;
	return sisy_lsm_open(&o, db);
}

/* Exit status of a child that tries to open: 0 opened, 1 locked, 2 other. */
static int open_in_child(void)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sisy_lsm *db;
		sisy_err rc = try_open(&db);
		if (rc == SISY_OK)
			sisy_lsm_close(db);
		_exit(rc == SISY_OK ? 0 : rc == SISY_E_LOCKED ? 1 : 2);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_second_open_fails(void **state)
{
	(void)state;
	sisy_lsm *db, *db2;
	assert_int_equal(try_open(&db), SISY_OK);
	assert_int_equal(try_open(&db2), SISY_E_LOCKED);
	assert_null(db2);
	assert_non_null(strstr(sisy_errmsg(), dir));
	assert_int_equal(open_in_child(), 1);
	/* the first handle is unharmed */
	assert_int_equal(sisy_lsm_put(db, "k", 1, "v", 1, 0), SISY_OK);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	/* free again: another process, then this one */
	assert_int_equal(open_in_child(), 0);
	assert_int_equal(try_open(&db), SISY_OK);
	sisy_buf b = {0};
	assert_int_equal(sisy_lsm_get(db, NULL, "k", 1, &b), SISY_OK);
	sisy_buf_free(&b);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
}

static void test_lock_dies_with_the_process(void **state)
{
	(void)state;
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		sisy_lsm *db;
		char c = try_open(&db) == SISY_OK ? 'y' : 'n';
		if (write(pipefd[1], &c, 1) != 1)
			_exit(2);
		pause(); /* killed while holding the lock */
		_exit(0);
	}
	char c;
	assert_int_equal(read(pipefd[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	sisy_lsm *db;
	assert_int_equal(try_open(&db), SISY_E_LOCKED);
	kill(pid, SIGKILL);
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(try_open(&db), SISY_OK);
	assert_int_equal(sisy_lsm_close(db), SISY_OK);
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_second_open_fails, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_lock_dies_with_the_process,
					    setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
