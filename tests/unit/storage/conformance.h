/*
 * The storage conformance suite, written once. A test file defines
 *     #define CONF_SUITE <name>
 *     static ee_storage *conf_open(void);     a fresh, empty store
 *     static void conf_cleanup(void);         remove what conf_open made
 * and includes this header; every test below then runs against that
 * backend (tests/unit/storage/{memory,sqlite}.c,
 * tests/integration/storage_postgres.c).
 */
#ifndef EE_TEST_STORAGE_CONFORMANCE_H
#define EE_TEST_STORAGE_CONFORMANCE_H

#include <bson/bson.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "claim_helpers.h"
#include "execengine/storage.h"

static ee_storage *S;

static void conf_setup(void)
{
    S = conf_open();
    cr_assert_not_null(S, "conf_open failed: %s", ee_error_last_message());
}

static void conf_teardown(void)
{
    ee_storage_free(S);
    S = NULL;
    conf_cleanup();
}

TestSuite(CONF_SUITE, .init = conf_setup, .fini = conf_teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------ */

#define T0 1700000000000LL /* a fixed "now" in ms */

/* An execution document of workspace ws. */
static bson_t *exec_doc(const char *ws, const char *user, const char *status, int64_t t)
{
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "workspaceId", ws);
    BSON_APPEND_UTF8(d, "userId", user);
    BSON_APPEND_UTF8(d, "workflowCatalogId", "wf-1");
    BSON_APPEND_UTF8(d, "status", status);
    BSON_APPEND_DATE_TIME(d, "createdAt", t);
    BSON_APPEND_INT64(d, "executionTimeMs", 42);
    return d;
}

static void insert_ok(const char *coll, const char *ws, bson_t *d, char id[25])
{
    ee_status st = ee_storage_insert(S, coll, ws, bson_get_data(d), d->len, id);
    cr_assert_eq(st, EE_OK, "insert: %s %s", ee_status_name(st), ee_error_last_message());
    bson_destroy(d);
}

static uint64_t count_of(const char *coll, const char *ws)
{
    uint64_t n = 0;
    ee_status st = ee_storage_count(S, coll, ws, NULL, &n);
    cr_assert_eq(st, EE_OK, "count: %s", ee_error_last_message());
    return n;
}

/* Read a string field of a stored document ("" if absent). */
static void get_field(const char *coll, const char *ws, const char *id, const char *field,
                      char *out, size_t cap, int64_t *rev)
{
    uint8_t *data = NULL;
    size_t len = 0;
    ee_status st = ee_storage_get(S, coll, ws, id, &data, &len, rev);
    cr_assert_eq(st, EE_OK, "get %s: %s %s", id, ee_status_name(st), ee_error_last_message());
    bson_t b;
    bson_iter_t it;
    cr_assert(bson_init_static(&b, data, len));
    out[0] = '\0';
    if (bson_iter_init(&it, &b) && bson_iter_find_descendant(&it, field, &it)) {
        if (BSON_ITER_HOLDS_UTF8(&it))
            snprintf(out, cap, "%s", bson_iter_utf8(&it, NULL));
        else if (BSON_ITER_HOLDS_INT64(&it))
            snprintf(out, cap, "%lld", (long long)bson_iter_int64(&it));
        else if (BSON_ITER_HOLDS_INT32(&it))
            snprintf(out, cap, "%d", bson_iter_int32(&it));
        else if (BSON_ITER_HOLDS_OID(&it))
            bson_oid_to_string(bson_iter_oid(&it), out);
    }
    ee_free(data);
}

typedef struct collected {
    int n;
    char ids[64][25];
    int64_t times[64];
    char status[64][16];
} collected;

static int collect(const ee_storage_row *row, void *payload)
{
    collected *c = payload;
    cr_assert_lt(c->n, 64);
    bson_oid_t oid;
    memcpy(oid.bytes, row->id, 12);
    bson_oid_to_string(&oid, c->ids[c->n]);
    c->times[c->n] = row->time;
    bson_t b;
    bson_iter_t it;
    cr_assert(bson_init_static(&b, row->data, row->len));
    c->status[c->n][0] = '\0';
    if (bson_iter_init_find(&it, &b, "status") && BSON_ITER_HOLDS_UTF8(&it))
        snprintf(c->status[c->n], 16, "%s", bson_iter_utf8(&it, NULL));
    c->n++;
    return 0;
}

/* ---- documents ---------------------------------------------------------------- */

Test(CONF_SUITE, insert_get_round_trip)
{
    char id[25], v[64];
    int64_t rev = 0;
    insert_ok("workflowExecutions", "ws-a", exec_doc("ws-a", "u1", "pending", T0), id);
    cr_expect_eq(strlen(id), 24);
    get_field("workflowExecutions", "ws-a", id, "_id", v, sizeof v, &rev);
    cr_expect_str_eq(v, id, "the generated _id is stored in the document");
    cr_expect_eq(rev, 1);
    get_field("workflowExecutions", "ws-a", id, "status", v, sizeof v, NULL);
    cr_expect_str_eq(v, "pending");
    get_field("workflowExecutions", "ws-a", id, "executionTimeMs", v, sizeof v, NULL);
    cr_expect_str_eq(v, "42");
    cr_expect_eq(count_of("workflowExecutions", "ws-a"), 1);
}

Test(CONF_SUITE, insert_keeps_given_id_and_refuses_duplicates)
{
    char want[25], id[25];
    cr_assert_eq(ee_storage_id_new(want), EE_OK);
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, want);
    bson_t *d = exec_doc("ws-a", "u1", "pending", T0);
    bson_t *withid = bson_new();
    BSON_APPEND_OID(withid, "_id", &oid);
    bson_concat(withid, d);
    bson_destroy(d);
    cr_assert_eq(ee_storage_insert(S, "workflowExecutions", "ws-a", bson_get_data(withid),
                                   withid->len, id), EE_OK);
    cr_expect_str_eq(id, want);
    cr_expect_eq(ee_storage_insert(S, "workflowExecutions", "ws-a", bson_get_data(withid),
                                   withid->len, NULL), EE_EEXISTS);
    bson_destroy(withid);
    cr_expect_eq(count_of("workflowExecutions", "ws-a"), 1);
}

