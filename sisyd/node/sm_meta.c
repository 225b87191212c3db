/* sm_meta.c — the state machine's non-KV commands: users, the cluster
 * record, join tokens and membership (apply thread).
 *
 * Records (engine keys in namespace 'm', 't', 'u'; integers LE):
 *   'm' "cluster"   | u8 version 1 | cluster_id[16] | u64 next_node_id |
 *   'm' "members"   | u8 version 1 | u8 n | n x (u64 id | u8 voter |
 *                   key[32] | u8 alen | address) |
 *   't' hash[32]    | u8 version 1 | u64 node_id | u64 created_index |
 *                   u8 used | key[32] | u8 alen | address |
 *   'u' name        users.c
 * Node ids are handed out from next_node_id (the bootstrap node's id + 1
 * first), so no two joins ever get the same id, whichever leader serves
 * them. A token is valid once, for token_expire_entries log entries.
 *
 * Role checks happen here, where the command executes (also when a
 * follower proxied it): the issuing user's role in the replicated table at
 * this point of the log. The node itself (empty user) acts as admin. Only
 * the meta group checks: it is the group whose log orders user changes.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "coding.h"
#include "node_int.h"

static const char KEY_CLUSTER[] = "mcluster";
static const char KEY_MEMBERS[] = "mmembers";

#define TOKEN_REC_MIN ((size_t)(1 + 8 + 8 + 1 + 32 + 1))
#define MAX_USERS     10000

/* ---- records ---------------------------------------------------------------
 */

static sisy_err get_rec(node_sm *sm, const void *k, size_t kl, sisy_buf *v,
			bool *found)
{
	sisy_err rc = sisy_lsm_get(sm->db, NULL, k, kl, v);
	*found = rc == SISY_OK;
	return rc == SISY_E_NOTFOUND ? SISY_OK : rc;
}

static bool members_decode(const uint8_t *p, size_t len, node_members *m)
{
	const uint8_t *end = p + len;
	memset(m, 0, sizeof *m);
	if (len < 2 || p[0] != 1 || p[1] > SISY_RAFT_MAX_NODES)
		return false;
	size_t n = p[1];
	p += 2;
	for (size_t i = 0; i < n; i++) {
		node_member_rec *r = &m->m[i];
		if (end - p < 8 + 1 + SISY_NODE_KEY + 1)
			return false;
		r->id = sisy_get_u64(p);
		r->voter = p[8] != 0;
		memcpy(r->key, p + 9, SISY_NODE_KEY);
		size_t alen = p[9 + SISY_NODE_KEY];
		p += 10 + SISY_NODE_KEY;
		if ((size_t)(end - p) < alen)
			return false;
		memcpy(r->address, p, alen);
		r->address[alen] = '\0';
		p += alen;
	}
	m->n = n;
	return p == end;
}

sisy_err node_sm_save_members(node_sm *sm)
{
	sisy_buf b = {0};
	sisy_err rc = sisy_buf_append_u8(&b, 1);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u8(&b, (uint8_t)sm->members.n);
	for (size_t i = 0; i < sm->members.n && rc == SISY_OK; i++) {
		const node_member_rec *r = &sm->members.m[i];
		size_t alen = strlen(r->address);
		if ((rc = sisy_buf_append_u64(&b, r->id)) == SISY_OK &&
		    (rc = sisy_buf_append_u8(&b, r->voter)) == SISY_OK &&
		    (rc = sisy_buf_append(&b, r->key, SISY_NODE_KEY)) ==
			SISY_OK &&
		    (rc = sisy_buf_append_u8(&b, (uint8_t)alen)) == SISY_OK)
			rc = sisy_buf_append(&b, r->address, alen);
	}
	if (rc == SISY_OK)
		rc = sisy_lsm_batch_put(sm->batch, KEY_MEMBERS,
					sizeof KEY_MEMBERS - 1, b.data, b.len);
	sisy_buf_free(&b);
	return rc;
}

static sisy_err save_cluster(node_sm *sm)
{
	uint8_t v[1 + SISY_NODE_CLUSTER_ID + 8];
	v[0] = 1;
	memcpy(v + 1, sm->cluster.cluster_id, SISY_NODE_CLUSTER_ID);
	sisy_put_u64(v + 1 + SISY_NODE_CLUSTER_ID, sm->cluster.next_node_id);
	return sisy_lsm_batch_put(sm->batch, KEY_CLUSTER,
				  sizeof KEY_CLUSTER - 1, v, sizeof v);
}

