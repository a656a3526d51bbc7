/*
 * Plans and subscriptions: parsing (plans.json and admin documents),
 * storage (collections "plans" and "subscriptions"), and resolving an
 * organisation's effective limits (plan x multipliers, config defaults).
 *
 * Multipliers are exact: parts per 10000 parsed from decimal text, applied
 * with integer arithmetic (floor). No floating point reaches a limit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/record.h"
#include "storage/storage.h"
#include "execengine/storage.h"
#include "quota/quota_internal.h"

#define FILE_MAX (1024 * 1024)
#define DOC_MAX (64 * 1024)

static const char *const limit_field[Q_L_COUNT] = {
    "predictionsPerPeriod", "storageBytes", "executionsPerUserPerHour",
    "concurrentExecutionsPerWorkspace", "monthlySpendCapNanoUsd"};
static const char *const mult_key[Q_L_COUNT] = {"predictions", "storage", "rate", "concurrency",
                                                "spend"};

/* How plans and subscriptions are stored (core's record layer). The
 * limits and timestamps are int64 (documents written by earlier versions
 * through Extended JSON hold int32 where a value fits: read alike). */
#define Q_INT(n) {.name = n, .kind = EE__REC_INT64}
#define Q_STR(n) {.name = n, .kind = EE__REC_STRING, .max_bytes = Q_ID_MAX}

static const ee__rec_field mult_fields[] = {Q_STR("predictions"), Q_STR("storage"),
                                            Q_STR("rate"), Q_STR("concurrency"),
                                            Q_STR("spend")};
static const ee__record_map mult_map = {"multipliers", mult_fields,
                                        sizeof mult_fields / sizeof mult_fields[0], false};

static const ee__rec_field plan_fields[] = {
    {.name = "name", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED, .max_bytes = Q_ID_MAX},
    Q_INT("predictionsPerPeriod"), Q_INT("storageBytes"), Q_INT("executionsPerUserPerHour"),
    Q_INT("concurrentExecutionsPerWorkspace"), Q_INT("monthlySpendCapNanoUsd"),
    Q_STR("period"),
    {.name = "failedRunsConsume", .kind = EE__REC_BOOL},
    {.name = "isActive", .kind = EE__REC_BOOL},
    {.name = "multipliers", .kind = EE__REC_DOC, .map = &mult_map},
    Q_INT("runBudgetMaxNanoUsd"), Q_INT("createdAt"), Q_INT("updatedAt")};
static const ee__record_map plan_map = {"plan", plan_fields,
                                        sizeof plan_fields / sizeof plan_fields[0], false};

static const ee__rec_field sub_fields[] = {
    {.name = "orgId", .kind = EE__REC_STRING, .flags = EE__REC_REQUIRED, .max_bytes = Q_ID_MAX},
    Q_STR("planId"), Q_STR("plan"), Q_STR("status"), Q_INT("periodStart"),
    {.name = "multipliers", .kind = EE__REC_DOC, .map = &mult_map},
    Q_INT("createdAt"), Q_INT("updatedAt")};
static const ee__record_map sub_map = {"subscription", sub_fields,
                                       sizeof sub_fields / sizeof sub_fields[0], false};

/* ---- multipliers ---------------------------------------------------------------- */

ee_status ee__quota_mult_parse(const json_t *v, int64_t *out)
{
    int64_t parts = -1;
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i >= 0 && i <= Q_MULT_MAX / Q_MULT_ONE)
            parts = (int64_t)i * Q_MULT_ONE;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = strlen(s);
        int64_t x;
        if (n > 1 && n < 40 && s[n - 1] == '%') {
            char buf[40];
            memcpy(buf, s, n - 1);
            buf[n - 1] = '\0';
            if (ee__decimal_parse(buf, 2, &x) == EE_OK)
                parts = x; /* p % = p/100; with 2 decimals, p*100 parts of 10000 */
        } else if (ee__decimal_parse(s, 4, &x) == EE_OK) {
            parts = x;
        }
    } else if (json_is_real(v)) {
        /* jansson holds a double: recover the decimal it was written as
         * (the shortest fixed form, up to 4 places, that reads back to the
         * same double) and parse that exactly. */
        double d = json_real_value(v);
        char buf[64];
        for (int prec = 0; isfinite(d) && d >= 0 && d < 1e6 && prec <= 4; prec++) {
            snprintf(buf, sizeof buf, "%.*f", prec, d);
            if (strtod(buf, NULL) == d) {
                int64_t x;
                if (ee__decimal_parse(buf, 4, &x) == EE_OK)
                    parts = x;
                break;
            }
        }
    }
    if (parts < 0 || parts > Q_MULT_MAX)
        return EE_EINVAL;
    *out = parts;
    return EE_OK;
}

