/*
 * The transport vtable contract and the retry policy, with a scripted
 * in-process backend (no network): versions, missing slots, resolved
 * limits, which failures are retried, serialisation of a backend that is
 * not thread-safe, and the request/response/mail objects' validation.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "execengine/errors.h"
#include "execengine/transport.h"
#include "transport/transport_internal.h"

/* One scripted outcome per attempt. */
typedef struct {
    ee_status status;
    int http;
    bool not_sent;
} outcome;

typedef struct {
    outcome script[8];
    int calls;
    int freed;
    int64_t seen_connect, seen_total, seen_cap;
    atomic_int inside, max_inside;
} script_ctx;

static ee_status script_http(void *vctx, const ee_http_request *req, ee_http_response *resp)
{
    script_ctx *c = vctx;
    int now = atomic_fetch_add(&c->inside, 1) + 1;
    if (now > atomic_load(&c->max_inside))
        atomic_store(&c->max_inside, now);
    usleep(2000);
    c->seen_connect = ee_http_request_connect_timeout_ms(req);
    c->seen_total = ee_http_request_timeout_ms(req);
    c->seen_cap = ee_http_request_max_response_bytes(req);
    outcome o = c->script[c->calls < 8 ? c->calls : 7];
    c->calls++;
    atomic_fetch_sub(&c->inside, 1);
    if (o.not_sent)
        ee_http_response_set_not_sent(resp);
    if (o.status != EE_OK)
        return o.status;
    ee_http_response_set_status(resp, o.http);
    ee_http_response_add_header(resp, "Content-Type", "text/plain");
    return ee_http_response_append_body(resp, "ok", 2);
}

static void script_free(void *vctx)
{
    ((script_ctx *)vctx)->freed++;
}

static ee_transport_backend table = {1, 0, script_http, NULL, script_free};

static ee_transport *make(script_ctx *c, unsigned flags)
{
    ee_transport_options *o;
    cr_assert_eq(ee_transport_options_new(&o), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "retry_initial_ms", 1), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "retry_max_ms", 2), EE_OK);
    ee_transport_backend t = table;
    t.flags = flags;
    ee_transport *tr;
    cr_assert_eq(ee_transport_new_custom(&tr, &t, c, o), EE_OK);
    ee_transport_options_free(o);
    return tr;
}

static ee_status run(ee_transport *tr, const char *method, int retry_safe, ee_http_response **r)
{
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, method, "http://example.test/x"), EE_OK);
    if (retry_safe >= 0)
        ee_http_request_set_retry_safe(req, retry_safe);
    ee_status st = ee_transport_http(tr, req, r);
    ee_http_request_free(req);
    return st;
}

Test(vtable, versions_outside_the_known_range_are_refused)
{
    script_ctx c = {0};
    ee_transport *tr = NULL;
    ee_transport_backend t = table;
    t.version = 0;
    cr_assert_eq(ee_transport_new_custom(&tr, &t, &c, NULL), EE_EVERSION);
    t.version = EE_TRANSPORT_BACKEND_VERSION + 1;
    cr_assert_eq(ee_transport_new_custom(&tr, &t, &c, NULL), EE_EVERSION);
    cr_assert_null(tr);
    cr_assert_eq(c.freed, 0, "a refused table's ctx stays the caller's");
    cr_assert_eq(ee_transport_new_custom(NULL, &t, &c, NULL), EE_EINVAL);
}

Test(vtable, missing_slots_are_not_supported)
{
    script_ctx c = {0};
    ee_transport_backend t = {1, 0, NULL, NULL, script_free};
    ee_transport *tr;
    cr_assert_eq(ee_transport_new_custom(&tr, &t, &c, NULL), EE_OK);
    ee_http_response *r;
    cr_assert_eq(run(tr, "GET", -1, &r), EE_ENOTSUPPORTED);
    ee_mail *m;
    cr_assert_eq(ee_mail_new(&m, "smtp://127.0.0.1:25", "a@b.test"), EE_OK);
    cr_assert_eq(ee_mail_add_recipient(m, "c@d.test"), EE_OK);
    cr_assert_eq(ee_transport_mail(tr, m), EE_ENOTSUPPORTED);
    ee_mail_free(m);
    ee_transport_free(tr);
    cr_assert_eq(c.freed, 1, "free slot called once");
}

