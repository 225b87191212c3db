/* lsm_test_util.h — fixtures shared by the engine's tests: temporary
 * directories on the real disk, the seed every randomised test prints and
 * replays (SISY_SEED), and small key/value helpers. Header-only so each
 * test stays one executable. */
#ifndef SISY_LSM_TEST_UTIL_H
#define SISY_LSM_TEST_UTIL_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"

/* A fresh directory under /tmp; removed by tu_rmdir. */
static inline void tu_mkdtemp(char *out, size_t cap, const char *tag)
{
	snprintf(out, cap, "/tmp/sisy-lsm-%s-XXXXXX", tag);
	if (mkdtemp(out) == NULL) {
		perror("mkdtemp");
		abort();
	}
}

static inline void tu_rmdir(const char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "warning: could not remove %s\n", dir);
}

/* The seed of a randomised test: $SISY_SEED when set (to replay a
 * failure), else derived from the clock. Always printed. */
static inline uint64_t tu_seed(const char *test)
{
	const char *env = getenv("SISY_SEED");
	uint64_t seed = env != NULL
			    ? strtoull(env, NULL, 0)
			    : (sisy_now_ns() ^ ((uint64_t)getpid() << 32));
	fprintf(stderr,
		"%s: seed %" PRIu64 " (replay: SISY_SEED=%" PRIu64 ")\n", test,
		seed, seed);
	return seed;
}

/* An integer from the environment, or def (to scale tests by hand). */
static inline long tu_env_long(const char *name, long def)
{
	const char *env = getenv(name);
	return env != NULL ? strtol(env, NULL, 0) : def;
}

/* "key%08d"-style keys that sort like their numbers. */
static inline size_t tu_key(char *out, size_t cap, uint64_t n)
{
	return (size_t)snprintf(out, cap, "key%010" PRIu64, n);
}

#endif
