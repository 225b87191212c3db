/* cmd.c — byte layouts the node writes into the Raft log and the engine.
 *
 * All integers little endian unless marked BE; varints are LEB128.
 *
 * NORMAL entry data (a command), version 1:
 *   u8  version (1)    u8 kind (sisy_node_cmd_kind, or 6 = INIT)
 *   u64 client_id      u64 seq      u64 lowest_unanswered
 *   u8  user_len       user[user_len]      (the issuing user; 0: the node)
 *   body, by kind:
 *     KV             varint nops (1..NODE_MAX_OPS), then per op:
 *                    u8 flags (bit 0 delete, bits 1-2 condition:
 *                    0 none, 1 version, 2 absent), [varint cond_version
 *                    if condition 1], varint klen, key, [varint vlen,
 *                    value unless delete]
 *     USER_ADD       u8 nlen name, u8 role, verifier
 *     USER_DEL       u8 nlen name
 *     USER_ROLE      u8 nlen name, u8 role
 *     USER_PASSWORD  u8 nlen name, verifier
 *     INIT           cluster_id[16], u64 node_id, u8 nlen name (the first
 *                    admin), verifier
 *     TOKEN_NEW      token_hash[32] (BLAKE2b-256 of the secret: the secret
 *                    never enters the log), u8 alen address
 *     TOKEN_CLAIM    token_hash[32], node_key[32]
 *   verifier = salt[16] u64 opslimit u64 memlimit pk[32]
 *
 * Raft log payload of any entry: | u8 raft entry type | entry data |
 * (the log itself stores opaque bytes).
 *
 * Result (the exactly-once window, NODE_RESULT_LEN bytes):
 *   u8 version (1) u8 status (sisy_err) u64 index u32 failed_op
 *   u64 current_version u8 existed u64 node_id
 *
 * Config entry context (opaque to the Raft core):
 *   u8 version (1) key[32] address bytes (0..SISY_NODE_MAX_ADDR)
 */
#include <assert.h>
#include <stddef.h>
#include <string.h>

#include <sodium.h>

#include "coding.h"
#include "node_int.h"

#define CMD_VERSION 1

static sisy_err put_str8(sisy_buf *b, const char *s, size_t max)
{
	size_t len = s ? strlen(s) : 0;
	if (len > max || len > 255)
		return sisy_errf(SISY_E_TOOBIG,
				 "node: a name of %zu bytes; the limit is %zu",
				 len, max);
	sisy_err rc = sisy_buf_append_u8(b, (uint8_t)len);
	if (rc == SISY_OK && len)
		rc = sisy_buf_append(b, s, len);
	return rc;
}

static sisy_err put_verifier(sisy_buf *b, const sisy_auth_verifier *v)
{
	sisy_err rc = sisy_buf_append(b, v->salt, SISY_AUTH_SALT);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(b, v->opslimit);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(b, v->memlimit);
	if (rc == SISY_OK)
		rc = sisy_buf_append(b, v->pk, SISY_AUTH_PK);
	return rc;
}

static sisy_err put_header(sisy_buf *b, uint8_t kind, uint64_t client_id,
			   uint64_t seq, uint64_t lowest, const char *user)
{
	sisy_err rc = sisy_buf_append_u8(b, CMD_VERSION);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u8(b, kind);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(b, client_id);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(b, seq);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(b, lowest);
	if (rc == SISY_OK)
		rc = put_str8(b, user, SISY_AUTH_MAX_USER);
	return rc;
}

/* The size of a KV command's body, its ops checked first: nothing is
 * written for a command that is refused. */
static sisy_err ops_size(const sisy_node_op *ops, size_t n, size_t *out)
{
	if (n == 0 || n > NODE_MAX_OPS)
		return sisy_errf(
		    SISY_E_INVAL,
		    "node: a write needs 1..%u operations, not %zu",
		    NODE_MAX_OPS, n);
	size_t size = sisy_varint_len(n);
	for (size_t i = 0; i < n; i++) {
		const sisy_node_op *op = &ops[i];
		if (op->key.len == 0 || op->key.len > SISY_NODE_MAX_KEY)
			return sisy_errf(SISY_E_TOOBIG,
					 "node: a key of %zu bytes; keys have "
					 "1..%u bytes",
					 op->key.len, SISY_NODE_MAX_KEY);
		if (op->cond > SISY_NODE_COND_ABSENT)
			return sisy_errf(SISY_E_INVAL, "node: bad condition");
		size += 1 + sisy_varint_len(op->key.len) + op->key.len;
		if (op->cond == SISY_NODE_COND_VERSION)
			size += sisy_varint_len(op->cond_version);
		if (!op->del)
			size += sisy_varint_len(op->value.len) + op->value.len;
	}
	*out = size;
	return SISY_OK;
}

