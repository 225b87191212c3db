/* sisy_bench_kv.c — `sisy-bench kv`: a load generator against a running
 * sisyd, in the spirit of redis-benchmark: one thread, one epoll, C client
 * connections each keeping P requests in flight (a new one is sent as soon
 * as a reply arrives), until N requests were answered.
 *
 *   sisy-bench kv [--hosts H] [--clients 50] [--pipeline 1] [--requests N]
 *                 [--keyspace K] [--key_size 16] [--value_size 100]
 *                 [--ratio get:put] [--prefill 1] [--seed S]
 * Connection settings (user, password, server key) come from SISY_* like
 * the shell's.
 *
 * Output (one line, then the percentiles):
 *   kv get:put=1:1 clients=50 pipeline=1: 81234 ops/s, p50 0.61 ms,
 *   p99 1.20 ms, p99.9 2.10 ms, errors 0, bench cpu 23%
 * "bench cpu" is this process's CPU time over the wall time: well below
 * 100% means the load generator is not the bottleneck.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>

#include "client.h"
#include "rand.h"
#include "sisy_bench.h"

typedef struct kv_flags {
	const char *hosts;
	long clients, pipeline, requests, keyspace;
	int key_size, value_size;
	long get_w, put_w;
	int prefill;
	unsigned long long seed;
} kv_flags;

typedef struct kv_conn {
	sisy_client *c;
	uint64_t *sent_ns; /* ring of send times, in request order */
	long head, count;
} kv_conn;

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

static int parse(kv_flags *f, int argc, char **argv)
{
	f->hosts = NULL;
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
		if (!strcmp(name, "--hosts"))
			f->hosts = v;
		else if (!strcmp(name, "--clients"))
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
		else if (!strcmp(name, "--ratio")) {
			if (sscanf(v, "%ld:%ld", &f->get_w, &f->put_w) != 2)
				goto bad;
		} else
			goto bad;
	}
	if (f->clients < 1 || f->clients > 10000 || f->pipeline < 1 ||
	    f->pipeline > 1024 || f->requests < 1 || f->keyspace < 1 ||
	    f->key_size < 8 || f->key_size > 1024 || f->value_size < 0 ||
	    f->get_w < 0 || f->put_w < 0 || f->get_w + f->put_w == 0)
		goto bad;
	return 0;
bad:
	fprintf(stderr,
		"usage: sisy-bench kv [--hosts H] [--clients C] [--pipeline P] "
		"[--requests N]\n"
		"       [--keyspace K] [--key_size 16] [--value_size 100] "
		"[--ratio get:put]\n"
		"       [--prefill 0|1] [--seed S]\n");
	return 2;
}

static void make_key(char *out, int size, uint64_t n)
{
	/* "key:" then zero-padded digits: fixed size, sorted like numbers
	 * (by hand: snprintf cost a tenth of the bench's CPU). */
	memcpy(out, "key:", 4);
	for (int i = size - 1; i >= 4; i--) {
		out[i] = (char)('0' + n % 10);
		n /= 10;
	}
	out[size] = '\0';
}

/* Sends one random request on k, at time now (one clock read per loop
 * turn, as redis-benchmark: reading the clock twice per request cost a
 * twentieth of the bench's CPU). */
static sisy_err send_one(const kv_flags *f, kv_conn *k, sisy_rand *r,
			 const char *value, uint64_t now)
{
	char key[1100];
	make_key(key, f->key_size, sisy_rand_below(r, (uint64_t)f->keyspace));
	bool get = (long)sisy_rand_below(r, (uint64_t)(f->get_w + f->put_w)) <
		   f->get_w;
	sisy_req q = {.op = get ? SISY_OP_GET : SISY_OP_PUT,
		      .key = sisy_slice_make(key, (size_t)f->key_size),
		      .value = sisy_slice_make(value, (size_t)f->value_size)};
	sisy_err rc = sisy_client_send(k->c, &q, NULL);
	if (rc == SISY_OK) {
		k->sent_ns[(k->head + k->count) % f->pipeline] = now;
		k->count++;
	}
	return rc;
}

static int prefill(const kv_flags *f, kv_conn *conns, const char *value)
{
	char key[1100];
	long per = 256;
	for (long i = 0; i < f->keyspace;) {
		sisy_client *c = conns[(i / per) % f->clients].c;
		long n = 0;
		for (; n < per && i < f->keyspace; n++, i++) {
			make_key(key, f->key_size, (uint64_t)i);
			sisy_req q = {
			    .op = SISY_OP_PUT,
			    .key = sisy_slice_make(key, (size_t)f->key_size),
			    .value =
				sisy_slice_make(value, (size_t)f->value_size)};
			if (sisy_client_send(c, &q, NULL) != SISY_OK)
				return -1;
		}
		while (n-- > 0) {
			sisy_reply *r;
			if (sisy_client_recv(c, &r) != SISY_OK || r->err) {
				fprintf(stderr, "prefill failed: %s\n",
					sisy_errmsg());
				sisy_reply_free(r);
				return -1;
			}
			sisy_reply_free(r);
		}
	}
	return 0;
}

