/* sim.h — the deterministic Raft simulator's shared types (tests/sim).
 *
 * One `sim` is one seed's world: 3 or 5 Raft nodes to start with (more are
 * created as members are replaced or added), each a sisy_raft core with a
 * simulated disk (sim_disk.c), a small key-value state machine and the
 * request bookkeeping of a real node (sim_node.c); a network that delays,
 * drops, duplicates, reorders and partitions messages (sim_net.c); clients
 * issuing puts and linearizable reads and recording the history
 * (sim_client.c); a fault schedule (sim_faults.c); an operator making
 * membership changes (sim_operator.c); safety checkers run after every
 * ready (sim_check.c); the recovery phase and liveness check
 * (sim_liveness.c); the event queue (sim_queue.c), the trace
 * (sim_trace.c), the event loop and the end of run checks (sim_run.c), the
 * command line (sim_main.c).
 *
 * Determinism: the only source of choice is the world's PRNG, seeded with
 * the seed; events with equal times run in the order they were scheduled
 * (a sequence number breaks ties); no iteration over pointers or hash
 * orders reaches a decision. So a seed replays exactly, with or without
 * tracing.
 *
 * Time is simulated microseconds. A node's Raft tick is ~10 ms (each node's
 * clock rate differs a little), election timeout 10 ticks, heartbeat 1.
 *
 * Names: sim_* are internal to tests/sim (the simulator is a program, not
 * a library); `static` for the rest.
 */
#ifndef SISY_SIM_H
#define SISY_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lincheck.h"
#include "raft.h"
#include "rand.h"

#define SIM_MAX_SLOTS	SISY_RAFT_MAX_NODES /* nodes ever created */
#define SIM_KEYS	4		    /* keys of the state machine */
#define SIM_MAX_CLIENTS 8
#define SIM_TRACE_LINES 160 /* kept for a violation report */
#define SIM_TRACE_WIDTH 200

typedef uint64_t sim_time; /* microseconds */

#define SIM_MS 1000ull
#define SIM_S  1000000ull

/* ---- options ------------------------------------------------------------- */

typedef struct sim_opts {
	int nodes;		 /* 3 or 5 */
	uint64_t steps;		 /* fault phase, in simulated milliseconds */
	bool trace;		 /* print every event as it happens */
	bool promise_checks;	 /* check durability promises at send */
	const char *history_out; /* write the client history here */
} sim_opts;

/* ---- the state machine --------------------------------------------------- */

/* A value is the (client, seq) of the put that wrote it, packed; 0 is
 * "absent". Every put writes a value no other put writes. */
typedef struct sim_kv {
	uint64_t val[SIM_KEYS];
} sim_kv;

/* An engine checkpoint: the state machine as of meta.index. */
typedef struct sim_ckpt {
	sisy_raft_snapshot_meta meta;
	sim_kv kv;
} sim_ckpt;

/* Command encoding (entry data of a NORMAL entry), 10 bytes:
 *   u8 'P'  u8 key  u32 client  u32 seq   (little endian) */
#define SIM_CMD_LEN 10

static inline uint64_t sim_value(uint32_t client, uint32_t seq)
{
	return (uint64_t)client << 32 | seq;
}

/* ---- owned entries and the disk -------------------------------------------
 */

typedef struct sim_ent {
	uint64_t term, index;
	uint8_t type;
	uint32_t len;
	uint8_t *data;
} sim_ent;

enum { SIM_WOP_APPEND = 1, SIM_WOP_HS = 2, SIM_WOP_SNAP = 3 };

/* A write issued but not yet synced. */
typedef struct sim_wop {
	uint8_t type;
	uint64_t persist_id; /* 0: part of no ready's promise */
	sim_ent *ents;
	size_t n;
	sisy_raft_hard_state hs;
	sim_ckpt snap;
} sim_wop;

/* A node's durable log + hard state + engine checkpoint; "written" (the
 * pending writes) vs "synced" (the rest). */
typedef struct sim_disk {
	sim_ckpt ckpt;		      /* durable state machine checkpoint */
	sisy_raft_snapshot_meta base; /* durable log's compaction point */
	sim_ent *ents;		      /* durable entries base.index+1 .. */
	size_t n, cap;
	sisy_raft_hard_state hs;
	sim_wop *pend; /* written, not synced, in order */
	size_t npend, cappend;
	size_t syncing; /* pend[0..syncing) are covered by the sync in flight */
} sim_disk;

/* ---- the log view (for the checkers) ---------------------------------------
 */

