/*
 * catalog.access_search: a workspace's ee_catalog_search() (the public
 * call: query parsing, the snapshot's index, the page read from storage
 * and rendered) beside the admin's search of the same catalog with the
 * same queries (principal NULL: no access check at all), measured in the
 * same run, alternately. Memory storage, 2,000 entries, pages of 20.
 *
 * Catalogs ("catalog"):
 *   open        - every entry open to everyone: the common case; access
 *                 must cost nothing measurable (slowdown ~1.0);
 *   workspaces  - 10% of the entries on workspace allow-lists (this
 *                 workspace on half of them): one more filter bitmap,
 *                 kept per workspace with the snapshot;
 *   plans       - 10% open to plans ("pro"; this organisation is on
 *                 "pro"): the same, plus the organisation's plan read from
 *                 the quota module's cache once per search.
 *
 * --quick keeps the run to a few seconds. Never fails: errors become
 * "error" lines.
 */
#include <stdbool.h>

#include "bench_util.h"
#include "execengine/execengine.h"

#define N_ENTRIES 2000

static const char *const words[] = {"send", "summarise", "scrape", "enrich", "email", "leads",
                                    "invoices", "tickets", "slack", "gmail", "notion", "sheets",
                                    "news", "prices", "reports", "alerts"};
#define N_WORDS (sizeof words / sizeof words[0])

static void error_line(const char *what, ee_status st)
{
    printf("{\"bench\": \"catalog.access_search\", \"error\": \"%s: %s\"}\n", what,
           ee_status_name(st));
    fflush(stdout);
}

static ee_engine *open_engine(void)
{
    ee_config *cfg = NULL;
    ee_engine *e = NULL;
    bool ok = ee_config_new(&cfg) == EE_OK
           && ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET",
                            "bench-secret-0123456789abcdef0123456789") == EE_OK
           && ee_config_set(cfg, "EE_DATA_DIR", bench_data_dir()) == EE_OK
           && ee_config_set(cfg, "EE_STORAGE_URI", "memory:") == EE_OK
           && ee_config_set(cfg, "EE_COUNTERS_URI", "memory:") == EE_OK
           && ee_engine_open(&e, cfg) == EE_OK;
    ee_config_free(cfg);
    if (!ok)
        error_line("open", ee_error_last_status());
    return ok ? e : NULL;
}

/* Entry i's access in catalog `kind` (0 open, 1 workspaces, 2 plans). */
static const char *access_of(int kind, int i)
{
    if (kind == 0 || i % 10 != 0)
        return "{\"mode\": \"everyone\"}";
    if (kind == 2)
        return "{\"mode\": \"plans\", \"plans\": [\"pro\", \"enterprise\"]}";
    return i % 20 == 0 ? "{\"mode\": \"workspaces\", \"workspaces\": [\"ws-a\", \"ws-bench\"]}"
                       : "{\"mode\": \"workspaces\", \"workspaces\": [\"ws-a\", \"ws-b\"]}";
}

static bool fill(ee_engine *e, int kind)
{
    srand(7);
    for (int i = 0; i < N_ENTRIES; i++) {
        char doc[1024], *out = NULL;
        snprintf(doc, sizeof doc,
                 "{\"n8nWorkflowId\": \"wf-%d\", \"name\": \"%s %s to %s %d\", "
                 "\"description\": \"Every day %s the %s\", \"tags\": [\"%s\"], \"access\": %s}",
                 i, words[rand() % N_WORDS], words[rand() % N_WORDS], words[rand() % N_WORDS], i,
                 words[rand() % N_WORDS], words[rand() % N_WORDS], words[rand() % N_WORDS],
                 access_of(kind, i));
        ee_status st = ee_catalog_create(e, doc, &out);
        ee_free(out);
        if (st != EE_OK) {
            error_line("create", st);
            return false;
        }
    }
    if (kind == 2) {
        ee_status st = ee_quota_subscription_put(
            e, "{\"orgId\": \"org-bench\", \"plan\": \"pro\"}", NULL);
        if (st != EE_OK) {
            error_line("subscription", st);
            return false;
        }
    }
    return true;
}

static void run(int kind, int queries)
{
    static const char *const names[] = {"open", "workspaces", "plans"};
    ee_engine *e = open_engine();
    if (e == NULL)
        return;
    ee_principal *p = NULL;
    if (!fill(e, kind) || ee_principal_new(&p, "ws-bench", "user-1", "org-bench") != EE_OK) {
        ee_engine_close(e);
        return;
    }
    uint64_t *ours = calloc((size_t)queries, sizeof *ours);
    uint64_t *base = calloc((size_t)queries, sizeof *base);
    volatile size_t sink = 0;
    srand(11);
    for (int q = -50; q < queries; q++) { /* 50 warm-up rounds */
        char query[128];
        snprintf(query, sizeof query, "{\"q\": \"%.4s\"}", words[rand() % N_WORDS]);
        for (int side = 0; side < 2; side++) {
            /* alternate which side goes first */
            bool workspace = (side == 0) == (q % 2 == 0);
            char *out = NULL;
            uint64_t s = bench_now_ns();
            ee_status st = ee_catalog_search(e, workspace ? p : NULL, query, &out);
            uint64_t t = bench_now_ns() - s;
            sink += out ? strlen(out) : 0;
            ee_free(out);
            if (st != EE_OK) {
                error_line("search", st);
                q = queries;
                break;
            }
            if (q >= 0)
                (workspace ? ours : base)[q] = t;
        }
    }
    (void)sink;
    char extra[96];
    snprintf(extra, sizeof extra, "\"n\": %d, \"catalog\": \"%s\"", N_ENTRIES, names[kind]);
    uint64_t p50 = bench_quantile(ours, (size_t)queries, 0.50);
    uint64_t p99 = bench_quantile(ours, (size_t)queries, 0.99);
    bench_report("catalog.access_search", "memory", extra, p50, p99, "admin_search",
                 bench_quantile(base, (size_t)queries, 0.50));
    free(ours);
    free(base);
    ee_principal_free(p);
    ee_engine_close(e);
}

int main(int argc, char **argv)
{
    int quick = bench_quick(argc, argv);
    for (int kind = 0; kind < 3; kind++)
        run(kind, quick ? 500 : 5000);
    return 0;
}