int64_t ee__quota_apply_mult(int64_t base, int64_t mult)
{
    if (base < 0)
        return Q_UNLIMITED;
    if (mult == Q_MULT_ONE)
        return base;
    int64_t a = base / Q_MULT_ONE, b = base % Q_MULT_ONE;
    if (mult != 0 && a > EE_COUNTERS_VALUE_MAX / mult)
        return EE_COUNTERS_VALUE_MAX;
    int64_t r = a * mult + b * mult / Q_MULT_ONE;
    return r > EE_COUNTERS_VALUE_MAX ? EE_COUNTERS_VALUE_MAX : r;
}

static ee_status parse_mults(const json_t *obj, int64_t mult[Q_L_COUNT], const char *what)
{
    for (int i = 0; i < Q_L_COUNT; i++)
        mult[i] = Q_MULT_ONE;
    if (obj == NULL || json_is_null(obj))
        return EE_OK;
    if (!json_is_object(obj))
        return ee__error(EE_EINVAL, "%s: \"multipliers\" must be an object", what);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        int i = 0;
        while (i < Q_L_COUNT && strcmp(k, mult_key[i]) != 0)
            i++;
        char q[48];
        ee__quote_for_message(k, q, sizeof q);
        if (i == Q_L_COUNT)
            return ee__error(EE_EINVAL, "%s: unknown multiplier \"%s\" (expected predictions, "
                                        "storage, rate, concurrency or spend)", what, q);
        if (ee__quota_mult_parse(v, &mult[i]) != EE_OK)
            return ee__error(EE_EINVAL, "%s: multiplier \"%s\" must be a decimal 0..1000 "
                                        "(\"2\", \"1.5\", \"200%%\", at most 4 decimals)", what, q);
    }
    return EE_OK;
}

static json_t *mults_json(const int64_t mult[Q_L_COUNT])
{
    json_t *o = json_object();
    for (int i = 0; o != NULL && i < Q_L_COUNT; i++) {
        if (mult[i] == Q_MULT_ONE)
            continue;
        char buf[32];
        ee__decimal_format(mult[i], 4, buf);
        json_object_set_new(o, mult_key[i], json_string(buf));
    }
    return o;
}

/* ---- plans ------------------------------------------------------------------------- */

/* A plan's members: the limits (limit_field[]) and these; _id, createdAt,
 * updatedAt and source come back from ee_quota_plan_get() and are taken
 * back so a read plan can be put again. */
static const char *const plan_members[] = {
    "predictionsPerPeriod", "storageBytes", "executionsPerUserPerHour",
    "concurrentExecutionsPerWorkspace", "monthlySpendCapNanoUsd", "name", "period",
    "failedRunsConsume", "multipliers", "isActive", "runBudgetMaxNanoUsd", "description", "_id",
    "createdAt", "updatedAt", "source", NULL};

ee_status ee__quota_plan_parse(const json_t *obj, q_plan *out)
{
    memset(out, 0, sizeof *out);
    if (!json_is_object(obj))
        return ee__error(EE_EINVAL, "a plan must be a JSON object");
    const json_t *name = json_object_get(obj, "name");
    if (!json_is_string(name) || !ee__id_valid(json_string_value(name)))
        return ee__error(EE_EINVAL, "plan \"name\" must be 1..64 characters of "
                                    "[A-Za-z0-9_.:@-]");
    snprintf(out->name, sizeof out->name, "%s", json_string_value(name));
    char what[96];
    snprintf(what, sizeof what, "plan \"%s\"", out->name);
    ee_status mst = ee__json_check_members(obj, plan_members, what, "");
    if (mst != EE_OK)
        return mst;
    for (int i = 0; i < Q_L_COUNT; i++) {
        const json_t *f = json_object_get(obj, limit_field[i]);
        out->limit[i] = Q_UNLIMITED;
        if (f == NULL || json_is_null(f))
            continue;
        if (!json_is_integer(f) || json_integer_value(f) < -1 ||
            json_integer_value(f) > EE_COUNTERS_VALUE_MAX)
            return ee__error(EE_EINVAL, "%s: \"%s\" must be an integer -1 (unlimited) or "
                                        "0..2^53-1", what, limit_field[i]);
        out->limit[i] = (int64_t)json_integer_value(f);
        out->has[i] = true;
    }
    if (!out->has[Q_L_PRED])
        return ee__error(EE_EINVAL, "%s: \"predictionsPerPeriod\" is required (-1 for "
                                    "unlimited)", what);
    const json_t *period = json_object_get(obj, "period");
    out->period = Q_PERIOD_ROLLING;
    if (period != NULL) {
        const char *p = json_is_string(period) ? json_string_value(period) : "";
        if (strcmp(p, "calendarMonth") == 0)
            out->period = Q_PERIOD_CALENDAR;
        else if (strcmp(p, "rolling30d") != 0)
            return ee__error(EE_EINVAL, "%s: \"period\" must be \"rolling30d\" or "
                                        "\"calendarMonth\"", what);
    }
    const json_t *fc = json_object_get(obj, "failedRunsConsume");
    if (fc != NULL && !json_is_boolean(fc))
        return ee__error(EE_EINVAL, "%s: \"failedRunsConsume\" must be true or false", what);
    out->failed_consume = json_is_true(fc);
    const json_t *act = json_object_get(obj, "isActive");
    if (act != NULL && !json_is_boolean(act))
        return ee__error(EE_EINVAL, "%s: \"isActive\" must be true or false", what);
    out->active = act == NULL || json_is_true(act);
    /* The most one run may spend through the gateway. No "-1": a run's
     * budget is never unbounded (a runaway workflow must stop somewhere). */
    const json_t *rb = json_object_get(obj, "runBudgetMaxNanoUsd");
    out->run_budget_max = -1;
    if (rb != NULL && !json_is_null(rb)) {
        if (!json_is_integer(rb) || json_integer_value(rb) < 0 ||
            json_integer_value(rb) > EE_COUNTERS_VALUE_MAX)
            return ee__error(EE_EINVAL, "%s: \"runBudgetMaxNanoUsd\" must be an integer "
                                        "0..2^53-1 (nano-USD; a run's budget is never unlimited)",
                             what);
        out->run_budget_max = (int64_t)json_integer_value(rb);
    }
    return parse_mults(json_object_get(obj, "multipliers"), out->mult, what);
}

