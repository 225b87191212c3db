/* sim_node.c — one simulated node: a sisy_raft core, its disk, its state
 * machine, and the request bookkeeping of a real node.
 *
 * The ready loop follows raft.h's protocol: persist (write to the disk
 * model; a sync completes later and only then is persisted() called), send,
 * install a snapshot from the data that arrived with it, apply committed
 * entries in order, hand out reads; then advance. The checkers look at
 * every ready.
 *
 * Writes (puts) go to the leader: a waiter keyed by (term, index) answers
 * the client when that index is applied: ok if the applied entry is this
 * proposal, failed if another entry took the index (then this proposal can
 * never commit). A node that loses leadership answers its waiters "outcome
 * unknown", as DESIGN.md says a real node does. A crash loses all waiters,
 * so those clients time out ("unknown"). Reads use ReadIndex on any node
 * (a follower asks the leader) and are served once applied >= the index.
 *
 * The state machine is SIM_KEYS registers; a checkpoint is a copy of it
 * with the Raft meta of its index. Compaction: checkpoint durable, then the
 * core and the log drop what it covers.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "sim.h"

#define READ_TIMEOUT	 (800 * SIM_MS)
#define PUMP_MAX_READIES 100000

static const char *role_name(int role)
{
	static const char *const names[] = {"follower", "pre-candidate",
					    "candidate", "leader"};
	return role >= 0 && role <= 3 ? names[role] : "?";
}

int sim_slot_of(const sim *s, uint64_t id)
{
	for (int i = 0; i < s->nslots; i++)
		if (s->nodes[i].id == id &&
		    s->nodes[i].state != SIM_NODE_UNUSED)
			return i;
	return -1;
}

static void grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return;
	size_t nc = *cap ? *cap * 2 : 8;
	while (nc < need)
		nc *= 2;
	void *q = realloc(*p, nc * elem);
	if (!q)
		abort();
	*p = q;
	*cap = nc;
}

static void make_cfg(sim *s, sim_node *n, sisy_raft_config *cfg)
{
	sisy_raft_config_default(cfg, n->id);
	cfg->election_ticks = 10;
	cfg->heartbeat_ticks = 1;
	cfg->pre_vote = 1;
	cfg->check_quorum = 1;
	/* Small windows and batches so pipelining, batching and flow control
	 * all happen under a light load. */
	cfg->max_inflight_msgs = (uint32_t)sim_rand_range(s, 1, 8);
	cfg->max_msg_entries = (uint32_t)sim_rand_range(s, 1, 8);
	if (s->f8.on)
		cfg->max_msg_entries = 1; /* see sim_fig8.c */
	cfg->max_msg_bytes = sim_rand_range(s, 64, 1024);
	cfg->max_apply_bytes = 512;
	cfg->rand_seed = sisy_rand_next(&s->rand);
}

static void schedule_node(sim *s, sim_node *n, int type, sim_time after)
{
	sim_event ev = {
	    .type = (uint16_t)type, .slot = (int16_t)n->slot, .inc = n->inc};
	sim_schedule(s, s->now + after, &ev);
}

static void create_core(sim *s, sim_node *n)
{
	sisy_raft_config cfg;
	make_cfg(s, n, &cfg);
	sisy_err rc = sisy_raft_create(&cfg, &n->r);
	if (rc != SISY_OK) {
		fprintf(stderr, "sisy-sim: sisy_raft_create: %s %s\n",
			sisy_errname(rc), sisy_errmsg());
		abort();
	}
}

