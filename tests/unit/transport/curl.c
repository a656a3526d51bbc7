/*
 * The libcurl backend against a fault-injecting fake server
 * (tests/support/fake_http.py): statuses, timeouts, resets, refused
 * connections, size caps, retries (counted at the server) and connection
 * reuse.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "execengine/errors.h"
#include "execengine/transport.h"
#include "fake_http.h"
#include "transport/transport_internal.h"

static ee_fake_http fake;
static ee_transport *tr;

/* Fast backoff so retry tests stay short. */
static void open_transport(int64_t max_retries, int64_t timeout_ms)
{
    ee_transport_options *o;
    cr_assert_eq(ee_transport_options_new(&o), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "retry_initial_ms", 20), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "retry_max_ms", 80), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "max_retries", max_retries), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "timeout_ms", timeout_ms), EE_OK);
    cr_assert_eq(ee_transport_options_set_string(o, "proxy", ""), EE_OK);
    ee_transport_free(tr);
    cr_assert_eq(ee_transport_curl_new(&tr, o), EE_OK);
    ee_transport_options_free(o);
}

static void setup(void)
{
    ee_fake_http_start(&fake);
    tr = NULL;
    open_transport(2, 5000);
}

static void teardown(void)
{
    ee_transport_free(tr);
    ee_fake_http_stop(&fake);
}

TestSuite(curl, .init = setup, .fini = teardown, .timeout = 60);

static ee_status do_req(const char *method, const char *path, const char *body,
                        ee_http_response **resp)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", fake.base, path);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, method, url), EE_OK);
    if (body != NULL) {
        cr_assert_eq(ee_http_request_add_header(req, "Content-Type", "application/json"), EE_OK);
        cr_assert_eq(ee_http_request_set_body(req, body, strlen(body)), EE_OK);
    }
    ee_status st = ee_transport_http(tr, req, resp);
    ee_http_request_free(req);
    return st;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

Test(curl, get_returns_status_headers_and_body)
{
    ee_http_response *r;
    cr_assert_eq(do_req("GET", "/echo?x=1", NULL, &r), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_http_response_status(r), 200);
    cr_assert_str_eq(ee_http_response_header(r, "content-type"), "application/json");
    cr_assert_str_eq(ee_http_response_header(r, "CONTENT-TYPE"), "application/json");
    const void *body;
    size_t len;
    cr_assert_eq(ee_http_response_body(r, &body, &len), EE_OK);
    cr_assert_eq(strlen(body), len, "body is NUL-terminated");
    cr_assert_not_null(strstr(body, "\"method\": \"GET\""), "%s", (const char *)body);
    cr_assert_eq(ee_http_response_attempts(r), 1);
    ee_http_response_free(r);
}

Test(curl, post_sends_body_and_headers)
{
    ee_http_response *r;
    cr_assert_eq(do_req("POST", "/echo", "{\"a\":1}", &r), EE_OK);
    const void *body;
    size_t len;
    ee_http_response_body(r, &body, &len);
    cr_assert_not_null(strstr(body, "\"method\": \"POST\""));
    cr_assert_not_null(strstr(body, "{\\\"a\\\":1}"), "%s", (const char *)body);
    cr_assert_not_null(strstr(body, "\"content-type\": \"application/json\""));
    ee_http_response_free(r);
}