Test(CONF_SUITE, workspaces_are_isolated)
{
    char id[25];
    insert_ok("workflowExecutions", "ws-a", exec_doc("ws-a", "u1", "pending", T0), id);
    uint8_t *data = NULL;
    size_t len = 0;
    cr_expect_eq(ee_storage_get(S, "workflowExecutions", "ws-b", id, &data, &len, NULL),
                 EE_ENOTFOUND);
    cr_expect_null(data);
    cr_expect_eq(ee_storage_delete(S, "workflowExecutions", "ws-b", id), EE_ENOTFOUND);
    bson_t *d = exec_doc("ws-b", "u1", "running", T0);
    cr_expect_eq(ee_storage_replace(S, "workflowExecutions", "ws-b", id, 1, bson_get_data(d),
                                    d->len, NULL), EE_ENOTFOUND);
    bson_destroy(d);
    cr_expect_eq(count_of("workflowExecutions", "ws-b"), 0);
    collected c = {0};
    cr_assert_eq(ee_storage_query(S, "workflowExecutions", "ws-b", NULL, collect, &c, NULL),
                 EE_OK);
    cr_expect_eq(c.n, 0);
    /* The document's workspaceId must match the call's. */
    d = exec_doc("ws-b", "u1", "pending", T0);
    cr_expect_eq(ee_storage_insert(S, "workflowExecutions", "ws-a", bson_get_data(d), d->len,
                                   NULL), EE_EINVAL);
    bson_destroy(d);
    cr_expect_eq(count_of("workflowExecutions", "ws-a"), 1);
}

Test(CONF_SUITE, replace_is_optimistic)
{
    char id[25], v[32];
    int64_t rev = 0;
    insert_ok("workflowExecutions", "ws-a", exec_doc("ws-a", "u1", "pending", T0), id);
    bson_t *d = exec_doc("ws-a", "u1", "running", T0);
    cr_assert_eq(ee_storage_replace(S, "workflowExecutions", "ws-a", id, 1, bson_get_data(d),
                                    d->len, &rev), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(rev, 2);
    /* A writer that read revision 1 is refused: stale, not "not found". */
    bson_t *e = exec_doc("ws-a", "u1", "failed", T0);
    cr_expect_eq(ee_storage_replace(S, "workflowExecutions", "ws-a", id, 1, bson_get_data(e),
                                    e->len, NULL), EE_ECONFLICT);
    get_field("workflowExecutions", "ws-a", id, "status", v, sizeof v, &rev);
    cr_expect_str_eq(v, "running");
    cr_expect_eq(rev, 2);
    char other[25];
    ee_storage_id_new(other);
    cr_expect_eq(ee_storage_replace(S, "workflowExecutions", "ws-a", other, 1, bson_get_data(e),
                                    e->len, NULL), EE_ENOTFOUND);
    bson_destroy(d);
    bson_destroy(e);
    /* The indexed value moved with the document. */
    ee_storage_eq eq = {"status", "running"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(S, "workflowExecutions", "ws-a", &q, &n), EE_OK);
    cr_expect_eq(n, 1);
    eq.value = "pending";
    cr_assert_eq(ee_storage_count(S, "workflowExecutions", "ws-a", &q, &n), EE_OK);
    cr_expect_eq(n, 0);
}

/* Count workflowExecutions of ws-a where `field` is `value`, with the time
 * range [from, to) when to > from. */
static uint64_t count_where(const char *field, const char *value, int64_t from, int64_t to)
{
    ee_storage_eq eq = {field, value};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    if (to > from) {
        q.flags = EE_STORAGE_QUERY_FROM | EE_STORAGE_QUERY_TO;
        q.time_from = from;
        q.time_to = to;
    }
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(S, "workflowExecutions", "ws-a", &q, &n), EE_OK, "%s",
                 ee_error_last_message());
    return n;
}

static void replace_ok(const char *id, int64_t *rev, bson_t *d)
{
    cr_assert_eq(ee_storage_replace(S, "workflowExecutions", "ws-a", id, *rev, bson_get_data(d),
                                    d->len, rev), EE_OK, "%s", ee_error_last_message());
    bson_destroy(d);
}

/* A replace moves exactly the indexed values it changes: a body-only
 * change keeps every one, a removed field leaves its index, a new time
 * moves the document in time, and a replace onto another document's unique
 * key changes nothing. (SQLite writes only the changed columns.) */
