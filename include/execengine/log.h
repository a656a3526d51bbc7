/*
 * execengine/log.h - the log callback.
 *
 * The library never prints. A host that wants log lines installs a callback
 * on the config (ee_config_set_log()); every engine opened from that config
 * calls it. Before a line reaches the callback, every secret the process's
 * engines know (configured keys and passwords, the encryption secret,
 * decrypted credentials) and anything shaped like a bearer token or API key
 * is replaced by "[REDACTED]".
 */
#ifndef EXECENGINE_LOG_H
#define EXECENGINE_LOG_H

#include "common.h"

EE_BEGIN_DECLS

typedef enum ee_log_level {
    EE_LOG_ERROR = 0,
    EE_LOG_WARN = 1,
    EE_LOG_INFO = 2,
    EE_LOG_DEBUG = 3
} ee_log_level;

/**
 * Receives one log line. `module` names the library module ("core",
 * "storage" ...), `message` is one line without a trailing newline. Both are
 * borrowed for the duration of the call. The callback may be invoked from
 * any thread that uses the engine, concurrently; it must not call back into
 * the engine that logs. A line raised while the engine holds a lock another
 * thread's engine call may wait for (a storage transaction, ...) is queued
 * and delivered on the same thread once the lock is let go (at most 64 such
 * lines; beyond them one line says how many were dropped), so the callback
 * may wait for another thread as ee_clock_fn may (config.h).
 * `payload` is what was given to ee_config_set_log().
 */
typedef void (*ee_log_fn)(ee_log_level level, const char *module,
                          const char *message, void *payload);

/** "error", "warn", "info" or "debug"; "unknown" otherwise. Static string. */
EE_API const char *ee_log_level_name(int level);

EE_END_DECLS

#endif
