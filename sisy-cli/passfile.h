/* passfile.h — the password file, ~/.sisy/passfile (or SISY_PASSFILE).
 *
 * Format, one entry per line, as PostgreSQL's .pgpass:
 *
 *   host:port:user:password
 *
 * Any of the first three fields may be * (matches anything); a literal :
 * or \ inside a field is written \: or \\. Lines starting with # are
 * comments; the client library also keeps its cached login keys there as
 * "#sisy-key ..." lines (libcommon/client.h), which this parser skips.
 * The first entry that matches one of the hosts being tried, the port and
 * the user wins. Lines longer than CLI_PASSFILE_LINE_MAX are refused.
 *
 * The file is refused (SISY_E_PERM) unless it is a regular file that its
 * group and others can neither read nor write (mode 0600 or stricter),
 * checked on the opened descriptor; the shell then warns and ignores it,
 * as psql does, and does not let the library cache keys in it either.
 */
#ifndef CLI_PASSFILE_H
#define CLI_PASSFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "opts.h"

#define CLI_PASSFILE_LINE_MAX 4096u

/* SISY_OK with *found = false when the file does not exist or has no
 * entry; SISY_E_PERM for a file with a too open mode; SISY_E_INVAL for
 * an overlong line; SISY_E_IO when it cannot be read. */
sisy_err cli_passfile_lookup(const char *path, const cli_host *hosts,
			     size_t nhosts, const char *user, char *pw,
			     size_t cap, bool *found);

/* Checks the mode of an existing file at path: SISY_OK when it exists and
 * is private, SISY_E_NOTFOUND when it does not exist, SISY_E_PERM when it
 * is not a regular file or group/others have access. */
sisy_err cli_passfile_check(const char *path);

#endif
