/* lsm.h — the SisyphusDB storage engine: an LSM tree (memtable, WAL,
 * SSTables, leveled compaction). The only public header of sisyd/lsm/.
 *
 * It knows nothing of Raft or the network. Many instances may live in one
 * process (no global state); each owns one directory. All file I/O goes
 * through the sisy_fs given in the options (libcommon/fs.h), so tests can
 * inject crashes, ENOSPC and EIO.
 *
 * Keys are ordered bytewise (memcmp, shorter first). Every write gets a
 * sequence number, increasing by one per put/delete; a batch takes one
 * number per operation and becomes visible atomically.
 *
 * DURABILITY PROMISE
 *   - A write acknowledged with sync off (the default) survives a crash of
 *     the process: it reached the operating system, as LevelDB's do. It may
 *     be lost if the machine crashes before the next synced write or flush.
 *   - A write acknowledged with SISY_LSM_SYNC survives a crash of the
 *     machine (the WAL was fdatasync'd, and everything before it too).
 *   - With the WAL turned off (opts.wal = false) a write is durable only
 *     once its memtable has been flushed to an SSTable and the MANIFEST
 *     recording it synced. The caller keeps its own log (Raft does) and
 *     learns how far it got with sisy_lsm_meta(..., SISY_LSM_META_DURABLE).
 *   - After any crash the engine reopens to a prefix of the acknowledged
 *     writes in order: never a later write without an earlier one, never a
 *     torn batch.
 *
 * FAILURE
 *   A write or fsync error (EIO) puts the engine into a failed, read-only
 *   state: every later write returns SISY_E_FAILED and sisy_lsm_failed()
 *   says why. It is never retried and ignored. A full disk (ENOSPC) fails
 *   the write (SISY_E_NOSPC) and leaves the engine consistent and readable;
 *   writes work again once space is freed (background work retries then).
 *   Corruption found on read is reported (SISY_E_CORRUPT, with file and
 *   offset in sisy_errmsg()), never skipped silently.
 *
 * THREADS
 *   Every function may be called from any thread concurrently, except
 *   sisy_lsm_close(), which must not race with other calls on the same
 *   handle. An iterator is used by one thread at a time.
 *
 * MEMORY
 *   The resident set stays within memtable_bytes (times two while one is
 *   being flushed) + block_cache_bytes + mmap_bytes + the tables' indexes
 *   and Bloom filters (about 2.5% of the table bytes with 16-byte keys,
 *   100-byte values and 10 bits per key) + a few MiB. SSTables are read in
 *   place from a mapping of their file while the mapped files fit in
 *   mmap_bytes (their touched pages count in the resident set); the others
 *   are read with pread into the block cache. A bigger mmap_bytes makes
 *   reads faster on a database larger than the block cache (no system call
 *   per block), 0 never maps, SIZE_MAX maps every table (as LevelDB does).
 *
 * LIMITS (SISY_E_TOOBIG beyond them)
 *   key   1 .. SISY_LSM_MAX_KEY bytes (empty keys are refused, SISY_E_INVAL)
 *   value 0 .. SISY_LSM_MAX_VALUE bytes
 *   batch at most SISY_LSM_MAX_BATCH_OPS operations, SISY_LSM_MAX_BATCH_BYTES
 *   meta  0 .. SISY_LSM_MAX_META bytes
 */
#ifndef SISY_LSM_H
#define SISY_LSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "fs.h"
#include "log.h"

#define SISY_LSM_MAX_KEY	 (16u * 1024)
#define SISY_LSM_MAX_VALUE	 (8u * 1024 * 1024)
#define SISY_LSM_MAX_BATCH_OPS	 100000u
#define SISY_LSM_MAX_BATCH_BYTES (64u * 1024 * 1024)
#define SISY_LSM_MAX_META	 4096u

typedef struct sisy_lsm sisy_lsm;
typedef struct sisy_lsm_batch sisy_lsm_batch;
typedef struct sisy_lsm_iter sisy_lsm_iter;
typedef struct sisy_lsm_snapshot sisy_lsm_snapshot;

