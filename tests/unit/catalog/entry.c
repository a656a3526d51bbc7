/*
 * The catalog's typed view (lib/catalog/catalog.h): an entry read with
 * ee__catalog_entry_get() holds what ee_catalog_get() renders for the same
 * entry, its credential requirements route through credentials' typed
 * route, and ee__catalog_entry_validate() gives the violations the public
 * ee_catalog_validate_input() reports. Also the NULL and invalid arguments.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "catalog/catalog_internal.h"
#include "engine_fixture.h"

static ee_engine *engine;

static void setup(void)
{
    ee_config *cfg = ee_test_config_new("memory:", NULL, NULL);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", "serper-entry-test-0123456789");
    engine = ee_test_engine_open_config(cfg);
    char *out = NULL;
    cr_assert_eq(ee_cred_platform_provision(engine, &out), EE_OK, "%s", out);
    ee_free(out);
}

static void teardown(void) { ee_engine_close(engine); }

TestSuite(entry, .init = setup, .fini = teardown, .timeout = 60);

/* Takes the address: the call in the first argument must have run before
 * *textp is read (argument order is unspecified in C). */
static json_t *answer_of(ee_status st, ee_status want, char **textp)
{
    char *text = *textp;
    *textp = NULL;
    cr_assert_eq(st, want, "status %s, want %s: %s", ee_status_name(st), ee_status_name(want),
                 text ? text : ee_error_last_message());
    json_t *doc = json_loads(text, 0, NULL);
    ee_free(text);
    cr_assert_not_null(doc);
    return doc;
}

/* The mutation that writes sync's fields into a stored record. */
static ee_status merge_fields(json_t *rec, void *payload)
{
    return json_object_update(rec, payload) == 0 ? EE_OK : EE_ENOMEM;
}

/* Create an entry through the public API; `sync_fields` (may be NULL) are
 * then written into the stored record as sync would (trigger,
 * credentialTypes, services). The id goes to id_out. */
