/*
 * The n8n client against the fake n8n of tests/support/fake_http.py:
 * pagination, filters, normalised workflows and executions, webhook
 * calls, and every error mapping (401, 404, 500, timeout, refused,
 * malformed and badly shaped JSON, cursors that never end).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "execengine/errors.h"
#include "execengine/n8n.h"
#include "fake_http.h"

static ee_fake_http fake;
static ee_transport *tr;

static void setup(void)
{
    ee_fake_http_start(&fake);
    ee_transport_options *o;
    cr_assert_eq(ee_transport_options_new(&o), EE_OK);
    cr_assert_eq(ee_transport_options_set_int64(o, "retry_initial_ms", 10), EE_OK);
    cr_assert_eq(ee_transport_options_set_string(o, "proxy", ""), EE_OK);
    cr_assert_eq(ee_transport_curl_new(&tr, o), EE_OK);
    ee_transport_options_free(o);
}

static void teardown(void)
{
    ee_transport_free(tr);
    ee_fake_http_stop(&fake);
}

TestSuite(n8n_client, .init = setup, .fini = teardown, .timeout = 60);

static ee_n8n *client(const char *scenario, const char *key)
{
    char base[128];
    snprintf(base, sizeof base, "%s/n8n/%s/", fake.base, scenario);
    ee_n8n *c;
    cr_assert_eq(ee_n8n_new(&c, tr, base, key), EE_OK, "%s", ee_error_last_message());
    return c;
}

static json_t *parse(const char *text)
{
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    cr_assert_not_null(doc, "not JSON (%s): %s", err.text, text);
    return doc;
}

/* The error document every failing call leaves in *out. */
static void assert_error_doc(char *out, ee_status st, int http)
{
    cr_assert_not_null(out, "no error document");
    json_t *doc = parse(out);
    json_t *e = json_object_get(doc, "error");
    cr_assert_eq(json_integer_value(json_object_get(e, "code")), st, "%s", out);
    cr_assert_eq(json_integer_value(json_object_get(e, "httpStatus")), http, "%s", out);
    json_decref(doc);
    ee_free(out);
}

Test(n8n_client, lists_every_page_following_next_cursor)
{
    ee_n8n *c = client("ok", "test-key");
    cr_assert_eq(ee_n8n_configure(c, "{\"pageLimit\": 2}"), EE_OK);
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(c, NULL, &out), EE_OK, "%s", out);
    json_t *doc = parse(out);
    json_t *data = json_object_get(doc, "data");
    cr_assert_eq(json_array_size(data), 5);
    cr_assert(json_is_null(json_object_get(doc, "nextCursor")));
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(data, 4), "id")), "wf5");
    cr_assert_eq(ee_fake_http_count(&fake, "/n8n/ok/api/v1/workflows"), 3, "3 pages of 2");
    json_decref(doc);
    ee_free(out);
    ee_n8n_free(c);
}

Test(n8n_client, max_pages_stops_and_the_cursor_resumes)
{
    ee_n8n *c = client("ok", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(c, "{\"limit\": 2, \"maxPages\": 1}", &out), EE_OK);
    json_t *doc = parse(out);
    cr_assert_eq(json_array_size(json_object_get(doc, "data")), 2);
    const char *cursor = json_string_value(json_object_get(doc, "nextCursor"));
    cr_assert_not_null(cursor);
    char q[512];
    snprintf(q, sizeof q, "{\"limit\": 2, \"maxPages\": 1, \"cursor\": \"%s\"}", cursor);
    ee_free(out);
    cr_assert_eq(ee_n8n_list_workflows(c, q, &out), EE_OK);
    json_t *doc2 = parse(out);
    json_t *first = json_array_get(json_object_get(doc2, "data"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(first, "id")), "wf3");
    json_decref(doc);
    json_decref(doc2);
    ee_free(out);
    ee_n8n_free(c);
}

Test(n8n_client, filters_by_tags_and_active)
{
    ee_n8n *c = client("ok", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(c, "{\"tags\": [\"ee\", \"ai\"]}", &out), EE_OK);
    json_t *doc = parse(out);
    json_t *data = json_object_get(doc, "data");
    cr_assert_eq(json_array_size(data), 1);
    json_t *wf = json_array_get(data, 0);
    cr_assert_str_eq(json_string_value(json_object_get(wf, "name")), "Research");
    json_t *tags = json_object_get(wf, "tags");
    cr_assert_str_eq(json_string_value(json_array_get(tags, 1)), "ai", "tags become names");
    json_decref(doc);
    ee_free(out);

    cr_assert_eq(ee_n8n_list_workflows(c, "{\"active\": false}", &out), EE_OK);
    doc = parse(out);
    cr_assert_eq(json_array_size(json_object_get(doc, "data")), 1);
    json_decref(doc);
    ee_free(out);

    cr_assert_eq(ee_n8n_list_workflows(c, "{\"colour\": 1}", &out), EE_EINVAL);
    assert_error_doc(out, EE_EINVAL, 0);
    cr_assert_eq(ee_n8n_list_workflows(c, "{\"tags\": \"ai\"}", &out), EE_EINVAL);
    ee_free(out);
    ee_n8n_free(c);
}

