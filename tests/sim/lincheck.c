/* lincheck.c — the history store and the check driver.
 *
 * The driver splits the history by key (P-compositionality of a map), turns
 * each key's values into small integers, drops what cannot matter, runs the
 * search (lincheck_search.c) per key and writes the report.
 *
 * Dropped before the search, each provably without changing the verdict:
 *   - failed operations (they did not happen);
 *   - unknown gets (they observed nothing);
 *   - unknown puts/dels whose resulting value nobody observes (no get reads
 *     it, no cas expects it) on a key with no cas that reported "not
 *     swapped": placing such a write anywhere leaves its value visible only
 *     to unknown cas operations (which are optional too) until the next
 *     unconditional write, so leaving it out is always at least as good.
 * Values are per key: id 0 is "absent", ids 1.. are the distinct byte
 * strings, sorted.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "lincheck_int.h"

sisy_lincheck_history *sisy_lincheck_history_new(void)
{
	return calloc(1, sizeof(sisy_lincheck_history));
}

void sisy_lincheck_history_free(sisy_lincheck_history *h)
{
	if (!h)
		return;
	free(h->recs);
	sisy_buf_free(&h->arena);
	free(h);
}

size_t sisy_lincheck_count(const sisy_lincheck_history *h)
{
	return h->n;
}

static sisy_err arena_put(sisy_lincheck_history *h, sisy_slice s, uint32_t *off)
{
	if (h->arena.len + s.len > UINT32_MAX)
		return sisy_errf(SISY_E_TOOBIG,
				 "lincheck.c: history over 4 GiB");
	*off = (uint32_t)h->arena.len;
	return s.len ? sisy_buf_append(&h->arena, s.data, s.len) : SISY_OK;
}

static sisy_err validate(const sisy_lincheck_op *op)
{
	if (op->kind > SISY_LINCHECK_CAS)
		return sisy_errf(SISY_E_INVAL,
				 "lincheck.c: bad operation kind");
	if (op->outcome > SISY_LINCHECK_UNKNOWN_OUTCOME)
		return sisy_errf(SISY_E_INVAL, "lincheck.c: bad outcome");
	if (op->key.len > SISY_LINCHECK_MAX_KEY ||
	    op->value.len > SISY_LINCHECK_MAX_VALUE ||
	    op->expect.len > SISY_LINCHECK_MAX_VALUE)
		return sisy_errf(SISY_E_TOOBIG,
				 "lincheck.c: key over %d or value over %d "
				 "bytes",
				 SISY_LINCHECK_MAX_KEY,
				 SISY_LINCHECK_MAX_VALUE);
	if ((op->kind == SISY_LINCHECK_PUT || op->kind == SISY_LINCHECK_CAS) &&
	    !op->has_value)
		return sisy_errf(SISY_E_INVAL,
				 "lincheck.c: a put or cas needs a value");
	if (op->outcome != SISY_LINCHECK_UNKNOWN_OUTCOME && op->ret < op->call)
		return sisy_errf(SISY_E_INVAL,
				 "lincheck.c: response at %" PRId64
				 " before its call at %" PRId64,
				 op->ret, op->call);
	return SISY_OK;
}

sisy_err sisy_lincheck_add(sisy_lincheck_history *h, const sisy_lincheck_op *op)
{
	sisy_err rc = validate(op);
	if (rc != SISY_OK)
		return rc;
	if (h->n >= SISY_LINCHECK_MAX_OPS)
		return sisy_errf(SISY_E_TOOBIG,
				 "lincheck.c: more than %u operations",
				 SISY_LINCHECK_MAX_OPS);
	if (h->n == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 256;
		lincheck_rec *r = realloc(h->recs, nc * sizeof *r);
		if (!r)
			return sisy_errf(SISY_E_NOMEM, "lincheck.c: no memory");
		h->recs = r;
		h->cap = nc;
	}
	lincheck_rec *r = &h->recs[h->n];
	memset(r, 0, sizeof *r);
	r->client = op->client;
	r->call = op->call;
	r->ret =
	    op->outcome == SISY_LINCHECK_UNKNOWN_OUTCOME ? INT64_MAX : op->ret;
	r->kind = (uint8_t)op->kind;
	r->outcome = (uint8_t)op->outcome;
	r->has_value = op->has_value;
	r->has_expect = op->kind == SISY_LINCHECK_CAS && op->has_expect;
	r->swapped = op->kind == SISY_LINCHECK_CAS && op->swapped;
	r->key_len = (uint32_t)op->key.len;
	if ((rc = arena_put(h, op->key, &r->key_off)) != SISY_OK)
		return rc;
	if (op->has_value) {
		r->val_len = (uint32_t)op->value.len;
		if ((rc = arena_put(h, op->value, &r->val_off)) != SISY_OK)
			return rc;
	}
	if (r->has_expect) {
		r->exp_len = (uint32_t)op->expect.len;
		if ((rc = arena_put(h, op->expect, &r->exp_off)) != SISY_OK)
			return rc;
	}
	h->n++;
	return SISY_OK;
}

void sisy_lincheck_get(const sisy_lincheck_history *h, size_t i,
		       sisy_lincheck_op *out)
{
	assert(i < h->n);
	const lincheck_rec *r = &h->recs[i];
	memset(out, 0, sizeof *out);
	out->client = r->client;
	out->kind = (sisy_lincheck_kind)r->kind;
	out->outcome = (sisy_lincheck_outcome)r->outcome;
	out->key = lincheck_bytes(h, r->key_off, r->key_len);
	out->has_value = r->has_value;
	if (r->has_value)
		out->value = lincheck_bytes(h, r->val_off, r->val_len);
	out->has_expect = r->has_expect;
	if (r->has_expect)
		out->expect = lincheck_bytes(h, r->exp_off, r->exp_len);
	out->swapped = r->swapped;
	out->call = r->call;
	out->ret = r->ret;
}

const char *sisy_lincheck_verdict_name(sisy_lincheck_verdict v)
{
	switch (v) {
	case SISY_LINCHECK_LINEARIZABLE:
		return "linearizable";
	case SISY_LINCHECK_NOT_LINEARIZABLE:
		return "not linearizable";
	case SISY_LINCHECK_UNKNOWN:
		return "unknown";
	}
	return "?";
}

/* --- splitting by key ----------------------------------------------------- */

