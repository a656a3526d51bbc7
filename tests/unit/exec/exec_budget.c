/*
 * A run's gateway budget (EXEC_RUN_BUDGET_MAX): a workflow without an
 * estimated cost used to get no budget at all, so a runaway one could
 * spend without bound. Here the fake n8n's "llm" webhook calls the
 * engine's gateway with the run's token (as the workflow's OpenRouter node
 * would), against an upstream that reports a cost per call, until the
 * gateway refuses; the run then fails with EE_ESPEND and says why.
 */
#include "exec_gateway.h"

#include <execengine/credentials.h>

#include "exec/exec_internal.h"

#define C_OPENROUTER "sk-or-v1-CANARY-budget-platform-41d2"
#define MAX_CALLS 6

static ee_engine *engine;
static ee_transport *transport;
static ee_n8n *client;
static int statuses[MAX_CALLS], n_statuses, upstream_calls;

/* What the workflow's OpenRouter node does: call the gateway with the
 * run's token, again and again, until it is refused. */
static void spend(const char *token)
{
    for (n_statuses = 0; n_statuses < MAX_CALLS;) {
        int status = gw_call(engine, token);
        statuses[n_statuses++] = status;
        if (status != 200)
            break;
    }
}

static ee_status http(void *ctx, const ee_http_request *req, ee_http_response *resp)
{
    if (gw_is_upstream(req)) {
        upstream_calls++;
        return gw_upstream_answer(resp, GW_UP_ANSWER);
    }
    gw_llm_webhook(req, spend);
    return fake_http(ctx, req, resp);
}

static void setup(void)
{
    (void)fake_engine_config; /* this engine has its own transport (the gateway's upstream) */
    fake_setup();
    gw_client_new(&transport, &client, http);
}

static void teardown(void)
{
    ee_engine_close(engine);
    ee_n8n_free(client);
    ee_transport_free(transport);
    fake_teardown();
}

TestSuite(exec_budget, .init = setup, .fini = teardown, .timeout = 60);

static void open_engine(const char *budget_max)
{
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "EXEC_WORKERS", "1");
    ee_test_config_set(cfg, "PLATFORM_OPENROUTER_KEY", C_OPENROUTER);
    if (budget_max != NULL)
        ee_test_config_set(cfg, "EXEC_RUN_BUDGET_MAX", budget_max);
    engine = gw_engine_open(cfg, transport, client);
}

Test(exec_budget, a_run_without_an_estimate_is_refused_past_the_cap_and_fails_saying_so)
{
    open_engine("0.0002"); /* 200000 nano: two calls of 123457 pass, the third is refused */
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-budget", "u1", "org-budget"), EE_OK);
    char wf[25], *out = NULL;
    entry_id(engine, "wfL", wf);
    ee_status st = ee_exec_run(engine, p, wf, NULL, &out);
    cr_assert(out != NULL);
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_eq(fake_hits("llm"), 1);
    cr_assert_eq(n_statuses, 3, "the gateway answered %d call(s) before refusing (first: %d)", n_statuses,
                 statuses[0]);
    cr_assert_eq(statuses[0], 200);
    cr_assert_eq(statuses[1], 200);
    cr_assert_eq(statuses[2], 402, "past the cap: %d", statuses[2]);
    cr_assert_eq(upstream_calls, 2, "the refused call reached the upstream");
    cr_assert_neq(st, EE_OK);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    char *text = json_dumps(rec, 0);
    cr_assert(strstr(text, "budget was spent") != NULL, "%s", text);
    cr_assert(strstr(text, "openrouter") != NULL, "%s", text);
    cr_assert(strstr(text, C_OPENROUTER) == NULL, "the platform key leaked: %s", text);
    free(text);
    json_decref(rec);
    ee_principal_free(p);
}

Test(exec_budget, the_default_cap_lets_a_cheap_run_through)
{
    open_engine(NULL); /* $1: six calls of 123457 nano are far below it */
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-budget", "u1", "org-budget"), EE_OK);
    char wf[25], *out = NULL;
    entry_id(engine, "wfL", wf);
    cr_assert_eq(ee_exec_run(engine, p, wf, NULL, &out), EE_OK, "%s", out ? out : "");
    json_t *rec = parse_doc(out);
    ee_free(out);
    cr_assert_str_eq(sget(rec, "status"), "completed");
    cr_assert_eq(n_statuses, MAX_CALLS);
    for (int i = 0; i < MAX_CALLS; i++)
        cr_assert_eq(statuses[i], 200);
    json_decref(rec);
    ee_principal_free(p);
}

