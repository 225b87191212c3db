/* fake_backend.h — an in-memory cli_backend for the shell's unit tests.
 *
 * Keys are kept sorted (memcmp order); every write bumps one version
 * counter, so versions grow as the server's do. Scans return at most
 * `page_max` rows per page, so paging is exercised with small data. Faults
 * are injected by the fields below; counters let tests check what reached
 * the "server".
 */
#ifndef FAKE_BACKEND_H
#define FAKE_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef struct fake_entry {
	sisy_buf key, value;
	uint64_t version;
} fake_entry;

typedef struct fake_user {
	char name[64];
	cli_role role;
	char password[64];
} fake_user;

typedef struct fake_backend {
	cli_backend base;
	fake_entry *e;
	size_t n, cap;
	uint64_t version;
	uint32_t page_max;
	fake_user users[16];
	size_t nusers;
	bool cluster;	      /* offers CLUSTER commands */
	uint64_t failover_to; /* the last CLUSTER FAILOVER (0: any) */
	/* Faults. */
	sisy_err fail_next;	 /* the next operation fails with this */
	unsigned fail_countdown; /* ... after this many more succeed */
	bool lost;		 /* every operation: SISY_E_CONN */
	bool reconnect_fails;	 /* reconnect(): SISY_E_CONN */
	/* Counters. */
	unsigned scan_pages, batches, writes, reconnects, calls;
	/* --pipe: outcomes queued by pipe_send. */
	sisy_err pipe_q[512];
	char pipe_msg[512][64];
	size_t pipe_head, pipe_n;
} fake_backend;

void fake_init(fake_backend *f);
void fake_free(fake_backend *f);
/* Direct access for setting up and checking state. */
void fake_put(fake_backend *f, const void *k, size_t klen, const void *v,
	      size_t vlen);
const fake_entry *fake_find(const fake_backend *f, const void *k, size_t klen);

#endif
