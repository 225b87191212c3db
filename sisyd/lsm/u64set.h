/* u64set.h — sorted arrays of uint64_t (table and log numbers) used as
 * sets: the comparator to sort them with qsort and a membership test by
 * binary search. Invariant for lsm_u64_has: a[0..n) is sorted ascending
 * by lsm_u64_cmp. */
#ifndef SISY_LSM_U64SET_H
#define SISY_LSM_U64SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* qsort/bsearch order: ascending. */
static inline int lsm_u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Whether x is in the sorted array a[0..n) (a may be NULL when n is 0). */
static inline bool lsm_u64_has(const uint64_t *a, size_t n, uint64_t x)
{
	return n > 0 && bsearch(&x, a, n, sizeof *a, lsm_u64_cmp) != NULL;
}

#endif
