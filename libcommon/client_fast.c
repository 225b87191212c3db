/* client_fast.c — the client's hot messages by hand (client_int.h): the
 * encoding of GET / EXISTS / PUT-without-condition Requests, and the
 * decoding of the OK Responses to them. protobuf-c's generic code walks
 * descriptors and allocates per field; for a pipelined GET it cost more
 * than the rest of the client together (docs/BENCHMARKS.md).
 *
 * Both sides are canonical protobuf (proto3: fields in number order, each
 * once, defaults left out), byte for byte what protobuf-c writes, so the
 * encoder's output equals sisy__request__pack's and the decoder accepts
 * exactly the canonical encodings of the replies it knows, giving the
 * same fields protobuf-c would (tests/unit/common/test_client_fast.c).
 * Anything else returns 0 / NULL and the caller uses protobuf-c.
 *
 *   Request  | 0x08 id | 0x10 consistency | 0x18 client_id | 0x20 seq |
 *            | 0x28 lowest_unanswered | op: 0x52 get, 0x5a put, 0x6a
 *            exists, then its length and body |
 *   GetRequest {0x0a key, 0x10 with_version}  ExistsRequest {0x0a key}
 *   PutRequest {0x0a key, 0x12 value}
 *   Response | 0x08 id | 0x52 GetResult {0x08 found, 0x12 value,
 *            0x18 version} | 0x5a WriteResult {0x08 version, 0x10 existed}
 *            | 0x6a ExistsResult {0x08 exists} |   (status OK: no 0x10)
 */
#include "client_int.h"

#include <assert.h>
#include <string.h>

#include "coding.h"
#include "pbread.h"
#include "sisy.pb-c.h"

static size_t vfield(uint64_t v)
{
	return v ? 1 + sisy_varint_len(v) : 0;
}

static size_t bfield(size_t len)
{
	return len ? 1 + sisy_varint_len(len) + len : 0;
}

static uint8_t *put_v(uint8_t *p, uint8_t tag, uint64_t v)
{
	if (v == 0)
		return p;
	*p++ = tag;
	return p + sisy_put_varint64(p, v);
}

static uint8_t *put_b(uint8_t *p, uint8_t tag, ProtobufCBinaryData b)
{
	if (b.len == 0)
		return p;
	*p++ = tag;
	p += sisy_put_varint64(p, b.len);
	memcpy(p, b.data, b.len);
	return p + b.len;
}

/* The op's body size, or false when it is not one of ours. */
static bool op_body(const Sisy__Request *m, uint8_t *tag, size_t *n)
{
	switch (m->op_case) {
	case SISY__REQUEST__OP_GET:
		*tag = 0x52;
		*n = bfield(m->get->key.len) + (m->get->with_version ? 2 : 0);
		return true;
	case SISY__REQUEST__OP_EXISTS:
		*tag = 0x6a;
		*n = bfield(m->exists->key.len);
		return true;
	case SISY__REQUEST__OP_PUT:
		if (m->put->cond != NULL)
			return false;
		*tag = 0x5a;
		*n = bfield(m->put->key.len) + bfield(m->put->value.len);
		return true;
	default:
		return false;
	}
}

size_t client_fast_size(const Sisy__Request *m)
{
	uint8_t tag;
	size_t body;
	if (m->base.n_unknown_fields || !op_body(m, &tag, &body))
		return 0;
	return vfield(m->id) + vfield((uint64_t)m->consistency) +
	       vfield(m->client_id) + vfield(m->seq) +
	       vfield(m->lowest_unanswered) + 1 + sisy_varint_len(body) + body;
}

void client_fast_encode(const Sisy__Request *m, uint8_t *out)
{
	uint8_t tag;
	size_t body;
	bool ok = op_body(m, &tag, &body);
	assert(ok);
	(void)ok;
	uint8_t *p = put_v(out, 0x08, m->id);
	p = put_v(p, 0x10, (uint64_t)m->consistency);
	p = put_v(p, 0x18, m->client_id);
	p = put_v(p, 0x20, m->seq);
	p = put_v(p, 0x28, m->lowest_unanswered);
	*p++ = tag;
	p += sisy_put_varint64(p, body);
	if (m->op_case == SISY__REQUEST__OP_GET) {
		p = put_b(p, 0x0a, m->get->key);
		if (m->get->with_version) {
			*p++ = 0x10;
			*p++ = 1;
		}
	} else if (m->op_case == SISY__REQUEST__OP_EXISTS) {
		put_b(p, 0x0a, m->exists->key);
	} else {
		p = put_b(p, 0x0a, m->put->key);
		put_b(p, 0x12, m->put->value);
	}
}

