/* history_client.c — one client of sisy-history: its session, its
 * operations, their retries and their records (the rules are in
 * history.h). The session is dropped on any connection error and made
 * again before the next attempt with the same client id, so retried writes
 * keep their sequence numbers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "history.h"
#include "rand.h"

int64_t history_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void pause_ms(uint32_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

hist_rec *history_rec_new(hist_client *h)
{
	if (h->n == HIST_MAX_OPS)
		return NULL;
	hist_rec *r = &h->recs[h->n++];
	memset(r, 0, sizeof *r);
	return r;
}

void history_client_close(hist_client *h)
{
	sisy_client_close(h->c);
	h->c = NULL;
}

sisy_err history_client_connect(hist_client *h)
{
	if (h->c)
		return SISY_OK;
	/* Sequence numbers are ours (write_op passes each explicitly): 0
	 * would make the library pick one, which could repeat one of ours
	 * and be answered as a duplicate without being applied. */
	if (h->next_seq == 0)
		h->next_seq = 1;
	sisy_client_opts o = h->conf->base;
	o.hosts = h->hosts;
	o.client_id = h->client_id;
	o.first_seq = h->next_seq;
	o.io_timeout_ms = h->conf->io_timeout_ms;
	/* A live node answers a connect at once; the login's key derivation
	 * runs here and must not be cut short by a short io timeout. */
	o.connect_timeout_ms = 5000;
	sisy_err rc = sisy_client_connect(&o, &h->c);
	if (rc != SISY_OK) {
		h->c = NULL;
		snprintf(h->err, sizeof h->err, "connect: %s", sisy_errmsg());
		return rc;
	}
	sisy_client_info info;
	sisy_client_get_info(h->c, &info);
	h->client_id = info.client_id;
	snprintf(h->host, sizeof h->host, "%s", info.host ? info.host : "");
	return SISY_OK;
}

/* Whether a write answered `e` may be tried again with the same sequence;
 * *maybe is set when the attempt may have been applied. Only answers that
 * say the write was refused before it could be proposed leave *maybe
 * alone; anything unexpected counts as may-have-applied. */
static bool retryable(sisy_err e, bool *maybe)
{
	switch (e) {
	case SISY_E_UNKNOWN_OUTCOME:
	case SISY_E_CLOSED:   /* the session ended around it */
	case SISY_E_FAILED:   /* the node stopped, perhaps after proposing */
	case SISY_E_INTERNAL: /* nothing promises it was not proposed */
	case SISY_E_TIMEOUT:
		*maybe = true;
		return true;
	case SISY_E_NOLEADER:
	case SISY_E_NOTLEADER:
	case SISY_E_BUSY:
		return true;
	case SISY_E_PERM:
	case SISY_E_INVAL:
	case SISY_E_TOOBIG:
	case SISY_E_NOSPC:
	case SISY_E_NOTSUP:
		return false;
	default:
		*maybe = true;
		return false;
	}
}

/* A write (put, del, cas), retried like the shell's; fills rec. */
static void write_op(hist_client *h, hist_rec *rec, const sisy_cond *cond)
{
	const hist_conf *cf = h->conf;
	if (h->next_seq == 0)
		h->next_seq = 1;
	uint64_t seq = h->next_seq++;
	bool maybe = false, done = false;
	uint32_t backoff = cf->backoff_ms < 20 ? cf->backoff_ms : 20;
	rec->call = history_now();
	int64_t deadline = rec->call + (int64_t)cf->retry_ms * 1000000;
	rec->outcome = HIST_FAILED;
	while (!done) {
		if (history_client_connect(h) == SISY_OK) {
			sisy_req q = {
			    .op = rec->kind == HIST_DEL ? SISY_OP_DEL
							: SISY_OP_PUT,
			    .key = sisy_slice_make(rec->key, strlen(rec->key)),
			    .value =
				sisy_slice_make(rec->value, strlen(rec->value)),
			    .seq = seq};
			if (cond)
				q.cond = *cond;
			sisy_reply *rep = NULL;
			rec->sent = history_now();
			sisy_err rc = sisy_client_call(h->c, &q, &rep);
			int64_t t = history_now();
			snprintf(rec->host, sizeof rec->host, "%s", h->host);
			if (rc != SISY_OK) {
				/* Sent, perhaps: the answer is lost. */
				maybe = true;
				history_client_close(h);
			} else if (rep->err == SISY_OK ||
				   (rep->err == SISY_E_CONFLICT &&
				    rec->kind == HIST_CAS)) {
				rec->outcome = HIST_OK;
				rec->swapped = rep->err == SISY_OK;
				rec->ret = t;
				done = true;
			} else if (!retryable(rep->err, &maybe)) {
				rec->ret = t;
				done = true;
			} else if (rep->err == SISY_E_CLOSED) {
				history_client_close(h);
			}
			sisy_reply_free(rep);
			if (done)
				break;
		}
		if (history_now() + (int64_t)backoff * 1000000 >= deadline)
			break;
		pause_ms(backoff);
		backoff =
		    backoff * 2 > cf->backoff_ms ? cf->backoff_ms : backoff * 2;
	}
	if (rec->outcome != HIST_OK) {
		if (maybe)
			rec->outcome = HIST_UNKNOWN;
		if (!rec->ret)
			rec->ret = history_now();
	}
}

