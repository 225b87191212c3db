/* faultproxy_net.c — sisy-faultproxy's sockets: route listeners, proxied
 * connections and the byte pumping that obeys the rules (faultproxy.h).
 *
 * A connection's end i is the source of pipe[i] and the destination of
 * pipe[1 - i]. An end's epoll interest is recomputed from scratch after
 * anything that may change it (interest()), so there is one place that
 * decides when a side is read or written:
 *   read  end i: pipe[i] not at EOF, and rule DROP, or rule PASS with
 *                buffer space (STALL reads nothing);
 *   write end i: pipe[1 - i] holds bytes and its rule is PASS.
 * EOF is passed on as shutdown(SHUT_WR) once the pipe is empty; the
 * connection ends when both pipes are shut, or on any error.
 */
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
#include <sys/socket.h>
#include <unistd.h>

#include "faultproxy.h"

int faultproxy_listen(uint16_t port, uint16_t *bound)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    listen(fd, 128) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
		close(fd);
		return -1;
	}
	*bound = ntohs(a.sin_port);
	return fd;
}

int faultproxy_route_open(faultproxy *p, int from, int to, uint16_t port)
{
	assert(from >= 1 && from <= FP_MAX_NODE && to >= 1 &&
	       to <= FP_MAX_NODE && from != to);
	fp_route *r = &p->routes[from][to];
	if (r->fd >= 0)
		return r->port == port || port == 0 ? 0 : -1;
	uint16_t bound;
	int fd = faultproxy_listen(port, &bound);
	if (fd < 0)
		return -1;
	r->kind = FP_K_LISTEN;
	r->from = from;
	r->to = to;
	r->fd = fd;
	r->port = bound;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = r};
	if (epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		r->fd = -1;
		return -1;
	}
	return 0;
}

/* "host:port" -> a non-blocking socket connecting to it; -1 on failure. */
static int dial(const char *addr)
{
	char host[FP_ADDR];
	const char *colon = strrchr(addr, ':');
	if (!colon || (size_t)(colon - addr) >= sizeof host)
		return -1;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	struct addrinfo hints = {.ai_family = AF_INET,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static fp_rule dir_rule(const faultproxy *p, const fp_conn *c, int dir)
{
	return dir == 0 ? p->rule[c->from][c->to] : p->rule[c->to][c->from];
}

static void conn_close(faultproxy *p, fp_conn *c)
{
	for (int i = 0; i < 2; i++)
		if (c->fd[i] >= 0) {
			epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd[i], NULL);
			close(c->fd[i]);
		}
	c->fd[0] = c->fd[1] = -1;
	assert(p->conns[c->slot] == c);
	p->conns[c->slot] = NULL;
	c->dead = true;
	c->next_dead = p->dead;
	p->dead = c;
}

void faultproxy_reap(faultproxy *p)
{
	while (p->dead) {
		fp_conn *c = p->dead;
		p->dead = c->next_dead;
		free(c);
	}
}

/* Recomputes and registers what end i waits for (see the top). */
static void interest(faultproxy *p, fp_conn *c, int i)
{
	uint32_t ev = 0;
	const fp_pipe *src = &c->pipe[i], *dst = &c->pipe[1 - i];
	if (i == 1 && c->connecting) {
		ev = EPOLLOUT;
	} else {
		fp_rule rin = dir_rule(p, c, i), rout = dir_rule(p, c, 1 - i);
		if (!src->eof &&
		    (rin == FP_DROP || (rin == FP_PASS && src->len < FP_BUF)))
			ev |= EPOLLIN;
		if (dst->len > 0 && rout == FP_PASS)
			ev |= EPOLLOUT;
	}
	if (ev == c->end[i].events)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = &c->end[i]};
	epoll_ctl(p->ep, EPOLL_CTL_MOD, c->fd[i], &e);
	c->end[i].events = ev;
}

