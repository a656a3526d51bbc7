/*
 * Integration tests reach the real servers that the ctest fixture
 * `servers` started (tests/support/test-servers.sh). A missing server is a
 * failure, never a skip.
 */
#ifndef EE_TEST_SERVERS_H
#define EE_TEST_SERVERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The URI `name` (EE_TEST_POSTGRES_URI, EE_TEST_REDIS_URI) from the file
 * named by $EE_TEST_SERVERS_ENV, or from the environment itself. Copied
 * into a static buffer; fails the test if absent. */
static inline const char *ee_test_server_uri(const char *name)
{
    static char value[512];
    const char *direct = getenv(name);
    if (direct != NULL && direct[0] != '\0')
        return direct;
    const char *path = getenv("EE_TEST_SERVERS_ENV");
    cr_assert_not_null(path, "EE_TEST_SERVERS_ENV is not set: run this test through ctest");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s: did the servers fixture start?", path);
    char line[sizeof value];
    size_t n = strlen(name);
    value[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, name, n) == 0 && line[n] == '=') {
            snprintf(value, sizeof value, "%s", line + n + 1);
            value[strcspn(value, "\r\n")] = '\0';
        }
    fclose(f);
    cr_assert(value[0] != '\0', "%s not found in %s: the server did not start", name, path);
    return value;
}

#endif
