/* snap.c — snapshot streams, each on a connection of its own, so that
 * megabytes of snapshot never queue ahead of heartbeats (srv_int.h,
 * peer.proto; sisyd/node makes and installs the snapshots).
 *
 * Sending (CK_SNAP_OUT). After each loop turn the node's outgoing
 * snapshots are taken (sisy_node_snap_out_next) and each gets a
 * connection to its follower. Once the handshake is done, the snapshot
 * thread produces one frame at a time (sisy_node_snap_out_frame reads the
 * checkpoint's files: off the loop); the loop seals it, and asks for the
 * next once less than SNAP_OUT_AHEAD bytes remain unsent. After the end
 * frame the receiver answers one SnapshotAck; its status, or the
 * connection's failure, goes to sisy_node_snap_out_done.
 *
 * Receiving (CK_SNAP_IN). The first frame (the header) starts the
 * transfer on the loop (sisy_node_snap_in_begin); every later frame is
 * written by the snapshot thread (sisy_node_snap_in_frame), in order; with
 * SNAP_IN_AHEAD frames waiting, the connection stops being read. Once the
 * end frame verified everything, the loop installs the snapshot and
 * answers the SnapshotAck, then closes.
 *
 * A transfer may outlive its connection while the thread still works on
 * one of its frames: it is finished (reported, aborted) when its last job
 * comes back. One thread serves every transfer, in order.
 */
#include "srv_int.h"

#include <pthread.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "peer.pb-c.h"
#include "sisy.pb-c.h"
#include "wire.h"

#define SNAP_OUT_AHEAD (4u << 20)
#define SNAP_IN_AHEAD  4

struct srv_snap {
	srv_conn *c; /* NULL once the connection is gone */
	bool sending;
	sisy_node_snap_out *so;
	sisy_node_snap_in *si;
	uint64_t to;
	size_t jobs;	/* with the thread */
	unsigned hold;	/* being handled on the loop: not freed */
	bool last_sent; /* sending: the end frame is queued */
	bool finished;	/* the outcome was reported */
	bool complete;	/* receiving: the end frame verified everything */
};

typedef struct snap_job {
	struct snap_job *next;
	srv_snap *t;
	sisy_buf data; /* sending: the frame made; receiving: the frame */
	sisy_err rc;
	char err[256];
	bool flag; /* sending: the last frame; receiving: complete */
} snap_job;

struct snap_worker {
	pthread_t th;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	snap_job *head, *tail;
	bool stop;
	pthread_mutex_t dmu;
	snap_job *dhead, *dtail;
	int efd;
	size_t chunk;
};

/* ------------------------------------------------------------ the thread */

static void *worker_main(void *arg)
{
	snap_worker *w = arg;
	/* named for top -H, perf and gdb */
	pthread_setname_np(pthread_self(), "sisy-snapshot");
	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (w->head == NULL && !w->stop)
			pthread_cond_wait(&w->cv, &w->mu);
		snap_job *j = w->head;
		if (j) {
			w->head = j->next;
			if (w->head == NULL)
				w->tail = NULL;
		}
		pthread_mutex_unlock(&w->mu);
		if (j == NULL)
			return NULL;
		srv_snap *t = j->t;
		if (t->sending)
			j->rc = sisy_node_snap_out_frame(t->so, w->chunk,
							 &j->data, &j->flag);
		else
			j->rc = sisy_node_snap_in_frame(t->si, j->data.data,
							j->data.len, &j->flag);
		if (j->rc != SISY_OK)
			snprintf(j->err, sizeof j->err, "%s", sisy_errmsg());
		j->next = NULL;
		pthread_mutex_lock(&w->dmu);
		bool was_empty = w->dhead == NULL;
		if (w->dtail)
			w->dtail->next = j;
		else
			w->dhead = j;
		w->dtail = j;
		pthread_mutex_unlock(&w->dmu);
		if (was_empty) {
			uint64_t one = 1;
			ssize_t n = write(w->efd, &one, sizeof one);
			(void)n;
		}
	}
}

static void submit(sisy_server *s, srv_snap *t, snap_job *j)
{
	snap_worker *w = s->sw;
	j->t = t;
	j->next = NULL;
	t->jobs++;
	pthread_mutex_lock(&w->mu);
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

sisy_err snap_start(sisy_server *s)
{
	snap_worker *w = calloc(1, sizeof *w);
	if (w == NULL)
		return sisy_errf(SISY_E_NOMEM, "snap.c: out of memory");
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_mutex_init(&w->dmu, NULL);
	w->chunk = s->cfg.snapshot_chunk_bytes;
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->sw = w;
	if (w->efd < 0)
		return sisy_errf(SISY_E_IO, "snap.c: eventfd: %s",
				 strerror(errno));
	if (pthread_create(&w->th, NULL, worker_main, w) != 0)
		return sisy_errf(SISY_E_INTERNAL,
				 "snap.c: cannot start the snapshot thread");
	w->started = true;
	return SISY_OK;
}

int snap_fd(sisy_server *s)
{
	return s->sw->efd;
}

void snap_stop(sisy_server *s)
{
	snap_worker *w = s->sw;
	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		w->stop = true;
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		pthread_join(w->th, NULL);
		w->started = false;
	}
	/* Jobs never started come back unfinished. */
	while (w->head) {
		snap_job *j = w->head;
		w->head = j->next;
		j->rc = sisy_errf(SISY_E_CLOSED, "snap.c: shutting down");
		snprintf(j->err, sizeof j->err, "shutting down");
		j->next = w->dhead;
		w->dhead = j;
	}
	w->tail = NULL;
	if (w->efd >= 0) {
		snap_drain(s);
		close(w->efd);
	}
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->dmu);
	free(w);
	s->sw = NULL;
}

