/*
 * lib/credentials/credentials.h - the credentials module's typed interface
 * for the other modules (semi-private: C types and ee__ functions, no JSON
 * text re-parsed between modules). Other modules include this header, never
 * the module's own cred_internal.h, crypto.h or routing.h.
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

#include "execengine/errors.h"

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

#endif
