/* server.c — the event loop (epoll, level-triggered), the listener,
 * timers, start-up and graceful shutdown (server.h, srv_int.h).
 *
 * One loop turn: wait (until the next tick at most) -> handle ready fds
 * (sockets, the read pool's and the snapshot thread's completions, the
 * node's log and apply fds, the tick timer) -> sisy_node_process() (its
 * callbacks answer writes and reads, its send callback queues Raft frames
 * per peer) -> hand outgoing snapshots to their connections -> every
 * 100 ms sweep deadlines -> hand the turn's reads to the pool -> write
 * every connection's queued output once. Nothing on the loop blocks: engine
 * reads run on the read pool, snapshot files on the snapshot thread, the
 * Raft log and the state machine on the node's threads; sockets are
 * non-blocking. A storm of handshakes is bounded per turn
 * (handshake_budget), so logged-in clients and peers keep being served.
 *
 * Ticks come from a timerfd every tick_ms; a turn that was late by many
 * ticks counts at most two (a stalled process must not fire every
 * election timer at once when it wakes up).
 *
 * Shutdown (SIGTERM): a leader first hands its leadership over (bounded by
 * transfer_timeout_ms), then the server stops accepting and reading client
 * requests, finishes what is in flight (bounded by shutdown_timeout_ms)
 * while peers keep talking, and closes the node.
 */
#include "srv_int.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "clock.h"

#define SWEEP_MS	    100
#define HANDSHAKES_PER_ITER 64
#define MAX_EVENTS	    256
#define MAX_TICKS_PER_TURN  2
#define PEER_HS_MS	    2000 /* a node's handshake, either side */

/* epoll data: a connection pointer, or these sentinels. */
static char listen_tag, event_tag, timer_tag, log_tag, apply_tag, snap_tag;