/* Boots the core from what the disk holds (a restart, or bootstrap). */
static void start_from_disk(sim *s, sim_node *n)
{
	create_core(s, n);
	sim_disk *d = &n->disk;
	n->kv = d->ckpt.kv;
	n->applied = d->ckpt.meta.index;
	sim_view_reset(s, &n->view, d->base.index, d->base.term);
	n->ledger_commit = d->base.index;
	if (!sim_disk_empty(d)) {
		sisy_raft_entry *ents = calloc(d->n + 1, sizeof *ents);
		if (!ents)
			abort();
		for (size_t i = 0; i < d->n; i++)
			ents[i] = (sisy_raft_entry){
			    d->ents[i].term, d->ents[i].index, d->ents[i].type,
			    d->ents[i].data, d->ents[i].len};
		sim_view_append(s, n, ents, d->n);
		sisy_err rc = sisy_raft_restore(n->r, &d->hs,
						d->base.index ? &d->base : NULL,
						ents, d->n, n->applied);
		free(ents);
		if (rc != SISY_OK)
			sim_fail(s, "interface", "n%llu: restore failed: %s %s",
				 (unsigned long long)n->id, sisy_errname(rc),
				 sisy_errmsg());
	}
	n->state = SIM_NODE_UP;
	n->last_role = SISY_RAFT_FOLLOWER;
	n->last_term = 0;
	schedule_node(s, n, SIM_EV_TICK, sim_rand_range(s, 1, n->tick_us));
	schedule_node(s, n, SIM_EV_COMPACT,
		      sim_rand_range(s, 50 * SIM_MS, 300 * SIM_MS));
	sim_node_pump(s, n);
}

static void init_slot(sim *s, int slot, uint64_t id)
{
	sim_node *n = &s->nodes[slot];
	assert(n->state == SIM_NODE_UNUSED);
	memset(n, 0, sizeof *n);
	n->slot = slot;
	n->id = id;
	n->inc = 1;
	n->next_ctx = 1;
	/* Clocks run at slightly different rates: 9.5 .. 10.5 ms a tick. */
	n->tick_us = sim_rand_range(s, 9500, 10500);
	if (slot >= s->nslots)
		s->nslots = slot + 1;
}

void sim_node_bootstrap(sim *s, int slot, uint64_t id, int nvoters)
{
	init_slot(s, slot, id);
	sim_node *n = &s->nodes[slot];
	sisy_raft_membership m;
	memset(&m, 0, sizeof m);
	for (int i = 0; i < nvoters; i++)
		m.voters[m.n_voters++] = (uint64_t)i + 1;
	sisy_raft_conf_change cc = {SISY_RAFT_CONF_ADD_VOTER, 1, {NULL, 0}};
	sisy_buf b = {0};
	if (sisy_raft_conf_encode(&cc, &m, &b) != SISY_OK)
		abort();
	sim_ent first = {1, 1, SISY_RAFT_ENTRY_CONFIG, (uint32_t)b.len, b.data};
	sim_disk_bootstrap(&n->disk, &first);
	sisy_buf_free(&b);
	start_from_disk(s, n);
}

void sim_node_start_fresh(sim *s, int slot, uint64_t id)
{
	init_slot(s, slot, id);
	sim_tracef(s, "n%llu starts with an empty disk (new member)",
		   (unsigned long long)id);
	start_from_disk(s, &s->nodes[slot]);
}

static void drop_volatile(sim_node *n)
{
	sisy_raft_destroy(n->r);
	n->r = NULL;
	n->nwaiters = 0;
	n->npreads = 0;
	n->has_stash = false;
	sim_view_free(&n->view);
	n->inc++;
}

void sim_node_crash(sim *s, sim_node *n)
{
	assert(n->state == SIM_NODE_UP);
	sim_tracef(s, "CRASH n%llu (%zu writes unsynced)",
		   (unsigned long long)n->id, n->disk.npend);
	drop_volatile(n);
	sim_disk_crash(&n->disk, s, n->id);
	n->state = SIM_NODE_DOWN;
	s->crashes++;
}

void sim_node_restart(sim *s, sim_node *n)
{
	assert(n->state == SIM_NODE_DOWN);
	sim_tracef(s,
		   "RESTART n%llu (durable: last %llu, term %llu, vote "
		   "%llu, checkpoint %llu)",
		   (unsigned long long)n->id,
		   (unsigned long long)sim_disk_last(&n->disk),
		   (unsigned long long)n->disk.hs.term,
		   (unsigned long long)n->disk.hs.vote,
		   (unsigned long long)n->disk.ckpt.meta.index);
	start_from_disk(s, n);
}

