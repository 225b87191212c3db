/* raftlog.c — the public calls: open/close, queueing writes, handing out
 * durability reports, reads and queries. The in-memory view changes at
 * once (reads see an append before it is durable); the records go to the
 * writer's queue in call order, which is the order they reach the disk.
 *
 * States: running -> (nospace <-> running) -> failed. `failed` is sticky
 * and every call reports it; `nospace` refuses appends only.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "format.h"
#include "internal.h"

#define KIB		   ((size_t)1 << 10)
#define MIB		   ((size_t)1 << 20)
#define ZERO_CHUNK	   (256 * KIB)
#define APPEND_STACK_ITEMS 64 /* items of one append kept on the stack */

void sisy_raftlog_opts_default(sisy_raftlog_opts *o)
{
	memset(o, 0, sizeof *o);
	o->segment_bytes = 64 * MIB;
	o->max_entry_bytes = 16 * MIB;
	o->batch_bytes = 1 * MIB;
	o->prefill_bytes = 1 * MIB;
	o->cache_bytes = 16 * MIB;
	o->queue_bytes = 64 * MIB;
	o->reserve_bytes = 4 * MIB;
}

/* The state every call checks first (lock held). */
static sisy_err check_failed(sisy_raftlog *lg)
{
	if (lg->failed == SISY_OK)
		return SISY_OK;
	return sisy_errf(SISY_E_FAILED,
			 "raftlog: the log failed and stopped after an I/O "
			 "error; restart the node: %s",
			 lg->failmsg);
}

static sisy_err check_opts(const sisy_raftlog_opts *o)
{
	if (o->fs == NULL || o->dir == NULL || o->dir[0] == '\0')
		return sisy_errf(SISY_E_INVAL,
				 "raftlog: fs and dir are needed");
	if (o->max_entry_bytes == 0 ||
	    o->max_entry_bytes > RAFTLOG_BODY_MAX - RAFTLOG_ENTRY_OVERHEAD)
		return sisy_errf(SISY_E_INVAL,
				 "raftlog: max_entry_bytes must be 1..%zu",
				 RAFTLOG_BODY_MAX - RAFTLOG_ENTRY_OVERHEAD);
	if (o->segment_bytes < 4 * KIB ||
	    o->segment_bytes > ((uint64_t)1 << 30))
		return sisy_errf(SISY_E_INVAL,
				 "raftlog: segment_bytes must be 4 KiB..1 GiB");
	if (o->batch_bytes == 0 || o->queue_bytes == 0)
		return sisy_errf(SISY_E_INVAL,
				 "raftlog: batch_bytes and queue_bytes must "
				 "be positive");
	return SISY_OK;
}

static void free_all(sisy_raftlog *lg)
{
	for (size_t i = 0; i < lg->qn; i++)
		raftlog_item_unref(lg, lg->q[(lg->qhead + i) % lg->qcap].item);
	for (size_t i = 0; i < lg->nbatch; i++)
		raftlog_item_unref(lg, lg->batch[i].item);
	for (size_t i = 0; i < lg->ngroups; i++)
		raftlog_group_free(lg, lg->groups[i]);
	assert(lg->cache_bytes == 0 && lg->cache_head == NULL);
	sisy_chunks_free(&lg->items); /* every item was dropped above */
	for (size_t i = 0; i < lg->nsegs; i++)
		raftlog_seg_free(lg->segs[i]);
	free(lg->segs);
	free(lg->groups);
	free(lg->dirty);
	free(lg->q);
	free(lg->batch);
	free(lg->wg);
	free(lg->zeros);
	sisy_buf_free(&lg->wbuf);
	if (lg->efd >= 0)
		close(lg->efd);
	sisy_fs_unlock(lg->lock);
	pthread_cond_destroy(&lg->wake);
	pthread_cond_destroy(&lg->done);
	pthread_mutex_destroy(&lg->mu);
	free(lg->dir);
	free(lg);
}

