/* Tests sisyd/lsm/merge_iter.c: merging sorted children, and the empty
 * iterator. Children are small in-test iterators over sorted arrays that can
 * be told to fail after a number of entries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iter.h"
#include "rand.h"

#define KLEN 8

typedef struct vec_iter {
	lsm_iter base;
	char (*keys)[KLEN + 1]; /* sorted, NUL-terminated for messages */
	int n;
	int tag; /* the value of every entry: which child it came from */
	int pos;
	int fail_at; /* becomes invalid with an error on reaching it; -1 */
	sisy_err status;
	int *destroyed;
} vec_iter;

static void vec_check(vec_iter *v)
{
	if (v->fail_at >= 0 && v->pos >= v->fail_at && v->pos < v->n) {
		v->status = SISY_E_CORRUPT;
		v->pos = v->n;
	}
}
static bool vec_valid(lsm_iter *it)
{
	vec_iter *v = (vec_iter *)it;
	return v->status == SISY_OK && v->pos < v->n;
}
static void vec_seek_first(lsm_iter *it)
{
	vec_iter *v = (vec_iter *)it;
	v->status = SISY_OK;
	v->pos = 0;
	vec_check(v);
}
static void vec_seek(lsm_iter *it, sisy_slice target)
{
	vec_iter *v = (vec_iter *)it;
	v->status = SISY_OK;
	v->pos = 0;
	while (v->pos < v->n &&
	       sisy_slice_cmp(sisy_slice_make(v->keys[v->pos], KLEN), target) <
		   0)
		v->pos++;
	vec_check(v);
}
static void vec_next(lsm_iter *it)
{
	vec_iter *v = (vec_iter *)it;
	assert_true(vec_valid(it));
	v->pos++;
	vec_check(v);
}
static sisy_slice vec_key(lsm_iter *it)
{
	vec_iter *v = (vec_iter *)it;
	return sisy_slice_make(v->keys[v->pos], KLEN);
}
static sisy_slice vec_value(lsm_iter *it)
{
	vec_iter *v = (vec_iter *)it;
	return sisy_slice_make(&v->tag, sizeof v->tag);
}
static sisy_err vec_status(lsm_iter *it)
{
	vec_iter *v = (vec_iter *)it;
	if (v->status != SISY_OK)
		return sisy_errf(v->status, "vec %d failed", v->tag);
	return SISY_OK;
}
static void vec_destroy(lsm_iter *it)
{
	vec_iter *v = (vec_iter *)it;
	if (v->destroyed != NULL)
		(*v->destroyed)++;
	free(v->keys);
	free(v);
}
static const lsm_iter_ops vec_ops = {
    vec_valid, vec_seek_first, vec_seek,   vec_next,
    vec_key,   vec_value,      vec_status, vec_destroy,
};

static int cmp_str(const void *a, const void *b)
{
	return memcmp(a, b, KLEN);
}

/* A child holding n keys "%08d" of the numbers in nums (sorted here). */
static vec_iter *vec_new(const int *nums, int n, int tag, int *destroyed)
{
	vec_iter *v = calloc(1, sizeof *v);
	v->base.ops = &vec_ops;
	v->keys = calloc((size_t)(n > 0 ? n : 1), sizeof *v->keys);
	for (int i = 0; i < n; i++)
		snprintf(v->keys[i], KLEN + 1, "%08d", nums[i]);
	qsort(v->keys, (size_t)n, sizeof *v->keys, cmp_str);
	v->n = n;
	v->tag = tag;
	v->pos = n;
	v->fail_at = -1;
	v->destroyed = destroyed;
	return v;
}

static int key_num(sisy_slice k)
{
	char buf[KLEN + 1];
	memcpy(buf, k.data, KLEN);
	buf[KLEN] = '\0';
	return atoi(buf);
}

static int val_tag(sisy_slice v)
{
	int t;
	memcpy(&t, v.data, sizeof t);
	return t;
}

