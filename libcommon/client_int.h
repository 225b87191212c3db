/* client_int.h — internals shared by client.c (connection, handshake,
 * login, I/O) and client_req.c (requests and replies). Not installed.
 *
 * Invariants: inflight is a FIFO ring of what was sent and not yet
 * answered, in send order (replies come in that order); `dead` is set by
 * the first connection-level failure and never cleared.
 */
#ifndef SISY_CLIENT_INT_H
#define SISY_CLIENT_INT_H

#include "client.h"
#include "frame.h"
#include "session.h"

typedef struct client_pending {
	uint64_t id;
	uint64_t seq; /* 0 for reads */
	sisy_op op;
} client_pending;

struct sisy_client {
	int fd;
	sisy_session sess;
	sisy_frame_reader rd;
	sisy_buf out;	/* sealed frames not yet written */
	size_t out_off; /* bytes of out already written */
	sisy_buf in;	/* raw bytes read, not yet fed to rd */
	size_t in_off;
	sisy_buf plain; /* scratch: opened frame / packed message */
	/* Protocol version 2 (frame.h "batches"), once logged in: requests
	 * gather in `batch` until a flush seals them as one frame, and an
	 * opened frame in `plain` holds replies taken one by one from
	 * plain_off. Before login, and with version 1, one message a frame. */
	bool batched;
	sisy_buf batch;
	size_t batch_n;
	size_t plain_off;
	sisy_slice msg; /* the message client_read_msg/try_msg delivered */
	client_pending *pend;
	size_t pend_head, pend_count;
	uint64_t next_id;
	uint64_t client_id;
	uint64_t next_seq;
	uint32_t io_timeout_ms;
	bool dead;
	char host[300];
	char user[80];
	char node_role[32];
	char fingerprint[64];
	sisy_role role;
	uint64_t node_id;
};

/* Seals the pending batch (if any), then writes all of c->out (reading
 * incoming bytes meanwhile). */
sisy_err client_flush(sisy_client *c);
/* The next message into c->msg: the next one of the batch in c->plain, or
 * the next frame opened into c->plain. */
sisy_err client_read_msg(sisy_client *c);
/* Same without waiting: SISY_E_AGAIN when no whole frame is buffered. */
sisy_err client_try_msg(sisy_client *c);
/* Seals a message into c->out as one frame (the pending batch first). */
sisy_err client_queue_msg(sisy_client *c, const void *msg, size_t len);
/* Seals the pending batch into c->out as one frame. */
sisy_err client_seal_batch(sisy_client *c);

/* client_fast.c: the hot messages by hand, byte for byte protobuf's.
 * client_fast_size: the encoded size of a GET / EXISTS / PUT without
 * condition (0 for any other request); client_fast_encode writes it.
 * client_fast_decode: a canonical OK reply to one of them, allocated with
 * alloc(ctx, n) (never freed one by one); NULL for anything else. */
struct Sisy__Request;
struct Sisy__Response;
size_t client_fast_size(const struct Sisy__Request *m);
void client_fast_encode(const struct Sisy__Request *m, uint8_t *out);
struct Sisy__Response *client_fast_decode(void *(*alloc)(void *ctx, size_t n),
					  void *ctx, sisy_slice msg);
sisy_err client_fail(sisy_client *c, sisy_err rc);

#endif
