/* snap_out.c — sending snapshots: when a leader's core asks to send one
 * (MSG_SNAPSHOT), the apply thread checkpoints the group's engine (hard
 * links; the client table, users and membership ride inside) at exactly
 * its applied index, and the server streams the checkpoint on a connection
 * of its own.
 *
 * A checkpoint (node_ckpt) is kept per group while outgoing snapshots use
 * it (refcount; the group holds one reference for reuse) and reused for a
 * later request if it is not older than the core's compaction point;
 * unused for CKPT_IDLE_TICKS it is dropped. Its directory is removed by the
 * apply thread once the last reference goes. The message's snapshot meta is
 * replaced by the checkpoint's (sisy_raft_meta_at), as raft.h allows.
 *
 * Stream (PeerMessage frames): SnapshotHeader (group, from, to, term, meta,
 * files with sizes and XXH64 checksums), SnapshotChunk x N (file by file,
 * offsets ascending), SnapshotEnd. The receiver answers SnapshotAck; the
 * server reports the outcome with sisy_node_snap_out_done(), which tells the
 * core (sisy_raft_report_snapshot) — for every snapshot the core asked for.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node_int.h"
#include "peer.pb-c.h"

struct sisy_node_snap_out {
	struct sisy_node_snap_out *next;
	node_ckpt *ck;
	sisy_fs *fs;
	uint64_t group, from, to, term;
	uint8_t cluster_id[SISY_NODE_CLUSTER_ID];
	uint8_t key[SISY_NODE_KEY];
	/* streaming state (the sending thread) */
	int stage; /* 0 header, 1 chunks, 2 finished */
	size_t file;
	uint64_t off;
	sisy_file *f;
	uint8_t *buf;
	size_t bufcap;
};

/* Removes a checkpoint directory off the loop (inline when closing: the
 * apply thread is gone then). */
static void rmdir_later(sisy_node *n, node_group *g, const char *dir)
{
	node_job *j = n->closing ? NULL : calloc(1, sizeof *j);
	if (j != NULL) {
		j->kind = JOB_RMDIR;
		j->g = g;
		snprintf(j->path, sizeof j->path, "%s", dir);
		node_apply_push(n, j);
	} else {
		node_rmdir_all(n->fs, dir);
	}
}

void node_ckpt_unref(sisy_node *n, node_ckpt *c)
{
	if (c == NULL || --c->refs > 0)
		return;
	rmdir_later(n, c->g, c->dir);
	free(c->files);
	free(c);
}

static void queue_out(node_group *g, node_ckpt *c, uint64_t to, uint64_t term)
{
	sisy_node *n = g->n;
	sisy_node_snap_out *s = calloc(1, sizeof *s);
	if (s == NULL) {
		sisy_raft_report_snapshot(g->raft, to, SISY_E_NOMEM);
		return;
	}
	c->refs++;
	s->ck = c;
	s->fs = n->fs;
	s->group = g->id;
	s->from = n->id;
	s->to = to;
	s->term = term;
	memcpy(s->cluster_id, n->cluster_id, SISY_NODE_CLUSTER_ID);
	memcpy(s->key, n->key, SISY_NODE_KEY);
	if (n->snap_tail)
		n->snap_tail->next = s;
	else
		n->snap_head = s;
	n->snap_tail = s;
	g->snapshots_sent++;
}

void node_snap_request(node_group *g, const sisy_raft_msg *m)
{
	if (g->ckpt != NULL && g->ckpt->index >= m->snapshot.index) {
		queue_out(g, g->ckpt, m->to, m->term);
		return;
	}
	if (g->nsnap_waits == g->capsnap_waits) {
		size_t cap = g->capsnap_waits ? g->capsnap_waits * 2 : 4;
		node_snap_wait *v = realloc(g->snap_waits, cap * sizeof *v);
		if (v == NULL) {
			sisy_raft_report_snapshot(g->raft, m->to, SISY_E_NOMEM);
			return;
		}
		g->snap_waits = v;
		g->capsnap_waits = cap;
	}
	g->snap_waits[g->nsnap_waits++] = (node_snap_wait){m->to, m->term};
	if (g->ckpt_pending)
		return;
	node_job *j = calloc(1, sizeof *j);
	if (j == NULL) {
		g->nsnap_waits--;
		sisy_raft_report_snapshot(g->raft, m->to, SISY_E_NOMEM);
		return;
	}
	j->kind = JOB_CHECKPOINT;
	j->g = g;
	g->ckpt_pending = true;
	node_apply_push(g->n, j);
}

