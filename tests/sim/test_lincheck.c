/* Tests tests/sim/lincheck.c, lincheck_search.c and lincheck_json.c: hand
 * written histories that must be accepted or rejected, budget and memory
 * exhaustion, random histories generated linearizable by construction, and
 * the JSON-lines format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"
#include "rand.h"

/* --- building histories --------------------------------------------------- */

static void add(sisy_lincheck_history *h, uint64_t client,
		sisy_lincheck_kind kind, sisy_lincheck_outcome outcome,
		const char *key, const char *value, int64_t call, int64_t ret)
{
	sisy_lincheck_op op;
	memset(&op, 0, sizeof op);
	op.client = client;
	op.kind = kind;
	op.outcome = outcome;
	op.key = sisy_slice_str(key);
	op.has_value = value != NULL;
	if (value)
		op.value = sisy_slice_str(value);
	op.call = call;
	op.ret = ret;
	assert_int_equal(sisy_lincheck_add(h, &op), SISY_OK);
}

static void put(sisy_lincheck_history *h, uint64_t c, const char *k,
		const char *v, int64_t call, int64_t ret)
{
	add(h, c, SISY_LINCHECK_PUT, SISY_LINCHECK_OK, k, v, call, ret);
}

/* v NULL: the get found the key absent. */
static void get(sisy_lincheck_history *h, uint64_t c, const char *k,
		const char *v, int64_t call, int64_t ret)
{
	add(h, c, SISY_LINCHECK_GET, SISY_LINCHECK_OK, k, v, call, ret);
}

static void del(sisy_lincheck_history *h, uint64_t c, const char *k,
		int64_t call, int64_t ret)
{
	add(h, c, SISY_LINCHECK_DEL, SISY_LINCHECK_OK, k, NULL, call, ret);
}

static void put_unknown(sisy_lincheck_history *h, uint64_t c, const char *k,
			const char *v, int64_t call)
{
	add(h, c, SISY_LINCHECK_PUT, SISY_LINCHECK_UNKNOWN_OUTCOME, k, v, call,
	    0);
}

static void put_failed(sisy_lincheck_history *h, uint64_t c, const char *k,
		       const char *v, int64_t call, int64_t ret)
{
	add(h, c, SISY_LINCHECK_PUT, SISY_LINCHECK_FAILED, k, v, call, ret);
}

static void cas(sisy_lincheck_history *h, uint64_t c, const char *k,
		const char *expect, const char *v, bool swapped,
		sisy_lincheck_outcome outcome, int64_t call, int64_t ret)
{
	sisy_lincheck_op op;
	memset(&op, 0, sizeof op);
	op.client = c;
	op.kind = SISY_LINCHECK_CAS;
	op.outcome = outcome;
	op.key = sisy_slice_str(k);
	op.has_expect = expect != NULL;
	if (expect)
		op.expect = sisy_slice_str(expect);
	op.has_value = true;
	op.value = sisy_slice_str(v);
	op.swapped = swapped;
	op.call = call;
	op.ret = ret;
	assert_int_equal(sisy_lincheck_add(h, &op), SISY_OK);
}

static sisy_lincheck_verdict verdict_of(sisy_lincheck_history *h)
{
	sisy_lincheck_result res;
	sisy_lincheck_check(h, NULL, &res);
	return res.verdict;
}

static sisy_lincheck_history *fresh(void **state)
{
	sisy_lincheck_history *h = sisy_lincheck_history_new();
	assert_non_null(h);
	*state = h;
	return h;
}

static int teardown(void **state)
{
	sisy_lincheck_history_free(*state);
	return 0;
}

#define LIN    SISY_LINCHECK_LINEARIZABLE
#define NOTLIN SISY_LINCHECK_NOT_LINEARIZABLE

/* --- accepted ------------------------------------------------------------- */

static void test_empty_and_sequential(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	assert_int_equal(verdict_of(h), LIN);
	get(h, 1, "k", NULL, 0, 5);
	put(h, 1, "k", "a", 10, 20);
	get(h, 1, "k", "a", 30, 40);
	del(h, 1, "k", 50, 60);
	get(h, 2, "k", NULL, 70, 80);
	put(h, 2, "k", "b", 90, 95);
	get(h, 1, "k", "b", 100, 110);
	assert_int_equal(verdict_of(h), LIN);
}

