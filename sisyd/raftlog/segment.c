/* segment.c — segment files: the sorted table of them, creating one (header
 * and checkpoint, synced with its directory before any record goes in) and
 * sealing one (a SEAL record, synced before the next segment is created).
 * With unsafe_no_fsync neither is synced (writer.c).
 *
 * The checkpoint is a HARDSTATE (when set) and a BASE record for every group
 * the writer has written records of, so that the newest segment alone holds
 * every group's metadata and older segments can be deleted once their
 * entries are compacted away.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "internal.h"

raftlog_seg *raftlog_seg_find(sisy_raftlog *lg, uint64_t seq)
{
	size_t lo = 0, hi = lg->nsegs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lg->segs[mid]->seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < lg->nsegs && lg->segs[lo]->seq == seq ? lg->segs[lo] : NULL;
}

sisy_err raftlog_seg_push(sisy_raftlog *lg, raftlog_seg *s)
{
	assert(lg->nsegs == 0 || lg->segs[lg->nsegs - 1]->seq < s->seq);
	if (lg->nsegs == lg->capsegs) {
		size_t cap = lg->capsegs ? lg->capsegs * 2 : 16;
		raftlog_seg **v = realloc(lg->segs, cap * sizeof *v);
		if (v == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "raftlog: out of memory");
		lg->segs = v;
		lg->capsegs = cap;
	}
	lg->segs[lg->nsegs++] = s;
	lg->stats.segments = lg->nsegs;
	return SISY_OK;
}

void raftlog_seg_free(raftlog_seg *s)
{
	if (s == NULL)
		return;
	if (s->f != NULL)
		sisy_file_close(s->f);
	free(s->gmax);
	free(s);
}

sisy_err raftlog_seg_note(raftlog_seg *s, uint64_t group, uint64_t index)
{
	/* Few groups write to one segment in practice; the newest is usually
	 * the last one noted. */
	for (size_t i = s->ngmax; i-- > 0;) {
		if (s->gmax[i].group == group) {
			if (s->gmax[i].max_index < index)
				s->gmax[i].max_index = index;
			return SISY_OK;
		}
	}
	if (s->ngmax == s->capgmax) {
		size_t cap = s->capgmax ? s->capgmax * 2 : 8;
		raftlog_gmax *v = realloc(s->gmax, cap * sizeof *v);
		if (v == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "raftlog: out of memory");
		s->gmax = v;
		s->capgmax = cap;
	}
	s->gmax[s->ngmax++] = (raftlog_gmax){group, index};
	return SISY_OK;
}

sisy_err raftlog_seg_path_of(sisy_raftlog *lg, uint64_t seq, char *out,
			     size_t cap)
{
	return raftlog_seg_path(out, cap, lg->dir, seq);
}

/* Writes zeros over [from, to) of f. */
static sisy_err write_zeros(sisy_raftlog *lg, sisy_file *f, uint64_t from,
			    uint64_t to)
{
	while (from < to) {
		size_t n =
		    to - from < lg->nzeros ? (size_t)(to - from) : lg->nzeros;
		sisy_err rc = sisy_file_pwrite(f, lg->zeros, n, from);
		if (rc != SISY_OK)
			return rc;
		from += n;
	}
	return SISY_OK;
}

static sisy_err checkpoint(sisy_raftlog *lg, sisy_buf *b)
{
	sisy_err rc = SISY_OK;
	for (size_t i = 0; i < lg->nwg && rc == SISY_OK; i++) {
		const raftlog_wgroup *w = &lg->wg[i];
		if (w->has_hs)
			rc = raftlog_put_hardstate(b, w->id, w->hs.term,
						   w->hs.vote, w->hs.commit);
		if (rc == SISY_OK)
			rc = raftlog_put_base(b, w->id, w->base_index,
					      w->base_term);
	}
	return rc;
}

sisy_err raftlog_seg_create(sisy_raftlog *lg, uint64_t seq)
{
	char path[4096];
	sisy_buf b = {0};
	sisy_file *f = NULL;
	raftlog_seg *s = NULL;
	sisy_err rc = raftlog_seg_path_of(lg, seq, path, sizeof path);
	if (rc != SISY_OK)
		return rc;
	/* TRUNC, not EXCL: a file of this number can only be our own earlier
	 * attempt that failed (disk full) before anything in it counted. */
	if ((rc = sisy_fs_open(lg->o.fs, path,
			       SISY_O_WRITE | SISY_O_CREATE | SISY_O_TRUNC,
			       &f)) != SISY_OK)
		goto fail;
	if ((rc = sisy_buf_reserve(&b, RAFTLOG_HDR_SIZE)) != SISY_OK)
		goto fail;
	b.len = RAFTLOG_HDR_SIZE;
	if ((rc = checkpoint(lg, &b)) != SISY_OK)
		goto fail;
	/* The checkpoint goes out unsynced in one piece: the window covers
	 * it too. */
	raftlog_seghdr_encode(
	    b.data, seq, b.len > lg->torn_window ? b.len : lg->torn_window);
	if ((rc = sisy_file_pwrite(f, b.data, b.len, 0)) != SISY_OK)
		goto fail;
	uint64_t filled = b.len;
	if (lg->o.prefill_bytes > 0 && !lg->o.unsafe_no_fsync) {
		uint64_t to = b.len + lg->o.prefill_bytes;
		if (to > lg->o.segment_bytes)
			to = lg->o.segment_bytes > b.len ? lg->o.segment_bytes
							 : b.len;
		rc = write_zeros(lg, f, b.len, to);
		if (rc == SISY_OK)
			filled = to;
		else if (rc != SISY_E_NOSPC)
			goto fail;
	}
	if (!lg->o.unsafe_no_fsync &&
	    ((rc = sisy_file_sync(f)) != SISY_OK ||
	     (rc = sisy_fs_sync_dir(lg->o.fs, lg->dir)) != SISY_OK))
		goto fail;
	if ((s = calloc(1, sizeof *s)) == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
		goto fail;
	}
	s->seq = seq;
	s->f = f;
	s->body = s->end = b.len;
	pthread_mutex_lock(&lg->mu);
	rc = raftlog_seg_push(lg, s);
	pthread_mutex_unlock(&lg->mu);
	if (rc != SISY_OK)
		goto fail;
	lg->cur = s;
	lg->filled = filled;
	sisy_buf_free(&b);
	sisy_log(lg->o.logger, SISY_LOG_DEBUG, "raftlog",
		 "new segment %s (%zu groups in its checkpoint)", path,
		 lg->nwg);
	return SISY_OK;
fail:
	free(s);
	sisy_buf_free(&b);
	if (f != NULL)
		sisy_file_close(f);
	return rc;
}

sisy_err raftlog_seg_seal(sisy_raftlog *lg, raftlog_seg *s)
{
	uint8_t tmp[RAFTLOG_SEAL_MAX];
	sisy_buf b = {tmp, 0, sizeof tmp};
	sisy_err rc = raftlog_put_seal(&b, s->seq);
	assert(rc == SISY_OK && b.data == tmp); /* fits: never reallocates */
	if ((rc = sisy_file_pwrite(s->f, b.data, b.len, s->end)) != SISY_OK ||
	    (!lg->o.unsafe_no_fsync && (rc = sisy_file_sync(s->f)) != SISY_OK))
		return rc;
	s->end += b.len;
	s->sealed = true;
	return SISY_OK;
}
