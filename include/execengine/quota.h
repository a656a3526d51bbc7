/*
 * execengine/quota.h - plans and subscriptions, admission of a run (per-user
 * rate limit, concurrency slots, the organisation's predictions quota and
 * platform spend cap, decided together), the storage quota and threshold
 * alerts.
 *
 * Plans are data: data/plans.json in EE_DATA_DIR (read when the engine
 * opens) plus plans an admin stores with ee_quota_plan_put() (a stored plan
 * overrides the file's plan of the same name). A plan names its limits:
 *   predictionsPerPeriod               runs per period per organisation (-1: unlimited)
 *   storageBytes                       bytes of stored outputs per organisation (-1)
 *   executionsPerUserPerHour           runs per user in any 60 minutes (-1; absent:
 *                                      MAX_EXECUTIONS_PER_USER_PER_HOUR)
 *   concurrentExecutionsPerWorkspace   runs at once per workspace (-1; absent:
 *                                      MAX_CONCURRENT_EXECUTIONS)
 *   monthlySpendCapNanoUsd             platform spend per billing month (-1)
 *   period                             "rolling30d" (30-day windows from the
 *                                      subscription's periodStart) or "calendarMonth"
 *                                      (months starting on BILLING_CYCLE_DAY, UTC)
 *   failedRunsConsume                  whether a failed run still uses a prediction
 *   multipliers                        {"predictions": "2"} - exact decimals (or
 *                                      "200%"), never floating point
 * An organisation's subscription (ee_quota_subscription_put()) names its
 * plan, its periodStart and more multipliers ("premium doubles the
 * limit" is {"predictions": "2"} on the plan or the subscription). Without a
 * subscription an organisation is on the file's "defaultPlan".
 *
 * Admission is one decision. ee_quota_admit_fast() reserves, in ONE
 * ee_counters_reserve_many() call, a rate-limit unit (lease one hour, never
 * committed: an exact sliding window), a concurrency slot for the
 * workspace (and the platform-wide one when configured), one prediction and
 * the run's estimated platform spend. Either all are granted or none is:
 * a refused run consumes nothing. The ticket it fills is then finished with
 * ee_quota_finish() (commit the prediction on success, release it on
 * failure unless the plan's failedRunsConsume; release the slots; commit
 * the actual spend). A run whose process died gives everything back when
 * the lease ends (plans.json "runLeaseMs"; ee_quota_renew() keeps a long
 * run's reservations).
 *
 * Refusals. EE_EQUOTA (predictions), EE_ESPEND (spend cap), EE_ERATELIMIT
 * (rate; retry after), EE_ECONCURRENCY (slots). When several limits refuse
 * at once, the first in that order is reported. The figures (usage, limit,
 * resetsAt, retryAfterMs) are in the ticket (ee_quota_ticket_refusal()) and,
 * for the JSON calls, in the error document's detail.
 *
 * Time comes from the engine's clock (ee_engine_now_ms()).
 *
 * Threads. Every call taking an engine is thread-safe. An ee_quota_subject
 * is used by one thread at a time (it may move between threads); create one
 * per thread and principal. A ticket is plain memory owned by the caller.
 */
#ifndef EXECENGINE_QUOTA_H
#define EXECENGINE_QUOTA_H

#include "common.h"
#include "errors.h"
#include "engine.h"
#include "principal.h"

EE_BEGIN_DECLS

/** Bytes of an ee_quota_ticket. */
#define EE_QUOTA_TICKET_SIZE 1024

/**
 * What an admission reserved (or why it was refused). Plain memory owned by
 * the caller - on the stack, in an array, copied freely; its contents are
 * private to the library (they hold the counters' keys and reservation ids,
 * no pointer), so a ticket may be finished by another thread, or by another
 * process after ee_quota_ticket_json() / ee_quota_ticket_from_json().
 */
typedef struct ee_quota_ticket {
    uint64_t opaque_[EE_QUOTA_TICKET_SIZE / 8];
} ee_quota_ticket;

/** A principal resolved for admission: keys built and limits cached. */
typedef struct ee_quota_subject ee_quota_subject;

/**
 * Resolve `principal` (copied) for the fast path: its counter keys and its
 * organisation's plan and subscription (read now, re-read when the engine's
 * clock passes a period end or a short cache time, and at once after a plan
 * or subscription change through this engine).
 * *out is owned by the caller (ee_quota_subject_free()), NULL on failure.
 * Threads: the subject is used by one thread at a time.
 * Returns EE_OK; EE_EINVAL (NULL argument); EE_ENOTFOUND (the subscription
 * names a plan that does not exist); EE_ECORRUPT (a stored plan or
 * subscription is malformed); EE_ENOMEM; storage failures (EE_EIO,
 * EE_EBUSY, EE_ENETWORK).
 */