typedef struct key_ref {
	const uint8_t *p;
	uint32_t len;
	size_t rec;
} key_ref;

static int key_ref_cmp(const void *a, const void *b)
{
	const key_ref *x = a, *y = b;
	int c = sisy_slice_cmp(sisy_slice_make(x->p, x->len),
			       sisy_slice_make(y->p, y->len));
	if (c)
		return c;
	return x->rec < y->rec ? -1 : x->rec > y->rec;
}

/* Value ids of one key: `vals` sorted and unique; id = position + 1. */
typedef struct value_table {
	key_ref *vals;
	size_t n;
} value_table;

static uint32_t value_id(const value_table *t, const uint8_t *p, uint32_t len)
{
	key_ref k = {p, len, 0};
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = sisy_slice_cmp(
		    sisy_slice_make(t->vals[mid].p, t->vals[mid].len),
		    sisy_slice_make(k.p, k.len));
		if (c == 0)
			return (uint32_t)(mid + 1);
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	assert(!"value not interned");
	return 0;
}

static int build_values(const sisy_lincheck_history *h, const key_ref *grp,
			size_t n, value_table *t)
{
	t->vals = malloc((2 * n + 1) * sizeof *t->vals);
	if (!t->vals)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const lincheck_rec *r = &h->recs[grp[i].rec];
		if (r->has_value)
			t->vals[k++] = (key_ref){h->arena.data + r->val_off,
						 r->val_len, 0};
		if (r->has_expect)
			t->vals[k++] = (key_ref){h->arena.data + r->exp_off,
						 r->exp_len, 0};
	}
	qsort(t->vals, k, sizeof *t->vals, key_ref_cmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 ||
		    sisy_slice_cmp(
			sisy_slice_make(t->vals[u - 1].p, t->vals[u - 1].len),
			sisy_slice_make(t->vals[i].p, t->vals[i].len)))
			t->vals[u++] = t->vals[i];
	t->n = u;
	return 0;
}

