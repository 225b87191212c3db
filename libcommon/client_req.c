/* client_req.c — requests and replies of the blocking client (client.h):
 * sisy_req -> sisy.proto Request, Response -> sisy_reply, pipelining
 * bookkeeping and the typed helpers.
 *
 * A reply keeps the unpacked protobuf message alive and points into it;
 * sisy_reply_free releases both.
 */
#include "client_int.h"

#include <assert.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "bump.h"
#include "sisy.pb-c.h"
#include "wire.h"

/* A reply's unpacked Response lives in an arena inside it (then in
 * malloc'd chunks): one allocation for a usual reply, freed at once. */
#define REPLY_ARENA 384

typedef struct reply_impl {
	sisy_reply pub; /* first: sisy_reply_free casts back */
	Sisy__Response *resp;
	char *strings; /* INFO keys "section.name" */
	sisy_bump_chunk *chunks;
	size_t used; /* of arena, which comes last (not zeroed) */
	_Alignas(16) uint8_t arena[REPLY_ARENA];
} reply_impl;

static void *reply_alloc(void *ctx, size_t n)
{
	reply_impl *ri = ctx;
	return sisy_bump_alloc(ri->arena, REPLY_ARENA, &ri->used, &ri->chunks,
			       n);
}

static void reply_nofree(void *ctx, void *p)
{
	(void)ctx; /* freed with the reply */
	(void)p;
}

static ProtobufCBinaryData bin(sisy_slice s)
{
	ProtobufCBinaryData b = {s.len, (uint8_t *)s.data};
	return b;
}

static bool is_write(sisy_op op)
{
	return op == SISY_OP_PUT || op == SISY_OP_DEL || op == SISY_OP_BATCH ||
	       op == SISY_OP_USER_ADD || op == SISY_OP_USER_DEL ||
	       op == SISY_OP_USER_PASSWORD || op == SISY_OP_USER_ROLE;
}

static void set_cond(Sisy__Condition *pc, const sisy_cond *c,
		     Sisy__Condition **slot)
{
	sisy__condition__init(pc);
	switch (c->kind) {
	case SISY_COND_VERSION:
		pc->kind_case = SISY__CONDITION__KIND_IF_VERSION;
		pc->if_version = c->version;
		*slot = pc;
		break;
	case SISY_COND_ABSENT:
		pc->kind_case = SISY__CONDITION__KIND_IF_ABSENT;
		pc->if_absent = true;
		*slot = pc;
		break;
	default:
		*slot = NULL;
	}
}

static sisy_err check_key(sisy_slice k)
{
	if (k.len == 0)
		return sisy_errf(SISY_E_INVAL, "a key must not be empty");
	if (k.len > SISY_MAX_KEY)
		return sisy_errf(SISY_E_TOOBIG,
				 "key of %zu bytes exceeds the limit of %u",
				 k.len, SISY_MAX_KEY);
	return SISY_OK;
}

static sisy_err make_verifier(const char *password, Sisy__Verifier *v,
			      sisy_auth_verifier *av)
{
	if (password == NULL || strlen(password) > SISY_MAX_PASSWORD)
		return sisy_errf(SISY_E_INVAL,
				 "a password (at most %u bytes) is required",
				 SISY_MAX_PASSWORD);
	sisy_err rc = sisy_auth_make_verifier(password, av);
	if (rc != SISY_OK)
		return rc;
	sisy__verifier__init(v);
	v->salt.data = av->salt;
	v->salt.len = sizeof av->salt;
	v->opslimit = av->opslimit;
	v->memlimit = av->memlimit;
	v->alg = crypto_pwhash_ALG_ARGON2ID13;
	v->public_key.data = av->pk;
	v->public_key.len = sizeof av->pk;
	return SISY_OK;
}

