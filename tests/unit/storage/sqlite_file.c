/*
 * The sqlite file itself: durability across SIGKILL, two processes sharing
 * one file, schema versions, damaged files and damaged stored documents.
 */
#include <bson/bson.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "execengine/storage.h"
#include "temp_dir.h"

static char dir[64], path[160], uri[200];

static void setup(void)
{
    ee_test_temp_dir("/tmp/ee-storage-file-XXXXXX", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/store.db", dir);
    snprintf(uri, sizeof uri, "sqlite://%s", path);
}

static void teardown(void)
{
    ee_test_temp_dir_remove(dir);
}

TestSuite(storage_sqlite_file, .init = setup, .fini = teardown, .timeout = 120);

#define T0 1700000000000LL

static bson_t *doc(const char *user, int64_t t)
{
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "workspaceId", "ws-a");
    BSON_APPEND_UTF8(d, "userId", user);
    BSON_APPEND_UTF8(d, "status", "pending");
    BSON_APPEND_INT64(d, "n", 0);
    BSON_APPEND_DATE_TIME(d, "createdAt", t);
    return d;
}

static char *raw_text(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    char *out = strdup((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

static int count_rows(const ee_storage_row *row, void *payload)
{
    (void)row;
    ++*(int *)payload;
    return 0;
}

/* ---- durability ---------------------------------------------------------------- */

/* The child inserts forever, reporting each id whose insert returned EE_OK;
 * the parent kills it with SIGKILL mid-loop. Every reported id must be in
 * the file afterwards, and the file must pass integrity_check. */
Test(storage_sqlite_file, every_acknowledged_write_survives_sigkill)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(fds[0]);
        ee_storage *s = NULL;
        if (ee_storage_open_uri(&s, uri) != EE_OK)
            _exit(2);
        for (int i = 0;; i++) {
            bson_t *d = doc("u-kill", T0 + i);
            char id[26];
            ee_status st = ee_storage_insert(s, "workflowExecutions", "ws-a", bson_get_data(d),
                                             d->len, id);
            bson_destroy(d);
            if (st != EE_OK)
                _exit(3);
            id[24] = '\n';
            if (write(fds[1], id, 25) != 25)
                _exit(4);
        }
    }
    close(fds[1]);
    FILE *in = fdopen(fds[0], "r");
    char line[64];
    char (*ids)[25] = calloc(200000, 25);
    int n = 0;
    while (n < 200000 && fgets(line, sizeof line, in) != NULL) {
        cr_assert_eq(strlen(line), 25, "partial id line");
        memcpy(ids[n], line, 24);
        ids[n][24] = '\0';
        if (++n == 150)
            kill(pid, SIGKILL); /* mid-loop: the child is inside some insert */
    }
    fclose(in);
    int status = 0;
    waitpid(pid, &status, 0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
              "the child ended on its own (status %d) before it was killed", status);
    cr_assert_geq(n, 150);

    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK, "%s", ee_error_last_message());
    for (int i = 0; i < n; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        cr_expect_eq(ee_storage_get(s, "workflowExecutions", "ws-a", ids[i], &data, &len, NULL),
                     EE_OK, "acknowledged write %d (%s) is missing", i, ids[i]);
        ee_free(data);
    }
    uint64_t count = 0;
    cr_assert_eq(ee_storage_count(s, "workflowExecutions", "ws-a", NULL, &count), EE_OK);
    cr_expect_geq(count, (uint64_t)n);
    cr_expect_leq(count, (uint64_t)n + 1, "at most the write in flight was not acknowledged");
    ee_storage_free(s);
    free(ids);

    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *ok = raw_text(db, "PRAGMA integrity_check");
    cr_expect_str_eq(ok, "ok");
    free(ok);
    char *mode = raw_text(db, "PRAGMA journal_mode");
    cr_expect_str_eq(mode, "wal");
    free(mode);
    sqlite3_close(db);
}

/* ---- two processes --------------------------------------------------------------- */

