/* lex.c — the shell's tokenizer (grammar and invariants in lex.h).
 *
 * One pass over the line, appending token bytes to one buffer; tokens and
 * statements are offsets into it, so the buffer may grow (and move) freely.
 * Every error names the 1-based column where the offending text starts.
 */
#include "lex.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "limits.h"

typedef struct lexer {
	const char *s;
	size_t len, pos;
	const cli_vars *vars;
	cli_lexed *out;
	bool meta; /* inside a backslash command: ';' is ordinary */
} lexer;

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_ident(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
	       (!first && c >= '0' && c <= '9');
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* True at a token boundary: end of line, blank, or (outside a backslash
 * command) a statement separator. */
static bool at_token_end(const lexer *lx, size_t pos)
{
	if (pos >= lx->len)
		return true;
	char c = lx->s[pos];
	return is_space(c) || (!lx->meta && c == ';');
}

static sisy_err put_bytes(lexer *lx, const void *p, size_t n)
{
	if (n > CLI_LEX_MAX_BYTES - lx->out->bytes.len)
		return sisy_errf(SISY_E_TOOBIG,
				 "line expands to more than %u bytes",
				 CLI_LEX_MAX_BYTES);
	return sisy_buf_append(&lx->out->bytes, p, n);
}

static sisy_err push_tok(lexer *lx, cli_tok_kind kind, size_t off)
{
	cli_lexed *o = lx->out;
	if (o->ntoks == CLI_TOKENS_MAX)
		return sisy_errf(SISY_E_TOOBIG, "more than %u words in a line",
				 CLI_TOKENS_MAX);
	if (o->ntoks == o->tokcap) {
		size_t cap = o->tokcap ? o->tokcap * 2 : 16;
		cli_tok *t = realloc(o->toks, cap * sizeof *t);
		if (t == NULL)
			return sisy_errf(SISY_E_NOMEM, "lex.c: out of memory");
		o->toks = t;
		o->tokcap = cap;
	}
	assert(off <= o->bytes.len);
	o->toks[o->ntoks].kind = kind;
	o->toks[o->ntoks].off = off;
	o->toks[o->ntoks].len = o->bytes.len - off;
	o->ntoks++;
	return SISY_OK;
}

static sisy_err push_stmt(lexer *lx, size_t first, bool meta, size_t src_off)
{
	cli_lexed *o = lx->out;
	if (first == o->ntoks)
		return SISY_OK; /* an empty statement (";;") is nothing */
	if (o->nstmts == o->stmtcap) {
		size_t cap = o->stmtcap ? o->stmtcap * 2 : 4;
		cli_stmt *t = realloc(o->stmts, cap * sizeof *t);
		if (t == NULL)
			return sisy_errf(SISY_E_NOMEM, "lex.c: out of memory");
		o->stmts = t;
		o->stmtcap = cap;
	}
	size_t end = lx->pos;
	while (end > src_off && is_space(lx->s[end - 1]))
		end--;
	cli_stmt *st = &o->stmts[o->nstmts++];
	st->first = first;
	st->ntoks = o->ntoks - first;
	st->meta = meta;
	st->src_off = src_off;
	st->src_len = end - src_off;
	return SISY_OK;
}

/* One escape after a backslash inside quotes; lx->pos is on the byte after
 * the backslash. */
static sisy_err lex_escape(lexer *lx, size_t col)
{
	if (lx->pos >= lx->len)
		return sisy_errf(SISY_E_INVAL,
				 "unterminated quoted string starting at "
				 "column %zu",
				 col);
	char c = lx->s[lx->pos++];
	char b;
	switch (c) {
	case '\\':
	case '\'':
	case '"':
		b = c;
		break;
	case 'n':
		b = '\n';
		break;
	case 't':
		b = '\t';
		break;
	case 'r':
		b = '\r';
		break;
	case '0':
		b = '\0';
		break;
	case 'a':
		b = '\a';
		break;
	case 'b':
		b = '\b';
		break;
	case 'f':
		b = '\f';
		break;
	case 'v':
		b = '\v';
		break;
	case 'x': {
		int hi = lx->pos < lx->len ? hexval(lx->s[lx->pos]) : -1;
		int lo =
		    lx->pos + 1 < lx->len ? hexval(lx->s[lx->pos + 1]) : -1;
		if (hi < 0 || lo < 0)
			return sisy_errf(SISY_E_INVAL,
					 "\\x needs two hex digits (column "
					 "%zu)",
					 lx->pos - 1);
		b = (char)(hi << 4 | lo);
		lx->pos += 2;
		break;
	}
	default:
		return sisy_errf(SISY_E_INVAL,
				 "unknown escape \\%c at column %zu (use \\\\ "
				 "for a backslash)",
				 (c >= 32 && c < 127) ? c : '?', lx->pos - 1);
	}
	return put_bytes(lx, &b, 1);
}

/* A quoted piece; lx->pos is on the opening quote. */
static sisy_err lex_quoted(lexer *lx)
{
	char q = lx->s[lx->pos];
	size_t col = lx->pos + 1;
	lx->pos++;
	for (;;) {
		size_t run = lx->pos;
		while (lx->pos < lx->len && lx->s[lx->pos] != q &&
		       lx->s[lx->pos] != '\\')
			lx->pos++;
		sisy_err rc = put_bytes(lx, lx->s + run, lx->pos - run);
		if (rc != SISY_OK)
			return rc;
		if (lx->pos >= lx->len)
			return sisy_errf(SISY_E_INVAL,
					 "unterminated quoted string starting "
					 "at column %zu",
					 col);
		if (lx->s[lx->pos] == '\\') {
			lx->pos++;
			rc = lex_escape(lx, col);
			if (rc != SISY_OK)
				return rc;
			continue;
		}
		/* A closing quote, or a doubled one standing for itself. */
		lx->pos++;
		if (lx->pos < lx->len && lx->s[lx->pos] == q) {
			rc = put_bytes(lx, &q, 1);
			if (rc != SISY_OK)
				return rc;
			lx->pos++;
			continue;
		}
		return SISY_OK;
	}
}

/* Bare and quoted pieces up to the token's end; sets *quoted when any piece
 * was quoted. */
static sisy_err lex_pieces(lexer *lx, bool *quoted)
{
	while (!at_token_end(lx, lx->pos)) {
		char c = lx->s[lx->pos];
		if (c == '\'' || c == '"') {
			*quoted = true;
			sisy_err rc = lex_quoted(lx);
			if (rc != SISY_OK)
				return rc;
			continue;
		}
		size_t run = lx->pos;
		while (!at_token_end(lx, lx->pos) && lx->s[lx->pos] != '\'' &&
		       lx->s[lx->pos] != '"')
			lx->pos++;
		sisy_err rc = put_bytes(lx, lx->s + run, lx->pos - run);
		if (rc != SISY_OK)
			return rc;
	}
	return SISY_OK;
}

/* x'HEX'; lx->pos is on the x. */
static sisy_err lex_hex(lexer *lx)
{
	size_t col = lx->pos + 1;
	lx->pos += 2;
	size_t start = lx->pos;
	while (lx->pos < lx->len && lx->s[lx->pos] != '\'')
		lx->pos++;
	if (lx->pos >= lx->len)
		return sisy_errf(SISY_E_INVAL,
				 "unterminated hex literal starting at column "
				 "%zu",
				 col);
	size_t n = lx->pos - start;
	lx->pos++;
	if (n % 2 != 0)
		return sisy_errf(SISY_E_INVAL,
				 "hex literal at column %zu has an odd number "
				 "of digits",
				 col);
	for (size_t i = 0; i < n; i += 2) {
		int hi = hexval(lx->s[start + i]);
		int lo = hexval(lx->s[start + i + 1]);
		if (hi < 0 || lo < 0)
			return sisy_errf(SISY_E_INVAL,
					 "hex literal at column %zu: \"%c%c\" "
					 "is not a hex digit pair",
					 col, lx->s[start + i] & 0x7f,
					 lx->s[start + i + 1] & 0x7f);
		uint8_t b = (uint8_t)(hi << 4 | lo);
		sisy_err rc = put_bytes(lx, &b, 1);
		if (rc != SISY_OK)
			return rc;
	}
	if (!at_token_end(lx, lx->pos))
		return sisy_errf(SISY_E_INVAL,
				 "text right after the hex literal at column "
				 "%zu; put a space between them",
				 col);
	return SISY_OK;
}

/* :NAME, :'NAME' or :"NAME" standing as a whole token. Returns SISY_OK with
 * *done = false when the text is not a variable reference at all (then it
 * is lexed as an ordinary word). */
static sisy_err lex_var(lexer *lx, bool *done)
{
	size_t col = lx->pos + 1;
	size_t p = lx->pos + 1;
	char q = 0;
	*done = false;
	if (p < lx->len && (lx->s[p] == '\'' || lx->s[p] == '"'))
		q = lx->s[p++];
	size_t name = p;
	while (p < lx->len && is_ident(lx->s[p], p == name))
		p++;
	size_t nlen = p - name;
	if (q) {
		if (nlen == 0 || p >= lx->len || lx->s[p] != q)
			return SISY_OK; /* e.g. :'x y' is just a word */
		p++;
	}
	if (nlen == 0 || !at_token_end(lx, p))
		return SISY_OK;
	if (nlen > CLI_VARNAME_MAX)
		return sisy_errf(SISY_E_INVAL,
				 "variable name at column %zu is longer than "
				 "%u",
				 col, CLI_VARNAME_MAX);
	const sisy_buf *v =
	    lx->vars ? cli_vars_get(lx->vars, lx->s + name, nlen) : NULL;
	if (v == NULL)
		return sisy_errf(SISY_E_INVAL,
				 "variable :%.*s is not set (column %zu); "
				 "\\set it, or quote the text for a literal",
				 (int)nlen, lx->s + name, col);
	size_t off = lx->out->bytes.len;
	sisy_err rc = put_bytes(lx, v->data, v->len);
	if (rc == SISY_OK)
		rc = push_tok(lx, CLI_TOK_STRING, off);
	lx->pos = p;
	*done = true;
	return rc;
}

static sisy_err lex_token(lexer *lx)
{
	size_t off = lx->out->bytes.len;
	char c = lx->s[lx->pos];
	char n = lx->pos + 1 < lx->len ? lx->s[lx->pos + 1] : 0;
	sisy_err rc;
	if (c == ':') {
		bool done;
		rc = lex_var(lx, &done);
		if (rc != SISY_OK || done)
			return rc;
	}
	if ((c == 'x' || c == 'X') && n == '\'') {
		rc = lex_hex(lx);
		return rc != SISY_OK ? rc : push_tok(lx, CLI_TOK_STRING, off);
	}
	if (c == '@') {
		size_t col = lx->pos + 1;
		bool quoted = false;
		lx->pos++;
		rc = lex_pieces(lx, &quoted);
		if (rc != SISY_OK)
			return rc;
		if (lx->out->bytes.len == off)
			return sisy_errf(SISY_E_INVAL,
					 "@ at column %zu needs a file name "
					 "(or @- for standard input)",
					 col);
		if (memchr(lx->out->bytes.data + off, 0,
			   lx->out->bytes.len - off) != NULL)
			return sisy_errf(SISY_E_INVAL,
					 "file name at column %zu holds a NUL "
					 "byte",
					 col);
		return push_tok(lx, CLI_TOK_FILE, off);
	}
	bool quoted = false;
	rc = lex_pieces(lx, &quoted);
	if (rc != SISY_OK)
		return rc;
	return push_tok(lx, quoted ? CLI_TOK_STRING : CLI_TOK_WORD, off);
}

/* The name of a backslash command: the backslash and what follows it up to
 * a blank (\set, \?, \q). */
static sisy_err lex_meta_name(lexer *lx)
{
	size_t off = lx->out->bytes.len;
	size_t start = lx->pos;
	while (lx->pos < lx->len && !is_space(lx->s[lx->pos]))
		lx->pos++;
	sisy_err rc = put_bytes(lx, lx->s + start, lx->pos - start);
	return rc != SISY_OK ? rc : push_tok(lx, CLI_TOK_WORD, off);
}

static void reset(cli_lexed *o)
{
	o->bytes.len = 0;
	o->ntoks = 0;
	o->nstmts = 0;
}

sisy_err cli_lex(const char *line, size_t len, const cli_vars *vars,
		 cli_lexed *out)
{
	assert(line != NULL || len == 0);
	lexer lx = {.s = line, .len = len, .vars = vars, .out = out};
	sisy_err rc;
	reset(out);
	if (len > CLI_LINE_MAX) {
		rc = sisy_errf(SISY_E_TOOBIG, "line longer than %u bytes",
			       CLI_LINE_MAX);
		goto fail;
	}
	/* Token slices must never be built from a NULL base. */
	if ((rc = sisy_buf_reserve(&out->bytes, 1)) != SISY_OK)
		goto fail;
	size_t first = 0, src_off = 0;
	bool at_start = true;
	for (;;) {
		while (lx.pos < len && is_space(line[lx.pos]))
			lx.pos++;
		if (at_start)
			src_off = lx.pos;
		if (lx.pos >= len)
			break;
		char c = line[lx.pos];
		if (!lx.meta && c == ';') {
			if ((rc = push_stmt(&lx, first, false, src_off)) !=
			    SISY_OK)
				goto fail;
			lx.pos++;
			first = out->ntoks;
			at_start = true;
			continue;
		}
		if (!lx.meta && c == '-' && lx.pos + 1 < len &&
		    line[lx.pos + 1] == '-')
			break; /* a comment runs to the end of the line */
		if (at_start && c == '\\') {
			lx.meta = true;
			rc = lex_meta_name(&lx);
		} else {
			rc = lex_token(&lx);
		}
		if (rc != SISY_OK)
			goto fail;
		at_start = false;
	}
	rc = push_stmt(&lx, first, lx.meta, src_off);
	if (rc != SISY_OK)
		goto fail;
	return SISY_OK;
fail:
	reset(out);
	return rc;
}

void cli_lexed_free(cli_lexed *lx)
{
	sisy_buf_free(&lx->bytes);
	free(lx->toks);
	free(lx->stmts);
	memset(lx, 0, sizeof *lx);
}