EE_API ee_status ee_quota_subject_new(ee_quota_subject **out, ee_engine *engine,
                                      const ee_principal *principal);

/** Free a subject. Accepts NULL. */
EE_API void ee_quota_subject_free(ee_quota_subject *subject);

/**
 * Admit one run for `subject`: the hot path (no JSON, no allocation once
 * the subject's limits are cached). `est_cost_nano` is the run's estimated
 * platform spend in nano-USD (0: none, the spend cap is not consulted).
 * Fills *ticket either way.
 *
 * Returns EE_OK (admitted: finish the ticket with ee_quota_finish());
 * EE_EQUOTA, EE_ESPEND, EE_ERATELIMIT, EE_ECONCURRENCY (refused: nothing
 * was consumed; ee_quota_ticket_refusal() has the figures); EE_EINVAL
 * (NULL argument, negative cost); the counters' EE_ENETWORK, EE_EIO,
 * EE_EBUSY, EE_ETIMEOUT, EE_EUPSTREAM (outcome unknown: anything reserved
 * comes back with its lease); the refresh statuses of ee_quota_subject_new().
 */
EE_API ee_status ee_quota_admit_fast(ee_engine *engine, ee_quota_subject *subject,
                                     int64_t est_cost_nano, ee_quota_ticket *ticket);

/**
 * The figures of a refused ticket: which limit ("predictions", "spend",
 * "rate", "concurrency", "concurrencyGlobal" - static string), its usage and
 * limit, when it renews (ms since the epoch; 0 when it does not) and how
 * long to wait before retrying (ms; 0 when unknown). Any output may be NULL.
 * Returns the refusal status, EE_OK for an admitted ticket, EE_EINVAL for
 * NULL or a ticket the library did not fill.
 */
EE_API ee_status ee_quota_ticket_refusal(const ee_quota_ticket *ticket, const char **quota,
                                         int64_t *usage, int64_t *limit, int64_t *resets_at_ms,
                                         int64_t *retry_after_ms);

/**
 * Finish an admitted run. success != 0: the prediction is committed; else
 * it is released (committed when the plan says failed runs consume). The
 * concurrency slots are released. The spend reservation is committed at
 * `actual_cost_nano` (more than estimated is added on top - the money was
 * spent - and may pass the cap). The rate-limit unit stays until its hour
 * is over. A ticket is finished once; the ticket is marked finished.
 * Returns EE_OK; EE_EINVAL (NULL, not an admitted ticket, negative cost);
 * EE_ESTATE (already finished); EE_ENOTFOUND (a reservation's lease ended
 * before the finish - the run was not counted on it - the others were
 * finished; the message names it); EE_ETOOBIG (the spend beyond the
 * estimate would take the spend counter past 2^53-1 nano-USD: the estimate
 * is committed, the message says how much was not counted); counters
 * failures (EE_ENETWORK ...).
 */
EE_API ee_status ee_quota_finish(ee_engine *engine, ee_quota_ticket *ticket, int success,
                                 int64_t actual_cost_nano);

/**
 * Extend the leases of an admitted run's slot, prediction and spend
 * reservations by the plan's run lease from now (long runs call it in
 * time). Returns EE_OK; EE_EINVAL; EE_ESTATE (finished); EE_ENOTFOUND (a
 * lease already ended); counters failures.
 */
EE_API ee_status ee_quota_renew(ee_engine *engine, const ee_quota_ticket *ticket);

/**
 * A ticket as JSON, to keep with an execution record:
 * {"v": 1, "orgId", "failedRunsConsume", "estimatedCostNano", "leaseMs",
 *  "reservations": [{"quota", "key", "id" (decimal string)}...]}.
 * *out is owned by the caller (ee_free()); an error document on failure.
 * Returns EE_OK, EE_EINVAL (not an admitted ticket), EE_ENOMEM.
 */
EE_API ee_status ee_quota_ticket_json(const ee_quota_ticket *ticket, char **out);

/**
 * Rebuild a ticket, into *out, from ee_quota_ticket_json()'s text, at most 4096 bytes
 * (refused on its length, unread, past that). Every field is checked:
 * "v" 1, "orgId" an id, each reservation's key exactly the key an
 * admission of that organisation reserves on for its quota (a ticket
 * cannot name any other counter), quotas known, once each and in
 * admission order (predictions first), ids decimal 1..2^64-1, "leaseMs"
 * 1..2^53-1, "estimatedCostNano" 0..2^53-1 and non-zero exactly when there
 * is a spend reservation, no other member. Returns EE_OK; EE_EINVAL
 * (NULL); EE_ETOOBIG (longer than 4096 bytes); EE_EPARSE (not JSON, or not
 * a ticket document: the message says which field).
 */
