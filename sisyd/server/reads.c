/* reads.c — GET, EXISTS, MGET, SCAN (srv_int.h).
 *
 * LINEARIZABLE (the default): the node's ReadIndex first (on the leader a
 * heartbeat round confirms its leadership, batched with every read of the
 * turn; on a follower the leader is asked for its commit index); once the
 * node's state reflects everything acknowledged before the read began,
 * the read pool reads the engine. No leader known, or no answer within
 * the node's read timeout: the read waits (parked) and tries again until
 * leader_wait_ms have passed, then fails; it never returns older data.
 * STALE (Request.consistency): straight to the read pool, from whatever
 * this node has applied.
 *
 * GET and EXISTS are answered on the loop when memory can answer them
 * (sisy_node_get_cached: memtables, block cache, mapped table blocks
 * already used; docs/server.md "Reads on the loop"), which saves two
 * thread hand-offs per read. The rest, and every read that would touch
 * the disk, run on the read pool (sisy_node_get/scan are [any thread]).
 */
#include "srv_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "sisy.pb-c.h"

#define MGET_REPLY_MAX (SISY_FRAME_MAX - 64 * 1024)

static void issue(sisy_server *s, srv_req *r);

static bool run_point(sisy_server *s, srv_req *r, bool cached, sisy_buf *val);

/* The barrier passed (or a stale read): GET and EXISTS that memory can
 * answer are answered here, on the loop; the rest go to the read pool. */
static void serve(sisy_server *s, srv_req *r)
{
	if (run_point(s, r, true, &s->loop_val)) {
		s->n_loop_reads++;
		handler_complete(s, r);
		return;
	}
	work_submit(s, r);
}

static void on_read_index(void *ctx, sisy_err status)
{
	srv_req *r = ctx;
	sisy_server *s = r->srv;
	r->in_node = false;
	if (status == SISY_OK) {
		serve(s, r);
		return;
	}
	if ((status == SISY_E_NOLEADER || status == SISY_E_TIMEOUT ||
	     status == SISY_E_BUSY) &&
	    sisy_now_ms() < r->deadline_ms && !s->closing) {
		park(s, r);
		return;
	}
	handler_fail(r, status == SISY_E_TIMEOUT ? SISY_E_NOLEADER : status,
		     status == SISY_E_CLOSED
			 ? "the server is shutting down"
			 : "no leader confirmed this read in time (is a "
			   "majority of the cluster up?); nothing stale "
			   "was returned");
	handler_complete(s, r);
}

static void issue(sisy_server *s, srv_req *r)
{
	if (r->conn && r->conn->dead) {
		handler_fail(r, SISY_E_CLOSED, "the client left");
		handler_complete(s, r);
		return;
	}
	sisy_err rc =
	    sisy_node_read_index(s->node, SRV_GROUP, on_read_index, r);
	if (rc == SISY_OK) {
		r->in_node = true;
		return;
	}
	if ((rc == SISY_E_NOLEADER || rc == SISY_E_BUSY) &&
	    sisy_now_ms() < r->deadline_ms) {
		park(s, r);
		return;
	}
	handler_fail(r, rc,
		     rc == SISY_E_NOLEADER
			 ? "no leader: the cluster has no majority up, or is "
			   "electing one; retry shortly"
			 : sisy_errmsg());
	handler_complete(s, r);
}

void reads_start(sisy_server *s, srv_req *r)
{
	if (r->stale) {
		serve(s, r);
		return;
	}
	r->deadline_ms = s->turn_ms + s->cfg.leader_wait_ms;
	issue(s, r);
}

void reads_retry(sisy_server *s, srv_req *r)
{
	issue(s, r);
}

/* -------------------------------------------------------- worker side */

typedef struct scan_ctx {
	Sisy__KeyValue *kv;
	Sisy__KeyValue **p;
	sisy_buf *bufs; /* owned copies of keys and values */
	size_t n, cap;
	size_t bytes, max_bytes;
	bool with_version, keys_only, more;
	sisy_err err;
} scan_ctx;