static void fail_waits(node_group *g, sisy_err rc)
{
	for (size_t i = 0; i < g->nsnap_waits; i++)
		sisy_raft_report_snapshot(g->raft, g->snap_waits[i].to, rc);
	g->nsnap_waits = 0;
}

void node_snap_checkpoint_done(node_group *g, node_job *j)
{
	sisy_node *n = g->n;
	g->ckpt_pending = false;
	if (j->err != SISY_OK) {
		sisy_log(n->o.logger, SISY_LOG_WARN, "node",
			 "group %" PRIu64 ": checkpoint for a snapshot: %s",
			 g->id, j->errmsg);
		fail_waits(g, j->err);
		return;
	}
	node_ckpt *c = g->ckpt;
	if (c == NULL || strcmp(c->dir, j->path) != 0) {
		sisy_raft_snapshot_meta meta;
		if (sisy_raft_meta_at(g->raft, j->index, &meta) != SISY_OK ||
		    (c = calloc(1, sizeof *c)) == NULL) {
			sisy_log(n->o.logger, SISY_LOG_WARN, "node",
				 "group %" PRIu64 ": no meta for a checkpoint "
				 "at %" PRIu64,
				 g->id, j->index);
			fail_waits(g, SISY_E_RANGE);
			rmdir_later(n, g, j->path);
			return;
		}
		c->refs = 1;
		c->created = n->ticks;
		c->g = g;
		snprintf(c->dir, sizeof c->dir, "%s", j->path);
		c->index = j->index;
		c->meta = meta;
		c->files = j->files;
		c->nfiles = j->nfiles;
		j->files = NULL;
		node_ckpt *old = g->ckpt;
		g->ckpt = c;
		node_ckpt_unref(n, old);
	}
	for (size_t i = 0; i < g->nsnap_waits; i++)
		queue_out(g, c, g->snap_waits[i].to, g->snap_waits[i].term);
	g->nsnap_waits = 0;
}

sisy_node_snap_out *sisy_node_snap_out_next(sisy_node *n)
{
	sisy_node_snap_out *s = n->snap_head;
	if (s != NULL) {
		n->snap_head = s->next;
		if (n->snap_head == NULL)
			n->snap_tail = NULL;
		s->next = NULL;
	}
	return s;
}

uint64_t sisy_node_snap_out_to(const sisy_node_snap_out *s)
{
	return s->to;
}

static sisy_err pack(const Sisy__PeerMessage *pm, sisy_buf *frame)
{
	size_t len = sisy__peer_message__get_packed_size(pm);
	sisy_buf_clear(frame);
	sisy_err rc = sisy_buf_reserve(frame, len);
	if (rc == SISY_OK)
		frame->len = sisy__peer_message__pack(pm, frame->data);
	return rc;
}

static sisy_err header_frame(sisy_node_snap_out *s, sisy_buf *frame)
{
	const node_ckpt *c = s->ck;
	Sisy__PeerMessage pm = SISY__PEER_MESSAGE__INIT;
	Sisy__SnapshotHeader h = SISY__SNAPSHOT_HEADER__INIT;
	Sisy__RaftSnapshotMeta meta = SISY__RAFT_SNAPSHOT_META__INIT;
	Sisy__SnapshotFile *fv = calloc(c->nfiles + 1, sizeof *fv);
	Sisy__SnapshotFile **fp = calloc(c->nfiles + 1, sizeof *fp);
	uint64_t voters[SISY_RAFT_MAX_NODES], learners[SISY_RAFT_MAX_NODES];
	sisy_err rc = SISY_OK;
	if (fv == NULL || fp == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->nfiles; i++) {
		Sisy__SnapshotFile init = SISY__SNAPSHOT_FILE__INIT;
		fv[i] = init;
		fv[i].name = (char *)c->files[i].name;
		fv[i].size = c->files[i].size;
		fv[i].checksum = c->files[i].checksum;
		fp[i] = &fv[i];
	}
	memcpy(voters, c->meta.membership.voters, sizeof voters);
	memcpy(learners, c->meta.membership.learners, sizeof learners);
	meta.index = c->meta.index;
	meta.term = c->meta.term;
	meta.voters = voters;
	meta.n_voters = c->meta.membership.n_voters;
	meta.learners = learners;
	meta.n_learners = c->meta.membership.n_learners;
	h.group = s->group;
	h.from = s->from;
	h.to = s->to;
	h.term = s->term;
	h.meta = &meta;
	h.files = fp;
	h.n_files = c->nfiles;
	h.cluster_id.data = s->cluster_id;
	h.cluster_id.len = SISY_NODE_CLUSTER_ID;
	h.sender_key.data = s->key;
	h.sender_key.len = SISY_NODE_KEY;
	pm.body_case = SISY__PEER_MESSAGE__BODY_SNAPSHOT_HEADER;
	pm.snapshot_header = &h;
	rc = pack(&pm, frame);
out:
	free(fv);
	free(fp);
	return rc;
}

