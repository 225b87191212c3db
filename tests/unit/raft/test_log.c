/* Tests sisyd/raft/log.c: the in-memory log view (append, truncate,
 * compact, reset, term lookups, spans bounded by bytes and count, the term
 * searches behind conflict hints, the up-to-date check) and the entries'
 * data in shared chunks (libcommon/chunks.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "raft_int.h"
#include "rand.h"

/* Appends entries (index from, terms[k]) with 3-byte data "dNN". */
static void fill(struct raft_log *l, uint64_t from, const uint64_t *terms,
		 size_t n)
{
	for (size_t k = 0; k < n; k++) {
		char d[4] = {'d', (char)('0' + (from + k) / 10 % 10),
			     (char)('0' + (from + k) % 10), 0};
		sisy_raft_entry e = {terms[k], from + k, 0, (const uint8_t *)d,
				     3};
		assert_int_equal(raft_log_append(l, &e, 1), SISY_OK);
	}
}

static void test_append_and_lookup(void **state)
{
	(void)state;
	struct raft_log l;
	raft_log_init(&l);
	assert_int_equal(raft_log_first(&l), 1);
	assert_int_equal(raft_log_last(&l), 0);
	assert_int_equal(raft_log_last_term(&l), 0);
	uint64_t t;
	assert_true(raft_log_term(&l, 0, &t));
	assert_int_equal(t, 0);
	assert_false(raft_log_term(&l, 1, &t));
	const uint64_t terms[] = {1, 1, 2, 2, 2, 3};
	fill(&l, 1, terms, 6);
	assert_int_equal(raft_log_last(&l), 6);
	assert_int_equal(raft_log_last_term(&l), 3);
	assert_int_equal(raft_log_term_or0(&l, 4), 2);
	assert_int_equal(raft_log_term_or0(&l, 7), 0);
	assert_memory_equal(raft_log_at(&l, 5)->data, "d05", 3);
	assert_int_equal(l.bytes, 18);
	raft_log_free(&l);
}

static void test_truncate_compact_reset(void **state)
{
	(void)state;
	struct raft_log l;
	raft_log_init(&l);
	const uint64_t terms[] = {1, 1, 2, 2, 2, 3, 3, 3};
	fill(&l, 1, terms, 8);
	raft_log_truncate(&l, 7);
	assert_int_equal(raft_log_last(&l), 6);
	assert_int_equal(l.bytes, 18);
	sisy_raft_membership m = {0};
	m.voters[m.n_voters++] = 4;
	raft_log_compact(&l, 3, &m);
	assert_int_equal(raft_log_first(&l), 4);
	assert_int_equal(l.snap.index, 3);
	assert_int_equal(l.snap.term, 2);
	assert_int_equal(l.snap.membership.voters[0], 4);
	uint64_t t;
	assert_true(raft_log_term(&l, 3, &t)); /* the compaction point */
	assert_int_equal(t, 2);
	assert_false(raft_log_term(&l, 2, &t));
	assert_memory_equal(raft_log_at(&l, 4)->data, "d04", 3);
	assert_int_equal(l.bytes, 9);
	/* Appending after compaction slides the array, keeping order. */
	const uint64_t more[] = {4, 4, 4, 4, 4, 4, 4, 4, 4, 4};
	for (int i = 0; i < 10; i++)
		fill(&l, raft_log_last(&l) + 1, more, 10);
	assert_int_equal(raft_log_last(&l), 106);
	assert_memory_equal(raft_log_at(&l, 4)->data, "d04", 3);
	assert_memory_equal(raft_log_at(&l, 99)->data, "d99", 3);
	sisy_raft_snapshot_meta s = {200, 9, m};
	raft_log_reset(&l, &s);
	assert_int_equal(raft_log_first(&l), 201);
	assert_int_equal(raft_log_last(&l), 200);
	assert_int_equal(raft_log_last_term(&l), 9);
	assert_int_equal(l.bytes, 0);
	raft_log_free(&l);
}

/* Byte j of entry (index, term)'s data. */
static uint8_t pat(uint64_t index, uint64_t term, size_t j)
{
	return (uint8_t)(index * 31 + term * 7 + j);
}

/* Random appends (small pieces, pieces across chunk ends, pieces big
 * enough for a chunk of their own), truncations, compactions and resets:
 * every entry still in the log keeps its own bytes (carved from shared
 * chunks), and ASan sees nothing leak or overlap. */
