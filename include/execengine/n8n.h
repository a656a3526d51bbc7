/*
 * execengine/n8n.h - a client for one n8n instance, over a transport.
 *
 * It speaks n8n's public REST API (`{base}/api/v1/...`, authenticated with
 * the X-N8N-API-KEY header) to list and read workflows and executions, and
 * triggers workflows through their production webhook URL
 * (`{base}/webhook/{path}`): n8n's public API has no "run workflow by id".
 *
 * Documents cross the API as JSON text. Every answer from n8n is bounded
 * (size, nesting depth), validated and normalised before it is returned:
 *
 *   workflow:  {"id", "name", "active", "isArchived", "description"?,
 *               "createdAt"?, "updatedAt"?, "versionId"?,
 *               "tags": ["name", ...],
 *               "nodes": [ n8n's node objects, each with "name", "type" ],
 *               "connections": {...},
 *               "trigger": <ee_n8n_workflow_trigger() of the workflow>}
 *     (for an active workflow, "nodes" and "connections" are those of its
 *      active version, which is what a webhook call runs)
 *   execution: {"id", "workflowId", "status" (ours: "pending" | "running" |
 *               "completed" | "failed"), "n8nStatus", "finished", "mode",
 *               "startedAt", "stoppedAt", "waitTill",
 *               "lastNodeExecuted"?, "error"? {"message", "description"?,
 *               "node"?}, "output"? [ the last node's output items' json ],
 *               "data"? (n8n's raw execution data, with includeData)}
 *   lists:     {"data": [ ... ], "nextCursor": "..." | null}
 *
 * Errors. Each call returns a status; on failure its `char **out` receives
 * the error document of errors.h, whose detail carries n8n's own message
 * ({"n8nMessage": "...", "hint"?: "..."}, truncated to 500 bytes, secrets
 * redacted) and whose httpStatus is n8n's answer:
 *   401 -> EE_EAUTH, 403 -> EE_EPERM, 404 -> EE_ENOTFOUND,
 *   400/405/409/422 -> EE_EINVAL, 429 -> EE_ERATELIMIT,
 *   5xx and anything else unexpected -> EE_EUPSTREAM,
 *   an answer that is not the JSON expected -> EE_EPARSE,
 *   transport failures as ee_transport_http() reports them (EE_ETIMEOUT,
 *   EE_ENETWORK, EE_ETOOBIG).
 * The API key never appears in a message, a document or a log line.
 *
 * Threads: an ee_n8n may be used by several threads at once (it holds no
 * per-call state; its transport is thread-safe). ee_n8n_configure() must
 * not run concurrently with other calls on the same client.
 */
#ifndef EXECENGINE_N8N_H
#define EXECENGINE_N8N_H

#include "common.h"
#include "errors.h"
#include "transport.h"

EE_BEGIN_DECLS

typedef struct ee_n8n ee_n8n;

/**
 * A client for the n8n at `base_url` (http:// or https://, no query; a
 * trailing '/' is ignored) with the public-API key `api_key` (copied,
 * wiped on free, registered for redaction; may be "" when only webhooks
 * are called). `transport` is borrowed and must outlive the client; NULL
 * makes the client create (and own) a libcurl transport with defaults.
 * *out is owned by the caller (ee_n8n_free()).
 * Returns EE_OK; EE_EINVAL (NULL out, base_url or api_key, bad URL, a key
 * with control characters); EE_ENOMEM; EE_ENOTSUPPORTED (no libcurl).
 */
EE_API ee_status ee_n8n_new(ee_n8n **out, ee_transport *transport, const char *base_url,
                            const char *api_key);

/** Free a client, wiping its key. Accepts NULL. */
EE_API void ee_n8n_free(ee_n8n *client);

/**
 * Change the client's limits from a JSON object; absent keys keep their
 * value:
 *   "timeoutMs"        per API request (default 30000)
 *   "webhookTimeoutMs" per webhook call, i.e. a whole synchronous run
 *                      (default 300000)
 *   "maxResponseBytes" cap on any answer (default 33554432, 32 MiB)
 *   "maxDepth"         deepest JSON nesting accepted (default 128, 8..1000)
 *   "pageLimit"        page size asked of n8n (default 100, 1..250)
 *   "maxItems"         most items one listing call gathers (default 100000)
 * The options text is at most 64 KiB and 8 levels deep.
 * Returns EE_OK; EE_EINVAL (NULL argument, unknown key, value out of
 * range: nothing changed, the message names the key); EE_EPARSE;
 * EE_ETOOBIG (past the size or depth limit).
 */
EE_API ee_status ee_n8n_configure(ee_n8n *client, const char *options_json);