Test(vtable, backend_sees_resolved_limits)
{
    script_ctx c = {.script = {{EE_OK, 200, false}, {EE_OK, 200, false}}};
    ee_transport *tr = make(&c, 0);
    ee_http_response *r;
    cr_assert_eq(run(tr, "GET", -1, &r), EE_OK);
    cr_assert_eq(c.seen_connect, 10000);
    cr_assert_eq(c.seen_total, 30000);
    cr_assert_eq(c.seen_cap, 16 * 1024 * 1024);
    const void *b;
    size_t len;
    ee_http_response_body(r, &b, &len);
    cr_assert_eq(len, 2);
    cr_assert_str_eq(b, "ok");
    ee_http_response_free(r);

    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "GET", "http://example.test/"), EE_OK);
    cr_assert_eq(ee_http_request_set_limits(req, 5, 6, 7), EE_OK);
    cr_assert_eq(ee_transport_http(tr, req, &r), EE_OK);
    cr_assert_eq(c.seen_connect, 5);
    cr_assert_eq(c.seen_total, 6);
    cr_assert_eq(c.seen_cap, 7);
    cr_assert_eq(ee_http_request_timeout_ms(req), 6, "the caller's request is untouched");
    ee_http_response_free(r);
    ee_http_request_free(req);
    ee_transport_free(tr);
}

Test(vtable, get_network_failures_are_retried)
{
    script_ctx c = {.script = {{EE_ENETWORK, 0, false}, {EE_ETIMEOUT, 0, false}, {EE_OK, 200, false}}};
    ee_transport *tr = make(&c, 0);
    ee_http_response *r;
    cr_assert_eq(run(tr, "GET", -1, &r), EE_OK);
    cr_assert_eq(c.calls, 3);
    cr_assert_eq(ee_http_response_attempts(r), 3);
    ee_http_response_free(r);
    ee_transport_free(tr);
}

Test(vtable, post_failures_after_sending_are_final)
{
    script_ctx c = {.script = {{EE_ENETWORK, 0, false}, {EE_OK, 200, false}}};
    ee_transport *tr = make(&c, 0);
    ee_http_response *r;
    cr_assert_eq(run(tr, "POST", -1, &r), EE_ENETWORK);
    cr_assert_eq(c.calls, 1);
    c.calls = 0;
    c.script[0] = (outcome){EE_ETIMEOUT, 0, false};
    cr_assert_eq(run(tr, "PATCH", -1, &r), EE_ETIMEOUT);
    cr_assert_eq(c.calls, 1);
    c.calls = 0;
    c.script[0] = (outcome){EE_OK, 503, false};
    cr_assert_eq(run(tr, "POST", -1, &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 503);
    cr_assert_eq(c.calls, 1);
    ee_http_response_free(r);
    ee_transport_free(tr);
}

Test(vtable, post_never_sent_is_retried)
{
    script_ctx c = {.script = {{EE_ENETWORK, 0, true}, {EE_ETIMEOUT, 0, true}, {EE_OK, 201, false}}};
    ee_transport *tr = make(&c, 0);
    ee_http_response *r;
    cr_assert_eq(run(tr, "POST", -1, &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 201);
    cr_assert_eq(c.calls, 3);
    ee_http_response_free(r);
    ee_transport_free(tr);
}

Test(vtable, retry_safe_flag_overrides_the_method)
{
    script_ctx c = {.script = {{EE_OK, 502, false}, {EE_OK, 200, false}}};
    ee_transport *tr = make(&c, 0);
    ee_http_response *r;
    cr_assert_eq(run(tr, "POST", 1, &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 200);
    cr_assert_eq(c.calls, 2);
    ee_http_response_free(r);
    c.calls = 0;
    c.script[0] = (outcome){EE_ENETWORK, 0, false};
    cr_assert_eq(run(tr, "GET", 0, &r), EE_ENETWORK, "GET marked unsafe is not retried");
    cr_assert_eq(c.calls, 1);
    ee_transport_free(tr);
}

Test(vtable, other_failures_are_never_retried)
{
    script_ctx c = {.script = {{EE_ETOOBIG, 0, true}, {EE_OK, 200, false}}};
    ee_transport *tr = make(&c, 0);
    ee_http_response *r;
    cr_assert_eq(run(tr, "GET", -1, &r), EE_ETOOBIG);
    cr_assert_eq(c.calls, 1);
    ee_transport_free(tr);
}

typedef struct {
    ee_transport *tr;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 10; i++) {
        ee_http_response *r;
        if (run(a->tr, "GET", -1, &r) != EE_OK)
            return (void *)1;
        ee_http_response_free(r);
    }
    return NULL;
}

Test(vtable, a_backend_that_is_not_thread_safe_is_serialised)
{
    script_ctx c = {.script = {{EE_OK, 200, false}}};
    for (int i = 1; i < 8; i++)
        c.script[i] = c.script[0];
    ee_transport *tr = make(&c, 0);
    worker_arg a = {tr};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, worker, &a);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(th[i], &res);
        cr_assert_null(res);
    }
    cr_assert_eq(atomic_load(&c.max_inside), 1, "calls overlapped in a non-thread-safe backend");
    ee_transport_free(tr);
}

