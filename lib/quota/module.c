/* The quota module's per-engine state: opened and closed by ee_engine_open()
 * and ee_engine_close() (see ee__module in core/core.h). */
#include "core/core.h"

static ee_status quota_open(ee_engine *engine, void **state_out)
{
    (void)engine;
    *state_out = NULL; /* no per-engine state yet */
    return EE_OK;
}

static void quota_close(void *state)
{
    (void)state;
}

const ee__module ee__quota_module = {"quota", quota_open, quota_close};
