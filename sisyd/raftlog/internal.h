/* internal.h — state shared by the raft log's files (not for other modules).
 *
 * Ownership. `mu` guards everything in sisy_raftlog except the block marked
 * writer-private, which only the writer thread touches (and open/close,
 * before it starts and after it ends).
 *
 * An entry's payload lives in a refcounted raftlog_item (carved from
 * lg->items, libcommon/chunks.h, under the lock): one reference from
 * the group's meta while the meta points at it, one from the queue (then
 * the writer's batch) until written, and short-lived ones from readers.
 * Written items that a meta still points at are in the cache list (oldest
 * first); evicting one clears the meta's pointer, after which reads go to
 * the segment file at the meta's (seq, off, size).
 *
 * A group's metas are a sliding window: metas[head + k] describes index
 * base_index + 1 + k, for k < n.
 */
#ifndef SISY_RAFTLOG_INTERNAL_H
#define SISY_RAFTLOG_INTERNAL_H

#include <assert.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "chunks.h"
#include "format.h"
#include "raftlog.h"

#define RAFTLOG_MAX_GROUPS 65536

typedef struct raftlog_item {
	uint32_t refs;
	bool cached;
	uint64_t group, index, term;
	size_t len;
	struct raftlog_item *prev, *next; /* cache list */
	uint8_t payload[]; /* len bytes: one allocation per item */
} raftlog_item;

typedef struct raftlog_meta {
	uint64_t term;
	uint64_t seq; /* segment holding the record; 0 until written */
	uint32_t off, size;
	raftlog_item *item; /* NULL once evicted from the cache */
} raftlog_meta;

enum {
	RAFTLOG_REP_ENTRIES = SISY_RAFTLOG_DURABLE_ENTRIES,
	RAFTLOG_REP_HARDSTATE = SISY_RAFTLOG_DURABLE_HARDSTATE,
	RAFTLOG_REP_SNAPSHOT = SISY_RAFTLOG_DURABLE_SNAPSHOT,
};

typedef struct raftlog_group {
	uint64_t id;
	uint64_t base_index, base_term; /* term 0: unknown (replay only) */
	raftlog_meta *metas;
	size_t head, n, cap;
	bool has_hs;
	sisy_raftlog_hardstate hs;
	/* pending durability report */
	bool dirty;
	sisy_raftlog_durable rep;
} raftlog_group;

/* What the writer has written for a group: the source of the checkpoint at
 * the head of each new segment, and the durable base that decides which
 * segments may go. Writer-private. */
typedef struct raftlog_wgroup {
	uint64_t id;
	bool has_hs;
	sisy_raftlog_hardstate hs;
	uint64_t base_index, base_term;
	uint64_t durable_base;
} raftlog_wgroup;

typedef struct raftlog_gmax {
	uint64_t group, max_index;
} raftlog_gmax;

typedef struct raftlog_seg {
	uint64_t seq;
	sisy_file *f;
	uint64_t body; /* where records after the checkpoint start */
	uint64_t end;  /* end of the records (where the next one goes) */
	bool sealed;
	uint32_t pins;	    /* readers between lookup and pread */
	raftlog_gmax *gmax; /* highest entry index per group; writer-private */
	size_t ngmax, capgmax;
} raftlog_seg;

/* A queued record. */
typedef struct raftlog_prec {
	uint8_t type; /* RAFTLOG_REC_ENTRY, _HARDSTATE or _BASE */
	uint64_t group;
	uint64_t a, b, c;   /* ENTRY: index, term; HS: term, vote, commit;
			       BASE: index, term */
	raftlog_item *item; /* ENTRY */
	uint64_t qseq;
	/* where the writer put it */
	uint64_t seq;
	uint32_t off, size;
} raftlog_prec;

struct sisy_raftlog {
	sisy_raftlog_opts o;
	char *dir;
	sisy_lockfile *lock;
	uint64_t torn_window;
	int efd;
	/* The event fd's counter is non-zero (written, not yet read by a
	 * drain). Under mu: a writer that finds it set skips the write(2), a
	 * drain that finds it clear skips the read(2). */
	bool efd_armed;

	pthread_mutex_t mu;
	pthread_cond_t wake; /* to the writer: work, stop, space freed */
	pthread_cond_t done; /* to flushers: progress or failure */

	raftlog_group **groups; /* sorted by id; never freed before close */
	size_t ngroups, capgroups;

	raftlog_prec *q; /* ring */
	size_t qhead, qn, qcap;
	size_t qbytes;
	uint64_t qseq_next, durable_qseq;

	raftlog_item *cache_head, *cache_tail;
	size_t cache_bytes;
	sisy_chunks items; /* where items live: no malloc/free per entry */

	raftlog_group **dirty; /* groups with reports, oldest first; room for
				* every group (grown with the table) */
	size_t ndirty;

	raftlog_seg **segs; /* sorted by seq; the last is current */
	size_t nsegs, capsegs;

	sisy_err failed; /* SISY_OK, or the error that stopped the log */
	char failmsg[512];
	bool nospace;
	char nospmsg[512];
	bool kick; /* space may have been freed: retry now */
	bool stop;
	/* The writer waits on `wake` (set and cleared by it, cleared by the
	 * first caller that queues work meanwhile): only then is a signal
	 * needed, and that caller sends it once it has unlocked mu. */
	bool writer_asleep;
	bool inline_busy; /* a caller runs a round (sisy_raftlog_write_now) */
	sisy_raftlog_stats stats;

