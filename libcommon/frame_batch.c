/* frame_batch.c — batches of messages inside one frame (frame.h, protocol
 * version 2): writing them and walking them.
 *
 * Layout of a batch payload (a protobuf `repeated bytes`-like field 1):
 *   | 0x0a | length: varint (1..5 bytes, < 2^32) | message | 0x0a | ...
 * Invariant of the walker: it never reads past the slice it was given, and
 * a message it returns lies inside it.
 */
#include "frame.h"

#include <string.h>

#include "coding.h"

#define BATCH_TAG 0x0a /* field 1, wire type 2 (length-delimited) */

uint8_t *sisy_batch_reserve(sisy_buf *batch, size_t len)
{
	if (len > UINT32_MAX ||
	    sisy_buf_reserve(batch, SISY_BATCH_HDR_MAX + len) != SISY_OK)
		return NULL;
	uint8_t *p = batch->data + batch->len;
	p[0] = BATCH_TAG;
	size_t h = 1 + sisy_put_varint32(p + 1, (uint32_t)len);
	batch->len += h;
	return p + h;
}

sisy_err sisy_batch_append(sisy_buf *batch, const void *msg, size_t len)
{
	uint8_t *p = sisy_batch_reserve(batch, len);
	if (p == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "frame_batch.c: out of memory for a batch");
	if (len)
		memcpy(p, msg, len);
	batch->len += len;
	return SISY_OK;
}

sisy_err sisy_batch_next(sisy_slice batch, size_t *off, sisy_slice *msg,
			 bool *done)
{
	const uint8_t *p = batch.data + *off, *end = batch.data + batch.len;
	uint32_t len;
	*done = *off >= batch.len;
	if (*done)
		return SISY_OK;
	if (*p != BATCH_TAG)
		return sisy_errf(SISY_E_PROTO,
				 "frame_batch.c: unexpected byte 0x%02x at "
				 "offset %zu of a batch",
				 *p, *off);
	const uint8_t *q = p + 1;
	/* Messages of 128 B..16 KiB (a PUT, most replies) have a two-byte
	 * length: read it here rather than in the generic loop, since every
	 * message is walked twice (sisy_batch_check, then its reader). */
	if (end - q >= 2 && q[0] >= 0x80 && q[1] < 0x80) {
		len = (uint32_t)(q[0] & 0x7f) | (uint32_t)q[1] << 7;
		q += 2;
	} else {
		q = sisy_get_varint32(q, end, &len);
	}
	if (q == NULL || len > (size_t)(end - q))
		return sisy_errf(SISY_E_PROTO,
				 "frame_batch.c: a message length at offset "
				 "%zu runs past the end of its batch",
				 *off);
	*msg = sisy_slice_make(q, len);
	*off = (size_t)(q + len - batch.data);
	return SISY_OK;
}

sisy_err sisy_batch_check(sisy_slice batch, size_t *n)
{
	size_t off = 0, count = 0;
	for (;;) {
		sisy_slice m;
		bool done;
		sisy_err rc = sisy_batch_next(batch, &off, &m, &done);
		if (rc != SISY_OK)
			return rc;
		if (done)
			break;
		if (++count > SISY_BATCH_MAX_MSGS)
			return sisy_errf(SISY_E_PROTO,
					 "frame_batch.c: a batch of more than "
					 "%u messages",
					 SISY_BATCH_MAX_MSGS);
	}
	if (count == 0)
		return sisy_errf(SISY_E_PROTO, "frame_batch.c: an empty batch");
	*n = count;
	return SISY_OK;
}
