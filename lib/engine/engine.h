/*
 * lib/engine/engine.h - the engine's assembly (semi-private: shared by the
 * modules the engine assembles, never installed).
 *
 * lib/engine/ is the composition root: the only place that names every
 * module. Each module describes itself with one ee__module - its options,
 * an optional resolve hook for rules across options, and the open/close of
 * its per-engine state - and the engine walks the registry
 * (registry.c): resolve hooks at engine open, then the shared parts
 * (storage, counters, transport, n8n client), then each module's open in
 * registry order; close runs in reverse, and a failing open unwinds what
 * was opened. See docs/architecture.md.
 */
#ifndef EE_ENGINE_ENGINE_H
#define EE_ENGINE_ENGINE_H

#include "core/core.h"
#include "execengine/engine.h"

/* ---- the engine's accessors (engine.c), for every module ------------------ */

/* The engine's private config copy, logger, clock and shared components,
 * for the other modules. Each lives as long as the engine. The engine's
 * handle type is the public execengine/engine.h; nothing of it is core's. */
struct ee_storage;
struct ee_counters;
struct ee_transport;
struct ee_n8n;
const ee_config *ee__engine_config(const ee_engine *engine);
struct ee_storage *ee__engine_storage(const ee_engine *engine);
struct ee_counters *ee__engine_counters(const ee_engine *engine);
struct ee_transport *ee__engine_transport(const ee_engine *engine);
/* NULL when N8N_API_KEY is not configured and the host gave no client. */
struct ee_n8n *ee__engine_n8n(const ee_engine *engine);
const ee__logger *ee__engine_logger(const ee_engine *engine);

/* ---- no host callback under a lock ------------------------------------------ */

/* A hold (core.h, ee__hold_begin()) that also reads the engine's clock once,
 * before the lock is taken: until ee__engine_hold_end(), ee_engine_now_ms()
 * of `engine` on this thread answers that reading without calling the
 * host's clock (and one transaction's writes carry one time). Nestable. */
typedef struct ee__engine_hold {
    const ee_engine *prev_engine;
    int64_t prev_now;
} ee__engine_hold;
void ee__engine_hold_begin(const ee_engine *engine, ee__engine_hold *h);
void ee__engine_hold_end(ee__engine_hold *h);

/* ee__storage_atomic() / ee__storage_atomic_deferred() (storage/storage.h)
 * on the engine's storage inside an engine hold: what the library's
 * modules call, so that neither the clock nor a log callback runs while
 * the storage's write lock is held. */
ee_status ee__engine_atomic(ee_engine *engine, ee_status (*fn)(struct ee_storage *, void *),
                            void *payload);
ee_status ee__engine_atomic_deferred(ee_engine *engine,
                                     ee_status (*fn)(struct ee_storage *, void *),
                                     void *payload);

typedef struct ee__module {
    const char *name;
    /* The module's options, in listing order (may be NULL with 0). */
    const ee__option *options;
    size_t noptions;
    /* Rules across options, run on the engine's private config copy before
     * anything opens (aliases, derived values). NULL: none. Returns EE_OK or
     * a status with a message naming the options. */
    ee_status (*resolve)(ee_config *cfg);
    /* Per-engine state; both NULL for a module that keeps none. */
    ee_status (*open)(ee_engine *engine, void **state_out);
    void (*close)(void *state);
} ee__module;

/* The modules with per-engine state, in opening order: the index of each
 * in the registry and of its state (ee__engine_module()). The audit log
 * opens first and closes last: every other module writes to it. */
enum { EE__MOD_AUDIT, EE__MOD_CREDENTIALS, EE__MOD_CATALOG, EE__MOD_QUOTA, EE__MOD_GATEWAY,
       EE__MOD_BILLING, EE__MOD_NOTIFY,
       EE__MOD_EXEC, EE__MOD_COUNT };

extern const ee__module ee__audit_module;       /* lib/audit/audit.c */
extern const ee__module ee__credentials_module; /* lib/credentials/module.c */
extern const ee__module ee__catalog_module;     /* lib/catalog/module.c */
extern const ee__module ee__quota_module;       /* lib/quota/module.c */
extern const ee__module ee__gateway_module;     /* lib/gateway/module.c */
extern const ee__module ee__billing_module;     /* lib/billing/module.c */
extern const ee__module ee__notify_module;      /* lib/notify/email.c */
extern const ee__module ee__exec_module;        /* lib/exec/module.c */
/* The engine's own options (storage, counters, data dir, n8n, and those of
 * modules that do not exist yet) and the DATABASE_* rule (options.c). */
extern const ee__module ee__engine_own_module;

/* The registry: module `id` (EE__MOD_*). */
const ee__module *ee__engine_registry(int id);

/* Every option of the engine and its modules, in listing order: the
 * engine's own, then each module's in registry order. */
const ee__option_set *ee__engine_options(void);

/* Run every resolve hook on `cfg` (the modules' first, the engine's last).
 * What ee_engine_open() does to its config copy; tests call it on a config
 * to see what the engine would open. */
ee_status ee__engine_config_resolve(ee_config *cfg);

/* The state module `id` returned from its open (NULL if it keeps none). */
void *ee__engine_module(const ee_engine *engine, int id);

#endif
