/* apply.c — the node's apply thread: it takes jobs from the loop in order
 * (apply committed entries, install a snapshot, checkpoint, flush, remove a
 * directory), runs them against the groups' engines and hands each job
 * back on the completion list, waking the loop through an eventfd.
 *
 * One thread for every group of the node: jobs of one group stay in order,
 * which is what makes "install, then apply what follows" and "checkpoint at
 * exactly the applied index" hold. The queue's memory is bounded by the
 * loop (node->max_apply_queue_bytes: followers stop taking APPENDs beyond
 * it, leaders refuse proposals). A full disk while applying is retried
 * every 100 ms (a committed entry is never dropped or failed); any other
 * engine error stops the node.
 *
 * Applying on the loop: an apply job pushed while the thread sleeps with
 * nothing queued runs at once on the loop (under amu, so the thread cannot
 * start meanwhile), if the engine can take its writes without waiting
 * (sisy_lsm_write_would_wait; each write is also SISY_LSM_NOWAIT). Order
 * is kept: everything pushed before it is done, and its completion goes
 * behind theirs on the completion list. A BUSY or a full disk hands what
 * is left of the job to the thread, which carries on from the applied
 * index. This saves two thread hand-offs per write in the common case (on
 * two cores, most of a write's latency; docs/server.md); the thread still
 * takes every job while the engine is behind, so the loop never stalls.
 */
#include <pthread.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "node_int.h"

#define NOSPC_RETRY_MS 100

void node_job_free(node_job *j)
{
	if (j == NULL)
		return;
	free(j->ents);
	free(j->mem);
	free(j->res);
	free(j->files);
	sisy_buf_free(&j->events);
	free(j);
}

static bool apply_here(sisy_node *n, node_job *j);

void node_apply_push(sisy_node *n, node_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&n->amu);
	if (j->kind == JOB_APPLY && n->aq_head == NULL && n->asleep &&
	    !n->astop && apply_here(n, j)) {
		pthread_mutex_unlock(&n->amu);
		return;
	}
	if (n->aq_tail)
		n->aq_tail->next = j;
	else
		n->aq_head = j;
	n->aq_tail = j;
	/* Only a sleeping thread needs the signal, and only after the lock is
	 * free: signalled under it, it would wake to block on the lock. */
	bool wake = n->asleep;
	n->asleep = false;
	pthread_mutex_unlock(&n->amu);
	if (wake)
		pthread_cond_signal(&n->acv);
}

node_job *node_apply_take(sisy_node *n)
{
	uint64_t v;
	ssize_t r = read(n->cfd, &v, sizeof v); /* re-arm before looking */
	(void)r;
	pthread_mutex_lock(&n->cmu);
	node_job *j = n->cq_head;
	n->cq_head = n->cq_tail = NULL;
	pthread_mutex_unlock(&n->cmu);
	return j;
}

static void complete(sisy_node *n, node_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&n->cmu);
	bool was_empty = n->cq_head == NULL;
	if (n->cq_tail)
		n->cq_tail->next = j;
	else
		n->cq_head = j;
	n->cq_tail = j;
	pthread_mutex_unlock(&n->cmu);
	if (was_empty) {
		uint64_t one = 1;
		ssize_t w = write(n->cfd, &one, sizeof one);
		(void)w;
	}
}

/* Waits up to ms unless the node stops; true when stopping. */
static bool pause_ms(sisy_node *n, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&n->amu);
	if (!n->astop)
		pthread_cond_timedwait(&n->acv, &n->amu, &ts);
	bool stop = n->astop;
	pthread_mutex_unlock(&n->amu);
	return stop;
}

static void note_error(node_job *j, sisy_err rc)
{
	j->err = rc;
	snprintf(j->errmsg, sizeof j->errmsg, "%s", sisy_errmsg());
}

/* Room for every entry's result (each slot used is filled in whole by
 * note_result); kept across a job's passes. */
static bool alloc_results(node_job *j)
{
	if (j->res != NULL || j->n == 0)
		return true;
	j->res = malloc(j->n * sizeof *j->res);
	if (j->res == NULL) {
		note_error(j, sisy_errf(SISY_E_NOMEM, "node: out of memory"));
		return false;
	}
	return true;
}

/* One pass over what of j is not applied yet. */
static sisy_err apply_pass(node_job *j, int wflags)
{
	size_t got = 0;
	sisy_err rc = node_sm_apply(&j->g->sm, j->ents, j->n, j->res + j->nres,
				    &got, &j->events, wflags);
	j->nres += got;
	return rc;
}