Test(n8n_client, gets_one_workflow_with_nodes_and_trigger)
{
    ee_n8n *c = client("ok", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_get_workflow(c, "wf2", &out), EE_OK, "%s", out);
    json_t *wf = parse(out);
    cr_assert_eq(json_array_size(json_object_get(wf, "nodes")), 2);
    json_t *trig = json_object_get(wf, "trigger");
    cr_assert(json_is_true(json_object_get(trig, "runnable")));
    cr_assert_str_eq(json_string_value(json_object_get(trig, "method")), "POST");
    cr_assert_str_eq(json_string_value(json_object_get(trig, "path")), "research");
    cr_assert_str_eq(json_string_value(json_object_get(trig, "responseMode")), "responseNode");
    json_decref(wf);
    ee_free(out);

    cr_assert_eq(ee_n8n_get_workflow(c, "wf5", &out), EE_OK);
    wf = parse(out);
    trig = json_object_get(wf, "trigger");
    cr_assert(json_is_false(json_object_get(trig, "runnable")));
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(trig, "triggers"), 0)),
                     "n8n-nodes-base.scheduleTrigger");
    json_decref(wf);
    ee_free(out);
    ee_n8n_free(c);
}

Test(n8n_client, unknown_workflow_is_not_found_with_n8n_message)
{
    ee_n8n *c = client("ok", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_get_workflow(c, "nope", &out), EE_ENOTFOUND);
    json_t *doc = parse(out);
    json_t *detail = json_object_get(json_object_get(doc, "error"), "detail");
    cr_assert_str_eq(json_string_value(json_object_get(detail, "n8nMessage")), "Not Found");
    json_decref(doc);
    assert_error_doc(out, EE_ENOTFOUND, 404);
    cr_assert_eq(ee_error_last_http_status(), 404);
    ee_n8n_free(c);
}

Test(n8n_client, wrong_key_is_an_auth_error)
{
    ee_n8n *c = client("ok", "wrong-key");
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(c, NULL, &out), EE_EAUTH);
    cr_assert_null(strstr(out, "wrong-key"), "the key leaked: %s", out);
    assert_error_doc(out, EE_EAUTH, 401);
    cr_assert_not_null(strstr(ee_error_last_message(), "unauthorized"));
    ee_n8n_free(c);
}

Test(n8n_client, server_errors_keep_status_and_message)
{
    ee_n8n *c = client("500", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_get_workflow(c, "wf1", &out), EE_EUPSTREAM);
    cr_assert_eq(ee_error_last_http_status(), 500);
    cr_assert_not_null(strstr(ee_error_last_message(), "database is locked"), "%s",
                       ee_error_last_message());
    cr_assert_not_null(strstr(out, "database is locked"));
    assert_error_doc(out, EE_EUPSTREAM, 500);
    ee_n8n_free(c);
}

Test(n8n_client, malformed_and_badly_shaped_answers_are_parse_errors)
{
    const char *scenarios[] = {"malformed", "badshape", "deep"};
    for (int i = 0; i < 3; i++) {
        ee_n8n *c = client(scenarios[i], "test-key");
        char *out;
        cr_assert_eq(ee_n8n_list_workflows(c, NULL, &out), EE_EPARSE, "%s", scenarios[i]);
        assert_error_doc(out, EE_EPARSE, 0);
        cr_assert_eq(ee_n8n_get_workflow(c, "wf1", &out), EE_EPARSE, "%s", scenarios[i]);
        ee_free(out);
        cr_assert_eq(ee_n8n_get_execution(c, "1", 1, &out), EE_EPARSE, "%s", scenarios[i]);
        ee_free(out);
        ee_n8n_free(c);
    }
}

Test(n8n_client, a_cursor_that_repeats_is_refused)
{
    ee_n8n *c = client("loop", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(c, NULL, &out), EE_EPARSE);
    cr_assert_not_null(strstr(ee_error_last_message(), "same cursor"));
    ee_free(out);
    cr_assert_eq(ee_fake_http_count(&fake, "/n8n/loop/api/v1/workflows"), 2);
    ee_n8n_free(c);
}

