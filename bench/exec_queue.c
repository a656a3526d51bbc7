/*
 * bench_exec_queue: executions per second through the durable queue. A
 * submitting process (no workers) queues the runs; then 1, or 3, host
 * processes of 4 workers each open on the same database and drain it, each
 * run answered at once by an instant transport (no n8n), so what is
 * measured is the queue and the pipeline's writes. The clock runs from the
 * hosts' start to the queue being empty (an engine's open is inside it,
 * a few ms). Backends: sqlite (one file, several processes) and postgres
 * when EE_BENCH_POSTGRES_URI is set (a schema of its own, dropped after).
 * One JSON object per line (DESIGN.md): executions/s with 1 process beside
 * 3, and the scaling 3-vs-1. `--quick` keeps the run short.
 * Never fails: problems are printed as {"bench":..., "skipped": reason}.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_util.h"
#include "execengine/execengine.h"

#define BENCH "exec.queue_throughput"
#define WORKERS "4"
#define SPREAD 50 /* workspaces and organisations the runs are spread over */

static int n_runs = 1500;

static void skipped(const char *backend, const char *why)
{
    printf("{\"bench\": \"%s\", \"backend\": \"%s\", \"skipped\": \"%s\"}\n", BENCH, backend,
           why);
    fflush(stdout);
}

#define WORKFLOW \
    "{\"id\": \"benchQueue00001\", \"name\": \"Bench queue\", \"active\": true," \
    " \"isArchived\": false, \"versionId\": \"v1\", \"updatedAt\": \"2026-01-01T00:00:00.000Z\"," \
    " \"tags\": [], \"connections\": {}, \"nodes\": [{\"name\": \"Webhook\", \"type\":" \
    " \"n8n-nodes-base.webhook\", \"webhookId\": \"bq\", \"parameters\": {\"path\": \"bq\"," \
    " \"httpMethod\": \"POST\", \"responseMode\": \"lastNode\"}}]}"
static const char WORKFLOWS[] = "{\"data\": [" WORKFLOW "], \"nextCursor\": null}";

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
        return answer(resp, 200, "{\"status\": \"completed\", \"echo\": \"q\"}");
    if (strncmp(url, "http://bench.n8n/api/v1/workflows/", 34) == 0)
        return answer(resp, 200, WORKFLOW);
    if (strncmp(url, "http://bench.n8n/api/v1/workflows", 33) == 0)
        return answer(resp, 200, WORKFLOWS);
    return answer(resp, 404, "{\"message\": \"Not Found\"}");
}

/* An engine over the instant n8n (its transport and client are this
 * process's: each host makes its own after fork()). */
typedef struct {
    ee_transport *t;
    ee_n8n *n8n;
    ee_engine *e;
} host;

