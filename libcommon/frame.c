/* frame.c — the incremental frame reader and the frame writer (frame.h).
 *
 * Invariant: hdr_have < 4 means the header is still arriving and payload is
 * empty; once hdr_have == 4, len <= max was checked and payload.len <= len.
 */
#include "frame.h"

#include <assert.h>

#include "coding.h"

void sisy_frame_reader_init(sisy_frame_reader *r, uint32_t max)
{
	memset(r, 0, sizeof *r);
	r->max = max;
}

void sisy_frame_reader_free(sisy_frame_reader *r)
{
	sisy_buf_free(&r->payload);
	memset(r, 0, sizeof *r);
}

void sisy_frame_reader_set_max(sisy_frame_reader *r, uint32_t max)
{
	r->max = max;
}

bool sisy_frame_reader_partial(const sisy_frame_reader *r)
{
	return r->hdr_have > 0 && !r->ready;
}

void sisy_frame_reader_next(sisy_frame_reader *r)
{
	assert(r->ready);
	r->ready = false;
	r->hdr_have = 0;
	r->len = 0;
	sisy_buf_clear(&r->payload);
	/* A big frame must not pin its buffer for the connection's life. */
	if (r->payload.cap > 64 * 1024)
		sisy_buf_free(&r->payload);
}

/* Grows geometrically but never past the announced length, and only for
 * bytes that have arrived. */
static sisy_err reserve_payload(sisy_frame_reader *r, size_t take)
{
	size_t need = r->payload.len + take;
	if (need <= r->payload.cap)
		return SISY_OK;
	size_t cap = r->payload.cap ? r->payload.cap : 256;
	while (cap < need)
		cap *= 2;
	if (cap > r->len)
		cap = r->len;
	return sisy_buf_reserve(&r->payload, cap - r->payload.len);
}

sisy_err sisy_frame_feed(sisy_frame_reader *r, const uint8_t *data, size_t n,
			 size_t *used, bool *done, sisy_slice *frame)
{
	assert(!r->ready);
	size_t off = 0;
	*done = false;
	*used = 0;
	if (r->failed)
		return sisy_errf(SISY_E_TOOBIG,
				 "frame.c: stream already failed");
	while (r->hdr_have < SISY_FRAME_HDR && off < n)
		r->hdr[r->hdr_have++] = data[off++];
	if (r->hdr_have < SISY_FRAME_HDR) {
		*used = off;
		return SISY_OK;
	}
	if (r->payload.len == 0 && off > 0) {
		/* Header just completed: check before allocating anything. */
		r->len = sisy_get_be32(r->hdr);
		if (r->len > r->max) {
			r->failed = true;
			*used = off;
			return sisy_errf(SISY_E_TOOBIG,
					 "frame.c: frame of %u bytes exceeds "
					 "the limit of %u bytes",
					 r->len, r->max);
		}
	}
	size_t want = r->len - r->payload.len;
	size_t take = n - off < want ? n - off : want;
	if (take > 0) {
		sisy_err rc = reserve_payload(r, take);
		if (rc != SISY_OK) {
			r->failed = true;
			return rc;
		}
		memcpy(r->payload.data + r->payload.len, data + off, take);
		r->payload.len += take;
		off += take;
	}
	*used = off;
	if (r->payload.len == r->len) {
		r->ready = true;
		*done = true;
		*frame = sisy_buf_slice(&r->payload);
	}
	return SISY_OK;
}

bool sisy_frame_whole(const sisy_frame_reader *r, const uint8_t *data, size_t n,
		      sisy_slice *frame, size_t *used)
{
	if (r->failed || r->ready || r->hdr_have > 0 || n < SISY_FRAME_HDR)
		return false;
	uint32_t len = sisy_get_be32(data);
	if (len > r->max || n - SISY_FRAME_HDR < len)
		return false;
	*frame = sisy_slice_make(data + SISY_FRAME_HDR, len);
	*used = SISY_FRAME_HDR + (size_t)len;
	return true;
}

sisy_err sisy_frame_append(sisy_buf *out, const void *payload, size_t len)
{
	if (len > SISY_FRAME_MAX)
		return sisy_errf(SISY_E_TOOBIG,
				 "frame.c: message of %zu bytes exceeds the "
				 "frame limit of %u bytes",
				 len, SISY_FRAME_MAX);
	sisy_err rc = sisy_buf_reserve(out, SISY_FRAME_HDR + len);
	if (rc != SISY_OK)
		return rc;
	sisy_put_be32(out->data + out->len, (uint32_t)len);
	if (len)
		memcpy(out->data + out->len + SISY_FRAME_HDR, payload, len);
	out->len += SISY_FRAME_HDR + len;
	return SISY_OK;
}
