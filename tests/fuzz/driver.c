/* driver.c — runs a libFuzzer-style target without libFuzzer (gcc builds,
 * `make check`): replays every file of the corpus directories given, then
 * mutates corpus entries at random for a bounded number of runs.
 *
 *   fuzz_X [--runs N] [--seed S] DIR...
 *
 * Mutations: bit flips, byte sets, truncation, insertion of random bytes,
 * splicing two entries. Seeded (sisy_rand), so a failure replays with the
 * same --seed; a run that dies (sanitizer report, signal) leaves its input
 * in crash-<seed>-<run> for libFuzzer or this driver to replay.
 */
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rand.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_INPUT 65536
#define MAX_CORPUS     1024

typedef struct entry {
	uint8_t *data;
	size_t len;
} entry;

static entry corpus[MAX_CORPUS];
static size_t ncorpus;

/* The input being run, written out if the run dies. */
static const uint8_t *cur;
static size_t cur_len;
static char crash_name[64];

static void save_input(void)
{
	FILE *f = fopen(crash_name, "wb");
	if (f) {
		fwrite(cur, 1, cur_len, f);
		fclose(f);
		fprintf(stderr, "driver: input written to %s\n", crash_name);
	}
}

static void on_fatal(int sig)
{
	save_input();
	signal(sig, SIG_DFL);
	raise(sig);
}

void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void load_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL) {
		fprintf(stderr, "driver: cannot open %s\n", dir);
		exit(2);
	}
	struct dirent *e;
	while ((e = readdir(d)) && ncorpus < MAX_CORPUS) {
		char path[4096];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		if (f == NULL)
			continue;
		uint8_t *buf = malloc(FUZZ_MAX_INPUT);
		size_t n = fread(buf, 1, FUZZ_MAX_INPUT, f);
		fclose(f);
		corpus[ncorpus].data = buf;
		corpus[ncorpus].len = n;
		ncorpus++;
	}
	closedir(d);
}

static size_t mutate(sisy_rand *r, uint8_t *buf, size_t len)
{
	int n = 1 + (int)sisy_rand_below(r, 8);
	for (int i = 0; i < n; i++) {
		switch (sisy_rand_below(r, 6)) {
		case 0:
			if (len)
				buf[sisy_rand_below(r, len)] ^=
				    (uint8_t)(1u << sisy_rand_below(r, 8));
			break;
		case 1:
			if (len)
				buf[sisy_rand_below(r, len)] =
				    (uint8_t)sisy_rand_next(r);
			break;
		case 2:
			if (len)
				len = sisy_rand_below(r, len + 1);
			break;
		case 3: {
			size_t k = 1 + sisy_rand_below(r, 16);
			if (len + k > FUZZ_MAX_INPUT)
				break;
			size_t at = sisy_rand_below(r, len + 1);
			memmove(buf + at + k, buf + at, len - at);
			for (size_t j = 0; j < k; j++)
				buf[at + j] = (uint8_t)sisy_rand_next(r);
			len += k;
			break;
		}
		case 4: {
			const entry *o = &corpus[sisy_rand_below(r, ncorpus)];
			size_t at = len ? sisy_rand_below(r, len) : 0;
			size_t k = o->len < FUZZ_MAX_INPUT - at
				       ? o->len
				       : FUZZ_MAX_INPUT - at;
			memcpy(buf + at, o->data, k);
			if (at + k > len)
				len = at + k;
			break;
		}
		default:
			/* Interesting integers in the first bytes (lengths). */
			if (len >= 4) {
				static const uint32_t v[] = {
				    0,	    1,		0x7f,	    0x80, 0xff,
				    0xffff, 0x7fffffff, 0xffffffff, 4096, 4097};
				uint32_t x = v[sisy_rand_below(r, 10)];
				size_t at = sisy_rand_below(r, len - 3);
				memcpy(buf + at, &x, 4);
			}
		}
	}
	return len;
}

int main(int argc, char **argv)
{
	long runs = 20000;
	unsigned long long seed = 1;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--runs") && i + 1 < argc)
			runs = atol(argv[++i]);
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 10);
		else
			load_dir(argv[i]);
	}
	if (ncorpus == 0) {
		corpus[0].data = calloc(1, 1);
		corpus[0].len = 0;
		ncorpus = 1;
	}
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(save_input);
	signal(SIGSEGV, on_fatal);
	signal(SIGABRT, on_fatal);
	for (size_t i = 0; i < ncorpus; i++) {
		cur = corpus[i].data;
		cur_len = corpus[i].len;
		snprintf(crash_name, sizeof crash_name, "crash-corpus-%zu", i);
		LLVMFuzzerTestOneInput(corpus[i].data, corpus[i].len);
	}
	sisy_rand r;
	sisy_rand_seed(&r, seed);
	uint8_t *buf = malloc(FUZZ_MAX_INPUT);
	for (long i = 0; i < runs; i++) {
		const entry *e = &corpus[sisy_rand_below(&r, ncorpus)];
		memcpy(buf, e->data, e->len);
		size_t len = mutate(&r, buf, e->len);
		cur = buf;
		cur_len = len;
		snprintf(crash_name, sizeof crash_name, "crash-%llu-%ld", seed,
			 i);
		LLVMFuzzerTestOneInput(buf, len);
	}
	printf("%zu corpus inputs replayed, %ld mutated runs (seed %llu): "
	       "no crash\n",
	       ncorpus, runs, seed);
	free(buf);
	for (size_t i = 0; i < ncorpus; i++)
		free(corpus[i].data);
	return 0;
}
