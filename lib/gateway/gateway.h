/*
 * lib/gateway/gateway.h - the gateway's typed interface for the execution
 * pipeline (semi-private; C types). The public door is
 * include/execengine/gateway.h.
 *
 * Per execution: ee__gateway_grant() before the trigger (the token goes to
 * the workflow in its "ee" member), ee__gateway_usage_of() when it ends (the
 * actual cost is the sum of the metered calls), ee__gateway_revoke() after
 * (the token answers 401 from then on). Grants are stored (token hashed,
 * collection "gatewayGrants"), so a gateway in another process sharing the
 * database serves them too; metered calls are stored per execution
 * (collection "gatewayCalls") and summed atomically (storage increment), so
 * the budget holds across gateways.
 */
#ifndef EE_GATEWAY_GATEWAY_H
#define EE_GATEWAY_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "credentials/credentials.h"
#include "execengine/engine.h"
#include "execengine/errors.h"
#include "execengine/principal.h"

/* A token's text: "eeg_" + 43 base64url characters + NUL. */
#define EE__GATEWAY_TOKEN_SIZE 48

typedef struct ee__gateway_grant_spec {
    const char *execution_id;         /* 24 hex */
    const ee_principal *principal;    /* whose run */
    const char *workflow_catalog_id;  /* 24 hex */
    const ee__cred_route *route;      /* what was routed for the run (borrowed for the call) */
    const ee__cred_choice *choice;    /* the run's key choice (NULL: platform) */
    int64_t budget_nano;              /* metered spend allowed; -1: no budget */
    int64_t expires_at_ms;            /* the execution's deadline (+ a margin) */
} ee__gateway_grant_spec;

/* Issue the execution's token into token_out. Returns EE_OK, EE_EINVAL,
 * EE_ENOMEM, storage statuses. */
ee_status ee__gateway_grant(ee_engine *engine, const ee__gateway_grant_spec *spec,
                            char token_out[EE__GATEWAY_TOKEN_SIZE]);

/* The execution has ended: its token stops working (401). EE_OK also when
 * there was no grant. */
ee_status ee__gateway_revoke(ee_engine *engine, const char *workspace, const char *execution_id);

/* What the execution's calls metered so far. */
typedef struct ee__gateway_usage {
    int64_t calls;
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t total_tokens;
    int64_t cost_nano;
    int64_t platform_cost_nano;        /* of cost_nano, the calls on platform credentials */
    bool budget_refused;               /* a call was refused: budget spent */
    char refused_provider[32];         /* the provider of the first refused call */
} ee__gateway_usage;

ee_status ee__gateway_usage_of(ee_engine *engine, const char *workspace,
                               const char *execution_id, ee__gateway_usage *out);

/* One metered call, for an execution's cost breakdown. Borrowed strings. */
typedef struct ee__gateway_call {
    const char *provider;              /* "openrouter", "serper" ... */
    const char *model;                 /* or NULL */
    int64_t prompt_tokens, completion_tokens, total_tokens;
    int64_t cost_nano;
    /* whose credential the call used: "platform" (the platform pays it),
     * "customer" (the customer's API key) or "personal" (the workspace's own
     * credential); NULL for a call refused before a key was chosen */
    const char *source;
    int http_status;                   /* the answer given to the workflow */
    int64_t at_ms;
} ee__gateway_call;

typedef int (*ee__gateway_call_fn)(const ee__gateway_call *call, void *payload);

/* The execution's metered calls, oldest first (fn returns non-zero to
 * stop). Returns EE_OK, EE_EINVAL, storage statuses. */
ee_status ee__gateway_calls(ee_engine *engine, const char *workspace, const char *execution_id,
                            ee__gateway_call_fn fn, void *payload);

/* The gateway base URL workflows are given: EXEC_GATEWAY_URL, else the
 * embedded listener's (ee_gateway_listen()), else NULL (no gateway: a
 * workflow that needs one fails its provider calls). Lives as long as the
 * engine. */
const char *ee__gateway_url(ee_engine *engine);

/* ---- the listener's callback route ------------------------------------------------- */

/* The path below the listener's base URL at which it takes signed
 * completion callbacks. "_ee" is refused as a provider name in
 * gateway.json, so the route never hides a provider. */
#define EE__GATEWAY_CALLBACK_PATH "/_ee/callback"

/* What the route hands a callback to: ee_exec_ingest_webhook()'s shape
 * (headers as a JSON object, the raw body, *out the answer document). */
typedef ee_status (*ee__gateway_callback_fn)(ee_engine *engine, const char *headers_json,
                                             const char *body, size_t body_len, char **out);

/* Wire the callback route (the engine does, once, before it returns from
 * ee_engine_open(); the gateway knows nothing of exec). body_max: the
 * largest callback body the handler takes (the route answers 413 past it
 * or past EXEC_GATEWAY_BODY_MAX, whichever is smaller). Without a handler
 * the route answers 404. */
void ee__gateway_set_callback(ee_engine *engine, ee__gateway_callback_fn fn, int64_t body_max);

/* The embedded listener's own callback URL
 * ("http://127.0.0.1:41234/gateway/_ee/callback"), or NULL while it is not
 * listening (or has no callback handler). Set once by ee_gateway_listen(),
 * never changed after: lives as long as the engine. EXEC_GATEWAY_URL does
 * not change it (a host serving ee_gateway_handle() itself does not serve
 * the route). */
const char *ee__gateway_callback_url(ee_engine *engine);

/* Stop the embedded listener now (it is not restarted), after the calls in
 * flight; no-op when it is not running. ee_engine_close() calls it before
 * any module closes: a callback in flight reaches the exec module. */
void ee__gateway_listener_close(ee_engine *engine);

#endif
