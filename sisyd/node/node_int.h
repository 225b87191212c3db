/* node_int.h — what the files of sisyd/node share (not for other modules).
 *
 * OWNERSHIP (docs/node.md "Threads"):
 *   loop thread   sisy_node and every node_group field not marked otherwise:
 *                 the Raft cores, waiters, reads, the write queue to the
 *                 log, the outbox, the address book, snapshots in flight.
 *   apply thread  node_sm (the state machine over one group's engine):
 *                 applied index, client table, membership record, cluster
 *                 record. Jobs reach it through node->aq and come back
 *                 through node->cq (+ eventfd); a job is owned by whichever
 *                 queue holds it, then by the loop again.
 *   any thread    reads of the engine (sm->lock shared; an install or close
 *                 takes it exclusive) and of the user table (its mutex).
 *   log writer    inside sisy_raftlog; reports come back through its fd.
 *
 * DURABILITY TRACKING. Each persisting ready is queued to the Raft log;
 * at the end of a loop turn one hard-state record of the reserved group 0
 * (NODE_MARK_GROUP) is queued with a sequence number ("marker") as its
 * term. The log writes its queue in order, so when the marker's record is
 * reported durable, every ready queued before it is: the node then calls
 * sisy_raft_persisted() with the newest persist id each group had queued
 * before that marker. One fsync thus covers every group (group commit).
 */
#ifndef SISY_NODE_INT_H
#define SISY_NODE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "lsm.h"
#include "node.h"
#include "raft.h"
#include "raftlog.h"

#define NODE_MARK_GROUP	  0 /* raftlog group of the durability markers */
#define NODE_PATH	  4096
#define NODE_MAX_OPS	  10000u      /* ops in one KV command (client limit) */
#define NODE_MAX_ENTRY	  (12u << 20) /* bytes of one Raft entry */
#define NODE_BATCH_OPS	  50000u      /* engine ops per apply batch */
#define NODE_BATCH_BYTES  (32u << 20) /* engine bytes per apply batch */
#define NODE_FRAME_BYTES  (4u << 20)  /* a RaftBatch frame is cut here */
#define NODE_MAX_READS	  65536u      /* pending linearizable reads */
#define NODE_EXPIRE_EVERY 1024u	      /* client expiry at these indexes */
#define NODE_CMD_INIT	  6	      /* bootstrap: cluster record + admin */
#define NODE_CMD_BUF_KEEP (64u << 10) /* cmd_buf capacity kept between uses */

/* Engine key namespaces (first byte of every engine key). */
#define NS_DATA	  'k' /* 'k' key            -> | version u64 | value | */
#define NS_CLIENT 'c' /* 'c' id(BE64)       -> client header */
#define NS_RESULT 'r' /* 'r' id(BE64) seq(BE64) -> a result */
#define NS_USER	  'u' /* 'u' name           -> user record */
#define NS_META	  'm' /* 'm' "cluster" / "members" */
#define NS_TOKEN  't' /* 't' hash(32)       -> join token record */

typedef struct node_group node_group;
typedef struct node_sm node_sm;

/* ---- cmd.c: entry, result and record encodings ------------------------- */

/* A decoded NORMAL entry; slices borrow from the entry's data; ops (beyond one)
 * are malloc'd (node_cmd_view_free). The fields from `name` on belong to the
 * other commands and are left unset for a KV command (not zeroed: ~700
 * bytes per write). */
typedef struct node_cmd_view {
	uint8_t kind;
	uint64_t client_id, seq, lowest;
	char user[SISY_AUTH_MAX_USER + 1];
	sisy_node_op *ops; /* &one when nops is 1: never copy a view */
	size_t nops;
	sisy_node_op one;
	char name[SISY_AUTH_MAX_USER + 1];
	uint8_t role;
	sisy_auth_verifier verifier;
	char address[SISY_NODE_MAX_ADDR + 1];
	uint8_t token_hash[32];
	uint8_t node_key[SISY_NODE_KEY];
	uint8_t cluster_id[SISY_NODE_CLUSTER_ID];
	uint64_t node_id;
} node_cmd_view;

