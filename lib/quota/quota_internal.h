/*
 * lib/quota/quota_internal.h - what the quota module's files share (never
 * installed): the module state, plans, resolved limits, subjects, the
 * ticket's private layout, period arithmetic and counter keys.
 */
#ifndef EE_QUOTA_INTERNAL_H
#define EE_QUOTA_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "core/htab.h"
#include "counters/counters.h"
#include "execengine/counters.h"
#include "execengine/quota.h"
#include "quota/quota.h"
#include "engine/engine.h"

#define Q_ID_MAX EE_PRINCIPAL_ID_MAX
#define Q_HOUR_MS INT64_C(3600000)
#define Q_DAY_MS INT64_C(86400000)
#define Q_ROLLING_MS (30 * Q_DAY_MS)
#define Q_MULT_ONE INT64_C(10000) /* multipliers are parts per 10000 */
#define Q_MULT_MAX (1000 * Q_MULT_ONE)
#define Q_MAX_THRESHOLDS 4
#define Q_MAX_PLANS 256
#define Q_UNLIMITED INT64_C(-1)

/* Period kinds. */
enum { Q_PERIOD_ROLLING = 0, Q_PERIOD_CALENDAR = 1 };

/* The limits a plan or multiplier can name (index into mult[]). */
enum { Q_L_PRED, Q_L_STORAGE, Q_L_RATE, Q_L_CONC, Q_L_SPEND, Q_L_COUNT };

/* Quotas that raise threshold alerts. */
enum { Q_A_PRED, Q_A_STORAGE, Q_A_SPEND, Q_A_COUNT };

/* Reservations of an admission, in the order they are requested (spend is
 * last so that a run without estimated spend just sends one fewer). */
enum { Q_R_PRED, Q_R_RATE, Q_R_CONC, Q_R_GCONC, Q_R_SPEND, Q_R_COUNT };

/* A plan as data. limit[] holds -1 (unlimited) or >= 0; has[] says whether
 * the plan named it (rate and concurrency default to the config). */
typedef struct q_plan {
    char name[Q_ID_MAX + 1];
    int64_t limit[Q_L_COUNT];
    bool has[Q_L_COUNT];
    int64_t mult[Q_L_COUNT]; /* parts per 10000; 10000 = x1 */
    int period;
    bool failed_consume;
    bool active;
    int64_t run_budget_max; /* runBudgetMaxNanoUsd; -1 when the plan names none */
} q_plan;

/* plans.json, parsed. */
typedef struct q_file {
    char default_plan[Q_ID_MAX + 1];
    int64_t run_lease_ms;
    int64_t cache_ms;
    int64_t thresholds[Q_MAX_THRESHOLDS]; /* percent, ascending */
    int nthresholds;
    int64_t global_conc; /* -1: no platform-wide cap */
    q_plan *plans;
    size_t nplans;
} q_file;

/* An organisation's effective limits (plan x multipliers, config defaults). */
typedef struct q_limits {
    char plan[Q_ID_MAX + 1];
    int64_t limit[Q_L_COUNT]; /* -1 unlimited */
    int64_t gconc;
    int period;
    int64_t period_start;
    bool failed_consume;
    bool subscribed;
    int64_t run_budget_max; /* the plan's per-run cap, -1: none (the engine's default) */
    int64_t sub_mult[Q_L_COUNT];
    int64_t plan_mult[Q_L_COUNT];
} q_limits;

/* An organisation seen by this engine: its limits and alert memory. Never
 * freed before the module. Found by id through the module's hash table
 * (q_state.orgs): admission's lookup does not grow with the number of
 * organisations the engine has seen. */
typedef struct q_org {
    ee__hnode node; /* in q_state.orgs, keyed by id */
    char id[Q_ID_MAX + 1];
    _Atomic int64_t reload_at; /* engine ms at which the limits are re-read */
    _Atomic uint64_t version;  /* bumped on each reload */
    uint64_t gen_loaded;       /* module generation the limits were read at */
    bool loaded;
    bool seeded;               /* period usage read back from the durable counters (under
                                  the module lock; see ee__quota_subject_refresh) */
    q_limits lim;              /* under the module lock */
    /* period end for which (quota, threshold) was already announced */
    _Atomic int64_t alerted[Q_A_COUNT][Q_MAX_THRESHOLDS];
} q_org;

