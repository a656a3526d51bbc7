/*
 * Periods and plans: renewal at the period boundary with the clock moved
 * (rolling 30 days and calendar months on BILLING_CYCLE_DAY), unlimited
 * plans, a plan change mid-period, multipliers (seed 2's premium doubling)
 * as exact data, plan and subscription documents.
 */
#include "quota/quota_internal.h"
#include "quota_test.h"

#define ORG "org-p"

/* 2024-03-15T00:00:00Z and friends (days since the epoch x 86400000). */
#define MAR15_2024 INT64_C(1710460800000)
#define APR15_2024 INT64_C(1713139200000)
#define FEB15_2024 INT64_C(1707955200000)
#define JAN01_2025 INT64_C(1735689600000)
#define DEC01_2024 INT64_C(1733011200000)

Test(periods, calendar_months_start_on_the_billing_cycle_day_in_utc)
{
    int64_t from, to;
    ee__quota_month(15, MAR15_2024, &from, &to);
    cr_expect_eq(from, MAR15_2024);
    cr_expect_eq(to, APR15_2024);
    ee__quota_month(15, MAR15_2024 - 1, &from, &to);
    cr_expect_eq(from, FEB15_2024);
    cr_expect_eq(to, MAR15_2024);
    ee__quota_month(1, JAN01_2025 - 1, &from, &to); /* across a year end */
    cr_expect_eq(from, DEC01_2024);
    cr_expect_eq(to, JAN01_2025);
    ee__quota_period(Q_PERIOD_ROLLING, QT_T0, 1, QT_T0 + 31 * QT_DAY, &from, &to);
    cr_expect_eq(from, QT_T0 + 30 * QT_DAY);
    cr_expect_eq(to, QT_T0 + 60 * QT_DAY);
    ee__quota_period(Q_PERIOD_ROLLING, QT_T0, 1, QT_T0 - 1, &from, &to);
    cr_expect_eq(from, QT_T0 - 30 * QT_DAY);
    cr_expect_eq(to, QT_T0);
}

static void expect_status(ee_engine *e, ee_quota_subject *s, ee_status want)
{
    ee_quota_ticket t;
    ee_status st = ee_quota_admit_fast(e, s, 0, &t);
    cr_assert_eq(st, want, "at %lld: %s (%s)", (long long)ee_engine_now_ms(e),
                 ee_status_name(st), ee_error_last_message());
    if (st == EE_OK)
        cr_assert_eq(ee_quota_finish(e, &t, 1, 0), EE_OK);
}