	/* --- writer-private ----------------------------------------------- */
	pthread_t thread;
	bool thread_started;
	raftlog_wgroup *wg; /* sorted by id */
	size_t nwg, capwg;
	raftlog_seg *cur;
	uint64_t filled; /* prefilled (zeroed) end of cur */
	sisy_buf wbuf;
	uint64_t wbytes; /* written since the last publish */
	raftlog_prec *batch;
	size_t nbatch, capbatch;
	uint8_t *zeros;
	size_t nzeros;
	bool ballast; /* <dir>/ballast is in place */
};

/* --- group.c (lock held) ---------------------------------------------------
 */

raftlog_group *raftlog_group_find(sisy_raftlog *lg, uint64_t id);
sisy_err raftlog_group_create(sisy_raftlog *lg, uint64_t id,
			      raftlog_group **out);
void raftlog_group_free(sisy_raftlog *lg, raftlog_group *g);
static inline uint64_t raftlog_group_last(const raftlog_group *g)
{
	return g->base_index + g->n;
}
/* The meta of index, which must be in (base, last]. Inline: the writer
 * asks once per record. */
static inline raftlog_meta *raftlog_group_meta(raftlog_group *g, uint64_t index)
{
	assert(index > g->base_index && index <= raftlog_group_last(g));
	return &g->metas[g->head + (size_t)(index - g->base_index - 1)];
}
/* Term at index in [base, last]; false outside. */
bool raftlog_group_term(const raftlog_group *g, uint64_t index, uint64_t *term);
/* Room for `extra` more metas, so that as many puts cannot fail. */
sisy_err raftlog_group_reserve(raftlog_group *g, size_t extra);
/* Drops entries >= index, then appends one at index (base < index <=
 * last + 1). Takes over the caller's reference on m->item. */
sisy_err raftlog_group_put(sisy_raftlog *lg, raftlog_group *g, uint64_t index,
			   const raftlog_meta *m);
/* The snapshot/compaction rule (raftlog.h, sisy_raftlog_set_snapshot). */
void raftlog_group_set_base(sisy_raftlog *lg, raftlog_group *g, uint64_t index,
			    uint64_t term);
/* Drops every entry; base becomes (index, term). */
void raftlog_group_reset(sisy_raftlog *lg, raftlog_group *g, uint64_t index,
			 uint64_t term);

/* An item holding a copy of data. lg NULL: in a chunk of its own, without
 * the lock (raftlog_item_big payloads); else carved from lg->items, lock
 * held. NULL when out of memory. */
raftlog_item *raftlog_item_new(sisy_raftlog *lg, uint64_t group, uint64_t index,
			       uint64_t term, const uint8_t *data, size_t len);
/* Whether a payload of len bytes is too big for the shared chunks. */
static inline bool raftlog_item_big(size_t len)
{
	return len > SISY_CHUNKS_BIG - sizeof(raftlog_item);
}
/* Drops a reference (lock held; an item nobody else has seen, in a chunk
 * of its own, also without it). */
void raftlog_item_unref(sisy_raftlog *lg, raftlog_item *it);
void raftlog_cache_add(sisy_raftlog *lg, raftlog_item *it);
void raftlog_cache_evict(sisy_raftlog *lg);

/* --- segment.c ---------------------------------------------------------------
 */

raftlog_seg *raftlog_seg_find(sisy_raftlog *lg, uint64_t seq);
sisy_err raftlog_seg_push(sisy_raftlog *lg, raftlog_seg *s);
void raftlog_seg_free(raftlog_seg *s);
sisy_err raftlog_seg_note(raftlog_seg *s, uint64_t group, uint64_t index);
sisy_err raftlog_seg_path_of(sisy_raftlog *lg, uint64_t seq, char *out,
			     size_t cap);
/* Writer side: creates segment seq with the checkpoint of lg->wg, synced
 * along with the directory, and makes it current. */
sisy_err raftlog_seg_create(sisy_raftlog *lg, uint64_t seq);
/* Appends a SEAL at s->end and syncs s. */
sisy_err raftlog_seg_seal(sisy_raftlog *lg, raftlog_seg *s);

/* --- wgroup (writer.c) -------------------------------------------------------
 */

sisy_err raftlog_wgroup_get(sisy_raftlog *lg, uint64_t id,
			    raftlog_wgroup **out);

/* --- ballast.c (writer side, lock not held) ------------------------------- */

/* Writes the ballast unless present; a full disk only skips it. */
sisy_err raftlog_ballast_make(sisy_raftlog *lg);
sisy_err raftlog_ballast_release(sisy_raftlog *lg);

/* --- recover.c
 * ----------------------------------------------------------------- */

/* Rebuilds groups, wgroups and segments from the directory and opens a new
 * current segment. Lock not needed: no other thread runs yet. */
sisy_err raftlog_recover(sisy_raftlog *lg);

/* --- writer.c ----------------------------------------------------------------
 */

void *raftlog_writer_main(void *arg);
/* The most bytes a queued record can take encoded. */
static inline size_t raftlog_est_size(const raftlog_prec *p)
{
	if (p->type == RAFTLOG_REC_ENTRY)
		return RAFTLOG_ENTRY_OVERHEAD + p->item->len;
	return RAFTLOG_REC_HDR + 5 * 10;
}
/* Bytes a queued record counts against queue_bytes. Inline, as the
 * helpers above: asked once per queued record on both sides. */
static inline size_t raftlog_prec_cost(const raftlog_prec *p)
{
	return raftlog_est_size(p) + sizeof *p;
}
/* Makes the event fd readable unless it already is. Caller holds mu. */
void raftlog_notify(sisy_raftlog *lg);

#endif
