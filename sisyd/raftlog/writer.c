/* writer.c — the log-writer thread: group commit.
 *
 * Each round it takes what is queued (up to batch_bytes of records, at least
 * one record), encodes the records, writes them at the tail of the current
 * segment, keeps prefill_bytes of zeros written ahead of the tail (so that
 * the fsync overwrites allocated blocks instead of growing the file), and
 * fsyncs once. Only then, under the lock, does it publish: record locations
 * go into the metas, written payloads into the cache, and per-group reports
 * of what is durable; the event fd is made readable.
 *
 * Rollover: when the next record would not fit in the segment (which holds
 * at least one record past its checkpoint), the records so far are written,
 * a SEAL is appended, the segment is synced, and a new segment is created
 * (header + checkpoint, synced with the directory) before anything goes
 * into it. A record never spans segments.
 *
 * With opts.unsafe_no_fsync the round's fsync is skipped (the records
 * are still published as durable, in order), and so are the zeros ahead
 * and the syncs of segment creation and sealing: the bytes reach the page
 * cache only, so the torn window below no longer holds after a machine
 * crash. Benchmarks only (raftlog.h). Rounds are then run by the log's
 * owner (sisy_raftlog_write_now) while this thread sleeps; it takes the
 * rounds of flush and close, and those that wait for disk space.
 *
 * Torn window: between two syncs of a segment the writer writes at most
 * max(batch_bytes, largest record) bytes of records (plus zeros). Recovery
 * relies on this bound, recorded in each segment header.
 *
 * Errors: ENOSPC keeps the batch and retries it every 100 ms, or at once
 * when a compaction may have freed space; appends are refused meanwhile.
 * With a compaction waiting, the ballast goes first (ballast.c).
 * Rewriting a batch from its start is safe: replaying a record twice in
 * order gives the same log. Any other error fails the log for good.
 *
 * Segment deletion: after each round, the oldest segments go while every
 * group they hold entries of has a durable base at or past those entries,
 * no reader has them pinned and they are not current.
 */
#include <pthread.h>
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "format.h"
#include "internal.h"

#define NOSPC_RETRY_NS 100000000LL

void raftlog_notify(sisy_raftlog *lg)
{
	uint64_t one = 1;
	/* One wake-up per drain is enough: every report published before
	 * the drain takes the lock is seen by it. */
	if (lg->efd_armed)
		return;
	lg->efd_armed = true;
	/* Fails only when the counter would overflow: it is readable then. */
	ssize_t r = write(lg->efd, &one, sizeof one);
	(void)r;
}

sisy_err raftlog_wgroup_get(sisy_raftlog *lg, uint64_t id, raftlog_wgroup **out)
{
	size_t lo = 0, hi = lg->nwg;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lg->wg[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < lg->nwg && lg->wg[lo].id == id) {
		*out = &lg->wg[lo];
		return SISY_OK;
	}
	if (lg->nwg == lg->capwg) {
		size_t cap = lg->capwg ? lg->capwg * 2 : 16;
		raftlog_wgroup *v = realloc(lg->wg, cap * sizeof *v);
		if (v == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "raftlog: out of memory");
		lg->wg = v;
		lg->capwg = cap;
	}
	memmove(lg->wg + lo + 1, lg->wg + lo, (lg->nwg - lo) * sizeof *lg->wg);
	lg->wg[lo] = (raftlog_wgroup){.id = id};
	lg->nwg++;
	*out = &lg->wg[lo];
	return SISY_OK;
}

