/* Tests libcommon/client_fast.c: the hand encoder writes exactly what
 * protobuf-c writes for GET / EXISTS / PUT requests (and declines the
 * rest), and the hand decoder takes the canonical OK replies to them,
 * agreeing with protobuf-c, while declining statuses, messages, other
 * results and non-canonical or damaged bytes (random mutations). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "rand.h"
#include "sisy.pb-c.h"

static uint8_t val[3000];

static void *heap_alloc(void *ctx, size_t n)
{
	/* every allocation listed in ctx, freed by the test */
	void **list = ctx;
	void **p = malloc(sizeof(void *) + n);
	p[0] = *list;
	*list = p;
	return p + 1;
}

static void heap_free_all(void *list)
{
	while (list) {
		void **p = list;
		list = p[0];
		free(p);
	}
}

static void test_requests(void **state)
{
	(void)state;
	static const uint64_t ids[] = {0, 1, 300, UINT64_MAX};
	static const size_t lens[] = {0, 1, 127, 128, 3000};
	uint8_t a[4096], b[4096];
	for (size_t i = 0; i < 4; i++)
		for (size_t j = 0; j < 5; j++)
			for (int op = 0; op < 4; op++) {
				Sisy__Request m = SISY__REQUEST__INIT;
				Sisy__GetRequest g = SISY__GET_REQUEST__INIT;
				Sisy__PutRequest p = SISY__PUT_REQUEST__INIT;
				Sisy__ExistsRequest e =
				    SISY__EXISTS_REQUEST__INIT;
				Sisy__DelRequest d = SISY__DEL_REQUEST__INIT;
				ProtobufCBinaryData k = {j + 1, val};
				m.id = ids[i];
				m.consistency = (Sisy__Consistency)(j % 2);
				m.client_id = ids[(i + 2) % 4];
				m.seq = ids[(i + 1) % 4];
				m.lowest_unanswered = j;
				if (op == 0) {
					g.key = k;
					g.with_version = j % 2;
					m.op_case = SISY__REQUEST__OP_GET;
					m.get = &g;
				} else if (op == 1) {
					p.key = k;
					p.value.data = val;
					p.value.len = lens[j];
					m.op_case = SISY__REQUEST__OP_PUT;
					m.put = &p;
				} else if (op == 2) {
					e.key = k;
					m.op_case = SISY__REQUEST__OP_EXISTS;
					m.exists = &e;
				} else {
					d.key = k;
					m.op_case = SISY__REQUEST__OP_DEL;
					m.del = &d;
				}
				size_t n = client_fast_size(&m);
				if (op == 3) {
					assert_int_equal(n, 0);
					continue;
				}
				assert_int_equal(
				    n, sisy__request__get_packed_size(&m));
				client_fast_encode(&m, a);
				sisy__request__pack(&m, b);
				assert_memory_equal(a, b, n);
			}
	/* a PUT with a condition is protobuf-c's */
	Sisy__Request m = SISY__REQUEST__INIT;
	Sisy__PutRequest p = SISY__PUT_REQUEST__INIT;
	Sisy__Condition c = SISY__CONDITION__INIT;
	m.op_case = SISY__REQUEST__OP_PUT;
	m.put = &p;
	p.cond = &c;
	assert_int_equal(client_fast_size(&m), 0);
}

static bool bin_eq(ProtobufCBinaryData x, ProtobufCBinaryData y)
{
	return x.len == y.len &&
	       (x.len == 0 || memcmp(x.data, y.data, x.len) == 0);
}

/* client_fast_decode on bytes: NULL, or equal to protobuf-c (which then
 * succeeds). Returns whether it took them. */
static bool check(const uint8_t *d, size_t n)
{
	void *list = NULL;
	Sisy__Response *f =
	    client_fast_decode(heap_alloc, &list, sisy_slice_make(d, n));
	Sisy__Response *g = sisy__response__unpack(NULL, n, d);
	if (f) {
		assert_non_null(g);
		assert_int_equal(f->id, g->id);
		assert_int_equal(g->status, SISY__STATUS__OK);
		assert_int_equal(f->result_case, g->result_case);
		assert_null(g->redirect);
		assert_string_equal(g->message, "");
		if (f->result_case == SISY__RESPONSE__RESULT_GET) {
			assert_int_equal(f->get->found, g->get->found);
			assert_true(bin_eq(f->get->value, g->get->value));
			assert_int_equal(f->get->version, g->get->version);
		} else if (f->result_case == SISY__RESPONSE__RESULT_WRITE) {
			assert_int_equal(f->write->version, g->write->version);
			assert_int_equal(f->write->existed, g->write->existed);
			assert_int_equal(g->write->failed_op, 0);
			assert_int_equal(g->write->current_version, 0);
		} else {
			assert_int_equal(f->result_case,
					 SISY__RESPONSE__RESULT_EXISTS);
			assert_int_equal(f->exists->exists, g->exists->exists);
		}
	}
	if (g)
		sisy__response__free_unpacked(g, NULL);
	heap_free_all(list);
	return f != NULL;
}

