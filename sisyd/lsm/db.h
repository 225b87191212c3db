/* db.h — the engine's state (struct sisy_lsm) and what its files share.
 * Internal to sisyd/lsm; the API is lsm.h. docs/engine.md tells the story.
 *
 * THREADS AND LOCKING
 *   `mu` guards every field below unless a comment says otherwise. Three
 *   kinds of threads touch an engine:
 *   - callers: reads take refs to mem, imm and the current version under mu
 *     and search without it; writes queue up (db_write.c), and the writer
 *     at the front of the queue does the WAL append and the memtable insert
 *     for its whole group with mu released: it alone writes to `mem`, `wal`
 *     and `group`, so those need no lock while it holds the front.
 *   - one background thread (db_bg.c): flushes imm and runs compactions,
 *     releasing mu around all I/O. It alone applies version edits after
 *     open, and alone creates tables.
 *   - sisy_lsm_close joins the background thread, then runs alone.
 *
 * MEMTABLES AND LOGS
 *   mem receives writes; when full it becomes imm (at most one) and a fresh
 *   mem and WAL start. imm's WAL stays open until imm is flushed, so a
 *   synced write can sync it first: a synced write thus makes every earlier
 *   write durable, in every log (the prefix promise of lsm.h).
 *
 * METADATA (sisy_lsm_meta)
 *   Three values, each tagged with a version counter that grows by one each
 *   time a batch sets metadata: `meta` (latest acknowledged), `imm_meta`
 *   (latest as of imm's last write: what flushing imm makes durable), and
 *   `durable` (what a machine crash would leave). durable only moves
 *   forward: to `meta` after a synced WAL write, to imm_meta after a flush.
 *
 * FAILURE
 *   `failed` is set once, by the first fatal error (EIO, a failed sync, a
 *   MANIFEST whose state is unknown); from then on writes return
 *   SISY_E_FAILED and background work stops, reads go on. A clean ENOSPC is
 *   not fatal: a write returns SISY_E_NOSPC; background work sets bg_nospc
 *   and retries with backoff, and writers that would have to wait for it get
 *   SISY_E_NOSPC instead of waiting.
 */
#ifndef SISY_LSM_DB_H
#define SISY_LSM_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "cache.h"
#include "dbformat.h"
#include "lsm.h"
#include "memtable.h"
#include "stats.h"
#include "table.h"
#include "version.h"
#include "wal.h"

#define DB_COMPONENT "lsm"
/* Group commit: a group stops growing at this many bytes (LevelDB's). */
#define DB_GROUP_MAX   (1u << 20)
#define DB_GROUP_SMALL (128u << 10)
/* The group buffer's size at open and after a huge batch (db_write.c). */
#define DB_GROUP_INIT 4096u
/* Entries of a group inserted together: bounds the scratch (48 bytes
 * each) whatever the batch. */
#define DB_INS_CHUNK 2048u
/* Background retries after ENOSPC back off from MIN to MAX. */
#define DB_BACKOFF_MIN_US 20000u
#define DB_BACKOFF_MAX_US 1000000u
/* A flushed memtable may go straight to this level when it overlaps
 * nothing on the way (LevelDB's kMaxMemCompactLevel). */
#define DB_MAX_MEM_LEVEL 2
#define DB_MANIFEST_MAX	 (64u << 20)

typedef struct db_meta {
	uint64_t ver; /* 0: never set */
	sisy_buf data;
} db_meta;

struct sisy_lsm_snapshot {
	uint64_t seq;
	struct sisy_lsm_snapshot *prev, *next;
};

typedef struct db_writer db_writer;

typedef struct db_manual {
	int level; /* compact every file of this level into level + 1 */
	bool done;
	sisy_err rc;
	char msg[256];
} db_manual;

struct sisy_lsm {
	/* set at open, read-only after */
	sisy_lsm_options o;
	char *dir;
	sisy_fs *fs;
	const sisy_logger *log;
	sisy_lockfile *lock;
	lsm_cache *block_cache;
	lsm_table_cache *tc;
	lsm_table_options topts;
	lsm_counters counters; /* atomics */

	pthread_mutex_t mu;
	pthread_cond_t bg_cv;	/* background work moved on */
	pthread_cond_t work_cv; /* wake the background thread */
	pthread_t bg;
	bool bg_started;
	bool shutting_down;

	lsm_version_set *vs;
	lsm_memtable *mem;
	lsm_memtable *imm;
	_Atomic bool has_imm; /* imm != NULL, readable without mu */
	uint64_t imm_last_seq;
	db_meta imm_meta;

	lsm_wal_writer *wal;	 /* mem's log; NULL with the WAL off */
	lsm_wal_writer *imm_wal; /* imm's log, until imm is flushed */
	bool wal_dirty;		 /* unsynced records in wal */
	bool imm_wal_dirty;
	bool wal_name_durable; /* the directory entry of wal is synced */

	uint64_t switches; /* memtables turned into imm so far */
	uint64_t flushed;  /* of which flushed (they flush in order) */

	uint64_t last_seq; /* of the last acknowledged write */
	db_meta meta;	   /* latest */
	db_meta durable;
	uint64_t meta_ver;