sisy_err node_cmd_encode(const sisy_node_cmd *c, sisy_buf *out);
/* The INIT command of a bootstrap (cluster record and first admin). */
sisy_err node_cmd_encode_init(const sisy_node_init *in, sisy_buf *out);
/* SISY_E_CORRUPT on malformed data (a bug or a damaged log). */
sisy_err node_cmd_decode(sisy_slice data, node_cmd_view *v);
void node_cmd_view_free(node_cmd_view *v);
void node_token_hash(const uint8_t token[SISY_NODE_TOKEN], uint8_t out[32]);

#define NODE_RESULT_LEN 31
void node_result_encode(const sisy_node_result *r,
			uint8_t out[NODE_RESULT_LEN]);
bool node_result_decode(const uint8_t *p, size_t len, sisy_node_result *r);

/* Config entry context: | u8 version 1 | key[32] | address bytes |. */
sisy_err node_conf_ctx_encode(const char *addr,
			      const uint8_t key[SISY_NODE_KEY], sisy_buf *out);
bool node_conf_ctx_decode(sisy_slice ctx, char *addr, size_t cap,
			  uint8_t key[SISY_NODE_KEY]);

/* Raft log payload of an entry: | type u8 | data |. */
sisy_err node_payload_build(const sisy_raft_entry *e, sisy_buf *out);

/* The engine key of a user key: | NS_DATA | key | (out cleared first). */
sisy_err node_data_key(sisy_slice key, sisy_buf *out);

/* ---- users.c: the user table (any thread; one mutex) ------------------- */

typedef struct node_users node_users;
typedef struct node_user {
	char name[SISY_AUTH_MAX_USER + 1];
	sisy_role role;
	sisy_auth_verifier v;
} node_user;

node_users *node_users_new(void);
void node_users_free(node_users *u);
void node_users_clear(node_users *u);
bool node_users_get(node_users *u, const char *name, node_user *out);
sisy_err node_users_put(node_users *u, const node_user *user);
void node_users_del(node_users *u, const char *name);
size_t node_users_count(node_users *u);
size_t node_users_admins(node_users *u);
void node_users_each(node_users *u,
		     void (*fn)(void *ctx, const char *name, sisy_role role),
		     void *ctx);
/* Record in the engine: | u8 version 1 | u8 role | salt 16 | u64 ops |
 * u64 mem | pk 32 |. */
#define NODE_USER_REC 66
void node_user_encode(const node_user *u, uint8_t out[NODE_USER_REC]);
bool node_user_decode(const char *name, const uint8_t *p, size_t len,
		      node_user *out);

/* ---- clients.c: the exactly-once table (apply thread) ------------------ */

/* Results kept inside a client's header record: those of the seqs in
 * (max_seq - NODE_INLINE, max_seq] at or above lowest. A pipelining client
 * (depth up to NODE_INLINE) thus never writes nor deletes an 'r' record;
 * deeper ones spill the oldest results to 'r' records. */
#define NODE_INLINE 64u

typedef struct node_res_ent {
	uint64_t seq;
	sisy_node_result res;
} node_res_ent;

typedef struct node_client {
	uint64_t id;	     /* nonzero */
	uint64_t lowest;     /* seqs below were answered: refused as STALE */
	uint64_t max_seq;    /* highest seq with a recorded result */
	uint64_t last_index; /* log index of its last write (expiry) */
	/* 'r' records may exist only for seqs in [lowest, r_end) (a superset:
	 * none when r_end <= lowest); every other recorded result is inline. */
	uint64_t r_end;
	/* inline results, ascending seq, in inl[inl_head .. inl_head + ninl),
	 * at most NODE_INLINE of them within (max_seq - NODE_INLINE, max_seq];
	 * the array grows with the client's depth, to NODE_INLINE entries
	 * (3.5 KiB) at most */
	node_res_ent *inl;
	uint32_t ninl, inl_head, inl_cap;
	bool dirty; /* header changed in the engine batch being built */
} node_client;

