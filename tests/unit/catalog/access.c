/*
 * Who may run a catalog entry ("access": everyone, plans, a workspace
 * allow-list), on memory and sqlite storage: the admin sets and reads it;
 * a workspace off the list gets EE_ENOTFOUND from get and validate, as for
 * an unknown id, and neither sees the entry in list or search nor counts it
 * in their totals; plans mode follows the organisation's subscription; bad
 * access documents are refused and store nothing.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "execengine/catalog.h"
#include "execengine/quota.h"

#define CATALOG_TEST_NAME "access"
#define CATALOG_TEST_CLOCK NULL
#define CATALOG_SUITE_MEMORY access_memory
#define CATALOG_SUITE_SQLITE access_sqlite
#include "catalog_test.h"

static ee_principal *who(const char *ws, const char *org)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, ws, "user-1", org), EE_OK, "%s", ee_error_last_message());
    return p;
}

/* ee_catalog_get()'s status for `p` (EE_OK: the answer is checked to carry
 * "access" exactly when p is NULL, the admin's view). */
static ee_status get_as(ee_engine *e, const ee_principal *p, const char *id)
{
    char *out = NULL;
    ee_status st = ee_catalog_get(e, p, id, 0, &out);
    cr_assert_not_null(out);
    json_t *doc = parse(out);
    if (st == EE_OK)
        cr_expect_eq(json_object_get(doc, "access") != NULL, p == NULL, "%s", out);
    json_decref(doc);
    ee_free(out);
    return st;
}

static ee_status validate_as(ee_engine *e, const ee_principal *p, const char *id)
{
    char *out = NULL;
    ee_status st = ee_catalog_validate_input(e, p, id, "{}", &out);
    cr_assert_not_null(out);
    ee_free(out);
    return st;
}

/* Run a list (search: false) or search query as `p`: returns the answer,
 * checking that its items carry "access" exactly in the admin's view. */
static json_t *query_as(ee_engine *e, const ee_principal *p, bool search, const char *q)
{
    json_t *doc = search ? CALL(EE_OK, ee_catalog_search(e, p, q, &out_))
                         : CALL(EE_OK, ee_catalog_list(e, p, q, &out_));
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(doc, "data"), i, it)
        cr_expect_eq(json_object_get(it, "access") != NULL, p == NULL);
    return doc;
}

static json_int_t total_of(ee_engine *e, const ee_principal *p, bool search, const char *q)
{
    json_t *doc = query_as(e, p, search, q);
    json_int_t n = json_integer_value(json_object_get(doc, "total"));
    cr_expect_eq((json_int_t)json_array_size(json_object_get(doc, "data")), n,
                 "every match fits one page here");
    json_decref(doc);
    return n;
}

/* Whether entry `id` is on the first page of the query's answer for `p`. */
static bool listed(ee_engine *e, const ee_principal *p, bool search, const char *q,
                   const char *id)
{
    json_t *doc = query_as(e, p, search, q);
    bool found = false;
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(doc, "data"), i, it) found |= strcmp(str(it, "id"), id) == 0;
    json_decref(doc);
    return found;
}

/* `msg` with `id` replaced by "<id>" (in place). */
static char *same_shape(char *msg, const char *id)
{
    char *at = strstr(msg, id);
    if (at != NULL)
        memmove(at + 4, at + strlen(id), strlen(at + strlen(id)) + 1), memcpy(at, "<id>", 4);
    return msg;
}

/* ---- modes ----------------------------------------------------------------------------- */

BOTH(everyone_by_default)
{
    char *id = entry(e, "{\"n8nWorkflowId\": \"a\", \"name\": \"Alpha report\"}");
    json_t *doc = CALL(EE_OK, ee_catalog_get(e, NULL, id, 0, &out_));
    json_t *want = json_pack("{s:s}", "mode", "everyone");
    cr_expect(json_equal(json_object_get(doc, "access"), want), "admin view shows the default");
    json_decref(doc);
    ee_principal *p = who("ws-1", NULL);
    cr_expect_eq(get_as(e, p, id), EE_OK);
    cr_expect_eq(validate_as(e, p, id), EE_OK);
    cr_expect_eq(total_of(e, p, false, NULL), 1);
    cr_expect_eq(total_of(e, p, true, "{\"q\": \"alpha\"}"), 1);
    /* set explicitly, and back with null */
    doc = CALL(EE_OK, ee_catalog_update(e, id, "{\"access\": {\"mode\": \"everyone\"}}", &out_));
    cr_expect(json_equal(json_object_get(doc, "access"), want));
    json_decref(doc);
    doc = CALL(EE_OK, ee_catalog_update(e, id, "{\"access\": {\"mode\": \"workspaces\", "
                                               "\"workspaces\": []}}", &out_));
    json_decref(doc);
    cr_expect_eq(get_as(e, p, id), EE_ENOTFOUND, "an empty allow-list admits nobody");
    doc = CALL(EE_OK, ee_catalog_update(e, id, "{\"access\": null}", &out_));
    cr_expect(json_equal(json_object_get(doc, "access"), want), "null is everyone again");
    json_decref(doc);
    cr_expect_eq(get_as(e, p, id), EE_OK);
    json_decref(want);
    ee_principal_free(p);
    free(id);
}