Test(periods, rolling_30_days_renew_exactly_at_the_boundary)
{
    int64_t start = QT_T0 + 5 * QT_HOUR;
    qt_set_now(start);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"r5\", \"predictionsPerPeriod\": 5, \"period\": \"rolling30d\"}");
    qt_subscribe(e, ORG, "r5", start, NULL);
    ee_principal *p = qt_principal("ws-p", "u-p", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 5);
    expect_status(e, s, EE_EQUOTA);
    qt_set_now(start + 30 * QT_DAY - 1);
    expect_status(e, s, EE_EQUOTA);
    qt_set_now(start + 30 * QT_DAY);
    expect_status(e, s, EE_OK);
    cr_expect_eq(qt_counter(e, "pred", ORG), 1, "the new period starts from 0");
    char *out = NULL;
    cr_assert_eq(ee_quota_check(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "resetsAt", NULL), start + 60 * QT_DAY);
    ee_free(out);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(periods, calendar_months_renew_on_the_billing_cycle_day)
{
    qt_set_now(MAR15_2024 - QT_DAY);
    const char *kv[] = {"BILLING_CYCLE_DAY", "15", NULL};
    ee_engine *e = qt_engine_kv(NULL, NULL, kv);
    qt_plan(e, "{\"name\": \"c2\", \"predictionsPerPeriod\": 2, \"period\": \"calendarMonth\"}");
    qt_subscribe(e, ORG, "c2", QT_T0, NULL);
    ee_principal *p = qt_principal("ws-p", "u-p", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 2);
    ee_quota_ticket t;
    int64_t resets;
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &t), EE_EQUOTA);
    ee_quota_ticket_refusal(&t, NULL, NULL, NULL, &resets, NULL);
    cr_expect_eq(resets, MAR15_2024);
    qt_set_now(MAR15_2024 - 1);
    expect_status(e, s, EE_EQUOTA);
    qt_set_now(MAR15_2024);
    expect_status(e, s, EE_OK);
    expect_status(e, s, EE_OK);
    expect_status(e, s, EE_EQUOTA);
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &t), EE_EQUOTA);
    ee_quota_ticket_refusal(&t, NULL, NULL, NULL, &resets, NULL);
    cr_expect_eq(resets, APR15_2024);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(periods, unlimited_plans_admit_and_still_count)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_subscribe(e, ORG, "enterprise", QT_T0, NULL); /* data/plans.json: -1 predictions */
    ee_principal *p = qt_principal("ws-p", "u-p", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 300);
    cr_expect_eq(qt_counter(e, "pred", ORG), 300);
    char *out = NULL;
    cr_assert_eq(ee_quota_check(e, p, &out), EE_OK);
    cr_expect(strstr(out, "\"allowed\":true") != NULL, "%s", out);
    cr_expect_eq(qt_json_int(out, "limit", NULL), -1);
    cr_expect_eq(qt_json_int(out, "remaining", NULL), -1);
    cr_expect_eq(qt_json_int(out, "usage", NULL), 300);
    ee_free(out);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(periods, a_plan_change_mid_period_keeps_the_usage)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"small\", \"predictionsPerPeriod\": 4}");
    qt_plan(e, "{\"name\": \"big\", \"predictionsPerPeriod\": 6}");
    qt_subscribe(e, ORG, "small", QT_T0, NULL);
    ee_principal *p = qt_principal("ws-p", "u-p", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 4);
    expect_status(e, s, EE_EQUOTA);
    qt_advance(QT_DAY);
    qt_subscribe(e, ORG, "big", QT_T0, NULL); /* raised: 2 more */
    expect_status(e, s, EE_OK);
    expect_status(e, s, EE_OK);
    expect_status(e, s, EE_EQUOTA);
    cr_expect_eq(qt_counter(e, "pred", ORG), 6);
    qt_plan(e, "{\"name\": \"big\", \"predictionsPerPeriod\": 3}"); /* the plan itself lowered */
    expect_status(e, s, EE_EQUOTA);
    cr_expect_eq(qt_counter(e, "pred", ORG), 6, "usage kept when the limit went down");
    char *out = NULL;
    cr_assert_eq(ee_quota_check(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "limit", NULL), 3);
    cr_expect_eq(qt_json_int(out, "remaining", NULL), 0);
    ee_free(out);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(periods, premium_doubles_the_limit_as_data)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    ee_principal *p = qt_principal("ws-p", "u-p", ORG);
    char *out = NULL;
    /* data/plans.json: premium = 10000 x "2". */
    qt_subscribe(e, ORG, "premium", QT_T0, NULL);
    cr_assert_eq(ee_quota_check(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "limit", NULL), 20000);
    ee_free(out);
    /* The same rule on a plan written with a JSON number, and a subscription
     * multiplier on top (exact decimals, floor). */
    qt_plan(e, "{\"name\": \"prem2\", \"predictionsPerPeriod\": 1001, "
               "\"multipliers\": {\"predictions\": 2.0}}");
    qt_subscribe(e, ORG, "prem2", QT_T0, "{\"predictions\": \"150%\"}");
    cr_assert_eq(ee_quota_check(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "limit", NULL), 3003, "%s", out); /* 1001 x 2 x 1.5 */
    ee_free(out);
    qt_subscribe(e, ORG, "prem2", QT_T0, "{\"predictions\": 0.1}");
    cr_assert_eq(ee_quota_check(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "limit", NULL), 200, "%s", out); /* floor(2002 x 0.1) */
    ee_free(out);
    /* Bad multipliers are refused with the field named. */
    cr_expect_eq(ee_quota_plan_put(e, "{\"name\": \"x\", \"predictionsPerPeriod\": 1, "
                                      "\"multipliers\": {\"predictions\": \"two\"}}",
                                   NULL),
                 EE_EINVAL);
    cr_expect(strstr(ee_error_last_message(), "predictions") != NULL);
    cr_expect_eq(ee_quota_plan_put(e, "{\"name\": \"x\", \"predictionsPerPeriod\": 1, "
                                      "\"multipliers\": {\"predictions\": 1.00001}}",
                                   NULL),
                 EE_EINVAL);
    cr_expect_eq(ee_quota_plan_put(e, "{\"name\": \"x\", \"predictionsPerPeriod\": 1, "
                                      "\"predictionPerPeriod\": 2}", NULL),
                 EE_EINVAL);
    cr_expect_eq(ee_quota_subscription_put(e, "{\"orgId\": \"o\", \"plan\": \"nope\"}", NULL),
                 EE_ENOTFOUND);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(periods, plans_are_data_file_defaults_and_stored_overrides)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    char *out = NULL;
    cr_assert_eq(ee_quota_plan_get(e, "free", &out), EE_OK);
    cr_expect(strstr(out, "\"source\":\"file\"") != NULL, "%s", out);
    cr_expect_eq(qt_json_int(out, "predictionsPerPeriod", NULL), 1000);
    ee_free(out);
    qt_plan(e, "{\"name\": \"free\", \"predictionsPerPeriod\": 7}");
    cr_assert_eq(ee_quota_plan_get(e, "free", &out), EE_OK);
    cr_expect(strstr(out, "\"source\":\"storage\"") != NULL, "%s", out);
    cr_expect_eq(qt_json_int(out, "predictionsPerPeriod", NULL), 7);
    ee_free(out);
    cr_assert_eq(ee_quota_plan_list(e, &out), EE_OK);
    json_t *j = json_loads(out, 0, NULL);
    cr_expect_eq(json_array_size(json_object_get(j, "plans")), 4, "%s", out);
    json_decref(j);
    ee_free(out);
    /* No subscription: the default plan, with config defaults for rate and slots. */
    ee_principal *p = qt_principal("ws-p", "u-p", ORG);
    cr_assert_eq(ee_quota_usage(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "predictions", "limit"), 7);
    cr_expect_eq(qt_json_int(out, "rate", "limit"), 50);
    cr_expect_eq(qt_json_int(out, "concurrency", "limit"), 10);
    ee_free(out);
    cr_assert_eq(ee_quota_plan_delete(e, "free"), EE_OK);
    cr_expect_eq(ee_quota_plan_delete(e, "free"), EE_ENOTFOUND);
    cr_assert_eq(ee_quota_check(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "limit", NULL), 1000);
    ee_free(out);
    cr_expect_eq(ee_quota_subscription_get(e, ORG, &out), EE_ENOTFOUND);
    ee_free(out);
    qt_subscribe(e, ORG, "pro", QT_T0, NULL);
    cr_assert_eq(ee_quota_subscription_get(e, ORG, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "limits", "executionsPerUserPerHour"), 200);
    ee_free(out);
    ee_principal_free(p);
    ee_engine_close(e);
}
