/*
 * lib/billing/billing.h - semi-private: what the execution pipeline calls of
 * the billing module; C types, no JSON. The public calls (usage, billing
 * records, exports, analytics) are execengine/billing.h; the module's own
 * helpers stay in billing_internal.h.
 *
 * One execution is billed once, by the pipeline's accounting step
 * (lib/exec/bill.c): inside ONE storage transaction it reads the execution
 * record, and only if the record carries no charge yet, calls
 * ee__billing_apply() - which reads and rewrites the workspace's month row
 * (revision-checked) and adds to the user's userWorkflowUsage row - and then
 * stores the charge on the record (revision-checked). Any writer in between
 * makes the transaction roll back whole and start again, so the allowance a
 * charge takes is the one left by every charge committed before it, across
 * threads, processes and hosts, and a replay (recovery, a second accounting)
 * finds the charge on the record and changes nothing.
 */
#ifndef EE_BILLING_BILLING_H
#define EE_BILLING_BILLING_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "execengine/storage.h"
#include "quota/quota.h"

/* An ended execution, as billing needs it. Borrowed for the call. */
typedef struct ee__billing_exec {
    const char *workspace;
    const char *user_id;      /* "" when none */
    const char *workflow_id;  /* workflowCatalogId */
    const char *execution_id;
    int64_t ended_at;         /* completedAt, ms: picks the billing month */
    int64_t cost_nano;        /* metered cost of its calls on platform credentials (>= 0) */
    int64_t tokens;
    int64_t exec_ms;
    bool platform_key;        /* false: the customer's own key, charged 0 */
    bool completed;           /* status completed (else failed/cancelled) */
} ee__billing_exec;

/* The charge of one execution and the month it went to. */
typedef struct ee__billing_charge {
    char month[EE__QUOTA_MONTH_NAME_SIZE];
    int64_t cost_nano;           /* the metered cost */
    int64_t markup_nano;         /* platform markup on it (0 for a customer key) */
    int64_t allowance_used_nano; /* taken from the month's free allowance */
    int64_t charged_nano;        /* cost + markup - allowance used */
} ee__billing_charge;

/*
 * Book one execution: its charge (cost x (1 + PLATFORM_API_MARKUP_PERCENTAGE),
 * rounded half-even once, less what is left of the month's
 * FREE_TIER_MONTHLY_ALLOWANCE; 0 for a customer key) into the workspace's
 * month row (the billing month of ended_at; when that month is closed -
 * billed or paid - the first open month after it) and the user's
 * userWorkflowUsage row of that month. Must be called inside
 * ee__storage_atomic() on `storage` (the engine's), by a caller that has
 * made sure the execution was not booked before (the charge on its record):
 * this call itself is not idempotent. *out gets the charge.
 * Returns EE_OK; EE_ECONFLICT/EE_EEXISTS (another writer changed the month
 * row: roll the transaction back and start again); EE_EINVAL (NULL
 * argument, amounts out of range); EE_ESTATE (billing module not open);
 * EE_ECORRUPT (a stored month row does not decode); the storage's statuses.
 */
ee_status ee__billing_apply(ee_engine *engine, ee_storage *storage, const ee__billing_exec *x,
                            ee__billing_charge *out);

#endif
