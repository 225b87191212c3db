/* Tests sisyd/server/decode.c: the hand decoder accepts exactly the
 * canonical GET / EXISTS / PUT-without-condition encodings and then agrees
 * with protobuf-c field for field; everything else (other requests, a
 * condition, fields out of order or repeated, unknown fields, two ops,
 * a boolean that is not 0 or 1, truncations) falls back to protobuf-c.
 * Random mutations of valid requests check the agreement rule at large
 * (fuzz_request does the same on the corpus). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rand.h"
#include "sisy.pb-c.h"
#include "srv_int.h"

static srv_req *new_req(void)
{
	return calloc(1, sizeof(srv_req));
}

static bool bin_eq(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
	return a.len == b.len &&
	       (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* The fields the server reads, equal in both decodings. */
static bool same(const Sisy__Request *a, const Sisy__Request *b)
{
	if (a->base.descriptor != b->base.descriptor ||
	    a->base.n_unknown_fields != b->base.n_unknown_fields ||
	    a->id != b->id || a->consistency != b->consistency ||
	    a->client_id != b->client_id || a->seq != b->seq ||
	    a->lowest_unanswered != b->lowest_unanswered ||
	    a->op_case != b->op_case)
		return false;
	switch (a->op_case) {
	case SISY__REQUEST__OP_GET:
		return a->get->base.descriptor == b->get->base.descriptor &&
		       bin_eq(a->get->key, b->get->key) &&
		       a->get->with_version == b->get->with_version;
	case SISY__REQUEST__OP_PUT:
		return a->put->base.descriptor == b->put->base.descriptor &&
		       bin_eq(a->put->key, b->put->key) &&
		       bin_eq(a->put->value, b->put->value) &&
		       a->put->cond == NULL && b->put->cond == NULL;
	case SISY__REQUEST__OP_EXISTS:
		return a->exists->base.descriptor ==
			   b->exists->base.descriptor &&
		       bin_eq(a->exists->key, b->exists->key);
	default:
		return false;
	}
}

/* decode_fast on bytes: NULL, or equal to protobuf-c's decoding (which
 * must then succeed too). Returns whether the fast path took it. */
static bool check(const uint8_t *d, size_t n)
{
	srv_req *r = new_req();
	Sisy__Request *f = decode_fast(r, sisy_slice_make(d, n));
	Sisy__Request *ref = sisy__request__unpack(NULL, n, d);
	if (f != NULL) {
		assert_non_null(ref);
		assert_true(same(f, ref));
	}
	/* decode_request gives protobuf-c's answer either way */
	Sisy__Request *all = decode_request(r, sisy_slice_make(d, n));
	assert_true((all == NULL) == (ref == NULL));
	if (ref)
		sisy__request__free_unpacked(ref, NULL);
	r->msg = NULL;
	handler_req_free(r);
	return f != NULL;
}

static size_t pack(const Sisy__Request *m, uint8_t *out)
{
	return sisy__request__pack(m, out);
}

static void test_canonical_taken(void **state)
{
	(void)state;
	static uint8_t val[3000], buf[4096];
	for (size_t i = 0; i < sizeof val; i++)
		val[i] = (uint8_t)i;
	static const size_t vlens[] = {0, 1, 100, 127, 128, 3000};
	static const uint64_t ids[] = {0, 1, 300, UINT64_MAX};
	for (size_t a = 0; a < 4; a++)
		for (size_t b = 0; b < 6; b++)
			for (int op = 0; op < 3; op++) {
				Sisy__Request m = SISY__REQUEST__INIT;
				Sisy__GetRequest g = SISY__GET_REQUEST__INIT;
				Sisy__PutRequest p = SISY__PUT_REQUEST__INIT;
				Sisy__ExistsRequest e =
				    SISY__EXISTS_REQUEST__INIT;
				m.id = ids[a];
				m.consistency = (Sisy__Consistency)(b % 2);
				m.client_id = ids[(a + 1) % 4];
				m.seq = b * 1000;
				m.lowest_unanswered = b;
				ProtobufCBinaryData k = {b + 1, val + 7};
				if (op == 0) {
					g.key = k;
					g.with_version = b % 2;
					m.op_case = SISY__REQUEST__OP_GET;
					m.get = &g;
				} else if (op == 1) {
					p.key = k;
					p.value.data = val;
					p.value.len = vlens[b];
					m.op_case = SISY__REQUEST__OP_PUT;
					m.put = &p;
				} else {
					e.key = k;
					m.op_case = SISY__REQUEST__OP_EXISTS;
					m.exists = &e;
				}
				size_t n = pack(&m, buf);
				assert_true(check(buf, n));
			}
}

