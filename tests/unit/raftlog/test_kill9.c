/* kill -9 test of sisyd/raftlog on the real file system: a child process
 * appends to two groups as fast as it can and tells the parent over a pipe
 * every index reported durable; the parent SIGKILLs it mid-stream, reopens
 * the log and checks that every reported entry is there, intact.
 *
 * A kill keeps the page cache, so this cannot prove the fsyncs (the fault
 * layer's crash tests do that); it proves that a process dying at any
 * instruction leaves a log that recovers, with nothing reported lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "rl_test_util.h"

#define TARGET 20000 /* kill once this many entries are reported */
#define LIMIT  200000

static void options(sisy_raftlog_opts *o, const char *dir)
{
	sisy_raftlog_opts_default(o);
	o->fs = sisy_fs_posix();
	o->dir = dir;
	o->segment_bytes = 256 * 1024; /* several rollovers */
	o->prefill_bytes = 64 * 1024;
	o->cache_bytes = 64 * 1024;
}

static void send_report(int fd, uint64_t g, uint64_t idx)
{
	uint64_t msg[2] = {g, idx};
	if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg)
		_exit(3);
}

/* The child: append, drain, report; never returns. */
static void child(const char *dir, int fd)
{
	sisy_raftlog_opts o;
	sisy_raftlog *lg;
	options(&o, dir);
	if (sisy_raftlog_open(&o, &lg) != SISY_OK)
		_exit(2);
	struct pollfd p = {.fd = sisy_raftlog_event_fd(lg), .events = POLLIN};
	uint64_t next[3] = {0, 1, 1};
	for (uint64_t n = 0;; n++) {
		uint64_t g = 1 + n % 2;
		sisy_err rc = SISY_OK;
		if (next[g] <= LIMIT) {
			rc = rl_append(lg, g, next[g], next[g], 1);
			if (rc == SISY_OK)
				next[g]++;
			else if (rc != SISY_E_BUSY)
				_exit(4);
		}
		/* Wait for the writer when the queue is full or all is sent. */
		poll(&p, 1, rc == SISY_OK && next[g] <= LIMIT ? 0 : 100);
		sisy_raftlog_durable d[4];
		size_t k;
		do {
			if (sisy_raftlog_drain(lg, d, 4, &k) != SISY_OK)
				_exit(5);
			for (size_t i = 0; i < k; i++)
				if (d[i].what & SISY_RAFTLOG_DURABLE_ENTRIES)
					send_report(fd, d[i].group, d[i].index);
		} while (k == 4);
	}
}

static void test_kill9(void **state)
{
	(void)state;
	char dir[256];
	snprintf(dir, sizeof dir, "/tmp/sisy-raftlog-kill9-XXXXXX");
	assert_non_null(mkdtemp(dir));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		child(dir, fds[1]);
	}
	close(fds[1]);
	uint64_t reported[3] = {0, 0, 0};
	uint64_t deadline = sisy_now_ms() + 60000;
	bool killed = false;
	for (;;) {
		if (!killed && reported[1] + reported[2] >= TARGET) {
			assert_int_equal(kill(pid, SIGKILL), 0);
			killed = true;
		}
		/* After the kill, read what the child sent before dying. */
		struct pollfd p = {.fd = fds[0], .events = POLLIN};
		int left = (int)(deadline - sisy_now_ms());
		assert_true(left > 0); /* the child got nowhere in 60 s */
		if (poll(&p, 1, left) == 0)
			continue;
		uint64_t msg[2];
		ssize_t r = read(fds[0], msg, sizeof msg);
		if (r == 0)
			break; /* the child is gone */
		if (r < 0 && errno == EINTR)
			continue;
		assert_int_equal(r, sizeof msg);
		assert_true(msg[0] == 1 || msg[0] == 2);
		assert_true(msg[1] >= reported[msg[0]]);
		reported[msg[0]] = msg[1];
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(fds[0]);

	sisy_raftlog_opts o;
	sisy_raftlog *lg;
	options(&o, dir);
	if (sisy_raftlog_open(&o, &lg) != SISY_OK)
		fail_msg("reopen after kill -9: %s", sisy_errmsg());
	for (uint64_t g = 1; g <= 2; g++) {
		sisy_raftlog_state st;
		assert_int_equal(sisy_raftlog_state_of(lg, g, &st), SISY_OK);
		assert_true(st.last_index >= reported[g]);
		assert_int_equal(
		    rl_read_check(lg, g, 1, st.last_index + 1, NULL), SISY_OK);
	}
	fprintf(stderr,
		"kill -9 after %" PRIu64 " + %" PRIu64
		" entries reported durable\n",
		reported[1], reported[2]);
	assert_int_equal(sisy_raftlog_close(lg), SISY_OK);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kill9),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
