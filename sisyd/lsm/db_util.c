/* db_util.c — small helpers the engine's files share: the failed state,
 * the ENOSPC backoff, metadata values, snapshots' floor, file paths. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "db.h"

sisy_err db_fail(sisy_lsm *db, sisy_err rc, const char *what)
{
	char msg[512];
	snprintf(msg, sizeof msg, "%s", sisy_errmsg());
	if (db->failed == NULL) {
		size_t n = strlen(what) + strlen(msg) + 64;
		db->failed = malloc(n);
		if (db->failed != NULL)
			snprintf(db->failed, n, "%s failed (%s): %s", what,
				 sisy_errname(rc), msg);
		sisy_log(db->log, SISY_LOG_ERROR, DB_COMPONENT,
			 "engine in %s is now read-only: %s failed (%s): %s",
			 db->dir, what, sisy_errname(rc), msg);
	}
	pthread_cond_broadcast(&db->bg_cv);
	pthread_cond_broadcast(&db->work_cv);
	return sisy_errf(rc, "%s", msg);
}

sisy_err db_check_failed(const sisy_lsm *db)
{
	if (db->failed == NULL)
		return SISY_OK;
	return sisy_errf(SISY_E_FAILED,
			 "lsm: the engine is read-only after an error: %s; "
			 "restart to recover",
			 db->failed);
}

void db_bg_nospc(sisy_lsm *db)
{
	if (!db->bg_nospc)
		sisy_log(db->log, SISY_LOG_WARN, DB_COMPONENT,
			 "%s: disk full during background work (%s); "
			 "retrying with backoff, writes fail with "
			 "SISY_E_NOSPC while it lasts",
			 db->dir, sisy_errmsg());
	db->bg_nospc = true;
	db->bg_backoff_us =
	    db->bg_backoff_us == 0 ? DB_BACKOFF_MIN_US : db->bg_backoff_us * 2;
	if (db->bg_backoff_us > DB_BACKOFF_MAX_US)
		db->bg_backoff_us = DB_BACKOFF_MAX_US;
	db->bg_retry_at_us = sisy_now_us() + db->bg_backoff_us;
	pthread_cond_broadcast(&db->bg_cv);
}

void db_bg_ok(sisy_lsm *db)
{
	if (db->bg_nospc)
		sisy_log(db->log, SISY_LOG_INFO, DB_COMPONENT,
			 "%s: background work goes on again", db->dir);
	db->bg_nospc = false;
	db->bg_backoff_us = 0;
	db->bg_retry_at_us = 0;
}

sisy_err db_meta_set(db_meta *m, uint64_t ver, sisy_slice data)
{
	sisy_err rc = sisy_buf_set(&m->data, data.data, data.len);
	if (rc == SISY_OK)
		m->ver = ver;
	return rc;
}

sisy_err db_meta_advance(db_meta *dst, const db_meta *src)
{
	if (src->ver <= dst->ver)
		return SISY_OK;
	return db_meta_set(dst, src->ver, sisy_buf_slice(&src->data));
}

void db_meta_free(db_meta *m)
{
	sisy_buf_free(&m->data);
	m->ver = 0;
}

uint64_t db_oldest_snapshot(const sisy_lsm *db)
{
	if (db->snaps.next != &db->snaps)
		return db->snaps.next->seq;
	return db->last_seq;
}

void db_path(const sisy_lsm *db, char *out, size_t cap, uint64_t num,
	     lsm_file_kind kind)
{
	lsm_file_name(out, cap, db->dir, num, kind);
}
