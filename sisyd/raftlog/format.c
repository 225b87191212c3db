/* format.c — encoding and decoding of segment headers and records (the
 * layout is in format.h). */
#include "format.h"

#include <assert.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "coding.h"
#include "hash.h"

/* The record checksum is sisy_checksum32 (XXH3, low 32 bits) inlined: the
 * writer computes one per record, and a call into libxxhash cost ~200
 * instructions for a 150-byte record. Same function, same bytes on disk:
 * test_format checks raftlog_checksum32 against sisy_checksum32. */
#define XXH_INLINE_ALL
#include <xxhash.h>

uint32_t raftlog_checksum32(const void *data, size_t len)
{
	return (uint32_t)XXH3_64bits(data, len);
}

void raftlog_seghdr_encode(uint8_t out[RAFTLOG_HDR_SIZE], uint64_t seq,
			   uint64_t torn_window)
{
	memset(out, 0, RAFTLOG_HDR_SIZE);
	memcpy(out, RAFTLOG_MAGIC, 8);
	sisy_put_u32(out + 8, RAFTLOG_VERSION);
	sisy_put_u64(out + 16, seq);
	sisy_put_u64(out + 24, torn_window);
	sisy_put_u32(out + 40, sisy_checksum32(out, 40));
}

sisy_err raftlog_seghdr_decode(const uint8_t *p, const char *path,
			       raftlog_seghdr *h)
{
	if (memcmp(p, RAFTLOG_MAGIC, 8) != 0)
		return sisy_errf(SISY_E_CORRUPT,
				 "raftlog: %s: not a raft log segment (bad "
				 "magic)",
				 path);
	if (sisy_get_u32(p + 40) != sisy_checksum32(p, 40))
		return sisy_errf(SISY_E_CORRUPT,
				 "raftlog: %s: segment header checksum "
				 "mismatch at offset 0",
				 path);
	h->version = sisy_get_u32(p + 8);
	if (h->version != RAFTLOG_VERSION)
		return sisy_errf(SISY_E_VERSION,
				 "raftlog: %s: segment format version %u, this "
				 "build reads version %u",
				 path, h->version, RAFTLOG_VERSION);
	h->seq = sisy_get_u64(p + 16);
	h->torn_window = sisy_get_u64(p + 24);
	return SISY_OK;
}

static bool decode_body(raftlog_rec *r, const uint8_t *p, const uint8_t *end)
{
	switch (r->type) {
	case RAFTLOG_REC_ENTRY:
		p = sisy_get_varint64(p, end, &r->group);
		p = p ? sisy_get_varint64(p, end, &r->index) : NULL;
		p = p ? sisy_get_varint64(p, end, &r->term) : NULL;
		if (p == NULL)
			return false;
		r->payload = p;
		r->plen = (size_t)(end - p);
		return true;
	case RAFTLOG_REC_HARDSTATE:
		p = sisy_get_varint64(p, end, &r->group);
		p = p ? sisy_get_varint64(p, end, &r->term) : NULL;
		p = p ? sisy_get_varint64(p, end, &r->vote) : NULL;
		p = p ? sisy_get_varint64(p, end, &r->commit) : NULL;
		return p == end;
	case RAFTLOG_REC_BASE:
		p = sisy_get_varint64(p, end, &r->group);
		p = p ? sisy_get_varint64(p, end, &r->index) : NULL;
		p = p ? sisy_get_varint64(p, end, &r->term) : NULL;
		return p == end;
	case RAFTLOG_REC_SEAL:
		p = sisy_get_varint64(p, end, &r->seq);
		return p == end;
	default:
		return false;
	}
}

