/* Fuzz target: the server's request decoder (handler_decode: protobuf
 * unpack + bounds + role checks + routing), for each role. Whatever the
 * bytes, the result is a request with a reply already packed (refused) or
 * a routed request whose bounds hold. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	srv_conn c;
	memset(&c, 0, sizeof c);
	c.role = (sisy_role)(1 + data[0] % 3);
	snprintf(c.user, sizeof c.user, "fuzzer");
	srv_req *r = handler_decode(&c, sisy_slice_make(data + 1, size - 1));
	if (r == NULL)
		return 0;
	if (r->kind == REQ_WRITE && r->nops > 0) {
		CHECK(c.role >= SISY_ROLE_READWRITE);
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
	return 0;
}
