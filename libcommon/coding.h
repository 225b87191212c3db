/* coding.h — fixed-width little-endian and varint encodings used by every
 * on-disk format (engine, Raft log). Header-only; all functions are pure.
 *
 * Varints are LEB128 (7 bits per byte, low group first, high bit = more),
 * as LevelDB and protobuf use: at most 5 bytes for 32 bits, 10 for 64. */
#ifndef SISY_CODING_H
#define SISY_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SISY_VARINT32_MAX 5
#define SISY_VARINT64_MAX 10

static inline void sisy_put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}
/* The fixed-width encodings are the host's own on little-endian hosts: one
 * load or store each (gcc -O2 did not merge byte loops: ~59 instructions a
 * u64). Other hosts are refused at build time. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "coding.h: the fixed-width encodings assume a little-endian host"
#endif
static inline void sisy_put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static inline void sisy_put_u64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}
static inline uint16_t sisy_get_u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t sisy_get_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline uint64_t sisy_get_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
/* Big-endian 32-bit, for the network frame length prefix. */
static inline void sisy_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
static inline uint32_t sisy_get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* Writes v at p; returns the number of bytes written (1..10). */
static inline size_t sisy_put_varint64(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}
static inline size_t sisy_put_varint32(uint8_t *p, uint32_t v)
{
	return sisy_put_varint64(p, v);
}
static inline size_t sisy_varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

/* Decodes a varint from [p, end). Returns a pointer past it, or NULL when the
 * input is truncated or the value overflows 64 (or 32) bits. */
static inline const uint8_t *sisy_get_varint64(const uint8_t *p,
					       const uint8_t *end, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift <= 63 && p < end; shift += 7) {
		uint64_t b = *p++;
		if (shift == 63 && b > 1)
			return NULL;
		r |= (b & 0x7f) << shift;
		if ((b & 0x80) == 0) {
			*v = r;
			return p;
		}
	}
	return NULL;
}
static inline const uint8_t *sisy_get_varint32(const uint8_t *p,
					       const uint8_t *end, uint32_t *v)
{
	if (p < end && (*p & 0x80) == 0) { /* fast path: one byte */
		*v = *p;
		return p + 1;
	}
	uint64_t r;
	const uint8_t *q = sisy_get_varint64(p, end, &r);
	if (q == NULL || r > UINT32_MAX)
		return NULL;
	*v = (uint32_t)r;
	return q;
}

#endif
