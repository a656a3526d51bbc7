/*
 * Helpers of the audit log's tests: read every entry of a workspace through
 * the public door (ee_audit_query(), following nextCursor), count entries
 * by action, find one.
 */
#ifndef EE_TEST_AUDIT_TEST_H
#define EE_TEST_AUDIT_TEST_H

#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <execengine/execengine.h>

/* Every entry of `p`'s workspace matching `query_extra` (members added to
 * the query object, "" for none), newest first, through pages of `limit`. */
static inline json_t *audit_all(ee_engine *e, const ee_principal *p, const char *query_extra,
                                int limit)
{
    json_t *all = json_array();
    char *cursor = NULL;
    for (int pages = 0; pages < 10000; pages++) {
        char q[1024];
        snprintf(q, sizeof q, "{\"limit\": %d%s%s%s%s%s}", limit,
                 query_extra[0] != '\0' ? ", " : "", query_extra,
                 cursor != NULL ? ", \"cursor\": \"" : "", cursor != NULL ? cursor : "",
                 cursor != NULL ? "\"" : "");
        free(cursor);
        cursor = NULL;
        char *out = NULL;
        ee_status st = ee_audit_query(e, p, q, &out);
        cr_assert_eq(st, EE_OK, "ee_audit_query(%s): %s", q, out);
        json_t *doc = json_loads(out, 0, NULL);
        cr_assert_not_null(doc, "%s", out);
        ee_free(out);
        cr_assert_leq(json_array_size(json_object_get(doc, "data")), (size_t)limit);
        json_array_extend(all, json_object_get(doc, "data"));
        const char *next = json_string_value(json_object_get(doc, "nextCursor"));
        if (next != NULL)
            cursor = strdup(next);
        json_decref(doc);
        if (cursor == NULL)
            return all;
    }
    cr_assert_fail("the pages never ended");
    return all;
}

/* Entries of `p`'s workspace whose action is `action`. */
static inline size_t audit_count(ee_engine *e, const ee_principal *p, const char *action)
{
    char extra[300];
    snprintf(extra, sizeof extra, "\"action\": \"%s\"", action);
    json_t *all = audit_all(e, p, extra, 100);
    size_t n = json_array_size(all);
    json_decref(all);
    return n;
}

/* The one entry of `p`'s workspace whose action is `action` (the test
 * fails unless there is exactly one); the caller json_decref()s it. */
static inline json_t *audit_one(ee_engine *e, const ee_principal *p, const char *action)
{
    char extra[300];
    snprintf(extra, sizeof extra, "\"action\": \"%s\"", action);
    json_t *all = audit_all(e, p, extra, 100);
    cr_assert_eq(json_array_size(all), 1, "%s: %zu entries", action, json_array_size(all));
    json_t *one = json_incref(json_array_get(all, 0));
    json_decref(all);
    return one;
}

static inline const char *audit_str(const json_t *entry, const char *path)
{
    const json_t *v = entry;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *k = strtok_r(buf, ".", &save); k != NULL && v != NULL;
         k = strtok_r(NULL, ".", &save))
        v = json_object_get(v, k);
    return json_string_value(v);
}

/* Assert an entry's actor, workspace, target and outcome. */
static inline void audit_expect(const json_t *entry, const char *actor, const char *ws,
                                const char *kind, const char *target, const char *outcome,
                                const char *status)
{
    char *text = json_dumps(entry, JSON_COMPACT);
    cr_expect_str_eq(audit_str(entry, "actor"), actor, "%s", text);
    cr_expect_str_eq(audit_str(entry, "workspaceId"), ws, "%s", text);
    cr_expect_str_eq(audit_str(entry, "target.kind"), kind, "%s", text);
    if (target != NULL)
        cr_expect_str_eq(audit_str(entry, "target.id"), target, "%s", text);
    cr_expect_str_eq(audit_str(entry, "outcome"), outcome, "%s", text);
    cr_expect_str_eq(audit_str(entry, "status"), status, "%s", text);
    cr_expect(json_is_object(json_object_get(entry, "detail")), "%s", text);
    cr_expect(json_is_integer(json_object_get(entry, "time")), "%s", text);
    free(text);
}

/* The counter `name` of ee_audit_stats(). */
static inline json_int_t audit_stat(ee_engine *e, const char *name)
{
    char *out = NULL;
    cr_assert_eq(ee_audit_stats(e, &out), EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    ee_free(out);
    json_int_t v = json_integer_value(json_object_get(doc, name));
    json_decref(doc);
    return v;
}

#endif