/**
 * List workflows. `query_json` (may be NULL) holds optional filters:
 *   {"active": bool, "tags": ["name", ...] (n8n's AND of tag names),
 *    "name": "exact name", "projectId": "...", "limit": 1..250 (page size),
 *    "cursor": "..." (start after a previous answer's nextCursor),
 *    "maxPages": n (0 or absent: follow nextCursor to the end)}
 * (at most 64 KiB and 8 levels deep; no other member)
 * *out gets {"data": [workflow, ...], "nextCursor": string | null} with
 * nextCursor set when maxPages stopped the walk before the end. Owned by
 * the caller (ee_free()); the error document on failure.
 * Returns EE_OK, EE_EINVAL (a bad or unknown member, named), EE_EPARSE,
 * EE_ETOOBIG (more than maxItems, or a query past its limits),
 * EE_ENOMEM and the statuses in the header comment.
 */
EE_API ee_status ee_n8n_list_workflows(ee_n8n *client, const char *query_json, char **out);

/**
 * One workflow by id, with its nodes (normalised as in the header
 * comment). *out is owned by the caller (ee_free()), the error document on
 * failure. Returns EE_OK, EE_EINVAL (NULL or empty id), EE_ENOTFOUND,
 * EE_EPARSE, EE_ENOMEM and the statuses in the header comment.
 */
EE_API ee_status ee_n8n_get_workflow(ee_n8n *client, const char *workflow_id, char **out);

/**
 * Trigger a workflow through its production webhook: `method` and `path`
 * as ee_n8n_workflow_trigger() derived them; `body_json` (may be NULL) is
 * sent as the JSON body, or, for GET, HEAD and DELETE, as query
 * parameters (its top-level scalar members); it is at most 16 MiB (n8n's
 * own default payload cap) and maxDepth levels. The call waits for n8n's
 * answer, which depends on the Webhook node's response mode.
 * *out gets {"httpStatus": n, "body": <JSON, or the text when the answer
 * is not JSON>, "executionId": "..." (when the answer names one)}.
 * A POST that reached n8n is never sent twice.
 * Returns EE_OK for 2xx answers; EE_ENOTFOUND (webhook not registered:
 * inactive workflow, wrong path or method); EE_EUPSTREAM (the workflow
 * failed: n8n's 500 "Error in workflow", with n8n's message); EE_EINVAL
 * (also a body that is not JSON); EE_ETOOBIG (a body past 16 MiB or
 * maxDepth); EE_ENOMEM and the statuses in the header comment.
 */
EE_API ee_status ee_n8n_trigger_webhook(ee_n8n *client, const char *method, const char *path,
                                        const char *body_json, char **out);

/**
 * One execution by id; with include_data non-zero, n8n's execution data
 * too, from which "output", "error" and "lastNodeExecuted" are derived.
 * *out is owned by the caller (ee_free()), the error document on failure.
 * Returns EE_OK, EE_EINVAL, EE_ENOTFOUND, EE_EPARSE, EE_ENOMEM and the
 * statuses in the header comment.
 */
EE_API ee_status ee_n8n_get_execution(ee_n8n *client, const char *execution_id, int include_data,
                                      char **out);

/**
 * List executions, newest first. `query_json` (may be NULL):
 *   {"workflowId": "...", "status": "canceled"|"error"|"running"|"success"|
 *    "waiting" (n8n's names), "includeData": bool, "limit", "cursor",
 *    "maxPages"} as for ee_n8n_list_workflows(). n8n leaves running
 * executions out unless status "running" is asked for.
 * Returns as ee_n8n_list_workflows().
 */
EE_API ee_status ee_n8n_list_executions(ee_n8n *client, const char *query_json, char **out);

/**
 * Our status for an n8n execution status: "new" -> "pending";
 * "running", "waiting" -> "running"; "success" -> "completed";
 * "error", "crashed", "canceled", "cancelled" -> "failed". NULL for NULL or
 * a status this library does not know. Static string. Thread-safe.
 */
EE_API const char *ee_n8n_map_status(const char *n8n_status);

/**
 * How a workflow can be run, derived from its nodes: `workflow_json` is a
 * workflow as n8n or this client returns it. The first enabled Webhook
 * node (n8n-nodes-base.webhook) decides:
 *   {"runnable": true, "node": "<node name>", "method": "POST",
 *    "path": "<path>", "responseMode": "onReceived"|"lastNode"|
 *    "responseNode"|..., "webhookId"?: "..."}
 * otherwise
 *   {"runnable": false, "reason": "...", "triggers": ["<trigger type>", ...]}
 * (no Webhook node, only disabled ones, a path with parameters or an
 * expression, ...). *out is owned by the caller (ee_free()); the error
 * document on failure. Thread-safe.
 * The workflow is at most 16 MiB (refused on its length, unread, past
 * that) and 128 levels deep.
 * Returns EE_OK (runnable or not); EE_EINVAL (NULL argument; not an object
 * or without a "nodes" array); EE_EPARSE (not JSON); EE_ETOOBIG (over
 * 16 MiB or 128 levels); EE_ENOMEM.
 */
EE_API ee_status ee_n8n_workflow_trigger(const char *workflow_json, char **out);

EE_END_DECLS

#endif