/* ---------------------------------------------------------- transfers */

static void finish_out(sisy_server *s, srv_snap *t, sisy_err rc)
{
	if (!t->finished && t->so) {
		t->finished = true;
		if (rc != SISY_OK)
			sisy_log(s->log, SISY_LOG_WARN, "server",
				 "snapshot to node %" PRIu64 " failed: %s",
				 t->to, sisy_strerror(rc));
		else
			sisy_log(s->log, SISY_LOG_INFO, "server",
				 "snapshot sent to node %" PRIu64, t->to);
		sisy_node_snap_out_done(s->node, t->so, rc);
		t->so = NULL;
	}
}

static void finish_in(sisy_server *s, srv_snap *t)
{
	if (t->si) {
		sisy_node_snap_in_abort(s->node, t->si);
		t->si = NULL;
	}
	t->finished = true;
}

/* Frees t once neither its connection nor the thread refers to it. */
static void maybe_free(sisy_server *s, srv_snap *t)
{
	if (t->c != NULL || t->jobs > 0 || t->hold > 0)
		return;
	if (t->sending)
		finish_out(s, t, SISY_E_CONN);
	else
		finish_in(s, t);
	free(t);
}

static void send_ack(sisy_server *s, srv_conn *c, sisy_err rc, const char *msg)
{
	Sisy__SnapshotAck ack = SISY__SNAPSHOT_ACK__INIT;
	ack.status = (Sisy__Status)sisy_wire_err_status(rc);
	ack.message = (char *)(msg ? msg : "");
	Sisy__PeerMessage pm = SISY__PEER_MESSAGE__INIT;
	pm.body_case = SISY__PEER_MESSAGE__BODY_SNAPSHOT_ACK;
	pm.snapshot_ack = &ack;
	conn_send_msg(s, c, &pm);
	c->closing = true; /* closes once the ack is written */
	srv_conn_want_flush(s, c);
}

/* A snapshot goes only to a node our Raft connection reaches: else it
 * fails at once (the node asks again later), instead of dialing a node
 * that is down at the pace the node retries. */
void snap_take_outgoing(sisy_server *s)
{
	sisy_node_snap_out *so;
	char addr[SISY_NODE_MAX_ADDR + 1];
	while ((so = sisy_node_snap_out_next(s->node)) != NULL) {
		uint64_t to = sisy_node_snap_out_to(so);
		srv_peer *p = peer_get(s, to, false);
		srv_snap *t = NULL;
		srv_conn *c = NULL;
		if (p && p->out && p->out->state == CONN_READY &&
		    peer_addr(s, to, addr, sizeof addr) &&
		    (t = calloc(1, sizeof *t)) != NULL)
			c = conn_dial(s, addr, CK_SNAP_OUT, to);
		if (c == NULL) {
			if (p == NULL || p->out == NULL)
				peer_send_msg(s, to, NULL, 0); /* dial */
			sisy_log(s->log, SISY_LOG_DEBUG, "server",
				 "snapshot for node %" PRIu64
				 ": not connected to it",
				 to);
			sisy_node_snap_out_done(s->node, so, SISY_E_CONN);
			free(t);
			continue;
		}
		t->sending = true;
		t->so = so;
		t->to = to;
		t->c = c;
		c->snap = t;
		sisy_log(s->log, SISY_LOG_INFO, "server",
			 "sending a snapshot to node %" PRIu64 " at %s", to,
			 addr);
	}
}

static void next_frame(sisy_server *s, srv_snap *t)
{
	if (t->jobs > 0 || t->last_sent || t->finished || t->c == NULL ||
	    conn_unsent(t->c) >= SNAP_OUT_AHEAD)
		return;
	snap_job *j = calloc(1, sizeof *j);
	if (j == NULL) {
		srv_conn_close(s, t->c, "out of memory");
		return;
	}
	submit(s, t, j);
}

void snap_out_ready(sisy_server *s, srv_conn *c)
{
	if (c->snap)
		next_frame(s, c->snap);
}

void snap_on_writable(sisy_server *s, srv_conn *c)
{
	if (c->snap && c->snap->sending)
		next_frame(s, c->snap);
}

