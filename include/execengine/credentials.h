/*
 * execengine/credentials.h - credentials: customer API keys, the platform
 * credential pool, a workspace's personal credentials, routing with gap
 * detection, key validation against OpenRouter and key rotation.
 *
 * Every secret is stored sealed (AES-256-GCM, a key derived from
 * API_KEY_ENCRYPTION_SECRET, the workspace and record id bound as
 * associated data; see docs/credentials.md). No answer of this module ever
 * holds a secret: keys are shown masked ("sk-or-…abcd", last four
 * characters at most).
 *
 * Documents cross as JSON text. `char **out` parameters receive a document
 * owned by the caller (ee_free()); on failure they receive the error
 * document (errors.h) instead. Calls scoped to a workspace take the
 * principal; another workspace's (or, for customer keys, another user's)
 * records answer EE_ENOTFOUND.
 *
 * Threads: every function may be called from any number of threads at once
 * on the same engine.
 */
#ifndef EXECENGINE_CREDENTIALS_H
#define EXECENGINE_CREDENTIALS_H

#include "common.h"
#include "errors.h"
#include "engine.h"
#include "principal.h"

EE_BEGIN_DECLS

/* ---- customer API keys (customerApiKeys) -------------------------------- */

/**
 * Add a customer API key for the principal's user:
 *   request {"keyName" (or "name"): text 1..200, "provider": "openrouter",
 *            "apiKey" (or "key"): 8..4096 bytes, "isActive"?: bool}
 * The name is 1..200 bytes of UTF-8 without control characters (C0, DEL,
 * C1), as catalog names are. Each member is given in one spelling: a
 * request with both "keyName" and "name", or both "apiKey" and "key", is
 * refused.
 * The key goes into an Authorization header as it is, so it must be
 * printable ASCII without spaces (bytes 0x21 to 0x7E). The key is stored
 * sealed; *out receives the record as every call of this
 * section shows it:
 *   {"id", "userId", "workspaceId", "provider", "keyName", "maskedKey",
 *    "isActive", "lastUsedAt"?, "totalUsage": {"executions", "tokensUsed",
 *    "lastResetAt"}, "lastValidation"?: {...}, "createdAt", "updatedAt"}
 * (times in ms since the epoch). The request is at most 256 KiB (refused
 * on its length, unread, past that) and nests at most 16 levels.
 * Returns EE_OK; EE_EINVAL (NULL argument,
 * malformed request - the message names the field, never the key's value -,
 * a key with a byte outside 0x21..0x7E, a name with a control character,
 * both spellings of one member - the message names both -, a member not
 * listed above - the message names it -, provider not "openrouter");
 * EE_EPARSE
 * (request is not JSON); EE_ETOOBIG (past the size or depth limit);
 * EE_ENOMEM; storage statuses (EE_EIO, EE_EBUSY, EE_ENETWORK).
 */
EE_API ee_status ee_cred_key_add(ee_engine *engine, const ee_principal *principal,
                                 const char *request_json, char **out);

/**
 * The principal's user's keys in the workspace, newest first:
 * {"keys": [<record>...]} (never the key itself). Returns EE_OK, EE_EINVAL,
 * EE_ENOMEM, storage statuses.
 */
EE_API ee_status ee_cred_key_list(ee_engine *engine, const ee_principal *principal, char **out);

/**
 * One key record by id. Returns EE_OK; EE_ENOTFOUND (no such key for this
 * workspace and user); EE_EINVAL; EE_ENOMEM; storage statuses.
 */
EE_API ee_status ee_cred_key_get(ee_engine *engine, const ee_principal *principal,
                                 const char *key_id, char **out);

/**
 * Update a key: patch {"keyName" (or "name")?, "isActive"?, "apiKey" (or
 * "key")? (re-sealed; the previous validation result is cleared)}, each
 * member as in ee_cred_key_add() (one spelling each); *out receives the
 * new record.
 * The patch is bounded like ee_cred_key_add()'s request (256 KiB).
 * Returns EE_OK; EE_ENOTFOUND; EE_EINVAL (malformed patch - a key with a
 * byte outside 0x21..0x7E, a name with a control character, both
 * spellings of one member too -, unknown member);
 * EE_EPARSE; EE_ETOOBIG; EE_ECONFLICT (changed concurrently too often: retry);
 * EE_ENOMEM; storage statuses.
 */
