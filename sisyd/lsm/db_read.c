/* db_read.c — point lookups.
 *
 * Under mu: pick the sequence (the snapshot's, or the last acknowledged
 * write's) and pin mem, imm and the current version (atomic references, so
 * dropping them needs no mu). Without mu: search mem,
 * then imm, then the tables (version.c), stopping at the first place that
 * holds a version of the key visible at that sequence: the newest one wins,
 * and a delete there means "not found".
 *
 * sisy_lsm_get_cached is the same search with LSM_READ_NO_IO: where the
 * tables would need the file (table.h) it stops with SISY_E_AGAIN, so an
 * event loop can answer from memory and hand the rest to a thread. */
#include <string.h>

#include "db.h"

/* Lookup keys for keys up to this size are built on the stack. */
#define DB_STACK_KEY 256

static sisy_err db_get(sisy_lsm *db, const sisy_lsm_snapshot *snap,
		       const void *key, size_t klen, int flags, sisy_buf *val)
{
	if (klen == 0)
		return sisy_errf(SISY_E_INVAL, "lsm: get of an empty key");
	if (klen > SISY_LSM_MAX_KEY)
		return sisy_errf(SISY_E_TOOBIG,
				 "lsm: key of %zu bytes exceeds the limit of "
				 "%u (SISY_LSM_MAX_KEY)",
				 klen, SISY_LSM_MAX_KEY);
	uint8_t stack[DB_STACK_KEY + 8];
	sisy_buf heap = {0};
	uint8_t *lk = stack;
	if (klen > DB_STACK_KEY) {
		if (sisy_buf_reserve(&heap, klen + 8) != SISY_OK)
			return sisy_errf(SISY_E_NOMEM, "lsm: out of memory");
		lk = heap.data;
	}
	memcpy(lk, key, klen);

	pthread_mutex_lock(&db->mu);
	uint64_t seq = snap != NULL ? snap->seq : db->last_seq;
	lsm_memtable *mem = db->mem, *imm = db->imm;
	lsm_memtable_ref(mem);
	if (imm != NULL)
		lsm_memtable_ref(imm);
	lsm_version *v = db->vs->current;
	lsm_version_ref(v);
	pthread_mutex_unlock(&db->mu);

	sisy_put_u64(lk + klen, lsm_trailer(seq, LSM_TYPE_SEEK));
	sisy_slice lookup = sisy_slice_make(lk, klen + 8);
	sisy_err rc = SISY_OK;
	sisy_slice v0;
	lsm_mem_result mr = lsm_memtable_get(mem, lookup, &v0);
	if (mr == LSM_MEM_MISS && imm != NULL)
		mr = lsm_memtable_get(imm, lookup, &v0);
	if (mr == LSM_MEM_FOUND) {
		rc = sisy_buf_set(val, v0.data, v0.len);
	} else if (mr == LSM_MEM_DELETED) {
		rc = SISY_E_NOTFOUND;
	} else {
		lsm_get_state st;
		rc = lsm_version_get(v, db->tc, lookup, flags, val, &st);
		if (rc == SISY_OK && st != LSM_GET_FOUND)
			rc = SISY_E_NOTFOUND;
	}

	lsm_version_unref_unlocked(v, &db->mu);
	lsm_memtable_unref(mem);
	lsm_memtable_unref(imm);
	sisy_buf_free(&heap);
	if (rc == SISY_E_NOTFOUND)
		sisy_errclear();
	if (rc != SISY_E_AGAIN) /* else counted by the read that follows */
		LSM_COUNT(&db->counters, gets, 1);
	return rc;
}

sisy_err sisy_lsm_get(sisy_lsm *db, const sisy_lsm_snapshot *snap,
		      const void *key, size_t klen, sisy_buf *val)
{
	return db_get(db, snap, key, klen, 0, val);
}

sisy_err sisy_lsm_get_cached(sisy_lsm *db, const sisy_lsm_snapshot *snap,
			     const void *key, size_t klen, sisy_buf *val)
{
	return db_get(db, snap, key, klen, LSM_READ_NO_IO, val);
}
