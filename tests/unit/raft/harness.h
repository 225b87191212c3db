/* harness.h — a tiny in-process cluster for the Raft core's unit tests.
 *
 * Nodes 1..n run sisy_raft instances over a FIFO "network" of deep-copied
 * messages. Each node has a model disk: a ready's writes go to `pending`
 * and reach `disk` (and sisy_raft_persisted) only when the test persists
 * them — at once with auto_persist, or by hand — so a crash (h_crash)
 * loses exactly what was not persisted. The state machine is the list of
 * applied entries; snapshots copy the sender's applied prefix. Links can be
 * cut one way, and a filter can drop or inspect messages. Everything is
 * deterministic: no clock, the PRNG seeds come from node ids.
 */
#ifndef SISY_TEST_RAFT_HARNESS_H
#define SISY_TEST_RAFT_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "raft.h"

#define H_MAX	      8
#define H_MAX_ENTRIES 4096

/* An owned copy of an entry. */
struct h_entry {
	uint64_t term, index;
	uint8_t type;
	uint8_t *data;
	size_t len;
};

struct h_write {
	uint64_t id;
	uint8_t has_hs;
	sisy_raft_hard_state hs;
	uint8_t has_snap;
	sisy_raft_snapshot_meta snap;
	struct h_entry *ents;
	size_t n_ents;
};

struct h_node {
	uint64_t id;
	sisy_raft *r;
	sisy_raft_config cfg;
	int up;
	int auto_persist;
	/* model disk */
	sisy_raft_hard_state hs;
	sisy_raft_snapshot_meta snap;
	struct h_entry *disk; /* disk[0] has index snap.index + 1 */
	size_t n_disk;
	struct h_write *pending;
	size_t n_pending;
	/* state machine: applied entries; [0, sm_base) came in a snapshot */
	struct h_entry *applied;
	size_t n_applied;
	uint64_t applied_index;
	/* snapshot data that arrived with the last MSG_SNAPSHOT */
	struct h_entry *snap_data;
	size_t n_snap_data;
	/* reads served back to this node */
	sisy_raft_read_state reads[256];
	size_t n_reads;
	uint64_t soft_changes;
};

struct h_msg {
	sisy_raft_msg m;
	struct h_entry *ents;
};

struct harness;
/* Return 0 to drop the message. */
typedef int (*h_filter)(struct harness *h, const sisy_raft_msg *m);

struct harness {
	struct h_node nodes[H_MAX + 1]; /* by id, [0] unused */
	size_t n;
	struct h_msg *q;
	size_t nq, cap_q;
	uint8_t cut[H_MAX + 1][H_MAX + 1]; /* cut[from][to] */
	h_filter filter;
	void *filter_ctx;
	uint64_t delivered;
	uint64_t sent_by_type[SISY_RAFT_MSG_TYPE_MAX + 1];
};

/* n voters 1..n, bootstrapped with one config entry; `tweak` (may be
 * NULL) edits each node's config before creation. */
void h_init(struct harness *h, size_t n, void (*tweak)(sisy_raft_config *));
void h_free(struct harness *h);
/* Adds node `id` as an empty instance (a joining node); not yet a member. */
void h_add_empty(struct harness *h, uint64_t id);

/* Processes every node's ready and delivers messages until quiet. */
void h_settle(struct harness *h);
/* One tick on every up node, then settle. */
void h_tick(struct harness *h, int ticks);
/* Processes readies once and delivers only what is queued now. */
void h_step_once(struct harness *h);
/* Processes one node's readies (without delivering). */
void h_process(struct harness *h, uint64_t id);

/* Campaigns on `id` and settles; asserts it became leader. */
void h_elect(struct harness *h, uint64_t id);
/* The id of the one node that believes it leads the highest term, or 0. */
uint64_t h_leader(struct harness *h);

/* Proposes on `id`; returns the sisy_err. */
int h_propose(struct harness *h, uint64_t id, const char *data,
	      uint64_t *index);
/* Persists pending writes of `id` up to `upto` (UINT64_MAX: all). */
void h_persist(struct harness *h, uint64_t id, uint64_t upto);
/* Compacts `id` (core and model disk) up to i. */
void h_compact(struct harness *h, uint64_t id, uint64_t i);
/* Crash: loses unpersisted writes and in-flight messages to/from it. */
void h_crash(struct harness *h, uint64_t id);
/* Restart from the model disk. */
void h_restart(struct harness *h, uint64_t id);
void h_isolate(struct harness *h, uint64_t id);
void h_heal(struct harness *h);

sisy_raft_status h_status(struct harness *h, uint64_t id);
/* Asserts all applied sequences are consistent (prefix of one another). */
void h_check_applied(struct harness *h);
/* Index of the last applied normal entry with `data`, or 0. */
uint64_t h_applied_find(struct harness *h, uint64_t id, const char *data);

#endif
