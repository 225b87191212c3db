/* sisy_bench_etcd.c — `sisy-bench etcd`: the load generator of `sisy-bench
 * kv`, pointed at etcd, so both systems are driven alike: one thread, one
 * epoll, C HTTP/1.1 keep-alive connections each keeping P requests in
 * flight (a new one is sent as soon as an answer arrives) until N requests
 * were answered; the same keys ("key:" + zero-padded number, key_size
 * bytes), the same random lowercase values, the same report line.
 *
 * etcd is spoken to through its JSON gateway (grpc-gateway, in every etcd
 * 3.4 server, no extra dependency):
 *   put  POST /v3/kv/put    {"key":"<base64>","value":"<base64>"}
 *   get  POST /v3/kv/range  {"key":"<base64>"}   (linearizable: etcd's
 *                           default; "serializable" is not set)
 * An answer other than HTTP 200 counts as an error.
 *
 *   sisy-bench etcd --endpoints H:P[,H:P...] [--clients 50] [--pipeline 1]
 *       [--requests N] [--keyspace K] [--key_size 16] [--value_size 100]
 *       [--ratio get:put] [--prefill 1] [--seed S]
 *   sisy-bench etcd --endpoints ... --probe FILE --stop-file F
 *       [--timeout_ms 5000]
 * Client i talks to endpoint i mod n. Output as `sisy-bench kv`:
 *   etcd get:put=0:1 clients=64 pipeline=1 value=100: 5123 ops/s,
 *   p50 .. ms, p99 .. ms, p99.9 .. ms, errors 0, bench cpu 12%
 *
 * --probe: one connection writes fresh keys one at a time until F exists,
 * moving to the next endpoint when a connection fails or an answer takes
 * longer than timeout_ms, and logs every write as a JSON line
 * {"op":"put","call":NS,"return":NS,"outcome":"ok"|"failed"} (CLOCK_MONOTONIC
 * ns), from which a failover time is read (bench/cluster-vs-etcd.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sisy_bench.h"

#define ETCD_MAX_ENDPOINTS 16
#define ETCD_IN		   (256 * 1024) /* a response must fit */
#define ETCD_REQ	   8192		/* one request */

typedef struct etcd_flags {
	char endpoints[ETCD_MAX_ENDPOINTS][128];
	int nendpoints;
	long clients, pipeline, requests, keyspace;
	int key_size, value_size;
	long get_w, put_w;
	int prefill;
	unsigned long long seed;
	const char *probe, *stop_file;
	long timeout_ms;
} etcd_flags;

typedef struct etcd_conn {
	int fd;
	int endpoint;
	char *out; /* request bytes not yet written */
	size_t out_len, out_cap;
	char *in; /* response bytes not yet parsed */
	size_t in_len;
	uint64_t *sent_ns; /* ring of send times, in request order */
	long head, count;
	uint32_t events;
} etcd_conn;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static int parse_endpoints(etcd_flags *f, const char *v)
{
	char buf[2048];
	snprintf(buf, sizeof buf, "%s", v);
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		if (f->nendpoints == ETCD_MAX_ENDPOINTS || strlen(t) >= 128 ||
		    !strchr(t, ':'))
			return -1;
		/* "http://h:p" is accepted as etcd prints it. */
		if (!strncmp(t, "http://", 7))
			t += 7;
		snprintf(f->endpoints[f->nendpoints++], 128, "%s", t);
	}
	return f->nendpoints ? 0 : -1;
}