/* Everything a Request may point at, on the caller's stack. */
typedef struct req_storage {
	Sisy__GetRequest get;
	Sisy__PutRequest put;
	Sisy__DelRequest del;
	Sisy__ExistsRequest exists;
	Sisy__MGetRequest mget;
	Sisy__ScanRequest scan;
	Sisy__ScanRange range;
	Sisy__PingRequest ping;
	Sisy__InfoRequest info;
	Sisy__WhoAmIRequest whoami;
	Sisy__BatchRequest batch;
	Sisy__UserAddRequest uadd;
	Sisy__UserDelRequest udel;
	Sisy__UserListRequest ulist;
	Sisy__UserPasswordRequest upw;
	Sisy__UserRoleRequest urole;
	Sisy__ClusterInfoRequest cinfo;
	Sisy__ClusterNodesRequest cnodes;
	Sisy__ClusterAddNodeRequest cadd;
	Sisy__ClusterRemoveNodeRequest cremove;
	Sisy__ClusterFailoverRequest cfailover;
	Sisy__Condition cond;
	Sisy__Verifier ver;
	sisy_auth_verifier av;
	ProtobufCBinaryData *keys;
	Sisy__BatchOp *bops;
	Sisy__BatchOp **bop_ptrs;
	Sisy__PutRequest *bputs;
	Sisy__DelRequest *bdels;
	Sisy__Condition *bconds;
} req_storage;

static void storage_free(req_storage *st)
{
	free(st->keys);
	free(st->bops);
	free(st->bop_ptrs);
	free(st->bputs);
	free(st->bdels);
	free(st->bconds);
}

static sisy_err build_batch(const sisy_req *r, req_storage *st)
{
	size_t n = r->nops;
	if (n == 0 || n > SISY_MAX_BATCH_OPS)
		return sisy_errf(SISY_E_INVAL,
				 "a batch holds 1 to %u operations, not %zu",
				 SISY_MAX_BATCH_OPS, n);
	st->bops = calloc(n, sizeof *st->bops);
	st->bop_ptrs = calloc(n, sizeof *st->bop_ptrs);
	st->bputs = calloc(n, sizeof *st->bputs);
	st->bdels = calloc(n, sizeof *st->bdels);
	st->bconds = calloc(n, sizeof *st->bconds);
	if (!st->bops || !st->bop_ptrs || !st->bputs || !st->bdels ||
	    !st->bconds)
		return sisy_errf(SISY_E_NOMEM, "client: out of memory");
	for (size_t i = 0; i < n; i++) {
		const sisy_batch_op *op = &r->ops[i];
		sisy_err rc = check_key(op->key);
		if (rc != SISY_OK)
			return rc;
		sisy__batch_op__init(&st->bops[i]);
		if (op->del) {
			sisy__del_request__init(&st->bdels[i]);
			st->bdels[i].key = bin(op->key);
			set_cond(&st->bconds[i], &op->cond, &st->bdels[i].cond);
			st->bops[i].op_case = SISY__BATCH_OP__OP_DEL;
			st->bops[i].del = &st->bdels[i];
		} else {
			if (op->value.len > SISY_MAX_VALUE)
				return sisy_errf(SISY_E_TOOBIG,
						 "value of %zu bytes exceeds "
						 "the limit of %u",
						 op->value.len, SISY_MAX_VALUE);
			sisy__put_request__init(&st->bputs[i]);
			st->bputs[i].key = bin(op->key);
			st->bputs[i].value = bin(op->value);
			set_cond(&st->bconds[i], &op->cond, &st->bputs[i].cond);
			st->bops[i].op_case = SISY__BATCH_OP__OP_PUT;
			st->bops[i].put = &st->bputs[i];
		}
		st->bop_ptrs[i] = &st->bops[i];
	}
	sisy__batch_request__init(&st->batch);
	st->batch.n_ops = n;
	st->batch.ops = st->bop_ptrs;
	return SISY_OK;
}

