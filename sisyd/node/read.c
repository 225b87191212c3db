/* read.c — linearizable reads (ReadIndex) and reading a group's engine.
 *
 * Read barriers (loop thread). Every read asked for in one loop turn joins
 * one batch, and a batch is one sisy_raft_read_index() request (the core
 * batches further: one heartbeat round confirms every request queued
 * behind it). A batch moves through: waiting to be issued (ctx 0) ->
 * issued (waiting for its read index) -> index known (waiting until the
 * group's applied index reaches it) -> answered. A failed request (the
 * leader stepped down) and requests in flight when the leader changes are
 * issued again under a new ctx (late answers to the old one are ignored),
 * until the batch's deadline (read_timeout_ticks) answers SISY_E_TIMEOUT:
 * a request or answer lost in the network is never waited for forever.
 * Stale reads skip all this and read the engine directly.
 *
 * Engine reads (any thread) hold the group's engine lock shared, so a
 * snapshot install cannot swap the engine under them.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "node_int.h"

static void batch_answer(sisy_node *n, node_read_batch *b, sisy_err status)
{
	for (size_t i = 0; i < b->n; i++)
		b->cbs[i].cb(b->cbs[i].ctx, status);
	free(b->cbs);
	free(b);
	(void)n;
}

/* Unlinks batches matching `pred` and answers them. */
static void answer_where(node_group *g,
			 bool (*pred)(node_group *, node_read_batch *),
			 sisy_err status)
{
	node_read_batch **pp = &g->reads, *done = NULL, **dt = &done;
	while (*pp) {
		node_read_batch *b = *pp;
		if (pred(g, b)) {
			*pp = b->next;
			if (g->read_next == b)
				g->read_next = NULL;
			g->nreads -= b->n;
			b->next = NULL;
			*dt = b;
			dt = &b->next;
		} else {
			pp = &b->next;
		}
	}
	/* Callbacks last: they may ask for new reads. */
	while (done) {
		node_read_batch *b = done;
		done = b->next;
		batch_answer(g->n, b, status);
	}
}

sisy_err sisy_node_read_index(sisy_node *n, uint64_t group,
			      sisy_node_read_cb cb, void *ctx)
{
	node_group *g = node_group_find(n, group);
	if (g == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "node: no group %" PRIu64,
				 group);
	if (n->failed)
		return sisy_errf(SISY_E_FAILED, "node: stopped: %s",
				 n->failmsg);
	if (n->closing)
		return sisy_errf(SISY_E_CLOSED, "node: closing");
	if (g->role != SISY_RAFT_LEADER && g->leader == 0)
		return sisy_errf(SISY_E_NOLEADER,
				 "node: group %" PRIu64 " has no leader now",
				 g->id);
	if (g->nreads >= NODE_MAX_READS)
		return sisy_errf(SISY_E_BUSY, "node: %zu reads pending",
				 g->nreads);
	node_read_batch *b = g->read_next;
	if (b == NULL) {
		b = calloc(1, sizeof *b);
		if (b == NULL)
			return sisy_errf(SISY_E_NOMEM, "node: out of memory");
		b->deadline = n->ticks + n->o.read_timeout_ticks;
		node_read_batch **pp = &g->reads;
		while (*pp)
			pp = &(*pp)->next;
		*pp = b;
		g->read_next = b;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 8;
		node_read_cb *v = realloc(b->cbs, cap * sizeof *v);
		if (v == NULL)
			return sisy_errf(SISY_E_NOMEM, "node: out of memory");
		b->cbs = v;
		b->cap = cap;
	}
	b->cbs[b->n++] = (node_read_cb){cb, ctx};
	g->nreads++;
	return SISY_OK;
}

static bool is_nolead(node_group *g, node_read_batch *b)
{
	return b->ctx == 0 && !b->has_index && g->leader == 0 &&
	       g->role != SISY_RAFT_LEADER;
}

void node_reads_issue(node_group *g)
{
	bool nolead = false;
	g->read_next = NULL; /* reads of the next turn start a new batch */
	for (node_read_batch *b = g->reads; b; b = b->next) {
		if (b->ctx != 0 || b->has_index)
			continue;
		uint64_t ctx = ++g->n->next_ctx;
		sisy_err rc = sisy_raft_read_index(g->raft, ctx);
		if (rc == SISY_OK)
			b->ctx = ctx;
		else if (rc == SISY_E_NOLEADER)
			nolead = true;
		/* SISY_E_AGAIN: the core's queue is full; next turn. */
	}
	if (nolead)
		answer_where(g, is_nolead, SISY_E_NOLEADER);
}

void node_reads_ready(node_group *g, const sisy_raft_read_state *rs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (node_read_batch *b = g->reads; b; b = b->next) {
			if (b->ctx != rs[i].ctx || b->has_index)
				continue;
			if (rs[i].failed) {
				b->ctx = 0; /* again, maybe at a new leader */
			} else {
				b->has_index = true;
				b->index = rs[i].index;
			}
			break;
		}
}

static bool is_served(node_group *g, node_read_batch *b)
{
	return b->has_index && b->index <= g->applied;
}

void node_reads_applied(node_group *g)
{
	answer_where(g, is_served, SISY_OK);
}

static bool is_late(node_group *g, node_read_batch *b)
{
	return g->n->ticks >= b->deadline;
}

void node_reads_tick(node_group *g)
{
	answer_where(g, is_late, SISY_E_TIMEOUT);
}

/* The leader changed: requests in flight may be lost with the old one. */
void node_reads_reissue(node_group *g)
{
	for (node_read_batch *b = g->reads; b; b = b->next)
		if (!b->has_index)
			b->ctx = 0;
}