	db_writer *wq_head, *wq_tail; /* writers, front first */
	sisy_lsm_batch group;	      /* the front writer's merge buffer */
	lsm_mem_op *ins_ops; /* the front writer's memtable inserts (a chunk) */

	sisy_lsm_snapshot snaps; /* sentinel of a list, oldest first */

	bool compacting;   /* a compaction is running (mu released) */
	db_manual *manual; /* a requested manual compaction */
	bool bg_nospc;	   /* background work hit ENOSPC; retrying */
	uint64_t bg_retry_at_us;
	uint64_t bg_backoff_us;
	int stalled;  /* writers waiting for the background thread */
	char *failed; /* why the engine stopped, or NULL */
	uint64_t manifest_max_bytes;
};

/* --- db_util.c ----------------------------------------------------------- */

/* Enters the failed state (first caller wins) and wakes everyone. mu held.
 * Returns rc with the message re-attached. */
sisy_err db_fail(sisy_lsm *db, sisy_err rc, const char *what);
/* SISY_E_FAILED with the reason when failed, else SISY_OK. mu held. */
sisy_err db_check_failed(const sisy_lsm *db);
/* Background work failed with a clean ENOSPC: back off. mu held. */
void db_bg_nospc(sisy_lsm *db);
/* Background work succeeded: clear the ENOSPC state. mu held. */
void db_bg_ok(sisy_lsm *db);
sisy_err db_meta_set(db_meta *m, uint64_t ver, sisy_slice data);
/* dst = src when src is newer. */
sisy_err db_meta_advance(db_meta *dst, const db_meta *src);
void db_meta_free(db_meta *m);
uint64_t db_oldest_snapshot(const sisy_lsm *db);
void db_path(const sisy_lsm *db, char *out, size_t cap, uint64_t num,
	     lsm_file_kind kind);

/* --- db_table.c ---------------------------------------------------------- */

/* Writes the entries of `it` (already positioned or not: it seeks first)
 * into table `num`, syncs and closes it. On success *meta is a new file
 * meta (NULL when the iterator was empty: no file is left). On error the
 * file is removed. *fatal: the error was not a clean ENOSPC. No mu. */
sisy_err db_write_table(sisy_lsm *db, lsm_iter *it, uint64_t num,
			lsm_file_meta **meta, bool *fatal);
/* Opens an output table for a compaction. */
sisy_err db_table_open_output(sisy_lsm *db, uint64_t num, sisy_file **f,
			      lsm_table_builder **b);
/* Finishes, syncs and closes an output; *size set. */
sisy_err db_table_finish_output(sisy_lsm *db, sisy_file *f,
				lsm_table_builder *b, uint64_t *size,
				bool *fatal);

/* --- db_flush.c ---------------------------------------------------------- */

/* Flushes imm to a table and installs it. mu held; released during I/O.
 * Returns the error (the caller decides nothing: failure states are set
 * here). */
sisy_err db_flush_imm(sisy_lsm *db);
/* Turns mem into imm (starting a new WAL when on). Called by the front
 * writer or by close. mu held; released during I/O. */
sisy_err db_switch_memtable(sisy_lsm *db);

/* --- db_compact.c -------------------------------------------------------- */

/* Picks and runs one compaction if any is due (or the manual one). mu
 * held. Returns true if it did any work. */
bool db_maybe_compact(sisy_lsm *db);
bool db_needs_compaction(const sisy_lsm *db);

/* --- db_files.c ---------------------------------------------------------- */

/* Deletes files no version, log or MANIFEST needs. mu held; released
 * during I/O. Does nothing once failed (which files are live may then be
 * unknown). */
void db_delete_obsolete(sisy_lsm *db);

/* --- db_maps.c ---------------------------------------------------------- */

/* Tells the table cache which tables of v may map (the map plan: upper
 * levels first). The version set's `installed` callback; ctx is the
 * engine. mu held (or before other threads run). */
void db_plan_maps(void *ctx, const lsm_version *v);

/* --- db_bg.c ---------------------------------------------------------------
 */

sisy_err db_bg_start(sisy_lsm *db);
/* Waits for the thread to finish its work and exit. No mu. */
void db_bg_stop(sisy_lsm *db);
static inline void db_bg_wake(sisy_lsm *db)
{
	pthread_cond_signal(&db->work_cv);
}

/* --- db_write.c ---------------------------------------------------------- */

/* Queues a write of b (NULL: only switch the memtable, for a flush). */
sisy_err db_write(sisy_lsm *db, sisy_lsm_batch *b, bool sync, bool nowait);

/* --- db_open.c ----------------------------------------------------------- */

sisy_err db_recover(sisy_lsm *db);

/* Test hooks (tests include db.h): a tiny MANIFEST limit makes MANIFEST
 * switches happen during normal work, where crash tests can hit them. */
void lsm_db_set_manifest_max(sisy_lsm *db, uint64_t bytes);
/* Writers queued (the front one included) and writers waiting for the
 * background thread, so tests can wait for a state instead of sleeping. */
void lsm_db_debug_state(sisy_lsm *db, int *queued, int *stalled);

#endif
