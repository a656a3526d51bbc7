/*
 * The "storage" counters backend: counters as rows of the storage database
 * (SQLite file or PostgreSQL), one transaction per operation, exact across
 * threads, processes and hosts sharing the database.
 *
 * Tables (created on open, schema version in ee_counters_schema):
 *   ee_counters (k PRIMARY KEY, window_end, committed)
 *   ee_counter_reservations (id never reused, k, n, expires)
 * A counter's value is committed + the sum of its reservations with
 * expires > now. Every operation first locks the counter's row (PostgreSQL:
 * SELECT ... FOR UPDATE, taken in key order by reserve_many so two
 * multi-key reservations cannot deadlock; SQLite: BEGIN IMMEDIATE holds the
 * database's write lock), so the check and the change are one step.
 * Expired reservations are deleted by the next operation on their counter;
 * a rollover deletes the ended window's reservations and resets committed.
 * A driver may run reserve and finish in one round trip instead
 * (PostgreSQL: server-side functions doing the same steps, see postgres.c).
 *
 * Connections: a pool (a connection is used by one thread at a time);
 * broken connections are dropped and replaced on the next call.
 */
#include "core/pool.h"
#include "counters/storage/sql.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define SCHEMA_VERSION 1
#define POOL_MAX 64
#define RETRIES 5

const char *const ee__sql_text[EE__SQL_COUNT] = {
    [EE__SQL_LOCK] = "SELECT window_end, committed FROM ee_counters WHERE k = ?1{LOCK}",
    [EE__SQL_CREATE] = "INSERT INTO ee_counters (k, window_end, committed) VALUES (?1, ?2, 0) "
                       "ON CONFLICT (k) DO NOTHING",
    [EE__SQL_RESET] = "UPDATE ee_counters SET window_end = ?2, committed = 0 WHERE k = ?1",
    [EE__SQL_DROP_ALL] = "DELETE FROM ee_counter_reservations WHERE k = ?1",
    [EE__SQL_DROP_EXPIRED] = "DELETE FROM ee_counter_reservations WHERE k = ?1 AND "
                             "expires <= ?2",
    [EE__SQL_SUM] = "SELECT COALESCE(SUM(n), 0) FROM ee_counter_reservations WHERE k = ?1",
    [EE__SQL_LEASES] = "SELECT n, expires FROM ee_counter_reservations WHERE k = ?1 "
                       "ORDER BY expires",
    [EE__SQL_ADD] = "INSERT INTO ee_counter_reservations (k, n, expires) VALUES (?1, ?2, ?3) "
                    "RETURNING id",
    [EE__SQL_TAKE] = "DELETE FROM ee_counter_reservations WHERE k = ?1 AND id = ?2 "
                     "RETURNING n, expires",
    [EE__SQL_COMMIT] = "UPDATE ee_counters SET committed = committed + ?2 WHERE k = ?1",
    [EE__SQL_RENEW] = "UPDATE ee_counter_reservations SET expires = ?3 WHERE k = ?1 AND "
                      "id = ?2 AND expires > ?4",
    [EE__SQL_VERSION] = "SELECT version FROM ee_counters_schema",
    [EE__SQL_GET] = "SELECT c.window_end, c.committed, (SELECT COALESCE(SUM(r.n), 0) FROM "
                    "ee_counter_reservations r WHERE r.k = c.k AND r.expires > ?2) FROM "
                    "ee_counters c WHERE c.k = ?1",
};

typedef struct sqlb {
    const ee__sql_driver *drv;
    char *target;
    const ee__logger *log; /* the engine's, or NULL */
    ee__pool pool; /* no cap on open connections; POOL_MAX kept idle */
} sqlb;

/* ---- pool ------------------------------------------------------------------ */

static ee_status pool_open(void *owner, void **conn)
{
    const sqlb *b = owner;
    return b->drv->connect(b->target, b->log, conn);
}

static void pool_close(void *owner, void *conn)
{
    ((const sqlb *)owner)->drv->disconnect(conn);
}

static bool pool_reuse(void *owner, void *conn)
{
    return !((const sqlb *)owner)->drv->broken(conn);
}

