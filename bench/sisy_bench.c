/* sisy_bench.c — sisy-bench's entry point: dispatches on the mode named by
 * the first argument (see sisy_bench.h). */
#include <stdio.h>
#include <string.h>

#include "sisy_bench.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sisy-bench MODE [--flag=value ...]\n"
		"modes:\n"
		"  engine   db_bench-style benchmark of the storage engine\n"
		"  etcd     the kv load generator against etcd's JSON gateway\n"
#ifdef SISY_BENCH_KV
		"  kv       load generator against a running cluster\n"
#endif
		"`sisy-bench MODE --help` lists a mode's flags.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "engine") == 0)
		return sisy_bench_engine(argc - 1, argv + 1);
	if (strcmp(argv[1], "etcd") == 0)
		return sisy_bench_etcd(argc - 1, argv + 1);
#ifdef SISY_BENCH_KV
	if (strcmp(argv[1], "kv") == 0)
		return sisy_bench_kv(argc - 1, argv + 1);
#endif
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "sisy-bench: unknown mode '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
