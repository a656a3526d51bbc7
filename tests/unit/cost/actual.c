/* Actual cost from reported usage: tokens x price, provider cost wins, one
 * rounding, entries that add up, the charge split, unknown prices. */
#include "cost_test.h"

static json_t *actual(ee_cost_table *t, const char *usage)
{
    char *out = NULL;
    ee_status st = ee_cost_actual(t, usage, &out);
    cr_assert_eq(st, EE_OK, "%s -> %s", usage, out ? out : "(null)");
    return cost_test_doc(out);
}

static ee_status actual_fails(ee_cost_table *t, const char *usage)
{
    char *out = NULL;
    ee_status st = ee_cost_actual(t, usage, &out);
    cr_assert_neq(st, EE_OK, "%s accepted", usage);
    json_t *err = cost_test_doc(out);
    cr_expect_eq(cost_test_int(err, "error.code"), st);
    json_decref(err);
    return st;
}

static long long entry_nano(const json_t *doc, size_t i)
{
    return cost_test_int(json_array_get(json_object_get(doc, "entries"), i), "cost.nanoUsd");
}

Test(actual, tokens_times_price)
{
    ee_cost_table *t = cost_test_table();
    json_t *doc = actual(t,
                         "{\"usage\": [{\"model\": \"openai/gpt-4o-mini\", \"node\": \"Summarise\", "
                         "\"promptTokens\": 1200, \"completionTokens\": 300}, "
                         "{\"model\": \"anthropic/claude-3.5-sonnet\", \"prompt_tokens\": 10, "
                         "\"completion_tokens\": 20}]}");
    /* 1200 x 0.00000015 + 300 x 0.0000006 = 0.00036; 10 x 3e-6 + 20 x 15e-6 = 0.00033 */
    cr_expect_eq(cost_test_int(doc, "cost.nanoUsd"), 690000);
    cr_expect_eq(entry_nano(doc, 0), 360000);
    cr_expect_eq(entry_nano(doc, 1), 330000);
    cr_expect_eq(cost_test_int(doc, "promptTokens"), 1210);
    cr_expect_eq(cost_test_int(doc, "completionTokens"), 320);
    cr_expect_eq(cost_test_int(doc, "totalTokens"), 1530);
    cr_expect_str_eq(cost_test_str(json_array_get(json_object_get(doc, "entries"), 0), "source"),
                     "price");
    cr_expect(json_is_false(json_object_get(doc, "priceUnknown")));
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(actual, provider_cost_wins)
{
    ee_cost_table *t = cost_test_table();
    /* the provider says $0.00042 (string), $0.0005 (a JSON number), 777 nano;
     * tokens are still counted, the model even unknown */
    json_t *doc = actual(t,
                         "{\"usage\": ["
                         "{\"model\": \"openai/gpt-4o-mini\", \"promptTokens\": 1200, "
                         " \"completionTokens\": 300, \"cost\": \"0.00042\"},"
                         "{\"model\": \"acme/unknown\", \"promptTokens\": 5, \"cost\": 0.0005},"
                         "{\"model\": \"openai/gpt-4o\", \"completionTokens\": 7, \"costNano\": 777}]}");
    cr_expect_eq(entry_nano(doc, 0), 420000);
    cr_expect_eq(entry_nano(doc, 1), 500000);
    cr_expect_eq(entry_nano(doc, 2), 777);
    cr_expect_eq(cost_test_int(doc, "cost.nanoUsd"), 420000 + 500000 + 777);
    cr_expect_eq(cost_test_int(doc, "promptTokens"), 1205);
    cr_expect_eq(cost_test_int(doc, "completionTokens"), 307);
    cr_expect_str_eq(cost_test_str(json_array_get(json_object_get(doc, "entries"), 1), "source"),
                     "provider");
    cr_expect(json_is_false(json_object_get(doc, "priceUnknown")));
    json_decref(doc);
    cr_expect_eq(actual_fails(t, "{\"usage\": [{\"cost\": \"0.1\", \"costNano\": 5}]}"), EE_EINVAL);
    cr_expect_eq(actual_fails(t, "{\"usage\": [{\"cost\": \"abc\"}]}"), EE_EPARSE);
    cr_expect_eq(actual_fails(t, "{\"usage\": [{\"cost\": 0.30000000000000004}]}"), EE_EPARSE);
    cr_expect_eq(actual_fails(t, "{\"usage\": [{\"cost\": \"-0.1\"}]}"), EE_EINVAL);
    ee_cost_table_free(t);
}

Test(actual, sub_nano_total_rounds_once_and_entries_add_up)
{
    ee_cost_table *t = cost_test_table();
    /* gemini-flash-1.5-8b: 1 prompt token = 37.5 nano-USD. Three such entries:
     * exactly 112.5 -> 112 (half to even), split 38 + 37 + 37. */
    const char *one = "{\"model\": \"google/gemini-flash-1.5-8b\", \"promptTokens\": 1}";
    char usage[512];
    snprintf(usage, sizeof usage, "{\"usage\": [%s, %s, %s]}", one, one, one);
    json_t *doc = actual(t, usage);
    cr_expect_eq(cost_test_int(doc, "cost.nanoUsd"), 112);
    cr_expect_eq(entry_nano(doc, 0), 38);
    cr_expect_eq(entry_nano(doc, 1), 37);
    cr_expect_eq(entry_nano(doc, 2), 37);
    json_decref(doc);
    /* one entry: 37.5 -> 38 (half to even) */
    snprintf(usage, sizeof usage, "{\"usage\": [%s]}", one);
    doc = actual(t, usage);
    cr_expect_eq(cost_test_int(doc, "cost.nanoUsd"), 38);
    json_decref(doc);
    /* no usage at all costs nothing */
    doc = actual(t, "{\"usage\": []}");
    cr_expect_eq(cost_test_int(doc, "cost.nanoUsd"), 0);
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(actual, charge_is_split_like_the_cost)
{
    ee_cost_table *t = cost_test_table();
    json_t *doc = actual(t,
                         "{\"usage\": [{\"model\": \"openai/gpt-4o-mini\", \"promptTokens\": 1200, "
                         "\"completionTokens\": 300}, {\"model\": \"anthropic/claude-3.5-sonnet\", "
                         "\"promptTokens\": 10, \"completionTokens\": 20}],"
                         "\"charge\": {\"platformKey\": true, \"markupBp\": 2000, "
                         "\"allowanceNano\": 10000000000, \"allowanceUsedNano\": 9999900000}}");
    /* 690000 x 1.2 = 828000; 100000 left of the allowance -> 728000 charged */
    json_t *ch = json_object_get(doc, "charge");
    cr_expect_eq(cost_test_int(ch, "markedUp.nanoUsd"), 828000);
    cr_expect_eq(cost_test_int(ch, "allowanceConsumed.nanoUsd"), 100000);
    cr_expect_eq(cost_test_int(ch, "charged.nanoUsd"), 728000);
    cr_expect_eq(cost_test_int(ch, "allowanceUsedAfter.nanoUsd"), 10000000000LL);
    json_t *parts = json_object_get(ch, "entries");
    cr_assert_eq(json_array_size(parts), 2);
    long long a = cost_test_int(json_array_get(parts, 0), "nanoUsd");
    long long b = cost_test_int(json_array_get(parts, 1), "nanoUsd");
    cr_expect_eq(a + b, 728000);
    /* 728000 x 360000/690000 = 379826.08... -> 379826, the other 348174 */
    cr_expect_eq(a, 379826);
    json_decref(doc);

    /* the customer's own key: tokens counted, nothing charged */
    doc = actual(t,
                 "{\"usage\": [{\"model\": \"openai/gpt-4o-mini\", \"promptTokens\": 1200}],"
                 "\"charge\": {\"platformKey\": false}}");
    ch = json_object_get(doc, "charge");
    cr_expect_str_eq(cost_test_str(ch, "keyType"), "customer");
    cr_expect_eq(cost_test_int(ch, "charged.nanoUsd"), 0);
    cr_expect_eq(cost_test_int(doc, "promptTokens"), 1200);
    cr_expect_eq(cost_test_int(doc, "cost.nanoUsd"), 180000);
    json_decref(doc);
    cr_expect_eq(actual_fails(t, "{\"usage\": [], \"charge\": {\"platformKey\": 1}}"), EE_EINVAL);
    cr_expect_eq(actual_fails(t, "{\"usage\": [], \"charge\": {\"platformKey\": true, "
                                 "\"markupBp\": -1, \"allowanceNano\": 0, "
                                 "\"allowanceUsedNano\": 0}}"),
                 EE_EINVAL);
    ee_cost_table_free(t);
}

Test(actual, unknown_price_refused_or_flagged)
{
    ee_cost_table *t = cost_test_table();
    const char *u = "{\"usage\": [{\"model\": \"acme/secret\", \"node\": \"N\", "
                    "\"promptTokens\": 100, \"completionTokens\": 100}]";
    char req[512];
    snprintf(req, sizeof req, "%s}", u);
    char *out = NULL;
    cr_expect_eq(ee_cost_actual(t, req, &out), EE_EPRICE);
    json_t *err = cost_test_doc(out);
    cr_expect_str_eq(cost_test_str(err, "error.detail.model"), "acme/secret");
    json_decref(err);
    snprintf(req, sizeof req,
             "%s, \"allowUnknownPrice\": true, \"fallbackPrice\": {\"prompt\": \"0.00001\", "
             "\"completion\": \"0.00002\"}}", u);
    json_t *doc = actual(t, req);
    cr_expect(json_is_true(json_object_get(doc, "priceUnknown")));
    cr_expect_str_eq(cost_test_str(json_array_get(json_object_get(doc, "entries"), 0), "source"),
                     "fallback");
    cr_expect_eq(cost_test_int(doc, "cost.nanoUsd"), 3000000);
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(actual, bad_input)
{
    ee_cost_table *t = cost_test_table();
    cr_expect_eq(actual_fails(t, "[]"), EE_EPARSE);
    cr_expect_eq(actual_fails(t, "{\"usage\": {}}"), EE_EPARSE);
    cr_expect_eq(actual_fails(t, "{\"usage\": [1]}"), EE_EPARSE);
    cr_expect_eq(actual_fails(t, "{\"usage\": [{\"model\": \"openai/gpt-4o\", \"promptTokens\": -1}]}"),
                 EE_EINVAL);
    cr_expect_eq(actual_fails(t, "{\"usage\": [{\"model\": \"openai/gpt-4o\", \"promptTokens\": 1.5}]}"),
                 EE_EINVAL);
    cr_expect_eq(actual_fails(t, "{\"usage\": [{\"promptTokens\": 1}]}"), EE_EINVAL);
    cr_expect_eq(actual_fails(t, "{\"usage\": [{\"model\": 5}]}"), EE_EINVAL);
    ee_cost_table_free(t);
}