static void test_data_survives_churn(void **state)
{
	(void)state;
	struct raft_log l;
	sisy_rand rnd;
	uint8_t *buf = malloc(40000);
	uint64_t term = 1;
	sisy_raft_membership m = {0};
	assert_non_null(buf);
	sisy_rand_seed(&rnd, 7);
	raft_log_init(&l);
	for (int round = 0; round < 3000; round++) {
		uint64_t r = sisy_rand_below(&rnd, 100);
		uint64_t last = raft_log_last(&l);
		if (r < 70) {
			size_t n = 1 + (size_t)sisy_rand_below(&rnd, 8);
			for (size_t k = 0; k < n; k++) {
				uint64_t big = sisy_rand_below(&rnd, 50);
				size_t len =
				    big == 0
					? 16000 + (size_t)sisy_rand_below(&rnd,
									  24000)
					: (size_t)sisy_rand_below(&rnd, 600);
				uint64_t idx = last + 1 + k;
				for (size_t j = 0; j < len; j++)
					buf[j] = pat(idx, term, j);
				sisy_raft_entry e = {term, idx, 0, buf, len};
				assert_int_equal(raft_log_append(&l, &e, 1),
						 SISY_OK);
			}
		} else if (r < 80 && last > l.snap.index) {
			term++;
			raft_log_truncate(
			    &l, l.snap.index + 1 +
				    sisy_rand_below(&rnd, last - l.snap.index));
		} else if (r < 98 && last > l.snap.index) {
			raft_log_compact(
			    &l,
			    l.snap.index + 1 +
				sisy_rand_below(&rnd, last - l.snap.index),
			    &m);
		} else if (r >= 98) {
			sisy_raft_snapshot_meta snap = {
			    .index = last + 5, .term = term, .membership = m};
			raft_log_reset(&l, &snap);
		}
		uint64_t bytes = 0;
		for (uint64_t i = raft_log_first(&l); i <= raft_log_last(&l);
		     i++) {
			const sisy_raft_entry *e = raft_log_at(&l, i);
			assert_int_equal(e->index, i);
			assert_true((e->len == 0) == (e->data == NULL));
			for (size_t j = 0; j < e->len; j++)
				assert_int_equal(e->data[j],
						 pat(i, e->term, j));
			bytes += e->len;
		}
		assert_int_equal(l.bytes, bytes);
	}
	raft_log_free(&l);
	free(buf);
}

static void test_span_bounds(void **state)
{
	(void)state;
	struct raft_log l;
	raft_log_init(&l);
	const uint64_t terms[] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	fill(&l, 1, terms, 10);
	assert_int_equal(raft_log_span(&l, 1, 10, 1000, 1000), 10);
	assert_int_equal(raft_log_span(&l, 1, 10, 1000, 4), 4);
	assert_int_equal(raft_log_span(&l, 1, 10, 9, 1000), 3);
	assert_int_equal(raft_log_span(&l, 1, 10, 8, 1000), 2);
	/* One entry always fits, however small the byte budget. */
	assert_int_equal(raft_log_span(&l, 3, 10, 1, 1000), 1);
	assert_int_equal(raft_log_span(&l, 8, 10, 1000, 1000), 3);
	assert_int_equal(raft_log_span(&l, 11, 10, 1000, 1000), 0);
	assert_int_equal(raft_log_bytes_between(&l, 2, 4), 9);
	raft_log_free(&l);
}

static void test_term_searches(void **state)
{
	(void)state;
	struct raft_log l;
	raft_log_init(&l);
	/* index:        1  2  3  4  5  6  7  8 */
	const uint64_t terms[] = {1, 1, 3, 3, 3, 5, 5, 6};
	fill(&l, 1, terms, 8);
	assert_int_equal(raft_log_first_of_term(&l, 3, 1, 8), 3);
	assert_int_equal(raft_log_first_of_term(&l, 5, 1, 8), 6);
	assert_int_equal(raft_log_first_of_term(&l, 3, 4, 8), 4);
	assert_int_equal(raft_log_first_of_term(&l, 9, 1, 8), 9);
	assert_int_equal(raft_log_last_le_term(&l, 3, 8), 5);
	assert_int_equal(raft_log_last_le_term(&l, 4, 8), 5);
	assert_int_equal(raft_log_last_le_term(&l, 3, 4), 4);
	assert_int_equal(raft_log_last_le_term(&l, 9, 8), 8);
	assert_int_equal(raft_log_last_le_term(&l, 0, 8), 0);
	sisy_raft_membership m = {0};
	raft_log_compact(&l, 4, &m);
	/* Below the compaction point the answer is unknown (0). */
	assert_int_equal(raft_log_last_le_term(&l, 2, 8), 0);
	assert_int_equal(raft_log_last_le_term(&l, 3, 8), 5);
	raft_log_free(&l);
}

static void test_up_to_date(void **state)
{
	(void)state;
	struct raft_log l;
	raft_log_init(&l);
	const uint64_t terms[] = {1, 2, 2};
	fill(&l, 1, terms, 3);
	assert_true(raft_log_up_to_date(&l, 2, 3));
	assert_true(raft_log_up_to_date(&l, 2, 4));
	assert_true(raft_log_up_to_date(&l, 3, 1)); /* higher term wins */
	assert_false(raft_log_up_to_date(&l, 2, 2));
	assert_false(raft_log_up_to_date(&l, 1, 9));
	raft_log_free(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_append_and_lookup),
	    cmocka_unit_test(test_truncate_compact_reset),
	    cmocka_unit_test(test_data_survives_churn),
	    cmocka_unit_test(test_span_bounds),
	    cmocka_unit_test(test_term_searches),
	    cmocka_unit_test(test_up_to_date),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
