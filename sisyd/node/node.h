/* node.h — a SisyphusDB node: hosts Raft groups, replicates commands into
 * one storage engine per group, serves linearizable reads, snapshots,
 * membership. The server's event loop drives it; docs/node.md explains the
 * design (threads, queues, key namespaces, exactly-once, recovery order).
 *
 * THREADS. Every function runs on the caller's event-loop thread unless
 * marked [any thread]. None of the loop functions blocks on the disk or the
 * network: writes go to the Raft log's writer thread, applies to the node's
 * apply thread; completions come back through two fds the loop watches.
 * Callbacks (write, read, membership, user events, send) run on the loop,
 * inside sisy_node_process() (or sisy_node_close()).
 *
 * DRIVING IT (the loop):
 *   epoll on sisy_node_log_fd() and sisy_node_apply_fd(); when either is
 *   readable, and after feeding anything in (step, tick, propose, read),
 *   call sisy_node_process(). Call sisy_node_tick() every tick_ms.
 *
 * ERRORS callers branch on:
 *   SISY_E_NOTLEADER  not the leader: sisy_node_leader() gives id+address
 *   SISY_E_NOLEADER   no leader known now (wait a bounded time, retry)
 *   SISY_E_BUSY       backpressure (apply lags, too many pending writes,
 *                     leadership transfer): retry shortly
 *   SISY_E_UNKNOWN_OUTCOME  the leader lost its role before the write was
 *                     answered: it may or may not apply; retry with the
 *                     same client id and sequence (exactly-once)
 *   SISY_E_NOSPC      disk full: writes refused, reads served
 *   SISY_E_FAILED     an I/O error stopped the node: restart it
 */
#ifndef SISY_NODE_H
#define SISY_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "client.h"
#include "err.h"
#include "fs.h"
#include "log.h"
#include "lsm.h"

typedef struct sisy_node sisy_node;

#define SISY_NODE_CLUSTER_ID 16
#define SISY_NODE_KEY	     32	    /* a node's identity key (Ed25519 pk) */
#define SISY_NODE_TOKEN	     32	    /* join token secret */
#define SISY_NODE_MAX_ADDR   255    /* "host:port" */
#define SISY_NODE_MAX_GROUPS 64	    /* groups hosted by one node */
#define SISY_NODE_META_GROUP 1	    /* holds users, cluster record, tokens */
#define SISY_NODE_MAX_KEY    16383u /* user key bytes (engine max - prefix) */

/* Sends one encoded frame (a PeerMessage) to node `to`. Must not block:
 * queue it on the peer connection (drop it if there is none: Raft copes). */
typedef void (*sisy_node_send_fn)(void *ctx, uint64_t to, const uint8_t *frame,
				  size_t len);
/* A user was deleted or changed role (applied on this node): end that
 * user's sessions here. */
typedef void (*sisy_node_user_fn)(void *ctx, const char *user);

typedef struct sisy_node_opts {
	sisy_fs *fs;		   /* NULL: the real file system */
	const char *dir;	   /* the node's data directory */
	const sisy_logger *logger; /* may be NULL */
	sisy_node_send_fn send;	   /* required */
	void *send_ctx;
	sisy_node_user_fn on_user_change; /* may be NULL */
	void *user_ctx;
	/* Raft timing, in ticks (the server ticks every tick_ms). */
	uint32_t election_ticks;  /* default 10 */
	uint32_t heartbeat_ticks; /* default 1 */
	uint64_t rand_seed;	  /* 0: from the node id */
	/* Bounds. */
	uint32_t max_pending_writes;  /* waiters; default 65536 */
	size_t max_apply_lag_bytes;   /* proposals refused (BUSY) above;
					 default 64 MiB */
	size_t max_apply_queue_bytes; /* a follower stops taking APPENDs
					 above; default 256 MiB */
	uint32_t read_timeout_ticks;  /* default 4 * election_ticks */
	/* Compaction: when the engine's durable applied index is more than
	 * compact_entries past the log's start, compact the log to it minus
	 * compact_keep; when the log in memory passes compact_bytes, compact
	 * to it. The engine is flushed every flush_ticks if behind. */
	uint64_t compact_entries; /* default 10000 */
	uint64_t compact_keep;	  /* default 1000 */
	uint64_t compact_bytes;	  /* default 64 MiB */
	uint32_t flush_ticks;	  /* default 100 */
	/* Exactly-once table (replicated; must be equal on every node). */
	uint64_t client_expire_entries; /* default 1000000 */
	uint32_t client_window;		/* unanswered writes per client;
					   default 4096 */
	uint32_t max_clients;		/* default 100000 */
	uint64_t token_expire_entries;	/* join tokens; default 1000000 */
	/* Engine. */
	size_t memtable_bytes;	   /* 0: engine default */
	size_t memtable_run_bytes; /* 0: engine default (docs/engine.md) */
	size_t block_cache_bytes;  /* 0: engine default */
	int compaction_nice;	   /* engine background threads' nice (0..19) */
	/* UNSAFE, benchmarks and tests only: the Raft log skips its fsyncs
	 * (sisy_raftlog_opts.unsafe_no_fsync); a machine crash can lose
	 * acknowledged writes. Default false. */
	bool unsafe_no_fsync;
} sisy_node_opts;

