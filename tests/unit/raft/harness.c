/* harness.c — see harness.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

static void ent_copy(struct h_entry *d, const sisy_raft_entry *e)
{
	d->term = e->term;
	d->index = e->index;
	d->type = e->type;
	d->len = e->len;
	d->data = NULL;
	if (e->len) {
		d->data = malloc(e->len);
		assert_non_null(d->data);
		memcpy(d->data, e->data, e->len);
	}
}

static void ent_dup(struct h_entry *d, const struct h_entry *e)
{
	sisy_raft_entry x = {e->term, e->index, e->type, e->data, e->len};
	ent_copy(d, &x);
}

static sisy_raft_entry ent_view(const struct h_entry *e)
{
	sisy_raft_entry x = {e->term, e->index, e->type, e->data, e->len};
	return x;
}

static void ents_free(struct h_entry *e, size_t n)
{
	for (size_t k = 0; k < n; k++)
		free(e[k].data);
	free(e);
}

static void push_applied(struct h_node *n, const struct h_entry *e)
{
	n->applied = realloc(n->applied, (n->n_applied + 1) * sizeof *e);
	assert_non_null(n->applied);
	ent_dup(&n->applied[n->n_applied++], e);
}

static void enqueue(struct harness *h, const sisy_raft_msg *m)
{
	if (h->nq == h->cap_q) {
		h->cap_q = h->cap_q ? h->cap_q * 2 : 64;
		h->q = realloc(h->q, h->cap_q * sizeof *h->q);
		assert_non_null(h->q);
	}
	struct h_msg *hm = &h->q[h->nq++];
	hm->m = *m;
	hm->ents = NULL;
	if (m->n_entries) {
		hm->ents = calloc(m->n_entries, sizeof *hm->ents);
		assert_non_null(hm->ents);
		for (size_t k = 0; k < m->n_entries; k++)
			ent_copy(&hm->ents[k], &m->entries[k]);
	}
	hm->m.entries = NULL;
	h->sent_by_type[m->type]++;
}

static void write_free(struct h_write *w)
{
	ents_free(w->ents, w->n_ents);
}

static void disk_truncate(struct h_node *n, uint64_t from)
{
	while (n->n_disk > 0 && n->disk[n->n_disk - 1].index >= from) {
		free(n->disk[n->n_disk - 1].data);
		n->n_disk--;
	}
}

static void disk_apply(struct h_node *n, struct h_write *w)
{
	if (w->has_snap) {
		disk_truncate(n, 0);
		n->snap = w->snap;
	}
	if (w->n_ents) {
		disk_truncate(n, w->ents[0].index);
		n->disk =
		    realloc(n->disk, (n->n_disk + w->n_ents) * sizeof *n->disk);
		assert_non_null(n->disk);
		for (size_t k = 0; k < w->n_ents; k++) {
			assert_int_equal(w->ents[k].index,
					 n->snap.index + n->n_disk + 1);
			n->disk[n->n_disk++] = w->ents[k];
		}
		free(w->ents);
		w->ents = NULL;
		w->n_ents = 0;
	}
	if (w->has_hs)
		n->hs = w->hs;
}

void h_persist(struct harness *h, uint64_t id, uint64_t upto)
{
	struct h_node *n = &h->nodes[id];
	uint64_t last = 0;
	size_t k = 0;
	while (k < n->n_pending && n->pending[k].id <= upto) {
		disk_apply(n, &n->pending[k]);
		last = n->pending[k].id;
		write_free(&n->pending[k]);
		k++;
	}
	memmove(n->pending, n->pending + k,
		(n->n_pending - k) * sizeof *n->pending);
	n->n_pending -= k;
	if (last && n->up)
		sisy_raft_persisted(n->r, last);
}

static void record_write(struct h_node *n, const sisy_raft_ready *rd)
{
	if (!rd->persist_id) {
		if (rd->has_hard_state && rd->hard_state.commit > n->hs.commit)
			n->hs.commit = rd->hard_state.commit; /* lazy */
		return;
	}
	n->pending =
	    realloc(n->pending, (n->n_pending + 1) * sizeof *n->pending);
	assert_non_null(n->pending);
	struct h_write *w = &n->pending[n->n_pending++];
	memset(w, 0, sizeof *w);
	w->id = rd->persist_id;
	w->has_hs = rd->has_hard_state;
	w->hs = rd->hard_state;
	if (rd->snapshot) {
		w->has_snap = 1;
		w->snap = *rd->snapshot;
	}
	if (rd->n_entries) {
		w->ents = calloc(rd->n_entries, sizeof *w->ents);
		assert_non_null(w->ents);
		for (size_t k = 0; k < rd->n_entries; k++)
			ent_copy(&w->ents[k], &rd->entries[k]);
		w->n_ents = rd->n_entries;
	}
}

