/*
 * The per-user hourly rate limit is a sliding window: never more than N in
 * ANY 60 minutes, checked at the window's edges with the injected clock.
 */
#include "quota_test.h"

#define ORG "org-r"
#define MIN INT64_C(60000)

static ee_engine *rate_engine(void)
{
    qt_set_now(QT_T0);
    const char *kv[] = {"MAX_EXECUTIONS_PER_USER_PER_HOUR", "50", NULL};
    ee_engine *e = qt_engine_kv(NULL, NULL, kv);
    /* No rate in the plan: the config's MAX_EXECUTIONS_PER_USER_PER_HOUR applies. */
    qt_plan(e, "{\"name\": \"many\", \"predictionsPerPeriod\": -1, "
               "\"concurrentExecutionsPerWorkspace\": -1}");
    qt_subscribe(e, ORG, "many", QT_T0, NULL);
    return e;
}

static ee_status admit(ee_engine *e, ee_quota_subject *s, int64_t *retry_after)
{
    ee_quota_ticket t;
    ee_status st = ee_quota_admit_fast(e, s, 0, &t);
    if (st == EE_OK)
        cr_assert_eq(ee_quota_finish(e, &t, 1, 0), EE_OK);
    else if (retry_after != NULL)
        ee_quota_ticket_refusal(&t, NULL, NULL, NULL, NULL, retry_after);
    return st;
}

Test(ratelimit, fifty_per_hour_in_any_sixty_minutes_with_retry_after)
{
    ee_engine *e = rate_engine();
    ee_principal *p = qt_principal("ws-r", "u-r", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    /* 50 spread over t = 0 .. 59m59s: admission k at k x 73.4 s. */
    int64_t at[50];
    for (int k = 0; k < 50; k++) {
        at[k] = QT_T0 + (int64_t)k * (QT_HOUR - 1000) / 49;
        qt_set_now(at[k]);
        cr_assert_eq(admit(e, s, NULL), EE_OK, "admission %d", k);
    }
    cr_assert_eq(at[49], QT_T0 + QT_HOUR - 1000);
    int64_t retry = 0;
    cr_assert_eq(admit(e, s, &retry), EE_ERATELIMIT, "the 51st within the hour: rate %lld", (long long)qt_counter(e, "rate", "u-r"));
    cr_expect_eq(retry, 1000, "retry after %lld ms: when the oldest leaves", (long long)retry);
    qt_set_now(QT_T0 + QT_HOUR - 1);
    cr_assert_eq(admit(e, s, &retry), EE_ERATELIMIT);
    cr_expect_eq(retry, 1);
    /* Exactly when the oldest leaves the window, one more fits, and only one. */
    qt_set_now(QT_T0 + QT_HOUR);
    cr_assert_eq(admit(e, s, NULL), EE_OK);
    cr_assert_eq(admit(e, s, &retry), EE_ERATELIMIT);
    cr_expect_eq(retry, at[1] + QT_HOUR - (QT_T0 + QT_HOUR));
    /* Sliding, not fixed: every window of 60 minutes holds at most 50. */
    cr_expect_eq(qt_counter(e, "rate", "u-r"), 50);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(ratelimit, no_burst_of_twice_the_limit_across_an_hour_boundary)
{
    ee_engine *e = rate_engine();
    ee_principal *p = qt_principal("ws-r", "u-r", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    /* 50 at 0h59m: a fixed hourly window would allow 50 more at 1h01m. */
    qt_set_now(QT_T0 + 59 * MIN);
    for (int k = 0; k < 50; k++)
        cr_assert_eq(admit(e, s, NULL), EE_OK);
    qt_set_now(QT_T0 + 61 * MIN);
    int64_t retry = 0;
    cr_expect_eq(admit(e, s, &retry), EE_ERATELIMIT);
    cr_expect_eq(retry, 58 * MIN, "retry %lld", (long long)retry);
    qt_set_now(QT_T0 + 119 * MIN);
    for (int k = 0; k < 50; k++)
        cr_assert_eq(admit(e, s, NULL), EE_OK, "admission %d after the hour", k);
    cr_expect_eq(admit(e, s, NULL), EE_ERATELIMIT);
    /* Another user of the same organisation has their own 50. */
    ee_principal *p2 = qt_principal("ws-r", "u-other", ORG);
    ee_quota_subject *s2 = qt_subject(e, p2);
    cr_expect_eq(admit(e, s2, NULL), EE_OK);
    ee_quota_subject_free(s2);
    ee_principal_free(p2);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}
