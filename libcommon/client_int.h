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

/* Writes all of c->out (reading incoming bytes meanwhile). */
sisy_err client_flush(sisy_client *c);
/* Reads and opens the next frame into c->plain. */
sisy_err client_read_msg(sisy_client *c);
/* Same without waiting: SISY_E_AGAIN when no whole frame is buffered. */
sisy_err client_try_msg(sisy_client *c);
/* Seals c->plain's message into c->out as one frame. */
sisy_err client_queue_msg(sisy_client *c, const void *msg, size_t len);
sisy_err client_fail(sisy_client *c, sisy_err rc);

#endif
