/* db_compact.c — running a compaction on the background thread.
 *
 * The inputs are merged in internal-key order and written to new tables in
 * level + 1 with mu released. An entry is dropped when
 *   - a newer version of its user key was already seen and that newer one
 *     is visible to every snapshot (seq <= the oldest snapshot): nobody can
 *     read this one any more; or
 *   - it is a tombstone visible to every snapshot and no level below the
 *     output holds the key (the tombstone has nothing left to hide).
 * Between entries the thread flushes imm if one is waiting, so a long
 * compaction does not stall writers on a full memtable. Outputs are synced
 * and the directory synced before the edit that installs them is logged;
 * inputs disappear from the version in the same edit and their files are
 * deleted afterwards (db_files.c), once no reader pins them.
 *
 * Failures: a clean ENOSPC discards the outputs and backs off (retried
 * later); corruption in an input, EIO or a failed sync stop the engine,
 * since retrying cannot fix them and skipping data is never an option. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "compaction.h"
#include "db.h"

typedef struct compact_state {
	sisy_lsm *db;
	lsm_compaction *c;
	uint64_t smallest_snapshot;
	sisy_file *f;
	lsm_table_builder *b;
	uint64_t num;
	sisy_buf smallest, largest;
	lsm_file_meta **outs;
	int nouts, capouts;
	uint64_t bytes_written;
	bool fatal;
} compact_state;

bool db_needs_compaction(const sisy_lsm *db)
{
	return db->manual != NULL || db->vs->current->compaction_score >= 1;
}

static uint64_t new_number(sisy_lsm *db)
{
	pthread_mutex_lock(&db->mu);
	uint64_t n = lsm_vset_new_file_number(db->vs);
	pthread_mutex_unlock(&db->mu);
	return n;
}

static sisy_err finish_output(compact_state *s)
{
	uint64_t size = 0;
	/* the builder keeps the last key: copied once per output, not per
	 * entry */
	sisy_slice last = lsm_table_builder_last_key(s->b);
	sisy_err rc = sisy_buf_set(&s->largest, last.data, last.len);
	if (rc != SISY_OK) {
		lsm_table_builder_abandon(s->b);
		s->b = NULL;
		sisy_file_close(s->f);
		s->f = NULL;
		s->fatal = true;
		char path[4096];
		db_path(s->db, path, sizeof path, s->num, LSM_FILE_TABLE);
		sisy_fs_unlink(s->db->fs, path);
		return rc;
	}
	rc = db_table_finish_output(s->db, s->f, s->b, &size, &s->fatal);
	s->f = NULL;
	s->b = NULL;
	lsm_file_meta *m = NULL;
	if (rc == SISY_OK) {
		m = lsm_file_meta_new(s->num, size,
				      sisy_buf_slice(&s->smallest),
				      sisy_buf_slice(&s->largest));
		if (m == NULL) {
			rc = sisy_errf(SISY_E_NOMEM, "db_compact.c: out of "
						     "memory");
			s->fatal = true;
		}
	}
	if (rc == SISY_OK && s->nouts == s->capouts) {
		int ncap = s->capouts ? s->capouts * 2 : 8;
		lsm_file_meta **p = realloc(s->outs, (size_t)ncap * sizeof *p);
		if (p == NULL) {
			lsm_file_meta_unref(m);
			s->fatal = true;
			return sisy_errf(SISY_E_NOMEM,
					 "db_compact.c: out of memory");
		}
		s->outs = p;
		s->capouts = ncap;
	}
	if (rc == SISY_OK) {
		s->outs[s->nouts++] = m;
		s->bytes_written += size;
	} else {
		char path[4096];
		db_path(s->db, path, sizeof path, s->num, LSM_FILE_TABLE);
		sisy_fs_unlink(s->db->fs, path);
	}
	return rc;
}

static sisy_err add_entry(compact_state *s, sisy_slice k, sisy_slice v)
{
	if (s->b == NULL) {
		sisy_err rc;
		s->num = new_number(s->db);
		rc = db_table_open_output(s->db, s->num, &s->f, &s->b);
		if (rc == SISY_OK)
			rc = sisy_buf_set(&s->smallest, k.data, k.len);
		if (rc != SISY_OK)
			return rc;
	}
	return lsm_table_builder_add(s->b, k, v);
}

