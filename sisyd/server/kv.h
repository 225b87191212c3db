/* kv.h — the key-value state machine over the engine (sisyd/lsm).
 *
 * Stored value layout (engine value for a user key):
 *   | version: 8 bytes LE | user value bytes |
 * A key's version is the index of the write command that last set it; the
 * store's applied index (engine metadata, written atomically with every
 * batch: | "sisykv1" (7) | applied index: 8 bytes LE |) grows by one per
 * applied command. Today the apply path numbers commands itself; in the
 * replicated cluster the index is the Raft log index, the same on every
 * replica, and nothing else here changes.
 *
 * Writes: sisy_kv_apply() takes a group of commands in order and applies
 * them as ONE engine batch (group commit: one WAL write, one fsync when
 * sync is on), each command getting its own index. Conditions (IF VERSION,
 * IF ABSENT) are decided here, at apply time, against the state including
 * the earlier commands of the same group (the conditions of one BATCH are
 * all checked against the state before that batch); a command whose
 * condition fails
 * changes nothing (a batch command is all-or-nothing) but still consumes
 * its index, as a Raft entry would. Only one thread applies.
 *
 * Reads: any thread, concurrently with the applier.
 */
#ifndef SISY_SERVER_KV_H
#define SISY_SERVER_KV_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "log.h"

typedef struct sisy_kv_store sisy_kv_store;
typedef struct sisy_lsm sisy_lsm;

typedef struct sisy_kv_opts {
	const char *dir; /* engine directory */
	const sisy_logger *logger;
	bool sync; /* fsync every applied group */
	bool compression;
	size_t memtable_bytes; /* 0: engine default */
	size_t block_cache_bytes;
	int bloom_bits_per_key; /* -1: engine default */
} sisy_kv_opts;

sisy_err sisy_kv_open(const sisy_kv_opts *o, sisy_kv_store **out);
/* Flushes and closes the engine. */
sisy_err sisy_kv_close(sisy_kv_store *kv);
uint64_t sisy_kv_applied(sisy_kv_store *kv);
sisy_lsm *sisy_kv_engine(sisy_kv_store *kv);

/* --- reads --------------------------------------------------------------- */

/* *found false when absent. val may be NULL (EXISTS). */
sisy_err sisy_kv_get(sisy_kv_store *kv, sisy_slice key, bool *found,
		     uint64_t *version, sisy_buf *val);

typedef bool (*sisy_kv_scan_fn)(void *ctx, sisy_slice key, sisy_slice val,
				uint64_t version);
/* Keys in [from, to) (empty to: unbounded) after `after` (exclusive, may
 * be empty), ascending, until fn returns false. */
sisy_err sisy_kv_scan(sisy_kv_store *kv, sisy_slice from, sisy_slice to,
		      sisy_slice after, sisy_kv_scan_fn fn, void *ctx);

/* --- writes -------------------------------------------------------------- */

typedef enum sisy_kv_cond_kind {
	SISY_KV_COND_NONE = 0,
	SISY_KV_COND_VERSION,
	SISY_KV_COND_ABSENT,
} sisy_kv_cond_kind;

typedef struct sisy_kv_op {
	bool del;
	sisy_slice key, value;
	sisy_kv_cond_kind cond;
	uint64_t cond_version;
} sisy_kv_op;

/* One write command (PUT, DEL or BATCH) and, after apply, its outcome. */
typedef struct sisy_kv_cmd {
	const sisy_kv_op *ops;
	size_t nops;
	/* out */
	sisy_err result;	  /* SISY_OK, SISY_E_CONFLICT, or an engine
				     error (then nothing of the group applied) */
	uint64_t index;		  /* the command's index = new version */
	uint32_t failed_op;	  /* CONFLICT: first failing op */
	uint64_t current_version; /* CONFLICT: that key's version (0 absent) */
	bool existed;		  /* single DEL: the key existed */
} sisy_kv_cmd;

/* Applies cmds[0..n) in order as one engine write. Returns an engine error
 * (every command then carries it, and no index was consumed). */
sisy_err sisy_kv_apply(sisy_kv_store *kv, sisy_kv_cmd *cmds, size_t n);

#endif