static sisy_err listen_on(sisy_server *s)
{
	char host[256], port[16];
	const char *colon = strrchr(s->cfg.listen, ':');
	if (colon == NULL)
		return sisy_errf(SISY_E_INVAL,
				 "server.c: listen must be host:port, not %s",
				 s->cfg.listen);
	size_t hl = (size_t)(colon - s->cfg.listen);
	if (hl >= sizeof host)
		return sisy_errf(SISY_E_INVAL, "server.c: host too long");
	memcpy(host, s->cfg.listen, hl);
	host[hl] = '\0';
	snprintf(port, sizeof port, "%s", colon + 1);
	char *h = host;
	if (h[0] == '[') {
		h++;
		h[strcspn(h, "]")] = '\0';
	}
	struct addrinfo hints = {0}, *res = NULL;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	int gai = getaddrinfo(*h ? h : NULL, port, &hints, &res);
	if (gai != 0)
		return sisy_errf(SISY_E_INVAL,
				 "server.c: cannot resolve %s: %s",
				 s->cfg.listen, gai_strerror(gai));
	int fd = socket(res->ai_family,
			SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	sisy_err rc = SISY_OK;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 ||
	    listen(fd, 1024) != 0) {
		rc = sisy_errf(SISY_E_IO, "server.c: cannot listen on %s: %s",
			       s->cfg.listen, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(res);
		return rc;
	}
	freeaddrinfo(res);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	getsockname(fd, (struct sockaddr *)&ss, &sl);
	s->port = ntohs(ss.ss_family == AF_INET6
			    ? ((struct sockaddr_in6 *)&ss)->sin6_port
			    : ((struct sockaddr_in *)&ss)->sin_port);
	s->lfd = fd;
	return SISY_OK;
}

static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* A user was deleted or changed role (on_user_change, inside
 * sisy_node_process): its sessions end once this turn's answers are out,
 * so the admin who asked gets an answer even about their own user. */
static void on_user_change(void *ctx, const char *user)
{
	sisy_server *s = ctx;
	if (sisy_buf_append(&s->end_users, user, strlen(user) + 1) != SISY_OK)
		handler_end_sessions(s, user);
}

static void end_sessions(sisy_server *s)
{
	size_t off = 0;
	while (off < s->end_users.len) {
		const char *u = (const char *)s->end_users.data + off;
		handler_end_sessions(s, u);
		off += strlen(u) + 1;
	}
	sisy_buf_clear(&s->end_users);
}

/* The identity (trust), the cluster key, and the secrets derived from it:
 * the fake-salt key is the same on every node (derived from the cluster
 * key every member holds), so asking several nodes about an unknown user
 * gives the same salt, as it would for a real one. */
static sisy_err load_keys(sisy_server *s)
{
	const char *dir = s->cfg.data_dir;
	sisy_err rc = sisy_trust_load_node(dir, &s->id);
	if (rc == SISY_E_NOTFOUND)
		return sisy_errf(rc,
				 "%s holds no node (no node.identity): create "
				 "a cluster with `sisyd init -D %s`, or join "
				 "one with `sisyd init --join TOKEN -D %s`. A "
				 "node that lost its data cannot come back as "
				 "its old member: remove it (CLUSTER REMOVE "
				 "NODE) and join it again with a new token",
				 dir, dir, dir);
	if (rc != SISY_OK)
		return rc;
	rc = sisy_trust_load_cluster(dir, &s->ck);
	if (rc == SISY_E_NOTFOUND)
		return sisy_errf(rc,
				 "%s has no cluster.key (every member holds "
				 "the cluster signing key: docs/security.md)",
				 dir);
	if (rc != SISY_OK)
		return rc;
	if (sodium_memcmp(s->ck.pk, s->id.cluster_pk, SISY_SIGN_PK) != 0 ||
	    sodium_memcmp(s->ck.cluster_id, s->id.cluster_id,
			  SISY_CLUSTER_ID) != 0)
		return sisy_errf(SISY_E_CORRUPT,
				 "%s: cluster.key and node.identity belong to "
				 "different clusters",
				 dir);
	static const char tag[] = "sisy-fake-salt-v1";
	crypto_generichash(s->fake_salt_key, sizeof s->fake_salt_key,
			   (const uint8_t *)tag, sizeof tag - 1, s->ck.sk,
			   crypto_generichash_KEYBYTES_MAX);
	uint8_t sk[SISY_AUTH_SK];
	crypto_sign_keypair(s->dummy_pk, sk);
	sodium_memzero(sk, sizeof sk);
	return SISY_OK;
}

static sisy_err open_node(sisy_server *s)
{
	sisy_node_opts o;
	sisy_node_opts_default(&o);
	o.dir = s->cfg.data_dir;
	o.logger = s->log;
	o.send = peer_send;
	o.send_ctx = s;
	o.on_user_change = on_user_change;
	o.user_ctx = s;
	o.election_ticks = s->cfg.election_ticks;
	o.heartbeat_ticks = s->cfg.heartbeat_ticks;
	o.compact_entries = s->cfg.compact_entries;
	o.compact_keep = s->cfg.compact_keep;
	o.memtable_bytes = s->cfg.memtable_bytes;
	o.block_cache_bytes = s->cfg.block_cache_bytes;
	o.compaction_nice = (int)s->cfg.compaction_nice;
	o.unsafe_no_fsync = s->cfg.unsafe_no_fsync;
	if (o.heartbeat_ticks >= o.election_ticks)
		return sisy_errf(SISY_E_INVAL,
				 "heartbeat_ticks (%u) must be below "
				 "election_ticks (%u)",
				 o.heartbeat_ticks, o.election_ticks);
	sisy_err rc = sisy_node_open(&o, &s->node);
	if (rc != SISY_OK)
		return rc;
	uint8_t cid[SISY_NODE_CLUSTER_ID];
	sisy_node_cluster_id(s->node, cid);
	if (sisy_node_id(s->node) != s->id.node_id ||
	    memcmp(cid, s->id.cluster_id, sizeof cid) != 0)
		return sisy_errf(
		    SISY_E_CORRUPT,
		    "%s: the node's data (node %" PRIu64
		    ") does not match its identity (node %" PRIu64 ")",
		    s->cfg.data_dir, sisy_node_id(s->node), s->id.node_id);
	return SISY_OK;
}

static sisy_err start_timer(sisy_server *s)
{
	s->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (s->tfd < 0)
		return sisy_errf(SISY_E_IO, "server.c: timerfd: %s",
				 strerror(errno));
	struct itimerspec its = {0};
	its.it_interval.tv_sec = s->cfg.tick_ms / 1000;
	its.it_interval.tv_nsec = (long)(s->cfg.tick_ms % 1000) * 1000000;
	its.it_value = its.it_interval;
	timerfd_settime(s->tfd, 0, &its, NULL);
	return SISY_OK;
}

static void watch(sisy_server *s, int fd, void *tag)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = tag};
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev);
}

