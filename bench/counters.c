/*
 * bench_counters: reserve+commit on each counters backend, beside a
 * baseline measured in the same run (DESIGN.md "Tests and benchmarks").
 *
 *   memory          baseline "hash.atomic_add": per operation, the same key
 *                   string looked up in a plain hash table and an atomic add
 *                   on the counter found, twice (reserve and commit are each
 *                   one atomic step on a keyed counter)
 *   storage-sqlite  baseline "sqlite.update": a raw
 *                   UPDATE counters SET v = v + 1 WHERE k = ? sqlite3_step
 *                   loop on a file with the same settings (WAL, NORMAL)
 *   storage-postgres baseline "postgres.update": the same UPDATE through
 *                   libpq (prepared), one per operation
 *   redis           baseline "redis.incr": two raw INCR round trips with
 *                   hiredis per operation (reserve and commit are each one
 *                   script call)
 *
 * postgres and redis run only when EE_BENCH_POSTGRES_URI / EE_BENCH_REDIS_URI
 * are set; otherwise a line with "skipped" says so. --quick keeps the whole
 * run well under 15 s. The benchmark never fails: errors become "error"
 * lines.
 */
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "counters/counters_internal.h"
#include "execengine/counters.h"

#define T0 INT64_C(1700000000000)

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double p50, p99, ops;
} stats;

/* Per-op latencies are measured over batches of `batch` ops (the clock
 * costs ~20 ns: timing single 50 ns operations would mostly time it). */
typedef bool (*op_fn)(void *ctx, long i);

/* Ours and the baseline in alternating rounds, so that load from other
 * processes on a shared machine falls on both alike. */
static void measure_pair(op_fn a, void *actx, op_fn b, void *bctx, long n, int batch, int rounds,
                         stats *sa, stats *sb)
{
    long per = n / rounds / batch * batch;
    int64_t *la = malloc((size_t)(n / batch + 1) * sizeof *la);
    int64_t *lb = malloc((size_t)(n / batch + 1) * sizeof *lb);
    long na = 0, nb = 0, ia = 0, ib = 0;
    int64_t ta = 0, tb = 0;
    bool ok_a = true, ok_b = true;
    memset(sa, 0, sizeof *sa);
    memset(sb, 0, sizeof *sb);
    if (la == NULL || lb == NULL)
        goto out;
    for (int r = 0; r < rounds; r++) {
        for (int side = 0; side < 2; side++) {
            op_fn fn = side ? b : a;
            void *ctx = side ? bctx : actx;
            bool *ok = side ? &ok_b : &ok_a;
            int64_t *lat = side ? lb : la;
            long *cnt = side ? &nb : &na, *idx = side ? &ib : &ia;
            int64_t *tot = side ? &tb : &ta;
            if (!*ok)
                continue;
            int64_t start = now_ns();
            for (long k = 0; k < per / batch && *ok; k++) {
                int64_t t = now_ns();
                for (int j = 0; j < batch && *ok; j++)
                    *ok = fn(ctx, (*idx)++);
                if (*ok)
                    lat[(*cnt)++] = (now_ns() - t) / batch;
            }
            *tot += now_ns() - start;
        }
    }
    stats *outs[2] = {sa, sb};
    int64_t *lats[2] = {la, lb};
    long cnts[2] = {na, nb}, idxs[2] = {ia, ib};
    int64_t tots[2] = {ta, tb};
    for (int side = 0; side < 2; side++) {
        long got = cnts[side];
        if (got == 0)
            continue;
        qsort(lats[side], (size_t)got, sizeof(int64_t), cmp_i64);
        outs[side]->p50 = (double)lats[side][got / 2];
        outs[side]->p99 = (double)lats[side][(got * 99) / 100];
        outs[side]->ops = (double)idxs[side] * 1e9 / (double)(tots[side] > 0 ? tots[side] : 1);
    }
out:
    free(la);
    free(lb);
}

static void report(const char *backend, stats ours, const char *baseline, stats base)
{
    printf("{\"bench\": \"counters.reserve_commit\", \"backend\": \"%s\", \"unit\": \"ns/op\", "
           "\"p50\": %.0f, \"p99\": %.0f, \"ops_per_s\": %.0f, \"baseline\": \"%s\", "
           "\"baseline_p50\": %.0f, \"baseline_ops_per_s\": %.0f, \"slowdown\": %.2f}\n",
           backend, ours.p50, ours.p99, ours.ops, baseline, base.p50, base.ops,
           base.p50 > 0 ? ours.p50 / base.p50 : 0.0);
    fflush(stdout);
}

