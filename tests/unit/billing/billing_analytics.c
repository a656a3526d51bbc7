/*
 * Admin analytics (ee_billing_analytics) over execution records stored
 * with chosen times, statuses and durations: weeks start on Monday UTC,
 * months are billing months (BILLING_CYCLE_DAY), the average execution
 * time is over completed runs, and the spend block is the current billing
 * month beside the plan's spend cap in nano-USD (null when it has none).
 */
#include "billing_test.h"

#include "execengine/quota.h"
#include "exec/exec_internal.h"

#define WF_A "aaaaaaaaaaaaaaaaaaaaaaaa"
#define WF_B "bbbbbbbbbbbbbbbbbbbbbbbb"

static ee_engine *engine;
static ee_principal *ws1;
static int seq;

static void open_engine(const char *markup, const char *allowance, const char *cycle_day)
{
    engine = billing_engine(markup, allowance, cycle_day);
    cr_assert_eq(ee_principal_new(&ws1, "ws-1", "u1", "org-1"), EE_OK);
}

static void setup(void)
{
    atomic_store(&test_now, T_2026_03_01 + DAY_MS); /* 2026-03-02 */
    engine = NULL;
    ws1 = NULL;
    seq = 0;
}

static void teardown(void)
{
    ee_principal_free(ws1);
    ee_engine_close(engine);
}

TestSuite(billing_analytics, .init = setup, .fini = teardown, .timeout = 60);

/* Store one execution of ws-1 created at `created`; an ended one ran
 * `exec_ms`. */
static void put_run(const char *user, const char *wf, int64_t created, x_status status,
                    int64_t exec_ms)
{
    x_rec r;
    memset(&r, 0, sizeof r);
    snprintf(r.id, sizeof r.id, "%024x", 0xa11a00 + seq++);
    snprintf(r.workflow_id, sizeof r.workflow_id, "%s", wf);
    snprintf(r.workspace, sizeof r.workspace, "ws-1");
    r.user_id = strdup(user);
    r.org_id = strdup("org-1");
    r.status = status;
    r.input = json_object();
    r.created_at = created;
    if (x_final(status)) {
        r.started_at = created + 1;
        r.exec_ms = exec_ms;
        r.completed_at = created + 1 + exec_ms;
    }
    cr_assert_eq(ee__exec_insert(engine, &r), EE_OK, "%s", ee_error_last_message());
    ee__exec_rec_clear(&r);
}

static json_t *analytics(const char *query)
{
    char *out = NULL;
    ee_status st = ee_billing_analytics(engine, ws1, query, &out);
    cr_assert_eq(st, EE_OK, "ee_billing_analytics(%s): %s", query, out);
    json_t *doc = json_loads(out, 0, NULL);
    cr_assert_not_null(doc, "%s", out);
    ee_free(out);
    return doc;
}

/* The buckets as "start=count start=count ...". */
static void expect_buckets(const json_t *doc, const char *want)
{
    char got[512] = "";
    const json_t *ex = json_object_get(doc, "executions");
    for (size_t i = 0; i < json_array_size(ex); i++) {
        const json_t *b = json_array_get(ex, i);
        char one[64];
        snprintf(one, sizeof one, "%s%s=%lld", i > 0 ? " " : "",
                 json_string_value(json_object_get(b, "start")),
                 (long long)json_integer_value(json_object_get(b, "count")));
        strncat(got, one, sizeof got - strlen(got) - 1);
    }
    cr_expect_str_eq(got, want);
}

