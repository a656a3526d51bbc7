/*
 * Quota state a user can trust by default (issue #11):
 *   - with nothing but the storage set, the counters are the storage's own
 *     (storage:) whenever the storage is a file: the burst of 500
 *     admissions from 4 processes x 125 threads at 990 of 1000 admits
 *     exactly 10, and a closed and reopened engine still reads 1000;
 *   - memory: counters over a file are one process's: a second engine (in
 *     another process or in this one, with memory or storage counters) is
 *     refused with EE_EBUSY and a message naming EE_COUNTERS_URI, and
 *     storage counters keep memory ones out; their period usage (predictions,
 *     spend, storage) is written through to the file and read back by the
 *     next engine;
 *   - ee_quota_storage_commit of an unknown reservation is EE_ENOTFOUND on
 *     every backend, also when the sizes are equal.
 */
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "quota_test.h"
#include "engine/engine.h"

#define DQ_PROCS 4
#define DQ_THREADS 125 /* 4 x 125 = 500 admissions, one per thread */

typedef struct dq_tally {
    _Atomic int granted, refused, errors, arrived, ready;
    char last_error[256];
} dq_tally;

static void dq_error(dq_tally *t, const char *what)
{
    atomic_fetch_add(&t->errors, 1);
    snprintf(t->last_error, sizeof t->last_error, "%s: %s", what, ee_error_last_message());
}

/* An engine on `storage_uri` with EE_COUNTERS_URI left unset when
 * counters_uri is NULL (the default under test). *st gets the status. */
static ee_engine *dq_open(const char *storage_uri, const char *counters_uri, ee_status *st)
{
    ee_config *cfg = NULL;
    ee_engine *e = NULL;
    *st = ee_config_new(&cfg);
    if (*st == EE_OK)
        *st = ee_config_set(cfg, "API_KEY_ENCRYPTION_SECRET",
                            "test-secret-0123456789abcdef0123456789");
    if (*st == EE_OK)
        *st = ee_config_set(cfg, "EE_DATA_DIR", qt_data_dir());
    if (*st == EE_OK)
        *st = ee_config_set(cfg, "EE_STORAGE_URI", storage_uri);
    if (*st == EE_OK && counters_uri != NULL)
        *st = ee_config_set(cfg, "EE_COUNTERS_URI", counters_uri);
    if (*st == EE_OK)
        *st = ee_config_set_clock(cfg, qt_clock, NULL);
    if (*st == EE_OK)
        *st = ee_engine_open(&e, cfg);
    ee_config_free(cfg);
    return e;
}

static ee_engine *dq_engine(const char *storage_uri, const char *counters_uri)
{
    ee_status st;
    ee_engine *e = dq_open(storage_uri, counters_uri, &st);
    cr_assert_eq(st, EE_OK, "ee_engine_open: %s (%s)", ee_status_name(st),
                 ee_error_last_message());
    return e;
}

