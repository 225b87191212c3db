/* meta.c — the backslash commands (\set, \o, \watch, ...; list in help.c).
 *
 * Arguments are tokens from the lexer, so quotes, escapes, hex literals and
 * :NAME work in them as in commands. Settings messages ("Timing is on.")
 * go to standard output unless -q, as psql's do.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "help.h"
#include "limits.h"
#include "shell.h"
#include "text.h"

typedef struct margs {
	const cli_lexed *lx;
	size_t first, n; /* the arguments (the name excluded) */
} margs;

static sisy_slice arg(const margs *a, size_t i)
{
	assert(i < a->n);
	return cli_tok_slice(a->lx, a->first + i);
}

static bool arg_is_file(const margs *a, size_t i)
{
	return a->lx->toks[a->first + i].kind == CLI_TOK_FILE;
}

/* The argument as a C string (no NUL inside, bounded). */
static sisy_err arg_cstr(const margs *a, size_t i, char *buf, size_t cap,
			 const char *what)
{
	sisy_slice s = arg(a, i);
	if (arg_is_file(a, i) || s.len >= cap ||
	    memchr(s.data, 0, s.len) != NULL)
		return sisy_errf(SISY_E_INVAL, "bad %s", what);
	memcpy(buf, s.data, s.len);
	buf[s.len] = '\0';
	return SISY_OK;
}

static sisy_err max_args(const margs *a, size_t max, const char *usage)
{
	if (a->n > max)
		return sisy_errf(SISY_E_INVAL, "too many arguments; usage: %s",
				 usage);
	return SISY_OK;
}

static void say(cli_shell *sh, const char *msg)
{
	if (sh->out.quiet)
		return;
	fputs(msg, sh->stdout_fp);
	fputc('\n', sh->stdout_fp);
}

/* [on|off] for a toggle: no argument flips it. */
static sisy_err toggle(const margs *a, bool *flag, const char *usage)
{
	sisy_err rc = max_args(a, 1, usage);
	if (rc != SISY_OK)
		return rc;
	if (a->n == 0) {
		*flag = !*flag;
		return SISY_OK;
	}
	int v = cli_bool_parse(arg(a, 0));
	if (v < 0)
		return sisy_errf(SISY_E_INVAL, "expected on or off; usage: %s",
				 usage);
	*flag = v == 1;
	return SISY_OK;
}

static sisy_err m_timing(cli_shell *sh, const margs *a)
{
	sisy_err rc = toggle(a, &sh->timing, "\\timing [on|off]");
	if (rc == SISY_OK)
		say(sh, sh->timing ? "Timing is on." : "Timing is off.");
	return rc;
}

static void say_format(cli_shell *sh)
{
	char msg[64];
	snprintf(msg, sizeof msg, "Output format is %s.",
		 cli_format_name(sh->out.fmt));
	say(sh, msg);
}

static sisy_err m_format(cli_shell *sh, const margs *a)
{
	char name[16];
	sisy_err rc = max_args(a, 1, "\\format [aligned|unaligned|csv|json]");
	if (rc != SISY_OK)
		return rc;
	if (a->n == 1) {
		int f = -1;
		if (arg_cstr(a, 0, name, sizeof name, "format") == SISY_OK)
			f = cli_format_parse(name);
		if (f < 0)
			return sisy_errf(SISY_E_INVAL,
					 "\\format: expected aligned, "
					 "unaligned, csv or json");
		sh->out.fmt = (cli_format)f;
	}
	say_format(sh);
	return SISY_OK;
}

static sisy_err m_align(cli_shell *sh, const margs *a)
{
	sisy_err rc = max_args(a, 0, "\\a");
	if (rc != SISY_OK)
		return rc;
	sh->out.fmt = sh->out.fmt == CLI_FMT_ALIGNED ? CLI_FMT_UNALIGNED
						     : CLI_FMT_ALIGNED;
	say_format(sh);
	return SISY_OK;
}

static sisy_err m_tuples(cli_shell *sh, const margs *a)
{
	sisy_err rc = toggle(a, &sh->out.tuples_only, "\\t [on|off]");
	if (rc == SISY_OK)
		say(sh, sh->out.tuples_only ? "Tuples only is on."
					    : "Tuples only is off.");
	return rc;
}

