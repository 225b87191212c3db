/* opts.c — command-line parsing and flag/env/default resolution (see
 * opts.h). A small hand-written parser instead of getopt_long: getopt keeps
 * global state, and the tests parse many command lines in one process.
 */
#include "opts.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "out.h"
#include "vars.h"

enum opt_id {
	O_HOST = 1,
	O_PORT,
	O_USER,
	O_NOPASS,
	O_PASS,
	O_SERVERKEY,
	O_CONSISTENCY,
	O_COMMAND,
	O_FILE,
	O_SET,
	O_NORC,
	O_PIPE,
	O_NOALIGN,
	O_TUPLES,
	O_CSV,
	O_JSON,
	O_OUTPUT,
	O_QUIET,
	O_HELP,
	O_VERSION,
};

static const struct opt_def {
	char shortname; /* 0: long only */
	const char *longname;
	bool arg;
	enum opt_id id;
} opt_defs[] = {
    {'h', "host", true, O_HOST},
    {'p', "port", true, O_PORT},
    {'U', "user", true, O_USER},
    {'w', "no-password", false, O_NOPASS},
    {'W', "password", false, O_PASS},
    {0, "server-key", true, O_SERVERKEY},
    {0, "consistency", true, O_CONSISTENCY},
    {'c', "command", true, O_COMMAND},
    {'f', "file", true, O_FILE},
    {'v', "set", true, O_SET},
    {0, "variable", true, O_SET},
    {'X', "no-sisyrc", false, O_NORC},
    {0, "pipe", false, O_PIPE},
    {'A', "no-align", false, O_NOALIGN},
    {'t', "tuples-only", false, O_TUPLES},
    {0, "csv", false, O_CSV},
    {0, "json", false, O_JSON},
    {'o', "output", true, O_OUTPUT},
    {'q', "quiet", false, O_QUIET},
    {'?', "help", false, O_HELP},
    {'V', "version", false, O_VERSION},
};

const char *cli_opts_usage(void)
{
	return "sisy-cli is the interactive shell and scripting client of "
	       "SisyphusDB.\n"
	       "\n"
	       "Usage:\n"
	       "  sisy-cli [OPTION]...\n"
	       "\n"
	       "Connection:\n"
	       "  -h, --host=HOST[:PORT][,...]  nodes to try in turn "
	       "(SISY_HOST, 127.0.0.1)\n"
	       "  -p, --port=PORT          port for hosts given without one "
	       "(SISY_PORT, 7420)\n"
	       "  -U, --user=USER          user name (SISY_USER, admin)\n"
	       "  -w, --no-password        never prompt for a password\n"
	       "  -W, --password           prompt for a password before "
	       "connecting\n"
	       "      --server-key=KEY     trust this cluster key (base64, or "
	       "a "
	       "file holding it)\n"
	       "      --consistency=linearizable|stale  reads (default "
	       "linearizable)\n"
	       "\n"
	       "Input:\n"
	       "  -c, --command=COMMAND    run COMMAND (repeatable), then "
	       "exit\n"
	       "  -f, --file=FILE          run the commands in FILE (- for "
	       "stdin; repeatable)\n"
	       "  -v, --set=NAME=VALUE     set a variable, e.g. -v "
	       "ON_ERROR_STOP=1\n"
	       "  -X, --no-sisyrc          do not read ~/.sisyrc\n"
	       "      --pipe               mass insert: pipeline the PUT/DEL "
	       "lines of stdin\n"
	       "\n"
	       "Output:\n"
	       "  -A, --no-align           unaligned output, cells separated "
	       "by "
	       "|\n"
	       "  -t, --tuples-only        rows only: no header, no footer\n"
	       "      --csv                CSV output (RFC 4180)\n"
	       "      --json               JSON output\n"
	       "  -o, --output=FILE        write results to FILE\n"
	       "  -q, --quiet              no status lines (PUT 1 ...)\n"
	       "\n"
	       "Other:\n"
	       "  -?, --help               show this help, then exit\n"
	       "  -V, --version            show the version, then exit\n"
	       "\n"
	       "Exit status: 0 success, 1 a command failed, 2 connection or "
	       "authentication\n"
	       "failed, 3 a script stopped on ON_ERROR_STOP, 4 a write's "
	       "outcome is unknown.\n"
	       "See sisy-cli(1).\n";
}

