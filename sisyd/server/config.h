/* config.h — sisyd's settings: defaults, the config file, flags.
 *
 * Every key of the config file is also a flag: `key = value` in the file,
 * `--key=value` or `--key value` on the command line (a flag beats the
 * file, which beats the default). Unknown keys are errors, so a typo never
 * silently falls back to a default. The table in config.c is the one list
 * of keys; `sisyd --help` and man/sisyd.8 print it.
 */
#ifndef SISY_SERVER_CONFIG_H
#define SISY_SERVER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

typedef struct sisy_server_config {
	char data_dir[1024];
	char listen[256];    /* host:port; port 0 picks a free one */
	char advertise[256]; /* host:port peers and clients reach this node
				at; empty: listen */
	char log_level[16];
	uint32_t max_connections;
	uint32_t max_unauth;	       /* connections not yet logged in */
	uint32_t handshake_timeout_ms; /* accept -> logged in */
	uint32_t idle_timeout_ms;      /* no request for this long; 0: never */
	uint32_t io_timeout_ms;	    /* a frame half received or output unsent */
	uint32_t max_pipeline;	    /* requests queued per connection */
	uint32_t max_output_bytes;  /* per connection, before reads pause */
	uint32_t max_request_bytes; /* queued request bytes per connection */
	uint32_t read_threads;
	uint32_t scan_page_max; /* entries per SCAN page */
	uint32_t scan_page_bytes;
	uint32_t auth_free_failures; /* per source/user before delays */
	uint32_t auth_delay_ms;	     /* first delay, doubling */
	uint32_t auth_delay_max_ms;
	uint32_t shutdown_timeout_ms;
	bool sync; /* always on: the Raft log fsyncs before acknowledging */
	bool unsafe_no_fsync; /* benchmarks/tests only: the Raft log skips
				 fsync (etcd's --unsafe-no-fsync) */
	uint64_t memtable_bytes;
	uint64_t block_cache_bytes;
	uint32_t compaction_nice;
	char port_file[1024]; /* write the bound port here once listening */
	/* The cluster (docs/server.md "Timing"). */
	uint32_t tick_ms;	       /* one unit of Raft time */
	uint32_t election_ticks;       /* base election timeout */
	uint32_t heartbeat_ticks;      /* leader heartbeat interval */
	uint32_t leader_wait_ms;       /* a request waits this long for a
					  leader, then NO_LEADER */
	uint32_t forward_timeout_ms;   /* a forwarded write's answer */
	uint32_t transfer_timeout_ms;  /* SIGTERM: leadership handover */
	uint32_t snapshot_chunk_bytes; /* snapshot stream chunks */
	uint64_t compact_entries; /* log compaction: past this many entries */
	uint64_t compact_keep;	  /* ... keeping this many */
	char peer_routes[2048];	  /* "id=host:port,...": dial node id there
				     instead of its membership address (a
				     fault proxy between nodes) */
} sisy_server_config;

void sisy_config_defaults(sisy_server_config *c);
/* Applies one key; SISY_E_INVAL with a message for unknown keys or bad
 * values. */
sisy_err sisy_config_set(sisy_server_config *c, const char *key,
			 const char *value);
/* Reads `key = value` lines ('#' comments). A missing file is an error
 * only when `required`. */
sisy_err sisy_config_load(sisy_server_config *c, const char *path,
			  bool required);
/* Writes the list of keys with defaults and help (for --help). */
void sisy_config_usage(FILE *f);
/* Whether `key` names a setting (for flag parsing). */
bool sisy_config_known(const char *key, bool *is_bool);
/* The address peers and clients reach this node at (advertise, else
 * listen). */
const char *sisy_config_advertise(const sisy_server_config *c);
/* The route override for node `id` in peer_routes, into out; false when
 * none. */
bool sisy_config_route(const sisy_server_config *c, uint64_t id, char *out,
		       size_t cap);

#endif
