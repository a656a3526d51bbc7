/*
 * The n8n client against a real n8n (2.8.4, started by the ctest fixture
 * `n8n`: tests/support/n8n/harness.sh), provisioned with the workflows of
 * tests/fixtures/n8n/. A missing n8n fails these tests; it never skips them.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "test_servers.h"
#include "execengine/errors.h"
#include "execengine/n8n.h"

static char url[256], key[2048];
static ee_n8n *c;

static void setup(void)
{
    ee_test_n8n_value("EE_TEST_N8N_URL", url, sizeof url);
    ee_test_n8n_value("EE_TEST_N8N_API_KEY", key, sizeof key);
    cr_assert_eq(ee_n8n_new(&c, NULL, url, key), EE_OK, "%s", ee_error_last_message());
}

static void teardown(void)
{
    ee_n8n_free(c);
}

TestSuite(n8n_real, .init = setup, .fini = teardown, .timeout = 120);

static json_t *parse(const char *text)
{
    json_t *doc = json_loads(text, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", text);
    return doc;
}

/* The fixture workflow named `name` from a listing, or NULL. */
static json_t *find(json_t *data, const char *name)
{
    size_t i;
    json_t *wf;
    json_array_foreach(data, i, wf) {
        if (strcmp(json_string_value(json_object_get(wf, "name")), name) == 0)
            return wf;
    }
    return NULL;
}

Test(n8n_real, lists_the_fixtures_across_pages)
{
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(c, "{\"limit\": 1}", &out), EE_OK, "%s", out);
    json_t *doc = parse(out);
    json_t *data = json_object_get(doc, "data");
    cr_assert_geq(json_array_size(data), 4, "one workflow per page, all pages followed");
    cr_assert(json_is_null(json_object_get(doc, "nextCursor")));
    json_t *echo = find(data, "ee-test echo");
    cr_assert_not_null(echo);
    cr_assert(json_is_true(json_object_get(echo, "active")));
    json_t *trig = json_object_get(echo, "trigger");
    cr_assert(json_is_true(json_object_get(trig, "runnable")));
    cr_assert_str_eq(json_string_value(json_object_get(trig, "path")), "ee-echo");
    cr_assert_str_eq(json_string_value(json_object_get(trig, "method")), "POST");
    cr_assert_str_eq(json_string_value(json_object_get(trig, "responseMode")), "responseNode");
    json_t *manual = find(data, "ee-test weekly report (manual, not runnable)");
    cr_assert_not_null(manual);
    cr_assert(json_is_false(json_object_get(json_object_get(manual, "trigger"), "runnable")));
    json_decref(doc);
    ee_free(out);

    cr_assert_eq(ee_n8n_list_workflows(c, "{\"limit\": 2, \"maxPages\": 1}", &out), EE_OK);
    doc = parse(out);
    cr_assert_eq(json_array_size(json_object_get(doc, "data")), 2);
    cr_assert(json_is_string(json_object_get(doc, "nextCursor")), "more pages remain");
    json_decref(doc);
    ee_free(out);
}

Test(n8n_real, filters_by_tag_and_active)
{
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(c, "{\"tags\": [\"ai\"]}", &out), EE_OK, "%s", out);
    json_t *doc = parse(out);
    json_t *data = json_object_get(doc, "data");
    cr_assert_eq(json_array_size(data), 1);
    json_t *wf = json_array_get(data, 0);
    cr_assert_str_eq(json_string_value(json_object_get(wf, "name")),
                     "ee-test research (HTTP + OpenAI)");
    json_decref(doc);
    ee_free(out);

    cr_assert_eq(ee_n8n_list_workflows(c, "{\"active\": false, \"tags\": [\"ee-test\"]}", &out),
                 EE_OK);
    doc = parse(out);
    data = json_object_get(doc, "data");
    cr_assert_eq(json_array_size(data), 1);
    cr_assert_not_null(find(data, "ee-test weekly report (manual, not runnable)"));
    json_decref(doc);
    ee_free(out);
}

Test(n8n_real, gets_a_workflow_with_nodes_and_credentials)
{
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(c, "{\"tags\": [\"research\"]}", &out), EE_OK);
    json_t *list = parse(out);
    ee_free(out);
    const char *id = json_string_value(
        json_object_get(json_array_get(json_object_get(list, "data"), 0), "id"));
    cr_assert_not_null(id);
    cr_assert_eq(ee_n8n_get_workflow(c, id, &out), EE_OK, "%s", out);
    json_t *wf = parse(out);
    ee_free(out);
    json_t *nodes = json_object_get(wf, "nodes");
    cr_assert_eq(json_array_size(nodes), 3);
    json_t *http = json_array_get(nodes, 1);
    cr_assert_str_eq(json_string_value(json_object_get(http, "type")),
                     "n8n-nodes-base.httpRequest");
    cr_assert_not_null(json_object_get(json_object_get(http, "credentials"), "httpHeaderAuth"));
    json_t *ai = json_array_get(nodes, 2);
    cr_assert_not_null(json_object_get(json_object_get(ai, "credentials"), "openAiApi"));
    json_t *tags = json_object_get(wf, "tags");
    cr_assert_eq(json_array_size(tags), 3);
    json_decref(wf);
    json_decref(list);
}

