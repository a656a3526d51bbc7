/*
 * tests/support/source_dir.h - the source tree's data/ folder (plans,
 * prices, integrations), found from this header's own path: integration
 * tests are not given EE_SOURCE_DIR (unit tests use engine_fixture.h's
 * EE_TEST_DATA_DIR).
 */
#ifndef EE_TEST_SOURCE_DIR_H
#define EE_TEST_SOURCE_DIR_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* <source tree>/data into out; false when __FILE__ names no folder two
 * levels up. Asserts nothing: it may run in a forked host. */
static inline bool ee_test_source_data_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s", __FILE__); /* <source tree>/tests/support/source_dir.h */
    for (int up = 0; up < 3; up++) {
        char *slash = strrchr(out, '/');
        if (slash == NULL)
            return false;
        *slash = '\0';
    }
    strncat(out, "/data", cap - strlen(out) - 1);
    return true;
}

#endif
