/* leveldb_bench.c — `leveldb-bench`: the LevelDB side of the engine
 * comparison, through LevelDB's C API (Debian's libleveldb-dev; built only
 * when it is installed). Same flags, same workload, same output as
 * `sisy-bench engine` (see bench_util.h), so bench/engine-vs-leveldb.sh can
 * run the two alternately and compare them line by line.
 *
 * LevelDB options: its defaults (4 MiB write buffer, 4 KiB blocks, 1000 open
 * files) overridden by the flags, plus create_if_missing and a Bloom filter
 * of --bloom_bits bits per key. --compression=1 means Snappy here (LevelDB's
 * only codec) and zlib on our side: the header line says which.
 */
#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

typedef struct bench {
	bench_flags f;
	bench_rng rng;
	bench_values vals;
	float *lat;
	bench_mem mem;
	leveldb_options_t *opt;
	leveldb_filterpolicy_t *bloom;
	leveldb_cache_t *cache;
	leveldb_t *db;
	leveldb_readoptions_t *ro;
	leveldb_writeoptions_t *wo, *wo_sync;
} bench;

static void check(char *err, const char *what)
{
	if (err != NULL) {
		fprintf(stderr, "leveldb-bench: %s: %s\n", what, err);
		leveldb_free(err);
		exit(1);
	}
}

static void close_db(bench *b)
{
	if (b->db != NULL)
		leveldb_close(b->db);
	b->db = NULL;
}

static void open_db(bench *b, bool fresh)
{
	char *err = NULL;
	close_db(b);
	if (fresh) {
		leveldb_destroy_db(b->opt, b->f.db, &err);
		if (err != NULL) {
			leveldb_free(err);
			err = NULL;
		}
		if (!bench_rm_rf(b->f.db)) {
			fprintf(stderr, "leveldb-bench: cannot remove %s\n",
				b->f.db);
			exit(1);
		}
	}
	b->db = leveldb_open(b->opt, b->f.db, &err);
	check(err, "open");
}

static void print_stats(bench *b)
{
	if (!b->f.stats || b->db == NULL)
		return;
	char *s = leveldb_property_value(b->db, "leveldb.stats");
	if (s != NULL) {
		printf("%s", s);
		leveldb_free(s);
	}
	fflush(stdout);
}