raftlog_parse raftlog_rec_decode(const uint8_t *p, size_t avail, raftlog_rec *r,
				 size_t *need)
{
	if (avail < RAFTLOG_REC_HDR) {
		*need = RAFTLOG_REC_HDR;
		return RAFTLOG_PARSE_SHORT;
	}
	uint32_t crc = sisy_get_u32(p);
	uint32_t len = sisy_get_u32(p + 4);
	uint8_t type = p[8];
	if (type == 0 || len > RAFTLOG_BODY_MAX)
		return RAFTLOG_PARSE_BAD;
	size_t size = RAFTLOG_REC_HDR + (size_t)len;
	if (size > avail) {
		*need = size;
		return RAFTLOG_PARSE_SHORT;
	}
	if (raftlog_checksum32(p + 4, size - 4) != crc)
		return RAFTLOG_PARSE_BAD;
	memset(r, 0, sizeof *r);
	r->type = type;
	r->size = size;
	if (!decode_body(r, p + RAFTLOG_REC_HDR, p + size))
		return RAFTLOG_PARSE_BAD;
	return RAFTLOG_PARSE_OK;
}

/* Writes the header of a record whose body (already appended at `start` +
 * RAFTLOG_REC_HDR) ends at b->len. */
static void finish(sisy_buf *b, size_t start, uint8_t type)
{
	uint8_t *p = b->data + start;
	size_t len = b->len - start - RAFTLOG_REC_HDR;
	assert(len <= RAFTLOG_BODY_MAX);
	sisy_put_u32(p + 4, (uint32_t)len);
	p[8] = type;
	sisy_put_u32(p, raftlog_checksum32(p + 4, RAFTLOG_REC_HDR - 4 + len));
}

static sisy_err put_rec(sisy_buf *b, uint8_t type, const uint64_t *v, size_t nv,
			const uint8_t *data, size_t len)
{
	size_t start = b->len;
	size_t need = RAFTLOG_REC_HDR + nv * 10 + len;
	/* The writer's buffer nearly always has room: no call then. */
	sisy_err rc =
	    need <= b->cap - b->len ? SISY_OK : sisy_buf_reserve(b, need);
	if (rc != SISY_OK)
		return rc;
	b->len += RAFTLOG_REC_HDR;
	for (size_t i = 0; i < nv; i++)
		b->len += sisy_put_varint64(b->data + b->len, v[i]);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	finish(b, start, type);
	return SISY_OK;
}

sisy_err raftlog_put_entry(sisy_buf *b, uint64_t group, uint64_t index,
			   uint64_t term, const uint8_t *data, size_t len)
{
	uint64_t v[3] = {group, index, term};
	return put_rec(b, RAFTLOG_REC_ENTRY, v, 3, data, len);
}

sisy_err raftlog_put_hardstate(sisy_buf *b, uint64_t group, uint64_t term,
			       uint64_t vote, uint64_t commit)
{
	uint64_t v[4] = {group, term, vote, commit};
	return put_rec(b, RAFTLOG_REC_HARDSTATE, v, 4, NULL, 0);
}

sisy_err raftlog_put_base(sisy_buf *b, uint64_t group, uint64_t index,
			  uint64_t term)
{
	uint64_t v[3] = {group, index, term};
	return put_rec(b, RAFTLOG_REC_BASE, v, 3, NULL, 0);
}

sisy_err raftlog_put_seal(sisy_buf *b, uint64_t seq)
{
	return put_rec(b, RAFTLOG_REC_SEAL, &seq, 1, NULL, 0);
}

sisy_err raftlog_seg_path(char *out, size_t cap, const char *dir, uint64_t seq)
{
	int n = snprintf(out, cap, "%s/%016" PRIx64 "%s", dir, seq,
			 RAFTLOG_SEG_SUFFIX);
	if (n < 0 || (size_t)n >= cap)
		return sisy_errf(SISY_E_TOOBIG, "raftlog: path too long: %s",
				 dir);
	return SISY_OK;
}

uint64_t raftlog_seg_parse_name(const char *name)
{
	if (strlen(name) != RAFTLOG_SEG_NAME_LEN ||
	    strcmp(name + 16, RAFTLOG_SEG_SUFFIX) != 0)
		return 0;
	uint64_t seq = 0;
	for (int i = 0; i < 16; i++) {
		char c = name[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else
			return 0;
		seq = seq << 4 | (uint64_t)d;
	}
	return seq;
}
