/*
 * lib/credentials/credentials.h - the credentials module's typed interface
 * for the other modules.
 *
 * Tier: semi-private - for other modules of the library (the catalog, the
 * execution pipeline, the gateway); C types and ee__ functions; no JSON text
 * parsed or rendered between modules. Never installed. Other modules include
 * this header, never the module's own cred_internal.h, crypto.h or
 * routing.h. The public, JSON-at-the-door calls are in
 * include/execengine/credentials.h; their *_api-like adapters (resolve.c
 * for routing) parse, call what is declared here, and render.
 *
 * The integration catalog (data/integrations.json, integrations.c):
 * service -> n8n node types, credential types, personal or platform-funded,
 * the PLATFORM_* variables that fund it and any base URL its credential
 * must point at; and the node types that need no credential. One function,
 * ee__integrations_map_node(), maps a node type for every module (routing,
 * catalog sync). Immutable once loaded; safe to share between threads.
 */
#ifndef EE_CREDENTIALS_CREDENTIALS_H
#define EE_CREDENTIALS_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "execengine/engine.h"
#include "execengine/errors.h"
#include "execengine/principal.h"

/* Largest catalog file accepted. */
#define EE__INTEGRATIONS_MAX_BYTES (1024 * 1024)

typedef struct ee__integrations ee__integrations;

typedef struct {
    const char *service;     /* "Gmail" */
    const char *category;    /* "email" */
    bool is_personal;
    bool is_llm;             /* an LLM credential a customer key may replace */
    const json_t *nodes;     /* array of node types / short names */
    const json_t *credentials; /* array of credential types */
    const json_t *platform_env; /* array of PLATFORM_* names (platform only) */
    /* The base URL the credential must point at when the key is another
     * vendor's compatible API (OpenAI nodes on OpenRouter), else NULL. */
    const char *base_url_override;
} ee__integration;

/* Parse a catalog from JSON text (copied). Returns EE_OK; EE_ETOOBIG;
 * EE_EPARSE (not JSON); EE_EINVAL (wrong shape: the message names the
 * service index and field; a node or credential type claimed by two
 * services, or by a service and the no-credential list); EE_ENOMEM. */
ee_status ee__integrations_parse(ee__integrations **out, const char *text, size_t len);
ee_status ee__integrations_load_file(ee__integrations **out, const char *path);
void ee__integrations_free(ee__integrations *cat);

size_t ee__integrations_count(const ee__integrations *cat);
const ee__integration *ee__integrations_at(const ee__integrations *cat, size_t i);
/* The service a credential type belongs to, or NULL. */
const ee__integration *ee__integrations_by_credential(const ee__integrations *cat,
                                                      const char *cred_type);

typedef enum {
    EE__NODE_SERVICE,       /* a listed service's node: *service_out is set */
    EE__NODE_NO_CREDENTIAL, /* listed in noCredentialNodes (Set, IF, Webhook ...) */
    EE__NODE_UNKNOWN        /* in neither list: report it, never assume it is free */
} ee__node_kind;

/*
 * Map an n8n node type ("n8n-nodes-base.serper") or a seed short name
 * ("serper") to what it needs. The exact name is looked up first in the
 * services' "nodes" and then in "noCredentialNodes"; failing both, the part
 * after the last '.' is looked up the same way (short names of both lists
 * match it). *service_out is the service for EE__NODE_SERVICE, else NULL.
 * The only node-type mapping: credential routing and catalog sync both
 * call it.
 */
ee__node_kind ee__integrations_map_node(const ee__integrations *cat, const char *node_type,
                                        const ee__integration **service_out);

/* ---- typed routing (resolve.c over routing.c) ----------------------------------- */

/* Most nodes (or requirement items) one route takes. */
#define EE__ROUTE_MAX_NODES 1000
/* Room for a credential id (24 hex characters today) and its NUL. */
#define EE__CRED_ID_MAX 64

/* Where a routed credential comes from. */
typedef enum {
    EE__CRED_SOURCE_PLATFORM, /* the platform pool (PLATFORM_* keys) */
    EE__CRED_SOURCE_PERSONAL, /* the workspace's own stored credential */
    EE__CRED_SOURCE_CUSTOMER  /* the customer's API key chosen for the run */
} ee__cred_source;

/* "platform" | "personal" | "customer" (static), as the JSON answer spells it. */
const char *ee__cred_source_name(ee__cred_source source);

/*
 * One thing to route: a workflow node, or one requirement of a catalog entry.
 * With credential types (an n8n node's configured "credentials"), each type is
 * routed; without, the node type is mapped through the integration catalog
 * (ee__integrations_map_node()). A catalog entry's requirements route as one
 * item per credential type {name = type = the credential type, its one type}.
 * Strings are copied by ee__cred_route_nodes().
 */
typedef struct {
    const char *name;                    /* node name ("Summarise") */
    const char *type;                    /* n8n node type or seed short name */
    const char *const *credential_types; /* may be NULL when n_credential_types is 0 */
    size_t n_credential_types;
} ee__cred_node;

/* The run's choice of key (seed 1: useCustomApiKey, apiKeyId). */
typedef struct {
    bool use_customer_key;
    const char *api_key_id; /* required (1..EE__CRED_ID_MAX-1 bytes) when use_customer_key */
} ee__cred_choice;

