/*
 * bench_billing:
 *   billing.record       one execution's booking (ee__billing_apply in one
 *                        storage transaction: the month row read and
 *                        rewritten, the user's usage row incremented) beside
 *                        the bare storage write of one document of the same
 *                        size in its own transaction; sqlite (synchronous=FULL,
 *                        the default) and memory.
 *   billing.close_month  closing a month that holds 1,000,000 booked
 *                        executions (--quick: 100,000), memory storage:
 *                        the time of the close and of its CSV export, the
 *                        booking rate that filled it, and the process's peak
 *                        memory. The month row keeps running totals, so the
 *                        close reads one row whatever the count.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bson/bson.h>

#include "bench_util.h"
#include "billing/billing.h"
#include "engine/engine.h"
#include "execengine/billing.h"
#include "execengine/execengine.h"
#include "storage/storage.h"

#define T0 INT64_C(1772409600000) /* 2026-03-02 */
#define DAY_MS INT64_C(86400000)

static int64_t fake_now = T0;

static int64_t bench_clock(void *payload)
{
    (void)payload;
    return fake_now;
}

static ee_engine *open_engine(const char *uri)
{
    ee_config *cfg = NULL;
    ee_engine *e = NULL;
    if (ee_config_new(&cfg) != EE_OK)
        return NULL;
    bool ok = ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET",
                            "bench-secret-0123456789abcdef0123456789") == EE_OK &&
              ee_config_set(cfg, "EE_DATA_DIR", bench_data_dir()) == EE_OK &&
              ee_config_set(cfg, "EE_STORAGE_URI", uri) == EE_OK &&
              ee_config_set(cfg, "EXEC_WORKERS", "0") == EE_OK &&
              ee_config_set_clock(cfg, bench_clock, NULL) == EE_OK &&
              ee_engine_open(&e, cfg) == EE_OK;
    ee_config_free(cfg);
    if (!ok) {
        fprintf(stderr, "bench_billing: opening %s: %s\n", uri, ee_error_last_message());
        return NULL;
    }
    return e;
}

typedef struct {
    ee_engine *e;
    ee__billing_exec x;
    ee__billing_charge c;
} book_arg;

static ee_status book_scope(ee_storage *sto, void *payload)
{
    book_arg *a = payload;
    return ee__billing_apply(a->e, sto, &a->x, &a->c);
}

static const char *const workflows[] = {
    "65f0c0ffee00000000000001", "65f0c0ffee00000000000002", "65f0c0ffee00000000000003",
    "65f0c0ffee00000000000004", "65f0c0ffee00000000000005", "65f0c0ffee00000000000006",
    "65f0c0ffee00000000000007", "65f0c0ffee00000000000008"};

static bool book_one(ee_engine *e, const char *ws, long i)
{
    char user[16];
    snprintf(user, sizeof user, "u%ld", i % 20);
    book_arg a;
    memset(&a, 0, sizeof a);
    a.e = e;
    a.x = (ee__billing_exec){.workspace = ws, .user_id = user, .workflow_id = workflows[i % 8],
                             .execution_id = "bench", .ended_at = fake_now,
                             .cost_nano = 1000 + i % 977, .tokens = 100 + i % 50, .exec_ms = 20,
                             .platform_key = i % 4 != 0, .completed = true};
    return ee__storage_atomic(ee__engine_storage(e), book_scope, &a) == EE_OK;
}

/* The baseline: one document of the month row's size, inserted alone. */
static bool bare_write(ee_storage *s, const char *ws, long i)
{
    bson_t *b = bson_new();
    BSON_APPEND_UTF8(b, "workspaceId", ws);
    BSON_APPEND_UTF8(b, "userId", "u1");
    BSON_APPEND_UTF8(b, "workflowCatalogId", workflows[i % 8]);
    char period[16];
    snprintf(period, sizeof period, "b%ld", i);
    BSON_APPEND_UTF8(b, "period", period);
    BSON_APPEND_DATE_TIME(b, "createdAt", fake_now);
    BSON_APPEND_INT64(b, "totalExecutions", 1);
    BSON_APPEND_INT64(b, "totalCost", 1000);
    BSON_APPEND_INT64(b, "totalTokens", 100);
    bool ok = ee_storage_insert(s, "userWorkflowUsage", ws, bson_get_data(b), b->len, NULL) ==
              EE_OK;
    bson_destroy(b);
    return ok;
}

