/* The billing module's per-engine state and options: opened and closed by
 * ee_engine_open() and ee_engine_close() (see ee__module in engine/engine.h). */
#include <stdlib.h>

#include "billing/billing_internal.h"

b_state *ee__billing_state(ee_engine *engine)
{
    return engine == NULL ? NULL : ee__engine_module(engine, EE__MOD_BILLING);
}

static ee_status billing_open(ee_engine *engine, void **state_out)
{
    *state_out = NULL;
    b_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return ee__error(EE_ENOMEM, "out of memory opening the billing module");
    const ee_config *cfg = ee__engine_config(engine);
    st->engine = engine;
    st->markup_bp = ee__config_int(cfg, "PLATFORM_API_MARKUP_PERCENTAGE");
    st->allowance_nano = ee__config_int(cfg, "FREE_TIER_MONTHLY_ALLOWANCE");
    /* the quota module declares BILLING_CYCLE_DAY: one month for both */
    st->billing_day = (int)ee__config_int(cfg, "BILLING_CYCLE_DAY");
    *state_out = st;
    return EE_OK;
}

static void billing_close(void *state)
{
    free(state);
}

static const ee__option billing_options[] = {
    EE__OPTION("PLATFORM_API_MARKUP_PERCENTAGE", EE__OPT_PERCENT, "20", 0, 100000,
               "Markup on platform-key usage, percent (up to 2 decimals; range in basis points)"),
    EE__OPTION("FREE_TIER_MONTHLY_ALLOWANCE", EE__OPT_MONEY, "10", 0, INT64_C(1000000000000000),
               "Free platform usage per workspace per billing month, USD (up to 9 decimals)"),
};

const ee__module ee__billing_module = {
    "billing", billing_options, sizeof billing_options / sizeof billing_options[0], NULL,
    billing_open, billing_close,
};
