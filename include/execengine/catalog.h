/*
 * execengine/catalog.h - the workflow catalog: the n8n workflows customers
 * can run, their categories, search, input validation and sync from n8n.
 *
 * The catalog is global (not per workspace): one set of entries and
 * categories per storage. Documents cross the API as JSON text; every
 * `char **out` is owned by the caller (ee_free()) and receives, on failure,
 * the error document of errors.h (NULL only on EE_ENOMEM).
 *
 * Entry (what get, create and update answer):
 *   {"id": "<24 hex>", "n8nWorkflowId": "...", "name": "...",
 *    "description": "...", "category": "<category id>" | null,
 *    "tags": ["..."], "inputSchema": {...} | true | null,
 *    "outputSchema": {...} | null, "isActive": bool, "requiresApiKey": bool,
 *    "estimatedCost": {"nanoUsd": n, "usd": "0.050000000"},
 *    "apiKeyProvider": "openrouter" | "platform",
 *    "emailTemplateId": "<24 hex>" | null,
 *    "credentialTypes": ["openAiApi", ...], "services": ["OpenAI", ...],
 *    "trigger": {"runnable": true, "method", "path", "responseMode", "node"}
 *             | {"runnable": false, "reason": "..."},
 *    "runnable": bool,
 *    "adminEdited": ["name", ...], "n8n": {"active", "versionId",
 *    "updatedAt", "syncedAt", "missing"} | null,
 *    "access": {"mode": "everyone"} | {"mode": "plans", "plans": [...]}
 *            | {"mode": "workspaces", "workspaces": [...]},
 *    "revision": n, "createdAt": ms, "updatedAt": ms}
 * List and search items are the same without "inputSchema" and
 * "outputSchema" (they carry "hasInputSchema" instead); search items add
 * "score". docs/catalog.md describes every field, which of them sync owns
 * and which the admin owns.
 *
 * Visibility. A customer's reads see active entries only; pass
 * EE_CATALOG_INCLUDE_INACTIVE (get) or "includeInactive": true (list,
 * search) for the admin's view.
 *
 * Access. An entry says who may run it ("access", set by the admin, never
 * changed by sync): everyone (the default), the organisations on some
 * plans, or a workspace allow-list. The reads that take a principal - get,
 * list, search, validate_input - answer for that principal's workspace: an
 * entry it may not run is EE_ENOTFOUND, as an unknown id, and is left out
 * of lists, searches and their totals; their answers omit "access". A NULL
 * principal is the admin's (or the host's own) read: every entry, with
 * "access". The plan is the organisation's subscription's (quota.h).
 *
 * Limits (inputs past them fail with EE_ETOOBIG and store nothing):
 * the EE_CATALOG_*_MAX macros below.
 *
 * Threads: every call may run from any number of threads at once on one
 * engine. Writes through one engine are seen by its next search or list;
 * writes by other processes sharing the storage within
 * EE_CATALOG_INDEX_TTL_MS.
 */
#ifndef EXECENGINE_CATALOG_H
#define EXECENGINE_CATALOG_H

#include "common.h"
#include "engine.h"
#include "errors.h"
#include "principal.h"

EE_BEGIN_DECLS

/* ---- limits --------------------------------------------------------------- */