static lincheck_kop to_kop(const sisy_lincheck_history *h, size_t rec,
			   const value_table *t)
{
	const lincheck_rec *r = &h->recs[rec];
	lincheck_kop o;
	memset(&o, 0, sizeof o);
	o.kind = r->kind;
	o.unknown = r->outcome == SISY_LINCHECK_UNKNOWN_OUTCOME;
	o.swapped = r->swapped;
	o.value = r->has_value
		      ? value_id(t, h->arena.data + r->val_off, r->val_len)
		      : 0;
	o.expect = r->has_expect
		       ? value_id(t, h->arena.data + r->exp_off, r->exp_len)
		       : 0;
	o.call = r->call;
	o.ret = r->ret;
	o.rec = rec;
	return o;
}

static int kop_call_cmp(const void *a, const void *b)
{
	const lincheck_kop *x = a, *y = b;
	if (x->call != y->call)
		return x->call < y->call ? -1 : 1;
	return x->rec < y->rec ? -1 : x->rec > y->rec;
}

/* Drops failed ops, unknown gets and unobservable unknown writes. */
static size_t select_ops(const lincheck_kop *all, size_t n, size_t nvals,
			 lincheck_kop *out)
{
	uint8_t *observed = calloc(nvals + 1, 1);
	int prune = observed != NULL;
	for (size_t i = 0; prune && i < n; i++) {
		const lincheck_kop *o = &all[i];
		if (o->kind == SISY_LINCHECK_GET && !o->unknown)
			observed[o->value] = 1;
		if (o->kind == SISY_LINCHECK_CAS) {
			observed[o->expect] = 1;
			if (!o->unknown && !o->swapped)
				prune = 0;
		}
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const lincheck_kop *o = &all[i];
		if (o->unknown && o->kind == SISY_LINCHECK_GET)
			continue;
		if (o->unknown && prune &&
		    (o->kind == SISY_LINCHECK_PUT ||
		     o->kind == SISY_LINCHECK_DEL)) {
			uint32_t result =
			    o->kind == SISY_LINCHECK_PUT ? o->value : 0;
			if (!observed[result])
				continue;
		}
		out[k++] = *o;
	}
	free(observed);
	return k;
}

/* --- the report ----------------------------------------------------------- */

typedef struct report {
	char *p;
	size_t cap, len;
} report;

