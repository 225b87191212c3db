/* Crash and I/O-error tests of sisyd/raftlog through the fault layer.
 *
 * The crash test runs a random multi-group workload (appends, conflicting
 * appends, hard states, compactions, snapshots) and crashes the machine at
 * a random mutation, with torn writes (a random prefix of the unsynced
 * bytes, or random sectors of them). The test keeps its own model: the
 * list of records in the order it queued them, and the rules (written here
 * again, independently) that turn a record sequence into each group's log.
 * After restart the recovered log must be exactly the model after some
 * prefix of the records that contains every record the log reported
 * durable: nothing reported durable is lost (it was not only in the page
 * cache), and nothing appears that was not appended, in order.
 *
 * Failure seeds print and replay: SISY_SEED=n runs that seed alone;
 * SISY_SEEDS=m runs m seeds from there.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>

#include "fs_fault.h"
#include "rand.h"
#include "rl_test_util.h"

#define DIR	"/rl"
#define NGROUPS 3
#define MAXOPS	400
#define MAXIDX	2048

/* --- the model --------------------------------------------------------------
 */

enum { M_ENTRY, M_HS, M_BASE };

typedef struct mop {
	int type;
	uint64_t g, a, b, c; /* ENTRY: index, term; HS: term, vote, commit;
				BASE: index, term */
} mop;

typedef struct mgroup {
	bool exists;
	uint64_t base, base_term, last;
	uint64_t term[MAXIDX]; /* term[i] for base < i <= last */
	bool has_hs;
	sisy_raftlog_hardstate hs;
} mgroup;

typedef struct model {
	mop ops[MAXOPS * 8];
	size_t n;
	mgroup g[NGROUPS + 1];
} model;

static void m_apply(mgroup *g, const mop *o)
{
	g->exists = true;
	switch (o->type) {
	case M_ENTRY:
		assert_true(o->a > g->base && o->a <= g->last + 1);
		g->last = o->a;
		g->term[o->a] = o->b;
		break;
	case M_HS:
		g->has_hs = true;
		g->hs = (sisy_raftlog_hardstate){o->a, o->b, o->c};
		break;
	case M_BASE:
		if (o->a < g->base)
			break;
		if (o->a == g->base) {
			if (g->base_term != o->b)
				g->last = g->base;
			g->base_term = o->b;
		} else if (o->a <= g->last && g->term[o->a] == o->b) {
			g->base = o->a;
			g->base_term = o->b;
		} else {
			g->base = g->last = o->a;
			g->base_term = o->b;
		}
		break;
	}
}

static uint64_t m_term(const mgroup *g, uint64_t i)
{
	return i == g->base ? g->base_term : g->term[i];
}

/* --- the live log as recovered ----------------------------------------------
 */

typedef struct rgroup {
	bool exists;
	sisy_raftlog_state st;
	uint64_t term[MAXIDX];
} rgroup;

static void snapshot_log(sisy_raftlog *lg, rgroup *r)
{
	for (uint64_t g = 1; g <= NGROUPS; g++) {
		sisy_err rc = sisy_raftlog_state_of(lg, g, &r[g].st);
		r[g].exists = rc == SISY_OK;
		if (rc == SISY_E_NOTFOUND)
			continue;
		assert_int_equal(rc, SISY_OK);
		assert_true(r[g].st.last_index < MAXIDX);
		assert_int_equal(rl_read_check(lg, g, r[g].st.base_index + 1,
					       r[g].st.last_index + 1,
					       r[g].term),
				 SISY_OK);
	}
}

static bool same(const mgroup *m, const rgroup *r)
{
	if (m->exists != r->exists)
		return false;
	if (!m->exists)
		return true;
	const sisy_raftlog_state *s = &r->st;
	if (s->base_index != m->base || s->base_term != m->base_term ||
	    s->last_index != m->last || s->has_hardstate != m->has_hs)
		return false;
	if (m->has_hs && memcmp(&s->hs, &m->hs, sizeof m->hs) != 0)
		return false;
	for (uint64_t i = m->base + 1; i <= m->last; i++)
		if (r->term[i] != m->term[i])
			return false;
	return true;
}

