/*
 * lib/credentials/cred_internal.h - the credentials module's shared state
 * and helpers (never installed). Also the internal interface the execution
 * pipeline uses: ee__cred_resolve() and ee__cred_key_record_usage().
 */
#ifndef EE_CREDENTIALS_CRED_INTERNAL_H
#define EE_CREDENTIALS_CRED_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "credentials/crypto.h"
#include "credentials/credentials.h"
#include "execengine/credentials.h"
#include "execengine/storage.h"
#include "storage/storage.h"
#include "audit/audit.h"
#include "engine/engine.h"

#define EE__CRED_COLL "credentials"
#define EE__KEYS_COLL "customerApiKeys"
#define EE__PLATFORM_WS "platform"
/* Registry documents (workspace EE__WS_REGISTRY_WS, credentialName below,
 * userId = the workspace): which workspaces hold sealed secrets, so
 * rotation can find them (storage has no cross-workspace query). Their own
 * workspace key - no principal can have it ("platform:..." is reserved) -
 * keeps them out of the platform's snapshot, which a submit loads: they
 * were in workspace "platform" before, one more row to read there for
 * every workspace ever registered (moved at open: ee__cred_registry_move). */
#define EE__WS_REGISTRY_NAME "ee:workspace"
#define EE__WS_REGISTRY_WS "platform:workspaces"
/* The key-check record (keycheck.c): workspace "platform", this fixed id
 * (so two processes writing it at once keep exactly one), kind below. */
#define EE__KEYCHECK_ID "6565000000006b6579636b01"
#define EE__KEYCHECK_KIND "ee:keycheck"
/* How long a cached snapshot of a workspace's credential metadata is
 * trusted when another process may have written (ms). Local writes
 * invalidate at once. */
/* ee_cred_route(): the workflow is an n8n workflow document (as large as a
 * catalog entry may be) and the choice a small request. */
#define EE__CRED_ROUTE_JSON_MAX (1024 * 1024)
#define EE__CRED_ROUTE_DEPTH_MAX 128
#define EE__CRED_CACHE_TTL_MS 2000
#define EE__CRED_CACHE_MAX_WS 256
/* Execution ids remembered per customer key for idempotent usage. */
#define EE__KEY_RECENT_EXECUTIONS 256

/* ---- cached metadata of one workspace's credentials ---------------------- */

typedef struct {
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    const char *cred_name; /* borrowed from meta */
    const char *from_email; /* platform Resend credentials, else NULL */
    bool active;
    bool platform;
    uint8_t *env; /* sealed secret (ciphertext: safe to cache) */
    size_t env_len;
} ee__cred_entry;

typedef struct ee__cred_snapshot {
    char workspace[EE_STORAGE_WORKSPACE_MAX + 1];
    uint64_t generation;
    int64_t loaded_at;
    int refs; /* under the state's lock */
    json_t *meta; /* array: owns the strings entries borrow */
    size_t n;
    ee__cred_entry *entries;
    struct ee__cred_snapshot *next;
} ee__cred_snapshot;

typedef int (*ee__cred_rotate_hook)(void *payload, uint64_t rotated_so_far);

typedef struct ee__cred_state {
    ee_engine *engine;
    ee__keyring *ring;
    ee__integrations *cat;
    char **previous; /* wiped on close; registered for redaction */
    size_t n_previous;
    pthread_mutex_t lock;
    uint64_t generation;  /* bumped by every local write (under lock) */
    ee__cred_snapshot *cache;
    size_t n_cached;
    json_t *turns;        /* credentialName -> next pool index (under lock) */
    int64_t validate_timeout_ms;
    ee__cred_rotate_hook rotate_hook;
    void *rotate_payload;
} ee__cred_state;

/* The module state of an open engine. */
ee__cred_state *ee__cred_state_of(const ee_engine *engine);

/* Invalidate every cached snapshot (call after a write). */
void ee__cred_invalidate(ee__cred_state *s);
/* A snapshot of `workspace`'s credentials (refcounted; release it). */
ee_status ee__cred_snapshot_get(ee__cred_state *s, const char *workspace,
                                ee__cred_snapshot **out);
void ee__cred_snapshot_release(ee__cred_state *s, ee__cred_snapshot *snap);
/* The next pool index for `cred_name` (round-robin, thread-safe). */
uint64_t ee__cred_next_turn(ee__cred_state *s, const char *cred_name);

/* ---- the key-check record (keycheck.c) ------------------------------------ */

/* At open: check that the keyring opens storage's key-check record, or
 * write it on a storage that has none (after checking that every sealed
 * platform credential opens). Returns EE_OK; EE_ECRYPTO (this engine's
 * secrets cannot open what storage holds: the engine must not open);
 * EE_ECORRUPT; EE_ECONFLICT; storage statuses. */
ee_status ee__cred_keycheck(ee__cred_state *s);
/* After a complete rotation: re-seal the record under the current key
 * (it must open first). Same statuses. */
ee_status ee__cred_keycheck_reseal(ee__cred_state *s);
/* Whether a stored document's metadata is the key-check record. */
bool ee__cred_is_keycheck(const json_t *meta);

/* ---- documents ------------------------------------------------------------ */

/* A stored document split into its metadata (JSON: ObjectIds as hex text,
 * dates as ms) and its one sealed binary field. */
typedef struct {
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    int64_t revision;
    json_t *meta;
    char sealed_field[32];
    uint8_t *sealed; /* ciphertext */
    size_t sealed_len;
} ee__cdoc;