/* ---------------------------------------------------------- decoding */

typedef sisy_pb_rd rd;

typedef struct arena {
	void *(*alloc)(void *ctx, size_t n);
	void *ctx;
} arena;

/* The readers with the wire type each field must have. */
static bool get_v(rd *d, uint32_t t, uint64_t *v)
{
	return t == 0 && sisy_pb_varint(d, v);
}

static bool get_bool(rd *d, uint32_t t, protobuf_c_boolean *b)
{
	return t == 0 && sisy_pb_bool(d, b);
}

static bool get_len(rd *d, uint32_t t, rd *body)
{
	return t == 2 && sisy_pb_len(d, body);
}

static bool get_bytes(rd *d, uint32_t t, const arena *a, ProtobufCBinaryData *b)
{
	return t == 2 && sisy_pb_bytes(d, a->alloc, a->ctx, b);
}

static void *result(const arena *a, uint32_t f, rd d)
{
	uint32_t last = 0, g, t;
	if (f == SISY__RESPONSE__RESULT_GET) {
		Sisy__GetResult *r = a->alloc(a->ctx, sizeof *r);
		if (r == NULL)
			return NULL;
		sisy__get_result__init(r);
		while (d.p < d.end) {
			if (!sisy_pb_tag(&d, &last, &g, &t) ||
			    (g == 1 && !get_bool(&d, t, &r->found)) ||
			    (g == 2 && !get_bytes(&d, t, a, &r->value)) ||
			    (g == 3 && !get_v(&d, t, &r->version)) || g > 3)
				return NULL;
		}
		return r;
	}
	if (f == SISY__RESPONSE__RESULT_WRITE) {
		Sisy__WriteResult *r = a->alloc(a->ctx, sizeof *r);
		if (r == NULL)
			return NULL;
		sisy__write_result__init(r);
		while (d.p < d.end) {
			if (!sisy_pb_tag(&d, &last, &g, &t) ||
			    (g == 1 && !get_v(&d, t, &r->version)) ||
			    (g == 2 && !get_bool(&d, t, &r->existed)) || g > 2)
				return NULL;
		}
		return r;
	}
	Sisy__ExistsResult *r = a->alloc(a->ctx, sizeof *r);
	if (r == NULL)
		return NULL;
	sisy__exists_result__init(r);
	while (d.p < d.end) {
		if (!sisy_pb_tag(&d, &last, &g, &t) ||
		    (g == 1 && !get_bool(&d, t, &r->exists)) || g > 1)
			return NULL;
	}
	return r;
}

Sisy__Response *client_fast_decode(void *(*alloc)(void *ctx, size_t n),
				   void *ctx, sisy_slice msg)
{
	arena a = {alloc, ctx};
	rd d = {msg.data, msg.data + msg.len};
	Sisy__Response *m = alloc(ctx, sizeof *m);
	uint32_t last = 0, f, t;
	if (m == NULL)
		return NULL;
	sisy__response__init(m);
	while (d.p < d.end) {
		rd body;
		void *res;
		if (!sisy_pb_tag(&d, &last, &f, &t))
			return NULL;
		if (f == 1) {
			if (!get_v(&d, t, &m->id))
				return NULL;
			continue;
		}
		/* status (2), message (3), redirect (4) and other results:
		 * not ours */
		if ((f != SISY__RESPONSE__RESULT_GET &&
		     f != SISY__RESPONSE__RESULT_WRITE &&
		     f != SISY__RESPONSE__RESULT_EXISTS) ||
		    !get_len(&d, t, &body) ||
		    (res = result(&a, f, body)) == NULL)
			return NULL;
		m->result_case = (Sisy__Response__ResultCase)f;
		if (f == SISY__RESPONSE__RESULT_GET)
			m->get = res;
		else if (f == SISY__RESPONSE__RESULT_WRITE)
			m->write = res;
		else
			m->exists = res;
	}
	return m->result_case != SISY__RESPONSE__RESULT__NOT_SET ? m : NULL;
}
