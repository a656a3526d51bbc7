/*
 * libFuzzer: arbitrary bytes as documents and as query cursors, against the
 * sqlite (temporary file) and memory backends. The first input byte picks
 * what the rest is:
 *   0  a document handed to ee_storage_insert (then read back, queried,
 *      replaced and deleted when accepted)
 *   1  a query cursor
 *   2  bytes already stored: written behind the wrapper's back (a raw
 *      UPDATE for sqlite, the backend's own insert slot for memory), then
 *      read, queried and incremented through the wrapper
 * The second byte picks the collection. Any crash, leak, sanitizer report
 * or broken invariant (abort) is a finding.
 */
#include <bson/bson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/internal.h"

static ee_storage *lite, *mem;
static sqlite3 *raw;
static char shared_id[25], usage_id[25];

static const char *const colls[] = {"workflowExecutions", "userWorkflowUsage", "workflowCatalog",
                                    "auditLog", "credentials"};
static const ee_storage_eq usage_key[3] = {
    {"userId", "u1"}, {"workflowCatalogId", "wf-1"}, {"period", "2025-10"}};

#include "fuzz_check.h"

static const char *ws_of(const char *coll)
{
    return strcmp(coll, "workflowCatalog") == 0 ? NULL : "ws-a";
}

static int count_rows(const ee_storage_row *row, void *payload)
{
    CHECK(row->len >= 5);
    ++*(int *)payload;
    return 0;
}

static int remember_id(const ee_storage_row *row, void *payload)
{
    ee__storage_id_hex(row->id, payload);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    static char dir[] = "/tmp/ee-fuzz-storage-XXXXXX";
    char uri[128], path[96];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/fuzz.db", dir);
    snprintf(uri, sizeof uri, "sqlite://%s?synchronous=off", path);
    CHECK(ee_storage_open_uri(&lite, uri) == EE_OK);
    CHECK(ee_storage_open_uri(&mem, "memory:") == EE_OK);
    CHECK(sqlite3_open(path, &raw) == SQLITE_OK);
    sqlite3_busy_timeout(raw, 5000);
    /* One execution and one usage row whose bytes mode 2 overwrites. */
    bson_t *d = BCON_NEW("workspaceId", "ws-a", "userId", "u1", "createdAt", BCON_DATE_TIME(5));
    CHECK(ee_storage_insert(lite, "workflowExecutions", "ws-a", bson_get_data(d), d->len,
                            shared_id) == EE_OK);
    bson_destroy(d);
    ee_storage_inc inc = {"executionsCount", 1};
    CHECK(ee_storage_increment(lite, "userWorkflowUsage", "ws-a", usage_key, 3, &inc, 1, 5,
                               NULL) == EE_OK);
    CHECK(ee_storage_query(lite, "userWorkflowUsage", "ws-a", NULL, remember_id, usage_id,
                           NULL) == EE_OK);
    CHECK(usage_id[0] != '\0');
    return 0;
}

static void as_document(ee_storage *s, const char *coll, const uint8_t *data, size_t len)
{
    char id[25];
    const char *ws = ws_of(coll);
    if (ee_storage_insert(s, coll, ws, data, len, id) != EE_OK)
        return;
    uint8_t *back = NULL;
    size_t blen = 0;
    int64_t rev = 0;
    CHECK(ee_storage_get(s, coll, ws, id, &back, &blen, &rev) == EE_OK);
    CHECK(rev == 1);
    CHECK(blen >= len);
    int rows = 0;
    ee_status st = ee_storage_query(s, coll, ws, NULL, count_rows, &rows, NULL);
    CHECK(st == EE_OK && rows >= 1);
    CHECK(ee_storage_replace(s, coll, ws, id, 1, back, blen, &rev) == EE_OK && rev == 2);
    CHECK(ee_storage_replace(s, coll, ws, id, 1, back, blen, NULL) == EE_ECONFLICT);
    ee_free(back);
    CHECK(ee_storage_delete(s, coll, ws, id) == EE_OK);
}