BOTH(workspace_allow_list)
{
    char *open_id = entry(e, "{\"n8nWorkflowId\": \"a\", \"name\": \"Alpha open\"}");
    char *list_id = entry(e, "{\"n8nWorkflowId\": \"b\", \"name\": \"Alpha listed\", "
                             "\"access\": {\"mode\": \"workspaces\", "
                             "\"workspaces\": [\"ws-3\", \"ws-1\", \"ws-3\"]}}");
    ee_principal *on = who("ws-1", "org-1"), *off = who("ws-2", "org-1");

    /* stored sorted, without the duplicate; shown to the admin */
    json_t *doc = CALL(EE_OK, ee_catalog_get(e, NULL, list_id, 0, &out_));
    json_t *want = json_pack("{s:s, s:[s, s]}", "mode", "workspaces", "workspaces", "ws-1",
                             "ws-3");
    cr_expect(json_equal(json_object_get(doc, "access"), want));
    json_decref(want);
    json_decref(doc);

    /* get and validate */
    cr_expect_eq(get_as(e, on, list_id), EE_OK);
    cr_expect_eq(validate_as(e, on, list_id), EE_OK);
    cr_expect_eq(get_as(e, NULL, list_id), EE_OK);
    cr_expect_eq(get_as(e, off, open_id), EE_OK);
    char *out = NULL;
    cr_expect_eq(ee_catalog_get(e, off, list_id, 0, &out), EE_ENOTFOUND);
    /* refused exactly as an entry that does not exist (here: an inactive one) */
    char msg_off[512];
    snprintf(msg_off, sizeof msg_off, "%s", ee_error_last_message());
    cr_expect(strstr(out, "ws-1") == NULL && strstr(msg_off, "ws-") == NULL,
              "nothing about who may run it: %s", out);
    ee_free(out);
    cr_expect_eq(validate_as(e, off, list_id), EE_ENOTFOUND);
    cr_expect_eq(ee_catalog_get(e, off, list_id, EE_CATALOG_INCLUDE_INACTIVE, &out),
                 EE_ENOTFOUND, "the admin flag does not open it to a workspace");
    ee_free(out);
    json_decref(CALL(EE_OK, ee_catalog_update(e, open_id, "{\"isActive\": false}", &out_)));
    cr_expect_eq(ee_catalog_get(e, off, open_id, 0, &out), EE_ENOTFOUND);
    char msg_inactive[512];
    snprintf(msg_inactive, sizeof msg_inactive, "%s", ee_error_last_message());
    cr_expect_str_eq(same_shape(msg_inactive, open_id), same_shape(msg_off, list_id),
                     "refused as an inactive entry is: \"%s\" vs \"%s\"", msg_off,
                     msg_inactive);
    ee_free(out);
    json_decref(CALL(EE_OK, ee_catalog_update(e, open_id, "{\"isActive\": true}", &out_)));

    /* list and search: items and totals */
    cr_expect_eq(total_of(e, on, false, NULL), 2);
    cr_expect_eq(total_of(e, off, false, NULL), 1);
    cr_expect_eq(total_of(e, NULL, false, NULL), 2);
    cr_expect(listed(e, on, false, NULL, list_id));
    cr_expect(!listed(e, off, false, NULL, list_id));
    cr_expect(listed(e, off, false, NULL, open_id));
    const char *q = "{\"q\": \"alpha\"}";
    cr_expect_eq(total_of(e, on, true, q), 2);
    cr_expect_eq(total_of(e, off, true, q), 1);
    cr_expect(listed(e, on, true, q, list_id));
    cr_expect(!listed(e, off, true, q, list_id));
    cr_expect(listed(e, off, true, "{\"q\": \"alpha open\"}", open_id));
    /* with other filters (bitmaps together) and with a residual filter */
    cr_expect_eq(total_of(e, on, true, "{\"q\": \"alpha\", \"requiresApiKey\": false}"), 2);
    cr_expect_eq(total_of(e, off, true, "{\"q\": \"alpha\", \"requiresApiKey\": false}"), 1);
    cr_expect_eq(total_of(e, off, true, "{\"q\": \"alpha\", \"n8nWorkflowId\": \"b\"}"), 0);
    cr_expect_eq(total_of(e, on, true, "{\"q\": \"alpha\", \"n8nWorkflowId\": \"b\"}"), 1);
    cr_expect_eq(total_of(e, off, false, "{\"n8nWorkflowId\": \"b\"}"), 0);
    cr_expect_eq(total_of(e, off, false, "{\"includeInactive\": true}"), 1);

    /* a page of one workspace's view does not continue in another's */
    doc = CALL(EE_OK, ee_catalog_list(e, on, "{\"limit\": 1}", &out_));
    const char *next = str(doc, "nextCursor");
    cr_assert_not_null(next);
    char cq[4096];
    snprintf(cq, sizeof cq, "{\"limit\": 1, \"cursor\": \"%s\"}", next);
    json_decref(CALL(EE_OK, ee_catalog_list(e, on, cq, &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_list(e, off, cq, &out_)));
    json_decref(doc);

    /* taking the workspace off the list closes the entry at once */
    json_decref(CALL(EE_OK, ee_catalog_update(e, list_id, "{\"access\": {\"mode\": "
                                                          "\"workspaces\", \"workspaces\": "
                                                          "[\"ws-3\"]}}", &out_)));
    cr_expect_eq(get_as(e, on, list_id), EE_ENOTFOUND);
    cr_expect_eq(total_of(e, on, true, q), 1);
    cr_expect_eq(total_of(e, on, false, NULL), 1);
    ee_principal_free(on);
    ee_principal_free(off);
    free(open_id);
    free(list_id);
}

/* More workspaces search than the snapshot keeps bitmaps for: the rest are
 * filtered entry by entry, with the same answers. */
BOTH(many_workspaces)
{
    char *ids[3];
    ids[0] = entry(e, "{\"n8nWorkflowId\": \"a\", \"name\": \"Beta open\"}");
    char in[8192];
    int len = snprintf(in, sizeof in, "{\"n8nWorkflowId\": \"b\", \"name\": \"Beta even\", "
                                      "\"access\": {\"mode\": \"workspaces\", \"workspaces\": [");
    for (int w = 0; w < 100; w += 2)
        len += snprintf(in + len, sizeof in - (size_t)len, "%s\"ws-%d\"", w ? ", " : "", w);
    snprintf(in + len, sizeof in - (size_t)len, "]}}");
    ids[1] = entry(e, in);
    ids[2] = entry(e, "{\"n8nWorkflowId\": \"c\", \"name\": \"Beta nobody\", \"access\": "
                      "{\"mode\": \"workspaces\", \"workspaces\": []}}");
    for (int round = 0; round < 2; round++) {
        for (int w = 0; w < 100; w++) {
            char ws[16];
            snprintf(ws, sizeof ws, "ws-%d", w);
            ee_principal *p = who(ws, NULL);
            json_int_t want = w % 2 == 0 ? 2 : 1;
            cr_assert_eq(total_of(e, p, true, "{\"q\": \"beta\"}"), want, "%s round %d", ws,
                         round);
            cr_assert_eq(listed(e, p, true, "{\"q\": \"beta\"}", ids[1]), w % 2 == 0);
            ee_principal_free(p);
        }
    }
    for (int i = 0; i < 3; i++)
        free(ids[i]);
}

/* Plans mode: two organisations on different plans; a subscription change
 * through this engine applies at once. */
BOTH(plans_mode)
{
    cr_assert_eq(ee_quota_subscription_put(e, "{\"orgId\": \"org-pro\", \"plan\": \"pro\"}",
                                           NULL), EE_OK, "%s", ee_error_last_message());
    /* org-free has no subscription: the plans file's default plan ("free") */
    char *open_id = entry(e, "{\"n8nWorkflowId\": \"a\", \"name\": \"Gamma open\"}");
    char *pro_id = entry(e, "{\"n8nWorkflowId\": \"p\", \"name\": \"Gamma pro\", \"access\": "
                            "{\"mode\": \"plans\", \"plans\": [\"pro\", \"enterprise\"]}}");
    ee_principal *pro = who("ws-pro", "org-pro"), *free_ = who("ws-free", "org-free");
    cr_expect_eq(get_as(e, pro, pro_id), EE_OK);
    cr_expect_eq(validate_as(e, pro, pro_id), EE_OK);
    cr_expect_eq(get_as(e, free_, pro_id), EE_ENOTFOUND);
    cr_expect_eq(validate_as(e, free_, pro_id), EE_ENOTFOUND);
    cr_expect_eq(get_as(e, free_, open_id), EE_OK);
    cr_expect_eq(total_of(e, pro, false, NULL), 2);
    cr_expect_eq(total_of(e, free_, false, NULL), 1);
    cr_expect_eq(total_of(e, pro, true, "{\"q\": \"gamma\"}"), 2);
    cr_expect_eq(total_of(e, free_, true, "{\"q\": \"gamma\"}"), 1);
    cr_expect(!listed(e, free_, true, "{\"q\": \"gamma\"}", pro_id));
    /* a workspace's own id does not matter in plans mode: a second
     * workspace of org-pro sees the entry too */
    ee_principal *pro2 = who("ws-pro-2", "org-pro");
    cr_expect_eq(get_as(e, pro2, pro_id), EE_OK);
    cr_expect_eq(total_of(e, pro2, true, "{\"q\": \"gamma\"}"), 2);
    /* org-free upgrades */
    cr_assert_eq(ee_quota_subscription_put(e, "{\"orgId\": \"org-free\", \"plan\": "
                                              "\"enterprise\"}", NULL), EE_OK);
    cr_expect_eq(get_as(e, free_, pro_id), EE_OK);
    cr_expect_eq(total_of(e, free_, true, "{\"q\": \"gamma\"}"), 2);
    cr_expect_eq(total_of(e, free_, false, NULL), 2);
    /* and org-pro downgrades */
    cr_assert_eq(ee_quota_subscription_put(e, "{\"orgId\": \"org-pro\", \"plan\": \"free\"}",
                                           NULL), EE_OK);
    cr_expect_eq(get_as(e, pro, pro_id), EE_ENOTFOUND);
    cr_expect_eq(total_of(e, pro, true, "{\"q\": \"gamma\"}"), 1);
    cr_expect_eq(total_of(e, pro, false, NULL), 1);
    ee_principal_free(pro);
    ee_principal_free(pro2);
    ee_principal_free(free_);
    free(open_id);
    free(pro_id);
}

/* ---- bad access documents ---------------------------------------------------------------- */

static uint64_t admin_total(ee_engine *e)
{
    return (uint64_t)total_of(e, NULL, false, "{\"includeInactive\": true}");
}

BOTH(bad_access_refused)
{
    char *id = entry(e, "{\"n8nWorkflowId\": \"keep\", \"name\": \"Kept\", \"access\": "
                        "{\"mode\": \"workspaces\", \"workspaces\": [\"ws-1\"]}}");
    json_t *before = CALL(EE_OK, ee_catalog_get(e, NULL, id, 0, &out_));
    char many[80000];
    int len = snprintf(many, sizeof many, "{\"mode\": \"workspaces\", \"workspaces\": [");
    for (int w = 0; w <= EE_CATALOG_ACCESS_WORKSPACES_MAX; w++)
        len += snprintf(many + len, sizeof many - (size_t)len, "%s\"w%d\"", w ? ", " : "", w);
    snprintf(many + len, sizeof many - (size_t)len, "]}");
    char plans[4096];
    len = snprintf(plans, sizeof plans, "{\"mode\": \"plans\", \"plans\": [");
    for (int w = 0; w <= EE_CATALOG_ACCESS_PLANS_MAX; w++)
        len += snprintf(plans + len, sizeof plans - (size_t)len, "%s\"p%d\"", w ? ", " : "", w);
    snprintf(plans + len, sizeof plans - (size_t)len, "]}");
    char long_ws[200];
    snprintf(long_ws, sizeof long_ws, "{\"mode\": \"workspaces\", \"workspaces\": [\"%065d\"]}",
             7);
    struct {
        const char *access;
        ee_status want;
        const char *pointer;
    } bad[] = {
        {"\"everyone\"", EE_EINVAL, "/access"},
        {"[]", EE_EINVAL, "/access"},
        {"{}", EE_EINVAL, "/access/mode"},
        {"{\"mode\": \"some\"}", EE_EINVAL, "/access/mode"},
        {"{\"mode\": 1}", EE_EINVAL, "/access/mode"},
        {"{\"mode\": \"plans\"}", EE_EINVAL, "/access/plans"},
        {"{\"mode\": \"workspaces\"}", EE_EINVAL, "/access/workspaces"},
        {"{\"mode\": \"everyone\", \"workspaces\": [\"ws-1\"]}", EE_EINVAL, "/access/workspaces"},
        {"{\"mode\": \"workspaces\", \"workspaces\": [\"a\"], \"plans\": [\"pro\"]}", EE_EINVAL,
         "/access/plans"},
        {"{\"mode\": \"workspaces\", \"workspaces\": \"ws-1\"}", EE_EINVAL,
         "/access/workspaces"},
        {"{\"mode\": \"workspaces\", \"workspaces\": [\"ok\", \"bad id!\"]}", EE_EINVAL,
         "/access/workspaces/1"},
        {"{\"mode\": \"workspaces\", \"workspaces\": [\"ok\", 7]}", EE_EINVAL,
         "/access/workspaces/1"},
        {"{\"mode\": \"workspaces\", \"workspaces\": [\"\"]}", EE_EINVAL,
         "/access/workspaces/0"},
        {long_ws, EE_EINVAL, "/access/workspaces/0"},
        {"{\"mode\": \"plans\", \"plans\": [\"pro\", null]}", EE_EINVAL, "/access/plans/1"},
        {"{\"mode\": \"plans\", \"plans\": [\"pro\"], \"who\": 1}", EE_EINVAL, "/access/who"},
        {many, EE_ETOOBIG, "/access/workspaces"},
        {plans, EE_ETOOBIG, "/access/plans"},
    };
    static char doc[100000];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t n = admin_total(e);
        /* create: nothing stored */
        snprintf(doc, sizeof doc, "{\"n8nWorkflowId\": \"new\", \"name\": \"New\", "
                                  "\"access\": %s}", bad[i].access);
        char *out = NULL;
        ee_status st = ee_catalog_create(e, doc, &out);
        cr_expect_eq(st, bad[i].want, "create #%zu: %s", i, ee_status_name(st));
        cr_expect(strstr(ee_error_last_message(), bad[i].pointer) != NULL,
                  "create #%zu names %s: %s", i, bad[i].pointer, ee_error_last_message());
        cr_expect_not_null(out);
        ee_free(out);
        cr_expect_eq(admin_total(e), n, "create #%zu stored nothing", i);
        /* update with another valid change: neither is written */
        snprintf(doc, sizeof doc, "{\"name\": \"Renamed\", \"access\": %s}", bad[i].access);
        st = ee_catalog_update(e, id, doc, &out);
        cr_expect_eq(st, bad[i].want, "update #%zu", i);
        cr_expect(strstr(ee_error_last_message(), bad[i].pointer) != NULL,
                  "update #%zu names %s: %s", i, bad[i].pointer, ee_error_last_message());
        ee_free(out);
        json_t *now = CALL(EE_OK, ee_catalog_get(e, NULL, id, 0, &out_));
        cr_expect(json_equal(now, before), "update #%zu changed nothing", i);
        json_decref(now);
    }
    /* the limits themselves are fine */
    char *out = NULL;
    many[strlen(many) - 2] = '\0';
    *strrchr(many, ',') = '\0';
    snprintf(doc, sizeof doc, "{\"access\": %s]}}", many);
    cr_expect_eq(ee_catalog_update(e, id, doc, &out), EE_OK, "%s", out);
    json_t *got = parse(out);
    cr_expect_eq(json_array_size(json_object_get(json_object_get(got, "access"), "workspaces")),
                 EE_CATALOG_ACCESS_WORKSPACES_MAX);
    json_decref(got);
    ee_free(out);
    json_decref(before);
    free(id);
}