static void run_fill(bench *b, const char *name, long n, bool random, bool sync,
		     bool fresh)
{
	if (fresh || b->db == NULL)
		open_db(b, fresh);
	leveldb_writeoptions_t *wo = sync ? b->wo_sync : b->wo;
	char key[BENCH_KEY_MAX];
	char *err = NULL;
	double t0 = bench_now_us();
	for (long i = 0; i < n; i++) {
		long k = random
			     ? (long)(bench_rnd(&b->rng) % (uint64_t)b->f.num)
			     : i;
		int klen = bench_key(key, b->f.key_size, k, false);
		const char *v = bench_value(&b->vals);
		double a = bench_now_us();
		leveldb_put(b->db, wo, key, (size_t)klen, v,
			    (size_t)b->f.value_size, &err);
		b->lat[i] = (float)(bench_now_us() - a);
		check(err, "put");
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
	char *err = NULL;
	long found = 0, n = b->f.reads;
	double t0 = bench_now_us();
	for (long i = 0; i < n; i++) {
		long k = (long)(bench_rnd(&b->rng) % (uint64_t)b->f.num);
		int klen = bench_key(key, b->f.key_size, k, missing);
		size_t vlen;
		double a = bench_now_us();
		char *v =
		    leveldb_get(b->db, b->ro, key, (size_t)klen, &vlen, &err);
		b->lat[i] = (float)(bench_now_us() - a);
		check(err, "get");
		if (v != NULL) {
			found++;
			leveldb_free(v);
		}
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
	leveldb_iterator_t *it = leveldb_create_iterator(b->db, b->ro);
	long i = 0;
	double bytes = 0;
	double t0 = bench_now_us(), a = t0;
	for (leveldb_iter_seek_to_first(it);
	     i < b->f.reads && leveldb_iter_valid(it); i++) {
		size_t kl, vl;
		(void)leveldb_iter_key(it, &kl);
		(void)leveldb_iter_value(it, &vl);
		bytes += (double)(kl + vl);
		leveldb_iter_next(it);
		double now = bench_now_us();
		b->lat[i] = (float)(now - a);
		a = now;
	}
	double el = bench_now_us() - t0;
	char *err = NULL;
	leveldb_iter_get_error(it, &err);
	leveldb_iter_destroy(it);
	check(err, "readseq");
	bench_report("readseq", i, el, bytes, b->lat, NULL);
}

static void run_seekrandom(bench *b)
{
	if (b->db == NULL)
		open_db(b, false);
	leveldb_iterator_t *it = leveldb_create_iterator(b->db, b->ro);
	char key[BENCH_KEY_MAX], extra[64];
	long found = 0, n = b->f.reads;
	double t0 = bench_now_us();
	for (long i = 0; i < n; i++) {
		long k = (long)(bench_rnd(&b->rng) % (uint64_t)b->f.num);
		int klen = bench_key(key, b->f.key_size, k, false);
		double a = bench_now_us();
		leveldb_iter_seek(it, key, (size_t)klen);
		if (leveldb_iter_valid(it)) {
			size_t kl;
			const char *kp = leveldb_iter_key(it, &kl);
			found += kl == (size_t)klen && memcmp(kp, key, kl) == 0;
		}
		b->lat[i] = (float)(bench_now_us() - a);
	}
	double el = bench_now_us() - t0;
	char *err = NULL;
	leveldb_iter_get_error(it, &err);
	leveldb_iter_destroy(it);
	check(err, "seekrandom");
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

int main(int argc, char **argv)
{
	bench b;
	memset(&b, 0, sizeof b);
	bench_flags_init(&b.f);
	if (!bench_flags_parse(&b.f, argc, argv, "leveldb-bench"))
		return 2;
	if (!b.f.wal) {
		fprintf(stderr, "leveldb-bench: LevelDB cannot turn its log "
				"off (--wal=0)\n");
		return 2;
	}
	char name[64];
	const char *list = b.f.benchmarks;
	while (bench_next_name(&list, name, sizeof name)) {
		if (strcmp(name, "fillseq") && strcmp(name, "fillrandom") &&
		    strcmp(name, "overwrite") && strcmp(name, "readrandom") &&
		    strcmp(name, "readmissing") && strcmp(name, "readseq") &&
		    strcmp(name, "seekrandom") && strcmp(name, "fillsync")) {
			fprintf(stderr,
				"leveldb-bench: unknown benchmark "
				"'%s'\n",
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
		fprintf(stderr, "leveldb-bench: out of memory\n");
		return 1;
	}
	b.opt = leveldb_options_create();
	leveldb_options_set_create_if_missing(b.opt, 1);
	if (b.f.bloom_bits > 0) {
		b.bloom = leveldb_filterpolicy_create_bloom(b.f.bloom_bits);
		leveldb_options_set_filter_policy(b.opt, b.bloom);
	}
	b.cache = leveldb_cache_create_lru((size_t)b.f.cache_size);
	leveldb_options_set_cache(b.opt, b.cache);
	leveldb_options_set_compression(b.opt, b.f.compression
						   ? leveldb_snappy_compression
						   : leveldb_no_compression);
	leveldb_options_set_write_buffer_size(b.opt,
					      (size_t)b.f.write_buffer_size);
	leveldb_options_set_block_size(b.opt, (size_t)b.f.block_size);
	leveldb_options_set_max_open_files(b.opt, b.f.max_open_files);
	b.ro = leveldb_readoptions_create();
	b.wo = leveldb_writeoptions_create();
	b.wo_sync = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(b.wo_sync, 1);

	printf("LevelDB:     version %d.%d (C API), leveldb-bench\n",
	       leveldb_major_version(), leveldb_minor_version());
	printf("Keys:        %d bytes each\n", b.f.key_size);
	printf("Values:      %d bytes each (%d bytes after compression)\n",
	       b.f.value_size, b.f.value_size / 2);
	printf("Entries:     %ld (reads %ld, fillsync %ld)\n", b.f.num,
	       b.f.reads, b.f.sync_num);
	printf("Compression: %s\n", b.f.compression ? "snappy" : "none");
	printf("Options:     block cache %ld B, bloom %d bits/key, memtable "
	       "%ld B, block %ld B, WAL on; single thread\n",
	       b.f.cache_size, b.f.bloom_bits, b.f.write_buffer_size,
	       b.f.block_size);
	printf("Dir:         %s\n", b.f.db);
	printf("------------------------------------------------\n");
	fflush(stdout);
	list = b.f.benchmarks;
	while (bench_next_name(&list, name, sizeof name))
		run_one(&b, name);
	close_db(&b);
	bench_mem_print(&b.mem);
	leveldb_readoptions_destroy(b.ro);
	leveldb_writeoptions_destroy(b.wo);
	leveldb_writeoptions_destroy(b.wo_sync);
	leveldb_options_destroy(b.opt);
	leveldb_cache_destroy(b.cache);
	if (b.bloom != NULL)
		leveldb_filterpolicy_destroy(b.bloom);
	free(b.vals.data);
	free(b.lat);
	return 0;
}
