/*
 * Checks of ee__storage_atomic() run against each backend (memory and
 * sqlite in tests/unit/storage/atomic.c, PostgreSQL in
 * tests/integration/storage_atomic_postgres.c): a scope's insert, replace,
 * delete, increment and claim are committed together, and a scope that
 * fails - fn's own error or a failing call inside it - leaves nothing
 * applied.
 */
#ifndef EE_TEST_STORAGE_ATOMIC_CHECKS_H
#define EE_TEST_STORAGE_ATOMIC_CHECKS_H

#include <bson/bson.h>
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "claim_helpers.h"
#include "execengine/storage.h"
#include "storage/storage.h"

#define ATOMIC_CHECK static __attribute__((unused))
#define ATOMIC_T0 1700000000000LL

/* The store every check starts from: items "keep" (to replace), "gone"
 * (to delete) and "take" (to claim), counter "backlog" at 5. */
typedef struct atomic_fixture {
    ee_storage *s;
    char keep[25], gone[25], take[25];
    int64_t keep_rev, take_rev;
} atomic_fixture;

static void atomic_insert(ee_storage *s, const char *exec, int64_t t, char *id_out)
{
    bson_t *d = claim_item(exec, "ws-a", 0, t);
    cr_assert_eq(ee_storage_insert(s, "executionQueue", NULL, bson_get_data(d), d->len, id_out),
                 EE_OK, "%s", ee_error_last_message());
    bson_destroy(d);
}

static int64_t atomic_counter(ee_storage *s, int64_t delta)
{
    ee_storage_eq key = {"name", "backlog"};
    ee_storage_inc inc = {"waiting", delta};
    int64_t total = -1;
    cr_assert_eq(ee_storage_increment(s, "executionQueueCounters", NULL, &key, 1, &inc, 1,
                                      ATOMIC_T0, &total),
                 EE_OK, "%s", ee_error_last_message());
    return total;
}

ATOMIC_CHECK void atomic_fixture_init(atomic_fixture *f, ee_storage *s)
{
    memset(f, 0, sizeof *f);
    f->s = s;
    atomic_insert(s, "e-keep", CLAIM_FAR, f->keep);
    atomic_insert(s, "e-gone", CLAIM_FAR, f->gone);
    atomic_insert(s, "e-take", ATOMIC_T0, f->take);
    f->keep_rev = f->take_rev = 1;
    cr_assert_eq(atomic_counter(s, 5), 5);
}

static int64_t atomic_revision(ee_storage *s, const char *id)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t rev = 0;
    ee_status st = ee_storage_get(s, "executionQueue", NULL, id, &data, &len, &rev);
    ee_free(data);
    if (st == EE_ENOTFOUND)
        return 0;
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    return rev;
}

static uint64_t atomic_items(ee_storage *s)
{
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(s, "executionQueue", NULL, NULL, &n), EE_OK, "%s",
                 ee_error_last_message());
    return n;
}

/* What the scope does; `fail` says how it ends. */
enum { END_OK, END_FN_ERROR, END_DUPLICATE };
typedef struct atomic_step {
    atomic_fixture *f;
    int end;
    char added[25];
    int64_t total_inside;
    uint64_t items_inside;
    claim_mark mark;
} atomic_step;