sisy_err node_sm_load_meta(node_sm *sm)
{
	sisy_buf v = {0};
	bool found;
	memset(&sm->cluster, 0, sizeof sm->cluster);
	memset(&sm->members, 0, sizeof sm->members);
	sisy_err rc =
	    get_rec(sm, KEY_CLUSTER, sizeof KEY_CLUSTER - 1, &v, &found);
	if (rc == SISY_OK && found) {
		if (v.len != 1 + SISY_NODE_CLUSTER_ID + 8 || v.data[0] != 1)
			rc = SISY_E_CORRUPT;
		else {
			sm->cluster.set = true;
			memcpy(sm->cluster.cluster_id, v.data + 1,
			       SISY_NODE_CLUSTER_ID);
			sm->cluster.next_node_id =
			    sisy_get_u64(v.data + 1 + SISY_NODE_CLUSTER_ID);
		}
	}
	if (rc == SISY_OK)
		rc = get_rec(sm, KEY_MEMBERS, sizeof KEY_MEMBERS - 1, &v,
			     &found);
	if (rc == SISY_OK && found &&
	    !members_decode(v.data, v.len, &sm->members))
		rc = SISY_E_CORRUPT;
	if (rc == SISY_E_CORRUPT)
		rc = sisy_errf(rc, "node: %s/%s: a malformed cluster record",
			       sm->gdir, sm->dbname);
	sisy_buf_free(&v);
	return rc;
}

/* ---- users -----------------------------------------------------------------
 */

sisy_role node_sm_role_of(node_sm *sm, const char *user)
{
	node_user u;
	if (user == NULL || user[0] == '\0')
		return SISY_ROLE_ADMIN;
	if (sm->users == NULL || !node_users_get(sm->users, user, &u))
		return SISY_ROLE_NONE;
	return u.role;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > SISY_AUTH_MAX_USER)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '@' || c == '-'))
			return false;
	}
	return true;
}

static bool verifier_ok(const sisy_auth_verifier *v)
{
	return v->opslimit >= SISY_AUTH_OPS_MIN &&
	       v->opslimit <= SISY_AUTH_OPS_MAX &&
	       v->memlimit >= SISY_AUTH_MEM_MIN &&
	       v->memlimit <= SISY_AUTH_MEM_MAX;
}

static sisy_err put_user(node_sm *sm, const node_user *u)
{
	uint8_t k[1 + SISY_AUTH_MAX_USER], v[NODE_USER_REC];
	size_t n = strlen(u->name);
	k[0] = NS_USER;
	memcpy(k + 1, u->name, n);
	node_user_encode(u, v);
	sisy_err rc = sisy_lsm_batch_put(sm->batch, k, 1 + n, v, sizeof v);
	if (rc == SISY_OK)
		rc = node_users_put(sm->users, u);
	return rc;
}

static sisy_err del_user(node_sm *sm, const char *name)
{
	uint8_t k[1 + SISY_AUTH_MAX_USER];
	size_t n = strlen(name);
	k[0] = NS_USER;
	memcpy(k + 1, name, n);
	sisy_err rc = sisy_lsm_batch_delete(sm->batch, k, 1 + n);
	if (rc == SISY_OK)
		node_users_del(sm->users, name);
	return rc;
}

static sisy_err event(sisy_buf *events, const char *name)
{
	return sisy_buf_append(events, name, strlen(name) + 1);
}

static sisy_err user_cmd(node_sm *sm, const node_cmd_view *v,
			 sisy_node_result *res, sisy_buf *events)
{
	node_user u;
	sisy_err rc;
	bool exists = node_users_get(sm->users, v->name, &u);
	sisy_role who = node_sm_role_of(sm, v->user);
	bool self = strcmp(v->user, v->name) == 0;
	if (who < SISY_ROLE_ADMIN &&
	    !(v->kind == SISY_NODE_CMD_USER_PASSWORD && self && exists)) {
		res->status = SISY_E_PERM;
		return SISY_OK;
	}
	if (!name_ok(v->name)) {
		res->status = SISY_E_INVAL;
		return SISY_OK;
	}
	if (v->kind != SISY_NODE_CMD_USER_ADD && !exists) {
		res->status = SISY_E_NOTFOUND;
		return SISY_OK;
	}
	bool last_admin = exists && u.role == SISY_ROLE_ADMIN &&
			  node_users_admins(sm->users) == 1;
	switch (v->kind) {
	case SISY_NODE_CMD_USER_ADD:
		if (exists)
			res->status = SISY_E_EXISTS;
		else if (v->role < SISY_ROLE_READONLY ||
			 v->role > SISY_ROLE_ADMIN ||
			 !verifier_ok(&v->verifier))
			res->status = SISY_E_INVAL;
		else if (node_users_count(sm->users) >= MAX_USERS)
			res->status = SISY_E_TOOBIG;
		if (res->status != SISY_OK)
			return SISY_OK;
		memset(&u, 0, sizeof u);
		strcpy(u.name, v->name);
		u.role = (sisy_role)v->role;
		u.v = v->verifier;
		return put_user(sm, &u);
	case SISY_NODE_CMD_USER_DEL:
		if (last_admin) {
			res->status = SISY_E_PERM;
			return SISY_OK;
		}
		res->existed = true;
		rc = del_user(sm, v->name);
		return rc == SISY_OK ? event(events, v->name) : rc;
	case SISY_NODE_CMD_USER_ROLE:
		if (v->role < SISY_ROLE_READONLY || v->role > SISY_ROLE_ADMIN) {
			res->status = SISY_E_INVAL;
			return SISY_OK;
		}
		if (last_admin && v->role != SISY_ROLE_ADMIN) {
			res->status = SISY_E_PERM;
			return SISY_OK;
		}
		u.role = (sisy_role)v->role;
		rc = put_user(sm, &u);
		return rc == SISY_OK ? event(events, v->name) : rc;
	default: /* USER_PASSWORD */
		if (!verifier_ok(&v->verifier)) {
			res->status = SISY_E_INVAL;
			return SISY_OK;
		}
		u.v = v->verifier;
		return put_user(sm, &u);
	}
}

