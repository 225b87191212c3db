/* Tests sisyd/raftlog (raftlog.c, group.c, read.c, writer.c): appends and
 * reads, truncation of a conflicting suffix, hard state, many groups,
 * segment rollover, compaction and segment deletion, snapshots, reports
 * through the event fd, argument checks. On the in-memory file system, and
 * every state is checked again after a reopen (recovery must agree with
 * the live view). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include "fs_fault.h"
#include "rl_test_util.h"

#define DIR "/rl"

typedef struct fx {
	sisy_fs_fault *ff;
	sisy_fs *fs;
	sisy_raftlog_opts o;
	sisy_raftlog *lg;
} fx;

static void reopen(fx *x)
{
	if (x->lg != NULL)
		assert_int_equal(sisy_raftlog_close(x->lg), SISY_OK);
	x->lg = NULL;
	sisy_err rc = sisy_raftlog_open(&x->o, &x->lg);
	if (rc != SISY_OK)
		fail_msg("open: %s", sisy_errmsg());
}

static int setup(void **state)
{
	fx *x = calloc(1, sizeof *x);
	x->ff = sisy_fs_fault_new(1);
	x->fs = sisy_fs_fault_fs(x->ff);
	rl_opts_small(&x->o, x->fs, DIR);
	*state = x;
	reopen(x);
	return 0;
}

static int teardown(void **state)
{
	fx *x = *state;
	if (x->lg != NULL)
		sisy_raftlog_close(x->lg);
	sisy_fs_fault_free(x->ff);
	free(x);
	return 0;
}

static void state_of(fx *x, uint64_t g, sisy_raftlog_state *st)
{
	assert_int_equal(sisy_raftlog_state_of(x->lg, g, st), SISY_OK);
}

/* Drains every report into per-group slots (index by group id < 8). */
static void drain_all(fx *x, sisy_raftlog_durable *by_group)
{
	sisy_raftlog_durable out[4];
	size_t n;
	do {
		assert_int_equal(sisy_raftlog_drain(x->lg, out, 4, &n),
				 SISY_OK);
		for (size_t k = 0; k < n; k++) {
			assert_true(out[k].group < 8);
			sisy_raftlog_durable *d = &by_group[out[k].group];
			d->group = out[k].group;
			d->what |= out[k].what;
			if (out[k].what & SISY_RAFTLOG_DURABLE_ENTRIES) {
				d->index = out[k].index;
				d->term = out[k].term;
			}
			if (out[k].what & SISY_RAFTLOG_DURABLE_HARDSTATE)
				d->hs = out[k].hs;
			if (out[k].what & SISY_RAFTLOG_DURABLE_SNAPSHOT) {
				d->snap_index = out[k].snap_index;
				d->snap_term = out[k].snap_term;
			}
		}
	} while (n == 4);
}

static void test_append_read(void **state)
{
	fx *x = *state;
	assert_int_equal(rl_append(x->lg, 1, 1, 100, 1), SISY_OK);
	/* Readable at once, before it is durable. */
	assert_int_equal(rl_read_check(x->lg, 1, 1, 101, NULL), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	sisy_raftlog_durable d[8] = {0};
	drain_all(x, d);
	assert_true(d[1].what & SISY_RAFTLOG_DURABLE_ENTRIES);
	assert_int_equal(d[1].index, 100);
	assert_int_equal(d[1].term, 1);
	sisy_raftlog_state st;
	state_of(x, 1, &st);
	assert_int_equal(st.base_index, 0);
	assert_int_equal(st.last_index, 100);
	assert_int_equal(st.last_term, 1);
	/* The cache holds 2 KiB: most of these come from the segment files. */
	sisy_raftlog_stats s0, s1;
	sisy_raftlog_stats_get(x->lg, &s0);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 101, NULL), SISY_OK);
	sisy_raftlog_stats_get(x->lg, &s1);
	assert_true(s1.disk_reads - s0.disk_reads > 50);
	assert_true(s1.cache_hits - s0.cache_hits > 0);
	/* The byte budget: at least one entry, then stop before exceeding. */
	sisy_raftlog_entries es;
	assert_int_equal(sisy_raftlog_read(x->lg, 1, 1, 101, 0, &es), SISY_OK);
	assert_int_equal(es.n, 1);
	sisy_raftlog_entries_free(&es);
	assert_int_equal(sisy_raftlog_read(x->lg, 1, 1, 101, 700, &es),
			 SISY_OK);
	size_t total = 0;
	for (size_t k = 0; k < es.n; k++)
		total += es.v[k].len;
	assert_true(total <= 700 && es.n < 100);
	uint8_t buf[RL_PAYLOAD_MAX];
	assert_true(total + rl_payload(1, 1 + es.n, 1, buf) > 700);
	sisy_raftlog_entries_free(&es);
	reopen(x);
	state_of(x, 1, &st);
	assert_int_equal(st.last_index, 100);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 101, NULL), SISY_OK);
}

