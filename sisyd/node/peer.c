/* peer.c — Raft messages on the wire: the outbox that batches one loop
 * turn's messages per destination node into RaftBatch frames (peer.proto),
 * and the decoder that checks a received frame and steps its messages into
 * the groups' cores (loop thread).
 *
 * A frame is a PeerMessage whose `raft` field holds a RaftBatch. Messages
 * are packed one by one as they leave a ready (a ready's entries are
 * borrowed only until sisy_raft_advance), each as one length-delimited
 * field 5 of the batch; the header fields are packed at the end of the
 * turn. A destination's buffer is sent early once it passes
 * NODE_FRAME_BYTES, so one frame stays bounded.
 *
 * Received frames are checked before anything is stepped: the cluster id,
 * the sender's key against the membership's record of it (a node id whose
 * disk was replaced has a new key and is refused), `to` is this node, each
 * message's from/to match the batch, types are known, and MSG_SNAPSHOT
 * never arrives this way (only through a snapshot stream). A follower whose
 * apply queue is over max_apply_queue_bytes drops APPENDs (the leader
 * re-sends): its memory stays bounded while heartbeats still flow.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "node_int.h"
#include "peer.pb-c.h"

static node_outbox *outbox_of(sisy_node *n, uint64_t to)
{
	for (size_t i = 0; i < n->nout; i++)
		if (n->out[i].to == to)
			return &n->out[i];
	if (n->nout == n->capout) {
		size_t cap = n->capout ? n->capout * 2 : 8;
		node_outbox *v = realloc(n->out, cap * sizeof *v);
		if (v == NULL)
			return NULL;
		n->out = v;
		n->capout = cap;
	}
	node_outbox *o = &n->out[n->nout++];
	memset(o, 0, sizeof *o);
	o->to = to;
	return o;
}

static void send_one(sisy_node *n, node_outbox *o)
{
	Sisy__RaftBatch hdr = SISY__RAFT_BATCH__INIT;
	sisy_buf f = {0};
	uint8_t tmp[10];
	hdr.from = n->id;
	hdr.to = o->to;
	hdr.cluster_id.data = n->cluster_id;
	hdr.cluster_id.len = SISY_NODE_CLUSTER_ID;
	hdr.sender_key.data = n->key;
	hdr.sender_key.len = SISY_NODE_KEY;
	size_t hlen = sisy__raft_batch__get_packed_size(&hdr);
	size_t blen = hlen + o->msgs.len;
	sisy_err rc = sisy_buf_reserve(&f, 1 + 10 + blen);
	if (rc == SISY_OK) {
		f.data[0] = (1 << 3) | 2; /* PeerMessage.raft */
		size_t k = sisy_put_varint64(tmp, blen);
		memcpy(f.data + 1, tmp, k);
		f.len = 1 + k;
		f.len += sisy__raft_batch__pack(&hdr, f.data + f.len);
		memcpy(f.data + f.len, o->msgs.data, o->msgs.len);
		f.len += o->msgs.len;
		n->o.send(n->o.send_ctx, o->to, f.data, f.len);
	}
	sisy_buf_free(&f);
	sisy_buf_clear(&o->msgs);
	o->nmsgs = 0;
}

sisy_err node_outbox_add(sisy_node *n, uint64_t group, const sisy_raft_msg *m)
{
	Sisy__RaftMessage pm = SISY__RAFT_MESSAGE__INIT;
	Sisy__RaftEntry *ev = NULL, **ep = NULL;
	node_outbox *o = outbox_of(n, m->to);
	sisy_err rc = SISY_OK;
	if (o == NULL)
		return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	pm.group = group;
	pm.type = m->type;
	pm.reject = m->reject;
	pm.flags = m->flags;
	pm.from = m->from;
	pm.to = m->to;
	pm.term = m->term;
	pm.log_term = m->log_term;
	pm.index = m->index;
	pm.commit = m->commit;
	pm.hint_index = m->hint_index;
	pm.hint_term = m->hint_term;
	pm.ctx = m->ctx;
	if (m->n_entries > 0) {
		ev = calloc(m->n_entries, sizeof *ev);
		ep = calloc(m->n_entries, sizeof *ep);
		if (ev == NULL || ep == NULL) {
			rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
			goto out;
		}
		for (size_t i = 0; i < m->n_entries; i++) {
			const sisy_raft_entry *e = &m->entries[i];
			Sisy__RaftEntry init = SISY__RAFT_ENTRY__INIT;
			ev[i] = init;
			ev[i].term = e->term;
			ev[i].index = e->index;
			ev[i].type = e->type;
			ev[i].data.data = (uint8_t *)e->data;
			ev[i].data.len = e->len;
			ep[i] = &ev[i];
		}
		pm.entries = ep;
		pm.n_entries = m->n_entries;
	}
	size_t len = sisy__raft_message__get_packed_size(&pm);
	uint8_t hdr[11];
	hdr[0] = (5 << 3) | 2; /* RaftBatch.msgs */
	size_t k = 1 + sisy_put_varint64(hdr + 1, len);
	if ((rc = sisy_buf_reserve(&o->msgs, k + len)) != SISY_OK)
		goto out;
	memcpy(o->msgs.data + o->msgs.len, hdr, k);
	o->msgs.len += k;
	o->msgs.len +=
	    sisy__raft_message__pack(&pm, o->msgs.data + o->msgs.len);
	o->nmsgs++;
	if (o->msgs.len >= NODE_FRAME_BYTES)
		send_one(n, o);
out:
	free(ev);
	free(ep);
	return rc;
}

