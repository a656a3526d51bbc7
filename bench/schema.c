/*
 * catalog.validate: validating a workflow's parameters against its compiled
 * inputSchema (draft 2020-12), for catalogs of n = 200 and n = 100,000
 * workflows. Each workflow's schema is a typical input schema (10
 * properties, a pattern, an enum, bounds, a nested object with required
 * members, an array of unique strings, a $ref) and each validation picks a
 * random workflow and one of its instances (two in three valid).
 *
 * Baseline, measured in the same run: jansson's json_loads() of the same
 * instance text, i.e. what validating costs compared with merely parsing
 * the parameters. Compiled schemas are shared by workflows in groups (at
 * most 2,000 distinct ones, reported as "schemas") so that the 100,000
 * case measures lookups across a large working set without holding 100,000
 * PCRE2 JIT programs.
 */
#include "bench_util.h"
#include "schema/schema.h"

#define MAX_SCHEMAS 2000

static char *schema_text(size_t i)
{
    char *t = malloc(2048);
    snprintf(t, 2048,
             "{\"type\":\"object\",\"required\":[\"query\",\"mode\"],"
             "\"additionalProperties\":false,"
             "\"$defs\":{\"lang\":{\"type\":\"string\",\"pattern\":\"^[a-z]{2}(-[A-Z]{2})?$\"}},"
             "\"properties\":{"
             "\"query\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":500},"
             "\"mode\":{\"enum\":[\"fast\",\"deep\",\"mode%zu\"]},"
             "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":%zu,\"default\":10},"
             "\"email\":{\"type\":\"string\",\"pattern\":\"^[^@\\\\s]+@[^@\\\\s]+\\\\.[a-z]{2,}$\"},"
             "\"language\":{\"$ref\":\"#/$defs/lang\"},"
             "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"uniqueItems\":true,"
             "\"maxItems\":20},"
             "\"budget\":{\"type\":\"number\",\"multipleOf\":0.01,\"exclusiveMinimum\":0},"
             "\"notify\":{\"type\":\"boolean\"},"
             "\"schedule\":{\"type\":\"string\",\"pattern\":\"^(daily|weekly|monthly)$\"},"
             "\"target\":{\"type\":\"object\",\"required\":[\"url\"],"
             "\"properties\":{\"url\":{\"type\":\"string\",\"pattern\":\"^https?://\"},"
             "\"depth\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":5}}}}}",
             i, 100 + i);
    return t;
}

static char *instance_text(size_t i, int kind)
{
    char *t = malloc(1024);
    if (kind == 2) /* invalid: several violations */
        snprintf(t, 1024,
                 "{\"query\":\"\",\"mode\":\"slow\",\"limit\":0,\"email\":\"nope\","
                 "\"tags\":[\"a\",\"a\"],\"budget\":1.005,\"target\":{\"depth\":9},\"x\":1}");
    else
        snprintf(t, 1024,
                 "{\"query\":\"best espresso machines %zu\",\"mode\":\"deep\",\"limit\":%zu,"
                 "\"email\":\"ops%zu@example.com\",\"language\":\"en-GB\","
                 "\"tags\":[\"coffee\",\"reviews\",\"t%zu\"],\"budget\":12.5,\"notify\":true,"
                 "\"schedule\":\"weekly\",\"target\":{\"url\":\"https://example.com/%zu\","
                 "\"depth\":%d}}",
                 i, 1 + i % 100, i, i, i, kind);
    return t;
}

static void run(size_t n, int iters)
{
    size_t k = n < MAX_SCHEMAS ? n : MAX_SCHEMAS;
    ee_schema **schemas = malloc(k * sizeof *schemas);
    uint64_t *compile_ns = malloc(k * sizeof *compile_ns);
    for (size_t i = 0; i < k; i++) {
        char *t = schema_text(i);
        json_t *doc = json_loads(t, 0, NULL);
        uint64_t s = bench_now_ns();
        if (ee__schema_compile(&schemas[i], doc) != EE_OK) {
            fprintf(stderr, "bench_schema: %s\n", ee_error_last_message());
            exit(0); /* a benchmark never fails the suite */
        }
        compile_ns[i] = bench_now_ns() - s;
        json_decref(doc);
        free(t);
    }
    uint64_t *ours = malloc((size_t)iters * sizeof *ours);
    uint64_t *base = malloc((size_t)iters * sizeof *base);
    volatile size_t sink = 0;
    for (int q = 0; q < iters; q++) {
        size_t wf = (size_t)rand() % n;
        char *text = instance_text(wf, rand() % 3);
        /* the baseline: parsing the parameters */
        uint64_t s = bench_now_ns();
        json_t *inst = json_loads(text, 0, NULL);
        base[q] = bench_now_ns() - s;
        /* ours: validating the parsed parameters against the compiled schema */
        s = bench_now_ns();
        ee_status st = ee__schema_validate(schemas[wf % k], inst, NULL);
        ours[q] = bench_now_ns() - s;
        sink += (size_t)(st == EE_OK);
        json_decref(inst);
        free(text);
    }
    char extra[160];
    snprintf(extra, sizeof extra,
             "\"n\": %zu, \"schemas\": %zu, \"compile_p50_ns\": %llu, \"valid_share\": %.2f", n,
             k, (unsigned long long)bench_quantile(compile_ns, k, 0.5),
             (double)sink / (double)iters);
    uint64_t p50 = bench_quantile(ours, (size_t)iters, 0.50);
    uint64_t p99 = bench_quantile(ours, (size_t)iters, 0.99);
    bench_report("catalog.validate", "compiled", extra, p50, p99, "jansson.json_loads",
                 bench_quantile(base, (size_t)iters, 0.50));
    for (size_t i = 0; i < k; i++)
        ee_schema_free(schemas[i]);
    free(schemas);
    free(compile_ns);
    free(ours);
    free(base);
}

int main(int argc, char **argv)
{
    int quick = bench_quick(argc, argv);
    srand(7);
    run(200, quick ? 20000 : 200000);
    run(100000, quick ? 20000 : 200000);
    return 0;
}
