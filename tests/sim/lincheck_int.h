/* lincheck_int.h — internals shared by the checker's files (lincheck.c, the
 * history store and driver; lincheck_search.c, the per-key search;
 * lincheck_json.c, the file format). Not for users of the checker.
 *
 * The history stores each operation as a record whose key, value and expect
 * bytes live in one arena, addressed by offset (the arena may move as it
 * grows). The search sees one key at a time, with values replaced by small
 * integers (0 = absent), so a state is one uint32.
 */
#ifndef SISY_LINCHECK_INT_H
#define SISY_LINCHECK_INT_H

#include <stdint.h>

#include "lincheck.h"

typedef struct lincheck_rec {
	uint64_t client;
	int64_t call;
	int64_t ret;
	uint32_t key_off, key_len;
	uint32_t val_off, val_len;
	uint32_t exp_off, exp_len;
	uint8_t kind;
	uint8_t outcome;
	uint8_t has_value;
	uint8_t has_expect;
	uint8_t swapped;
} lincheck_rec;

struct sisy_lincheck_history {
	lincheck_rec *recs;
	size_t n, cap;
	sisy_buf arena;
};

/* One operation of one key, as the search sees it. */
typedef struct lincheck_kop {
	uint8_t kind;	 /* sisy_lincheck_kind */
	uint8_t unknown; /* outcome unknown: optional, ret = +inf */
	uint8_t swapped; /* cas result (ok outcome only) */
	uint32_t value;	 /* put/cas: new value id; get: value read (0 absent) */
	uint32_t expect; /* cas: expected value id (0 absent) */
	int64_t call;
	int64_t ret; /* unused when unknown */
	size_t rec;  /* index of the record in the history */
} lincheck_kop;

/* Budget shared by the keys of one check. */
typedef struct lincheck_budget {
	uint64_t steps_left;
	uint64_t steps_used;
	size_t max_memory;
} lincheck_budget;

#define LINCHECK_PREFIX_MAX 8

/* Where the search got stuck, for the report. Indices into the kop array. */
typedef struct lincheck_failure {
	size_t depth; /* ops linearized at the deepest dead end */
	size_t stuck; /* op whose response came before it could fit */
	size_t
	    prefix[LINCHECK_PREFIX_MAX]; /* last linearized ops, oldest 1st */
	size_t nprefix;
	uint32_t state; /* the state at the dead end */
	int memory_exhausted;
} lincheck_failure;

/* Why lincheck_zones() said no. */
enum {
	LINCHECK_ZONE_NO_PUT = 1, /* a get read a value no put wrote */
	LINCHECK_ZONE_READ_EARLY =
	    2,			   /* ... and returned before that put began */
	LINCHECK_ZONE_OVERLAP = 3, /* two values must hold at once */
	LINCHECK_ZONE_INSIDE = 4,  /* b's put and gets fit only inside a's */
};

typedef struct lincheck_zone_failure {
	int kind;
	uint32_t value_a, value_b;
	size_t op; /* the get, for NO_PUT and READ_EARLY */
} lincheck_zone_failure;

/* The O(n log n) check for puts and gets of unique values (ops sorted by
 * call). LINEARIZABLE or NOT_LINEARIZABLE when it applies, UNKNOWN when it
 * does not (del, cas, a value written twice). */
sisy_lincheck_verdict lincheck_zones(const lincheck_kop *ops, size_t n,
				     size_t nvals, lincheck_zone_failure *zf);

/* Searches one key's operations. */
sisy_lincheck_verdict lincheck_search(const lincheck_kop *ops, size_t n,
				      lincheck_budget *b,
				      lincheck_failure *fail);

static inline sisy_slice lincheck_bytes(const sisy_lincheck_history *h,
					uint32_t off, uint32_t len)
{
	return sisy_slice_make(h->arena.data + off, len);
}

#endif
