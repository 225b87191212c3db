/* shell.c — the runner: lines in, statements through lexer, parser and
 * executor, failures reported with their location (rules in shell.h).
 *
 * Unwinding: `quit` ends every loop (\q, ON_ERROR_STOP outside the
 * terminal, a connection that cannot be re-established in a script);
 * `stop_script` ends the loops of files only, and the terminal loop clears
 * it. Each loop checks both after every line and every statement, so no
 * statement after a stop runs.
 */
#include "shell.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "limits.h"

void cli_shell_init(cli_shell *sh, cli_backend *be, FILE *in, FILE *out,
		    FILE *err)
{
	memset(sh, 0, sizeof *sh);
	sh->be = be;
	sh->in = in;
	sh->stdout_fp = out;
	sh->err = err;
	cli_out_init(&sh->out, out);
}

void cli_shell_free(cli_shell *sh)
{
	if (sh->out_file != NULL)
		fclose(sh->out_file);
	sh->out_file = NULL;
	cli_out_free(&sh->out);
	cli_vars_free(&sh->vars);
	free(sh->batch.ops);
	sisy_buf_free(&sh->batch.bytes);
	sisy_buf_free(&sh->last);
	sisy_buf_free(&sh->scratch[0]);
	sisy_buf_free(&sh->scratch[1]);
}

FILE *shell_outfp(const cli_shell *sh)
{
	return sh->out_file ? sh->out_file : sh->stdout_fp;
}

int cli_shell_status(const cli_shell *sh)
{
	return sh->status;
}

static int severity(int code)
{
	static const int rank[] = {[CLI_EXIT_OK] = 0,
				   [CLI_EXIT_FAILED] = 1,
				   [CLI_EXIT_STOPPED] = 2,
				   [CLI_EXIT_CONNECT] = 3,
				   [CLI_EXIT_UNKNOWN] = 4};
	assert(code >= 0 && code <= 4);
	return rank[code];
}

void cli_shell_raise(cli_shell *sh, int code)
{
	if (severity(code) > severity(sh->status))
		sh->status = code;
}

static void vreport(cli_shell *sh, const char *kind, const char *fmt,
		    va_list ap)
{
	/* Results printed so far come before the message that follows
	 * them, also when both streams go to one place. */
	fflush(shell_outfp(sh));
	if (sh->loc_name != NULL)
		fprintf(sh->err, "%s:%lu: %s: ", sh->loc_name, sh->loc_line,
			kind);
	else if (sh->loc_command)
		fprintf(sh->err, "sisy-cli: %s: ", kind);
	else
		fprintf(sh->err, "%s: ", kind);
	vfprintf(sh->err, fmt, ap);
	fputc('\n', sh->err);
	fflush(sh->err);
}

void cli_shell_error(cli_shell *sh, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(sh, "error", fmt, ap);
	va_end(ap);
}

void cli_shell_warn(cli_shell *sh, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vreport(sh, "warning", fmt, ap);
	va_end(ap);
}

void cli_shell_failed(cli_shell *sh, sisy_err rc)
{
	assert(rc != SISY_OK);
	const char *msg = sisy_errmsg();
	cli_shell_error(sh, "%s", *msg ? msg : sisy_strerror(rc));
	sh->nfailed++;
	cli_shell_raise(sh, rc == SISY_E_UNKNOWN_OUTCOME ? CLI_EXIT_UNKNOWN
							 : CLI_EXIT_FAILED);
	if (!cli_vars_bool(&sh->vars, "ON_ERROR_STOP", false))
		return;
	if (sh->interactive && sh->depth == 0)
		return; /* at the prompt nothing is left to stop */
	cli_shell_raise(sh, CLI_EXIT_STOPPED);
	sh->stop_script = true;
	if (!sh->interactive)
		sh->quit = true;
}

