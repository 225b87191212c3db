/* db_recover.c — bringing a database directory back to its last state.
 *
 *   1. CURRENT -> MANIFEST -> the levels, counters and flushed metadata
 *      (version_set.c). No CURRENT: a new database, unless tables or logs
 *      lie around (then CURRENT was lost, which is corruption).
 *   2. Replay every WAL numbered >= the MANIFEST's log number, in order,
 *      into a memtable (written out as an L0 table whenever it fills).
 *      A torn tail ends the replay: in the last log it is a write cut short
 *      by the crash. In an earlier log it is one of two things. A synced
 *      write always syncs every earlier log first and records that in its
 *      own log as a SEAL (log number, size). With no seal, the earlier log
 *      was never synced, so the later logs hold no acknowledged synced
 *      write either: they are dropped, keeping a prefix of the writes.
 *      With a seal beyond the damage, the earlier log was complete on disk
 *      and is now corrupt. Corruption anywhere else fails the open
 *      (SISY_E_CORRUPT, file and offset).
 *   3. Write what was replayed to a table, start a new WAL, and write a new
 *      MANIFEST (tables, log number, last sequence, metadata) switched in
 *      by CURRENT. Its directory sync makes the tables and the WAL's name
 *      durable too. Only then are the old logs and MANIFEST deleted.
 * A crash during recovery leaves the old CURRENT and old logs: recovery
 * starts over. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "u64set.h"

typedef struct dir_scan {
	uint64_t *wals;
	int nwals, cap;
	bool data_files; /* any table or log */
	uint64_t max_num;
	bool nomem;
} dir_scan;

static void scan_entry(void *ctx, const char *name)
{
	dir_scan *s = ctx;
	unsigned long long n;
	char suffix[8], tail;
	if (sscanf(name, "MANIFEST-%llu%c", &n, &tail) == 1) {
		if (n > s->max_num)
			s->max_num = n;
		return;
	}
	if (strspn(name, "0123456789") == 0 ||
	    sscanf(name, "%llu.%7s", &n, suffix) != 2)
		return;
	bool wal = strcmp(suffix, "log") == 0;
	if (!wal && strcmp(suffix, "sst") != 0)
		return;
	s->data_files = true;
	if (n > s->max_num)
		s->max_num = n;
	if (!wal)
		return;
	if (s->nwals == s->cap) {
		int ncap = s->cap ? s->cap * 2 : 8;
		uint64_t *p = realloc(s->wals, (size_t)ncap * sizeof *p);
		if (p == NULL) {
			s->nomem = true;
			return;
		}
		s->wals = p;
		s->cap = ncap;
	}
	s->wals[s->nwals++] = n;
}

typedef struct replay {
	sisy_lsm *db;
	lsm_memtable *mem;
	lsm_version_edit *edit;
	uint64_t max_seq;
} replay;

static sisy_err rp_put(void *ctx, uint64_t seq, sisy_slice k, sisy_slice v)
{
	replay *r = ctx;
	if (seq > r->max_seq)
		r->max_seq = seq;
	return lsm_memtable_add(r->mem, seq, LSM_TYPE_VALUE, k, v);
}

static sisy_err rp_del(void *ctx, uint64_t seq, sisy_slice k)
{
	replay *r = ctx;
	if (seq > r->max_seq)
		r->max_seq = seq;
	return lsm_memtable_add(r->mem, seq, LSM_TYPE_DELETE, k,
				sisy_slice_make(NULL, 0));
}

static sisy_err rp_meta(void *ctx, sisy_slice m)
{
	replay *r = ctx;
	return db_meta_set(&r->db->meta, ++r->db->meta_ver, m);
}

/* Writes the replay memtable to an L0 table recorded in the edit, and
 * starts a fresh memtable. */
static sisy_err rp_flush(replay *r)
{
	sisy_lsm *db = r->db;
	if (lsm_memtable_entries(r->mem) == 0)
		return SISY_OK;
	/* No snapshot exists while the database opens: only each key's
	 * newest version goes to the table, as a flush that every snapshot
	 * has passed would keep (an overwritten key cost a table entry per
	 * version, until a compaction dropped them). */
	lsm_iter *it = lsm_memtable_flush_iter_new(r->mem, LSM_MAX_SEQ);
	if (it == NULL)
		return sisy_errf(SISY_E_NOMEM, "db_recover.c: out of memory");
	lsm_file_meta *fm = NULL;
	bool fatal;
	uint64_t num = lsm_vset_new_file_number(db->vs);
	sisy_err rc = db_write_table(db, it, num, &fm, &fatal);
	lsm_iter_destroy(it);
	if (rc == SISY_OK && fm != NULL) {
		rc = lsm_edit_add_file(r->edit, 0, fm->number, fm->size,
				       sisy_buf_slice(&fm->smallest),
				       sisy_buf_slice(&fm->largest));
		LSM_COUNT(&db->counters, flushes, 1);
	}
	lsm_file_meta_unref(fm);
	if (rc != SISY_OK)
		return rc;
	lsm_memtable *m = lsm_memtable_new_runs(db->o.memtable_bytes,
						db->o.memtable_run_bytes);
	if (m == NULL)
		return sisy_errf(SISY_E_NOMEM, "db_recover.c: out of memory");
	lsm_memtable_unref(r->mem);
	r->mem = m;
	return SISY_OK;
}

