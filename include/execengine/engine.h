/*
 * execengine/engine.h - the engine handle.
 *
 * An ee_engine is opened from a config and shared by any number of threads
 * at once: every call that takes an engine is thread-safe unless its
 * comment says otherwise. Close it once, after every other call on it has
 * returned.
 */
#ifndef EXECENGINE_ENGINE_H
#define EXECENGINE_ENGINE_H

#include "common.h"
#include "errors.h"
#include "config.h"

EE_BEGIN_DECLS

typedef struct ee_engine ee_engine;

/**
 * Open an engine from `cfg` (copied: the caller keeps ownership of cfg and
 * may free it at once). Opens the storage EE_STORAGE_URI names, else the
 * one the DATABASE_* variables describe (by default a SQLite file under
 * the user's data directory, created with its parent directory if missing)
 * and applies its migrations.
 *
 * *out is owned by the caller (ee_engine_close()); it is NULL on failure.
 * Returns EE_OK; EE_EINVAL (NULL argument, bad URI, EE_STORAGE_URI and a
 * DATABASE_* variable both set, a DATABASE_* variable DATABASE_TYPE does
 * not use, FLOWISE_SECRETKEY_OVERWRITE different from
 * API_KEY_ENCRYPTION_SECRET: the message names both), EE_ENOMEM; from the
 * storage: EE_EIO (file cannot be created or opened), EE_ECORRUPT (not a
 * database), EE_EVERSION (a newer schema than this library knows),
 * EE_ENETWORK (server unreachable), EE_EAUTH (credentials refused),
 * EE_EBUSY.
 */
EE_API ee_status ee_engine_open(ee_engine **out, const ee_config *cfg);

/**
 * Close an engine and free everything it holds, wiping secrets. Accepts
 * NULL. Not thread-safe with respect to other calls on the same engine.
 */
EE_API void ee_engine_close(ee_engine *engine);

/**
 * The engine's clock: milliseconds since the Unix epoch, UTC, read through
 * the clock installed on its config. Returns 0 for a NULL engine.
 */
EE_API int64_t ee_engine_now_ms(const ee_engine *engine);

/**
 * The engine's identity and configuration as JSON:
 * {"version", "storage": {"uri", "backend"}, "counters": {...},
 *  "config": <ee_config_summary_json()>}. Secrets appear only masked.
 * *out is owned by the caller (ee_free()); on failure it receives an error
 * document (errors.h). Returns EE_OK, EE_EINVAL, EE_ENOMEM.
 */
EE_API ee_status ee_engine_summary_json(const ee_engine *engine, char **out);

EE_END_DECLS

#endif