Test(billing_analytics, weeks_start_on_monday_utc)
{
    open_engine(NULL, NULL, NULL);
    /* 2026-03-01 is a Sunday: its last millisecond is in the week of
     * Monday 2026-02-23; Monday 2026-03-02 00:00 starts the next week */
    put_run("u1", WF_A, T_2026_03_01 + DAY_MS - 1, X_COMPLETED, 10);
    put_run("u1", WF_A, T_2026_03_01 + DAY_MS, X_COMPLETED, 10);
    put_run("u1", WF_A, T_2026_03_01 + 8 * DAY_MS - 1, X_COMPLETED, 10); /* Sunday 03-08 */
    put_run("u1", WF_A, T_2026_03_01 + 8 * DAY_MS, X_COMPLETED, 10);     /* Monday 03-09 */
    char q[160];
    snprintf(q, sizeof q, "{\"from\": %lld, \"to\": %lld, \"granularity\": \"week\"}",
             (long long)(T_2026_03_01 - 7 * DAY_MS), (long long)(T_2026_03_01 + 14 * DAY_MS));
    json_t *doc = analytics(q);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "granularity")), "week");
    expect_buckets(doc, "2026-02-23T00:00:00.000Z=1 2026-03-02T00:00:00.000Z=2 "
                        "2026-03-09T00:00:00.000Z=1");
    cr_expect_eq(json_integer_value(json_object_get(doc, "totalExecutions")), 4);
    json_decref(doc);
    /* the same runs by day: four days */
    snprintf(q, sizeof q, "{\"from\": %lld, \"to\": %lld}",
             (long long)(T_2026_03_01 - 7 * DAY_MS), (long long)(T_2026_03_01 + 14 * DAY_MS));
    doc = analytics(q);
    expect_buckets(doc, "2026-03-01T00:00:00.000Z=1 2026-03-02T00:00:00.000Z=1 "
                        "2026-03-08T00:00:00.000Z=1 2026-03-09T00:00:00.000Z=1");
    json_decref(doc);
}

Test(billing_analytics, months_are_billing_months_starting_on_the_cycle_day)
{
    open_engine(NULL, NULL, "5");
    put_run("u1", WF_A, T_2026_03_01 + 4 * DAY_MS - 1, X_COMPLETED, 10); /* 03-04, last ms */
    put_run("u1", WF_A, T_2026_03_01 + 4 * DAY_MS, X_COMPLETED, 10);     /* 03-05 00:00 */
    put_run("u1", WF_A, T_2026_03_01 + 34 * DAY_MS, X_COMPLETED, 10);    /* 04-04 */
    put_run("u1", WF_A, T_2026_03_01 + 35 * DAY_MS, X_COMPLETED, 10);    /* 04-05 */
    char q[160];
    snprintf(q, sizeof q, "{\"from\": %lld, \"to\": %lld, \"granularity\": \"month\"}",
             (long long)T_2026_03_01, (long long)(T_2026_03_01 + 40 * DAY_MS));
    json_t *doc = analytics(q);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "granularity")), "month");
    expect_buckets(doc, "2026-02-05T00:00:00.000Z=1 2026-03-05T00:00:00.000Z=2 "
                        "2026-04-05T00:00:00.000Z=1");
    json_decref(doc);
}

Test(billing_analytics, average_time_is_over_completed_runs_and_success_over_ended_ones)
{
    open_engine(NULL, NULL, NULL);
    int64_t t = T_2026_03_01 + 3600000;
    put_run("u1", WF_A, t, X_COMPLETED, 100);
    put_run("u2", WF_A, t + 1, X_COMPLETED, 200);
    put_run("u1", WF_B, t + 2, X_COMPLETED, 400);
    put_run("u3", WF_B, t + 3, X_FAILED, 9999);   /* ended, not completed: no time */
    put_run("u3", WF_A, t + 4, X_CANCELLED, 50);  /* ended, not completed */
    put_run("u4", WF_B, t + 5, X_RUNNING, 0);     /* not ended */
    char q[160];
    snprintf(q, sizeof q, "{\"from\": %lld, \"to\": %lld}", (long long)T_2026_03_01,
             (long long)(T_2026_03_01 + DAY_MS));
    json_t *doc = analytics(q);
    cr_expect_eq(json_integer_value(json_object_get(doc, "totalExecutions")), 6);
    cr_expect_eq(json_integer_value(json_object_get(doc, "uniqueUsers")), 4);
    /* (100 + 200 + 400) / 3, in whole ms */
    cr_expect_eq(json_integer_value(json_object_get(doc, "averageExecutionTimeMs")), 233);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "successRate")), "0.6000");
    const json_t *top = json_object_get(doc, "topWorkflows");
    cr_assert_eq(json_array_size(top), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(top, 0), "workflowId")),
                     WF_A, "3 runs each: the smaller id first");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(top, 0), "executions")), 3);
    json_decref(doc);
    /* nothing completed in a range: null, not 0 */
    snprintf(q, sizeof q, "{\"from\": %lld, \"to\": %lld}", (long long)(t + 3),
             (long long)(T_2026_03_01 + DAY_MS));
    doc = analytics(q);
    cr_expect(json_is_null(json_object_get(doc, "averageExecutionTimeMs")));
    cr_expect_str_eq(json_string_value(json_object_get(doc, "successRate")), "0.0000");
    json_decref(doc);
}

