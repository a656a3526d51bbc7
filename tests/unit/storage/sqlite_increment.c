/*
 * Increments of one document in a sqlite file, and nothing else: 8 threads
 * x 500 on one key, then the same from two processes at once. Every call
 * answers EE_OK and the total is exact. The conformance suite's
 * threads_lose_no_update mixes increments with other writes, which spreads
 * them out: an increment that read in a deferred transaction (BEGIN instead
 * of BEGIN IMMEDIATE) got through it about half the time. Here 8 writers
 * hammer one row, so every run has increments whose snapshot went stale
 * before they wrote - and SQLite refuses those (SQLITE_BUSY_SNAPSHOT), so
 * they surface as failed calls or, were they retried wrongly, as a short
 * total.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "execengine/storage.h"

#define THREADS 8
#define PER_THREAD 500
#define T0 1700000000000LL

static char dir[64], uri[200];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ee-storage-inc-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    /* synchronous=normal: the same locking, without an fsync per commit */
    snprintf(uri, sizeof uri, "sqlite://%s/store.db?synchronous=normal", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(storage_sqlite_increment, .init = setup, .fini = teardown, .timeout = 180);

static const ee_storage_eq key[3] = {
    {"userId", "u-inc"}, {"workflowCatalogId", "wf-inc"}, {"period", "2026-12"}};

typedef struct worker {
    ee_storage *s;
    int failures;
    ee_status first;
    _Atomic int *go;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    while (!atomic_load(w->go))
        sched_yield();
    ee_storage_inc inc = {"executionsCount", 1};
    for (int i = 0; i < PER_THREAD; i++) {
        ee_status st = ee_storage_increment(w->s, "userWorkflowUsage", "ws-inc", key, 3, &inc, 1,
                                            T0 + i, NULL);
        if (st != EE_OK && w->failures++ == 0)
            w->first = st;
    }
    return NULL;
}

/* THREADS threads increment on one handle; returns the failed calls. */
static int run_threads(ee_storage *s, ee_status *first)
{
    pthread_t t[THREADS];
    worker w[THREADS];
    _Atomic int go = 0;
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){s, 0, EE_OK, &go};
        cr_assert_eq(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    atomic_store(&go, 1);
    int failures = 0;
    *first = EE_OK;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        if (w[i].failures > 0 && failures == 0)
            *first = w[i].first;
        failures += w[i].failures;
    }
    return failures;
}

static int64_t total(ee_storage *s)
{
    ee_storage_inc zero = {"executionsCount", 0};
    int64_t v = -1;
    cr_assert_eq(ee_storage_increment(s, "userWorkflowUsage", "ws-inc", key, 3, &zero, 1, T0, &v),
                 EE_OK);
    return v;
}

Test(storage_sqlite_increment, eight_threads_on_one_key_lose_nothing_and_never_fail)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    ee_status first;
    int failures = run_threads(s, &first);
    cr_expect_eq(failures, 0, "%d of %d increments failed, the first with %s", failures,
                 THREADS * PER_THREAD, ee_status_name(first));
    cr_expect_eq(total(s), THREADS * PER_THREAD);
    ee_storage_free(s);
}

Test(storage_sqlite_increment, two_processes_of_eight_threads_on_one_key_lose_nothing)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK); /* creates the file first */
    ee_storage_free(s);                                /* no handle crosses fork() */
    int pipes[2][2];
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(pipe(pipes[k]), 0);
        kids[k] = fork();
        cr_assert_geq(kids[k], 0);
        if (kids[k] != 0)
            continue;
        ee_storage *cs = NULL;
        if (ee_storage_open_uri(&cs, uri) != EE_OK)
            _exit(2);
        char c;
        if (read(pipes[k][0], &c, 1) != 1) /* start together */
            _exit(3);
        ee_status first;
        int failures = run_threads(cs, &first);
        ee_storage_free(cs);
        if (failures > 0)
            fprintf(stderr, "process %d: %d increments failed, the first with %s\n", k,
                    failures, ee_status_name(first));
        _exit(failures == 0 ? 0 : 1);
    }
    for (int k = 0; k < 2; k++)
        cr_assert_eq(write(pipes[k][1], "g", 1), 1);
    for (int k = 0; k < 2; k++) {
        int status = 0;
        waitpid(kids[k], &status, 0);
        cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "process %d: increments failed (status %d)", k, status);
        close(pipes[k][0]);
        close(pipes[k][1]);
    }
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK);
    cr_expect_eq(total(s), 2 * THREADS * PER_THREAD, "increments lost across processes");
    ee_storage_free(s);
}
