/* limits.h — every bound the shell enforces, in one place.
 *
 * The shell reads untrusted text (scripts, stdin, files named by @path) and
 * must never grow without limit. Each bound below has a clear error where it
 * is hit; the server has its own (smaller) key and value limits and answers
 * with its own message when a request exceeds them.
 */
#ifndef CLI_LIMITS_H
#define CLI_LIMITS_H

/* One input line (a command and its inline values). */
#define CLI_LINE_MAX (64u << 20)
/* Bytes a line may expand to after :NAME substitution and escapes. */
#define CLI_LEX_MAX_BYTES (64u << 20)
/* Tokens in one line (MGET with many keys is the big case). */
#define CLI_TOKENS_MAX 65536u
/* A value read from @file or @- (above the server's own value limit, so
 * that the server's message is the one a user sees). */
#define CLI_FILE_VALUE_MAX (16u << 20)
/* \set variables: how many, name length, value length. */
#define CLI_VARS_MAX	 256u
#define CLI_VARNAME_MAX	 63u
#define CLI_VARVALUE_MAX (1u << 20)
/* Writes queued between BEGIN and COMMIT, and their total key+value bytes. */
#define CLI_BATCH_MAX_OPS   10000u
#define CLI_BATCH_MAX_BYTES (64u << 20)
/* Nesting of \i and ~/.sisyrc includes. */
#define CLI_INCLUDE_DEPTH 16u
/* Rows asked for per SCAN page; LIMIT bounds the total, this the memory. */
#define CLI_SCAN_PAGE 1000u
/* Rows the aligned printer buffers before it must print (widths are computed
 * per chunk, as psql does with FETCH_COUNT). */
#define CLI_ALIGN_CHUNK_ROWS  1000u
#define CLI_ALIGN_CHUNK_BYTES (16u << 20)
/* Writes in flight in --pipe mode. */
#define CLI_PIPE_WINDOW 256u
/* How long a write whose outcome is unknown is retried (same client id and
 * sequence) before the shell reports "outcome unknown". */
#define CLI_WRITE_DEADLINE_MS 15000u
/* Hosts in -h a,b,c. */
#define CLI_HOSTS_MAX 32u
/* A host name or address (without port). */
#define CLI_HOSTNAME_MAX 255u
/* User names and passwords typed or read from the password file. */
#define CLI_USER_MAX	 255u
#define CLI_PASSWORD_MAX 1023u
/* \watch: shortest and longest interval, in milliseconds. */
#define CLI_WATCH_MIN_MS 10u
#define CLI_WATCH_MAX_MS (24u * 3600u * 1000u)

#endif
