/* group.c — the in-memory view of each group's log: the window of metas
 * (term and location of every entry in (base, last]), the truncation and
 * snapshot rules that both live calls and recovery apply, and the cache of
 * recently written payloads. Callers hold lg->mu (or run before the writer
 * starts).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* --- items and the cache ---------------------------------------------------
 */

raftlog_item *raftlog_item_new(sisy_raftlog *lg, uint64_t group, uint64_t index,
			       uint64_t term, const uint8_t *data, size_t len)
{
	raftlog_item *it = lg ? sisy_chunks_alloc(&lg->items, sizeof *it + len)
			      : sisy_chunks_alloc_own(sizeof *it + len);
	if (it == NULL)
		return NULL;
	*it = (raftlog_item){.refs = 1,
			     .group = group,
			     .index = index,
			     .term = term,
			     .len = len};
	if (len)
		memcpy(it->payload, data, len);
	return it;
}

void raftlog_item_unref(sisy_raftlog *lg, raftlog_item *it)
{
	if (it == NULL)
		return;
	assert(it->refs > 0);
	if (--it->refs > 0)
		return;
	assert(!it->cached);
	sisy_chunks_drop(&lg->items, it);
}

static void cache_unlink(sisy_raftlog *lg, raftlog_item *it)
{
	assert(it->cached);
	if (it->prev)
		it->prev->next = it->next;
	else
		lg->cache_head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		lg->cache_tail = it->prev;
	it->prev = it->next = NULL;
	it->cached = false;
	assert(lg->cache_bytes >= it->len);
	lg->cache_bytes -= it->len;
}

void raftlog_cache_add(sisy_raftlog *lg, raftlog_item *it)
{
	assert(!it->cached);
	it->cached = true;
	it->prev = lg->cache_tail;
	it->next = NULL;
	if (lg->cache_tail)
		lg->cache_tail->next = it;
	else
		lg->cache_head = it;
	lg->cache_tail = it;
	lg->cache_bytes += it->len;
}

/* The meta's reference goes; a cached item leaves the cache with it. */
static void meta_release(sisy_raftlog *lg, raftlog_meta *m)
{
	if (m->item == NULL)
		return;
	if (m->item->cached)
		cache_unlink(lg, m->item);
	raftlog_item_unref(lg, m->item);
	m->item = NULL;
}

void raftlog_cache_evict(sisy_raftlog *lg)
{
	while (lg->cache_bytes > lg->o.cache_bytes && lg->cache_head != NULL) {
		raftlog_item *it = lg->cache_head;
		raftlog_group *g = raftlog_group_find(lg, it->group);
		/* Only items a meta points at are cached, and dropping the
		 * meta unlinks the item: so the meta is there. */
		assert(g != NULL && it->index > g->base_index &&
		       it->index <= raftlog_group_last(g));
		raftlog_meta *m = raftlog_group_meta(g, it->index);
		assert(m->item == it && m->seq != 0);
		meta_release(lg, m);
	}
}

/* --- the group table --------------------------------------------------------
 */