typedef struct sisy_lsm_options {
	const char *dir;	   /* required: the database directory */
	sisy_fs *fs;		   /* NULL: the real file system */
	const sisy_logger *logger; /* NULL: silent */
	bool create_if_missing;	   /* default true */
	bool error_if_exists;	   /* default false */
	bool wal;		   /* default true; false: caller keeps a log */
	bool sync;		   /* default false: the default for writes */
	bool compression;	   /* default false: zlib per block when on */
	size_t memtable_bytes;	   /* default 4 MiB */
	size_t memtable_run_bytes; /* default 4 MiB: a larger memtable is
				    * made of skiplists ("runs") this big,
				    * so inserts cost what they cost in a
				    * 4 MiB one (docs/engine.md) */
	size_t block_cache_bytes;  /* default 64 MiB; 0 disables the cache */
	size_t mmap_bytes;	   /* default 32 MiB; see MEMORY */
	size_t block_size;	   /* default 4 KiB (uncompressed) */
	int bloom_bits_per_key;	   /* default 10; 0 disables Bloom filters */
	int max_open_files;	   /* default 1000: bounds the table cache */
	size_t target_file_bytes;  /* default 2 MiB: SSTable size in L1+ */
	size_t l1_max_bytes;	   /* default 10 MiB; each level 10x the last */
	int l0_compaction_trigger; /* default 4 files */
	int l0_slowdown_trigger;   /* default 8: writers slowed by 1 ms */
	int l0_stop_trigger;	   /* default 12: writers wait */
	bool paranoid_checks;	   /* default true: verify table checksums */
	int bg_nice; /* default 0: the background thread's nice increment
		      * (0..19), as RocksDB's LowerThreadPoolCPUPriority:
		      * flushes and compactions yield a contended core to
		      * the threads serving requests; writes slow down and
		      * stop as usual if they fall behind */
} sisy_lsm_options;

/* Fills *o with the defaults above (dir = NULL). */
void sisy_lsm_options_init(sisy_lsm_options *o);

/* Opens (and recovers) the database in o->dir. The directory is locked
 * until close: a second open, from this or another process, fails with
 * SISY_E_LOCKED. Recovery replays the WAL, truncating a torn tail; corruption
 * anywhere else fails the open with SISY_E_CORRUPT naming file and offset. */
sisy_err sisy_lsm_open(const sisy_lsm_options *o, sisy_lsm **out);

/* Waits for background work, flushes the memtable when the WAL is off (so
 * nothing acknowledged is lost on a clean shutdown), releases the lock.
 * Returns the first error met while doing so; the handle is freed anyway. */
sisy_err sisy_lsm_close(sisy_lsm *db);

/* --- writes -------------------------------------------------------------- */

enum {
	SISY_LSM_SYNC = 1 << 0,	  /* fdatasync the WAL before returning */
	SISY_LSM_NOSYNC = 1 << 1, /* overrides opts.sync = true */
	/* SISY_E_BUSY, nothing written, instead of sleeping or waiting for
	 * the background thread or another writer (an event loop's write) */
	SISY_LSM_NOWAIT = 1 << 2,
};

sisy_err sisy_lsm_put(sisy_lsm *db, const void *key, size_t klen,
		      const void *val, size_t vlen, int flags);
sisy_err sisy_lsm_delete(sisy_lsm *db, const void *key, size_t klen, int flags);

/* An atomic group of puts and deletes, optionally carrying metadata. */
sisy_lsm_batch *sisy_lsm_batch_new(void);
void sisy_lsm_batch_free(sisy_lsm_batch *b);
void sisy_lsm_batch_clear(sisy_lsm_batch *b);
sisy_err sisy_lsm_batch_put(sisy_lsm_batch *b, const void *key, size_t klen,
			    const void *val, size_t vlen);
sisy_err sisy_lsm_batch_delete(sisy_lsm_batch *b, const void *key, size_t klen);
/* Attaches metadata (e.g. a Raft applied index) that becomes the engine's
 * metadata atomically with this batch: see sisy_lsm_meta(). */
sisy_err sisy_lsm_batch_set_meta(sisy_lsm_batch *b, const void *meta,
				 size_t len);
uint32_t sisy_lsm_batch_count(const sisy_lsm_batch *b);
size_t sisy_lsm_batch_bytes(const sisy_lsm_batch *b);

/* Applies the batch atomically. Concurrent writers are group-committed: one
 * WAL write (and one fdatasync if any of them asked) serves them all.
 * Writers slow down, then wait (never fail) while flushing or compaction is
 * behind. */
sisy_err sisy_lsm_write(sisy_lsm *db, sisy_lsm_batch *b, int flags);

/* True when writes of about `bytes` in all, in one or more batches, made
 * now by the only writer could have to sleep or wait (L0 at its slowdown
 * trigger; or a memtable to switch while the last one is still being
 * flushed or L0 is at its stop trigger). False promises that they need
 * not: nothing but writes makes that worse. */
bool sisy_lsm_write_would_wait(sisy_lsm *db, size_t bytes);

/* --- metadata ------------------------------------------------------------ */

enum {
	SISY_LSM_META_LATEST = 0,  /* as of the last acknowledged write */
	SISY_LSM_META_DURABLE = 1, /* as a machine crash now would leave it */
};

/* Copies the metadata into *out (empty when never set). With the WAL off,
 * DURABLE is the metadata of the last flushed memtable; with the WAL on, that
 * of the last synced WAL write or flush. */
sisy_err sisy_lsm_meta(sisy_lsm *db, int which, sisy_buf *out);

