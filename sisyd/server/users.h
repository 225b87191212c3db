/* users.h — the user table: name -> role + password verifier.
 *
 * A small interface on purpose: in the replicated cluster (issue 5) users
 * become replicated state (changed by applying log entries, carried in
 * snapshots) and only this file's implementation moves; callers keep
 * calling lookup/add/del/set_* from the apply path.
 *
 * Now: one text file DIR/users, rewritten atomically on every change
 * (temp + fsync + rename + dir fsync), mode 0600:
 *   # sisyd users v1
 *   <name> <role> <salt b64> <opslimit> <memlimit> <public key b64>
 * Thread-safe: lookups may run on the event loop while changes come from
 * the apply thread. At most SISY_USERS_MAX users.
 */
#ifndef SISY_SERVER_USERS_H
#define SISY_SERVER_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "auth.h"
#include "client.h"
#include "err.h"

#define SISY_USERS_MAX 10000

typedef struct sisy_users sisy_users;

typedef struct sisy_user {
	char name[SISY_AUTH_MAX_USER + 1];
	sisy_role role;
	sisy_auth_verifier v;
} sisy_user;

/* Loads DIR/users (missing: empty table). */
sisy_err sisy_users_open(const char *dir, sisy_users **out);
void sisy_users_close(sisy_users *u);

/* Copies the user out; false when there is none. */
bool sisy_users_lookup(sisy_users *u, const char *name, sisy_user *out);
/* SISY_E_EXISTS, SISY_E_INVAL (name, params), SISY_E_TOOBIG (table full). */
sisy_err sisy_users_add(sisy_users *u, const sisy_user *user);
/* SISY_E_NOTFOUND when absent; refuses to remove the last admin
 * (SISY_E_PERM), so a cluster can never lock itself out. */
sisy_err sisy_users_del(sisy_users *u, const char *name);
sisy_err sisy_users_set_role(sisy_users *u, const char *name, sisy_role r);
sisy_err sisy_users_set_verifier(sisy_users *u, const char *name,
				 const sisy_auth_verifier *v);
/* Calls fn for each user in name order. */
void sisy_users_list(sisy_users *u,
		     void (*fn)(void *ctx, const sisy_user *user), void *ctx);
size_t sisy_users_count(sisy_users *u);

#endif
