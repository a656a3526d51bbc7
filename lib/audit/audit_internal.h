/* The audit module's own files only (audit.c, audit_api.c). */
#ifndef EE_AUDIT_AUDIT_INTERNAL_H
#define EE_AUDIT_AUDIT_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "audit/audit.h"
#include "core/record.h"
#include "engine/engine.h"

typedef struct a_state {
    ee_engine *engine;
    int64_t retention_days; /* AUDIT_RETENTION_DAYS, 0: forever */
    _Atomic uint64_t appended;
    _Atomic uint64_t failed;
    _Atomic uint64_t truncated;
} a_state;

a_state *ee__audit_state(const ee_engine *engine);

/* The stored entry's field map (audit.c). */
extern const ee__record_map ee__audit_map;

/* Whether `name` is one of EE__AUDIT_ACTIONS' names. */
bool ee__audit_action_known(const char *name);

#endif