static void install_snapshot(struct h_node *n, const sisy_raft_snapshot_meta *s)
{
	/* The state machine becomes the sender's prefix up to s->index. */
	ents_free(n->applied, n->n_applied);
	n->applied = NULL;
	n->n_applied = 0;
	for (size_t k = 0; k < n->n_snap_data; k++)
		if (n->snap_data[k].index <= s->index)
			push_applied(n, &n->snap_data[k]);
	n->applied_index = s->index;
}

/* Nothing is applied beyond the node's own durable log (an installed
 * snapshot counts once its write persists). */
static void check_applied_durable(struct h_node *n)
{
	for (size_t k = 0; k < n->n_pending; k++)
		if (n->pending[k].has_snap)
			return;
	sisy_raft_status st;
	sisy_raft_get_status(n->r, &st);
	assert_true(n->applied_index <= st.durable_index);
	assert_true(n->applied_index <= st.commit);
}

void h_process(struct harness *h, uint64_t id)
{
	struct h_node *n = &h->nodes[id];
	for (int guard = 0; n->up && sisy_raft_has_ready(n->r); guard++) {
		assert_true(guard < 10000);
		sisy_raft_ready rd;
		sisy_raft_get_ready(n->r, &rd);
		if (rd.soft_changed)
			n->soft_changes++;
		record_write(n, &rd);
		if (rd.snapshot)
			install_snapshot(n, rd.snapshot);
		for (size_t k = 0; k < rd.n_msgs; k++) {
			assert_int_equal(rd.msgs[k].from, id);
			enqueue(h, &rd.msgs[k]);
		}
		for (size_t k = 0; k < rd.n_committed; k++) {
			const sisy_raft_entry *e = &rd.committed[k];
			assert_int_equal(e->index, n->applied_index + 1);
			n->applied_index = e->index;
			struct h_entry c;
			ent_copy(&c, e);
			push_applied(n, &c);
			free(c.data);
		}
		for (size_t k = 0; k < rd.n_reads; k++) {
			assert_true(n->n_reads < 256);
			n->reads[n->n_reads++] = rd.reads[k];
		}
		uint64_t pid = rd.persist_id;
		sisy_raft_advance(n->r);
		check_applied_durable(n);
		if (n->auto_persist && pid)
			h_persist(h, id, pid);
	}
}

static void stash_snapshot(struct harness *h, const sisy_raft_msg *m)
{
	struct h_node *from = &h->nodes[m->from], *to = &h->nodes[m->to];
	ents_free(to->snap_data, to->n_snap_data);
	to->snap_data = NULL;
	to->n_snap_data = 0;
	assert_true(from->applied_index >= m->snapshot.index);
	to->snap_data = calloc(from->n_applied + 1, sizeof *to->snap_data);
	for (size_t k = 0; k < from->n_applied; k++)
		if (from->applied[k].index <= m->snapshot.index)
			ent_dup(&to->snap_data[to->n_snap_data++],
				&from->applied[k]);
}

static void deliver(struct harness *h, struct h_msg *hm)
{
	sisy_raft_msg m = hm->m;
	sisy_raft_entry ents[1100];
	assert_true(m.n_entries <= 1100);
	for (size_t k = 0; k < m.n_entries; k++)
		ents[k] = ent_view(&hm->ents[k]);
	m.entries = m.n_entries ? ents : NULL;
	struct h_node *to = &h->nodes[m.to];
	if (m.to < 1 || m.to > h->n || !to->up || !h->nodes[m.from].up ||
	    h->cut[m.from][m.to] || (h->filter && !h->filter(h, &m)))
		goto done;
	if (m.type == SISY_RAFT_MSG_SNAPSHOT) {
		stash_snapshot(h, &m);
		sisy_raft_report_snapshot(h->nodes[m.from].r, m.to, SISY_OK);
	}
	assert_int_equal(sisy_raft_step(to->r, &m), SISY_OK);
	h->delivered++;
done:
	ents_free(hm->ents, m.n_entries);
	hm->ents = NULL;
}

