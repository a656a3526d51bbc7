/*
 * bench_storage: document insert, get by id and one query page for the
 * sqlite, memory and (when EE_BENCH_POSTGRES_URI is set) postgres backends,
 * each beside a baseline measured in the same run on the same bytes:
 *   sqlite   raw sqlite3_step INSERT / SELECT by primary key / the same
 *            indexed page query, on a plain table in a file with the same
 *            settings (WAL, synchronous=FULL, busy timeout)
 *   memory   a plain hash table insert / lookup; a plain array scan + sort
 *   postgres raw libpq INSERT / SELECT by primary key / the same page query
 * One JSON object per line (DESIGN.md). `--quick` keeps the run short.
 * Never fails: problems are printed as {"bench":..., "skipped": reason}.
 */
#include <bson/bson.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "execengine/storage.h"

static int n_insert = 2000, n_get = 5000, n_page = 500;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    int64_t p50, p99;
    double ops_per_s;
} stats;

static stats summarise(int64_t *lat, int n, int64_t total_ns)
{
    stats s = {0, 0, 0};
    if (n <= 0)
        return s;
    qsort(lat, (size_t)n, sizeof *lat, cmp_i64);
    s.p50 = lat[n / 2];
    s.p99 = lat[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
    s.ops_per_s = total_ns > 0 ? n * 1e9 / (double)total_ns : 0;
    return s;
}

static void report(const char *bench, const char *backend, stats ours, const char *baseline,
                   stats base)
{
    printf("{\"bench\": \"%s\", \"backend\": \"%s\", \"unit\": \"ns/op\", \"p50\": %lld, "
           "\"p99\": %lld, \"ops_per_s\": %.0f, \"baseline\": \"%s\", \"baseline_p50\": %lld, "
           "\"slowdown\": %.2f}\n",
           bench, backend, (long long)ours.p50, (long long)ours.p99, ours.ops_per_s, baseline,
           (long long)base.p50, base.p50 > 0 ? (double)ours.p50 / (double)base.p50 : 0.0);
    fflush(stdout);
}

static void skipped(const char *bench, const char *backend, const char *why)
{
    printf("{\"bench\": \"%s\", \"backend\": \"%s\", \"skipped\": \"%s\"}\n", bench, backend, why);
    fflush(stdout);
}

/* ---- the documents --------------------------------------------------------------- */

#define USERS 20

static bson_t *make_doc(int i)
{
    char user[16];
    snprintf(user, sizeof user, "user-%d", i % USERS);
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    return BCON_NEW("_id", BCON_OID(&oid), "workspaceId", "ws-bench", "userId", user,
                    "workflowCatalogId", "65f0a1b2c3d4e5f601234567", "status", "completed",
                    "n8nExecutionId", BCON_INT64(100000 + i), "inputData", "{", "topic",
                    "benchmarks", "depth", BCON_INT32(3), "}", "outputData", "{", "summary",
                    "a few hundred bytes of result text to make the document realistic in "
                    "size, as an execution record usually is", "}",
                    "executionTimeMs", BCON_INT64(1234), "apiKeyUsed", "{", "type", "platform",
                    "provider", "openrouter", "tokensUsed", BCON_INT64(1500), "}",
                    "emailSent", BCON_BOOL(false), "createdAt",
                    BCON_DATE_TIME(1700000000000LL + i));
}

typedef struct corpus {
    int n;
    bson_t **docs;
    char (*ids)[25];
} corpus;

static corpus make_corpus(int n)
{
    corpus c = {n, calloc((size_t)n, sizeof(bson_t *)), calloc((size_t)n, 25)};
    for (int i = 0; i < n; i++) {
        c.docs[i] = make_doc(i);
        bson_iter_t it;
        bson_iter_init_find(&it, c.docs[i], "_id");
        bson_oid_to_string(bson_iter_oid(&it), c.ids[i]);
    }
    return c;
}

static void free_corpus(corpus *c)
{
    for (int i = 0; i < c->n; i++)
        bson_destroy(c->docs[i]);
    free(c->docs);
    free(c->ids);
}

/* ---- our side, any backend ------------------------------------------------------------ */

static int count_row(const ee_storage_row *row, void *payload)
{
    (void)row;
    ++*(int *)payload;
    return 0;
}

typedef struct ours {
    stats insert, get, page;
    int ok;
} ours;

static ours run_ours(ee_storage *s, const corpus *c, int64_t *lat)
{
    ours r = {.ok = 0};
    int64_t t0 = now_ns();
    for (int i = 0; i < c->n; i++) {
        int64_t a = now_ns();
        if (ee_storage_insert(s, "workflowExecutions", "ws-bench", bson_get_data(c->docs[i]),
                              c->docs[i]->len, NULL) != EE_OK) {
            fprintf(stderr, "insert: %s\n", ee_error_last_message());
            return r;
        }
        lat[i] = now_ns() - a;
    }
    r.insert = summarise(lat, c->n, now_ns() - t0);
    t0 = now_ns();
    for (int i = 0; i < n_get; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        int64_t a = now_ns();
        if (ee_storage_get(s, "workflowExecutions", "ws-bench", c->ids[(i * 7919) % c->n], &data,
                           &len, NULL) != EE_OK) {
            fprintf(stderr, "get: %s\n", ee_error_last_message());
            return r;
        }
        ee_free(data);
        lat[i] = now_ns() - a;
    }
    r.get = summarise(lat, n_get, now_ns() - t0);
    t0 = now_ns();
    for (int i = 0; i < n_page; i++) {
        char user[16];
        snprintf(user, sizeof user, "user-%d", i % USERS);
        ee_storage_eq eq = {"userId", user};
        ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                                   .limit = 20};
        int rows = 0;
        char *next = NULL;
        int64_t a = now_ns();
        if (ee_storage_query(s, "workflowExecutions", "ws-bench", &q, count_row, &rows, &next) !=
            EE_OK) {
            fprintf(stderr, "query: %s\n", ee_error_last_message());
            return r;
        }
        lat[i] = now_ns() - a;
        ee_free(next);
    }
    r.page = summarise(lat, n_page, now_ns() - t0);
    r.ok = 1;
    return r;
}

