/* repl.h — the terminal loop: readline, history, completion, Ctrl-C. */
#ifndef CLI_REPL_H
#define CLI_REPL_H

#include "shell.h"

/* Reads and runs lines until \q or end of input. `histfile` may be NULL
 * (no history file). Lines that give a password (USER ... PASSWORD) and
 * lines starting with a blank are kept out of the history. */
void cli_repl_run(cli_shell *sh, const char *histfile);

#endif
