/*
 * Threshold alerts (80 % and 95 %) fire once per threshold per period, also
 * under concurrent admissions, and write an audit entry; the storage quota
 * counts bytes until they are released.
 */
#include <pthread.h>

#include "execengine/storage.h"
#include "quota_test.h"
#include "engine/engine.h"

#define ORG "org-al"

typedef struct seen {
    pthread_mutex_t lock;
    int count;
    char last[8][512];
} seen;

static void on_alert(const char *json, void *payload)
{
    seen *s = payload;
    pthread_mutex_lock(&s->lock);
    if (s->count < 8)
        snprintf(s->last[s->count], sizeof s->last[0], "%s", json);
    s->count++;
    pthread_mutex_unlock(&s->lock);
}

typedef struct worker {
    ee_engine *e;
    const ee_principal *p;
    int n;
    pthread_barrier_t *start;
} worker;

static void *admit_n(void *arg)
{
    worker *w = arg;
    ee_quota_subject *s = NULL;
    cr_assert_eq(ee_quota_subject_new(&s, w->e, w->p), EE_OK);
    pthread_barrier_wait(w->start);
    for (int i = 0; i < w->n; i++) {
        ee_quota_ticket t;
        if (ee_quota_admit_fast(w->e, s, 0, &t) == EE_OK)
            ee_quota_finish(w->e, &t, 1, 0);
    }
    ee_quota_subject_free(s);
    return NULL;
}

static uint64_t audit_count(ee_engine *e, const char *ws)
{
    ee_storage_eq eq = {"action", "quota.threshold"};
    ee_storage_query_spec q = {0};
    q.version = EE_STORAGE_QUERY_VERSION;
    q.eq = &eq;
    q.n_eq = 1;
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(ee__engine_storage(e), "auditLog", ws, &q, &n), EE_OK);
    return n;
}

static int count_threshold(seen *s, int upto, const char *needle)
{
    int n = 0;
    for (int i = 0; i < upto && i < 8; i++)
        n += strstr(s->last[i], needle) != NULL;
    return n;
}

Test(alerts, eighty_and_ninety_five_percent_fire_once_each_per_period_under_threads)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"a100\", \"predictionsPerPeriod\": 100, "
               "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": -1}");
    qt_subscribe(e, ORG, "a100", QT_T0, NULL);
    seen s = {.count = 0};
    pthread_mutex_init(&s.lock, NULL);
    cr_assert_eq(ee_quota_set_alert_callback(e, on_alert, &s), EE_OK);
    ee_principal *p = qt_principal("ws-al", "u-al", ORG);
    ee_quota_subject *sub = qt_subject(e, p);
    qt_use(e, sub, 79);
    cr_expect_eq(s.count, 0);

    enum { THREADS = 8 };
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, THREADS);
    worker w = {e, p, 5, &start};
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&tid[i], NULL, admit_n, &w);
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);
    cr_assert_eq(qt_counter(e, "pred", ORG), 100);
    cr_expect_eq(s.count, 2, "alerts: %d", s.count);
    cr_expect_eq(count_threshold(&s, 2, "\"threshold\":80"), 1);
    cr_expect_eq(count_threshold(&s, 2, "\"threshold\":95"), 1);
    cr_expect(strstr(s.last[0], "\"orgId\":\"org-al\"") != NULL, "%s", s.last[0]);
    cr_expect(strstr(s.last[0], "\"limit\":100") != NULL, "%s", s.last[0]);
    cr_expect_eq(audit_count(e, "ws-al"), 2);

    /* A new engine on the same counters would not repeat them: the marker is
     * in the counters. Within this one, the next period announces again. */
    qt_set_now(QT_T0 + 30 * QT_DAY);
    qt_use(e, sub, 80);
    cr_expect_eq(s.count, 3);
    cr_expect_eq(count_threshold(&s, 3, "\"threshold\":80"), 2);
    /* Removing the callback: the audit entry is still written. */
    cr_assert_eq(ee_quota_set_alert_callback(e, NULL, NULL), EE_OK);
    qt_use(e, sub, 15);
    cr_expect_eq(s.count, 3);
    cr_expect_eq(audit_count(e, "ws-al"), 4);
    ee_quota_subject_free(sub);
    ee_principal_free(p);
    pthread_barrier_destroy(&start);
    pthread_mutex_destroy(&s.lock);
    ee_engine_close(e);
}

Test(alerts, storage_quota_counts_bytes_until_released)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"s1k\", \"predictionsPerPeriod\": 10, \"storageBytes\": 1000}");
    qt_subscribe(e, ORG, "s1k", QT_T0, NULL);
    seen s = {.count = 0};
    pthread_mutex_init(&s.lock, NULL);
    cr_assert_eq(ee_quota_set_alert_callback(e, on_alert, &s), EE_OK);
    ee_principal *p = qt_principal("ws-al", "u-al", ORG);
    uint64_t a = 0, b = 0, c = 0;
    cr_assert_eq(ee_quota_storage_reserve(e, p, 700, &a), EE_OK);
    cr_assert_eq(ee_quota_storage_reserve(e, p, 400, &b), EE_EQUOTA);
    cr_expect_eq(b, 0);
    cr_assert_eq(ee_quota_storage_commit(e, p, a, 700, 500, &a), EE_OK);
    cr_expect_eq(qt_counter(e, "storage", ORG), 500);
    cr_assert_eq(ee_quota_storage_reserve(e, p, 400, &b), EE_OK);
    cr_expect_eq(s.count, 1, "900 of 1000 crossed 80 %%");
    cr_expect(strstr(s.last[0], "\"quota\":\"storage\"") != NULL, "%s", s.last[0]);
    /* Far in the future the bytes are still counted (no lease runs out). */
    qt_set_now(QT_T0 + 3650 * QT_DAY);
    cr_expect_eq(qt_counter(e, "storage", ORG), 900);
    cr_assert_eq(ee_quota_storage_release(e, p, a), EE_OK);
    cr_expect_eq(ee_quota_storage_release(e, p, a), EE_ENOTFOUND);
    cr_assert_eq(ee_quota_storage_reserve(e, p, 600, &c), EE_OK);
    char *out = NULL;
    cr_assert_eq(ee_quota_usage(e, p, &out), EE_OK);
    cr_expect_eq(qt_json_int(out, "storage", "usage"), 1000);
    cr_expect_eq(qt_json_int(out, "storage", "limit"), 1000);
    ee_free(out);
    ee_principal_free(p);
    pthread_mutex_destroy(&s.lock);
    ee_engine_close(e);
}
