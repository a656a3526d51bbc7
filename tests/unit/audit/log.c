/*
 * The audit log itself (lib/audit/): what an entry holds, the queries
 * (workspace isolation, time range, action prefix, cursor pages that cover
 * everything once while others append), retention, the bounded detail and
 * target, and an append that fails without failing its caller.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "audit/audit.h"
#include "audit_test.h"
#include "engine_fixture.h"

#define T0 INT64_C(1800000000000)
#define DAY INT64_C(86400000)

static _Atomic int64_t now_ms;
static atomic_int ticking; /* 1: every read of the clock moves it 1 ms */

static int64_t clock_fn(void *payload)
{
    (void)payload;
    return atomic_load(&ticking) ? atomic_fetch_add(&now_ms, 1) : atomic_load(&now_ms);
}

static ee_engine *engine;
static ee_principal *pa, *pb;

static void setup_with(const char *retention_days)
{
    atomic_store(&now_ms, T0);
    atomic_store(&ticking, 0);
    ee_config *cfg = ee_test_config_new(NULL, clock_fn, NULL);
    if (retention_days != NULL)
        ee_test_config_set(cfg, "AUDIT_RETENTION_DAYS", retention_days);
    engine = ee_test_engine_open_config(cfg);
    cr_assert_eq(ee_principal_new(&pa, "ws-a", "u-a", "org-a"), EE_OK);
    cr_assert_eq(ee_principal_new(&pb, "ws-b", "u-b", "org-b"), EE_OK);
}

static void setup(void)
{
    setup_with(NULL);
}

static void teardown(void)
{
    ee_principal_free(pa);
    ee_principal_free(pb);
    ee_engine_close(engine);
}

TestSuite(audit_log, .init = setup, .fini = teardown, .timeout = 60);

static void append(const char *ws, ee__audit_action action, const char *target, json_t *detail)
{
    ee__audit_append(engine, &(ee__audit_entry){.action = action,
                                                .workspace = ws,
                                                .org = "org-x",
                                                .actor = "u-x",
                                                .target_id = target,
                                                .outcome = EE__AUDIT_OK,
                                                .status = EE_OK,
                                                .detail = detail});
    json_decref(detail);
}

Test(audit_log, an_entry_holds_what_the_header_documents)
{
    atomic_store(&now_ms, T0 + 5);
    ee__audit_append(engine, &(ee__audit_entry){.action = EE__AUDIT_GATEWAY_BUDGET_REFUSED,
                                                .workspace = "ws-a",
                                                .org = "org-a",
                                                .actor = EE__AUDIT_ACTOR_ENGINE,
                                                .target_id = "exec-1",
                                                .outcome = EE__AUDIT_REFUSED,
                                                .status = EE_ESPEND,
                                                .detail = NULL});
    json_t *e = audit_one(engine, pa, "gateway.budget.refused");
    audit_expect(e, "engine", "ws-a", "execution", "exec-1", "refused", "EE_ESPEND");
    cr_expect_str_eq(audit_str(e, "orgId"), "org-a");
    cr_expect_eq(json_integer_value(json_object_get(e, "time")), T0 + 5, "the engine's clock");
    cr_expect_eq(strlen(audit_str(e, "id")), 24);
    cr_expect_eq(json_object_size(json_object_get(e, "detail")), 0);
    json_decref(e);
    cr_expect_eq(audit_stat(engine, "appended"), 1);
    cr_expect_eq(audit_stat(engine, "failed"), 0);
    /* every action has a distinct dotted name */
    for (int i = 0; i < EE__AUDIT_ACTION_COUNT; i++) {
        const char *n = ee__audit_action_name((ee__audit_action)i);
        cr_expect_not_null(strchr(n, '.'), "%s", n);
        for (int j = 0; j < i; j++)
            cr_expect_str_neq(n, ee__audit_action_name((ee__audit_action)j));
    }
}

