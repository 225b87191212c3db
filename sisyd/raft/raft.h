/* raft.h — the Raft consensus core of SisyphusDB: a pure state machine.
 *
 * No I/O, no clock, no threads, no globals. One sisy_raft instance is one
 * member of one Raft group; a process may run any number of them (one per
 * shard). All calls on one instance must come from one thread (the node's
 * event loop); distinct instances are independent.
 *
 * The caller (the node, or the simulator) drives the instance:
 *
 *   in:   sisy_raft_step()       a message from a peer
 *         sisy_raft_tick()       one unit of logical time
 *         sisy_raft_propose()    a command to replicate (leader only)
 *         sisy_raft_propose_conf() a membership change (leader only)
 *         sisy_raft_read_index() a linearizable read request
 *         sisy_raft_transfer()   planned leadership transfer
 *         sisy_raft_persisted()  "ready #id is durable"
 *         sisy_raft_compact()    "drop the in-memory log up to i"
 *   out:  sisy_raft_get_ready()  what to do now (persist, send, apply, serve)
 *         sisy_raft_advance()    "I have taken that ready"
 *
 * THE LOG VIEW. The core keeps, in memory, every entry from its compaction
 * point (the last snapshot's index) to its last index, with copies of their
 * data. It never reads storage. On restart the caller restores it with
 * sisy_raft_restore() from what its durable log holds; memory is bounded by
 * the caller compacting (sisy_raft_compact) after its state machine has
 * made a snapshot (an engine checkpoint) durable. sisy_raft_get_status()
 * reports the log's size in bytes so the node can decide when to compact.
 *
 * THE READY / ADVANCE / PERSISTED PROTOCOL (the ordering rules):
 *
 *   loop:
 *     feed step/tick/propose/read_index/... (any number, any order);
 *     if (sisy_raft_has_ready(r)) {
 *       sisy_raft_get_ready(r, &rd);
 *       1. if rd.persist_id != 0: queue rd.snapshot, rd.entries and
 *          rd.hard_state for the durable log (copy them: they are borrowed),
 *          in that order; a write of rd.entries first truncates the durable
 *          log after rd.entries[0].index - 1 (a conflicting suffix).
 *          When ALL of it is durable (fsync), call
 *          sisy_raft_persisted(r, rd.persist_id). Readies are persisted in
 *          the order they were produced; persisted(id) implies every
 *          earlier id. One fsync may cover many readies (and many groups).
 *          If rd.persist_id == 0 but rd.has_hard_state, only the commit
 *          index changed: write it whenever convenient, no sync needed.
 *       2. send rd.msgs (to msg.to) — right away, before the persist above
 *          completes: every message the core puts in a ready is safe to
 *          send at that moment.
 *       3. if rd.snapshot: restore the state machine from the snapshot data
 *          that arrived with the MSG_SNAPSHOT, as part of step 1 (the
 *          persist of this ready is complete only when the state machine
 *          holds the snapshot durably).
 *       4. apply rd.committed, in order, after anything earlier.
 *       5. hand rd.reads to the read path (serve each once applied >= its
 *          index).
 *       sisy_raft_advance(r);
 *     }
 *
 *   Everything a ready points to (entries, messages, their entries, the
 *   snapshot meta) is owned by the core and stays valid and unchanged until
 *   sisy_raft_advance(). Between sisy_raft_get_ready() and sisy_raft_advance()
 *   the caller must not call any other function on that instance except the
 *   read-only getters (status, progress).
 *
 *   Guarantees the core gives, so the caller cannot get them wrong:
 *   - A message that promises something durable is released only after the
 *     caller reported it durable: a vote grant (it promises term+vote) and
 *     every append/snapshot response (it promises the log up to its index)
 *     are held inside the core and appear in a ready only after
 *     sisy_raft_persisted() covers the state they depend on. The same holds
 *     for a candidate's vote for itself and a leader's own log: the leader
 *     sends entries to followers before its own append is durable, but counts
 *     itself in a quorum only up to its durable index.
 *   - rd.committed never goes beyond the node's own durable log: an entry is
 *     handed out for apply only when it is committed AND covered by
 *     sisy_raft_persisted().
 *   - Heartbeats, heartbeat responses, vote requests, pre-votes and their
 *     responses promise nothing durable and go out at once.
 *
 * TIME. sisy_raft_tick() is the only clock. An election timeout is drawn
 * uniformly from [election_ticks, 2*election_ticks) with the instance's own
 * PRNG seeded from cfg.rand_seed, so a seed replays exactly.
 *
 * MEMBERSHIP. Single-server changes: each config entry adds or removes one
 * voter, adds/removes a learner or promotes a learner. A configuration takes
 * effect on a node as soon as the entry is appended to its log (not when it
 * commits); if the entry is truncated away, the previous configuration
 * returns. A leader accepts a change only once it has committed an entry of
 * its own term, and only one change may be pending (appended, uncommitted)
 * at a time. A leader that removed itself keeps leading until the change
 * commits, without counting itself, then steps down. Learners receive the
 * log but never vote or count. The entry's data is the full resulting
 * membership plus the change (see sisy_raft_conf_decode), so the node's
 * apply learns both.
 *
 * SNAPSHOTS. The core never holds snapshot data. When a follower needs
 * entries below the leader's compaction point, the leader's ready carries a
 * MSG_SNAPSHOT with metadata only (index, term, membership at that index);
 * the node streams its newest checkpoint (index >= msg.snapshot.index) on
 * its own connection and MAY overwrite msg.snapshot with that checkpoint's
 * meta (sisy_raft_meta_at). The receiving node steps the MSG_SNAPSHOT
 * into its core only once all the data has arrived. If the core accepts it,
 * a ready carries rd.snapshot: restore + persist (rule 3), then persisted().
 * The node reports the outcome of every MSG_SNAPSHOT it was asked to send
 * with sisy_raft_report_snapshot() (until then the leader sends that
 * follower nothing else; as a last resort it gives up waiting after
 * 20 election timeouts).
 *
 * ERRORS for rejected requests (the code is what callers branch on; a
 * sisy_errf() message gives detail):
 *   SISY_E_NOTLEADER  not the leader (proposals, conf changes, transfer)
 *   SISY_E_BUSY       leadership transfer in progress: retry at the new
 *                     leader shortly
 *   SISY_E_CONFLICT   membership change refused now: one is pending, or the
 *                     leader has not yet committed an entry of its term
 *   SISY_E_TOOBIG     entry larger than cfg.max_entry_bytes
 *   SISY_E_AGAIN      flow control: uncommitted log over
 *                     cfg.max_uncommitted_bytes, or too many queued reads
 *   SISY_E_INVAL      malformed request (bad membership change, bad args)
 *   SISY_E_NOLEADER   read index asked on a follower with no known leader
 *   SISY_E_NOMEM      allocation failed; the instance is unchanged
 *   SISY_E_RANGE      compaction / snapshot meta outside the log
 *   SISY_E_CORRUPT    sisy_raft_restore() / decode: inconsistent input
 *
 * BUILD-TIME BUG SWITCHES (simulator self-test only; never in a release):
 * SISY_RAFT_BUG_VOTE_NO_LOG_CHECK, _COMMIT_OLD_TERM, _APPLY_BEFORE_COMMIT,
 * _ACK_BEFORE_DURABLE, _CONFIG_AT_COMMIT, selected by the CMake cache
 * variable SISY_RAFT_BUG. sisy_raft_bug() names the active one.
 */
