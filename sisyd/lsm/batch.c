/* batch.c — building, merging and decoding write batches (see batch.h for
 * the encoding). Adding to a batch checks lsm.h's limits, so a batch that
 * exists is always writable; decoding re-checks them, since a WAL record is
 * untrusted input after a crash or a flipped bit. */
#include "batch.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"

void lsm_batch_init(sisy_lsm_batch *b, uint8_t *buf, size_t cap)
{
	assert(cap >= LSM_BATCH_HEADER);
	memset(b, 0, sizeof *b);
	b->rep = buf;
	b->cap = cap;
	b->len = LSM_BATCH_HEADER;
	memset(buf, 0, LSM_BATCH_HEADER);
}

bool lsm_batch_init_heap(sisy_lsm_batch *b, size_t cap)
{
	uint8_t *buf = malloc(cap);
	if (buf == NULL)
		return false;
	lsm_batch_init(b, buf, cap);
	b->owned = true;
	return true;
}

void lsm_batch_release(sisy_lsm_batch *b)
{
	if (b->owned)
		free(b->rep);
	b->rep = NULL;
	b->owned = false;
}

sisy_lsm_batch *sisy_lsm_batch_new(void)
{
	sisy_lsm_batch *b = malloc(sizeof *b);
	if (b != NULL && !lsm_batch_init_heap(b, 256)) {
		free(b);
		return NULL;
	}
	return b;
}

void sisy_lsm_batch_free(sisy_lsm_batch *b)
{
	if (b == NULL)
		return;
	lsm_batch_release(b);
	free(b);
}

void sisy_lsm_batch_clear(sisy_lsm_batch *b)
{
	b->len = LSM_BATCH_HEADER;
	b->count = 0;
	b->has_meta = false;
	memset(b->rep, 0, LSM_BATCH_HEADER);
}

void lsm_batch_set_seq(sisy_lsm_batch *b, uint64_t seq)
{
	sisy_put_u64(b->rep, seq);
}

static sisy_err batch_reserve(sisy_lsm_batch *b, size_t extra)
{
	if (extra <= b->cap - b->len)
		return SISY_OK;
	size_t cap = b->cap * 2;
	while (cap - b->len < extra)
		cap *= 2;
	uint8_t *p;
	if (b->owned) {
		p = realloc(b->rep, cap);
	} else {
		p = malloc(cap);
		if (p != NULL)
			memcpy(p, b->rep, b->len);
	}
	if (p == NULL)
		return sisy_errf(SISY_E_NOMEM,
				 "batch.c: out of memory growing a batch to "
				 "%zu bytes",
				 cap);
	b->rep = p;
	b->cap = cap;
	b->owned = true;
	return SISY_OK;
}

static void batch_put_bytes(sisy_lsm_batch *b, const void *p, size_t n)
{
	b->len += sisy_put_varint32(b->rep + b->len, (uint32_t)n);
	if (n)
		memcpy(b->rep + b->len, p, n);
	b->len += n;
}

static sisy_err batch_check(const sisy_lsm_batch *b, size_t klen, size_t vlen,
			    size_t need)
{
	if (klen == 0)
		return sisy_errf(SISY_E_INVAL,
				 "batch.c: empty key; keys are "
				 "1..%u bytes",
				 SISY_LSM_MAX_KEY);
	if (klen > SISY_LSM_MAX_KEY)
		return sisy_errf(SISY_E_TOOBIG,
				 "batch.c: key of %zu bytes exceeds the limit "
				 "of %u (SISY_LSM_MAX_KEY)",
				 klen, SISY_LSM_MAX_KEY);
	if (vlen > SISY_LSM_MAX_VALUE)
		return sisy_errf(SISY_E_TOOBIG,
				 "batch.c: value of %zu bytes exceeds the "
				 "limit of %u (SISY_LSM_MAX_VALUE)",
				 vlen, SISY_LSM_MAX_VALUE);
	if (b->count >= SISY_LSM_MAX_BATCH_OPS)
		return sisy_errf(SISY_E_TOOBIG,
				 "batch.c: batch already holds %u operations, "
				 "the limit (SISY_LSM_MAX_BATCH_OPS); split it",
				 b->count);
	if (need > SISY_LSM_MAX_BATCH_BYTES - b->len)
		return sisy_errf(SISY_E_TOOBIG,
				 "batch.c: batch would exceed %u bytes "
				 "(SISY_LSM_MAX_BATCH_BYTES); split it",
				 SISY_LSM_MAX_BATCH_BYTES);
	return SISY_OK;
}

