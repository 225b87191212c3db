/* lex.h — splits one line of shell input into statements and tokens.
 *
 * The grammar (also in man/sisy-cli.1):
 *
 *   line      := stmt { ';' stmt } [ '--' comment ]
 *   stmt      := token { token }              a command: GET k, PUT k v ...
 *              | '\' name { token }           a backslash command; it runs
 *                                             to the end of the line and ';'
 *                                             is an ordinary character in it
 *   token     := piece { piece }              pieces concatenate: a'b c'
 *              | x'HEX'                       bytes, two hex digits each
 *              | @path                        a value read from a file;
 *              | @-                           ... or from standard input
 *              | :NAME | :'NAME' | :"NAME"    the value of a \set variable
 *   piece     := bare | '...' | "..."
 *
 * Inside quotes: \\ \' \" \n \t \r \0 \a \b \f \v \xHH are escapes, any
 * other backslash sequence is an error, and a doubled quote ('' inside
 * '...', "" inside "...") stands for the quote itself, as in SQL. Outside
 * quotes a backslash is an ordinary byte, except that a statement that
 * starts with one is a backslash command.
 *
 * Invariants that the parser relies on:
 *  - a WORD token came from bare text only, so it may be a keyword; any
 *    token with a quoted piece, a hex literal or a substituted variable is a
 *    STRING and is never taken for a keyword (GET 'LIMIT' reads key LIMIT);
 *  - a variable's value is one token, never re-split or re-lexed;
 *  - token bytes are binary-safe (they may hold NUL) and live in the lexed
 *    buffer, valid until the next cli_lex() or cli_lexed_free();
 *  - a :NAME that is not set is an error, not a literal (a typo in a script
 *    must not silently become a key); quote it (':NAME') for the literal.
 *  - substitution applies only to a whole token: "user:id" stays as typed.
 * No I/O happens here: @path is returned as a FILE token holding the path.
 */
#ifndef CLI_LEX_H
#define CLI_LEX_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "vars.h"

typedef enum cli_tok_kind {
	CLI_TOK_WORD = 0, /* bare text; may be a keyword */
	CLI_TOK_STRING,	  /* quoted, hex, or a variable's value */
	CLI_TOK_FILE,	  /* @path: the bytes are the path ("-" = stdin) */
} cli_tok_kind;

typedef struct cli_tok {
	cli_tok_kind kind;
	size_t off; /* into cli_lexed.bytes */
	size_t len;
} cli_tok;

typedef struct cli_stmt {
	size_t first; /* index of the first token */
	size_t ntoks; /* >= 1 */
	bool meta;    /* a backslash command; token 0 is its name, "\set" */
	size_t src_off, src_len; /* the statement's text in the input line */
} cli_stmt;

typedef struct cli_lexed {
	sisy_buf bytes;
	cli_tok *toks;
	size_t ntoks, tokcap;
	cli_stmt *stmts;
	size_t nstmts, stmtcap;
} cli_lexed;

/* Lexes `line` (len bytes, without its newline) into `out`, replacing what
 * it held. `vars` may be NULL (then any :NAME is an error). On error `out`
 * holds no statements and the message (with the column) is attached. */
sisy_err cli_lex(const char *line, size_t len, const cli_vars *vars,
		 cli_lexed *out);

void cli_lexed_free(cli_lexed *lx);

static inline sisy_slice cli_tok_slice(const cli_lexed *lx, size_t i)
{
	return sisy_slice_make(lx->bytes.data + lx->toks[i].off,
			       lx->toks[i].len);
}

#endif
