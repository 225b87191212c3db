/* help.h — the text of \? and \h, and the word lists tab completion uses.
 */
#ifndef CLI_HELP_H
#define CLI_HELP_H

#include <stdbool.h>
#include <stdio.h>

#include "parse.h"

/* \?: the backslash commands and a pointer to \h. */
void cli_help_meta(FILE *fp);
/* \h with no topic: every command's usage line. */
void cli_help_commands(FILE *fp, const cli_parse_opts *opts);
/* \h TOPIC: the commands whose name starts with TOPIC (case-insensitive,
 * blanks between words collapsed): usage and description. False when none
 * matches. */
bool cli_help_topic(FILE *fp, const char *topic, const cli_parse_opts *opts);

/* Words completed at the start of a statement, and after them. NULL-ended. */
extern const char *const cli_help_command_words[];
extern const char *const cli_help_keywords[];
extern const char *const cli_help_meta_words[];

#endif
