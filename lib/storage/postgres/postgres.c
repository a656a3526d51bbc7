/*
 * The postgres backend (libpq), for several hosts sharing one database.
 * One table per collection, like sqlite: id bytea unique, ws, rev, t, one
 * text column per indexed field, doc bytea (the BSON bytes, unchanged).
 * Every statement is parameterised (PQexecParams); identifiers come from
 * the static collection table only. Threads share a small pool of
 * connections (one thread per connection at a time). The schema version
 * lives in ee_meta; migrations run under an advisory lock so that hosts
 * opening a new database at once create it exactly once. Increments lock
 * the row with SELECT ... FOR UPDATE inside one transaction.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "storage/internal.h"

#define POOL_MAX 4
#define SQL_MAX 2048
#define PARAMS_MAX 48
#define MIGRATION_LOCK 0x65655f73746f72LL /* "ee_stor" */

typedef struct pconn {
    PGconn *pg;
} pconn;

typedef struct pg {
    char *conninfo; /* secret: may hold a password */
    char *schema;
    size_t redact_start, redact_len; /* the URI's password, registered for redaction */
    const ee__logger *log; /* the engine's, or NULL; receives libpq's notices */
    ee__pool pool;
} pg;

/* ---- parameters ------------------------------------------------------------------- */

typedef struct params {
    const char *v[PARAMS_MAX];
    int len[PARAMS_MAX];
    int fmt[PARAMS_MAX];
    char num[PARAMS_MAX][24];
    int n;
} params;

static void p_text(params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void p_bin(params *p, const void *data, size_t len)
{
    p->v[p->n] = data;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

static void p_int(params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof p->num[p->n], "%" PRId64, v);
    p_text(p, p->num[p->n]);
}

/* ---- errors ---------------------------------------------------------------------- */

static const char *first_line(const char *msg, char *buf, size_t cap)
{
    size_t n = strcspn(msg, "\n");
    if (n >= cap)
        n = cap - 1;
    memcpy(buf, msg, n);
    buf[n] = '\0';
    return buf;
}

static ee_status result_error(PGconn *c, PGresult *r, const char *what)
{
    char line[300];
    const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    ee_status st = EE_EIO;
    if (PQstatus(c) == CONNECTION_BAD || (state != NULL && strncmp(state, "08", 2) == 0))
        st = EE_ENETWORK;
    else if (state != NULL && strcmp(state, "23505") == 0)
        st = EE_EEXISTS;
    else if (state != NULL && (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
                               strcmp(state, "55P03") == 0))
        st = EE_EBUSY;
    else if (state != NULL && strcmp(state, "57014") == 0)
        st = EE_ETIMEOUT;
    else if (state != NULL && strcmp(state, "54000") == 0)
        st = EE_ETOOBIG;
    return ee__error(st, "postgres: %s: %s", what, first_line(PQerrorMessage(c), line,
                                                              sizeof line));
}

/* Run a statement; *out (if not NULL) receives the result to PQclear(). */
static ee_status run(PGconn *c, const char *sql, const params *p, int binary_result,
                     const char *what, PGresult **out)
{
    /* Without parameters (DDL, session settings, several statements at
     * once) the simple protocol; otherwise always bound parameters. */
    PGresult *r = p == NULL && !binary_result
                      ? PQexec(c, sql)
                      : PQexecParams(c, sql, p ? p->n : 0, NULL, p ? p->v : NULL,
                                     p ? p->len : NULL, p ? p->fmt : NULL, binary_result);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        ee_status st = result_error(c, r, what);
        PQclear(r);
        if (out != NULL)
            *out = NULL;
        return st;
    }
    if (out != NULL)
        *out = r;
    else
        PQclear(r);
    return EE_OK;
}

static int64_t get_i64(const PGresult *r, int row, int col)
{
    const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
    if (PQgetlength(r, row, col) != 8)
        return 0;
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = u << 8 | p[i];
    return (int64_t)u;
}

/* ---- connections ----------------------------------------------------------------- */

static void quote_ident(const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "\"%s\"", name); /* names come from our own table or a checked schema */
}

/* libpq prints a server's notices to stderr unless told otherwise (an
 * immediate shutdown's "terminating connection" warning arrives on every
 * idle connection): they go to the engine's log, or nowhere. */
static void on_notice(void *arg, const char *message)
{
    ee__log_foreign(((const pg *)arg)->log, "storage", message);
}

