/*
 * ee__storage_atomic() on the memory and sqlite backends (PostgreSQL:
 * tests/integration/storage_atomic_postgres.c): one commit for a step's
 * writes, nothing applied when it fails; a custom backend runs the calls
 * one by one (the weaker guarantee storage.h documents).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "atomic_checks.h"
#include "custom_backend.h"

static char dir[64], uri[200];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/ee-storage-atomic-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(uri, sizeof uri, "sqlite://%s/store.db", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(storage_atomic, .init = setup, .fini = teardown, .timeout = 120);

static ee_storage *open_memory(void)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_memory_new(&s), EE_OK);
    cr_assert(ee__storage_atomic_native(s));
    return s;
}

static ee_storage *open_sqlite(void)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK, "%s", ee_error_last_message());
    cr_assert(ee__storage_atomic_native(s));
    return s;
}

Test(storage_atomic, memory_commits_every_write_of_the_step)
{
    ee_storage *s = open_memory();
    atomic_check_commit(s);
    ee_storage_free(s);
}

Test(storage_atomic, memory_rolls_back_when_the_step_fails)
{
    ee_storage *s = open_memory();
    atomic_check_rollback(s, END_FN_ERROR);
    ee_storage_free(s);
}

Test(storage_atomic, memory_rolls_back_when_a_call_inside_fails)
{
    ee_storage *s = open_memory();
    atomic_check_rollback(s, END_DUPLICATE);
    ee_storage_free(s);
}

Test(storage_atomic, memory_nested_scope_joins_the_outer_one)
{
    ee_storage *s = open_memory();
    atomic_check_nested(s);
    ee_storage_free(s);
}

Test(storage_atomic, sqlite_commits_every_write_of_the_step)
{
    ee_storage *s = open_sqlite();
    atomic_check_commit(s);
    ee_storage_free(s);
}

Test(storage_atomic, sqlite_rolls_back_when_the_step_fails)
{
    ee_storage *s = open_sqlite();
    atomic_check_rollback(s, END_FN_ERROR);
    ee_storage_free(s);
}

Test(storage_atomic, sqlite_rolls_back_when_a_call_inside_fails)
{
    ee_storage *s = open_sqlite();
    atomic_check_rollback(s, END_DUPLICATE);
    ee_storage_free(s);
}

Test(storage_atomic, sqlite_nested_scope_joins_the_outer_one)
{
    ee_storage *s = open_sqlite();
    atomic_check_nested(s);
    ee_storage_free(s);
}

Test(storage_atomic, memory_threads_in_scopes_lose_nothing)
{
    ee_storage *s = open_memory();
    atomic_check_threads(s);
    ee_storage_free(s);
}

Test(storage_atomic, sqlite_threads_in_scopes_lose_nothing)
{
    ee_storage *s = open_sqlite();
    atomic_check_threads(s);
    ee_storage_free(s);
}

/* Another thread (its own connection) reads while the scope is open: it
 * sees the store as it was until the commit. */
typedef struct peek {
    ee_storage *s;
    uint64_t items;
    ee_status st;
} peek;

static void *peek_thread(void *arg)
{
    peek *p = arg;
    p->st = ee_storage_count(p->s, "executionQueue", NULL, NULL, &p->items);
    return NULL;
}

static ee_status insert_and_peek(ee_storage *s, void *payload)
{
    atomic_insert(s, "e-seen", CLAIM_FAR, NULL);
    peek *p = payload;
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, peek_thread, p), 0);
    pthread_join(t, NULL);
    return EE_OK;
}

Test(storage_atomic, sqlite_other_threads_see_nothing_before_the_commit)
{
    ee_storage *s = open_sqlite();
    peek p = {.s = s};
    cr_assert_eq(ee__storage_atomic(s, insert_and_peek, &p), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(p.st, EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(p.items, 0, "the reader saw the uncommitted insert");
    cr_expect_eq(atomic_items(s), 1);
    ee_storage_free(s);
}

Test(storage_atomic, sqlite_other_handles_wait_for_the_commit)
{
    ee_storage *s = open_sqlite(), *other = open_sqlite();
    atomic_fixture f;
    atomic_fixture_init(&f, s);
    atomic_step a = {.f = &f, .end = END_OK};
    cr_assert_eq(ee__storage_atomic(s, atomic_body, &a), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(atomic_counter(other, 0), 15, "another handle sees the committed step");
    ee_storage_free(other);
    ee_storage_free(s);
}

/* A custom backend has no transactions: the calls before the failure stay
 * applied (what storage.h promises, no more). */
Test(storage_atomic, custom_backend_applies_the_calls_one_by_one)
{
    ee_storage *s = custom_open(2);
    cr_expect_not(ee__storage_atomic_native(s));
    atomic_fixture f;
    atomic_fixture_init(&f, s);
    atomic_step a = {.f = &f, .end = END_FN_ERROR};
    cr_assert_eq(ee__storage_atomic(s, atomic_body, &a), EE_ECANCELLED);
    cr_expect_eq(atomic_revision(s, a.added), 1);
    cr_expect_eq(atomic_revision(s, f.keep), 2);
    cr_expect_eq(atomic_counter(s, 0), 15);
    ee_storage_free(s);
}

static ee_status open_other_scope(ee_storage *s, void *payload)
{
    (void)s;
    return ee__storage_atomic(payload, insert_and_peek, &(peek){.s = payload});
}

Test(storage_atomic, a_scope_of_another_handle_inside_one_is_refused)
{
    ee_storage *a = open_memory(), *b = open_sqlite();
    cr_expect_eq(ee__storage_atomic(a, open_other_scope, b), EE_EINVAL);
    cr_expect_eq(atomic_items(b), 0);
    cr_expect_eq(ee__storage_atomic(NULL, open_other_scope, b), EE_EINVAL);
    ee_storage_free(b);
    ee_storage_free(a);
}
