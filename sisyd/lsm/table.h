/* table.h — SSTables: building, reading, and the table cache.
 *
 * An SSTable is an immutable sorted file of (internal key, value) entries:
 * data blocks (~4 KiB, prefix-compressed with restart points, optionally
 * zlib-compressed when that is smaller), a Bloom filter over the user keys,
 * a sparse index (one entry per data block), and a fixed-size footer with a
 * format version and a magic number. Every block carries a checksum that is
 * verified when the block is read. The byte layout is in
 * docs/format-sstable.md and table_format.h.
 *
 * Memory: a table is read through a mapping of its file when the map budget
 * it is opened with has room for the whole file (the charge is the file
 * size, held until the table closes), and through pread + the block cache
 * otherwise, so the bytes of table files mapped at once never exceed the
 * budget. Why a static budget and not dropping cold mappings is in
 * docs/engine.md ("Memory").
 *
 * Readers are thread-safe once open. Errors carry the file name and offset in
 * sisy_errmsg(). */
#ifndef SISY_LSM_TABLE_H
#define SISY_LSM_TABLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "cache.h"
#include "err.h"
#include "fs.h"
#include "iter.h"
#include "stats.h"

typedef struct lsm_table_options {
	size_t block_size;	/* target uncompressed data block size */
	int restart_interval;	/* keys between restart points (16) */
	int bloom_bits_per_key; /* 0: no filter */
	bool compression;	/* zlib per block, raw when not smaller */
} lsm_table_options;

void lsm_table_options_init(lsm_table_options *o);

/* --- building ------------------------------------------------------------ */

typedef struct lsm_table_builder lsm_table_builder;

/* Writes a table into the open, empty file f (not owned: the caller syncs
 * and closes it). Counters may be NULL. */
sisy_err lsm_table_builder_new(const lsm_table_options *o, sisy_file *f,
			       const char *name, lsm_counters *counters,
			       lsm_table_builder **out);
/* Adds an entry; internal keys must strictly increase (lsm_ikey_cmp). */
sisy_err lsm_table_builder_add(lsm_table_builder *b, sisy_slice ikey,
			       sisy_slice value);
/* Bytes written so far plus the pending block: for cutting output files. */
uint64_t lsm_table_builder_size(const lsm_table_builder *b);
uint64_t lsm_table_builder_entries(const lsm_table_builder *b);
/* The key added last (at least one was added): the table's largest key,
 * borrowed until the next add, finish or abandon. */
sisy_slice lsm_table_builder_last_key(const lsm_table_builder *b);
/* Writes the last data block, filter, index and footer; frees b. */
sisy_err lsm_table_builder_finish(lsm_table_builder *b, uint64_t *file_size);
/* Frees b without finishing (after an error). */
void lsm_table_builder_abandon(lsm_table_builder *b);

/* --- the map budget ------------------------------------------------------ */

/* Bytes of table files mapped at once, shared by the tables of one engine:
 * used <= limit always (a reservation that does not fit is refused, never
 * granted in part). Thread-safe; lives as long as its tables. */
typedef struct lsm_map_budget {
	_Atomic uint64_t used;
	uint64_t limit;
} lsm_map_budget;

void lsm_map_budget_init(lsm_map_budget *b, uint64_t limit);
/* Reserves n bytes when they fit under the limit; false otherwise. */
bool lsm_map_budget_take(lsm_map_budget *b, uint64_t n);
void lsm_map_budget_give(lsm_map_budget *b, uint64_t n);
uint64_t lsm_map_budget_used(lsm_map_budget *b);

/* --- reading ------------------------------------------------------------- */

typedef struct lsm_table lsm_table;

/* Opens a table over file f (ownership passes to the table, even on error).
 * block_cache may be NULL. The table maps its file when map_budget is NULL
 * (no bound) or has room for file_size bytes, which it then holds until
 * closed; else it reads with pread. `name` is used in error messages. */
sisy_err lsm_table_open(sisy_file *f, uint64_t file_size, const char *name,
			lsm_cache *block_cache, lsm_map_budget *map_budget,
			lsm_counters *counters, bool verify_checksums,
			lsm_table **out);
/* Whether t reads through a mapping of its file. */
bool lsm_table_mapped(const lsm_table *t);
/* Whether the budget had room for t but the file system could not map
 * its file (reopening t would not map it either). */
bool lsm_table_map_failed(const lsm_table *t);
/* Whether t was opened with a budget of more than 0 bytes that had no
 * room left for it (reopened once the budget has room, it maps). */
bool lsm_table_map_starved(const lsm_table *t);
void lsm_table_close(lsm_table *t);

/* Point lookup. Skips the table when its Bloom filter rules out the user key
 * of `lookup` (counted as a Bloom negative). Otherwise finds the first entry
 * with internal key >= lookup; if its user key equals lookup's, calls
 * fn(ctx, ikey, value) once and sets *found. */