static void test_concurrent_read_sees_either(void **state)
{
	/* A read overlapping a write may see the old or the new value. */
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	put(h, 1, "k", "b", 20, 100);
	get(h, 2, "k", "a", 30, 40);
	get(h, 3, "k", "b", 30, 40);
	/* Both: the old one read before the write took effect, the other
	 * after, all inside [30, 40]. */
	assert_int_equal(verdict_of(h), LIN);
	sisy_lincheck_history_free(h);

	h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	put(h, 1, "k", "b", 20, 100);
	get(h, 2, "k", "a", 30, 40);
	get(h, 3, "k", "b", 50, 60);
	assert_int_equal(verdict_of(h), LIN);
	sisy_lincheck_history_free(h);

	h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	put(h, 1, "k", "b", 20, 100);
	get(h, 3, "k", "b", 30, 40);
	assert_int_equal(verdict_of(h), LIN);
}

static void test_concurrent_writes_either_order(void **state)
{
	/* Two overlapping writes: later reads may agree on either winner. */
	const char *winner[] = {"a", "b"};
	for (int w = 0; w < 2; w++) {
		sisy_lincheck_history *h = fresh(state);
		put(h, 1, "k", "a", 0, 10);
		put(h, 2, "k", "b", 5, 15);
		get(h, 3, "k", winner[w], 20, 30);
		get(h, 1, "k", winner[w], 40, 50);
		assert_int_equal(verdict_of(h), LIN);
		sisy_lincheck_history_free(h);
		*state = NULL;
	}
}

static void test_equal_times_are_concurrent(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	get(h, 2, "k", NULL, 10, 20); /* touches the put's response */
	assert_int_equal(verdict_of(h), LIN);
	sisy_lincheck_history_free(h);

	h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	get(h, 2, "k", NULL, 11, 20); /* strictly after: must see "a" */
	assert_int_equal(verdict_of(h), NOTLIN);
}

static void test_unknown_write_applied(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	put_unknown(h, 2, "k", "x", 20);
	get(h, 3, "k", "x", 1000, 1010); /* took effect, late */
	get(h, 3, "k", "x", 2000, 2010);
	assert_int_equal(verdict_of(h), LIN);
}

static void test_unknown_write_not_applied(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	put_unknown(h, 2, "k", "x", 20);
	get(h, 3, "k", "a", 1000, 1010);
	get(h, 3, "k", "a", 2000, 2010);
	assert_int_equal(verdict_of(h), LIN);
}

static void test_unknown_write_observed_by_cas(void **state)
{
	/* The unknown put must be kept for the cas expecting its value. */
	sisy_lincheck_history *h = fresh(state);
	put_unknown(h, 1, "k", "x", 0);
	cas(h, 2, "k", "x", "y", true, SISY_LINCHECK_OK, 50, 60);
	get(h, 2, "k", "y", 70, 80);
	assert_int_equal(verdict_of(h), LIN);
}

static void test_cas_semantics(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	cas(h, 1, "k", NULL, "a", true, SISY_LINCHECK_OK, 0, 10);
	cas(h, 1, "k", "z", "b", false, SISY_LINCHECK_OK, 20, 30);
	get(h, 1, "k", "a", 40, 50);
	cas(h, 1, "k", "a", "c", true, SISY_LINCHECK_OK, 60, 70);
	get(h, 2, "k", "c", 80, 90);
	assert_int_equal(verdict_of(h), LIN);
	sisy_lincheck_history_free(h);

	/* A cas that failed its condition when the condition held. */
	h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	cas(h, 1, "k", "a", "b", false, SISY_LINCHECK_OK, 20, 30);
	assert_int_equal(verdict_of(h), NOTLIN);
	sisy_lincheck_history_free(h);

	/* A swap that could not have happened. */
	h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	cas(h, 1, "k", "q", "b", true, SISY_LINCHECK_OK, 20, 30);
	assert_int_equal(verdict_of(h), NOTLIN);
	sisy_lincheck_history_free(h);

	/* An unknown cas applies only when its condition held. */
	h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	cas(h, 2, "k", "q", "b", false, SISY_LINCHECK_UNKNOWN_OUTCOME, 20, 0);
	get(h, 1, "k", "b", 100, 110);
	assert_int_equal(verdict_of(h), NOTLIN);
}

