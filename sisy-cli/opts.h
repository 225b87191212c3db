/* opts.h — the command line and the environment, resolved into settings.
 *
 * Precedence, for every setting: a flag beats an environment variable,
 * which beats the default. Hosts: -h, else SISY_HOST, else 127.0.0.1; the
 * port for hosts given without one: -p, else SISY_PORT, else 7420; user: -U,
 * else SISY_USER, else admin; password: SISY_PASSWORD (there is no flag, so
 * that it never shows in ps), else the password file, else a prompt.
 *
 * Options are read the way psql reads them: short ones may be bundled
 * (-At) and take their argument attached or separate (-p7420, -p 7420);
 * long ones take --name=value or --name value; "--" ends the options.
 * -c and -f are kept in the order given and run in that order.
 *
 * Parsing is pure: the environment comes through a lookup function and
 * nothing is printed; the result points into argv and the environment.
 */
#ifndef CLI_OPTS_H
#define CLI_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "limits.h"

#define CLI_DEFAULT_HOST "127.0.0.1"
#define CLI_DEFAULT_PORT 7420
#define CLI_DEFAULT_USER "admin"

typedef struct cli_host {
	char name[CLI_HOSTNAME_MAX + 1]; /* without brackets for IPv6 */
	uint16_t port;
} cli_host;

typedef enum cli_action_kind {
	CLI_ACT_COMMAND = 0, /* -c: the text of commands */
	CLI_ACT_FILE,	     /* -f: a file name, "-" for stdin */
} cli_action_kind;

typedef struct cli_action {
	cli_action_kind kind;
	const char *arg;
} cli_action;

typedef struct cli_opts {
	cli_host hosts[CLI_HOSTS_MAX];
	size_t nhosts;
	const char *user;
	const char *password; /* from SISY_PASSWORD, or NULL */
	const char *server_key;
	cli_action *actions; /* malloc'd; cli_opts_free */
	size_t nactions;
	const char **sets; /* -v NAME=VALUE, validated; malloc'd */
	size_t nsets;
	int format;	    /* cli_format, or -1 when not given */
	int consistency;    /* 0 linearizable, 1 stale, -1 not given */
	const char *output; /* -o FILE */
	bool tuples_only, quiet, no_rc, pipe;
	bool prompt_password; /* -W */
	bool never_prompt;    /* -w */
	bool help, version;
} cli_opts;

typedef const char *(*cli_getenv_fn)(void *ctx, const char *name);

/* Parses argv (argv[0] is the program) with env lookups through `env`.
 * On error the message names the option and what is wrong. */
sisy_err cli_opts_parse(int argc, char **argv, cli_getenv_fn env, void *env_ctx,
			cli_opts *out);
void cli_opts_free(cli_opts *o);

/* Parses "h1[:p1],h2[:p2],[v6]:p" with `dflt_port` for hosts without one. */
sisy_err cli_hosts_parse(const char *s, uint16_t dflt_port, cli_host *hosts,
			 size_t max, size_t *n);

/* Parses a port 1..65535. */
bool cli_port_parse(const char *s, uint16_t *out);

/* The --help text. */
const char *cli_opts_usage(void);

#endif
