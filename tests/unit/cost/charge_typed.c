/*
 * The typed charge and actual cost of lib/cost/cost.h against the public
 * JSON calls for the same input (ee_cost_charge(), ee_cost_actual()), and
 * their NULL and invalid arguments.
 */
#include "cost_test.h"

#include "cost/cost.h"

static long long money_of(const json_t *doc, const char *key)
{
    const json_t *m = json_object_get(doc, key);
    cr_assert(json_is_integer(json_object_get(m, "nanoUsd")), "%s has no nanoUsd", key);
    return (long long)json_integer_value(json_object_get(m, "nanoUsd"));
}

/* The typed charge equals the document for the same figures. */
static void expect_charge_matches(ee__cost_charge_input in)
{
    ee__cost_charge c;
    cr_assert_eq(ee__cost_charge_compute(&in, &c), EE_OK, "%s", ee_error_last_message());
    char *out = NULL;
    cr_assert_eq(ee_cost_charge(in.cost_nano, in.markup_bp, in.allowance_nano,
                                in.allowance_used_nano, in.platform_key, &out),
                 EE_OK);
    json_t *doc = cost_test_doc(out);
    cr_expect_eq(c.cost_nano, money_of(doc, "cost"));
    cr_expect_eq(c.marked_up_nano, money_of(doc, "markedUp"));
    cr_expect_eq(c.markup_nano, money_of(doc, "markedUp") - (in.platform_key ? c.cost_nano : 0));
    cr_expect_eq(c.allowance_used_nano, money_of(doc, "allowanceConsumed"));
    cr_expect_eq(c.charged_nano, money_of(doc, "charged"));
    cr_expect_eq(c.allowance_used_after_nano, money_of(doc, "allowanceUsedAfter"));
    cr_expect_eq(c.allowance_remaining_nano, money_of(doc, "allowanceRemaining"));
    cr_expect_eq(c.charged_nano + c.allowance_used_nano, c.marked_up_nano);
    json_decref(doc);
    /* and ee_cost_charge_calc() gives the same three numbers */
    int64_t charged = -1, consumed = -1, after = -1;
    cr_assert_eq(ee_cost_charge_calc(in.cost_nano, in.markup_bp, in.allowance_nano,
                                     in.allowance_used_nano, in.platform_key, &charged, &consumed,
                                     &after),
                 EE_OK);
    cr_expect_eq(charged, c.charged_nano);
    cr_expect_eq(consumed, c.allowance_used_nano);
    cr_expect_eq(after, c.allowance_used_after_nano);
}