static const ee__pool_ops sql_pool_ops = {pool_open, pool_close, pool_reuse};

/* An idle connection the server closed meanwhile (a restart) is dropped
 * here rather than failing the call; a new one is opened past the idle ones. */
static ee_status take_conn(sqlb *b, void **conn)
{
    for (int attempt = 0; attempt <= POOL_MAX; attempt++) {
        ee_status st = ee__pool_take(&b->pool, conn);
        if (st != EE_OK || !b->drv->broken(*conn))
            return st;
        ee__pool_give(&b->pool, *conn); /* broken: closed, not kept */
    }
    return ee__pool_take(&b->pool, conn);
}

static void give_conn(sqlb *b, void *conn)
{
    ee__pool_give(&b->pool, conn);
}

/* ---- row readers --------------------------------------------------------------- */

typedef struct {
    int found;
    int64_t v[3];
} one_row;

static void read_one(void *p, const int64_t *cols, int ncols)
{
    one_row *r = p;
    r->found++;
    for (int i = 0; i < ncols && i < 3; i++)
        r->v[i] = cols[i];
}

typedef struct {
    ee__counters_lease *items;
    size_t count, cap;
    bool oom;
} lease_list;

static void read_lease(void *p, const int64_t *cols, int ncols)
{
    lease_list *l = p;
    if (ncols < 2 || l->oom)
        return;
    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        ee__counters_lease *grown = realloc(l->items, cap * sizeof *grown);
        if (grown == NULL) {
            l->oom = true;
            return;
        }
        l->items = grown;
        l->cap = cap;
    }
    l->items[l->count].n = cols[0];
    l->items[l->count].expires = cols[1];
    l->count++;
}

#define Q(conn, stmt, key, ...)                                                                \
    b->drv->query(conn, stmt, key, (const int64_t[]){__VA_ARGS__},                             \
                  (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), NULL, NULL, \
                  NULL)
#define Q0(conn, stmt, key) b->drv->query(conn, stmt, key, NULL, 0, NULL, NULL, NULL)
#define QROW0(conn, stmt, key, row) b->drv->query(conn, stmt, key, NULL, 0, read_one, row, NULL)
#define QROW(conn, stmt, key, row, ...)                                                        \
    b->drv->query(conn, stmt, key, (const int64_t[]){__VA_ARGS__},                             \
                  (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), read_one,   \
                  row, NULL)

/* Run `op` in one transaction on a pooled connection, again on a
 * transient conflict (EE_EBUSY: lock timeout, deadlock, serialisation).
 * The transaction commits when op succeeds, or fails having set *force
 * (its clean-up must stay although it answers an error). */
typedef ee_status (*txn_fn)(sqlb *b, void *conn, void *arg, bool *force);

static ee_status in_txn(sqlb *b, txn_fn op, void *arg)
{
    ee_status st = EE_OK;
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        void *conn = NULL;
        if ((st = take_conn(b, &conn)) != EE_OK)
            return st;
        bool force = false;
        st = b->drv->exec(conn, b->drv->begin_sql);
        if (st == EE_OK) {
            st = op(b, conn, arg, &force);
            /* Keep the operation's own status and message. */
            char msg[EE__ERROR_MSG_MAX];
            ee_status saved = st;
            if (st != EE_OK)
                snprintf(msg, sizeof msg, "%s", ee_error_last_message());
            if (st == EE_OK || force) {
                ee_status cst = b->drv->exec(conn, "COMMIT");
                if (cst != EE_OK) {
                    (void)b->drv->exec(conn, "ROLLBACK");
                    saved = EE_OK;
                    st = cst;
                }
            } else {
                (void)b->drv->exec(conn, "ROLLBACK");
            }
            if (saved != EE_OK)
                ee__error(saved, "%s", msg);
        }
        give_conn(b, conn);
        if (st != EE_EBUSY)
            return st;
    }
    return st;
}

/* Run `op` as one statement on a pooled connection (its own transaction),
 * again on a transient conflict (EE_EBUSY). */
typedef ee_status (*conn_fn)(sqlb *b, void *conn, void *arg);

