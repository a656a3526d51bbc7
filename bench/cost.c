/*
 * bench_cost: the cost module's hot calls beside same-run baselines.
 *
 *   cost.estimate  ee_cost_estimate() of a 20-node n8n workflow (4 LLM
 *                  nodes, a cron schedule), answer freed; baseline
 *                  "jansson.loads": json_loads + json_decref of the same
 *                  workflow text (the floor any JSON-in estimator pays)
 *   cost.actual    ee_cost_actual() of a 4-entry usage with a charge;
 *                  baseline "jansson.loads" of the same usage text
 *   cost.charge    ee_cost_charge_calc() (markup, half-even, allowance);
 *                  baseline "int64.muldiv": a bare cost * 12000 / 10000
 *
 * Ops are timed in batches (the clock costs more than a charge), p50/p99
 * are per op. --quick keeps the whole run to a few seconds. Never fails:
 * errors become "error" lines.
 */
#include <jansson.h>
#include <stdint.h>

#include "bench_util.h"
#include "execengine/cost.h"

static char root[1024];

static void find_root(void)
{
    const char *me = __FILE__, *cut = strstr(me, "bench/cost.c");
    snprintf(root, sizeof root, "%.*s", cut ? (int)(cut - me) : 0, me);
}

static const char *path(const char *rel)
{
    static char buf[1200];
    snprintf(buf, sizeof buf, "%s%s", root, rel);
    return buf;
}

/* A 20-node workflow: trigger, 4 LLM nodes, search/scrape/mail, logic. */
static char *workflow(void)
{
    static const char *const types[] = {
        "n8n-nodes-base.scheduleTrigger", "n8n-nodes-serper.serper",
        "@mendable/n8n-nodes-firecrawl.fireCrawl", "n8n-nodes-base.openAi",
        "n8n-nodes-base.set", "n8n-nodes-base.if", "@n8n/n8n-nodes-langchain.lmChatOpenRouter",
        "n8n-nodes-base.httpRequest", "n8n-nodes-base.code", "n8n-nodes-resend.resend",
        "n8n-nodes-base.merge", "@n8n/n8n-nodes-langchain.lmChatAnthropic", "n8n-nodes-base.gmail",
        "n8n-nodes-base.slack", "n8n-nodes-base.notion", "n8n-nodes-base.openAi",
        "n8n-nodes-base.splitInBatches", "n8n-nodes-base.stickyNote", "n8n-nodes-base.wait",
        "n8n-nodes-base.noOp"};
    json_t *nodes = json_array();
    for (int i = 0; i < 20; i++) {
        json_t *params = json_pack("{s:s, s:{s:i}}", "operation", "run", "options", "maxTokens",
                                   400 + i);
        if (i == 6)
            json_object_set_new(params, "model", json_string("meta-llama/llama-3.1-70b-instruct"));
        if (i == 11)
            json_object_set_new(params, "model", json_string("claude-3-5-sonnet-20241022"));
        if (i == 3 || i == 15)
            json_object_set_new(params, "model", json_string("gpt-4o-mini"));
        json_t *n = json_pack("{s:s, s:s, s:i, s:[i,i], s:o}", "name", types[i], "type", types[i],
                              "typeVersion", 1, "position", i * 200, 300, "parameters", params);
        if (i == 7)
            json_object_set_new(n, "credentials",
                                json_pack("{s:{s:s, s:s}}", "httpHeaderAuth", "id", "7", "name",
                                          "Header"));
        json_array_append_new(nodes, n);
    }
    json_t *wf = json_pack("{s:s, s:o, s:{}}", "name", "bench", "nodes", nodes, "connections");
    char *text = json_dumps(wf, JSON_COMPACT);
    json_decref(wf);
    return text;
}

static const char *usage_text =
    "{\"usage\": [{\"model\": \"openai/gpt-4o-mini\", \"node\": \"A\", \"promptTokens\": 1200, "
    "\"completionTokens\": 300}, {\"model\": \"anthropic/claude-3.5-sonnet\", \"node\": \"B\", "
    "\"promptTokens\": 900, \"completionTokens\": 250}, {\"model\": "
    "\"meta-llama/llama-3.1-70b-instruct\", \"node\": \"C\", \"prompt_tokens\": 4000, "
    "\"completion_tokens\": 800}, {\"model\": \"openai/gpt-4o\", \"node\": \"D\", "
    "\"cost\": \"0.00123\"}], \"charge\": {\"platformKey\": true, \"markupBp\": 2000, "
    "\"allowanceNano\": 10000000000, \"allowanceUsedNano\": 9999000000}}";

typedef int (*op_fn)(void *ctx, uint64_t i);

/* Per-op p50/p99 of ours and of the baseline from `samples` batches of
 * `batch` ops each, alternating the two so that a noisy neighbour on a
 * shared machine hits both alike. */
