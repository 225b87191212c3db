/* iter.h — the engine's internal iterator interface.
 *
 * Memtables, blocks, tables, merges and levels all iterate through this one
 * vtable, so they compose (a merge of table iterators, a level of files).
 * Keys are internal keys (dbformat.h) unless an iterator says otherwise.
 * key() and value() stay valid until the next move or destroy. An iterator
 * that meets an error becomes invalid and reports it through status(). */
#ifndef SISY_LSM_ITER_H
#define SISY_LSM_ITER_H

#include <stdbool.h>

#include "buf.h"
#include "dbformat.h"
#include "err.h"

typedef struct lsm_iter lsm_iter;

typedef struct lsm_iter_ops {
	bool (*valid)(lsm_iter *it);
	void (*seek_first)(lsm_iter *it);
	/* First entry with key >= target (in the iterator's order). */
	void (*seek)(lsm_iter *it, sisy_slice target);
	void (*next)(lsm_iter *it);
	sisy_slice (*key)(lsm_iter *it);
	sisy_slice (*value)(lsm_iter *it);
	sisy_err (*status)(lsm_iter *it);
	void (*destroy)(lsm_iter *it);
} lsm_iter_ops;

struct lsm_iter {
	const lsm_iter_ops *ops;
};

static inline bool lsm_iter_valid(lsm_iter *it)
{
	return it->ops->valid(it);
}
static inline void lsm_iter_seek_first(lsm_iter *it)
{
	it->ops->seek_first(it);
}
static inline void lsm_iter_seek(lsm_iter *it, sisy_slice target)
{
	it->ops->seek(it, target);
}
static inline void lsm_iter_next(lsm_iter *it)
{
	it->ops->next(it);
}
static inline sisy_slice lsm_iter_key(lsm_iter *it)
{
	return it->ops->key(it);
}
static inline sisy_slice lsm_iter_value(lsm_iter *it)
{
	return it->ops->value(it);
}
static inline sisy_err lsm_iter_status(lsm_iter *it)
{
	return it->ops->status(it);
}
static inline void lsm_iter_destroy(lsm_iter *it)
{
	if (it != NULL)
		it->ops->destroy(it);
}

/* An iterator with no entries whose status() is `status` (merge_iter.c). */
lsm_iter *lsm_iter_empty(sisy_err status);

/* Merges n children (ordered by cmp) into one ordered stream; equal keys come
 * out in child order. Takes ownership of the children and of the array's
 * contents (the array itself is copied). Returns NULL only on ENOMEM, after
 * destroying the children. (merge_iter.c) */
lsm_iter *lsm_merge_iter_new(lsm_cmp_fn cmp, lsm_iter **children, int n);
/* The same in internal-key order (lsm_ikey_cmp), compared inline: the
 * engine's merges (reads, compactions) compare keys on every step. Every
 * key of every child must share its first `shared` user-key bytes (0 when
 * nothing is known; a compaction knows the common prefix of its input
 * range): each child's next eight bytes after them are kept as a number,
 * and most comparisons end there. */
lsm_iter *lsm_merge_iter_new_ikey(lsm_iter **children, int n, size_t shared);

#endif