/* A KV command (the hot path of every write): sized and checked first, then
 * written in place in one reservation. The bytes are put_header's and the
 * layout's above, exactly (test_node_cmd checks them against a reference
 * encoder). */
static sisy_err encode_kv(const sisy_node_cmd *c, sisy_buf *out)
{
	size_t ulen = c->user ? strlen(c->user) : 0, body = 0;
	if (ulen > SISY_AUTH_MAX_USER)
		return sisy_errf(SISY_E_TOOBIG,
				 "node: a name of %zu bytes; the limit is %d",
				 ulen, SISY_AUTH_MAX_USER);
	sisy_err rc = ops_size(c->ops, c->nops, &body);
	size_t size = 2 + 24 + 1 + ulen + body;
	if (rc == SISY_OK && out->cap - out->len < size) /* else room */
		rc = sisy_buf_reserve(out, size);
	if (rc != SISY_OK)
		return rc;
	uint8_t *p = out->data + out->len;
	*p++ = CMD_VERSION;
	*p++ = SISY_NODE_CMD_KV;
	sisy_put_u64(p, c->client_id);
	sisy_put_u64(p + 8, c->seq);
	sisy_put_u64(p + 16, c->lowest_unanswered);
	p += 24;
	*p++ = (uint8_t)ulen;
	if (ulen) {
		memcpy(p, c->user, ulen);
		p += ulen;
	}
	p += sisy_put_varint64(p, c->nops);
	for (size_t i = 0; i < c->nops; i++) {
		const sisy_node_op *op = &c->ops[i];
		*p++ = (uint8_t)((op->del ? 1 : 0) | (op->cond << 1));
		if (op->cond == SISY_NODE_COND_VERSION)
			p += sisy_put_varint64(p, op->cond_version);
		p += sisy_put_varint64(p, op->key.len);
		memcpy(p, op->key.data, op->key.len);
		p += op->key.len;
		if (!op->del) {
			p += sisy_put_varint64(p, op->value.len);
			if (op->value.len)
				memcpy(p, op->value.data, op->value.len);
			p += op->value.len;
		}
	}
	assert(p == out->data + out->len + size);
	out->len += size;
	return SISY_OK;
}

void node_token_hash(const uint8_t token[SISY_NODE_TOKEN], uint8_t out[32])
{
	static const char ctx[] = "sisy-join-token-v1";
	crypto_generichash(out, 32, token, SISY_NODE_TOKEN,
			   (const uint8_t *)ctx, sizeof ctx - 1);
}

/* Every command but KV (out of line: node_cmd_encode, called for every
 * write, needs none of its stack). */
static __attribute__((noinline)) sisy_err encode_other(const sisy_node_cmd *c,
						       sisy_buf *out)
{
	uint8_t hash[32];
	sisy_err rc = put_header(out, c->kind, c->client_id, c->seq,
				 c->lowest_unanswered, c->user);
	if (rc != SISY_OK)
		return rc;
	switch (c->kind) {
	case SISY_NODE_CMD_USER_ADD:
		if ((rc = put_str8(out, c->name, SISY_AUTH_MAX_USER)) ==
			SISY_OK &&
		    (rc = sisy_buf_append_u8(out, (uint8_t)c->role)) == SISY_OK)
			rc = put_verifier(out, &c->verifier);
		return rc;
	case SISY_NODE_CMD_USER_DEL:
		return put_str8(out, c->name, SISY_AUTH_MAX_USER);
	case SISY_NODE_CMD_USER_ROLE:
		if ((rc = put_str8(out, c->name, SISY_AUTH_MAX_USER)) ==
		    SISY_OK)
			rc = sisy_buf_append_u8(out, (uint8_t)c->role);
		return rc;
	case SISY_NODE_CMD_USER_PASSWORD:
		if ((rc = put_str8(out, c->name, SISY_AUTH_MAX_USER)) ==
		    SISY_OK)
			rc = put_verifier(out, &c->verifier);
		return rc;
	case SISY_NODE_CMD_TOKEN_NEW:
		node_token_hash(c->token, hash);
		if ((rc = sisy_buf_append(out, hash, 32)) == SISY_OK)
			rc = put_str8(out, c->address, SISY_NODE_MAX_ADDR);
		return rc;
	case SISY_NODE_CMD_TOKEN_CLAIM:
		node_token_hash(c->token, hash);
		if ((rc = sisy_buf_append(out, hash, 32)) == SISY_OK)
			rc = sisy_buf_append(out, c->node_key, SISY_NODE_KEY);
		return rc;
	default:
		return sisy_errf(SISY_E_INVAL, "node: unknown command kind %u",
				 c->kind);
	}
}

