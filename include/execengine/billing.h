/*
 * execengine/billing.h - what executions cost the workspace: each run's
 * charge, usage per user and workflow, monthly billing records with their
 * status, exports for a payment system, and admin analytics.
 *
 * Charges. When an execution ends, the engine books it once (keyed by its
 * id: recovery or a second accounting changes nothing):
 *   cost      the platform's metered provider cost of the run (0 when the
 *             run used the customer's own key)
 *   markup    cost x PLATFORM_API_MARKUP_PERCENTAGE (cost x (10000 + bp) /
 *             10000 rounded half-even once, to the nano-USD, minus cost)
 *   allowanceUsed  what the run took of the workspace's free allowance
 *             (FREE_TIER_MONTHLY_ALLOWANCE per billing month): a run that
 *             crosses it is part free, part charged
 *   charged   cost + markup - allowanceUsed (>= 0)
 * The charge is stored on the execution ("charge" member of ee_exec_get(),
 * and of ee_exec_cost()). The allowance never refuses a run; a plan's spend
 * cap (execengine/quota.h, monthlySpendCapNanoUsd) is the separate, optional
 * limit that does. Money is int64 nano-USD, also shown as decimal USD text
 * ("...Usd" members). A month's totals are the sums of its executions'
 * charge parts, so they agree to the nano-dollar.
 *
 * Months. Billing months start at 00:00 UTC on BILLING_CYCLE_DAY and are
 * named "YYYY-MM" after the month they start in. A run belongs to the month
 * it ended in. A closed month (billed or paid) is frozen: a run of it booked
 * late (its accounting ran after the close, e.g. by recovery) goes to the
 * first open month after it, and says so in its charge's "month".
 *
 * Records (collection platformUsageBilling, one per workspace and month,
 * userId ""):
 *   {"_id", "workspaceId", "userId": "", "month": "YYYY-MM",
 *    "billingStatus": "pending"|"billed"|"paid", "periodStart", "periodEnd",
 *    "allowance", "allowanceUsd",
 *    "usage": {"totalExecutions", "completedExecutions", "platformExecutions",
 *              "customerExecutions", "totalCost", "totalMarkup", "totalCharged",
 *              "totalTokens", "allowanceUsed", "allowanceRemaining",
 *              "totalExecutionTimeMs",   (money members also as "...Usd" text)
 *              "byWorkflow": [{"workflowId", "executions", "cost", "markup",
 *                              "charged", "tokens"}, ...]},
 *    "billedAt"?, "paidAt"?, "createdAt", "updatedAt"}     (dates ISO 8601 UTC)
 * Status moves pending -> billed (ee_billing_close_month) -> paid
 * (ee_billing_mark_paid), no other way. Executions and tokens count every
 * booked run (platform and customer keys); cost, markup and charged only
 * the platform's. A run that never started (cancelled while queued) is not
 * booked.
 *
 * Usage (collection userWorkflowUsage, per user x workflow x month):
 *   {"userId", "workflowCatalogId", "period": "YYYY-MM", "totalExecutions",
 *    "completedExecutions", "totalCost", "totalCharged", "totalTokens",
 *    "lastExecutedAt"}
 *
 * A query_json is at most 64 KiB (EE_ETOOBIG past it) and names only the
 * members listed (another is EE_EINVAL, named).
 *
 * Every call is scoped to the principal's workspace. Strings returned in
 * *out are the caller's (ee_free()); on failure *out holds the error
 * document (errors.h), as every JSON call's does. Threads:
 * every call is thread-safe. Time comes from the engine's clock.
 */
#ifndef EXECENGINE_BILLING_H
#define EXECENGINE_BILLING_H

#include "common.h"
#include "errors.h"
#include "engine.h"
#include "principal.h"

EE_BEGIN_DECLS

/**
 * The workspace's current billing month (the one containing now) as the
 * record above; a month without runs yet answers zero totals (and no
 * "_id"). Returns EE_OK; EE_EINVAL (NULL argument); EE_ECORRUPT (a stored
 * record does not decode); EE_ENOMEM; storage statuses.
 */
EE_API ee_status ee_billing_current(ee_engine *engine, const ee_principal *principal,
                                    char **out);

/**
 * One month's record, `month` "YYYY-MM". Returns as ee_billing_current();
 * EE_EINVAL also for a malformed month.
 */
EE_API ee_status ee_billing_month(ee_engine *engine, const ee_principal *principal,
                                  const char *month, char **out);

/**
 * The workspace's billing records, newest first. `query_json` (may be
 * NULL): {"status": "pending"|"billed"|"paid", "limit": 1..100 (default 12),
 * "cursor": "..."}. *out: {"data": [record, ...], "nextCursor": "..." | null}.
 * Returns EE_OK; EE_EINVAL (a bad member, named); EE_EPARSE; EE_ETOOBIG;
 * EE_ECORRUPT; EE_ENOMEM; storage statuses.
 */
EE_API ee_status ee_billing_history(ee_engine *engine, const ee_principal *principal,
                                    const char *query_json, char **out);

