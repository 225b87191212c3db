/* parse.c — the command grammar (see parse.h).
 *
 * A recursive-descent reader over one statement's tokens with a cursor.
 * Messages are written for the person at the shell: they name the command,
 * what was expected and where the usage is, and never echo raw bytes (see
 * cli_show). No allocation except MGET's key array.
 */
#include "parse.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "text.h"

typedef struct cursor {
	const cli_lexed *lx;
	size_t i, end; /* token indexes: next, one past the last */
	cli_cmd_kind kind;
} cursor;

static const struct {
	const char *name;
	const char *usage;
} cmd_info[CLI_CMD__COUNT] = {
    [CLI_CMD_GET] = {"GET", "GET key [WITH VERSION]"},
    [CLI_CMD_PUT] = {"PUT", "PUT key value [IF VERSION n | IF ABSENT]"},
    [CLI_CMD_DEL] = {"DEL", "DEL key [IF VERSION n]"},
    [CLI_CMD_EXISTS] = {"EXISTS", "EXISTS key"},
    [CLI_CMD_MGET] = {"MGET", "MGET key [key ...]"},
    [CLI_CMD_SCAN] = {"SCAN", "SCAN [PREFIX p | FROM a [TO b]] [LIMIT n]"},
    [CLI_CMD_BEGIN] = {"BEGIN", "BEGIN"},
    [CLI_CMD_COMMIT] = {"COMMIT", "COMMIT"},
    [CLI_CMD_ROLLBACK] = {"ROLLBACK", "ROLLBACK"},
    [CLI_CMD_PING] = {"PING", "PING"},
    [CLI_CMD_INFO] = {"INFO", "INFO [section]"},
    [CLI_CMD_WHOAMI] = {"WHOAMI", "WHOAMI"},
    [CLI_CMD_USER_ADD] = {"USER ADD",
			  "USER ADD name ROLE readonly|readwrite|admin "
			  "[PASSWORD p]"},
    [CLI_CMD_USER_DEL] = {"USER DEL", "USER DEL name"},
    [CLI_CMD_USER_LIST] = {"USER LIST", "USER LIST"},
    [CLI_CMD_USER_PASSWORD] = {"USER PASSWORD",
			       "USER PASSWORD [name [password]]"},
    [CLI_CMD_USER_ROLE] = {"USER ROLE",
			   "USER ROLE name readonly|readwrite|admin"},
    [CLI_CMD_CLUSTER_INFO] = {"CLUSTER INFO", "CLUSTER INFO"},
    [CLI_CMD_CLUSTER_NODES] = {"CLUSTER NODES", "CLUSTER NODES"},
    [CLI_CMD_CLUSTER_ADD_NODE] = {"CLUSTER ADD NODE",
				  "CLUSTER ADD NODE host:port"},
    [CLI_CMD_CLUSTER_REMOVE_NODE] = {"CLUSTER REMOVE NODE",
				     "CLUSTER REMOVE NODE id"},
    [CLI_CMD_CLUSTER_FAILOVER] = {"CLUSTER FAILOVER",
				  "CLUSTER FAILOVER [TO id]"},
};

const char *cli_cmd_name(cli_cmd_kind kind)
{
	assert(kind < CLI_CMD__COUNT);
	return cmd_info[kind].name;
}

const char *cli_cmd_usage(cli_cmd_kind kind)
{
	assert(kind < CLI_CMD__COUNT);
	return cmd_info[kind].usage;
}

bool cli_cmd_is_write(cli_cmd_kind kind)
{
	return kind == CLI_CMD_PUT || kind == CLI_CMD_DEL;
}

const char *cli_role_name(cli_role r)
{
	switch (r) {
	case CLI_ROLE_READONLY:
		return "readonly";
	case CLI_ROLE_READWRITE:
		return "readwrite";
	case CLI_ROLE_ADMIN:
		return "admin";
	default:
		return "";
	}
}

bool cli_parse_u64(sisy_slice s, uint64_t *out)
{
	uint64_t v = 0;
	if (s.len == 0 || s.len > 20)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		uint8_t c = s.data[i];
		if (c < '0' || c > '9')
			return false;
		if (v > (UINT64_MAX - (c - '0')) / 10)
			return false;
		v = v * 10 + (c - '0');
	}
	*out = v;
	return true;
}

static bool more(const cursor *c)
{
	return c->i < c->end;
}

