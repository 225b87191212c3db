/* raft_int.h — internals of the Raft core, shared by its files only.
 *
 * One struct sisy_raft holds everything an instance owns; the files split
 * the behaviour: log.c (the in-memory log view), membership.c (config
 * entries and quorums), progress.c (the leader's view of each follower),
 * election.c (roles, timeouts, votes), replication.c (append / heartbeat /
 * commit), snapshot.c (send / install / compact), readindex.c (ReadIndex),
 * transfer.c (leadership transfer), ready.c (the ready / advance /
 * persisted protocol and the outbox), raft.c (life cycle, step dispatch,
 * status).
 *
 * Invariants (checked by raft_check_invariants in debug builds):
 *   log.snap.index <= commit <= last index (a commit beyond the log is
 *     never adopted);
 *   applied <= commit and applied <= durable, except that a snapshot being
 *     installed moves applied to its index;
 *   durable <= last index; unstable <= last index + 1;
 *   a leader's progress array lists every member but itself, once.
 */
#ifndef SISY_RAFT_INT_H
#define SISY_RAFT_INT_H

#include <assert.h>
#include <stdint.h>

#include "chunks.h"
#include "rand.h"
#include "raft.h"

#if defined(SISY_RAFT_BUG_VOTE_NO_LOG_CHECK) ||   \
    defined(SISY_RAFT_BUG_COMMIT_OLD_TERM) ||     \
    defined(SISY_RAFT_BUG_APPLY_BEFORE_COMMIT) || \
    defined(SISY_RAFT_BUG_ACK_BEFORE_DURABLE) ||  \
    defined(SISY_RAFT_BUG_CONFIG_AT_COMMIT)
#define SISY_RAFT_BUGGY 1
#endif

/* A broken-rule build must reach the simulator's checkers instead of dying
 * on the core's own asserts, so "can't happen" checks become soft there. */
#ifdef SISY_RAFT_BUGGY
#define raft_assert_safe(x) ((void)0)
#else
#define raft_assert_safe(x) assert(x)
#endif

/* ---- log.c: every entry from the compaction point to the last ---------- */

struct raft_log {
	sisy_raft_entry *ents; /* ents[start .. start + len); data owned */
	sisy_chunks data;      /* where the entries' data lives */
	size_t start;
	size_t len;
	size_t cap;
	uint64_t bytes;		      /* sum of data lengths held */
	sisy_raft_snapshot_meta snap; /* the compaction point */
};

void raft_log_init(struct raft_log *l);
void raft_log_free(struct raft_log *l);
static inline uint64_t raft_log_first(const struct raft_log *l)
{
	return l->snap.index + 1;
}
static inline uint64_t raft_log_last(const struct raft_log *l)
{
	return l->snap.index + l->len;
}
/* Entry i, first <= i <= last. */
static inline const sisy_raft_entry *raft_log_at(const struct raft_log *l,
						 uint64_t i)
{
	assert(i >= raft_log_first(l) && i <= raft_log_last(l));
	return &l->ents[l->start + (size_t)(i - raft_log_first(l))];
}
/* The term of entry i: 1 if known (i in [snap.index, last]), else 0. */
int raft_log_term(const struct raft_log *l, uint64_t i, uint64_t *term);
/* The term of entry i, or 0 if unknown. */
uint64_t raft_log_term_or0(const struct raft_log *l, uint64_t i);
uint64_t raft_log_last_term(const struct raft_log *l);
/* Appends n contiguous entries starting at last + 1, copying their data.
 * On failure the log is unchanged. */
sisy_err raft_log_append(struct raft_log *l, const sisy_raft_entry *e,
			 size_t n);
/* Drops entries >= from (from > snap.index). */
void raft_log_truncate(struct raft_log *l, uint64_t from);
/* Drops entries <= i (snap.index < i <= last); i becomes the compaction
 * point with membership m. */
void raft_log_compact(struct raft_log *l, uint64_t i,
		      const sisy_raft_membership *m);