/**
 * Close a month that has ended: pending -> billed, billedAt now. Closing a
 * billed month again changes nothing. A month without a record gets one
 * (zero totals), so it is frozen all the same. *out: {"changed": bool,
 * "billing": record}.
 * Who may call it: the library checks no role - a principal only names
 * the workspace whose month it is and the user recorded as the actor of
 * the audit entry (billing.month.billed). The host decides who may close
 * a month and must not expose this call to a workspace's own users
 * (execengine-server only routes it under /api/admin/, role admin).
 * Returns EE_OK; EE_EINVAL (NULL argument, malformed month); EE_ESTATE
 * (the month has not ended yet, or it is already paid); EE_ECONFLICT
 * (changed concurrently too often: retry); storage statuses.
 */
EE_API ee_status ee_billing_close_month(ee_engine *engine, const ee_principal *principal,
                                        const char *month, char **out);

/**
 * Record a billed month's payment: billed -> paid, paidAt now. Marking a
 * paid month again changes nothing. *out as ee_billing_close_month().
 * Who may call it: as ee_billing_close_month() - no role is checked here;
 * the host keeps it to its payment system or administrators
 * (execengine-server: /api/admin/, role admin).
 * Returns EE_OK; EE_EINVAL; EE_ENOTFOUND (no record of that month);
 * EE_ESTATE (the month is pending: close it first); EE_ECONFLICT; storage
 * statuses.
 */
EE_API ee_status ee_billing_mark_paid(ee_engine *engine, const ee_principal *principal,
                                      const char *month, char **out);

/**
 * A closed (billed or paid) month for a payment system. `format` "json":
 * {"workspaceId", "month", "billingStatus", "currency": "USD", "periodStart",
 * "periodEnd", "billedAt", "paidAt"?, "totals": {...usage without
 * byWorkflow}, "lines": [{"workflowId", "executions", "tokens", "cost",
 * "markup", "charged", with "...Usd"}]}. `format` "csv": RFC 4180 text,
 * CRLF line ends, a header line
 *   workspaceId,month,billingStatus,workflowId,executions,tokens,
 *   costNanoUsd,markupNanoUsd,chargedNanoUsd,chargedUsd
 * and one line per workflow (fields quoted when they hold a comma, a quote
 * or a line break; quotes doubled; a text field starting with =, +, -, @,
 * TAB or CR - a spreadsheet formula - gets a leading ' and is quoted,
 * unless it is a plain decimal number such as -5); the lines' sums are the
 * month's totals.
 * Returns EE_OK; EE_EINVAL (NULL argument, malformed month, unknown
 * format); EE_ENOTFOUND (no record of that month); EE_ESTATE (the month is
 * still pending); EE_ENOMEM; storage statuses.
 */
EE_API ee_status ee_billing_export(ee_engine *engine, const ee_principal *principal,
                                   const char *month, const char *format, char **out);

/**
 * Usage rows (userWorkflowUsage: one per user x workflow) of one month
 * (default: the current one), or of all time with "period": "all" (each
 * row the sum of that user and workflow's months, with the latest
 * lastExecutedAt), newest first. `query_json` (may be NULL): {"period":
 * "YYYY-MM" | "all", "userId": "...", "limit": 1..100 (default 50),
 * "cursor": "..."}. *out: {"period", "data": [{"userId",
 * "workflowCatalogId", "period", "totalExecutions", "completedExecutions",
 * "totalCost", "totalCostUsd", "totalCharged", "totalChargedUsd",
 * "totalTokens", "lastExecutedAt"}, ...], "nextCursor": "..." | null}.
 * Both rows are written in the run's booking transaction, once per
 * execution. For month records ask ee_billing_history().
 * Returns as ee_billing_history().
 */
EE_API ee_status ee_billing_usage(ee_engine *engine, const ee_principal *principal,
                                  const char *query_json, char **out);

/**
 * Admin analytics of the workspace's executions created in [from, to).
 * `query_json`: {"from": ms, "to": ms (to - from at most 366 days; default
 * the last 30 days up to now), "granularity": "day"|"week"|"month"
 * (default "day"; weeks start on Monday UTC, months are billing months)}.
 * *out: {"from", "to", "granularity",
 *   "executions": [{"start": ISO, "count": n}, ...]  (buckets with runs),
 *   "totalExecutions", "uniqueUsers", "successRate" (completed / ended, a
 *   decimal text with 4 places, null when none ended),
 *   "averageExecutionTimeMs" (over completed runs; null when none),
 *   "topWorkflows": [{"workflowId", "executions"}, ...] (at most 10),
 *   "email": {"requested", "sent", "deliveryRate"} ("requested" counts
 *   executions a results e-mail was asked for - started with email.to or
 *   queued by ee_email_send_execution() - and "sent" those of them whose
 *   e-mail a server accepted, emailSent; each run once, so the rate
 *   sent / requested is at most 1; null when none was requested),
 *   "spend": {"month", "plan", "allowance", "allowanceUsed", "charged",
 *             "spendCap": null | nano-USD}}   (the current billing month;
 *   "spendCap" is the plan's monthlySpendCapNanoUsd times the
 *   subscription's spend multiplier, an integer, null when the plan has
 *   no cap; "plan" and "spendCap" are null when the quota cannot say)
 * Bounded: at most 200000 executions are read; more is EE_ETOOBIG (ask a
 * shorter range). Returns EE_OK; EE_EINVAL (a bad member, named; the range
 * too long); EE_EPARSE; EE_ETOOBIG; EE_ENOMEM; storage statuses.
 */
EE_API ee_status ee_billing_analytics(ee_engine *engine, const ee_principal *principal,
                                      const char *query_json, char **out);

EE_END_DECLS

#endif