static ee_status connect_one(pg *g, PGconn **out)
{
    PGconn *c = PQconnectdb(g->conninfo);
    if (c == NULL)
        return ee__error(EE_ENOMEM, "postgres: out of memory");
    PQsetNoticeProcessor(c, on_notice, g);
    if (PQstatus(c) != CONNECTION_OK) {
        char line[300];
        const char *msg = PQerrorMessage(c);
        /* The message never carries the password; host and port are what
         * an operator needs. */
        ee_status st = (strstr(msg, "authentication") != NULL ||
                        strstr(msg, "password") != NULL)
                           ? EE_EAUTH
                           : EE_ENETWORK;
        const char *host = PQhost(c), *port = PQport(c);
        ee__error(st, "postgres: cannot connect to %s:%s: %s",
                  host && host[0] ? host : "(default host)", port && port[0] ? port : "5432",
                  first_line(msg, line, sizeof line));
        PQfinish(c);
        return st;
    }
    ee_status st = run(c, "SET client_min_messages = warning", NULL, 0, "session setup", NULL);
    if (st == EE_OK && g->schema != NULL) {
        char sql[128], id[80];
        quote_ident(g->schema, id, sizeof id);
        snprintf(sql, sizeof sql, "SET search_path TO %s", id);
        st = run(c, sql, NULL, 0, "session setup", NULL);
    }
    if (st != EE_OK) {
        PQfinish(c);
        return st;
    }
    *out = c;
    return EE_OK;
}

/* ---- the pool (core/pool.h) ----------------------------------------------------- */

static ee_status pool_open(void *owner, void **out)
{
    pconn *pc = calloc(1, sizeof *pc);
    ee_status st = pc == NULL ? ee__error(EE_ENOMEM, "postgres: out of memory")
                              : connect_one(owner, &pc->pg);
    if (st != EE_OK) {
        free(pc);
        pc = NULL;
    }
    *out = pc;
    return st;
}

static void pool_close(void *owner, void *vpc)
{
    (void)owner;
    pconn *pc = vpc;
    PQfinish(pc->pg);
    free(pc);
}

/* A transaction left open by an error is rolled back; a broken connection
 * is dropped and the next caller opens a new one. */
static bool pool_reuse(void *owner, void *vpc)
{
    (void)owner;
    pconn *pc = vpc;
    if (PQstatus(pc->pg) == CONNECTION_OK && PQtransactionStatus(pc->pg) != PQTRANS_IDLE)
        PQclear(PQexec(pc->pg, "ROLLBACK"));
    return PQstatus(pc->pg) == CONNECTION_OK;
}

static const ee__pool_ops pg_pool_ops = {pool_open, pool_close, pool_reuse};

/* Read what the server sent while the connection was idle (libpq's socket
 * is non-blocking: this never waits): a restart's notice is delivered now,
 * and a connection the server closed is found dead before a call is sent
 * on it, then dropped (pool_reuse) and replaced. */
static bool alive(pconn *pc)
{
    if (PQstatus(pc->pg) == CONNECTION_OK && PQtransactionStatus(pc->pg) == PQTRANS_IDLE)
        (void)PQconsumeInput(pc->pg);
    return PQstatus(pc->pg) == CONNECTION_OK;
}

/* The connection of the atomic scope (ee__storage_atomic()) the calling
 * thread is inside: every slot it calls on `g` uses it, inside its
 * transaction. */
static _Thread_local struct {
    pg *g;
    pconn *pc;
} pin;

static bool pinned(const pg *g)
{
    return pin.g == g;
}

static ee_status acquire(pg *g, pconn **out)
{
    if (pinned(g)) {
        *out = pin.pc;
        if (PQtransactionStatus(pin.pc->pg) != PQTRANS_INTRANS)
            return ee__error(EE_EIO, "postgres: the transaction of this step failed at an "
                                     "earlier statement (or the connection was lost)");
        return EE_OK;
    }
    void *pc = NULL;
    ee_status st = EE_OK;
    for (int attempt = 0; attempt <= POOL_MAX; attempt++) {
        st = ee__pool_take(&g->pool, &pc);
        if (st != EE_OK || alive(pc))
            break;
        ee__pool_give(&g->pool, pc);
        pc = NULL;
    }
    if (st == EE_OK && pc == NULL)
        st = ee__pool_take(&g->pool, &pc);
    *out = pc;
    return st;
}

static void release(pg *g, pconn *pc)
{
    if (pinned(g) && pc == pin.pc)
        return; /* the scope's: given back by its end */
    ee__pool_give(&g->pool, pc);
}

/* BEGIN/COMMIT of a slot's own transaction, unless the scope's is open. */
static ee_status begin_own(pg *g, pconn *pc)
{
    return pinned(g) ? EE_OK : run(pc->pg, "BEGIN", NULL, 0, "cannot begin", NULL);
}