typedef struct seal_find {
	uint64_t log;  /* the log whose seal we look for */
	uint64_t size; /* its sealed size, when found */
	bool found;
} seal_find;

static sisy_err sf_seal(void *ctx, uint64_t log, uint64_t size)
{
	seal_find *f = ctx;
	if (log == f->log) {
		f->found = true;
		f->size = size;
	}
	return SISY_OK;
}

static sisy_err sf_put(void *ctx, uint64_t seq, sisy_slice k, sisy_slice v)
{
	(void)ctx, (void)seq, (void)k, (void)v;
	return SISY_OK;
}

static sisy_err sf_del(void *ctx, uint64_t seq, sisy_slice k)
{
	(void)ctx, (void)seq, (void)k;
	return SISY_OK;
}

/* Looks through log `in` for a SEAL of log `log` (written by the synced
 * write that synced `log`: db_write.c). Damage in `in` itself just ends
 * the search; replaying `in` would report it. */
static void find_seal(sisy_lsm *db, uint64_t in, seal_find *f)
{
	char path[4096];
	db_path(db, path, sizeof path, in, LSM_FILE_WAL);
	lsm_wal_reader *rd = NULL;
	if (lsm_wal_reader_open(db->fs, path, LSM_WAL_LOG, in, &rd) != SISY_OK)
		return;
	lsm_batch_handler h = {
	    .put = sf_put, .del = sf_del, .ctx = f, .seal = sf_seal};
	sisy_slice rec;
	while (!f->found && lsm_wal_next(rd, &rec) == SISY_OK)
		(void)lsm_batch_iterate(rec, &h);
	lsm_wal_reader_close(rd);
	sisy_errclear();
}

/* Replays one log. *torn: it ended in a torn tail at *end. */
static sisy_err replay_log(replay *r, uint64_t num, bool *torn, uint64_t *end)
{
	sisy_lsm *db = r->db;
	char path[4096];
	db_path(db, path, sizeof path, num, LSM_FILE_WAL);
	lsm_wal_reader *rd = NULL;
	sisy_err rc = lsm_wal_reader_open(db->fs, path, LSM_WAL_LOG, num, &rd);
	if (rc != SISY_OK)
		return rc;
	lsm_batch_handler h = {
	    .put = rp_put, .del = rp_del, .meta = rp_meta, .ctx = r};
	sisy_slice rec;
	uint64_t records = 0;
	while ((rc = lsm_wal_next(rd, &rec)) == SISY_OK) {
		rc = lsm_batch_iterate(rec, &h);
		if (rc == SISY_E_CORRUPT) {
			rc = sisy_errf(rc,
				       "db_recover.c: %s: record at offset "
				       "%" PRIu64 " is not a valid batch: %s",
				       path, lsm_wal_reader_offset(rd),
				       sisy_errmsg());
			break;
		}
		if (rc != SISY_OK)
			break;
		records++;
		if (lsm_memtable_usage(r->mem) >= db->o.memtable_bytes &&
		    (rc = rp_flush(r)) != SISY_OK)
			break;
	}
	*torn = false;
	if (rc == SISY_E_NOTFOUND) {
		rc = SISY_OK;
		*torn = lsm_wal_reader_torn(rd);
		*end = lsm_wal_reader_valid_end(rd);
		if (*torn)
			sisy_log(db->log, SISY_LOG_WARN, DB_COMPONENT,
				 "%s: dropped a torn tail at offset %" PRIu64
				 " after %" PRIu64 " records (writes cut "
				 "short by a crash)",
				 path, lsm_wal_reader_valid_end(rd), records);
	}
	lsm_wal_reader_close(rd);
	return rc;
}

static sisy_err replay_all(sisy_lsm *db, dir_scan *s, replay *r)
{
	if (s->nwals > 1)
		qsort(s->wals, (size_t)s->nwals, sizeof *s->wals, lsm_u64_cmp);
	sisy_err rc = SISY_OK;
	for (int i = 0; i < s->nwals && rc == SISY_OK; i++) {
		if (s->wals[i] < db->vs->log_number)
			continue; /* flushed already; deleted below */
		bool torn = false;
		uint64_t end = 0;
		rc = replay_log(r, s->wals[i], &torn, &end);
		if (rc != SISY_OK || !torn || i + 1 == s->nwals)
			continue;
		/* A torn log followed by another: was it ever synced? A
		 * synced write that synced it sealed it in the next log. */
		seal_find f = {.log = s->wals[i]};
		find_seal(db, s->wals[i + 1], &f);
		if (f.found && f.size > end) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "db_recover.c: %s/%06" PRIu64
				       ".log is damaged at offset %" PRIu64
				       ", but log %06" PRIu64
				       " records it complete and synced at "
				       "%" PRIu64 " bytes; the log is corrupt",
				       db->dir, s->wals[i], end, s->wals[i + 1],
				       f.size);
		} else if (!f.found) {
			sisy_log(db->log, SISY_LOG_WARN, DB_COMPONENT,
				 "%s: log %06" PRIu64 " ended torn and was "
				 "never synced; the %d later log(s) hold no "
				 "synced write and are dropped",
				 db->dir, s->wals[i], s->nwals - i - 1);
			break;
		} /* else: complete up to its seal; junk after it is moot */
	}
	if (rc == SISY_OK)
		rc = rp_flush(r);
	return rc;
}

