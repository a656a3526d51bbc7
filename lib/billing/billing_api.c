/* The door of execengine/billing.h: JSON in and out, through core's record
 * layer; the work is typed (month.c, ledger.c). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/core.h"
#include "billing/billing_internal.h"
#include "core/record.h"
#include "exec/exec.h"
#include "execengine/billing.h"
#include "execengine/quota.h"
#include "storage/storage.h"


static ee_status door(ee_engine *engine, const ee_principal *principal, char **out,
                      const char *what, b_state **st_out)
{
    *st_out = NULL;
    if (out == NULL)
        return ee__error(EE_EINVAL, "%s: out must not be NULL", what);
    *out = NULL;
    *st_out = ee__billing_state(engine);
    if (*st_out == NULL || principal == NULL)
        return ee__error(EE_EINVAL, "%s: engine and principal must not be NULL", what);
    return EE_OK;
}

static ee_status month_arg(const b_state *st, const char *month, const char *what)
{
    int64_t from, to;
    if (month == NULL || !ee__quota_month_named(st->billing_day, month, &from, &to))
        return ee__error(EE_EINVAL, "%s: month must be \"YYYY-MM\" (1970..9999)", what);
    return EE_OK;
}

/* The month's record, or a fresh one when none is stored. */
static ee_status month_get(b_state *st, const char *ws, const char *name, b_month *m)
{
    ee_status s = ee__billing_month_load(ee__engine_storage(st->engine), ws, name, m);
    if (s == EE_OK && !m->exists)
        ee__billing_month_init(st, ws, name, ee_engine_now_ms(st->engine), m);
    return s;
}

ee_status ee_billing_month(ee_engine *engine, const ee_principal *principal, const char *month,
                           char **out)
{
    b_state *st = NULL;
    ee_status s = door(engine, principal, out, "ee_billing_month", &st);
    if (s == EE_OK)
        s = month_arg(st, month, "ee_billing_month");
    if (s != EE_OK)
        return ee__error_out(out, s);
    b_month m;
    s = month_get(st, ee_principal_workspace(principal), month, &m);
    if (s != EE_OK)
        return ee__error_out(out, s);
    s = ee__json_out(out, ee__billing_month_render(&m));
    ee__billing_month_clear(&m);
    return s;
}

ee_status ee_billing_current(ee_engine *engine, const ee_principal *principal, char **out)
{
    b_state *st = NULL;
    ee_status s = door(engine, principal, out, "ee_billing_current", &st);
    if (s != EE_OK)
        return ee__error_out(out, s);
    char name[EE__QUOTA_MONTH_NAME_SIZE];
    ee__quota_month_name(st->billing_day, ee_engine_now_ms(engine), name);
    return ee_billing_month(engine, principal, name, out);
}

/* ---- history ------------------------------------------------------------------------- */

typedef struct {
    json_t *data;
    ee_status st;
} hist_acc;

static int hist_row(const ee_storage_row *row, void *payload)
{
    hist_acc *a = payload;
    b_month m;
    a->st = ee__billing_month_decode(row, &m);
    if (a->st != EE_OK)
        return 1;
    json_array_append_new(a->data, ee__billing_month_render(&m));
    ee__billing_month_clear(&m);
    return 0;
}

/* A paged query's door (as door()), then query_json (NULL is {}) parsed
 * into *q_out and its members checked against `members`. *q_out is the
 * caller's to release, also on failure (it may be NULL). */
static ee_status query_open(ee_engine *engine, const ee_principal *principal, char **out,
                            const char *fn, const char *what, const char *const *members,
                            const char *query_json, b_state **st_out, json_t **q_out)
{
    *q_out = NULL;
    ee_status s = door(engine, principal, out, fn, st_out);
    if (s != EE_OK)
        return s;
    s = ee__record_parse(query_json != NULL ? query_json : "{}", 64 * 1024, 8, 0, what, q_out);
    if (s == EE_OK)
        s = ee__json_check_members(*q_out, members, what, "");
    return s;
}

