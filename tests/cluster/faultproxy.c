/* faultproxy.c — sisy-faultproxy: a TCP proxy between sisyd nodes that cuts,
 * one-way cuts and heals their links on command (the model and the rules
 * are in faultproxy.h, the commands in faultproxy_cmd.c).
 *
 *   sisy-faultproxy [--control PORT] [--port-file FILE] [--nodes N]
 *                   [--route FROM:TO[:PORT]]... [--upstream N=HOST:PORT]...
 *       runs the proxy in the foreground until SIGTERM/SIGINT or "quit".
 *       --nodes N opens a route for every ordered pair of 1..N. Once every
 *       listener is up, FILE (written atomically) holds
 *         control PORT
 *         route FROM TO PORT        (one line per route)
 *   sisy-faultproxy pair CTLDIR PORT TARGET_PORT I J
 *       one route: node I dialling node J at 127.0.0.1:PORT, forwarded to
 *       127.0.0.1:TARGET_PORT; the port file is CTLDIR/I_J.ctl. This is
 *       the form devcluster's --proxy-cmd calls ("CMD P TARGET i j"): one
 *       process per ordered pair; a test sends each command to all of them
 *       (each applies the rules to its own connections only).
 *   sisy-faultproxy ctl PORT|@FILE COMMAND...
 *       sends one command, prints the answer; exit 0 for OK, 1 for ERR,
 *       2 when the proxy cannot be reached (FILE: a port file as above).
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faultproxy.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: sisy-faultproxy [--control PORT] [--port-file FILE] "
		"[--nodes N]\n"
		"                       [--route FROM:TO[:PORT]]... "
		"[--upstream N=HOST:PORT]...\n"
		"       sisy-faultproxy pair CTLDIR PORT TARGET_PORT I J\n"
		"       sisy-faultproxy ctl PORT|@FILE COMMAND...\n");
	return 2;
}

static int write_port_file(const faultproxy *p, const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "control %u\n", p->ctl_port);
	for (int a = 1; a <= FP_MAX_NODE; a++)
		for (int b = 1; b <= FP_MAX_NODE; b++)
			if (p->routes[a][b].fd >= 0)
				fprintf(f, "route %d %d %u\n", a, b,
					p->routes[a][b].port);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

/* Reads "control PORT" from a port file. */
static long port_from_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	long port = -1;
	char line[256];
	while (port < 0 && fgets(line, sizeof line, f))
		if (sscanf(line, "control %ld", &port) != 1)
			port = -1;
	fclose(f);
	return port;
}

static int ctl_main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	long port = argv[1][0] == '@' ? port_from_file(argv[1] + 1)
				      : strtol(argv[1], NULL, 10);
	if (port <= 0 || port > 65535) {
		fprintf(stderr, "sisy-faultproxy ctl: no control port in %s\n",
			argv[1]);
		return 2;
	}
	char line[FP_LINE];
	size_t len = 0;
	for (int i = 2; i < argc; i++) {
		int n = snprintf(line + len, sizeof line - len, "%s%s",
				 i > 2 ? " " : "", argv[i]);
		if (n < 0 || (size_t)n >= sizeof line - len - 1)
			return usage();
		len += (size_t)n;
	}
	line[len++] = '\n';
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {.tv_sec = 10};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    write(fd, line, len) != (ssize_t)len) {
		fprintf(stderr, "sisy-faultproxy ctl: port %ld: %s\n", port,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return 2;
	}
	char ans[FP_OUT];
	size_t got = 0;
	while (got < sizeof ans - 1 && !memchr(ans, '\n', got)) {
		ssize_t n = read(fd, ans + got, sizeof ans - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	ans[got] = '\0';
	if (got == 0) {
		fprintf(stderr, "sisy-faultproxy ctl: no answer\n");
		return 2;
	}
	fputs(ans, stdout);
	return strncmp(ans, "OK", 2) == 0 ? 0 : 1;
}

static int parse_args(faultproxy *p, int argc, char **argv, long *ctl_port,
		      const char **port_file)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		int from, to, port = 0, n;
		char addr[FP_ADDR];
		if (!v)
			return -1;
		i++;
		if (!strcmp(a, "--control")) {
			*ctl_port = strtol(v, NULL, 10);
		} else if (!strcmp(a, "--port-file")) {
			*port_file = v;
		} else if (!strcmp(a, "--nodes")) {
			n = atoi(v);
			if (n < 1 || n > FP_MAX_NODE)
				return -1;
			for (from = 1; from <= n; from++)
				for (to = 1; to <= n; to++)
					if (from != to &&
					    faultproxy_route_open(p, from, to,
								  0) != 0)
						return -1;
		} else if (!strcmp(a, "--route")) {
			if (sscanf(v, "%d:%d:%d", &from, &to, &port) < 2 ||
			    from < 1 || from > FP_MAX_NODE || to < 1 ||
			    to > FP_MAX_NODE || from == to || port < 0 ||
			    port > 65535 ||
			    faultproxy_route_open(p, from, to,
						  (uint16_t)port) != 0)
				return -1;
		} else if (!strcmp(a, "--upstream")) {
			if (sscanf(v, "%d=%127s", &n, addr) != 2 || n < 1 ||
			    n > FP_MAX_NODE || !strchr(addr, ':'))
				return -1;
			snprintf(p->upstream[n], FP_ADDR, "%s", addr);
		} else {
			return -1;
		}
	}
	return 0;
}