Test(CONF_SUITE, a_replace_moves_exactly_the_indexed_values_it_changes)
{
    char id[25], other[25], v[32];
    int64_t rev = 1, orev = 0;
    bson_t *d = exec_doc("ws-a", "u1", "running", T0);
    BSON_APPEND_UTF8(d, "n8nExecutionId", "n-1");
    BSON_APPEND_UTF8(d, "idempotencyKey", "k-1");
    insert_ok("workflowExecutions", "ws-a", d, id);
    d = exec_doc("ws-a", "u2", "pending", T0);
    BSON_APPEND_UTF8(d, "idempotencyKey", "k-2");
    insert_ok("workflowExecutions", "ws-a", d, other);

    /* the body only */
    d = exec_doc("ws-a", "u1", "running", T0);
    BSON_APPEND_UTF8(d, "n8nExecutionId", "n-1");
    BSON_APPEND_UTF8(d, "idempotencyKey", "k-1");
    BSON_APPEND_UTF8(d, "note", "the body changed");
    replace_ok(id, &rev, d);
    cr_expect_eq(rev, 2);
    cr_expect_eq(count_where("userId", "u1", 0, 0), 1);
    cr_expect_eq(count_where("status", "running", 0, 0), 1);
    cr_expect_eq(count_where("n8nExecutionId", "n-1", 0, 0), 1);
    cr_expect_eq(count_where("idempotencyKey", "k-1", 0, 0), 1);
    cr_expect_eq(count_where("workflowCatalogId", "wf-1", T0, T0 + 1), 2);
    get_field("workflowExecutions", "ws-a", id, "note", v, sizeof v, NULL);
    cr_expect_str_eq(v, "the body changed");

    /* a field removed, another changed, the time moved */
    d = exec_doc("ws-a", "u1", "completed", T0 + 50);
    BSON_APPEND_UTF8(d, "idempotencyKey", "k-1");
    replace_ok(id, &rev, d);
    cr_expect_eq(count_where("n8nExecutionId", "n-1", 0, 0), 0, "the removed value stayed");
    cr_expect_eq(count_where("status", "running", 0, 0), 0);
    cr_expect_eq(count_where("status", "completed", 0, 0), 1);
    cr_expect_eq(count_where("userId", "u1", T0, T0 + 1), 0, "the old time stayed");
    cr_expect_eq(count_where("userId", "u1", T0 + 50, T0 + 51), 1);
    cr_expect_eq(count_where("idempotencyKey", "k-1", 0, 0), 1);

    /* onto the other document's unique key: refused, nothing changed */
    d = exec_doc("ws-a", "u1", "failed", T0 + 60);
    BSON_APPEND_UTF8(d, "idempotencyKey", "k-2");
    cr_expect_eq(ee_storage_replace(S, "workflowExecutions", "ws-a", id, rev, bson_get_data(d),
                                    d->len, NULL), EE_EEXISTS);
    bson_destroy(d);
    get_field("workflowExecutions", "ws-a", id, "status", v, sizeof v, &orev);
    cr_expect_str_eq(v, "completed");
    cr_expect_eq(orev, rev);
    cr_expect_eq(count_where("idempotencyKey", "k-2", 0, 0), 1);
    cr_expect_eq(count_where("status", "failed", 0, 0), 0);

    /* the removed field added again, with a new value */
    d = exec_doc("ws-a", "u1", "completed", T0 + 50);
    BSON_APPEND_UTF8(d, "idempotencyKey", "k-1");
    BSON_APPEND_UTF8(d, "n8nExecutionId", "n-2");
    replace_ok(id, &rev, d);
    cr_expect_eq(count_where("n8nExecutionId", "n-2", 0, 0), 1);
    cr_expect_eq(rev, 4);
}

Test(CONF_SUITE, delete_then_not_found)
{
    char id[25];
    insert_ok("workflowExecutions", "ws-a", exec_doc("ws-a", "u1", "pending", T0), id);
    cr_expect_eq(ee_storage_delete(S, "workflowExecutions", "ws-a", id), EE_OK);
    uint8_t *data;
    size_t len;
    cr_expect_eq(ee_storage_get(S, "workflowExecutions", "ws-a", id, &data, &len, NULL),
                 EE_ENOTFOUND);
    cr_expect_eq(ee_storage_delete(S, "workflowExecutions", "ws-a", id), EE_ENOTFOUND);
}

Test(CONF_SUITE, global_collections_take_no_workspace)
{
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "n8nWorkflowId", "n8n-7");
    BSON_APPEND_UTF8(d, "name", "Lead enrichment");
    BSON_APPEND_BOOL(d, "isActive", true);
    BSON_APPEND_DATE_TIME(d, "createdAt", T0);
    cr_expect_eq(ee_storage_insert(S, "workflowCatalog", "ws-a", bson_get_data(d), d->len, NULL),
                 EE_EINVAL);
    char id[25], v[64];
    insert_ok("workflowCatalog", NULL, d, id);
    get_field("workflowCatalog", "", id, "name", v, sizeof v, NULL);
    cr_expect_str_eq(v, "Lead enrichment");
    ee_storage_eq eq = {"isActive", "true"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(S, "workflowCatalog", NULL, &q, &n), EE_OK);
    cr_expect_eq(n, 1);
    /* n8nWorkflowId is the catalog's unique key. */
    d = bson_new();
    BSON_APPEND_UTF8(d, "n8nWorkflowId", "n8n-7");
    BSON_APPEND_DATE_TIME(d, "createdAt", T0);
    cr_expect_eq(ee_storage_insert(S, "workflowCatalog", NULL, bson_get_data(d), d->len, NULL),
                 EE_EEXISTS);
    bson_destroy(d);
    /* A per-workspace collection needs one. */
    d = exec_doc("x", "u", "pending", T0);
    cr_expect_eq(ee_storage_insert(S, "workflowExecutions", NULL, bson_get_data(d), d->len,
                                   NULL), EE_EINVAL);
    bson_destroy(d);
}

Test(CONF_SUITE, platform_credentials_live_in_workspace_platform)
{
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "workspaceId", "platform");
    BSON_APPEND_UTF8(d, "credentialName", "serperApi");
    BSON_APPEND_UTF8(d, "encryptedData", "...");
    BSON_APPEND_DATE_TIME(d, "createdAt", T0);
    char id[25];
    insert_ok("credentials", "platform", d, id);
    ee_storage_eq eq = {"credentialName", "serperApi"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    collected c = {0};
    cr_assert_eq(ee_storage_query(S, "credentials", "platform", &q, collect, &c, NULL), EE_OK);
    cr_expect_eq(c.n, 1);
    c.n = 0;
    cr_assert_eq(ee_storage_query(S, "credentials", "user-workspace-123", &q, collect, &c, NULL),
                 EE_OK);
    cr_expect_eq(c.n, 0);
}

/* ---- queries ------------------------------------------------------------------- */

/* 10 executions of u1 (times T0+0..9, status alternating) and 3 of u2. */
static void seed_executions(char ids[10][25])
{
    for (int i = 0; i < 10; i++)
        insert_ok("workflowExecutions", "ws-a",
                  exec_doc("ws-a", "u1", i % 2 ? "completed" : "failed", T0 + i), ids[i]);
    for (int i = 0; i < 3; i++)
        insert_ok("workflowExecutions", "ws-a", exec_doc("ws-a", "u2", "completed", T0 + i),
                  NULL);
    insert_ok("workflowExecutions", "ws-b", exec_doc("ws-b", "u1", "completed", T0), NULL);
}