/* One page of coll's records in the principal's workspace, newest first,
 * each row rendered by fn (its payload a hist_acc) into *data_out; s is the
 * arguments' status: nothing is read unless it is EE_OK. On failure nothing
 * is left for the caller to free. */
static ee_status query_page(ee_status s, ee_engine *engine, const ee_principal *principal,
                            const char *coll, const ee_storage_eq *eq, size_t n_eq, size_t limit,
                            const char *cursor, ee_storage_row_fn fn, json_t **data_out,
                            char **next_out)
{
    hist_acc a = {json_array(), EE_OK};
    if (s == EE_OK) {
        ee_storage_query_spec spec = {.version = EE_STORAGE_QUERY_VERSION, .eq = eq,
                                      .n_eq = n_eq, .order = EE_STORAGE_ORDER_TIME_DESC,
                                      .limit = limit, .cursor = cursor};
        s = ee_storage_query(ee__engine_storage(engine), coll, ee_principal_workspace(principal),
                             &spec, fn, &a, next_out);
        if (s == EE_ECANCELLED && a.st != EE_OK)
            s = a.st;
    }
    if (s != EE_OK) {
        json_decref(a.data);
        ee_free(*next_out);
        *next_out = NULL;
        return s;
    }
    *data_out = a.data;
    return EE_OK;
}

ee_status ee_billing_history(ee_engine *engine, const ee_principal *principal,
                             const char *query_json, char **out)
{
    static const char *const members[] = {"status", "limit", "cursor", NULL};
    const char *what = "billing history query";
    b_state *st = NULL;
    json_t *q = NULL;
    ee_status s = query_open(engine, principal, out, "ee_billing_history", what, members,
                             query_json, &st, &q);
    if (s != EE_OK) {
        json_decref(q);
        return ee__error_out(out, s);
    }
    ee_storage_eq eq[2] = {{"userId", ""}, {"billingStatus", NULL}};
    size_t n_eq = 1, limit = 12;
    const char *cursor = NULL;
    json_t *status = json_object_get(q, "status");
    if (s == EE_OK && status != NULL) {
        const char *v = json_string_value(status);
        if (v == NULL ||
            (strcmp(v, "pending") != 0 && strcmp(v, "billed") != 0 && strcmp(v, "paid") != 0))
            s = ee__error(EE_EINVAL, "%s: \"status\" (at /status) must be pending, billed or paid",
                          what);
        else
            eq[n_eq++].value = v;
    }
    if (s == EE_OK)
        s = ee__json_page_args(q, what, 12, 100, &limit, &cursor);
    json_t *data = NULL;
    char *next = NULL;
    s = query_page(s, engine, principal, B_COLL_MONTH, eq, n_eq, limit, cursor, hist_row, &data,
                   &next);
    json_decref(q);
    return ee__json_page_out(out, s, data, next);
}

/* ---- transitions ------------------------------------------------------------------------ */

typedef struct {
    b_state *st;
    const char *ws, *name;
    b_status to;
    bool changed;
    b_month m;
} move_arg;

