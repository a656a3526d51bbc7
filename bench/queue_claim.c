/*
 * bench_queue_claim: one execution through the durable queue - push, claim,
 * done (lib/exec/queue.h) - per item, beside the bare storage work of the
 * same item measured in the same run on the same backend: insert of the
 * same document and delete by id. `slowdown` is what the queue's
 * bookkeeping costs over that floor (backlog counter, fairness round, the
 * atomic claim). Backends: sqlite (a file, default settings), memory, and
 * postgres when EE_BENCH_POSTGRES_URI is set (a schema of its own, dropped
 * after).
 * One JSON object per line (DESIGN.md). `--quick` keeps the run short.
 * Never fails: problems are printed as {"bench":..., "skipped": reason}.
 */
#include <bson/bson.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "exec/queue.h"
#include "execengine/storage.h"

#define BENCH "queue.push_claim_done"
#define T0 1700000000000LL

static int n_items = 2000;

static void skipped(const char *backend, const char *why)
{
    printf("{\"bench\": \"%s\", \"backend\": \"%s\", \"skipped\": \"%s\"}\n", BENCH, backend,
           why);
    fflush(stdout);
}

/* The document the queue stores for an item, for the baseline. */
static bson_t *item_doc(int i)
{
    char exec[24], ws[16];
    snprintf(exec, sizeof exec, "base-%d", i);
    snprintf(ws, sizeof ws, "ws-%d", i % 8);
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "executionId", exec);
    BSON_APPEND_UTF8(d, "workspaceId", ws);
    BSON_APPEND_UTF8(d, "state", "waiting");
    BSON_APPEND_UTF8(d, "round", "000000000001");
    BSON_APPEND_DATE_TIME(d, "claimableAt", T0 + i);
    BSON_APPEND_DATE_TIME(d, "enqueuedAt", T0 + i);
    BSON_APPEND_INT32(d, "attempts", 0);
    BSON_APPEND_UTF8(d, "owner", "");
    BSON_APPEND_INT64(d, "leaseUntil", 0);
    return d;
}

/* insert + delete per item; p50 and p99 in ns. Returns 0 on success. */
static int run_baseline(ee_storage *s, uint64_t *lat, uint64_t *p50, uint64_t *p99)
{
    for (int i = 0; i < n_items; i++) {
        bson_t *d = item_doc(i);
        char id[25];
        uint64_t t = bench_now_ns();
        ee_status st = ee_storage_insert(s, "executionQueue", NULL, bson_get_data(d), d->len, id);
        if (st == EE_OK)
            st = ee_storage_delete(s, "executionQueue", NULL, id);
        lat[i] = bench_now_ns() - t;
        bson_destroy(d);
        if (st != EE_OK) {
            fprintf(stderr, "baseline: %s\n", ee_error_last_message());
            return -1;
        }
    }
    *p99 = bench_quantile(lat, (size_t)n_items, 0.99);
    *p50 = bench_quantile(lat, (size_t)n_items, 0.5);
    return 0;
}

/* push + claim + done per item, 8 workspaces in turn. */
static int run_queue(ee_storage *s, uint64_t *lat, uint64_t *p50, uint64_t *p99)
{
    for (int i = 0; i < n_items; i++) {
        char exec[24], ws[16];
        snprintf(exec, sizeof exec, "q-%d", i);
        snprintf(ws, sizeof ws, "ws-%d", i % 8);
        ee__queue_item it;
        uint64_t t = bench_now_ns();
        ee_status st = ee__queue_push(s, ws, exec, T0 + i, 10000);
        if (st == EE_OK)
            st = ee__queue_claim(s, "bench-worker", T0 + i, 60000, &it);
        if (st == EE_OK)
            st = ee__queue_done(s, &it);
        lat[i] = bench_now_ns() - t;
        if (st != EE_OK) {
            fprintf(stderr, "queue: %s\n", ee_error_last_message());
            return -1;
        }
    }
    *p99 = bench_quantile(lat, (size_t)n_items, 0.99);
    *p50 = bench_quantile(lat, (size_t)n_items, 0.5);
    return 0;
}

static void bench_on(ee_storage *s, const char *backend, uint64_t *lat)
{
    uint64_t b50 = 0, b99 = 0, q50 = 0, q99 = 0;
    if (run_baseline(s, lat, &b50, &b99) != 0 || run_queue(s, lat, &q50, &q99) != 0) {
        skipped(backend, "the run failed (see stderr)");
        return;
    }
    bench_report(BENCH, backend, NULL, q50, q99, "storage.insert_delete", b50);
}

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

int main(int argc, char **argv)
{
    if (bench_quick(argc, argv))
        n_items = 200;
    uint64_t *lat = calloc((size_t)n_items, sizeof *lat);
    if (lat == NULL)
        return 0;

    char dir[] = "/tmp/ee-bench-queue-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        skipped("sqlite", "cannot make a temporary directory");
    } else {
        char path[128];
        snprintf(path, sizeof path, "%s/queue.db", dir);
        ee_storage *s = NULL;
        if (ee_storage_sqlite_new(&s, path) == EE_OK)
            bench_on(s, "sqlite", lat);
        else
            skipped("sqlite", "cannot open the file");
        ee_storage_free(s);
        char f[160];
        const char *suffix[] = {"", "-wal", "-shm"};
        for (int i = 0; i < 3; i++) {
            snprintf(f, sizeof f, "%s%s", path, suffix[i]);
            unlink(f);
        }
        rmdir(dir);
    }

    ee_storage *m = NULL;
    if (ee_storage_memory_new(&m) == EE_OK)
        bench_on(m, "memory", lat);
    else
        skipped("memory", "out of memory");
    ee_storage_free(m);

    const char *pg = getenv("EE_BENCH_POSTGRES_URI");
    if (pg == NULL || pg[0] == '\0') {
        skipped("postgres", "EE_BENCH_POSTGRES_URI is not set");
    } else {
        char schema[64], uri[600];
        snprintf(schema, sizeof schema, "ee_bench_queue_%d", (int)getpid());
        snprintf(uri, sizeof uri, "%s%sschema=%s", pg, strchr(pg, '?') ? "&" : "?", schema);
        ee_storage *p = NULL;
        if (ee_storage_open_uri(&p, uri) == EE_OK)
            bench_on(p, "postgres", lat);
        else
            skipped("postgres", "cannot connect (see stderr)");
        ee_storage_free(p);
        PGconn *conn = PQconnectdb(pg);
        PQsetNoticeProcessor(conn, quiet, NULL);
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
        PQclear(PQexec(conn, sql));
        PQfinish(conn);
    }
    free(lat);
    return 0;
}
