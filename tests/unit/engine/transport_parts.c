/*
 * A host's own transport (ee_transport_new_custom(), an in-process fake of
 * n8n and OpenRouter) plugged into a normally configured engine with
 * ee_engine_open_parts(), nothing else given: the engine's own n8n client
 * (N8N_API_KEY set) syncs the catalog through it, and customer key
 * validation (OPENROUTER_API_URL's /key) goes through it too. The fake's
 * host names do not resolve: a request that bypassed it would fail.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine_fixture.h"
#include "fake_transport.h"
#include "execengine/catalog.h"
#include "execengine/credentials.h"
#include "execengine/transport.h"

#define N8N_BASE "http://n8n.fake.invalid"
#define OPENROUTER_BASE "http://openrouter.fake.invalid/api/v1"
#define N8N_KEY "n8n-fake-key-0123456789"
#define CUSTOMER_KEY "sk-or-v1-fake-customer-key-0123456789abcdef"

static atomic_int n8n_calls, key_calls, other_calls, frees;

static json_t *workflow(void)
{
    json_t *hook = json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:s}}", "name", "Webhook", "type",
                             "n8n-nodes-base.webhook", "webhookId", "echo", "parameters", "path",
                             "echo", "httpMethod", "POST", "responseMode", "lastNode");
    return json_pack("{s:s, s:s, s:b, s:b, s:s, s:s, s:[o], s:{}, s:[]}", "id", "wf1", "name",
                     "Echo", "active", 1, "isArchived", 0, "versionId", "v1", "updatedAt",
                     "2026-01-01T00:00:00.000Z", "nodes", hook, "connections", "tags");
}

static ee_status fake_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    (void)ctx;
    const char *url = ee_http_request_url(req);
    if (strncmp(url, N8N_BASE "/api/v1/workflows", strlen(N8N_BASE "/api/v1/workflows")) == 0) {
        atomic_fetch_add(&n8n_calls, 1);
        const char *key = fake_request_header(req, "X-N8N-API-KEY");
        if (key == NULL || strcmp(key, N8N_KEY) != 0)
            return fake_answer_json(resp, 401, json_pack("{s:s}", "message", "unauthorized"));
        const char *rest = url + strlen(N8N_BASE "/api/v1/workflows");
        if (rest[0] == '?')
            return fake_answer_json(resp, 200, json_pack("{s:[o], s:n}", "data", workflow(), "nextCursor"));
        if (strcmp(rest, "/wf1") == 0)
            return fake_answer_json(resp, 200, workflow());
        return fake_answer_json(resp, 404, json_pack("{s:s}", "message", "Not Found"));
    }
    if (strcmp(url, OPENROUTER_BASE "/key") == 0) {
        atomic_fetch_add(&key_calls, 1);
        const char *auth = fake_request_header(req, "Authorization");
        if (auth == NULL || strcmp(auth, "Bearer " CUSTOMER_KEY) != 0)
            return fake_answer_json(resp, 401, json_pack("{s:{s:s}}", "error", "message", "bad key"));
        return fake_answer_json(resp, 200, json_pack("{s:{s:f, s:i, s:f, s:b}}", "data", "usage", 1.5,
                                           "limit", 100, "limit_remaining", 98.5,
                                           "is_free_tier", 0));
    }
    atomic_fetch_add(&other_calls, 1);
    return fake_answer_json(resp, 404, json_pack("{s:s}", "message", "Not Found"));
}

static void fake_free(void *ctx)
{
    (void)ctx;
    atomic_fetch_add(&frees, 1);
}

Test(engine_transport, sync_and_key_validation_go_through_the_hosts_transport)
{
    ee_transport_backend b = {.version = EE_TRANSPORT_BACKEND_VERSION,
                              .flags = EE_TRANSPORT_THREAD_SAFE,
                              .http = fake_http,
                              .free = fake_free};
    ee_transport *mine = NULL;
    cr_assert_eq(ee_transport_new_custom(&mine, &b, NULL, NULL), EE_OK);

    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "N8N_BASE_URL", N8N_BASE);
    ee_test_config_set(cfg, "N8N_API_KEY", N8N_KEY);
    ee_test_config_set(cfg, "OPENROUTER_API_URL", OPENROUTER_BASE);
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .transport = mine};
    ee_engine *e = NULL;
    ee_status st = ee_engine_open_parts(&e, cfg, &parts);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());

    /* catalog sync: the engine's own client, over the host's transport */
    char *out = NULL;
    st = ee_catalog_sync(e, &out);
    cr_assert_eq(st, EE_OK, "sync: %s", out);
    json_t *report = json_loads(out, 0, NULL);
    ee_free(out);
    cr_expect_eq(json_array_size(json_object_get(report, "added")), 1, "the fake's workflow");
    json_decref(report);
    cr_expect_geq(atomic_load(&n8n_calls), 2, "listed and fetched through the fake");

    /* key validation: OpenRouter's /key, over the host's transport */
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-1", "user-1", NULL), EE_OK);
    cr_assert_eq(ee_cred_key_add(e, p,
                                 "{\"keyName\": \"k\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"" CUSTOMER_KEY "\"}",
                                 &out),
                 EE_OK, "%s", out);
    json_t *rec = json_loads(out, 0, NULL);
    ee_free(out);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(rec, "id")));
    json_decref(rec);
    cr_assert_eq(ee_cred_key_validate(e, p, id, &out), EE_OK, "%s", out);
    json_t *verdict = json_loads(out, 0, NULL);
    ee_free(out);
    cr_expect_str_eq(json_string_value(json_object_get(verdict, "status")), "valid");
    cr_expect_eq(json_number_value(json_object_get(verdict, "usage")), 1.5);
    json_decref(verdict);
    cr_expect_eq(atomic_load(&key_calls), 1);
    cr_expect_eq(atomic_load(&other_calls), 0);

    ee_principal_free(p);
    ee_engine_close(e);
    cr_expect_eq(atomic_load(&frees), 0, "the engine does not free the host's transport");
    ee_transport_free(mine);
    cr_expect_eq(atomic_load(&frees), 1);
}
