/* raftlog.h — the node's durable Raft log: entries and hard state of every
 * Raft group on the node, in one store (as TiKV's raft-engine), so that one
 * fsync covers the appends of all groups in a batch (group commit).
 *
 * Independent of the Raft core: payloads are opaque bytes, terms and indexes
 * plain uint64_t. Format, durability rules and recovery: docs/raftlog.md.
 *
 * Threads. Calls may come from any thread; one mutex guards the state and no
 * call but sisy_raftlog_read() and sisy_raftlog_flush() touches the disk or
 * waits, so an event loop can call the rest freely. A writer thread owned by
 * the log writes and fsyncs queued records in batches. It never calls back
 * into the caller: it publishes what became durable and makes
 * sisy_raftlog_event_fd() readable; the caller's loop watches that fd and
 * calls sisy_raftlog_drain() on its own thread.
 *
 * A group's log is entries (base, last]: base is the snapshot or compaction
 * point (index and term of the last entry dropped; 0/0 for a new group).
 * Appending at index i drops the group's entries >= i first (the conflicting
 * suffix), durably and in order.
 *
 * Errors. A failed write or fsync (EIO, anything but ENOSPC) puts the log in
 * a failed state for good: every later call returns SISY_E_FAILED with the
 * first error's message; a failed fsync is never retried. A full disk
 * (ENOSPC) makes sisy_raftlog_append() return SISY_E_NOSPC until the writer
 * succeeds again (it retries every 100 ms and after each compaction, for
 * which it first gives up a ballast file, see reserve_bytes); reads keep
 * working.
 */
#ifndef SISY_RAFTLOG_H
#define SISY_RAFTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "fs.h"
#include "log.h"

typedef struct sisy_raftlog sisy_raftlog;

typedef struct sisy_raftlog_opts {
	sisy_fs *fs;		   /* all file I/O goes through it (required) */
	const char *dir;	   /* the log's directory, created if missing */
	const sisy_logger *logger; /* may be NULL */
	uint64_t segment_bytes;	   /* segment target size; default 64 MiB */
	size_t max_entry_bytes;	   /* payload limit; default 16 MiB */
	size_t batch_bytes;	   /* record bytes per write + fsync; 1 MiB */
	size_t prefill_bytes;	   /* zeros written ahead of the tail so that
				    * fsync overwrites instead of growing the
				    * file; default 1 MiB, 0 turns it off */
	size_t cache_bytes;	   /* recent written payloads kept; 16 MiB */
	size_t queue_bytes;	   /* queued, unwritten bytes before
				    * SISY_E_BUSY; default 64 MiB */
	uint64_t reserve_bytes;	   /* ballast given up on a full disk so
				    * that compaction can go through;
				    * default 4 MiB, 0: none */
	bool unsafe_no_fsync;	   /* UNSAFE, benchmarks and tests only
				    * (etcd's --unsafe-no-fsync): a round's
				    * records are written but not fsync'd,
				    * and still reported durable, in order.
				    * A process crash loses nothing (the
				    * page cache keeps the bytes); a machine
				    * crash can lose acknowledged entries or
				    * leave a log that refuses to open.
				    * Nothing is synced (segment creation
				    * and sealing neither) and no zeros are
				    * written ahead. Appends do not wake the
				    * writer thread: the owner writes the
				    * rounds itself with
				    * sisy_raftlog_write_now(). Default
				    * false. */
} sisy_raftlog_opts;

/* Fills in the defaults (fs and dir stay NULL). */
void sisy_raftlog_opts_default(sisy_raftlog_opts *o);

/* Locks the directory, recovers the log (a torn tail is cut off; corruption
 * anywhere else fails with SISY_E_CORRUPT naming the file and offset), and
 * starts the writer thread. */
sisy_err sisy_raftlog_open(const sisy_raftlog_opts *o, sisy_raftlog **out);
/* Writes and syncs what is queued (unless failed), stops the writer, frees
 * everything. Returns the failure, if any. */
sisy_err sisy_raftlog_close(sisy_raftlog *lg);

/* --- writing (queued; durable once reported) ----------------------------- */

typedef struct sisy_raftlog_entry {
	uint64_t index, term;
	const uint8_t *data;
	size_t len;
} sisy_raftlog_entry;

typedef struct sisy_raftlog_hardstate {
	uint64_t term, vote, commit;
} sisy_raftlog_hardstate;

/* Appends n consecutive entries (indexes ents[0].index, +1, ...; terms not
 * decreasing) to `group`, creating the group if new. ents[0].index must be
 * in (base, last + 1]; entries from ents[0].index on are replaced. The
 * payloads are copied. Readable at once; durable when reported. */
sisy_err sisy_raftlog_append(sisy_raftlog *lg, uint64_t group,
			     const sisy_raftlog_entry *ents, size_t n);
sisy_err sisy_raftlog_set_hardstate(sisy_raftlog *lg, uint64_t group,
				    const sisy_raftlog_hardstate *hs);
/* Entries <= index are no longer needed: the caller's engine has durably
 * applied them (or a snapshot covers them). Call with the engine's durable
 * applied index, or lower to keep entries for slow followers. Segment files
 * are deleted only once every group they hold entries of is compacted past
 * them, durably. index must be <= last; at or below base it does nothing. */
sisy_err sisy_raftlog_compact(sisy_raftlog *lg, uint64_t group, uint64_t index);
/* A snapshot covering entries <= index (last of them of `term`) was
 * installed: base becomes (index, term). Later entries are kept only if the
 * log holds index with that term (as etcd does); otherwise the log is
 * emptied. index must be above base. */
