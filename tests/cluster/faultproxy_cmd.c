/* faultproxy_cmd.c — sisy-faultproxy's control channel: a line protocol on
 * a TCP port of 127.0.0.1, one answer line per command line, "OK ..." or
 * "ERR <why>". Rules are explained in faultproxy.h.
 *
 *   ping                         OK
 *   upstream N HOST:PORT         where node N is reached
 *   route FROM TO [PORT]         OK <port>: listener for FROM dialling TO
 *   routes                       OK FROM>TO=PORT ...
 *   cut A B [drop]               both directions between A and B stalled
 *                                (dropped with "drop")
 *   oneway A B [drop]            bytes from A to B only
 *   isolate A [drop]             A from every other node
 *   partition A,B C,D,E [drop]   every pair across the two sides
 *   heal [A B]                   everything, or both directions of A-B
 *   reset A B                    OK <n>: abort the connections between A, B
 *   stats A B                    OK bytes=.. dropped=.. conns=.. open=..
 *                                (A to B; conns: accepted on route A>B)
 *   status                       OK open=.. refused=.. cut=A>B:stall,...
 *   quit                         OK, then the proxy exits
 * Node ids are 1..FP_MAX_NODE. A line longer than FP_LINE ends the
 * control connection; so does a full reply buffer.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faultproxy.h"

#define MAX_ARGS 8

static int node_arg(const char *s)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v < 1 || v > FP_MAX_NODE)
		return 0;
	return (int)v;
}

/* "1,2,3" -> set[id] = true; false on a bad list. */
static bool node_set(const char *s, bool set[FP_MAX_NODE + 1])
{
	char buf[FP_LINE];
	snprintf(buf, sizeof buf, "%s", s);
	char *save = NULL;
	int n = 0;
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		int id = node_arg(t);
		if (!id)
			return false;
		set[id] = true;
		n++;
	}
	return n > 0;
}

static void set_rule(faultproxy *p, int a, int b, fp_rule r)
{
	if (a != b)
		p->rule[a][b] = r;
}

static const char *rule_name(fp_rule r)
{
	return r == FP_STALL ? "stall" : r == FP_DROP ? "drop" : "pass";
}

static void status(faultproxy *p, char *out, size_t cap)
{
	int open = 0;
	for (int k = 0; k < FP_MAX_CONNS; k++)
		open += p->conns[k] != NULL;
	size_t len =
	    (size_t)snprintf(out, cap, "OK open=%d refused=%llu cut=", open,
			     (unsigned long long)p->refused);
	bool first = true;
	for (int a = 1; a <= FP_MAX_NODE; a++)
		for (int b = 1; b <= FP_MAX_NODE; b++)
			if (p->rule[a][b] != FP_PASS && len < cap) {
				len += (size_t)snprintf(
				    out + len, cap - len, "%s%d>%d:%s",
				    first ? "" : ",", a, b,
				    rule_name(p->rule[a][b]));
				first = false;
			}
}

static void routes(faultproxy *p, char *out, size_t cap)
{
	size_t len = (size_t)snprintf(out, cap, "OK");
	for (int a = 1; a <= FP_MAX_NODE; a++)
		for (int b = 1; b <= FP_MAX_NODE; b++)
			if (p->routes[a][b].fd >= 0 && len < cap)
				len += (size_t)snprintf(out + len, cap - len,
							" %d>%d=%u", a, b,
							p->routes[a][b].port);
}

/* The optional trailing "drop" of the cut commands. */
static bool cut_rule(char **argv, int argc, int at, fp_rule *r)
{
	*r = FP_STALL;
	if (argc == at)
		return true;
	if (argc == at + 1 && strcmp(argv[at], "drop") == 0) {
		*r = FP_DROP;
		return true;
	}
	return false;
}

