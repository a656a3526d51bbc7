/*
 * Admission: subjects (a principal's keys and cached limits), the one
 * reserve_many decision, finishing, renewing, and the ticket's JSON form.
 *
 * The hot path (ee_quota_admit_fast) reads the engine's clock, checks that
 * the subject's cached limits are still fresh (a few relaxed loads), sets
 * the spend amount, makes ONE reservation of the subject's prepared
 * request set (counters/counters.h: checked when the limits were resolved,
 * straight to the backend on the built-in ones) and copies the ticket's
 * prebuilt constant part: no JSON, no allocation, no lock of ours.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quota/quota_internal.h"

static const char *const res_names[Q_R_COUNT] = {"predictions", "rate", "concurrency",
                                                 "concurrencyGlobal", "spend"};

/* Key prefix of each reservation kind (Q_R_*), and whether the key ends in
 * the organisation's id (the others end in a user's or workspace's id, or,
 * for the platform-wide slot, in nothing). */
static const char *const res_prefix[Q_R_COUNT] = {"eeq/pred/", "eeq/rate/", "eeq/conc/",
                                                  "eeq/conc-all", "eeq/spend/"};

const char *ee__quota_res_name(int kind)
{
    return kind >= 0 && kind < Q_R_COUNT ? res_names[kind] : "unknown";
}

void ee__quota_key(char *out, size_t cap, const char *what, const char *id)
{
    if (id == NULL)
        snprintf(out, cap, "eeq/%s", what);
    else
        snprintf(out, cap, "eeq/%s/%s", what, id);
}

/* ---- subjects ------------------------------------------------------------------------ */

ee_status ee__quota_subject_init(ee_quota_subject *s, ee_engine *engine, const char *ws,
                                 const char *user, const char *org)
{
    memset(s, 0, sizeof *s);
    s->engine = engine;
    s->st = ee__quota_state(engine);
    s->counters = ee__engine_counters(engine);
    if (s->st == NULL || s->counters == NULL)
        return ee__error(EE_EINVAL, "quota: the engine has no quota module or counters");
    s->durable = ee__counters_durable(s->counters);
    /* Shared counters (redis) are never seeded per engine: they hold every
     * process's usage, and rebuild themselves after a loss. */
    s->seed = s->durable != NULL && !ee__counters_shared(s->counters);
    ee__counters_set_recovery(s->counters, s->st->file.run_lease_ms);
    snprintf(s->ws, sizeof s->ws, "%s", ws);
    snprintf(s->user, sizeof s->user, "%s", user);
    snprintf(s->org_id, sizeof s->org_id, "%s", org != NULL && org[0] != '\0' ? org : ws);
    ee__quota_key(s->key[Q_R_PRED], sizeof s->key[0], "pred", s->org_id);
    ee__quota_key(s->key[Q_R_RATE], sizeof s->key[0], "rate", s->user);
    ee__quota_key(s->key[Q_R_CONC], sizeof s->key[0], "conc", s->ws);
    ee__quota_key(s->key[Q_R_GCONC], sizeof s->key[0], "conc-all", NULL);
    ee__quota_key(s->key[Q_R_SPEND], sizeof s->key[0], "spend", s->org_id);
    /* Every key an admission may reserve on, resolved once: each set of
     * limits picks its requests among them (build). */
    const char *keys[Q_R_COUNT];
    for (int k = 0; k < Q_R_COUNT; k++)
        keys[k] = s->key[k];
    ee_status st = ee__counters_prepared_init(&s->prep, s->counters, keys, Q_R_COUNT);
    if (st != EE_OK)
        return st;
    s->org = ee__quota_org(s->st, s->org_id);
    if (s->org == NULL)
        return ee__error(EE_ENOMEM, "out of memory resolving organisation \"%s\"", s->org_id);
    s->valid_from = INT64_MAX; /* stale until the first refresh */
    s->valid_until = INT64_MIN;
    return ee__quota_subject_refresh(s, ee_engine_now_ms(engine));
}

static int64_t threshold_value(int64_t limit, int64_t pct)
{
    if (limit <= 0)
        return INT64_MAX;
    return (limit * pct + 99) / 100; /* limit <= 2^53, pct <= 100: no overflow */
}

/* Prebuild the counter requests (set on the prepared reservation, which
 * checks them) and the ticket's constant part, once here for every
 * admission until the limits are resolved again. */