#define PER_PROCESS 40

static int process_work(const char *shared_id)
{
    ee_storage *s = NULL;
    if (ee_storage_open_uri(&s, uri) != EE_OK)
        return 10;
    static const ee_storage_eq key[3] = {
        {"userId", "u1"}, {"workflowCatalogId", "wf-1"}, {"period", "2025-10"}};
    ee_storage_inc inc[2] = {{"executionsCount", 1}, {"tokensUsed", 100}};
    for (int i = 0; i < PER_PROCESS; i++) {
        bson_t *d = doc("u-proc", T0 + i);
        ee_status st = ee_storage_insert(s, "workflowExecutions", "ws-a", bson_get_data(d),
                                         d->len, NULL);
        bson_destroy(d);
        if (st != EE_OK)
            return 11;
        if (ee_storage_increment(s, "userWorkflowUsage", "ws-a", key, 3, inc, 2, T0, NULL) !=
            EE_OK)
            return 12;
        for (;;) { /* optimistic read-modify-write of the shared document */
            uint8_t *data = NULL;
            size_t len = 0;
            int64_t rev = 0;
            if (ee_storage_get(s, "workflowExecutions", "ws-a", shared_id, &data, &len, &rev) !=
                EE_OK)
                return 13;
            bson_t b, out = BSON_INITIALIZER;
            bson_iter_t it;
            bson_init_static(&b, data, len);
            bson_iter_init(&it, &b);
            while (bson_iter_next(&it))
                if (strcmp(bson_iter_key(&it), "n") == 0)
                    BSON_APPEND_INT64(&out, "n", bson_iter_int64(&it) + 1);
                else
                    bson_append_iter(&out, NULL, 0, &it);
            ee_free(data);
            st = ee_storage_replace(s, "workflowExecutions", "ws-a", shared_id, rev,
                                    bson_get_data(&out), out.len, NULL);
            bson_destroy(&out);
            if (st == EE_OK)
                break;
            if (st != EE_ECONFLICT)
                return 14;
        }
    }
    ee_storage_free(s);
    return 0;
}

Test(storage_sqlite_file, two_processes_share_one_file_without_lost_updates)
{
    ee_storage *s = NULL;
    char shared[25];
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    bson_t *d = doc("u-shared", T0);
    cr_assert_eq(ee_storage_insert(s, "workflowExecutions", "ws-a", bson_get_data(d), d->len,
                                   shared), EE_OK);
    bson_destroy(d);
    ee_storage_free(s); /* no handle crosses fork() */

    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        cr_assert_geq(kids[k], 0);
        if (kids[k] == 0)
            _exit(process_work(shared));
    }
    for (int k = 0; k < 2; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "process %d failed: status %d",
                  k, status);
    }
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t rev = 0;
    cr_assert_eq(ee_storage_get(s, "workflowExecutions", "ws-a", shared, &data, &len, &rev),
                 EE_OK);
    bson_t b;
    bson_iter_t it;
    bson_init_static(&b, data, len);
    cr_assert(bson_iter_init_find(&it, &b, "n"));
    cr_expect_eq(bson_iter_int64(&it), 2 * PER_PROCESS, "lost update across processes");
    cr_expect_eq(rev, 1 + 2 * PER_PROCESS);
    ee_free(data);
    ee_storage_eq eq = {"userId", "u-proc"};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1};
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(s, "workflowExecutions", "ws-a", &q, &n), EE_OK);
    cr_expect_eq(n, 2 * PER_PROCESS);
    static const ee_storage_eq key[3] = {
        {"userId", "u1"}, {"workflowCatalogId", "wf-1"}, {"period", "2025-10"}};
    ee_storage_inc zero[2] = {{"executionsCount", 0}, {"tokensUsed", 0}};
    int64_t totals[2];
    cr_assert_eq(ee_storage_increment(s, "userWorkflowUsage", "ws-a", key, 3, zero, 2, T0,
                                      totals), EE_OK);
    cr_expect_eq(totals[0], 2 * PER_PROCESS);
    cr_expect_eq(totals[1], 2 * PER_PROCESS * 100);
    ee_storage_free(s);
}

