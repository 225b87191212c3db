/* block.c — building and reading prefix-compressed blocks (layout in
 * block.h).
 *
 * The builder keeps the first restart (always offset 0) implicit, so
 * resetting it for the next block cannot fail. The reader never trusts a
 * byte: every varint, length and restart offset is bounds-checked before it
 * is used, keys shorter than an internal-key trailer are rejected, and a
 * restart entry must store its whole key.
 */
#include "block.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "dbformat.h"

/* --- building ------------------------------------------------------------ */

void lsm_block_builder_init(lsm_block_builder *b, int restart_interval)
{
	assert(restart_interval >= 1);
	memset(b, 0, sizeof *b);
	b->interval = restart_interval;
}

void lsm_block_builder_free(lsm_block_builder *b)
{
	sisy_buf_free(&b->buf);
	sisy_buf_free(&b->restarts);
	sisy_buf_free(&b->last_key);
}

void lsm_block_builder_reset(lsm_block_builder *b)
{
	/* last_key stays: the table builder reads the sealed block's last key
	 * from it (its index separator), and the next add overwrites it. */
	b->buf.len = 0;
	b->restarts.len = 0;
	b->counter = 0;
	b->entries = 0;
	b->finished = false;
}

/* Eight bytes at a time: the first differing byte of two little-endian
 * words is the lowest set byte of their xor. */
static size_t common_prefix(sisy_slice a, sisy_slice b)
{
	size_t n = a.len < b.len ? a.len : b.len, i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x =
		    sisy_get_u64(a.data + i) ^ sisy_get_u64(b.data + i);
		if (x != 0)
			return i + (size_t)__builtin_ctzll(x) / 8;
	}
	while (i < n && a.data[i] == b.data[i])
		i++;
	return i;
}

sisy_err lsm_block_builder_add(lsm_block_builder *b, sisy_slice key,
			       sisy_slice value)
{
	assert(!b->finished);
	assert(key.len >= 8);
	assert(b->entries == 0 ||
	       lsm_ikey_cmp(key, sisy_buf_slice(&b->last_key)) > 0);
	if (key.len > LSM_BLOCK_MAX_SIZE / 4 ||
	    value.len > LSM_BLOCK_MAX_SIZE / 4)
		return sisy_errf(SISY_E_TOOBIG,
				 "block.c: entry of %zu+%zu bytes is too large "
				 "for a block",
				 key.len, value.len);
	size_t shared = 0;
	sisy_err rc;
	if (b->counter >= b->interval) {
		rc = sisy_buf_append_u32(&b->restarts, (uint32_t)b->buf.len);
		if (rc != SISY_OK)
			return rc;
		b->counter = 0;
	} else if (b->entries > 0) {
		/* (last_key survives a reset: a block's first entry shares
		 * nothing, as its implicit restart requires) */
		shared = common_prefix(sisy_buf_slice(&b->last_key), key);
	}
	size_t unshared = key.len - shared;
	size_t need = 3 * SISY_VARINT32_MAX + unshared + value.len;
	if ((need > b->buf.cap - b->buf.len &&
	     (rc = sisy_buf_reserve(&b->buf, need)) != SISY_OK) ||
	    (key.len > b->last_key.cap &&
	     (rc = sisy_buf_reserve(&b->last_key, key.len - b->last_key.len)) !=
		 SISY_OK))
		return rc;
	/* Room is reserved: the entry goes in whole or not at all. */
	uint8_t *p = b->buf.data + b->buf.len;
	size_t h = sisy_put_varint32(p, (uint32_t)shared);
	h += sisy_put_varint32(p + h, (uint32_t)unshared);
	h += sisy_put_varint32(p + h, (uint32_t)value.len);
	memcpy(p + h, key.data + shared, unshared);
	if (value.len > 0)
		memcpy(p + h + unshared, value.data, value.len);
	b->buf.len += h + unshared + value.len;
	memcpy(b->last_key.data + shared, key.data + shared, unshared);
	b->last_key.len = key.len;
	b->counter++;
	b->entries++;
	return SISY_OK;
}

size_t lsm_block_builder_estimate(const lsm_block_builder *b)
{
	return b->buf.len + 4 + b->restarts.len + 4;
}

sisy_err lsm_block_builder_finish(lsm_block_builder *b, sisy_slice *out)
{
	assert(!b->finished);
	uint32_t n = 1 + (uint32_t)(b->restarts.len / 4);
	sisy_err rc = sisy_buf_reserve(&b->buf, 4 + b->restarts.len + 4);
	if (rc != SISY_OK)
		return rc;
	(void)sisy_buf_append_u32(&b->buf, 0);
	(void)sisy_buf_append(&b->buf, b->restarts.data, b->restarts.len);
	(void)sisy_buf_append_u32(&b->buf, n);
	b->finished = true;
	*out = sisy_buf_slice(&b->buf);
	return SISY_OK;
}

/* --- reading ------------------------------------------------------------- */

sisy_err lsm_block_parse(lsm_block *b, const uint8_t *data, size_t size)
{
	if (size < 8 || size > LSM_BLOCK_MAX_SIZE)
		return SISY_E_CORRUPT;
	uint32_t n = sisy_get_u32(data + size - 4);
	if (n == 0 || n > (size - 4) / 4)
		return SISY_E_CORRUPT;
	b->data = data;
	b->data_end = (uint32_t)(size - 4 - 4 * (size_t)n);
	b->nrestarts = n;
	return SISY_OK;
}

