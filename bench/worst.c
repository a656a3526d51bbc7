/*
 * schema.worst and template.worst: the slowest inputs we could construct
 * under the size limits, one line per kind of input. The target (issue #11)
 * is that every one is answered - valid, invalid or EE_ETOOBIG - within
 * 100 ms; "p99" is the figure to read, "status" says how it was answered.
 *
 * schema.worst: each case validates a 1 MiB-class instance text through
 * the public text API (parse, measure, validate). Baseline: jansson's
 * json_loads() of the same text, so "slowdown" says how many parses of the
 * parameters the worst validation costs.
 *
 * template.worst: each case renders a template through the internal
 * renderer. Baseline: rendering a plain 1 KiB text template (no tags).
 */
#include <stdarg.h>

#include "bench_util.h"
#include "schema/schema.h"
#include "notify/handlebars.h"

/* CPU time of this thread: the machine may be shared, and the figure to
 * compare with the 100 ms target is the work done, not the wait. */
static uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

typedef struct {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

static void putf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    put(b, tmp);
}

/* An array of `n` copies of the JSON value `item`, as text. */
static char *array_of(const char *item, size_t n)
{
    buf b = {0};
    put(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            put(&b, ",");
        put(&b, item);
    }
    put(&b, "]");
    return b.p;
}

static void schema_case(const char *name, const char *schema, const char *inst, int iters)
{
    ee_schema *s = NULL;
    if (ee_schema_compile(&s, schema) != EE_OK) {
        printf("{\"bench\": \"schema.worst\", \"backend\": \"%s\", \"error\": \"%s\"}\n", name,
               ee_error_last_message());
        return;
    }
    uint64_t *ours = malloc((size_t)iters * sizeof *ours);
    uint64_t *base = malloc((size_t)iters * sizeof *base);
    uint64_t *cpu = malloc((size_t)iters * sizeof *cpu);
    ee_status st = EE_OK;
    for (int q = 0; q < iters; q++) {
        uint64_t t = bench_now_ns();
        json_t *j = json_loads(inst, JSON_DECODE_ANY, NULL);
        base[q] = bench_now_ns() - t;
        json_decref(j);
        t = bench_now_ns();
        uint64_t c = cpu_now_ns();
        st = ee_schema_validate(s, inst, NULL);
        cpu[q] = cpu_now_ns() - c;
        ours[q] = bench_now_ns() - t;
    }
    char extra[200];
    snprintf(extra, sizeof extra,
             "\"status\": \"%s\", \"bytes\": %zu, \"iters\": %d, \"cpu_p50\": %llu, "
             "\"cpu_p99\": %llu",
             ee_status_name(st), strlen(inst), iters,
             (unsigned long long)bench_quantile(cpu, (size_t)iters, 0.5),
             (unsigned long long)bench_quantile(cpu, (size_t)iters, 0.99));
    uint64_t p50 = bench_quantile(ours, (size_t)iters, 0.5);
    uint64_t p99 = bench_quantile(ours, (size_t)iters, 0.99);
    bench_report("schema.worst", name, extra, p50, p99, "jansson.json_loads",
                 bench_quantile(base, (size_t)iters, 0.5));
    free(ours);
    free(base);
    free(cpu);
    ee_schema_free(s);
}

