/* config.c — the table of settings (config.h). One row per key: its type,
 * where it lives in sisy_server_config, its bounds and its help line. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "trust.h"

typedef enum { T_STR, T_U32, T_U64, T_I32, T_BOOL } ctype;

typedef struct row {
	const char *key;
	ctype type;
	size_t off;
	size_t size; /* T_STR capacity */
	uint64_t min, max;
	const char *help;
} row;

#define F(field) offsetof(sisy_server_config, field)
#define S(field) sizeof(((sisy_server_config *)0)->field)

static const row rows[] = {
    {"data_dir", T_STR, F(data_dir), S(data_dir), 0, 0,
     "data directory (also -D)"},
    {"listen", T_STR, F(listen), S(listen), 0, 0,
     "address:port to serve clients and peers on (port 0: any free port)"},
    {"advertise", T_STR, F(advertise), S(advertise), 0, 0,
     "address:port other nodes and clients reach this node at (default: "
     "listen)"},
    {"log_level", T_STR, F(log_level), S(log_level), 0, 0,
     "debug | info | warn | error"},
    {"max_connections", T_U32, F(max_connections), 0, 1, 1000000,
     "client connections at most"},
    {"max_unauth", T_U32, F(max_unauth), 0, 1, 100000,
     "connections not yet logged in at most (the oldest is dropped)"},
    {"handshake_timeout_ms", T_U32, F(handshake_timeout_ms), 0, 10, 3600000,
     "time from connect to logged in"},
    {"idle_timeout_ms", T_U32, F(idle_timeout_ms), 0, 0, UINT32_MAX,
     "close a session idle this long (0: never)"},
    {"io_timeout_ms", T_U32, F(io_timeout_ms), 0, 10, 3600000,
     "close a client that leaves a frame half sent or stops reading"},
    {"max_pipeline", T_U32, F(max_pipeline), 0, 1, 65536,
     "requests queued per connection before reading pauses"},
    {"max_output_bytes", T_U32, F(max_output_bytes), 0, 65536, 1u << 30,
     "unsent reply bytes per connection before reading pauses"},
    {"read_threads", T_U32, F(read_threads), 0, 0, 64,
     "threads serving engine reads off the event loop (0: half the CPUs, "
     "at least 1)"},
    {"scan_page_max", T_U32, F(scan_page_max), 0, 1, 1000000,
     "entries per SCAN page at most"},
    {"scan_page_bytes", T_U32, F(scan_page_bytes), 0, 1024, 8u << 20,
     "bytes per SCAN page at most"},
    {"auth_free_failures", T_U32, F(auth_free_failures), 0, 0, 1000,
     "failed logins per source or user answered without delay"},
    {"auth_delay_ms", T_U32, F(auth_delay_ms), 0, 0, 600000,
     "first delay of a failed login past the free ones (doubles)"},
    {"auth_delay_max_ms", T_U32, F(auth_delay_max_ms), 0, 0, 600000,
     "longest delay of a failed login"},
    {"shutdown_timeout_ms", T_U32, F(shutdown_timeout_ms), 0, 0, 3600000,
     "how long SIGTERM waits for in-flight requests"},
    {"sync", T_BOOL, F(sync), 0, 1, 1,
     "writes are fsync'd (group commit) before they are answered: always "
     "true, the Raft log is the durability point"},
    {"unsafe_no_fsync", T_BOOL, F(unsafe_no_fsync), 0, 0, 1,
     "UNSAFE, for benchmarks and tests only: the Raft log is written but "
     "not fsync'd, so a machine crash can lose acknowledged writes"},
    {"memtable_bytes", T_U64, F(memtable_bytes), 0, 65536, 1ull << 30,
     "engine: memtable size (per Raft group; made of 4 MiB runs)"},
    {"block_cache_bytes", T_U64, F(block_cache_bytes), 0, 0, 1ull << 40,
     "engine: block cache size (per Raft group)"},
    {"compaction_nice", T_U32, F(compaction_nice), 0, 0, 19,
     "engine: nice increment of the flush/compaction threads, so request "
     "processing wins a busy core (0: none)"},
    {"port_file", T_STR, F(port_file), S(port_file), 0, 0,
     "write the listening port to this file once ready"},
    {"tick_ms", T_U32, F(tick_ms), 0, 1, 1000, "one unit of Raft time"},
    {"election_ticks", T_U32, F(election_ticks), 0, 3, 10000,
     "election timeout in ticks (each node draws from [n, 2n))"},
    {"heartbeat_ticks", T_U32, F(heartbeat_ticks), 0, 1, 1000,
     "leader heartbeat interval in ticks (below election_ticks)"},
    {"leader_wait_ms", T_U32, F(leader_wait_ms), 0, 0, 600000,
     "how long a request waits for a leader before NO_LEADER"},
    {"forward_timeout_ms", T_U32, F(forward_timeout_ms), 0, 10, 600000,
     "how long a follower waits for the leader's answer to a forwarded "
     "write (then OUTCOME_UNKNOWN)"},
    {"transfer_timeout_ms", T_U32, F(transfer_timeout_ms), 0, 0, 600000,
     "SIGTERM on a leader: how long to wait for the handover"},
    {"snapshot_chunk_bytes", T_U32, F(snapshot_chunk_bytes), 0, 4096, 8u << 20,
     "bytes per snapshot chunk"},
    {"compact_entries", T_U64, F(compact_entries), 0, 1, 1ull << 40,
     "compact the Raft log once it holds this many applied, durable "
     "entries"},
    {"compact_keep", T_U64, F(compact_keep), 0, 0, 1ull << 40,
     "entries kept behind a compaction (a follower that far behind "
     "catches up without a snapshot)"},
    {"peer_routes", T_STR, F(peer_routes), S(peer_routes), 0, 0,
     "id=host:port[,id=host:port...]: dial these nodes there instead of "
     "their membership address (a fault proxy between nodes)"},
};

