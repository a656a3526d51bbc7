/*
 * lib/catalog/catalog.h - the catalog module's typed interface for the other
 * modules.
 *
 * Tier: semi-private - for other modules of the library (the execution
 * pipeline reads an entry, validates a run's parameters and routes the
 * entry's credentials with it); C types and ee__catalog_* functions; no
 * JSON in the signatures. Never installed. The public, JSON-at-the-door
 * calls are in include/execengine/catalog.h; catalog_api.c adapts
 * ee_catalog_get() and ee_catalog_validate_input() over what is declared
 * here. The module's own helpers stay in catalog_internal.h.
 *
 * An entry is an owned, immutable snapshot of one stored revision: its
 * strings live as long as the entry, whatever is written to the catalog
 * meanwhile; the compiled input schema is shared with the catalog's schema
 * cache (the entry holds a reference). Free it with ee__catalog_entry_free().
 * An entry may be read from any number of threads.
 */
#ifndef EE_CATALOG_CATALOG_H
#define EE_CATALOG_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "credentials/credentials.h"
#include "execengine/engine.h"
#include "execengine/errors.h"
#include "execengine/principal.h"
#include "execengine/schema.h"

/* How the workflow is started: its production webhook, as sync derived it
 * from the workflow's first enabled Webhook node (ee_n8n_workflow_trigger()). */
typedef struct {
    bool runnable;
    const char *reason;        /* why not runnable, else NULL */
    const char *method;        /* "POST", "GET" ... when runnable, else NULL */
    const char *path;          /* the webhook path (called as {base}/webhook/{path}) */
    const char *node;          /* the Webhook node's name, or NULL */
    const char *response_mode; /* "onReceived" | "lastNode" | ..., or NULL */
    const char *webhook_id;    /* or NULL */
} ee__catalog_trigger;

typedef struct ee__catalog_entry_private ee__catalog_entry_private;

/*
 * A catalog entry as the executor needs it. Entries are global (one catalog
 * for every workspace); visibility is is_active (an inactive entry is found
 * only with EE__CATALOG_ENTRY_INACTIVE) and the entry's access (everyone,
 * some plans or a workspace allow-list: docs/catalog.md), which
 * ee__catalog_entry_get() checks for its principal.
 */
typedef struct {
    char id[25];                 /* 24 lowercase hex */
    int64_t revision;            /* the stored revision read */
    const char *name;
    const char *description;
    const char *n8n_workflow_id;
    char category[25];           /* category id, "" when none */
    char email_template_id[25];  /* "" when none */
    bool is_active;
    bool requires_api_key;       /* needs an LLM key (the customer's or the platform's) */
    const char *api_key_provider;/* "openrouter" | "platform" */
    int64_t estimated_cost_nano; /* per run, nano-USD */
    ee__catalog_trigger trigger;
    size_t n_credential_types;   /* n8n credential types the workflow's nodes use */
    const char *const *credential_types;
    size_t n_services;           /* integration services ("Gmail") they belong to */
    const char *const *services;
    /* The credential requirements as credentials routes them: one node per
     * credential type ({type, type, [type]}), for ee__cred_route_nodes(). */
    size_t n_requirements;
    const ee__cred_node *requirements;
    bool has_input_schema;
    /* The compiled inputSchema when got with EE__CATALOG_ENTRY_COMPILED (NULL
     * when the entry has none); NULL otherwise. */
    const ee_schema *input_schema;
    ee__catalog_entry_private *priv; /* the catalog's own */
} ee__catalog_entry;

/* ee__catalog_entry_get() flags. */
#define EE__CATALOG_ENTRY_INACTIVE 0x1u /* the admin's view: inactive entries too */
#define EE__CATALOG_ENTRY_COMPILED 0x2u /* compile (or take from the cache) the inputSchema */