static ee_status atomic_body(ee_storage *s, void *payload)
{
    atomic_step *a = payload;
    atomic_fixture *f = a->f;
    bson_t *d = claim_item("e-new", "ws-a", 0, CLAIM_FAR);
    ee_status st = ee_storage_insert(s, "executionQueue", NULL, bson_get_data(d), d->len,
                                     a->added);
    bson_destroy(d);
    if (st != EE_OK)
        return st;
    d = claim_item("e-keep", "ws-a", 7, CLAIM_FAR);
    st = ee_storage_replace(s, "executionQueue", NULL, f->keep, f->keep_rev, bson_get_data(d),
                            d->len, NULL);
    bson_destroy(d);
    if (st != EE_OK)
        return st;
    if ((st = ee_storage_delete(s, "executionQueue", NULL, f->gone)) != EE_OK)
        return st;
    ee_storage_eq key = {"name", "backlog"};
    ee_storage_inc inc = {"waiting", 10};
    st = ee_storage_increment(s, "executionQueueCounters", NULL, &key, 1, &inc, 1, ATOMIC_T0,
                              &a->total_inside);
    if (st != EE_OK)
        return st;
    a->mark = (claim_mark){.owner = "w", .until = CLAIM_FAR, .fail = EE_OK};
    if ((st = claim_next(s, ATOMIC_T0 + 1, &a->mark, NULL, NULL)) != EE_OK)
        return st;
    /* the scope reads its own writes */
    a->items_inside = atomic_items(s);
    if (a->end == END_FN_ERROR)
        return ee__error(EE_ECANCELLED, "the test's step gives up");
    if (a->end == END_DUPLICATE) {
        d = claim_item("e-keep", "ws-a", 0, CLAIM_FAR); /* executionId is unique */
        st = ee_storage_insert(s, "executionQueue", NULL, bson_get_data(d), d->len, NULL);
        bson_destroy(d);
        return st;
    }
    return EE_OK;
}