/* ---- cluster record and tokens
 * ------------------------------------------------ */

static sisy_err init_cmd(node_sm *sm, const node_cmd_view *v,
			 sisy_node_result *res)
{
	if (sm->cluster.set) {
		res->status = SISY_E_EXISTS;
		return SISY_OK;
	}
	sm->cluster.set = true;
	memcpy(sm->cluster.cluster_id, v->cluster_id, SISY_NODE_CLUSTER_ID);
	sm->cluster.next_node_id = v->node_id + 1;
	sisy_err rc = save_cluster(sm);
	if (rc != SISY_OK || sm->users == NULL || v->name[0] == '\0')
		return rc;
	node_user u;
	memset(&u, 0, sizeof u);
	snprintf(u.name, sizeof u.name, "%s", v->name);
	u.role = SISY_ROLE_ADMIN;
	u.v = v->verifier;
	return put_user(sm, &u);
}

typedef struct token_rec {
	uint64_t node_id, created;
	bool used;
	uint8_t key[SISY_NODE_KEY];
	char address[SISY_NODE_MAX_ADDR + 1];
} token_rec;

static sisy_err put_token(node_sm *sm, const uint8_t hash[32],
			  const token_rec *t)
{
	uint8_t k[33];
	sisy_buf b = {0};
	size_t alen = strlen(t->address);
	k[0] = NS_TOKEN;
	memcpy(k + 1, hash, 32);
	sisy_err rc = sisy_buf_append_u8(&b, 1);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(&b, t->node_id);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(&b, t->created);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u8(&b, t->used);
	if (rc == SISY_OK)
		rc = sisy_buf_append(&b, t->key, SISY_NODE_KEY);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u8(&b, (uint8_t)alen);
	if (rc == SISY_OK)
		rc = sisy_buf_append(&b, t->address, alen);
	if (rc == SISY_OK)
		rc = sisy_lsm_batch_put(sm->batch, k, sizeof k, b.data, b.len);
	sisy_buf_free(&b);
	return rc;
}

static sisy_err get_token(node_sm *sm, const uint8_t hash[32], token_rec *t,
			  bool *found)
{
	uint8_t k[33];
	sisy_buf v = {0};
	k[0] = NS_TOKEN;
	memcpy(k + 1, hash, 32);
	sisy_err rc = get_rec(sm, k, sizeof k, &v, found);
	if (rc == SISY_OK && *found) {
		const uint8_t *p = v.data;
		if (v.len < TOKEN_REC_MIN || p[0] != 1 ||
		    v.len != TOKEN_REC_MIN + p[TOKEN_REC_MIN - 1]) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "node: a malformed join token record");
		} else {
			memset(t, 0, sizeof *t);
			t->node_id = sisy_get_u64(p + 1);
			t->created = sisy_get_u64(p + 9);
			t->used = p[17] != 0;
			memcpy(t->key, p + 18, SISY_NODE_KEY);
			memcpy(t->address, p + TOKEN_REC_MIN,
			       p[TOKEN_REC_MIN - 1]);
		}
	}
	sisy_buf_free(&v);
	return rc;
}

