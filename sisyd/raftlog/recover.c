/* recover.c — opening a log directory: replay every segment in order and
 * rebuild each group's metas, hard state and base; cut a torn tail; refuse
 * corruption with the file and offset; start a fresh current segment.
 *
 * Replay rules (the same the live calls follow): an ENTRY at index i drops
 * the group's entries >= i first; a BASE applies the snapshot rule.
 * Replay may start in the middle of a group's history, because segments
 * whose entries were all compacted are deleted: the oldest segment left
 * can hold entries that a later append replaced, past a gap. So an entry
 * past last + 1 restarts the log there with an "unknown" base (term 0),
 * and so does an entry below an unknown base (in the live log, that append
 * replaced everything replay knows of). An entry at or below a known base
 * is stale and skipped. Deletion only happens below a durable BASE, so a
 * later BASE record settles every unknown base; if none does, a segment
 * is missing and recovery says so.
 *
 * Telling a torn tail from corruption. Every segment but the newest ends
 * with a SEAL that was synced before the next segment was created, so a bad
 * record anywhere in them is corruption. In the newest segment, the bytes
 * written since its last sync lie within torn_window bytes (segment header)
 * of the last synced record: if a bad record at X has only zeros from
 * X + torn_window on, it is a torn write and the log ends at X; non-zero
 * bytes further on are synced data behind damage, so it is corruption. (A
 * bad record inside the final window is treated as torn: it cannot be told
 * apart from one.) A newest segment with a bad header, no ENTRY record and
 * no non-zero byte past what an unsynced creation writes is a creation the
 * crash interrupted, and is removed, provided the segment before it is
 * there and sealed (as it always is while a creation is under way).
 *
 * After replay the newest segment, unless sealed, is truncated at its end,
 * sealed and synced; then a new segment (with the checkpoint) is created.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "internal.h"

#define SCAN_CHUNK ((size_t)1 << 20)

typedef struct scan {
	sisy_file *f;
	const char *path;
	uint64_t fsize;
	uint8_t *buf;
	size_t cap;
	uint64_t boff; /* the window [boff, boff + blen) of the file */
	size_t blen;
} scan;

/* Makes [off, off + want) readable if the file holds it; *avail is what
 * the window holds from off on (less only at the end of the file). */
static sisy_err scan_at(scan *s, uint64_t off, size_t want, const uint8_t **p,
			size_t *avail)
{
	bool hit = off >= s->boff && off + want <= s->boff + s->blen;
	if (!hit && off < s->fsize) {
		size_t n = want > SCAN_CHUNK ? want : SCAN_CHUNK;
		if (n > s->fsize - off)
			n = (size_t)(s->fsize - off);
		if (n > s->cap) {
			uint8_t *b = realloc(s->buf, n);
			if (b == NULL)
				return sisy_errf(SISY_E_NOMEM,
						 "raftlog: out of memory");
			s->buf = b;
			s->cap = n;
		}
		size_t got;
		sisy_err rc = sisy_file_pread(s->f, s->buf, n, off, &got);
		if (rc != SISY_OK)
			return rc;
		s->boff = off;
		s->blen = got;
	}
	if (off < s->boff || off >= s->boff + s->blen) {
		*p = NULL;
		*avail = 0;
		return SISY_OK;
	}
	*p = s->buf + (off - s->boff);
	*avail = (size_t)(s->boff + s->blen - off);
	return SISY_OK;
}

/* The offset just past the last non-zero byte in [from, fsize), or `from`
 * when there is none. */
static sisy_err last_nonzero(scan *s, uint64_t from, uint64_t *end)
{
	*end = from;
	for (uint64_t off = from; off < s->fsize;) {
		const uint8_t *p = NULL;
		size_t n = 0;
		sisy_err rc = scan_at(s, off, 1, &p, &n);
		if (rc != SISY_OK)
			return rc;
		if (n == 0)
			break;
		for (size_t i = n; i-- > 0;) {
			if (p[i] != 0) {
				*end = off + i + 1;
				break;
			}
		}
		off += n;
	}
	return SISY_OK;
}

/* --- replaying one record
 * ------------------------------------------------------ */

