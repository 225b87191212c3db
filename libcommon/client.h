/* client.h — the blocking SisyphusDB client library (CMake target
 * sisy_client). sisy-cli and sisy-bench use it; nothing here needs the
 * generated protobuf headers.
 *
 * A sisy_client is one authenticated, encrypted session with one node:
 *   connect:  tries each host of "h1[:p1],h2[:p2],..." in turn, runs the
 *             handshake (docs/protocol.md), checks the cluster key against
 *             the trust settings, logs in;
 *   requests: sisy_client_send() queues one request (pipelining), and
 *             sisy_client_recv() returns the replies in the order sent;
 *             the typed helpers (sisy_client_get, ...) do one round trip.
 * A client is used by one thread at a time; many clients may coexist.
 *
 * ERRORS (what a caller branches on; sisy_errmsg() has the human text)
 *   SISY_E_CONN         no host could be reached (or the connection was lost);
 *                       the client is dead: close it and connect again
 *   SISY_E_KEYCHANGED   the host is pinned to another cluster key in
 *                       known_servers: possible impersonation; never retried
 *   SISY_E_UNTRUSTED    the cluster key is unknown and nothing vouched for it
 *                       (no known_servers entry, no server_key, no confirm
 *                       callback or it said no)
 *   SISY_E_AUTH         wrong user or password (the two are not told apart)
 *   SISY_E_PROTO        the peer broke the protocol (bad frame, failed
 *                       decryption, wrong signature); the client is dead
 *   SISY_E_VERSION      no protocol version in common
 *   SISY_E_CLOSED       the server ended the session (user deleted, role
 *                       changed, shutting down); reconnect
 *   SISY_E_TIMEOUT      no answer within io_timeout_ms; the client is dead
 *   SISY_E_FAILED       (connecting) the node has no user table yet: it was
 *                       just initialised or is catching up; retry shortly
 *                       (the next host of the list is tried first)
 *   per request (sisy_reply.err, or the typed helpers' return value):
 *   SISY_E_PERM         the role does not allow the request
 *   SISY_E_CONFLICT     IF VERSION / IF ABSENT did not hold
 *   SISY_E_INVAL, SISY_E_TOOBIG, SISY_E_NOTFOUND (named user), SISY_E_EXISTS,
 *   SISY_E_BUSY, SISY_E_NOLEADER, SISY_E_NOTLEADER, SISY_E_UNKNOWN_OUTCOME,
 *   SISY_E_NOSPC, SISY_E_FAILED, SISY_E_NOTSUP, SISY_E_INTERNAL
 * A missing key is NOT an error: GET answers SISY_OK with found == false.
 *
 * TRUST (like ssh's known_hosts, but pinning the CLUSTER's key, so every
 * node of a trusted cluster, present or future, is trusted). A server's key
 * is accepted when, in this order:
 *   1. opts.server_key is set: it must equal the cluster key (else
 *      SISY_E_KEYCHANGED); known_servers is not consulted or written;
 *   2. the cluster key appears in known_servers (any host): trusted;
 *   3. the host appears in known_servers with another key: SISY_E_KEYCHANGED;
 *   4. otherwise (unknown): opts.confirm is asked (a terminal shows the
 *      fingerprint and asks, trust on first use); yes -> appended to
 *      known_servers; no, or no callback (scripts) -> SISY_E_UNTRUSTED.
 * known_servers lines: "host:port[,host:port...] sisy-ed25519 <base64 key>"
 * ('#' comments). Fingerprints read "BLAKE2b:<base64 of 32 bytes>".
 *
 * KEY CACHE (fast repeated logins). The password is stretched with Argon2id
 * at no less than libsodium's interactive cost (tens of ms): too slow for
 * `sisy-cli -c` in a shell loop. After a successful login the derived key
 * is written to opts.passfile (mode 0600, created so if missing) as a line
 *   "#sisy-key v1 <cluster fpr> <user> <salt> <ops> <mem> <check> <key>"
 * ('#': a .pgpass-style "host:port:user:password" parser skips it); the next
 * login of that user to that cluster uses it and skips Argon2id. When a
 * password is given the entry is used only if it was derived from that same
 * password. docs/protocol.md explains why this does not weaken anything.
 *
 * ENVIRONMENT (read only by sisy_client_opts_env): SISY_HOST, SISY_PORT,
 * SISY_USER, SISY_PASSWORD, SISY_SERVER_KEY (base64 cluster key, or a path
 * to a file holding it), SISY_KNOWN_SERVERS (path), SISY_PASSFILE (path).
 */
