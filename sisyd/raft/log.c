/* log.c — the core's in-memory view of its Raft log.
 *
 * Holds every entry after the compaction point (log.snap) up to the last
 * index, each with its own copy of the data (carved from shared chunks:
 * libcommon/chunks.h), in one array so a run of entries can be handed out
 * (in a ready or an APPEND) as a pointer and a count. Entries live at
 * ents[start .. start + len); compaction advances `start` and slides the
 * array down only once the hole is at least half of it, so compacting is
 * amortized O(entries dropped).
 *
 * Invariants: entry k of the array has index snap.index + 1 + k; terms never
 * decrease along the log; snap.term <= the first entry's term.
 */
#include <stdlib.h>
#include <string.h>

#include "raft_int.h"

void raft_log_init(struct raft_log *l)
{
	memset(l, 0, sizeof *l);
}

static void entry_free(struct raft_log *l, sisy_raft_entry *e)
{
	if (e->data != NULL)
		sisy_chunks_drop(&l->data, (void *)e->data);
	e->data = NULL;
}

void raft_log_free(struct raft_log *l)
{
	for (size_t k = 0; k < l->len; k++)
		entry_free(l, &l->ents[l->start + k]);
	free(l->ents);
	sisy_chunks_free(&l->data);
	raft_log_init(l);
}

int raft_log_term(const struct raft_log *l, uint64_t i, uint64_t *term)
{
	if (i == l->snap.index) {
		*term = l->snap.term;
		return 1;
	}
	if (i < l->snap.index || i > raft_log_last(l))
		return 0;
	*term = raft_log_at(l, i)->term;
	return 1;
}

uint64_t raft_log_term_or0(const struct raft_log *l, uint64_t i)
{
	uint64_t t = 0;
	return raft_log_term(l, i, &t) ? t : 0;
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
	return raft_log_term_or0(l, raft_log_last(l));
}

static sisy_err log_reserve(struct raft_log *l, size_t n)
{
	if (l->start + l->len + n <= l->cap)
		return SISY_OK;
	if (l->start > 0) { /* slide down before growing */
		memmove(l->ents, l->ents + l->start, l->len * sizeof *l->ents);
		l->start = 0;
		if (l->len + n <= l->cap)
			return SISY_OK;
	}
	size_t cap = l->cap ? l->cap : 64;
	while (cap < l->len + n)
		cap *= 2;
	sisy_raft_entry *p = realloc(l->ents, cap * sizeof *p);
	if (!p)
		return sisy_errf(SISY_E_NOMEM, "raft log.c: cannot grow the "
					       "in-memory log");
	l->ents = p;
	l->cap = cap;
	return SISY_OK;
}

sisy_err raft_log_append(struct raft_log *l, const sisy_raft_entry *e, size_t n)
{
	sisy_err rc = log_reserve(l, n);
	if (rc != SISY_OK)
		return rc;
	size_t base = l->start + l->len;
	size_t k;
	for (k = 0; k < n; k++) {
		sisy_raft_entry *d = &l->ents[base + k];
		assert(e[k].index == raft_log_last(l) + 1 + k);
		*d = e[k];
		d->data = NULL;
		if (e[k].len > 0) {
			uint8_t *p = sisy_chunks_alloc(&l->data, e[k].len);
			if (p == NULL)
				goto fail;
			memcpy(p, e[k].data, e[k].len);
			d->data = p;
		}
	}
	for (k = 0; k < n; k++)
		l->bytes += e[k].len;
	l->len += n;
	return SISY_OK;
fail:
	while (k-- > 0)
		entry_free(l, &l->ents[base + k]);
	return sisy_errf(SISY_E_NOMEM, "raft log.c: cannot copy an entry");
}

void raft_log_truncate(struct raft_log *l, uint64_t from)
{
	assert(from > l->snap.index);
	while (raft_log_last(l) >= from) {
		sisy_raft_entry *e = &l->ents[l->start + l->len - 1];
		l->bytes -= e->len;
		entry_free(l, e);
		l->len--;
	}
}

void raft_log_compact(struct raft_log *l, uint64_t i,
		      const sisy_raft_membership *m)
{
	assert(i > l->snap.index && i <= raft_log_last(l));
	uint64_t term = raft_log_at(l, i)->term;
	size_t drop = (size_t)(i - l->snap.index);
	for (size_t k = 0; k < drop; k++) {
		sisy_raft_entry *e = &l->ents[l->start + k];
		l->bytes -= e->len;
		entry_free(l, e);
	}
	l->start += drop;
	l->len -= drop;
	l->snap.index = i;
	l->snap.term = term;
	l->snap.membership = *m;
	if (l->len == 0)
		l->start = 0;
}

void raft_log_reset(struct raft_log *l, const sisy_raft_snapshot_meta *snap)
{
	for (size_t k = 0; k < l->len; k++)
		entry_free(l, &l->ents[l->start + k]);
	l->start = 0;
	l->len = 0;
	l->bytes = 0;
	l->snap = *snap;
}

size_t raft_log_span(const struct raft_log *l, uint64_t lo, uint64_t hi,
		     size_t max_bytes, size_t max_n)
{
	if (lo > hi)
		return 0;
	assert(lo >= raft_log_first(l) && hi <= raft_log_last(l));
	const sisy_raft_entry *e = raft_log_at(l, lo);
	size_t n = 0, bytes = 0;
	size_t avail = (size_t)(hi - lo + 1);
	while (n < avail && n < max_n) {
		if (n > 0 && bytes + e[n].len > max_bytes)
			break;
		bytes += e[n].len;
		n++;
	}
	return n;
}

uint64_t raft_log_bytes_between(const struct raft_log *l, uint64_t lo,
				uint64_t hi)
{
	uint64_t sum = 0;
	lo = raft_max(lo, raft_log_first(l));
	hi = raft_min(hi, raft_log_last(l));
	for (uint64_t i = lo; i <= hi && i >= lo; i++)
		sum += raft_log_at(l, i)->len;
	return sum;
}

uint64_t raft_log_first_of_term(const struct raft_log *l, uint64_t t,
				uint64_t lo, uint64_t hi)
{
	lo = raft_max(lo, raft_log_first(l));
	hi = raft_min(hi, raft_log_last(l));
	uint64_t a = lo, b = hi + 1; /* answer in [a, b] */
	while (a < b) {
		uint64_t mid = a + (b - a) / 2;
		if (raft_log_at(l, mid)->term >= t)
			b = mid;
		else
			a = mid + 1;
	}
	return a;
}

uint64_t raft_log_last_le_term(const struct raft_log *l, uint64_t t,
			       uint64_t hi)
{
	hi = raft_min(hi, raft_log_last(l));
	if (hi < l->snap.index || l->snap.term > t)
		return 0;
	/* Largest i in [snap.index, hi] with term(i) <= t. */
	uint64_t a = l->snap.index, b = hi;
	while (a < b) {
		uint64_t mid = a + (b - a + 1) / 2;
		if (raft_log_at(l, mid)->term <= t)
			a = mid;
		else
			b = mid - 1;
	}
	return a;
}

int raft_log_up_to_date(const struct raft_log *l, uint64_t last_term,
			uint64_t last_index)
{
	uint64_t my_term = raft_log_last_term(l);
	return last_term > my_term ||
	       (last_term == my_term && last_index >= raft_log_last(l));
}