bool cli_port_parse(const char *s, uint16_t *out)
{
	unsigned long v = 0;
	if (*s == '\0' || strlen(s) > 5)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* One "host[:port]" or "[v6]:port" of length len. */
static sisy_err host_parse(const char *s, size_t len, uint16_t dflt,
			   cli_host *h)
{
	const char *name = s;
	size_t nlen = len;
	const char *port = NULL;
	size_t plen = 0;
	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (close == NULL)
			return sisy_errf(SISY_E_INVAL,
					 "host \"%.*s\": missing ]", (int)len,
					 s);
		name = s + 1;
		nlen = (size_t)(close - name);
		size_t rest = len - (size_t)(close + 1 - s);
		if (rest > 0) {
			if (close[1] != ':')
				return sisy_errf(
				    SISY_E_INVAL,
				    "host \"%.*s\": expected :PORT "
				    "after ]",
				    (int)len, s);
			port = close + 2;
			plen = rest - 1;
		}
	} else {
		const char *colon = memchr(s, ':', len);
		if (colon != NULL) {
			if (memchr(colon + 1, ':',
				   len - (size_t)(colon + 1 - s)) != NULL)
				return sisy_errf(SISY_E_INVAL,
						 "host \"%.*s\": write IPv6 "
						 "addresses as [addr]:port",
						 (int)len, s);
			nlen = (size_t)(colon - s);
			port = colon + 1;
			plen = len - nlen - 1;
		}
	}
	if (nlen == 0 || nlen > CLI_HOSTNAME_MAX)
		return sisy_errf(SISY_E_INVAL,
				 "host \"%.*s\": the name is empty or longer "
				 "than %u",
				 (int)(len > 300 ? 300 : len), s,
				 CLI_HOSTNAME_MAX);
	for (size_t i = 0; i < nlen; i++)
		if (name[i] <= ' ' || name[i] == '/' || name[i] == 0x7f)
			return sisy_errf(SISY_E_INVAL,
					 "host \"%.*s\": invalid character",
					 (int)len, s);
	memcpy(h->name, name, nlen);
	h->name[nlen] = '\0';
	h->port = dflt;
	if (port != NULL) {
		char buf[8];
		if (plen == 0 || plen >= sizeof buf)
			return sisy_errf(SISY_E_INVAL,
					 "host \"%.*s\": bad port", (int)len,
					 s);
		memcpy(buf, port, plen);
		buf[plen] = '\0';
		if (!cli_port_parse(buf, &h->port))
			return sisy_errf(SISY_E_INVAL,
					 "host \"%.*s\": the port must be "
					 "1-65535",
					 (int)len, s);
	}
	return SISY_OK;
}

sisy_err cli_hosts_parse(const char *s, uint16_t dflt_port, cli_host *hosts,
			 size_t max, size_t *n)
{
	*n = 0;
	for (;;) {
		const char *comma = strchr(s, ',');
		size_t len = comma ? (size_t)(comma - s) : strlen(s);
		if (*n == max)
			return sisy_errf(SISY_E_INVAL,
					 "more than %zu hosts in -h", max);
		sisy_err rc = host_parse(s, len, dflt_port, &hosts[*n]);
		if (rc != SISY_OK)
			return rc;
		(*n)++;
		if (comma == NULL)
			return SISY_OK;
		s = comma + 1;
	}
}

typedef struct raw {
	const char *host, *port, *user, *consistency;
} raw;

