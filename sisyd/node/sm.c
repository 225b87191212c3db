/* sm.c — the replicated state machine of one group, over its own engine
 * (runs on the apply thread; readers use the engine under sm->lock).
 *
 * Engine keys (first byte = namespace, docs/node.md):
 *   'k' user key                -> | version u64 | value |   (user data)
 *   'c' client id (BE64)        -> client header with its recent results
 *                                  (layouts in node_int.h, clients.c)
 *   'r' client id, seq (BE64s)  -> a result (cmd.c) that did not fit inline
 *   'u' user name               -> user record (users.c)
 *   'm' "cluster" / "members"   -> sm_meta.c
 *   't' token hash (32)         -> join token (sm_meta.c)
 * Engine metadata, written atomically with every batch:
 *   | "sisynd1" (7) | applied index u64 | term of that entry u64 |
 * The engine's WAL is off: the Raft log is the WAL; what the engine made
 * durable (a flushed memtable) carries the applied index it reached.
 *
 * One apply call turns consecutive KV commands (and no-ops) into ONE engine
 * batch; every other command (users, tokens, membership) gets a batch of
 * its own, so that its in-memory mirror changes only after its write. A
 * later command in a batch sees an earlier one's keys through the overlay.
 * A key's version is the index of the entry that last wrote it, the same on
 * every replica; conditions are decided here, at apply.
 *
 * Exactly once (docs/node.md): a command with a client id applies at most
 * once per (client id, seq). Sequences below the client's reported lowest
 * unanswered one are refused as STALE; a sequence already recorded gets its
 * recorded result; otherwise the command applies and its result is
 * recorded in the same batch. The window is bounded (client_window
 * sequences past `lowest`); clients idle for client_expire_entries log
 * entries are dropped, checked at every index divisible by
 * NODE_EXPIRE_EVERY, so every replica drops them at the same point.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "node_int.h"

#define META_TAG      "sisynd1"
#define META_LEN      (7 + 8 + 8)
#define EXPIRE_BUDGET 20000 /* engine operations per expiry checkpoint */

typedef struct overlay {
	sisy_slice key;	  /* user key (borrowed from the entry) */
	uint64_t version; /* 0: deleted */
} overlay;

typedef struct staged_res {
	uint64_t client_id, seq;
	sisy_node_result res;
} staged_res;

/* The batch being built over consecutive KV commands. */
typedef struct kvb {
	overlay *ov;
	size_t nov, capov;
	staged_res *st;
	size_t nst, capst;
	uint64_t *dirty; /* ids of clients whose header is to be written */
	size_t ndirty, capdirty;
	uint64_t index, term; /* last entry in the batch */
	size_t bytes;
	bool open;
	/* the client found last (find_client), valid while the table's
	 * moves count is c_moves */
	node_client *c;
	uint64_t c_id, c_moves;
} kvb;

/* ---- engine metadata ---------------------------------------------------- */

sisy_err node_sm_meta(sisy_lsm *db, int which, uint64_t *applied,
		      uint64_t *term)
{
	sisy_buf m = {0};
	sisy_err rc = sisy_lsm_meta(db, which, &m);
	*applied = *term = 0;
	if (rc == SISY_OK && m.len == META_LEN &&
	    memcmp(m.data, META_TAG, 7) == 0) {
		*applied = sisy_get_u64(m.data + 7);
		*term = sisy_get_u64(m.data + 15);
	} else if (rc == SISY_OK && m.len != 0) {
		rc = sisy_errf(SISY_E_CORRUPT,
			       "node: engine metadata of %zu bytes this node "
			       "does not understand",
			       m.len);
	}
	sisy_buf_free(&m);
	return rc;
}

sisy_err node_sm_durable_applied(node_sm *sm, uint64_t *applied)
{
	uint64_t term;
	pthread_rwlock_rdlock(&sm->lock);
	sisy_err rc =
	    node_sm_meta(sm->db, SISY_LSM_META_DURABLE, applied, &term);
	pthread_rwlock_unlock(&sm->lock);
	return rc;
}

