/*
 * libFuzzer: arbitrary bytes as the cost module's outside documents. The
 * first byte picks the call; the rest is its text:
 *   0  ee_cost_estimate(workflow, options): the text up to the first NUL
 *      is the workflow, the rest (if any) the options
 *   1  ee_cost_actual(usage)
 *   2  ee_cost_table_load_prices_json (an OpenRouter /models answer)
 *   3  ee_cost_table_load_rules_json (a cost_rules.json document)
 *   4  ee_cost_schedule_runs(schedule)
 * Invariants: every status is one the header documents (never EE_ENOMEM
 * for bad input); an answer is a JSON object and a failure's answer the
 * error document of that status; the same call answers the same twice;
 * a money amount's "usd" string is its "nanoUsd"; a failed load leaves
 * the table as it was (all or nothing).
 */
#include <inttypes.h>

#include "fuzz_engine.h"

static ee_cost_table *table;   /* data/prices.json and data/cost_rules.json */
static ee_cost_table *scratch; /* loads land here */

static const char fixed_workflow[] = "{\"nodes\": [{\"name\": \"Agent\", \"type\": "
                                     "\"@n8n/n8n-nodes-langchain.agent\"}, {\"name\": "
                                     "\"Search\", \"type\": \"n8n-nodes-serper.serper\"}]}";

static void load_once(void)
{
    if (table != NULL)
        return;
    char dir[1024], path[1200];
    fz_data_dir(dir, sizeof dir);
    CHECK(ee_cost_table_new(&table) == EE_OK);
    CHECK(ee_cost_table_new(&scratch) == EE_OK);
    snprintf(path, sizeof path, "%s/prices.json", dir);
    CHECK(ee_cost_table_load_prices_file(table, path) == EE_OK);
    CHECK(ee_cost_table_load_prices_file(scratch, path) == EE_OK);
    snprintf(path, sizeof path, "%s/cost_rules.json", dir);
    CHECK(ee_cost_table_load_rules_file(table, path) == EE_OK);
    CHECK(ee_cost_table_load_rules_file(scratch, path) == EE_OK);
}

/* {"nanoUsd": n, "usd": "d.ddddddddd"} with the string exactly n. */
static void check_money(const json_t *m)
{
    if (json_is_null(m))
        return;
    CHECK(json_is_object(m));
    const json_t *nano = json_object_get(m, "nanoUsd");
    const char *usd = json_string_value(json_object_get(m, "usd"));
    CHECK(json_is_integer(nano) && usd != NULL);
    json_int_t n = json_integer_value(nano);
    char want[48];
    uint64_t a = n < 0 ? (uint64_t)0 - (uint64_t)n : (uint64_t)n;
    snprintf(want, sizeof want, "%s%" PRIu64 ".%09" PRIu64, n < 0 ? "-" : "", a / 1000000000u,
             a % 1000000000u);
    if (strcmp(want, usd) != 0)
        fprintf(stderr, "money %s vs %s\n", want, usd);
    CHECK(strcmp(want, usd) == 0);
}

/* The answer, checked, as text (free()), or NULL for a failure. */
static char *answered(ee_status st, char *out)
{
    json_t *doc = fz_answer(st, out);
    char *text = NULL;
    if (st == EE_OK)
        text = json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(doc);
    return text;
}

static void estimate(const char *workflow, const char *options)
{
    char *out = NULL;
    ee_status st = ee_cost_estimate(table, workflow, options, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_EPRICE);
    if (st == EE_OK) {
        json_t *doc = json_loads(out, 0, NULL);
        const json_t *cost = json_object_get(doc, "estimatedCost");
        CHECK(json_is_object(cost));
        check_money(json_object_get(cost, "perRun"));
        check_money(json_object_get(cost, "perMonth"));
        CHECK(json_is_array(json_object_get(doc, "llmCalls")));
        size_t i;
        const json_t *call;
        json_array_foreach(json_object_get(doc, "llmCalls"), i, call)
            check_money(json_object_get(call, "cost"));
        json_decref(doc);
    }
    char *first = answered(st, out);
    out = NULL;
    ee_status again = ee_cost_estimate(table, workflow, options, &out);
    CHECK(again == st);
    char *second = answered(again, out);
    CHECK((first == NULL) == (second == NULL));
    if (first != NULL)
        CHECK(strcmp(first, second) == 0);
    free(first);
    free(second);
}

