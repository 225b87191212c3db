/* Fuzz target: the frame reader and the sealed-frame opener.
 *
 * Input: byte 0 picks the split pattern and the maximum (pre-login or
 * full), the rest is the byte stream a peer sends. Every frame that comes
 * out is also fed to a session's open (it must refuse forgeries without
 * crashing). Invariants checked: no frame longer than the maximum is ever
 * produced; the reader consumes everything or fails. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "session.h"

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
	uint8_t mode = data[0];
	uint32_t max = (mode & 1) ? SISY_FRAME_MAX : SISY_FRAME_MAX_PRELOGIN;
	size_t step = 1 + (mode >> 1);
	sisy_frame_reader r;
	sisy_session s;
	sisy_buf plain = {0};
	memset(&s, 0, sizeof s);
	sisy_frame_reader_init(&r, max);
	size_t off = 1;
	while (off < size) {
		size_t piece = size - off < step ? size - off : step;
		size_t in = 0;
		while (in < piece) {
			size_t used = 0;
			bool done = false;
			sisy_slice f;
			sisy_err rc = sisy_frame_feed(
			    &r, data + off + in, piece - in, &used, &done, &f);
			if (rc != SISY_OK)
				goto out;
			CHECK(used > 0 || done);
			in += used;
			if (done) {
				CHECK(f.len <= max);
				(void)sisy_session_open(&s, f, &plain);
				sisy_frame_reader_next(&r);
			}
		}
		off += piece;
	}
out:
	sisy_buf_free(&plain);
	sisy_frame_reader_free(&r);
	return 0;
}
