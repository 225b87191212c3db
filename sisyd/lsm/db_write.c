/* db_write.c — the write path: group commit, stalls, WAL, memtable.
 *
 * GROUP COMMIT (LevelDB's writer queue). Each writer queues itself under mu
 * and sleeps until it is at the front or done. The front writer
 *   1. makes room (below), possibly waiting for the background thread;
 *   2. merges the batches queued behind it into one group (up to
 *      DB_GROUP_MAX bytes; a synced writer never joins an unsynced group,
 *      whose leader would not sync for it) and gives it sequence numbers;
 *   3. releases mu, appends the group to the WAL as ONE record, fdatasyncs
 *      once if the leader asked, and inserts the group into mem;
 *   4. retakes mu, publishes the new last sequence (readers see the whole
 *      group at once), marks every member done with the result and wakes
 *      the next front.
 * Only the front writer touches mem, wal and the group buffer, so step 3
 * needs no lock.
 *
 * SYNCED WRITES make every earlier write durable too: before syncing the
 * current WAL the leader syncs imm's WAL if it has unsynced records, and
 * the directory once per WAL so the new log's name survives a crash.
 *
 * ROOM. When L0 has l0_slowdown_trigger files, each write first sleeps
 * 1 ms (once), trading a little latency for the compaction to catch up.
 * When mem is full: if imm is still being flushed, or L0 has
 * l0_stop_trigger files, wait for the background thread (never fail) --
 * unless it is stuck on a full disk, then fail with SISY_E_NOSPC; else turn
 * mem into imm. Time spent sleeping or waiting is counted as stall time.
 * A SISY_LSM_NOWAIT write that would sleep or wait, here or behind another
 * writer, returns SISY_E_BUSY at once instead (an event loop's write).
 *
 * ERRORS. A WAL append that failed cleanly (ENOSPC, the file cut back)
 * fails the group and nothing else. Any other WAL error, or a failed sync,
 * stops the engine (db_fail): the log's state on disk is then unknown. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "db.h"

struct db_writer {
	sisy_lsm_batch *batch; /* NULL: switch the memtable (flush) */
	bool sync;
	bool done;
	sisy_err rc;
	char msg[256];
	pthread_cond_t cv;
	db_writer *next;
};

static void stall_sleep_1ms(sisy_lsm *db)
{
	pthread_mutex_unlock(&db->mu);
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
	pthread_mutex_lock(&db->mu);
}

static sisy_err busy(void)
{
	return sisy_errf(SISY_E_BUSY, "lsm: a write now would wait for the "
				      "background thread");
}

/* mu held; the caller is the front writer. With nowait, SISY_E_BUSY
 * where it would sleep or wait (nothing written yet). */
static sisy_err make_room(sisy_lsm *db, bool force, bool nowait)
{
	bool is_write = !force; /* a flush request's wait is not a stall */
	bool delayed = false;
	uint64_t stall_start = 0;
	sisy_err rc = SISY_OK;
	for (;;) {
		if ((rc = db_check_failed(db)) != SISY_OK)
			break;
		int l0 = db->vs->current->nfiles[0];
		if (!force && !delayed && l0 >= db->o.l0_slowdown_trigger) {
			if (nowait) {
				rc = busy();
				break;
			}
			if (stall_start == 0)
				stall_start = sisy_now_us();
			stall_sleep_1ms(db);
			delayed = true;
			continue;
		}
		if (!force &&
		    lsm_memtable_usage(db->mem) < db->o.memtable_bytes)
			break;
		if (db->imm != NULL || l0 >= db->o.l0_stop_trigger) {
			if (db->bg_nospc) {
				rc = sisy_errf(SISY_E_NOSPC,
					       "lsm: the disk is full: "
					       "flushing or compacting failed "
					       "(%s); writes fail until space "
					       "is freed",
					       db->dir);
				break;
			}
			if (nowait) {
				rc = busy();
				break;
			}
			if (stall_start == 0)
				stall_start = sisy_now_us();
			db_bg_wake(db);
			db->stalled++;
			pthread_cond_wait(&db->bg_cv, &db->mu);
			db->stalled--;
			continue;
		}
		if (force && lsm_memtable_entries(db->mem) == 0 &&
		    db->meta.ver == db->imm_meta.ver)
			break; /* nothing new to flush */
		if ((rc = db_switch_memtable(db)) != SISY_OK)
			break;
		force = false;
	}
	if (stall_start != 0 && is_write) {
		LSM_COUNT(&db->counters, stall_micros,
			  sisy_now_us() - stall_start);
		LSM_COUNT(&db->counters, stalls, 1);
	}
	return rc;
}