static void make_entry(const char *entry_json, const char *sync_fields, char id_out[25])
{
    char *out = NULL;
    json_t *doc = answer_of(ee_catalog_create(engine, entry_json, &out), EE_OK, &out);
    snprintf(id_out, 25, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    if (sync_fields == NULL)
        return;
    json_t *fields = json_loads(sync_fields, 0, NULL);
    cr_assert_not_null(fields);
    cr_assert_eq(ee__cat_update(engine, EE__CAT_COLL, id_out, 0, NULL, merge_fields, fields, NULL,
                                NULL),
                 EE_OK, "%s", ee_error_last_message());
    json_decref(fields);
    ee__catalog_written(engine);
}

static const char *s(const json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* A string of the typed entry against a member of the answer (NULL = null). */
static void expect_same_str(const char *typed, const json_t *doc, const char *key)
{
    const json_t *v = json_object_get(doc, key);
    if (json_is_null(v) || v == NULL)
        cr_expect(typed == NULL || typed[0] == '\0', "%s: typed \"%s\", answer null", key, typed);
    else
        cr_expect_str_eq(typed, json_string_value(v), "%s", key);
}

static void expect_same_list(const char *const *typed, size_t n, const json_t *arr,
                             const char *what)
{
    cr_assert_eq(n, json_array_size(arr), "%s: %zu typed, %zu in the answer", what, n,
                 json_array_size(arr));
    for (size_t i = 0; i < n; i++)
        cr_expect_str_eq(typed[i], json_string_value(json_array_get(arr, i)), "%s[%zu]", what, i);
}

/* The typed entry holds what ee_catalog_get() answers for it. */
static void expect_entry_matches_answer(const ee__catalog_entry *e, unsigned public_flags)
{
    char *out = NULL;
    json_t *doc = answer_of(ee_catalog_get(engine, NULL, e->id, public_flags, &out), EE_OK, &out);
    cr_expect_str_eq(e->id, s(doc, "id"));
    cr_expect_eq(e->revision, json_integer_value(json_object_get(doc, "revision")));
    expect_same_str(e->name, doc, "name");
    expect_same_str(e->description, doc, "description");
    expect_same_str(e->n8n_workflow_id, doc, "n8nWorkflowId");
    expect_same_str(e->category, doc, "category");
    expect_same_str(e->email_template_id, doc, "emailTemplateId");
    expect_same_str(e->api_key_provider, doc, "apiKeyProvider");
    cr_expect_eq(e->is_active, json_is_true(json_object_get(doc, "isActive")));
    cr_expect_eq(e->requires_api_key, json_is_true(json_object_get(doc, "requiresApiKey")));
    cr_expect_eq(e->estimated_cost_nano,
                 json_integer_value(json_object_get(json_object_get(doc, "estimatedCost"),
                                                    "nanoUsd")));
    cr_expect_eq(e->has_input_schema, !json_is_null(json_object_get(doc, "inputSchema")));
    cr_expect_eq(e->trigger.runnable, json_is_true(json_object_get(doc, "runnable")));
    const json_t *t = json_object_get(doc, "trigger");
    expect_same_str(e->trigger.reason, t, "reason");
    expect_same_str(e->trigger.method, t, "method");
    expect_same_str(e->trigger.path, t, "path");
    expect_same_str(e->trigger.node, t, "node");
    expect_same_str(e->trigger.response_mode, t, "responseMode");
    expect_same_list(e->credential_types, e->n_credential_types,
                     json_object_get(doc, "credentialTypes"), "credentialTypes");
    expect_same_list(e->services, e->n_services, json_object_get(doc, "services"), "services");
    json_decref(doc);
}

static const char *lead_entry =
    "{\"n8nWorkflowId\": \"wf-lead\", \"name\": \"Lead enrichment\","
    " \"description\": \"Find and mail\", \"estimatedCost\": \"0.05\","
    " \"requiresApiKey\": true, \"apiKeyProvider\": \"openrouter\","
    " \"inputSchema\": {\"type\": \"object\", \"required\": [\"email\"],"
    "   \"properties\": {\"email\": {\"type\": \"string\", \"format\": \"email\"},"
    "                  \"limit\": {\"type\": \"integer\", \"maximum\": 50, \"default\": 10}},"
    "   \"additionalProperties\": false}}";

static const char *lead_sync =
    "{\"trigger\": {\"runnable\": true, \"node\": \"Webhook\", \"method\": \"POST\","
    "              \"path\": \"lead-enrich\", \"responseMode\": \"lastNode\"},"
    " \"credentialTypes\": [\"serperApi\", \"gmailOAuth2\"], \"services\": [\"Serper\", \"Gmail\"]}";

Test(entry, typed_entry_equals_the_public_answer)
{
    char id[25], plain[25];
    make_entry(lead_entry, lead_sync, id);
    make_entry("{\"n8nWorkflowId\": \"wf-plain\", \"name\": \"Plain\"}", NULL, plain);

    ee__catalog_entry *e = NULL;
    cr_assert_eq(ee__catalog_entry_get(engine, NULL, id, 0, &e), EE_OK, "%s",
                 ee_error_last_message());
    expect_entry_matches_answer(e, 0);
    /* what the answer shows, spelled out: */
    cr_expect_str_eq(e->trigger.path, "lead-enrich");
    cr_expect_str_eq(e->trigger.method, "POST");
    cr_expect_eq(e->estimated_cost_nano, 50000000);
    cr_expect_eq(e->n_credential_types, 2);
    cr_expect_null(e->input_schema, "compiled only when asked");
    ee__catalog_entry_free(e);

    /* An entry sync never saw: not runnable, no requirements, no schema. */
    cr_assert_eq(ee__catalog_entry_get(engine, NULL, plain, EE__CATALOG_ENTRY_COMPILED, &e),
                 EE_OK);
    expect_entry_matches_answer(e, 0);
    cr_expect_not(e->trigger.runnable);
    cr_expect_not_null(e->trigger.reason);
    cr_expect_eq(e->n_requirements, 0);
    cr_expect_not(e->has_input_schema);
    cr_expect_null(e->input_schema);
    ee__catalog_entry_free(e);

    /* With COMPILED the entry carries the cached compiled schema. */
    cr_assert_eq(ee__catalog_entry_get(engine, NULL, id, EE__CATALOG_ENTRY_COMPILED, &e), EE_OK);
    cr_expect_not_null(e->input_schema);
    ee__catalog_entry_free(e);
}

/* An entry is decoded once per stored revision (ee__cat_record_at): two
 * reads share one record; a write is seen by the next read; list pages
 * render what a run's read decoded. */
Test(entry, an_entry_is_decoded_once_per_revision_and_a_write_is_seen_at_once)
{
    char id[25];
    make_entry("{\"n8nWorkflowId\": \"wf-once\", \"name\": \"Once\", \"description\": "
               "\"first\", \"isActive\": true}",
               NULL, id);
    ee__catalog_entry *a = NULL, *b = NULL;
    cr_assert_eq(ee__catalog_entry_get(engine, NULL, id, 0, &a), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(ee__catalog_entry_get(engine, NULL, id, 0, &b), EE_OK);
    cr_expect_eq(ee__cat_entry_record(a), ee__cat_entry_record(b), "one decoded record");
    cr_expect_str_eq(a->description, "first");
    ee__catalog_entry_free(b);
    /* a page renders from the record the read decoded */
    char *out = NULL;
    json_t *page = answer_of(ee_catalog_list(engine, NULL, NULL, &out), EE_OK, &out);
    json_t *it;
    size_t i;
    int seen = 0;
    json_array_foreach(json_object_get(page, "data"), i, it) {
        if (strcmp(s(it, "id"), id) == 0) {
            cr_expect_str_eq(s(it, "description"), "first");
            cr_expect_str_eq(s(it, "name"), "Once");
            seen++;
        }
    }
    cr_expect_eq(seen, 1);
    json_decref(page);
    json_decref(answer_of(ee_catalog_update(engine, id, "{\"description\": \"second\"}", &out),
                          EE_OK, &out));
    cr_assert_eq(ee__catalog_entry_get(engine, NULL, id, 0, &b), EE_OK);
    cr_expect_str_eq(b->description, "second", "the write is seen by the next read");
    cr_expect_neq(ee__cat_entry_record(a), ee__cat_entry_record(b));
    cr_expect_str_eq(a->description, "first", "a reader's entry stays as it was read");
    ee__catalog_entry_free(a);
    ee__catalog_entry_free(b);
}

Test(entry, inactive_entries_are_found_only_in_the_admins_view)
{
    char id[25];
    make_entry("{\"n8nWorkflowId\": \"wf-off\", \"name\": \"Off\", \"isActive\": false}", NULL, id);
    ee__catalog_entry *e = NULL;
    char *out = NULL;
    ee_status pub = ee_catalog_get(engine, NULL, id, 0, &out);
    ee_free(out);
    cr_expect_eq(pub, EE_ENOTFOUND);
    cr_expect_eq(ee__catalog_entry_get(engine, NULL, id, 0, &e), EE_ENOTFOUND);
    cr_expect_null(e);
    cr_assert_eq(ee__catalog_entry_get(engine, NULL, id, EE__CATALOG_ENTRY_INACTIVE, &e), EE_OK);
    cr_expect_not(e->is_active);
    expect_entry_matches_answer(e, EE_CATALOG_INCLUDE_INACTIVE);
    ee__catalog_entry_free(e);
    cr_expect_eq(ee__catalog_entry_get(engine, NULL, "0123456789abcdef01234567", 0, &e),
                 EE_ENOTFOUND);
}

/* The entry's requirements route through credentials' typed route. */
Test(entry, requirements_route_with_typed_gaps)
{
    char id[25];
    make_entry(lead_entry, lead_sync, id);
    ee__catalog_entry *e = NULL;
    cr_assert_eq(ee__catalog_entry_get(engine, NULL, id, 0, &e), EE_OK);
    cr_assert_eq(e->n_requirements, 2);
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-entry", "u1", NULL), EE_OK);
    ee__cred_route *r = NULL;
    cr_assert_eq(ee__cred_route_nodes(engine, p, e->requirements, e->n_requirements, NULL, &r),
                 EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(r->n_mappings, 1);
    cr_expect_str_eq(r->mappings[0].credential_name, "serperApi");
    cr_expect_eq(r->mappings[0].source, EE__CRED_SOURCE_PLATFORM);
    cr_assert_eq(r->n_gaps, 1);
    cr_expect_str_eq(r->gaps[0].credential_name, "gmailOAuth2");
    cr_expect_eq(r->gaps[0].reason, EE__CRED_GAP_NOT_STORED);
    cr_expect(r->gaps[0].is_personal);
    cr_expect_not(r->ready);
    ee__catalog_entry_free(e); /* the route copied what it needs */
    cr_expect_str_eq(r->gaps[0].credential_name, "gmailOAuth2");
    ee__cred_route_free(r);
    ee_principal_free(p);
}

static ee_status validate_typed(const char *id, const char *params_json, char **text_out,
                                ee__catalog_violations **v_out)
{
    ee__catalog_entry *e = NULL;
    ee__catalog_params *params = NULL;
    ee_status st = ee__catalog_entry_get(engine, NULL, id, 0, &e);
    cr_assert_eq(st, EE_OK);
    cr_assert_eq(ee__catalog_params_parse(params_json, &params), EE_OK);
    st = ee__catalog_entry_validate(engine, e, params, v_out);
    if (st == EE_OK)
        cr_assert_eq(ee__catalog_params_text(params, text_out), EE_OK);
    ee__catalog_params_free(params);
    ee__catalog_entry_free(e);
    return st;
}

Test(entry, violations_equal_the_public_report)
{
    char id[25], plain[25];
    make_entry(lead_entry, lead_sync, id);
    make_entry("{\"n8nWorkflowId\": \"wf-plain\", \"name\": \"Plain\"}", NULL, plain);
    static const char *const cases[][2] = {
        {"lead", "{\"email\": \"a@example.com\"}"},                       /* defaults added */
        {"lead", "{\"email\": \"a@example.com\", \"limit\": 12345678901234567890123}"},
        {"lead", "{\"limit\": 99, \"extra\": true}"},                     /* three violations */
        {"lead", "{\"email\": \"not-an-email\"}"},
        {"plain", "{\"anything\": [1, 2, 3]}"},                           /* no schema: any object */
        {"plain", "{\"big\": 123456789012345678901234567890.25}"},           /* kept as written */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *eid = strcmp(cases[i][0], "lead") == 0 ? id : plain;
        char *pub = NULL, *typed = NULL;
        ee_status pst = ee_catalog_validate_input(engine, NULL, eid, cases[i][1], &pub);
        ee__catalog_violations *v = NULL;
        ee_status tst = validate_typed(eid, cases[i][1], &typed, &v);
        cr_assert_eq(tst, pst, "case %zu: typed %s, public %s", i, ee_status_name(tst),
                     ee_status_name(pst));
        if (pst == EE_OK) {
            cr_expect_str_eq(typed, pub, "case %zu", i);
            cr_expect_null(v);
        } else {
            cr_assert_eq(pst, EE_EVALIDATION);
            json_t *doc = json_loads(pub, 0, NULL);
            const json_t *errors = json_object_get(
                json_object_get(json_object_get(doc, "error"), "detail"), "errors");
            cr_assert_not_null(v, "case %zu: no violations", i);
            cr_assert_gt(v->n, 0);
            cr_assert_eq(v->n, json_array_size(errors), "case %zu", i);
            for (size_t k = 0; k < v->n; k++) {
                const json_t *e = json_array_get(errors, k);
                cr_expect_str_eq(v->items[k].instance_path, s(e, "instancePath"));
                cr_expect_str_eq(v->items[k].schema_path, s(e, "schemaPath"));
                cr_expect_str_eq(v->items[k].keyword, s(e, "keyword"));
                cr_expect_str_eq(v->items[k].message, s(e, "message"));
            }
            cr_expect_eq(v->truncated, json_is_true(json_object_get(
                                           json_object_get(json_object_get(doc, "error"),
                                                           "detail"), "truncated")));
            json_decref(doc);
        }
        ee__catalog_violations_free(v);
        ee_free(pub);
        ee_free(typed);
    }
    /* An unknown member is a violation; the default is added to valid parameters. */
    char *typed = NULL;
    ee__catalog_violations *v = NULL;
    cr_expect_eq(validate_typed(id, "{\"email\": \"a@example.com\", \"n\": 1}", &typed, &v),
                 EE_EVALIDATION, "additionalProperties");
    ee__catalog_violations_free(v);
    cr_assert_eq(validate_typed(id, "{\"email\": \"a@example.com\"}", &typed, NULL), EE_OK);
    cr_expect_str_eq(typed, "{\"email\":\"a@example.com\",\"limit\":10}");
    ee_free(typed);
}

Test(entry, null_and_invalid_arguments)
{
    char id[25];
    make_entry(lead_entry, lead_sync, id);
    ee__catalog_entry *e = NULL;
    cr_expect_eq(ee__catalog_entry_get(NULL, NULL, id, 0, &e), EE_EINVAL);
    cr_expect_eq(ee__catalog_entry_get(engine, NULL, NULL, 0, &e), EE_EINVAL);
    cr_expect_eq(ee__catalog_entry_get(engine, NULL, id, 0, NULL), EE_EINVAL);
    cr_expect_eq(ee__catalog_entry_get(engine, NULL, "0123456789ABCDEF01234567", 0, &e),
                 EE_EINVAL);
    cr_expect_eq(ee__catalog_entry_get(engine, NULL, "short", 0, &e), EE_EINVAL);
    cr_expect_eq(ee__catalog_entry_get(engine, NULL, id, 0x80u, &e), EE_EINVAL);
    cr_expect_null(e);
    ee__catalog_entry_free(NULL);

    ee__catalog_params *p = NULL;
    cr_expect_eq(ee__catalog_params_parse(NULL, &p), EE_EINVAL);
    cr_expect_eq(ee__catalog_params_parse("[1]", &p), EE_EINVAL);
    cr_expect_eq(ee__catalog_params_parse("{\"a\": ", &p), EE_EPARSE);
    cr_expect_eq(ee__catalog_params_parse("{}", NULL), EE_EINVAL);
    cr_expect_null(p);
    char *text = NULL;
    cr_expect_eq(ee__catalog_params_text(NULL, &text), EE_EINVAL);
    ee__catalog_params_free(NULL);

    cr_assert_eq(ee__catalog_params_parse("{}", &p), EE_OK);
    cr_assert_eq(ee__catalog_entry_get(engine, NULL, id, 0, &e), EE_OK);
    ee__catalog_violations *v = (ee__catalog_violations *)1;
    cr_expect_eq(ee__catalog_entry_validate(NULL, e, p, &v), EE_EINVAL);
    cr_expect_null(v);
    cr_expect_eq(ee__catalog_entry_validate(engine, NULL, p, NULL), EE_EINVAL);
    cr_expect_eq(ee__catalog_entry_validate(engine, e, NULL, NULL), EE_EINVAL);
    /* "email" is required: invalid, violations not wanted */
    cr_expect_eq(ee__catalog_entry_validate(engine, e, p, NULL), EE_EVALIDATION);
    ee__catalog_violations_free(NULL);
    ee__catalog_params_free(p);
    ee__catalog_entry_free(e);
}
