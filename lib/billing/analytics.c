/* Admin analytics (ee_billing_analytics): one bounded walk over the
 * workspace's executions of a range (exec.h), plus the current month's
 * spend from its billing record and the plan's spend cap from the quota. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing_internal.h"
#include "core/record.h"
#include "exec/exec.h"
#include "execengine/billing.h"

#define B_DAY_MS INT64_C(86400000)
#define B_ANALYTICS_RANGE_MAX (366 * B_DAY_MS)
#define B_ANALYTICS_READ_MAX 200000
/* 9999-12-31T23:59:59.999Z: the last instant the answer's ISO dates can
 * name; bounding "from" and "to" to 0..this also keeps their difference
 * and "to" - 30 days inside int64. */
#define B_TIME_MAX INT64_C(253402300799999)
#define B_TOP 10

typedef enum { G_DAY, G_WEEK, G_MONTH } b_gran;

typedef struct {
    const b_state *st;
    b_gran gran;
    json_t *buckets;   /* start ms (decimal text) -> count */
    json_t *users;     /* set */
    json_t *workflows; /* id -> count */
    int64_t total, ended, completed, ms_sum, email_req, email_sent;
} b_walk;

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int64_t bucket_of(const b_walk *w, int64_t t)
{
    if (w->gran == G_DAY)
        return floor_div(t, B_DAY_MS) * B_DAY_MS;
    if (w->gran == G_WEEK) /* 1970-01-01 was a Thursday: Mondays are day 4 + 7k */
        return (floor_div(floor_div(t, B_DAY_MS) - 4, 7) * 7 + 4) * B_DAY_MS;
    int64_t from, to;
    ee__quota_month(w->st->billing_day, t, &from, &to);
    return from;
}

static int count_in(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_object_set_new(obj, key, json_integer(v != NULL ? json_integer_value(v) + 1 : 1));
}

static int walk_fact(const ee__exec_fact *f, void *payload)
{
    b_walk *w = payload;
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)bucket_of(w, f->created_at));
    if (count_in(w->buckets, key) != 0 || count_in(w->workflows, f->workflow_id) != 0 ||
        json_object_set_new(w->users, f->user_id, json_true()) != 0)
        return 1;
    w->total++;
    w->ended += f->ended;
    if (f->completed) {
        w->completed++;
        w->ms_sum += f->exec_ms;
    }
    w->email_req += f->email_requested;
    w->email_sent += f->email_sent;
    return 0;
}

static int cmp_bucket(const void *a, const void *b)
{
    int64_t x = json_integer_value(json_object_get(*(json_t *const *)a, "t"));
    int64_t y = json_integer_value(json_object_get(*(json_t *const *)b, "t"));
    return x < y ? -1 : x > y;
}

static int cmp_top(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int64_t nx = json_integer_value(json_object_get(x, "executions"));
    int64_t ny = json_integer_value(json_object_get(y, "executions"));
    if (nx != ny)
        return nx > ny ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x, "workflowId")),
                  json_string_value(json_object_get(y, "workflowId")));
}

/* An array of the object's members, each made by `make`, sorted. */
static json_t *sorted(json_t *obj, json_t *(*make)(const char *, const json_t *),
                      int (*cmp)(const void *, const void *))
{
    size_t n = json_object_size(obj), i = 0;
    json_t **v = calloc(n != 0 ? n : 1, sizeof *v);
    json_t *arr = json_array();
    if (v == NULL || arr == NULL) {
        free(v);
        json_decref(arr);
        return NULL;
    }
    const char *k;
    json_t *val;
    json_object_foreach(obj, k, val) v[i++] = make(k, val);
    qsort(v, n, sizeof *v, cmp);
    for (i = 0; i < n; i++)
        json_array_append_new(arr, v[i]);
    free(v);
    return arr;
}

static json_t *make_bucket(const char *k, const json_t *v)
{
    return json_pack("{s:I, s:I}", "t", (json_int_t)strtoll(k, NULL, 10), "count",
                     json_integer_value(v));
}

static json_t *make_top(const char *k, const json_t *v)
{
    return json_pack("{s:s, s:I}", "workflowId", k, "executions", json_integer_value(v));
}

/* A ratio as decimal text with 4 places, rounded half up; null when d is 0. */
static json_t *ratio(int64_t n, int64_t d)
{
    if (d <= 0)
        return json_null();
    /* n <= d: completed runs are ended ones, sent e-mails requested ones
     * (lib/exec/exec.h); d <= B_ANALYTICS_READ_MAX: n x 20000 fits */
    int64_t r = (n * 20000 / d + 1) / 2;
    char buf[32];
    snprintf(buf, sizeof buf, "%lld.%04lld", (long long)(r / 10000), (long long)(r % 10000));
    return json_string(buf);
}

static json_t *spend_of(b_state *st, const ee_principal *principal)
{
    char name[EE__QUOTA_MONTH_NAME_SIZE];
    ee__quota_month_name(st->billing_day, ee_engine_now_ms(st->engine), name);
    b_month m;
    if (ee__billing_month_load(ee__engine_storage(st->engine),
                               ee_principal_workspace(principal), name, &m) != EE_OK)
        return NULL;
    if (!m.exists)
        ee__billing_month_init(st, ee_principal_workspace(principal), name,
                               ee_engine_now_ms(st->engine), &m);
    json_t *doc = json_pack("{s:s, s:I, s:I, s:I}", "month", name, "allowance",
                            (json_int_t)m.allowance, "allowanceUsed",
                            (json_int_t)m.allowance_used, "charged", (json_int_t)m.charged);
    ee__billing_month_clear(&m);
    /* the plan and its monthly spend cap in nano-USD (null: the plan has
     * none); both null if the quota cannot say (no plans file, a bad
     * subscription): analytics answer without them */
    char plan[EE_PRINCIPAL_ID_MAX + 1];
    int64_t cap = -1;
    ee_status q = ee__quota_plan_of(st->engine, principal, plan);
    if (q == EE_OK)
        q = ee__quota_spend_cap(st->engine, principal, &cap);
    if (q != EE_OK)
        ee_error_clear();
    json_object_set_new(doc, "plan", q == EE_OK ? json_string(plan) : json_null());
    json_object_set_new(doc, "spendCap", q == EE_OK && cap >= 0 ? json_integer(cap) : json_null());
    return doc;
}

