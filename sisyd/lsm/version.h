/* version.h — the level structure of the database and its persistence.
 *
 * A VERSION is an immutable list of SSTables per level. L0 holds flushed
 * memtables, which may overlap; they are kept in file-number order, and a
 * higher number is always newer data. L1.. hold files with disjoint user-key
 * ranges sorted by key (compaction never splits one user key over two
 * files). Readers pin a version (ref) so its files outlive them.
 *
 * A VERSION EDIT describes a change (files added/removed, counters, the
 * metadata of the last flushed memtable). The VERSION SET applies edits to
 * the current version and logs them to the MANIFEST (a record log, wal.h);
 * CURRENT names the live MANIFEST. The exact encodings are at the top of
 * version_edit.c and in docs/format-wal-manifest.md.
 *
 * Locking: the version set, version refcounts and file refcounts are guarded
 * by the engine's mutex (passed in as `mu`); the functions below that take
 * `mu` expect it held and may release it around I/O. Reads of a pinned
 * version (get, iterators, overlap queries) need no lock.
 */
#ifndef SISY_LSM_VERSION_H
#define SISY_LSM_VERSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "dbformat.h"
#include "err.h"
#include "fs.h"
#include "iter.h"
#include "log.h"
#include "table.h"
#include "wal.h"

/* A table held open by its file meta (version.c). */
typedef struct lsm_file_pin lsm_file_pin;

/* One SSTable. Shared by the versions that list it (refs, under mu). */
typedef struct lsm_file_meta {
	int refs;
	uint64_t number;
	uint64_t size;
	sisy_buf smallest; /* internal keys */
	sisy_buf largest;
	/* L0 and L1 files, once a lookup opened them mapped: the table,
	 * pinned until the meta goes (set once, any thread) */
	_Atomic(lsm_file_pin *) pin;
} lsm_file_meta;

lsm_file_meta *lsm_file_meta_new(uint64_t number, uint64_t size,
				 sisy_slice smallest, sisy_slice largest);
void lsm_file_meta_unref(lsm_file_meta *f);
/* Releases f's pinned table, if any (when the meta goes). */
void lsm_file_unpin(lsm_file_meta *f);

/* --- edits --------------------------------------------------------------- */

typedef struct lsm_edit_file {
	int level;
	lsm_file_meta *f; /* for new files: owned (one ref) */
	uint64_t number;  /* for deleted files */
} lsm_edit_file;

typedef struct lsm_version_edit {
	bool has_log_number, has_next_file, has_last_seq, has_meta;
	uint64_t log_number;
	uint64_t next_file;
	uint64_t last_seq;
	sisy_buf meta;
	lsm_edit_file *added;
	int nadded, capadded;
	lsm_edit_file *deleted;
	int ndeleted, capdeleted;
	struct {
		int level;
		sisy_buf key;
	} * pointers; /* compaction pointers */
	int npointers, cappointers;
} lsm_version_edit;

void lsm_edit_init(lsm_version_edit *e);
void lsm_edit_free(lsm_version_edit *e);
void lsm_edit_set_log_number(lsm_version_edit *e, uint64_t n);
void lsm_edit_set_next_file(lsm_version_edit *e, uint64_t n);
void lsm_edit_set_last_seq(lsm_version_edit *e, uint64_t s);
sisy_err lsm_edit_set_meta(lsm_version_edit *e, sisy_slice meta);
sisy_err lsm_edit_add_file(lsm_version_edit *e, int level, uint64_t number,
			   uint64_t size, sisy_slice smallest,
			   sisy_slice largest);
sisy_err lsm_edit_delete_file(lsm_version_edit *e, int level, uint64_t number);
sisy_err lsm_edit_set_pointer(lsm_version_edit *e, int level, sisy_slice key);
/* Appends the encoding to out. */
sisy_err lsm_edit_encode(const lsm_version_edit *e, sisy_buf *out);
/* Decodes a MANIFEST record (untrusted): SISY_E_CORRUPT when malformed. */
sisy_err lsm_edit_decode(lsm_version_edit *e, sisy_slice in);

/* --- versions ------------------------------------------------------------ */

typedef struct lsm_version_set lsm_version_set;

typedef struct lsm_version {
	lsm_version_set *vset;
	struct lsm_version *prev, *next; /* the set's list of live versions */
	_Atomic int refs;
	lsm_file_meta **files[LSM_NUM_LEVELS];
	int nfiles[LSM_NUM_LEVELS];
	/* the level most in need of compaction, and how much (>= 1: needs) */
	int compaction_level;
	double compaction_score;
} lsm_version;

/* References are atomic: a reader may take one under mu (to pick the
 * current version consistently) and drop it without mu. The last drop
 * unlinks and frees the version, which needs mu: lsm_version_unref is for
 * callers holding mu, lsm_version_unref_unlocked takes mu only then (the
 * current version always holds a reference, so a reader's drop is rarely
 * the last). */
void lsm_version_ref(lsm_version *v);
void lsm_version_unref(lsm_version *v); /* under mu */
void lsm_version_unref_unlocked(lsm_version *v, pthread_mutex_t *mu);

uint64_t lsm_version_level_bytes(const lsm_version *v, int level);

/* What a lookup found. */
typedef enum lsm_get_state {
	LSM_GET_MISS = 0,
	LSM_GET_FOUND = 1,
	LSM_GET_DELETED = 2,
} lsm_get_state;