static ee_status build(ee_quota_subject *s, int64_t now)
{
    const q_limits *l = &s->lim;
    size_t n = 0;
    q_ticket *t = &s->tmpl;
    memset(t, 0, sizeof *t);
    size_t koff = 0;
    int order[Q_R_COUNT];
    int64_t limits[Q_R_COUNT];
    int64_t ends[Q_R_COUNT] = {0};
    order[n] = Q_R_PRED;
    limits[n] = l->limit[Q_L_PRED] < 0 ? EE_COUNTERS_VALUE_MAX : l->limit[Q_L_PRED];
    ends[n++] = s->period_end;
    if (l->limit[Q_L_RATE] >= 0) {
        order[n] = Q_R_RATE;
        limits[n++] = l->limit[Q_L_RATE];
    }
    if (l->limit[Q_L_CONC] >= 0) {
        order[n] = Q_R_CONC;
        limits[n++] = l->limit[Q_L_CONC];
    }
    if (l->gconc >= 0) {
        order[n] = Q_R_GCONC;
        limits[n++] = l->gconc;
    }
    s->nreq = n;
    if (l->limit[Q_L_SPEND] >= 0) {
        order[n] = Q_R_SPEND;
        limits[n] = l->limit[Q_L_SPEND];
        ends[n++] = s->spend_end;
    }
    int64_t leases[Q_R_COUNT];
    for (size_t i = 0; i < n; i++) {
        int k = order[i];
        s->kinds[i] = k;
        s->reqs[i] = (ee_counter_req){s->key[k], 1, limits[i], 0, ends[i]};
        /* The rate unit lives exactly the sliding window; the others as
         * long as a run may (renewed by ee_quota_renew). */
        leases[i] = k == Q_R_RATE ? Q_HOUR_MS : s->st->file.run_lease_ms;
        size_t len = strlen(s->key[k]);
        t->res[i].kind = (uint8_t)k;
        t->res[i].keylen = (uint8_t)len;
        t->res[i].keyoff = (uint16_t)koff;
        memcpy(t->keys + koff, s->key[k], len + 1);
        koff += len + 1;
    }
    s->pred_idx = 0;
    t->magic = Q_TICKET_MAGIC;
    t->state = Q_T_ADMITTED;
    t->failed_consume = l->failed_consume;
    t->lease_ms = s->st->file.run_lease_ms;
    t->period_end = s->period_end;
    t->spend_end = s->spend_end;
    s->tmpl_len = offsetof(q_ticket, keys) + koff;
    for (int i = 0; i < s->st->file.nthresholds; i++) {
        s->alert_at[i] = threshold_value(l->limit[Q_L_PRED], s->st->file.thresholds[i]);
        s->spend_alert_at[i] = threshold_value(l->limit[Q_L_SPEND], s->st->file.thresholds[i]);
    }
    for (int i = s->st->file.nthresholds; i < Q_MAX_THRESHOLDS; i++)
        s->alert_at[i] = s->spend_alert_at[i] = INT64_MAX;
    return ee__counters_prepared_set(&s->prep, s->reqs, leases, n, now);
}

/* Period usage of an organisation that earlier engines committed, read
 * back from the durable counters into counters that are not durable (a
 * reopened engine with memory counters): each key's committed value in its
 * current window, added as one committed reservation with that window.
 * Done once per organisation and engine, under the module lock, before any
 * subject of the organisation admits: nothing can be admitted against the
 * counters before they hold what was committed. */
