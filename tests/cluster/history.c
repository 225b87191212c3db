/* history.c — sisy-history: concurrent clients against a running cluster,
 * recording a history for sisy-lincheck (record rules in history.h).
 *
 *   sisy-history --out FILE [--hosts H1,H2,...] [--clients 6] [--pinned]
 *       [--keys 8] [--put 45] [--cas 10] [--del 0] [--unique 30]
 *       [--duration-ms 20000] [--stop-file F] [--timeout-ms 3000]
 *       [--retry-ms 5000] [--backoff-ms 500] [--final 1] [--prefix P]
 *       [--seed S] [--first-client 1] [--progress FILE]
 *
 * Clients run until F exists or the duration has passed (whichever comes
 * first). Client i talks to host i mod n first (others after it, unless
 * --pinned). Percentages are of operations: put (of which --unique go to
 * fresh keys), cas, del; the rest are linearizable gets of the --keys
 * register keys. With --final 1 a last client then reads every key the run
 * wrote (through any node, retried until the retry deadline) so the
 * history's end shows what survived; it also checks directly that every
 * acknowledged write to a fresh key reads back.
 *
 * --first-client numbers the clients from there (histories of several runs
 * at once can be merged). --progress FILE is rewritten (atomically) every
 * 50 ms while the clients run, one line:
 *   ok_writes N ok_reads N done N last_ok_write_ns T
 * so a test can wait for progress instead of sleeping.
 *
 * Output: FILE (JSON lines, sisy-lincheck's format plus "host") and one
 * summary line on stdout:
 *   history: clients=6 ops=.. ok=.. failed=.. unknown=.. writes_ok=..
 *   reads_ok=.. unique_ok=.. lost=.. unverified=.. max_write_gap_ms=..
 * Exit: 0; 1 when an acknowledged fresh-key write was lost or could not
 * be verified; 2 on bad usage or when no session could ever be made.
 * Connection settings (user, password, server key) come from SISY_*.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "history.h"

#define FINAL_BATCH 256

static int usage(void)
{
	fprintf(
	    stderr,
	    "usage: sisy-history --out FILE [--hosts H,...] [--clients N] "
	    "[--pinned]\n"
	    "    [--keys K] [--put P] [--cas P] [--del P] [--unique P]\n"
	    "    [--duration-ms MS] [--stop-file F] [--timeout-ms MS] "
	    "[--retry-ms MS]\n"
	    "    [--backoff-ms MS] [--final 0|1] [--prefix P] [--seed S]\n");
	return 2;
}

typedef struct hist_args {
	hist_conf conf;
	const char *out, *progress;
	int first_client;
	long duration_ms;
	int final;
} hist_args;

static int parse(hist_args *a, int argc, char **argv)
{
	hist_conf *c = &a->conf;
	c->clients = 6;
	c->keys = 8;
	c->put_pct = 45;
	c->cas_pct = 10;
	c->unique_pct = 30;
	c->io_timeout_ms = 3000;
	c->retry_ms = 5000;
	c->backoff_ms = 500;
	c->seed = 1;
	c->prefix = "";
	a->duration_ms = 20000;
	a->final = 1;
	a->first_client = 1;
	for (int i = 1; i < argc; i++) {
		const char *f = argv[i];
		if (!strcmp(f, "--pinned")) {
			c->pinned = true;
			continue;
		}
		if (i + 1 >= argc)
			return -1;
		const char *v = argv[++i];
		long n = strtol(v, NULL, 10);
		if (!strcmp(f, "--out"))
			a->out = v;
		else if (!strcmp(f, "--hosts"))
			c->hosts = v;
		else if (!strcmp(f, "--clients"))
			c->clients = (int)n;
		else if (!strcmp(f, "--keys"))
			c->keys = (int)n;
		else if (!strcmp(f, "--put"))
			c->put_pct = (int)n;
		else if (!strcmp(f, "--cas"))
			c->cas_pct = (int)n;
		else if (!strcmp(f, "--del"))
			c->del_pct = (int)n;
		else if (!strcmp(f, "--unique"))
			c->unique_pct = (int)n;
		else if (!strcmp(f, "--duration-ms"))
			a->duration_ms = n;
		else if (!strcmp(f, "--stop-file"))
			c->stop_file = v;
		else if (!strcmp(f, "--timeout-ms"))
			c->io_timeout_ms = (uint32_t)n;
		else if (!strcmp(f, "--retry-ms"))
			c->retry_ms = (uint32_t)n;
		else if (!strcmp(f, "--backoff-ms"))
			c->backoff_ms = (uint32_t)n;
		else if (!strcmp(f, "--final"))
			a->final = (int)n;
		else if (!strcmp(f, "--first-client"))
			a->first_client = (int)n;
		else if (!strcmp(f, "--progress"))
			a->progress = v;
		else if (!strcmp(f, "--prefix"))
			c->prefix = v;
		else if (!strcmp(f, "--seed"))
			c->seed = strtoull(v, NULL, 10);
		else
			return -1;
	}
	if (!a->out || c->clients < 1 || c->clients > HIST_MAX_CLIENTS ||
	    c->keys < 1 || c->keys > 100000 || c->put_pct < 0 ||
	    c->cas_pct < 0 || c->del_pct < 0 ||
	    c->put_pct + c->cas_pct + c->del_pct > 100 || c->unique_pct < 0 ||
	    c->unique_pct > 100 || a->duration_ms < 1 || a->first_client < 1 ||
	    a->first_client > 1000000 || c->io_timeout_ms < 10 ||
	    c->retry_ms < 10 || c->backoff_ms < 1 || strlen(c->prefix) > 16)
		return -1;
	return 0;
}

/* Client i's hosts: its own node (i mod n) first, the others after it
 * unless pinned. */
