/*
 * Every exported function that takes JSON text, found in bindings/manifest.json
 * (parameters marked "json": true), is called with
 *   - a 100 MB document: EE_ETOOBIG, with a message that names the function's
 *     size limit (the document is refused on its length, never parsed);
 *   - for request documents, a small document with an unknown member:
 *     EE_EINVAL (EE_EPARSE for a quota ticket) naming the member.
 * The table below supplies each function's other arguments. A JSON-taking
 * function of the manifest without a table entry fails the test, so a new
 * function cannot slip by; so does an entry the manifest no longer lists.
 * The time of a refused 100 MB call is measured by bench/bench_json.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <execengine/execengine.h>

#include "engine_fixture.h"

#define BIG_BYTES ((size_t)100 * 1024 * 1024)
#define UNKNOWN "bogusMember"

typedef struct fx {
    ee_engine *e;
    ee_principal *p;
    ee_cost_table *table;
    ee_transport *tr;
    ee_n8n *n8n;
    ee_schema *schema;
    char wf_id[64], cat_id[64], key_id[64];
    char *ticket; /* a real ticket's JSON */
} fx;

/* Calls function `name` with `json` as its JSON parameter number `which`
 * (0 or 1) and valid values for the others; frees what it answers. */
typedef ee_status (*call_fn)(fx *f, int which, const char *json);

typedef struct {
    const char *name;
    call_fn call;
    size_t limit[2];          /* the documented size limit of each JSON parameter */
    const char *unknown[2];   /* a request document with an unknown member, or NULL ... */
    ee_status unknown_st[2];  /* ... and the status it gets */
    const char *why_not[2];   /* ... or why that parameter is no request document */
} entry;

static char *out_;

static ee_status done(ee_status st)
{
    ee_free(out_);
    out_ = NULL;
    return st;
}

static const char *WF = "{\"nodes\": [{\"name\": \"a\", \"type\": \"n8n-nodes-base.set\"}]}";