Test(exec_budget, the_budget_is_the_estimate_times_the_factor_capped_never_unbounded)
{
    (void)open_engine;
    cr_assert_eq(ee__exec_run_budget(1000, 3, INT64_C(1000000000)), 3000);
    cr_assert_eq(ee__exec_run_budget(INT64_C(400000000), 3, INT64_C(1000000000)),
                 INT64_C(1000000000), "estimate x factor past the cap: the cap");
    cr_assert_eq(ee__exec_run_budget(0, 3, INT64_C(1000000000)), INT64_C(1000000000),
                 "no estimate: the cap");
    cr_assert_eq(ee__exec_run_budget(-5, 3, 7), 7);
    cr_assert_eq(ee__exec_run_budget(INT64_MAX / 2, 3, INT64_MAX), INT64_MAX,
                 "an overflowing product: the cap");
    cr_assert_eq(ee__exec_run_budget(0, 3, 0), 0, "a cap of 0: nothing may be spent");
}

static void put_plan(const char *plan_json, const char *org, const char *plan)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_plan_put(engine, plan_json, &out), EE_OK, "%s",
                 out ? out : ee_error_last_message());
    ee_free(out);
    char sub[256];
    snprintf(sub, sizeof sub, "{\"orgId\": \"%s\", \"plan\": \"%s\"}", org, plan);
    cr_assert_eq(ee_quota_subscription_put(engine, sub, &out), EE_OK, "%s",
                 out ? out : ee_error_last_message());
    ee_free(out);
}

static json_t *run_llm(const char *org, ee_status *st_out)
{
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-budget", "u1", org), EE_OK);
    char wf[25], *out = NULL;
    entry_id(engine, "wfL", wf);
    *st_out = ee_exec_run(engine, p, wf, NULL, &out);
    cr_assert(out != NULL);
    json_t *rec = parse_doc(out);
    ee_free(out);
    ee_principal_free(p);
    return rec;
}

Test(exec_budget, the_plans_per_run_cap_replaces_the_engine_default)
{
    open_engine(NULL); /* engine default $1 */
    put_plan("{\"name\": \"tight\", \"predictionsPerPeriod\": -1, "
             "\"runBudgetMaxNanoUsd\": 200000}",
             "org-tight", "tight");
    ee_status st;
    json_t *rec = run_llm("org-tight", &st);
    cr_assert_neq(st, EE_OK);
    cr_assert_str_eq(sget(rec, "status"), "failed");
    cr_assert_eq(n_statuses, 3, "answered %d call(s)", n_statuses);
    cr_assert_eq(statuses[2], 402, "past the plan's cap: %d", statuses[2]);
    cr_assert_eq(upstream_calls, 2);
    json_decref(rec);

    /* a plan above the engine default lets more through than the default would */
    put_plan("{\"name\": \"roomy\", \"predictionsPerPeriod\": -1, "
             "\"runBudgetMaxNanoUsd\": 100000000000}",
             "org-roomy", "roomy");
    upstream_calls = 0;
    rec = run_llm("org-roomy", &st);
    cr_assert_eq(st, EE_OK);
    cr_assert_str_eq(sget(rec, "status"), "completed");
    cr_assert_eq(n_statuses, MAX_CALLS);
    json_decref(rec);

    /* the plan is read back with its cap; -1 (unbounded) is refused */
    char *out = NULL;
    cr_assert_eq(ee_quota_plan_get(engine, "tight", &out), EE_OK);
    cr_assert(strstr(out, "\"runBudgetMaxNanoUsd\": 200000") != NULL ||
                  strstr(out, "\"runBudgetMaxNanoUsd\":200000") != NULL,
              "%s", out);
    ee_free(out);
    cr_assert_eq(ee_quota_plan_put(engine,
                                   "{\"name\": \"open\", \"predictionsPerPeriod\": -1, "
                                   "\"runBudgetMaxNanoUsd\": -1}",
                                   &out),
                 EE_EINVAL);
    cr_assert(strstr(ee_error_last_message(), "runBudgetMaxNanoUsd") != NULL, "%s",
              ee_error_last_message());
    ee_free(out);
}

Test(exec_budget, a_plan_without_a_cap_keeps_the_engine_default)
{
    open_engine("0.0002");
    put_plan("{\"name\": \"plain\", \"predictionsPerPeriod\": -1}", "org-plain", "plain");
    ee_status st;
    json_t *rec = run_llm("org-plain", &st);
    cr_assert_neq(st, EE_OK);
    cr_assert_eq(n_statuses, 3, "answered %d call(s)", n_statuses);
    cr_assert_eq(statuses[2], 402);
    json_decref(rec);
}
