/* sisy_bench_engine.c — `sisy-bench engine`: LevelDB's db_bench, for our
 * engine (sisyd/lsm/lsm.h). Workload, flags and output are in bench_util.h
 * and shared with bench/leveldb_bench.c, its LevelDB twin, so that
 * bench/engine-vs-leveldb.sh compares like with like.
 *
 * Single-threaded, as db_bench by default. Each operation is timed on its
 * own (clock_gettime around the call) for the p50/p99 columns, on both
 * sides. Reads run on whatever database the previous benchmark left, with
 * its background flushes and compactions still going, as in db_bench.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "lsm.h"
#include "sisy_bench.h"

typedef struct bench {
	bench_flags f;
	bench_rng rng;
	bench_values vals;
	float *lat;
	bench_mem mem;
	sisy_lsm *db;
	sisy_buf val; /* reused by every get */
} bench;

static void die(const char *what, sisy_err rc)
{
	fprintf(stderr, "sisy-bench engine: %s: %s (%s)\n", what,
		sisy_strerror(rc), sisy_errmsg());
	exit(1);
}

static void close_db(bench *b)
{
	if (b->db == NULL)
		return;
	sisy_err rc = sisy_lsm_close(b->db);
	b->db = NULL;
	if (rc != SISY_OK)
		die("close", rc);
}

static void open_db(bench *b, bool fresh)
{
	close_db(b);
	if (fresh && !bench_rm_rf(b->f.db)) {
		fprintf(stderr, "sisy-bench engine: cannot remove %s\n",
			b->f.db);
		exit(1);
	}
	sisy_lsm_options o;
	sisy_lsm_options_init(&o);
	o.dir = b->f.db;
	o.create_if_missing = true;
	o.compression = b->f.compression != 0;
	o.block_cache_bytes = (size_t)b->f.cache_size;
	o.bloom_bits_per_key = b->f.bloom_bits;
	o.memtable_bytes = (size_t)b->f.write_buffer_size;
	o.block_size = (size_t)b->f.block_size;
	o.max_open_files = b->f.max_open_files;
	o.wal = b->f.wal != 0;
	if (b->f.mmap_bytes >= -1)
		o.mmap_bytes =
		    b->f.mmap_bytes < 0 ? SIZE_MAX : (size_t)b->f.mmap_bytes;
	sisy_err rc = sisy_lsm_open(&o, &b->db);
	if (rc != SISY_OK)
		die("open", rc);
}

static void print_stats(bench *b)
{
	if (!b->f.stats || b->db == NULL)
		return;
	sisy_lsm_stats s;
	sisy_lsm_get_stats(b->db, &s);
	printf("  files/level:");
	for (int i = 0; i < 7; i++)
		printf(" %d", s.files_per_level[i]);
	printf("; flushes %llu, compactions %llu (read %.1f MB, wrote %.1f "
	       "MB); stalls %llu (%.1f ms)\n",
	       (unsigned long long)s.flushes, (unsigned long long)s.compactions,
	       (double)s.compaction_bytes_read / 1048576.0,
	       (double)s.compaction_bytes_written / 1048576.0,
	       (unsigned long long)s.stalls, (double)s.stall_micros / 1000.0);
	printf("  block cache: %llu hits, %llu misses, %.1f MB used; tables "
	       "mapped: %.1f MB; bloom: %llu negatives, %llu positives; "
	       "table bytes read %.1f MB\n",
	       (unsigned long long)s.cache_hits,
	       (unsigned long long)s.cache_misses,
	       (double)s.cache_bytes / 1048576.0,
	       (double)s.mapped_bytes / 1048576.0,
	       (unsigned long long)s.bloom_negatives,
	       (unsigned long long)s.bloom_positives,
	       (double)s.bytes_read / 1048576.0);
	fflush(stdout);
}