#define EE_CATALOG_DOC_MAX (1024 * 1024)       /* bytes of an entry/patch/query text */
#define EE_CATALOG_NAME_MAX 200                /* bytes of a name */
#define EE_CATALOG_DESCRIPTION_MAX 10240       /* bytes of a description */
#define EE_CATALOG_TAGS_MAX 50                 /* tags per entry */
#define EE_CATALOG_TAG_MAX 64                  /* bytes of one tag */
#define EE_CATALOG_SCHEMA_MAX (256 * 1024)     /* bytes of inputSchema / outputSchema (compact) */
#define EE_CATALOG_N8N_ID_MAX 128              /* bytes of an n8nWorkflowId */
#define EE_CATALOG_PARAMETERS_MAX (1024 * 1024) /* bytes of parameters to validate */
#define EE_CATALOG_DEPTH_MAX 64                /* nesting of parameters and of queries */
#define EE_CATALOG_COST_MAX_NANO_USD INT64_C(1000000000000000) /* estimatedCost ($1M) */
#define EE_CATALOG_CATEGORY_NAME_MAX 100       /* bytes of a category name */
#define EE_CATALOG_CATEGORY_DESCRIPTION_MAX 1000
#define EE_CATALOG_CATEGORY_ICON_MAX 100
#define EE_CATALOG_ACCESS_PLANS_MAX 64         /* plans an entry's "access" lists */
#define EE_CATALOG_ACCESS_WORKSPACES_MAX 1000   /* workspaces an entry's "access" lists */
#define EE_CATALOG_PAGE_DEFAULT 20             /* list/search page size when unset */
#define EE_CATALOG_PAGE_MAX 100                /* largest page */
#define EE_CATALOG_INDEX_TTL_MS 60000          /* oldest search index used */

/** ee_catalog_get() / ee_catalog_category_get() flag: the admin's view,
 * inactive records included. */
#define EE_CATALOG_INCLUDE_INACTIVE 0x1u

/* ---- workflows ------------------------------------------------------------- */

/**
 * Create an entry (admin). `entry_json` is an object with "n8nWorkflowId"
 * and "name" (required) and optionally "description", "category" (an
 * existing category id or null), "tags", "inputSchema" (a JSON Schema
 * 2020-12: object or boolean; compiled now), "outputSchema", "isActive"
 * (default true), "requiresApiKey" (default false), "estimatedCost"
 * (decimal USD text "0.05", {"usd": "0.05"} or {"nanoUsd": n}),
 * "apiKeyProvider" ("openrouter" | "platform", default "platform"),
 * "emailTemplateId" (24 hex or null), "access" (who may run it:
 * {"mode": "everyone"} (default; null also means it), {"mode": "plans",
 * "plans": [plan names]} (at most EE_CATALOG_ACCESS_PLANS_MAX) or
 * {"mode": "workspaces", "workspaces": [workspace ids]} (at most
 * EE_CATALOG_ACCESS_WORKSPACES_MAX); ids as ee_principal_new() takes them;
 * lists are stored sorted without duplicates). Sync fills the n8n-derived
 * fields (trigger, credentialTypes) later. *out gets the entry.
 *
 * Returns EE_OK; EE_EINVAL (NULL argument, missing or mistyped field,
 * unknown or read-only key, unknown category id, a schema that is not a
 * valid schema - the message names the schema path -, NUL or control
 * characters in a name or tag, a bad "access" - the message names its
 * JSON pointer, e.g. /access/workspaces/2); EE_EPARSE (not JSON, not UTF-8);
 * EE_ETOOBIG (a limit above, nesting); EE_ENOTSUPPORTED (a schema $ref to
 * another document, see execengine/schema.h); EE_EEXISTS (an entry already
 * has this n8nWorkflowId); EE_ENOMEM and the storage statuses (EE_EIO,
 * EE_EBUSY, EE_ENETWORK).
 * On any failure nothing is stored.
 */
EE_API ee_status ee_catalog_create(ee_engine *engine, const char *entry_json, char **out);

/**
 * One entry by id, as `principal` sees it (NULL: the admin's read, with
 * "access"). Without EE_CATALOG_INCLUDE_INACTIVE an inactive entry is not
 * found; neither is one the principal may not run. Returns EE_OK; EE_EINVAL
 * (NULL engine, id or out, id not 24 hex characters, unknown flag);
 * EE_ENOTFOUND; EE_ECORRUPT; EE_ENOMEM and the storage statuses.
 */
