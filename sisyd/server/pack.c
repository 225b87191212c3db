/* pack.c — the replies of the hot path (GET, EXISTS, a write's OK) encoded
 * by hand: protobuf-c's generic packer walks descriptors twice (size, then
 * bytes) and cost more than the engine lookup of a GET (docs/BENCHMARKS.md).
 *
 * The bytes are exactly what sisy__response__pack gives for the same
 * Response (tests/unit/server/test_pack.c holds them to it): proto3, fields
 * in number order, default values (0, false, empty) left out, the oneof
 * result always present (possibly empty):
 *
 *   Response  | 0x08 id (if nonzero) | TAG len | result |
 *             TAG = 0x52 get (field 10), 0x5a write (11), 0x6a exists (13)
 *   GetResult    | 0x08 0x01 found | 0x12 len value | 0x18 version |
 *   WriteResult  | 0x08 version | 0x10 0x01 existed |
 *   ExistsResult | 0x08 0x01 exists |
 * Every reply here has status OK and no message (fields 2, 3 left out).
 */
#include "srv_int.h"

#include <string.h>

#include "coding.h"
#include "sisy.pb-c.h"

#define TAG_GET	   0x52
#define TAG_WRITE  0x5a
#define TAG_EXISTS 0x6a

static size_t u64_field(uint64_t v)
{
	return v ? 1 + sisy_varint_len(v) : 0;
}

static uint8_t *put_u64_field(uint8_t *p, uint8_t tag, uint64_t v)
{
	if (v == 0)
		return p;
	*p++ = tag;
	return p + sisy_put_varint64(p, v);
}

/* Writes Response{id, <tag>: body} with room for body bytes, which the
 * caller writes at the returned pointer. NULL (r->out empty) when out of
 * memory, as handler_pack leaves it. */
static uint8_t *begin(srv_req *r, uint8_t tag, size_t body)
{
	uint64_t id = r->msg ? r->msg->id : 0;
	size_t n = u64_field(id) + 1 + sisy_varint_len(body) + body;
	sisy_buf_clear(&r->out);
	/* A kept request's buffer has the room nearly always: no call. */
	if (n > r->out.cap && sisy_buf_reserve(&r->out, n) != SISY_OK)
		return NULL;
	uint8_t *p = put_u64_field(r->out.data, 0x08, id);
	*p++ = tag;
	p += sisy_put_varint64(p, body);
	r->out.len = (size_t)(p - r->out.data) + body;
	return p;
}

void pack_get(srv_req *r, bool found, sisy_slice value, uint64_t version)
{
	size_t vfield =
	    value.len ? 1 + sisy_varint_len(value.len) + value.len : 0;
	size_t body = (found ? 2 : 0) + vfield + u64_field(version);
	if (body > SISY_MAX_VALUE + 64) { /* cannot happen: keep it honest */
		Sisy__GetResult g = SISY__GET_RESULT__INIT;
		Sisy__Response resp = SISY__RESPONSE__INIT;
		g.found = found;
		g.value.data = (uint8_t *)value.data;
		g.value.len = value.len;
		g.version = version;
		resp.result_case = SISY__RESPONSE__RESULT_GET;
		resp.get = &g;
		handler_pack(r, &resp);
		return;
	}
	uint8_t *p = begin(r, TAG_GET, body);
	if (p == NULL)
		return;
	if (found) {
		*p++ = 0x08;
		*p++ = 1;
	}
	if (value.len) {
		*p++ = 0x12;
		p += sisy_put_varint64(p, value.len);
		memcpy(p, value.data, value.len);
		p += value.len;
	}
	put_u64_field(p, 0x18, version);
}

/* The longest write reply: id and version of ten varint bytes each, the
 * tag and one-byte length of the result, existed. */
#define WRITE_OK_MAX (11 + 2 + 11 + 2)

/* Straight through, without begin's two passes: the body (at most 13
 * bytes) always has a one-byte length, written once the body is. */
void pack_write_ok(srv_req *r, uint64_t version, bool existed)
{
	uint64_t id = r->msg ? r->msg->id : 0;
	sisy_buf_clear(&r->out);
	if (r->out.cap < WRITE_OK_MAX &&
	    sisy_buf_reserve(&r->out, WRITE_OK_MAX) != SISY_OK)
		return;
	uint8_t *p = put_u64_field(r->out.data, 0x08, id);
	*p++ = TAG_WRITE;
	uint8_t *len = p++;
	uint8_t *body = p;
	p = put_u64_field(p, 0x08, version);
	if (existed) {
		*p++ = 0x10;
		*p++ = 1;
	}
	*len = (uint8_t)(p - body);
	r->out.len = (size_t)(p - r->out.data);
}

void pack_exists(srv_req *r, bool exists)
{
	uint8_t *p = begin(r, TAG_EXISTS, exists ? 2 : 0);
	if (p != NULL && exists) {
		*p++ = 0x08;
		*p = 1;
	}
}
