/* pipe.h — --pipe, the mass-insert mode.
 *
 * Reads commands from a stream, one per line (PUT and DEL only, with the
 * usual quoting, hex literals, @FILE values and conditions; blank lines
 * and -- comments are skipped), and pipelines them: up to CLI_PIPE_WINDOW
 * writes are in flight before the oldest answer is read. Each failure is
 * reported with its line ("<stdin>:12: error: ..."); at the end one line
 * on standard output says how many succeeded and failed:
 *
 *   sent 1000000, succeeded 999997, failed 2, unknown 1
 *
 * "failed" counts lines that were refused (by the parser or the server),
 * "unknown" the writes whose outcome nobody knows: answered "outcome
 * unknown", or in flight when the connection was lost. Writes are not
 * retried here (a mass insert is re-run instead; PUT is idempotent).
 * Returns the exit status: 4 when some outcome is unknown, else 2 when the
 * connection was lost, else 1 when some line failed, else 0.
 */
#ifndef CLI_PIPE_H
#define CLI_PIPE_H

#include <stdio.h>

#include "backend.h"

int cli_pipe_run(cli_backend *be, FILE *in, FILE *out, FILE *err,
		 const char *name);

#endif
