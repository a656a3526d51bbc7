/*
 * lib/quota/quota.h - semi-private: for other modules of the library (the
 * execution pipeline); C types; no JSON. What another module may call of
 * the quota module, separate from lib/quota/quota_internal.h (private: the
 * quota module's own files only). The public calls of execengine/quota.h
 * are JSON at the door where a host needs it; the ones below answer in C
 * what those render.
 *
 * One run, as the pipeline makes it:
 *   ee__quota_admit()          principal in, ticket (and refusal) out
 *   ee_quota_renew()           long runs, in time (execengine/quota.h)
 *   ee_quota_finish()          success or failure and the actual cost
 *                              (execengine/quota.h: C types already)
 * and for its stored output:
 *   ee__quota_storage_reserve() bytes in, reservation id (or refusal) out
 *   ee_quota_storage_commit()   the size it turned out to be
 *   ee_quota_storage_release()  deleted (execengine/quota.h)
 * A caller that admits the same principal again and again keeps an
 * ee_quota_subject and calls ee_quota_admit_fast() (execengine/quota.h),
 * then ee__quota_refusal_of() on a refusal.
 */
#ifndef EE_QUOTA_QUOTA_H
#define EE_QUOTA_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "execengine/principal.h"
#include "execengine/quota.h"

/* Why a run or an output was refused: what the JSON API puts in its error
 * detail. `quota` is a static string: "predictions", "spend", "rate",
 * "concurrency", "concurrencyGlobal" or "storage". Limits of -1 are
 * unlimited (remaining -1 then). Times are ms since the epoch; 0 when the
 * quota does not renew or the wait is unknown. */
typedef struct ee__quota_refusal {
    ee_status status; /* EE_EQUOTA, EE_ESPEND, EE_ERATELIMIT, EE_ECONCURRENCY */
    const char *quota;
    int64_t usage;
    int64_t limit;
    int64_t remaining;
    int64_t resets_at_ms;
    int64_t retry_after_ms;
    int64_t requested; /* storage: the bytes asked for; 0 for a run */
} ee__quota_refusal;

/* An organisation's predictions in the current period. */
typedef struct ee__quota_usage {
    int64_t usage;
    int64_t limit; /* -1: unlimited */
    int64_t remaining;
    int64_t resets_at_ms;
} ee__quota_usage;

/* Admit one run of `principal` (its limits resolved for this call), as
 * ee_quota_admit_fast() does for a subject: `est_cost_nano` 0..2^53-1 is
 * the run's estimated platform spend. *ticket is filled either way. On a
 * refusal *refusal (may be NULL) has the figures; on EE_OK *predictions
 * (may be NULL: then nothing more is read) has the organisation's
 * predictions after this admission (usage 0 if that read failed: the run
 * is admitted all the same). Returns EE_OK (finish the ticket with
 * ee_quota_finish()); EE_EQUOTA, EE_ESPEND, EE_ERATELIMIT, EE_ECONCURRENCY
 * (refused, nothing consumed); EE_EINVAL (NULL engine, principal or
 * ticket, cost out of range); the statuses of ee_quota_subject_new() and
 * the counters' failures, as ee_quota_admit_fast(). */
ee_status ee__quota_admit(ee_engine *engine, const ee_principal *principal,
                          int64_t est_cost_nano, ee_quota_ticket *ticket,
                          ee__quota_refusal *refusal, ee__quota_usage *predictions);

/* The refusal a ticket filled by admission holds, into *out (zeroed for an
 * admitted ticket). Returns the refusal's status; EE_OK for an admitted
 * ticket; EE_EINVAL (NULL out, or a ticket no admission filled). */
ee_status ee__quota_refusal_of(const ee_quota_ticket *ticket, ee__quota_refusal *out);

/* ee_quota_storage_reserve() with the refusal in C: on EE_EQUOTA *refusal
 * (may be NULL) has quota "storage", the bytes used, the limit and the bytes
 * requested. Statuses as ee_quota_storage_reserve(). */
ee_status ee__quota_storage_reserve(ee_engine *engine, const ee_principal *principal,
                                    int64_t bytes, uint64_t *resv_id_out,
                                    ee__quota_refusal *refusal);

/* The name of the plan `principal`'s organisation is on: its active
 * subscription's plan, else the plans file's default plan. Cached as
 * admission caches an organisation's limits (shared with it): re-read after
 * the plans file's cacheMs, and at once after a plan or subscription is
 * written through this engine. Thread-safe. *out gets the name ("" on
 * failure). Returns EE_OK; EE_EINVAL (NULL argument); EE_ESTATE (the quota
 * module is not open); EE_ECORRUPT (a stored subscription cannot be read);
 * EE_ENOTFOUND (the subscription names a plan that no longer exists);
 * EE_ENOMEM and the storage statuses. */
ee_status ee__quota_plan_of(ee_engine *engine, const ee_principal *principal,
                            char out[EE_PRINCIPAL_ID_MAX + 1]);

/* The lease of an admitted ticket's reservations, ms (what
 * ee_quota_renew() extends them by): renew within it. -1 for anything but
 * an admitted ticket. */
int64_t ee__quota_ticket_lease_ms(const ee_quota_ticket *ticket);

/* The per-run budget cap of `principal`'s plan ("runBudgetMaxNanoUsd",
 * nano-USD): *out gets it, or -1 when the plan names none (the engine's
 * EXEC_RUN_BUDGET_MAX applies). Cached and re-read as ee__quota_plan_of().
 * Returns EE_OK and the statuses of ee__quota_plan_of(). */
ee_status ee__quota_run_budget_max(ee_engine *engine, const ee_principal *principal,
                                   int64_t *out);

/* The monthly spend cap of `principal`'s plan ("monthlySpendCapNanoUsd",
 * nano-USD, with the subscription's multiplier applied): *out gets it, or
 * -1 when the plan has none. Cached and re-read as ee__quota_plan_of().
 * Returns EE_OK and the statuses of ee__quota_plan_of(). */
ee_status ee__quota_spend_cap(ee_engine *engine, const ee_principal *principal, int64_t *out);

/* ---- billing months (period.c) --------------------------------------------------
 * A billing month starts at 00:00 UTC on `billing_day` (BILLING_CYCLE_DAY,
 * 1..28; another value counts as 1) and ends where the next one starts. Its
 * name is "YYYY-MM" of the day it starts. Pure integer arithmetic on ms since
 * the epoch; thread-safe. The billing module keys its monthly records by it. */
#define EE__QUOTA_MONTH_NAME_SIZE 8 /* "YYYY-MM" and its terminator */

/* The billing month containing `now`: [*from, *to). */
void ee__quota_month(int billing_day, int64_t now, int64_t *from, int64_t *to);

/* The name of the billing month containing `now` (years 0..9999; outside,
 * the year is clamped into that range). */
void ee__quota_month_name(int billing_day, int64_t now, char name[EE__QUOTA_MONTH_NAME_SIZE]);

/* The range of the billing month called `name` ("YYYY-MM", years 1970..9999,
 * months 01..12). Returns false, with nothing set, for any other text. */
bool ee__quota_month_named(int billing_day, const char *name, int64_t *from, int64_t *to);

#endif