Test(vtable, options_are_validated_by_key)
{
    ee_transport_options *o;
    cr_assert_eq(ee_transport_options_new(&o), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "nope", 1), EE_EINVAL);
    cr_assert_not_null(strstr(ee_error_last_message(), "nope"));
    cr_assert_eq(ee_transport_options_set_int64(o, "max_retries", 11), EE_EINVAL);
    cr_assert_not_null(strstr(ee_error_last_message(), "max_retries"));
    cr_assert_eq(ee_transport_options_set_int64(o, "timeout_ms", 0), EE_EINVAL);
    cr_assert_eq(ee_transport_options_set_int64(o, "tls_verify", 2), EE_EINVAL);
    cr_assert_eq(ee_transport_options_set_int64(o, "ca_file", 1), EE_EINVAL);
    cr_assert_eq(ee_transport_options_set_string(o, "timeout_ms", "1"), EE_EINVAL);
    cr_assert_eq(ee_transport_options_set_string(o, "ca_file", "/etc/ssl\n"), EE_EINVAL);
    cr_assert_eq(ee_transport_options_set_string(o, "ca_file", "/etc/ssl/certs/ca.pem"), EE_OK);
    cr_assert_eq(ee_transport_options_set_string(o, "ca_file", NULL), EE_OK);
    ee_transport_options_free(o);
}

Test(vtable, requests_are_validated)
{
    ee_http_request *req = NULL;
    cr_assert_eq(ee_http_request_new(&req, "get", "http://a.test/"), EE_EINVAL);
    cr_assert_eq(ee_http_request_new(&req, "GET", "ftp://a.test/"), EE_EINVAL);
    cr_assert_eq(ee_http_request_new(&req, "GET", "http:///x"), EE_EINVAL);
    cr_assert_eq(ee_http_request_new(&req, "GET", "http://a.test/a b"), EE_EINVAL);
    cr_assert_null(req);
    cr_assert_eq(ee_http_request_new(&req, "GET", "https://a.test/"), EE_OK);
    cr_assert_eq(ee_http_request_retry_safe(req), 1);
    cr_assert_eq(ee_http_request_add_header(req, "Bad Name", "v"), EE_EINVAL);
    cr_assert_eq(ee_http_request_add_header(req, "X-Key", "secret-value\r\nInjected: 1"),
                 EE_EINVAL);
    cr_assert_null(strstr(ee_error_last_message(), "secret-value"), "the value was echoed");
    cr_assert_eq(ee_http_request_add_header(req, "X-Key", "v1"), EE_OK);
    const char *n, *v;
    cr_assert_eq(ee_http_request_header_at(req, 0, &n, &v), EE_OK);
    cr_assert_str_eq(n, "X-Key");
    cr_assert_str_eq(v, "v1");
    cr_assert_eq(ee_http_request_header_at(req, 1, &n, &v), EE_EINVAL);
    cr_assert_eq(ee_http_request_set_limits(req, -1, 0, 0), EE_EINVAL);
    ee_http_request_free(req);
    cr_assert_eq(ee_http_request_new(&req, "POST", "http://a.test/"), EE_OK);
    cr_assert_eq(ee_http_request_retry_safe(req), 0);
    ee_http_request_free(req);
}

Test(vtable, response_body_is_capped)
{
    script_ctx c = {0};
    (void)c;
    ee_http_response *r = calloc(1, sizeof *r);
    r->max_body = 4;
    cr_assert_eq(ee_http_response_append_body(r, "abc", 3), EE_OK);
    cr_assert_eq(ee_http_response_append_body(r, "de", 2), EE_ETOOBIG);
    cr_assert_eq(ee_http_response_append_body(r, "d", 1), EE_OK);
    const void *b;
    size_t len;
    ee_http_response_body(r, &b, &len);
    cr_assert_eq(len, 4);
    cr_assert_str_eq(b, "abcd");
    cr_assert_eq(ee_http_response_set_status(r, 42), EE_EINVAL);
    ee_http_response_free(r);
}

Test(vtable, mail_inputs_are_validated)
{
    ee_mail *m = NULL;
    cr_assert_eq(ee_mail_new(&m, "http://x", "a@b.test"), EE_EINVAL);
    cr_assert_eq(ee_mail_new(&m, "smtp://x", "a@b.test\r\nRCPT TO:<x>"), EE_EINVAL);
    cr_assert_eq(ee_mail_new(&m, "smtps://x:465", "a@b.test"), EE_OK);
    cr_assert_eq(ee_mail_add_recipient(m, "<evil>"), EE_EINVAL);
    cr_assert_eq(ee_mail_add_recipient(m, "c@d.test"), EE_OK);
    cr_assert_eq(ee_mail_recipient_count(m), 1);
    cr_assert_str_eq(ee_mail_recipient_at(m, 0), "c@d.test");
    cr_assert_null(ee_mail_recipient_at(m, 1));
    ee_mail_free(m);
}
