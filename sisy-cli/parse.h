/* parse.h — turns one lexed statement into a command.
 *
 * The command set (keywords are case-insensitive and only ever bare words):
 *
 *   GET key [WITH VERSION]
 *   PUT key value [IF VERSION n | IF ABSENT]
 *   DEL key [IF VERSION n]
 *   EXISTS key
 *   MGET key [key ...]
 *   SCAN [PREFIX p | FROM a [TO b]] [LIMIT n]     [a, b): b excluded
 *   BEGIN | COMMIT | ROLLBACK                     a batch of PUT/DEL
 *   PING | INFO | WHOAMI
 *   USER ADD name ROLE role [PASSWORD p]          role: readonly,
 *   USER DEL name                                       readwrite, admin
 *   USER LIST
 *   USER PASSWORD [name [password]]               no password: prompt
 *   USER ROLE name role
 *   CLUSTER ...                                   parsed only when the
 *                                                 connection supports them
 *
 * A key or value argument may be any token: a word, a quoted string, a hex
 * literal, a variable, or @file / @- (read later by the executor; parsing
 * does no I/O, so the fuzzer can drive it). Numbers are plain decimal
 * without sign; overflow is an error. The parsed command points into the
 * lexed buffer and is valid as long as it is.
 */
#ifndef CLI_PARSE_H
#define CLI_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "lex.h"

typedef enum cli_cmd_kind {
	CLI_CMD_GET = 0,
	CLI_CMD_PUT,
	CLI_CMD_DEL,
	CLI_CMD_EXISTS,
	CLI_CMD_MGET,
	CLI_CMD_SCAN,
	CLI_CMD_BEGIN,
	CLI_CMD_COMMIT,
	CLI_CMD_ROLLBACK,
	CLI_CMD_PING,
	CLI_CMD_INFO,
	CLI_CMD_WHOAMI,
	CLI_CMD_USER_ADD,
	CLI_CMD_USER_DEL,
	CLI_CMD_USER_LIST,
	CLI_CMD_USER_PASSWORD,
	CLI_CMD_USER_ROLE,
	CLI_CMD_CLUSTER_INFO,
	CLI_CMD_CLUSTER_NODES,
	CLI_CMD_CLUSTER_ADD_NODE,
	CLI_CMD_CLUSTER_REMOVE_NODE,
	CLI_CMD_CLUSTER_FAILOVER,
	CLI_CMD__COUNT
} cli_cmd_kind;

typedef enum cli_cond {
	CLI_COND_NONE = 0,
	CLI_COND_VERSION, /* IF VERSION n: the key's version must be n */
	CLI_COND_ABSENT,  /* IF ABSENT: the key must not exist */
} cli_cond;

typedef enum cli_scan_mode {
	CLI_SCAN_ALL = 0,
	CLI_SCAN_PREFIX,
	CLI_SCAN_RANGE, /* FROM a [TO b] */
} cli_scan_mode;

typedef enum cli_role {
	CLI_ROLE_NONE = 0,
	CLI_ROLE_READONLY,
	CLI_ROLE_READWRITE,
	CLI_ROLE_ADMIN,
} cli_role;

/* A key, value or name: literal bytes, or a file to read them from. */
typedef struct cli_arg {
	bool present;
	bool file; /* data is a path; "-" means standard input */
	sisy_slice data;
} cli_arg;

typedef struct cli_cmd {
	cli_cmd_kind kind;
	cli_arg key;   /* GET PUT DEL EXISTS; the user name of USER ... */
	cli_arg value; /* PUT; the password of USER ADD/PASSWORD */
	cli_arg *keys; /* MGET (malloc'd, cli_cmd_free) */
	size_t nkeys;
	bool with_version;
	cli_cond cond;
	uint64_t cond_version;
	cli_scan_mode scan;
	cli_arg from, to; /* SCAN: the prefix is in `from` */
	bool has_limit;
	uint64_t limit;
	cli_role role;	  /* USER ADD / USER ROLE */
	uint64_t node_id; /* CLUSTER REMOVE NODE id, FAILOVER TO id */
	bool has_node_id;
} cli_cmd;

/* Which optional command families the connection offers. */
typedef struct cli_parse_opts {
	bool cluster; /* accept CLUSTER ... */
} cli_parse_opts;

/* Parses statement `st` of `lx` (not a backslash command) into `cmd`.
 * On error the message says what was expected, with the usage line. */
sisy_err cli_parse(const cli_lexed *lx, const cli_stmt *st,
		   const cli_parse_opts *opts, cli_cmd *cmd);

void cli_cmd_free(cli_cmd *cmd);

/* The command's name for messages and tags ("GET", "USER ADD"). */
const char *cli_cmd_name(cli_cmd_kind kind);

/* The usage line ("GET key [WITH VERSION]"). */
const char *cli_cmd_usage(cli_cmd_kind kind);

/* True for the commands that change data (and may join a batch). */
bool cli_cmd_is_write(cli_cmd_kind kind);

const char *cli_role_name(cli_role r);

/* Strict decimal: digits only, no sign, no overflow. */
bool cli_parse_u64(sisy_slice s, uint64_t *out);

#endif
