/*
 * Exact charges for a run that mixes credential sources: the customer's
 * own OpenRouter key (useCustomApiKey) for its LLM node and the platform's
 * Serper key for its search node. The platform paid for the search only:
 * that call is charged (with markup) and counted as the month's spend; the
 * LLM call on the customer's key is not. Before the gateway recorded whose
 * credential each call used, the whole run was either free (a node took
 * the customer's key) or charged in full.
 */
#include "exec_gateway.h"

#include <execengine/billing.h>
#include <execengine/credentials.h>
#include <execengine/quota.h>

#include <strings.h>

#define C_OPENROUTER "sk-or-v1-CANARY-mixed-platform-7c1e"
#define C_SERPER "serper-CANARY-mixed-platform-93ab"
#define C_CUSTOMER "sk-or-v1-CANARY-mixed-customer-0123456789"
/* OpenRouter's reported cost (GW_UP_ANSWER) and Serper's per-call price */
#define LLM_NANO 123457
#define SEARCH_NANO 1000000

static ee_engine *engine;
static ee_transport *transport;
static ee_n8n *client;
static int llm_status, search_status;
static char openrouter_auth[160], serper_key[160];

static int search_call(ee_engine *e, const char *token)
{
    char auth[128];
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    const char *headers[] = {auth, "Content-Type: application/json"};
    static const char body[] = "{\"q\": \"libexecengine\"}";
    ee_gateway_request req = {EE_GATEWAY_REQUEST_VERSION, "POST", "/serper/search", NULL,
                              headers, 2, body, sizeof body - 1};
    int status = 0;
    ee_gateway_sink sink = {gw_sink_head, gw_sink_body, &status};
    cr_assert_eq(ee_gateway_handle(e, &req, &sink), EE_OK, "%s", ee_error_last_message());
    return status;
}

/* The workflow: its LLM node, then its search node, through the gateway. */
static void spend(const char *token)
{
    llm_status = gw_call(engine, token);
    search_status = search_call(engine, token);
}

/* The value of the request's header `name` into dst ("" when absent). */
static void remember(char *dst, size_t cap, const ee_http_request *req, const char *name)
{
    dst[0] = '\0';
    for (size_t i = 0; i < ee_http_request_header_count(req); i++) {
        const char *n = NULL, *v = NULL;
        if (ee_http_request_header_at(req, i, &n, &v) == EE_OK && strcasecmp(n, name) == 0)
            snprintf(dst, cap, "%s", v);
    }
}

static ee_status http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    if (gw_is_upstream(req)) {
        remember(openrouter_auth, sizeof openrouter_auth, req, "Authorization");
        return gw_upstream_answer(resp, GW_UP_ANSWER);
    }
    if (strncmp(ee_http_request_url(req), "https://google.serper.dev/", 26) == 0) {
        remember(serper_key, sizeof serper_key, req, "X-API-KEY");
        return gw_upstream_answer(resp, "{\"organic\": []}");
    }
    gw_llm_webhook(req, spend);
    return fake_http(ctx, req, resp);
}

static void setup(void)
{
    (void)fake_engine_config; /* this engine has its own transport (the gateway's upstreams) */
    fake_setup();
    /* the "llm" workflow also searches, on the platform's Serper key */
    for (size_t i = 0; i < json_array_size(fake.workflows); i++) {
        json_t *wf = json_array_get(fake.workflows, i);
        if (strcmp(json_string_value(json_object_get(wf, "id")), "wfL") == 0)
            json_array_append_new(json_object_get(wf, "nodes"),
                                  fake_node("n8n-nodes-serper.serper", "serperApi"));
    }
    gw_client_new(&transport, &client, http);
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "1");
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_KEY", C_OPENROUTER);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", C_SERPER);
    ee_test_config_set(cfg, "PLATFORM_API_MARKUP_PERCENTAGE", "20");
    ee_test_config_set(cfg, "FREE_TIER_MONTHLY_ALLOWANCE", "0");
    engine = gw_engine_open(cfg, transport, client);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_n8n_free(client);
    ee_transport_free(transport);
    fake_teardown();
}

TestSuite(exec_mixed, .init = setup, .fini = teardown, .timeout = 60);

static int64_t money(const json_t *v)
{
    if (json_is_object(v))
        v = json_object_get(v, "nanoUsd");
    cr_assert(json_is_integer(v), "not a nano-USD amount");
    return (int64_t)json_integer_value(v);
}

static int64_t spend_used(const ee_principal *p)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_usage(engine, p, &out), EE_OK, "%s", out);
    json_t *u = parse_doc(out);
    ee_free(out);
    int64_t v = money(json_object_get(json_object_get(u, "spend"), "usage"));
    json_decref(u);
    return v;
}