static void dispatch(faultproxy *p, struct epoll_event *ev)
{
	fp_kind k = *(fp_kind *)ev->data.ptr;
	switch (k) {
	case FP_K_LISTEN:
		faultproxy_accept(p, ev->data.ptr);
		break;
	case FP_K_CTL_LISTEN:
		faultproxy_ctl_accept(p);
		break;
	case FP_K_CTL:
		faultproxy_ctl_event(p, ev->data.ptr, ev->events);
		break;
	case FP_K_END:
		faultproxy_end_event(p, ev->data.ptr, ev->events);
		break;
	}
}

/* Sends what the control connections still hold (the answer to "quit"). */
static void flush_ctls(faultproxy *p)
{
	for (int i = 0; i < FP_MAX_CTL; i++) {
		fp_ctl *c = p->ctls[i];
		if (c && c->out_len > 0)
			(void)!send(c->fd, c->out + c->out_off, c->out_len,
				    MSG_NOSIGNAL);
	}
}

static void teardown(faultproxy *p)
{
	for (int k = 0; k < FP_MAX_CONNS; k++)
		if (p->conns[k])
			faultproxy_reset(p, p->conns[k]->from, p->conns[k]->to);
	faultproxy_reap(p);
	for (int i = 0; i < FP_MAX_CTL; i++)
		if (p->ctls[i]) {
			close(p->ctls[i]->fd);
			free(p->ctls[i]);
		}
	for (int a = 0; a <= FP_MAX_NODE; a++)
		for (int b = 0; b <= FP_MAX_NODE; b++)
			if (p->routes[a][b].fd >= 0)
				close(p->routes[a][b].fd);
	if (p->ctl_fd >= 0)
		close(p->ctl_fd);
	close(p->ep);
	free(p);
}

/* "pair CTLDIR PORT TARGET I J" -> the equivalent long options. */
typedef struct pair_argv {
	char route[64], up[FP_ADDR], file[4096];
	char *argv[8];
} pair_argv;

static int pair_args(int argc, char **argv, pair_argv *pa)
{
	if (argc != 7 || strlen(argv[2]) > sizeof pa->file - 32 ||
	    strlen(argv[3]) > 5 || strlen(argv[4]) > 5 || strlen(argv[5]) > 5 ||
	    strlen(argv[6]) > 5)
		return -1;
	snprintf(pa->route, sizeof pa->route, "%s:%s:%s", argv[5], argv[6],
		 argv[3]);
	snprintf(pa->up, sizeof pa->up, "%s=127.0.0.1:%s", argv[6], argv[4]);
	snprintf(pa->file, sizeof pa->file, "%s/%s_%s.ctl", argv[2], argv[5],
		 argv[6]);
	char *v[] = {argv[0], "--route",     pa->route, "--upstream",
		     pa->up,  "--port-file", pa->file,	NULL};
	memcpy(pa->argv, v, sizeof v);
	return 0;
}

int main(int argc, char **argv)
{
	pair_argv pa;
	if (argc >= 2 && !strcmp(argv[1], "ctl"))
		return ctl_main(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "pair")) {
		if (pair_args(argc, argv, &pa) != 0)
			return usage();
		argc = 7;
		argv = pa.argv;
	}
	faultproxy *p = calloc(1, sizeof *p);
	if (!p)
		return 1;
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	p->ctl_fd = -1;
	for (int a = 0; a <= FP_MAX_NODE; a++)
		for (int b = 0; b <= FP_MAX_NODE; b++)
			p->routes[a][b].fd = -1;
	long ctl_port = 0;
	const char *port_file = NULL;
	if (p->ep < 0 || parse_args(p, argc, argv, &ctl_port, &port_file) ||
	    ctl_port < 0 || ctl_port > 65535) {
		teardown(p);
		return usage();
	}
	p->ctl_kind = FP_K_CTL_LISTEN;
	p->ctl_fd = faultproxy_listen((uint16_t)ctl_port, &p->ctl_port);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &p->ctl_kind};
	if (p->ctl_fd < 0 ||
	    epoll_ctl(p->ep, EPOLL_CTL_ADD, p->ctl_fd, &ev) != 0 ||
	    (port_file && write_port_file(p, port_file) != 0)) {
		fprintf(stderr, "sisy-faultproxy: set-up failed: %s\n",
			strerror(errno));
		teardown(p);
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct epoll_event evs[64];
	while (!p->quit && !stop_signal) {
		int n = epoll_wait(p->ep, evs, 64, 1000);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++)
			dispatch(p, &evs[i]);
		faultproxy_reap(p);
	}
	flush_ctls(p);
	teardown(p);
	return 0;
}