sisy_err sisy_server_open(const sisy_server_config *cfg,
			  const sisy_logger *logger, sisy_server **out)
{
	sisy_server *s = calloc(1, sizeof *s);
	if (s == NULL)
		return sisy_errf(SISY_E_NOMEM, "server.c: out of memory");
	s->cfg = *cfg;
	s->log = logger;
	s->epfd = s->lfd = s->evfd = s->tfd = -1;
	pthread_mutex_init(&s->done_mu, NULL);
	s->started_ms = s->turn_ms = sisy_now_ms();
	snprintf(s->role_name, sizeof s->role_name, "follower");
	sisy_err rc = SISY_OK;
	if (sodium_init() < 0) {
		rc = sisy_errf(SISY_E_INTERNAL, "server.c: libsodium init");
		goto fail;
	}
	if (cfg->data_dir[0] == '\0') {
		rc = sisy_errf(SISY_E_INVAL,
			       "no data directory (-D DIR); create one with "
			       "`sisyd init -D DIR`");
		goto fail;
	}
	if ((rc = load_keys(s)) != SISY_OK)
		goto fail;
	s->rl = ratelimit_new(cfg->auth_free_failures, cfg->auth_delay_ms,
			      cfg->auth_delay_max_ms);
	if (s->rl == NULL) {
		rc = sisy_errf(SISY_E_NOMEM, "server.c: out of memory");
		goto fail;
	}
	raise_fd_limit();
	if ((rc = listen_on(s)) != SISY_OK)
		goto fail;
	if ((rc = open_node(s)) != SISY_OK)
		goto fail;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->epfd < 0 || s->evfd < 0) {
		rc = sisy_errf(SISY_E_IO, "server.c: epoll/eventfd: %s",
			       strerror(errno));
		goto fail;
	}
	if ((rc = start_timer(s)) != SISY_OK ||
	    (rc = work_start(s)) != SISY_OK || (rc = snap_start(s)) != SISY_OK)
		goto fail;
	watch(s, s->lfd, &listen_tag);
	watch(s, s->evfd, &event_tag);
	watch(s, s->tfd, &timer_tag);
	watch(s, sisy_node_log_fd(s->node), &log_tag);
	watch(s, sisy_node_apply_fd(s->node), &apply_tag);
	watch(s, snap_fd(s), &snap_tag);
	cluster_refresh_role(s);
	*out = s;
	return SISY_OK;
fail:;
	char msg[1024];
	snprintf(msg, sizeof msg, "%s", sisy_errmsg());
	sisy_server_free(s);
	return sisy_errf(rc, "%s", msg);
}

uint16_t sisy_server_port(const sisy_server *s)
{
	return s->port;
}

void sisy_server_stop(sisy_server *s)
{
	uint64_t one = 1;
	s->stop_requested = 1;
	ssize_t w = write(s->evfd, &one, sizeof one);
	(void)w;
}

/* ---------------------------------------------------------- connections */

void srv_conn_update_events(sisy_server *s, srv_conn *c)
{
	if (c->dead)
		return;
	bool want_read, want_write = c->out_off < c->out.len;
	if (c->state == CONN_CONNECTING) {
		want_read = false;
		want_write = true;
	} else if (c->kind == CK_CLIENT) {
		want_read = !c->closing && c->state != CONN_PENALTY &&
			    c->nreq < s->cfg.max_pipeline &&
			    c->queued_bytes < s->cfg.max_request_bytes &&
			    c->out.len - c->out_off < s->cfg.max_output_bytes &&
			    !s->stop_requested;
	} else {
		want_read = !c->closing && !c->paused;
	}
	if (want_read == c->reading && want_write == c->writing)
		return;
	struct epoll_event ev = {
	    .events = (want_read ? EPOLLIN : 0) | (want_write ? EPOLLOUT : 0),
	    .data.ptr = c,
	};
	epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev);
	c->reading = want_read;
	c->writing = want_write;
}