json_t *ee__quota_plan_json(const q_plan *p, const char *source)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "name", json_string(p->name));
    for (int i = 0; i < Q_L_COUNT; i++)
        if (p->has[i])
            json_object_set_new(o, limit_field[i], json_integer(p->limit[i]));
    json_object_set_new(o, "period",
                        json_string(p->period == Q_PERIOD_CALENDAR ? "calendarMonth"
                                                                   : "rolling30d"));
    json_object_set_new(o, "failedRunsConsume", json_boolean(p->failed_consume));
    json_object_set_new(o, "multipliers", mults_json(p->mult));
    json_object_set_new(o, "isActive", json_boolean(p->active));
    if (p->run_budget_max >= 0)
        json_object_set_new(o, "runBudgetMaxNanoUsd", json_integer(p->run_budget_max));
    if (source != NULL)
        json_object_set_new(o, "source", json_string(source));
    return o;
}

/* ---- plans.json ---------------------------------------------------------------------- */

void ee__quota_file_free(q_file *f)
{
    free(f->plans);
    memset(f, 0, sizeof *f);
}

static ee_status file_int(const json_t *root, const char *key, int64_t min, int64_t max,
                          int64_t *out, const char *path)
{
    const json_t *v = json_object_get(root, key);
    if (v == NULL)
        return EE_OK;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return ee__error(EE_EINVAL, "%s: \"%s\" must be an integer %lld..%lld", path, key,
                         (long long)min, (long long)max);
    *out = (int64_t)json_integer_value(v);
    return EE_OK;
}

static ee_status file_parse(q_file *f, const json_t *root, const char *path)
{
    if (!json_is_object(root))
        return ee__error(EE_EPARSE, "%s: the top level must be an object", path);
    const json_t *plans = json_object_get(root, "plans");
    if (!json_is_array(plans) || json_array_size(plans) > Q_MAX_PLANS)
        return ee__error(EE_EPARSE, "%s: \"plans\" must be an array of at most %d plans", path,
                         Q_MAX_PLANS);
    f->nplans = json_array_size(plans);
    f->plans = calloc(f->nplans ? f->nplans : 1, sizeof *f->plans);
    if (f->plans == NULL)
        return ee__error(EE_ENOMEM, "out of memory reading %s", path);
    for (size_t i = 0; i < f->nplans; i++) {
        ee_status st = ee__quota_plan_parse(json_array_get(plans, i), &f->plans[i]);
        if (st != EE_OK)
            return st;
        for (size_t j = 0; j < i; j++)
            if (strcmp(f->plans[j].name, f->plans[i].name) == 0)
                return ee__error(EE_EINVAL, "%s: plan \"%s\" appears twice", path,
                                 f->plans[i].name);
    }
    const json_t *def = json_object_get(root, "defaultPlan");
    if (!json_is_string(def) || !ee__id_valid(json_string_value(def)))
        return ee__error(EE_EINVAL, "%s: \"defaultPlan\" must name a plan", path);
    snprintf(f->default_plan, sizeof f->default_plan, "%s", json_string_value(def));
    ee_status st = file_int(root, "runLeaseMs", 1000, 7 * Q_DAY_MS, &f->run_lease_ms, path);
    if (st == EE_OK)
        st = file_int(root, "cacheMs", 0, Q_DAY_MS, &f->cache_ms, path);
    if (st == EE_OK)
        st = file_int(root, "globalConcurrentExecutions", -1, 100000000, &f->global_conc, path);
    if (st != EE_OK)
        return st;
    const json_t *thr = json_object_get(root, "alertThresholdsPercent");
    if (thr != NULL) {
        if (!json_is_array(thr) || json_array_size(thr) > Q_MAX_THRESHOLDS)
            return ee__error(EE_EINVAL, "%s: \"alertThresholdsPercent\" must be an array of at "
                                        "most %d percentages", path, Q_MAX_THRESHOLDS);
        f->nthresholds = 0;
        for (size_t i = 0; i < json_array_size(thr); i++) {
            const json_t *t = json_array_get(thr, i);
            int64_t p = json_is_integer(t) ? (int64_t)json_integer_value(t) : -1;
            if (p < 1 || p > 100 || (i > 0 && p <= f->thresholds[i - 1]))
                return ee__error(EE_EINVAL, "%s: alert thresholds must be ascending integers "
                                            "1..100", path);
            f->thresholds[f->nthresholds++] = p;
        }
    }
    return EE_OK;
}

