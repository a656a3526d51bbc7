/*
 * A fake n8n for the execution pipeline's tests: an in-process transport
 * that answers n8n's public API (workflows to sync, one execution to poll)
 * and the workflows' webhooks, each path with its own behaviour, and
 * records every webhook body it received (the canary scans read them).
 *
 *   echo       200 {"status": "completed", "echo": <parameters.text>}
 *   leak       200 with secret-looking members in the output
 *   fail       500, n8n's "Error in workflow" with a message
 *   malformed  200 application/json that is not JSON
 *   flaky      the first two attempts never reach n8n (not sent), then echo
 *   reset      the connection drops after the request was sent
 *   slow       the transport times out
 *   async      200 {"status": "running", "n8nExecutionId": "77"}; the
 *              execution 77 is running until fake.exec_done is set
 *   callback   200 {"status": "running"} (no id: completion by callback)
 *   noid       200 {"status": "running"} (no id); n8n's execution list has
 *              it as 88, its data holding the body the webhook received
 *   gmail, llm workflows whose nodes need credentials
 */
#ifndef EE_TEST_EXEC_FAKE_H
#define EE_TEST_EXEC_FAKE_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fixture.h"
#include "fake_transport.h"
#include "execengine/catalog.h"
#include "execengine/exec.h"
#include "execengine/n8n.h"
#include "execengine/quota.h"
#include "execengine/transport.h"

typedef struct {
    pthread_mutex_t lock;
    json_t *workflows;
    json_t *bodies;        /* webhook bodies received, as text */
    json_t *hits;          /* path -> attempts that reached the fake */
    int flaky_left;
    int exec_done;         /* 0 running, 1 success, 2 error */
    int exec_polls;
    json_t *noid_body;     /* what the "noid" webhook received */
    int64_t webhook_timeout_ms; /* the last webhook request's own timeout */
} exec_fake;

static exec_fake fake;

static void fake_hit(const char *path)
{
    json_t *n = json_object_get(fake.hits, path);
    json_object_set_new(fake.hits, path, json_integer(json_integer_value(n) + 1));
}

static __attribute__((unused)) int fake_hits(const char *path)
{
    pthread_mutex_lock(&fake.lock);
    int n = (int)json_integer_value(json_object_get(fake.hits, path));
    pthread_mutex_unlock(&fake.lock);
    return n;
}

static ee_status fake_webhook(const char *path, const ee_http_request *req, ee_http_response *resp)
{
    const void *data = NULL;
    size_t len = 0;
    ee_http_request_body(req, &data, &len);
    fake.webhook_timeout_ms = ee_http_request_timeout_ms(req);
    if (strcmp(path, "flaky") == 0 && fake.flaky_left > 0) {
        fake.flaky_left--;
        fake_hit("flaky-refused");
        ee_http_response_set_not_sent(resp);
        return EE_ENETWORK;
    }
    fake_hit(path);
    json_array_append_new(fake.bodies, json_stringn(data != NULL ? data : "", len));
    json_t *body = json_loadb(data, len, 0, NULL);
    json_t *params = body;
    const char *text = json_string_value(json_object_get(params, "text"));
    ee_status st;
    if (strcmp(path, "echo") == 0 || strcmp(path, "flaky") == 0 || strcmp(path, "gmail") == 0 ||
        strcmp(path, "llm") == 0) {
        st = fake_answer_json(resp, 200, json_pack("{s:s, s:s?}", "status", "completed", "echo",
                                                   text));
    } else if (strcmp(path, "leak") == 0) {
        st = fake_answer_json(resp, 200,
                              json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "status", "completed",
                                        "summary", "fine", "password", "hunter2-canary",
                                        "nested", "x-api-key", "sk-leak-canary", "kept", "yes"));
    } else if (strcmp(path, "fail") == 0) {
        st = fake_answer_json(resp, 500, json_pack("{s:i, s:s, s:s}", "code", 0, "message",
                                                   "Error in workflow", "hint",
                                                   "Node Divide failed: division by zero"));
    } else if (strcmp(path, "malformed") == 0) {
        ee_http_response_set_status(resp, 200);
        ee_http_response_add_header(resp, "Content-Type", "application/json");
        ee_http_response_append_body(resp, "{\"status\": comp", 15);
        st = EE_OK;
    } else if (strcmp(path, "reset") == 0) {
        st = EE_ENETWORK; /* sent, then the connection dropped */
    } else if (strcmp(path, "slow") == 0) {
        st = EE_ETIMEOUT;
    } else if (strcmp(path, "async") == 0) {
        st = fake_answer_json(resp, 200, json_pack("{s:s, s:s}", "status", "running",
                                                   "n8nExecutionId", "77"));
    } else if (strcmp(path, "callback") == 0 || strcmp(path, "noid") == 0) {
        if (strcmp(path, "noid") == 0) {
            json_decref(fake.noid_body);
            fake.noid_body = json_incref(body);
        }
        st = fake_answer_json(resp, 200, json_pack("{s:s}", "status", "running"));
    } else {
        st = fake_answer_json(resp, 404, json_pack("{s:s}", "message", "webhook not registered"));
    }
    json_decref(body);
    return st;
}