/* Defaults for everything but dir and send. */
void sisy_node_opts_default(sisy_node_opts *o);

/* ---- creating a node's data directory (before open) ----------------- */

typedef struct sisy_node_init {
	uint8_t cluster_id[SISY_NODE_CLUSTER_ID];
	uint64_t node_id;		 /* nonzero */
	uint8_t node_key[SISY_NODE_KEY]; /* the node's identity key */
	const char *address;		 /* "host:port" peers reach it at */
	/* bootstrap only: the first admin user */
	const char *admin_user;
	sisy_auth_verifier admin_verifier;
} sisy_node_init;

/* `sisyd init`: creates a new cluster on this node: group 1's log starts
 * with its membership (this node, a voter) and the cluster record + first
 * admin user, as entries 1 and 2. Fails with SISY_E_EXISTS if `dir` holds
 * a node already. */
sisy_err sisy_node_bootstrap(sisy_fs *fs, const char *dir,
			     const sisy_node_init *in);
/* `sisyd init --join`: after the cluster accepted the join (JoinResponse
 * gave node_id), records the identity; the groups start empty and learn
 * everything from their leaders. admin_* unused. */
sisy_err sisy_node_init_joined(sisy_fs *fs, const char *dir,
			       const sisy_node_init *in);

/* ---- life cycle -------------------------------------------------------- */

/* Opens an initialised directory (SISY_E_NOTFOUND if it is not one: a
 * node that lost its disk must join again under a new id), recovers every
 * group (docs/node.md "Recovery") and starts the apply thread. */
sisy_err sisy_node_open(const sisy_node_opts *o, sisy_node **out);
/* Stops the threads, flushes the engines, closes the log. Pending writes
 * and reads are answered SISY_E_CLOSED / SISY_E_UNKNOWN_OUTCOME first. */
sisy_err sisy_node_close(sisy_node *n);

uint64_t sisy_node_id(const sisy_node *n);
void sisy_node_cluster_id(const sisy_node *n,
			  uint8_t out[SISY_NODE_CLUSTER_ID]);

/* ---- the loop ---------------------------------------------------------- */

int sisy_node_log_fd(sisy_node *n);   /* readable: durability reports */
int sisy_node_apply_fd(sisy_node *n); /* readable: apply completions */
/* Does all pending work (see the top). SISY_E_FAILED once the node has
 * failed (stop the server, loudly); otherwise SISY_OK. */
sisy_err sisy_node_process(sisy_node *n);
/* One unit of Raft time for every group, plus housekeeping (read timeouts,
 * compaction, engine flushes, learner promotion). */
void sisy_node_tick(sisy_node *n);

/* A frame from a peer connection (a PeerMessage holding a RaftBatch).
 * SISY_E_PROTO: malformed; SISY_E_PERM: from another cluster, a node not
 * in the membership, or a node id whose key changed (lost disk). */
