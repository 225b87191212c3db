/* srv_int.h — what the server's files share (server.c: loop, listener,
 * timers; conn.c: connection I/O, handshake and login; handler.c: requests;
 * work.c: the read pool and the apply thread; ratelimit.c).
 *
 * Ownership: the event-loop thread owns every srv_conn and srv_req. A
 * request handed to a worker is touched only by that worker until it is
 * pushed on the completion list; the loop then owns it again. A connection
 * whose socket closed stays allocated (conn->dead) until its last
 * dispatched request came back.
 *
 * Per-connection order: requests sit in a FIFO (head..tail) in arrival
 * order and are answered from the head only. They are dispatched in order:
 * a read waits while an earlier write of the connection is unfinished, a
 * write waits while an earlier read is unfinished (so a PUT then a GET sees
 * the PUT, and a GET then a PUT does not), reads run in parallel with
 * reads, writes queue in order behind writes.
 */
#ifndef SISY_SRV_INT_H
#define SISY_SRV_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "client.h"
#include "config.h"
#include "frame.h"
#include "kv.h"
#include "log.h"
#include "server.h"
#include "session.h"
#include "trust.h"
#include "users.h"

struct Sisy__Request;

typedef enum conn_state {
	CONN_HELLO = 0, /* waiting for ClientHello */
	CONN_LOGIN,	/* waiting for LoginStart */
	CONN_PROOF,	/* waiting for LoginProof */
	CONN_PENALTY,	/* failed login; answer delayed */
	CONN_READY,	/* logged in */
} conn_state;

typedef enum req_kind {
	REQ_LOCAL = 0, /* answered on the loop */
	REQ_READ,      /* read pool */
	REQ_WRITE,     /* apply thread */
} req_kind;

typedef struct srv_conn srv_conn;
typedef struct sisy_server sisy_server;

typedef struct srv_req {
	struct srv_req *next;  /* connection FIFO */
	struct srv_req *qnext; /* work or completion queue */
	srv_conn *conn;
	struct Sisy__Request *msg;
	req_kind kind;
	bool dispatched, done;
	size_t bytes; /* size of the request's frame */
	sisy_buf out; /* packed Response */
	/* writes */
	sisy_kv_op *ops;
	sisy_kv_op op1;
	size_t nops;
	sisy_kv_cmd cmd;
	/* after completion, on the loop: end this user's sessions */
	char end_user[SISY_AUTH_MAX_USER + 1];
} srv_req;

struct srv_conn {
	int fd;
	conn_state state;
	bool dead;    /* socket closed; freed once nothing is in flight */
	bool closing; /* send what is queued, then close */
	bool reading; /* EPOLLIN registered */
	bool writing; /* EPOLLOUT registered */
	sisy_frame_reader rd;
	sisy_session sess;
	sisy_buf out;
	size_t out_off;
	sisy_buf plain;
	srv_req *head, *tail;
	srv_req *undispatched; /* first request not yet dispatched, or NULL */
	size_t nreq;
	size_t queued_bytes; /* frame bytes of the requests in the FIFO */
	size_t running_reads, running_writes;
	uint64_t accepted_ms, active_ms, partial_ms, stall_ms, penalty_ms;
	char addr[64];
	char user[SISY_AUTH_MAX_USER + 1];
	sisy_role role;
	sisy_user login; /* the user being logged in */
	bool login_known;
	/* all connections; unauthenticated ones also on the unauth list */
	srv_conn *prev, *next;
	srv_conn *uprev, *unext;
	bool in_unauth;
	bool dirty; /* on the server's flush list */
	srv_conn *dnext;
};

typedef struct work_queue {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	srv_req *head, *tail;
	size_t n;
	size_t waiting; /* workers asleep on cv */
	bool stop;
	/* Loop side: submissions of this turn, handed over in one go. */
	srv_req *pend_head, *pend_tail;
	size_t pend_n;
} work_queue;

typedef struct ratelimit ratelimit;

struct sisy_server {
	sisy_server_config cfg;
	const sisy_logger *log;
	int epfd, lfd, evfd;
	uint16_t port;
	volatile int stop_requested;
	sisy_node_identity id;
	uint8_t fake_salt_key[32];
	uint8_t dummy_pk[SISY_AUTH_PK];
	sisy_users *users;
	sisy_kv_store *kv;
	ratelimit *rl;
	srv_conn *conns;       /* all */
	srv_conn *unauth_head; /* oldest first */
	srv_conn *unauth_tail;
	srv_conn *dirty; /* replies queued, written at the end of the turn */
	size_t nconns, nunauth, ndead;
	/* workers */
	work_queue readq, applyq;
	pthread_t *readers;
	size_t nreaders;
	pthread_t applier;
	bool threads_started;
	pthread_mutex_t done_mu;
	srv_req *done_head, *done_tail;
	/* stats (loop thread) */
	uint64_t started_ms;
	uint64_t n_accepted, n_logins, n_login_failures, n_requests;
	uint64_t n_evicted, n_timeouts, n_refused, n_proto_errors;
	uint32_t handshake_budget; /* per loop iteration */
};

/* server.c */
void srv_conn_update_events(sisy_server *s, srv_conn *c);
void srv_conn_close(sisy_server *s, srv_conn *c, const char *why);
void srv_unauth_remove(sisy_server *s, srv_conn *c);
/* Schedules a write of c's queued output at the end of this loop turn, so
 * many replies leave in one write(2). */
void srv_conn_want_flush(sisy_server *s, srv_conn *c);

/* conn.c */
void conn_on_readable(sisy_server *s, srv_conn *c);
void conn_on_writable(sisy_server *s, srv_conn *c);
void conn_send_frame(sisy_server *s, srv_conn *c, const void *msg, size_t len,
		     bool sealed);
void conn_penalty_expired(sisy_server *s, srv_conn *c);
void conn_end_session(sisy_server *s, srv_conn *c);

/* handler.c */
/* Decodes and validates one request of connection c (the request decoder
 * the fuzzer drives): never NULL unless out of memory; a bad request comes
 * back as REQ_LOCAL with its error reply packed in r->out. */
srv_req *handler_decode(srv_conn *c, sisy_slice msg);
void handler_on_request(sisy_server *s, srv_conn *c, sisy_slice msg);
void handler_dispatch(sisy_server *s, srv_conn *c);
void handler_flush_replies(sisy_server *s, srv_conn *c);
void handler_complete(sisy_server *s, srv_req *r);
void handler_req_free(srv_req *r);
void handler_run_read(sisy_server *s, srv_req *r);
void handler_run_writes(sisy_server *s, srv_req **reqs, size_t n);

/* work.c */
sisy_err work_start(sisy_server *s);
void work_stop(sisy_server *s);
/* Queues r for a worker; it is handed over at the end of the loop turn
 * (work_flush), so a turn's requests cost one lock and one wake-up. */
void work_submit(sisy_server *s, srv_req *r);
void work_flush(sisy_server *s);
/* Called by workers when a request (a list of them) is done. */
void work_done(sisy_server *s, srv_req *r);
void work_done_list(sisy_server *s, srv_req *first, srv_req *last);
/* Loop: takes the finished requests. */
srv_req *work_take_done(sisy_server *s);

/* ratelimit.c */
ratelimit *ratelimit_new(uint32_t free_failures, uint32_t delay_ms,
			 uint32_t max_ms);
void ratelimit_free(ratelimit *rl);
/* Records a failed login; returns how long to delay its answer. */
uint32_t ratelimit_fail(ratelimit *rl, const char *addr, const char *user,
			uint64_t now_ms);

#endif