sisy_err node_sm_batch_write(node_sm *sm, uint64_t index, uint64_t term,
			     int wflags)
{
	uint8_t meta[META_LEN];
	memcpy(meta, META_TAG, 7);
	sisy_put_u64(meta + 7, index);
	sisy_put_u64(meta + 15, term);
	sisy_err rc = sisy_lsm_batch_set_meta(sm->batch, meta, sizeof meta);
	if (rc == SISY_OK)
		rc = sisy_lsm_write(sm->db, sm->batch, wflags);
	sisy_lsm_batch_clear(sm->batch);
	if (rc == SISY_OK) {
		sm->applied = index;
		sm->applied_term = term;
	}
	return rc;
}

/* ---- loading the mirrors --------------------------------------------------
 */

static sisy_err load_clients(node_sm *sm)
{
	node_clients_clear(&sm->clients);
	sisy_lsm_iter *it = sisy_lsm_iter_new(sm->db, NULL);
	if (it == NULL)
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	sisy_err rc = SISY_OK;
	uint8_t pfx = NS_CLIENT;
	for (sisy_lsm_iter_seek(it, &pfx, 1); sisy_lsm_iter_valid(it);
	     sisy_lsm_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = sisy_lsm_iter_key(it, &kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		if (k[0] != NS_CLIENT)
			break;
		if (kl != 9 || vl > NODE_CLIENT_REC_MAX) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "node: %s/%s: a malformed client record",
				       sm->gdir, sm->dbname);
			break;
		}
		uint64_t id = 0;
		for (int i = 1; i < 9; i++)
			id = id << 8 | k[i];
		node_client *c = node_clients_add(&sm->clients, id);
		if (c == NULL) {
			rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
			break;
		}
		if ((rc = node_client_decode(c, v, vl)) != SISY_OK) {
			rc = sisy_errf(rc,
				       rc == SISY_E_NOMEM
					   ? "node: out of memory"
					   : "node: %s/%s: a malformed client "
					     "record",
				       sm->gdir, sm->dbname);
			break;
		}
	}
	if (rc == SISY_OK)
		rc = sisy_lsm_iter_status(it);
	sisy_lsm_iter_free(it);
	return rc;
}