/* Merges the batches of the writers queued behind the front into one
 * group; *last is the last writer included. mu held. */
static sisy_lsm_batch *build_group(sisy_lsm *db, db_writer **last)
{
	db_writer *first = db->wq_head;
	sisy_lsm_batch *result = first->batch;
	size_t size = sisy_lsm_batch_bytes(result);
	size_t max = DB_GROUP_MAX;
	if (size <= DB_GROUP_SMALL)
		max = size + DB_GROUP_SMALL; /* don't slow a small write */
	*last = first;
	for (db_writer *w = first->next; w != NULL; w = w->next) {
		if ((w->sync && !first->sync) || w->batch == NULL)
			break;
		size += sisy_lsm_batch_bytes(w->batch) - LSM_BATCH_HEADER;
		if (size > max)
			break;
		if (result == first->batch) {
			sisy_lsm_batch_clear(&db->group);
			if (lsm_batch_append(&db->group, first->batch) !=
			    SISY_OK)
				break;
			result = &db->group;
		}
		if (lsm_batch_append(result, w->batch) != SISY_OK)
			break;
		*last = w;
	}
	return result;
}

/* Inserting a group: its entries are gathered in chunks and each chunk goes
 * in with lsm_memtable_add_batch, whose skiplist searches overlap their
 * cache misses. The entries point into the group's encoding, alive until
 * the chunk is in. */
typedef struct ins_ctx {
	sisy_lsm *db;
	size_t n;
} ins_ctx;

static sisy_err ins_flush(ins_ctx *c)
{
	sisy_lsm *db = c->db;
	size_t n = c->n;
	c->n = 0;
	if (n == 1)
		return lsm_memtable_add(db->mem, db->ins_ops[0].seq,
					db->ins_ops[0].type, db->ins_ops[0].key,
					db->ins_ops[0].value);
	return lsm_memtable_add_batch(db->mem, db->ins_ops, n);
}

static sisy_err ins_op(ins_ctx *c, uint64_t seq, lsm_vtype t, sisy_slice k,
		       sisy_slice v)
{
	c->db->ins_ops[c->n++] =
	    (lsm_mem_op){.key = k, .value = v, .seq = seq, .type = t};
	return c->n == DB_INS_CHUNK ? ins_flush(c) : SISY_OK;
}

static sisy_err ins_put(void *ctx, uint64_t seq, sisy_slice k, sisy_slice v)
{
	return ins_op(ctx, seq, LSM_TYPE_VALUE, k, v);
}

static sisy_err ins_del(void *ctx, uint64_t seq, sisy_slice k)
{
	return ins_op(ctx, seq, LSM_TYPE_DELETE, k, sisy_slice_make(NULL, 0));
}

/* A synced group that also syncs imm's (finished) WAL records that fact:
 * "log M is complete at S bytes". Recovery then knows that damage before S
 * in log M is corruption, not a write cut short (db_recover.c). The group
 * moves into db->group if it is still the caller's batch. mu held. */
static sisy_err seal_old_wal(sisy_lsm *db, sisy_lsm_batch **g,
			     lsm_wal_writer *old_wal)
{
	if (*g != &db->group) {
		sisy_lsm_batch_clear(&db->group);
		sisy_err rc = lsm_batch_append(&db->group, *g);
		if (rc != SISY_OK)
			return rc;
		*g = &db->group;
	}
	return lsm_batch_add_seal(*g, lsm_wal_number(old_wal),
				  lsm_wal_size(old_wal));
}

/* A group that took in a huge batch (to seal a log) does not keep its
 * memory: groups are small in the steady state. */
static void shrink_group(sisy_lsm *db)
{
	if (db->group.cap <= 4 * DB_GROUP_MAX)
		return;
	sisy_lsm_batch small;
	if (!lsm_batch_init_heap(&small, DB_GROUP_INIT))
		return;
	lsm_batch_release(&db->group);
	db->group = small;
}

