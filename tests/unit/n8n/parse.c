/*
 * The n8n parsers without any server: status mapping, trigger derivation
 * from a workflow's nodes, and the bounds on what is parsed.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "execengine/errors.h"
#include "execengine/n8n.h"
#include "n8n/n8n_internal.h"

Test(n8n_parse, statuses_map_onto_ours)
{
    cr_assert_str_eq(ee_n8n_map_status("new"), "pending");
    cr_assert_str_eq(ee_n8n_map_status("running"), "running");
    cr_assert_str_eq(ee_n8n_map_status("waiting"), "running");
    cr_assert_str_eq(ee_n8n_map_status("success"), "completed");
    cr_assert_str_eq(ee_n8n_map_status("error"), "failed");
    cr_assert_str_eq(ee_n8n_map_status("crashed"), "failed");
    cr_assert_str_eq(ee_n8n_map_status("canceled"), "failed");
    cr_assert_null(ee_n8n_map_status("exploded"));
    cr_assert_null(ee_n8n_map_status(NULL));
}

static json_t *trigger_of(const char *nodes_json)
{
    char doc[4096];
    snprintf(doc, sizeof doc, "{\"nodes\": %s}", nodes_json);
    char *out;
    cr_assert_eq(ee_n8n_workflow_trigger(doc, &out), EE_OK, "%s", out);
    json_t *t = json_loads(out, 0, NULL);
    cr_assert_not_null(t);
    ee_free(out);
    return t;
}

#define WEBHOOK(params) \
    "{\"name\": \"Hook\", \"type\": \"n8n-nodes-base.webhook\", \"webhookId\": \"wid-1\", " \
    "\"parameters\": " params "}"

static const char *str(json_t *t, const char *key)
{
    return json_string_value(json_object_get(t, key));
}

Test(n8n_parse, webhook_node_gives_method_path_and_mode)
{
    json_t *t = trigger_of("[" WEBHOOK("{\"httpMethod\": \"POST\", \"path\": \"/a/b/\", "
                                       "\"responseMode\": \"lastNode\"}") "]");
    cr_assert(json_is_true(json_object_get(t, "runnable")));
    cr_assert_str_eq(str(t, "method"), "POST");
    cr_assert_str_eq(str(t, "path"), "a/b");
    cr_assert_str_eq(str(t, "responseMode"), "lastNode");
    cr_assert_str_eq(str(t, "node"), "Hook");
    cr_assert_str_eq(str(t, "webhookId"), "wid-1");
    json_decref(t);
}

Test(n8n_parse, defaults_follow_n8n)
{
    /* no method: GET; no response mode: onReceived; no path: the webhookId */
    json_t *t = trigger_of("[" WEBHOOK("{}") "]");
    cr_assert(json_is_true(json_object_get(t, "runnable")));
    cr_assert_str_eq(str(t, "method"), "GET");
    cr_assert_str_eq(str(t, "responseMode"), "onReceived");
    cr_assert_str_eq(str(t, "path"), "wid-1");
    json_decref(t);
    t = trigger_of("[" WEBHOOK("{\"httpMethod\": [\"GET\", \"POST\"], \"path\": \"m\", "
                               "\"authentication\": \"headerAuth\"}") "]");
    cr_assert_str_eq(str(t, "method"), "POST", "POST preferred among several");
    cr_assert_str_eq(str(t, "authentication"), "headerAuth");
    json_decref(t);
}

Test(n8n_parse, workflows_that_cannot_be_called_say_why)
{
    json_t *t = trigger_of("[{\"name\": \"S\", \"type\": \"n8n-nodes-base.scheduleTrigger\"}, "
                           "{\"name\": \"Set\", \"type\": \"n8n-nodes-base.set\"}]");
    cr_assert(json_is_false(json_object_get(t, "runnable")));
    cr_assert_not_null(strstr(str(t, "reason"), "another trigger"));
    cr_assert_str_eq(json_string_value(json_array_get(json_object_get(t, "triggers"), 0)),
                     "n8n-nodes-base.scheduleTrigger");
    json_decref(t);

    t = trigger_of("[{\"name\": \"Set\", \"type\": \"n8n-nodes-base.set\"}]");
    cr_assert_not_null(strstr(str(t, "reason"), "no trigger node"));
    json_decref(t);

    t = trigger_of("[{\"name\": \"Hook\", \"type\": \"n8n-nodes-base.webhook\", \"disabled\": true, "
                   "\"parameters\": {\"path\": \"x\"}}]");
    cr_assert(json_is_false(json_object_get(t, "runnable")));
    cr_assert_not_null(strstr(str(t, "reason"), "disabled"));
    json_decref(t);

    const char *bad_paths[] = {"\"user/:id\"", "\"={{ $json.p }}\"", "\"a b\"", "\"../x\""};
    for (int i = 0; i < 4; i++) {
        char nodes[512];
        snprintf(nodes, sizeof nodes,
                 "[{\"name\": \"H\", \"type\": \"n8n-nodes-base.webhook\", "
                 "\"parameters\": {\"path\": %s, \"httpMethod\": \"POST\"}}]",
                 bad_paths[i]);
        t = trigger_of(nodes);
        cr_assert(json_is_false(json_object_get(t, "runnable")), "path %s", bad_paths[i]);
        cr_assert_not_null(str(t, "reason"));
        json_decref(t);
    }
    t = trigger_of("[" WEBHOOK("{\"path\": \"p\", \"httpMethod\": \"TRACE\"}") "]");
    cr_assert(json_is_false(json_object_get(t, "runnable")));
    json_decref(t);
}

