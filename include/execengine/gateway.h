/*
 * execengine/gateway.h - the credential gateway: how a running workflow
 * reaches providers without ever holding a key.
 *
 * For each execution the engine issues a capability token (random, stored
 * only as its SHA-256, expiring with the execution) scoped to the
 * credentials routed for that run and to a budget. The workflow calls
 *     <gateway>/<provider>/<upstream path>
 * with "Authorization: Bearer <token>"; the gateway checks the token,
 * picks the routed credential (the customer's key or the platform pool),
 * forwards the request upstream through the engine's transport with the key
 * injected the provider's way (data/gateway.json: base URL, header or
 * query parameter), passes the answer back (streams too: SSE), and meters
 * the call: tokens and cost from OpenRouter's `usage` object (in the body,
 * or in the last SSE message of a stream), else priced per call from
 * data/gateway.json (perCallUsd). The figures also go back to the caller in the
 * response headers x-litellm-response-cost (USD, decimal) and
 * x-ee-call-cost-nano (not on an SSE answer relayed as it comes: its last
 * message carries the usage). A call when the run's metered spend has reached its
 * budget is refused (HTTP 402) and the execution fails with that reason.
 *
 * Answers of the gateway itself (JSON {"error": {"status", "message"}}):
 *   401 unknown, malformed or expired token (or the execution ended);
 *   403 the provider is not routed for this execution;
 *   402 the run's budget is spent;
 *   404 unknown provider; 405 method not allowed;
 *   413 request body over EXEC_GATEWAY_BODY_MAX;
 *   502 upstream unreachable or reset; 504 upstream timeout.
 * Upstream answers (2xx, 4xx, 5xx) are passed through as they are.
 *
 * Threads: both calls are thread-safe.
 */
#ifndef EXECENGINE_GATEWAY_H
#define EXECENGINE_GATEWAY_H

#include "common.h"
#include "errors.h"
#include "engine.h"

EE_BEGIN_DECLS

/** One request as the host's HTTP server received it. Borrowed. */
typedef struct ee_gateway_request {
    unsigned version;            /* EE_GATEWAY_REQUEST_VERSION */
    const char *method;          /* "POST", "GET" ... */
    const char *path;            /* after the gateway prefix: "/openrouter/api/v1/chat/completions" */
    const char *query;           /* without '?', or NULL */
    const char *const *headers;  /* n_headers "Name: value" lines */
    size_t n_headers;
    const char *body;            /* may be NULL when body_len is 0 */
    size_t body_len;
} ee_gateway_request;

#define EE_GATEWAY_REQUEST_VERSION 1

/**
 * Receives the answer: first `head` once (status and "Name: value" header
 * lines, borrowed for the call), then `body` zero or more times with
 * chunks in order (a streamed answer arrives as it comes). Return 0 to go
 * on, non-zero to abort (the client went away: the upstream call is
 * stopped and metered as far as it got).
 */
typedef struct ee_gateway_sink {
    int (*head)(int http_status, const char *const *headers, size_t n_headers, void *payload);
    int (*body)(const char *chunk, size_t len, void *payload);
    void *payload;
} ee_gateway_sink;

/**
 * Serve one gateway request from any host's HTTP server: the answer goes
 * to `sink` (always at least its head, also for the gateway's own
 * refusals). Returns EE_OK when an answer was given (whatever its HTTP
 * status); EE_EINVAL (NULL argument, unknown request version);
 * EE_ECANCELLED (the sink aborted). The gateway's own refusals are
 * answered through the sink, not as statuses.
 */
EE_API ee_status ee_gateway_handle(ee_engine *engine, const ee_gateway_request *request,
                                   const ee_gateway_sink *sink);

/**
 * Start the engine's embedded gateway listener (libmicrohttpd) on
 * `address` ("127.0.0.1:0" picks a free port; only loopback and the
 * addresses the host names). *url_out (may be NULL) receives the base URL
 * workflows are given ("http://127.0.0.1:41234/gateway"), the caller's
 * (ee_free()). The listener stops with ee_engine_close(). When
 * EXEC_GATEWAY_URL is set, that URL is given to workflows instead (the
 * host serves ee_gateway_handle() itself, or a proxy fronts the listener).
 * Returns EE_OK; EE_EINVAL (bad address); EE_ESTATE (already listening);
 * EE_EIO (cannot bind); EE_ENOTSUPPORTED (built without libmicrohttpd).
 */
EE_API ee_status ee_gateway_listen(ee_engine *engine, const char *address, char **url_out);

/**
 * What this engine's gateway did, per provider of gateway.json (the table
 * is fixed when the engine opens), per process since the engine opened
 * (counters for a monitoring system):
 *   {"since": engine ms at open,
 *    "upstreamMsLe": [50, 100, ..., 60000] (bucket bounds, ms),
 *    "providers": {"<name>": {
 *      "calls": forwarded upstream (answered or not),
 *      "byStatusClass": {"2xx", "3xx", "4xx", "5xx", "none" (no answer:
 *                        unreachable, timed out, too large)},
 *      "refusedBudget": answered 402 by the gateway (the run's budget spent),
 *      "costNano": metered cost (nano-USD), "platformCostNano": of it, the
 *                  calls on platform credentials,
 *      "tokens": {"prompt", "completion", "total"},
 *      "upstreamMs": {"count", "sumUs": microseconds, "buckets": cumulative
 *                     counts per bound of upstreamMsLe}}}}
 * The upstream time runs from the request sent to the answer's end (a
 * streamed answer's whole stream). Requests refused before a provider is
 * known (bad token, unknown provider) are not counted. *out is the
 * caller's (ee_free()). Thread-safe. Returns EE_OK, EE_EINVAL (NULL
 * engine or out), EE_ENOMEM.
 */
EE_API ee_status ee_gateway_stats(ee_engine *engine, char **out);

EE_END_DECLS

#endif