static ee_status move_attempt(int attempt, bool *final, void *payload)
{
    (void)attempt;
    move_arg *a = payload;
    ee_storage *sto = ee__engine_storage(a->st->engine);
    int64_t now = ee_engine_now_ms(a->st->engine);
    ee__billing_month_clear(&a->m);
    a->changed = false;
    ee_status s = ee__billing_month_load(sto, a->ws, a->name, &a->m);
    if (s != EE_OK) {
        *final = true;
        return s;
    }
    b_month *m = &a->m;
    if (a->to == B_BILLED) {
        if (!m->exists)
            ee__billing_month_init(a->st, a->ws, a->name, now, m);
        if (m->status == B_BILLED)
            return EE_OK; /* closed before: nothing changes */
        if (m->status == B_PAID) {
            *final = true;
            return ee__error(EE_ESTATE, "billing month %s is paid: it cannot be closed again",
                             a->name);
        }
        if (now < m->period_end) {
            *final = true;
            return ee__error(EE_ESTATE, "billing month %s has not ended yet", a->name);
        }
        m->billed_at = now;
    } else {
        if (!m->exists) {
            *final = true;
            return ee__error(EE_ENOTFOUND, "no billing record of month %s", a->name);
        }
        if (m->status == B_PAID)
            return EE_OK;
        if (m->status == B_PENDING) {
            *final = true;
            return ee__error(EE_ESTATE, "billing month %s is pending: close it before it is paid",
                             a->name);
        }
        m->paid_at = now;
    }
    m->status = a->to;
    m->updated_at = now;
    s = ee__billing_month_store(sto, m); /* revision-checked: a writer in between, again */
    a->changed = s == EE_OK;
    return s;
}

static ee_status move(ee_engine *engine, const ee_principal *principal, const char *month,
                      b_status to, const char *what, char **out)
{
    b_state *st = NULL;
    ee_status s = door(engine, principal, out, what, &st);
    if (s == EE_OK)
        s = month_arg(st, month, what);
    if (s != EE_OK)
        return ee__error_out(out, s);
    move_arg a = {st, ee_principal_workspace(principal), month, to, false, {0}};
    s = ee__record_retry(move_attempt, &a, "the billing month");
    if (s == EE_OK && a.changed) { /* a transition: one entry; a repeat changes nothing */
        json_t *detail = json_pack("{s:s, s:I}", "month", month, "chargedNanoUsd",
                                   (json_int_t)a.m.charged);
        ee__audit_append(engine, &(ee__audit_entry){
                                     .action = to == B_BILLED ? EE__AUDIT_BILLING_MONTH_BILLED
                                                              : EE__AUDIT_BILLING_MONTH_PAID,
                                     .workspace = ee_principal_workspace(principal),
                                     .org = ee_principal_org(principal),
                                     .actor = ee_principal_user(principal),
                                     .target_id = month,
                                     .outcome = EE__AUDIT_OK,
                                     .status = EE_OK,
                                     .detail = detail});
        json_decref(detail);
    }
    if (s == EE_OK)
        s = ee__json_out(out, json_pack("{s:b, s:o}", "changed", a.changed, "billing",
                                        ee__billing_month_render(&a.m)));
    else
        s = ee__error_out(out, s);
    ee__billing_month_clear(&a.m);
    return s;
}

ee_status ee_billing_close_month(ee_engine *engine, const ee_principal *principal,
                                 const char *month, char **out)
{
    return move(engine, principal, month, B_BILLED, "ee_billing_close_month", out);
}

ee_status ee_billing_mark_paid(ee_engine *engine, const ee_principal *principal,
                               const char *month, char **out)
{
    return move(engine, principal, month, B_PAID, "ee_billing_mark_paid", out);
}

/* ---- export ----------------------------------------------------------------------------- */

/* A plain decimal number ("-12", "3.50"): a spreadsheet reads it as a
 * number, never as a formula. */
static bool plain_number(const char *v)
{
    const char *p = v + (*v == '-' || *v == '+');
    const char *digits = p;
    while (*p >= '0' && *p <= '9')
        p++;
    if (p == digits)
        return false;
    if (*p == '.') {
        digits = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == digits)
            return false;
    }
    return *p == '\0';
}

/* One RFC 4180 field: quoted when it holds a comma, a quote, CR or LF.
 * A field a spreadsheet would run as a formula - starting with =, +, -,
 * @, TAB or CR, and not a plain number - gets a leading ' and is quoted
 * (OWASP, CSV injection): the export is opened in spreadsheets, and ids
 * in it come from outside. */
