/*
 * The quota suite tests/unit/quota/numbers.c, run again with the host's own
 * counters: every engine it opens is ee_engine_open_parts() with a custom
 * counters table (counting_counters.h: ee_counters_new_custom() over
 * memory counters), so its admissions reserve and finish through the
 * table the host plugged in, and must give the same answers.
 */
#include "counting_counters.h"

static ee_counters *host_counters(void)
{
    counting_counters *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->free_self = true;
    return counting_counters_new(c);
}

#define QT_HOST_COUNTERS host_counters
#include "../quota/numbers.c"