#ifndef SISY_RAFT_H
#define SISY_RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "log.h"

/* Node ids are nonzero; 0 means "none" (no vote, no leader). */
#define SISY_RAFT_NONE 0

/* Bound on voters + learners in one membership. */
#define SISY_RAFT_MAX_NODES 16

/* Bound on the opaque context of a membership change (e.g. an address). */
#define SISY_RAFT_MAX_CONF_CTX 512

typedef struct sisy_raft sisy_raft;

/* ---- roles, entries, state ------------------------------------------- */

typedef enum sisy_raft_role {
	SISY_RAFT_FOLLOWER = 0,
	SISY_RAFT_PRE_CANDIDATE = 1,
	SISY_RAFT_CANDIDATE = 2,
	SISY_RAFT_LEADER = 3,
} sisy_raft_role;

typedef enum sisy_raft_entry_type {
	SISY_RAFT_ENTRY_NORMAL = 0, /* a command for the state machine */
	SISY_RAFT_ENTRY_NOOP = 1,   /* a new leader's first entry; skip it */
	SISY_RAFT_ENTRY_CONFIG = 2, /* a membership change: sisy_raft_conf_* */
} sisy_raft_entry_type;

typedef struct sisy_raft_entry {
	uint64_t term;
	uint64_t index;
	uint8_t type; /* sisy_raft_entry_type */
	const uint8_t *data;
	size_t len;
} sisy_raft_entry;