/* ---- another process changes access --------------------------------------------------------- */

/* Two engines on one sqlite file: the reader's search snapshot is younger
 * than EE_CATALOG_INDEX_TTL_MS and still lists the entry as open, but the
 * page it renders is checked against the stored record. */
Test(access_sqlite, stored_record_has_the_last_word)
{
    ee_engine *a = open_engine("sqlite");
    char uri[300];
    snprintf(uri, sizeof uri, "sqlite://%s", db_path);
    ee_engine *b = ee_test_engine_open(uri, NULL, NULL);
    char *id = entry(a, "{\"n8nWorkflowId\": \"d\", \"name\": \"Delta\"}");
    ee_principal *p = who("ws-2", NULL);
    cr_assert(listed(a, p, true, "{\"q\": \"delta\"}", id), "snapshot built, entry open");
    cr_assert(listed(a, p, false, NULL, id));
    json_decref(CALL(EE_OK, ee_catalog_update(b, id, "{\"access\": {\"mode\": \"workspaces\", "
                                                     "\"workspaces\": [\"ws-1\"]}}", &out_)));
    cr_expect(!listed(a, p, true, "{\"q\": \"delta\"}", id));
    cr_expect(!listed(a, p, false, NULL, id));
    cr_expect_eq(get_as(a, p, id), EE_ENOTFOUND);
    ee_principal_free(p);
    free(id);
    ee_engine_close(b);
    close_engine(a);
}