#define NROWS (sizeof rows / sizeof rows[0])

void sisy_config_defaults(sisy_server_config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->listen, sizeof c->listen, "127.0.0.1:7420");
	snprintf(c->log_level, sizeof c->log_level, "info");
	c->max_connections = 10000;
	c->max_unauth = 256;
	c->handshake_timeout_ms = 10000;
	c->idle_timeout_ms = 0;
	c->io_timeout_ms = 30000;
	c->max_pipeline = 1024;
	c->max_output_bytes = 8u << 20;
	c->max_request_bytes = 64u << 20;
	c->read_threads = 0;
	c->scan_page_max = 1000;
	c->scan_page_bytes = 1u << 20;
	c->auth_free_failures = 3;
	c->auth_delay_ms = 200;
	c->auth_delay_max_ms = 5000;
	c->shutdown_timeout_ms = 10000;
	c->sync = true;
	/* 16 MiB in runs of 4 MiB (docs/engine.md "Memtable runs"): a quarter
	 * of the flushes and a tenth of the compaction bytes of 4 MiB, at the
	 * insert cost of 4 MiB. */
	c->memtable_bytes = 16u << 20;
	c->block_cache_bytes = 64u << 20;
	c->compaction_nice = 10;
	/* 10 ms ticks, elections after 150-300 ms of silence, heartbeats
	 * every 20 ms: docs/server.md "Timing" has the measurements. */
	c->tick_ms = 10;
	c->election_ticks = 15;
	c->heartbeat_ticks = 2;
	c->leader_wait_ms = 3000;
	c->forward_timeout_ms = 10000;
	c->transfer_timeout_ms = 3000;
	c->snapshot_chunk_bytes = 1u << 20;
	c->compact_entries = 10000;
	c->compact_keep = 1000;
}

const char *sisy_config_advertise(const sisy_server_config *c)
{
	return c->advertise[0] ? c->advertise : c->listen;
}

bool sisy_config_route(const sisy_server_config *c, uint64_t id, char *out,
		       size_t cap)
{
	const char *p = c->peer_routes;
	while (*p) {
		char *end = NULL;
		unsigned long long rid = strtoull(p, &end, 10);
		if (end == p || *end != '=')
			return false; /* validated at set time: unreachable */
		const char *a = end + 1;
		size_t n = strcspn(a, ",");
		if (rid == id) {
			if (n >= cap)
				return false;
			memcpy(out, a, n);
			out[n] = '\0';
			return true;
		}
		p = a + n;
		if (*p == ',')
			p++;
	}
	return false;
}

/* "id=host:port[,...]" with nonzero ids and a port in each address. */
static bool routes_valid(const char *v)
{
	const char *p = v;
	while (*p) {
		char *end = NULL;
		unsigned long long id = strtoull(p, &end, 10);
		if (end == p || id == 0 || *end != '=')
			return false;
		const char *a = end + 1;
		size_t n = strcspn(a, ",");
		const char *colon = memchr(a, ':', n);
		if (n == 0 || n > 255 || colon == NULL || colon + 1 == a + n)
			return false;
		p = a + n;
		if (*p == ',')
			p++;
	}
	return true;
}

static const row *find(const char *key)
{
	for (size_t i = 0; i < NROWS; i++)
		if (strcmp(rows[i].key, key) == 0)
			return &rows[i];
	return NULL;
}

bool sisy_config_known(const char *key, bool *is_bool)
{
	const row *r = find(key);
	if (r && is_bool)
		*is_bool = r->type == T_BOOL;
	return r != NULL;
}