/* Looks up lookup = lsm_ikey(user_key, seq, SEEK) in the version's tables:
 * L0 newest first, then one file per level. Copies a found value into *val.
 * No lock needed; the caller pins v. flags: LSM_READ_* (table.h). */
sisy_err lsm_version_get(lsm_version *v, lsm_table_cache *tc, sisy_slice lookup,
			 int flags, sisy_buf *val, lsm_get_state *state);

/* Appends iterators over the version's tables (one per L0 file, one
 * concatenating iterator per other level) to *its. NULL entries never:
 * errors become empty iterators that report them. */
sisy_err lsm_version_add_iters(lsm_version *v, lsm_table_cache *tc,
			       bool fill_cache, lsm_iter ***its, int *n,
			       int *cap);

/* Files of `level` whose user-key range meets [lo, hi] (user keys; NULL =
 * unbounded). Fills a malloc'd array the caller frees. */
sisy_err lsm_version_overlapping(const lsm_version *v, int level,
				 const sisy_slice *lo, const sisy_slice *hi,
				 lsm_file_meta ***out, int *n);
bool lsm_version_overlaps(const lsm_version *v, int level, const sisy_slice *lo,
			  const sisy_slice *hi);

/* Index of the first file in a sorted level (>= 1) whose largest key is >=
 * the internal key ikey; nfiles when none. */
int lsm_version_find_file(const lsm_version *v, int level, sisy_slice ikey);

/* A concatenating iterator over a sorted list of files (levels >= 1); it
 * pins nothing: the caller pins the version that owns `files`. */
lsm_iter *lsm_level_iter_new(lsm_table_cache *tc, lsm_file_meta **files, int n,
			     bool fill_cache);

/* --- the version set ----------------------------------------------------- */

typedef struct lsm_vset_options {
	sisy_fs *fs;
	const char *dir;
	const sisy_logger *logger;
	uint64_t manifest_max_bytes; /* start a new MANIFEST beyond this */
	uint64_t l1_max_bytes;
	int l0_compaction_trigger;
	/* Called each time a version becomes current (the empty one of
	 * lsm_vset_new included), with mu held or before other threads run;
	 * it must neither fail nor block. NULL: nobody is told. */
	void (*installed)(void *ctx, const lsm_version *v);
	void *installed_ctx;
} lsm_vset_options;

struct lsm_version_set {
	lsm_vset_options o;
	uint64_t next_file;
	uint64_t last_seq;   /* of the last write in a flushed table */
	uint64_t log_number; /* WALs numbered below this are obsolete */
	uint64_t manifest_number;
	lsm_wal_writer *manifest;
	lsm_version *current;
	lsm_version head; /* sentinel of the live-version list */
	sisy_buf pointers[LSM_NUM_LEVELS]; /* where each level's next
					    * compaction starts */
	bool has_meta;
	sisy_buf meta; /* as of the last flushed memtable */
	bool applying; /* an edit is being logged (mu released) */
	bool fatal;    /* the last failed edit left files in an
			* unknown state: the engine must stop */
};

sisy_err lsm_vset_new(const lsm_vset_options *o, lsm_version_set **out);
void lsm_vset_free(lsm_version_set *vs);

/* Reads CURRENT and replays its MANIFEST. SISY_E_NOTFOUND when there is no
 * CURRENT (a new database); SISY_E_CORRUPT (file, offset) on damage. */
sisy_err lsm_vset_recover(lsm_version_set *vs);

/* Writes a fresh MANIFEST holding the whole current state (plus `e`, may be
 * NULL) and switches CURRENT to it: temp file, sync, rename, sync dir.
 * Same contract as lsm_vset_log_and_apply. */
sisy_err lsm_vset_new_manifest(lsm_version_set *vs, lsm_version_edit *e,
			       pthread_mutex_t *mu);

/* Applies e to the current version, logs it to the MANIFEST (synced) and
 * installs the result. Called with mu held (or NULL before any other thread
 * runs); releases it during I/O. Only one thread applies edits at a time.
 * On error nothing is installed, and vs->fatal says whether the failure
 * left the files in an unknown state (see version_set.c). Fills in
 * log_number/last_seq when unset. Starts a new MANIFEST when the current
 * one passed manifest_max_bytes. */
sisy_err lsm_vset_log_and_apply(lsm_version_set *vs, lsm_version_edit *e,
				pthread_mutex_t *mu);
/* The same, forcing (or not) a new MANIFEST. */
sisy_err lsm_vset_log_and_apply_ex(lsm_version_set *vs, lsm_version_edit *e,
				   pthread_mutex_t *mu, bool new_manifest);

static inline uint64_t lsm_vset_new_file_number(lsm_version_set *vs)
{
	return vs->next_file++;
}
/* Marks number as used (recovery saw a file with it). */
static inline void lsm_vset_mark_used(lsm_version_set *vs, uint64_t n)
{
	if (vs->next_file <= n)
		vs->next_file = n + 1;
}

/* Points <dir>/CURRENT at MANIFEST-number durably (temp file, sync,
 * rename, sync dir). *fatal: a failure left CURRENT's state unknown. */
sisy_err lsm_write_current(sisy_fs *fs, const char *dir, uint64_t number,
			   bool *fatal);

/* Calls fn for every table number listed by any live version. */
void lsm_vset_live_files(lsm_version_set *vs, void (*fn)(void *, uint64_t),
			 void *ctx);

/* The limit of bytes for a level >= 1. */
uint64_t lsm_vset_max_bytes_for_level(const lsm_version_set *vs, int level);

#endif
