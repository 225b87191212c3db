/* Machine-crash tests through the fault layer (libcommon/fs_fault.h).
 *
 * Each trial runs a random workload (puts, deletes, batches; some synced;
 * flushes and compactions from a tiny memtable; MANIFEST switches from a
 * tiny MANIFEST limit) on an in-memory disk armed to crash at a random
 * mutation: in the middle of a WAL append, a flush, a compaction, a
 * MANIFEST write or a CURRENT switch. The crash drops everything not
 * synced (with torn writes: a random prefix of it; in a third of the
 * trials each unsynced sector is old or new at random, as on a disk that
 * reorders writes). Then the engine
 * reopens -- sometimes crashing again during that recovery -- and must:
 *   - open (nothing unreadable, no error);
 *   - hold exactly the state after some prefix of the acknowledged
 *     writes (batches whole), at least up to the last synced write;
 *   - stay usable: more writes, a clean reopen, same checks.
 * The crash points hit are classified by the first operation that met the
 * crash, and every class must have been hit.
 *
 * The second test shows the directory fsyncs matter: with them turned into
 * no-ops (sisy_fs_fault_ignore_dir_sync) the same trials must catch a lost
 * synced write or a database that no longer opens.
 *
 * SISY_SEED replays; SISY_CRASH_TRIALS scales (default 300). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "fs_fault.h"
#include "gate_fs.h"
#include "lsm.h"
#include "lsm_test_util.h"
#include "rand.h"

#define DBDIR "/db"
enum { NKEYS = 400, MAXOPS = 4096 };

typedef struct op {
	int key;
	uint32_t ver; /* 0: delete */
	bool end;     /* the last op of a write (batches are atomic) */
} op;

typedef struct trial {
	sisy_rand r;
	sisy_fs_fault *ff;
	gate_fs spy; /* records where the crash hit */
	sisy_lsm *db;
	op ops[MAXOPS];
	int nops;   /* acknowledged ops, then maybe one failed write */
	int nacked; /* ops acknowledged */
	int synced; /* ops [0, synced) are durable by a synced write */
	uint32_t next_ver;
} trial;

static size_t key_of(char *out, int k)
{
	return tu_key(out, 32, (uint64_t)k);
}

static size_t value_of(char *out, int k, uint32_t ver)
{
	int n = snprintf(out, 64, "v%d.%u.", k, ver);
	size_t len = (size_t)n + (ver * 131u + (unsigned)k) % 900;
	for (size_t i = (size_t)n; i < len; i++)
		out[i] = (char)('a' + (i * 7 + ver) % 26);
	return len;
}

/* The version in a value "v<key>.<ver>...", or 0 when unparsable. */
static unsigned parse_ver(const uint8_t *v, size_t len)
{
	char buf[40];
	snprintf(buf, sizeof buf, "%.*s", (int)(len < 39 ? len : 39),
		 (const char *)v);
	unsigned ver = 0;
	if (sscanf(buf, "v%*d.%u.", &ver) != 1)
		return 0;
	return ver;
}

static sisy_err open_db(trial *t, sisy_lsm **db)
{
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = DBDIR;
	o.fs = &t->spy.base;
	o.memtable_bytes = 64 << 10;
	o.target_file_bytes = 64 << 10;
	o.l1_max_bytes = 128 << 10;
	o.l0_compaction_trigger = 2;
	o.block_cache_bytes = 0;
	*db = NULL;
	sisy_err rc = sisy_lsm_open(&o, db);
	if (rc == SISY_OK)
		lsm_db_set_manifest_max(*db, 1); /* a new one per edit */
	return rc;
}