/*
 * The entry `id` as `principal` may see it (principal may be NULL: the
 * library's own or an admin's read, which every entry allows). Without
 * EE__CATALOG_ENTRY_INACTIVE an inactive entry is not found; neither is one
 * whose access does not admit the principal's workspace (or, for a
 * plans-mode entry, its organisation's plan, read from the quota module:
 * ee__quota_plan_of()) - the same status and message as an unknown id.
 * *out is freed with ee__catalog_entry_free(). Thread-safe.
 * Returns EE_OK; EE_EINVAL (NULL engine, id or out; id not 24 lowercase hex;
 * an unknown flag); EE_ENOTFOUND (no such entry, inactive, or not open to the
 * principal); EE_ESTATE (the catalog module is not open); EE_ECORRUPT (the
 * stored record, or its stored schema with EE__CATALOG_ENTRY_COMPILED, or
 * the organisation's stored subscription); EE_ENOMEM; storage statuses.
 */
ee_status ee__catalog_entry_get(ee_engine *engine, const ee_principal *principal,
                                const char *id, unsigned flags, ee__catalog_entry **out);

/* Free an entry (accepts NULL). */
void ee__catalog_entry_free(ee__catalog_entry *entry);

/* ---- a run's parameters ------------------------------------------------------------ */

/* A run's parameters: a JSON object kept with its numbers exactly as written
 * (beyond int64 and double too). Opaque; one thread at a time. */
typedef struct ee__catalog_params ee__catalog_params;

/*
 * Parse parameters text: at most EE_CATALOG_PARAMETERS_MAX bytes and
 * EE_CATALOG_DEPTH_MAX levels, a JSON object. *out is freed with
 * ee__catalog_params_free(). Returns EE_OK; EE_EINVAL (NULL, not an object);
 * EE_EPARSE (not JSON, not UTF-8); EE_ETOOBIG; EE_ENOMEM.
 */
ee_status ee__catalog_params_parse(const char *text, ee__catalog_params **out);
/* The parameters as JSON text (defaults applied by a validation, numbers as
 * written). *out is the caller's (ee_free()). EE_OK; EE_EINVAL; EE_ENOMEM. */
ee_status ee__catalog_params_text(const ee__catalog_params *params, char **out);
void ee__catalog_params_free(ee__catalog_params *params);

/* ---- validation ----------------------------------------------------------------- */

/* One way the parameters break the entry's inputSchema (JSON pointers). */
typedef struct {
    const char *instance_path; /* "" for the whole object, "/email" ... */
    const char *schema_path;   /* "/properties/email/format" ... */
    const char *keyword;
    const char *message;
} ee__catalog_violation;

typedef struct ee__catalog_violations_private ee__catalog_violations_private;

typedef struct {
    size_t n;
    const ee__catalog_violation *items;
    bool truncated;            /* the validator stopped listing at its bound */
    ee__catalog_violations_private *priv;
} ee__catalog_violations;

/*
 * Validate `params` against the entry's inputSchema (compiled once per entry
 * revision and cached; taken from the entry when got with
 * EE__CATALOG_ENTRY_COMPILED), after adding the schema's defaults to
 * `params` in place. An entry without inputSchema accepts any object.
 * On EE_EVALIDATION *violations_out (may be NULL: not wanted) gets the list,
 * freed with ee__catalog_violations_free(), and this thread's error detail
 * is the report {"valid": false, "errors": [...]}, as the public call answers;
 * otherwise *violations_out is NULL. Thread-safe for distinct params.
 * Returns EE_OK (valid); EE_EVALIDATION; EE_EINVAL (NULL engine, entry or
 * params); EE_ESTATE; EE_ETOOBIG (the evaluation's work bound); EE_ECORRUPT
 * (the stored schema no longer compiles); EE_ENOMEM.
 */
ee_status ee__catalog_entry_validate(ee_engine *engine, const ee__catalog_entry *entry,
                                     ee__catalog_params *params,
                                     ee__catalog_violations **violations_out);

/* Free a violations list (accepts NULL). */
void ee__catalog_violations_free(ee__catalog_violations *violations);

#endif
