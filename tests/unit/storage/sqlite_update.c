/*
 * A replace on SQLite names only the columns it changes: SQLite rewrites
 * every index holding a column an UPDATE sets, changed or not, and each
 * index rewritten is one more page in the write-ahead log on every write
 * (an execution's record is replaced three times a run and has nine
 * B-trees). The log's bytes are counted by the VFS shim of
 * sqlite_sync_count.h; what the replaces store is the conformance suite's
 * (a_replace_moves_exactly_the_indexed_values_it_changes).
 */
#include <bson/bson.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "execengine/storage.h"
#include "sqlite_sync_count.h"

#define T0 1700000000000LL
#define FRAME (4096 + 24) /* a page and its frame header */

static char dir[64];
static ee_storage *S;

static void setup(void)
{
    cr_assert_eq(sqlite_sync_count_install(), SQLITE_OK);
    snprintf(dir, sizeof dir, "/tmp/ee-storage-update-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char uri[128];
    snprintf(uri, sizeof uri, "sqlite://%s/store.db", dir);
    cr_assert_eq(ee_storage_open_uri(&S, uri), EE_OK, "%s", ee_error_last_message());
}

static void teardown(void)
{
    ee_storage_free(S);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(sqlite_update, .init = setup, .fini = teardown, .timeout = 60);

static bson_t *exec_doc(const char *user, const char *status, const char *n8n_id,
                        const char *key, int64_t t, int64_t ms)
{
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "workspaceId", "ws-a");
    BSON_APPEND_UTF8(d, "userId", user);
    BSON_APPEND_UTF8(d, "workflowCatalogId", "wf-1");
    BSON_APPEND_UTF8(d, "status", status);
    BSON_APPEND_UTF8(d, "n8nExecutionId", n8n_id);
    BSON_APPEND_UTF8(d, "idempotencyKey", key);
    BSON_APPEND_DATE_TIME(d, "createdAt", t);
    BSON_APPEND_INT64(d, "executionTimeMs", ms);
    return d;
}

/* The log bytes one replace writes (a commit of its own). */
static long replace_bytes(const char *id, int64_t *rev, bson_t *d)
{
    long before = atomic_load(&sqlite_wal_bytes);
    ee_status st = ee_storage_replace(S, "workflowExecutions", "ws-a", id, *rev,
                                      bson_get_data(d), d->len, rev);
    bson_destroy(d);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    return atomic_load(&sqlite_wal_bytes) - before;
}

Test(sqlite_update, a_replace_logs_the_pages_of_the_indexes_it_changes_only)
{
    char id[25];
    bson_t *d = exec_doc("u1", "pending", "n-1", "k-1", T0, 0);
    cr_assert_eq(ee_storage_insert(S, "workflowExecutions", "ws-a", bson_get_data(d), d->len,
                                   id), EE_OK, "%s", ee_error_last_message());
    bson_destroy(d);
    int64_t rev = 1;
    /* warm: the first write after the insert may touch more than its row */
    (void)replace_bytes(id, &rev, exec_doc("u1", "pending", "n-1", "k-1", T0, 1));

    long body = replace_bytes(id, &rev, exec_doc("u1", "pending", "n-1", "k-1", T0, 2));
    cr_expect_leq(body, FRAME, "a body-only replace logged %ld bytes: more than its row's page",
                  body);
    long status = replace_bytes(id, &rev, exec_doc("u1", "running", "n-1", "k-1", T0, 3));
    cr_expect_leq(status, 3 * FRAME,
                  "a status change logged %ld bytes: more than its row and two indexes", status);
    long all = replace_bytes(id, &rev, exec_doc("u2", "completed", "n-2", "k-2", T0 + 5, 4));
    cr_expect_gt(all, status, "changing every column logged %ld bytes, the status alone %ld",
                 all, status);
    cr_expect_eq(rev, 5);
}

/* A writer that read an old revision is told so before anything is
 * written, whatever columns it would change. */
Test(sqlite_update, a_stale_replace_writes_nothing)
{
    char id[25];
    bson_t *d = exec_doc("u1", "pending", "n-1", "k-1", T0, 0);
    cr_assert_eq(ee_storage_insert(S, "workflowExecutions", "ws-a", bson_get_data(d), d->len,
                                   id), EE_OK);
    bson_destroy(d);
    int64_t rev = 1;
    (void)replace_bytes(id, &rev, exec_doc("u1", "running", "n-1", "k-1", T0, 1));
    long before = atomic_load(&sqlite_wal_bytes);
    d = exec_doc("u9", "failed", "n-9", "k-9", T0 + 9, 9);
    cr_expect_eq(ee_storage_replace(S, "workflowExecutions", "ws-a", id, 1, bson_get_data(d),
                                    d->len, NULL), EE_ECONFLICT);
    bson_destroy(d);
    char none[25];
    ee_storage_id_new(none);
    d = exec_doc("u9", "failed", "n-9", "k-9", T0 + 9, 9);
    cr_expect_eq(ee_storage_replace(S, "workflowExecutions", "ws-a", none, 1, bson_get_data(d),
                                    d->len, NULL), EE_ENOTFOUND);
    bson_destroy(d);
    cr_expect_eq(atomic_load(&sqlite_wal_bytes), before);
}
