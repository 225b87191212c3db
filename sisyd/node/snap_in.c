/* snap_in.c — receiving a snapshot: frames into a staging directory, then
 * verification, then the Raft core decides, then the apply thread installs
 * (sm_snap.c) and the loop records it in the log.
 *
 * Stages of one transfer (a sisy_node_snap_in):
 *   begin (loop)      the header is checked: this node, a hosted group, the
 *                     same cluster, a sender allowed to talk, sane file
 *                     names; a staging directory name db-NNNNNN is reserved
 *                     in the group's directory;
 *   frames (any one   chunks must come file by file at increasing offsets
 *   thread)           within the announced sizes; each file's XXH64 is
 *                     computed as it is written. The end frame closes and
 *                     fsyncs every file, fsyncs the directory (and its
 *                     parent, for the new name) and compares checksums:
 *                     only then is the transfer complete;
 *   install (loop)    the MSG_SNAPSHOT is stepped into the core. If the
 *                     core takes it (its compaction point moved to the
 *                     snapshot), the staged directory waits on the group
 *                     for the ready carrying rd.snapshot (loop.c), whose
 *                     persistence waits for the apply thread's install
 *                     (node_snap_in_installed). Otherwise it is removed.
 * A staging directory left by a crash is removed at the next open.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "node_int.h"
#include "peer.pb-c.h"

#define MAX_FILES 100000

struct sisy_node_snap_in {
	node_group *g;
	sisy_fs *fs;
	uint64_t from, term;
	sisy_raft_snapshot_meta meta;
	node_file *files;
	size_t nfiles;
	char dbname[32];
	char dir[NODE_PATH];
	char parent[NODE_PATH];
	/* the writing thread */
	bool dir_made;
	size_t cur;
	uint64_t off;
	sisy_file *f;
	XXH64_state_t *h;
	bool complete;
	sisy_err err;
};

const char *node_snap_in_dbname(const sisy_node_snap_in *in)
{
	return in->dbname;
}

void node_snap_in_free(sisy_node_snap_in *in)
{
	if (in == NULL)
		return;
	if (in->f)
		sisy_file_close(in->f);
	if (in->h)
		XXH64_freeState(in->h);
	free(in->files);
	free(in);
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	return n > 0 && n < sizeof(((node_file *)0)->name) &&
	       strchr(s, '/') == NULL && strcmp(s, ".") != 0 &&
	       strcmp(s, "..") != 0 && strcmp(s, "LOCK") != 0;
}

static sisy_err check_header(sisy_node *n, const Sisy__SnapshotHeader *h)
{
	const Sisy__RaftSnapshotMeta *m = h->meta;
	if (h->to != n->id || h->from == 0 || h->from == n->id || m == NULL ||
	    m->index == 0 || m->term == 0 || h->term < m->term ||
	    m->n_voters == 0 ||
	    m->n_voters + m->n_learners > SISY_RAFT_MAX_NODES ||
	    h->n_files > MAX_FILES ||
	    h->cluster_id.len != SISY_NODE_CLUSTER_ID ||
	    h->sender_key.len != SISY_NODE_KEY)
		return sisy_errf(SISY_E_PROTO,
				 "node: a malformed snapshot header");
	if (memcmp(h->cluster_id.data, n->cluster_id, SISY_NODE_CLUSTER_ID) ||
	    !sisy_node_peer_allowed(n, h->from, h->sender_key.data))
		return sisy_errf(SISY_E_PERM,
				 "node: a snapshot from node %" PRIu64
				 ", which may not send one",
				 h->from);
	for (size_t i = 0; i < h->n_files; i++) {
		if (!name_ok(h->files[i]->name))
			return sisy_errf(SISY_E_PROTO,
					 "node: a snapshot file name that is "
					 "not a plain name");
		for (size_t k = 0; k < i; k++)
			if (strcmp(h->files[k]->name, h->files[i]->name) == 0)
				return sisy_errf(SISY_E_PROTO,
						 "node: a snapshot names a "
						 "file twice");
	}
	return SISY_OK;
}