sisy_err node_cmd_encode(const sisy_node_cmd *c, sisy_buf *out)
{
	if (c->kind == SISY_NODE_CMD_KV)
		return encode_kv(c, out);
	return encode_other(c, out);
}

sisy_err node_cmd_encode_init(const sisy_node_init *in, sisy_buf *out)
{
	sisy_err rc = put_header(out, NODE_CMD_INIT, 0, 0, 0, NULL);
	if (rc == SISY_OK)
		rc = sisy_buf_append(out, in->cluster_id, SISY_NODE_CLUSTER_ID);
	if (rc == SISY_OK)
		rc = sisy_buf_append_u64(out, in->node_id);
	if (rc == SISY_OK)
		rc = put_str8(out, in->admin_user, SISY_AUTH_MAX_USER);
	if (rc == SISY_OK)
		rc = put_verifier(out, &in->admin_verifier);
	return rc;
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct rd {
	const uint8_t *p, *end;
	bool bad;
} rd;

static const uint8_t *take(rd *r, size_t n)
{
	if (r->bad || (size_t)(r->end - r->p) < n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *q = r->p;
	r->p += n;
	return q;
}

static uint8_t get8(rd *r)
{
	const uint8_t *q = take(r, 1);
	return q ? *q : 0;
}

static uint64_t get64(rd *r)
{
	const uint8_t *q = take(r, 8);
	return q ? sisy_get_u64(q) : 0;
}

static void get_str8(rd *r, char *out, size_t cap)
{
	size_t len = get8(r);
	const uint8_t *q = take(r, len);
	if (q == NULL || len >= cap) {
		r->bad = true;
		out[0] = '\0';
		return;
	}
	memcpy(out, q, len);
	out[len] = '\0';
	if (memchr(out, '\0', len) != NULL)
		r->bad = true;
}

static void get_bytes(rd *r, uint8_t *out, size_t n)
{
	const uint8_t *q = take(r, n);
	if (q)
		memcpy(out, q, n);
}

static void get_verifier(rd *r, sisy_auth_verifier *v)
{
	get_bytes(r, v->salt, SISY_AUTH_SALT);
	v->opslimit = get64(r);
	v->memlimit = get64(r);
	get_bytes(r, v->pk, SISY_AUTH_PK);
}

/* sisy_get_varint64 with the one-byte case first: counts and lengths
 * below 128 (a command's op count, a short key's or value's length) are
 * most of what a KV command holds. */
static inline const uint8_t *get_varint(const uint8_t *p, const uint8_t *end,
					uint64_t *v)
{
	if (p < end && *p < 0x80) {
		*v = *p;
		return p + 1;
	}
	return sisy_get_varint64(p, end, v);
}

/* One op of a KV body from [*pp, end); false when malformed. */
static bool get_op(const uint8_t **pp, const uint8_t *end, sisy_node_op *op)
{
	const uint8_t *p = *pp;
	uint64_t kl, vl = 0;
	if (p == end || *p > 7 || ((*p >> 1) & 3) > SISY_NODE_COND_ABSENT)
		return false;
	op->del = *p & 1;
	op->cond = (*p++ >> 1) & 3;
	op->cond_version = 0;
	if (op->cond == SISY_NODE_COND_VERSION &&
	    (p = sisy_get_varint64(p, end, &op->cond_version)) == NULL)
		return false;
	if ((p = get_varint(p, end, &kl)) == NULL || kl == 0 ||
	    kl > SISY_NODE_MAX_KEY || kl > (uint64_t)(end - p))
		return false;
	op->key = sisy_slice_make(p, kl);
	p += kl;
	if (op->del) {
		op->value = sisy_slice_make(NULL, 0);
	} else {
		if ((p = get_varint(p, end, &vl)) == NULL ||
		    vl > (uint64_t)(end - p))
			return false;
		op->value = sisy_slice_make(p, vl);
		p += vl;
	}
	*pp = p;
	return true;
}

/* A KV command after its version and kind bytes, straight through the
 * bytes (the apply path decodes every write): header, user, ops; the
 * whole input must be consumed. Fills what the view holds for KV. */
static sisy_err decode_kv(const uint8_t *p, const uint8_t *end,
			  node_cmd_view *v)
{
	uint64_t n;
	v->ops = NULL;
	v->nops = 0;
	if (end - p < 25)
		return SISY_E_CORRUPT;
	v->client_id = sisy_get_u64(p);
	v->seq = sisy_get_u64(p + 8);
	v->lowest = sisy_get_u64(p + 16);
	size_t ulen = p[24];
	p += 25;
	if (ulen > SISY_AUTH_MAX_USER || ulen > (size_t)(end - p))
		return SISY_E_CORRUPT;
	memcpy(v->user, p, ulen);
	v->user[ulen] = '\0';
	if (strlen(v->user) != ulen) /* a NUL inside the name */
		return SISY_E_CORRUPT;
	p += ulen;
	if ((p = get_varint(p, end, &n)) == NULL || n == 0 ||
	    n > NODE_MAX_OPS || n > (uint64_t)(end - p))
		return SISY_E_CORRUPT;
	if (n == 1) { /* the common case, without an allocation */
		v->ops = &v->one;
	} else if ((v->ops = calloc(n, sizeof *v->ops)) == NULL) {
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	}
	v->nops = n;
	for (size_t i = 0; i < n; i++)
		if (!get_op(&p, end, &v->ops[i]))
			return SISY_E_CORRUPT;
	return p == end ? SISY_OK : SISY_E_CORRUPT;
}

sisy_err node_cmd_decode(sisy_slice data, node_cmd_view *v)
{
	rd r = {data.data, data.data + data.len, false};
	sisy_err rc = SISY_OK;
	if (data.len >= 2 && data.data[0] == CMD_VERSION &&
	    data.data[1] == SISY_NODE_CMD_KV) {
		v->kind = SISY_NODE_CMD_KV;
		rc = decode_kv(data.data + 2, r.end, v);
		goto done;
	}
	memset(v, 0, offsetof(node_cmd_view, name));
	if (get8(&r) != CMD_VERSION)
		return sisy_errf(SISY_E_CORRUPT,
				 "node: a command of an unknown version");
	v->kind = get8(&r);
	memset(v->name, 0, sizeof *v - offsetof(node_cmd_view, name));
	v->client_id = get64(&r);
	v->seq = get64(&r);
	v->lowest = get64(&r);
	get_str8(&r, v->user, sizeof v->user);
	switch (v->kind) {
	case SISY_NODE_CMD_USER_ADD:
		get_str8(&r, v->name, sizeof v->name);
		v->role = get8(&r);
		get_verifier(&r, &v->verifier);
		break;
	case SISY_NODE_CMD_USER_DEL:
		get_str8(&r, v->name, sizeof v->name);
		break;
	case SISY_NODE_CMD_USER_ROLE:
		get_str8(&r, v->name, sizeof v->name);
		v->role = get8(&r);
		break;
	case SISY_NODE_CMD_USER_PASSWORD:
		get_str8(&r, v->name, sizeof v->name);
		get_verifier(&r, &v->verifier);
		break;
	case NODE_CMD_INIT:
		get_bytes(&r, v->cluster_id, SISY_NODE_CLUSTER_ID);
		v->node_id = get64(&r);
		get_str8(&r, v->name, sizeof v->name);
		get_verifier(&r, &v->verifier);
		break;
	case SISY_NODE_CMD_TOKEN_NEW:
		get_bytes(&r, v->token_hash, 32);
		get_str8(&r, v->address, sizeof v->address);
		break;
	case SISY_NODE_CMD_TOKEN_CLAIM:
		get_bytes(&r, v->token_hash, 32);
		get_bytes(&r, v->node_key, SISY_NODE_KEY);
		break;
	default:
		r.bad = true;
	}
	if (r.bad || r.p != r.end)
		rc = SISY_E_CORRUPT;
done:
	if (rc == SISY_E_CORRUPT) {
		node_cmd_view_free(v);
		return sisy_errf(SISY_E_CORRUPT,
				 "node: a malformed command (kind %u, %zu "
				 "bytes) in the log",
				 v->kind, data.len);
	}
	if (rc != SISY_OK)
		node_cmd_view_free(v);
	return rc;
}

void node_cmd_view_free(node_cmd_view *v)
{
	if (v->ops != &v->one)
		free(v->ops);
	v->ops = NULL;
	v->nops = 0;
}

/* ---- results, config context, payloads ------------------------------------
 */

sisy_err node_data_key(sisy_slice key, sisy_buf *out)
{
	sisy_buf_clear(out);
	sisy_err rc = sisy_buf_reserve(out, 1 + key.len);
	if (rc == SISY_OK) {
		out->data[0] = NS_DATA;
		if (key.len)
			memcpy(out->data + 1, key.data, key.len);
		out->len = 1 + key.len;
	}
	return rc;
}

void node_result_encode(const sisy_node_result *r, uint8_t out[NODE_RESULT_LEN])
{
	out[0] = 1;
	out[1] = (uint8_t)r->status;
	sisy_put_u64(out + 2, r->index);
	sisy_put_u32(out + 10, r->failed_op);
	sisy_put_u64(out + 14, r->current_version);
	out[22] = r->existed ? 1 : 0;
	sisy_put_u64(out + 23, r->node_id);
}

bool node_result_decode(const uint8_t *p, size_t len, sisy_node_result *r)
{
	if (len != NODE_RESULT_LEN || p[0] != 1 || p[1] >= SISY_ERR__COUNT)
		return false;
	memset(r, 0, sizeof *r);
	r->status = (sisy_err)p[1];
	r->index = sisy_get_u64(p + 2);
	r->failed_op = sisy_get_u32(p + 10);
	r->current_version = sisy_get_u64(p + 14);
	r->existed = p[22] != 0;
	r->node_id = sisy_get_u64(p + 23);
	return true;
}

sisy_err node_conf_ctx_encode(const char *addr,
			      const uint8_t key[SISY_NODE_KEY], sisy_buf *out)
{
	size_t len = addr ? strlen(addr) : 0;
	if (len > SISY_NODE_MAX_ADDR)
		return sisy_errf(SISY_E_TOOBIG,
				 "node: an address of %zu bytes; the limit is "
				 "%d",
				 len, SISY_NODE_MAX_ADDR);
	sisy_err rc = sisy_buf_append_u8(out, 1);
	if (rc == SISY_OK)
		rc = sisy_buf_append(out, key, SISY_NODE_KEY);
	if (rc == SISY_OK && len)
		rc = sisy_buf_append(out, addr, len);
	return rc;
}

bool node_conf_ctx_decode(sisy_slice ctx, char *addr, size_t cap,
			  uint8_t key[SISY_NODE_KEY])
{
	if (ctx.len < 1 + SISY_NODE_KEY || ctx.data[0] != 1)
		return false;
	size_t alen = ctx.len - 1 - SISY_NODE_KEY;
	if (alen >= cap || alen > SISY_NODE_MAX_ADDR)
		return false;
	memcpy(key, ctx.data + 1, SISY_NODE_KEY);
	memcpy(addr, ctx.data + 1 + SISY_NODE_KEY, alen);
	addr[alen] = '\0';
	return memchr(addr, '\0', alen) == NULL;
}

sisy_err node_payload_build(const sisy_raft_entry *e, sisy_buf *out)
{
	sisy_err rc = sisy_buf_append_u8(out, e->type);
	if (rc == SISY_OK && e->len)
		rc = sisy_buf_append(out, e->data, e->len);
	return rc;
}
