/* group.c — opening one Raft group of the node: its engine, its core, and
 * the recovery that puts them back together (loop thread, at open).
 *
 * RECOVERY ORDER (docs/node.md):
 *   1. the engine opens at what it made durable: applied index A (and its
 *      term, membership, client table, users), all from one flushed state;
 *   2. the group's Raft log: base b (compaction / snapshot point), entries
 *      (b, L], hard state. Invariant b <= A: the log is compacted only below
 *      the engine's durable applied index, and a snapshot is recorded in
 *      the log only after the engine holds it;
 *   3. if A > b but the log does not hold entry A of A's term (a crash
 *      between installing a snapshot's engine and recording it in the log),
 *      the snapshot is recorded now (set_snapshot, flushed): the log is
 *      then empty after A;
 *   4. the core is restored with the log's view: snapshot point b (its
 *      membership: the engine's; any config entry after b is in the log
 *      and wins), entries (b, L], the hard state, applied = A;
 *   5. the core hands out (A, commit] again through the normal ready path:
 *      the replay into the engine. A node never applies beyond its own
 *      durable log (every entry restored is durable).
 * A group the log has never seen and whose engine is empty is a joining
 * node's: its core starts empty and learns everything from the leader.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"

#define RESTORE_READ_BYTES (64u << 20)

static void members_to_raft(const node_members *m, sisy_raft_membership *out)
{
	memset(out, 0, sizeof *out);
	for (size_t i = 0; i < m->n; i++) {
		if (m->m[i].voter)
			out->voters[out->n_voters++] = m->m[i].id;
		else
			out->learners[out->n_learners++] = m->m[i].id;
	}
}

/* Entries (b, L] of the group, payloads decoded into raft entries that
 * point into *mem. */
static sisy_err read_log(sisy_raftlog *lg, uint64_t group, uint64_t b,
			 uint64_t L, sisy_raft_entry **out, size_t *nout,
			 sisy_buf *mem)
{
	size_t n = (size_t)(L - b), k = 0;
	sisy_raft_entry *v = n ? calloc(n, sizeof *v) : NULL;
	size_t *off = n ? calloc(n, sizeof *off) : NULL;
	sisy_err rc = n == 0 || (v && off) ? SISY_OK : SISY_E_NOMEM;
	for (uint64_t lo = b + 1; lo <= L && rc == SISY_OK;) {
		sisy_raftlog_entries es = {0};
		rc = sisy_raftlog_read(lg, group, lo, L + 1, RESTORE_READ_BYTES,
				       &es);
		for (size_t i = 0; i < es.n && rc == SISY_OK; i++, k++) {
			const sisy_raftlog_entry *e = &es.v[i];
			if (e->len < 1 || e->data[0] > SISY_RAFT_ENTRY_CONFIG) {
				rc = sisy_errf(SISY_E_CORRUPT,
					       "node: group %" PRIu64
					       " log entry %" PRIu64
					       " has no entry type",
					       group, e->index);
				break;
			}
			v[k].index = e->index;
			v[k].term = e->term;
			v[k].type = e->data[0];
			v[k].len = e->len - 1;
			off[k] = mem->len;
			rc = sisy_buf_append(mem, e->data + 1, e->len - 1);
		}
		lo += es.n;
		if (es.n == 0 && rc == SISY_OK)
			rc = sisy_errf(SISY_E_INTERNAL, "node: empty log read");
		sisy_raftlog_entries_free(&es);
	}
	if (rc == SISY_E_NOMEM)
		rc = sisy_errf(rc, "node: out of memory");
	for (size_t i = 0; i < k; i++)
		v[i].data = mem->data + off[i];
	free(off);
	if (rc != SISY_OK) {
		free(v);
		return rc;
	}
	*out = v;
	*nout = k;
	return SISY_OK;
}