static void out_job_done(sisy_server *s, srv_snap *t, snap_job *j)
{
	if (t->c == NULL || t->finished)
		return;
	if (j->rc != SISY_OK) {
		sisy_log(s->log, SISY_LOG_WARN, "server",
			 "snapshot to node %" PRIu64 ": %s", t->to, j->err);
		finish_out(s, t, j->rc);
		srv_conn_close(s, t->c, "snapshot failed");
		return;
	}
	conn_send_frame(s, t->c, j->data.data, j->data.len, true);
	srv_conn_want_flush(s, t->c);
	if (j->flag)
		t->last_sent = true;
	else
		next_frame(s, t);
}

static void in_job_done(sisy_server *s, srv_snap *t, snap_job *j)
{
	srv_conn *c = t->c;
	if (c == NULL || t->finished)
		return;
	if (j->rc != SISY_OK) {
		sisy_log(s->log, SISY_LOG_WARN, "server",
			 "snapshot from node %" PRIu64 ": %s", c->peer_id,
			 j->err);
		finish_in(s, t);
		send_ack(s, c, j->rc, j->err);
		return;
	}
	if (c->paused && t->jobs < SNAP_IN_AHEAD / 2) {
		c->paused = false;
		srv_conn_update_events(s, c);
	}
	if (!j->flag)
		return;
	t->complete = true;
	if (t->jobs > 0)
		return; /* frames after the end: refused when they return */
	sisy_node_snap_in *si = t->si;
	t->si = NULL;
	t->finished = true;
	sisy_err rc = sisy_node_snap_in_install(s->node, si);
	char msg[256];
	snprintf(msg, sizeof msg, "%s", rc == SISY_OK ? "" : sisy_errmsg());
	sisy_log(s->log, rc == SISY_OK ? SISY_LOG_INFO : SISY_LOG_WARN,
		 "server", "snapshot from node %" PRIu64 ": %s", c->peer_id,
		 rc == SISY_OK	      ? "installed"
		 : rc == SISY_E_STALE ? "not needed any more"
				      : msg);
	/* "Not needed any more" is a success for the sender too. */
	send_ack(s, c, rc == SISY_E_STALE ? SISY_OK : rc, msg);
}

void snap_drain(sisy_server *s)
{
	snap_worker *w = s->sw;
	uint64_t v;
	ssize_t n = read(w->efd, &v, sizeof v);
	(void)n;
	pthread_mutex_lock(&w->dmu);
	snap_job *j = w->dhead;
	w->dhead = w->dtail = NULL;
	pthread_mutex_unlock(&w->dmu);
	while (j) {
		snap_job *next = j->next;
		srv_snap *t = j->t;
		t->jobs--;
		t->hold++;
		if (s->closing && t->c != NULL)
			srv_conn_close(s, t->c, NULL);
		else if (t->sending)
			out_job_done(s, t, j);
		else
			in_job_done(s, t, j);
		t->hold--;
		sisy_buf_free(&j->data);
		free(j);
		maybe_free(s, t);
		j = next;
	}
}

/* A frame on a snapshot connection: the receiver's frames, or the ack. */
void snap_on_frame(sisy_server *s, srv_conn *c, sisy_slice msg)
{
	srv_snap *t = c->snap;
	if (c->kind == CK_SNAP_OUT) {
		Sisy__PeerMessage *pm =
		    sisy__peer_message__unpack(NULL, msg.len, msg.data);
		sisy_err rc = SISY_E_PROTO;
		if (pm &&
		    pm->body_case == SISY__PEER_MESSAGE__BODY_SNAPSHOT_ACK) {
			rc = sisy_wire_status_err(pm->snapshot_ack->status);
			if (rc != SISY_OK)
				sisy_log(s->log, SISY_LOG_WARN, "server",
					 "node %" PRIu64
					 " refused the snapshot: %.200s",
					 c->peer_id, pm->snapshot_ack->message);
		}
		if (pm)
			sisy__peer_message__free_unpacked(pm, NULL);
		if (t)
			finish_out(s, t, rc);
		srv_conn_close(s, c, "snapshot done");
		return;
	}
	if (t == NULL) {
		t = calloc(1, sizeof *t);
		if (t == NULL) {
			srv_conn_close(s, c, "out of memory");
			return;
		}
		t->c = c;
		c->snap = t;
		sisy_err rc =
		    sisy_node_snap_in_begin(s->node, msg.data, msg.len, &t->si);
		if (rc != SISY_OK) {
			t->si = NULL;
			t->finished = true;
			send_ack(s, c, rc, sisy_errmsg());
		}
		return;
	}
	if (t->finished || t->complete) {
		srv_conn_close(s, c, "a frame after the snapshot's end");
		return;
	}
	snap_job *j = calloc(1, sizeof *j);
	if (j == NULL || sisy_buf_set(&j->data, msg.data, msg.len) != SISY_OK) {
		free(j);
		srv_conn_close(s, c, "out of memory");
		return;
	}
	submit(s, t, j);
	if (t->jobs >= SNAP_IN_AHEAD && !c->paused) {
		c->paused = true;
		srv_conn_update_events(s, c);
	}
}

void snap_closed(sisy_server *s, srv_conn *c)
{
	srv_snap *t = c->snap;
	c->snap = NULL;
	if (t == NULL)
		return;
	t->c = NULL;
	maybe_free(s, t);
}
