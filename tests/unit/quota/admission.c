/*
 * Admission on memory counters: exactness under threads (and the seed's
 * check-then-increment failing the same test), refusals that consume
 * nothing, crash recovery through leases, finish semantics, tickets.
 */
#include <pthread.h>
#include <sched.h>

#include "quota_test.h"
#include "engine/engine.h"
#include "quota/quota.h"

#define ORG "org-a"

/* ---- exactness ----------------------------------------------------------------------- */

typedef struct race {
    ee_engine *e;
    const ee_principal *p;
    int attempts;
    _Atomic int granted;
    _Atomic int refused;
    _Atomic int errors;
    pthread_barrier_t *start;
} race;

static void *admit_worker(void *arg)
{
    race *r = arg;
    ee_quota_subject *s = NULL;
    if (ee_quota_subject_new(&s, r->e, r->p) != EE_OK) {
        atomic_fetch_add(&r->errors, 1);
        pthread_barrier_wait(r->start);
        return NULL;
    }
    pthread_barrier_wait(r->start);
    for (int i = 0; i < r->attempts; i++) {
        ee_quota_ticket t;
        ee_status st = ee_quota_admit_fast(r->e, s, 0, &t);
        if (st == EE_OK) {
            atomic_fetch_add(&r->granted, 1);
            if (ee_quota_finish(r->e, &t, 1, 0) != EE_OK)
                atomic_fetch_add(&r->errors, 1);
        } else if (st == EE_EQUOTA) {
            atomic_fetch_add(&r->refused, 1);
        } else {
            atomic_fetch_add(&r->errors, 1);
        }
    }
    ee_quota_subject_free(s);
    return NULL;
}

/* Seed 2's checkPredictions() then updatePredictionsUsage(): read the usage,
 * compare, run, then increment - on a counter of its own. */
typedef struct racy {
    ee_counters *c;
    const char *key;
    int attempts;
    _Atomic int granted;
    pthread_barrier_t *start;
    pthread_barrier_t *checked;
} racy;

static void *racy_worker(void *arg)
{
    racy *r = arg;
    pthread_barrier_wait(r->start);
    for (int i = 0; i < r->attempts; i++) {
        ee_counter_result res;
        bool room = ee_counters_get(r->c, r->key, QT_T0, &res) == EE_OK && res.value < 1000;
        /* The first time, every thread has read the counter before any
         * updates it: the interleaving seed 2 loses to is forced, not left
         * to the scheduler (on a loaded machine the threads could take
         * turns and the control admit exactly 10 by luck). */
        if (i == 0)
            pthread_barrier_wait(r->checked);
        if (!room)
            continue; /* "Predictions limit exceeded" */
        atomic_fetch_add(&r->granted, 1);
        if (i > 0)
            usleep(2000); /* the workflow runs between the check and the update */
        ee_counter_req q = {r->key, 1, EE_COUNTERS_VALUE_MAX, 0, 0};
        int g = 0;
        if (ee_counters_reserve(r->c, &q, 60000, QT_T0, &res, &g) == EE_OK && g)
            ee_counters_commit(r->c, r->key, res.resv_id, EE_COUNTERS_ALL, QT_T0);
    }
    return NULL;
}