static sisy_err apply(sisy_raftlog *lg, raftlog_seg *seg, const raftlog_rec *r,
		      uint64_t off)
{
	raftlog_group *g;
	sisy_err rc = raftlog_group_create(lg, r->group, &g);
	if (rc != SISY_OK)
		return rc;
	switch (r->type) {
	case RAFTLOG_REC_ENTRY: {
		bool known = g->base_term != 0 || g->base_index == 0;
		if (r->index <= g->base_index && known)
			return SISY_OK; /* compacted before this was written */
		/* Below an unknown start (this append replaced everything we
		 * know of) or past a gap: the log restarts here. */
		if (r->index <= g->base_index ||
		    r->index > raftlog_group_last(g) + 1)
			raftlog_group_reset(lg, g, r->index - 1, 0);
		raftlog_meta m = {.term = r->term,
				  .seq = seg->seq,
				  .off = (uint32_t)off,
				  .size = (uint32_t)r->size};
		if ((rc = raftlog_group_put(lg, g, r->index, &m)) != SISY_OK)
			return rc;
		return raftlog_seg_note(seg, r->group, r->index);
	}
	case RAFTLOG_REC_HARDSTATE:
		g->has_hs = true;
		g->hs = (sisy_raftlog_hardstate){r->term, r->vote, r->commit};
		return SISY_OK;
	case RAFTLOG_REC_BASE:
		raftlog_group_set_base(lg, g, r->index, r->term);
		return SISY_OK;
	default:
		assert(!"SEAL is handled by the caller");
		return SISY_E_INTERNAL;
	}
}

/* --- one segment
 * ------------------------------------------------------------------ */

typedef enum seg_outcome { SEG_KEPT, SEG_REMOVED } seg_outcome;

static sisy_err remove_torn_creation(sisy_raftlog *lg, scan *s)
{
	sisy_log(lg->o.logger, SISY_LOG_WARN, "raftlog",
		 "%s: removing a segment whose creation a crash interrupted",
		 s->path);
	sisy_err rc = sisy_file_close(s->f);
	s->f = NULL;
	if (rc == SISY_OK)
		rc = sisy_fs_unlink(lg->o.fs, s->path);
	if (rc == SISY_OK)
		rc = sisy_fs_sync_dir(lg->o.fs, lg->dir);
	return rc;
}

/* A newest segment with a bad header: is it a creation a crash cut short?
 * Records are written only after the header and checkpoint were synced, so
 * it is not if an ENTRY record follows, or if non-zero bytes reach past
 * what an unsynced header, checkpoint (one HARDSTATE and one BASE per group
 * known by now) and torn window can cover. */
static sisy_err torn_creation(sisy_raftlog *lg, scan *s, bool *entries)
{
	uint64_t bound = lg->torn_window + RAFTLOG_HDR_SIZE +
			 (uint64_t)lg->ngroups * 2 * (RAFTLOG_REC_HDR + 40);
	uint64_t z, off = RAFTLOG_HDR_SIZE;
	sisy_err rc = last_nonzero(s, 0, &z);
	if (rc != SISY_OK)
		return rc;
	*entries = z > bound;
	while (!*entries && off < s->fsize) {
		const uint8_t *p;
		size_t avail, need;
		raftlog_rec r;
		if ((rc = scan_at(s, off, RAFTLOG_REC_HDR, &p, &avail)) !=
		    SISY_OK)
			return rc;
		raftlog_parse pr = raftlog_rec_decode(p, avail, &r, &need);
		if (pr == RAFTLOG_PARSE_SHORT && off + need <= s->fsize) {
			if ((rc = scan_at(s, off, need, &p, &avail)) != SISY_OK)
				return rc;
			pr = raftlog_rec_decode(p, avail, &r, &need);
		}
		if (pr != RAFTLOG_PARSE_OK)
			break;
		*entries = r.type == RAFTLOG_REC_ENTRY;
		off += r.size;
	}
	return SISY_OK;
}

/* Reads the records from RAFTLOG_HDR_SIZE on; *end is where the valid ones
 * stop (after the SEAL when sealed). */
