/* db_flush.c — turning the full memtable into imm, and imm into a table.
 *
 * Switch (front writer, mu held): a fresh memtable and, with the WAL on, a
 * fresh log whose header is written but not synced: a synced write later
 * syncs it (and the old log, and the directory) before it is acknowledged.
 *
 * Flush (background thread, mu held on entry, released for I/O):
 *   1. write imm into a new table (without the versions no snapshot can see:
 *      lsm_memtable_flush_iter_new), sync it, sync the directory;
 *   2. log an edit {new file, log number = the live WAL's, last sequence,
 *      imm's metadata} to the MANIFEST (synced) and install it;
 *   3. only then drop imm; its WAL becomes obsolete (deleted later).
 * A crash anywhere in between leaves either the old state (imm's WAL still
 * replays) or the new one. A flushed table goes straight to L1 or L2 when it
 * overlaps nothing on the way (as LevelDB does), except while a compaction
 * runs: that compaction's outputs are not in the version yet, and the table
 * could land between them. */
#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "db.h"

sisy_err db_switch_memtable(sisy_lsm *db)
{
	if (db->imm == NULL && db->imm_wal != NULL) {
		lsm_wal_close(db->imm_wal); /* imm was flushed: obsolete */
		db->imm_wal = NULL;
	}
	lsm_memtable *nm = lsm_memtable_new_runs(db->o.memtable_bytes,
						 db->o.memtable_run_bytes);
	if (nm == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "db_flush.c: out of memory for a memtable");
	lsm_wal_writer *nw = NULL;
	if (db->o.wal) {
		uint64_t num = lsm_vset_new_file_number(db->vs);
		char path[4096];
		db_path(db, path, sizeof path, num, LSM_FILE_WAL);
		pthread_mutex_unlock(&db->mu);
		sisy_err rc =
		    lsm_wal_create(db->fs, path, LSM_WAL_LOG, num, &nw);
		pthread_mutex_lock(&db->mu);
		if (rc != SISY_OK) {
			lsm_memtable_unref(nm);
			if (rc != SISY_E_NOSPC)
				return db_fail(db, rc, "creating a WAL");
			return rc;
		}
	}
	sisy_err rc = db_meta_set(&db->imm_meta, db->meta.ver,
				  sisy_buf_slice(&db->meta.data));
	if (rc != SISY_OK) {
		lsm_memtable_unref(nm);
		lsm_wal_close(nw);
		return rc;
	}
	db->imm = db->mem;
	atomic_store(&db->has_imm, true);
	db->imm_last_seq = db->last_seq;
	db->imm_wal = db->wal;
	db->imm_wal_dirty = db->wal_dirty;
	db->wal = nw;
	db->wal_dirty = false;
	db->wal_name_durable = false;
	db->mem = nm;
	db->switches++;
	db_bg_wake(db);
	return SISY_OK;
}

/* The level for a flushed table spanning user keys [lo, hi]. */
static int flush_level(sisy_lsm *db, const lsm_version *v, sisy_slice lo,
		       sisy_slice hi)
{
	int level = 0;
	if (db->compacting || lsm_version_overlaps(v, 0, &lo, &hi))
		return 0;
	while (level < DB_MAX_MEM_LEVEL) {
		if (lsm_version_overlaps(v, level + 1, &lo, &hi))
			break;
		if (level + 2 < LSM_NUM_LEVELS) {
			lsm_file_meta **gp;
			int n;
			if (lsm_version_overlapping(v, level + 2, &lo, &hi, &gp,
						    &n) != SISY_OK)
				break;
			uint64_t bytes = 0;
			for (int i = 0; i < n; i++)
				bytes += gp[i]->size;
			free(gp);
			if (bytes > 10 * (uint64_t)db->o.target_file_bytes)
				break;
		}
		level++;
	}
	return level;
}

sisy_err db_flush_imm(sisy_lsm *db)
{
	lsm_memtable *imm = db->imm;
	uint64_t num = lsm_vset_new_file_number(db->vs);
	lsm_file_meta *fm = NULL;
	bool fatal = false;
	sisy_err rc = SISY_OK;
	uint64_t start = sisy_now_us();
	uint64_t smallest = db_oldest_snapshot(db);

	pthread_mutex_unlock(&db->mu);
	/* without the versions no snapshot can see: overwritten keys (and the
	 * node's per-client header records, rewritten every batch) then cost
	 * neither this flush nor the compactions after it. Readers that pinned
	 * imm or an older version read those, not the new table; snapshots
	 * taken after `smallest` was read see all of imm. */
	lsm_iter *it = lsm_memtable_flush_iter_new(imm, smallest);
	if (it == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "db_flush.c: out of memory");
		fatal = true;
	} else {
		rc = db_write_table(db, it, num, &fm, &fatal);
		lsm_iter_destroy(it);
	}
	if (rc == SISY_OK && fm != NULL) {
		rc = sisy_fs_sync_dir(db->fs, db->dir);
		fatal = rc != SISY_OK;
	}
	pthread_mutex_lock(&db->mu);
	if (rc != SISY_OK)
		goto fail;

	lsm_version_edit e;
	lsm_edit_init(&e);
	if (fm != NULL) {
		int level =
		    flush_level(db, db->vs->current,
				lsm_ikey_user(sisy_buf_slice(&fm->smallest)),
				lsm_ikey_user(sisy_buf_slice(&fm->largest)));
		rc = lsm_edit_add_file(&e, level, fm->number, fm->size,
				       sisy_buf_slice(&fm->smallest),
				       sisy_buf_slice(&fm->largest));
	}
	lsm_edit_set_log_number(&e, db->wal != NULL ? lsm_wal_number(db->wal)
						    : db->vs->next_file);
	lsm_edit_set_last_seq(&e, db->imm_last_seq);
	if (rc == SISY_OK && db->imm_meta.ver != 0)
		rc = lsm_edit_set_meta(&e, sisy_buf_slice(&db->imm_meta.data));
	if (rc == SISY_OK) {
		rc = lsm_vset_log_and_apply(db->vs, &e, &db->mu);
		fatal = rc != SISY_OK && db->vs->fatal;
	} else {
		fatal = true;
	}
	lsm_edit_free(&e);
	if (rc != SISY_OK)
		goto fail;

	db->imm = NULL;
	atomic_store(&db->has_imm, false);
	lsm_memtable_unref(imm);
	db->flushed++;
	rc = db_meta_advance(&db->durable, &db->imm_meta);
	LSM_COUNT(&db->counters, flushes, 1);
	db_bg_ok(db);
	sisy_log(db->log, SISY_LOG_DEBUG, DB_COMPONENT,
		 "flushed memtable to %06llu.sst (%llu bytes) in %llu us",
		 (unsigned long long)num,
		 (unsigned long long)(fm != NULL ? fm->size : 0),
		 (unsigned long long)(sisy_now_us() - start));
	lsm_file_meta_unref(fm);
	pthread_cond_broadcast(&db->bg_cv);
	return rc;
fail:
	lsm_file_meta_unref(fm);
	if (fm != NULL) {
		char path[4096];
		db_path(db, path, sizeof path, num, LSM_FILE_TABLE);
		if (!fatal)
			sisy_fs_unlink(db->fs, path);
	}
	if (fatal)
		rc = db_fail(db, rc, "flushing the memtable");
	else
		db_bg_nospc(db);
	pthread_cond_broadcast(&db->bg_cv);
	return rc;
}
