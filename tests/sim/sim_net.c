/* sim_net.c — the simulated network between Raft nodes.
 *
 * Each message is deep-copied when sent (the core's ready borrows its
 * memory) and delivered after a random delay: delay_min + up to
 * delay_jitter, or, with slow_pm per mille, up to 60 ms (heavy reordering).
 * It is lost with loss_pm per mille, duplicated with dup_pm per mille (the
 * copy gets its own delay), and dropped if the directed link is blocked
 * either when it is sent or when it arrives (partitions, symmetric or
 * one-way). A message to a node that is not up when it arrives is lost.
 *
 * A MSG_SNAPSHOT carries the sender's newest durable checkpoint, and its
 * meta replaces the core's (raft.h allows a newer checkpoint); the sender's
 * core is told whether it arrived (report_snapshot) when it arrives or is
 * lost, as a node does once its snapshot stream ends.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

void sim_net_init(sim *s)
{
	sim_net *n = &s->net;
	memset(n, 0, sizeof *n);
	n->delay_min = 300;
	n->delay_jitter = 2 * SIM_MS;
}

void sim_netmsg_free(sim_netmsg *nm)
{
	if (!nm)
		return;
	sim_ents_free(nm->ents, nm->m.n_entries);
	free(nm->rents);
	free(nm->snap);
	free(nm);
}

static sim_netmsg *copy_msg(sim *s, int from_slot, int to_slot,
			    const sisy_raft_msg *m)
{
	sim_netmsg *nm = calloc(1, sizeof *nm);
	if (!nm)
		abort();
	nm->m = *m;
	nm->from_slot = from_slot;
	nm->to_slot = to_slot;
	nm->from_inc = s->nodes[from_slot].inc;
	if (m->n_entries) {
		nm->ents = sim_ents_copy(m->entries, m->n_entries);
		nm->rents = calloc(m->n_entries, sizeof *nm->rents);
		if (!nm->rents)
			abort();
		for (size_t i = 0; i < m->n_entries; i++) {
			nm->rents[i] = (sisy_raft_entry){
			    nm->ents[i].term, nm->ents[i].index,
			    nm->ents[i].type, nm->ents[i].data,
			    nm->ents[i].len};
		}
		nm->m.entries = nm->rents;
	} else {
		nm->m.entries = NULL;
	}
	if (m->type == SISY_RAFT_MSG_SNAPSHOT) {
		nm->snap = malloc(sizeof *nm->snap);
		if (!nm->snap)
			abort();
		*nm->snap = *sim_disk_newest_ckpt(&s->nodes[from_slot].disk);
		if (nm->snap->meta.index < m->snapshot.index)
			sim_fail(s, "interface",
				 "n%llu: MSG_SNAPSHOT at %llu but its newest "
				 "checkpoint is at %llu (compacted beyond?)",
				 (unsigned long long)m->from,
				 (unsigned long long)m->snapshot.index,
				 (unsigned long long)nm->snap->meta.index);
		nm->m.snapshot = nm->snap->meta;
	}
	return nm;
}

static sim_time delay(sim *s)
{
	sim_net *n = &s->net;
	if (n->slow_pm && sisy_rand_below(&s->rand, 1000) < n->slow_pm)
		return n->delay_min + sisy_rand_below(&s->rand, 60 * SIM_MS);
	return n->delay_min + sisy_rand_below(&s->rand, n->delay_jitter + 1);
}

static void report_snapshot(sim *s, const sim_netmsg *nm, bool ok, sim_time at)
{
	sim_event ev = {.type = SIM_EV_SNAP_REPORT,
			.slot = (int16_t)nm->from_slot,
			.inc = nm->from_inc,
			.a = nm->m.to,
			.b = ok};
	sim_schedule(s, at, &ev);
}

void sim_net_send(sim *s, int from_slot, const sisy_raft_msg *m)
{
	sim_net *n = &s->net;
	int to = sim_slot_of(s, m->to);
	n->sent++;
	sim_lostq_sent(s, from_slot, m);
	if (to < 0 || to == from_slot) {
		/* A node that never existed, or self: nowhere to go. The
		 * core still learns that a snapshot did not arrive. */
		if (m->type == SISY_RAFT_MSG_SNAPSHOT) {
			sim_event ev = {.type = SIM_EV_SNAP_REPORT,
					.slot = (int16_t)from_slot,
					.inc = s->nodes[from_slot].inc,
					.a = m->to,
					.b = 0};
			sim_schedule(s, s->now, &ev);
		}
		return;
	}
	sim_netmsg *nm = copy_msg(s, from_slot, to, m);
	if (m->type == SISY_RAFT_MSG_SNAPSHOT) {
		s->snapshots_sent++;
		sim_tracef(s, "n%llu sends snapshot %llu/%llu to n%llu",
			   (unsigned long long)m->from,
			   (unsigned long long)nm->m.snapshot.index,
			   (unsigned long long)nm->m.snapshot.term,
			   (unsigned long long)m->to);
	}
	if (n->blocked[from_slot][to] ||
	    sisy_rand_below(&s->rand, 1000) < n->loss_pm) {
		n->dropped++;
		if (m->type == SISY_RAFT_MSG_SNAPSHOT)
			report_snapshot(s, nm, false, s->now + delay(s));
		sim_netmsg_free(nm);
		return;
	}
	int copies = 1;
	if (sisy_rand_below(&s->rand, 1000) < n->dup_pm &&
	    m->type != SISY_RAFT_MSG_SNAPSHOT) {
		copies = 2;
		n->duplicated++;
	}
	for (int c = 0; c < copies; c++) {
		sim_netmsg *x = nm;
		if (c == 1)
			x = copy_msg(s, from_slot, to, &nm->m);
		sim_event ev = {.type = SIM_EV_DELIVER, .slot = -1, .p = x};
		sim_time at = s->now + delay(s);
		at += sim_fig8_delay(s, from_slot, m);
		sim_schedule(s, at, &ev);
	}
}

