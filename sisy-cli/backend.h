/* backend.h — the narrow interface between the shell and a database.
 *
 * Everything the shell asks of a server goes through these operations, so
 * that conn.c (the real network, over libcommon/client.h) is the only file
 * that knows the client library, and the unit tests can run the whole shell
 * against an in-memory fake (tests/unit/cli/fake_backend.c).
 *
 * Contract for every operation:
 *  - it returns SISY_OK or the request's failure; the human text is in
 *    sisy_errmsg() (the server's message when it sent one);
 *  - a missing key is not a failure (found = false);
 *  - SISY_E_CONN, SISY_E_PROTO, SISY_E_TIMEOUT and SISY_E_CLOSED mean the
 *    session is gone (cli_backend_lost() tells); the shell reports it and
 *    calls reconnect() before the next command;
 *  - a write (put, del, batch) is retried by the backend itself with the
 *    same client id and sequence while its outcome is unknown, until a
 *    definite answer or its deadline; only then SISY_E_UNKNOWN_OUTCOME;
 *  - callbacks receive borrowed slices, valid during the call; a callback
 *    that fails (e.g. the output cannot be written) stops the operation
 *    and its error is returned.
 */
#ifndef CLI_BACKEND_H
#define CLI_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "parse.h"

typedef struct cli_backend cli_backend;

typedef struct cli_kv {
	sisy_slice key;
	sisy_slice value;
	uint64_t version;
	bool found; /* MGET: false for a missing key */
} cli_kv;

typedef sisy_err (*cli_kv_fn)(void *ctx, const cli_kv *kv);

/* One write: a PUT or a DEL, with its condition. */
typedef struct cli_write {
	bool del;
	sisy_slice key;
	sisy_slice value;
	cli_cond cond;
	uint64_t cond_version;
} cli_write;

/* One page of a scan. */
typedef struct cli_scan_page {
	cli_scan_mode mode;
	sisy_slice prefix;	 /* PREFIX */
	sisy_slice from, to;	 /* RANGE; empty `to` is unbounded */
	sisy_slice resume_after; /* exclusive; only when has_resume */
	bool has_resume;
	uint32_t limit; /* rows wanted in this page, >= 1 */
	bool stale;
} cli_scan_page;

/* A row of CLUSTER NODES. */
typedef struct cli_node {
	uint64_t id;
	char address[300]; /* host:port */
	char role[32];	   /* leader, follower, learner, ... */
	uint64_t term;
	uint64_t commit_index;
	uint64_t applied_index;
	uint64_t lag; /* entries behind the leader */
} cli_node;

typedef sisy_err (*cli_node_fn)(void *ctx, const cli_node *n);

typedef struct cli_whoami {
	char user[256];
	char role[32];
	uint64_t node_id;
	char node_role[32];
} cli_whoami;

/* What the shell shows in its prompt and \conninfo. */
typedef struct cli_conn_desc {
	char user[256];
	char host[300];	    /* "host:port" connected to */
	char node_role[32]; /* "" when the server does not say */
	char fingerprint[80];
} cli_conn_desc;

typedef struct cli_backend_ops {
	sisy_err (*get)(cli_backend *b, sisy_slice key, bool stale,
			sisy_buf *val, bool *found, uint64_t *version);
	sisy_err (*write)(cli_backend *b, const cli_write *w, uint64_t *version,
			  bool *existed);
	sisy_err (*exists)(cli_backend *b, sisy_slice key, bool stale,
			   bool *found);
	/* One callback per key, in order, found or not. */
	sisy_err (*mget)(cli_backend *b, const sisy_slice *keys, size_t n,
			 bool stale, cli_kv_fn fn, void *ctx);
	/* At most page->limit rows; *more when the range goes on, with
	 * *resume holding the last key returned. */
	sisy_err (*scan_page)(cli_backend *b, const cli_scan_page *page,
			      cli_kv_fn fn, void *ctx, bool *more,
			      sisy_buf *resume);
	/* Atomic: all or nothing. On SISY_E_CONFLICT *failed_op names the
	 * first op whose condition failed. */
	sisy_err (*batch)(cli_backend *b, const cli_write *ops, size_t n,
			  uint64_t *version, size_t *failed_op);
	sisy_err (*ping)(cli_backend *b);
	/* Rows of (name, value). */
	sisy_err (*info)(cli_backend *b, cli_kv_fn fn, void *ctx);
	sisy_err (*whoami)(cli_backend *b, cli_whoami *out);
	sisy_err (*user_add)(cli_backend *b, const char *name, cli_role role,
			     const char *password);
	sisy_err (*user_del)(cli_backend *b, const char *name);
	/* Rows of (name, role). */
	sisy_err (*user_list)(cli_backend *b, cli_kv_fn fn, void *ctx);
	/* name NULL: the session's own user. */
	sisy_err (*user_password)(cli_backend *b, const char *name,
				  const char *password);
	sisy_err (*user_role)(cli_backend *b, const char *name, cli_role role);
	/* CLUSTER commands, when has_cluster() says the server offers them
	 * (the parser refuses CLUSTER otherwise). */
	bool (*has_cluster)(cli_backend *b);
	sisy_err (*cluster_info)(cli_backend *b, cli_kv_fn fn, void *ctx);
	sisy_err (*cluster_nodes)(cli_backend *b, cli_node_fn fn, void *ctx);
	/* The one-time join token for the new node, into *token. */
	sisy_err (*cluster_add_node)(cli_backend *b, const char *address,
				     sisy_buf *token);
	sisy_err (*cluster_remove_node)(cli_backend *b, uint64_t id);
	sisy_err (*cluster_failover)(cli_backend *b, bool has_to, uint64_t to);
	/* --pipe: queue a write without waiting (SISY_E_BUSY when the
	 * window is full: receive first), and take the outcome of the
	 * oldest write still in flight. */
	sisy_err (*pipe_send)(cli_backend *b, const cli_write *w);
	sisy_err (*pipe_recv)(cli_backend *b, sisy_err *outcome);
	size_t (*pipe_inflight)(cli_backend *b);
	/* A new session (same client id, so retried writes stay exactly
	 * once). */
	sisy_err (*reconnect)(cli_backend *b);
	bool (*connected)(cli_backend *b);
	void (*describe)(cli_backend *b, cli_conn_desc *out);
	void (*destroy)(cli_backend *b);
} cli_backend_ops;

struct cli_backend {
	const cli_backend_ops *ops;
};

/* True for the codes that mean the session is gone. */
static inline bool cli_err_is_lost(sisy_err e)
{
	return e == SISY_E_CONN || e == SISY_E_PROTO || e == SISY_E_TIMEOUT ||
	       e == SISY_E_CLOSED;
}

/* True for the codes that mean connecting itself failed (exit status 2). */
static inline bool cli_err_is_connect(sisy_err e)
{
	return cli_err_is_lost(e) || e == SISY_E_AUTH ||
	       e == SISY_E_KEYCHANGED || e == SISY_E_UNTRUSTED ||
	       e == SISY_E_VERSION;
}

#endif
