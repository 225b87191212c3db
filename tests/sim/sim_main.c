/* sim_main.c — sisy-sim, the deterministic Raft simulator's command line.
 *
 *   sisy-sim [--seed S] [--seeds N] [--nodes 3|5] [--steps M] [--trace]
 *            [--verbose] [--no-promise-checks] [--history FILE] [--stop]
 *
 * Runs N seeds starting at S (each an independent world; see sim.h and
 * docs/testing.md); --stop ends the run at the first violation (N then
 * counts the seeds actually run). For each violation it prints the seed, the
 * property, the end of the trace and the command that replays it. The last line
 * of output is always "seeds: N, violations: V". Exit status 0 when V == 0, 1
 * when not, 2 on bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define DEFAULT_STEPS 4000 /* ms of faults; recovery follows */

static void usage(FILE *f)
{
	fprintf(f, "usage: sisy-sim [--seed S] [--seeds N] [--nodes 3|5] "
		   "[--steps MS] [--trace] [--verbose]\n"
		   "                [--no-promise-checks] [--history FILE] "
		   "[--stop]\n"
		   "Runs N seeds of the deterministic Raft simulation from "
		   "seed S; see docs/testing.md.\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

static void report(const sim *s, const sim_opts *o)
{
	printf("VIOLATION seed %" PRIu64 " (nodes %d, steps %" PRIu64
	       ", raft bug switch \"%s\"): %s\n  %s\n",
	       s->seed, o->nodes, o->steps, sisy_raft_bug(), s->property,
	       s->detail);
	printf("  trace, last %d events (simulated time):\n", SIM_TRACE_LINES);
	sim_trace_dump(s, SIM_TRACE_LINES);
	printf("  replay: sisy-sim --seed %" PRIu64 " --seeds 1 --nodes %d "
	       "--steps %" PRIu64 "%s --trace\n",
	       s->seed, o->nodes, o->steps,
	       o->promise_checks ? "" : " --no-promise-checks");
}

static void summary(const sim *s)
{
	printf("seed %" PRIu64 ": %s, %.1f s simulated, %" PRIu64
	       " elections, %" PRIu64 " crashes, %d conf changes, %" PRIu64
	       " transfers, %" PRIu64 " snapshots sent, %" PRIu64
	       " compactions, ops ok/failed/unknown %" PRIu64 "/%" PRIu64
	       "/%" PRIu64 ", msgs %" PRIu64 " (%" PRIu64 " dropped)\n",
	       s->seed, s->violated ? "VIOLATION" : "ok", (double)s->now / 1e6,
	       s->elections, s->crashes, s->conf_changes, s->transfers,
	       s->snapshots_sent, s->compactions, s->ops_ok, s->ops_failed,
	       s->ops_unknown, s->net.sent, s->net.dropped);
}

int main(int argc, char **argv)
{
	sim_opts o = {
	    .nodes = 3, .steps = DEFAULT_STEPS, .promise_checks = true};
	uint64_t seed = 1, seeds = 1, v;
	bool verbose = false, stop = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--seed") == 0 && val && !parse_u64(val, &v)) {
			seed = v;
			i++;
		} else if (strcmp(a, "--seeds") == 0 && val &&
			   !parse_u64(val, &v) && v > 0) {
			seeds = v;
			i++;
		} else if (strcmp(a, "--nodes") == 0 && val &&
			   !parse_u64(val, &v) && (v == 3 || v == 5)) {
			o.nodes = (int)v;
			i++;
		} else if (strcmp(a, "--steps") == 0 && val &&
			   !parse_u64(val, &v) && v > 0 && v < 100000000) {
			o.steps = v;
			i++;
		} else if (strcmp(a, "--history") == 0 && val) {
			o.history_out = val;
			i++;
		} else if (strcmp(a, "--trace") == 0) {
			o.trace = true;
		} else if (strcmp(a, "--stop") == 0) {
			stop = true;
		} else if (strcmp(a, "--verbose") == 0) {
			verbose = true;
		} else if (strcmp(a, "--no-promise-checks") == 0) {
			o.promise_checks = false;
		} else if (strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	sim *s = calloc(1, sizeof *s);
	if (!s) {
		fprintf(stderr, "sisy-sim: out of memory\n");
		return 2;
	}
	uint64_t violations = 0, ran = 0;
	for (uint64_t k = 0; k < seeds && !(stop && violations); k++) {
		ran++;
		bool ok = sim_run(&o, seed + k, s);
		if (verbose)
			summary(s);
		if (!ok) {
			violations++;
			report(s, &o);
		}
		sim_free(s);
		fflush(stdout);
	}
	free(s);
	printf("seeds: %" PRIu64 ", violations: %" PRIu64 "\n", ran,
	       violations);
	return violations ? 1 : 0;
}
