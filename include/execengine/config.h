/*
 * execengine/config.h - the engine's configuration.
 *
 * An ee_config is a set of options, each named by its environment
 * variable's name (N8N_BASE_URL, MAX_CONCURRENT_EXECUTIONS, EE_STORAGE_URI
 * ...). Options can be listed with ee_config_options_json(), set one by one
 * from text or typed values, or loaded from the environment. Every option
 * has a documented default; an option that was never set reads as its
 * default.
 *
 * Values are validated when set: an unknown key or a bad value returns
 * EE_EINVAL, leaves the config unchanged, and the thread's error message
 * names the key (or the environment variable) and says what was expected.
 * Values of secret options (keys, passwords, the encryption secret) are
 * never echoed in a message, a summary or a log line, and are wiped from
 * memory when replaced or freed. A rejected value of any option is quoted
 * only as far as its type makes safe (a plain number; a URI's scheme, host
 * and port, never its userinfo; an email's domain), since it may be a
 * password set in the wrong variable. An API-key option (type
 * "secret-key": PLATFORM_*_KEY, N8N_API_KEY) goes into HTTP headers as it
 * is, so it takes keys of printable ASCII without spaces (bytes 0x21 to
 * 0x7E), several of them comma-separated (spaces around a comma are
 * allowed).
 *
 * Alternative names are honoured when an engine opens: DATABASE_TYPE,
 * DATABASE_PATH, DATABASE_HOST/PORT/NAME/USER/PASSWORD build the storage
 * URI when EE_STORAGE_URI is not set, and FLOWISE_SECRETKEY_OVERWRITE is
 * API_KEY_ENCRYPTION_SECRET's other name; a conflict between them makes
 * ee_engine_open() fail with EE_EINVAL naming both options.
 *
 * Threads: an ee_config is used by one thread at a time; it may move
 * between threads. ee_engine_open() copies it, so it may be changed or freed
 * afterwards without affecting open engines.
 */
#ifndef EXECENGINE_CONFIG_H
#define EXECENGINE_CONFIG_H

#include "common.h"
#include "errors.h"
#include "log.h"

EE_BEGIN_DECLS

typedef struct ee_config ee_config;

/**
 * Reads the engine's clock: milliseconds since the Unix epoch, UTC.
 * Called from any thread, concurrently; must be cheap and must not fail,
 * and must not call back into the engine.
 * The engine never calls it while holding a lock another thread's engine
 * call may wait for (a storage transaction, the catalog's index build, an
 * idempotency key's submit): it reads the clock before taking one, and
 * every write of one transaction carries that one reading. So a callback
 * may wait for another thread - a binding that runs it on an event-loop
 * thread, say - even while that thread is inside an engine call, as long
 * as that call does not itself wait for the calling thread (ee_exec_run(),
 * ee_exec_wait(), ee_engine_close() wait for the workers).
 */
typedef int64_t (*ee_clock_fn)(void *payload);

/**
 * Create a config holding every default. *out is owned by the caller
 * (ee_config_free()). Returns EE_OK, EE_EINVAL (out is NULL), EE_ENOMEM.
 */
EE_API ee_status ee_config_new(ee_config **out);

/** Free a config, wiping secret values. Accepts NULL. */
EE_API void ee_config_free(ee_config *cfg);

/**
 * Copy a config (values, clock and log callback). *out is owned by the
 * caller. Returns EE_OK, EE_EINVAL (NULL argument), EE_ENOMEM.
 */
EE_API ee_status ee_config_copy(ee_config **out, const ee_config *cfg);

/**
 * Set an option from its text form, as it would appear in the environment:
 * integers in decimal ("50"), money in US dollars ("10", "0.25"),
 * percentages as a decimal ("20", "12.5"), booleans as
 * true/false/1/0/yes/no/on/off, URLs and URIs as text. `value` is copied.
 *
 * Returns EE_OK; EE_EINVAL for a NULL argument, an unknown key, or a value
 * that is malformed or out of range (the message names the key);
 * EE_ETOOBIG for a value longer than 4096 bytes; EE_ENOMEM.
 */
EE_API ee_status ee_config_set(ee_config *cfg, const char *key, const char *value);