static void test_others_fall_back(void **state)
{
	(void)state;
	uint8_t buf[512];
	/* a condition, a DEL, a PING: protobuf-c's */
	Sisy__Request m = SISY__REQUEST__INIT;
	Sisy__PutRequest p = SISY__PUT_REQUEST__INIT;
	Sisy__Condition c = SISY__CONDITION__INIT;
	c.kind_case = SISY__CONDITION__KIND_IF_ABSENT;
	c.if_absent = true;
	p.key.data = (uint8_t *)"k";
	p.key.len = 1;
	p.cond = &c;
	m.id = 5;
	m.op_case = SISY__REQUEST__OP_PUT;
	m.put = &p;
	assert_false(check(buf, pack(&m, buf)));
	Sisy__PingRequest pr = SISY__PING_REQUEST__INIT;
	m.op_case = SISY__REQUEST__OP_PING;
	m.ping = &pr;
	assert_false(check(buf, pack(&m, buf)));
	/* hand-made non-canonical GETs: id after the op; id twice; an
	 * unknown field; with_version 2; two ops; an empty message */
	static const uint8_t after[] = {0x52, 3, 0x0a, 1, 'k', 0x08, 7};
	static const uint8_t twice[] = {0x08, 1,    0x08, 2,  0x52,
					3,    0x0a, 1,	  'k'};
	static const uint8_t unknown[] = {0x08, 1,    0x30, 1,	0x52,
					  3,	0x0a, 1,    'k'};
	static const uint8_t wv2[] = {0x52, 5, 0x0a, 1, 'k', 0x10, 2};
	static const uint8_t two[] = {0x52, 3, 0x0a, 1, 'k',
				      0x6a, 3, 0x0a, 1, 'k'};
	static const uint8_t keytwice[] = {0x52, 6, 0x0a, 1, 'k', 0x0a, 1, 'j'};
	assert_false(check(after, sizeof after));
	assert_false(check(twice, sizeof twice));
	assert_false(check(unknown, sizeof unknown));
	assert_false(check(wv2, sizeof wv2));
	assert_false(check(two, sizeof two));
	assert_false(check(keytwice, sizeof keytwice));
	assert_false(check(buf, 0));
	/* each header field twice, or out of order, before a PUT */
	for (uint8_t f = 1; f <= 5; f++) {
		uint8_t rep[] = {(uint8_t)(f << 3),
				 1,
				 (uint8_t)(f << 3),
				 0,
				 0x5a,
				 3,
				 0x0a,
				 1,
				 'k'};
		assert_false(check(rep, sizeof rep));
		uint8_t ord[] = {(uint8_t)(f << 3),
				 1,
				 (uint8_t)(f == 1 ? 0x10 : 0x08),
				 0,
				 0x5a,
				 3,
				 0x0a,
				 1,
				 'k'};
		assert_true(check(ord, sizeof ord) == (f == 1));
	}
	/* truncated everywhere */
	static const uint8_t good[] = {0x08, 9, 0x52, 5, 0x0a, 1, 'k', 0x10, 1};
	assert_true(check(good, sizeof good));
	for (size_t n = 0; n < sizeof good; n++)
		assert_false(check(good, n));
}

