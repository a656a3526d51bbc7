/*
 * The counters conformance suite on the storage backend over SQLite, its
 * exactness with 8 threads in each of 4 processes on one file, and a
 * reservation held by a SIGKILLed process coming back after its lease.
 * Each test process gets its own database file under /tmp.
 */
#define CONF_SHARED 1
#include "conformance.h"

#include <sqlite3.h>

static char db_path[128];
static pid_t db_owner;

static void remove_db(void)
{
    if (getpid() != db_owner)
        return;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", db_path, suffix[i]);
        unlink(p);
    }
}

static const char *conf_db(void)
{
    if (db_path[0] == '\0') {
        snprintf(db_path, sizeof db_path, "/tmp/ee-counters-test-%ld.db", (long)getpid());
        db_owner = getpid();
        remove_db();
        atexit(remove_db);
    }
    return db_path;
}

static void conf_open(ee_counters **out)
{
    ee_status st = ee_counters_sqlite_new(out, conf_db());
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_assert_str_eq(ee_counters_backend_name(*out), "storage-sqlite");
}

Test(sqlite, eight_threads_in_each_of_four_processes_grant_exactly_the_limit, .timeout = 240)
{
    conf_contention(4, 8);
}

Test(sqlite, the_storage_uri_selects_this_backend)
{
    char uri[200];
    snprintf(uri, sizeof uri, "sqlite://%s", conf_db());
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_open_uri(&c, "storage:", uri), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(ee_counters_backend_name(c), "storage-sqlite");
    uint64_t id = try_reserve(c, req_of("via-uri", 1, 1), LEASE, T0, NULL);
    cr_assert_neq(id, 0);
    ee_counters_free(c);
    conf_open(&c);
    expect_value(c, "via-uri", T0, 1, 0);
    ee_counters_free(c);
}

Test(sqlite, tables_of_a_newer_schema_are_refused)
{
    ee_counters *c;
    conf_open(&c);
    ee_counters_free(c);
    sqlite3 *db;
    cr_assert_eq(sqlite3_open(conf_db(), &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "UPDATE ee_counters_schema SET version = 99", 0, 0, 0),
                 SQLITE_OK);
    sqlite3_close(db);
    c = NULL;
    cr_expect_eq(ee_counters_sqlite_new(&c, conf_db()), EE_EVERSION);
    cr_expect_null(c);
    cr_expect(strstr(ee_error_last_message(), "99") != NULL, "%s", ee_error_last_message());
}

Test(sqlite, a_file_that_cannot_be_opened_is_an_io_error)
{
    ee_counters *c = NULL;
    cr_expect_eq(ee_counters_sqlite_new(&c, "/nonexistent-dir/x/counters.db"), EE_EIO);
    cr_expect_null(c);
    cr_expect(strstr(ee_error_last_message(), "nonexistent-dir") != NULL);
    FILE *f = fopen(conf_db(), "w");
    cr_assert_not_null(f);
    fputs("this is not a database, just some text that fills the header and more........", f);
    fclose(f);
    ee_status st = ee_counters_sqlite_new(&c, conf_db());
    cr_expect(st == EE_ECORRUPT || st == EE_EIO, "%s", ee_status_name(st));
    cr_expect_null(c);
}