sisy_err db_recover(sisy_lsm *db)
{
	lsm_vset_options vo = {
	    .fs = db->fs,
	    .dir = db->dir,
	    .logger = db->log,
	    .manifest_max_bytes = db->manifest_max_bytes,
	    .l1_max_bytes = db->o.l1_max_bytes,
	    .l0_compaction_trigger = db->o.l0_compaction_trigger,
	    .installed = db_plan_maps,
	    .installed_ctx = db,
	};
	sisy_err rc = lsm_vset_new(&vo, &db->vs);
	if (rc != SISY_OK)
		return rc;
	dir_scan s = {0};
	rc = sisy_fs_list(db->fs, db->dir, scan_entry, &s);
	if (rc == SISY_OK && s.nomem)
		rc = sisy_errf(SISY_E_NOMEM, "db_recover.c: out of memory");
	if (rc != SISY_OK)
		goto out;
	rc = lsm_vset_recover(db->vs);
	if (rc == SISY_E_NOTFOUND) {
		rc = SISY_OK;
		if (!db->o.create_if_missing) {
			rc = sisy_errf(SISY_E_NOTFOUND,
				       "lsm: no database in %s "
				       "(create_if_missing is off)",
				       db->dir);
			goto out;
		}
		if (s.data_files) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "lsm: %s holds tables or logs but no "
				       "CURRENT file; refusing to start "
				       "over an existing database",
				       db->dir);
			goto out;
		}
		sisy_log(db->log, SISY_LOG_INFO, DB_COMPONENT,
			 "creating a new database in %s", db->dir);
	} else if (rc != SISY_OK) {
		goto out;
	} else if (db->o.error_if_exists) {
		rc = sisy_errf(SISY_E_EXISTS,
			       "lsm: a database exists in %s "
			       "(error_if_exists is on)",
			       db->dir);
		goto out;
	}
	lsm_vset_mark_used(db->vs, s.max_num);
	if (db->vs->has_meta)
		rc = db_meta_set(&db->meta, ++db->meta_ver,
				 sisy_buf_slice(&db->vs->meta));
	if (rc != SISY_OK)
		goto out;

	lsm_version_edit e;
	lsm_edit_init(&e);
	replay r = {.db = db,
		    .mem = lsm_memtable_new_runs(db->o.memtable_bytes,
						 db->o.memtable_run_bytes),
		    .edit = &e};
	if (r.mem == NULL)
		rc = sisy_errf(SISY_E_NOMEM, "db_recover.c: out of memory");
	uint64_t meta_ver_before = db->meta_ver;
	if (rc == SISY_OK)
		rc = replay_all(db, &s, &r);
	db->last_seq =
	    db->vs->last_seq > r.max_seq ? db->vs->last_seq : r.max_seq;
	if (rc == SISY_OK && db->o.wal) {
		uint64_t num = lsm_vset_new_file_number(db->vs);
		char path[4096];
		db_path(db, path, sizeof path, num, LSM_FILE_WAL);
		rc = lsm_wal_create(db->fs, path, LSM_WAL_LOG, num, &db->wal);
	}
	if (rc == SISY_OK) {
		lsm_edit_set_log_number(&e, db->wal != NULL
						? lsm_wal_number(db->wal)
						: db->vs->next_file);
		lsm_edit_set_last_seq(&e, db->last_seq);
		if (db->meta.ver != meta_ver_before || db->vs->has_meta)
			rc = lsm_edit_set_meta(&e,
					       sisy_buf_slice(&db->meta.data));
	}
	if (rc == SISY_OK)
		rc = lsm_vset_new_manifest(db->vs, &e, NULL);
	lsm_edit_free(&e);
	if (rc == SISY_OK) {
		db->mem = r.mem; /* empty: its contents went to a table */
		r.mem = NULL;
		db->wal_name_durable = true;
		rc = db_meta_advance(&db->durable, &db->meta);
		if (rc == SISY_OK)
			rc = db_meta_advance(&db->imm_meta, &db->meta);
	}
	if (r.mem != NULL)
		lsm_memtable_unref(r.mem);
	if (rc == SISY_OK) {
		pthread_mutex_lock(&db->mu);
		db_delete_obsolete(db);
		pthread_mutex_unlock(&db->mu);
	}
out:
	free(s.wals);
	return rc;
}
