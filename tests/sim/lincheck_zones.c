/* lincheck_zones.c — a fast exact check for the common case: one key's
 * history of puts and gets only, every put writing a value no other put
 * writes (as the simulator's and the cluster tests' clients do).
 *
 * Then a get's value names the put it read, and linearizability is decided
 * in O(n log n) by Gibbons and Korach's zones ("Testing shared memories",
 * SIAM J. Comput. 1997). A cluster is a value's put (for "absent", a
 * virtual put at -infinity) with the gets that read it. With f = the
 * earliest response in the cluster and s = the latest call:
 *   f < s:   a forward zone [f, s]: the value must hold throughout;
 *   f >= s:  a backward zone [s, f]: the whole cluster fits at one instant.
 * The history is linearizable iff every get's put exists and was called
 * before the get returned, no two forward zones overlap, and no backward
 * zone lies inside another cluster's forward zone. Times are compared so
 * that equal times count as concurrent, as in the search.
 *
 * Unknown puts reach this point only when some get read their value
 * (lincheck.c drops the others); their response is +infinity. Anything
 * else (del, cas, a value written twice) is left to the search.
 */
#include <stdlib.h>
#include <string.h>

#include "lincheck_int.h"

typedef struct zone {
	int64_t lo, hi;
	uint32_t value;
} zone;

static int zone_cmp(const void *a, const void *b)
{
	const zone *x = a, *y = b;
	if (x->lo != y->lo)
		return x->lo < y->lo ? -1 : 1;
	return x->value < y->value ? -1 : x->value > y->value;
}

static int64_t ret_of(const lincheck_kop *op)
{
	return op->unknown ? INT64_MAX : op->ret;
}

/* Per value: its put (index + 1, 0 none), earliest response, latest call,
 * and whether anything belongs to the cluster at all. */
typedef struct cluster {
	size_t put;
	int64_t f, s;
	int used;
} cluster;

static void fail_with(lincheck_zone_failure *zf, uint32_t a, uint32_t b,
		      int kind)
{
	zf->kind = kind;
	zf->value_a = a;
	zf->value_b = b;
}

sisy_lincheck_verdict lincheck_zones(const lincheck_kop *ops, size_t n,
				     size_t nvals, lincheck_zone_failure *zf)
{
	memset(zf, 0, sizeof *zf);
	cluster *c = calloc(nvals + 1, sizeof *c);
	zone *fw = malloc((nvals + 1) * sizeof *fw);
	zone *bw = malloc((nvals + 1) * sizeof *bw);
	sisy_lincheck_verdict v = SISY_LINCHECK_UNKNOWN; /* not applicable */
	size_t nf = 0, nb = 0;
	if (!c || !fw || !bw)
		goto out;
	c[0] = (cluster){0, INT64_MIN, INT64_MIN, 1}; /* the initial put */
	for (size_t i = 0; i < n; i++) {
		const lincheck_kop *op = &ops[i];
		if (op->kind == SISY_LINCHECK_GET && !op->unknown)
			continue;
		if (op->kind != SISY_LINCHECK_PUT || c[op->value].put)
			goto out; /* del, cas, or a value written twice */
		c[op->value] = (cluster){i + 1, ret_of(op), op->call, 1};
	}
	v = SISY_LINCHECK_NOT_LINEARIZABLE;
	for (size_t i = 0; i < n; i++) {
		const lincheck_kop *op = &ops[i];
		if (op->kind != SISY_LINCHECK_GET)
			continue;
		cluster *k = &c[op->value];
		if (op->value && !k->put) {
			fail_with(zf, op->value, 0, LINCHECK_ZONE_NO_PUT);
			zf->op = i;
			goto out;
		}
		if (op->value && ops[k->put - 1].call > op->ret) {
			fail_with(zf, op->value, 0, LINCHECK_ZONE_READ_EARLY);
			zf->op = i;
			goto out;
		}
		if (op->ret < k->f)
			k->f = op->ret;
		if (op->call > k->s)
			k->s = op->call;
	}
	for (uint32_t val = 0; val <= nvals; val++) {
		cluster *k = &c[val];
		if (!k->used || (val == 0 && k->s == INT64_MIN))
			continue; /* no such value, or no get of "absent" */
		if (k->f < k->s)
			fw[nf++] = (zone){k->f, k->s, val};
		else
			bw[nb++] = (zone){k->s, k->f, val};
	}
	qsort(fw, nf, sizeof *fw, zone_cmp);
	for (size_t i = 1; i < nf; i++)
		if (fw[i].lo < fw[i - 1].hi) {
			fail_with(zf, fw[i - 1].value, fw[i].value,
				  LINCHECK_ZONE_OVERLAP);
			goto out;
		}
	for (size_t i = 0; i < nb; i++) {
		/* The only forward zone that can hold it starts last
		 * before it (forward zones are disjoint). */
		size_t lo = 0, hi = nf;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			if (fw[mid].lo < bw[i].lo)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo > 0 && bw[i].hi < fw[lo - 1].hi) {
			fail_with(zf, fw[lo - 1].value, bw[i].value,
				  LINCHECK_ZONE_INSIDE);
			goto out;
		}
	}
	v = SISY_LINCHECK_LINEARIZABLE;
out:
	free(c);
	free(fw);
	free(bw);
	return v;
}