static void put_plan(const char *body)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_plan_put(engine, body, &out), EE_OK, "%s", out);
    ee_free(out);
}

static void subscribe(const char *body)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_subscription_put(engine, body, &out), EE_OK, "%s", out);
    ee_free(out);
}

Test(billing_analytics, spend_is_this_billing_month_beside_the_plans_cap_in_nano_usd)
{
    open_engine("20", "0.000001", NULL); /* 1000 nano-USD free */
    /* 500 -> 600 marked up, all free; 1000 -> 1200: 400 free, 800 charged */
    static const int64_t costs[] = {500, 1000};
    for (int i = 0; i < 2; i++) {
        ee__billing_exec x = {.workspace = "ws-1", .user_id = "u1", .workflow_id = WF_A,
                              .execution_id = i ? "e2" : "e1",
                              .ended_at = atomic_load(&test_now), .cost_nano = costs[i],
                              .tokens = 10, .exec_ms = 5, .platform_key = true,
                              .completed = true};
        ee__billing_charge c;
        cr_assert_eq(book(engine, &x, &c), EE_OK, "%s", ee_error_last_message());
    }
    json_t *doc = analytics(NULL);
    json_t *sp = json_object_get(doc, "spend");
    char *text = json_dumps(sp, JSON_COMPACT);
    cr_expect_str_eq(json_string_value(json_object_get(sp, "month")), "2026-03", "%s", text);
    cr_expect_eq(json_integer_value(json_object_get(sp, "allowance")), 1000, "%s", text);
    cr_expect_eq(json_integer_value(json_object_get(sp, "allowanceUsed")), 1000, "%s", text);
    cr_expect_eq(json_integer_value(json_object_get(sp, "charged")), 800, "%s", text);
    /* data/plans.json's default plan "free": a $10 cap, as a number of nano-USD */
    cr_expect_str_eq(json_string_value(json_object_get(sp, "plan")), "free", "%s", text);
    cr_assert(json_is_integer(json_object_get(sp, "spendCap")), "%s", text);
    cr_expect_eq(json_integer_value(json_object_get(sp, "spendCap")), 10 * NANO, "%s", text);
    free(text);
    json_decref(doc);

    /* a plan without a cap: null */
    put_plan("{\"name\": \"uncapped\", \"predictionsPerPeriod\": 100, "
             "\"monthlySpendCapNanoUsd\": -1}");
    subscribe("{\"orgId\": \"org-1\", \"plan\": \"uncapped\"}");
    doc = analytics(NULL);
    sp = json_object_get(doc, "spend");
    text = json_dumps(sp, JSON_COMPACT);
    cr_expect_str_eq(json_string_value(json_object_get(sp, "plan")), "uncapped", "%s", text);
    cr_expect(json_is_null(json_object_get(sp, "spendCap")), "%s", text);
    free(text);
    json_decref(doc);

    /* the organisation's cap: the plan's times its spend multiplier */
    put_plan("{\"name\": \"capped\", \"predictionsPerPeriod\": 100, "
             "\"monthlySpendCapNanoUsd\": 3000000000}");
    subscribe("{\"orgId\": \"org-1\", \"plan\": \"capped\", \"multipliers\": {\"spend\": \"2\"}}");
    doc = analytics(NULL);
    sp = json_object_get(doc, "spend");
    text = json_dumps(sp, JSON_COMPACT);
    cr_expect_eq(json_integer_value(json_object_get(sp, "spendCap")), 6 * NANO, "%s", text);
    free(text);
    json_decref(doc);
}