typedef struct node_clients {
	node_client *slots; /* open addressing, id 0 = empty */
	size_t cap, n;
	/* bumped whenever a member may have changed slot (grow, delete,
	 * clear, free): a node_client pointer found at moves m stays that
	 * client's while moves == m (adding without growing moves none) */
	uint64_t moves;
} node_clients;

void node_clients_free(node_clients *t);
void node_clients_clear(node_clients *t);
node_client *node_clients_find(node_clients *t, uint64_t id);
/* Inserts a zeroed client; NULL when out of memory. */
node_client *node_clients_add(node_clients *t, uint64_t id);
void node_clients_del(node_clients *t, uint64_t id);

/* The inline result of seq, or NULL. */
const sisy_node_result *node_client_res_find(const node_client *c,
					     uint64_t seq);
/* Adds the inline result of a seq not recorded yet (seq within the span
 * above); SISY_E_NOMEM. */
sisy_err node_client_res_add(node_client *c, uint64_t seq,
			     const sisy_node_result *res);
/* Takes out the oldest inline result if its seq is below `bound`. */
bool node_client_res_pop(node_client *c, uint64_t bound, node_res_ent *out);
/* Drops every inline result whose seq is below `bound`; how many. */
size_t node_client_res_drop(node_client *c, uint64_t bound);

/* Header record layouts (value of 'c' id), u64s little-endian:
 *   v1 (24 bytes): | lowest | max_seq | last_index |
 *   v2 (55 bytes): v1 | the result of max_seq (NODE_RESULT_LEN, cmd.c) |
 *   v3: v1 | 2 u8 | r_end varint | n u8 | n results, seq descending:
 *        | max_seq - seq varint | st u8 | body |
 *        st < 0x80: status (st & 0x3f), existed (st & 0x40), body =
 *          last_index - index varint (failed_op, current_version and
 *          node_id are 0);
 *        st == 0x80: body = NODE_RESULT_LEN bytes (cmd.c).
 * v1 and v2 are read (their other results are 'r' records); v3 written. */
#define NODE_CLIENT_REC	    24
#define NODE_CLIENT_REC_RES (NODE_CLIENT_REC + NODE_RESULT_LEN)
#define NODE_CLIENT_REC_MAX             \
	(NODE_CLIENT_REC + 1 + 10 + 1 + \
	 NODE_INLINE * (10 + 1 + NODE_RESULT_LEN))
/* Encodes c's header (v3) into out (cleared first). */
sisy_err node_client_encode(const node_client *c, sisy_buf *out);
/* Fills a fresh client c (id set, nothing inline) from a header record of
 * any layout; SISY_E_CORRUPT (no message) or SISY_E_NOMEM. */
sisy_err node_client_decode(node_client *c, const uint8_t *v, size_t len);

/* ---- sm.c, sm_meta.c, sm_snap.c: the state machine (apply thread) ------ */

typedef struct node_member_rec {
	uint64_t id;
	bool voter;
	uint8_t key[SISY_NODE_KEY];
	char address[SISY_NODE_MAX_ADDR + 1];
} node_member_rec;

typedef struct node_members {
	size_t n;
	node_member_rec m[SISY_RAFT_MAX_NODES];
} node_members;

typedef struct node_cluster_rec {
	bool set;
	uint8_t cluster_id[SISY_NODE_CLUSTER_ID];
	uint64_t next_node_id;
} node_cluster_rec;

/* What the state machine tells the loop about an applied entry. */
typedef struct node_applied {
	uint64_t index, term;
	uint64_t client_id, seq;
	sisy_node_result res;
} node_applied;

