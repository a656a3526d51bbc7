/*
 * The exactness check across processes, shared by the redis and
 * postgres integration tests: limit 1000, usage 990, 500 concurrent
 * admissions from 4 processes (fork; 125 each over 5 threads) - exactly 10
 * are admitted. Then seed 2's check-then-increment, run the same way on a
 * counter of its own, lets more than 10 through: the test catches it.
 */
#ifndef EE_QUOTA_RACE_H
#define EE_QUOTA_RACE_H

#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "quota_test.h"
#include "engine/engine.h"

#define QR_PROCS 4
#define QR_THREADS 5
#define QR_PER_THREAD 25 /* 4 x 5 x 25 = 500 */

typedef struct qr_tally {
    _Atomic int granted;
    _Atomic int refused;
    _Atomic int errors;
    _Atomic int arrived; /* threads of every process at the start line */
    _Atomic int checked; /* racy threads that have read the counter once */
    char last_error[256];
} qr_tally;

/* Wait until every thread of every process is at the start line (or 10 s
 * passed: a process that could not start must not hang the others), so
 * the processes race each other, not only their own threads - whatever
 * each process's start-up time. */
static void qr_line(_Atomic int *line)
{
    atomic_fetch_add(line, 1);
    for (int waited_ms = 0; atomic_load(line) < QR_PROCS * QR_THREADS && waited_ms < 10000;
         waited_ms++)
        usleep(1000);
}

static void qr_start_line(qr_tally *t)
{
    qr_line(&t->arrived);
}

typedef struct qr_ctx {
    ee_engine *e;
    const ee_principal *p;
    ee_counters *c;
    const char *racy_key;
    qr_tally *t;
} qr_ctx;

static void qr_error(qr_tally *t, const char *what)
{
    atomic_fetch_add(&t->errors, 1);
    snprintf(t->last_error, sizeof t->last_error, "%s: %s", what, ee_error_last_message());
}

static void *qr_admit_worker(void *arg)
{
    qr_ctx *x = arg;
    ee_quota_subject *s = NULL;
    if (ee_quota_subject_new(&s, x->e, x->p) != EE_OK)
        qr_error(x->t, "subject");
    qr_start_line(x->t);
    for (int i = 0; s != NULL && i < QR_PER_THREAD; i++) {
        ee_quota_ticket tk;
        ee_status st = ee_quota_admit_fast(x->e, s, 0, &tk);
        if (st == EE_OK) {
            atomic_fetch_add(&x->t->granted, 1);
            if (ee_quota_finish(x->e, &tk, 1, 0) != EE_OK)
                qr_error(x->t, "finish");
        } else if (st == EE_EQUOTA) {
            atomic_fetch_add(&x->t->refused, 1);
        } else {
            qr_error(x->t, "admit");
        }
    }
    ee_quota_subject_free(s);
    return NULL;
}

/* Seed 2: getCurrentUsage, compare, run, updatePredictionsUsage. */
static void *qr_racy_worker(void *arg)
{
    qr_ctx *x = arg;
    qr_start_line(x->t);
    for (int i = 0; i < QR_PER_THREAD; i++) {
        int64_t now = ee_engine_now_ms(x->e);
        ee_counter_result r;
        if (ee_counters_get(x->c, x->racy_key, now, &r) != EE_OK) {
            qr_error(x->t, "get");
            continue;
        }
        if (r.value >= 1000) {
            atomic_fetch_add(&x->t->refused, 1);
            continue;
        }
        atomic_fetch_add(&x->t->granted, 1);
        /* The workflow runs. The first time, every thread waits here until
         * every other has read the counter too: the interleaving seed 2
         * loses to is forced, not left to the scheduler - on a loaded
         * machine the threads could otherwise take turns and the control
         * would admit exactly 10 by luck. */
        if (i == 0)
            qr_line(&x->t->checked);
        else
            usleep(2000);
        ee_counter_req q = {x->racy_key, 1, EE_COUNTERS_VALUE_MAX, 0, 0};
        int g = 0;
        if (ee_counters_reserve(x->c, &q, 60000, now, &r, &g) != EE_OK || !g ||
            ee_counters_commit(x->c, x->racy_key, r.resv_id, EE_COUNTERS_ALL, now) != EE_OK)
            qr_error(x->t, "increment");
    }
    return NULL;
}