static ee_status fake_execution(ee_http_response *resp, const char *id)
{
    fake.exec_polls++;
    const char *status = fake.exec_done == 1 ? "success" : fake.exec_done == 2 ? "error"
                                                                              : "running";
    json_t *ex = json_pack("{s:s, s:s, s:b, s:s, s:s}", "id", id, "workflowId", "wfA",
                           "finished", fake.exec_done == 1, "status", status, "mode", "webhook");
    if (fake.exec_done == 1)
        json_object_set_new(
            ex, "data",
            json_pack("{s:{s:s, s:{s:[{s:{s:[[{s:{s:i}}]]}}]}}}", "resultData",
                      "lastNodeExecuted", "Set", "runData", "Set", "data", "main", "json",
                      "answer", 42));
    if (fake.exec_done == 2)
        json_object_set_new(ex, "data", json_pack("{s:{s:{s:s}}}", "resultData", "error",
                                                  "message", "the Wait node was stopped"));
    return fake_answer_json(resp, 200, ex);
}

/* While set, the echo webhook holds its caller (outside the fake's lock):
 * runs pile up behind a worker that has not ended its first. */
static atomic_int fake_echo_gate;

static ee_status fake_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    (void)ctx;
    const char *url = ee_http_request_url(req);
    const char *web = "http://fake.n8n/webhook/", *api = "http://fake.n8n/api/v1/";
    ee_status st;
    while (atomic_load(&fake_echo_gate) && strcmp(url, "http://fake.n8n/webhook/echo") == 0)
        usleep(1000);
    pthread_mutex_lock(&fake.lock);
    if (strncmp(url, web, strlen(web)) == 0) {
        st = fake_webhook(url + strlen(web), req, resp);
    } else if (strncmp(url, api, strlen(api)) == 0) {
        const char *rest = url + strlen(api);
        if (strncmp(rest, "workflows?", 10) == 0) {
            st = fake_answer_json(resp, 200, json_pack("{s:O, s:n}", "data", fake.workflows,
                                                       "nextCursor"));
        } else if (strncmp(rest, "workflows/", 10) == 0) {
            json_t *found = NULL, *wf;
            size_t i;
            json_array_foreach(fake.workflows, i, wf) {
                if (strcmp(json_string_value(json_object_get(wf, "id")), rest + 10) == 0)
                    found = wf;
            }
            st = found != NULL ? fake_answer_json(resp, 200, json_incref(found))
                               : fake_answer_json(resp, 404, json_pack("{s:s}", "message", "no"));
        } else if (strncmp(rest, "executions/77", 13) == 0) {
            st = fake_execution(resp, "77");
        } else if (strncmp(rest, "executions/88", 13) == 0) {
            st = fake_execution(resp, "88");
        } else if (strncmp(rest, "executions?", 11) == 0) {
            json_t *list = json_array();
            if (fake.noid_body != NULL && strstr(rest, "status=running") != NULL)
                json_array_append_new(
                    list, json_pack("{s:s, s:s, s:b, s:s, s:s, s:{s:{s:{s:[{s:{s:[[{s:{s:O}}]]}}]}}}}",
                                    "id", "88", "workflowId", "wfN", "finished", 0, "status",
                                    "running", "mode", "webhook", "data", "resultData",
                                    "runData", "Webhook", "data", "main", "json", "body",
                                    fake.noid_body));
            st = fake_answer_json(resp, 200, json_pack("{s:o, s:n}", "data", list, "nextCursor"));
        } else {
            st = fake_answer_json(resp, 404, json_pack("{s:s}", "message", "Not Found"));
        }
    } else {
        st = fake_answer_json(resp, 404, json_pack("{s:s}", "message", "Not Found"));
    }
    pthread_mutex_unlock(&fake.lock);
    return st;
}

static json_t *fake_node(const char *type, const char *cred)
{
    json_t *n = json_pack("{s:s, s:s, s:{}}", "name", type, "type", type, "parameters");
    if (cred != NULL)
        json_object_set_new(n, "credentials", json_pack("{s:{s:s}}", cred, "id", "c1"));
    return n;
}

