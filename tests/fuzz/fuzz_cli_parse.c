/* Fuzz target: the shell's lexer and command parser (sisy-cli/lex.c,
 * parse.c) and its display escaping (text.c).
 *
 * Input: byte 0 chooses whether CLUSTER commands are offered; the rest is
 * shell input, split into lines at '\n' as a script would be. Variables a,
 * b and bin are set, so :NAME substitution is exercised. Invariants
 * checked beyond "no crash, no leak, no overrun":
 *  - every token and statement lies inside the lexed buffer / token list;
 *  - a WORD token holds no blank and no quote (it came from bare text),
 *    except a backslash command's name, which runs up to a blank;
 *  - a parsed command's arguments point into the lexed buffer;
 *  - escaped text (what the aligned format and messages show) holds no
 *    control byte, so no input can drive the terminal.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lex.h"
#include "parse.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Checked in every build: a release build of the target must not lose
 * its invariants with NDEBUG. */
#define CHECK(x)                                                         \
	do {                                                             \
		if (!(x)) {                                              \
			fprintf(stderr, "%s:%d: invariant failed: %s\n", \
				__FILE__, __LINE__, #x);                 \
			abort();                                         \
		}                                                        \
	} while (0)

static void check_arg(const cli_lexed *lx, const cli_arg *a)
{
	if (!a->present || a->data.len == 0)
		return;
	const uint8_t *lo = lx->bytes.data, *hi = lo + lx->bytes.len;
	CHECK(a->data.data >= lo && a->data.data + a->data.len <= hi);
}

static void check_escape(sisy_slice s)
{
	sisy_buf b = {0};
	cli_escape_append(&b, s);
	for (size_t i = 0; i < b.len; i++)
		CHECK(b.data[i] >= 0x20 && b.data[i] != 0x7f);
	sisy_buf_free(&b);
}

static void one_line(const char *s, size_t n, const cli_vars *vars,
		     const cli_parse_opts *po, cli_lexed *lx)
{
	if (cli_lex(s, n, vars, lx) != SISY_OK) {
		CHECK(lx->nstmts == 0);
		return;
	}
	for (size_t t = 0; t < lx->ntoks; t++) {
		CHECK(lx->toks[t].off + lx->toks[t].len <= lx->bytes.len);
		sisy_slice tok = cli_tok_slice(lx, t);
		bool meta_name = false;
		for (size_t i = 0; i < lx->nstmts; i++)
			meta_name = meta_name || (lx->stmts[i].meta &&
						  lx->stmts[i].first == t);
		if (lx->toks[t].kind == CLI_TOK_WORD && !meta_name)
			for (size_t i = 0; i < tok.len; i++)
				CHECK(
				    tok.data[i] != ' ' && tok.data[i] != '\t' &&
				    tok.data[i] != '\'' && tok.data[i] != '"');
		check_escape(tok);
	}
	for (size_t i = 0; i < lx->nstmts; i++) {
		const cli_stmt *st = &lx->stmts[i];
		CHECK(st->ntoks >= 1 && st->first + st->ntoks <= lx->ntoks);
		CHECK(st->src_off + st->src_len <= n);
		if (st->meta)
			continue;
		cli_cmd cmd;
		if (cli_parse(lx, st, po, &cmd) != SISY_OK)
			continue;
		CHECK(cmd.kind < CLI_CMD__COUNT);
		check_arg(lx, &cmd.key);
		check_arg(lx, &cmd.value);
		check_arg(lx, &cmd.from);
		check_arg(lx, &cmd.to);
		for (size_t k = 0; k < cmd.nkeys; k++)
			check_arg(lx, &cmd.keys[k]);
		CHECK(cmd.kind != CLI_CMD_MGET || cmd.nkeys >= 1);
		cli_cmd_free(&cmd);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	cli_parse_opts po = {.cluster = (data[0] & 1) != 0};
	cli_vars vars = {0};
	cli_lexed lx;
	memset(&lx, 0, sizeof lx);
	cli_vars_set(&vars, "a", sisy_slice_str("GET"));
	cli_vars_set(&vars, "b", sisy_slice_str("two words; LIMIT"));
	cli_vars_set(&vars, "bin", sisy_slice_make("\0\xff\n", 3));
	const char *s = (const char *)data + 1;
	size_t left = size - 1;
	while (left > 0) {
		const char *nl = memchr(s, '\n', left);
		size_t n = nl ? (size_t)(nl - s) : left;
		one_line(s, n, &vars, &po, &lx);
		if (nl == NULL)
			break;
		left -= n + 1;
		s = nl + 1;
	}
	cli_lexed_free(&lx);
	cli_vars_free(&vars);
	return 0;
}
