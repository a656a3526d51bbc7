/*
 * bench_exec_n8n: the echo fixture (tests/fixtures/n8n/ee-echo.json) run
 * through ee_exec_run() against a real n8n - "exec.n8n_end_to_end" - beside
 * "n8n.direct": the same webhook POSTed with libcurl (one reused handle, a
 * body of the same size, no engine), measured in the same run, the two
 * interleaved so both see the same n8n. Three storages, each its own
 * line: SQLite as shipped (one file, synchronous=FULL: every commit
 * synced), SQLite with synchronous=normal, and memory: - the last shows the
 * engine's own work, the others add the durable commits of a run (5 on
 * SQLite, see docs/execution.md).
 * The n8n is given by EE_BENCH_N8N_URL and EE_BENCH_N8N_API_KEY with the
 * fixtures imported (tests/support/n8n/harness.sh start DIR writes both in
 * DIR/n8n.env as EE_TEST_N8N_URL / EE_TEST_N8N_API_KEY); without them the
 * benchmark prints a "skipped" line.
 * On the SQLite lines a VFS shim (tests/support/sqlite_sync_count.h) adds
 * what a run asks of the disk: "wal_frames" (log pages written), "syncs"
 * (fsyncs) and "sync_ms" (the wall time those fsyncs took), per run.
 * One JSON object per line (DESIGN.md). `--quick` keeps the run short.
 * Never fails: problems are printed as {"bench":..., "skipped": reason}.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tests/support/sqlite_sync_count.h"
#include "bench_util.h"
#include "execengine/execengine.h"

#define BENCH "exec.n8n_end_to_end"
#define BASELINE "n8n.direct"

static int n_runs = 200;
#define SETTLE_US 30000

static void skipped(const char *backend, const char *why)
{
    printf("{\"bench\": \"%s\", \"backend\": \"%s\", \"skipped\": \"%s\"}\n", BENCH,
           backend, why);
    fflush(stdout);
}

static size_t sink(char *data, size_t size, size_t n, void *arg)
{
    (void)data, (void)arg;
    return size * n;
}

/* The entry named "ee-test echo", or "" */
static void echo_entry(ee_engine *e, char id[25])
{
    char *out = NULL;
    id[0] = '\0';
    if (ee_catalog_list(e, NULL, "{\"limit\": 100}", &out) != EE_OK)
        return;
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    size_t i;
    json_t *it;
    json_array_foreach(json_object_get(doc, "data"), i, it) {
        const char *name = json_string_value(json_object_get(it, "name"));
        if (name != NULL && strcmp(name, "ee-test echo") == 0)
            snprintf(id, 25, "%s", json_string_value(json_object_get(it, "id")));
    }
    json_decref(doc);
}

