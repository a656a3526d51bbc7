/* The month row: platformUsageBilling, one per workspace and billing month
 * (userId "": the workspace-wide row), typed inside (b_month), stored
 * through the record layer's field map, rendered as JSON only at the door. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "billing/billing_internal.h"
#include "core/record.h"
#include "storage/storage.h"

static const char *const status_names[] = {"pending", "billed", "paid"};

const char *ee__billing_status_name(b_status s)
{
    return (unsigned)s < 3 ? status_names[s] : "?";
}

static bool status_parse(const char *name, b_status *out)
{
    for (int i = 0; name != NULL && i < 3; i++)
        if (strcmp(name, status_names[i]) == 0) {
            *out = (b_status)i;
            return true;
        }
    return false;
}

#define M(n) {.name = n, .kind = EE__REC_MONEY}
#define I(n) {.name = n, .kind = EE__REC_INT64}
#define D(n) {.name = n, .kind = EE__REC_DATE}

static const ee__rec_field wf_fields[] = {
    {.name = "workflowId", .kind = EE__REC_STRING, .max_bytes = EE_STORAGE_ID_HEX_LEN},
    I("executions"), M("cost"), M("markup"), M("charged"), I("tokens")};
static const ee__record_map wf_map = {"billing month workflow", wf_fields,
                                      sizeof wf_fields / sizeof wf_fields[0], false};
static const ee__rec_field wf_elem = {.name = NULL, .kind = EE__REC_DOC, .map = &wf_map};

static const ee__rec_field usage_fields[] = {
    I("totalExecutions"), I("completedExecutions"), I("platformExecutions"),
    I("customerExecutions"), M("totalCost"), M("totalMarkup"), M("totalCharged"),
    I("totalTokens"), M("allowanceUsed"), I("totalExecutionTimeMs"),
    {.name = "byWorkflow", .kind = EE__REC_ARRAY, .elem = &wf_elem}};
static const ee__record_map usage_map = {"billing month usage", usage_fields,
                                         sizeof usage_fields / sizeof usage_fields[0], false};

static const ee__rec_field month_fields[] = {
    {.name = "workspaceId", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED,
     .max_bytes = EE_STORAGE_WORKSPACE_MAX},
    {.name = "userId", .kind = EE__REC_STRING, .max_bytes = 256},
    {.name = "month", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED, .max_bytes = 7},
    {.name = "billingStatus", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED, .max_bytes = 8},
    D("periodStart"), D("periodEnd"), M("allowance"),
    {.name = "usage", .kind = EE__REC_DOC, .map = &usage_map},
    D("billedAt"), D("paidAt"),
    {.name = "createdAt", .kind = EE__REC_DATE, .flags = EE__REC_REQUIRED},
    D("updatedAt")};
static const ee__record_map month_map = {"billing month", month_fields,
                                         sizeof month_fields / sizeof month_fields[0], false};

void ee__billing_month_clear(b_month *m)
{
    if (m == NULL)
        return;
    free(m->wf);
    memset(m, 0, sizeof *m);
}

void ee__billing_month_init(const b_state *st, const char *workspace, const char *name,
                            int64_t now, b_month *m)
{
    memset(m, 0, sizeof *m);
    snprintf(m->workspace, sizeof m->workspace, "%s", workspace);
    snprintf(m->month, sizeof m->month, "%s", name);
    m->status = B_PENDING;
    (void)ee__quota_month_named(st->billing_day, name, &m->period_start, &m->period_end);
    m->allowance = st->allowance_nano;
    m->created_at = m->updated_at = now;
}

static int64_t int_of(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
}

static ee_status from_json(const json_t *j, b_month *m)
{
    const char *ws = json_string_value(json_object_get(j, "workspaceId"));
    const char *name = json_string_value(json_object_get(j, "month"));
    if (ws == NULL || name == NULL || strlen(name) != 7 ||
        !status_parse(json_string_value(json_object_get(j, "billingStatus")), &m->status))
        return ee__error(EE_ECORRUPT, "stored billing month %s lacks its workspace, month or a "
                                      "known status", m->id);
    snprintf(m->workspace, sizeof m->workspace, "%s", ws);
    snprintf(m->month, sizeof m->month, "%s", name);
    m->period_start = int_of(j, "periodStart");
    m->period_end = int_of(j, "periodEnd");
    m->allowance = int_of(j, "allowance");
    m->created_at = int_of(j, "createdAt");
    m->updated_at = int_of(j, "updatedAt");
    m->billed_at = int_of(j, "billedAt");
    m->paid_at = int_of(j, "paidAt");
    const json_t *u = json_object_get(j, "usage");
    m->executions = int_of(u, "totalExecutions");
    m->completed = int_of(u, "completedExecutions");
    m->platform_execs = int_of(u, "platformExecutions");
    m->customer_execs = int_of(u, "customerExecutions");
    m->cost = int_of(u, "totalCost");
    m->markup = int_of(u, "totalMarkup");
    m->charged = int_of(u, "totalCharged");
    m->tokens = int_of(u, "totalTokens");
    m->allowance_used = int_of(u, "allowanceUsed");
    m->exec_ms = int_of(u, "totalExecutionTimeMs");
    const json_t *arr = json_object_get(u, "byWorkflow");
    size_t n = json_array_size(arr);
    if (n > 0) {
        m->wf = calloc(n, sizeof *m->wf);
        if (m->wf == NULL)
            return ee__error(EE_ENOMEM, "out of memory reading a billing month");
        m->capwf = n;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *w = json_array_get(arr, i);
        b_wf *f = &m->wf[m->nwf++];
        snprintf(f->id, sizeof f->id, "%s",
                 json_string_value(json_object_get(w, "workflowId")) ?: "");
        f->executions = int_of(w, "executions");
        f->cost = int_of(w, "cost");
        f->markup = int_of(w, "markup");
        f->charged = int_of(w, "charged");
        f->tokens = int_of(w, "tokens");
    }
    return EE_OK;
}

/* The stored shape, or the answer's (money also as USD text, dates ISO). */
static void put_money(json_t *o, const char *k, int64_t nano, bool answer)
{
    json_object_set_new(o, k, json_integer((json_int_t)nano));
    if (answer) {
        char key[64], usd[32];
        snprintf(key, sizeof key, "%sUsd", k);
        ee__decimal_format(nano, 9, usd);
        json_object_set_new(o, key, json_string(usd));
    }
}