/* Flushes imm if a writer is waiting for it (mu not held). */
static void flush_between(sisy_lsm *db)
{
	if (!atomic_load_explicit(&db->has_imm, memory_order_relaxed))
		return;
	pthread_mutex_lock(&db->mu);
	if (db->imm != NULL && db->failed == NULL &&
	    sisy_now_us() >= db->bg_retry_at_us)
		(void)db_flush_imm(db);
	pthread_mutex_unlock(&db->mu);
}

/* The merge loop, mu not held. */
static sisy_err compact_loop(compact_state *s, lsm_iter *in)
{
	lsm_compaction *c = s->c;
	sisy_buf cur = {0};
	bool have_cur = false, cut_pending = false;
	uint64_t last_seq_for_key = 0;
	sisy_err rc = SISY_OK;
	for (lsm_iter_seek_first(in); rc == SISY_OK && lsm_iter_valid(in);
	     lsm_iter_next(in)) {
		flush_between(s->db);
		sisy_slice k = lsm_iter_key(in);
		if (k.len < 8) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "db_compact.c: a %zu-byte key in a "
				       "table; keys have at least 8",
				       k.len);
			break;
		}
		sisy_slice user = lsm_ikey_user(k);
		uint64_t seq = lsm_ikey_seq(k);
		bool new_user =
		    !have_cur || user.len != cur.len ||
		    lsm_user_cmp(user.data, user.len, cur.data, cur.len) != 0;
		if (new_user) {
			/* most keys fit the buffer's room: no call */
			if (user.len > 0 && user.len <= cur.cap) {
				memcpy(cur.data, user.data, user.len);
				cur.len = user.len;
			} else if ((rc = sisy_buf_set(&cur, user.data,
						      user.len)) != SISY_OK) {
				break;
			}
			have_cur = true;
			last_seq_for_key = UINT64_MAX;
			bool stop = lsm_compaction_stop_before(c, k);
			if (s->b != NULL && (stop || cut_pending)) {
				cut_pending = false;
				if ((rc = finish_output(s)) != SISY_OK)
					break;
			}
		}
		bool drop = false;
		if (last_seq_for_key <= s->smallest_snapshot)
			drop = true; /* shadowed for every reader */
		else if (lsm_ikey_type(k) == LSM_TYPE_DELETE &&
			 seq <= s->smallest_snapshot &&
			 lsm_compaction_is_base_level(c, user))
			drop = true; /* nothing below left to hide */
		last_seq_for_key = seq;
		if (drop)
			continue;
		if ((rc = add_entry(s, k, lsm_iter_value(in))) != SISY_OK)
			break;
		if (lsm_table_builder_size(s->b) >= c->max_output_bytes)
			cut_pending = true; /* at the next user key */
	}
	if (rc == SISY_OK)
		rc = lsm_iter_status(in);
	if (rc == SISY_OK && s->b != NULL)
		rc = finish_output(s);
	if (rc != SISY_OK && s->b != NULL) {
		lsm_table_builder_abandon(s->b);
		sisy_file_close(s->f);
		char path[4096];
		db_path(s->db, path, sizeof path, s->num, LSM_FILE_TABLE);
		sisy_fs_unlink(s->db->fs, path);
		s->b = NULL;
		s->f = NULL;
	}
	if (rc != SISY_OK && rc != SISY_E_NOSPC)
		s->fatal = true;
	sisy_buf_free(&cur);
	return rc;
}

static sisy_err install(compact_state *s, lsm_version_edit *e)
{
	sisy_lsm *db = s->db;
	sisy_err rc = lsm_compaction_delete_inputs(s->c, e);
	for (int i = 0; rc == SISY_OK && i < s->nouts; i++) {
		const lsm_file_meta *f = s->outs[i];
		rc = lsm_edit_add_file(e, s->c->level + 1, f->number, f->size,
				       sisy_buf_slice(&f->smallest),
				       sisy_buf_slice(&f->largest));
	}
	if (rc != SISY_OK) {
		s->fatal = true;
		return rc;
	}
	rc = lsm_vset_log_and_apply(db->vs, e, &db->mu);
	if (rc != SISY_OK)
		s->fatal = db->vs->fatal;
	return rc;
}