static sisy_err apply(cli_opts *o, raw *r, enum opt_id id, const char *arg,
		      const char *shown)
{
	switch (id) {
	case O_HOST:
		r->host = arg;
		break;
	case O_PORT:
		r->port = arg;
		break;
	case O_USER:
		if (*arg == '\0' || strlen(arg) > CLI_USER_MAX)
			return sisy_errf(SISY_E_INVAL,
					 "%s: the user name must be 1-%u "
					 "bytes",
					 shown, CLI_USER_MAX);
		r->user = arg;
		break;
	case O_NOPASS:
		o->never_prompt = true;
		o->prompt_password = false;
		break;
	case O_PASS:
		o->prompt_password = true;
		o->never_prompt = false;
		break;
	case O_SERVERKEY:
		o->server_key = arg;
		break;
	case O_CONSISTENCY:
		r->consistency = arg;
		break;
	case O_COMMAND:
	case O_FILE:
		o->actions[o->nactions].kind =
		    id == O_COMMAND ? CLI_ACT_COMMAND : CLI_ACT_FILE;
		o->actions[o->nactions].arg = arg;
		o->nactions++;
		break;
	case O_SET: {
		const char *eq = strchr(arg, '=');
		if (eq == NULL || !cli_vars_name_ok(arg, (size_t)(eq - arg)))
			return sisy_errf(SISY_E_INVAL,
					 "%s: expected NAME=VALUE with a name "
					 "of letters, digits and _",
					 shown);
		o->sets[o->nsets++] = arg;
		break;
	}
	case O_NORC:
		o->no_rc = true;
		break;
	case O_PIPE:
		o->pipe = true;
		break;
	case O_NOALIGN:
		o->format = CLI_FMT_UNALIGNED;
		break;
	case O_TUPLES:
		o->tuples_only = true;
		break;
	case O_CSV:
		o->format = CLI_FMT_CSV;
		break;
	case O_JSON:
		o->format = CLI_FMT_JSON;
		break;
	case O_OUTPUT:
		o->output = arg;
		break;
	case O_QUIET:
		o->quiet = true;
		break;
	case O_HELP:
		o->help = true;
		break;
	case O_VERSION:
		o->version = true;
		break;
	}
	return SISY_OK;
}

static const struct opt_def *find_short(char c)
{
	for (size_t i = 0; i < sizeof opt_defs / sizeof opt_defs[0]; i++)
		if (opt_defs[i].shortname == c)
			return &opt_defs[i];
	return NULL;
}

static const struct opt_def *find_long(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof opt_defs / sizeof opt_defs[0]; i++)
		if (strlen(opt_defs[i].longname) == len &&
		    memcmp(opt_defs[i].longname, name, len) == 0)
			return &opt_defs[i];
	return NULL;
}

static sisy_err parse_argv(int argc, char **argv, cli_opts *o, raw *r)
{
	sisy_err rc = SISY_OK;
	int i;
	for (i = 1; i < argc && rc == SISY_OK; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if (a[1] == '-') {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t len = eq ? (size_t)(eq - name) : strlen(name);
			const struct opt_def *d = find_long(name, len);
			if (d == NULL)
				return sisy_errf(SISY_E_INVAL,
						 "unknown option %.*s",
						 (int)(len + 2), a);
			const char *arg = NULL;
			if (d->arg) {
				if (eq)
					arg = eq + 1;
				else if (i + 1 < argc)
					arg = argv[++i];
				else
					return sisy_errf(SISY_E_INVAL,
							 "option --%s needs a "
							 "value",
							 d->longname);
			} else if (eq) {
				return sisy_errf(SISY_E_INVAL,
						 "option --%s takes no value",
						 d->longname);
			}
			char shown[64];
			snprintf(shown, sizeof shown, "--%s", d->longname);
			rc = apply(o, r, d->id, arg, shown);
			continue;
		}
		for (const char *p = a + 1; *p && rc == SISY_OK; p++) {
			const struct opt_def *d = find_short(*p);
			if (d == NULL)
				return sisy_errf(
				    SISY_E_INVAL, "unknown option -%c",
				    (*p > ' ' && *p < 127) ? *p : '?');
			char shown[4] = {'-', *p, 0, 0};
			if (!d->arg) {
				rc = apply(o, r, d->id, NULL, shown);
				continue;
			}
			const char *arg;
			if (p[1] != '\0')
				arg = p + 1;
			else if (i + 1 < argc)
				arg = argv[++i];
			else
				return sisy_errf(SISY_E_INVAL,
						 "option -%c needs a value",
						 *p);
			rc = apply(o, r, d->id, arg, shown);
			break;
		}
	}
	if (rc == SISY_OK && i < argc)
		rc = sisy_errf(SISY_E_INVAL,
			       "unexpected argument \"%.60s\" (commands go "
			       "after -c)",
			       argv[i]);
	return rc;
}

