/* db_iter.c — the public iterator: a consistent view as of one sequence.
 *
 * It merges mem, imm and every table of a pinned version (newest sources
 * first) into one stream of internal keys, and shows each user key once:
 * its newest version with a sequence <= the view's, skipped entirely when
 * that version is a delete. Forward only. The pins (memtables, version)
 * keep everything it reads alive until it is freed, whatever flushes and
 * compactions do meanwhile. An error in any source (corruption, I/O) ends
 * the iteration: valid() turns false and status() says why. */
#include <stdlib.h>
#include <string.h>

#include "db.h"

struct sisy_lsm_iter {
	sisy_lsm *db;
	lsm_iter *merged;
	lsm_version *v;
	uint64_t seq;
	bool valid;
	sisy_err status;
	sisy_buf skip;	 /* user key whose older versions are hidden */
	sisy_buf target; /* seek key */
};

/* From the merged iterator's position, finds the next visible entry. When
 * skipping, versions of it->skip are hidden. */
static void find_next(sisy_lsm_iter *it, bool skipping)
{
	lsm_iter *m = it->merged;
	it->valid = false;
	for (; lsm_iter_valid(m); lsm_iter_next(m)) {
		sisy_slice k = lsm_iter_key(m);
		if (k.len < 8) {
			it->status = sisy_errf(SISY_E_CORRUPT,
					       "db_iter.c: a %zu-byte internal "
					       "key",
					       k.len);
			return;
		}
		if (lsm_ikey_seq(k) > it->seq)
			continue; /* written after the view */
		sisy_slice user = lsm_ikey_user(k);
		if (skipping && sisy_slice_eq(user, sisy_buf_slice(&it->skip)))
			continue; /* an older version */
		if (lsm_ikey_type(k) == LSM_TYPE_DELETE) {
			if (sisy_buf_set(&it->skip, user.data, user.len) !=
			    SISY_OK) {
				it->status = SISY_E_NOMEM;
				return;
			}
			skipping = true;
			continue;
		}
		it->valid = true;
		return;
	}
	it->status = lsm_iter_status(m);
	if (it->status == SISY_E_NOTFOUND) /* a missing table file */
		it->status = sisy_errf(SISY_E_CORRUPT,
				       "db_iter.c: a table the MANIFEST lists "
				       "is missing: %s",
				       sisy_errmsg());
}

sisy_lsm_iter *sisy_lsm_iter_new(sisy_lsm *db, const sisy_lsm_snapshot *snap)
{
	sisy_lsm_iter *it = calloc(1, sizeof *it);
	if (it == NULL)
		return NULL;
	it->db = db;
	lsm_iter **kids = NULL;
	int n = 0, cap = 0;
	pthread_mutex_lock(&db->mu);
	it->seq = snap != NULL ? snap->seq : db->last_seq;
	it->v = db->vs->current;
	lsm_version_ref(it->v);
	lsm_memtable *mem = db->mem, *imm = db->imm;
	lsm_memtable_ref(mem);
	if (imm != NULL)
		lsm_memtable_ref(imm);
	pthread_mutex_unlock(&db->mu);

	/* newest first: mem, imm, then the tables */
	sisy_err rc = SISY_OK;
	cap = 8;
	kids = malloc((size_t)cap * sizeof *kids);
	if (kids == NULL)
		rc = SISY_E_NOMEM;
	if (rc == SISY_OK) {
		kids[n] = lsm_memtable_iter_new(mem);
		rc = kids[n] != NULL ? SISY_OK : SISY_E_NOMEM;
		n += rc == SISY_OK;
	}
	if (rc == SISY_OK && imm != NULL) {
		kids[n] = lsm_memtable_iter_new(imm);
		rc = kids[n] != NULL ? SISY_OK : SISY_E_NOMEM;
		n += rc == SISY_OK;
	}
	lsm_memtable_unref(mem); /* the iterators hold their own refs */
	lsm_memtable_unref(imm);
	if (rc == SISY_OK)
		rc =
		    lsm_version_add_iters(it->v, db->tc, true, &kids, &n, &cap);
	if (rc == SISY_OK) {
		it->merged = lsm_merge_iter_new_ikey(kids, n, 0);
		if (it->merged == NULL)
			rc = SISY_E_NOMEM;
		n = 0; /* the merge owns (or destroyed) the children */
	}
	for (int i = 0; i < n; i++)
		lsm_iter_destroy(kids[i]);
	free(kids);
	if (rc != SISY_OK) {
		sisy_lsm_iter_free(it);
		return NULL;
	}
	return it;
}

void sisy_lsm_iter_seek_first(sisy_lsm_iter *it)
{
	if (it->status != SISY_OK)
		return;
	lsm_iter_seek_first(it->merged);
	find_next(it, false);
}

void sisy_lsm_iter_seek(sisy_lsm_iter *it, const void *key, size_t klen)
{
	if (it->status != SISY_OK)
		return;
	if (lsm_ikey(&it->target, sisy_slice_make(key, klen), it->seq,
		     LSM_TYPE_SEEK) != SISY_OK) {
		it->valid = false;
		it->status = SISY_E_NOMEM;
		return;
	}
	lsm_iter_seek(it->merged, sisy_buf_slice(&it->target));
	find_next(it, false);
}

bool sisy_lsm_iter_valid(const sisy_lsm_iter *it)
{
	return it->valid && it->status == SISY_OK;
}

void sisy_lsm_iter_next(sisy_lsm_iter *it)
{
	if (!sisy_lsm_iter_valid(it))
		return;
	sisy_slice user = lsm_ikey_user(lsm_iter_key(it->merged));
	if (sisy_buf_set(&it->skip, user.data, user.len) != SISY_OK) {
		it->valid = false;
		it->status = SISY_E_NOMEM;
		return;
	}
	lsm_iter_next(it->merged);
	find_next(it, true);
}

const uint8_t *sisy_lsm_iter_key(const sisy_lsm_iter *it, size_t *len)
{
	sisy_slice k = lsm_ikey_user(lsm_iter_key(it->merged));
	*len = k.len;
	return k.data;
}

const uint8_t *sisy_lsm_iter_value(const sisy_lsm_iter *it, size_t *len)
{
	sisy_slice v = lsm_iter_value(it->merged);
	*len = v.len;
	return v.data;
}

sisy_err sisy_lsm_iter_status(const sisy_lsm_iter *it)
{
	if (it->status == SISY_OK || it->merged == NULL)
		return it->status;
	/* re-attach the failed source's message (file and offset) */
	if (lsm_iter_status(it->merged) == SISY_E_NOTFOUND)
		sisy_errf(SISY_E_CORRUPT,
			  "db_iter.c: a table the MANIFEST lists is missing: "
			  "%s",
			  sisy_errmsg());
	return it->status;
}

void sisy_lsm_iter_free(sisy_lsm_iter *it)
{
	if (it == NULL)
		return;
	lsm_iter_destroy(it->merged);
	if (it->v != NULL)
		lsm_version_unref_unlocked(it->v, &it->db->mu);
	sisy_buf_free(&it->skip);
	sisy_buf_free(&it->target);
	free(it);
}