static ee_status commit_own(pg *g, pconn *pc, const char *what)
{
    return pinned(g) ? EE_OK : run(pc->pg, "COMMIT", NULL, 0, what, NULL);
}

/* ---- SQL text ------------------------------------------------------------------- */

static void cat(char *buf, const char *fmt, ...) EE__PRINTF(2, 3);
static void cat(char *buf, const char *fmt, ...)
{
    size_t n = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, SQL_MAX - n, fmt, ap);
    va_end(ap);
}

static void table(const ee_storage_collection *c, char *out, size_t cap)
{
    snprintf(out, cap, "\"ee_%s\"", c->name);
}

static void col(const ee_storage_collection *c, size_t i, char *out, size_t cap)
{
    ee__storage_column_name(c->fields[i], out, cap);
}

/* ---- schema -------------------------------------------------------------------- */

/* Every collection's table and indexes; `ine` adds IF NOT EXISTS (the
 * version 3 step, which adds the tables of newer collections). */
static ee_status create_tables(PGconn *pc, bool ine)
{
    const char *x = ine ? "IF NOT EXISTS " : "";
    size_t n;
    const ee_storage_collection *const *all = ee__storage_collections(&n);
    char buf[SQL_MAX], t[80], cn[EE_STORAGE_FIELD_MAX + 4];
    for (size_t i = 0; i < n; i++) {
        const ee_storage_collection *c = all[i];
        table(c, t, sizeof t);
        buf[0] = '\0';
        cat(buf, "CREATE TABLE %s%s (id bytea NOT NULL UNIQUE, ws text NOT NULL, rev bigint "
                 "NOT NULL, t bigint NOT NULL", x, t);
        for (size_t f = 0; f < c->n_fields; f++) {
            col(c, f, cn, sizeof cn);
            cat(buf, ", %s text", cn);
        }
        cat(buf, ", doc bytea NOT NULL);");
        cat(buf, "CREATE INDEX %s\"ee_%s_t\" ON %s (ws, t, id);", x, c->name, t);
        for (size_t k = 0; k < c->n_indexes; k++) {
            cat(buf, "CREATE INDEX %s\"ee_%s_i%zu\" ON %s (ws", x, c->name, k, t);
            for (const int *f = c->indexes[k]; *f >= 0; f++) {
                col(c, (size_t)*f, cn, sizeof cn);
                cat(buf, ", %s", cn);
            }
            cat(buf, ", t, id);");
        }
        if (c->n_unique > 0) {
            cat(buf, "CREATE UNIQUE INDEX %s\"ee_%s_u\" ON %s (ws", x, c->name, t);
            for (size_t u = 0; u < c->n_unique; u++) {
                col(c, (size_t)c->unique[u], cn, sizeof cn);
                cat(buf, ", %s", cn);
            }
            cat(buf, ");");
        }
        ee_status st = run(pc, buf, NULL, 0, "cannot create the tables", NULL);
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

static ee_status migrate_locked(pg *g, PGconn *c)
{
    ee_status st;
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld)", (long long)MIGRATION_LOCK);
    if ((st = run(c, sql, NULL, 0, "cannot lock for migration", NULL)) != EE_OK)
        return st;
    if (g->schema != NULL) {
        char id[80];
        quote_ident(g->schema, id, sizeof id);
        snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS %s", id);
        if ((st = run(c, sql, NULL, 0, "cannot create the schema", NULL)) != EE_OK)
            return st;
    }
    if ((st = run(c, "CREATE TABLE IF NOT EXISTS ee_meta (key text PRIMARY KEY, value bigint "
                     "NOT NULL)", NULL, 0, "cannot create ee_meta", NULL)) != EE_OK)
        return st;
    PGresult *r;
    if ((st = run(c, "SELECT value FROM ee_meta WHERE key = 'schema_version'", NULL, 0,
                  "cannot read the schema version", &r)) != EE_OK)
        return st;
    long long version = PQntuples(r) > 0 ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    if (version > EE__STORAGE_SCHEMA_VERSION)
        return ee__error(EE_EVERSION,
                         "postgres: the database has schema version %lld, newer than the %d "
                         "this library knows: upgrade libexecengine", version,
                         EE__STORAGE_SCHEMA_VERSION);
    /* Each step takes the database from version v to v + 1. */
    if (version < 1 && (st = create_tables(c, false)) != EE_OK)
        return st;
    if (version < 2 &&
        ((st = run(c, EE__STORAGE_V2_DEDUPE, NULL, 0, "cannot migrate to schema version 2",
                   NULL)) != EE_OK ||
         (st = run(c, EE__STORAGE_V2_INDEX, NULL, 0, "cannot migrate to schema version 2",
                   NULL)) != EE_OK))
        return st;
    /* 3: the queue's and the gateway's collections; 4: the e-mail outbox */
    if (version >= 1 && version < 4 && (st = create_tables(c, true)) != EE_OK)
        return st;
    if (version < EE__STORAGE_SCHEMA_VERSION) {
        params p = {0};
        p_int(&p, EE__STORAGE_SCHEMA_VERSION);
        st = run(c, "INSERT INTO ee_meta (key, value) VALUES ('schema_version', $1) ON CONFLICT "
                    "(key) DO UPDATE SET value = EXCLUDED.value", &p, 0,
                 "cannot record the schema version", NULL);
    }
    return st;
}

static ee_status migrate(pg *g, PGconn *c)
{
    ee_status st = run(c, "BEGIN", NULL, 0, "cannot begin the migration", NULL);
    if (st != EE_OK)
        return st;
    st = migrate_locked(g, c);
    if (st == EE_OK)
        st = run(c, "COMMIT", NULL, 0, "cannot commit the migration", NULL);
    else
        PQclear(PQexec(c, "ROLLBACK"));
    return st;
}

/* ---- operations ---------------------------------------------------------------- */

static void p_record(params *p, const ee_storage_collection *c, const ee_storage_record *r)
{
    for (size_t i = 0; i < c->n_fields; i++)
        p_text(p, r->values[i]); /* NULL is SQL NULL */
}

static ee_status insert_row(PGconn *c, const ee_storage_collection *coll,
                            const ee_storage_record *r, bool on_conflict_nothing,
                            bool *inserted)
{
    char sql[SQL_MAX] = "", t[80], cn[EE_STORAGE_FIELD_MAX + 4];
    table(coll, t, sizeof t);
    cat(sql, "INSERT INTO %s (id, ws, rev, t", t);
    for (size_t i = 0; i < coll->n_fields; i++) {
        col(coll, i, cn, sizeof cn);
        cat(sql, ", %s", cn);
    }
    cat(sql, ", doc) VALUES ($1, $2, $3, $4");
    for (size_t i = 0; i < coll->n_fields + 1; i++)
        cat(sql, ", $%zu", i + 5);
    cat(sql, ")%s", on_conflict_nothing ? " ON CONFLICT DO NOTHING" : "");
    params p = {0};
    p_bin(&p, r->id, 12);
    p_text(&p, r->workspace);
    p_int(&p, r->revision);
    p_int(&p, r->time);
    p_record(&p, coll, r);
    p_bin(&p, r->data, r->len);
    PGresult *res;
    ee_status st = run(c, sql, &p, 0, "insert failed", &res);
    if (st == EE_EEXISTS)
        return ee__error(EE_EEXISTS, "%s: a document with the same id or unique key exists",
                         coll->name);
    if (st == EE_OK) {
        if (inserted != NULL)
            *inserted = strcmp(PQcmdTuples(res), "1") == 0;
        PQclear(res);
    }
    return st;
}

/* A connection inside a transaction (BEGIN), until tx_end(). */
static ee_status tx_begin(pg *g, pconn **out)
{
    ee_status st = acquire(g, out);
    if (st != EE_OK)
        return st;
    st = begin_own(g, *out); /* inside an atomic scope: already in its transaction */
    if (st != EE_OK)
        release(g, *out);
    return st;
}

/* Commit when `st` (what the work inside returned) is EE_OK, give the
 * connection back (release() rolls back what is left open) and return the
 * first failure; `what` words a failed commit. */
static ee_status tx_end(pg *g, pconn *pc, ee_status st, const char *what)
{
    if (st == EE_OK)
        st = commit_own(g, pc, what);
    release(g, pc); /* rolls back on failure */
    return st;
}

static ee_status pg_insert(void *ctx, const ee_storage_collection *c, const ee_storage_record *r)
{
    pg *g = ctx;
    pconn *pc;
    ee_status st = acquire(g, &pc);
    if (st != EE_OK)
        return st;
    st = insert_row(pc->pg, c, r, false, NULL);
    release(g, pc);
    return st;
}

static ee_status pg_get(void *ctx, const ee_storage_collection *c, const char *ws,
                        const uint8_t *id, ee_storage_row_fn fn, void *payload)
{
    pg *g = ctx;
    char sql[256], t[80];
    table(c, t, sizeof t);
    snprintf(sql, sizeof sql, "SELECT rev, t, doc FROM %s WHERE id = $1 AND ws = $2", t);
    params p = {0};
    p_bin(&p, id, 12);
    p_text(&p, ws);
    pconn *pc;
    ee_status st = acquire(g, &pc);
    if (st != EE_OK)
        return st;
    PGresult *r;
    if ((st = run(pc->pg, sql, &p, 1, "get failed", &r)) == EE_OK) {
        if (PQntuples(r) == 0) {
            st = ee__storage_not_found(c, id);
        } else {
            ee_storage_row row = {id, get_i64(r, 0, 0), get_i64(r, 0, 1),
                                  (const uint8_t *)PQgetvalue(r, 0, 2),
                                  (size_t)PQgetlength(r, 0, 2)};
            (void)fn(&row, payload);
        }
        PQclear(r);
    }
    release(g, pc);
    return st;
}

static ee_status pg_replace(void *ctx, const ee_storage_collection *c, int64_t expected,
                            const ee_storage_record *r)
{
    pg *g = ctx;
    char sql[SQL_MAX] = "", t[80], cn[EE_STORAGE_FIELD_MAX + 4];
    table(c, t, sizeof t);
    cat(sql, "UPDATE %s SET rev = $3, t = $4", t);
    for (size_t i = 0; i < c->n_fields; i++) {
        col(c, i, cn, sizeof cn);
        cat(sql, ", %s = $%zu", cn, i + 5);
    }
    cat(sql, ", doc = $%zu WHERE id = $1 AND ws = $2 AND rev = $%zu", c->n_fields + 5,
        c->n_fields + 6);
    params p = {0};
    p_bin(&p, r->id, 12);
    p_text(&p, r->workspace);
    p_int(&p, r->revision);
    p_int(&p, r->time);
    p_record(&p, c, r);
    p_bin(&p, r->data, r->len);
    p_int(&p, expected);
    pconn *pc;
    ee_status st = acquire(g, &pc);
    if (st != EE_OK)
        return st;
    PGresult *res;
    st = run(pc->pg, sql, &p, 0, "replace failed", &res);
    if (st == EE_EEXISTS)
        st = ee__error(EE_EEXISTS, "%s: another document has the same unique key", c->name);
    if (st == EE_OK) {
        bool changed = strcmp(PQcmdTuples(res), "0") != 0;
        PQclear(res);
        if (!changed) {
            char q[256];
            snprintf(q, sizeof q, "SELECT rev FROM %s WHERE id = $1 AND ws = $2", t);
            p.n = 2;
            if ((st = run(pc->pg, q, &p, 1, "replace failed", &res)) == EE_OK) {
                st = PQntuples(res) > 0
                         ? ee__error(EE_ECONFLICT, "%s: stale revision %lld (stored %lld)",
                                     c->name, (long long)expected,
                                     (long long)get_i64(res, 0, 0))
                         : ee__storage_not_found(c, r->id);
                PQclear(res);
            }
        }
    }
    release(g, pc);
    return st;
}

static ee_status pg_remove(void *ctx, const ee_storage_collection *c, const char *ws,
                           const uint8_t *id)
{
    pg *g = ctx;
    char sql[256], t[80];
    table(c, t, sizeof t);
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE id = $1 AND ws = $2", t);
    params p = {0};
    p_bin(&p, id, 12);
    p_text(&p, ws);
    pconn *pc;
    ee_status st = acquire(g, &pc);
    if (st != EE_OK)
        return st;
    PGresult *res;
    if ((st = run(pc->pg, sql, &p, 0, "delete failed", &res)) == EE_OK) {
        if (strcmp(PQcmdTuples(res), "0") == 0)
            st = ee__storage_not_found(c, id);
        PQclear(res);
    }
    release(g, pc);
    return st;
}

static void where(const ee_storage_collection *c, const char *ws, const ee_storage_filter *f,
                  char *sql, params *p)
{
    char cn[EE_STORAGE_FIELD_MAX + 4];
    p_int(p, f->time_from);
    p_int(p, f->time_to);
    cat(sql, " WHERE t >= $1 AND t < $2");
    if (ws != NULL) {
        p_text(p, ws);
        cat(sql, " AND ws = $%d", p->n);
    }
    for (size_t i = 0; i < c->n_fields; i++)
        if (f->values[i] != NULL) {
            col(c, i, cn, sizeof cn);
            p_text(p, f->values[i]);
            cat(sql, " AND %s = $%d", cn, p->n);
        }
}

static ee_status pg_query(void *ctx, const ee_storage_collection *c, const char *ws,
                          const ee_storage_filter *f, const ee_storage_position *after,
                          size_t limit, ee_storage_row_fn fn, void *payload)
{
    pg *g = ctx;
    char sql[SQL_MAX] = "", t[80];
    bool by_time, desc;
    const char *order = ee__storage_order_sql(f->order, &by_time, &desc);
    table(c, t, sizeof t);
    cat(sql, "SELECT id, rev, t, doc FROM %s", t);
    params p = {0};
    where(c, ws, f, sql, &p);
    if (after != NULL && by_time) {
        p_int(&p, after->time);
        p_bin(&p, after->id, 12);
        cat(sql, " AND (t, id) %s ($%d, $%d)", desc ? "<" : ">", p.n - 1, p.n);
    } else if (after != NULL) {
        p_bin(&p, after->id, 12);
        cat(sql, " AND id %s $%d", desc ? "<" : ">", p.n);
    }
    p_int(&p, (int64_t)limit);
    cat(sql, " ORDER BY %s LIMIT $%d", order, p.n);
    pconn *pc;
    ee_status st = acquire(g, &pc);
    if (st != EE_OK)
        return st;
    PGresult *r;
    if ((st = run(pc->pg, sql, &p, 1, "query failed", &r)) == EE_OK) {
        for (int i = 0; i < PQntuples(r); i++) {
            uint8_t id[12] = {0};
            if (PQgetlength(r, i, 0) == 12)
                memcpy(id, PQgetvalue(r, i, 0), 12);
            ee_storage_row row = {id, get_i64(r, i, 1), get_i64(r, i, 2),
                                  (const uint8_t *)PQgetvalue(r, i, 3),
                                  (size_t)PQgetlength(r, i, 3)};
            if (fn(&row, payload) != 0)
                break;
        }
        PQclear(r);
    }
    release(g, pc);
    return st;
}

static ee_status pg_count(void *ctx, const ee_storage_collection *c, const char *ws,
                          const ee_storage_filter *f, uint64_t *out)
{
    pg *g = ctx;
    char sql[SQL_MAX] = "", t[80];
    table(c, t, sizeof t);
    cat(sql, "SELECT count(*) FROM %s", t);
    params p = {0};
    where(c, ws, f, sql, &p);
    pconn *pc;
    ee_status st = acquire(g, &pc);
    if (st != EE_OK)
        return st;
    PGresult *r;
    if ((st = run(pc->pg, sql, &p, 1, "count failed", &r)) == EE_OK) {
        *out = (uint64_t)get_i64(r, 0, 0);
        PQclear(r);
    }
    release(g, pc);
    return st;
}

static ee_status increment_tx(PGconn *pc, const ee_storage_collection *c,
                              const ee_storage_record *r, const ee_storage_inc *inc,
                              size_t n_inc, int64_t now_ms, int64_t *totals_out)
{
    char sql[SQL_MAX] = "", t[80], cn[EE_STORAGE_FIELD_MAX + 4];
    table(c, t, sizeof t);
    cat(sql, "SELECT id, doc FROM %s WHERE ws = $1", t);
    params p = {0};
    p_text(&p, r->workspace);
    for (size_t u = 0; u < c->n_unique; u++) {
        col(c, (size_t)c->unique[u], cn, sizeof cn);
        p_text(&p, r->values[c->unique[u]]);
        cat(sql, " AND %s = $%d", cn, p.n);
    }
    cat(sql, " FOR UPDATE");
    /* Twice at most: if another host inserts the row between our SELECT and
     * our INSERT, ON CONFLICT waits for it and the second SELECT finds it. */
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *res;
        ee_status st = run(pc, sql, &p, 1, "increment failed", &res);
        if (st != EE_OK)
            return st;
        if (PQntuples(res) == 0) {
            PQclear(res);
            bool inserted = false;
            if ((st = insert_row(pc, c, r, true, &inserted)) != EE_OK)
                return st;
            if (!inserted)
                continue;
            if (totals_out != NULL)
                for (size_t i = 0; i < n_inc; i++)
                    totals_out[i] = inc[i].delta;
            return EE_OK;
        }
        uint8_t id[12] = {0};
        if (PQgetlength(res, 0, 0) == 12)
            memcpy(id, PQgetvalue(res, 0, 0), 12);
        bson_t out;
        int64_t totals[EE_STORAGE_INC_MAX];
        st = ee__storage_doc_apply_inc((const uint8_t *)PQgetvalue(res, 0, 1),
                                       (size_t)PQgetlength(res, 0, 1), inc, n_inc, now_ms, &out,
                                       totals);
        PQclear(res);
        if (st == EE_OK) {
            char up[256];
            snprintf(up, sizeof up, "UPDATE %s SET doc = $2, rev = rev + 1 WHERE id = $1", t);
            params q = {0};
            p_bin(&q, id, 12);
            p_bin(&q, bson_get_data(&out), out.len);
            st = run(pc, up, &q, 0, "increment failed", NULL);
        }
        bson_destroy(&out);
        if (st == EE_OK && totals_out != NULL)
            memcpy(totals_out, totals, n_inc * sizeof *totals);
        return st;
    }
    return ee__error(EE_EBUSY, "%s: the row was inserted and removed concurrently; retry",
                     c->name);
}

