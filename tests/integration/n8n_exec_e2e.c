/*
 * Executions end to end against the real n8n (the ctest fixture `n8n`,
 * provisioned with tests/fixtures/n8n/), through the engine's embedded
 * gateway listener to the fake OpenRouter and Serper
 * (tests/support/fake_openrouter.py, fake_serper.py: the gateway's
 * data/gateway.json is copied per test with their base URLs):
 *
 *   - a zero-config run on the platform's key, metered to the fake's exact
 *     usage and cost, committed to the quota;
 *   - a run on the customer's own key: charge 0, the key's totals counted;
 *   - a credential gap: refused, nothing consumed, no record;
 *   - a workflow that fails in n8n: failed with the workflow's own message,
 *     the reservation released;
 *   - a long run finished by polling n8n;
 *   - a budget overrun refused mid-run by the gateway (ee-llm-twice);
 *
 * and after each, the canary scan: the platform's and the customer's keys
 * appear nowhere in n8n's stored execution data (read through its API),
 * the SQLite file and its WAL, the log lines, or an answer.
 * A missing n8n fails the tests (the fixture is required).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_upstream.h"
#include "n8n_engine.h"
#include "test_servers.h"
#include "execengine/catalog.h"
#include "execengine/config.h"
#include "execengine/credentials.h"
#include "execengine/engine.h"
#include "execengine/errors.h"
#include "execengine/exec.h"
#include "execengine/gateway.h"
#include "execengine/log.h"
#include "execengine/n8n.h"
#include "execengine/principal.h"
#include "execengine/quota.h"
#include "execengine/transport.h"

#define PLATFORM_CANARY "sk-or-v1-e2eplatformcanary0123456789abcdef01"
#define CUSTOMER_CANARY "sk-or-v1-e2ecustomercanary0123456789abcdef01"

#define LLM_SUMMARY "ee-test LLM summary (OpenRouter through the gateway)"
#define LLM_TWICE "ee-test LLM twice (two OpenRouter calls through the gateway)"
#define SEARCH "ee-test web search (Serper through the gateway)"
#define FAIL "ee-test fail (Stop and Error)"
#define WAIT "ee-test wait (answers early, needs polling)"

/* the fake OpenRouter's usage figures (fake_openrouter.py) */
#define FAKE_TOKENS 59
#define FAKE_COST_NANO 123000

static char url[256], key[2048], dir[256];
static ee_fake_upstream openrouter, serper;
static ee_engine *engine;
static ee_principal *alice;
static char *listener;
static char n8n_ids[16][64];
static int n_n8n_ids;

/* ---- everything logged, and everything answered, for the canary scan ---- */

static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static char *seen;
static size_t seen_len;

static void remember(const char *text)
{
    if (text == NULL)
        return;
    pthread_mutex_lock(&seen_lock);
    size_t n = strlen(text);
    char *grown = realloc(seen, seen_len + n + 2);
    if (grown != NULL) {
        seen = grown;
        memcpy(seen + seen_len, text, n);
        seen_len += n;
        seen[seen_len++] = '\n';
        seen[seen_len] = '\0';
    }
    pthread_mutex_unlock(&seen_lock);
}

static void on_log(ee_log_level level, const char *module, const char *message, void *payload)
{
    (void)level;
    (void)module;
    (void)payload;
    remember(message);
}

/* ---- setup ---------------------------------------------------------------- */

static void set(ee_config *cfg, const char *k, const char *v)
{
    cr_assert_eq(ee_config_set(cfg, k, v), EE_OK, "%s: %s", k, ee_error_last_message());
}