static sisy_err replay(sisy_raftlog *lg, scan *s, raftlog_seg *seg,
		       uint64_t *end)
{
	uint64_t off = RAFTLOG_HDR_SIZE;
	for (;;) {
		const uint8_t *p;
		size_t avail, need = RAFTLOG_REC_HDR;
		raftlog_rec r;
		sisy_err rc = scan_at(s, off, need, &p, &avail);
		if (rc != SISY_OK)
			return rc;
		raftlog_parse pr = avail
				       ? raftlog_rec_decode(p, avail, &r, &need)
				       : RAFTLOG_PARSE_BAD;
		if (pr == RAFTLOG_PARSE_SHORT && off + need <= s->fsize) {
			if ((rc = scan_at(s, off, need, &p, &avail)) != SISY_OK)
				return rc;
			pr = raftlog_rec_decode(p, avail, &r, &need);
		}
		if (pr != RAFTLOG_PARSE_OK)
			break;
		if (r.type == RAFTLOG_REC_SEAL) {
			if (r.seq != seg->seq)
				return sisy_errf(SISY_E_CORRUPT,
						 "raftlog: %s: seal of segment "
						 "%" PRIu64
						 " at offset %" PRIu64
						 "; the log is corrupt",
						 s->path, r.seq, off);
			seg->sealed = true;
			off += r.size;
			break;
		}
		if ((rc = apply(lg, seg, &r, off)) != SISY_OK)
			return rc;
		off += r.size;
	}
	*end = off;
	return SISY_OK;
}

static sisy_err recover_segment(sisy_raftlog *lg, uint64_t seq, bool is_last,
				seg_outcome *outcome)
{
	char path[4096];
	scan s = {0};
	raftlog_seg *seg = NULL;
	raftlog_seghdr h = {0};
	uint64_t end = 0, z = 0;
	*outcome = SEG_KEPT;

	sisy_err rc = raftlog_seg_path_of(lg, seq, path, sizeof path);
	if (rc != SISY_OK)
		return rc;
	s.path = path;
	if ((rc = sisy_fs_open(lg->o.fs, path, SISY_O_WRITE, &s.f)) !=
		SISY_OK ||
	    (rc = sisy_file_size(s.f, &s.fsize)) != SISY_OK)
		goto fail;
	const uint8_t *p = NULL;
	size_t avail = 0;
	if ((rc = scan_at(&s, 0, RAFTLOG_HDR_SIZE, &p, &avail)) != SISY_OK)
		goto fail;
	rc = avail >= RAFTLOG_HDR_SIZE
		 ? raftlog_seghdr_decode(p, path, &h)
		 : sisy_errf(SISY_E_CORRUPT,
			     "raftlog: %s: %" PRIu64 " bytes, shorter than "
			     "a segment header",
			     path, s.fsize);
	/* A creation can only have been interrupted with the previous segment
	 * sealed and still there: it is deleted only once a later segment
	 * was fully created. */
	bool prev_sealed =
	    seq == 1 ||
	    (lg->nsegs > 0 && lg->segs[lg->nsegs - 1]->seq == seq - 1 &&
	     lg->segs[lg->nsegs - 1]->sealed);
	if (rc == SISY_E_CORRUPT && is_last && prev_sealed) {
		bool entries;
		char why[256];
		snprintf(why, sizeof why, "%s", sisy_errmsg());
		if ((rc = torn_creation(lg, &s, &entries)) != SISY_OK)
			goto fail;
		if (!entries) {
			*outcome = SEG_REMOVED;
			rc = remove_torn_creation(lg, &s);
			goto fail; /* nothing more to do either way */
		}
		rc = sisy_errf(SISY_E_CORRUPT,
			       "%s; entries follow it, so this is damage, not "
			       "an interrupted segment creation",
			       why);
	}
	if (rc != SISY_OK)
		goto fail;
	if (h.seq != seq) {
		rc = sisy_errf(SISY_E_CORRUPT,
			       "raftlog: %s: header says segment %" PRIu64
			       "; the log is corrupt",
			       path, h.seq);
		goto fail;
	}
	if ((seg = calloc(1, sizeof *seg)) == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
		goto fail;
	}
	seg->seq = seq;
	if ((rc = replay(lg, &s, seg, &end)) != SISY_OK)
		goto fail;
	if (!seg->sealed) {
		if (!is_last) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "raftlog: %s: bad record at offset "
				       "%" PRIu64 " before the segment's seal; "
				       "the log is corrupt",
				       path, end);
			goto fail;
		}
		if ((rc = last_nonzero(&s, end, &z)) != SISY_OK)
			goto fail;
		if (z > end + h.torn_window) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "raftlog: %s: bad record at offset "
				       "%" PRIu64 " with data up to offset "
				       "%" PRIu64 " behind it; the log is "
				       "corrupt",
				       path, end, z);
			goto fail;
		}
		if (z > end)
			sisy_log(lg->o.logger, SISY_LOG_WARN, "raftlog",
				 "%s: torn write at offset %" PRIu64
				 " (%" PRIu64 " bytes) cut off",
				 path, end, z - end);
	}
	seg->f = s.f;
	seg->body = RAFTLOG_HDR_SIZE;
	seg->end = end;
	s.f = NULL;
	if ((rc = raftlog_seg_push(lg, seg)) != SISY_OK) {
		s.f = seg->f;
		seg->f = NULL;
		goto fail;
	}
	free(s.buf);
	return SISY_OK;