Test(CONF_SUITE, query_equality_range_and_order)
{
    char ids[10][25];
    seed_executions(ids);
    ee_storage_eq eq[2] = {{"userId", "u1"}, {"status", "completed"}};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = eq, .n_eq = 2};
    collected c = {0};
    char *next = NULL;
    cr_assert_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, &next),
                 EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(c.n, 5);
    cr_expect_null(next);
    for (int i = 0; i < 5; i++) { /* newest first by default */
        cr_expect_eq(c.times[i], T0 + 9 - 2 * i);
        cr_expect_str_eq(c.status[i], "completed");
        cr_expect_str_eq(c.ids[i], ids[9 - 2 * i]);
    }
    q.order = EE_STORAGE_ORDER_TIME_ASC;
    q.n_eq = 1;
    q.flags = EE_STORAGE_QUERY_FROM | EE_STORAGE_QUERY_TO;
    q.time_from = T0 + 2;
    q.time_to = T0 + 5; /* exclusive */
    c.n = 0;
    cr_assert_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_OK);
    cr_assert_eq(c.n, 3);
    cr_expect_str_eq(c.ids[0], ids[2]);
    cr_expect_str_eq(c.ids[2], ids[4]);
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(S, "workflowExecutions", "ws-a", &q, &n), EE_OK);
    cr_expect_eq(n, 3);
    /* Ordered by id: ids are ObjectIds, so ascending ids are insertion order. */
    q.order = EE_STORAGE_ORDER_ID_DESC;
    q.flags = 0;
    c.n = 0;
    cr_assert_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_OK);
    cr_assert_eq(c.n, 10);
    for (int i = 1; i < 10; i++)
        cr_expect_gt(strcmp(c.ids[i - 1], c.ids[i]), 0);
}

static void page_all(int order, int limit, collected *all)
{
    ee_storage_eq eq = {"userId", "u1"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                               .order = order, .limit = (size_t)limit};
    char *cursor = NULL;
    int pages = 0;
    all->n = 0;
    do {
        q.cursor = cursor;
        char *next = NULL;
        int before = all->n;
        ee_status st = ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, all, &next);
        cr_assert_eq(st, EE_OK, "page %d: %s", pages, ee_error_last_message());
        cr_assert_leq(all->n - before, limit);
        free(cursor);
        cursor = next;
        pages++;
        cr_assert_lt(pages, 20, "paging does not end");
    } while (cursor != NULL);
}

Test(CONF_SUITE, pages_cover_every_document_once_in_every_order)
{
    char ids[10][25];
    seed_executions(ids);
    /* Two documents with the same time: ties are broken by id. */
    insert_ok("workflowExecutions", "ws-a", exec_doc("ws-a", "u1", "pending", T0 + 4), NULL);
    int orders[] = {EE_STORAGE_ORDER_TIME_DESC, EE_STORAGE_ORDER_TIME_ASC,
                    EE_STORAGE_ORDER_ID_ASC, EE_STORAGE_ORDER_ID_DESC};
    for (int o = 0; o < 4; o++) {
        collected one = {0}, paged = {0};
        page_all(orders[o], 50, &one);
        cr_assert_eq(one.n, 11);
        page_all(orders[o], 3, &paged);
        cr_assert_eq(paged.n, 11, "order %d: %d documents over pages", orders[o], paged.n);
        for (int i = 0; i < 11; i++)
            cr_expect_str_eq(paged.ids[i], one.ids[i], "order %d position %d", orders[o], i);
    }
}

Test(CONF_SUITE, cursors_are_validated)
{
    char ids[10][25];
    seed_executions(ids);
    ee_storage_eq eq = {"userId", "u1"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                               .limit = 2};
    collected c = {0};
    char *next = NULL;
    cr_assert_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, &next),
                 EE_OK);
    cr_assert_not_null(next);
    const char *bad[] = {"", "zz", "not a cursor at all", "0123456789abcdef"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        q.cursor = bad[i];
        cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                     EE_EINVAL, "cursor '%s'", bad[i]);
    }
    char forged[200];
    memset(forged, 'a', sizeof forged - 1);
    forged[sizeof forged - 1] = '\0';
    q.cursor = forged;
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_ETOOBIG);
    /* Flip one byte of the fingerprint: refused. */
    char tampered[128];
    snprintf(tampered, sizeof tampered, "%s", next);
    size_t n = strlen(tampered);
    tampered[n - 1] = tampered[n - 1] == '0' ? '1' : '0';
    q.cursor = tampered;
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_EINVAL);
    /* A valid cursor of another query (other user, other workspace). */
    q.cursor = next;
    eq.value = "u2";
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_EINVAL);
    eq.value = "u1";
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-b", &q, collect, &c, NULL),
                 EE_EINVAL);
    int before = c.n;
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_OK);
    cr_expect_eq(c.n, before + 2);
    free(next);
}

Test(CONF_SUITE, query_input_is_checked)
{
    collected c = {0};
    ee_storage_eq eq = {"executionTimeMs", "42"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_EINVAL, "a field that is not indexed");
    eq.field = "status";
    q.order = 9;
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_EINVAL);
    q.order = 0;
    q.limit = EE_STORAGE_LIMIT_MAX + 1;
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_ETOOBIG);
    q.limit = 0;
    q.version = 99;
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", &q, collect, &c, NULL),
                 EE_EVERSION);
}

static int stop_at_two(const ee_storage_row *row, void *payload)
{
    (void)row;
    return ++*(int *)payload == 2;
}

Test(CONF_SUITE, callback_can_stop_a_query)
{
    char ids[10][25];
    seed_executions(ids);
    int seen = 0;
    cr_expect_eq(ee_storage_query(S, "workflowExecutions", "ws-a", NULL, stop_at_two, &seen,
                                  NULL), EE_ECANCELLED);
    cr_expect_eq(seen, 2);
}

/* ---- increments and retention ---------------------------------------------------- */

static const ee_storage_eq usage_key[3] = {
    {"userId", "u1"}, {"workflowCatalogId", "wf-1"}, {"period", "2025-10"}};

