/*
 * The JSON face of the quota module: admission and finish as documents,
 * seed 2's usage and check answers, and the storage quota.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota/quota_internal.h"

static ee_status subject_for(ee_engine *engine, const ee_principal *principal,
                             ee_quota_subject **out, const char *what)
{
    *out = NULL;
    if (engine == NULL || principal == NULL)
        return ee__error(EE_EINVAL, "%s: engine and principal must not be NULL", what);
    return ee_quota_subject_new(out, engine, principal);
}

/* The start of a call that answers JSON in *out: out is checked and
 * cleared, then the principal's subject read. */
static ee_status answer_subject(ee_engine *engine, const ee_principal *principal, char **out,
                                ee_quota_subject **s, const char *what)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "%s: out must not be NULL", what);
    *out = NULL;
    return subject_for(engine, principal, s, what);
}

static json_t *money(int64_t nano)
{
    char buf[32];
    ee__decimal_format(nano, 9, buf);
    return json_pack("{s:I, s:s}", "nanoUsd", (json_int_t)nano, "usd", buf);
}

/* ---- admission ---------------------------------------------------------------------- */

static json_t *refusal_detail(const ee__quota_refusal *r)
{
    json_t *d = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I}", "allowed", 0, "quota",
                          r->quota != NULL ? r->quota : "", "usage", (json_int_t)r->usage,
                          "limit", (json_int_t)r->limit, "remaining", (json_int_t)r->remaining,
                          "resetsAt", (json_int_t)r->resets_at_ms, "retryAfterMs",
                          (json_int_t)r->retry_after_ms);
    if (d != NULL && r->quota != NULL && strcmp(r->quota, "predictions") == 0)
        json_object_set_new(d, "error", json_string("Predictions limit exceeded"));
    return d;
}

ee_status ee_quota_admit(ee_engine *engine, const ee_principal *principal,
                         const char *request_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_quota_admit: out must not be NULL");
    *out = NULL;
    int64_t est = 0;
    if (request_json != NULL) {
        static const char *const members[] = {"estimatedCostNanoUsd", NULL};
        json_t *req;
        ee_status pst = ee__json_parse(request_json, Q_REQUEST_JSON_MAX, 8, EE__JSON_EXACT_NUMBERS,
                                       "ee_quota_admit request", &req);
        if (pst != EE_OK)
            return ee__error_out(out, pst);
        if (!json_is_object(req)) {
            json_decref(req);
            return ee__error_out(out, ee__error(EE_EPARSE, "ee_quota_admit: the request must be "
                                                           "{\"estimatedCostNanoUsd\": n >= 0}"));
        }
        pst = ee__json_check_members(req, members, "ee_quota_admit request", "");
        json_t *e = json_object_get(req, "estimatedCostNanoUsd");
        if (pst == EE_OK && e != NULL &&
            (!json_is_integer(e) || json_integer_value(e) < 0 ||
             json_integer_value(e) > EE_COUNTERS_VALUE_MAX))
            pst = ee__error(EE_EINVAL, "ee_quota_admit request: \"estimatedCostNanoUsd\" (at "
                                       "/estimatedCostNanoUsd) must be an integer 0..2^53-1");
        if (pst == EE_OK && e != NULL)
            est = (int64_t)json_integer_value(e);
        json_decref(req);
        if (pst != EE_OK)
            return ee__error_out(out, pst);
    }
    if (engine == NULL || principal == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_quota_admit: engine and principal "
                                                       "must not be NULL"));
    ee_quota_ticket ticket;
    ee__quota_refusal refusal;
    ee__quota_usage use;
    ee_status st = ee__quota_admit(engine, principal, est, &ticket, &refusal, &use);
    if (st != EE_OK) {
        json_t *detail = refusal.quota != NULL ? refusal_detail(&refusal) : NULL;
        if (detail != NULL) {
            char msg[EE__ERROR_MSG_MAX];
            snprintf(msg, sizeof msg, "%s", ee_error_last_message());
            ee__error_full(st, 0, detail, "%s", msg);
        }
        return ee__error_out(out, st);
    }
    char *tj = NULL;
    st = ee_quota_ticket_json(&ticket, &tj);
    json_t *tdoc = st == EE_OK ? json_loads(tj, 0, NULL) : NULL;
    ee_free(tj);
    json_t *pred = json_pack("{s:I, s:I, s:I, s:I}", "usage", (json_int_t)use.usage, "limit",
                             (json_int_t)use.limit, "remaining", (json_int_t)use.remaining,
                             "resetsAt", (json_int_t)use.resets_at_ms);
    if (tdoc == NULL) {
        json_decref(pred);
        ee_quota_finish(engine, &ticket, 0, 0); /* give it back: the caller cannot */
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory answering an admission"));
    }
    return ee__json_out(out, json_pack("{s:b, s:o, s:o}", "allowed", 1, "ticket", tdoc,
                                       "predictions", pred));
}

