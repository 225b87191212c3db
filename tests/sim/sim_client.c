/* sim_client.c — simulated clients and the history they record.
 *
 * Each client runs one operation at a time: a put of a value nobody else
 * writes ("<client>.<seq>") or a linearizable get, on one of SIM_KEYS keys,
 * sent to the node it believes leads (70%) or to any node (so reads also go
 * through followers and some writes hit non-leaders). Requests and replies
 * take 0.2-2 ms; a node that is down drops them. The client gives up after
 * CLIENT_TIMEOUT and records the operation as "unknown"; a late reply is
 * ignored. Every operation lands in the lincheck history with its call and
 * return times (simulated microseconds).
 */
#include <stdio.h>
#include <string.h>

#include "sim.h"

#define CLIENT_TIMEOUT (1200 * SIM_MS)

void sim_clients_init(sim *s, int nclients)
{
	s->nclients = nclients;
	for (int i = 0; i < nclients; i++) {
		sim_client *c = &s->clients[i];
		memset(c, 0, sizeof *c);
		c->id = (uint32_t)i + 1;
		sim_event ev = {
		    .type = SIM_EV_CLIENT_ISSUE, .slot = -1, .a = c->id};
		sim_schedule(s, s->now + sim_rand_range(s, 0, 50 * SIM_MS),
			     &ev);
	}
}

static sim_time hop(sim *s)
{
	return sim_rand_range(s, 200, 2 * SIM_MS);
}

static int pick_node(sim *s, const sim_client *c)
{
	int hint = c->leader_hint ? sim_slot_of(s, c->leader_hint) : -1;
	if (hint >= 0 && s->nodes[hint].state != SIM_NODE_GONE &&
	    sisy_rand_chance(&s->rand, 7, 10))
		return hint;
	int cand[SIM_MAX_SLOTS], k = 0;
	for (int i = 0; i < s->nslots; i++)
		if (s->nodes[i].state == SIM_NODE_UP ||
		    s->nodes[i].state == SIM_NODE_DOWN)
			cand[k++] = i;
	return k ? cand[sisy_rand_below(&s->rand, (uint64_t)k)] : -1;
}

void sim_client_issue(sim *s, sim_client *c)
{
	if (c->stopped || s->now >= s->clients_stop_at) {
		c->stopped = true;
		return;
	}
	int slot = pick_node(s, c);
	if (slot < 0) {
		sim_event ev = {
		    .type = SIM_EV_CLIENT_ISSUE, .slot = -1, .a = c->id};
		sim_schedule(s, s->now + 10 * SIM_MS, &ev);
		return;
	}
	c->seq++;
	c->busy = true;
	c->kind = sisy_rand_chance(&s->rand, 1, 2) ? SIM_OP_PUT : SIM_OP_GET;
	c->key = (int)sisy_rand_below(&s->rand, SIM_KEYS);
	c->call = s->now;
	if (s->opts.trace)
		sim_tracef(s, "client %u #%u %s k%d -> n%llu", c->id, c->seq,
			   c->kind == SIM_OP_PUT ? "put" : "get", c->key,
			   (unsigned long long)s->nodes[slot].id);
	sim_event req = {.type = SIM_EV_REQ_ARRIVE,
			 .slot = (int16_t)slot,
			 .a = c->id,
			 .b = c->seq,
			 .c = (uint64_t)c->kind | (uint64_t)c->key << 8,
			 .d = s->nodes[slot].id};
	sim_schedule(s, s->now + hop(s), &req);
	sim_event to = {
	    .type = SIM_EV_CLIENT_TIMEOUT, .slot = -1, .a = c->id, .b = c->seq};
	sim_schedule(s, s->now + CLIENT_TIMEOUT, &to);
}

void sim_client_reply(sim *s, sim_node *from, uint32_t client, uint32_t seq,
		      int outcome, uint64_t value)
{
	sisy_raft_status st;
	sisy_raft_get_status(from->r, &st);
	sim_event ev = {.type = SIM_EV_CLIENT_REPLY,
			.slot = -1,
			.a = client,
			.b = seq,
			.c = (uint64_t)outcome,
			.d = value,
			.e = st.leader};
	sim_schedule(s, s->now + hop(s), &ev);
}

static void value_str(char *buf, size_t cap, uint64_t v)
{
	snprintf(buf, cap, "%u.%u", (unsigned)(v >> 32), (unsigned)v);
}

static void record(sim *s, sim_client *c, int outcome, uint64_t value)
{
	char key[8], val[32];
	snprintf(key, sizeof key, "k%d", c->key);
	sisy_lincheck_op op;
	memset(&op, 0, sizeof op);
	op.client = c->id;
	op.kind = c->kind == SIM_OP_PUT ? SISY_LINCHECK_PUT : SISY_LINCHECK_GET;
	op.outcome = (sisy_lincheck_outcome)outcome;
	op.key = sisy_slice_str(key);
	if (c->kind == SIM_OP_PUT)
		value = sim_value(c->id, c->seq);
	if (value) {
		value_str(val, sizeof val, value);
		op.value = sisy_slice_str(val);
		op.has_value = true;
	}
	op.call = (int64_t)c->call;
	op.ret = (int64_t)s->now;
	if (sisy_lincheck_add(s->hist, &op) != SISY_OK) {
		fprintf(stderr, "sisy-sim: history: %s\n", sisy_errmsg());
		sim_fail(s, "history", "cannot record an operation");
	}
	static const char *const names[] = {"ok", "failed", "unknown"};
	if (s->opts.trace || outcome != SISY_LINCHECK_FAILED)
		sim_tracef(s, "client %u #%u %s k%d %s%s%s [%.3f, %.3f]", c->id,
			   c->seq, c->kind == SIM_OP_PUT ? "put" : "get",
			   c->key, names[outcome], value ? " " : "",
			   value ? val
				 : (c->kind == SIM_OP_GET && outcome == 0
					? " absent"
					: ""),
			   (double)c->call / 1000.0, (double)s->now / 1000.0);
	if (outcome == SISY_LINCHECK_OK)
		s->ops_ok++;
	else if (outcome == SISY_LINCHECK_FAILED)
		s->ops_failed++;
	else
		s->ops_unknown++;
	if (outcome == SISY_LINCHECK_OK && c->call >= s->heal_at) {
		if (c->kind == SIM_OP_PUT)
			s->ok_puts_after_heal++;
		else
			s->ok_gets_after_heal++;
	}
}

static void next_op(sim *s, sim_client *c)
{
	c->busy = false;
	sim_event ev = {.type = SIM_EV_CLIENT_ISSUE, .slot = -1, .a = c->id};
	sim_schedule(s, s->now + sim_rand_range(s, 0, 20 * SIM_MS), &ev);
}

void sim_client_on_reply(sim *s, const sim_event *ev)
{
	sim_client *c = &s->clients[ev->a - 1];
	if (!c->busy || c->seq != ev->b)
		return; /* it gave up already */
	record(s, c, (int)ev->c, ev->d);
	if (ev->e)
		c->leader_hint = ev->e;
	next_op(s, c);
}

void sim_client_on_timeout(sim *s, const sim_event *ev)
{
	sim_client *c = &s->clients[ev->a - 1];
	if (!c->busy || c->seq != ev->b)
		return;
	record(s, c, SISY_LINCHECK_UNKNOWN_OUTCOME, 0);
	c->leader_hint = 0;
	next_op(s, c);
}