Test(n8n_client, max_items_bounds_a_listing)
{
    ee_n8n *c = client("ok", "test-key");
    cr_assert_eq(ee_n8n_configure(c, "{\"maxItems\": 3, \"pageLimit\": 2}"), EE_OK);
    char *out;
    cr_assert_eq(ee_n8n_list_workflows(c, NULL, &out), EE_ETOOBIG);
    ee_free(out);
    cr_assert_eq(ee_n8n_configure(c, "{\"pageLimit\": 0}"), EE_EINVAL);
    cr_assert_eq(ee_n8n_configure(c, "{\"nope\": 1}"), EE_EINVAL);
    cr_assert_eq(ee_n8n_configure(c, "not json"), EE_EPARSE);
    ee_n8n_free(c);
}

static json_t *execution(ee_n8n *c, const char *id, int with_data)
{
    char *out;
    cr_assert_eq(ee_n8n_get_execution(c, id, with_data, &out), EE_OK, "%s", out);
    json_t *doc = parse(out);
    ee_free(out);
    return doc;
}

Test(n8n_client, executions_are_normalised_and_statuses_mapped)
{
    ee_n8n *c = client("ok", "test-key");
    json_t *e = execution(c, "1", 1);
    cr_assert_str_eq(json_string_value(json_object_get(e, "status")), "completed");
    cr_assert_str_eq(json_string_value(json_object_get(e, "n8nStatus")), "success");
    json_t *output = json_object_get(e, "output");
    cr_assert_eq(json_array_size(output), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(output, 0), "answer")), 42);
    cr_assert_not_null(json_object_get(e, "data"));
    json_decref(e);

    e = execution(c, "1", 0);
    cr_assert_null(json_object_get(e, "data"));
    cr_assert_null(json_object_get(e, "output"));
    json_decref(e);

    e = execution(c, "2", 1);
    cr_assert_str_eq(json_string_value(json_object_get(e, "status")), "failed");
    json_t *err = json_object_get(e, "error");
    cr_assert_str_eq(json_string_value(json_object_get(err, "message")), "connect ECONNREFUSED");
    cr_assert_str_eq(json_string_value(json_object_get(err, "node")), "HTTP");
    json_decref(e);

    const char *ids[] = {"3", "4", "5", "6"};
    const char *want[] = {"running", "running", "failed", "pending"};
    for (int i = 0; i < 4; i++) {
        e = execution(c, ids[i], 0);
        cr_assert_str_eq(json_string_value(json_object_get(e, "status")), want[i], "exec %s",
                         ids[i]);
        cr_assert_str_eq(json_string_value(json_object_get(e, "id")), ids[i], "numeric ids too");
        json_decref(e);
    }
    char *out;
    cr_assert_eq(ee_n8n_get_execution(c, "999", 1, &out), EE_ENOTFOUND);
    ee_free(out);
    ee_n8n_free(c);
}

Test(n8n_client, lists_executions_of_a_workflow)
{
    ee_n8n *c = client("ok", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_list_executions(c, "{\"workflowId\": \"wf1\", \"limit\": 2}", &out), EE_OK,
                 "%s", out);
    json_t *doc = parse(out);
    cr_assert_eq(json_array_size(json_object_get(doc, "data")), 5);
    json_decref(doc);
    ee_free(out);
    cr_assert_eq(ee_n8n_list_executions(c, "{\"status\": \"done\"}", &out), EE_EINVAL);
    ee_free(out);
    ee_n8n_free(c);
}

Test(n8n_client, webhook_post_returns_the_answer)
{
    ee_n8n *c = client("ok", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_trigger_webhook(c, "POST", "echo", "{\"a\": 1, \"s\": \"x\"}", &out), EE_OK,
                 "%s", out);
    json_t *doc = parse(out);
    cr_assert_eq(json_integer_value(json_object_get(doc, "httpStatus")), 200);
    json_t *body = json_object_get(doc, "body");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(body, "echo"), "a")), 1);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "executionId")), "77");
    json_decref(doc);
    ee_free(out);
    cr_assert_eq(ee_fake_http_count(&fake, "/n8n/ok/webhook/echo"), 1);
    ee_n8n_free(c);
}