static int host_open(host *h, const char *uri, const char *workers)
{
    memset(h, 0, sizeof *h);
    ee_transport_backend b = {EE_TRANSPORT_BACKEND_VERSION, EE_TRANSPORT_THREAD_SAFE,
                              instant_http, NULL, NULL};
    ee_config *cfg = NULL;
    if (ee_transport_new_custom(&h->t, &b, NULL, NULL) != EE_OK ||
        ee_n8n_new(&h->n8n, h->t, "http://bench.n8n", "bench-key") != EE_OK ||
        ee_config_new(&cfg) != EE_OK)
        return -1;
    const char *kv[][2] = {
        {"API_KEY_ENCRYPTION_SECRET", "bench-secret-0123456789abcdef0123456789"},
        {"EE_DATA_DIR", EE_BENCH_SOURCE_DIR "/data"},
        {"EE_STORAGE_URI", uri},
        {"EXEC_WORKERS", workers},
        {"EXEC_POLL_MS", "10"},
        {"MAX_EXECUTIONS_PER_USER_PER_HOUR", "100000000"},
        {"MAX_CONCURRENT_EXECUTIONS", "100000"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (ee_config_set(cfg, kv[i][0], kv[i][1]) != EE_OK) {
            fprintf(stderr, "%s: %s\n", kv[i][0], ee_error_last_message());
            ee_config_free(cfg);
            return -1;
        }
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .n8n = h->n8n,
                             .transport = h->t};
    ee_status st = ee_engine_open_parts(&h->e, cfg, &parts);
    ee_config_free(cfg);
    if (st == EE_OK)
        st = ee_exec_workers_start(h->e); /* a host that only drains what others queued */
    if (st != EE_OK)
        fprintf(stderr, "engine: %s\n", ee_error_last_message());
    return st == EE_OK ? 0 : -1;
}

static void host_close(host *h)
{
    ee_engine_close(h->e);
    ee_n8n_free(h->n8n);
    ee_transport_free(h->t);
}

static int queue_depth(ee_engine *e, long long *queued, long long *running)
{
    char *out = NULL;
    if (ee_exec_stats(e, &out) != EE_OK)
        return -1;
    const char *q = strstr(out, "\"queued\":"), *r = strstr(out, "\"running\":");
    *queued = q != NULL ? strtoll(q + 9, NULL, 10) : -1;
    *running = r != NULL ? strtoll(r + 10, NULL, 10) : -1;
    ee_free(out);
    return *queued >= 0 && *running >= 0 ? 0 : -1;
}

/* Queue n_runs (the submitter runs no worker), then time `hosts` processes
 * draining them. Returns executions/s, or a negative number. */
static double drain(const char *uri, int round, int hosts)
{
    host sub;
    if (host_open(&sub, uri, "0") != 0)
        return -1;
    char *out = NULL, wf[32] = "";
    if (ee_catalog_sync(sub.e, &out) == EE_OK) {
        ee_free(out);
        out = NULL;
        if (ee_catalog_list(sub.e, NULL, "{\"limit\": 1}", &out) == EE_OK) {
            const char *at = strstr(out, "\"id\":");
            if (at != NULL && sscanf(at, "\"id\": \"%24[0-9a-f]\"", wf) != 1)
                sscanf(at, "\"id\":\"%24[0-9a-f]\"", wf);
        }
    }
    ee_free(out);
    if (wf[0] == '\0') {
        fprintf(stderr, "no catalog entry: %s\n", ee_error_last_message());
        host_close(&sub);
        return -1;
    }
    for (int i = 0; i < n_runs; i++) {
        char ws[48], org[48], id[EE_EXEC_ID_SIZE];
        snprintf(ws, sizeof ws, "ws-%d-%d", round, i % SPREAD);
        snprintf(org, sizeof org, "org-%d-%d", round, i % SPREAD);
        ee_principal *p = NULL;
        ee_status st = ee_principal_new(&p, ws, "user-bench", org);
        if (st == EE_OK)
            st = ee_exec_submit(sub.e, p, wf, "{\"parameters\": {\"text\": \"q\"}}", NULL, NULL,
                                id);
        ee_principal_free(p);
        if (st != EE_OK) {
            fprintf(stderr, "submit %d: %s\n", i, ee_error_last_message());
            host_close(&sub);
            return -1;
        }
    }
    fflush(stdout);
    pid_t pids[8];
    uint64_t t0 = bench_now_ns();
    for (int h = 0; h < hosts; h++) {
        pids[h] = fork();
        if (pids[h] == 0) {
            host me;
            if (host_open(&me, uri, WORKERS) != 0)
                _exit(2);
            long long q = 1, r = 1;
            while ((q > 0 || r > 0) && queue_depth(me.e, &q, &r) == 0)
                usleep(5000);
            host_close(&me);
            _exit(0);
        }
    }
    long long q = 1, r = 1;
    int ok = 0;
    while (queue_depth(sub.e, &q, &r) == 0) {
        if (q == 0 && r == 0) {
            ok = 1;
            break;
        }
        usleep(2000);
    }
    uint64_t took = bench_now_ns() - t0;
    for (int h = 0; h < hosts; h++) {
        int status = 0;
        waitpid(pids[h], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            ok = 0;
    }
    host_close(&sub);
    return ok ? (double)n_runs * 1e9 / (double)took : -1;
}

static void bench_on(const char *backend, const char *uri_1, const char *uri_3)
{
    double one = drain(uri_1, 1, 1);
    double three = one > 0 ? drain(uri_3, 3, 3) : -1;
    if (one <= 0 || three <= 0) {
        skipped(backend, "the run failed (see stderr)");
        return;
    }
    printf("{\"bench\": \"%s\", \"backend\": \"%s\", \"processes\": 3, \"workersEach\": %s, "
           "\"runs\": %d, \"unit\": \"executions/s\", \"ops_per_s\": %.0f, \"baseline\": "
           "\"%s, 1 process\", \"baseline_ops_per_s\": %.0f, \"scaling\": %.2f}\n",
           BENCH, backend, WORKERS, n_runs, three, BENCH, one, three / one);
    fflush(stdout);
}

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

int main(int argc, char **argv)
{
    if (bench_quick(argc, argv))
        n_runs = 300;
    char dir[] = "/tmp/ee-bench-xq-XXXXXX";
    if (mkdtemp(dir) == NULL) {
        skipped("sqlite", "cannot make a temporary directory");
    } else {
        char u1[300], u3[300], rm[300];
        snprintf(u1, sizeof u1, "sqlite://%s/one.db", dir);
        snprintf(u3, sizeof u3, "sqlite://%s/three.db", dir);
        bench_on("sqlite", u1, u3);
        snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
        if (system(rm) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    const char *pg = getenv("EE_BENCH_POSTGRES_URI");
    if (pg == NULL || pg[0] == '\0') {
        skipped("postgres", "EE_BENCH_POSTGRES_URI is not set");
        return 0;
    }
    char s1[64], s3[64], u1[700], u3[700];
    snprintf(s1, sizeof s1, "ee_bench_xq1_%d", (int)getpid());
    snprintf(s3, sizeof s3, "ee_bench_xq3_%d", (int)getpid());
    snprintf(u1, sizeof u1, "%s%sschema=%s", pg, strchr(pg, '?') ? "&" : "?", s1);
    snprintf(u3, sizeof u3, "%s%sschema=%s", pg, strchr(pg, '?') ? "&" : "?", s3);
    bench_on("postgres", u1, u3);
    PGconn *conn = PQconnectdb(pg);
    PQsetNoticeProcessor(conn, quiet, NULL);
    const char *schemas[] = {s1, s3};
    for (int i = 0; i < 2; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schemas[i]);
        PQclear(PQexec(conn, sql));
    }
    PQfinish(conn);
    return 0;
}
