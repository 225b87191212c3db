/* srv_int.h — what the server's files share.
 *
 *   server.c   the event loop, listener, timers, start-up and shutdown
 *   conn.c     connection I/O (frames in, sealed frames out), the
 *              accepting handshake, login, outgoing handshakes
 *   handler.c  client requests: decode, role check, per-connection order,
 *              local answers, replies
 *   reads.c    reads: ReadIndex through the node, then the read pool
 *   writes.c   everything that runs on the leader (writes, user changes,
 *              CLUSTER ADD/REMOVE/FAILOVER): proposals, waiting for a
 *              leader, answers
 *   forward.c  a follower forwards those to the leader; the leader runs
 *              what followers forward (peer.proto ForwardRequest)
 *   cluster.c  CLUSTER INFO / NODES and the node role shown to clients
 *   peer.c     node <-> node connections: the node's send callback,
 *              dialing with backoff, received Raft batches, NodeReports
 *   snap.c     snapshot streams (their own connections) and their thread
 *   join.c     the leader's side of `sisyd init --join`
 *   init.c     `sisyd init` (bootstrap) and `sisyd init --join` (joining)
 *   token.c    the join token's encoding
 *   work.c     the read pool
 *   ratelimit.c, config.c
 *
 * Ownership: the event-loop thread owns every srv_conn, srv_req, srv_peer
 * and the node (sisyd/node: every call but the [any thread] reads is made
 * on the loop). A request handed to a read worker is touched only by that
 * worker until it is back on the completion list. A request waiting on
 * the node (proposal, ReadIndex) is owned by the loop; the node's callback
 * (on the loop, inside sisy_node_process) moves it on. A connection whose
 * socket closed stays allocated (conn->dead) until nothing refers to it:
 * no request of it is running, parked or forwarded.
 *
 * Per-connection order: requests sit in a FIFO (head..tail) in arrival
 * order and are answered from the head only. They are dispatched in order:
 * a read waits while an earlier write of the connection is unfinished, a
 * write waits while an earlier read is unfinished (so a PUT then a GET sees
 * the PUT, and a GET then a PUT does not), reads run in parallel with
 * reads, writes are proposed (or forwarded) in order behind writes: a
 * write is not dispatched while an earlier write of the connection waits
 * parked for a leader, and parked requests are retried in parking order.
 */
#ifndef SISY_SRV_INT_H
#define SISY_SRV_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth.h"
#include "buf.h"
#include "bump.h"
#include "client.h"
#include "config.h"
#include "frame.h"
#include "log.h"
#include "node.h"
#include "server.h"
#include "session.h"
#include "trust.h"

struct Sisy__Request;
struct Sisy__PeerMessage;

#define SRV_GROUP	   SISY_NODE_META_GROUP /* one group for now */
#define SRV_PEER_FRAME_MAX (64u << 20)		/* frames between nodes */
#define SRV_MAX_PEERS	   64
#define SRV_PEER_QUEUE	   (8u << 20)  /* bytes queued while dialing */
#define SRV_PEER_OUT_MAX   (64u << 20) /* unsent bytes to one peer */
#define SRV_MAX_FORWARDS   65536u      /* forwarded writes in flight */
#define SRV_REPORT_MS	   100	       /* NodeReport period */
#define SRV_REPORT_STALE   500	       /* a report older is "unreachable" */

typedef enum conn_kind {
	CK_CLIENT = 0, /* a user session (every accepted connection starts
			  as one, until its hello says otherwise) */
	CK_PEER_IN,    /* a node's Raft traffic to us */
	CK_PEER_OUT,   /* ours to a node */
	CK_SNAP_IN,    /* a snapshot arriving */
	CK_SNAP_OUT,   /* a snapshot leaving */
	CK_JOIN,       /* a joining node (`sisyd init --join`) */
} conn_kind;

