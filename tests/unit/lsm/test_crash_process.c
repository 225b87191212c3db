/* Process-crash test: a child process writes (some writes synced, most
 * not; single puts and batches) and reports each acknowledged key to the
 * parent over a pipe; the parent SIGKILLs it after a random number of
 * acknowledgements (so at random points of its flushes, compactions and
 * WAL switches), reopens the database and checks that every acknowledged
 * write is there. A SIGKILL keeps the page cache, so unsynced writes must
 * survive too (lsm.h's promise for sync off). Cycles accumulate in one
 * directory: each recovery starts from the previous one's state.
 *
 * SISY_SEED replays the kill points; SISY_KILL_CYCLES scales (default 24).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lsm.h"
#include "lsm_test_util.h"
#include "rand.h"

static char dir[256];

static sisy_lsm_options opts(void)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = dir;
	o.memtable_bytes = 64 << 10;
	o.target_file_bytes = 64 << 10;
	o.l1_max_bytes = 256 << 10;
	return o;
}

static size_t value_of(char *out, uint64_t k)
{
	int n = snprintf(out, 64, "value-%llu-", (unsigned long long)k);
	size_t len = (size_t)n + k % 200;
	for (size_t i = (size_t)n; i < len; i++)
		out[i] = (char)('a' + (k + i) % 26);
	return len;
}

static void report(int fd, uint64_t k)
{
	if (write(fd, &k, sizeof k) != (ssize_t)sizeof k)
		_exit(4);
}

/* The child: writes keys first, first+1, ... until killed. */
static void child(uint64_t first, uint64_t seed, int fd)
{
	sisy_lsm_options o = opts();
	sisy_lsm *db;
	if (sisy_lsm_open(&o, &db) != SISY_OK)
		_exit(2);
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	for (uint64_t k = first;;) {
		int flags = sisy_rand_chance(&r, 1, 10) ? SISY_LSM_SYNC : 0;
		int n = sisy_rand_chance(&r, 1, 5)
			    ? 2 + (int)sisy_rand_below(&r, 10)
			    : 1;
		sisy_lsm_batch_clear(b);
		for (int i = 0; i < n; i++) {
			char key[32], val[300];
			size_t kl = tu_key(key, sizeof key, k + (uint64_t)i);
			sisy_lsm_batch_put(b, key, kl, val,
					   value_of(val, k + (uint64_t)i));
		}
		if (sisy_lsm_write(db, b, flags) != SISY_OK)
			_exit(3);
		for (int i = 0; i < n; i++)
			report(fd, k + (uint64_t)i);
		k += (uint64_t)n;
	}
}

static void check_key(sisy_lsm *db, uint64_t k)
{
	char key[32], want[300];
	size_t kl = tu_key(key, sizeof key, k);
	size_t wl = value_of(want, k);
	sisy_buf b = {0};
	sisy_err rc = sisy_lsm_get(db, NULL, key, kl, &b);
	if (rc != SISY_OK)
		fail_msg("acknowledged key %llu lost after SIGKILL: %s",
			 (unsigned long long)k, sisy_errname(rc));
	assert_int_equal(b.len, wl);
	assert_memory_equal(b.data, want, wl);
	sisy_buf_free(&b);
}

static void test_sigkill_keeps_acknowledged_writes(void **state)
{
	(void)state;
	tu_mkdtemp(dir, sizeof dir, "kill");
	uint64_t seed = tu_seed("crash_process");
	long cycles = tu_env_long("SISY_KILL_CYCLES", 24);
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	/* acknowledged key ranges [lo[c], hi[c]) per cycle */
	uint64_t *lo = calloc((size_t)cycles, sizeof *lo);
	uint64_t *hi = calloc((size_t)cycles, sizeof *hi);
	uint64_t next = 0, total = 0;
	for (long c = 0; c < cycles; c++) {
		int fds[2];
		assert_int_equal(pipe(fds), 0);
		uint64_t kill_after = 1 + sisy_rand_below(&r, 2500);
		fflush(NULL);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child(next, sisy_rand_next(&r), fds[1]);
		}
		close(fds[1]);
		lo[c] = hi[c] = next;
		uint64_t k, got = 0;
		/* wait for the acknowledgements (a condition, not a clock),
		 * then kill at once, mid-whatever the child is doing */
		while (got < kill_after &&
		       read(fds[0], &k, sizeof k) == (ssize_t)sizeof k) {
			assert_int_equal(k, hi[c]);
			hi[c] = k + 1;
			got++;
		}
		kill(pid, SIGKILL);
		/* what it acknowledged before dying is still in the pipe */
		while (read(fds[0], &k, sizeof k) == (ssize_t)sizeof k) {
			assert_int_equal(k, hi[c]);
			hi[c] = k + 1;
		}
		close(fds[0]);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		total += hi[c] - lo[c];
		/* the next cycle starts far away: the write in flight at the
		 * kill may or may not have landed */
		next = hi[c] + 100;

		sisy_lsm_options o = opts();
		sisy_lsm *db;
		sisy_err rc = sisy_lsm_open(&o, &db);
		if (rc != SISY_OK)
			fail_msg("cycle %ld: reopen after SIGKILL: %s", c,
				 sisy_errmsg());
		for (k = lo[c]; k < hi[c]; k++)
			check_key(db, k);
		/* and the earlier cycles' writes, through all recoveries */
		for (long e = 0; e < c; e++)
			for (k = lo[e]; k < hi[e]; k += 7)
				check_key(db, k);
		assert_int_equal(sisy_lsm_close(db), SISY_OK);
	}
	fprintf(stderr, "  %ld kills, %llu acknowledged writes checked\n",
		cycles, (unsigned long long)total);
	free(lo);
	free(hi);
	tu_rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sigkill_keeps_acknowledged_writes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
