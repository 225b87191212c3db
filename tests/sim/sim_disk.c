/* sim_disk.c — a node's simulated durable log, hard state and engine
 * checkpoint, with "written" versus "synced".
 *
 * The model follows the house's log writer: a ready's writes (a snapshot,
 * then entries that first truncate the log after entries[0].index - 1, then
 * the hard state) are appended to a pending list in order; one sync at a
 * time covers everything pending when it started (group commit) and, when
 * it completes, makes those writes durable and reports the highest persist
 * id they carried. Only then does the node tell the core (persisted), so a
 * core that acknowledges early is caught by the durability checks.
 *
 * A crash keeps a random prefix of the pending writes (a disk may have
 * written some of them; a torn batch keeps a prefix of its entries) and
 * loses the rest. Installing a snapshot replaces the checkpoint and empties
 * the log (the core does the same: its log restarts after the snapshot).
 * Compaction makes a checkpoint durable first and only then drops the
 * entries it covers, as DESIGN.md orders it.
 *
 * Invariant: durable entries are contiguous from base.index + 1.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fprintf(stderr, "sisy-sim: out of memory\n");
		abort();
	}
	return q;
}

void sim_ents_free(sim_ent *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].data);
	free(e);
}

static void ent_copy(sim_ent *dst, const sisy_raft_entry *src)
{
	dst->term = src->term;
	dst->index = src->index;
	dst->type = src->type;
	dst->len = (uint32_t)src->len;
	dst->data = NULL;
	if (src->len) {
		dst->data = xrealloc(NULL, src->len);
		memcpy(dst->data, src->data, src->len);
	}
}

sim_ent *sim_ents_copy(const sisy_raft_entry *e, size_t n)
{
	if (n == 0)
		return NULL;
	sim_ent *out = xrealloc(NULL, n * sizeof *out);
	for (size_t i = 0; i < n; i++)
		ent_copy(&out[i], &e[i]);
	return out;
}

static void wop_free(sim_wop *w)
{
	sim_ents_free(w->ents, w->n);
	w->ents = NULL;
	w->n = 0;
}

void sim_disk_free(sim_disk *d)
{
	sim_ents_free(d->ents, d->n);
	for (size_t i = 0; i < d->npend; i++)
		wop_free(&d->pend[i]);
	free(d->pend);
	memset(d, 0, sizeof *d);
}

uint64_t sim_disk_last(const sim_disk *d)
{
	return d->base.index + d->n;
}

uint64_t sim_disk_term(const sim_disk *d, uint64_t i)
{
	if (i == d->base.index)
		return d->base.term;
	if (i <= d->base.index || i > sim_disk_last(d))
		return 0;
	return d->ents[i - d->base.index - 1].term;
}

bool sim_disk_empty(const sim_disk *d)
{
	return d->n == 0 && d->base.index == 0 && d->hs.term == 0 &&
	       d->npend == 0;
}

const sim_ckpt *sim_disk_newest_ckpt(const sim_disk *d)
{
	for (size_t i = d->npend; i-- > 0;)
		if (d->pend[i].type == SIM_WOP_SNAP)
			return &d->pend[i].snap;
	return &d->ckpt;
}

bool sim_disk_snap_pending(const sim_disk *d)
{
	for (size_t i = 0; i < d->npend; i++)
		if (d->pend[i].type == SIM_WOP_SNAP)
			return true;
	return false;
}

void sim_disk_bootstrap(sim_disk *d, const sim_ent *first)
{
	assert(sim_disk_empty(d));
	d->ents = xrealloc(NULL, sizeof *d->ents);
	d->cap = 1;
	d->n = 1;
	d->ents[0] = *first;
	d->ents[0].data = xrealloc(NULL, first->len);
	memcpy(d->ents[0].data, first->data, first->len);
	d->hs = (sisy_raft_hard_state){1, 0, 1};
}

static sim_wop *push(sim_disk *d)
{
	if (d->npend == d->cappend) {
		d->cappend = d->cappend ? d->cappend * 2 : 8;
		d->pend = xrealloc(d->pend, d->cappend * sizeof *d->pend);
	}
	sim_wop *w = &d->pend[d->npend++];
	memset(w, 0, sizeof *w);
	return w;
}

void sim_disk_write(sim_disk *d, const sisy_raft_ready *rd,
		    const sim_ckpt *snap)
{
	if (rd->snapshot) {
		sim_wop *w = push(d);
		w->type = SIM_WOP_SNAP;
		w->persist_id = rd->persist_id;
		w->snap = *snap;
	}
	if (rd->n_entries) {
		sim_wop *w = push(d);
		w->type = SIM_WOP_APPEND;
		w->persist_id = rd->persist_id;
		w->ents = sim_ents_copy(rd->entries, rd->n_entries);
		w->n = rd->n_entries;
	}
	if (rd->has_hard_state || rd->persist_id) {
		/* A ready with a persist id but no new hard state still
		 * needs its id carried: record the id on a hard-state write
		 * of the unchanged state. */
		sim_wop *w = push(d);
		w->type = SIM_WOP_HS;
		w->persist_id = rd->persist_id;
		w->hs = rd->has_hard_state ? rd->hard_state : d->hs;
		if (!rd->has_hard_state) {
			/* The newest hard state written, pending or not. */
			for (size_t i = d->npend - 1; i-- > 0;)
				if (d->pend[i].type == SIM_WOP_HS) {
					w->hs = d->pend[i].hs;
					break;
				}
		}
	}
}

