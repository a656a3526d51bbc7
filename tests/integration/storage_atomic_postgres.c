/*
 * ee__storage_atomic() on the PostgreSQL the `servers` fixture started
 * (tests/unit/storage/atomic.c for memory and sqlite): one transaction for
 * a step's writes; a failing step, or a failing statement inside one (the
 * transaction is then aborted on the server), leaves nothing applied.
 * Each test has its own schema.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../unit/storage/atomic_checks.h"
#include "test_servers.h"

static char schema[64];
static char store_uri[700];

static void quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

static void setup(void)
{
    const char *base = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(schema, sizeof schema, "ee_at_%d_%ld", (int)getpid(), (long)(ts.tv_nsec % 1000000));
    snprintf(store_uri, sizeof store_uri, "%s%sschema=%s", base,
             strchr(base, '?') != NULL ? "&" : "?", schema);
}

static void teardown(void)
{
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    PGconn *c = PQconnectdb(ee_test_server_uri("EE_TEST_POSTGRES_URI"));
    PQsetNoticeProcessor(c, quiet, NULL);
    if (PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, sql));
    PQfinish(c);
}

TestSuite(storage_atomic_postgres, .init = setup, .fini = teardown, .timeout = 300);

static ee_storage *open_store(void)
{
    ee_storage *s = NULL;
    ee_status st = ee_storage_open_uri(&s, store_uri);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_assert(ee__storage_atomic_native(s));
    return s;
}

Test(storage_atomic_postgres, commits_every_write_of_the_step)
{
    ee_storage *s = open_store();
    atomic_check_commit(s);
    ee_storage_free(s);
}

Test(storage_atomic_postgres, rolls_back_when_the_step_fails)
{
    ee_storage *s = open_store();
    atomic_check_rollback(s, END_FN_ERROR);
    ee_storage_free(s);
}

Test(storage_atomic_postgres, rolls_back_when_a_statement_inside_fails)
{
    ee_storage *s = open_store();
    atomic_check_rollback(s, END_DUPLICATE);
    ee_storage_free(s);
}

Test(storage_atomic_postgres, nested_scope_joins_the_outer_one)
{
    ee_storage *s = open_store();
    atomic_check_nested(s);
    ee_storage_free(s);
}

Test(storage_atomic_postgres, threads_in_scopes_lose_nothing)
{
    ee_storage *s = open_store();
    atomic_check_threads(s);
    ee_storage_free(s);
}

/* A step that ignores a failed statement and goes on: the server aborted
 * the transaction, so the scope fails and nothing is stored. */
static ee_status ignore_duplicate(ee_storage *s, void *payload)
{
    (void)payload;
    atomic_insert(s, "e-first", CLAIM_FAR, NULL);
    bson_t *d = claim_item("e-first", "ws-a", 0, CLAIM_FAR);
    ee_status st = ee_storage_insert(s, "executionQueue", NULL, bson_get_data(d), d->len, NULL);
    bson_destroy(d);
    cr_expect_eq(st, EE_EEXISTS);
    ee_error_clear();
    return EE_OK;
}

Test(storage_atomic_postgres, an_ignored_failure_fails_the_scope)
{
    ee_storage *s = open_store();
    cr_expect_eq(ee__storage_atomic(s, ignore_duplicate, NULL), EE_EIO);
    cr_expect_eq(atomic_items(s), 0, "nothing of the step is stored");
    cr_expect_eq(atomic_counter(s, 1), 1, "the connection serves again");
    ee_storage_free(s);
}

/* Only the commit's wait for the WAL flush is dropped (SET LOCAL
 * synchronous_commit = off, ending with the transaction). */
Test(storage_atomic_postgres, a_deferred_scope_commits_and_rolls_back_like_any_other)
{
    ee_storage *s = open_store();
    atomic_check_deferred(s);
    ee_storage_free(s);
}
