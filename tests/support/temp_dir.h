/*
 * tests/support/temp_dir.h - a fresh folder under /tmp for one test's
 * files, and its removal.
 *
 *   static char dir[64];
 *   ee_test_temp_dir("/tmp/ee-storage-file-XXXXXX", dir, sizeof dir);   // asserts
 *   ...
 *   ee_test_temp_dir_remove(dir);
 */
#ifndef EE_TEST_TEMP_DIR_H
#define EE_TEST_TEMP_DIR_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

/* mkdtemp() of `pattern` (ending in XXXXXX) into dir. */
static inline void ee_test_temp_dir(const char *pattern, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s", pattern);
    cr_assert_not_null(mkdtemp(dir), "mkdtemp(%s)", pattern);
}

/* rm -rf dir; a failure is printed, not asserted (it runs in teardowns). */
static inline void ee_test_temp_dir_remove(const char *dir)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

#endif