static sisy_err build(const sisy_req *r, Sisy__Request *m, req_storage *st)
{
	sisy_err rc = SISY_OK;
	switch (r->op) {
	case SISY_OP_PING:
		sisy__ping_request__init(&st->ping);
		st->ping.payload = bin(r->value);
		m->op_case = SISY__REQUEST__OP_PING;
		m->ping = &st->ping;
		break;
	case SISY_OP_GET:
		if ((rc = check_key(r->key)) != SISY_OK)
			return rc;
		sisy__get_request__init(&st->get);
		st->get.key = bin(r->key);
		st->get.with_version = r->with_version;
		m->op_case = SISY__REQUEST__OP_GET;
		m->get = &st->get;
		break;
	case SISY_OP_PUT:
		if ((rc = check_key(r->key)) != SISY_OK)
			return rc;
		if (r->value.len > SISY_MAX_VALUE)
			return sisy_errf(SISY_E_TOOBIG,
					 "value of %zu bytes exceeds the "
					 "limit of %u",
					 r->value.len, SISY_MAX_VALUE);
		sisy__put_request__init(&st->put);
		st->put.key = bin(r->key);
		st->put.value = bin(r->value);
		set_cond(&st->cond, &r->cond, &st->put.cond);
		m->op_case = SISY__REQUEST__OP_PUT;
		m->put = &st->put;
		break;
	case SISY_OP_DEL:
		if ((rc = check_key(r->key)) != SISY_OK)
			return rc;
		sisy__del_request__init(&st->del);
		st->del.key = bin(r->key);
		set_cond(&st->cond, &r->cond, &st->del.cond);
		m->op_case = SISY__REQUEST__OP_DEL;
		m->del = &st->del;
		break;
	case SISY_OP_EXISTS:
		if ((rc = check_key(r->key)) != SISY_OK)
			return rc;
		sisy__exists_request__init(&st->exists);
		st->exists.key = bin(r->key);
		m->op_case = SISY__REQUEST__OP_EXISTS;
		m->exists = &st->exists;
		break;
	case SISY_OP_MGET:
		if (r->nkeys == 0 || r->nkeys > SISY_MAX_MGET_KEYS)
			return sisy_errf(SISY_E_INVAL,
					 "MGET takes 1 to %u keys",
					 SISY_MAX_MGET_KEYS);
		st->keys = calloc(r->nkeys, sizeof *st->keys);
		if (st->keys == NULL)
			return sisy_errf(SISY_E_NOMEM, "out of memory");
		for (size_t i = 0; i < r->nkeys; i++) {
			if ((rc = check_key(r->keys[i])) != SISY_OK)
				return rc;
			st->keys[i] = bin(r->keys[i]);
		}
		sisy__mget_request__init(&st->mget);
		st->mget.n_keys = r->nkeys;
		st->mget.keys = st->keys;
		st->mget.with_version = r->with_version;
		m->op_case = SISY__REQUEST__OP_MGET;
		m->mget = &st->mget;
		break;
	case SISY_OP_SCAN:
		sisy__scan_request__init(&st->scan);
		if (r->scan_kind == SISY_SCAN_RANGE) {
			sisy__scan_range__init(&st->range);
			st->range.from = bin(r->from);
			st->range.to = bin(r->to);
			st->scan.range_case = SISY__SCAN_REQUEST__RANGE_BOUNDS;
			st->scan.bounds = &st->range;
		} else {
			st->scan.range_case = SISY__SCAN_REQUEST__RANGE_PREFIX;
			st->scan.prefix = bin(r->prefix);
		}
		st->scan.limit = r->limit;
		st->scan.resume_after = bin(r->resume_after);
		st->scan.with_version = r->with_version;
		st->scan.keys_only = r->keys_only;
		m->op_case = SISY__REQUEST__OP_SCAN;
		m->scan = &st->scan;
		break;
	case SISY_OP_INFO:
		sisy__info_request__init(&st->info);
		st->info.section =
		    (char *)(r->info_section ? r->info_section : "");
		m->op_case = SISY__REQUEST__OP_INFO;
		m->info = &st->info;
		break;
	case SISY_OP_WHOAMI:
		sisy__who_am_irequest__init(&st->whoami);
		m->op_case = SISY__REQUEST__OP_WHOAMI;
		m->whoami = &st->whoami;
		break;
	case SISY_OP_BATCH:
		if ((rc = build_batch(r, st)) != SISY_OK)
			return rc;
		m->op_case = SISY__REQUEST__OP_BATCH;
		m->batch = &st->batch;
		break;
	case SISY_OP_USER_ADD:
		if (r->user == NULL || !sisy_auth_user_valid(r->user))
			return sisy_errf(SISY_E_INVAL, "user names are 1-64 of "
						       "A-Z a-z 0-9 _ . @ -");
		if (r->role == SISY_ROLE_NONE)
			return sisy_errf(SISY_E_INVAL,
					 "a role is required (readonly, "
					 "readwrite, admin)");
		if ((rc = make_verifier(r->password, &st->ver, &st->av)) !=
		    SISY_OK)
			return rc;
		sisy__user_add_request__init(&st->uadd);
		st->uadd.name = (char *)r->user;
		st->uadd.role = (Sisy__Role)r->role;
		st->uadd.verifier = &st->ver;
		m->op_case = SISY__REQUEST__OP_USER_ADD;
		m->user_add = &st->uadd;
		break;
	case SISY_OP_USER_DEL:
		if (r->user == NULL)
			return sisy_errf(SISY_E_INVAL, "a user is required");
		sisy__user_del_request__init(&st->udel);
		st->udel.name = (char *)r->user;
		m->op_case = SISY__REQUEST__OP_USER_DEL;
		m->user_del = &st->udel;
		break;
	case SISY_OP_USER_LIST:
		sisy__user_list_request__init(&st->ulist);
		m->op_case = SISY__REQUEST__OP_USER_LIST;
		m->user_list = &st->ulist;
		break;
	case SISY_OP_USER_PASSWORD:
		if ((rc = make_verifier(r->password, &st->ver, &st->av)) !=
		    SISY_OK)
			return rc;
		sisy__user_password_request__init(&st->upw);
		st->upw.name = (char *)(r->user ? r->user : "");
		st->upw.verifier = &st->ver;
		m->op_case = SISY__REQUEST__OP_USER_PASSWORD;
		m->user_password = &st->upw;
		break;
	case SISY_OP_USER_ROLE:
		if (r->user == NULL || r->role == SISY_ROLE_NONE)
			return sisy_errf(SISY_E_INVAL,
					 "a user and a role are required");
		sisy__user_role_request__init(&st->urole);
		st->urole.name = (char *)r->user;
		st->urole.role = (Sisy__Role)r->role;
		m->op_case = SISY__REQUEST__OP_USER_ROLE;
		m->user_role = &st->urole;
		break;
	case SISY_OP_CLUSTER_INFO:
		sisy__cluster_info_request__init(&st->cinfo);
		m->op_case = SISY__REQUEST__OP_CLUSTER_INFO;
		m->cluster_info = &st->cinfo;
		break;
	case SISY_OP_CLUSTER_NODES:
		sisy__cluster_nodes_request__init(&st->cnodes);
		m->op_case = SISY__REQUEST__OP_CLUSTER_NODES;
		m->cluster_nodes = &st->cnodes;
		break;
	case SISY_OP_CLUSTER_ADD_NODE:
		if (r->address == NULL || r->address[0] == '\0' ||
		    strlen(r->address) > 255 || strchr(r->address, ':') == NULL)
			return sisy_errf(SISY_E_INVAL,
					 "CLUSTER ADD NODE needs the new "
					 "node's host:port");
		sisy__cluster_add_node_request__init(&st->cadd);
		st->cadd.address = (char *)r->address;
		m->op_case = SISY__REQUEST__OP_CLUSTER_ADD_NODE;
		m->cluster_add_node = &st->cadd;
		break;
	case SISY_OP_CLUSTER_REMOVE_NODE:
		if (r->node_id == 0)
			return sisy_errf(SISY_E_INVAL,
					 "CLUSTER REMOVE NODE needs a node id");
		sisy__cluster_remove_node_request__init(&st->cremove);
		st->cremove.node_id = r->node_id;
		m->op_case = SISY__REQUEST__OP_CLUSTER_REMOVE_NODE;
		m->cluster_remove_node = &st->cremove;
		break;
	case SISY_OP_CLUSTER_FAILOVER:
		sisy__cluster_failover_request__init(&st->cfailover);
		st->cfailover.to = r->node_id;
		m->op_case = SISY__REQUEST__OP_CLUSTER_FAILOVER;
		m->cluster_failover = &st->cfailover;
		break;
	default:
		return sisy_errf(SISY_E_INVAL, "unknown request op %d",
				 (int)r->op);
	}
	return SISY_OK;
}