void faultproxy_command(faultproxy *p, char *line, char *out, size_t cap)
{
	char *argv[MAX_ARGS], *save = NULL;
	int argc = 0;
	for (char *t = strtok_r(line, " \t\r\n", &save); t;
	     t = strtok_r(NULL, " \t\r\n", &save)) {
		if (argc == MAX_ARGS) {
			snprintf(out, cap, "ERR too many words");
			return;
		}
		argv[argc++] = t;
	}
	fp_rule r;
	int a = argc > 1 ? node_arg(argv[1]) : 0;
	int b = argc > 2 ? node_arg(argv[2]) : 0;
	const char *cmd = argc ? argv[0] : "";
	if (!strcmp(cmd, "ping") && argc == 1) {
		snprintf(out, cap, "OK");
	} else if (!strcmp(cmd, "upstream") && argc == 3 && a) {
		if (strlen(argv[2]) >= FP_ADDR || !strchr(argv[2], ':')) {
			snprintf(out, cap, "ERR bad address");
			return;
		}
		snprintf(p->upstream[a], FP_ADDR, "%s", argv[2]);
		snprintf(out, cap, "OK");
	} else if (!strcmp(cmd, "route") && (argc == 3 || argc == 4) && a &&
		   b && a != b) {
		long port = argc == 4 ? strtol(argv[3], NULL, 10) : 0;
		if (port < 0 || port > 65535 ||
		    faultproxy_route_open(p, a, b, (uint16_t)port) != 0) {
			snprintf(out, cap, "ERR cannot listen: %s",
				 strerror(errno));
			return;
		}
		snprintf(out, cap, "OK %u", p->routes[a][b].port);
	} else if (!strcmp(cmd, "routes") && argc == 1) {
		routes(p, out, cap);
	} else if (!strcmp(cmd, "cut") && a && b &&
		   cut_rule(argv, argc, 3, &r)) {
		set_rule(p, a, b, r);
		set_rule(p, b, a, r);
		faultproxy_rules_changed(p);
		snprintf(out, cap, "OK");
	} else if (!strcmp(cmd, "oneway") && a && b &&
		   cut_rule(argv, argc, 3, &r)) {
		set_rule(p, a, b, r);
		faultproxy_rules_changed(p);
		snprintf(out, cap, "OK");
	} else if (!strcmp(cmd, "isolate") && a &&
		   cut_rule(argv, argc, 2, &r)) {
		for (int x = 1; x <= FP_MAX_NODE; x++) {
			set_rule(p, a, x, r);
			set_rule(p, x, a, r);
		}
		faultproxy_rules_changed(p);
		snprintf(out, cap, "OK");
	} else if (!strcmp(cmd, "partition") && argc >= 3 &&
		   cut_rule(argv, argc, 3, &r)) {
		bool s1[FP_MAX_NODE + 1] = {0}, s2[FP_MAX_NODE + 1] = {0};
		if (!node_set(argv[1], s1) || !node_set(argv[2], s2)) {
			snprintf(out, cap, "ERR bad node list");
			return;
		}
		for (int x = 1; x <= FP_MAX_NODE; x++)
			for (int y = 1; y <= FP_MAX_NODE; y++)
				if (s1[x] && s2[y]) {
					set_rule(p, x, y, r);
					set_rule(p, y, x, r);
				}
		faultproxy_rules_changed(p);
		snprintf(out, cap, "OK");
	} else if (!strcmp(cmd, "heal") &&
		   (argc == 1 || (argc == 3 && a && b))) {
		if (argc == 1)
			memset(p->rule, 0, sizeof p->rule);
		else
			p->rule[a][b] = p->rule[b][a] = FP_PASS;
		faultproxy_rules_changed(p);
		snprintf(out, cap, "OK");
	} else if (!strcmp(cmd, "reset") && argc == 3 && a && b) {
		snprintf(out, cap, "OK %d", faultproxy_reset(p, a, b));
	} else if (!strcmp(cmd, "stats") && argc == 3 && a && b) {
		const fp_stats *s = &p->stats[a][b];
		snprintf(out, cap,
			 "OK bytes=%llu dropped=%llu conns=%llu open=%d",
			 (unsigned long long)s->bytes,
			 (unsigned long long)s->dropped,
			 (unsigned long long)s->conns,
			 faultproxy_conn_count(p, a, b));
	} else if (!strcmp(cmd, "status") && argc == 1) {
		status(p, out, cap);
	} else if (!strcmp(cmd, "quit") && argc == 1) {
		p->quit = true;
		snprintf(out, cap, "OK");
	} else {
		snprintf(out, cap, "ERR bad command (see faultproxy_cmd.c)");
	}
}

