/* The credentials module's per-engine state: opened and closed by ee_engine_open()
 * and ee_engine_close() (see ee__module in core/core.h). */
#include "core/core.h"

static ee_status credentials_open(ee_engine *engine, void **state_out)
{
    (void)engine;
    *state_out = NULL; /* no per-engine state yet */
    return EE_OK;
}

static void credentials_close(void *state)
{
    (void)state;
}

const ee__module ee__credentials_module = {"credentials", credentials_open, credentials_close};