static sisy_err token_cmd(node_sm *sm, const sisy_raft_entry *e,
			  const node_cmd_view *v, sisy_node_result *res)
{
	token_rec t;
	bool found;
	sisy_err rc = get_token(sm, v->token_hash, &t, &found);
	if (rc != SISY_OK)
		return rc;
	if (!sm->cluster.set) {
		res->status = SISY_E_INVAL;
		return SISY_OK;
	}
	if (v->kind == SISY_NODE_CMD_TOKEN_NEW) {
		if (node_sm_role_of(sm, v->user) < SISY_ROLE_ADMIN) {
			res->status = SISY_E_PERM;
			return SISY_OK;
		}
		if (found) {
			res->status = SISY_E_EXISTS;
			return SISY_OK;
		}
		memset(&t, 0, sizeof t);
		t.node_id = sm->cluster.next_node_id++;
		t.created = e->index;
		snprintf(t.address, sizeof t.address, "%s", v->address);
		res->node_id = t.node_id;
		if ((rc = save_cluster(sm)) == SISY_OK)
			rc = put_token(sm, v->token_hash, &t);
		return rc;
	}
	/* TOKEN_CLAIM */
	if (!found) {
		res->status = SISY_E_NOTFOUND;
		return SISY_OK;
	}
	res->node_id = t.node_id;
	if (t.used && memcmp(t.key, v->node_key, SISY_NODE_KEY) == 0) {
		return SISY_OK; /* the same node asking again */
	}
	if (t.used || e->index - t.created > sm->cfg.token_expire_entries) {
		res->status = SISY_E_PERM;
		return SISY_OK;
	}
	t.used = true;
	memcpy(t.key, v->node_key, SISY_NODE_KEY);
	return put_token(sm, v->token_hash, &t);
}

sisy_err node_sm_apply_meta(node_sm *sm, const sisy_raft_entry *e,
			    const node_cmd_view *v, sisy_node_result *res,
			    sisy_buf *events)
{
	bool meta = sm->cfg.group == SISY_NODE_META_GROUP && sm->users;
	switch (v->kind) {
	case SISY_NODE_CMD_USER_ADD:
	case SISY_NODE_CMD_USER_DEL:
	case SISY_NODE_CMD_USER_ROLE:
	case SISY_NODE_CMD_USER_PASSWORD:
		if (!meta)
			break;
		return user_cmd(sm, v, res, events);
	case NODE_CMD_INIT:
		return init_cmd(sm, v, res);
	case SISY_NODE_CMD_TOKEN_NEW:
	case SISY_NODE_CMD_TOKEN_CLAIM:
		if (!meta)
			break;
		return token_cmd(sm, e, v, res);
	default:
		break;
	}
	res->status = SISY_E_INVAL;
	return SISY_OK;
}

/* ---- membership
 * ----------------------------------------------------------------- */

static const node_member_rec *member_find(const node_members *m, uint64_t id)
{
	for (size_t i = 0; i < m->n; i++)
		if (m->m[i].id == id)
			return &m->m[i];
	return NULL;
}

static void member_add(node_members *out, const node_members *old,
		       const sisy_raft_conf_change *cc, uint64_t id, bool voter)
{
	node_member_rec *r = &out->m[out->n++];
	const node_member_rec *was = member_find(old, id);
	memset(r, 0, sizeof *r);
	if (was)
		*r = *was;
	r->id = id;
	r->voter = voter;
	if (cc->node_id == id && cc->type != SISY_RAFT_CONF_REMOVE) {
		char addr[SISY_NODE_MAX_ADDR + 1];
		uint8_t key[SISY_NODE_KEY];
		if (node_conf_ctx_decode(cc->ctx, addr, sizeof addr, key)) {
			memcpy(r->address, addr, sizeof r->address);
			memcpy(r->key, key, SISY_NODE_KEY);
		}
	}
}

sisy_err node_sm_apply_config(node_sm *sm, const sisy_raft_entry *e,
			      sisy_node_result *res)
{
	sisy_raft_conf_change cc;
	sisy_raft_membership after;
	sisy_err rc = sisy_raft_conf_decode(sisy_slice_make(e->data, e->len),
					    &cc, &after);
	if (rc != SISY_OK)
		return sisy_errf(rc,
				 "node: group %" PRIu64 " entry %" PRIu64
				 ": a malformed config entry",
				 sm->cfg.group, e->index);
	node_members next;
	memset(&next, 0, sizeof next);
	for (uint32_t i = 0; i < after.n_voters; i++)
		member_add(&next, &sm->members, &cc, after.voters[i], true);
	for (uint32_t i = 0; i < after.n_learners; i++)
		member_add(&next, &sm->members, &cc, after.learners[i], false);
	sm->members = next;
	res->index = e->index;
	res->node_id = cc.node_id;
	return node_sm_save_members(sm);
}
