/* lincheck_json.c — history files: one JSON object per line.
 *
 * Format (docs/testing.md has the full description):
 *   {"client":3,"op":"put","key":"k1","value":"v7","call":1200,
 *    "return":1900,"outcome":"ok"}
 * Fields: client (unsigned integer), op ("put" | "get" | "del" | "cas"),
 * key (string), value (string or null: the written value of a put/cas, the
 * value a get read, null = absent), expect (cas only: string or null =
 * expect absent), swapped (cas with outcome ok: true/false), call (integer
 * time of the invocation), return (integer time of the response; may be
 * absent or null when the outcome is unknown), outcome ("ok" | "failed" |
 * "unknown"). Times are integers in any one unit per file (nanoseconds of
 * one monotonic clock is the convention). Unknown fields are skipped
 * (nested up to a depth of 16), so recorders may add their own. Blank lines
 * and lines whose first non-blank character is '#' are skipped.
 *
 * Strings are compared as bytes after unescaping (\uXXXX becomes UTF-8, a
 * surrogate pair one code point); the writer escapes '"', '\\' and control
 * bytes and passes other bytes through, so any byte string round-trips.
 * A line is at most LINE_MAX_BYTES.
 */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck_int.h"

#define LINE_MAX_BYTES (4 * SISY_LINCHECK_MAX_VALUE)
#define SKIP_DEPTH_MAX 16

typedef struct cursor {
	const char *p, *end;
} cursor;

static void ws(cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
				 *c->p == '\r' || *c->p == '\n'))
		c->p++;
}

static int eat(cursor *c, char ch)
{
	ws(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return 1;
	}
	return 0;
}

static int lit(cursor *c, const char *word)
{
	size_t n = strlen(word);
	ws(c);
	if ((size_t)(c->end - c->p) >= n && memcmp(c->p, word, n) == 0) {
		c->p += n;
		return 1;
	}
	return 0;
}

static int hex4(cursor *c, uint32_t *out)
{
	if (c->end - c->p < 4)
		return -1;
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		char ch = *c->p++;
		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (uint32_t)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (uint32_t)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (uint32_t)(ch - 'A' + 10);
		else
			return -1;
	}
	*out = v;
	return 0;
}