static ee_status c_catalog_create(fx *f, int w, const char *j) { (void)w; return done(ee_catalog_create(f->e, j, &out_)); }
static ee_status c_catalog_update(fx *f, int w, const char *j) { (void)w; return done(ee_catalog_update(f->e, f->wf_id, j, &out_)); }
static ee_status c_catalog_list(fx *f, int w, const char *j) { (void)w; return done(ee_catalog_list(f->e, NULL, j, &out_)); }
static ee_status c_catalog_search(fx *f, int w, const char *j) { (void)w; return done(ee_catalog_search(f->e, NULL, j, &out_)); }
static ee_status c_catalog_validate(fx *f, int w, const char *j) { (void)w; return done(ee_catalog_validate_input(f->e, NULL, f->wf_id, j, &out_)); }
static ee_status c_category_create(fx *f, int w, const char *j) { (void)w; return done(ee_catalog_category_create(f->e, j, &out_)); }
static ee_status c_category_update(fx *f, int w, const char *j) { (void)w; return done(ee_catalog_category_update(f->e, f->cat_id, j, &out_)); }
static ee_status c_category_list(fx *f, int w, const char *j) { (void)w; return done(ee_catalog_category_list(f->e, j, &out_)); }
static ee_status c_prices(fx *f, int w, const char *j) { (void)w; return ee_cost_table_load_prices_json(f->table, j); }
static ee_status c_rules(fx *f, int w, const char *j) { (void)w; return ee_cost_table_load_rules_json(f->table, j); }
static ee_status c_estimate(fx *f, int w, const char *j)
{
    return done(w == 0 ? ee_cost_estimate(f->table, j, NULL, &out_)
                       : ee_cost_estimate(f->table, WF, j, &out_));
}
static ee_status c_actual(fx *f, int w, const char *j) { (void)w; return done(ee_cost_actual(f->table, j, &out_)); }
static ee_status c_key_add(fx *f, int w, const char *j) { (void)w; return done(ee_cred_key_add(f->e, f->p, j, &out_)); }
static ee_status c_key_update(fx *f, int w, const char *j) { (void)w; return done(ee_cred_key_update(f->e, f->p, f->key_id, j, &out_)); }
static ee_status c_personal_put(fx *f, int w, const char *j) { (void)w; return done(ee_cred_personal_put(f->e, f->p, j, &out_)); }
static ee_status c_route(fx *f, int w, const char *j)
{
    return done(w == 0 ? ee_cred_route(f->e, f->p, j, NULL, &out_)
                       : ee_cred_route(f->e, f->p, WF, j, &out_));
}
static ee_status c_n8n_configure(fx *f, int w, const char *j) { (void)w; return ee_n8n_configure(f->n8n, j); }
static ee_status c_n8n_workflows(fx *f, int w, const char *j) { (void)w; return done(ee_n8n_list_workflows(f->n8n, j, &out_)); }
static ee_status c_n8n_webhook(fx *f, int w, const char *j) { (void)w; return done(ee_n8n_trigger_webhook(f->n8n, "POST", "hook", j, &out_)); }
static ee_status c_n8n_executions(fx *f, int w, const char *j) { (void)w; return done(ee_n8n_list_executions(f->n8n, j, &out_)); }
static ee_status c_n8n_trigger(fx *f, int w, const char *j) { (void)f; (void)w; return done(ee_n8n_workflow_trigger(j, &out_)); }
static ee_status c_ticket_from(fx *f, int w, const char *j) { (void)f; (void)w; ee_quota_ticket t; return ee_quota_ticket_from_json(j, &t); }
static ee_status c_exec_submit(fx *f, int w, const char *j)
{
    (void)w;
    char id[EE_EXEC_ID_SIZE];
    return ee_exec_submit(f->e, f->p, f->wf_id, j, NULL, NULL, id);
}
static ee_status c_exec_run(fx *f, int w, const char *j) { (void)w; return done(ee_exec_run(f->e, f->p, f->wf_id, j, &out_)); }
static ee_status c_exec_list(fx *f, int w, const char *j) { (void)w; return done(ee_exec_list(f->e, f->p, j, &out_)); }
static ee_status c_exec_ingest(fx *f, int w, const char *j) { (void)f; (void)w; return done(ee_exec_ingest_webhook(f->e, j, "{}", 2, &out_)); }
static ee_status c_audit_query(fx *f, int w, const char *j) { (void)w; return done(ee_audit_query(f->e, f->p, j, &out_)); }
static ee_status c_bill_history(fx *f, int w, const char *j) { (void)w; return done(ee_billing_history(f->e, f->p, j, &out_)); }
static ee_status c_bill_usage(fx *f, int w, const char *j) { (void)w; return done(ee_billing_usage(f->e, f->p, j, &out_)); }
static ee_status c_bill_analytics(fx *f, int w, const char *j) { (void)w; return done(ee_billing_analytics(f->e, f->p, j, &out_)); }
static ee_status c_admit(fx *f, int w, const char *j) { (void)w; return done(ee_quota_admit(f->e, f->p, j, &out_)); }
static ee_status c_finish(fx *f, int w, const char *j) { (void)w; return ee_quota_finish_json(f->e, j, 1, 0); }
static ee_status c_plan_put(fx *f, int w, const char *j) { (void)w; return done(ee_quota_plan_put(f->e, j, &out_)); }
static ee_status c_sub_put(fx *f, int w, const char *j) { (void)w; return done(ee_quota_subscription_put(f->e, j, &out_)); }
static ee_status c_schema_compile(fx *f, int w, const char *j)
{
    (void)f; (void)w;
    ee_schema *s = NULL;
    ee_status st = ee_schema_compile(&s, j);
    ee_schema_free(s);
    return st;
}
static ee_status c_schema_validate(fx *f, int w, const char *j) { (void)w; return done(ee_schema_validate(f->schema, j, &out_)); }
static ee_status c_schema_defaults(fx *f, int w, const char *j) { (void)w; return done(ee_schema_apply_defaults(f->schema, j, &out_)); }

#define MIB ((size_t)1024 * 1024)

