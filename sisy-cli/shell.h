/* shell.h — one shell session: settings, variables, the open batch, the
 * output, and the runner that feeds lines from -c, files, stdin and the
 * terminal through the lexer, the parser and the executor.
 *
 * Error reporting: every failure goes to `err` (stderr) as
 *   FILE:LINE: error: MESSAGE     from a file (-f, \i, ~/.sisyrc, stdin
 *                                 as "<stdin>")
 *   sisy-cli: error: MESSAGE      from -c
 *   error: MESSAGE                at the terminal
 * and raises the exit status (cli_shell_status):
 *   0 ok, 1 a command failed, 2 the connection or authentication failed,
 *   3 a script stopped on ON_ERROR_STOP, 4 a write's outcome is unknown.
 * When several apply the most serious wins, in the order 4, 2, 3, 1.
 * A missing key is not a failure.
 *
 * ON_ERROR_STOP: outside the terminal, the first failure stops everything
 * that is left (the rest of the line, the file, the -c/-f list); at the
 * terminal it stops only the \i file being run, as psql does.
 *
 * The shell owns no process-wide state: several can coexist (the tests run
 * many). `interrupted` points at the flag main.c's SIGINT handler sets.
 */
#ifndef CLI_SHELL_H
#define CLI_SHELL_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "backend.h"
#include "buf.h"
#include "err.h"
#include "lex.h"
#include "out.h"
#include "parse.h"
#include "vars.h"

enum {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILED = 1,
	CLI_EXIT_CONNECT = 2,
	CLI_EXIT_STOPPED = 3,
	CLI_EXIT_UNKNOWN = 4,
};

/* A queued write of an open batch: offsets into cli_batch.bytes. */
typedef struct cli_batch_op {
	bool del;
	size_t off, klen, vlen;
	cli_cond cond;
	uint64_t cond_version;
} cli_batch_op;

typedef struct cli_batch {
	bool open;
	cli_batch_op *ops;
	size_t n, cap;
	sisy_buf bytes;
} cli_batch;

/* Asks for a password without echo; SISY_E_NOTSUP when there is no
 * terminal to ask on. */
typedef sisy_err (*cli_prompt_fn)(void *ctx, const char *prompt, char *buf,
				  size_t cap);

typedef struct cli_shell {
	cli_backend *be;
	cli_parse_opts popts;
	cli_out out;
	FILE *stdout_fp; /* where results go without \o */
	FILE *out_file;	 /* \o FILE, or NULL */
	FILE *err;
	FILE *in; /* standard input, for @- */
	cli_vars vars;
	cli_batch batch;
	bool interactive;     /* at a terminal: prompt, history, no stop */
	bool stdin_is_script; /* the commands come from stdin: no @- */
	bool timing;
	cli_prompt_fn prompt_password;
	void *prompt_ctx;
	volatile sig_atomic_t *interrupted;
	/* Where the line being run came from, for messages. */
	const char *loc_name; /* NULL: -c or the terminal */
	unsigned long loc_line;
	bool loc_command; /* from -c */
	unsigned depth;	  /* \i nesting */
	int status;
	unsigned long nfailed; /* failures reported so far */
	bool quit;	       /* \q, or nothing more can run: unwind all */
	bool stop_script;      /* ON_ERROR_STOP hit: unwind to the terminal */
	bool need_reconnect;
	sisy_buf last; /* the last command run, for \watch */
	sisy_buf scratch[2];
} cli_shell;

/* `be` may be NULL (then every database command fails as not connected:
 * used by tests of the runner). The shell does not own `be`. */
void cli_shell_init(cli_shell *sh, cli_backend *be, FILE *in, FILE *out,
		    FILE *err);
void cli_shell_free(cli_shell *sh);

/* Runs one line (statements separated by ';'). */
void cli_shell_line(cli_shell *sh, const char *line, size_t len);
/* Runs -c text: its lines in turn. */
void cli_shell_run_command(cli_shell *sh, const char *text);
/* Runs every line of f; `name` is used in messages ("<stdin>"). */
void cli_shell_run_stream(cli_shell *sh, FILE *f, const char *name);
/* Opens and runs a file; "-" is standard input. */
void cli_shell_run_file(cli_shell *sh, const char *path);
/* Called after the last input: reports a batch left open (an error). */
void cli_shell_finish(cli_shell *sh);

int cli_shell_status(const cli_shell *sh);
/* Raises the exit status to `code` (the 4 > 2 > 3 > 1 > 0 order). */
void cli_shell_raise(cli_shell *sh, int code);

/* Sets a variable, checking the ones with a meaning to the shell
 * (ON_ERROR_STOP: a boolean; CONSISTENCY: linearizable or stale). */
sisy_err cli_shell_set(cli_shell *sh, const char *name, sisy_slice value);

/* Prints a message with the current location to `err`. */
void cli_shell_error(cli_shell *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cli_shell_warn(cli_shell *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Reports a failed command: prints it, raises the status, and applies
 * ON_ERROR_STOP. */
void cli_shell_failed(cli_shell *sh, sisy_err rc);

/* The prompt for the terminal ("admin@127.0.0.1:7420=> "). */
void cli_shell_prompt(cli_shell *sh, char *buf, size_t cap);

/* Internal to the shell's files. */
sisy_err shell_exec(cli_shell *sh, const cli_cmd *cmd);
sisy_err shell_meta(cli_shell *sh, const cli_lexed *lx, const cli_stmt *st);
bool shell_stale(const cli_shell *sh);
void shell_batch_clear(cli_shell *sh);
FILE *shell_outfp(const cli_shell *sh);

#endif