static bool tok_is_kw(const cursor *c, size_t i, const char *kw)
{
	if (i >= c->end || c->lx->toks[i].kind != CLI_TOK_WORD)
		return false;
	sisy_slice s = cli_tok_slice(c->lx, i);
	size_t n = strlen(kw);
	return s.len == n && strncasecmp((const char *)s.data, kw, n) == 0;
}

/* Consumes the keyword when it is next. */
static bool accept(cursor *c, const char *kw)
{
	if (!tok_is_kw(c, c->i, kw))
		return false;
	c->i++;
	return true;
}

static sisy_err usage_err(const cursor *c, const char *what)
{
	return sisy_errf(SISY_E_INVAL, "%s: %s; usage: %s",
			 cmd_info[c->kind].name, what, cmd_info[c->kind].usage);
}

static sisy_err unexpected(const cursor *c)
{
	char shown[64];
	char what[96];
	cli_show(cli_tok_slice(c->lx, c->i), 40, shown, sizeof shown);
	snprintf(what, sizeof what, "unexpected \"%s\"", shown);
	return usage_err(c, what);
}

/* A key, value or name: any single token. */
static sisy_err take_arg(cursor *c, const char *what, cli_arg *out)
{
	if (!more(c)) {
		char msg[64];
		snprintf(msg, sizeof msg, "expected %s", what);
		return usage_err(c, msg);
	}
	out->present = true;
	out->file = c->lx->toks[c->i].kind == CLI_TOK_FILE;
	out->data = cli_tok_slice(c->lx, c->i);
	c->i++;
	return SISY_OK;
}

static sisy_err take_u64(cursor *c, const char *what, uint64_t *out)
{
	char msg[96];
	if (!more(c)) {
		snprintf(msg, sizeof msg, "expected %s", what);
		return usage_err(c, msg);
	}
	if (c->lx->toks[c->i].kind == CLI_TOK_FILE ||
	    !cli_parse_u64(cli_tok_slice(c->lx, c->i), out)) {
		char shown[48];
		cli_show(cli_tok_slice(c->lx, c->i), 24, shown, sizeof shown);
		snprintf(msg, sizeof msg,
			 "%s must be a whole number from 0 to 2^64-1, not "
			 "\"%s\"",
			 what, shown);
		return usage_err(c, msg);
	}
	c->i++;
	return SISY_OK;
}

static sisy_err take_role(cursor *c, cli_role *out)
{
	static const char *const names[] = {"readonly", "readwrite", "admin"};
	static const cli_role roles[] = {CLI_ROLE_READONLY, CLI_ROLE_READWRITE,
					 CLI_ROLE_ADMIN};
	if (!more(c))
		return usage_err(c, "expected a role");
	for (size_t i = 0; i < 3; i++) {
		sisy_slice s = cli_tok_slice(c->lx, c->i);
		size_t n = strlen(names[i]);
		if (c->lx->toks[c->i].kind != CLI_TOK_FILE && s.len == n &&
		    strncasecmp((const char *)s.data, names[i], n) == 0) {
			*out = roles[i];
			c->i++;
			return SISY_OK;
		}
	}
	return usage_err(c, "the role must be readonly, readwrite or admin");
}

static sisy_err done(const cursor *c)
{
	return more(c) ? unexpected(c) : SISY_OK;
}

static sisy_err parse_get(cursor *c, cli_cmd *cmd)
{
	sisy_err rc = take_arg(c, "a key", &cmd->key);
	if (rc != SISY_OK)
		return rc;
	if (accept(c, "WITH")) {
		if (!accept(c, "VERSION"))
			return usage_err(c, "expected VERSION after WITH");
		cmd->with_version = true;
	}
	return done(c);
}

/* [IF VERSION n | IF ABSENT]; ABSENT only when `absent_ok`. */
static sisy_err parse_cond(cursor *c, cli_cmd *cmd, bool absent_ok)
{
	if (!accept(c, "IF"))
		return SISY_OK;
	if (accept(c, "VERSION")) {
		cmd->cond = CLI_COND_VERSION;
		return take_u64(c, "the version", &cmd->cond_version);
	}
	if (absent_ok && accept(c, "ABSENT")) {
		cmd->cond = CLI_COND_ABSENT;
		return SISY_OK;
	}
	return usage_err(c, absent_ok ? "expected VERSION n or ABSENT after IF"
				      : "expected VERSION n after IF");
}