static void test_merges_in_order_with_ties_in_child_order(void **state)
{
	(void)state;
	int a[] = {1, 4, 7, 10}, b[] = {2, 4, 8}, c[] = {4, 5, 10, 11};
	int destroyed = 0;
	lsm_iter *kids[3] = {&vec_new(a, 4, 0, &destroyed)->base,
			     &vec_new(b, 3, 1, &destroyed)->base,
			     &vec_new(c, 4, 2, &destroyed)->base};
	lsm_iter *m = lsm_merge_iter_new(sisy_slice_cmp, kids, 3);
	assert_non_null(m);
	assert_false(lsm_iter_valid(m)); /* not positioned yet */
	int want_k[] = {1, 2, 4, 4, 4, 5, 7, 8, 10, 10, 11};
	int want_t[] = {0, 1, 0, 1, 2, 2, 0, 1, 0, 2, 2};
	lsm_iter_seek_first(m);
	for (int i = 0; i < 11; i++) {
		assert_true(lsm_iter_valid(m));
		assert_int_equal(key_num(lsm_iter_key(m)), want_k[i]);
		assert_int_equal(val_tag(lsm_iter_value(m)), want_t[i]);
		lsm_iter_next(m);
	}
	assert_false(lsm_iter_valid(m));
	assert_int_equal(lsm_iter_status(m), SISY_OK);

	char target[KLEN + 1];
	snprintf(target, sizeof target, "%08d", 6);
	lsm_iter_seek(m, sisy_slice_make(target, KLEN));
	assert_int_equal(key_num(lsm_iter_key(m)), 7);
	snprintf(target, sizeof target, "%08d", 10);
	lsm_iter_seek(m, sisy_slice_make(target, KLEN));
	assert_int_equal(key_num(lsm_iter_key(m)), 10);
	assert_int_equal(val_tag(lsm_iter_value(m)), 0);
	lsm_iter_next(m);
	assert_int_equal(val_tag(lsm_iter_value(m)), 2);
	snprintf(target, sizeof target, "%08d", 12);
	lsm_iter_seek(m, sisy_slice_make(target, KLEN));
	assert_false(lsm_iter_valid(m));
	lsm_iter_destroy(m);
	assert_int_equal(destroyed, 3);
}

/* Random children against a sorted reference of everything. */
static void test_random_merges_match_reference(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, 42);
	for (int round = 0; round < 200; round++) {
		int n = (int)sisy_rand_below(&r, 12);
		lsm_iter *kids[12];
		int all[12 * 40], total = 0;
		for (int k = 0; k < n; k++) {
			int cnt = (int)sisy_rand_below(&r, 40), nums[40];
			for (int i = 0; i < cnt; i++)
				nums[i] = all[total++] =
				    (int)sisy_rand_below(&r, 500);
			kids[k] = &vec_new(nums, cnt, k, NULL)->base;
		}
		/* Sort the reference numbers (insertion sort; small). */
		for (int i = 1; i < total; i++)
			for (int j = i; j > 0 && all[j - 1] > all[j]; j--) {
				int t = all[j];
				all[j] = all[j - 1];
				all[j - 1] = t;
			}
		lsm_iter *m = lsm_merge_iter_new(sisy_slice_cmp, kids, n);
		assert_non_null(m);
		lsm_iter_seek_first(m);
		int prev_k = -1, prev_t = -1;
		for (int i = 0; i < total; i++) {
			assert_true(lsm_iter_valid(m));
			int k = key_num(lsm_iter_key(m));
			int t = val_tag(lsm_iter_value(m));
			assert_int_equal(k, all[i]);
			if (k == prev_k)
				assert_true(t >= prev_t);
			prev_k = k;
			prev_t = t;
			lsm_iter_next(m);
		}
		assert_false(lsm_iter_valid(m));
		/* A seek lands on the reference's first number >= target. */
		int target = (int)sisy_rand_below(&r, 520), want = -1;
		for (int i = 0; i < total && want < 0; i++)
			if (all[i] >= target)
				want = all[i];
		char tk[KLEN + 1];
		snprintf(tk, sizeof tk, "%08d", target);
		lsm_iter_seek(m, sisy_slice_make(tk, KLEN));
		if (want < 0)
			assert_false(lsm_iter_valid(m));
		else
			assert_int_equal(key_num(lsm_iter_key(m)), want);
		lsm_iter_destroy(m);
	}
}

