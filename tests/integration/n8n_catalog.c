/*
 * Catalog sync against a real n8n (2.8.4, the ctest fixture `n8n`:
 * tests/support/n8n/harness.sh) provisioned with tests/fixtures/n8n/.
 * The test also creates a throw-away workflow of its own through n8n's
 * API, then deletes it, so the fixtures other tests rely on stay intact.
 * A missing n8n fails the test; it never skips.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "n8n_engine.h"
#include "execengine/catalog.h"
#include "execengine/config.h"
#include "execengine/engine.h"
#include "execengine/errors.h"
#include "execengine/transport.h"

static char url[256], key[2048];
static ee_engine *engine;

static void setup(void)
{
    engine = ee_test_n8n_engine(NULL, url, sizeof url, key, sizeof key);
}

static void teardown(void)
{
    ee_engine_close(engine);
}

TestSuite(n8n_catalog, .init = setup, .fini = teardown, .timeout = 180);

/* One call to n8n's public API; returns the HTTP status, *body (may be NULL). */
static int n8n_api(const char *method, const char *path, const char *body, json_t **out)
{
    char full[512];
    snprintf(full, sizeof full, "%s/api/v1%s", url, path);
    ee_transport *t;
    cr_assert_eq(ee_transport_curl_new(&t, NULL), EE_OK);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, method, full), EE_OK);
    cr_assert_eq(ee_http_request_add_header(req, "X-N8N-API-KEY", key), EE_OK);
    cr_assert_eq(ee_http_request_add_header(req, "Accept", "application/json"), EE_OK);
    if (body != NULL) {
        cr_assert_eq(ee_http_request_add_header(req, "Content-Type", "application/json"), EE_OK);
        cr_assert_eq(ee_http_request_set_body(req, body, strlen(body)), EE_OK);
    }
    ee_http_response *resp;
    cr_assert_eq(ee_transport_http(t, req, &resp), EE_OK, "%s %s: %s", method, path,
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

static json_t *parse(const char *text)
{
    cr_assert_not_null(text);
    json_t *doc = json_loads(text, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", text);
    return doc;
}

static json_t *sync_ok(void)
{
    char *out = NULL;
    ee_status st = ee_catalog_sync(engine, &out);
    cr_assert_eq(st, EE_OK, "sync: %s", out);
    json_t *r = parse(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(r, "errors")), 0, "no workflow failed to read");
    return r;
}

/* Every entry (admin view), by name. */
static json_t *entries_by_name(void)
{
    char *out = NULL;
    cr_assert_eq(ee_catalog_list(engine, NULL, "{\"includeInactive\": true, \"limit\": 100}", &out),
                 EE_OK, "%s", out);
    json_t *doc = parse(out);
    ee_free(out);
    json_t *by = json_object();
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(doc, "data"), i, it) {
        char *full = NULL;
        cr_assert_eq(ee_catalog_get(engine, NULL, json_string_value(json_object_get(it, "id")),
                                    EE_CATALOG_INCLUDE_INACTIVE, &full),
                     EE_OK);
        json_object_set_new(by, json_string_value(json_object_get(it, "name")), parse(full));
        ee_free(full);
    }
    json_decref(doc);
    return by;
}

static const char *category_name(const json_t *entry)
{
    static char name[128];
    char *out = NULL;
    cr_assert_eq(ee_catalog_category_get(engine, json_string_value(json_object_get(entry,
                                                                                   "category")),
                                         EE_CATALOG_INCLUDE_INACTIVE, &out),
                 EE_OK);
    json_t *doc = parse(out);
    snprintf(name, sizeof name, "%s", json_string_value(json_object_get(doc, "name")));
    json_decref(doc);
    ee_free(out);
    return name;
}

static bool listed(const json_t *arr, const char *field, const char *value)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (strcmp(json_string_value(json_object_get(v, field)), value) == 0)
            return true;
    }
    return false;
}

