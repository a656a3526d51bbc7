/*
 * What the catalog API tests share (catalog.c, access.c): an engine on
 * memory or on a fresh SQLite file, a test run once on each, calls of
 * JSON-returning APIs checked and parsed, entries created. Every helper
 * asserts (Criterion).
 *
 * A test file defines, before including this header,
 *     #define CATALOG_TEST_NAME "access"          the SQLite file's tag
 *     #define CATALOG_TEST_CLOCK test_clock       an ee_clock_fn, or NULL
 *     #define CATALOG_SUITE_MEMORY access_memory  the two suites' names
 *     #define CATALOG_SUITE_SQLITE access_sqlite
 */
#ifndef EE_TEST_CATALOG_TEST_H
#define EE_TEST_CATALOG_TEST_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine_fixture.h"
#include "execengine/catalog.h"

static char db_path[256];

static void drop_db(void)
{
    char p[300];
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", db_path, sfx[i]);
        unlink(p);
    }
}

/* An engine on "memory" or on a fresh "sqlite" file. */
static ee_engine *open_engine(const char *kind)
{
    if (strcmp(kind, "sqlite") == 0) {
        snprintf(db_path, sizeof db_path, "/tmp/ee-catalog-%s-%d.db", CATALOG_TEST_NAME,
                 (int)getpid());
        drop_db();
        char uri[300];
        snprintf(uri, sizeof uri, "sqlite://%s", db_path);
        return ee_test_engine_open(uri, CATALOG_TEST_CLOCK, NULL);
    }
    db_path[0] = '\0';
    return ee_test_engine_open("memory:", CATALOG_TEST_CLOCK, NULL);
}

static void close_engine(ee_engine *e)
{
    ee_engine_close(e);
    if (db_path[0] != '\0')
        drop_db();
}

/* Run `body` once on memory and once on sqlite storage. */
#define BOTH(name)                                                                                 \
    static void name##_body(ee_engine *e);                                                         \
    Test(CATALOG_SUITE_MEMORY, name)                                                               \
    {                                                                                              \
        ee_engine *e = open_engine("memory");                                                      \
        name##_body(e);                                                                            \
        close_engine(e);                                                                           \
    }                                                                                              \
    Test(CATALOG_SUITE_SQLITE, name)                                                               \
    {                                                                                              \
        ee_engine *e = open_engine("sqlite");                                                      \
        name##_body(e);                                                                            \
        close_engine(e);                                                                           \
    }                                                                                              \
    static void name##_body(ee_engine *e)

static json_t *parse(const char *text)
{
    cr_assert_not_null(text);
    json_t *doc = json_loads(text, 0, NULL);
    cr_assert_not_null(doc, "not JSON: %s", text);
    return doc;
}

/* Call a JSON-returning API expecting `want`; returns the parsed document. */
#define CALL(want, call)                                                                           \
    ({                                                                                             \
        char *out_ = NULL;                                                                         \
        ee_status st_ = (call);                                                                    \
        cr_assert_eq(st_, (want), "%s: got %s (%s) out=%s", #call, ee_status_name(st_),            \
                     ee_error_last_message(), out_ ? out_ : "(null)");                             \
        json_t *doc_ = parse(out_);                                                                \
        ee_free(out_);                                                                             \
        doc_;                                                                                      \
    })

static const char *str(const json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* Create the entry `json` (as the admin); its id (the caller frees it). */
static char *entry(ee_engine *e, const char *json)
{
    char *out = NULL;
    ee_status st = ee_catalog_create(e, json, &out);
    cr_assert_eq(st, EE_OK, "create %s: %s", json, out);
    json_t *doc = parse(out);
    ee_free(out);
    char *id = strdup(str(doc, "id"));
    json_decref(doc);
    return id;
}

#endif
