/*
 * ee_gateway_handle() over a scripted upstream (an injected transport):
 * the routed key reaches the upstream the provider's way and the token
 * never does; usage is metered to the exact figures (JSON body and SSE)
 * and summed per execution; the gateway's refusals (401 unknown, expired,
 * revoked, replayed; 403; 404; 405; 413; 402) and upstream failures (504,
 * 502) answer JSON errors.
 */
#include "gw_test.h"

#define EXEC_A "aaaaaaaaaaaaaaaaaaaaaaaa"
#define EXEC_B "bbbbbbbbbbbbbbbbbbbbbbbb"
#define EXEC_C "cccccccccccccccccccccccc"

static ee_transport *t;
static ee_engine *e;
static ee_principal *p;

static void setup(void)
{
    gw_log_len = 0;
    t = up_transport();
    e = gw_engine(NULL, t, 1000);
    p = gw_principal("ws-gw", "u1");
}

static void teardown(void)
{
    ee_principal_free(p);
    ee_engine_close(e);
    ee_transport_free(t);
}

TestSuite(gateway_handle, .init = setup, .fini = teardown, .timeout = 60);

static const char *const LLM_SEARCH[] = {"openrouter", "serper"};
static const char *const LLM[] = {"openrouter"};

Test(gateway_handle, tokens_look_as_documented_and_differ)
{
    char t1[EE__GATEWAY_TOKEN_SIZE], t2[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, LLM, 1, NULL, -1, gw_now + 60000, t1);
    gw_grant(e, p, EXEC_B, LLM, 1, NULL, -1, gw_now + 60000, t2);
    cr_expect_eq(strlen(t1), EE__GATEWAY_TOKEN_SIZE - 1);
    cr_expect_eq(strncmp(t1, "eeg_", 4), 0);
    cr_expect_eq(strspn(t1 + 4, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
                 43);
    cr_expect_str_neq(t1, t2);
}

Test(gateway_handle, openrouter_key_injected_and_usage_metered_from_the_body)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, LLM_SEARCH, 2, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    static const char *const extra[] = {"X-Title: my-flow", "Connection: keep-alive",
                                        "Proxy-Authorization: Basic eHh4",
                                        "Accept-Encoding: gzip", "X-API-KEY: spoofed"};
    char auth[128];
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    static const char body[] = "{\"model\": \"openai/gpt-4o-mini\"}";
    gw_answer a = gw_call_h(e, "POST", OPENROUTER_PATH, auth, extra, 5, body, sizeof body - 1);
    cr_assert_eq(a.status, 200, "%s", a.body ? a.body : "");
    /* upstream: the provider's URL, the platform key, the caller's own
     * headers and body; never the token, never hop-by-hop headers */
    cr_expect_eq(up.calls, 1);
    cr_expect_str_eq(up.url, "https://openrouter.ai/api/v1/chat/completions");
    cr_expect_str_eq(up.method, "POST");
    cr_expect_not_null(strstr(up.headers, "Authorization: Bearer " C_OPENROUTER "\n"), "%s",
                       up.headers);
    cr_expect_not_null(strstr(up.headers, "X-Title: my-flow\n"));
    cr_expect_null(strstr(up.headers, "Connection"));
    cr_expect_null(strstr(up.headers, "Proxy-Authorization"));
    cr_expect_null(strstr(up.headers, "Accept-Encoding"));
    cr_expect_not_null(strstr(up.headers, "X-API-KEY: spoofed"),
                       "another provider's key header is the caller's own business");
    cr_expect_null(strstr(up.headers, tok));
    cr_expect_null(strstr(up.url, tok));
    cr_expect_str_eq(up.body, body);
    /* the answer: the upstream's body and the call's cost */
    cr_expect_not_null(strstr(a.body, "gen-1"));
    cr_expect_str_eq(gw_header(&a, "Content-Type"), "application/json");
    cr_expect_str_eq(gw_header(&a, "x-litellm-response-cost"), UP_COST_USD);
    cr_expect_str_eq(gw_header(&a, "x-ee-call-cost-nano"), "123457");
    cr_expect_null(strstr(a.body, C_OPENROUTER));
    cr_expect_null(strstr(a.headers, C_OPENROUTER));
    gw_answer_free(&a);

    /* a second call adds up */
    a = gw_call(e, OPENROUTER_PATH, tok);
    cr_expect_eq(a.status, 200);
    gw_answer_free(&a);
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-gw", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.calls, 2);
    cr_expect_eq(u.prompt_tokens, 24);
    cr_expect_eq(u.completion_tokens, 60);
    cr_expect_eq(u.total_tokens, 84);
    cr_expect_eq(u.cost_nano, 2 * UP_COST_NANO);
    cr_expect_not(u.budget_refused);
    /* another workspace's id sees nothing */
    cr_assert_eq(ee__gateway_usage_of(e, "ws-other", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.calls, 0);
}

static int collect(const ee__gateway_call *c, void *payload)
{
    json_t *arr = payload;
    json_array_append_new(arr, json_pack("{s:s, s:s?, s:I, s:I, s:i}", "provider", c->provider,
                                         "model", c->model, "total", (json_int_t)c->total_tokens,
                                         "cost", (json_int_t)c->cost_nano, "status",
                                         c->http_status));
    return 0;
}

Test(gateway_handle, sse_usage_from_the_last_message_and_per_call_prices)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, LLM_SEARCH, 2, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_SSE);
    gw_answer a = gw_call(e, OPENROUTER_PATH, tok);
    cr_assert_eq(a.status, 200);
    cr_expect_str_eq(gw_header(&a, "Content-Type"), "text/event-stream");
    cr_expect_not_null(strstr(a.body, "data: [DONE]"), "the stream reaches the caller whole");
    /* relayed as it came: the cost is known only at the end (in the last
     * message's usage), so a stream carries no cost headers */
    cr_expect_str_eq(gw_header(&a, "x-ee-call-cost-nano"), "");
    gw_answer_free(&a);

    /* Serper: X-API-KEY, priced per call from gateway.json (0.001 USD) */
    up_reset(UP_SEARCH);
    static const char *const spoof[] = {"x-api-key: the-workflow-s-own"};
    char auth[128];
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    a = gw_call_h(e, "POST", "/serper/search", auth, spoof, 1, "{}", 2);
    cr_assert_eq(a.status, 200);
    cr_expect_null(strstr(up.headers, "the-workflow-s-own"), "the key header is the gateway's");
    cr_expect_str_eq(up.url, "https://google.serper.dev/search");
    cr_expect_not_null(strstr(up.headers, "X-API-KEY: " C_SERPER "\n"), "%s", up.headers);
    cr_expect_null(strstr(up.headers, "Authorization"));
    cr_expect_str_eq(gw_header(&a, "x-ee-call-cost-nano"), "1000000");
    gw_answer_free(&a);
    /* an upstream refusal is passed through and costs nothing */
    up_reset(UP_429);
    a = gw_call(e, "/serper/search", tok);
    cr_expect_eq(a.status, 429);
    cr_expect_str_eq(gw_header(&a, "Retry-After"), "7");
    cr_expect_str_eq(gw_header(&a, "x-ee-call-cost-nano"), "0");
    gw_answer_free(&a);

    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-gw", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.calls, 3);
    cr_expect_eq(u.prompt_tokens, 7);
    cr_expect_eq(u.completion_tokens, 5);
    cr_expect_eq(u.total_tokens, 12);
    cr_expect_eq(u.cost_nano, 15000 + 1000000);
    json_t *calls = json_array();
    cr_assert_eq(ee__gateway_calls(e, "ws-gw", EXEC_A, collect, calls), EE_OK);
    char *text = json_dumps(calls, JSON_COMPACT);
    cr_expect_str_eq(text,
                     "[{\"provider\":\"openrouter\",\"model\":\"openai/gpt-4o-mini\",\"total\":12,"
                     "\"cost\":15000,\"status\":200},{\"provider\":\"serper\",\"model\":null,"
                     "\"total\":0,\"cost\":1000000,\"status\":200},{\"provider\":\"serper\","
                     "\"model\":null,\"total\":0,\"cost\":0,\"status\":429}]");
    free(text);
    json_decref(calls);
}

