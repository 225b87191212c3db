/* vars.c — the shell's variable table (see vars.h).
 *
 * Invariant: v[0..n) are sorted by name with no duplicates; every name is
 * valid and every value within CLI_VARVALUE_MAX.
 */
#include "vars.h"

#include <assert.h>
#include <string.h>
#include <strings.h>

void cli_vars_free(cli_vars *vars)
{
	for (size_t i = 0; i < vars->n; i++)
		sisy_buf_free(&vars->v[i].value);
	vars->n = 0;
}

bool cli_vars_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > CLI_VARNAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     c == '_';
		bool digit = c >= '0' && c <= '9';
		if (!alpha && !(digit && i > 0))
			return false;
	}
	return true;
}

/* Compares a stored NUL-terminated name with a (name, len) key. */
static int name_cmp(const char *stored, const char *name, size_t len)
{
	size_t sl = strlen(stored);
	size_t n = sl < len ? sl : len;
	int c = memcmp(stored, name, n);
	if (c != 0)
		return c;
	return sl < len ? -1 : sl > len;
}

/* Index of the first entry >= name (binary search). */
static size_t lower_bound(const cli_vars *vars, const char *name, size_t len)
{
	size_t lo = 0, hi = vars->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (name_cmp(vars->v[mid].name, name, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

sisy_err cli_vars_set(cli_vars *vars, const char *name, sisy_slice value)
{
	size_t len = strlen(name);
	if (!cli_vars_name_ok(name, len))
		return sisy_errf(SISY_E_INVAL,
				 "invalid variable name \"%.*s\": use letters, "
				 "digits and _ (not first), at most %u",
				 (int)(len > 80 ? 80 : len), name,
				 CLI_VARNAME_MAX);
	if (value.len > CLI_VARVALUE_MAX)
		return sisy_errf(SISY_E_TOOBIG,
				 "value of variable %s is %zu bytes; the limit "
				 "is %u",
				 name, value.len, CLI_VARVALUE_MAX);
	size_t i = lower_bound(vars, name, len);
	bool found = i < vars->n && name_cmp(vars->v[i].name, name, len) == 0;
	if (!found) {
		if (vars->n == CLI_VARS_MAX)
			return sisy_errf(SISY_E_TOOBIG,
					 "too many variables (limit %u); "
					 "\\unset some first",
					 CLI_VARS_MAX);
		memmove(&vars->v[i + 1], &vars->v[i],
			(vars->n - i) * sizeof vars->v[0]);
		memset(&vars->v[i], 0, sizeof vars->v[i]);
		memcpy(vars->v[i].name, name, len + 1);
		vars->n++;
	}
	sisy_err rc = sisy_buf_set(&vars->v[i].value, value.data, value.len);
	if (rc != SISY_OK && !found) {
		/* Keep the table as it was: drop the half-made entry. */
		sisy_buf_free(&vars->v[i].value);
		memmove(&vars->v[i], &vars->v[i + 1],
			(vars->n - i - 1) * sizeof vars->v[0]);
		vars->n--;
	}
	return rc;
}

void cli_vars_unset(cli_vars *vars, const char *name)
{
	size_t len = strlen(name);
	size_t i = lower_bound(vars, name, len);
	if (i >= vars->n || name_cmp(vars->v[i].name, name, len) != 0)
		return;
	sisy_buf_free(&vars->v[i].value);
	memmove(&vars->v[i], &vars->v[i + 1],
		(vars->n - i - 1) * sizeof vars->v[0]);
	vars->n--;
}

const sisy_buf *cli_vars_get(const cli_vars *vars, const char *name, size_t len)
{
	size_t i = lower_bound(vars, name, len);
	if (i < vars->n && name_cmp(vars->v[i].name, name, len) == 0)
		return &vars->v[i].value;
	return NULL;
}

static bool slice_ieq(sisy_slice s, const char *word)
{
	size_t n = strlen(word);
	return s.len == n && strncasecmp((const char *)s.data, word, n) == 0;
}

int cli_bool_parse(sisy_slice s)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (slice_ieq(s, yes[i]))
			return 1;
		if (slice_ieq(s, no[i]))
			return 0;
	}
	return -1;
}

bool cli_vars_bool(const cli_vars *vars, const char *name, bool dflt)
{
	const sisy_buf *b = cli_vars_get(vars, name, strlen(name));
	if (b == NULL)
		return dflt;
	int v = cli_bool_parse(sisy_buf_slice(b));
	return v < 0 ? dflt : v == 1;
}