sisy_err cli_shell_set(cli_shell *sh, const char *name, sisy_slice value)
{
	if (strcmp(name, "ON_ERROR_STOP") == 0 && cli_bool_parse(value) < 0)
		return sisy_errf(SISY_E_INVAL,
				 "ON_ERROR_STOP must be on or off (or true, "
				 "false, 1, 0)");
	if (strcmp(name, "CONSISTENCY") == 0 &&
	    !sisy_slice_eq(value, sisy_slice_str("linearizable")) &&
	    !sisy_slice_eq(value, sisy_slice_str("stale")))
		return sisy_errf(SISY_E_INVAL,
				 "CONSISTENCY must be linearizable or stale");
	return cli_vars_set(&sh->vars, name, value);
}

void cli_shell_prompt(cli_shell *sh, char *buf, size_t cap)
{
	cli_conn_desc d;
	memset(&d, 0, sizeof d);
	if (sh->be != NULL)
		sh->be->ops->describe(sh->be, &d);
	bool role =
	    d.node_role[0] != '\0' && strcmp(d.node_role, "standalone") != 0;
	const char *mark = sh->need_reconnect ? "!"
			   : sh->batch.open   ? "*"
					      : "=";
	snprintf(buf, cap, "%s@%s%s%s%s%s> ", d.user, d.host, role ? " (" : "",
		 role ? d.node_role : "", role ? ")" : "", mark);
}

/* Before a database command: a session lost earlier is re-established. */
static bool ensure_connected(cli_shell *sh)
{
	if (!sh->need_reconnect || sh->be == NULL)
		return true;
	sisy_err rc = sh->be->ops->reconnect(sh->be);
	if (rc == SISY_OK) {
		sh->need_reconnect = false;
		return true;
	}
	const char *msg = sisy_errmsg();
	cli_shell_error(sh, "cannot reconnect: %s",
			*msg ? msg : sisy_strerror(rc));
	sh->nfailed++;
	if (!sh->interactive) {
		/* Nothing later in the script can run. */
		cli_shell_raise(sh, CLI_EXIT_CONNECT);
		sh->quit = true;
	}
	return false;
}

static void run_command(cli_shell *sh, const cli_lexed *lx, const cli_stmt *st,
			const char *line)
{
	cli_cmd cmd;
	sisy_err rc = cli_parse(lx, st, &sh->popts, &cmd);
	if (rc != SISY_OK) {
		cli_shell_failed(sh, rc);
		return;
	}
	/* \watch repeats it (a failed parse is not remembered). */
	(void)sisy_buf_set(&sh->last, line + st->src_off, st->src_len);
	if (!ensure_connected(sh)) {
		cli_cmd_free(&cmd);
		return;
	}
	uint64_t t0 = sisy_now_ns();
	rc = shell_exec(sh, &cmd);
	uint64_t t1 = sisy_now_ns();
	cli_cmd_free(&cmd);
	sisy_err frc = cli_out_flush(&sh->out);
	if (rc == SISY_OK)
		rc = frc;
	if (sh->timing) {
		fprintf(sh->stdout_fp, "Time: %.3f ms\n",
			(double)(t1 - t0) / 1e6);
		fflush(sh->stdout_fp);
	}
	if (rc == SISY_OK)
		return;
	if (cli_err_is_lost(rc) && sh->be != NULL) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", sisy_errmsg());
		sh->need_reconnect = true;
		rc = sisy_errf(rc,
			       "the connection to the server was lost (%s); "
			       "it will be re-established for the next "
			       "command",
			       *msg ? msg : sisy_strerror(rc));
	}
	cli_shell_failed(sh, rc);
}

void cli_shell_line(cli_shell *sh, const char *line, size_t len)
{
	cli_lexed lx;
	memset(&lx, 0, sizeof lx);
	sisy_err rc = cli_lex(line, len, &sh->vars, &lx);
	if (rc != SISY_OK) {
		cli_shell_failed(sh, rc);
		goto out;
	}
	for (size_t i = 0; i < lx.nstmts; i++) {
		if (sh->quit || sh->stop_script)
			break;
		const cli_stmt *st = &lx.stmts[i];
		if (st->meta) {
			rc = shell_meta(sh, &lx, st);
			sisy_err frc = cli_out_flush(&sh->out);
			if (rc == SISY_OK)
				rc = frc;
			if (rc != SISY_OK)
				cli_shell_failed(sh, rc);
		} else {
			run_command(sh, &lx, st, line);
		}
	}
out:
	cli_lexed_free(&lx);
}

