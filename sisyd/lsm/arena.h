/* arena.h — a bump allocator for one memtable.
 *
 * Memory is carved out of large blocks and freed all at once with the arena,
 * so inserting into a skiplist costs no malloc per entry. One thread
 * allocates (the memtable's single writer); any thread may read the usage.
 * Invariants: every returned pointer is aligned to LSM_ARENA_ALIGN and stays
 * valid until lsm_arena_free(); usage only grows. */
#ifndef SISY_LSM_ARENA_H
#define SISY_LSM_ARENA_H

#include <stddef.h>

#define LSM_ARENA_ALIGN 8
#define LSM_ARENA_BLOCK (64u * 1024)

typedef struct lsm_arena lsm_arena;

/* NULL on ENOMEM. */
lsm_arena *lsm_arena_new(void);
void lsm_arena_free(lsm_arena *a);
/* n > 0 bytes, aligned; NULL on ENOMEM. Single writer only. */
void *lsm_arena_alloc(lsm_arena *a, size_t n);
/* Bytes reserved from the system (blocks + big allocations); any thread. */
size_t lsm_arena_usage(const lsm_arena *a);
/* Bytes handed out so far (aligned sizes); any thread. At most one block
 * less than the usage, so it is what a size limit should look at. */
size_t lsm_arena_allocated(const lsm_arena *a);

#endif