sisy_err sisy_config_set(sisy_server_config *c, const char *key,
			 const char *value)
{
	const row *r = find(key);
	if (r == NULL)
		return sisy_errf(SISY_E_INVAL,
				 "config: unknown setting '%s' (sisyd --help "
				 "lists them)",
				 key);
	char *p = (char *)c + r->off;
	if (r->type == T_STR) {
		if (strlen(value) >= r->size)
			return sisy_errf(SISY_E_INVAL, "config: %s is too long",
					 key);
		if (strcmp(key, "log_level") == 0 &&
		    sisy_log_level_parse(value) < 0)
			return sisy_errf(SISY_E_INVAL,
					 "config: log_level must be debug, "
					 "info, warn or error");
		if (strcmp(key, "peer_routes") == 0 && !routes_valid(value))
			return sisy_errf(SISY_E_INVAL,
					 "config: peer_routes must read "
					 "id=host:port[,id=host:port...]");
		snprintf(p, r->size, "%s", value);
		return SISY_OK;
	}
	if (r->type == T_BOOL) {
		bool v;
		if (!strcasecmp(value, "true") || !strcmp(value, "1") ||
		    !strcasecmp(value, "on") || !strcasecmp(value, "yes"))
			v = true;
		else if (!strcasecmp(value, "false") || !strcmp(value, "0") ||
			 !strcasecmp(value, "off") || !strcasecmp(value, "no"))
			v = false;
		else
			return sisy_errf(SISY_E_INVAL,
					 "config: %s wants true or false, not "
					 "'%s'",
					 key, value);
		if (strcmp(key, "sync") == 0 && !v)
			return sisy_errf(SISY_E_INVAL,
					 "config: sync cannot be turned off: "
					 "the Raft log fsyncs every write "
					 "before it is acknowledged");
		memcpy(p, &v, sizeof v);
		return SISY_OK;
	}
	char *end = NULL;
	errno = 0;
	unsigned long long v = strtoull(value, &end, 10);
	if (errno || end == value || *end != '\0' || value[0] == '-' ||
	    v < r->min || v > r->max)
		return sisy_errf(SISY_E_INVAL,
				 "config: %s must be a number in [%" PRIu64
				 ", %" PRIu64 "], not '%s'",
				 key, r->min, r->max, value);
	if (r->type == T_U32) {
		uint32_t x = (uint32_t)v;
		memcpy(p, &x, sizeof x);
	} else if (r->type == T_I32) {
		int32_t x = (int32_t)v;
		memcpy(p, &x, sizeof x);
	} else {
		uint64_t x = v;
		memcpy(p, &x, sizeof x);
	}
	return SISY_OK;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	char *e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

sisy_err sisy_config_load(sisy_server_config *c, const char *path,
			  bool required)
{
	char *data = NULL;
	sisy_err rc = sisy_trust_read_file(path, 1u << 20, &data, NULL);
	if (rc == SISY_E_NOTFOUND && !required)
		return SISY_OK;
	if (rc != SISY_OK)
		return rc;
	int lineno = 0;
	char *next = NULL;
	for (char *line = data; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		char *t = trim(line);
		if (*t == '#' || *t == '\0')
			continue;
		char *eq = strchr(t, '=');
		if (eq == NULL) {
			rc = sisy_errf(SISY_E_INVAL,
				       "%s:%d: expected 'key = value'", path,
				       lineno);
			break;
		}
		*eq = '\0';
		char *k = trim(t), *v = trim(eq + 1);
		if ((rc = sisy_config_set(c, k, v)) != SISY_OK) {
			rc = sisy_errf(rc, "%s:%d: %s", path, lineno,
				       sisy_errmsg());
			break;
		}
	}
	free(data);
	return rc;
}

void sisy_config_usage(FILE *f)
{
	sisy_server_config d;
	sisy_config_defaults(&d);
	for (size_t i = 0; i < NROWS; i++) {
		const row *r = &rows[i];
		const char *p = (const char *)&d + r->off;
		char def[64];
		switch (r->type) {
		case T_STR:
			snprintf(def, sizeof def, "%s", p);
			break;
		case T_BOOL:
			snprintf(def, sizeof def, "%s",
				 *(const bool *)p ? "true" : "false");
			break;
		case T_U32:
			snprintf(def, sizeof def, "%" PRIu32,
				 *(const uint32_t *)p);
			break;
		case T_I32:
			snprintf(def, sizeof def, "%" PRId32,
				 *(const int32_t *)p);
			break;
		default:
			snprintf(def, sizeof def, "%" PRIu64,
				 *(const uint64_t *)p);
		}
		fprintf(f, "  --%-22s %s (default: %s)\n", r->key, r->help,
			def[0] ? def : "none");
	}
}
