/* snapshot.c — sending, installing and compacting behind snapshots.
 *
 * The core never sees snapshot data, only its metadata (index, term,
 * membership at index). The leader's MSG_SNAPSHOT names its compaction
 * point; the node sends a checkpoint at least that new (see raft.h). A
 * follower installs a snapshot only if it is ahead of its commit index and
 * its (index, term) is not already in the log (then it just commits up to
 * it); installing drops the whole in-memory log, adopts the snapshot's
 * membership and commit, and hands the meta out in the next ready. The
 * acknowledgement (an APPEND_RESP at the snapshot index) is held until the
 * caller reports that ready persisted, i.e. the state machine holds the
 * snapshot durably.
 *
 * Compaction (sisy_raft_compact) drops entries the state machine has
 * applied; their meta becomes the new compaction point.
 */
#include <string.h>

#include "raft_int.h"

void raft_send_snapshot(sisy_raft *r, struct raft_progress *pr)
{
	sisy_raft_msg m = {0};
	m.type = SISY_RAFT_MSG_SNAPSHOT;
	m.to = pr->id;
	m.snapshot = r->log.snap;
	raft_progress_become_snapshot(pr, r->log.snap.index);
	raft_send(r, &m);
}

void raft_handle_snapshot(sisy_raft *r, const sisy_raft_msg *m)
{
	const sisy_raft_snapshot_meta *s = &m->snapshot;
	r->election_elapsed = 0;
	r->leader = m->from;
	sisy_raft_msg resp = {0};
	resp.type = SISY_RAFT_MSG_APPEND_RESP;
	resp.to = m->from;
	uint64_t t;
	if (s->index <= r->commit) {
		resp.index = r->commit;
	} else if (raft_log_term(&r->log, s->index, &t) && t == s->term) {
		raft_commit_to(r, s->index);
		resp.index = r->commit;
	} else {
		raft_log_reset(&r->log, s);
		r->commit = s->index;
		r->unstable = s->index + 1;
		raft_durable_clip(r, s->index + 1);
		raft_outbox_purge(r, 0);
		r->install_pending = 1;
		r->install = *s;
		raft_conf_refresh(r);
		resp.index = s->index;
	}
	raft_send_durable(r, &resp);
}

void sisy_raft_report_snapshot(sisy_raft *r, uint64_t to, sisy_err status)
{
	assert(!r->in_ready);
	if (r->role != SISY_RAFT_LEADER)
		return;
	struct raft_progress *pr = raft_progress_find(r, to);
	if (!pr || pr->state != SISY_RAFT_SNAPSHOT)
		return;
	uint64_t sent = pr->pending_snapshot;
	raft_progress_become_probe(pr);
	if (status == SISY_OK) /* wait for its APPEND_RESP or a heartbeat */
		pr->next = raft_max(pr->next, sent + 1);
	pr->paused = 1;
}

sisy_err sisy_raft_meta_at(const sisy_raft *r, uint64_t i,
			   sisy_raft_snapshot_meta *out)
{
	uint64_t t;
	if (!raft_log_term(&r->log, i, &t))
		return sisy_errf(SISY_E_RANGE,
				 "raft: no meta for index %llu (log holds "
				 "%llu..%llu)",
				 (unsigned long long)i,
				 (unsigned long long)r->log.snap.index,
				 (unsigned long long)raft_log_last(&r->log));
	memset(out, 0, sizeof *out);
	out->index = i;
	out->term = t;
	raft_conf_at(r, i, &out->membership);
	return SISY_OK;
}

sisy_err sisy_raft_compact(sisy_raft *r, uint64_t i,
			   sisy_raft_snapshot_meta *out)
{
	assert(!r->in_ready);
	if (i > r->applied)
		return sisy_errf(SISY_E_RANGE,
				 "raft: cannot compact to %llu beyond the "
				 "applied index %llu",
				 (unsigned long long)i,
				 (unsigned long long)r->applied);
	if (i > r->log.snap.index) {
		sisy_raft_membership m;
		raft_conf_at(r, i, &m);
		raft_log_compact(&r->log, i, &m);
		raft_outbox_purge(r, UINT64_MAX);
	}
	if (out)
		*out = r->log.snap;
	raft_check_invariants(r);
	return SISY_OK;
}
