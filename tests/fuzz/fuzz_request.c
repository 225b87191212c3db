/* Fuzz target: the server's request decoder (handler_decode: protobuf
 * unpack + bounds + role checks + routing), for each role. Whatever the
 * bytes, the result is a request with a reply already packed (refused) or
 * a routed request whose bounds hold. With the first byte's high bit set
 * the rest is a protocol version 2 frame: a batch of requests
 * (sisy_batch_check, then each message decoded as above). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static void one(srv_conn *c, sisy_slice msg)
{
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
