/* Tests sisyd/raftlog/format.c: records and segment headers round-trip;
 * every truncation asks for more bytes; every single-bit flip is rejected;
 * zeros are never a record; segment names parse back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "format.h"
#include "hash.h"

static void test_records_roundtrip(void **state)
{
	(void)state;
	sisy_buf b = {0};
	uint8_t payload[300];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 7);
	assert_int_equal(raftlog_put_entry(&b, 7, UINT64_MAX, 3, payload, 300),
			 SISY_OK);
	assert_int_equal(raftlog_put_hardstate(&b, 1, 9, 2, 100), SISY_OK);
	assert_int_equal(raftlog_put_base(&b, 1, 50, 8), SISY_OK);
	assert_int_equal(raftlog_put_entry(&b, 1, 51, 8, NULL, 0), SISY_OK);
	assert_int_equal(raftlog_put_seal(&b, 42), SISY_OK);
	raftlog_rec r;
	size_t off = 0, need;
	assert_int_equal(raftlog_rec_decode(b.data, b.len, &r, &need),
			 RAFTLOG_PARSE_OK);
	assert_int_equal(r.type, RAFTLOG_REC_ENTRY);
	assert_int_equal(r.group, 7);
	assert_true(r.index == UINT64_MAX);
	assert_int_equal(r.term, 3);
	assert_int_equal(r.plen, 300);
	assert_memory_equal(r.payload, payload, 300);
	off += r.size;
	assert_int_equal(
	    raftlog_rec_decode(b.data + off, b.len - off, &r, &need),
	    RAFTLOG_PARSE_OK);
	assert_int_equal(r.type, RAFTLOG_REC_HARDSTATE);
	assert_int_equal(r.term, 9);
	assert_int_equal(r.vote, 2);
	assert_int_equal(r.commit, 100);
	off += r.size;
	assert_int_equal(
	    raftlog_rec_decode(b.data + off, b.len - off, &r, &need),
	    RAFTLOG_PARSE_OK);
	assert_int_equal(r.type, RAFTLOG_REC_BASE);
	assert_int_equal(r.index, 50);
	assert_int_equal(r.term, 8);
	off += r.size;
	assert_int_equal(
	    raftlog_rec_decode(b.data + off, b.len - off, &r, &need),
	    RAFTLOG_PARSE_OK);
	assert_int_equal(r.type, RAFTLOG_REC_ENTRY);
	assert_int_equal(r.plen, 0);
	off += r.size;
	assert_int_equal(
	    raftlog_rec_decode(b.data + off, b.len - off, &r, &need),
	    RAFTLOG_PARSE_OK);
	assert_int_equal(r.type, RAFTLOG_REC_SEAL);
	assert_int_equal(r.seq, 42);
	off += r.size;
	assert_int_equal(off, b.len);
	sisy_buf_free(&b);
}

static void test_truncations_and_flips(void **state)
{
	(void)state;
	sisy_buf b = {0};
	uint8_t payload[40];
	memset(payload, 0xab, sizeof payload);
	assert_int_equal(raftlog_put_entry(&b, 3, 1000, 5, payload, 40),
			 SISY_OK);
	raftlog_rec r;
	size_t need;
	for (size_t cut = 0; cut < b.len; cut++) {
		raftlog_parse p = raftlog_rec_decode(b.data, cut, &r, &need);
		assert_int_equal(p, RAFTLOG_PARSE_SHORT);
		assert_int_equal(need, cut < RAFTLOG_REC_HDR ? RAFTLOG_REC_HDR
							     : b.len);
	}
	for (size_t i = 0; i < b.len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			b.data[i] ^= (uint8_t)(1 << bit);
			raftlog_parse p =
			    raftlog_rec_decode(b.data, b.len, &r, &need);
			/* A flip in the length may also ask for more bytes. */
			assert_int_not_equal(p, RAFTLOG_PARSE_OK);
			b.data[i] ^= (uint8_t)(1 << bit);
		}
	}
	uint8_t zeros[64] = {0};
	assert_int_equal(raftlog_rec_decode(zeros, sizeof zeros, &r, &need),
			 RAFTLOG_PARSE_BAD);
	/* A valid checksum over a body that does not parse is still bad. */
	uint8_t bad[RAFTLOG_REC_HDR + 2] = {0};
	sisy_put_u32(bad + 4, 2);
	bad[8] = RAFTLOG_REC_HARDSTATE;
	bad[9] = 1;
	bad[10] = 2;
	sisy_put_u32(bad, sisy_checksum32(bad + 4, sizeof bad - 4));
	assert_int_equal(raftlog_rec_decode(bad, sizeof bad, &r, &need),
			 RAFTLOG_PARSE_BAD);
	bad[8] = 99; /* unknown type */
	sisy_put_u32(bad, sisy_checksum32(bad + 4, sizeof bad - 4));
	assert_int_equal(raftlog_rec_decode(bad, sizeof bad, &r, &need),
			 RAFTLOG_PARSE_BAD);
	sisy_buf_free(&b);
}