static sisy_err m_output(cli_shell *sh, const margs *a)
{
	char path[4096];
	sisy_err rc = max_args(a, 1, "\\o [FILE]");
	if (rc != SISY_OK)
		return rc;
	FILE *f = NULL;
	if (a->n == 1) {
		if ((rc = arg_cstr(a, 0, path, sizeof path, "file name")) !=
		    SISY_OK)
			return rc;
		f = fopen(path, "w");
		if (f == NULL) {
			int e = errno;
			return sisy_errf(sisy_err_from_errno(e),
					 "\\o: cannot open %s: %s", path,
					 strerror(e));
		}
	}
	if (sh->out_file != NULL && fclose(sh->out_file) != 0) {
		int e = errno;
		rc = sisy_errf(sisy_err_from_errno(e),
			       "\\o: writing the previous output file failed: "
			       "%s",
			       strerror(e));
	}
	sh->out_file = f;
	sh->out.fp = shell_outfp(sh);
	return rc;
}

static sisy_err m_include(cli_shell *sh, const margs *a)
{
	char path[4096];
	if (a->n != 1)
		return sisy_errf(SISY_E_INVAL, "usage: \\i FILE");
	sisy_err rc = arg_cstr(a, 0, path, sizeof path, "file name");
	if (rc != SISY_OK)
		return rc;
	if (sh->depth >= CLI_INCLUDE_DEPTH)
		return sisy_errf(SISY_E_INVAL,
				 "\\i nested more than %u deep (a file that "
				 "includes itself?)",
				 CLI_INCLUDE_DEPTH);
	sh->depth++;
	cli_shell_run_file(sh, path);
	sh->depth--;
	return SISY_OK;
}

static sisy_err m_echo(cli_shell *sh, const margs *a)
{
	FILE *fp = sh->stdout_fp;
	for (size_t i = 0; i < a->n; i++) {
		if (arg_is_file(a, i))
			return sisy_errf(SISY_E_INVAL,
					 "\\echo: quote text that starts "
					 "with @");
		if (i)
			fputc(' ', fp);
		sisy_slice s = arg(a, i);
		fwrite(s.data, 1, s.len, fp);
	}
	fputc('\n', fp);
	if (ferror(fp))
		return sisy_errf(SISY_E_IO, "\\echo: cannot write the output");
	return SISY_OK;
}

static sisy_err list_vars(cli_shell *sh)
{
	sisy_buf b = {0};
	for (size_t i = 0; i < sh->vars.n; i++) {
		const cli_var *v = &sh->vars.v[i];
		b.len = 0;
		cli_escape_append(&b, sisy_buf_slice(&v->value));
		fprintf(sh->stdout_fp, "%s = '%.*s'\n", v->name, (int)b.len,
			b.data ? (const char *)b.data : "");
	}
	sisy_buf_free(&b);
	return SISY_OK;
}

static sisy_err m_set(cli_shell *sh, const margs *a)
{
	char name[CLI_VARNAME_MAX + 1];
	if (a->n == 0)
		return list_vars(sh);
	if (arg_cstr(a, 0, name, sizeof name, "name") != SISY_OK ||
	    !cli_vars_name_ok(name, strlen(name)))
		return sisy_errf(SISY_E_INVAL,
				 "\\set: invalid variable name (letters, "
				 "digits and _, not starting with a digit)");
	/* The value is the remaining arguments joined, as in psql; @FILE
	 * reads a file into the variable. */
	sisy_buf v = {0}, file = {0};
	sisy_err rc = SISY_OK;
	for (size_t i = 1; i < a->n && rc == SISY_OK; i++) {
		sisy_slice s = arg(a, i);
		if (arg_is_file(a, i)) {
			char path[4096];
			rc = arg_cstr(a, i, path, sizeof path, "file name");
			if (rc == SISY_OK && strcmp(path, "-") == 0 &&
			    sh->stdin_is_script)
				rc = sisy_errf(SISY_E_INVAL,
					       "@- cannot read standard input: "
					       "the commands come from it");
			if (rc == SISY_OK)
				rc = cli_read_file(path, sh->in,
						   CLI_VARVALUE_MAX, &file);
			s = sisy_buf_slice(&file);
		}
		if (rc == SISY_OK)
			rc = sisy_buf_append(&v, s.data, s.len);
	}
	if (rc == SISY_OK)
		rc = cli_shell_set(sh, name,
				   v.data ? sisy_buf_slice(&v)
					  : sisy_slice_make("", 0));
	sisy_buf_free(&v);
	sisy_buf_free(&file);
	return rc;
}