static void put_date(json_t *o, const char *k, int64_t ms, bool answer)
{
    if (!answer) {
        json_object_set_new(o, k, json_integer((json_int_t)ms));
        return;
    }
    char buf[32];
    ee__time_iso(ms, buf);
    json_object_set_new(o, k, json_string(buf));
}

static json_t *build(const b_month *m, bool answer)
{
    json_t *j = json_object();
    if (j == NULL)
        return NULL;
    if (answer && m->exists)
        json_object_set_new(j, "_id", json_string(m->id));
    json_object_set_new(j, "workspaceId", json_string(m->workspace));
    json_object_set_new(j, "userId", json_string(""));
    json_object_set_new(j, "month", json_string(m->month));
    json_object_set_new(j, "billingStatus", json_string(ee__billing_status_name(m->status)));
    put_date(j, "periodStart", m->period_start, answer);
    put_date(j, "periodEnd", m->period_end, answer);
    put_money(j, "allowance", m->allowance, answer);
    json_t *u = json_object();
    json_object_set_new(u, "totalExecutions", json_integer(m->executions));
    json_object_set_new(u, "completedExecutions", json_integer(m->completed));
    json_object_set_new(u, "platformExecutions", json_integer(m->platform_execs));
    json_object_set_new(u, "customerExecutions", json_integer(m->customer_execs));
    put_money(u, "totalCost", m->cost, answer);
    put_money(u, "totalMarkup", m->markup, answer);
    put_money(u, "totalCharged", m->charged, answer);
    json_object_set_new(u, "totalTokens", json_integer(m->tokens));
    put_money(u, "allowanceUsed", m->allowance_used, answer);
    if (answer) {
        int64_t left = m->allowance > m->allowance_used ? m->allowance - m->allowance_used : 0;
        put_money(u, "allowanceRemaining", left, true);
    }
    json_object_set_new(u, "totalExecutionTimeMs", json_integer(m->exec_ms));
    json_t *arr = json_array();
    for (size_t i = 0; i < m->nwf; i++) {
        const b_wf *f = &m->wf[i];
        json_t *w = json_object();
        json_object_set_new(w, "workflowId", json_string(f->id));
        json_object_set_new(w, "executions", json_integer(f->executions));
        put_money(w, "cost", f->cost, answer);
        put_money(w, "markup", f->markup, answer);
        put_money(w, "charged", f->charged, answer);
        json_object_set_new(w, "tokens", json_integer(f->tokens));
        json_array_append_new(arr, w);
    }
    json_object_set_new(u, "byWorkflow", arr);
    json_object_set_new(j, "usage", u);
    if (m->billed_at > 0)
        put_date(j, "billedAt", m->billed_at, answer);
    if (m->paid_at > 0)
        put_date(j, "paidAt", m->paid_at, answer);
    put_date(j, "createdAt", m->created_at, answer);
    put_date(j, "updatedAt", m->updated_at, answer);
    return j;
}