static ee_status seed_usage(ee_quota_subject *s, int64_t now)
{
    static const int kinds[] = {Q_R_PRED, Q_R_SPEND};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *key = s->key[kinds[i]];
        ee_counter_result r;
        ee_status st = ee_counters_get(s->durable, key, now, &r);
        if (st != EE_OK)
            return st;
        if (r.committed <= 0)
            continue;
        ee_counter_req q = {key, r.committed, EE_COUNTERS_VALUE_MAX, 0, r.window_end_ms};
        ee_counter_result g;
        int granted = 0;
        st = ee_counters_reserve(s->counters, &q, 60000, now, &g, &granted);
        if (st == EE_OK && !granted)
            st = ee__error(EE_EIO, "quota: cannot read back the usage of \"%s\"", key);
        if (st == EE_OK)
            st = ee_counters_commit(s->counters, key, g.resv_id, EE_COUNTERS_ALL, now);
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

ee_status ee__quota_subject_refresh(ee_quota_subject *s, int64_t now)
{
    q_state *st = s->st;
    q_org *o = s->org;
    if (s->seed) {
        ee__hold_begin(); /* counters calls under the lock: a log line waits */
        pthread_mutex_lock(&st->lock);
        ee_status rc = o->seeded ? EE_OK : seed_usage(s, now);
        o->seeded = rc == EE_OK;
        pthread_mutex_unlock(&st->lock);
        ee__hold_end();
        if (rc != EE_OK)
            return rc; /* stays stale: the next admission tries again */
    }
    ee_status lrc = ee__quota_org_load(st, o, now);
    if (lrc != EE_OK)
        return lrc;
    pthread_mutex_lock(&st->lock);
    s->lim = o->lim;
    s->gen = o->gen_loaded;
    s->org_version = atomic_load(&o->version);
    pthread_mutex_unlock(&st->lock);
    int64_t from, to, mfrom, mto;
    ee__quota_period(s->lim.period, s->lim.period_start, (int)st->billing_day, now, &from, &to);
    ee__quota_month((int)st->billing_day, now, &mfrom, &mto);
    s->period_end = to;
    s->spend_end = mto;
    s->valid_from = from > mfrom ? from : mfrom;
    s->valid_until = to < mto ? to : mto;
    ee_status rc = build(s, now);
    if (rc != EE_OK)
        s->valid_until = INT64_MIN; /* stays stale: the next admission tries again */
    return rc;
}

ee_status ee_quota_subject_new(ee_quota_subject **out, ee_engine *engine,
                               const ee_principal *principal)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_quota_subject_new: out must not be NULL");
    *out = NULL;
    if (engine == NULL || principal == NULL)
        return ee__error(EE_EINVAL, "ee_quota_subject_new: engine and principal must not be "
                                    "NULL");
    ee_quota_subject *s = aligned_alloc(64, (sizeof *s + 63) & ~(size_t)63);
    if (s == NULL)
        return ee__error(EE_ENOMEM, "out of memory creating a quota subject");
    ee_status st = ee__quota_subject_init(s, engine, ee_principal_workspace(principal),
                                          ee_principal_user(principal),
                                          ee_principal_org(principal));
    if (st != EE_OK) {
        free(s);
        return st;
    }
    *out = s;
    return EE_OK;
}

void ee_quota_subject_free(ee_quota_subject *subject)
{
    free(subject);
}

/* ---- admission -------------------------------------------------------------------------- */

/* Which refusal to report, most lasting first: waiting a minute does not
 * help an exhausted quota. */
static const int refusal_order[Q_R_COUNT] = {Q_R_PRED, Q_R_SPEND, Q_R_RATE, Q_R_CONC,
                                             Q_R_GCONC};
static const ee_status refusal_status[Q_R_COUNT] = {
    [Q_R_PRED] = EE_EQUOTA, [Q_R_RATE] = EE_ERATELIMIT, [Q_R_CONC] = EE_ECONCURRENCY,
    [Q_R_GCONC] = EE_ECONCURRENCY, [Q_R_SPEND] = EE_ESPEND};

static ee_status refuse(ee_quota_subject *s, size_t count, const ee_counter_result *res,
                        int64_t now, q_ticket *t)
{
    int pick = -1;
    for (int r = 0; r < Q_R_COUNT && pick < 0; r++)
        for (size_t i = 0; i < count && pick < 0; i++)
            if (s->kinds[i] == refusal_order[r] && !res[i].fits)
                pick = (int)i;
    if (pick < 0) /* every counter had room when read again: a transient conflict */
        for (size_t i = 0; i < count && pick < 0; i++)
            if (s->kinds[i] == Q_R_CONC || s->kinds[i] == Q_R_GCONC)
                pick = (int)i;
    if (pick < 0)
        pick = 0;
    int kind = s->kinds[pick];
    atomic_fetch_add_explicit(&s->st->counts.refused[kind], 1, memory_order_relaxed);
    memset(t, 0, offsetof(q_ticket, res));
    t->magic = Q_TICKET_MAGIC;
    t->state = Q_T_REFUSED;
    t->refused = (uint8_t)kind;
    t->status = refusal_status[kind];
    t->usage = res[pick].value;
    t->limit = kind == Q_R_PRED && s->lim.limit[Q_L_PRED] < 0 ? Q_UNLIMITED
                                                              : s->reqs[pick].limit;
    t->resets_at = (kind == Q_R_PRED || kind == Q_R_SPEND) ? res[pick].window_end_ms : 0;
    t->retry_after = res[pick].retry_at_ms > now ? res[pick].retry_at_ms - now : 0;
    switch (kind) {
    case Q_R_PRED:
        return ee__error(EE_EQUOTA, "predictions limit exceeded for organisation \"%s\": %lld "
                                    "of %lld used; the period renews at %lld",
                         s->org_id, (long long)t->usage, (long long)t->limit,
                         (long long)t->resets_at);
    case Q_R_SPEND:
        return ee__error(EE_ESPEND, "monthly spend cap of organisation \"%s\" reached: %lld of "
                                    "%lld nano-USD; renews at %lld",
                         s->org_id, (long long)t->usage, (long long)t->limit,
                         (long long)t->resets_at);
    case Q_R_RATE:
        return ee__error(EE_ERATELIMIT, "user \"%s\" reached %lld executions in the last hour; "
                                        "retry after %lld ms",
                         s->user, (long long)t->limit, (long long)t->retry_after);
    default:
        return ee__error(EE_ECONCURRENCY, "%s of %lld executions already running%s%s%s",
                         kind == Q_R_GCONC ? "platform-wide cap" : "cap",
                         (long long)t->limit, kind == Q_R_GCONC ? "" : " in workspace \"",
                         kind == Q_R_GCONC ? "" : s->ws, kind == Q_R_GCONC ? "" : "\"");
    }
}