Test(CONF_SUITE, increment_upserts_and_adds)
{
    ee_storage_inc inc[3] = {{"executionsCount", 1}, {"tokensUsed", 1500},
                             {"usage.totalCost", 25}};
    int64_t totals[3] = {0};
    cr_assert_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, inc, 3, T0,
                                      totals), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(totals[0], 1);
    cr_expect_eq(totals[1], 1500);
    cr_expect_eq(totals[2], 25);
    inc[1].delta = 500;
    cr_assert_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, inc, 3,
                                      T0 + 5, totals), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(totals[0], 2);
    cr_expect_eq(totals[1], 2000);
    cr_expect_eq(totals[2], 50);
    cr_expect_eq(count_of("userWorkflowUsage", "ws-a"), 1);
    /* The row is an ordinary document: found by its key fields. */
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = usage_key, .n_eq = 3};
    collected c = {0};
    cr_assert_eq(ee_storage_query(S, "userWorkflowUsage", "ws-a", &q, collect, &c, NULL), EE_OK);
    cr_assert_eq(c.n, 1);
    char v[32];
    int64_t rev;
    get_field("userWorkflowUsage", "ws-a", c.ids[0], "tokensUsed", v, sizeof v, &rev);
    cr_expect_str_eq(v, "2000");
    cr_expect_eq(rev, 2);
    get_field("userWorkflowUsage", "ws-a", c.ids[0], "usage.totalCost", v, sizeof v, NULL);
    cr_expect_str_eq(v, "50");
    get_field("userWorkflowUsage", "ws-a", c.ids[0], "workspaceId", v, sizeof v, NULL);
    cr_expect_str_eq(v, "ws-a");
    /* Another workspace has its own row. */
    cr_assert_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-b", usage_key, 3, inc, 1, T0,
                                      totals), EE_OK);
    cr_expect_eq(totals[0], 1);
}

Test(CONF_SUITE, increment_input_is_checked)
{
    ee_storage_inc inc = {"executionsCount", 1};
    uint64_t before = count_of("userWorkflowUsage", "ws-a");
    cr_expect_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 2, &inc, 1, T0,
                                      NULL), EE_EINVAL, "partial key");
    ee_storage_inc on_key = {"period", 1};
    cr_expect_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, &on_key, 1,
                                      T0, NULL), EE_EINVAL, "indexed field");
    ee_storage_inc twice[2] = {{"a", 1}, {"a.b", 1}};
    cr_expect_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, twice, 2, T0,
                                      NULL), EE_EINVAL, "overlapping fields");
    cr_expect_eq(ee_storage_increment(S, "auditLog", "ws-a", usage_key, 3, &inc, 1, T0, NULL),
                 EE_ENOTSUPPORTED, "no unique key");
    cr_expect_eq(count_of("userWorkflowUsage", "ws-a"), before);
    /* A stored field that is not an integer. */
    ee_storage_inc ok = {"note", 1};
    cr_assert_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, &ok, 1, T0,
                                      NULL), EE_OK);
    ee_storage_inc deep = {"note.x", 1};
    cr_expect_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, &deep, 1, T0,
                                      NULL), EE_EINVAL);
    ee_storage_inc big = {"note", INT64_MAX};
    cr_expect_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, &big, 1, T0,
                                      NULL), EE_EINVAL, "overflow");
}

Test(CONF_SUITE, unique_key_is_enforced)
{
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "workspaceId", "ws-a");
    BSON_APPEND_UTF8(d, "userId", "u1");
    BSON_APPEND_UTF8(d, "workflowCatalogId", "wf-1");
    BSON_APPEND_UTF8(d, "period", "2025-10");
    BSON_APPEND_DATE_TIME(d, "createdAt", T0);
    cr_assert_eq(ee_storage_insert(S, "userWorkflowUsage", "ws-a", bson_get_data(d), d->len,
                                   NULL), EE_OK);
    cr_expect_eq(ee_storage_insert(S, "userWorkflowUsage", "ws-a", bson_get_data(d), d->len,
                                   NULL), EE_EEXISTS);
    bson_destroy(d);
    ee_storage_inc inc = {"executionsCount", 3};
    int64_t total = 0;
    cr_assert_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, &inc, 1, T0,
                                      &total), EE_OK);
    cr_expect_eq(total, 3, "the inserted row is the one incremented");
    cr_expect_eq(count_of("userWorkflowUsage", "ws-a"), 1);
}

/* A filter that fixes a collection's whole unique key (the memory backend
 * answers it from its key map, SQL backends from the unique index): the
 * same one document, or none, with every other part of the filter applied. */
Test(CONF_SUITE, a_query_on_the_whole_unique_key_applies_the_rest_of_the_filter)
{
    ee_storage_inc inc = {"executionsCount", 2};
    cr_assert_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, &inc, 1,
                                      T0 + 10, NULL), EE_OK, "%s", ee_error_last_message());
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = usage_key, .n_eq = 3};
    collected c = {0};
    uint64_t n = 0;
    cr_assert_eq(ee_storage_query(S, "userWorkflowUsage", "ws-a", &q, collect, &c, NULL), EE_OK);
    cr_expect_eq(c.n, 1);
    cr_assert_eq(ee_storage_count(S, "userWorkflowUsage", "ws-a", &q, &n), EE_OK);
    cr_expect_eq(n, 1);
    /* another workspace: none */
    c.n = 0;
    cr_assert_eq(ee_storage_query(S, "userWorkflowUsage", "ws-b", &q, collect, &c, NULL), EE_OK);
    cr_expect_eq(c.n, 0);
    cr_assert_eq(ee_storage_count(S, "userWorkflowUsage", "ws-b", &q, &n), EE_OK);
    cr_expect_eq(n, 0);
    /* a time range that leaves it out, then one that holds it */
    q.flags = EE_STORAGE_QUERY_FROM | EE_STORAGE_QUERY_TO;
    q.time_from = T0 + 11;
    q.time_to = T0 + 20;
    c.n = 0;
    cr_assert_eq(ee_storage_query(S, "userWorkflowUsage", "ws-a", &q, collect, &c, NULL), EE_OK);
    cr_expect_eq(c.n, 0);
    cr_assert_eq(ee_storage_count(S, "userWorkflowUsage", "ws-a", &q, &n), EE_OK);
    cr_expect_eq(n, 0);
    q.time_from = T0 + 10;
    c.n = 0;
    cr_assert_eq(ee_storage_query(S, "userWorkflowUsage", "ws-a", &q, collect, &c, NULL), EE_OK);
    cr_expect_eq(c.n, 1);
    /* a page of one: no next page, and a cursor past it finds nothing */
    q.flags = 0;
    q.limit = 1;
    q.order = EE_STORAGE_ORDER_ID_ASC;
    char *next = NULL;
    c.n = 0;
    cr_assert_eq(ee_storage_query(S, "userWorkflowUsage", "ws-a", &q, collect, &c, &next), EE_OK);
    cr_expect_eq(c.n, 1);
    cr_expect_null(next);
    /* a value that differs in one unique field */
    ee_storage_eq other[3];
    memcpy(other, usage_key, sizeof other);
    other[2].value = "1999-01";
    q.eq = other;
    q.limit = 0;
    c.n = 0;
    cr_assert_eq(ee_storage_query(S, "userWorkflowUsage", "ws-a", &q, collect, &c, NULL), EE_OK);
    cr_expect_eq(c.n, 0);
    /* a global collection's unique key */
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "n8nWorkflowId", "n8n-unique");
    BSON_APPEND_DATE_TIME(d, "createdAt", T0);
    char id[25];
    insert_ok("workflowCatalog", NULL, d, id);
    ee_storage_eq by = {"n8nWorkflowId", "n8n-unique"};
    ee_storage_query_spec g = {.version = EE_STORAGE_QUERY_VERSION, .eq = &by, .n_eq = 1};
    c.n = 0;
    cr_assert_eq(ee_storage_query(S, "workflowCatalog", NULL, &g, collect, &c, NULL), EE_OK);
    cr_assert_eq(c.n, 1);
    cr_expect_str_eq(c.ids[0], id);
    cr_assert_eq(ee_storage_delete(S, "workflowCatalog", NULL, id), EE_OK);
    cr_assert_eq(ee_storage_count(S, "workflowCatalog", NULL, &g, &n), EE_OK);
    cr_expect_eq(n, 0);
}

