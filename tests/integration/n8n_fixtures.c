/*
 * The fixture workflows of tests/fixtures/n8n/ against the real n8n (the
 * ctest fixture `n8n`: tests/support/n8n/harness.sh imported and activated
 * them), each called the way the engine calls it (docs/workflows.md): the
 * parameters plus an "ee" member whose gatewayUrl is a fake upstream
 * standing in for the gateway, so the test sees what the workflow sent.
 * No engine is involved: these check the workflows and the harness.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_upstream.h"
#include "test_servers.h"
#include "execengine/errors.h"
#include "execengine/transport.h"

#define TOKEN "eeg_CANARYgatewayTOKEN0123456789abcdefghijklmnopq"
#define EXEC_ID "0123456789abcdef01234567"
#define WORKSPACE "ws-fixtures"
/* A callback key as the engine gives it: 64 hex characters. */
#define CB_KEY "8f1c2a9e7b6d5c4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"

static char url[256], key[2048];
static ee_fake_upstream orouter, serper;

static void setup(void)
{
    ee_test_n8n_value("EE_TEST_N8N_URL", url, sizeof url);
    ee_test_n8n_value("EE_TEST_N8N_API_KEY", key, sizeof key);
    ee_fake_upstream_start(&orouter, "fake_openrouter.py");
    ee_fake_upstream_start(&serper, "fake_serper.py");
    /* the workflow's bearer token stands for the key the gateway would inject */
    ee_fake_upstream_post(&serper, "/__config", "{\"acceptBearer\": true}");
}

static void teardown(void)
{
    ee_fake_upstream_stop(&orouter);
    ee_fake_upstream_stop(&serper);
}

TestSuite(n8n_fixtures, .init = setup, .fini = teardown, .timeout = 240);

/* One HTTP call; returns the status, *out the JSON answer (or NULL). */
static int http(const char *method, const char *full, const char *api_key, const char *body,
                json_t **out)
{
    ee_transport *t;
    cr_assert_eq(ee_transport_curl_new(&t, NULL), EE_OK);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, method, full), EE_OK);
    if (api_key != NULL)
        cr_assert_eq(ee_http_request_add_header(req, "X-N8N-API-KEY", api_key), EE_OK);
    if (body != NULL) {
        cr_assert_eq(ee_http_request_add_header(req, "Content-Type", "application/json"), EE_OK);
        cr_assert_eq(ee_http_request_set_body(req, body, strlen(body)), EE_OK);
    }
    ee_http_response *resp;
    cr_assert_eq(ee_transport_http(t, req, &resp), EE_OK, "%s %s: %s", method, full,
                 ee_error_last_message());
    int status = ee_http_response_status(resp);
    const void *data;
    size_t len;
    ee_http_response_body(resp, &data, &len);
    if (out != NULL)
        *out = json_loadb(data, len, 0, NULL);
    ee_http_response_free(resp);
    ee_http_request_free(req);
    ee_transport_free(t);
    return status;
}

/* POST the fixture's production webhook with `params` (a JSON object text)
 * plus the "ee" member; `gateway` is the stand-in gateway's base URL and
 * `callback` the callback URL (NULL: none). */
static int trigger(const char *path, const char *params, const char *gateway,
                   const char *callback, json_t **out)
{
    json_t *body = json_loads(params, 0, NULL);
    cr_assert_not_null(body);
    json_t *ee = json_pack("{s:s, s:s, s:s, s:s}", "executionId", EXEC_ID, "workspaceId",
                           WORKSPACE, "gatewayUrl", gateway, "gatewayToken", TOKEN);
    if (callback != NULL) {
        json_object_set_new(ee, "callbackUrl", json_string(callback));
        json_object_set_new(ee, "callbackKey", json_string(CB_KEY));
    }
    json_object_set_new(body, "ee", ee);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    char full[512];
    snprintf(full, sizeof full, "%s/webhook/%s", url, path);
    int st = http("POST", full, NULL, text, out);
    free(text);
    return st;
}

static const char *str(const json_t *obj, const char *name)
{
    const char *s = json_string_value(json_object_get(obj, name));
    cr_assert_not_null(s, "no string member %s", name);
    return s;
}

/* n8n's record of one execution (with its data), polled until it has
 * ended: up to 120 polls 0.25 s apart. */
