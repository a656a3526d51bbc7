/*
 * Catalog sync keeps an entry's access: the admin sets who may run it,
 * n8n changes the workflow (new version, rename, gone, back), and every
 * re-sync leaves "access" as the admin set it - still enforced, never in
 * adminEdited (sync does not own it at all). A small fake n8n answers the
 * public API's listing and reads, as in sync.c.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fixture.h"
#include "fake_transport.h"
#include "execengine/catalog.h"
#include "execengine/transport.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *workflows; /* n8n's raw workflow objects */

static ee_status fake_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    (void)ctx;
    const char *url = ee_http_request_url(req);
    const char *base = "http://fake.n8n/api/v1/workflows";
    if (strncmp(url, base, strlen(base)) != 0)
        return fake_answer_json(resp, 404, json_pack("{s:s}", "message", "Not Found"));
    const char *rest = url + strlen(base);
    pthread_mutex_lock(&lock);
    ee_status st;
    if (rest[0] == '?') {
        st = fake_answer_json(resp, 200, json_pack("{s:O, s:n}", "data", workflows,
                                                   "nextCursor"));
    } else {
        json_t *found = NULL, *wf;
        size_t i;
        json_array_foreach(workflows, i, wf) {
            if (strcmp(json_string_value(json_object_get(wf, "id")), rest + 1) == 0)
                found = wf;
        }
        st = found ? fake_answer_json(resp, 200, json_incref(found))
                   : fake_answer_json(resp, 404, json_pack("{s:s}", "message", "Not Found"));
    }
    pthread_mutex_unlock(&lock);
    return st;
}

static json_t *workflow(const char *id, const char *name, const char *version)
{
    return json_pack("{s:s, s:s, s:b, s:b, s:s, s:s, s:[{s:s, s:s, s:s, s:{s:s, s:s, s:s}}], "
                     "s:{}, s:[]}",
                     "id", id, "name", name, "active", 1, "isArchived", 0, "versionId", version,
                     "updatedAt", "2026-01-01T00:00:00.000Z", "nodes", "name", "Webhook", "type",
                     "n8n-nodes-base.webhook", "webhookId", id, "parameters", "path", id,
                     "httpMethod", "POST", "responseMode", "lastNode", "connections", "tags");
}

static void set_workflows(json_t *list)
{
    pthread_mutex_lock(&lock);
    json_decref(workflows);
    workflows = list;
    pthread_mutex_unlock(&lock);
}

static json_t *parse(const char *text)
{
    cr_assert_not_null(text);
    json_t *doc = json_loads(text, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", text);
    return doc;
}

static json_t *sync_ok(ee_engine *e)
{
    char *out = NULL;
    ee_status st = ee_catalog_sync(e, &out);
    cr_assert_eq(st, EE_OK, "sync: %s", out);
    json_t *r = parse(out);
    ee_free(out);
    return r;
}

/* The admin's view of the entry of n8n workflow `n8n_id`. */
static json_t *entry_of(ee_engine *e, const char *n8n_id)
{
    char q[256], *out = NULL;
    snprintf(q, sizeof q, "{\"n8nWorkflowId\": \"%s\", \"includeInactive\": true}", n8n_id);
    cr_assert_eq(ee_catalog_list(e, NULL, q, &out), EE_OK, "%s", out);
    json_t *doc = parse(out);
    ee_free(out);
    json_t *item = json_incref(json_array_get(json_object_get(doc, "data"), 0));
    cr_assert_not_null(item, "no entry for %s", n8n_id);
    json_decref(doc);
    char id[25];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(item, "id")));
    json_decref(item);
    cr_assert_eq(ee_catalog_get(e, NULL, id, EE_CATALOG_INCLUDE_INACTIVE, &out), EE_OK);
    doc = parse(out);
    ee_free(out);
    return doc;
}

static json_int_t search_total(ee_engine *e, const ee_principal *p)
{
    char *out = NULL;
    cr_assert_eq(ee_catalog_search(e, p, "{\"q\": \"report\"}", &out), EE_OK, "%s", out);
    json_t *doc = parse(out);
    ee_free(out);
    json_int_t n = json_integer_value(json_object_get(doc, "total"));
    json_decref(doc);
    return n;
}

static ee_status get_as(ee_engine *e, const ee_principal *p, const char *id)
{
    char *out = NULL;
    ee_status st = ee_catalog_get(e, p, id, 0, &out);
    ee_free(out);
    return st;
}

