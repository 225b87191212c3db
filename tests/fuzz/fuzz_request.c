/* Fuzz target: the server's request decoder (handler_decode: protobuf
 * unpack + bounds + role checks + routing), for each role. Whatever the
 * bytes, the result is a request with a reply already packed (refused) or
 * a routed request whose bounds hold. With the first byte's high bit set
 * the rest is a protocol version 2 frame: a batch of requests
 * (sisy_batch_check, then each message decoded as above). Every message
 * also checks that decode.c's hand decoder, where it accepts the bytes,
 * agrees with protobuf-c. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sisy.pb-c.h"
#include "srv_int.h"

/* Invariants hold in release builds too (no assert: NDEBUG drops it). */
#define CHECK(x)                                                       \
	do {                                                           \
		if (!(x)) {                                            \
			fprintf(stderr, "invariant failed: %s\n", #x); \
			abort();                                       \
		}                                                      \
	} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool bin_eq(ProtobufCBinaryData a, ProtobufCBinaryData b)
{
	return a.len == b.len &&
	       (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

/* decode.c's hand decoder, where it takes the bytes, agrees with
 * protobuf-c on every field the server reads. */
static void fast_agrees(sisy_slice msg)
{
	srv_req *t = calloc(1, sizeof *t);
	if (t == NULL)
		return;
	const Sisy__Request *f = decode_fast(t, msg);
	if (f != NULL) {
		Sisy__Request *g =
		    sisy__request__unpack(NULL, msg.len, msg.data);
		CHECK(g != NULL);
		CHECK(f->id == g->id && f->consistency == g->consistency &&
		      f->client_id == g->client_id && f->seq == g->seq &&
		      f->lowest_unanswered == g->lowest_unanswered &&
		      f->op_case == g->op_case);
		if (f->op_case == SISY__REQUEST__OP_GET)
			CHECK(bin_eq(f->get->key, g->get->key) &&
			      f->get->with_version == g->get->with_version);
		else if (f->op_case == SISY__REQUEST__OP_PUT)
			CHECK(bin_eq(f->put->key, g->put->key) &&
			      bin_eq(f->put->value, g->put->value) &&
			      g->put->cond == NULL);
		else
			CHECK(f->op_case == SISY__REQUEST__OP_EXISTS &&
			      bin_eq(f->exists->key, g->exists->key));
		sisy__request__free_unpacked(g, NULL);
	}
	handler_req_free(t);
}

static void one(srv_conn *c, sisy_slice msg)
{
	fast_agrees(msg);
	srv_req *r = handler_decode(c, msg);
	if (r == NULL)
		return;
	if (r->kind == REQ_WRITE && r->nops > 0) {
		CHECK(c->role >= SISY_ROLE_READWRITE);
		CHECK(r->nops <= SISY_MAX_BATCH_OPS);
		for (size_t i = 0; i < r->nops; i++) {
			CHECK(r->ops[i].key.len >= 1 &&
			      r->ops[i].key.len <= SISY_MAX_KEY);
			CHECK(r->ops[i].value.len <= SISY_MAX_VALUE);
		}
	}
	if (r->kind == REQ_LOCAL && r->msg == NULL)
		CHECK(r->out.len > 0);
	handler_req_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	srv_conn c;
	memset(&c, 0, sizeof c);
	c.role = (sisy_role)(1 + (data[0] & 0x7f) % 3);
	snprintf(c.user, sizeof c.user, "fuzzer");
	sisy_slice rest = sisy_slice_make(data + 1, size - 1);
	if (!(data[0] & 0x80)) {
		one(&c, rest);
		return 0;
	}
	size_t n, off = 0, seen = 0;
	if (sisy_batch_check(rest, &n) != SISY_OK)
		return 0;
	CHECK(n >= 1 && n <= SISY_BATCH_MAX_MSGS);
	for (;;) {
		sisy_slice m;
		bool done;
		CHECK(sisy_batch_next(rest, &off, &m, &done) == SISY_OK);
		if (done)
			break;
		CHECK(m.data >= rest.data &&
		      m.data + m.len <= rest.data + rest.len);
		one(&c, m);
		seen++;
	}
	CHECK(seen == n);
	return 0;
}
