/*
 * lib/cost/cost.h - the cost module's typed interface for the other modules:
 * a run's estimate, its actual cost from metered calls, and its charge.
 *
 * Tier: semi-private - for other modules of the library (the execution
 * pipeline accounts a run with it); C types and ee__cost_* functions; no
 * JSON. Never installed. The public calls of include/execengine/cost.h
 * (ee_cost_charge_calc(), ee_cost_charge(), the "charge" of
 * ee_cost_actual()) are adapters over what is declared here; the module's
 * own helpers stay in cost_internal.h.
 *
 * Money is int64 nano-USD; the rounding rule is the public header's (one
 * half-even rounding of cost x (10000 + markupBp) / 10000).
 */
#ifndef EE_COST_COST_H
#define EE_COST_COST_H

#include <stdbool.h>
#include <stdint.h>

#include "execengine/cost.h"

/* What a run's charge is computed from. */
typedef struct {
    int64_t cost_nano;           /* the run's actual cost (>= 0) */
    int64_t markup_bp;           /* platform markup, 0..EE_COST_MARKUP_BP_MAX */
    int64_t allowance_nano;      /* the workspace's monthly free allowance (>= 0) */
    int64_t allowance_used_nano; /* what it used of it before the run (>= 0) */
    bool platform_key;           /* false: the customer's own key, nothing charged */
} ee__cost_charge_input;

/* A run's charge. For a customer key nothing is marked up, taken from the
 * allowance or charged (those figures are 0) and the allowance is untouched
 * (allowance_used_after_nano is the input's used, remaining what is left). */
typedef struct {
    int64_t cost_nano;                 /* the input cost */
    int64_t markup_nano;               /* marked_up_nano - cost_nano */
    int64_t marked_up_nano;            /* round_half_even(cost x (10000 + bp) / 10000) */
    int64_t allowance_used_nano;       /* taken from the free allowance by this run */
    int64_t charged_nano;              /* marked_up_nano - allowance_used_nano */
    int64_t allowance_used_after_nano; /* the workspace's use after the run */
    int64_t allowance_remaining_nano;  /* allowance - used after (>= 0) */
} ee__cost_charge;

/*
 * Compute the charge of `in` into *out. Pure, thread-safe, allocation-free.
 * Returns EE_OK; EE_EINVAL (NULL argument, a negative amount, markup
 * outside 0..EE_COST_MARKUP_BP_MAX, or a result past int64: *out is zeroed).
 */
ee_status ee__cost_charge_compute(const ee__cost_charge_input *in, ee__cost_charge *out);

/* One metered call of a run (what the gateway records). */
typedef struct {
    const char *model;       /* priced by the table when no provider cost; may be NULL then */
    int64_t prompt_tokens;   /* 0..2^53-1 */
    int64_t completion_tokens;
    bool has_provider_cost;  /* the provider reported the cost: it wins */
    int64_t provider_cost_nano;
} ee__cost_usage;

/* The actual cost of a run, with its total tokens. */
typedef struct {
    int64_t cost_nano;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    bool price_unknown; /* never set: ee__cost_actual_compute() allows no fallback */
} ee__cost_actual;

/*
 * The actual cost of `n` metered calls with `table`'s prices: each call
 * costs its provider cost, else tokens x the model's price, summed exactly
 * and rounded once to the nano-USD (as ee_cost_actual()). Thread-safe.
 * Returns EE_OK; EE_EINVAL (NULL table or out, NULL usage with n > 0, a
 * negative or too large token count or cost, a call with neither a
 * provider cost nor a model); EE_ETOOBIG (more than EE_COST_MAX_NODES
 * calls, totals past int64); EE_EPRICE (a model the table has no price
 * for: the message names it).
 */
ee_status ee__cost_actual_compute(const ee_cost_table *table, const ee__cost_usage *usage,
                                  size_t n, ee__cost_actual *out);

/* A run's pre-run estimate (the figures of ee_cost_estimate()). */
typedef struct {
    int64_t per_run_nano;        /* estimatedCost.perRun */
    int64_t runs_per_month;      /* -1: no projection */
    int64_t per_month_nano;      /* estimatedCost.perMonth; 0 without a projection */
    bool price_unknown;          /* never set: no fallback price is allowed here */
    int64_t predictions_per_run;
    int64_t external_calls;
    int64_t platform_calls;      /* platform_managed_calls */
    int64_t personal_calls;
    int64_t steps;
    int complexity;              /* 0 low, 1 medium, 2 high */
    size_t n_llm_calls;
    size_t n_unknown_node_types;
} ee__cost_estimate;

/*
 * Estimate a run of `workflow_json` (n8n's workflow document, or a list of
 * service names, as ee_cost_estimate() takes it; at most
 * EE_COST_DOC_MAX_BYTES and 64 levels) with `table`; runs_per_month >= 0
 * also projects a month. The same code as ee_cost_estimate(). Thread-safe.
 * Returns EE_OK; EE_EINVAL (NULL argument, runs_per_month outside
 * -1..1e9); EE_EPARSE (not JSON, not a workflow); EE_ETOOBIG; EE_ESTATE (no
 * rules loaded); EE_EPRICE (an LLM node's model has no price); EE_ENOMEM.
 */
ee_status ee__cost_estimate_compute(const ee_cost_table *table, const char *workflow_json,
                                    int64_t runs_per_month, ee__cost_estimate *out);

#endif