static sisy_err init(sisy_raftlog *lg, const sisy_raftlog_opts *o)
{
	lg->o = *o;
	lg->o.dir = NULL;
	lg->efd = -1;
	pthread_mutex_init(&lg->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&lg->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&lg->done, NULL);
	size_t rec_max = RAFTLOG_ENTRY_OVERHEAD + o->max_entry_bytes;
	lg->torn_window =
	    (o->batch_bytes > rec_max ? o->batch_bytes : rec_max) +
	    RAFTLOG_SEAL_MAX;
	lg->nzeros = ZERO_CHUNK;
	lg->capbatch = 256;
	lg->qcap = 256;
	lg->dir = strdup(o->dir);
	lg->zeros = calloc(1, lg->nzeros);
	lg->batch = calloc(lg->capbatch, sizeof *lg->batch);
	lg->q = calloc(lg->qcap, sizeof *lg->q);
	lg->qseq_next = 1;
	if (lg->dir == NULL || lg->zeros == NULL || lg->batch == NULL ||
	    lg->q == NULL)
		return sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
	lg->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (lg->efd < 0)
		return sisy_errf(SISY_E_IO, "raftlog: eventfd failed");
	return SISY_OK;
}

/* Creates the log directory if needed, durably: a new directory's name
 * lives in its parent, which is synced too. */
static sisy_err make_dir(sisy_fs *fs, const char *dir)
{
	bool exists;
	char parent[4096];
	sisy_err rc = sisy_fs_exists(fs, dir, &exists);
	if (rc != SISY_OK || exists)
		return rc;
	if ((rc = sisy_fs_mkdir(fs, dir)) != SISY_OK)
		return rc;
	size_t n = strlen(dir);
	while (n > 1 && dir[n - 1] == '/')
		n--;
	while (n > 0 && dir[n - 1] != '/')
		n--;
	while (n > 1 && dir[n - 1] == '/')
		n--;
	if (n == 0)
		snprintf(parent, sizeof parent, ".");
	else if (n >= sizeof parent)
		return sisy_errf(SISY_E_TOOBIG, "raftlog: path too long: %s",
				 dir);
	else
		snprintf(parent, sizeof parent, "%.*s", (int)n, dir);
	return sisy_fs_sync_dir(fs, parent);
}

sisy_err sisy_raftlog_open(const sisy_raftlog_opts *o, sisy_raftlog **out)
{
	sisy_err rc = check_opts(o);
	if (rc != SISY_OK)
		return rc;
	sisy_raftlog *lg = calloc(1, sizeof *lg);
	if (lg == NULL)
		return sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
	char lockpath[4096];
	if ((rc = init(lg, o)) != SISY_OK)
		goto fail;
	if (snprintf(lockpath, sizeof lockpath, "%s/LOCK", o->dir) >=
	    (int)sizeof lockpath) {
		rc = sisy_errf(SISY_E_TOOBIG, "raftlog: path too long: %s",
			       o->dir);
		goto fail;
	}
	if ((rc = make_dir(o->fs, o->dir)) != SISY_OK ||
	    (rc = sisy_fs_lock(o->fs, lockpath, &lg->lock)) != SISY_OK ||
	    (rc = raftlog_recover(lg)) != SISY_OK ||
	    (rc = raftlog_ballast_make(lg)) != SISY_OK)
		goto fail;
	if (pthread_create(&lg->thread, NULL, raftlog_writer_main, lg) != 0) {
		rc = sisy_errf(SISY_E_NOMEM,
			       "raftlog: cannot start the writer thread");
		goto fail;
	}
	lg->thread_started = true;
	sisy_log(o->logger, SISY_LOG_INFO, "raftlog",
		 "%s: opened, %zu groups in %zu segments", o->dir, lg->ngroups,
		 lg->nsegs);
	if (o->unsafe_no_fsync)
		sisy_log(o->logger, SISY_LOG_WARN, "raftlog",
			 "%s: UNSAFE: unsafe_no_fsync = true: writes are "
			 "acknowledged before they are on disk; a machine "
			 "crash or power loss can lose acknowledged writes "
			 "or leave the data directory unreadable. For "
			 "benchmarks and tests only, never for data you "
			 "care about",
			 o->dir);
	*out = lg;
	return SISY_OK;
fail:
	free_all(lg);
	return rc;
}