EE_API ee_status ee_cred_key_update(ee_engine *engine, const ee_principal *principal,
                                    const char *key_id, const char *patch_json, char **out);

/** Delete a key. Returns EE_OK, EE_ENOTFOUND, EE_EINVAL, storage statuses. */
EE_API ee_status ee_cred_key_delete(ee_engine *engine, const ee_principal *principal,
                                    const char *key_id);

/**
 * Reset a key's usage totals (executions and tokensUsed to 0, lastResetAt
 * to now); *out receives the record. Returns as ee_cred_key_update().
 */
EE_API ee_status ee_cred_key_reset_usage(ee_engine *engine, const ee_principal *principal,
                                         const char *key_id, char **out);

/**
 * Validate a key against OpenRouter: GET {OPENROUTER_API_URL}/key with the
 * key as bearer token (plus X-Title / HTTP-Referer from OPENROUTER_APP_NAME
 * / OPENROUTER_APP_URL), one attempt. *out receives
 *   {"status": "valid"|"invalid"|"unknown", "httpStatus"?, "reason"?,
 *    "limit"?, "usage"?, "limitRemaining"?, "isFreeTier"?, "checkedAt"}
 * (limit/usage in USD as OpenRouter reports them; limit null = unlimited)
 * and the result is stored on the record as "lastValidation".
 *
 * Returns EE_OK when OpenRouter answered valid (200 with the documented
 * shape) or invalid (401, 403): the answer says which; EE_EUNKNOWN when
 * the outcome could not be established (429, 5xx, timeout, network
 * failure, malformed answer): *out still holds the answer with status
 * "unknown" and a reason, never "invalid"; EE_ENOTFOUND; EE_EINVAL;
 * EE_ECRYPTO (the stored key cannot be decrypted with the configured
 * secrets); EE_ENOMEM; storage statuses.
 */
EE_API ee_status ee_cred_key_validate(ee_engine *engine, const ee_principal *principal,
                                      const char *key_id, char **out);

/* ---- platform credentials (workspace "platform") ------------------------ */

/**
 * Provision the platform pool from the engine's PLATFORM_* options, as
 * data/integrations.json's platformEnv maps them to credential types. A
 * variable may hold several comma-separated keys: each becomes one
 * credential per credential type (a pool used in turn). Idempotent: *out
 * receives {"credentials": [{"id", "credentialName", "source", "slot",
 * "status": "created"|"updated"|"unchanged"|"removed"}], "created",
 * "updated", "unchanged", "removed"}. A credential taken out of rotation
 * stays out. Returns EE_OK; EE_EINVAL; EE_ECRYPTO; EE_ENOMEM; storage
 * statuses.
 */
EE_API ee_status ee_cred_platform_provision(ee_engine *engine, char **out);

/**
 * Take a platform credential out of rotation (active 0) or back in (1).
 * Returns EE_OK; EE_ENOTFOUND; EE_EINVAL; EE_ECONFLICT; storage statuses.
 */
EE_API ee_status ee_cred_platform_set_active(ee_engine *engine, const char *credential_id,
                                             int active);

/**
 * The platform pool: {"credentials": [{"id", "credentialName", "service",
 * "source", "slot", "maskedKey", "isActive", "fromEmail"?, "createdAt",
 * "updatedAt"}]}. Returns EE_OK, EE_EINVAL, EE_ENOMEM, storage statuses.
 */
EE_API ee_status ee_cred_platform_list(ee_engine *engine, char **out);

/* ---- personal credentials ------------------------------------------------ */

/**
 * Store a credential of the principal's workspace for a personal service:
 *   {"credentialName": "gmailOAuth2", "name"?: text,
 *    "type": "apiKey", "apiKey": text}                               or
 *   {"credentialName", "name"?, "type": "oauth2", "accessToken": text,
 *    "refreshToken"?: text, "expiresAt"?: ms, "scopes"?: [text]}
 * "apiKey" and "accessToken" go into HTTP headers as they are, so they must
 * be printable ASCII without spaces (bytes 0x21 to 0x7E). "credentialName"
 * (1..200 bytes) and "name" (at most 200) are UTF-8 without control
 * characters (C0, DEL, C1).
 * With "id" it replaces that credential, else it creates one. *out receives
 * its metadata (as in ee_cred_personal_list()). The request is at most
 * 256 KiB and 16 levels deep. Returns EE_OK; EE_EINVAL (malformed - the
 * message names the member, never a secret's value -, a member not listed
 * above - the message names it -, or a credential type the
 * catalog marks platform-managed); EE_EPARSE; EE_ETOOBIG (past the size or
 * depth limit); EE_ENOTFOUND (id given and absent); EE_ECONFLICT; EE_ENOMEM;
 * storage statuses.
 */