static void test_segment_header(void **state)
{
	(void)state;
	uint8_t h[RAFTLOG_HDR_SIZE];
	raftlog_seghdr_encode(h, 0x1234, 5000);
	assert_memory_equal(h, "SISYRLOG", 8);
	raftlog_seghdr d;
	assert_int_equal(raftlog_seghdr_decode(h, "x", &d), SISY_OK);
	assert_int_equal(d.version, RAFTLOG_VERSION);
	assert_int_equal(d.seq, 0x1234);
	assert_int_equal(d.torn_window, 5000);
	for (size_t i = 0; i < 44; i++) {
		h[i] ^= 0x40;
		assert_int_not_equal(raftlog_seghdr_decode(h, "x", &d),
				     SISY_OK);
		h[i] ^= 0x40;
	}
	sisy_put_u32(h + 8, RAFTLOG_VERSION + 1);
	sisy_put_u32(h + 40, sisy_checksum32(h, 40));
	assert_int_equal(raftlog_seghdr_decode(h, "seg", &d), SISY_E_VERSION);
	assert_non_null(strstr(sisy_errmsg(), "seg"));
}

static void test_segment_names(void **state)
{
	(void)state;
	char p[64];
	assert_int_equal(raftlog_seg_path(p, sizeof p, "/d", 0xabc), SISY_OK);
	assert_string_equal(p, "/d/0000000000000abc.rlog");
	assert_int_equal(raftlog_seg_parse_name(p + 3), 0xabc);
	assert_int_equal(raftlog_seg_parse_name("0000000000000abc.log"), 0);
	assert_int_equal(raftlog_seg_parse_name("000000000000abc.rlog"), 0);
	assert_int_equal(raftlog_seg_parse_name("0000000000000ABC.rlog"), 0);
	assert_int_equal(raftlog_seg_parse_name("LOCK"), 0);
	assert_int_equal(raftlog_seg_path(p, 10, "/d", 1), SISY_E_TOOBIG);
}

/* raftlog_checksum32 (XXH3 inlined in format.c) is sisy_checksum32 (the
 * library's) for every length XXH3 treats apart (0-3, 4-8, 9-16, 17-128,
 * 129-240, longer: stripes and blocks) and for unaligned starts. */
static void test_checksum_equals_library(void **state)
{
	(void)state;
	enum { MAX = 3000 };
	uint8_t *buf = malloc(MAX + 8);
	assert_non_null(buf);
	uint64_t x = 0x243f6a8885a308d3ULL;
	for (size_t i = 0; i < MAX + 8; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		buf[i] = (uint8_t)(x >> 56);
	}
	for (size_t len = 0; len <= MAX; len++) {
		size_t off = len % 8;
		assert_int_equal(raftlog_checksum32(buf + off, len),
				 sisy_checksum32(buf + off, len));
	}
	free(buf);
	static const size_t big[] = {4095, 4096, 65536 + 13, 1 << 20};
	uint8_t *b2 = malloc(big[3] + 1);
	assert_non_null(b2);
	for (size_t i = 0; i <= big[3]; i++)
		b2[i] = (uint8_t)(i * 131 + (i >> 9));
	for (size_t k = 0; k < sizeof big / sizeof *big; k++)
		assert_int_equal(raftlog_checksum32(b2 + 1, big[k]),
				 sisy_checksum32(b2 + 1, big[k]));
	free(b2);
}

/* The bytes of an ENTRY record as format.h lays them out, built here by
 * hand with the library's checksum: the encoder must produce exactly
 * these, whatever the sizes of the varints and the payload. */
static void test_entry_bytes_vs_reference(void **state)
{
	(void)state;
	static const uint64_t nums[] = {
	    0,	       1,     127,	128,	    300,
	    16383,     16384, 1u << 21, 1ull << 35, UINT64_MAX - 1,
	    UINT64_MAX};
	enum { N = sizeof nums / sizeof *nums };
	uint8_t payload[700], want[700 + RAFTLOG_ENTRY_OVERHEAD];
	for (size_t i = 0; i < sizeof payload; i++)
		payload[i] = (uint8_t)(i * 29 + 3);
	sisy_buf b = {0};
	for (size_t k = 0; k < 400; k++) {
		uint64_t g = nums[k % N], idx = nums[(k / N) % N],
			 t = nums[(k * 7 + 3) % N];
		size_t len = (k * 37) % sizeof payload;
		size_t w = RAFTLOG_REC_HDR;
		w += sisy_put_varint64(want + w, g);
		w += sisy_put_varint64(want + w, idx);
		w += sisy_put_varint64(want + w, t);
		memcpy(want + w, payload, len);
		w += len;
		sisy_put_u32(want + 4, (uint32_t)(w - RAFTLOG_REC_HDR));
		want[8] = RAFTLOG_REC_ENTRY;
		sisy_put_u32(want, sisy_checksum32(want + 4, w - 4));
		size_t start = b.len;
		assert_int_equal(raftlog_put_entry(&b, g, idx, t, payload, len),
				 SISY_OK);
		assert_int_equal(b.len - start, w);
		assert_memory_equal(b.data + start, want, w);
	}
	sisy_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_records_roundtrip),
	    cmocka_unit_test(test_truncations_and_flips),
	    cmocka_unit_test(test_segment_header),
	    cmocka_unit_test(test_segment_names),
	    cmocka_unit_test(test_checksum_equals_library),
	    cmocka_unit_test(test_entry_bytes_vs_reference),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