static ee_status pg_increment(void *ctx, const ee_storage_collection *c,
                              const ee_storage_record *r, const ee_storage_inc *inc,
                              size_t n_inc, int64_t now_ms, int64_t *totals_out)
{
    pg *g = ctx;
    pconn *pc;
    ee_status st = tx_begin(g, &pc);
    if (st != EE_OK)
        return st;
    st = increment_tx(pc->pg, c, r, inc, n_inc, now_ms, totals_out);
    return tx_end(g, pc, st, "cannot commit the increment");
}

static ee_status pg_delete_range(void *ctx, const ee_storage_collection *c, const char *ws,
                                 int64_t from, int64_t to, uint64_t *deleted)
{
    pg *g = ctx;
    char sql[256], t[80];
    table(c, t, sizeof t);
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE t >= $1 AND t < $2%s", t,
             ws != NULL ? " AND ws = $3" : "");
    params p = {0};
    p_int(&p, from);
    p_int(&p, to);
    if (ws != NULL)
        p_text(&p, ws);
    pconn *pc;
    ee_status st = acquire(g, &pc);
    if (st != EE_OK)
        return st;
    PGresult *res;
    if ((st = run(pc->pg, sql, &p, 0, "delete by time range failed", &res)) == EE_OK) {
        *deleted = strtoull(PQcmdTuples(res), NULL, 10);
        PQclear(res);
    }
    release(g, pc);
    return st;
}

