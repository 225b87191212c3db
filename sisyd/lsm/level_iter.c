/* level_iter.c — one iterator over a sorted level (L1+): the files'
 * ranges are disjoint and ascending, so the level reads as one sorted run.
 * Tables are opened lazily through the table cache, one at a time.
 *
 * An error in a table (corruption, I/O) ends the iteration with that status;
 * it never skips to the next file, which would silently hide data. */
#include "version.h"

#include <assert.h>
#include <stdlib.h>

typedef struct level_iter {
	lsm_iter base;
	lsm_table_cache *tc;
	lsm_file_meta **files;
	int n;
	int idx; /* file of `cur`; n when past the end */
	lsm_iter *cur;
	bool fill_cache;
	sisy_err status; /* first error met */
} level_iter;

static void li_open(level_iter *li, int idx)
{
	if (li->status != SISY_OK)
		return; /* stopped by an error: stay there */
	lsm_iter_destroy(li->cur);
	li->cur = NULL;
	li->idx = idx;
	if (idx >= li->n)
		return;
	const lsm_file_meta *f = li->files[idx];
	li->cur =
	    lsm_table_cache_iter(li->tc, f->number, f->size, li->fill_cache);
	if (li->cur == NULL)
		li->status =
		    sisy_errf(SISY_E_NOMEM, "level_iter.c: out of memory");
}

/* Moves past exhausted files until an entry or an error is found. */
static void li_skip_empty(level_iter *li)
{
	while (li->cur != NULL && !lsm_iter_valid(li->cur)) {
		sisy_err rc = lsm_iter_status(li->cur);
		if (rc != SISY_OK) {
			/* keep the failed child: its status() re-attaches
			 * the message naming file and offset */
			li->status = rc;
			return;
		}
		li_open(li, li->idx + 1);
		if (li->cur != NULL)
			lsm_iter_seek_first(li->cur);
	}
}

static bool li_valid(lsm_iter *it)
{
	level_iter *li = (level_iter *)it;
	return li->cur != NULL && lsm_iter_valid(li->cur);
}

static void li_seek_first(lsm_iter *it)
{
	level_iter *li = (level_iter *)it;
	if (li->status != SISY_OK)
		return;
	li_open(li, 0);
	if (li->cur != NULL)
		lsm_iter_seek_first(li->cur);
	li_skip_empty(li);
}

static void li_seek(lsm_iter *it, sisy_slice target)
{
	level_iter *li = (level_iter *)it;
	if (li->status != SISY_OK)
		return;
	int lo = 0, hi = li->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (lsm_ikey_cmp(sisy_buf_slice(&li->files[mid]->largest),
				 target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (li->cur == NULL || li->idx != lo)
		li_open(li, lo);
	if (li->cur != NULL)
		lsm_iter_seek(li->cur, target);
	li_skip_empty(li);
}

static void li_next(lsm_iter *it)
{
	level_iter *li = (level_iter *)it;
	assert(li_valid(it));
	lsm_iter_next(li->cur);
	li_skip_empty(li);
}

static sisy_slice li_key(lsm_iter *it)
{
	return lsm_iter_key(((level_iter *)it)->cur);
}

static sisy_slice li_value(lsm_iter *it)
{
	return lsm_iter_value(((level_iter *)it)->cur);
}

static sisy_err li_status(lsm_iter *it)
{
	level_iter *li = (level_iter *)it;
	if (li->cur != NULL)
		return lsm_iter_status(li->cur);
	return li->status;
}

static void li_destroy(lsm_iter *it)
{
	level_iter *li = (level_iter *)it;
	lsm_iter_destroy(li->cur);
	free(li);
}

static const lsm_iter_ops level_iter_ops = {
    .valid = li_valid,
    .seek_first = li_seek_first,
    .seek = li_seek,
    .next = li_next,
    .key = li_key,
    .value = li_value,
    .status = li_status,
    .destroy = li_destroy,
};

lsm_iter *lsm_level_iter_new(lsm_table_cache *tc, lsm_file_meta **files, int n,
			     bool fill_cache)
{
	level_iter *li = calloc(1, sizeof *li);
	if (li == NULL)
		return NULL;
	li->base.ops = &level_iter_ops;
	li->tc = tc;
	li->files = files;
	li->n = n;
	li->idx = n;
	li->fill_cache = fill_cache;
	return &li->base;
}
