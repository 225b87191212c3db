/* db_maint.c — sisy_lsm_flush and sisy_lsm_compact_all: requests handed to
 * the background thread, waited for on bg_cv.
 *
 * Flush goes through the writer queue (a write of no batch that forces a
 * memtable switch), so it is ordered with writes: everything acknowledged
 * before the call is in the memtable it switches. It then waits until that
 * memtable is flushed (memtables flush in order; `flushed` counts them). */
#include <stdio.h>

#include "db.h"

static sisy_err wait_flushed(sisy_lsm *db, uint64_t target)
{
	sisy_err rc = SISY_OK;
	while (db->flushed < target) {
		if ((rc = db_check_failed(db)) != SISY_OK)
			break;
		if (db->bg_nospc) {
			rc = sisy_errf(SISY_E_NOSPC,
				       "lsm: flush: the disk is full (%s); "
				       "retrying in the background",
				       db->dir);
			break;
		}
		db_bg_wake(db);
		pthread_cond_wait(&db->bg_cv, &db->mu);
	}
	return rc;
}

sisy_err sisy_lsm_flush(sisy_lsm *db)
{
	sisy_err rc = db_write(db, NULL, false, false);
	if (rc != SISY_OK)
		return rc;
	pthread_mutex_lock(&db->mu);
	rc = wait_flushed(db, db->switches);
	pthread_mutex_unlock(&db->mu);
	return rc;
}

static int deepest_level(const lsm_version *v)
{
	int deepest = 0;
	for (int l = 1; l < LSM_NUM_LEVELS; l++)
		if (v->nfiles[l] > 0)
			deepest = l;
	return deepest;
}

sisy_err sisy_lsm_compact_all(sisy_lsm *db)
{
	sisy_err rc = sisy_lsm_flush(db);
	if (rc != SISY_OK)
		return rc;
	pthread_mutex_lock(&db->mu);
	/* every level down to the deepest one holding data moves one further
	 * down, so every table is rewritten: old versions and tombstones go */
	int last = deepest_level(db->vs->current);
	if (last > LSM_NUM_LEVELS - 2)
		last = LSM_NUM_LEVELS - 2;
	for (int level = 0; level <= last && rc == SISY_OK; level++) {
		db_manual m = {.level = level};
		while (db->manual != NULL &&
		       (rc = db_check_failed(db)) == SISY_OK)
			pthread_cond_wait(&db->bg_cv, &db->mu);
		if (rc != SISY_OK)
			break;
		db->manual = &m;
		db_bg_wake(db);
		while (!m.done) /* the thread always answers, even failed */
			pthread_cond_wait(&db->bg_cv, &db->mu);
		rc = m.rc;
		if (rc == SISY_E_FAILED)
			rc = db_check_failed(db);
		else if (rc != SISY_OK)
			sisy_errf(rc, "%s", m.msg);
	}
	pthread_mutex_unlock(&db->mu);
	return rc;
}