static sisy_err parse_put(cursor *c, cli_cmd *cmd)
{
	sisy_err rc = take_arg(c, "a key", &cmd->key);
	if (rc == SISY_OK)
		rc = take_arg(c, "a value", &cmd->value);
	if (rc == SISY_OK)
		rc = parse_cond(c, cmd, true);
	return rc != SISY_OK ? rc : done(c);
}

static sisy_err parse_del(cursor *c, cli_cmd *cmd)
{
	sisy_err rc = take_arg(c, "a key", &cmd->key);
	if (rc == SISY_OK)
		rc = parse_cond(c, cmd, false);
	return rc != SISY_OK ? rc : done(c);
}

static sisy_err parse_key_only(cursor *c, cli_cmd *cmd)
{
	sisy_err rc = take_arg(c, "a key", &cmd->key);
	return rc != SISY_OK ? rc : done(c);
}

static sisy_err parse_mget(cursor *c, cli_cmd *cmd)
{
	size_t n = c->end - c->i;
	if (n == 0)
		return usage_err(c, "expected at least one key");
	cmd->keys = calloc(n, sizeof *cmd->keys);
	if (cmd->keys == NULL)
		return sisy_errf(SISY_E_NOMEM, "parse.c: out of memory");
	while (more(c)) {
		sisy_err rc = take_arg(c, "a key", &cmd->keys[cmd->nkeys]);
		if (rc != SISY_OK)
			return rc;
		cmd->nkeys++;
	}
	return SISY_OK;
}

static sisy_err parse_scan(cursor *c, cli_cmd *cmd)
{
	sisy_err rc = SISY_OK;
	if (accept(c, "PREFIX")) {
		cmd->scan = CLI_SCAN_PREFIX;
		rc = take_arg(c, "a prefix", &cmd->from);
	} else if (accept(c, "FROM")) {
		cmd->scan = CLI_SCAN_RANGE;
		rc = take_arg(c, "the first key", &cmd->from);
		if (rc == SISY_OK && accept(c, "TO"))
			rc = take_arg(c, "the end key", &cmd->to);
	}
	if (rc == SISY_OK && accept(c, "LIMIT")) {
		cmd->has_limit = true;
		rc = take_u64(c, "the limit", &cmd->limit);
	}
	return rc != SISY_OK ? rc : done(c);
}

static sisy_err parse_user(cursor *c, cli_cmd *cmd)
{
	sisy_err rc = SISY_OK;
	if (accept(c, "ADD")) {
		cmd->kind = c->kind = CLI_CMD_USER_ADD;
		rc = take_arg(c, "a user name", &cmd->key);
		if (rc == SISY_OK && !accept(c, "ROLE"))
			return usage_err(c, "expected ROLE");
		if (rc == SISY_OK)
			rc = take_role(c, &cmd->role);
		if (rc == SISY_OK && accept(c, "PASSWORD"))
			rc = take_arg(c, "a password", &cmd->value);
	} else if (accept(c, "DEL")) {
		cmd->kind = c->kind = CLI_CMD_USER_DEL;
		rc = take_arg(c, "a user name", &cmd->key);
	} else if (accept(c, "LIST")) {
		cmd->kind = c->kind = CLI_CMD_USER_LIST;
	} else if (accept(c, "PASSWORD")) {
		cmd->kind = c->kind = CLI_CMD_USER_PASSWORD;
		if (more(c))
			rc = take_arg(c, "a user name", &cmd->key);
		if (rc == SISY_OK && more(c))
			rc = take_arg(c, "a password", &cmd->value);
	} else if (accept(c, "ROLE")) {
		cmd->kind = c->kind = CLI_CMD_USER_ROLE;
		rc = take_arg(c, "a user name", &cmd->key);
		if (rc == SISY_OK)
			rc = take_role(c, &cmd->role);
	} else {
		return sisy_errf(SISY_E_INVAL,
				 "USER: expected ADD, DEL, LIST, PASSWORD or "
				 "ROLE; \\h USER shows the usage");
	}
	return rc != SISY_OK ? rc : done(c);
}

