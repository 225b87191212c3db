/* bench_util.h — what the two db_bench-style engine benchmarks share
 * (sisy-bench engine, bench/sisy_bench_engine.c, and leveldb-bench,
 * bench/leveldb_bench.c), so both sides run the same workload and print the
 * same lines: flags, keys, the value generator, the random number stream,
 * per-operation latencies and the report. Header-only, because the LevelDB
 * side is a separate program that links nothing of ours but libcommon.
 *
 * WORKLOAD (the semantics of /work/shared/acceptance/leveldb_bench.c and of
 * LevelDB's db_bench)
 *   keys      "%0*d" (key_size digits) of a number in [0, num); readmissing
 *             appends "." so the key is never present
 *   values    value_size-byte windows, one after the other, over a 1 MiB
 *             buffer of 100-byte pieces, each 50 random printable bytes
 *             written twice: values compress to about half, as db_bench's
 *   random    one xorshift64* stream (seed 301) for everything: the value
 *             buffer first, then the keys of each benchmark in order, so
 *             both programs draw the very same keys
 *   fill*     start from a fresh (destroyed) database; overwrite and the
 *             reads use the database the previous benchmarks left
 *   fillsync  sync_num puts (default num / 1000, at least 100) with sync
 *
 * OUTPUT, one line per benchmark, db_bench's layout first:
 *   fillrandom   :       2.345 micros/op;   47.2 MB/s; p50=... p99=...
 * MB/s counts key + value bytes per write and per key found by a read.
 */
#ifndef SISY_BENCH_UTIL_H
#define SISY_BENCH_UTIL_H

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BENCH_KEY_MAX 64

typedef struct bench_flags {
	const char *benchmarks;
	long num;
	long reads; /* -1: num */
	long sync_num;
	int key_size;
	int value_size;
	long cache_size;
	int compression;
	const char *db;
	int bloom_bits;
	int sync;
	long write_buffer_size;
	long block_size;
	int max_open_files;
	int wal;
	int stats;
	long mmap_bytes; /* -2: the engine's default; -1: no bound */
} bench_flags;

static inline void bench_flags_init(bench_flags *f)
{
	f->benchmarks = "fillseq,fillrandom,overwrite,readrandom,readmissing,"
			"readseq,seekrandom,fillsync";
	f->num = 1000000;
	f->reads = -1;
	f->sync_num = -1;
	f->key_size = 16;
	f->value_size = 100;
	f->cache_size = 8 << 20; /* LevelDB's default */
	f->compression = 0;
	f->db = "/tmp/sisy-bench-db";
	f->bloom_bits = 10;
	f->sync = 0;
	f->write_buffer_size = 4 << 20; /* LevelDB's default */
	f->block_size = 4096;
	f->max_open_files = 1000;
	f->wal = 1;
	f->stats = 0;
	f->mmap_bytes = -2;
}

static inline void bench_flags_usage(FILE *out, const char *prog)
{
	fprintf(
	    out,
	    "usage: %s [--flag=value ...]\n"
	    "  --benchmarks=LIST    comma-separated, in order, from fillseq,"
	    " fillrandom,\n"
	    "                       overwrite, readrandom, readmissing, "
	    "readseq,\n"
	    "                       seekrandom, fillsync\n"
	    "  --num=N              entries (1000000)\n"
	    "  --reads=N            operations of read benchmarks (num)\n"
	    "  --sync_num=N         puts of fillsync (num/1000, >= 100)\n"
	    "  --key_size=B         16     --value_size=B  100\n"
	    "  --cache_size=BYTES   block cache (8388608)\n"
	    "  --compression=0|1    0\n"
	    "  --bloom_bits=B       Bloom bits per key, 0: none (10)\n"
	    "  --write_buffer_size=BYTES  memtable (4194304)\n"
	    "  --block_size=BYTES   4096   --max_open_files=N  1000\n"
	    "  --sync=0|1           sync every write (0)\n"
	    "  --wal=0|1            write-ahead log (1; sisy-bench only)\n"
	    "  --mmap_bytes=BYTES   table bytes mapped at once (engine's "
	    "default;\n"
	    "                       -1: every table; sisy-bench only)\n"
	    "  --stats=0|1          print engine statistics (0)\n"
	    "  --db=DIR             /tmp/sisy-bench-db (destroyed by fills)\n",
	    prog);
}

static inline bool bench_flag(const char *arg, const char *name,
			      const char **val)
{
	size_t n = strlen(name);
	if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 ||
	    arg[2 + n] != '=')
		return false;
	*val = arg + 3 + n;
	return true;
}

static inline bool bench_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* Parses argv[1..]; prints what is wrong and returns false on a bad flag. */
static inline bool bench_flags_parse(bench_flags *f, int argc, char **argv,
				     const char *prog)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v;
		long x = 0;
		bool ok = true;
#define BENCH_NUM(name, field, lo, hi)          \
	else if (bench_flag(a, name, &v))       \
	{                                       \
		ok = bench_long(v, lo, hi, &x); \
		f->field = x;                   \
	}
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			bench_flags_usage(stdout, prog);
			exit(0);
		} else if (bench_flag(a, "benchmarks", &v)) {
			f->benchmarks = v;
		} else if (bench_flag(a, "db", &v)) {
			f->db = v;
		}
		BENCH_NUM("num", num, 1, 1000000000L)
		BENCH_NUM("reads", reads, 0, 1000000000L)
		BENCH_NUM("sync_num", sync_num, 1, 1000000000L)
		BENCH_NUM("key_size", key_size, 8, BENCH_KEY_MAX - 2)
		BENCH_NUM("value_size", value_size, 0, 1 << 20)
		BENCH_NUM("cache_size", cache_size, 0, 1L << 40)
		BENCH_NUM("compression", compression, 0, 1)
		BENCH_NUM("bloom_bits", bloom_bits, 0, 64)
		BENCH_NUM("sync", sync, 0, 1)
		BENCH_NUM("write_buffer_size", write_buffer_size, 64 << 10,
			  1L << 34)
		BENCH_NUM("block_size", block_size, 256, 1 << 24)
		BENCH_NUM("max_open_files", max_open_files, 20, 1 << 20)
		BENCH_NUM("wal", wal, 0, 1)
		BENCH_NUM("stats", stats, 0, 1)
		BENCH_NUM("mmap_bytes", mmap_bytes, -1, 1L << 40)
		else ok = false;