/* Drops everything; the log restarts after `snap`. */
void raft_log_reset(struct raft_log *l, const sisy_raft_snapshot_meta *snap);
/* How many entries from lo (<= hi <= last) fit in max_bytes (at least one)
 * and max_n. */
size_t raft_log_span(const struct raft_log *l, uint64_t lo, uint64_t hi,
		     size_t max_bytes, size_t max_n);
/* Data bytes of entries in [lo, hi]. */
uint64_t raft_log_bytes_between(const struct raft_log *l, uint64_t lo,
				uint64_t hi);
/* The first index in [lo, hi] whose term is >= t (hi + 1 if none). */
uint64_t raft_log_first_of_term(const struct raft_log *l, uint64_t t,
				uint64_t lo, uint64_t hi);
/* The last index <= hi whose term is <= t; 0 if that lies below the
 * compaction point (unknown). */
uint64_t raft_log_last_le_term(const struct raft_log *l, uint64_t t,
			       uint64_t hi);
/* §5.4.1: is (last_term, last_index) at least as up to date as us? */
int raft_log_up_to_date(const struct raft_log *l, uint64_t last_term,
			uint64_t last_index);

/* ---- progress.c: the leader's view of one follower ---------------------- */

struct raft_progress {
	uint64_t id;
	uint8_t learner;
	uint8_t state;	       /* sisy_raft_progress_state */
	uint8_t paused;	       /* PROBE: an APPEND is out, await a reply */
	uint8_t recent_active; /* heard from since the last quorum check */
	uint64_t match;
	uint64_t next;
	uint64_t pending_snapshot;
	uint64_t read_ack; /* highest read round it echoed */
	uint64_t
	    probe_hb; /* PROBE: heartbeat_seq when the paused APPEND left */
	uint32_t ticks_since_contact;
	uint32_t stall_ticks;	 /* REPLICATE: ticks without progress */
	uint32_t snapshot_ticks; /* SNAPSHOT: ticks waiting */
	uint64_t *infl;		 /* ring of last indexes of APPENDs in flight */
	uint32_t infl_start;
	uint32_t infl_count;
};

/* ---- the instance ---------------------------------------------------------
 */

struct raft_vote {
	uint64_t id;
	uint8_t granted;
};

struct raft_read {
	uint64_t from; /* requesting node (self for local reads) */
	uint64_t ctx;
	uint64_t round; /* 0: waiting for a round */
	uint64_t index;
};

struct raft_persist {
	uint64_t id;
	uint64_t last; /* log index durable once `id` is */
};

struct raft_held {
	sisy_raft_msg m;
	uint64_t need; /* released once persisted_id >= need */
};

struct sisy_raft {
	sisy_raft_config cfg;
	sisy_rand rand;
	uint64_t id;

	uint64_t term;
	uint64_t vote;
	uint64_t commit;
	uint8_t role;
	uint64_t leader;

	struct raft_log log;
	sisy_raft_membership conf;   /* in force */
	uint64_t conf_index;	     /* its config entry, 0: from compaction */
	uint64_t pending_conf_index; /* leader: last config entry appended */

	uint32_t election_elapsed;
	uint32_t heartbeat_elapsed;
	uint32_t randomized_timeout;
	uint64_t heartbeat_seq; /* leader: periodic heartbeats sent so far */

	struct raft_vote votes[SISY_RAFT_MAX_NODES];
	uint32_t n_votes;

	struct raft_progress prs[SISY_RAFT_MAX_NODES];
	uint32_t n_prs;
	uint64_t *infl_pool;
	uint64_t transferee;
	uint32_t transfer_elapsed;
	uint64_t uncommitted_bytes;
	uint8_t bcast_pending;	   /* appends to send at the next ready */
	uint8_t step_down_pending; /* removed leader: leave once committed */

	struct raft_read *reads;
	uint32_t n_reads;
	uint64_t read_round; /* last round started */
	uint64_t read_acked; /* last round confirmed by a quorum */