ee_status ee_billing_analytics(ee_engine *engine, const ee_principal *principal,
                               const char *query_json, char **out)
{
    static const char *const members[] = {"from", "to", "granularity", NULL};
    const char *what = "billing analytics query";
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_billing_analytics: out must not be NULL");
    *out = NULL;
    b_state *st = ee__billing_state(engine);
    if (st == NULL || principal == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_billing_analytics: engine and "
                                                       "principal must not be NULL"));
    json_t *q = NULL;
    ee_status s = ee__record_parse(query_json != NULL ? query_json : "{}", 64 * 1024, 8, 0, what,
                                   &q);
    if (s == EE_OK)
        s = ee__json_check_members(q, members, what, "");
    int64_t now = ee_engine_now_ms(engine), to = now, from = now - 30 * B_DAY_MS;
    json_t *jf = json_object_get(q, "from"), *jt = json_object_get(q, "to");
    if (s == EE_OK && ((jf != NULL && !json_is_integer(jf)) || (jt != NULL && !json_is_integer(jt))))
        s = ee__error(EE_EINVAL, "%s: \"from\" and \"to\" must be integers (ms since the epoch)",
                      what);
    for (int i = 0; s == EE_OK && i < 2; i++) {
        json_t *v = i == 0 ? jf : jt;
        if (v != NULL && (json_integer_value(v) < 0 || json_integer_value(v) > B_TIME_MAX))
            s = ee__error(EE_EINVAL, "%s: \"%s\" (at /%s) must be ms since the epoch, 0..%lld "
                          "(9999-12-31)", what, i == 0 ? "from" : "to", i == 0 ? "from" : "to",
                          (long long)B_TIME_MAX);
    }
    if (s == EE_OK) {
        if (jt != NULL)
            to = (int64_t)json_integer_value(jt);
        from = jf != NULL ? (int64_t)json_integer_value(jf) : to - 30 * B_DAY_MS;
        if (from >= to || to - from > B_ANALYTICS_RANGE_MAX)
            s = ee__error(EE_EINVAL, "%s: the range must be non-empty and at most 366 days",
                          what);
    }
    b_gran gran = G_DAY;
    const char *g = json_string_value(json_object_get(q, "granularity"));
    if (s == EE_OK && json_object_get(q, "granularity") != NULL) {
        if (g != NULL && strcmp(g, "day") == 0)
            gran = G_DAY;
        else if (g != NULL && strcmp(g, "week") == 0)
            gran = G_WEEK;
        else if (g != NULL && strcmp(g, "month") == 0)
            gran = G_MONTH;
        else
            s = ee__error(EE_EINVAL, "%s: \"granularity\" (at /granularity) must be day, week "
                          "or month", what);
    }
    json_decref(q);
    if (s != EE_OK)
        return ee__error_out(out, s);
    b_walk w = {st, gran, json_object(), json_object(), json_object(), 0, 0, 0, 0, 0, 0};
    s = ee__exec_walk(engine, ee_principal_workspace(principal), from, to, B_ANALYTICS_READ_MAX,
                      walk_fact, &w);
    json_t *doc = NULL;
    if (s == EE_OK) {
        json_t *buckets = sorted(w.buckets, make_bucket, cmp_bucket);
        for (size_t i = 0; i < json_array_size(buckets); i++) {
            json_t *b = json_array_get(buckets, i);
            char iso[32];
            ee__time_iso((int64_t)json_integer_value(json_object_get(b, "t")), iso);
            json_object_del(b, "t");
            json_object_set_new(b, "start", json_string(iso));
        }
        json_t *top = sorted(w.workflows, make_top, cmp_top);
        while (json_array_size(top) > B_TOP)
            json_array_remove(top, json_array_size(top) - 1);
        char fi[32], ti[32];
        ee__time_iso(from, fi);
        ee__time_iso(to, ti);
        static const char *const gnames[] = {"day", "week", "month"};
        doc = json_pack("{s:s, s:s, s:s, s:o, s:I, s:I, s:o, s:o, s:o, s:{s:I, s:I, s:o}, s:o}",
                        "from", fi, "to", ti, "granularity", gnames[gran], "executions",
                        buckets != NULL ? buckets : json_array(), "totalExecutions",
                        (json_int_t)w.total, "uniqueUsers",
                        (json_int_t)json_object_size(w.users), "successRate",
                        ratio(w.completed, w.ended), "averageExecutionTimeMs",
                        w.completed > 0 ? json_integer(w.ms_sum / w.completed) : json_null(),
                        "topWorkflows", top != NULL ? top : json_array(), "email", "requested",
                        (json_int_t)w.email_req, "sent", (json_int_t)w.email_sent,
                        "deliveryRate", ratio(w.email_sent, w.email_req), "spend",
                        spend_of(st, principal) ?: json_null());
        if (doc == NULL)
            s = ee__error(EE_ENOMEM, "out of memory building analytics");
    }
    json_decref(w.buckets);
    json_decref(w.users);
    json_decref(w.workflows);
    if (s != EE_OK)
        return ee__error_out(out, s);
    return ee__json_out(out, doc);
}