typedef enum conn_state {
	CONN_HELLO = 0,	   /* accepted: waiting for ClientHello */
	CONN_LOGIN,	   /* waiting for LoginStart */
	CONN_PROOF,	   /* waiting for LoginProof */
	CONN_PENALTY,	   /* failed login; answer delayed */
	CONN_NODE_PROOF,   /* accepted PEER/SNAPSHOT: waiting for NodeProof */
	CONN_CONNECTING,   /* dialed: connect(2) in progress */
	CONN_SERVER_HELLO, /* dialed: waiting for the ServerHello */
	CONN_READY,	   /* logged in / proven */
} conn_state;

typedef enum req_kind {
	REQ_LOCAL = 0, /* answered on the loop */
	REQ_READ,      /* ReadIndex, then the read pool */
	REQ_WRITE,     /* runs on the leader (writes.c) */
} req_kind;

typedef struct srv_conn srv_conn;
typedef struct srv_peer srv_peer;
typedef struct srv_snap srv_snap;
typedef struct srv_join srv_join;
typedef struct sisy_server sisy_server;

/* A request's unpacked message lives in an arena inside the request (then
 * in malloc'd chunks), freed with the request: no malloc per field and no
 * free_unpacked walk for the usual GET and PUT (handler.c). */
#define SRV_REQ_ARENA 512
/* Finished requests kept for reuse (with a reply buffer of at most
 * SRV_REQ_SPARE_OUT bytes): a busy loop takes its requests from them, not
 * from malloc (~400 instructions per request). 1024: 50 clients with
 * 16-deep pipelines keep 800 alive at once, and with 512 a third of them
 * still came from malloc. Bounded: ~1.2 MiB. */
#define SRV_REQ_SPARE	  1024
#define SRV_REQ_SPARE_OUT 256

typedef struct srv_req {
	sisy_server *srv;
	struct srv_req *next;  /* connection FIFO */
	struct srv_req *qnext; /* work queue / completion list */
	/* origin: a client connection, or a follower that forwarded it */
	srv_conn *conn; /* NULL when forwarded to us */
	uint64_t fwd_from, fwd_id;
	struct Sisy__PeerMessage *holder; /* owns msg when forwarded */
	struct Sisy__Request *msg;
	char user[SISY_AUTH_MAX_USER + 1]; /* who asks */
	sisy_role role;
	req_kind kind;
	bool dispatched, done;
	bool stale;   /* a STALE read: local state, no ReadIndex */
	size_t bytes; /* size of the request's frame */
	sisy_buf out; /* packed Response */
	/* writes */
	sisy_node_op *ops;
	sisy_node_op op1;
	size_t nops;
	/* waiting: for a leader (parked), for the node, for the leader's
	 * answer (forwarded) */
	struct srv_req *pnext, *pprev; /* parked list, or forwards list */
	bool parked;
	bool in_node; /* a node callback will come */
	uint64_t deadline_ms;
	uint32_t attempts;
	uint64_t fwd_out_id;  /* forwarded by us: the id (0: not) */
	uint64_t fwd_out_to;  /* and to whom */
	uint64_t fwd_sent_ms; /* when */
	uint64_t join_node;   /* ADD NODE / join: the id of the new node */
	uint8_t token[SISY_NODE_TOKEN];
	bool token_set;
	uint64_t change_index; /* REMOVE NODE: retries of a CONFLICT */
	/* the arena of msg (unless holder owns it); last: handler_decode
	 * zeroes everything before it */
	size_t arena_used;
	sisy_bump_chunk *chunks;
	_Alignas(16) uint8_t arena[SRV_REQ_ARENA];
} srv_req;

/* The parked list and the forwards list (a request is on at most one)
 * thread their requests through pnext/pprev, oldest at head. */
static inline void reqlist_push(srv_req **head, srv_req **tail, srv_req *r)
{
	r->pnext = NULL;
	r->pprev = *tail;
	if (*tail)
		(*tail)->pnext = r;
	else
		*head = r;
	*tail = r;
}