static const char *env_get(cli_getenv_fn env, void *ctx, const char *name)
{
	const char *v = env ? env(ctx, name) : NULL;
	return (v != NULL && *v != '\0') ? v : NULL;
}

sisy_err cli_opts_parse(int argc, char **argv, cli_getenv_fn env, void *env_ctx,
			cli_opts *out)
{
	assert(argc >= 1);
	memset(out, 0, sizeof *out);
	out->format = -1;
	out->consistency = -1;
	raw r = {0};
	sisy_err rc;
	/* Each argument adds at most one action or one -v. */
	out->actions = calloc((size_t)argc, sizeof *out->actions);
	out->sets = calloc((size_t)argc, sizeof *out->sets);
	if (out->actions == NULL || out->sets == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "opts.c: out of memory");
		goto fail;
	}
	if ((rc = parse_argv(argc, argv, out, &r)) != SISY_OK)
		goto fail;

	const char *port_s =
	    r.port ? r.port : env_get(env, env_ctx, "SISY_PORT");
	uint16_t port = CLI_DEFAULT_PORT;
	if (port_s != NULL && !cli_port_parse(port_s, &port)) {
		rc = sisy_errf(SISY_E_INVAL,
			       "%s: the port must be 1-65535, not \"%.20s\"",
			       r.port ? "-p" : "SISY_PORT", port_s);
		goto fail;
	}
	const char *hosts =
	    r.host ? r.host : env_get(env, env_ctx, "SISY_HOST");
	if (hosts == NULL)
		hosts = CLI_DEFAULT_HOST;
	rc = cli_hosts_parse(hosts, port, out->hosts, CLI_HOSTS_MAX,
			     &out->nhosts);
	if (rc != SISY_OK) {
		char msg[400];
		snprintf(msg, sizeof msg, "%s", sisy_errmsg());
		rc = sisy_errf(rc, "%s: %s", r.host ? "-h" : "SISY_HOST", msg);
		goto fail;
	}
	out->user = r.user ? r.user : env_get(env, env_ctx, "SISY_USER");
	if (out->user == NULL)
		out->user = CLI_DEFAULT_USER;
	if (strlen(out->user) > CLI_USER_MAX) {
		rc = sisy_errf(SISY_E_INVAL, "SISY_USER is longer than %u",
			       CLI_USER_MAX);
		goto fail;
	}
	out->password = env_get(env, env_ctx, "SISY_PASSWORD");
	if (r.consistency != NULL) {
		if (strcmp(r.consistency, "linearizable") == 0) {
			out->consistency = 0;
		} else if (strcmp(r.consistency, "stale") == 0) {
			out->consistency = 1;
		} else {
			rc = sisy_errf(SISY_E_INVAL,
				       "--consistency must be linearizable or "
				       "stale");
			goto fail;
		}
	}
	if (out->pipe && out->nactions > 0) {
		rc = sisy_errf(SISY_E_INVAL,
			       "--pipe reads standard input; it does not mix "
			       "with -c or -f");
		goto fail;
	}
	return SISY_OK;
fail:
	cli_opts_free(out);
	return rc;
}

void cli_opts_free(cli_opts *o)
{
	free(o->actions);
	free(o->sets);
	o->actions = NULL;
	o->sets = NULL;
	o->nactions = o->nsets = 0;
}
