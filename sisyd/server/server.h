/* server.h — the sisyd server: one epoll event loop that owns every client
 * connection and request, a small pool of read threads, one apply thread.
 * main.c configures and runs it; tests run it in-process on port 0.
 */
#ifndef SISY_SERVER_H
#define SISY_SERVER_H

#include <stdint.h>

#include "config.h"
#include "err.h"
#include "log.h"

typedef struct sisy_server sisy_server;

/* Opens the data directory (keys, users, engine) and starts listening. The
 * logger must outlive the server. */
sisy_err sisy_server_open(const sisy_server_config *cfg,
			  const sisy_logger *logger, sisy_server **out);
/* The port actually bound (useful with port 0). */
uint16_t sisy_server_port(const sisy_server *s);
/* Serves until sisy_server_stop; then stops accepting, finishes in-flight
 * requests (bounded by shutdown_timeout_ms) and flushes the engine. */
sisy_err sisy_server_run(sisy_server *s);
/* Asks the loop to stop. Async-signal-safe and thread-safe. */
void sisy_server_stop(sisy_server *s);
void sisy_server_free(sisy_server *s);

/* `sisyd init`: creates DIR with the cluster key, the node identity (node
 * 1), an empty engine and the first admin user with this password. */
sisy_err sisy_server_init_dir(const char *dir, const char *admin_user,
			      const char *admin_password);

#endif
