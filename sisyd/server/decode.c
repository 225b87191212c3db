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

#include "pbread.h"
#include "sisy.pb-c.h"

void *decode_alloc(void *ctx, size_t n)
{
	srv_req *r = ctx;
	return sisy_bump_alloc(r->arena, SRV_REQ_ARENA, &r->arena_used,
			       &r->chunks, n);
}

static void decode_free(void *ctx, void *p)
{
	(void)ctx; /* everything goes with the request */
	(void)p;
}

typedef sisy_pb_rd rd;

/* A varint as sisy_pb_varint reads it (sisy_get_varint64: up to ten
 * bytes, the tenth at most 1, non-minimal forms accepted), without the
 * per-byte bounds test when ten bytes remain: a write's random 64-bit
 * client id takes ten, and the general loop spent ~13 instructions on
 * each. test_decode.c compares it with sisy_get_varint64. */
static inline bool rd_varint(rd *d, uint64_t *v)
{
	const uint8_t *p = d->p;
	if (d->end - p < 10)
		return sisy_pb_varint(d, v);
	uint64_t r = 0;
	for (unsigned i = 0; i < 9; i++) {
		uint64_t b = p[i];
		r |= (b & 0x7f) << (7 * i);
		if (b < 0x80) {
			*v = r;
			d->p = p + i + 1;
			return true;
		}
	}
	if (p[9] > 1)
		return false;
	*v = r | (uint64_t)p[9] << 63;
	d->p = p + 10;
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
		*g = (Sisy__GetRequest)SISY__GET_REQUEST__INIT;
		key = &g->key;
		*out = g;
	} else if (op == SISY__REQUEST__OP_PUT) {
		if ((p = decode_alloc(r, sizeof *p)) == NULL)
			return false;
		*p = (Sisy__PutRequest)SISY__PUT_REQUEST__INIT;
		key = &p->key;
		*out = p;
	} else {
		if ((e = decode_alloc(r, sizeof *e)) == NULL)
			return false;
		*e = (Sisy__ExistsRequest)SISY__EXISTS_REQUEST__INIT;
		key = &e->key;
		*out = e;
	}
	uint32_t last = 0, f, t;
	while (d.p < d.end) {
		if (!sisy_pb_tag(&d, &last, &f, &t))
			return false;
		if (f == 1 && t == 2) {
			if (!sisy_pb_bytes(&d, decode_alloc, r, key))
				return false;
		} else if (f == 2 && t == 0 && g) {
			if (!sisy_pb_bool(&d, &g->with_version))
				return false;
		} else if (f == 2 && t == 2 && p) {
			if (!sisy_pb_bytes(&d, decode_alloc, r, &p->value))
				return false;
		} else {
			return false;
		}
	}
	return true;
}

/* Header field `tag` (field << 3, wire type 0, one-byte tag) if it comes
 * next: 1 read into *v, 0 not there, -1 malformed. */
static inline int hdr_field(rd *d, uint8_t tag, uint64_t *v)
{
	if (d->p >= d->end || *d->p != tag)
		return 0;
	d->p++;
	return rd_varint(d, v) ? 1 : -1;
}

/* Header field f (1-5) of a Request; false for a consistency beyond
 * the enum's range. */
static inline bool set_header(Sisy__Request *m, uint32_t f, uint64_t v)
{
	switch (f) {
	case 1:
		m->id = v;
		return true;
	case 2:
		if (v > INT32_MAX)
			return false;
		m->consistency = (Sisy__Consistency)v;
		return true;
	case 3:
		m->client_id = v;
		return true;
	case 4:
		m->seq = v;
		return true;
	default:
		m->lowest_unanswered = v;
		return true;
	}
}

Sisy__Request *decode_fast(srv_req *r, sisy_slice msg)
{
	size_t mark = r->arena_used;
	rd d = {msg.data, msg.data + msg.len};
	Sisy__Request *m = decode_alloc(r, sizeof *m);
	if (m == NULL)
		goto no;
	/* The generated init, inline (protobuf-c's is a call and a copy of
	 * a static). */
	*m = (Sisy__Request)SISY__REQUEST__INIT;
	uint32_t last = 0, f, t;
	uint64_t v;
	/* The header as encoders write it: one-byte tags of fields 1-5 in
	 * order, each optional (proto3 leaves zeros out), read straight
	 * through. Anything else is left to the loop, which reads the same
	 * bytes the same way (`last` carries the order on), only slower. */
	for (uint32_t hf = 1; hf <= 5; hf++) {
		int h = hdr_field(&d, hf << 3, &v);
		if (h == 0)
			continue;
		if (h < 0 || !set_header(m, hf, v))
			goto no;
		last = hf;
	}
	while (d.p < d.end) {
		if (!sisy_pb_tag(&d, &last, &f, &t))
			goto no;
		if (f <= 5) {
			if (t != 0 || !rd_varint(&d, &v) ||
			    !set_header(m, f, v))
				goto no;
			continue;
		}
		rd body;
		if ((f != SISY__REQUEST__OP_GET && f != SISY__REQUEST__OP_PUT &&
		     f != SISY__REQUEST__OP_EXISTS) ||
		    t != 2 || m->op_case != SISY__REQUEST__OP__NOT_SET ||
		    !sisy_pb_len(&d, &body))
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
