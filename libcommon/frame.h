/* frame.h — length-prefixed frames, the unit of everything on the wire.
 *
 * Layout: | length: 4 bytes, big-endian | payload: length bytes |
 * The reader checks the length against its current maximum BEFORE it
 * allocates anything, and then grows its buffer only as payload bytes
 * actually arrive, so a peer that announces 16 MiB and sends one byte a
 * second costs one byte a second. A zero length is a valid (empty) frame.
 *
 * The reader is incremental and does no I/O: feed it whatever bytes came
 * (any split, even one byte at a time); it says when a frame is complete.
 * After an error (SISY_E_TOOBIG) the reader stays failed: the stream can
 * no longer be resynchronised and the connection must end.
 */
#ifndef SISY_FRAME_H
#define SISY_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define SISY_FRAME_HDR 4u
/* Largest payload once logged in: an 8 MiB value, a 16 KiB key, the
 * protobuf and sealing overhead, with room to spare. */
#define SISY_FRAME_MAX (16u * 1024 * 1024)
/* Largest payload before login (hello, login messages are tiny). */
#define SISY_FRAME_MAX_PRELOGIN 4096u

typedef struct sisy_frame_reader {
	uint8_t hdr[SISY_FRAME_HDR];
	size_t hdr_have;  /* header bytes seen of the current frame */
	uint32_t len;	  /* payload length, valid once hdr_have == 4 */
	sisy_buf payload; /* bytes of the current payload so far */
	uint32_t max;	  /* current maximum payload length */
	bool ready;	  /* a complete frame waits in payload */
	bool failed;
} sisy_frame_reader;

void sisy_frame_reader_init(sisy_frame_reader *r, uint32_t max);
void sisy_frame_reader_free(sisy_frame_reader *r);
/* Raises or lowers the maximum for frames not yet started. */
void sisy_frame_reader_set_max(sisy_frame_reader *r, uint32_t max);

/* Consumes bytes from data[0..n) up to the end of the current frame and
 * stores in *used how many. When a frame is complete, *frame is its payload
 * (valid until the next feed or sisy_frame_reader_next) and true is
 * returned through *done. SISY_E_TOOBIG when a length exceeds the maximum,
 * SISY_E_NOMEM when the payload cannot grow. */
sisy_err sisy_frame_feed(sisy_frame_reader *r, const uint8_t *data, size_t n,
			 size_t *used, bool *done, sisy_slice *frame);
/* A whole frame at the start of [data, data + n) while r holds nothing of
 * one (no header byte, not failed) and its length is within r's maximum:
 * *frame points into data (valid as long as data is), *used counts its
 * header and payload, r is untouched. False otherwise: feed the bytes.
 * Saves the copy into r's payload when a read brings whole frames, as it
 * nearly always does. */
bool sisy_frame_whole(const sisy_frame_reader *r, const uint8_t *data, size_t n,
		      sisy_slice *frame, size_t *used);
/* Forgets the completed frame, ready for the next one. */
void sisy_frame_reader_next(sisy_frame_reader *r);
/* True when some bytes of an unfinished frame have been fed. */
bool sisy_frame_reader_partial(const sisy_frame_reader *r);

/* Appends header + payload to out. SISY_E_TOOBIG past SISY_FRAME_MAX. */
sisy_err sisy_frame_append(sisy_buf *out, const void *payload, size_t len);

/* --- batches (frame_batch.c) ----------------------------------------------
 *
 * From protocol version 2 on, the (decrypted) payload of a client session's
 * frame after login is a batch of one or more messages, each as field 1 of
 * a protobuf wrapper (sisy.proto RequestBatch / ResponseBatch):
 *
 *   | 0x0a | length: varint, at most 5 bytes | message: length bytes | ...
 *
 * so one seal (and one open) serves every request a client pipelined in a
 * turn, and every reply the server finished in one. A batch holds
 * 1..SISY_BATCH_MAX_MSGS messages; anything else (another tag, a length
 * past the end, an empty payload) is a protocol error that ends the
 * session, since the stream itself is authentic but its sender is broken.
 * Writers seal a batch once it holds SISY_BATCH_TARGET bytes (a larger
 * message travels alone), so batching never delays a reply by more than a
 * loop turn and never builds a large frame out of small messages. */
#define SISY_BATCH_MAX_MSGS 1024u
#define SISY_BATCH_TARGET   (64u * 1024)
#define SISY_BATCH_HDR_MAX  6u /* tag + 5-byte varint */

/* Appends one message to a batch payload. */
sisy_err sisy_batch_append(sisy_buf *batch, const void *msg, size_t len);
/* Reserves room for a message of len bytes and writes its header: pack the
 * message at the returned pointer, then add len to batch->len. NULL when
 * out of memory. */
uint8_t *sisy_batch_reserve(sisy_buf *batch, size_t len);
/* The message at *off of batch (advancing *off past it); *done when *off is
 * at the end. SISY_E_PROTO (with a message) for a malformed batch. */
sisy_err sisy_batch_next(sisy_slice batch, size_t *off, sisy_slice *msg,
			 bool *done);
/* Checks a whole batch: SISY_OK with the number of messages in *n, or
 * SISY_E_PROTO (empty, malformed, more than SISY_BATCH_MAX_MSGS). */
sisy_err sisy_batch_check(sisy_slice batch, size_t *n);

#endif