/* A fresh directory and the sqlite URI of a file in it. */
static void dq_file(char dir[64], char uri[128])
{
    snprintf(dir, 64, "/tmp/ee-quota-durable-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(uri, 128, "sqlite://%s/store.db", dir);
}

static void dq_rmdir(const char *dir)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

/* Plan "d1000": 1000 predictions, a 1 USD monthly spend cap, 10000 stored
 * bytes, no rate or concurrency limit (they are not under test). */
static void dq_plan(ee_engine *e, const char *org)
{
    qt_plan(e, "{\"name\": \"d1000\", \"predictionsPerPeriod\": 1000, "
               "\"monthlySpendCapNanoUsd\": 1000000000, \"storageBytes\": 10000, "
               "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": -1}");
    qt_subscribe(e, org, "d1000", QT_T0, NULL);
}

/* ---- the default ---------------------------------------------------------------- */

Test(durable, default_counters_are_the_storage_s_when_it_is_a_file)
{
    char dir[64], uri[128];
    dq_file(dir, uri);
    ee_engine *e = dq_engine(uri, NULL);
    cr_expect_str_eq(ee_counters_backend_name(ee__engine_counters(e)), "storage-sqlite");
    ee_engine_close(e);
    e = dq_engine("memory:", NULL);
    cr_expect_str_eq(ee_counters_backend_name(ee__engine_counters(e)), "memory");
    ee_engine_close(e);
    /* and so does the URI opener asked for the default */
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_open_uri(&c, NULL, uri), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(ee_counters_backend_name(c), "storage-sqlite");
    ee_counters_free(c);
    dq_rmdir(dir);
}

typedef struct dq_ctx {
    ee_engine *e;
    const ee_principal *p;
    dq_tally *t;
} dq_ctx;

static void *dq_worker(void *arg)
{
    dq_ctx *x = arg;
    ee_quota_subject *s = NULL;
    if (ee_quota_subject_new(&s, x->e, x->p) != EE_OK)
        dq_error(x->t, "subject");
    /* Start together: every thread of every process ready first. */
    atomic_fetch_add(&x->t->arrived, 1);
    for (int ms = 0; atomic_load(&x->t->arrived) < DQ_PROCS * DQ_THREADS && ms < 20000; ms++)
        usleep(1000);
    if (s == NULL)
        return NULL;
    ee_quota_ticket tk;
    ee_status st = ee_quota_admit_fast(x->e, s, 0, &tk);
    if (st == EE_OK) {
        atomic_fetch_add(&x->t->granted, 1);
        if (ee_quota_finish(x->e, &tk, 1, 0) != EE_OK)
            dq_error(x->t, "finish");
    } else if (st == EE_EQUOTA) {
        atomic_fetch_add(&x->t->refused, 1);
    } else {
        dq_error(x->t, "admit");
    }
    ee_quota_subject_free(s);
    return NULL;
}

static void dq_child(const char *uri, const char *org, dq_tally *t)
{
    ee_status st;
    ee_engine *e = dq_open(uri, NULL, &st);
    if (e == NULL) {
        dq_error(t, "engine_open");
        atomic_fetch_add(&t->arrived, DQ_THREADS); /* do not keep the others waiting */
        _exit(1);
    }
    ee_principal *p = NULL;
    ee_principal_new(&p, "ws-durable", "u-durable", org);
    dq_ctx x = {e, p, t};
    pthread_t tid[DQ_THREADS];
    int started = 0;
    for (; started < DQ_THREADS; started++)
        if (pthread_create(&tid[started], NULL, dq_worker, &x) != 0)
            break;
    if (started < DQ_THREADS) {
        dq_error(t, "pthread_create");
        atomic_fetch_add(&t->arrived, DQ_THREADS - started);
    }
    for (int i = 0; i < started; i++)
        pthread_join(tid[i], NULL);
    ee_principal_free(p);
    ee_engine_close(e);
    _exit(0);
}

/* The burst: usage 990 of 1000, 500 admissions at once from 4
 * processes x 125 threads, no EE_COUNTERS_URI anywhere: exactly 10. With
 * memory counters by default each process counted from its own 0 and all
 * 500 were admitted. Then a reopened engine reads 1000 and refuses. */
Test(durable, burst_from_4_processes_at_990_of_1000_admits_exactly_10)
{
    char dir[64], uri[128];
    dq_file(dir, uri);
    qt_set_now(QT_T0);
    const char *org = "org-burst";
    ee_engine *e = dq_engine(uri, NULL);
    dq_plan(e, org);
    ee_principal *p = qt_principal("ws-durable", "u-durable", org);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 990);
    ee_quota_subject_free(s);
    ee_engine_close(e);

    dq_tally *t = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(t, MAP_FAILED);
    memset(t, 0, sizeof *t);
    pid_t kids[DQ_PROCS];
    for (int i = 0; i < DQ_PROCS; i++) {
        kids[i] = fork();
        cr_assert_neq(kids[i], -1);
        if (kids[i] == 0)
            dq_child(uri, org, t);
    }
    for (int i = 0; i < DQ_PROCS; i++) {
        int status = 0;
        cr_assert_eq(waitpid(kids[i], &status, 0), kids[i]);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed: %s", i,
                  t->last_error);
    }
    cr_expect_eq(atomic_load(&t->errors), 0, "errors: %d, e.g. %s", atomic_load(&t->errors),
                 t->last_error);
    cr_expect_eq(atomic_load(&t->granted), 10, "admitted %d of the 10 left",
                 atomic_load(&t->granted));
    cr_expect_eq(atomic_load(&t->refused), 490);

    /* Close and reopen: the period's usage is still 1000. */
    e = dq_engine(uri, NULL);
    char *doc = NULL;
    cr_assert_eq(ee_quota_usage(e, p, &doc), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_json_int(doc, "predictions", "usage"), 1000, "%s", doc);
    ee_free(doc);
    s = qt_subject(e, p);
    ee_quota_ticket tk;
    cr_expect_eq(ee_quota_admit_fast(e, s, 0, &tk), EE_EQUOTA);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
    munmap(t, sizeof *t);
    dq_rmdir(dir);
}