static sisy_err m_unset(cli_shell *sh, const margs *a)
{
	char name[CLI_VARNAME_MAX + 1];
	if (a->n != 1)
		return sisy_errf(SISY_E_INVAL, "usage: \\unset NAME");
	if (arg_cstr(a, 0, name, sizeof name, "name") != SISY_OK)
		return sisy_errf(SISY_E_INVAL, "\\unset: invalid name");
	cli_vars_unset(&sh->vars, name);
	return SISY_OK;
}

/* Seconds with an optional fraction ("2", "0.5") to milliseconds. */
static bool parse_seconds(sisy_slice s, uint64_t *ms)
{
	uint64_t whole = 0, frac = 0, scale = 1000;
	size_t i = 0;
	for (; i < s.len && s.data[i] >= '0' && s.data[i] <= '9'; i++) {
		whole = whole * 10 + (s.data[i] - '0');
		if (whole > CLI_WATCH_MAX_MS / 1000)
			return false;
	}
	if (i == 0)
		return false;
	if (i < s.len && s.data[i] == '.') {
		for (i++; i < s.len && s.data[i] >= '0' && s.data[i] <= '9';
		     i++) {
			scale /= 10;
			frac += (uint64_t)(s.data[i] - '0') * scale;
		}
	}
	if (i != s.len)
		return false;
	*ms = whole * 1000 + frac;
	return *ms >= CLI_WATCH_MIN_MS && *ms <= CLI_WATCH_MAX_MS;
}

/* Sleeps up to ms, waking early on an interrupt; false when interrupted. */
static bool nap(cli_shell *sh, uint64_t ms)
{
	uint64_t end = sisy_now_ms() + ms;
	for (;;) {
		if (sh->interrupted && *sh->interrupted)
			return false;
		uint64_t now = sisy_now_ms();
		if (now >= end)
			return true;
		uint64_t step = end - now < 50 ? end - now : 50;
		struct timespec ts = {0, (long)(step * 1000000)};
		nanosleep(&ts, NULL);
	}
}

static sisy_err m_watch(cli_shell *sh, const margs *a)
{
	uint64_t ms = 2000, count = 0;
	sisy_err rc = max_args(a, 2, "\\watch [SECONDS [COUNT]]");
	if (rc != SISY_OK)
		return rc;
	if (a->n >= 1 && !parse_seconds(arg(a, 0), &ms))
		return sisy_errf(SISY_E_INVAL,
				 "\\watch: the interval must be %u ms to %u "
				 "s, in seconds (0.5, 2)",
				 CLI_WATCH_MIN_MS, CLI_WATCH_MAX_MS / 1000);
	if (a->n == 2 && (!cli_parse_u64(arg(a, 1), &count) || count == 0))
		return sisy_errf(SISY_E_INVAL,
				 "\\watch: the count must be a whole number "
				 "above 0");
	if (sh->last.len == 0)
		return sisy_errf(SISY_E_INVAL,
				 "\\watch: no command to repeat yet");
	/* Running the command replaces sh->last with itself; keep a copy. */
	sisy_buf cmd = {0};
	if ((rc = sisy_buf_set(&cmd, sh->last.data, sh->last.len)) != SISY_OK)
		return rc;
	for (uint64_t i = 0; count == 0 || i < count; i++) {
		if (i > 0 && !nap(sh, ms))
			break;
		char when[64];
		time_t t = time(NULL);
		struct tm tm;
		localtime_r(&t, &tm);
		strftime(when, sizeof when, "%a %b %e %H:%M:%S %Y", &tm);
		fprintf(shell_outfp(sh), "%s (every %.3gs)\n\n", when,
			(double)ms / 1000);
		unsigned long before = sh->nfailed;
		cli_shell_line(sh, (const char *)cmd.data, cmd.len);
		if (sh->nfailed != before || sh->quit || sh->stop_script)
			break;
	}
	if (sh->interrupted)
		*sh->interrupted = 0;
	sisy_buf_free(&cmd);
	return SISY_OK;
}