static void batch_count_one(sisy_lsm_batch *b)
{
	b->count++;
	sisy_put_u32(b->rep + 8, b->count);
}

sisy_err sisy_lsm_batch_put(sisy_lsm_batch *b, const void *key, size_t klen,
			    const void *val, size_t vlen)
{
	size_t need = 1 + 2 * SISY_VARINT32_MAX + klen + vlen;
	sisy_err rc = batch_check(b, klen, vlen, need);
	if (rc == SISY_OK)
		rc = batch_reserve(b, need);
	if (rc != SISY_OK)
		return rc;
	b->rep[b->len++] = LSM_BATCH_TAG_PUT;
	batch_put_bytes(b, key, klen);
	batch_put_bytes(b, val, vlen);
	batch_count_one(b);
	return SISY_OK;
}

sisy_err sisy_lsm_batch_delete(sisy_lsm_batch *b, const void *key, size_t klen)
{
	size_t need = 1 + SISY_VARINT32_MAX + klen;
	sisy_err rc = batch_check(b, klen, 0, need);
	if (rc == SISY_OK)
		rc = batch_reserve(b, need);
	if (rc != SISY_OK)
		return rc;
	b->rep[b->len++] = LSM_BATCH_TAG_DELETE;
	batch_put_bytes(b, key, klen);
	batch_count_one(b);
	return SISY_OK;
}

sisy_err sisy_lsm_batch_set_meta(sisy_lsm_batch *b, const void *meta,
				 size_t len)
{
	if (len > SISY_LSM_MAX_META)
		return sisy_errf(SISY_E_TOOBIG,
				 "batch.c: metadata of %zu bytes exceeds the "
				 "limit of %u (SISY_LSM_MAX_META)",
				 len, SISY_LSM_MAX_META);
	size_t need = 1 + SISY_VARINT32_MAX + len;
	if (need > SISY_LSM_MAX_BATCH_BYTES - b->len)
		return sisy_errf(SISY_E_TOOBIG,
				 "batch.c: batch would exceed %u bytes "
				 "(SISY_LSM_MAX_BATCH_BYTES)",
				 SISY_LSM_MAX_BATCH_BYTES);
	sisy_err rc = batch_reserve(b, need);
	if (rc != SISY_OK)
		return rc;
	b->rep[b->len++] = LSM_BATCH_TAG_META;
	b->len += sisy_put_varint32(b->rep + b->len, (uint32_t)len);
	b->has_meta = true;
	b->meta_off = b->len;
	b->meta_len = len;
	if (len)
		memcpy(b->rep + b->len, meta, len);
	b->len += len;
	return SISY_OK;
}

sisy_err lsm_batch_add_seal(sisy_lsm_batch *b, uint64_t log_number,
			    uint64_t log_size)
{
	sisy_err rc = batch_reserve(b, 1 + 2 * SISY_VARINT64_MAX);
	if (rc != SISY_OK)
		return rc;
	b->rep[b->len++] = LSM_BATCH_TAG_SEAL;
	b->len += sisy_put_varint64(b->rep + b->len, log_number);
	b->len += sisy_put_varint64(b->rep + b->len, log_size);
	return SISY_OK;
}

uint32_t sisy_lsm_batch_count(const sisy_lsm_batch *b)
{
	return b->count;
}

size_t sisy_lsm_batch_bytes(const sisy_lsm_batch *b)
{
	return b->len;
}

sisy_err lsm_batch_append(sisy_lsm_batch *dst, const sisy_lsm_batch *src)
{
	size_t n = src->len - LSM_BATCH_HEADER;
	sisy_err rc = batch_reserve(dst, n);
	if (rc != SISY_OK)
		return rc;
	if (src->has_meta) {
		dst->has_meta = true;
		dst->meta_off = dst->len + (src->meta_off - LSM_BATCH_HEADER);
		dst->meta_len = src->meta_len;
	}
	memcpy(dst->rep + dst->len, src->rep + LSM_BATCH_HEADER, n);
	dst->len += n;
	dst->count += src->count;
	sisy_put_u32(dst->rep + 8, dst->count);
	return SISY_OK;
}

