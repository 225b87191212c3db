/* users.c — the replicated user table as the node keeps it in memory.
 *
 * The truth is in the meta group's engine (namespace 'u', written by the
 * apply thread in the same batch as the applied index); this sorted array
 * mirrors it so that logins on the event loop never touch the disk. The
 * apply thread changes it; any thread reads it; one mutex. Bounded by the
 * number of users the log created (the server caps USER ADD).
 */
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "node_int.h"

struct node_users {
	pthread_mutex_t mu;
	node_user *v;
	size_t n, cap;
};

node_users *node_users_new(void)
{
	node_users *u = calloc(1, sizeof *u);
	if (u != NULL)
		pthread_mutex_init(&u->mu, NULL);
	return u;
}

void node_users_free(node_users *u)
{
	if (u == NULL)
		return;
	pthread_mutex_destroy(&u->mu);
	free(u->v);
	free(u);
}

void node_users_clear(node_users *u)
{
	pthread_mutex_lock(&u->mu);
	u->n = 0;
	pthread_mutex_unlock(&u->mu);
}

/* Binary search; lock held. */
static bool find(const node_users *u, const char *name, size_t *pos)
{
	size_t lo = 0, hi = u->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(u->v[mid].name, name);
		if (c == 0) {
			*pos = mid;
			return true;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	return false;
}

bool node_users_get(node_users *u, const char *name, node_user *out)
{
	size_t pos;
	pthread_mutex_lock(&u->mu);
	bool ok = find(u, name, &pos);
	if (ok && out)
		*out = u->v[pos];
	pthread_mutex_unlock(&u->mu);
	return ok;
}

sisy_err node_users_put(node_users *u, const node_user *user)
{
	size_t pos;
	sisy_err rc = SISY_OK;
	pthread_mutex_lock(&u->mu);
	if (find(u, user->name, &pos)) {
		u->v[pos] = *user;
		goto out;
	}
	if (u->n == u->cap) {
		size_t cap = u->cap ? u->cap * 2 : 16;
		node_user *v = realloc(u->v, cap * sizeof *v);
		if (v == NULL) {
			rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
			goto out;
		}
		u->v = v;
		u->cap = cap;
	}
	memmove(u->v + pos + 1, u->v + pos, (u->n - pos) * sizeof *u->v);
	u->v[pos] = *user;
	u->n++;
out:
	pthread_mutex_unlock(&u->mu);
	return rc;
}

void node_users_del(node_users *u, const char *name)
{
	size_t pos;
	pthread_mutex_lock(&u->mu);
	if (find(u, name, &pos)) {
		memmove(u->v + pos, u->v + pos + 1,
			(u->n - pos - 1) * sizeof *u->v);
		u->n--;
	}
	pthread_mutex_unlock(&u->mu);
}

size_t node_users_count(node_users *u)
{
	pthread_mutex_lock(&u->mu);
	size_t n = u->n;
	pthread_mutex_unlock(&u->mu);
	return n;
}

size_t node_users_admins(node_users *u)
{
	size_t k = 0;
	pthread_mutex_lock(&u->mu);
	for (size_t i = 0; i < u->n; i++)
		k += u->v[i].role == SISY_ROLE_ADMIN;
	pthread_mutex_unlock(&u->mu);
	return k;
}

void node_users_each(node_users *u,
		     void (*fn)(void *ctx, const char *name, sisy_role role),
		     void *ctx)
{
	/* Copy first: fn may take its time or call back in. */
	pthread_mutex_lock(&u->mu);
	size_t n = u->n;
	node_user *copy = n ? malloc(n * sizeof *copy) : NULL;
	if (copy)
		memcpy(copy, u->v, n * sizeof *copy);
	pthread_mutex_unlock(&u->mu);
	for (size_t i = 0; copy && i < n; i++)
		fn(ctx, copy[i].name, copy[i].role);
	free(copy);
}

void node_user_encode(const node_user *u, uint8_t out[NODE_USER_REC])
{
	out[0] = 1;
	out[1] = (uint8_t)u->role;
	memcpy(out + 2, u->v.salt, SISY_AUTH_SALT);
	sisy_put_u64(out + 18, u->v.opslimit);
	sisy_put_u64(out + 26, u->v.memlimit);
	memcpy(out + 34, u->v.pk, SISY_AUTH_PK);
}

bool node_user_decode(const char *name, const uint8_t *p, size_t len,
		      node_user *out)
{
	if (len != NODE_USER_REC || p[0] != 1 || p[1] < SISY_ROLE_READONLY ||
	    p[1] > SISY_ROLE_ADMIN || strlen(name) > SISY_AUTH_MAX_USER)
		return false;
	memset(out, 0, sizeof *out);
	strcpy(out->name, name);
	out->role = (sisy_role)p[1];
	memcpy(out->v.salt, p + 2, SISY_AUTH_SALT);
	out->v.opslimit = sisy_get_u64(p + 18);
	out->v.memlimit = sisy_get_u64(p + 26);
	memcpy(out->v.pk, p + 34, SISY_AUTH_PK);
	return true;
}
