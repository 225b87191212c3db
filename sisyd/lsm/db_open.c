/* db_open.c — options, open and close.
 *
 * Open: validate options, create the directory if asked (and sync its
 * parent, so the directory itself survives a crash), take the LOCK, then
 * recover (db_recover.c) and start the background thread.
 * Close: stop the background thread (it flushes imm first), flush mem when
 * the WAL is off (nothing acknowledged may be lost by a clean shutdown),
 * release everything. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"

void sisy_lsm_options_init(sisy_lsm_options *o)
{
	memset(o, 0, sizeof *o);
	o->create_if_missing = true;
	o->wal = true;
	o->memtable_bytes = 4u << 20;
	o->memtable_run_bytes = 4u << 20;
	o->block_cache_bytes = 64u << 20;
	o->mmap_bytes = 32u << 20;
	o->block_size = 4096;
	o->bloom_bits_per_key = 10;
	o->max_open_files = 1000;
	o->target_file_bytes = 2u << 20;
	o->l1_max_bytes = 10u << 20;
	o->l0_compaction_trigger = 4;
	o->l0_slowdown_trigger = 8;
	o->l0_stop_trigger = 12;
	o->paranoid_checks = true;
}

#define CHECK_RANGE(field, lo, hi)                                           \
	do {                                                                 \
		if ((o->field) < (lo) || (o->field) > (hi))                  \
			return sisy_errf(SISY_E_INVAL,                       \
					 "lsm: option " #field " = %lld is " \
					 "out of range [%lld, %lld]",        \
					 (long long)(o->field),              \
					 (long long)(lo), (long long)(hi));  \
	} while (0)

static sisy_err validate(const sisy_lsm_options *o)
{
	if (o->dir == NULL || o->dir[0] == '\0' || strlen(o->dir) > 3000)
		return sisy_errf(SISY_E_INVAL,
				 "lsm: option dir must name a directory "
				 "(at most 3000 bytes)");
	CHECK_RANGE(memtable_bytes, 64u << 10, (size_t)1 << 30);
	CHECK_RANGE(memtable_run_bytes, 4u << 10, (size_t)1 << 30);
	CHECK_RANGE(block_size, 256, 1u << 20);
	CHECK_RANGE(bloom_bits_per_key, 0, 64);
	CHECK_RANGE(max_open_files, 20, 1000000);
	CHECK_RANGE(target_file_bytes, 64u << 10, (size_t)1 << 30);
	CHECK_RANGE(l1_max_bytes, 64u << 10, (size_t)1 << 40);
	CHECK_RANGE(l0_compaction_trigger, 1, 1000);
	CHECK_RANGE(l0_slowdown_trigger, o->l0_compaction_trigger, 1000);
	CHECK_RANGE(l0_stop_trigger, o->l0_slowdown_trigger, 1000);
	CHECK_RANGE(bg_nice, 0, 19);
	return SISY_OK;
}

/* Creates dir when missing (and makes its name durable). */
static sisy_err make_dir(sisy_lsm *db)
{
	bool exists = false;
	sisy_err rc = sisy_fs_exists(db->fs, db->dir, &exists);
	if (rc != SISY_OK || exists)
		return rc;
	if (!db->o.create_if_missing)
		return sisy_errf(SISY_E_NOTFOUND,
				 "lsm: %s does not exist (create_if_missing "
				 "is off)",
				 db->dir);
	rc = sisy_fs_mkdir(db->fs, db->dir);
	if (rc == SISY_E_EXISTS)
		return SISY_OK;
	if (rc != SISY_OK)
		return rc;
	char parent[4096];
	snprintf(parent, sizeof parent, "%s", db->dir);
	char *slash = strrchr(parent, '/');
	if (slash == parent)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	else
		snprintf(parent, sizeof parent, ".");
	return sisy_fs_sync_dir(db->fs, parent);
}

static sisy_err db_init(sisy_lsm *db, const sisy_lsm_options *o)
{
	db->o = *o;
	db->dir = strdup(o->dir);
	if (db->dir == NULL)
		return sisy_errf(SISY_E_NOMEM, "lsm: out of memory");
	size_t n = strlen(db->dir);
	while (n > 1 && db->dir[n - 1] == '/')
		db->dir[--n] = '\0';
	db->o.dir = db->dir;
	db->fs = o->fs != NULL ? o->fs : sisy_fs_posix();
	db->log = o->logger;
	db->snaps.next = db->snaps.prev = &db->snaps;
	db->manifest_max_bytes = DB_MANIFEST_MAX;
	pthread_mutex_init(&db->mu, NULL);
	pthread_cond_init(&db->bg_cv, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&db->work_cv, &ca);
	pthread_condattr_destroy(&ca);
	db->ins_ops = malloc(DB_INS_CHUNK * sizeof *db->ins_ops);
	if (!lsm_batch_init_heap(&db->group, DB_GROUP_INIT) ||
	    db->ins_ops == NULL)
		return sisy_errf(SISY_E_NOMEM, "lsm: out of memory");
	lsm_table_options_init(&db->topts);
	db->topts.block_size = o->block_size;
	db->topts.bloom_bits_per_key = o->bloom_bits_per_key;
	db->topts.compression = o->compression;
	if (o->block_cache_bytes > 0) {
		db->block_cache = lsm_cache_new(o->block_cache_bytes, 4);
		if (db->block_cache == NULL)
			return sisy_errf(SISY_E_NOMEM,
					 "lsm: out of memory for the block "
					 "cache");
	}
	/* a few descriptors stay for logs and the MANIFEST */
	return lsm_table_cache_new(db->fs, db->dir, o->max_open_files - 10,
				   db->block_cache, o->mmap_bytes,
				   &db->counters, o->paranoid_checks, &db->tc);
}

