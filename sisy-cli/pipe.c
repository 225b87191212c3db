/* pipe.c — mass insert (see pipe.h).
 *
 * Invariant: lines[] holds, in send order, the input line number of each
 * write in flight (a ring of CLI_PIPE_WINDOW), so an answer read later is
 * reported against the line that asked for it.
 */
#include "pipe.h"

#include <assert.h>
#include <inttypes.h>
#include <string.h>

#include "lex.h"
#include "limits.h"
#include "parse.h"
#include "shell.h"
#include "text.h"

typedef struct piper {
	cli_backend *be;
	FILE *err;
	const char *name;
	unsigned long lines[CLI_PIPE_WINDOW];
	size_t head, n;
	uint64_t sent, ok, failed, unknown;
	bool lost;
} piper;

static void report(piper *p, unsigned long line, sisy_err rc)
{
	const char *msg = sisy_errmsg();
	fprintf(p->err, "%s:%lu: error: %s\n", p->name, line,
		*msg ? msg : sisy_strerror(rc));
}

/* Reads the oldest answer. False when the connection is gone. */
static bool recv_one(piper *p)
{
	assert(p->n > 0);
	sisy_err result;
	unsigned long line = p->lines[p->head];
	sisy_err rc = p->be->ops->pipe_recv(p->be, &result);
	if (rc != SISY_OK) {
		report(p, line, rc);
		p->lost = true;
		return false;
	}
	p->head = (p->head + 1) % CLI_PIPE_WINDOW;
	p->n--;
	if (result == SISY_OK) {
		p->ok++;
	} else {
		report(p, line, result);
		if (result == SISY_E_UNKNOWN_OUTCOME)
			p->unknown++;
		else
			p->failed++;
	}
	return true;
}

/* One line: parsed, checked, sent. Parse errors count as failures. */
static void one_line(piper *p, const char *s, size_t len, unsigned long lineno,
		     cli_lexed *lx, sisy_buf *file)
{
	cli_cmd cmd;
	sisy_err rc = cli_lex(s, len, NULL, lx);
	for (size_t i = 0; rc == SISY_OK && i < lx->nstmts && !p->lost; i++) {
		const cli_stmt *st = &lx->stmts[i];
		if (st->meta) {
			rc = sisy_errf(SISY_E_INVAL,
				       "--pipe takes PUT and DEL only");
			break;
		}
		if ((rc = cli_parse(lx, st, NULL, &cmd)) != SISY_OK)
			break;
		if (!cli_cmd_is_write(cmd.kind)) {
			rc = sisy_errf(SISY_E_INVAL,
				       "--pipe takes PUT and DEL only, not %s",
				       cli_cmd_name(cmd.kind));
			cli_cmd_free(&cmd);
			break;
		}
		cli_write w = {.del = cmd.kind == CLI_CMD_DEL,
			       .key = cmd.key.data,
			       .value = cmd.value.data,
			       .cond = cmd.cond,
			       .cond_version = cmd.cond_version};
		if (cmd.key.file)
			rc = sisy_errf(SISY_E_INVAL,
				       "--pipe: keys cannot come from @files");
		else if (cmd.value.file && cmd.value.data.len == 1 &&
			 cmd.value.data.data[0] == '-')
			rc = sisy_errf(SISY_E_INVAL,
				       "@- cannot read standard input: the "
				       "commands come from it");
		bool value_file = cmd.value.file;
		cli_cmd_free(&cmd);
		if (rc != SISY_OK)
			break;
		if (!w.del && value_file) {
			/* The path is NUL-free (lexer) but not NUL-ended. */
			char path[4096];
			if (w.value.len >= sizeof path) {
				rc = sisy_errf(SISY_E_INVAL,
					       "file name too long");
				break;
			}
			memcpy(path, w.value.data, w.value.len);
			path[w.value.len] = '\0';
			rc =
			    cli_read_file(path, NULL, CLI_FILE_VALUE_MAX, file);
			if (rc != SISY_OK)
				break;
			w.value = sisy_buf_slice(file);
		}
		if (p->n == CLI_PIPE_WINDOW && !recv_one(p))
			return;
		rc = p->be->ops->pipe_send(p->be, &w);
		if (rc != SISY_OK) {
			if (cli_err_is_lost(rc))
				p->lost = true;
			break;
		}
		p->lines[(p->head + p->n) % CLI_PIPE_WINDOW] = lineno;
		p->n++;
		p->sent++;
	}
	if (rc != SISY_OK) {
		report(p, lineno, rc);
		p->failed++;
	}
}

int cli_pipe_run(cli_backend *be, FILE *in, FILE *out, FILE *err,
		 const char *name)
{
	piper p = {.be = be, .err = err, .name = name};
	cli_lexed lx;
	sisy_buf line = {0}, file = {0};
	memset(&lx, 0, sizeof lx);
	unsigned long lineno = 0;
	int c = 0;
	while (!p.lost && c != EOF) {
		/* Bounded line read; an overlong line is a failed line. */
		bool too_long = false, any = false;
		line.len = 0;
		while ((c = getc_unlocked(in)) != EOF && c != '\n') {
			any = true;
			if (line.len >= CLI_LINE_MAX) {
				too_long = true;
				continue;
			}
			uint8_t b = (uint8_t)c;
			if (sisy_buf_append(&line, &b, 1) != SISY_OK)
				too_long = true;
		}
		if (!any && c == EOF)
			break;
		lineno++;
		if (line.len > 0 && line.data[line.len - 1] == '\r')
			line.len--;
		if (too_long) {
			report(&p, lineno,
			       sisy_errf(SISY_E_TOOBIG,
					 "line longer than %u bytes",
					 CLI_LINE_MAX));
			p.failed++;
			continue;
		}
		one_line(&p, line.data ? (const char *)line.data : "", line.len,
			 lineno, &lx, &file);
	}
	while (p.n > 0 && !p.lost)
		recv_one(&p);
	/* What was in flight when the connection went may or may not have
	 * been applied. */
	if (p.n > 0)
		fprintf(err,
			"%s: error: the connection was lost with %zu writes in "
			"flight; their outcome is unknown\n",
			name, p.n);
	p.unknown += p.n;
	fprintf(out,
		"sent %" PRIu64 ", succeeded %" PRIu64 ", failed %" PRIu64
		", unknown %" PRIu64 "\n",
		p.sent, p.ok, p.failed, p.unknown);
	fflush(out);
	cli_lexed_free(&lx);
	sisy_buf_free(&line);
	sisy_buf_free(&file);
	if (p.unknown)
		return CLI_EXIT_UNKNOWN;
	if (p.lost)
		return CLI_EXIT_CONNECT;
	return p.failed ? CLI_EXIT_FAILED : CLI_EXIT_OK;
}