/* The next chunk of file data, or *done when every file was sent. */
static sisy_err chunk_frame(sisy_node_snap_out *s, size_t chunk,
			    sisy_buf *frame, bool *done)
{
	const node_ckpt *c = s->ck;
	char path[NODE_PATH];
	sisy_err rc;
	*done = false;
	if (s->bufcap < chunk) {
		uint8_t *b = realloc(s->buf, chunk);
		if (b == NULL)
			return sisy_errf(SISY_E_NOMEM, "node: out of memory");
		s->buf = b;
		s->bufcap = chunk;
	}
	for (;;) {
		if (s->file >= c->nfiles) {
			*done = true;
			return SISY_OK;
		}
		const node_file *nf = &c->files[s->file];
		if (s->off >= nf->size) {
			if (s->f)
				sisy_file_close(s->f);
			s->f = NULL;
			s->file++;
			s->off = 0;
			continue;
		}
		if (s->f == NULL &&
		    ((rc = node_path(path, sizeof path, c->dir, nf->name)) !=
			 SISY_OK ||
		     (rc = sisy_fs_open(s->fs, path, SISY_O_READ, &s->f)) !=
			 SISY_OK))
			return rc;
		size_t want = chunk, got = 0;
		if (nf->size - s->off < want)
			want = (size_t)(nf->size - s->off);
		if ((rc = sisy_file_pread(s->f, s->buf, want, s->off, &got)) !=
		    SISY_OK)
			return rc;
		if (got == 0)
			return sisy_errf(SISY_E_CORRUPT,
					 "node: %s/%s shrank while sending it",
					 c->dir, nf->name);
		Sisy__PeerMessage pm = SISY__PEER_MESSAGE__INIT;
		Sisy__SnapshotChunk ch = SISY__SNAPSHOT_CHUNK__INIT;
		ch.file = (uint32_t)s->file;
		ch.offset = s->off;
		ch.data.data = s->buf;
		ch.data.len = got;
		pm.body_case = SISY__PEER_MESSAGE__BODY_SNAPSHOT_CHUNK;
		pm.snapshot_chunk = &ch;
		s->off += got;
		return pack(&pm, frame);
	}
}

sisy_err sisy_node_snap_out_frame(sisy_node_snap_out *s, size_t chunk_bytes,
				  sisy_buf *frame, bool *last)
{
	bool done;
	*last = false;
	if (chunk_bytes == 0 || chunk_bytes > (1u << 20))
		chunk_bytes = 1u << 20;
	if (s->stage == 0) {
		s->stage = 1;
		return header_frame(s, frame);
	}
	if (s->stage == 1) {
		sisy_err rc = chunk_frame(s, chunk_bytes, frame, &done);
		if (rc != SISY_OK || !done)
			return rc;
		s->stage = 2;
	}
	Sisy__PeerMessage pm = SISY__PEER_MESSAGE__INIT;
	Sisy__SnapshotEnd end = SISY__SNAPSHOT_END__INIT;
	pm.body_case = SISY__PEER_MESSAGE__BODY_SNAPSHOT_END;
	pm.snapshot_end = &end;
	*last = true;
	return pack(&pm, frame);
}

static void snap_out_free(sisy_node *n, sisy_node_snap_out *s)
{
	if (s->f)
		sisy_file_close(s->f);
	node_ckpt_unref(n, s->ck);
	free(s->buf);
	free(s);
}

void sisy_node_snap_out_done(sisy_node *n, sisy_node_snap_out *s,
			     sisy_err status)
{
	node_group *g = node_group_find(n, s->group);
	if (g != NULL && !n->closing)
		sisy_raft_report_snapshot(g->raft, s->to, status);
	snap_out_free(n, s);
}

void node_snap_out_free_all(sisy_node *n)
{
	sisy_node_snap_out *s;
	while ((s = sisy_node_snap_out_next(n)) != NULL)
		snap_out_free(n, s);
	for (size_t i = 0; i < n->ngroups; i++) {
		node_group *g = n->groups[i];
		node_ckpt *c = g->ckpt;
		g->ckpt = NULL;
		node_ckpt_unref(n, c);
	}
}