Test(curl, http_500_is_an_answer_and_not_retried)
{
    ee_http_response *r;
    cr_assert_eq(do_req("GET", "/status/500", NULL, &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 500);
    ee_http_response_free(r);
    cr_assert_eq(ee_fake_http_count(&fake, "/status/500"), 1);
}

Test(curl, get_503_is_retried_with_backoff)
{
    ee_http_response *r;
    double t0 = now_ms();
    cr_assert_eq(do_req("GET", "/flaky/2/503/a", NULL, &r), EE_OK);
    double elapsed = now_ms() - t0;
    cr_assert_eq(ee_http_response_status(r), 200);
    cr_assert_eq(ee_http_response_attempts(r), 3);
    ee_http_response_free(r);
    cr_assert_eq(ee_fake_http_count(&fake, "/flaky/2/503/a"), 3);
    /* equal jitter: waits of at least 10 ms then 20 ms happened */
    cr_assert_geq(elapsed, 30.0, "no backoff between attempts (%.1f ms)", elapsed);
}

Test(curl, get_after_connection_reset_is_retried)
{
    ee_http_response *r;
    cr_assert_eq(do_req("GET", "/flaky/1/reset/b", NULL, &r), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(ee_http_response_status(r), 200);
    ee_http_response_free(r);
    cr_assert_eq(ee_fake_http_count(&fake, "/flaky/1/reset/b"), 2);
}

Test(curl, retries_give_up_after_max_retries)
{
    ee_http_response *r;
    cr_assert_eq(do_req("GET", "/flaky/9/503/c", NULL, &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 503, "the last answer is returned");
    cr_assert_eq(ee_http_response_attempts(r), 3);
    ee_http_response_free(r);
    cr_assert_eq(ee_fake_http_count(&fake, "/flaky/9/503/c"), 3);
}

Test(curl, post_that_reached_the_server_is_never_retried)
{
    ee_http_response *r = (ee_http_response *)1;
    cr_assert_eq(do_req("POST", "/reset", "{}", &r), EE_ENETWORK);
    cr_assert_null(r);
    cr_assert_eq(ee_fake_http_count(&fake, "/reset"), 1);
    cr_assert_eq(ee__transport_last_attempts(), 1);

    cr_assert_eq(do_req("POST", "/flaky/1/503/d", "{}", &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 503);
    ee_http_response_free(r);
    cr_assert_eq(ee_fake_http_count(&fake, "/flaky/1/503/d"), 1);
}

Test(curl, post_marked_retry_safe_is_retried)
{
    char url[512];
    snprintf(url, sizeof url, "%s/flaky/1/reset/e", fake.base);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "POST", url), EE_OK);
    cr_assert_eq(ee_http_request_set_retry_safe(req, 1), EE_OK);
    ee_http_response *r;
    cr_assert_eq(ee_transport_http(tr, req, &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 200);
    ee_http_response_free(r);
    ee_http_request_free(req);
    cr_assert_eq(ee_fake_http_count(&fake, "/flaky/1/reset/e"), 2);
}

static ee_status to_closed_port(const char *method)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x?api_key=querysecret123", ee_fake_http_closed_port());
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, method, url), EE_OK);
    cr_assert_eq(ee_http_request_add_header(req, "X-N8N-API-KEY", "headersecret456"), EE_OK);
    ee_http_response *r;
    ee_status st = ee_transport_http(tr, req, &r);
    ee_http_request_free(req);
    return st;
}

Test(curl, refused_post_is_retried_because_it_never_left)
{
    cr_assert_eq(to_closed_port("POST"), EE_ENETWORK);
    cr_assert_eq(ee__transport_last_attempts(), 3);
    const char *msg = ee_error_last_message();
    cr_assert_not_null(strstr(msg, "3 attempts"), "%s", msg);
    cr_assert_not_null(strstr(msg, "POST http://127.0.0.1:"), "%s", msg);
    cr_assert_null(strstr(msg, "querysecret123"), "query leaked: %s", msg);
    cr_assert_null(strstr(msg, "headersecret456"), "header leaked: %s", msg);
}

Test(curl, refused_get_is_retried)
{
    cr_assert_eq(to_closed_port("GET"), EE_ENETWORK);
    cr_assert_eq(ee__transport_last_attempts(), 3);
}

Test(curl, dns_failure_is_a_network_error)
{
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "GET", "http://no-such-host.invalid/"), EE_OK);
    ee_http_response *r;
    open_transport(0, 5000);
    cr_assert_eq(ee_transport_http(tr, req, &r), EE_ENETWORK);
    ee_http_request_free(req);
}