void srv_unauth_remove(sisy_server *s, srv_conn *c)
{
	if (!c->in_unauth)
		return;
	if (c->uprev)
		c->uprev->unext = c->unext;
	else
		s->unauth_head = c->unext;
	if (c->unext)
		c->unext->uprev = c->uprev;
	else
		s->unauth_tail = c->uprev;
	c->uprev = c->unext = NULL;
	c->in_unauth = false;
	s->nunauth--;
}

static void conn_free(sisy_server *s, srv_conn *c)
{
	assert(c->dead && c->running_reads == 0 && c->running_writes == 0);
	while (c->head) {
		srv_req *r = c->head;
		c->head = r->next;
		handler_req_free(r);
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	sisy_frame_reader_free(&c->rd);
	sisy_session_wipe(&c->sess);
	sisy_buf_free(&c->out);
	sisy_buf_free(&c->plain);
	sisy_buf_free(&c->rbatch);
	if (c->hs) {
		sodium_memzero(c->hs, sizeof *c->hs);
		free(c->hs);
	}
	sodium_memzero(&c->login, sizeof c->login);
	free(c);
}

void srv_conn_close(sisy_server *s, srv_conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why && SISY_LOG_ENABLED(s->log, SISY_LOG_DEBUG))
		sisy_log(s->log, SISY_LOG_DEBUG, "server",
			 "closing connection %s %s (%s): %s",
			 c->kind == CK_CLIENT ? "from" : "with", c->addr,
			 c->user[0] ? c->user : "not logged in", why);
	srv_unauth_remove(s, c);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->dead = true;
	s->ndead++;
	switch (c->kind) {
	case CK_PEER_OUT:
		peer_out_closed(s, c);
		break;
	case CK_SNAP_IN:
	case CK_SNAP_OUT:
		snap_closed(s, c);
		break;
	case CK_JOIN:
		join_closed(s, c);
		break;
	default:
		break;
	}
}

void srv_conn_want_flush(sisy_server *s, srv_conn *c)
{
	if (c->dirty || c->dead)
		return;
	c->dirty = true;
	c->dnext = s->dirty;
	s->dirty = c;
}

static void flush_dirty(sisy_server *s)
{
	while (s->dirty) {
		srv_conn *c = s->dirty;
		s->dirty = c->dnext;
		c->dirty = false;
		c->dnext = NULL;
		if (!c->dead && c->state != CONN_CONNECTING) {
			conn_seal_batch(s, c);
			conn_on_writable(s, c);
		}
	}
}

/* Frees closed connections with nothing in flight. Only here, at the end
 * of an iteration, so no pointer in this iteration's epoll events or
 * lists can dangle. */
static void reap(sisy_server *s)
{
	srv_conn *next;
	if (s->ndead == 0)
		return;
	for (srv_conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->dead && c->running_reads == 0 &&
		    c->running_writes == 0) {
			conn_free(s, c);
			s->ndead--;
		}
	}
}

srv_conn *srv_conn_add(sisy_server *s, int fd, conn_kind kind, conn_state state)
{
	srv_conn *c = calloc(1, sizeof *c);
	if (c == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->kind = kind;
	c->state = state;
	c->accepted_ms = c->active_ms = sisy_now_ms();
	sisy_frame_reader_init(&c->rd, SISY_FRAME_MAX_PRELOGIN);
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	bool connecting = state == CONN_CONNECTING;
	struct epoll_event ev = {.events = connecting ? EPOLLOUT : EPOLLIN,
				 .data.ptr = c};
	c->reading = !connecting;
	c->writing = connecting;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		c->reading = c->writing = false;
		srv_conn_close(s, c, "epoll_ctl failed");
		return NULL;
	}
	return c;
}