static int parse(etcd_flags *f, int argc, char **argv)
{
	memset(f, 0, sizeof *f);
	f->clients = 50;
	f->pipeline = 1;
	f->requests = 200000;
	f->keyspace = 100000;
	f->key_size = 16;
	f->value_size = 100;
	f->get_w = 1;
	f->put_w = 1;
	f->prefill = 1;
	f->seed = 301;
	f->timeout_ms = 5000;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = strchr(a, '=');
		char name[64];
		size_t n = v ? (size_t)(v - a) : strlen(a);
		if (n >= sizeof name || strncmp(a, "--", 2) != 0)
			goto bad;
		memcpy(name, a, n);
		name[n] = '\0';
		if (v)
			v++;
		else if (i + 1 < argc)
			v = argv[++i];
		else
			goto bad;
		if (!strcmp(name, "--endpoints")) {
			if (parse_endpoints(f, v) != 0)
				goto bad;
		} else if (!strcmp(name, "--clients"))
			f->clients = atol(v);
		else if (!strcmp(name, "--pipeline"))
			f->pipeline = atol(v);
		else if (!strcmp(name, "--requests"))
			f->requests = atol(v);
		else if (!strcmp(name, "--keyspace"))
			f->keyspace = atol(v);
		else if (!strcmp(name, "--key_size"))
			f->key_size = atoi(v);
		else if (!strcmp(name, "--value_size"))
			f->value_size = atoi(v);
		else if (!strcmp(name, "--prefill"))
			f->prefill = atoi(v);
		else if (!strcmp(name, "--seed"))
			f->seed = strtoull(v, NULL, 10);
		else if (!strcmp(name, "--probe"))
			f->probe = v;
		else if (!strcmp(name, "--stop-file"))
			f->stop_file = v;
		else if (!strcmp(name, "--timeout_ms"))
			f->timeout_ms = atol(v);
		else if (!strcmp(name, "--ratio")) {
			if (sscanf(v, "%ld:%ld", &f->get_w, &f->put_w) != 2)
				goto bad;
		} else
			goto bad;
	}
	if (!f->nendpoints || f->clients < 1 || f->clients > 10000 ||
	    f->pipeline < 1 || f->pipeline > 1024 || f->requests < 1 ||
	    f->keyspace < 1 || f->key_size < 8 || f->key_size > 1024 ||
	    f->value_size < 0 || f->value_size > 2048 || f->get_w < 0 ||
	    f->put_w < 0 || f->get_w + f->put_w == 0 ||
	    (f->probe && !f->stop_file) || f->timeout_ms < 1)
		goto bad;
	return 0;
bad:
	fprintf(stderr,
		"usage: sisy-bench etcd --endpoints H:P[,H:P...] [--clients C] "
		"[--pipeline P]\n"
		"       [--requests N] [--keyspace K] [--key_size 16] "
		"[--value_size 100]\n"
		"       [--ratio get:put] [--prefill 0|1] [--seed S]\n"
		"   or: sisy-bench etcd --endpoints ... --probe FILE "
		"--stop-file F [--timeout_ms MS]\n");
	return 2;
}

/* The same keys as sisy-bench kv. */
static void make_key(char *out, int size, uint64_t n)
{
	snprintf(out, (size_t)size + 1, "key:%0*llu", size - 4,
		 (unsigned long long)n);
}

static int dial(const char *endpoint)
{
	char host[128];
	const char *colon = strrchr(endpoint, ':');
	snprintf(host, sizeof host, "%.*s", (int)(colon - endpoint), endpoint);
	struct addrinfo hints = {.ai_family = AF_INET,
				 .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0 || !ai)
		return -1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	if (fd >= 0) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	}
	return fd;
}

/* Appends one HTTP request (put or range) to k->out. */
static int queue_request(const etcd_flags *f, etcd_conn *k, bool get,
			 const char *key, const char *value)
{
	char kb[2048], vb[4096], body[ETCD_REQ / 2];
	sodium_bin2base64(kb, sizeof kb, (const unsigned char *)key,
			  strlen(key), sodium_base64_VARIANT_ORIGINAL);
	int blen;
	if (get) {
		blen = snprintf(body, sizeof body, "{\"key\":\"%s\"}", kb);
	} else {
		sodium_bin2base64(vb, sizeof vb, (const unsigned char *)value,
				  (size_t)f->value_size,
				  sodium_base64_VARIANT_ORIGINAL);
		blen = snprintf(body, sizeof body,
				"{\"key\":\"%s\",\"value\":\"%s\"}", kb, vb);
	}
	if (k->out_len + ETCD_REQ > k->out_cap) {
		size_t cap = k->out_cap ? k->out_cap * 2 : 4 * ETCD_REQ;
		while (cap < k->out_len + ETCD_REQ)
			cap *= 2;
		char *p = realloc(k->out, cap);
		if (!p)
			return -1;
		k->out = p;
		k->out_cap = cap;
	}
	int n = snprintf(k->out + k->out_len, k->out_cap - k->out_len,
			 "POST /v3/kv/%s HTTP/1.1\r\nHost: %s\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %d\r\n\r\n%s",
			 get ? "range" : "put", f->endpoints[k->endpoint], blen,
			 body);
	k->out_len += (size_t)n;
	return 0;
}