Test(charge_typed, equals_the_public_document)
{
    /* {cost, markup bp, allowance, used, platform} */
    static const ee__cost_charge_input cases[] = {
        {1000000, 2000, 0, 0, true},                   /* no allowance: 1.2 x cost */
        {1000000, 2000, 10000000000, 0, true},         /* all free */
        {1000000, 2000, 1000000, 500000, true},        /* half free */
        {1000000, 2000, 1000000, 1000000, true},       /* allowance used up */
        {1000000, 2000, 1000000, 3000000, true},       /* used past the allowance */
        {5, 2500, 0, 0, true},                         /* 6.25 -> 6 (half-even) */
        {7, 5000, 0, 0, true},                         /* 10.5 -> 10 */
        {1000000, 2000, 10000000000, 42, false},       /* customer key: nothing */
        {0, 0, 0, 0, true},
        {INT64_MAX / 2, 0, 0, 0, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_charge_matches(cases[i]);
    ee__cost_charge c;
    cr_assert_eq(ee__cost_charge_compute(&cases[2], &c), EE_OK);
    cr_expect_eq(c.marked_up_nano, 1200000);
    cr_expect_eq(c.markup_nano, 200000);
    cr_expect_eq(c.allowance_used_nano, 500000);
    cr_expect_eq(c.charged_nano, 700000);
    /* 1.2 x 1000000 from an allowance of 10 USD of which 5000 nano was used */
    ee__cost_charge_input some_used = {1000000, 2000, 10000000000, 5000, true};
    expect_charge_matches(some_used);
    cr_assert_eq(ee__cost_charge_compute(&some_used, &c), EE_OK);
    cr_expect_eq(c.allowance_used_nano, 1200000);
    cr_expect_eq(c.charged_nano, 0);
    cr_expect_eq(c.allowance_used_after_nano, 1205000);
    cr_expect_eq(c.allowance_remaining_nano, 10000000000 - 1205000);
    cr_assert_eq(ee__cost_charge_compute(&cases[7], &c), EE_OK);
    cr_expect_eq(c.charged_nano + c.markup_nano + c.allowance_used_nano, 0);
    cr_expect_eq(c.allowance_used_after_nano, 42);
}

Test(charge_typed, null_and_invalid_arguments)
{
    ee__cost_charge c;
    ee__cost_charge_input ok = {100, 2000, 0, 0, true};
    cr_expect_eq(ee__cost_charge_compute(NULL, &c), EE_EINVAL);
    cr_expect_eq(ee__cost_charge_compute(&ok, NULL), EE_EINVAL);
    static const ee__cost_charge_input bad[] = {
        {-1, 0, 0, 0, true}, {1, -1, 0, 0, true}, {1, EE_COST_MARKUP_BP_MAX + 1, 0, 0, true},
        {1, 0, -1, 0, true}, {1, 0, 0, -1, true}, {INT64_MAX, 1, 0, 0, true}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c.charged_nano = 99;
        cr_expect_eq(ee__cost_charge_compute(&bad[i], &c), EE_EINVAL, "case %zu", i);
        cr_expect_eq(c.charged_nano, 0, "case %zu: out is zeroed", i);
        char *out = NULL;
        cr_expect_eq(ee_cost_charge(bad[i].cost_nano, bad[i].markup_bp, bad[i].allowance_nano,
                                    bad[i].allowance_used_nano, bad[i].platform_key, &out),
                     EE_EINVAL);
        ee_free(out);
    }
}

/* The typed actual cost equals ee_cost_actual()'s for the same calls. */
Test(charge_typed, actual_equals_the_public_document)
{
    ee_cost_table *t = cost_test_table();
    static const ee__cost_usage usage[] = {
        {"openai/gpt-4o-mini", 1200, 300, false, 0},
        {"anthropic/claude-3.5-sonnet", 10, 20, false, 0},
        {"acme/not-priced", 5, 7, true, 777},        /* the provider's cost wins */
        {NULL, 0, 0, true, 1},
        {"openai/gpt-4o-mini", 1, 1, false, 0},      /* sub-nano: rounded once, on the total */
    };
    static const char *const usage_json =
        "{\"usage\": [{\"model\": \"openai/gpt-4o-mini\", \"promptTokens\": 1200, \"completionTokens\": 300},"
        " {\"model\": \"anthropic/claude-3.5-sonnet\", \"promptTokens\": 10, \"completionTokens\": 20},"
        " {\"model\": \"acme/not-priced\", \"promptTokens\": 5, \"completionTokens\": 7, \"costNano\": 777},"
        " {\"costNano\": 1},"
        " {\"model\": \"openai/gpt-4o-mini\", \"promptTokens\": 1, \"completionTokens\": 1}]}";
    for (size_t n = 0; n <= 5; n++) {
        ee__cost_actual a;
        cr_assert_eq(ee__cost_actual_compute(t, usage, n, &a), EE_OK, "%s",
                     ee_error_last_message());
        /* the same first n entries through the JSON call */
        json_t *req = json_loads(usage_json, 0, NULL);
        json_t *arr = json_object_get(req, "usage");
        while (json_array_size(arr) > n)
            json_array_remove(arr, json_array_size(arr) - 1);
        char *text = json_dumps(req, JSON_COMPACT), *out = NULL;
        cr_assert_eq(ee_cost_actual(t, text, &out), EE_OK, "%s", out);
        json_t *doc = cost_test_doc(out);
        cr_expect_eq(a.cost_nano, money_of(doc, "cost"), "first %zu calls", n);
        cr_expect_eq(a.prompt_tokens, cost_test_int(doc, "promptTokens"));
        cr_expect_eq(a.completion_tokens, cost_test_int(doc, "completionTokens"));
        cr_expect_not(a.price_unknown);
        json_decref(doc);
        free(text);
        json_decref(req);
    }
    ee__cost_actual a;
    cr_assert_eq(ee__cost_actual_compute(t, usage, 2, &a), EE_OK);
    cr_expect_eq(a.cost_nano, 690000);

    /* The typed charge of that cost is the JSON call's "charge". */
    ee__cost_charge_input in = {a.cost_nano, 2000, 500000, 0, true};
    ee__cost_charge c;
    cr_assert_eq(ee__cost_charge_compute(&in, &c), EE_OK);
    char *out = NULL;
    cr_assert_eq(ee_cost_actual(t,
                                "{\"usage\": [{\"model\": \"openai/gpt-4o-mini\", \"promptTokens\": 1200,"
                                " \"completionTokens\": 300}, {\"model\": \"anthropic/claude-3.5-sonnet\","
                                " \"promptTokens\": 10, \"completionTokens\": 20}], \"charge\":"
                                " {\"platformKey\": true, \"markupBp\": 2000, \"allowanceNano\": 500000,"
                                " \"allowanceUsedNano\": 0}}",
                                &out),
                 EE_OK, "%s", out);
    json_t *doc = cost_test_doc(out);
    const json_t *charge = json_object_get(doc, "charge");
    cr_expect_eq(c.charged_nano, money_of(charge, "charged"));
    cr_expect_eq(c.allowance_used_nano, money_of(charge, "allowanceConsumed"));
    cr_expect_eq(c.marked_up_nano, money_of(charge, "markedUp"));
    json_decref(doc);
    ee_cost_table_free(t);
}

Test(charge_typed, actual_refuses_what_the_public_call_refuses)
{
    ee_cost_table *t = cost_test_table();
    ee__cost_actual a;
    ee__cost_usage one = {"openai/gpt-4o-mini", 1, 1, false, 0};
    cr_expect_eq(ee__cost_actual_compute(NULL, &one, 1, &a), EE_EINVAL);
    cr_expect_eq(ee__cost_actual_compute(t, &one, 1, NULL), EE_EINVAL);
    cr_expect_eq(ee__cost_actual_compute(t, NULL, 1, &a), EE_EINVAL);
    cr_expect_eq(ee__cost_actual_compute(t, &one, EE_COST_MAX_NODES + 1, &a), EE_ETOOBIG);
    static const ee__cost_usage bad[] = {
        {"openai/gpt-4o-mini", -1, 0, false, 0},
        {"openai/gpt-4o-mini", 0, INT64_C(9007199254740992), false, 0},
        {NULL, 1, 1, false, 0},          /* neither a cost nor a model */
        {"", 1, 1, false, 0},
        {"m", 0, 0, true, -5},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        a.cost_nano = 99;
        cr_expect_eq(ee__cost_actual_compute(t, &bad[i], 1, &a), EE_EINVAL, "case %zu", i);
        cr_expect_eq(a.cost_nano, 0);
    }
    ee__cost_usage unpriced = {"acme/not-priced", 10, 10, false, 0};
    cr_expect_eq(ee__cost_actual_compute(t, &unpriced, 1, &a), EE_EPRICE);
    char *out = NULL;
    cr_expect_eq(ee_cost_actual(t, "{\"usage\": [{\"model\": \"acme/not-priced\", "
                                   "\"promptTokens\": 10, \"completionTokens\": 10}]}", &out),
                 EE_EPRICE);
    ee_free(out);
    cr_expect_eq(ee__cost_actual_compute(t, NULL, 0, &a), EE_OK);
    cr_expect_eq(a.cost_nano, 0);
    ee_cost_table_free(t);
}

/* The typed estimate holds ee_cost_estimate()'s figures for the same workflow. */
static void expect_estimate_matches(ee_cost_table *t, const char *wf, int64_t runs)
{
    ee__cost_estimate est;
    cr_assert_eq(ee__cost_estimate_compute(t, wf, runs, &est), EE_OK, "%s: %s", wf,
                 ee_error_last_message());
    char opts[64], *out = NULL;
    snprintf(opts, sizeof opts, "{\"runsPerMonth\": %lld}", (long long)runs);
    cr_assert_eq(ee_cost_estimate(t, wf, runs >= 0 ? opts : NULL, &out), EE_OK, "%s", out);
    json_t *doc = cost_test_doc(out);
    const json_t *cost = json_object_get(doc, "estimatedCost");
    cr_expect_eq(est.per_run_nano, money_of(cost, "perRun"), "%s", wf);
    if (runs >= 0) {
        cr_expect_eq(est.per_month_nano, money_of(cost, "perMonth"));
        cr_expect_eq(est.runs_per_month, cost_test_int(doc, "runs_per_month"));
    } else {
        cr_expect(json_is_null(json_object_get(cost, "perMonth")));
        cr_expect_eq(est.runs_per_month, -1);
    }
    cr_expect_eq(est.price_unknown, json_is_true(json_object_get(cost, "priceUnknown")));
    cr_expect_eq(est.predictions_per_run, cost_test_int(doc, "predictions_per_run"));
    cr_expect_eq(est.external_calls, cost_test_int(doc, "external_api_calls"));
    cr_expect_eq(est.platform_calls, cost_test_int(doc, "platform_managed_calls"));
    cr_expect_eq(est.personal_calls, cost_test_int(doc, "personal_calls"));
    cr_expect_eq(est.steps, cost_test_int(doc, "steps"));
    static const char *const levels[] = {"low", "medium", "high"};
    cr_assert(est.complexity >= 0 && est.complexity <= 2);
    cr_expect_str_eq(levels[est.complexity], cost_test_str(doc, "complexity"));
    cr_expect_eq(est.n_llm_calls, json_array_size(json_object_get(doc, "llmCalls")));
    cr_expect_eq(est.n_unknown_node_types,
                 json_array_size(json_object_get(doc, "unknownNodeTypes")));
    json_decref(doc);
}

Test(charge_typed, estimate_equals_the_public_document)
{
    ee_cost_table *t = cost_test_table();
    expect_estimate_matches(t, "[\"serper\", \"firecrawl\", \"openai\", \"resend\"]", 30);
    expect_estimate_matches(t, "{\"nodes\": [\"serper\", \"gmail\", \"slack\"]}", -1);
    const char *wf =
        "{\"nodes\": ["
        "{\"name\": \"Start\", \"type\": \"n8n-nodes-base.manualTrigger\"},"
        "{\"name\": \"Mini\", \"type\": \"n8n-nodes-base.openAi\", \"parameters\": "
        "  {\"model\": \"gpt-4o-mini\", \"options\": {\"maxTokens\": 2000}}},"
        "{\"name\": \"Router\", \"type\": \"@n8n/n8n-nodes-langchain.lmChatOpenRouter\", "
        "  \"parameters\": {\"model\": \"meta-llama/llama-3.1-8b-instruct\"}},"
        "{\"name\": \"Mystery\", \"type\": \"community.mystery\", \"credentials\": "
        "  {\"mysteryApi\": {}}},"
        "{\"name\": \"Tidy\", \"type\": \"community.tidy\"}]}";
    expect_estimate_matches(t, wf, 100);
    expect_estimate_matches(t, wf, 0);
    ee__cost_estimate est;
    cr_assert_eq(ee__cost_estimate_compute(t, wf, 100, &est), EE_OK);
    cr_expect_eq(est.n_llm_calls, 2);
    cr_expect_gt(est.per_run_nano, 0);
    cr_expect_eq(est.n_unknown_node_types, 2);
    ee_cost_table_free(t);
}

Test(charge_typed, estimate_null_and_invalid_arguments)
{
    ee_cost_table *t = cost_test_table();
    ee__cost_estimate est;
    const char *wf = "[\"serper\"]";
    cr_expect_eq(ee__cost_estimate_compute(NULL, wf, -1, &est), EE_EINVAL);
    cr_expect_eq(ee__cost_estimate_compute(t, NULL, -1, &est), EE_EINVAL);
    cr_expect_eq(ee__cost_estimate_compute(t, wf, -1, NULL), EE_EINVAL);
    cr_expect_eq(ee__cost_estimate_compute(t, wf, -2, &est), EE_EINVAL);
    cr_expect_eq(ee__cost_estimate_compute(t, wf, INT64_C(1000000001), &est), EE_EINVAL);
    cr_expect_eq(ee__cost_estimate_compute(t, "{\"nodes\": 3}", -1, &est), EE_EPARSE);
    cr_expect_eq(ee__cost_estimate_compute(t, "[", -1, &est), EE_EPARSE);
    /* an LLM node whose model has no price: refused, no fallback here */
    cr_expect_eq(ee__cost_estimate_compute(t,
                                           "{\"nodes\": [{\"name\": \"X\", \"type\": "
                                           "\"n8n-nodes-base.openAi\", \"parameters\": "
                                           "{\"model\": \"acme/not-priced\"}}]}",
                                           -1, &est),
                 EE_EPRICE);
    cr_expect_eq(est.per_run_nano, 0);
    ee_cost_table_free(t);
    /* no rules loaded */
    ee_cost_table *empty = NULL;
    cr_assert_eq(ee_cost_table_new(&empty), EE_OK);
    cr_expect_eq(ee__cost_estimate_compute(empty, wf, -1, &est), EE_ESTATE);
    ee_cost_table_free(empty);
}
