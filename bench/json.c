/*
 * json.too_big: how long an exported function takes to refuse a 100 MB
 * JSON document (EE_ETOOBIG on its length, before any parse). Baseline:
 * strnlen() over the same limit + 1 bytes, the least a bounded refusal
 * must read. Lines for ee_quota_ticket_from_json (limit 4096 bytes) and
 * ee_n8n_workflow_trigger (16 MiB, the largest limit of any JSON input). --quick keeps the run to a second.
 * Never fails: targets are read from the output.
 */
#include <execengine/execengine.h>

#include "bench_util.h"

#define BIG ((size_t)100 * 1024 * 1024)

static volatile size_t sink;

static void line(const char *backend, const char *big, size_t limit, int n,
                 ee_status (*call)(const char *))
{
    uint64_t *t = malloc((size_t)n * sizeof *t), *b = malloc((size_t)n * sizeof *b);
    if (t == NULL || b == NULL)
        exit(1);
    for (int i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        ee_status st = call(big);
        t[i] = bench_now_ns() - t0;
        if (st != EE_ETOOBIG) {
            fprintf(stderr, "json.too_big %s: %s, not EE_ETOOBIG\n", backend, ee_status_name(st));
            exit(1);
        }
        t0 = bench_now_ns();
        sink += strnlen(big, limit + 1);
        b[i] = bench_now_ns() - t0;
    }
    uint64_t p99 = bench_quantile(t, (size_t)n, 0.99), p50 = bench_quantile(t, (size_t)n, 0.5);
    char extra[64];
    snprintf(extra, sizeof extra, "\"limit_bytes\": %zu, \"document_bytes\": %zu", limit, BIG);
    bench_report("json.too_big", backend, extra, p50, p99, "strnlen.limit",
                 bench_quantile(b, (size_t)n, 0.5));
    free(t);
    free(b);
}

static ee_status ticket(const char *json)
{
    ee_quota_ticket t;
    return ee_quota_ticket_from_json(json, &t);
}

static ee_status workflow(const char *json)
{
    char *out = NULL;
    ee_status st = ee_n8n_workflow_trigger(json, &out);
    ee_free(out);
    return st;
}

int main(int argc, char **argv)
{
    int quick = bench_quick(argc, argv);
    char *big = malloc(BIG + 1);
    if (big == NULL)
        return 1;
    memset(big, 'x', BIG);
    memcpy(big, "{\"q\": \"", 7);
    memcpy(big + BIG - 2, "\"}", 2);
    big[BIG] = '\0';
    line("ee_quota_ticket_from_json", big, 4096, quick ? 1000 : 100000, ticket);
    line("ee_n8n_workflow_trigger", big, (size_t)16 * 1024 * 1024, quick ? 20 : 200, workflow);
    free(big);
    return 0;
}