Test(admission, exactly_the_remaining_10_of_500_concurrent_runs_are_admitted)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"t1000\", \"predictionsPerPeriod\": 1000, "
               "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": -1}");
    qt_subscribe(e, ORG, "t1000", QT_T0, NULL);
    ee_principal *p = qt_principal("ws-a", "u-a", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 990);
    cr_assert_eq(qt_counter(e, "pred", ORG), 990);

    enum { THREADS = 20 };
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    race r = {.e = e, .p = p, .attempts = 500 / THREADS, .start = &start};
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&tid[i], NULL, admit_worker, &r);
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);
    cr_expect_eq(atomic_load(&r.errors), 0);
    cr_expect_eq(atomic_load(&r.granted), 10, "admitted %d", atomic_load(&r.granted));
    cr_expect_eq(atomic_load(&r.refused), 490);
    cr_expect_eq(qt_counter(e, "pred", ORG), 1000);

    /* The same race with seed 2's check-then-increment lets far more through. */
    ee_counters *c = ee__engine_counters(e);
    const char *key = "racy/pred/org-a";
    ee_counter_req q = {key, 990, EE_COUNTERS_VALUE_MAX, 0, 0};
    ee_counter_result res;
    int g = 0;
    cr_assert_eq(ee_counters_reserve(c, &q, 60000, QT_T0, &res, &g), EE_OK);
    cr_assert_eq(ee_counters_commit(c, key, res.resv_id, EE_COUNTERS_ALL, QT_T0), EE_OK);
    pthread_barrier_t start2, checked;
    pthread_barrier_init(&start2, NULL, THREADS);
    pthread_barrier_init(&checked, NULL, THREADS);
    racy rr = {.c = c, .key = key, .attempts = 500 / THREADS, .start = &start2,
               .checked = &checked};
    for (int i = 0; i < THREADS; i++)
        pthread_create(&tid[i], NULL, racy_worker, &rr);
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);
    cr_expect_gt(atomic_load(&rr.granted), 10,
                 "check-then-increment admitted only %d: the test would not catch the flaw",
                 atomic_load(&rr.granted));
    pthread_barrier_destroy(&start);
    pthread_barrier_destroy(&start2);
    pthread_barrier_destroy(&checked);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* ---- a refusal consumes nothing ------------------------------------------------------ */

typedef struct snap {
    int64_t pred, rate, conc, spend;
} snap;

static snap read_all(ee_engine *e)
{
    snap s = {qt_counter(e, "pred", ORG), qt_counter(e, "rate", "u-a"),
              qt_counter(e, "conc", "ws-a"), qt_counter(e, "spend", ORG)};
    return s;
}

static void expect_same(snap a, snap b, const char *what)
{
    cr_expect_eq(a.pred, b.pred, "%s: predictions %lld -> %lld", what, (long long)a.pred,
                 (long long)b.pred);
    cr_expect_eq(a.rate, b.rate, "%s: rate %lld -> %lld", what, (long long)a.rate,
                 (long long)b.rate);
    cr_expect_eq(a.conc, b.conc, "%s: concurrency %lld -> %lld", what, (long long)a.conc,
                 (long long)b.conc);
    cr_expect_eq(a.spend, b.spend, "%s: spend %lld -> %lld", what, (long long)a.spend,
                 (long long)b.spend);
}

/* Plan with every limit set: 3 predictions, 5 per hour, 2 at once, 1000 nano-USD. */
static ee_engine *limited_engine(void)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"tight\", \"predictionsPerPeriod\": 3, "
               "\"executionsPerUserPerHour\": 5, \"concurrentExecutionsPerWorkspace\": 2, "
               "\"monthlySpendCapNanoUsd\": 1000}");
    qt_subscribe(e, ORG, "tight", QT_T0, NULL);
    return e;
}

static void expect_refused(ee_engine *e, ee_quota_subject *s, int64_t cost, ee_status want,
                           const char *what, const char *quota)
{
    snap before = read_all(e);
    ee_quota_ticket t;
    ee_status st = ee_quota_admit_fast(e, s, cost, &t);
    cr_assert_eq(st, want, "%s: got %s (%s)", what, ee_status_name(st), ee_error_last_message());
    const char *q = NULL;
    cr_expect_eq(ee_quota_ticket_refusal(&t, &q, NULL, NULL, NULL, NULL), want);
    cr_expect_str_eq(q, quota);
    expect_same(before, read_all(e), what);
    cr_expect_eq(ee_quota_finish(e, &t, 1, 0), EE_EINVAL, "a refused ticket cannot be finished");
}