void lsm_block_cursor_init(lsm_block_cursor *c, const lsm_block *b)
{
	c->blk = *b;
	c->cur = b->data_end;
	c->next = b->data_end;
	c->value = sisy_slice_make(NULL, 0);
	c->klen = 0;
	c->kheap = NULL;
	c->kcap = 0;
	c->status = SISY_OK;
}

void lsm_block_cursor_free(lsm_block_cursor *c)
{
	free(c->kheap);
	c->kheap = NULL;
	c->kcap = 0;
}

static void cursor_fail(lsm_block_cursor *c, sisy_err rc)
{
	c->cur = c->next = c->blk.data_end;
	c->status = rc;
}

/* Decodes an entry header at p; NULL when it runs past end. */
static const uint8_t *decode_header(const uint8_t *p, const uint8_t *end,
				    uint32_t *shared, uint32_t *unshared,
				    uint32_t *vlen)
{
	if (end - p >= 3 && (p[0] | p[1] | p[2]) < 0x80) {
		*shared = p[0];
		*unshared = p[1];
		*vlen = p[2];
		return p + 3;
	}
	if ((p = sisy_get_varint32(p, end, shared)) == NULL ||
	    (p = sisy_get_varint32(p, end, unshared)) == NULL ||
	    (p = sisy_get_varint32(p, end, vlen)) == NULL)
		return NULL;
	return p;
}

static bool cursor_key_reserve(lsm_block_cursor *c, size_t len)
{
	if (len <= LSM_BLOCK_INLINE_KEY && c->kheap == NULL)
		return true;
	if (c->kheap != NULL && len <= c->kcap)
		return true;
	size_t cap = len < 256 ? 256 : len;
	uint8_t *p = malloc(cap);
	if (p == NULL)
		return false;
	memcpy(p, c->kheap != NULL ? c->kheap : c->kinl, c->klen);
	free(c->kheap);
	c->kheap = p;
	c->kcap = cap;
	return true;
}

/* Decodes the entry at off into the cursor. An entry at a restart point
 * must not share bytes with its predecessor. Off == data_end is the end. */
static void cursor_decode(lsm_block_cursor *c, uint32_t off, bool restart)
{
	const uint8_t *end = c->blk.data + c->blk.data_end;
	const uint8_t *p = c->blk.data + off;
	if (off >= c->blk.data_end) {
		if (off > c->blk.data_end)
			cursor_fail(c, SISY_E_CORRUPT);
		else
			c->cur = c->next = c->blk.data_end;
		return;
	}
	uint32_t shared, unshared, vlen;
	p = decode_header(p, end, &shared, &unshared, &vlen);
	if (p == NULL || (restart && shared != 0) || shared > c->klen ||
	    unshared > (size_t)(end - p) ||
	    vlen > (size_t)(end - p) - unshared ||
	    (size_t)shared + unshared < 8) {
		cursor_fail(c, SISY_E_CORRUPT);
		return;
	}
	size_t klen = (size_t)shared + unshared;
	if (!cursor_key_reserve(c, klen)) {
		cursor_fail(c, SISY_E_NOMEM);
		return;
	}
	uint8_t *k = c->kheap != NULL ? c->kheap : c->kinl;
	memcpy(k + shared, p, unshared);
	c->klen = klen;
	c->value = sisy_slice_make(p + unshared, vlen);
	c->cur = off;
	c->next = (uint32_t)(p + unshared + vlen - c->blk.data);
}

static uint32_t restart_off(const lsm_block *b, uint32_t i)
{
	return sisy_get_u32(b->data + b->data_end + 4 * (size_t)i);
}

/* The whole key stored at restart i, read in place; false if malformed. */
static bool restart_key(const lsm_block *b, uint32_t i, sisy_slice *key)
{
	uint32_t off = restart_off(b, i);
	if (off >= b->data_end)
		return false;
	const uint8_t *end = b->data + b->data_end;
	uint32_t shared, unshared, vlen;
	const uint8_t *p =
	    decode_header(b->data + off, end, &shared, &unshared, &vlen);
	if (p == NULL || shared != 0 || unshared < 8 ||
	    unshared > (size_t)(end - p))
		return false;
	*key = sisy_slice_make(p, unshared);
	return true;
}

void lsm_block_cursor_seek_first(lsm_block_cursor *c)
{
	c->status = SISY_OK;
	c->klen = 0;
	cursor_decode(c, restart_off(&c->blk, 0), true);
}

void lsm_block_cursor_seek(lsm_block_cursor *c, sisy_slice target)
{
	assert(target.len >= 8);
	c->status = SISY_OK;
	/* The last restart whose key is < target: the answer is after it. */
	uint32_t left = 0, right = c->blk.nrestarts - 1;
	while (left < right) {
		uint32_t mid = left + (right - left + 1) / 2;
		sisy_slice k;
		if (!restart_key(&c->blk, mid, &k)) {
			cursor_fail(c, SISY_E_CORRUPT);
			return;
		}
		if (lsm_ikey_cmp(k, target) < 0)
			left = mid;
		else
			right = mid - 1;
	}
	c->klen = 0;
	cursor_decode(c, restart_off(&c->blk, left), true);
	while (lsm_block_cursor_valid(c) &&
	       lsm_ikey_cmp(lsm_block_cursor_key(c), target) < 0)
		cursor_decode(c, c->next, false);
}

void lsm_block_cursor_next(lsm_block_cursor *c)
{
	assert(lsm_block_cursor_valid(c));
	cursor_decode(c, c->next, false);
}
