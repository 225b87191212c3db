/* server.c — the event loop (epoll, level-triggered), the listener,
 * timeouts, start-up and graceful shutdown (server.h, srv_int.h).
 *
 * Loop iteration: wait (at most 100 ms) -> handle ready sockets -> take the
 * requests workers finished -> every 100 ms sweep deadlines. Nothing on the
 * loop blocks: engine reads and writes run on workers; sockets are
 * non-blocking. A storm of handshakes is bounded per iteration
 * (handshake_budget), so logged-in clients keep being served.
 */
#include "srv_int.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "lsm.h"

#define TICK_MS		    100
#define HANDSHAKES_PER_ITER 64
#define MAX_EVENTS	    256

/* epoll data: a connection pointer, or these sentinels. */
static char listen_tag, event_tag;

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

static sisy_err load_secret(sisy_server *s)
{
	/* The fake-salt key must be stable across restarts, or an attacker
	 * could tell unknown users by their salt changing. */
	char path[1200];
	char *data = NULL;
	snprintf(path, sizeof path, "%s/auth.secret", s->cfg.data_dir);
	sisy_err rc = sisy_trust_read_file(path, 4096, &data, NULL);
	if (rc == SISY_E_NOTFOUND) {
		char b64[SISY_KEY_B64_LEN + 2];
		randombytes_buf(s->fake_salt_key, sizeof s->fake_salt_key);
		sisy_trust_b64(s->fake_salt_key, 32, b64, sizeof b64);
		size_t n = strlen(b64);
		b64[n] = '\n';
		return sisy_trust_write_file(path, b64, n + 1, 0600);
	}
	if (rc != SISY_OK)
		return rc;
	bool ok = sisy_trust_unb64(data, s->fake_salt_key, 32);
	free(data);
	return ok ? SISY_OK
		  : sisy_errf(SISY_E_CORRUPT, "server.c: %s is malformed",
			      path);
}

sisy_err sisy_server_open(const sisy_server_config *cfg,
			  const sisy_logger *logger, sisy_server **out)
{
	char dir[1200];
	sisy_server *s = calloc(1, sizeof *s);
	if (s == NULL)
		return sisy_errf(SISY_E_NOMEM, "server.c: out of memory");
	s->cfg = *cfg;
	s->log = logger;
	s->epfd = s->lfd = s->evfd = -1;
	pthread_mutex_init(&s->done_mu, NULL);
	s->started_ms = sisy_now_ms();
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
	if ((rc = sisy_trust_load_node(cfg->data_dir, &s->id)) != SISY_OK) {
		if (rc == SISY_E_NOTFOUND)
			rc = sisy_errf(rc,
				       "%s is not a sisyd data directory "
				       "(no node.identity); run `sisyd init "
				       "-D %s` first",
				       cfg->data_dir, cfg->data_dir);
		goto fail;
	}
	if ((rc = load_secret(s)) != SISY_OK)
		goto fail;
	{
		uint8_t sk[SISY_AUTH_SK];
		crypto_sign_keypair(s->dummy_pk, sk);
		sodium_memzero(sk, sizeof sk);
	}
	if ((rc = sisy_users_open(cfg->data_dir, &s->users)) != SISY_OK)
		goto fail;
	snprintf(dir, sizeof dir, "%s/data", cfg->data_dir);
	sisy_kv_opts ko = {
	    .dir = dir,
	    .logger = logger,
	    .sync = cfg->sync,
	    .compression = cfg->compression,
	    .memtable_bytes = cfg->memtable_bytes,
	    .block_cache_bytes = cfg->block_cache_bytes,
	    .bloom_bits_per_key = cfg->bloom_bits_per_key,
	};
	if ((rc = sisy_kv_open(&ko, &s->kv)) != SISY_OK)
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
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->epfd < 0 || s->evfd < 0) {
		rc = sisy_errf(SISY_E_IO, "server.c: epoll/eventfd: %s",
			       strerror(errno));
		goto fail;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &listen_tag};
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->lfd, &ev);
	ev.data.ptr = &event_tag;
	epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev);
	if ((rc = work_start(s)) != SISY_OK)
		goto fail;
	*out = s;
	return SISY_OK;