sisy_err sisy_node_step(sisy_node *n, const uint8_t *frame, size_t len);
/* The connection to `to` broke: probe instead of pipelining. */
void sisy_node_report_unreachable(sisy_node *n, uint64_t to);
/* For the peer handshake: may node `id` with key `key` talk to us? */
bool sisy_node_peer_allowed(sisy_node *n, uint64_t id,
			    const uint8_t key[SISY_NODE_KEY]);
/* The address of node `id` ("host:port"); false if unknown. */
bool sisy_node_peer_addr(sisy_node *n, uint64_t id, char *out, size_t cap);

/* ---- writes ------------------------------------------------------------ */

typedef enum sisy_node_cmd_kind {
	SISY_NODE_CMD_KV = 1,	    /* PUT / DEL / BATCH */
	SISY_NODE_CMD_USER_ADD = 2, /* meta group only, from here on */
	SISY_NODE_CMD_USER_DEL = 3,
	SISY_NODE_CMD_USER_ROLE = 4,
	SISY_NODE_CMD_USER_PASSWORD = 5,
	SISY_NODE_CMD_TOKEN_NEW = 7,   /* CLUSTER ADD NODE: a join token */
	SISY_NODE_CMD_TOKEN_CLAIM = 8, /* a joining node proves a token */
} sisy_node_cmd_kind;

typedef enum sisy_node_cond {
	SISY_NODE_COND_NONE = 0,
	SISY_NODE_COND_VERSION = 1, /* holds if version == cond_version
				       (0: absent) */
	SISY_NODE_COND_ABSENT = 2,
} sisy_node_cond;

typedef struct sisy_node_op {
	bool del;
	sisy_slice key, value;
	uint8_t cond; /* sisy_node_cond */
	uint64_t cond_version;
} sisy_node_op;

typedef struct sisy_node_cmd {
	uint8_t kind; /* sisy_node_cmd_kind */
	/* Exactly-once: nonzero client_id for client writes. */
	uint64_t client_id, seq, lowest_unanswered;
	/* Who asks (checked against the replicated user table at apply);
	 * NULL/"" for the node itself. */
	const char *user;
	/* KV */
	const sisy_node_op *ops;
	size_t nops;
	/* USER_*: name, role, verifier */
	const char *name;
	sisy_role role;
	sisy_auth_verifier verifier;
	/* TOKEN_NEW: address of the node to come; TOKEN_* token secret;
	 * TOKEN_CLAIM: the joining node's key */
	const char *address;
	uint8_t token[SISY_NODE_TOKEN];
	uint8_t node_key[SISY_NODE_KEY];
} sisy_node_cmd;

/* What a write did. For a retried write (same client id + sequence) it is
 * the first answer, with `duplicate` set. */
typedef struct sisy_node_result {
	sisy_err status;	  /* OK, CONFLICT, PERM, NOTFOUND, EXISTS,
				     INVAL, STALE (already answered), BUSY
				     (client window full) */
	uint64_t index;		  /* the entry's index: the new version */
	uint32_t failed_op;	  /* CONFLICT: first failing op */
	uint64_t current_version; /* CONFLICT: its key's version (0 absent) */
	bool existed;		  /* single DEL: the key existed */
	uint64_t node_id;	  /* TOKEN_*: the node id assigned */
	bool duplicate;
} sisy_node_result;

/* status is SISY_OK with *res filled in once the command committed and
 * applied here (res->status says what it did), or SISY_E_UNKNOWN_OUTCOME,
 * SISY_E_CLOSED. */
typedef void (*sisy_node_write_cb)(void *ctx, sisy_err status,
				   const sisy_node_result *res);

/* Proposes a command to `group` (the meta group for users and tokens).
 * Returns at once: SISY_OK (cb will be called exactly once), or an error
 * (cb is not called): NOTLEADER, NOLEADER, BUSY, NOSPC, TOOBIG, INVAL,
 * FAILED, NOTFOUND (no such group). */
sisy_err sisy_node_propose(sisy_node *n, uint64_t group,
			   const sisy_node_cmd *cmd, sisy_node_write_cb cb,
			   void *ctx);