/* data/ copied into the test's folder, the providers' base URLs the fakes'. */
static void data_copy(char *data, size_t cap)
{
    char src[1024], cmd[2600];
    snprintf(src, sizeof src, "%s", __FILE__);
    for (int up = 0; up < 3; up++)
        *strrchr(src, '/') = '\0';
    snprintf(data, cap, "%s/data", dir);
    snprintf(cmd, sizeof cmd, "cp -r '%s/data' '%s'", src, data);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    char path[1100];
    snprintf(path, sizeof path, "%s/gateway.json", data);
    json_t *doc = json_load_file(path, 0, NULL);
    cr_assert_not_null(doc, "%s", path);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(doc, "providers"), i, p) {
        const char *name = json_string_value(json_object_get(p, "provider"));
        if (strcmp(name, "openrouter") == 0)
            json_object_set_new(p, "baseUrl", json_string(openrouter.base));
        else if (strcmp(name, "serper") == 0)
            json_object_set_new(p, "baseUrl", json_string(serper.base));
    }
    cr_assert_eq(json_dump_file(doc, path, JSON_INDENT(2)), 0);
    json_decref(doc);
}

static void setup(void)
{
    ee_test_n8n_value("EE_TEST_N8N_URL", url, sizeof url);
    ee_test_n8n_value("EE_TEST_N8N_API_KEY", key, sizeof key);
    snprintf(dir, sizeof dir, "/tmp/ee-n8n-e2e-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    ee_fake_upstream_start(&openrouter, "fake_openrouter.py");
    ee_fake_upstream_start(&serper, "fake_serper.py");
    char data[512], db[400], validate[128];
    data_copy(data, sizeof data);
    snprintf(db, sizeof db, "sqlite://%s/ee.db", dir);
    snprintf(validate, sizeof validate, "%s/valid", openrouter.base);
    ee_config *cfg;
    cr_assert_eq(ee_config_new(&cfg), EE_OK);
    set(cfg, "API_KEY_ENCRYPTION_SECRET", "test-secret-0123456789abcdef0123456789");
    set(cfg, "EE_STORAGE_URI", db);
    set(cfg, "EE_DATA_DIR", data);
    set(cfg, "N8N_BASE_URL", url);
    set(cfg, "N8N_API_KEY", key);
    set(cfg, "OPENROUTER_API_URL", validate);
    set(cfg, "PLATFORM_OPENROUTER_API_KEY", PLATFORM_CANARY);
    /* no PLATFORM_SERPER_KEY: web search has a credential gap */
    set(cfg, "EXEC_WORKERS", "2");
    set(cfg, "EXEC_POLL_MS", "100");
    set(cfg, "EXEC_BUDGET_FACTOR", "1");
    cr_assert_eq(ee_config_set_log(cfg, on_log, EE_LOG_DEBUG, NULL), EE_OK);
    ee_status st = ee_engine_open(&engine, cfg);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_gateway_listen(engine, "127.0.0.1:0", &listener), EE_OK, "%s",
                 ee_error_last_message());
    char *out = NULL;
    cr_assert_eq(ee_cred_platform_provision(engine, &out), EE_OK, "%s", out);
    remember(out);
    ee_free(out);
    cr_assert_eq(ee_catalog_sync(engine, &out), EE_OK, "sync: %s", out);
    remember(out);
    ee_free(out);
    cr_assert_eq(ee_principal_new(&alice, "ws-e2e", "u1", "org-e2e"), EE_OK);
    n_n8n_ids = 0;
}

static void teardown(void)
{
    ee_principal_free(alice);
    ee_engine_close(engine);
    engine = NULL;
    ee_free(listener);
    listener = NULL;
    ee_fake_upstream_stop(&openrouter);
    ee_fake_upstream_stop(&serper);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)system(cmd);
    pthread_mutex_lock(&seen_lock);
    free(seen);
    seen = NULL;
    seen_len = 0;
    pthread_mutex_unlock(&seen_lock);
}

TestSuite(n8n_exec_e2e, .init = setup, .fini = teardown, .timeout = 420);

/* ---- helpers ----------------------------------------------------------------- */