static void schema_cases(int iters)
{
    buf sb = {0}, ib = {0};
    char *inst;

    /* catastrophic backtracking on every one of 20,000 strings (781 KB) */
    inst = array_of("\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!\"", 20000);
    schema_case("regex_backtracking", "{\"items\":{\"type\":\"string\",\"pattern\":\"^(a+)+$\"}}",
                inst, iters);
    schema_case("regex_backtracking_keys",
                "{\"items\":{\"patternProperties\":{\"^(x+x+)+y$\":{}},"
                "\"additionalProperties\":false}}",
                (free(inst), inst = array_of("{\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxz\":1}", 25000)),
                iters);
    free(inst);

    /* one 1 MiB string scanned by 2,000 patterns and lengths (allOf) */
    put(&sb, "{\"allOf\":[");
    for (int i = 0; i < 2000; i++)
        putf(&sb, "%s{\"pattern\":\"b%d\",\"minLength\":1}", i ? "," : "", i);
    put(&sb, "]}");
    char *big = malloc(1000000 + 3);
    big[0] = '"';
    memset(big + 1, 'a', 1000000);
    strcpy(big + 1000001, "\"");
    schema_case("long_string_many_patterns", sb.p, big, iters);
    free(big);
    sb.len = 0;

    /* applicators fanning out 2^30 ways */
    put(&sb, "{\"$ref\":\"#/$defs/d0\",\"$defs\":{");
    for (int i = 0; i < 30; i++)
        putf(&sb, "\"d%d\":{\"allOf\":[{\"$ref\":\"#/$defs/d%d\"},{\"$ref\":\"#/$defs/d%d\"}]},",
             i, i + 1, i + 1);
    put(&sb, "\"d30\":{\"type\":\"integer\"}}}");
    schema_case("fan_out", sb.p, "1", iters);
    sb.len = 0;

    /* deep nesting: 64 levels, every level through anyOf + $ref with
     * unevaluatedProperties (annotations merged all the way up) */
    for (int i = 0; i < 63; i++)
        put(&ib, "{\"a\":");
    put(&ib, "1");
    for (int i = 0; i < 63; i++)
        put(&ib, ",\"b\":2}");
    schema_case("deep_annotations",
                "{\"$ref\":\"#/$defs/n\",\"$defs\":{\"n\":{\"anyOf\":[{\"type\":\"integer\"},"
                "{\"properties\":{\"a\":{\"$ref\":\"#/$defs/n\"}}},{\"properties\":{\"a\":"
                "{\"$ref\":\"#/$defs/n\"}}}],\"unevaluatedProperties\":{\"type\":\"integer\"}}}}",
                ib.p, iters);
    ib.len = 0;

    /* wide enum: 50,000 members, 50,000 values */
    put(&sb, "{\"items\":{\"enum\":[");
    for (int i = 0; i < 50000; i++)
        putf(&sb, "%s\"member%d\"", i ? "," : "", i);
    put(&sb, "]}}");
    put(&ib, "[");
    for (int i = 0; i < 50000; i++)
        putf(&ib, "%s\"member%d\"", i ? "," : "", (i * 7) % 50000);
    put(&ib, "]");
    schema_case("wide_enum", sb.p, ib.p, iters);
    sb.len = ib.len = 0;

    /* uniqueItems over 100,000 small arrays, all distinct */
    put(&ib, "[");
    for (int i = 0; i < 100000; i++)
        putf(&ib, "%s[%d]", i ? "," : "", i);
    put(&ib, "]");
    schema_case("unique_items", "{\"uniqueItems\":true}", ib.p, iters);
    ib.len = 0;

    /* numbers far apart in scale: multipleOf 1e-300 against 1e300 */
    inst = array_of("1e300", 170000);
    schema_case("big_numbers",
                "{\"items\":{\"type\":\"number\",\"multipleOf\":1e-300,\"minimum\":-1e308,"
                "\"maximum\":1e308}}",
                inst, iters);
    free(inst);

    /* reals of 17 significant digits under multipleOf (decimal digits of each) */
    inst = array_of("1.2345678901234567", 55000);
    schema_case("reals_multiple_of", "{\"items\":{\"multipleOf\":0.1}}", inst, iters);
    free(inst);

    /* every value is a schema checked against the meta-schema */
    inst = array_of("{\"type\":\"object\",\"properties\":{\"a\":{\"pattern\":\"^[a-z]+$\"}}}",
                    15000);
    schema_case("meta_schema", "{\"items\":{\"$ref\":\"https://json-schema.org/draft/2020-12/"
                               "schema\"}}",
                inst, iters);
    free(inst);
    free(sb.p);
    free(ib.p);
}

