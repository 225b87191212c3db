/* repl.c — the interactive loop over GNU readline (see repl.h).
 *
 * Readline's callbacks carry no context pointer, so the completion state
 * and the shell being served live in file-level variables; there is one
 * terminal per process, and this file is part of the program, not of the
 * library the tests link.
 *
 * Ctrl-C at the prompt abandons the line (as in psql); during a command it
 * sets the shell's `interrupted` flag (main.c's handler), which SCAN and
 * \watch check between rows and pauses.
 */
#include "repl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/select.h>
#include <sys/stat.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "complete.h"

#define HISTORY_MAX 1000

static cli_complete_ctx comp_ctx;
static size_t comp_iter;

static char *generator(const char *text, int state)
{
	char word[64];
	if (state == 0)
		comp_iter = 0;
	if (!cli_complete_next(comp_ctx, text, &comp_iter, word, sizeof word))
		return NULL;
	return strdup(word);
}

static char **attempt(const char *text, int start, int end)
{
	(void)end;
	comp_ctx = cli_complete_context(rl_line_buffer, (size_t)start);
	if (comp_ctx == CLI_COMPLETE_FILE)
		return NULL; /* readline's own file name completion */
	rl_attempted_completion_over = 1;
	if (comp_ctx == CLI_COMPLETE_NONE)
		return NULL;
	return rl_completion_matches(text, generator);
}

/* The line the callback interface delivered (NULL at end of input). */
static char *got_line;
static bool got_any;

static void on_line(char *line)
{
	got_line = line;
	got_any = true;
	/* No prompt while the command runs. */
	rl_callback_handler_remove();
}

/* Reads one line with readline's callback interface, so that Ctrl-C (our
 * handler, installed without SA_RESTART) can drop the line being typed and
 * show a fresh prompt, as psql does. SIGINT stays blocked except inside
 * pselect(): one that arrives while a key is being handled waits there
 * instead of setting the flag just before the wait starts (it was lost
 * until the next key, about one Ctrl-C in 20). Returns NULL at the end of
 * input. */
static char *read_line(cli_shell *sh, const char *prompt)
{
	sigset_t block, old, wait_mask;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigprocmask(SIG_BLOCK, &block, &old);
	wait_mask = old;
	sigdelset(&wait_mask, SIGINT);
	/* A Ctrl-C from before the prompt belonged to the last command. */
	if (sh->interrupted)
		*sh->interrupted = 0;
	got_line = NULL;
	got_any = false;
	rl_callback_handler_install(prompt, on_line);
	while (!got_any) {
		if (sh->interrupted && *sh->interrupted) {
			*sh->interrupted = 0;
			rl_free_line_state();
			rl_callback_handler_remove();
			fputc('\n', rl_outstream);
			rl_callback_handler_install(prompt, on_line);
		}
		fd_set in;
		FD_ZERO(&in);
		FD_SET(fileno(rl_instream), &in);
		int n = pselect(fileno(rl_instream) + 1, &in, NULL, NULL, NULL,
				&wait_mask);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rl_callback_handler_remove();
			break;
		}
		rl_callback_read_char();
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
	return got_any ? got_line : NULL;
}

static bool keep_in_history(const char *line)
{
	if (line[0] == '\0' || line[0] == ' ' || line[0] == '\t')
		return false;
	if (strcasestr(line, "PASSWORD") != NULL)
		return false;
	HIST_ENTRY *prev = history_length
			       ? history_get(history_base + history_length - 1)
			       : NULL;
	return prev == NULL || strcmp(prev->line, line) != 0;
}

/* psql users type these without a backslash; only at the terminal and
 * only as the whole line. */
static bool word_command(cli_shell *sh, const char *line)
{
	while (*line == ' ')
		line++;
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == ';'))
		n--;
	if ((n == 4 && strncasecmp(line, "quit", 4) == 0) ||
	    (n == 4 && strncasecmp(line, "exit", 4) == 0)) {
		sh->quit = true;
		return true;
	}
	if (n == 4 && strncasecmp(line, "help", 4) == 0) {
		fputs("You are using sisy-cli, the SisyphusDB shell.\n"
		      "Type:  \\h for the commands\n"
		      "       \\? for the backslash commands\n"
		      "       \\q to quit\n",
		      sh->stdout_fp);
		return true;
	}
	return false;
}

void cli_repl_run(cli_shell *sh, const char *histfile)
{
	rl_readline_name = "sisy-cli";
	rl_attempted_completion_function = attempt;
	rl_completer_word_break_characters = " \t;";
	using_history();
	stifle_history(HISTORY_MAX);
	if (histfile != NULL)
		read_history(histfile);
	while (!sh->quit) {
		char prompt[512];
		cli_shell_prompt(sh, prompt, sizeof prompt);
		char *line = read_line(sh, prompt);
		if (line == NULL) {
			fputc('\n', stdout);
			break;
		}
		if (keep_in_history(line))
			add_history(line);
		if (!word_command(sh, line))
			cli_shell_line(sh, line, strlen(line));
		free(line);
		/* ON_ERROR_STOP ended an \i file; the session goes on. */
		sh->stop_script = false;
		if (sh->interrupted)
			*sh->interrupted = 0;
	}
	if (histfile != NULL) {
		mode_t old = umask(077);
		if (write_history(histfile) == 0)
			chmod(histfile, 0600);
		umask(old);
	}
}