static void csv_field(ee__text *t, const char *v, bool last)
{
    bool formula = v[0] != '\0' && strchr("=+-@\t\r", v[0]) != NULL && !plain_number(v);
    if (!formula && strpbrk(v, ",\"\r\n") == NULL) {
        ee__text_add(t, v, strlen(v));
    } else {
        ee__text_add(t, formula ? "\"'" : "\"", formula ? 2 : 1);
        for (const char *p = v; *p != '\0'; p++) {
            if (*p == '"')
                ee__text_add(t, "\"\"", 2);
            else
                ee__text_add(t, p, 1);
        }
        ee__text_add(t, "\"", 1);
    }
    ee__text_add(t, last ? "\r\n" : ",", last ? 2 : 1);
}

static void csv_int(ee__text *t, int64_t v, bool last)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    csv_field(t, buf, last);
}

static ee_status export_csv(const b_month *m, char **out)
{
    ee__text t = {0};
    static const char *const head[] = {"workspaceId", "month", "billingStatus", "workflowId",
                                       "executions", "tokens", "costNanoUsd", "markupNanoUsd",
                                       "chargedNanoUsd", "chargedUsd"};
    for (size_t i = 0; i < 10; i++)
        csv_field(&t, head[i], i == 9);
    for (size_t i = 0; i < m->nwf; i++) {
        const b_wf *f = &m->wf[i];
        char usd[32];
        ee__decimal_format(f->charged, 9, usd);
        csv_field(&t, m->workspace, false);
        csv_field(&t, m->month, false);
        csv_field(&t, ee__billing_status_name(m->status), false);
        csv_field(&t, f->id, false);
        csv_int(&t, f->executions, false);
        csv_int(&t, f->tokens, false);
        csv_int(&t, f->cost, false);
        csv_int(&t, f->markup, false);
        csv_int(&t, f->charged, false);
        csv_field(&t, usd, true);
    }
    if (t.oom) {
        free(t.p);
        return ee__error(EE_ENOMEM, "out of memory exporting a billing month");
    }
    /* ee_free() is free() for the library's allocations */
    *out = t.p;
    return EE_OK;
}

static json_t *export_json(const b_month *m)
{
    json_t *doc = ee__billing_month_render(m);
    if (doc == NULL)
        return NULL;
    json_t *usage = json_incref(json_object_get(doc, "usage"));
    json_t *lines = json_incref(json_object_get(usage, "byWorkflow"));
    json_object_del(usage, "byWorkflow");
    json_object_del(doc, "usage");
    json_object_del(doc, "userId");
    json_object_set_new(doc, "currency", json_string("USD"));
    json_object_set_new(doc, "totals", usage);
    json_object_set_new(doc, "lines", lines != NULL ? lines : json_array());
    return doc;
}

ee_status ee_billing_export(ee_engine *engine, const ee_principal *principal, const char *month,
                            const char *format, char **out)
{
    const char *what = "ee_billing_export";
    b_state *st = NULL;
    ee_status s = door(engine, principal, out, what, &st);
    if (s == EE_OK)
        s = month_arg(st, month, what);
    bool csv = format != NULL && strcmp(format, "csv") == 0;
    if (s == EE_OK && !csv && (format == NULL || strcmp(format, "json") != 0))
        s = ee__error(EE_EINVAL, "%s: format must be \"json\" or \"csv\"", what);
    if (s != EE_OK)
        return ee__error_out(out, s);
    b_month m;
    s = ee__billing_month_load(ee__engine_storage(engine), ee_principal_workspace(principal),
                               month, &m);
    if (s == EE_OK && !m.exists)
        s = ee__error(EE_ENOTFOUND, "no billing record of month %s", month);
    else if (s == EE_OK && m.status == B_PENDING)
        s = ee__error(EE_ESTATE, "billing month %s is still pending: close it to export it",
                      month);
    if (s == EE_OK)
        s = csv ? export_csv(&m, out) : ee__json_out(out, export_json(&m));
    else
        s = ee__error_out(out, s);
    ee__billing_month_clear(&m);
    return s;
}