void h_step_once(struct harness *h)
{
	for (uint64_t id = 1; id <= h->n; id++)
		h_process(h, id);
	struct h_msg *q = h->q;
	size_t nq = h->nq;
	h->q = NULL;
	h->nq = h->cap_q = 0;
	for (size_t k = 0; k < nq; k++)
		deliver(h, &q[k]);
	free(q);
}

void h_settle(struct harness *h)
{
	for (int round = 0;; round++) {
		assert_true(round < 100000);
		h_step_once(h);
		int busy = h->nq > 0;
		for (uint64_t id = 1; id <= h->n && !busy; id++)
			busy = h->nodes[id].up &&
			       sisy_raft_has_ready(h->nodes[id].r);
		if (!busy)
			return;
	}
}

void h_tick(struct harness *h, int ticks)
{
	for (int t = 0; t < ticks; t++) {
		for (uint64_t id = 1; id <= h->n; id++)
			if (h->nodes[id].up)
				sisy_raft_tick(h->nodes[id].r);
		h_settle(h);
	}
}

static void node_create(struct harness *h, uint64_t id,
			void (*tweak)(sisy_raft_config *))
{
	struct h_node *n = &h->nodes[id];
	memset(n, 0, sizeof *n);
	n->id = id;
	sisy_raft_config_default(&n->cfg, id);
	n->cfg.rand_seed = 0x5eed0000 + id;
	if (tweak)
		tweak(&n->cfg);
	assert_int_equal(sisy_raft_create(&n->cfg, &n->r), SISY_OK);
	n->up = 1;
	n->auto_persist = 1;
}

void h_init(struct harness *h, size_t nn, void (*tweak)(sisy_raft_config *))
{
	assert_true(nn >= 1 && nn <= H_MAX);
	memset(h, 0, sizeof *h);
	h->n = nn;
	sisy_raft_membership m;
	memset(&m, 0, sizeof m);
	for (uint64_t id = 1; id <= nn; id++)
		m.voters[m.n_voters++] = id;
	sisy_raft_conf_change cc = {SISY_RAFT_CONF_ADD_VOTER, 1, {NULL, 0}};
	sisy_buf b = {0};
	assert_int_equal(sisy_raft_conf_encode(&cc, &m, &b), SISY_OK);
	sisy_raft_entry boot = {1, 1, SISY_RAFT_ENTRY_CONFIG, b.data, b.len};
	sisy_raft_hard_state hs = {1, 0, 1};
	for (uint64_t id = 1; id <= nn; id++) {
		node_create(h, id, tweak);
		struct h_node *n = &h->nodes[id];
		assert_int_equal(
		    sisy_raft_restore(n->r, &hs, NULL, &boot, 1, 0), SISY_OK);
		n->hs = hs;
		n->disk = calloc(1, sizeof *n->disk);
		ent_copy(&n->disk[0], &boot);
		n->n_disk = 1;
	}
	sisy_buf_free(&b);
}

void h_add_empty(struct harness *h, uint64_t id)
{
	assert_true(id == h->n + 1 && id <= H_MAX);
	node_create(h, id, NULL);
	h->n = id;
}

static void node_free(struct h_node *n)
{
	sisy_raft_destroy(n->r);
	n->r = NULL;
	for (size_t k = 0; k < n->n_pending; k++)
		write_free(&n->pending[k]);
	free(n->pending);
	ents_free(n->disk, n->n_disk);
	ents_free(n->applied, n->n_applied);
	ents_free(n->snap_data, n->n_snap_data);
}

void h_free(struct harness *h)
{
	for (uint64_t id = 1; id <= h->n; id++)
		node_free(&h->nodes[id]);
	for (size_t k = 0; k < h->nq; k++)
		ents_free(h->q[k].ents, h->q[k].m.n_entries);
	free(h->q);
	memset(h, 0, sizeof *h);
}

void h_elect(struct harness *h, uint64_t id)
{
	sisy_raft_campaign(h->nodes[id].r);
	h_settle(h);
	sisy_raft_status st = h_status(h, id);
	assert_int_equal(st.role, SISY_RAFT_LEADER);
}

