/* The randomized model test: a long random sequence of puts, deletes,
 * batches, gets, scans, seeks, snapshots, long-lived iterators, flushes,
 * compactions and reopens (WAL on and off), each checked against an
 * in-memory reference. Full scans must match the reference exactly.
 *
 * Seeded: the seed is printed; SISY_SEED=<n> replays a run exactly (the
 * engine's background work may interleave differently, but every check is
 * against the reference, which does not depend on it). SISY_MODEL_OPS
 * scales the run (default 6000 operations per seed, 3 seeds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsm.h"
#include "lsm_test_util.h"
#include "rand.h"

enum { NKEYS = 1500, MAXSNAP = 4, MAXITER = 2 };

static char dir[256];

/* The model: version of each key (0 = absent). Values are derived from
 * (key, version), so a copy of the model is just this array. */
typedef struct model {
	uint32_t ver[NKEYS];
} model;

typedef struct world {
	sisy_rand r;
	sisy_lsm *db;
	bool wal;
	bool runs; /* memtables of four runs (odd seeds) */
	model m;
	uint32_t next_ver;
	const sisy_lsm_snapshot *snap[MAXSNAP];
	model *snap_model[MAXSNAP];
	sisy_lsm_iter *iter[MAXITER];
	model *iter_model[MAXITER];
	uint64_t counts[16];
	uint64_t flushes, compactions; /* over all opens */
} world;

static size_t key_of(char *out, int k)
{
	return tu_key(out, 32, (uint64_t)k);
}

static size_t value_of(char *out, int k, uint32_t ver)
{
	int n = snprintf(out, 64, "v%d.%u.", k, ver);
	size_t len = (size_t)n + (ver * 7u + (unsigned)k) % 300;
	for (size_t i = (size_t)n; i < len; i++)
		out[i] = (char)('a' + (i + ver) % 26);
	return len;
}

static sisy_lsm *open_db(bool wal, bool runs)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = dir;
	o.wal = wal;
	o.memtable_bytes = 64 << 10;
	if (runs)
		o.memtable_run_bytes = 16 << 10;
	o.target_file_bytes = 64 << 10;
	o.l1_max_bytes = 192 << 10;
	o.block_cache_bytes = 256 << 10;
	o.block_size = 1024;
	sisy_lsm *db = NULL;
	sisy_err rc = sisy_lsm_open(&o, &db);
	if (rc != SISY_OK)
		fail_msg("open: %s", sisy_errmsg());
	return db;
}

static void check_get(world *w, const sisy_lsm_snapshot *s, const model *m,
		      int k)
{
	char key[32], want[400];
	size_t kl = key_of(key, k);
	sisy_buf b = {0};
	sisy_err rc = sisy_lsm_get(w->db, s, key, kl, &b);
	if (m->ver[k] == 0) {
		if (rc != SISY_E_NOTFOUND)
			fail_msg("get %s: want absent, got %s", key,
				 sisy_errname(rc));
	} else {
		if (rc != SISY_OK)
			fail_msg("get %s: want version %u, got %s (%s)", key,
				 m->ver[k], sisy_errname(rc), sisy_errmsg());
		size_t vl = value_of(want, k, m->ver[k]);
		if (b.len != vl || memcmp(b.data, want, vl) != 0)
			fail_msg("get %s: wrong value (want version %u)", key,
				 m->ver[k]);
	}
	sisy_buf_free(&b);
}

/* Walks it from its position for at most `steps` entries (all when < 0),
 * starting at key `from`, checking against m. */
static void check_walk(sisy_lsm_iter *it, const model *m, int from, int steps)
{
	int k = from;
	for (; sisy_lsm_iter_valid(it) && steps != 0;
	     sisy_lsm_iter_next(it), steps--) {
		while (k < NKEYS && m->ver[k] == 0)
			k++;
		if (k >= NKEYS)
			fail_msg("scan: a key past the model's last");
		char key[32], want[400];
		size_t kl = key_of(key, k), gl, vl;
		const uint8_t *g = sisy_lsm_iter_key(it, &gl);
		if (gl != kl || memcmp(g, key, kl) != 0)
			fail_msg("scan: got key %.*s, want %s", (int)gl, g,
				 key);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		size_t wl = value_of(want, k, m->ver[k]);
		if (vl != wl || memcmp(v, want, wl) != 0)
			fail_msg("scan: wrong value at %s", key);
		k++;
	}
	if (sisy_lsm_iter_status(it) != SISY_OK)
		fail_msg("scan: %s", sisy_errmsg());
	if (steps != 0) { /* ran to the end: the model must agree */
		while (k < NKEYS && m->ver[k] == 0)
			k++;
		if (k != NKEYS)
			fail_msg("scan ended early, before key %d", k);
	}
}