Test(audit_log, another_workspace_sees_none_of_them)
{
    append("ws-a", EE__AUDIT_KEY_ADDED, "k1", NULL);
    append("ws-a", EE__AUDIT_KEY_DELETED, "k1", NULL);
    append("ws-b", EE__AUDIT_KEY_ADDED, "k2", NULL);
    append(NULL, EE__AUDIT_CATALOG_SYNCED, "catalog", NULL);
    /* no principal: the platform's own entries, and only those */
    json_t *plat = audit_all(engine, NULL, "", 50);
    cr_expect_eq(json_array_size(plat), 1);
    cr_expect_str_eq(audit_str(json_array_get(plat, 0), "workspaceId"), "platform");
    json_decref(plat);
    json_t *a = audit_all(engine, pa, "", 50), *b = audit_all(engine, pb, "", 50);
    cr_expect_eq(json_array_size(a), 2);
    cr_expect_eq(json_array_size(b), 1);
    cr_expect_str_eq(audit_str(json_array_get(b, 0), "target.id"), "k2");
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v)
        cr_expect_str_eq(audit_str(v, "workspaceId"), "ws-a");
    json_decref(a);
    json_decref(b);
}

Test(audit_log, a_time_range_is_from_inclusive_to_exclusive_newest_first)
{
    for (int i = 0; i < 10; i++) {
        atomic_store(&now_ms, T0 + i * 1000);
        char t[8];
        snprintf(t, sizeof t, "t%d", i);
        append("ws-a", EE__AUDIT_KEY_UPDATED, t, NULL);
    }
    char extra[128];
    snprintf(extra, sizeof extra, "\"from\": %lld, \"to\": %lld", (long long)(T0 + 3000),
             (long long)(T0 + 7000));
    json_t *r = audit_all(engine, pa, extra, 50);
    cr_assert_eq(json_array_size(r), 4, "3, 4, 5, 6");
    cr_expect_str_eq(audit_str(json_array_get(r, 0), "target.id"), "t6");
    cr_expect_str_eq(audit_str(json_array_get(r, 3), "target.id"), "t3");
    json_decref(r);
    /* from after to: refused, named */
    char *out = NULL;
    cr_expect_eq(ee_audit_query(engine, pa, "{\"from\": 5, \"to\": 4}", &out), EE_EINVAL);
    ee_free(out);
}

Test(audit_log, an_action_prefix_or_a_whole_name_filters)
{
    append("ws-a", EE__AUDIT_KEY_ADDED, "k", NULL);
    append("ws-a", EE__AUDIT_KEY_VALIDATED, "k", NULL);
    append("ws-a", EE__AUDIT_EXEC_REQUESTED, "x", NULL);
    append("ws-a", EE__AUDIT_EXEC_FINISHED, "x", NULL);
    append("ws-a", EE__AUDIT_QUOTA_THRESHOLD, "o", NULL);
    cr_expect_eq(audit_count(engine, pa, "credentials.key."), 2);
    cr_expect_eq(audit_count(engine, pa, "credentials."), 2);
    cr_expect_eq(audit_count(engine, pa, "execution."), 2);
    cr_expect_eq(audit_count(engine, pa, "execution.finished"), 1);
    cr_expect_eq(audit_count(engine, pa, "quota"), 1);
    cr_expect_eq(audit_count(engine, pa, "billing."), 0);
    /* a prefix over many non-matching entries: small pages, still all */
    for (int i = 0; i < 60; i++)
        append("ws-a", EE__AUDIT_CATALOG_ENTRY_UPDATED, "w", NULL);
    append("ws-a", EE__AUDIT_KEY_DELETED, "k", NULL);
    json_t *r = audit_all(engine, pa, "\"action\": \"credentials.\"", 1);
    cr_expect_eq(json_array_size(r), 3);
    json_decref(r);
}