#undef BENCH_NUM
		if (!ok) {
			fprintf(stderr, "%s: bad flag %s (see --help)\n", prog,
				a);
			return false;
		}
	}
	if (f->reads < 0)
		f->reads = f->num;
	if (f->sync_num < 0)
		f->sync_num = f->num / 1000 < 100 ? 100 : f->num / 1000;
	return true;
}

/* --- the random stream and the value generator --------------------------- */

typedef struct bench_rng {
	uint64_t s;
} bench_rng;

static inline uint64_t bench_rnd(bench_rng *r) /* xorshift64* */
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return r->s * 2685821657736338717ULL;
}

typedef struct bench_values {
	char *data;
	size_t size, pos;
	int value_size;
} bench_values;

static inline bool bench_values_init(bench_values *g, bench_rng *r,
				     int value_size)
{
	g->size = 1 << 20;
	if ((size_t)value_size > g->size)
		g->size = (size_t)value_size;
	g->pos = 0;
	g->value_size = value_size;
	g->data = malloc(g->size);
	if (g->data == NULL)
		return false;
	for (size_t off = 0; off < g->size; off += 100) {
		char raw[50];
		for (int i = 0; i < 50; i++)
			raw[i] = (char)(' ' + (char)(bench_rnd(r) % 95));
		for (size_t i = 0; i < 100 && off + i < g->size; i++)
			g->data[off + i] = raw[i % 50];
	}
	return true;
}

static inline const char *bench_value(bench_values *g)
{
	if (g->pos + (size_t)g->value_size > g->size)
		g->pos = 0;
	const char *p = g->data + g->pos;
	g->pos += (size_t)g->value_size;
	return p;
}

/* Writes key number k; missing keys get a "." appended. Returns its size. */
static inline int bench_key(char *out, int key_size, long k, bool missing)
{
	return snprintf(out, BENCH_KEY_MAX, missing ? "%0*ld." : "%0*ld",
			key_size, k);
}

/* --- timing and the report ------------------------------------------------ */

static inline double bench_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static inline int bench_cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

/* lat[0..ops) are per-operation microseconds (sorted here). */
static inline void bench_report(const char *name, long ops, double elapsed_us,
				double bytes, float *lat, const char *extra)
{
	if (ops <= 0) {
		printf("%-12s : (no operations)\n", name);
		return;
	}
	qsort(lat, (size_t)ops, sizeof *lat, bench_cmp_float);
	printf("%-12s : %11.3f micros/op; %6.1f MB/s; ops=%ld elapsed=%.2fs "
	       "p50=%.2fus p99=%.2fus max=%.0fus %s\n",
	       name, elapsed_us / (double)ops,
	       bytes / 1048576.0 / (elapsed_us / 1e6), ops, elapsed_us / 1e6,
	       (double)lat[ops / 2], (double)lat[(long)((double)ops * 0.99)],
	       (double)lat[ops - 1], extra != NULL ? extra : "");
	fflush(stdout);
}

/* Peak resident set size of this process, in MiB. */
static inline double bench_peak_rss_mib(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return -1;
	return (double)ru.ru_maxrss / 1024.0;
}

/* A "Name:   1234 kB" field of /proc/self/status in MiB; -1 if absent. */
static inline double bench_status_mib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return -1;
	char line[256];
	double v = -1;
	size_t n = strlen(field);
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, field, n) == 0 && line[n] == ':') {
			v = strtod(line + n + 1, NULL) / 1024.0;
			break;
		}
	}
	fclose(f);
	return v;
}

/* Memory, sampled after every benchmark: the peak of anonymous memory
 * (heap: memtables, block cache, indexes, filters) and of file-backed
 * resident pages (mapped tables, which the page cache can drop), which
 * together make up the resident set. */
typedef struct bench_mem {
	double anon_max, file_max;
} bench_mem;

static inline void bench_mem_sample(bench_mem *m)
{
	double a = bench_status_mib("RssAnon"), f = bench_status_mib("RssFile");
	if (a > m->anon_max)
		m->anon_max = a;
	if (f > m->file_max)
		m->file_max = f;
}

static inline void bench_mem_print(bench_mem *m)
{
	bench_mem_sample(m);
	printf("peak RSS:    %.1f MiB (anonymous at most %.1f MiB, mapped "
	       "files at most %.1f MiB, sampled after each benchmark)\n",
	       bench_peak_rss_mib(), m->anon_max, m->file_max);
}

/* --- the database directory ----------------------------------------------- */

static inline int bench_rm_one(const char *path, const struct stat *st,
			       int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Removes dir and everything under it; a missing dir is fine. */
static inline bool bench_rm_rf(const char *dir)
{
	return nftw(dir, bench_rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ||
	       errno == ENOENT;
}

/* The next name in a comma-separated list; false at its end. */
static inline bool bench_next_name(const char **list, char *out, size_t cap)
{
	const char *p = *list;
	while (*p == ',')
		p++;
	if (*p == '\0')
		return false;
	size_t n = strcspn(p, ",");
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
	*list = p + strcspn(p, ",");
	return true;
}

#endif
