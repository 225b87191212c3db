/* compaction.c — picking compactions (policy: compaction.h). */
#include "compaction.h"

#include <stdlib.h>
#include <string.h>

static sisy_slice f_lo(const lsm_file_meta *f)
{
	return lsm_ikey_user(sisy_buf_slice(&f->smallest));
}

static sisy_slice f_hi(const lsm_file_meta *f)
{
	return lsm_ikey_user(sisy_buf_slice(&f->largest));
}

/* The user-key range covered by files. */
static void range_of(lsm_file_meta **files, int n, sisy_slice *lo,
		     sisy_slice *hi)
{
	for (int i = 0; i < n; i++) {
		if (i == 0 || sisy_slice_cmp(f_lo(files[i]), *lo) < 0)
			*lo = f_lo(files[i]);
		if (i == 0 || sisy_slice_cmp(f_hi(files[i]), *hi) > 0)
			*hi = f_hi(files[i]);
	}
}

/* L0 files overlapping [lo, hi], growing the range until no other L0 file
 * meets it. */
static sisy_err l0_closure(const lsm_version *v, sisy_slice lo, sisy_slice hi,
			   lsm_file_meta ***out, int *n)
{
	for (;;) {
		sisy_err rc = lsm_version_overlapping(v, 0, &lo, &hi, out, n);
		if (rc != SISY_OK)
			return rc;
		sisy_slice nlo = lo, nhi = hi;
		range_of(*out, *n, &nlo, &nhi);
		if (sisy_slice_cmp(nlo, lo) < 0 ||
		    sisy_slice_cmp(nhi, hi) > 0) {
			lo = sisy_slice_cmp(nlo, lo) < 0 ? nlo : lo;
			hi = sisy_slice_cmp(nhi, hi) > 0 ? nhi : hi;
			free(*out);
			*out = NULL;
			continue;
		}
		return SISY_OK;
	}
}

static lsm_compaction *compaction_new(lsm_version_set *vs, int level,
				      uint64_t target)
{
	lsm_compaction *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->level = level;
	c->v = vs->current;
	lsm_version_ref(c->v);
	c->max_output_bytes = target;
	c->max_gp_overlap = 10 * target;
	return c;
}

/* Fills in[1] and the grandparents from in[0]. */
static sisy_err setup_others(lsm_compaction *c)
{
	sisy_slice lo = {0}, hi = {0};
	range_of(c->in[0], c->nin[0], &lo, &hi);
	sisy_err rc = lsm_version_overlapping(c->v, c->level + 1, &lo, &hi,
					      &c->in[1], &c->nin[1]);
	if (rc != SISY_OK)
		return rc;
	if (c->nin[1] > 0) {
		sisy_slice lo1, hi1;
		range_of(c->in[1], c->nin[1], &lo1, &hi1);
		if (sisy_slice_cmp(lo1, lo) < 0)
			lo = lo1;
		if (sisy_slice_cmp(hi1, hi) > 0)
			hi = hi1;
	}
	if (c->level + 2 < LSM_NUM_LEVELS)
		rc = lsm_version_overlapping(c->v, c->level + 2, &lo, &hi,
					     &c->gp, &c->ngp);
	return rc;
}

lsm_compaction *lsm_compaction_pick(lsm_version_set *vs,
				    uint64_t target_file_bytes,
				    lsm_version_edit *e)
{
	const lsm_version *v = vs->current;
	if (v->compaction_score < 1 || v->compaction_level < 0)
		return NULL;
	int level = v->compaction_level;
	if (v->nfiles[level] == 0)
		return NULL;
	lsm_compaction *c = compaction_new(vs, level, target_file_bytes);
	if (c == NULL)
		return NULL;
	sisy_err rc;
	if (level == 0) {
		const lsm_file_meta *f = v->files[0][0]; /* the oldest */
		rc = l0_closure(v, f_lo(f), f_hi(f), &c->in[0], &c->nin[0]);
	} else {
		int i = 0;
		const sisy_buf *ptr = &vs->pointers[level];
		if (ptr->len > 0) {
			while (i < v->nfiles[level] &&
			       lsm_ikey_cmp(
				   sisy_buf_slice(&v->files[level][i]->largest),
				   sisy_buf_slice(ptr)) <= 0)
				i++;
			if (i == v->nfiles[level])
				i = 0; /* wrap around the key space */
		}
		c->in[0] = malloc(sizeof(lsm_file_meta *));
		rc = c->in[0] != NULL ? SISY_OK : SISY_E_NOMEM;
		if (rc == SISY_OK) {
			c->in[0][0] = v->files[level][i];
			c->nin[0] = 1;
		}
	}
	if (rc == SISY_OK)
		rc = setup_others(c);
	if (rc == SISY_OK && level > 0)
		rc = lsm_edit_set_pointer(
		    e, level, sisy_buf_slice(&c->in[0][0]->largest));
	if (rc != SISY_OK) {
		lsm_compaction_free(c);
		return NULL;
	}
	return c;
}

