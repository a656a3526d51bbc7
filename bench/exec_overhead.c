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
 * On sqlite the line also gives what a run asks of the disk, counted by a
 * VFS shim (tests/support/sqlite_sync_count.h) - exact where the times are
 * noisy: "wal_frames" (pages written to the write-ahead log a run, each
 * rewritten at the next checkpoint) and "syncs" (fsyncs a run), beside the
 * baseline's ("baseline_wal_frames", "baseline_syncs").
 * One JSON object per line (DESIGN.md). `--quick` keeps the run short;
 * `--backend sqlite|memory` runs one of the two.
 * Never fails: problems are printed as {"bench":..., "skipped": reason}.
 */
#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/support/sqlite_sync_count.h"
#include "bench_util.h"
#include "execengine/execengine.h"

#define BENCH "exec.overhead"
#define BASELINE "storage.execution_writes"

static int n_runs = 1000;

/* The shim's counts when a measured loop started and ended. */
typedef struct disk_use {
    long wal_bytes, syncs;
} disk_use;

static disk_use disk_now(void)
{
    disk_use d = {atomic_load(&sqlite_wal_bytes),
                  atomic_load(&sqlite_syncs_wal) + atomic_load(&sqlite_syncs_other)};
    return d;
}

static disk_use loop_start, loop_end;

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

/* A run's writes, as the pipeline makes them (docs/execution.md, "What a run
 * writes"), each its own call and commit: the quota's three reservations and
 * their end; the queue item with its two counters, the record, its three
 * audit entries, the gateway grant, the record's three rewrites (running,
 * the end, the charge), the month's billing row, the two usage rows, the
 * gateway's total row (the revocation) and the item's removal. */

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
    BSON_APPEND_UTF8(d, "idempotencyKey", x);
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

static bson_t *item_doc(int i, const char *state)
{
    char x[32];
    snprintf(x, sizeof x, "exec-%d", i);
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "executionId", x);
    BSON_APPEND_UTF8(d, "workspaceId", "ws-bench");
    BSON_APPEND_UTF8(d, "state", state);
    BSON_APPEND_UTF8(d, "round", "00000000000000000001");
    BSON_APPEND_DATE_TIME(d, "claimableAt", 1700000000000LL + i);
    BSON_APPEND_UTF8(d, "owner", "");
    BSON_APPEND_INT64(d, "leaseUntil", 0);
    return d;
}

static bson_t *audit_doc(int i, const char *action)
{
    char x[32];
    snprintf(x, sizeof x, "exec-%d", i);
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "workspaceId", "ws-bench");
    BSON_APPEND_UTF8(d, "orgId", "org-bench");
    BSON_APPEND_UTF8(d, "userId", "user-bench");
    BSON_APPEND_UTF8(d, "action", action);
    BSON_APPEND_UTF8(d, "targetKind", "execution");
    BSON_APPEND_UTF8(d, "resourceId", x);
    BSON_APPEND_UTF8(d, "outcome", "ok");
    BSON_APPEND_UTF8(d, "status", "EE_OK");
    bson_t detail;
    BSON_APPEND_DOCUMENT_BEGIN(d, "detail", &detail);
    BSON_APPEND_UTF8(&detail, "workflowId", "0123456789abcdef01234567");
    bson_append_document_end(d, &detail);
    BSON_APPEND_DATE_TIME(d, "createdAt", 1700000000000LL + i);
    return d;
}

static bson_t *grant_doc(int i)
{
    char x[32], hash[65];
    snprintf(x, sizeof x, "exec-%d", i);
    /* a token's SHA-256: spread like one */
    for (int k = 0; k < 64; k++)
        hash[k] = "0123456789abcdef"[(unsigned)(i * 2654435761u >> (k % 28)) % 16 ^ (k & 15)];
    hash[64] = '\0';
    bson_t *d = bson_new();
    BSON_APPEND_UTF8(d, "tokenHash", hash);
    BSON_APPEND_UTF8(d, "executionId", x);
    BSON_APPEND_UTF8(d, "workspaceId", "ws-bench");
    BSON_APPEND_UTF8(d, "userId", "user-bench");
    BSON_APPEND_INT64(d, "budgetNanoUsd", 50000000);
    BSON_APPEND_INT64(d, "expiresAt", 1700000600000LL + i);
    BSON_APPEND_DATE_TIME(d, "createdAt", 1700000000000LL + i);
    return d;
}

typedef struct baseline_step {
    ee_storage *s;
    ee_counters *c;
    int i;
    char rid[25], qid[25];
} baseline_step;