/* A child's engine: no Criterion asserts in a child, errors go to the tally. */
static ee_engine *qr_open(const char *storage_uri, const char *counters_uri, qr_tally *t)
{
    ee_config *cfg = NULL;
    ee_engine *e = NULL;
    if (ee_config_new(&cfg) != EE_OK ||
        ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET", "test-secret-0123456789abcdef0123456789") ||
        ee_config_set(cfg, "EE_DATA_DIR", qt_data_dir()) ||
        ee_config_set(cfg, "EE_STORAGE_URI", storage_uri) ||
        ee_config_set(cfg, "EE_COUNTERS_URI", counters_uri) ||
        ee_config_set_clock(cfg, qt_clock, NULL) || ee_engine_open(&e, cfg) != EE_OK) {
        qr_error(t, "engine_open");
        e = NULL;
    }
    ee_config_free(cfg);
    return e;
}

static void qr_setup(ee_engine *e, const char *org)
{
    ee_status a = ee_quota_plan_put(e, "{\"name\": \"race1000\", \"predictionsPerPeriod\": 1000, "
                                       "\"executionsPerUserPerHour\": -1, "
                                       "\"concurrentExecutionsPerWorkspace\": -1}", NULL);
    char sub[256];
    snprintf(sub, sizeof sub, "{\"orgId\": \"%s\", \"plan\": \"race1000\", \"periodStart\": %lld}",
             org, (long long)QT_T0);
    ee_status b = a == EE_OK ? ee_quota_subscription_put(e, sub, NULL) : a;
    (void)b;
}

static void qr_child(const char *storage_uri, const char *counters_uri, const char *org,
                     const char *racy_key, bool per_process_setup, qr_tally *t)
{
    ee_engine *e = qr_open(storage_uri, counters_uri, t);
    if (e == NULL)
        _exit(1);
    if (per_process_setup)
        qr_setup(e, org);
    ee_principal *p = NULL;
    ee_principal_new(&p, "ws-race", "u-race", org);
    qr_ctx x = {e, p, ee__engine_counters(e), racy_key, t};
    pthread_t tid[QR_THREADS];
    for (int i = 0; i < QR_THREADS; i++)
        pthread_create(&tid[i], NULL, racy_key ? qr_racy_worker : qr_admit_worker, &x);
    for (int i = 0; i < QR_THREADS; i++)
        pthread_join(tid[i], NULL);
    ee_principal_free(p);
    ee_engine_close(e);
    _exit(0);
}

/* Wait for every child; each must have exited 0. */
static void qr_wait_all(const pid_t kids[QR_PROCS], const qr_tally *t)
{
    for (int i = 0; i < QR_PROCS; i++) {
        int status = 0;
        cr_assert_eq(waitpid(kids[i], &status, 0), kids[i]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed: %s", i,
                  t->last_error);
    }
}

static void qr_fork_all(const char *storage_uri, const char *counters_uri, const char *org,
                        const char *racy_key, bool per_process_setup, qr_tally *t)
{
    pid_t kids[QR_PROCS];
    for (int i = 0; i < QR_PROCS; i++) {
        kids[i] = fork();
        cr_assert_neq(kids[i], -1);
        if (kids[i] == 0)
            qr_child(storage_uri, counters_uri, org, racy_key, per_process_setup, t);
    }
    qr_wait_all(kids, t);
}

/* per_process_setup: each process stores the plan itself (memory storage). */
static inline void qr_run(const char *storage_uri, const char *counters_uri, bool per_process_setup)
{
    qt_set_now(QT_T0);
    char org[64], racy[96];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(org, sizeof org, "org-race-%d-%ld", (int)getpid(), (long)(ts.tv_nsec % 100000000));
    snprintf(racy, sizeof racy, "racy/%s", org);
    qr_tally *t = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(t, MAP_FAILED);
    memset(t, 0, sizeof *t);

    /* usage 990 of 1000, through admissions */
    ee_engine *e = qt_engine_kv(storage_uri, counters_uri, NULL);
    qr_setup(e, org);
    ee_principal *p = qt_principal("ws-race", "u-race", org);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 990);
    cr_assert_eq(qt_counter(e, "pred", org), 990);
    ee_quota_subject_free(s);

    qr_fork_all(storage_uri, counters_uri, org, NULL, per_process_setup, t);
    cr_expect_eq(atomic_load(&t->errors), 0, "errors: %d, e.g. %s", atomic_load(&t->errors),
                 t->last_error);
    cr_expect_eq(atomic_load(&t->granted), 10, "admitted %d of the 10 left",
                 atomic_load(&t->granted));
    cr_expect_eq(atomic_load(&t->refused), 490);
    cr_expect_eq(qt_counter(e, "pred", org), 1000);

    /* Seed 2's check-then-increment, same race, own counter at 990. */
    memset(t, 0, sizeof *t);
    ee_counters *c = ee__engine_counters(e);
    ee_counter_req q = {racy, 990, EE_COUNTERS_VALUE_MAX, 0, 0};
    ee_counter_result r;
    int g = 0;
    cr_assert_eq(ee_counters_reserve(c, &q, 60000, QT_T0, &r, &g), EE_OK);
    cr_assert_eq(ee_counters_commit(c, racy, r.resv_id, EE_COUNTERS_ALL, QT_T0), EE_OK);
    qr_fork_all(storage_uri, counters_uri, org, racy, per_process_setup, t);
    cr_expect_eq(atomic_load(&t->errors), 0, "e.g. %s", t->last_error);
    cr_expect_gt(atomic_load(&t->granted), 10,
                 "check-then-increment admitted only %d: the test would not catch it",
                 atomic_load(&t->granted));
    ee_principal_free(p);
    ee_engine_close(e);
    munmap(t, sizeof *t);
}

