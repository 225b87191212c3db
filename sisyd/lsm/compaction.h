/* compaction.h — choosing what to compact (compaction.c); running it is
 * db_compact.c's job.
 *
 * POLICY (leveled, as LevelDB's)
 *   L0 is compacted into L1 once it holds l0_compaction_trigger files; a
 *   level n >= 1 once it holds more than l1_max_bytes * 10^(n-1) bytes. The
 *   level with the highest ratio goes first. From L0 the oldest file is
 *   taken together with every L0 file overlapping it (transitively), so no
 *   newer version of a key stays above an older one moved down; from Ln the
 *   file after the level's compaction pointer (round robin over the key
 *   space). Then every file of level+1 overlapping that range joins.
 *   Outputs are cut at target_file_bytes, or earlier when they would overlap
 *   too much of level+2 (10 files' worth, so a later compaction of the
 *   output stays small), but never between two versions of one user key.
 *   A single input file with nothing below it moves down without a rewrite.
 *
 * A compaction pins its input version; create and free it under mu. */
#ifndef SISY_LSM_COMPACTION_H
#define SISY_LSM_COMPACTION_H

#include <stdbool.h>
#include <stdint.h>

#include "iter.h"
#include "table.h"
#include "version.h"

typedef struct lsm_compaction {
	int level; /* inputs from level and level + 1, outputs to level + 1 */
	lsm_version *v;
	lsm_file_meta **in[2];
	int nin[2];
	lsm_file_meta **gp; /* grandparents: level + 2 files overlapping */
	int ngp;
	int gp_idx;
	bool seen_key;
	uint64_t overlapped;
	int level_ptrs[LSM_NUM_LEVELS];
	uint64_t max_output_bytes;
	uint64_t max_gp_overlap;
	bool manual; /* asked for: always rewrite, to drop old versions */
} lsm_compaction;

/* The compaction the size policy wants now, or NULL (none due, or ENOMEM).
 * Records the level's new compaction pointer in e. */
lsm_compaction *lsm_compaction_pick(lsm_version_set *vs,
				    uint64_t target_file_bytes,
				    lsm_version_edit *e);
/* All of `level` into level + 1 (manual compaction); NULL when the level is
 * empty or on ENOMEM (*nomem set). */
lsm_compaction *lsm_compaction_level(lsm_version_set *vs, int level,
				     uint64_t target_file_bytes, bool *nomem);
void lsm_compaction_free(lsm_compaction *c);

/* One input file, nothing to merge with and little overlap below. */
bool lsm_compaction_is_trivial(const lsm_compaction *c);
/* No level below the output level holds user key k: a tombstone for k can
 * go. Keys must be asked in ascending order. */
bool lsm_compaction_is_base_level(lsm_compaction *c, sisy_slice ukey);
/* Should the current output end before ikey (grandparent overlap)? Keys
 * must be asked in ascending order. */
bool lsm_compaction_stop_before(lsm_compaction *c, sisy_slice ikey);
/* Adds the removal of every input to e. */
sisy_err lsm_compaction_delete_inputs(const lsm_compaction *c,
				      lsm_version_edit *e);
/* A merging iterator over all inputs (blocks not cached). */
lsm_iter *lsm_compaction_input_iter(const lsm_compaction *c,
				    lsm_table_cache *tc);
uint64_t lsm_compaction_input_bytes(const lsm_compaction *c);

#endif