/* This thread's slot of the admitted count: the next free index at its
 * first admission (never reused, so no two live threads share one). */
static _Atomic unsigned slot_next;
static _Thread_local unsigned slot_mine; /* 1 + index; 0: not chosen yet */

static inline void count_admitted(q_state *st)
{
    unsigned i = slot_mine;
    if (i == 0) {
        /* taken once per thread; the index stops at Q_STAT_SLOTS (never wraps) */
        unsigned next = atomic_load_explicit(&slot_next, memory_order_relaxed);
        while (next < Q_STAT_SLOTS &&
               !atomic_compare_exchange_weak_explicit(&slot_next, &next, next + 1,
                                                      memory_order_relaxed, memory_order_relaxed))
            ;
        i = next < Q_STAT_SLOTS ? next + 1 : Q_STAT_SLOTS + 1;
        slot_mine = i;
    }
    if (i <= Q_STAT_SLOTS) {
        _Atomic uint64_t *n = &st->counts.admitted[i - 1].n;
        atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
                              memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&st->counts.admitted_shared, 1, memory_order_relaxed);
    }
}

static void count_error(q_state *st)
{
    atomic_fetch_add_explicit(&st->counts.errors, 1, memory_order_relaxed);
}

ee_status ee_quota_admit_fast(ee_engine *engine, ee_quota_subject *s, int64_t est_cost_nano,
                              ee_quota_ticket *ticket)
{
    if (engine == NULL || s == NULL || ticket == NULL || est_cost_nano < 0 ||
        est_cost_nano > EE_COUNTERS_VALUE_MAX)
        return ee__error(EE_EINVAL, "ee_quota_admit_fast: engine, subject and ticket are "
                                    "required and the cost must be 0..2^53-1");
    q_ticket *t = (q_ticket *)(void *)ticket;
    int64_t now = ee_engine_now_ms(engine);
    ee_status st = ee__quota_subject_fresh(s, now);
    if (st != EE_OK) {
        t->magic = 0;
        count_error(s->st);
        return st;
    }
    /* The spend request (set last, when the plan caps spend) goes only
     * with an estimate, and carries it. */
    size_t count = s->nreq;
    int64_t spend = 0;
    if (est_cost_nano > 0 && s->lim.limit[Q_L_SPEND] >= 0) {
        count++;
        spend = est_cost_nano;
    }
    ee_counter_result res[Q_R_COUNT];
    int granted = 0;
    st = ee__counters_prepared_reserve(&s->prep, s->counters, count, spend, now, res, &granted);
    if (st != EE_OK) {
        t->magic = 0;
        count_error(s->st);
        return st; /* not granted, whatever `granted` says */
    }
    if (!granted)
        return refuse(s, count, res, now, t);
    count_admitted(s->st);
    memcpy(t, &s->tmpl, s->tmpl_len);
    t->nres = (uint8_t)count;
    t->est_cost = count > s->nreq ? est_cost_nano : 0;
    for (size_t i = 0; i < count; i++)
        t->res[i].id = res[i].resv_id;
    if (res[0].value >= s->alert_at[0])
        ee__quota_alert_check(s, Q_A_PRED, res[0].value, s->lim.limit[Q_L_PRED], s->period_end,
                              now);
    if (count > s->nreq && res[count - 1].value >= s->spend_alert_at[0])
        ee__quota_alert_check(s, Q_A_SPEND, res[count - 1].value, s->lim.limit[Q_L_SPEND],
                              s->spend_end, now);
    return EE_OK;
}

ee_status ee_quota_ticket_refusal(const ee_quota_ticket *ticket, const char **quota,
                                  int64_t *usage, int64_t *limit, int64_t *resets_at_ms,
                                  int64_t *retry_after_ms)
{
    const q_ticket *t = (const q_ticket *)(const void *)ticket;
    if (t == NULL || t->magic != Q_TICKET_MAGIC)
        return ee__error(EE_EINVAL, "ee_quota_ticket_refusal: not a ticket filled by admission");
    bool refused = t->state == Q_T_REFUSED;
    if (quota != NULL)
        *quota = refused ? ee__quota_res_name(t->refused) : NULL;
    if (usage != NULL)
        *usage = refused ? t->usage : 0;
    if (limit != NULL)
        *limit = refused ? t->limit : 0;
    if (resets_at_ms != NULL)
        *resets_at_ms = refused ? t->resets_at : 0;
    if (retry_after_ms != NULL)
        *retry_after_ms = refused ? t->retry_after : 0;
    return refused ? (ee_status)t->status : EE_OK;
}

