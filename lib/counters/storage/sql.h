/*
 * lib/counters/storage/sql.h - the "storage" counters backend's SQL logic is
 * written once (sql.c) over this small driver interface, implemented for
 * SQLite (sqlite.c) and PostgreSQL (postgres.c). The counters talk SQL
 * directly to their own tables; they do not use the storage module.
 */
#ifndef EE_COUNTERS_STORAGE_SQL_H
#define EE_COUNTERS_STORAGE_SQL_H

#include <stdbool.h>
#include <stdint.h>

#include "counters/counters_internal.h"

/* The statements, by index. Every statement's first parameter (?1) is the
 * counter key (except EE__SQL_VERSION, which has none); the others are
 * integers. "{LOCK}" is where PostgreSQL takes
 * the counter's row lock (" FOR UPDATE"); SQLite holds the database write
 * lock from BEGIN IMMEDIATE instead. */
enum ee__sql_stmt {
    EE__SQL_LOCK,         /* ?1 -> window_end, committed */
    EE__SQL_CREATE,       /* ?1, ?2 window_end */
    EE__SQL_RESET,        /* ?1, ?2 window_end */
    EE__SQL_DROP_ALL,     /* ?1 */
    EE__SQL_DROP_EXPIRED, /* ?1, ?2 now */
    EE__SQL_SUM,          /* ?1 -> outstanding */
    EE__SQL_LEASES,       /* ?1 -> n, expires (rows) */
    EE__SQL_ADD,          /* ?1, ?2 n, ?3 expires -> id */
    EE__SQL_TAKE,         /* ?1, ?2 id -> n, expires (deletes it) */
    EE__SQL_COMMIT,       /* ?1, ?2 amount */
    EE__SQL_RENEW,        /* ?1, ?2 id, ?3 expires, ?4 now -> changes */
    EE__SQL_GET,          /* ?1, ?2 now -> window_end, committed, outstanding */
    EE__SQL_VERSION,      /* no key -> version */
    EE__SQL_COUNT
};

extern const char *const ee__sql_text[EE__SQL_COUNT];

/* Called for each result row: `cols` integers. */
typedef void (*ee__sql_row_fn)(void *payload, const int64_t *cols, int ncols);

typedef struct ee__sql_driver {
    const char *name;       /* "sqlite", "postgres" (for messages) */
    const char *begin_sql;  /* "BEGIN IMMEDIATE" / "BEGIN" */
    /* Open a connection to `target` (path or conninfo); the library's own
     * diagnostics go to `lg` (may be NULL: dropped). */
    ee_status (*connect)(const char *target, const ee__logger *lg, void **conn);
    void (*disconnect)(void *conn);
    /* Run SQL without parameters or results (BEGIN, COMMIT, DDL). */
    ee_status (*exec)(void *conn, const char *sql);
    /* Run statement `stmt` with key ?1 and integers ?2.. ; rows go to fn
     * (may be NULL); *changes (may be NULL) gets the rows changed. */
    ee_status (*query)(void *conn, int stmt, const char *key, const int64_t *args, int nargs,
                       ee__sql_row_fn fn, void *payload, int64_t *changes);
    /* Whether the connection can no longer be used. */
    bool (*broken)(void *conn);
    /* The tables, executed once under the migration lock. */
    const char *schema_sql;
    /* Taken inside the migration transaction before the DDL (NULL: none). */
    const char *migration_lock_sql;
    /* Optional: the whole operation in one round trip (PostgreSQL: a
     * server-side function, its own transaction); NULL: the shared logic
     * runs it statement by statement in a transaction. reserve_call fills
     * results (fits, value, committed, window_end, retry_at, resv_id) and
     * *granted; finish_call answers *code: 0 done, -1 no such counter, -2
     * window ended, -3 expired, -4 amount > n, -5 renew found nothing
     * live, -6 unknown or already finished. Transient conflicts: EE_EBUSY. */
    ee_status (*reserve_call)(void *conn, const ee_counter_req *reqs, const int64_t *leases,
                              size_t count, int64_t now, ee_counter_result *res, int *granted);
    ee_status (*finish_call)(void *conn, const char *key, uint64_t id, int64_t amount,
                             int64_t renew_to, int64_t now, int *code);
} ee__sql_driver;

extern const ee__sql_driver ee__sql_sqlite_driver;
extern const ee__sql_driver ee__sql_postgres_driver;

/* Open the backend on `target` with `driver` (connects once, migrates). */
ee_status ee__sql_create(const ee__sql_driver *driver, const char *target,
                         const ee__logger *lg, const ee_counters_backend **table, void **ctx);

#endif