typedef struct node_sm_cfg {
	uint64_t self;
	uint64_t group;
	uint64_t client_expire_entries;
	uint32_t client_window;
	uint32_t max_clients;
	uint64_t token_expire_entries;
	size_t memtable_bytes, memtable_run_bytes, block_cache_bytes;
	int compaction_nice;
} node_sm_cfg;

struct node_sm {
	node_sm_cfg cfg;
	sisy_fs *fs;
	const sisy_logger *logger;
	char gdir[NODE_PATH];  /* the group's directory */
	char dbname[32];       /* the engine's directory in gdir */
	pthread_rwlock_t lock; /* db swap vs readers */
	sisy_lsm *db;
	/* apply thread */
	uint64_t applied, applied_term;
	node_clients clients;
	node_members members;
	node_cluster_rec cluster;
	node_users *users; /* meta group: shared with readers */
	/* scratch of one batch */
	sisy_lsm_batch *batch;
	sisy_buf val;
	sisy_buf key; /* a data key being built (no allocation per write) */
};

/* Opens the group's engine (creating it when new): reads gdir/CURRENT,
 * deletes leftovers (other db-*, snap-*), loads the state. */
sisy_err node_sm_open(node_sm *sm, sisy_fs *fs, const char *gdir,
		      const node_sm_cfg *cfg, const sisy_logger *logger,
		      node_users *users);
void node_sm_close(node_sm *sm);
/* (Re)loads clients, members, cluster record and users from the engine. */
sisy_err node_sm_load(node_sm *sm);
/* Applies entries in order (skipping those at or below sm->applied).
 * Results of NORMAL and CONFIG entries go to out[] (*nout of them, room
 * for n). Users deleted or changed go to *events (NUL-separated names).
 * An engine error leaves sm as it was (state reloaded) and is returned;
 * entries applied by earlier engine batches stay applied, with their
 * results in out[]. wflags go to every sisy_lsm_write: SISY_LSM_NOWAIT on
 * the event loop, where BUSY means "finish on the apply thread". */
sisy_err node_sm_apply(node_sm *sm, const sisy_raft_entry *ents, size_t n,
		       node_applied *out, size_t *nout, sisy_buf *events,
		       int wflags);
/* Engine metadata: | "sisynd1" | applied u64 | applied term u64 |. */
sisy_err node_sm_meta(sisy_lsm *db, int which, uint64_t *applied,
		      uint64_t *term);
sisy_err node_sm_durable_applied(node_sm *sm, uint64_t *applied);
/* Helpers for sm_meta.c. */
sisy_err node_sm_batch_write(node_sm *sm, uint64_t index, uint64_t term,
			     int wflags);
sisy_err node_sm_apply_meta(node_sm *sm, const sisy_raft_entry *e,
			    const node_cmd_view *v, sisy_node_result *res,
			    sisy_buf *events);
sisy_err node_sm_apply_config(node_sm *sm, const sisy_raft_entry *e,
			      sisy_node_result *res);
sisy_err node_sm_save_members(node_sm *sm);
sisy_err node_sm_load_meta(node_sm *sm);
/* Role of `user` now ("" = the node itself: admin). */
sisy_role node_sm_role_of(node_sm *sm, const char *user);

/* Checkpoint of the engine into gdir/snap-<applied> (reused when it
 * exists), with the files' names, sizes and checksums. */
typedef struct node_file {
	char name[64];
	uint64_t size, checksum;
} node_file;
sisy_err node_sm_checkpoint(node_sm *sm, char *dir, size_t cap, uint64_t *index,
			    uint64_t *term, node_file **files, size_t *nfiles);
/* Makes gdir/<dbname> (a verified, durable staged snapshot) the engine:
 * opens it, checks its applied index, points CURRENT at it, swaps it in,
 * removes the old engine, reloads the state. */