static void test_child_error_stops_the_merge(void **state)
{
	(void)state;
	int a[] = {1, 3, 5, 7}, b[] = {2, 4, 6, 8};
	vec_iter *va = vec_new(a, 4, 0, NULL), *vb = vec_new(b, 4, 1, NULL);
	vb->fail_at = 2; /* after 2 and 4 */
	lsm_iter *kids[2] = {&va->base, &vb->base};
	lsm_iter *m = lsm_merge_iter_new(sisy_slice_cmp, kids, 2);
	lsm_iter_seek_first(m);
	int seen = 0;
	while (lsm_iter_valid(m)) {
		seen++;
		lsm_iter_next(m);
	}
	/* 1 2 3 4, then child b fails instead of yielding 6: the merge must
	 * not carry on with a's 5 and 7 as if b had ended. */
	assert_int_equal(seen, 4);
	sisy_errclear();
	assert_int_equal(lsm_iter_status(m), SISY_E_CORRUPT);
	assert_string_equal(sisy_errmsg(), "vec 1 failed");
	/* A failing child at seek time too. */
	vb->fail_at = 0;
	lsm_iter_seek_first(m);
	assert_false(lsm_iter_valid(m));
	assert_int_equal(lsm_iter_status(m), SISY_E_CORRUPT);
	/* Once the child recovers, a new seek clears the error. */
	vb->fail_at = -1;
	lsm_iter_seek_first(m);
	assert_true(lsm_iter_valid(m));
	assert_int_equal(lsm_iter_status(m), SISY_OK);
	lsm_iter_destroy(m);
}

static void test_no_children(void **state)
{
	(void)state;
	lsm_iter *m = lsm_merge_iter_new(sisy_slice_cmp, NULL, 0);
	assert_non_null(m);
	lsm_iter_seek_first(m);
	assert_false(lsm_iter_valid(m));
	assert_int_equal(lsm_iter_status(m), SISY_OK);
	lsm_iter_destroy(m);
}

static void test_empty_iterator(void **state)
{
	(void)state;
	lsm_iter *e = lsm_iter_empty(SISY_OK);
	lsm_iter_seek_first(e);
	assert_false(lsm_iter_valid(e));
	assert_int_equal(lsm_iter_status(e), SISY_OK);
	lsm_iter_destroy(e);

	sisy_errf(SISY_E_NOTFOUND, "table 7 is missing");
	e = lsm_iter_empty(SISY_E_NOTFOUND);
	sisy_errclear();
	lsm_iter_seek(e, sisy_slice_str("whatever"));
	assert_false(lsm_iter_valid(e));
	assert_int_equal(lsm_iter_status(e), SISY_E_NOTFOUND);
	assert_string_equal(sisy_errmsg(), "table 7 is missing");
	/* An empty child with an error stops a merge. */
	int a[] = {1};
	lsm_iter *kids[2] = {&vec_new(a, 1, 0, NULL)->base, e};
	lsm_iter *m = lsm_merge_iter_new(sisy_slice_cmp, kids, 2);
	lsm_iter_seek_first(m);
	assert_false(lsm_iter_valid(m));
	assert_int_equal(lsm_iter_status(m), SISY_E_NOTFOUND);
	lsm_iter_destroy(m);
}

/* --- internal-key merges (lsm_merge_iter_new_ikey) ------------------- */

typedef struct ikv_iter {
	lsm_iter base;
	sisy_buf *keys; /* sorted internal keys */
	int n, pos;
} ikv_iter;