/* ---- sqlite baseline ------------------------------------------------------------------ */

static int raw_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
}

static ours run_sqlite_raw(const char *path, const corpus *c, int64_t *lat)
{
    ours r = {.ok = 0};
    sqlite3 *db = NULL;
    sqlite3_stmt *ins = NULL, *get = NULL, *page = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        goto out;
    sqlite3_busy_timeout(db, 5000);
    if (!raw_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                      "PRAGMA foreign_keys = ON; CREATE TABLE plain (id BLOB PRIMARY KEY, ws "
                      "TEXT, user TEXT, t INTEGER, doc BLOB); CREATE INDEX plain_u ON plain "
                      "(ws, user, t, id)") ||
        sqlite3_prepare_v2(db, "INSERT INTO plain VALUES (?, ?, ?, ?, ?)", -1, &ins, NULL) ||
        sqlite3_prepare_v2(db, "SELECT doc FROM plain WHERE id = ?", -1, &get, NULL) ||
        sqlite3_prepare_v2(db, "SELECT id, t, doc FROM plain WHERE ws = ? AND user = ? ORDER BY "
                               "t DESC, id DESC LIMIT 21", -1, &page, NULL))
        goto out;
    uint8_t (*oids)[12] = calloc((size_t)c->n, 12);
    int64_t t0 = now_ns();
    for (int i = 0; i < c->n; i++) {
        bson_iter_t it;
        bson_iter_init_find(&it, c->docs[i], "_id");
        memcpy(oids[i], bson_iter_oid(&it)->bytes, 12);
        char user[16];
        snprintf(user, sizeof user, "user-%d", i % USERS);
        int64_t a = now_ns();
        sqlite3_bind_blob(ins, 1, oids[i], 12, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, "ws-bench", -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 3, user, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 4, 1700000000000LL + i);
        sqlite3_bind_blob(ins, 5, bson_get_data(c->docs[i]), (int)c->docs[i]->len,
                          SQLITE_STATIC);
        int rc = sqlite3_step(ins);
        sqlite3_reset(ins);
        lat[i] = now_ns() - a;
        if (rc != SQLITE_DONE) {
            free(oids);
            goto out;
        }
    }
    r.insert = summarise(lat, c->n, now_ns() - t0);
    t0 = now_ns();
    for (int i = 0; i < n_get; i++) {
        int64_t a = now_ns();
        sqlite3_bind_blob(get, 1, oids[(i * 7919) % c->n], 12, SQLITE_STATIC);
        if (sqlite3_step(get) == SQLITE_ROW) {
            size_t len = (size_t)sqlite3_column_bytes(get, 0);
            void *copy = malloc(len); /* we hand the caller a copy too */
            memcpy(copy, sqlite3_column_blob(get, 0), len);
            free(copy);
        }
        sqlite3_reset(get);
        lat[i] = now_ns() - a;
    }
    r.get = summarise(lat, n_get, now_ns() - t0);
    t0 = now_ns();
    for (int i = 0; i < n_page; i++) {
        char user[16];
        snprintf(user, sizeof user, "user-%d", i % USERS);
        int64_t a = now_ns();
        sqlite3_bind_text(page, 1, "ws-bench", -1, SQLITE_STATIC);
        sqlite3_bind_text(page, 2, user, -1, SQLITE_STATIC);
        int rows = 0;
        while (sqlite3_step(page) == SQLITE_ROW)
            rows++;
        sqlite3_reset(page);
        lat[i] = now_ns() - a;
    }
    r.page = summarise(lat, n_page, now_ns() - t0);
    r.ok = 1;
    free(oids);
