/* Tests sisyd/server/handler.c: the queue's request recycling. A finished
 * request of a server is kept as a spare (bounded by SRV_REQ_SPARE, with
 * a small reply buffer only) and the next request is decoded into it,
 * fresh in every field a new one would have; without a server (the
 * decoder's tests, the fuzzer) requests are simply freed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sisy.pb-c.h"
#include "srv_int.h"

/* A canonical PUT k=v (the hand decoder's case) packed into out. */
static size_t put_msg(uint64_t id, const char *k, const char *v, uint8_t *out)
{
	Sisy__Request m = SISY__REQUEST__INIT;
	Sisy__PutRequest p = SISY__PUT_REQUEST__INIT;
	p.key.data = (uint8_t *)k;
	p.key.len = strlen(k);
	p.value.data = (uint8_t *)v;
	p.value.len = strlen(v);
	m.id = id;
	m.client_id = 7;
	m.seq = id;
	m.op_case = SISY__REQUEST__OP_PUT;
	m.put = &p;
	return sisy__request__pack(&m, out);
}

static srv_conn *new_conn(void)
{
	srv_conn *c = calloc(1, sizeof *c);
	assert_non_null(c);
	c->role = SISY_ROLE_READWRITE; /* a PUT is classified as a write */
	return c;
}

static srv_req *pop_head(srv_conn *c)
{
	srv_req *r = c->head;
	assert_non_null(r);
	c->head = r->next;
	if (c->head == NULL)
		c->tail = NULL;
	c->undispatched = NULL;
	c->nreq--;
	c->queued_bytes -= r->bytes;
	return r;
}

static void test_spare_reused_fresh(void **state)
{
	(void)state;
	sisy_server *s = calloc(1, sizeof *s);
	srv_conn *c = new_conn();
	assert_non_null(s);
	strcpy(c->user, "a-rather-long-name");
	uint8_t buf[256];
	size_t n = put_msg(1, "key-one", "value-one", buf);
	handler_on_request(s, c, sisy_slice_make(buf, n));
	srv_req *r = pop_head(c);
	assert_ptr_equal(r->srv, s);
	assert_int_equal(r->msg->put->key.len, 7);
	assert_int_equal(r->kind, REQ_WRITE);
	assert_int_equal(r->out.len, 0);
	/* As if finished: a reply packed, state that must not survive. */
	handler_fail(r, SISY_E_INVAL, "x");
	assert_true(r->out.len > 0);
	r->done = r->dispatched = r->in_node = true;
	r->deadline_ms = 99;
	r->token_set = true;
	r->attempts = 3;
	r->fwd_out_id = 4;
	r->change_index = 5;
	assert_ptr_equal(r->ops, &r->op1);
	assert_string_equal(r->user, "a-rather-long-name");
	handler_req_free(r);
	assert_int_equal(s->nspare, 1);
	assert_ptr_equal(s->spare, r);

	strcpy(c->user, "bob");
	c->role = SISY_ROLE_ADMIN;
	n = put_msg(2, "k2", "v2", buf);
	handler_on_request(s, c, sisy_slice_make(buf, n));
	assert_int_equal(s->nspare, 0);
	srv_req *q = pop_head(c);
	assert_ptr_equal(q, r); /* the spare, not a new allocation */
	assert_int_equal(q->out.len, 0);
	assert_false(q->done || q->dispatched || q->in_node);
	assert_int_equal(q->deadline_ms, 0);
	/* state of the last request is gone */
	assert_false(q->token_set);
	assert_int_equal(q->attempts, 0);
	assert_int_equal(q->fwd_out_id, 0);
	assert_int_equal(q->change_index, 0);
	/* and this request's user, role and op are set */
	assert_string_equal(q->user, "bob");
	assert_int_equal(q->role, SISY_ROLE_ADMIN);
	assert_ptr_equal(q->ops, &q->op1);
	assert_int_equal(q->nops, 1);
	assert_false(q->op1.del);
	assert_int_equal(q->op1.key.len, 2);
	assert_memory_equal(q->op1.key.data, "k2", 2);
	assert_int_equal(q->op1.value.len, 2);
	assert_int_equal(q->kind, REQ_WRITE);
	assert_int_equal(q->msg->id, 2);
	assert_int_equal(q->msg->put->key.len, 2);
	assert_memory_equal(q->msg->put->key.data, "k2", 2);
	assert_memory_equal(q->msg->put->value.data, "v2", 2);
	handler_req_free(q);
	handler_spare_free(s);
	assert_null(s->spare);
	assert_int_equal(s->nspare, 0);
	free(c);
	free(s);
}

static void test_spares_bounded(void **state)
{
	(void)state;
	sisy_server *s = calloc(1, sizeof *s);
	srv_conn *c = new_conn();
	assert_non_null(s);
	strcpy(c->user, "a-rather-long-name");
	uint8_t buf[256];
	size_t n = put_msg(1, "k", "v", buf);
	for (size_t i = 0; i < SRV_REQ_SPARE + 10; i++)
		handler_on_request(s, c, sisy_slice_make(buf, n));
	assert_int_equal(c->nreq, SRV_REQ_SPARE + 10);
	while (c->head)
		handler_req_free(pop_head(c));
	assert_int_equal(s->nspare, SRV_REQ_SPARE);
	/* A request whose reply grew large is not kept. */
	handler_on_request(s, c, sisy_slice_make(buf, n));
	srv_req *r = pop_head(c);
	assert_int_equal(sisy_buf_reserve(&r->out, SRV_REQ_SPARE_OUT + 1),
			 SISY_OK);
	s->nspare = 0; /* room, so only the size decides */
	srv_req *keep = s->spare;
	s->spare = NULL;
	handler_req_free(r);
	assert_int_equal(s->nspare, 0);
	assert_null(s->spare);
	s->spare = keep;
	s->nspare = SRV_REQ_SPARE - 1;
	handler_spare_free(s);
	/* Without a server: freed (ASan / valgrind check nothing leaks). */
	srv_req *f = handler_decode(c, sisy_slice_make(buf, n));
	assert_non_null(f);
	assert_null(f->srv);
	handler_req_free(f);
	free(c);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spare_reused_fresh),
	    cmocka_unit_test(test_spares_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
