/* lincheck_main.c — sisy-lincheck, the checker as a command.
 *
 *   sisy-lincheck [--steps N] [--memory-mib M] [--quiet] HISTORY|-
 *
 * Reads a history file (JSON lines, docs/testing.md) and prints one verdict
 * line, then the details of a failure. Exit status:
 *   0 linearizable, 1 not linearizable, 2 unknown (search budget or memory
 *   exhausted: investigate, never a pass), 3 bad input or usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck.h"

enum { EXIT_LIN = 0, EXIT_NOTLIN = 1, EXIT_UNKNOWN = 2, EXIT_BADINPUT = 3 };

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sisy-lincheck [--steps N] [--memory-mib M] [--quiet] "
		"HISTORY|-\n"
		"Checks that a key-value history (JSON lines, see "
		"docs/testing.md) is linearizable.\n"
		"exit: 0 linearizable, 1 not, 2 unknown (budget), 3 bad "
		"input\n");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	sisy_lincheck_opts opts = {0};
	const char *path = NULL;
	int quiet = 0;
	for (int i = 1; i < argc; i++) {
		uint64_t v;
		if (strcmp(argv[i], "--steps") == 0 && i + 1 < argc &&
		    parse_u64(argv[i + 1], &v) == 0 && v > 0) {
			opts.max_steps = v;
			i++;
		} else if (strcmp(argv[i], "--memory-mib") == 0 &&
			   i + 1 < argc && parse_u64(argv[i + 1], &v) == 0 &&
			   v > 0 && v < (SIZE_MAX >> 20)) {
			opts.max_memory = (size_t)v << 20;
			i++;
		} else if (strcmp(argv[i], "--quiet") == 0) {
			quiet = 1;
		} else if (strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return EXIT_LIN;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			usage(stderr);
			return EXIT_BADINPUT;
		} else if (!path) {
			path = argv[i];
		} else {
			usage(stderr);
			return EXIT_BADINPUT;
		}
	}
	if (!path) {
		usage(stderr);
		return EXIT_BADINPUT;
	}
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!f) {
		fprintf(stderr, "sisy-lincheck: %s: %s\n", path,
			strerror(errno));
		return EXIT_BADINPUT;
	}
	sisy_lincheck_history *h = sisy_lincheck_history_new();
	int code = EXIT_BADINPUT;
	if (!h) {
		fprintf(stderr, "sisy-lincheck: out of memory\n");
		goto out;
	}
	if (sisy_lincheck_parse_file(h, f) != SISY_OK) {
		fprintf(stderr, "sisy-lincheck: %s: %s\n", path, sisy_errmsg());
		goto out;
	}
	sisy_lincheck_result res;
	sisy_lincheck_check(h, &opts, &res);
	printf("%s: %zu ops checked on %zu keys (%zu in file), %" PRIu64
	       " search steps\n",
	       sisy_lincheck_verdict_name(res.verdict), res.ops, res.keys,
	       sisy_lincheck_count(h), res.steps);
	if (!quiet && res.verdict != SISY_LINCHECK_LINEARIZABLE)
		printf("%s\n", res.detail);
	code = res.verdict == SISY_LINCHECK_LINEARIZABLE       ? EXIT_LIN
	       : res.verdict == SISY_LINCHECK_NOT_LINEARIZABLE ? EXIT_NOTLIN
							       : EXIT_UNKNOWN;
out:
	sisy_lincheck_history_free(h);
	if (f != stdin)
		fclose(f);
	return code;
}