/* One random write; false when it failed (the crash came). */
static bool write_one(trial *t)
{
	uint64_t dice = sisy_rand_below(&t->r, 100);
	int n = dice < 85 ? 1 : 1 + (int)sisy_rand_below(&t->r, 8);
	bool sync = sisy_rand_chance(&t->r, 1, n > 1 ? 4 : 8);
	if (t->nops + n > MAXOPS)
		return false;
	sisy_lsm_batch *b = sisy_lsm_batch_new();
	int first = t->nops;
	for (int i = 0; i < n; i++) {
		op *o = &t->ops[t->nops++];
		o->key = (int)sisy_rand_below(&t->r, NKEYS);
		o->ver = sisy_rand_chance(&t->r, 1, 5) ? 0 : ++t->next_ver;
		o->end = i == n - 1;
		char k[32], v[1000];
		size_t kl = key_of(k, o->key);
		if (o->ver == 0) {
			sisy_lsm_batch_delete(b, k, kl);
		} else {
			size_t vl = value_of(v, o->key, o->ver);
			sisy_lsm_batch_put(b, k, kl, v, vl);
		}
	}
	sisy_err rc = sisy_lsm_write(t->db, b, sync ? SISY_LSM_SYNC : 0);
	sisy_lsm_batch_free(b);
	if (rc != SISY_OK)
		return false; /* ops stay listed: the outcome is unknown */
	t->nacked = t->nops;
	if (sync)
		t->synced = t->nops;
	(void)first;
	return true;
}

/* The workload: writes, with a flush or full compaction now and then. */
static void workload(trial *t, int writes)
{
	for (int i = 0; i < writes; i++) {
		if (!write_one(t))
			return;
		uint64_t d = sisy_rand_below(&t->r, 200);
		sisy_err rc = SISY_OK;
		if (d < 3)
			rc = sisy_lsm_flush(t->db);
		else if (d < 4)
			rc = sisy_lsm_compact_all(t->db);
		if (rc != SISY_OK)
			return;
	}
}

/* Checks the reopened engine against the op history. NULL when fine,
 * else what is wrong (static storage). */
