/* exec.c — runs one parsed command against the backend and prints its
 * result (see parse.h for the commands, out.h for the formats).
 *
 * Results: GET -> (value[, version]); MGET and SCAN -> (key, value), a row
 * per key that exists; EXISTS -> (exists); INFO and CLUSTER INFO -> (name,
 * value); WHOAMI -> (user, role, node_id, node_role); USER LIST -> (user,
 * role); CLUSTER NODES -> (id, address, role, term, commit_index,
 * applied_index, lag); CLUSTER ADD NODE -> (join_token), so that -At gives
 * the token alone. Writes and the rest print a status tag: "PUT 1 VERSION
 * 7", "DEL 1" (0 when there was nothing to delete), "BEGIN", "QUEUED",
 * "COMMIT 3 VERSION 9", "ROLLBACK", "PONG", "USER ADD", ...
 *
 * Batches: between BEGIN and COMMIT, PUT and DEL are copied into the batch
 * (bounded by CLI_BATCH_MAX_OPS and CLI_BATCH_MAX_BYTES) and sent as one
 * atomic request at COMMIT; other database commands are refused, since
 * they would not see the queued writes. A failed COMMIT ends the batch.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "limits.h"
#include "shell.h"
#include "text.h"

bool shell_stale(const cli_shell *sh)
{
	const sisy_buf *v = cli_vars_get(&sh->vars, "CONSISTENCY", 11);
	return v != NULL && v->len == 5 && memcmp(v->data, "stale", 5) == 0;
}

/* The bytes of an argument: literal, or read from its file into buf. */
static sisy_err resolve(cli_shell *sh, const cli_arg *a, sisy_buf *buf,
			sisy_slice *out)
{
	if (!a->file) {
		*out = a->data;
		return SISY_OK;
	}
	char path[4096];
	if (a->data.len >= sizeof path)
		return sisy_errf(SISY_E_INVAL, "file name too long");
	memcpy(path, a->data.data, a->data.len);
	path[a->data.len] = '\0';
	if (strcmp(path, "-") == 0 && sh->stdin_is_script)
		return sisy_errf(SISY_E_INVAL,
				 "@- cannot read standard input: the commands "
				 "come from it; use @FILE");
	sisy_err rc = cli_read_file(path, sh->in, CLI_FILE_VALUE_MAX, buf);
	if (rc != SISY_OK)
		return rc;
	*out = sisy_buf_slice(buf);
	if (out->data == NULL)
		*out = sisy_slice_make("", 0);
	return SISY_OK;
}

/* A user name or password as a C string: no NUL, bounded. */
static sisy_err cstring(const cli_arg *a, const char *what, size_t max,
			char *out)
{
	if (a->file)
		return sisy_errf(SISY_E_INVAL, "a %s cannot come from a file",
				 what);
	if (a->data.len == 0 || a->data.len > max ||
	    memchr(a->data.data, 0, a->data.len) != NULL)
		return sisy_errf(SISY_E_INVAL,
				 "a %s must be 1-%zu bytes without NUL", what,
				 max);
	memcpy(out, a->data.data, a->data.len);
	out[a->data.len] = '\0';
	return SISY_OK;
}