Test(audit_log, bad_queries_are_refused_with_the_member_named)
{
    static const char *const bad[] = {
        "{\"limit\": 0}",       "{\"limit\": 501}",      "{\"from\": -1}",
        "{\"to\": \"x\"}",      "{\"action\": \"\"}",    "{\"cursor\": 5}",
        "{\"workspace\": \"ws-b\"}", "[1]",              "{\"cursor\": \"zz\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = NULL;
        ee_status st = ee_audit_query(engine, pa, bad[i], &out);
        cr_expect_eq(st, EE_EINVAL, "%s: %s", bad[i], ee_status_name(st));
        cr_expect_not_null(out, "the error document");
        ee_free(out);
    }
    /* a cursor of another query (another time range, another workspace) */
    append("ws-a", EE__AUDIT_KEY_ADDED, "k", NULL);
    append("ws-a", EE__AUDIT_KEY_ADDED, "k", NULL);
    char *page = NULL;
    cr_assert_eq(ee_audit_query(engine, pa, "{\"limit\": 1}", &page), EE_OK);
    json_t *doc = json_loads(page, 0, NULL);
    ee_free(page);
    const char *cur = json_string_value(json_object_get(doc, "nextCursor"));
    cr_assert_not_null(cur);
    char q[512];
    snprintf(q, sizeof q, "{\"from\": 5, \"cursor\": \"%s\"}", cur);
    page = NULL;
    cr_expect_eq(ee_audit_query(engine, pa, q, &page), EE_EINVAL);
    ee_free(page);
    snprintf(q, sizeof q, "{\"cursor\": \"%s\"}", cur);
    page = NULL;
    cr_expect_eq(ee_audit_query(engine, pb, q, &page), EE_EINVAL);
    ee_free(page);
    page = NULL;
    cr_expect_eq(ee_audit_query(engine, pa, q, &page), EE_OK, "the same query goes on");
    ee_free(page);
    json_decref(doc);
    char *out = NULL;
    cr_expect_eq(ee_audit_query(NULL, pa, NULL, &out), EE_EINVAL);
    ee_free(out);
    cr_expect_eq(ee_audit_query(engine, pa, NULL, NULL), EE_EINVAL);
    cr_expect_eq(ee_audit_stats(engine, NULL), EE_EINVAL);
    cr_expect_eq(ee_audit_purge(NULL, 0, NULL), EE_EINVAL);
    cr_expect_eq(ee_audit_purge(engine, -1, NULL), EE_EINVAL);
}

/* ---- pages under concurrent appends ---------------------------------------------------- */

typedef struct {
    atomic_int stop;
    int appended;
} appender;

static void *append_loop(void *arg)
{
    appender *a = arg;
    while (!atomic_load(&a->stop) && a->appended < 2000) {
        append("ws-a", a->appended % 2 ? EE__AUDIT_EXEC_STARTED : EE__AUDIT_KEY_ADDED, "late",
               NULL);
        a->appended++;
    }
    return NULL;
}

static void pages_cover_everything_once(const char *extra, int limit, int expected)
{
    appender ap = {0};
    pthread_t tid;
    pthread_create(&tid, NULL, append_loop, &ap);
    json_t *all = audit_all(engine, pa, extra, limit);
    atomic_store(&ap.stop, 1);
    pthread_join(tid, NULL);
    /* every entry there before the walk exactly once; nothing twice */
    json_t *seen = json_object();
    int early = 0;
    size_t i;
    json_t *v;
    json_array_foreach(all, i, v) {
        const char *id = audit_str(v, "id");
        cr_assert_null(json_object_get(seen, id), "entry %s twice", id);
        json_object_set_new(seen, id, json_true());
        if (strcmp(audit_str(v, "target.id"), "early") == 0)
            early++;
    }
    cr_expect_eq(early, expected, "%d of the %d entries there before the walk", early,
                 expected);
    /* and newest first */
    for (i = 1; i < json_array_size(all); i++)
        cr_expect_geq(json_integer_value(json_object_get(json_array_get(all, i - 1), "time")),
                      json_integer_value(json_object_get(json_array_get(all, i), "time")));
    json_decref(seen);
    json_decref(all);
}

Test(audit_log, cursor_pages_cover_everything_exactly_once_while_others_append)
{
    atomic_store(&ticking, 1);
    for (int i = 0; i < 300; i++)
        append("ws-a", i % 3 == 0 ? EE__AUDIT_KEY_ADDED : EE__AUDIT_EXEC_FINISHED, "early", NULL);
    pages_cover_everything_once("", 7, 300);
    pages_cover_everything_once("\"action\": \"credentials.\"", 3, 100);
    pages_cover_everything_once("\"action\": \"execution.finished\"", 11, 200);
}

/* ---- retention ----------------------------------------------------------------------------- */