static void admit_fail(ee_engine *e, ee_quota_subject *s)
{
    ee_quota_ticket t;
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &t), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_finish(e, &t, 0, 0), EE_OK);
}

Test(admission, a_run_refused_by_any_one_limit_changes_no_counter)
{
    ee_engine *e = limited_engine();
    ee_principal *p = qt_principal("ws-a", "u-a", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    ee_quota_ticket a, b;

    /* Concurrency: two running, the third refused (everything else has room). */
    cr_assert_eq(ee_quota_admit_fast(e, s, 100, &a), EE_OK);
    cr_assert_eq(ee_quota_admit_fast(e, s, 100, &b), EE_OK);
    expect_refused(e, s, 100, EE_ECONCURRENCY, "concurrency", "concurrency");
    cr_assert_eq(ee_quota_finish(e, &a, 1, 100), EE_OK);
    cr_assert_eq(ee_quota_finish(e, &b, 0, 0), EE_OK); /* failed: prediction released */
    snap now = read_all(e);
    cr_expect_eq(now.pred, 1);
    cr_expect_eq(now.rate, 2);
    cr_expect_eq(now.conc, 0);
    cr_expect_eq(now.spend, 100);

    /* Spend: 100 spent, 950 more does not fit under 1000. */
    expect_refused(e, s, 950, EE_ESPEND, "spend", "spend");

    /* Rate: 5 in this hour (predictions 2 of 3 still have room). */
    qt_use(e, s, 1);
    admit_fail(e, s);
    admit_fail(e, s);
    cr_assert_eq(qt_counter(e, "rate", "u-a"), 5);
    cr_assert_eq(qt_counter(e, "pred", ORG), 2);
    qt_advance(10 * 60000);
    expect_refused(e, s, 0, EE_ERATELIMIT, "rate", "rate");
    ee_quota_ticket t;
    int64_t usage, limit, resets, retry;
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &t), EE_ERATELIMIT);
    cr_assert_eq(ee_quota_ticket_refusal(&t, NULL, &usage, &limit, &resets, &retry),
                 EE_ERATELIMIT);
    cr_expect_eq(usage, 5);
    cr_expect_eq(limit, 5);
    cr_expect_eq(retry, 50 * 60000, "retry after %lld", (long long)retry);

    /* Predictions: an hour later the rate has room; 2 of 3 used, one more, then refused. */
    qt_set_now(QT_T0 + QT_HOUR);
    qt_use(e, s, 1);
    expect_refused(e, s, 0, EE_EQUOTA, "predictions", "predictions");
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &t), EE_EQUOTA);
    cr_assert_eq(ee_quota_ticket_refusal(&t, NULL, &usage, &limit, &resets, NULL), EE_EQUOTA);
    cr_expect_eq(usage, 3);
    cr_expect_eq(limit, 3);
    cr_expect_eq(resets, QT_T0 + 30 * QT_DAY);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* ---- crash recovery, finish, renew ------------------------------------------------------- */