static void fake_workflow(const char *id, const char *path, const char *mode, json_t *extra)
{
    json_t *hook = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "name", "Webhook", "type",
                             "n8n-nodes-base.webhook", "webhookId", path, "parameters", "path",
                             path, "httpMethod", "POST", "responseMode", mode);
    json_t *nodes = json_pack("[o, o]", hook, fake_node("n8n-nodes-base.set", NULL));
    if (extra != NULL)
        json_array_append_new(nodes, extra);
    json_t *wf = json_pack("{s:s, s:s, s:b, s:b, s:s, s:s, s:o, s:{}, s:[]}", "id", id, "name",
                           path, "active", 1, "isArchived", 0, "versionId", "v1", "updatedAt",
                           "2026-01-01T00:00:00.000Z", "nodes", nodes, "connections", "tags");
    json_array_append_new(fake.workflows, wf);
}

static ee_transport *fake_transport;
static ee_n8n *fake_client;

static void fake_setup(void)
{
    pthread_mutex_init(&fake.lock, NULL);
    fake.workflows = json_array();
    fake.bodies = json_array();
    fake.hits = json_object();
    fake.flaky_left = 2;
    fake.exec_done = 0;
    fake.exec_polls = 0;
    fake.noid_body = NULL;
    static const char *const sync_paths[] = {"echo", "leak", "fail", "malformed", "flaky",
                                             "reset", "slow"};
    char id[16];
    for (size_t i = 0; i < sizeof sync_paths / sizeof sync_paths[0]; i++) {
        snprintf(id, sizeof id, "wf%zu", i);
        fake_workflow(id, sync_paths[i], "lastNode", NULL);
    }
    fake_workflow("wfA", "async", "responseNode", NULL);
    fake_workflow("wfC", "callback", "responseNode", NULL);
    fake_workflow("wfN", "noid", "responseNode", NULL);
    fake_workflow("wfG", "gmail", "lastNode", fake_node("n8n-nodes-base.gmail", "gmailOAuth2"));
    fake_workflow("wfL", "llm", "lastNode",
                  fake_node("@n8n/n8n-nodes-langchain.lmChatOpenRouter", "openRouterApi"));
    ee_transport_backend b = {EE_TRANSPORT_BACKEND_VERSION, EE_TRANSPORT_THREAD_SAFE, fake_http,
                              NULL, NULL};
    cr_assert_eq(ee_transport_new_custom(&fake_transport, &b, NULL, NULL), EE_OK);
    cr_assert_eq(ee_n8n_new(&fake_client, fake_transport, "http://fake.n8n", "fake-key"), EE_OK);
}

static void fake_teardown(void)
{
    ee_n8n_free(fake_client);
    ee_transport_free(fake_transport);
    json_decref(fake.workflows);
    json_decref(fake.bodies);
    json_decref(fake.hits);
    json_decref(fake.noid_body);
}

/* An engine over the fake n8n; `cfg` is freed. */
static __attribute__((unused)) ee_engine *fake_engine_config(ee_config *cfg)
{
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .n8n = fake_client,
                             .transport = fake_transport};
    ee_engine *e = NULL;
    ee_status st = ee_engine_open_parts(&e, cfg, &parts);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "ee_engine_open_parts: %s", ee_error_last_message());
    return e;
}

static void fake_sync(ee_engine *e)
{
    char *out = NULL;
    ee_status st = ee_catalog_sync(e, &out);
    cr_assert_eq(st, EE_OK, "sync: %s", out);
    ee_free(out);
}

/* The catalog id of the entry synced from n8n workflow `n8n_id`. */
static void entry_id(ee_engine *e, const char *n8n_id, char id[25])
{
    char q[128], *out = NULL;
    snprintf(q, sizeof q, "{\"n8nWorkflowId\": \"%s\"}", n8n_id);
    cr_assert_eq(ee_catalog_list(e, NULL, q, &out), EE_OK, "%s", out);
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    const char *v = json_string_value(
        json_object_get(json_array_get(json_object_get(doc, "data"), 0), "id"));
    cr_assert_not_null(v, "no entry for %s", n8n_id);
    snprintf(id, 25, "%s", v);
    json_decref(doc);
}

static json_t *parse_doc(const char *text)
{
    cr_assert_not_null(text);
    json_t *doc = json_loads(text, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", text);
    return doc;
}

static const char *sget(const json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* The predictions the principal's organisation has used (ee_quota_usage). */
static __attribute__((unused)) int64_t fake_predictions_used(ee_engine *e, const ee_principal *p)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_usage(e, p, &out), EE_OK, "%s", out);
    json_t *doc = parse_doc(out);
    ee_free(out);
    json_t *pred = json_object_get(doc, "predictions");
    cr_assert(json_is_object(pred), "usage without predictions");
    int64_t used = (int64_t)json_integer_value(json_object_get(pred, "usage"));
    json_decref(doc);
    return used;
}

#endif
