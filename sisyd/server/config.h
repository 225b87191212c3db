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
	char listen[256]; /* host:port; port 0 picks a free one */
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
	uint32_t apply_group;	/* commands per engine batch at most */
	uint32_t scan_page_max; /* entries per SCAN page */
	uint32_t scan_page_bytes;
	uint32_t auth_free_failures; /* per source/user before delays */
	uint32_t auth_delay_ms;	     /* first delay, doubling */
	uint32_t auth_delay_max_ms;
	uint32_t shutdown_timeout_ms;
	bool sync; /* engine: fsync every write group */
	bool compression;
	uint64_t memtable_bytes;
	uint64_t block_cache_bytes;
	int32_t bloom_bits_per_key;
	char port_file[1024]; /* write the bound port here once listening */
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

#endif