sisy_err sisy_raftlog_close(sisy_raftlog *lg)
{
	if (lg == NULL)
		return SISY_OK;
	pthread_mutex_lock(&lg->mu);
	lg->stop = true;
	pthread_cond_broadcast(&lg->wake);
	pthread_mutex_unlock(&lg->mu);
	if (lg->thread_started)
		pthread_join(lg->thread, NULL);
	sisy_err rc = check_failed(lg);
	if (rc == SISY_OK && lg->nbatch > 0)
		rc = sisy_errf(SISY_E_NOSPC,
			       "raftlog: closed with records unwritten: %s",
			       lg->nospmsg);
	free_all(lg);
	return rc;
}

/* --- the queue (lock held) --------------------------------------------------
 */

/* Room for `extra` more queued records, so that as many pushes cannot
 * fail. */
static sisy_err queue_reserve(sisy_raftlog *lg, size_t extra)
{
	if (lg->qn + extra <= lg->qcap)
		return SISY_OK;
	size_t cap = lg->qcap;
	while (cap < lg->qn + extra)
		cap *= 2;
	raftlog_prec *v = malloc(cap * sizeof *v);
	if (v == NULL)
		return sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
	for (size_t i = 0; i < lg->qn; i++)
		v[i] = lg->q[(lg->qhead + i) % lg->qcap];
	free(lg->q);
	lg->q = v;
	lg->qhead = 0;
	lg->qcap = cap;
	return SISY_OK;
}

static void queue_push(sisy_raftlog *lg, const raftlog_prec *p)
{
	assert(lg->qn < lg->qcap);
	raftlog_prec *slot = &lg->q[(lg->qhead + lg->qn) % lg->qcap];
	*slot = *p;
	slot->qseq = lg->qseq_next++;
	lg->qn++;
	lg->qbytes += raftlog_prec_cost(p);
}

/* Work was queued (lock held): note whether the writer must be woken. */
static void wake_writer(sisy_raftlog *lg, bool *wake)
{
	/* unsafe_no_fsync: the owner writes (sisy_raftlog_write_now) */
	if (lg->writer_asleep && !lg->o.unsafe_no_fsync) {
		lg->writer_asleep = false; /* one signal per sleep is enough */
		*wake = true;
	}
}

/* Signals after the unlock: a writer woken while we still hold mu would
 * only block on it again (a second futex round trip per batch). */
static void unlock_wake(sisy_raftlog *lg, bool wake)
{
	pthread_mutex_unlock(&lg->mu);
	if (wake)
		pthread_cond_signal(&lg->wake);
}

/* --- appends
 * ------------------------------------------------------------------ */

static sisy_err check_entries(const sisy_raftlog *lg,
			      const sisy_raftlog_entry *ents, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		const sisy_raftlog_entry *e = &ents[k];
		if (e->term == 0 || e->index == 0)
			return sisy_errf(SISY_E_INVAL,
					 "raftlog: entry index and term start "
					 "at 1");
		if (k > 0 && (e->index != ents[k - 1].index + 1 ||
			      e->term < ents[k - 1].term))
			return sisy_errf(SISY_E_INVAL,
					 "raftlog: entries must be consecutive "
					 "with terms not decreasing (at index "
					 "%" PRIu64 ")",
					 e->index);
		if (e->len > lg->o.max_entry_bytes)
			return sisy_errf(SISY_E_TOOBIG,
					 "raftlog: entry %" PRIu64 " has %zu "
					 "bytes; the limit is %zu",
					 e->index, e->len,
					 lg->o.max_entry_bytes);
		if (e->len > 0 && e->data == NULL)
			return sisy_errf(SISY_E_INVAL,
					 "raftlog: entry without data");
	}
	return SISY_OK;
}

static sisy_err check_place(sisy_raftlog *lg, raftlog_group *g,
			    const sisy_raftlog_entry *first)
{
	uint64_t last = raftlog_group_last(g), prev;
	if (first->index <= g->base_index || first->index > last + 1)
		return sisy_errf(SISY_E_RANGE,
				 "raftlog: group %" PRIu64
				 ": append at %" PRIu64 " outside (%" PRIu64
				 ", %" PRIu64 "]",
				 g->id, first->index, g->base_index, last + 1);
	bool ok = raftlog_group_term(g, first->index - 1, &prev);
	assert(ok);
	(void)ok;
	if (first->term < prev)
		return sisy_errf(SISY_E_INVAL,
				 "raftlog: group %" PRIu64 ": entry %" PRIu64
				 " of term %" PRIu64 " after term %" PRIu64,
				 g->id, first->index, first->term, prev);
	return SISY_OK;
}