/* What must survive a crash, besides the log. `commit` may lag (losing it is
 * safe); term and vote may never go backwards. */
typedef struct sisy_raft_hard_state {
	uint64_t term;
	uint64_t vote; /* SISY_RAFT_NONE if no vote in `term` */
	uint64_t commit;
} sisy_raft_hard_state;

typedef struct sisy_raft_membership {
	uint32_t n_voters;
	uint32_t n_learners; /* n_voters + n_learners <= SISY_RAFT_MAX_NODES */
	uint64_t voters[SISY_RAFT_MAX_NODES];
	uint64_t learners[SISY_RAFT_MAX_NODES];
} sisy_raft_membership;

/* Where a snapshot (or the compaction point) stands: the last entry it
 * covers and the membership in force at that entry. */
typedef struct sisy_raft_snapshot_meta {
	uint64_t index;
	uint64_t term;
	sisy_raft_membership membership;
} sisy_raft_snapshot_meta;

/* ---- membership changes ---------------------------------------------- */

typedef enum sisy_raft_conf_type {
	SISY_RAFT_CONF_ADD_VOTER = 1,	/* new voter, or promote a learner */
	SISY_RAFT_CONF_ADD_LEARNER = 2, /* new learner (or demote a voter) */
	SISY_RAFT_CONF_REMOVE = 3,	/* remove a voter or a learner */
} sisy_raft_conf_type;

typedef struct sisy_raft_conf_change {
	uint8_t type; /* sisy_raft_conf_type */
	uint64_t node_id;
	sisy_slice ctx; /* opaque to the core, <= SISY_RAFT_MAX_CONF_CTX */
} sisy_raft_conf_change;

/* Decodes the data of a SISY_RAFT_ENTRY_CONFIG entry: the change (its ctx
 * borrows from `data`) and the membership that results. Either out pointer
 * may be NULL. SISY_E_CORRUPT on malformed data.
 *
 * Layout (little endian):
 *   u8  version (1)   u8 type   u64 node_id
 *   u8  n_voters      u64 voters[n_voters]
 *   u8  n_learners    u64 learners[n_learners]
 *   u32 ctx_len       u8 ctx[ctx_len]                                    */
sisy_err sisy_raft_conf_decode(sisy_slice data, sisy_raft_conf_change *cc,
			       sisy_raft_membership *after);

/* Encodes a config entry's data into `out` (appended). Used by bootstrap
 * (the first entry of a new cluster carries the initial membership: use
 * type ADD_VOTER, node_id = the bootstrapping node) and by the core. */
sisy_err sisy_raft_conf_encode(const sisy_raft_conf_change *cc,
			       const sisy_raft_membership *after,
			       sisy_buf *out);

/* 1 if `id` is a voter / learner of `m`. */
int sisy_raft_membership_is_voter(const sisy_raft_membership *m, uint64_t id);
int sisy_raft_membership_is_learner(const sisy_raft_membership *m, uint64_t id);

/* ---- messages ---------------------------------------------------------- */

typedef enum sisy_raft_msg_type {
	SISY_RAFT_MSG_PRE_VOTE = 1,	 /* term = candidate's term + 1 */
	SISY_RAFT_MSG_PRE_VOTE_RESP = 2, /* reject = 0: granted */
	SISY_RAFT_MSG_VOTE = 3,		 /* log_term/index: candidate's last */
	SISY_RAFT_MSG_VOTE_RESP = 4,	 /* reject = 0: granted */
	SISY_RAFT_MSG_APPEND = 5,      /* log_term/index: the previous entry */
	SISY_RAFT_MSG_APPEND_RESP = 6, /* index: match (or rejected index) */
	SISY_RAFT_MSG_HEARTBEAT = 7,   /* commit, ctx = read round */
	SISY_RAFT_MSG_HEARTBEAT_RESP = 8, /* ctx echoed */
	SISY_RAFT_MSG_SNAPSHOT = 9,	  /* snapshot meta; reply APPEND_RESP */
	SISY_RAFT_MSG_TIMEOUT_NOW = 10,	  /* leader -> transferee: campaign */
	SISY_RAFT_MSG_READ_INDEX = 11,	  /* follower -> leader, ctx */
	SISY_RAFT_MSG_READ_INDEX_RESP = 12, /* index, ctx; reject: failed */
} sisy_raft_msg_type;