static ee_status on_conn(sqlb *b, conn_fn op, void *arg)
{
    ee_status st = EE_OK;
    for (int attempt = 0; attempt < RETRIES; attempt++) {
        void *conn = NULL;
        if ((st = take_conn(b, &conn)) != EE_OK)
            return st;
        st = op(b, conn, arg);
        give_conn(b, conn);
        if (st != EE_EBUSY)
            break;
    }
    return st;
}

/* ---- counter rows ------------------------------------------------------------------ */

typedef struct {
    int64_t end, committed, outstanding;
} row_state;

/* Lock (creating if asked) the counter's row; roll its window over if it
 * ended by now; drop its expired reservations. *exists is false when the
 * row is missing and create was not asked. */
static ee_status lock_counter(sqlb *b, void *conn, const char *key, const ee_counter_req *req,
                              int64_t now, row_state *s, bool *exists)
{
    one_row r = {0};
    ee_status st = QROW0(conn, EE__SQL_LOCK, key, &r);
    if (st != EE_OK)
        return st;
    if (!r.found) {
        *exists = false;
        if (req == NULL)
            return EE_OK;
        int64_t end = ee__counters_new_window_end(req, now);
        if ((st = Q(conn, EE__SQL_CREATE, key, end)) != EE_OK ||
            (st = QROW0(conn, EE__SQL_LOCK, key, &r)) != EE_OK)
            return st;
        if (!r.found)
            return ee__error(EE_EIO, "counter \"%s\": its row vanished while being created",
                             key);
    }
    *exists = true;
    s->end = r.v[0];
    s->committed = r.v[1];
    if (req != NULL && ee__counters_window_over(s->end, now)) {
        s->end = ee__counters_new_window_end(req, now);
        s->committed = 0;
        if ((st = Q0(conn, EE__SQL_DROP_ALL, key)) != EE_OK ||
            (st = Q(conn, EE__SQL_RESET, key, s->end)) != EE_OK)
            return st;
    } else if ((st = Q(conn, EE__SQL_DROP_EXPIRED, key, now)) != EE_OK) {
        return st;
    }
    one_row sum = {0};
    if ((st = QROW0(conn, EE__SQL_SUM, key, &sum)) != EE_OK)
        return st;
    s->outstanding = sum.v[0];
    return EE_OK;
}

/* ---- reserve ----------------------------------------------------------------------- */

typedef struct {
    const ee_counter_req *reqs;
    size_t count;
    const int64_t *leases; /* one per request */
    int64_t now;
    ee_counter_result *res;
    int *granted;
} reserve_args;

static int key_order(const void *a, const void *b)
{
    return strcmp((*(const ee_counter_req *const *)a)->key,
                  (*(const ee_counter_req *const *)b)->key);
}

static ee_status reserve_txn(sqlb *b, void *conn, void *arg, bool *force)
{
    reserve_args *a = arg;
    (void)force;
    const ee_counter_req *sorted[EE_COUNTERS_MANY_MAX];
    row_state s[EE_COUNTERS_MANY_MAX];
    for (size_t i = 0; i < a->count; i++)
        sorted[i] = &a->reqs[i];
    /* One lock order for everyone: no deadlock between multi-key reserves. */
    qsort(sorted, a->count, sizeof sorted[0], key_order);
    bool all = true;
    ee_status st;
    for (size_t k = 0; k < a->count; k++) {
        const ee_counter_req *q = sorted[k];
        size_t i = (size_t)(q - a->reqs);
        bool exists;
        if ((st = lock_counter(b, conn, q->key, q, a->now, &s[i], &exists)) != EE_OK)
            return st;
        ee_counter_result *r = &a->res[i];
        r->limit = q->limit;
        r->window_end_ms = s[i].end;
        r->committed = s[i].committed;
        r->value = s[i].committed + s[i].outstanding;
        r->fits = r->value <= q->limit - q->n;
        all = all && r->fits;
    }
    if (!all) {
        for (size_t i = 0; i < a->count; i++) {
            ee_counter_result *r = &a->res[i];
            if (r->fits)
                continue;
            lease_list l = {0};
            st = b->drv->query(conn, EE__SQL_LEASES, a->reqs[i].key, NULL, 0, read_lease, &l,
                               NULL);
            if (st == EE_OK && l.oom)
                st = ee__error(EE_ENOMEM, "out of memory reading reservations");
            if (st == EE_OK)
                r->retry_at_ms = ee__counters_retry_at(s[i].committed, s[i].outstanding,
                                                       a->reqs[i].n, a->reqs[i].limit,
                                                       s[i].end, l.items, l.count);
            free(l.items);
            if (st != EE_OK)
                return st;
        }
        *a->granted = 0; /* commits the clean-up of expired rows; nothing else changed */
        return EE_OK;
    }
    for (size_t k = 0; k < a->count; k++) {
        size_t i = (size_t)(sorted[k] - a->reqs);
        one_row id = {0};
        st = QROW(conn, EE__SQL_ADD, a->reqs[i].key, &id, a->reqs[i].n,
                  a->now + a->leases[i]);
        if (st != EE_OK)
            return st;
        if (!id.found || id.v[0] <= 0)
            return ee__error(EE_EIO, "counter \"%s\": the database returned no reservation id",
                             a->reqs[i].key);
        a->res[i].resv_id = (uint64_t)id.v[0];
        a->res[i].value += a->reqs[i].n;
    }
    *a->granted = 1;
    return EE_OK;
}

