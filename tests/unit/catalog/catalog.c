/*
 * The catalog API (entries and categories) on memory and sqlite storage:
 * CRUD, filters, sorting, cursor paging, search, schemas, input
 * validation, bad input with nothing stored, concurrent updates.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/core.h"
#include "execengine/catalog.h"
#include "execengine/storage.h"
#include "engine/engine.h"

static int64_t clock_now = 1700000000000;

static int64_t test_clock(void *payload)
{
    (void)payload;
    return __atomic_load_n(&clock_now, __ATOMIC_SEQ_CST);
}

#define CATALOG_TEST_NAME "test"
#define CATALOG_TEST_CLOCK test_clock
#define CATALOG_SUITE_MEMORY catalog_memory
#define CATALOG_SUITE_SQLITE catalog_sqlite
#include "catalog_test.h"

static uint64_t count_docs(ee_engine *e, const char *coll)
{
    uint64_t n = 0;
    cr_assert_eq(ee_storage_count(ee__engine_storage(e), coll, NULL, NULL, &n), EE_OK);
    return n;
}

static char *category(ee_engine *e, const char *name, int order)
{
    char in[256];
    snprintf(in, sizeof in, "{\"name\": \"%s\", \"icon\": \"i\", \"sortOrder\": %d}", name, order);
    char *out = NULL;
    cr_assert_eq(ee_catalog_category_create(e, in, &out), EE_OK, "%s", out);
    json_t *doc = parse(out);
    ee_free(out);
    char *id = strdup(str(doc, "id"));
    json_decref(doc);
    return id;
}

/* ---- CRUD ----------------------------------------------------------------------- */

