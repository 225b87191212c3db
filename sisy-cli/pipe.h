/* pipe.h — --pipe, the mass-insert mode.
 *
 * Reads commands from a stream, one per line (PUT and DEL only, with the
 * usual quoting, hex literals, @FILE values and conditions; blank lines
 * and -- comments are skipped), and pipelines them: up to CLI_PIPE_WINDOW
 * writes are in flight before the oldest answer is read. Each failure is
 * reported with its line ("<stdin>:12: error: ..."); at the end one line
 * on standard output says how many succeeded and failed:
 *
 *   sent 1000000, succeeded 999998, failed 2
 *
 * Returns the exit status: 0 when all succeeded, 1 when some failed, 2
 * when the connection was lost (what was in flight is counted as failed:
 * a lost answer is not a success), 4 when some write's outcome is unknown.
 */
#ifndef CLI_PIPE_H
#define CLI_PIPE_H

#include <stdio.h>

#include "backend.h"

int cli_pipe_run(cli_backend *be, FILE *in, FILE *out, FILE *err,
		 const char *name);

#endif