Test(CONF_SUITE, delete_range_is_retention)
{
    char ids[10][25];
    seed_executions(ids); /* ws-a: u1 T0..T0+9, u2 T0..T0+2; ws-b: one at T0 */
    uint64_t n = 0;
    cr_expect_eq(ee_storage_delete_range(S, "workflowExecutions", "ws-a", T0 + 5, T0, &n),
                 EE_EINVAL);
    cr_assert_eq(ee_storage_delete_range(S, "workflowExecutions", "ws-a", 0, T0 + 2, &n), EE_OK);
    cr_expect_eq(n, 4); /* u1 T0, T0+1; u2 T0, T0+1 */
    cr_expect_eq(count_of("workflowExecutions", "ws-a"), 9);
    cr_expect_eq(count_of("workflowExecutions", "ws-b"), 1);
    cr_assert_eq(ee_storage_delete_range(S, "workflowExecutions", NULL, 0, T0 + 3, &n), EE_OK);
    cr_expect_eq(n, 3); /* u1 T0+2, u2 T0+2, ws-b T0 */
    cr_expect_eq(count_of("workflowExecutions", "ws-b"), 0);
    cr_expect_eq(count_of("workflowExecutions", "ws-a"), 7);
}

/* ---- bad input leaves the store unchanged ------------------------------------------ */

Test(CONF_SUITE, bad_input_has_distinct_statuses_and_changes_nothing)
{
    char id[25];
    insert_ok("workflowExecutions", "ws-a", exec_doc("ws-a", "u1", "pending", T0), id);
    uint64_t before = count_of("workflowExecutions", "ws-a");

    bson_t *d = exec_doc("ws-a", "u1", "pending", T0);
    uint8_t bad[512];
    memcpy(bad, bson_get_data(d), d->len);
    size_t len = d->len;
    bson_destroy(d);
    bad[4] = 0x20;  /* an element type that does not exist */
    ee_status corrupt = ee_storage_insert(S, "workflowExecutions", "ws-a", bad, len, NULL);
    char m1[256];
    snprintf(m1, sizeof m1, "%s", ee_error_last_message());
    bad[4] = 0x02;
    bad[0] = (uint8_t)(bad[0] + 9); /* length header that lies */
    cr_expect_eq(ee_storage_insert(S, "workflowExecutions", "ws-a", bad, len, NULL), EE_EPARSE);

    d = exec_doc("ws-a", "u1", "pending", T0);
    ee_status unknown = ee_storage_insert(S, "workflowExecutionz", "ws-a", bson_get_data(d),
                                          d->len, NULL);
    char m2[256];
    snprintf(m2, sizeof m2, "%s", ee_error_last_message());
    bson_destroy(d);

    uint8_t *data = NULL;
    size_t dlen = 0;
    char longid[40];
    snprintf(longid, sizeof longid, "%s00", id);
    ee_status too_long = ee_storage_get(S, "workflowExecutions", "ws-a", longid, &data, &dlen,
                                        NULL);
    char m3[256];
    snprintf(m3, sizeof m3, "%s", ee_error_last_message());
    ee_status del_long = ee_storage_delete(S, "workflowExecutions", "ws-a", longid);

    cr_expect_eq(corrupt, EE_EPARSE, "%s", m1);
    cr_expect_eq(unknown, EE_ENOTSUPPORTED, "%s", m2);
    cr_expect_eq(too_long, EE_ETOOBIG, "%s", m3);
    cr_expect_eq(del_long, EE_ETOOBIG);
    cr_expect(strstr(m1, "BSON") != NULL, "message: %s", m1);
    cr_expect(strstr(m2, "workflowExecutionz") != NULL, "message: %s", m2);
    cr_expect(strstr(m3, "24") != NULL, "message: %s", m3);
    cr_expect_eq(count_of("workflowExecutions", "ws-a"), before);

    /* No time field, a non-ObjectId _id, an oversized document. */
    d = bson_new();
    BSON_APPEND_UTF8(d, "userId", "u1");
    cr_expect_eq(ee_storage_insert(S, "workflowExecutions", "ws-a", bson_get_data(d), d->len,
                                   NULL), EE_EINVAL);
    bson_destroy(d);
    d = bson_new();
    BSON_APPEND_UTF8(d, "_id", "abc");
    BSON_APPEND_DATE_TIME(d, "createdAt", T0);
    cr_expect_eq(ee_storage_insert(S, "workflowExecutions", "ws-a", bson_get_data(d), d->len,
                                   NULL), EE_EINVAL);
    bson_destroy(d);
    cr_expect_eq(ee_storage_insert(S, "workflowExecutions", "ws-a", bad,
                                   (size_t)EE_STORAGE_DOC_MAX + 1, NULL), EE_ETOOBIG);
    cr_expect_eq(ee_storage_get(S, "workflowExecutions", "ws a", id, &data, &dlen, NULL),
                 EE_EINVAL);
    cr_expect_eq(ee_storage_get(S, "workflowExecutions", "ws-a", "0123456789abcdef0123456g",
                                &data, &dlen, NULL), EE_EINVAL);
    cr_expect_eq(count_of("workflowExecutions", "ws-a"), before);
}