static void accept_one(sisy_server *s, int fd, struct sockaddr_storage *ss)
{
	if (s->nconns >= s->cfg.max_connections) {
		s->n_refused++;
		close(fd);
		return;
	}
	/* Full of strangers: drop the oldest stranger, not the newcomer, so
	 * stalled connections can never lock real clients out. */
	if (s->nunauth >= s->cfg.max_unauth && s->unauth_head) {
		s->n_evicted++;
		srv_conn_close(s, s->unauth_head,
			       "too many unauthenticated connections");
	}
	srv_conn *c = srv_conn_add(s, fd, CK_CLIENT, CONN_HELLO);
	if (c == NULL)
		return;
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)ss)->sin_addr,
			  c->addr, sizeof c->addr);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ss)->sin6_addr,
			  c->addr, sizeof c->addr);
	else
		snprintf(c->addr, sizeof c->addr, "local");
	c->uprev = s->unauth_tail;
	if (s->unauth_tail)
		s->unauth_tail->unext = c;
	else
		s->unauth_head = c;
	s->unauth_tail = c;
	c->in_unauth = true;
	s->nunauth++;
	s->n_accepted++;
}

static void on_accept(sisy_server *s)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		int fd = accept4(s->lfd, (struct sockaddr *)&ss, &sl,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				sisy_log(s->log, SISY_LOG_WARN, "server",
					 "out of file descriptors; raise "
					 "ulimit -n or lower max_connections");
			return;
		}
		accept_one(s, fd, &ss);
	}
}

/* How long a connection may take to become READY. */
static uint64_t handshake_limit(sisy_server *s, const srv_conn *c)
{
	if (c->kind == CK_CLIENT || c->kind == CK_JOIN)
		return s->cfg.handshake_timeout_ms;
	return PEER_HS_MS < s->cfg.handshake_timeout_ms
		   ? PEER_HS_MS
		   : s->cfg.handshake_timeout_ms;
}

/* How long a node's connection may stay unable to write. Longer than an
 * election timeout, so a busy moment never costs a reconnect. */
static uint64_t peer_stall_limit(sisy_server *s)
{
	uint64_t ms = 10ull * s->cfg.election_ticks * s->cfg.tick_ms;
	return ms < 1000 ? 1000 : ms;
}

/* Every SWEEP_MS: deadlines of every connection. */
static void sweep(sisy_server *s, uint64_t now)
{
	srv_conn *next;
	for (srv_conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->dead)
			continue;
		const char *why = NULL;
		uint64_t stall = c->kind == CK_CLIENT ? s->cfg.io_timeout_ms
						      : peer_stall_limit(s);
		if (c->state == CONN_PENALTY) {
			if (now >= c->penalty_ms)
				conn_penalty_expired(s, c);
			continue;
		}
		if (c->state != CONN_READY &&
		    now - c->accepted_ms > handshake_limit(s, c))
			why = "handshake deadline passed";
		else if (c->partial_ms && now - c->partial_ms > stall)
			why = "a frame stayed half-sent too long";
		else if (c->stall_ms && now - c->stall_ms > stall)
			why = "the other end stopped reading";
		else if (s->cfg.idle_timeout_ms && c->kind == CK_CLIENT &&
			 c->state == CONN_READY && c->nreq == 0 &&
			 now - c->active_ms > s->cfg.idle_timeout_ms)
			why = "idle";
		if (why) {
			s->n_timeouts++;
			srv_conn_close(s, c, why);
		}
	}
}

static void drain_done(sisy_server *s)
{
	uint64_t v;
	ssize_t r = read(s->evfd, &v, sizeof v);
	(void)r;
	for (srv_req *q = work_take_done(s); q;) {
		srv_req *next = q->qnext;
		handler_complete(s, q);
		q = next;
	}
}

/* Everything driven by Raft time. */
static void on_tick(sisy_server *s)
{
	/* A leader change refreshes it at once (process_node); the rest
	 * (learner promoted, removed) can wait a few ticks. */
	if (s->ticks - s->role_ticks >= 10) {
		s->role_ticks = s->ticks;
		cluster_refresh_role(s);
	}
	parked_tick(s);
	fwd_tick(s);
	join_tick(s);
	peer_tick(s);
}