static sisy_err recover(node_group *g)
{
	sisy_node *n = g->n;
	node_sm *sm = &g->sm;
	sisy_raftlog_state st;
	sisy_raft_entry *ents = NULL;
	size_t nents = 0;
	sisy_buf mem = {0};
	uint64_t A = sm->applied, TA = sm->applied_term, term;
	sisy_err rc = sisy_raftlog_state_of(n->log, g->id, &st);
	if (rc == SISY_E_NOTFOUND) {
		if (A == 0)
			return SISY_OK; /* a joining node: empty core */
		memset(&st, 0, sizeof st);
		rc = SISY_OK;
	}
	if (rc != SISY_OK)
		return rc;
	if (A < st.base_index)
		return sisy_errf(SISY_E_CORRUPT,
				 "node: group %" PRIu64 ": the engine (applied "
				 "%" PRIu64
				 ") is behind the log's start %" PRIu64
				 "; the data directory is damaged",
				 g->id, A, st.base_index);
	if (A > st.base_index &&
	    (A > st.last_index ||
	     sisy_raftlog_term(n->log, g->id, A, &term) != SISY_OK ||
	     term != TA)) {
		sisy_log(n->o.logger, SISY_LOG_INFO, "node",
			 "group %" PRIu64 ": finishing the install of the "
			 "snapshot at %" PRIu64,
			 g->id, A);
		if ((rc = sisy_raftlog_set_snapshot(n->log, g->id, A, TA)) !=
			SISY_OK ||
		    (rc = sisy_raftlog_flush(n->log)) != SISY_OK ||
		    (rc = sisy_raftlog_state_of(n->log, g->id, &st)) != SISY_OK)
			return rc;
	}
	if (st.last_index > st.base_index &&
	    (rc = read_log(n->log, g->id, st.base_index, st.last_index, &ents,
			   &nents, &mem)) != SISY_OK)
		goto out;
	sisy_raft_snapshot_meta snap;
	memset(&snap, 0, sizeof snap);
	snap.index = st.base_index;
	snap.term = st.base_term;
	if (snap.index > 0)
		members_to_raft(&sm->members, &snap.membership);
	sisy_raft_hard_state hs = {st.hs.term, st.hs.vote, st.hs.commit};
	if (!st.has_hardstate)
		memset(&hs, 0, sizeof hs);
	rc = sisy_raft_restore(g->raft, &hs, snap.index ? &snap : NULL, ents,
			       nents, A);
	for (size_t i = 0; i < nents && rc == SISY_OK; i++)
		if (ents[i].type == SISY_RAFT_ENTRY_CONFIG)
			node_book_conf(n, &ents[i]);
out:
	free(ents);
	sisy_buf_free(&mem);
	return rc;
}

sisy_err node_group_open(sisy_node *n, uint64_t id, node_group **out)
{
	node_group *g = calloc(1, sizeof *g);
	sisy_raft_config rc_cfg;
	sisy_err rc;
	if (g == NULL)
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	g->id = id;
	g->n = n;
	g->next_db = 1;
	if (snprintf(g->dir, sizeof g->dir, "%s/g%" PRIu64, n->dir, id) >=
	    (int)sizeof g->dir) {
		free(g);
		return sisy_errf(SISY_E_TOOBIG, "node: path too long: %s",
				 n->dir);
	}
	node_sm_cfg cfg = {
	    .self = n->id,
	    .group = id,
	    .client_expire_entries = n->o.client_expire_entries,
	    .client_window = n->o.client_window,
	    .max_clients = n->o.max_clients,
	    .token_expire_entries = n->o.token_expire_entries,
	    .memtable_bytes = n->o.memtable_bytes,
	    .memtable_run_bytes = n->o.memtable_run_bytes,
	    .block_cache_bytes = n->o.block_cache_bytes,
	    .compaction_nice = n->o.compaction_nice,
	};
	if ((rc = node_sm_open(&g->sm, n->fs, g->dir, &cfg, n->o.logger,
			       id == SISY_NODE_META_GROUP ? n->users : NULL)) !=
	    SISY_OK) {
		free(g);
		return rc;
	}
	sscanf(g->sm.dbname, "db-%u", &g->next_db);
	g->next_db++;
	sisy_raft_config_default(&rc_cfg, n->id);
	rc_cfg.election_ticks = n->o.election_ticks;
	rc_cfg.heartbeat_ticks = n->o.heartbeat_ticks;
	rc_cfg.rand_seed =
	    (n->o.rand_seed ? n->o.rand_seed : n->id) * 7919 + id;
	rc_cfg.max_entry_bytes = NODE_MAX_ENTRY;
	rc_cfg.logger = n->o.logger;
	if ((rc = sisy_raft_create(&rc_cfg, &g->raft)) != SISY_OK)
		goto fail;
	node_book_members(n, &g->sm.members);
	if ((rc = recover(g)) != SISY_OK)
		goto fail;
	g->applied = g->handed = g->sm.applied;
	g->applied_term = g->sm.applied_term;
	*out = g;
	return SISY_OK;
fail:;
	char msg[512];
	snprintf(msg, sizeof msg, "%s", sisy_errmsg());
	node_group_close(g);
	return sisy_errf(rc, "node: group %" PRIu64 ": %s", id, msg);
}

void node_group_close(node_group *g)
{
	if (g == NULL)
		return;
	sisy_raft_destroy(g->raft);
	node_sm_close(&g->sm);
	free(g->persists);
	free(g->waiters);
	free(g->snap_waits);
	free(g->deferred.ents);
	free(g->deferred.mem);
	free(g);
}
