/* pbread.h — reading protobuf wire format by hand, for the decoders of the
 * hot messages that skip protobuf-c's generic code: the client's replies
 * (client_fast.c) and the server's requests (sisyd/server/decode.c).
 *
 * Only canonical encodings are read (fields in increasing number order,
 * each once): sisy_pb_tag refuses a field number not above the last one,
 * so a caller that also refuses unknown fields and wrong wire types sees
 * bytes with exactly one meaning, the one protobuf-c would give. Every
 * read stays inside [p, end); false means malformed and leaves the reader
 * somewhere inside it.
 *
 * Wire format: a tag is varint(field << 3 | type); type 0 is a varint,
 * type 2 a varint length then that many bytes. The wire type is the
 * caller's to check.
 */
#ifndef SISY_PBREAD_H
#define SISY_PBREAD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "coding.h"

typedef struct sisy_pb_rd {
	const uint8_t *p, *end;
} sisy_pb_rd;

static inline bool sisy_pb_varint(sisy_pb_rd *d, uint64_t *v)
{
	/* Tags and lengths are one byte in nearly every message. */
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

/* The next field's number and wire type, if its number is above *last
 * (then it becomes *last); false at a malformed or out-of-order tag. */
static inline bool sisy_pb_tag(sisy_pb_rd *d, uint32_t *last, uint32_t *field,
			       uint32_t *type)
{
	uint64_t t;
	if (!sisy_pb_varint(d, &t) || t > UINT32_MAX || (t >> 3) <= *last)
		return false;
	*field = (uint32_t)(t >> 3);
	*type = (uint32_t)(t & 7);
	*last = *field;
	return true;
}

/* A length-delimited body: [body->p, body->end) inside d, d moved past. */
static inline bool sisy_pb_len(sisy_pb_rd *d, sisy_pb_rd *body)
{
	uint64_t n;
	if (!sisy_pb_varint(d, &n) || n > (uint64_t)(d->end - d->p))
		return false;
	body->p = d->p;
	body->end = d->p + n;
	d->p += n;
	return true;
}

/* A bool as protobuf-c reads it canonically: 0 or 1, nothing else. */
static inline bool sisy_pb_bool(sisy_pb_rd *d, protobuf_c_boolean *b)
{
	uint64_t v;
	if (!sisy_pb_varint(d, &v) || v > 1)
		return false;
	*b = (protobuf_c_boolean)v;
	return true;
}

/* A bytes field copied into memory from alloc ({0, NULL} when empty). */
static inline bool sisy_pb_bytes(sisy_pb_rd *d,
				 void *(*alloc)(void *ctx, size_t n), void *ctx,
				 ProtobufCBinaryData *b)
{
	sisy_pb_rd body;
	if (!sisy_pb_len(d, &body))
		return false;
	b->len = (size_t)(body.end - body.p);
	b->data = NULL;
	if (b->len == 0)
		return true;
	if ((b->data = alloc(ctx, b->len)) == NULL)
		return false;
	memcpy(b->data, body.p, b->len);
	return true;
}

#endif