static void skipped(const char *backend, const char *why)
{
    printf("{\"bench\": \"counters.reserve_commit\", \"backend\": \"%s\", \"skipped\": \"%s\"}\n",
           backend, why);
    fflush(stdout);
}

static void failed(const char *backend, const char *what)
{
    printf("{\"bench\": \"counters.reserve_commit\", \"backend\": \"%s\", \"error\": \"%s: "
           "%s\"}\n",
           backend, what, ee_error_last_message());
    fflush(stdout);
}

/* ---- ours: reserve + commit ----------------------------------------------------------- */

typedef struct {
    ee_counters *c;
    char keys[16][64];
} ours_ctx;

static bool ours_op(void *p, long i)
{
    ours_ctx *o = p;
    const char *key = o->keys[i & 15];
    ee_counter_req q = {key, 1, INT64_C(1) << 50, 0, 0};
    ee_counter_result r;
    int g = 0;
    if (ee_counters_reserve(o->c, &q, 60000, T0, &r, &g) != EE_OK || !g)
        return false;
    return ee_counters_commit(o->c, key, r.resv_id, EE_COUNTERS_ALL, T0) == EE_OK;
}

static void ours_setup(ours_ctx *o, ee_counters *c, const char *tag)
{
    o->c = c;
    for (int i = 0; i < 16; i++)
        snprintf(o->keys[i], sizeof o->keys[i], "bench:%s:%ld:org-%02d:predictions", tag,
                 (long)getpid(), i);
    for (int i = 0; i < 16; i++)
        ours_op(o, i); /* warm: keys exist, scripts cached, statements prepared */
}

/* ---- memory baseline: a plain hash table and atomic adds --------------------------- */

typedef struct {
    const char *key;
    size_t len;
    uint64_t hash;
    _Atomic int64_t v;
} plain_entry;

typedef struct {
    plain_entry slots[64];
    char keys[16][64];
} plain_ctx;

static plain_entry *plain_find(plain_ctx *p, const char *key)
{
    size_t len = strlen(key);
    uint64_t h = ee__counters_key_hash(key, len);
    for (size_t i = h & 63;; i = (i + 1) & 63) {
        plain_entry *e = &p->slots[i];
        if (e->key == NULL) {
            e->key = key;
            e->len = len;
            e->hash = h;
            return e;
        }
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    }
}

static bool plain_op(void *p, long i)
{
    plain_ctx *c = p;
    const char *key = c->keys[i & 15];
    atomic_fetch_add(&plain_find(c, key)->v, 1);
    atomic_fetch_add(&plain_find(c, key)->v, 1);
    return true;
}

/* ---- sqlite baseline ---------------------------------------------------------------- */

typedef struct {
    sqlite3 *db;
    sqlite3_stmt *st;
} lite_ctx;

static bool lite_op(void *p, long i)
{
    lite_ctx *l = p;
    char key[32];
    snprintf(key, sizeof key, "k%ld", i & 15);
    sqlite3_bind_text(l->st, 1, key, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(l->st);
    sqlite3_reset(l->st);
    return rc == SQLITE_DONE;
}

static void bench_sqlite(long n)
{
    char path[96], base_path[96];
    snprintf(path, sizeof path, "/tmp/ee-bench-counters-%ld.db", (long)getpid());
    snprintf(base_path, sizeof base_path, "/tmp/ee-bench-raw-%ld.db", (long)getpid());
    ee_counters *c = NULL;
    stats ours = {0, 0, 0}, base = {0, 0, 0};
    if (ee_counters_sqlite_new(&c, path) != EE_OK) {
        failed("storage-sqlite", "open");
    } else {
        ours_ctx o;
        ours_setup(&o, c, "sqlite");
        lite_ctx l = {0};
        if (sqlite3_open(base_path, &l.db) == SQLITE_OK &&
            sqlite3_exec(l.db,
                         "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                         "CREATE TABLE IF NOT EXISTS counters (k TEXT PRIMARY KEY, v INTEGER);"
                         "WITH RECURSIVE i(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM i WHERE "
                         "x < 15) INSERT OR IGNORE INTO counters SELECT 'k' || x, 0 FROM i;",
                         0, 0, 0) == SQLITE_OK &&
            sqlite3_prepare_v2(l.db, "UPDATE counters SET v = v + 1 WHERE k = ?", -1, &l.st,
                               NULL) == SQLITE_OK)
            measure_pair(ours_op, &o, lite_op, &l, n, 10, 10, &ours, &base);
        ee_counters_free(c);
        sqlite3_finalize(l.st);
        sqlite3_close(l.db);
        report("storage-sqlite", ours, "sqlite.update", base);
    }
    const char *sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[120];
        snprintf(p, sizeof p, "%s%s", path, sfx[i]);
        unlink(p);
        snprintf(p, sizeof p, "%s%s", base_path, sfx[i]);
        unlink(p);
    }
}