static size_t response(int kind, uint64_t id, uint64_t x, size_t vlen,
		       int status, uint8_t *out)
{
	Sisy__Response m = SISY__RESPONSE__INIT;
	Sisy__GetResult g = SISY__GET_RESULT__INIT;
	Sisy__WriteResult w = SISY__WRITE_RESULT__INIT;
	Sisy__ExistsResult e = SISY__EXISTS_RESULT__INIT;
	m.id = id;
	m.status = (Sisy__Status)status;
	if (status)
		m.message = "nope";
	if (kind == 0) {
		g.found = vlen > 0;
		g.value.data = val;
		g.value.len = vlen;
		g.version = x;
		m.result_case = SISY__RESPONSE__RESULT_GET;
		m.get = &g;
	} else if (kind == 1) {
		w.version = x;
		w.existed = vlen % 2;
		m.result_case = SISY__RESPONSE__RESULT_WRITE;
		m.write = &w;
	} else {
		e.exists = x % 2;
		m.result_case = SISY__RESPONSE__RESULT_EXISTS;
		m.exists = &e;
	}
	return sisy__response__pack(&m, out);
}

static void test_replies(void **state)
{
	(void)state;
	uint8_t buf[4096];
	static const uint64_t xs[] = {0, 1, 128, UINT64_MAX};
	static const size_t lens[] = {0, 1, 127, 128, 3000};
	for (int kind = 0; kind < 3; kind++)
		for (size_t i = 0; i < 4; i++)
			for (size_t j = 0; j < 5; j++) {
				size_t n = response(kind, xs[i], xs[3 - i],
						    lens[j], 0, buf);
				assert_true(check(buf, n));
				n = response(kind, xs[i], xs[3 - i], lens[j],
					     SISY__STATUS__CONFLICT, buf);
				assert_false(check(buf, n));
			}
	/* a PING reply; an empty message; out of order; a bool of 2 */
	Sisy__Response m = SISY__RESPONSE__INIT;
	Sisy__PingResult pr = SISY__PING_RESULT__INIT;
	m.id = 3;
	m.result_case = SISY__RESPONSE__RESULT_PING;
	m.ping = &pr;
	assert_false(check(buf, sisy__response__pack(&m, buf)));
	assert_false(check(buf, 0));
	static const uint8_t late_id[] = {0x52, 2, 0x08, 1, 0x08, 5};
	static const uint8_t bool2[] = {0x08, 5, 0x52, 2, 0x08, 2};
	assert_false(check(late_id, sizeof late_id));
	assert_false(check(bool2, sizeof bool2));
	/* random damage agrees or declines */
	sisy_rand r;
	sisy_rand_seed(&r, 5);
	size_t taken = 0;
	for (int t = 0; t < 30000; t++) {
		size_t n =
		    response((int)sisy_rand_below(&r, 3),
			     sisy_rand_next(&r) >> sisy_rand_below(&r, 64),
			     sisy_rand_below(&r, 1000),
			     sisy_rand_below(&r, 200), 0, buf);
		int flips = (int)sisy_rand_below(&r, 3);
		for (int k = 0; k < flips; k++)
			buf[sisy_rand_below(&r, n)] ^=
			    (uint8_t)(1u << sisy_rand_below(&r, 8));
		if (sisy_rand_below(&r, 4) == 0)
			n = sisy_rand_below(&r, n + 1);
		taken += check(buf, n);
	}
	assert_true(taken > 1000);
}

int main(void)
{
	for (size_t i = 0; i < sizeof val; i++)
		val[i] = (uint8_t)(i * 13 + 1);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_requests),
	    cmocka_unit_test(test_replies),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