/* Admission counts (ee_quota_stats()), per process since the engine opened.
 * The hot path adds to `admitted` without a locked instruction: each of the
 * process's first Q_STAT_SLOTS threads that admit owns one slot (in every
 * engine: the index is the thread's) and is its only writer, so a relaxed
 * load and store count exactly; later threads share `admitted_shared`
 * (an atomic add). Slots are 128 bytes apart, so threads admitting at once
 * do not share a cache line, nor with what admission reads (the padding on
 * both sides keeps q_state's other members off those lines). */
#define Q_STAT_SLOTS 64
typedef struct q_slot {
    _Atomic uint64_t n;
    char pad_[128 - sizeof(uint64_t)];
} q_slot;

typedef struct q_counts {
    char pad0_[128];
    q_slot admitted[Q_STAT_SLOTS];
    _Atomic uint64_t admitted_shared;
    _Atomic uint64_t refused[Q_R_COUNT]; /* by Q_R_* (rare: no stripes) */
    _Atomic uint64_t errors;             /* counters or limits could not be read */
    char pad1_[128];
} q_counts;

typedef struct q_state {
    ee_engine *engine;
    _Atomic uint64_t gen;
    pthread_mutex_t lock; /* orgs list and their limits */
    ee__htab orgs; /* q_org by id */
    q_file file;
    int64_t cfg_rate, cfg_conc, billing_day;
    pthread_rwlock_t alert_lock;
    ee_quota_alert_fn alert_fn;
    void *alert_payload;
    int64_t opened_at; /* engine time at open: the counts run from it */
    q_counts counts;
} q_state;

/* ---- ticket (private layout of ee_quota_ticket) ---------------------------------- */

#define Q_TICKET_MAGIC UINT32_C(0x54514545) /* "EEQT" */
enum { Q_T_ADMITTED = 1, Q_T_REFUSED = 2, Q_T_FINISHED = 3 };
#define Q_KEYS_MAX 520
/* Longest ticket text ee_quota_ticket_from_json() reads (a real ticket is
 * under 1 KiB: five reservations of keys under 96 bytes). */
#define Q_TICKET_JSON_MAX 4096
/* Longest request document ee_quota_admit() reads. */
#define Q_REQUEST_JSON_MAX 4096

typedef struct q_tres {
    uint8_t kind;   /* Q_R_* */
    uint8_t keylen;
    uint16_t keyoff;
    uint32_t pad_;
    uint64_t id;
} q_tres;

typedef struct q_ticket {
    uint32_t magic;
    uint8_t state;
    uint8_t failed_consume;
    uint8_t nres;
    uint8_t refused; /* Q_R_* that refused */
    int32_t status;
    int32_t pad_;
    int64_t usage, limit, resets_at, retry_after;
    int64_t est_cost;
    int64_t lease_ms;
    /* the windows of the predictions and spend counters at admission (0:
     * unknown, a ticket read from JSON): where a commit is written through
     * when the counters cannot tell (redis counters that lost their data) */
    int64_t period_end, spend_end;
    q_tres res[Q_R_COUNT];
    char keys[Q_KEYS_MAX]; /* NUL-terminated keys, res[i].keyoff into it */
} q_ticket;

_Static_assert(sizeof(q_ticket) <= EE_QUOTA_TICKET_SIZE, "ticket layout too large");

/* ---- subject ----------------------------------------------------------------------- */

struct ee_quota_subject {
    /* The requests (spend last), checked once per resolution of the
     * limits: every admission reserves the first nreq, or all of them with
     * the estimated spend. First: the part every admission reads ends it,
     * so that it and what follows are one run of cache lines. */
    ee__counters_prepared prep;
    /* What every admission reads, together (a few cache lines). */
    ee_engine *engine;
    q_state *st;
    struct ee_counters *counters;
    q_org *org;
    uint64_t gen;
    uint64_t org_version;
    int64_t valid_from, valid_until; /* the resolved limits hold in [from, until) */
    size_t nreq;                     /* requests without spend */
    size_t tmpl_len;
    int64_t alert_at[Q_MAX_THRESHOLDS]; /* predictions value that reaches each threshold */
    int64_t spend_alert_at[Q_MAX_THRESHOLDS];
    int kinds[Q_R_COUNT];
    int pred_idx;              /* index of the predictions request */
    /* the ticket's constant part, copied on each admission */
    q_ticket tmpl;
    /* Read when the limits are resolved again, on refusals and alerts. */
    struct ee_counters *durable; /* where period usage is durable when the counters are not
                                    (ee__counters_durable), else NULL */
    bool seed;                   /* read period usage back from `durable` before an
                                    organisation's first admission (counters that are
                                    this process's alone: memory) */
    q_limits lim;
    int64_t period_end, spend_end;
    ee_counter_req reqs[Q_R_COUNT]; /* what prep was set with (limits for refusals) */
    char org_id[Q_ID_MAX + 1], ws[Q_ID_MAX + 1], user[Q_ID_MAX + 1];
    char key[Q_R_COUNT][96];
};

