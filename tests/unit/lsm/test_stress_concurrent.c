/* Concurrent stress of the engine in the way the node uses it
 * (sisyd/node/sm*.c): one apply thread writing batches that carry metadata
 * (the applied index) with the WAL off, reader threads doing gets,
 * snapshots, iterators and metadata reads, and a maintenance thread doing
 * flushes (the node's JOB_FLUSH), checkpoints (snapshots) and compactions --
 * all at once, on a tiny memtable so that flushes, L0 stalls, compactions
 * and obsolete-file deletion happen all the time.
 *
 * THE DATA. G groups; group g is a state key "g<g>/s" = "<b>:P" or "<b>:D"
 * and M data keys "g<g>/d<i>". Batch number b (1, 2, ...) touches 1..3
 * groups: for each it either puts every data key with a value tagged b, or
 * deletes every data key; and it sets the metadata to b. So in any
 * consistent view a group is whole: its state says (b, P) and all M data
 * keys carry tag b, or it says (b, D) and no data key exists (or the group
 * was never written: nothing exists). The writer keeps the history of
 * batches, from which the state as of any batch is rebuilt.
 *
 * WHAT IS CHECKED
 *   - readers: every view (a snapshot's gets, an iterator's scan, even one
 *     held open across compactions) shows whole groups, never half a batch;
 *     a view taken after the writer acknowledged batch a of group g shows
 *     tag >= a; a view never shows a batch not yet written; a snapshot
 *     read again later answers the same; metadata DURABLE <= LATEST, both
 *     monotone, LATEST >= every acknowledged batch;
 *   - maintenance: after a flush, DURABLE >= every batch acknowledged
 *     before it; a checkpoint opens as a database whose metadata m is at
 *     least the last batch acknowledged before the call and whose contents
 *     are exactly the state as of batch m;
 *   - at the end, the state equals the writer's model; after close and
 *     reopen too, with metadata (LATEST and DURABLE) = the last batch;
 *   - the crash variants (fault-layer disk, WAL off and on) crash the
 *     machine in the middle of it all, several times in a row (torn
 *     writes; half the time a disk that reorders unsynced sectors): each
 *     reopen holds exactly the state as of its metadata m, with m >= the
 *     DURABLE value read before the crash; writing then goes on from m.
 *
 *   - the full-disk variant fills the disk for a while: writes answer
 *     SISY_E_NOSPC (and are retried), reads stay right, and once space is
 *     back the engine goes on by itself and has lost nothing;
 *   - the EIO variant makes every write fail for good: the engine turns
 *     read-only, reads stay right, and a reopen holds what DURABLE said.
 *
 * CI runs each case for a short time; SISY_STRESS_MS sets the duration of
 * the concurrent phase (e.g. 60000 by hand), SISY_STRESS_CRASHES the number
 * of crash cycles (default 4), SISY_SEED replays the writer's choices
 * (thread timing is not replayable). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coding.h"
#include "fs_fault.h"
#include "lsm.h"
#include "lsm_test_util.h"
#include "rand.h"

enum {
	G = 600,	       /* groups */
	M = 4,		       /* data keys per group */
	PER_BATCH = 3,	       /* groups per batch, at most */
	VLEN = 100,	       /* data value bytes */
	READERS = 3,	       /* reader threads */
	MAX_CKPT = 6,	       /* checkpoints kept for checking at the end */
	MAX_BATCHES = 1 << 20, /* bounds the history */
	MEMTABLE = 64 << 10,   /* memtable_bytes: flushes all the time */
};

typedef struct hist_entry {
	uint16_t g[PER_BATCH];
	uint8_t n;
	uint8_t del; /* bit i: group g[i] deleted */
} hist_entry;

/* The state of one group in a view or a model. */
typedef struct gstate {
	uint64_t b; /* 0: never written */
	bool del;
} gstate;

typedef struct ckpt_rec {
	char dir[300];
	uint64_t acked_before;
} ckpt_rec;

typedef struct stress {
	const char *name;
	char dir[256];
	sisy_fs_fault *ff; /* NULL: the real file system */
	bool wal;
	bool runs; /* memtables of four runs (memtable_run_bytes) */
	bool crash;
	bool full_disk; /* the disk fills up for a while (fault layer) */
	bool eio;	/* writes start failing with EIO (fault layer) */
	sisy_lsm *db;
	uint64_t seed;
	uint64_t run_us;      /* of the concurrent phase (per crash cycle) */
	uint64_t first_batch; /* the writer's first batch number */
	uint64_t crash_after_us;

	/* writer -> everyone */
	hist_entry *hist; /* [1 .. written]; only the writer writes it */
	_Atomic uint64_t written;    /* batches handed to sisy_lsm_write */
	_Atomic uint64_t acked;	     /* batches acknowledged */
	_Atomic uint64_t acked_g[G]; /* per group: its last acknowledged b */
	_Atomic bool stop;
	_Atomic bool crashed; /* set before the crash: errors are expected */

	_Atomic int errors;
	char first_error[512];
	pthread_mutex_t err_mu;

	/* maintenance results */
	ckpt_rec ckpts[MAX_CKPT];
	int nckpt;
	_Atomic uint64_t flushes, ckpt_count, compactions, reads, scans;
	_Atomic uint64_t max_durable; /* largest DURABLE metadata seen */
	_Atomic uint64_t nospc;	      /* SISY_E_NOSPC answers met */
} stress;