static const char *sget(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_t *parse(const char *text)
{
    json_t *doc = json_loads(text != NULL ? text : "", 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", text != NULL ? text : "(null)");
    return doc;
}

/* Run `request` on `name` and wait; *out the record, the status returned. */
static ee_status run(const char *name, const char *request, json_t **rec_out)
{
    char wf[25], id[EE_EXEC_ID_SIZE], *out = NULL;
    ee_test_n8n_entry_named(engine, name, wf);
    ee_status st = ee_exec_submit(engine, alice, wf, request, NULL, NULL, id);
    cr_assert_eq(st, EE_OK, "%s: %s", name, ee_error_last_message());
    st = ee_exec_wait(engine, alice, id, 300000, &out);
    cr_assert_neq(st, EE_ETIMEOUT, "%s never ended: %s", name, out);
    remember(out);
    if (st != EE_OK) /* expected by some tests; the record says why when it was not */
        fprintf(stderr, "%s ended %s: %s\n", name, ee_status_name(st), out);
    json_t *rec = parse(out);
    ee_free(out);
    const char *n8n_id = sget(rec, "n8nExecutionId");
    if (n8n_id != NULL && n_n8n_ids < 16)
        snprintf(n8n_ids[n_n8n_ids++], sizeof n8n_ids[0], "%s", n8n_id);
    *rec_out = rec;
    return st;
}

static json_t *usage(void)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_usage(engine, alice, &out), EE_OK, "%s", out);
    remember(out);
    json_t *doc = parse(out);
    ee_free(out);
    return doc;
}

static int64_t predictions(void)
{
    json_t *u = usage();
    int64_t v = json_integer_value(json_object_get(json_object_get(u, "predictions"), "usage"));
    json_decref(u);
    return v;
}

static int64_t spend_nano(void)
{
    json_t *u = usage();
    int64_t v = json_integer_value(json_object_get(
        json_object_get(json_object_get(u, "spend"), "usage"), "nanoUsd"));
    json_decref(u);
    return v;
}

/* The chat completions the fake OpenRouter received (a JSON array). */
static json_t *chat_calls(void)
{
    json_t *reqs = ee_fake_upstream_requests(&openrouter);
    json_t *calls = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(reqs, i, r) {
        const char *path = sget(r, "path");
        if (path != NULL && strstr(path, "/chat/completions") != NULL)
            json_array_append(calls, r);
    }
    json_decref(reqs);
    return calls;
}

static const char *auth_of(const json_t *req)
{
    return sget(json_object_get(req, "headers"), "authorization");
}

static void set_estimate(const char *name, const char *usd)
{
    char wf[25], patch[96], *out = NULL;
    ee_test_n8n_entry_named(engine, name, wf);
    snprintf(patch, sizeof patch, "{\"estimatedCost\": \"%s\"}", usd);
    cr_assert_eq(ee_catalog_update(engine, wf, patch, &out), EE_OK, "%s", out);
    ee_free(out);
}

/* A file's bytes hold `needle`? (binary-safe) */
static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    size_t n = strlen(needle), cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    cr_assert_not_null(buf);
    bool found = false;
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        for (size_t i = 0; i + n <= len; i++)
            if (memcmp(buf + i, needle, n) == 0) {
                found = true;
                break;
            }
        if (found || got == 0)
            break;
        /* keep the last n-1 bytes for a needle across the boundary */
        if (len >= n) {
            memmove(buf, buf + len - (n - 1), n - 1);
            len = n - 1;
        }
    }
    free(buf);
    fclose(f);
    return found;
}

/* The canary scan: n8n's stored data of this test's runs (through its API,
 * with data), the SQLite file and WAL, every log line and answer seen. */
