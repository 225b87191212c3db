/* sim_run.c — one seed: build the world, run the event loop, check the end.
 *
 * The world starts as a bootstrapped cluster of opts.nodes voters (ids
 * 1..n, each with the initial membership as its log's first entry), 3 or 4
 * clients, and the fault schedule. The loop pops events in (time, sequence)
 * order until the recovery phase has settled or a checker reported a
 * violation. At the end: the final leader holds the newest acknowledged
 * write, and the client history must be linearizable (an "unknown" from the
 * checker is a violation too).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

static sim_node *node_of(sim *s, const sim_event *ev, int want_state)
{
	if (ev->slot < 0)
		return NULL;
	sim_node *n = &s->nodes[ev->slot];
	if (n->state != want_state || n->inc != ev->inc)
		return NULL;
	return n;
}

static void dispatch(sim *s, const sim_event *ev)
{
	sim_node *n;
	switch (ev->type) {
	case SIM_EV_TICK:
		if ((n = node_of(s, ev, SIM_NODE_UP)))
			sim_node_tick(s, n);
		break;
	case SIM_EV_DELIVER:
		sim_net_deliver(s, ev->p);
		break;
	case SIM_EV_SYNC_DONE:
		if ((n = node_of(s, ev, SIM_NODE_UP)))
			sim_node_sync_done(s, n);
		break;
	case SIM_EV_RESTART:
		if ((n = node_of(s, ev, SIM_NODE_DOWN))) {
			s->down_count--;
			sim_node_restart(s, n);
		}
		break;
	case SIM_EV_SNAP_REPORT:
		if ((n = node_of(s, ev, SIM_NODE_UP))) {
			sisy_raft_report_snapshot(
			    n->r, ev->a, ev->b ? SISY_OK : SISY_E_CONN);
			sim_node_pump(s, n);
		}
		break;
	case SIM_EV_COMPACT:
		if ((n = node_of(s, ev, SIM_NODE_UP)))
			sim_node_compact(s, n);
		break;
	case SIM_EV_FAULT:
		sim_fault(s);
		break;
	case SIM_EV_HEAL_LINK:
		sim_heal_link(s, ev->a);
		break;
	case SIM_EV_OPERATOR:
		if (s->phase != SIM_PHASE_DONE)
			sim_operator_step(s);
		break;
	case SIM_EV_CLIENT_ISSUE:
		sim_client_issue(s, &s->clients[ev->a - 1]);
		break;
	case SIM_EV_REQ_ARRIVE:
		n = &s->nodes[ev->slot];
		if (n->state == SIM_NODE_UP && n->id == ev->d)
			sim_node_request(s, n, (uint32_t)ev->a, (uint32_t)ev->b,
					 (int)(ev->c & 0xff),
					 (int)(ev->c >> 8));
		break;
	case SIM_EV_CLIENT_REPLY:
		sim_client_on_reply(s, ev);
		break;
	case SIM_EV_CLIENT_TIMEOUT:
		sim_client_on_timeout(s, ev);
		break;
	case SIM_EV_READ_TIMEOUT:
		if ((n = node_of(s, ev, SIM_NODE_UP)))
			sim_node_read_timeout(s, n, ev->a);
		break;
	case SIM_EV_END_FAULTS:
		sim_end_faults(s);
		break;
	case SIM_EV_LIVENESS:
		sim_liveness_check(s);
		break;
	case SIM_EV_STOP_NODE:
		sim_stop_removed(s, ev->a);
		break;
	case SIM_EV_LEADER_FAULT:
		if ((n = node_of(s, ev, SIM_NODE_UP)))
			sim_leader_fault(s, n);
		break;
	case SIM_EV_FIG8:
		sim_fig8_event(s, ev);
		break;
	case SIM_EV_LOSTQ:
		sim_lostq_event(s, ev);
		break;
	}
}

static void check_history(sim *s)
{
	sisy_lincheck_result res, alt;
	sisy_lincheck_check(s->hist, NULL, &res);
	if (res.verdict != SISY_LINCHECK_LINEARIZABLE) {
		sim_fail(s, "linearizability", "%s (%zu ops on %zu keys): %s",
			 sisy_lincheck_verdict_name(res.verdict), res.ops,
			 res.keys, res.detail);
		return;
	}
	/* The histories here take the zones fast path; the search must
	 * agree wherever it finishes (a standing differential test). */
	sisy_lincheck_opts search = {.max_steps = 1000000, .search_only = true};
	sisy_lincheck_check(s->hist, &search, &alt);
	if (alt.verdict == SISY_LINCHECK_NOT_LINEARIZABLE)
		sim_fail(s, "lincheck-disagreement",
			 "zones say linearizable, the search does not: %s",
			 alt.detail);
}

static void write_history(sim *s)
{
	FILE *f = fopen(s->opts.history_out, "w");
	if (!f || sisy_lincheck_write(s->hist, f) != SISY_OK)
		fprintf(stderr, "sisy-sim: cannot write %s\n",
			s->opts.history_out);
	if (f)
		fclose(f);
}

bool sim_run(const sim_opts *opts, uint64_t seed, sim *s)
{
	memset(s, 0, sizeof *s);
	s->opts = *opts;
	s->seed = seed;
	sisy_rand_seed(&s->rand, seed);
	s->hist = sisy_lincheck_history_new();
	if (!s->hist)
		abort();
	s->heal_at = UINT64_MAX;
	s->clients_stop_at = UINT64_MAX;
	sim_net_init(s);
	s->next_id = (uint64_t)opts->nodes + 1;
	sim_fig8_init(s);
	sim_lostq_init(s);
	for (int i = 0; i < opts->nodes; i++)
		sim_node_bootstrap(s, i, (uint64_t)i + 1, opts->nodes);
	sim_clients_init(s, opts->nodes == 3 ? 3 : 4);
	sim_faults_start(s);
	sim_event ev;
	while (!s->violated && s->phase != SIM_PHASE_DONE &&
	       sim_queue_pop(&s->q, &ev)) {
		s->now = ev.t;
		dispatch(s, &ev);
	}
	if (!s->violated)
		sim_check_final(s);
	if (!s->violated)
		check_history(s);
	if (opts->history_out)
		write_history(s);
	return !s->violated;
}

void sim_free(sim *s)
{
	for (int i = 0; i < s->nslots; i++)
		sim_node_free(&s->nodes[i]);
	sim_queue_free(&s->q);
	sisy_lincheck_history_free(s->hist);
	s->hist = NULL;
	sim_check_free(&s->chk);
}