#define SISY_RAFT_MSG_TYPE_MAX 12

/* msg.flags */
#define SISY_RAFT_FLAG_TRANSFER 0x1 /* (pre)vote of a leadership transfer */

/* One Raft message. The fields used by each type:
 *   PRE_VOTE, VOTE        term, log_term, index (candidate's last entry),
 *                         flags
 *   *_VOTE_RESP           term, reject
 *   APPEND                term, log_term + index (entry before entries[]),
 *                         commit, entries/n_entries
 *   APPEND_RESP           term, index (accepted: the sender's match;
 *                         rejected: the rejected prev index), reject,
 *                         hint_index + hint_term (rejected: the sender's
 *                         conflict hint: the first index of hint_term, or
 *                         its last index + 1 with hint_term 0 if its log is
 *                         too short)
 *   HEARTBEAT             term, commit, ctx (read round)
 *   HEARTBEAT_RESP        term, ctx (echoed)
 *   SNAPSHOT              term, snapshot
 *   TIMEOUT_NOW           term
 *   READ_INDEX            term, ctx (the follower's read context)
 *   READ_INDEX_RESP       term, ctx, index (the read index), reject
 * A message the core produces borrows `entries` from the core until
 * sisy_raft_advance(); a message stepped in is borrowed only for the call.
 * Transports must carry every field listed for the type (peer.proto). */
typedef struct sisy_raft_msg {
	uint8_t type; /* sisy_raft_msg_type */
	uint8_t reject;
	uint8_t flags;
	uint64_t from;
	uint64_t to;
	uint64_t term;
	uint64_t log_term;
	uint64_t index;
	uint64_t commit;
	uint64_t hint_index;
	uint64_t hint_term;
	uint64_t ctx;
	const sisy_raft_entry *entries;
	size_t n_entries;
	sisy_raft_snapshot_meta snapshot;
} sisy_raft_msg;

/* "PRE_VOTE", "APPEND_RESP", ...; "?" if unknown. */
const char *sisy_raft_msg_type_name(int type);

/* ---- configuration ----------------------------------------------------- */

typedef struct sisy_raft_config {
	uint64_t id;		  /* this node, nonzero */
	uint32_t election_ticks;  /* base election timeout; > heartbeat_ticks */
	uint32_t heartbeat_ticks; /* leader heartbeat interval, >= 1 */
	uint8_t pre_vote;	  /* run a pre-vote before a real election */
	uint8_t check_quorum;	  /* leader steps down without a live quorum;
				     followers in contact with a leader ignore
				     (pre)votes for an election timeout */
	uint32_t max_inflight_msgs; /* APPENDs in flight per follower */
	size_t max_msg_bytes;	    /* entry bytes per APPEND (>= one entry) */
	uint32_t max_msg_entries;   /* entries per APPEND */
	size_t max_entry_bytes;	    /* largest proposal */
	size_t max_uncommitted_bytes; /* leader: refuse proposals beyond */
	size_t max_apply_bytes;	      /* entry bytes per rd.committed batch */
	uint32_t max_pending_reads;   /* queued read requests (leader) */
	uint64_t rand_seed;	      /* seeds the instance's own PRNG */
	const sisy_logger
	    *logger; /* rare warnings (out of memory); may be NULL */
} sisy_raft_config;

/* Fills sensible defaults: election 10 ticks, heartbeat 1, pre-vote and
 * check-quorum on, 64 in flight, 1 MiB / 1024 entries per message, 1 MiB
 * entries, 64 MiB uncommitted, 4 MiB per apply batch, 4096 reads,
 * rand_seed = id. */
void sisy_raft_config_default(sisy_raft_config *cfg, uint64_t id);

/* ---- life cycle ---------------------------------------------------------- */

/* Creates an empty instance (term 0, empty log, no membership). It does
 * nothing until it learns a membership: from restore(), or a leader's
 * append/snapshot (a joining node). SISY_E_INVAL on a bad config. */
sisy_err sisy_raft_create(const sisy_raft_config *cfg, sisy_raft **out);
void sisy_raft_destroy(sisy_raft *r);

