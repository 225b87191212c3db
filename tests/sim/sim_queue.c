/* sim_queue.c — the simulator's event queue: a binary min-heap ordered by
 * (time, sequence number). The sequence number is assigned when an event is
 * scheduled, so events due at the same time run in the order they were
 * scheduled: the order never depends on the heap's shape, which keeps a
 * seed's run exactly reproducible. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#include "sim.h"

static bool before(const sim_event *a, const sim_event *b)
{
	return a->t != b->t ? a->t < b->t : a->seq < b->seq;
}

void sim_schedule(sim *s, sim_time at, const sim_event *ev)
{
	sim_queue *q = &s->q;
	assert(at >= s->now);
	if (q->n == q->cap) {
		size_t nc = q->cap ? q->cap * 2 : 1024;
		sim_event *h = realloc(q->h, nc * sizeof *h);
		if (!h) {
			fprintf(stderr, "sisy-sim: out of memory\n");
			abort();
		}
		q->h = h;
		q->cap = nc;
	}
	sim_event e = *ev;
	e.t = at;
	e.seq = q->seq++;
	size_t i = q->n++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (!before(&e, &q->h[parent]))
			break;
		q->h[i] = q->h[parent];
		i = parent;
	}
	q->h[i] = e;
}

bool sim_queue_pop(sim_queue *q, sim_event *out)
{
	if (q->n == 0)
		return false;
	*out = q->h[0];
	sim_event last = q->h[--q->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const sim_event *best = &last;
		if (l < q->n && before(&q->h[l], best)) {
			m = l;
			best = &q->h[l];
		}
		if (r < q->n && before(&q->h[r], best))
			m = r;
		if (m == i)
			break;
		q->h[i] = q->h[m];
		i = m;
	}
	if (q->n > 0)
		q->h[i] = last;
	return true;
}

void sim_queue_free(sim_queue *q)
{
	sim_event ev;
	while (sim_queue_pop(q, &ev))
		if (ev.type == SIM_EV_DELIVER)
			sim_netmsg_free(ev.p);
	free(q->h);
	q->h = NULL;
	q->n = q->cap = 0;
}
