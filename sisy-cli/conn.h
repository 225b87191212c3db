/* conn.h — the real backend: the shell's operations (backend.h) over the
 * client library (libcommon/client.h). The only file of the shell that
 * knows that library, so wiring to a new client API is one place.
 *
 * Exactly once: the adapter numbers writes itself (its own sequence
 * counter, passed as sisy_req.seq) and keeps the client id across
 * reconnects, so that a write retried after a lost connection or an
 * "outcome unknown" answer carries the same (client id, sequence) and the
 * server applies it once. Such a write is retried, with a growing pause,
 * until a definite answer or CLI_WRITE_DEADLINE_MS; only then does the
 * shell hear SISY_E_UNKNOWN_OUTCOME (exit status 4). "No leader", "not
 * the leader" and "busy" are retried the same way, since the write was
 * not applied and trying again is safe.
 */
#ifndef CLI_CONN_H
#define CLI_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"
#include "client.h"
#include "opts.h"

typedef struct cli_conn_params {
	const cli_host *hosts;
	size_t nhosts;
	const char *user;
	const char *password;	/* NULL: only a cached key can log in */
	const char *server_key; /* --server-key; NULL: SISY_SERVER_KEY */
	const char *passfile;	/* the key cache; NULL: none */
	bool passfile_set;	/* false: the library's default */
	sisy_client_confirm_fn confirm; /* trust on first use; NULL: never */
	void *confirm_ctx;
	unsigned write_deadline_ms; /* 0: CLI_WRITE_DEADLINE_MS */
} cli_conn_params;

/* Connects (trying the hosts in turn) and returns the backend. The
 * strings of `p` are copied. */
sisy_err cli_conn_open(const cli_conn_params *p, cli_backend **out);

#endif
