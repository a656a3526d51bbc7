/*
 * bench_exec_overhead: one execution through the whole pipeline
 * (ee_exec_run: access, validation, admission, record, queue, a worker,
 * the trigger, the final write, accounting) with an instant transport: the
 * n8n webhook answers at once from memory, so what is measured is the
 * engine's own cost. Beside it, measured in the same run on the same
 * backend, the bare storage writes an execution makes: insert the record
 * and the queue item, read the record, rewrite the item (the claim), the
 * record twice (running, final), delete the item.
 * Backends: sqlite (a file, default settings) and memory.
 * One JSON object per line (DESIGN.md). `--quick` keeps the run short;
 * `--backend sqlite|memory` runs one of the two.
 * Never fails: problems are printed as {"bench":..., "skipped": reason}.
 */
#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_util.h"
#include "execengine/execengine.h"

#define BENCH "exec.overhead"
#define BASELINE "storage.execution_writes"

static int n_runs = 1000;

static void skipped(const char *backend, const char *why)
{
    printf("{\"bench\": \"%s\", \"backend\": \"%s\", \"skipped\": \"%s\"}\n", BENCH, backend,
           why);
    fflush(stdout);
}

/* ---- the instant n8n: one workflow to sync, its webhook echoes at once ---- */

#define WORKFLOW \
    "{\"id\": \"benchEcho00001\", \"name\": \"Bench echo\", \"active\": true," \
    " \"isArchived\": false, \"versionId\": \"v1\", \"updatedAt\": \"2026-01-01T00:00:00.000Z\"," \
    " \"tags\": [], \"connections\": {}, \"nodes\": [{\"name\": \"Webhook\", \"type\":" \
    " \"n8n-nodes-base.webhook\", \"webhookId\": \"bench\", \"parameters\": {\"path\": \"bench\"," \
    " \"httpMethod\": \"POST\", \"responseMode\": \"lastNode\"}}]}"
static const char WORKFLOWS[] = "{\"data\": [" WORKFLOW "], \"nextCursor\": null}";
static const char ANSWER[] = "{\"status\": \"completed\", \"echo\": \"bench\"}";

static ee_status answer(ee_http_response *resp, int code, const char *body)
{
    ee_http_response_set_status(resp, code);
    ee_http_response_add_header(resp, "Content-Type", "application/json");
    return ee_http_response_append_body(resp, body, strlen(body));
}

static ee_status instant_http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    (void)ctx;
    const char *url = ee_http_request_url(req);
    if (strncmp(url, "http://bench.n8n/webhook/", 25) == 0)
        return answer(resp, 200, ANSWER);
    if (strncmp(url, "http://bench.n8n/api/v1/workflows/", 34) == 0)
        return answer(resp, 200, WORKFLOW);
    if (strncmp(url, "http://bench.n8n/api/v1/workflows", 33) == 0)
        return answer(resp, 200, WORKFLOWS);
    return answer(resp, 404, "{\"message\": \"Not Found\"}");
}

/* ---- the baseline: the same writes, bare ------------------------------------ */

static bson_t *record_doc(int i, const char *status)
{
    bson_t *d = bson_new();
    char x[32];
    snprintf(x, sizeof x, "exec-%d", i);
    BSON_APPEND_UTF8(d, "workflowCatalogId", "0123456789abcdef01234567");
    BSON_APPEND_UTF8(d, "workflowName", "Bench echo");
    BSON_APPEND_UTF8(d, "workspaceId", "ws-bench");
    BSON_APPEND_UTF8(d, "userId", "user-bench");
    BSON_APPEND_UTF8(d, "orgId", "org-bench");
    BSON_APPEND_UTF8(d, "status", status);
    bson_t in;
    BSON_APPEND_DOCUMENT_BEGIN(d, "inputData", &in);
    BSON_APPEND_UTF8(&in, "text", x);
    bson_append_document_end(d, &in);
    bson_t out;
    BSON_APPEND_DOCUMENT_BEGIN(d, "outputData", &out);
    BSON_APPEND_UTF8(&out, "echo", "bench");
    bson_append_document_end(d, &out);
    BSON_APPEND_INT64(d, "executionTimeMs", 1);
    bson_t run;
    BSON_APPEND_DOCUMENT_BEGIN(d, "run", &run);
    BSON_APPEND_UTF8(&run, "ticket", "{\"keys\": [\"pred:org-bench\", \"conc:ws-bench\"]}");
    BSON_APPEND_INT64(&run, "timeoutMs", 300000);
    bson_append_document_end(d, &run);
    BSON_APPEND_DATE_TIME(d, "createdAt", 1700000000000LL + i);
    return d;
}