Test(audit_log, purge_deletes_entries_before_a_time_in_every_workspace)
{
    for (int d = 0; d < 5; d++) {
        atomic_store(&now_ms, T0 + d * DAY);
        append("ws-a", EE__AUDIT_KEY_ADDED, "k", NULL);
        append("ws-b", EE__AUDIT_KEY_ADDED, "k", NULL);
    }
    uint64_t n = 99;
    cr_assert_eq(ee_audit_purge(engine, T0 + 2 * DAY, &n), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(n, 4, "days 0 and 1 of both workspaces");
    json_t *a = audit_all(engine, pa, "", 50);
    cr_expect_eq(json_array_size(a), 3);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(a, 2), "time")), T0 + 2 * DAY);
    json_decref(a);
    cr_assert_eq(ee_audit_purge(engine, T0 + 2 * DAY, &n), EE_OK);
    cr_expect_eq(n, 0, "nothing twice");
    /* 0: AUDIT_RETENTION_DAYS (365 by default) from now: nothing that young goes */
    cr_assert_eq(ee_audit_purge(engine, 0, &n), EE_OK);
    cr_expect_eq(n, 0);
    atomic_store(&now_ms, T0 + 368 * DAY);
    cr_assert_eq(ee_audit_purge(engine, 0, &n), EE_OK);
    cr_expect_eq(n, 2, "day 2 of both workspaces is more than 365 days old on day 368");
}

Test(audit_log_keep, retention_days_zero_keeps_everything, .fini = teardown, .timeout = 60)
{
    setup_with("0");
    append("ws-a", EE__AUDIT_KEY_ADDED, "k", NULL);
    atomic_store(&now_ms, T0 + 40000 * DAY);
    uint64_t n = 99;
    cr_assert_eq(ee_audit_purge(engine, 0, &n), EE_OK);
    cr_expect_eq(n, 0);
    cr_expect_eq(audit_count(engine, pa, "credentials.key.added"), 1);
    /* an explicit time still applies */
    cr_assert_eq(ee_audit_purge(engine, T0 + 1, &n), EE_OK);
    cr_expect_eq(n, 1);
}

/* ---- bounds and failures ------------------------------------------------------------------ */

Test(audit_log, a_large_detail_or_target_is_bounded_not_stored_whole)
{
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    append("ws-a", EE__AUDIT_KEY_ADDED, big, json_pack("{s:s}", "note", big));
    append("ws-a", EE__AUDIT_KEY_DELETED, "k", json_pack("{s:s}", "note", "small"));
    json_t *e = audit_one(engine, pa, "credentials.key.added");
    json_t *detail = json_object_get(e, "detail");
    cr_expect(json_is_true(json_object_get(detail, "truncated")));
    cr_expect_gt(json_integer_value(json_object_get(detail, "bytes")), EE_AUDIT_DETAIL_MAX);
    cr_expect_null(json_object_get(detail, "note"));
    cr_expect_eq(strlen(audit_str(e, "target.id")), EE_STORAGE_VALUE_MAX);
    json_decref(e);
    e = audit_one(engine, pa, "credentials.key.deleted");
    cr_expect_str_eq(audit_str(e, "detail.note"), "small");
    json_decref(e);
    cr_expect_eq(audit_stat(engine, "truncatedDetails"), 1);
}

Test(audit_log, a_failed_append_is_counted_and_leaves_the_callers_error_alone)
{
    ee__error(EE_EQUOTA, "the caller's own error");
    /* a workspace id the storage refuses: the entry cannot be written */
    char ws[200];
    memset(ws, 'w', sizeof ws - 1);
    ws[sizeof ws - 1] = '\0';
    ee__audit_append(engine, &(ee__audit_entry){.action = EE__AUDIT_KEY_ADDED,
                                                .workspace = ws,
                                                .actor = "u",
                                                .outcome = EE__AUDIT_OK});
    cr_expect_eq(ee_error_last_status(), EE_EQUOTA);
    cr_expect_str_eq(ee_error_last_message(), "the caller's own error");
    cr_expect_eq(audit_stat(engine, "failed"), 1);
    cr_expect_eq(audit_stat(engine, "appended"), 0);
    /* a NULL engine or entry does nothing */
    ee__audit_append(NULL, NULL);
    ee__audit_append(engine, NULL);
    cr_expect_eq(audit_stat(engine, "failed"), 1);
}