void ee__quota_file_defaults(q_file *f)
{
    memset(f, 0, sizeof *f);
    snprintf(f->default_plan, sizeof f->default_plan, "free");
    f->run_lease_ms = 15 * 60 * 1000;
    f->cache_ms = 30000;
    f->thresholds[0] = 80;
    f->thresholds[1] = 95;
    f->nthresholds = 2;
    f->global_conc = Q_UNLIMITED;
}

ee_status ee__quota_file_load(q_file *f, const char *text, size_t len, const char *path)
{
    ee__quota_file_defaults(f);
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        char q[128];
        ee__quote_for_message(jerr.text, q, sizeof q);
        return ee__error(EE_EPARSE, "cannot read plans file %s: %s (line %d)", path, q,
                         jerr.line);
    }
    ee_status st = file_parse(f, root, path);
    json_decref(root);
    if (st != EE_OK)
        ee__quota_file_free(f);
    return st;
}

/* ---- storage documents ------------------------------------------------------------------ */

/* Store `doc` as the document of `coll` in `ws` whose unique `field` is
 * `value`: replace the one there or insert, through the record layer's
 * upsert. When another thread or process writes the same key in between,
 * the write is made again over what that writer stored (the last writer
 * wins, and there is never a second document); EE_EBUSY when it keeps
 * changing past the record layer's budget. */
static ee_status replace_with(json_t *rec, void *payload)
{
    json_object_clear(rec);
    return json_object_update(rec, payload) == 0
               ? EE_OK
               : ee__error(EE_ENOMEM, "out of memory storing a quota document");
}

static ee_status upsert_doc(ee_storage *sto, const ee__record_map *map, const char *coll,
                            const char *ws, const char *field, const char *value, json_t *doc)
{
    ee_status s = ee__record_upsert(sto, map, coll, ws, field, value, NULL, replace_with, doc);
    if (s == EE_ECONFLICT)
        return ee__error(EE_EBUSY, "%s \"%s\" kept changing under %d attempts to store it",
                         coll, value, EE__RECORD_ATTEMPTS);
    return s;
}

static void file_plan(const q_state *st, const char *name, const q_plan **out)
{
    *out = NULL;
    for (size_t i = 0; i < st->file.nplans; i++)
        if (strcmp(st->file.plans[i].name, name) == 0)
            *out = &st->file.plans[i];
}

/* The effective plan `name`: a stored one wins over the file's. */
static ee_status plan_find(q_state *st, const char *name, q_plan *out, const char **source)
{
    ee__record_found d;
    ee_status s = ee__record_find(ee__engine_storage(st->engine), &plan_map, "plans", NULL,
                                  "name", name, &d);
    if (s == EE_OK) {
        json_t *j = d.rec;
        if (j == NULL)
            return ee__error(EE_ECORRUPT, "stored plan \"%s\" cannot be read: %s", name, d.why);
        s = ee__quota_plan_parse(j, out);
        json_decref(j);
        if (s != EE_OK)
            return ee__error(EE_ECORRUPT, "stored plan \"%s\" is malformed: %s", name,
                             ee_error_last_message());
        *source = "storage";
        return EE_OK;
    }
    if (s != EE_ENOTFOUND)
        return s;
    const q_plan *fp;
    file_plan(st, name, &fp);
    if (fp == NULL)
        return ee__error(EE_ENOTFOUND, "no plan named \"%s\"", name);
    *out = *fp;
    *source = "file";
    return EE_OK;
}