/* A server (or something on the way) answering without an HTTP status line:
 * libcurl reports it as an unsupported protocol, which was mapped to
 * EE_EINVAL "bad URL" - the caller's fault - and the e-mail outbox fails a
 * message for good on EE_EINVAL. It is the network's failure: EE_ENETWORK,
 * retried like a reset. Found by the transport_curl fuzz target. */
Test(curl, an_answer_that_is_not_http_is_a_network_error)
{
    ee_http_response *r = NULL;
    ee_status st = do_req("GET", "/nothttp", NULL, &r);
    cr_expect_eq(st, EE_ENETWORK, "%s: %s", ee_status_name(st), ee_error_last_message());
    cr_expect_null(r);
    cr_expect_eq(ee_fake_http_count(&fake, "/nothttp"), 3, "a GET is tried again");
    st = do_req("POST", "/nothttp", "{}", &r);
    cr_expect_eq(st, EE_ENETWORK, "%s: %s", ee_status_name(st), ee_error_last_message());
    cr_expect_eq(ee_fake_http_count(&fake, "/nothttp"), 4, "a POST that reached it is not");
    /* a scheme the transport does not speak is still the caller's */
    ee_http_request *req = NULL;
    if (ee_http_request_new(&req, "GET", "ftp://127.0.0.1/x") == EE_OK) {
        cr_expect_eq(ee_transport_http(tr, req, &r), EE_EINVAL);
        ee_http_request_free(req);
    }
}

Test(curl, slow_server_times_out_and_get_retries)
{
    open_transport(1, 300);
    ee_http_response *r;
    double t0 = now_ms();
    cr_assert_eq(do_req("GET", "/slow/3000", NULL, &r), EE_ETIMEOUT);
    cr_assert_lt(now_ms() - t0, 2500.0, "the timeout did not cut the wait short");
    cr_assert_not_null(strstr(ee_error_last_message(), "timed out"), "%s",
                       ee_error_last_message());
    cr_assert_eq(ee_fake_http_count(&fake, "/slow/3000"), 2);
}

Test(curl, slow_post_times_out_once)
{
    open_transport(2, 300);
    ee_http_response *r;
    cr_assert_eq(do_req("POST", "/slow/2000", "{}", &r), EE_ETIMEOUT);
    cr_assert_eq(ee_fake_http_count(&fake, "/slow/2000"), 1);
}

Test(curl, per_request_timeout_overrides_the_default)
{
    open_transport(0, 60000);
    char url[512];
    snprintf(url, sizeof url, "%s/slow/3000", fake.base);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "GET", url), EE_OK);
    cr_assert_eq(ee_http_request_set_limits(req, 0, 200, 0), EE_OK);
    ee_http_response *r;
    double t0 = now_ms();
    cr_assert_eq(ee_transport_http(tr, req, &r), EE_ETIMEOUT);
    cr_assert_lt(now_ms() - t0, 2500.0);
    ee_http_request_free(req);
}

static ee_status get_capped(const char *path, int64_t cap)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", fake.base, path);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "GET", url), EE_OK);
    cr_assert_eq(ee_http_request_set_limits(req, 0, 0, cap), EE_OK);
    ee_http_response *r = NULL;
    ee_status st = ee_transport_http(tr, req, &r);
    if (st == EE_OK) {
        const void *b;
        size_t len;
        ee_http_response_body(r, &b, &len);
        cr_assert_eq((int64_t)len, cap);
    }
    ee_http_response_free(r);
    ee_http_request_free(req);
    return st;
}

Test(curl, oversize_body_is_too_big)
{
    cr_assert_eq(get_capped("/big/200000", 100000), EE_ETOOBIG);
    cr_assert_eq(get_capped("/big/200000?chunked=1", 100000), EE_ETOOBIG);
    cr_assert_eq(get_capped("/big/100000", 100000), EE_OK);
    cr_assert_eq(get_capped("/big/100000?chunked=1", 100000), EE_OK);
    /* a too-big answer is not a transient failure: sent once */
    cr_assert_eq(ee_fake_http_count(&fake, "/big/200000"), 2);
}

