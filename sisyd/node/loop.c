/* loop.c — one turn of the node's work on the event loop: apply
 * completions, durability reports, every group's readies, then the Raft
 * log's queue and the outbox; and the periodic housekeeping of ticks.
 *
 * A ready is taken apart in the order raft.h prescribes: persist (queue
 * snapshot / entries / hard state to the log, durable when the turn's
 * marker is), send (the outbox; a MSG_SNAPSHOT becomes a checkpoint to
 * stream), apply (a copy of the committed entries to the apply thread),
 * reads (to the read batches), then advance. A ready carrying a snapshot
 * parks its persistence until the apply thread has installed the engine
 * (raft.h rule 3); the group takes no further readies meanwhile, but keeps
 * stepping messages and ticking.
 *
 * Apply jobs are reused (at most JOB_SPARES, with their entry buffers):
 * one goes to the apply thread per turn with commits.
 *
 * Housekeeping (every HOUSEKEEPING_TICKS ticks): read deadlines (every
 * tick), engine flushes so that the durable applied index advances, log
 * compaction below it, learner promotion, dropping an idle checkpoint.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

#define HOUSEKEEPING_TICKS 10
#define CKPT_IDLE_TICKS	   600

/* job_new leaves path[] after its first byte and members.m[] unwritten:
 * a new field after `members` would be missed. */
_Static_assert(offsetof(node_job, members) + sizeof(node_members) ==
		   sizeof(node_job),
	       "node_job: job_new zeroes every field but path and members");

#define JOB_SPARES	4	   /* apply jobs kept for reuse */
#define JOB_SPARE_BYTES (1u << 20) /* ... unless their buffers are bigger */

/* A job with every field zero but the big arrays (path, members: ~9 KiB
 * of the job's ~9.5), which are empty strings / no members. A calloc
 * zeroed them all: ~9,700 instructions per apply job, paid once per loop
 * turn with commits (at P=1 about 500 instructions per PUT). An apply job
 * comes from the spares when there is one, with the entry buffers and
 * the events buffer (empty) of its last use: no malloc or free for them
 * per turn. */
static node_job *job_new(node_group *g, node_job_kind kind)
{
	sisy_node *n = g->n;
	/* A spare's buffers, kept across the zeroing (not a node_job on the
	 * stack: zeroing that is the cost this avoids). */
	sisy_raft_entry *ents = NULL;
	uint8_t *mem = NULL;
	size_t ents_cap = 0, mem_cap = 0;
	sisy_buf events = {0};
	node_job *j;
	if (kind == JOB_APPLY && n->job_spare != NULL) {
		j = n->job_spare;
		n->job_spare = j->next;
		n->njob_spare--;
		ents = j->ents;
		mem = j->mem;
		ents_cap = j->ents_cap;
		mem_cap = j->mem_cap;
		events = j->events;
	} else {
		j = malloc(sizeof *j);
	}
	if (j == NULL) {
		node_fail(g->n, sisy_errf(SISY_E_NOMEM, "out of memory"),
			  "queueing work for the apply thread");
		return NULL;
	}
	memset(j, 0, offsetof(node_job, path));
	j->path[0] = '\0';
	memset(&j->err, 0,
	       offsetof(node_job, members) - offsetof(node_job, err));
	j->members.n = 0;
	j->ents = ents;
	j->mem = mem;
	j->ents_cap = ents_cap;
	j->mem_cap = mem_cap;
	j->events = events;
	sisy_buf_clear(&j->events);
	j->kind = kind;
	j->g = g;
	return j;
}

/* A finished job: an apply job becomes a spare (its results freed, its
 * buffers kept) while there are fewer than JOB_SPARES and its buffers are
 * small; anything else is freed. */
static void job_done(sisy_node *n, node_job *j)
{
	if (j->kind != JOB_APPLY || n->njob_spare >= JOB_SPARES ||
	    j->mem_cap + j->ents_cap * sizeof *j->ents + j->events.cap >
		JOB_SPARE_BYTES) {
		node_job_free(j);
		return;
	}
	free(j->res);
	j->res = NULL;
	free(j->files);
	j->files = NULL;
	j->next = n->job_spare;
	n->job_spare = j;
	n->njob_spare++;
}