sisy_err sisy_node_snap_in_begin(sisy_node *n, const uint8_t *frame, size_t len,
				 sisy_node_snap_in **out)
{
	sisy_node_snap_in *in = NULL;
	Sisy__PeerMessage *pm = sisy__peer_message__unpack(NULL, len, frame);
	sisy_err rc = SISY_OK;
	*out = NULL;
	if (n->failed || n->closing) {
		rc = sisy_errf(SISY_E_FAILED, "node: stopped");
		goto out;
	}
	if (pm == NULL ||
	    pm->body_case != SISY__PEER_MESSAGE__BODY_SNAPSHOT_HEADER) {
		rc = sisy_errf(SISY_E_PROTO, "node: not a snapshot header");
		goto out;
	}
	const Sisy__SnapshotHeader *h = pm->snapshot_header;
	node_group *g = node_group_find(n, h->group);
	if (g == NULL) {
		rc = sisy_errf(SISY_E_NOTFOUND,
			       "node: a snapshot of group %" PRIu64
			       ", which this node does not host",
			       h->group);
		goto out;
	}
	if ((rc = check_header(n, h)) != SISY_OK)
		goto out;
	in = calloc(1, sizeof *in);
	if (in == NULL ||
	    (h->n_files &&
	     (in->files = calloc(h->n_files, sizeof *in->files)) == NULL) ||
	    (in->h = XXH64_createState()) == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "node: out of memory");
		goto out;
	}
	in->g = g;
	in->fs = n->fs;
	in->from = h->from;
	in->term = h->term;
	in->meta.index = h->meta->index;
	in->meta.term = h->meta->term;
	in->meta.membership.n_voters = (uint32_t)h->meta->n_voters;
	in->meta.membership.n_learners = (uint32_t)h->meta->n_learners;
	memcpy(in->meta.membership.voters, h->meta->voters,
	       h->meta->n_voters * sizeof(uint64_t));
	if (h->meta->n_learners)
		memcpy(in->meta.membership.learners, h->meta->learners,
		       h->meta->n_learners * sizeof(uint64_t));
	in->nfiles = h->n_files;
	for (size_t i = 0; i < h->n_files; i++) {
		snprintf(in->files[i].name, sizeof in->files[i].name, "%s",
			 h->files[i]->name);
		in->files[i].size = h->files[i]->size;
		in->files[i].checksum = h->files[i]->checksum;
	}
	snprintf(in->dbname, sizeof in->dbname, "db-%06u", g->next_db++);
	snprintf(in->parent, sizeof in->parent, "%s", g->dir);
	if ((rc = node_path(in->dir, sizeof in->dir, g->dir, in->dbname)) !=
	    SISY_OK)
		goto out;
	*out = in;
	in = NULL;
out:
	node_snap_in_free(in);
	if (pm)
		sisy__peer_message__free_unpacked(pm, NULL);
	return rc;
}

/* ---- the writing side (any one thread)
 * ------------------------------------------ */

static sisy_err open_file(sisy_node_snap_in *in)
{
	char path[NODE_PATH];
	sisy_err rc =
	    node_path(path, sizeof path, in->dir, in->files[in->cur].name);
	XXH64_reset(in->h, 0);
	if (rc == SISY_OK)
		rc = sisy_fs_open(in->fs, path,
				  SISY_O_WRITE | SISY_O_CREATE | SISY_O_EXCL,
				  &in->f);
	return rc;
}

static sisy_err close_file(sisy_node_snap_in *in)
{
	const node_file *nf = &in->files[in->cur];
	sisy_err rc = SISY_OK;
	if (in->f == NULL && (rc = open_file(in)) != SISY_OK)
		return rc; /* an empty file: create it */
	if (in->off != nf->size)
		rc = sisy_errf(SISY_E_PROTO,
			       "node: snapshot file %s ended at %" PRIu64
			       " of %" PRIu64 " bytes",
			       nf->name, in->off, nf->size);
	else if (XXH64_digest(in->h) != nf->checksum)
		rc = sisy_errf(SISY_E_CORRUPT,
			       "node: snapshot file %s has a bad checksum",
			       nf->name);
	if (rc == SISY_OK)
		rc = sisy_file_sync(in->f);
	sisy_err c = sisy_file_close(in->f);
	in->f = NULL;
	if (rc == SISY_OK)
		rc = c;
	in->cur++;
	in->off = 0;
	return rc;
}

static sisy_err make_dir(sisy_node_snap_in *in)
{
	if (in->dir_made)
		return SISY_OK;
	sisy_err rc = sisy_fs_mkdir(in->fs, in->dir);
	if (rc == SISY_OK)
		rc = sisy_fs_sync_dir(in->fs, in->parent);
	in->dir_made = rc == SISY_OK;
	return rc;
}

static sisy_err on_chunk(sisy_node_snap_in *in, const Sisy__SnapshotChunk *ch)
{
	sisy_err rc = make_dir(in);
	while (rc == SISY_OK && in->cur < in->nfiles && ch->file > in->cur)
		rc = close_file(in);
	if (rc != SISY_OK)
		return rc;
	if (ch->file != in->cur || in->cur >= in->nfiles ||
	    ch->offset != in->off || ch->data.len == 0 ||
	    ch->data.len > in->files[in->cur].size - in->off)
		return sisy_errf(SISY_E_PROTO,
				 "node: a snapshot chunk out of order or "
				 "beyond its file");
	if (in->f == NULL && (rc = open_file(in)) != SISY_OK)
		return rc;
	rc = sisy_file_pwrite(in->f, ch->data.data, ch->data.len, in->off);
	if (rc == SISY_OK) {
		XXH64_update(in->h, ch->data.data, ch->data.len);
		in->off += ch->data.len;
	}
	return rc;
}