void node_outbox_flush(sisy_node *n)
{
	for (size_t i = 0; i < n->nout; i++)
		if (n->out[i].nmsgs > 0)
			send_one(n, &n->out[i]);
}

void node_outbox_free(sisy_node *n)
{
	for (size_t i = 0; i < n->nout; i++)
		sisy_buf_free(&n->out[i].msgs);
	free(n->out);
	n->out = NULL;
	n->nout = n->capout = 0;
}

/* ---- receiving
 * --------------------------------------------------------------- */

static sisy_err step_one(sisy_node *n, const Sisy__RaftBatch *b,
			 const Sisy__RaftMessage *pm)
{
	if (pm->from != b->from || pm->to != b->to || pm->type == 0 ||
	    pm->type > SISY_RAFT_MSG_TYPE_MAX || pm->reject > 1 ||
	    pm->flags > 255 || pm->n_entries > 1000000)
		return sisy_errf(SISY_E_PROTO,
				 "node: a malformed raft message");
	if (pm->type == SISY_RAFT_MSG_SNAPSHOT)
		return sisy_errf(SISY_E_PROTO,
				 "node: a snapshot outside a snapshot stream");
	node_group *g = node_group_find(n, pm->group);
	if (g == NULL)
		return SISY_OK; /* not hosted (yet): as if lost */
	if (pm->type == SISY_RAFT_MSG_APPEND &&
	    g->queued_bytes > n->o.max_apply_queue_bytes)
		return SISY_OK; /* apply is behind: the leader re-sends */
	sisy_raft_entry *ents = NULL;
	if (pm->n_entries > 0) {
		ents = calloc(pm->n_entries, sizeof *ents);
		if (ents == NULL)
			return sisy_errf(SISY_E_NOMEM, "node: out of memory");
	}
	for (size_t i = 0; i < pm->n_entries; i++) {
		const Sisy__RaftEntry *e = pm->entries[i];
		if (e->type > SISY_RAFT_ENTRY_CONFIG ||
		    e->data.len > NODE_MAX_ENTRY) {
			free(ents);
			return sisy_errf(SISY_E_PROTO,
					 "node: a malformed raft entry");
		}
		ents[i] = (sisy_raft_entry){.term = e->term,
					    .index = e->index,
					    .type = (uint8_t)e->type,
					    .data = e->data.data,
					    .len = e->data.len};
	}
	sisy_raft_msg m;
	memset(&m, 0, sizeof m);
	m.type = (uint8_t)pm->type;
	m.reject = (uint8_t)pm->reject;
	m.flags = (uint8_t)pm->flags;
	m.from = pm->from;
	m.to = pm->to;
	m.term = pm->term;
	m.log_term = pm->log_term;
	m.index = pm->index;
	m.commit = pm->commit;
	m.hint_index = pm->hint_index;
	m.hint_term = pm->hint_term;
	m.ctx = pm->ctx;
	m.entries = ents;
	m.n_entries = pm->n_entries;
	sisy_err rc = sisy_raft_step(g->raft, &m);
	free(ents);
	if (rc == SISY_E_INVAL)
		rc = SISY_E_PROTO; /* the core refused a malformed message */
	return rc;
}

sisy_err sisy_node_step(sisy_node *n, const uint8_t *frame, size_t len)
{
	if (n->failed)
		return sisy_errf(SISY_E_FAILED, "node: failed: %s", n->failmsg);
	Sisy__PeerMessage *pm = sisy__peer_message__unpack(NULL, len, frame);
	sisy_err rc = SISY_OK;
	if (pm == NULL || pm->body_case != SISY__PEER_MESSAGE__BODY_RAFT) {
		rc = sisy_errf(SISY_E_PROTO, "node: not a raft batch frame");
		goto out;
	}
	const Sisy__RaftBatch *b = pm->raft;
	if (b->to != n->id || b->from == 0 || b->from == n->id ||
	    b->cluster_id.len != SISY_NODE_CLUSTER_ID ||
	    b->sender_key.len != SISY_NODE_KEY) {
		rc = sisy_errf(SISY_E_PROTO, "node: a malformed raft batch");
		goto out;
	}
	if (memcmp(b->cluster_id.data, n->cluster_id, SISY_NODE_CLUSTER_ID) ||
	    !sisy_node_peer_allowed(n, b->from, b->sender_key.data)) {
		rc = sisy_errf(SISY_E_PERM,
			       "node: refused messages from node %" PRIu64
			       ": not a member of this cluster with that key",
			       b->from);
		goto out;
	}
	for (size_t i = 0; i < b->n_msgs && rc == SISY_OK; i++)
		rc = step_one(n, b, b->msgs[i]);
out:
	if (pm)
		sisy__peer_message__free_unpacked(pm, NULL);
	return rc;
}

void sisy_node_report_unreachable(sisy_node *n, uint64_t to)
{
	for (size_t i = 0; i < n->ngroups; i++)
		sisy_raft_report_unreachable(n->groups[i]->raft, to);
}