static int host_list(const hist_conf *c, int i, char *out, size_t cap)
{
	char all[1024];
	const char *h[32];
	int n = 0;
	if (snprintf(all, sizeof all, "%s", c->hosts) >= (int)sizeof all)
		return -1;
	char *save = NULL;
	for (char *t = strtok_r(all, ",", &save); t && n < 32;
	     t = strtok_r(NULL, ",", &save))
		h[n++] = t;
	if (n == 0)
		return -1;
	size_t len = 0;
	out[0] = '\0';
	for (int k = 0; k < (c->pinned ? 1 : n); k++) {
		int w = snprintf(out + len, cap - len, "%s%s", k ? "," : "",
				 h[(i + k) % n]);
		if (w < 0 || (size_t)w >= cap - len)
			return -1;
		len += (size_t)w;
	}
	return 0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void write_rec(FILE *f, int client, const hist_rec *r)
{
	static const char *ops[] = {"put", "get", "del", "cas"};
	static const char *outs[] = {"ok", "failed", "unknown"};
	fprintf(f, "{\"client\":%d,\"op\":\"%s\",\"key\":", client,
		ops[r->kind]);
	json_str(f, r->key);
	if (r->kind != HIST_DEL) {
		fputs(",\"value\":", f);
		if (r->has_value)
			json_str(f, r->value);
		else
			fputs("null", f);
	}
	if (r->kind == HIST_CAS) {
		fputs(",\"expect\":", f);
		if (r->has_expect)
			json_str(f, r->expect);
		else
			fputs("null", f);
		fprintf(f, ",\"swapped\":%s", r->swapped ? "true" : "false");
	}
	fprintf(f, ",\"call\":%lld,\"sent\":%lld", (long long)r->call,
		(long long)r->sent);
	if (r->outcome != HIST_UNKNOWN)
		fprintf(f, ",\"return\":%lld", (long long)r->ret);
	fprintf(f, ",\"outcome\":\"%s\",\"host\":", outs[r->outcome]);
	json_str(f, r->host);
	fputs("}\n", f);
}

/* Receives a batch's replies into recs[0..n); false if the session broke
 * (the records not answered stay unknown). */
static bool final_recv(hist_client *f, hist_rec **recs, int n)
{
	for (int j = 0; j < n; j++) {
		sisy_reply *rep = NULL;
		sisy_err rc = sisy_client_recv(f->c, &rep);
		int64_t t = history_now();
		if (rc != SISY_OK) {
			history_client_close(f);
			return false;
		}
		hist_rec *r = recs[j];
		r->ret = t;
		snprintf(r->host, sizeof r->host, "%s", f->host);
		if (rep->err == SISY_OK && rep->value.len < HIST_VAL) {
			r->outcome = HIST_OK;
			r->has_value = rep->found;
			if (rep->found && rep->value.len)
				memcpy(r->value, rep->value.data,
				       rep->value.len);
			r->value[rep->found ? rep->value.len : 0] = '\0';
		} else {
			r->outcome = HIST_FAILED;
		}
		sisy_reply_free(rep);
	}
	return true;
}

/* Reads every key in keys[] linearizably, in pipelined batches, retrying
 * the keys whose read did not succeed until the retry deadline. final_ok[i]
 * points at the successful read of keys[i] (NULL if none). */
static void final_reads(hist_client *f, char (*keys)[HIST_KEY], size_t nkeys,
			const hist_rec **final_ok)
{
	int64_t deadline =
	    history_now() + (int64_t)f->conf->retry_ms * 1000000 * 4;
	size_t left = nkeys;
	uint32_t backoff = 20;
	while (left > 0 && history_now() < deadline) {
		if (history_client_connect(f) != SISY_OK) {
			struct timespec ts = {0, (long)backoff * 1000000};
			nanosleep(&ts, NULL);
			backoff = backoff * 2 > 500 ? 500 : backoff * 2;
			continue;
		}
		size_t idx[FINAL_BATCH];
		hist_rec *recs[FINAL_BATCH];
		int n = 0;
		for (size_t i = 0; i < nkeys && n < FINAL_BATCH; i++) {
			if (final_ok[i])
				continue;
			hist_rec *r = history_rec_new(f);
			if (!r)
				return;
			r->kind = HIST_GET;
			r->outcome = HIST_UNKNOWN;
			memcpy(r->key, keys[i], HIST_KEY);
			sisy_req q = {
			    .op = SISY_OP_GET,
			    .key = sisy_slice_make(r->key, strlen(r->key))};
			r->call = r->sent = history_now();
			if (sisy_client_send(f->c, &q, NULL) != SISY_OK) {
				f->n--;
				break;
			}
			idx[n] = i;
			recs[n++] = r;
		}
		bool alive = sisy_client_flush(f->c) == SISY_OK &&
			     final_recv(f, recs, n);
		if (!alive)
			history_client_close(f);
		for (int j = 0; j < n; j++)
			if (recs[j]->outcome == HIST_OK) {
				final_ok[idx[j]] = recs[j];
				left--;
			}
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Longest stretch without an acknowledged write answer, between the first
 * and the last one (ms); *at gets its start. */
static double max_write_gap(hist_client *cl, int n, int64_t *at)
{
	size_t cnt = 0, k = 0;
	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < cl[i].n; j++)
			cnt += cl[i].recs[j].kind != HIST_GET &&
			       cl[i].recs[j].outcome == HIST_OK;
	if (cnt < 2)
		return 0;
	int64_t *t = malloc(cnt * sizeof *t);
	if (!t)
		return 0;
	for (int i = 0; i < n; i++)
		for (size_t j = 0; j < cl[i].n; j++)
			if (cl[i].recs[j].kind != HIST_GET &&
			    cl[i].recs[j].outcome == HIST_OK)
				t[k++] = cl[i].recs[j].ret;
	qsort(t, cnt, sizeof *t, cmp_i64);
	int64_t best = 0;
	for (size_t i = 1; i < cnt; i++)
		if (t[i] - t[i - 1] > best) {
			best = t[i] - t[i - 1];
			*at = t[i - 1];
		}
	free(t);
	return (double)best / 1e6;
}

static void write_progress(const char *path, hist_client *cl, int n)
{
	uint64_t w = 0, r = 0, d = 0;
	int64_t last = 0;
	for (int i = 0; i < n; i++) {
		w += atomic_load(&cl[i].ok_writes);
		r += atomic_load(&cl[i].ok_reads);
		d += atomic_load(&cl[i].done);
		int64_t t = atomic_load(&cl[i].last_ok_write);
		if (t > last)
			last = t;
	}
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return;
	fprintf(
	    f, "ok_writes %llu ok_reads %llu done %llu last_ok_write_ns %lld\n",
	    (unsigned long long)w, (unsigned long long)r, (unsigned long long)d,
	    (long long)last);
	if (fclose(f) == 0)
		rename(tmp, path);
}

static bool stop_requested(const hist_conf *c)
{
	return history_now() >= c->deadline ||
	       (c->stop_file && access(c->stop_file, F_OK) == 0);
}

/* Keys the run wrote (each once): the registers and every fresh key. */
static size_t collect_keys(const hist_conf *c, hist_client *cl,
			   char (**out)[HIST_KEY])
{
	size_t cap = (size_t)c->keys, n = 0;
	for (int i = 0; i < c->clients; i++)
		cap += cl[i].n;
	char(*keys)[HIST_KEY] = calloc(cap ? cap : 1, HIST_KEY);
	if (!keys)
		return 0;
	for (int k = 0; k < c->keys; k++)
		snprintf(keys[n++], HIST_KEY, "%sr%d", c->prefix, k);
	size_t plen = strlen(c->prefix);
	for (int i = 0; i < c->clients; i++)
		for (size_t j = 0; j < cl[i].n; j++) {
			const hist_rec *r = &cl[i].recs[j];
			if (r->kind == HIST_PUT && r->key[plen] == 'u')
				memcpy(keys[n++], r->key, HIST_KEY);
		}
	*out = keys;
	return n;
}

int main(int argc, char **argv)
{
	hist_args a = {0};
	if (parse(&a, argc, argv) != 0)
		return usage();
	hist_conf *c = &a.conf;
	sisy_client_opts_init(&c->base);
	sisy_client_opts_env(&c->base);
	if (!c->hosts)
		c->hosts = c->base.hosts ? c->base.hosts : "127.0.0.1";
	c->deadline = history_now() + (int64_t)a.duration_ms * 1000000;
	FILE *out = fopen(a.out, "w");
	hist_client *cl = calloc((size_t)c->clients + 1, sizeof *cl);
	if (!out || !cl) {
		fprintf(stderr, "sisy-history: %s: %s\n", a.out,
			strerror(errno));
		return 2;
	}
	int rc = 0;
	for (int i = 0; i <= c->clients; i++) {
		cl[i].conf = c;
		cl[i].id = a.first_client + i;
		cl[i].recs = calloc(HIST_MAX_OPS, sizeof(hist_rec));
		if (!cl[i].recs ||
		    host_list(c, i, cl[i].hosts, sizeof cl[i].hosts) != 0)
			return usage();
	}
	/* The final reader goes through any node. */
	snprintf(cl[c->clients].hosts, sizeof cl[c->clients].hosts, "%s",
		 c->hosts);
	for (int i = 0; i < c->clients; i++)
		pthread_create(&cl[i].thread, NULL, history_client_run, &cl[i]);
	int64_t next_progress = 0;
	while (!stop_requested(c)) {
		if (a.progress && history_now() >= next_progress) {
			write_progress(a.progress, cl, c->clients);
			next_progress = history_now() + 50 * 1000000;
		}
		struct timespec ts = {0, 10 * 1000000};
		nanosleep(&ts, NULL);
	}
	if (a.progress)
		write_progress(a.progress, cl, c->clients);
	c->stop = 1;
	for (int i = 0; i < c->clients; i++)
		pthread_join(cl[i].thread, NULL);

	hist_client *fin = &cl[c->clients];
	char(*keys)[HIST_KEY] = NULL;
	size_t nkeys = a.final ? collect_keys(c, cl, &keys) : 0;
	const hist_rec **final_ok = calloc(nkeys ? nkeys : 1, sizeof *final_ok);
	if (a.final && final_ok)
		final_reads(fin, keys, nkeys, final_ok);
	history_client_close(fin);

	/* Direct check: every acknowledged fresh-key write reads back. */
	size_t lost = 0, unverified = 0, unique_ok = 0;
	size_t plen = strlen(c->prefix);
	for (size_t k = (size_t)c->keys; a.final && k < nkeys; k++) {
		const hist_rec *w = NULL;
		for (int i = 0; i < c->clients && !w; i++)
			for (size_t j = 0; j < cl[i].n && !w; j++)
				if (cl[i].recs[j].kind == HIST_PUT &&
				    cl[i].recs[j].key[plen] == 'u' &&
				    !strcmp(cl[i].recs[j].key, keys[k]))
					w = &cl[i].recs[j];
		if (!w || w->outcome != HIST_OK)
			continue;
		unique_ok++;
		if (!final_ok[k])
			unverified++;
		else if (!final_ok[k]->has_value ||
			 strcmp(final_ok[k]->value, w->value) != 0) {
			lost++;
			fprintf(stderr,
				"sisy-history: acknowledged write lost: %s = "
				"%s (read %s)\n",
				w->key, w->value,
				final_ok[k]->has_value ? final_ok[k]->value
						       : "nothing");
		}
	}
	size_t ops = 0, outcome[3] = {0}, writes_ok = 0, reads_ok = 0;
	for (int i = 0; i <= c->clients; i++)
		for (size_t j = 0; j < cl[i].n; j++) {
			const hist_rec *r = &cl[i].recs[j];
			write_rec(out, cl[i].id, r);
			ops++;
			outcome[r->outcome]++;
			writes_ok +=
			    r->kind != HIST_GET && r->outcome == HIST_OK;
			reads_ok +=
			    r->kind == HIST_GET && r->outcome == HIST_OK;
		}
	if (fclose(out) != 0) {
		fprintf(stderr, "sisy-history: writing %s failed\n", a.out);
		rc = 2;
	}
	int64_t gap_at = 0;
	double gap = max_write_gap(cl, c->clients, &gap_at);
	printf("history: clients=%d ops=%zu ok=%zu failed=%zu unknown=%zu "
	       "writes_ok=%zu reads_ok=%zu unique_ok=%zu lost=%zu "
	       "unverified=%zu max_write_gap_ms=%.1f gap_start_ns=%lld\n",
	       c->clients, ops, outcome[HIST_OK], outcome[HIST_FAILED],
	       outcome[HIST_UNKNOWN], writes_ok, reads_ok, unique_ok, lost,
	       unverified, gap, (long long)gap_at);
	for (int i = 0; i <= c->clients; i++)
		if (cl[i].err[0] && cl[i].n == 0)
			fprintf(stderr, "sisy-history: client %d: %s\n",
				cl[i].id, cl[i].err);
	if (lost || unverified)
		rc = 1;
	if (ops == 0)
		rc = 2;
	for (int i = 0; i <= c->clients; i++)
		free(cl[i].recs);
	free(cl);
	free(keys);
	free(final_ok);
	return rc;
}
