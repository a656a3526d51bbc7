/*
 * lib/exec/support.h - pieces of the execution pipeline that stand alone
 * (semi-private; C types): dropping secret-looking members from outputs,
 * the result store for large outputs, and the signed completion callback.
 */
#ifndef EE_EXEC_SUPPORT_H
#define EE_EXEC_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "execengine/engine.h"
#include "execengine/errors.h"
#include "execengine/principal.h"

/* ---- secret-looking members -------------------------------------------------- */

/* The names EXEC_SECRET_FIELDS lists (comma-separated; default
 * "password,passwd,token,apiKey,api_key,secret,authorization,accessToken,
 * refreshToken,clientSecret,privateKey,cookie"), compared
 * case-insensitively and ignoring '_' and '-' (and any other byte that is
 * not a letter or digit); a name containing one of them where a word of it
 * ends ("x-api-key", "openaiApiKey", "openaiapikey", "BEARER_TOKEN",
 * "apiKeyId") matches too, a name where none ends ("tokensUsed",
 * "total_tokens") does not. Words end at those separators, at a
 * lower-to-upper case change ("apiKey", "APIKey") and at a letter-digit
 * change. NULL list: the default. EE_OK; EE_EINVAL (more than 64 names or
 * one over 64 bytes); EE_ENOMEM. */
typedef struct ee__secret_names ee__secret_names;
ee_status ee__secret_names_parse(const char *list, ee__secret_names **out);
void ee__secret_names_free(ee__secret_names *names);
/* Remove, at any depth (objects in arrays too), every member whose name
 * matches. Returns how many were dropped. Bounded: depth as the parse
 * (128, the n8n client's); a container deeper than that is emptied, its
 * members counted as dropped. */
size_t ee__drop_secrets(const ee__secret_names *names, json_t *doc);

/* ---- the result store -------------------------------------------------------- */

/* Where an output kept out of its record is. */
typedef struct ee__result_ref {
    char sha256[65];                   /* hex of the bytes */
    int64_t bytes;
    uint64_t storage_resv;             /* the storage quota reservation */
} ee__result_ref;

/* Keep `len` bytes of output of execution `execution_id` of the principal's
 * workspace in the result store (a folder under EXEC_RESULTS_DIR; written to
 * a temporary file, fsync'ed, renamed: never a partial file), its bytes
 * reserved and committed against the workspace's storage quota.
 * A second put of the same execution replaces the file and gives the
 * replaced file's bytes back. len may be 0 (nothing reserved).
 * Returns EE_OK; EE_EQUOTA (storage quota: nothing written); EE_EIO;
 * EE_EINVAL; EE_ENOMEM. */
ee_status ee__results_put(ee_engine *engine, const ee_principal *principal,
                          const char *execution_id, const char *data, size_t len,
                          ee__result_ref *out);
/* Read it back, checking its digest: *data_out (ee_free()) holds *len_out
 * bytes. EE_OK; EE_ECORRUPT (missing or digest mismatch); EE_EIO. */
ee_status ee__results_get(ee_engine *engine, const char *workspace, const char *execution_id,
                          const ee__result_ref *ref, char **data_out, size_t *len_out);
/* Delete it and give its bytes back to the storage quota (of the
 * organisation the file was stored for; ref may be NULL). EE_OK also when
 * the file was already gone. */
ee_status ee__results_delete(ee_engine *engine, const char *workspace,
                             const char *execution_id, const ee__result_ref *ref);
/* Call fn with each workspace that has a folder in the store (retention
 * walks them: the storage has no walk across workspaces); a non-EE_OK
 * answer of fn stops the walk and is returned. A store never written to
 * is empty. EE_OK; EE_EIO. */
ee_status ee__results_each_workspace(ee_engine *engine,
                                     ee_status (*fn)(const char *workspace, void *payload),
                                     void *payload);
/* Tidy one workspace's folder: temporary files a crashed put left, last
 * changed more than temp_age_ms ago (the real clock), are removed with
 * their reservation released; result files last changed more than
 * file_age_ms ago for which has_record() answers false (their record is
 * gone) are deleted as ee__results_delete() does. *removed_out (may be
 * NULL) counts the files removed. EE_OK; EE_EIO; what a release answers. */
ee_status ee__results_sweep(ee_engine *engine, const char *workspace, int64_t temp_age_ms,
                            int64_t file_age_ms,
                            bool (*has_record)(ee_engine *engine, const char *workspace,
                                               const char *execution_id, void *payload),
                            void *payload, uint64_t *removed_out);

/* ---- the signed completion callback ------------------------------------------ */

/* The callback key of one execution: HMAC-SHA256(install secret,
 * "ee-callback-v1:" + execution_id) as 64 hex characters. The install
 * secret is EXEC_CALLBACK_SECRET, else derived from
 * API_KEY_ENCRYPTION_SECRET (HKDF), so every process of an install agrees
 * and nothing is stored. The key goes to the workflow ("ee.callbackKey"):
 * it can sign that execution's callback and nothing else. */
ee_status ee__callback_key(ee_engine *engine, const char *execution_id, char key_hex[65]);

/* Check a callback: X-EE-Timestamp (unix seconds) within window_ms of
 * now_ms, X-EE-Signature "v1=<hex HMAC-SHA256(key, timestamp + '.' + body)>",
 * compared in constant time. The HMAC key is the 64 hex characters as
 * text (what a workflow's Crypto or Code node is given), not the bytes they
 * spell. Returns EE_OK or EE_EAUTH (message says which
 * check failed, never the expected value); EE_EINVAL (a key that is not 64
 * hex digits, a NULL body with a length, a negative window). */
ee_status ee__callback_verify(const char key_hex[65], const char *timestamp,
                              const char *signature, const char *body, size_t body_len,
                              int64_t now_ms, int64_t window_ms);

/* Sign as a workflow would (tests, the example tools). out: "v1=" + 64 hex + NUL. */
ee_status ee__callback_sign(const char key_hex[65], const char *timestamp, const char *body,
                            size_t body_len, char out[68]);

#endif
