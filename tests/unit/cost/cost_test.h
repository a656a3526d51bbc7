/* Shared helpers of the cost unit tests (not a test of its own). */
#ifndef EE_TEST_COST_H
#define EE_TEST_COST_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "execengine/cost.h"

/* A file of the source tree, found from this test's own path (CMake
 * compiles with absolute source paths). */
static inline const char *cost_test_path(const char *rel)
{
    static _Thread_local char buf[4096];
    const char *me = __FILE__;
    const char *cut = strstr(me, "tests/unit/cost/");
    cr_assert_not_null(cut, "cannot locate the source tree from %s", me);
    snprintf(buf, sizeof buf, "%.*s%s", (int)(cut - me), me, rel);
    return buf;
}

/* A table loaded with data/prices.json and data/cost_rules.json. */
static inline ee_cost_table *cost_test_table(void)
{
    ee_cost_table *t = NULL;
    cr_assert_eq(ee_cost_table_new(&t), EE_OK);
    cr_assert_eq(ee_cost_table_load_prices_file(t, cost_test_path("data/prices.json")), EE_OK,
                 "%s", ee_error_last_message());
    cr_assert_eq(ee_cost_table_load_rules_file(t, cost_test_path("data/cost_rules.json")), EE_OK,
                 "%s", ee_error_last_message());
    return t;
}

/* Parse an answer document (the test owns the result). */
static inline json_t *cost_test_doc(char *text)
{
    cr_assert_not_null(text);
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    cr_assert_not_null(doc, "not JSON: %s", text);
    ee_free(text);
    return doc;
}

static inline long long cost_test_int(const json_t *doc, const char *path)
{
    /* "a.b.c": nested members */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *v = doc;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    cr_assert(json_is_integer(v), "%s is not an integer", path);
    return (long long)json_integer_value(v);
}

static inline const char *cost_test_str(const json_t *doc, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const json_t *v = doc;
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    cr_assert(json_is_string(v), "%s is not a string", path);
    return json_string_value(v);
}

#endif