out:
    sqlite3_finalize(ins);
    sqlite3_finalize(get);
    sqlite3_finalize(page);
    sqlite3_close(db);
    return r;
}

/* ---- memory baseline: a plain chained hash table ------------------------------------ */

typedef struct node {
    struct node *next;
    uint8_t id[12];
    int64_t t;
    int user;
    uint8_t *data;
    size_t len;
} node;

static uint64_t hash12(const uint8_t *id)
{
    uint64_t h = 1469598103934665603ULL;
    for (int i = 0; i < 12; i++)
        h = (h ^ id[i]) * 1099511628211ULL;
    return h;
}

static int cmp_node_desc(const void *a, const void *b)
{
    const node *x = *(node *const *)a, *y = *(node *const *)b;
    return x->t < y->t ? 1 : x->t > y->t ? -1 : 0;
}

static ours run_memory_raw(const corpus *c, int64_t *lat)
{
    ours r = {.ok = 1};
    size_t nb = 1;
    while (nb < (size_t)c->n)
        nb <<= 1;
    node **b = calloc(nb, sizeof *b);
    node *nodes = calloc((size_t)c->n, sizeof *nodes);
    int64_t t0 = now_ns();
    for (int i = 0; i < c->n; i++) {
        int64_t a = now_ns();
        bson_iter_t it;
        bson_iter_init_find(&it, c->docs[i], "_id");
        node *n = &nodes[i];
        memcpy(n->id, bson_iter_oid(&it)->bytes, 12);
        n->t = 1700000000000LL + i;
        n->user = i % USERS;
        n->len = c->docs[i]->len;
        n->data = malloc(n->len);
        memcpy(n->data, bson_get_data(c->docs[i]), n->len);
        size_t h = hash12(n->id) & (nb - 1);
        n->next = b[h];
        b[h] = n;
        lat[i] = now_ns() - a;
    }
    r.insert = summarise(lat, c->n, now_ns() - t0);
    t0 = now_ns();
    for (int i = 0; i < n_get; i++) {
        int64_t a = now_ns();
        const uint8_t *want = nodes[(i * 7919) % c->n].id;
        node *n = b[hash12(want) & (nb - 1)];
        while (n != NULL && memcmp(n->id, want, 12) != 0)
            n = n->next;
        if (n != NULL) {
            void *copy = malloc(n->len);
            memcpy(copy, n->data, n->len);
            free(copy);
        }
        lat[i] = now_ns() - a;
    }
    r.get = summarise(lat, n_get, now_ns() - t0);
    node **hits = malloc((size_t)c->n * sizeof *hits);
    t0 = now_ns();
    for (int i = 0; i < n_page; i++) {
        int64_t a = now_ns();
        int k = 0;
        for (int j = 0; j < c->n; j++)
            if (nodes[j].user == i % USERS)
                hits[k++] = &nodes[j];
        qsort(hits, (size_t)k, sizeof *hits, cmp_node_desc);
        lat[i] = now_ns() - a;
    }
    r.page = summarise(lat, n_page, now_ns() - t0);
    for (int i = 0; i < c->n; i++)
        free(nodes[i].data);
    free(hits);
    free(nodes);
    free(b);
    return r;
}

