/* faultproxy.h — internals of sisy-faultproxy, the TCP fault proxy that the
 * cluster fault tests put between every pair of sisyd nodes.
 *
 * MODEL. Nodes are numbered 1..FP_MAX_NODE. A route (FROM, TO) is a
 * listening port on 127.0.0.1: a connection accepted there is node FROM
 * dialling node TO, and is forwarded to TO's upstream address ("upstream
 * TO host:port"). Each proxied connection has two directions; bytes from
 * FROM to TO obey rule[FROM][TO], bytes back obey rule[TO][FROM], whichever
 * side dialled. A rule is
 *   PASS   forward;
 *   STALL  forward nothing and read nothing: the bytes wait in the proxy
 *          and in the kernel's socket buffers, as they wait in TCP
 *          retransmission during a real partition, and flow again on heal
 *          (a connection neither side gave up on survives the partition);
 *   DROP   read and discard: the stream loses bytes, which a secure
 *          session detects (it ends the connection), like a link that
 *          loses data for good.
 * New connections during a cut are accepted and connected upstream (the
 * loopback always works) but their bytes obey the rules, so a handshake
 * across a cut never completes.
 *
 * INVARIANTS. One thread (epoll, level-triggered, non-blocking sockets);
 * every buffer, table and queue has a fixed bound (FP_*): a connection
 * beyond FP_MAX_CONNS is closed at once. A direction's buffer is written to
 * its destination only under PASS; it is discarded when the rule becomes
 * DROP. The proxy never interprets the bytes it forwards.
 */
#ifndef SISY_FAULTPROXY_H
#define SISY_FAULTPROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FP_MAX_NODE  32	   /* node ids 1..32 */
#define FP_MAX_CONNS 1024  /* proxied connections at once */
#define FP_MAX_CTL   16	   /* control connections at once */
#define FP_BUF	     65536 /* per direction of a connection */
#define FP_LINE	     1024  /* longest control command */
#define FP_OUT	     16384 /* control reply buffer */
#define FP_ADDR	     128   /* "host:port" */

typedef enum fp_rule { FP_PASS = 0, FP_STALL = 1, FP_DROP = 2 } fp_rule;

/* What an epoll event's data.ptr points at: each of these starts with it. */
typedef enum fp_kind {
	FP_K_LISTEN = 1,
	FP_K_CTL_LISTEN,
	FP_K_CTL,
	FP_K_END
} fp_kind;

typedef struct fp_route {
	fp_kind kind; /* FP_K_LISTEN */
	int from, to;
	int fd; /* -1: no listener */
	uint16_t port;
} fp_route;

struct fp_conn;
typedef struct fp_end {
	fp_kind kind; /* FP_K_END */
	struct fp_conn *c;
	int side;	 /* 0: the dialler (node from), 1: upstream (node to) */
	uint32_t events; /* registered with epoll */
} fp_end;

/* Bytes flowing from end `src` to end 1 - src. */
typedef struct fp_pipe {
	uint8_t buf[FP_BUF];
	size_t off, len; /* pending bytes are buf[off, off + len) */
	bool eof;	 /* the source shut its writing side */
	bool shut;	 /* we shut the destination's writing side */
} fp_pipe;

typedef struct fp_conn {
	int from, to;
	int fd[2];
	fp_end end[2];
	fp_pipe pipe[2]; /* pipe[0]: from -> to; pipe[1]: to -> from */
	bool connecting; /* the upstream connect is in progress */
	bool dead;	 /* closed; freed after the current epoll batch */
	int slot;
	struct fp_conn *next_dead;
} fp_conn;

typedef struct fp_ctl {
	fp_kind kind; /* FP_K_CTL */
	int fd;
	char in[FP_LINE];
	size_t in_len;
	char out[FP_OUT];
	size_t out_off, out_len;
	bool closing; /* close once out is sent */
} fp_ctl;

typedef struct fp_stats {
	uint64_t bytes, dropped, conns;
} fp_stats;

typedef struct faultproxy {
	int ep;
	fp_kind
	    ctl_kind; /* FP_K_CTL_LISTEN; data.ptr of the control listener */
	int ctl_fd;
	uint16_t ctl_port;
	fp_route routes[FP_MAX_NODE + 1][FP_MAX_NODE + 1];
	char upstream[FP_MAX_NODE + 1][FP_ADDR]; /* "" unknown */
	fp_rule rule[FP_MAX_NODE + 1][FP_MAX_NODE + 1];
	fp_stats stats[FP_MAX_NODE + 1][FP_MAX_NODE + 1];
	fp_conn *conns[FP_MAX_CONNS];
	fp_ctl *ctls[FP_MAX_CTL];
	fp_conn *dead;	  /* closed connections not freed yet (an event for
			     their other end may still be in the batch) */
	uint64_t refused; /* connections refused: no upstream, or full */
	bool quit;
} faultproxy;

/* faultproxy_net.c */
int faultproxy_listen(uint16_t port, uint16_t *bound);
int faultproxy_route_open(faultproxy *p, int from, int to, uint16_t port);
void faultproxy_accept(faultproxy *p, fp_route *r);
void faultproxy_end_event(faultproxy *p, fp_end *e, uint32_t events);
/* Frees the connections closed since the last call. */
void faultproxy_reap(faultproxy *p);
/* Re-registers every connection's interest after a rule change, discards
 * what a DROP direction holds. */
void faultproxy_rules_changed(faultproxy *p);
/* Closes every connection between a and b (either direction). */
int faultproxy_reset(faultproxy *p, int a, int b);
int faultproxy_conn_count(const faultproxy *p, int a, int b);

/* faultproxy_cmd.c */
void faultproxy_ctl_accept(faultproxy *p);
void faultproxy_ctl_event(faultproxy *p, fp_ctl *c, uint32_t events);
/* Runs one command line; writes the one-line answer ("OK ..." or
 * "ERR ...", no newline) into out. */
void faultproxy_command(faultproxy *p, char *line, char *out, size_t cap);

#endif