/* One transaction: lock the first matching row nobody else holds (SKIP
 * LOCKED: concurrent claimers neither wait for nor get the same row; a row
 * another claimer changed and committed meanwhile is re-checked against
 * the WHERE clause before it is returned), then rewrite it. */
static ee_status claim_tx(PGconn *pc, const ee_storage_collection *c, const char *ws,
                          const ee_storage_filter *f, int k, ee_storage_claim_fn fn,
                          void *payload)
{
    char sql[SQL_MAX] = "", t[80], cn[EE_STORAGE_FIELD_MAX + 4];
    table(c, t, sizeof t);
    cat(sql, "SELECT id, rev, t, doc FROM %s", t);
    params p = {0};
    where(c, ws, f, sql, &p);
    if (k >= 0) {
        col(c, (size_t)k, cn, sizeof cn);
        cat(sql, " ORDER BY %s ASC, t ASC, id ASC", cn);
    } else {
        cat(sql, " ORDER BY t ASC, id ASC");
    }
    cat(sql, " LIMIT 1 FOR UPDATE SKIP LOCKED");
    PGresult *res;
    ee_status st = run(pc, sql, &p, 1, "claim failed", &res);
    if (st != EE_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        return ee__error(EE_ENOTFOUND, "%s: nothing to claim", c->name);
    }
    uint8_t id[12] = {0};
    if (PQgetlength(res, 0, 0) == 12)
        memcpy(id, PQgetvalue(res, 0, 0), 12);
    int64_t rev = get_i64(res, 0, 1);
    ee_storage_row row = {id, rev, get_i64(res, 0, 2), (const uint8_t *)PQgetvalue(res, 0, 3),
                          (size_t)PQgetlength(res, 0, 3)};
    const ee_storage_record *r = NULL;
    st = fn(&row, &r, payload);
    PQclear(res);
    if (st != EE_OK)
        return st;
    char up[SQL_MAX] = "";
    cat(up, "UPDATE %s SET rev = $3, t = $4", t);
    for (size_t i = 0; i < c->n_fields; i++) {
        col(c, i, cn, sizeof cn);
        cat(up, ", %s = $%zu", cn, i + 5);
    }
    cat(up, ", doc = $%zu WHERE id = $1 AND ws = $2", c->n_fields + 5);
    params q = {0};
    p_bin(&q, r->id, 12);
    p_text(&q, r->workspace);
    p_int(&q, r->revision);
    p_int(&q, r->time);
    p_record(&q, c, r);
    p_bin(&q, r->data, r->len);
    st = run(pc, up, &q, 0, "claim failed", NULL);
    if (st == EE_EEXISTS)
        st = ee__error(EE_EEXISTS, "%s: another document has the same unique key", c->name);
    return st;
}