static void actual(const char *usage)
{
    char *out = NULL;
    ee_status st = ee_cost_actual(table, usage, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_EPRICE);
    if (st == EE_OK) {
        json_t *doc = json_loads(out, 0, NULL);
        const json_t *cost = json_object_get(doc, "cost");
        check_money(cost);
        /* Entry costs add up to the total (largest-remainder split). */
        json_int_t sum = 0;
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(doc, "entries"), i, e) {
            check_money(json_object_get(e, "cost"));
            sum += json_integer_value(json_object_get(json_object_get(e, "cost"), "nanoUsd"));
        }
        if (json_array_size(json_object_get(doc, "entries")) > 0)
            CHECK(sum == json_integer_value(json_object_get(cost, "nanoUsd")));
        json_decref(doc);
    }
    free(answered(st, out));
}

static char *price_of(const char *model)
{
    char *out = NULL;
    ee_status st = ee_cost_table_price_json(scratch, model, &out);
    CHECK_STATUS(st, EE_OK, EE_EPRICE);
    char *text = answered(st, out);
    return text != NULL ? text : strdup("no price");
}

static char *estimate_text(const ee_cost_table *t)
{
    char *out = NULL;
    ee_status st = ee_cost_estimate(t, fixed_workflow, NULL, &out);
    CHECK_STATUS(st, EE_OK, EE_EPRICE, EE_ESTATE);
    char *text = answered(st, out);
    return text != NULL ? text : strdup(ee_status_name(st));
}

static void load(bool prices, const char *doc)
{
    char *before = prices ? price_of("openai/gpt-4o-mini") : estimate_text(scratch);
    ee_status st = prices ? ee_cost_table_load_prices_json(scratch, doc)
                          : ee_cost_table_load_rules_json(scratch, doc);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
    if (st != EE_OK) {
        char *after = prices ? price_of("openai/gpt-4o-mini") : estimate_text(scratch);
        CHECK(strcmp(before, after) == 0); /* all or nothing */
        free(after);
    } else {
        /* An accepted table still answers (or says why not). */
        free(estimate_text(scratch));
        /* Put the real data back for the next input. */
        char dir[1024], path[1200];
        fz_data_dir(dir, sizeof dir);
        snprintf(path, sizeof path, "%s/%s", dir, prices ? "prices.json" : "cost_rules.json");
        CHECK((prices ? ee_cost_table_load_prices_file(scratch, path)
                      : ee_cost_table_load_rules_file(scratch, path)) == EE_OK);
    }
    free(before);
}

static void schedule(const char *s)
{
    int64_t runs = -1;
    ee_status st = ee_cost_schedule_runs(s, 1760000000000, &runs);
    CHECK_STATUS(st, EE_OK, EE_EINVAL);
    if (st == EE_OK)
        CHECK(runs >= 0 && runs <= 30 * 24 * 60); /* at most one a minute */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    load_once();
    char *a = NULL, *b = NULL;
    switch (data[0] % 5) {
    case 0:
        fz_split(data + 1, size - 1, &a, &b);
        estimate(a, b);
        break;
    case 1:
        a = fz_text(data + 1, size - 1);
        actual(a);
        break;
    case 2:
    case 3:
        a = fz_text(data + 1, size - 1);
        load(data[0] % 5 == 2, a);
        break;
    default:
        a = fz_text(data + 1, size - 1);
        schedule(a);
        break;
    }
    free(a);
    free(b);
    ee_error_clear();
    return 0;
}