/* ---- memory counters over a file: one process's, usage written through ---------- */

/* Close and reopen keeps the period's usage on `counters_uri` (NULL: the
 * default): 1000 predictions, spend (an estimate exceeded: the extra is
 * counted too), stored bytes - and a stored output's reservation can still
 * be released after the restart. */
static void reopen_keeps_usage(const char *counters_uri)
{
    char dir[64], uri[128];
    dq_file(dir, uri);
    qt_set_now(QT_T0);
    const char *org = "org-reopen";
    ee_engine *e = dq_engine(uri, counters_uri);
    dq_plan(e, org);
    ee_principal *p = qt_principal("ws-reopen", "u-reopen", org);
    ee_quota_subject *s = qt_subject(e, p);
    qt_use(e, s, 998);
    ee_quota_ticket tk;
    cr_assert_eq(ee_quota_admit_fast(e, s, 500, &tk), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_finish(e, &tk, 1, 700), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_admit_fast(e, s, 300, &tk), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_finish(e, &tk, 1, 200), EE_OK, "%s", ee_error_last_message());
    uint64_t kept = 0, gone = 0;
    cr_assert_eq(ee_quota_storage_reserve(e, p, 4000, &kept), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(ee_quota_storage_reserve(e, p, 3000, &gone), EE_OK, "%s",
                 ee_error_last_message());
    ee_quota_subject_free(s);
    ee_engine_close(e);

    qt_advance(QT_HOUR);
    e = dq_engine(uri, counters_uri);
    char *doc = NULL;
    cr_assert_eq(ee_quota_usage(e, p, &doc), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_json_int(doc, "predictions", "usage"), 1000, "%s", doc);
    cr_expect_eq(qt_json_int(doc, "storage", "usage"), 7000, "%s", doc);
    json_t *j = json_loads(doc, 0, NULL);
    json_t *spend = json_object_get(json_object_get(json_object_get(j, "spend"), "usage"),
                                    "nanoUsd");
    cr_expect_eq(json_integer_value(spend), 900, "%s", doc);
    json_decref(j);
    ee_free(doc);
    s = qt_subject(e, p);
    cr_expect_eq(ee_quota_admit_fast(e, s, 0, &tk), EE_EQUOTA, "a restart reset the quota");
    /* the stored outputs' bytes: still counted, still released by their ids */
    uint64_t more = 0;
    cr_expect_eq(ee_quota_storage_reserve(e, p, 3001, &more), EE_EQUOTA);
    cr_expect_eq(ee_quota_storage_release(e, p, gone), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_quota_storage_reserve(e, p, 3001, &more), EE_OK, "%s",
                 ee_error_last_message());
    ee_quota_subject_free(s);
    ee_engine_close(e);

    /* The next period starts at 0. */
    qt_advance(31 * QT_DAY);
    e = dq_engine(uri, counters_uri);
    s = qt_subject(e, p);
    cr_expect_eq(ee_quota_admit_fast(e, s, 0, &tk), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_quota_finish(e, &tk, 1, 0), EE_OK);
    cr_assert_eq(ee_quota_usage(e, p, &doc), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(qt_json_int(doc, "predictions", "usage"), 1, "%s", doc);
    ee_free(doc);
    ee_quota_subject_free(s);
    ee_engine_close(e);
    ee_principal_free(p);
    dq_rmdir(dir);
}

Test(durable, reopen_keeps_period_usage_with_memory_counters)
{
    reopen_keeps_usage("memory:");
}

Test(durable, reopen_keeps_period_usage_with_the_default_counters)
{
    reopen_keeps_usage(NULL);
}

/* A second engine with memory counters on the same file: refused, from
 * another process and from this one, with a message naming the setting;
 * free again once the first engine closed. */
Test(durable, a_second_engine_with_memory_counters_on_one_file_is_refused)
{
    char dir[64], uri[128];
    dq_file(dir, uri);
    ee_engine *e = dq_engine(uri, "memory:");
    fflush(NULL);
    pid_t kid = fork();
    cr_assert_neq(kid, -1);
    if (kid == 0) {
        ee_status st;
        ee_engine *other = dq_open(uri, "memory:", &st);
        int ok = other == NULL && st == EE_EBUSY &&
                 strstr(ee_error_last_message(), "EE_COUNTERS_URI") != NULL;
        if (!ok)
            fprintf(stderr, "second process: %s (%s)\n", ee_status_name(st),
                    ee_error_last_message());
        ee_engine_close(other);
        /* nor may storage counters count the file beside them */
        ee_engine *shared = dq_open(uri, NULL, &st);
        if (shared != NULL || st != EE_EBUSY ||
            strstr(ee_error_last_message(), "EE_COUNTERS_URI") == NULL) {
            fprintf(stderr, "storage counters beside memory ones: %s (%s)\n",
                    ee_status_name(st), ee_error_last_message());
            ok = 0;
        }
        ee_engine_close(shared);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    cr_assert_eq(waitpid(kid, &status, 0), kid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "a second process opened memory counters on the same file");

    ee_status st;
    ee_engine *other = dq_open(uri, "memory:", &st);
    cr_expect_null(other, "a second engine of this process opened them too");
    cr_expect_eq(st, EE_EBUSY, "%s", ee_status_name(st));
    cr_expect(strstr(ee_error_last_message(), "EE_COUNTERS_URI") != NULL, "%s",
              ee_error_last_message());
    ee_engine_close(other);

    ee_engine_close(e);
    other = dq_open(uri, "memory:", &st);
    cr_expect_eq(st, EE_OK, "the lock outlived its engine: %s", ee_error_last_message());
    ee_engine_close(other);

    /* Storage counters (the default) share the file with each other, and
     * keep memory counters out while they count it. */
    ee_engine *a = dq_engine(uri, NULL), *b = dq_engine(uri, "storage:");
    other = dq_open(uri, "memory:", &st);
    cr_expect_null(other, "memory counters opened beside storage counters");
    cr_expect_eq(st, EE_EBUSY, "%s", ee_status_name(st));
    ee_engine_close(other);
    ee_engine_close(a);
    ee_engine_close(b);
    dq_rmdir(dir);
}

/* ---- storage commit of an unknown reservation ------------------------------------ */

static void commit_unknown(const char *storage_uri, const char *counters_uri)
{
    ee_engine *e = dq_engine(storage_uri, counters_uri);
    const char *org = "org-commit";
    dq_plan(e, org);
    ee_principal *p = qt_principal("ws-commit", "u-commit", org);
    uint64_t id = 0, out = 7;
    cr_assert_eq(ee_quota_storage_reserve(e, p, 100, &id), EE_OK, "%s", ee_error_last_message());
    /* equal sizes: the reservation stays as it is */
    cr_expect_eq(ee_quota_storage_commit(e, p, id, 100, 100, &out), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(out, id);
    /* unknown ids, equal or smaller sizes */
    cr_expect_eq(ee_quota_storage_commit(e, p, id + 1000, 100, 100, &out), EE_ENOTFOUND,
                 "%s: unknown id, equal sizes", ee_counters_backend_name(ee__engine_counters(e)));
    cr_expect_eq(out, 0);
    cr_expect_eq(ee_quota_storage_commit(e, p, id + 1000, 100, 50, &out), EE_ENOTFOUND);
    /* a released one */
    cr_assert_eq(ee_quota_storage_release(e, p, id), EE_OK);
    cr_expect_eq(ee_quota_storage_commit(e, p, id, 100, 100, &out), EE_ENOTFOUND,
                 "%s: released id, equal sizes", ee_counters_backend_name(ee__engine_counters(e)));
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(durable, storage_commit_of_an_unknown_reservation_is_not_found_on_every_backend)
{
    commit_unknown("memory:", "memory:");
    char dir[64], uri[128];
    dq_file(dir, uri);
    commit_unknown(uri, "storage:");
    dq_rmdir(dir);
    dq_file(dir, uri);
    commit_unknown(uri, "memory:");
    dq_rmdir(dir);
}
