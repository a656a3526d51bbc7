/*
 * lib/credentials/routing.h - decide, for every node of a workflow, which
 * credential it runs with: the platform pool's, the workspace's own, or the
 * customer's OpenRouter key chosen for the run; and list what is missing.
 *
 * Pure logic over a lookup interface, so the same code routes against
 * storage, a cache, or a test double. The typed core (ee__route_typed) fills
 * the C types of credentials/credentials.h; the JSON helpers below read a
 * workflow and a choice into those types and render a route as the answer
 * of ee_cred_route(), for the module's adapters (resolve.c) and tests.
 */
#ifndef EE_CREDENTIALS_ROUTING_H
#define EE_CREDENTIALS_ROUTING_H

#include <jansson.h>

#include "credentials/credentials.h"

typedef struct {
    /* Find a usable credential of `cred_type`: in the platform pool when
     * `platform`, else among `workspace`'s own. On EE_OK writes its id
     * (NUL-terminated, at most EE__CRED_ID_MAX-1 bytes) to id_out.
     * EE_ENOTFOUND when there is none; any other status aborts routing. */
    ee_status (*find)(void *ctx, const char *workspace, const char *cred_type, bool platform,
                      char *id_out);
    /* State of customer API key `key_id` for `workspace`: EE_OK if active,
     * EE_ENOTFOUND if missing, deleted or another workspace's, EE_ESTATE if
     * inactive; any other status aborts routing. */
    ee_status (*customer_key)(void *ctx, const char *workspace, const char *key_id);
    void *ctx;
} ee__cred_lookup;

/* Where ee__route_typed() writes: arrays the caller allocated with room for
 * ee__route_capacity() mappings and gaps and n unknown node types. */
typedef struct {
    ee__cred_mapping *mappings;
    size_t n_mappings;
    ee__cred_gap *gaps;
    size_t n_gaps;
    const char **unknown;
    size_t n_unknown;
} ee__route_result;

/* The most mappings (and gaps) routing `nodes` can give. */
size_t ee__route_capacity(const ee__cred_node *nodes, size_t n);

/*
 * Route `nodes` for `workspace` into *res (counts start at 0). Node names,
 * types and credential types are borrowed into *res (the caller keeps them
 * alive). Gaps are listed once per credential type, unknown node types once
 * each. Returns EE_OK (gaps or not); EE_EINVAL (no workspace, a node
 * without name or type, a choice of customer key without a valid id);
 * EE_ETOOBIG (over EE__ROUTE_MAX_NODES nodes); a lookup's own failure.
 */
ee_status ee__route_typed(const ee__integrations *cat, const ee__cred_lookup *lookup,
                          const char *workspace, const ee__cred_node *nodes, size_t n,
                          const ee__cred_choice *choice, ee__route_result *res);

/* ---- JSON at the door ------------------------------------------------------------ */

/* Nodes read from a workflow document, borrowing its strings. */
typedef struct {
    ee__cred_node *nodes;
    size_t n;
    const char **types; /* storage of every node's credential types */
} ee__route_nodes_json;

/*
 * Read a workflow {"nodes": [{"name", "type", "credentials"?: {type: ...}}]}
 * (n8n's export) or {"nodeNames": ["serper", ...]} into nodes borrowing its
 * strings, and a choice {"useCustomApiKey": bool, "apiKeyId": "..."} (or
 * NULL / null) into *choice_out (its id borrowed). Checks in this order:
 * the list's shape, its size, the choice, each node. Returns EE_OK;
 * EE_EINVAL (the message names the node or the member); EE_ETOOBIG;
 * EE_ENOMEM. Free the nodes with ee__route_nodes_json_clear().
 */
ee_status ee__route_read_json(const json_t *workflow, const json_t *choice,
                              ee__route_nodes_json *nodes_out, ee__cred_choice *choice_out);
void ee__route_nodes_json_clear(ee__route_nodes_json *nodes);

/* A route as JSON (new reference, NULL on ENOMEM):
 *   {"credentialMappings": [{"nodeName", "credentialId", "credentialName",
 *                            "source": "platform"|"personal"|"customer",
 *                            "baseUrlOverride"?}],
 *    "gaps": [{"field", "label", "type", "credentialName", "isPersonal",
 *              "reason"?}],
 *    "unknownNodes": ["node type", ...]}
 * "field" is "<type>:<credentialName>" and "label" "<service> - <credentialName>"
 * (the credential name for an unknown service), each cut at a character to
 * 255 and 319 bytes. */
json_t *ee__route_render(const ee__route_result *res);

/*
 * ee__route_typed() on JSON: ee__route_read_json(), route, ee__route_render().
 * *out (new reference) as ee__route_render(). Returns the statuses of both.
 */
ee_status ee__route(const ee__integrations *cat, const ee__cred_lookup *lookup,
                    const char *workspace, const json_t *workflow, const json_t *choice,
                    json_t **out);

#endif