int sisy_bench_kv(int argc, char **argv)
{
	kv_flags f;
	int rc = parse(&f, argc, argv);
	if (rc)
		return rc;
	sisy_client_opts o;
	sisy_client_opts_init(&o);
	sisy_client_opts_env(&o);
	if (f.hosts)
		o.hosts = f.hosts;
	kv_conn *conns = calloc((size_t)f.clients, sizeof *conns);
	uint32_t *lat = malloc((size_t)f.requests * sizeof *lat);
	char *value = malloc((size_t)f.value_size + 1);
	int ep = epoll_create1(0);
	sisy_rand r;
	sisy_rand_seed(&r, f.seed);
	for (int i = 0; i < f.value_size; i++)
		value[i] = (char)('a' + sisy_rand_below(&r, 26));
	for (long i = 0; i < f.clients; i++) {
		sisy_err e = sisy_client_connect(&o, &conns[i].c);
		if (e != SISY_OK) {
			fprintf(stderr, "sisy-bench kv: connect: %s\n",
				sisy_errmsg());
			return 2;
		}
		conns[i].sent_ns = calloc((size_t)f.pipeline, sizeof(uint64_t));
		struct epoll_event ev = {.events = EPOLLIN,
					 .data.ptr = &conns[i]};
		epoll_ctl(ep, EPOLL_CTL_ADD, sisy_client_fd(conns[i].c), &ev);
	}
	if (f.prefill && f.get_w > 0 && prefill(&f, conns, value) != 0)
		return 1;

	struct rusage ru0, ru1;
	getrusage(RUSAGE_SELF, &ru0);
	uint64_t t0 = now_ns();
	long sent = 0, done = 0, errors = 0;
	for (long i = 0; i < f.clients; i++) {
		for (long p = 0; p < f.pipeline && sent < f.requests; p++) {
			if (send_one(&f, &conns[i], &r, value, t0) != SISY_OK)
				return 1;
			sent++;
		}
		sisy_client_flush(conns[i].c);
	}
	struct epoll_event evs[256];
	while (done < f.requests) {
		int n = epoll_wait(ep, evs, 256, 10000);
		if (n <= 0) {
			fprintf(stderr,
				"sisy-bench kv: no progress for 10 s\n");
			return 1;
		}
		/* the replies of this turn arrived by now */
		uint64_t now = now_ns();
		for (int e = 0; e < n; e++) {
			kv_conn *k = evs[e].data.ptr;
			long got = 0;
			/* Every reply that is here first, then as many new
			 * requests in one flush (one frame with protocol
			 * version 2), as redis-benchmark refills its
			 * pipeline. */
			while (k->count > 0) {
				sisy_reply *rep;
				sisy_err x = sisy_client_try_recv(k->c, &rep);
				if (x == SISY_E_AGAIN)
					break;
				if (x != SISY_OK) {
					fprintf(stderr, "sisy-bench kv: %s\n",
						sisy_errmsg());
					return 1;
				}
				uint64_t t = now - k->sent_ns[k->head];
				k->head = (k->head + 1) % f.pipeline;
				k->count--;
				if (rep->err != SISY_OK)
					errors++;
				sisy_reply_free(rep);
				lat[done++] = (uint32_t)(t / 1000 > UINT32_MAX
							     ? UINT32_MAX
							     : t / 1000);
				got++;
			}
			for (; got > 0 && sent < f.requests; got--, sent++)
				if (send_one(&f, k, &r, value, now) != SISY_OK)
					return 1;
			if (k->count > 0)
				sisy_client_flush(k->c);
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
	printf("kv get:put=%ld:%ld clients=%ld pipeline=%ld value=%d: "
	       "%.0f ops/s, p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, "
	       "errors %ld, bench cpu %.0f%%\n",
	       f.get_w, f.put_w, f.clients, f.pipeline, f.value_size, ops,
	       PCT(0.50), PCT(0.99), PCT(0.999), errors,
	       100.0 * cpu / ((double)wall / 1e9));
#undef PCT
	for (long i = 0; i < f.clients; i++) {
		sisy_client_close(conns[i].c);
		free(conns[i].sent_ns);
	}
	free(conns);
	free(lat);
	free(value);
	return errors ? 1 : 0;
}