uint64_t h_leader(struct harness *h)
{
	uint64_t best = 0, term = 0;
	for (uint64_t id = 1; id <= h->n; id++) {
		if (!h->nodes[id].up)
			continue;
		sisy_raft_status st = h_status(h, id);
		if (st.role == SISY_RAFT_LEADER && st.term >= term) {
			best = id;
			term = st.term;
		}
	}
	return best;
}

int h_propose(struct harness *h, uint64_t id, const char *data, uint64_t *index)
{
	return sisy_raft_propose(h->nodes[id].r, sisy_slice_str(data), NULL,
				 index);
}

void h_compact(struct harness *h, uint64_t id, uint64_t i)
{
	struct h_node *n = &h->nodes[id];
	sisy_raft_snapshot_meta meta;
	assert_int_equal(sisy_raft_compact(n->r, i, &meta), SISY_OK);
	/* The model disk keeps only what follows the compaction point. */
	size_t drop = 0;
	while (drop < n->n_disk && n->disk[drop].index <= meta.index)
		free(n->disk[drop++].data);
	memmove(n->disk, n->disk + drop, (n->n_disk - drop) * sizeof *n->disk);
	n->n_disk -= drop;
	n->snap = meta;
}

void h_crash(struct harness *h, uint64_t id)
{
	struct h_node *n = &h->nodes[id];
	sisy_raft_destroy(n->r);
	n->r = NULL;
	n->up = 0;
	for (size_t k = 0; k < n->n_pending; k++)
		write_free(&n->pending[k]);
	n->n_pending = 0;
	/* The state machine survives only as its snapshot. */
	size_t keep = 0;
	while (keep < n->n_applied && n->applied[keep].index <= n->snap.index)
		keep++;
	for (size_t k = keep; k < n->n_applied; k++)
		free(n->applied[k].data);
	n->n_applied = keep;
	n->applied_index = n->snap.index;
}

void h_restart(struct harness *h, uint64_t id)
{
	struct h_node *n = &h->nodes[id];
	assert_false(n->up);
	assert_int_equal(sisy_raft_create(&n->cfg, &n->r), SISY_OK);
	sisy_raft_entry *ents = calloc(n->n_disk + 1, sizeof *ents);
	for (size_t k = 0; k < n->n_disk; k++)
		ents[k] = ent_view(&n->disk[k]);
	int fresh = n->hs.term == 0 && n->n_disk == 0 && n->snap.index == 0;
	if (!fresh)
		assert_int_equal(sisy_raft_restore(n->r, &n->hs, &n->snap, ents,
						   n->n_disk, n->snap.index),
				 SISY_OK);
	free(ents);
	n->up = 1;
}

void h_isolate(struct harness *h, uint64_t id)
{
	for (uint64_t o = 1; o <= H_MAX; o++) {
		h->cut[id][o] = 1;
		h->cut[o][id] = 1;
	}
}

void h_heal(struct harness *h)
{
	memset(h->cut, 0, sizeof h->cut);
}

sisy_raft_status h_status(struct harness *h, uint64_t id)
{
	sisy_raft_status st;
	sisy_raft_get_status(h->nodes[id].r, &st);
	return st;
}

void h_check_applied(struct harness *h)
{
	for (uint64_t a = 1; a <= h->n; a++) {
		for (uint64_t b = a + 1; b <= h->n; b++) {
			struct h_node *x = &h->nodes[a], *y = &h->nodes[b];
			/* compare entries with the same index */
			for (size_t i = 0; i < x->n_applied; i++) {
				for (size_t j = 0; j < y->n_applied; j++) {
					if (x->applied[i].index !=
					    y->applied[j].index)
						continue;
					assert_int_equal(x->applied[i].term,
							 y->applied[j].term);
					assert_int_equal(x->applied[i].len,
							 y->applied[j].len);
					if (x->applied[i].len)
						assert_memory_equal(
						    x->applied[i].data,
						    y->applied[j].data,
						    x->applied[i].len);
				}
			}
		}
	}
}

uint64_t h_applied_find(struct harness *h, uint64_t id, const char *data)
{
	struct h_node *n = &h->nodes[id];
	size_t len = strlen(data);
	for (size_t k = n->n_applied; k-- > 0;)
		if (n->applied[k].type == SISY_RAFT_ENTRY_NORMAL &&
		    n->applied[k].len == len &&
		    memcmp(n->applied[k].data, data, len) == 0)
			return n->applied[k].index;
	return 0;
}
