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
 *   never exceeds mmap_bytes.
 *
 *   Which tables get mapped is the plan's (lsm_table_cache_plan): a sorted
 *   array of the table numbers picked, replaced whole under plan_mu and
 *   searched at every open. A table left out opens with `no_map`, a budget
 *   of 0, so it reads with pread while the budget stays free for the
 *   tables picked, including those not opened yet. The budget is the
 *   bound, the plan only a wish: a picked table that opens while tables
 *   no longer picked still hold their bytes (not closed yet, or pinned by
 *   a reader) reads with pread, "starved" (table.h); its first use after
 *   the budget has room for it again drops it from the cache and reopens
 *   it, mapped. That check is a flag on the table, so it costs nothing on
 *   a table that is not starved. Without a plan (the cache used alone) any
 *   table maps while the budget has room: first come, first served.
 */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbformat.h"
#include "table.h"
#include "u64set.h"

#define TABLE_CACHE_PATH_MAX 4096

struct lsm_table_cache {
	sisy_fs *fs;
	char *dir;
	lsm_cache *tables;
	lsm_cache *block_cache;
	lsm_map_budget budget;
	lsm_map_budget no_map; /* limit 0: for tables the plan left out */
	lsm_counters *counters;
	bool verify;
	pthread_mutex_t plan_mu; /* guards the fields below */
	bool planned;		 /* a plan was set: only its tables map */
	uint64_t *plan;		 /* numbers of the tables picked, ascending */
	size_t nplan;
	uint64_t *listed; /* numbers of every table the plan listed, ditto */
	size_t nlisted;
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
	lsm_map_budget_init(&tc->no_map, 0);
	pthread_mutex_init(&tc->plan_mu, NULL);
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
		pthread_mutex_destroy(&tc->plan_mu);
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
	pthread_mutex_destroy(&tc->plan_mu);
	free(tc->plan);
	free(tc->listed);
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
	lsm_map_budget *b =
	    lsm_table_cache_may_map(tc, num) ? &tc->budget : &tc->no_map;
	return lsm_table_open(f, file_size, path, tc->block_cache, b,
			      tc->counters, tc->verify, t);
}

/* Whether open table t (of size bytes) reads with pread only because the
 * budget was full when it opened, and the budget now has room for it. */
static bool table_cache_starved(lsm_table_cache *tc, const lsm_table *t,
				uint64_t size)
{
	return lsm_table_map_starved(t) && size <= tc->budget.limit &&
	       lsm_map_budget_used(&tc->budget) <= tc->budget.limit - size;
}

/* Pins table num, opening it unless no_io (then SISY_E_AGAIN). A table
 * that was starved of the budget and now fits is reopened, so that it
 * maps: bytes given back by a table closed since (retired by a compaction,
 * dropped by a new plan, or evicted) go to the tables that wait for them. */