static void full_scan(world *w, const sisy_lsm_snapshot *s, const model *m)
{
	sisy_lsm_iter *it = sisy_lsm_iter_new(w->db, s);
	sisy_lsm_iter_seek_first(it);
	check_walk(it, m, 0, -1);
	sisy_lsm_iter_free(it);
}

static void do_put(world *w, sisy_lsm_batch *b, int k)
{
	char key[32], val[400];
	uint32_t ver = ++w->next_ver;
	size_t kl = key_of(key, k), vl = value_of(val, k, ver);
	if (b != NULL)
		assert_int_equal(sisy_lsm_batch_put(b, key, kl, val, vl),
				 SISY_OK);
	else
		assert_int_equal(sisy_lsm_put(w->db, key, kl, val, vl,
					      sisy_rand_chance(&w->r, 1, 50)
						  ? SISY_LSM_SYNC
						  : 0),
				 SISY_OK);
	w->m.ver[k] = ver;
}

static void do_delete(world *w, sisy_lsm_batch *b, int k)
{
	char key[32];
	size_t kl = key_of(key, k);
	if (b != NULL)
		assert_int_equal(sisy_lsm_batch_delete(b, key, kl), SISY_OK);
	else
		assert_int_equal(sisy_lsm_delete(w->db, key, kl, 0), SISY_OK);
	w->m.ver[k] = 0;
}

/* Keys cluster around a moving hot spot, so overwrites and deletes hit
 * keys that exist, in memory and in every level. */
static int pick_key(world *w)
{
	if (sisy_rand_chance(&w->r, 1, 3))
		return (int)sisy_rand_below(&w->r, NKEYS);
	int hot = (int)((w->next_ver / 500) * 97 % NKEYS);
	return (hot + (int)sisy_rand_below(&w->r, 200)) % NKEYS;
}

static void close_db(world *w)
{
	sisy_lsm_stats st;
	sisy_lsm_get_stats(w->db, &st);
	assert_int_equal(sisy_lsm_close(w->db), SISY_OK);
	w->flushes += st.flushes;
	w->compactions += st.compactions;
	w->db = NULL;
}

static void drop_views(world *w)
{
	for (int i = 0; i < MAXSNAP; i++) {
		sisy_lsm_snapshot_release(w->db, w->snap[i]);
		w->snap[i] = NULL;
		free(w->snap_model[i]);
		w->snap_model[i] = NULL;
	}
	for (int i = 0; i < MAXITER; i++) {
		sisy_lsm_iter_free(w->iter[i]);
		w->iter[i] = NULL;
		free(w->iter_model[i]);
		w->iter_model[i] = NULL;
	}
}