static void report(stress *s, const char *fmt, ...)
{
	va_list ap;
	pthread_mutex_lock(&s->err_mu);
	if (atomic_fetch_add(&s->errors, 1) == 0) {
		va_start(ap, fmt);
		vsnprintf(s->first_error, sizeof s->first_error, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&s->err_mu);
}

static sisy_fs *fs_of(const stress *s)
{
	return s->ff != NULL ? sisy_fs_fault_fs(s->ff) : NULL;
}

/* --- keys and values ------------------------------------------------------ */

static size_t state_key(char *out, int g)
{
	return (size_t)sprintf(out, "g%05d/s", g);
}

static size_t data_key(char *out, int g, int i)
{
	return (size_t)sprintf(out, "g%05d/d%d", g, i);
}

static size_t data_value(char *out, uint64_t b, int g, int i)
{
	int n = sprintf(out, "%010" PRIu64 "-g%05d-i%d-", b, g, i);
	memset(out + n, 'x', VLEN - (size_t)n);
	return VLEN;
}

/* Parses a state value "<b>:P" / "<b>:D". */
static bool parse_state(const uint8_t *v, size_t len, gstate *out)
{
	if (len != 12 || v[10] != ':' || (v[11] != 'P' && v[11] != 'D'))
		return false;
	uint64_t b = 0;
	for (int i = 0; i < 10; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		b = b * 10 + (uint64_t)(v[i] - '0');
	}
	out->b = b;
	out->del = v[11] == 'D';
	return b > 0;
}

/* The tag of a data value, after checking it belongs to (g, i). */
static bool parse_data(const uint8_t *v, size_t len, int g, int i, uint64_t *b)
{
	char want[VLEN];
	if (len != VLEN)
		return false;
	uint64_t t = 0;
	for (int k = 0; k < 10; k++) {
		if (v[k] < '0' || v[k] > '9')
			return false;
		t = t * 10 + (uint64_t)(v[k] - '0');
	}
	data_value(want, t, g, i);
	if (memcmp(want, v, VLEN) != 0)
		return false;
	*b = t;
	return true;
}

static uint64_t meta_u64(stress *s, sisy_lsm *db, int which, bool *ok)
{
	sisy_buf m = {0};
	uint64_t v = 0;
	*ok = sisy_lsm_meta(db, which, &m) == SISY_OK &&
	      (m.len == 0 || m.len == 8);
	if (*ok && m.len == 8)
		v = sisy_get_u64(m.data);
	else if (!*ok && !atomic_load(&s->crashed))
		report(s, "meta(%d): %s (len %zu)", which, sisy_errmsg(),
		       m.len);
	sisy_buf_free(&m);
	return v;
}

/* --- the model -------------------------------------------------------------
 */

/* The state of every group as of batch upto. */
static void model_at(const stress *s, uint64_t upto, gstate *out)
{
	memset(out, 0, sizeof(gstate) * G);
	for (uint64_t b = 1; b <= upto; b++) {
		const hist_entry *h = &s->hist[b];
		for (int j = 0; j < h->n; j++) {
			out[h->g[j]].b = b;
			out[h->g[j]].del = (h->del >> j) & 1;
		}
	}
}

/* --- views -----------------------------------------------------------------
 */

/* A view's groups as read through gets at one snapshot. false: the read
 * failed (reported unless after a crash). */
static bool read_group(stress *s, sisy_lsm *db, const sisy_lsm_snapshot *snap,
		       int g, gstate *out)
{
	char k[32];
	sisy_buf v = {0};
	size_t kl = state_key(k, g);
	bool ok = true;
	sisy_err rc = sisy_lsm_get(db, snap, k, kl, &v);
	memset(out, 0, sizeof *out);
	if (rc == SISY_OK) {
		if (!parse_state(v.data, v.len, out)) {
			report(s, "%s: group %d: bad state value", s->name, g);
			ok = false;
		}
	} else if (rc != SISY_E_NOTFOUND) {
		if (!atomic_load(&s->crashed))
			report(s, "%s: get %s: %s", s->name, k, sisy_errmsg());
		ok = false;
	}
	for (int i = 0; ok && i < M; i++) {
		kl = data_key(k, g, i);
		rc = sisy_lsm_get(db, snap, k, kl, &v);
		uint64_t t = 0;
		if (rc == SISY_OK) {
			if (!parse_data(v.data, v.len, g, i, &t)) {
				report(s, "%s: %s: bad value", s->name, k);
				ok = false;
			} else if (out->b == 0 || out->del || t != out->b) {
				report(s,
				       "%s: half a batch: %s has tag %" PRIu64
				       " but the group's state is %" PRIu64
				       "%s",
				       s->name, k, t, out->b,
				       out->del ? ":D" : ":P");
				ok = false;
			}
		} else if (rc == SISY_E_NOTFOUND) {
			if (out->b != 0 && !out->del) {
				report(s,
				       "%s: half a batch: %s is missing but "
				       "the group's state is %" PRIu64 ":P",
				       s->name, k, out->b);
				ok = false;
			}
		} else {
			if (!atomic_load(&s->crashed))
				report(s, "%s: get %s: %s", s->name, k,
				       sisy_errmsg());
			ok = false;
		}
	}
	sisy_buf_free(&v);
	return ok;
}

/* Scan state: what an iterator showed of each group. */
typedef struct scan_view {
	gstate st[G];
	uint64_t tag[G][M];
	bool have[G][M];
} scan_view;

/* Records one (key, value) of a scan. false: malformed. */
static bool scan_take(stress *s, scan_view *sv, const uint8_t *k, size_t kl,
		      const uint8_t *v, size_t vl)
{
	char key[32];
	int g = -1, i = -1;
	char kind = 0;
	if (kl >= sizeof key)
		goto bad;
	memcpy(key, k, kl);
	key[kl] = '\0';
	if (sscanf(key, "g%5d/%c", &g, &kind) != 2 || g < 0 || g >= G)
		goto bad;
	if (kind == 's') {
		if (!parse_state(v, vl, &sv->st[g]))
			goto bad;
		return true;
	}
	if (sscanf(key + 7, "d%d", &i) != 1 || i < 0 || i >= M ||
	    !parse_data(v, vl, g, i, &sv->tag[g][i]))
		goto bad;
	sv->have[g][i] = true;
	return true;
bad:
	report(s, "%s: scan: malformed entry '%.*s' (%zu-byte value)", s->name,
	       (int)(kl < 40 ? kl : 40), (const char *)k, vl);
	return false;
}

/* Every group of a scan is whole. */
static bool scan_check_whole(stress *s, const scan_view *sv)
{
	for (int g = 0; g < G; g++) {
		const gstate *st = &sv->st[g];
		for (int i = 0; i < M; i++) {
			bool want = st->b != 0 && !st->del;
			if (sv->have[g][i] != want ||
			    (want && sv->tag[g][i] != st->b)) {
				report(s,
				       "%s: scan shows half a batch: group %d "
				       "state %" PRIu64 "%s, key %d %s tag "
				       "%" PRIu64,
				       s->name, g, st->b, st->del ? ":D" : ":P",
				       i, sv->have[g][i] ? "present" : "absent",
				       sv->tag[g][i]);
				return false;
			}
		}
	}
	return true;
}

/* Scans db as of snap (NULL: now) into sv; `slow` interleaves gets, so the
 * iterator stays open while flushes and compactions replace its files. */
static bool scan_all(stress *s, sisy_lsm *db, const sisy_lsm_snapshot *snap,
		     scan_view *sv, bool slow)
{
	memset(sv, 0, sizeof *sv);
	sisy_lsm_iter *it = sisy_lsm_iter_new(db, snap);
	if (it == NULL) {
		report(s, "%s: iter_new failed", s->name);
		return false;
	}
	bool ok = true;
	char prev[32] = "";
	size_t prevl = 0;
	uint64_t n = 0;
	sisy_buf tmp = {0};
	for (sisy_lsm_iter_seek_first(it); ok && sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = sisy_lsm_iter_key(it, &kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		int c = memcmp(prev, k, kl < prevl ? kl : prevl);
		if (n > 0 && (c > 0 || (c == 0 && prevl >= kl))) {
			report(s, "%s: scan out of order", s->name);
			ok = false;
			break;
		}
		if (kl < sizeof prev) {
			memcpy(prev, k, kl);
			prevl = kl;
		}
		ok = scan_take(s, sv, k, kl, v, vl);
		if (slow && n % 64 == 63) {
			char key[32];
			size_t gl = state_key(key, (int)(n % G));
			(void)sisy_lsm_get(db, NULL, key, gl, &tmp);
		}
		n++;
	}
	sisy_err st = sisy_lsm_iter_status(it);
	if (ok && st != SISY_OK) {
		if (!atomic_load(&s->crashed))
			report(s, "%s: scan: %s", s->name, sisy_errmsg());
		ok = false;
	}
	sisy_lsm_iter_free(it);
	sisy_buf_free(&tmp);
	return ok && scan_check_whole(s, sv);
}

/* A view equals the model. */
static bool view_equals(stress *s, const char *what, const scan_view *sv,
			const gstate *model)
{
	for (int g = 0; g < G; g++) {
		const gstate *a = &sv->st[g], *b = &model[g];
		if (a->b != b->b || (a->b != 0 && a->del != b->del)) {
			report(s,
			       "%s: %s: group %d is %" PRIu64 "%s, the model "
			       "says %" PRIu64 "%s",
			       s->name, what, g, a->b, a->del ? ":D" : ":P",
			       b->b, b->del ? ":D" : ":P");
			return false;
		}
	}
	return true;
}

/* --- threads ---------------------------------------------------------------
 */

static void *writer_main(void *arg)
{
	stress *s = arg;
	sisy_rand r;
	sisy_rand_seed(&r, s->seed + s->first_batch);
	sisy_lsm_batch *batch = sisy_lsm_batch_new();
	uint64_t start = sisy_now_us();
	char k[32], v[VLEN];
	for (uint64_t b = s->first_batch; b < MAX_BATCHES; b++) {
		if (atomic_load(&s->stop) ||
		    (!s->full_disk && !s->eio &&
		     sisy_now_us() - start >= s->run_us))
			break;
		hist_entry *h = &s->hist[b];
		memset(h, 0, sizeof *h);
		int n = 1 + (int)sisy_rand_below(&r, PER_BATCH);
		sisy_lsm_batch_clear(batch);
		for (int j = 0; j < n; j++) {
			int g;
			bool dup;
			do { /* distinct groups within a batch */
				g = (int)sisy_rand_below(&r, G);
				dup = false;
				for (int x = 0; x < j; x++)
					dup |= h->g[x] == g;
			} while (dup);
			bool del = sisy_rand_chance(&r, 1, 5);
			h->g[j] = (uint16_t)g;
			h->del |= (uint8_t)(del << j);
			sisy_err rc = SISY_OK;
			for (int i = 0; i < M && rc == SISY_OK; i++) {
				size_t kl = data_key(k, g, i);
				size_t vl = data_value(v, b, g, i);
				rc = del ? sisy_lsm_batch_delete(batch, k, kl)
					 : sisy_lsm_batch_put(batch, k, kl, v,
							      vl);
			}
			size_t kl = state_key(k, g);
			int vl =
			    sprintf(v, "%010" PRIu64 ":%c", b, del ? 'D' : 'P');
			if (rc == SISY_OK)
				rc = sisy_lsm_batch_put(batch, k, kl, v,
							(size_t)vl);
			if (rc != SISY_OK) { /* no cmocka asserts off main */
				report(s, "%s: batch_put: %s", s->name,
				       sisy_errmsg());
				goto out;
			}
		}
		h->n = (uint8_t)n;
		uint8_t meta[8];
		sisy_put_u64(meta, b);
		if (sisy_lsm_batch_set_meta(batch, meta, 8) != SISY_OK) {
			report(s, "%s: set_meta: %s", s->name, sisy_errmsg());
			break;
		}
		atomic_store(&s->written, b);
		/* with the WAL on, a synced write now and then */
		int flags = s->wal && b % 64 == 0 ? SISY_LSM_SYNC : 0;
		sisy_err rc = sisy_lsm_write(s->db, batch, flags);
		/* a full disk: the batch was not applied; retry it (as the
		 * node does with a committed entry) until space is back */
		while (rc == SISY_E_NOSPC && s->full_disk &&
		       !atomic_load(&s->stop)) {
			atomic_fetch_add(&s->nospc, 1);
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
			rc = sisy_lsm_write(s->db, batch, flags);
		}
		if (rc == SISY_E_NOSPC && s->full_disk)
			break; /* stopped while full: space is checked later */
		if (s->eio && (rc == SISY_E_FAILED || rc == SISY_E_IO))
			break; /* the engine stopped: checked by the test */
		if (rc != SISY_OK) {
			if (!atomic_load(&s->crashed))
				report(s, "%s: write of batch %" PRIu64 ": %s",
				       s->name, b, sisy_errmsg());
			break;
		}
		for (int j = 0; j < n; j++)
			atomic_store(&s->acked_g[h->g[j]], b);
		atomic_store(&s->acked, b);
	}
out:
	sisy_lsm_batch_free(batch);
	atomic_store(&s->stop, true);
	return NULL;
}

typedef struct reader {
	stress *s;
	uint64_t seed;
	scan_view sv;
} reader;

/* Gets at a fresh snapshot, then the same snapshot again later. */
static void reader_snapshot_round(stress *s, sisy_rand *r)
{
	enum { NG = 8 };
	int gs[NG];
	uint64_t floor[NG];
	gstate first[NG];
	for (int j = 0; j < NG; j++) {
		gs[j] = (int)sisy_rand_below(r, G);
		floor[j] = atomic_load(&s->acked_g[gs[j]]);
	}
	const sisy_lsm_snapshot *snap = sisy_lsm_snapshot_new(s->db);
	if (snap == NULL) {
		report(s, "%s: snapshot_new failed", s->name);
		return;
	}
	for (int j = 0; j < NG; j++) {
		if (!read_group(s, s->db, snap, gs[j], &first[j]))
			goto out;
		uint64_t ceil = atomic_load(&s->written);
		if (first[j].b < floor[j] || first[j].b > ceil) {
			report(s,
			       "%s: group %d read %" PRIu64 " at a snapshot "
			       "taken after batch %" PRIu64 " was "
			       "acknowledged (written so far %" PRIu64 ")",
			       s->name, gs[j], first[j].b, floor[j], ceil);
			goto out;
		}
	}
	/* let flushes and compactions happen, then ask the same snapshot */
	uint64_t until = atomic_load(&s->written) + 40;
	for (int spin = 0; spin < 2000 && !atomic_load(&s->stop) &&
			   atomic_load(&s->written) < until;
	     spin++) {
		struct timespec ts = {0, 100000};
		nanosleep(&ts, NULL);
	}
	for (int j = 0; j < NG; j++) {
		gstate again;
		if (!read_group(s, s->db, snap, gs[j], &again))
			goto out;
		if (again.b != first[j].b || again.del != first[j].del) {
			report(s,
			       "%s: a snapshot changed its answer: group %d "
			       "was %" PRIu64 ", now %" PRIu64,
			       s->name, gs[j], first[j].b, again.b);
			goto out;
		}
	}
out:
	sisy_lsm_snapshot_release(s->db, snap);
}

static void reader_scan_round(reader *rd, bool slow)
{
	stress *s = rd->s;
	uint64_t floor[G];
	for (int g = 0; g < G; g++)
		floor[g] = atomic_load(&s->acked_g[g]);
	if (!scan_all(s, s->db, NULL, &rd->sv, slow))
		return;
	uint64_t ceil = atomic_load(&s->written);
	for (int g = 0; g < G; g++)
		if (rd->sv.st[g].b < floor[g] || rd->sv.st[g].b > ceil) {
			report(s,
			       "%s: scan shows group %d at %" PRIu64
			       ", acknowledged %" PRIu64 " before it, "
			       "written so far %" PRIu64,
			       s->name, g, rd->sv.st[g].b, floor[g], ceil);
			return;
		}
	atomic_fetch_add(&s->scans, 1);
}

static void reader_meta_round(stress *s, uint64_t *last_durable,
			      uint64_t *last_latest)
{
	uint64_t floor = atomic_load(&s->acked);
	bool ok1, ok2;
	uint64_t d = meta_u64(s, s->db, SISY_LSM_META_DURABLE, &ok1);
	uint64_t l = meta_u64(s, s->db, SISY_LSM_META_LATEST, &ok2);
	uint64_t ceil = atomic_load(&s->written);
	if (!ok1 || !ok2)
		return;
	if (d > l || l < floor || l > ceil || d < *last_durable ||
	    l < *last_latest)
		report(s,
		       "%s: metadata: durable %" PRIu64 " latest %" PRIu64
		       " (before: %" PRIu64 "/%" PRIu64 "), acknowledged "
		       "%" PRIu64 ", written %" PRIu64,
		       s->name, d, l, *last_durable, *last_latest, floor, ceil);
	*last_durable = d;
	*last_latest = l;
	uint64_t cur = atomic_load(&s->max_durable);
	while (d > cur &&
	       !atomic_compare_exchange_weak(&s->max_durable, &cur, d))
		;
}

static void *reader_main(void *arg)
{
	reader *rd = arg;
	stress *s = rd->s;
	sisy_rand r;
	sisy_rand_seed(&r, rd->seed);
	uint64_t last_durable = 0, last_latest = 0;
	sisy_buf v = {0};
	while (!atomic_load(&s->stop) && atomic_load(&s->errors) == 0) {
		switch (sisy_rand_below(&r, 8)) {
		case 0:
			reader_snapshot_round(s, &r);
			break;
		case 1:
			reader_scan_round(rd, sisy_rand_chance(&r, 1, 3));
			break;
		case 2:
			reader_meta_round(s, &last_durable, &last_latest);
			break;
		default: { /* plain gets: never behind an acknowledgement */
			for (int j = 0; j < 32; j++) {
				int g = (int)sisy_rand_below(&r, G);
				uint64_t floor = atomic_load(&s->acked_g[g]);
				char k[32];
				size_t kl = state_key(k, g);
				sisy_err rc =
				    sisy_lsm_get(s->db, NULL, k, kl, &v);
				gstate st = {0};
				if (rc == SISY_OK &&
				    !parse_state(v.data, v.len, &st))
					report(s, "%s: bad state", s->name);
				else if (rc != SISY_OK &&
					 rc != SISY_E_NOTFOUND) {
					if (!atomic_load(&s->crashed))
						report(s, "%s: get: %s",
						       s->name, sisy_errmsg());
					break;
				} else if (st.b < floor) {
					report(s,
					       "%s: get of group %d: %" PRIu64
					       " after %" PRIu64
					       " was acknowledged",
					       s->name, g, st.b, floor);
				}
				atomic_fetch_add(&s->reads, 1);
			}
		}
		}
	}
	sisy_buf_free(&v);
	return NULL;
}

/* Waits (bounded) until the writer moved `n` batches on or stopped. */
static void wait_batches(stress *s, uint64_t n)
{
	uint64_t target = atomic_load(&s->written) + n;
	for (int spin = 0; spin < 5000 && !atomic_load(&s->stop) &&
			   atomic_load(&s->written) < target;
	     spin++) {
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
}

static void *maint_main(void *arg)
{
	stress *s = arg;
	for (int round = 0;
	     !atomic_load(&s->stop) && atomic_load(&s->errors) == 0; round++) {
		wait_batches(s, 30);
		if (atomic_load(&s->stop))
			break;
		uint64_t before = atomic_load(&s->acked);
		sisy_err rc = sisy_lsm_flush(s->db);
		bool ok = true;
		if (rc == SISY_E_NOSPC && s->full_disk) {
			atomic_fetch_add(&s->nospc, 1);
			continue;
		}
		if (s->eio && (rc == SISY_E_FAILED || rc == SISY_E_IO))
			break;
		if (rc != SISY_OK) {
			if (!atomic_load(&s->crashed))
				report(s, "%s: flush: %s", s->name,
				       sisy_errmsg());
			break;
		}
		uint64_t d = meta_u64(s, s->db, SISY_LSM_META_DURABLE, &ok);
		if (ok && d < before)
			report(s,
			       "%s: after a flush DURABLE metadata is %" PRIu64
			       ", but batch %" PRIu64 " was acknowledged "
			       "before it",
			       s->name, d, before);
		atomic_fetch_add(&s->flushes, 1);
		if (round % 5 == 2 && s->ff == NULL && s->nckpt < MAX_CKPT) {
			ckpt_rec *c = &s->ckpts[s->nckpt];
			snprintf(c->dir, sizeof c->dir, "%s/ckpt-%d", s->dir,
				 s->nckpt);
			c->acked_before = atomic_load(&s->acked);
			rc = sisy_lsm_checkpoint(s->db, c->dir);
			if (rc != SISY_OK) {
				report(s, "%s: checkpoint: %s", s->name,
				       sisy_errmsg());
				break;
			}
			s->nckpt++;
			atomic_fetch_add(&s->ckpt_count, 1);
		}
		if (round % 7 == 3) {
			rc = sisy_lsm_compact_all(s->db);
			if (rc == SISY_E_NOSPC && s->full_disk) {
				atomic_fetch_add(&s->nospc, 1);
				continue;
			}
			if (s->eio && (rc == SISY_E_FAILED || rc == SISY_E_IO))
				break;
			if (rc != SISY_OK) {
				if (!atomic_load(&s->crashed))
					report(s, "%s: compact_all: %s",
					       s->name, sisy_errmsg());
				break;
			}
			atomic_fetch_add(&s->compactions, 1);
		}
		/* bounded memory: writers wait rather than grow memtables
		 * (at most mem and imm, each one arena block and one batch
		 * past its size) */
		sisy_lsm_stats st;
		sisy_lsm_get_stats(s->db, &st);
		uint64_t bound = 2 * (MEMTABLE + (64 << 10) + (16 << 10));
		if (st.memtable_bytes > bound)
			report(s,
			       "%s: memtables hold %" PRIu64 " bytes, more "
			       "than %" PRIu64,
			       s->name, st.memtable_bytes, bound);
	}
	return NULL;
}

/* --- the runs ---------------------------------------------------------------
 */

static sisy_lsm_options stress_opts(const stress *s, const char *dir)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = dir;
	o.fs = fs_of(s);
	o.wal = s->wal;
	o.memtable_bytes = MEMTABLE;
	if (s->runs)
		o.memtable_run_bytes = MEMTABLE / 4;
	o.target_file_bytes = 64 << 10;
	o.l1_max_bytes = 256 << 10;
	o.l0_compaction_trigger = 2;
	o.l0_slowdown_trigger = 3;
	o.l0_stop_trigger = 4;
	o.block_cache_bytes = 256 << 10;
	o.max_open_files = 40; /* table-cache evictions too */
	return o;
}

static sisy_lsm *open_at(const stress *s, const char *dir)
{
	sisy_lsm_options o = stress_opts(s, dir);
	sisy_lsm *db = NULL;
	sisy_err rc = sisy_lsm_open(&o, &db);
	if (rc != SISY_OK)
		fail_msg("%s: open %s: %s", s->name, dir, sisy_errmsg());
	return db;
}

/* The whole content of db equals the model as of its metadata, which must
 * lie in [lo, hi]. Returns that metadata. */
static uint64_t check_db(stress *s, sisy_lsm *db, const char *what, uint64_t lo,
			 uint64_t hi, int which)
{
	bool ok;
	uint64_t m = meta_u64(s, db, which, &ok);
	if (!ok || m < lo || m > hi)
		fail_msg("%s: %s: metadata %" PRIu64 " outside [%" PRIu64
			 ", %" PRIu64 "]",
			 s->name, what, m, lo, hi);
	gstate *model = calloc(G, sizeof *model);
	scan_view *sv = calloc(1, sizeof *sv);
	assert_non_null(model);
	assert_non_null(sv);
	model_at(s, m, model);
	bool good =
	    scan_all(s, db, NULL, sv, false) && view_equals(s, what, sv, model);
	/* the same through point reads */
	for (int g = 0; good && g < G; g++) {
		gstate st;
		good = read_group(s, db, NULL, g, &st);
		if (good && (st.b != model[g].b ||
			     (st.b != 0 && st.del != model[g].del))) {
			report(s,
			       "%s: %s: get of group %d gives %" PRIu64
			       ", the model %" PRIu64,
			       s->name, what, g, st.b, model[g].b);
			good = false;
		}
	}
	free(model);
	free(sv);
	if (!good)
		fail_msg("%s", s->first_error);
	return m;
}

/* Waits up to `us` (bounded polling), or until *nonzero turns non-zero
 * when given, or until the writer stopped. */
static void pause_until(stress *s, uint64_t us, _Atomic uint64_t *nonzero)
{
	uint64_t t0 = sisy_now_us();
	while (!atomic_load(&s->stop) && sisy_now_us() - t0 < us &&
	       (nonzero == NULL || atomic_load(nonzero) == 0)) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

static void run_threads(stress *s)
{
	pthread_t w, mt, rt[READERS];
	reader *rds = calloc(READERS, sizeof *rds);
	assert_non_null(rds);
	for (int i = 0; i < READERS; i++) {
		rds[i].s = s;
		rds[i].seed = s->seed + 1 + (uint64_t)i;
		assert_int_equal(
		    pthread_create(&rt[i], NULL, reader_main, &rds[i]), 0);
	}
	assert_int_equal(pthread_create(&mt, NULL, maint_main, s), 0);
	assert_int_equal(pthread_create(&w, NULL, writer_main, s), 0);
	if (s->full_disk) {
		/* after a while the disk fills up (a little room is left, so
		 * the next flush or compaction runs out of it); once writers
		 * have met SISY_E_NOSPC, and a while later, space is freed;
		 * then writing goes on for a while */
		pause_until(s, s->run_us / 3, NULL);
		sisy_fs_fault_set_capacity(s->ff, sisy_fs_fault_used(s->ff) +
						      (64 << 10));
		pause_until(s, 30 * 1000000, &s->nospc);
		pause_until(s, s->run_us / 3, NULL);
		sisy_fs_fault_set_capacity(s->ff, 0);
		pause_until(s, s->run_us / 3, NULL);
		atomic_store(&s->stop, true);
	}
	if (s->eio) {
		/* after a while every write and sync fails with EIO: the
		 * next flush or compaction stops the engine; readers go on
		 * checking it, failed, for a while */
		pause_until(s, s->run_us / 3, NULL);
		sisy_fs_fault_inject(s->ff, SISY_FAULT_WRITE | SISY_FAULT_SYNC,
				     NULL, 0, UINT64_MAX, SISY_E_IO);
		uint64_t t0 = sisy_now_us();
		while (sisy_lsm_failed(s->db) == NULL &&
		       sisy_now_us() - t0 < 30 * 1000000) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
		uint64_t t1 = sisy_now_us();
		while (sisy_now_us() - t1 < s->run_us / 3) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
		atomic_store(&s->stop, true);
	}
	if (s->crash) {
		/* crash at a random moment of the cycle: in the middle of
		 * writes, flushes, compactions, MANIFEST and CURRENT switches
		 */
		uint64_t until = sisy_now_us() + s->crash_after_us;
		while (!atomic_load(&s->stop) && sisy_now_us() < until) {
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
		}
		atomic_store(&s->crashed, true);
		bool ok;
		uint64_t d = meta_u64(s, s->db, SISY_LSM_META_DURABLE, &ok);
		uint64_t cur = atomic_load(&s->max_durable);
		while (d > cur &&
		       !atomic_compare_exchange_weak(&s->max_durable, &cur, d))
			;
		sisy_fs_fault_crash(s->ff);
		atomic_store(&s->stop, true);
	}
	pthread_join(w, NULL);
	pthread_join(mt, NULL);
	for (int i = 0; i < READERS; i++)
		pthread_join(rt[i], NULL);
	free(rds);
	if (atomic_load(&s->errors) != 0)
		fail_msg("%s", s->first_error);
}

static void stress_init(stress *s, const char *name, bool wal, bool crash,
			bool full_disk, bool eio)
{
	memset(s, 0, sizeof *s);
	s->name = name;
	s->wal = wal;
	s->crash = crash;
	s->full_disk = full_disk;
	s->eio = eio;
	pthread_mutex_init(&s->err_mu, NULL);
	s->seed = tu_seed(name);
	s->run_us = (uint64_t)tu_env_long("SISY_STRESS_MS", 1000) * 1000;
	s->first_batch = 1;
	s->hist = calloc(MAX_BATCHES, sizeof *s->hist);
	assert_non_null(s->hist);
	if (crash || full_disk || eio) {
		s->ff = sisy_fs_fault_new(s->seed);
		sisy_fs_fault_set_torn_writes(s->ff, true);
		snprintf(s->dir, sizeof s->dir, "/stress");
		sisy_fs *fs = sisy_fs_fault_fs(s->ff);
		assert_int_equal(sisy_fs_mkdir(fs, s->dir), SISY_OK);
		assert_int_equal(sisy_fs_sync_dir(fs, "/"), SISY_OK);
	} else {
		tu_mkdtemp(s->dir, sizeof s->dir, "stress");
	}
}

static void stress_done(stress *s)
{
	fprintf(stderr,
		"%s: %" PRIu64 " batches, %" PRIu64 " gets, %" PRIu64
		" scans, %" PRIu64 " flushes, %" PRIu64 " checkpoints, "
		"%" PRIu64 " compact_all\n",
		s->name, atomic_load(&s->acked), atomic_load(&s->reads),
		atomic_load(&s->scans), atomic_load(&s->flushes),
		atomic_load(&s->ckpt_count), atomic_load(&s->compactions));
	if (s->ff != NULL)
		sisy_fs_fault_free(s->ff);
	else
		tu_rmdir(s->dir);
	free(s->hist);
	pthread_mutex_destroy(&s->err_mu);
}

static void stress_run(const char *name, bool wal, bool runs)
{
	stress *s = malloc(sizeof *s);
	assert_non_null(s);
	stress_init(s, name, wal, false, false, false);
	s->runs = runs;
	char dbdir[300];
	snprintf(dbdir, sizeof dbdir, "%s/db", s->dir);
	s->db = open_at(s, dbdir);
	run_threads(s);

	uint64_t last = atomic_load(&s->acked);
	assert_true(last > 0);
	assert_true(atomic_load(&s->flushes) > 0);
	check_db(s, s->db, "after the run", last, last, SISY_LSM_META_LATEST);
	assert_int_equal(sisy_lsm_close(s->db), SISY_OK);
	s->db = open_at(s, dbdir);
	check_db(s, s->db, "after reopen", last, last, SISY_LSM_META_LATEST);
	check_db(s, s->db, "after reopen (durable)", last, last,
		 SISY_LSM_META_DURABLE);
	assert_int_equal(sisy_lsm_close(s->db), SISY_OK);
	s->db = NULL;

	/* every checkpoint: a database of its own, exactly the state as of
	 * its metadata, which covers what was acknowledged before it */
	for (int i = 0; i < s->nckpt; i++) {
		sisy_lsm *c = open_at(s, s->ckpts[i].dir);
		check_db(s, c, s->ckpts[i].dir, s->ckpts[i].acked_before, last,
			 SISY_LSM_META_LATEST);
		assert_int_equal(sisy_lsm_close(c), SISY_OK);
	}
	stress_done(s);
	free(s);
}

static void test_stress_wal_off(void **state)
{
	(void)state;
	stress_run("stress_wal_off", false, false);
}

/* The same with memtables made of runs: readers, scans, snapshots and
 * flushes meet memtables whose runs come and go under them. */
static void test_stress_runs_wal_off(void **state)
{
	(void)state;
	stress_run("stress_runs_wal_off", false, true);
}

static void test_stress_runs_wal_on(void **state)
{
	(void)state;
	stress_run("stress_runs_wal_on", true, true);
}

static void test_stress_wal_on(void **state)
{
	(void)state;
	stress_run("stress_wal_on", true, false);
}

/* Resets what the threads share for a new cycle that starts from the
 * state as of batch m (after a crash lost the batches past it). */
static void stress_restart_from(stress *s, uint64_t m)
{
	gstate *model = calloc(G, sizeof *model);
	assert_non_null(model);
	model_at(s, m, model);
	for (int g = 0; g < G; g++)
		atomic_store(&s->acked_g[g], model[g].b);
	free(model);
	atomic_store(&s->acked, m);
	atomic_store(&s->written, m);
	atomic_store(&s->max_durable, m);
	atomic_store(&s->stop, false);
	atomic_store(&s->crashed, false);
	s->first_batch = m + 1;
}

/* The node's recovery point, over several machine crashes in a row: each
 * crash, at a random moment of writes, flushes and compactions, leaves
 * exactly the state as of the recovered metadata m, and m is at least
 * what DURABLE said before the crash (with the WAL on too: there DURABLE
 * also moves with synced writes). Then writing goes on from m. */
static void stress_crash_run(const char *name, bool wal)
{
	stress *s = malloc(sizeof *s);
	assert_non_null(s);
	stress_init(s, name, wal, true, false, false);
	sisy_rand r;
	sisy_rand_seed(&r, s->seed ^ 0x63726173ull);
	int cycles = (int)tu_env_long("SISY_STRESS_CRASHES", 4);
	char dbdir[300];
	snprintf(dbdir, sizeof dbdir, "%s/db", s->dir);
	uint64_t m = 0;
	for (int cycle = 0; cycle < cycles; cycle++) {
		stress_restart_from(s, m);
		s->crash_after_us =
		    s->run_us / 8 + sisy_rand_below(&r, s->run_us / 4 + 1);
		/* half the cycles: a disk that reorders unsynced sectors */
		sisy_fs_fault_set_torn_sectors(s->ff,
					       sisy_rand_chance(&r, 1, 2));
		s->db = open_at(s, dbdir);
		if (cycle > 0) /* the previous crash's outcome, once more */
			check_db(s, s->db, "reopened", m, m,
				 SISY_LSM_META_DURABLE);
		run_threads(s);
		(void)sisy_lsm_close(s->db); /* fails: the disk is gone */
		sisy_fs_fault_restart(s->ff);

		uint64_t floor = atomic_load(&s->max_durable);
		uint64_t written = atomic_load(&s->written);
		s->db = open_at(s, dbdir);
		m = check_db(s, s->db, "after a crash", floor, written,
			     SISY_LSM_META_LATEST);
		check_db(s, s->db, "after a crash (durable)", m, m,
			 SISY_LSM_META_DURABLE);
		fprintf(stderr,
			"%s: crash %d: recovered to batch %" PRIu64
			" (durable before the crash: %" PRIu64
			", written %" PRIu64 ")\n",
			s->name, cycle + 1, m, floor, written);
		assert_int_equal(sisy_lsm_close(s->db), SISY_OK);
		s->db = NULL;
	}
	stress_done(s);
	free(s);
}

static void test_stress_crash_wal_off(void **state)
{
	(void)state;
	stress_crash_run("stress_crash_wal_off", false);
}

static void test_stress_crash_wal_on(void **state)
{
	(void)state;
	stress_crash_run("stress_crash_wal_on", true);
}

/* A full disk in the middle of it all (fault layer, WAL off as the node
 * runs it): flushes and compactions fail with SISY_E_NOSPC, writers that
 * would have to wait for them get SISY_E_NOSPC (and retry the same batch),
 * readers go on seeing whole, current groups; once space is freed, the
 * engine goes on by itself, and nothing acknowledged is lost. */
static void test_stress_disk_full_wal_off(void **state)
{
	(void)state;
	stress *s = malloc(sizeof *s);
	assert_non_null(s);
	stress_init(s, "stress_disk_full_wal_off", false, false, true, false);
	char dbdir[300];
	snprintf(dbdir, sizeof dbdir, "%s/db", s->dir);
	s->db = open_at(s, dbdir);
	run_threads(s);
	assert_true(atomic_load(&s->nospc) > 0); /* the disk did fill up */
	/* space is back: background work resumes (after its backoff) */
	sisy_err rc;
	uint64_t end = sisy_now_ms() + 20000;
	while ((rc = sisy_lsm_flush(s->db)) == SISY_E_NOSPC &&
	       sisy_now_ms() < end) {
		struct timespec ts = {0, 5000000};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(rc, SISY_OK);
	assert_null(sisy_lsm_failed(s->db));
	uint64_t last = atomic_load(&s->acked);
	check_db(s, s->db, "after the disk was full", last, last,
		 SISY_LSM_META_LATEST);
	check_db(s, s->db, "after the disk was full (durable)", last, last,
		 SISY_LSM_META_DURABLE);
	assert_int_equal(sisy_lsm_close(s->db), SISY_OK);
	s->db = open_at(s, dbdir);
	check_db(s, s->db, "reopened", last, last, SISY_LSM_META_DURABLE);
	assert_int_equal(sisy_lsm_close(s->db), SISY_OK);
	s->db = NULL;
	fprintf(stderr, "%s: %" PRIu64 " SISY_E_NOSPC answers\n", s->name,
		atomic_load(&s->nospc));
	stress_done(s);
	free(s);
}

/* EIO in the middle of it all (fault layer, WAL off): the first flush or
 * compaction that meets it stops the engine (sisy_lsm_failed says why,
 * writes answer SISY_E_FAILED); readers, running on, keep seeing whole,
 * current groups -- every acknowledged write is still readable -- and a
 * reopen gives exactly the state as of its metadata, at least DURABLE. */
static void test_stress_eio_wal_off(void **state)
{
	(void)state;
	stress *s = malloc(sizeof *s);
	assert_non_null(s);
	stress_init(s, "stress_eio_wal_off", false, false, false, true);
	char dbdir[300];
	snprintf(dbdir, sizeof dbdir, "%s/db", s->dir);
	s->db = open_at(s, dbdir);
	run_threads(s);
	assert_non_null(sisy_lsm_failed(s->db));
	assert_int_equal(sisy_lsm_put(s->db, "k", 1, "v", 1, 0), SISY_E_FAILED);
	uint64_t last = atomic_load(&s->acked);
	check_db(s, s->db, "failed, still reading", last, last,
		 SISY_LSM_META_LATEST);
	uint64_t floor = atomic_load(&s->max_durable);
	bool ok;
	uint64_t d = meta_u64(s, s->db, SISY_LSM_META_DURABLE, &ok);
	assert_true(ok && d >= floor);
	assert_int_not_equal(sisy_lsm_close(s->db), SISY_OK);
	sisy_fs_fault_clear_injections(s->ff);
	s->db = open_at(s, dbdir);
	uint64_t m = check_db(s, s->db, "reopened after EIO", d, last,
			      SISY_LSM_META_LATEST);
	fprintf(stderr,
		"%s: failed at batch %" PRIu64 " (durable %" PRIu64
		"), reopened at %" PRIu64 "\n",
		s->name, last, d, m);
	assert_int_equal(sisy_lsm_close(s->db), SISY_OK);
	s->db = NULL;
	stress_done(s);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stress_wal_off),
	    cmocka_unit_test(test_stress_wal_on),
	    cmocka_unit_test(test_stress_runs_wal_off),
	    cmocka_unit_test(test_stress_runs_wal_on),
	    cmocka_unit_test(test_stress_crash_wal_off),
	    cmocka_unit_test(test_stress_crash_wal_on),
	    cmocka_unit_test(test_stress_disk_full_wal_off),
	    cmocka_unit_test(test_stress_eio_wal_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