/* ---- typed admission for other modules (quota/quota.h) ------------------------------------ */

ee_status ee__quota_refusal_of(const ee_quota_ticket *ticket, ee__quota_refusal *out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee__quota_refusal_of: out must not be NULL");
    memset(out, 0, sizeof *out);
    const char *quota = NULL;
    int64_t usage, limit, resets, retry;
    ee_status st = ee_quota_ticket_refusal(ticket, &quota, &usage, &limit, &resets, &retry);
    if (st == EE_OK || quota == NULL)
        return st; /* admitted, or not a ticket */
    out->status = st;
    out->quota = quota;
    out->usage = usage;
    out->limit = limit;
    out->remaining = limit < 0 ? -1 : (limit > usage ? limit - usage : 0);
    out->resets_at_ms = resets;
    out->retry_after_ms = retry;
    return st;
}

ee_status ee__quota_admit(ee_engine *engine, const ee_principal *principal,
                          int64_t est_cost_nano, ee_quota_ticket *ticket,
                          ee__quota_refusal *refusal, ee__quota_usage *predictions)
{
    if (refusal != NULL)
        memset(refusal, 0, sizeof *refusal);
    if (predictions != NULL)
        memset(predictions, 0, sizeof *predictions);
    if (engine == NULL || principal == NULL || ticket == NULL)
        return ee__error(EE_EINVAL, "ee__quota_admit: engine, principal and ticket must not be "
                                    "NULL");
    ee_quota_subject *s;
    ee_status st = ee_quota_subject_new(&s, engine, principal);
    if (st != EE_OK)
        return st;
    st = ee_quota_admit_fast(engine, s, est_cost_nano, ticket);
    if ((st == EE_EQUOTA || st == EE_ESPEND || st == EE_ERATELIMIT || st == EE_ECONCURRENCY) &&
        refusal != NULL)
        ee__quota_refusal_of(ticket, refusal);
    if (st == EE_OK && predictions != NULL) {
        ee_counter_result r;
        memset(&r, 0, sizeof r);
        /* After the admission: a failed read leaves usage 0, the run stays
         * admitted (the ticket holds its reservations). */
        ee_counters_get(s->counters, s->key[Q_R_PRED], ee_engine_now_ms(engine), &r);
        int64_t limit = s->lim.limit[Q_L_PRED];
        predictions->usage = r.value;
        predictions->limit = limit;
        predictions->remaining = limit < 0 ? -1 : (limit > r.value ? limit - r.value : 0);
        predictions->resets_at_ms = s->period_end;
    }
    ee_quota_subject_free(s);
    return st;
}

/* ---- finish and renew --------------------------------------------------------------------- */

static const char *tkey(const q_ticket *t, int i)
{
    return t->keys + t->res[i].keyoff;
}

static ee_status check_admitted(const q_ticket *t, const char *what)
{
    if (t == NULL || t->magic != Q_TICKET_MAGIC ||
        (t->state != Q_T_ADMITTED && t->state != Q_T_FINISHED) || t->nres > Q_R_COUNT)
        return ee__error(EE_EINVAL, "%s: not an admitted ticket", what);
    if (t->state == Q_T_FINISHED)
        return ee__error(EE_ESTATE, "%s: the ticket was already finished", what);
    return EE_OK;
}

/* A commit of `amount` on `key` that the counters took, written through to
 * the durable counters beside them (memory or redis counters over a
 * database): one transaction adding it to the key's committed usage in the
 * counter's current window. Only a commit the counters accepted gets here,
 * and they accept a reservation's commit once (redis counters that lost
 * their data: once per reservation id, see docs/counters.md), so a retried
 * finish never counts twice. */
static ee_status write_through(ee_counters *c, const char *key, int64_t amount, int64_t end,
                               int64_t now)
{
    ee_counters *d = ee__counters_durable(c);
    if (d == NULL || amount <= 0)
        return EE_OK;
    ee_counter_result r;
    ee_status st = ee_counters_get(c, key, now, &r);
    /* `end`: the ticket's window (0: unknown), for counters that know none
     * (redis counters rebuilding after a loss answer from durable usage,
     * which may have no row for this key yet) */
    if (st == EE_OK)
        st = ee__counters_credit(d, key, amount,
                                 r.window_end_ms == 0 && end > now ? end : r.window_end_ms, now);
    return st;
}