void sim_node_stop_forever(sim *s, sim_node *n, const char *why)
{
	sim_tracef(s, "n%llu gone for good: %s", (unsigned long long)n->id,
		   why);
	if (n->state == SIM_NODE_UP)
		drop_volatile(n);
	else
		n->inc++;
	sim_disk_free(&n->disk);
	n->state = SIM_NODE_GONE;
}

void sim_node_free(sim_node *n)
{
	if (n->r)
		sisy_raft_destroy(n->r);
	n->r = NULL;
	sim_disk_free(&n->disk);
	sim_view_free(&n->view);
	free(n->waiters);
	free(n->preads);
	n->waiters = NULL;
	n->preads = NULL;
}

/* ---- client requests ------------------------------------------------------
 */

static void reply(sim *s, sim_node *n, uint32_t client, uint32_t seq,
		  int outcome, uint64_t value)
{
	sim_client_reply(s, n, client, seq, outcome, value);
}

static void encode_cmd(uint8_t *b, int key, uint32_t client, uint32_t seq)
{
	b[0] = 'P';
	b[1] = (uint8_t)key;
	sisy_put_u32(b + 2, client);
	sisy_put_u32(b + 6, seq);
}

static bool decode_cmd(const sisy_raft_entry *e, int *key, uint32_t *client,
		       uint32_t *seq)
{
	if (e->len != SIM_CMD_LEN || e->data[0] != 'P' ||
	    e->data[1] >= SIM_KEYS)
		return false;
	*key = e->data[1];
	*client = sisy_get_u32(e->data + 2);
	*seq = sisy_get_u32(e->data + 6);
	return true;
}

void sim_node_request(sim *s, sim_node *n, uint32_t client, uint32_t seq,
		      int kind, int key)
{
	sisy_err rc;
	if (kind == SIM_OP_PUT) {
		uint8_t cmd[SIM_CMD_LEN];
		encode_cmd(cmd, key, client, seq);
		uint64_t term = 0, index = 0;
		rc = sisy_raft_propose(n->r, sisy_slice_make(cmd, sizeof cmd),
				       &term, &index);
		if (rc != SISY_OK) {
			/* Rejected before it entered the log: it never
			 * happens, a definite failure. */
			reply(s, n, client, seq, SISY_LINCHECK_FAILED, 0);
			return;
		}
		grow((void **)&n->waiters, &n->capwaiters, n->nwaiters + 1,
		     sizeof *n->waiters);
		n->waiters[n->nwaiters++] =
		    (sim_waiter){term, index, client, seq};
		sim_fig8_proposed(s, n, term, index);
	} else {
		uint64_t ctx = n->next_ctx++;
		rc = sisy_raft_read_index(n->r, ctx);
		if (rc != SISY_OK) {
			reply(s, n, client, seq, SISY_LINCHECK_FAILED, 0);
			return;
		}
		grow((void **)&n->preads, &n->cappreads, n->npreads + 1,
		     sizeof *n->preads);
		n->preads[n->npreads++] = (sim_pread){ctx,
						      0,
						      false,
						      client,
						      seq,
						      (uint8_t)key,
						      s->now + READ_TIMEOUT};
		sim_event ev = {.type = SIM_EV_READ_TIMEOUT,
				.slot = (int16_t)n->slot,
				.inc = n->inc,
				.a = ctx};
		sim_schedule(s, s->now + READ_TIMEOUT, &ev);
	}
	sim_node_pump(s, n);
}

static void remove_pread(sim_node *n, size_t i)
{
	n->preads[i] = n->preads[--n->npreads];
}

