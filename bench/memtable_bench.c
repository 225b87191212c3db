/* memtable_bench.c — a microbenchmark of memtable inserts as the server's
 * apply path makes them: a memtable sized like the engine's (4 MiB by
 * default, with its Bloom filter) filled with batches of random 16-byte
 * keys "key%013llu" (keyspace 100,000) and 100-byte values, in sequence
 * order, through lsm_memtable_add_batch ("batch") or one lsm_memtable_add
 * per entry ("add").
 *
 * Wall clock on a shared machine is noise; the figure to compare is
 * instructions per insert, under callgrind, counting only the insert call:
 *   valgrind --tool=callgrind --toggle-collect=lsm_memtable_add_batch \
 *       memtable-bench batch        (or --toggle-collect=lsm_memtable_add
 *       ... add), then the total Ir divided by the inserts printed here.
 * Usage: memtable-bench [batch|add] [memtable_bytes] [batch_size] [rounds]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "memtable.h"

enum { MAX_BATCH = 4096, KEY_LEN = 16, VALUE_LEN = 100 };

static double now_sec(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Fills one memtable; returns the seconds spent inside the insert calls. */
static double fill(lsm_memtable *m, size_t bytes, size_t batch, int one_by_one,
		   uint64_t *rnd, uint64_t *seq, uint64_t *inserts)
{
	static uint8_t keys[MAX_BATCH][KEY_LEN + 1];
	static uint8_t value[VALUE_LEN];
	static lsm_mem_op ops[MAX_BATCH];
	double spent = 0;
	memset(value, 'v', sizeof value);
	while (lsm_memtable_usage(m) < bytes) {
		for (size_t i = 0; i < batch; i++) {
			unsigned long long k = xorshift(rnd) % 100000;
			snprintf((char *)keys[i], sizeof keys[i], "key%013llu",
				 k);
			ops[i] = (lsm_mem_op){
			    .key = sisy_slice_make(keys[i], KEY_LEN),
			    .value = sisy_slice_make(value, VALUE_LEN),
			    .seq = (*seq)++,
			    .type = LSM_TYPE_VALUE};
		}
		double t0 = now_sec();
		sisy_err rc = SISY_OK;
		if (one_by_one)
			for (size_t i = 0; i < batch && rc == SISY_OK; i++)
				rc =
				    lsm_memtable_add(m, ops[i].seq, ops[i].type,
						     ops[i].key, ops[i].value);
		else
			rc = lsm_memtable_add_batch(m, ops, batch);
		spent += now_sec() - t0;
		if (rc != SISY_OK) {
			fprintf(stderr, "memtable-bench: %s\n", sisy_errmsg());
			exit(1);
		}
		*inserts += batch;
	}
	return spent;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "batch";
	size_t bytes = argc > 2 ? strtoull(argv[2], NULL, 10) : 4u << 20;
	size_t batch = argc > 3 ? strtoull(argv[3], NULL, 10) : 256;
	int rounds = argc > 4 ? atoi(argv[4]) : 1;
	int one_by_one = strcmp(mode, "add") == 0;
	if ((!one_by_one && strcmp(mode, "batch") != 0) || batch == 0 ||
	    batch > MAX_BATCH || rounds <= 0 || bytes == 0) {
		fprintf(stderr, "usage: memtable-bench [batch|add] "
				"[memtable_bytes] [batch_size<=4096] "
				"[rounds]\n");
		return 2;
	}
	uint64_t rnd = 88172645463325252ull, seq = 1, inserts = 0;
	double spent = 0;
	for (int r = 0; r < rounds; r++) {
		lsm_memtable *m = lsm_memtable_new_sized(bytes);
		if (m == NULL) {
			fprintf(stderr, "memtable-bench: out of memory\n");
			return 1;
		}
		spent +=
		    fill(m, bytes, batch, one_by_one, &rnd, &seq, &inserts);
		lsm_memtable_unref(m);
	}
	printf("memtable_%-6s: %8.1f ns/op; %llu inserts, batch %zu, "
	       "%zu-byte memtable x %d\n",
	       mode, spent * 1e9 / (double)inserts, (unsigned long long)inserts,
	       batch, bytes, rounds);
	return 0;
}