static void on_timer(sisy_server *s)
{
	uint64_t n = 0;
	if (read(s->tfd, &n, sizeof n) != (ssize_t)sizeof n || n == 0)
		return;
	if (n > MAX_TICKS_PER_TURN)
		n = MAX_TICKS_PER_TURN;
	for (uint64_t i = 0; i < n; i++) {
		sisy_node_tick(s->node);
		s->ticks++;
	}
	on_tick(s);
}

/* The node's pending work, and what follows from it. */
static void process_node(sisy_server *s)
{
	if (s->node_failed)
		return;
	s->defer_dispatch = true;
	sisy_err rc = sisy_node_process(s->node);
	s->defer_dispatch = false;
	handler_run_completed(s);
	if (rc == SISY_E_FAILED) {
		sisy_log(s->log, SISY_LOG_ERROR, "server",
			 "the node failed (%s); stopping: restart sisyd "
			 "after fixing the cause",
			 sisy_errmsg());
		s->node_failed = true;
		s->stop_requested = 1;
		return;
	}
	if (s->end_users.len)
		end_sessions(s);
	snap_take_outgoing(s);
	uint64_t leader = sisy_node_leader(s->node, SRV_GROUP, NULL, 0);
	if (leader != s->leader_seen) {
		/* A new leader: whatever waited for one goes now, not at the
		 * next tick. */
		s->leader_seen = leader;
		cluster_refresh_role(s);
		if (leader != 0) {
			fwd_leader_changed(s, leader);
			parked_tick(s);
		}
	}
}