typedef void (*lsm_table_get_fn)(void *ctx, sisy_slice ikey, sisy_slice value);
sisy_err lsm_table_get(lsm_table *t, sisy_slice lookup, lsm_table_get_fn fn,
		       void *ctx, bool *found);

/* Read flags of the *_flags lookups and lsm_version_get. */
enum {
	/* Never wait on the file: SISY_E_AGAIN (no message) when the answer
	 * needs a table that is not open, a block not in the block cache, or
	 * a mapped block not used since the table opened (table_reader.c). */
	LSM_READ_NO_IO = 1 << 0,
};
sisy_err lsm_table_get_flags(lsm_table *t, sisy_slice lookup, int flags,
			     lsm_table_get_fn fn, void *ctx, bool *found);

/* An iterator over the whole table in internal-key order. With fill_cache
 * false, blocks read for it are not added to the block cache (compaction).
 * NULL on ENOMEM. The table must outlive the iterator. */
lsm_iter *lsm_table_iter_new(lsm_table *t, bool fill_cache);
/* The same, releasing ref (a pin of t from table cache tc) when destroyed;
 * NULL on ENOMEM (ref is then still the caller's). For the table cache. */
typedef struct lsm_table_cache lsm_table_cache;
typedef struct lsm_table_ref lsm_table_ref;
lsm_iter *lsm_table_iter_new_pinned(lsm_table *t, bool fill_cache,
				    lsm_table_cache *tc, lsm_table_ref *ref);

/* Reads and checks every block (tests, tools). */
sisy_err lsm_table_verify(lsm_table *t);

/* --- the table cache ----------------------------------------------------- */

/* Keeps at most max_open tables (and their files) open, least recently used
 * evicted first; a table in use is never closed under its user. Table number
 * n lives in lsm_file_name(dir, n, LSM_FILE_TABLE). The tables it opens
 * share a map budget of mmap_bytes (UINT64_MAX: no bound; 0: never map).
 * Thread-safe. */
/* lsm_table_cache and lsm_table_ref (a pinned open table) are declared
 * with the table iterators above. */

sisy_err lsm_table_cache_new(sisy_fs *fs, const char *dir, int max_open,
			     lsm_cache *block_cache, uint64_t mmap_bytes,
			     lsm_counters *counters, bool verify_checksums,
			     lsm_table_cache **out);
void lsm_table_cache_free(lsm_table_cache *tc);
/* Bytes of table files mapped now (open tables, pinned ones included). */
uint64_t lsm_table_cache_mapped_bytes(lsm_table_cache *tc);

/* The map plan: which tables may map. c lists tables (number, file size)
 * best first; the cache picks greedily, in that order, each one that fits
 * in mmap_bytes together with those picked before it. From then on a table
 * maps its file at open only if it was picked (and the budget, which also
 * counts tables still open from earlier plans, has room); an open table
 * whose mapping disagrees with the new plan is dropped from the cache, so
 * that its next use reopens it the planned way; so is a mapped table that
 * the previous plan listed and this one does not (retired). Before the
 * first plan any table may map, first come, first served (plan before
 * opening tables: the engine plans its empty version at open). SISY_E_NOMEM
 * keeps the old plan. The engine plans after every version change
 * (db_maps.c). */
typedef struct lsm_map_candidate {
	uint64_t number;
	uint64_t size;
} lsm_map_candidate;
sisy_err lsm_table_cache_plan(lsm_table_cache *tc, const lsm_map_candidate *c,
			      size_t n);
/* Whether the current plan lets table num map (true before any plan). */
bool lsm_table_cache_may_map(lsm_table_cache *tc, uint64_t num);

sisy_err lsm_table_cache_get(lsm_table_cache *tc, uint64_t num,
			     uint64_t file_size, lsm_table **t,
			     lsm_table_ref **ref);
void lsm_table_cache_release(lsm_table_cache *tc, lsm_table_ref *ref);

/* lsm_table_get through the cache. */
sisy_err lsm_table_cache_lookup(lsm_table_cache *tc, uint64_t num,
				uint64_t file_size, sisy_slice lookup,
				lsm_table_get_fn fn, void *ctx, bool *found);
/* With LSM_READ_NO_IO a table that is not open is not opened:
 * SISY_E_AGAIN. */
sisy_err lsm_table_cache_lookup_flags(lsm_table_cache *tc, uint64_t num,
				      uint64_t file_size, sisy_slice lookup,
				      int flags, lsm_table_get_fn fn, void *ctx,
				      bool *found);
/* An iterator that pins its table until destroyed. On error it is an empty
 * iterator whose status() says why (never NULL unless ENOMEM). */
lsm_iter *lsm_table_cache_iter(lsm_table_cache *tc, uint64_t num,
			       uint64_t file_size, bool fill_cache);
/* Forgets table num (its file is being deleted). */
void lsm_table_cache_evict(lsm_table_cache *tc, uint64_t num);

#endif