/* A linearizable GET; *version gets the key's version when ok. */
static hist_rec *get_op(hist_client *h, const char *key, uint64_t *version)
{
	hist_rec *rec = history_rec_new(h);
	if (!rec)
		return NULL;
	rec->kind = HIST_GET;
	snprintf(rec->key, sizeof rec->key, "%s", key);
	rec->outcome = HIST_FAILED;
	if (history_client_connect(h) != SISY_OK) {
		rec->call = rec->ret = history_now();
		return rec; /* never sent */
	}
	/* After the login (an Argon2id derivation may take a while): the
	 * interval is the request's own. */
	rec->call = rec->sent = history_now();
	sisy_req q = {.op = SISY_OP_GET,
		      .key = sisy_slice_make(rec->key, strlen(rec->key)),
		      .with_version = true};
	sisy_reply *rep = NULL;
	sisy_err rc = sisy_client_call(h->c, &q, &rep);
	rec->ret = history_now();
	snprintf(rec->host, sizeof rec->host, "%s", h->host);
	if (rc != SISY_OK) {
		rec->outcome = HIST_UNKNOWN;
		history_client_close(h);
	} else if (rep->err == SISY_OK) {
		rec->outcome = HIST_OK;
		rec->has_value = rep->found;
		if (rep->found) {
			if (rep->value.len >= sizeof rec->value) {
				/* Nobody writes such values here: keep the
				 * evidence visible to the checker. */
				memcpy(rec->value, "<too long>", 11);
			} else {
				memcpy(rec->value, rep->value.data,
				       rep->value.len);
				rec->value[rep->value.len] = '\0';
			}
		}
		*version = rep->found ? rep->version : 0;
	} else if (rep->err == SISY_E_CLOSED) {
		history_client_close(h);
	}
	sisy_reply_free(rep);
	return rec;
}

static void new_value(hist_client *h, hist_rec *rec)
{
	snprintf(rec->value, sizeof rec->value, "c%d.%llu", h->id,
		 (unsigned long long)h->ops);
}

/* One operation chosen at random; false when the record table is full. */
static bool one_op(hist_client *h, sisy_rand *r)
{
	const hist_conf *cf = h->conf;
	char key[HIST_KEY];
	int pick = (int)sisy_rand_below(r, 100);
	h->ops++;
	snprintf(key, sizeof key, "%sr%llu", cf->prefix,
		 (unsigned long long)sisy_rand_below(r, (uint64_t)cf->keys));
	if (pick < cf->put_pct) {
		hist_rec *rec = history_rec_new(h);
		if (!rec)
			return false;
		rec->kind = HIST_PUT;
		rec->has_value = true;
		new_value(h, rec);
		if ((int)sisy_rand_below(r, 100) < cf->unique_pct)
			snprintf(rec->key, sizeof rec->key, "%su%d.%llu",
				 cf->prefix, h->id, (unsigned long long)h->ops);
		else
			snprintf(rec->key, sizeof rec->key, "%s", key);
		write_op(h, rec, NULL);
	} else if (pick < cf->put_pct + cf->cas_pct) {
		uint64_t version = 0;
		hist_rec *g = get_op(h, key, &version);
		if (!g)
			return false;
		if (g->outcome != HIST_OK)
			return true;
		hist_rec *rec = history_rec_new(h);
		if (!rec)
			return false;
		rec->kind = HIST_CAS;
		rec->has_value = true;
		snprintf(rec->key, sizeof rec->key, "%s", key);
		new_value(h, rec);
		rec->has_expect = g->has_value;
		memcpy(rec->expect, g->value, sizeof rec->expect);
		sisy_cond cond = {.kind = g->has_value ? SISY_COND_VERSION
						       : SISY_COND_ABSENT,
				  .version = version};
		write_op(h, rec, &cond);
	} else if (pick < cf->put_pct + cf->cas_pct + cf->del_pct) {
		hist_rec *rec = history_rec_new(h);
		if (!rec)
			return false;
		rec->kind = HIST_DEL;
		snprintf(rec->key, sizeof rec->key, "%s", key);
		write_op(h, rec, NULL);
	} else {
		uint64_t version;
		hist_rec *g = get_op(h, key, &version);
		if (!g)
			return false;
	}
	return true;
}

void *history_client_run(void *arg)
{
	hist_client *h = arg;
	const hist_conf *cf = h->conf;
	sisy_rand r;
	sisy_rand_seed(&r, cf->seed * 1000003u + (uint64_t)h->id);
	uint32_t pause = 0;
	while (!cf->stop && history_now() < cf->deadline) {
		size_t before = h->n;
		bool ok = one_op(h, &r);
		for (size_t i = before; i < h->n; i++) {
			const hist_rec *x = &h->recs[i];
			if (x->outcome == HIST_OK && x->kind == HIST_GET)
				atomic_fetch_add(&h->ok_reads, 1);
			else if (x->outcome == HIST_OK) {
				atomic_fetch_add(&h->ok_writes, 1);
				atomic_store(&h->last_ok_write, x->ret);
			}
			atomic_fetch_add(&h->done, 1);
		}
		if (!ok) {
			snprintf(h->err, sizeof h->err,
				 "record table full (%d)", HIST_MAX_OPS);
			break;
		}
		/* After a failure, back off a little (bounded), so a client
		 * facing a node without a leader does not spin. */
		bool bad =
		    h->n > before && h->recs[h->n - 1].outcome != HIST_OK;
		pause = bad ? (pause ? (pause * 2 > 200 ? 200 : pause * 2) : 10)
			    : 0;
		if (pause)
			pause_ms(pause);
	}
	history_client_close(h);
	return NULL;
}