static ee_status pg_claim(void *ctx, const ee_storage_collection *c, const char *ws,
                          const ee_storage_filter *f, int k, ee_storage_claim_fn fn,
                          void *payload)
{
    pg *g = ctx;
    pconn *pc;
    ee_status st = tx_begin(g, &pc);
    if (st != EE_OK)
        return st;
    st = claim_tx(pc->pg, c, ws, f, k, fn, payload);
    return tx_end(g, pc, st, "cannot commit the claim");
}

static void pg_destroy(void *ctx)
{
    pg *g = ctx;
    if (g == NULL)
        return;
    ee__pool_destroy(&g->pool);
    if (g->redact_len > 0)
        ee__redact_unregister(g->conninfo + g->redact_start, g->redact_len);
    ee__secret_free(g->conninfo);
    free(g->schema);
    free(g);
}

/* ---- atomic scopes (internal.h's ee__storage_tx_ops) -------------------------- */

static ee_status pg_begin(void *ctx, unsigned flags)
{
    pg *g = ctx;
    if (pin.g != NULL)
        return ee__error(EE_EINVAL, "postgres: a transaction is already open on this thread");
    pconn *pc;
    ee_status st = acquire(g, &pc);
    if (st != EE_OK)
        return st;
    if ((st = run(pc->pg, "BEGIN", NULL, 0, "cannot begin", NULL)) != EE_OK) {
        release(g, pc);
        return st;
    }
    /* for this transaction only: ends with it, the connection unchanged */
    if ((flags & EE__STORAGE_DEFERRED) &&
        (st = run(pc->pg, "SET LOCAL synchronous_commit = off", NULL, 0,
                  "cannot defer the commit", NULL)) != EE_OK) {
        release(g, pc);
        return st;
    }
    pin.g = g;
    pin.pc = pc;
    return EE_OK;
}