static void iterate(sisy_server *s, int timeout_ms, uint64_t *last_sweep)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(s->epfd, evs, MAX_EVENTS, timeout_ms);
	s->turn_ms = sisy_now_ms();
	s->handshake_budget = HANDSHAKES_PER_ITER;
	/* The node's news first: entries made durable go to the apply
	 * thread and applied ones answer their clients before this turn's
	 * new requests are read and decoded, so the apply thread and the
	 * clients work while the loop does (a write's round trip crosses
	 * the loop three times; docs/server.md). */
	for (int i = 0; i < n; i++) {
		void *p = evs[i].data.ptr;
		if (p == &log_tag || p == &apply_tag) {
			process_node(s);
			flush_dirty(s);
			break;
		}
	}
	for (int i = 0; i < n; i++) {
		void *p = evs[i].data.ptr;
		if (p == &listen_tag) {
			/* Still while stopping: the other nodes may need to
			 * reach us during the handover (conn.c turns clients
			 * away then). */
			on_accept(s);
			continue;
		}
		if (p == &event_tag) {
			drain_done(s);
			continue;
		}
		if (p == &timer_tag) {
			on_timer(s);
			continue;
		}
		if (p == &log_tag || p == &apply_tag)
			continue; /* process_node below */
		if (p == &snap_tag) {
			snap_drain(s);
			continue;
		}
		srv_conn *c = p;
		if (c->dead)
			continue;
		if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_on_writable(s, c);
		if (!c->dead &&
		    (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			conn_on_readable(s, c);
	}
	process_node(s);
	uint64_t now = sisy_now_ms();
	if (now - *last_sweep >= SWEEP_MS) {
		*last_sweep = now;
		sweep(s, now);
	}
	work_flush(s);
	flush_dirty(s);
	reap(s);
}

static size_t client_in_flight(sisy_server *s)
{
	size_t n = 0;
	for (srv_conn *c = s->conns; c; c = c->next)
		if (c->kind == CK_CLIENT)
			n += c->running_reads + c->running_writes;
	return n + s->nfwd;
}

static size_t unsent(sisy_server *s)
{
	size_t n = 0;
	for (srv_conn *c = s->conns; c; c = c->next)
		if (!c->dead && c->kind == CK_CLIENT && c->out_off < c->out.len)
			n++;
	return n;
}

/* SIGTERM on a leader: hand leadership over first, so the cluster does
 * not wait for an election timeout. */
static void hand_over(sisy_server *s, uint64_t *last_sweep)
{
	uint64_t start = sisy_now_ms();
	uint64_t deadline = start + s->cfg.transfer_timeout_ms;
	bool leading = false;
	s->draining = true;
	while (!s->node_failed && sisy_node_shutdown_step(s->node)) {
		leading = true;
		if (sisy_now_ms() >= deadline) {
			sisy_log(s->log, SISY_LOG_WARN, "server",
				 "leadership not handed over within %u ms; "
				 "stopping anyway (the others elect a leader "
				 "after their election timeout)",
				 s->cfg.transfer_timeout_ms);
			return;
		}
		iterate(s, (int)s->cfg.tick_ms, last_sweep);
	}
	if (leading)
		sisy_log(s->log, SISY_LOG_INFO, "server",
			 "leadership handed over in %" PRIu64 " ms",
			 sisy_now_ms() - start);
}

sisy_err sisy_server_run(sisy_server *s)
{
	uint64_t last_sweep = sisy_now_ms();
	sisy_log(s->log, SISY_LOG_INFO, "server",
		 "node %" PRIu64 " serving on %s (port %u, advertised as %s), "
		 "data in %s",
		 s->id.node_id, s->cfg.listen, s->port,
		 sisy_config_advertise(&s->cfg), s->cfg.data_dir);
	if (s->cfg.port_file[0]) {
		char text[16];
		int n = snprintf(text, sizeof text, "%u\n", s->port);
		sisy_err rc = sisy_trust_write_file(s->cfg.port_file, text,
						    (size_t)n, 0644);
		if (rc != SISY_OK)
			return rc;
	}
	while (!s->stop_requested)
		iterate(s, (int)s->cfg.tick_ms, &last_sweep);
	if (s->node_failed)
		return sisy_errf(SISY_E_FAILED,
				 "the node failed; see the log above");

	sisy_log(s->log, SISY_LOG_INFO, "server", "shutting down");
	hand_over(s, &last_sweep);
	/* Graceful: no new connections or client requests; answer what is in
	 * flight; give the replies a bounded time to leave. Peers keep being
	 * served meanwhile (a write in flight needs its quorum). */
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
	close(s->lfd);
	s->lfd = -1;
	for (srv_conn *c = s->conns; c; c = c->next)
		srv_conn_update_events(s, c);
	uint64_t deadline = sisy_now_ms() + s->cfg.shutdown_timeout_ms;
	while ((client_in_flight(s) > 0 || unsent(s) > 0) &&
	       sisy_now_ms() < deadline)
		iterate(s, 20, &last_sweep);
	srv_conn *next;
	for (srv_conn *c = s->conns; c; c = next) {
		next = c->next;
		srv_conn_close(s, c, "server shutting down");
	}
	return SISY_OK;
}

void sisy_server_free(sisy_server *s)
{
	if (s == NULL)
		return;
	s->closing = true;
	work_stop(s);
	snap_stop(s);
	/* Workers are joined: everything still queued came back. */
	if (s->evfd >= 0)
		drain_done(s);
	srv_conn *next;
	for (srv_conn *c = s->conns; c; c = next) {
		next = c->next;
		srv_conn_close(s, c, NULL);
	}
	/* Closing the node answers what waits on it (the connections are
	 * dead: the answers are dropped), then nothing else can call back. */
	if (s->node) {
		sisy_err rc = sisy_node_close(s->node);
		if (rc != SISY_OK)
			sisy_log(s->log, SISY_LOG_ERROR, "server",
				 "closing the node: %s", sisy_errmsg());
		s->node = NULL;
	}
	while (s->parked) {
		srv_req *r = s->parked;
		unpark(s, r);
		handler_fail(r, SISY_E_CLOSED, "the server is shutting down");
		handler_complete(s, r);
	}
	fwd_free_all(s);
	reap(s);
	peer_free_all(s);
	ratelimit_free(s->rl);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->evfd >= 0)
		close(s->evfd);
	if (s->tfd >= 0)
		close(s->tfd);
	pthread_mutex_destroy(&s->done_mu);
	sisy_buf_free(&s->end_users);
	sisy_buf_free(&s->loop_val);
	handler_spare_free(s);
	sodium_memzero(&s->id, sizeof s->id);
	sodium_memzero(&s->ck, sizeof s->ck);
	sodium_memzero(s->fake_salt_key, sizeof s->fake_salt_key);
	free(s);
}