static void ctl_close(faultproxy *p, fp_ctl *c)
{
	epoll_ctl(p->ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	for (int i = 0; i < FP_MAX_CTL; i++)
		if (p->ctls[i] == c)
			p->ctls[i] = NULL;
	free(c);
}

static void ctl_interest(faultproxy *p, fp_ctl *c)
{
	struct epoll_event e = {.events = (c->closing ? 0 : EPOLLIN) |
					  (c->out_len ? EPOLLOUT : 0),
				.data.ptr = c};
	epoll_ctl(p->ep, EPOLL_CTL_MOD, c->fd, &e);
}

void faultproxy_ctl_accept(faultproxy *p)
{
	int fd = accept4(p->ctl_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	int slot = -1;
	for (int i = 0; i < FP_MAX_CTL && slot < 0; i++)
		if (!p->ctls[i])
			slot = i;
	fp_ctl *c = slot >= 0 ? calloc(1, sizeof *c) : NULL;
	if (!c) {
		close(fd);
		return;
	}
	c->kind = FP_K_CTL;
	c->fd = fd;
	p->ctls[slot] = c;
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = c};
	epoll_ctl(p->ep, EPOLL_CTL_ADD, fd, &e);
}

/* Runs every complete line in c->in. False: end the connection. */
static bool ctl_lines(faultproxy *p, fp_ctl *c)
{
	char *nl;
	while ((nl = memchr(c->in, '\n', c->in_len)) != NULL) {
		size_t n = (size_t)(nl - c->in);
		char line[FP_LINE], ans[FP_OUT / 2];
		memcpy(line, c->in, n);
		line[n] = '\0';
		memmove(c->in, nl + 1, c->in_len - n - 1);
		c->in_len -= n + 1;
		faultproxy_command(p, line, ans, sizeof ans);
		size_t alen = strlen(ans);
		if (c->out_off + c->out_len + alen + 1 > FP_OUT) {
			memmove(c->out, c->out + c->out_off, c->out_len);
			c->out_off = 0;
			if (c->out_len + alen + 1 > FP_OUT)
				return false;
		}
		memcpy(c->out + c->out_off + c->out_len, ans, alen);
		c->out[c->out_off + c->out_len + alen] = '\n';
		c->out_len += alen + 1;
	}
	return c->in_len < FP_LINE;
}

void faultproxy_ctl_event(faultproxy *p, fp_ctl *c, uint32_t events)
{
	if (events & EPOLLIN) {
		ssize_t n = read(c->fd, c->in + c->in_len, FP_LINE - c->in_len);
		if (n == 0)
			c->closing = true;
		else if (n < 0 && errno != EAGAIN && errno != EINTR) {
			ctl_close(p, c);
			return;
		} else if (n > 0) {
			c->in_len += (size_t)n;
			if (!ctl_lines(p, c)) {
				ctl_close(p, c);
				return;
			}
		}
	}
	if (c->out_len > 0) {
		ssize_t n =
		    send(c->fd, c->out + c->out_off, c->out_len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			ctl_close(p, c);
			return;
		}
		if (n > 0) {
			c->out_off += (size_t)n;
			c->out_len -= (size_t)n;
			if (c->out_len == 0)
				c->out_off = 0;
		}
	}
	if (c->closing && c->out_len == 0) {
		ctl_close(p, c);
		return;
	}
	ctl_interest(p, c);
}