static size_t group_pos(const sisy_raftlog *lg, uint64_t id)
{
	size_t lo = 0, hi = lg->ngroups;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (lg->groups[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

raftlog_group *raftlog_group_find(sisy_raftlog *lg, uint64_t id)
{
	size_t i = group_pos(lg, id);
	return i < lg->ngroups && lg->groups[i]->id == id ? lg->groups[i]
							  : NULL;
}

sisy_err raftlog_group_create(sisy_raftlog *lg, uint64_t id,
			      raftlog_group **out)
{
	size_t i = group_pos(lg, id);
	if (i < lg->ngroups && lg->groups[i]->id == id) {
		*out = lg->groups[i];
		return SISY_OK;
	}
	if (lg->ngroups >= RAFTLOG_MAX_GROUPS)
		return sisy_errf(SISY_E_TOOBIG,
				 "raftlog: more than %d groups on one node",
				 RAFTLOG_MAX_GROUPS);
	if (lg->ngroups == lg->capgroups) {
		size_t cap = lg->capgroups ? lg->capgroups * 2 : 16;
		raftlog_group **v = realloc(lg->groups, cap * sizeof *v);
		if (v == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "raftlog: out of memory");
		lg->groups = v;
		raftlog_group **d = realloc(lg->dirty, cap * sizeof *d);
		if (d == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "raftlog: out of memory");
		lg->dirty = d;
		lg->capgroups = cap;
	}
	raftlog_group *g = calloc(1, sizeof *g);
	if (g == NULL)
		return sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
	g->id = id;
	memmove(lg->groups + i + 1, lg->groups + i,
		(lg->ngroups - i) * sizeof *lg->groups);
	lg->groups[i] = g;
	lg->ngroups++;
	*out = g;
	return SISY_OK;
}

void raftlog_group_free(sisy_raftlog *lg, raftlog_group *g)
{
	for (size_t k = 0; k < g->n; k++)
		meta_release(lg, &g->metas[g->head + k]);
	free(g->metas);
	free(g);
}

/* --- the window of metas
 * ------------------------------------------------------ */

bool raftlog_group_term(const raftlog_group *g, uint64_t index, uint64_t *term)
{
	if (index == g->base_index) {
		*term = g->base_term;
		return true;
	}
	if (index < g->base_index || index > raftlog_group_last(g))
		return false;
	*term = g->metas[g->head + (size_t)(index - g->base_index - 1)].term;
	return true;
}

/* Drops the newest entries down to (excluding) index `keep_last`. */
static void drop_back(sisy_raftlog *lg, raftlog_group *g, uint64_t keep_last)
{
	while (raftlog_group_last(g) > keep_last) {
		g->n--;
		meta_release(lg, &g->metas[g->head + g->n]);
	}
}

/* Drops the oldest entries up to and including index `upto`. */
static void drop_front(sisy_raftlog *lg, raftlog_group *g, uint64_t upto)
{
	while (g->n > 0 && g->base_index < upto) {
		meta_release(lg, &g->metas[g->head]);
		g->head++;
		g->n--;
		g->base_index++;
	}
	if (g->n == 0)
		g->head = 0;
}

sisy_err raftlog_group_reserve(raftlog_group *g, size_t extra)
{
	if (g->head + g->n + extra <= g->cap)
		return SISY_OK;
	if (g->n + extra <= g->cap && g->head >= g->cap / 2) {
		/* Slide the window back instead of growing. */
		memmove(g->metas, g->metas + g->head, g->n * sizeof *g->metas);
		g->head = 0;
		return SISY_OK;
	}
	size_t cap = g->cap ? g->cap : 64;
	while (cap < g->head + g->n + extra)
		cap *= 2;
	raftlog_meta *v = realloc(g->metas, cap * sizeof *v);
	if (v == NULL)
		return sisy_errf(SISY_E_NOMEM, "raftlog: out of memory");
	g->metas = v;
	g->cap = cap;
	return SISY_OK;
}

sisy_err raftlog_group_put(sisy_raftlog *lg, raftlog_group *g, uint64_t index,
			   const raftlog_meta *m)
{
	assert(index > g->base_index && index <= raftlog_group_last(g) + 1);
	drop_back(lg, g, index - 1);
	sisy_err rc = raftlog_group_reserve(g, 1);
	if (rc != SISY_OK)
		return rc;
	g->metas[g->head + g->n] = *m;
	g->n++;
	return SISY_OK;
}

void raftlog_group_reset(sisy_raftlog *lg, raftlog_group *g, uint64_t index,
			 uint64_t term)
{
	drop_back(lg, g, g->base_index);
	g->head = 0;
	g->base_index = index;
	g->base_term = term;
}

void raftlog_group_set_base(sisy_raftlog *lg, raftlog_group *g, uint64_t index,
			    uint64_t term)
{
	if (index < g->base_index)
		return; /* older than what we have: superseded */
	if (index == g->base_index) {
		/* Term 0 is "unknown" (left by a gap during recovery). */
		if (g->base_term != 0 && g->base_term != term)
			drop_back(lg, g, g->base_index);
		g->base_term = term;
		return;
	}
	uint64_t t;
	if (index <= raftlog_group_last(g) &&
	    raftlog_group_term(g, index, &t) && t == term) {
		drop_front(lg, g, index);
		g->base_term = term;
		return;
	}
	raftlog_group_reset(lg, g, index, term);
}
