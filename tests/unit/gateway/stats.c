/*
 * ee_gateway_stats(): per provider of gateway.json, the calls forwarded
 * (by status class, "none" without an answer), the gateway's own budget
 * refusals, metered cost (and the platform's part), tokens and upstream
 * time, over the scripted upstream of gw_test.h; exact from several threads.
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

TestSuite(gateway_stats, .init = setup, .fini = teardown, .timeout = 60);

static const char *const LLM_SEARCH[] = {"openrouter", "serper"};
static const char *const LLM[] = {"openrouter"};

static json_t *stats(void)
{
    char *out = NULL;
    cr_assert_eq(ee_gateway_stats(e, &out), EE_OK, "%s", ee_error_last_message());
    json_t *doc = json_loads(out, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", out);
    ee_free(out);
    return doc;
}

/* A number at a path of up to three members under providers.<name>. */
static long long pnum(const json_t *doc, const char *provider, const char *a, const char *b)
{
    const json_t *v = json_object_get(json_object_get(doc, "providers"), provider);
    cr_assert_not_null(v, "no provider %s", provider);
    v = json_object_get(v, a);
    if (b != NULL)
        v = json_object_get(v, b);
    cr_assert(json_is_integer(v), "%s.%s.%s missing", provider, a, b != NULL ? b : "");
    return (long long)json_integer_value(v);
}

static void call_ok(const char *path, const char *tok, int want)
{
    gw_answer a = gw_call(e, path, tok);
    cr_expect_eq(a.status, want, "%s: %d", path, a.status);
    gw_answer_free(&a);
}

Test(gateway_stats, every_provider_of_gateway_json_starts_at_zero)
{
    json_t *doc = stats();
    const json_t *providers = json_object_get(doc, "providers");
    cr_expect_eq(json_object_size(providers), 8, "one entry per provider of gateway.json");
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)providers, name, v) {
        cr_expect_eq(pnum(doc, name, "calls", NULL), 0, "%s", name);
        cr_expect_eq(pnum(doc, name, "costNano", NULL), 0, "%s", name);
        cr_expect_eq(pnum(doc, name, "upstreamMs", "count"), 0, "%s", name);
    }
    cr_expect_eq(json_array_size(json_object_get(doc, "upstreamMsLe")), 10);
    cr_expect_eq(json_integer_value(json_object_get(doc, "since")), gw_now);
    cr_expect_eq(ee_gateway_stats(e, NULL), EE_EINVAL);
    char *out = NULL;
    cr_expect_eq(ee_gateway_stats(NULL, &out), EE_EINVAL);
    ee_free(out);
    json_decref(doc);
}