static bool ikv_valid(lsm_iter *it)
{
	return ((ikv_iter *)it)->pos < ((ikv_iter *)it)->n;
}
static void ikv_seek_first(lsm_iter *it)
{
	((ikv_iter *)it)->pos = 0;
}
static void ikv_seek(lsm_iter *it, sisy_slice target)
{
	ikv_iter *v = (ikv_iter *)it;
	for (v->pos = 0;
	     v->pos < v->n &&
	     lsm_ikey_cmp(sisy_buf_slice(&v->keys[v->pos]), target) < 0;
	     v->pos++)
		;
}
static void ikv_next(lsm_iter *it)
{
	((ikv_iter *)it)->pos++;
}
static sisy_slice ikv_key(lsm_iter *it)
{
	ikv_iter *v = (ikv_iter *)it;
	return sisy_buf_slice(&v->keys[v->pos]);
}
static sisy_err ikv_status(lsm_iter *it)
{
	(void)it;
	return SISY_OK;
}
static void ikv_destroy(lsm_iter *it)
{
	ikv_iter *v = (ikv_iter *)it;
	for (int i = 0; i < v->n; i++)
		sisy_buf_free(&v->keys[i]);
	free(v->keys);
	free(v);
}
static const lsm_iter_ops ikv_ops = {
    ikv_valid, ikv_seek_first, ikv_seek,   ikv_next,
    ikv_key,   ikv_key,	       ikv_status, ikv_destroy,
};

static int ikey_qsort_cmp(const void *a, const void *b)
{
	return lsm_ikey_cmp(sisy_buf_slice(a), sisy_buf_slice(b));
}

/* Keys that share their first `shared` bytes ("pp"), then bytes from a
 * small alphabet with zeros, of lengths ending before, inside and after
 * the eight-byte window the merge compares first, each at a few sequence
 * numbers: the merge must give exactly lsm_ikey_cmp order. */
static void test_ikey_merge_with_shared_prefix(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, 42);
	enum { KIDS = 5, PER = 300 };
	static const uint8_t alpha[] = {0x00, 0x01, 'a', 0x7f, 0x80, 0xff};
	sisy_buf *all = calloc(KIDS * PER, sizeof *all);
	lsm_iter *kids[KIDS];
	int total = 0;
	for (int k = 0; k < KIDS; k++) {
		ikv_iter *v = calloc(1, sizeof *v);
		v->base.ops = &ikv_ops;
		v->keys = calloc(PER, sizeof *v->keys);
		for (int i = 0; i < PER; i++) {
			uint8_t u[24] = {'p', 'p'};
			size_t len = 2 + sisy_rand_below(&r, 15);
			for (size_t j = 2; j < len; j++)
				u[j] = alpha[sisy_rand_below(&r, sizeof alpha)];
			/* unique across children: child and index in the seq */
			uint64_t seq = (uint64_t)(k * PER + i + 1);
			assert_int_equal(lsm_ikey(&v->keys[i],
						  sisy_slice_make(u, len), seq,
						  LSM_TYPE_VALUE),
					 SISY_OK);
			assert_int_equal(sisy_buf_set(&all[total++],
						      v->keys[i].data,
						      v->keys[i].len),
					 SISY_OK);
		}
		qsort(v->keys, PER, sizeof *v->keys, ikey_qsort_cmp);
		v->n = PER;
		kids[k] = &v->base;
	}
	qsort(all, (size_t)total, sizeof *all, ikey_qsort_cmp);
	lsm_iter *m = lsm_merge_iter_new_ikey(kids, KIDS, 2);
	assert_non_null(m);
	int i = 0;
	for (lsm_iter_seek_first(m); lsm_iter_valid(m); lsm_iter_next(m)) {
		assert_true(i < total);
		sisy_slice got = lsm_iter_key(m);
		assert_int_equal(got.len, all[i].len);
		assert_memory_equal(got.data, all[i].data, got.len);
		i++;
	}
	assert_int_equal(i, total);
	lsm_iter_destroy(m);
	for (i = 0; i < total; i++)
		sisy_buf_free(&all[i]);
	free(all);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_merges_in_order_with_ties_in_child_order),
	    cmocka_unit_test(test_random_merges_match_reference),
	    cmocka_unit_test(test_child_error_stops_the_merge),
	    cmocka_unit_test(test_no_children),
	    cmocka_unit_test(test_empty_iterator),
	    cmocka_unit_test(test_ikey_merge_with_shared_prefix),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