/* Restores durable state after a restart (or bootstraps), once, before any
 * other call. `snap` (may be NULL) is the compaction point / last installed
 * snapshot; `ents` are every entry after it, contiguous; `applied` is the
 * state machine's applied index (>= snap->index, or 0): rd.committed starts
 * after it. Everything passed in counts as durable. A commit beyond the last
 * entry is clamped; term is raised to the last entry's term if lower. A
 * bootstrapping node passes hs {1, 0, 1}, no snapshot, and one CONFIG entry
 * {term 1, index 1} holding the initial membership (identical on every
 * initial member). SISY_E_CORRUPT if the pieces do not fit together. */
sisy_err sisy_raft_restore(sisy_raft *r, const sisy_raft_hard_state *hs,
			   const sisy_raft_snapshot_meta *snap,
			   const sisy_raft_entry *ents, size_t n_ents,
			   uint64_t applied);

/* ---- input ------------------------------------------------------------- */

/* One logical time unit. */
void sisy_raft_tick(sisy_raft *r);

/* Feeds a message addressed to this node. Stale, duplicate, reordered and
 * unknown-sender messages are handled (usually ignored); SISY_E_INVAL only
 * for a malformed message (wrong `to`, bad type); SISY_E_NOMEM. */
sisy_err sisy_raft_step(sisy_raft *r, const sisy_raft_msg *m);

/* Appends a command (leader only) and reports where it landed: the caller
 * keys its waiter by (term, index). Errors: see ERRORS above. */
sisy_err sisy_raft_propose(sisy_raft *r, sisy_slice data, uint64_t *term,
			   uint64_t *index);

/* Appends a membership change (leader only); it takes effect here at once.
 * SISY_E_CONFLICT if not allowed yet; SISY_E_INVAL if it changes nothing,
 * removes the last voter, or overflows SISY_RAFT_MAX_NODES. */
sisy_err sisy_raft_propose_conf(sisy_raft *r, const sisy_raft_conf_change *cc,
				uint64_t *term, uint64_t *index);

/* Starts an election now (tests, and a node told to take over). A pre-vote
 * is skipped. No-op for a leader or a non-voter. */
void sisy_raft_campaign(sisy_raft *r);

/* Asks for a linearizable read. `ctx` is the caller's id for the request
 * (unique among its outstanding reads). On a leader the read is queued until
 * its no-op has committed and one heartbeat round (shared by every read
 * queued behind it) confirmed its leadership; on a follower it is forwarded
 * to the leader. Either way it comes back in a later rd.reads with the
 * read index (serve once applied >= index) or failed (lost leadership,
 * rejected): retry. A forwarded request or answer lost in the network is
 * not retried by the core: the node times it out. SISY_E_NOLEADER,
 * SISY_E_AGAIN (queue full). */
sisy_err sisy_raft_read_index(sisy_raft *r, uint64_t ctx);

/* Leader: hand leadership to `to` (a voter): replicate it up to date, then
 * send TIMEOUT_NOW. Proposals fail with SISY_E_BUSY meanwhile; the attempt
 * is abandoned after an election timeout. SISY_E_NOTLEADER, SISY_E_INVAL
 * (not a voter, or self). */
sisy_err sisy_raft_transfer(sisy_raft *r, uint64_t to);

/* The node could not deliver a MSG_SNAPSHOT (status != SISY_OK) or did
 * (SISY_OK; the follower's APPEND_RESP then moves it on). */
void sisy_raft_report_snapshot(sisy_raft *r, uint64_t to, sisy_err status);

/* The transport lost its connection to `to`: stop pipelining, probe. */
void sisy_raft_report_unreachable(sisy_raft *r, uint64_t to);

/* ---- ready / advance / persisted ----------------------------------------- */

typedef struct sisy_raft_read_state {
	uint64_t ctx;
	uint64_t index; /* serve once applied >= index */
	uint8_t failed; /* 1: no index; retry (maybe on the new leader) */
} sisy_raft_read_state;

