/* memtable.h — the in-memory write buffer: a skiplist of internal keys
 * (dbformat.h) with their values, living in an arena.
 *
 * Concurrency: one writer at a time (the engine's front writer, or
 * recovery) calls lsm_memtable_add; any number of readers run lock-free at
 * the same time. Entries are never removed or changed, so a reader sees
 * every entry published before its read began and possibly some later ones
 * (which the sequence number in the lookup key filters out).
 * Lifetime: reference-counted; lsm_memtable_new returns one reference. */
#ifndef SISY_LSM_MEMTABLE_H
#define SISY_LSM_MEMTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "dbformat.h"
#include "err.h"
#include "iter.h"

typedef struct lsm_memtable lsm_memtable;

/* NULL on ENOMEM. */
lsm_memtable *lsm_memtable_new(void);
/* A memtable expected to hold about `bytes` of entries, with a Bloom filter
 * over its user keys (about one bit per 8 bytes of entries), so lookups of
 * absent keys skip the skiplist. */
lsm_memtable *lsm_memtable_new_sized(size_t bytes);
/* The same, made of runs: skiplists of about run_bytes each, the newest
 * taking the inserts, so an insert costs what one into a run_bytes
 * memtable costs (memtable.c). run_bytes 0, or >= bytes: one run. */
lsm_memtable *lsm_memtable_new_runs(size_t bytes, size_t run_bytes);
/* Runs so far; any thread. */
int lsm_memtable_runs(const lsm_memtable *m);
void lsm_memtable_ref(lsm_memtable *m);
void lsm_memtable_unref(lsm_memtable *m);

/* Adds key@seq of type t (value ignored for deletes). Single writer.
 * (key, seq) must be new: sequence numbers are never reused. */
sisy_err lsm_memtable_add(lsm_memtable *m, uint64_t seq, lsm_vtype t,
			  sisy_slice key, sisy_slice value);

/* One entry of lsm_memtable_add_batch. */
typedef struct lsm_mem_op {
	sisy_slice key, value; /* value ignored for deletes */
	uint64_t seq;
	lsm_vtype type;
} lsm_mem_op;

/* Adds n entries (any order; distinct sequence numbers), as n calls of
 * lsm_memtable_add would, but with the skiplist searches of several entries
 * interleaved so that their cache misses overlap (memtable.c). On error
 * (NOMEM), a prefix of ops is in the memtable. */
sisy_err lsm_memtable_add_batch(lsm_memtable *m, const lsm_mem_op *ops,
				size_t n);
typedef enum lsm_mem_result {
	LSM_MEM_MISS = 0,    /* no version of the key at or below the seq */
	LSM_MEM_FOUND = 1,   /* *value points into the memtable */
	LSM_MEM_DELETED = 2, /* the newest visible version is a delete */
} lsm_mem_result;

/* Looks up the newest version of lookup's user key with a sequence at most
 * lookup's (lookup = lsm_ikey(user_key, seq, LSM_TYPE_SEEK)). *value stays
 * valid while the caller holds a reference. */
lsm_mem_result lsm_memtable_get(lsm_memtable *m, sisy_slice lookup,
				sisy_slice *value);

/* False when the memtable surely holds no version of user_key (its Bloom
 * filter says so); true otherwise, and always without a filter. */
bool lsm_memtable_may_contain(const lsm_memtable *m, sisy_slice user_key);

/* Bytes of entries and skiplist nodes (what fills a memtable); any thread. */
size_t lsm_memtable_usage(const lsm_memtable *m);
/* Bytes of memory held (arena blocks); any thread. */
size_t lsm_memtable_memory(const lsm_memtable *m);
/* For tests: true when every level of the skiplist is in order (searches
 * stay right even when an upper level is not, only slower -- so only this
 * sees such a bug). Not concurrently with the writer. */
bool lsm_memtable_check_levels(lsm_memtable *m);
/* Entries added; any thread. */
uint64_t lsm_memtable_entries(const lsm_memtable *m);

/* An iterator over every entry in internal-key order; holds a reference
 * until destroyed. NULL on ENOMEM. */
lsm_iter *lsm_memtable_iter_new(lsm_memtable *m);
/* The same for a flush: leaves out every version shadowed by a newer one
 * of its user key whose sequence number is <= smallest_snapshot (no
 * snapshot can see it: compaction's rule, docs/engine.md). */
lsm_iter *lsm_memtable_flush_iter_new(lsm_memtable *m,
				      uint64_t smallest_snapshot);

#endif