static uint64_t lowest_unanswered(const sisy_client *c, uint64_t seq)
{
	uint64_t low = seq;
	for (size_t i = 0; i < c->pend_count; i++) {
		const client_pending *p =
		    &c->pend[(c->pend_head + i) % SISY_CLIENT_MAX_INFLIGHT];
		if (p->seq && p->seq < low)
			low = p->seq;
	}
	return low;
}

static void pack_request(const Sisy__Request *m, bool fast, uint8_t *out)
{
	if (fast)
		client_fast_encode(m, out);
	else
		sisy__request__pack(m, out);
}

/* Packs m (n bytes; by hand when fast) and queues it: into the pending
 * batch (version 2, sealed by the next flush, or now once it holds
 * SISY_BATCH_TARGET bytes or SISY_BATCH_MAX_MSGS requests), or as a frame
 * of its own (version 1). */
static sisy_err queue_request(sisy_client *c, const Sisy__Request *m, size_t n,
			      bool fast)
{
	sisy_err rc = SISY_OK;
	if (!c->batched) {
		if ((rc = sisy_buf_reserve(&c->plain, n)) != SISY_OK)
			return rc;
		pack_request(m, fast, c->plain.data);
		return client_queue_msg(c, c->plain.data, n);
	}
	if (c->batch_n > 0 &&
	    (c->batch_n == SISY_BATCH_MAX_MSGS ||
	     c->batch.len + SISY_BATCH_HDR_MAX + n > SISY_BATCH_TARGET) &&
	    (rc = client_seal_batch(c)) != SISY_OK)
		return rc;
	uint8_t *dst = sisy_batch_reserve(&c->batch, n);
	if (dst == NULL)
		return sisy_errf(SISY_E_NOMEM, "client.c: out of memory");
	pack_request(m, fast, dst);
	c->batch.len += n;
	c->batch_n++;
	if (c->batch.len >= SISY_BATCH_TARGET)
		rc = client_seal_batch(c);
	return rc;
}