/* ---- module.c ---------------------------------------------------------------------- */

q_state *ee__quota_state(ee_engine *engine);

/* ---- plans.c ------------------------------------------------------------------------- */

/* Parse a plan object into *out (message names the field on failure). */
ee_status ee__quota_plan_parse(const json_t *obj, q_plan *out);
json_t *ee__quota_plan_json(const q_plan *p, const char *source);
/* Parse plans.json's text (`path` names it in messages). */
ee_status ee__quota_file_load(q_file *file, const char *text, size_t len, const char *path);
void ee__quota_file_free(q_file *file);
/* The file's settings when it does not say (no plans). */
void ee__quota_file_defaults(q_file *file);
/* Parse a multiplier value ("2", "1.5", "200%", 2, 2.0) to parts per 10000. */
ee_status ee__quota_mult_parse(const json_t *v, int64_t *out);
/* base x mult / 10000, floored, clamped to the counters' range; -1 stays -1. */
int64_t ee__quota_apply_mult(int64_t base, int64_t mult);
/* Read the organisation's limits from storage and the file. */
ee_status ee__quota_resolve(q_state *st, const char *org_id, int64_t now, q_limits *out);
/* Find or create the organisation's entry. NULL on ENOMEM. */
q_org *ee__quota_org(q_state *st, const char *org_id);

/* Make the organisation's cached limits current at `now` (re-read when the
 * module's generation moved or the plans file's cacheMs passed). */
ee_status ee__quota_org_load(q_state *st, q_org *org, int64_t now);

/* ---- period.c ------------------------------------------------------------------------ */

/* The period containing now: [*from, *to). */
void ee__quota_period(int kind, int64_t start, int billing_day, int64_t now, int64_t *from,
                      int64_t *to);
/* ee__quota_month() and its named forms: lib/quota/quota.h. */

/* ---- admit.c -------------------------------------------------------------------------- */

ee_status ee__quota_subject_init(ee_quota_subject *s, ee_engine *engine, const char *ws,
                                 const char *user, const char *org);
ee_status ee__quota_subject_refresh(ee_quota_subject *s, int64_t now);
/* Make sure the subject is fresh at now. */
static inline ee_status ee__quota_subject_fresh(ee_quota_subject *s, int64_t now)
{
    if (now >= s->valid_from && now < s->valid_until &&
        atomic_load_explicit(&s->st->gen, memory_order_relaxed) == s->gen &&
        atomic_load_explicit(&s->org->version, memory_order_relaxed) == s->org_version &&
        now < atomic_load_explicit(&s->org->reload_at, memory_order_relaxed))
        return EE_OK;
    return ee__quota_subject_refresh(s, now);
}
const char *ee__quota_res_name(int kind);
/* The counters that hold stored bytes and alert markers: the durable ones
 * when the counters are not durable themselves. */
static inline struct ee_counters *ee__quota_lasting(const ee_quota_subject *s)
{
    return s->durable != NULL ? s->durable : s->counters;
}

/* Keys: "eeq/<what>/<id>" ('/' cannot occur in an id). */
void ee__quota_key(char *out, size_t cap, const char *what, const char *id);

/* ---- alerts.c --------------------------------------------------------------------------- */

/* usage reached the threshold index t of quota q (Q_A_*) in the period
 * ending period_end: announce it once (marker counter, callback, audit). */
void ee__quota_alert(ee_quota_subject *s, int q, int t, int64_t usage, int64_t limit,
                     int64_t period_end, int64_t now);
/* Check a value against the thresholds and announce those reached. */
void ee__quota_alert_check(ee_quota_subject *s, int q, int64_t value, int64_t limit,
                           int64_t period_end, int64_t now);

#endif