Test(n8n_parse, active_version_nodes_decide_for_active_workflows)
{
    const char *wf =
        "{\"id\": \"w\", \"name\": \"n\", \"active\": true, "
        "\"nodes\": [{\"name\": \"S\", \"type\": \"n8n-nodes-base.manualTrigger\"}], "
        "\"activeVersion\": {\"nodes\": [" WEBHOOK("{\"path\": \"live\"}") "]}}";
    char *out;
    cr_assert_eq(ee_n8n_workflow_trigger(wf, &out), EE_OK);
    cr_assert_not_null(strstr(out, "\"path\":\"live\""), "%s", out);
    ee_free(out);
}

Test(n8n_parse, bad_documents_are_clear_errors)
{
    char *out;
    cr_assert_eq(ee_n8n_workflow_trigger("{\"nodes\": [", &out), EE_EPARSE);
    cr_assert_not_null(strstr(out, "EE_EPARSE"));
    ee_free(out);
    cr_assert_eq(ee_n8n_workflow_trigger("{\"name\": \"x\"}", &out), EE_EINVAL);
    ee_free(out);
    cr_assert_eq(ee_n8n_workflow_trigger("[1]", &out), EE_EINVAL);
    ee_free(out);
    cr_assert_eq(ee_n8n_workflow_trigger(NULL, &out), EE_EINVAL);
    ee_free(out);

    size_t n = 5000;
    char *deep = malloc(2 * n + 20);
    strcpy(deep, "{\"nodes\":");
    memset(deep + 9, '[', n);
    memset(deep + 9 + n, ']', n);
    strcpy(deep + 9 + 2 * n, "}");
    cr_assert_eq(ee_n8n_workflow_trigger(deep, &out), EE_ETOOBIG);
    cr_assert_not_null(strstr(ee_error_last_message(), "deeper"));
    ee_free(out);
    free(deep);
}

Test(n8n_parse, depth_scan_ignores_brackets_in_strings)
{
    json_t *doc;
    const char *s = "{\"a\": \"[[[[[[[[[[[[[[[[[[[[\\\"[[[[[[\", \"b\": [[1]]}";
    cr_assert_eq(ee__n8n_json_parse(s, strlen(s), 4, "t", &doc), EE_OK, "%s",
                 ee_error_last_message());
    json_decref(doc);
    const char *d = "[[[[[1]]]]]";
    cr_assert_eq(ee__n8n_json_parse(d, strlen(d), 4, "t", &doc), EE_EPARSE);
    cr_assert_eq(ee__n8n_json_parse("", 0, 4, "t", &doc), EE_EPARSE);
    cr_assert_eq(ee__n8n_json_parse("{\"a\":1,\"a\":2}", 13, 4, "t", &doc), EE_EPARSE);
}

Test(n8n_parse, workflow_shapes_are_checked)
{
    const char *bad[] = {
        "{\"name\": \"x\", \"nodes\": []}",                         /* no id */
        "{\"id\": \"w\", \"nodes\": []}",                            /* no name */
        "{\"id\": \"w\", \"name\": \"x\"}",                          /* no nodes */
        "{\"id\": \"w\", \"name\": \"x\", \"nodes\": [1]}",          /* node not an object */
        "{\"id\": \"w\", \"name\": \"x\", \"nodes\": [], \"active\": \"yes\"}",
        "{\"id\": \"w\", \"name\": \"x\", \"nodes\": [], \"tags\": [{\"id\": 1}]}",
        ("{\"id\": \"w\", \"name\": \"x\", \"nodes\": [{\"name\": \"a\", \"type\": \"t\", "
         "\"parameters\": 3}]}"),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *in = json_loads(bad[i], 0, NULL), *out = NULL;
        cr_assert_not_null(in);
        cr_assert_eq(ee__n8n_workflow_normalise(in, &out), EE_EPARSE, "accepted: %s", bad[i]);
        cr_assert_null(out);
        json_decref(in);
    }
}

Test(n8n_parse, error_text_is_cut_and_cleaned)
{
    char msg[600], hint[600];
    char body[2000];
    memset(body, 'a', sizeof body);
    ee__n8n_error_text(body, sizeof body, msg, sizeof msg, hint, sizeof hint);
    cr_assert_leq(strlen(msg), 500);
    cr_assert_eq(hint[0], '\0');
    const char *j = "{\"message\": \"line1\\nline2\", \"hint\": \"do this\"}";
    ee__n8n_error_text(j, strlen(j), msg, sizeof msg, hint, sizeof hint);
    cr_assert_str_eq(msg, "line1?line2");
    cr_assert_str_eq(hint, "do this");
}