ee_status ee_quota_finish_json(ee_engine *engine, const char *ticket_json, int success,
                               int64_t actual_cost_nano)
{
    ee_quota_ticket t;
    ee_status st = ee_quota_ticket_from_json(ticket_json, &t);
    if (st != EE_OK)
        return st;
    return ee_quota_finish(engine, &t, success, actual_cost_nano);
}

/* ---- usage and check --------------------------------------------------------------------- */

static ee_status read_counter(ee_quota_subject *s, const char *key, int64_t now,
                              ee_counter_result *r)
{
    memset(r, 0, sizeof *r);
    return ee_counters_get(s->counters, key, now, r);
}

static json_t *usage_doc(ee_quota_subject *s, int64_t now, ee_status *st)
{
    ee_counter_result pred, sto, spend, rate, conc;
    char skey[EE_COUNTERS_KEY_MAX + 1];
    ee__quota_key(skey, sizeof skey, "storage", s->org_id);
    if ((*st = read_counter(s, s->key[Q_R_PRED], now, &pred)) != EE_OK ||
        (*st = ee_counters_get(ee__quota_lasting(s), skey, now, &sto)) != EE_OK ||
        (*st = read_counter(s, s->key[Q_R_SPEND], now, &spend)) != EE_OK ||
        (*st = read_counter(s, s->key[Q_R_RATE], now, &rate)) != EE_OK ||
        (*st = read_counter(s, s->key[Q_R_CONC], now, &conc)) != EE_OK)
        return NULL;
    const int64_t *l = s->lim.limit;
    json_t *doc = json_pack(
        "{s:s, s:s, s:{s:I, s:I, s:I}, s:{s:I, s:I}, s:{s:o, s:o, s:I}, s:{s:I, s:I, s:I},"
        " s:{s:I, s:I}}",
        "orgId", s->org_id, "plan", s->lim.plan, "predictions", "usage", (json_int_t)pred.value,
        "limit", (json_int_t)l[Q_L_PRED], "resetsAt", (json_int_t)s->period_end, "storage",
        "usage", (json_int_t)sto.value, "limit", (json_int_t)l[Q_L_STORAGE], "spend", "usage",
        money(spend.value), "limit", l[Q_L_SPEND] < 0 ? json_integer(-1) : money(l[Q_L_SPEND]),
        "resetsAt", (json_int_t)s->spend_end, "rate", "usage", (json_int_t)rate.value, "limit",
        (json_int_t)l[Q_L_RATE], "windowMs", (json_int_t)Q_HOUR_MS, "concurrency", "usage",
        (json_int_t)conc.value, "limit", (json_int_t)l[Q_L_CONC]);
    if (doc == NULL)
        *st = ee__error(EE_ENOMEM, "out of memory answering a usage request");
    return doc;
}

