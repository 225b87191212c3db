/* read.c — reading entries back for replication and apply.
 *
 * Under the lock: pick the entries of [lo, hi) within the byte budget; take
 * a reference on each cached (or not yet written) payload and pin the
 * segment of each other one. Without the lock: copy cached payloads, pread
 * and verify the rest (checksum, group, index, term), so a slow disk never
 * holds the lock. Then unpin and drop the references. A pinned segment is
 * never deleted, so the location stays valid.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "format.h"
#include "internal.h"

/* Entries one read returns at most, whatever their size. */
#define READ_MAX_ENTRIES 65536

typedef struct pick {
	uint64_t index, term;
	raftlog_item *item; /* referenced, or NULL: read (seg, off, size) */
	raftlog_seg *seg;   /* pinned */
	uint32_t off, size;
	size_t len; /* payload length (an upper bound for disk reads) */
} pick;

static sisy_err choose(sisy_raftlog *lg, raftlog_group *g, uint64_t lo,
		       uint64_t hi, size_t max_bytes, pick *picks, size_t *n)
{
	size_t total = 0;
	*n = 0;
	for (uint64_t i = lo; i < hi; i++) {
		raftlog_meta *m = raftlog_group_meta(g, i);
		pick *p = &picks[*n];
		memset(p, 0, sizeof *p);
		p->index = i;
		p->term = m->term;
		if (m->item != NULL) {
			p->item = m->item;
			p->len = m->item->len;
		} else {
			assert(m->seq != 0);
			p->seg = raftlog_seg_find(lg, m->seq);
			if (p->seg == NULL)
				return sisy_errf(SISY_E_INTERNAL,
						 "raftlog: segment %" PRIu64
						 " of entry %" PRIu64
						 " is gone",
						 m->seq, i);
			p->off = m->off;
			p->size = m->size;
			p->len = m->size - RAFTLOG_REC_HDR;
		}
		if (*n > 0 && total + p->len > max_bytes)
			break;
		total += p->len;
		if (p->item != NULL)
			p->item->refs++;
		else
			p->seg->pins++;
		(*n)++;
	}
	return SISY_OK;
}

static void release(sisy_raftlog *lg, pick *picks, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (picks[k].item != NULL)
			raftlog_item_unref(lg, picks[k].item);
		else
			picks[k].seg->pins--;
	}
}

static sisy_err read_one(sisy_raftlog *lg, uint64_t group, const pick *p,
			 uint8_t *scratch, uint8_t *dst, size_t *len)
{
	char path[4096];
	size_t got, need;
	raftlog_rec r;
	sisy_err rc =
	    sisy_file_pread(p->seg->f, scratch, p->size, p->off, &got);
	if (rc != SISY_OK)
		return rc;
	if (got == p->size &&
	    raftlog_rec_decode(scratch, got, &r, &need) == RAFTLOG_PARSE_OK &&
	    r.type == RAFTLOG_REC_ENTRY && r.size == p->size &&
	    r.group == group && r.index == p->index && r.term == p->term) {
		memcpy(dst, r.payload, r.plen);
		*len = r.plen;
		return SISY_OK;
	}
	raftlog_seg_path_of(lg, p->seg->seq, path, sizeof path);
	return sisy_errf(SISY_E_CORRUPT,
			 "raftlog: %s: entry %" PRIu64 " of group %" PRIu64
			 " at offset %" PRIu32 " is damaged (checksum or "
			 "contents); the log is corrupt",
			 path, p->index, group, p->off);
}

/* Copies or reads every picked payload into out. */
static sisy_err fill(sisy_raftlog *lg, uint64_t group, const pick *picks,
		     size_t n, sisy_raftlog_entries *out, uint64_t *disk)
{
	size_t total = 0, scratch_len = 0;
	for (size_t k = 0; k < n; k++) {
		total += picks[k].len;
		if (picks[k].item == NULL && picks[k].size > scratch_len)
			scratch_len = picks[k].size;
	}
	out->v = calloc(n, sizeof *out->v);
	out->mem = malloc(total ? total : 1);
	uint8_t *scratch = scratch_len ? malloc(scratch_len) : NULL;
	if (out->v == NULL || out->mem == NULL ||
	    (scratch_len && scratch == NULL)) {
		free(scratch);
		return sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
	}
	size_t pos = 0;
	sisy_err rc = SISY_OK;
	for (size_t k = 0; k < n && rc == SISY_OK; k++) {
		const pick *p = &picks[k];
		size_t len = p->len;
		if (p->item != NULL) {
			if (len)
				memcpy(out->mem + pos, p->item->payload, len);
		} else {
			rc = read_one(lg, group, p, scratch, out->mem + pos,
				      &len);
			(*disk)++;
		}
		out->v[k] = (sisy_raftlog_entry){p->index, p->term,
						 out->mem + pos, len};
		pos += len;
	}
	out->n = n;
	free(scratch);
	return rc;
}

sisy_err sisy_raftlog_read(sisy_raftlog *lg, uint64_t group, uint64_t lo,
			   uint64_t hi, size_t max_bytes,
			   sisy_raftlog_entries *out)
{
	pick *picks = NULL;
	size_t n = 0;
	uint64_t disk = 0;
	memset(out, 0, sizeof *out);
	pthread_mutex_lock(&lg->mu);
	raftlog_group *g = raftlog_group_find(lg, group);
	sisy_err rc = SISY_OK;
	if (lg->failed != SISY_OK)
		rc = sisy_errf(SISY_E_FAILED, "raftlog: the log failed: %s",
			       lg->failmsg);
	else if (g == NULL)
		rc = sisy_errf(SISY_E_NOTFOUND, "raftlog: no group %" PRIu64,
			       group);
	else if (lo <= g->base_index || hi > raftlog_group_last(g) + 1 ||
		 lo > hi)
		rc = sisy_errf(
		    SISY_E_RANGE,
		    "raftlog: group %" PRIu64 ": entries [%" PRIu64 ", %" PRIu64
		    ") outside its log (%" PRIu64 ", %" PRIu64 "]",
		    group, lo, hi, g->base_index, raftlog_group_last(g));
	if (rc == SISY_OK && hi - lo > READ_MAX_ENTRIES)
		hi = lo + READ_MAX_ENTRIES;
	if (rc == SISY_OK && lo < hi) {
		picks = calloc((size_t)(hi - lo), sizeof *picks);
		if (picks == NULL)
			rc = sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
		else
			rc = choose(lg, g, lo, hi, max_bytes, picks, &n);
	}
	pthread_mutex_unlock(&lg->mu);
	if (rc == SISY_OK && n > 0)
		rc = fill(lg, group, picks, n, out, &disk);
	pthread_mutex_lock(&lg->mu);
	release(lg, picks, n);
	lg->stats.disk_reads += disk;
	lg->stats.cache_hits += n - disk;
	pthread_mutex_unlock(&lg->mu);
	free(picks);
	if (rc != SISY_OK)
		sisy_raftlog_entries_free(out);
	return rc;
}

void sisy_raftlog_entries_free(sisy_raftlog_entries *e)
{
	free(e->v);
	free(e->mem);
	memset(e, 0, sizeof *e);
}