void ee__cdoc_clear(ee__cdoc *d);
ee_status ee__cdoc_from_bson(const uint8_t *data, size_t len, ee__cdoc *out);
/* Fetch by id. EE_ENOTFOUND when absent. */
ee_status ee__cdoc_get(ee_engine *e, const char *coll, const char *ws, const char *id,
                       ee__cdoc *out);
/* Insert d (d->id must be set: the id is bound into the seal). */
ee_status ee__cdoc_insert(ee_engine *e, const char *coll, const char *ws, const ee__cdoc *d);
/* Replace at d->revision; on EE_OK d->revision is the new one. */
ee_status ee__cdoc_replace(ee_engine *e, const char *coll, const char *ws, ee__cdoc *d);

/* Seal `pt` for (ws, d->id) into d's sealed field named `field`. */
ee_status ee__cdoc_seal(ee__cred_state *s, const char *ws, ee__cdoc *d, const char *field,
                        const char *pt, size_t pt_len);
/* Open d's sealed field: *pt_out is NUL-terminated, free with
 * ee__plaintext_free(pt, len). */
ee_status ee__cdoc_open(ee__cred_state *s, const char *ws, const ee__cdoc *d, uint8_t **pt_out,
                        size_t *pt_len);

/* Before a write replaces d's sealed secret: it must open with our keyring
 * (a write never re-seals, or overwrites, what this engine cannot read).
 * Returns EE_OK (also when d holds nothing sealed); EE_ECRYPTO; the
 * statuses of ee__open(). */
ee_status ee__cred_check_opens(ee__cred_state *s, const char *ws, const ee__cdoc *d);

/* A masked form of a key: "sk-or-…abcd", "…abcd", or "…" when short. */
void ee__cred_mask(const char *key, char out[48]);

/* Ids (hex text) of every document of `coll` in `ws`, oldest first. */
ee_status ee__cred_list_ids(ee_engine *e, const char *coll, const char *ws, json_t **out);

/* Call `fn` for every stored document of workspace "platform" (or `ws`),
 * oldest first (one deleted meanwhile is skipped); the document is cleared
 * after the call. The first status other than EE_OK (listing, reading, or
 * `fn`'s) stops the walk and is returned. */
typedef ee_status (*ee__cred_doc_fn)(ee__cred_state *s, ee__cdoc *d, void *payload);
ee_status ee__cred_each_platform_doc(ee__cred_state *s, ee__cred_doc_fn fn, void *payload);
ee_status ee__cred_each_doc(ee__cred_state *s, const char *ws, ee__cred_doc_fn fn,
                            void *payload);

/* Move registry documents a store written before EE__WS_REGISTRY_WS holds
 * in workspace "platform" to their own workspace (at open; idempotent, and
 * harmless when two processes do it at once: rotation reads both places
 * and counts a workspace once). */
ee_status ee__cred_registry_move(ee__cred_state *s);

/* Make sure the workspace is in the registry rotation walks. */
ee_status ee__cred_register_workspace(ee_engine *e, const char *ws);

/* Parse a JSON request (object) with a bounded size. */
ee_status ee__cred_parse_request(const char *text, const char *what, json_t **out);
/* Wipe a string member of a parsed request before it is freed. */
void ee__cred_wipe_member(json_t *obj, const char *key);

/* ---- for the execution pipeline (and tests) -------------------------------- */

/* One node's credential, decrypted. Strings are borrowed from the resolved
 * set; `secret` is owned by it and wiped when it is freed: the raw key for
 * platform and customer credentials, a JSON object ({"apiKey"} or
 * {"accessToken", "refreshToken"}) for personal ones (is_json). */
typedef struct {
    const char *node_name;
    const char *credential_name;
    const char *credential_id;
    const char *source; /* "platform" | "personal" | "customer" */
    const char *from_email; /* Resend platform credential, else NULL */
    char *secret;
    size_t secret_len;
    bool is_json;
} ee__cred_secret;

typedef struct {
    ee__cred_route *route; /* the typed route (credentials.h): mappings, gaps, ready */
    size_t n;
    ee__cred_secret *items; /* one per mapping, in the route's order */
} ee__cred_resolved;

/*
 * Route `workflow` for the principal (as ee_cred_route(), through
 * ee__cred_route_nodes()) and decrypt the secret of every mapped node with
 * ee__cred_route_open_secret(). Gaps do not fail the call: check
 * r->route->n_gaps. *out is freed with ee__cred_resolved_free(), which wipes
 * every secret. Returns the statuses of ee_cred_route() and EE_ECRYPTO (a
 * stored secret does not open with the configured keys).
 */
ee_status ee__cred_resolve(ee_engine *engine, const ee_principal *principal,
                           const json_t *workflow, const json_t *choice,
                           ee__cred_resolved **out);
void ee__cred_resolved_free(ee__cred_resolved *r);

/* Tests: a callback rotation calls after each re-sealed document (return
 * non-zero to stop the run there, as a crash would). */
void ee__cred_set_rotate_hook(ee_engine *engine, ee__cred_rotate_hook fn, void *payload);
/* Tests: the total timeout of a validation request (default 10 s). */
void ee__cred_set_validate_timeout(ee_engine *engine, int64_t timeout_ms);

/* The audit entry of a committed change to the principal's credential
 * `id` (a customer key, a personal credential): actor, workspace and org
 * from the principal, outcome ok. `detail` is stolen (may be NULL); it
 * names fields, types and verdicts, never a secret. */
void ee__cred_audit(ee_engine *e, const ee_principal *p, ee__audit_action action, const char *id,
                    json_t *detail);

#endif