static bson_t *item_doc(int i)
{
    char x[32];
    snprintf(x, sizeof x, "exec-%d", i);
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "executionId", x);
    BSON_APPEND_UTF8(d, "workspaceId", "ws-bench");
    BSON_APPEND_UTF8(d, "state", "waiting");
    BSON_APPEND_DATE_TIME(d, "claimableAt", 1700000000000LL + i);
    BSON_APPEND_UTF8(d, "owner", "");
    BSON_APPEND_INT64(d, "leaseUntil", 0);
    return d;
}

static int run_baseline(ee_storage *s, uint64_t *lat, uint64_t *p50, uint64_t *p99)
{
    for (int i = 0; i < n_runs; i++) {
        bson_t *pending = record_doc(i, "pending"), *running = record_doc(i, "running"),
               *done = record_doc(i, "completed"), *item = item_doc(i);
        char rid[25], qid[25];
        uint8_t *got = NULL;
        size_t len = 0;
        int64_t rev = 0, qrev = 0;
        uint64_t t = bench_now_ns();
        ee_status st = ee_storage_insert(s, "executionQueue", NULL, bson_get_data(item),
                                         item->len, qid);
        if (st == EE_OK)
            st = ee_storage_insert(s, "workflowExecutions", "ws-bench", bson_get_data(pending),
                                   pending->len, rid);
        if (st == EE_OK)
            st = ee_storage_get(s, "executionQueue", NULL, qid, &got, &len, &qrev);
        ee_free(got);
        if (st == EE_OK)
            st = ee_storage_replace(s, "executionQueue", NULL, qid, qrev, bson_get_data(item),
                                    item->len, NULL);
        got = NULL;
        if (st == EE_OK)
            st = ee_storage_get(s, "workflowExecutions", "ws-bench", rid, &got, &len, &rev);
        ee_free(got);
        if (st == EE_OK)
            st = ee_storage_replace(s, "workflowExecutions", "ws-bench", rid, rev,
                                    bson_get_data(running), running->len, &rev);
        if (st == EE_OK)
            st = ee_storage_replace(s, "workflowExecutions", "ws-bench", rid, rev,
                                    bson_get_data(done), done->len, &rev);
        if (st == EE_OK)
            st = ee_storage_delete(s, "executionQueue", NULL, qid);
        lat[i] = bench_now_ns() - t;
        bson_destroy(pending), bson_destroy(running), bson_destroy(done), bson_destroy(item);
        if (st != EE_OK) {
            fprintf(stderr, "baseline: %s\n", ee_error_last_message());
            return -1;
        }
    }
    *p99 = bench_quantile(lat, (size_t)n_runs, 0.99);
    *p50 = bench_quantile(lat, (size_t)n_runs, 0.5);
    return 0;
}

/* ---- the pipeline --------------------------------------------------------------- */

static ee_engine *open_engine(const char *storage_uri, ee_transport *t, ee_n8n *n8n)
{
    ee_config *cfg = NULL;
    if (ee_config_new(&cfg) != EE_OK)
        return NULL;
    const char *kv[][2] = {
        {"API_KEY_ENCRYPTION_SECRET", "bench-secret-0123456789abcdef0123456789"},
        {"EE_DATA_DIR", EE_BENCH_SOURCE_DIR "/data"},
        {"EE_STORAGE_URI", storage_uri},
        {"EXEC_WORKERS", "1"},
        {"EXEC_POLL_MS", "10"},
        {"MAX_EXECUTIONS_PER_USER_PER_HOUR", "100000000"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (ee_config_set(cfg, kv[i][0], kv[i][1]) != EE_OK) {
            fprintf(stderr, "%s: %s\n", kv[i][0], ee_error_last_message());
            ee_config_free(cfg);
            return NULL;
        }
    }
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .n8n = n8n, .transport = t};
    ee_engine *e = NULL;
    ee_status st = ee_engine_open_parts(&e, cfg, &parts);
    ee_config_free(cfg);
    if (st != EE_OK)
        fprintf(stderr, "engine: %s\n", ee_error_last_message());
    return st == EE_OK ? e : NULL;
}

