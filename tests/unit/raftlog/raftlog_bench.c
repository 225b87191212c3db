/* raftlog_bench — how fast the raft log makes entries durable, in
 * db_bench's output format. Not a test: nothing is asserted.
 *
 *   raftlog_bench [--dir DIR] [--entries N] [--value-size B]
 *                 [--groups G] [--inflight K] [--no-prefill]
 *
 *   sync1      one entry at a time, waiting for its durability report
 *              (one fsync per entry: the latency floor)
 *   pipelined  K entries in flight over G groups, as a node with many
 *              clients: the writer batches them (group commit)
 *   readseq    every entry read back (from the segment files once the
 *              cache has moved on)
 */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "raftlog.h"

typedef struct cfg {
	const char *dir;
	uint64_t entries;
	size_t value_size;
	uint64_t groups, inflight;
	bool prefill;
} cfg;

static void die(const char *what)
{
	fprintf(stderr, "raftlog_bench: %s: %s\n", what, sisy_errmsg());
	exit(1);
}

static sisy_raftlog *open_log(const cfg *c, const char *sub)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/%s", c->dir, sub);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		die("rm");
	sisy_raftlog_opts o;
	sisy_raftlog_opts_default(&o);
	o.fs = sisy_fs_posix();
	o.dir = dir;
	if (!c->prefill)
		o.prefill_bytes = 0;
	sisy_raftlog *lg;
	if (sisy_raftlog_open(&o, &lg) != SISY_OK)
		die("open");
	return lg;
}

/* Waits for reports; returns how many entries they newly cover. */
static uint64_t wait_durable(sisy_raftlog *lg, uint64_t *durable)
{
	struct pollfd p = {.fd = sisy_raftlog_event_fd(lg), .events = POLLIN};
	poll(&p, 1, 1000);
	sisy_raftlog_durable d[64];
	size_t n;
	uint64_t got = 0;
	do {
		if (sisy_raftlog_drain(lg, d, 64, &n) != SISY_OK)
			die("drain");
		for (size_t k = 0; k < n; k++) {
			if (!(d[k].what & SISY_RAFTLOG_DURABLE_ENTRIES))
				continue;
			got += d[k].index - durable[d[k].group];
			durable[d[k].group] = d[k].index;
		}
	} while (n == 64);
	return got;
}

static void print(const char *name, uint64_t n, size_t bytes, uint64_t ns,
		  sisy_raftlog *lg)
{
	sisy_raftlog_stats st;
	sisy_raftlog_stats_get(lg, &st);
	double us = (double)ns / 1000.0 / (double)n;
	double mb = (double)bytes / 1048576.0 / ((double)ns / 1e9);
	printf("%-12s : %11.3f micros/op; %6.1f MB/s; %" PRIu64
	       " fsync rounds, %.1f entries each\n",
	       name, us, mb, st.batches,
	       st.batches ? (double)st.records / (double)st.batches : 0.0);
}

static void bench(const cfg *c, const char *name, uint64_t inflight,
		  uint64_t groups)
{
	sisy_raftlog *lg = open_log(c, name);
	uint8_t *val = malloc(c->value_size ? c->value_size : 1);
	memset(val, 'v', c->value_size);
	uint64_t *next = calloc(groups + 1, sizeof *next);
	uint64_t *durable = calloc(groups + 1, sizeof *durable);
	for (uint64_t g = 1; g <= groups; g++)
		next[g] = 1;
	uint64_t sent = 0, done = 0, t0 = sisy_now_ns();
	while (done < c->entries) {
		while (sent < c->entries && sent - done < inflight) {
			uint64_t g = 1 + sent % groups;
			sisy_raftlog_entry e = {next[g], 1, val, c->value_size};
			sisy_err rc = sisy_raftlog_append(lg, g, &e, 1);
			if (rc == SISY_E_BUSY)
				break;
			if (rc != SISY_OK)
				die("append");
			next[g]++;
			sent++;
		}
		done += wait_durable(lg, durable);
	}
	uint64_t ns = sisy_now_ns() - t0;
	print(name, c->entries, c->entries * c->value_size, ns, lg);
	if (strcmp(name, "pipelined") == 0) {
		t0 = sisy_now_ns();
		for (uint64_t g = 1; g <= groups; g++) {
			for (uint64_t i = 1; i < next[g];) {
				sisy_raftlog_entries es;
				if (sisy_raftlog_read(lg, g, i, next[g],
						      1 << 20, &es) != SISY_OK)
					die("read");
				i += es.n;
				sisy_raftlog_entries_free(&es);
			}
		}
		print("readseq", c->entries, c->entries * c->value_size,
		      sisy_now_ns() - t0, lg);
	}
	if (sisy_raftlog_close(lg) != SISY_OK)
		die("close");
	free(val);
	free(next);
	free(durable);
}

int main(int argc, char **argv)
{
	cfg c = {"/tmp/sisy-raftlog-bench", 20000, 100, 16, 256, true};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : "";
		if (strcmp(a, "--dir") == 0)
			c.dir = v, i++;
		else if (strcmp(a, "--entries") == 0)
			c.entries = strtoull(v, NULL, 10), i++;
		else if (strcmp(a, "--value-size") == 0)
			c.value_size = strtoull(v, NULL, 10), i++;
		else if (strcmp(a, "--groups") == 0)
			c.groups = strtoull(v, NULL, 10), i++;
		else if (strcmp(a, "--inflight") == 0)
			c.inflight = strtoull(v, NULL, 10), i++;
		else if (strcmp(a, "--no-prefill") == 0)
			c.prefill = false;
		else {
			fprintf(stderr, "usage: see the comment at the top of "
					"raftlog_bench.c\n");
			return 2;
		}
	}
	if (c.groups == 0 || c.inflight == 0)
		return 2;
	mkdir(c.dir, 0755);
	printf("raftlog: %" PRIu64 " entries of %zu bytes, %" PRIu64
	       " groups, %" PRIu64 " in flight, prefill %s, dir %s\n",
	       c.entries, c.value_size, c.groups, c.inflight,
	       c.prefill ? "on" : "off", c.dir);
	cfg one = c;
	one.entries = c.entries / 10 ? c.entries / 10 : 1;
	bench(&one, "sync1", 1, 1);
	bench(&c, "pipelined", c.inflight, c.groups);
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", c.dir);
	return system(cmd) == 0 ? 0 : 1;
}