static void test_keys_are_independent(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "a", "1", 0, 10);
	put(h, 2, "b", "2", 0, 10);
	get(h, 1, "b", "2", 20, 30);
	get(h, 2, "a", "1", 20, 30);
	get(h, 3, "c", NULL, 0, 30);
	assert_int_equal(verdict_of(h), LIN);
	/* A violation on one key makes the whole history fail. */
	get(h, 3, "b", NULL, 40, 50);
	sisy_lincheck_result res;
	sisy_lincheck_check(h, NULL, &res);
	assert_int_equal(res.verdict, NOTLIN);
	assert_int_equal(res.keys, 3);
	assert_non_null(strstr(res.detail, "key \"b\""));
}

/* --- rejected ------------------------------------------------------------- */

static void test_stale_read(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	put(h, 1, "k", "b", 20, 30);
	get(h, 2, "k", "a", 40, 50);
	sisy_lincheck_result res;
	sisy_lincheck_check(h, NULL, &res);
	assert_int_equal(res.verdict, NOTLIN);
	/* The report names the read that could not be placed. */
	assert_non_null(strstr(res.detail, "get -> \"a\" [40, 50]"));
}

static void test_lost_write(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	get(h, 2, "k", NULL, 20, 30);
	assert_int_equal(verdict_of(h), NOTLIN);
}

static void test_read_of_never_written_value(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	get(h, 2, "k", "ghost", 0, 30);
	assert_int_equal(verdict_of(h), NOTLIN);
}

static void test_read_before_write_invoked(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	get(h, 2, "k", "a", 0, 10);
	put(h, 1, "k", "a", 20, 30);
	assert_int_equal(verdict_of(h), NOTLIN);
	sisy_lincheck_history_free(h);
	/* Also for an unknown write: it can only act after its call. */
	h = fresh(state);
	get(h, 2, "k", "x", 0, 10);
	put_unknown(h, 1, "k", "x", 20);
	assert_int_equal(verdict_of(h), NOTLIN);
}

static void test_concurrent_writes_disagreeing_reads(void **state)
{
	/* Either order of two concurrent writes is fine, but not both. */
	const char *first[] = {"a", "b"}, *second[] = {"b", "a"};
	for (int w = 0; w < 2; w++) {
		sisy_lincheck_history *h = fresh(state);
		put(h, 1, "k", "a", 0, 10);
		put(h, 2, "k", "b", 5, 15);
		get(h, 3, "k", first[w], 20, 30);
		get(h, 3, "k", second[w], 40, 50);
		assert_int_equal(verdict_of(h), NOTLIN);
		sisy_lincheck_history_free(h);
		*state = NULL;
	}
}

static void test_new_then_old_inversion(void **state)
{
	/* Once a read saw the new value, a later read may not see the old. */
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	put(h, 1, "k", "b", 20, 200);
	get(h, 2, "k", "b", 30, 40);
	get(h, 3, "k", "a", 50, 60);
	assert_int_equal(verdict_of(h), NOTLIN);
}

static void test_unknown_write_applied_then_vanished(void **state)
{
	/* An unknown write may happen or not, but not both. */
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	put_unknown(h, 2, "k", "x", 20);
	get(h, 3, "k", "x", 100, 110);
	get(h, 3, "k", "a", 200, 210);
	assert_int_equal(verdict_of(h), NOTLIN);
}

static void test_failed_write_never_applies(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	put(h, 1, "k", "a", 0, 10);
	put_failed(h, 2, "k", "x", 20, 30);
	get(h, 3, "k", "a", 40, 50);
	assert_int_equal(verdict_of(h), LIN);
	get(h, 3, "k", "x", 60, 70);
	assert_int_equal(verdict_of(h), NOTLIN);
}

/* --- exhaustion ----------------------------------------------------------- */

/* n concurrent puts, then reads that no order explains: the search must
 * look at every subset before it can say no. */
static void build_hard(sisy_lincheck_history *h, int n)
{
	char v[16];
	for (int i = 0; i < n; i++) {
		snprintf(v, sizeof v, "v%d", i);
		put(h, (uint64_t)i, "k", v, 0, 100);
	}
	get(h, 99, "k", "v0", 200, 210);
	get(h, 99, "k", "v1", 220, 230);
}