static void test_truncate_conflicting_suffix(void **state)
{
	fx *x = *state;
	uint64_t terms[64];
	assert_int_equal(rl_append(x->lg, 1, 1, 30, 1), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	/* A new leader's entries replace 21..30 with 21..25 of term 2. */
	assert_int_equal(rl_append(x->lg, 1, 21, 25, 2), SISY_OK);
	sisy_raftlog_state st;
	state_of(x, 1, &st);
	assert_int_equal(st.last_index, 25);
	assert_int_equal(st.last_term, 2);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 26, terms), SISY_OK);
	assert_int_equal(terms[20], 1);
	assert_int_equal(terms[21], 2);
	sisy_raftlog_entries es;
	assert_int_equal(sisy_raftlog_read(x->lg, 1, 20, 27, 1 << 20, &es),
			 SISY_E_RANGE);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	sisy_raftlog_durable d[8] = {0};
	drain_all(x, d);
	assert_int_equal(d[1].index, 25);
	assert_int_equal(d[1].term, 2);
	/* Once more, not flushed: the close writes it. */
	assert_int_equal(rl_append(x->lg, 1, 24, 40, 3), SISY_OK);
	reopen(x);
	state_of(x, 1, &st);
	assert_int_equal(st.last_index, 40);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 41, terms), SISY_OK);
	assert_int_equal(terms[20], 1);
	assert_int_equal(terms[23], 2);
	assert_int_equal(terms[24], 3);
	assert_int_equal(terms[40], 3);
}

