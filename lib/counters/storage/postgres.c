/*
 * PostgreSQL driver of the storage counters backend (libpq). Statements are
 * prepared once per connection; the counter's row lock (SELECT ... FOR
 * UPDATE) makes each operation's check-and-change atomic under READ
 * COMMITTED. Deadlocks and serialisation failures come back as EE_EBUSY and
 * the operation is retried by the shared logic. A connection that broke is
 * dropped and replaced on the next call. No clock is read here.
 */
#include "counters/storage/sql.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

typedef struct pg {
    PGconn *conn;
    bool prepared[EE__SQL_COUNT];
    bool prepared_calls; /* ee_ctr_rsv and ee_ctr_fin */
} pg;

/* libpq prints a server's notices to stderr unless told otherwise: they
 * go to the engine's log, or nowhere. */
static void on_notice(void *arg, const char *message)
{
    ee__log_foreign(arg, "counters", message);
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

static ee_status pg_connect(const char *conninfo, const ee__logger *lg, void **out)
{
    pg *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ee__error(EE_ENOMEM, "out of memory connecting postgres counters");
    p->conn = PQconnectdb(conninfo);
    if (p->conn == NULL) {
        free(p);
        return ee__error(EE_ENOMEM, "out of memory connecting postgres counters");
    }
    PQsetNoticeProcessor(p->conn, on_notice, (void *)lg);
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

/* ---- one round trip per operation ---------------------------------------------------
 * The server-side functions (created with the tables, see schema_sql) do
 * what sql.c does statement by statement, in the same order and with the
 * same answers, in one call: the caller's row locks are taken in key order
 * inside the function, so two multi-key reservations cannot deadlock. */

static const char reserve_call_sql[] =
    "SELECT o_fits, o_value, o_committed, o_end, o_retry, o_id FROM "
    "ee_ctr_reserve_v1($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], "
    "$6::bigint)";
static const char finish_call_sql[] =
    "SELECT ee_ctr_finish_v1($1::text, $2::bigint, $3::bigint, $4::bigint, $5::bigint)";

static ee_status prepare_calls(pg *p)
{
    if (p->prepared_calls)
        return EE_OK;
    PGresult *r = PQprepare(p->conn, "ee_ctr_rsv", reserve_call_sql, 0, NULL);
    ee_status st = PQresultStatus(r) == PGRES_COMMAND_OK ? EE_OK : result_error(p, r, "prepare");
    PQclear(r);
    if (st != EE_OK)
        return st;
    r = PQprepare(p->conn, "ee_ctr_fin", finish_call_sql, 0, NULL);
    st = PQresultStatus(r) == PGRES_COMMAND_OK ? EE_OK : result_error(p, r, "prepare");
    PQclear(r);
    p->prepared_calls = st == EE_OK;
    return st;
}

/* A PostgreSQL array literal of the keys: each element double-quoted, with
 * '\\' and '"' escaped (keys hold no control characters). */
static void text_array(const ee_counter_req *reqs, size_t count, char *out)
{
    char *o = out;
    *o++ = '{';
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            *o++ = ',';
        *o++ = '"';
        for (const char *k = reqs[i].key; *k != '\0'; k++) {
            if (*k == '"' || *k == '\\')
                *o++ = '\\';
            *o++ = *k;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
}

/* A bigint array literal of v[0..count). */
static void int_array(const int64_t *v, size_t count, char *out, size_t cap)
{
    size_t n = (size_t)snprintf(out, cap, "{");
    for (size_t i = 0; i < count && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%lld", i ? "," : "", (long long)v[i]);
    if (n < cap)
        snprintf(out + n, cap - n, "}");
}

#define ARRAY_TEXT_MAX (EE_COUNTERS_MANY_MAX * (2 * EE_COUNTERS_KEY_MAX + 3) + 3)
#define ARRAY_INT_MAX (EE_COUNTERS_MANY_MAX * 21 + 3)

static ee_status read_reserve_rows(pg *p, PGresult *r, size_t count, ee_counter_result *res,
                                   int *granted)
{
    if (PQntuples(r) != (int)count || PQnfields(r) != 6)
        return ee__error(EE_EIO, "postgres counters: the reserve function answered %d rows",
                         PQntuples(r));
    (void)p;
    bool all = true;
    for (size_t i = 0; i < count; i++) {
        int row = (int)i;
        res[i].fits = PQgetvalue(r, row, 0)[0] == 't';
        res[i].value = strtoll(PQgetvalue(r, row, 1), NULL, 10);
        res[i].committed = strtoll(PQgetvalue(r, row, 2), NULL, 10);
        res[i].window_end_ms = strtoll(PQgetvalue(r, row, 3), NULL, 10);
        res[i].retry_at_ms = strtoll(PQgetvalue(r, row, 4), NULL, 10);
        res[i].resv_id = (uint64_t)strtoll(PQgetvalue(r, row, 5), NULL, 10);
        all = all && res[i].resv_id != 0;
    }
    *granted = all;
    return EE_OK;
}

static ee_status pg_reserve_call(void *conn, const ee_counter_req *reqs, const int64_t *leases,
                                 size_t count, int64_t now, ee_counter_result *res, int *granted)
{
    pg *p = conn;
    ee_status st = prepare_calls(p);
    if (st != EE_OK)
        return st;
    int64_t col[4][EE_COUNTERS_MANY_MAX];
    for (size_t i = 0; i < count; i++) {
        col[0][i] = reqs[i].n;
        col[1][i] = reqs[i].limit;
        col[2][i] = ee__counters_new_window_end(&reqs[i], now);
        col[3][i] = now + leases[i];
    }
    char keys[ARRAY_TEXT_MAX], ints[4][ARRAY_INT_MAX], nowb[24];
    text_array(reqs, count, keys);
    for (int c = 0; c < 4; c++)
        int_array(col[c], count, ints[c], sizeof ints[c]);
    snprintf(nowb, sizeof nowb, "%lld", (long long)now);
    const char *values[6] = {keys, ints[0], ints[1], ints[2], ints[3], nowb};
    PGresult *r = PQexecPrepared(p->conn, "ee_ctr_rsv", 6, values, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        st = result_error(p, r, "reserve");
    else
        st = read_reserve_rows(p, r, count, res, granted);
    PQclear(r);
    return st;
}

static ee_status pg_finish_call(void *conn, const char *key, uint64_t id, int64_t amount,
                                int64_t renew_to, int64_t now, int *code)
{
    pg *p = conn;
    ee_status st = prepare_calls(p);
    if (st != EE_OK)
        return st;
    char nums[4][24];
    snprintf(nums[0], sizeof nums[0], "%llu", (unsigned long long)id);
    snprintf(nums[1], sizeof nums[1], "%lld", (long long)amount);
    snprintf(nums[2], sizeof nums[2], "%lld", (long long)renew_to);
    snprintf(nums[3], sizeof nums[3], "%lld", (long long)now);
    const char *values[5] = {key, nums[0], nums[1], nums[2], nums[3]};
    PGresult *r = PQexecPrepared(p->conn, "ee_ctr_fin", 5, values, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1)
        st = result_error(p, r, "finish");
    else
        *code = (int)strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return st;
}

static bool pg_broken(void *conn)
{
    pg *p = conn;
    /* Read what the server sent while the connection was idle (libpq's
     * socket is non-blocking: this never waits). A restart's notice is
     * delivered now, and a connection the server closed is found dead here,
     * before a call is sent on it. */
    if (PQstatus(p->conn) == CONNECTION_OK && PQtransactionStatus(p->conn) == PQTRANS_IDLE)
        (void)PQconsumeInput(p->conn);
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
        "(k, expires);"
        /* One round trip per operation (pg_reserve_call, pg_finish_call); the
         * names carry a version so a library with other semantics never
         * replaces them. */
        "CREATE OR REPLACE FUNCTION ee_ctr_reserve_v1(p_keys text[], p_n bigint[], "
        "p_limit bigint[], p_end bigint[], p_expires bigint[], p_now bigint) "
        "RETURNS TABLE (o_fits boolean, o_value bigint, o_committed bigint, o_end bigint, "
        "o_retry bigint, o_id bigint) LANGUAGE plpgsql AS $f$\n"
        "DECLARE\n"
        "  v_cnt int := cardinality(p_keys);\n"
        "  v_e bigint[] := array_fill(0::bigint, ARRAY[cardinality(p_keys)]);\n"
        "  v_c bigint[] := array_fill(0::bigint, ARRAY[cardinality(p_keys)]);\n"
        "  v_o bigint[] := array_fill(0::bigint, ARRAY[cardinality(p_keys)]);\n"
        "  v_id bigint[] := array_fill(0::bigint, ARRAY[cardinality(p_keys)]);\n"
        "  v_fit boolean[] := array_fill(false, ARRAY[cardinality(p_keys)]);\n"
        "  v_all boolean := true;\n"
        "  v_i int; v_we bigint; v_wc bigint; v_sum bigint; v_need bigint; v_new bigint;\n"
        "  v_r record;\n"
        "BEGIN\n"
        "  FOR v_i IN SELECT g FROM generate_subscripts(p_keys, 1) g ORDER BY p_keys[g] LOOP\n"
        "    SELECT c.window_end, c.committed INTO v_we, v_wc FROM ee_counters c\n"
        "      WHERE c.k = p_keys[v_i] FOR UPDATE;\n"
        "    IF NOT FOUND THEN\n"
        "      INSERT INTO ee_counters (k, window_end, committed) VALUES (p_keys[v_i], "
        "p_end[v_i], 0)\n"
        "        ON CONFLICT (k) DO NOTHING;\n"
        "      SELECT c.window_end, c.committed INTO v_we, v_wc FROM ee_counters c\n"
        "        WHERE c.k = p_keys[v_i] FOR UPDATE;\n"
        "    END IF;\n"
        "    IF v_we <> 0 AND p_now >= v_we THEN\n"
        "      v_we := p_end[v_i]; v_wc := 0;\n"
        "      DELETE FROM ee_counter_reservations r WHERE r.k = p_keys[v_i];\n"
        "      UPDATE ee_counters c SET window_end = v_we, committed = 0 WHERE c.k = "
        "p_keys[v_i];\n"
        "    ELSE\n"
        "      DELETE FROM ee_counter_reservations r WHERE r.k = p_keys[v_i] AND r.expires <= "
        "p_now;\n"
        "    END IF;\n"
        "    SELECT COALESCE(SUM(r.n), 0) INTO v_sum FROM ee_counter_reservations r\n"
        "      WHERE r.k = p_keys[v_i];\n"
        "    v_e[v_i] := v_we; v_c[v_i] := v_wc; v_o[v_i] := v_sum;\n"
        "    v_fit[v_i] := v_wc + v_sum <= p_limit[v_i] - p_n[v_i];\n"
        "    v_all := v_all AND v_fit[v_i];\n"
        "  END LOOP;\n"
        "  IF v_all THEN\n"
        "    FOR v_i IN SELECT g FROM generate_subscripts(p_keys, 1) g ORDER BY p_keys[g] LOOP\n"
        "      INSERT INTO ee_counter_reservations (k, n, expires)\n"
        "        VALUES (p_keys[v_i], p_n[v_i], p_expires[v_i]) RETURNING id INTO v_new;\n"
        "      v_id[v_i] := v_new;\n"
        "    END LOOP;\n"
        "  END IF;\n"
        "  FOR v_i IN 1 .. v_cnt LOOP\n"
        "    o_fits := v_fit[v_i]; o_committed := v_c[v_i]; o_end := v_e[v_i];\n"
        "    o_value := v_c[v_i] + v_o[v_i]; o_retry := 0; o_id := 0;\n"
        "    IF v_all THEN\n"
        "      o_value := o_value + p_n[v_i]; o_id := v_id[v_i];\n"
        "    ELSIF NOT v_fit[v_i] AND p_n[v_i] <= p_limit[v_i] THEN\n"
        "      IF v_c[v_i] + p_n[v_i] > p_limit[v_i] THEN\n"
        "        o_retry := v_e[v_i];\n"
        "      ELSE\n"
        "        v_need := v_c[v_i] + v_o[v_i] + p_n[v_i] - p_limit[v_i];\n"
        "        o_retry := v_e[v_i];\n"
        "        FOR v_r IN SELECT r.n, r.expires FROM ee_counter_reservations r\n"
        "            WHERE r.k = p_keys[v_i] ORDER BY r.expires LOOP\n"
        "          v_need := v_need - v_r.n;\n"
        "          IF v_need <= 0 THEN\n"
        "            o_retry := CASE WHEN v_e[v_i] <> 0 AND v_r.expires > v_e[v_i] THEN v_e[v_i]\n"
        "                       ELSE v_r.expires END;\n"
        "            EXIT;\n"
        "          END IF;\n"
        "        END LOOP;\n"
        "      END IF;\n"
        "    END IF;\n"
        "    RETURN NEXT;\n"
        "  END LOOP;\n"
        "END $f$;"
        "CREATE OR REPLACE FUNCTION ee_ctr_finish_v1(p_key text, p_id bigint, p_amount bigint, "
        "p_renew_to bigint, p_now bigint) RETURNS int LANGUAGE plpgsql AS $f$\n"
        "DECLARE v_we bigint; v_n bigint; v_exp bigint; v_keep bigint;\n"
        "BEGIN\n"
        "  SELECT c.window_end INTO v_we FROM ee_counters c WHERE c.k = p_key FOR UPDATE;\n"
        "  IF NOT FOUND THEN RETURN -1; END IF;\n"
        "  IF v_we <> 0 AND p_now >= v_we THEN RETURN -2; END IF;\n"
        "  IF p_renew_to > 0 THEN\n"
        "    UPDATE ee_counter_reservations r SET expires = p_renew_to\n"
        "      WHERE r.k = p_key AND r.id = p_id AND r.expires > p_now;\n"
        "    IF NOT FOUND THEN RETURN -5; END IF;\n"
        "    RETURN 0;\n"
        "  END IF;\n"
        "  SELECT r.n, r.expires INTO v_n, v_exp FROM ee_counter_reservations r\n"
        "    WHERE r.k = p_key AND r.id = p_id;\n"
        "  IF NOT FOUND THEN RETURN -6; END IF;\n"
        "  IF v_exp <= p_now THEN\n"
        "    DELETE FROM ee_counter_reservations r WHERE r.id = p_id;\n"
        "    RETURN -3;\n"
        "  END IF;\n"
        "  IF p_amount > v_n THEN RETURN -4; END IF;\n"
        "  DELETE FROM ee_counter_reservations r WHERE r.id = p_id;\n"
        "  v_keep := CASE WHEN p_amount < 0 THEN v_n ELSE p_amount END;\n"
        "  IF v_keep > 0 THEN\n"
        "    UPDATE ee_counters c SET committed = c.committed + v_keep WHERE c.k = p_key;\n"
        "  END IF;\n"
        "  RETURN 0;\n"
        "END $f$;",
    /* Hosts opening at once would race on CREATE TABLE IF NOT EXISTS. */
    .migration_lock_sql = "SELECT pg_advisory_xact_lock(7261010123)",
    .reserve_call = pg_reserve_call,
    .finish_call = pg_finish_call,
};

ee_status ee__counters_postgres_create(const char *conninfo, const ee__logger *lg,
                                       const ee_counters_backend **table, void **ctx)
{
    return ee__sql_create(&ee__sql_postgres_driver, conninfo, lg, table, ctx);
}