static void db_free(sisy_lsm *db)
{
	lsm_wal_close(db->wal);
	lsm_wal_close(db->imm_wal);
	if (db->mem != NULL)
		lsm_memtable_unref(db->mem);
	lsm_memtable_unref(db->imm);
	lsm_vset_free(db->vs);
	if (db->tc != NULL)
		lsm_table_cache_free(db->tc);
	if (db->block_cache != NULL)
		lsm_cache_free(db->block_cache);
	sisy_fs_unlock(db->lock);
	lsm_batch_release(&db->group);
	free(db->ins_ops);
	db_meta_free(&db->meta);
	db_meta_free(&db->imm_meta);
	db_meta_free(&db->durable);
	pthread_mutex_destroy(&db->mu);
	pthread_cond_destroy(&db->bg_cv);
	pthread_cond_destroy(&db->work_cv);
	free(db->failed);
	free(db->dir);
	free(db);
}

sisy_err sisy_lsm_open(const sisy_lsm_options *o, sisy_lsm **out)
{
	*out = NULL;
	sisy_err rc = validate(o);
	if (rc != SISY_OK)
		return rc;
	sisy_lsm *db = calloc(1, sizeof *db);
	if (db == NULL)
		return sisy_errf(SISY_E_NOMEM, "lsm: out of memory");
	rc = db_init(db, o);
	if (rc == SISY_OK)
		rc = make_dir(db);
	if (rc == SISY_OK) {
		char path[4096];
		snprintf(path, sizeof path, "%s/LOCK", db->dir);
		rc = sisy_fs_lock(db->fs, path, &db->lock);
		if (rc == SISY_E_LOCKED)
			rc = sisy_errf(rc,
				       "lsm: %s is in use by another engine "
				       "(in this process or another); close "
				       "it first",
				       db->dir);
	}
	if (rc == SISY_OK)
		rc = db_recover(db);
	if (rc == SISY_OK)
		rc = db_bg_start(db);
	if (rc != SISY_OK) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", sisy_errmsg());
		db_free(db);
		return sisy_errf(rc, "%s", msg);
	}
	sisy_log(db->log, SISY_LOG_INFO, DB_COMPONENT,
		 "opened %s at sequence %llu", db->dir,
		 (unsigned long long)db->last_seq);
	*out = db;
	return SISY_OK;
}

/* With the WAL off, writes since the last flush live only in memory: a
 * clean close must put them in a table. mu held. */
static sisy_err close_flush(sisy_lsm *db)
{
	sisy_err rc = SISY_OK;
	if (db->imm != NULL)
		rc = db_flush_imm(db); /* left over by an ENOSPC backoff */
	if (rc == SISY_OK && (lsm_memtable_entries(db->mem) > 0 ||
			      db->meta.ver != db->imm_meta.ver)) {
		rc = db_switch_memtable(db);
		if (rc == SISY_OK)
			rc = db_flush_imm(db);
	}
	if (rc != SISY_OK)
		rc = sisy_errf(rc,
			       "lsm: closing %s with the WAL off: could not "
			       "flush the last writes, which are lost: %s",
			       db->dir, sisy_errmsg());
	return rc;
}

sisy_err sisy_lsm_close(sisy_lsm *db)
{
	if (db == NULL)
		return SISY_OK;
	db_bg_stop(db);
	pthread_mutex_lock(&db->mu);
	sisy_err rc = db_check_failed(db);
	if (rc == SISY_OK && !db->o.wal)
		rc = close_flush(db);
	if (rc == SISY_OK)
		db_delete_obsolete(db);
	pthread_mutex_unlock(&db->mu);
	char msg[512];
	snprintf(msg, sizeof msg, "%s", rc != SISY_OK ? sisy_errmsg() : "");
	sisy_log(db->log, SISY_LOG_INFO, DB_COMPONENT, "closed %s", db->dir);
	db_free(db);
	if (rc != SISY_OK)
		sisy_errf(rc, "%s", msg);
	return rc;
}

const char *sisy_lsm_failed(sisy_lsm *db)
{
	pthread_mutex_lock(&db->mu);
	const char *f = db->failed; /* set once, freed at close */
	pthread_mutex_unlock(&db->mu);
	return f;
}

void lsm_db_set_manifest_max(sisy_lsm *db, uint64_t bytes)
{
	pthread_mutex_lock(&db->mu);
	db->vs->o.manifest_max_bytes = bytes;
	pthread_mutex_unlock(&db->mu);
}