/* The audit entry of a committed plan or subscription change. */
static void audit(ee_engine *engine, ee__audit_action action, const char *ws, const char *org,
                  const char *target, const char *plan)
{
    json_t *detail = plan != NULL ? json_pack("{s:s}", "plan", plan) : NULL;
    ee__audit_append(engine, &(ee__audit_entry){.action = action,
                                                .workspace = ws,
                                                .org = org,
                                                .actor = EE__AUDIT_ACTOR_SYSTEM,
                                                .target_id = target,
                                                .outcome = EE__AUDIT_OK,
                                                .status = EE_OK,
                                                .detail = detail});
    json_decref(detail);
}

static ee_status check_name(const char *name, const char *what)
{
    if (name == NULL || !ee__id_valid(name))
        return ee__error(EE_EINVAL, "%s must be 1..64 characters of [A-Za-z0-9_.:@-]", what);
    return EE_OK;
}

/* A plan or subscription the caller sends: a JSON object of at most
 * DOC_MAX bytes, nested at most 8 levels (a plan is 2), through the record
 * layer's bounded parse; *st the engine's quota state. */
static ee_status parse_doc(ee_engine *engine, const char *text, const char *what, q_state **st,
                           json_t **out)
{
    *out = NULL;
    *st = ee__quota_state(engine);
    if (*st == NULL)
        return ee__error(EE_EINVAL, "%s: engine must not be NULL", what);
    return ee__record_parse(text, DOC_MAX, 8, EE__JSON_EXACT_NUMBERS, what, out);
}

/* The answer of a put, whose `out` may be NULL: `doc` (consumed) on
 * success, the error otherwise. */
static ee_status put_answer(char **out, ee_status s, json_t *doc)
{
    if (s != EE_OK) {
        json_decref(doc);
        return out != NULL ? ee__error_out(out, s) : s;
    }
    if (out != NULL)
        return ee__json_out(out, doc);
    json_decref(doc);
    return EE_OK;
}

ee_status ee_quota_plan_put(ee_engine *engine, const char *plan_json, char **out)
{
    if (out != NULL)
        *out = NULL;
    q_state *st;
    json_t *j;
    ee_status s = parse_doc(engine, plan_json, "ee_quota_plan_put", &st, &j);
    q_plan p;
    if (s == EE_OK)
        s = ee__quota_plan_parse(j, &p);
    json_decref(j);
    if (s == EE_OK) {
        json_t *doc = ee__quota_plan_json(&p, NULL);
        json_object_set_new(doc, "createdAt", json_integer(ee_engine_now_ms(engine)));
        s = upsert_doc(ee__engine_storage(engine), &plan_map, "plans", NULL, "name", p.name,
                       doc);
        json_decref(doc);
    }
    if (s == EE_OK) {
        atomic_fetch_add(&st->gen, 1);
        audit(engine, EE__AUDIT_QUOTA_PLAN_PUT, NULL, NULL, p.name, NULL);
    }
    json_t *doc = s == EE_OK && out != NULL ? ee__quota_plan_json(&p, "storage") : NULL;
    return put_answer(out, s, doc);
}

ee_status ee_quota_plan_get(ee_engine *engine, const char *name, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_quota_plan_get: out must not be NULL");
    *out = NULL;
    q_state *st = ee__quota_state(engine);
    ee_status s = st == NULL ? ee__error(EE_EINVAL, "ee_quota_plan_get: engine must not be NULL")
                             : check_name(name, "plan name");
    q_plan p;
    const char *source = NULL;
    if (s == EE_OK)
        s = plan_find(st, name, &p, &source);
    if (s != EE_OK)
        return ee__error_out(out, s);
    return ee__json_out(out, ee__quota_plan_json(&p, source));
}

typedef struct plan_list {
    json_t *arr;
} plan_list;

static int collect_plan(const ee_storage_row *row, void *payload)
{
    plan_list *l = payload;
    json_t *j = NULL;
    q_plan p;
    if (ee__record_decode(&plan_map, row->data, row->len, false, &j) == EE_OK
        && ee__quota_plan_parse(j, &p) == EE_OK)
        json_array_append_new(l->arr, ee__quota_plan_json(&p, "storage"));
    json_decref(j);
    return 0;
}

