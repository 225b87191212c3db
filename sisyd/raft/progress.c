/* progress.c — the leader's view of each follower and the quorum counts.
 *
 * States (as in etcd raft):
 *   PROBE      the match is unknown: one APPEND at a time (`paused` until a
 *              reply, or a heartbeat response once a periodic heartbeat
 *              left after it: at most one per heartbeat interval), moving
 *              `next` back on rejections using the follower's conflict
 *              hint;
 *   REPLICATE  the match is known: APPENDs are pipelined, `next` advances
 *              optimistically, at most cfg.max_inflight_msgs in flight (a
 *              ring of their last indexes, freed by acknowledgements);
 *   SNAPSHOT   the follower needs a snapshot; nothing is sent until it
 *              acknowledges pending_snapshot or the send fails.
 * Invariants: match < next; in REPLICATE every in-flight index is in
 * (match, next). The leader itself is not in the array: it counts by its
 * durable index.
 */
#include <string.h>

#include "raft_int.h"

struct raft_progress *raft_progress_find(sisy_raft *r, uint64_t id)
{
	for (uint32_t k = 0; k < r->n_prs; k++)
		if (r->prs[k].id == id)
			return &r->prs[k];
	return NULL;
}

static void progress_init(sisy_raft *r, struct raft_progress *pr, uint64_t id,
			  uint64_t *infl)
{
	memset(pr, 0, sizeof *pr);
	pr->id = id;
	pr->learner = sisy_raft_membership_is_learner(&r->conf, id);
	pr->state = SISY_RAFT_PROBE;
	pr->next = raft_log_last(&r->log) + 1;
	/* A fresh leader must not step down before anyone could answer. */
	pr->recent_active = 1;
	pr->infl = infl;
}

/* A slot of infl_pool no kept member uses. */
static uint64_t *free_slot(const sisy_raft *r, const struct raft_progress *kept,
			   uint32_t n_kept)
{
	for (uint32_t s = 0; s < SISY_RAFT_MAX_NODES; s++) {
		uint64_t *p =
		    r->infl_pool + (size_t)s * r->cfg.max_inflight_msgs;
		int used = 0;
		for (uint32_t k = 0; k < n_kept && !used; k++)
			used = kept[k].infl == p;
		if (!used)
			return p;
	}
	assert(0 && "more members than SISY_RAFT_MAX_NODES");
	return NULL;
}

/* Each follower keeps its in-flight ring (a slot of infl_pool) for as long
 * as it stays a member; new members take a free slot. */
void raft_progress_sync(sisy_raft *r)
{
	struct raft_progress old[SISY_RAFT_MAX_NODES];
	uint32_t n_old = r->n_prs;
	memcpy(old, r->prs, n_old * sizeof old[0]);
	uint64_t ids[2 * SISY_RAFT_MAX_NODES];
	uint32_t n = 0;
	for (uint32_t k = 0; k < r->conf.n_voters; k++)
		ids[n++] = r->conf.voters[k];
	for (uint32_t k = 0; k < r->conf.n_learners; k++)
		ids[n++] = r->conf.learners[k];
	/* Kept members first (so their slots are known), then new ones. */
	r->n_prs = 0;
	for (uint32_t k = 0; k < n; k++)
		for (uint32_t j = 0; j < n_old; j++)
			if (old[j].id == ids[k] && ids[k] != r->id)
				r->prs[r->n_prs++] = old[j];
	uint32_t n_kept = r->n_prs;
	for (uint32_t k = 0; k < n; k++) {
		if (ids[k] == r->id || raft_progress_find(r, ids[k]))
			continue;
		struct raft_progress *pr = &r->prs[r->n_prs++];
		progress_init(r, pr, ids[k], free_slot(r, r->prs, n_kept));
		n_kept = r->n_prs;
	}
	for (uint32_t k = 0; k < r->n_prs; k++)
		r->prs[k].learner =
		    sisy_raft_membership_is_learner(&r->conf, r->prs[k].id);
}

void raft_progress_reset_all(sisy_raft *r)
{
	r->n_prs = 0;
	raft_progress_sync(r);
}

void raft_progress_become_probe(struct raft_progress *pr)
{
	pr->next = pr->match + 1;
	pr->state = SISY_RAFT_PROBE;
	pr->paused = 0;
	pr->pending_snapshot = 0;
	pr->infl_start = pr->infl_count = 0;
	pr->stall_ticks = 0;
}