/* Is the recovered log the model after some prefix ops[0, k), k >= lo? */
static bool matches_some_prefix(const model *md, size_t lo, const rgroup *r,
				size_t *k_out)
{
	static mgroup g[NGROUPS + 1];
	memset(g, 0, sizeof g);
	for (size_t k = 0; k <= md->n; k++) {
		if (k >= lo) {
			bool all = true;
			for (int i = 1; i <= NGROUPS && all; i++)
				all = same(&g[i], &r[i]);
			if (all) {
				*k_out = k;
				return true;
			}
		}
		if (k < md->n)
			m_apply(&g[md->ops[k].g], &md->ops[k]);
	}
	return false;
}

static void dump(const model *md, size_t upto, const rgroup *r)
{
	static mgroup g[NGROUPS + 1];
	memset(g, 0, sizeof g);
	for (size_t k = 0; k < upto; k++)
		m_apply(&g[md->ops[k].g], &md->ops[k]);
	for (int i = 1; i <= NGROUPS; i++) {
		fprintf(stderr,
			"  group %d model@%zu: base %" PRIu64 "/%" PRIu64
			" last %" PRIu64 " hs %d/%" PRIu64 " | log: exists %d "
			"base %" PRIu64 "/%" PRIu64 " last %" PRIu64
			" hs %d/%" PRIu64 " same %d\n",
			i, upto, g[i].base, g[i].base_term, g[i].last,
			g[i].has_hs, g[i].hs.vote, r[i].exists,
			r[i].st.base_index, r[i].st.base_term,
			r[i].st.last_index, r[i].st.has_hardstate,
			r[i].st.hs.vote, same(&g[i], &r[i]));
	}
}

#include "format.h"
static void dump_cb(void *ctx, const char *name)
{
	uint64_t seq = raftlog_seg_parse_name(name);
	if (seq != 0 && seq < 4096)
		((bool *)ctx)[seq] = true;
}

/* Prints group 1's records of every segment (debugging aid). */
static void dump_segments(sisy_fs *fs)
{
	static bool have[4096];
	memset(have, 0, sizeof have);
	sisy_fs_list(fs, DIR, dump_cb, have);
	for (uint64_t seq = 1; seq < 4096; seq++) {
		if (!have[seq])
			continue;
		char p[256];
		raftlog_seg_path(p, sizeof p, DIR, seq);
		uint8_t *data;
		size_t len, off = RAFTLOG_HDR_SIZE, need;
		if (sisy_fs_read_all(fs, p, 1 << 24, &data, &len) != SISY_OK)
			continue;
		fprintf(stderr, "segment %" PRIu64 " (%zu bytes)\n", seq, len);
		raftlog_rec r;
		while (off < len &&
		       raftlog_rec_decode(data + off, len - off, &r, &need) ==
			   RAFTLOG_PARSE_OK) {
			if (r.group == 1 || r.type == RAFTLOG_REC_SEAL)
				fprintf(
				    stderr,
				    "   @%zu type %d g %" PRIu64 " %" PRIu64
				    " %" PRIu64 "\n",
				    off, r.type, r.group,
				    r.type == RAFTLOG_REC_HARDSTATE ? r.term
								    : r.index,
				    r.type == RAFTLOG_REC_HARDSTATE ? r.vote
								    : r.term);
			off += r.size;
		}
		fprintf(stderr, "   end @%zu\n", off);
		free(data);
	}
}

/* The position (+1) of the record a report speaks of. */
static size_t report_pos(const model *md, const sisy_raftlog_durable *d)
{
	size_t best = 0;
	for (size_t k = 0; k < md->n; k++) {
		const mop *o = &md->ops[k];
		if (o->g != d->group)
			continue;
		if ((d->what & SISY_RAFTLOG_DURABLE_ENTRIES) &&
		    o->type == M_ENTRY && o->a == d->index && o->b == d->term)
			best = k + 1;
		if ((d->what & SISY_RAFTLOG_DURABLE_HARDSTATE) &&
		    o->type == M_HS && o->b == d->hs.vote)
			best = best > k + 1 ? best : k + 1;
		if ((d->what & SISY_RAFTLOG_DURABLE_SNAPSHOT) &&
		    o->type == M_BASE && o->a == d->snap_index &&
		    o->b == d->snap_term)
			best = best > k + 1 ? best : k + 1;
	}
	assert_true(best > 0); /* every report names a record we queued */
	return best;
}

/* --- the workload
 * -------------------------------------------------------------- */