static sisy_err check_room(sisy_raftlog *lg, size_t bytes)
{
	if (lg->nospace)
		return sisy_errf(SISY_E_NOSPC,
				 "raftlog: disk full, appends are refused "
				 "until space is freed: %s",
				 lg->nospmsg);
	if (lg->qbytes > 0 && lg->qbytes + bytes > lg->o.queue_bytes)
		return sisy_errf(SISY_E_BUSY,
				 "raftlog: %zu bytes queued for the disk, "
				 "limit %zu; try again",
				 lg->qbytes, lg->o.queue_bytes);
	return SISY_OK;
}

sisy_err sisy_raftlog_append(sisy_raftlog *lg, uint64_t group,
			     const sisy_raftlog_entry *ents, size_t n)
{
	raftlog_item *stack[APPEND_STACK_ITEMS];
	raftlog_item **items = stack;
	size_t bytes = 0;
	bool wake = false;
	sisy_err rc = check_entries(lg, ents, n);
	if (rc != SISY_OK || n == 0)
		return rc;
	if (n > APPEND_STACK_ITEMS)
		items = malloc(n * sizeof *items);
	if (items == NULL)
		return sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
	memset(items, 0, n * sizeof *items);
	/* Big payloads are copied before taking the lock, into chunks of
	 * their own (no lock needed); the usual small ones are carved from
	 * the shared chunks under it: a bump and a short copy. */
	for (size_t k = 0; k < n; k++) {
		bytes +=
		    RAFTLOG_ENTRY_OVERHEAD + ents[k].len + sizeof(raftlog_prec);
		if (raftlog_item_big(ents[k].len) &&
		    (items[k] = raftlog_item_new(NULL, group, ents[k].index,
						 ents[k].term, ents[k].data,
						 ents[k].len)) == NULL) {
			for (size_t j = 0; j < k; j++)
				raftlog_item_unref(lg, items[j]); /* own */
			rc = sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
			goto out;
		}
	}
	pthread_mutex_lock(&lg->mu);
	raftlog_group *g;
	if ((rc = check_failed(lg)) != SISY_OK ||
	    (rc = check_room(lg, bytes)) != SISY_OK ||
	    (rc = raftlog_group_create(lg, group, &g)) != SISY_OK ||
	    (rc = check_place(lg, g, &ents[0])) != SISY_OK ||
	    (rc = raftlog_group_reserve(g, n)) != SISY_OK ||
	    (rc = queue_reserve(lg, n)) != SISY_OK)
		goto unlock;
	for (size_t k = 0; k < n; k++)
		if (items[k] == NULL &&
		    (items[k] = raftlog_item_new(lg, group, ents[k].index,
						 ents[k].term, ents[k].data,
						 ents[k].len)) == NULL) {
			rc = sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
			goto unlock;
		}
	for (size_t k = 0; k < n; k++) {
		raftlog_prec p = {.type = RAFTLOG_REC_ENTRY,
				  .group = group,
				  .a = ents[k].index,
				  .b = ents[k].term,
				  .item = items[k]};
		raftlog_meta m = {.term = ents[k].term, .item = items[k]};
		items[k]->refs++; /* the queue's */
		queue_push(lg, &p);
		if (ents[k].index == raftlog_group_last(g) + 1) {
			/* The usual case, an entry after the last: the
			 * window has room (reserved above). */
			assert(g->head + g->n < g->cap);
			g->metas[g->head + g->n++] = m;
		} else {
			rc = raftlog_group_put(lg, g, ents[k].index, &m);
			assert(rc == SISY_OK); /* reserved */
		}
		items[k] = NULL; /* the meta took our reference */
	}
	wake_writer(lg, &wake);
unlock:
	if (rc != SISY_OK) /* else every reference went to a meta */
		for (size_t k = 0; k < n; k++)
			raftlog_item_unref(lg, items[k]); /* under the lock */
	unlock_wake(lg, wake);
out:
	if (items != stack)
		free(items);
	return rc;
}

static sisy_err queue_meta(sisy_raftlog *lg, raftlog_prec *p, bool *wake)
{
	sisy_err rc = queue_reserve(lg, 1);
	if (rc != SISY_OK)
		return rc;
	queue_push(lg, p);
	wake_writer(lg, wake);
	return SISY_OK;
}

