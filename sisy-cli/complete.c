/* complete.c — completion candidates (see complete.h). */
#include "complete.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "help.h"

static const char *const formats[] = {"aligned", "unaligned", "csv", "json",
				      NULL};

cli_complete_ctx cli_complete_context(const char *before, size_t len)
{
	/* The statement being typed starts after the last ';' (outside a
	 * backslash command, which runs to the end of the line). */
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (before[i] == '\\') {
			size_t j = i;
			while (j > start &&
			       (before[j - 1] == ' ' || before[j - 1] == '\t'))
				j--;
			if (j == start)
				break; /* the statement is a backslash command
					*/
		}
		if (before[i] == ';')
			start = i + 1;
	}
	while (start < len && (before[start] == ' ' || before[start] == '\t'))
		start++;
	if (start == len)
		return CLI_COMPLETE_COMMAND;
	if (before[start] != '\\')
		return CLI_COMPLETE_KEYWORD;
	size_t end = start;
	while (end < len && before[end] != ' ' && before[end] != '\t')
		end++;
	size_t n = end - start;
	if (n == 7 && strncmp(before + start, "\\format", 7) == 0)
		return CLI_COMPLETE_FORMAT;
	if (n == 2 && (strncmp(before + start, "\\i", 2) == 0 ||
		       strncmp(before + start, "\\o", 2) == 0))
		return CLI_COMPLETE_FILE;
	return CLI_COMPLETE_NONE;
}

/* Candidate i of the lists for ctx, or NULL past the end. */
static const char *candidate(cli_complete_ctx ctx, size_t i)
{
	const char *const *lists[2] = {NULL, NULL};
	switch (ctx) {
	case CLI_COMPLETE_COMMAND:
		lists[0] = cli_help_command_words;
		lists[1] = cli_help_meta_words;
		break;
	case CLI_COMPLETE_KEYWORD:
		lists[0] = cli_help_keywords;
		break;
	case CLI_COMPLETE_FORMAT:
		lists[0] = formats;
		break;
	default:
		return NULL;
	}
	for (int l = 0; l < 2 && lists[l]; l++) {
		size_t n = 0;
		while (lists[l][n])
			n++;
		if (i < n)
			return lists[l][i];
		i -= n;
	}
	return NULL;
}

bool cli_complete_next(cli_complete_ctx ctx, const char *text, size_t *iter,
		       char *out, size_t cap)
{
	size_t tl = strlen(text);
	bool lower = tl > 0 && islower((unsigned char)text[0]);
	const char *w;
	while ((w = candidate(ctx, (*iter)++)) != NULL) {
		size_t wl = strlen(w);
		if (wl < tl || wl >= cap || strncasecmp(w, text, tl) != 0)
			continue;
		for (size_t i = 0; i <= wl; i++)
			out[i] =
			    lower ? (char)tolower((unsigned char)w[i]) : w[i];
		return true;
	}
	return false;
}
