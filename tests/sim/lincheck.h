/* lincheck.h — a linearizability checker for key-value histories.
 *
 * A history is a set of client operations on a key-value map, each with the
 * time it was invoked (call) and the time its response arrived (ret), and an
 * outcome:
 *   ok       the response arrived and says what happened (a get's value, a
 *            cas's swapped flag);
 *   failed   the system guarantees the operation did not take effect and
 *            never will (rejected before it was proposed: "not the leader"
 *            without proposing, a validation error). A timeout, a lost
 *            connection or "outcome unknown" is NEVER "failed". A failed
 *            operation is dropped from the history;
 *   unknown  the client timed out or died: the operation may or may not have
 *            taken effect, at any moment after its call (its ret is +inf). An
 *            unknown get observed nothing and is dropped; an unknown write is
 *            optional: the search may linearize it anywhere after its call,
 *            or not at all.
 *
 * The history is linearizable if there is a total order of the operations
 * that (a) respects real time (if a.ret < b.call then a precedes b), (b)
 * contains every ok operation and any subset of the unknown ones, and (c) is
 * a legal sequential run of the map from the empty state. Equal timestamps
 * count as concurrent (the lenient reading).
 *
 * Method: a key-value map is P-compositional, so the history is split by key
 * and each key checked alone (the history is linearizable iff every key's
 * sub-history is). A key with only puts and gets, every put writing its own
 * value, is decided exactly in O(n log n) by Gibbons and Korach's zones
 * (lincheck_zones.c). Otherwise (and to explain a failure) a Wing-Gong/Lowe
 * depth-first search over linearization points, with a memo of (linearized
 * set, state) pairs already explored, as Porcupine does. The search is bounded
 * by a step budget and a memory cap; running out of either yields
 * SISY_LINCHECK_UNKNOWN, which callers must treat as a failure to investigate,
 * never as a pass.
 *
 * A history owns copies of every key and value it is given. Not thread-safe;
 * no global state.
 */
#ifndef SISY_LINCHECK_H
#define SISY_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "buf.h"
#include "err.h"

/* Bounds on what a history may hold (bad input beyond them). */
#define SISY_LINCHECK_MAX_KEY	1024
#define SISY_LINCHECK_MAX_VALUE (64 * 1024)
#define SISY_LINCHECK_MAX_OPS	(4u * 1000 * 1000)

typedef enum sisy_lincheck_kind {
	SISY_LINCHECK_PUT = 0, /* key := value */
	SISY_LINCHECK_GET = 1, /* observe value (or absent) */
	SISY_LINCHECK_DEL = 2, /* key := absent */
	SISY_LINCHECK_CAS = 3, /* if key == expect then key := value */
} sisy_lincheck_kind;

typedef enum sisy_lincheck_outcome {
	SISY_LINCHECK_OK = 0,
	SISY_LINCHECK_FAILED = 1,
	SISY_LINCHECK_UNKNOWN_OUTCOME = 2,
} sisy_lincheck_outcome;

/* One operation as given to sisy_lincheck_add (the history copies it).
 *   put:  value (has_value must be true)
 *   get:  value = what was read; has_value false = the key was absent
 *   del:  -
 *   cas:  expect (has_expect false = expect the key to be absent), value
 *         (the new value; has_value must be true), swapped = the result
 * ret is ignored when the outcome is unknown. */
typedef struct sisy_lincheck_op {
	uint64_t client;
	sisy_lincheck_kind kind;
	sisy_lincheck_outcome outcome;
	sisy_slice key;
	sisy_slice value;
	bool has_value;
	sisy_slice expect;
	bool has_expect;
	bool swapped;
	int64_t call;
	int64_t ret;
} sisy_lincheck_op;

typedef enum sisy_lincheck_verdict {
	SISY_LINCHECK_LINEARIZABLE = 0,
	SISY_LINCHECK_NOT_LINEARIZABLE = 1,
	SISY_LINCHECK_UNKNOWN = 2, /* budget or memory exhausted */
} sisy_lincheck_verdict;

typedef struct sisy_lincheck_opts {
	/* Search steps (tries to linearize one operation) per key, so an
	 * exhausted key never hides a violation on another; 0 =
	 * SISY_LINCHECK_DEFAULT_STEPS. */
	uint64_t max_steps;
	/* Bytes of memo table per key; 0 = SISY_LINCHECK_DEFAULT_MEMORY. */
	size_t max_memory;
	/* Skip the zones fast path (puts and gets of unique values) and
	 * always search: for tests that compare the two. */
	bool search_only;
} sisy_lincheck_opts;

#define SISY_LINCHECK_DEFAULT_STEPS  (20ull * 1000 * 1000)
#define SISY_LINCHECK_DEFAULT_MEMORY ((size_t)256 << 20)

typedef struct sisy_lincheck_result {
	sisy_lincheck_verdict verdict;
	size_t ops;	/* operations searched (after dropping) */
	size_t keys;	/* distinct keys */
	uint64_t steps; /* search steps used */
	/* Why, when not linearizable or unknown: the key, the operation that
	 * could not be placed and the longest linearized prefix before it. */
	char detail[2048];
} sisy_lincheck_result;

typedef struct sisy_lincheck_history sisy_lincheck_history;

sisy_lincheck_history *sisy_lincheck_history_new(void);
void sisy_lincheck_history_free(sisy_lincheck_history *h);
/* Copies op into the history. SISY_E_INVAL (with a message) if the op is
 * malformed (a put without a value, ret < call on a completed op, ...),
 * SISY_E_TOOBIG past the bounds above. */
sisy_err sisy_lincheck_add(sisy_lincheck_history *h,
			   const sisy_lincheck_op *op);
size_t sisy_lincheck_count(const sisy_lincheck_history *h);
/* The i-th operation as added (slices point into the history). */
void sisy_lincheck_get(const sisy_lincheck_history *h, size_t i,
		       sisy_lincheck_op *out);

/* Checks the history; opts may be NULL. Never fails: exhaustion is reported
 * as SISY_LINCHECK_UNKNOWN in the result. */
void sisy_lincheck_check(const sisy_lincheck_history *h,
			 const sisy_lincheck_opts *opts,
			 sisy_lincheck_result *res);

/* --- history files (JSON lines; docs/testing.md) -------------------------- */

/* Parses one line into the history; blank lines and lines starting with '#'
 * are skipped. SISY_E_INVAL with a message naming the problem on bad input. */
sisy_err sisy_lincheck_parse_line(sisy_lincheck_history *h, const char *line,
				  size_t len);
/* Parses a whole stream; the message names the line number on error. */
sisy_err sisy_lincheck_parse_file(sisy_lincheck_history *h, FILE *f);
/* Writes the history in the same format (round-trips through parse). */
sisy_err sisy_lincheck_write(const sisy_lincheck_history *h, FILE *f);

const char *sisy_lincheck_verdict_name(sisy_lincheck_verdict v);

#endif