void sim_net_deliver(sim *s, sim_netmsg *nm)
{
	sim_node *to = &s->nodes[nm->to_slot];
	bool is_snap = nm->m.type == SISY_RAFT_MSG_SNAPSHOT;
	if (to->state != SIM_NODE_UP || to->id != nm->m.to ||
	    s->net.blocked[nm->from_slot][nm->to_slot]) {
		s->net.dropped++;
		if (is_snap)
			report_snapshot(s, nm, false, s->now);
		sim_netmsg_free(nm);
		return;
	}
	if (s->opts.trace)
		sim_tracef(s,
			   "deliver %s n%llu->n%llu term %llu idx %llu "
			   "logterm %llu commit %llu n=%zu rej %d",
			   sisy_raft_msg_type_name(nm->m.type),
			   (unsigned long long)nm->m.from,
			   (unsigned long long)nm->m.to,
			   (unsigned long long)nm->m.term,
			   (unsigned long long)nm->m.index,
			   (unsigned long long)nm->m.log_term,
			   (unsigned long long)nm->m.commit, nm->m.n_entries,
			   nm->m.reject);
	if (is_snap) {
		/* The whole stream has arrived: keep its data for the
		 * ready that installs it. */
		to->stash = *nm->snap;
		to->has_stash = true;
		report_snapshot(s, nm, true, s->now);
	}
	sisy_err rc = sisy_raft_step(to->r, &nm->m);
	if (rc != SISY_OK && rc != SISY_E_NOMEM)
		sim_fail(s, "interface",
			 "n%llu: step(%s from n%llu) failed: %s %s",
			 (unsigned long long)to->id,
			 sisy_raft_msg_type_name(nm->m.type),
			 (unsigned long long)nm->m.from, sisy_errname(rc),
			 sisy_errmsg());
	sim_netmsg_free(nm);
	sim_node_pump(s, to);
}

void sim_net_heal_all(sim *s)
{
	memset(s->net.blocked, 0, sizeof s->net.blocked);
}