Test(gateway_handle, unknown_malformed_expired_revoked_and_replayed_tokens_answer_401)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, LLM, 1, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    gw_answer a = gw_call_h(e, "POST", OPENROUTER_PATH, NULL, NULL, 0, NULL, 0);
    gw_expect_error(&a, 401, "EE_EAUTH");
    gw_answer_free(&a);
    a = gw_call(e, OPENROUTER_PATH, "eeg_not-a-token");
    gw_expect_error(&a, 401, "EE_EAUTH");
    gw_answer_free(&a);
    char other[EE__GATEWAY_TOKEN_SIZE];
    snprintf(other, sizeof other, "%s", tok);
    other[10] = other[10] == 'A' ? 'B' : 'A';
    a = gw_call(e, OPENROUTER_PATH, other);
    gw_expect_error(&a, 401, "EE_EAUTH");
    gw_answer_free(&a);
    /* the real one works ... */
    a = gw_call(e, OPENROUTER_PATH, tok);
    cr_expect_eq(a.status, 200);
    gw_answer_free(&a);
    /* ... until the execution ends: replayed after the revoke, 401 */
    cr_assert_eq(ee__gateway_revoke(e, "ws-gw", EXEC_A), EE_OK);
    a = gw_call(e, OPENROUTER_PATH, tok);
    gw_expect_error(&a, 401, "EE_EAUTH");
    gw_answer_free(&a);
    cr_expect_eq(up.calls, 1, "refused calls never reach the upstream");
    /* revoking what was never granted is fine */
    cr_expect_eq(ee__gateway_revoke(e, "ws-gw", EXEC_B), EE_OK);

    /* expiry by the engine's clock */
    gw_grant(e, p, EXEC_C, LLM, 1, NULL, -1, gw_now + 1000, tok);
    a = gw_call(e, OPENROUTER_PATH, tok);
    cr_expect_eq(a.status, 200);
    gw_answer_free(&a);
    __atomic_add_fetch(&gw_now, 1000, __ATOMIC_SEQ_CST);
    a = gw_call(e, OPENROUTER_PATH, tok);
    gw_expect_error(&a, 401, "EE_EAUTH");
    gw_answer_free(&a);
    __atomic_sub_fetch(&gw_now, 1000, __ATOMIC_SEQ_CST);
}

