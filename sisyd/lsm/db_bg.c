/* db_bg.c — the background thread: flushes imm, runs compactions, deletes
 * obsolete files. One per engine.
 *
 * Loop (mu held except inside the jobs' I/O):
 *   failed            -> idle until close (nothing may be written);
 *                        a pending manual compaction is answered FAILED
 *   in ENOSPC backoff -> sleep until the retry time (or a wake-up)
 *   imm waiting       -> flush it (first: writers may be waiting on it)
 *   closing           -> exit (close flushes what the WAL does not cover)
 *   compaction due    -> run one
 *   else              -> sleep until woken
 * After each job it deletes obsolete files and wakes everyone waiting on
 * bg_cv (stalled writers, sisy_lsm_flush, sisy_lsm_compact_all).
 * It runs at opts.bg_nice (lower priority), if asked. */
#include <pthread.h>
#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "db.h"

static void bg_wait_until(sisy_lsm *db, uint64_t at_us)
{
	uint64_t now = sisy_now_us();
	if (at_us <= now)
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t ns = (uint64_t)ts.tv_nsec + (at_us - now) * 1000;
	ts.tv_sec += (time_t)(ns / 1000000000);
	ts.tv_nsec = (long)(ns % 1000000000);
	pthread_cond_timedwait(&db->work_cv, &db->mu, &ts);
}

static void *bg_main(void *arg)
{
	sisy_lsm *db = arg;
	/* named for top -H, perf and gdb */
	pthread_setname_np(pthread_self(), "sisy-lsm-bg");
	if (db->o.bg_nice > 0) {
		/* this thread only (Linux: a thread id is a process id here);
		 * raising one's nice needs no privilege, so it cannot fail
		 * but for a bad id */
		pid_t tid = (pid_t)syscall(SYS_gettid);
		errno = 0;
		int cur = getpriority(PRIO_PROCESS, (id_t)tid);
		if (errno == 0)
			(void)setpriority(PRIO_PROCESS, (id_t)tid,
					  cur + db->o.bg_nice);
	}
	pthread_mutex_lock(&db->mu);
	for (;;) {
		if (db->failed != NULL) {
			if (db->manual != NULL) {
				db->manual->rc = SISY_E_FAILED;
				db->manual->done = true;
				db->manual = NULL;
				pthread_cond_broadcast(&db->bg_cv);
			}
			if (db->shutting_down)
				break;
			pthread_cond_wait(&db->work_cv, &db->mu);
			continue;
		}
		if (db->bg_nospc && sisy_now_us() < db->bg_retry_at_us) {
			if (db->shutting_down)
				break; /* close reports what is left */
			bg_wait_until(db, db->bg_retry_at_us);
			continue;
		}
		bool did = false;
		if (db->imm != NULL) {
			(void)db_flush_imm(db);
			did = true;
		} else if (db->shutting_down) {
			break;
		} else if (db_needs_compaction(db)) {
			did = db_maybe_compact(db);
		}
		if (!did) {
			pthread_cond_wait(&db->work_cv, &db->mu);
			continue;
		}
		db_delete_obsolete(db);
		pthread_cond_broadcast(&db->bg_cv);
	}
	pthread_cond_broadcast(&db->bg_cv);
	pthread_mutex_unlock(&db->mu);
	return NULL;
}

sisy_err db_bg_start(sisy_lsm *db)
{
	int e = pthread_create(&db->bg, NULL, bg_main, db);
	if (e != 0)
		return sisy_errf(sisy_err_from_errno(e),
				 "db_bg.c: cannot start the background "
				 "thread: %s",
				 sisy_strerror(sisy_err_from_errno(e)));
	db->bg_started = true;
	return SISY_OK;
}

void db_bg_stop(sisy_lsm *db)
{
	if (!db->bg_started)
		return;
	pthread_mutex_lock(&db->mu);
	db->shutting_down = true;
	pthread_cond_broadcast(&db->work_cv);
	pthread_mutex_unlock(&db->mu);
	pthread_join(db->bg, NULL);
	db->bg_started = false;
}
