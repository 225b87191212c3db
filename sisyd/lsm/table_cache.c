/* table_cache.c — keeps a bounded number of SSTables open (table.h).
 *
 * DESIGN
 *   An lsm_cache with charge 1 per table and capacity max_open, keyed by the
 *   table number (u64 LE). A cache handle is the pin: lsm_table_ref is the
 *   handle itself, so a table in use can be evicted from the cache but is
 *   only closed (file closed, mapping dropped) when its last user releases
 *   it. Opening happens outside any lock; two threads that miss on the same
 *   table at once both open it, the later insert replaces the earlier, and
 *   the earlier copy closes when its user is done. Failed opens are not
 *   remembered: the next lookup tries again.
 *
 *   Few shards when max_open is small, so that the bound is exact and each
 *   shard still holds several tables.
 *
 *   The cache owns the map budget its tables share (table.h): a table is
 *   charged its file size while it is mapped, from open to close, pinned
 *   or not, so lsm_table_cache_mapped_bytes() is what is mapped now and
 *   never exceeds mmap_bytes. Which tables get mapped is first come, first
 *   served: a table opened while the budget is full reads with pread for as
 *   long as it stays open.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbformat.h"
#include "table.h"

#define TABLE_CACHE_PATH_MAX 4096

struct lsm_table_cache {
	sisy_fs *fs;
	char *dir;
	lsm_cache *tables;
	lsm_cache *block_cache;
	lsm_map_budget budget;
	lsm_counters *counters;
	bool verify;
};

static void table_cache_deleter(const void *key, size_t klen, void *value)
{
	(void)key;
	(void)klen;
	lsm_table_close(value);
}

sisy_err lsm_table_cache_new(sisy_fs *fs, const char *dir, int max_open,
			     lsm_cache *block_cache, uint64_t mmap_bytes,
			     lsm_counters *counters, bool verify_checksums,
			     lsm_table_cache **out)
{
	assert(fs != NULL && dir != NULL && max_open >= 1);
	lsm_table_cache *tc = calloc(1, sizeof *tc);
	if (tc == NULL)
		goto nomem;
	tc->fs = fs;
	tc->block_cache = block_cache;
	lsm_map_budget_init(&tc->budget, mmap_bytes);
	tc->counters = counters;
	tc->verify = verify_checksums;
	tc->dir = strdup(dir);
	tc->tables = lsm_cache_new((size_t)max_open, max_open >= 256 ? 4 : 0);
	if (tc->dir == NULL || tc->tables == NULL)
		goto nomem;
	*out = tc;
	return SISY_OK;
nomem:
	if (tc != NULL) {
		free(tc->dir);
		lsm_cache_free(tc->tables);
		free(tc);
	}
	return sisy_errf(SISY_E_NOMEM,
			 "table_cache.c: out of memory for the table cache");
}

void lsm_table_cache_free(lsm_table_cache *tc)
{
	if (tc == NULL)
		return;
	lsm_cache_free(tc->tables);
	assert(lsm_map_budget_used(&tc->budget) == 0);
	free(tc->dir);
	free(tc);
}

uint64_t lsm_table_cache_mapped_bytes(lsm_table_cache *tc)
{
	return lsm_map_budget_used(&tc->budget);
}

static sisy_err table_cache_open(lsm_table_cache *tc, uint64_t num,
				 uint64_t file_size, lsm_table **t)
{
	char path[TABLE_CACHE_PATH_MAX];
	int n = lsm_file_name(path, sizeof path, tc->dir, num, LSM_FILE_TABLE);
	if (n < 0 || (size_t)n >= sizeof path)
		return sisy_errf(SISY_E_INVAL,
				 "table_cache.c: path of table %llu too long",
				 (unsigned long long)num);
	sisy_file *f;
	sisy_err rc = sisy_fs_open(tc->fs, path, SISY_O_READ, &f);
	if (rc != SISY_OK)
		return rc;
	return lsm_table_open(f, file_size, path, tc->block_cache, &tc->budget,
			      tc->counters, tc->verify, t);
}

/* Pins table num, opening it unless no_io (then SISY_E_AGAIN). */
static sisy_err table_cache_pin(lsm_table_cache *tc, uint64_t num,
				uint64_t file_size, bool no_io, lsm_table **t,
				lsm_table_ref **ref)
{
	uint8_t key[8];
	sisy_put_u64(key, num);
	lsm_cache_handle *h = lsm_cache_lookup(tc->tables, key, sizeof key);
	if (h == NULL && no_io)
		return SISY_E_AGAIN;
	if (h == NULL) {
		lsm_table *opened;
		sisy_err rc = table_cache_open(tc, num, file_size, &opened);
		if (rc != SISY_OK)
			return rc;
		h = lsm_cache_insert(tc->tables, key, sizeof key, opened, 1,
				     table_cache_deleter);
		if (h == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "table_cache.c: out of memory");
	}
	*t = lsm_cache_value(h);
	*ref = (lsm_table_ref *)h;
	return SISY_OK;
}