EE_API ee_status ee_cred_personal_put(ee_engine *engine, const ee_principal *principal,
                                      const char *request_json, char **out);

/**
 * The workspace's personal credentials, metadata only:
 * {"credentials": [{"id", "credentialName", "service", "name", "type",
 * "expiresAt"?, "scopes"?, "maskedToken", "userId", "createdAt",
 * "updatedAt"}]}. Returns EE_OK, EE_EINVAL, EE_ENOMEM, storage statuses.
 */
EE_API ee_status ee_cred_personal_list(ee_engine *engine, const ee_principal *principal,
                                       char **out);

/** One personal credential's metadata. Returns EE_OK, EE_ENOTFOUND,
 * EE_EINVAL, EE_ENOMEM, storage statuses. */
EE_API ee_status ee_cred_personal_get(ee_engine *engine, const ee_principal *principal,
                                      const char *credential_id, char **out);

/** Delete a personal credential. Returns EE_OK, EE_ENOTFOUND, EE_EINVAL,
 * storage statuses. */
EE_API ee_status ee_cred_personal_delete(ee_engine *engine, const ee_principal *principal,
                                         const char *credential_id);

/* ---- routing --------------------------------------------------------------- */

/**
 * Decide, for every node of a workflow, which credential it runs with.
 *   workflow_json: {"nodes": [{"name", "type", "credentials"?: {...}}]}
 *                  (an n8n export) or {"nodeNames": ["serper", "gmail"]}
 *   choice_json:   {"useCustomApiKey": bool, "apiKeyId": id} or NULL
 * *out receives {"credentialMappings": [{"nodeName", "credentialId",
 * "credentialName", "source": "platform"|"personal"|"customer",
 * "baseUrlOverride"?}], "gaps": [{"field", "label", "type",
 * "credentialName", "isPersonal", "reason"?}], "unknownNodes": [node type,
 * ...], "ready": bool}. Platform credentials are taken from the pool in
 * turn; a chosen customer key that is inactive, deleted or another
 * workspace's or user's is a gap, never a fall-back to the platform key.
 * baseUrlOverride: the key is another vendor's compatible API and the
 * node's credential must point at that base URL. unknownNodes: node types
 * without configured credentials that the integration catalog neither maps
 * to a service nor lists as needing none; "ready" is false while there are
 * gaps or unknown nodes.
 * Each document is at most 1 MiB (refused on its length, unread, past
 * that) and 128 levels deep; the choice takes no other member (the
 * workflow is n8n's document: its other members are ignored). A credential
 * type name is cut at a character in a gap's "field" (255 bytes) and
 * "label" (319 bytes).
 * Returns EE_OK (with or without gaps); EE_EINVAL (malformed workflow or
 * choice, an unknown member of the choice, a member of the wrong type -
 * "useCustomApiKey" not a boolean, "apiKeyId" not a string (null
 * included), whatever the other member says); EE_EPARSE; EE_ETOOBIG (past the
 * size or depth limit, over 1000 nodes); EE_ENOMEM; storage statuses.
 */
EE_API ee_status ee_cred_route(ee_engine *engine, const ee_principal *principal,
                               const char *workflow_json, const char *choice_json, char **out);

/* ---- rotation ------------------------------------------------------------- */

/**
 * Re-encrypt, under the current API_KEY_ENCRYPTION_SECRET, every stored
 * secret (platform, personal, customer keys) sealed with a previous secret
 * (API_KEY_ENCRYPTION_PREVIOUS_SECRETS). One document at a time with an
 * optimistic replace, so an interrupted run is finished by running it
 * again, and concurrent writers are never overwritten. *out receives
 * {"workspaces", "scanned", "rotated", "current", "failed"}.
 * Returns EE_OK; EE_ECRYPTO (some secrets could not be opened with any
 * configured secret: counted in "failed", the others are rotated);
 * EE_EINVAL; EE_ENOMEM; storage statuses.
 */
EE_API ee_status ee_cred_rotate(ee_engine *engine, char **out);

EE_END_DECLS

#endif
