/* work.c — the read pool: threads that run engine reads (which may touch
 * the disk) off the event loop, fed by a queue bounded by design (each
 * connection has at most max_pipeline requests, the server at most
 * max_connections connections), handing finished requests back through a
 * completion list and an eventfd (srv_int.h). Writes do not come here:
 * they are Raft proposals (writes.c), applied by the node's apply thread.
 */
#include "srv_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void q_init(work_queue *q)
{
	memset(q, 0, sizeof *q);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
}

static void q_destroy(work_queue *q)
{
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
}

/* Hands the loop's pending list to the workers: one lock, and a wake-up
 * only for workers that sleep. */
static void q_hand_over(work_queue *q)
{
	if (q->pend_head == NULL)
		return;
	pthread_mutex_lock(&q->mu);
	if (q->tail)
		q->tail->qnext = q->pend_head;
	else
		q->head = q->pend_head;
	q->tail = q->pend_tail;
	q->n += q->pend_n;
	if (q->waiting > 0) {
		if (q->pend_n > 1)
			pthread_cond_broadcast(&q->cv);
		else
			pthread_cond_signal(&q->cv);
	}
	pthread_mutex_unlock(&q->mu);
	q->pend_head = q->pend_tail = NULL;
	q->pend_n = 0;
}

/* Waits for work; takes up to max requests. Returns 0 when stopping and
 * the queue is empty. */
static size_t q_pop(work_queue *q, srv_req **out, size_t max)
{
	size_t n = 0;
	pthread_mutex_lock(&q->mu);
	while (q->head == NULL && !q->stop) {
		q->waiting++;
		pthread_cond_wait(&q->cv, &q->mu);
		q->waiting--;
	}
	while (q->head && n < max) {
		srv_req *r = q->head;
		q->head = r->qnext;
		if (q->head == NULL)
			q->tail = NULL;
		q->n--;
		out[n++] = r;
	}
	pthread_mutex_unlock(&q->mu);
	return n;
}

/* Hands finished requests (a qnext-linked list) back to the loop. The
 * eventfd is written only when the list was empty: the loop takes the whole
 * list at once, so one wake-up serves every completion queued meanwhile. */
void work_done_list(sisy_server *s, srv_req *first, srv_req *last)
{
	pthread_mutex_lock(&s->done_mu);
	bool was_empty = s->done_head == NULL;
	last->qnext = NULL;
	if (s->done_tail)
		s->done_tail->qnext = first;
	else
		s->done_head = first;
	s->done_tail = last;
	pthread_mutex_unlock(&s->done_mu);
	if (was_empty) {
		uint64_t one = 1;
		ssize_t w = write(s->evfd, &one, sizeof one);
		(void)w;
	}
}

/* Links reqs[0..n) through qnext and hands them back in one go. */
static void done_batch(sisy_server *s, srv_req **reqs, size_t n)
{
	for (size_t i = 0; i + 1 < n; i++)
		reqs[i]->qnext = reqs[i + 1];
	work_done_list(s, reqs[0], reqs[n - 1]);
}

srv_req *work_take_done(sisy_server *s)
{
	pthread_mutex_lock(&s->done_mu);
	srv_req *r = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->done_mu);
	return r;
}

#define READ_BATCH 16

static void *reader_main(void *arg)
{
	sisy_server *s = arg;
	srv_req *batch[READ_BATCH];
	size_t n;
	/* named for top -H, perf and gdb */
	pthread_setname_np(pthread_self(), "sisy-reader");
	while ((n = q_pop(&s->readq, batch, READ_BATCH)) > 0) {
		for (size_t i = 0; i < n; i++)
			reads_run(s, batch[i]);
		done_batch(s, batch, n);
	}
	return NULL;
}

void work_submit(sisy_server *s, srv_req *r)
{
	work_queue *q = &s->readq;
	r->qnext = NULL;
	if (q->pend_tail)
		q->pend_tail->qnext = r;
	else
		q->pend_head = r;
	q->pend_tail = r;
	q->pend_n++;
}

void work_flush(sisy_server *s)
{
	q_hand_over(&s->readq);
}

sisy_err work_start(sisy_server *s)
{
	q_init(&s->readq);
	/* Measured on 2 cores: one read thread beats two (the loop, the apply
	 * thread and the engine need the other core). */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	s->nreaders = s->cfg.read_threads ? s->cfg.read_threads
					  : (size_t)(ncpu > 3 ? ncpu / 2 : 1);
	s->readers = calloc(s->nreaders, sizeof *s->readers);
	if (s->readers == NULL)
		return sisy_errf(SISY_E_NOMEM, "work.c: out of memory");
	for (size_t i = 0; i < s->nreaders; i++)
		if (pthread_create(&s->readers[i], NULL, reader_main, s) != 0) {
			s->nreaders = i;
			work_stop(s);
			return sisy_errf(SISY_E_INTERNAL,
					 "work.c: cannot start threads");
		}
	s->threads_started = true;
	return SISY_OK;
}

static void q_stop(work_queue *q)
{
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

/* Workers finish what is queued, then exit. */
void work_stop(sisy_server *s)
{
	if (s->readers == NULL)
		return;
	work_flush(s);
	q_stop(&s->readq);
	for (size_t i = 0; i < s->nreaders; i++)
		pthread_join(s->readers[i], NULL);
	free(s->readers);
	s->readers = NULL;
	q_destroy(&s->readq);
}
