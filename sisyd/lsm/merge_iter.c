/* merge_iter.c — lsm_merge_iter_new (n sorted children -> one sorted stream)
 * and lsm_iter_empty (iter.h).
 *
 * DESIGN
 *   A binary min-heap of the indexes of the valid children, ordered by
 *   (key under cmp, child index): equal keys come out in child order, which
 *   is how the engine lets a newer source (memtable, then newer tables)
 *   shadow an older one when both hold the same internal key. Moving costs
 *   O(log n) comparisons; seeks rebuild the heap in O(n).
 *
 * ERRORS
 *   A child that stops with a non-OK status stops the merge: it turns invalid
 *   and status() returns that child's error (re-attaching the child's
 *   message), so a corrupt table is never silently skipped.
 *
 * INVARIANT: heap[0..hn) holds exactly the children that are valid, and
 *   status == SISY_OK whenever hn > 0; keys[k] == key() of every child k
 *   in the heap.
 *
 * lsm_iter_empty(status) keeps a copy of this thread's sisy_errmsg() when
 * status is an error (the caller has just failed), and re-attaches it
 * whenever status() is asked.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "iter.h"

typedef struct merge_iter {
	lsm_iter base;
	lsm_cmp_fn cmp;
	int n;
	lsm_iter **kids;
	sisy_slice *keys; /* keys[k]: kids[k]'s key while it is in the heap */
	uint64_t *words;  /* ikey order only: key_word(keys[k], shared) */
	size_t shared;	  /* user-key bytes every key shares */
	int *heap;	  /* child indexes */
	int hn;
	sisy_err status;
	int err_kid; /* the child whose error stopped the merge, or -1 */
} merge_iter;

/* The user-key bytes [off, off + 8) of an internal key as a big-endian
 * number, zero-padded past the user key's end: for keys sharing their first
 * off bytes, a smaller word means a smaller user key, and only equal words
 * need the full comparison (a key ending inside the window and one going on
 * with zero bytes tie here, and are told apart there). */
static inline uint64_t key_word(sisy_slice ikey, size_t off)
{
	size_t ulen = ikey.len - 8;
	uint64_t x = 0;
	if (ulen >= off + 8) {
		memcpy(&x, ikey.data + off, 8);
	} else if (ulen > off) {
		uint8_t w[8] = {0};
		memcpy(w, ikey.data + off, ulen - off);
		memcpy(&x, w, 8);
	}
	return __builtin_bswap64(x); /* little-endian hosts (as memtable.c) */
}

/* Refreshes the cached key (and word) of child k, which is valid. */
static inline void merge_load(merge_iter *m, int k)
{
	m->keys[k] = lsm_iter_key(m->kids[k]);
	if (m->cmp == NULL)
		m->words[k] = key_word(m->keys[k], m->shared);
}

/* True when child a must come out before child b. The keys are the ones
 * cached when a and b last moved (a child's key stays valid until it
 * moves): a sift compares each key several times, and asking the child
 * goes through a chain of iterators (level, table cache, table, block).
 * `ikey` is a constant at every call, so each sift below gets its own
 * copy with the comparison inline. */
static inline __attribute__((always_inline)) bool
merge_before(const merge_iter *m, int a, int b, bool ikey)
{
	if (ikey && m->words[a] != m->words[b]) {
		assert((m->words[a] < m->words[b]) ==
		       (lsm_ikey_cmp(m->keys[a], m->keys[b]) < 0));
		return m->words[a] < m->words[b];
	}
	sisy_slice ka = m->keys[a], kb = m->keys[b];
	int c = ikey ? lsm_ikey_cmp(ka, kb) : m->cmp(ka, kb);
	return c < 0 || (c == 0 && a < b);
}

static inline __attribute__((always_inline)) void merge_sift(merge_iter *m,
							     int i, bool ikey)
{
	for (;;) {
		int l = 2 * i + 1, r = l + 1, best = i;
		if (l < m->hn &&
		    merge_before(m, m->heap[l], m->heap[best], ikey))
			best = l;
		if (r < m->hn &&
		    merge_before(m, m->heap[r], m->heap[best], ikey))
			best = r;
		if (best == i)
			return;
		int t = m->heap[i];
		m->heap[i] = m->heap[best];
		m->heap[best] = t;
		i = best;
	}
}

static void merge_sift_down(merge_iter *m, int i)
{
	if (m->cmp == NULL)
		merge_sift(m, i, true);
	else
		merge_sift(m, i, false);
}

/* Records the first error of an invalid child; true when it had one. */
static bool merge_check_error(merge_iter *m, int k)
{
	sisy_err rc = lsm_iter_status(m->kids[k]);
	if (rc == SISY_OK)
		return false;
	if (m->status == SISY_OK) {
		m->status = rc;
		m->err_kid = k;
	}
	m->hn = 0;
	return true;
}

/* Rebuilds the heap after every child was repositioned. */
static void merge_rebuild(merge_iter *m)
{
	m->hn = 0;
	m->status = SISY_OK;
	m->err_kid = -1;
	for (int k = 0; k < m->n; k++) {
		if (lsm_iter_valid(m->kids[k])) {
			merge_load(m, k);
			m->heap[m->hn++] = k;
		} else if (merge_check_error(m, k))
			return;
	}
	for (int i = m->hn / 2 - 1; i >= 0; i--)
		merge_sift_down(m, i);
}

static bool merge_valid(lsm_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	return m->hn > 0;
}