/* Writes what k->out holds; -1 on a broken connection. */
static int flush_out(etcd_conn *k)
{
	size_t off = 0;
	while (off < k->out_len) {
		ssize_t n =
		    send(k->fd, k->out + off, k->out_len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		off += (size_t)n;
	}
	memmove(k->out, k->out + off, k->out_len - off);
	k->out_len -= off;
	return 0;
}

/* Case-insensitive header lookup inside [h, end). */
static const char *header(const char *h, const char *end, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = h; p + n < end; p++)
		if ((p == h || p[-1] == '\n') && !strncasecmp(p, name, n))
			return p + n;
	return NULL;
}

/* One whole response at k->in? Returns its length (0: not yet, -1: bad)
 * and *status. Handles Content-Length and chunked bodies. */
static long parse_response(const etcd_conn *k, int *status)
{
	const char *b = k->in, *end = k->in + k->in_len;
	const char *hdr_end = memmem(b, k->in_len, "\r\n\r\n", 4);
	if (!hdr_end)
		return k->in_len >= ETCD_IN ? -1 : 0;
	if (sscanf(b, "HTTP/1.%*d %d", status) != 1)
		return -1;
	const char *body = hdr_end + 4;
	const char *cl = header(b, hdr_end, "content-length:");
	if (cl) {
		long len = strtol(cl, NULL, 10);
		if (len < 0 || body + len > b + ETCD_IN)
			return -1;
		return body + len <= end ? (long)(body - b) + len : 0;
	}
	const char *te = header(b, hdr_end, "transfer-encoding:");
	if (!te || !strstr(te, "chunked"))
		return -1; /* etcd always sends one of the two */
	const char *p = body;
	for (;;) {
		const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
		if (!eol)
			return 0;
		long len = strtol(p, NULL, 16);
		if (len < 0 || len > ETCD_IN)
			return -1;
		p = eol + 2 + len + 2;
		if (p > end)
			return 0;
		if (len == 0)
			return (long)(p - b);
	}
}

/* 0: read something; 1: nothing yet (EAGAIN, or the probe's receive
 * timeout); -1: the connection is gone. */
static int read_in(etcd_conn *k)
{
	ssize_t n = read(k->fd, k->in + k->in_len, ETCD_IN - k->in_len);
	if (n == 0)
		return -1;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 1
		       : errno == EINTR			       ? 0
							       : -1;
	k->in_len += (size_t)n;
	return 0;
}

static void consume(etcd_conn *k, long len)
{
	memmove(k->in, k->in + len, k->in_len - (size_t)len);
	k->in_len -= (size_t)len;
}

static bool stop_now(const etcd_flags *f)
{
	return access(f->stop_file, F_OK) == 0;
}

