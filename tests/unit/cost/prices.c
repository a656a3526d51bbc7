/* The price table: exact parsing of OpenRouter's models answer, bounded and
 * all-or-nothing loads, unknown models. */
#include <stdlib.h>

#include "cost_test.h"

static ee_cost_table *prices_only(void)
{
    ee_cost_table *t = NULL;
    cr_assert_eq(ee_cost_table_new(&t), EE_OK);
    cr_assert_eq(ee_cost_table_load_prices_file(t, cost_test_path("data/prices.json")), EE_OK,
                 "%s", ee_error_last_message());
    return t;
}

static void expect_price(ee_cost_table *t, const char *model, long long prompt_atto,
                         long long completion_atto, const char *prompt_text)
{
    char *out = NULL;
    cr_assert_eq(ee_cost_table_price_json(t, model, &out), EE_OK, "%s: %s", model,
                 ee_error_last_message());
    json_t *doc = cost_test_doc(out);
    cr_expect_eq(cost_test_int(doc, "promptAttoUsd"), prompt_atto, "%s", model);
    cr_expect_eq(cost_test_int(doc, "completionAttoUsd"), completion_atto, "%s", model);
    cr_expect_str_eq(cost_test_str(doc, "prompt"), prompt_text);
    json_decref(doc);
}