static json_t *execution_ended(const char *id)
{
    char full[512];
    snprintf(full, sizeof full, "%s/api/v1/executions/%s?includeData=true", url, id);
    for (int i = 0; i < 120; i++) {
        json_t *ex = NULL;
        int st = http("GET", full, key, NULL, &ex);
        if (st == 200 && ex != NULL) {
            const char *s = json_string_value(json_object_get(ex, "status"));
            if (s != NULL && (strcmp(s, "success") == 0 || strcmp(s, "error") == 0))
                return ex;
        }
        json_decref(ex);
        usleep(250 * 1000);
    }
    cr_assert_fail("n8n execution %s did not end", id);
    return NULL;
}

/* The first item the execution's last node produced. */
static json_t *last_output(json_t *ex)
{
    json_t *rd = json_object_get(json_object_get(ex, "data"), "resultData");
    const char *last = str(rd, "lastNodeExecuted");
    json_t *run = json_array_get(json_object_get(json_object_get(rd, "runData"), last), 0);
    json_t *item = json_array_get(
        json_array_get(json_object_get(json_object_get(run, "data"), "main"), 0), 0);
    cr_assert_not_null(item, "no output from %s", last);
    return json_object_get(item, "json");
}

/* The newest execution of a workflow (by fixture name in workflows.json). */
static json_t *newest_execution_of(const char *fixture)
{
    char var[128], id[64];
    snprintf(var, sizeof var, "EE_TEST_N8N_WF_%s", fixture);
    ee_test_n8n_value(var, id, sizeof id);
    char full[512];
    snprintf(full, sizeof full, "%s/api/v1/executions?workflowId=%s&limit=1", url, id);
    json_t *list = NULL;
    cr_assert_eq(http("GET", full, key, NULL, &list), 200);
    json_t *first = json_array_get(json_object_get(list, "data"), 0);
    cr_assert_not_null(first, "no execution of %s", fixture);
    char eid[32];
    snprintf(eid, sizeof eid, "%s", str(first, "id"));
    json_decref(list);
    return execution_ended(eid);
}

Test(n8n_fixtures, echo2_answers_the_parameters_without_the_ee_member)
{
    json_t *out = NULL;
    cr_assert_eq(trigger("ee-echo2", "{\"a\": 2, \"msg\": \"hi\"}", orouter.base, NULL, &out), 200);
    json_t *want = json_pack("{s:i, s:s}", "a", 2, "msg", "hi");
    cr_assert(json_equal(json_object_get(out, "echo"), want), "echo is the parameters only");
    cr_assert_str_eq(str(out, "eeExecutionId"), EXEC_ID);
    cr_assert_gt(strlen(str(out, "n8nExecutionId")), 0);
    /* the n8n client reads an answer's "executionId" as n8n's execution id */
    cr_assert_null(json_object_get(out, "executionId"));
    char *text = json_dumps(out, 0);
    cr_assert_null(strstr(text, TOKEN), "the gateway token is never in an output: %s", text);
    free(text);
    json_decref(want);
    json_decref(out);
}

Test(n8n_fixtures, text_transform_upper_cases_and_counts_words)
{
    json_t *out = NULL;
    cr_assert_eq(trigger("ee-text", "{\"text\": \"  hello big\\tworld \"}", orouter.base, NULL,
                         &out), 200);
    cr_assert_str_eq(str(out, "upper"), "  HELLO BIG\tWORLD ");
    cr_assert_eq(json_integer_value(json_object_get(out, "words")), 3);
    cr_assert_eq(json_integer_value(json_object_get(out, "characters")), 18);
    json_decref(out);
}

