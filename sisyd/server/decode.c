/* decode.c — a client Request into its srv_req (srv_int.h): every message
 * lives in the request's arena (then malloc'd chunks), freed with it.
 *
 * The requests that dominate a busy server — GET, EXISTS, and PUT without a
 * condition — are decoded by hand when their encoding is canonical, which
 * is what every protobuf encoder writes: fields in increasing number order,
 * each at most once, no unknown field, the expected wire types, booleans 0
 * or 1, one op. Such bytes have exactly one meaning, so the result equals
 * protobuf-c's (tests/unit/server/test_decode.c and fuzz_request hold it
 * to that). Anything else — other requests, a condition, fields out of
 * order or repeated (where protobuf's merge rules apply), unknown fields —
 * goes to protobuf-c's generic decoder, with the same arena as allocator.
 * The hand decoder saves most of a GET's decoding (measured: ~1,300
 * instructions of protobuf_c_message_unpack down to ~150).
 *
 * Wire format reminder: a tag is varint(field << 3 | type); type 0 is a
 * varint, type 2 a varint length then that many bytes.
 */
#include "srv_int.h"

#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "sisy.pb-c.h"

void *decode_alloc(void *ctx, size_t n)
{
	srv_req *r = ctx;
	size_t need = (n + 15) & ~(size_t)15;
	if (need >= n && r->arena_used + need <= SRV_REQ_ARENA) {
		void *p = r->arena + r->arena_used;
		r->arena_used += need;
		return p;
	}
	if (n > SIZE_MAX - sizeof(srv_req_chunk))
		return NULL;
	srv_req_chunk *k = malloc(sizeof *k + n);
	if (k == NULL)
		return NULL;
	k->next = r->chunks;
	r->chunks = k;
	return k->data;
}

static void decode_free(void *ctx, void *p)
{
	(void)ctx; /* everything goes with the request */
	(void)p;
}

typedef struct rd {
	const uint8_t *p, *end;
} rd;

static bool rd_varint(rd *d, uint64_t *v)
{
	/* Tags and lengths are one byte in nearly every request. */
	if (d->p < d->end && *d->p < 0x80) {
		*v = *d->p++;
		return true;
	}
	const uint8_t *q = sisy_get_varint64(d->p, d->end, v);
	if (q == NULL)
		return false;
	d->p = q;
	return true;
}

/* The next field's number and wire type; false at a malformed tag. */
static bool rd_tag(rd *d, uint32_t *field, uint32_t *type)
{
	uint64_t t;
	if (!rd_varint(d, &t) || t > UINT32_MAX || (t >> 3) == 0)
		return false;
	*field = (uint32_t)(t >> 3);
	*type = (uint32_t)(t & 7);
	return true;
}

/* A length-delimited body: [*out, *out + len) inside d, d moved past it. */
static bool rd_len(rd *d, rd *out)
{
	uint64_t n;
	if (!rd_varint(d, &n) || n > (uint64_t)(d->end - d->p))
		return false;
	out->p = d->p;
	out->end = d->p + n;
	d->p += n;
	return true;
}

static bool rd_bool(rd *d, protobuf_c_boolean *b)
{
	uint64_t v;
	if (!rd_varint(d, &v) || v > 1)
		return false;
	*b = (protobuf_c_boolean)v;
	return true;
}

/* A bytes field copied into r's arena ({0, NULL} when empty). */
static bool rd_bytes(srv_req *r, rd *d, ProtobufCBinaryData *b)
{
	rd body;
	if (!rd_len(d, &body))
		return false;
	b->len = (size_t)(body.end - body.p);
	b->data = NULL;
	if (b->len == 0)
		return true;
	b->data = decode_alloc(r, b->len);
	if (b->data == NULL)
		return false;
	memcpy(b->data, body.p, b->len);
	return true;
}

/* GetRequest {key = 1; with_version = 2}, ExistsRequest {key = 1},
 * PutRequest {key = 1; value = 2} (cond = 3: not here). */
static bool key_msg(srv_req *r, rd d, uint32_t op, void **out)
{
	Sisy__GetRequest *g = NULL;
	Sisy__PutRequest *p = NULL;
	Sisy__ExistsRequest *e = NULL;
	ProtobufCBinaryData *key;
	if (op == SISY__REQUEST__OP_GET) {
		if ((g = decode_alloc(r, sizeof *g)) == NULL)
			return false;
		sisy__get_request__init(g);
		key = &g->key;
		*out = g;
	} else if (op == SISY__REQUEST__OP_PUT) {
		if ((p = decode_alloc(r, sizeof *p)) == NULL)
			return false;
		sisy__put_request__init(p);
		key = &p->key;
		*out = p;
	} else {
		if ((e = decode_alloc(r, sizeof *e)) == NULL)
			return false;
		sisy__exists_request__init(e);
		key = &e->key;
		*out = e;
	}
	uint32_t last = 0, f, t;
	while (d.p < d.end) {
		if (!rd_tag(&d, &f, &t) || f <= last)
			return false;
		last = f;
		if (f == 1 && t == 2) {
			if (!rd_bytes(r, &d, key))
				return false;
		} else if (f == 2 && t == 0 && g) {
			if (!rd_bool(&d, &g->with_version))
				return false;
		} else if (f == 2 && t == 2 && p) {
			if (!rd_bytes(r, &d, &p->value))
				return false;
		} else {
			return false;
		}
	}
	return true;
}

Sisy__Request *decode_fast(srv_req *r, sisy_slice msg)
{
	size_t mark = r->arena_used;
	rd d = {msg.data, msg.data + msg.len};
	Sisy__Request *m = decode_alloc(r, sizeof *m);
	if (m == NULL)
		goto no;
	sisy__request__init(m);
	uint32_t last = 0, f, t;
	uint64_t v;
	while (d.p < d.end) {
		if (!rd_tag(&d, &f, &t) || f <= last)
			goto no;
		last = f;
		if (f <= 5) {
			if (t != 0 || !rd_varint(&d, &v))
				goto no;
			switch (f) {
			case 1:
				m->id = v;
				break;
			case 2:
				if (v > INT32_MAX)
					goto no;
				m->consistency = (Sisy__Consistency)v;
				break;
			case 3:
				m->client_id = v;
				break;
			case 4:
				m->seq = v;
				break;
			default:
				m->lowest_unanswered = v;
			}
			continue;
		}
		rd body;
		if ((f != SISY__REQUEST__OP_GET && f != SISY__REQUEST__OP_PUT &&
		     f != SISY__REQUEST__OP_EXISTS) ||
		    t != 2 || m->op_case != SISY__REQUEST__OP__NOT_SET ||
		    !rd_len(&d, &body))
			goto no;
		void *sub;
		if (!key_msg(r, body, f, &sub))
			goto no;
		m->op_case = (Sisy__Request__OpCase)f;
		if (f == SISY__REQUEST__OP_GET)
			m->get = sub;
		else if (f == SISY__REQUEST__OP_PUT)
			m->put = sub;
		else
			m->exists = sub;
	}
	if (m->op_case == SISY__REQUEST__OP__NOT_SET)
		goto no;
	return m;
no:
	/* Give the arena back; a chunk taken (a large value) stays until the
	 * request goes: the generic decoder's copy doubles it at most once. */
	r->arena_used = mark;
	return NULL;
}

Sisy__Request *decode_request(srv_req *r, sisy_slice msg)
{
	Sisy__Request *m = decode_fast(r, msg);
	if (m != NULL)
		return m;
	ProtobufCAllocator a = {decode_alloc, decode_free, r};
	return sisy__request__unpack(&a, msg.len, msg.data);
}