Test(gateway_handle, unrouted_unknown_method_and_body_limits)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, LLM, 1, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_SEARCH);
    gw_answer a = gw_call(e, "/serper/search", tok);
    gw_expect_error(&a, 403, "EE_EPERM");
    gw_answer_free(&a);
    a = gw_call(e, "/nope/v1/x", tok);
    gw_expect_error(&a, 404, "EE_ENOTFOUND");
    gw_answer_free(&a);
    a = gw_call(e, "/", tok);
    gw_expect_error(&a, 404, "EE_ENOTFOUND");
    gw_answer_free(&a);
    char auth[128];
    snprintf(auth, sizeof auth, "Bearer %s", tok);
    a = gw_call_h(e, "TRACE", OPENROUTER_PATH, auth, NULL, 0, NULL, 0);
    gw_expect_error(&a, 405, "EE_EINVAL");
    gw_answer_free(&a);
    /* EXEC_GATEWAY_BODY_MAX is 1000 in this suite */
    char big[1001];
    memset(big, 'x', sizeof big);
    a = gw_call_h(e, "POST", OPENROUTER_PATH, auth, NULL, 0, big, 1001);
    gw_expect_error(&a, 413, "EE_ETOOBIG");
    gw_answer_free(&a);
    a = gw_call_h(e, "POST", OPENROUTER_PATH, auth, NULL, 0, big, 1000);
    cr_expect_eq(a.status, 200, "exactly the limit passes");
    gw_answer_free(&a);
    cr_expect_eq(up.calls, 1);
}

