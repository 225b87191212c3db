/* fake_backend.c — the in-memory backend of the shell's tests (see
 * fake_backend.h). */
#include "fake_backend.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static fake_backend *F(cli_backend *b)
{
	return (fake_backend *)b;
}

static size_t lower(const fake_backend *f, sisy_slice k)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (sisy_slice_cmp(sisy_buf_slice(&f->e[mid].key), k) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

const fake_entry *fake_find(const fake_backend *f, const void *k, size_t klen)
{
	sisy_slice key = sisy_slice_make(k, klen);
	size_t i = lower(f, key);
	if (i < f->n && sisy_slice_eq(sisy_buf_slice(&f->e[i].key), key))
		return &f->e[i];
	return NULL;
}

void fake_put(fake_backend *f, const void *k, size_t klen, const void *v,
	      size_t vlen)
{
	sisy_slice key = sisy_slice_make(k, klen);
	size_t i = lower(f, key);
	if (!(i < f->n && sisy_slice_eq(sisy_buf_slice(&f->e[i].key), key))) {
		if (f->n == f->cap) {
			f->cap = f->cap ? f->cap * 2 : 64;
			f->e = realloc(f->e, f->cap * sizeof *f->e);
			assert(f->e != NULL);
		}
		memmove(&f->e[i + 1], &f->e[i], (f->n - i) * sizeof *f->e);
		memset(&f->e[i], 0, sizeof f->e[i]);
		sisy_buf_set(&f->e[i].key, k, klen);
		f->n++;
	}
	sisy_buf_set(&f->e[i].value, v, vlen);
	/* A value buffer must never have a NULL base. */
	sisy_buf_reserve(&f->e[i].value, 1);
	f->e[i].version = ++f->version;
}

static void del_at(fake_backend *f, size_t i)
{
	sisy_buf_free(&f->e[i].key);
	sisy_buf_free(&f->e[i].value);
	memmove(&f->e[i], &f->e[i + 1], (f->n - i - 1) * sizeof *f->e);
	f->n--;
	f->version++;
}

/* Every operation starts here: injected faults. */
static sisy_err enter(fake_backend *f)
{
	f->calls++;
	if (f->lost)
		return sisy_errf(SISY_E_CONN, "fake: connection reset by peer");
	if (f->fail_next != SISY_OK) {
		if (f->fail_countdown > 0) {
			f->fail_countdown--;
			return SISY_OK;
		}
		sisy_err e = f->fail_next;
		f->fail_next = SISY_OK;
		if (e == SISY_E_CONN)
			f->lost = true;
		return sisy_errf(e, "fake: injected %s", sisy_errname(e));
	}
	return SISY_OK;
}

static sisy_err check_cond(fake_backend *f, const cli_write *w)
{
	const fake_entry *e = fake_find(f, w->key.data, w->key.len);
	if (w->cond == CLI_COND_ABSENT && e != NULL)
		return sisy_errf(SISY_E_CONFLICT, "key exists");
	if (w->cond == CLI_COND_VERSION &&
	    (e == NULL ? 0 : e->version) != w->cond_version)
		return sisy_errf(SISY_E_CONFLICT, "version is %llu",
				 (unsigned long long)(e ? e->version : 0));
	return SISY_OK;
}

static sisy_err apply(fake_backend *f, const cli_write *w, uint64_t *version,
		      bool *existed)
{
	f->writes++;
	const fake_entry *e = fake_find(f, w->key.data, w->key.len);
	if (existed)
		*existed = e != NULL;
	if (w->del) {
		if (e != NULL)
			del_at(f, (size_t)(e - f->e));
	} else {
		fake_put(f, w->key.data, w->key.len, w->value.data,
			 w->value.len);
	}
	if (version)
		*version = f->version;
	return SISY_OK;
}

static sisy_err f_get(cli_backend *b, sisy_slice key, bool stale, sisy_buf *val,
		      bool *found, uint64_t *version)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	if (rc != SISY_OK)
		return rc;
	const fake_entry *e = fake_find(f, key.data, key.len);
	*found = e != NULL;
	val->len = 0;
	if (e) {
		sisy_buf_set(val, e->value.data, e->value.len);
		*version = e->version;
	}
	return SISY_OK;
}