/* Step 3, mu not held. *fatal: the WAL's state is unknown. */
static sisy_err write_group(sisy_lsm *db, sisy_lsm_batch *g, bool sync,
			    lsm_wal_writer *old_wal, bool sync_dir, bool *fatal)
{
	sisy_err rc = SISY_OK;
	*fatal = false;
	if (db->wal != NULL) {
		/* imm's log first: the group may carry its SEAL, which must
		 * never be on disk before the log it vouches for */
		if (sync && old_wal != NULL &&
		    (rc = lsm_wal_sync(old_wal)) != SISY_OK) {
			*fatal = true;
			return rc;
		}
		bool empty = g->len == LSM_BATCH_HEADER;
		if (!empty) {
			rc = lsm_wal_add(db->wal, lsm_batch_rep(g));
			if (rc != SISY_OK) {
				*fatal = rc != SISY_E_NOSPC ||
					 lsm_wal_broken(db->wal);
				return rc;
			}
			size_t n = g->len + LSM_WAL_RECORD_HEADER;
			LSM_COUNT(&db->counters, wal_bytes, n);
			LSM_COUNT(&db->counters, bytes_written, n);
		}
		if (sync) {
			rc = lsm_wal_sync(db->wal);
			if (rc == SISY_OK && sync_dir)
				rc = sisy_fs_sync_dir(db->fs, db->dir);
			LSM_COUNT(&db->counters, wal_syncs, 1);
			if (rc != SISY_OK) {
				*fatal = true;
				return rc;
			}
		}
	}
	ins_ctx ctx = {db, 0};
	lsm_batch_handler h = {.put = ins_put, .del = ins_del, .ctx = &ctx};
	rc = lsm_batch_apply(lsm_batch_rep(g), &h);
	if (rc == SISY_OK && ctx.n > 0)
		rc = ins_flush(&ctx);
	*fatal = rc != SISY_OK; /* the memtable may hold half the group */
	return rc;
}

/* Step 4's bookkeeping after a successful group. mu held. */
static sisy_err publish(sisy_lsm *db, sisy_lsm_batch *g, bool synced)
{
	if (g->count > 0)
		db->last_seq = lsm_batch_seq(g) + g->count - 1;
	sisy_err rc = SISY_OK;
	if (g->has_meta)
		rc = db_meta_set(&db->meta, ++db->meta_ver, lsm_batch_meta(g));
	if (db->wal == NULL)
		return rc;
	if (synced) {
		db->wal_dirty = false;
		db->imm_wal_dirty = false;
		db->wal_name_durable = true;
		if (rc == SISY_OK)
			rc = db_meta_advance(&db->durable, &db->meta);
	} else if (g->count > 0 || g->has_meta) {
		db->wal_dirty = true;
	}
	return rc;
}

/* make_room's conditions for waiting, for writes of `bytes` (mu held):
 * an estimate for callers planning several writes; a NOWAIT write is
 * refused by make_room itself where it would wait. */
static bool would_wait(sisy_lsm *db, size_t bytes)
{
	int l0 = db->vs->current->nfiles[0];
	if (l0 >= db->o.l0_slowdown_trigger)
		return true;
	if (lsm_memtable_usage(db->mem) + bytes < db->o.memtable_bytes)
		return false;
	/* one switch at most, into an empty memtable that holds them all */
	return db->imm != NULL || l0 >= db->o.l0_stop_trigger ||
	       bytes >= db->o.memtable_bytes;
}

bool sisy_lsm_write_would_wait(sisy_lsm *db, size_t bytes)
{
	pthread_mutex_lock(&db->mu);
	bool w = db->wq_head != NULL || would_wait(db, bytes);
	pthread_mutex_unlock(&db->mu);
	return w;
}

