/* batch.h — write batches: the public sisy_lsm_batch and its encoding, which
 * is also the payload of a WAL record (a group commit concatenates batches).
 *
 * ENCODING ("rep"), all integers little-endian:
 *   u64 seq     sequence number of the first put/delete
 *   u32 count   number of puts and deletes (meta records not counted)
 *   records, each starting with a tag byte:
 *     0 DELETE  varint32 klen, key
 *     1 PUT     varint32 klen, key, varint32 vlen, value
 *     2 META    varint32 len, metadata
 *     3 SEAL    varint64 log number, varint64 size
 * The i-th put/delete (from 0) gets sequence seq + i. A META record sets the
 * engine's metadata at the point where it appears (the last one wins). A
 * SEAL record is the engine's own (never in a caller's batch): written in a
 * WAL, it says that the earlier log `log number` was complete and synced
 * at `size` bytes (db_write.c, db_recover.c).
 *
 * Invariants: rep always holds a complete header and complete records;
 * count and the sizes stay within lsm.h's limits (checked on every add). */
#ifndef SISY_LSM_BATCH_H
#define SISY_LSM_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "coding.h"
#include "dbformat.h"
#include "err.h"
#include "lsm.h"

#define LSM_BATCH_HEADER 12

enum {
	LSM_BATCH_TAG_DELETE = 0,
	LSM_BATCH_TAG_PUT = 1,
	LSM_BATCH_TAG_META = 2,
	LSM_BATCH_TAG_SEAL = 3,
};

struct sisy_lsm_batch {
	uint8_t *rep;
	size_t len, cap;
	bool owned;	/* rep was malloc'd by us (else caller's buffer) */
	uint32_t count; /* mirrors the header */
	bool has_meta;	/* the last META record is at meta_off, meta_len */
	size_t meta_off;
	size_t meta_len;
};

/* Initialises a batch over a caller-provided buffer (which may live on the
 * stack: the batch switches to the heap only when it outgrows it). cap must
 * be at least LSM_BATCH_HEADER. Release with lsm_batch_release. */
void lsm_batch_init(sisy_lsm_batch *b, uint8_t *buf, size_t cap);
/* The same over a heap buffer of cap bytes that b owns. false: out of
 * memory, and b is left untouched. */
bool lsm_batch_init_heap(sisy_lsm_batch *b, size_t cap);
void lsm_batch_release(sisy_lsm_batch *b);

static inline uint64_t lsm_batch_seq(const sisy_lsm_batch *b)
{
	return sisy_get_u64(b->rep);
}
void lsm_batch_set_seq(sisy_lsm_batch *b, uint64_t seq);
static inline sisy_slice lsm_batch_rep(const sisy_lsm_batch *b)
{
	return sisy_slice_make(b->rep, b->len);
}
static inline sisy_slice lsm_batch_meta(const sisy_lsm_batch *b)
{
	return sisy_slice_make(b->rep + b->meta_off, b->meta_len);
}

/* Appends a SEAL record (see the encoding above). SISY_E_NOMEM only. */
sisy_err lsm_batch_add_seal(sisy_lsm_batch *b, uint64_t log_number,
			    uint64_t log_size);

/* Appends src's records to dst (group commit). SISY_E_NOMEM only. */
sisy_err lsm_batch_append(sisy_lsm_batch *dst, const sisy_lsm_batch *src);

/* Calls back for every record of an encoded batch, in order. */
typedef struct lsm_batch_handler {
	sisy_err (*put)(void *ctx, uint64_t seq, sisy_slice key,
			sisy_slice value);
	sisy_err (*del)(void *ctx, uint64_t seq, sisy_slice key);
	sisy_err (*meta)(void *ctx, sisy_slice meta); /* may be NULL */
	void *ctx;
	sisy_err (*seal)(void *ctx, uint64_t log_number,
			 uint64_t log_size); /* may be NULL */
} lsm_batch_handler;

/* Decodes `rep` (untrusted: from the WAL) and feeds h. SISY_E_CORRUPT when it
 * is malformed (bad tag, truncated, count mismatch, limits exceeded); a
 * handler's error stops the walk and is returned. The whole batch is checked
 * before the first callback, so a bad batch applies nothing. */
sisy_err lsm_batch_iterate(sisy_slice rep, const lsm_batch_handler *h);

/* As lsm_batch_iterate without the validation pass: for batches built by
 * this process (the write path), which are well-formed by construction. */
sisy_err lsm_batch_apply(sisy_slice rep, const lsm_batch_handler *h);

/* Reads the header of an encoded batch; false when too short. */
bool lsm_batch_header(sisy_slice rep, uint64_t *seq, uint32_t *count);

#endif
