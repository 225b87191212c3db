/* Tests sisyd/lsm/batch.c: the encoding round trip, limits, merging for
 * group commit, stack buffers that outgrow themselves, and decoding of
 * damaged batches (an error, never a crash, never a partial apply). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "rand.h"

typedef struct rec {
	char op; /* 'p', 'd', 'm' */
	uint64_t seq;
	sisy_buf k, v;
} rec;

typedef struct collector {
	rec r[64];
	int n;
} collector;

static rec *col_add(collector *c, char op, uint64_t seq, sisy_slice k,
		    sisy_slice v)
{
	assert_true(c->n < 64);
	rec *r = &c->r[c->n++];
	memset(r, 0, sizeof *r);
	r->op = op;
	r->seq = seq;
	sisy_buf_set(&r->k, k.data, k.len);
	sisy_buf_set(&r->v, v.data, v.len);
	return r;
}

static sisy_err on_put(void *ctx, uint64_t seq, sisy_slice k, sisy_slice v)
{
	col_add(ctx, 'p', seq, k, v);
	return SISY_OK;
}

static sisy_err on_del(void *ctx, uint64_t seq, sisy_slice k)
{
	col_add(ctx, 'd', seq, k, sisy_slice_make("", 0));
	return SISY_OK;
}

static sisy_err on_meta(void *ctx, sisy_slice m)
{
	col_add(ctx, 'm', 0, sisy_slice_make("", 0), m);
	return SISY_OK;
}

static void col_free(collector *c)
{
	for (int i = 0; i < c->n; i++) {
		sisy_buf_free(&c->r[i].k);
		sisy_buf_free(&c->r[i].v);
	}
	c->n = 0;
}

static sisy_err decode(sisy_slice rep, collector *c)
{
	lsm_batch_handler h = {
	    .put = on_put, .del = on_del, .meta = on_meta, .ctx = c};
	return lsm_batch_iterate(rep, &h);
}

static void assert_rec(const rec *r, char op, uint64_t seq, const char *k,
		       const char *v)
{
	assert_int_equal(r->op, op);
	assert_int_equal(r->seq, seq);
	assert_int_equal(r->k.len, strlen(k));
	assert_memory_equal(r->k.data, k, r->k.len);
	assert_int_equal(r->v.len, strlen(v));
	assert_memory_equal(r->v.data, v, r->v.len);
}

static void test_round_trip(void **state)
{
	(void)state;
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	assert_int_equal(sisy_lsm_batch_put(b, "a", 1, "1", 1), SISY_OK);
	assert_int_equal(sisy_lsm_batch_delete(b, "b", 1), SISY_OK);
	assert_int_equal(sisy_lsm_batch_set_meta(b, "idx=7", 5), SISY_OK);
	assert_int_equal(sisy_lsm_batch_put(b, "c", 1, "", 0), SISY_OK);
	assert_int_equal(sisy_lsm_batch_count(b), 3);
	assert_true(sisy_lsm_batch_bytes(b) > LSM_BATCH_HEADER);
	lsm_batch_set_seq(b, 100);
	assert_int_equal(lsm_batch_seq(b), 100);
	assert_true(b->has_meta);
	assert_memory_equal(lsm_batch_meta(b).data, "idx=7", 5);
	collector c = {0};
	assert_int_equal(decode(lsm_batch_rep(b), &c), SISY_OK);
	assert_int_equal(c.n, 4);
	assert_rec(&c.r[0], 'p', 100, "a", "1");
	assert_rec(&c.r[1], 'd', 101, "b", "");
	assert_rec(&c.r[2], 'm', 0, "", "idx=7");
	assert_rec(&c.r[3], 'p', 102, "c", "");
	col_free(&c);
	sisy_lsm_batch_clear(b);
	assert_int_equal(sisy_lsm_batch_count(b), 0);
	assert_int_equal(sisy_lsm_batch_bytes(b), LSM_BATCH_HEADER);
	assert_false(b->has_meta);
	assert_int_equal(decode(lsm_batch_rep(b), &c), SISY_OK);
	assert_int_equal(c.n, 0);
	sisy_lsm_batch_free(b);
}