void sim_node_read_timeout(sim *s, sim_node *n, uint64_t ctx)
{
	for (size_t i = 0; i < n->npreads; i++)
		if (n->preads[i].ctx == ctx) {
			/* Nothing observed: a failed read. */
			reply(s, n, n->preads[i].client, n->preads[i].seq,
			      SISY_LINCHECK_FAILED, 0);
			remove_pread(n, i);
			return;
		}
}

static void serve_reads(sim *s, sim_node *n)
{
	for (size_t i = 0; i < n->npreads;) {
		sim_pread *p = &n->preads[i];
		if (p->has_index && n->applied >= p->index) {
			reply(s, n, p->client, p->seq, SISY_LINCHECK_OK,
			      n->kv.val[p->key]);
			remove_pread(n, i);
		} else {
			i++;
		}
	}
}

static void take_reads(sim *s, sim_node *n, const sisy_raft_ready *rd)
{
	for (size_t k = 0; k < rd->n_reads; k++) {
		const sisy_raft_read_state *rs = &rd->reads[k];
		for (size_t i = 0; i < n->npreads; i++) {
			sim_pread *p = &n->preads[i];
			if (p->ctx != rs->ctx)
				continue;
			if (rs->failed) {
				reply(s, n, p->client, p->seq,
				      SISY_LINCHECK_FAILED, 0);
				remove_pread(n, i);
			} else {
				p->index = rs->index;
				p->has_index = true;
			}
			break;
		}
	}
	serve_reads(s, n);
}

/* Answers every waiter "outcome unknown" (leadership lost). */
static void waiters_unknown(sim *s, sim_node *n, uint64_t upto)
{
	for (size_t i = 0; i < n->nwaiters;) {
		sim_waiter *w = &n->waiters[i];
		if (w->index <= upto) {
			reply(s, n, w->client, w->seq,
			      SISY_LINCHECK_UNKNOWN_OUTCOME, 0);
			n->waiters[i] = n->waiters[--n->nwaiters];
		} else {
			i++;
		}
	}
}

static void waiters_applied(sim *s, sim_node *n, const sisy_raft_entry *e)
{
	int key;
	uint32_t client, seq;
	bool is_cmd = e->type == SISY_RAFT_ENTRY_NORMAL &&
		      decode_cmd(e, &key, &client, &seq);
	for (size_t i = 0; i < n->nwaiters;) {
		sim_waiter *w = &n->waiters[i];
		if (w->index != e->index) {
			i++;
			continue;
		}
		if (w->term == e->term) {
			if (!is_cmd || client != w->client || seq != w->seq)
				sim_fail(s, "log-matching",
					 "n%llu: entry %llu/%llu applied is "
					 "not the proposal made there",
					 (unsigned long long)n->id,
					 (unsigned long long)e->index,
					 (unsigned long long)e->term);
			sim_check_acked(s, e->index, e->term);
			reply(s, n, w->client, w->seq, SISY_LINCHECK_OK, 0);
		} else {
			reply(s, n, w->client, w->seq, SISY_LINCHECK_FAILED, 0);
		}
		n->waiters[i] = n->waiters[--n->nwaiters];
	}
}

/* ---- the ready loop
 * ---------------------------------------------------------- */

static void start_sync(sim *s, sim_node *n)
{
	if (!sim_disk_sync_begin(&n->disk))
		return;
	sim_time lat = sisy_rand_chance(&s->rand, 1, 50)
			   ? sim_rand_range(s, 5 * SIM_MS, 30 * SIM_MS)
			   : sim_rand_range(s, 100, 3 * SIM_MS);
	schedule_node(s, n, SIM_EV_SYNC_DONE, lat);
}