/* ---- writers of one organisation's subscription at once ------------------------------ */

typedef struct qr_sub_ctx {
    ee_engine *e;
    const char *org;
    int proc;
    qr_tally *t;
} qr_sub_ctx;

static void *qr_sub_worker(void *arg)
{
    qr_sub_ctx *x = arg;
    qr_start_line(x->t);
    for (int i = 0; i < 10; i++) {
        char sub[256];
        snprintf(sub, sizeof sub, "{\"orgId\": \"%s\", \"plan\": \"%s\"}", x->org,
                 (x->proc + i) % 2 ? "race1000" : "free");
        if (ee_quota_subscription_put(x->e, sub, NULL) == EE_OK)
            atomic_fetch_add(&x->t->granted, 1);
        else
            qr_error(x->t, ee_error_last_message());
    }
    return NULL;
}

static int qr_count_doc(const ee_storage_row *row, void *payload)
{
    (void)row;
    (*(int *)payload)++;
    return 0;
}

/* 4 processes x 5 threads each set one new organisation's subscription 10
 * times (alternating plans) at once: every call succeeds and the storage
 * ends with exactly one subscription of that organisation. */
static inline void qr_subscription_race(const char *storage_uri)
{
    qt_set_now(QT_T0);
    char org[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(org, sizeof org, "org-subs-%d-%ld", (int)getpid(), (long)(ts.tv_nsec % 100000000));
    qr_tally *t = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(t, MAP_FAILED);
    memset(t, 0, sizeof *t);
    ee_engine *e = qt_engine_kv(storage_uri, "storage:", NULL);
    cr_assert_eq(ee_quota_plan_put(e, "{\"name\": \"race1000\", \"predictionsPerPeriod\": "
                                      "1000}", NULL), EE_OK, "%s", ee_error_last_message());
    pid_t kids[QR_PROCS];
    for (int i = 0; i < QR_PROCS; i++) {
        kids[i] = fork();
        cr_assert_neq(kids[i], -1);
        if (kids[i] != 0)
            continue;
        ee_engine *ce = qr_open(storage_uri, "storage:", t);
        if (ce == NULL)
            _exit(1);
        qr_sub_ctx x = {ce, org, i, t};
        pthread_t tid[QR_THREADS];
        for (int k = 0; k < QR_THREADS; k++)
            pthread_create(&tid[k], NULL, qr_sub_worker, &x);
        for (int k = 0; k < QR_THREADS; k++)
            pthread_join(tid[k], NULL);
        ee_engine_close(ce);
        _exit(0);
    }
    qr_wait_all(kids, t);
    cr_expect_eq(atomic_load(&t->errors), 0, "errors: %d, e.g. %s", atomic_load(&t->errors),
                 t->last_error);
    cr_expect_eq(atomic_load(&t->granted), QR_PROCS * QR_THREADS * 10);
    ee_storage_eq eq = {"orgId", org};
    ee_storage_query_spec q = {0};
    q.version = EE_STORAGE_QUERY_VERSION;
    q.eq = &eq;
    q.n_eq = 1;
    q.order = EE_STORAGE_ORDER_TIME_DESC;
    q.limit = 100;
    int docs = 0;
    cr_assert_eq(ee_storage_query(ee__engine_storage(e), "subscriptions", org, &q, qr_count_doc,
                                  &docs, NULL), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(docs, 1, "%d subscriptions of one organisation", docs);
    ee_engine_close(e);
    munmap(t, sizeof *t);
}

#endif
