/*
 * SQLite driver of the storage counters backend. One sqlite3 connection per
 * pooled connection (used by one thread at a time), WAL journal so readers
 * do not block the writer, synchronous=NORMAL (a process crash loses
 * nothing; a power cut may lose the last transactions, never consistency),
 * and a busy handler that retries for up to 10 s with short randomised
 * sleeps: BEGIN IMMEDIATE serialises writers of all processes on the file,
 * and SQLite's default handler would sleep whole milliseconds, far longer
 * than one counter transaction holds the lock. The busy handler measures
 * its waiting with the monotonic clock: that is the only clock read here,
 * and it never decides a counter's value.
 */
#include "counters/storage/sql.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "core/sqlite_wal.h"

#define BUSY_TIMEOUT_NS (INT64_C(10) * 1000000000)

typedef struct lite {
    sqlite3 *db;
    sqlite3_stmt *stmts[EE__SQL_COUNT];
    int64_t busy_since;
    unsigned rng;
} lite;

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int on_busy(void *p, int count)
{
    lite *l = p;
    if (count == 0)
        l->busy_since = mono_ns();
    else if (mono_ns() - l->busy_since > BUSY_TIMEOUT_NS)
        return 0;
    /* 20..~500 us, growing with the attempts, randomised so waiters spread. */
    l->rng = l->rng * 1103515245u + 12345u;
    long us = 20 + (long)((l->rng >> 8) % (unsigned)(20 + (count < 24 ? count * 20 : 480)));
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
    return 1;
}

static ee_status lite_error(lite *l, int rc, const char *what)
{
    const char *msg = l != NULL && l->db != NULL ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc);
    int prim = rc & 0xff;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED)
        return ee__error(EE_EBUSY, "sqlite counters: %s: database busy (%s)", what, msg);
    if (prim == SQLITE_NOMEM)
        return ee__error(EE_ENOMEM, "sqlite counters: %s: out of memory", what);
    if (prim == SQLITE_CORRUPT || prim == SQLITE_NOTADB)
        return ee__error(EE_ECORRUPT, "sqlite counters: %s: %s", what, msg);
    return ee__error(EE_EIO, "sqlite counters: %s: %s", what, msg);
}

static void lite_disconnect(void *conn)
{
    lite *l = conn;
    if (l == NULL)
        return;
    for (int i = 0; i < EE__SQL_COUNT; i++)
        sqlite3_finalize(l->stmts[i]);
    sqlite3_close(l->db);
    free(l);
}

static ee_status lite_exec(void *conn, const char *sql)
{
    lite *l = conn;
    int rc = sqlite3_exec(l->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? EE_OK : lite_error(l, rc, sql);
}

static ee_status lite_connect(const char *path, const ee__logger *lg, void **out)
{
    (void)lg; /* SQLite logs nothing unless SQLITE_CONFIG_LOG is set, and we never set it */
    lite *l = calloc(1, sizeof *l);
    if (l == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening sqlite counters");
    l->rng = (unsigned)(uintptr_t)l ^ (unsigned)mono_ns();
    int rc = sqlite3_open_v2(path, &l->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        char q[128];
        ee__quote_for_message(path, q, sizeof q);
        ee_status st = ee__error(EE_EIO, "sqlite counters: cannot open \"%s\": %s", q,
                                 l->db ? sqlite3_errmsg(l->db) : sqlite3_errstr(rc));
        lite_disconnect(l);
        return st;
    }
    sqlite3_busy_handler(l->db, on_busy, l);
    char mode[16];
    int rc_wal = ee__sqlite_wal(l->db, BUSY_TIMEOUT_NS / 1000000, mode);
    ee_status st = rc_wal == SQLITE_OK ? EE_OK : lite_error(l, rc_wal, "PRAGMA journal_mode=WAL");
    if (st == EE_OK)
        st = lite_exec(l, "PRAGMA synchronous=NORMAL");
    if (st != EE_OK) {
        lite_disconnect(l);
        return st;
    }
    *out = l;
    return EE_OK;
}

static ee_status lite_prepare(lite *l, int stmt, sqlite3_stmt **out)
{
    if (l->stmts[stmt] == NULL) {
        char sql[512];
        const char *text = ee__sql_text[stmt];
        const char *lock = strstr(text, "{LOCK}");
        size_t n = lock ? (size_t)(lock - text) : strlen(text);
        snprintf(sql, sizeof sql, "%.*s%s", (int)n, text, lock ? lock + 6 : "");
        int rc = sqlite3_prepare_v3(l->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &l->stmts[stmt],
                                    NULL);
        if (rc != SQLITE_OK)
            return lite_error(l, rc, "prepare");
    }
    *out = l->stmts[stmt];
    return EE_OK;
}

static ee_status lite_query(void *conn, int stmt, const char *key, const int64_t *args,
                            int nargs, ee__sql_row_fn fn, void *payload, int64_t *changes)
{
    lite *l = conn;
    sqlite3_stmt *s;
    ee_status st = lite_prepare(l, stmt, &s);
    if (st != EE_OK)
        return st;
    int p = 1;
    if (key != NULL)
        sqlite3_bind_text(s, p++, key, -1, SQLITE_STATIC);
    for (int i = 0; i < nargs; i++)
        sqlite3_bind_int64(s, p++, args[i]);
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        int64_t cols[4];
        int n = sqlite3_column_count(s);
        if (n > 4)
            n = 4;
        for (int i = 0; i < n; i++)
            cols[i] = sqlite3_column_int64(s, i);
        if (fn != NULL)
            fn(payload, cols, n);
    }
    if (rc == SQLITE_DONE && changes != NULL)
        *changes = sqlite3_changes(l->db);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? EE_OK : lite_error(l, rc, "query");
}

static bool lite_broken(void *conn)
{
    (void)conn;
    return false;
}

const ee__sql_driver ee__sql_sqlite_driver = {
    .name = "sqlite",
    .begin_sql = "BEGIN IMMEDIATE",
    .connect = lite_connect,
    .disconnect = lite_disconnect,
    .exec = lite_exec,
    .query = lite_query,
    .broken = lite_broken,
    .schema_sql =
        "CREATE TABLE IF NOT EXISTS ee_counters_schema (version INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS ee_counters (k TEXT PRIMARY KEY, window_end INTEGER NOT "
        "NULL, committed INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS ee_counter_reservations (id INTEGER PRIMARY KEY "
        "AUTOINCREMENT, k TEXT NOT NULL, n INTEGER NOT NULL, expires INTEGER NOT NULL);"
        "CREATE INDEX IF NOT EXISTS ee_counter_reservations_k ON ee_counter_reservations "
        "(k, expires);",
    .migration_lock_sql = NULL,
};

ee_status ee__counters_sqlite_create(const char *path, const ee_counters_backend **table,
                                     void **ctx)
{
    return ee__sql_create(&ee__sql_sqlite_driver, path, NULL, table, ctx);
}