Test(n8n_fixtures, llm_summary_calls_openrouter_through_the_gateway_url)
{
    json_t *out = NULL;
    cr_assert_eq(trigger("ee-llm-summary", "{\"text\": \"The quick brown fox jumps\"}",
                         orouter.base, NULL, &out), 200);
    cr_assert_str_eq(str(out, "summary"), "Summary: The quick brown fox jumps");
    cr_assert_str_eq(str(out, "model"), "openai/gpt-4o-mini");
    json_t *usage = json_object_get(out, "usage");
    cr_assert_eq(json_integer_value(json_object_get(usage, "prompt_tokens")), 42);
    cr_assert_eq(json_integer_value(json_object_get(usage, "completion_tokens")), 17);
    cr_assert_eq(json_integer_value(json_object_get(usage, "total_tokens")), 59);
    cr_assert_float_eq(json_real_value(json_object_get(usage, "cost")), 0.000123, 1e-12);
    json_decref(out);

    cr_assert_eq(trigger("ee-llm-summary", "{\"text\": \"x\", \"model\": \"anthropic/claude-3-haiku\"}",
                         orouter.base, NULL, &out), 200);
    cr_assert_str_eq(str(out, "model"), "anthropic/claude-3-haiku", "the model parameter is used");
    json_decref(out);

    json_t *reqs = ee_fake_upstream_requests(&orouter);
    cr_assert_eq(json_array_size(reqs), 2);
    json_t *r = json_array_get(reqs, 0);
    cr_assert_str_eq(str(r, "method"), "POST");
    cr_assert_str_eq(str(r, "path"), "/openrouter/api/v1/chat/completions");
    cr_assert_str_eq(str(json_object_get(r, "headers"), "authorization"), "Bearer " TOKEN,
                     "the gateway token, not n8n's dummy credential");
    json_t *sent = json_loads(str(r, "body"), 0, NULL);
    cr_assert_not_null(sent);
    cr_assert(json_is_true(json_object_get(json_object_get(sent, "usage"), "include")),
              "usage accounting asked for");
    cr_assert_str_eq(str(sent, "model"), "openai/gpt-4o-mini");
    json_t *msgs = json_object_get(sent, "messages");
    cr_assert_str_eq(str(json_array_get(msgs, 1), "content"), "The quick brown fox jumps");
    cr_assert_null(strstr(str(r, "body"), "\"ee\""), "the ee member is not sent upstream");
    json_decref(sent);
    json_decref(reqs);
}

Test(n8n_fixtures, search_calls_serper_through_the_gateway_url)
{
    json_t *out = NULL;
    cr_assert_eq(trigger("ee-search", "{\"query\": \"cats & dogs\", \"num\": 2}", serper.base,
                         NULL, &out), 200);
    cr_assert_str_eq(str(out, "query"), "cats & dogs");
    cr_assert_eq(json_integer_value(json_object_get(out, "count")), 2);
    json_t *first = json_array_get(json_object_get(out, "results"), 0);
    cr_assert_str_eq(str(first, "title"), "Result 1 for cats & dogs");
    json_decref(out);
    json_t *reqs = ee_fake_upstream_requests(&serper);
    cr_assert_eq(json_array_size(reqs), 1);
    json_t *r = json_array_get(reqs, 0);
    cr_assert_str_eq(str(r, "path"), "/serper/search");
    cr_assert_str_eq(str(json_object_get(r, "headers"), "authorization"), "Bearer " TOKEN);
    json_t *sent = json_loads(str(r, "body"), 0, NULL);
    cr_assert_str_eq(str(sent, "q"), "cats & dogs");
    cr_assert_eq(json_integer_value(json_object_get(sent, "num")), 2);
    json_decref(sent);
    json_decref(reqs);
}

Test(n8n_fixtures, fail_ends_in_error_with_the_known_message)
{
    json_t *out = NULL;
    cr_assert_eq(trigger("ee-fail", "{}", orouter.base, NULL, &out), 500);
    json_decref(out);
    json_t *ex = newest_execution_of("EE_FAIL");
    cr_assert_str_eq(str(ex, "status"), "error");
    json_t *err = json_object_get(json_object_get(json_object_get(ex, "data"), "resultData"),
                                  "error");
    cr_assert_str_eq(str(err, "message"), "ee-fail fixture: deliberate failure");
    json_decref(ex);
}

Test(n8n_fixtures, wait_answers_early_then_ends_with_its_output)
{
    json_t *out = NULL;
    cr_assert_eq(trigger("ee-wait", "{\"seconds\": 1}", orouter.base, NULL, &out), 202);
    cr_assert_str_eq(str(out, "status"), "running");
    char id[32];
    snprintf(id, sizeof id, "%s", str(out, "n8nExecutionId"));
    json_decref(out);
    json_t *ex = execution_ended(id);
    cr_assert_str_eq(str(ex, "status"), "success");
    json_t *o = last_output(ex);
    cr_assert_eq(json_integer_value(json_object_get(o, "waitedSeconds")), 1);
    cr_assert_str_eq(str(o, "eeExecutionId"), EXEC_ID);
    json_decref(ex);
}

