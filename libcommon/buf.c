/* buf.c — growable byte buffers (see buf.h): growth, the slow halves of
 * the inline appends. */
#include "buf.h"

#include <stdlib.h>

#include "coding.h"

sisy_err sisy_buf_reserve(sisy_buf *b, size_t extra)
{
	if (extra <= b->cap - b->len)
		return SISY_OK;
	if (extra > SIZE_MAX / 2 - b->len)
		return sisy_errf(SISY_E_NOMEM, "buffer of %zu bytes too large",
				 b->len + extra);
	size_t need = b->len + extra;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	uint8_t *p = realloc(b->data, cap);
	if (p == NULL)
		return sisy_errf(SISY_E_NOMEM, "out of memory (%zu bytes)",
				 cap);
	b->data = p;
	b->cap = cap;
	return SISY_OK;
}

sisy_err sisy_buf_append_grow(sisy_buf *b, const void *data, size_t n)
{
	sisy_err rc = sisy_buf_reserve(b, n);
	if (rc != SISY_OK)
		return rc;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	return SISY_OK;
}

sisy_err sisy_buf_append_varint_grow(sisy_buf *b, uint64_t v)
{
	uint8_t tmp[SISY_VARINT64_MAX];
	return sisy_buf_append_grow(b, tmp, sisy_put_varint64(tmp, v));
}

sisy_err sisy_buf_set(sisy_buf *b, const void *data, size_t n)
{
	b->len = 0;
	return sisy_buf_append(b, data, n);
}

void sisy_buf_free(sisy_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}
