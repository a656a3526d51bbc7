/*
 * ee__storage_atomic_deferred() on SQLite: the scope commits like any
 * other (atomic, visible, rolled back on failure) but without its own
 * fsync when the file is synchronous=FULL; the connection is FULL again
 * for the next scope, and a later synced commit carries the deferred one
 * to the disk. The fsyncs are counted by a VFS shim (sqlite_sync_count.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "atomic_checks.h"
#include "sqlite_sync_count.h"

static char dir[64], uri[220];

static void setup(void)
{
    cr_assert_eq(sqlite_sync_count_install(), SQLITE_OK);
    snprintf(dir, sizeof dir, "/tmp/ee-storage-deferred-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

TestSuite(sqlite_deferred, .init = setup, .fini = teardown, .timeout = 60);

static ee_storage *open_sqlite(const char *options)
{
    snprintf(uri, sizeof uri, "sqlite://%s/store.db%s", dir, options);
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_open_uri(&s, uri), EE_OK, "%s", ee_error_last_message());
    return s;
}

static long wal_syncs_of(ee_storage *s, bool deferred, const char *exec, bool fail)
{
    atomic_deferred_step a = {exec, fail};
    long before = atomic_load(&sqlite_syncs_wal);
    ee_status st = deferred ? ee__storage_atomic_deferred(s, atomic_deferred_insert, &a)
                            : ee__storage_atomic(s, atomic_deferred_insert, &a);
    cr_assert_eq(st, fail ? EE_ECONFLICT : EE_OK, "%s", ee_error_last_message());
    return atomic_load(&sqlite_syncs_wal) - before;
}

Test(sqlite_deferred, a_deferred_scope_commits_without_a_sync_and_the_next_one_syncs)
{
    ee_storage *s = open_sqlite("");
    (void)wal_syncs_of(s, false, "e-warm", false); /* tables, the counter's document */
    long synced = wal_syncs_of(s, false, "e-1", false);
    cr_assert_geq(synced, 1, "a synchronous=FULL commit syncs the log (%ld)", synced);
    cr_assert_eq(wal_syncs_of(s, true, "e-2", false), 0, "the deferred scope synced");
    cr_assert_eq(atomic_items(s), 3, "the deferred scope's insert is committed and visible");
    cr_assert_eq(atomic_counter(s, 0), 3, "and its increment");
    /* the connection is FULL again: the next ordinary scope syncs */
    cr_assert_geq(wal_syncs_of(s, false, "e-3", false), 1);
    ee_storage_free(s);
}

Test(sqlite_deferred, a_failing_deferred_scope_applies_nothing)
{
    ee_storage *s = open_sqlite("");
    (void)wal_syncs_of(s, false, "e-warm", false);
    (void)wal_syncs_of(s, true, "e-fail", true);
    cr_assert_eq(atomic_items(s), 1);
    cr_assert_eq(atomic_counter(s, 0), 1);
    cr_assert_geq(wal_syncs_of(s, false, "e-after", false), 1, "FULL after a failed scope too");
    ee_storage_free(s);
}

Test(sqlite_deferred, normal_and_off_files_are_left_as_they_are)
{
    ee_storage *s = open_sqlite("?synchronous=normal");
    (void)wal_syncs_of(s, false, "e-warm", false);
    cr_assert_eq(wal_syncs_of(s, false, "e-1", false), 0, "normal: no sync per commit");
    cr_assert_eq(wal_syncs_of(s, true, "e-2", false), 0);
    cr_assert_eq(wal_syncs_of(s, false, "e-3", false), 0, "still normal, not raised to FULL");
    ee_storage_free(s);
}

Test(sqlite_deferred, the_memory_backend_runs_it_as_an_ordinary_scope)
{
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_memory_new(&s), EE_OK);
    atomic_check_deferred(s);
    ee_storage_free(s);
}

Test(sqlite_deferred, sqlite_commits_and_rolls_back_it_like_any_other)
{
    ee_storage *s = open_sqlite("");
    atomic_check_deferred(s);
    ee_storage_free(s);
}