void faultproxy_accept(faultproxy *p, fp_route *r)
{
	int fd = accept4(r->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	int slot = -1;
	for (int i = 0; i < FP_MAX_CONNS && slot < 0; i++)
		if (!p->conns[i])
			slot = i;
	int up = -1;
	if (slot < 0 || !p->upstream[r->to][0] ||
	    (up = dial(p->upstream[r->to])) < 0) {
		/* Like a refused connection: the dialler retries later. */
		close(fd);
		p->refused++;
		return;
	}
	fp_conn *c = calloc(1, sizeof *c);
	if (!c) {
		close(fd);
		close(up);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->from = r->from;
	c->to = r->to;
	c->fd[0] = fd;
	c->fd[1] = up;
	c->connecting = true;
	c->slot = slot;
	p->conns[slot] = c;
	p->stats[r->from][r->to].conns++;
	for (int i = 0; i < 2; i++) {
		c->end[i] = (fp_end){.kind = FP_K_END, .c = c, .side = i};
		struct epoll_event e = {.events = 0, .data.ptr = &c->end[i]};
		epoll_ctl(p->ep, EPOLL_CTL_ADD, c->fd[i], &e);
		interest(p, c, i);
	}
}

static void count(faultproxy *p, fp_conn *c, int dir, size_t n, bool dropped)
{
	fp_stats *s =
	    dir == 0 ? &p->stats[c->from][c->to] : &p->stats[c->to][c->from];
	if (dropped)
		s->dropped += n;
	else
		s->bytes += n;
}

/* Reads what end i offers into pipe[i] (or discards it under DROP).
 * Returns false when the connection must end. */
static bool pump_in(faultproxy *p, fp_conn *c, int i)
{
	fp_pipe *s = &c->pipe[i];
	if (dir_rule(p, c, i) == FP_DROP) {
		uint8_t sink[FP_BUF];
		ssize_t n = read(c->fd[i], sink, sizeof sink);
		if (n > 0)
			count(p, c, i, (size_t)n, true);
		else if (n == 0)
			s->eof = true;
		return n >= 0 || errno == EAGAIN || errno == EINTR;
	}
	if (s->off > 0 && s->len > 0)
		memmove(s->buf, s->buf + s->off, s->len);
	s->off = 0;
	ssize_t n = read(c->fd[i], s->buf + s->len, FP_BUF - s->len);
	if (n > 0)
		s->len += (size_t)n;
	else if (n == 0)
		s->eof = true;
	return n >= 0 || errno == EAGAIN || errno == EINTR;
}

/* Writes pipe[1 - i] to end i. Returns false when the connection must
 * end. */
static bool pump_out(faultproxy *p, fp_conn *c, int i)
{
	fp_pipe *s = &c->pipe[1 - i];
	if (s->len > 0) {
		ssize_t n =
		    send(c->fd[i], s->buf + s->off, s->len, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		count(p, c, 1 - i, (size_t)n, false);
		s->off += (size_t)n;
		s->len -= (size_t)n;
		if (s->len == 0)
			s->off = 0;
	}
	return true;
}

/* Passes EOFs on; true when both directions are finished. */
static bool settle(fp_conn *c)
{
	for (int d = 0; d < 2; d++) {
		fp_pipe *s = &c->pipe[d];
		if (s->eof && s->len == 0 && !s->shut) {
			shutdown(c->fd[1 - d], SHUT_WR);
			s->shut = true;
		}
	}
	return c->pipe[0].shut && c->pipe[1].shut;
}

void faultproxy_end_event(faultproxy *p, fp_end *e, uint32_t events)
{
	fp_conn *c = e->c;
	int i = e->side;
	bool ok = true;
	if (c->dead)
		return;
	if (i == 1 && c->connecting) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) {
			p->refused++;
			conn_close(p, c);
			return;
		}
		c->connecting = false;
		interest(p, c, 0);
		interest(p, c, 1);
		return;
	}
	if (events & EPOLLERR)
		ok = false;
	if (ok && (events & EPOLLIN))
		ok = pump_in(p, c, i);
	if (ok && (events & EPOLLOUT))
		ok = pump_out(p, c, i);
	/* A hang-up we are not reading (a stalled side) would be reported
	 * again and again: the socket is finished, end the connection. */
	if (ok && (events & EPOLLHUP) && !(c->end[i].events & EPOLLIN))
		ok = false;
	if (!ok || settle(c)) {
		conn_close(p, c);
		return;
	}
	interest(p, c, 0);
	interest(p, c, 1);
}

void faultproxy_rules_changed(faultproxy *p)
{
	for (int k = 0; k < FP_MAX_CONNS; k++) {
		fp_conn *c = p->conns[k];
		if (!c)
			continue;
		for (int d = 0; d < 2; d++)
			if (dir_rule(p, c, d) == FP_DROP && c->pipe[d].len) {
				count(p, c, d, c->pipe[d].len, true);
				c->pipe[d].len = 0;
				c->pipe[d].off = 0;
			}
		if (settle(c)) {
			conn_close(p, c);
			continue;
		}
		interest(p, c, 0);
		interest(p, c, 1);
	}
}

static bool between(const fp_conn *c, int a, int b)
{
	return (c->from == a && c->to == b) || (c->from == b && c->to == a);
}

int faultproxy_reset(faultproxy *p, int a, int b)
{
	int n = 0;
	for (int k = 0; k < FP_MAX_CONNS; k++) {
		fp_conn *c = p->conns[k];
		if (c && between(c, a, b)) {
			/* An abortive close (RST), as a broken link shows. */
			struct linger l = {.l_onoff = 1, .l_linger = 0};
			for (int i = 0; i < 2; i++)
				setsockopt(c->fd[i], SOL_SOCKET, SO_LINGER, &l,
					   sizeof l);
			conn_close(p, c);
			n++;
		}
	}
	return n;
}

int faultproxy_conn_count(const faultproxy *p, int a, int b)
{
	int n = 0;
	for (int k = 0; k < FP_MAX_CONNS; k++)
		if (p->conns[k] && between(p->conns[k], a, b))
			n++;
	return n;
}