/* ---- usage ------------------------------------------------------------------------------ */

static int usage_row(const ee_storage_row *row, void *payload)
{
    hist_acc *a = payload;
    json_t *j = NULL;
    a->st = ee__record_decode(NULL, row->data, row->len, false, &j);
    if (a->st != EE_OK)
        return 1;
    json_t *o = json_object();
    static const char *const strs[] = {"userId", "workflowCatalogId", "period"};
    for (size_t i = 0; i < 3; i++)
        json_object_set(o, strs[i], json_object_get(j, strs[i]) ?: json_string(""));
    static const char *const ints[] = {"totalExecutions", "completedExecutions", "totalCost",
                                       "totalCharged", "totalTokens"};
    for (size_t i = 0; i < 5; i++) {
        const json_t *v = json_object_get(j, ints[i]);
        int64_t n = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
        json_object_set_new(o, ints[i], json_integer(n));
        if (i == 2 || i == 3) {
            char key[32], usd[32];
            snprintf(key, sizeof key, "%sUsd", ints[i]);
            ee__decimal_format(n, 9, usd);
            json_object_set_new(o, key, json_string(usd));
        }
    }
    const json_t *last = json_object_get(j, "lastExecutedAt");
    if (json_is_integer(last) && json_integer_value(last) > 0) {
        char iso[32];
        ee__time_iso((int64_t)json_integer_value(last), iso);
        json_object_set_new(o, "lastExecutedAt", json_string(iso));
    }
    json_decref(j);
    json_array_append_new(a->data, o);
    return 0;
}

ee_status ee_billing_usage(ee_engine *engine, const ee_principal *principal,
                           const char *query_json, char **out)
{
    static const char *const members[] = {"period", "userId", "limit", "cursor", NULL};
    const char *what = "billing usage query";
    b_state *st = NULL;
    json_t *q = NULL;
    ee_status s = query_open(engine, principal, out, "ee_billing_usage", what, members,
                             query_json, &st, &q);
    if (s != EE_OK) {
        json_decref(q);
        return ee__error_out(out, s);
    }
    char period[EE__QUOTA_MONTH_NAME_SIZE];
    ee__quota_month_name(st->billing_day, ee_engine_now_ms(engine), period);
    json_t *p = json_object_get(q, "period");
    if (s == EE_OK && p != NULL) {
        if (json_is_string(p) && strcmp(json_string_value(p), B_PERIOD_ALL) == 0)
            snprintf(period, sizeof period, "%s", B_PERIOD_ALL);
        else if (month_arg(st, json_string_value(p), what) != EE_OK)
            s = ee__error(EE_EINVAL, "%s: \"period\" (at /period) must be \"YYYY-MM\" or "
                                     "\"all\"", what);
        else
            snprintf(period, sizeof period, "%s", json_string_value(p));
    }
    ee_storage_eq eq[2] = {{"period", period}, {"userId", NULL}};
    size_t n_eq = 1, limit = 50;
    json_t *u = json_object_get(q, "userId");
    if (s == EE_OK && u != NULL) {
        if (!json_is_string(u) || json_string_length(u) > EE_STORAGE_VALUE_MAX)
            s = ee__error(EE_EINVAL, "%s: \"userId\" (at /userId) must be a user id", what);
        else
            eq[n_eq++].value = json_string_value(u);
    }
    const char *cursor = NULL;
    if (s == EE_OK)
        s = ee__json_page_args(q, what, 50, 100, &limit, &cursor);
    json_t *data = NULL;
    char *next = NULL;
    s = query_page(s, engine, principal, B_COLL_USAGE, eq, n_eq, limit, cursor, usage_row, &data,
                   &next);
    json_decref(q);
    if (s != EE_OK)
        return ee__error_out(out, s);
    json_t *doc = json_pack("{s:s, s:o, s:s?}", "period", period, "data", data, "nextCursor",
                            next);
    ee_free(next);
    return ee__json_out(out, doc);
}