static bool install_snapshot(sim *s, sim_node *n, const sisy_raft_ready *rd,
			     sim_ckpt *ck)
{
	const sisy_raft_snapshot_meta *m = rd->snapshot;
	if (!n->has_stash || n->stash.meta.index != m->index ||
	    n->stash.meta.term != m->term) {
		sim_fail(s, "interface",
			 "n%llu: ready asks to install snapshot %llu/%llu "
			 "but no such snapshot arrived",
			 (unsigned long long)n->id,
			 (unsigned long long)m->index,
			 (unsigned long long)m->term);
		return false;
	}
	*ck = n->stash;
	ck->meta = *m;
	sim_tracef(s, "n%llu installs snapshot %llu/%llu (applied was %llu)",
		   (unsigned long long)n->id, (unsigned long long)m->index,
		   (unsigned long long)m->term, (unsigned long long)n->applied);
	n->kv = ck->kv;
	n->applied = m->index;
	waiters_unknown(s, n, m->index);
	sim_view_reset(s, &n->view, m->index, m->term);
	n->ledger_commit = m->index;
	return true;
}

static void persist(sim *s, sim_node *n, const sisy_raft_ready *rd)
{
	sim_ckpt ck;
	memset(&ck, 0, sizeof ck);
	if (rd->snapshot && !install_snapshot(s, n, rd, &ck))
		return;
	if (rd->n_entries) {
		uint64_t first = rd->entries[0].index;
		if (first > sim_view_last(&n->view) + 1 ||
		    first <= n->view.base_index) {
			sim_fail(s, "interface",
				 "n%llu: ready appends from %llu, log is "
				 "(%llu, %llu]",
				 (unsigned long long)n->id,
				 (unsigned long long)first,
				 (unsigned long long)n->view.base_index,
				 (unsigned long long)sim_view_last(&n->view));
			return;
		}
		sim_view_append(s, n, rd->entries, rd->n_entries);
	}
	sim_disk_write(&n->disk, rd, &ck);
	if (rd->persist_id)
		start_sync(s, n);
}

static void apply_entry(sim *s, sim_node *n, const sisy_raft_entry *e)
{
	if (e->index != n->applied + 1) {
		sim_fail(s, "interface",
			 "n%llu: asked to apply %llu after applying %llu",
			 (unsigned long long)n->id,
			 (unsigned long long)e->index,
			 (unsigned long long)n->applied);
		return;
	}
	if (sim_disk_term(&n->disk, e->index) != e->term &&
	    !(e->index <= n->disk.base.index)) {
		sim_fail(s, "apply-durable",
			 "n%llu: applies %llu/%llu, which is not in its "
			 "durable log (durable last %llu)",
			 (unsigned long long)n->id,
			 (unsigned long long)e->index,
			 (unsigned long long)e->term,
			 (unsigned long long)sim_disk_last(&n->disk));
		return;
	}
	sim_check_apply(s, n, e);
	int key;
	uint32_t client, seq;
	if (e->type == SISY_RAFT_ENTRY_NORMAL) {
		if (decode_cmd(e, &key, &client, &seq))
			n->kv.val[key] = sim_value(client, seq);
		else
			sim_fail(s, "interface", "n%llu: bad command at %llu",
				 (unsigned long long)n->id,
				 (unsigned long long)e->index);
	} else if (e->type == SISY_RAFT_ENTRY_CONFIG) {
		sisy_raft_conf_change cc;
		sisy_raft_membership after;
		if (sisy_raft_conf_decode(sisy_slice_make(e->data, e->len), &cc,
					  &after) != SISY_OK)
			sim_fail(s, "interface",
				 "n%llu: undecodable config entry %llu",
				 (unsigned long long)n->id,
				 (unsigned long long)e->index);
	}
	n->applied = e->index;
	waiters_applied(s, n, e);
}