static sisy_err load_users(node_sm *sm)
{
	if (sm->users == NULL)
		return SISY_OK;
	node_users_clear(sm->users);
	sisy_lsm_iter *it = sisy_lsm_iter_new(sm->db, NULL);
	if (it == NULL)
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	sisy_err rc = SISY_OK;
	uint8_t pfx = NS_USER;
	for (sisy_lsm_iter_seek(it, &pfx, 1);
	     rc == SISY_OK && sisy_lsm_iter_valid(it); sisy_lsm_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = sisy_lsm_iter_key(it, &kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		char name[SISY_AUTH_MAX_USER + 1];
		node_user u;
		if (k[0] != NS_USER)
			break;
		if (kl - 1 > SISY_AUTH_MAX_USER) {
			rc = SISY_E_CORRUPT;
			break;
		}
		memcpy(name, k + 1, kl - 1);
		name[kl - 1] = '\0';
		if (!node_user_decode(name, v, vl, &u))
			rc = SISY_E_CORRUPT;
		else
			rc = node_users_put(sm->users, &u);
	}
	if (rc == SISY_E_CORRUPT)
		rc = sisy_errf(rc, "node: %s/%s: a malformed user record",
			       sm->gdir, sm->dbname);
	if (rc == SISY_OK)
		rc = sisy_lsm_iter_status(it);
	sisy_lsm_iter_free(it);
	return rc;
}

sisy_err node_sm_load(node_sm *sm)
{
	sisy_err rc = node_sm_meta(sm->db, SISY_LSM_META_LATEST, &sm->applied,
				   &sm->applied_term);
	if (rc == SISY_OK)
		rc = load_clients(sm);
	if (rc == SISY_OK)
		rc = node_sm_load_meta(sm);
	if (rc == SISY_OK)
		rc = load_users(sm);
	return rc;
}

/* ---- small engine helpers --------------------------------------------------
 */

/* The array arr (n of *cap elements used) with room for one more: arr
 * itself, or moved (doubling from 64); NULL when out of memory (arr and
 * *cap unchanged). */
static void *room(void *arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return arr;
	size_t ncap = *cap ? *cap * 2 : 64;
	void *v = realloc(arr, ncap * elem);
	if (v != NULL)
		*cap = ncap;
	return v;
}

static void client_key(uint8_t k[9], uint64_t id)
{
	k[0] = NS_CLIENT;
	for (int i = 0; i < 8; i++)
		k[1 + i] = (uint8_t)(id >> (56 - 8 * i));
}

static void result_key(uint8_t k[17], uint64_t id, uint64_t seq)
{
	k[0] = NS_RESULT;
	for (int i = 0; i < 8; i++) {
		k[1 + i] = (uint8_t)(id >> (56 - 8 * i));
		k[9 + i] = (uint8_t)(seq >> (56 - 8 * i));
	}
}

/* Version of a user key in the engine (0: absent). */
static sisy_err engine_version(node_sm *sm, sisy_slice key, uint64_t *out)
{
	sisy_buf v = {0};
	sisy_err rc = node_data_key(key, &sm->key);
	*out = 0;
	if (rc == SISY_OK)
		rc = sisy_lsm_get(sm->db, NULL, sm->key.data, sm->key.len, &v);
	if (rc == SISY_E_NOTFOUND) {
		rc = SISY_OK;
	} else if (rc == SISY_OK && v.len < 8) {
		rc = sisy_errf(SISY_E_CORRUPT,
			       "node: a stored value without a version");
	} else if (rc == SISY_OK) {
		*out = sisy_get_u64(v.data);
	}
	sisy_buf_free(&v);
	return rc;
}

/* ---- the client table ------------------------------------------------------
 */

static sisy_err put_client(node_sm *sm, const node_client *c)
{
	uint8_t k[9];
	client_key(k, c->id);
	sisy_err rc = node_client_encode(c, &sm->val);
	if (rc != SISY_OK)
		return sisy_errf(rc, "node: out of memory");
	return sisy_lsm_batch_put(sm->batch, k, sizeof k, sm->val.data,
				  sm->val.len);
}

static sisy_err put_result(node_sm *sm, uint64_t id, uint64_t seq,
			   const sisy_node_result *res)
{
	uint8_t k[17], r[NODE_RESULT_LEN];
	result_key(k, id, seq);
	node_result_encode(res, r);
	return sisy_lsm_batch_put(sm->batch, k, sizeof k, r, sizeof r);
}

/* Deletes results [from, to) of a client (a span bounded by the window). */
static __attribute__((noinline)) sisy_err
drop_results(node_sm *sm, uint64_t id, uint64_t from, uint64_t to)
{
	sisy_err rc = SISY_OK;
	for (uint64_t s = from; s < to && rc == SISY_OK; s++) {
		uint8_t k[17];
		result_key(k, id, s);
		rc = sisy_lsm_batch_delete(sm->batch, k, sizeof k);
	}
	return rc;
}

/* Where a client's recorded results may lie: [lo, max_seq]. */
static uint64_t window_lo(const node_sm *sm, const node_client *c)
{
	uint64_t lo = c->lowest;
	if (c->max_seq >= sm->cfg.client_window &&
	    lo < c->max_seq - sm->cfg.client_window + 1)
		lo = c->max_seq - sm->cfg.client_window + 1;
	return lo;
}

static sisy_err drop_client(node_sm *sm, uint64_t id)
{
	node_client *c = node_clients_find(&sm->clients, id);
	uint8_t k[9];
	if (c == NULL)
		return SISY_OK;
	client_key(k, id);
	sisy_err rc = drop_results(sm, id, window_lo(sm, c), c->r_end);
	if (rc == SISY_OK)
		rc = sisy_lsm_batch_delete(sm->batch, k, sizeof k);
	if (rc == SISY_OK)
		node_clients_del(&sm->clients, id);
	return rc;
}

typedef struct victim {
	uint64_t last_index, id, cost;
} victim;

static int victim_cmp(const void *a, const void *b)
{
	const victim *x = a, *y = b;
	if (x->last_index != y->last_index)
		return x->last_index < y->last_index ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* Clients idle for client_expire_entries, dropped at fixed indexes. The
 * work per checkpoint is bounded (EXPIRE_BUDGET engine operations, so the
 * batch stays within the engine's limits); the least recently active go
 * first (then by id), the rest at the next checkpoint. The choice depends
 * only on replicated state (never on the hash table's layout), so every
 * replica drops the same clients at the same index. */
static sisy_err expire_run(node_sm *sm, uint64_t index)
{
	uint64_t horizon = index - sm->cfg.client_expire_entries;
	size_t n = 0, cap = 0;
	victim *v = NULL;
	sisy_err rc = SISY_OK;
	for (size_t i = 0; i < sm->clients.cap; i++) {
		node_client *c = &sm->clients.slots[i];
		if (c->id == 0 || c->last_index >= horizon)
			continue;
		victim *nv = room(v, &cap, n, sizeof *v);
		if (nv == NULL) {
			free(v);
			return sisy_errf(SISY_E_NOMEM, "node: out of memory");
		}
		v = nv;
		uint64_t lo = window_lo(sm, c);
		v[n++] = (victim){
		    c->last_index, c->id,
		    1 + (c->max_seq + 1 > lo ? c->max_seq + 1 - lo : 0)};
	}
	if (n > 1)
		qsort(v, n, sizeof *v, victim_cmp);
	uint64_t budget = EXPIRE_BUDGET;
	for (size_t i = 0; i < n && rc == SISY_OK && v[i].cost <= budget; i++) {
		budget -= v[i].cost;
		rc = drop_client(sm, v[i].id);
	}
	free(v);
	return rc;
}

/* Called for every entry; the work is at the checkpoints only. */
static inline sisy_err expire_clients(node_sm *sm, uint64_t index)
{
	if (index % NODE_EXPIRE_EVERY != 0 ||
	    index <= sm->cfg.client_expire_entries)
		return SISY_OK;
	return expire_run(sm, index);
}

/* The least recently active client (ties: the smaller id). */
static __attribute__((noinline)) sisy_err evict_one(node_sm *sm)
{
	node_client *best = NULL;
	for (size_t i = 0; i < sm->clients.cap; i++) {
		node_client *c = &sm->clients.slots[i];
		if (c->id == 0)
			continue;
		if (best == NULL || c->last_index < best->last_index ||
		    (c->last_index == best->last_index && c->id < best->id))
			best = c;
	}
	return best ? drop_client(sm, best->id) : SISY_OK;
}

/* The client of id (NULL: none), looked up once for a run of its commands:
 * a pipelining client's commands lie next to each other in the log, and
 * each is checked, recorded and its header written, so the slot found
 * last is reused while the table has moved no member since. */
static node_client *find_client(node_sm *sm, kvb *b, uint64_t id)
{
	if (b->c != NULL && b->c_id == id && b->c_moves == sm->clients.moves) {
		assert(b->c->id == id);
		return b->c;
	}
	node_client *c = node_clients_find(&sm->clients, id);
	if (c != NULL) {
		b->c = c;
		b->c_id = id;
		b->c_moves = sm->clients.moves;
	}
	return c;
}

/* Looks up a recorded result: inline, then the 'r' records staged in this
 * batch, then the engine (only where 'r' records may exist). */
/* (Out of line, as the other rare paths below: the functions every write
 * runs stay small.) */
static __attribute__((noinline)) sisy_err find_result(node_sm *sm, const kvb *b,
						      const node_client *c,
						      uint64_t seq, bool *found,
						      sisy_node_result *res)
{
	uint64_t id = c->id;
	*found = false;
	const sisy_node_result *in = node_client_res_find(c, seq);
	if (in != NULL) {
		*res = *in;
		*found = true;
		return SISY_OK;
	}
	if (seq < window_lo(sm, c) || seq >= c->r_end)
		return SISY_OK;
	for (size_t i = b->nst; i-- > 0;)
		if (b->st[i].client_id == id && b->st[i].seq == seq) {
			*res = b->st[i].res;
			*found = true;
			return SISY_OK;
		}
	uint8_t k[17];
	sisy_buf v = {0};
	result_key(k, id, seq);
	sisy_err rc = sisy_lsm_get(sm->db, NULL, k, sizeof k, &v);
	if (rc == SISY_E_NOTFOUND) {
		rc = SISY_OK;
	} else if (rc == SISY_OK) {
		if (!node_result_decode(v.data, v.len, res))
			rc = sisy_errf(SISY_E_CORRUPT,
				       "node: a malformed client result");
		else
			*found = true;
	}
	sisy_buf_free(&v);
	return rc;
}

typedef enum seen {
	SEEN_NEW = 0,
	SEEN_DUPLICATE, /* *res holds the first answer */
	SEEN_REFUSED,	/* *res holds the refusal; record nothing */
} seen;

/* Before applying a command of a client: new, duplicate, or refused. */
static sisy_err client_check(node_sm *sm, kvb *b, const node_cmd_view *v,
			     sisy_node_result *res, seen *out)
{
	*out = SEEN_NEW;
	if (v->client_id == 0)
		return SISY_OK;
	node_client *c = find_client(sm, b, v->client_id);
	if (c == NULL)
		return SISY_OK;
	if (v->seq < c->lowest) {
		res->status = SISY_E_STALE;
		*out = SEEN_REFUSED;
		return SISY_OK;
	}
	if (v->seq <= c->max_seq) {
		bool found;
		sisy_err rc = find_result(sm, b, c, v->seq, &found, res);
		if (rc != SISY_OK || found) {
			res->duplicate = true;
			*out = SEEN_DUPLICATE;
			return rc;
		}
	}
	if (v->seq - c->lowest >= sm->cfg.client_window) {
		res->status = SISY_E_BUSY;
		*out = SEEN_REFUSED;
	}
	return SISY_OK;
}

static sisy_err stage_result(kvb *b, uint64_t id, uint64_t seq,
			     const sisy_node_result *res)
{
	staged_res *st = room(b->st, &b->capst, b->nst, sizeof *st);
	if (st == NULL)
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	b->st = st;
	b->st[b->nst++] = (staged_res){id, seq, *res};
	return SISY_OK;
}

/* Notes that c's header must be written with this engine batch: once per
 * batch however many of its commands the batch holds (write_dirty). */
static sisy_err mark_dirty(kvb *b, node_client *c)
{
	if (c->dirty)
		return SISY_OK;
	uint64_t *d = room(b->dirty, &b->capdirty, b->ndirty, sizeof *d);
	if (d == NULL)
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	b->dirty = d;
	b->dirty[b->ndirty++] = c->id;
	c->dirty = true;
	return SISY_OK;
}

/* The headers of the batch's clients, last in the batch. A client dropped
 * since (expiry, eviction) is gone from the table and its delete stands;
 * one dropped and added again is dirty again and written as it is now. */
static sisy_err write_dirty(node_sm *sm, kvb *b)
{
	sisy_err rc = SISY_OK;
	for (size_t i = 0; i < b->ndirty && rc == SISY_OK; i++) {
		node_client *c = find_client(sm, b, b->dirty[i]);
		if (c == NULL || !c->dirty)
			continue;
		c->dirty = false;
		rc = put_client(sm, c);
	}
	b->ndirty = 0;
	return rc;
}

/* A result as an 'r' record (it does not fit inline), visible to
 * find_result within this batch through the staged list. */
static __attribute__((noinline)) sisy_err
record_out(node_sm *sm, kvb *b, node_client *c, uint64_t seq,
	   const sisy_node_result *res)
{
	sisy_err rc = put_result(sm, c->id, seq, res);
	if (rc == SISY_OK)
		rc = stage_result(b, c->id, seq, res);
	if (rc == SISY_OK && c->r_end < seq + 1)
		c->r_end = seq + 1;
	return rc;
}

/* Whether c's oldest inline result lies below bound (node_client_res_pop
 * would pop it): most calls pop nothing, and this spares them the call. */
static inline bool res_below(const node_client *c, uint64_t bound)
{
	return c->ninl != 0 && c->inl[c->inl_head].seq < bound;
}

/* After applying a client's command: record its result, trim. Results of
 * seqs in (max_seq - NODE_INLINE, max_seq] live in the header; one that
 * leaves that span becomes an 'r' record only while the client may still
 * retry it (at or above the new lowest). So a client pipelining up to
 * NODE_INLINE deep costs one header write per engine batch and no 'r'
 * record, written or deleted. */
static sisy_err client_record(node_sm *sm, kvb *b, const node_cmd_view *v,
			      uint64_t index, const sisy_node_result *res)
{
	if (v->client_id == 0)
		return SISY_OK;
	sisy_err rc = SISY_OK;
	/* The client saw answers below `low` (never trim this one). */
	uint64_t low = v->lowest < v->seq ? v->lowest : v->seq;
	node_client *c = find_client(sm, b, v->client_id);
	if (c == NULL) {
		if (sm->clients.n >= sm->cfg.max_clients &&
		    (rc = evict_one(sm)) != SISY_OK)
			return rc;
		if ((c = node_clients_add(&sm->clients, v->client_id)) == NULL)
			return sisy_errf(SISY_E_NOMEM, "node: out of memory");
		/* Nothing below the first reported lowest can be retried. */
		c->lowest = low;
		c->max_seq = c->lowest ? c->lowest - 1 : 0;
	}
	if (low < c->lowest)
		low = c->lowest;
	if (v->seq > c->max_seq)
		c->max_seq = v->seq;
	uint64_t span_lo =
	    c->max_seq >= NODE_INLINE ? c->max_seq - NODE_INLINE + 1 : 0;
	node_res_ent out;
	while (rc == SISY_OK && res_below(c, span_lo) &&
	       node_client_res_pop(c, span_lo, &out))
		if (out.seq >= low)
			rc = record_out(sm, b, c, out.seq, &out.res);
	if (rc != SISY_OK)
		return rc;
	if (v->seq < span_lo)
		rc = record_out(sm, b, c, v->seq, res);
	else if (node_client_res_add(c, v->seq, res) != SISY_OK)
		rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
	if (rc != SISY_OK)
		return rc;
	c->last_index = index;
	if (low > c->lowest) {
		uint64_t from = window_lo(sm, c), to = low;
		if (to > c->r_end)
			to = c->r_end;
		if (from < to &&
		    (rc = drop_results(sm, c->id, from, to)) != SISY_OK)
			return rc;
		node_client_res_drop(c, low);
		c->lowest = low;
	}
	return mark_dirty(b, c);
}

/* ---- KV commands ------------------------------------------------------------
 */

static sisy_err overlay_add(kvb *b, sisy_slice key, uint64_t version)
{
	overlay *ov = room(b->ov, &b->capov, b->nov, sizeof *ov);
	if (ov == NULL)
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	b->ov = ov;
	b->ov[b->nov++] = (overlay){key, version};
	return SISY_OK;
}

static sisy_err current_version(node_sm *sm, const kvb *b, sisy_slice key,
				uint64_t *out)
{
	for (size_t i = b->nov; i-- > 0;)
		if (sisy_slice_eq(b->ov[i].key, key)) {
			*out = b->ov[i].version;
			return SISY_OK;
		}
	return engine_version(sm, key, out);
}

static bool cond_holds(const sisy_node_op *op, uint64_t cur)
{
	switch (op->cond) {
	case SISY_NODE_COND_VERSION:
		return cur == op->cond_version;
	case SISY_NODE_COND_ABSENT:
		return cur == 0;
	default:
		return true;
	}
}

/* Decides the conditions (all against the state before the command), then
 * writes every op: all or nothing. */
static sisy_err kv_apply(node_sm *sm, kvb *b, const node_cmd_view *v,
			 uint64_t index, sisy_node_result *res)
{
	sisy_err rc;
	res->index = index;
	for (size_t j = 0; j < v->nops; j++) {
		const sisy_node_op *op = &v->ops[j];
		bool single_del = op->del && v->nops == 1;
		uint64_t cur = 0;
		if (op->cond == SISY_NODE_COND_NONE && !single_del)
			continue;
		if ((rc = current_version(sm, b, op->key, &cur)) != SISY_OK)
			return rc;
		if (single_del)
			res->existed = cur != 0;
		if (!cond_holds(op, cur)) {
			res->status = SISY_E_CONFLICT;
			res->failed_op = (uint32_t)j;
			res->current_version = cur;
			return SISY_OK;
		}
	}
	rc = SISY_OK;
	for (size_t j = 0; j < v->nops && rc == SISY_OK; j++) {
		const sisy_node_op *op = &v->ops[j];
		/* sm->val: | NS_DATA | key | version | value |, the engine
		 * key (node_data_key's) then the engine value, built in
		 * one buffer */
		size_t kl = 1 + op->key.len, vl = op->del ? 0 : op->value.len;
		sisy_buf_clear(&sm->val);
		if (sm->val.cap < kl + 8 + vl &&
		    (rc = sisy_buf_reserve(&sm->val, kl + 8 + vl)) != SISY_OK)
			break;
		uint8_t *k = sm->val.data;
		k[0] = NS_DATA;
		memcpy(k + 1, op->key.data, op->key.len);
		if (op->del) {
			rc = sisy_lsm_batch_delete(sm->batch, k, kl);
		} else {
			sisy_put_u64(k + kl, index);
			if (vl)
				memcpy(k + kl + 8, op->value.data, vl);
			rc = sisy_lsm_batch_put(sm->batch, k, kl, k + kl,
						8 + vl);
		}
		if (rc == SISY_OK)
			rc = overlay_add(b, op->key, op->del ? 0 : index);
		b->bytes += kl + op->value.len + 16;
	}
	return rc;
}

static size_t cmd_bytes(const node_cmd_view *v)
{
	size_t n = 0;
	for (size_t j = 0; j < v->nops; j++)
		n += v->ops[j].key.len + v->ops[j].value.len + 16;
	return n;
}

/* ---- one apply call
 * ------------------------------------------------------------ */

typedef struct apply_ctx {
	node_sm *sm;
	kvb b;
	node_applied *out;
	size_t nout;
	sisy_buf *events;
	/* the role of the last writer seen: roles change only through
	 * commands applied by apply_other, which forgets it */
	bool role_known;
	sisy_role role;
	char role_user[SISY_AUTH_MAX_USER + 1];
	/* what the engine holds so far: kept if a later batch fails */
	size_t done_out, done_events;
	int wflags; /* sisy_lsm_write's */
} apply_ctx;

/* Writes the batch with the applied index; on success the results and
 * events noted so far stand. */
static sisy_err commit(apply_ctx *a, uint64_t index, uint64_t term)
{
	sisy_err rc = write_dirty(a->sm, &a->b);
	if (rc == SISY_OK)
		rc = node_sm_batch_write(a->sm, index, term, a->wflags);
	if (rc == SISY_OK) {
		a->done_out = a->nout;
		a->done_events = a->events->len;
	}
	return rc;
}

static sisy_err flush_kv(apply_ctx *a)
{
	kvb *b = &a->b;
	if (!b->open)
		return SISY_OK;
	sisy_err rc = commit(a, b->index, b->term);
	b->nov = b->nst = 0;
	b->bytes = 0;
	b->open = false;
	return rc;
}

static void note_result(apply_ctx *a, const sisy_raft_entry *e,
			const node_cmd_view *v, const sisy_node_result *res)
{
	node_applied *o = &a->out[a->nout++];
	/* every field set: no memset of the whole record */
	o->index = e->index;
	o->term = e->term;
	o->client_id = v ? v->client_id : 0;
	o->seq = v ? v->seq : 0;
	o->res = *res;
}

static sisy_role role_of(apply_ctx *a, const char *user)
{
	if (!a->role_known || strcmp(a->role_user, user) != 0) {
		size_t n = strlen(user);
		assert(n <= SISY_AUTH_MAX_USER);
		memcpy(a->role_user, user, n + 1);
		a->role = node_sm_role_of(a->sm, user);
		a->role_known = true;
	}
	return a->role;
}

/* A KV command inside the open batch. */
static sisy_err apply_kv(apply_ctx *a, const sisy_raft_entry *e,
			 const node_cmd_view *v)
{
	node_sm *sm = a->sm;
	kvb *b = &a->b;
	sisy_node_result res = {0};
	seen s;
	sisy_err rc;
	if (b->open &&
	    (sisy_lsm_batch_count(sm->batch) + v->nops > NODE_BATCH_OPS ||
	     b->bytes + cmd_bytes(v) > NODE_BATCH_BYTES) &&
	    (rc = flush_kv(a)) != SISY_OK)
		return rc;
	b->open = true;
	b->index = e->index;
	b->term = e->term;
	if ((rc = client_check(sm, b, v, &res, &s)) != SISY_OK)
		return rc;
	if (s == SEEN_NEW) {
		res.index = e->index;
		if (sm->cfg.group == SISY_NODE_META_GROUP &&
		    role_of(a, v->user) < SISY_ROLE_READWRITE)
			res.status = SISY_E_PERM;
		else if ((rc = kv_apply(sm, b, v, e->index, &res)) != SISY_OK)
			return rc;
		if ((rc = client_record(sm, b, v, e->index, &res)) != SISY_OK)
			return rc;
	}
	note_result(a, e, v, &res);
	return expire_clients(sm, e->index);
}

/* Any other command: a batch of its own. */
static sisy_err apply_other(apply_ctx *a, const sisy_raft_entry *e,
			    const node_cmd_view *v)
{
	node_sm *sm = a->sm;
	sisy_node_result res = {0};
	seen s;
	sisy_err rc = flush_kv(a);
	a->role_known = false;
	if (rc != SISY_OK)
		return rc;
	if ((rc = client_check(sm, &a->b, v, &res, &s)) != SISY_OK)
		return rc;
	if (s == SEEN_NEW) {
		res.index = e->index;
		if ((rc = node_sm_apply_meta(sm, e, v, &res, a->events)) !=
			SISY_OK ||
		    (rc = client_record(sm, &a->b, v, e->index, &res)) !=
			SISY_OK)
			return rc;
	}
	if ((rc = expire_clients(sm, e->index)) != SISY_OK)
		return rc;
	note_result(a, e, v, &res);
	rc = commit(a, e->index, e->term);
	a->b.nst = 0;
	return rc;
}

static sisy_err apply_one(apply_ctx *a, const sisy_raft_entry *e)
{
	node_sm *sm = a->sm;
	sisy_err rc;
	if (e->type == SISY_RAFT_ENTRY_NOOP) {
		a->b.open = true; /* advances the applied index */
		a->b.index = e->index;
		a->b.term = e->term;
		return expire_clients(sm, e->index);
	}
	if (e->type == SISY_RAFT_ENTRY_CONFIG) {
		sisy_node_result res = {0};
		if ((rc = flush_kv(a)) != SISY_OK ||
		    (rc = node_sm_apply_config(sm, e, &res)) != SISY_OK ||
		    (rc = expire_clients(sm, e->index)) != SISY_OK)
			return rc;
		note_result(a, e, NULL, &res);
		return commit(a, e->index, e->term);
	}
	node_cmd_view v;
	if ((rc = node_cmd_decode(sisy_slice_make(e->data, e->len), &v)) !=
	    SISY_OK) {
		char msg[256]; /* sisy_errf's buffer is the message's */
		snprintf(msg, sizeof msg, "%s", sisy_errmsg());
		return sisy_errf(
		    rc, "node: group %" PRIu64 " entry %" PRIu64 ": %s",
		    sm->cfg.group, e->index, msg);
	}
	if (v.kind == SISY_NODE_CMD_KV)
		rc = apply_kv(a, e, &v);
	else
		rc = apply_other(a, e, &v);
	if (v.ops != &v.one) /* else nothing to free */
		node_cmd_view_free(&v);
	return rc;
}

sisy_err node_sm_apply(node_sm *sm, const sisy_raft_entry *ents, size_t n,
		       node_applied *out, size_t *nout, sisy_buf *events,
		       int wflags)
{
	apply_ctx a = {
	    .sm = sm, .out = out, .events = events, .wflags = wflags};
	sisy_err rc = SISY_OK;
	a.done_events = events->len;
	/* The overlay holds an entry per op of the batch: sized for one op
	 * per entry up front rather than grown (and copied) from 64. */
	size_t want = n < NODE_BATCH_OPS ? n : NODE_BATCH_OPS;
	if (want > 64 && (a.b.ov = malloc(want * sizeof *a.b.ov)) != NULL)
		a.b.capov = want;
	for (size_t i = 0; i < n && rc == SISY_OK; i++) {
		if (ents[i].index <= sm->applied)
			continue; /* replayed below a snapshot or restart */
		assert(ents[i].index == sm->applied + 1 ||
		       (a.b.open && ents[i].index == a.b.index + 1));
		rc = apply_one(&a, &ents[i]);
	}
	if (rc == SISY_OK)
		rc = flush_kv(&a);
	free(a.b.ov);
	free(a.b.st);
	free(a.b.dirty);
	if (rc != SISY_OK) {
		/* Nothing of the failed batch reached the engine: drop what
		 * the mirrors took from it. */
		char msg[512];
		snprintf(msg, sizeof msg, "%s", sisy_errmsg());
		sisy_lsm_batch_clear(sm->batch);
		a.nout = a.done_out;
		events->len = a.done_events;
		if (node_sm_load(sm) != SISY_OK)
			sisy_log(sm->logger, SISY_LOG_ERROR, "node",
				 "group %" PRIu64 ": reloading the state "
				 "failed: %s",
				 sm->cfg.group, sisy_errmsg());
		sisy_errf(rc, "%s", msg);
	}
	*nout = a.nout;
	return rc;
}