typedef struct run {
	sisy_rand r;
	sisy_raftlog *lg;
	model *md;
	mgroup live[NGROUPS + 1]; /* the model of everything queued */
	uint64_t term[NGROUPS + 1];
	uint64_t vote_seq;
	size_t durable; /* prefix the reports promise */
} run;

static void record(run *x, mop o)
{
	x->md->ops[x->md->n++] = o;
	m_apply(&x->live[o.g], &o);
}

static void drain(run *x)
{
	sisy_raftlog_durable d[8];
	size_t n;
	do {
		if (sisy_raftlog_drain(x->lg, d, 8, &n) != SISY_OK)
			return;
		for (size_t k = 0; k < n; k++) {
			size_t p = report_pos(x->md, &d[k]);
			if (p > x->durable)
				x->durable = p;
		}
	} while (n == 8);
}

/* One random operation; false once the log has failed. */
static bool step(run *x)
{
	uint64_t g = 1 + sisy_rand_below(&x->r, NGROUPS);
	mgroup *m = &x->live[g];
	uint64_t roll = sisy_rand_below(&x->r, 100);
	sisy_err rc;
	if (m->last + 8 >= MAXIDX)
		roll = 75; /* compact instead of growing out of the model */
	if (roll < 60 || (roll < 70 && m->last == m->base)) {
		uint64_t n = 1 + sisy_rand_below(&x->r, 4);
		if (x->term[g] == 0)
			x->term[g] = 1;
		rc = rl_append(x->lg, g, m->last + 1, m->last + n, x->term[g]);
		if (rc != SISY_OK)
			return false;
		for (uint64_t i = m->last + 1, e = m->last + n; i <= e; i++)
			record(x, (mop){M_ENTRY, g, i, x->term[g], 0});
	} else if (roll < 70) { /* a new leader overwrites a suffix */
		uint64_t from =
		    m->base + 1 + sisy_rand_below(&x->r, m->last - m->base);
		uint64_t n = 1 + sisy_rand_below(&x->r, 3);
		x->term[g]++;
		rc = rl_append(x->lg, g, from, from + n - 1, x->term[g]);
		if (rc != SISY_OK)
			return false;
		for (uint64_t i = from; i < from + n; i++)
			record(x, (mop){M_ENTRY, g, i, x->term[g], 0});
	} else if (roll < 80) {
		sisy_raftlog_hardstate hs = {x->term[g], ++x->vote_seq,
					     m->last};
		if (sisy_raftlog_set_hardstate(x->lg, g, &hs) != SISY_OK)
			return false;
		record(x, (mop){M_HS, g, hs.term, hs.vote, hs.commit});
	} else if (roll < 92) {
		if (m->last == m->base)
			return true;
		uint64_t at =
		    m->base + 1 + sisy_rand_below(&x->r, m->last - m->base);
		uint64_t t = m_term(m, at);
		if (sisy_raftlog_compact(x->lg, g, at) != SISY_OK)
			return false;
		record(x, (mop){M_BASE, g, at, t, 0});
	} else if (roll < 96) {
		uint64_t at = m->last + 1 + sisy_rand_below(&x->r, 3);
		x->term[g]++;
		if (sisy_raftlog_set_snapshot(x->lg, g, at, x->term[g]) !=
		    SISY_OK)
			return false;
		record(x, (mop){M_BASE, g, at, x->term[g], 0});
	} else if (sisy_raftlog_flush(x->lg) != SISY_OK) {
		return false;
	}
	drain(x);
	return true;
}

static uint64_t seed_from_env(uint64_t dflt, bool *only)
{
	const char *s = getenv("SISY_SEED");
	*only = s != NULL;
	return s ? strtoull(s, NULL, 10) : dflt;
}

