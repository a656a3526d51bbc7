/*
 * Numbers a plan, subscription or admission cannot represent are refused
 * (EE_EINVAL), never read as something else: a multiplier of 1e-400 was
 * taken as 0 (a limit of 0), -0 as 0. Spend past 2^53-1 is reported, never
 * dropped silently.
 */
#include "quota_test.h"

static ee_status plan_put(ee_engine *e, const char *json)
{
    return ee_quota_plan_put(e, json, NULL);
}

Test(quota_numbers, unrepresentable_numbers_are_refused)
{
    ee_engine *e = qt_engine();
    const char *bad_plans[] = {
        "{\"name\": \"p\", \"predictionsPerPeriod\": 10, \"multipliers\": {\"predictions\": "
        "1e-400}}",
        "{\"name\": \"p\", \"predictionsPerPeriod\": 10, \"multipliers\": {\"predictions\": "
        "0.0000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000001}}",
        "{\"name\": \"p\", \"predictionsPerPeriod\": -0}",
        "{\"name\": \"p\", \"predictionsPerPeriod\": 10, \"multipliers\": {\"spend\": -0.0}}",
        "{\"name\": \"p\", \"predictionsPerPeriod\": 10, \"multipliers\": {\"rate\": 2e-320}}",
    };
    for (size_t i = 0; i < sizeof bad_plans / sizeof bad_plans[0]; i++) {
        ee_status st = plan_put(e, bad_plans[i]);
        cr_expect_eq(st, EE_EINVAL, "%s: %s (%s)", bad_plans[i], ee_status_name(st),
                     ee_error_last_message());
        cr_expect_not_null(strstr(ee_error_last_message(), "cannot be represented"), "%s",
                           ee_error_last_message());
    }
    /* representable neighbours are fine: 0 is a real multiplier, a tiny
     * positive one rounds to its 4 decimals */
    cr_expect_eq(plan_put(e, "{\"name\": \"p\", \"predictionsPerPeriod\": 0, \"multipliers\": "
                             "{\"predictions\": 0, \"spend\": 0.0, \"rate\": 1e2}}"),
                 EE_OK, "%s", ee_error_last_message());
    /* the multiplier named in text is refused, and the string form too */
    cr_expect_eq(ee_quota_subscription_put(e, "{\"orgId\": \"o\", \"plan\": \"p\", "
                                              "\"multipliers\": {\"predictions\": 1e-400}}",
                                           NULL),
                 EE_EINVAL);
    char *out = NULL;
    ee_principal *p = qt_principal("ws", "u", "o");
    cr_expect_eq(ee_quota_admit(e, p, "{\"estimatedCostNanoUsd\": -0}", &out), EE_EINVAL, "%s",
                 out);
    ee_free(out);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(quota_numbers, spend_past_2_53_is_reported_not_dropped)
{
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"big\", \"predictionsPerPeriod\": -1, \"monthlySpendCapNanoUsd\": "
               "9007199254740991}");
    qt_subscribe(e, "o", "big", QT_T0, NULL);
    ee_principal *p = qt_principal("ws", "u", "o");
    ee_quota_subject *s = qt_subject(e, p);
    ee_quota_ticket a, b;
    cr_assert_eq(ee_quota_admit_fast(e, s, 1, &a), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_admit_fast(e, s, 1, &b), EE_OK, "%s", ee_error_last_message());
    /* a's actual cost fills the counter to 2^53-1 exactly */
    cr_assert_eq(ee_quota_finish(e, &a, 1, INT64_C(9007199254740990)), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(qt_counter(e, "spend", "o"), INT64_C(9007199254740991));
    /* b spent 10, 9 beyond its estimate: they cannot be counted */
    ee_status st = ee_quota_finish(e, &b, 1, 10);
    cr_expect_eq(st, EE_ETOOBIG, "%s (%s)", ee_status_name(st), ee_error_last_message());
    cr_expect_not_null(strstr(ee_error_last_message(), "9 nano-USD"), "%s",
                       ee_error_last_message());
    cr_expect_eq(qt_counter(e, "spend", "o"), INT64_C(9007199254740991));
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* A run admitted without an estimate reserves no spend; what it cost is
 * counted all the same at its finish (it was spent), with a cap or without:
 * the cap then refuses the next admissions. It failed to count at all. */
Test(quota_numbers, spend_without_an_estimate_is_counted_at_the_finish)
{
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"capped\", \"predictionsPerPeriod\": -1, "
               "\"monthlySpendCapNanoUsd\": 1000}");
    qt_plan(e, "{\"name\": \"open\", \"predictionsPerPeriod\": -1}");
    qt_subscribe(e, "o", "capped", QT_T0, NULL);
    qt_subscribe(e, "o2", "open", QT_T0, NULL);
    ee_principal *p = qt_principal("ws", "u", "o");
    ee_quota_subject *s = qt_subject(e, p);
    ee_quota_ticket a, b, c;
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &a), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &b), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_finish(e, &a, 1, 700), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_counter(e, "spend", "o"), 700);
    /* a failed run's spend was spent too */
    cr_assert_eq(ee_quota_finish(e, &b, 0, 400), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_counter(e, "spend", "o"), 1100);
    /* past the cap: an estimated run is refused */
    cr_expect_eq(ee_quota_admit_fast(e, s, 1, &c), EE_ESPEND, "%s", ee_error_last_message());
    ee_quota_subject_free(s);
    ee_principal_free(p);
    /* without a cap: counted for usage */
    p = qt_principal("ws2", "u", "o2");
    s = qt_subject(e, p);
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &a), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_finish(e, &a, 1, 123000), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_counter(e, "spend", "o2"), 123000);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}