fail:
	sisy_server_free(s);
	return rc;
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
	bool want_read = !c->closing && c->state != CONN_PENALTY &&
			 c->nreq < s->cfg.max_pipeline &&
			 c->queued_bytes < s->cfg.max_request_bytes &&
			 c->out.len - c->out_off < s->cfg.max_output_bytes &&
			 !s->stop_requested;
	bool want_write = c->out_off < c->out.len;
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
	sodium_memzero(&c->login, sizeof c->login);
	free(c);
}

void srv_conn_close(sisy_server *s, srv_conn *c, const char *why)
{
	if (c->dead)
		return;
	if (why && SISY_LOG_ENABLED(s->log, SISY_LOG_DEBUG))
		sisy_log(s->log, SISY_LOG_DEBUG, "server",
			 "closing connection from %s (%s): %s", c->addr,
			 c->user[0] ? c->user : "not logged in", why);
	srv_unauth_remove(s, c);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	c->dead = true;
	s->ndead++;
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
		if (!c->dead)
			conn_on_writable(s, c);
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

static void accept_one(sisy_server *s, int fd, struct sockaddr_storage *ss)
{
	srv_conn *c;
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
	c = calloc(1, sizeof *c);
	if (c == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->state = CONN_HELLO;
	c->accepted_ms = c->active_ms = sisy_now_ms();
	sisy_frame_reader_init(&c->rd, SISY_FRAME_MAX_PRELOGIN);
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)ss)->sin_addr,
			  c->addr, sizeof c->addr);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ss)->sin6_addr,
			  c->addr, sizeof c->addr);
	else
		snprintf(c->addr, sizeof c->addr, "local");
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	c->uprev = s->unauth_tail;
	if (s->unauth_tail)
		s->unauth_tail->unext = c;
	else
		s->unauth_head = c;
	s->unauth_tail = c;
	c->in_unauth = true;
	s->nunauth++;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
	c->reading = true;
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		c->reading = false;
		srv_conn_close(s, c, "epoll_ctl failed");
		return;
	}
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