static void test_budget_exhaustion_is_unknown(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	build_hard(h, 12);
	sisy_lincheck_result res;
	sisy_lincheck_opts all = {.search_only = true};
	sisy_lincheck_check(h, &all, &res);
	assert_int_equal(res.verdict, NOTLIN); /* decidable with room */
	uint64_t needed = res.steps;
	assert_true(needed > 1000);

	sisy_lincheck_opts opts = {.max_steps = needed / 2,
				   .search_only = true};
	sisy_lincheck_check(h, &opts, &res);
	assert_int_equal(res.verdict, SISY_LINCHECK_UNKNOWN);
	assert_true(res.steps <= needed / 2);
	assert_non_null(strstr(res.detail, "step budget exhausted"));

	/* The zones decide this register history without searching; the
	 * exhausted search only loses the finer explanation. */
	opts.search_only = false;
	sisy_lincheck_check(h, &opts, &res);
	assert_int_equal(res.verdict, NOTLIN);
	assert_non_null(strstr(res.detail, "(zones)"));
}

static void test_memory_exhaustion_is_unknown(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	build_hard(h, 14);
	sisy_lincheck_opts opts = {.max_memory = 64 * 1024,
				   .search_only = true};
	sisy_lincheck_result res;
	sisy_lincheck_check(h, &opts, &res);
	assert_int_equal(res.verdict, SISY_LINCHECK_UNKNOWN);
	assert_non_null(strstr(res.detail, "memory exhausted"));
}

static void test_unknown_never_hides_a_violation(void **state)
{
	/* A violation on one key wins over exhaustion on another. */
	sisy_lincheck_history *h = fresh(state);
	build_hard(h, 12);
	put(h, 1, "z", "a", 0, 10);
	get(h, 1, "z", "b", 20, 30);
	sisy_lincheck_opts opts = {.max_steps = 500, .search_only = true};
	sisy_lincheck_result res;
	sisy_lincheck_check(h, &opts, &res);
	assert_int_equal(res.verdict, NOTLIN);
}

/* --- random histories, linearizable by construction ----------------------- */

/* Clients run one op at a time; each op takes effect at a random instant
 * inside [call, ret] and the register's value at that instant is what a
 * get returns. Unknown writes take effect or not (coin flip). */
static void gen_history(sisy_rand *r, sisy_lincheck_history *h, int nops,
			int nkeys, int *victim)
{
	enum { NCLIENTS = 4 };
	int64_t clock[NCLIENTS] = {0};
	/* Pick each op's interval first, then apply the effects in order of
	 * their instants. */
	typedef struct gop {
		int client, key, kind, applied, unknown;
		int64_t call, ret, at;
		int value;
	} gop;
	gop *g = calloc((size_t)nops, sizeof *g);
	assert_non_null(g);
	for (int i = 0; i < nops; i++) {
		int c = (int)sisy_rand_below(r, NCLIENTS);
		g[i].client = c;
		g[i].key = (int)sisy_rand_below(r, (uint64_t)nkeys);
		g[i].kind = (int)sisy_rand_below(r, 3); /* put, get, del */
		g[i].call = clock[c] + (int64_t)sisy_rand_below(r, 20);
		g[i].ret = g[i].call + 1 + (int64_t)sisy_rand_below(r, 50);
		g[i].at =
		    g[i].call + (int64_t)sisy_rand_below(
				    r, (uint64_t)(g[i].ret - g[i].call + 1));
		g[i].unknown = g[i].kind != 1 && sisy_rand_chance(r, 1, 8);
		g[i].applied = !g[i].unknown || sisy_rand_chance(r, 1, 2);
		g[i].value = i;
		clock[c] = g[i].ret + 1;
	}
	/* Instants are distinct after ordering by (at, index). */
	int *order = malloc((size_t)nops * sizeof *order);
	assert_non_null(order);
	for (int i = 0; i < nops; i++)
		order[i] = i;
	for (int i = 1; i < nops; i++)
		for (int j = i; j > 0 && (g[order[j]].at < g[order[j - 1]].at);
		     j--) {
			int t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	int regs[8];
	for (int k = 0; k < 8; k++)
		regs[k] = -1;
	for (int i = 0; i < nops; i++) {
		gop *o = &g[order[i]];
		if (o->kind == 1)
			o->value = regs[o->key];
		else if (o->applied)
			regs[o->key] = o->kind == 0 ? o->value : -1;
	}
	*victim = -1;
	for (int i = 0; i < nops; i++) {
		char key[8], val[16];
		snprintf(key, sizeof key, "k%d", g[i].key);
		snprintf(val, sizeof val, "v%d", g[i].value);
		sisy_lincheck_kind kinds[] = {
		    SISY_LINCHECK_PUT, SISY_LINCHECK_GET, SISY_LINCHECK_DEL};
		int absent =
		    g[i].kind == 2 || (g[i].kind == 1 && g[i].value < 0);
		add(h, (uint64_t)g[i].client, kinds[g[i].kind],
		    g[i].unknown ? SISY_LINCHECK_UNKNOWN_OUTCOME
				 : SISY_LINCHECK_OK,
		    key, absent ? NULL : val, g[i].call, g[i].ret);
		if (g[i].kind == 1 && *victim < 0 && i > nops / 2)
			*victim = i;
	}
	free(order);
	free(g);
}

static void test_random_linearizable_histories(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, 42);
	for (int round = 0; round < 200; round++) {
		sisy_lincheck_history *h = sisy_lincheck_history_new();
		int victim;
		gen_history(&r, h, 60, 1 + round % 3, &victim);
		sisy_lincheck_result res;
		sisy_lincheck_check(h, NULL, &res);
		if (res.verdict != LIN)
			fail_msg("round %d: %s", round, res.detail);
		/* The same history with one read's value replaced by one
		 * nobody wrote must be rejected. */
		if (victim >= 0) {
			sisy_lincheck_history *bad =
			    sisy_lincheck_history_new();
			for (size_t i = 0; i < sisy_lincheck_count(h); i++) {
				sisy_lincheck_op op;
				sisy_lincheck_get(h, i, &op);
				if ((int)i == victim) {
					op.has_value = true;
					op.value = sisy_slice_str("never");
				}
				assert_int_equal(sisy_lincheck_add(bad, &op),
						 SISY_OK);
			}
			sisy_lincheck_check(bad, NULL, &res);
			assert_int_equal(res.verdict, NOTLIN);
			sisy_lincheck_history_free(bad);
		}
		sisy_lincheck_history_free(h);
	}
}