static bool is_any(node_group *g, node_read_batch *b)
{
	(void)g;
	(void)b;
	return true;
}

void node_reads_fail_all(node_group *g, sisy_err status)
{
	answer_where(g, is_any, status);
}

/* ---- the engine
 * --------------------------------------------------------------- */

/* cached: sisy_lsm_get_cached, and SISY_E_AGAIN rather than wait for the
 * engine lock (held exclusively only while a snapshot swaps engines). */
static sisy_err get(sisy_node *n, uint64_t group, sisy_slice key, bool cached,
		    bool *found, uint64_t *version, sisy_buf *val)
{
	node_group *g = node_group_find(n, group);
	/* The engine key on the stack and the stored value read straight
	 * into val: no allocation for a usual GET. */
	uint8_t kstack[1 + 256];
	sisy_buf k = {0}, own = {0};
	sisy_buf *raw = val ? val : &own;
	sisy_slice ek;
	*found = false;
	if (g == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "node: no group %" PRIu64,
				 group);
	if (key.len == 0 || key.len > SISY_NODE_MAX_KEY)
		return sisy_errf(SISY_E_TOOBIG, "node: keys have 1..%u bytes",
				 SISY_NODE_MAX_KEY);
	sisy_err rc = SISY_OK;
	if (key.len < sizeof kstack) {
		kstack[0] = NS_DATA;
		memcpy(kstack + 1, key.data, key.len);
		ek = sisy_slice_make(kstack, 1 + key.len);
	} else if ((rc = node_data_key(key, &k)) == SISY_OK) {
		ek = sisy_buf_slice(&k);
	} else {
		goto out;
	}
	if (!cached) {
		pthread_rwlock_rdlock(&g->sm.lock);
		rc = sisy_lsm_get(g->sm.db, NULL, ek.data, ek.len, raw);
	} else if (pthread_rwlock_tryrdlock(&g->sm.lock) == 0) {
		rc = sisy_lsm_get_cached(g->sm.db, NULL, ek.data, ek.len, raw);
	} else {
		rc = SISY_E_AGAIN;
		goto out;
	}
	pthread_rwlock_unlock(&g->sm.lock);
	if (rc == SISY_E_NOTFOUND) {
		rc = SISY_OK;
		goto out;
	}
	if (rc == SISY_OK && raw->len < 8)
		rc = sisy_errf(SISY_E_CORRUPT,
			       "node: a stored value without a version");
	if (rc != SISY_OK)
		goto out;
	*found = true;
	if (version)
		*version = sisy_get_u64(raw->data);
	if (val) { /* drop the version in front */
		memmove(val->data, val->data + 8, val->len - 8);
		val->len -= 8;
	}
out:
	sisy_buf_free(&k);
	sisy_buf_free(&own);
	return rc;
}

sisy_err sisy_node_get(sisy_node *n, uint64_t group, sisy_slice key,
		       bool *found, uint64_t *version, sisy_buf *val)
{
	return get(n, group, key, false, found, version, val);
}

sisy_err sisy_node_get_cached(sisy_node *n, uint64_t group, sisy_slice key,
			      bool *found, uint64_t *version, sisy_buf *val)
{
	return get(n, group, key, true, found, version, val);
}

sisy_err sisy_node_scan(sisy_node *n, uint64_t group, sisy_slice from,
			sisy_slice to, sisy_slice after, sisy_node_scan_fn fn,
			void *ctx)
{
	node_group *g = node_group_find(n, group);
	sisy_buf seek = {0};
	if (g == NULL)
		return sisy_errf(SISY_E_NOTFOUND, "node: no group %" PRIu64,
				 group);
	bool skip_after = after.len > 0 && sisy_slice_cmp(after, from) >= 0;
	sisy_err rc = node_data_key(skip_after ? after : from, &seek);
	if (rc != SISY_OK)
		return rc;
	pthread_rwlock_rdlock(&g->sm.lock);
	sisy_lsm_iter *it = sisy_lsm_iter_new(g->sm.db, NULL);
	if (it == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
		goto out;
	}
	for (sisy_lsm_iter_seek(it, seek.data, seek.len);
	     sisy_lsm_iter_valid(it); sisy_lsm_iter_next(it)) {
		size_t kl, vl;
		const uint8_t *k = sisy_lsm_iter_key(it, &kl);
		const uint8_t *v = sisy_lsm_iter_value(it, &vl);
		if (kl == 0 || k[0] != NS_DATA)
			break;
		sisy_slice ks = sisy_slice_make(k + 1, kl - 1);
		if (skip_after && sisy_slice_eq(ks, after))
			continue;
		skip_after = false;
		if (to.len > 0 && sisy_slice_cmp(ks, to) >= 0)
			break;
		if (vl < 8) {
			rc = sisy_errf(SISY_E_CORRUPT,
				       "node: a stored value without a "
				       "version");
			break;
		}
		if (!fn(ctx, ks, sisy_slice_make(v + 8, vl - 8),
			sisy_get_u64(v)))
			break;
	}
	if (rc == SISY_OK)
		rc = sisy_lsm_iter_status(it);
	sisy_lsm_iter_free(it);
out:
	pthread_rwlock_unlock(&g->sm.lock);
	sisy_buf_free(&seek);
	return rc;
}

bool sisy_node_user_lookup(sisy_node *n, const char *name, sisy_role *role,
			   sisy_auth_verifier *v)
{
	node_user u;
	if (!node_users_get(n->users, name, &u))
		return false;
	if (role)
		*role = u.role;
	if (v)
		*v = u.v;
	return true;
}

void sisy_node_users_list(sisy_node *n,
			  void (*fn)(void *ctx, const char *name,
				     sisy_role role),
			  void *ctx)
{
	node_users_each(n->users, fn, ctx);
}