/* The ticket documents are built from a real ticket at run time. */
#define TICKET_DOC "<ticket>"

static ee_status c_template_render(fx *f, int w, const char *j)
{
    (void)f;
    return done(ee_template_render("{{x}}", w == 0 ? j : NULL, w == 1 ? j : NULL, &out_));
}
static ee_status c_template_render_len(fx *f, int w, const char *j)
{
    (void)f;
    size_t len;
    return done(ee_template_render_len("{{x}}", w == 0 ? j : NULL, w == 1 ? j : NULL, &out_, &len));
}

static ee_status c_email_tpl_put(fx *f, int w, const char *j) { (void)w; return done(ee_email_template_put(f->e, NULL, j, &out_)); }
static ee_status c_email_tpl_list(fx *f, int w, const char *j) { (void)w; return done(ee_email_template_list(f->e, NULL, j, &out_)); }
static ee_status c_email_send(fx *f, int w, const char *j) { (void)w; return done(ee_email_send_execution(f->e, f->p, "0123456789abcdef01234567", j, &out_)); }

static const entry table[] = {
    {"ee_catalog_create", c_catalog_create, {EE_CATALOG_DOC_MAX},
     {"{\"n8nWorkflowId\": \"w2\", \"name\": \"n\", \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_catalog_update", c_catalog_update, {EE_CATALOG_DOC_MAX},
     {"{\"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_catalog_list", c_catalog_list, {EE_CATALOG_DOC_MAX},
     {"{\"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_catalog_search", c_catalog_search, {EE_CATALOG_DOC_MAX},
     {"{\"q\": \"x\", \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_catalog_validate_input", c_catalog_validate, {EE_CATALOG_PARAMETERS_MAX},
     {NULL}, {0}, {"the workflow's parameters: its inputSchema decides which members it takes"}},
    {"ee_catalog_category_create", c_category_create, {EE_CATALOG_DOC_MAX},
     {"{\"name\": \"c2\", \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_catalog_category_update", c_category_update, {EE_CATALOG_DOC_MAX},
     {"{\"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_catalog_category_list", c_category_list, {EE_CATALOG_DOC_MAX},
     {"{\"" UNKNOWN "\": true}"}, {EE_EINVAL}, {NULL}},
    {"ee_cost_table_load_prices_json", c_prices, {EE_COST_PRICES_MAX_BYTES},
     {NULL}, {0}, {"OpenRouter's model list: data, whose other members are ignored"}},
    {"ee_cost_table_load_rules_json", c_rules, {EE_COST_RULES_MAX_BYTES},
     {NULL}, {0}, {"the cost rules data file"}},
    {"ee_cost_estimate", c_estimate, {EE_COST_DOC_MAX_BYTES, EE_COST_RULES_MAX_BYTES},
     {NULL, "{\"" UNKNOWN "\": 1}"}, {0, EE_EINVAL},
     {"an n8n workflow document (n8n's own members)", NULL}},
    {"ee_cost_actual", c_actual, {EE_COST_DOC_MAX_BYTES},
     {"{\"usage\": [], \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_cred_key_add", c_key_add, {256 * 1024},
     {"{\"keyName\": \"k\", \"provider\": \"openrouter\", \"apiKey\": "
      "\"sk-or-v1-canary-0123456789abcdef\", \"" UNKNOWN "\": 1}"},
     {EE_EINVAL}, {NULL}},
    {"ee_cred_key_update", c_key_update, {256 * 1024},
     {"{\"keyName\": \"k2\", \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_cred_personal_put", c_personal_put, {256 * 1024},
     {"{\"credentialName\": \"gmailOAuth2\", \"type\": \"oauth2\", \"accessToken\": "
      "\"canary-access-0123456789\", \"" UNKNOWN "\": 1}"},
     {EE_EINVAL}, {NULL}},
    {"ee_cred_route", c_route, {MIB, MIB},
     {NULL, "{\"useCustomApiKey\": false, \"" UNKNOWN "\": 1}"}, {0, EE_EINVAL},
     {"an n8n workflow document (n8n's own members)", NULL}},
    {"ee_n8n_configure", c_n8n_configure, {64 * 1024},
     {"{\"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_n8n_list_workflows", c_n8n_workflows, {64 * 1024},
     {"{\"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_n8n_trigger_webhook", c_n8n_webhook, {16 * MIB},
     {NULL}, {0}, {"the workflow's own body, forwarded to n8n as it is"}},
    {"ee_n8n_list_executions", c_n8n_executions, {64 * 1024},
     {"{\"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_n8n_workflow_trigger", c_n8n_trigger, {16 * MIB},
     {NULL}, {0}, {"an n8n workflow document (n8n's own members)"}},
    {"ee_exec_submit", c_exec_submit, {EE_EXEC_REQUEST_MAX},
     {"{\"parameters\": {}, \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_exec_run", c_exec_run, {EE_EXEC_REQUEST_MAX},
     {"{\"parameters\": {}, \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_exec_list", c_exec_list, {64 * 1024},
     {"{\"limit\": 5, \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_exec_ingest_webhook", c_exec_ingest, {64 * 1024},
     {NULL}, {0}, {"the callback request's HTTP headers, whatever the sender put in them"}},
    {"ee_audit_query", c_audit_query, {16 * 1024},
     {"{\"limit\": 5, \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_billing_history", c_bill_history, {64 * 1024},
     {"{\"limit\": 5, \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_billing_usage", c_bill_usage, {64 * 1024},
     {"{\"limit\": 5, \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_billing_analytics", c_bill_analytics, {64 * 1024},
     {"{\"granularity\": \"day\", \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_quota_ticket_from_json", c_ticket_from, {4096},
     {TICKET_DOC}, {EE_EPARSE}, {NULL}},
    {"ee_quota_admit", c_admit, {4096},
     {"{\"estimatedCostNanoUsd\": 0, \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_quota_finish_json", c_finish, {4096},
     {TICKET_DOC}, {EE_EPARSE}, {NULL}},
    {"ee_quota_plan_put", c_plan_put, {64 * 1024},
     {"{\"name\": \"p2\", \"predictionsPerPeriod\": 1, \"" UNKNOWN "\": 1}"}, {EE_EINVAL},
     {NULL}},
    {"ee_quota_subscription_put", c_sub_put, {64 * 1024},
     {"{\"orgId\": \"o1\", \"plan\": \"free\", \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_schema_compile", c_schema_compile, {EE_SCHEMA_MAX_TEXT},
     {NULL}, {0}, {"a JSON Schema: unknown keywords are annotations (2020-12)"}},
    {"ee_schema_validate", c_schema_validate, {EE_SCHEMA_MAX_TEXT},
     {NULL}, {0}, {"an instance: the schema decides"}},
    {"ee_schema_apply_defaults", c_schema_defaults, {EE_SCHEMA_MAX_TEXT},
     {NULL}, {0}, {"an instance: the schema decides"}},
    {"ee_email_template_put", c_email_tpl_put, {EE_EMAIL_TEMPLATE_DOC_MAX},
     {"{\"workflowCatalogId\": \"0123456789abcdef01234567\", \"subjectTemplate\": \"s\", "
      "\"bodyTemplate\": \"b\", \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_email_template_list", c_email_tpl_list, {EE_EMAIL_QUERY_MAX},
     {"{\"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_email_send_execution", c_email_send, {EE_EMAIL_REQUEST_MAX},
     {"{\"to\": \"a@example.com\", \"" UNKNOWN "\": 1}"}, {EE_EINVAL}, {NULL}},
    {"ee_template_render", c_template_render, {EE_TEMPLATE_MAX_DATA, EE_TEMPLATE_MAX_DATA},
     {NULL, NULL}, {0, 0}, {"template data: any value", "partials: any names"}},
    {"ee_template_render_len", c_template_render_len, {EE_TEMPLATE_MAX_DATA, EE_TEMPLATE_MAX_DATA},
     {NULL, NULL}, {0, 0}, {"template data: any value", "partials: any names"}},
};
#define N_TABLE (sizeof table / sizeof table[0])

static const entry *find(const char *name)
{
    for (size_t i = 0; i < N_TABLE; i++)
        if (strcmp(table[i].name, name) == 0)
            return &table[i];
    return NULL;
}

/* The manifest's JSON-taking functions: name -> number of JSON params. */
static json_t *json_functions(void)
{
    json_error_t err;
    json_t *m = json_load_file(EE_SOURCE_DIR "/bindings/manifest.json", 0, &err);
    cr_assert_not_null(m, "bindings/manifest.json: %s", err.text);
    json_t *found = json_object();
    size_t i, k;
    json_t *f, *p;
    json_array_foreach(json_object_get(m, "functions"), i, f) {
        int n = 0;
        json_array_foreach(json_object_get(f, "params"), k, p) {
            if (json_is_true(json_object_get(p, "json")))
                n++;
        }
        if (n > 0)
            json_object_set_new(found, json_string_value(json_object_get(f, "name")),
                                json_integer(n));
    }
    json_decref(m);
    return found;
}

static void fx_open(fx *f)
{
    memset(f, 0, sizeof *f);
    f->e = ee_test_engine_open(NULL, NULL, NULL);
    cr_assert_eq(ee_principal_new(&f->p, "ws1", "u1", "o1"), EE_OK);
    cr_assert_eq(ee_cost_table_new(&f->table), EE_OK);
    cr_assert_eq(ee_cost_table_load_rules_file(f->table, EE_SOURCE_DIR "/data/cost_rules.json"),
                 EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_transport_curl_new(&f->tr, NULL), EE_OK, "%s", ee_error_last_message());
    /* nothing listens there: every call below is refused before sending */
    cr_assert_eq(ee_n8n_new(&f->n8n, f->tr, "http://127.0.0.1:9/", "test-n8n-key-0123"), EE_OK,
                 "%s", ee_error_last_message());
    cr_assert_eq(ee_schema_compile(&f->schema, "{\"type\": \"object\"}"), EE_OK);

    char *out = NULL;
    json_t *d;
    cr_assert_eq(ee_catalog_create(f->e, "{\"n8nWorkflowId\": \"w1\", \"name\": \"wf\"}", &out),
                 EE_OK, "%s", out);
    d = json_loads(out, 0, NULL);
    snprintf(f->wf_id, sizeof f->wf_id, "%s", json_string_value(json_object_get(d, "id")));
    json_decref(d);
    ee_free(out);
    cr_assert_eq(ee_catalog_category_create(f->e, "{\"name\": \"c1\"}", &out), EE_OK, "%s", out);
    d = json_loads(out, 0, NULL);
    snprintf(f->cat_id, sizeof f->cat_id, "%s", json_string_value(json_object_get(d, "id")));
    json_decref(d);
    ee_free(out);
    cr_assert_eq(ee_cred_key_add(f->e, f->p, "{\"keyName\": \"k\", \"provider\": \"openrouter\", "
                                 "\"apiKey\": \"sk-or-v1-canary-0123456789abcdef\"}", &out),
                 EE_OK, "%s", out);
    d = json_loads(out, 0, NULL);
    snprintf(f->key_id, sizeof f->key_id, "%s", json_string_value(json_object_get(d, "id")));
    json_decref(d);
    ee_free(out);
    cr_assert_eq(ee_quota_admit(f->e, f->p, NULL, &out), EE_OK, "%s", out);
    d = json_loads(out, 0, NULL);
    f->ticket = json_dumps(json_object_get(d, "ticket"), JSON_COMPACT);
    json_decref(d);
    ee_free(out);
    cr_assert_not_null(f->ticket);
}

static void fx_close(fx *f)
{
    free(f->ticket);
    ee_schema_free(f->schema);
    ee_n8n_free(f->n8n);
    ee_transport_free(f->tr);
    ee_cost_table_free(f->table);
    ee_principal_free(f->p);
    ee_engine_close(f->e);
}

TestSuite(json_inputs, .timeout = 120);

Test(json_inputs, every_json_function_of_the_manifest_has_a_table_entry)
{
    json_t *fns = json_functions();
    cr_assert_gt(json_object_size(fns), 20, "the manifest marks too few JSON parameters");
    const char *name;
    json_t *n;
    json_object_foreach(fns, name, n) {
        const entry *e = find(name);
        cr_expect_not_null(e, "%s takes JSON text but has no entry in json_inputs.c's table",
                           name);
        for (int w = 0; e != NULL && w < json_integer_value(n); w++)
            cr_expect_gt(e->limit[w], 0, "%s: JSON parameter %d has no limit in the table", name,
                         w);
    }
    for (size_t i = 0; i < N_TABLE; i++)
        cr_expect_not_null(json_object_get(fns, table[i].name),
                           "%s is in the table but takes no JSON text in the manifest",
                           table[i].name);
    json_decref(fns);
}

Test(json_inputs, a_100_MB_document_is_refused_on_its_size)
{
    /* a well-formed document: only its size is wrong */
    char *big = malloc(BIG_BYTES + 1);
    cr_assert_not_null(big);
    memset(big, 'x', BIG_BYTES);
    memcpy(big, "{\"q\": \"", 7);
    memcpy(big + BIG_BYTES - 2, "\"}", 2);
    big[BIG_BYTES] = '\0';
    fx f;
    fx_open(&f);
    json_t *fns = json_functions();
    const char *name;
    json_t *n;
    json_object_foreach(fns, name, n) {
        const entry *e = find(name);
        if (e == NULL)
            continue; /* reported by the test above */
        for (int w = 0; w < json_integer_value(n); w++) {
            ee_status st = e->call(&f, w, big);
            char limit[32];
            snprintf(limit, sizeof limit, "%zu", e->limit[w]);
            cr_expect_eq(st, EE_ETOOBIG, "%s (JSON parameter %d): %s, %s", name, w,
                         ee_status_name(st), ee_error_last_message());
            cr_expect_not_null(strstr(ee_error_last_message(), limit),
                               "%s (JSON parameter %d): the message does not name the limit "
                               "%s: %s", name, w, limit, ee_error_last_message());
        }
    }
    json_decref(fns);
    fx_close(&f);
    free(big);
}

/* The ticket with one more member. */
static char *ticket_with_unknown(const char *ticket)
{
    size_t n = strlen(ticket);
    char *doc = malloc(n + 32);
    memcpy(doc, ticket, n - 1);
    snprintf(doc + n - 1, 32, ", \"%s\": 1}", UNKNOWN);
    return doc;
}

Test(json_inputs, an_unknown_member_of_a_request_is_refused_by_name)
{
    fx f;
    fx_open(&f);
    json_t *fns = json_functions();
    const char *name;
    json_t *n;
    int checked = 0;
    json_object_foreach(fns, name, n) {
        const entry *e = find(name);
        if (e == NULL)
            continue;
        for (int w = 0; w < json_integer_value(n); w++) {
            if (e->unknown[w] == NULL) {
                cr_expect_not_null(e->why_not[w], "%s: say why parameter %d is not checked",
                                   name, w);
                continue;
            }
            char *doc = strcmp(e->unknown[w], TICKET_DOC) == 0 ? ticket_with_unknown(f.ticket)
                                                               : strdup(e->unknown[w]);
            ee_status st = e->call(&f, w, doc);
            cr_expect_eq(st, e->unknown_st[w], "%s (JSON parameter %d) with %s: %s, %s", name,
                         w, doc, ee_status_name(st), ee_error_last_message());
            cr_expect_not_null(strstr(ee_error_last_message(), "\"" UNKNOWN "\""),
                               "%s: the message does not name the member: %s", name,
                               ee_error_last_message());
            cr_expect_null(strstr(ee_error_last_message(), "canary"),
                           "%s: the message shows a secret: %s", name, ee_error_last_message());
            free(doc);
            checked++;
        }
    }
    cr_expect_gt(checked, 15);
    json_decref(fns);
    fx_close(&f);
}