/* A failed statement leaves the transaction aborted, and COMMIT then
 * answers ROLLBACK without an error: look before committing. */
static ee_status pg_end(void *ctx, bool commit)
{
    pg *g = ctx;
    pconn *pc = pin.pc;
    if (!pinned(g) || pc == NULL)
        return ee__error(EE_EINVAL, "postgres: no transaction open on this thread");
    pin.g = NULL;
    pin.pc = NULL;
    ee_status st = EE_OK;
    if (commit) {
        if (PQtransactionStatus(pc->pg) != PQTRANS_INTRANS)
            st = ee__error(EE_EIO, "postgres: the transaction of this step failed at an "
                                   "earlier statement: nothing of it was stored");
        else
            st = run(pc->pg, "COMMIT", NULL, 0, "cannot commit", NULL);
    }
    release(g, pc); /* rolls back whatever is still open */
    return st;
}

static const ee__storage_tx_ops postgres_tx = {pg_begin, pg_end};

static const ee_storage_backend postgres_backend = {
    .version = EE_STORAGE_BACKEND_VERSION,
    .flags = EE_STORAGE_THREAD_SAFE | EE_STORAGE_TRANSACTIONAL,
    .name = "postgres",
    .destroy = pg_destroy,
    .insert = pg_insert,
    .get = pg_get,
    .replace = pg_replace,
    .remove = pg_remove,
    .query = pg_query,
    .count = pg_count,
    .increment = pg_increment,
    .delete_range = pg_delete_range,
    .claim = pg_claim,
};

