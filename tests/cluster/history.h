/* history.h — internals of sisy-history, the history-recording client of
 * the cluster fault tests (usage in history.c).
 *
 * Each client is one thread with one session (libcommon/client.h) doing one
 * operation at a time. An operation becomes one record, written as a JSON
 * line in sisy-lincheck's format (docs/testing.md) plus the fields "host"
 * (the node that gave the last answer) and "sent" (when the last attempt
 * was sent: a failover is timed by answers to attempts sent after a kill):
 *   call    CLOCK_MONOTONIC ns just before the first attempt was sent;
 *   return  CLOCK_MONOTONIC ns just after the definite answer arrived;
 *   outcome ok       a definite answer: the write applied, the read saw
 *                    `value`, the cas swapped or not;
 *           failed   every attempt was refused before it could be proposed
 *                    (NOLEADER, NOTLEADER, BUSY, PERM, INVAL, TOOBIG,
 *                    NOSPC, NOTSUP; any other answer counts as
 *                    may-have-applied);
 *           unknown  some attempt may have been applied (outcome unknown,
 *                    timeout, lost connection) and no retry got a definite
 *                    answer before the retry deadline; a read that lost its
 *                    connection or timed out.
 * Writes are retried as the shell retries them: same client id and
 * sequence, so a retry that reaches an applied write gets its first answer
 * (exactly-once), and the record's interval [call, return] still contains
 * the moment it took effect.
 *
 * Every put writes a value nobody else writes ("c<client>.<n>"), so a read
 * names the one write it saw. A cas is the server's version condition: a
 * GET with its version, then PUT IF VERSION v (or IF ABSENT); with unique
 * values and no other writer of that version, "version == v" holds exactly
 * when "value == the value read", so it is recorded as a value cas.
 *
 * Bounds: at most HIST_MAX_OPS records per client, keys and values of a
 * few dozen bytes.
 */
#ifndef SISY_HISTORY_H
#define SISY_HISTORY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "client.h"

#define HIST_MAX_OPS	 50000 /* records per client */
#define HIST_MAX_CLIENTS 64
#define HIST_KEY	 48
#define HIST_VAL	 48
#define HIST_HOST	 64

typedef enum hist_kind {
	HIST_PUT = 0,
	HIST_GET = 1,
	HIST_DEL = 2,
	HIST_CAS = 3
} hist_kind;

typedef enum hist_outcome {
	HIST_OK = 0,
	HIST_FAILED = 1,
	HIST_UNKNOWN = 2
} hist_outcome;

typedef struct hist_rec {
	uint8_t kind, outcome;
	bool has_value, has_expect, swapped;
	int64_t call, ret;
	int64_t sent; /* the last attempt was sent (written as "sent") */
	char key[HIST_KEY], value[HIST_VAL], expect[HIST_VAL];
	char host[HIST_HOST];
} hist_rec;

/* What every client shares (read-only while they run, but `stop`). */
typedef struct hist_conf {
	const char *hosts; /* every node, "h:p,h:p,..." */
	bool pinned;	   /* client i talks only to host i mod n */
	int clients;
	int keys;		 /* register keys "r<k>" */
	int put_pct, cas_pct;	 /* of operations; the rest are gets */
	int del_pct, unique_pct; /* unique: a put to a fresh key "u<c>.<n>" */
	uint32_t io_timeout_ms;	 /* per answer */
	uint32_t retry_ms;	 /* how long a write is retried */
	uint32_t backoff_ms;	 /* longest pause between retries */
	uint64_t seed;
	int64_t deadline; /* ns; clients stop by then */
	const char *stop_file;
	const char *prefix; /* key prefix, so runs do not mix */
	sisy_client_opts base;
	atomic_int stop; /* main thread -> clients */
} hist_conf;

typedef struct hist_client {
	const hist_conf *conf;
	int id;		  /* 1.. */
	char hosts[1024]; /* this client's host list, its own node first */
	pthread_t thread;
	hist_rec *recs;
	size_t n;
	/* session */
	sisy_client *c;
	uint64_t client_id, next_seq;
	char host[HIST_HOST]; /* of the current session */
	uint64_t ops;	      /* operations started */
	char err[256];	      /* why the client stopped early, "" */
	/* progress, read by the main thread while the client runs */
	_Atomic uint64_t ok_writes, ok_reads, done;
	_Atomic int64_t last_ok_write; /* ns */
} hist_client;

int64_t history_now(void);
/* The client's thread: operations until conf->stop or the deadline. */
void *history_client_run(void *arg);
/* Appends a record; NULL when the client's record table is full. */
hist_rec *history_rec_new(hist_client *h);
/* Makes the session if there is none (same client id, next sequence). */
sisy_err history_client_connect(hist_client *h);
void history_client_close(hist_client *h);

#endif