/* The committed entries into j's buffers, grown when too small. */
static bool job_copy_entries(node_job *j, const sisy_raft_entry *e, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += e[i].len;
	if (n > j->ents_cap) {
		free(j->ents);
		j->ents = malloc(n * sizeof *j->ents);
		j->ents_cap = j->ents ? n : 0;
	}
	if (total + 1 > j->mem_cap) {
		free(j->mem);
		j->mem = malloc(total + 1);
		j->mem_cap = j->mem ? total + 1 : 0;
	}
	if (j->ents == NULL || j->mem == NULL)
		return false;
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		j->ents[i] = e[i];
		if (e[i].len)
			memcpy(j->mem + off, e[i].data, e[i].len);
		j->ents[i].data = j->mem + off;
		off += e[i].len;
	}
	j->n = n;
	j->bytes = total + n * sizeof *j->ents;
	return true;
}

/* Copies entries (and their data) into *out / *mem. */
static bool copy_entries(const sisy_raft_entry *e, size_t n,
			 sisy_raft_entry **out, uint8_t **mem, size_t *bytes)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += e[i].len;
	*out = malloc(n * sizeof **out + 1);
	*mem = malloc(total + 1);
	if (*out == NULL || *mem == NULL) {
		free(*out);
		free(*mem);
		*out = NULL;
		*mem = NULL;
		return false;
	}
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		(*out)[i] = e[i];
		if (e[i].len)
			memcpy(*mem + off, e[i].data, e[i].len);
		(*out)[i].data = *mem + off;
		off += e[i].len;
	}
	*bytes = total + n * sizeof **out;
	return true;
}

static void queue_apply(node_group *g, const sisy_raft_entry *e, size_t n)
{
	node_job *j = job_new(g, JOB_APPLY);
	if (j == NULL)
		return;
	if (!job_copy_entries(j, e, n)) {
		node_job_free(j);
		node_fail(g->n, sisy_errf(SISY_E_NOMEM, "out of memory"),
			  "copying committed entries");
		return;
	}
	g->handed = e[n - 1].index;
	g->queued_bytes += j->bytes;
	node_apply_push(g->n, j);
}

/* A ready with a snapshot: install first, persist afterwards. */
static void start_install(node_group *g, const sisy_raft_ready *rd)
{
	sisy_node *n = g->n;
	node_deferred *d = &g->deferred;
	const char *dbname = g->staged ? node_snap_in_dbname(g->staged) : NULL;
	if (dbname == NULL) {
		node_fail(n, sisy_errf(SISY_E_INTERNAL, "no staged snapshot"),
			  "installing a snapshot");
		return;
	}
	memset(d, 0, sizeof *d);
	d->active = true;
	d->persist_id = rd->persist_id;
	d->snap = *rd->snapshot;
	d->has_hs = rd->has_hard_state;
	d->hs = rd->hard_state;
	size_t bytes;
	if (rd->n_entries > 0 && !copy_entries(rd->entries, rd->n_entries,
					       &d->ents, &d->mem, &bytes)) {
		node_fail(n, sisy_errf(SISY_E_NOMEM, "out of memory"),
			  "keeping a snapshot's entries");
		return;
	}
	d->n = rd->n_entries;
	node_job *j = job_new(g, JOB_INSTALL);
	if (j == NULL)
		return;
	snprintf(j->dbname, sizeof j->dbname, "%s", dbname);
	j->index = rd->snapshot->index;
	g->installing = true;
	node_apply_push(n, j);
}