Test(gateway_handle, a_decoded_path_is_encoded_again_and_dot_segments_are_refused)
{
    /* An HTTP server hands the path over decoded ("%23" -> '#'): upstream
     * it stays one path, not cut at '#' or split at '?' beside the key. */
    static const char *const YT[] = {"youtubeSearch"};
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, YT, 1, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_SEARCH);
    gw_answer a = gw_call(e, "/youtube/youtube/v3/a b#c?key=mine\"\x01\xc3\xa9%41", tok);
    cr_expect_eq(a.status, 200, "%s", a.body ? a.body : "");
    cr_expect_str_eq(up.url, "https://www.googleapis.com/youtube/v3/a%20b%23c%3Fkey=mine%22%01"
                             "%C3%A9%41?key=" C_YOUTUBE_ENC);
    gw_answer_free(&a);
    /* "." and ".." segments would leave the provider's base path */
    int calls = up.calls;
    static const char *const dots[] = {"/youtube/youtube/../../x", "/youtube/..", "/youtube/./x",
                                       "/youtube/a/.."};
    for (size_t i = 0; i < sizeof dots / sizeof dots[0]; i++) {
        a = gw_call(e, dots[i], tok);
        gw_expect_error(&a, 400, "EE_EINVAL");
        cr_expect(a.body != NULL && strstr(a.body, "segments") != NULL, "%s: %s", dots[i],
                  a.body ? a.body : "");
        gw_answer_free(&a);
    }
    cr_expect_eq(up.calls, calls, "no refused call went upstream");
    a = gw_call(e, "/youtube/youtube/v3/a..b/.x", tok); /* not dot segments */
    cr_expect_eq(a.status, 200, "%s", a.body ? a.body : "");
    gw_answer_free(&a);
}

Test(gateway_handle, a_spent_budget_refuses_with_402_and_marks_the_usage)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    /* one call (123457 nano) passes the budget: the next is refused */
    gw_grant(e, p, EXEC_A, LLM_SEARCH, 2, NULL, 100000, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    gw_answer a = gw_call(e, OPENROUTER_PATH, tok);
    cr_expect_eq(a.status, 200);
    gw_answer_free(&a);
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-gw", EXEC_A, &u), EE_OK);
    cr_expect_not(u.budget_refused);
    a = gw_call(e, "/serper/search", tok);
    gw_expect_error(&a, 402, "EE_ESPEND");
    gw_answer_free(&a);
    cr_expect_eq(up.calls, 1);
    cr_assert_eq(ee__gateway_usage_of(e, "ws-gw", EXEC_A, &u), EE_OK);
    cr_expect(u.budget_refused);
    cr_expect_str_eq(u.refused_provider, "serper");
    cr_expect_eq(u.cost_nano, UP_COST_NANO, "a refused call costs nothing");
    cr_expect_eq(u.calls, 2);
    /* a budget of 0 refuses the first call; -1 never refuses */
    gw_grant(e, p, EXEC_B, LLM, 1, NULL, 0, gw_now + 60000, tok);
    a = gw_call(e, OPENROUTER_PATH, tok);
    gw_expect_error(&a, 402, "EE_ESPEND");
    gw_answer_free(&a);
}

Test(gateway_handle, upstream_timeout_is_504_and_reset_is_502)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, LLM, 1, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_TIMEOUT);
    gw_answer a = gw_call(e, OPENROUTER_PATH, tok);
    gw_expect_error(&a, 504, "EE_ETIMEOUT");
    gw_answer_free(&a);
    up_reset(UP_RESET);
    a = gw_call(e, OPENROUTER_PATH, tok);
    gw_expect_error(&a, 502, "EE_ENETWORK");
    gw_answer_free(&a);
}

Test(gateway_handle, customer_key_replaces_the_platform_key)
{
    char id[32], tok[EE__GATEWAY_TOKEN_SIZE];
    gw_customer_key(e, p, id);
    gw_grant(e, p, EXEC_A, LLM, 1, id, -1, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    gw_answer a = gw_call(e, OPENROUTER_PATH, tok);
    cr_expect_eq(a.status, 200);
    cr_expect_not_null(strstr(up.headers, "Authorization: Bearer " C_CUSTOMER "\n"), "%s",
                       up.headers);
    cr_expect_null(strstr(up.headers, C_OPENROUTER));
    gw_answer_free(&a);
}

Test(gateway_handle, a_query_parameter_key_is_encoded_and_added)
{
    static const char *const YT[] = {"youtubeSearch"};
    char tok[EE__GATEWAY_TOKEN_SIZE], auth[128];
    gw_grant(e, p, EXEC_A, YT, 1, NULL, -1, gw_now + 60000, tok);
    snprintf(auth, sizeof auth, "authorization: bearer %s", tok);
    up_reset(UP_SEARCH);
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, "GET", "/youtube/youtube/v3/search",
                              "part=snippet&q=a%20b", NULL, 0, NULL, 0};
    const char *h[] = {auth};
    req.headers = h;
    req.n_headers = 1;
    gw_answer a = {0};
    ee_gateway_sink sink = {gw_head, gw_body, &a};
    cr_assert_eq(ee_gateway_handle(e, &req, &sink), EE_OK);
    cr_expect_eq(a.status, 200, "%s", a.body ? a.body : "");
    cr_expect_str_eq(up.url, "https://www.googleapis.com/youtube/v3/search?part=snippet&q=a%20b"
                             "&key=" C_YOUTUBE_ENC);
    cr_expect_str_eq(up.method, "GET");
    cr_expect_null(strstr(up.headers, C_YOUTUBE));
    cr_expect_null(strstr(a.headers, "AIza"));
    gw_answer_free(&a);
    /* without a query of its own */
    req.query = NULL;
    a = (gw_answer){0};
    cr_assert_eq(ee_gateway_handle(e, &req, &sink), EE_OK);
    cr_expect_str_eq(up.url, "https://www.googleapis.com/youtube/v3/search?key=" C_YOUTUBE_ENC);
    gw_answer_free(&a);
}