/* Runs c. mu held; released during I/O. */
static sisy_err run(sisy_lsm *db, lsm_compaction *c, lsm_version_edit *e)
{
	uint64_t start = sisy_now_us();
	compact_state s = {.db = db, .c = c};
	sisy_err rc;
	if (lsm_compaction_is_trivial(c)) {
		const lsm_file_meta *f = c->in[0][0];
		rc = lsm_edit_delete_file(e, c->level, f->number);
		if (rc == SISY_OK)
			rc = lsm_edit_add_file(e, c->level + 1, f->number,
					       f->size,
					       sisy_buf_slice(&f->smallest),
					       sisy_buf_slice(&f->largest));
		if (rc == SISY_OK)
			rc = lsm_vset_log_and_apply(db->vs, e, &db->mu);
		s.fatal =
		    rc != SISY_OK && (rc == SISY_E_NOMEM || db->vs->fatal);
		goto out;
	}
	s.smallest_snapshot = db_oldest_snapshot(db);
	db->compacting = true;
	pthread_mutex_unlock(&db->mu);
	lsm_iter *in = lsm_compaction_input_iter(c, db->tc);
	if (in == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "db_compact.c: out of memory");
		s.fatal = true;
	} else {
		rc = compact_loop(&s, in);
		lsm_iter_destroy(in);
	}
	if (rc == SISY_OK && s.nouts > 0) {
		rc = sisy_fs_sync_dir(db->fs, db->dir);
		s.fatal = rc != SISY_OK;
	}
	pthread_mutex_lock(&db->mu);
	db->compacting = false;
	if (rc == SISY_OK && db->failed != NULL)
		rc = db_check_failed(db); /* a flush in between failed */
	if (rc == SISY_OK)
		rc = install(&s, e);
	if (rc == SISY_OK) {
		LSM_COUNT(&db->counters, compaction_bytes_read,
			  lsm_compaction_input_bytes(c));
		LSM_COUNT(&db->counters, compaction_bytes_written,
			  s.bytes_written);
	}
out:
	if (rc == SISY_OK) {
		LSM_COUNT(&db->counters, compactions, 1);
		db_bg_ok(db);
		sisy_log(db->log, SISY_LOG_DEBUG, DB_COMPONENT,
			 "compacted %d+%d files of L%d+L%d into %d in %llu us",
			 c->nin[0], c->nin[1], c->level, c->level + 1, s.nouts,
			 (unsigned long long)(sisy_now_us() - start));
	} else if (db->failed == NULL) {
		if (!s.fatal) {
			/* outputs never installed: remove them */
			for (int i = 0; i < s.nouts; i++) {
				char path[4096];
				db_path(db, path, sizeof path,
					s.outs[i]->number, LSM_FILE_TABLE);
				sisy_fs_unlink(db->fs, path);
			}
			db_bg_nospc(db);
		} else {
			rc = db_fail(db, rc, "compacting");
		}
	}
	for (int i = 0; i < s.nouts; i++)
		lsm_file_meta_unref(s.outs[i]);
	free(s.outs);
	sisy_buf_free(&s.smallest);
	sisy_buf_free(&s.largest);
	return rc;
}

bool db_maybe_compact(sisy_lsm *db)
{
	lsm_version_edit e;
	lsm_edit_init(&e);
	lsm_compaction *c = NULL;
	db_manual *m = db->manual;
	bool nomem = false;
	if (m != NULL)
		c = lsm_compaction_level(db->vs, m->level,
					 db->o.target_file_bytes, &nomem);
	else
		c = lsm_compaction_pick(db->vs, db->o.target_file_bytes, &e);
	sisy_err rc = SISY_OK;
	if (c != NULL) {
		rc = run(db, c, &e);
		lsm_compaction_free(c);
	} else if (nomem) {
		rc = sisy_errf(SISY_E_NOMEM, "db_compact.c: out of memory");
	}
	lsm_edit_free(&e);
	if (m != NULL) {
		/* a manual request ends with its first result, even ENOSPC:
		 * its caller gets the error instead of waiting for space */
		m->rc = rc;
		snprintf(m->msg, sizeof m->msg, "%s",
			 rc != SISY_OK ? sisy_errmsg() : "");
		m->done = true;
		db->manual = NULL;
	}
	pthread_cond_broadcast(&db->bg_cv);
	return c != NULL || m != NULL;
}