static ee_status reserve_call(sqlb *b, void *conn, void *arg)
{
    reserve_args *a = arg;
    return b->drv->reserve_call(conn, a->reqs, a->leases, a->count, a->now, a->res,
                                a->granted);
}

/* The driver's one-round-trip reserve. */
static ee_status reserve_one_trip(sqlb *b, reserve_args *a)
{
    ee_status st = on_conn(b, reserve_call, a);
    if (st != EE_OK) {
        *a->granted = 0;
        memset(a->res, 0, a->count * sizeof *a->res);
        return st;
    }
    for (size_t i = 0; i < a->count; i++)
        a->res[i].limit = a->reqs[i].limit;
    return EE_OK;
}

static ee_status s_reserve_leased(void *ctx, const ee_counter_req *reqs, void *const *handles,
                                  const uint8_t *order, const int64_t *leases, size_t count,
                                  int64_t now, ee_counter_result *res, int *granted)
{
    (void)handles; /* rows are found by key */
    (void)order;
    memset(res, 0, count * sizeof *res);
    sqlb *b = ctx;
    reserve_args a = {reqs, count, leases, now, res, granted};
    if (b->drv->reserve_call != NULL)
        return reserve_one_trip(b, &a);
    ee_status st = in_txn(ctx, reserve_txn, &a);
    if (st != EE_OK) {
        *granted = 0;
        memset(res, 0, count * sizeof *res);
    }
    return st;
}

/* ---- credit: usage written through from counters beside these ------------------------- */

typedef struct {
    const char *key;
    int64_t amount, window_end, now;
} credit_args;

/* The row locked (created, or rolled over into the given window when its
 * own ended) and `amount` added to committed: one transaction, so a credit
 * counts once or not at all. */
static ee_status credit_txn(sqlb *b, void *conn, void *arg, bool *force)
{
    credit_args *a = arg;
    (void)force;
    ee_counter_req q = {a->key, 1, 0, 0, a->window_end > a->now ? a->window_end : 0};
    row_state s = {0, 0, 0};
    bool exists = false;
    ee_status st = lock_counter(b, conn, a->key, &q, a->now, &s, &exists);
    if (st == EE_OK && s.committed > EE_COUNTERS_VALUE_MAX - a->amount)
        st = ee__error(EE_EINVAL, "counter \"%s\": durable usage would pass 2^53-1", a->key);
    if (st == EE_OK)
        st = Q(conn, EE__SQL_COMMIT, a->key, a->amount);
    return st;
}

static ee_status s_credit(void *ctx, const char *key, int64_t amount, int64_t window_end,
                          int64_t now)
{
    credit_args a = {key, amount, window_end, now};
    return in_txn(ctx, credit_txn, &a);
}

const ee__counters_ext ee__counters_storage_ext = {
    .resolve = NULL,
    .lock_order = NULL,
    .reserve_leased = s_reserve_leased,
    .credit = s_credit,
};