static raftlog_wgroup *wgroup_find(sisy_raftlog *lg, uint64_t id)
{
	size_t lo = 0, hi = lg->nwg;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lg->wg[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < lg->nwg && lg->wg[lo].id == id ? &lg->wg[lo] : NULL;
}

/* --- one round -------------------------------------------------------------
 */

/* What the checkpoint of the next segment must carry, once records are in
 * the file (a roll syncs them before the new checkpoint is written). */
static void note_written(sisy_raftlog *lg, size_t from, size_t to)
{
	for (size_t k = from; k < to; k++) {
		const raftlog_prec *p = &lg->batch[k];
		/* Entries change no checkpoint: no lookup for them (nearly
		 * every record). */
		if (p->type == RAFTLOG_REC_ENTRY)
			continue;
		raftlog_wgroup *w = wgroup_find(lg, p->group);
		assert(w != NULL); /* made by encode() */
		if (p->type == RAFTLOG_REC_HARDSTATE) {
			w->has_hs = true;
			w->hs = (sisy_raftlog_hardstate){p->a, p->b, p->c};
		} else if (p->type == RAFTLOG_REC_BASE) {
			w->base_index = p->a;
			w->base_term = p->b;
		}
	}
}

/* Writes the encoded records batch[from, to) at the segment's tail. */
static sisy_err flush_wbuf(sisy_raftlog *lg, size_t from, size_t to)
{
	if (lg->wbuf.len == 0)
		return SISY_OK;
	sisy_err rc = sisy_file_pwrite(lg->cur->f, lg->wbuf.data, lg->wbuf.len,
				       lg->cur->end);
	if (rc != SISY_OK)
		return rc;
	lg->cur->end += lg->wbuf.len;
	lg->wbytes += lg->wbuf.len;
	lg->wbuf.len = 0;
	note_written(lg, from, to);
	return SISY_OK;
}

static sisy_err roll(sisy_raftlog *lg)
{
	sisy_err rc;
	if (!lg->cur->sealed && (rc = raftlog_seg_seal(lg, lg->cur)) != SISY_OK)
		return rc;
	return raftlog_seg_create(lg, lg->cur->seq + 1);
}

/* A group whose wgroup is known to exist (wgroups are never removed), so
 * that the records of one group in a row look it up once. */
typedef struct wg_known {
	bool ok;
	uint64_t id;
} wg_known;

/* raftlog_seg_note, with the usual case (the same group as the last note)
 * decided here without a call. */
static sisy_err seg_note(raftlog_seg *s, uint64_t group, uint64_t index)
{
	raftlog_gmax *last = s->ngmax > 0 ? &s->gmax[s->ngmax - 1] : NULL;
	if (last != NULL && last->group == group) {
		if (last->max_index < index)
			last->max_index = index;
		return SISY_OK;
	}
	return raftlog_seg_note(s, group, index);
}

static sisy_err encode(sisy_raftlog *lg, raftlog_prec *p, wg_known *known)
{
	size_t start = lg->wbuf.len;
	sisy_err rc = SISY_OK;
	if (!known->ok || known->id != p->group) {
		raftlog_wgroup *w; /* made now so that seg_done() and the
				    * checkpoint know the group */
		if ((rc = raftlog_wgroup_get(lg, p->group, &w)) != SISY_OK)
			return rc;
		*known = (wg_known){true, p->group};
	}
	switch (p->type) {
	case RAFTLOG_REC_ENTRY:
		rc = raftlog_put_entry(&lg->wbuf, p->group, p->a, p->b,
				       p->item->payload, p->item->len);
		if (rc == SISY_OK)
			rc = seg_note(lg->cur, p->group, p->a);
		break;
	case RAFTLOG_REC_HARDSTATE:
		rc = raftlog_put_hardstate(&lg->wbuf, p->group, p->a, p->b,
					   p->c);
		break;
	case RAFTLOG_REC_BASE:
		rc = raftlog_put_base(&lg->wbuf, p->group, p->a, p->b);
		break;
	default:
		assert(!"unknown queued record");
	}
	if (rc != SISY_OK)
		return rc;
	p->seq = lg->cur->seq;
	p->off = (uint32_t)(lg->cur->end + start);
	p->size = (uint32_t)(lg->wbuf.len - start);
	return SISY_OK;
}

/* Keeps zeros written ahead of the tail; a full disk only skips it. */
static sisy_err prefill(sisy_raftlog *lg)
{
	raftlog_seg *s = lg->cur;
	uint64_t want = lg->o.prefill_bytes;
	if (want == 0 || lg->o.unsafe_no_fsync ||
	    lg->filled >= s->end + want / 2)
		return SISY_OK;
	uint64_t from = lg->filled > s->end ? lg->filled : s->end;
	uint64_t to = from + want;
	if (to > lg->o.segment_bytes)
		to = lg->o.segment_bytes;
	if (to <= from)
		return SISY_OK;
	for (uint64_t off = from; off < to;) {
		size_t n =
		    to - off < lg->nzeros ? (size_t)(to - off) : lg->nzeros;
		sisy_err rc = sisy_file_pwrite(s->f, lg->zeros, n, off);
		if (rc == SISY_E_NOSPC)
			return SISY_OK;
		if (rc != SISY_OK)
			return rc;
		off += n;
		lg->filled = off;
	}
	return SISY_OK;
}

static sisy_err write_records(sisy_raftlog *lg, raftlog_seg **s0, uint64_t *e0)
{
	sisy_err rc;
	size_t first = 0; /* first record in wbuf */
	wg_known known = {false, 0};
	if (lg->cur->sealed && (rc = roll(lg)) != SISY_OK)
		return rc;
	*s0 = lg->cur;
	*e0 = lg->cur->end;
	for (size_t k = 0; k < lg->nbatch; k++) {
		raftlog_prec *p = &lg->batch[k];
		raftlog_seg *s = lg->cur;
		uint64_t tail = s->end + lg->wbuf.len;
		if (tail > s->body &&
		    tail + raftlog_est_size(p) + RAFTLOG_SEAL_MAX >
			lg->o.segment_bytes) {
			if ((rc = flush_wbuf(lg, first, k)) != SISY_OK ||
			    (rc = roll(lg)) != SISY_OK)
				return rc;
			first = k;
			*s0 = lg->cur;
			*e0 = lg->cur->end;
		}
		if ((rc = encode(lg, p, &known)) != SISY_OK)
			return rc;
	}
	if ((rc = flush_wbuf(lg, first, lg->nbatch)) != SISY_OK ||
	    (rc = prefill(lg)) != SISY_OK)
		return rc;
	if (lg->o.unsafe_no_fsync)
		return SISY_OK; /* raftlog.h: benchmarks only */
	return sisy_file_sync(lg->cur->f);
}

/* One round. On failure the tail goes back to where this round's unsynced
 * records began, so a retry overwrites them and the bytes unsynced at any
 * time stay within the torn window. */
static sisy_err write_batch(sisy_raftlog *lg)
{
	raftlog_seg *s0 = NULL;
	uint64_t e0 = 0;
	lg->wbuf.len = 0;
	sisy_err rc = write_records(lg, &s0, &e0);
	if (rc != SISY_OK && s0 != NULL && s0 == lg->cur && !s0->sealed)
		s0->end = e0;
	return rc;
}

/* --- after a round (lock held)
 * ------------------------------------------------ */

static void report(sisy_raftlog *lg, raftlog_group *g, const raftlog_prec *p)
{
	sisy_raftlog_durable *r = &g->rep;
	r->group = g->id;
	switch (p->type) {
	case RAFTLOG_REC_ENTRY:
		r->what |= SISY_RAFTLOG_DURABLE_ENTRIES;
		r->index = p->a;
		r->term = p->b;
		break;
	case RAFTLOG_REC_HARDSTATE:
		r->what |= SISY_RAFTLOG_DURABLE_HARDSTATE;
		r->hs = (sisy_raftlog_hardstate){p->a, p->b, p->c};
		break;
	case RAFTLOG_REC_BASE:
		r->what |= SISY_RAFTLOG_DURABLE_SNAPSHOT;
		r->snap_index = p->a;
		r->snap_term = p->b;
		break;
	}
	if (!g->dirty) {
		g->dirty = true;
		assert(lg->ndirty < lg->capgroups);
		lg->dirty[lg->ndirty++] = g;
	}
}

static void publish(sisy_raftlog *lg)
{
	raftlog_group *g = NULL;
	for (size_t k = 0; k < lg->nbatch; k++) {
		raftlog_prec *p = &lg->batch[k];
		/* Groups live until close: a pointer found for one record
		 * serves the records of the same group that follow it. */
		if (g == NULL || g->id != p->group)
			g = raftlog_group_find(lg, p->group);
		assert(g != NULL);
		report(lg, g, p);
		if (p->type == RAFTLOG_REC_ENTRY) {
			raftlog_item *it = p->item;
			if (p->a > g->base_index &&
			    p->a <= raftlog_group_last(g)) {
				raftlog_meta *m = raftlog_group_meta(g, p->a);
				if (m->item == it) {
					m->seq = p->seq;
					m->off = p->off;
					m->size = p->size;
					raftlog_cache_add(lg, it);
				}
			}
			raftlog_item_unref(lg, it);
			p->item = NULL;
		}
		lg->durable_qseq = p->qseq;
	}
	lg->stats.batches++;
	lg->stats.records += lg->nbatch;
	lg->stats.bytes += lg->wbytes;
	lg->wbytes = 0;
	lg->nbatch = 0;
	raftlog_cache_evict(lg);
}

static bool seg_done(sisy_raftlog *lg, const raftlog_seg *s)
{
	for (size_t i = 0; i < s->ngmax; i++) {
		const raftlog_wgroup *w = wgroup_find(lg, s->gmax[i].group);
		if (w == NULL || w->durable_base < s->gmax[i].max_index)
			return false;
	}
	return true;
}

/* Drops the oldest segments that nothing needs. Called with the lock held;
 * unlinks without it. */
static sisy_err delete_segments(sisy_raftlog *lg)
{
	raftlog_seg *gone[16];
	size_t n = 0;
	while (n < 16 && lg->nsegs > 1 && lg->segs[0] != lg->cur &&
	       lg->segs[0]->pins == 0 && seg_done(lg, lg->segs[0])) {
		gone[n++] = lg->segs[0];
		memmove(lg->segs, lg->segs + 1,
			(lg->nsegs - 1) * sizeof *lg->segs);
		lg->nsegs--;
	}
	if (n == 0)
		return SISY_OK;
	lg->stats.segments = lg->nsegs;
	lg->stats.segments_deleted += n;
	pthread_mutex_unlock(&lg->mu);
	sisy_err rc = SISY_OK;
	for (size_t i = 0; i < n; i++) {
		char path[4096];
		if (rc == SISY_OK)
			rc = raftlog_seg_path_of(lg, gone[i]->seq, path,
						 sizeof path);
		if (rc == SISY_OK)
			rc = sisy_fs_unlink(lg->o.fs, path);
		raftlog_seg_free(gone[i]);
	}
	/* Oldest first and one directory sync: after a crash the segments
	 * left are still one consecutive run. */
	if (rc == SISY_OK)
		rc = sisy_fs_sync_dir(lg->o.fs, lg->dir);
	if (rc == SISY_OK && !lg->ballast)
		rc = raftlog_ballast_make(lg);
	pthread_mutex_lock(&lg->mu);
	return rc;
}

/* --- the thread
 * ---------------------------------------------------------------- */

static void fail(sisy_raftlog *lg, sisy_err rc)
{
	if (lg->failed == SISY_OK) {
		lg->failed = rc;
		snprintf(lg->failmsg, sizeof lg->failmsg, "%s (%s)",
			 sisy_errmsg(), sisy_errname(rc));
		sisy_log(lg->o.logger, SISY_LOG_ERROR, "raftlog",
			 "the raft log failed and stopped: %s", lg->failmsg);
	}
	pthread_cond_broadcast(&lg->done);
}

/* Is a compaction or snapshot record waiting (lock held)? */
static bool base_queued(sisy_raftlog *lg)
{
	for (size_t i = 0; i < lg->qn; i++)
		if (lg->q[(lg->qhead + i) % lg->qcap].type == RAFTLOG_REC_BASE)
			return true;
	for (size_t k = 0; k < lg->nbatch; k++)
		if (lg->batch[k].type == RAFTLOG_REC_BASE)
			return true;
	return false;
}

static void take_batch(sisy_raftlog *lg)
{
	size_t bytes = 0, n = 0;
	assert(lg->nbatch == 0 && lg->qn > 0);
	while (lg->qn > 0) {
		raftlog_prec *p = &lg->q[lg->qhead];
		size_t sz = raftlog_est_size(p);
		if (lg->nbatch > 0 && bytes + sz > lg->o.batch_bytes)
			break;
		if (lg->nbatch == lg->capbatch) {
			size_t cap = lg->capbatch * 2;
			raftlog_prec *v = realloc(lg->batch, cap * sizeof *v);
			if (v == NULL)
				break; /* capbatch >= 1: never empty */
			lg->batch = v;
			lg->capbatch = cap;
		}
		lg->batch[lg->nbatch++] = *p;
		bytes += sz;
		n++;
		if (++lg->qhead == lg->qcap)
			lg->qhead = 0;
		lg->qn--;
	}
	/* raftlog_prec_cost summed: est_size + the record's size each */
	assert(lg->qbytes >= bytes + n * sizeof(raftlog_prec));
	lg->qbytes -= bytes + n * sizeof(raftlog_prec);
}

static void wait_retry(sisy_raftlog *lg)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	long long ns = ts.tv_nsec + NOSPC_RETRY_NS;
	ts.tv_sec += ns / 1000000000LL;
	ts.tv_nsec = ns % 1000000000LL;
	while (!lg->kick && !lg->stop) {
		lg->writer_asleep = true;
		int e = pthread_cond_timedwait(&lg->wake, &lg->mu, &ts);
		lg->writer_asleep = false;
		if (e == ETIMEDOUT)
			break;
	}
	lg->kick = false;
}