/* Every TICK_MS: deadlines of every connection. */
static void sweep(sisy_server *s, uint64_t now)
{
	srv_conn *next;
	for (srv_conn *c = s->conns; c; c = next) {
		next = c->next;
		if (c->dead)
			continue;
		const char *why = NULL;
		if (c->state == CONN_PENALTY) {
			if (now >= c->penalty_ms)
				conn_penalty_expired(s, c);
			continue;
		}
		if (c->state != CONN_READY &&
		    now - c->accepted_ms > s->cfg.handshake_timeout_ms)
			why = "handshake deadline passed";
		else if (c->partial_ms &&
			 now - c->partial_ms > s->cfg.io_timeout_ms)
			why = "a frame stayed half-sent too long";
		else if (c->stall_ms &&
			 now - c->stall_ms > s->cfg.io_timeout_ms)
			why = "the client stopped reading its replies";
		else if (s->cfg.idle_timeout_ms && c->state == CONN_READY &&
			 c->nreq == 0 &&
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

static size_t in_flight(sisy_server *s)
{
	size_t n = 0;
	for (srv_conn *c = s->conns; c; c = c->next)
		n += c->running_reads + c->running_writes;
	return n;
}

static size_t unsent(sisy_server *s)
{
	size_t n = 0;
	for (srv_conn *c = s->conns; c; c = c->next)
		if (!c->dead && c->out_off < c->out.len)
			n++;
	return n;
}

static void iterate(sisy_server *s, int timeout_ms, uint64_t *last_sweep)
{
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(s->epfd, evs, MAX_EVENTS, timeout_ms);
	s->handshake_budget = HANDSHAKES_PER_ITER;
	for (int i = 0; i < n; i++) {
		void *p = evs[i].data.ptr;
		if (p == &listen_tag) {
			if (!s->stop_requested)
				on_accept(s);
			continue;
		}
		if (p == &event_tag) {
			drain_done(s);
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
	uint64_t now = sisy_now_ms();
	if (now - *last_sweep >= TICK_MS) {
		*last_sweep = now;
		sweep(s, now);
	}
	work_flush(s);
	flush_dirty(s);
	reap(s);
}

sisy_err sisy_server_run(sisy_server *s)
{
	uint64_t last_sweep = sisy_now_ms();
	sisy_log(s->log, SISY_LOG_INFO, "server",
		 "node %llu serving on %s (port %u), data in %s",
		 (unsigned long long)s->id.node_id, s->cfg.listen, s->port,
		 s->cfg.data_dir);
	if (s->cfg.port_file[0]) {
		char text[16];
		int n = snprintf(text, sizeof text, "%u\n", s->port);
		sisy_err rc = sisy_trust_write_file(s->cfg.port_file, text,
						    (size_t)n, 0644);
		if (rc != SISY_OK)
			return rc;
	}
	while (!s->stop_requested)
		iterate(s, TICK_MS, &last_sweep);

	/* Graceful: no new connections or requests; answer what is in flight;
	 * give the replies a bounded time to leave. */
	sisy_log(s->log, SISY_LOG_INFO, "server",
		 "shutting down: finishing in-flight requests");
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->lfd, NULL);
	close(s->lfd);
	s->lfd = -1;
	for (srv_conn *c = s->conns; c; c = c->next)
		srv_conn_update_events(s, c);
	uint64_t deadline = sisy_now_ms() + s->cfg.shutdown_timeout_ms;
	while ((in_flight(s) > 0 || unsent(s) > 0) && sisy_now_ms() < deadline)
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
	work_stop(s);
	/* Workers are joined: everything still queued came back; free it. */
	drain_done(s);
	srv_conn *next;
	for (srv_conn *c = s->conns; c; c = next) {
		next = c->next;
		srv_conn_close(s, c, NULL);
	}
	reap(s);
	if (s->kv) {
		sisy_err rc = sisy_kv_close(s->kv);
		if (rc != SISY_OK)
			sisy_log(s->log, SISY_LOG_ERROR, "server",
				 "closing the engine: %s", sisy_errmsg());
	}
	sisy_users_close(s->users);
	ratelimit_free(s->rl);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->evfd >= 0)
		close(s->evfd);
	pthread_mutex_destroy(&s->done_mu);
	sodium_memzero(&s->id, sizeof s->id);
	free(s);
}

sisy_err sisy_server_init_dir(const char *dir, const char *admin_user,
			      const char *admin_password)
{
	sisy_cluster_key ck;
	sisy_node_identity id;
	sisy_user u;
	sisy_users *users = NULL;
	char path[1200];
	sisy_err rc;
	if (sodium_init() < 0)
		return sisy_errf(SISY_E_INTERNAL, "libsodium init failed");
	if (!sisy_auth_user_valid(admin_user))
		return sisy_errf(SISY_E_INVAL, "invalid admin user name");
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return sisy_errf(sisy_err_from_errno(errno),
				 "cannot create %s: %s", dir, strerror(errno));
	snprintf(path, sizeof path, "%s/node.identity", dir);
	if (access(path, F_OK) == 0)
		return sisy_errf(SISY_E_EXISTS,
				 "%s is already initialised; refusing to "
				 "overwrite its keys",
				 dir);
	memset(&u, 0, sizeof u);
	snprintf(u.name, sizeof u.name, "%s", admin_user);
	u.role = SISY_ROLE_ADMIN;
	if ((rc = sisy_auth_make_verifier(admin_password, &u.v)) != SISY_OK)
		return rc;
	sisy_trust_cluster_new(&ck);
	sisy_trust_node_new(&ck, 1, &id);
	if ((rc = sisy_trust_save_cluster(dir, &ck)) != SISY_OK ||
	    (rc = sisy_users_open(dir, &users)) != SISY_OK ||
	    (rc = sisy_users_add(users, &u)) != SISY_OK)
		goto done;
	/* Last: node.identity marks the directory as initialised. */
	rc = sisy_trust_save_node(dir, &id);
done:
	sisy_users_close(users);
	sodium_memzero(&ck, sizeof ck);
	sodium_memzero(&id, sizeof id);
	return rc;
}