EE_API ee_status ee_catalog_get(ee_engine *engine, const ee_principal *principal,
                                const char *workflow_id, unsigned flags, char **out);

/**
 * Change some fields of an entry (admin): `patch_json` holds the keys of
 * ee_catalog_create() to change (null clears an optional one) except
 * "n8nWorkflowId", and optionally "revision": the revision the caller
 * read. With "revision", a stale one fails with EE_ECONFLICT; without
 * it, a concurrent write is retried on the fresh record (up to 32
 * attempts with a random backoff of up to 64 ms, then EE_ECONFLICT). Fields that sync also derives ("name", "description",
 * "category", "tags", "isActive", "requiresApiKey", "apiKeyProvider") are
 * marked admin-edited: sync keeps them until n8n changes them itself.
 * *out gets the updated entry. Returns the statuses of ee_catalog_create()
 * (except EE_EEXISTS) plus EE_ENOTFOUND and EE_ECONFLICT; on failure
 * nothing is stored.
 */
EE_API ee_status ee_catalog_update(ee_engine *engine, const char *workflow_id,
                                   const char *patch_json, char **out);

/**
 * A page of the entries `principal` may run (NULL: every entry, the
 * admin's view of access). `query_json` (may be NULL) holds optional:
 *   "category": "<id>", "tags": ["a", "b"] (entries having all of them,
 *   case-insensitive), "isActive": bool and "includeInactive": bool (the
 *   admin's view; "isActive": false needs it), "requiresApiKey": bool,
 *   "n8nWorkflowId": "...", "sort": "name" | "createdAt" | "updatedAt"
 *   (default "name"), "order": "asc" | "desc" (default "asc"),
 *   "limit": 1..EE_CATALOG_PAGE_MAX, "cursor": a previous nextCursor.
 * *out gets {"data": [item, ...], "total": n (matching entries),
 * "nextCursor": "..." | null}. Pages are keyset-paginated: every entry
 * present throughout is returned exactly once across pages.
 * Returns EE_OK; EE_EINVAL (unknown key, bad value, a cursor that is
 * malformed or from another query or workspace); EE_EPARSE; EE_ETOOBIG;
 * EE_ECORRUPT (the organisation's stored subscription); EE_ENOMEM and
 * the storage statuses.
 */
EE_API ee_status ee_catalog_list(ee_engine *engine, const ee_principal *principal,
                                 const char *query_json, char **out);

/**
 * Search by words across name, description and tags: case-insensitive,
 * every word matched as a prefix, ranked (name over tags over
 * description; whole words over prefixes) among the entries `principal`
 * may run (NULL: every entry). `query_json` holds "q" (the
 * words, at most 512 bytes) and the filters, "limit" and "cursor" of
 * ee_catalog_list() (no "sort"/"order": results are ranked).
 * *out gets {"data": [item + "score", ...], "total": n, "nextCursor"}.
 * Returns the statuses of ee_catalog_list(); EE_EINVAL also for a missing
 * "q"; EE_ETOOBIG for a longer one.
 */
EE_API ee_status ee_catalog_search(ee_engine *engine, const ee_principal *principal,
                                   const char *query_json, char **out);

/**
 * Validate a run's parameters (a JSON object) against the entry's
 * inputSchema (compiled once per entry revision and cached), after
 * filling in the schema's defaults. The entry must be active and open to
 * `principal` (NULL: the admin's or host's own check, any entry).
 * On EE_OK *out gets the parameters with defaults applied. On
 * EE_EVALIDATION *out is the error document whose detail is the report
 * {"valid": false, "errors": [{"instancePath", "schemaPath", "keyword",
 * "message"}, ...]} (JSON pointers). An entry without inputSchema accepts
 * any object.
 * Returns EE_OK; EE_EVALIDATION; EE_EINVAL (NULL argument, bad id,
 * parameters not an object); EE_ENOTFOUND (no such active entry, or not
 * one the principal may run);
 * EE_EPARSE (not JSON, not UTF-8); EE_ETOOBIG (over
 * EE_CATALOG_PARAMETERS_MAX bytes, nested deeper than EE_CATALOG_DEPTH_MAX,
 * or the evaluation's work bound); EE_ECORRUPT (a stored schema no longer
 * compiles); EE_ENOMEM and the storage statuses.
 */