fail:
	raftlog_seg_free(seg);
	if (s.f != NULL)
		sisy_file_close(s.f);
	free(s.buf);
	return rc;
}

/* --- the directory
 * ---------------------------------------------------------------- */

typedef struct seqlist {
	uint64_t *v;
	size_t n, cap;
	bool oom;
} seqlist;

static void list_cb(void *ctx, const char *name)
{
	seqlist *l = ctx;
	uint64_t seq = raftlog_seg_parse_name(name);
	if (seq == 0 || l->oom)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		uint64_t *v = realloc(l->v, cap * sizeof *v);
		if (v == NULL) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = seq;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Seals the newest recovered segment at its end so that appends go to a
 * fresh one: the bytes after `end` (torn or zero) are cut off first. */
static sisy_err seal_last(sisy_raftlog *lg)
{
	raftlog_seg *s = lg->segs[lg->nsegs - 1];
	if (s->sealed)
		return SISY_OK;
	sisy_err rc = sisy_file_truncate(s->f, s->end);
	if (rc != SISY_OK)
		return rc;
	return raftlog_seg_seal(lg, s); /* syncs the truncation too */
}

static sisy_err check_groups(sisy_raftlog *lg)
{
	for (size_t i = 0; i < lg->ngroups; i++) {
		raftlog_group *g = lg->groups[i];
		if (g->base_index > 0 && g->base_term == 0)
			return sisy_errf(SISY_E_CORRUPT,
					 "raftlog: %s: group %" PRIu64
					 " has entries from index %" PRIu64
					 " on but nothing says where its log "
					 "starts; a segment is missing",
					 lg->dir, g->id, g->base_index + 1);
		raftlog_wgroup *w;
		sisy_err rc = raftlog_wgroup_get(lg, g->id, &w);
		if (rc != SISY_OK)
			return rc;
		w->has_hs = g->has_hs;
		w->hs = g->hs;
		w->base_index = w->durable_base = g->base_index;
		w->base_term = g->base_term;
	}
	return SISY_OK;
}

sisy_err raftlog_recover(sisy_raftlog *lg)
{
	seqlist l = {0};
	sisy_err rc = sisy_fs_list(lg->o.fs, lg->dir, list_cb, &l);
	if (rc == SISY_OK && l.oom)
		rc = sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
	if (rc != SISY_OK)
		goto out;
	if (l.n > 0)
		qsort(l.v, l.n, sizeof *l.v, cmp_u64);
	for (size_t k = 1; k < l.n; k++) {
		if (l.v[k] != l.v[k - 1] + 1) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "raftlog: %s: segment %016" PRIx64
				       ".rlog is missing (have %016" PRIx64
				       " and %016" PRIx64 "); the log is "
				       "incomplete",
				       lg->dir, l.v[k - 1] + 1, l.v[k - 1],
				       l.v[k]);
			goto out;
		}
	}
	uint64_t next = 1;
	for (size_t k = 0; k < l.n; k++) {
		seg_outcome o;
		rc = recover_segment(lg, l.v[k], k + 1 == l.n, &o);
		if (rc != SISY_OK)
			goto out;
		next = l.v[k] + 1;
	}
	if (lg->nsegs > 0 && (rc = seal_last(lg)) != SISY_OK)
		goto out;
	if ((rc = check_groups(lg)) != SISY_OK)
		goto out;
	/* A removed torn creation leaves its number free; reuse it. */
	if (lg->nsegs > 0)
		next = lg->segs[lg->nsegs - 1]->seq + 1;
	rc = raftlog_seg_create(lg, next);
out:
	free(l.v);
	return rc;
}