/* Spend beyond the estimate: the money was spent, so it is added whatever
 * the cap (the next admissions are refused instead). */
static ee_status spend_extra(ee_engine *engine, const char *key, int64_t extra, int64_t now)
{
    q_state *st = ee__quota_state(engine);
    int64_t from, to;
    ee__quota_month((int)st->billing_day, now, &from, &to);
    ee_counter_req q = {key, extra, EE_COUNTERS_VALUE_MAX, 0, to};
    ee_counter_result r;
    int g = 0;
    ee_counters *c = ee__engine_counters(engine);
    ee_status s = ee_counters_reserve(c, &q, 60000, now, &r, &g);
    if (s == EE_OK && g)
        s = ee_counters_commit(c, q.key, r.resv_id, EE_COUNTERS_ALL, now);
    if (s == EE_OK && g)
        s = write_through(c, q.key, extra, to, now);
    else if (s == EE_OK) /* past 2^53-1: say so, never drop the overage silently */
        s = ee__error(EE_ETOOBIG, "quota: the spend on \"%s\" would pass 2^53-1 nano-USD; "
                                  "%lld nano-USD spent beyond the estimate were not counted",
                      q.key, (long long)extra);
    return s;
}

ee_status ee_quota_finish(ee_engine *engine, ee_quota_ticket *ticket, int success,
                          int64_t actual_cost_nano)
{
    q_ticket *t = (q_ticket *)(void *)ticket;
    if (engine == NULL)
        return ee__error(EE_EINVAL, "ee_quota_finish: engine must not be NULL");
    ee_status s = check_admitted(t, "ee_quota_finish");
    if (s != EE_OK)
        return s;
    if (actual_cost_nano < 0 || actual_cost_nano > EE_COUNTERS_VALUE_MAX)
        return ee__error(EE_EINVAL, "ee_quota_finish: actual cost %lld is out of range",
                         (long long)actual_cost_nano);
    ee_counters *c = ee__engine_counters(engine);
    int64_t now = ee_engine_now_ms(engine);
    ee_status first = EE_OK;
    int lost = -1;
    t->state = Q_T_FINISHED;
    bool spend_reserved = false;
    for (int i = 0; i < t->nres; i++)
        spend_reserved = spend_reserved || t->res[i].kind == Q_R_SPEND;
    /* A run admitted without an estimate (or under a plan without a spend
     * cap) reserved no spend, but what it cost was spent all the same: it
     * is added to the organisation's spend (the predictions key names the
     * organisation; a ticket always starts with it), so usage reports it
     * and the next admissions under a cap see it. */
    if (!spend_reserved && actual_cost_nano > 0 && t->nres > 0 &&
        t->res[0].kind == Q_R_PRED &&
        strncmp(tkey(t, 0), res_prefix[Q_R_PRED], strlen(res_prefix[Q_R_PRED])) == 0) {
        char key[sizeof ((ee_quota_subject *)0)->key[0]];
        ee__quota_key(key, sizeof key, "spend", tkey(t, 0) + strlen(res_prefix[Q_R_PRED]));
        first = spend_extra(engine, key, actual_cost_nano, now);
    }
    for (int i = 0; i < t->nres; i++) {
        const char *key = tkey(t, i);
        uint64_t id = t->res[i].id;
        switch (t->res[i].kind) {
        case Q_R_PRED:
            if (success || t->failed_consume) {
                s = ee_counters_commit(c, key, id, EE_COUNTERS_ALL, now);
                if (s == EE_OK)
                    s = write_through(c, key, 1, t->period_end, now); /* always 1 */
            } else {
                s = ee_counters_release(c, key, id, now);
            }
            break;
        case Q_R_CONC:
        case Q_R_GCONC:
            s = ee_counters_release(c, key, id, now);
            if (s == EE_ENOTFOUND)
                s = EE_OK; /* the lease ended: the slot is already back */
            break;
        case Q_R_SPEND: {
            int64_t keep = actual_cost_nano < t->est_cost ? actual_cost_nano : t->est_cost;
            s = ee_counters_commit(c, key, id, keep, now);
            if (s == EE_OK)
                s = write_through(c, key, keep, t->spend_end, now);
            if (actual_cost_nano > t->est_cost) {
                ee_status s2 = spend_extra(engine, key, actual_cost_nano - t->est_cost, now);
                if (s == EE_OK)
                    s = s2;
            }
            break;
        }
        default:
            s = EE_OK; /* the rate unit stays until its hour is over */
        }
        if (s != EE_OK && first == EE_OK) {
            first = s;
            lost = i;
        }
    }
    if (first == EE_ENOTFOUND && lost >= 0)
        return ee__error(EE_ENOTFOUND, "quota: the %s reservation on \"%s\" had ended (lease "
                                       "or period) before the run finished; not counted there",
                         ee__quota_res_name(t->res[lost].kind), tkey(t, lost));
    return first;
}