static inline void reqlist_remove(srv_req **head, srv_req **tail, srv_req *r)
{
	if (r->pprev)
		r->pprev->pnext = r->pnext;
	else
		*head = r->pnext;
	if (r->pnext)
		r->pnext->pprev = r->pprev;
	else
		*tail = r->pprev;
	r->pnext = r->pprev = NULL;
}

struct srv_conn {
	int fd;
	conn_kind kind;
	conn_state state;
	bool dead;	  /* socket closed; freed once nothing refers to it */
	bool closing;	  /* send what is queued, then close */
	bool reading;	  /* EPOLLIN registered */
	bool writing;	  /* EPOLLOUT registered */
	bool paused;	  /* no reading (snapshot chunks are being written) */
	bool dispatching; /* inside handler_dispatch */
	sisy_frame_reader rd;
	sisy_session sess;
	sisy_buf out;
	size_t out_off;
	sisy_buf plain;
	/* Protocol version 2 clients: finished replies gather here and are
	 * sealed as one frame at the end of the loop turn (conn_seal_batch),
	 * or earlier once the batch is full (frame.h "batches"). */
	sisy_buf rbatch;
	size_t rbatch_n;
	srv_req *head, *tail;
	srv_req *undispatched; /* first request not yet dispatched, or NULL */
	size_t nreq;
	size_t queued_bytes; /* frame bytes of the requests in the FIFO */
	size_t running_reads, running_writes; /* dispatched, unfinished */
	size_t parked_writes; /* of them, waiting for a leader (writes.c) */
	uint64_t accepted_ms, active_ms, partial_ms, stall_ms, penalty_ms;
	char addr[64];
	char user[SISY_AUTH_MAX_USER + 1];
	sisy_role role;
	sisy_auth_verifier login; /* the user being logged in */
	char login_name[SISY_AUTH_MAX_USER + 1];
	sisy_role login_role;
	bool login_known;
	bool login_not_ready; /* no user table yet at LoginStart */
	/* nodes */
	uint64_t peer_id;	       /* the certified node at the other end */
	uint8_t peer_pk[SISY_SIGN_PK]; /* its key */
	sisy_hs_client *hs;	       /* dialed: handshake state */
	srv_peer *peer;		       /* CK_PEER_OUT: its peer */
	srv_snap *snap;		       /* CK_SNAP_*: the transfer */
	srv_join *join;		       /* CK_JOIN */
	/* all connections; unauthenticated ones also on the unauth list */
	srv_conn *prev, *next;
	srv_conn *uprev, *unext;
	bool in_unauth;
	bool dirty; /* on the server's flush list */
	srv_conn *dnext;
	bool completed; /* on the server's completed list (handler.c) */
	srv_conn *cnext;
};

