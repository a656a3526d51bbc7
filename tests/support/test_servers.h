/*
 * Integration tests reach the real servers that the ctest fixtures
 * `servers` (tests/support/test-servers.sh) and `n8n`
 * (tests/support/n8n/harness.sh) started. A missing server is a failure,
 * never a skip.
 */
#ifndef EE_TEST_SERVERS_H
#define EE_TEST_SERVERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* `name` from the environment, else from the KEY=value file named by the
 * environment variable `file_var` (written by a ctest fixture), copied into
 * buf. Fails the test if absent. */
static inline const char *ee_test_fixture_value(const char *file_var, const char *fixture,
                                                const char *name, char *buf, size_t cap)
{
    const char *direct = getenv(name);
    if (direct != NULL && direct[0] != '\0')
        return direct;
    const char *path = getenv(file_var);
    cr_assert_not_null(path, "%s is not set: run this test through ctest", file_var);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s: did the %s fixture start?", path, fixture);
    char line[4096];
    size_t n = strlen(name);
    buf[0] = '\0';
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, name, n) == 0 && line[n] == '=') {
            size_t len = strcspn(line + n + 1, "\r\n");
            cr_assert_lt(len, cap, "%s in %s is longer than %zu bytes", name, path, cap - 1);
            memcpy(buf, line + n + 1, len);
            buf[len] = '\0';
        }
    fclose(f);
    cr_assert(buf[0] != '\0', "%s not found in %s: the %s fixture did not start", name, path,
              fixture);
    return buf;
}

/* The URI `name` (EE_TEST_POSTGRES_URI, EE_TEST_REDIS_URI) of the servers
 * fixture; copied into a static buffer. */
static inline const char *ee_test_server_uri(const char *name)
{
    static char value[512];
    return ee_test_fixture_value("EE_TEST_SERVERS_ENV", "servers", name, value, sizeof value);
}

/* A value (EE_TEST_N8N_URL, EE_TEST_N8N_API_KEY ...) of the n8n fixture. */
static inline const char *ee_test_n8n_value(const char *name, char *buf, size_t cap)
{
    return ee_test_fixture_value("EE_TEST_N8N_ENV", "n8n", name, buf, cap);
}

#endif