sisy_err lsm_table_cache_get(lsm_table_cache *tc, uint64_t num,
			     uint64_t file_size, lsm_table **t,
			     lsm_table_ref **ref)
{
	return table_cache_pin(tc, num, file_size, false, t, ref);
}

void lsm_table_cache_release(lsm_table_cache *tc, lsm_table_ref *ref)
{
	lsm_cache_release(tc->tables, (lsm_cache_handle *)ref);
}

sisy_err lsm_table_cache_lookup(lsm_table_cache *tc, uint64_t num,
				uint64_t file_size, sisy_slice lookup,
				lsm_table_get_fn fn, void *ctx, bool *found)
{
	return lsm_table_cache_lookup_flags(tc, num, file_size, lookup, 0, fn,
					    ctx, found);
}

sisy_err lsm_table_cache_lookup_flags(lsm_table_cache *tc, uint64_t num,
				      uint64_t file_size, sisy_slice lookup,
				      int flags, lsm_table_get_fn fn, void *ctx,
				      bool *found)
{
	lsm_table *t;
	lsm_table_ref *ref;
	*found = false;
	sisy_err rc = table_cache_pin(tc, num, file_size,
				      (flags & LSM_READ_NO_IO) != 0, &t, &ref);
	if (rc != SISY_OK)
		return rc;
	rc = lsm_table_get_flags(t, lookup, flags, fn, ctx, found);
	lsm_table_cache_release(tc, ref);
	return rc;
}

void lsm_table_cache_evict(lsm_table_cache *tc, uint64_t num)
{
	uint8_t key[8];
	sisy_put_u64(key, num);
	lsm_cache_erase(tc->tables, key, sizeof key);
}

/* --- an iterator that pins its table ------------------------------------- */

typedef struct pinned_iter {
	lsm_iter base;
	lsm_iter *inner;
	lsm_table_cache *tc;
	lsm_table_ref *ref;
} pinned_iter;

static bool pinned_valid(lsm_iter *it)
{
	return lsm_iter_valid(((pinned_iter *)it)->inner);
}

static void pinned_seek_first(lsm_iter *it)
{
	lsm_iter_seek_first(((pinned_iter *)it)->inner);
}

static void pinned_seek(lsm_iter *it, sisy_slice target)
{
	lsm_iter_seek(((pinned_iter *)it)->inner, target);
}

static void pinned_next(lsm_iter *it)
{
	lsm_iter_next(((pinned_iter *)it)->inner);
}

static sisy_slice pinned_key(lsm_iter *it)
{
	return lsm_iter_key(((pinned_iter *)it)->inner);
}

static sisy_slice pinned_value(lsm_iter *it)
{
	return lsm_iter_value(((pinned_iter *)it)->inner);
}

static sisy_err pinned_status(lsm_iter *it)
{
	return lsm_iter_status(((pinned_iter *)it)->inner);
}

static void pinned_destroy(lsm_iter *it)
{
	pinned_iter *p = (pinned_iter *)it;
	lsm_iter_destroy(p->inner);
	lsm_table_cache_release(p->tc, p->ref);
	free(p);
}

static const lsm_iter_ops pinned_ops = {
    .valid = pinned_valid,
    .seek_first = pinned_seek_first,
    .seek = pinned_seek,
    .next = pinned_next,
    .key = pinned_key,
    .value = pinned_value,
    .status = pinned_status,
    .destroy = pinned_destroy,
};

lsm_iter *lsm_table_cache_iter(lsm_table_cache *tc, uint64_t num,
			       uint64_t file_size, bool fill_cache)
{
	lsm_table *t;
	lsm_table_ref *ref;
	sisy_err rc = lsm_table_cache_get(tc, num, file_size, &t, &ref);
	if (rc != SISY_OK)
		return lsm_iter_empty(rc);
	pinned_iter *p = malloc(sizeof *p);
	lsm_iter *inner = lsm_table_iter_new(t, fill_cache);
	if (p == NULL || inner == NULL) {
		free(p);
		lsm_iter_destroy(inner);
		lsm_table_cache_release(tc, ref);
		return NULL;
	}
	p->base.ops = &pinned_ops;
	p->inner = inner;
	p->tc = tc;
	p->ref = ref;
	return &p->base;
}