static void test_limits(void **state)
{
	(void)state;
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	assert_int_equal(sisy_lsm_batch_put(b, "", 0, "v", 1), SISY_E_INVAL);
	assert_int_equal(sisy_lsm_batch_delete(b, "", 0), SISY_E_INVAL);
	size_t big = SISY_LSM_MAX_KEY + 1;
	char *k = calloc(1, big);
	assert_int_equal(sisy_lsm_batch_put(b, k, big, "v", 1), SISY_E_TOOBIG);
	assert_non_null(strstr(sisy_errmsg(), "SISY_LSM_MAX_KEY"));
	assert_int_equal(sisy_lsm_batch_delete(b, k, big), SISY_E_TOOBIG);
	assert_int_equal(sisy_lsm_batch_put(b, k, big - 1, "v", 1), SISY_OK);
	free(k);
	char *v = malloc(SISY_LSM_MAX_VALUE + 1);
	memset(v, 'x', SISY_LSM_MAX_VALUE + 1);
	assert_int_equal(
	    sisy_lsm_batch_put(b, "k", 1, v, SISY_LSM_MAX_VALUE + 1),
	    SISY_E_TOOBIG);
	assert_non_null(strstr(sisy_errmsg(), "SISY_LSM_MAX_VALUE"));
	assert_int_equal(sisy_lsm_batch_put(b, "k", 1, v, SISY_LSM_MAX_VALUE),
			 SISY_OK);
	assert_int_equal(sisy_lsm_batch_set_meta(b, v, SISY_LSM_MAX_META + 1),
			 SISY_E_TOOBIG);
	assert_int_equal(sisy_lsm_batch_set_meta(b, v, SISY_LSM_MAX_META),
			 SISY_OK);
	/* byte limit: 7 more full values fit, the 8th does not */
	sisy_err rc = SISY_OK;
	int added = 0;
	while ((rc = sisy_lsm_batch_put(b, "k", 1, v, SISY_LSM_MAX_VALUE)) ==
	       SISY_OK)
		added++;
	assert_int_equal(rc, SISY_E_TOOBIG);
	assert_non_null(strstr(sisy_errmsg(), "SISY_LSM_MAX_BATCH_BYTES"));
	assert_int_equal(added, 6);
	assert_true(sisy_lsm_batch_bytes(b) <= SISY_LSM_MAX_BATCH_BYTES);
	free(v);
	/* operation limit */
	sisy_lsm_batch_clear(b);
	for (uint32_t i = 0; i < SISY_LSM_MAX_BATCH_OPS; i++)
		assert_int_equal(sisy_lsm_batch_delete(b, "k", 1), SISY_OK);
	assert_int_equal(sisy_lsm_batch_delete(b, "k", 1), SISY_E_TOOBIG);
	assert_non_null(strstr(sisy_errmsg(), "SISY_LSM_MAX_BATCH_OPS"));
	assert_int_equal(sisy_lsm_batch_count(b), SISY_LSM_MAX_BATCH_OPS);
	sisy_lsm_batch_free(b);
}

static void test_stack_buffer_grows(void **state)
{
	(void)state;
	uint8_t stack[32];
	sisy_lsm_batch b;
	lsm_batch_init(&b, stack, sizeof stack);
	assert_int_equal(sisy_lsm_batch_put(&b, "k", 1, "v", 1), SISY_OK);
	assert_ptr_equal(b.rep, stack); /* still fits */
	char val[100];
	memset(val, 'z', sizeof val);
	assert_int_equal(sisy_lsm_batch_put(&b, "k2", 2, val, sizeof val),
			 SISY_OK);
	assert_ptr_not_equal(b.rep, stack); /* moved to the heap, intact */
	lsm_batch_set_seq(&b, 5);
	collector c = {0};
	assert_int_equal(decode(lsm_batch_rep(&b), &c), SISY_OK);
	assert_int_equal(c.n, 2);
	assert_rec(&c.r[0], 'p', 5, "k", "v");
	assert_int_equal(c.r[1].v.len, sizeof val);
	col_free(&c);
	lsm_batch_release(&b);
}