BOTH(create_get_update)
{
    char *cat = category(e, "Research", 1);
    char in[1024];
    snprintf(in, sizeof in,
             "{\"n8nWorkflowId\": \"wf-1\", \"name\": \"Daily research\", \"description\": "
             "\"Searches the web\\nand mails\", \"category\": \"%s\", \"tags\": [\"ai\", \"email\", "
             "\"ai\"], \"inputSchema\": {\"type\": \"object\", \"properties\": {\"q\": {\"type\": "
             "\"string\"}}}, \"outputSchema\": {\"type\": \"object\"}, \"requiresApiKey\": true, "
             "\"estimatedCost\": \"0.05\", \"apiKeyProvider\": \"openrouter\", \"emailTemplateId\": "
             "\"0123456789abcdef01234567\"}",
             cat);
    json_t *doc = CALL(EE_OK, ee_catalog_create(e, in, &out_));
    const char *id = str(doc, "id");
    cr_assert_eq(strlen(id), 24);
    cr_assert_str_eq(str(doc, "n8nWorkflowId"), "wf-1");
    cr_assert_str_eq(str(doc, "category"), cat);
    cr_assert_eq(json_array_size(json_object_get(doc, "tags")), 2, "duplicate tag dropped");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc, "estimatedCost"),
                                                    "nanoUsd")),
                 50000000);
    cr_assert_str_eq(str(json_object_get(doc, "estimatedCost"), "usd"), "0.050000000");
    cr_assert(json_is_true(json_object_get(doc, "isActive")));
    cr_assert(json_is_false(json_object_get(doc, "runnable")), "not synced yet");
    cr_assert_eq(json_integer_value(json_object_get(doc, "revision")), 1);
    cr_assert_eq(json_integer_value(json_object_get(doc, "createdAt")), clock_now);
    cr_assert_str_eq(str(json_object_get(doc, "inputSchema"), "type"), "object");
    char idc[25];
    snprintf(idc, sizeof idc, "%s", id);
    json_decref(doc);

    doc = CALL(EE_OK, ee_catalog_get(e, NULL, idc, 0, &out_));
    cr_assert_str_eq(str(doc, "name"), "Daily research");
    cr_assert_str_eq(str(doc, "emailTemplateId"), "0123456789abcdef01234567");
    json_decref(doc);

    clock_now += 1000;
    doc = CALL(EE_OK, ee_catalog_update(e, idc, "{\"description\": \"new\", \"tags\": [\"x\"]}",
                                        &out_));
    cr_assert_str_eq(str(doc, "description"), "new");
    cr_assert_str_eq(str(doc, "name"), "Daily research", "untouched fields stay");
    cr_assert_eq(json_integer_value(json_object_get(doc, "revision")), 2);
    cr_assert_eq(json_integer_value(json_object_get(doc, "updatedAt")), clock_now);
    json_t *edited = json_object_get(doc, "adminEdited");
    bool has_desc = false;
    for (size_t i = 0; i < json_array_size(edited); i++)
        has_desc = has_desc || strcmp(json_string_value(json_array_get(edited, i)),
                                      "description") == 0;
    cr_assert(has_desc, "an admin's edit of a shared field is recorded");
    json_decref(doc);

    /* a stale revision is a conflict; the right one applies */
    json_decref(CALL(EE_ECONFLICT, ee_catalog_update(e, idc, "{\"revision\": 1, \"name\": \"n\"}",
                                                     &out_)));
    json_decref(CALL(EE_OK, ee_catalog_update(e, idc, "{\"revision\": 2, \"isActive\": false}",
                                              &out_)));
    /* inactive: hidden from customers, visible to the admin */
    json_decref(CALL(EE_ENOTFOUND, ee_catalog_get(e, NULL, idc, 0, &out_)));
    json_decref(CALL(EE_OK, ee_catalog_get(e, NULL, idc, EE_CATALOG_INCLUDE_INACTIVE, &out_)));
    json_decref(CALL(EE_ENOTFOUND, ee_catalog_get(e, NULL, "0123456789abcdef01234567", 1, &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_get(e, NULL, "nope", 0, &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_update(e, idc, "{\"n8nWorkflowId\": \"x\"}", &out_)));
    json_decref(CALL(EE_EEXISTS, ee_catalog_create(e, "{\"n8nWorkflowId\": \"wf-1\", \"name\": "
                                                      "\"again\"}", &out_)));
    free(cat);
}

/* ---- bad input: clear status, nothing stored --------------------------------------------- */

static char *big_string_entry(size_t n)
{
    char *s = malloc(n + 100);
    int k = sprintf(s, "{\"n8nWorkflowId\": \"big\", \"name\": \"");
    memset(s + k, 'a', n);
    strcpy(s + k + n, "\"}");
    return s;
}

BOTH(bad_input_stores_nothing)
{
    char *ok_id = entry(e, "{\"n8nWorkflowId\": \"ok\", \"name\": \"ok\"}");
    uint64_t before = count_docs(e, "workflowCatalog");
    static const struct {
        const char *json;
        ee_status want;
    } cases[] = {
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"inputSchema\": {\"type\": 5}}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"inputSchema\": {\"pattern\": \"(\"}}",
         EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"inputSchema\": {\"$ref\": \"#/nope\"}}",
         EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"inputSchema\": 7}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"category\": \"0123456789abcdef01234567\"}",
         EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"category\": \"books\"}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"\"}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"a\\u0000b\"}", EE_EPARSE},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"a\\nb\"}", EE_EINVAL},
        /* C1 controls (U+0085 NEL, U+009B CSI) as credential names refuse them */
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"a\\u0085b\"}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"description\": \"\\u009b2J\"}",
         EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"tags\": [\"t\\u0080\"]}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"id\": \"0123456789abcdef01234567\"}",
         EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"trigger\": {}}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"colour\": \"red\"}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"estimatedCost\": -1}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"estimatedCost\": \"1e3\"}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"apiKeyProvider\": \"openai\"}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"tags\": [\"\"]}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"emailTemplateId\": 3}", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"has space\", \"name\": \"x\"}", EE_EINVAL},
        {"{\"name\": \"x\"}", EE_EINVAL},
        {"[1, 2]", EE_EINVAL},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"\xff\xfe\"}", EE_EPARSE},
        {"{\"n8nWorkflowId\": \"a\", \"name\": \"caf\xc3\"}", EE_EPARSE},
        {"{\"n8nWorkflowId\": \"a\", \"name\": ", EE_EPARSE},
        {"{\"n8nWorkflowId\": \"a\", \"n8nWorkflowId\": \"b\", \"name\": \"x\"}", EE_EPARSE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        ee_status st = ee_catalog_create(e, cases[i].json, &out);
        cr_expect_eq(st, cases[i].want, "case %zu (%s): %s (%s)", i, cases[i].json,
                     ee_status_name(st), ee_error_last_message());
        cr_expect(strlen(ee_error_last_message()) > 10, "case %zu has a message", i);
        json_t *doc = parse(out);
        cr_expect_not_null(json_object_get(json_object_get(doc, "error"), "message"));
        json_decref(doc);
        ee_free(out);
    }
    /* nesting 1000 deep, in an entry and in a patch */
    char deep[2200];
    int k = sprintf(deep, "{\"n8nWorkflowId\": \"d\", \"name\": \"d\", \"tags\": ");
    for (int i = 0; i < 1000; i++)
        deep[k++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[k++] = ']';
    strcpy(deep + k, "}");
    json_decref(CALL(EE_ETOOBIG, ee_catalog_create(e, deep, &out_)));
    /* a 10 MB string */
    char *big = big_string_entry(10 * 1024 * 1024);
    json_decref(CALL(EE_ETOOBIG, ee_catalog_create(e, big, &out_)));
    free(big);
    big = big_string_entry(EE_CATALOG_NAME_MAX + 1);
    json_decref(CALL(EE_ETOOBIG, ee_catalog_create(e, big, &out_)));
    free(big);
    cr_assert_eq(count_docs(e, "workflowCatalog"), before, "nothing was stored");

    /* the same through update: the stored entry is unchanged */
    json_t *was = CALL(EE_OK, ee_catalog_get(e, NULL, ok_id, 0, &out_));
    json_decref(CALL(EE_EINVAL, ee_catalog_update(e, ok_id, "{\"inputSchema\": {\"minLength\": "
                                                            "\"x\"}}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_update(e, ok_id, "{\"name\": \"fine\", \"category\": "
                                                            "\"0123456789abcdef01234567\"}",
                                                  &out_)));
    json_decref(CALL(EE_EPARSE, ee_catalog_update(e, ok_id, "{\"name\": \"\xc0\xaf\"}", &out_)));
    json_t *now = CALL(EE_OK, ee_catalog_get(e, NULL, ok_id, 0, &out_));
    cr_assert(json_equal(was, now), "a failed update changed nothing");
    json_decref(was);
    json_decref(now);
    free(ok_id);
}

Test(catalog_limits, every_field_is_bounded)
{
    ee_engine *e = open_engine("memory");
    char *s = malloc(EE_CATALOG_SCHEMA_MAX + 4096);
    /* description over 10 KB */
    int k = sprintf(s, "{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"description\": \"");
    memset(s + k, 'd', EE_CATALOG_DESCRIPTION_MAX + 1);
    strcpy(s + k + EE_CATALOG_DESCRIPTION_MAX + 1, "\"}");
    json_decref(CALL(EE_ETOOBIG, ee_catalog_create(e, s, &out_)));
    /* 51 tags */
    k = sprintf(s, "{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"tags\": [");
    for (int i = 0; i <= EE_CATALOG_TAGS_MAX; i++)
        k += sprintf(s + k, "%s\"t%d\"", i ? "," : "", i);
    strcpy(s + k, "]}");
    json_decref(CALL(EE_ETOOBIG, ee_catalog_create(e, s, &out_)));
    /* a 65-byte tag */
    k = sprintf(s, "{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"tags\": [\"");
    memset(s + k, 't', EE_CATALOG_TAG_MAX + 1);
    strcpy(s + k + EE_CATALOG_TAG_MAX + 1, "\"]}");
    json_decref(CALL(EE_ETOOBIG, ee_catalog_create(e, s, &out_)));
    /* a schema over 256 KB */
    k = sprintf(s, "{\"n8nWorkflowId\": \"a\", \"name\": \"x\", \"inputSchema\": "
                   "{\"description\": \"");
    memset(s + k, 'z', EE_CATALOG_SCHEMA_MAX);
    strcpy(s + k + EE_CATALOG_SCHEMA_MAX, "\"}}");
    json_decref(CALL(EE_ETOOBIG, ee_catalog_create(e, s, &out_)));
    /* a 129-byte n8n id */
    k = sprintf(s, "{\"name\": \"x\", \"n8nWorkflowId\": \"");
    memset(s + k, 'i', EE_CATALOG_N8N_ID_MAX + 1);
    strcpy(s + k + EE_CATALOG_N8N_ID_MAX + 1, "\"}");
    json_decref(CALL(EE_ETOOBIG, ee_catalog_create(e, s, &out_)));
    free(s);
    cr_assert_eq(count_docs(e, "workflowCatalog"), 0);
    /* exactly at the limits is fine */
    char name[EE_CATALOG_NAME_MAX + 1];
    memset(name, 'n', EE_CATALOG_NAME_MAX);
    name[EE_CATALOG_NAME_MAX] = '\0';
    char in[512];
    snprintf(in, sizeof in, "{\"n8nWorkflowId\": \"a\", \"name\": \"%s\"}", name);
    free(entry(e, in));
    close_engine(e);
}

/* ---- input validation ---------------------------------------------------------------------- */

static const char *const schema_entry =
    "{\"n8nWorkflowId\": \"val\", \"name\": \"Validator\", \"inputSchema\": {"
    "\"type\": \"object\", \"required\": [\"query\"], \"properties\": {"
    "\"query\": {\"type\": \"string\", \"minLength\": 2},"
    "\"limit\": {\"type\": \"integer\", \"minimum\": 1, \"maximum\": 50, \"default\": 10},"
    "\"opts\": {\"type\": \"object\", \"properties\": {\"lang\": {\"type\": \"string\", "
    "\"default\": \"en\"}}, \"default\": {}}}, \"additionalProperties\": false}}";

/* Workflow inputs beyond int64 and double are valid JSON: validated
 * exactly and given back as written, never refused as "not JSON" nor
 * rounded (#11). */
BOTH(validate_input_keeps_big_numbers_exact)
{
    char *id = entry(e, "{\"n8nWorkflowId\": \"big\", \"name\": \"Big\", \"inputSchema\": {"
                        "\"type\": \"object\", \"properties\": {"
                        "\"id\": {\"type\": \"integer\", \"minimum\": 1},"
                        "\"x\": {\"type\": \"number\", \"maximum\": 1e300},"
                        "\"tag\": {\"type\": \"string\", \"default\": \"t\"}}}}");
    char *out = NULL;
    ee_status st = ee_catalog_validate_input(e, NULL, id, "{\"id\": 123456789012345678901234567890, \"x\": 972783798187987123879878123.18878137}",
        &out);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(out, "{\"id\":123456789012345678901234567890,"
                          "\"x\":972783798187987123879878123.18878137,\"tag\":\"t\"}");
    ee_free(out);
    out = NULL;
    /* exact bounds: past the maximum, and a big decimal that is no integer */
    cr_expect_eq(ee_catalog_validate_input(e, NULL, id, "{\"x\": 1e400}", &out), EE_EVALIDATION, "%s",
                 ee_error_last_message());
    ee_free(out);
    out = NULL;
    cr_expect_eq(ee_catalog_validate_input(e, NULL, id, "{\"id\": 123456789012345678901234567890.5}",
                                           &out), EE_EVALIDATION, "%s", ee_error_last_message());
    ee_free(out);
    out = NULL;
    cr_expect_eq(ee_catalog_validate_input(e, NULL, id, "{\"id\": -123456789012345678901234567890}",
                                           &out), EE_EVALIDATION, "%s", ee_error_last_message());
    ee_free(out);
    free(id);
}

BOTH(validate_input_reports_and_fills_defaults)
{
    char *id = entry(e, schema_entry);
    json_t *doc = CALL(EE_OK, ee_catalog_validate_input(e, NULL, id, "{\"query\": \"llm news\"}", &out_));
    cr_assert_eq(json_integer_value(json_object_get(doc, "limit")), 10, "default applied");
    cr_assert_str_eq(str(json_object_get(doc, "opts"), "lang"), "en", "nested default");
    json_decref(doc);

    doc = CALL(EE_EVALIDATION,
               ee_catalog_validate_input(e, NULL, id, "{\"query\": \"x\", \"limit\": 99, \"y\": 1}", &out_));
    json_t *errors = json_object_get(json_object_get(json_object_get(doc, "error"), "detail"),
                                     "errors");
    cr_assert_geq(json_array_size(errors), 3, "every violation: %zu", json_array_size(errors));
    bool seen_query = false, seen_limit = false;
    for (size_t i = 0; i < json_array_size(errors); i++) {
        const char *p = str(json_array_get(errors, i), "instancePath");
        seen_query = seen_query || strcmp(p, "/query") == 0;
        seen_limit = seen_limit || strcmp(p, "/limit") == 0;
    }
    cr_assert(seen_query && seen_limit, "violations carry JSON pointers");
    json_decref(doc);

    /* bad parameters: each a clear status */
    char deep[2100];
    int k = sprintf(deep, "{\"query\": ");
    for (int i = 0; i < 1000; i++)
        deep[k++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[k++] = ']';
    strcpy(deep + k, "}");
    json_decref(CALL(EE_ETOOBIG, ee_catalog_validate_input(e, NULL, id, deep, &out_)));
    size_t n = 10 * 1024 * 1024;
    char *big = malloc(n + 32);
    k = sprintf(big, "{\"query\": \"");
    memset(big + k, 'q', n);
    strcpy(big + k + n, "\"}");
    json_decref(CALL(EE_ETOOBIG, ee_catalog_validate_input(e, NULL, id, big, &out_)));
    free(big);
    json_decref(CALL(EE_EPARSE, ee_catalog_validate_input(e, NULL, id, "{\"query\": \"\xff\"}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_validate_input(e, NULL, id, "[1]", &out_)));
    json_decref(CALL(EE_ENOTFOUND, ee_catalog_validate_input(e, NULL, "0123456789abcdef01234567", "{}",
                                                              &out_)));

    /* the cache follows updates: a new schema applies at once */
    json_decref(CALL(EE_OK, ee_catalog_update(e, id, "{\"inputSchema\": {\"type\": \"object\", "
                                                     "\"required\": [\"other\"]}}", &out_)));
    json_decref(CALL(EE_EVALIDATION, ee_catalog_validate_input(e, NULL, id, "{\"query\": \"ab\"}",
                                                               &out_)));
    json_decref(CALL(EE_OK, ee_catalog_update(e, id, "{\"inputSchema\": null}", &out_)));
    doc = CALL(EE_OK, ee_catalog_validate_input(e, NULL, id, "{\"anything\": [1, 2]}", &out_));
    cr_assert_eq(json_array_size(json_object_get(doc, "anything")), 2);
    json_decref(doc);
    /* inactive entries cannot be validated against (nor run) */
    json_decref(CALL(EE_OK, ee_catalog_update(e, id, "{\"isActive\": false}", &out_)));
    json_decref(CALL(EE_ENOTFOUND, ee_catalog_validate_input(e, NULL, id, "{}", &out_)));
    free(id);
}

/* ---- list: filters, sorting, paging ---------------------------------------------------------- */

#define N_ENTRIES 23

static void fill(ee_engine *e, char *cat_a, char *cat_b)
{
    for (int i = 0; i < N_ENTRIES; i++) {
        char in[512];
        clock_now += (i * 7919) % 13 + 1; /* distinct, not in name order */
        snprintf(in, sizeof in,
                 "{\"n8nWorkflowId\": \"wf-%02d\", \"name\": \"%c%s workflow %02d\", "
                 "\"category\": \"%s\", \"tags\": [%s], \"requiresApiKey\": %s, \"isActive\": %s}",
                 i, "zyxwvutsrqponmlkjihgfedcba"[i % 26], i % 2 ? "Email" : "report", i,
                 i % 3 ? cat_a : cat_b, i % 4 == 0 ? "\"AI\", \"mail\"" : "\"mail\"",
                 i % 5 == 0 ? "true" : "false", i % 6 == 5 ? "false" : "true");
        free(entry(e, in));
    }
}

/* Page through a query; check order and that every item comes once. */
static size_t page_all(ee_engine *e, const char *filters, const char *sort, bool desc,
                       size_t limit, size_t expect)
{
    char *cursor = NULL;
    json_t *seen = json_object();
    json_t *prev = NULL;
    size_t pages = 0;
    do {
        char q[2600];
        snprintf(q, sizeof q, "{%s%s\"sort\": \"%s\", \"order\": \"%s\", \"limit\": %zu%s%s%s}",
                 filters, filters[0] ? ", " : "", sort, desc ? "desc" : "asc", limit,
                 cursor ? ", \"cursor\": \"" : "", cursor ? cursor : "", cursor ? "\"" : "");
        free(cursor);
        cursor = NULL;
        json_t *doc = CALL(EE_OK, ee_catalog_list(e, NULL, q, &out_));
        cr_assert_eq((size_t)json_integer_value(json_object_get(doc, "total")), expect);
        json_t *data = json_object_get(doc, "data");
        cr_assert_leq(json_array_size(data), limit);
        for (size_t i = 0; i < json_array_size(data); i++) {
            json_t *it = json_array_get(data, i);
            cr_assert_null(json_object_get(seen, str(it, "id")), "an item came twice");
            json_object_set_new(seen, str(it, "id"), json_true());
            if (prev != NULL) {
                int c;
                if (strcmp(sort, "name") == 0)
                    c = strcasecmp(str(prev, "name"), str(it, "name"));
                else
                    c = (int)(json_integer_value(json_object_get(prev, sort))
                              - json_integer_value(json_object_get(it, sort)));
                cr_assert(desc ? c >= 0 : c <= 0, "out of order at %s", str(it, "name"));
                json_decref(prev);
            }
            prev = json_incref(it);
        }
        const char *next = str(doc, "nextCursor");
        cursor = next ? strdup(next) : NULL;
        json_decref(doc);
        pages++;
    } while (cursor != NULL);
    json_decref(prev);
    size_t n = json_object_size(seen);
    json_decref(seen);
    cr_assert_eq(n, expect, "every item exactly once (%zu of %zu)", n, expect);
    return pages;
}

BOTH(list_filters_sorts_and_pages)
{
    char *a = category(e, "A", 1), *b = category(e, "B", 2);
    fill(e, a, b);
    size_t active = 0, active_a = 0, ai_active = 0, key_active = 0;
    for (int i = 0; i < N_ENTRIES; i++) {
        bool on = i % 6 != 5;
        active += on;
        active_a += on && i % 3;
        ai_active += on && i % 4 == 0;
        key_active += on && i % 5 == 0;
    }
    static const char *const sorts[] = {"name", "createdAt", "updatedAt"};
    for (int s = 0; s < 3; s++)
        for (int d = 0; d < 2; d++) {
            page_all(e, "", sorts[s], d, 5, active);
            page_all(e, "\"includeInactive\": true", sorts[s], d, 4, N_ENTRIES);
        }
    cr_assert_eq(page_all(e, "", "name", false, EE_CATALOG_PAGE_MAX, active), 1);
    char f[256];
    snprintf(f, sizeof f, "\"category\": \"%s\"", a);
    page_all(e, f, "name", false, 3, active_a);
    page_all(e, "\"tags\": [\"ai\", \"MAIL\"]", "createdAt", true, 2, ai_active);
    page_all(e, "\"requiresApiKey\": true", "updatedAt", false, 2, key_active);
    page_all(e, "\"includeInactive\": true, \"isActive\": false", "name", false, 2,
             N_ENTRIES - active);
    page_all(e, "\"n8nWorkflowId\": \"wf-03\"", "name", false, 2, 1);
    page_all(e, "\"tags\": [\"none\"]", "name", false, 2, 0);

    /* bad queries */
    json_decref(CALL(EE_EINVAL, ee_catalog_list(e, NULL, "{\"cursor\": \"zz\"}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_list(e, NULL, "{\"cursor\": \"7b7d\"}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_list(e, NULL, "{\"sort\": \"size\"}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_list(e, NULL, "{\"limit\": 0}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_list(e, NULL, "{\"limit\": 101}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_list(e, NULL, "{\"isActive\": false}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_list(e, NULL, "{\"colour\": 1}", &out_)));
    json_decref(CALL(EE_EPARSE, ee_catalog_list(e, NULL, "{", &out_)));
    /* a cursor from another query */
    json_t *doc = CALL(EE_OK, ee_catalog_list(e, NULL, "{\"limit\": 2}", &out_));
    char q[1200];
    snprintf(q, sizeof q, "{\"limit\": 2, \"sort\": \"createdAt\", \"cursor\": \"%s\"}",
             str(doc, "nextCursor"));
    json_decref(doc);
    json_decref(CALL(EE_EINVAL, ee_catalog_list(e, NULL, q, &out_)));
    /* the listing sees writes at once: deactivate one, the count drops */
    doc = CALL(EE_OK, ee_catalog_list(e, NULL, "{\"limit\": 1}", &out_));
    char id[25];
    snprintf(id, sizeof id, "%s", str(json_array_get(json_object_get(doc, "data"), 0), "id"));
    json_decref(doc);
    json_decref(CALL(EE_OK, ee_catalog_update(e, id, "{\"isActive\": false}", &out_)));
    doc = CALL(EE_OK, ee_catalog_list(e, NULL, NULL, &out_));
    cr_assert_eq((size_t)json_integer_value(json_object_get(doc, "total")), active - 1);
    cr_assert_null(json_object_get(json_array_get(json_object_get(doc, "data"), 0),
                                   "inputSchema"), "list items leave the schema out");
    json_decref(doc);
    free(a);
    free(b);
}

/* ---- search ------------------------------------------------------------------------------------ */

BOTH(search_ranks_filters_and_pages)
{
    char *cat = category(e, "Mail", 1);
    char in[512];
    snprintf(in, sizeof in, "{\"n8nWorkflowId\": \"s1\", \"name\": \"Email digest\", "
                            "\"category\": \"%s\", \"tags\": [\"gmail\"]}", cat);
    free(entry(e, in));
    free(entry(e, "{\"n8nWorkflowId\": \"s2\", \"name\": \"Lead finder\", \"description\": "
                  "\"finds leads and sends an email\"}"));
    free(entry(e, "{\"n8nWorkflowId\": \"s3\", \"name\": \"Slack poster\", \"tags\": [\"EMAIL\"]}"));
    free(entry(e, "{\"n8nWorkflowId\": \"s4\", \"name\": \"Emailer (retired)\", "
                  "\"isActive\": false}"));
    json_t *doc = CALL(EE_OK, ee_catalog_search(e, NULL, "{\"q\": \"EMA\"}", &out_));
    json_t *data = json_object_get(doc, "data");
    cr_assert_eq(json_array_size(data), 3, "prefix, case-insensitive, active only");
    cr_assert_str_eq(str(json_array_get(data, 0), "name"), "Email digest", "name ranks first");
    cr_assert_str_eq(str(json_array_get(data, 1), "name"), "Slack poster", "then tags");
    cr_assert_str_eq(str(json_array_get(data, 2), "name"), "Lead finder", "then description");
    cr_assert_gt(json_integer_value(json_object_get(json_array_get(data, 0), "score")),
                 json_integer_value(json_object_get(json_array_get(data, 2), "score")));
    json_decref(doc);
    doc = CALL(EE_OK, ee_catalog_search(e, NULL, "{\"q\": \"email\", \"includeInactive\": true}", &out_));
    cr_assert_eq(json_integer_value(json_object_get(doc, "total")), 4);
    json_decref(doc);
    snprintf(in, sizeof in, "{\"q\": \"email\", \"category\": \"%s\"}", cat);
    doc = CALL(EE_OK, ee_catalog_search(e, NULL, in, &out_));
    cr_assert_eq(json_array_size(json_object_get(doc, "data")), 1, "combined with filters");
    json_decref(doc);
    doc = CALL(EE_OK, ee_catalog_search(e, NULL, "{\"q\": \"email lead\"}", &out_));
    cr_assert_eq(json_array_size(json_object_get(doc, "data")), 1, "every word must match");
    json_decref(doc);
    /* pages of one, by cursor */
    json_t *seen = json_object();
    char *cursor = NULL;
    do {
        char q[1200];
        snprintf(q, sizeof q, "{\"q\": \"email\", \"limit\": 1%s%s%s}",
                 cursor ? ", \"cursor\": \"" : "", cursor ? cursor : "", cursor ? "\"" : "");
        free(cursor);
        doc = CALL(EE_OK, ee_catalog_search(e, NULL, q, &out_));
        data = json_object_get(doc, "data");
        cr_assert_leq(json_array_size(data), 1);
        if (json_array_size(data) == 1)
            json_object_set_new(seen, str(json_array_get(data, 0), "id"), json_true());
        cursor = str(doc, "nextCursor") ? strdup(str(doc, "nextCursor")) : NULL;
        json_decref(doc);
    } while (cursor != NULL);
    cr_assert_eq(json_object_size(seen), 3);
    json_decref(seen);
    json_decref(CALL(EE_EINVAL, ee_catalog_search(e, NULL, "{}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_search(e, NULL, "{\"q\": \"x\", \"sort\": \"name\"}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_search(e, NULL, "{\"q\": \"x\", \"cursor\": \"00\"}", &out_)));
    char longq[700];
    memset(longq, 0, sizeof longq);
    strcpy(longq, "{\"q\": \"");
    memset(longq + 7, 'w', 600);
    strcpy(longq + 607, "\"}");
    json_decref(CALL(EE_ETOOBIG, ee_catalog_search(e, NULL, longq, &out_)));
    /* a write is seen by the next search */
    free(entry(e, "{\"n8nWorkflowId\": \"s5\", \"name\": \"Zebra emails\"}"));
    doc = CALL(EE_OK, ee_catalog_search(e, NULL, "{\"q\": \"zebra\"}", &out_));
    cr_assert_eq(json_array_size(json_object_get(doc, "data")), 1);
    json_decref(doc);
    free(cat);
}

/* Every page of a list or search (limit 100, following cursors): an array
 * of {id, score}; *total gets the first page's total. */
static json_t *all_pages(ee_engine *e, bool search, const char *query_fields, json_int_t *total)
{
    json_t *acc = json_array();
    char *cursor = NULL;
    bool first = true;
    do {
        char q[4096];
        int len = snprintf(q, sizeof q, "{%s%s\"limit\": 100%s%s%s}", query_fields,
                           query_fields[0] ? ", " : "", cursor ? ", \"cursor\": \"" : "",
                           cursor ? cursor : "", cursor ? "\"" : "");
        cr_assert(len > 0 && (size_t)len < sizeof q, "query too long for the test's buffer");
        free(cursor);
        json_t *doc = search ? CALL(EE_OK, ee_catalog_search(e, NULL, q, &out_))
                             : CALL(EE_OK, ee_catalog_list(e, NULL, q, &out_));
        if (first)
            *total = json_integer_value(json_object_get(doc, "total"));
        first = false;
        size_t i;
        json_t *it;
        json_array_foreach(json_object_get(doc, "data"), i, it)
            json_array_append_new(acc, json_pack("{s:s, s:O?}", "id", str(it, "id"), "score",
                                                 json_object_get(it, "score")));
        cursor = str(doc, "nextCursor") ? strdup(str(doc, "nextCursor")) : NULL;
        json_decref(doc);
    } while (cursor != NULL);
    return acc;
}

/* Search filters (kept as bitmaps per snapshot, or checked per entry past
 * the snapshot's category bitmaps or for tags and n8nWorkflowId) keep
 * exactly what list keeps with the same filter, in the unfiltered ranking's
 * order, with an exact total. */
Test(catalog_memory, search_filters_agree_with_list_filters, .timeout = 120)
{
    ee_engine *e = open_engine("memory");
    enum { NCAT = 40, NENTRY = 160 }; /* more categories than a snapshot keeps bitmaps of (32) */
    static const char *const words[] = {"email", "emails", "lead", "report", "slack",
                                        "summary", "sync", "digest"};
    static const char *const tags[] = {"gmail", "crm", "ai"};
    char *cats[NCAT];
    for (int c = 0; c < NCAT; c++) {
        char name[32];
        snprintf(name, sizeof name, "Cat %d", c);
        cats[c] = category(e, name, c);
    }
    srand(99);
    for (int i = 0; i < NENTRY; i++) {
        char name[96], in[512], cat[48] = "null";
        snprintf(name, sizeof name, "%s %s %d", words[rand() % 8], words[rand() % 8], i % 40);
        if (rand() % 5)
            snprintf(cat, sizeof cat, "\"%s\"", cats[rand() % NCAT]);
        snprintf(in, sizeof in, "{\"n8nWorkflowId\": \"w%d\", \"name\": \"%s\", "
                                "\"description\": \"%s and %s\", \"tags\": [\"%s\"], "
                                "\"category\": %s, \"isActive\": %s, \"requiresApiKey\": %s}",
                 i, name, words[rand() % 8], words[rand() % 8], tags[rand() % 3], cat,
                 rand() % 5 ? "true" : "false", rand() % 2 ? "true" : "false");
        free(entry(e, in));
    }
    char filters[NCAT + 10][160];
    int nf = 0;
    static const char *const fixed[] = {
        "", "\"requiresApiKey\": true", "\"requiresApiKey\": false",
        "\"includeInactive\": true", "\"includeInactive\": true, \"isActive\": false",
        "\"includeInactive\": true, \"requiresApiKey\": true", "\"category\": null",
        "\"tags\": [\"GMAIL\"]", "\"n8nWorkflowId\": \"w7\"",
        "\"category\": \"0123456789abcdef01234567\""}; /* a category no entry has */
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++)
        snprintf(filters[nf++], sizeof filters[0], "%s", fixed[i]);
    for (int c = 0; c < NCAT; c++) /* past the snapshot's category bitmaps too */
        snprintf(filters[nf++], sizeof filters[0], "\"category\": \"%s\"%s", cats[c],
                 c % 3 ? "" : ", \"requiresApiKey\": true");
    static const char *const queries[] = {"em", "email", "s", "sum rep", "digest", "lead s"};
    for (size_t qi = 0; qi < sizeof queries / sizeof *queries; qi++) {
        char base[256];
        snprintf(base, sizeof base, "\"q\": \"%s\", \"includeInactive\": true", queries[qi]);
        json_int_t all_total;
        json_t *ranked = all_pages(e, true, base, &all_total);
        for (int f = 0; f < nf; f++) {
            char sq[512];
            int len = snprintf(sq, sizeof sq, "\"q\": \"%s\"%s%s", queries[qi],
                               filters[f][0] ? ", " : "", filters[f]);
            cr_assert(len > 0 && (size_t)len < sizeof sq, "query too long for the buffer");
            json_int_t lt, st;
            json_t *listed = all_pages(e, false, filters[f], &lt);
            json_t *found = all_pages(e, true, sq, &st);
            json_t *keep = json_object(), *want = json_array();
            size_t i;
            json_t *it;
            json_array_foreach(listed, i, it) json_object_set(keep, str(it, "id"), json_true());
            json_array_foreach(ranked, i, it) {
                if (json_object_get(keep, str(it, "id")))
                    json_array_append(want, it);
            }
            cr_assert(json_equal(found, want), "q \"%s\" filter {%s}: %zu hits, want %zu",
                      queries[qi], filters[f], json_array_size(found), json_array_size(want));
            cr_assert_eq(st, (json_int_t)json_array_size(want), "total, filter {%s}", filters[f]);
            json_decref(listed);
            json_decref(found);
            json_decref(keep);
            json_decref(want);
        }
        json_decref(ranked);
    }
    for (int c = 0; c < NCAT; c++)
        free(cats[c]);
    close_engine(e);
}

/* ---- categories -------------------------------------------------------------------------------- */

BOTH(categories_crud_and_order)
{
    char *c2 = category(e, "Second", 20), *c1 = category(e, "First", 10);
    char *c3 = category(e, "Also first", 10);
    json_decref(CALL(EE_EEXISTS, ee_catalog_category_create(e, "{\"name\": \"First\"}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_category_create(e, "{\"name\": \"x\", \"sortOrder\": "
                                                              "1.5}", &out_)));
    json_decref(CALL(EE_EINVAL, ee_catalog_category_create(e, "{\"icon\": \"x\"}", &out_)));
    json_t *doc = CALL(EE_OK, ee_catalog_category_list(e, NULL, &out_));
    json_t *data = json_object_get(doc, "data");
    cr_assert_eq(json_array_size(data), 3);
    cr_assert_str_eq(str(json_array_get(data, 0), "name"), "Also first");
    cr_assert_str_eq(str(json_array_get(data, 1), "name"), "First");
    cr_assert_str_eq(str(json_array_get(data, 2), "name"), "Second");
    json_decref(doc);
    doc = CALL(EE_OK, ee_catalog_category_update(e, c2, "{\"sortOrder\": 1, \"isActive\": false, "
                                                        "\"description\": \"d\"}", &out_));
    cr_assert_eq(json_integer_value(json_object_get(doc, "revision")), 2);
    json_decref(doc);
    json_decref(CALL(EE_ENOTFOUND, ee_catalog_category_get(e, c2, 0, &out_)));
    doc = CALL(EE_OK, ee_catalog_category_get(e, c2, EE_CATALOG_INCLUDE_INACTIVE, &out_));
    cr_assert_str_eq(str(doc, "description"), "d");
    json_decref(doc);
    doc = CALL(EE_OK, ee_catalog_category_list(e, "{\"includeInactive\": true}", &out_));
    cr_assert_str_eq(str(json_array_get(json_object_get(doc, "data"), 0), "name"), "Second");
    json_decref(doc);
    doc = CALL(EE_OK, ee_catalog_category_list(e, NULL, &out_));
    cr_assert_eq(json_array_size(json_object_get(doc, "data")), 2, "inactive hidden");
    json_decref(doc);
    json_decref(CALL(EE_EEXISTS, ee_catalog_category_update(e, c3, "{\"name\": \"First\"}", &out_)));
    json_decref(CALL(EE_ECONFLICT, ee_catalog_category_update(e, c1, "{\"revision\": 5}", &out_)));
    free(c1);
    free(c2);
    free(c3);
}

/* ---- concurrency ------------------------------------------------------------------------------- */

typedef struct {
    ee_engine *e;
    const char *id;
    int n;
    int failures;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *w = p;
    for (int i = 0; i < w->n; i++) {
        char patch[128];
        snprintf(patch, sizeof patch, "{\"description\": \"writer %p step %d\"}", p, i);
        char *out = NULL;
        if (ee_catalog_update(w->e, w->id, patch, &out) != EE_OK)
            w->failures++;
        ee_free(out);
    }
    return NULL;
}

BOTH(concurrent_updates_retry_and_lose_nothing)
{
    char *id = entry(e, "{\"n8nWorkflowId\": \"busy\", \"name\": \"busy\"}");
    enum { THREADS = 4, EACH = 15 };
    pthread_t t[THREADS];
    worker_arg w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_arg){e, id, EACH, 0};
        pthread_create(&t[i], NULL, worker, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].failures, 0, "every update succeeded after retries");
    }
    json_t *doc = CALL(EE_OK, ee_catalog_get(e, NULL, id, 0, &out_));
    cr_assert_eq(json_integer_value(json_object_get(doc, "revision")), 1 + THREADS * EACH,
                 "each update is one revision: none was lost");
    json_decref(doc);
    free(id);
}

Test(catalog_api, null_arguments_and_missing_n8n)
{
    ee_engine *e = open_engine("memory");
    char *out = NULL;
    cr_assert_eq(ee_catalog_create(NULL, "{}", &out), EE_EINVAL);
    ee_free(out);
    cr_assert_eq(ee_catalog_create(e, NULL, &out), EE_EINVAL);
    ee_free(out);
    cr_assert_eq(ee_catalog_get(e, NULL, NULL, 0, &out), EE_EINVAL);
    ee_free(out);
    cr_assert_eq(ee_catalog_list(e, NULL, NULL, NULL), EE_EINVAL);
    cr_assert_eq(ee_catalog_search(e, NULL, NULL, &out), EE_EINVAL);
    ee_free(out);
    /* no N8N_API_KEY: sync says what is missing */
    cr_assert_eq(ee_catalog_sync(e, &out), EE_ESTATE);
    cr_assert_not_null(strstr(ee_error_last_message(), "N8N_API_KEY"));
    cr_assert_not_null(strstr(out, "EE_ESTATE"));
    ee_free(out);
    close_engine(e);
}