static void merge_seek_first(lsm_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	for (int k = 0; k < m->n; k++)
		lsm_iter_seek_first(m->kids[k]);
	merge_rebuild(m);
}

static void merge_seek(lsm_iter *it, sisy_slice target)
{
	merge_iter *m = (merge_iter *)it;
	for (int k = 0; k < m->n; k++)
		lsm_iter_seek(m->kids[k], target);
	merge_rebuild(m);
}

static void merge_next(lsm_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	assert(m->hn > 0);
	int k = m->heap[0];
	lsm_iter_next(m->kids[k]);
	if (!lsm_iter_valid(m->kids[k])) {
		if (merge_check_error(m, k))
			return;
		m->heap[0] = m->heap[--m->hn];
	} else {
		merge_load(m, k);
	}
	merge_sift_down(m, 0);
}

static sisy_slice merge_key(lsm_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	assert(m->hn > 0);
	return m->keys[m->heap[0]];
}

static sisy_slice merge_value(lsm_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	assert(m->hn > 0);
	return lsm_iter_value(m->kids[m->heap[0]]);
}

static sisy_err merge_status(lsm_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	if (m->status != SISY_OK && m->err_kid >= 0)
		(void)lsm_iter_status(m->kids[m->err_kid]); /* its message */
	return m->status;
}

static void merge_destroy(lsm_iter *it)
{
	merge_iter *m = (merge_iter *)it;
	for (int k = 0; k < m->n; k++)
		lsm_iter_destroy(m->kids[k]);
	free(m->kids);
	free(m->keys);
	free(m->words);
	free(m->heap);
	free(m);
}

static const lsm_iter_ops merge_ops = {
    .valid = merge_valid,
    .seek_first = merge_seek_first,
    .seek = merge_seek,
    .next = merge_next,
    .key = merge_key,
    .value = merge_value,
    .status = merge_status,
    .destroy = merge_destroy,
};

/* cmp NULL: internal-key order, compared inline (no call per comparison). */
static lsm_iter *merge_new(lsm_cmp_fn cmp, lsm_iter **children, int n,
			   size_t shared)
{
	assert(n >= 0 && (n == 0 || children != NULL));
	merge_iter *m = calloc(1, sizeof *m);
	size_t cnt = n > 0 ? (size_t)n : 1;
	if (m != NULL) {
		m->kids = malloc(cnt * sizeof *m->kids);
		m->keys = malloc(cnt * sizeof *m->keys);
		m->words = malloc(cnt * sizeof *m->words);
		m->heap = malloc(cnt * sizeof *m->heap);
	}
	if (m == NULL || m->kids == NULL || m->keys == NULL ||
	    m->words == NULL || m->heap == NULL) {
		for (int k = 0; k < n; k++)
			lsm_iter_destroy(children[k]);
		if (m != NULL) {
			free(m->kids);
			free(m->keys);
			free(m->words);
			free(m->heap);
			free(m);
		}
		return NULL;
	}
	m->base.ops = &merge_ops;
	m->cmp = cmp;
	m->shared = shared;
	m->n = n;
	for (int k = 0; k < n; k++)
		m->kids[k] = children[k];
	m->err_kid = -1;
	return &m->base;
}

lsm_iter *lsm_merge_iter_new(lsm_cmp_fn cmp, lsm_iter **children, int n)
{
	assert(cmp != NULL);
	return merge_new(cmp, children, n, 0);
}

lsm_iter *lsm_merge_iter_new_ikey(lsm_iter **children, int n, size_t shared)
{
	return merge_new(NULL, children, n, shared);
}

/* --- the empty iterator ------------------------------------------------- */

typedef struct empty_iter {
	lsm_iter base;
	sisy_err status;
	char msg[256]; /* the message attached when it was made */
} empty_iter;

static bool empty_valid(lsm_iter *it)
{
	(void)it;
	return false;
}

static void empty_seek_first(lsm_iter *it)
{
	(void)it;
}

static void empty_seek(lsm_iter *it, sisy_slice target)
{
	(void)it;
	(void)target;
}

static void empty_next(lsm_iter *it)
{
	(void)it;
	assert(!"next on an empty iterator");
}

static sisy_slice empty_slice(lsm_iter *it)
{
	(void)it;
	assert(!"key/value of an empty iterator");
	return sisy_slice_make(NULL, 0);
}

static sisy_err empty_status(lsm_iter *it)
{
	empty_iter *e = (empty_iter *)it;
	if (e->status != SISY_OK && e->msg[0] != '\0')
		return sisy_errf(e->status, "%s", e->msg);
	return e->status;
}

static void empty_destroy(lsm_iter *it)
{
	free(it);
}

static const lsm_iter_ops empty_ops = {
    .valid = empty_valid,
    .seek_first = empty_seek_first,
    .seek = empty_seek,
    .next = empty_next,
    .key = empty_slice,
    .value = empty_slice,
    .status = empty_status,
    .destroy = empty_destroy,
};

lsm_iter *lsm_iter_empty(sisy_err status)
{
	empty_iter *e = calloc(1, sizeof *e);
	if (e == NULL)
		return NULL;
	e->base.ops = &empty_ops;
	e->status = status;
	if (status != SISY_OK) {
		const char *msg = sisy_errmsg();
		size_t len = strlen(msg);
		if (len >= sizeof e->msg)
			len = sizeof e->msg - 1;
		memcpy(e->msg, msg, len);
		e->msg[len] = '\0';
	}
	return &e->base;
}