static void run_fill(bench *b, const char *name, long n, bool random, bool sync,
		     bool fresh)
{
	if (fresh || b->db == NULL)
		open_db(b, fresh);
	int flags = sync ? SISY_LSM_SYNC : 0;
	char key[BENCH_KEY_MAX];
	double t0 = bench_now_us();
	for (long i = 0; i < n; i++) {
		long k = random
			     ? (long)(bench_rnd(&b->rng) % (uint64_t)b->f.num)
			     : i;
		int klen = bench_key(key, b->f.key_size, k, false);
		const char *v = bench_value(&b->vals);
		double a = bench_now_us();
		sisy_err rc = sisy_lsm_put(b->db, key, (size_t)klen, v,
					   (size_t)b->f.value_size, flags);
		b->lat[i] = (float)(bench_now_us() - a);
		if (rc != SISY_OK)
			die("put", rc);
	}
	double el = bench_now_us() - t0;
	bench_report(name, n, el, (double)n * (b->f.key_size + b->f.value_size),
		     b->lat, sync ? "(sync=true)" : "(sync=false)");
}

static void run_read(bench *b, const char *name, bool missing)
{
	if (b->db == NULL)
		open_db(b, false);
	char key[BENCH_KEY_MAX], extra[64];
	long found = 0, n = b->f.reads;
	double t0 = bench_now_us();
	for (long i = 0; i < n; i++) {
		long k = (long)(bench_rnd(&b->rng) % (uint64_t)b->f.num);
		int klen = bench_key(key, b->f.key_size, k, missing);
		double a = bench_now_us();
		sisy_err rc =
		    sisy_lsm_get(b->db, NULL, key, (size_t)klen, &b->val);
		b->lat[i] = (float)(bench_now_us() - a);
		if (rc == SISY_OK)
			found++;
		else if (rc != SISY_E_NOTFOUND)
			die("get", rc);
	}
	double el = bench_now_us() - t0;
	snprintf(extra, sizeof extra, "(%ld of %ld found)", found, n);
	bench_report(name, n, el,
		     (double)found * (b->f.key_size + b->f.value_size), b->lat,
		     extra);
}

static void run_readseq(bench *b)
{
	if (b->db == NULL)
		open_db(b, false);
	sisy_lsm_iter *it = sisy_lsm_iter_new(b->db, NULL);
	if (it == NULL)
		die("iterator", SISY_E_NOMEM);
	long i = 0;
	double bytes = 0;
	double t0 = bench_now_us(), a = t0;
	for (sisy_lsm_iter_seek_first(it);
	     i < b->f.reads && sisy_lsm_iter_valid(it); i++) {
		size_t kl, vl;
		(void)sisy_lsm_iter_key(it, &kl);
		(void)sisy_lsm_iter_value(it, &vl);
		bytes += (double)(kl + vl);
		sisy_lsm_iter_next(it);
		double now = bench_now_us();
		b->lat[i] = (float)(now - a);
		a = now;
	}
	double el = bench_now_us() - t0;
	sisy_err rc = sisy_lsm_iter_status(it);
	sisy_lsm_iter_free(it);
	if (rc != SISY_OK)
		die("readseq", rc);
	bench_report("readseq", i, el, bytes, b->lat, NULL);
}

static void run_seekrandom(bench *b)
{
	if (b->db == NULL)
		open_db(b, false);
	sisy_lsm_iter *it = sisy_lsm_iter_new(b->db, NULL);
	if (it == NULL)
		die("iterator", SISY_E_NOMEM);
	char key[BENCH_KEY_MAX], extra[64];
	long found = 0, n = b->f.reads;
	double t0 = bench_now_us();
	for (long i = 0; i < n; i++) {
		long k = (long)(bench_rnd(&b->rng) % (uint64_t)b->f.num);
		int klen = bench_key(key, b->f.key_size, k, false);
		double a = bench_now_us();
		sisy_lsm_iter_seek(it, key, (size_t)klen);
		if (sisy_lsm_iter_valid(it)) {
			size_t kl;
			const uint8_t *kp = sisy_lsm_iter_key(it, &kl);
			found += kl == (size_t)klen && memcmp(kp, key, kl) == 0;
		}
		b->lat[i] = (float)(bench_now_us() - a);
	}
	double el = bench_now_us() - t0;
	sisy_err rc = sisy_lsm_iter_status(it);
	sisy_lsm_iter_free(it);
	if (rc != SISY_OK)
		die("seekrandom", rc);
	snprintf(extra, sizeof extra, "(%ld of %ld found)", found, n);
	bench_report("seekrandom", n, el,
		     (double)found * (b->f.key_size + b->f.value_size), b->lat,
		     extra);
}