static sisy_err on_end(sisy_node_snap_in *in)
{
	sisy_err rc = make_dir(in);
	while (rc == SISY_OK && in->cur < in->nfiles)
		rc = close_file(in);
	if (rc == SISY_OK)
		rc = sisy_fs_sync_dir(in->fs, in->dir);
	if (rc == SISY_OK)
		in->complete = true;
	return rc;
}

sisy_err sisy_node_snap_in_frame(sisy_node_snap_in *in, const uint8_t *frame,
				 size_t len, bool *complete)
{
	*complete = false;
	if (in->err != SISY_OK || in->complete)
		return sisy_errf(SISY_E_PROTO,
				 "node: a frame after the snapshot ended");
	Sisy__PeerMessage *pm = sisy__peer_message__unpack(NULL, len, frame);
	sisy_err rc;
	if (pm == NULL)
		rc =
		    sisy_errf(SISY_E_PROTO, "node: a malformed snapshot frame");
	else if (pm->body_case == SISY__PEER_MESSAGE__BODY_SNAPSHOT_CHUNK)
		rc = on_chunk(in, pm->snapshot_chunk);
	else if (pm->body_case == SISY__PEER_MESSAGE__BODY_SNAPSHOT_END)
		rc = on_end(in);
	else
		rc = sisy_errf(SISY_E_PROTO,
			       "node: an unexpected frame in a snapshot");
	if (pm)
		sisy__peer_message__free_unpacked(pm, NULL);
	in->err = rc;
	*complete = in->complete;
	return rc;
}

/* ---- the loop side
 * ------------------------------------------------------------------ */

static void discard(sisy_node *n, sisy_node_snap_in *in)
{
	if (in->f) {
		sisy_file_close(in->f);
		in->f = NULL;
	}
	if (in->dir_made) {
		node_job *j = n->closing ? NULL : calloc(1, sizeof *j);
		if (j) {
			j->kind = JOB_RMDIR;
			j->g = in->g;
			snprintf(j->path, sizeof j->path, "%s", in->dir);
			node_apply_push(n, j);
		} else {
			node_rmdir_all(n->fs, in->dir);
		}
	}
	node_snap_in_free(in);
}

void sisy_node_snap_in_abort(sisy_node *n, sisy_node_snap_in *in)
{
	if (in != NULL)
		discard(n, in);
}

sisy_err sisy_node_snap_in_install(sisy_node *n, sisy_node_snap_in *in)
{
	node_group *g = in->g;
	sisy_raft_status before, after;
	sisy_err rc = SISY_OK;
	if (!in->complete)
		rc =
		    sisy_errf(SISY_E_INVAL, "node: the snapshot is incomplete");
	else if (n->failed || n->closing)
		rc = sisy_errf(SISY_E_FAILED, "node: stopped");
	else if (g->installing || g->staged != NULL)
		rc = sisy_errf(SISY_E_BUSY,
			       "node: group %" PRIu64
			       " is installing another snapshot",
			       g->id);
	if (rc != SISY_OK) {
		discard(n, in);
		return rc;
	}
	sisy_raft_msg m;
	memset(&m, 0, sizeof m);
	m.type = SISY_RAFT_MSG_SNAPSHOT;
	m.from = in->from;
	m.to = n->id;
	m.term = in->term;
	m.snapshot = in->meta;
	sisy_raft_get_status(g->raft, &before);
	rc = sisy_raft_step(g->raft, &m);
	sisy_raft_get_status(g->raft, &after);
	if (rc == SISY_OK && after.compaction.index == in->meta.index &&
	    before.compaction.index != in->meta.index) {
		g->staged = in; /* the next ready carries rd.snapshot */
		return SISY_OK;
	}
	discard(n, in);
	if (rc != SISY_OK)
		return rc;
	return sisy_errf(SISY_E_STALE,
			 "node: group %" PRIu64 " did not need the snapshot "
			 "at %" PRIu64,
			 g->id, m.snapshot.index);
}

void node_snap_in_installed(node_group *g, node_job *j)
{
	sisy_node *n = g->n;
	node_deferred *d = &g->deferred;
	if (j->err != SISY_OK) {
		sisy_errf(j->err, "%s", j->errmsg);
		node_fail(n, j->err, "installing a snapshot");
		return;
	}
	/* The engine holds the snapshot durably: record it in the log, then
	 * what the same ready carried after it. */
	node_wq_snapshot(n, g->id, d->snap.index, d->snap.term);
	node_wq_append(n, g->id, d->ents, d->n);
	if (d->has_hs)
		node_wq_hardstate(n, g->id, &d->hs);
	node_wq_persist(g, d->persist_id);
	node_book_members(n, &j->members);
	free(d->ents);
	free(d->mem);
	memset(d, 0, sizeof *d);
	node_snap_in_free(g->staged); /* its directory is the engine now */
	g->staged = NULL;
	g->installing = false;
	g->applied = j->applied;
	g->applied_term = j->applied_term;
	if (g->handed < g->applied)
		g->handed = g->applied;
	g->snapshots_installed++;
	node_reads_applied(g);
}