/* The leader of `group` as this node knows it (0: none) and its address. */
uint64_t sisy_node_leader(sisy_node *n, uint64_t group, char *addr, size_t cap);

/* ---- reads --------------------------------------------------------------
 */

/* SISY_OK: the state of `group` on this node now reflects every write
 * acknowledged before the read began (serve it from the engine);
 * otherwise NOLEADER, TIMEOUT, CLOSED, FAILED. */
typedef void (*sisy_node_read_cb)(void *ctx, sisy_err status);

/* Linearizable read barrier (ReadIndex), on the leader or a follower.
 * Reads are batched: one Raft round serves every read asked in one turn.
 * Returns NOTFOUND (group), NOLEADER, BUSY, FAILED; cb not called then. */
sisy_err sisy_node_read_index(sisy_node *n, uint64_t group,
			      sisy_node_read_cb cb, void *ctx);

/* [any thread] Reads this node's state (after a read barrier, or as a
 * stale read). *found false when absent. val may be NULL. */
sisy_err sisy_node_get(sisy_node *n, uint64_t group, sisy_slice key,
		       bool *found, uint64_t *version, sisy_buf *val);
/* [any thread] sisy_node_get from memory only, for an event loop: the same
 * answer, or SISY_E_AGAIN (no message) when it would wait on the disk or on
 * an engine being swapped (sisy_lsm_get_cached); then use sisy_node_get off
 * the loop. */
sisy_err sisy_node_get_cached(sisy_node *n, uint64_t group, sisy_slice key,
			      bool *found, uint64_t *version, sisy_buf *val);
typedef bool (*sisy_node_scan_fn)(void *ctx, sisy_slice key, sisy_slice val,
				  uint64_t version);
/* [any thread] Keys in [from, to) (empty to: unbounded) after `after`
 * (exclusive, may be empty), ascending, until fn returns false. */
sisy_err sisy_node_scan(sisy_node *n, uint64_t group, sisy_slice from,
			sisy_slice to, sisy_slice after, sisy_node_scan_fn fn,
			void *ctx);

/* [any thread] The replicated user table (meta group). */
bool sisy_node_user_lookup(sisy_node *n, const char *name, sisy_role *role,
			   sisy_auth_verifier *v);
/* Calls fn for each user in name order. */
void sisy_node_users_list(sisy_node *n,
			  void (*fn)(void *ctx, const char *name,
				     sisy_role role),
			  void *ctx);

/* ---- membership ---------------------------------------------------------
 */

typedef enum sisy_node_change_kind {
	SISY_NODE_ADD_LEARNER = 1, /* a joined node (it is promoted to voter
				      by the leader once caught up) */
	SISY_NODE_ADD_VOTER = 2,
	SISY_NODE_REMOVE = 3,
} sisy_node_change_kind;

/* A membership change of `group`, applied through the log; cb as for
 * writes (res->index is the config entry's index). Errors: NOTLEADER,
 * CONFLICT (a change is pending, or the new leader has not committed yet:
 * retry), INVAL. ADD_* needs the node's address and key (from its
 * TOKEN_CLAIM). */
sisy_err sisy_node_change(sisy_node *n, uint64_t group, uint8_t kind,
			  uint64_t node_id, const char *address,
			  const uint8_t key[SISY_NODE_KEY],
			  sisy_node_write_cb cb, void *ctx);

/* Leadership transfer of `group` to `to` (0: the most caught-up voter).
 * NOTLEADER, INVAL, NOTFOUND. */
sisy_err sisy_node_transfer(sisy_node *n, uint64_t group, uint64_t to);

/* SIGTERM: every group this node leads hands its leadership over. Returns
 * true while some group is still led here (keep running the loop, with a
 * deadline), false when the node may close. */
bool sisy_node_shutdown_step(sisy_node *n);

typedef struct sisy_node_member {
	uint64_t id;
	char address[SISY_NODE_MAX_ADDR + 1];
	bool voter; /* else a learner */
	bool leader;
	uint64_t match; /* leader's view (0 when unknown) */
	uint64_t lag;	/* leader's last index - match */
	bool active;	/* heard from within an election timeout */
} sisy_node_member;