sisy_err sisy_client_send(sisy_client *c, const sisy_req *r, uint64_t *id)
{
	req_storage st;
	memset(&st, 0, sizeof st);
	Sisy__Request m = SISY__REQUEST__INIT;
	sisy_err rc;
	if (c->dead)
		return sisy_errf(SISY_E_CONN,
				 "the connection to %s is gone; reconnect",
				 c->host);
	if (c->pend_count >= SISY_CLIENT_MAX_INFLIGHT)
		return sisy_errf(SISY_E_BUSY,
				 "%u requests in flight; receive replies first",
				 SISY_CLIENT_MAX_INFLIGHT);
	if ((rc = build(r, &m, &st)) != SISY_OK)
		goto done;
	m.id = c->next_id;
	m.consistency = (Sisy__Consistency)r->consistency;
	uint64_t seq = 0;
	if (is_write(r->op)) {
		seq = r->seq ? r->seq : c->next_seq;
		m.client_id = c->client_id;
		m.seq = seq;
		m.lowest_unanswered = lowest_unanswered(c, seq);
	}
	size_t n = client_fast_size(&m);
	bool fast = n > 0;
	if (!fast)
		n = sisy__request__get_packed_size(&m);
	if (n > SISY_FRAME_MAX - SISY_SEAL_OVERHEAD - 64) {
		rc = sisy_errf(SISY_E_TOOBIG,
			       "request of %zu bytes exceeds the frame limit "
			       "of %u",
			       n, SISY_FRAME_MAX);
		goto done;
	}
	if ((rc = queue_request(c, &m, n, fast)) != SISY_OK)
		goto done;
	client_pending *p =
	    &c->pend[(c->pend_head + c->pend_count) % SISY_CLIENT_MAX_INFLIGHT];
	p->id = m.id;
	p->seq = seq;
	p->op = r->op;
	c->pend_count++;
	c->next_id++;
	if (seq && seq >= c->next_seq)
		c->next_seq = seq + 1;
	if (id)
		*id = m.id;
	/* Keep the kernel busy without a syscall per request. */
	if (c->out.len >= 256 * 1024)
		rc = client_flush(c);
done:
	sodium_memzero(&st.av, sizeof st.av);
	storage_free(&st);
	return rc;
}

sisy_err sisy_client_flush(sisy_client *c)
{
	return client_flush(c);
}

static void fill_kv(sisy_kv *kv, const Sisy__KeyValue *e)
{
	kv->key = sisy_slice_make(e->key.data, e->key.len);
	kv->value = sisy_slice_make(e->value.data, e->value.len);
	kv->version = e->version;
	kv->found = e->found;
}