#ifndef SISY_CLIENT_H
#define SISY_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define SISY_DEFAULT_PORT 7420
/* At most this many requests sent and not yet received (SISY_E_BUSY past it:
 * receive some replies first). */
#define SISY_CLIENT_MAX_INFLIGHT 4096
/* Limits the server enforces (SISY_E_TOOBIG / SISY_E_INVAL past them). */
#define SISY_MAX_KEY	   (16u * 1024)
#define SISY_MAX_VALUE	   (8u * 1024 * 1024)
#define SISY_MAX_BATCH_OPS 10000u
#define SISY_MAX_MGET_KEYS 10000u
#define SISY_MAX_USER_NAME 64u
#define SISY_MAX_PASSWORD  1024u

typedef struct sisy_client sisy_client;

typedef enum sisy_role {
	SISY_ROLE_NONE = 0,
	SISY_ROLE_READONLY = 1,
	SISY_ROLE_READWRITE = 2,
	SISY_ROLE_ADMIN = 3,
} sisy_role;

/* "readonly" | "readwrite" | "admin"; SISY_ROLE_NONE when unknown. */
sisy_role sisy_role_parse(const char *name);
const char *sisy_role_name(sisy_role r);

typedef enum sisy_consistency {
	SISY_CONSISTENCY_LINEARIZABLE = 0, /* the default */
	SISY_CONSISTENCY_STALE = 1,
} sisy_consistency;

/* Called for a cluster key nobody vouched for yet (TOFU). `host` is
 * "host:port", `fingerprint` as above. Return true to trust it (it is then
 * appended to known_servers), false to refuse. */
typedef bool (*sisy_client_confirm_fn)(void *ctx, const char *host,
				       const char *fingerprint);

typedef struct sisy_client_opts {
	const char *hosts;     /* "h1[:p1],h2[:p2]"; NULL: "127.0.0.1" */
	uint16_t default_port; /* for hosts without a port; 0: 7420 */
	const char *user;      /* NULL: "admin" */
	const char *password;  /* NULL: only a cached key can log in */
	/* Trust. Paths default (opts_init) to ~/.sisy/known_servers and
	 * ~/.sisy/passfile; NULL disables the file. */
	const char *known_servers;
	const char *server_key; /* base64 cluster key given by flag/env */
	sisy_client_confirm_fn confirm;
	void *confirm_ctx;
	const char *passfile;	     /* key cache */
	uint32_t connect_timeout_ms; /* per host; 0: 5000 */
	uint32_t io_timeout_ms;	     /* per reply; 0: 30000 */
	/* Exactly-once identity for writes: 0 picks a random one. Reuse a
	 * previous client's id (sisy_client_id) to retry its writes with the
	 * same sequence numbers after a reconnect. */
	uint64_t client_id;
	uint64_t first_seq; /* 0: 1 */
	/* Highest protocol version to offer; 0: the newest. Only tests (of
	 * compatibility with older clients) set it. */
	uint32_t max_version;
} sisy_client_opts;

/* Defaults (paths under $HOME; the strings are owned by the library and
 * live as long as the process). */
void sisy_client_opts_init(sisy_client_opts *o);
/* Overrides fields from the SISY_* variables listed above that are set. */
void sisy_client_opts_env(sisy_client_opts *o);

sisy_err sisy_client_connect(const sisy_client_opts *o, sisy_client **out);
/* Ends the session (politely if possible) and frees everything. NULL ok. */
void sisy_client_close(sisy_client *c);

/* What the session is: for prompts and WHOAMI without a round trip. */
typedef struct sisy_client_info {
	const char *host; /* "host:port" actually connected */
	const char *user;
	sisy_role role;
	uint64_t node_id;
	const char *node_role;	 /* at login: "leader", "follower",
				    "candidate", "learner" */
	const char *fingerprint; /* the cluster key's */
	uint32_t version;	 /* protocol version agreed */
	uint64_t client_id;
} sisy_client_info;
void sisy_client_get_info(const sisy_client *c, sisy_client_info *out);
uint64_t sisy_client_id(const sisy_client *c);

/* Fingerprint of a base64 key as shown to users ("BLAKE2b:..."); writes a
 * NUL-terminated string of at most SISY_FINGERPRINT_LEN bytes. */
