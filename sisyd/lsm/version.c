/* version.c — reading a version: point lookups across the levels, iterators
 * over its tables, and range-overlap queries for compaction picking.
 *
 * Lookup order is newest data first: L0 files by descending number (a
 * higher number was flushed later), then L1, L2, ...: the first table that
 * holds any visible version of the key decides, since every lower place
 * only holds older versions.
 *
 * Pinned tables: a lookup in an L0 or L1 file goes through the table cache
 * once (hash, lock, LRU, release: about a thousand instructions, as much
 * as the rest of a probe); if the table is mapped, the file's meta keeps
 * that pin until the meta goes (its file left every version), and later
 * lookups use the table directly. Only L0 and L1: they hold the newest
 * data, which every lookup probes first, and few files (at most
 * l0_stop_trigger, and l1_max_bytes / target_file_bytes), so the tables
 * kept open beyond max_open stay few. Only mapped tables: one read with
 * pread, or starved of the map budget, stays with the table cache, which
 * reopens it mapped when the budget has room. */
#include "version.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void lsm_version_ref(lsm_version *v)
{
	atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

/* Unlinks and frees a version nobody references. mu held. */
static void version_destroy(lsm_version *v)
{
	v->prev->next = v->next;
	v->next->prev = v->prev;
	for (int l = 0; l < LSM_NUM_LEVELS; l++) {
		for (int i = 0; i < v->nfiles[l]; i++)
			lsm_file_meta_unref(v->files[l][i]);
		free(v->files[l]);
	}
	free(v);
}

/* Drops one reference; true when it was the last. */
static bool version_drop(lsm_version *v)
{
	int old = atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel);
	assert(old > 0);
	return old == 1;
}

void lsm_version_unref(lsm_version *v)
{
	if (version_drop(v))
		version_destroy(v);
}

void lsm_version_unref_unlocked(lsm_version *v, pthread_mutex_t *mu)
{
	if (version_drop(v)) {
		/* nobody can take a new reference: only the current version
		 * is handed out, and this one is not current any more */
		pthread_mutex_lock(mu);
		version_destroy(v);
		pthread_mutex_unlock(mu);
	}
}

uint64_t lsm_version_level_bytes(const lsm_version *v, int level)
{
	uint64_t sum = 0;
	for (int i = 0; i < v->nfiles[level]; i++)
		sum += v->files[level][i]->size;
	return sum;
}

static inline sisy_slice file_lo(const lsm_file_meta *f)
{
	return lsm_ikey_user(sisy_buf_slice(&f->smallest));
}

static inline sisy_slice file_hi(const lsm_file_meta *f)
{
	return lsm_ikey_user(sisy_buf_slice(&f->largest));
}

