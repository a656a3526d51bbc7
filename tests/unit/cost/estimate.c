/* The estimator: seed 2's example exactly, n8n workflows, dollar estimates,
 * unknown prices. */
#include <pthread.h>
#include <stdlib.h>

#include "cost_test.h"

#define JAN1_2024 INT64_C(1704067200000)

static json_t *estimate(ee_cost_table *t, const char *wf, const char *opts)
{
    char *out = NULL;
    ee_status st = ee_cost_estimate(t, wf, opts, &out);
    cr_assert_eq(st, EE_OK, "%s -> %s", wf, out ? out : "(null)");
    return cost_test_doc(out);
}

static ee_status estimate_fails(ee_cost_table *t, const char *wf, const char *opts, json_t **err)
{
    char *out = NULL;
    ee_status st = ee_cost_estimate(t, wf, opts, &out);
    cr_assert_neq(st, EE_OK, "%s was accepted", wf);
    *err = cost_test_doc(out);
    cr_expect_eq(cost_test_int(*err, "error.code"), st);
    return st;
}

Test(estimate, seed2_example_exactly)
{
    ee_cost_table *t = cost_test_table();
    json_t *doc = estimate(t, "[\"serper\", \"firecrawl\", \"openai\", \"resend\"]",
                           "{\"schedule\": \"daily\"}");
    cr_expect_eq(cost_test_int(doc, "predictions_per_run"), 1);
    cr_expect_eq(cost_test_int(doc, "external_api_calls"), 3);
    cr_expect_eq(cost_test_int(doc, "platform_managed_calls"), 4);
    cr_expect_eq(cost_test_int(doc, "personal_calls"), 0);
    cr_expect_str_eq(cost_test_str(doc, "complexity"), "low");
    cr_expect_eq(cost_test_int(doc, "estimated_monthly_cost"), 30);
    cr_expect_eq(cost_test_int(doc, "runs_per_month"), 30);
    /* estimatedCost: openai's default gpt-4o-mini, 1000 prompt + 500
     * completion tokens: 1000 x 0.00000015 + 500 x 0.0000006 = $0.00045 */
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perRun.nanoUsd"), 450000);
    cr_expect_str_eq(cost_test_str(doc, "estimatedCost.perRun.usd"), "0.000450000");
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perMonth.nanoUsd"), 13500000);
    cr_expect(json_is_false(json_object_get(json_object_get(doc, "estimatedCost"),
                                            "priceUnknown")));
    json_t *calls = json_object_get(doc, "llmCalls");
    cr_assert_eq(json_array_size(calls), 1);
    cr_expect_str_eq(cost_test_str(json_array_get(calls, 0), "model"), "openai/gpt-4o-mini");
    cr_expect_eq(json_array_size(json_object_get(doc, "unknownNodeTypes")), 0);
    json_decref(doc);

    /* the same through the other accepted shapes */
    const char *shapes[] = {
        "{\"nodes\": [\"serper\", \"firecrawl\", \"openai\", \"resend\"]}",
        "{\"workflow\": {\"nodes\": [{\"service\": \"serper\", \"primitive\": \"data_source\"}, "
        "{\"service\": \"firecrawl\"}, {\"service\": \"OpenAI\", \"primitive\": \"ai_agent\"}, "
        "{\"name\": \"resend\"}]}}",
    };
    for (size_t i = 0; i < 2; i++) {
        doc = estimate(t, shapes[i], "{\"schedule\": \"daily\"}");
        cr_expect_eq(cost_test_int(doc, "predictions_per_run"), 1);
        cr_expect_eq(cost_test_int(doc, "external_api_calls"), 3);
        cr_expect_eq(cost_test_int(doc, "platform_managed_calls"), 4);
        cr_expect_eq(cost_test_int(doc, "personal_calls"), 0);
        cr_expect_eq(cost_test_int(doc, "estimated_monthly_cost"), 30);
        json_decref(doc);
    }
    ee_cost_table_free(t);
}