Test(n8n_catalog, sync_derives_entries_is_idempotent_and_deactivates_deleted)
{
    /* a workflow of this test's own, to delete later */
    char name[128], body[2048];
    snprintf(name, sizeof name, "ee-catalog doomed %d", (int)getpid());
    snprintf(body, sizeof body,
             "{\"name\": \"%s\", \"settings\": {\"executionOrder\": \"v1\"}, \"connections\": {},"
             " \"nodes\": [{\"id\": \"b0c5a1e2-0009-4000-8000-0000000000a1\", \"name\": "
             "\"Webhook\", \"type\": \"n8n-nodes-base.webhook\", \"typeVersion\": 2, "
             "\"position\": [0, 0], \"webhookId\": \"b0c5a1e2-0009-4000-8000-%012d\", "
             "\"parameters\": {\"httpMethod\": \"POST\", \"path\": \"ee-doomed-%d\", "
             "\"responseMode\": \"onReceived\", \"options\": {}}}]}",
             name, (int)getpid(), (int)getpid());
    json_t *created = NULL;
    int code = n8n_api("POST", "/workflows", body, &created);
    cr_assert(code == 200 || code == 201, "creating a workflow in n8n: %d", code);
    char doomed_id[64];
    snprintf(doomed_id, sizeof doomed_id, "%s",
             json_string_value(json_object_get(created, "id")));
    json_decref(created);

    json_t *r = sync_ok();
    cr_assert_geq(json_array_size(json_object_get(r, "added")), 5);
    cr_assert_geq(json_array_size(json_object_get(r, "categoriesCreated")), 5);
    cr_assert(listed(json_object_get(r, "notRunnable"), "name",
                     "ee-test weekly report (manual, not runnable)"));
    json_decref(r);

    json_t *by = entries_by_name();
    json_t *echo = json_object_get(by, "ee-test echo");
    cr_assert_not_null(echo);
    cr_assert(json_is_true(json_object_get(echo, "runnable")));
    cr_assert(json_is_true(json_object_get(echo, "isActive")));
    json_t *trig = json_object_get(echo, "trigger");
    cr_assert_str_eq(json_string_value(json_object_get(trig, "path")), "ee-echo");
    cr_assert_str_eq(json_string_value(json_object_get(trig, "method")), "POST");
    cr_assert_str_eq(json_string_value(json_object_get(trig, "responseMode")), "responseNode");
    cr_assert_eq(json_array_size(json_object_get(echo, "credentialTypes")), 0);
    cr_assert(json_is_false(json_object_get(echo, "requiresApiKey")));
    cr_assert_str_eq(category_name(echo), "General");

    json_t *research = json_object_get(by, "ee-test research (HTTP + OpenAI)");
    cr_assert_not_null(research);
    json_t *creds = json_object_get(research, "credentialTypes");
    cr_assert_eq(json_array_size(creds), 2);
    cr_assert_str_eq(json_string_value(json_array_get(creds, 0)), "httpHeaderAuth");
    cr_assert_str_eq(json_string_value(json_array_get(creds, 1)), "openAiApi");
    cr_assert(json_is_true(json_object_get(research, "requiresApiKey")));
    cr_assert_str_eq(json_string_value(json_object_get(research, "apiKeyProvider")), "openrouter");
    cr_assert_str_eq(category_name(research), "AI & Research");

    json_t *status = json_object_get(by, "ee-test status (GET, last node)");
    cr_assert_not_null(status);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(status, "trigger"),
                                                       "method")),
                     "GET");

    json_t *manual = json_object_get(by, "ee-test weekly report (manual, not runnable)");
    cr_assert_not_null(manual);
    cr_assert(json_is_false(json_object_get(manual, "runnable")));
    cr_assert(json_is_false(json_object_get(manual, "isActive")));
    cr_assert_gt(strlen(json_string_value(json_object_get(json_object_get(manual, "trigger"),
                                                          "reason"))),
                 5);
    cr_assert_str_eq(category_name(manual), "Reporting");
    cr_assert(json_is_object(json_object_get(by, name)), "the throw-away workflow is synced");
    json_decref(by);

    /* a second sync with no change in n8n reports no change */
    r = sync_ok();
    cr_assert(json_is_false(json_object_get(r, "changed")), "second sync changed something");
    cr_assert_eq(json_array_size(json_object_get(r, "added")), 0);
    cr_assert_eq(json_array_size(json_object_get(r, "updated")), 0);
    cr_assert_eq(json_array_size(json_object_get(r, "deactivated")), 0);
    cr_assert_geq(json_integer_value(json_object_get(r, "unchanged")), 5);
    json_decref(r);

    /* deleted in n8n: deactivated on the next sync */
    char path[128];
    snprintf(path, sizeof path, "/workflows/%s", doomed_id);
    code = n8n_api("DELETE", path, NULL, NULL);
    cr_assert_eq(code, 200, "deleting the workflow in n8n: %d", code);
    r = sync_ok();
    cr_assert_eq(json_array_size(json_object_get(r, "deactivated")), 1);
    cr_assert(listed(json_object_get(r, "deactivated"), "n8nWorkflowId", doomed_id));
    json_decref(r);
    by = entries_by_name();
    json_t *gone = json_object_get(by, name);
    cr_assert(json_is_false(json_object_get(gone, "isActive")));
    cr_assert(json_is_true(json_object_get(json_object_get(gone, "n8n"), "missing")));
    json_decref(by);
    /* customers no longer see it */
    char q[256], *out = NULL;
    snprintf(q, sizeof q, "{\"n8nWorkflowId\": \"%s\"}", doomed_id);
    cr_assert_eq(ee_catalog_list(engine, NULL, q, &out), EE_OK);
    json_t *doc = parse(out);
    ee_free(out);
    cr_assert_eq(json_array_size(json_object_get(doc, "data")), 0);
    json_decref(doc);
}
