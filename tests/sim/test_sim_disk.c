/* Tests tests/sim/sim_disk.c, the simulator's disk model: the durability
 * checks are only as good as this model, so it must lose exactly what was
 * not synced (or a prefix of it) and never what was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sim.h"

static sim *new_sim(uint64_t seed)
{
	sim *s = calloc(1, sizeof *s);
	assert_non_null(s);
	sisy_rand_seed(&s->rand, seed);
	return s;
}

/* A ready carrying entries [from, from + n) of `term`, hard state
 * (term, 0, commit) and persist id `id`. */
typedef struct fake_ready {
	sisy_raft_ready rd;
	sisy_raft_entry ents[8];
	uint8_t data[8];
} fake_ready;

static void make_ready(fake_ready *f, uint64_t from, size_t n, uint64_t term,
		       uint64_t commit, uint64_t id)
{
	memset(f, 0, sizeof *f);
	assert_true(n <= 8);
	for (size_t i = 0; i < n; i++) {
		f->data[i] = (uint8_t)(from + i);
		f->ents[i] = (sisy_raft_entry){
		    term, from + i, SISY_RAFT_ENTRY_NORMAL, &f->data[i], 1};
	}
	f->rd.persist_id = id;
	f->rd.entries = n ? f->ents : NULL;
	f->rd.n_entries = n;
	f->rd.has_hard_state = 1;
	f->rd.hard_state = (sisy_raft_hard_state){term, 0, commit};
}

static void write_ready(sim_disk *d, fake_ready *f)
{
	sim_ckpt none;
	memset(&none, 0, sizeof none);
	sim_disk_write(d, &f->rd, &none);
}

static void test_sync_makes_durable(void **state)
{
	(void)state;
	sim *s = new_sim(1);
	sim_disk d;
	memset(&d, 0, sizeof d);
	fake_ready f;
	make_ready(&f, 1, 3, 1, 0, 7);
	write_ready(&d, &f);
	assert_int_equal(sim_disk_last(&d), 0); /* written, not synced */
	assert_true(sim_disk_sync_begin(&d));
	assert_false(sim_disk_sync_begin(&d)); /* one at a time */
	/* Written during the sync: not covered by it. */
	make_ready(&f, 4, 2, 1, 3, 8);
	write_ready(&d, &f);
	assert_int_equal(sim_disk_sync_done(&d, s, 1), 7);
	assert_int_equal(sim_disk_last(&d), 3);
	assert_int_equal(sim_disk_term(&d, 3), 1);
	assert_true(d.hs.commit == 0);
	assert_true(sim_disk_sync_begin(&d));
	assert_int_equal(sim_disk_sync_done(&d, s, 1), 8);
	assert_int_equal(sim_disk_last(&d), 5);
	assert_true(d.hs.commit == 3);
	assert_false(s->violated);
	sim_disk_free(&d);
	free(s);
}

static void test_append_truncates_conflicts(void **state)
{
	(void)state;
	sim *s = new_sim(2);
	sim_disk d;
	memset(&d, 0, sizeof d);
	fake_ready f;
	make_ready(&f, 1, 5, 1, 0, 1);
	write_ready(&d, &f);
	make_ready(&f, 3, 1, 2, 0, 2); /* a new term's entry at 3 */
	write_ready(&d, &f);
	assert_true(sim_disk_sync_begin(&d));
	assert_int_equal(sim_disk_sync_done(&d, s, 1), 2);
	assert_int_equal(sim_disk_last(&d), 3);
	assert_int_equal(sim_disk_term(&d, 2), 1);
	assert_int_equal(sim_disk_term(&d, 3), 2);
	/* A hole is the core's fault, reported as a violation. */
	make_ready(&f, 9, 1, 2, 0, 3);
	write_ready(&d, &f);
	assert_true(sim_disk_sync_begin(&d));
	sim_disk_sync_done(&d, s, 1);
	assert_true(s->violated);
	assert_string_equal(s->property, "durable-log");
	sim_disk_free(&d);
	free(s);
}

static void test_crash_keeps_synced_and_a_prefix(void **state)
{
	(void)state;
	int lost_all = 0, kept_some = 0;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		sim *s = new_sim(seed);
		sim_disk d;
		memset(&d, 0, sizeof d);
		fake_ready f;
		make_ready(&f, 1, 2, 1, 0, 1);
		write_ready(&d, &f);
		assert_true(sim_disk_sync_begin(&d));
		sim_disk_sync_done(&d, s, 1);
		make_ready(&f, 3, 4, 2, 2, 2); /* never synced */
		write_ready(&d, &f);
		sim_disk_crash(&d, s, 1);
		uint64_t last = sim_disk_last(&d);
		/* Synced data survives; unsynced data survives only as a
		 * prefix of what was written, in order. */
		assert_true(last >= 2 && last <= 6);
		for (uint64_t i = 1; i <= last; i++)
			assert_int_equal(sim_disk_term(&d, i), i <= 2 ? 1 : 2);
		assert_int_equal(d.npend, 0);
		assert_true(d.hs.term == 1 || (d.hs.term == 2 && last == 6));
		lost_all += last == 2;
		kept_some += last > 2;
		sim_disk_free(&d);
		free(s);
	}
	assert_true(lost_all > 0 && kept_some > 0);
}

static void test_snapshot_and_compaction(void **state)
{
	(void)state;
	sim *s = new_sim(3);
	sim_disk d;
	memset(&d, 0, sizeof d);
	fake_ready f;
	make_ready(&f, 1, 6, 1, 6, 1);
	write_ready(&d, &f);
	assert_true(sim_disk_sync_begin(&d));
	sim_disk_sync_done(&d, s, 1);
	/* Compaction: checkpoint first, then the entries it covers go. */
	sim_ckpt ck;
	memset(&ck, 0, sizeof ck);
	ck.meta.index = 4;
	ck.meta.term = 1;
	ck.kv.val[0] = 42;
	sim_disk_compact(&d, &ck);
	assert_int_equal(d.base.index, 4);
	assert_int_equal(d.ckpt.kv.val[0], 42);
	assert_int_equal(sim_disk_last(&d), 6);
	assert_int_equal(sim_disk_term(&d, 3), 0); /* compacted */
	assert_int_equal(sim_disk_term(&d, 4), 1); /* the base */
	/* Installing a snapshot replaces the checkpoint and empties the
	 * log, once synced; until then the old state stays durable. */
	memset(&f, 0, sizeof f);
	sim_ckpt snap;
	memset(&snap, 0, sizeof snap);
	snap.meta.index = 20;
	snap.meta.term = 3;
	snap.kv.val[1] = 7;
	f.rd.persist_id = 2;
	f.rd.snapshot = &snap.meta;
	sim_disk_write(&d, &f.rd, &snap);
	assert_true(sim_disk_snap_pending(&d));
	assert_int_equal(sim_disk_newest_ckpt(&d)->meta.index, 20);
	assert_int_equal(d.ckpt.meta.index, 4);
	assert_true(sim_disk_sync_begin(&d));
	assert_int_equal(sim_disk_sync_done(&d, s, 1), 2);
	assert_int_equal(d.ckpt.meta.index, 20);
	assert_int_equal(d.ckpt.kv.val[1], 7);
	assert_int_equal(sim_disk_last(&d), 20);
	assert_false(sim_disk_snap_pending(&d));
	sim_disk_free(&d);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_sync_makes_durable),
	    cmocka_unit_test(test_append_truncates_conflicts),
	    cmocka_unit_test(test_crash_keeps_synced_and_a_prefix),
	    cmocka_unit_test(test_snapshot_and_compaction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