static void crash_one(uint64_t seed)
{
	static model md;
	static rgroup rec[NGROUPS + 1];
	memset(&md, 0, sizeof md);
	run x = {0};
	x.md = &md;
	sisy_rand_seed(&x.r, seed);
	sisy_fs_fault *ff = sisy_fs_fault_new(seed);
	sisy_fs *fs = sisy_fs_fault_fs(ff);
	sisy_raftlog_opts o;
	rl_opts_small(&o, fs, DIR);
	if (sisy_rand_below(&x.r, 2))
		o.prefill_bytes = 0;
	/* A third of the crashes tear by sector (a disk that reorders). */
	sisy_fs_fault_set_torn_sectors(ff, sisy_rand_below(&x.r, 3) == 0);
	assert_int_equal(sisy_raftlog_open(&o, &x.lg), SISY_OK);
	sisy_fs_fault_crash_after(ff, 1 + sisy_rand_below(&x.r, 400));
	size_t nops = 20 + sisy_rand_below(&x.r, MAXOPS - 20);
	for (size_t i = 0; i < nops && step(&x); i++)
		;
	sisy_fs_fault_crash(ff);
	drain(&x); /* reports published before the crash still count */
	sisy_raftlog_close(x.lg); /* fails unless the writer was idle */
	sisy_fs_fault_restart(ff);
	if (getenv("RL_DUMP"))
		dump_segments(fs);

	sisy_raftlog *lg;
	if (sisy_raftlog_open(&o, &lg) != SISY_OK)
		fail_msg("seed %" PRIu64 ": reopen: %s", seed, sisy_errmsg());
	memset(rec, 0, sizeof rec);
	snapshot_log(lg, rec);
	size_t k;
	if (!matches_some_prefix(&md, x.durable, rec, &k)) {
		dump_segments(fs);
		dump(&md, x.durable, rec);
		dump(&md, md.n, rec);
		for (size_t j = 0; j < md.n; j++)
			fprintf(stderr,
				"  op %zu: type %d g %" PRIu64 " %" PRIu64
				" %" PRIu64 " %" PRIu64 "\n",
				j, md.ops[j].type, md.ops[j].g, md.ops[j].a,
				md.ops[j].b, md.ops[j].c);
		fail_msg("seed %" PRIu64 ": the recovered log is not the log "
			 "after any prefix of the %zu queued records that "
			 "keeps the %zu reported durable",
			 seed, md.n, x.durable);
	}
	/* And it goes on working. */
	for (uint64_t g = 1; g <= NGROUPS; g++) {
		if (!rec[g].exists)
			continue;
		uint64_t last = rec[g].st.last_index;
		assert_int_equal(rl_append(lg, g, last + 1, last + 2, 1000),
				 SISY_OK);
	}
	assert_int_equal(sisy_raftlog_close(lg), SISY_OK);
	assert_int_equal(sisy_raftlog_open(&o, &lg), SISY_OK);
	assert_int_equal(sisy_raftlog_close(lg), SISY_OK);
	sisy_fs_fault_free(ff);
}

static void test_crash_at_random_points(void **state)
{
	(void)state;
	bool only;
	uint64_t s0 = seed_from_env(1, &only);
	/* SISY_SEEDS=n runs n seeds from SISY_SEED (or 1), for long hunts. */
	const char *ns = getenv("SISY_SEEDS");
	uint64_t n = ns ? strtoull(ns, NULL, 10) : only ? 1 : 1000;
	for (uint64_t s = s0; s < s0 + n; s++)
		crash_one(s);
}

/* --- I/O errors
 * -------------------------------------------------------------------- */

typedef struct efx {
	sisy_fs_fault *ff;
	sisy_fs *fs;
	sisy_raftlog_opts o;
	sisy_raftlog *lg;
} efx;

static int setup(void **state)
{
	efx *x = calloc(1, sizeof *x);
	x->ff = sisy_fs_fault_new(9);
	x->fs = sisy_fs_fault_fs(x->ff);
	rl_opts_small(&x->o, x->fs, DIR);
	static sisy_logger lgr;
	lgr = sisy_logger_stderr(SISY_LOG_DEBUG);
	if (getenv("RL_DEBUG"))
		x->o.logger = &lgr;
	assert_int_equal(sisy_raftlog_open(&x->o, &x->lg), SISY_OK);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	efx *x = *state;
	if (x->lg != NULL)
		sisy_raftlog_close(x->lg);
	sisy_fs_fault_free(x->ff);
	free(x);
	return 0;
}

/* Waits (bounded) for the event fd, then drains; returns the drain code
 * and the highest ENTRIES index reported for group 1. */
static sisy_err wait_drain(efx *x, uint64_t *idx)
{
	struct pollfd p = {.fd = sisy_raftlog_event_fd(x->lg),
			   .events = POLLIN};
	sisy_raftlog_durable d[8];
	size_t n;
	sisy_err rc;
	assert_int_equal(poll(&p, 1, 10000), 1);
	do {
		rc = sisy_raftlog_drain(x->lg, d, 8, &n);
		for (size_t k = 0; k < n; k++)
			if (d[k].group == 1 &&
			    (d[k].what & SISY_RAFTLOG_DURABLE_ENTRIES))
				*idx = d[k].index;
	} while (n == 8);
	return rc;
}