static ee_status insert(baseline_step *b, const char *coll, const char *ws, bson_t *d, char *id)
{
    ee_status st = ee_storage_insert(b->s, coll, ws, bson_get_data(d), d->len, id);
    bson_destroy(d);
    return st;
}

/* Read, then write at the revision read (the engine's every rewrite). */
static ee_status rewrite(baseline_step *b, const char *coll, const char *ws, const char *id,
                         bson_t *d)
{
    uint8_t *got = NULL;
    size_t len = 0;
    int64_t rev = 0;
    ee_status st = ee_storage_get(b->s, coll, ws, id, &got, &len, &rev);
    ee_free(got);
    if (st == EE_OK)
        st = ee_storage_replace(b->s, coll, ws, id, rev, bson_get_data(d), d->len, NULL);
    bson_destroy(d);
    return st;
}

static ee_status bump(baseline_step *b, const char *coll, const char *ws, const ee_storage_eq *key,
                      size_t n_key, const char *field, int64_t by)
{
    ee_storage_inc inc = {field, by};
    return ee_storage_increment(b->s, coll, ws, key, n_key, &inc, 1, 1700000000000LL + b->i, NULL);
}

static ee_status baseline_run(baseline_step *b)
{
    int i = b->i;
    int64_t now = 1700000000000LL + i;
    char org[32], x[32], round[64];
    snprintf(org, sizeof org, "pred:org-bench-%d", i);
    snprintf(x, sizeof x, "exec-%d", i);
    snprintf(round, sizeof round, "round:ws-bench");
    ee_counter_req reqs[3] = {{org, 1, 1000, 0, now + 86400000},
                              {"conc:ws-bench", 1, 1000000, 0, 0},
                              {"rate:user-bench", 1, 100000000, 3600000, 0}};
    int64_t leases[3] = {600000, 600000, 3600000};
    ee_counter_result res[3];
    int granted = 0;
    ee_status st = ee_counters_reserve_many_leased(b->c, reqs, leases, 3, now, res, &granted);
    if (st == EE_OK && !granted)
        st = EE_EQUOTA;
    ee_storage_eq backlog = {"name", "backlog"}, rnd = {"name", round};
    if (st == EE_OK)
        st = bump(b, "executionQueueCounters", NULL, &backlog, 1, "value", 1);
    if (st == EE_OK)
        st = bump(b, "executionQueueCounters", NULL, &rnd, 1, "value", 1);
    if (st == EE_OK)
        st = insert(b, "executionQueue", NULL, item_doc(i, "waiting"), b->qid);
    if (st == EE_OK)
        st = insert(b, "workflowExecutions", "ws-bench", record_doc(i, "pending"), b->rid);
    if (st == EE_OK)
        st = insert(b, "auditLog", "ws-bench", audit_doc(i, "execution.submitted"), NULL);
    /* a worker's claim */
    if (st == EE_OK)
        st = rewrite(b, "executionQueue", NULL, b->qid, item_doc(i + 300000, "claimed"));
    if (st == EE_OK)
        st = bump(b, "executionQueueCounters", NULL, &backlog, 1, "value", -1);
    /* the start */
    if (st == EE_OK)
        st = rewrite(b, "workflowExecutions", "ws-bench", b->rid, record_doc(i, "running"));
    if (st == EE_OK)
        st = insert(b, "gatewayGrants", NULL, grant_doc(i), NULL);
    if (st == EE_OK)
        st = insert(b, "auditLog", "ws-bench", audit_doc(i, "execution.started"), NULL);
    /* the end */
    if (st == EE_OK)
        st = rewrite(b, "workflowExecutions", "ws-bench", b->rid, record_doc(i, "completed"));
    if (st == EE_OK)
        st = insert(b, "auditLog", "ws-bench", audit_doc(i, "execution.finished"), NULL);
    /* the accounting */
    if (st == EE_OK)
        st = ee_counters_commit(b->c, org, res[0].resv_id, EE_COUNTERS_ALL, now);
    if (st == EE_OK)
        st = ee_counters_release(b->c, "conc:ws-bench", res[1].resv_id, now);
    ee_storage_eq month[2] = {{"month", "2023-11"}, {"userId", "user-bench"}};
    ee_storage_eq usage[3] = {{"userId", "user-bench"},
                              {"workflowCatalogId", "0123456789abcdef01234567"},
                              {"period", "2023-11"}};
    ee_storage_eq total[2] = {{"executionId", x}, {"callId", "total"}};
    if (st == EE_OK)
        st = bump(b, "platformUsageBilling", "ws-bench", month, 2, "executions", 1);
    if (st == EE_OK)
        st = bump(b, "userWorkflowUsage", "ws-bench", usage, 3, "executionsCount", 1);
    usage[2].value = "2023-11-14";
    if (st == EE_OK)
        st = bump(b, "userWorkflowUsage", "ws-bench", usage, 3, "executionsCount", 1);
    usage[2].value = "all"; /* the all-time usage row */
    if (st == EE_OK)
        st = bump(b, "userWorkflowUsage", "ws-bench", usage, 3, "executionsCount", 1);
    if (st == EE_OK)
        st = rewrite(b, "workflowExecutions", "ws-bench", b->rid, record_doc(i, "completed"));
    if (st == EE_OK)
        st = bump(b, "gatewayCalls", "ws-bench", total, 2, "revoked", 1);
    if (st == EE_OK)
        st = ee_storage_delete(b->s, "executionQueue", NULL, b->qid);
    return st;
}