ee_status ee_quota_usage(ee_engine *engine, const ee_principal *principal, char **out)
{
    ee_quota_subject *s;
    ee_status st = answer_subject(engine, principal, out, &s, "ee_quota_usage");
    if (st != EE_OK)
        return ee__error_out(out, st);
    json_t *doc = usage_doc(s, ee_engine_now_ms(engine), &st);
    ee_quota_subject_free(s);
    if (doc == NULL)
        return ee__error_out(out, st);
    return ee__json_out(out, doc);
}

ee_status ee_quota_check(ee_engine *engine, const ee_principal *principal, char **out)
{
    ee_quota_subject *s;
    ee_status st = answer_subject(engine, principal, out, &s, "ee_quota_check");
    if (st != EE_OK)
        return ee__error_out(out, st);
    int64_t now = ee_engine_now_ms(engine);
    ee_counter_result r;
    st = read_counter(s, s->key[Q_R_PRED], now, &r);
    int64_t limit = s->lim.limit[Q_L_PRED], end = s->period_end;
    ee_quota_subject_free(s);
    if (st != EE_OK)
        return ee__error_out(out, st);
    bool allowed = limit < 0 || r.value < limit;
    json_t *doc = json_pack("{s:b, s:I, s:I, s:I, s:I}", "allowed", allowed, "usage",
                            (json_int_t)r.value, "limit", (json_int_t)limit, "remaining",
                            (json_int_t)(limit < 0 ? -1 : (allowed ? limit - r.value : 0)),
                            "resetsAt", (json_int_t)end);
    if (doc != NULL && !allowed)
        json_object_set_new(doc, "error", json_string("Predictions limit exceeded"));
    return ee__json_out(out, doc);
}

/* ---- storage quota -------------------------------------------------------------------------- *
 * Stored bytes are reservations that never expire (a lease to the end of
 * time) on a counter without a window: deleting an output releases its
 * reservation, which a committed value could not do. They live in the
 * durable counters when the counters are not durable (memory counters over
 * a database): they must outlive the process, and these calls are rare. */

static int64_t forever(int64_t now)
{
    return EE_COUNTERS_TIME_MAX - now;
}

static ee_status storage_reserve(ee_quota_subject *s, int64_t bytes, int64_t limit,
                                 uint64_t *id_out, int64_t now, ee__quota_refusal *refusal)
{
    char key[EE_COUNTERS_KEY_MAX + 1];
    ee__quota_key(key, sizeof key, "storage", s->org_id);
    ee_counter_req q = {key, bytes, limit, 0, 0};
    ee_counter_result r;
    int g = 0;
    ee_status st = ee_counters_reserve(ee__quota_lasting(s), &q, forever(now), now, &r, &g);
    if (st != EE_OK)
        return st;
    if (!g) {
        if (refusal != NULL) {
            int64_t lim = s->lim.limit[Q_L_STORAGE];
            *refusal = (ee__quota_refusal){
                .status = EE_EQUOTA, .quota = "storage", .usage = r.value, .limit = lim,
                .remaining = lim < 0 ? -1 : (lim > r.value ? lim - r.value : 0),
                .requested = bytes};
        }
        json_t *d = json_pack("{s:b, s:s, s:I, s:I, s:I}", "allowed", 0, "quota", "storage",
                              "usage", (json_int_t)r.value, "limit",
                              (json_int_t)s->lim.limit[Q_L_STORAGE], "requested",
                              (json_int_t)bytes);
        return ee__error_full(EE_EQUOTA, 0, d, "storage quota of organisation \"%s\" exceeded: "
                                               "%lld of %lld bytes used, %lld more requested",
                              s->org_id, (long long)r.value,
                              (long long)s->lim.limit[Q_L_STORAGE], (long long)bytes);
    }
    *id_out = r.resv_id;
    int64_t from, to;
    ee__quota_month((int)s->st->billing_day, now, &from, &to);
    if (s->lim.limit[Q_L_STORAGE] > 0)
        ee__quota_alert_check(s, Q_A_STORAGE, r.value, s->lim.limit[Q_L_STORAGE], to, now);
    return EE_OK;
}