void node_loop_ready(node_group *g)
{
	sisy_node *n = g->n;
	sisy_raft_ready rd;
	bool lost = false;
	sisy_raft_get_ready(g->raft, &rd);
	if (rd.soft_changed) {
		bool leader_changed = rd.leader != g->leader;
		g->role = rd.role;
		g->leader = rd.leader;
		g->term = rd.term;
		lost = rd.role != SISY_RAFT_LEADER;
		if (leader_changed)
			node_reads_reissue(g);
	}
	if (rd.snapshot != NULL) {
		start_install(g, &rd);
	} else if (rd.persist_id != 0) {
		node_wq_append(n, g->id, rd.entries, rd.n_entries);
		if (rd.has_hard_state)
			node_wq_hardstate(n, g->id, &rd.hard_state);
		node_wq_persist(g, rd.persist_id);
	} else if (rd.has_hard_state) {
		node_wq_hardstate(n, g->id, &rd.hard_state);
	}
	for (size_t i = 0; i < rd.n_entries; i++)
		if (rd.entries[i].type == SISY_RAFT_ENTRY_CONFIG)
			node_book_conf(n, &rd.entries[i]);
	for (size_t i = 0; i < rd.n_msgs; i++) {
		if (rd.msgs[i].type == SISY_RAFT_MSG_SNAPSHOT)
			node_snap_request(g, &rd.msgs[i]);
		else if (node_outbox_add(n, g->id, &rd.msgs[i]) != SISY_OK)
			sisy_log(n->o.logger, SISY_LOG_WARN, "node",
				 "dropped a message: %s", sisy_errmsg());
	}
	if (rd.n_committed > 0)
		queue_apply(g, rd.committed, rd.n_committed);
	node_reads_ready(g, rd.reads, rd.n_reads);
	sisy_raft_advance(g->raft);
	/* Callbacks only after advance: they may call into the core. */
	if (lost)
		node_waiters_fail(g, SISY_E_UNKNOWN_OUTCOME);
	if (rd.n_reads > 0)
		node_reads_applied(g); /* may be applied far enough already */
}

/* ---- completions
 * ------------------------------------------------------------------ */

static void user_events(sisy_node *n, const sisy_buf *ev)
{
	if (n->o.on_user_change == NULL)
		return;
	for (size_t off = 0; off < ev->len;) {
		const char *name = (const char *)ev->data + off;
		n->o.on_user_change(n->o.user_ctx, name);
		off += strlen(name) + 1;
	}
}

static void job_failed(sisy_node *n, node_job *j, const char *what)
{
	sisy_errf(j->err, "%s", j->errmsg);
	node_fail(n, j->err, what);
}

static bool handle(sisy_node *n, node_job *j)
{
	node_group *g = j->g;
	switch (j->kind) {
	case JOB_APPLY:
		g->queued_bytes -= j->bytes;
		if (j->on_loop)
			g->jobs_on_loop++;
		else
			g->jobs_on_thread++;
		if (j->err != SISY_OK) {
			job_failed(n, j, "applying committed entries");
			return true;
		}
		g->applied = j->applied;
		g->applied_term = j->applied_term;
		if (j->members_changed)
			node_book_members(n, &j->members);
		node_waiters_applied(g, j->res, j->nres);
		user_events(n, &j->events);
		node_reads_applied(g);
		return true;
	case JOB_INSTALL:
		node_snap_in_installed(g, j);
		return true;
	case JOB_CHECKPOINT:
		node_snap_checkpoint_done(g, j);
		return true;
	case JOB_FLUSH:
		g->flush_pending = false;
		if (j->err == SISY_E_FAILED || j->err == SISY_E_IO)
			job_failed(n, j, "flushing the engine");
		else if (j->err != SISY_OK)
			sisy_log(n->o.logger, SISY_LOG_WARN, "node",
				 "group %" PRIu64 ": flushing the engine: %s",
				 g->id, j->errmsg);
		return true;
	case JOB_RMDIR:
		if (j->err != SISY_OK)
			sisy_log(n->o.logger, SISY_LOG_WARN, "node",
				 "removing %s: %s", j->path, j->errmsg);
		return true;
	}
	return true;
}

void node_loop_completions(sisy_node *n)
{
	node_job *j = node_apply_take(n);
	while (j) {
		node_job *next = j->next;
		if (handle(n, j))
			job_done(n, j);
		j = next;
	}
}

/* Durability reports, then every group's readies, then the answers of
 * what was applied on the loop meanwhile (apply.c), then the turn's log
 * writes are handed over. */