sisy_err sisy_raftlog_set_hardstate(sisy_raftlog *lg, uint64_t group,
				    const sisy_raftlog_hardstate *hs)
{
	bool wake = false;
	pthread_mutex_lock(&lg->mu);
	raftlog_group *g;
	sisy_err rc = check_failed(lg);
	if (rc == SISY_OK &&
	    (rc = raftlog_group_create(lg, group, &g)) == SISY_OK) {
		raftlog_prec p = {.type = RAFTLOG_REC_HARDSTATE,
				  .group = group,
				  .a = hs->term,
				  .b = hs->vote,
				  .c = hs->commit};
		if ((rc = queue_meta(lg, &p, &wake)) == SISY_OK) {
			g->has_hs = true;
			g->hs = *hs;
		}
	}
	unlock_wake(lg, wake);
	return rc;
}

static sisy_err set_base(sisy_raftlog *lg, raftlog_group *g, uint64_t index,
			 uint64_t term, bool *wake)
{
	raftlog_prec p = {
	    .type = RAFTLOG_REC_BASE, .group = g->id, .a = index, .b = term};
	sisy_err rc = queue_meta(lg, &p, wake);
	if (rc != SISY_OK)
		return rc;
	raftlog_group_set_base(lg, g, index, term);
	lg->kick = true; /* segments may go now: a full disk may have room */
	return SISY_OK;
}

sisy_err sisy_raftlog_compact(sisy_raftlog *lg, uint64_t group, uint64_t index)
{
	bool wake = false;
	pthread_mutex_lock(&lg->mu);
	raftlog_group *g = raftlog_group_find(lg, group);
	uint64_t term;
	sisy_err rc = check_failed(lg);
	if (rc != SISY_OK)
		goto out;
	if (g == NULL) {
		rc = sisy_errf(SISY_E_NOTFOUND,
			       "raftlog: compact: no group %" PRIu64, group);
	} else if (index > raftlog_group_last(g)) {
		rc = sisy_errf(SISY_E_RANGE,
			       "raftlog: compact group %" PRIu64 " to %" PRIu64
			       ", past its last entry %" PRIu64,
			       group, index, raftlog_group_last(g));
	} else if (index > g->base_index) {
		bool ok = raftlog_group_term(g, index, &term);
		assert(ok);
		(void)ok;
		rc = set_base(lg, g, index, term, &wake);
	}
out:
	unlock_wake(lg, wake);
	return rc;
}

sisy_err sisy_raftlog_set_snapshot(sisy_raftlog *lg, uint64_t group,
				   uint64_t index, uint64_t term)
{
	bool wake = false;
	pthread_mutex_lock(&lg->mu);
	raftlog_group *g;
	sisy_err rc = check_failed(lg);
	if (rc == SISY_OK && term == 0)
		rc = sisy_errf(SISY_E_INVAL, "raftlog: snapshot term 0");
	if (rc == SISY_OK)
		rc = raftlog_group_create(lg, group, &g);
	if (rc == SISY_OK && index <= g->base_index)
		rc = sisy_errf(SISY_E_RANGE,
			       "raftlog: snapshot at %" PRIu64
			       " of group %" PRIu64
			       " is not past its base %" PRIu64,
			       index, group, g->base_index);
	if (rc == SISY_OK)
		rc = set_base(lg, g, index, term, &wake);
	unlock_wake(lg, wake);
	return rc;
}

/* --- reports
 * ------------------------------------------------------------------- */

int sisy_raftlog_event_fd(sisy_raftlog *lg)
{
	return lg->efd;
}