/* ---- schema versions and damaged files ------------------------------------------ */

Test(storage_sqlite_file, newer_schema_is_refused)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    ee_storage_free(s);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *v = raw_text(db, "PRAGMA user_version");
    cr_expect_str_eq(v, "4", "the schema version is recorded in the file");
    free(v);
    cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    s = NULL;
    cr_expect_eq(ee_storage_open_uri(&s, uri), EE_EVERSION);
    cr_expect_null(s);
    cr_expect(strstr(ee_error_last_message(), "99") != NULL, "%s", ee_error_last_message());
    /* Reopening an up-to-date file is a no-op migration. */
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_exec(db, "PRAGMA user_version = 4", NULL, NULL, NULL);
    sqlite3_close(db);
    cr_expect_eq(ee_storage_sqlite_new(&s, path), EE_OK, "%s", ee_error_last_message());
    ee_storage_free(s);
}

static bson_t *subscription(const char *org, const char *plan, int64_t t)
{
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "orgId", org);
    BSON_APPEND_UTF8(d, "planId", plan);
    BSON_APPEND_UTF8(d, "status", "active");
    BSON_APPEND_DATE_TIME(d, "createdAt", t);
    return d;
}

Test(storage_sqlite_file, version_1_files_keep_one_subscription_per_organisation)
{
    /* A version-1 file (no unique key on subscriptions) where a race left
     * two subscriptions of one organisation: opening it keeps the newest
     * and from then on a second one is refused. */
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    bson_t *d = subscription("org-1", "free", T0);
    cr_assert_eq(ee_storage_insert(s, "subscriptions", "org-1", bson_get_data(d), d->len, NULL),
                 EE_OK);
    bson_destroy(d);
    d = subscription("org-2", "free", T0);
    cr_assert_eq(ee_storage_insert(s, "subscriptions", "org-2", bson_get_data(d), d->len, NULL),
                 EE_OK);
    bson_destroy(d);
    ee_storage_free(s);
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    const char *v1 =
        "DROP INDEX \"ee_subscriptions_u\"; PRAGMA user_version = 1;"
        "INSERT INTO \"ee_subscriptions\" (id, ws, rev, t, f_orgId, f_planId, f_status, doc) "
        "SELECT randomblob(12), ws, rev, t + 5, f_orgId, 'pro', f_status, doc "
        "FROM \"ee_subscriptions\" WHERE f_orgId = 'org-1';";
    cr_assert_eq(sqlite3_exec(db, v1, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    char *n = raw_text(db, "SELECT count(*) FROM \"ee_subscriptions\"");
    cr_assert_str_eq(n, "3", "the test made its duplicate");
    free(n);
    sqlite3_close(db);

    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    n = raw_text(db, "SELECT count(*) FROM \"ee_subscriptions\" WHERE f_orgId = 'org-1'");
    cr_expect_str_eq(n, "1");
    free(n);
    n = raw_text(db, "SELECT f_planId FROM \"ee_subscriptions\" WHERE f_orgId = 'org-1'");
    cr_expect_str_eq(n, "pro", "the newest stays");
    free(n);
    n = raw_text(db, "PRAGMA user_version");
    cr_expect_str_eq(n, "4");
    free(n);
    sqlite3_close(db);
    d = subscription("org-2", "pro", T0 + 9);
    cr_expect_eq(ee_storage_insert(s, "subscriptions", "org-2", bson_get_data(d), d->len, NULL),
                 EE_EEXISTS, "one subscription per organisation from now on");
    bson_destroy(d);
    ee_storage_free(s);
}

Test(storage_sqlite_file, a_file_that_is_not_a_database_is_refused)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database\n", f);
    fclose(f);
    ee_storage *s = NULL;
    cr_expect_eq(ee_storage_open_uri(&s, uri), EE_ECORRUPT, "%s", ee_error_last_message());
    cr_expect_null(s);
}

Test(storage_sqlite_file, damaged_stored_documents_are_reported_not_crashed_on)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    char id[25];
    bson_t *d = doc("u1", T0);
    cr_assert_eq(ee_storage_insert(s, "workflowExecutions", "ws-a", bson_get_data(d), d->len, id),
                 EE_OK);
    bson_destroy(d);
    static const ee_storage_eq key[3] = {
        {"userId", "u1"}, {"workflowCatalogId", "wf-1"}, {"period", "2025-10"}};
    ee_storage_inc inc = {"executionsCount", 1};
    cr_assert_eq(ee_storage_increment(s, "userWorkflowUsage", "ws-a", key, 3, &inc, 1, T0, NULL),
                 EE_OK);
    /* Another program damages the documents behind our back. */
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "UPDATE \"ee_workflowExecutions\" SET doc = x'0b00000002610000'; "
                                  "UPDATE \"ee_userWorkflowUsage\" SET doc = x'ffffffff'",
                              NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    uint8_t *data = NULL;
    size_t len = 0;
    cr_expect_eq(ee_storage_get(s, "workflowExecutions", "ws-a", id, &data, &len, NULL),
                 EE_ECORRUPT);
    cr_expect_null(data);
    int rows = 0;
    cr_expect_eq(ee_storage_query(s, "workflowExecutions", "ws-a", NULL, count_rows, &rows, NULL),
                 EE_ECORRUPT);
    cr_expect_eq(rows, 0);
    ee_storage_free(s);
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    cr_expect_eq(ee_storage_increment(s, "userWorkflowUsage", "ws-a", key, 3, &inc, 1, T0, NULL),
                 EE_ECORRUPT, "%s", ee_error_last_message());
    ee_storage_free(s);
}