/* ---- commit, release, renew ------------------------------------------------------------ */

typedef struct {
    const char *key;
    uint64_t id;
    int64_t amount; /* commit: 0..n or ALL; release: 0 */
    int64_t lease;  /* renew: > 0 */
    int64_t now;
    bool renew;
} finish_args;

static ee_status finish_txn(sqlb *b, void *conn, void *arg, bool *force)
{
    finish_args *f = arg;
    if (f->id == 0 || f->id > (uint64_t)INT64_MAX)
        return ee__counters_not_found(f->key, f->id, "is unknown");
    one_row c = {0};
    ee_status st = QROW0(conn, EE__SQL_LOCK, f->key, &c);
    if (st != EE_OK)
        return st;
    if (!c.found)
        return ee__counters_not_found(f->key, f->id, "is unknown");
    if (ee__counters_window_over(c.v[0], f->now))
        return ee__counters_not_found(f->key, f->id, "belongs to a window that has ended");
    if (f->renew) {
        int64_t changed = 0;
        st = b->drv->query(conn, EE__SQL_RENEW, f->key,
                           (const int64_t[]){(int64_t)f->id, f->now + f->lease, f->now}, 3,
                           NULL, NULL, &changed);
        if (st == EE_OK && changed != 1)
            return ee__counters_not_found(f->key, f->id, "is unknown, finished or expired");
        return st;
    }
    one_row r = {0};
    if ((st = QROW(conn, EE__SQL_TAKE, f->key, &r, (int64_t)f->id)) != EE_OK)
        return st;
    if (!r.found)
        return ee__counters_not_found(f->key, f->id, "is unknown or already finished");
    int64_t n = r.v[0];
    if (r.v[1] <= f->now) {
        *force = true; /* the expired row stays deleted */
        return ee__counters_not_found(f->key, f->id, "expired (its lease ended)");
    }
    if (f->amount > n)
        return ee__error(EE_EINVAL, "counter \"%s\": commit amount %lld exceeds the %lld "
                                    "reserved", f->key, (long long)f->amount, (long long)n);
    int64_t keep = f->amount < 0 ? n : f->amount;
    if (keep > 0)
        st = Q(conn, EE__SQL_COMMIT, f->key, keep);
    return st;
}

/* The driver's one-round-trip finish, its code turned into the answer
 * finish_txn would give. */
typedef struct {
    const finish_args *f;
    int code;
} finish_call_args;

static ee_status finish_call(sqlb *b, void *conn, void *arg)
{
    finish_call_args *a = arg;
    const finish_args *f = a->f;
    return b->drv->finish_call(conn, f->key, f->id, f->renew ? 0 : f->amount,
                               f->renew ? f->now + f->lease : 0, f->now, &a->code);
}

static ee_status finish_one_trip(sqlb *b, const finish_args *f)
{
    if (f->id == 0 || f->id > (uint64_t)INT64_MAX)
        return ee__counters_not_found(f->key, f->id, "is unknown");
    finish_call_args a = {f, 0};
    ee_status st = on_conn(b, finish_call, &a);
    return st != EE_OK ? st : ee__counters_finish_answer(f->key, f->id, f->amount, a.code);
}

static ee_status finish(sqlb *b, finish_args *f)
{
    if (b->drv->finish_call != NULL)
        return finish_one_trip(b, f);
    return in_txn(b, finish_txn, f);
}

static ee_status s_commit(void *ctx, const char *key, uint64_t id, int64_t amount, int64_t now)
{
    finish_args f = {key, id, amount, 0, now, false};
    return finish(ctx, &f);
}

static ee_status s_release(void *ctx, const char *key, uint64_t id, int64_t now)
{
    finish_args f = {key, id, 0, 0, now, false};
    return finish(ctx, &f);
}

static ee_status s_renew(void *ctx, const char *key, uint64_t id, int64_t lease, int64_t now)
{
    finish_args f = {key, id, 0, lease, now, true};
    return finish(ctx, &f);
}

/* ---- get ---------------------------------------------------------------------------- */

