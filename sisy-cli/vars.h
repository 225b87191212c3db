/* vars.h — the shell's variables (\set NAME value, -v NAME=VALUE).
 *
 * A small table of named, binary-safe values. Names follow
 * [A-Za-z_][A-Za-z0-9_]* and are at most CLI_VARNAME_MAX bytes; values are
 * at most CLI_VARVALUE_MAX bytes; at most CLI_VARS_MAX variables exist.
 * Entries are kept sorted by name (memcmp order) so \set lists them in a
 * stable order. The table is a plain struct so that each shell (and each
 * test) owns its own; there is no global state.
 *
 * Variables with a meaning to the shell (ON_ERROR_STOP, CONSISTENCY) are
 * checked by the caller before they are set (see meta.c); this file only
 * stores.
 */
#ifndef CLI_VARS_H
#define CLI_VARS_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "limits.h"

typedef struct cli_var {
	char name[CLI_VARNAME_MAX + 1];
	sisy_buf value;
} cli_var;

typedef struct cli_vars {
	cli_var v[CLI_VARS_MAX];
	size_t n;
} cli_vars;

/* A zeroed cli_vars is empty and valid; cli_vars_free releases values. */
void cli_vars_free(cli_vars *vars);

/* True when `name` (len bytes) is a valid variable name. */
bool cli_vars_name_ok(const char *name, size_t len);

/* Sets (or replaces) NAME. SISY_E_INVAL for a bad name, SISY_E_TOOBIG for a
 * value over the limit or a full table. */
sisy_err cli_vars_set(cli_vars *vars, const char *name, sisy_slice value);

/* Removes NAME; a missing name is not an error. */
void cli_vars_unset(cli_vars *vars, const char *name);

/* The value of NAME (len bytes, need not be NUL-terminated), or NULL. */
const sisy_buf *cli_vars_get(const cli_vars *vars, const char *name,
			     size_t len);

/* Parses a boolean as psql does: on/off, true/false, yes/no, 1/0 (any case,
 * unambiguous prefixes not accepted). Returns 1, 0, or -1 when not one. */
int cli_bool_parse(sisy_slice s);

/* NAME's value as a boolean; `dflt` when unset or not a boolean. */
bool cli_vars_bool(const cli_vars *vars, const char *name, bool dflt);

#endif
