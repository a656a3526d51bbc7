/*
 * lib/counters/counters.h - the counters module's semi-private interface:
 * what other modules of the library (the engine) use beyond the public
 * execengine/counters.h. Never installed.
 */
#ifndef EE_COUNTERS_COUNTERS_H
#define EE_COUNTERS_COUNTERS_H

#include "core/core.h"
#include "execengine/counters.h"

/* ee_counters_open_uri() with the engine's logger (it must outlive the
 * handle), which receives the diagnostics of the libraries it uses. `lg`
 * may be NULL. */
ee_status ee__counters_open_uri_logged(ee_counters **out, const char *counters_uri,
                                       const char *storage_uri, const ee__logger *lg);

#endif