/* Runs the llm+search workflow as p, on the customer's key when key_id. */
static json_t *run(const ee_principal *p, const char *key_id)
{
    char wf[25], req[256], *out = NULL;
    entry_id(engine, "wfL", wf);
    if (key_id != NULL)
        snprintf(req, sizeof req, "{\"useCustomApiKey\": true, \"apiKeyId\": \"%s\"}", key_id);
    else
        snprintf(req, sizeof req, "{}");
    cr_assert_eq(ee_exec_run(engine, p, wf, req, &out), EE_OK, "%s", out);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_eq(llm_status, 200);
    cr_assert_eq(search_status, 200);
    /* the cost breakdown lists each call with whose credential it used */
    cr_assert_eq(ee_exec_cost(engine, p, sget(rec, "_id"), &out), EE_OK, "%s", out);
    json_t *cost = parse_doc(out);
    ee_free(out);
    json_t *calls = json_object_get(cost, "calls");
    cr_assert_eq(json_array_size(calls), 2);
    cr_assert_str_eq(sget(json_array_get(calls, 0), "provider"), "openrouter");
    cr_assert_str_eq(sget(json_array_get(calls, 0), "source"),
                     key_id != NULL ? "customer" : "platform");
    cr_assert_str_eq(sget(json_array_get(calls, 1), "provider"), "serper");
    cr_assert_str_eq(sget(json_array_get(calls, 1), "source"), "platform");
    json_decref(cost);
    return rec;
}

Test(exec_mixed, only_the_calls_on_platform_credentials_are_charged_and_spent)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-mixed", "u1", "org-mixed"), EE_OK);
    char *out = NULL;
    cr_assert_eq(ee_cred_key_add(engine, p,
                                 "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"" C_CUSTOMER "\"}",
                                 &out),
                 EE_OK, "%s", out);
    json_t *key = parse_doc(out);
    ee_free(out);
    char key_id[64];
    snprintf(key_id, sizeof key_id, "%s", sget(key, "id"));
    json_decref(key);

    json_t *rec = run(p, key_id);
    /* each upstream got the key its call was routed to */
    cr_assert_str_eq(openrouter_auth, "Bearer " C_CUSTOMER);
    cr_assert_str_eq(serper_key, C_SERPER);
    json_t *used = json_object_get(rec, "apiKeyUsed");
    cr_assert_str_eq(sget(used, "type"), "customer");
    cr_assert_eq(money(json_object_get(used, "cost")), LLM_NANO + SEARCH_NANO, "every call");
    cr_assert_eq(money(json_object_get(used, "platformCost")), SEARCH_NANO,
                 "the platform's part");
    /* the charge (booked before ee_exec_run() returned the accounted run) */
    json_t *charge = json_object_get(rec, "charge");
    cr_assert(json_is_object(charge), "the run was not accounted");
    cr_assert_eq(money(json_object_get(charge, "cost")), SEARCH_NANO,
                 "the customer's LLM call was charged, or the search was not");
    cr_assert_eq(money(json_object_get(charge, "markup")), SEARCH_NANO / 5);
    cr_assert_eq(money(json_object_get(charge, "allowanceUsed")), 0);
    cr_assert_eq(money(json_object_get(charge, "charged")), SEARCH_NANO + SEARCH_NANO / 5);
    json_decref(rec);
    /* the month's platform spend counts the search only */
    cr_assert_eq(spend_used(p), SEARCH_NANO);

    /* the same workflow on platform keys: both calls are the platform's */
    rec = run(p, NULL);
    used = json_object_get(rec, "apiKeyUsed");
    cr_assert_str_eq(sget(used, "type"), "platform");
    cr_assert_str_eq(openrouter_auth, "Bearer " C_OPENROUTER);
    cr_assert_eq(money(json_object_get(used, "platformCost")), LLM_NANO + SEARCH_NANO);
    charge = json_object_get(rec, "charge");
    cr_assert_eq(money(json_object_get(charge, "cost")), LLM_NANO + SEARCH_NANO);
    json_decref(rec);
    cr_assert_eq(spend_used(p), SEARCH_NANO + LLM_NANO + SEARCH_NANO);
    cr_assert_eq(fake_hits("llm"), 2, "each run triggered the workflow once");

    /* the month: both runs' charges, to the nano-dollar */
    cr_assert_eq(ee_billing_current(engine, p, &out), EE_OK, "%s", out);
    json_t *month = parse_doc(out);
    ee_free(out);
    char *text = json_dumps(month, 0);
    int64_t total_cost = money(json_object_get(json_object_get(month, "usage"), "totalCost"));
    cr_assert_eq(total_cost, SEARCH_NANO + LLM_NANO + SEARCH_NANO, "%s", text);
    cr_assert(strstr(text, "CANARY") == NULL, "a key leaked into billing: %s", text);
    free(text);
    json_decref(month);
    ee_principal_free(p);
}
