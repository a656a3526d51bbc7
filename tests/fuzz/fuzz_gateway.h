/*
 * A gateway grant for the targets that call the credential gateway
 * (gateway_handle, gateway_listen): the token of a run routed over the
 * given node types, on the platform pool or the customer's key, as the
 * execution pipeline issues it (lib/gateway/gateway.h). Header-only.
 */
#ifndef EE_FUZZ_GATEWAY_H
#define EE_FUZZ_GATEWAY_H

#include "fuzz_engine.h"

#include "credentials/credentials.h"
#include "gateway/gateway.h"

/* Grant execution `exec_id` (24 hex) of `user` a run over the `n` node
 * types (at most 8), on customer key `key_id` (NULL: the platform), with
 * a budget (-1: none) and an expiry; the token into `token`. */
static inline void fz_grant(ee_engine *engine, const ee_principal *user, const char *exec_id,
                            const char *const *types, size_t n, const char *key_id,
                            int64_t budget_nano, int64_t expires_at_ms,
                            char token[EE__GATEWAY_TOKEN_SIZE])
{
    ee__cred_node nodes[8];
    CHECK(n <= 8);
    for (size_t i = 0; i < n; i++)
        nodes[i] = (ee__cred_node){.name = types[i], .type = types[i]};
    ee__cred_choice choice = {key_id != NULL, key_id};
    ee__cred_route *r = NULL;
    CHECK(ee__cred_route_nodes(engine, user, nodes, n, key_id != NULL ? &choice : NULL, &r) ==
          EE_OK);
    if (!r->ready)
        fprintf(stderr, "route of %s: %zu gap(s), %zu unknown node(s)\n", exec_id, r->n_gaps,
                r->n_unknown);
    CHECK(r->ready);
    ee__gateway_grant_spec spec = {.execution_id = exec_id, .principal = user,
                                   .workflow_catalog_id = "0123456789abcdef01234567",
                                   .route = r, .choice = key_id != NULL ? &choice : NULL,
                                   .budget_nano = budget_nano, .expires_at_ms = expires_at_ms};
    CHECK(ee__gateway_grant(engine, &spec, token) == EE_OK);
    ee__cred_route_free(r);
}

#endif
