/* db_stats.c — sisy_lsm_get_stats: the counters (stats.h) plus a picture
 * of the memtables, the cache and the levels taken under mu. */
#include <string.h>

#include "db.h"

void sisy_lsm_get_stats(sisy_lsm *db, sisy_lsm_stats *out)
{
	memset(out, 0, sizeof *out);
	const lsm_counters *c = &db->counters;
	out->bytes_written = LSM_READ(c, bytes_written);
	out->bytes_read = LSM_READ(c, bytes_read);
	out->wal_bytes = LSM_READ(c, wal_bytes);
	out->wal_syncs = LSM_READ(c, wal_syncs);
	out->flushes = LSM_READ(c, flushes);
	out->compactions = LSM_READ(c, compactions);
	out->compaction_bytes_read = LSM_READ(c, compaction_bytes_read);
	out->compaction_bytes_written = LSM_READ(c, compaction_bytes_written);
	out->stall_micros = LSM_READ(c, stall_micros);
	out->stalls = LSM_READ(c, stalls);
	out->cache_hits = LSM_READ(c, cache_hits);
	out->cache_misses = LSM_READ(c, cache_misses);
	out->bloom_negatives = LSM_READ(c, bloom_negatives);
	out->bloom_positives = LSM_READ(c, bloom_positives);
	out->gets = LSM_READ(c, gets);
	out->puts = LSM_READ(c, puts);
	out->deletes = LSM_READ(c, deletes);
	out->batches = LSM_READ(c, batches);
	if (db->block_cache != NULL)
		out->cache_bytes = lsm_cache_usage(db->block_cache);
	out->mapped_bytes = lsm_table_cache_mapped_bytes(db->tc);
	pthread_mutex_lock(&db->mu);
	out->memtable_bytes = lsm_memtable_memory(db->mem);
	if (db->imm != NULL)
		out->memtable_bytes += lsm_memtable_memory(db->imm);
	const lsm_version *v = db->vs->current;
	for (int l = 0; l < LSM_NUM_LEVELS && l < 7; l++) {
		out->files_per_level[l] = v->nfiles[l];
		out->bytes_per_level[l] = lsm_version_level_bytes(v, l);
	}
	pthread_mutex_unlock(&db->mu);
}
