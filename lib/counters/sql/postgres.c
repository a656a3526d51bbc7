/*
 * PostgreSQL driver of the storage counters backend (libpq). Statements are
 * prepared once per connection; the counter's row lock (SELECT ... FOR
 * UPDATE) makes each operation's check-and-change atomic under READ
 * COMMITTED. Deadlocks and serialisation failures come back as EE_EBUSY and
 * the operation is retried by the shared logic. A connection that broke is
 * dropped and replaced on the next call. No clock is read here.
 */
#include "counters/sql/sql.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

typedef struct pg {
    PGconn *conn;
    bool prepared[EE__SQL_COUNT];
} pg;

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* The first line of libpq's message, for ours. */
static void first_line(const char *in, char *out, size_t cap)
{
    snprintf(out, cap, "%s", in != NULL ? in : "");
    out[strcspn(out, "\r\n")] = '\0';
}

static ee_status result_error(pg *p, PGresult *r, const char *what)
{
    char msg[256];
    first_line(r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(p->conn), msg, sizeof msg);
    if (msg[0] == '\0')
        first_line(PQerrorMessage(p->conn), msg, sizeof msg);
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(p->conn) != CONNECTION_OK)
        return ee__error(EE_ENETWORK, "postgres counters: %s: connection lost: %s", what, msg);
    if (state != NULL && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0 ||
                          strcmp(state, "55P03") == 0))
        return ee__error(EE_EBUSY, "postgres counters: %s: %s", what, msg);
    if (state != NULL && strncmp(state, "08", 2) == 0)
        return ee__error(EE_ENETWORK, "postgres counters: %s: %s", what, msg);
    return ee__error(EE_EIO, "postgres counters: %s: %s (SQLSTATE %s)", what, msg,
                     state != NULL ? state : "?");
}

static void pg_disconnect(void *conn)
{
    pg *p = conn;
    if (p == NULL)
        return;
    PQfinish(p->conn);
    free(p);
}

static ee_status pg_connect(const char *conninfo, void **out)
{
    pg *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ee__error(EE_ENOMEM, "out of memory connecting postgres counters");
    p->conn = PQconnectdb(conninfo);
    if (p->conn == NULL) {
        free(p);
        return ee__error(EE_ENOMEM, "out of memory connecting postgres counters");
    }
    if (PQstatus(p->conn) != CONNECTION_OK) {
        char msg[256];
        first_line(PQerrorMessage(p->conn), msg, sizeof msg);
        /* Only a URI is echoed, and only with its password masked. */
        char *masked = strstr(conninfo, "://") != NULL ? ee__uri_masked(conninfo) : NULL;
        bool auth = strstr(msg, "authentication failed") != NULL ||
                    strstr(msg, "password") != NULL;
        ee_status st = ee__error(auth ? EE_EAUTH : EE_ENETWORK,
                                 "postgres counters: cannot connect to %s: %s",
                                 masked != NULL ? masked : "the server", msg);
        free(masked);
        pg_disconnect(p);
        return st;
    }
    PQsetNoticeProcessor(p->conn, quiet, NULL);
    *out = p;
    return EE_OK;
}

static ee_status pg_exec(void *conn, const char *sql)
{
    pg *p = conn;
    PGresult *r = PQexec(p->conn, sql);
    ExecStatusType s = PQresultStatus(r);
    ee_status st = (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) ? EE_OK
                                                                    : result_error(p, r, sql);
    PQclear(r);
    return st;
}

static ee_status pg_prepare(pg *p, int stmt, char name[16])
{
    snprintf(name, 16, "ee_ctr_%d", stmt);
    if (p->prepared[stmt])
        return EE_OK;
    /* ?N becomes $N, {LOCK} becomes FOR UPDATE. */
    char sql[600];
    size_t o = 0;
    for (const char *t = ee__sql_text[stmt]; *t != '\0' && o + 16 < sizeof sql; t++) {
        if (strncmp(t, "{LOCK}", 6) == 0) {
            o += (size_t)snprintf(sql + o, sizeof sql - o, " FOR UPDATE");
            t += 5;
        } else {
            sql[o++] = *t == '?' ? '$' : *t;
        }
    }
    sql[o] = '\0';
    PGresult *r = PQprepare(p->conn, name, sql, 0, NULL);
    ee_status st = PQresultStatus(r) == PGRES_COMMAND_OK ? EE_OK : result_error(p, r, "prepare");
    PQclear(r);
    if (st == EE_OK)
        p->prepared[stmt] = true;
    return st;
}

static ee_status pg_query(void *conn, int stmt, const char *key, const int64_t *args, int nargs,
                          ee__sql_row_fn fn, void *payload, int64_t *changes)
{
    pg *p = conn;
    char name[16];
    ee_status st = pg_prepare(p, stmt, name);
    if (st != EE_OK)
        return st;
    const char *values[8];
    char nums[8][24];
    int np = 0;
    if (key != NULL)
        values[np++] = key;
    for (int i = 0; i < nargs && np < 8; i++) {
        snprintf(nums[i], sizeof nums[i], "%lld", (long long)args[i]);
        values[np++] = nums[i];
    }
    PGresult *r = PQexecPrepared(p->conn, name, np, values, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        st = result_error(p, r, "query");
        PQclear(r);
        return st;
    }
    if (fn != NULL && s == PGRES_TUPLES_OK) {
        int rows = PQntuples(r), cols = PQnfields(r);
        if (cols > 4)
            cols = 4;
        for (int i = 0; i < rows; i++) {
            int64_t v[4] = {0};
            for (int j = 0; j < cols; j++)
                if (!PQgetisnull(r, i, j))
                    v[j] = strtoll(PQgetvalue(r, i, j), NULL, 10);
            fn(payload, v, cols);
        }
    }
    if (changes != NULL) {
        const char *t = PQcmdTuples(r);
        *changes = (t != NULL && t[0] != '\0') ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(r);
    return EE_OK;
}

static bool pg_broken(void *conn)
{
    pg *p = conn;
    return PQstatus(p->conn) != CONNECTION_OK ||
           PQtransactionStatus(p->conn) != PQTRANS_IDLE;
}

const ee__sql_driver ee__sql_postgres_driver = {
    .name = "postgres",
    .begin_sql = "BEGIN",
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec = pg_exec,
    .query = pg_query,
    .broken = pg_broken,
    .schema_sql =
        "CREATE TABLE IF NOT EXISTS ee_counters_schema (version INTEGER NOT NULL);"
        "CREATE TABLE IF NOT EXISTS ee_counters (k TEXT PRIMARY KEY, window_end BIGINT NOT "
        "NULL, committed BIGINT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS ee_counter_reservations (id BIGINT GENERATED ALWAYS AS "
        "IDENTITY PRIMARY KEY, k TEXT NOT NULL, n BIGINT NOT NULL, expires BIGINT NOT NULL);"
        "CREATE INDEX IF NOT EXISTS ee_counter_reservations_k ON ee_counter_reservations "
        "(k, expires);",
    /* Hosts opening at once would race on CREATE TABLE IF NOT EXISTS. */
    .migration_lock_sql = "SELECT pg_advisory_xact_lock(7261010123)",
};

ee_status ee__counters_postgres_create(const char *conninfo, const ee_counters_backend **table,
                                       void **ctx)
{
    return ee__sql_create(&ee__sql_postgres_driver, conninfo, table, ctx);
}