ee_status ee_quota_plan_list(ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_quota_plan_list: out must not be NULL");
    *out = NULL;
    q_state *st = ee__quota_state(engine);
    if (st == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_quota_plan_list: NULL engine"));
    plan_list l = {json_array()};
    if (l.arr == NULL)
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory listing plans"));
    ee_storage_query_spec q = {0};
    q.version = EE_STORAGE_QUERY_VERSION;
    q.order = EE_STORAGE_ORDER_TIME_ASC;
    q.limit = EE_STORAGE_LIMIT_MAX;
    ee_status s = ee_storage_query(ee__engine_storage(engine), "plans", NULL, &q, collect_plan,
                                   &l, NULL);
    if (s != EE_OK) {
        json_decref(l.arr);
        return ee__error_out(out, s);
    }
    /* File plans not overridden by a stored one. */
    size_t stored = json_array_size(l.arr);
    for (size_t i = 0; i < st->file.nplans; i++) {
        bool shadowed = false;
        for (size_t k = 0; k < stored && !shadowed; k++)
            shadowed = strcmp(json_string_value(json_object_get(json_array_get(l.arr, k),
                                                                "name")),
                              st->file.plans[i].name) == 0;
        if (!shadowed)
            json_array_append_new(l.arr, ee__quota_plan_json(&st->file.plans[i], "file"));
    }
    return ee__json_out(out, json_pack("{s:s, s:o}", "defaultPlan", st->file.default_plan,
                                       "plans", l.arr));
}

ee_status ee_quota_plan_delete(ee_engine *engine, const char *name)
{
    q_state *st = ee__quota_state(engine);
    if (st == NULL)
        return ee__error(EE_EINVAL, "ee_quota_plan_delete: engine must not be NULL");
    ee_status s = check_name(name, "plan name");
    ee__record_found d;
    if (s == EE_OK)
        s = ee__record_find(ee__engine_storage(engine), &plan_map, "plans", NULL, "name", name,
                            &d);
    if (s == EE_ENOTFOUND)
        return ee__error(EE_ENOTFOUND, "no stored plan named \"%s\"", name);
    if (s != EE_OK)
        return s;
    json_decref(d.rec);
    s = ee_storage_delete(ee__engine_storage(engine), "plans", NULL, d.id);
    if (s == EE_OK) {
        atomic_fetch_add(&st->gen, 1);
        audit(engine, EE__AUDIT_QUOTA_PLAN_DELETED, NULL, NULL, name, NULL);
    }
    return s;
}

/* ---- subscriptions ------------------------------------------------------------------------ *
 * The collection is per workspace; an organisation's subscription is kept
 * in the workspace named like the organisation (its own workspace when it
 * has one), found by its indexed orgId. */

typedef struct q_sub {
    char plan[Q_ID_MAX + 1];
    int64_t period_start;
    int64_t mult[Q_L_COUNT];
} q_sub;

static ee_status sub_parse(const json_t *j, q_sub *out, const char *org)
{
    memset(out, 0, sizeof *out);
    char what[96];
    snprintf(what, sizeof what, "subscription of \"%s\"", org);
    const json_t *plan = json_object_get(j, "plan");
    if (plan == NULL)
        plan = json_object_get(j, "planId");
    if (!json_is_string(plan) || !ee__id_valid(json_string_value(plan)))
        return ee__error(EE_EINVAL, "%s: \"plan\" must name a plan", what);
    snprintf(out->plan, sizeof out->plan, "%s", json_string_value(plan));
    const json_t *ps = json_object_get(j, "periodStart");
    if (ps != NULL && (!json_is_integer(ps) || json_integer_value(ps) < 0 ||
                       json_integer_value(ps) > EE_COUNTERS_TIME_MAX))
        return ee__error(EE_EINVAL, "%s: \"periodStart\" must be ms since the epoch", what);
    out->period_start = ps != NULL ? (int64_t)json_integer_value(ps) : -1;
    return parse_mults(json_object_get(j, "multipliers"), out->mult, what);
}

static ee_status sub_find(q_state *st, const char *org, q_sub *out, bool *found)
{
    ee__record_found d;
    *found = false;
    ee_status s = ee__record_find(ee__engine_storage(st->engine), &sub_map, "subscriptions",
                                  org, "orgId", org, &d);
    if (s == EE_ENOTFOUND)
        return EE_OK;
    if (s != EE_OK)
        return s;
    json_t *j = d.rec;
    if (j == NULL)
        return ee__error(EE_ECORRUPT, "stored subscription of \"%s\" cannot be read: %s", org,
                         d.why);
    const json_t *status = json_object_get(j, "status");
    bool active = !json_is_string(status) || strcmp(json_string_value(status), "active") == 0;
    s = sub_parse(j, out, org);
    json_decref(j);
    if (s != EE_OK)
        return ee__error(EE_ECORRUPT, "stored subscription is malformed: %s",
                         ee_error_last_message());
    *found = active;
    return EE_OK;
}

static void limits_from(const q_state *st, const q_plan *p, const q_sub *sub, q_limits *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->plan, sizeof out->plan, "%s", p->name);
    for (int i = 0; i < Q_L_COUNT; i++) {
        int64_t base = p->has[i] ? p->limit[i] : Q_UNLIMITED;
        if (!p->has[i] && i == Q_L_RATE)
            base = st->cfg_rate;
        if (!p->has[i] && i == Q_L_CONC)
            base = st->cfg_conc;
        int64_t sm = sub != NULL ? sub->mult[i] : Q_MULT_ONE;
        out->limit[i] = ee__quota_apply_mult(ee__quota_apply_mult(base, p->mult[i]), sm);
        out->plan_mult[i] = p->mult[i];
        out->sub_mult[i] = sm;
    }
    out->gconc = st->file.global_conc;
    out->period = p->period;
    out->period_start = sub != NULL && sub->period_start >= 0 ? sub->period_start : 0;
    out->failed_consume = p->failed_consume;
    out->subscribed = sub != NULL;
    out->run_budget_max = p->run_budget_max;
}