static bool run_one(bench *b, const char *name)
{
	const bench_flags *f = &b->f;
	if (strcmp(name, "fillseq") == 0)
		run_fill(b, name, f->num, false, f->sync, true);
	else if (strcmp(name, "fillrandom") == 0)
		run_fill(b, name, f->num, true, f->sync, true);
	else if (strcmp(name, "overwrite") == 0)
		run_fill(b, name, f->num, true, f->sync, false);
	else if (strcmp(name, "fillsync") == 0)
		run_fill(b, name, f->sync_num, true, true, true);
	else if (strcmp(name, "readrandom") == 0)
		run_read(b, name, false);
	else if (strcmp(name, "readmissing") == 0)
		run_read(b, name, true);
	else if (strcmp(name, "readseq") == 0)
		run_readseq(b);
	else if (strcmp(name, "seekrandom") == 0)
		run_seekrandom(b);
	else
		return false;
	print_stats(b);
	bench_mem_sample(&b->mem);
	return true;
}

int sisy_bench_engine(int argc, char **argv)
{
	bench b;
	memset(&b, 0, sizeof b);
	bench_flags_init(&b.f);
	if (!bench_flags_parse(&b.f, argc, argv, "sisy-bench engine"))
		return 2;
	/* Refuse unknown names before spending minutes on the known ones. */
	char name[64];
	const char *list = b.f.benchmarks;
	while (bench_next_name(&list, name, sizeof name)) {
		const char *known[] = {"fillseq",    "fillrandom",  "overwrite",
				       "readrandom", "readmissing", "readseq",
				       "seekrandom", "fillsync"};
		bool ok = false;
		for (size_t i = 0; i < sizeof known / sizeof *known; i++)
			ok = ok || strcmp(name, known[i]) == 0;
		if (!ok) {
			fprintf(stderr,
				"sisy-bench engine: unknown benchmark '%s'\n",
				name);
			return 2;
		}
	}
	long most = b.f.num > b.f.reads ? b.f.num : b.f.reads;
	if (b.f.sync_num > most)
		most = b.f.sync_num;
	b.rng.s = 301;
	b.lat = malloc(sizeof *b.lat * (size_t)(most > 0 ? most : 1));
	if (b.lat == NULL ||
	    !bench_values_init(&b.vals, &b.rng, b.f.value_size)) {
		fprintf(stderr, "sisy-bench engine: out of memory\n");
		return 1;
	}
	printf("SisyphusDB:  engine (sisyd/lsm), sisy-bench engine\n");
	printf("Keys:        %d bytes each\n", b.f.key_size);
	printf("Values:      %d bytes each (%d bytes after compression)\n",
	       b.f.value_size, b.f.value_size / 2);
	printf("Entries:     %ld (reads %ld, fillsync %ld)\n", b.f.num,
	       b.f.reads, b.f.sync_num);
	printf("Compression: %s\n", b.f.compression ? "zlib" : "none");
	sisy_lsm_options dflt;
	sisy_lsm_options_init(&dflt);
	char mapped[32];
	if (b.f.mmap_bytes == -1)
		snprintf(mapped, sizeof mapped, "no bound");
	else
		snprintf(mapped, sizeof mapped, "%zu B",
			 b.f.mmap_bytes >= 0 ? (size_t)b.f.mmap_bytes
					     : dflt.mmap_bytes);
	printf("Options:     block cache %ld B, bloom %d bits/key, memtable "
	       "%ld B, block %ld B, WAL %s, tables mapped %s; single "
	       "thread\n",
	       b.f.cache_size, b.f.bloom_bits, b.f.write_buffer_size,
	       b.f.block_size, b.f.wal ? "on" : "off", mapped);
	printf("Dir:         %s\n", b.f.db);
	printf("------------------------------------------------\n");
	fflush(stdout);
	list = b.f.benchmarks;
	while (bench_next_name(&list, name, sizeof name))
		run_one(&b, name);
	close_db(&b);
	bench_mem_print(&b.mem);
	sisy_buf_free(&b.val);
	free(b.vals.data);
	free(b.lat);
	return 0;
}
