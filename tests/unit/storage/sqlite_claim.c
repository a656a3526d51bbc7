/*
 * Claims on one sqlite file shared by several processes: every document is
 * claimed exactly once; and a version 2 file (before the queue's
 * collections) gains them when opened.
 */
#include <bson/bson.h>
#include <criterion/criterion.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "claim_helpers.h"
#include "execengine/storage.h"
#include "temp_dir.h"

static char dir[64], path[160], uri[200];

static void setup(void)
{
    ee_test_temp_dir("/tmp/ee-storage-claim-XXXXXX", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/store.db", dir);
    snprintf(uri, sizeof uri, "sqlite://%s", path);
}

static void teardown(void)
{
    ee_test_temp_dir_remove(dir);
}

TestSuite(storage_sqlite_claim, .init = setup, .fini = teardown, .timeout = 120);

Test(storage_sqlite_claim, three_processes_drain_300_documents_each_once)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK, "%s", ee_error_last_message());
    claim_drain_processes(s, uri, 3, 300);
    uint64_t n = 0;
    ee_storage_eq eq = {"state", "waiting"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    cr_assert_eq(ee_storage_count(s, "executionQueue", NULL, &q, &n), EE_OK);
    cr_expect_eq(n, 0, "nothing left waiting");
    ee_storage_free(s);
}

Test(storage_sqlite_claim, version_2_files_gain_the_queue_collections)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    ee_storage_free(s);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    const char *v2 = "DROP TABLE \"ee_executionQueue\"; DROP TABLE \"ee_executionQueueCounters\";"
                     "PRAGMA user_version = 2;";
    cr_assert_eq(sqlite3_exec(db, v2, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK, "%s", ee_error_last_message());
    bson_t *d = claim_item("e-1", "ws-a", 0, 1000);
    cr_assert_eq(ee_storage_insert(s, "executionQueue", NULL, bson_get_data(d), d->len, NULL),
                 EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_storage_insert(s, "executionQueue", NULL, bson_get_data(d), d->len, NULL),
                 EE_EEXISTS, "executionId is the unique key");
    bson_destroy(d);
    claim_mark m = {.owner = "w", .until = CLAIM_FAR, .fail = EE_OK};
    cr_expect_eq(claim_next(s, 2000, &m, NULL, NULL), EE_OK, "%s", ee_error_last_message());
    ee_storage_free(s);
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(st, 0), 4);
    sqlite3_finalize(st);
    sqlite3_close(db);
}