static sisy_err fill_nodes(sisy_reply *r, const Sisy__ClusterNodesResult *cn)
{
	if (cn->n_nodes == 0)
		return SISY_OK;
	r->nodes = calloc(cn->n_nodes, sizeof *r->nodes);
	if (r->nodes == NULL)
		return sisy_errf(SISY_E_NOMEM, "out of memory");
	r->nnodes = cn->n_nodes;
	for (size_t i = 0; i < cn->n_nodes; i++) {
		const Sisy__ClusterNode *n = cn->nodes[i];
		sisy_cluster_node *o = &r->nodes[i];
		o->id = n->id;
		o->address = n->address;
		o->role = n->role;
		o->term = n->term;
		o->commit_index = n->commit_index;
		o->applied_index = n->applied_index;
		o->lag = n->lag;
		o->voter = n->voter;
	}
	return SISY_OK;
}

static sisy_err fill_reply(reply_impl *ri)
{
	sisy_reply *r = &ri->pub;
	Sisy__Response *m = ri->resp;
	size_t n = 0;
	switch (m->result_case) {
	case SISY__RESPONSE__RESULT_GET:
		r->found = m->get->found;
		r->value =
		    sisy_slice_make(m->get->value.data, m->get->value.len);
		r->version = m->get->version;
		break;
	case SISY__RESPONSE__RESULT_WRITE:
		r->version = m->write->version ? m->write->version
					       : m->write->current_version;
		r->existed = m->write->existed;
		r->failed_op = m->write->failed_op;
		break;
	case SISY__RESPONSE__RESULT_EXISTS:
		r->found = m->exists->exists;
		break;
	case SISY__RESPONSE__RESULT_PING:
		r->value = sisy_slice_make(m->ping->payload.data,
					   m->ping->payload.len);
		break;
	case SISY__RESPONSE__RESULT_MGET:
		n = m->mget->n_entries;
		break;
	case SISY__RESPONSE__RESULT_SCAN:
		n = m->scan->n_entries;
		r->more = m->scan->more;
		r->resume_after = sisy_slice_make(m->scan->resume_after.data,
						  m->scan->resume_after.len);
		break;
	case SISY__RESPONSE__RESULT_INFO:
		n = m->info->n_entries;
		break;
	case SISY__RESPONSE__RESULT_CLUSTER_INFO:
		n = m->cluster_info->n_entries;
		break;
	case SISY__RESPONSE__RESULT_CLUSTER_ADD_NODE:
		r->value = sisy_slice_str(m->cluster_add_node->token);
		r->node_id = m->cluster_add_node->node_id;
		break;
	case SISY__RESPONSE__RESULT_CLUSTER_NODES:
		return fill_nodes(r, m->cluster_nodes);
	case SISY__RESPONSE__RESULT_USER_LIST:
		n = m->user_list->n_users;
		break;
	case SISY__RESPONSE__RESULT_WHOAMI:
		r->user = m->whoami->user;
		r->role = (sisy_role)m->whoami->role;
		r->node_id = m->whoami->node_id;
		r->node_role = m->whoami->node_role;
		break;
	default:
		break;
	}
	if (n == 0)
		return SISY_OK;
	r->entries = calloc(n, sizeof *r->entries);
	if (r->entries == NULL)
		return sisy_errf(SISY_E_NOMEM, "out of memory");
	r->nentries = n;
	if (m->result_case == SISY__RESPONSE__RESULT_MGET) {
		for (size_t i = 0; i < n; i++)
			fill_kv(&r->entries[i], m->mget->entries[i]);
	} else if (m->result_case == SISY__RESPONSE__RESULT_SCAN) {
		for (size_t i = 0; i < n; i++) {
			fill_kv(&r->entries[i], m->scan->entries[i]);
			r->entries[i].found = true;
		}
	} else if (m->result_case == SISY__RESPONSE__RESULT_USER_LIST) {
		for (size_t i = 0; i < n; i++) {
			const Sisy__UserInfo *u = m->user_list->users[i];
			const char *role = sisy_role_name((sisy_role)u->role);
			r->entries[i].key = sisy_slice_str(u->name);
			r->entries[i].value = sisy_slice_str(role);
			r->entries[i].found = true;
		}
	} else if (m->result_case == SISY__RESPONSE__RESULT_CLUSTER_INFO) {
		for (size_t i = 0; i < n; i++) {
			const Sisy__InfoEntry *e = m->cluster_info->entries[i];
			r->entries[i].key = sisy_slice_str(e->name);
			r->entries[i].value = sisy_slice_str(e->value);
			r->entries[i].found = true;
		}
	} else {
		size_t total = 0;
		for (size_t i = 0; i < n; i++)
			total += strlen(m->info->entries[i]->section) +
				 strlen(m->info->entries[i]->name) + 2;
		ri->strings = malloc(total + 1);
		if (ri->strings == NULL)
			return sisy_errf(SISY_E_NOMEM, "out of memory");
		char *p = ri->strings;
		for (size_t i = 0; i < n; i++) {
			const Sisy__InfoEntry *e = m->info->entries[i];
			int w = sprintf(p, "%s.%s", e->section, e->name);
			r->entries[i].key = sisy_slice_make(p, (size_t)w);
			r->entries[i].value = sisy_slice_str(e->value);
			r->entries[i].found = true;
			p += w + 1;
		}
	}
	return SISY_OK;
}