/* The entry's access is the admin's, its adminEdited does not name it. */
static void expect_access(ee_engine *e, const char *n8n_id, const json_t *want)
{
    json_t *doc = entry_of(e, n8n_id);
    char *have = json_dumps(json_object_get(doc, "access"), JSON_COMPACT | JSON_SORT_KEYS);
    cr_expect(json_equal(json_object_get(doc, "access"), want), "access after sync: %s", have);
    free(have);
    size_t i;
    json_t *f;
    json_array_foreach(json_object_get(doc, "adminEdited"), i, f)
        cr_expect_str_neq(json_string_value(f), "access");
    json_decref(doc);
}

static void keeps_access(const char *storage_uri)
{
    ee_transport *transport = NULL;
    ee_n8n *client = NULL;
    ee_transport_backend b = {EE_TRANSPORT_BACKEND_VERSION, EE_TRANSPORT_THREAD_SAFE, fake_http,
                              NULL, NULL};
    cr_assert_eq(ee_transport_new_custom(&transport, &b, NULL, NULL), EE_OK);
    cr_assert_eq(ee_n8n_new(&client, transport, "http://fake.n8n", "fake-key"), EE_OK);
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .n8n = client};
    ee_engine *e = NULL;
    ee_config *cfg = ee_test_config_new(storage_uri, NULL, NULL);
    cr_assert_eq(ee_engine_open_parts(&e, cfg, &parts), EE_OK, "%s", ee_error_last_message());
    ee_config_free(cfg);

    set_workflows(json_pack("[o, o]", workflow("wf1", "Sales report", "v1"),
                            workflow("wf2", "Open report", "v1")));
    json_decref(sync_ok(e));
    json_t *doc = entry_of(e, "wf1");
    char id[25];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);

    char *out = NULL;
    cr_assert_eq(ee_catalog_update(e, id, "{\"access\": {\"mode\": \"workspaces\", "
                                          "\"workspaces\": [\"ws-1\"]}}", &out),
                 EE_OK, "%s", out);
    ee_free(out);
    json_t *want = json_pack("{s:s, s:[s]}", "mode", "workspaces", "workspaces", "ws-1");
    ee_principal *on = NULL, *off = NULL;
    cr_assert_eq(ee_principal_new(&on, "ws-1", "u", NULL), EE_OK);
    cr_assert_eq(ee_principal_new(&off, "ws-2", "u", NULL), EE_OK);

    /* nothing changed in n8n */
    json_decref(sync_ok(e));
    expect_access(e, "wf1", want);
    /* a new version, renamed */
    set_workflows(json_pack("[o, o]", workflow("wf1", "Sales report v2", "v2"),
                            workflow("wf2", "Open report", "v1")));
    json_t *r = sync_ok(e);
    cr_expect_eq(json_array_size(json_object_get(r, "updated")), 1);
    json_decref(r);
    doc = entry_of(e, "wf1");
    cr_expect_str_eq(json_string_value(json_object_get(doc, "name")), "Sales report v2");
    json_decref(doc);
    expect_access(e, "wf1", want);
    cr_expect_eq(get_as(e, on, id), EE_OK);
    cr_expect_eq(get_as(e, off, id), EE_ENOTFOUND);
    cr_expect_eq(search_total(e, on), 2);
    cr_expect_eq(search_total(e, off), 1);
    /* gone from n8n (deactivated), then back */
    set_workflows(json_pack("[o]", workflow("wf2", "Open report", "v1")));
    r = sync_ok(e);
    cr_expect_eq(json_array_size(json_object_get(r, "deactivated")), 1);
    json_decref(r);
    expect_access(e, "wf1", want);
    set_workflows(json_pack("[o, o]", workflow("wf1", "Sales report v3", "v3"),
                            workflow("wf2", "Open report", "v1")));
    json_decref(sync_ok(e));
    expect_access(e, "wf1", want);
    cr_expect_eq(get_as(e, on, id), EE_OK, "active again, for ws-1");
    cr_expect_eq(get_as(e, off, id), EE_ENOTFOUND, "and still not for ws-2");
    cr_expect_eq(search_total(e, off), 1);

    json_decref(want);
    ee_principal_free(on);
    ee_principal_free(off);
    ee_engine_close(e);
    ee_n8n_free(client);
    ee_transport_free(transport);
    set_workflows(NULL);
}

Test(access_sync, keeps_access_memory)
{
    keeps_access("memory:");
}

Test(access_sync, keeps_access_sqlite)
{
    char uri[300];
    snprintf(uri, sizeof uri, "sqlite:///tmp/ee-access-sync-%d.db", (int)getpid());
    remove(uri + 9);
    keeps_access(uri);
    char p[300];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", uri + 9, sfx[i]);
        remove(p);
    }
}