/* `undrained`: nobody has drained since the failure, so the fd must still
 * carry its one signal. */
static void check_failed_state(efx *x, bool undrained)
{
	sisy_raftlog_entries es;
	assert_int_equal(rl_append(x->lg, 1, 1000, 1000, 9), SISY_E_FAILED);
	assert_non_null(strstr(sisy_errmsg(), "injected"));
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_E_FAILED);
	assert_int_equal(sisy_raftlog_compact(x->lg, 1, 1), SISY_E_FAILED);
	assert_int_equal(sisy_raftlog_read(x->lg, 1, 1, 2, 100, &es),
			 SISY_E_FAILED);
	struct pollfd p = {.fd = sisy_raftlog_event_fd(x->lg),
			   .events = POLLIN};
	/* The loop hears of it once, and does not spin on it. */
	assert_int_equal(poll(&p, 1, 0), undrained ? 1 : 0);
	sisy_raftlog_durable d[4];
	size_t n;
	assert_int_equal(sisy_raftlog_drain(x->lg, d, 4, &n), SISY_E_FAILED);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(sisy_raftlog_drain(x->lg, d, 4, &n), SISY_E_FAILED);
	assert_int_equal(n, 0);
	assert_int_equal(sisy_raftlog_close(x->lg), SISY_E_FAILED);
	x->lg = NULL;
}

static void test_write_eio_fails_the_log(void **state)
{
	efx *x = *state;
	assert_int_equal(rl_append(x->lg, 1, 1, 50, 1), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	uint64_t durable = 0;
	assert_int_equal(wait_drain(x, &durable), SISY_OK);
	assert_int_equal(durable, 50);
	sisy_fs_fault_inject(x->ff, SISY_FAULT_WRITE, ".rlog", 0, 1, SISY_E_IO);
	assert_int_equal(rl_append(x->lg, 1, 51, 60, 1), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_E_FAILED);
	assert_non_null(strstr(sisy_errmsg(), "SISY_E_IO"));
	uint64_t before = sisy_fs_fault_mutations(x->ff);
	check_failed_state(x, true);
	/* Nothing is retried: not one more write or sync after the error. */
	assert_int_equal(sisy_fs_fault_mutations(x->ff), before);
	sisy_fs_fault_clear_injections(x->ff);
	sisy_fs_fault_crash(x->ff);
	sisy_fs_fault_restart(x->ff);
	assert_int_equal(sisy_raftlog_open(&x->o, &x->lg), SISY_OK);
	sisy_raftlog_state st;
	assert_int_equal(sisy_raftlog_state_of(x->lg, 1, &st), SISY_OK);
	assert_int_equal(st.last_index, 50);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 51, NULL), SISY_OK);
}