/* Writes the batch taken (lock not held). */
static sisy_err round_write(sisy_raftlog *lg)
{
	sisy_err rc = write_batch(lg);
	if (rc == SISY_OK) {
		for (size_t k = 0; k < lg->nbatch; k++) {
			raftlog_prec *p = &lg->batch[k];
			if (p->type != RAFTLOG_REC_BASE)
				continue; /* only bases move it: no lookup */
			raftlog_wgroup *w = wgroup_find(lg, p->group);
			if (w != NULL)
				w->durable_base = p->a;
		}
	}
	return rc;
}

/* Publishes a round's outcome (lock held). */
static void round_done(sisy_raftlog *lg, sisy_err rc)
{
	if (rc == SISY_OK) {
		publish(lg);
		if (lg->nospace)
			sisy_log(lg->o.logger, SISY_LOG_WARN, "raftlog",
				 "disk space is back: appends resume");
		lg->nospace = false;
		rc = delete_segments(lg);
	} else if (rc == SISY_E_NOSPC) {
		if (!lg->nospace)
			sisy_log(lg->o.logger, SISY_LOG_ERROR, "raftlog",
				 "disk full, appends are refused: %s",
				 sisy_errmsg());
		snprintf(lg->nospmsg, sizeof lg->nospmsg, "%s", sisy_errmsg());
		lg->nospace = true;
		rc = SISY_OK;
	}
	if (rc != SISY_OK)
		fail(lg, rc);
	pthread_cond_broadcast(&lg->done);
	raftlog_notify(lg);
}