Test(n8n_fixtures, callback_is_signed_over_timestamp_and_body)
{
    char cb[128];
    snprintf(cb, sizeof cb, "%s/host/callback", orouter.base);
    json_t *out = NULL;
    cr_assert_eq(trigger("ee-callback", "{\"text\": \"sign me\", \"seconds\": 1}", orouter.base,
                         cb, &out), 202);
    cr_assert_str_eq(str(out, "status"), "running");
    char id[32];
    snprintf(id, sizeof id, "%s", str(out, "n8nExecutionId"));
    json_decref(out);
    json_t *ex = execution_ended(id);
    cr_assert_str_eq(str(ex, "status"), "success");
    cr_assert_str_eq(str(last_output(ex), "upper"), "SIGN ME");

    json_t *reqs = ee_fake_upstream_requests(&orouter);
    cr_assert_eq(json_array_size(reqs), 1, "one callback");
    json_t *r = json_array_get(reqs, 0);
    cr_assert_str_eq(str(r, "path"), "/host/callback");
    json_t *h = json_object_get(r, "headers");
    const char *ts = str(h, "x-ee-timestamp"), *sig = str(h, "x-ee-signature");
    const char *body = str(r, "body");
    char *signed_text = NULL;
    cr_assert_gt(asprintf(&signed_text, "%s.%s", ts, body), 0);
    unsigned char mac[32];
    unsigned int mac_len = 0;
    /* the key is the callbackKey text as given (its 64 characters) */
    HMAC(EVP_sha256(), CB_KEY, (int)strlen(CB_KEY), (const unsigned char *)signed_text,
         strlen(signed_text), mac, &mac_len);
    char want[3 + 64 + 1] = "v1=";
    for (unsigned i = 0; i < mac_len; i++)
        snprintf(want + 3 + 2 * i, 3, "%02x", mac[i]);
    cr_assert_str_eq(sig, want);
    free(signed_text);
    cr_assert_gt(atoll(ts), 1700000000LL, "unix seconds");

    json_t *doc = json_loads(body, 0, NULL);
    cr_assert_str_eq(str(doc, "executionId"), EXEC_ID);
    cr_assert_str_eq(str(doc, "workspaceId"), WORKSPACE, "records are per workspace");
    cr_assert_str_eq(str(doc, "status"), "completed");
    cr_assert_str_eq(str(json_object_get(doc, "output"), "upper"), "SIGN ME");
    cr_assert_null(strstr(body, CB_KEY), "the key is not sent");
    json_decref(doc);
    json_decref(reqs);
    json_decref(ex);
}

Test(n8n_fixtures, callback_without_a_callback_url_fails_clearly)
{
    json_t *out = NULL;
    cr_assert_eq(trigger("ee-callback", "{\"seconds\": 0}", orouter.base, NULL, &out), 202);
    char id[32];
    snprintf(id, sizeof id, "%s", str(out, "n8nExecutionId"));
    json_decref(out);
    json_t *ex = execution_ended(id);
    cr_assert_str_eq(str(ex, "status"), "error");
    json_t *err = json_object_get(json_object_get(json_object_get(ex, "data"), "resultData"),
                                  "error");
    cr_assert_not_null(strstr(str(err, "message"), "ee.callbackUrl"));
    json_decref(ex);
}

/* harness.sh import: importing the fixtures again updates them in place. */
Test(n8n_fixtures, importing_again_duplicates_nothing)
{
    char full[512];
    snprintf(full, sizeof full, "%s/api/v1/workflows?limit=250", url);
    json_t *before = NULL;
    cr_assert_eq(http("GET", full, key, NULL, &before), 200);
    size_t n_before = json_array_size(json_object_get(before, "data"));

    char dir[] = "/tmp/ee-fixtures-import-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char script[1024], cmd[4096];
    snprintf(script, sizeof script, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    snprintf(slash, sizeof script - (size_t)(slash - script), "/../support/n8n/harness.sh");
    snprintf(cmd, sizeof cmd, "N8N_API_KEY='%s' '%s' import '%s' '%s' >/dev/null 2>&1", key,
             script, url, dir);
    cr_assert_eq(system(cmd), 0, "harness.sh import failed");

    json_t *after = NULL;
    cr_assert_eq(http("GET", full, key, NULL, &after), 200);
    json_t *data = json_object_get(after, "data");
    cr_assert_eq(json_array_size(data), n_before, "no workflow added");
    size_t i;
    json_t *wf;
    json_array_foreach(data, i, wf) {
        size_t k, same = 0;
        json_t *other;
        json_array_foreach(data, k, other) same += json_equal(json_object_get(wf, "name"),
                                                              json_object_get(other, "name"));
        cr_assert_eq(same, 1, "%s is there once", str(wf, "name"));
    }
    /* and the fixtures still answer (re-activated after the update) */
    json_t *out = NULL;
    cr_assert_eq(trigger("ee-text", "{\"text\": \"a b\"}", orouter.base, NULL, &out), 200);
    cr_assert_eq(json_integer_value(json_object_get(out, "words")), 2);
    json_decref(out);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
    json_decref(before);
    json_decref(after);
}
