/* The billing module's own declarations: its per-engine state and the
 * month row (platformUsageBilling, the workspace-wide row: userId ""). */
#ifndef EE_BILLING_INTERNAL_H
#define EE_BILLING_INTERNAL_H

#include <jansson.h>

#include "billing/billing.h"
#include "engine/engine.h"

#define B_COLL_MONTH "platformUsageBilling"
#define B_COLL_USAGE "userWorkflowUsage"
/* The period of a usage row that counts every month (the all-time
 * userWorkflowUsage row), beside the one row per billing month. */
#define B_PERIOD_ALL "all"
#define B_COLL_EXEC "workflowExecutions"

typedef struct b_state {
    ee_engine *engine;
    int64_t markup_bp;      /* PLATFORM_API_MARKUP_PERCENTAGE, basis points */
    int64_t allowance_nano; /* FREE_TIER_MONTHLY_ALLOWANCE */
    int billing_day;        /* BILLING_CYCLE_DAY */
} b_state;

b_state *ee__billing_state(ee_engine *engine);

typedef enum { B_PENDING, B_BILLED, B_PAID } b_status;
const char *ee__billing_status_name(b_status s);

/* One workflow's part of a month. */
typedef struct b_wf {
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    int64_t executions, cost, markup, charged, tokens;
} b_wf;

/* A workspace's month, typed. */
typedef struct b_month {
    bool exists;
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    int64_t revision;
    char workspace[EE_STORAGE_WORKSPACE_MAX + 1];
    char month[EE__QUOTA_MONTH_NAME_SIZE];
    b_status status;
    int64_t period_start, period_end, allowance;
    int64_t created_at, updated_at, billed_at, paid_at;
    /* usage */
    int64_t executions, completed, platform_execs, customer_execs;
    int64_t cost, markup, charged, tokens, allowance_used, exec_ms;
    b_wf *wf;
    size_t nwf, capwf;
} b_month;

void ee__billing_month_clear(b_month *m);

/* Read the month row `name` of `workspace` into *m (m->exists false, its
 * fields zero, when there is none). EE_OK, EE_ECORRUPT, storage statuses. */
ee_status ee__billing_month_load(ee_storage *sto, const char *workspace, const char *name,
                                 b_month *m);
/* Decode a stored row. */
ee_status ee__billing_month_decode(const ee_storage_row *row, b_month *m);
/* Insert (m->exists false) or replace at m->revision. EE_ECONFLICT /
 * EE_EEXISTS when another writer came first. */
ee_status ee__billing_month_store(ee_storage *sto, b_month *m);
/* A fresh pending month `name` for `workspace`. */
void ee__billing_month_init(const b_state *st, const char *workspace, const char *name,
                            int64_t now, b_month *m);
/* The month's JSON answer (money also as USD text, dates ISO). */
json_t *ee__billing_month_render(const b_month *m);

#endif