static void apply_done(node_job *j)
{
	node_sm *sm = &j->g->sm;
	j->applied = sm->applied;
	j->applied_term = sm->applied_term;
	for (size_t i = 0; i < j->n; i++)
		if (j->ents[i].type == SISY_RAFT_ENTRY_CONFIG)
			j->members_changed = true;
	if (j->members_changed)
		j->members = sm->members;
}

static void run_apply(sisy_node *n, node_job *j)
{
	if (!alloc_results(j))
		return;
	for (;;) {
		sisy_err rc = apply_pass(j, 0);
		if (rc == SISY_OK)
			break;
		if (rc != SISY_E_NOSPC) {
			note_error(j, rc);
			break;
		}
		sisy_log(n->o.logger, SISY_LOG_WARN, "node",
			 "group %" PRIu64 ": disk full while applying; "
			 "retrying: %s",
			 j->g->id, sisy_errmsg());
		if (pause_ms(n, NOSPC_RETRY_MS)) {
			note_error(j, rc);
			break;
		}
	}
	apply_done(j);
}

/* On the loop, amu held, the thread asleep with nothing queued: true when
 * j was applied (or failed) here and is on the completion list; false
 * leaves it (perhaps partly applied) for the thread. */
static bool apply_here(sisy_node *n, node_job *j)
{
	node_group *g = j->g;
	if (g->installing ||
	    sisy_lsm_write_would_wait(g->sm.db, 2 * j->bytes + 4096))
		return false;
	if (!alloc_results(j)) {
		complete(n, j);
		return true;
	}
	sisy_err rc = apply_pass(j, SISY_LSM_NOWAIT);
	if (rc == SISY_E_BUSY || rc == SISY_E_NOSPC)
		return false;
	if (rc != SISY_OK)
		note_error(j, rc);
	apply_done(j);
	j->on_loop = true;
	n->done_on_loop = true;
	complete(n, j);
	return true;
}

static void run(sisy_node *n, node_job *j)
{
	node_sm *sm = &j->g->sm;
	sisy_err rc = SISY_OK;
	switch (j->kind) {
	case JOB_APPLY:
		run_apply(n, j);
		return;
	case JOB_INSTALL:
		rc = node_sm_install(sm, j->dbname, j->index);
		j->members_changed = true;
		j->members = sm->members;
		break;
	case JOB_CHECKPOINT:
		rc =
		    node_sm_checkpoint(sm, j->path, sizeof j->path, &j->index,
				       &j->applied_term, &j->files, &j->nfiles);
		break;
	case JOB_FLUSH:
		rc = sisy_lsm_flush(sm->db);
		break;
	case JOB_RMDIR:
		rc = node_rmdir_all(n->fs, j->path);
		break;
	}
	if (rc != SISY_OK)
		note_error(j, rc);
	j->applied = sm->applied;
	if (j->kind != JOB_CHECKPOINT)
		j->applied_term = sm->applied_term;
}

static void *apply_main(void *arg)
{
	sisy_node *n = arg;
	/* named for top -H, perf and gdb */
	pthread_setname_np(pthread_self(), "sisy-apply");
	for (;;) {
		pthread_mutex_lock(&n->amu);
		while (n->aq_head == NULL && !n->astop) {
			n->asleep = true;
			pthread_cond_wait(&n->acv, &n->amu);
		}
		n->asleep = false;
		node_job *j = n->aq_head;
		if (j != NULL) {
			n->aq_head = j->next;
			if (n->aq_head == NULL)
				n->aq_tail = NULL;
		}
		pthread_mutex_unlock(&n->amu);
		if (j == NULL)
			return NULL; /* stopping, queue empty */
		run(n, j);
		complete(n, j);
	}
}

sisy_err node_apply_start(sisy_node *n)
{
	n->cfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (n->cfd < 0)
		return sisy_errf(SISY_E_IO, "node: eventfd: %s",
				 strerror(errno));
	if (pthread_create(&n->apply_thread, NULL, apply_main, n) != 0)
		return sisy_errf(SISY_E_NOMEM,
				 "node: cannot start the apply thread");
	n->apply_started = true;
	return SISY_OK;
}

void node_apply_stop(sisy_node *n)
{
	if (!n->apply_started)
		return;
	pthread_mutex_lock(&n->amu);
	n->astop = true;
	pthread_cond_broadcast(&n->acv);
	pthread_mutex_unlock(&n->amu);
	pthread_join(n->apply_thread, NULL);
	n->apply_started = false;
}
