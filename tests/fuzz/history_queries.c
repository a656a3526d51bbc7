/*
 * libFuzzer: arbitrary bytes as the query documents and month names a
 * client reads its history with (fuzz_runs.h: a memory engine holding
 * completed and failed runs of two users, their billing month and usage
 * rows, closed and paid past months, audit
 * entries and two e-mail templates). The first byte picks the call; the
 * rest is its text, "WFID" standing for the id of a workflow with runs:
 *   0  ee_exec_list             4  ee_audit_query (the user's workspace)
 *   1  ee_billing_history       5  ee_audit_query (NULL: the platform's)
 *   2  ee_billing_usage         6  ee_email_template_list (admin)
 *   3  ee_billing_analytics     7  a month: ee_billing_month, _export
 *                                  (json, csv), _close_month, _mark_paid
 *                               8  a format: ee_billing_export of a
 *                                  closed month
 * Invariants: documented statuses only (never EE_ENOMEM, EE_ECORRUPT or
 * EE_EIO for outside input); answers are JSON (a CSV export is text
 * whose first line is the documented header), a failure's the error
 * document of its status. A page holds no more than its limit, and
 * following its nextCursor with the same query is accepted and never
 * gives an item twice. A month that reads is "YYYY-MM". The engine is
 * opened again every FZ_RESET inputs (closed months accumulate).
 */
#include "fuzz_runs.h"

#define FZ_RESET 5000

static fz_runs R;
static ee_principal *other; /* a second user of the workspace */
static unsigned inputs;

/* A run of `workflow` by `who` through the worker: completed, or failed
 * (booked either way). */
static void run(ee_principal *who, const char *workflow, bool fail)
{
    char *out = NULL;
    ee_status st = ee_exec_run(R.engine, who, workflow,
                               fail ? "{\"parameters\": {\"text\": \"fail\"}}"
                                    : "{\"parameters\": {\"text\": \"ok\"}, \"email\": "
                                      "{\"to\": \"r@fz.example.com\"}}",
                               &out);
    if (st != (fail ? EE_EUPSTREAM : EE_OK))
        fprintf(stderr, "run: %s\n", out);
    CHECK(st == (fail ? EE_EUPSTREAM : EE_OK));
    ee_free(out);
}

static void open_engine(void)
{
    fz_runs_open(&R, false, true);
    CHECK(ee_principal_new(&other, FZ_WS, "u-fz-2", FZ_ORG) == EE_OK);
    for (int i = 0; i < 9; i++)
        run(i % 3 ? R.user : other, i % 2 ? R.llm_id : R.plain_id, i % 4 == 3);
    char *out = NULL;
    static const char *const months[] = {"2025-07", "2025-08", "2025-09"};
    for (size_t i = 0; i < 3; i++) {
        CHECK(ee_billing_close_month(R.engine, R.user, months[i], &out) == EE_OK);
        ee_free(out);
    }
    CHECK(ee_billing_mark_paid(R.engine, R.user, "2025-08", &out) == EE_OK);
    ee_free(out);
    char doc[512];
    const char *const wf[] = {R.plain_id, R.llm_id};
    for (size_t i = 0; i < 2; i++) {
        snprintf(doc, sizeof doc, "{\"workflowCatalogId\": \"%s\", \"subjectTemplate\": "
                                  "\"{{workflowName}} done\", \"bodyTemplate\": "
                                  "\"<p>{{resultsText}}</p>\", \"isActive\": %s}",
                 wf[i], i ? "false" : "true");
        CHECK(ee_email_template_put(R.engine, NULL, doc, &out) == EE_OK);
        ee_free(out);
    }
    ee_error_clear();
}

typedef ee_status (*query_fn)(ee_engine *, const ee_principal *, const char *, char **);

static ee_status template_list(ee_engine *e, const ee_principal *p, const char *q, char **out)
{
    (void)p;
    return ee_email_template_list(e, NULL, q, out);
}

typedef struct {
    query_fn fn;
    bool platform;      /* NULL principal */
    size_t def, max;    /* the limit's default and largest */
    const char *id_key; /* the member naming an item ("" : the usage row's key) */
} query_kind;

static const query_kind kinds[] = {
    {ee_exec_list, false, 20, 100, "_id"},
    {ee_billing_history, false, 12, 100, "_id"},
    {ee_billing_usage, false, 50, 100, ""},
    {ee_billing_analytics, false, 0, 0, NULL},
    {ee_audit_query, false, EE_AUDIT_LIMIT_DEFAULT, EE_AUDIT_LIMIT_MAX, "id"},
    {ee_audit_query, true, EE_AUDIT_LIMIT_DEFAULT, EE_AUDIT_LIMIT_MAX, "id"},
    {template_list, true, 50, 1000, "id"},
};

/* An item's identity within its listing (free()). */
static char *item_key(const query_kind *k, const json_t *it)
{
    if (k->id_key[0] != '\0') {
        const char *id = json_string_value(json_object_get(it, k->id_key));
        CHECK(id != NULL);
        return strdup(id);
    }
    const char *u = json_string_value(json_object_get(it, "userId"));
    const char *w = json_string_value(json_object_get(it, "workflowCatalogId"));
    const char *p = json_string_value(json_object_get(it, "period"));
    CHECK(u != NULL && w != NULL && p != NULL);
    size_t n = strlen(u) + strlen(w) + strlen(p) + 3;
    char *key = malloc(n);
    CHECK(key != NULL);
    snprintf(key, n, "%s\n%s\n%s", u, w, p);
    return key;
}

