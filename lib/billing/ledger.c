/* Booking one ended execution into its month row and its user's usage row
 * (billing.h: ee__billing_apply). The caller's transaction makes it exact
 * and keyed; this file only computes and writes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing/billing_internal.h"
#include "cost/cost.h"

/* A closed month's late executions go to the next open month; past this
 * many closed months in a row something is wrong (a clock far off). */
#define B_MONTH_HOPS 1200

/* *acc += v (both >= 0); true when the sum would pass int64 (then *acc is
 * unchanged). A run's figures are each within int64 (its cost under the
 * run budget, its tokens as the providers reported them), but a month adds
 * up every run of the workspace. */
static bool sum_in(int64_t *acc, int64_t v)
{
    int64_t sum;
    if (__builtin_add_overflow(*acc, v, &sum))
        return true;
    *acc = sum;
    return false;
}

static ee_status add_workflow(b_month *m, const char *wf, const ee__billing_exec *x,
                              const ee__billing_charge *c)
{
    b_wf *f = NULL;
    for (size_t i = 0; i < m->nwf && f == NULL; i++)
        if (strcmp(m->wf[i].id, wf) == 0)
            f = &m->wf[i];
    if (f == NULL) {
        if (m->nwf == m->capwf) {
            size_t cap = m->capwf != 0 ? m->capwf * 2 : 8;
            b_wf *n = realloc(m->wf, cap * sizeof *n);
            if (n == NULL)
                return ee__error(EE_ENOMEM, "out of memory booking an execution");
            m->wf = n;
            m->capwf = cap;
        }
        f = &m->wf[m->nwf++];
        memset(f, 0, sizeof *f);
        snprintf(f->id, sizeof f->id, "%s", wf);
    }
    /* within int64: a line is part of its month's totals, checked first */
    f->executions++;
    f->cost += c->cost_nano;
    f->markup += c->markup_nano;
    f->charged += c->charged_nano;
    f->tokens += x->tokens;
    return EE_OK;
}

/* The user's usage row of `period` (userWorkflowUsage: user x workflow x
 * period - the billing month, and B_PERIOD_ALL for all time), by atomic
 * increments; lastExecutedAt only moves forward. */
static ee_status add_usage(ee_storage *sto, const ee__billing_exec *x, const ee__billing_charge *c,
                           const char *period, int64_t now)
{
    const char *user = x->user_id != NULL ? x->user_id : "";
    ee_storage_eq key[3] = {{"userId", user}, {"workflowCatalogId", x->workflow_id},
                            {"period", period}};
    ee_storage_inc inc[6] = {{"totalExecutions", 1},
                             {"completedExecutions", x->completed ? 1 : 0},
                             {"totalCost", c->cost_nano},
                             {"totalCharged", c->charged_nano},
                             {"totalTokens", x->tokens},
                             {"lastExecutedAt", 0}};
    int64_t totals[6];
    ee_status st = ee_storage_increment(sto, B_COLL_USAGE, x->workspace, key, 3, inc, 6, now,
                                        totals);
    if (st != EE_OK || x->ended_at <= totals[5])
        return st;
    /* in the caller's transaction: the row is ours until it commits */
    ee_storage_inc last = {"lastExecutedAt", x->ended_at - totals[5]};
    return ee_storage_increment(sto, B_COLL_USAGE, x->workspace, key, 3, &last, 1, now, NULL);
}

ee_status ee__billing_apply(ee_engine *engine, ee_storage *sto, const ee__billing_exec *x,
                            ee__billing_charge *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    b_state *st = ee__billing_state(engine);
    if (st == NULL)
        return ee__error(EE_ESTATE, "billing: the module is not open");
    if (sto == NULL || x == NULL || out == NULL || x->workspace == NULL ||
        x->workflow_id == NULL || x->execution_id == NULL)
        return ee__error(EE_EINVAL, "billing: NULL argument");
    if (x->cost_nano < 0 || x->tokens < 0)
        return ee__error(EE_EINVAL, "billing: execution %s has a negative cost or token count",
                         x->execution_id);
    int64_t now = ee_engine_now_ms(engine);
    int64_t at = x->ended_at > 0 ? x->ended_at : now;
    b_month m;
    char name[EE__QUOTA_MONTH_NAME_SIZE];
    for (int hop = 0;; hop++) {
        if (hop == B_MONTH_HOPS)
            return ee__error(EE_ESTATE, "billing: execution %s: %d closed months in a row after "
                             "its own", x->execution_id, B_MONTH_HOPS);
        ee__quota_month_name(st->billing_day, at, name);
        ee_status s = ee__billing_month_load(sto, x->workspace, name, &m);
        if (s != EE_OK)
            return s;
        if (!m.exists || m.status == B_PENDING)
            break;
        /* closed (billed or paid): frozen; the charge goes to the next month */
        int64_t from, to;
        ee__quota_month(st->billing_day, at, &from, &to);
        at = to;
        ee__billing_month_clear(&m);
    }
    if (!m.exists)
        ee__billing_month_init(st, x->workspace, name, now, &m);
    ee__cost_charge_input in = {x->cost_nano, st->markup_bp, m.allowance, m.allowance_used,
                                x->platform_key};
    ee__cost_charge c;
    ee_status s = ee__cost_charge_compute(&in, &c);
    if (s != EE_OK) {
        ee__billing_month_clear(&m);
        return s;
    }
    snprintf(out->month, sizeof out->month, "%s", name);
    /* the platform's cost: a customer key's calls cost the platform nothing */
    out->cost_nano = x->platform_key ? c.cost_nano : 0;
    out->markup_nano = c.markup_nano;
    out->allowance_used_nano = c.allowance_used_nano;
    out->charged_nano = c.charged_nano;
    m.executions++;
    m.completed += x->completed ? 1 : 0;
    m.platform_execs += x->platform_key ? 1 : 0;
    m.customer_execs += x->platform_key ? 0 : 1;
    bool over = false;
    over |= sum_in(&m.cost, out->cost_nano);
    over |= sum_in(&m.markup, out->markup_nano);
    over |= sum_in(&m.charged, out->charged_nano);
    over |= sum_in(&m.allowance_used, out->allowance_used_nano);
    over |= sum_in(&m.tokens, x->tokens);
    over |= sum_in(&m.exec_ms, x->exec_ms > 0 ? x->exec_ms : 0);
    m.updated_at = now;
    s = over ? ee__error(EE_ETOOBIG, "billing: execution %s would take the totals of month "
                                     "%s past int64 (nano-USD or tokens)", x->execution_id, name)
             : add_workflow(&m, x->workflow_id, x, out);
    if (s == EE_OK)
        s = ee__billing_month_store(sto, &m);
    ee__billing_month_clear(&m);
    if (s == EE_OK)
        s = add_usage(sto, x, out, out->month, now);
    if (s == EE_OK)
        s = add_usage(sto, x, out, B_PERIOD_ALL, now);
    if (s != EE_OK)
        memset(out, 0, sizeof *out);
    return s;
}