void sisy_raftlog_write_now(sisy_raftlog *lg)
{
	if (!lg->o.unsafe_no_fsync)
		return;
	pthread_mutex_lock(&lg->mu);
	/* Only while the thread holds no batch (a batch kept for a full
	 * disk stays with it); inline_busy keeps it from taking one. */
	while (lg->failed == SISY_OK && !lg->nospace && !lg->stop &&
	       lg->nbatch == 0 && lg->qn > 0) {
		lg->inline_busy = true;
		take_batch(lg);
		pthread_mutex_unlock(&lg->mu);
		sisy_err rc = round_write(lg);
		pthread_mutex_lock(&lg->mu);
		round_done(lg, rc);
		lg->inline_busy = false;
	}
	if ((lg->qn > 0 || lg->stop) && lg->writer_asleep) {
		/* what could not be written here, or a close waiting */
		lg->writer_asleep = false;
		pthread_cond_signal(&lg->wake);
	}
	pthread_mutex_unlock(&lg->mu);
}

void *raftlog_writer_main(void *arg)
{
	sisy_raftlog *lg = arg;
	/* named for top -H, perf and gdb */
	pthread_setname_np(pthread_self(), "sisy-raftlog");
	pthread_mutex_lock(&lg->mu);
	for (;;) {
		if (lg->failed != SISY_OK)
			break;
		if (lg->inline_busy) {
			/* a caller's round (sisy_raftlog_write_now) holds the
			 * batch; the rest of the queue waits for it */
			lg->writer_asleep = true;
			pthread_cond_wait(&lg->wake, &lg->mu);
			lg->writer_asleep = false;
			continue;
		}
		if (lg->nbatch == 0) {
			if (lg->qn == 0) {
				if (lg->stop)
					break;
				lg->writer_asleep = true;
				pthread_cond_wait(&lg->wake, &lg->mu);
				lg->writer_asleep = false;
				continue;
			}
			take_batch(lg);
		} else if (lg->nospace) {
			if (lg->stop)
				break; /* close reports the disk is full */
			if (lg->ballast && base_queued(lg)) {
				pthread_mutex_unlock(&lg->mu);
				sisy_err rc = raftlog_ballast_release(lg);
				pthread_mutex_lock(&lg->mu);
				if (rc != SISY_OK) {
					fail(lg, rc);
					continue;
				}
			} else {
				wait_retry(lg);
			}
		}
		pthread_mutex_unlock(&lg->mu);
		sisy_err rc = round_write(lg);
		pthread_mutex_lock(&lg->mu);
		round_done(lg, rc);
	}
	raftlog_notify(lg);
	pthread_mutex_unlock(&lg->mu);
	return NULL;
}