Test(prices, data_file_parsed_exactly)
{
    ee_cost_table *t = prices_only();
    expect_price(t, "openai/gpt-4o-mini", 150000000000LL, 600000000000LL, "0.00000015");
    expect_price(t, "anthropic/claude-3.5-sonnet", 3000000000000LL, 15000000000000LL, "0.000003");
    expect_price(t, "google/gemini-flash-1.5-8b", 37500000000LL, 150000000000LL, "0.0000000375");
    expect_price(t, "meta-llama/llama-3.1-8b-instruct", 20000000000LL, 50000000000LL,
                 "0.00000002");
    expect_price(t, "mistralai/mistral-7b-instruct:free", 0, 0, "0");
    char *out = NULL;
    cr_assert_eq(ee_cost_table_price_json(t, "perplexity/sonar", &out), EE_OK);
    json_t *doc = cost_test_doc(out);
    cr_expect_eq(cost_test_int(doc, "requestAttoUsd"), 5000000000000000LL);
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(prices, variable_price_is_unknown_not_zero)
{
    ee_cost_table *t = prices_only();
    char *out = NULL;
    cr_expect_eq(ee_cost_table_price_json(t, "openrouter/auto", &out), EE_EPRICE);
    json_t *doc = cost_test_doc(out);
    cr_expect_str_eq(cost_test_str(doc, "error.name"), "EE_EPRICE");
    cr_expect_str_eq(cost_test_str(doc, "error.detail.model"), "openrouter/auto");
    cr_expect(strstr(cost_test_str(doc, "error.message"), "openrouter/auto") != NULL);
    json_decref(doc);
    cr_expect_eq(ee_cost_table_price_json(t, "no/such-model", &out), EE_EPRICE);
    ee_free(out);
    ee_cost_table_free(t);
}

/* Every malformed or oversized answer fails and the old table stays. */
Test(prices, failed_load_keeps_the_old_table)
{
    ee_cost_table *t = prices_only();
    const struct {
        const char *json;
        ee_status st;
    } bad[] = {
        {"", EE_EPARSE},
        {"{\"data\": [", EE_EPARSE},
        {"[]", EE_EPARSE},
        {"{\"models\": []}", EE_EPARSE},
        {"{\"data\": [42]}", EE_EPARSE},
        {"{\"data\": [{\"pricing\": {\"prompt\": \"0\", \"completion\": \"0\"}}]}", EE_EPARSE},
        {"{\"data\": [{\"id\": \"a/b\"}]}", EE_EPARSE},
        {"{\"data\": [{\"id\": \"a/b\", \"pricing\": {\"prompt\": \"0.1\"}}]}", EE_EPARSE},
        {"{\"data\": [{\"id\": \"a/b\", \"pricing\": {\"prompt\": \"abc\", \"completion\": "
         "\"0\"}}]}", EE_EPARSE},
        /* finer than 1e-18 USD cannot be kept exactly */
        {"{\"data\": [{\"id\": \"a/b\", \"pricing\": {\"prompt\": \"0.0000000000000000001\", "
         "\"completion\": \"0\"}}]}", EE_EPARSE},
        /* a good model first: still nothing of this answer is kept */
        {"{\"data\": [{\"id\": \"new/model\", \"pricing\": {\"prompt\": \"0.1\", \"completion\": "
         "\"0.1\"}}, {\"id\": \"x/y\", \"pricing\": {\"prompt\": true, \"completion\": \"0\"}}]}",
         EE_EPARSE},
        {"{\"data\": [{\"id\": \"d/d\", \"pricing\": {\"prompt\": \"0\", \"completion\": \"0\"}}, "
         "{\"id\": \"d/d\", \"pricing\": {\"prompt\": \"0\", \"completion\": \"0\"}}]}", EE_EPARSE},
        {"{\"data\": [], \"data\": []}", EE_EPARSE},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(ee_cost_table_load_prices_json(t, bad[i].json), bad[i].st, "case %zu: %s", i,
                     ee_error_last_message());
        expect_price(t, "openai/gpt-4o-mini", 150000000000LL, 600000000000LL, "0.00000015");
        char *out = NULL;
        cr_expect_eq(ee_cost_table_price_json(t, "new/model", &out), EE_EPRICE);
        ee_free(out);
    }
    /* too deep */
    char deep[400];
    memset(deep, '[', 300);
    deep[300] = '\0';
    cr_expect_eq(ee_cost_table_load_prices_json(t, deep), EE_ETOOBIG);
    /* too big */
    size_t big = EE_COST_PRICES_MAX_BYTES + 10;
    char *huge = malloc(big + 1);
    cr_assert_not_null(huge);
    memset(huge, ' ', big);
    huge[big] = '\0';
    cr_expect_eq(ee_cost_table_load_prices_json(t, huge), EE_ETOOBIG);
    free(huge);
    expect_price(t, "openai/gpt-4o-mini", 150000000000LL, 600000000000LL, "0.00000015");
    cr_expect_eq(ee_cost_table_load_prices_file(t, "/nonexistent/prices.json"), EE_EIO);
    cr_expect_eq(ee_cost_table_load_prices_json(NULL, "{}"), EE_EINVAL);
    ee_cost_table_free(t);
}

Test(prices, refresh_replaces_the_whole_table)
{
    ee_cost_table *t = prices_only();
    /* a new OpenRouter answer: gpt-4o-mini repriced, others gone */
    const char *fresh =
        "{\"data\": [{\"id\": \"openai/gpt-4o-mini\", \"name\": \"x\", \"pricing\": "
        "{\"prompt\": \"0.0000002\", \"completion\": \"0.0000008\", \"image\": \"0\", "
        "\"web_search\": \"0\", \"internal_reasoning\": \"0\"}, \"architecture\": {}}, "
        "{\"id\": \"new/model\", \"pricing\": {\"prompt\": \"1.5e-7\", \"completion\": 0}}]}";
    cr_assert_eq(ee_cost_table_load_prices_json(t, fresh), EE_OK, "%s", ee_error_last_message());
    expect_price(t, "openai/gpt-4o-mini", 200000000000LL, 800000000000LL, "0.0000002");
    expect_price(t, "new/model", 150000000000LL, 0, "0.00000015");
    char *out = NULL;
    cr_expect_eq(ee_cost_table_price_json(t, "anthropic/claude-3.5-sonnet", &out), EE_EPRICE);
    ee_free(out);
    ee_cost_table_free(t);
}

Test(prices, rules_load_is_all_or_nothing_too)
{
    ee_cost_table *t = NULL;
    cr_assert_eq(ee_cost_table_new(&t), EE_OK);
    char *out = NULL;
    /* no rules yet */
    cr_expect_eq(ee_cost_estimate(t, "[\"serper\"]", NULL, &out), EE_ESTATE);
    ee_free(out);
    cr_assert_eq(ee_cost_table_load_rules_file(t, cost_test_path("data/cost_rules.json")), EE_OK,
                 "%s", ee_error_last_message());
    const char *bad[] = {
        "{}",
        "{\"version\": 2}",
        "{\"version\": 1, \"primitives\": {}}",
        "{\"version\": 1, \"primitives\": {\"p\": {}}, \"llm\": {}}",
        "{\"version\": 1, \"primitives\": {\"p\": {}}, \"llm\": {\"defaultModel\": \"m\"}, "
        "\"services\": [{\"name\": \"s\", \"primitive\": \"nope\"}]}",
        "{\"version\": 1, \"primitives\": {\"p\": {}}, \"llm\": {\"defaultModel\": \"m\"}, "
        "\"services\": [{\"name\": \"s\", \"primitive\": \"p\"}, {\"name\": \"S\", "
        "\"primitive\": \"p\"}], \"unknownNodeType\": {\"withCredentials\": \"p\", "
        "\"withoutCredentials\": \"p\"}, \"complexity\": {\"default\": \"low\"}}",
        "{\"version\": 1, \"primitives\": {\"p\": {}}, \"llm\": {\"defaultModel\": \"m\"}, "
        "\"services\": [], \"unknownNodeType\": {\"withCredentials\": \"p\", "
        "\"withoutCredentials\": \"p\"}, \"complexity\": {\"default\": \"extreme\"}}",
        "{\"version\": 1, \"primitives\": {\"p\": {}}, \"llm\": {\"defaultModel\": \"m\"}, "
        "\"services\": [], \"unknownNodeType\": {\"withCredentials\": \"p\", "
        "\"withoutCredentials\": \"p\"}, \"complexity\": {\"default\": \"low\", \"rules\": "
        "[{\"level\": \"high\"}]}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(ee_cost_table_load_rules_json(t, bad[i]), EE_EPARSE, "case %zu accepted", i);
    /* the loaded rules are still the ones in use */
    cr_expect_eq(ee_cost_estimate(t, "[\"serper\"]", NULL, &out), EE_OK, "%s",
                 ee_error_last_message());
    json_t *doc = cost_test_doc(out);
    cr_expect_eq(cost_test_int(doc, "external_api_calls"), 1);
    json_decref(doc);
    /* a minimal valid document */
    const char *minimal =
        "{\"version\": 1, \"primitives\": {\"p\": {\"externalApi\": false}}, \"llm\": "
        "{\"defaultModel\": \"m\"}, \"services\": [], \"unknownNodeType\": {\"withCredentials\": "
        "\"p\", \"withoutCredentials\": \"p\"}, \"complexity\": {\"default\": \"medium\"}}";
    cr_expect_eq(ee_cost_table_load_rules_json(t, minimal), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_cost_estimate(t, "[\"serper\"]", NULL, &out), EE_OK);
    doc = cost_test_doc(out);
    cr_expect_eq(cost_test_int(doc, "external_api_calls"), 0);
    cr_expect_str_eq(cost_test_str(doc, "complexity"), "medium");
    json_decref(doc);
    ee_cost_table_free(t);
}