static bool scan_one(void *ctx, sisy_slice key, sisy_slice val,
		     uint64_t version)
{
	scan_ctx *sc = ctx;
	if (sc->n == sc->cap || sc->bytes >= sc->max_bytes) {
		sc->more = true;
		return false;
	}
	size_t i = sc->n;
	sisy_buf *b = &sc->bufs[i];
	size_t vl = sc->keys_only ? 0 : val.len;
	if (sisy_buf_reserve(b, key.len + vl) != SISY_OK) {
		sc->err = SISY_E_NOMEM;
		return false;
	}
	memcpy(b->data, key.data, key.len);
	if (vl)
		memcpy(b->data + key.len, val.data, vl);
	b->len = key.len + vl;
	sisy__key_value__init(&sc->kv[i]);
	sc->kv[i].key.data = b->data;
	sc->kv[i].key.len = key.len;
	sc->kv[i].value.data = b->data + key.len;
	sc->kv[i].value.len = vl;
	sc->kv[i].version = sc->with_version ? version : 0;
	sc->kv[i].found = true;
	sc->p[i] = &sc->kv[i];
	sc->n++;
	sc->bytes += key.len + vl + 16;
	return true;
}

/* The smallest key above every key starting with prefix (empty: none). */
static size_t prefix_end(const uint8_t *p, size_t n, uint8_t *out)
{
	while (n > 0 && p[n - 1] == 0xff)
		n--;
	if (n == 0)
		return 0;
	memcpy(out, p, n);
	out[n - 1]++;
	return n;
}

static void run_scan(sisy_server *s, srv_req *r)
{
	const Sisy__ScanRequest *q = r->msg->scan;
	scan_ctx sc = {0};
	uint8_t *endkey = NULL;
	sisy_slice from = {0}, to = {0};
	uint32_t limit = q->limit && q->limit < s->cfg.scan_page_max
			     ? q->limit
			     : s->cfg.scan_page_max;
	sc.cap = limit;
	sc.max_bytes = s->cfg.scan_page_bytes;
	sc.with_version = q->with_version;
	sc.keys_only = q->keys_only;
	sc.kv = calloc(limit, sizeof *sc.kv);
	sc.p = calloc(limit, sizeof *sc.p);
	sc.bufs = calloc(limit, sizeof *sc.bufs);
	if (!sc.kv || !sc.p || !sc.bufs) {
		handler_fail(r, SISY_E_NOMEM, "out of memory");
		goto done;
	}
	if (q->range_case == SISY__SCAN_REQUEST__RANGE_BOUNDS && q->bounds) {
		from =
		    sisy_slice_make(q->bounds->from.data, q->bounds->from.len);
		to = sisy_slice_make(q->bounds->to.data, q->bounds->to.len);
	} else if (q->range_case == SISY__SCAN_REQUEST__RANGE_PREFIX &&
		   q->prefix.len > 0) {
		endkey = malloc(q->prefix.len);
		if (endkey == NULL) {
			handler_fail(r, SISY_E_NOMEM, "out of memory");
			goto done;
		}
		from = sisy_slice_make(q->prefix.data, q->prefix.len);
		to = sisy_slice_make(
		    endkey, prefix_end(q->prefix.data, q->prefix.len, endkey));
	}
	sisy_err rc = sisy_node_scan(
	    s->node, SRV_GROUP, from, to,
	    sisy_slice_make(q->resume_after.data, q->resume_after.len),
	    scan_one, &sc);
	if (rc == SISY_OK && sc.err != SISY_OK)
		rc = sc.err;
	if (rc != SISY_OK) {
		handler_fail(r, rc, sisy_errmsg());
		goto done;
	}
	Sisy__ScanResult res = SISY__SCAN_RESULT__INIT;
	res.n_entries = sc.n;
	res.entries = sc.p;
	res.more = sc.more && sc.n > 0;
	if (res.more)
		res.resume_after = sc.kv[sc.n - 1].key;
	Sisy__Response resp = SISY__RESPONSE__INIT;
	resp.result_case = SISY__RESPONSE__RESULT_SCAN;
	resp.scan = &res;
	handler_pack(r, &resp);
done:
	for (size_t i = 0; sc.bufs && i < sc.cap; i++)
		sisy_buf_free(&sc.bufs[i]);
	free(sc.bufs);
	free(sc.kv);
	free(sc.p);
	free(endkey);
}