Test(estimate, personal_email_journey_and_no_schedule)
{
    ee_cost_table *t = cost_test_table();
    /* seed 2's journey 2: gmail instead of resend */
    json_t *doc = estimate(t, "[\"serper\", \"firecrawl\", \"openai\", \"gmail\"]", NULL);
    cr_expect_eq(cost_test_int(doc, "platform_managed_calls"), 3);
    cr_expect_eq(cost_test_int(doc, "personal_calls"), 1);
    cr_expect_eq(cost_test_int(doc, "external_api_calls"), 3);
    cr_expect(json_is_null(json_object_get(doc, "estimated_monthly_cost")));
    cr_expect(json_is_null(json_object_get(doc, "runs_per_month")));
    cr_expect(json_is_null(json_object_get(json_object_get(doc, "estimatedCost"), "perMonth")));
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(estimate, n8n_workflow_fixture)
{
    ee_cost_table *t = cost_test_table();
    FILE *f = fopen(cost_test_path("tests/fixtures/n8n/ee-research-ai.json"), "rb");
    cr_assert_not_null(f);
    char buf[65536];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* webhook (trigger) -> httpRequest with httpHeaderAuth -> openAi gpt-4o-mini */
    json_t *doc = estimate(t, buf, "{\"schedule\": \"*/15 * * * *\", \"startMs\": 1704067200000}");
    cr_expect_eq(cost_test_int(doc, "steps"), 2);
    cr_expect_eq(cost_test_int(doc, "predictions_per_run"), 1);
    cr_expect_eq(cost_test_int(doc, "external_api_calls"), 1);
    cr_expect_eq(cost_test_int(doc, "platform_managed_calls"), 1); /* openAiApi */
    cr_expect_eq(cost_test_int(doc, "personal_calls"), 1);         /* httpHeaderAuth */
    cr_expect_eq(cost_test_int(doc, "runs_per_month"), 2880);
    cr_expect_eq(cost_test_int(doc, "estimated_monthly_cost"), 2880);
    json_t *call = json_array_get(json_object_get(doc, "llmCalls"), 0);
    cr_expect_str_eq(cost_test_str(call, "node"), "Summarise");
    cr_expect_str_eq(cost_test_str(call, "model"), "openai/gpt-4o-mini");
    cr_expect(json_is_false(json_object_get(call, "modelAssumed")));
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perMonth.nanoUsd"), 450000LL * 2880);
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(estimate, token_budget_and_models_from_parameters)
{
    ee_cost_table *t = cost_test_table();
    const char *wf =
        "{\"nodes\": ["
        "{\"name\": \"Start\", \"type\": \"n8n-nodes-base.manualTrigger\"},"
        "{\"name\": \"Note\", \"type\": \"n8n-nodes-base.stickyNote\"},"
        "{\"name\": \"Old\", \"type\": \"n8n-nodes-base.openAi\", \"disabled\": true},"
        "{\"name\": \"Mini\", \"type\": \"n8n-nodes-base.openAi\", \"parameters\": "
        "  {\"model\": \"gpt-4o-mini\", \"options\": {\"maxTokens\": 2000}}},"
        "{\"name\": \"Sonnet\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatAnthropic\", "
        "  \"parameters\": {\"model\": {\"__rl\": true, \"value\": \"claude-3-5-sonnet-20241022\", "
        "  \"mode\": \"list\"}, \"options\": {\"maxTokensToSample\": 100}}, "
        "  \"credentials\": {\"anthropicApi\": {\"id\": \"1\", \"name\": \"mine\"}}},"
        "{\"name\": \"Router\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\", "
        "  \"parameters\": {\"model\": \"meta-llama/llama-3.1-8b-instruct\"}},"
        "{\"name\": \"Expr\", \"type\": \"n8n-nodes-base.openAi\", \"parameters\": "
        "  {\"model\": \"={{ $json.model }}\"}},"
        "{\"name\": \"Mystery\", \"type\": \"community.mystery\", \"credentials\": "
        "  {\"mysteryApi\": {}}},"
        "{\"name\": \"Tidy\", \"type\": \"community.tidy\"}"
        "]}";
    json_t *doc = estimate(t, wf, "{\"runsPerMonth\": 100}");
    cr_expect_eq(cost_test_int(doc, "predictions_per_run"), 4);
    cr_expect_eq(cost_test_int(doc, "steps"), 6); /* 4 LLM + 2 unknown */
    cr_expect_eq(cost_test_int(doc, "external_api_calls"), 1); /* the mystery integrator */
    cr_expect_eq(cost_test_int(doc, "personal_calls"), 2);     /* anthropic + mystery */
    cr_expect_eq(cost_test_int(doc, "platform_managed_calls"), 3);
    cr_expect_str_eq(cost_test_str(doc, "complexity"), "high"); /* 4 predictions */
    json_t *calls = json_object_get(doc, "llmCalls");
    cr_assert_eq(json_array_size(calls), 4);
    /* Mini: 1000 x 150e-9 + 2000 x 600e-9 = 0.00135 USD */
    cr_expect_eq(cost_test_int(json_array_get(calls, 0), "cost.nanoUsd"), 1350000);
    cr_expect_eq(cost_test_int(json_array_get(calls, 0), "completionTokens"), 2000);
    /* Sonnet: 1000 x 3e-6 + 100 x 15e-6 = 0.0045 */
    cr_expect_str_eq(cost_test_str(json_array_get(calls, 1), "model"),
                     "anthropic/claude-3.5-sonnet");
    cr_expect_eq(cost_test_int(json_array_get(calls, 1), "cost.nanoUsd"), 4500000);
    /* Router: 1000 x 2e-8 + 500 x 5e-8 = 0.000045 */
    cr_expect_eq(cost_test_int(json_array_get(calls, 2), "cost.nanoUsd"), 45000);
    /* Expr: an expression, so the service's default model, flagged */
    cr_expect(json_is_true(json_object_get(json_array_get(calls, 3), "modelAssumed")));
    cr_expect_eq(cost_test_int(json_array_get(calls, 3), "cost.nanoUsd"), 450000);
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perRun.nanoUsd"),
                 1350000 + 4500000 + 45000 + 450000);
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perMonth.nanoUsd"),
                 (1350000LL + 4500000 + 45000 + 450000) * 100);
    json_t *unknown = json_object_get(doc, "unknownNodeTypes");
    cr_expect_eq(json_array_size(unknown), 2);
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(estimate, calls_add_up_to_the_run)
{
    ee_cost_table *t = cost_test_table();
    /* gemini-flash-1.5-8b, 1000 prompt tokens x 0.0000000375 and no
     * completion (maxTokens 0): 37500 nano-USD per call */
    const char *wf =
        "{\"nodes\": ["
        "{\"name\": \"A\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\", "
        " \"parameters\": {\"model\": \"google/gemini-flash-1.5-8b\", \"maxTokens\": 0}},"
        "{\"name\": \"B\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\", "
        " \"parameters\": {\"model\": \"google/gemini-flash-1.5-8b\", \"maxTokens\": 0}},"
        "{\"name\": \"C\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\", "
        " \"parameters\": {\"model\": \"google/gemini-flash-1.5-8b\", \"maxTokens\": 0}}]}";
    json_t *doc = estimate(t, wf, "{\"runsPerMonth\": 3}");
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perRun.nanoUsd"), 112500);
    json_t *calls = json_object_get(doc, "llmCalls");
    long long sum = 0;
    for (size_t i = 0; i < json_array_size(calls); i++)
        sum += cost_test_int(json_array_get(calls, i), "cost.nanoUsd");
    cr_expect_eq(sum, 112500);
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perMonth.nanoUsd"), 337500);
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(estimate, unknown_model_is_refused_by_default)
{
    ee_cost_table *t = cost_test_table();
    const char *wf = "{\"nodes\": [{\"name\": \"Ask\", \"type\": "
                     "\"@n8n/n8n-nodes-langchain.lmChatOpenRouter\", \"parameters\": "
                     "{\"model\": \"acme/secret-model\"}}]}";
    json_t *err;
    cr_expect_eq(estimate_fails(t, wf, NULL, &err), EE_EPRICE);
    cr_expect_str_eq(cost_test_str(err, "error.detail.model"), "acme/secret-model");
    cr_expect_str_eq(cost_test_str(err, "error.detail.node"), "Ask");
    cr_expect(strstr(cost_test_str(err, "error.message"), "acme/secret-model") != NULL);
    json_decref(err);
    /* OpenRouter's variable-priced router is unknown too, never free */
    cr_expect_eq(estimate_fails(t,
                                "{\"nodes\": [{\"name\": \"R\", \"type\": "
                                "\"@n8n/n8n-nodes-langchain.lmChatOpenRouter\", \"parameters\": "
                                "{\"model\": \"openrouter/auto\"}}]}",
                                NULL, &err),
                 EE_EPRICE);
    json_decref(err);
    /* allowing without a fallback price is refused: it would cost zero */
    cr_expect_eq(estimate_fails(t, wf, "{\"allowUnknownPrice\": true}", &err), EE_EINVAL);
    json_decref(err);
    /* with the policy: charged at the fallback, flagged */
    json_t *doc = estimate(t, wf,
                           "{\"allowUnknownPrice\": true, \"fallbackPrice\": {\"prompt\": "
                           "\"0.00001\", \"completion\": \"0.00003\"}, \"schedule\": \"weekly\"}");
    cr_expect(json_is_true(json_object_get(json_object_get(doc, "estimatedCost"),
                                           "priceUnknown")));
    cr_expect(json_is_true(json_object_get(json_array_get(json_object_get(doc, "llmCalls"), 0),
                                           "priceUnknown")));
    /* 1000 x 0.00001 + 500 x 0.00003 = 0.025 */
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perRun.nanoUsd"), 25000000);
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perMonth.nanoUsd"), 100000000);
    json_decref(doc);
    /* a known model in the same request is not flagged */
    doc = estimate(t, "[\"openai\"]",
                   "{\"allowUnknownPrice\": true, \"fallbackPrice\": {\"prompt\": \"1\", "
                   "\"completion\": \"1\"}}");
    cr_expect(json_is_false(json_object_get(json_object_get(doc, "estimatedCost"),
                                            "priceUnknown")));
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perRun.nanoUsd"), 450000);
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(estimate, bad_input)
{
    ee_cost_table *t = cost_test_table();
    json_t *err;
    cr_expect_eq(estimate_fails(t, "not json", NULL, &err), EE_EPARSE);
    json_decref(err);
    cr_expect_eq(estimate_fails(t, "{\"nodes\": 3}", NULL, &err), EE_EPARSE);
    json_decref(err);
    cr_expect_eq(estimate_fails(t, "[42]", NULL, &err), EE_EPARSE);
    json_decref(err);
    cr_expect_eq(estimate_fails(t, "[\"openai\"]", "{\"schedule\": \"sometimes\"}", &err),
                 EE_EINVAL);
    json_decref(err);
    cr_expect_eq(estimate_fails(t, "[\"openai\"]", "{\"schedule\": \"0 9 * * 1-5\"}", &err),
                 EE_EINVAL); /* a cron needs startMs */
    json_decref(err);
    cr_expect_eq(estimate_fails(t, "[\"openai\"]", "{\"schedule\": 5}", &err), EE_EINVAL);
    json_decref(err);
    cr_expect_eq(estimate_fails(t, "[\"openai\"]", "{\"schedule\": \"daily\", \"runsPerMonth\": 3}",
                                &err), EE_EINVAL);
    json_decref(err);
    cr_expect_eq(estimate_fails(t, "[\"openai\"]", "oops", &err), EE_EINVAL);
    json_decref(err);
    cr_expect_eq(estimate_fails(t, "[{\"service\": \"openai\", \"primitive\": \"wizard\"}]", NULL,
                                &err), EE_EINVAL);
    json_decref(err);
    /* nodes beyond the limit */
    size_t n = EE_COST_MAX_NODES + 1;
    char *big = malloc(n * 4 + 8);
    cr_assert_not_null(big);
    char *p = big;
    *p++ = '[';
    for (size_t i = 0; i < n; i++) {
        memcpy(p, "\"x\",", 4);
        p += 4;
    }
    p[-1] = ']';
    *p = '\0';
    cr_expect_eq(estimate_fails(t, big, NULL, &err), EE_ETOOBIG);
    json_decref(err);
    free(big);
    char *out = NULL;
    cr_expect_eq(ee_cost_estimate(NULL, "[]", NULL, &out), EE_EINVAL);
    ee_free(out);
    cr_expect_eq(ee_cost_estimate(t, "[]", NULL, NULL), EE_EINVAL);
    /* the cron case with startMs */
    json_t *doc = estimate(t, "[\"openai\"]",
                           "{\"schedule\": \"0 9 * * 1-5\", \"startMs\": 1704067200000}");
    cr_expect_eq(cost_test_int(doc, "runs_per_month"), 22);
    cr_expect_str_eq(cost_test_str(doc, "schedule"), "0 9 * * 1-5");
    json_decref(doc);
    ee_cost_table_free(t);
}

/* Estimates while another thread keeps reloading prices and rules: every
 * answer is one of the consistent ones (ASan/TSan-friendly smoke test). */
static void *reloader(void *arg)
{
    ee_cost_table *t = arg;
    for (int i = 0; i < 200; i++) {
        (void)ee_cost_table_load_prices_file(t, cost_test_path("data/prices.json"));
        (void)ee_cost_table_load_rules_file(t, cost_test_path("data/cost_rules.json"));
    }
    return NULL;
}

Test(estimate, shared_table_survives_reloads)
{
    ee_cost_table *t = cost_test_table();
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, reloader, t), 0);
    for (int i = 0; i < 2000; i++) {
        char *out = NULL;
        cr_assert_eq(ee_cost_estimate(t, "[\"serper\", \"openai\"]", NULL, &out), EE_OK);
        json_t *doc = cost_test_doc(out);
        cr_assert_eq(cost_test_int(doc, "estimatedCost.perRun.nanoUsd"), 450000);
        json_decref(doc);
    }
    pthread_join(th, NULL);
    ee_cost_table_free(t);
}