/* Header varints of every length, written by hand so that non-minimal
 * forms and a tenth byte above 1 appear too, each followed by a PUT long
 * enough that the decoder reads them without its per-byte bounds test:
 * taken exactly when sisy_get_varint64 accepts, and then equal. */
static void test_varints_vs_reference(void **state)
{
	(void)state;
	sisy_rand rnd;
	sisy_rand_seed(&rnd, 7);
	uint8_t buf[128];
	size_t taken = 0;
	for (int t = 0; t < 20000; t++) {
		uint8_t field = (uint8_t)(1 + sisy_rand_below(&rnd, 5));
		size_t len = 1 + sisy_rand_below(&rnd, 11); /* 11: too long */
		size_t n = 0;
		buf[n++] = (uint8_t)(field << 3);
		uint8_t *v = buf + n;
		for (size_t i = 0; i < len; i++)
			v[i] = (uint8_t)sisy_rand_next(&rnd);
		for (size_t i = 0; i + 1 < len; i++)
			v[i] |= 0x80;
		v[len - 1] &= 0x7f;
		if (sisy_rand_below(&rnd, 3) == 0)
			v[len - 1] = (uint8_t)sisy_rand_below(&rnd, 3);
		n += len;
		static const uint8_t put[] = {0x5a, 14,	 0x0a, 4,  'k', 'e',
					      'y',  '1', 0x12, 6,  'v', 'a',
					      'l',  'u', 'e',  '!'};
		memcpy(buf + n, put, sizeof put);
		n += sizeof put;
		uint64_t want;
		const uint8_t *q = sisy_get_varint64(v, v + len, &want);
		bool ok = q == v + len && (field != 2 || want <= INT32_MAX);
		srv_req *r = new_req();
		Sisy__Request *f = decode_fast(r, sisy_slice_make(buf, n));
		assert_true((f != NULL) == ok);
		if (f) {
			uint64_t got = field == 1   ? f->id
				       : field == 2 ? (uint64_t)f->consistency
				       : field == 3 ? f->client_id
				       : field == 4 ? f->seq
						    : f->lowest_unanswered;
			assert_true(got == want);
			taken++;
		}
		handler_req_free(r);
		(void)check(buf, n); /* protobuf-c agrees */
	}
	assert_true(taken > 5000);
}

static void test_mutations_agree(void **state)
{
	(void)state;
	sisy_rand r;
	sisy_rand_seed(&r, 42);
	uint8_t buf[600], val[200];
	memset(val, 'v', sizeof val);
	size_t taken = 0;
	for (int t = 0; t < 30000; t++) {
		Sisy__Request m = SISY__REQUEST__INIT;
		Sisy__PutRequest p = SISY__PUT_REQUEST__INIT;
		m.id = sisy_rand_next(&r) >> (sisy_rand_below(&r, 64));
		p.key.data = val;
		p.key.len = 1 + sisy_rand_below(&r, 20);
		p.value.data = val;
		p.value.len = sisy_rand_below(&r, 150);
		m.op_case = SISY__REQUEST__OP_PUT;
		m.put = &p;
		size_t n = pack(&m, buf);
		int flips = (int)sisy_rand_below(&r, 4);
		for (int i = 0; i < flips && n > 0; i++)
			buf[sisy_rand_below(&r, n)] ^=
			    (uint8_t)(1u << sisy_rand_below(&r, 8));
		if (sisy_rand_below(&r, 4) == 0 && n > 0)
			n = sisy_rand_below(&r, n);
		taken += check(buf, n);
	}
	assert_true(taken > 1000); /* the fast path was exercised */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_canonical_taken),
	    cmocka_unit_test(test_others_fall_back),
	    cmocka_unit_test(test_varints_vs_reference),
	    cmocka_unit_test(test_mutations_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