/* Everything the scope did is stored. */
ATOMIC_CHECK void atomic_check_commit(ee_storage *s)
{
    atomic_fixture f;
    atomic_fixture_init(&f, s);
    atomic_step a = {.f = &f, .end = END_OK};
    cr_assert_eq(ee__storage_atomic(s, atomic_body, &a), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(a.total_inside, 15);
    cr_expect_eq(a.items_inside, 3, "inside: new in, gone out");
    cr_expect_str_eq(a.mark.exec, "e-take");
    cr_expect_eq(atomic_revision(s, a.added), 1, "inserted");
    cr_expect_eq(atomic_revision(s, f.keep), 2, "replaced");
    cr_expect_eq(atomic_revision(s, f.gone), 0, "deleted");
    cr_expect_eq(atomic_revision(s, f.take), 2, "claimed");
    cr_expect_eq(atomic_counter(s, 0), 15, "incremented");
    cr_expect_eq(atomic_items(s), 3);
}

/* A scope that fails - its own error, or a call inside that failed -
 * leaves the store as it was, and its error is the one returned. */
ATOMIC_CHECK void atomic_check_rollback(ee_storage *s, int end)
{
    atomic_fixture f;
    atomic_fixture_init(&f, s);
    atomic_step a = {.f = &f, .end = end};
    ee_status want = end == END_FN_ERROR ? EE_ECANCELLED : EE_EEXISTS;
    cr_assert_eq(ee__storage_atomic(s, atomic_body, &a), want, "%s", ee_error_last_message());
    if (end == END_FN_ERROR)
        cr_expect(strstr(ee_error_last_message(), "the test's step gives up") != NULL, "%s",
                  ee_error_last_message());
    cr_expect_eq(a.total_inside, 15, "the step ran to its end");
    cr_expect_eq(atomic_revision(s, a.added), 0, "the insert is undone");
    cr_expect_eq(atomic_revision(s, f.keep), 1, "the replace is undone");
    cr_expect_eq(atomic_revision(s, f.gone), 1, "the delete is undone");
    cr_expect_eq(atomic_revision(s, f.take), 1, "the claim is undone");
    cr_expect_eq(atomic_counter(s, 0), 5, "the increment is undone");
    cr_expect_eq(atomic_items(s), 3);
    /* and the store works on: the same step again commits */
    a = (atomic_step){.f = &f, .end = END_OK};
    cr_expect_eq(ee__storage_atomic(s, atomic_body, &a), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(atomic_counter(s, 0), 15);
}

static ee_status atomic_outer(ee_storage *s, void *payload)
{
    atomic_step *a = payload;
    ee_status st = ee__storage_atomic(s, atomic_body, a); /* joins this scope */
    if (st != EE_OK)
        return st;
    return ee__error(EE_ECONFLICT, "the outer step gives up after the inner one");
}

/* A nested scope is part of the outer one: the outer failure undoes it. */
ATOMIC_CHECK void atomic_check_nested(ee_storage *s)
{
    atomic_fixture f;
    atomic_fixture_init(&f, s);
    atomic_step a = {.f = &f, .end = END_OK};
    cr_assert_eq(ee__storage_atomic(s, atomic_outer, &a), EE_ECONFLICT, "%s",
                 ee_error_last_message());
    cr_expect_eq(atomic_revision(s, a.added), 0);
    cr_expect_eq(atomic_revision(s, f.keep), 1);
    cr_expect_eq(atomic_counter(s, 0), 5);
}

/* Threads running scopes at once: each scope inserts an item and adds 1
 * to the counter; none is lost, none deadlocks, and every item's insert
 * and increment committed together. */
#define ATOMIC_THREADS 4
#define ATOMIC_STEPS 40

typedef struct atomic_worker {
    ee_storage *s;
    int t;
    ee_status st;
} atomic_worker;

static ee_status atomic_one(ee_storage *s, void *payload)
{
    const int *n = payload;
    char exec[32];
    snprintf(exec, sizeof exec, "e-%d", *n);
    bson_t *d = claim_item(exec, "ws-a", 0, CLAIM_FAR);
    ee_status st = ee_storage_insert(s, "executionQueue", NULL, bson_get_data(d), d->len, NULL);
    bson_destroy(d);
    if (st != EE_OK)
        return st;
    ee_storage_eq key = {"name", "backlog"};
    ee_storage_inc inc = {"waiting", 1};
    return ee_storage_increment(s, "executionQueueCounters", NULL, &key, 1, &inc, 1, ATOMIC_T0,
                                NULL);
}

static void *atomic_thread(void *arg)
{
    atomic_worker *w = arg;
    for (int i = 0; i < ATOMIC_STEPS && w->st == EE_OK; i++) {
        int n = w->t * ATOMIC_STEPS + i;
        w->st = ee__storage_atomic(w->s, atomic_one, &n);
    }
    return NULL;
}

ATOMIC_CHECK void atomic_check_threads(ee_storage *s)
{
    pthread_t th[ATOMIC_THREADS];
    atomic_worker w[ATOMIC_THREADS];
    for (int t = 0; t < ATOMIC_THREADS; t++) {
        w[t] = (atomic_worker){s, t, EE_OK};
        cr_assert_eq(pthread_create(&th[t], NULL, atomic_thread, &w[t]), 0);
    }
    for (int t = 0; t < ATOMIC_THREADS; t++) {
        pthread_join(th[t], NULL);
        cr_expect_eq(w[t].st, EE_OK, "thread %d: %s", t, ee_status_name(w[t].st));
    }
    cr_expect_eq(atomic_items(s), ATOMIC_THREADS * ATOMIC_STEPS);
    cr_expect_eq(atomic_counter(s, 0), ATOMIC_THREADS * ATOMIC_STEPS);
}

/* ee__storage_atomic_deferred(): a step that inserts an item and raises
 * the counter, then fails if asked. */
typedef struct atomic_deferred_step {
    const char *exec;
    bool fail;
} atomic_deferred_step;

static ee_status atomic_deferred_insert(ee_storage *s, void *payload)
{
    atomic_deferred_step *a = payload;
    atomic_insert(s, a->exec, CLAIM_FAR, NULL);
    (void)atomic_counter(s, 1);
    return a->fail ? ee__error(EE_ECONFLICT, "the step fails on purpose") : EE_OK;
}

/* A deferred scope commits and rolls back like any other (on an empty
 * store). */
ATOMIC_CHECK void atomic_check_deferred(ee_storage *s)
{
    atomic_deferred_step a = {"e-deferred", false};
    cr_assert_eq(ee__storage_atomic_deferred(s, atomic_deferred_insert, &a), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(atomic_items(s), 1, "the deferred scope's insert is committed and visible");
    a = (atomic_deferred_step){"e-deferred-fail", true};
    cr_assert_eq(ee__storage_atomic_deferred(s, atomic_deferred_insert, &a), EE_ECONFLICT);
    cr_expect_eq(atomic_items(s), 1, "the failed scope stored nothing");
    cr_expect_eq(atomic_counter(s, 0), 1, "nor its increment");
}

#endif