static void no_canary_anywhere(void)
{
    const char *canaries[] = {PLATFORM_CANARY, CUSTOMER_CANARY};
    ee_transport *t = NULL;
    ee_n8n *client = NULL;
    cr_assert_eq(ee_transport_curl_new(&t, NULL), EE_OK);
    cr_assert_eq(ee_n8n_new(&client, t, url, key), EE_OK, "%s", ee_error_last_message());
    for (int i = 0; i < n_n8n_ids; i++) {
        char *out = NULL;
        cr_assert_eq(ee_n8n_get_execution(client, n8n_ids[i], 1, &out), EE_OK, "%s", out);
        cr_assert_gt(strlen(out), 100, "n8n's execution %s with its data", n8n_ids[i]);
        for (size_t c = 0; c < 2; c++)
            cr_assert_null(strstr(out, canaries[c]), "a key in n8n's execution %s", n8n_ids[i]);
        ee_free(out);
    }
    ee_n8n_free(client);
    ee_transport_free(t);
    const char *files[] = {"ee.db", "ee.db-wal", "ee.db-journal"};
    for (size_t f = 0; f < 3; f++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s", dir, files[f]);
        for (size_t c = 0; c < 2; c++)
            cr_assert(!file_has(path, canaries[c]), "a key in %s", path);
    }
    pthread_mutex_lock(&seen_lock);
    cr_assert_gt(seen_len, 0, "the scan saw log lines and answers");
    for (size_t c = 0; c < 2; c++)
        cr_assert_null(strstr(seen, canaries[c]), "a key in a log line or an answer");
    pthread_mutex_unlock(&seen_lock);
}

/* ---- the journeys -------------------------------------------------------------- */

Test(n8n_exec_e2e, a_zero_config_run_on_platform_credentials_is_metered_exactly)
{
    int64_t pred0 = predictions(), spend0 = spend_nano();
    json_t *rec = NULL;
    ee_status st = run(LLM_SUMMARY,
                       "{\"parameters\": {\"text\": \"the quick brown fox jumps over the dog\"}}",
                       &rec);
    cr_assert_eq(st, EE_OK, "%s", json_dumps(rec, 0));
    cr_assert_str_eq(sget(rec, "status"), "completed");
    json_t *output = json_object_get(rec, "outputData");
    cr_assert_not_null(strstr(sget(output, "summary"), "quick brown fox"), "the fake's answer");
    json_t *used = json_object_get(rec, "apiKeyUsed");
    cr_assert_str_eq(sget(used, "type"), "platform");
    cr_assert_str_eq(sget(used, "provider"), "openrouter");
    cr_assert_eq(json_integer_value(json_object_get(used, "cost")), FAKE_COST_NANO);
    cr_assert_eq(json_integer_value(json_object_get(used, "tokensUsed")), FAKE_TOKENS);
    /* the upstream got the platform's key, not the gateway token */
    json_t *calls = chat_calls();
    cr_assert_eq(json_array_size(calls), 1);
    cr_assert_str_eq(auth_of(json_array_get(calls, 0)), "Bearer " PLATFORM_CANARY);
    json_decref(calls);
    /* the cost breakdown lists the metered call */
    char *out = NULL;
    cr_assert_eq(ee_exec_cost(engine, alice, sget(rec, "_id"), &out), EE_OK, "%s", out);
    remember(out);
    json_t *cost = parse(out);
    ee_free(out);
    json_t *call = json_array_get(json_object_get(cost, "calls"), 0);
    cr_assert_eq(json_array_size(json_object_get(cost, "calls")), 1);
    cr_assert_str_eq(sget(call, "provider"), "openrouter");
    cr_assert_str_eq(sget(call, "model"), "openai/gpt-4o-mini");
    cr_assert_eq(json_integer_value(json_object_get(call, "totalTokens")), FAKE_TOKENS);
    cr_assert_eq(json_integer_value(json_object_get(call, "cost")), FAKE_COST_NANO);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(cost, "totals"), "cost")),
                 FAKE_COST_NANO);
    json_decref(cost);
    json_decref(rec);
    /* the reservation committed with the metered cost */
    cr_assert_eq(predictions(), pred0 + 1);
    cr_assert_eq(spend_nano(), spend0 + FAKE_COST_NANO, "%s", json_dumps(usage(), 0));
    no_canary_anywhere();
}