Test(storage_sqlite_file, a_damaged_document_fails_its_query_page)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    for (int i = 0; i < 3; i++) {
        bson_t *d = doc("u1", T0 + i);
        cr_assert_eq(ee_storage_insert(s, "workflowExecutions", "ws-a", bson_get_data(d), d->len,
                                       NULL), EE_OK);
        bson_destroy(d);
    }
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "UPDATE \"ee_workflowExecutions\" SET doc = x'05' WHERE t = "
                                  "1700000000001", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    int rows = 0;
    cr_expect_eq(ee_storage_query(s, "workflowExecutions", "ws-a", NULL, count_rows, &rows, NULL),
                 EE_ECORRUPT);
    cr_expect_eq(rows, 1, "rows before the damaged one were delivered");
    ee_storage_free(s);
}

Test(storage_sqlite_file, uri_options)
{
    ee_storage *s = NULL;
    char u[256];
    snprintf(u, sizeof u, "%s?synchronous=normal&busy_timeout=100", uri);
    cr_assert_eq(ee_storage_open_uri(&s, u), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(ee_storage_backend_name(s), "sqlite");
    ee_storage_free(s);
    snprintf(u, sizeof u, "%s?synchronous=sometimes", uri);
    cr_expect_eq(ee_storage_open_uri(&s, u), EE_EINVAL);
    snprintf(u, sizeof u, "%s?journal=delete", uri);
    cr_expect_eq(ee_storage_open_uri(&s, u), EE_EINVAL);
    cr_expect(strstr(ee_error_last_message(), "journal") != NULL, "%s", ee_error_last_message());
    /* A relative path. */
    char cwd[512];
    cr_assert_not_null(getcwd(cwd, sizeof cwd));
    cr_assert_eq(chdir(dir), 0);
    cr_expect_eq(ee_storage_open_uri(&s, "sqlite://rel/store.db"), EE_OK, "%s",
                 ee_error_last_message());
    ee_storage_free(s);
    cr_expect_eq(access("rel/store.db", F_OK), 0);
    cr_assert_eq(chdir(cwd), 0);
}