static int run_baseline(ee_storage *s, ee_counters *c, uint64_t *lat, uint64_t *p50,
                        uint64_t *p99)
{
    loop_start = disk_now();
    for (int i = 0; i < n_runs; i++) {
        baseline_step b = {.s = s, .c = c, .i = i};
        uint64_t t = bench_now_ns();
        ee_status st = baseline_run(&b);
        lat[i] = bench_now_ns() - t;
        if (st != EE_OK) {
            fprintf(stderr, "baseline: %s: %s\n", ee_status_name(st), ee_error_last_message());
            return -1;
        }
    }
    loop_end = disk_now();
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
    loop_start = disk_now();
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
    loop_end = disk_now();
    *p99 = bench_quantile(lat, (size_t)n_runs, 0.99);
    *p50 = bench_quantile(lat, (size_t)n_runs, 0.5);
    return 0;
}

/* Frames and syncs per run of the last measured loop, as JSON members. */
static void disk_json(const char *prefix, char *buf, size_t cap)
{
    double frames = (double)(loop_end.wal_bytes - loop_start.wal_bytes) / (4096.0 + 24.0);
    double syncs = (double)(loop_end.syncs - loop_start.syncs);
    snprintf(buf, cap, "\"%swal_frames\": %.1f, \"%ssyncs\": %.2f", prefix,
             frames / n_runs, prefix, syncs / n_runs);
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
    ee_counters *c = NULL;
    ee_status st;
    snprintf(base_path, sizeof base_path, "%s/baseline.db", dir);
    if (strcmp(backend, "sqlite") == 0) {
        st = ee_storage_sqlite_new(&s, base_path);
        if (st == EE_OK) /* in the same file, as the engine's default counters */
            st = ee_counters_sqlite_new(&c, base_path);
        snprintf(engine_uri, sizeof engine_uri, "sqlite://%s/engine.db", dir);
    } else {
        st = ee_storage_memory_new(&s);
        if (st == EE_OK)
            st = ee_counters_memory_new(&c);
        snprintf(engine_uri, sizeof engine_uri, "memory:");
    }
    if (st != EE_OK) {
        ee_counters_free(c);
        ee_storage_free(s);
        skipped(backend, "cannot open the baseline storage");
        return;
    }
    bool sqlite = strcmp(backend, "sqlite") == 0;
    uint64_t b50 = 0, b99 = 0, x50 = 0, x99 = 0;
    char disk[160] = "", base_disk[80] = "";
    int bad = run_baseline(s, c, lat, &b50, &b99);
    if (sqlite)
        disk_json("baseline_", base_disk, sizeof base_disk);
    ee_counters_free(c);
    ee_storage_free(s);
    ee_engine *e = bad == 0 ? open_engine(engine_uri, t, n8n) : NULL;
    if (e == NULL || run_pipeline(e, lat, &x50, &x99) != 0) {
        skipped(backend, "the run failed (see stderr)");
    } else {
        if (sqlite) {
            disk_json("", disk, sizeof disk);
            size_t n = strlen(disk);
            snprintf(disk + n, sizeof disk - n, ", %s", base_disk);
        }
        bench_report(BENCH, backend, sqlite ? disk : NULL, x50, x99, BASELINE, b50);
    }
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
    /* before anything opens a database: the counting VFS is the default */
    if (sqlite_sync_count_install() != SQLITE_OK) {
        skipped("all", "cannot install the counting VFS");
        return 0;
    }
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