static sisy_err f_write(cli_backend *b, const cli_write *w, uint64_t *version,
			bool *existed)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	if (rc == SISY_OK)
		rc = check_cond(f, w);
	return rc != SISY_OK ? rc : apply(f, w, version, existed);
}

static sisy_err f_exists(cli_backend *b, sisy_slice key, bool stale,
			 bool *found)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	*found = rc == SISY_OK && fake_find(f, key.data, key.len) != NULL;
	return rc;
}

static sisy_err f_mget(cli_backend *b, const sisy_slice *keys, size_t n,
		       bool stale, cli_kv_fn fn, void *ctx)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	for (size_t i = 0; i < n && rc == SISY_OK; i++) {
		const fake_entry *e = fake_find(f, keys[i].data, keys[i].len);
		cli_kv kv = {.key = keys[i], .found = e != NULL};
		if (e) {
			kv.value = sisy_buf_slice(&e->value);
			kv.version = e->version;
		}
		rc = fn(ctx, &kv);
	}
	return rc;
}

static bool in_range(const cli_scan_page *p, sisy_slice k)
{
	if (p->mode == CLI_SCAN_PREFIX)
		return k.len >= p->prefix.len &&
		       (p->prefix.len == 0 ||
			memcmp(k.data, p->prefix.data, p->prefix.len) == 0);
	if (p->mode == CLI_SCAN_RANGE) {
		if (sisy_slice_cmp(k, p->from) < 0)
			return false;
		return p->to.len == 0 || sisy_slice_cmp(k, p->to) < 0;
	}
	return true;
}

static sisy_err f_scan_page(cli_backend *b, const cli_scan_page *p,
			    cli_kv_fn fn, void *ctx, bool *more,
			    sisy_buf *resume)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	if (rc != SISY_OK)
		return rc;
	assert(p->limit >= 1);
	f->scan_pages++;
	uint32_t max = p->limit < f->page_max ? p->limit : f->page_max;
	size_t i = 0;
	if (p->has_resume) {
		i = lower(f, p->resume_after);
		if (i < f->n && sisy_slice_eq(sisy_buf_slice(&f->e[i].key),
					      p->resume_after))
			i++;
	}
	uint32_t got = 0;
	*more = false;
	for (; i < f->n; i++) {
		sisy_slice k = sisy_buf_slice(&f->e[i].key);
		if (!in_range(p, k))
			continue;
		if (got == max) {
			*more = true;
			break;
		}
		cli_kv kv = {.key = k,
			     .value = sisy_buf_slice(&f->e[i].value),
			     .version = f->e[i].version,
			     .found = true};
		if ((rc = fn(ctx, &kv)) != SISY_OK)
			return rc;
		sisy_buf_set(resume, k.data, k.len);
		got++;
	}
	return SISY_OK;
}

static sisy_err f_batch(cli_backend *b, const cli_write *ops, size_t n,
			uint64_t *version, size_t *failed)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	if (rc != SISY_OK)
		return rc;
	f->batches++;
	for (size_t i = 0; i < n; i++) {
		if ((rc = check_cond(f, &ops[i])) != SISY_OK) {
			*failed = i;
			return rc;
		}
	}
	for (size_t i = 0; i < n; i++)
		apply(f, &ops[i], version, NULL);
	return SISY_OK;
}

static sisy_err f_ping(cli_backend *b)
{
	return enter(F(b));
}

static sisy_err f_info(cli_backend *b, cli_kv_fn fn, void *ctx)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	char keys[24];
	snprintf(keys, sizeof keys, "%zu", f->n);
	cli_kv rows[] = {
	    {.key = sisy_slice_str("server.version"),
	     .value = sisy_slice_str("fake-1")},
	    {.key = sisy_slice_str("engine.keys"),
	     .value = sisy_slice_str(keys)},
	};
	for (size_t i = 0; i < 2 && rc == SISY_OK; i++)
		rc = fn(ctx, &rows[i]);
	return rc;
}