/* What the core's log holds, as seen through its readies: the compaction
 * point and, per entry, its term and chain hash (a hash of the whole prefix
 * up to it, so equal chains mean equal prefixes). */
typedef struct sim_view {
	uint64_t base_index, base_term, base_chain;
	uint64_t *term, *chain; /* [k] = entry base_index + 1 + k */
	size_t n, cap;
} sim_view;

/* ---- nodes ------------------------------------------------------------------
 */

enum {
	SIM_NODE_UNUSED = 0,
	SIM_NODE_UP = 1,
	SIM_NODE_DOWN = 2, /* crashed; its disk waits for a restart */
	SIM_NODE_GONE = 3, /* disk lost or removed and stopped: never again */
};

typedef struct sim_waiter {
	uint64_t term, index;
	uint32_t client, seq;
} sim_waiter;

typedef struct sim_pread {
	uint64_t ctx;
	uint64_t index;
	bool has_index;
	uint32_t client, seq;
	uint8_t key;
	sim_time deadline;
} sim_pread;

typedef struct sim_node {
	int slot;
	uint64_t id;
	int state;
	uint32_t inc; /* incarnation: events of an older one are stale */
	sisy_raft *r;
	sim_disk disk;
	sim_kv kv;
	uint64_t applied;
	sim_ckpt stash; /* snapshot data received, awaiting rd.snapshot */
	bool has_stash;
	sim_waiter *waiters;
	size_t nwaiters, capwaiters;
	sim_pread *preads;
	size_t npreads, cappreads;
	uint64_t next_ctx;
	sim_view view;
	uint64_t ledger_commit; /* commit recorded in the ledger so far */
	sim_time tick_us;	/* this node's tick period */
	bool removed;		/* a committed config no longer lists it */
	uint8_t last_role;
	uint64_t last_term;
	uint64_t last_commit; /* as of the last ready */
} sim_node;

/* ---- network ---------------------------------------------------------------
 */

typedef struct sim_netmsg {
	sisy_raft_msg m;
	sim_ent *ents; /* m.entries points at a sisy_raft_entry copy below */
	sisy_raft_entry *rents;
	sim_ckpt *snap; /* MSG_SNAPSHOT: the data streamed along */
	int from_slot, to_slot;
	uint32_t from_inc;
} sim_netmsg;

typedef struct sim_net {
	uint8_t blocked[SIM_MAX_SLOTS][SIM_MAX_SLOTS]; /* [from][to] */
	uint32_t loss_pm;			       /* per mille */
	uint32_t dup_pm;
	uint32_t slow_pm; /* long delays, i.e. heavy reordering */
	sim_time delay_min, delay_jitter;
	uint64_t sent, dropped, duplicated;
} sim_net;

/* ---- clients
 * ----------------------------------------------------------------- */

enum { SIM_OP_PUT = 0, SIM_OP_GET = 1 };

typedef struct sim_client {
	uint32_t id;
	uint32_t seq; /* of the current (or last) op */
	bool busy;
	int kind;
	int key;
	sim_time call;
	uint64_t leader_hint;
	bool stopped;
} sim_client;

/* ---- checkers
 * ---------------------------------------------------------------- */

typedef struct sim_u64map {
	uint64_t *k1, *k2, *v; /* k1 == 0: empty slot */
	size_t n, cap;
} sim_u64map;

typedef struct sim_check {
	sim_u64map leaders;  /* term -> leader id */
	sim_u64map votes;    /* (voter id, term) -> candidate */
	sim_u64map ledger;   /* (index, term) -> chain */
	uint64_t *committed; /* [i] chain of the committed entry i, 0 unknown */
	uint64_t *applied;   /* [i] chain of the entry applied at i */
	size_t cap;
	uint64_t committed_max, applied_max;
	uint64_t acked_max_index, acked_max_term; /* newest acked write */
	uint64_t acked;
} sim_check;

/* ---- operator (membership)
 * ---------------------------------------------------- */

enum { SIM_TASK_REMOVE = 1, SIM_TASK_ADD = 2 };

typedef struct sim_task {
	int kind;
	uint64_t id; /* REMOVE: the member; ADD: the new node, once made */
	bool linger; /* REMOVE of a live node: stop it a while later */
} sim_task;

#define SIM_OP_TASKS 4

typedef struct sim_operator {
	sim_task q[SIM_OP_TASKS]; /* q[0] is in progress */
	int n;
} sim_operator;

/* ---- the Figure 8 profile (sim_fig8.c)
 * ---------------------------------------------------- */