void sisy_reply_free(sisy_reply *r)
{
	if (r == NULL)
		return;
	reply_impl *ri = (reply_impl *)r;
	sisy_bump_free_chunks(&ri->chunks); /* ri->resp lived there */
	free(r->entries);
	free(r->nodes);
	free(ri->strings);
	free(ri);
}

/* Turns the message in c->msg into the reply to the oldest request. */
static sisy_err take_reply(sisy_client *c, sisy_reply **out)
{
	client_pending *p = &c->pend[c->pend_head];
	reply_impl *ri = malloc(sizeof *ri);
	if (ri == NULL)
		return client_fail(c, sisy_errf(SISY_E_NOMEM, "out of memory"));
	memset(ri, 0, offsetof(reply_impl, arena));
	ri->resp = client_fast_decode(reply_alloc, ri, c->msg);
	if (ri->resp == NULL) {
		ProtobufCAllocator a = {reply_alloc, reply_nofree, ri};
		ri->used = 0; /* a chunk taken stays until the reply goes */
		ri->resp = sisy__response__unpack(&a, c->msg.len, c->msg.data);
	}
	if (ri->resp == NULL || ri->resp->id != p->id) {
		sisy_reply_free(&ri->pub);
		return client_fail(c,
				   sisy_errf(SISY_E_PROTO,
					     "client.c: %s sent a reply that "
					     "is malformed or out of order",
					     c->host));
	}
	c->pend_head = (c->pend_head + 1) % SISY_CLIENT_MAX_INFLIGHT;
	c->pend_count--;
	sisy_reply *r = &ri->pub;
	r->id = p->id;
	r->op = p->op;
	r->seq = p->seq;
	r->status = (int)ri->resp->status;
	r->err = sisy_wire_status_err(r->status);
	r->message = ri->resp->message ? ri->resp->message : "";
	r->redirect = ri->resp->redirect && ri->resp->redirect->address
			  ? ri->resp->redirect->address
			  : "";
	sisy_err rc = fill_reply(ri);
	if (rc != SISY_OK) {
		sisy_reply_free(r);
		return client_fail(c, rc);
	}
	if (r->err == SISY_E_CLOSED)
		c->dead = true; /* the server ends this session after it */
	*out = r;
	return SISY_OK;
}

sisy_err sisy_client_recv(sisy_client *c, sisy_reply **out)
{
	*out = NULL;
	if (c->pend_count == 0)
		return sisy_errf(SISY_E_INVAL, "no request in flight");
	sisy_err rc = client_flush(c);
	if (rc != SISY_OK)
		return rc;
	if ((rc = client_read_msg(c)) != SISY_OK)
		return rc;
	return take_reply(c, out);
}

sisy_err sisy_client_try_recv(sisy_client *c, sisy_reply **out)
{
	*out = NULL;
	if (c->pend_count == 0)
		return sisy_errf(SISY_E_INVAL, "no request in flight");
	sisy_err rc = client_flush(c);
	if (rc != SISY_OK)
		return rc;
	if ((rc = client_try_msg(c)) != SISY_OK)
		return rc;
	return take_reply(c, out);
}

sisy_err sisy_client_call(sisy_client *c, const sisy_req *r, sisy_reply **out)
{
	*out = NULL;
	if (c->pend_count != 0)
		return sisy_errf(SISY_E_INVAL,
				 "sisy_client_call with replies pending");
	sisy_err rc = sisy_client_send(c, r, NULL);
	if (rc == SISY_OK)
		rc = sisy_client_recv(c, out);
	return rc;
}