bool lsm_batch_header(sisy_slice rep, uint64_t *seq, uint32_t *count)
{
	if (rep.len < LSM_BATCH_HEADER)
		return false;
	*seq = sisy_get_u64(rep.data);
	*count = sisy_get_u32(rep.data + 8);
	return true;
}

static const uint8_t *batch_get_bytes(const uint8_t *p, const uint8_t *end,
				      uint32_t max, sisy_slice *out)
{
	uint32_t n;
	p = sisy_get_varint32(p, end, &n);
	if (p == NULL || n > max || n > (size_t)(end - p))
		return NULL;
	*out = sisy_slice_make(p, n);
	return p + n;
}

/* One pass over the records; calls h when non-NULL. Checks everything, so a
 * pass with h == NULL validates the batch before anything is applied. */
static sisy_err batch_walk(sisy_slice rep, const lsm_batch_handler *h)
{
	uint64_t seq;
	uint32_t count;
	if (!lsm_batch_header(rep, &seq, &count))
		return sisy_errf(SISY_E_CORRUPT,
				 "batch.c: batch of %zu bytes is shorter than "
				 "its header",
				 rep.len);
	if (count > rep.len / 3 ||
	    (count > 0 && (seq == 0 || seq > LSM_MAX_SEQ - count + 1)))
		return sisy_errf(SISY_E_CORRUPT,
				 "batch.c: batch header out of range (seq "
				 "%llu, %u operations)",
				 (unsigned long long)seq, count);
	const uint8_t *p = rep.data + LSM_BATCH_HEADER;
	const uint8_t *end = rep.data + rep.len;
	uint32_t seen = 0;
	sisy_err rc = SISY_OK;
	while (p < end && rc == SISY_OK) {
		uint8_t tag = *p;
		sisy_slice k = {0}, v = {0};
		uint64_t seal_num = 0, seal_size = 0;
		const uint8_t *q = NULL;
		bool op =
		    tag == LSM_BATCH_TAG_PUT || tag == LSM_BATCH_TAG_DELETE;
		if (tag == LSM_BATCH_TAG_PUT) {
			q = batch_get_bytes(p + 1, end, SISY_LSM_MAX_KEY, &k);
			if (q != NULL)
				q = batch_get_bytes(q, end, SISY_LSM_MAX_VALUE,
						    &v);
		} else if (tag == LSM_BATCH_TAG_DELETE) {
			q = batch_get_bytes(p + 1, end, SISY_LSM_MAX_KEY, &k);
		} else if (tag == LSM_BATCH_TAG_META) {
			q = batch_get_bytes(p + 1, end, SISY_LSM_MAX_META, &v);
		} else if (tag == LSM_BATCH_TAG_SEAL) {
			q = sisy_get_varint64(p + 1, end, &seal_num);
			if (q != NULL)
				q = sisy_get_varint64(q, end, &seal_size);
		}
		if (q == NULL || (op && (k.len == 0 || seen >= count)))
			return sisy_errf(SISY_E_CORRUPT,
					 "batch.c: malformed record (tag %u) "
					 "at byte %zu of a batch",
					 tag, (size_t)(p - rep.data));
		if (h != NULL) {
			if (tag == LSM_BATCH_TAG_PUT)
				rc = h->put(h->ctx, seq + seen, k, v);
			else if (tag == LSM_BATCH_TAG_DELETE)
				rc = h->del(h->ctx, seq + seen, k);
			else if (tag == LSM_BATCH_TAG_META && h->meta != NULL)
				rc = h->meta(h->ctx, v);
			else if (tag == LSM_BATCH_TAG_SEAL && h->seal != NULL)
				rc = h->seal(h->ctx, seal_num, seal_size);
		}
		seen += op;
		p = q;
	}
	if (rc == SISY_OK && seen != count)
		rc = sisy_errf(SISY_E_CORRUPT,
			       "batch.c: batch header says %u operations, "
			       "found %u",
			       count, seen);
	return rc;
}

sisy_err lsm_batch_iterate(sisy_slice rep, const lsm_batch_handler *h)
{
	sisy_err rc = batch_walk(rep, NULL);
	return rc == SISY_OK ? batch_walk(rep, h) : rc;
}

sisy_err lsm_batch_apply(sisy_slice rep, const lsm_batch_handler *h)
{
	return batch_walk(rep, h);
}