ee_status ee__quota_resolve(q_state *st, const char *org, int64_t now, q_limits *out)
{
    (void)now;
    q_sub sub;
    bool found;
    ee_status s = sub_find(st, org, &sub, &found);
    if (s != EE_OK)
        return s;
    q_plan p;
    const char *source;
    s = plan_find(st, found ? sub.plan : st->file.default_plan, &p, &source);
    if (s != EE_OK)
        return s;
    limits_from(st, &p, found ? &sub : NULL, out);
    return EE_OK;
}

q_org *ee__quota_org(q_state *st, const char *org_id)
{
    pthread_mutex_lock(&st->lock);
    q_org *o = EE__HTAB_ENTRY(ee__htab_find(&st->orgs, org_id), q_org, node);
    if (o == NULL && (o = calloc(1, sizeof *o)) != NULL) {
        snprintf(o->id, sizeof o->id, "%s", org_id);
        o->node.key = o->id;
        atomic_init(&o->reload_at, INT64_MIN);
        atomic_init(&o->version, 1);
        for (int q = 0; q < Q_A_COUNT; q++)
            for (int t = 0; t < Q_MAX_THRESHOLDS; t++)
                atomic_init(&o->alerted[q][t], 0);
        if (!ee__htab_insert(&st->orgs, &o->node)) { /* out of memory */
            free(o);
            o = NULL;
        }
    }
    pthread_mutex_unlock(&st->lock);
    return o;
}

ee_status ee__quota_org_load(q_state *st, q_org *o, int64_t now)
{
    uint64_t gen = atomic_load(&st->gen);
    pthread_mutex_lock(&st->lock);
    bool need = !o->loaded || o->gen_loaded != gen || now >= atomic_load(&o->reload_at);
    pthread_mutex_unlock(&st->lock);
    if (!need)
        return EE_OK;
    /* Read storage without holding the lock; concurrent reloads of one
     * organisation are harmless (the last one stays). */
    q_limits l;
    ee_status rc = ee__quota_resolve(st, o->id, now, &l);
    if (rc != EE_OK)
        return rc;
    pthread_mutex_lock(&st->lock);
    /* Subjects re-copy only when something changed: a periodic re-read
     * that finds the same limits costs them nothing. */
    if (!o->loaded || memcmp(&o->lim, &l, sizeof l) != 0)
        atomic_fetch_add(&o->version, 1);
    o->lim = l;
    o->gen_loaded = gen;
    o->loaded = true;
    atomic_store(&o->reload_at, now + st->file.cache_ms);
    pthread_mutex_unlock(&st->lock);
    return EE_OK;
}

/* The organisation of `principal`, its limits loaded (cached as
 * admission caches them): the preamble of the two lookups below. */
static ee_status org_limits(ee_engine *engine, const ee_principal *principal, const char *what,
                            q_state **st_out, q_org **org_out)
{
    if (engine == NULL || principal == NULL)
        return ee__error(EE_EINVAL, "%s: NULL argument", what);
    q_state *st = ee__quota_state(engine);
    if (st == NULL)
        return ee__error(EE_ESTATE, "the quota module is not open");
    q_org *o = ee__quota_org(st, ee_principal_org(principal));
    if (o == NULL)
        return ee__error(EE_ENOMEM, "out of memory reading an organisation's plan");
    ee_status rc = ee__quota_org_load(st, o, ee_engine_now_ms(engine));
    if (rc != EE_OK)
        return rc;
    *st_out = st;
    *org_out = o;
    return EE_OK;
}

ee_status ee__quota_plan_of(ee_engine *engine, const ee_principal *principal,
                            char out[EE_PRINCIPAL_ID_MAX + 1])
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee__quota_plan_of: NULL argument");
    out[0] = '\0';
    q_state *st = NULL;
    q_org *o = NULL;
    ee_status rc = org_limits(engine, principal, "ee__quota_plan_of", &st, &o);
    if (rc != EE_OK)
        return rc;
    pthread_mutex_lock(&st->lock);
    snprintf(out, EE_PRINCIPAL_ID_MAX + 1, "%s", o->lim.plan);
    pthread_mutex_unlock(&st->lock);
    return EE_OK;
}

ee_status ee__quota_run_budget_max(ee_engine *engine, const ee_principal *principal,
                                   int64_t *out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee__quota_run_budget_max: NULL argument");
    *out = -1;
    q_state *st = NULL;
    q_org *o = NULL;
    ee_status rc = org_limits(engine, principal, "ee__quota_run_budget_max", &st, &o);
    if (rc != EE_OK)
        return rc;
    pthread_mutex_lock(&st->lock);
    *out = o->lim.run_budget_max;
    pthread_mutex_unlock(&st->lock);
    return EE_OK;
}

