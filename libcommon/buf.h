/* buf.h — byte slices and growable byte buffers.
 *
 * sisy_slice borrows bytes (never frees); sisy_buf owns a malloc'd buffer that
 * grows geometrically. A zeroed sisy_buf is empty and valid. Growth is bounded
 * by the caller's own limits (frame, key, value sizes), not here. */
#ifndef SISY_BUF_H
#define SISY_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "coding.h"
#include "err.h"

typedef struct sisy_slice {
	const uint8_t *data;
	size_t len;
} sisy_slice;

static inline sisy_slice sisy_slice_make(const void *data, size_t len)
{
	sisy_slice s = {(const uint8_t *)data, len};
	return s;
}
static inline sisy_slice sisy_slice_str(const char *s)
{
	return sisy_slice_make(s, strlen(s));
}
/* memcmp order, shorter first on a common prefix. */
static inline int sisy_slice_cmp(sisy_slice a, sisy_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len;
	int c = n ? memcmp(a.data, b.data, n) : 0;
	if (c != 0)
		return c;
	return a.len < b.len ? -1 : a.len > b.len;
}
static inline int sisy_slice_eq(sisy_slice a, sisy_slice b)
{
	return a.len == b.len &&
	       (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

typedef struct sisy_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
} sisy_buf;

/* Ensures room for `extra` more bytes. */
sisy_err sisy_buf_reserve(sisy_buf *b, size_t extra);
/* The out-of-line halves of the appends below: grow, then append. */
sisy_err sisy_buf_append_grow(sisy_buf *b, const void *data, size_t n);
sisy_err sisy_buf_append_varint_grow(sisy_buf *b, uint64_t v);

/* The appends are inline with the common case (the room is there) first:
 * encoders call them a dozen times per record on the hot paths (a command,
 * a reply), where a call, a reserve and a temporary per field cost more
 * than the bytes written. */
static inline sisy_err sisy_buf_append(sisy_buf *b, const void *data, size_t n)
{
	if (n > b->cap - b->len)
		return sisy_buf_append_grow(b, data, n);
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	return SISY_OK;
}
static inline sisy_err sisy_buf_append_u8(sisy_buf *b, uint8_t v)
{
	if (b->len == b->cap)
		return sisy_buf_append_grow(b, &v, 1);
	b->data[b->len++] = v;
	return SISY_OK;
}
static inline sisy_err sisy_buf_append_varint(sisy_buf *b, uint64_t v)
{
	if (SISY_VARINT64_MAX > b->cap - b->len)
		return sisy_buf_append_varint_grow(b, v);
	b->len += sisy_put_varint64(b->data + b->len, v);
	return SISY_OK;
}
/* Little-endian, as sisy_put_u32/u64 (coding.h). */
static inline sisy_err sisy_buf_append_u32(sisy_buf *b, uint32_t v)
{
	uint8_t tmp[4];
	sisy_put_u32(tmp, v);
	return sisy_buf_append(b, tmp, 4);
}
static inline sisy_err sisy_buf_append_u64(sisy_buf *b, uint64_t v)
{
	uint8_t tmp[8];
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	memcpy(tmp, &v, 8); /* one store: the byte loop is not merged at -O2 */
#else
	sisy_put_u64(tmp, v);
#endif
	return sisy_buf_append(b, tmp, 8);
}
/* Replaces the contents with `data`. */
sisy_err sisy_buf_set(sisy_buf *b, const void *data, size_t n);
static inline void sisy_buf_clear(sisy_buf *b)
{
	b->len = 0;
}
void sisy_buf_free(sisy_buf *b);
static inline sisy_slice sisy_buf_slice(const sisy_buf *b)
{
	return sisy_slice_make(b->data, b->len);
}

#endif