static sisy_err table_cache_pin(lsm_table_cache *tc, uint64_t num,
				uint64_t file_size, bool no_io, lsm_table **t,
				lsm_table_ref **ref)
{
	uint8_t key[8];
	sisy_put_u64(key, num);
	lsm_cache_handle *h = lsm_cache_lookup(tc->tables, key, sizeof key);
	if (h != NULL && !no_io &&
	    table_cache_starved(tc, lsm_cache_value(h), file_size)) {
		lsm_cache_release(tc->tables, h);
		lsm_cache_erase(tc->tables, key, sizeof key);
		h = NULL; /* reopened below: it maps now */
	}
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
	lsm_table *t = NULL; /* set on success; gcc -O2 cannot tell */
	lsm_table_ref *ref = NULL;
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

/* The table iterator itself releases the pin when destroyed
 * (lsm_table_iter_new_pinned): a wrapper would add a call to every step of
 * every table scan (compactions read all their input through these). */
lsm_iter *lsm_table_cache_iter(lsm_table_cache *tc, uint64_t num,
			       uint64_t file_size, bool fill_cache)
{
	lsm_table *t = NULL; /* set on success; gcc -O2 cannot tell */
	lsm_table_ref *ref = NULL;
	sisy_err rc = lsm_table_cache_get(tc, num, file_size, &t, &ref);
	if (rc != SISY_OK)
		return lsm_iter_empty(rc);
	lsm_iter *it = lsm_table_iter_new_pinned(t, fill_cache, tc, ref);
	if (it == NULL)
		lsm_table_cache_release(tc, ref);
	return it;
}

/* --- the map plan ----------------------------------------------------------
 */

/* Whether num is in the plan. plan_mu held. */
static bool table_cache_in_plan(const lsm_table_cache *tc, uint64_t num)
{
	return !tc->planned || lsm_u64_has(tc->plan, tc->nplan, num);
}

bool lsm_table_cache_may_map(lsm_table_cache *tc, uint64_t num)
{
	pthread_mutex_lock(&tc->plan_mu);
	bool may = table_cache_in_plan(tc, num);
	pthread_mutex_unlock(&tc->plan_mu);
	return may;
}

/* Drops open table num from the cache when the way it reads disagrees
 * with the plan: mapped but left out (its bytes go back to the budget once
 * its users are done), or picked but reading with pread although the file
 * system can map it. */
static void table_cache_reconcile(lsm_table_cache *tc, uint64_t num,
				  bool picked)
{
	uint8_t key[8];
	sisy_put_u64(key, num);
	lsm_cache_handle *h = lsm_cache_lookup(tc->tables, key, sizeof key);
	if (h == NULL)
		return;
	const lsm_table *t = lsm_cache_value(h);
	bool wrong =
	    lsm_table_mapped(t) ? !picked : picked && !lsm_table_map_failed(t);
	lsm_cache_release(tc->tables, h);
	if (wrong)
		lsm_cache_erase(tc->tables, key, sizeof key);
}

sisy_err lsm_table_cache_plan(lsm_table_cache *tc, const lsm_map_candidate *c,
			      size_t n)
{
	assert(c != NULL || n == 0);
	uint64_t *pick = malloc((n > 0 ? n : 1) * sizeof *pick);
	uint64_t *listed = malloc((n > 0 ? n : 1) * sizeof *listed);
	if (pick == NULL || listed == NULL) {
		free(pick);
		free(listed);
		return sisy_errf(SISY_E_NOMEM,
				 "table_cache.c: out of memory planning "
				 "which of %zu tables to map",
				 n);
	}
	size_t np = 0;
	uint64_t left = tc->budget.limit;
	for (size_t i = 0; i < n; i++) {
		listed[i] = c[i].number;
		if (c[i].size <= left) {
			left -= c[i].size;
			pick[np++] = c[i].number;
		}
	}
	qsort(pick, np, sizeof *pick, lsm_u64_cmp);
	qsort(listed, n, sizeof *listed, lsm_u64_cmp);
	pthread_mutex_lock(&tc->plan_mu);
	uint64_t *old_pick = tc->plan, *old_listed = tc->listed;
	size_t old_n = tc->nlisted;
	tc->plan = pick;
	tc->nplan = np;
	tc->listed = listed;
	tc->nlisted = n;
	tc->planned = true;
	pthread_mutex_unlock(&tc->plan_mu);
	free(old_pick);
	/* Tables listed before but not now were retired (by a compaction):
	 * any still open leave the cache first, so that their bytes go back
	 * to the budget as soon as no reader pins them, even while an old
	 * version still lists them. */
	for (size_t i = 0; i < old_n; i++)
		if (!lsm_u64_has(listed, n, old_listed[i]))
			table_cache_reconcile(tc, old_listed[i], false);
	free(old_listed);
	for (size_t i = 0; i < n; i++)
		table_cache_reconcile(tc, c[i].number,
				      lsm_u64_has(pick, np, c[i].number));
	return SISY_OK;
}