enum {
	SIM_F8_IDLE = 0,
	SIM_F8_ISOLATED, /* L1 isolated holding X; waiting for L2 */
	SIM_F8_REGAIN,	 /* L2 isolated; L1 in a quorum group */
	SIM_F8_REPLAY,	 /* L1 leads again; its term's appends are slow */
	SIM_F8_AFTER,	 /* L1 hit; L2 in a quorum group without it */
};

typedef struct sim_fig8 {
	bool on; /* this seed plays Figure 8 (and uses one-entry appends) */
	int stage;
	int l1, l2; /* slots */
	uint32_t l1_inc, l2_inc;
	uint64_t term1, index; /* X: L1's write at the play's start */
	int voters[SIM_MAX_SLOTS], nvoters; /* slots, at the play's start */
	uint64_t gen;			    /* older events are stale */
	sim_time next_try;
	uint64_t plays;
} sim_fig8;

/* ---- the lost-quorum profile (sim_lostq.c)
 * ---------------------------------------------------- */

enum {
	SIM_LQ_IDLE = 0,
	SIM_LQ_REPLACING, /* a voter's disk lost; waiting for the promotion */
	SIM_LQ_PROMOTING, /* promotion appended; waiting for a voter's ack */
	SIM_LQ_AFTER,	  /* leader (and more) lost; ordinary faults wait */
};

typedef struct sim_lostq {
	bool on; /* this seed plays the lost-quorum history */
	int stage;
	int leader; /* slot of the leader that appended the promotion */
	uint32_t leader_inc;	     /* its incarnation */
	uint64_t index;		     /* the promotion's index */
	uint64_t old[SIM_MAX_SLOTS]; /* voters before the promotion (ids) */
	int nold;
	uint64_t gen; /* older events are stale */
	sim_time next_try;
	uint64_t plays;
} sim_lostq;

/* ---- the world
 * ------------------------------------------------------------------- */

typedef struct sim_event sim_event;

typedef struct sim_queue {
	sim_event *h;
	size_t n, cap;
	uint64_t seq;
} sim_queue;

enum { SIM_PHASE_FAULTS = 0, SIM_PHASE_RECOVERY = 1, SIM_PHASE_DONE = 2 };

typedef struct sim {
	sim_opts opts;
	uint64_t seed;
	sisy_rand rand;
	sim_time now;
	sim_queue q;
	sim_node nodes[SIM_MAX_SLOTS];
	int nslots;
	uint64_t next_id;
	sim_net net;
	sim_client clients[SIM_MAX_CLIENTS];
	int nclients;
	sisy_lincheck_history *hist;
	sim_check chk;
	sim_operator op;
	int phase;
	sim_time heal_at;	  /* faults stop */
	sim_time clients_stop_at; /* clients stop issuing */
	sim_time liveness_deadline;
	uint64_t ok_puts_after_heal, ok_gets_after_heal;
	uint64_t partition_gen; /* a heal event heals only its partition */
	sim_time fault_gap_max; /* this seed's storminess */
	int down_count;
	int conf_changes;	  /* operator tasks completed */
	uint32_t leader_churn_pm; /* chance a new leader is hit soon */
	uint32_t commit_hit_pm;	  /* chance a commit advance is hit */
	sim_fig8 f8;
	sim_lostq lq;
	/* Counters for the summary. */
	uint64_t elections, crashes, snapshots_sent, compactions, transfers;
	uint64_t ops_ok, ops_failed, ops_unknown;
	/* The first violation ends the run. */
	bool violated;
	char property[64];
	char detail[1024];
	/* Trace ring. */
	char trace[SIM_TRACE_LINES][SIM_TRACE_WIDTH];
	uint64_t ntrace;
} sim;

/* ---- events
 * ------------------------------------------------------------------------ */

enum {
	SIM_EV_TICK = 1,
	SIM_EV_DELIVER,	  /* p: sim_netmsg */
	SIM_EV_SYNC_DONE, /* a: sync generation */
	SIM_EV_RESTART,
	SIM_EV_SNAP_REPORT, /* a: target id, b: 1 delivered / 0 lost */
	SIM_EV_COMPACT,
	SIM_EV_FAULT,
	SIM_EV_HEAL_LINK, /* a: generation of the partition */
	SIM_EV_OPERATOR,
	SIM_EV_CLIENT_ISSUE,   /* a: client */
	SIM_EV_REQ_ARRIVE,     /* a: client, b: seq, c: kind | key << 8 */
	SIM_EV_CLIENT_REPLY,   /* a: client, b: seq, c: outcome, d: value,
				  e: leader hint */
	SIM_EV_CLIENT_TIMEOUT, /* a: client, b: seq */
	SIM_EV_READ_TIMEOUT,   /* a: ctx */
	SIM_EV_END_FAULTS,
	SIM_EV_LIVENESS,
	SIM_EV_STOP_NODE,    /* a: id of a removed node to stop */
	SIM_EV_LEADER_FAULT, /* crash or isolate a young leader */
	SIM_EV_FIG8,	     /* a: play generation, b: what */
	SIM_EV_LOSTQ,	     /* a: play generation, b: what, c: acker slot */
};

