/*
 * The WAL switch both SQLite backends use (lib/core/sqlite_wal.h): a file
 * switches, ":memory:" answers its own mode, a lock held by another
 * connection is waited out within the budget and reported past it.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "core/sqlite_wal.h"

static char path[128];

static void fresh(void)
{
    snprintf(path, sizeof path, "/tmp/ee-sqlite-wal-%d.db", (int)getpid());
    unlink(path);
}

static void cleanup(void)
{
    char p[160];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-journal", path);
    unlink(p);
}

TestSuite(sqlite_wal, .init = fresh, .fini = cleanup, .timeout = 60);

static sqlite3 *open_db(const char *p)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(p, &db), SQLITE_OK);
    return db;
}

Test(sqlite_wal, a_file_switches_to_wal)
{
    sqlite3 *db = open_db(path);
    char mode[16] = "x";
    cr_expect_eq(ee__sqlite_wal(db, 1000, mode), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_expect_str_eq(mode, "wal");
    sqlite3_close(db);
}

Test(sqlite_wal, memory_answers_its_own_mode)
{
    sqlite3 *db = open_db(":memory:");
    char mode[16] = "x";
    cr_expect_eq(ee__sqlite_wal(db, 1000, mode), SQLITE_OK, "%s", sqlite3_errmsg(db));
    cr_expect_str_eq(mode, "memory");
    sqlite3_close(db);
}

/* A connection holding an exclusive lock on a rollback-journal file keeps
 * every other one from switching it. */
static sqlite3 *hold_lock(void)
{
    sqlite3 *db = open_db(path);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)",
                              NULL, NULL, NULL),
                 SQLITE_OK, "%s", sqlite3_errmsg(db));
    return db;
}

Test(sqlite_wal, a_lock_held_past_the_budget_is_reported_busy)
{
    sqlite3 *holder = hold_lock();
    sqlite3 *db = open_db(path);
    char mode[16] = "x";
    int rc = ee__sqlite_wal(db, 20, mode);
    cr_expect_eq(rc & 0xff, SQLITE_BUSY, "rc %d", rc);
    cr_expect_str_eq(mode, "", "no mode is answered");
    sqlite3_close(db);
    sqlite3_exec(holder, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(holder);
}

static void *commit_later(void *p)
{
    usleep(50 * 1000);
    sqlite3_exec(p, "COMMIT", NULL, NULL, NULL);
    return NULL;
}

Test(sqlite_wal, a_lock_given_back_within_the_budget_is_waited_out)
{
    sqlite3 *holder = hold_lock();
    sqlite3 *db = open_db(path);
    sqlite3_stmt *probe = NULL;
    int first = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &probe, NULL);
    if (first == SQLITE_OK)
        first = sqlite3_step(probe);
    sqlite3_finalize(probe);
    cr_assert_eq(first & 0xff, SQLITE_BUSY, "one try alone meets the lock (%d)", first);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, commit_later, holder), 0);
    char mode[16] = "x";
    int rc = ee__sqlite_wal(db, 60000, mode);
    pthread_join(t, NULL);
    cr_expect_eq(rc, SQLITE_OK, "rc %d: %s", rc, sqlite3_errmsg(db));
    cr_expect_str_eq(mode, "wal");
    sqlite3_close(db);
    sqlite3_close(holder);
}