Test(gateway_handle, a_caller_gone_mid_stream_stops_it_and_it_is_metered_as_far_as_it_got)
{
    char tok[EE__GATEWAY_TOKEN_SIZE], auth[128];
    gw_grant(e, p, EXEC_A, LLM, 1, NULL, -1, gw_now + 60000, tok);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", tok);
    up_reset(UP_OPENROUTER_SSE);
    const char *h[] = {auth};
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, "POST", OPENROUTER_PATH, NULL, h, 1,
                              "{}", 2};
    gw_answer a = {.abort_at_body = 1};
    ee_gateway_sink sink = {gw_head, gw_body, &a};
    cr_expect_eq(ee_gateway_handle(e, &req, &sink), EE_ECANCELLED);
    cr_expect_eq(a.status, 200, "the head went out before the body");
    ee__gateway_usage u;
    cr_assert_eq(ee__gateway_usage_of(e, "ws-gw", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.calls, 1);
    cr_expect_eq(u.cost_nano, 15000);
    gw_answer_free(&a);
}

Test(gateway_handle, bad_arguments_and_an_aborting_sink)
{
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, "GET", "/openrouter/x", NULL, NULL, 0,
                              NULL, 0};
    gw_answer a = {0};
    ee_gateway_sink sink = {gw_head, gw_body, &a};
    cr_expect_eq(ee_gateway_handle(NULL, &req, &sink), EE_EINVAL);
    cr_expect_eq(ee_gateway_handle(e, NULL, &sink), EE_EINVAL);
    cr_expect_eq(ee_gateway_handle(e, &req, NULL), EE_EINVAL);
    req.version = 2;
    cr_expect_eq(ee_gateway_handle(e, &req, &sink), EE_EINVAL);
    req.version = EE_GATEWAY_REQUEST_VERSION;
    a.abort_at_head = 1;
    cr_expect_eq(ee_gateway_handle(e, &req, &sink), EE_ECANCELLED);
    gw_answer_free(&a);
}

/* A served call, and a read of the run's usage, leave no error recorded on
 * the thread: reading the run's total lets the query end instead of
 * stopping it (a stop was recorded as an ECANCELLED error every call, its
 * message formatted and redacted: a sixth of the gateway's own work). */
Test(gateway_handle, a_served_call_leaves_no_error_on_the_thread)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, LLM, 1, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    for (int i = 0; i < 2; i++) {
        ee_error_clear();
        gw_answer a = gw_call(e, OPENROUTER_PATH, tok);
        cr_assert_eq(a.status, 200, "%s", a.body ? a.body : "");
        gw_answer_free(&a);
        cr_expect_eq(ee_error_last_status(), EE_OK, "call %d left: %s", i,
                     ee_error_last_message());
    }
    ee__gateway_usage u;
    ee_error_clear();
    cr_assert_eq(ee__gateway_usage_of(e, "ws-gw", EXEC_A, &u), EE_OK);
    cr_expect_eq(u.calls, 2, "the total is still read");
    cr_expect_eq(u.cost_nano, 2 * UP_COST_NANO);
    cr_expect_eq(ee_error_last_status(), EE_OK, "%s", ee_error_last_message());
}