/* One page: checked; its items' keys added to `seen` (never twice).
 * Returns the answer (json_decref()) or NULL for a refusal. */
static json_t *page(const query_kind *k, const char *query, size_t limit, json_t *seen,
                    bool follow)
{
    char *out = NULL;
    ee_status st = k->fn(R.engine, k->platform ? NULL : R.user, query, &out);
    if (follow && st != EE_OK)
        fprintf(stderr, "following a cursor: %s\n", out);
    if (follow)
        CHECK(st == EE_OK); /* a cursor the library gave is accepted */
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
    json_t *doc = fz_answer(st, out);
    if (st != EE_OK) {
        json_decref(doc);
        return NULL;
    }
    if (k->id_key == NULL) { /* analytics: one document */
        CHECK(json_is_array(json_object_get(doc, "executions")));
        CHECK(json_is_integer(json_object_get(doc, "totalExecutions")));
        CHECK(json_is_object(json_object_get(doc, "spend")));
        return doc;
    }
    const json_t *items = json_object_get(doc, "data");
    const json_t *next = json_object_get(doc, "nextCursor");
    CHECK(json_is_array(items));
    CHECK(json_is_null(next) || (json_is_string(next) && json_string_length(next) > 0));
    CHECK(json_array_size(items) <= limit);
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it) {
        char *key = item_key(k, it);
        CHECK(json_object_get(seen, key) == NULL);
        json_object_set_new(seen, key, json_true());
        free(key);
    }
    return doc;
}

static void query(const query_kind *k, const char *text)
{
    char *q_text = fz_replace(text, "WFID", R.plain_id);
    json_t *q = json_loads(q_text, 0, NULL);
    size_t limit = k->def;
    json_t *lim = json_object_get(q, "limit");
    if (json_is_integer(lim) && json_integer_value(lim) > 0 &&
        (size_t)json_integer_value(lim) <= k->max)
        limit = (size_t)json_integer_value(lim);
    json_t *seen = json_object();
    json_t *doc = page(k, q_text, limit, seen, false);
    for (int n = 0; doc != NULL && k->id_key != NULL &&
                    json_is_string(json_object_get(doc, "nextCursor")) && n < 4;
         n++) {
        CHECK(json_is_object(q)); /* only an object query can have been accepted */
        json_object_set(q, "cursor", json_object_get(doc, "nextCursor"));
        char *next_query = json_dumps(q, 0);
        CHECK(next_query != NULL);
        json_decref(doc);
        doc = page(k, next_query, limit, seen, true);
        free(next_query);
    }
    json_decref(doc);
    json_decref(seen);
    json_decref(q);
    free(q_text);
}

static bool month_shape(const char *m)
{
    return m != NULL && strlen(m) == 7 && m[4] == '-';
}

static void check_export(ee_status st, char *out, const char *format)
{
    if (st == EE_OK && strcmp(format, "csv") == 0) {
        static const char head[] = "workspaceId,month,billingStatus,workflowId,executions,"
                                   "tokens,costNanoUsd,markupNanoUsd,chargedNanoUsd,"
                                   "chargedUsd\r\n";
        CHECK(out != NULL && strncmp(out, head, sizeof head - 1) == 0);
        ee_free(out);
        return;
    }
    json_t *doc = fz_answer(st, out);
    if (st == EE_OK)
        CHECK(month_shape(json_string_value(json_object_get(doc, "month"))));
    json_decref(doc);
}

static void month(const char *name)
{
    char *out = NULL;
    ee_status st = ee_billing_month(R.engine, R.user, name, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL);
    json_t *doc = fz_answer(st, out);
    if (st == EE_OK)
        CHECK(month_shape(json_string_value(json_object_get(doc, "month"))));
    json_decref(doc);
    static const char *const formats[] = {"json", "csv"};
    for (size_t i = 0; i < 2; i++) {
        st = ee_billing_export(R.engine, R.user, name, formats[i], &out);
        CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_ENOTFOUND, EE_ESTATE);
        check_export(st, out, formats[i]);
    }
    st = ee_billing_close_month(R.engine, R.user, name, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_ESTATE);
    json_decref(fz_answer(st, out));
    st = ee_billing_mark_paid(R.engine, R.user, name, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_ENOTFOUND, EE_ESTATE);
    json_decref(fz_answer(st, out));
}

static void format(const char *text)
{
    char *out = NULL;
    ee_status st = ee_billing_export(R.engine, R.user, "2025-09", text, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL);
    check_export(st, out, text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (R.engine == NULL || ++inputs % FZ_RESET == 0) {
        if (R.engine != NULL) {
            ee_principal_free(other);
            fz_runs_close(&R);
        }
        open_engine();
    }
    char *text = fz_text(data + 1, size - 1);
    unsigned which = data[0] % 9;
    if (which < sizeof kinds / sizeof kinds[0])
        query(&kinds[which], text);
    else if (which == 7)
        month(text);
    else
        format(text);
    free(text);
    ee_error_clear();
    return 0;
}