/* --probe: one write at a time, blocking with a deadline per answer. */
static int probe(const etcd_flags *f, const char *value)
{
	FILE *log = fopen(f->probe, "w");
	if (!log) {
		fprintf(stderr, "sisy-bench etcd: %s: %s\n", f->probe,
			strerror(errno));
		return 2;
	}
	etcd_conn k = {.fd = -1, .in = malloc(ETCD_IN)};
	long seq = 0, ok = 0, failed = 0;
	while (!stop_now(f)) {
		char key[1100];
		make_key(key, f->key_size, (uint64_t)(seq++ % f->keyspace));
		uint64_t call = now_ns();
		bool good = false;
		if (k.fd < 0)
			k.fd = dial(f->endpoints[k.endpoint]);
		if (k.fd >= 0) {
			struct timeval tv = {.tv_sec = f->timeout_ms / 1000,
					     .tv_usec =
						 (f->timeout_ms % 1000) * 1000};
			setsockopt(k.fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
				   sizeof tv);
			k.in_len = 0;
			int status = 0;
			long len = 0;
			if (queue_request(f, &k, false, key, value) == 0 &&
			    flush_out(&k) == 0 && k.out_len == 0)
				while ((len = parse_response(&k, &status)) ==
					   0 &&
				       read_in(&k) == 0)
					;
			good = len > 0 && status == 200;
			if (len <= 0) {
				close(k.fd);
				k.fd = -1;
				k.out_len = 0;
			}
		}
		uint64_t ret = now_ns();
		fprintf(log,
			"{\"op\":\"put\",\"call\":%llu,\"sent\":%llu,"
			"\"return\":%llu,"
			"\"outcome\":\"%s\",\"endpoint\":\"%s\"}\n",
			(unsigned long long)call, (unsigned long long)call,
			(unsigned long long)ret, good ? "ok" : "failed",
			f->endpoints[k.endpoint]);
		if (good) {
			ok++;
		} else {
			failed++;
			if (k.fd >= 0) {
				close(k.fd);
				k.fd = -1;
			}
			k.endpoint = (k.endpoint + 1) % f->nendpoints;
			struct timespec ts = {0, 5 * 1000000};
			nanosleep(&ts, NULL);
		}
	}
	if (k.fd >= 0)
		close(k.fd);
	free(k.in);
	free(k.out);
	fclose(log);
	printf("etcd probe: %ld ok, %ld failed\n", ok, failed);
	return 0;
}

/* Sends one random request on k (queued; flushed by the caller). */
static int send_one(const etcd_flags *f, etcd_conn *k, uint64_t *rng,
		    const char *value)
{
	char key[1100];
	*rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
	make_key(key, f->key_size, *rng % (uint64_t)f->keyspace);
	*rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
	bool get = (long)(*rng % (uint64_t)(f->get_w + f->put_w)) < f->get_w;
	if (queue_request(f, k, get, key, value) != 0)
		return -1;
	k->sent_ns[(k->head + k->count) % f->pipeline] = now_ns();
	k->count++;
	return 0;
}

static void watch(int ep, etcd_conn *k)
{
	uint32_t ev = EPOLLIN | (k->out_len ? EPOLLOUT : 0);
	if (ev == k->events)
		return;
	struct epoll_event e = {.events = ev, .data.ptr = k};
	epoll_ctl(ep, k->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, k->fd, &e);
	k->events = ev;
}

/* Puts every key once (keyspace), 64 in flight per connection. */
static int prefill(const etcd_flags *f, etcd_conn *conns, const char *value)
{
	char key[1100];
	for (long i = 0; i < f->keyspace;) {
		etcd_conn *k = &conns[(i / 64) % f->clients];
		long n = 0;
		for (; n < 64 && i < f->keyspace; n++, i++) {
			make_key(key, f->key_size, (uint64_t)i);
			if (queue_request(f, k, false, key, value) != 0)
				return -1;
		}
		while (k->out_len)
			if (flush_out(k) != 0)
				return -1;
		while (n > 0) {
			int status;
			long len = parse_response(k, &status);
			if (len < 0 || (len > 0 && status != 200)) {
				fprintf(stderr, "prefill failed (HTTP %d)\n",
					status);
				return -1;
			}
			if (len > 0) {
				consume(k, len);
				n--;
			} else if (read_in(k) != 0) {
				return -1;
			}
		}
	}
	return 0;
}