#define SISY_FINGERPRINT_LEN 64
sisy_err sisy_client_fingerprint(const char *key_b64, char *out);

/* ---------------------------------------------------------- requests --- */

typedef enum sisy_op {
	SISY_OP_PING = 1,
	SISY_OP_GET,
	SISY_OP_PUT,
	SISY_OP_DEL,
	SISY_OP_EXISTS,
	SISY_OP_MGET,
	SISY_OP_SCAN,
	SISY_OP_INFO,
	SISY_OP_WHOAMI,
	SISY_OP_BATCH,
	SISY_OP_USER_ADD,
	SISY_OP_USER_DEL,
	SISY_OP_USER_LIST,
	SISY_OP_USER_PASSWORD,
	SISY_OP_USER_ROLE,
	SISY_OP_CLUSTER_INFO,	     /* entries: (name, value) */
	SISY_OP_CLUSTER_NODES,	     /* nodes */
	SISY_OP_CLUSTER_ADD_NODE,    /* address -> value: the join token */
	SISY_OP_CLUSTER_REMOVE_NODE, /* node_id */
	SISY_OP_CLUSTER_FAILOVER,    /* node_id: the new leader (0: any) */
} sisy_op;

typedef enum sisy_cond_kind {
	SISY_COND_NONE = 0,
	SISY_COND_VERSION, /* holds when the key's version == version */
	SISY_COND_ABSENT,  /* holds when the key does not exist */
} sisy_cond_kind;

typedef struct sisy_cond {
	sisy_cond_kind kind;
	uint64_t version;
} sisy_cond;

typedef struct sisy_batch_op {
	bool del; /* false: put */
	sisy_slice key;
	sisy_slice value; /* put only */
	sisy_cond cond;
} sisy_batch_op;

typedef enum sisy_scan_kind {
	SISY_SCAN_PREFIX = 0, /* keys starting with prefix (empty: all) */
	SISY_SCAN_RANGE = 1,  /* from <= key < to; empty bound: unbounded */
} sisy_scan_kind;

/* One request. Zero-initialise, set op and the fields it uses. Slices are
 * borrowed until sisy_client_send returns. CLUSTER_ADD_NODE, _REMOVE_NODE
 * and _FAILOVER need the admin role and run on the leader (the node asked
 * forwards them). */
typedef struct sisy_req {
	sisy_op op;
	sisy_consistency consistency; /* reads */
	sisy_slice key;		      /* GET PUT DEL EXISTS */
	sisy_slice value;	      /* PUT; PING payload */
	sisy_cond cond;		      /* PUT DEL */
	bool with_version;	      /* GET MGET SCAN */
	const sisy_slice *keys;	      /* MGET */
	size_t nkeys;
	const sisy_batch_op *ops; /* BATCH */
	size_t nops;
	sisy_scan_kind scan_kind; /* SCAN: one page */
	sisy_slice prefix;
	sisy_slice from, to;
	sisy_slice resume_after; /* exclusive; empty: start of range */
	uint32_t limit;		 /* 0: the server's page limit */
	bool keys_only;
	const char *info_section; /* INFO; NULL: all */
	const char *user;     /* USER_*: the user named (USER_PASSWORD: NULL =
				 the session's own user) */
	const char *password; /* USER_ADD, USER_PASSWORD: derived here with
				 Argon2id, never sent */
	sisy_role role;	      /* USER_ADD, USER_ROLE */
	const char *address;  /* CLUSTER_ADD_NODE: the new node's host:port */
	uint64_t node_id;     /* CLUSTER_REMOVE_NODE; CLUSTER_FAILOVER (0:
				 the most caught-up voter) */
	/* Writes: 0 takes the next sequence number; a retry passes the
	 * sequence of the write it repeats (sisy_reply.seq). */
	uint64_t seq;
} sisy_req;

/* An entry of MGET (found per key), SCAN, INFO (key = "section.name",
 * value = text), CLUSTER_INFO (key = name, value = text), USER_LIST
 * (key = name, value = role name). */
typedef struct sisy_kv {
	sisy_slice key;
	sisy_slice value;
	uint64_t version;
	bool found;
} sisy_kv;

/* A row of CLUSTER_NODES: one member of the cluster as the node asked
 * sees it (role "unreachable": not heard from lately). */