/* --- the zones fast path against the search ------------------------------- */

/* Puts of unique values and gets of random values (written ones, absent,
 * now and then one nobody wrote), on a coarse clock so times often tie;
 * some puts unknown, some ops failed. Both methods must agree. */
static void gen_register(sisy_rand *r, sisy_lincheck_history *h, int nops)
{
	int64_t clock[4] = {0};
	int puts[64], nputs = 0;
	for (int i = 0; i < nops; i++) {
		int c = (int)sisy_rand_below(r, 4);
		int64_t call = clock[c] + (int64_t)sisy_rand_below(r, 3);
		int64_t ret = call + (int64_t)sisy_rand_below(r, 6);
		clock[c] = ret + (int64_t)sisy_rand_below(r, 2);
		char val[16];
		int outcome =
		    sisy_rand_chance(r, 1, 10)	 ? SISY_LINCHECK_UNKNOWN_OUTCOME
		    : sisy_rand_chance(r, 1, 20) ? SISY_LINCHECK_FAILED
						 : SISY_LINCHECK_OK;
		if (sisy_rand_chance(r, 1, 2) && nputs < 64) {
			snprintf(val, sizeof val, "v%d", i);
			add(h, (uint64_t)c, SISY_LINCHECK_PUT,
			    (sisy_lincheck_outcome)outcome, "k", val, call,
			    ret);
			puts[nputs++] = i;
			continue;
		}
		/* Mostly one of the last few values written, so that many
		 * histories are linearizable and many are not. */
		const char *v = val;
		uint64_t pick = sisy_rand_below(r, 20);
		if (nputs == 0 || pick == 0)
			v = NULL;
		else if (pick == 1)
			snprintf(val, sizeof val, "ghost");
		else
			snprintf(val, sizeof val, "v%d",
				 puts[nputs - 1 -
				      (int)sisy_rand_below(
					  r, nputs < 3 ? (uint64_t)nputs : 3)]);
		add(h, (uint64_t)c, SISY_LINCHECK_GET,
		    outcome == SISY_LINCHECK_UNKNOWN_OUTCOME
			? SISY_LINCHECK_OK
			: (sisy_lincheck_outcome)outcome,
		    "k", v, call, ret);
	}
}