/* One storage: runs interleaved with the direct call, one JSON line. */
static void measure(const char *backend, const char *uri, const char *url, const char *key)
{
    ee_config *cfg = NULL;
    ee_engine *e = NULL;
    const char *kv[][2] = {
        {"API_KEY_ENCRYPTION_SECRET", "bench-secret-0123456789abcdef0123456789"},
        {"EE_DATA_DIR", EE_BENCH_SOURCE_DIR "/data"},
        {"EE_STORAGE_URI", uri},
        {"N8N_BASE_URL", url},
        {"N8N_API_KEY", key},
        {"EXEC_WORKERS", "2"},
        {"MAX_EXECUTIONS_PER_USER_PER_HOUR", "100000000"},
    };
    ee_status st = ee_config_new(&cfg);
    for (size_t i = 0; st == EE_OK && i < sizeof kv / sizeof kv[0]; i++)
        st = ee_config_set(cfg, kv[i][0], kv[i][1]);
    if (st == EE_OK)
        st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    char *out = NULL, wf[25] = "";
    if (st == EE_OK && (st = ee_catalog_sync(e, &out)) == EE_OK)
        echo_entry(e, wf);
    ee_free(out);
    uint64_t *ours = calloc((size_t)n_runs, sizeof *ours),
             *base = calloc((size_t)n_runs, sizeof *base);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    if (st != EE_OK || wf[0] == '\0' || ours == NULL || base == NULL || c == NULL) {
        fprintf(stderr, "set-up: %s\n", st != EE_OK ? ee_error_last_message()
                                                    : "no \"ee-test echo\" entry (fixtures?)");
        skipped(backend, "the set-up failed (see stderr)");
        goto done;
    }
    /* The direct call: the webhook with the parameters and an "ee" member
     * the size of the engine's (ids and a token), on one reused handle. */
    char hook[600];
    snprintf(hook, sizeof hook, "%s/webhook/ee-echo", url);
    static const char body[] =
        "{\"a\": 2, \"b\": 3, \"ee\": {\"executionId\": \"0123456789abcdef01234567\", "
        "\"workspaceId\": \"ws-bench\", \"gatewayUrl\": \"http://127.0.0.1:8788/gw\", "
        "\"gatewayToken\": \"eeg_0123456789abcdef0123456789abcdef0123456789abcdef0123\"}}";
    h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, hook);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    ee_principal *p = NULL;
    int bad = ee_principal_new(&p, "ws-bench", "user-bench", "org-bench") != EE_OK;
    long bytes0 = atomic_load(&sqlite_wal_bytes), ns0 = atomic_load(&sqlite_sync_ns),
         syncs0 = atomic_load(&sqlite_syncs_wal) + atomic_load(&sqlite_syncs_other);
    for (int i = 0; !bad && i < n_runs; i++) {
        uint64_t t = bench_now_ns();
        long code = 0;
        bad = curl_easy_perform(c) != CURLE_OK ||
              curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK || code != 200;
        base[i] = bench_now_ns() - t;
        if (bad) {
            fprintf(stderr, "direct call: HTTP %ld\n", code);
            break;
        }
        /* n8n saves an execution after it answered: let it settle before
         * the next call, or each call pays for the previous one's save. */
        usleep(SETTLE_US);
        out = NULL;
        t = bench_now_ns();
        st = ee_exec_run(e, p, wf, "{\"parameters\": {\"a\": 2, \"b\": 3}}", &out);
        ours[i] = bench_now_ns() - t;
        if (st != EE_OK) {
            fprintf(stderr, "run %d: %s: %s\n", i, ee_status_name(st),
                    out != NULL ? out : ee_error_last_message());
            bad = 1;
        }
        ee_free(out);
        usleep(SETTLE_US);
    }
    ee_principal_free(p);
    if (bad) {
        skipped(backend, "a run failed (see stderr)");
    } else {
        uint64_t b50 = bench_quantile(base, (size_t)n_runs, 0.5);
        uint64_t x99 = bench_quantile(ours, (size_t)n_runs, 0.99);
        uint64_t x50 = bench_quantile(ours, (size_t)n_runs, 0.5);
        char disk[160];
        long syncs = atomic_load(&sqlite_syncs_wal) + atomic_load(&sqlite_syncs_other) - syncs0;
        snprintf(disk, sizeof disk, "\"wal_frames\": %.1f, \"syncs\": %.2f, \"sync_ms\": %.3f",
                 (double)(atomic_load(&sqlite_wal_bytes) - bytes0) / (4096.0 + 24.0) / n_runs,
                 (double)syncs / n_runs,
                 (double)(atomic_load(&sqlite_sync_ns) - ns0) / 1e6 / n_runs);
        bench_report(BENCH, backend, strncmp(uri, "sqlite", 6) == 0 ? disk : NULL, x50, x99,
                     BASELINE, b50);
    }
done:
    curl_slist_free_all(h);
    if (c != NULL)
        curl_easy_cleanup(c);
    free(ours);
    free(base);
    ee_engine_close(e);
}

int main(int argc, char **argv)
{
    if (bench_quick(argc, argv))
        n_runs = 50;
    const char *url = getenv("EE_BENCH_N8N_URL"), *key = getenv("EE_BENCH_N8N_API_KEY");
    if (url == NULL || url[0] == '\0' || key == NULL || key[0] == '\0') {
        skipped("sqlite", "EE_BENCH_N8N_URL / EE_BENCH_N8N_API_KEY are not set (start one with "
                          "tests/support/n8n/harness.sh start DIR, see scripts/bench)");
        return 0;
    }
    /* before anything opens a database: the counting VFS is the default */
    if (sqlite_sync_count_install() != SQLITE_OK) {
        skipped("sqlite", "cannot install the counting VFS");
        return 0;
    }
    char dir[] = "/tmp/ee-bench-n8n-XXXXXX", uri[160];
    if (mkdtemp(dir) == NULL) {
        skipped("sqlite", "cannot make a temporary directory");
        return 0;
    }
    snprintf(uri, sizeof uri, "sqlite://%s/engine.db", dir);
    measure("sqlite", uri, url, key);
    snprintf(uri, sizeof uri, "sqlite://%s/normal.db?synchronous=normal", dir);
    measure("sqlite-normal", uri, url, key);
    measure("memory", "memory:", url, key);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
    if (system(rm) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}