EE_API ee_status ee_catalog_validate_input(ee_engine *engine, const ee_principal *principal,
                                           const char *workflow_id,
                                           const char *parameters_json, char **out);

/**
 * Sync the catalog from the engine's n8n (N8N_BASE_URL, N8N_API_KEY):
 * list every workflow (all pages), read each with its nodes, upsert it by
 * n8nWorkflowId, derive its credential types, whether it needs an LLM key
 * (data/integrations.json), its category (rules of data/categories.json;
 * the categories it names are created when missing) and its webhook
 * trigger; entries whose workflow disappeared (or was archived) are
 * deactivated. Admin-edited fields are kept (docs/catalog.md). Concurrent
 * syncs on one engine run one after the other.
 * *out_report gets
 *   {"added": [{"id", "n8nWorkflowId", "name"}], "updated": [... + "fields"],
 *    "deactivated": [...], "notRunnable": [{"id", "n8nWorkflowId", "name",
 *    "reason"}], "unchanged": n, "errors": [{"n8nWorkflowId", "status",
 *    "message"}], "categoriesCreated": ["name"], "changed": bool}
 * A workflow that could not be read is listed in "errors" and left as it
 * was (never deactivated for it).
 * Returns EE_OK; EE_ESTATE (no n8n client: N8N_API_KEY is not set);
 * EE_EIO (a data file is missing); EE_EINVAL/EE_EPARSE (a data file is
 * malformed: the message names it); the n8n client's statuses for the
 * listing (EE_EAUTH, EE_ENETWORK, EE_ETIMEOUT, EE_EUPSTREAM, EE_EPARSE...,
 * nothing changed then); EE_ENOMEM and the storage statuses.
 */
EE_API ee_status ee_catalog_sync(ee_engine *engine, char **out_report);

/* ---- categories ---------------------------------------------------------------- */

/**
 * Create a category (admin): {"name" (required, unique), "description",
 * "icon", "sortOrder" (integer, default 0), "isActive" (default true)}.
 * *out gets {"id", "name", "description", "icon", "sortOrder", "isActive",
 * "revision", "createdAt", "updatedAt"}.
 * Returns EE_OK; EE_EINVAL (missing, mistyped, unknown key); EE_EPARSE;
 * EE_ETOOBIG; EE_EEXISTS (the name is taken); EE_ENOMEM and the storage
 * statuses. On failure nothing is stored.
 */
EE_API ee_status ee_catalog_category_create(ee_engine *engine, const char *category_json,
                                            char **out);

/** One category by id; inactive ones only with EE_CATALOG_INCLUDE_INACTIVE.
 * Statuses as ee_catalog_get(). */
EE_API ee_status ee_catalog_category_get(ee_engine *engine, const char *category_id,
                                         unsigned flags, char **out);

/** Change some fields of a category (admin), with optional "revision" as
 * ee_catalog_update(). Statuses as ee_catalog_category_create() plus
 * EE_ENOTFOUND and EE_ECONFLICT. */
EE_API ee_status ee_catalog_category_update(ee_engine *engine, const char *category_id,
                                            const char *patch_json, char **out);

/**
 * Every category ordered by sortOrder, then name: `query_json` (may be
 * NULL) {"includeInactive": bool}. *out gets {"data": [category, ...]}.
 * Returns EE_OK; EE_EINVAL; EE_EPARSE; EE_ENOMEM and the storage statuses.
 */
EE_API ee_status ee_catalog_category_list(ee_engine *engine, const char *query_json, char **out);

EE_END_DECLS

#endif