static void test_zones_agree_with_search(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, 99);
	int lin = 0, notlin = 0;
	sisy_lincheck_opts search = {.search_only = true};
	for (int round = 0; round < 3000; round++) {
		sisy_lincheck_history *h = sisy_lincheck_history_new();
		gen_register(&r, h, 4 + round % 12);
		sisy_lincheck_result fast, slow;
		sisy_lincheck_check(h, NULL, &fast);
		sisy_lincheck_check(h, &search, &slow);
		if (fast.verdict != slow.verdict) {
			sisy_lincheck_write(h, stderr);
			fail_msg("round %d: zones %s, search %s", round,
				 sisy_lincheck_verdict_name(fast.verdict),
				 sisy_lincheck_verdict_name(slow.verdict));
		}
		lin += fast.verdict == LIN;
		notlin += fast.verdict == NOTLIN;
		sisy_lincheck_history_free(h);
	}
	/* Both answers were exercised, often. */
	assert_true(lin > 300 && notlin > 300);
}

static void test_high_concurrency_register(void **state)
{
	/* 32 clients on one key: far beyond what the search handles in its
	 * budget, decided by the zones; then one stale read breaks it. */
	sisy_lincheck_history *h = fresh(state);
	sisy_rand r;
	sisy_rand_seed(&r, 5);
	enum { C = 32, N = 3000 };
	int64_t clock[C] = {0};
	typedef struct gop {
		int c, put;
		int64_t call, ret, at;
		int value;
	} gop;
	static gop g[N];
	for (int i = 0; i < N; i++) {
		int c = (int)sisy_rand_below(&r, C);
		g[i].c = c;
		g[i].put = sisy_rand_chance(&r, 1, 2);
		g[i].call = clock[c] + (int64_t)sisy_rand_below(&r, 50);
		g[i].ret = g[i].call + 1 + (int64_t)sisy_rand_below(&r, 2000);
		g[i].at = g[i].call + (int64_t)sisy_rand_below(
					  &r, (uint64_t)(g[i].ret - g[i].call));
		g[i].value = i;
		clock[c] = g[i].ret + 1;
	}
	/* Effects in order of their instants (insertion sort by `at`). */
	static int order[N];
	for (int i = 0; i < N; i++) {
		int j = i;
		while (j > 0 && g[order[j - 1]].at > g[i].at) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	int reg = -1;
	for (int i = 0; i < N; i++) {
		gop *o = &g[order[i]];
		if (o->put)
			reg = o->value;
		else
			o->value = reg;
	}
	int victim = -1;
	int64_t end = 0;
	for (int i = 0; i < N; i++) {
		char val[16];
		snprintf(val, sizeof val, "v%d", g[i].value);
		if (g[i].put)
			put(h, (uint64_t)g[i].c, "k", val, g[i].call, g[i].ret);
		else
			get(h, (uint64_t)g[i].c, "k",
			    g[i].value < 0 ? NULL : val, g[i].call, g[i].ret);
		if (g[i].put && i < N / 2)
			victim = g[i].value;
		if (g[i].ret > end)
			end = g[i].ret;
	}
	sisy_lincheck_result res;
	sisy_lincheck_check(h, NULL, &res);
	assert_int_equal(res.verdict, LIN);
	/* Long after everything: two reads disagree about the last value,
	 * one of them reading a value overwritten long ago. */
	char val[16];
	snprintf(val, sizeof val, "v%d", reg);
	get(h, 999, "k", val, end + 100, end + 101);
	snprintf(val, sizeof val, "v%d", victim);
	get(h, 999, "k", val, end + 200, end + 201);
	sisy_lincheck_check(h, NULL, &res);
	assert_int_equal(res.verdict, NOTLIN);
	assert_non_null(strstr(res.detail, "key \"k\""));
}

/* --- the file format ------------------------------------------------------ */

static sisy_err parse(sisy_lincheck_history *h, const char *line)
{
	return sisy_lincheck_parse_line(h, line, strlen(line));
}

static void test_json_parse(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	assert_int_equal(parse(h, "  # a comment"), SISY_OK);
	assert_int_equal(parse(h, "   \n"), SISY_OK);
	assert_int_equal(
	    parse(h, "{\"client\":3,\"op\":\"put\",\"key\":\"k\\u00e9\","
		     "\"value\":\"a\\\"b\\n\",\"call\":12,\"return\":19,"
		     "\"outcome\":\"ok\",\"node\":{\"id\":[1,2.5e3]}}"),
	    SISY_OK);
	assert_int_equal(parse(h, "{\"client\":4,\"op\":\"get\",\"key\":\"k\","
				  "\"value\":null,\"call\":-5,\"return\":7,"
				  "\"outcome\":\"ok\"}"),
			 SISY_OK);
	assert_int_equal(parse(h, "{\"op\":\"put\",\"client\":5,\"key\":\"k\","
				  "\"value\":\"z\",\"call\":30,"
				  "\"outcome\":\"unknown\"}"),
			 SISY_OK);
	assert_int_equal(parse(h, "{\"client\":6,\"op\":\"cas\",\"key\":\"k\","
				  "\"expect\":null,\"value\":\"q\","
				  "\"swapped\":false,\"call\":1,\"return\":2,"
				  "\"outcome\":\"ok\"}"),
			 SISY_OK);
	assert_int_equal(sisy_lincheck_count(h), 4);
	sisy_lincheck_op op;
	sisy_lincheck_get(h, 0, &op);
	assert_int_equal(op.client, 3);
	assert_int_equal(op.kind, SISY_LINCHECK_PUT);
	assert_int_equal(op.key.len, 3);
	assert_memory_equal(op.key.data, "k\xc3\xa9", 3);
	assert_int_equal(op.value.len, 4);
	assert_memory_equal(op.value.data, "a\"b\n", 4);
	assert_true(op.call == 12 && op.ret == 19);
	sisy_lincheck_get(h, 1, &op);
	assert_false(op.has_value);
	assert_true(op.call == -5);
	sisy_lincheck_get(h, 2, &op);
	assert_int_equal(op.outcome, SISY_LINCHECK_UNKNOWN_OUTCOME);
	assert_true(op.ret == INT64_MAX);
	sisy_lincheck_get(h, 3, &op);
	assert_int_equal(op.kind, SISY_LINCHECK_CAS);
	assert_false(op.has_expect);
	assert_false(op.swapped);
}

static void test_json_rejects_bad_input(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	const char *bad[] = {
	    "{\"client\":1,\"op\":\"put\",\"key\":\"k\",\"value\":\"v\","
	    "\"call\":1,\"return\":2}", /* no outcome */
	    "{\"client\":1,\"op\":\"inc\",\"key\":\"k\",\"value\":\"v\","
	    "\"call\":1,\"return\":2,\"outcome\":\"ok\"}", /* bad op */
	    "{\"client\":1,\"op\":\"put\",\"key\":\"k\",\"call\":1,"
	    "\"return\":2,\"outcome\":\"ok\"}", /* put without value */
	    "{\"client\":1,\"op\":\"put\",\"key\":\"k\",\"value\":null,"
	    "\"call\":1,\"return\":2,\"outcome\":\"ok\"}", /* null put */
	    "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"value\":\"v\","
	    "\"call\":5,\"return\":2,\"outcome\":\"ok\"}", /* ret < call */
	    "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"value\":\"v\","
	    "\"call\":1,\"outcome\":\"ok\"}", /* ok without return */
	    "{\"client\":1,\"op\":\"cas\",\"key\":\"k\",\"value\":\"v\","
	    "\"expect\":\"a\",\"call\":1,\"return\":2,\"outcome\":\"ok\"}",
	    /* cas ok without swapped */
	    "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"value\":\"v\","
	    "\"call\":1,\"return\":2,\"outcome\":\"ok\"} x", /* trailing */
	    "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"value\":\"v\","
	    "\"call\":1,\"return\":2,\"outcome\":\"ok\"", /* unclosed */
	    "{\"client\":1,\"op\":\"get\",\"key\":\"k\\q\",\"value\":\"v\","
	    "\"call\":1,\"return\":2,\"outcome\":\"ok\"}", /* bad escape */
	    "{\"client\":-1,\"op\":\"get\",\"key\":\"k\",\"value\":\"v\","
	    "\"call\":1,\"return\":2,\"outcome\":\"ok\"}", /* client < 0 */
	    "{\"client\":1,\"op\":\"get\",\"key\":\"k\",\"value\":\"v\","
	    "\"call\":99999999999999999999999,\"return\":2,"
	    "\"outcome\":\"ok\"}", /* overflow */
	    "[1,2]",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		sisy_err rc = parse(h, bad[i]);
		if (rc == SISY_OK)
			fail_msg("accepted bad line %zu: %s", i, bad[i]);
		assert_true(strlen(sisy_errmsg()) > 0);
	}
	assert_int_equal(sisy_lincheck_count(h), 0);
}

static void test_json_roundtrip(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	sisy_rand r;
	sisy_rand_seed(&r, 7);
	int victim;
	gen_history(&r, h, 80, 3, &victim);
	cas(h, 9, "c\x01\"\\", "e\x7f\xff", "n", true, SISY_LINCHECK_OK, 1, 2);
	put_failed(h, 9, "k0", "f", 3, 4);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	assert_non_null(f);
	assert_int_equal(sisy_lincheck_write(h, f), SISY_OK);
	fclose(f);
	sisy_lincheck_history *back = sisy_lincheck_history_new();
	f = fmemopen(text, len, "r");
	assert_non_null(f);
	assert_int_equal(sisy_lincheck_parse_file(back, f), SISY_OK);
	fclose(f);
	assert_int_equal(sisy_lincheck_count(back), sisy_lincheck_count(h));
	for (size_t i = 0; i < sisy_lincheck_count(h); i++) {
		sisy_lincheck_op a, b;
		sisy_lincheck_get(h, i, &a);
		sisy_lincheck_get(back, i, &b);
		assert_int_equal(a.client, b.client);
		assert_int_equal(a.kind, b.kind);
		assert_int_equal(a.outcome, b.outcome);
		assert_true(sisy_slice_eq(a.key, b.key));
		assert_int_equal(a.has_value, b.has_value);
		assert_true(sisy_slice_eq(a.value, b.value));
		assert_int_equal(a.has_expect, b.has_expect);
		assert_true(sisy_slice_eq(a.expect, b.expect));
		assert_int_equal(a.swapped, b.swapped);
		assert_true(a.call == b.call && a.ret == b.ret);
	}
	sisy_lincheck_history_free(back);
	free(text);
}

static void test_parse_file_names_the_line(void **state)
{
	sisy_lincheck_history *h = fresh(state);
	char text[] = "{\"client\":1,\"op\":\"del\",\"key\":\"k\",\"call\":1,"
		      "\"return\":2,\"outcome\":\"failed\"}\n"
		      "\n"
		      "{\"client\":1,\"op\":\"del\"}\n";
	FILE *f = fmemopen(text, strlen(text), "r");
	assert_non_null(f);
	assert_int_equal(sisy_lincheck_parse_file(h, f), SISY_E_INVAL);
	fclose(f);
	assert_non_null(strstr(sisy_errmsg(), "line 3"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_empty_and_sequential, teardown),
	    cmocka_unit_test_teardown(test_concurrent_read_sees_either,
				      teardown),
	    cmocka_unit_test_teardown(test_concurrent_writes_either_order,
				      teardown),
	    cmocka_unit_test_teardown(test_equal_times_are_concurrent,
				      teardown),
	    cmocka_unit_test_teardown(test_unknown_write_applied, teardown),
	    cmocka_unit_test_teardown(test_unknown_write_not_applied, teardown),
	    cmocka_unit_test_teardown(test_unknown_write_observed_by_cas,
				      teardown),
	    cmocka_unit_test_teardown(test_cas_semantics, teardown),
	    cmocka_unit_test_teardown(test_keys_are_independent, teardown),
	    cmocka_unit_test_teardown(test_stale_read, teardown),
	    cmocka_unit_test_teardown(test_lost_write, teardown),
	    cmocka_unit_test_teardown(test_read_of_never_written_value,
				      teardown),
	    cmocka_unit_test_teardown(test_read_before_write_invoked, teardown),
	    cmocka_unit_test_teardown(test_concurrent_writes_disagreeing_reads,
				      teardown),
	    cmocka_unit_test_teardown(test_new_then_old_inversion, teardown),
	    cmocka_unit_test_teardown(test_unknown_write_applied_then_vanished,
				      teardown),
	    cmocka_unit_test_teardown(test_failed_write_never_applies,
				      teardown),
	    cmocka_unit_test_teardown(test_budget_exhaustion_is_unknown,
				      teardown),
	    cmocka_unit_test_teardown(test_memory_exhaustion_is_unknown,
				      teardown),
	    cmocka_unit_test_teardown(test_unknown_never_hides_a_violation,
				      teardown),
	    cmocka_unit_test(test_random_linearizable_histories),
	    cmocka_unit_test(test_zones_agree_with_search),
	    cmocka_unit_test_teardown(test_high_concurrency_register, teardown),
	    cmocka_unit_test_teardown(test_json_parse, teardown),
	    cmocka_unit_test_teardown(test_json_rejects_bad_input, teardown),
	    cmocka_unit_test_teardown(test_json_roundtrip, teardown),
	    cmocka_unit_test_teardown(test_parse_file_names_the_line, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