/**
 * Set an integer-valued option (integers, booleans as 0/1). Money options
 * take nano-USD; percentage options take basis points (1% = 100).
 * Returns EE_OK; EE_EINVAL for a NULL argument, an unknown key, a key that
 * is not integer-valued, or a value out of range.
 */
EE_API ee_status ee_config_set_int64(ee_config *cfg, const char *key, int64_t value);

/**
 * Restore an option to its default (and wipe a secret value).
 * Returns EE_OK; EE_EINVAL for a NULL argument or an unknown key.
 */
EE_API ee_status ee_config_unset(ee_config *cfg, const char *key);

/**
 * Load every option whose environment variable is set in the process
 * environment (getenv). Variables that are unset are left alone; an empty
 * value counts as unset. The first bad value stops the load with EE_EINVAL
 * and a message naming the variable; options loaded before it keep their
 * new values. Not thread-safe against concurrent setenv() by the host.
 * Returns EE_OK, EE_EINVAL, EE_ETOOBIG, EE_ENOMEM.
 */
EE_API ee_status ee_config_load_env(ee_config *cfg);

/**
 * As ee_config_load_env(), from a NULL-terminated array of "NAME=value"
 * strings shaped like `environ`. Entries whose NAME is not an option are
 * ignored. Thread-safe with respect to the process environment.
 */
EE_API ee_status ee_config_load_envp(ee_config *cfg, const char *const *envp);

/**
 * Read an integer-valued option (after defaults): money in nano-USD,
 * percentages in basis points, booleans as 0/1.
 * Returns EE_OK; EE_EINVAL for a NULL argument, an unknown key, or a key
 * that is not integer-valued.
 */
EE_API ee_status ee_config_get_int64(const ee_config *cfg, const char *key, int64_t *out);

/**
 * Read a text option (after defaults) as a new string owned by the caller
 * (ee_free()); *out is NULL when the option has no value and no default.
 * Returns EE_OK; EE_EINVAL for a NULL argument or an unknown key; EE_EPERM
 * for a secret option (secrets cannot be read back); EE_ENOMEM.
 */
EE_API ee_status ee_config_get_string(const ee_config *cfg, const char *key, char **out);

/**
 * Whether an option was set explicitly (1) or holds its default (0).
 * Returns EE_OK, or EE_EINVAL for a NULL argument or an unknown key.
 */
EE_API ee_status ee_config_is_set(const ee_config *cfg, const char *key, int *out);

/**
 * Every option the library knows, as a JSON array of
 * {"name", "type", "default", "secret", "inEffect", "min", "max",
 * "description"} (default as text; min/max only for numeric options;
 * inEffect false for an option that is parsed and checked but has no
 * effect yet). *out is owned by the
 * caller (ee_free()). Returns EE_OK, EE_EINVAL (out is NULL), EE_ENOMEM.
 */
EE_API ee_status ee_config_options_json(char **out);

/**
 * The config's values as a JSON object keyed by option name. Secret
 * options show only whether they are set ("set"/"unset") and, for API keys
 * at least 16 characters long, their last four characters ("…abcd"); money
 * shows nano-USD and a decimal string. *out is owned by the caller; on
 * failure it receives an error document (see errors.h).
 * Returns EE_OK, EE_EINVAL, EE_ENOMEM.
 */
EE_API ee_status ee_config_summary_json(const ee_config *cfg, char **out);

/**
 * Replace the clock (default: the system's real-time clock). `fn` NULL
 * restores the default. `payload` is borrowed and must outlive every engine
 * opened from this config. Returns EE_OK or EE_EINVAL (cfg is NULL).
 */
EE_API ee_status ee_config_set_clock(ee_config *cfg, ee_clock_fn fn, void *payload);

/**
 * Install the log callback and the most verbose level it receives (lines
 * above `min_level` are not formatted at all). `fn` NULL turns logging off.
 * `payload` is borrowed and must outlive every engine opened from this
 * config. Returns EE_OK, or EE_EINVAL (cfg NULL, level out of range).
 */
EE_API ee_status ee_config_set_log(ee_config *cfg, ee_log_fn fn, ee_log_level min_level,
                                   void *payload);

EE_END_DECLS

#endif