Test(gateway_stats, calls_of_two_providers_by_class_cost_tokens_and_refusals)
{
    char tok[EE__GATEWAY_TOKEN_SIZE], broke[EE__GATEWAY_TOKEN_SIZE], own[EE__GATEWAY_TOKEN_SIZE];
    char key[32];
    gw_grant(e, p, EXEC_A, LLM_SEARCH, 2, NULL, -1, gw_now + 60000, tok);
    gw_grant(e, p, EXEC_B, LLM_SEARCH, 2, NULL, 0, gw_now + 60000, broke);
    gw_customer_key(e, p, key);
    gw_grant(e, p, EXEC_C, LLM, 1, key, -1, gw_now + 60000, own);

    up_reset(UP_OPENROUTER_JSON); /* 12 + 30 = 42 tokens, 123457 nano */
    call_ok(OPENROUTER_PATH, tok, 200);
    call_ok(OPENROUTER_PATH, own, 200); /* the customer's key: not the platform's cost */
    up_reset(UP_OPENROUTER_SSE);        /* 7 + 5 = 12 tokens, 15000 nano */
    call_ok(OPENROUTER_PATH, tok, 200);
    up_reset(UP_TIMEOUT); /* no answer */
    call_ok(OPENROUTER_PATH, tok, 504);
    up_reset(UP_SEARCH); /* 1000000 nano per call */
    call_ok("/serper/search", tok, 200);
    up_reset(UP_429);
    call_ok("/serper/search", tok, 429);
    up_reset(UP_SEARCH);
    call_ok("/serper/search", broke, 402); /* the gateway's refusal: never forwarded */
    call_ok(OPENROUTER_PATH, broke, 402);
    call_ok("/serper/search", "eeg_nope", 401); /* before a provider: not counted */
    call_ok("/nosuch/x", tok, 404);

    json_t *doc = stats();
    cr_expect_eq(pnum(doc, "openrouter", "calls", NULL), 4);
    cr_expect_eq(pnum(doc, "openrouter", "byStatusClass", "2xx"), 3);
    cr_expect_eq(pnum(doc, "openrouter", "byStatusClass", "none"), 1);
    cr_expect_eq(pnum(doc, "openrouter", "byStatusClass", "4xx"), 0);
    cr_expect_eq(pnum(doc, "openrouter", "refusedBudget", NULL), 1);
    cr_expect_eq(pnum(doc, "openrouter", "costNano", NULL), 2 * UP_COST_NANO + 15000);
    cr_expect_eq(pnum(doc, "openrouter", "platformCostNano", NULL), UP_COST_NANO + 15000);
    cr_expect_eq(pnum(doc, "openrouter", "tokens", "prompt"), 2 * 12 + 7);
    cr_expect_eq(pnum(doc, "openrouter", "tokens", "completion"), 2 * 30 + 5);
    cr_expect_eq(pnum(doc, "openrouter", "tokens", "total"), 2 * 42 + 12);
    cr_expect_eq(pnum(doc, "openrouter", "upstreamMs", "count"), 4);

    cr_expect_eq(pnum(doc, "serper", "calls", NULL), 2);
    cr_expect_eq(pnum(doc, "serper", "byStatusClass", "2xx"), 1);
    cr_expect_eq(pnum(doc, "serper", "byStatusClass", "4xx"), 1);
    cr_expect_eq(pnum(doc, "serper", "refusedBudget", NULL), 1);
    cr_expect_eq(pnum(doc, "serper", "costNano", NULL), 1000000, "a 429 costs nothing");
    cr_expect_eq(pnum(doc, "serper", "platformCostNano", NULL), 1000000);
    cr_expect_eq(pnum(doc, "serper", "tokens", "total"), 0);
    cr_expect_eq(pnum(doc, "serper", "upstreamMs", "count"), 2);
    cr_expect_eq(pnum(doc, "youtube", "calls", NULL), 0);

    /* buckets: cumulative, the last bound's count at most the total */
    const json_t *b = json_object_get(
        json_object_get(json_object_get(json_object_get(doc, "providers"), "openrouter"),
                        "upstreamMs"),
        "buckets");
    cr_assert_eq(json_array_size(b), 10);
    long long prev = 0;
    for (size_t i = 0; i < json_array_size(b); i++) {
        long long v = (long long)json_integer_value(json_array_get(b, i));
        cr_expect(v >= prev && v <= 4, "bucket %zu: %lld", i, v);
        prev = v;
    }
    json_decref(doc);
}

enum { THREADS = 6, CALLS = 20 };

static void *caller(void *arg)
{
    const char *tok = arg;
    for (int i = 0; i < CALLS; i++) {
        gw_answer a = gw_call(e, OPENROUTER_PATH, tok);
        int ok = a.status == 200;
        gw_answer_free(&a);
        if (!ok)
            return (void *)1;
    }
    return NULL;
}

Test(gateway_stats, calls_from_several_threads_are_counted_exactly)
{
    char tok[EE__GATEWAY_TOKEN_SIZE];
    gw_grant(e, p, EXEC_A, LLM, 1, NULL, -1, gw_now + 60000, tok);
    up_reset(UP_OPENROUTER_JSON);
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&tid[i], NULL, caller, tok);
    int failed = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r = NULL;
        pthread_join(tid[i], &r);
        failed += r != NULL;
    }
    cr_assert_eq(failed, 0);
    json_t *doc = stats();
    cr_expect_eq(pnum(doc, "openrouter", "calls", NULL), THREADS * CALLS);
    cr_expect_eq(pnum(doc, "openrouter", "byStatusClass", "2xx"), THREADS * CALLS);
    cr_expect_eq(pnum(doc, "openrouter", "costNano", NULL), (long long)THREADS * CALLS * UP_COST_NANO);
    cr_expect_eq(pnum(doc, "openrouter", "tokens", "total"), THREADS * CALLS * 42);
    cr_expect_eq(pnum(doc, "openrouter", "upstreamMs", "count"), THREADS * CALLS);
    json_decref(doc);
}