sisy_err sisy_raftlog_set_snapshot(sisy_raftlog *lg, uint64_t group,
				   uint64_t index, uint64_t term);

/* --- learning what is durable --------------------------------------------- */

enum {
	SISY_RAFTLOG_DURABLE_ENTRIES = 1 << 0,
	SISY_RAFTLOG_DURABLE_HARDSTATE = 1 << 1,
	SISY_RAFTLOG_DURABLE_SNAPSHOT = 1 << 2,
};

/* What became durable for one group since its last report (coalesced: the
 * newest value of each kind). */
typedef struct sisy_raftlog_durable {
	uint64_t group;
	unsigned what; /* SISY_RAFTLOG_DURABLE_* */
	/* ENTRIES: the group's log as written is durable up to `index`, the
	 * last written entry, of term `term`. If the caller's log has since
	 * replaced that entry (another term at index), the report is stale. */
	uint64_t index, term;
	sisy_raftlog_hardstate hs;	/* HARDSTATE: the newest durable */
	uint64_t snap_index, snap_term; /* SNAPSHOT: durable base */
} sisy_raftlog_durable;

/* An fd (eventfd) that is readable while reports wait to be drained; it
 * also turns readable once when the log fails. Owned by the log; only
 * sisy_raftlog_drain() reads it. It is written once per drain at most
 * (not once per batch): the batches published meanwhile find it readable
 * already, so a busy loop is woken once for all of them. */
int sisy_raftlog_event_fd(sisy_raftlog *lg);
/* Moves up to `max` reports into out (*n of them) and re-arms the fd.
 * Returns SISY_E_FAILED once the log has failed (reports published before
 * the failure are still handed out first). */
sisy_err sisy_raftlog_drain(sisy_raftlog *lg, sisy_raftlog_durable *out,
			    size_t max, size_t *n);
/* Tickets: every queued record gets the next number. ticket() is the
 * number of the newest record queued so far (call it after a ready's
 * writes; with other threads writing too it can only be later, which is a
 * safe bound); durable_ticket() the newest one durable, records being
 * durable in queue order. With them a caller can map its own batches (a
 * Raft ready's persist id) to durability without matching per-group
 * reports. */
uint64_t sisy_raftlog_ticket(sisy_raftlog *lg);
uint64_t sisy_raftlog_durable_ticket(sisy_raftlog *lg);
/* Blocks until everything queued before the call is durable. For tests and
 * shutdown; never from an event loop. */
sisy_err sisy_raftlog_flush(sisy_raftlog *lg);
/* With unsafe_no_fsync only (otherwise it does nothing): writes what is
 * queued on the calling thread, as the writer thread would, and publishes
 * it (drain's reports; the event fd is made readable). A round there is a
 * write to the page cache, so an event loop can afford it (redis writes
 * its append-only file on its loop the same way), and the writer thread's
 * two wake-ups per round are saved. Rounds the writer thread is in the
 * middle of, or that wait (a full disk), stay with it. */
void sisy_raftlog_write_now(sisy_raftlog *lg);

/* --- reading ------------------------------------------------------------- */

typedef struct sisy_raftlog_entries {
	sisy_raftlog_entry *v;
	size_t n;
	uint8_t *mem; /* owns the payloads */
} sisy_raftlog_entries;

/* Entries [lo, hi) of `group`, stopping before the payload total would
 * exceed max_bytes (but at least one entry). SISY_E_RANGE when lo <= base
 * (compacted: send a snapshot) or hi > last + 1. Served from the cache when
 * it can; otherwise reads the segment files (may block on the disk) and
 * verifies each record's checksum. Free with sisy_raftlog_entries_free(). */
sisy_err sisy_raftlog_read(sisy_raftlog *lg, uint64_t group, uint64_t lo,
			   uint64_t hi, size_t max_bytes,
			   sisy_raftlog_entries *out);
void sisy_raftlog_entries_free(sisy_raftlog_entries *e);

/* Term of entry `index` (base's term for index == base); SISY_E_RANGE
 * outside [base, last]. Never touches the disk. */
sisy_err sisy_raftlog_term(sisy_raftlog *lg, uint64_t group, uint64_t index,
			   uint64_t *term);

typedef struct sisy_raftlog_state {
	uint64_t base_index, base_term; /* snapshot/compaction point */
	uint64_t last_index, last_term; /* == base when the log is empty */
	bool has_hardstate;
	sisy_raftlog_hardstate hs; /* the newest set (durable or not) */
} sisy_raftlog_state;

/* SISY_E_NOTFOUND for a group the log has never seen. */
sisy_err sisy_raftlog_state_of(sisy_raftlog *lg, uint64_t group,
			       sisy_raftlog_state *st);
/* Writes up to max group ids to out (ascending); returns how many groups
 * there are. */
size_t sisy_raftlog_groups(sisy_raftlog *lg, uint64_t *out, size_t max);

typedef struct sisy_raftlog_stats {
	uint64_t batches;  /* write + fsync rounds */
	uint64_t records;  /* records written */
	uint64_t bytes;	   /* record bytes written */
	uint64_t segments; /* segment files now */
	uint64_t segments_deleted;
	uint64_t cache_hits, disk_reads; /* entries served by read() */
} sisy_raftlog_stats;

void sisy_raftlog_stats_get(sisy_raftlog *lg, sisy_raftlog_stats *st);

#endif