static sisy_err parse_cluster(cursor *c, cli_cmd *cmd)
{
	sisy_err rc = SISY_OK;
	if (accept(c, "INFO")) {
		cmd->kind = c->kind = CLI_CMD_CLUSTER_INFO;
	} else if (accept(c, "NODES")) {
		cmd->kind = c->kind = CLI_CMD_CLUSTER_NODES;
	} else if (tok_is_kw(c, c->i, "ADD") &&
		   tok_is_kw(c, c->i + 1, "NODE")) {
		c->i += 2;
		cmd->kind = c->kind = CLI_CMD_CLUSTER_ADD_NODE;
		rc = take_arg(c, "host:port", &cmd->key);
	} else if (tok_is_kw(c, c->i, "REMOVE") &&
		   tok_is_kw(c, c->i + 1, "NODE")) {
		c->i += 2;
		cmd->kind = c->kind = CLI_CMD_CLUSTER_REMOVE_NODE;
		cmd->has_node_id = true;
		rc = take_u64(c, "the node id", &cmd->node_id);
	} else if (accept(c, "FAILOVER")) {
		cmd->kind = c->kind = CLI_CMD_CLUSTER_FAILOVER;
		if (accept(c, "TO")) {
			cmd->has_node_id = true;
			rc = take_u64(c, "the node id", &cmd->node_id);
		}
	} else {
		return sisy_errf(SISY_E_INVAL,
				 "CLUSTER: expected INFO, NODES, ADD NODE, "
				 "REMOVE NODE or FAILOVER; \\h CLUSTER shows "
				 "the usage");
	}
	return rc != SISY_OK ? rc : done(c);
}

/* Commands made of one keyword and nothing else. */
static const struct {
	const char *word;
	cli_cmd_kind kind;
} bare_cmds[] = {
    {"BEGIN", CLI_CMD_BEGIN},	    {"COMMIT", CLI_CMD_COMMIT},
    {"ROLLBACK", CLI_CMD_ROLLBACK}, {"PING", CLI_CMD_PING},
    {"WHOAMI", CLI_CMD_WHOAMI},
};

/* INFO [section]: the rows of one section (server, clients, store, raft,
 * engine: the part of a row's name before the first dot), as redis-cli's
 * INFO section. */
static sisy_err parse_info(cursor *c, cli_cmd *cmd)
{
	if (!more(c))
		return SISY_OK;
	sisy_err rc = take_arg(c, "a section name", &cmd->key);
	if (rc == SISY_OK && cmd->key.file)
		return usage_err(c, "a section is a name, not a file");
	return rc != SISY_OK ? rc : done(c);
}

sisy_err cli_parse(const cli_lexed *lx, const cli_stmt *st,
		   const cli_parse_opts *opts, cli_cmd *cmd)
{
	assert(!st->meta && st->ntoks >= 1);
	assert(st->first + st->ntoks <= lx->ntoks);
	memset(cmd, 0, sizeof *cmd);
	cursor c = {.lx = lx, .i = st->first + 1, .end = st->first + st->ntoks};
	sisy_err rc;
	static const struct {
		const char *word;
		cli_cmd_kind kind;
		sisy_err (*fn)(cursor *, cli_cmd *);
	} cmds[] = {
	    {"GET", CLI_CMD_GET, parse_get},
	    {"PUT", CLI_CMD_PUT, parse_put},
	    {"DEL", CLI_CMD_DEL, parse_del},
	    {"EXISTS", CLI_CMD_EXISTS, parse_key_only},
	    {"MGET", CLI_CMD_MGET, parse_mget},
	    {"SCAN", CLI_CMD_SCAN, parse_scan},
	    {"USER", CLI_CMD_USER_LIST, parse_user},
	    {"CLUSTER", CLI_CMD_CLUSTER_INFO, parse_cluster},
	    {"INFO", CLI_CMD_INFO, parse_info},
	};
	for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		if (!tok_is_kw(&c, st->first, cmds[i].word))
			continue;
		if (cmds[i].kind == CLI_CMD_CLUSTER_INFO &&
		    !(opts && opts->cluster))
			break;
		cmd->kind = c.kind = cmds[i].kind;
		rc = cmds[i].fn(&c, cmd);
		goto out;
	}
	for (size_t i = 0; i < sizeof bare_cmds / sizeof bare_cmds[0]; i++) {
		if (!tok_is_kw(&c, st->first, bare_cmds[i].word))
			continue;
		cmd->kind = c.kind = bare_cmds[i].kind;
		rc = done(&c);
		goto out;
	}
	char shown[64];
	cli_show(cli_tok_slice(lx, st->first), 40, shown, sizeof shown);
	rc = sisy_errf(SISY_E_INVAL,
		       "unknown command \"%s\"; \\? lists the commands", shown);
out:
	if (rc != SISY_OK)
		cli_cmd_free(cmd);
	return rc;
}

void cli_cmd_free(cli_cmd *cmd)
{
	free(cmd->keys);
	cmd->keys = NULL;
	cmd->nkeys = 0;
}