typedef struct {
    const char *key;
    int64_t now;
    ee_counter_result *out;
} get_args;

static ee_status get_row(sqlb *b, void *conn, void *arg)
{
    get_args *g = arg;
    one_row r = {0};
    ee_status st = QROW(conn, EE__SQL_GET, g->key, &r, g->now);
    if (st == EE_OK && r.found && !ee__counters_window_over(r.v[0], g->now)) {
        g->out->window_end_ms = r.v[0];
        g->out->committed = r.v[1];
        g->out->value = r.v[1] + r.v[2];
    }
    return st;
}

static ee_status s_get(void *ctx, const char *key, int64_t now, ee_counter_result *out)
{
    get_args g = {key, now, out};
    return on_conn(ctx, get_row, &g);
}

/* ---- lifetime -------------------------------------------------------------------------- */

static void s_free(void *ctx)
{
    sqlb *b = ctx;
    if (b == NULL)
        return;
    ee__pool_destroy(&b->pool);
    ee__secret_free(b->target);
    free(b);
}

static const ee_counters_backend sql_table = {
    .version = EE_COUNTERS_BACKEND_VERSION,
    .flags = EE_COUNTERS_THREAD_SAFE | EE_COUNTERS_SHARED,
    .reserve_many = NULL, /* the library calls ee__counters_storage_ext.reserve_leased */
    .commit = s_commit,
    .release = s_release,
    .renew = s_renew,
    .get = s_get,
    .free = s_free,
};

typedef struct {
    int found;
    int64_t version;
} version_row;

static void read_version(void *p, const int64_t *cols, int ncols)
{
    version_row *v = p;
    v->found++;
    if (ncols > 0 && cols[0] > v->version)
        v->version = cols[0];
}

/* Create the tables if needed and check their version, in one transaction
 * (PostgreSQL: under an advisory lock, as hosts may open at once). */
static ee_status migrate(sqlb *b, void *conn)
{
    ee_status st = b->drv->exec(conn, b->drv->begin_sql);
    if (st != EE_OK)
        return st;
    if (b->drv->migration_lock_sql != NULL)
        st = b->drv->exec(conn, b->drv->migration_lock_sql);
    if (st == EE_OK)
        st = b->drv->exec(conn, b->drv->schema_sql);
    version_row v = {0, 0};
    if (st == EE_OK)
        st = b->drv->query(conn, EE__SQL_VERSION, NULL, NULL, 0, read_version, &v, NULL);
    if (st == EE_OK && v.version > SCHEMA_VERSION)
        st = ee__error(EE_EVERSION, "the %s database holds counters tables of schema version "
                                    "%lld; this library understands up to %d",
                       b->drv->name, (long long)v.version, SCHEMA_VERSION);
    if (st == EE_OK && !v.found)
        st = b->drv->exec(conn, "INSERT INTO ee_counters_schema (version) VALUES (1)");
    if (st == EE_OK)
        return b->drv->exec(conn, "COMMIT");
    int saved = ee_error_last_status();
    char msg[EE__ERROR_MSG_MAX];
    snprintf(msg, sizeof msg, "%s", ee_error_last_message());
    (void)b->drv->exec(conn, "ROLLBACK");
    return ee__error((ee_status)saved, "%s", msg);
}

ee_status ee__sql_create(const ee__sql_driver *drv, const char *target,
                         const ee__logger *lg, const ee_counters_backend **table, void **ctx)
{
    sqlb *b = calloc(1, sizeof *b);
    if (b == NULL || (b->target = ee__secret_dup(target)) == NULL) {
        free(b);
        return ee__error(EE_ENOMEM, "out of memory opening %s counters", drv->name);
    }
    b->drv = drv;
    b->log = lg;
    void *conn = NULL;
    ee_status st = ee__pool_init(&b->pool, &sql_pool_ops, b, 0, POOL_MAX);
    if (st == EE_OK)
        st = take_conn(b, &conn);
    if (st == EE_OK)
        st = migrate(b, conn);
    give_conn(b, conn);
    if (st != EE_OK) {
        s_free(b);
        return st;
    }
    *table = &sql_table;
    *ctx = b;
    return EE_OK;
}
