/*
 * ee_http_request_set_stream(): body chunks reach the receiver in order as
 * a backend appends them once the status is known, all at once when the
 * backend sets the status last; the body is kept as well; a receiver that
 * stops makes the call EE_ECANCELLED; a request that streamed a chunk is
 * never retried.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "execengine/errors.h"
#include "execengine/transport.h"

typedef struct {
    bool status_last;   /* set the status after the body */
    bool fail_after;    /* a network failure after the chunks */
    int calls;
} backend;

static ee_status be_http(void *vctx, const ee_http_request *req, ee_http_response *resp)
{
    (void)req;
    backend *b = vctx;
    b->calls++;
    if (!b->status_last)
        ee_http_response_set_status(resp, 200);
    ee_http_response_add_header(resp, "Content-Type", "text/event-stream");
    const char *chunks[] = {"data: 1\n\n", "data: 2\n\n", "data: 3\n\n"};
    for (int i = 0; i < 3; i++) {
        ee_status st = ee_http_response_append_body(resp, chunks[i], strlen(chunks[i]));
        if (st != EE_OK)
            return st;
    }
    if (b->fail_after)
        return EE_ENETWORK;
    if (b->status_last)
        ee_http_response_set_status(resp, 200);
    return EE_OK;
}

typedef struct {
    char got[256];
    int n;
    int stop_at;        /* stop on this chunk (1-based); 0: never */
    int saw_status;
} receiver;

static int on_chunk(const ee_http_response *resp, const void *chunk, size_t len, void *payload)
{
    receiver *r = payload;
    r->n++;
    r->saw_status = ee_http_response_status(resp);
    size_t l = strlen(r->got);
    snprintf(r->got + l, sizeof r->got - l, "[%.*s]", (int)len, (const char *)chunk);
    return r->stop_at != 0 && r->n >= r->stop_at;
}

static ee_transport *make(backend *b)
{
    static const ee_transport_backend t = {EE_TRANSPORT_BACKEND_VERSION, 0, be_http, NULL, NULL};
    ee_transport_options *o = NULL;
    cr_assert_eq(ee_transport_options_new(&o), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "retry_initial_ms", 1), EE_OK);
    ee_transport *tr = NULL;
    cr_assert_eq(ee_transport_new_custom(&tr, &t, b, o), EE_OK);
    ee_transport_options_free(o);
    return tr;
}

static ee_status run(backend *b, receiver *r, const char *method, ee_http_response **resp)
{
    ee_transport *tr = make(b);
    ee_http_request *req = NULL;
    cr_assert_eq(ee_http_request_new(&req, method, "http://127.0.0.1:9/x"), EE_OK);
    cr_assert_eq(ee_http_request_set_stream(req, on_chunk, r), EE_OK);
    ee_status st = ee_transport_http(tr, req, resp);
    ee_http_request_free(req);
    ee_transport_free(tr);
    return st;
}

Test(transport_stream, chunks_in_order_as_they_arrive_and_the_body_kept)
{
    backend b = {0};
    receiver r = {0};
    ee_http_response *resp = NULL;
    cr_assert_eq(run(&b, &r, "POST", &resp), EE_OK);
    cr_expect_eq(r.n, 3);
    cr_expect_str_eq(r.got, "[data: 1\n\n][data: 2\n\n][data: 3\n\n]");
    cr_expect_eq(r.saw_status, 200);
    const void *data;
    size_t len;
    cr_assert_eq(ee_http_response_body(resp, &data, &len), EE_OK);
    cr_expect_eq(len, 27);
    ee_http_response_free(resp);
}

Test(transport_stream, a_backend_that_sets_the_status_last_delivers_once_at_the_end)
{
    backend b = {.status_last = true};
    receiver r = {0};
    ee_http_response *resp = NULL;
    cr_assert_eq(run(&b, &r, "POST", &resp), EE_OK);
    cr_expect_eq(r.n, 1);
    cr_expect_str_eq(r.got, "[data: 1\n\ndata: 2\n\ndata: 3\n\n]");
    ee_http_response_free(resp);
}

Test(transport_stream, a_receiver_that_stops_cancels_the_call)
{
    backend b = {0};
    receiver r = {.stop_at = 2};
    ee_http_response *resp = NULL;
    cr_expect_eq(run(&b, &r, "POST", &resp), EE_ECANCELLED);
    cr_expect_null(resp);
    cr_expect_eq(r.n, 2);
    cr_expect_eq(b.calls, 1);
}

Test(transport_stream, a_get_that_streamed_is_not_retried)
{
    backend b = {.fail_after = true};
    receiver r = {0};
    ee_http_response *resp = NULL;
    cr_expect_eq(run(&b, &r, "GET", &resp), EE_ENETWORK);
    cr_expect_eq(b.calls, 1, "a GET is retried after a network failure, unless it streamed");
    cr_expect_eq(r.n, 3);
    /* without a stream the same GET is retried */
    ee_transport *tr = make(&b);
    ee_http_request *req = NULL;
    cr_assert_eq(ee_http_request_new(&req, "GET", "http://127.0.0.1:9/x"), EE_OK);
    b.calls = 0;
    cr_expect_eq(ee_transport_http(tr, req, &resp), EE_ENETWORK);
    cr_expect_gt(b.calls, 1);
    ee_http_request_free(req);
    ee_transport_free(tr);
    cr_expect_eq(ee_http_request_set_stream(NULL, on_chunk, NULL), EE_EINVAL);
}
