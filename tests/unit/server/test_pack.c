/* Tests sisyd/server/pack.c: the hand-encoded replies are byte for byte
 * what protobuf-c packs for the same Response (handler_pack), over ids,
 * found / missing, empty and long values (one- and multi-byte lengths),
 * versions of every varint length, existed, exists; and they decode back
 * to the same fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sisy.pb-c.h"
#include "srv_int.h"

static const uint64_t ids[] = {0, 1, 127, 128, 300, UINT64_MAX};
static const uint64_t versions[] = {0,	   1,	       127,	  128,
				    16384, 1ull << 40, UINT64_MAX};
static const size_t vlens[] = {0, 1, 100, 127, 128, 20000};

static srv_req *req(uint64_t id, Sisy__Request *m)
{
	srv_req *r = calloc(1, sizeof *r);
	sisy__request__init(m);
	m->id = id;
	r->msg = id ? m : NULL; /* id 0 also as "no message" */
	return r;
}

static void same(srv_req *fast, srv_req *ref)
{
	assert_int_equal(fast->out.len, ref->out.len);
	assert_memory_equal(fast->out.data, ref->out.data, ref->out.len);
	Sisy__Response *d =
	    sisy__response__unpack(NULL, fast->out.len, fast->out.data);
	assert_non_null(d);
	assert_int_equal(d->status, SISY__STATUS__OK);
	sisy__response__free_unpacked(d, NULL);
	sisy_buf_free(&fast->out);
	sisy_buf_free(&ref->out);
	free(fast);
	free(ref);
}

static void test_get(void **state)
{
	(void)state;
	uint8_t *val = malloc(20000);
	for (size_t i = 0; i < 20000; i++)
		val[i] = (uint8_t)(i * 7);
	for (size_t a = 0; a < sizeof ids / sizeof ids[0]; a++)
		for (size_t b = 0; b < sizeof versions / sizeof versions[0];
		     b++)
			for (size_t c = 0; c < sizeof vlens / sizeof vlens[0];
			     c++)
				for (int found = 0; found < 2; found++) {
					Sisy__Request m1, m2;
					srv_req *f = req(ids[a], &m1);
					srv_req *g = req(ids[a], &m2);
					size_t vl = found ? vlens[c] : 0;
					pack_get(f, found,
						 sisy_slice_make(val, vl),
						 versions[b]);
					Sisy__GetResult gr =
					    SISY__GET_RESULT__INIT;
					Sisy__Response resp =
					    SISY__RESPONSE__INIT;
					gr.found = found;
					gr.value.data = val;
					gr.value.len = vl;
					gr.version = versions[b];
					resp.result_case =
					    SISY__RESPONSE__RESULT_GET;
					resp.get = &gr;
					handler_pack(g, &resp);
					same(f, g);
				}
	free(val);
}

static void test_write_and_exists(void **state)
{
	(void)state;
	for (size_t a = 0; a < sizeof ids / sizeof ids[0]; a++) {
		for (size_t b = 0; b < sizeof versions / sizeof versions[0];
		     b++)
			for (int existed = 0; existed < 2; existed++) {
				Sisy__Request m1, m2;
				srv_req *f = req(ids[a], &m1);
				srv_req *g = req(ids[a], &m2);
				pack_write_ok(f, versions[b], existed);
				Sisy__WriteResult w = SISY__WRITE_RESULT__INIT;
				Sisy__Response resp = SISY__RESPONSE__INIT;
				w.version = versions[b];
				w.existed = existed;
				resp.result_case = SISY__RESPONSE__RESULT_WRITE;
				resp.write = &w;
				handler_pack(g, &resp);
				same(f, g);
			}
		for (int ex = 0; ex < 2; ex++) {
			Sisy__Request m1, m2;
			srv_req *f = req(ids[a], &m1);
			srv_req *g = req(ids[a], &m2);
			pack_exists(f, ex);
			Sisy__ExistsResult e = SISY__EXISTS_RESULT__INIT;
			Sisy__Response resp = SISY__RESPONSE__INIT;
			e.exists = ex;
			resp.result_case = SISY__RESPONSE__RESULT_EXISTS;
			resp.exists = &e;
			handler_pack(g, &resp);
			same(f, g);
		}
	}
}

/* A kept request's reply buffer (handler_req_free) is reused without a
 * reserve call when it has the room: buffers of exactly one byte less
 * than the reply, exactly enough and one more, holding stale bytes, give
 * the same reply (malloc'd to their capacity: ASan sees an overflow if
 * the room test is wrong). pack_write_ok reserves for its longest reply,
 * so small buffers grow there. */
static void test_reused_buffers(void **state)
{
	(void)state;
	uint8_t val[200];
	memset(val, 'v', sizeof val);
	for (size_t a = 0; a < sizeof ids / sizeof ids[0]; a++)
		for (size_t b = 0; b < sizeof versions / sizeof versions[0];
		     b++)
			for (int kind = 0; kind < 3; kind++)
				for (int room = -1; room <= 1; room++) {
					Sisy__Request m1, m2;
					srv_req *f = req(ids[a], &m1);
					srv_req *g = req(ids[a], &m2);
					if (kind == 0)
						pack_write_ok(g, versions[b],
							      b % 2);
					else if (kind == 1)
						pack_get(g, true,
							 sisy_slice_make(
							     val, 13 * b),
							 versions[b]);
					else
						pack_exists(g, b % 2);
					size_t cap =
					    (size_t)((long)g->out.len + room);
					f->out.data = malloc(cap ? cap : 1);
					assert_non_null(f->out.data);
					memset(f->out.data, 0xee, cap);
					f->out.cap = cap;
					f->out.len = cap / 2;
					if (kind == 0)
						pack_write_ok(f, versions[b],
							      b % 2);
					else if (kind == 1)
						pack_get(f, true,
							 sisy_slice_make(
							     val, 13 * b),
							 versions[b]);
					else
						pack_exists(f, b % 2);
					/* begin keeps a buffer with room
					 * (pack_write_ok wants its most) */
					if (room >= 0 && kind != 0)
						assert_int_equal(f->out.cap,
								 cap);
					same(f, g);
				}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get),
	    cmocka_unit_test(test_write_and_exists),
	    cmocka_unit_test(test_reused_buffers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