lsm_compaction *lsm_compaction_level(lsm_version_set *vs, int level,
				     uint64_t target_file_bytes, bool *nomem)
{
	*nomem = false;
	if (level < 0 || level >= LSM_NUM_LEVELS - 1 ||
	    vs->current->nfiles[level] == 0)
		return NULL;
	lsm_compaction *c = compaction_new(vs, level, target_file_bytes);
	sisy_err rc = c != NULL ? SISY_OK : SISY_E_NOMEM;
	if (c != NULL)
		c->manual = true;
	if (rc == SISY_OK)
		rc = lsm_version_overlapping(c->v, level, NULL, NULL, &c->in[0],
					     &c->nin[0]);
	if (rc == SISY_OK)
		rc = setup_others(c);
	if (rc != SISY_OK) {
		lsm_compaction_free(c);
		*nomem = true;
		return NULL;
	}
	return c;
}

void lsm_compaction_free(lsm_compaction *c)
{
	if (c == NULL)
		return;
	lsm_version_unref(c->v);
	free(c->in[0]);
	free(c->in[1]);
	free(c->gp);
	free(c);
}

bool lsm_compaction_is_trivial(const lsm_compaction *c)
{
	if (c->manual || c->nin[0] != 1 || c->nin[1] != 0)
		return false;
	uint64_t gp = 0;
	for (int i = 0; i < c->ngp; i++)
		gp += c->gp[i]->size;
	return gp <= c->max_gp_overlap;
}

bool lsm_compaction_is_base_level(lsm_compaction *c, sisy_slice ukey)
{
	for (int l = c->level + 2; l < LSM_NUM_LEVELS; l++) {
		lsm_file_meta **files = c->v->files[l];
		int n = c->v->nfiles[l];
		while (c->level_ptrs[l] < n) {
			const lsm_file_meta *f = files[c->level_ptrs[l]];
			if (sisy_slice_cmp(ukey, f_hi(f)) <= 0) {
				if (sisy_slice_cmp(ukey, f_lo(f)) >= 0)
					return false;
				break;
			}
			c->level_ptrs[l]++;
		}
	}
	return true;
}

bool lsm_compaction_stop_before(lsm_compaction *c, sisy_slice ikey)
{
	while (c->gp_idx < c->ngp &&
	       lsm_ikey_cmp(ikey, sisy_buf_slice(&c->gp[c->gp_idx]->largest)) >
		   0) {
		if (c->seen_key)
			c->overlapped += c->gp[c->gp_idx]->size;
		c->gp_idx++;
	}
	c->seen_key = true;
	if (c->overlapped > c->max_gp_overlap) {
		c->overlapped = 0;
		return true;
	}
	return false;
}

sisy_err lsm_compaction_delete_inputs(const lsm_compaction *c,
				      lsm_version_edit *e)
{
	sisy_err rc = SISY_OK;
	for (int w = 0; w < 2; w++)
		for (int i = 0; rc == SISY_OK && i < c->nin[w]; i++)
			rc = lsm_edit_delete_file(e, c->level + w,
						  c->in[w][i]->number);
	return rc;
}

uint64_t lsm_compaction_input_bytes(const lsm_compaction *c)
{
	uint64_t sum = 0;
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < c->nin[w]; i++)
			sum += c->in[w][i]->size;
	return sum;
}

/* How many leading bytes every user key in c's inputs shares: those of the
 * smallest and the largest (any key between two keys starts with their
 * common prefix). */
static size_t input_shared_prefix(const lsm_compaction *c)
{
	sisy_slice lo = {NULL, 0}, hi = {NULL, 0};
	bool any = false;
	for (int w = 0; w < 2; w++)
		for (int i = 0; i < c->nin[w]; i++) {
			sisy_slice s = lsm_ikey_user(
			    sisy_buf_slice(&c->in[w][i]->smallest));
			sisy_slice l = lsm_ikey_user(
			    sisy_buf_slice(&c->in[w][i]->largest));
			if (!any || sisy_slice_cmp(s, lo) < 0)
				lo = s;
			if (!any || sisy_slice_cmp(l, hi) > 0)
				hi = l;
			any = true;
		}
	size_t n = lo.len < hi.len ? lo.len : hi.len, i = 0;
	while (i < n && lo.data[i] == hi.data[i])
		i++;
	return i;
}

lsm_iter *lsm_compaction_input_iter(const lsm_compaction *c,
				    lsm_table_cache *tc)
{
	int n = (c->level == 0 ? c->nin[0] : 1) + 1;
	lsm_iter **kids = calloc((size_t)n, sizeof *kids);
	if (kids == NULL)
		return NULL;
	int k = 0;
	bool ok = true;
	if (c->level == 0) {
		for (int i = 0; i < c->nin[0]; i++) {
			const lsm_file_meta *f = c->in[0][i];
			kids[k] =
			    lsm_table_cache_iter(tc, f->number, f->size, false);
			ok &= kids[k++] != NULL;
		}
	} else {
		kids[k] = lsm_level_iter_new(tc, c->in[0], c->nin[0], false);
		ok &= kids[k++] != NULL;
	}
	kids[k] = lsm_level_iter_new(tc, c->in[1], c->nin[1], false);
	ok &= kids[k++] != NULL;
	lsm_iter *m = NULL;
	if (ok) {
		m = lsm_merge_iter_new_ikey(kids, k, input_shared_prefix(c));
	} else {
		for (int i = 0; i < k; i++)
			lsm_iter_destroy(kids[i]);
	}
	free(kids);
	return m;
}