Test(n8n_exec_e2e, a_run_on_the_customers_own_key_charges_nothing_and_counts_the_key)
{
    char *out = NULL;
    cr_assert_eq(ee_cred_key_add(engine, alice,
                                 "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"" CUSTOMER_CANARY "\"}",
                                 &out),
                 EE_OK, "%s", out);
    remember(out);
    json_t *k = parse(out);
    ee_free(out);
    char key_id[64], req[256];
    snprintf(key_id, sizeof key_id, "%s", sget(k, "id"));
    json_decref(k);
    int64_t pred0 = predictions(), spend0 = spend_nano();
    snprintf(req, sizeof req,
             "{\"parameters\": {\"text\": \"on my own key\"}, \"useCustomApiKey\": true, "
             "\"apiKeyId\": \"%s\"}",
             key_id);
    json_t *rec = NULL;
    cr_assert_eq(run(LLM_SUMMARY, req, &rec), EE_OK);
    cr_assert_str_eq(sget(rec, "status"), "completed");
    json_t *used = json_object_get(rec, "apiKeyUsed");
    cr_assert_str_eq(sget(used, "type"), "customer");
    cr_assert_str_eq(sget(used, "keyId"), key_id);
    cr_assert_eq(json_integer_value(json_object_get(used, "tokensUsed")), FAKE_TOKENS);
    json_decref(rec);
    json_t *calls = chat_calls();
    cr_assert_eq(json_array_size(calls), 1);
    cr_assert_str_eq(auth_of(json_array_get(calls, 0)), "Bearer " CUSTOMER_CANARY,
                     "the upstream got the customer's key");
    json_decref(calls);
    /* counted as a run, charged nothing to the platform's spend */
    cr_assert_eq(predictions(), pred0 + 1);
    cr_assert_eq(spend_nano(), spend0);
    cr_assert_eq(ee_cred_key_get(engine, alice, key_id, &out), EE_OK, "%s", out);
    remember(out);
    k = parse(out);
    ee_free(out);
    json_t *total = json_object_get(k, "totalUsage");
    cr_assert_eq(json_integer_value(json_object_get(total, "executions")), 1);
    cr_assert_eq(json_integer_value(json_object_get(total, "tokensUsed")), FAKE_TOKENS);
    cr_assert_not_null(json_object_get(k, "lastUsedAt"));
    cr_assert(!json_is_null(json_object_get(k, "lastUsedAt")));
    json_decref(k);
    no_canary_anywhere();
}

Test(n8n_exec_e2e, a_credential_gap_is_refused_with_nothing_consumed)
{
    char wf[25], id[EE_EXEC_ID_SIZE] = "";
    ee_test_n8n_entry_named(engine, SEARCH, wf);
    int64_t pred0 = predictions();
    ee_status st = ee_exec_submit(engine, alice, wf, "{\"parameters\": {\"query\": \"x\"}}",
                                  NULL, NULL, id);
    cr_assert_eq(st, EE_ECREDENTIALS, "%s", ee_error_last_message());
    char *detail = NULL;
    cr_assert_eq(ee_error_last_json(&detail), EE_OK);
    remember(detail);
    cr_assert_not_null(detail);
    cr_assert_not_null(strstr(detail, "serperApi"), "the gap is named: %s", detail);
    ee_free(detail);
    cr_assert_eq(predictions(), pred0, "nothing consumed");
    char *out = NULL;
    cr_assert_eq(ee_exec_list(engine, alice, NULL, &out), EE_OK, "%s", out);
    json_t *list = parse(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(list, "data")), 0, "no record");
    json_decref(list);
    json_t *reqs = ee_fake_upstream_requests(&serper);
    cr_assert_eq(json_array_size(reqs), 0, "nothing ran");
    json_decref(reqs);
    no_canary_anywhere();
}