json_t *ee__billing_month_render(const b_month *m)
{
    return build(m, true);
}

ee_status ee__billing_month_decode(const ee_storage_row *row, b_month *m)
{
    memset(m, 0, sizeof *m);
    ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, m->id);
    m->revision = row->revision;
    m->exists = true;
    json_t *j = NULL;
    ee_status st = ee__record_decode(&month_map, row->data, row->len, false, &j);
    if (st == EE_OK)
        st = from_json(j, m);
    json_decref(j);
    if (st != EE_OK)
        ee__billing_month_clear(m);
    return st;
}

typedef struct {
    b_month *m;
    ee_status st;
    bool found;
} load_acc;

static int load_row(const ee_storage_row *row, void *payload)
{
    load_acc *a = payload;
    a->st = ee__billing_month_decode(row, a->m);
    a->found = a->st == EE_OK;
    return 1; /* the unique key: one row at most */
}

ee_status ee__billing_month_load(ee_storage *sto, const char *workspace, const char *name,
                                 b_month *m)
{
    memset(m, 0, sizeof *m);
    ee_storage_eq eq[2] = {{"month", name}, {"userId", ""}};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = eq, .n_eq = 2,
                               .limit = 1};
    load_acc a = {m, EE_OK, false};
    ee_status st = ee_storage_query(sto, B_COLL_MONTH, workspace, &q, load_row, &a, NULL);
    if (st == EE_ECANCELLED) {
        ee_error_clear();
        st = a.st;
    }
    if (st != EE_OK) {
        ee__billing_month_clear(m);
        return st;
    }
    if (!a.found)
        memset(m, 0, sizeof *m);
    return EE_OK;
}

ee_status ee__billing_month_store(ee_storage *sto, b_month *m)
{
    json_t *j = build(m, false);
    if (j == NULL)
        return ee__error(EE_ENOMEM, "out of memory storing a billing month");
    uint8_t *data = NULL;
    size_t len = 0;
    ee_status st = ee__record_encode(&month_map, j, &data, &len);
    json_decref(j);
    if (st != EE_OK)
        return st;
    if (m->exists) {
        int64_t rev = 0;
        st = ee_storage_replace(sto, B_COLL_MONTH, m->workspace, m->id, m->revision, data, len,
                                &rev);
        if (st == EE_OK)
            m->revision = rev;
    } else {
        st = ee_storage_insert(sto, B_COLL_MONTH, m->workspace, data, len, m->id);
        if (st == EE_OK) {
            m->exists = true;
            m->revision = 1;
        }
    }
    free(data);
    return st;
}