struct sim_event {
	sim_time t;
	uint64_t seq;
	uint16_t type;
	int16_t slot; /* -1: not about a node */
	uint32_t inc;
	uint64_t a, b, c, d, e;
	void *p;
};

/* sim_queue.c */
void sim_queue_free(sim_queue *q);
void sim_schedule(sim *s, sim_time at, const sim_event *ev);
bool sim_queue_pop(sim_queue *q, sim_event *out);

/* sim_trace.c */
void sim_tracef(sim *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Records the first violation (later ones are ignored). */
void sim_fail(sim *s, const char *property, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sim_trace_dump(const sim *s, int max_lines);

/* sim_disk.c */
void sim_disk_free(sim_disk *d);
void sim_ents_free(sim_ent *e, size_t n);
/* Copies n core entries; NULL only when n == 0. */
sim_ent *sim_ents_copy(const sisy_raft_entry *e, size_t n);
void sim_disk_bootstrap(sim_disk *d, const sim_ent *first);
/* Queues the ready's writes (snapshot, entries, hard state). */
void sim_disk_write(sim_disk *d, const sisy_raft_ready *rd,
		    const sim_ckpt *snap);
/* Starts a sync covering everything written so far; false if one is in
 * flight already or nothing is pending. */
bool sim_disk_sync_begin(sim_disk *d);
/* Completes the sync: the covered writes become durable. Returns the
 * highest persist id they carried (0: none). Writes that do not fit the
 * durable log (a hole) are a violation. */
uint64_t sim_disk_sync_done(sim_disk *d, sim *s, uint64_t node_id);
/* A crash: a random prefix of the pending writes reaches the disk (as a
 * real disk may have written some), the rest is lost. */
void sim_disk_crash(sim_disk *d, sim *s, uint64_t node_id);
/* A durable checkpoint at ckpt->meta.index; log entries up to it dropped. */
void sim_disk_compact(sim_disk *d, const sim_ckpt *ckpt);
uint64_t sim_disk_last(const sim_disk *d);
/* Term of durable entry i (0 if not durable / compacted). */
uint64_t sim_disk_term(const sim_disk *d, uint64_t i);
bool sim_disk_empty(const sim_disk *d);
/* The newest checkpoint written (durable or pending), for streaming. */
const sim_ckpt *sim_disk_newest_ckpt(const sim_disk *d);
bool sim_disk_snap_pending(const sim_disk *d);

/* sim_net.c */
void sim_net_init(sim *s);
void sim_net_send(sim *s, int from_slot, const sisy_raft_msg *m);
void sim_net_deliver(sim *s, sim_netmsg *nm);
void sim_netmsg_free(sim_netmsg *nm);
void sim_net_heal_all(sim *s);

/* sim_node.c */
int sim_slot_of(const sim *s, uint64_t id);
void sim_node_bootstrap(sim *s, int slot, uint64_t id, int nvoters);
void sim_node_start_fresh(sim *s, int slot, uint64_t id);
void sim_node_crash(sim *s, sim_node *n);
void sim_node_restart(sim *s, sim_node *n);
void sim_node_stop_forever(sim *s, sim_node *n, const char *why);
/* Runs ready/advance until the core has nothing more. */
void sim_node_pump(sim *s, sim_node *n);
void sim_node_tick(sim *s, sim_node *n);
void sim_node_sync_done(sim *s, sim_node *n);
void sim_node_compact(sim *s, sim_node *n);
void sim_node_request(sim *s, sim_node *n, uint32_t client, uint32_t seq,
		      int kind, int key);
void sim_node_read_timeout(sim *s, sim_node *n, uint64_t ctx);
void sim_node_free(sim_node *n);

/* sim_client.c */
void sim_clients_init(sim *s, int nclients);
void sim_client_issue(sim *s, sim_client *c);
/* outcome: SISY_LINCHECK_OK / FAILED / UNKNOWN_OUTCOME. */
void sim_client_reply(sim *s, sim_node *from, uint32_t client, uint32_t seq,
		      int outcome, uint64_t value);
void sim_client_on_reply(sim *s, const sim_event *ev);
void sim_client_on_timeout(sim *s, const sim_event *ev);

/* sim_check.c */
void sim_check_free(sim_check *c);
uint64_t sim_chain(uint64_t prev, const sisy_raft_entry *e);
/* Records (index, term) -> chain; a different chain breaks log matching. */
void sim_check_entry(sim *s, sim_node *n, uint64_t index, uint64_t term,
		     uint64_t chain);
uint64_t sim_check_chain_of(sim *s, uint64_t index, uint64_t term);
void sim_check_after_ready(sim *s, sim_node *n);
void sim_check_apply(sim *s, sim_node *n, const sisy_raft_entry *e);
void sim_check_msg_out(sim *s, sim_node *n, const sisy_raft_msg *m);
void sim_check_acked(sim *s, uint64_t index, uint64_t term);
void sim_check_final(sim *s);

/* sim_view (sim_check.c) */
void sim_view_free(sim_view *v);
void sim_view_reset(sim *s, sim_view *v, uint64_t index, uint64_t term);
void sim_view_append(sim *s, sim_node *n, const sisy_raft_entry *e, size_t cnt);
void sim_view_compact(sim_view *v, uint64_t index);
uint64_t sim_view_last(const sim_view *v);
/* Chain of entry i, 0 if unknown (compacted away or beyond the end). */
uint64_t sim_view_chain(const sim_view *v, uint64_t i);

/* sim_faults.c */
void sim_faults_start(sim *s);
void sim_fault(sim *s);
void sim_heal_link(sim *s, uint64_t gen);
/* A node just became leader (it may be hit soon: leader churn). */
void sim_new_leader(sim *s, sim_node *n);
void sim_leader_fault(sim *s, sim_node *n);
/* After a ready: a leader whose commit index moved may be hit at once. */
void sim_leader_committed(sim *s, sim_node *n);

/* Crashes n; it restarts 20-1500 ms later. */
void sim_crash_restart(sim *s, sim_node *n);
/* n's disk is lost for good: the operator removes it and adds a fresh
 * node. `by` prefixes the trace line ("" for the fault schedule). */
void sim_lose_disk(sim *s, sim_node *n, const char *by);

/* sim_fig8.c */
/* Before the nodes exist: is this seed a Figure 8 seed? */
void sim_fig8_init(sim *s);
bool sim_fig8_busy(const sim *s);
/* A leader took a client write at (term, index). */
void sim_fig8_proposed(sim *s, sim_node *n, uint64_t term, uint64_t index);
/* These return true when a play runs (the ordinary hooks stand still). */
bool sim_fig8_new_leader(sim *s, sim_node *n);
bool sim_fig8_committed(sim *s, sim_node *n, const sisy_raft_status *st);
/* Extra delay for a message (0 unless the play slows it). */
sim_time sim_fig8_delay(sim *s, int from_slot, const sisy_raft_msg *m);
void sim_fig8_event(sim *s, const sim_event *ev);

/* sim_lostq.c */
/* Before the nodes exist: is this seed a lost-quorum seed? */
void sim_lostq_init(sim *s);
bool sim_lostq_busy(const sim *s);
/* From the fault schedule: starts a play when the cluster is ready for one;
 * true if a play runs (the ordinary fault stands still). */
bool sim_lostq_fault(sim *s);
/* The operator proposed a change of type about id at index on leader l. */
void sim_lostq_proposed(sim *s, sim_node *l, int type, uint64_t id,
			uint64_t index);
/* A message leaves from_slot (before the network sees it). */
void sim_lostq_sent(sim *s, int from_slot, const sisy_raft_msg *m);
void sim_lostq_event(sim *s, const sim_event *ev);

/* sim_operator.c */
/* Queues a membership task; false if the queue is full. */
bool sim_operator_push(sim *s, int kind, uint64_t id, bool linger);
void sim_operator_step(sim *s);
void sim_stop_removed(sim *s, uint64_t id);

/* sim_liveness.c */
void sim_end_faults(sim *s);
void sim_liveness_check(sim *s);

/* sim_run.c */
/* Runs one seed; true if no violation. */
bool sim_run(const sim_opts *opts, uint64_t seed, sim *s);
void sim_free(sim *s);
/* The slot of the leader with the highest term among live nodes, or -1. */
int sim_leader_slot(const sim *s);

static inline uint64_t sim_rand_range(sim *s, uint64_t lo, uint64_t hi)
{
	return lo + sisy_rand_below(&s->rand, hi - lo + 1);
}

#endif