static sisy_err m_conninfo(cli_shell *sh, const margs *a)
{
	if (a->n != 0)
		return sisy_errf(SISY_E_INVAL, "usage: \\conninfo");
	if (sh->be == NULL)
		return sisy_errf(SISY_E_CONN, "not connected");
	cli_conn_desc d;
	memset(&d, 0, sizeof d);
	sh->be->ops->describe(sh->be, &d);
	fprintf(sh->stdout_fp,
		"Connected to %s as user \"%s\"%s%s%s; cluster key %s.%s\n",
		d.host, d.user, d.node_role[0] ? " (node role " : "",
		d.node_role, d.node_role[0] ? ")" : "", d.fingerprint,
		sh->need_reconnect ? " The connection was lost; the next "
				     "command reconnects."
				   : "");
	return SISY_OK;
}

static sisy_err m_help_meta(cli_shell *sh, const margs *a)
{
	(void)a;
	cli_help_meta(sh->stdout_fp);
	return SISY_OK;
}

static sisy_err m_help(cli_shell *sh, const margs *a)
{
	if (a->n == 0) {
		cli_help_commands(sh->stdout_fp, &sh->popts);
		return SISY_OK;
	}
	/* The topic: the arguments joined with spaces ("\h user add"). */
	char topic[128] = "";
	size_t len = 0;
	for (size_t i = 0; i < a->n; i++) {
		sisy_slice s = arg(a, i);
		if (len + s.len + 2 > sizeof topic ||
		    memchr(s.data, 0, s.len) != NULL)
			return sisy_errf(SISY_E_INVAL, "\\h: no such command");
		if (i)
			topic[len++] = ' ';
		memcpy(topic + len, s.data, s.len);
		len += s.len;
		topic[len] = '\0';
	}
	if (!cli_help_topic(sh->stdout_fp, topic, &sh->popts))
		return sisy_errf(SISY_E_INVAL,
				 "\\h: no command \"%s\"; \\h alone lists "
				 "them",
				 topic);
	return SISY_OK;
}

static sisy_err m_quit(cli_shell *sh, const margs *a)
{
	(void)a;
	sh->quit = true;
	return SISY_OK;
}

static const struct {
	const char *name;
	sisy_err (*fn)(cli_shell *, const margs *);
} metas[] = {
    {"\\?", m_help_meta},   {"\\h", m_help},
    {"\\q", m_quit},	    {"\\timing", m_timing},
    {"\\format", m_format}, {"\\a", m_align},
    {"\\t", m_tuples},	    {"\\o", m_output},
    {"\\i", m_include},	    {"\\echo", m_echo},
    {"\\set", m_set},	    {"\\unset", m_unset},
    {"\\watch", m_watch},   {"\\conninfo", m_conninfo},
};

sisy_err shell_meta(cli_shell *sh, const cli_lexed *lx, const cli_stmt *st)
{
	assert(st->meta && st->ntoks >= 1);
	sisy_slice name = cli_tok_slice(lx, st->first);
	margs a = {.lx = lx, .first = st->first + 1, .n = st->ntoks - 1};
	for (size_t i = 0; i < sizeof metas / sizeof metas[0]; i++)
		if (sisy_slice_eq(name, sisy_slice_str(metas[i].name)))
			return metas[i].fn(sh, &a);
	char shown[48];
	name.data++; /* the backslash, shown as typed rather than escaped */
	name.len--;
	cli_show(name, 24, shown, sizeof shown);
	return sisy_errf(SISY_E_INVAL,
			 "invalid command \\%s; \\? lists the backslash "
			 "commands",
			 shown);
}