/* One routed credential. No secret: ee__cred_route_open_secret() decrypts it. */
typedef struct {
    const char *node_name;       /* owned by the route */
    const char *credential_name; /* the credential type; owned by the route or the engine */
    char credential_id[EE__CRED_ID_MAX];
    ee__cred_source source;
    /* The base URL the credential must point at (another vendor's
     * compatible API), else NULL. Lives as long as the engine. */
    const char *base_url_override;
} ee__cred_mapping;

/* What kind of thing is missing. */
typedef enum {
    EE__CRED_GAP_CREDENTIAL, /* a stored credential ("credential:<type>") */
    EE__CRED_GAP_API_KEY     /* the customer API key chosen for the run ("apiKey:<type>") */
} ee__cred_gap_kind;

/* Why it is missing. */
typedef enum {
    EE__CRED_GAP_NOT_STORED,          /* no personal credential of the type in the workspace */
    EE__CRED_GAP_PLATFORM_MISSING,    /* no active platform credential of the type */
    EE__CRED_GAP_KEY_NOT_FOUND,       /* the chosen key is missing, deleted, another's */
    EE__CRED_GAP_KEY_INACTIVE         /* the chosen key is deactivated */
} ee__cred_gap_reason;

/* The JSON answer's "reason" for a gap (static), or NULL (NOT_STORED has none). */
const char *ee__cred_gap_reason_text(ee__cred_gap_reason reason);

/* One missing credential, listed once per credential type. */
typedef struct {
    ee__cred_gap_kind kind;
    ee__cred_gap_reason reason;
    const char *credential_name; /* owned by the route or the engine */
    const char *service;         /* the integration's service ("Gmail"), or NULL if unknown */
    bool is_personal;            /* the customer must supply it */
} ee__cred_gap;

typedef struct ee__cred_route_state ee__cred_route_state;

/*
 * A routed workflow. Read the arrays directly; free with ee__cred_route_free().
 * "ready" is false while there are gaps or unknown node types. Holds no
 * plaintext: only references to sealed secrets (kept so that
 * ee__cred_route_open_secret() opens exactly what was routed).
 */
typedef struct {
    size_t n_mappings;
    const ee__cred_mapping *mappings;
    size_t n_gaps;
    const ee__cred_gap *gaps;
    size_t n_unknown;
    const char *const *unknown_nodes; /* node types nobody maps, once each */
    bool ready;
    ee__cred_route_state *state;      /* private to the credentials module */
} ee__cred_route;

/*
 * Route `nodes` (n of them, in order) for the principal: each node's
 * credentials go to the platform pool (round-robin over active platform
 * credentials), to the workspace's own credential (the newest active), or,
 * for an LLM credential with choice->use_customer_key, to the chosen
 * customer key of the principal's user - a chosen key that is inactive,
 * missing or another's is a gap, never a fall-back to the platform key.
 * `choice` may be NULL (platform keys). Strings are copied: the caller may
 * free `nodes` at once. Gaps do not fail the call.
 * *out is freed with ee__cred_route_free(). Thread-safe.
 * Returns EE_OK; EE_EINVAL (NULL engine, principal or out; NULL nodes with
 * n > 0, a node without name or type, use_customer_key without a valid
 * api_key_id); EE_ETOOBIG (more than EE__ROUTE_MAX_NODES nodes); EE_ESTATE
 * (the engine's credentials module is not open); EE_ENOMEM; storage statuses.
 */
ee_status ee__cred_route_nodes(ee_engine *engine, const ee_principal *principal,
                               const ee__cred_node *nodes, size_t n,
                               const ee__cred_choice *choice, ee__cred_route **out);

/* Free a route (accepts NULL). */
void ee__cred_route_free(ee__cred_route *route);

/*
 * For the gateway only: decrypt the secret of mapping `i` of `route`.
 * *secret_out (NUL-terminated, *len_out bytes) is the raw key for platform
 * and customer credentials, a JSON object ({"apiKey"} or {"accessToken",
 * "refreshToken"}) for personal ones (*is_json_out, may be NULL). Release it
 * with ee__cred_secret_free(), which wipes it; never log, store or render it.
 * Returns EE_OK; EE_EINVAL (NULL argument, i out of range); EE_ECORRUPT (the
 * sealed secret vanished); EE_ECRYPTO (it does not open with the configured
 * keys); EE_ENOMEM.
 */
ee_status ee__cred_route_open_secret(const ee__cred_route *route, size_t i, char **secret_out,
                                     size_t *len_out, bool *is_json_out);
/* Wipe and free a secret from ee__cred_route_open_secret() (accepts NULL). */
void ee__cred_secret_free(char *secret, size_t len);

/* The Resend sender address of mapping `i` (a platform Resend credential),
 * else NULL. Lives as long as the route. */
const char *ee__cred_route_from_email(const ee__cred_route *route, size_t i);

/* ---- customer key usage (customer_keys.c) --------------------------------------- */

/*
 * Count one execution's use of a customer key: executions +1, tokensUsed
 * + tokens, lastUsedAt = now. Idempotent per execution id: the record keeps
 * the last EE__KEY_RECENT_EXECUTIONS execution ids it counted and a repeat
 * is a no-op (*counted_out = 0). Optimistic replace, retried on conflict.
 * Returns EE_OK; EE_ENOTFOUND; EE_EINVAL; EE_ECONFLICT (too many concurrent
 * writers); storage statuses.
 */
ee_status ee__cred_key_record_usage(ee_engine *engine, const ee_principal *principal,
                                    const char *key_id, const char *execution_id,
                                    int64_t tokens, int *counted_out);

#endif