static void run_mget(sisy_server *s, srv_req *r)
{
	const Sisy__MGetRequest *q = r->msg->mget;
	size_t n = q->n_keys, total = 0;
	Sisy__KeyValue *kv = calloc(n, sizeof *kv);
	Sisy__KeyValue **p = calloc(n, sizeof *p);
	sisy_buf *vals = calloc(n, sizeof *vals);
	sisy_err rc = kv && p && vals ? SISY_OK : SISY_E_NOMEM;
	for (size_t i = 0; i < n && rc == SISY_OK; i++) {
		bool found = false;
		uint64_t version = 0;
		sisy__key_value__init(&kv[i]);
		p[i] = &kv[i];
		rc = sisy_node_get(
		    s->node, SRV_GROUP,
		    sisy_slice_make(q->keys[i].data, q->keys[i].len), &found,
		    &version, &vals[i]);
		kv[i].key = q->keys[i];
		kv[i].found = found;
		kv[i].value.data = vals[i].data;
		kv[i].value.len = found ? vals[i].len : 0;
		kv[i].version = q->with_version ? version : 0;
		total += q->keys[i].len + vals[i].len + 16;
		if (rc == SISY_OK && total > MGET_REPLY_MAX)
			rc = sisy_errf(SISY_E_TOOBIG,
				       "the values asked for exceed the reply "
				       "limit; ask for fewer keys");
	}
	if (rc != SISY_OK) {
		handler_fail(r, rc, sisy_errmsg());
	} else {
		Sisy__MGetResult res = SISY__MGET_RESULT__INIT;
		res.n_entries = n;
		res.entries = p;
		Sisy__Response resp = SISY__RESPONSE__INIT;
		resp.result_case = SISY__RESPONSE__RESULT_MGET;
		resp.mget = &res;
		handler_pack(r, &resp);
	}
	for (size_t i = 0; vals && i < n; i++)
		sisy_buf_free(&vals[i]);
	free(vals);
	free(kv);
	free(p);
}

/* GET and EXISTS; with `cached`, from memory only (sisy_node_get_cached):
 * false when that cannot answer (then r is untouched). Other requests:
 * false. val: scratch space for the value (the loop reuses one). */
static bool run_point(sisy_server *s, srv_req *r, bool cached, sisy_buf *val)
{
	Sisy__Request *m = r->msg;
	bool found = false, exists = m->op_case == SISY__REQUEST__OP_EXISTS;
	uint64_t version = 0;
	sisy_err rc;
	if (m->op_case != SISY__REQUEST__OP_GET && !exists)
		return false;
	ProtobufCBinaryData key = exists ? m->exists->key : m->get->key;
	sisy_slice k = sisy_slice_make(key.data, key.len);
	sisy_buf *v = exists ? NULL : val;
	if (cached)
		rc = sisy_node_get_cached(s->node, SRV_GROUP, k, &found,
					  &version, v);
	else
		rc = sisy_node_get(s->node, SRV_GROUP, k, &found, &version, v);
	if (rc == SISY_E_AGAIN && cached)
		return false;
	if (rc != SISY_OK)
		handler_fail(r, rc, sisy_errmsg());
	else if (exists)
		pack_exists(r, found);
	else
		pack_get(r, found,
			 sisy_slice_make(val->data, found ? val->len : 0),
			 m->get->with_version ? version : 0);
	return true;
}

void reads_run(sisy_server *s, srv_req *r)
{
	Sisy__Request *m = r->msg;
	sisy_buf val = {0};
	switch (m->op_case) {
	case SISY__REQUEST__OP_GET:
	case SISY__REQUEST__OP_EXISTS:
		run_point(s, r, false, &val);
		break;
	case SISY__REQUEST__OP_MGET:
		run_mget(s, r);
		break;
	case SISY__REQUEST__OP_SCAN:
		run_scan(s, r);
		break;
	default:
		handler_fail(r, SISY_E_INTERNAL, "not a read");
	}
	sisy_buf_free(&val);
}