EE_API ee_status ee_quota_ticket_from_json(const char *json, ee_quota_ticket *out);

/**
 * The JSON form of admission. `request_json` may be NULL or
 * {"estimatedCostNanoUsd": n} (n an integer 0..2^53-1; at most 4096 bytes,
 * refused on its length past that; no other member). On EE_OK *out is
 * {"allowed": true, "ticket": {...ee_quota_ticket_json()...},
 *  "predictions": {"usage", "limit", "remaining", "resetsAt"}};
 * on a refusal *out is the error document whose detail is
 * {"allowed": false, "quota", "usage", "limit", "remaining", "resetsAt",
 *  "retryAfterMs"} (the example server answers HTTP 429 with it).
 * Statuses as ee_quota_admit_fast(), plus EE_EPARSE (not JSON, not an
 * object), EE_EINVAL (an unknown member or a bad value, named) and
 * EE_ETOOBIG (over 4096 bytes) for a bad request.
 */
EE_API ee_status ee_quota_admit(ee_engine *engine, const ee_principal *principal,
                                const char *request_json, char **out);

/**
 * ee_quota_finish() for a ticket kept as JSON, read as
 * ee_quota_ticket_from_json() reads it (a ticket it refuses changes no
 * counter). Statuses as ee_quota_finish() (EE_ENOTFOUND also for a ticket
 * finished before, since its reservations are gone), plus EE_EPARSE and
 * EE_ETOOBIG (over 4096 bytes).
 */
EE_API ee_status ee_quota_finish_json(ee_engine *engine, const char *ticket_json, int success,
                                      int64_t actual_cost_nano);

/**
 * The current usage per quota for the principal's organisation:
 * {"orgId", "plan", "predictions": {"usage", "limit", "resetsAt"},
 *  "storage": {"usage", "limit"}, "spend": {"usage": money, "limit": money|-1,
 *  "resetsAt"}, "rate": {"usage", "limit", "windowMs"},
 *  "concurrency": {"usage", "limit"}} (limit -1 = unlimited; resetsAt is
 * ms since the epoch). Consumes nothing. *out is owned by the caller.
 * Returns EE_OK and the statuses of ee_quota_subject_new() and the counters.
 */
EE_API ee_status ee_quota_usage(ee_engine *engine, const ee_principal *principal, char **out);

/**
 * A check, without consuming: {"allowed", "usage", "limit",
 * "remaining", "resetsAt"} for the predictions quota ("allowed" is whether
 * one more run fits; limit and remaining -1 when unlimited; "error":
 * "Predictions limit exceeded" when it does not fit). A check is advisory:
 * only ee_quota_admit*() decides. Statuses as ee_quota_usage().
 */
EE_API ee_status ee_quota_check(ee_engine *engine, const ee_principal *principal, char **out);

/* ---- plans and subscriptions (admin) ------------------------------------ */

/**
 * Store a plan (created or replaced by its "name"; fields as at the top).
 * *out (may be NULL) receives the stored plan as JSON. Takes effect at
 * once in this engine, within a few seconds in other processes. Writers of
 * the same name at once (threads, processes) leave one plan: the last.
 * The plan is at most 64 KiB (refused on its length, unread, past that).
 * Returns EE_OK; EE_EINVAL / EE_EPARSE (malformed plan, or a member not
 * listed at the top - the message names the field); EE_ETOOBIG (over
 * 64 KiB); EE_EBUSY (the plan kept changing under 32 attempts); storage
 * failures.
 */
EE_API ee_status ee_quota_plan_put(ee_engine *engine, const char *plan_json, char **out);

/** The effective plan `name` as JSON (source "storage" or "file").
 * Returns EE_OK, EE_EINVAL, EE_ENOTFOUND, storage failures. */
EE_API ee_status ee_quota_plan_get(ee_engine *engine, const char *name, char **out);

/** Every effective plan: {"defaultPlan", "plans": [...]}. Returns EE_OK and
 * storage failures. */
EE_API ee_status ee_quota_plan_list(ee_engine *engine, char **out);

/** Delete a stored plan (the file's plan of that name, if any, applies
 * again). Returns EE_OK, EE_EINVAL, EE_ENOTFOUND, storage failures. */
EE_API ee_status ee_quota_plan_delete(ee_engine *engine, const char *name);