static json_t *poll_execution(const char *id)
{
    /* with responseMode responseNode n8n answers before it saves the run */
    for (int i = 0; i < 100; i++) {
        char *out;
        ee_status st = ee_n8n_get_execution(c, id, 1, &out);
        if (st == EE_OK) {
            json_t *e = parse(out);
            ee_free(out);
            const char *s = json_string_value(json_object_get(e, "status"));
            if (strcmp(s, "completed") == 0 || strcmp(s, "failed") == 0)
                return e;
            json_decref(e);
        } else {
            cr_assert_eq(st, EE_ENOTFOUND, "%s", out);
            ee_free(out);
        }
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("execution %s did not finish within 10 s", id);
    return NULL;
}

Test(n8n_real, webhook_run_echoes_and_its_execution_completes)
{
    char *out;
    cr_assert_eq(ee_n8n_trigger_webhook(c, "POST", "ee-echo",
                                        "{\"a\": 2, \"b\": 40, \"msg\": \"héllo\"}", &out),
                 EE_OK, "%s", out);
    json_t *res = parse(out);
    ee_free(out);
    cr_assert_eq(json_integer_value(json_object_get(res, "httpStatus")), 200);
    json_t *body = json_object_get(res, "body");
    cr_assert_eq(json_integer_value(json_object_get(body, "total")), 42);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(body, "echo"), "msg")),
                     "héllo");
    const char *exec_id = json_string_value(json_object_get(res, "executionId"));
    cr_assert_not_null(exec_id, "the echo workflow returns its execution id");

    json_t *e = poll_execution(exec_id);
    cr_assert_str_eq(json_string_value(json_object_get(e, "status")), "completed");
    cr_assert_str_eq(json_string_value(json_object_get(e, "n8nStatus")), "success");
    cr_assert_str_eq(json_string_value(json_object_get(e, "lastNodeExecuted")), "Respond");
    json_t *first = json_array_get(json_object_get(e, "output"), 0);
    cr_assert_eq(json_integer_value(json_object_get(first, "total")), 42);
    cr_assert_not_null(json_object_get(e, "data"), "includeData kept n8n's data");
    const char *wid = json_string_value(json_object_get(e, "workflowId"));
    cr_assert_not_null(wid);

    char q[256];
    snprintf(q, sizeof q, "{\"workflowId\": \"%s\", \"limit\": 1}", wid);
    cr_assert_eq(ee_n8n_list_executions(c, q, &out), EE_OK, "%s", out);
    json_t *list = parse(out);
    ee_free(out);
    json_t *data = json_object_get(list, "data");
    cr_assert_geq(json_array_size(data), 1);
    bool seen = false;
    size_t i;
    json_t *item;
    json_array_foreach(data, i, item) {
        seen = seen || strcmp(json_string_value(json_object_get(item, "id")), exec_id) == 0;
        cr_assert_str_eq(json_string_value(json_object_get(item, "workflowId")), wid);
    }
    cr_assert(seen, "the run is listed under its workflow");
    json_decref(list);
    json_decref(e);
    json_decref(res);
}

Test(n8n_real, get_webhook_answers_with_the_last_node)
{
    char *out;
    cr_assert_eq(ee_n8n_trigger_webhook(c, "GET", "ee-status", "{\"who\": \"ee\"}", &out), EE_OK,
                 "%s", out);
    json_t *res = parse(out);
    ee_free(out);
    json_t *body = json_object_get(res, "body");
    cr_assert(json_is_true(json_object_get(body, "ok")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(body, "query"), "who")),
                     "ee");
    json_decref(res);
}

Test(n8n_real, unregistered_webhook_is_not_found)
{
    char *out;
    cr_assert_eq(ee_n8n_trigger_webhook(c, "POST", "ee-no-such-hook", "{}", &out), EE_ENOTFOUND);
    cr_assert_eq(ee_error_last_http_status(), 404);
    ee_free(out);
    /* right path, wrong method */
    cr_assert_eq(ee_n8n_trigger_webhook(c, "GET", "ee-echo", NULL, &out), EE_ENOTFOUND);
    ee_free(out);
}

Test(n8n_real, wrong_api_key_is_an_auth_error)
{
    ee_n8n *bad;
    cr_assert_eq(ee_n8n_new(&bad, NULL, url, "not-the-key"), EE_OK);
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(bad, NULL, &out), EE_EAUTH);
    cr_assert_eq(ee_error_last_http_status(), 401);
    json_t *doc = parse(out);
    json_t *detail = json_object_get(json_object_get(doc, "error"), "detail");
    cr_assert_str_eq(json_string_value(json_object_get(detail, "n8nMessage")), "unauthorized");
    json_decref(doc);
    ee_free(out);
    ee_n8n_free(bad);
}

Test(n8n_real, unknown_ids_are_not_found)
{
    char *out;
    cr_assert_eq(ee_n8n_get_workflow(c, "NoSuchWorkflow01", &out), EE_ENOTFOUND);
    cr_assert_eq(ee_error_last_http_status(), 404);
    ee_free(out);
    cr_assert_eq(ee_n8n_get_execution(c, "99999999", 1, &out), EE_ENOTFOUND);
    ee_free(out);
}

Test(n8n_real, api_key_never_appears_in_errors)
{
    char *out;
    cr_assert_eq(ee_n8n_get_workflow(c, "NoSuchWorkflow02", &out), EE_ENOTFOUND);
    cr_assert_null(strstr(out, key));
    cr_assert_null(strstr(ee_error_last_message(), key));
    ee_free(out);
}