/* ---- threads ---------------------------------------------------------------------- */

#define THREADS 4
#define PER_THREAD 25

typedef struct worker {
    const char *counter_id;
    int conflicts;
    ee_status failure;
} worker;

/* Read-modify-write of one shared document, retried on conflict. */
static ee_status bump(const char *id, int *conflicts)
{
    for (;;) {
        uint8_t *data = NULL;
        size_t len = 0;
        int64_t rev = 0;
        ee_status st = ee_storage_get(S, "workflowExecutions", "ws-a", id, &data, &len, &rev);
        if (st != EE_OK)
            return st;
        bson_t b, out = BSON_INITIALIZER;
        bson_iter_t it;
        bson_init_static(&b, data, len);
        bson_iter_init(&it, &b);
        while (bson_iter_next(&it))
            if (strcmp(bson_iter_key(&it), "executionTimeMs") == 0)
                BSON_APPEND_INT64(&out, "executionTimeMs", bson_iter_int64(&it) + 1);
            else
                bson_append_iter(&out, NULL, 0, &it);
        ee_free(data);
        st = ee_storage_replace(S, "workflowExecutions", "ws-a", id, rev, bson_get_data(&out),
                                out.len, NULL);
        bson_destroy(&out);
        if (st != EE_ECONFLICT)
            return st;
        (*conflicts)++;
    }
}

static void *work(void *arg)
{
    worker *w = arg;
    ee_storage_inc inc = {"executionsCount", 1};
    for (int i = 0; i < PER_THREAD && w->failure == EE_OK; i++) {
        bson_t *d = exec_doc("ws-a", "u-thread", "pending", T0 + i);
        ee_status st = ee_storage_insert(S, "workflowExecutions", "ws-a", bson_get_data(d),
                                         d->len, NULL);
        bson_destroy(d);
        if (st == EE_OK)
            st = bump(w->counter_id, &w->conflicts);
        if (st == EE_OK)
            st = ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, &inc, 1, T0,
                                      NULL);
        w->failure = st;
    }
    return NULL;
}

Test(CONF_SUITE, threads_lose_no_update)
{
    char counter[25];
    bson_t *d = exec_doc("ws-a", "u-counter", "running", T0);
    insert_ok("workflowExecutions", "ws-a", d, counter);
    pthread_t t[THREADS];
    worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){counter, 0, EE_OK};
        cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_expect_eq(w[i].failure, EE_OK, "thread %d: %s", i, ee_status_name(w[i].failure));
    }
    char v[32];
    get_field("workflowExecutions", "ws-a", counter, "executionTimeMs", v, sizeof v, NULL);
    cr_expect_eq(atoll(v), 42 + THREADS * PER_THREAD, "optimistic replaces lost an update");
    ee_storage_eq eq = {"userId", "u-thread"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(S, "workflowExecutions", "ws-a", &q, &n), EE_OK);
    cr_expect_eq(n, THREADS * PER_THREAD);
    int64_t total = 0;
    ee_storage_inc zero = {"executionsCount", 0};
    cr_assert_eq(ee_storage_increment(S, "userWorkflowUsage", "ws-a", usage_key, 3, &zero, 1, T0,
                                      &total), EE_OK);
    cr_expect_eq(total, THREADS * PER_THREAD, "increments lost an update");
}

/* ---- claims (ee__storage_claim) ------------------------------------------------------ */

static void put_item(const char *exec, int round, int64_t t, char id[25])
{
    insert_ok("executionQueue", NULL, claim_item(exec, "ws-a", round, t), id);
}

Test(CONF_SUITE, claim_takes_the_first_in_field_then_time_order)
{
    /* round 2 oldest, round 1 newer, round 1 older, round 1 same time as
     * the previous (the id breaks the tie), round 0 in the future. */
    char id[5][25];
    put_item("e-r2-old", 2, T0 - 50, id[0]);
    put_item("e-r1-new", 1, T0 - 10, id[1]);
    put_item("e-r1-old", 1, T0 - 20, id[2]);
    put_item("e-r1-tie", 1, T0 - 20, id[3]);
    put_item("e-r0-later", 0, T0 + 1000, id[4]);
    const char *want[] = {"e-r1-old", "e-r1-tie", "e-r1-new", "e-r2-old"};
    for (int i = 0; i < 4; i++) {
        claim_mark m = {.owner = "w1", .until = T0 + 500, .fail = EE_OK};
        char got[25];
        int64_t rev = 0;
        ee_status st = claim_next(S, T0, &m, got, &rev);
        cr_assert_eq(st, EE_OK, "claim %d: %s %s", i, ee_status_name(st),
                     ee_error_last_message());
        cr_expect_str_eq(m.exec, want[i], "claim %d", i);
        cr_expect_eq(m.calls, 1, "the builder runs once per claim");
        cr_expect_eq(rev, 2);
        char v[64];
        int64_t stored = 0;
        get_field("executionQueue", NULL, got, "state", v, sizeof v, &stored);
        cr_expect_str_eq(v, "claimed");
        cr_expect_eq(stored, 2, "the replacement is stored at revision + 1");
        get_field("executionQueue", NULL, got, "owner", v, sizeof v, NULL);
        cr_expect_str_eq(v, "w1");
        get_field("executionQueue", NULL, got, "executionId", v, sizeof v, NULL);
        cr_expect_str_eq(v, want[i]);
    }
    /* Everything claimable is claimed (their claimableAt moved to T0+500;
     * the round-0 item is not due): nothing more now. */
    claim_mark m = {.owner = "w1", .until = T0 + 500, .fail = EE_OK};
    cr_expect_eq(claim_next(S, T0, &m, NULL, NULL), EE_ENOTFOUND);
    cr_expect_eq(m.calls, 0);
    /* At T0+500 the leases ran out; the round-0 item is still not due.
     * Round 1's three now share claimableAt T0+500: the smallest id (the
     * first inserted) comes back first. */
    m.until = T0 + 2000;
    cr_assert_eq(claim_next(S, T0 + 500, &m, NULL, NULL), EE_OK);
    cr_expect_str_eq(m.exec, "e-r1-new");
    char v[16];
    get_field("executionQueue", NULL, id[1], "attempts", v, sizeof v, NULL);
    cr_expect_str_eq(v, "2");
    /* At T0+1000 the round-0 item is due and comes before every other. */
    cr_assert_eq(claim_next(S, T0 + 1000, &m, NULL, NULL), EE_OK);
    cr_expect_str_eq(m.exec, "e-r0-later");
}