void cli_shell_run_command(cli_shell *sh, const char *text)
{
	const char *save_name = sh->loc_name;
	bool save_cmd = sh->loc_command;
	sh->loc_name = NULL;
	sh->loc_command = true;
	while (!sh->quit && !sh->stop_script) {
		const char *nl = strchr(text, '\n');
		size_t len = nl ? (size_t)(nl - text) : strlen(text);
		cli_shell_line(sh, text, len);
		if (nl == NULL)
			break;
		text = nl + 1;
	}
	sh->loc_name = save_name;
	sh->loc_command = save_cmd;
}

/* Reads one line (without its newline, and without a CR before it) into
 * `line`. Returns false at the end of input. A line over CLI_LINE_MAX is
 * read to its end but not kept: *too_long is set. */
static bool read_line(FILE *f, sisy_buf *line, bool *too_long, bool *err)
{
	int c = EOF;
	bool any = false;
	line->len = 0;
	*too_long = false;
	*err = false;
	while ((c = getc_unlocked(f)) != EOF) {
		any = true;
		if (c == '\n')
			break;
		if (*too_long)
			continue;
		if (line->len >= CLI_LINE_MAX) {
			*too_long = true;
			continue;
		}
		uint8_t b = (uint8_t)c;
		if (sisy_buf_append(line, &b, 1) != SISY_OK) {
			*too_long = true;
			continue;
		}
	}
	if (c == EOF && ferror(f))
		*err = true;
	if (line->len > 0 && line->data[line->len - 1] == '\r')
		line->len--;
	return any;
}

void cli_shell_run_stream(cli_shell *sh, FILE *f, const char *name)
{
	const char *save_name = sh->loc_name;
	unsigned long save_line = sh->loc_line;
	bool save_cmd = sh->loc_command;
	sisy_buf line = {0};
	bool too_long = false, err = false;
	sh->loc_name = name;
	sh->loc_line = 0;
	sh->loc_command = false;
	while (!sh->quit && !sh->stop_script &&
	       read_line(f, &line, &too_long, &err)) {
		sh->loc_line++;
		if (too_long) {
			cli_shell_failed(sh,
					 sisy_errf(SISY_E_TOOBIG,
						   "line longer than %u bytes; "
						   "put large values in a file "
						   "and use @FILE",
						   CLI_LINE_MAX));
			continue;
		}
		cli_shell_line(sh, line.data ? (const char *)line.data : "",
			       line.len);
	}
	if (err)
		cli_shell_failed(sh, sisy_errf(SISY_E_IO, "cannot read %s: %s",
					       name, strerror(errno)));
	sisy_buf_free(&line);
	sh->loc_name = save_name;
	sh->loc_line = save_line;
	sh->loc_command = save_cmd;
}

void cli_shell_run_file(cli_shell *sh, const char *path)
{
	if (strcmp(path, "-") == 0) {
		bool save = sh->stdin_is_script;
		sh->stdin_is_script = true;
		cli_shell_run_stream(sh, sh->in, "<stdin>");
		sh->stdin_is_script = save;
		return;
	}
	FILE *f = fopen(path, "r");
	if (f == NULL) {
		int e = errno;
		cli_shell_failed(sh, sisy_errf(sisy_err_from_errno(e),
					       "cannot open %s: %s", path,
					       strerror(e)));
		return;
	}
	cli_shell_run_stream(sh, f, path);
	fclose(f);
}

void cli_shell_finish(cli_shell *sh)
{
	if (!sh->batch.open)
		return;
	size_t n = sh->batch.n;
	shell_batch_clear(sh);
	bool save = sh->quit;
	sh->quit = false;
	cli_shell_failed(sh, sisy_errf(SISY_E_INVAL,
				       "the input ended inside a batch: %zu "
				       "queued write%s discarded (no COMMIT)",
				       n, n == 1 ? "" : "s"));
	sh->quit = save || sh->quit;
}