sisy_err db_write(sisy_lsm *db, sisy_lsm_batch *b, bool sync, bool nowait)
{
	db_writer w = {.batch = b, .sync = sync};
	pthread_mutex_lock(&db->mu);
	/* Not behind another writer (make_room refuses the rest). */
	if (nowait && db->wq_head != NULL) {
		pthread_mutex_unlock(&db->mu);
		return busy();
	}
	pthread_cond_init(&w.cv, NULL);
	if (db->wq_tail != NULL)
		db->wq_tail->next = &w;
	else
		db->wq_head = &w;
	db->wq_tail = &w;
	while (!w.done && db->wq_head != &w)
		pthread_cond_wait(&w.cv, &db->mu);
	if (w.done) {
		pthread_mutex_unlock(&db->mu);
		pthread_cond_destroy(&w.cv);
		if (w.rc != SISY_OK)
			sisy_errf(w.rc, "%s", w.msg);
		return w.rc;
	}

	sisy_err rc = make_room(db, b == NULL, nowait);
	db_writer *last = &w;
	if (rc == SISY_OK && b != NULL) {
		sisy_lsm_batch *g = build_group(db, &last);
		bool do_sync = w.sync && db->wal != NULL;
		lsm_wal_writer *old_wal =
		    do_sync && db->imm != NULL && db->imm_wal_dirty
			? db->imm_wal
			: NULL;
		bool sync_dir = do_sync && !db->wal_name_durable;
		bool fatal = false;
		if (old_wal != NULL)
			rc = seal_old_wal(db, &g, old_wal);
		if (rc == SISY_OK) {
			lsm_batch_set_seq(g, db->last_seq + 1);
			pthread_mutex_unlock(&db->mu);
			rc = write_group(db, g, do_sync, old_wal, sync_dir,
					 &fatal);
			pthread_mutex_lock(&db->mu);
		}
		if (rc == SISY_OK) {
			rc = publish(db, g, do_sync);
			fatal = rc != SISY_OK;
		}
		if (rc != SISY_OK && fatal)
			rc = db_fail(db, rc, "writing the WAL");
		shrink_group(db);
	}

	/* hand the result to every member and wake the next front */
	const char *msg = rc != SISY_OK ? sisy_errmsg() : "";
	for (;;) {
		db_writer *x = db->wq_head;
		db->wq_head = x->next;
		if (x != &w) {
			x->rc = rc;
			snprintf(x->msg, sizeof x->msg, "%s", msg);
			x->done = true;
			pthread_cond_signal(&x->cv);
		}
		if (x == last)
			break;
	}
	if (db->wq_head == NULL)
		db->wq_tail = NULL;
	else
		pthread_cond_signal(&db->wq_head->cv);
	pthread_mutex_unlock(&db->mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}

/* --- the public write API ---------------------------------------------- */

static sisy_err sync_flag(const sisy_lsm *db, int flags, bool *sync)
{
	if ((flags & ~(SISY_LSM_SYNC | SISY_LSM_NOSYNC | SISY_LSM_NOWAIT)) !=
		0 ||
	    (flags & SISY_LSM_SYNC && flags & SISY_LSM_NOSYNC))
		return sisy_errf(SISY_E_INVAL,
				 "lsm: bad write flags 0x%x (SISY_LSM_SYNC or "
				 "SISY_LSM_NOSYNC, not both)",
				 (unsigned)flags);
	*sync = (flags & SISY_LSM_SYNC) ||
		(db->o.sync && !(flags & SISY_LSM_NOSYNC));
	return SISY_OK;
}

/* Single operations build their batch on the stack: no malloc for small
 * writes. */
#define DB_STACK_BATCH 512

sisy_err sisy_lsm_put(sisy_lsm *db, const void *key, size_t klen,
		      const void *val, size_t vlen, int flags)
{
	bool sync = false;
	sisy_err rc = sync_flag(db, flags, &sync);
	if (rc != SISY_OK)
		return rc;
	uint8_t buf[DB_STACK_BATCH];
	sisy_lsm_batch b;
	lsm_batch_init(&b, buf, sizeof buf);
	rc = sisy_lsm_batch_put(&b, key, klen, val, vlen);
	if (rc == SISY_OK)
		rc = db_write(db, &b, sync, (flags & SISY_LSM_NOWAIT) != 0);
	lsm_batch_release(&b);
	if (rc == SISY_OK)
		LSM_COUNT(&db->counters, puts, 1);
	return rc;
}

sisy_err sisy_lsm_delete(sisy_lsm *db, const void *key, size_t klen, int flags)
{
	bool sync = false;
	sisy_err rc = sync_flag(db, flags, &sync);
	if (rc != SISY_OK)
		return rc;
	uint8_t buf[DB_STACK_BATCH];
	sisy_lsm_batch b;
	lsm_batch_init(&b, buf, sizeof buf);
	rc = sisy_lsm_batch_delete(&b, key, klen);
	if (rc == SISY_OK)
		rc = db_write(db, &b, sync, (flags & SISY_LSM_NOWAIT) != 0);
	lsm_batch_release(&b);
	if (rc == SISY_OK)
		LSM_COUNT(&db->counters, deletes, 1);
	return rc;
}

sisy_err sisy_lsm_write(sisy_lsm *db, sisy_lsm_batch *b, int flags)
{
	bool sync = false;
	sisy_err rc = sync_flag(db, flags, &sync);
	if (rc != SISY_OK)
		return rc;
	if (b == NULL)
		return sisy_errf(SISY_E_INVAL, "lsm: sisy_lsm_write of NULL");
	rc = db_write(db, b, sync, (flags & SISY_LSM_NOWAIT) != 0);
	if (rc == SISY_OK)
		LSM_COUNT(&db->counters, batches, 1);
	return rc;
}

void lsm_db_debug_state(sisy_lsm *db, int *queued, int *stalled)
{
	pthread_mutex_lock(&db->mu);
	int n = 0;
	for (const db_writer *w = db->wq_head; w != NULL; w = w->next)
		n++;
	*queued = n;
	*stalled = db->stalled;
	pthread_mutex_unlock(&db->mu);
}
