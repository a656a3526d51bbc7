/*
 * The quota module's typed calls for other modules (lib/quota/quota.h):
 * admission by principal with the refusal and the predictions in C, the
 * refusal of a ticket, and the storage reservation's refusal - the same
 * figures the JSON API renders.
 */
#include "quota_test.h"
#include "quota/quota.h"

#define ORG "org-typed"

static ee_engine *tight_engine(void)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"typed\", \"predictionsPerPeriod\": 2, "
               "\"executionsPerUserPerHour\": 50, \"concurrentExecutionsPerWorkspace\": 1, "
               "\"monthlySpendCapNanoUsd\": 1000, \"storageBytes\": 1000}");
    qt_subscribe(e, ORG, "typed", QT_T0, NULL);
    return e;
}

Test(typed, admission_by_principal_answers_in_c)
{
    ee_engine *e = tight_engine();
    ee_principal *p = qt_principal("ws-t", "u-t", ORG);
    ee_quota_ticket a, b;
    ee__quota_refusal r;
    ee__quota_usage u;

    cr_assert_eq(ee__quota_admit(e, p, 100, &a, &r, &u), EE_OK, "%s", ee_error_last_message());
    cr_expect_null(r.quota, "no refusal on an admission");
    cr_expect_eq(u.usage, 1);
    cr_expect_eq(u.limit, 2);
    cr_expect_eq(u.remaining, 1);
    cr_expect_eq(u.resets_at_ms, QT_T0 + 30 * QT_DAY);
    cr_expect_eq(qt_counter(e, "pred", ORG), 1);
    cr_expect_eq(qt_counter(e, "spend", ORG), 100);
    cr_expect_eq(ee__quota_refusal_of(&a, &r), EE_OK);
    cr_expect_null(r.quota);

    /* The workspace's one slot is taken: refused on concurrency, nothing
     * consumed, the figures in C. */
    cr_assert_eq(ee__quota_admit(e, p, 0, &b, &r, &u), EE_ECONCURRENCY);
    cr_expect_eq(r.status, EE_ECONCURRENCY);
    cr_expect_str_eq(r.quota, "concurrency");
    cr_expect_eq(r.usage, 1);
    cr_expect_eq(r.limit, 1);
    cr_expect_eq(r.remaining, 0);
    cr_expect_eq(u.usage, 0, "no predictions figures on a refusal");
    cr_expect_eq(qt_counter(e, "pred", ORG), 1);
    ee__quota_refusal again;
    cr_expect_eq(ee__quota_refusal_of(&b, &again), EE_ECONCURRENCY);
    cr_expect_eq(memcmp(&again, &r, sizeof r), 0, "the ticket holds the same refusal");

    /* Finish with the public typed call; the spend cap refuses next. */
    cr_assert_eq(ee_quota_finish(e, &a, 1, 950), EE_OK);
    cr_assert_eq(ee__quota_admit(e, p, 100, &b, &r, NULL), EE_ESPEND);
    cr_expect_str_eq(r.quota, "spend");
    cr_expect_eq(r.usage, 950);
    cr_expect_eq(r.limit, 1000);
    cr_expect_eq(r.remaining, 50);
    cr_expect_gt(r.resets_at_ms, QT_T0);

    /* The last prediction, then the predictions quota. */
    cr_assert_eq(ee__quota_admit(e, p, 0, &a, NULL, NULL), EE_OK);
    cr_assert_eq(ee_quota_finish(e, &a, 1, 0), EE_OK);
    cr_assert_eq(ee__quota_admit(e, p, 0, &b, &r, &u), EE_EQUOTA);
    cr_expect_str_eq(r.quota, "predictions");
    cr_expect_eq(r.usage, 2);
    cr_expect_eq(r.limit, 2);
    cr_expect_eq(r.resets_at_ms, QT_T0 + 30 * QT_DAY);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(typed, bad_arguments_are_refused_before_anything_is_reserved)
{
    ee_engine *e = tight_engine();
    ee_principal *p = qt_principal("ws-t", "u-t", ORG);
    ee_quota_ticket t;
    ee__quota_refusal r;
    r.quota = "stale";
    cr_expect_eq(ee__quota_admit(NULL, p, 0, &t, &r, NULL), EE_EINVAL);
    cr_expect_null(r.quota, "the refusal is cleared on every call");
    cr_expect_eq(ee__quota_admit(e, NULL, 0, &t, &r, NULL), EE_EINVAL);
    cr_expect_eq(ee__quota_admit(e, p, 0, NULL, &r, NULL), EE_EINVAL);
    cr_expect_eq(ee__quota_admit(e, p, -1, &t, &r, NULL), EE_EINVAL);
    cr_expect_null(r.quota);
    cr_expect_eq(qt_counter(e, "pred", ORG), 0);
    cr_expect_eq(ee__quota_refusal_of(&t, NULL), EE_EINVAL);
    memset(&t, 0, sizeof t);
    cr_expect_eq(ee__quota_refusal_of(&t, &r), EE_EINVAL, "a ticket no admission filled");
    uint64_t id = 7;
    cr_expect_eq(ee__quota_storage_reserve(e, p, 0, &id, &r), EE_EINVAL);
    cr_expect_eq(ee__quota_storage_reserve(e, p, 10, NULL, &r), EE_EINVAL);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(typed, storage_refusal_in_c)
{
    ee_engine *e = tight_engine();
    ee_principal *p = qt_principal("ws-t", "u-t", ORG);
    uint64_t a = 0, b = 0;
    ee__quota_refusal r;
    cr_assert_eq(ee__quota_storage_reserve(e, p, 700, &a, &r), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_neq(a, 0);
    cr_expect_null(r.quota);
    cr_assert_eq(ee__quota_storage_reserve(e, p, 400, &b, &r), EE_EQUOTA);
    cr_expect_eq(b, 0);
    cr_expect_eq(r.status, EE_EQUOTA);
    cr_expect_str_eq(r.quota, "storage");
    cr_expect_eq(r.usage, 700);
    cr_expect_eq(r.limit, 1000);
    cr_expect_eq(r.remaining, 300);
    cr_expect_eq(r.requested, 400);
    /* The public call refuses alike (the detail is JSON there). */
    cr_expect_eq(ee_quota_storage_reserve(e, p, 400, &b), EE_EQUOTA);
    cr_assert_eq(ee_quota_storage_release(e, p, a), EE_OK);
    cr_expect_eq(ee__quota_storage_reserve(e, p, 400, &b, &r), EE_OK);
    ee_principal_free(p);
    ee_engine_close(e);
}
