/*
 * ee_quota_stats(): admissions and refusals by reason, counted by the
 * admission itself, exact under threads.
 */
#include <pthread.h>

#include "quota_test.h"

#define ORG "org-s"

typedef struct {
    long long admitted, refused_total, errors;
    long long pred, rate, conc, gconc, spend;
} qs;

static qs stats(ee_engine *e)
{
    char *out = NULL;
    cr_assert_eq(ee_quota_stats(e, &out), EE_OK, "%s", ee_error_last_message());
    qs r = {.admitted = qt_json_int(out, "admitted", NULL),
            .refused_total = qt_json_int(out, "refusedTotal", NULL),
            .errors = qt_json_int(out, "errors", NULL),
            .pred = qt_json_int(out, "refused", "predictions"),
            .rate = qt_json_int(out, "refused", "rate"),
            .conc = qt_json_int(out, "refused", "concurrency"),
            .gconc = qt_json_int(out, "refused", "concurrencyGlobal"),
            .spend = qt_json_int(out, "refused", "spend")};
    cr_assert_eq(qt_json_int(out, "since", NULL), QT_T0, "counted from the engine's open: %s",
                 out);
    ee_free(out);
    return r;
}

static ee_engine *tight_engine(void)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"tight\", \"predictionsPerPeriod\": 3, "
               "\"executionsPerUserPerHour\": 5, \"concurrentExecutionsPerWorkspace\": 2, "
               "\"monthlySpendCapNanoUsd\": 1000}");
    qt_subscribe(e, ORG, "tight", QT_T0, NULL);
    return e;
}

Test(quota_stats, a_new_engine_counts_nothing_and_arguments_are_checked)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qs s = stats(e);
    cr_expect_eq(s.admitted + s.refused_total + s.errors, 0);
    char *out = (char *)"untouched";
    cr_expect_eq(ee_quota_stats(NULL, &out), EE_EINVAL);
    cr_expect_eq(ee_quota_stats(e, NULL), EE_EINVAL);
    ee_free(out);
    ee_engine_close(e);
}

Test(quota_stats, each_refusal_counts_under_its_reason_and_each_admission_once)
{
    ee_engine *e = tight_engine();
    ee_principal *p = qt_principal("ws-a", "u-a", ORG);
    ee_quota_subject *sub = qt_subject(e, p);
    ee_quota_ticket a, b, t;

    cr_assert_eq(ee_quota_admit_fast(e, sub, 100, &a), EE_OK);
    cr_assert_eq(ee_quota_admit_fast(e, sub, 100, &b), EE_OK);
    cr_assert_eq(ee_quota_admit_fast(e, sub, 100, &t), EE_ECONCURRENCY);
    qs s = stats(e);
    cr_expect_eq(s.admitted, 2);
    cr_expect_eq(s.conc, 1);
    cr_expect_eq(s.refused_total, 1);
    cr_assert_eq(ee_quota_finish(e, &a, 1, 100), EE_OK);
    cr_assert_eq(ee_quota_finish(e, &b, 0, 0), EE_OK);

    /* spend: 100 spent, 950 more does not fit under 1000 */
    cr_assert_eq(ee_quota_admit_fast(e, sub, 950, &t), EE_ESPEND);
    s = stats(e);
    cr_expect_eq(s.spend, 1);

    /* rate: 5 admissions in the hour (2 above, 3 here), the 6th refused */
    qt_use(e, sub, 1);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(ee_quota_admit_fast(e, sub, 0, &t), EE_OK);
        cr_assert_eq(ee_quota_finish(e, &t, 0, 0), EE_OK);
    }
    cr_assert_eq(ee_quota_admit_fast(e, sub, 0, &t), EE_ERATELIMIT);
    s = stats(e);
    cr_expect_eq(s.admitted, 5);
    cr_expect_eq(s.rate, 1);

    /* predictions: an hour later, 2 of 3 used; one more, then refused - also
     * through the JSON door (ee_quota_admit) */
    qt_set_now(QT_T0 + QT_HOUR);
    qt_use(e, sub, 1);
    char *out = NULL;
    cr_assert_eq(ee_quota_admit(e, p, NULL, &out), EE_EQUOTA);
    ee_free(out);
    s = stats(e);
    cr_expect_eq(s.admitted, 6);
    cr_expect_eq(s.pred, 1);
    cr_expect_eq(s.conc, 1);
    cr_expect_eq(s.spend, 1);
    cr_expect_eq(s.rate, 1);
    cr_expect_eq(s.gconc, 0);
    cr_expect_eq(s.refused_total, 4);
    cr_expect_eq(s.errors, 0);
    ee_quota_subject_free(sub);
    ee_principal_free(p);
    ee_engine_close(e);
}

typedef struct {
    ee_engine *e;
    const ee_principal *p;
    int attempts;
    _Atomic int granted, refused;
    pthread_barrier_t *start;
} race;

static void *worker(void *arg)
{
    race *r = arg;
    ee_quota_subject *s = NULL;
    ee_status st = ee_quota_subject_new(&s, r->e, r->p);
    pthread_barrier_wait(r->start);
    for (int i = 0; st == EE_OK && i < r->attempts; i++) {
        ee_quota_ticket t;
        if (ee_quota_admit_fast(r->e, s, 0, &t) == EE_OK) {
            atomic_fetch_add(&r->granted, 1);
            ee_quota_finish(r->e, &t, 1, 0);
        } else {
            atomic_fetch_add(&r->refused, 1);
        }
    }
    ee_quota_subject_free(s);
    return NULL;
}

Test(quota_stats, eighty_threads_admitting_at_once_are_counted_exactly)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"t700\", \"predictionsPerPeriod\": 700, "
               "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": -1}");
    qt_subscribe(e, ORG, "t700", QT_T0, NULL);
    ee_principal *p = qt_principal("ws-a", "u-a", ORG);
    /* more threads than the counter has owned slots (64): the rest share one */
    enum { THREADS = 80, EACH = 10 };
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    race r = {.e = e, .p = p, .attempts = EACH, .start = &start};
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&tid[i], NULL, worker, &r);
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&start);
    cr_assert_eq(atomic_load(&r.granted), 700);
    qs s = stats(e);
    cr_expect_eq(s.admitted, 700);
    cr_expect_eq(s.pred, THREADS * EACH - 700);
    cr_expect_eq(s.refused_total, THREADS * EACH - 700);
    ee_principal_free(p);
    ee_engine_close(e);
}