static int measure(op_fn ours, op_fn base, void *ctx, size_t samples, size_t batch,
                   uint64_t p50[2], uint64_t p99[2])
{
    uint64_t *v[2] = {malloc(samples * sizeof(uint64_t)), malloc(samples * sizeof(uint64_t))};
    int rc = v[0] && v[1] ? 0 : -1;
    uint64_t i = 0;
    for (size_t s = 0; rc == 0 && s < samples; s++)
        for (int k = 0; k < 2 && rc == 0; k++) {
            op_fn fn = k == 0 ? ours : base;
            uint64_t t0 = bench_now_ns();
            for (size_t b = 0; b < batch && rc == 0; b++)
                rc = fn(ctx, i++);
            v[k][s] = (bench_now_ns() - t0) / batch;
        }
    for (int k = 0; k < 2 && rc == 0; k++) {
        p50[k] = bench_quantile(v[k], samples, 0.50);
        p99[k] = bench_quantile(v[k], samples, 0.99);
    }
    free(v[0]);
    free(v[1]);
    return rc;
}

typedef struct {
    ee_cost_table *t;
    const char *text, *opts;
} doc_ctx;

static int op_estimate(void *p, uint64_t i)
{
    (void)i;
    doc_ctx *c = p;
    char *out = NULL;
    ee_status st = ee_cost_estimate(c->t, c->text, c->opts, &out);
    ee_free(out);
    return st == EE_OK ? 0 : -1;
}

static int op_actual(void *p, uint64_t i)
{
    (void)i;
    doc_ctx *c = p;
    char *out = NULL;
    ee_status st = ee_cost_actual(c->t, c->text, &out);
    ee_free(out);
    return st == EE_OK ? 0 : -1;
}

static int op_loads(void *p, uint64_t i)
{
    (void)i;
    doc_ctx *c = p;
    json_t *doc = json_loads(c->text, 0, NULL);
    json_decref(doc);
    return doc ? 0 : -1;
}

static volatile int64_t sink;

static int op_charge(void *p, uint64_t i)
{
    (void)p;
    int64_t charged, consumed, after;
    int64_t cost = (int64_t)(i * 7919 % 100000000);
    if (ee_cost_charge_calc(cost, 2000, 10000000000, (int64_t)(i % 12000000000), 1,
                            &charged, &consumed, &after) != EE_OK)
        return -1;
    sink += charged + consumed;
    return 0;
}

static int op_muldiv(void *p, uint64_t i)
{
    (void)p;
    int64_t cost = (int64_t)(i * 7919 % 100000000);
    sink += cost * 12000 / 10000;
    return 0;
}

static void error_line(const char *bench, const char *what)
{
    printf("{\"bench\": \"%s\", \"error\": \"%s: %s\"}\n", bench, what, ee_error_last_message());
    fflush(stdout);
}

int main(int argc, char **argv)
{
    int quick = bench_quick(argc, argv);
    find_root();
    ee_cost_table *t = NULL;
    if (ee_cost_table_new(&t) != EE_OK
        || ee_cost_table_load_prices_file(t, path("data/prices.json")) != EE_OK
        || ee_cost_table_load_rules_file(t, path("data/cost_rules.json")) != EE_OK) {
        error_line("cost.estimate", "loading data/prices.json and data/cost_rules.json");
        ee_cost_table_free(t);
        return 0;
    }
    size_t samples = quick ? 400 : 2500;
    uint64_t p50[2], p99[2];

    char *wf = workflow();
    doc_ctx est = {t, wf, "{\"schedule\": \"0 9 * * 1-5\", \"startMs\": 1704067200000}"};
    char extra[64];
    snprintf(extra, sizeof extra, "\"nodes\": 20, \"bytes\": %zu", wf ? strlen(wf) : 0);
    if (wf == NULL || measure(op_estimate, op_loads, &est, samples, 10, p50, p99) != 0)
        error_line("cost.estimate", "estimate failed");
    else
        bench_report("cost.estimate", "in-process", extra, p50[0], p99[0], "jansson.loads",
                     p50[1]);
    free(wf);

    doc_ctx act = {t, usage_text, NULL};
    if (measure(op_actual, op_loads, &act, samples, 10, p50, p99) != 0)
        error_line("cost.actual", "actual failed");
    else
        bench_report("cost.actual", "in-process", "\"entries\": 4", p50[0], p99[0],
                     "jansson.loads", p50[1]);

    if (measure(op_charge, op_muldiv, NULL, samples * 4, 1000, p50, p99) != 0)
        error_line("cost.charge", "charge failed");
    else
        bench_report("cost.charge", "in-process", NULL, p50[0], p99[0], "int64.muldiv", p50[1]);

    ee_cost_table_free(t);
    return 0;
}
