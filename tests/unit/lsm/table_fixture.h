/* table_fixture.h — shared fixture of the table-layer tests (test_table.c,
 * test_table_cache.c): a generated, sorted set of internal-key entries with
 * its reference answers, and a helper that writes it as an SSTable.
 *
 * The set: user keys are the even numbers 0, 2, 4, ... printed with
 * leading zeros to ulen bytes (so odd numbers are absent and sort
 * between present keys); each user key has 1-3 versions with decreasing
 * sequence numbers, some of them deletions. Values are derived from
 * (key, seq), so any answer can be checked. Header-only, static inline.
 */
#ifndef SISY_TEST_TABLE_FIXTURE_H
#define SISY_TEST_TABLE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dbformat.h"
#include "fs.h"
#include "rand.h"
#include "table.h"

typedef struct tf_entry {
	uint8_t *ikey;
	size_t klen;
	uint8_t *val;
	size_t vlen;
} tf_entry;

typedef struct tf_set {
	tf_entry *e;
	int n;
	int users; /* user keys 0, 2, ..., 2 * (users - 1) */
	size_t ulen;
} tf_set;

static inline void tf_user(char *out, size_t ulen, int num)
{
	char d[16];
	int n = snprintf(d, sizeof d, "%d", num);
	memset(out, '0', ulen);
	memcpy(out + ulen - (size_t)n, d, (size_t)n);
}

/* Value bytes for (num, seq): vlen in [0, vmax], half of them a repeat of
 * the other half when compressible. */
static inline size_t tf_value(uint8_t *out, int num, uint64_t seq, size_t vmax,
			      bool compressible)
{
	sisy_rand r;
	sisy_rand_seed(&r, (uint64_t)num * 1000003u + seq);
	size_t len = (size_t)sisy_rand_below(&r, vmax + 1);
	for (size_t i = 0; i < len; i++) {
		if (compressible && i >= len / 2)
			out[i] = out[i - len / 2];
		else
			out[i] = (uint8_t)sisy_rand_next(&r);
	}
	return len;
}

static inline void tf_set_free(tf_set *s)
{
	for (int i = 0; i < s->n; i++) {
		free(s->e[i].ikey);
		free(s->e[i].val);
	}
	free(s->e);
	memset(s, 0, sizeof *s);
}

static inline void tf_set_make(tf_set *s, int users, size_t ulen, size_t vmax,
			       bool compressible, uint64_t seed)
{
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	s->e = calloc((size_t)users * 3 + 1, sizeof *s->e);
	s->n = 0;
	s->users = users;
	s->ulen = ulen;
	uint8_t *vbuf = malloc(vmax + 1);
	char *u = malloc(ulen);
	for (int i = 0; i < users; i++) {
		int versions = 1 + (int)sisy_rand_below(&r, 3);
		uint64_t seq = 100 + (uint64_t)i * 10 + 3;
		tf_user(u, ulen, 2 * i);
		for (int v = 0; v < versions; v++, seq--) {
			lsm_vtype t = sisy_rand_below(&r, 5) == 0
					  ? LSM_TYPE_DELETE
					  : LSM_TYPE_VALUE;
			tf_entry *e = &s->e[s->n++];
			e->klen = ulen + 8;
			e->ikey = malloc(e->klen);
			memcpy(e->ikey, u, ulen);
			sisy_put_u64(e->ikey + ulen, lsm_trailer(seq, t));
			e->vlen = t == LSM_TYPE_DELETE
				      ? 0
				      : tf_value(vbuf, 2 * i, seq, vmax,
						 compressible);
			e->val = malloc(e->vlen + 1);
			memcpy(e->val, vbuf, e->vlen);
		}
	}
	free(vbuf);
	free(u);
}

static inline sisy_slice tf_key(const tf_set *s, int i)
{
	return sisy_slice_make(s->e[i].ikey, s->e[i].klen);
}
static inline sisy_slice tf_val(const tf_set *s, int i)
{
	return sisy_slice_make(s->e[i].val, s->e[i].vlen);
}

/* The first entry >= target (s->n when none). */
static inline int tf_lower_bound(const tf_set *s, sisy_slice target)
{
	int lo = 0, hi = s->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (lsm_ikey_cmp(tf_key(s, mid), target) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* What lsm_table_get must answer for lookup: an entry index or -1. */
static inline int tf_expect_get(const tf_set *s, sisy_slice lookup)
{
	int i = tf_lower_bound(s, lookup);
	if (i < s->n &&
	    sisy_slice_eq(lsm_ikey_user(tf_key(s, i)), lsm_ikey_user(lookup)))
		return i;
	return -1;
}

/* Writes the set as a table at path; returns the file size. */
static inline sisy_err tf_build(sisy_fs *fs, const char *path,
				const lsm_table_options *o, const tf_set *s,
				uint64_t *size)
{
	sisy_file *f;
	lsm_table_builder *b;
	sisy_err rc = sisy_fs_open(
	    fs, path, SISY_O_WRITE | SISY_O_CREATE | SISY_O_TRUNC, &f);
	if (rc != SISY_OK)
		return rc;
	rc = lsm_table_builder_new(o, f, path, NULL, &b);
	for (int i = 0; rc == SISY_OK && i < s->n; i++)
		rc = lsm_table_builder_add(b, tf_key(s, i), tf_val(s, i));
	if (rc == SISY_OK)
		rc = lsm_table_builder_finish(b, size);
	else
		lsm_table_builder_abandon(b);
	if (rc == SISY_OK)
		rc = sisy_file_sync(f);
	sisy_err rc2 = sisy_file_close(f);
	return rc != SISY_OK ? rc : rc2;
}

/* A lookup key for user number num as of seq. */
static inline sisy_slice tf_lookup(sisy_buf *b, const tf_set *s, int num,
				   uint64_t seq)
{
	char u[1024];
	tf_user(u, s->ulen, num);
	lsm_ikey(b, sisy_slice_make(u, s->ulen), seq, LSM_TYPE_SEEK);
	return sisy_buf_slice(b);
}

/* lsm_table_get callback: records what it was given. */
typedef struct tf_got {
	int calls;
	sisy_buf key, val;
} tf_got;

static inline void tf_got_fn(void *ctx, sisy_slice ikey, sisy_slice value)
{
	tf_got *g = ctx;
	g->calls++;
	sisy_buf_set(&g->key, ikey.data, ikey.len);
	sisy_buf_set(&g->val, value.data, value.len);
}

static inline void tf_got_free(tf_got *g)
{
	sisy_buf_free(&g->key);
	sisy_buf_free(&g->val);
}

#endif
