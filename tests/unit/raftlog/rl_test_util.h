/* rl_test_util.h — fixtures shared by the raft log's tests: small options
 * (so segments roll over and the cache evicts within a few hundred
 * entries), payloads that are a pure function of (group, index, term) so a
 * reader can check any entry it gets back, and a model of what was reported
 * durable. Header-only so each test stays one executable. */
#ifndef SISY_RL_TEST_UTIL_H
#define SISY_RL_TEST_UTIL_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "raftlog.h"

#define RL_PAYLOAD_MAX 300

/* Options small enough to exercise rollover, eviction and the torn window
 * with little data. */
static inline void rl_opts_small(sisy_raftlog_opts *o, sisy_fs *fs,
				 const char *dir)
{
	sisy_raftlog_opts_default(o);
	o->fs = fs;
	o->dir = dir;
	o->segment_bytes = 8 * 1024;
	o->max_entry_bytes = 512;
	o->batch_bytes = 1024;
	o->prefill_bytes = 2048;
	o->cache_bytes = 2048;
	o->queue_bytes = 1 << 20;
	o->reserve_bytes = 4096;
}

/* The payload of (g, i, t): its length and bytes depend on all three. */
static inline size_t rl_payload(uint64_t g, uint64_t i, uint64_t t,
				uint8_t *buf)
{
	uint64_t x = g * 0x9e3779b97f4a7c15ULL ^ i * 0xbf58476d1ce4e5b9ULL ^
		     t * 0x94d049bb133111ebULL;
	size_t len = (size_t)(x % RL_PAYLOAD_MAX);
	for (size_t k = 0; k < len; k++) {
		x ^= x >> 31;
		x *= 0xd6e8feb86659fd93ULL;
		buf[k] = (uint8_t)(x >> 56);
	}
	return len;
}

static inline bool rl_payload_ok(uint64_t g, const sisy_raftlog_entry *e)
{
	uint8_t want[RL_PAYLOAD_MAX];
	size_t n = rl_payload(g, e->index, e->term, want);
	return n == e->len && (n == 0 || memcmp(want, e->data, n) == 0);
}

/* Appends entries [from, to] of term t to group g. */
static inline sisy_err rl_append(sisy_raftlog *lg, uint64_t g, uint64_t from,
				 uint64_t to, uint64_t t)
{
	static _Thread_local uint8_t bufs[16][RL_PAYLOAD_MAX];
	sisy_raftlog_entry ents[16];
	for (uint64_t i = from; i <= to;) {
		size_t n = 0;
		for (; n < 16 && i <= to; n++, i++) {
			ents[n].index = i;
			ents[n].term = t;
			ents[n].len = rl_payload(g, i, t, bufs[n]);
			ents[n].data = bufs[n];
		}
		sisy_err rc = sisy_raftlog_append(lg, g, ents, n);
		if (rc != SISY_OK)
			return rc;
	}
	return SISY_OK;
}

/* Reads [lo, hi) of g in as many calls as it takes, checking every payload
 * and that terms are `term_of(i)`; returns the first error. */
static inline sisy_err rl_read_check(sisy_raftlog *lg, uint64_t g, uint64_t lo,
				     uint64_t hi, uint64_t *terms_out)
{
	while (lo < hi) {
		sisy_raftlog_entries es;
		sisy_err rc = sisy_raftlog_read(lg, g, lo, hi, 1000, &es);
		if (rc != SISY_OK)
			return rc;
		if (es.n == 0) {
			sisy_raftlog_entries_free(&es);
			return SISY_E_INTERNAL;
		}
		for (size_t k = 0; k < es.n; k++) {
			if (es.v[k].index != lo + k ||
			    !rl_payload_ok(g, &es.v[k])) {
				sisy_raftlog_entries_free(&es);
				return SISY_E_CORRUPT;
			}
			if (terms_out != NULL)
				terms_out[lo + k] = es.v[k].term;
		}
		lo += es.n;
		sisy_raftlog_entries_free(&es);
	}
	return SISY_OK;
}

/* Counts the segment files in dir. */
static inline void rl_count_cb(void *ctx, const char *name)
{
	size_t n = strlen(name);
	if (n > 5 && strcmp(name + n - 5, ".rlog") == 0)
		(*(int *)ctx)++;
}

static inline int rl_count_segments(sisy_fs *fs, const char *dir)
{
	int n = 0;
	if (sisy_fs_list(fs, dir, rl_count_cb, &n) != SISY_OK)
		return -1;
	return n;
}

#endif