static int run_pipeline(ee_engine *e, uint64_t *lat, uint64_t *p50, uint64_t *p99)
{
    char *out = NULL;
    if (ee_catalog_sync(e, &out) != EE_OK) {
        fprintf(stderr, "sync: %s\n", out != NULL ? out : ee_error_last_message());
        ee_free(out);
        return -1;
    }
    ee_free(out);
    out = NULL;
    if (ee_catalog_list(e, NULL, "{\"limit\": 1}", &out) != EE_OK) {
        fprintf(stderr, "list: %s\n", ee_error_last_message());
        return -1;
    }
    char wf[32] = "";
    const char *at = strstr(out, "\"id\":");
    if (at != NULL)
        sscanf(at, "\"id\": \"%24[0-9a-f]\"", wf);
    if (at != NULL && wf[0] == '\0')
        sscanf(at, "\"id\":\"%24[0-9a-f]\"", wf);
    ee_free(out);
    if (wf[0] == '\0') {
        fprintf(stderr, "no catalog entry after the sync\n");
        return -1;
    }
    /* Each run its own organisation: the free plan's monthly predictions
     * (1000) never refuse a run of the benchmark. */
    for (int i = 0; i < n_runs; i++) {
        char org[32], req[96];
        snprintf(org, sizeof org, "org-bench-%d", i);
        snprintf(req, sizeof req, "{\"parameters\": {\"text\": \"run %d\"}}", i);
        ee_principal *p = NULL;
        if (ee_principal_new(&p, "ws-bench", "user-bench", org) != EE_OK)
            return -1;
        out = NULL;
        uint64_t t = bench_now_ns();
        ee_status st = ee_exec_run(e, p, wf, req, &out);
        lat[i] = bench_now_ns() - t;
        ee_principal_free(p);
        if (st != EE_OK) {
            fprintf(stderr, "run %d: %s: %s\n", i, ee_status_name(st),
                    out != NULL ? out : ee_error_last_message());
            ee_free(out);
            return -1;
        }
        ee_free(out);
    }
    *p99 = bench_quantile(lat, (size_t)n_runs, 0.99);
    *p50 = bench_quantile(lat, (size_t)n_runs, 0.5);
    return 0;
}

static void remove_sqlite(const char *path)
{
    char f[300];
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(f, sizeof f, "%s%s", path, suffix[i]);
        unlink(f);
    }
}

static void bench_on(const char *backend, const char *dir, ee_transport *t, ee_n8n *n8n,
                     uint64_t *lat)
{
    char base_path[256], engine_uri[300];
    ee_storage *s = NULL;
    ee_status st;
    snprintf(base_path, sizeof base_path, "%s/baseline.db", dir);
    if (strcmp(backend, "sqlite") == 0) {
        st = ee_storage_sqlite_new(&s, base_path);
        snprintf(engine_uri, sizeof engine_uri, "sqlite://%s/engine.db", dir);
    } else {
        st = ee_storage_memory_new(&s);
        snprintf(engine_uri, sizeof engine_uri, "memory:");
    }
    if (st != EE_OK) {
        skipped(backend, "cannot open the baseline storage");
        return;
    }
    uint64_t b50 = 0, b99 = 0, x50 = 0, x99 = 0;
    int bad = run_baseline(s, lat, &b50, &b99);
    ee_storage_free(s);
    ee_engine *e = bad == 0 ? open_engine(engine_uri, t, n8n) : NULL;
    if (e == NULL || run_pipeline(e, lat, &x50, &x99) != 0)
        skipped(backend, "the run failed (see stderr)");
    else
        bench_report(BENCH, backend, NULL, x50, x99, BASELINE, b50);
    ee_engine_close(e);
    if (strcmp(backend, "sqlite") == 0) {
        remove_sqlite(base_path);
        char p[300];
        snprintf(p, sizeof p, "%s/engine.db", dir);
        remove_sqlite(p);
    }
}

int main(int argc, char **argv)
{
    if (bench_quick(argc, argv))
        n_runs = 200;
    uint64_t *lat = calloc((size_t)n_runs, sizeof *lat);
    ee_transport *t = NULL;
    ee_n8n *n8n = NULL;
    ee_transport_backend b = {EE_TRANSPORT_BACKEND_VERSION, EE_TRANSPORT_THREAD_SAFE,
                              instant_http, NULL, NULL};
    if (lat == NULL || ee_transport_new_custom(&t, &b, NULL, NULL) != EE_OK ||
        ee_n8n_new(&n8n, t, "http://bench.n8n", "bench-key") != EE_OK) {
        skipped("all", "cannot set up the instant transport");
        return 0;
    }
    char dir[] = "/tmp/ee-bench-exec-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        skipped("sqlite", "cannot make a temporary directory");
    } else {
        /* --backend NAME runs one (for a profiler); both otherwise. */
        const char *only = NULL;
        for (int i = 1; i + 1 < argc; i++)
            if (strcmp(argv[i], "--backend") == 0)
                only = argv[i + 1];
        if (only == NULL || strcmp(only, "sqlite") == 0)
            bench_on("sqlite", dir, t, n8n, lat);
        if (only == NULL || strcmp(only, "memory") == 0)
            bench_on("memory", dir, t, n8n, lat);
        char r[300];
        snprintf(r, sizeof r, "rm -rf '%s'", dir);
        if (system(r) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    ee_n8n_free(n8n);
    ee_transport_free(t);
    free(lat);
    return 0;
}