static void as_cursor(ee_storage *s, const char *coll, const uint8_t *data, size_t len)
{
    char *cursor = malloc(len + 1);
    CHECK(cursor != NULL);
    memcpy(cursor, data, len);
    cursor[len] = '\0';
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .limit = 2,
                               .cursor = cursor};
    int rows = 0;
    char *next = NULL;
    ee_status st = ee_storage_query(s, coll, ws_of(coll), &q, count_rows, &rows, &next);
    CHECK(st == EE_OK || st == EE_EINVAL || st == EE_ETOOBIG);
    CHECK(st == EE_OK || rows == 0);
    ee_free(next);
    free(cursor);
}

static void read_everything(ee_storage *s, const char *coll, const char *id, bool with_inc)
{
    uint8_t *back = NULL;
    size_t blen = 0;
    ee_status st = ee_storage_get(s, coll, "ws-a", id, &back, &blen, NULL);
    CHECK(st == EE_OK || st == EE_ECORRUPT);
    ee_free(back);
    int rows = 0;
    st = ee_storage_query(s, coll, "ws-a", NULL, count_rows, &rows, NULL);
    CHECK(st == EE_OK || st == EE_ECORRUPT);
    if (with_inc) {
        ee_storage_inc inc[2] = {{"executionsCount", 1}, {"usage.totalCost", 3}};
        st = ee_storage_increment(s, "userWorkflowUsage", "ws-a", usage_key, 3, inc, 2, 9, NULL);
        CHECK(st == EE_OK || st == EE_ECORRUPT || st == EE_EINVAL || st == EE_ETOOBIG);
    }
}

static void raw_put(bool usage, const void *data, size_t len)
{
    const char *sql = usage ? "UPDATE \"ee_userWorkflowUsage\" SET doc = ?1"
                            : "UPDATE \"ee_workflowExecutions\" SET doc = ?1 WHERE ws = 'ws-a'";
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(raw, sql, -1, &st, NULL) == SQLITE_OK);
    sqlite3_bind_blob(st, 1, data, (int)len, SQLITE_STATIC);
    CHECK(sqlite3_step(st) == SQLITE_DONE);
    sqlite3_finalize(st);
}

static void as_stored_sqlite(const uint8_t *data, size_t len, bool usage)
{
    raw_put(usage, data, len);
    read_everything(lite, usage ? "userWorkflowUsage" : "workflowExecutions",
                    usage ? usage_id : shared_id, usage);
    /* Put valid bytes back so the other modes see a sound store. */
    bson_t *d = usage ? BCON_NEW("workspaceId", "ws-a", "userId", "u1", "workflowCatalogId",
                                 "wf-1", "period", "2025-10", "createdAt", BCON_DATE_TIME(5))
                      : BCON_NEW("workspaceId", "ws-a", "userId", "u1", "createdAt",
                                 BCON_DATE_TIME(5));
    raw_put(usage, bson_get_data(d), d->len);
    bson_destroy(d);
}

static void as_stored_memory(const uint8_t *data, size_t len)
{
    void *ctx;
    const ee_storage_backend *be = ee__storage_backend(mem, &ctx);
    const ee_storage_collection *c = ee__storage_collection_find("userWorkflowUsage");
    const char *values[3] = {"u1", "wf-1", "2025-10"};
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    ee_storage_record rec = {oid.bytes, "ws-a", 1, 7, values, data, len};
    CHECK(be->insert(ctx, c, &rec) == EE_OK);
    char id[25];
    bson_oid_to_string(&oid, id);
    read_everything(mem, "userWorkflowUsage", id, true);
    CHECK(be->remove(ctx, c, "ws-a", oid.bytes) == EE_OK);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    const char *coll = colls[data[1] % (sizeof colls / sizeof colls[0])];
    const uint8_t *rest = data + 2;
    size_t len = size - 2;
    switch (data[0] % 3) {
    case 0:
        as_document(lite, coll, rest, len);
        as_document(mem, coll, rest, len);
        break;
    case 1:
        as_cursor(lite, coll, rest, len);
        as_cursor(mem, coll, rest, len);
        break;
    default:
        as_stored_sqlite(rest, len, data[1] & 1);
        as_stored_memory(rest, len);
        break;
    }
    return 0;
}
