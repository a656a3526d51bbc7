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

/** The version of ee_engine_parts this header describes. */
#define EE_ENGINE_PARTS_VERSION 1

/**
 * Parts a host plugs into an engine in place of those the config
 * describes (ee_engine_open_parts()). Zero-initialise it, set `version` to
 * EE_ENGINE_PARTS_VERSION and fill what you supply; a NULL field (a NULL
 * clock) means "from the config, as ee_engine_open() does". Later versions
 * only append fields (room for a cost table), so a host built against this
 * header keeps working with a newer library.
 *
 * Ownership: every part is borrowed. The engine never frees one; the host
 * keeps each alive, and does not use it in a way that breaks the engine's
 * use, until ee_engine_close() has returned, then frees it.
 *
 *   storage    where every module keeps its records, instead of
 *              EE_STORAGE_URI / DATABASE_* (not migrated by the engine:
 *              ee_storage_new_custom() tables manage their own schema).
 *              With a host storage the host also says which counters
 *              quota uses - `counters`, or EE_COUNTERS_URI (redis://...,
 *              or memory: when one process uses the storage) - since the
 *              engine cannot tell whether other processes share it and
 *              must not count per process where they do: without either
 *              the open is refused (EE_EINVAL).
 *   counters   quota admission's counters, instead of EE_COUNTERS_URI.
 *   transport  every HTTP request the engine makes: the engine's own n8n
 *              client (built over it when N8N_API_KEY is set and `n8n` is
 *              NULL), OpenRouter key validation, model prices.
 *   n8n        the n8n client catalog sync uses, instead of one built from
 *              N8N_BASE_URL and N8N_API_KEY (given, it needs no key set).
 *   clock      the engine's clock (ee_engine_now_ms()), called with
 *              `clock_payload`, instead of the config's
 *              (ee_config_set_clock()).
 */
typedef struct ee_engine_parts {
    unsigned version;
    /* The handles of storage.h, counters.h, transport.h and n8n.h (named
     * by their struct tags so this header needs none of those). */
    struct ee_storage *storage;
    struct ee_counters *counters;
    struct ee_transport *transport;
    struct ee_n8n *n8n;
    ee_clock_fn clock;
    void *clock_payload;
} ee_engine_parts;

/**
 * Open an engine from `cfg` (copied, as ee_engine_open()) with the parts
 * in `parts` (borrowed, see ee_engine_parts; NULL: none, the same as
 * ee_engine_open()). The parts the host does not give are opened from the
 * config and closed by ee_engine_close(); the host's are not.
 *
 * *out is owned by the caller (ee_engine_close()); it is NULL on failure.
 * Returns EE_OK; EE_EVERSION (parts->version is 0 or newer than
 * EE_ENGINE_PARTS_VERSION; nothing is opened); EE_EINVAL (a host storage
 * with neither host counters nor EE_COUNTERS_URI); otherwise what
 * ee_engine_open() returns: EE_EINVAL, EE_ENOMEM, and from the parts opened
 * from the config or a module's first use of the host's parts (reading the
 * key check record from a host storage): EE_EIO, EE_ECORRUPT, EE_EVERSION,
 * EE_ENETWORK, EE_EAUTH, EE_EBUSY.
 */
EE_API ee_status ee_engine_open_parts(ee_engine **out, const ee_config *cfg,
                                      const ee_engine_parts *parts);

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