static void soft_state(sim *s, sim_node *n, const sisy_raft_ready *rd)
{
	if (!rd->soft_changed)
		return;
	if (rd->role != n->last_role || rd->term != n->last_term) {
		if (rd->role == SISY_RAFT_LEADER) {
			s->elections++;
			sim_new_leader(s, n);
		}
		if (rd->role == SISY_RAFT_LEADER ||
		    n->last_role == SISY_RAFT_LEADER || s->opts.trace)
			sim_tracef(s, "n%llu %s term %llu (leader n%llu)",
				   (unsigned long long)n->id,
				   role_name(rd->role),
				   (unsigned long long)rd->term,
				   (unsigned long long)rd->leader);
	}
	if (n->last_role == SISY_RAFT_LEADER && rd->role != SISY_RAFT_LEADER)
		waiters_unknown(s, n, UINT64_MAX);
	n->last_role = rd->role;
	n->last_term = rd->term;
}

static void handle_ready(sim *s, sim_node *n, const sisy_raft_ready *rd)
{
	persist(s, n, rd);
	for (size_t i = 0; i < rd->n_msgs && !s->violated; i++) {
		sim_check_msg_out(s, n, &rd->msgs[i]);
		sim_net_send(s, n->slot, &rd->msgs[i]);
	}
	for (size_t i = 0; i < rd->n_committed && !s->violated; i++)
		apply_entry(s, n, &rd->committed[i]);
	serve_reads(s, n);
	take_reads(s, n, rd);
	soft_state(s, n, rd);
}

void sim_node_pump(sim *s, sim_node *n)
{
	for (int k = 0; n->state == SIM_NODE_UP && !s->violated &&
			sisy_raft_has_ready(n->r);
	     k++) {
		if (k == PUMP_MAX_READIES) {
			sim_fail(s, "interface",
				 "n%llu: the core produced %d readies in a "
				 "row without input",
				 (unsigned long long)n->id, k);
			return;
		}
		sisy_raft_ready rd;
		sisy_raft_get_ready(n->r, &rd);
		handle_ready(s, n, &rd);
		sisy_raft_advance(n->r);
		sim_check_after_ready(s, n);
		sim_leader_committed(s, n);
	}
}

void sim_node_tick(sim *s, sim_node *n)
{
	sisy_raft_tick(n->r);
	sim_node_pump(s, n);
	schedule_node(s, n, SIM_EV_TICK, n->tick_us);
}

void sim_node_sync_done(sim *s, sim_node *n)
{
	uint64_t id = sim_disk_sync_done(&n->disk, s, n->id);
	if (id)
		sisy_raft_persisted(n->r, id);
	bool more = false;
	for (size_t i = 0; i < n->disk.npend; i++)
		more |= n->disk.pend[i].persist_id != 0;
	if (more)
		start_sync(s, n);
	sim_node_pump(s, n);
}

void sim_node_compact(sim *s, sim_node *n)
{
	schedule_node(s, n, SIM_EV_COMPACT,
		      sim_rand_range(s, 50 * SIM_MS, 300 * SIM_MS));
	uint64_t gap = sim_rand_range(s, 4, 40);
	if (n->applied < n->disk.ckpt.meta.index + gap ||
	    n->applied > sim_disk_last(&n->disk) ||
	    sim_disk_snap_pending(&n->disk))
		return;
	sim_ckpt ck;
	ck.kv = n->kv;
	sisy_err rc = sisy_raft_compact(n->r, n->applied, &ck.meta);
	if (rc != SISY_OK) {
		sim_fail(s, "interface", "n%llu: compact(%llu): %s %s",
			 (unsigned long long)n->id,
			 (unsigned long long)n->applied, sisy_errname(rc),
			 sisy_errmsg());
		return;
	}
	if (ck.meta.index != n->applied) {
		sim_fail(s, "interface",
			 "n%llu: compact(%llu) reported meta index %llu",
			 (unsigned long long)n->id,
			 (unsigned long long)n->applied,
			 (unsigned long long)ck.meta.index);
		return;
	}
	sim_disk_compact(&n->disk, &ck);
	sim_view_compact(&n->view, ck.meta.index);
	s->compactions++;
	if (s->opts.trace)
		sim_tracef(s, "n%llu compacts to %llu",
			   (unsigned long long)n->id,
			   (unsigned long long)ck.meta.index);
	sim_node_pump(s, n);
}