ee_status ee__quota_spend_cap(ee_engine *engine, const ee_principal *principal, int64_t *out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee__quota_spend_cap: NULL argument");
    *out = -1;
    q_state *st = NULL;
    q_org *o = NULL;
    ee_status rc = org_limits(engine, principal, "ee__quota_spend_cap", &st, &o);
    if (rc != EE_OK)
        return rc;
    pthread_mutex_lock(&st->lock);
    *out = o->lim.limit[Q_L_SPEND];
    pthread_mutex_unlock(&st->lock);
    return EE_OK;
}

static json_t *limits_json(const q_limits *l)
{
    json_t *o = json_object();
    for (int i = 0; o != NULL && i < Q_L_COUNT; i++)
        json_object_set_new(o, limit_field[i], json_integer(l->limit[i]));
    return o;
}

ee_status ee_quota_subscription_put(ee_engine *engine, const char *sub_json, char **out)
{
    if (out != NULL)
        *out = NULL;
    q_state *st;
    json_t *j;
    ee_status s = parse_doc(engine, sub_json, "ee_quota_subscription_put", &st, &j);
    static const char *const members[] = {"orgId", "plan", "planId", "periodStart",
                                          "multipliers", NULL};
    if (s == EE_OK)
        s = ee__json_check_members(j, members, "subscription", "");
    const json_t *org = json_object_get(j, "orgId");
    if (s == EE_OK && (!json_is_string(org) || !ee__id_valid(json_string_value(org))))
        s = ee__error(EE_EINVAL, "subscription: \"orgId\" must be 1..64 characters of "
                                 "[A-Za-z0-9_.:@-]");
    const char *org_id = s == EE_OK ? json_string_value(org) : NULL;
    q_sub sub;
    if (s == EE_OK)
        s = sub_parse(j, &sub, org_id);
    q_plan p;
    const char *source;
    if (s == EE_OK)
        s = plan_find(st, sub.plan, &p, &source);
    json_t *stored = NULL;
    if (s == EE_OK) {
        int64_t now = ee_engine_now_ms(engine);
        if (sub.period_start < 0)
            sub.period_start = now;
        stored = json_pack("{s:s, s:s, s:s, s:I, s:o, s:I, s:I}", "orgId", org_id, "planId",
                           sub.plan, "status", "active", "periodStart",
                           (json_int_t)sub.period_start, "multipliers", mults_json(sub.mult),
                           "createdAt", (json_int_t)now, "updatedAt", (json_int_t)now);
        if (stored == NULL)
            s = ee__error(EE_ENOMEM, "out of memory storing a subscription");
    }
    if (s == EE_OK) /* a malformed stored one is simply replaced */
        s = upsert_doc(ee__engine_storage(engine), &sub_map, "subscriptions", org_id, "orgId",
                       org_id, stored);
    if (s == EE_OK) {
        atomic_fetch_add(&st->gen, 1);
        q_limits l;
        limits_from(st, &p, &sub, &l);
        json_object_set_new(stored, "limits", limits_json(&l));
        audit(engine, EE__AUDIT_QUOTA_SUBSCRIPTION_PUT, org_id, org_id, org_id, sub.plan);
    }
    json_decref(j);
    return put_answer(out, s, stored);
}

ee_status ee_quota_subscription_get(ee_engine *engine, const char *org_id, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_quota_subscription_get: out must not be NULL");
    *out = NULL;
    q_state *st = ee__quota_state(engine);
    ee_status s = st == NULL ? ee__error(EE_EINVAL, "ee_quota_subscription_get: NULL engine")
                             : check_name(org_id, "orgId");
    q_sub sub;
    bool found = false;
    if (s == EE_OK)
        s = sub_find(st, org_id, &sub, &found);
    if (s == EE_OK && !found)
        s = ee__error(EE_ENOTFOUND, "organisation \"%s\" has no subscription (plan \"%s\" "
                                    "applies)", org_id, st->file.default_plan);
    q_plan p;
    const char *source;
    if (s == EE_OK)
        s = plan_find(st, sub.plan, &p, &source);
    if (s != EE_OK)
        return ee__error_out(out, s);
    q_limits l;
    limits_from(st, &p, &sub, &l);
    return ee__json_out(out, json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:s}", "orgId", org_id,
                                       "plan", sub.plan, "status", "active", "periodStart",
                                       (json_int_t)l.period_start, "multipliers",
                                       mults_json(sub.mult), "limits", limits_json(&l),
                                       "period",
                                       l.period == Q_PERIOD_CALENDAR ? "calendarMonth"
                                                                     : "rolling30d"));
}
