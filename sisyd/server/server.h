/* server.h — the sisyd server: one epoll event loop that owns every client
 * and peer connection and every request, a node (sisyd/node: the Raft
 * groups and their engines) it drives, a small pool of read threads and a
 * snapshot thread. main.c configures and runs it; tests run it in-process
 * on port 0. docs/server.md describes it.
 */
#ifndef SISY_SERVER_H
#define SISY_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"
#include "log.h"

typedef struct sisy_server sisy_server;

/* Opens the data directory (keys, identity, the node) and starts
 * listening. The logger must outlive the server. */
sisy_err sisy_server_open(const sisy_server_config *cfg,
			  const sisy_logger *logger, sisy_server **out);
/* The port actually bound (useful with port 0). */
uint16_t sisy_server_port(const sisy_server *s);
/* Serves until sisy_server_stop; then hands leadership over (bounded by
 * transfer_timeout_ms), stops accepting, finishes in-flight requests
 * (bounded by shutdown_timeout_ms). */
sisy_err sisy_server_run(sisy_server *s);
/* Asks the loop to stop. Async-signal-safe and thread-safe. */
void sisy_server_stop(sisy_server *s);
/* Closes the node (its engines flushed) and frees everything. */
void sisy_server_free(sisy_server *s);

/* `sisyd init`: creates DIR holding a new cluster: its signing key, this
 * node's identity (node 1), and the first entries of the metadata group's
 * log (this node as its only voter at `address`, the first admin user with
 * this password). SISY_E_EXISTS if DIR holds a node. */
sisy_err sisy_server_init_dir(const char *dir, const char *admin_user,
			      const char *admin_password, const char *address);

/* `sisyd init --join TOKEN`: creates DIR for a node joining the cluster
 * named in the token (docs/operations.md): a fresh identity key, proven
 * to the cluster with the token, certified for the node id the token
 * reserved. `address` is where the node will serve (NULL: the one given
 * to CLUSTER ADD NODE, from the token); it is returned in my_address.
 * Blocking, bounded (each member tried with a deadline). */
sisy_err sisy_server_join(const char *dir, const char *token,
			  const char *address, uint64_t *node_id,
			  char *my_address, size_t cap);

#endif