ee_status ee_quota_renew(ee_engine *engine, const ee_quota_ticket *ticket)
{
    const q_ticket *t = (const q_ticket *)(const void *)ticket;
    if (engine == NULL)
        return ee__error(EE_EINVAL, "ee_quota_renew: engine must not be NULL");
    ee_status s = check_admitted(t, "ee_quota_renew");
    if (s != EE_OK)
        return s;
    ee_counters *c = ee__engine_counters(engine);
    int64_t now = ee_engine_now_ms(engine);
    for (int i = 0; i < t->nres; i++) {
        if (t->res[i].kind == Q_R_RATE)
            continue; /* its lease is the sliding window itself */
        s = ee_counters_renew(c, tkey(t, i), t->res[i].id, t->lease_ms, now);
        if (s != EE_OK)
            return s;
    }
    return EE_OK;
}

int64_t ee__quota_ticket_lease_ms(const ee_quota_ticket *ticket)
{
    const q_ticket *t = (const q_ticket *)(const void *)ticket;
    if (t == NULL || t->magic != Q_TICKET_MAGIC || t->state != Q_T_ADMITTED)
        return -1;
    return t->lease_ms;
}

/* ---- the ticket as JSON ----------------------------------------------------------------------- */

ee_status ee_quota_ticket_json(const ee_quota_ticket *ticket, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_quota_ticket_json: out must not be NULL");
    *out = NULL;
    const q_ticket *t = (const q_ticket *)(const void *)ticket;
    if (t == NULL || t->magic != Q_TICKET_MAGIC || t->state != Q_T_ADMITTED ||
        t->nres > Q_R_COUNT)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_quota_ticket_json: not an admitted "
                                                       "ticket"));
    json_t *arr = json_array();
    for (int i = 0; arr != NULL && i < t->nres; i++) {
        char id[24];
        snprintf(id, sizeof id, "%" PRIu64, t->res[i].id);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "quota",
                                             ee__quota_res_name(t->res[i].kind), "key",
                                             tkey(t, i), "id", id));
    }
    /* The organisation is the predictions key's last part; a ticket always
     * starts with it (ee_quota_ticket_from_json() checks), but never read
     * past a key that does not have the prefix. */
    const char *org = "";
    if (t->nres > 0 && t->res[0].kind == Q_R_PRED &&
        strncmp(tkey(t, 0), res_prefix[Q_R_PRED], strlen(res_prefix[Q_R_PRED])) == 0)
        org = tkey(t, 0) + strlen(res_prefix[Q_R_PRED]);
    return ee__json_out(out, json_pack("{s:i, s:s, s:b, s:I, s:I, s:o}", "v", 1, "orgId", org,
                                       "failedRunsConsume", t->failed_consume,
                                       "estimatedCostNano", (json_int_t)t->est_cost, "leaseMs",
                                       (json_int_t)t->lease_ms, "reservations", arr));
}

/* A reservation id as ee_quota_ticket_json() writes it: 1..2^64-1 in
 * decimal, digits only, no leading zero. */