Test(n8n_exec_e2e, a_workflow_failing_in_n8n_keeps_its_message_and_releases_the_quota)
{
    int64_t pred0 = predictions();
    json_t *rec = NULL;
    ee_status st = run(FAIL, "{\"parameters\": {}}", &rec);
    cr_assert_neq(st, EE_OK);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    const char *msg = sget(rec, "errorMessage");
    cr_assert_not_null(msg);
    cr_assert_not_null(strstr(msg, "ee-fail fixture: deliberate failure"),
                       "the workflow's own message: %s", msg);
    cr_assert_not_null(sget(rec, "n8nExecutionId"), "n8n's execution was found");
    json_decref(rec);
    cr_assert_eq(predictions(), pred0, "a failed run is not counted");
    no_canary_anywhere();
}

Test(n8n_exec_e2e, a_long_run_is_finished_by_polling_n8n)
{
    json_t *rec = NULL;
    cr_assert_eq(run(WAIT, "{\"parameters\": {\"seconds\": 3}}", &rec), EE_OK);
    cr_assert_str_eq(sget(rec, "status"), "completed");
    json_t *output = json_object_get(rec, "outputData");
    cr_assert_eq(json_integer_value(json_object_get(output, "waitedSeconds")), 3,
                 "the output n8n stored after the wait");
    cr_assert_str_eq(sget(output, "eeExecutionId"), sget(rec, "_id"));
    cr_assert_not_null(sget(rec, "n8nExecutionId"));
    cr_assert_geq(json_integer_value(json_object_get(rec, "executionTimeMs")), 3000);
    json_decref(rec);
    no_canary_anywhere();
}

Test(n8n_exec_e2e, a_budget_overrun_is_refused_mid_run)
{
    /* budget = estimate x EXEC_BUDGET_FACTOR (1) = 100000 nano-USD: the
     * first call (123000) is let through, the second refused */
    set_estimate(LLM_TWICE, "0.0001");
    int64_t pred0 = predictions();
    json_t *rec = NULL;
    ee_status st = run(LLM_TWICE, "{\"parameters\": {\"text\": \"say it twice\"}}", &rec);
    cr_assert_eq(st, EE_ESPEND, "%s", json_dumps(rec, 0));
    cr_assert_str_eq(sget(rec, "status"), "failed");
    const char *msg = sget(rec, "errorMessage");
    cr_assert_not_null(strstr(msg, "budget"), "%s", msg);
    cr_assert_not_null(strstr(msg, "openrouter"), "%s", msg);
    json_t *used = json_object_get(rec, "apiKeyUsed");
    cr_assert_eq(json_integer_value(json_object_get(used, "cost")), FAKE_COST_NANO,
                 "the first call's cost only");
    char *out = NULL;
    cr_assert_eq(ee_exec_cost(engine, alice, sget(rec, "_id"), &out), EE_OK, "%s", out);
    remember(out);
    json_t *cost = parse(out);
    ee_free(out);
    json_t *calls = json_object_get(cost, "calls");
    int passed = 0, refused = 0;
    size_t i;
    json_t *c;
    json_array_foreach(calls, i, c) {
        int code = (int)json_integer_value(json_object_get(c, "status"));
        if (code == 200)
            passed++;
        else if (code == 402)
            refused++;
    }
    cr_assert_eq(passed, 1, "one call went through");
    cr_assert_leq(refused, 1);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(cost, "totals"), "cost")),
                 FAKE_COST_NANO);
    json_decref(cost);
    json_decref(rec);
    json_t *upstream = chat_calls();
    cr_assert_eq(json_array_size(upstream), 1, "the refused call never reached the upstream");
    json_decref(upstream);
    cr_assert_eq(predictions(), pred0, "a failed run is not counted");
    no_canary_anywhere();
}