static sisy_err f_whoami(cli_backend *b, cli_whoami *out)
{
	sisy_err rc = enter(F(b));
	snprintf(out->user, sizeof out->user, "admin");
	snprintf(out->role, sizeof out->role, "admin");
	out->node_id = 1;
	snprintf(out->node_role, sizeof out->node_role, "standalone");
	return rc;
}

static fake_user *find_user(fake_backend *f, const char *name)
{
	for (size_t i = 0; i < f->nusers; i++)
		if (strcmp(f->users[i].name, name) == 0)
			return &f->users[i];
	return NULL;
}

static sisy_err f_user_add(cli_backend *b, const char *name, cli_role role,
			   const char *pw)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	if (rc != SISY_OK)
		return rc;
	if (find_user(f, name))
		return sisy_errf(SISY_E_EXISTS, "user %s exists", name);
	assert(f->nusers < 16);
	fake_user *u = &f->users[f->nusers++];
	snprintf(u->name, sizeof u->name, "%s", name);
	snprintf(u->password, sizeof u->password, "%s", pw);
	u->role = role;
	return SISY_OK;
}

static sisy_err f_user_del(cli_backend *b, const char *name)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	if (rc != SISY_OK)
		return rc;
	fake_user *u = find_user(f, name);
	if (u == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "no user %s", name);
	*u = f->users[--f->nusers];
	return SISY_OK;
}

static sisy_err f_user_list(cli_backend *b, cli_kv_fn fn, void *ctx)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	for (size_t i = 0; i < f->nusers && rc == SISY_OK; i++) {
		cli_kv kv = {
		    .key = sisy_slice_str(f->users[i].name),
		    .value = sisy_slice_str(cli_role_name(f->users[i].role))};
		rc = fn(ctx, &kv);
	}
	return rc;
}

static sisy_err f_user_password(cli_backend *b, const char *name,
				const char *pw)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	if (rc != SISY_OK)
		return rc;
	fake_user *u = find_user(f, name ? name : "admin");
	if (u == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "no user");
	snprintf(u->password, sizeof u->password, "%s", pw);
	return SISY_OK;
}

static sisy_err f_user_role(cli_backend *b, const char *name, cli_role role)
{
	fake_backend *f = F(b);
	sisy_err rc = enter(f);
	if (rc != SISY_OK)
		return rc;
	fake_user *u = find_user(f, name);
	if (u == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "no user %s", name);
	u->role = role;
	return SISY_OK;
}

static bool f_has_cluster(cli_backend *b)
{
	return F(b)->cluster;
}

static sisy_err f_cluster_info(cli_backend *b, cli_kv_fn fn, void *ctx)
{
	sisy_err rc = enter(F(b));
	cli_kv kv = {.key = sisy_slice_str("cluster.nodes"),
		     .value = sisy_slice_str("3")};
	return rc != SISY_OK ? rc : fn(ctx, &kv);
}

static sisy_err f_cluster_nodes(cli_backend *b, cli_node_fn fn, void *ctx)
{
	sisy_err rc = enter(F(b));
	for (uint64_t i = 1; i <= 3 && rc == SISY_OK; i++) {
		cli_node n = {.id = i,
			      .term = 4,
			      .commit_index = 90,
			      .applied_index = 90 - i,
			      .lag = i - 1};
		snprintf(n.address, sizeof n.address, "127.0.0.1:%d",
			 7420 + (int)i);
		snprintf(n.role, sizeof n.role, "%s",
			 i == 2 ? "leader" : "follower");
		rc = fn(ctx, &n);
	}
	return rc;
}

static sisy_err f_cluster_add_node(cli_backend *b, const char *address,
				   sisy_buf *token)
{
	sisy_err rc = enter(F(b));
	if (rc == SISY_OK) {
		char t[320];
		snprintf(t, sizeof t, "join-token-for-%s", address);
		rc = sisy_buf_set(token, t, strlen(t));
	}
	return rc;
}

static sisy_err f_cluster_remove_node(cli_backend *b, uint64_t id)
{
	sisy_err rc = enter(F(b));
	if (rc == SISY_OK && (id == 0 || id > 3))
		rc = sisy_errf(SISY_E_NOTFOUND, "no node %llu",
			       (unsigned long long)id);
	return rc;
}

