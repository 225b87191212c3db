/* users.c — the user table kept in DIR/users (users.h). The table is a
 * sorted array under a mutex; every change writes the whole file before it
 * becomes visible, so what a client was told is what a restart finds.
 */
#include "users.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "trust.h"

struct sisy_users {
	pthread_mutex_t mu;
	char path[4096];
	sisy_user *v;
	size_t n, cap;
};

static int find(const sisy_users *u, const char *name, size_t *pos)
{
	size_t lo = 0, hi = u->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(u->v[mid].name, name);
		if (c == 0) {
			*pos = mid;
			return 1;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return 0;
}

static sisy_err save(sisy_users *u, const sisy_user *v, size_t n)
{
	sisy_buf b = {0};
	char line[512], salt[40], pk[SISY_KEY_B64_LEN];
	sisy_err rc = sisy_buf_append(&b, "# sisyd users v1\n", 17);
	for (size_t i = 0; i < n && rc == SISY_OK; i++) {
		sisy_trust_b64(v[i].v.salt, sizeof v[i].v.salt, salt,
			       sizeof salt);
		sisy_trust_b64(v[i].v.pk, sizeof v[i].v.pk, pk, sizeof pk);
		int len = snprintf(line, sizeof line,
				   "%s %s %s %" PRIu64 " %" PRIu64 " %s\n",
				   v[i].name, sisy_role_name(v[i].role), salt,
				   v[i].v.opslimit, v[i].v.memlimit, pk);
		rc = sisy_buf_append(&b, line, (size_t)len);
	}
	if (rc == SISY_OK)
		rc = sisy_trust_write_file(u->path, b.data, b.len, 0600);
	sisy_buf_free(&b);
	return rc;
}

static sisy_err parse(sisy_users *u, char *data)
{
	char *save_p = NULL;
	int lineno = 0;
	for (char *line = strtok_r(data, "\n", &save_p); line;
	     line = strtok_r(NULL, "\n", &save_p)) {
		lineno++;
		if (line[0] == '#' || line[0] == '\0')
			continue;
		char name[128], role[32], salt[64], pk[64];
		sisy_user user;
		memset(&user, 0, sizeof user);
		if (sscanf(line, "%127s %31s %63s %" SCNu64 " %" SCNu64 " %63s",
			   name, role, salt, &user.v.opslimit, &user.v.memlimit,
			   pk) != 6 ||
		    !sisy_auth_user_valid(name) ||
		    (user.role = sisy_role_parse(role)) == SISY_ROLE_NONE ||
		    !sisy_trust_unb64(salt, user.v.salt, sizeof user.v.salt) ||
		    !sisy_trust_unb64(pk, user.v.pk, sizeof user.v.pk))
			return sisy_errf(SISY_E_CORRUPT,
					 "users.c: %s line %d is malformed",
					 u->path, lineno);
		memcpy(user.name, name, strlen(name) + 1); /* valid: <= 64 */
		size_t pos;
		if (find(u, name, &pos))
			return sisy_errf(SISY_E_CORRUPT,
					 "users.c: %s: user %s twice", u->path,
					 name);
		if (u->n >= SISY_USERS_MAX)
			return sisy_errf(SISY_E_TOOBIG,
					 "users.c: %s: too many users",
					 u->path);
		if (u->n == u->cap) {
			size_t cap = u->cap ? u->cap * 2 : 16;
			sisy_user *nv = realloc(u->v, cap * sizeof *nv);
			if (nv == NULL)
				return sisy_errf(SISY_E_NOMEM, "users.c: oom");
			u->v = nv;
			u->cap = cap;
		}
		memmove(&u->v[pos + 1], &u->v[pos],
			(u->n - pos) * sizeof *u->v);
		u->v[pos] = user;
		u->n++;
	}
	return SISY_OK;
}

sisy_err sisy_users_open(const char *dir, sisy_users **out)
{
	sisy_users *u = calloc(1, sizeof *u);
	char *data = NULL;
	if (u == NULL)
		return sisy_errf(SISY_E_NOMEM, "users.c: out of memory");
	pthread_mutex_init(&u->mu, NULL);
	snprintf(u->path, sizeof u->path, "%s/users", dir);
	sisy_err rc =
	    sisy_trust_read_file(u->path, 4u * 1024 * 1024, &data, NULL);
	if (rc == SISY_E_NOTFOUND)
		rc = SISY_OK;
	else if (rc == SISY_OK)
		rc = parse(u, data);
	free(data);
	if (rc != SISY_OK) {
		sisy_users_close(u);
		return rc;
	}
	*out = u;
	return SISY_OK;
}

void sisy_users_close(sisy_users *u)
{
	if (u == NULL)
		return;
	pthread_mutex_destroy(&u->mu);
	free(u->v);
	free(u);
}

bool sisy_users_lookup(sisy_users *u, const char *name, sisy_user *out)
{
	size_t pos;
	pthread_mutex_lock(&u->mu);
	int f = find(u, name, &pos);
	if (f)
		*out = u->v[pos];
	pthread_mutex_unlock(&u->mu);
	return f;
}

size_t sisy_users_count(sisy_users *u)
{
	pthread_mutex_lock(&u->mu);
	size_t n = u->n;
	pthread_mutex_unlock(&u->mu);
	return n;
}

static size_t admins(const sisy_users *u)
{
	size_t n = 0;
	for (size_t i = 0; i < u->n; i++)
		n += u->v[i].role == SISY_ROLE_ADMIN;
	return n;
}

/* Writes the table as it would be after a change, then commits it in
 * memory: `next` is a full copy. */
static sisy_err commit(sisy_users *u, sisy_user *next, size_t n)
{
	sisy_err rc = save(u, next, n);
	if (rc != SISY_OK) {
		free(next);
		return rc;
	}
	free(u->v);
	u->v = next;
	u->n = n;
	u->cap = n ? n : 0;
	return SISY_OK;
}

static sisy_user *copy_table(const sisy_users *u, size_t extra)
{
	sisy_user *c = malloc((u->n + extra + 1) * sizeof *c);
	if (c && u->n)
		memcpy(c, u->v, u->n * sizeof *c);
	return c;
}

sisy_err sisy_users_add(sisy_users *u, const sisy_user *user)
{
	if (!sisy_auth_user_valid(user->name) || user->role == SISY_ROLE_NONE ||
	    user->role > SISY_ROLE_ADMIN ||
	    !sisy_auth_params_valid(user->v.opslimit, user->v.memlimit))
		return sisy_errf(SISY_E_INVAL,
				 "users.c: bad user name, role or password "
				 "cost");
	size_t pos;
	sisy_err rc;
	pthread_mutex_lock(&u->mu);
	if (find(u, user->name, &pos)) {
		rc = sisy_errf(SISY_E_EXISTS, "user %s already exists",
			       user->name);
	} else if (u->n >= SISY_USERS_MAX) {
		rc = sisy_errf(SISY_E_TOOBIG, "at most %d users",
			       SISY_USERS_MAX);
	} else {
		sisy_user *next = copy_table(u, 1);
		if (next == NULL) {
			rc = sisy_errf(SISY_E_NOMEM, "users.c: oom");
		} else {
			memmove(&next[pos + 1], &next[pos],
				(u->n - pos) * sizeof *next);
			next[pos] = *user;
			rc = commit(u, next, u->n + 1);
		}
	}
	pthread_mutex_unlock(&u->mu);
	return rc;
}

sisy_err sisy_users_del(sisy_users *u, const char *name)
{
	size_t pos;
	sisy_err rc;
	pthread_mutex_lock(&u->mu);
	if (!find(u, name, &pos)) {
		rc = sisy_errf(SISY_E_NOTFOUND, "no user %s", name);
	} else if (u->v[pos].role == SISY_ROLE_ADMIN && admins(u) == 1) {
		rc = sisy_errf(SISY_E_PERM,
			       "%s is the last admin; add another admin first",
			       name);
	} else {
		sisy_user *next = copy_table(u, 0);
		if (next == NULL) {
			rc = sisy_errf(SISY_E_NOMEM, "users.c: oom");
		} else {
			memmove(&next[pos], &next[pos + 1],
				(u->n - pos - 1) * sizeof *next);
			rc = commit(u, next, u->n - 1);
		}
	}
	pthread_mutex_unlock(&u->mu);
	return rc;
}

sisy_err sisy_users_set_role(sisy_users *u, const char *name, sisy_role r)
{
	size_t pos;
	sisy_err rc;
	if (r == SISY_ROLE_NONE || r > SISY_ROLE_ADMIN)
		return sisy_errf(SISY_E_INVAL, "bad role");
	pthread_mutex_lock(&u->mu);
	if (!find(u, name, &pos)) {
		rc = sisy_errf(SISY_E_NOTFOUND, "no user %s", name);
	} else if (u->v[pos].role == SISY_ROLE_ADMIN && r != SISY_ROLE_ADMIN &&
		   admins(u) == 1) {
		rc = sisy_errf(SISY_E_PERM,
			       "%s is the last admin; add another admin first",
			       name);
	} else {
		sisy_user *next = copy_table(u, 0);
		if (next == NULL) {
			rc = sisy_errf(SISY_E_NOMEM, "users.c: oom");
		} else {
			next[pos].role = r;
			rc = commit(u, next, u->n);
		}
	}
	pthread_mutex_unlock(&u->mu);
	return rc;
}

sisy_err sisy_users_set_verifier(sisy_users *u, const char *name,
				 const sisy_auth_verifier *v)
{
	size_t pos;
	sisy_err rc;
	if (!sisy_auth_params_valid(v->opslimit, v->memlimit))
		return sisy_errf(SISY_E_INVAL,
				 "the password cost is below the minimum");
	pthread_mutex_lock(&u->mu);
	if (!find(u, name, &pos)) {
		rc = sisy_errf(SISY_E_NOTFOUND, "no user %s", name);
	} else {
		sisy_user *next = copy_table(u, 0);
		if (next == NULL) {
			rc = sisy_errf(SISY_E_NOMEM, "users.c: oom");
		} else {
			next[pos].v = *v;
			rc = commit(u, next, u->n);
		}
	}
	pthread_mutex_unlock(&u->mu);
	return rc;
}

void sisy_users_list(sisy_users *u,
		     void (*fn)(void *ctx, const sisy_user *user), void *ctx)
{
	pthread_mutex_lock(&u->mu);
	for (size_t i = 0; i < u->n; i++)
		fn(ctx, &u->v[i]);
	pthread_mutex_unlock(&u->mu);
}