/* --- reads --------------------------------------------------------------- */

/* A consistent view as of one sequence number; release every snapshot. */
const sisy_lsm_snapshot *sisy_lsm_snapshot_new(sisy_lsm *db);
void sisy_lsm_snapshot_release(sisy_lsm *db, const sisy_lsm_snapshot *s);
uint64_t sisy_lsm_snapshot_seq(const sisy_lsm_snapshot *s);
/* The sequence number of the last acknowledged write. */
uint64_t sisy_lsm_last_seq(sisy_lsm *db);

/* Reads `key` as of snapshot `snap` (NULL: latest) into *val.
 * SISY_E_NOTFOUND when absent or deleted. */
sisy_err sisy_lsm_get(sisy_lsm *db, const sisy_lsm_snapshot *snap,
		      const void *key, size_t klen, sisy_buf *val);

/* sisy_lsm_get from memory only, for an event loop: the same answer, or
 * SISY_E_AGAIN (no message) where sisy_lsm_get would read a file — a
 * table not open, a block not in the block cache, or a block of a mapped
 * table not used since the table was opened. Blocks of mapped tables that
 * were used count as memory: their pages were faulted in once, and the
 * map budget (mmap_bytes) bounds them; the kernel may still have dropped
 * one under memory pressure, and touching it then waits for the disk.
 * Takes the engine's mutex for a moment, as sisy_lsm_get does. */
sisy_err sisy_lsm_get_cached(sisy_lsm *db, const sisy_lsm_snapshot *snap,
			     const void *key, size_t klen, sisy_buf *val);

/* An iterator over a consistent view (snap, or an implicit snapshot taken
 * now when NULL). Not positioned until a seek. Keys ascend. */
sisy_lsm_iter *sisy_lsm_iter_new(sisy_lsm *db, const sisy_lsm_snapshot *snap);
void sisy_lsm_iter_seek_first(sisy_lsm_iter *it);
/* Positions at the first key >= key. */
void sisy_lsm_iter_seek(sisy_lsm_iter *it, const void *key, size_t klen);
bool sisy_lsm_iter_valid(const sisy_lsm_iter *it);
void sisy_lsm_iter_next(sisy_lsm_iter *it);
/* Valid until the next move or free. */
const uint8_t *sisy_lsm_iter_key(const sisy_lsm_iter *it, size_t *len);
const uint8_t *sisy_lsm_iter_value(const sisy_lsm_iter *it, size_t *len);
/* SISY_OK, or the error that ended the iteration early (e.g. corruption). */
sisy_err sisy_lsm_iter_status(const sisy_lsm_iter *it);
void sisy_lsm_iter_free(sisy_lsm_iter *it);

/* --- maintenance --------------------------------------------------------- */

/* Flushes the memtable to an SSTable and waits until it is durable. */
sisy_err sisy_lsm_flush(sisy_lsm *db);

/* Compacts everything down as far as it goes and waits (tests, tools). */
sisy_err sisy_lsm_compact_all(sisy_lsm *db);

/* Writes a consistent copy of the database into `dir` (which must not
 * exist), hard-linking SSTables: flushes the memtable first, so the copy
 * holds every write acknowledged before the call and the metadata of the
 * last of them. The copy opens as a database of its own. */
sisy_err sisy_lsm_checkpoint(sisy_lsm *db, const char *dir);

/* NULL while healthy; otherwise why the engine went read-only. */
const char *sisy_lsm_failed(sisy_lsm *db);

typedef struct sisy_lsm_stats {
	uint64_t bytes_written; /* WAL + SSTable bytes written */
	uint64_t bytes_read;	/* SSTable bytes read from files */
	uint64_t wal_bytes;	/* of which WAL */
	uint64_t wal_syncs;	/* fdatasyncs of the WAL */
	uint64_t flushes;	/* memtables flushed */
	uint64_t compactions;	/* compactions finished */
	uint64_t compaction_bytes_read;
	uint64_t compaction_bytes_written;
	uint64_t stall_micros; /* writers' total time slowed or waiting */
	uint64_t stalls;       /* writes that were slowed or waited */
	uint64_t cache_hits;   /* block cache */
	uint64_t cache_misses;
	uint64_t bloom_negatives; /* table reads avoided by a Bloom filter */
	uint64_t bloom_positives; /* Bloom said maybe */
	uint64_t gets, puts, deletes, batches;
	uint64_t memtable_bytes; /* active + immutable */
	uint64_t cache_bytes;	 /* block cache usage */
	uint64_t mapped_bytes;	 /* table files mapped now (<= mmap_bytes) */
	int files_per_level[7];
	uint64_t bytes_per_level[7];
} sisy_lsm_stats;

void sisy_lsm_get_stats(sisy_lsm *db, sisy_lsm_stats *out);

#endif
