/* db_table.c — writing SSTables for flushes, recovery and compactions.
 *
 * A table is complete only once its builder finished and the file was
 * synced; the caller then makes its name durable (a directory sync) before
 * a MANIFEST edit may refer to it. Any failure removes the file. Errors are
 * classified for the failed state: a clean ENOSPC (the file is discarded, so
 * nothing half-written survives) is retryable, anything else is fatal. */
#include <stdio.h>

#include "db.h"

sisy_err db_table_open_output(sisy_lsm *db, uint64_t num, sisy_file **f,
			      lsm_table_builder **b)
{
	char path[4096];
	db_path(db, path, sizeof path, num, LSM_FILE_TABLE);
	*f = NULL;
	*b = NULL;
	sisy_err rc = sisy_fs_open(
	    db->fs, path, SISY_O_WRITE | SISY_O_CREATE | SISY_O_TRUNC, f);
	if (rc != SISY_OK)
		return rc;
	rc = lsm_table_builder_new(&db->topts, *f, path, &db->counters, b);
	if (rc != SISY_OK) {
		sisy_file_close(*f);
		*f = NULL;
		sisy_fs_unlink(db->fs, path);
	}
	return rc;
}

sisy_err db_table_finish_output(sisy_lsm *db, sisy_file *f,
				lsm_table_builder *b, uint64_t *size,
				bool *fatal)
{
	(void)db;
	sisy_err rc = lsm_table_builder_finish(b, size);
	*fatal = rc != SISY_OK && rc != SISY_E_NOSPC;
	if (rc == SISY_OK) {
		rc = sisy_file_sync(f);
		*fatal = rc != SISY_OK; /* a failed sync is never retried */
	}
	sisy_err crc = sisy_file_close(f);
	if (rc == SISY_OK && crc != SISY_OK) {
		rc = crc;
		*fatal = true;
	}
	return rc;
}

sisy_err db_write_table(sisy_lsm *db, lsm_iter *it, uint64_t num,
			lsm_file_meta **meta, bool *fatal)
{
	sisy_file *f = NULL;
	lsm_table_builder *b = NULL;
	sisy_buf smallest = {0}, largest = {0};
	uint64_t size = 0;
	char path[4096];
	db_path(db, path, sizeof path, num, LSM_FILE_TABLE);
	*meta = NULL;
	*fatal = false;
	lsm_iter_seek_first(it);
	if (!lsm_iter_valid(it)) {
		sisy_err rc = lsm_iter_status(it);
		*fatal = rc != SISY_OK;
		return rc;
	}
	sisy_err rc = db_table_open_output(db, num, &f, &b);
	if (rc != SISY_OK) {
		*fatal = rc != SISY_E_NOSPC;
		return rc;
	}
	sisy_slice k = lsm_iter_key(it);
	rc = sisy_buf_set(&smallest, k.data, k.len);
	for (; rc == SISY_OK && lsm_iter_valid(it); lsm_iter_next(it))
		rc = lsm_table_builder_add(b, lsm_iter_key(it),
					   lsm_iter_value(it));
	if (rc == SISY_OK)
		rc = lsm_iter_status(it);
	if (rc == SISY_OK) { /* the builder keeps the last key: copied once */
		k = lsm_table_builder_last_key(b);
		rc = sisy_buf_set(&largest, k.data, k.len);
	}
	if (rc != SISY_OK) {
		*fatal = rc != SISY_E_NOSPC;
		lsm_table_builder_abandon(b);
		sisy_file_close(f);
		goto fail;
	}
	rc = db_table_finish_output(db, f, b, &size, fatal);
	if (rc != SISY_OK)
		goto fail;
	*meta = lsm_file_meta_new(num, size, sisy_buf_slice(&smallest),
				  sisy_buf_slice(&largest));
	if (*meta == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "db_table.c: out of memory");
		*fatal = true;
		goto fail;
	}
	sisy_buf_free(&smallest);
	sisy_buf_free(&largest);
	return SISY_OK;
fail:
	sisy_fs_unlink(db->fs, path);
	sisy_buf_free(&smallest);
	sisy_buf_free(&largest);
	return rc;
}