void raft_progress_become_replicate(struct raft_progress *pr)
{
	pr->state = SISY_RAFT_REPLICATE;
	pr->next = pr->match + 1;
	pr->paused = 0;
	pr->pending_snapshot = 0;
	pr->infl_start = pr->infl_count = 0;
	pr->stall_ticks = 0;
}

void raft_progress_become_snapshot(struct raft_progress *pr, uint64_t index)
{
	pr->state = SISY_RAFT_SNAPSHOT;
	pr->pending_snapshot = index;
	pr->paused = 0;
	pr->infl_start = pr->infl_count = 0;
	pr->snapshot_ticks = 0;
}

int raft_progress_update(struct raft_progress *pr, uint64_t match)
{
	int moved = 0;
	if (match > pr->match) {
		pr->match = match;
		pr->stall_ticks = 0;
		moved = 1;
	}
	if (pr->next < match + 1)
		pr->next = match + 1;
	pr->paused = 0;
	return moved;
}

int raft_progress_is_paused(const sisy_raft *r, const struct raft_progress *pr)
{
	switch (pr->state) {
	case SISY_RAFT_PROBE:
		return pr->paused;
	case SISY_RAFT_REPLICATE:
		return pr->infl_count >= r->cfg.max_inflight_msgs;
	default:
		return 1;
	}
}

void raft_progress_infl_add(sisy_raft *r, struct raft_progress *pr,
			    uint64_t last)
{
	uint32_t cap = r->cfg.max_inflight_msgs;
	assert(pr->infl_count < cap);
	pr->infl[(pr->infl_start + pr->infl_count) % cap] = last;
	pr->infl_count++;
}

void raft_progress_infl_free_to(sisy_raft *r, struct raft_progress *pr,
				uint64_t index)
{
	uint32_t cap = r->cfg.max_inflight_msgs;
	while (pr->infl_count > 0 && pr->infl[pr->infl_start] <= index) {
		pr->infl_start = (pr->infl_start + 1) % cap;
		pr->infl_count--;
	}
}

/* The quorum-th largest of v[0..n): what a majority has reached. */
static uint64_t quorum_value(uint64_t *v, uint32_t n, uint32_t quorum)
{
	/* n <= SISY_RAFT_MAX_NODES: insertion sort, descending. */
	for (uint32_t i = 1; i < n; i++) {
		uint64_t x = v[i];
		uint32_t j = i;
		while (j > 0 && v[j - 1] < x) {
			v[j] = v[j - 1];
			j--;
		}
		v[j] = x;
	}
	return n >= quorum ? v[quorum - 1] : 0;
}

/* Collects one value per voter: `self` for this node, pick(pr) for others
 * (0 for a voter we have no progress for). */
static uint64_t voters_quorum(const sisy_raft *r, uint64_t self,
			      uint64_t (*pick)(const struct raft_progress *))
{
	uint64_t v[SISY_RAFT_MAX_NODES];
	uint32_t n = 0;
	for (uint32_t k = 0; k < r->conf.n_voters; k++) {
		uint64_t id = r->conf.voters[k];
		uint64_t x = 0;
		if (id == r->id) {
			x = self;
		} else {
			for (uint32_t j = 0; j < r->n_prs; j++)
				if (r->prs[j].id == id)
					x = pick(&r->prs[j]);
		}
		v[n++] = x;
	}
	if (n == 0)
		return 0;
	return quorum_value(v, n, raft_quorum(&r->conf));
}

static uint64_t pick_match(const struct raft_progress *pr)
{
	return pr->match;
}
static uint64_t pick_active(const struct raft_progress *pr)
{
	return pr->recent_active;
}
static uint64_t pick_read_ack(const struct raft_progress *pr)
{
	return pr->read_ack;
}

uint64_t raft_progress_quorum_match(const sisy_raft *r)
{
#ifdef SISY_RAFT_BUG_ACK_BEFORE_DURABLE
	uint64_t self = raft_log_last(&r->log);
#else
	uint64_t self = r->durable;
#endif
	return voters_quorum(r, self, pick_match);
}

int raft_progress_quorum_active(const sisy_raft *r)
{
	return voters_quorum(r, 1, pick_active) != 0;
}

uint64_t raft_progress_quorum_read_ack(const sisy_raft *r)
{
	return voters_quorum(r, UINT64_MAX, pick_read_ack);
}