int lsm_version_find_file(const lsm_version *v, int level, sisy_slice ikey)
{
	assert(level > 0);
	int lo = 0, hi = v->nfiles[level];
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (lsm_ikey_cmp(sisy_buf_slice(&v->files[level][mid]->largest),
				 ikey) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* First file of a sorted level whose largest user key is >= ukey. */
static int find_user(const lsm_version *v, int level, sisy_slice ukey)
{
	int lo = 0, hi = v->nfiles[level];
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (sisy_slice_cmp(file_hi(v->files[level][mid]), ukey) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

typedef struct get_ctx {
	sisy_slice ukey;
	lsm_get_state state;
	sisy_buf *val;
	sisy_err rc;
} get_ctx;

static void get_fn(void *arg, sisy_slice ikey, sisy_slice value)
{
	get_ctx *c = arg;
	if (ikey.len < 8 || !sisy_slice_eq(lsm_ikey_user(ikey), c->ukey))
		return; /* the table layer promised this; stay defensive */
	if (lsm_ikey_type(ikey) == LSM_TYPE_DELETE) {
		c->state = LSM_GET_DELETED;
		return;
	}
	c->state = LSM_GET_FOUND;
	c->rc = sisy_buf_set(c->val, value.data, value.len);
}

struct lsm_file_pin {
	lsm_table_cache *tc;
	lsm_table_ref *ref;
	lsm_table *t;
};

/* f's table pinned by f, pinning it now if it opens mapped; NULL when it
 * is not (then the lookup goes through the table cache). */
static lsm_file_pin *file_pin(lsm_table_cache *tc, lsm_file_meta *f)
{
	lsm_file_pin *p = atomic_load_explicit(&f->pin, memory_order_acquire);
	if (p != NULL)
		return p;
	lsm_table *t = NULL; /* set on success; gcc -O2 cannot always tell */
	lsm_table_ref *ref = NULL;
	if (lsm_table_cache_get(tc, f->number, f->size, &t, &ref) != SISY_OK)
		return NULL; /* the lookup below reports it */
	if (!lsm_table_mapped(t) || (p = malloc(sizeof *p)) == NULL) {
		lsm_table_cache_release(tc, ref);
		return NULL;
	}
	*p = (lsm_file_pin){tc, ref, t};
	lsm_file_pin *none = NULL;
	if (!atomic_compare_exchange_strong_explicit(&f->pin, &none, p,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		lsm_table_cache_release(tc, ref); /* another reader won */
		free(p);
		p = none;
	}
	return p;
}

void lsm_file_unpin(lsm_file_meta *f)
{
	lsm_file_pin *p = atomic_load_explicit(&f->pin, memory_order_acquire);
	if (p != NULL) {
		atomic_store_explicit(&f->pin, NULL, memory_order_relaxed);
		lsm_table_cache_release(p->tc, p->ref);
		free(p);
	}
}

static sisy_err get_in_file(lsm_table_cache *tc, lsm_file_meta *f, int level,
			    sisy_slice lookup, int flags, get_ctx *c)
{
	bool found = false;
	sisy_err rc;
	lsm_file_pin *p = NULL;
	if (level <= 1)
		p = (flags & LSM_READ_NO_IO)
			? atomic_load_explicit(&f->pin, memory_order_acquire)
			: file_pin(tc, f);
	if (p != NULL)
		rc =
		    lsm_table_get_flags(p->t, lookup, flags, get_fn, c, &found);
	else
		rc = lsm_table_cache_lookup_flags(
		    tc, f->number, f->size, lookup, flags, get_fn, c, &found);
	if (rc == SISY_E_NOTFOUND) /* never "no such key": data is missing */
		rc = sisy_errf(SISY_E_CORRUPT,
			       "version.c: table %06llu.sst is listed in the "
			       "MANIFEST but cannot be opened: %s",
			       (unsigned long long)f->number, sisy_errmsg());
	if (rc == SISY_OK)
		rc = c->rc;
	return rc;
}

sisy_err lsm_version_get(lsm_version *v, lsm_table_cache *tc, sisy_slice lookup,
			 int flags, sisy_buf *val, lsm_get_state *state)
{
	get_ctx c = {.ukey = lsm_ikey_user(lookup), .val = val};
	sisy_err rc = SISY_OK;
	for (int i = v->nfiles[0] - 1; i >= 0 && c.state == LSM_GET_MISS; i--) {
		lsm_file_meta *f = v->files[0][i];
		if (sisy_slice_cmp(c.ukey, file_lo(f)) < 0 ||
		    sisy_slice_cmp(c.ukey, file_hi(f)) > 0)
			continue;
		if ((rc = get_in_file(tc, f, 0, lookup, flags, &c)) != SISY_OK)
			goto out;
	}
	for (int l = 1; l < LSM_NUM_LEVELS && c.state == LSM_GET_MISS; l++) {
		int i = find_user(v, l, c.ukey);
		if (i == v->nfiles[l])
			continue;
		lsm_file_meta *f = v->files[l][i];
		if (sisy_slice_cmp(c.ukey, file_lo(f)) < 0)
			continue;
		if ((rc = get_in_file(tc, f, l, lookup, flags, &c)) != SISY_OK)
			goto out;
	}
out:
	*state = c.state;
	return rc;
}

static sisy_err push_iter(lsm_iter ***its, int *n, int *cap, lsm_iter *it)
{
	if (it == NULL)
		return sisy_errf(SISY_E_NOMEM, "version.c: out of memory");
	if (*n == *cap) {
		int ncap = *cap ? *cap * 2 : 16;
		lsm_iter **p = realloc(*its, (size_t)ncap * sizeof *p);
		if (p == NULL) {
			lsm_iter_destroy(it);
			return sisy_errf(SISY_E_NOMEM,
					 "version.c: out of memory");
		}
		*its = p;
		*cap = ncap;
	}
	(*its)[(*n)++] = it;
	return SISY_OK;
}

sisy_err lsm_version_add_iters(lsm_version *v, lsm_table_cache *tc,
			       bool fill_cache, lsm_iter ***its, int *n,
			       int *cap)
{
	sisy_err rc = SISY_OK;
	/* newest first, so equal keys come out newest first too (they never
	 * are equal: sequence numbers are unique; order only helps reads) */
	for (int i = v->nfiles[0] - 1; i >= 0 && rc == SISY_OK; i--) {
		const lsm_file_meta *f = v->files[0][i];
		rc = push_iter(
		    its, n, cap,
		    lsm_table_cache_iter(tc, f->number, f->size, fill_cache));
	}
	for (int l = 1; l < LSM_NUM_LEVELS && rc == SISY_OK; l++) {
		if (v->nfiles[l] == 0)
			continue;
		rc = push_iter(its, n, cap,
			       lsm_level_iter_new(tc, v->files[l], v->nfiles[l],
						  fill_cache));
	}
	return rc;
}

static bool file_meets(const lsm_file_meta *f, const sisy_slice *lo,
		       const sisy_slice *hi)
{
	if (lo != NULL && sisy_slice_cmp(file_hi(f), *lo) < 0)
		return false;
	if (hi != NULL && sisy_slice_cmp(file_lo(f), *hi) > 0)
		return false;
	return true;
}

sisy_err lsm_version_overlapping(const lsm_version *v, int level,
				 const sisy_slice *lo, const sisy_slice *hi,
				 lsm_file_meta ***out, int *n)
{
	int cnt = 0;
	lsm_file_meta **arr =
	    malloc(sizeof *arr * (size_t)(v->nfiles[level] + 1));
	if (arr == NULL)
		return sisy_errf(SISY_E_NOMEM, "version.c: out of memory");
	int start = 0;
	if (level > 0 && lo != NULL)
		start = find_user(v, level, *lo);
	for (int i = start; i < v->nfiles[level]; i++) {
		lsm_file_meta *f = v->files[level][i];
		if (file_meets(f, lo, hi))
			arr[cnt++] = f;
		else if (level > 0 && hi != NULL &&
			 sisy_slice_cmp(file_lo(f), *hi) > 0)
			break; /* sorted: nothing further meets */
	}
	*out = arr;
	*n = cnt;
	return SISY_OK;
}

bool lsm_version_overlaps(const lsm_version *v, int level, const sisy_slice *lo,
			  const sisy_slice *hi)
{
	if (level == 0) {
		for (int i = 0; i < v->nfiles[0]; i++)
			if (file_meets(v->files[0][i], lo, hi))
				return true;
		return false;
	}
	int i = lo != NULL ? find_user(v, level, *lo) : 0;
	return i < v->nfiles[level] && file_meets(v->files[level][i], lo, hi);
}