/**
 * Set an organisation's subscription: {"orgId", "plan", "periodStart"?: ms
 * (default: now), "multipliers"?: {...}}. Replaces the current one; usage
 * so far in the period is kept (a plan change mid-period raises or lowers
 * the limit, not the usage). An organisation has one subscription whatever
 * the concurrent writers (threads, processes): the last one written.
 * "planId" is taken for "plan"; no other member. At most 64 KiB.
 * *out (may be NULL) receives the stored subscription. Returns EE_OK;
 * EE_EINVAL (a bad value or an unknown member, named) / EE_EPARSE;
 * EE_ETOOBIG (over 64 KiB); EE_ENOTFOUND (no such plan); EE_EBUSY (it kept
 * changing under 32 attempts); storage failures.
 */
EE_API ee_status ee_quota_subscription_put(ee_engine *engine, const char *subscription_json,
                                           char **out);

/** The organisation's subscription, with its effective limits. Returns
 * EE_OK, EE_EINVAL, EE_ENOTFOUND (none: the default plan applies). */
EE_API ee_status ee_quota_subscription_get(ee_engine *engine, const char *org_id, char **out);

/* ---- storage quota -------------------------------------------------------- */

/**
 * Reserve `bytes` (> 0) of the organisation's storage quota for an output
 * about to be stored. The bytes stay counted until ee_quota_storage_release()
 * (deletion, retention); *resv_id_out names them (keep it with the record).
 * Returns EE_OK; EE_EQUOTA (it would pass the plan's storageBytes: nothing
 * reserved; the error detail has usage and limit); EE_EINVAL; counters
 * failures.
 */
EE_API ee_status ee_quota_storage_reserve(ee_engine *engine, const ee_principal *principal,
                                          int64_t bytes, uint64_t *resv_id_out);

/**
 * The stored size turned out to be `actual_bytes` (<= what was reserved):
 * the reservation is replaced by one of that size, *resv_id_out gets its id.
 * Returns EE_OK; EE_EINVAL (more than reserved, or <= 0: release instead);
 * EE_ENOTFOUND (unknown or released id); counters failures.
 */
EE_API ee_status ee_quota_storage_commit(ee_engine *engine, const ee_principal *principal,
                                         uint64_t resv_id, int64_t reserved_bytes,
                                         int64_t actual_bytes, uint64_t *resv_id_out);

/** Give a stored output's bytes back (it was deleted). Returns EE_OK,
 * EE_EINVAL, EE_ENOTFOUND, counters failures. */
EE_API ee_status ee_quota_storage_release(ee_engine *engine, const ee_principal *principal,
                                          uint64_t resv_id);

/* ---- statistics --------------------------------------------------------- */

/**
 * This engine's admissions since it opened, per process (counters for a
 * monitoring system: they start at 0 with each engine; add up the
 * processes sharing the counters yourself): every ee_quota_admit_fast()
 * (and so ee_quota_admit() and each execution's admission) counts once.
 *   {"since": engine ms at open, "admitted",
 *    "refused": {"predictions", "rate", "concurrency", "concurrencyGlobal",
 *                "spend"} (the reason reported, as ee_quota_ticket_refusal()'s
 *                quota; one per refusal),
 *    "refusedTotal",
 *    "errors": admissions that failed (counters or limits unreadable)}
 * Counting costs the admission no lock and no locked instruction (a
 * per-thread slot; docs/quota.md). *out is the caller's (ee_free()).
 * Thread-safe. Returns EE_OK, EE_EINVAL (NULL engine or out), EE_ENOMEM.
 */
EE_API ee_status ee_quota_stats(ee_engine *engine, char **out);

/* ---- alerts ------------------------------------------------------------- */

/**
 * Called once per organisation, quota and threshold per period (across
 * threads and processes sharing the counters) when usage reaches a
 * threshold (plans.json "alertThresholdsPercent", default 80 and 95) of
 * the predictions, storage or spend quota, with
 * {"orgId", "workspaceId", "userId", "quota", "threshold", "usage", "limit",
 *  "periodEnd"} - borrowed for the call. It runs on the admitting thread
 * (an engine worker when it stores a run's output), never while the engine
 * holds a lock another thread's call may wait for (an alert raised under
 * one is delivered after it, as log lines are: ee_log_fn): keep it short
 * and do not call back into quota functions.
 */
typedef void (*ee_quota_alert_fn)(const char *alert_json, void *payload);

/**
 * Install (or with NULL remove) the engine's alert callback; an audit entry
 * (action "quota.threshold") is written either way. Thread-safe: a call in
 * progress finishes with the callback it started with.
 * Returns EE_OK or EE_EINVAL (NULL engine).
 */
EE_API ee_status ee_quota_set_alert_callback(ee_engine *engine, ee_quota_alert_fn fn,
                                             void *payload);

EE_END_DECLS

#endif