sisy_err sisy_raftlog_drain(sisy_raftlog *lg, sisy_raftlog_durable *out,
			    size_t max, size_t *n)
{
	*n = 0;
	pthread_mutex_lock(&lg->mu);
	if (lg->efd_armed) {
		/* Re-arm before looking (under the lock, so a report published
		 * after this drain signals again). */
		uint64_t v;
		ssize_t r = read(lg->efd, &v, sizeof v);
		(void)r;
		lg->efd_armed = false;
	}
	size_t k = 0;
	for (; k < lg->ndirty && *n < max; k++) {
		raftlog_group *g = lg->dirty[k];
		assert(g->dirty);
		out[(*n)++] = g->rep;
		memset(&g->rep, 0, sizeof g->rep);
		g->dirty = false;
	}
	if (k > 0 && k < lg->ndirty)
		memmove(lg->dirty, lg->dirty + k,
			(lg->ndirty - k) * sizeof *lg->dirty);
	lg->ndirty -= k;
	/* More to come: stay readable. (A failure is signalled once, by the
	 * writer; every later drain returns it, so a loop that keeps polling
	 * does not spin on it.) */
	if (lg->ndirty > 0)
		raftlog_notify(lg);
	sisy_err rc = *n > 0 ? SISY_OK : check_failed(lg);
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

uint64_t sisy_raftlog_ticket(sisy_raftlog *lg)
{
	pthread_mutex_lock(&lg->mu);
	uint64_t t = lg->qseq_next - 1;
	pthread_mutex_unlock(&lg->mu);
	return t;
}

uint64_t sisy_raftlog_durable_ticket(sisy_raftlog *lg)
{
	pthread_mutex_lock(&lg->mu);
	uint64_t t = lg->durable_qseq;
	pthread_mutex_unlock(&lg->mu);
	return t;
}

sisy_err sisy_raftlog_flush(sisy_raftlog *lg)
{
	pthread_mutex_lock(&lg->mu);
	uint64_t target = lg->qseq_next - 1;
	sisy_err rc;
	if (lg->writer_asleep &&
	    lg->qn > 0) { /* asleep under unsafe_no_fsync */
		lg->writer_asleep = false;
		pthread_cond_signal(&lg->wake);
	}
	while ((rc = check_failed(lg)) == SISY_OK &&
	       lg->durable_qseq < target && !lg->nospace)
		pthread_cond_wait(&lg->done, &lg->mu);
	if (rc == SISY_OK && lg->durable_qseq < target)
		rc = sisy_errf(SISY_E_NOSPC, "raftlog: disk full: %s",
			       lg->nospmsg);
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

/* --- queries
 * ----------------------------------------------------------------------- */

sisy_err sisy_raftlog_term(sisy_raftlog *lg, uint64_t group, uint64_t index,
			   uint64_t *term)
{
	pthread_mutex_lock(&lg->mu);
	raftlog_group *g = raftlog_group_find(lg, group);
	sisy_err rc = check_failed(lg);
	if (rc == SISY_OK && g == NULL)
		rc = sisy_errf(SISY_E_NOTFOUND, "raftlog: no group %" PRIu64,
			       group);
	if (rc == SISY_OK && !raftlog_group_term(g, index, term))
		rc = sisy_errf(
		    SISY_E_RANGE,
		    "raftlog: group %" PRIu64 " has no index %" PRIu64
		    " (log is (%" PRIu64 ", %" PRIu64 "])",
		    group, index, g->base_index, raftlog_group_last(g));
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

sisy_err sisy_raftlog_state_of(sisy_raftlog *lg, uint64_t group,
			       sisy_raftlog_state *st)
{
	pthread_mutex_lock(&lg->mu);
	raftlog_group *g = raftlog_group_find(lg, group);
	sisy_err rc = check_failed(lg);
	if (rc == SISY_OK && g == NULL)
		rc = sisy_errf(SISY_E_NOTFOUND, "raftlog: no group %" PRIu64,
			       group);
	if (rc == SISY_OK) {
		st->base_index = g->base_index;
		st->base_term = g->base_term;
		st->last_index = raftlog_group_last(g);
		bool ok = raftlog_group_term(g, st->last_index, &st->last_term);
		assert(ok);
		(void)ok;
		st->has_hardstate = g->has_hs;
		st->hs = g->hs;
	}
	pthread_mutex_unlock(&lg->mu);
	return rc;
}

size_t sisy_raftlog_groups(sisy_raftlog *lg, uint64_t *out, size_t max)
{
	pthread_mutex_lock(&lg->mu);
	size_t n = lg->ngroups;
	for (size_t i = 0; i < n && i < max; i++)
		out[i] = lg->groups[i]->id;
	pthread_mutex_unlock(&lg->mu);
	return n;
}

void sisy_raftlog_stats_get(sisy_raftlog *lg, sisy_raftlog_stats *st)
{
	pthread_mutex_lock(&lg->mu);
	*st = lg->stats;
	pthread_mutex_unlock(&lg->mu);
}