sisy_err node_sm_install(node_sm *sm, const char *dbname, uint64_t index);
/* Removes a directory and its files (flat), syncing the parent. */
sisy_err node_rmdir_all(sisy_fs *fs, const char *dir);

/* ---- apply.c: the apply thread ------------------------------------------ */

typedef enum node_job_kind {
	JOB_APPLY = 1,
	JOB_INSTALL,
	JOB_CHECKPOINT,
	JOB_FLUSH,
	JOB_RMDIR,
} node_job_kind;

typedef struct node_job {
	struct node_job *next;
	node_job_kind kind;
	node_group *g;
	/* APPLY: copies of the committed entries */
	sisy_raft_entry *ents;
	size_t n;
	uint8_t *mem;
	size_t bytes;
	size_t ents_cap, mem_cap; /* kept across reuse (loop.c's spares) */
	/* INSTALL: staged engine directory name, snapshot index */
	char dbname[32];
	uint64_t index;
	/* CHECKPOINT, RMDIR: a directory */
	char path[NODE_PATH];
	/* results */
	sisy_err err;
	char errmsg[256];
	node_applied *res;
	size_t nres;
	uint64_t applied, applied_term;
	sisy_buf events; /* users to end sessions of */
	bool members_changed;
	bool on_loop;	  /* APPLY: applied on the loop (apply.c) */
	node_file *files; /* CHECKPOINT */
	size_t nfiles;
	node_members members; /* INSTALL, or APPLY if members_changed */
} node_job;

sisy_err node_apply_start(sisy_node *n);
/* Stops after the queued jobs are done. */
void node_apply_stop(sisy_node *n);
void node_apply_push(sisy_node *n, node_job *j);
/* Loop: the finished jobs, oldest first (a list through next). */
node_job *node_apply_take(sisy_node *n);
void node_job_free(node_job *j);

/* ---- the loop-side group ------------------------------------------------ */

typedef struct node_waiter {
	uint64_t term, index;
	uint64_t client_id, seq;
	sisy_node_write_cb cb;
	void *ctx;
} node_waiter;

typedef struct node_read_cb {
	sisy_node_read_cb cb;
	void *ctx;
} node_read_cb;

/* Reads that share one ReadIndex request. */
typedef struct node_read_batch {
	struct node_read_batch *next;
	uint64_t ctx;	/* the core's request id (0: not issued yet) */
	uint64_t index; /* known read index (valid if has_index) */
	bool has_index;
	uint64_t deadline; /* tick */
	node_read_cb *cbs;
	size_t n, cap;
} node_read_batch;

typedef struct node_persist {
	uint64_t persist_id;
	uint64_t mark; /* the marker that covers it */
} node_persist;

/* A checkpoint kept for sending (refcounted by outgoing snapshots). */
typedef struct node_ckpt {
	uint32_t refs;
	uint64_t created; /* tick */
	node_group *g;
	char dir[NODE_PATH];
	uint64_t index;
	sisy_raft_snapshot_meta meta;
	node_file *files;
	size_t nfiles;
} node_ckpt;

typedef struct node_snap_wait {
	uint64_t to, term;
} node_snap_wait;

/* The persistence of a ready that carried a snapshot, held back until the
 * engine holds the snapshot (rule 3 of raft.h). */
typedef struct node_deferred {
	bool active;
	uint64_t persist_id;
	sisy_raft_snapshot_meta snap;
	sisy_raft_entry *ents;
	size_t n;
	uint8_t *mem;
	bool has_hs;
	sisy_raft_hard_state hs;
} node_deferred;

