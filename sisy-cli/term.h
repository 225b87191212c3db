/* term.h — asking the person at the terminal: a password without echo,
 * and whether to trust an unknown cluster key (trust on first use).
 *
 * Both talk to /dev/tty, not to stdin/stdout, so that they work while the
 * commands come from a pipe and the results go to a file; with no
 * controlling terminal they refuse (SISY_E_NOTSUP / false), and the shell
 * falls back to its non-interactive rules.
 */
#ifndef CLI_TERM_H
#define CLI_TERM_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* Prints `prompt` and reads one line without echo into buf (NUL-ended,
 * without the newline). SISY_E_NOTSUP without a terminal, SISY_E_TOOBIG
 * for a line that does not fit, SISY_E_IO at end of input. `ctx` unused
 * (the signature is cli_prompt_fn's). */
sisy_err cli_term_password(void *ctx, const char *prompt, char *buf,
			   size_t cap);

/* Shows the cluster's fingerprint and asks "yes" or "no"; true for yes.
 * The signature is sisy_client_confirm_fn's. */
bool cli_term_confirm(void *ctx, const char *host, const char *fingerprint);

#endif