Test(curl, retry_after_beyond_the_cap_is_not_waited_for)
{
    ee_http_response *r;
    cr_assert_eq(do_req("GET", "/status/503?retry_after=100", NULL, &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 503);
    cr_assert_str_eq(ee_http_response_header(r, "retry-after"), "100");
    ee_http_response_free(r);
    cr_assert_eq(ee_fake_http_count(&fake, "/status/503"), 1);
}

Test(curl, connections_are_reused)
{
    int before = ee_fake_http_query(&fake, "/__connections");
    for (int i = 0; i < 4; i++) {
        ee_http_response *r;
        cr_assert_eq(do_req("GET", "/echo", NULL, &r), EE_OK);
        ee_http_response_free(r);
    }
    int after = ee_fake_http_query(&fake, "/__connections");
    /* one for our four requests, one for the query that counts */
    cr_assert_eq(after - before, 2, "connections: %d -> %d", before, after);
}

/* The easy handles one transport makes for n sequential calls: one, given
 * back reset to the pool - or n with a libcurl older than 8.1.0, whose
 * handles are never reused (curl_backend.c, REUSE_SAFE_FROM). */
static uint64_t handles_for(uint64_t calls)
{
    return ee__transport_curl_reuses(tr) ? 1 : calls;
}

Test(curl, sequential_calls_reuse_one_easy_handle)
{
    for (int i = 0; i < 5; i++) {
        ee_http_response *r;
        cr_assert_eq(do_req(i % 2 ? "POST" : "GET", "/echo", i % 2 ? "{}" : NULL, &r), EE_OK);
        cr_assert_eq(ee_http_response_status(r), 200);
        ee_http_response_free(r);
    }
    cr_assert_eq(ee__transport_curl_handles(tr), handles_for(5));
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    cr_assert_eq(ee__transport_curl_reuses(tr), v->version_num >= 0x080100,
                 "libcurl %s", v->version);
}

/* libcurl before 8.1.0 kept a pointer to the previous transfer's last
 * header, freed by the next transfer on the same easy handle: an answer
 * whose first header line is a continuation (" folded: on") made it read
 * freed memory (AddressSanitizer: heap-use-after-free in libcurl's
 * header unfolding) - any server the engine calls could. Found by the
 * transport_curl fuzz target; the backend no longer reuses handles with
 * such a libcurl. */
Test(curl, a_folded_first_header_after_another_call_reads_no_freed_memory)
{
    ee_http_response *r = NULL;
    cr_assert_eq(do_req("GET", "/echo", NULL, &r), EE_OK);
    ee_http_response_free(r);
    r = NULL;
    ee_status st = do_req("GET", "/folded", NULL, &r);
    cr_expect(st == EE_OK || st == EE_ENETWORK, "%s: %s", ee_status_name(st),
              ee_error_last_message());
    ee_http_response_free(r);
}

static const char *echo_body(ee_http_response *r)
{
    const void *b;
    size_t len;
    cr_assert_eq(ee_http_response_body(r, &b, &len), EE_OK);
    return b;
}

/* What one call set on its handle (method, headers, body, no-body) is gone
 * by the next call on the same handle. */
Test(curl, a_reused_handle_keeps_nothing_of_the_call_before)
{
    char url[512];
    snprintf(url, sizeof url, "%s/echo", fake.base);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "PUT", url), EE_OK);
    cr_assert_eq(ee_http_request_add_header(req, "X-N8N-API-KEY", "canary-key-7f3a"), EE_OK);
    cr_assert_eq(ee_http_request_add_header(req, "Accept", "text/x-canary"), EE_OK);
    cr_assert_eq(ee_http_request_set_body(req, "canary-body-91c2", 16), EE_OK);
    ee_http_response *r;
    cr_assert_eq(ee_transport_http(tr, req, &r), EE_OK);
    ee_http_request_free(req);
    const char *b = echo_body(r);
    cr_assert_not_null(strstr(b, "\"method\": \"PUT\""), "%s", b);
    cr_assert_not_null(strstr(b, "\"hasApiKey\": true"), "%s", b);
    cr_assert_not_null(strstr(b, "text/x-canary"), "%s", b);
    ee_http_response_free(r);

    cr_assert_eq(do_req("GET", "/echo", NULL, &r), EE_OK);
    b = echo_body(r);
    cr_assert_not_null(strstr(b, "\"method\": \"GET\""), "%s", b);
    cr_assert_not_null(strstr(b, "\"hasApiKey\": false"), "%s", b);
    cr_assert_null(strstr(b, "canary"), "%s", b);
    ee_http_response_free(r);

    /* HEAD (no body) then GET: the GET gets its body */
    cr_assert_eq(do_req("HEAD", "/echo", NULL, &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 200);
    ee_http_response_free(r);
    cr_assert_eq(do_req("GET", "/echo", NULL, &r), EE_OK);
    b = echo_body(r);
    cr_assert_not_null(strstr(b, "\"method\": \"GET\""), "%s", b);
    ee_http_response_free(r);
    cr_assert_eq(ee__transport_curl_handles(tr), handles_for(4),
                 "the calls did not share a handle");
}