Test(admission, a_crashed_runs_reservation_and_slot_come_back_after_the_lease)
{
    ee_engine *e = limited_engine();
    ee_principal *p = qt_principal("ws-a", "u-a", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    ee_quota_ticket a, b, c;
    cr_assert_eq(ee_quota_admit_fast(e, s, 300, &a), EE_OK);
    cr_assert_eq(ee_quota_admit_fast(e, s, 300, &b), EE_OK);
    /* Both "crash": never finished. */
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &c), EE_ECONCURRENCY);
    cr_expect_eq(qt_counter(e, "pred", ORG), 2);
    cr_expect_eq(qt_counter(e, "spend", ORG), 600);
    /* Slot, prediction and spend are leased for runLeaseMs (15 minutes by
     * default); the rate units for their hour, whatever became of the run. */
    qt_advance(15 * 60000 - 1);
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &c), EE_ECONCURRENCY);
    qt_advance(1);
    cr_expect_eq(qt_counter(e, "conc", "ws-a"), 0);
    cr_expect_eq(qt_counter(e, "pred", ORG), 0, "the crashed runs' predictions came back");
    cr_expect_eq(qt_counter(e, "spend", ORG), 0);
    cr_expect_eq(qt_counter(e, "rate", "u-a"), 2, "rate units stay for the hour");
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &c), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_counter(e, "rate", "u-a"), 3);
    /* Finishing a crashed ticket late counts nothing and says so. */
    cr_expect_eq(ee_quota_finish(e, &a, 1, 300), EE_ENOTFOUND);
    cr_expect_eq(qt_counter(e, "pred", ORG), 1);
    cr_assert_eq(ee_quota_finish(e, &c, 1, 0), EE_OK);
    cr_expect_eq(ee_quota_finish(e, &c, 1, 0), EE_ESTATE, "finished twice");
    qt_advance(QT_HOUR - 15 * 60000);
    cr_expect_eq(qt_counter(e, "rate", "u-a"), 1, "the crashed runs' rate units ended");
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(admission, renew_keeps_a_long_run_and_failed_runs_consume_when_the_plan_says)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"consume\", \"predictionsPerPeriod\": 10, "
               "\"concurrentExecutionsPerWorkspace\": 1, \"failedRunsConsume\": true, "
               "\"executionsPerUserPerHour\": -1}");
    qt_subscribe(e, ORG, "consume", QT_T0, NULL);
    ee_principal *p = qt_principal("ws-a", "u-a", ORG);
    ee_quota_subject *s = qt_subject(e, p);
    ee_quota_ticket a, b;
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &a), EE_OK);
    /* No rate limit: leased for runLeaseMs (15 minutes), renewed every 10. */
    for (int i = 0; i < 3; i++) {
        qt_advance(600000);
        cr_assert_eq(ee_quota_renew(e, &a), EE_OK, "%s", ee_error_last_message());
    }
    qt_advance(600000); /* 40 minutes after admission, renewed 10 minutes ago */
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &b), EE_ECONCURRENCY);
    cr_assert_eq(ee_quota_finish(e, &a, 0, 0), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_counter(e, "pred", ORG), 1, "a failed run consumed its prediction");
    cr_expect_eq(qt_counter(e, "conc", "ws-a"), 0);
    cr_expect_eq(ee_quota_renew(e, &a), EE_ESTATE);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(admission, tickets_travel_as_json_and_the_json_api_answers_like_seed_2)
{
    ee_engine *e = limited_engine();
    ee_principal *p = qt_principal("ws-a", "u-a", ORG);
    char *out = NULL;
    cr_assert_eq(ee_quota_admit(e, p, "{\"estimatedCostNanoUsd\": 250}", &out), EE_OK, "%s",
                 out);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert(json_is_true(json_object_get(j, "allowed")), "%s", out);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(j, "predictions"),
                                                    "usage")), 1);
    char *ticket = json_dumps(json_object_get(j, "ticket"), JSON_COMPACT);
    json_decref(j);
    ee_free(out);
    cr_expect_eq(qt_counter(e, "conc", "ws-a"), 1);
    cr_assert_eq(ee_quota_finish_json(e, ticket, 1, 200), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_counter(e, "conc", "ws-a"), 0);
    cr_expect_eq(qt_counter(e, "spend", ORG), 200);
    cr_expect_eq(qt_counter(e, "pred", ORG), 1);
    cr_expect_eq(ee_quota_finish_json(e, ticket, 1, 200), EE_ENOTFOUND, "finished twice");
    cr_expect_eq(qt_counter(e, "pred", ORG), 1);
    free(ticket);
    cr_expect_eq(ee_quota_finish_json(e, "{\"v\": 1}", 1, 0), EE_EPARSE);

    /* Seed 2's check and usage. */
    cr_assert_eq(ee_quota_check(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "usage", NULL), 1);
    cr_expect_eq(qt_json_int(out, "limit", NULL), 3);
    cr_expect_eq(qt_json_int(out, "remaining", NULL), 2);
    cr_expect_eq(qt_json_int(out, "resetsAt", NULL), QT_T0 + 30 * QT_DAY);
    ee_free(out);
    cr_assert_eq(ee_quota_usage(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "predictions", "usage"), 1);
    cr_expect_eq(qt_json_int(out, "predictions", "limit"), 3);
    cr_expect_eq(qt_json_int(out, "rate", "limit"), 5);
    cr_expect_eq(qt_json_int(out, "concurrency", "limit"), 2);
    ee_free(out);

    /* A refusal as a document: 3 of 3 used. */
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 2);
    ee_quota_subject_free(s);
    cr_assert_eq(ee_quota_admit(e, p, NULL, &out), EE_EQUOTA);
    j = json_loads(out, 0, NULL);
    json_t *d = json_object_get(json_object_get(j, "error"), "detail");
    cr_expect(json_is_false(json_object_get(d, "allowed")), "%s", out);
    cr_expect_eq(json_integer_value(json_object_get(d, "usage")), 3);
    cr_expect_eq(json_integer_value(json_object_get(d, "limit")), 3);
    cr_expect_eq(json_integer_value(json_object_get(d, "remaining")), 0);
    cr_expect_eq(json_integer_value(json_object_get(d, "resetsAt")), QT_T0 + 30 * QT_DAY);
    cr_expect_str_eq(json_string_value(json_object_get(d, "error")),
                     "Predictions limit exceeded");
    json_decref(j);
    ee_free(out);
    cr_assert_eq(ee_quota_check(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "remaining", NULL), 0);
    cr_expect(strstr(out, "\"allowed\":false") != NULL, "%s", out);
    ee_free(out);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* ---- many organisations ------------------------------------------------------------- */