struct node_group {
	uint64_t id;
	sisy_node *n;
	sisy_raft *raft;
	char dir[NODE_PATH];
	node_sm sm; /* apply thread (and readers) */
	/* loop */
	uint8_t role;
	uint64_t leader, term;
	uint64_t applied; /* completed applies */
	uint64_t applied_term;
	uint64_t handed;     /* last index queued for apply */
	size_t queued_bytes; /* entry bytes queued, not yet applied */
	bool installing;     /* a snapshot install is in flight */
	node_deferred deferred;
	bool removed;
	node_persist *persists; /* FIFO */
	size_t np, capp, headp;
	node_waiter *waiters; /* FIFO by index */
	size_t nw, capw, headw;
	node_read_batch *reads;	    /* issued, oldest first */
	node_read_batch *read_next; /* collecting */
	size_t nreads;
	node_ckpt *ckpt; /* newest checkpoint */
	bool ckpt_pending;
	node_snap_wait *snap_waits;
	size_t nsnap_waits, capsnap_waits;
	sisy_node_snap_in *staged; /* received, stepped, awaiting install */
	uint32_t next_db;	   /* staging directory numbers */
	bool flush_pending;
	uint64_t last_flush_tick; /* or when durable last moved */
	uint64_t last_durable;
	uint64_t snapshots_sent, snapshots_installed;
	uint64_t jobs_on_loop, jobs_on_thread; /* apply jobs done where */
};

/* ---- the node ----------------------------------------------------------- */

typedef struct node_peer {
	uint64_t id;
	bool has_key;
	uint8_t key[SISY_NODE_KEY];
	char address[SISY_NODE_MAX_ADDR + 1];
} node_peer;

typedef struct node_outbox {
	uint64_t to;
	sisy_buf msgs; /* encoded RaftMessage fields of a RaftBatch */
	size_t nmsgs;
} node_outbox;

/* A queued write to the Raft log that could not be handed over yet
 * (the log's queue was full, or the disk). */
typedef enum node_wop_kind {
	WOP_APPEND = 1,
	WOP_HARDSTATE,
	WOP_COMPACT,
	WOP_SNAPSHOT,
} node_wop_kind;

typedef struct node_wop {
	struct node_wop *next;
	node_wop_kind kind;
	uint64_t group;
	sisy_raftlog_entry *ents;
	size_t n;
	uint8_t *mem;
	sisy_raftlog_hardstate hs;
	uint64_t index, term;
} node_wop;

struct sisy_node {
	sisy_node_opts o;
	sisy_fs *fs;
	char dir[NODE_PATH];
	uint64_t id;
	uint8_t cluster_id[SISY_NODE_CLUSTER_ID];
	uint8_t key[SISY_NODE_KEY];
	sisy_raftlog *log;
	node_group *groups[SISY_NODE_MAX_GROUPS]; /* ascending ids */
	size_t ngroups;
	node_users *users; /* the meta group's table */
	/* Raft log writes */
	node_wop *wq_head, *wq_tail;
	uint64_t mark_next;    /* next marker to queue */
	uint64_t mark_durable; /* newest marker reported durable */
	bool mark_needed;
	sisy_buf scratch; /* payload building */
	sisy_buf cmd_buf; /* sisy_node_propose's encoding (loop thread) */
	/* apply thread */
	pthread_t apply_thread;
	bool apply_started;
	pthread_mutex_t amu;
	pthread_cond_t acv;
	node_job *aq_head, *aq_tail;
	bool astop;
	bool asleep;	   /* the apply thread waits on acv (amu) */
	bool done_on_loop; /* a job was applied on the loop this turn */
	pthread_mutex_t cmu;
	node_job *cq_head, *cq_tail;
	int cfd;
	/* finished apply jobs kept with their buffers (loop.c) */
	node_job *job_spare;
	size_t njob_spare;
	/* outbox */
	node_outbox *out;
	size_t nout, capout;
	/* address book */
	node_peer *peers;
	size_t npeers, cappeers;
	/* outgoing snapshots ready for the server */
	sisy_node_snap_out *snap_head, *snap_tail;
	/* state */
	uint64_t ticks;
	uint64_t next_ctx;
	size_t nwaiters;
	bool failed;
	char failmsg[512];
	bool nospace;
	bool closing;
	bool shutting_down;
};