static void step(world *w)
{
	uint64_t dice = sisy_rand_below(&w->r, 1000);
	int k = pick_key(w);
	if (dice < 450) {
		w->counts[0]++;
		do_put(w, NULL, k);
	} else if (dice < 600) {
		w->counts[1]++;
		do_delete(w, NULL, k);
	} else if (dice < 680) {
		w->counts[2]++;
		sisy_lsm_batch *b = sisy_lsm_batch_new();
		int n = 1 + (int)sisy_rand_below(&w->r, 20);
		model before = w->m;
		for (int i = 0; i < n; i++) {
			if (sisy_rand_chance(&w->r, 1, 4))
				do_delete(w, b, pick_key(w));
			else
				do_put(w, b, pick_key(w));
		}
		if (sisy_rand_chance(&w->r, 1, 10)) {
			w->m = before; /* a batch never written */
		} else {
			assert_int_equal(sisy_lsm_write(w->db, b, 0), SISY_OK);
		}
		sisy_lsm_batch_free(b);
	} else if (dice < 850) {
		w->counts[3]++;
		check_get(w, NULL, &w->m, k);
	} else if (dice < 880) {
		w->counts[4]++;
		int i = (int)sisy_rand_below(&w->r, MAXSNAP);
		if (w->snap[i] != NULL)
			check_get(w, w->snap[i], w->snap_model[i], k);
	} else if (dice < 900) {
		w->counts[5]++; /* a seek and a short walk */
		const sisy_lsm_snapshot *s = NULL;
		const model *m = &w->m;
		int i = (int)sisy_rand_below(&w->r, MAXSNAP);
		if (sisy_rand_chance(&w->r, 1, 2) && w->snap[i] != NULL) {
			s = w->snap[i];
			m = w->snap_model[i];
		}
		sisy_lsm_iter *it = sisy_lsm_iter_new(w->db, s);
		char key[32];
		sisy_lsm_iter_seek(it, key, key_of(key, k));
		check_walk(it, m, k, 50);
		sisy_lsm_iter_free(it);
	} else if (dice < 910) {
		w->counts[6]++;
		full_scan(w, NULL, &w->m);
	} else if (dice < 935) {
		w->counts[7]++; /* replace a snapshot */
		int i = (int)sisy_rand_below(&w->r, MAXSNAP);
		sisy_lsm_snapshot_release(w->db, w->snap[i]);
		free(w->snap_model[i]);
		w->snap[i] = sisy_lsm_snapshot_new(w->db);
		w->snap_model[i] = malloc(sizeof(model));
		*w->snap_model[i] = w->m;
	} else if (dice < 955) {
		w->counts[8]++; /* long-lived iterators: check, replace */
		int i = (int)sisy_rand_below(&w->r, MAXITER);
		if (w->iter[i] != NULL) {
			sisy_lsm_iter_seek_first(w->iter[i]);
			check_walk(w->iter[i], w->iter_model[i], 0, -1);
			sisy_lsm_iter_free(w->iter[i]);
			free(w->iter_model[i]);
		}
		w->iter[i] = sisy_lsm_iter_new(w->db, NULL);
		w->iter_model[i] = malloc(sizeof(model));
		*w->iter_model[i] = w->m;
	} else if (dice < 975) {
		w->counts[9]++;
		assert_int_equal(sisy_lsm_flush(w->db), SISY_OK);
	} else if (dice < 982) {
		w->counts[10]++;
		assert_int_equal(sisy_lsm_compact_all(w->db), SISY_OK);
	} else if (dice < 986) {
		w->counts[11]++; /* reopen, WAL on or off */
		drop_views(w);
		close_db(w);
		w->wal = sisy_rand_chance(&w->r, 3, 4);
		w->db = open_db(w->wal, w->runs);
		full_scan(w, NULL, &w->m);
	} else {
		w->counts[12]++;
		assert_int_equal(
		    sisy_lsm_put(w->db, "zz-sync", 7, "x", 1, SISY_LSM_SYNC),
		    SISY_OK); /* not in the model's key space */
		assert_int_equal(sisy_lsm_delete(w->db, "zz-sync", 7, 0),
				 SISY_OK);
	}
}

static void run_seed(uint64_t seed, long ops)
{
	tu_mkdtemp(dir, sizeof dir, "model");
	world *w = calloc(1, sizeof *w);
	sisy_rand_seed(&w->r, seed);
	w->wal = true;
	w->runs = seed % 2 == 1;
	w->db = open_db(true, w->runs);
	for (long i = 0; i < ops; i++)
		step(w);
	full_scan(w, NULL, &w->m);
	for (int i = 0; i < MAXSNAP; i++)
		if (w->snap[i] != NULL)
			full_scan(w, w->snap[i], w->snap_model[i]);
	drop_views(w);
	assert_int_equal(sisy_lsm_compact_all(w->db), SISY_OK);
	full_scan(w, NULL, &w->m);
	close_db(w);
	w->db = open_db(true, w->runs);
	full_scan(w, NULL, &w->m);
	for (int k = 0; k < NKEYS; k++)
		check_get(w, NULL, &w->m, k);
	close_db(w);
	fprintf(
	    stderr,
	    "  seed %llu%s: %llu puts %llu deletes %llu batches %llu gets "
	    "%llu scans %llu reopens; engine: %llu flushes %llu "
	    "compactions\n",
	    (unsigned long long)seed, w->runs ? " (memtable runs)" : "",
	    (unsigned long long)w->counts[0], (unsigned long long)w->counts[1],
	    (unsigned long long)w->counts[2], (unsigned long long)w->counts[3],
	    (unsigned long long)(w->counts[5] + w->counts[6]),
	    (unsigned long long)w->counts[11], (unsigned long long)w->flushes,
	    (unsigned long long)w->compactions);
	free(w);
	tu_rmdir(dir);
}

static void test_model(void **state)
{
	(void)state;
	long ops = tu_env_long("SISY_MODEL_OPS", 6000);
	if (getenv("SISY_SEED") != NULL) {
		run_seed(tu_seed("model"), ops);
		return;
	}
	uint64_t base = tu_seed("model");
	for (uint64_t i = 0; i < 3; i++) {
		fprintf(stderr, "model: seed %llu (replay: SISY_SEED=%llu)\n",
			(unsigned long long)(base + i),
			(unsigned long long)(base + i));
		run_seed(base + i, ops);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_model),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