int sisy_bench_etcd(int argc, char **argv)
{
	etcd_flags f;
	int rc = parse(&f, argc, argv);
	if (rc)
		return rc;
	if (sodium_init() < 0)
		return 1;
	char *value = malloc((size_t)f.value_size + 1);
	uint64_t rng = f.seed * 2654435761u + 1;
	for (int i = 0; i < f.value_size; i++) {
		rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
		value[i] = (char)('a' + rng % 26);
	}
	if (f.probe) {
		rc = probe(&f, value);
		free(value);
		return rc;
	}
	etcd_conn *conns = calloc((size_t)f.clients, sizeof *conns);
	uint32_t *lat = malloc((size_t)f.requests * sizeof *lat);
	int ep = epoll_create1(0);
	for (long i = 0; i < f.clients; i++) {
		etcd_conn *k = &conns[i];
		k->endpoint = (int)(i % f.nendpoints);
		k->fd = dial(f.endpoints[k->endpoint]);
		k->in = malloc(ETCD_IN);
		k->sent_ns = calloc((size_t)f.pipeline, sizeof(uint64_t));
		if (k->fd < 0 || !k->in || !k->sent_ns) {
			fprintf(stderr, "sisy-bench etcd: connect %s: %s\n",
				f.endpoints[k->endpoint], strerror(errno));
			return 2;
		}
	}
	if (f.prefill && f.get_w > 0 && prefill(&f, conns, value) != 0)
		return 1;

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	uint64_t t0 = now_ns();
	long sent = 0, done = 0, errors = 0;
	for (long i = 0; i < f.clients; i++) {
		for (long p = 0; p < f.pipeline && sent < f.requests; p++) {
			if (send_one(&f, &conns[i], &rng, value) != 0)
				return 1;
			sent++;
		}
		if (flush_out(&conns[i]) != 0)
			return 1;
		watch(ep, &conns[i]);
	}
	struct epoll_event evs[256];
	while (done < f.requests) {
		int n = epoll_wait(ep, evs, 256, 10000);
		if (n <= 0) {
			fprintf(stderr,
				"sisy-bench etcd: no progress for 10 s\n");
			return 1;
		}
		for (int e = 0; e < n; e++) {
			etcd_conn *k = evs[e].data.ptr;
			if ((evs[e].events & EPOLLOUT) && flush_out(k) != 0)
				goto broken;
			if ((evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
			    read_in(k) < 0)
				goto broken;
			for (;;) {
				int status;
				long len = parse_response(k, &status);
				if (len < 0 || (len > 0 && k->count == 0))
					goto broken;
				if (len == 0)
					break;
				consume(k, len);
				uint64_t t = now_ns() - k->sent_ns[k->head];
				k->head = (k->head + 1) % f.pipeline;
				k->count--;
				if (status != 200)
					errors++;
				lat[done++] = (uint32_t)(t / 1000 > UINT32_MAX
							     ? UINT32_MAX
							     : t / 1000);
				if (sent < f.requests) {
					if (send_one(&f, k, &rng, value) != 0)
						return 1;
					sent++;
				}
			}
			if (flush_out(k) != 0)
				goto broken;
			watch(ep, k);
			continue;
		broken:
			fprintf(stderr,
				"sisy-bench etcd: connection to %s broke\n",
				f.endpoints[k->endpoint]);
			return 1;
		}
	}
	uint64_t wall = now_ns() - t0;
	getrusage(RUSAGE_SELF, &ru1);
	double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec +
			      ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
		     (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec +
			      ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) /
			 1e6;
	qsort(lat, (size_t)done, sizeof *lat, cmp_u32);
	double ops = (double)done / ((double)wall / 1e9);
#define PCT(p) (lat[(size_t)((double)(done - 1) * (p))] / 1000.0)
	printf("etcd get:put=%ld:%ld clients=%ld pipeline=%ld value=%d: "
	       "%.0f ops/s, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, "
	       "errors %ld, bench cpu %.0f%%\n",
	       f.get_w, f.put_w, f.clients, f.pipeline, f.value_size, ops,
	       PCT(0.50), PCT(0.99), PCT(0.999), errors,
	       100.0 * cpu / ((double)wall / 1e9));
#undef PCT
	for (long i = 0; i < f.clients; i++) {
		close(conns[i].fd);
		free(conns[i].in);
		free(conns[i].out);
		free(conns[i].sent_ns);
	}
	close(ep);
	free(conns);
	free(lat);
	free(value);
	return errors ? 1 : 0;
}