/* A handle whose call timed out serves the next call with that call's
 * own limits: a short per-request timeout does not stay set. */
Test(curl, a_handle_after_a_timeout_is_clean)
{
    open_transport(0, 5000);
    char url[512];
    snprintf(url, sizeof url, "%s/slow/1500", fake.base);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "GET", url), EE_OK);
    cr_assert_eq(ee_http_request_set_limits(req, 0, 200, 0), EE_OK);
    ee_http_response *r = NULL;
    cr_assert_eq(ee_transport_http(tr, req, &r), EE_ETIMEOUT);
    ee_http_request_free(req);
    ee_error_clear();
    /* the same URL, the transport's 5 s: answered */
    cr_assert_eq(do_req("GET", "/slow/1500", NULL, &r), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_http_response_status(r), 200);
    ee_http_response_free(r);
    cr_assert_eq(do_req("GET", "/echo", NULL, &r), EE_OK);
    cr_assert_eq(ee_http_response_status(r), 200);
    ee_http_response_free(r);
    cr_assert_eq(ee__transport_curl_handles(tr), handles_for(3),
                 "the calls did not share a handle");
}

static void *hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 10; i++) {
        ee_http_response *r;
        if (do_req("GET", "/echo", NULL, &r) != EE_OK || ee_http_response_status(r) != 200)
            return (void *)1;
        ee_http_response_free(r);
    }
    return NULL;
}

Test(curl, one_transport_serves_many_threads)
{
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++) {
        void *res;
        pthread_join(th[i], &res);
        cr_assert_null(res, "a threaded request failed");
    }
    cr_assert_eq(ee_fake_http_count(&fake, "/echo"), 40);
}

Test(curl, mail_to_a_closed_port_is_a_network_error)
{
    char url[64];
    snprintf(url, sizeof url, "smtp://127.0.0.1:%d", ee_fake_http_closed_port());
    ee_mail *m;
    cr_assert_eq(ee_mail_new(&m, url, "from@example.test"), EE_OK);
    cr_assert_eq(ee_transport_mail(tr, m), EE_EINVAL, "no recipient yet");
    cr_assert_eq(ee_mail_add_recipient(m, "to@example.test"), EE_OK);
    const char *msg = "Subject: hi\r\n\r\nbody\r\n";
    cr_assert_eq(ee_mail_set_message(m, msg, strlen(msg)), EE_OK);
    cr_assert_eq(ee_mail_set_login(m, "user", "smtp-password-789"), EE_OK);
    cr_assert_eq(ee_transport_mail(tr, m), EE_ENETWORK);
    cr_assert_null(strstr(ee_error_last_message(), "smtp-password-789"));
    ee_mail_free(m);
}