static void test_hardstate(void **state)
{
	fx *x = *state;
	sisy_raftlog_hardstate hs = {5, 2, 0};
	assert_int_equal(sisy_raftlog_set_hardstate(x->lg, 3, &hs), SISY_OK);
	hs.commit = 7;
	assert_int_equal(rl_append(x->lg, 3, 1, 7, 5), SISY_OK);
	assert_int_equal(sisy_raftlog_set_hardstate(x->lg, 3, &hs), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	sisy_raftlog_durable d[8] = {0};
	drain_all(x, d);
	assert_true(d[3].what & SISY_RAFTLOG_DURABLE_HARDSTATE);
	assert_int_equal(d[3].hs.term, 5);
	assert_int_equal(d[3].hs.vote, 2);
	assert_int_equal(d[3].hs.commit, 7);
	reopen(x);
	sisy_raftlog_state st;
	state_of(x, 3, &st);
	assert_true(st.has_hardstate);
	assert_int_equal(st.hs.term, 5);
	assert_int_equal(st.hs.vote, 2);
	assert_int_equal(st.hs.commit, 7);
	/* The hard state survives its segment's deletion (checkpoints). */
	for (uint64_t t = 0; t < 10; t++) {
		assert_int_equal(
		    rl_append(x->lg, 3, 8 + t * 40, 47 + t * 40, 6), SISY_OK);
		assert_int_equal(sisy_raftlog_compact(x->lg, 3, 47 + t * 40),
				 SISY_OK);
	}
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	sisy_raftlog_stats s;
	sisy_raftlog_stats_get(x->lg, &s);
	assert_true(s.segments_deleted > 0);
	reopen(x);
	state_of(x, 3, &st);
	assert_true(st.has_hardstate);
	assert_int_equal(st.hs.commit, 7);
	assert_int_equal(st.base_index, 407);
	assert_int_equal(st.base_term, 6);
}

static void test_many_groups(void **state)
{
	fx *x = *state;
	for (uint64_t i = 1; i <= 60; i++)
		for (uint64_t g = 1; g <= 5; g++)
			assert_int_equal(rl_append(x->lg, g, i, i, 1 + i / 20),
					 SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	sisy_raftlog_durable d[8] = {0};
	drain_all(x, d);
	for (uint64_t g = 1; g <= 5; g++)
		assert_int_equal(d[g].index, 60);
	reopen(x);
	uint64_t ids[8];
	assert_int_equal(sisy_raftlog_groups(x->lg, ids, 8), 5);
	for (uint64_t g = 1; g <= 5; g++) {
		assert_int_equal(ids[g - 1], g);
		assert_int_equal(rl_read_check(x->lg, g, 1, 61, NULL), SISY_OK);
		uint64_t t;
		assert_int_equal(sisy_raftlog_term(x->lg, g, 40, &t), SISY_OK);
		assert_int_equal(t, 3);
	}
}

static void test_rollover_and_group_commit(void **state)
{
	fx *x = *state;
	/* One call queues 400 entries at once: the writer takes them in
	 * batches of about batch_bytes, one fsync each. */
	sisy_raftlog_entry ents[400];
	static uint8_t bufs[400][RL_PAYLOAD_MAX];
	size_t total = 0;
	for (uint64_t i = 0; i < 400; i++) {
		ents[i] = (sisy_raftlog_entry){i + 1, 1, bufs[i], 0};
		ents[i].len = rl_payload(2, i + 1, 1, bufs[i]);
		total += ents[i].len;
	}
	assert_int_equal(sisy_raftlog_append(x->lg, 2, ents, 400), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	sisy_raftlog_stats s;
	sisy_raftlog_stats_get(x->lg, &s);
	assert_int_equal(s.records, 400);
	assert_true(s.batches >= total / x->o.batch_bytes);
	assert_true(s.batches < 400 / 2);
	assert_true(s.segments > 5);
	assert_int_equal(rl_count_segments(x->fs, DIR), (int)s.segments);
	reopen(x);
	assert_int_equal(rl_read_check(x->lg, 2, 1, 401, NULL), SISY_OK);
}

/* An entry larger than a segment (and than a batch) gets a segment of its
 * own; zero-length entries are fine too. */
static void test_big_and_empty_entries(void **state)
{
	fx *x = *state;
	assert_int_equal(sisy_raftlog_close(x->lg), SISY_OK);
	x->o.max_entry_bytes = 20000; /* more than segment_bytes */
	x->lg = NULL;
	reopen(x);
	static uint8_t big[20000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)(i * 31 + 7);
	sisy_raftlog_entry e[3] = {
	    {1, 1, big, 100}, {2, 1, big, sizeof big}, {3, 1, NULL, 0}};
	assert_int_equal(sisy_raftlog_append(x->lg, 5, e, 3), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	reopen(x);
	sisy_raftlog_entries es;
	assert_int_equal(sisy_raftlog_read(x->lg, 5, 1, 4, 1 << 20, &es),
			 SISY_OK);
	assert_int_equal(es.n, 3);
	assert_int_equal(es.v[1].len, sizeof big);
	assert_memory_equal(es.v[1].data, big, sizeof big);
	assert_int_equal(es.v[2].len, 0);
	sisy_raftlog_entries_free(&es);
}

static void test_compaction_deletes_segments(void **state)
{
	fx *x = *state;
	/* Interleaved, so every segment holds entries of both groups. */
	for (uint64_t i = 1; i <= 200; i += 5) {
		assert_int_equal(rl_append(x->lg, 1, i, i + 4, 1), SISY_OK);
		assert_int_equal(rl_append(x->lg, 2, i, i + 4, 1), SISY_OK);
	}
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	int before = rl_count_segments(x->fs, DIR);
	assert_true(before > 4);
	/* Group 2 still needs every segment: nothing goes. */
	assert_int_equal(sisy_raftlog_compact(x->lg, 1, 200), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	assert_int_equal(rl_count_segments(x->fs, DIR), before);
	sisy_raftlog_entries es;
	assert_int_equal(sisy_raftlog_read(x->lg, 1, 200, 201, 100, &es),
			 SISY_E_RANGE);
	/* Group 2 up to 100: the segments holding only entries <= 100 go. */
	assert_int_equal(sisy_raftlog_compact(x->lg, 2, 100), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	int mid = rl_count_segments(x->fs, DIR);
	assert_true(mid < before && mid > 1);
	sisy_raftlog_durable d[8] = {0};
	drain_all(x, d);
	assert_true(d[2].what & SISY_RAFTLOG_DURABLE_SNAPSHOT);
	assert_int_equal(d[2].snap_index, 100);
	assert_int_equal(rl_read_check(x->lg, 2, 101, 201, NULL), SISY_OK);
	reopen(x);
	sisy_raftlog_state st;
	state_of(x, 2, &st);
	assert_int_equal(st.base_index, 100);
	assert_int_equal(st.base_term, 1);
	assert_int_equal(st.last_index, 200);
	assert_int_equal(rl_read_check(x->lg, 2, 101, 201, NULL), SISY_OK);
	state_of(x, 1, &st);
	assert_int_equal(st.base_index, 200);
	assert_int_equal(st.last_index, 200);
	/* Appends continue after a fully compacted log. */
	assert_int_equal(rl_append(x->lg, 1, 201, 210, 2), SISY_OK);
	assert_int_equal(sisy_raftlog_compact(x->lg, 2, 200), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	reopen(x);
	assert_int_equal(rl_read_check(x->lg, 1, 201, 211, NULL), SISY_OK);
	assert_true(rl_count_segments(x->fs, DIR) <= 3);
	/* Compacting at or below base does nothing; past last is refused. */
	assert_int_equal(sisy_raftlog_compact(x->lg, 2, 50), SISY_OK);
	assert_int_equal(sisy_raftlog_compact(x->lg, 2, 201), SISY_E_RANGE);
	assert_int_equal(sisy_raftlog_compact(x->lg, 9, 1), SISY_E_NOTFOUND);
}

static void test_snapshot(void **state)
{
	fx *x = *state;
	sisy_raftlog_state st;
	assert_int_equal(rl_append(x->lg, 1, 1, 20, 1), SISY_OK);
	/* Matching term at the index: the suffix stays. */
	assert_int_equal(sisy_raftlog_set_snapshot(x->lg, 1, 10, 1), SISY_OK);
	state_of(x, 1, &st);
	assert_int_equal(st.base_index, 10);
	assert_int_equal(st.last_index, 20);
	/* Another term at the index: the log is emptied. */
	assert_int_equal(sisy_raftlog_set_snapshot(x->lg, 1, 15, 4), SISY_OK);
	state_of(x, 1, &st);
	assert_int_equal(st.base_index, 15);
	assert_int_equal(st.base_term, 4);
	assert_int_equal(st.last_index, 15);
	assert_int_equal(st.last_term, 4);
	/* Past the end: empty, appends continue after it. */
	assert_int_equal(sisy_raftlog_set_snapshot(x->lg, 1, 50, 5), SISY_OK);
	assert_int_equal(sisy_raftlog_set_snapshot(x->lg, 1, 50, 5),
			 SISY_E_RANGE);
	assert_int_equal(rl_append(x->lg, 1, 50, 60, 5), SISY_E_RANGE);
	assert_int_equal(rl_append(x->lg, 1, 51, 60, 5), SISY_OK);
	/* A snapshot for a group never seen creates it. */
	assert_int_equal(sisy_raftlog_set_snapshot(x->lg, 4, 9, 2), SISY_OK);
	reopen(x);
	state_of(x, 1, &st);
	assert_int_equal(st.base_index, 50);
	assert_int_equal(st.base_term, 5);
	assert_int_equal(st.last_index, 60);
	assert_int_equal(rl_read_check(x->lg, 1, 51, 61, NULL), SISY_OK);
	uint64_t t;
	assert_int_equal(sisy_raftlog_term(x->lg, 1, 50, &t), SISY_OK);
	assert_int_equal(t, 5);
	assert_int_equal(sisy_raftlog_term(x->lg, 1, 49, &t), SISY_E_RANGE);
	state_of(x, 4, &st);
	assert_int_equal(st.base_index, 9);
	assert_int_equal(st.last_index, 9);
}

static void test_event_fd(void **state)
{
	fx *x = *state;
	int fd = sisy_raftlog_event_fd(x->lg);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	sisy_raftlog_durable out[4];
	size_t n;
	assert_int_equal(sisy_raftlog_drain(x->lg, out, 4, &n), SISY_OK);
	assert_int_equal(poll(&p, 1, 0), 0);
	assert_int_equal(rl_append(x->lg, 1, 1, 3, 1), SISY_OK);
	/* Wait (bounded) for the writer to report. */
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(sisy_raftlog_drain(x->lg, out, 4, &n), SISY_OK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].group, 1);
	assert_int_equal(out[0].what, SISY_RAFTLOG_DURABLE_ENTRIES);
	assert_int_equal(out[0].index, 3);
	assert_int_equal(poll(&p, 1, 0), 0);
	/* More reports than room: the fd stays readable. */
	for (uint64_t g = 1; g <= 6; g++)
		assert_int_equal(rl_append(x->lg, g, g == 1 ? 4 : 1, 4, 1),
				 SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	assert_int_equal(sisy_raftlog_drain(x->lg, out, 4, &n), SISY_OK);
	assert_int_equal(n, 4);
	assert_int_equal(poll(&p, 1, 0), 1);
	assert_int_equal(sisy_raftlog_drain(x->lg, out, 4, &n), SISY_OK);
	assert_int_equal(n, 2);
	assert_int_equal(poll(&p, 1, 0), 0);
	/* Three batches published before a drain write the fd once, not
	 * three times (a busy loop is woken once for all of them). */
	sisy_raftlog_stats st0, st1;
	sisy_raftlog_stats_get(x->lg, &st0);
	for (uint64_t i = 0; i < 3; i++) {
		assert_int_equal(rl_append(x->lg, 1, 5 + i, 5 + i, 1), SISY_OK);
		assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	}
	sisy_raftlog_stats_get(x->lg, &st1);
	assert_int_equal(st1.batches - st0.batches, 3);
	uint64_t cnt = 0;
	assert_int_equal(read(fd, &cnt, sizeof cnt), (ssize_t)sizeof cnt);
	assert_int_equal(cnt, 1);
	assert_int_equal(sisy_raftlog_drain(x->lg, out, 4, &n), SISY_OK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].index, 7);
	assert_int_equal(poll(&p, 1, 0), 0);
	/* The drain re-armed it: the next batch wakes the loop again. */
	assert_int_equal(rl_append(x->lg, 1, 8, 8, 1), SISY_OK);
	assert_int_equal(poll(&p, 1, 10000), 1);
	assert_int_equal(sisy_raftlog_drain(x->lg, out, 4, &n), SISY_OK);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].index, 8);
	assert_int_equal(poll(&p, 1, 0), 0);
}

static void test_tickets(void **state)
{
	fx *x = *state;
	uint64_t t0 = sisy_raftlog_ticket(x->lg);
	assert_int_equal(sisy_raftlog_durable_ticket(x->lg), t0);
	assert_int_equal(rl_append(x->lg, 1, 1, 5, 1), SISY_OK);
	uint64_t t1 = sisy_raftlog_ticket(x->lg);
	assert_int_equal(t1, t0 + 5); /* one per record */
	sisy_raftlog_hardstate hs = {1, 1, 5};
	assert_int_equal(sisy_raftlog_set_hardstate(x->lg, 1, &hs), SISY_OK);
	uint64_t t2 = sisy_raftlog_ticket(x->lg);
	assert_int_equal(t2, t1 + 1);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	assert_true(sisy_raftlog_durable_ticket(x->lg) >= t2);
}

static void test_bad_arguments(void **state)
{
	fx *x = *state;
	uint8_t big[600] = {0};
	sisy_raftlog_entry e = {1, 1, big, sizeof big};
	assert_int_equal(sisy_raftlog_append(x->lg, 1, &e, 1), SISY_E_TOOBIG);
	e.len = 10;
	e.term = 0;
	assert_int_equal(sisy_raftlog_append(x->lg, 1, &e, 1), SISY_E_INVAL);
	e.term = 2;
	e.index = 2;
	assert_int_equal(sisy_raftlog_append(x->lg, 1, &e, 1), SISY_E_RANGE);
	assert_non_null(strstr(sisy_errmsg(), "group 1"));
	e.index = 1;
	assert_int_equal(sisy_raftlog_append(x->lg, 1, &e, 1), SISY_OK);
	sisy_raftlog_entry two[2] = {{2, 2, big, 1}, {4, 2, big, 1}};
	assert_int_equal(sisy_raftlog_append(x->lg, 1, two, 2), SISY_E_INVAL);
	two[1].index = 3;
	two[1].term = 1; /* terms must not go down */
	assert_int_equal(sisy_raftlog_append(x->lg, 1, two, 2), SISY_E_INVAL);
	e = (sisy_raftlog_entry){2, 1, big, 1}; /* term 1 after term 2 */
	assert_int_equal(sisy_raftlog_append(x->lg, 1, &e, 1), SISY_E_INVAL);
	sisy_raftlog_state st;
	assert_int_equal(sisy_raftlog_state_of(x->lg, 7, &st), SISY_E_NOTFOUND);
	sisy_raftlog_entries es;
	assert_int_equal(sisy_raftlog_read(x->lg, 7, 1, 2, 10, &es),
			 SISY_E_NOTFOUND);
	assert_int_equal(sisy_raftlog_read(x->lg, 1, 0, 2, 10, &es),
			 SISY_E_RANGE);
	assert_int_equal(sisy_raftlog_read(x->lg, 1, 1, 1, 10, &es), SISY_OK);
	assert_int_equal(es.n, 0);
	sisy_raftlog_entries_free(&es);
	/* A second open of the same directory is refused. */
	sisy_raftlog *other;
	assert_int_equal(sisy_raftlog_open(&x->o, &other), SISY_E_LOCKED);
	sisy_raftlog_opts o = x->o;
	o.segment_bytes = 10;
	assert_int_equal(sisy_raftlog_open(&o, &other), SISY_E_INVAL);
}

/* Appenders on several threads (one group each) while a reader reads. */
typedef struct par {
	sisy_raftlog *lg;
	uint64_t g;
	int rc;
} par;

static void *appender(void *arg)
{
	par *p = arg;
	for (uint64_t i = 1; i <= 300 && p->rc == 0; i++) {
		sisy_err rc;
		while ((rc = rl_append(p->lg, p->g, i, i, 1)) == SISY_E_BUSY)
			sisy_raftlog_flush(p->lg);
		if (rc != SISY_OK)
			p->rc = 1;
		if (i % 10 == 0 &&
		    rl_read_check(p->lg, p->g, i - 9, i + 1, NULL) != SISY_OK)
			p->rc = 2;
	}
	return NULL;
}

static void test_threads(void **state)
{
	fx *x = *state;
	pthread_t t[4];
	par p[4];
	for (int i = 0; i < 4; i++) {
		p[i] = (par){x->lg, (uint64_t)i + 1, 0};
		assert_int_equal(pthread_create(&t[i], NULL, appender, &p[i]),
				 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(p[i].rc, 0);
	}
	reopen(x);
	for (uint64_t g = 1; g <= 4; g++)
		assert_int_equal(rl_read_check(x->lg, g, 1, 301, NULL),
				 SISY_OK);
}

/* unsafe_no_fsync (benchmarks only): entries are still reported durable,
 * in order, but a machine crash loses what the default would have kept. The
 * same sequence with the default options is the control: it keeps them. */
static uint64_t crash_after_three(fx *x, bool unsafe, uint64_t *reported)
{
	sisy_raftlog_durable d[8] = {0};
	x->o.unsafe_no_fsync = unsafe;
	reopen(x);
	sisy_raftlog_state st = {0};
	/* group 1 exists from the second round on */
	(void)sisy_raftlog_state_of(x->lg, 1, &st);
	uint64_t from = st.last_index + 1;
	/* Three small entries: no segment roll (which would sync) between
	 * them and the crash. */
	assert_int_equal(rl_append(x->lg, 1, from, from + 2, 1), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	drain_all(x, d);
	*reported = d[1].index;
	sisy_fs_fault_crash(x->ff);
	sisy_raftlog_close(x->lg); /* may fail: the disk is gone */
	x->lg = NULL;
	sisy_fs_fault_restart(x->ff);
	reopen(x);
	state_of(x, 1, &st);
	return st.last_index;
}

static void test_unsafe_no_fsync(void **state)
{
	fx *x = *state;
	uint64_t reported;
	sisy_fs_fault_set_torn_writes(x->ff, false);
	assert_int_equal(crash_after_three(x, false, &reported), 3);
	assert_int_equal(reported, 3);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 4, NULL), SISY_OK);
	/* Reported durable as with the default, but not on the disk. */
	assert_int_equal(crash_after_three(x, true, &reported), 3);
	assert_int_equal(reported, 6);
	/* Without a crash nothing is lost: it reads back after a reopen. */
	assert_int_equal(rl_append(x->lg, 1, 4, 6, 1), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	reopen(x);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 7, NULL), SISY_OK);
}

/* unsafe_no_fsync: the caller writes the rounds (sisy_raftlog_write_now),
 * on its own thread, across a segment roll: reported at once, in order,
 * and all of it reads back after a reopen. */
static void test_unsafe_write_now(void **state)
{
	fx *x = *state;
	x->o.unsafe_no_fsync = true;
	x->o.segment_bytes = 16 << 10; /* a few rolls */
	reopen(x);
	int fd = sisy_raftlog_event_fd(x->lg);
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t next = 1;
	for (int round = 0; round < 40; round++) {
		assert_int_equal(rl_append(x->lg, 1, next, next + 9, 1),
				 SISY_OK);
		next += 10;
		sisy_raftlog_write_now(x->lg);
		/* published before write_now returned: no waiting */
		assert_int_equal(poll(&p, 1, 0), 1);
		sisy_raftlog_durable d[8] = {0};
		drain_all(x, d);
		assert_true(d[1].what & SISY_RAFTLOG_DURABLE_ENTRIES);
		assert_int_equal(d[1].index, next - 1);
		assert_int_equal(sisy_raftlog_durable_ticket(x->lg),
				 sisy_raftlog_ticket(x->lg));
	}
	sisy_raftlog_stats st;
	sisy_raftlog_stats_get(x->lg, &st);
	assert_true(st.segments > 2);
	reopen(x);
	assert_int_equal(rl_read_check(x->lg, 1, 1, next, NULL), SISY_OK);
	/* With the default options it is not the caller's to do: a no-op,
	 * the writer thread does the round. */
	x->o.unsafe_no_fsync = false;
	reopen(x);
	assert_int_equal(rl_append(x->lg, 1, next, next, 1), SISY_OK);
	sisy_raftlog_write_now(x->lg);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	reopen(x);
	assert_int_equal(rl_read_check(x->lg, 1, 1, next + 1, NULL), SISY_OK);
}

/* The queue's byte count goes back to zero once everything is written: a
 * round that gave back less than it took would leave the log refusing
 * appends (SISY_E_BUSY) after a few hundred records, with nothing queued.
 * Records of two groups and hard states share each round. */
static void test_queue_bytes_return(void **state)
{
	fx *x = *state;
	x->o.queue_bytes = 1024; /* about two records of the largest size */
	reopen(x);
	for (uint64_t i = 1; i <= 300; i++) {
		sisy_raftlog_hardstate hs = {i, 0, 0};
		assert_int_equal(rl_append(x->lg, 1, i, i, 1), SISY_OK);
		assert_int_equal(sisy_raftlog_set_hardstate(x->lg, 2, &hs),
				 SISY_OK);
		assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	}
	/* and through the caller's rounds */
	x->o.unsafe_no_fsync = true;
	reopen(x);
	for (uint64_t i = 301; i <= 600; i++) {
		assert_int_equal(rl_append(x->lg, 1, i, i, 1), SISY_OK);
		assert_int_equal(rl_append(x->lg, 3, i - 300, i - 300, 2),
				 SISY_OK);
		sisy_raftlog_write_now(x->lg);
	}
	reopen(x);
	assert_int_equal(rl_read_check(x->lg, 1, 1, 601, NULL), SISY_OK);
	sisy_raftlog_state st;
	state_of(x, 2, &st);
	assert_true(st.has_hardstate);
	assert_int_equal(st.hs.term, 300);
}

/* One round holding the records of several groups interleaved (A A B A C
 * B ...), through the caller's rounds: every group's entries, hard state
 * and durability report come out as written, after a reopen too. */
static void test_interleaved_groups_one_round(void **state)
{
	fx *x = *state;
	x->o.unsafe_no_fsync = true;
	x->o.batch_bytes = 1 << 20; /* everything in one round */
	reopen(x);
	static const uint64_t order[] = {1, 1, 2, 1, 3, 2, 2, 4, 1, 4, 3, 3};
	uint64_t next[5] = {0, 1, 1, 1, 1};
	for (int rep = 0; rep < 20; rep++) {
		for (size_t k = 0; k < sizeof order / sizeof *order; k++) {
			uint64_t g = order[k];
			assert_int_equal(
			    rl_append(x->lg, g, next[g], next[g], g), SISY_OK);
			next[g]++;
			if (k == 5) {
				sisy_raftlog_hardstate hs = {g + (uint64_t)rep,
							     g, next[g] - 1};
				assert_int_equal(
				    sisy_raftlog_set_hardstate(x->lg, g, &hs),
				    SISY_OK);
			}
		}
		sisy_raftlog_write_now(x->lg);
		sisy_raftlog_durable d[8] = {0};
		drain_all(x, d);
		for (uint64_t g = 1; g <= 4; g++) {
			assert_true(d[g].what & SISY_RAFTLOG_DURABLE_ENTRIES);
			assert_int_equal(d[g].index, next[g] - 1);
			assert_int_equal(d[g].term, g);
		}
		assert_true(d[2].what & SISY_RAFTLOG_DURABLE_HARDSTATE);
		assert_int_equal(d[2].hs.term, 2 + (uint64_t)rep);
	}
	for (int pass = 0; pass < 2; pass++) {
		for (uint64_t g = 1; g <= 4; g++) {
			sisy_raftlog_state st;
			state_of(x, g, &st);
			assert_int_equal(st.last_index, next[g] - 1);
			assert_int_equal(
			    rl_read_check(x->lg, g, 1, next[g], NULL), SISY_OK);
		}
		sisy_raftlog_state st;
		state_of(x, 2, &st);
		assert_true(st.has_hardstate);
		assert_int_equal(st.hs.term, 2 + 19);
		reopen(x);
	}
}

/* Appends refused under the lock (wrong place, queue full) give back the
 * copies made for them: big payloads are copied before the lock is taken
 * (LeakSanitizer and valgrind see any that is kept), small ones after the
 * checks. The log is unchanged by them. */
static void test_refused_appends_keep_nothing(void **state)
{
	fx *x = *state;
	x->o.max_entry_bytes = 64 << 10;
	x->o.segment_bytes = 1 << 20;
	reopen(x);
	static uint8_t big[40 << 10];
	memset(big, 0xab, sizeof big);
	sisy_raftlog_entry e[2] = {
	    {.index = 5, .term = 2, .data = big, .len = sizeof big},
	    {.index = 6, .term = 2, .data = big, .len = 10}};
	/* past the end (the log is empty) */
	assert_int_equal(sisy_raftlog_append(x->lg, 1, e, 2), SISY_E_RANGE);
	assert_int_equal(rl_append(x->lg, 1, 1, 3, 2), SISY_OK);
	/* a term below the previous entry's */
	e[0] = (sisy_raftlog_entry){
	    .index = 4, .term = 1, .data = big, .len = sizeof big};
	e[1] =
	    (sisy_raftlog_entry){.index = 5, .term = 1, .data = big, .len = 10};
	assert_int_equal(sisy_raftlog_append(x->lg, 1, e, 2), SISY_E_INVAL);
	sisy_raftlog_state st;
	state_of(x, 1, &st);
	assert_int_equal(st.last_index, 3);
	e[0].term = e[1].term = 2;
	assert_int_equal(sisy_raftlog_append(x->lg, 1, e, 2), SISY_OK);
	assert_int_equal(sisy_raftlog_flush(x->lg), SISY_OK);
	reopen(x);
	state_of(x, 1, &st);
	assert_int_equal(st.last_index, 5);
	assert_int_equal(st.last_term, 2);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_append_read),
	    T(test_truncate_conflicting_suffix),
	    T(test_hardstate),
	    T(test_many_groups),
	    T(test_rollover_and_group_commit),
	    T(test_big_and_empty_entries),
	    T(test_compaction_deletes_segments),
	    T(test_snapshot),
	    T(test_event_fd),
	    T(test_tickets),
	    T(test_bad_arguments),
	    T(test_threads),
	    T(test_unsafe_no_fsync),
	    T(test_unsafe_write_now),
	    T(test_queue_bytes_return),
	    T(test_interleaved_groups_one_round),
	    T(test_refused_appends_keep_nothing),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