/* node.c */
/* dir/name into out; SISY_E_TOOBIG when it does not fit. */
sisy_err node_path(char *out, size_t cap, const char *dir, const char *name);
node_group *node_group_find(sisy_node *n, uint64_t id);
/* Stops the node for good after an I/O error: loudly. */
void node_fail(sisy_node *n, sisy_err rc, const char *what);
void node_book_put(sisy_node *n, uint64_t id, const char *addr,
		   const uint8_t *key);
node_peer *node_book_find(sisy_node *n, uint64_t id);
/* Learns addresses and keys from a config entry's data. */
void node_book_conf(sisy_node *n, const sisy_raft_entry *e);
void node_book_members(sisy_node *n, const node_members *m);
sisy_err node_write_file(sisy_fs *fs, const char *dir, const char *name,
			 const void *data, size_t len);

/* group.c */
sisy_err node_group_open(sisy_node *n, uint64_t id, node_group **out);
void node_group_close(node_group *g);

/* wq.c: writes to the Raft log and their durability */
void node_wq_append(sisy_node *n, uint64_t group, const sisy_raft_entry *e,
		    size_t cnt);
void node_wq_hardstate(sisy_node *n, uint64_t group,
		       const sisy_raft_hard_state *hs);
void node_wq_compact(sisy_node *n, uint64_t group, uint64_t index);
void node_wq_snapshot(sisy_node *n, uint64_t group, uint64_t index,
		      uint64_t term);
/* Records that `persist_id` of g is durable once the next marker is. */
void node_wq_persist(node_group *g, uint64_t persist_id);
/* End of a turn: hands the backlog over, queues the marker. */
void node_wq_flush(sisy_node *n);
/* Drains the log's reports; calls sisy_raft_persisted(). */
void node_wq_drain(sisy_node *n);
void node_wq_free(sisy_node *n);

/* peer.c: RaftBatch frames */
sisy_err node_outbox_add(sisy_node *n, uint64_t group, const sisy_raft_msg *m);
void node_outbox_flush(sisy_node *n);
void node_outbox_free(sisy_node *n);

/* loop.c */
void node_loop_ready(node_group *g);
void node_loop_completions(sisy_node *n);
void node_housekeeping(sisy_node *n);

/* write.c */
void node_waiters_applied(node_group *g, const node_applied *a, size_t n);
/* Answers every pending write of g with `status`. */
void node_waiters_fail(node_group *g, sisy_err status);
sisy_err node_waiter_add(node_group *g, uint64_t term, uint64_t index,
			 uint64_t client_id, uint64_t seq,
			 sisy_node_write_cb cb, void *ctx);
void node_promote_learners(node_group *g);
/* The peer was heard from within an election timeout (status' "active",
 * leadership transfer, learner promotion). */
bool node_heard_from(const sisy_node *n, const sisy_raft_progress *p);

/* read.c */
void node_reads_issue(node_group *g);
void node_reads_ready(node_group *g, const sisy_raft_read_state *rs, size_t n);
void node_reads_applied(node_group *g);
void node_reads_tick(node_group *g);
void node_reads_reissue(node_group *g);
void node_reads_fail_all(node_group *g, sisy_err status);

/* snap_out.c */
void node_snap_request(node_group *g, const sisy_raft_msg *m);
void node_snap_checkpoint_done(node_group *g, node_job *j);
void node_snap_out_free_all(sisy_node *n);
void node_ckpt_unref(sisy_node *n, node_ckpt *c);

/* snap_in.c */
void node_snap_in_installed(node_group *g, node_job *j);
void node_snap_in_free(sisy_node_snap_in *in);
/* The staged directory's name of an accepted snapshot. */
const char *node_snap_in_dbname(const sisy_node_snap_in *in);

#endif
