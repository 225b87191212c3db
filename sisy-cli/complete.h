/* complete.h — tab completion's word source, kept apart from readline so
 * it can be tested: at the start of a statement the commands and the
 * backslash commands, later the keywords; \format completes its formats.
 * Completions follow the case the user started typing in ("ge" -> "get").
 */
#ifndef CLI_COMPLETE_H
#define CLI_COMPLETE_H

#include <stdbool.h>
#include <stddef.h>

/* Where the word being completed stands, judged from the line before it. */
typedef enum cli_complete_ctx {
	CLI_COMPLETE_COMMAND = 0, /* first word of a statement */
	CLI_COMPLETE_KEYWORD,	  /* later in a command */
	CLI_COMPLETE_FORMAT,	  /* after \format */
	CLI_COMPLETE_FILE,	  /* after \i or \o: file names */
	CLI_COMPLETE_NONE,	  /* other backslash arguments */
} cli_complete_ctx;

cli_complete_ctx cli_complete_context(const char *before, size_t len);

/* The next candidate for `text` in `ctx`, written to out; *iter starts at
 * 0 and advances. False when there are no more. */
bool cli_complete_next(cli_complete_ctx ctx, const char *text, size_t *iter,
		       char *out, size_t cap);

#endif
