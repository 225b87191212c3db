/* db_maps.c — which tables may map their file: the engine's map plan.
 *
 * The map budget (mmap_bytes, table.h) holds only part of a large
 * database, so which tables it holds matters. Every point lookup consults
 * each L0 table whose key range holds the key and one table per deeper
 * level, and every seek positions a block in each L0 table and in every
 * level; the levels grow tenfold each, so a byte of an upper level is read
 * far more often than a byte of the last one. Hence the order handed to
 * the table cache (lsm_table_cache_plan), which maps greedily in it:
 *
 *   L0 newest first (the order lookups search it), then L1, L2, ... each
 *   in key order.
 *
 * The plan is a function of the current version and mmap_bytes alone, so
 * it is deterministic, and it is made again whenever a version becomes
 * current (lsm_vset_options.installed): a flush or a compaction brings new
 * tables and retires old ones, and a table moved down a level gives way to
 * the level above. The tail of the last level that fits is mapped in key
 * order: under uniform reads no key range is hotter than another.
 *
 * Runs under mu on every version change: a pass over the version's files
 * and one table-cache lookup per file (microseconds for hundreds of
 * files). Failure (out of memory) keeps the previous plan, which only
 * costs speed; the budget still bounds what is mapped.
 */
#include <assert.h>
#include <stdlib.h>

#include "db.h"

/* A stack array covers databases of up to this many tables. */
#define DB_MAPS_STACK 256

void db_plan_maps(void *ctx, const lsm_version *v)
{
	sisy_lsm *db = ctx;
	if (db->tc == NULL)
		return;
	size_t n = 0;
	for (int l = 0; l < LSM_NUM_LEVELS; l++)
		n += (size_t)v->nfiles[l];
	lsm_map_candidate stack[DB_MAPS_STACK];
	lsm_map_candidate *c = stack;
	if (n > DB_MAPS_STACK && (c = malloc(n * sizeof *c)) == NULL)
		goto fail;
	size_t k = 0;
	for (int i = v->nfiles[0] - 1; i >= 0; i--)
		c[k++] = (lsm_map_candidate){v->files[0][i]->number,
					     v->files[0][i]->size};
	for (int l = 1; l < LSM_NUM_LEVELS; l++)
		for (int i = 0; i < v->nfiles[l]; i++)
			c[k++] = (lsm_map_candidate){v->files[l][i]->number,
						     v->files[l][i]->size};
	assert(k == n);
	sisy_err rc = lsm_table_cache_plan(db->tc, c, n);
	if (c != stack)
		free(c);
	if (rc != SISY_OK)
		goto fail;
	return;
fail:
	sisy_log(db->log, SISY_LOG_WARN, DB_COMPONENT,
		 "out of memory planning which tables to map; the previous "
		 "plan stays (reads may be slower)");
	sisy_errclear();
}
