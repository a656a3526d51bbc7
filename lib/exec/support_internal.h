/*
 * lib/exec/support_internal.h - the exec module's own view of its standalone
 * pieces (lib/exec/support.h): their options, bounds and the install secret
 * behind the callback keys. For lib/exec/ files and their tests only.
 */
#ifndef EE_EXEC_SUPPORT_INTERNAL_H
#define EE_EXEC_SUPPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "execengine/engine.h"

/* ---- options (support_options.c) ---------------------------------------------- */

/* The default of EXEC_SECRET_FIELDS (what ee__secret_names_parse(NULL) uses). */
#define EE__EXEC_SECRET_FIELDS_DEFAULT                                                        \
    "password,passwd,token,apiKey,api_key,secret,authorization,accessToken,refreshToken,"     \
    "clientSecret,privateKey,cookie"

/* The options of the pieces of support.h, as table entries: the exec
 * module's option table lists them with the rest of its own
 *     static const ee__option exec_options[] = { ..., EE__EXEC_SUPPORT_OPTIONS };
 * (ee__exec_support_options is the same entries as a table of their own). */
#define EE__EXEC_SUPPORT_OPTIONS                                                              \
    EE__OPTION("EXEC_SECRET_FIELDS", EE__OPT_STRING, EE__EXEC_SECRET_FIELDS_DEFAULT, 0,         \
               EE__OPT_MAX_TEXT,                                                              \
               "Member names dropped from execution outputs before they are stored, "         \
               "comma-separated (at most 64 names of at most 64 bytes; case, '_' and '-' "    \
               "ignored; a member name matches where a listed name ends one of its words)"),             \
    EE__OPTION("EXEC_RESULTS_DIR", EE__OPT_PATH, NULL, 1, 1024,                               \
               "Directory of the result store (large execution outputs); default: "           \
               "results/ beside the SQLite database file, else "                              \
               "$XDG_DATA_HOME/execengine/results (or ~/.local/share/execengine/results)"),   \
    EE__OPTION("EXEC_CALLBACK_SECRET", EE__OPT_PASSWORD, NULL, 32, EE__OPT_MAX_TEXT,           \
               "Install secret keying the signed completion callbacks (at least 32 bytes; "   \
               "unset: derived from API_KEY_ENCRYPTION_SECRET)")

extern const ee__option ee__exec_support_options[];
extern const size_t ee__exec_support_noptions;

/* ---- secret-looking members (secrets.c) ----------------------------------------- */

#define EE__SECRET_NAMES_MAX 64     /* names in EXEC_SECRET_FIELDS */
#define EE__SECRET_NAME_MAX 64      /* bytes of one name */
/* Deepest nesting ee__drop_secrets() walks: the n8n client's parse bound.
 * Anything deeper (a document built by hand) is emptied, never kept unread. */
#define EE__SECRETS_DEPTH_MAX 128

/* ---- the result store (results.c) ----------------------------------------------- */

/* Longest execution id the store takes (bytes; it is hex-encoded in a name). */
#define EE__RESULTS_ID_MAX 64

/* The directory the store of `engine` uses (EXEC_RESULTS_DIR or its
 * default), into out[cap]. EE_OK or EE_EINVAL (does not fit). */
ee_status ee__results_dir(const ee_engine *engine, char *out, size_t cap);

/* ---- the callback (callback.c) -------------------------------------------------- */

/* The install secret: EXEC_CALLBACK_SECRET as it is (`callback_secret`
 * non-NULL), else HKDF-SHA256(API_KEY_ENCRYPTION_SECRET, info
 * "ee-callback-v1") into out (32 bytes; *len_out says how many bytes of out
 * hold it, at most cap). Wipe it after use. EE_OK; EE_ESTATE (neither is
 * set); EE_ECRYPTO; EE_ETOOBIG (cap too small). Never puts a secret in a
 * message. */
ee_status ee__callback_install_secret(const char *callback_secret,
                                      const char *encryption_secret, uint8_t *out, size_t cap,
                                      size_t *len_out);

#endif