static void node_round(sisy_node *n, bool first)
{
	node_wq_drain(n);
	for (size_t i = 0; i < n->ngroups && !n->failed; i++) {
		node_group *g = n->groups[i];
		if (first)
			node_reads_issue(g);
		while (!g->installing && !n->failed &&
		       sisy_raft_has_ready(g->raft))
			node_loop_ready(g);
	}
	if (n->done_on_loop) {
		n->done_on_loop = false;
		node_loop_completions(n);
	}
	node_wq_flush(n);
}

sisy_err sisy_node_process(sisy_node *n)
{
	if (n->failed)
		goto failed;
	node_loop_completions(n);
	node_round(n, true);
	if (n->o.unsafe_no_fsync && !n->failed) {
		/* The log is written here (sisy_raftlog_write_now): this
		 * turn's writes commit, apply and answer in this turn; what
		 * that queues (a new commit index) is written at the end,
		 * reported next turn. */
		sisy_raftlog_write_now(n->log);
		node_round(n, false);
		sisy_raftlog_write_now(n->log);
	}
	node_outbox_flush(n);
failed:
	if (n->failed) {
		/* Nothing will be applied here any more; what is pending may
		 * still commit elsewhere. */
		for (size_t i = 0; i < n->ngroups; i++) {
			node_waiters_fail(n->groups[i], SISY_E_UNKNOWN_OUTCOME);
			node_reads_fail_all(n->groups[i], SISY_E_FAILED);
		}
		return sisy_errf(SISY_E_FAILED, "node: stopped: %s",
				 n->failmsg);
	}
	return SISY_OK;
}

/* ---- ticks
 * ------------------------------------------------------------------------ */

static void flush_and_compact(node_group *g)
{
	sisy_node *n = g->n;
	uint64_t durable = 0;
	sisy_raft_status st;
	if (g->installing)
		return;
	if (node_sm_durable_applied(&g->sm, &durable) != SISY_OK)
		return;
	/* The engine flushes full memtables by itself; only a durable index
	 * that stopped moving (light load) needs a push. */
	if (durable != g->last_durable) {
		g->last_durable = durable;
		g->last_flush_tick = n->ticks;
	}
	if (!g->flush_pending && g->applied > durable &&
	    n->ticks - g->last_flush_tick >= n->o.flush_ticks) {
		node_job *j = job_new(g, JOB_FLUSH);
		if (j != NULL) {
			g->flush_pending = true;
			g->last_flush_tick = n->ticks;
			node_apply_push(n, j);
		}
	}
	sisy_raft_get_status(g->raft, &st);
	if (durable > st.applied)
		durable = st.applied;
	/* By count, keeping compact_keep entries for slow followers; by
	 * bytes (the core holds the log in memory), keeping none. */
	bool by_bytes = st.log_bytes > n->o.compact_bytes;
	uint64_t keep = by_bytes ? 0 : n->o.compact_keep;
	if (!by_bytes && durable < st.compaction.index + n->o.compact_entries)
		return;
	if (durable <= keep || durable - keep <= st.compaction.index)
		return;
	uint64_t target = durable - keep;
	if (sisy_raft_compact(g->raft, target, NULL) != SISY_OK) {
		sisy_log(n->o.logger, SISY_LOG_WARN, "node",
			 "group %" PRIu64 ": compacting to %" PRIu64 ": %s",
			 g->id, target, sisy_errmsg());
		return;
	}
	node_wq_compact(n, g->id, target);
}

void node_housekeeping(sisy_node *n)
{
	for (size_t i = 0; i < n->ngroups; i++) {
		node_group *g = n->groups[i];
		node_reads_tick(g);
		if (n->ticks % HOUSEKEEPING_TICKS != 0)
			continue;
		flush_and_compact(g);
		node_promote_learners(g);
		if (g->ckpt && g->ckpt->refs == 1 &&
		    n->ticks - g->ckpt->created > CKPT_IDLE_TICKS) {
			node_ckpt *c = g->ckpt;
			g->ckpt = NULL;
			node_ckpt_unref(n, c);
		}
	}
}

void sisy_node_tick(sisy_node *n)
{
	if (n->failed)
		return;
	n->ticks++;
	for (size_t i = 0; i < n->ngroups; i++)
		sisy_raft_tick(n->groups[i]->raft);
	node_housekeeping(n);
}