static void rep(report *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rep(report *r, const char *fmt, ...)
{
	if (r->len + 1 >= r->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(r->p + r->len, r->cap - r->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		r->len += (size_t)n < r->cap - r->len ? (size_t)n
						      : r->cap - r->len - 1;
}

static void rep_bytes(report *r, const uint8_t *p, size_t len)
{
	rep(r, "\"");
	size_t show = len > 40 ? 40 : len;
	for (size_t i = 0; i < show; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\')
			rep(r, "%c", p[i]);
		else
			rep(r, "\\x%02x", p[i]);
	}
	rep(r, "%s\"", len > show ? "..." : "");
}

static void rep_op(report *r, const sisy_lincheck_history *h, size_t rec)
{
	static const char *const kinds[] = {"put", "get", "del", "cas"};
	const lincheck_rec *o = &h->recs[rec];
	rep(r, "#%zu client %" PRIu64 " %s", rec, o->client, kinds[o->kind]);
	if (o->kind == SISY_LINCHECK_CAS) {
		rep(r, " expect ");
		if (o->has_expect)
			rep_bytes(r, h->arena.data + o->exp_off, o->exp_len);
		else
			rep(r, "absent");
	}
	if (o->kind != SISY_LINCHECK_DEL) {
		rep(r, o->kind == SISY_LINCHECK_GET ? " -> " : " ");
		if (o->has_value)
			rep_bytes(r, h->arena.data + o->val_off, o->val_len);
		else
			rep(r, "absent");
	}
	if (o->kind == SISY_LINCHECK_CAS && o->outcome == SISY_LINCHECK_OK)
		rep(r, o->swapped ? " swapped" : " not swapped");
	if (o->outcome == SISY_LINCHECK_UNKNOWN_OUTCOME)
		rep(r, " [%" PRId64 ", unknown]", o->call);
	else
		rep(r, " [%" PRId64 ", %" PRId64 "]", o->call, o->ret);
}

static void rep_state(report *r, const value_table *t, uint32_t state)
{
	if (state == 0)
		rep(r, "absent");
	else
		rep_bytes(r, t->vals[state - 1].p, t->vals[state - 1].len);
}

static void report_key(report *r, const sisy_lincheck_history *h,
		       const key_ref *k, const lincheck_kop *ops,
		       const value_table *t, const lincheck_failure *f,
		       sisy_lincheck_verdict v)
{
	rep(r, "key ");
	rep_bytes(r, k->p, k->len);
	if (v == SISY_LINCHECK_UNKNOWN) {
		rep(r, ": %s exhausted; ",
		    f->memory_exhausted ? "memory" : "step budget");
		return;
	}
	rep(r,
	    ": no linearization. Deepest order placed %zu ops, then "
	    "the state was ",
	    f->depth);
	rep_state(r, t, f->state);
	rep(r, " and this op could not take effect before its response:\n  ");
	rep_op(r, h, ops[f->stuck].rec);
	if (f->nprefix)
		rep(r, "\nlast ops placed (oldest first):");
	for (size_t i = 0; i < f->nprefix; i++) {
		rep(r, "\n  ");
		rep_op(r, h, ops[f->prefix[i]].rec);
	}
}

/* --- driver --------------------------------------------------------------- */

/* Search steps spent explaining a failure the zones already proved. */
#define EXPLAIN_STEPS (1000 * 1000)

static void report_zones(report *r, const sisy_lincheck_history *h,
			 const key_ref *k, const lincheck_kop *ops,
			 const value_table *t, const lincheck_zone_failure *z)
{
	rep(r, "key ");
	rep_bytes(r, k->p, k->len);
	rep(r, ": not linearizable (zones): ");
	switch (z->kind) {
	case LINCHECK_ZONE_NO_PUT:
		rep(r, "this get read a value no put wrote:\n  ");
		rep_op(r, h, ops[z->op].rec);
		break;
	case LINCHECK_ZONE_READ_EARLY:
		rep(r, "this get returned before the put of its value was "
		       "called:\n  ");
		rep_op(r, h, ops[z->op].rec);
		break;
	case LINCHECK_ZONE_OVERLAP:
	case LINCHECK_ZONE_INSIDE:
		rep(r, "value ");
		rep_state(r, t, z->value_b);
		rep(r, z->kind == LINCHECK_ZONE_OVERLAP
			   ? " must be current at a time when "
			   : " can only be written and read while ");
		rep_state(r, t, z->value_a);
		rep(r, " must stay current");
		break;
	}
	rep(r, "; ");
}

/* Checks the ops grp[0..n) of one key. */
static sisy_lincheck_verdict check_key(const sisy_lincheck_history *h,
				       const key_ref *grp, size_t n,
				       lincheck_budget *b, bool search_only,
				       report *r, size_t *nops)
{
	value_table t = {0};
	lincheck_kop *all = malloc(n * sizeof *all);
	lincheck_kop *sel = malloc(n * sizeof *sel);
	sisy_lincheck_verdict v = SISY_LINCHECK_UNKNOWN;
	lincheck_failure f;
	memset(&f, 0, sizeof f);
	size_t k = 0;
	if (!all || !sel || build_values(h, grp, n, &t) != 0) {
		rep(r, "out of memory; ");
		goto out;
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (h->recs[grp[i].rec].outcome != SISY_LINCHECK_FAILED)
			all[m++] = to_kop(h, grp[i].rec, &t);
	k = select_ops(all, m, t.n, sel);
	/* Call order keeps the search's linearized sets compact. */
	qsort(sel, k, sizeof *sel, kop_call_cmp);
	lincheck_zone_failure zf;
	sisy_lincheck_verdict zv = search_only
				       ? SISY_LINCHECK_UNKNOWN
				       : lincheck_zones(sel, k, t.n, &zf);
	if (zv == SISY_LINCHECK_LINEARIZABLE) {
		v = zv;
		goto out;
	}
	/* Not applicable, or a failure the search will explain: then the
	 * verdict is known and the search only looks for a better report,
	 * within a smaller budget. */
	lincheck_budget explain = *b;
	if (explain.steps_left > EXPLAIN_STEPS)
		explain.steps_left = EXPLAIN_STEPS;
	lincheck_budget *use =
	    zv == SISY_LINCHECK_NOT_LINEARIZABLE ? &explain : b;
	v = lincheck_search(sel, k, use, &f);
	b->steps_used += use == b ? 0 : explain.steps_used - b->steps_used;
	if (zv == SISY_LINCHECK_NOT_LINEARIZABLE &&
	    v != SISY_LINCHECK_NOT_LINEARIZABLE) {
		if (v == SISY_LINCHECK_LINEARIZABLE) {
			/* The two methods disagree: a checker bug. Never a
			 * pass. */
			rep(r, "key ");
			rep_bytes(r, grp[0].p, grp[0].len);
			rep(r, ": INTERNAL: zones and search disagree; ");
			v = SISY_LINCHECK_UNKNOWN;
		} else {
			report_zones(r, h, &grp[0], sel, &t, &zf);
			v = SISY_LINCHECK_NOT_LINEARIZABLE;
		}
		goto out;
	}
	if (v != SISY_LINCHECK_LINEARIZABLE)
		report_key(r, h, &grp[0], sel, &t, &f, v);
out:
	*nops += k;
	free(t.vals);
	free(all);
	free(sel);
	return v;
}

void sisy_lincheck_check(const sisy_lincheck_history *h,
			 const sisy_lincheck_opts *opts,
			 sisy_lincheck_result *res)
{
	memset(res, 0, sizeof *res);
	uint64_t max_steps = opts && opts->max_steps
				 ? opts->max_steps
				 : SISY_LINCHECK_DEFAULT_STEPS;
	lincheck_budget b = {
	    .max_memory = opts && opts->max_memory
			      ? opts->max_memory
			      : SISY_LINCHECK_DEFAULT_MEMORY,
	};
	report r = {res->detail, sizeof res->detail, 0};
	res->detail[0] = '\0';
	key_ref *keys = malloc((h->n + 1) * sizeof *keys);
	if (!keys) {
		res->verdict = SISY_LINCHECK_UNKNOWN;
		rep(&r, "out of memory");
		return;
	}
	for (size_t i = 0; i < h->n; i++)
		keys[i] = (key_ref){h->arena.data + h->recs[i].key_off,
				    h->recs[i].key_len, i};
	qsort(keys, h->n, sizeof *keys, key_ref_cmp);
	int any_unknown = 0, any_bad = 0;
	for (size_t i = 0; i < h->n;) {
		size_t j = i + 1;
		while (j < h->n && keys[j].len == keys[i].len &&
		       memcmp(keys[j].p, keys[i].p, keys[i].len) == 0)
			j++;
		res->keys++;
		b.steps_left = max_steps;
		sisy_lincheck_verdict v =
		    check_key(h, keys + i, j - i, &b, opts && opts->search_only,
			      &r, &res->ops);
		any_bad |= v == SISY_LINCHECK_NOT_LINEARIZABLE;
		any_unknown |= v == SISY_LINCHECK_UNKNOWN;
		i = j;
	}
	res->verdict = any_bad	     ? SISY_LINCHECK_NOT_LINEARIZABLE
		       : any_unknown ? SISY_LINCHECK_UNKNOWN
				     : SISY_LINCHECK_LINEARIZABLE;
	res->steps = b.steps_used;
	free(keys);
}