static sisy_err tag(cli_shell *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static sisy_err tag(cli_shell *sh, const char *fmt, ...)
{
	char t[128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(t, sizeof t, fmt, ap);
	va_end(ap);
	return cli_out_tag(&sh->out, t);
}

static sisy_err not_connected(void)
{
	return sisy_errf(SISY_E_CONN, "not connected to a server");
}

/* ------------------------------------------------------------- reads */

static sisy_err do_get(cli_shell *sh, const cli_cmd *cmd)
{
	static const cli_col cols[] = {{"value", CLI_COL_TEXT},
				       {"version", CLI_COL_INT}};
	sisy_slice key;
	bool found = false;
	uint64_t version = 0;
	sisy_err rc = resolve(sh, &cmd->key, &sh->scratch[0], &key);
	if (rc != SISY_OK)
		return rc;
	rc = sh->be->ops->get(sh->be, key, shell_stale(sh), &sh->scratch[1],
			      &found, &version);
	if (rc != SISY_OK)
		return rc;
	if ((rc = cli_out_begin(&sh->out, cols, cmd->with_version ? 2 : 1)) !=
	    SISY_OK)
		return rc;
	if (found) {
		char vs[24];
		snprintf(vs, sizeof vs, "%" PRIu64, version);
		sisy_slice cells[2] = {sisy_buf_slice(&sh->scratch[1]),
				       sisy_slice_str(vs)};
		if (cells[0].data == NULL)
			cells[0] = sisy_slice_make("", 0);
		if ((rc = cli_out_row(&sh->out, cells)) != SISY_OK)
			return rc;
	}
	return cli_out_end(&sh->out);
}

static sisy_err do_exists(cli_shell *sh, const cli_cmd *cmd)
{
	static const cli_col cols[] = {{"exists", CLI_COL_BOOL}};
	sisy_slice key;
	bool found = false;
	sisy_err rc = resolve(sh, &cmd->key, &sh->scratch[0], &key);
	if (rc == SISY_OK)
		rc = sh->be->ops->exists(sh->be, key, shell_stale(sh), &found);
	if (rc != SISY_OK)
		return rc;
	if ((rc = cli_out_begin(&sh->out, cols, 1)) != SISY_OK)
		return rc;
	sisy_slice cell = sisy_slice_str(found ? "true" : "false");
	if ((rc = cli_out_row(&sh->out, &cell)) != SISY_OK)
		return rc;
	return cli_out_end(&sh->out);
}

typedef struct kv_print {
	cli_shell *sh;
	bool only_found;
	uint64_t rows;
} kv_print;

static sisy_err print_kv(void *ctx, const cli_kv *kv)
{
	kv_print *p = ctx;
	if (p->only_found && !kv->found)
		return SISY_OK;
	if (p->sh->interrupted && *p->sh->interrupted)
		return sisy_errf(SISY_E_AGAIN, "canceled");
	sisy_slice cells[2] = {kv->key, kv->value};
	p->rows++;
	return cli_out_row(&p->sh->out, cells);
}

static const cli_col kv_cols[] = {{"key", CLI_COL_TEXT},
				  {"value", CLI_COL_TEXT}};

static sisy_err do_mget(cli_shell *sh, const cli_cmd *cmd)
{
	sisy_slice *keys = calloc(cmd->nkeys, sizeof *keys);
	sisy_err rc = SISY_OK;
	if (keys == NULL)
		return sisy_errf(SISY_E_NOMEM, "exec.c: out of memory");
	for (size_t i = 0; i < cmd->nkeys; i++) {
		if (cmd->keys[i].file) {
			rc = sisy_errf(SISY_E_INVAL,
				       "MGET: keys cannot come from @files");
			goto out;
		}
		keys[i] = cmd->keys[i].data;
	}
	if ((rc = cli_out_begin(&sh->out, kv_cols, 2)) != SISY_OK)
		goto out;
	kv_print p = {.sh = sh, .only_found = true};
	rc = sh->be->ops->mget(sh->be, keys, cmd->nkeys, shell_stale(sh),
			       print_kv, &p);
	if (rc == SISY_OK)
		rc = cli_out_end(&sh->out);
	else
		cli_out_abort(&sh->out);
out:
	free(keys);
	return rc;
}

static sisy_err do_scan(cli_shell *sh, const cli_cmd *cmd)
{
	cli_scan_page page = {.mode = cmd->scan, .stale = shell_stale(sh)};
	sisy_buf resume = {0};
	sisy_err rc;
	if (cmd->scan == CLI_SCAN_PREFIX)
		rc = resolve(sh, &cmd->from, &sh->scratch[0], &page.prefix);
	else if (cmd->scan == CLI_SCAN_RANGE)
		rc = resolve(sh, &cmd->from, &sh->scratch[0], &page.from);
	else
		rc = SISY_OK;
	if (rc == SISY_OK && cmd->to.present)
		rc = resolve(sh, &cmd->to, &sh->scratch[1], &page.to);
	if (rc != SISY_OK)
		return rc;
	if ((rc = cli_out_begin(&sh->out, kv_cols, 2)) != SISY_OK)
		return rc;
	uint64_t left = cmd->has_limit ? cmd->limit : UINT64_MAX;
	kv_print p = {.sh = sh};
	bool more = left > 0;
	while (more) {
		page.limit =
		    left < CLI_SCAN_PAGE ? (uint32_t)left : CLI_SCAN_PAGE;
		uint64_t before = p.rows;
		rc = sh->be->ops->scan_page(sh->be, &page, print_kv, &p, &more,
					    &resume);
		if (rc != SISY_OK)
			break;
		uint64_t got = p.rows - before;
		/* A backend returning more than asked, or claiming more
		 * with an empty page, would break the bounds: stop. */
		if (got > page.limit || (more && got == 0)) {
			rc = sisy_errf(SISY_E_PROTO,
				       "the server answered a SCAN page with "
				       "%" PRIu64 " rows for a limit of %u",
				       got, page.limit);
			break;
		}
		left -= got;
		more = more && left > 0;
		page.resume_after = sisy_buf_slice(&resume);
		page.has_resume = true;
	}
	sisy_buf_free(&resume);
	if (rc != SISY_OK) {
		cli_out_abort(&sh->out);
		return rc;
	}
	return cli_out_end(&sh->out);
}

/* INFO's rows, or only those of one section ("engine" keeps engine.*). */
typedef struct info_print {
	kv_print p;
	sisy_slice section; /* empty: every row */
} info_print;

static sisy_err print_info_row(void *ctx, const cli_kv *kv)
{
	info_print *ip = ctx;
	size_t n = ip->section.len;
	if (n > 0 && (kv->key.len <= n || kv->key.data[n] != '.' ||
		      strncasecmp((const char *)kv->key.data,
				  (const char *)ip->section.data, n) != 0))
		return SISY_OK;
	return print_kv(&ip->p, kv);
}

static sisy_err do_info(cli_shell *sh, const cli_cmd *cmd)
{
	static const cli_col cols[] = {{"name", CLI_COL_TEXT},
				       {"value", CLI_COL_TEXT}};
	sisy_err rc = cli_out_begin(&sh->out, cols, 2);
	if (rc != SISY_OK)
		return rc;
	info_print p = {.p = {.sh = sh}};
	if (cmd->key.present)
		p.section = cmd->key.data;
	rc = sh->be->ops->info(sh->be, print_info_row, &p);
	if (rc != SISY_OK) {
		cli_out_abort(&sh->out);
		return rc;
	}
	return cli_out_end(&sh->out);
}

static sisy_err do_whoami(cli_shell *sh)
{
	static const cli_col cols[] = {{"user", CLI_COL_TEXT},
				       {"role", CLI_COL_TEXT},
				       {"node_id", CLI_COL_INT},
				       {"node_role", CLI_COL_TEXT}};
	cli_whoami w;
	memset(&w, 0, sizeof w);
	sisy_err rc = sh->be->ops->whoami(sh->be, &w);
	if (rc != SISY_OK)
		return rc;
	char id[24];
	snprintf(id, sizeof id, "%" PRIu64, w.node_id);
	sisy_slice cells[4] = {sisy_slice_str(w.user), sisy_slice_str(w.role),
			       sisy_slice_str(id), sisy_slice_str(w.node_role)};
	if ((rc = cli_out_begin(&sh->out, cols, 4)) != SISY_OK ||
	    (rc = cli_out_row(&sh->out, cells)) != SISY_OK)
		return rc;
	return cli_out_end(&sh->out);
}

/* ------------------------------------------------------------ writes */

static sisy_err queue_write(cli_shell *sh, const cli_cmd *cmd, sisy_slice key,
			    sisy_slice val)
{
	cli_batch *b = &sh->batch;
	if (b->n == CLI_BATCH_MAX_OPS)
		return sisy_errf(SISY_E_TOOBIG,
				 "a batch holds at most %u writes; COMMIT "
				 "this one and BEGIN another",
				 CLI_BATCH_MAX_OPS);
	if (key.len + val.len > CLI_BATCH_MAX_BYTES - b->bytes.len)
		return sisy_errf(SISY_E_TOOBIG,
				 "a batch holds at most %u bytes of keys and "
				 "values; COMMIT this one and BEGIN another",
				 CLI_BATCH_MAX_BYTES);
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		cli_batch_op *ops = realloc(b->ops, cap * sizeof *ops);
		if (ops == NULL)
			return sisy_errf(SISY_E_NOMEM, "exec.c: out of memory");
		b->ops = ops;
		b->cap = cap;
	}
	cli_batch_op op = {.del = cmd->kind == CLI_CMD_DEL,
			   .off = b->bytes.len,
			   .klen = key.len,
			   .vlen = val.len,
			   .cond = cmd->cond,
			   .cond_version = cmd->cond_version};
	sisy_err rc = sisy_buf_append(&b->bytes, key.data, key.len);
	if (rc == SISY_OK)
		rc = sisy_buf_append(&b->bytes, val.data, val.len);
	if (rc != SISY_OK) {
		b->bytes.len = op.off;
		return rc;
	}
	b->ops[b->n++] = op;
	return tag(sh, "QUEUED");
}

/* Says which condition failed, keeping the server's words. */
static sisy_err conflict(const cli_cmd *cmd, const char *name)
{
	char msg[256];
	snprintf(msg, sizeof msg, "%s", sisy_errmsg());
	if (cmd->cond == CLI_COND_ABSENT)
		return sisy_errf(SISY_E_CONFLICT,
				 "%s: the key exists (IF ABSENT); nothing was "
				 "written%s%s",
				 name, *msg ? ": " : "", msg);
	return sisy_errf(SISY_E_CONFLICT,
			 "%s: the key's version is not %" PRIu64
			 "; nothing was written%s%s",
			 name, cmd->cond_version, *msg ? ": " : "", msg);
}

static sisy_err do_write(cli_shell *sh, const cli_cmd *cmd)
{
	cli_write w = {.del = cmd->kind == CLI_CMD_DEL,
		       .cond = cmd->cond,
		       .cond_version = cmd->cond_version};
	sisy_err rc = resolve(sh, &cmd->key, &sh->scratch[0], &w.key);
	if (rc == SISY_OK && !w.del)
		rc = resolve(sh, &cmd->value, &sh->scratch[1], &w.value);
	if (rc != SISY_OK)
		return rc;
	if (sh->batch.open)
		return queue_write(sh, cmd, w.key, w.value);
	uint64_t version = 0;
	bool existed = false;
	rc = sh->be->ops->write(sh->be, &w, &version, &existed);
	if (rc == SISY_E_CONFLICT)
		return conflict(cmd, w.del ? "DEL" : "PUT");
	if (rc != SISY_OK)
		return rc;
	if (w.del)
		return tag(sh, "DEL %d", existed ? 1 : 0);
	return tag(sh, "PUT 1 VERSION %" PRIu64, version);
}

void shell_batch_clear(cli_shell *sh)
{
	sh->batch.open = false;
	sh->batch.n = 0;
	sh->batch.bytes.len = 0;
}

static sisy_err do_commit(cli_shell *sh)
{
	cli_batch *b = &sh->batch;
	if (!b->open)
		return sisy_errf(SISY_E_INVAL, "COMMIT without BEGIN");
	size_t n = b->n;
	if (n == 0) {
		shell_batch_clear(sh);
		return tag(sh, "COMMIT 0");
	}
	cli_write *ops = calloc(n, sizeof *ops);
	if (ops == NULL)
		return sisy_errf(SISY_E_NOMEM, "exec.c: out of memory");
	for (size_t i = 0; i < n; i++) {
		const cli_batch_op *op = &b->ops[i];
		ops[i].del = op->del;
		ops[i].key = sisy_slice_make(b->bytes.data + op->off, op->klen);
		ops[i].value = sisy_slice_make(
		    b->bytes.data + op->off + op->klen, op->vlen);
		ops[i].cond = op->cond;
		ops[i].cond_version = op->cond_version;
	}
	uint64_t version = 0;
	size_t failed = 0;
	sisy_err rc = sh->be->ops->batch(sh->be, ops, n, &version, &failed);
	if (rc == SISY_E_CONFLICT && failed < n) {
		char shown[64];
		cli_show(ops[failed].key, 40, shown, sizeof shown);
		char msg[256];
		snprintf(msg, sizeof msg, "%s", sisy_errmsg());
		rc = sisy_errf(rc,
			       "COMMIT: the condition of write %zu (%s %s) "
			       "did not hold; nothing was written%s%s",
			       failed + 1, ops[failed].del ? "DEL" : "PUT",
			       shown, *msg ? ": " : "", msg);
	}
	free(ops);
	/* A failed COMMIT ends the batch, as a failed transaction does. */
	shell_batch_clear(sh);
	if (rc != SISY_OK)
		return rc;
	return tag(sh, "COMMIT %zu VERSION %" PRIu64, n, version);
}

/* ------------------------------------------------------------- users */

static sisy_err ask_password(cli_shell *sh, const char *user, char *pw,
			     size_t cap)
{
	char prompt[320], again[CLI_PASSWORD_MAX + 1];
	if (sh->prompt_password == NULL)
		return sisy_errf(SISY_E_INVAL,
				 "give the password in the command: there is "
				 "no terminal to ask on");
	snprintf(prompt, sizeof prompt, "New password for %s: ", user);
	sisy_err rc = sh->prompt_password(sh->prompt_ctx, prompt, pw, cap);
	if (rc == SISY_OK)
		rc = sh->prompt_password(
		    sh->prompt_ctx, "Enter it again: ", again, sizeof again);
	if (rc == SISY_OK && strcmp(pw, again) != 0)
		rc = sisy_errf(SISY_E_INVAL, "the passwords did not match");
	if (rc == SISY_OK && pw[0] == '\0')
		rc = sisy_errf(SISY_E_INVAL, "the password is empty");
	explicit_bzero(again, sizeof again);
	return rc;
}

static sisy_err do_user(cli_shell *sh, const cli_cmd *cmd)
{
	char name[CLI_USER_MAX + 1] = "";
	char pw[CLI_PASSWORD_MAX + 1] = "";
	sisy_err rc = SISY_OK;
	if (cmd->key.present)
		rc = cstring(&cmd->key, "user name", CLI_USER_MAX, name);
	if (rc == SISY_OK && cmd->value.present)
		rc = cstring(&cmd->value, "password", CLI_PASSWORD_MAX, pw);
	if (rc != SISY_OK)
		goto out;
	bool need_pw =
	    cmd->kind == CLI_CMD_USER_ADD || cmd->kind == CLI_CMD_USER_PASSWORD;
	if (need_pw && !cmd->value.present) {
		cli_conn_desc d;
		memset(&d, 0, sizeof d);
		if (!cmd->key.present)
			sh->be->ops->describe(sh->be, &d);
		rc = ask_password(sh, cmd->key.present ? name : d.user, pw,
				  sizeof pw);
		if (rc != SISY_OK)
			goto out;
	}
	switch (cmd->kind) {
	case CLI_CMD_USER_ADD:
		rc = sh->be->ops->user_add(sh->be, name, cmd->role, pw);
		break;
	case CLI_CMD_USER_DEL:
		rc = sh->be->ops->user_del(sh->be, name);
		break;
	case CLI_CMD_USER_PASSWORD:
		rc = sh->be->ops->user_password(
		    sh->be, cmd->key.present ? name : NULL, pw);
		break;
	case CLI_CMD_USER_ROLE:
		rc = sh->be->ops->user_role(sh->be, name, cmd->role);
		break;
	default:
		assert(0);
	}
	if (rc == SISY_OK)
		rc = tag(sh, "%s", cli_cmd_name(cmd->kind));
out:
	explicit_bzero(pw, sizeof pw);
	return rc;
}

static sisy_err do_user_list(cli_shell *sh)
{
	static const cli_col cols[] = {{"user", CLI_COL_TEXT},
				       {"role", CLI_COL_TEXT}};
	sisy_err rc = cli_out_begin(&sh->out, cols, 2);
	if (rc != SISY_OK)
		return rc;
	kv_print p = {.sh = sh};
	rc = sh->be->ops->user_list(sh->be, print_kv, &p);
	if (rc != SISY_OK) {
		cli_out_abort(&sh->out);
		return rc;
	}
	return cli_out_end(&sh->out);
}

/* ----------------------------------------------------------- cluster */

static sisy_err print_node(void *ctx, const cli_node *n)
{
	cli_shell *sh = ctx;
	char id[24], term[24], commit[24], applied[24], lag[24];
	snprintf(id, sizeof id, "%" PRIu64, n->id);
	snprintf(term, sizeof term, "%" PRIu64, n->term);
	snprintf(commit, sizeof commit, "%" PRIu64, n->commit_index);
	snprintf(applied, sizeof applied, "%" PRIu64, n->applied_index);
	snprintf(lag, sizeof lag, "%" PRIu64, n->lag);
	sisy_slice cells[7] = {
	    sisy_slice_str(id),	     sisy_slice_str(n->address),
	    sisy_slice_str(n->role), sisy_slice_str(term),
	    sisy_slice_str(commit),  sisy_slice_str(applied),
	    sisy_slice_str(lag)};
	return cli_out_row(&sh->out, cells);
}

static sisy_err do_cluster(cli_shell *sh, const cli_cmd *cmd)
{
	static const cli_col node_cols[] = {
	    {"id", CLI_COL_INT},	   {"address", CLI_COL_TEXT},
	    {"role", CLI_COL_TEXT},	   {"term", CLI_COL_INT},
	    {"commit_index", CLI_COL_INT}, {"applied_index", CLI_COL_INT},
	    {"lag", CLI_COL_INT}};
	static const cli_col info_cols[] = {{"name", CLI_COL_TEXT},
					    {"value", CLI_COL_TEXT}};
	static const cli_col token_cols[] = {{"join_token", CLI_COL_TEXT}};
	const cli_backend_ops *ops = sh->be->ops;
	sisy_err rc;
	switch (cmd->kind) {
	case CLI_CMD_CLUSTER_INFO: {
		if ((rc = cli_out_begin(&sh->out, info_cols, 2)) != SISY_OK)
			return rc;
		kv_print p = {.sh = sh};
		rc = ops->cluster_info(sh->be, print_kv, &p);
		break;
	}
	case CLI_CMD_CLUSTER_NODES:
		if ((rc = cli_out_begin(&sh->out, node_cols, 7)) != SISY_OK)
			return rc;
		rc = ops->cluster_nodes(sh->be, print_node, sh);
		break;
	case CLI_CMD_CLUSTER_ADD_NODE: {
		char addr[CLI_HOSTNAME_MAX + 16];
		if ((rc = cstring(&cmd->key, "node address", sizeof addr - 1,
				  addr)) != SISY_OK)
			return rc;
		rc = ops->cluster_add_node(sh->be, addr, &sh->scratch[1]);
		if (rc != SISY_OK)
			return rc;
		sisy_slice tok = sisy_buf_slice(&sh->scratch[1]);
		if ((rc = cli_out_begin(&sh->out, token_cols, 1)) != SISY_OK)
			return rc;
		rc = cli_out_row(&sh->out, &tok);
		break;
	}
	case CLI_CMD_CLUSTER_REMOVE_NODE:
		rc = ops->cluster_remove_node(sh->be, cmd->node_id);
		return rc != SISY_OK ? rc : tag(sh, "CLUSTER REMOVE NODE");
	default:
		rc = ops->cluster_failover(sh->be, cmd->has_node_id,
					   cmd->node_id);
		return rc != SISY_OK ? rc : tag(sh, "CLUSTER FAILOVER");
	}
	if (rc != SISY_OK) {
		cli_out_abort(&sh->out);
		return rc;
	}
	return cli_out_end(&sh->out);
}

/* ------------------------------------------------------------ entry */

static sisy_err batch_cmd(cli_shell *sh, const cli_cmd *cmd)
{
	switch (cmd->kind) {
	case CLI_CMD_BEGIN:
		if (sh->batch.open)
			return sisy_errf(SISY_E_INVAL,
					 "a batch is already open; COMMIT or "
					 "ROLLBACK it first");
		shell_batch_clear(sh);
		sh->batch.open = true;
		return tag(sh, "BEGIN");
	case CLI_CMD_ROLLBACK:
		if (!sh->batch.open)
			cli_shell_warn(sh, "no batch is open (BEGIN)");
		shell_batch_clear(sh);
		return tag(sh, "ROLLBACK");
	default:
		return do_commit(sh);
	}
}

sisy_err shell_exec(cli_shell *sh, const cli_cmd *cmd)
{
	sisy_err rc;
	if (cmd->kind == CLI_CMD_BEGIN || cmd->kind == CLI_CMD_ROLLBACK)
		return batch_cmd(sh, cmd);
	if (sh->batch.open && !cli_cmd_is_write(cmd->kind) &&
	    cmd->kind != CLI_CMD_COMMIT)
		return sisy_errf(SISY_E_INVAL,
				 "%s inside a batch: only PUT and DEL can be "
				 "queued; COMMIT or ROLLBACK first",
				 cli_cmd_name(cmd->kind));
	if (sh->be == NULL)
		return not_connected();
	switch (cmd->kind) {
	case CLI_CMD_GET:
		rc = do_get(sh, cmd);
		break;
	case CLI_CMD_PUT:
	case CLI_CMD_DEL:
		rc = do_write(sh, cmd);
		break;
	case CLI_CMD_EXISTS:
		rc = do_exists(sh, cmd);
		break;
	case CLI_CMD_MGET:
		rc = do_mget(sh, cmd);
		break;
	case CLI_CMD_SCAN:
		rc = do_scan(sh, cmd);
		break;
	case CLI_CMD_COMMIT:
		rc = do_commit(sh);
		break;
	case CLI_CMD_PING:
		rc = sh->be->ops->ping(sh->be);
		if (rc == SISY_OK)
			rc = tag(sh, "PONG");
		break;
	case CLI_CMD_INFO:
		rc = do_info(sh, cmd);
		break;
	case CLI_CMD_WHOAMI:
		rc = do_whoami(sh);
		break;
	case CLI_CMD_USER_LIST:
		rc = do_user_list(sh);
		break;
	case CLI_CMD_USER_ADD:
	case CLI_CMD_USER_DEL:
	case CLI_CMD_USER_PASSWORD:
	case CLI_CMD_USER_ROLE:
		rc = do_user(sh, cmd);
		break;
	case CLI_CMD_CLUSTER_INFO:
	case CLI_CMD_CLUSTER_NODES:
	case CLI_CMD_CLUSTER_ADD_NODE:
	case CLI_CMD_CLUSTER_REMOVE_NODE:
	case CLI_CMD_CLUSTER_FAILOVER:
		rc = do_cluster(sh, cmd);
		break;
	default:
		assert(0 && "a parsed command without an executor");
		rc = sisy_errf(SISY_E_INTERNAL, "exec.c: unknown command");
		break;
	}
	return rc;
}