static sisy_err put_utf8(sisy_buf *b, uint32_t cp)
{
	uint8_t u[4];
	size_t n;
	if (cp < 0x80) {
		u[0] = (uint8_t)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (uint8_t)(0xc0 | cp >> 6);
		u[1] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (uint8_t)(0xe0 | cp >> 12);
		u[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[2] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		u[0] = (uint8_t)(0xf0 | cp >> 18);
		u[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
		u[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
		u[3] = (uint8_t)(0x80 | (cp & 0x3f));
		n = 4;
	}
	return sisy_buf_append(b, u, n);
}

static sisy_err escape(cursor *c, sisy_buf *out)
{
	if (c->p >= c->end)
		return SISY_E_INVAL;
	char e = *c->p++;
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *k = strchr(from, e);
	if (k && e)
		return sisy_buf_append_u8(out, (uint8_t)to[k - from]);
	if (e != 'u')
		return SISY_E_INVAL;
	uint32_t cp, lo;
	if (hex4(c, &cp) != 0)
		return SISY_E_INVAL;
	if (cp >= 0xd800 && cp < 0xdc00) {
		if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
			return SISY_E_INVAL;
		c->p += 2;
		if (hex4(c, &lo) != 0 || lo < 0xdc00 || lo >= 0xe000)
			return SISY_E_INVAL;
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	} else if (cp >= 0xdc00 && cp < 0xe000) {
		return SISY_E_INVAL;
	}
	return put_utf8(out, cp);
}

/* A JSON string into `out` (replaced). */
static sisy_err string(cursor *c, sisy_buf *out)
{
	sisy_buf_clear(out);
	if (!eat(c, '"'))
		return SISY_E_INVAL;
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p++;
		sisy_err rc;
		if (ch == '"')
			return SISY_OK;
		if (ch < 0x20)
			return SISY_E_INVAL;
		if (ch == '\\')
			rc = escape(c, out);
		else
			rc = sisy_buf_append_u8(out, ch);
		if (rc != SISY_OK)
			return rc;
		if (out->len > SISY_LINCHECK_MAX_VALUE)
			return SISY_E_TOOBIG;
	}
	return SISY_E_INVAL;
}

static sisy_err integer(cursor *c, int64_t *out)
{
	ws(c);
	const char *s = c->p;
	if (s < c->end && *s == '-')
		s++;
	const char *d = s;
	while (s < c->end && *s >= '0' && *s <= '9')
		s++;
	if (s == d || s - c->p > 20)
		return SISY_E_INVAL;
	char tmp[24];
	memcpy(tmp, c->p, (size_t)(s - c->p));
	tmp[s - c->p] = '\0';
	errno = 0;
	long long v = strtoll(tmp, NULL, 10);
	if (errno != 0)
		return SISY_E_INVAL;
	c->p = s;
	*out = v;
	return SISY_OK;
}

/* Skips any JSON value (for fields the checker does not know). */
static sisy_err skip_value(cursor *c, sisy_buf *scratch, int depth)
{
	ws(c);
	if (c->p >= c->end || depth > SKIP_DEPTH_MAX)
		return SISY_E_INVAL;
	char ch = *c->p;
	if (ch == '"')
		return string(c, scratch);
	if (ch == '{' || ch == '[') {
		char close = ch == '{' ? '}' : ']';
		c->p++;
		if (eat(c, close))
			return SISY_OK;
		do {
			if (ch == '{') {
				if (string(c, scratch) != SISY_OK ||
				    !eat(c, ':'))
					return SISY_E_INVAL;
			}
			if (skip_value(c, scratch, depth + 1) != SISY_OK)
				return SISY_E_INVAL;
		} while (eat(c, ','));
		return eat(c, close) ? SISY_OK : SISY_E_INVAL;
	}
	if (lit(c, "null") || lit(c, "true") || lit(c, "false"))
		return SISY_OK;
	/* A number: integer part, optional fraction and exponent. */
	const char *s = c->p;
	while (c->p < c->end && strchr("+-0123456789.eE", *c->p) && *c->p)
		c->p++;
	return c->p > s ? SISY_OK : SISY_E_INVAL;
}

/* Fields seen on one line. */
typedef struct fields {
	sisy_lincheck_op op;
	int has_client, has_op, has_key, has_call, has_ret, has_outcome;
	int has_swapped, seen_value, seen_expect;
	sisy_buf key, value, expect, scratch;
} fields;

static sisy_err err_field(const char *name, const char *what)
{
	return sisy_errf(SISY_E_INVAL, "lincheck_json.c: field \"%s\": %s",
			 name, what);
}

/* A string or null into buf; *present = 0 for null. */
static sisy_err opt_string(cursor *c, sisy_buf *buf, bool *present)
{
	if (lit(c, "null")) {
		*present = false;
		return SISY_OK;
	}
	*present = true;
	return string(c, buf);
}

static sisy_err enum_field(cursor *c, fields *f, const char *name,
			   const char *const *names, int count, int *out)
{
	if (string(c, &f->scratch) != SISY_OK)
		return err_field(name, "expected a string");
	for (int i = 0; i < count; i++)
		if (strlen(names[i]) == f->scratch.len &&
		    memcmp(names[i], f->scratch.data, f->scratch.len) == 0) {
			*out = i;
			return SISY_OK;
		}
	return err_field(name, "unknown value");
}

static sisy_err field(cursor *c, fields *f, const char *name)
{
	static const char *const ops[] = {"put", "get", "del", "cas"};
	static const char *const outcomes[] = {"ok", "failed", "unknown"};
	sisy_lincheck_op *op = &f->op;
	int e = 0;
	int64_t v;
	sisy_err rc;
	if (strcmp(name, "client") == 0) {
		if (integer(c, &v) != SISY_OK || v < 0)
			return err_field(name, "expected an unsigned integer");
		op->client = (uint64_t)v;
		f->has_client = 1;
	} else if (strcmp(name, "op") == 0) {
		if ((rc = enum_field(c, f, name, ops, 4, &e)) != SISY_OK)
			return rc;
		op->kind = (sisy_lincheck_kind)e;
		f->has_op = 1;
	} else if (strcmp(name, "outcome") == 0) {
		if ((rc = enum_field(c, f, name, outcomes, 3, &e)) != SISY_OK)
			return rc;
		op->outcome = (sisy_lincheck_outcome)e;
		f->has_outcome = 1;
	} else if (strcmp(name, "key") == 0) {
		if (string(c, &f->key) != SISY_OK)
			return err_field(name, "expected a string");
		f->has_key = 1;
	} else if (strcmp(name, "value") == 0) {
		if (opt_string(c, &f->value, &op->has_value) != SISY_OK)
			return err_field(name, "expected a string or null");
		f->seen_value = 1;
	} else if (strcmp(name, "expect") == 0) {
		if (opt_string(c, &f->expect, &op->has_expect) != SISY_OK)
			return err_field(name, "expected a string or null");
		f->seen_expect = 1;
	} else if (strcmp(name, "swapped") == 0) {
		if (lit(c, "true"))
			op->swapped = true;
		else if (lit(c, "false"))
			op->swapped = false;
		else
			return err_field(name, "expected true or false");
		f->has_swapped = 1;
	} else if (strcmp(name, "call") == 0) {
		if (integer(c, &op->call) != SISY_OK)
			return err_field(name, "expected an integer");
		f->has_call = 1;
	} else if (strcmp(name, "return") == 0) {
		if (lit(c, "null"))
			return SISY_OK;
		if (integer(c, &op->ret) != SISY_OK)
			return err_field(name, "expected an integer or null");
		f->has_ret = 1;
	} else if (skip_value(c, &f->scratch, 0) != SISY_OK) {
		return err_field(name, "malformed value");
	}
	return SISY_OK;
}

static sisy_err check_fields(fields *f)
{
	sisy_lincheck_op *op = &f->op;
	if (!f->has_client || !f->has_op || !f->has_key || !f->has_call ||
	    !f->has_outcome)
		return sisy_errf(SISY_E_INVAL,
				 "lincheck_json.c: client, op, key, call and "
				 "outcome are required");
	if (op->outcome != SISY_LINCHECK_UNKNOWN_OUTCOME && !f->has_ret)
		return err_field("return",
				 "required unless outcome is unknown");
	if (op->kind != SISY_LINCHECK_DEL && !f->seen_value &&
	    !(op->kind == SISY_LINCHECK_GET && op->outcome != SISY_LINCHECK_OK))
		return err_field("value",
				 "required for put, cas and an ok get");
	if ((op->kind == SISY_LINCHECK_PUT || op->kind == SISY_LINCHECK_CAS) &&
	    !op->has_value)
		return err_field("value", "a put or cas writes a string");
	if (op->kind == SISY_LINCHECK_CAS && !f->seen_expect)
		return err_field("expect", "required for cas");
	if (op->kind == SISY_LINCHECK_CAS && op->outcome == SISY_LINCHECK_OK &&
	    !f->has_swapped)
		return err_field("swapped",
				 "required for a cas with outcome ok");
	op->key = sisy_buf_slice(&f->key);
	op->value = op->has_value ? sisy_buf_slice(&f->value) : op->value;
	op->expect = op->has_expect ? sisy_buf_slice(&f->expect) : op->expect;
	return SISY_OK;
}

static sisy_err parse_object(cursor *c, fields *f)
{
	if (!eat(c, '{'))
		return sisy_errf(SISY_E_INVAL, "lincheck_json.c: expected '{'");
	if (!eat(c, '}')) {
		do {
			if (string(c, &f->scratch) != SISY_OK || !eat(c, ':'))
				return sisy_errf(SISY_E_INVAL,
						 "lincheck_json.c: expected "
						 "\"name\":");
			char name[16];
			size_t n = f->scratch.len < sizeof name - 1
				       ? f->scratch.len
				       : sizeof name - 1;
			if (n)
				memcpy(name, f->scratch.data, n);
			name[n] = '\0';
			if (f->scratch.len >= sizeof name)
				name[0] = '\0'; /* unknown, skipped */
			sisy_err rc = field(c, f, name);
			if (rc != SISY_OK)
				return rc;
		} while (eat(c, ','));
		if (!eat(c, '}'))
			return sisy_errf(
			    SISY_E_INVAL,
			    "lincheck_json.c: expected ',' or '}'");
	}
	ws(c);
	if (c->p != c->end)
		return sisy_errf(SISY_E_INVAL,
				 "lincheck_json.c: trailing bytes after the "
				 "object");
	return check_fields(f);
}

sisy_err sisy_lincheck_parse_line(sisy_lincheck_history *h, const char *line,
				  size_t len)
{
	cursor c = {line, line + len};
	ws(&c);
	if (c.p == c.end || *c.p == '#')
		return SISY_OK;
	if (len > LINE_MAX_BYTES)
		return sisy_errf(SISY_E_TOOBIG,
				 "lincheck_json.c: line over %d bytes",
				 LINE_MAX_BYTES);
	fields f;
	memset(&f, 0, sizeof f);
	sisy_err rc = parse_object(&c, &f);
	if (rc == SISY_OK)
		rc = sisy_lincheck_add(h, &f.op);
	sisy_buf_free(&f.key);
	sisy_buf_free(&f.value);
	sisy_buf_free(&f.expect);
	sisy_buf_free(&f.scratch);
	return rc;
}

sisy_err sisy_lincheck_parse_file(sisy_lincheck_history *h, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	sisy_err rc = SISY_OK;
	for (size_t lineno = 1;; lineno++) {
		ssize_t n = getline(&line, &cap, f);
		if (n < 0)
			break;
		rc = sisy_lincheck_parse_line(h, line, (size_t)n);
		if (rc != SISY_OK) {
			char msg[256];
			snprintf(msg, sizeof msg, "%s", sisy_errmsg());
			rc = sisy_errf(rc, "line %zu: %s", lineno, msg);
			break;
		}
	}
	if (rc == SISY_OK && ferror(f))
		rc = sisy_errf(SISY_E_IO, "lincheck_json.c: read error");
	free(line);
	return rc;
}

/* --- writer --------------------------------------------------------------- */

static void put_string(FILE *f, sisy_slice s)
{
	fputc('"', f);
	for (size_t i = 0; i < s.len; i++) {
		uint8_t ch = s.data[i];
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void put_opt(FILE *f, const char *name, sisy_slice s, bool present)
{
	fprintf(f, ",\"%s\":", name);
	if (present)
		put_string(f, s);
	else
		fputs("null", f);
}

sisy_err sisy_lincheck_write(const sisy_lincheck_history *h, FILE *f)
{
	static const char *const ops[] = {"put", "get", "del", "cas"};
	static const char *const outcomes[] = {"ok", "failed", "unknown"};
	for (size_t i = 0; i < h->n; i++) {
		sisy_lincheck_op op;
		sisy_lincheck_get(h, i, &op);
		fprintf(f, "{\"client\":%" PRIu64 ",\"op\":\"%s\",\"key\":",
			op.client, ops[op.kind]);
		put_string(f, op.key);
		if (op.kind != SISY_LINCHECK_DEL)
			put_opt(f, "value", op.value, op.has_value);
		if (op.kind == SISY_LINCHECK_CAS) {
			put_opt(f, "expect", op.expect, op.has_expect);
			if (op.outcome == SISY_LINCHECK_OK)
				fprintf(f, ",\"swapped\":%s",
					op.swapped ? "true" : "false");
		}
		fprintf(f, ",\"call\":%" PRId64, op.call);
		if (op.outcome != SISY_LINCHECK_UNKNOWN_OUTCOME)
			fprintf(f, ",\"return\":%" PRId64, op.ret);
		fprintf(f, ",\"outcome\":\"%s\"}\n", outcomes[op.outcome]);
	}
	if (fflush(f) != 0 || ferror(f))
		return sisy_errf(SISY_E_IO, "lincheck_json.c: write failed");
	return SISY_OK;
}