Test(n8n_client, webhook_get_sends_parameters_as_query)
{
    ee_n8n *c = client("ok", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_trigger_webhook(c, "GET", "status", "{\"q\": \"a b&c\", \"n\": 2}", &out),
                 EE_OK);
    json_t *doc = parse(out);
    json_t *q = json_object_get(json_object_get(doc, "body"), "query");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(q, "q"), 0)), "a b&c");
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(q, "n"), 0)), "2");
    json_decref(doc);
    ee_free(out);
    ee_n8n_free(c);
}

Test(n8n_client, webhook_failures_map_to_statuses)
{
    ee_n8n *c = client("ok", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_trigger_webhook(c, "POST", "fail", "{}", &out), EE_EUPSTREAM);
    cr_assert_not_null(strstr(ee_error_last_message(), "Error in workflow"));
    assert_error_doc(out, EE_EUPSTREAM, 500);
    cr_assert_eq(ee_fake_http_count(&fake, "/n8n/ok/webhook/fail"), 1, "a POST is sent once");

    cr_assert_eq(ee_n8n_trigger_webhook(c, "POST", "missing", "{}", &out), EE_ENOTFOUND);
    cr_assert_not_null(strstr(out, "Activate the workflow first."), "hint kept: %s", out);
    ee_free(out);

    cr_assert_eq(ee_n8n_trigger_webhook(c, "POST", "leak", "{}", &out), EE_EUPSTREAM);
    cr_assert_null(strstr(out, "test-key"), "the API key leaked: %s", out);
    cr_assert_null(strstr(ee_error_last_message(), "test-key"));
    ee_free(out);

    cr_assert_eq(ee_n8n_trigger_webhook(c, "POST", "user/:id", "{}", &out), EE_EINVAL);
    ee_free(out);
    cr_assert_eq(ee_n8n_trigger_webhook(c, "TRACE", "echo", "{}", &out), EE_EINVAL);
    ee_free(out);
    cr_assert_eq(ee_n8n_trigger_webhook(c, "POST", "echo", "{bad", &out), EE_EINVAL);
    ee_free(out);
    ee_n8n_free(c);
}

Test(n8n_client, webhook_text_answers_become_strings)
{
    ee_n8n *c = client("ok", "test-key");
    char *out;
    cr_assert_eq(ee_n8n_trigger_webhook(c, "POST", "text", NULL, &out), EE_OK);
    json_t *doc = parse(out);
    const char *body = json_string_value(json_object_get(doc, "body"));
    cr_assert_not_null(body);
    cr_assert_str_eq(body, "hello ? world", "invalid UTF-8 replaced");
    json_decref(doc);
    ee_free(out);
    ee_n8n_free(c);
}

Test(n8n_client, timeouts_and_refused_connections)
{
    char base[128];
    snprintf(base, sizeof base, "%s/slow/3000", fake.base);
    ee_n8n *c;
    cr_assert_eq(ee_n8n_new(&c, tr, base, "test-key"), EE_OK);
    cr_assert_eq(ee_n8n_configure(c, "{\"timeoutMs\": 200}"), EE_OK);
    char *out;
    cr_assert_eq(ee_n8n_get_workflow(c, "wf1", &out), EE_ETIMEOUT);
    assert_error_doc(out, EE_ETIMEOUT, 0);
    ee_n8n_free(c);

    snprintf(base, sizeof base, "http://127.0.0.1:%d", ee_fake_http_closed_port());
    cr_assert_eq(ee_n8n_new(&c, tr, base, "test-key"), EE_OK);
    cr_assert_eq(ee_n8n_list_workflows(c, NULL, &out), EE_ENETWORK);
    assert_error_doc(out, EE_ENETWORK, 0);
    ee_n8n_free(c);
}

Test(n8n_client, constructor_validates_its_input)
{
    ee_n8n *c = NULL;
    cr_assert_eq(ee_n8n_new(&c, tr, "ftp://x", "k"), EE_EINVAL);
    cr_assert_eq(ee_n8n_new(&c, tr, "http://x/?a=1", "k"), EE_EINVAL);
    cr_assert_eq(ee_n8n_new(&c, tr, "http://user:pw-secret@x?q", "k"), EE_EINVAL);
    cr_assert_null(strstr(ee_error_last_message(), "pw-secret"), "%s", ee_error_last_message());
    cr_assert_eq(ee_n8n_new(&c, tr, "http://x", "bad\nkey"), EE_EINVAL);
    cr_assert_eq(ee_n8n_new(&c, tr, NULL, "k"), EE_EINVAL);
    cr_assert_null(c);
    cr_assert_eq(ee_n8n_new(&c, NULL, "http://127.0.0.1:1", ""), EE_OK, "own transport");
    ee_n8n_free(c);
}
