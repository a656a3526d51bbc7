/*
 * Threshold alerts: when an organisation's usage of a quota reaches 80 %
 * or 95 % (plans.json "alertThresholdsPercent") of its limit, the engine's
 * callback is called and an audit entry written - once per organisation,
 * quota, threshold and period, however many threads and processes admit at
 * that moment.
 *
 * Once: a marker counter per {org, quota, threshold, period end}, limit 1,
 * living until the period ends. Whoever reserves it announces; everyone
 * else is refused and stays silent. The counters backend makes that exact
 * across processes and hosts. An in-process flag (the period end already
 * handled) spares the marker call on later admissions.
 *
 * The audit entry is the audit log's quota.threshold (lib/audit/audit.h);
 * the callback is called as well, with the same facts.
 */
#include <stdio.h>
#include <string.h>

#include <stdlib.h>

#include "audit/audit.h"
#include "execengine/storage.h"
#include "quota/quota_internal.h"

static const char *const alert_names[Q_A_COUNT] = {"predictions", "storage", "spend"};

/* The quota.threshold entry of the audit log: the engine noticed, on the
 * admission of `s->user`, who is named in the detail. */
static void audit(ee_quota_subject *s, json_t *detail)
{
    json_object_set_new(detail, "userId", json_string(s->user));
    ee__audit_append(s->engine, &(ee__audit_entry){.action = EE__AUDIT_QUOTA_THRESHOLD,
                                                  .workspace = s->ws,
                                                  .org = s->org_id,
                                                  .actor = EE__AUDIT_ACTOR_ENGINE,
                                                  .target_id = s->org_id,
                                                  .outcome = EE__AUDIT_OK,
                                                  .status = EE_OK,
                                                  .detail = detail});
}

void ee__quota_alert(ee_quota_subject *s, int q, int t, int64_t usage, int64_t limit,
                     int64_t period_end, int64_t now)
{
    q_state *st = s->st;
    _Atomic int64_t *flag = &s->org->alerted[q][t];
    if (atomic_load_explicit(flag, memory_order_acquire) == period_end)
        return;
    int64_t pct = st->file.thresholds[t];
    char key[EE_COUNTERS_KEY_MAX + 1];
    snprintf(key, sizeof key, "eeq/alert/%s/%s/%lld/%lld", s->org_id, alert_names[q],
             (long long)pct, (long long)period_end);
    ee_counter_req req = {key, 1, 1, 0, period_end > now ? period_end : 0};
    ee_counter_result res;
    int granted = 0;
    /* Durable counters when the counters are not: a restart must not
     * announce a threshold again (this call is made once per process and
     * threshold, see the flag above). */
    ee_counters *c = ee__quota_lasting(s);
    ee_status rc = ee_counters_reserve(c, &req, 60000, now, &res, &granted);
    if (rc != EE_OK) {
        /* Not knowing whether someone announced, try again on a later
         * admission rather than risk a duplicate now. */
        ee__log(ee__engine_logger(s->engine), EE_LOG_WARN, "quota",
                "threshold marker for organisation \"%s\" unavailable: %s", s->org_id,
                ee_strerror(rc));
        return;
    }
    atomic_store_explicit(flag, period_end, memory_order_release);
    if (!granted)
        return; /* announced by another thread or process */
    ee_counters_commit(c, key, res.resv_id, EE_COUNTERS_ALL, now);
    json_t *detail = json_pack("{s:s, s:I, s:I, s:I, s:I}", "quota", alert_names[q], "threshold",
                               (json_int_t)pct, "usage", (json_int_t)usage, "limit",
                               (json_int_t)limit, "periodEnd", (json_int_t)period_end);
    if (detail == NULL)
        return;
    audit(s, detail);
    pthread_rwlock_rdlock(&st->alert_lock);
    if (st->alert_fn != NULL) {
        json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "orgId", s->org_id,
                              "workspaceId", s->ws, "userId", s->user, "quota", alert_names[q],
                              "threshold", (json_int_t)pct, "usage", (json_int_t)usage,
                              "limit", (json_int_t)limit, "periodEnd", (json_int_t)period_end);
        char *text = a != NULL ? json_dumps(a, JSON_COMPACT) : NULL;
        json_decref(a);
        if (text != NULL) /* after the lock the thread may hold (core.h) */
            ee__hold_call(st->alert_fn, st->alert_payload, text);
        free(text);
    }
    pthread_rwlock_unlock(&st->alert_lock);
    json_decref(detail);
}

void ee__quota_alert_check(ee_quota_subject *s, int q, int64_t value, int64_t limit,
                           int64_t period_end, int64_t now)
{
    if (limit <= 0)
        return;
    for (int t = 0; t < s->st->file.nthresholds; t++)
        if (value * 100 >= limit * s->st->file.thresholds[t]) /* both <= 2^53, pct <= 100 */
            ee__quota_alert(s, q, t, value, limit, period_end, now);
}