static bool ticket_id(const char *s, uint64_t *out)
{
    size_t n = s != NULL ? strlen(s) : 0;
    if (n == 0 || n > 20 || s[0] == '0')
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* The key of reservation kind `kind` for organisation `org`: exactly the key
 * an admission of that organisation would have reserved on, so a forged or
 * corrupted ticket cannot reach any other counter of the backend. */
static bool ticket_key_ok(int kind, const char *key, const char *org)
{
    const char *pre = res_prefix[kind];
    size_t plen = strlen(pre);
    if (strncmp(key, pre, plen) != 0)
        return false;
    const char *rest = key + plen;
    switch (kind) {
    case Q_R_GCONC:
        return *rest == '\0';
    case Q_R_PRED:
    case Q_R_SPEND:
        return strcmp(rest, org) == 0;
    default:
        return ee__id_valid(rest);
    }
}

static const char *const ticket_members[] = {"v",       "orgId",       "failedRunsConsume",
                                             "estimatedCostNano", "leaseMs", "reservations",
                                             NULL};
static const char *const ticket_res_members[] = {"quota", "key", "id", NULL};

/* Fill *t from the parsed ticket document; NULL on success, else what is
 * wrong (for the message). Nothing is written to the counters here. */
static const char *ticket_parse(const json_t *j, q_ticket *t)
{
    if (!json_is_object(j))
        return "not an object";
    if (ee__json_check_members(j, ticket_members, "ticket", "") != EE_OK)
        return ee_error_last_message();
    json_t *v = json_object_get(j, "v");
    json_t *org = json_object_get(j, "orgId");
    json_t *arr = json_object_get(j, "reservations");
    json_t *fc = json_object_get(j, "failedRunsConsume");
    json_t *est = json_object_get(j, "estimatedCostNano");
    json_t *lease = json_object_get(j, "leaseMs");
    if (!json_is_integer(v) || json_integer_value(v) != 1)
        return "\"v\" is not 1";
    if (!json_is_string(org) || !ee__id_valid(json_string_value(org)))
        return "\"orgId\" is not an id";
    if (!json_is_boolean(fc))
        return "\"failedRunsConsume\" is not a boolean";
    if (!json_is_integer(est) || json_integer_value(est) < 0 ||
        json_integer_value(est) > EE_COUNTERS_VALUE_MAX)
        return "\"estimatedCostNano\" is not 0..2^53-1";
    if (!json_is_integer(lease) || json_integer_value(lease) < 1 ||
        json_integer_value(lease) > EE_COUNTERS_TIME_MAX)
        return "\"leaseMs\" is not 1..2^53-1";
    if (!json_is_array(arr) || json_array_size(arr) < 1 || json_array_size(arr) > Q_R_COUNT)
        return "\"reservations\" is not an array of 1..5";
    const char *orgs = json_string_value(org);
    size_t koff = 0;
    int prev = -1;
    bool spend = false;
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *r = json_array_get(arr, i);
        if (!json_is_object(r))
            return "a reservation is not an object";
        char ptr[48];
        snprintf(ptr, sizeof ptr, "/reservations/%zu", i);
        if (ee__json_check_members(r, ticket_res_members, "ticket", ptr) != EE_OK)
            return ee_error_last_message();
        const char *q = json_string_value(json_object_get(r, "quota"));
        const char *key = json_string_value(json_object_get(r, "key"));
        const char *id = json_string_value(json_object_get(r, "id"));
        int kind = 0;
        while (q != NULL && kind < Q_R_COUNT && strcmp(q, res_names[kind]) != 0)
            kind++;
        /* admissions reserve in the fixed order of Q_R_*, predictions first
         * and each quota once */
        if (q == NULL || kind == Q_R_COUNT || kind <= prev || (i == 0 && kind != Q_R_PRED))
            return "a reservation's quota is unknown, repeated or out of order";
        size_t len = key != NULL ? strlen(key) : 0;
        if (len == 0 || len >= sizeof ((ee_quota_subject *)0)->key[0] ||
            koff + len + 1 > Q_KEYS_MAX || !ticket_key_ok(kind, key, orgs))
            return "a reservation's key is not the quota's key for the organisation";
        uint64_t n;
        if (!ticket_id(id, &n))
            return "a reservation's id is not a decimal 1..2^64-1";
        t->res[i].kind = (uint8_t)kind;
        t->res[i].keylen = (uint8_t)len;
        t->res[i].keyoff = (uint16_t)koff;
        t->res[i].id = n;
        memcpy(t->keys + koff, key, len + 1);
        koff += len + 1;
        prev = kind;
        spend = spend || kind == Q_R_SPEND;
    }
    /* an admission reserves spend exactly when it estimated a cost */
    if (spend != (json_integer_value(est) > 0))
        return "\"estimatedCostNano\" does not match the spend reservation";
    t->magic = Q_TICKET_MAGIC;
    t->state = Q_T_ADMITTED;
    t->nres = (uint8_t)json_array_size(arr);
    t->failed_consume = json_is_true(fc);
    t->est_cost = (int64_t)json_integer_value(est);
    t->lease_ms = (int64_t)json_integer_value(lease);
    return NULL;
}

ee_status ee_quota_ticket_from_json(const char *json, ee_quota_ticket *out)
{
    if (out == NULL || json == NULL)
        return ee__error(EE_EINVAL, "ee_quota_ticket_from_json: NULL argument");
    q_ticket *t = (q_ticket *)(void *)out;
    memset(t, 0, sizeof *t);
    json_t *j;
    ee_status s = ee__json_parse(json, Q_TICKET_JSON_MAX, 4, 0, "quota ticket", &j);
    if (s != EE_OK) /* EE_ETOOBIG for size, else the text is no ticket */
        return s == EE_ETOOBIG ? s : ee__error(EE_EPARSE, "%s", ee_error_last_message());
    const char *why = ticket_parse(j, t);
    if (why != NULL) {
        char msg[EE__ERROR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", why); /* why may be this thread's last message */
        json_decref(j);
        memset(t, 0, sizeof *t);
        return ee__error(EE_EPARSE, "ee_quota_ticket_from_json: not a quota ticket document: %s",
                         msg);
    }
    json_decref(j);
    return EE_OK;
}