static void test_sync_eio_is_never_retried(void **state)
{
	efx *x = *state;
	assert_int_equal(rl_append(x->lg, 1, 1, 10, 1), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	uint64_t durable = 0;
	assert_int_equal(wait_drain(x, &durable), SISY_OK);
	sisy_fs_fault_inject(x->ff, SISY_FAULT_SYNC, NULL, 0, 1, SISY_E_IO);
	assert_int_equal(rl_append(x->lg, 1, 11, 20, 1), SISY_OK);
	sisy_err rc;
	while ((rc = wait_drain(x, &durable)) == SISY_OK)
		;
	assert_int_equal(rc, SISY_E_FAILED);
	/* 11..20 were written but their fsync failed: never reported. */
	assert_int_equal(durable, 10);
	uint64_t before = sisy_fs_fault_mutations(x->ff);
	check_failed_state(x, false);
	assert_int_equal(sisy_fs_fault_mutations(x->ff), before);
}

static void test_enospc_refuses_appends_then_recovers(void **state)
{
	efx *x = *state;
	sisy_fs_fault_set_capacity(x->ff, 48 * 1024);
	uint64_t i = 1;
	sisy_err rc = SISY_OK;
	for (; i < 5000 && rc == SISY_OK; i += 5) {
		rc = rl_append(x->lg, 1, i, i + 4, 1);
		if (rc == SISY_OK)
			rc = sisy_raftlog_flush(x->lg);
	}
	assert_int_equal(rc, SISY_E_NOSPC);
	assert_non_null(strstr(sisy_errmsg(), "no space"));
	sisy_raftlog_state st;
	assert_int_equal(sisy_raftlog_state_of(x->lg, 1, &st), SISY_OK);
	uint64_t last = st.last_index;
	/* Reads keep working, of what is queued too. */
	assert_int_equal(rl_read_check(x->lg, 1, 1, last + 1, NULL), SISY_OK);
	assert_int_equal(rl_append(x->lg, 1, last + 1, last + 1, 1),
			 SISY_E_NOSPC);
	/* Space comes back (the operator cleaned up): the writer's retry
	 * gets through and appends are taken again. */
	sisy_fs_fault_set_capacity(x->ff, 0);
	for (int tries = 0; (rc = sisy_raftlog_flush(x->lg)) != SISY_OK;
	     tries++) {
		assert_int_equal(rc, SISY_E_NOSPC);
		assert_true(tries < 200);
		/* Drain (re-arming the fd), then wait for the next report. */
		sisy_raftlog_durable d[8];
		size_t n;
		assert_int_equal(sisy_raftlog_drain(x->lg, d, 8, &n), SISY_OK);
		struct pollfd p = {.fd = sisy_raftlog_event_fd(x->lg),
				   .events = POLLIN};
		poll(&p, 1, 50);
	}
	assert_int_equal(rl_append(x->lg, 1, last + 1, last + 10, 1), SISY_OK);
	assert_int_equal(sisy_raftlog_close(x->lg), SISY_OK);
	sisy_fs_fault_crash(x->ff);
	sisy_fs_fault_restart(x->ff);
	assert_int_equal(sisy_raftlog_open(&x->o, &x->lg), SISY_OK);
	assert_int_equal(rl_read_check(x->lg, 1, 1, last + 11, NULL), SISY_OK);
}

/* Flushes until it succeeds, waiting for reports in between (bounded). */
static void flush_until_ok(efx *x)
{
	sisy_err rc;
	for (int tries = 0; (rc = sisy_raftlog_flush(x->lg)) != SISY_OK;
	     tries++) {
		assert_int_equal(rc, SISY_E_NOSPC);
		assert_true(tries < 200);
		sisy_raftlog_durable d[8];
		size_t n;
		assert_int_equal(sisy_raftlog_drain(x->lg, d, 8, &n), SISY_OK);
		struct pollfd p = {.fd = sisy_raftlog_event_fd(x->lg),
				   .events = POLLIN};
		poll(&p, 1, 50);
	}
}

/* The log itself fills the disk: only compacting it can free space, and
 * the compaction's record must reach the disk first. The ballast makes
 * room for it. */
static void test_full_disk_compaction_uses_ballast(void **state)
{
	efx *x = *state;
	bool ex;
	assert_int_equal(sisy_fs_exists(x->fs, DIR "/ballast", &ex), SISY_OK);
	assert_true(ex);
	sisy_fs_fault_set_capacity(x->ff, sisy_fs_fault_used(x->ff) + 40000);
	uint64_t i = 1;
	sisy_err rc = SISY_OK;
	for (; i < 5000 && rc == SISY_OK; i += 5) {
		rc = rl_append(x->lg, 1, i, i + 4, 1);
		if (rc == SISY_OK)
			rc = sisy_raftlog_flush(x->lg);
	}
	assert_int_equal(rc, SISY_E_NOSPC);
	int before = rl_count_segments(x->fs, DIR);
	sisy_raftlog_state st;
	assert_int_equal(sisy_raftlog_state_of(x->lg, 1, &st), SISY_OK);
	assert_int_equal(sisy_raftlog_compact(x->lg, 1, st.last_index),
			 SISY_OK);
	flush_until_ok(x);
	assert_true(rl_count_segments(x->fs, DIR) < before);
	/* Appends are taken again, and the ballast is back in place. */
	assert_int_equal(
	    rl_append(x->lg, 1, st.last_index + 1, st.last_index + 5, 1),
	    SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	assert_int_equal(sisy_fs_exists(x->fs, DIR "/ballast", &ex), SISY_OK);
	assert_true(ex);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crash_at_random_points),
	    cmocka_unit_test_setup_teardown(test_write_eio_fails_the_log, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_sync_eio_is_never_retried,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_enospc_refuses_appends_then_recovers, setup, teardown),
	    cmocka_unit_test_setup_teardown(
		test_full_disk_compaction_uses_ballast, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