Test(CONF_SUITE, claim_filters_and_orders_by_time_without_a_field)
{
    char id[3][25];
    put_item("e-a", 5, T0 - 1, id[0]);
    put_item("e-b", 1, T0 - 3, id[1]);
    insert_ok("executionQueue", NULL, claim_item("e-c", "ws-b", 0, T0 - 9), id[2]);
    /* Equality: only ws-a's items; no order field: oldest first. */
    ee_storage_eq eq = {"workspaceId", "ws-a"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                               .flags = EE_STORAGE_QUERY_TO, .time_to = T0 + 1};
    claim_mark m = {.owner = "w", .until = CLAIM_FAR, .fail = EE_OK};
    cr_assert_eq(ee__storage_claim(S, "executionQueue", NULL, &q, NULL, claim_mark_build, &m,
                                   NULL, NULL), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(m.exec, "e-b");
    cr_assert_eq(ee__storage_claim(S, "executionQueue", NULL, &q, NULL, claim_mark_build, &m,
                                   NULL, NULL), EE_OK);
    cr_expect_str_eq(m.exec, "e-a");
    cr_expect_eq(ee__storage_claim(S, "executionQueue", NULL, &q, NULL, claim_mark_build, &m,
                                   NULL, NULL), EE_ENOTFOUND);
    /* A time range from: nothing of ws-b before T0-10. */
    eq.value = "ws-b";
    q.flags |= EE_STORAGE_QUERY_FROM;
    q.time_from = T0 - 8;
    cr_expect_eq(ee__storage_claim(S, "executionQueue", NULL, &q, "round", claim_mark_build, &m,
                                   NULL, NULL), EE_ENOTFOUND);
    q.time_from = T0 - 9;
    cr_expect_eq(ee__storage_claim(S, "executionQueue", NULL, &q, "round", claim_mark_build, &m,
                                   NULL, NULL), EE_OK);
    cr_expect_str_eq(m.exec, "e-c");
}

Test(CONF_SUITE, claim_whose_builder_fails_changes_nothing)
{
    char id[25], v[32];
    put_item("e-1", 1, T0 - 1, id);
    claim_mark m = {.owner = "w", .until = CLAIM_FAR, .fail = EE_ECANCELLED};
    cr_expect_eq(claim_next(S, T0, &m, NULL, NULL), EE_ECANCELLED);
    cr_expect_geq(m.calls, 1);
    int64_t rev = 0;
    get_field("executionQueue", NULL, id, "state", v, sizeof v, &rev);
    cr_expect_str_eq(v, "waiting");
    cr_expect_eq(rev, 1);
    m.fail = EE_OK;
    cr_expect_eq(claim_next(S, T0, &m, NULL, NULL), EE_OK);
    /* Bad input. */
    cr_expect_eq(ee__storage_claim(S, "executionQueue", NULL, NULL, "notIndexed",
                                   claim_mark_build, &m, NULL, NULL), EE_EINVAL);
    cr_expect_eq(ee__storage_claim(S, "executionQueuez", NULL, NULL, NULL, claim_mark_build, &m,
                                   NULL, NULL), EE_ENOTSUPPORTED);
    cr_expect_eq(ee__storage_claim(S, "executionQueue", "ws-a", NULL, NULL, claim_mark_build,
                                   &m, NULL, NULL), EE_EINVAL, "a global collection");
    cr_expect_eq(ee__storage_claim(S, "executionQueue", NULL, NULL, NULL, NULL, &m, NULL, NULL),
                 EE_EINVAL);
}

#define CLAIMERS 4
#define CLAIM_ITEMS 120

typedef struct claimer {
    int got[CLAIM_ITEMS];
    ee_status failure;
} claimer;

static void *claim_work(void *arg)
{
    claimer *c = arg;
    for (;;) {
        claim_mark m = {.owner = "t", .until = CLAIM_FAR, .fail = EE_OK};
        ee_status st = claim_next(S, T0, &m, NULL, NULL);
        if (st == EE_ENOTFOUND)
            return NULL;
        if (st == EE_EBUSY)
            continue;
        if (st != EE_OK) {
            c->failure = st;
            return NULL;
        }
        int i = atoi(m.exec + 2);
        if (i >= 0 && i < CLAIM_ITEMS)
            c->got[i]++;
    }
}

Test(CONF_SUITE, concurrent_claims_take_each_document_once)
{
    for (int i = 0; i < CLAIM_ITEMS; i++) {
        char exec[16];
        snprintf(exec, sizeof exec, "e-%d", i);
        put_item(exec, i % 5, T0 - i, NULL);
    }
    pthread_t t[CLAIMERS];
    static claimer c[CLAIMERS];
    memset(c, 0, sizeof c);
    for (int k = 0; k < CLAIMERS; k++)
        cr_assert_eq(pthread_create(&t[k], NULL, claim_work, &c[k]), 0);
    for (int k = 0; k < CLAIMERS; k++) {
        pthread_join(t[k], NULL);
        cr_expect_eq(c[k].failure, EE_OK, "claimer %d: %s", k, ee_status_name(c[k].failure));
    }
    for (int i = 0; i < CLAIM_ITEMS; i++) {
        int n = 0;
        for (int k = 0; k < CLAIMERS; k++)
            n += c[k].got[i];
        cr_expect_eq(n, 1, "item %d claimed %d times", i, n);
    }
}

#endif