/* A reply's own outcome, with its message attached for sisy_errmsg(). */
static sisy_err outcome(const sisy_reply *r)
{
	if (r->err == SISY_OK)
		return SISY_OK;
	return sisy_errf(r->err, "%s",
			 r->message[0] ? r->message : sisy_strerror(r->err));
}

sisy_err sisy_client_ping(sisy_client *c)
{
	sisy_req q = {.op = SISY_OP_PING};
	sisy_reply *r;
	sisy_err rc = sisy_client_call(c, &q, &r);
	if (rc == SISY_OK)
		rc = outcome(r);
	sisy_reply_free(r);
	return rc;
}

sisy_err sisy_client_get(sisy_client *c, sisy_slice key, sisy_buf *val,
			 bool *found, uint64_t *version)
{
	sisy_req q = {
	    .op = SISY_OP_GET, .key = key, .with_version = version != NULL};
	sisy_reply *r;
	sisy_err rc = sisy_client_call(c, &q, &r);
	if (rc == SISY_OK && (rc = outcome(r)) == SISY_OK) {
		*found = r->found;
		if (version)
			*version = r->version;
		if (val)
			rc = sisy_buf_set(val, r->value.data, r->value.len);
	}
	sisy_reply_free(r);
	return rc;
}

sisy_err sisy_client_put(sisy_client *c, sisy_slice key, sisy_slice val,
			 const sisy_cond *cond, uint64_t *version)
{
	sisy_req q = {.op = SISY_OP_PUT, .key = key, .value = val};
	if (cond)
		q.cond = *cond;
	sisy_reply *r;
	sisy_err rc = sisy_client_call(c, &q, &r);
	if (rc == SISY_OK) {
		rc = outcome(r);
		if (version)
			*version = r->version;
	}
	sisy_reply_free(r);
	return rc;
}

sisy_err sisy_client_del(sisy_client *c, sisy_slice key, const sisy_cond *cond,
			 bool *existed)
{
	sisy_req q = {.op = SISY_OP_DEL, .key = key};
	if (cond)
		q.cond = *cond;
	sisy_reply *r;
	sisy_err rc = sisy_client_call(c, &q, &r);
	if (rc == SISY_OK && (rc = outcome(r)) == SISY_OK && existed)
		*existed = r->existed;
	sisy_reply_free(r);
	return rc;
}

sisy_err sisy_client_exists(sisy_client *c, sisy_slice key, bool *exists)
{
	sisy_req q = {.op = SISY_OP_EXISTS, .key = key};
	sisy_reply *r;
	sisy_err rc = sisy_client_call(c, &q, &r);
	if (rc == SISY_OK && (rc = outcome(r)) == SISY_OK)
		*exists = r->found;
	sisy_reply_free(r);
	return rc;
}

sisy_err sisy_client_scan(sisy_client *c, const sisy_req *scan,
			  uint64_t total_limit, sisy_client_scan_fn fn,
			  void *ctx)
{
	sisy_req q = *scan;
	sisy_buf resume = {0};
	uint64_t seen = 0;
	sisy_err rc = SISY_OK;
	q.op = SISY_OP_SCAN;
	for (;;) {
		sisy_reply *r;
		if (total_limit) {
			uint64_t left = total_limit - seen;
			if (scan->limit == 0 || left < scan->limit)
				q.limit = left > UINT32_MAX ? UINT32_MAX
							    : (uint32_t)left;
		}
		if ((rc = sisy_client_call(c, &q, &r)) != SISY_OK)
			break;
		if ((rc = outcome(r)) != SISY_OK) {
			sisy_reply_free(r);
			break;
		}
		bool stop = false;
		for (size_t i = 0; i < r->nentries && !stop; i++) {
			if (!fn(ctx, &r->entries[i]))
				stop = true;
			else if (total_limit && ++seen >= total_limit)
				stop = true;
		}
		bool more = r->more && r->resume_after.len > 0;
		if (more)
			rc = sisy_buf_set(&resume, r->resume_after.data,
					  r->resume_after.len);
		sisy_reply_free(r);
		if (stop || !more || rc != SISY_OK)
			break;
		q.resume_after = sisy_buf_slice(&resume);
	}
	sisy_buf_free(&resume);
	return rc;
}