bool sim_disk_sync_begin(sim_disk *d)
{
	if (d->syncing || d->npend == 0)
		return false;
	d->syncing = d->npend;
	return true;
}

/* Applies an append to the durable log: truncate, then add. Entries at or
 * below the compaction point are already covered by the checkpoint. */
static void apply_append(sim_disk *d, sim_wop *w, size_t keep, sim *s,
			 uint64_t node_id)
{
	size_t k = 0;
	while (k < keep && w->ents[k].index <= d->base.index) {
		free(w->ents[k].data);
		w->ents[k].data = NULL;
		k++;
	}
	if (k == keep)
		return;
	uint64_t first = w->ents[k].index;
	if (first > sim_disk_last(d) + 1) {
		sim_fail(s, "durable-log",
			 "node %llu: the core asked to append index %llu "
			 "after durable index %llu (a hole)",
			 (unsigned long long)node_id, (unsigned long long)first,
			 (unsigned long long)sim_disk_last(d));
		return;
	}
	size_t cut = (size_t)(first - d->base.index - 1);
	for (size_t i = cut; i < d->n; i++)
		free(d->ents[i].data);
	d->n = cut;
	if (d->n + (keep - k) > d->cap) {
		d->cap = (d->n + (keep - k)) * 2;
		d->ents = xrealloc(d->ents, d->cap * sizeof *d->ents);
	}
	for (size_t i = k; i < keep; i++) {
		d->ents[d->n++] = w->ents[i];
		w->ents[i].data = NULL; /* moved */
	}
}

static void apply_snap(sim_disk *d, const sim_wop *w)
{
	d->ckpt = w->snap;
	d->base = w->snap.meta;
	for (size_t i = 0; i < d->n; i++)
		free(d->ents[i].data);
	d->n = 0;
}

/* Makes pend[0..k) durable (the last one possibly torn: `torn_keep`
 * entries of it when it is an append) and drops them from the list. */
static uint64_t settle(sim_disk *d, size_t k, size_t torn_keep, sim *s,
		       uint64_t node_id)
{
	uint64_t id = 0;
	for (size_t i = 0; i < k; i++) {
		sim_wop *w = &d->pend[i];
		bool torn = i + 1 == k && torn_keep != SIZE_MAX;
		switch (w->type) {
		case SIM_WOP_APPEND:
			apply_append(d, w, torn ? torn_keep : w->n, s, node_id);
			break;
		case SIM_WOP_HS:
			d->hs = w->hs;
			break;
		case SIM_WOP_SNAP:
			apply_snap(d, w);
			break;
		}
		if (!torn && w->persist_id > id)
			id = w->persist_id;
		wop_free(w);
	}
	if (k)
		memmove(d->pend, d->pend + k, (d->npend - k) * sizeof *d->pend);
	d->npend -= k;
	return id;
}

uint64_t sim_disk_sync_done(sim_disk *d, sim *s, uint64_t node_id)
{
	assert(d->syncing > 0 && d->syncing <= d->npend);
	size_t k = d->syncing;
	d->syncing = 0;
	return settle(d, k, SIZE_MAX, s, node_id);
}

void sim_disk_crash(sim_disk *d, sim *s, uint64_t node_id)
{
	size_t keep =
	    d->npend ? (size_t)sisy_rand_below(&s->rand, d->npend + 1) : 0;
	size_t torn = SIZE_MAX;
	if (keep > 0 && d->pend[keep - 1].type == SIM_WOP_APPEND &&
	    sisy_rand_chance(&s->rand, 1, 2))
		torn =
		    (size_t)sisy_rand_below(&s->rand, d->pend[keep - 1].n + 1);
	settle(d, keep, torn, s, node_id);
	for (size_t i = 0; i < d->npend; i++)
		wop_free(&d->pend[i]);
	d->npend = 0;
	d->syncing = 0;
}

void sim_disk_compact(sim_disk *d, const sim_ckpt *ckpt)
{
	uint64_t i = ckpt->meta.index;
	assert(i >= d->base.index && i <= sim_disk_last(d));
	d->ckpt = *ckpt; /* durable first ... */
	size_t drop = (size_t)(i - d->base.index);
	for (size_t k = 0; k < drop; k++)
		free(d->ents[k].data);
	if (drop)
		memmove(d->ents, d->ents + drop,
			(d->n - drop) * sizeof *d->ents);
	d->n -= drop;
	d->base = ckpt->meta; /* ... then the log drops what it covers */
}