typedef struct sisy_cluster_node {
	uint64_t id;
	const char *address; /* host:port */
	const char *role;    /* leader, follower, candidate, learner,
				unreachable */
	uint64_t term;
	uint64_t commit_index, applied_index;
	uint64_t lag; /* entries behind the leader's commit index */
	bool voter;
} sisy_cluster_node;

/* A reply; owns its memory (slices point into it) until sisy_reply_free. */
typedef struct sisy_reply {
	uint64_t id;
	sisy_op op;
	sisy_err err;	     /* SISY_OK or the request's failure */
	int status;	     /* the wire status (sisy.proto Status) */
	const char *message; /* human text for a failure; "" otherwise */
	uint64_t seq;	     /* writes: the sequence number used */
	/* GET, PING (value = payload), EXISTS (found), CLUSTER_ADD_NODE
	 * (value = the join token) */
	bool found;
	sisy_slice value;
	uint64_t version;   /* GET with_version; PUT/BATCH: the new version;
			       CONFLICT: the key's current version (0 absent) */
	bool existed;	    /* DEL */
	uint32_t failed_op; /* BATCH CONFLICT: index of the first failing op */
	sisy_kv *entries;   /* MGET SCAN INFO USER_LIST */
	size_t nentries;
	bool more;		 /* SCAN: ask again with resume_after */
	sisy_slice resume_after; /* SCAN */
	/* WHOAMI (node_id: also CLUSTER_ADD_NODE, the new node's id) */
	const char *user;
	sisy_role role;
	uint64_t node_id;
	const char *node_role;
	/* CLUSTER_NODES */
	sisy_cluster_node *nodes;
	size_t nnodes;
	/* NOT_LEADER: where to go */
	const char *redirect; /* "host:port" or "" */
} sisy_reply;

void sisy_reply_free(sisy_reply *r);

/* Queues a request (pipelining: call many times, then receive). *id (may
 * be NULL) is the id its reply will carry. Returns an error without
 * sending when the request is invalid (SISY_E_INVAL / SISY_E_TOOBIG),
 * SISY_E_BUSY at SISY_CLIENT_MAX_INFLIGHT, or a connection error. */
sisy_err sisy_client_send(sisy_client *c, const sisy_req *r, uint64_t *id);
/* Sends whatever is queued. sisy_client_recv flushes too. */
sisy_err sisy_client_flush(sisy_client *c);
/* Waits for the next reply, in the order sent. SISY_OK means a reply came
 * (its own outcome is (*out)->err); any other code means the connection
 * is gone (see ERRORS). SISY_E_INVAL when nothing is in flight. */
sisy_err sisy_client_recv(sisy_client *c, sisy_reply **out);
/* Requests sent and not yet received. */
size_t sisy_client_inflight(const sisy_client *c);

/* For event loops driving many clients from one thread (sisy-bench): the
 * socket to watch for input, and a receive that never waits. try_recv
 * reads what the socket has and returns SISY_OK with a reply when a whole
 * one is buffered, SISY_E_AGAIN when not yet (watch fd again), or a
 * connection error as sisy_client_recv. */
int sisy_client_fd(const sisy_client *c);
sisy_err sisy_client_try_recv(sisy_client *c, sisy_reply **out);

/* One round trip: send + recv. *out is set whenever a reply came. */
sisy_err sisy_client_call(sisy_client *c, const sisy_req *r, sisy_reply **out);

/* ---------------------------------------------------- typed helpers --- */
/* Each returns the request's outcome (or a connection error). */

sisy_err sisy_client_ping(sisy_client *c);
/* *found = false (and SISY_OK) for a missing key. version may be NULL. */
sisy_err sisy_client_get(sisy_client *c, sisy_slice key, sisy_buf *val,
			 bool *found, uint64_t *version);
/* cond may be NULL; *version (may be NULL) gets the new version. */
sisy_err sisy_client_put(sisy_client *c, sisy_slice key, sisy_slice val,
			 const sisy_cond *cond, uint64_t *version);
sisy_err sisy_client_del(sisy_client *c, sisy_slice key, const sisy_cond *cond,
			 bool *existed);
sisy_err sisy_client_exists(sisy_client *c, sisy_slice key, bool *exists);

/* Scans every page of a range. The callback returns false to stop early.
 * total_limit 0: no limit. */
typedef bool (*sisy_client_scan_fn)(void *ctx, const sisy_kv *kv);
sisy_err sisy_client_scan(sisy_client *c, const sisy_req *scan,
			  uint64_t total_limit, sisy_client_scan_fn fn,
			  void *ctx);

#endif