static void test_append_for_group_commit(void **state)
{
	(void)state;
	sisy_lsm_batch *g = sisy_lsm_batch_new();
	sisy_lsm_batch *a = sisy_lsm_batch_new();
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	sisy_lsm_batch_put(a, "a", 1, "1", 1);
	sisy_lsm_batch_set_meta(a, "m1", 2);
	sisy_lsm_batch_delete(b, "b", 1);
	sisy_lsm_batch_put(b, "c", 1, "3", 1);
	assert_int_equal(lsm_batch_append(g, a), SISY_OK);
	assert_int_equal(lsm_batch_append(g, b), SISY_OK);
	assert_int_equal(sisy_lsm_batch_count(g), 3);
	assert_true(g->has_meta); /* from a; b has none */
	assert_memory_equal(lsm_batch_meta(g).data, "m1", 2);
	sisy_lsm_batch_set_meta(b, "m2", 2);
	assert_int_equal(lsm_batch_append(g, b), SISY_OK);
	assert_memory_equal(lsm_batch_meta(g).data, "m2", 2);
	lsm_batch_set_seq(g, 10);
	collector c = {0};
	assert_int_equal(decode(lsm_batch_rep(g), &c), SISY_OK);
	assert_int_equal(c.n, 7);
	assert_rec(&c.r[0], 'p', 10, "a", "1");
	assert_rec(&c.r[1], 'm', 0, "", "m1");
	assert_rec(&c.r[2], 'd', 11, "b", "");
	assert_rec(&c.r[3], 'p', 12, "c", "3");
	assert_rec(&c.r[4], 'd', 13, "b", "");
	assert_rec(&c.r[5], 'p', 14, "c", "3");
	assert_rec(&c.r[6], 'm', 0, "", "m2");
	col_free(&c);
	sisy_lsm_batch_free(g);
	sisy_lsm_batch_free(a);
	sisy_lsm_batch_free(b);
}

static void test_damaged_batches(void **state)
{
	(void)state;
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	sisy_lsm_batch_put(b, "alpha", 5, "one", 3);
	sisy_lsm_batch_delete(b, "beta", 4);
	sisy_lsm_batch_set_meta(b, "meta", 4);
	sisy_lsm_batch_put(b, "gamma", 5, "three", 5);
	lsm_batch_set_seq(b, 1);
	sisy_slice rep = lsm_batch_rep(b);
	uint8_t *copy = malloc(rep.len);
	collector c = {0};
	/* every truncation is an error and applies nothing */
	for (size_t n = 0; n < rep.len; n++) {
		memcpy(copy, rep.data, n);
		sisy_err rc = decode(sisy_slice_make(copy, n), &c);
		assert_int_equal(rc, SISY_E_CORRUPT);
		assert_int_equal(c.n, 0);
	}
	/* every single-byte change either decodes to a well-formed batch or
	 * is reported, with nothing applied; never a crash */
	sisy_rand r;
	sisy_rand_seed(&r, 3);
	int rejected = 0;
	for (size_t i = 0; i < rep.len; i++) {
		for (int t = 0; t < 8; t++) {
			memcpy(copy, rep.data, rep.len);
			copy[i] ^= (uint8_t)(1u << t);
			sisy_err rc =
			    decode(sisy_slice_make(copy, rep.len), &c);
			if (rc != SISY_OK) {
				assert_int_equal(rc, SISY_E_CORRUPT);
				assert_int_equal(c.n, 0);
				rejected++;
			}
			col_free(&c);
		}
	}
	assert_true(rejected > 0);
	/* a sequence that would overflow */
	memcpy(copy, rep.data, rep.len);
	sisy_put_u64(copy, LSM_MAX_SEQ - 1);
	assert_int_equal(decode(sisy_slice_make(copy, rep.len), &c),
			 SISY_E_CORRUPT);
	free(copy);
	sisy_lsm_batch_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_stack_buffer_grows),
	    cmocka_unit_test(test_append_for_group_commit),
	    cmocka_unit_test(test_damaged_batches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