static sisy_err f_cluster_failover(cli_backend *b, bool has_to, uint64_t to)
{
	sisy_err rc = enter(F(b));
	if (rc == SISY_OK)
		F(b)->failover_to = has_to ? to : 0;
	return rc;
}

static sisy_err f_pipe_send(cli_backend *b, const cli_write *w)
{
	fake_backend *f = F(b);
	if (f->pipe_n == sizeof f->pipe_q / sizeof f->pipe_q[0])
		return SISY_E_BUSY;
	sisy_err rc = enter(f);
	if (rc == SISY_E_CONN)
		return rc;
	if (rc == SISY_OK)
		rc = check_cond(f, w);
	if (rc == SISY_OK)
		rc = apply(f, w, NULL, NULL);
	size_t cap = sizeof f->pipe_q / sizeof f->pipe_q[0];
	size_t slot = (f->pipe_head + f->pipe_n) % cap;
	f->pipe_q[slot] = rc;
	snprintf(f->pipe_msg[slot], sizeof f->pipe_msg[slot], "%s",
		 rc == SISY_OK ? "" : sisy_errmsg());
	f->pipe_n++;
	return SISY_OK;
}

static sisy_err f_pipe_recv(cli_backend *b, sisy_err *outcome)
{
	fake_backend *f = F(b);
	size_t cap = sizeof f->pipe_q / sizeof f->pipe_q[0];
	assert(f->pipe_n > 0);
	*outcome = f->pipe_q[f->pipe_head];
	if (*outcome != SISY_OK)
		sisy_errf(*outcome, "%s", f->pipe_msg[f->pipe_head]);
	f->pipe_head = (f->pipe_head + 1) % cap;
	f->pipe_n--;
	return SISY_OK;
}

static size_t f_pipe_inflight(cli_backend *b)
{
	return F(b)->pipe_n;
}

static sisy_err f_reconnect(cli_backend *b)
{
	fake_backend *f = F(b);
	f->reconnects++;
	if (f->reconnect_fails)
		return sisy_errf(SISY_E_CONN, "fake: connection refused");
	f->lost = false;
	return SISY_OK;
}

static bool f_connected(cli_backend *b)
{
	return !F(b)->lost;
}

static void f_describe(cli_backend *b, cli_conn_desc *d)
{
	(void)b;
	snprintf(d->user, sizeof d->user, "admin");
	snprintf(d->host, sizeof d->host, "127.0.0.1:7420");
	snprintf(d->node_role, sizeof d->node_role, "standalone");
	snprintf(d->fingerprint, sizeof d->fingerprint, "BLAKE2b:fake");
}

static void f_destroy(cli_backend *b)
{
	(void)b;
}

static const cli_backend_ops fake_ops = {
    .get = f_get,
    .write = f_write,
    .exists = f_exists,
    .mget = f_mget,
    .scan_page = f_scan_page,
    .batch = f_batch,
    .ping = f_ping,
    .info = f_info,
    .whoami = f_whoami,
    .user_add = f_user_add,
    .user_del = f_user_del,
    .user_list = f_user_list,
    .user_password = f_user_password,
    .user_role = f_user_role,
    .has_cluster = f_has_cluster,
    .cluster_info = f_cluster_info,
    .cluster_nodes = f_cluster_nodes,
    .cluster_add_node = f_cluster_add_node,
    .cluster_remove_node = f_cluster_remove_node,
    .cluster_failover = f_cluster_failover,
    .pipe_send = f_pipe_send,
    .pipe_recv = f_pipe_recv,
    .pipe_inflight = f_pipe_inflight,
    .reconnect = f_reconnect,
    .connected = f_connected,
    .describe = f_describe,
    .destroy = f_destroy,
};

void fake_init(fake_backend *f)
{
	memset(f, 0, sizeof *f);
	f->base.ops = &fake_ops;
	f->page_max = 1000;
}

void fake_free(fake_backend *f)
{
	for (size_t i = 0; i < f->n; i++) {
		sisy_buf_free(&f->e[i].key);
		sisy_buf_free(&f->e[i].value);
	}
	free(f->e);
	memset(f, 0, sizeof *f);
}
