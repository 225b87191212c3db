/* stats.h — the engine's internal counters, shared by all its layers and
 * folded into sisy_lsm_stats by sisy_lsm_get_stats(). Relaxed atomics: they
 * are statistics, not synchronisation. */
#ifndef SISY_LSM_STATS_H
#define SISY_LSM_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct lsm_counters {
	_Atomic uint64_t bytes_written;
	_Atomic uint64_t bytes_read;
	_Atomic uint64_t wal_bytes;
	_Atomic uint64_t wal_syncs;
	_Atomic uint64_t flushes;
	_Atomic uint64_t compactions;
	_Atomic uint64_t compaction_bytes_read;
	_Atomic uint64_t compaction_bytes_written;
	_Atomic uint64_t stall_micros;
	_Atomic uint64_t stalls;
	_Atomic uint64_t cache_hits;
	_Atomic uint64_t cache_misses;
	_Atomic uint64_t bloom_negatives;
	_Atomic uint64_t bloom_positives;
	_Atomic uint64_t gets, puts, deletes, batches;
} lsm_counters;

#define LSM_COUNT(c, field, n)                                                \
	do {                                                                  \
		if ((c) != NULL)                                              \
			atomic_fetch_add_explicit(&(c)->field, (uint64_t)(n), \
						  memory_order_relaxed);      \
	} while (0)

#define LSM_READ(c, field) \
	atomic_load_explicit(&(c)->field, memory_order_relaxed)

#endif