static const char *verify(trial *t)
{
	static char why[256];
	uint32_t *got = calloc(NKEYS, sizeof *got);
	sisy_lsm_iter *it = sisy_lsm_iter_new(t->db, NULL);
	const char *bad = NULL;
	for (sisy_lsm_iter_seek_first(it); sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = sisy_lsm_iter_key(it, &kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		int key;
		unsigned ver = parse_ver(v, vl);
		char kbuf[40], want[1000];
		snprintf(kbuf, sizeof kbuf, "%.*s", (int)(kl < 39 ? kl : 39),
			 (const char *)k);
		if (sscanf(kbuf, "key%d", &key) != 1 || key < 0 ||
		    key >= NKEYS || ver == 0 ||
		    vl != value_of(want, key, ver) ||
		    memcmp(v, want, vl) != 0) {
			snprintf(why, sizeof why, "garbage entry %s", kbuf);
			bad = why;
			break;
		}
		got[key] = ver;
	}
	if (bad == NULL && sisy_lsm_iter_status(it) != SISY_OK) {
		snprintf(why, sizeof why, "scan failed: %s", sisy_errmsg());
		bad = why;
	}
	sisy_lsm_iter_free(it);
	if (bad == NULL) {
		/* find a prefix (at a write boundary, >= synced) that gives
		 * exactly this state; mismatch counts keys that differ */
		uint32_t *model = calloc(NKEYS, sizeof *model);
		int mismatch = 0;
		for (int k = 0; k < NKEYS; k++)
			mismatch += got[k] != 0;
		bool found = t->synced == 0 && mismatch == 0;
		for (int i = 0; i < t->nops && !found; i++) {
			const op *o = &t->ops[i];
			mismatch -= model[o->key] != got[o->key];
			model[o->key] = o->ver;
			mismatch += model[o->key] != got[o->key];
			found = o->end && i + 1 >= t->synced && mismatch == 0;
		}
		free(model);
		if (!found) {
			snprintf(why, sizeof why,
				 "state matches no prefix of the %d "
				 "acknowledged ops at or after the %d synced",
				 t->nacked, t->synced);
			bad = why;
		}
	}
	free(got);
	return bad;
}

/* After a good verify, the recovered state becomes the new baseline: the
 * history is replaced by one op per live key. */
static void rebase(trial *t)
{
	uint32_t *got = calloc(NKEYS, sizeof *got);
	/* recompute from the engine itself (verify passed) */
	for (int k = 0; k < NKEYS; k++) {
		char key[32];
		size_t kl = key_of(key, k);
		sisy_buf b = {0};
		if (sisy_lsm_get(t->db, NULL, key, kl, &b) == SISY_OK)
			got[k] = parse_ver(b.data, b.len);
		sisy_buf_free(&b);
	}
	t->nops = 0;
	for (int k = 0; k < NKEYS; k++)
		if (got[k] != 0)
			t->ops[t->nops++] = (op){k, got[k], false};
	if (t->nops > 0)
		t->ops[t->nops - 1].end = true;
	t->nacked = t->synced = t->nops;
	free(got);
}

static const char *classify(const gate_fs *g)
{
	if (g->crash_op[0] == '\0')
		return "after the workload";
	if (strcmp(g->crash_op, "syncdir") == 0)
		return "directory sync";
	if (strstr(g->crash_path, "CURRENT") != NULL)
		return "CURRENT switch";
	if (strstr(g->crash_path, "MANIFEST") != NULL)
		return "MANIFEST write";
	if (strstr(g->crash_path, ".sst") != NULL)
		return "table write (flush/compaction)";
	if (strstr(g->crash_path, ".log") != NULL)
		return "WAL write";
	return "other";
}

#define NCLASSES 7
static const char *classes[NCLASSES] = {"after the workload",
					"directory sync",
					"CURRENT switch",
					"MANIFEST write",
					"table write (flush/compaction)",
					"WAL write",
					"other"};

/* Runs one trial; returns NULL when the engine kept its promises, else
 * what went wrong. *cls: where the crash hit. */
static const char *run_trial(uint64_t seed, uint64_t crash_at, bool ignore,
			     const char **cls)
{
	static char why[512];
	trial *t = calloc(1, sizeof *t);
	sisy_rand_seed(&t->r, seed);
	t->ff = sisy_fs_fault_new(seed);
	sisy_fs_fault_set_torn_writes(t->ff, seed % 2 == 0);
	/* a third of the trials: a disk that reorders unsynced writes */
	sisy_fs_fault_set_torn_sectors(t->ff, seed % 3 == 0);
	gate_init(&t->spy, sisy_fs_fault_fs(t->ff));
	const char *bad = NULL;
	assert_int_equal(open_db(t, &t->db), SISY_OK);
	if (ignore)
		sisy_fs_fault_ignore_dir_sync(t->ff, DBDIR);
	sisy_fs_fault_crash_after(t->ff, crash_at);
	workload(t, 400);
	*cls = classify(&t->spy);
	sisy_fs_fault_crash(t->ff); /* if it has not come yet */
	(void)sisy_lsm_close(t->db);
	sisy_fs_fault_restart(t->ff);
	/* sometimes the machine crashes again while recovering */
	if (sisy_rand_chance(&t->r, 1, 4)) {
		sisy_fs_fault_crash_after(t->ff,
					  1 + sisy_rand_below(&t->r, 12));
		if (open_db(t, &t->db) == SISY_OK) {
			sisy_fs_fault_crash(t->ff);
			(void)sisy_lsm_close(t->db);
		}
		sisy_fs_fault_restart(t->ff);
	}
	sisy_fs_fault_ignore_dir_sync(t->ff, NULL);
	sisy_err rc = open_db(t, &t->db);
	if (rc != SISY_OK) {
		snprintf(why, sizeof why, "reopen failed: %s: %s",
			 sisy_errname(rc), sisy_errmsg());
		bad = why;
		goto out;
	}
	if ((bad = verify(t)) != NULL) {
		sisy_lsm_close(t->db);
		goto out;
	}
	/* still a working database: more writes, a clean reopen */
	rebase(t);
	workload(t, 50);
	if (t->nacked != t->nops) {
		snprintf(why, sizeof why, "a write failed after recovery: %s",
			 sisy_errmsg());
		bad = why;
	}
	assert_int_equal(sisy_lsm_close(t->db), SISY_OK);
	t->synced = t->nacked = t->nops; /* clean close: all of it */
	assert_int_equal(open_db(t, &t->db), SISY_OK);
	if (bad == NULL)
		bad = verify(t);
	assert_int_equal(sisy_lsm_close(t->db), SISY_OK);
out:
	gate_destroy(&t->spy);
	sisy_fs_fault_free(t->ff);
	free(t);
	return bad;
}

/* Mutations a whole workload makes, to spread crash points over it. */
static uint64_t measure(uint64_t seed)
{
	trial *t = calloc(1, sizeof *t);
	sisy_rand_seed(&t->r, seed);
	t->ff = sisy_fs_fault_new(seed);
	gate_init(&t->spy, sisy_fs_fault_fs(t->ff));
	assert_int_equal(open_db(t, &t->db), SISY_OK);
	uint64_t before = sisy_fs_fault_mutations(t->ff);
	workload(t, 400);
	assert_int_equal(sisy_lsm_close(t->db), SISY_OK);
	uint64_t n = sisy_fs_fault_mutations(t->ff) - before;
	gate_destroy(&t->spy);
	sisy_fs_fault_free(t->ff);
	free(t);
	return n;
}

static void test_crash_at_random_points(void **state)
{
	(void)state;
	uint64_t seed = tu_seed("crash_machine");
	long trials = tu_env_long("SISY_CRASH_TRIALS", 300);
	uint64_t m = measure(seed);
	fprintf(stderr, "  a workload makes ~%llu mutations\n",
		(unsigned long long)m);
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	int hits[NCLASSES] = {0};
	for (long i = 0; i < trials; i++) {
		uint64_t s = sisy_rand_next(&r);
		uint64_t at = 1 + sisy_rand_below(&r, m + m / 10);
		const char *cls = "";
		const char *bad = run_trial(s, at, false, &cls);
		if (bad != NULL)
			fail_msg("trial %ld (seed %llu, crash at mutation "
				 "%llu, %s): %s",
				 i, (unsigned long long)s,
				 (unsigned long long)at, cls, bad);
		for (int c = 0; c < NCLASSES; c++)
			hits[c] += strcmp(cls, classes[c]) == 0;
	}
	for (int c = 0; c < NCLASSES; c++)
		fprintf(stderr, "  crashes in %-32s %d\n", classes[c], hits[c]);
	/* every kind of crash point was exercised */
	for (int c = 1; c < NCLASSES - 1 && trials >= 200; c++)
		assert_true(hits[c] > 0);
}

static void test_dir_syncs_matter(void **state)
{
	(void)state;
	uint64_t seed = tu_seed("crash_machine_dirsync") + 1;
	uint64_t m = measure(seed);
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	int caught = 0, trials = 30;
	for (int i = 0; i < trials; i++) {
		uint64_t s = sisy_rand_next(&r);
		/* late crashes: after new logs and MANIFESTs were named */
		uint64_t at = m / 2 + sisy_rand_below(&r, m / 2 + 1);
		const char *cls = "";
		const char *bad = run_trial(s, at, true, &cls);
		if (bad != NULL)
			caught++;
	}
	fprintf(stderr,
		"  without directory fsyncs, %d of %d trials lost "
		"acknowledged writes or the database\n",
		caught, trials);
	assert_true(caught > 0);
}

typedef struct logs {
	char lowest[64], highest[64];
} logs;

static void find_logs(void *arg, const char *name)
{
	logs *l = arg;
	size_t n = strlen(name);
	if (n <= 4 || strcmp(name + n - 4, ".log") != 0)
		return;
	if (l->lowest[0] == '\0' || strcmp(name, l->lowest) < 0)
		snprintf(l->lowest, sizeof l->lowest, "%s", name);
	if (l->highest[0] == '\0' || strcmp(name, l->highest) > 0)
		snprintf(l->highest, sizeof l->highest, "%s", name);
}

static uint64_t size_of(trial *t, const char *name)
{
	char p[128];
	snprintf(p, sizeof p, "%s/%s", DBDIR, name);
	uint64_t size = 0;
	assert_int_equal(sisy_fs_file_size(sisy_fs_fault_fs(t->ff), p, &size),
			 SISY_OK);
	return size;
}

typedef struct sync_put {
	sisy_lsm *db;
	sisy_err rc;
} sync_put;

static void *sync_put_main(void *arg)
{
	sync_put *p = arg;
	p->rc = sisy_lsm_put(p->db, "sealed", 6, "x", 1, SISY_LSM_SYNC);
	return NULL;
}

/* A synced write that must sync the previous WAL too seals it in the new
 * WAL (db_write.c). The seal must never reach the disk before the log it
 * vouches for, or recovery would call an honest crash corruption: while
 * the old WAL's sync is held, nothing has been appended to the new WAL
 * yet. Then crash right there (torn writes keep random prefixes of what
 * was not synced) and the engine must reopen. */
static void test_seal_never_lands_before_its_log(void **state)
{
	(void)state;
	uint64_t seed0 = tu_seed("crash_machine_seal");
	for (uint64_t s = seed0; s < seed0 + 24; s++) {
		trial *t = calloc(1, sizeof *t);
		t->ff = sisy_fs_fault_new(s);
		sisy_fs_fault_set_torn_writes(t->ff, true);
		gate_init(&t->spy, sisy_fs_fault_fs(t->ff));
		assert_int_equal(open_db(t, &t->db), SISY_OK);
		/* hold the flush, so the full memtable's WAL stays live */
		gate_arm(&t->spy, GATE_SYNC, ".sst");
		for (int i = 0; i < 300; i++) {
			char k[32], v[1000];
			size_t kl = key_of(k, i), vl = value_of(v, i, 1);
			assert_int_equal(sisy_lsm_put(t->db, k, kl, v, vl, 0),
					 SISY_OK);
		}
		assert_true(gate_wait_parked(&t->spy, 1));
		/* and hold the synced write at the old WAL's sync */
		logs l = {{0}, {0}};
		sisy_fs_list(sisy_fs_fault_fs(t->ff), DBDIR, find_logs, &l);
		assert_int_not_equal(strcmp(l.lowest, l.highest), 0);
		uint64_t new_size = size_of(t, l.highest);
		char both[80];
		snprintf(both, sizeof both, ".sst|%s", l.lowest);
		gate_arm(&t->spy, GATE_SYNC, both);
		sync_put p = {t->db, SISY_OK};
		pthread_t th;
		pthread_create(&th, NULL, sync_put_main, &p);
		assert_true(gate_wait_parked(&t->spy, 2));
		assert_int_equal(size_of(t, l.highest), new_size);
		sisy_fs_fault_crash(t->ff);
		gate_open(&t->spy);
		pthread_join(th, NULL);
		assert_int_not_equal(p.rc, SISY_OK); /* never acknowledged */
		(void)sisy_lsm_close(t->db);
		sisy_fs_fault_restart(t->ff);
		sisy_err rc = open_db(t, &t->db);
		if (rc != SISY_OK)
			fail_msg("seed %llu: reopen: %s", (unsigned long long)s,
				 sisy_errmsg());
		assert_int_equal(sisy_lsm_close(t->db), SISY_OK);
		gate_destroy(&t->spy);
		sisy_fs_fault_free(t->ff);
		free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crash_at_random_points),
	    cmocka_unit_test(test_dir_syncs_matter),
	    cmocka_unit_test(test_seal_never_lands_before_its_log),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