/* The module finds an organisation by a hash of its id: with 1,500 of them
 * (the table grown five times) each still answers its own plan, and its own
 * limit refuses it alone. */
Test(admission, many_organisations_each_keep_their_own_plan_and_limit)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"one\", \"predictionsPerPeriod\": 1, "
               "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": -1}");
    qt_plan(e, "{\"name\": \"two\", \"predictionsPerPeriod\": 2, "
               "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": -1}");
    enum { N = 1500 };
    char org[32];
    for (int i = 0; i < N; i++) {
        snprintf(org, sizeof org, "org-many-%d", i);
        qt_subscribe(e, org, i % 2 ? "one" : "two", QT_T0, NULL);
    }
    for (int round = 0; round < 2; round++) { /* the second finds them all seen */
        for (int i = 0; i < N; i++) {
            snprintf(org, sizeof org, "org-many-%d", i);
            ee_principal *p = qt_principal("ws-many", "u-many", org);
            char plan[EE_PRINCIPAL_ID_MAX + 1];
            cr_assert_eq(ee__quota_plan_of(e, p, plan), EE_OK, "%s", ee_error_last_message());
            cr_assert_str_eq(plan, i % 2 ? "one" : "two", "%s", org);
            ee_quota_subject *s = qt_subject(e, p);
            ee_quota_ticket t;
            ee_status st = ee_quota_admit_fast(e, s, 0, &t);
            /* "one" admits round 0 only, "two" both rounds */
            ee_status want = (i % 2 && round == 1) ? EE_EQUOTA : EE_OK;
            cr_assert_eq(st, want, "%s round %d: %s", org, round, ee_status_name(st));
            if (st == EE_OK)
                cr_assert_eq(ee_quota_finish(e, &t, 1, 0), EE_OK);
            ee_quota_subject_free(s);
            ee_principal_free(p);
        }
    }
    ee_engine_close(e);
}