typedef struct sisy_node_status {
	uint64_t group, id, leader, term;
	uint8_t role; /* sisy_raft_role: 0 follower .. 3 leader */
	bool removed; /* this node is no longer in the membership */
	uint64_t commit, applied, durable_applied;
	uint64_t first_index, last_index; /* log in memory */
	uint64_t snapshot_index;	  /* compaction point */
	size_t apply_queue_bytes;
	/* apply jobs done on the event loop / handed to the apply thread */
	uint64_t apply_jobs_on_loop, apply_jobs_on_thread;
	uint64_t snapshots_sent, snapshots_installed;
	size_t n_members;
	sisy_node_member members[16]; /* SISY_RAFT_MAX_NODES */
} sisy_node_status;

/* NOTFOUND for an unknown group. */
sisy_err sisy_node_status_get(sisy_node *n, uint64_t group,
			      sisy_node_status *st);
/* The engine counters of a group's state machine (INFO's engine section).
 * NOTFOUND for an unknown group. */
sisy_err sisy_node_engine_stats(sisy_node *n, uint64_t group,
				sisy_lsm_stats *out);
/* The ids of the groups hosted (ascending); returns how many. */
size_t sisy_node_groups(sisy_node *n, uint64_t *out, size_t cap);

/* ---- snapshots: sending ---------------------------------------------------
 *
 * When a follower needs a snapshot, the node checkpoints the group's engine
 * (off the loop) and queues an outgoing snapshot. The server takes it, opens
 * a SNAPSHOT connection to sisy_node_snap_out_to(), sends the frames that
 * sisy_node_snap_out_frame() produces one after another, and reports the
 * outcome (the receiver's SnapshotAck, or a failure) with
 * sisy_node_snap_out_done(), which also frees it.
 */
typedef struct sisy_node_snap_out sisy_node_snap_out;

/* The next snapshot to send, or NULL. */
sisy_node_snap_out *sisy_node_snap_out_next(sisy_node *n);
uint64_t sisy_node_snap_out_to(const sisy_node_snap_out *s);
/* [any thread, one at a time per snapshot] The next frame (a PeerMessage:
 * header, then chunks of at most chunk_bytes, then end) into *frame
 * (replaced); *last true with the end frame. Reads the checkpoint files
 * (blocks on the disk): run it off the loop. */
sisy_err sisy_node_snap_out_frame(sisy_node_snap_out *s, size_t chunk_bytes,
				  sisy_buf *frame, bool *last);
void sisy_node_snap_out_done(sisy_node *n, sisy_node_snap_out *s,
			     sisy_err status);

/* ---- snapshots: receiving -------------------------------------------------
 *
 * The server feeds every frame of an incoming SNAPSHOT connection to
 * sisy_node_snap_in_frame() (any thread: it writes to a staging directory);
 * once it returned *complete, it calls sisy_node_snap_in_install() on the
 * loop, answers the SnapshotAck with its status, and the node takes over.
 * sisy_node_snap_in_abort() drops a broken transfer.
 */
typedef struct sisy_node_snap_in sisy_node_snap_in;

/* [loop] Starts a transfer from its first frame (the header). */
sisy_err sisy_node_snap_in_begin(sisy_node *n, const uint8_t *frame, size_t len,
				 sisy_node_snap_in **out);
/* [any thread] Chunks and the end frame. The end frame verifies every
 * file (size, checksum) and makes the staging directory durable. */
sisy_err sisy_node_snap_in_frame(sisy_node_snap_in *in, const uint8_t *frame,
				 size_t len, bool *complete);
/* [loop] Hands the complete snapshot to the group's Raft core; consumes
 * `in` whatever the outcome. SISY_E_STALE: the core did not need it. */
sisy_err sisy_node_snap_in_install(sisy_node *n, sisy_node_snap_in *in);
void sisy_node_snap_in_abort(sisy_node *n, sisy_node_snap_in *in);

/* ---- join tokens --------------------------------------------------------- */

/* A random token secret for SISY_NODE_CMD_TOKEN_NEW. */
void sisy_node_token_random(uint8_t token[SISY_NODE_TOKEN]);

#endif