ee_status ee_quota_storage_reserve(ee_engine *engine, const ee_principal *principal,
                                   int64_t bytes, uint64_t *resv_id_out)
{
    return ee__quota_storage_reserve(engine, principal, bytes, resv_id_out, NULL);
}

ee_status ee__quota_storage_reserve(ee_engine *engine, const ee_principal *principal,
                                    int64_t bytes, uint64_t *resv_id_out,
                                    ee__quota_refusal *refusal)
{
    if (refusal != NULL)
        memset(refusal, 0, sizeof *refusal);
    if (resv_id_out == NULL || bytes <= 0 || bytes > EE_COUNTERS_VALUE_MAX)
        return ee__error(EE_EINVAL, "ee_quota_storage_reserve: bytes must be 1..2^53-1 and "
                                    "resv_id_out not NULL");
    *resv_id_out = 0;
    ee_quota_subject *s;
    ee_status st = subject_for(engine, principal, &s, "ee_quota_storage_reserve");
    if (st != EE_OK)
        return st;
    int64_t limit = s->lim.limit[Q_L_STORAGE];
    st = storage_reserve(s, bytes, limit < 0 ? EE_COUNTERS_VALUE_MAX : limit, resv_id_out,
                         ee_engine_now_ms(engine), refusal);
    ee_quota_subject_free(s);
    return st;
}

ee_status ee_quota_storage_commit(ee_engine *engine, const ee_principal *principal,
                                  uint64_t resv_id, int64_t reserved_bytes, int64_t actual_bytes,
                                  uint64_t *resv_id_out)
{
    if (resv_id_out == NULL || actual_bytes <= 0 || actual_bytes > reserved_bytes)
        return ee__error(EE_EINVAL, "ee_quota_storage_commit: actual bytes must be 1..the "
                                    "reserved %lld (release instead of committing 0)",
                         (long long)reserved_bytes);
    *resv_id_out = 0;
    ee_quota_subject *s;
    ee_status st = subject_for(engine, principal, &s, "ee_quota_storage_commit");
    if (st != EE_OK)
        return st;
    int64_t now = ee_engine_now_ms(engine);
    char key[EE_COUNTERS_KEY_MAX + 1];
    ee__quota_key(key, sizeof key, "storage", s->org_id);
    ee_counters *c = ee__quota_lasting(s);
    if (actual_bytes == reserved_bytes) {
        /* Nothing to shrink, but the reservation must exist: renewing it to
         * the end of time (where its lease already is) says whether it does
         * and changes nothing. */
        st = ee_counters_renew(c, key, resv_id, forever(now), now);
        if (st == EE_OK)
            *resv_id_out = resv_id;
    } else {
        st = ee_counters_release(c, key, resv_id, now);
        /* Smaller than what was already granted: it fits whatever the limit. */
        if (st == EE_OK)
            st = storage_reserve(s, actual_bytes, EE_COUNTERS_VALUE_MAX, resv_id_out, now,
                                 NULL);
    }
    ee_quota_subject_free(s);
    return st;
}

ee_status ee_quota_storage_release(ee_engine *engine, const ee_principal *principal,
                                   uint64_t resv_id)
{
    if (engine == NULL || principal == NULL)
        return ee__error(EE_EINVAL, "ee_quota_storage_release: NULL argument");
    const char *org = ee_principal_org(principal);
    char key[EE_COUNTERS_KEY_MAX + 1];
    ee__quota_key(key, sizeof key, "storage",
                  org[0] != '\0' ? org : ee_principal_workspace(principal));
    ee_counters *c = ee__engine_counters(engine);
    ee_counters *d = ee__counters_durable(c);
    return ee_counters_release(d != NULL ? d : c, key, resv_id, ee_engine_now_ms(engine));
}
