/*
 * lib/credentials/routing.h - decide, for every node of a workflow, which
 * credential it runs with: the platform pool's, the workspace's own, or the
 * customer's OpenRouter key chosen for the run; and list what is missing.
 *
 * Pure logic over a lookup interface, so the same code routes against
 * storage, a cache, or a test double.
 */
#ifndef EE_CREDENTIALS_ROUTING_H
#define EE_CREDENTIALS_ROUTING_H

#include <jansson.h>

#include "credentials/credentials.h"

#define EE__ROUTE_MAX_NODES 1000
#define EE__CRED_ID_MAX 64

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

/*
 * Route `workflow` for `workspace`.
 *   workflow: {"nodes": [{"name", "type", "credentials"?: {credType: {...}}}]}
 *             (n8n's export) or {"nodeNames": ["serper", "gmail"]} (seed 2)
 *   choice:   {"useCustomApiKey": bool, "apiKeyId": "..."} or NULL
 * *out (new reference) receives
 *   {"credentialMappings": [{"nodeName", "credentialId", "credentialName",
 *                            "source": "platform"|"personal"|"customer",
 *                            "baseUrlOverride"?}],
 *    "gaps": [{"field", "label", "type", "credentialName", "isPersonal",
 *              "reason"?}],
 *    "unknownNodes": ["node type", ...]}
 * with gaps listed once per credential and unknown node types once each
 * (a node without configured credentials whose type the integration
 * catalog neither maps to a service nor lists as needing none). A customer
 * key that is inactive, missing or another workspace's is a gap, never a
 * fall-back to the platform key. Returns EE_OK (gaps or not); EE_EINVAL (malformed workflow
 * or choice, the message names the node); EE_ETOOBIG (over
 * EE__ROUTE_MAX_NODES nodes); a lookup's own failure; EE_ENOMEM.
 */
ee_status ee__route(const ee__integrations *cat, const ee__cred_lookup *lookup,
                    const char *workspace, const json_t *workflow, const json_t *choice,
                    json_t **out);

#endif