/* ---- postgres baseline ----------------------------------------------------------------- */

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message; /* NOTICEs of DROP ... CASCADE */
}

static ours run_postgres_raw(const char *uri, const char *schema, const corpus *c, int64_t *lat)
{
    ours r = {.ok = 0};
    PGconn *pg = PQconnectdb(uri);
    PQsetNoticeProcessor(pg, quiet, NULL);
    if (PQstatus(pg) != CONNECTION_OK) {
        PQfinish(pg);
        return r;
    }
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE SCHEMA %s; SET search_path TO %s; CREATE TABLE plain (id "
             "bytea PRIMARY KEY, ws text, usr text, t bigint, doc bytea); CREATE INDEX plain_u "
             "ON plain (ws, usr, t, id)", schema, schema);
    PQclear(PQexec(pg, sql));
    int64_t t0 = now_ns();
    for (int i = 0; i < c->n; i++) {
        bson_iter_t it;
        bson_iter_init_find(&it, c->docs[i], "_id");
        char user[16], t[24];
        snprintf(user, sizeof user, "user-%d", i % USERS);
        snprintf(t, sizeof t, "%lld", 1700000000000LL + i);
        const char *v[5] = {(const char *)bson_iter_oid(&it)->bytes, "ws-bench", user, t,
                            (const char *)bson_get_data(c->docs[i])};
        int len[5] = {12, 0, 0, 0, (int)c->docs[i]->len}, fmt[5] = {1, 0, 0, 0, 1};
        int64_t a = now_ns();
        PGresult *res = PQexecParams(pg, "INSERT INTO plain VALUES ($1, $2, $3, $4, $5)", 5,
                                     NULL, v, len, fmt, 0);
        int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        lat[i] = now_ns() - a;
        if (!ok)
            goto out;
    }
    r.insert = summarise(lat, c->n, now_ns() - t0);
    t0 = now_ns();
    for (int i = 0; i < n_get; i++) {
        bson_iter_t it;
        bson_iter_init_find(&it, c->docs[(i * 7919) % c->n], "_id");
        const char *v[1] = {(const char *)bson_iter_oid(&it)->bytes};
        int len[1] = {12}, fmt[1] = {1};
        int64_t a = now_ns();
        PQclear(PQexecParams(pg, "SELECT doc FROM plain WHERE id = $1", 1, NULL, v, len, fmt,
                             1));
        lat[i] = now_ns() - a;
    }
    r.get = summarise(lat, n_get, now_ns() - t0);
    t0 = now_ns();
    for (int i = 0; i < n_page; i++) {
        char user[16];
        snprintf(user, sizeof user, "user-%d", i % USERS);
        const char *v[2] = {"ws-bench", user};
        int64_t a = now_ns();
        PQclear(PQexecParams(pg, "SELECT id, t, doc FROM plain WHERE ws = $1 AND usr = $2 ORDER "
                                 "BY t DESC, id DESC LIMIT 21", 2, NULL, v, NULL, NULL, 1));
        lat[i] = now_ns() - a;
    }
    r.page = summarise(lat, n_page, now_ns() - t0);
    r.ok = 1;
out:
    snprintf(sql, sizeof sql, "DROP SCHEMA %s CASCADE", schema);
    PQclear(PQexec(pg, sql));
    PQfinish(pg);
    return r;
}