typedef struct sisy_raft_ready {
	/* Nonzero: snapshot / entries / hard_state must be made durable, then
	 * sisy_raft_persisted(r, persist_id). Ids increase. */
	uint64_t persist_id;

	uint8_t has_hard_state;
	sisy_raft_hard_state hard_state;

	/* A snapshot to install before the entries (follower). */
	const sisy_raft_snapshot_meta *snapshot;

	/* To append to the durable log (truncating after entries[0].index-1).
	 */
	const sisy_raft_entry *entries;
	size_t n_entries;

	/* To send now. */
	const sisy_raft_msg *msgs;
	size_t n_msgs;

	/* Committed and locally durable: apply in order. */
	const sisy_raft_entry *committed;
	size_t n_committed;

	/* Reads whose index is known (or that failed). */
	const sisy_raft_read_state *reads;
	size_t n_reads;

	/* Role / leader / term changed since the last ready: a node answers
	 * its pending writes "outcome unknown" when it loses leadership. */
	uint8_t soft_changed;
	uint8_t role; /* sisy_raft_role */
	uint64_t leader;
	uint64_t term;
} sisy_raft_ready;

/* 1 if sisy_raft_get_ready() would return anything. */
int sisy_raft_has_ready(const sisy_raft *r);

/* Fills `rd` with everything to do now. Must be followed by advance()
 * before any other mutating call. */
void sisy_raft_get_ready(sisy_raft *r, sisy_raft_ready *rd);

/* The caller took the last ready (queued its writes, sent its messages,
 * handed out its committed entries and reads). */
void sisy_raft_advance(sisy_raft *r);

/* Everything in readies up to `persist_id` is durable. Releases the held
 * messages that depended on it and lets the core count / apply up to it. */
void sisy_raft_persisted(sisy_raft *r, uint64_t persist_id);

/* ---- compaction and snapshots -------------------------------------------- */

/* The meta (term, membership) of index `i`, for a snapshot the caller made
 * at applied index i. i must lie in [compaction point, last index].
 * SISY_E_RANGE otherwise. */
sisy_err sisy_raft_meta_at(const sisy_raft *r, uint64_t i,
			   sisy_raft_snapshot_meta *out);

/* Drops the in-memory entries up to `i` (<= the last index handed out in
 * rd.committed); i becomes the compaction point and `out` (may be NULL)
 * receives its meta, which the caller records durably in its log before
 * dropping its own segments. Followers needing older entries then get a
 * snapshot. No-op if i <= the current compaction point. SISY_E_RANGE. */
sisy_err sisy_raft_compact(sisy_raft *r, uint64_t i,
			   sisy_raft_snapshot_meta *out);

/* ---- observation (read-only; allowed between ready and advance) ---------- */

typedef enum sisy_raft_progress_state {
	SISY_RAFT_PROBE = 0,	 /* one APPEND at a time, find the match */
	SISY_RAFT_REPLICATE = 1, /* pipelined APPENDs */
	SISY_RAFT_SNAPSHOT = 2,	 /* waiting for a snapshot to land */
} sisy_raft_progress_state;

typedef struct sisy_raft_progress {
	uint64_t id;
	uint8_t is_learner;
	uint8_t state;	       /* sisy_raft_progress_state */
	uint8_t recent_active; /* heard from within this election timeout */
	uint64_t match;	       /* highest index known replicated (durable) */
	uint64_t next;	       /* next index to send */
	uint32_t inflight;     /* APPENDs in flight */
	uint64_t pending_snapshot; /* SNAPSHOT: index being sent */
	uint64_t ticks_since_contact;
} sisy_raft_progress;

typedef struct sisy_raft_status {
	uint64_t id;
	uint8_t role; /* sisy_raft_role */
	uint8_t is_voter;
	uint64_t term;
	uint64_t vote;
	uint64_t leader;
	uint64_t commit;
	uint64_t applied;     /* last index handed out in rd.committed */
	uint64_t first_index; /* first entry in memory (compaction + 1) */
	uint64_t last_index;
	uint64_t durable_index;	     /* own log durable up to here */
	uint64_t log_bytes;	     /* entry data held in memory */
	uint64_t transferee;	     /* leadership transfer target, or NONE */
	uint64_t pending_conf_index; /* uncommitted config entry, or 0 */
	sisy_raft_snapshot_meta compaction; /* the compaction point */
	sisy_raft_membership membership;    /* in force now */
} sisy_raft_status;

void sisy_raft_get_status(const sisy_raft *r, sisy_raft_status *st);

/* Leader: fills up to `cap` progress records (one per other member);
 * returns how many members there are (0 on a non-leader). */
size_t sisy_raft_get_progress(const sisy_raft *r, sisy_raft_progress *out,
			      size_t cap);

/* The active build-time bug switch ("vote_no_log_check", ...) or "". */
const char *sisy_raft_bug(void);

#endif