static void bench_record(const char *backend, const char *uri, long n)
{
    ee_engine *e = open_engine(uri);
    if (e == NULL)
        return;
    uint64_t *ours = calloc((size_t)n, sizeof *ours), *base = calloc((size_t)n, sizeof *base);
    long ok = 0;
    for (long i = 0; i < n && ours != NULL && base != NULL; i++, ok++) {
        uint64_t t0 = bench_now_ns();
        if (!bare_write(ee__engine_storage(e), "ws-bench-base", i))
            break;
        uint64_t t1 = bench_now_ns();
        if (!book_one(e, "ws-bench", i))
            break;
        uint64_t t2 = bench_now_ns();
        base[i] = t1 - t0;
        ours[i] = t2 - t1;
    }
    if (ok == n) {
        uint64_t bp50 = bench_quantile(base, (size_t)n, 0.5);
        char extra[64];
        snprintf(extra, sizeof extra, "\"executions\": %ld", n);
        bench_report("billing.record", backend, extra, bench_quantile(ours, (size_t)n, 0.5),
                     bench_quantile(ours, (size_t)n, 0.99), "storage.insert", bp50);
    } else {
        fprintf(stderr, "bench_billing: billing.record %s stopped: %s\n", backend,
                ee_error_last_message());
    }
    free(ours);
    free(base);
    ee_engine_close(e);
}

static void bench_close(long n, bool quick)
{
    ee_engine *e = open_engine("memory:");
    if (e == NULL)
        return;
    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < n; i++)
        if (!book_one(e, "ws-close", i)) {
            fprintf(stderr, "bench_billing: booking %ld: %s\n", i, ee_error_last_message());
            ee_engine_close(e);
            return;
        }
    uint64_t fill = bench_now_ns() - t0;
    ee_principal *p = NULL;
    (void)ee_principal_new(&p, "ws-close", "admin", "org");
    fake_now = T0 + 40 * DAY_MS;
    char *out = NULL;
    uint64_t c0 = bench_now_ns();
    ee_status st = ee_billing_close_month(e, p, "2026-03", &out);
    uint64_t c1 = bench_now_ns();
    ee_free(out);
    out = NULL;
    ee_status xs = ee_billing_export(e, p, "2026-03", "csv", &out);
    uint64_t c2 = bench_now_ns();
    size_t csv_bytes = out != NULL ? strlen(out) : 0;
    ee_free(out);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (st != EE_OK || xs != EE_OK)
        fprintf(stderr, "bench_billing: close/export: %s\n", ee_error_last_message());
    else
        printf("{\"bench\": \"billing.close_month\", \"backend\": \"memory\", \"executions\": %ld, "
               "\"quick\": %s, \"close_ns\": %llu, \"export_csv_ns\": %llu, \"csv_bytes\": %zu, "
               "\"fill_ns_per_execution\": %llu, \"peak_rss_kb\": %ld}\n",
               n, quick ? "true" : "false", (unsigned long long)(c1 - c0),
               (unsigned long long)(c2 - c1), csv_bytes, (unsigned long long)(fill / (uint64_t)n),
               ru.ru_maxrss);
    fflush(stdout);
    ee_principal_free(p);
    ee_engine_close(e);
}

int main(int argc, char **argv)
{
    bool quick = bench_quick(argc, argv);
    char dir[128], uri[256];
    snprintf(dir, sizeof dir, "/tmp/ee-bench-billing-%ld", (long)getpid());
    snprintf(uri, sizeof uri, "sqlite://%s/billing.db", dir);
    bench_record("sqlite", uri, quick ? 200 : 1000);
    bench_record("memory", "memory:", quick ? 2000 : 20000);
    bench_close(quick ? 100000 : 1000000, quick);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "bench_billing: could not remove %s\n", dir);
    return 0;
}