ee_status ee__storage_postgres_open(ee_storage **out, const char *conninfo, const char *schema,
                                    const ee__logger *lg)
{
    pg *g = calloc(1, sizeof *g);
    if (g == NULL)
        return ee__error(EE_ENOMEM, "postgres: out of memory");
    g->log = lg;
    g->conninfo = ee__secret_dup(conninfo);
    g->schema = schema != NULL ? strdup(schema) : NULL;
    ee_status st = EE_OK;
    if (g->conninfo == NULL || (schema != NULL && g->schema == NULL))
        st = ee__error(EE_ENOMEM, "postgres: out of memory");
    /* Keep a URI password out of every message, also libpq's own. */
    size_t pstart, plen;
    if (st == EE_OK && ee__uri_password(g->conninfo, &pstart, &plen) &&
        ee__redact_register(g->conninfo + pstart, plen) == EE_OK) {
        g->redact_start = pstart;
        g->redact_len = plen;
    }
    if (st == EE_OK)
        st = ee__pool_init(&g->pool, &pg_pool_ops, g, POOL_MAX, POOL_MAX);
    pconn *first = NULL;
    if (st == EE_OK)
        st = acquire(g, &first);
    if (st == EE_OK) {
        st = migrate(g, first->pg);
        release(g, first);
    }
    if (st != EE_OK) {
        pg_destroy(g);
        return st;
    }
    return ee__storage_wrap_tx(out, &postgres_backend, g, &postgres_tx);
}