/* A node we talk to (peer.c). */
struct srv_peer {
	uint64_t id;
	srv_conn *out;	       /* CK_PEER_OUT, NULL when none */
	sisy_buf pending;      /* frames (4-byte length + message) queued
				  while the connection is being set up */
	uint64_t next_dial_ms; /* backoff: no dial before this */
	uint32_t backoff_ms;
	char hint[SISY_NODE_MAX_ADDR + 1]; /* address from its NodeProof */
	/* its last NodeReport */
	bool has_report;
	uint64_t report_ms;
	uint64_t term, leader, commit, applied;
	uint8_t role;
	bool learner;
	char address[SISY_NODE_MAX_ADDR + 1];
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
typedef struct snap_worker snap_worker;

struct sisy_server {
	sisy_server_config cfg;
	const sisy_logger *log;
	int epfd, lfd, evfd, tfd;
	uint16_t port;
	/* set by sisy_server_stop from any thread or a signal handler */
	atomic_int stop_requested;
	sisy_node_identity id;
	sisy_cluster_key ck; /* the cluster signing key (docs/security.md) */
	uint8_t fake_salt_key[32];
	uint8_t dummy_pk[SISY_AUTH_PK];
	sisy_node *node;
	bool node_failed;
	ratelimit *rl;
	srv_req *spare; /* finished requests for reuse (handler.c) */
	size_t nspare;
	srv_conn *conns;       /* all */
	srv_conn *unauth_head; /* oldest first */
	srv_conn *unauth_tail;
	srv_conn *dirty; /* replies queued, written at the end of the turn */
	/* While the node's callbacks run (sisy_node_process): a connection
	 * whose request completed is listed once and dispatched once after,
	 * not once per request (handler_complete). */
	bool defer_dispatch;
	srv_conn *completed;
	size_t nconns, nunauth, ndead;
	/* workers */
	work_queue readq;
	pthread_t *readers;
	size_t nreaders;
	bool threads_started;
	pthread_mutex_t done_mu;
	srv_req *done_head, *done_tail;
	snap_worker *sw;
	/* nodes */
	srv_peer *peers[SRV_MAX_PEERS];
	size_t npeers;
	srv_req *parked, *parked_tail; /* waiting for a leader, or a retry */
	size_t nparked;
	srv_req **fwd; /* forwarded by us, by id % SRV_MAX_FORWARDS */
	srv_req *fwd_head, *fwd_tail; /* the same, oldest first */
	size_t nfwd;
	uint64_t fwd_next;
	uint64_t fwd_hurry_ms, fwd_hurry_leader; /* fwd_leader_changed */
	srv_join *joins; /* joins waiting to retry a membership change */
	size_t njoins;	 /* joins in progress */
	struct {
		uint64_t id, ms;
	} refused[16]; /* nodes refused lately (for the log) */
	uint64_t last_report_ms;
	uint64_t ticks, role_ticks;
	char role_name[16];   /* this node's role, refreshed every tick */
	sisy_buf end_users;   /* users whose sessions end after this turn's
				 answers (NUL-separated) */
	uint64_t leader_seen; /* leader id at the last look (0: none) */
	bool draining;	      /* SIGTERM: handing leadership over */
	bool closing;	      /* sisy_server_free: answer nothing more */
	/* stats (loop thread) */
	uint64_t started_ms;
	/* sisy_now_ms() when this loop turn woke: the clock of the turn's
	 * request deadlines and activity stamps (one clock read per turn,
	 * not one per request). */
	uint64_t turn_ms;
	uint64_t n_accepted, n_logins, n_login_failures, n_requests;
	uint64_t n_evicted, n_timeouts, n_refused, n_proto_errors;
	uint64_t n_forwarded, n_forwards_in, n_peer_refused;
	uint64_t n_loop_reads; /* GET/EXISTS answered on the loop (reads.c) */
	sisy_buf loop_val;     /* reads.c: scratch for those values */
	uint32_t handshake_budget; /* per loop iteration */
};

/* server.c */
void srv_conn_update_events(sisy_server *s, srv_conn *c);
void srv_conn_close(sisy_server *s, srv_conn *c, const char *why);
void srv_unauth_remove(sisy_server *s, srv_conn *c);
/* Schedules a write of c's queued output at the end of this loop turn, so
 * many replies leave in one write(2). */
void srv_conn_want_flush(sisy_server *s, srv_conn *c);
/* Adds a connected (or connecting) socket to the loop as a new conn. */
srv_conn *srv_conn_add(sisy_server *s, int fd, conn_kind kind,
		       conn_state state);

/* conn.c */
void conn_on_readable(sisy_server *s, srv_conn *c);
void conn_on_writable(sisy_server *s, srv_conn *c);
/* Appends a frame; the pending reply batch, if any, goes first. */
void conn_send_frame(sisy_server *s, srv_conn *c, const void *msg, size_t len,
		     bool sealed);
/* Version 2: adds a packed Response to the reply batch. */
void conn_send_reply(sisy_server *s, srv_conn *c, const void *msg, size_t len);
/* Seals the reply batch into the output as one frame (no-op when empty). */
void conn_seal_batch(sisy_server *s, srv_conn *c);
/* Packs m and sends it sealed. */
void conn_send_msg(sisy_server *s, srv_conn *c, const void *protobuf_msg);
void conn_penalty_expired(sisy_server *s, srv_conn *c);
void conn_end_session(sisy_server *s, srv_conn *c);
/* Dials host:port (non-blocking) as `kind` to node `peer_id`; the
 * handshake follows by itself. NULL when the socket cannot be made. */
srv_conn *conn_dial(sisy_server *s, const char *addr, conn_kind kind,
		    uint64_t peer_id);
/* Bytes not yet written. */
size_t conn_unsent(const srv_conn *c);

/* handler.c */
/* Decodes and validates one request for a user of `role` (the request
 * decoder the fuzzer drives): never NULL unless out of memory; a bad
 * request comes back as REQ_LOCAL with its error reply packed in r->out. */
srv_req *handler_decode(srv_conn *c, sisy_slice msg);
/* Classifies an unpacked request (r->msg, r->user, r->role set). */
void handler_classify(srv_req *r);
void handler_on_request(sisy_server *s, srv_conn *c, sisy_slice msg);
/* A version 2 frame: a batch of requests (a malformed one ends the
 * session). */
void handler_on_batch(sisy_server *s, srv_conn *c, sisy_slice batch);
void handler_dispatch(sisy_server *s, srv_conn *c);
void handler_flush_replies(sisy_server *s, srv_conn *c);
/* r finished (r->out packed): answer it where it came from. */
void handler_complete(sisy_server *s, srv_req *r);
/* Dispatches the connections whose requests completed while
 * s->defer_dispatch was set (the node's callbacks). */
void handler_run_completed(sisy_server *s);
/* Frees r, or keeps it among r->srv's spares (r->srv may be NULL). */
void handler_req_free(srv_req *r);
/* Frees the spares (server shutdown). */
void handler_spare_free(sisy_server *s);
/* Packs resp as r's reply (TOO_BIG if it would not fit a frame). */
void handler_pack(srv_req *r, void *resp);
void handler_fail(srv_req *r, sisy_err e, const char *msg);

/* decode.c: a Request into r's arena (NULL: malformed or out of memory);
 * decode_fast only the canonical GET/EXISTS/PUT it decodes by hand (NULL
 * otherwise); decode_alloc is the arena itself. */
struct Sisy__Request *decode_request(srv_req *r, sisy_slice msg);
struct Sisy__Request *decode_fast(srv_req *r, sisy_slice msg);
void *decode_alloc(void *ctx, size_t n);

/* pack.c: the hot replies, byte for byte what handler_pack would give. */
void pack_get(srv_req *r, bool found, sisy_slice value, uint64_t version);
void pack_write_ok(srv_req *r, uint64_t version, bool existed);
void pack_exists(srv_req *r, bool exists);
/* Ends the sessions of `user` on this node (deleted, role changed). */
void handler_end_sessions(sisy_server *s, const char *user);

/* reads.c */
void reads_start(sisy_server *s, srv_req *r);
void reads_retry(sisy_server *s, srv_req *r); /* parked, on a tick */
void reads_run(sisy_server *s, srv_req *r);   /* read pool */

/* writes.c */
void writes_start(sisy_server *s, srv_req *r);
void writes_retry(sisy_server *s, srv_req *r); /* parked, on a tick */
/* Parked requests: waiting for a leader or a retry, until deadline. */
void park(sisy_server *s, srv_req *r);
void unpark(sisy_server *s, srv_req *r);
void parked_tick(sisy_server *s);
/* Answers a write's Response from the node's result. */
void writes_answer(srv_req *r, sisy_err status, const sisy_node_result *res);

/* forward.c */
/* Sends r to the leader `to`; its answer completes r. */
void fwd_out(sisy_server *s, srv_req *r, uint64_t to);
void fwd_on_response(sisy_server *s, uint64_t from,
		     struct Sisy__PeerMessage *pm);
/* A ForwardRequest from node `from` (takes pm). */
void fwd_on_request(sisy_server *s, uint64_t from,
		    struct Sisy__PeerMessage *pm);
/* The connection to `to` broke: its forwards' outcome is unknown. */
void fwd_peer_lost(sisy_server *s, uint64_t to);
void fwd_tick(sisy_server *s);
/* A new leader: forwards still waiting on another node two election
 * timeouts later are sent again (or answered OUTCOME_UNKNOWN when they
 * cannot be repeated safely). */
void fwd_leader_changed(sisy_server *s, uint64_t leader);
/* Sends a forwarded request's answer back to the follower; frees r. */
void fwd_answer(sisy_server *s, srv_req *r);
void fwd_free_all(sisy_server *s);

/* cluster.c */
void cluster_refresh_role(sisy_server *s);
void cluster_info(sisy_server *s, srv_req *r);
void cluster_nodes(sisy_server *s, srv_req *r);
void cluster_server_info(sisy_server *s, srv_req *r);

/* peer.c */
void peer_send(void *ctx, uint64_t to, const uint8_t *frame, size_t len);
/* Queues one message to node `to` (its own frame), dialing if needed. */
void peer_send_msg(sisy_server *s, uint64_t to, const uint8_t *msg, size_t len);
srv_peer *peer_get(sisy_server *s, uint64_t id, bool create);
/* Where to dial node id (route, membership, hint); false if unknown. */
bool peer_addr(sisy_server *s, uint64_t id, char *out, size_t cap);
void peer_out_ready(sisy_server *s, srv_conn *c);
void peer_out_closed(sisy_server *s, srv_conn *c);
void peer_on_frame(sisy_server *s, srv_conn *c, sisy_slice msg);
void peer_tick(sisy_server *s);
void peer_free_all(sisy_server *s);
/* Checks a NodeProof (accepting side); false ends the connection. */
bool peer_check_proof(sisy_server *s, srv_conn *c, sisy_slice msg);

/* snap.c */
sisy_err snap_start(sisy_server *s);
void snap_stop(sisy_server *s);
int snap_fd(sisy_server *s);
void snap_drain(sisy_server *s); /* loop: finished chunk jobs */
void snap_take_outgoing(sisy_server *s);
void snap_out_ready(sisy_server *s, srv_conn *c);
void snap_on_frame(sisy_server *s, srv_conn *c, sisy_slice msg);
void snap_on_writable(sisy_server *s, srv_conn *c);
void snap_closed(sisy_server *s, srv_conn *c);

/* join.c */
void join_on_frame(sisy_server *s, srv_conn *c, sisy_slice msg);
void join_closed(sisy_server *s, srv_conn *c);
void join_tick(sisy_server *s);

/* token.c: the join token (docs/operations.md) */
#define TOKEN_MAX_ADDRS 16
typedef struct srv_token {
	uint8_t secret[SISY_NODE_TOKEN];
	uint8_t cluster_fpr[32]; /* BLAKE2b-256 of the cluster key */
	uint64_t node_id;
	char address[SISY_NODE_MAX_ADDR + 1]; /* the new node's */
	size_t naddrs;
	char addrs[TOKEN_MAX_ADDRS][SISY_NODE_MAX_ADDR + 1]; /* members */
} srv_token;
sisy_err token_encode(const srv_token *t, sisy_buf *out);
sisy_err token_decode(const char *text, srv_token *t);
void token_cluster_fpr(const uint8_t cluster_pk[SISY_SIGN_PK], uint8_t out[32]);

/* work.c */
sisy_err work_start(sisy_server *s);
void work_stop(sisy_server *s);
/* Queues r for a worker; it is handed over at the end of the loop turn
 * (work_flush), so a turn's requests cost one lock and one wake-up. */
void work_submit(sisy_server *s, srv_req *r);
void work_flush(sisy_server *s);
/* Called by workers when a request (a list of them) is done. */
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
