/*
 * Numbers in cost documents: what cannot be represented is refused
 * (EE_EINVAL), never read as 0; a wrong-typed model or token count is
 * refused by name; a per-run cost below a nano-dollar still adds up over a
 * month (the month is rounded, not each run).
 */
#include "cost_test.h"

static ee_status actual(ee_cost_table *t, const char *usage)
{
    char *out = NULL;
    ee_status st = ee_cost_actual(t, usage, &out);
    ee_free(out);
    return st;
}

Test(cost_numbers, null_or_unrepresentable_numbers_are_refused)
{
    ee_cost_table *t = cost_test_table();
    const char *bad[] = {
        "{\"usage\": [{\"model\": \"openai/gpt-4o-mini\", \"promptTokens\": null}]}",
        "{\"usage\": [{\"model\": \"openai/gpt-4o-mini\", \"completion_tokens\": null}]}",
        "{\"usage\": [{\"model\": \"m\", \"cost\": -0}]}",
        "{\"usage\": [{\"model\": \"m\", \"costNano\": -0}]}",
        "{\"usage\": [{\"model\": \"m\", \"cost\": 1e-400}]}",
        "{\"usage\": [{\"model\": \"unknown/x\"}], \"allowUnknownPrice\": true, "
        "\"fallbackPrice\": {\"prompt\": 1e-400, \"completion\": 0}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ee_status st = actual(t, bad[i]);
        cr_expect_eq(st, EE_EINVAL, "%s: %s (%s)", bad[i], ee_status_name(st),
                     ee_error_last_message());
    }
    cr_expect_not_null(strstr((actual(t, bad[0]), ee_error_last_message()), "promptTokens"));
    /* the same documents with representable numbers are fine */
    cr_expect_eq(actual(t, "{\"usage\": [{\"model\": \"openai/gpt-4o-mini\", \"promptTokens\": "
                           "0}]}"), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(actual(t, "{\"usage\": [{\"model\": \"m\", \"cost\": 0}]}"), EE_OK, "%s",
                 ee_error_last_message());
    char *out = NULL;
    cr_expect_eq(ee_cost_estimate(t, "[\"openai\"]", "{\"runsPerMonth\": -0}", &out), EE_EINVAL,
                 "%s", out);
    ee_free(out);
    ee_cost_table_free(t);
}

Test(cost_numbers, a_model_of_the_wrong_type_is_refused)
{
    ee_cost_table *t = cost_test_table();
    const char *models[] = {"42", "true", "null", "[\"openai/gpt-4o\"]", "{\"value\": 7}"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        char wf[256];
        snprintf(wf, sizeof wf, "{\"nodes\": [{\"name\": \"Chat\", \"type\": "
                                "\"@n8n/n8n-nodes-langchain.lmChatOpenAi\", \"parameters\": "
                                "{\"model\": %s}}]}", models[i]);
        char *out = NULL;
        ee_status st = ee_cost_estimate(t, wf, NULL, &out);
        cr_expect_eq(st, EE_EINVAL, "model %s: %s %s", models[i], ee_status_name(st), out);
        cr_expect_not_null(strstr(ee_error_last_message(), "parameters.model"), "%s",
                           ee_error_last_message());
        ee_free(out);
    }
    /* a string, or a resource locator's string, is a model */
    char *out = NULL;
    cr_expect_eq(ee_cost_estimate(t, "{\"nodes\": [{\"name\": \"Chat\", \"type\": "
                                     "\"@n8n/n8n-nodes-langchain.lmChatOpenAi\", \"parameters\": "
                                     "{\"model\": {\"__rl\": true, \"value\": \"gpt-4o-mini\"}}}]}",
                                  NULL, &out),
                 EE_OK, "%s", out);
    ee_free(out);
    ee_cost_table_free(t);
}

Test(cost_numbers, sub_nano_runs_add_up_over_the_month)
{
    ee_cost_table *t = cost_test_table();
    /* 0.0000000000004 USD a prompt token, nothing for completion: 1000
     * prompt tokens (the rules' default) cost 0.4 nano-USD a run */
    cr_assert_eq(ee_cost_table_load_prices_json(
                     t, "{\"data\": [{\"id\": \"openai/gpt-4o-mini\", \"pricing\": {\"prompt\": "
                        "\"0.0000000000004\", \"completion\": \"0\"}}]}"),
                 EE_OK, "%s", ee_error_last_message());
    char *out = NULL;
    cr_assert_eq(ee_cost_estimate(t, "[\"openai\"]", "{\"runsPerMonth\": 100}", &out), EE_OK,
                 "%s", out);
    json_t *doc = cost_test_doc(out);
    cr_expect_eq(cost_test_int(json_array_get(json_object_get(doc, "llmCalls"), 0),
                               "promptTokens"), 1000);
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perRun.nanoUsd"), 0);
    cr_expect_eq(cost_test_int(doc, "estimatedCost.perMonth.nanoUsd"), 40);
    json_decref(doc);
    ee_cost_table_free(t);
}