/* ---- main ------------------------------------------------------------------------------ */

static void report_all(const char *backend, ours o, ours b, const char *base_name)
{
    char name[64];
    snprintf(name, sizeof name, "%s.insert", base_name);
    report("storage.insert", backend, o.insert, name, b.insert);
    snprintf(name, sizeof name, "%s.get", base_name);
    report("storage.get", backend, o.get, name, b.get);
    snprintf(name, sizeof name, "%s.query_page", base_name);
    report("storage.query_page", backend, o.page, name, b.page);
}

static void all_skipped(const char *backend, const char *why)
{
    skipped("storage.insert", backend, why);
    skipped("storage.get", backend, why);
    skipped("storage.query_page", backend, why);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--quick") == 0) {
            n_insert = 300;
            n_get = 2000;
            n_page = 200;
        }
    int64_t *lat = calloc((size_t)(n_insert > n_get ? n_insert : n_get) + 1, sizeof *lat);
    corpus c = make_corpus(n_insert);

    /* sqlite: ours and the raw loop in two files of one directory. */
    char dir[] = "/tmp/ee-bench-storage-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        all_skipped("sqlite", "cannot create a temporary directory");
    } else {
        char path[128], raw[128];
        snprintf(path, sizeof path, "%s/ours.db", dir);
        snprintf(raw, sizeof raw, "%s/raw.db", dir);
        ee_storage *s = NULL;
        ours b = run_sqlite_raw(raw, &c, lat);
        ours o = {.ok = 0};
        if (ee_storage_sqlite_new(&s, path) == EE_OK)
            o = run_ours(s, &c, lat);
        ee_storage_free(s);
        if (o.ok && b.ok)
            report_all("sqlite", o, b, "sqlite3_step");
        else
            all_skipped("sqlite", "the sqlite run failed");
        unlink(path);
        unlink(raw);
        char side[160];
        snprintf(side, sizeof side, "%s-wal", path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", path);
        unlink(side);
        snprintf(side, sizeof side, "%s-wal", raw);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", raw);
        unlink(side);
        rmdir(dir);
    }

    ee_storage *m = NULL;
    if (ee_storage_memory_new(&m) == EE_OK) {
        ours b = run_memory_raw(&c, lat);
        ours o = run_ours(m, &c, lat);
        if (o.ok)
            report_all("memory", o, b, "hashtable");
        else
            all_skipped("memory", "the memory run failed");
    }
    ee_storage_free(m);

    const char *pg = getenv("EE_BENCH_POSTGRES_URI");
    if (pg == NULL || pg[0] == '\0') {
        all_skipped("postgres", "EE_BENCH_POSTGRES_URI is not set");
    } else {
        char schema[64], uri[600], raw_schema[64];
        snprintf(schema, sizeof schema, "ee_bench_%d", (int)getpid());
        snprintf(raw_schema, sizeof raw_schema, "ee_bench_raw_%d", (int)getpid());
        snprintf(uri, sizeof uri, "%s%sschema=%s", pg, strchr(pg, '?') ? "&" : "?", schema);
        ours b = run_postgres_raw(pg, raw_schema, &c, lat);
        ee_storage *p = NULL;
        ours o = {.ok = 0};
        if (ee_storage_open_uri(&p, uri) == EE_OK)
            o = run_ours(p, &c, lat);
        else
            fprintf(stderr, "postgres: %s\n", ee_error_last_message());
        ee_storage_free(p);
        PGconn *conn = PQconnectdb(pg);
        PQsetNoticeProcessor(conn, quiet, NULL);
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
        PQclear(PQexec(conn, sql));
        PQfinish(conn);
        if (o.ok && b.ok)
            report_all("postgres", o, b, "libpq");
        else
            all_skipped("postgres", "the postgres run failed (see stderr)");
    }
    free_corpus(&c);
    free(lat);
    return 0;
}