static void template_case(const char *name, const char *tmpl, const char *data_json,
                          const char *partials_json, int iters)
{
    json_t *data = json_loads(data_json, JSON_DECODE_ANY, NULL);
    json_t *partials = partials_json ? json_loads(partials_json, 0, NULL) : NULL;
    char plain[1025];
    memset(plain, 'x', 1024);
    plain[1024] = '\0';
    uint64_t *ours = malloc((size_t)iters * sizeof *ours);
    uint64_t *base = malloc((size_t)iters * sizeof *base);
    uint64_t *cpu = malloc((size_t)iters * sizeof *cpu);
    ee_status st = EE_OK;
    for (int q = 0; q < iters; q++) {
        char *out = NULL;
        uint64_t t = bench_now_ns();
        (void)ee__template_render(plain, strlen(plain), data, NULL, &out, NULL);
        base[q] = bench_now_ns() - t;
        free(out);
        out = NULL;
        t = bench_now_ns();
        uint64_t c = cpu_now_ns();
        st = ee__template_render(tmpl, strlen(tmpl), data, partials, &out, NULL);
        cpu[q] = cpu_now_ns() - c;
        ours[q] = bench_now_ns() - t;
        free(out);
    }
    char extra[200];
    snprintf(extra, sizeof extra,
             "\"status\": \"%s\", \"template_bytes\": %zu, \"iters\": %d, \"cpu_p50\": %llu, "
             "\"cpu_p99\": %llu",
             ee_status_name(st), strlen(tmpl), iters,
             (unsigned long long)bench_quantile(cpu, (size_t)iters, 0.5),
             (unsigned long long)bench_quantile(cpu, (size_t)iters, 0.99));
    uint64_t p50 = bench_quantile(ours, (size_t)iters, 0.5);
    uint64_t p99 = bench_quantile(ours, (size_t)iters, 0.99);
    bench_report("template.worst", name, extra, p50, p99, "render.plain_1KiB",
                 bench_quantile(base, (size_t)iters, 0.5));
    free(ours);
    free(base);
    free(cpu);
    json_decref(data);
    json_decref(partials);
}

static void template_cases(int iters)
{
    buf t = {0};
    /* 63 nested sections over two-item lists, empty bodies (756 bytes) */
    for (int i = 0; i < 63; i++)
        put(&t, "{{#a}}");
    for (int i = 0; i < 63; i++)
        put(&t, "{{/a}}");
    template_case("nested_empty_sections", t.p, "{\"a\":[1,2]}", NULL, iters);
    t.len = 0;
    /* the same with 63 context levels to search for a missing name */
    for (int i = 0; i < 63; i++)
        put(&t, "{{#a}}");
    put(&t, "{{missing}}{{missing}}{{missing}}{{missing}}");
    for (int i = 0; i < 63; i++)
        put(&t, "{{/a}}");
    template_case("nested_missing_lookups", t.p, "{\"a\":[{},{}]}", NULL, iters);
    t.len = 0;
    /* a 512 KiB partial of comments, used in a loop */
    buf p = {0};
    put(&p, "{\"p\":\"{{!");
    for (int i = 0; i < 512 * 1024 / 64; i++)
        put(&p, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    put(&p, "}}\"}");
    template_case("large_partial_in_loop", "{{#a}}{{#a}}{{#a}}{{>p}}{{/a}}{{/a}}{{/a}}",
                  "{\"a\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}", p.p, iters);
    /* output up to the cap: a 1 MiB value interpolated 16 times */
    buf d = {0};
    put(&d, "{\"v\":\"");
    for (int i = 0; i < 1024 * 1024 / 64 - 1; i++)
        put(&d, "<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&<&");
    put(&d, "\"}");
    template_case("escaped_output_cap", "{{v}}{{v}}{{v}}{{v}}{{v}}{{v}}{{v}}{{v}}", d.p, NULL,
                  iters);
    free(t.p);
    free(p.p);
    free(d.p);
}

int main(int argc, char **argv)
{
    int quick = bench_quick(argc, argv);
    schema_cases(quick ? 5 : 30);
    template_cases(quick ? 5 : 30);
    return 0;
}