	uint64_t unstable; /* first index not yet given out to persist */
	uint64_t durable;  /* own durable log equals ours up to here */
	uint64_t last_persist_id;
	uint64_t persisted_id;
	struct raft_persist *pq;
	size_t pq_len, pq_cap;
	uint64_t hs_term, hs_vote, hs_commit; /* last hard state given out */
	uint8_t install_pending;
	sisy_raft_snapshot_meta install; /* snapshot to give out */
	sisy_raft_snapshot_meta rd_snap; /* the one the current ready shows */
	uint64_t applied;		 /* last index given out to apply */

	sisy_raft_msg *out; /* messages for the next ready */
	size_t n_out, cap_out;
	struct raft_held *held;
	size_t n_held, cap_held;
	sisy_raft_read_state *rs;
	size_t n_rs, cap_rs;
	uint8_t in_ready;
	uint8_t soft_role;
	uint64_t soft_leader, soft_term;
};

static inline uint64_t raft_min(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}
static inline uint64_t raft_max(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* ---- membership.c ----------------------------------------------------------
 */

static inline uint32_t raft_quorum(const sisy_raft_membership *m)
{
	return m->n_voters / 2 + 1;
}
int raft_is_member(const sisy_raft_membership *m, uint64_t id);
/* The membership after applying cc to m; SISY_E_INVAL if it is no valid
 * single-server change. */
sisy_err raft_membership_change(const sisy_raft_membership *m,
				const sisy_raft_conf_change *cc,
				sisy_raft_membership *out);
/* Recomputes r->conf from the log (the last config entry, or the
 * compaction point) and syncs the leader's progress array with it. */
void raft_conf_refresh(sisy_raft *r);
/* The membership in force at index i (compaction point <= i <= last). */
void raft_conf_at(const sisy_raft *r, uint64_t i, sisy_raft_membership *out);
/* Called whenever entries were appended from index `from` or the log was
 * truncated: keeps r->conf right (take effect at append). */
void raft_conf_on_append(sisy_raft *r, uint64_t from);
void raft_conf_on_commit(sisy_raft *r, uint64_t old_commit);

/* ---- progress.c ------------------------------------------------------------
 */

struct raft_progress *raft_progress_find(sisy_raft *r, uint64_t id);
/* Makes the array match r->conf: adds new members (probe from last+1),
 * drops gone ones. */
void raft_progress_sync(sisy_raft *r);
/* Resets every follower as a new leader sees it. */
void raft_progress_reset_all(sisy_raft *r);
void raft_progress_become_probe(struct raft_progress *pr);
void raft_progress_become_replicate(struct raft_progress *pr);
void raft_progress_become_snapshot(struct raft_progress *pr, uint64_t index);
/* Accepts a match report; 1 if it moved match forward. */
int raft_progress_update(struct raft_progress *pr, uint64_t match);
int raft_progress_is_paused(const sisy_raft *r, const struct raft_progress *pr);
void raft_progress_infl_add(sisy_raft *r, struct raft_progress *pr,
			    uint64_t last);
void raft_progress_infl_free_to(sisy_raft *r, struct raft_progress *pr,
				uint64_t index);
/* The highest index a quorum of voters holds durably (self counted by
 * its durable index, if it is a voter). */
uint64_t raft_progress_quorum_match(const sisy_raft *r);
/* 1 if a quorum of voters was recently active (self counts). */
int raft_progress_quorum_active(const sisy_raft *r);
/* The highest read round a quorum of voters confirmed. */
uint64_t raft_progress_quorum_read_ack(const sisy_raft *r);

/* ---- election.c ------------------------------------------------------------
 */

void raft_reset_timeout(sisy_raft *r);
void raft_become_follower(sisy_raft *r, uint64_t term, uint64_t leader);
void raft_become_leader(sisy_raft *r);
/* Starts a pre-vote (if configured and !transfer) or an election. */
void raft_campaign(sisy_raft *r, int transfer);
void raft_tick_election(sisy_raft *r);
void raft_handle_vote(sisy_raft *r, const sisy_raft_msg *m);
void raft_handle_vote_resp(sisy_raft *r, const sisy_raft_msg *m);
int raft_is_voter(const sisy_raft *r);

/* ---- replication.c ------------------------------------------------------ */

void raft_tick_leader(sisy_raft *r);
/* Sends what `pr` can take now; `empty_ok`: also an empty APPEND (to
 * carry a new commit index). */
void raft_send_append(sisy_raft *r, struct raft_progress *pr, int empty_ok);
void raft_bcast_append(sisy_raft *r);
void raft_bcast_heartbeat(sisy_raft *r);
/* Appends entries at the leader's term (data copied); sets their term and
 * index. */
sisy_err raft_leader_append(sisy_raft *r, sisy_raft_entry *e, size_t n);
/* Leader: recomputes commit; 1 if it moved. */
int raft_maybe_commit(sisy_raft *r);
/* Moves commit forward to `c` (clamped to the log). */
void raft_commit_to(sisy_raft *r, uint64_t c);
void raft_handle_append(sisy_raft *r, const sisy_raft_msg *m);
void raft_handle_append_resp(sisy_raft *r, const sisy_raft_msg *m);
void raft_handle_heartbeat(sisy_raft *r, const sisy_raft_msg *m);
void raft_handle_heartbeat_resp(sisy_raft *r, const sisy_raft_msg *m);
/* Truncates the log at `from` with everything that depends on it. */
void raft_truncate(sisy_raft *r, uint64_t from);

/* ---- snapshot.c -------------------------------------------------------------
 */

void raft_send_snapshot(sisy_raft *r, struct raft_progress *pr);
void raft_handle_snapshot(sisy_raft *r, const sisy_raft_msg *m);

/* ---- readindex.c ------------------------------------------------------------
 */

/* Queues a read from `from` (self or a follower); SISY_E_AGAIN if full. */
sisy_err raft_read_enqueue(sisy_raft *r, uint64_t from, uint64_t ctx);
int raft_read_can_start(const sisy_raft *r);
void raft_read_start_round(sisy_raft *r);
void raft_read_check(sisy_raft *r);
/* Fails every queued read (leadership lost). */
void raft_read_fail_all(sisy_raft *r);
void raft_handle_read_index(sisy_raft *r, const sisy_raft_msg *m);
void raft_handle_read_index_resp(sisy_raft *r, const sisy_raft_msg *m);
sisy_err raft_push_read_state(sisy_raft *r, uint64_t ctx, uint64_t index,
			      int failed);

/* ---- transfer.c
 * -------------------------------------------------------------- */

void raft_transfer_abort(sisy_raft *r);
/* Leader: `pr` caught up? then send TIMEOUT_NOW. */
void raft_transfer_maybe_fire(sisy_raft *r, struct raft_progress *pr);
void raft_handle_timeout_now(sisy_raft *r, const sisy_raft_msg *m);

/* ---- ready.c ---------------------------------------------------------------
 */

/* Queues a message that promises nothing durable (sent at the next ready). */
void raft_send(sisy_raft *r, sisy_raft_msg *m);
/* Queues a message that promises the current state is durable: it leaves
 * only once everything given out (or pending) so far is persisted. A
 * message to self is stepped in when released. */
void raft_send_durable(sisy_raft *r, sisy_raft_msg *m);
/* Drops queued APPENDs that carry entries >= from or < first. */
void raft_outbox_purge(sisy_raft *r, uint64_t from);
/* The log was truncated at `from` / replaced by a snapshot: clip what is
 * known durable. */
void raft_durable_clip(sisy_raft *r, uint64_t from);
/* Out of memory in a path that cannot return it: the instance drops the
 * message it was building (Raft tolerates lost messages). */
void raft_oom(sisy_raft *r, const char *what);

#ifdef SISY_DEBUG
void raft_check_invariants(const sisy_raft *r);
#else
static inline void raft_check_invariants(const sisy_raft *r)
{
	(void)r;
}
#endif

#endif