/* ---- postgres baseline ----------------------------------------------------------------- */

static bool pg_op(void *p, long i)
{
    char key[32];
    snprintf(key, sizeof key, "k%ld", i & 15);
    const char *v[1] = {key};
    PGresult *r = PQexecPrepared(p, "bump", 1, v, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    return ok;
}

static void bench_postgres(const char *uri, long n)
{
    ee_counters *c = NULL;
    if (ee_counters_postgres_new(&c, uri) != EE_OK) {
        failed("storage-postgres", "open");
        return;
    }
    stats ours = {0, 0, 0}, base = {0, 0, 0};
    ours_ctx o;
    ours_setup(&o, c, "pg");
    PGconn *pg = PQconnectdb(uri);
    if (PQstatus(pg) == CONNECTION_OK) {
        PQclear(PQexec(pg, "SET client_min_messages TO warning;"
                           "CREATE TEMP TABLE counters (k TEXT PRIMARY KEY, v BIGINT);"
                           "INSERT INTO counters SELECT 'k' || x, 0 FROM generate_series(0, 15) x"));
        PQclear(PQprepare(pg, "bump", "UPDATE counters SET v = v + 1 WHERE k = $1", 1, NULL));
        measure_pair(ours_op, &o, pg_op, pg, n, 5, 10, &ours, &base);
    }
    ee_counters_free(c);
    PQfinish(pg);
    report("storage-postgres", ours, "postgres.update", base);
}

/* ---- redis baseline ---------------------------------------------------------------------- */

static bool incr_op(void *p, long i)
{
    redisContext *r = p;
    char key[48];
    snprintf(key, sizeof key, "bench:incr:%ld", i & 15);
    for (int k = 0; k < 2; k++) {
        redisReply *rep = redisCommand(r, "INCR %s", key);
        if (rep == NULL || rep->type != REDIS_REPLY_INTEGER) {
            freeReplyObject(rep);
            return false;
        }
        freeReplyObject(rep);
    }
    return true;
}

static void bench_redis(const char *uri, long n)
{
    ee_counters *c = NULL;
    if (ee_counters_redis_new(&c, uri) != EE_OK) {
        failed("redis", "open");
        return;
    }
    stats ours = {0, 0, 0}, base = {0, 0, 0};
    ours_ctx o;
    ours_setup(&o, c, "redis");
    char host[128] = "127.0.0.1";
    int port = 6379;
    if (sscanf(uri, "redis://%127[^:/]:%d", host, &port) < 1)
        port = 6379;
    redisContext *r = redisConnect(host, port);
    if (r != NULL && r->err == 0)
        measure_pair(ours_op, &o, incr_op, r, n, 5, 10, &ours, &base);
    ee_counters_free(c);
    if (r != NULL)
        redisFree(r);
    report("redis", ours, "redis.incr", base);
}

int main(int argc, char **argv)
{
    bool quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
    long mem_n = quick ? 2000000 : 10000000;
    long io_n = quick ? 2000 : 20000;

    ee_counters *c = NULL;
    if (ee_counters_memory_new(&c) != EE_OK) {
        failed("memory", "open");
    } else {
        plain_ctx p;
        memset(&p, 0, sizeof p);
        for (int i = 0; i < 16; i++)
            snprintf(p.keys[i], sizeof p.keys[i], "bench:memory:%ld:org-%02d:predictions",
                     (long)getpid(), i);
        ours_ctx o;
        ours_setup(&o, c, "memory");
        stats ours, base;
        measure_pair(ours_op, &o, plain_op, &p, mem_n, 100, 20, &ours, &base);
        report("memory", ours, "hash.atomic_add", base);
        ee_counters_free(c);
    }

    bench_sqlite(io_n);

    const char *pg = getenv("EE_BENCH_POSTGRES_URI");
    if (pg != NULL && pg[0] != '\0')
        bench_postgres(pg, io_n);
    else
        skipped("storage-postgres", "EE_BENCH_POSTGRES_URI is not set");

    const char *rd = getenv("EE_BENCH_REDIS_URI");
    if (rd != NULL && rd[0] != '\0')
        bench_redis(rd, io_n);
    else
        skipped("redis", "EE_BENCH_REDIS_URI is not set");
    return 0;
}
