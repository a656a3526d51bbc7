/*
 * execengine/exec.h - running catalog workflows through n8n.
 *
 * One execution, as the engine makes it (docs/execution.md):
 *   1. access: the catalog entry must be active and allowed for the
 *      principal's workspace (else EE_ENOTFOUND, as for an unknown id);
 *   2. input: `parameters` validated against the entry's inputSchema
 *      (EE_EVALIDATION, the violations with their JSON pointers in the
 *      error detail);
 *   3. idempotency: a repeated `idempotencyKey` of the same workspace
 *      returns the first execution, whatever its state;
 *   4. limits: the user's hourly rate, the organisation's predictions and
 *      spend are reserved atomically (EE_ERATELIMIT with retryAfterMs,
 *      EE_EQUOTA, EE_ESPEND); a full backlog refuses with EE_EBUSY;
 *   5. credentials: every node's credential routed (platform pool, the
 *      workspace's own, or the customer's key with useCustomApiKey);
 *      missing ones refuse the run with EE_ECREDENTIALS and the gaps,
 *      and release what step 4 reserved;
 *   6. the record is stored "pending" before anything is called, and
 *      queued in storage (durable: another process sharing the database
 *      may run it);
 *   7. a worker triggers the workflow's webhook with the parameters and an
 *      "ee" member {executionId, workspaceId, gatewayUrl, gatewayToken,
 *      callbackUrl?, callbackKey?}
 *      (never a secret), marks it "running", and learns completion from
 *      the webhook's answer, by polling n8n, or from a signed callback
 *      (ee_exec_ingest_webhook());
 *   8. the actual cost is the sum of the gateway's metered calls; the
 *      quota reservation is committed with it (released on failure or
 *      cancellation), the customer key's totals updated - each keyed by
 *      the execution id, so nothing counts twice.
 *
 * The record (JSON at this door, camelCase as stored):
 *   {"_id", "workflowCatalogId", "workflowName", "workspaceId", "userId",
 *    "orgId", "status": "pending" | "running" | "completed" | "failed" |
 *    "cancelled", "inputData": {...}, "outputData": {...} | null,
 *    "outputRef"?: {"bytes": n, "sha256": "..."} (output kept in the
 *    result store: ee_exec_results() reads it), "executionTimeMs",
 *    "apiKeyUsed": {"type": "platform" | "customer", "provider",
 *                   "keyId"?, "cost": nano-USD (every metered call),
 *                   "costUsd": "0.000123", "platformCost", "platformCostUsd"
 *                   (of it, the calls on platform credentials: what the
 *                   platform paid, charged and counted as spend),
 *                   "tokensUsed"},
 *    "charge"?: {"month": "YYYY-MM", "cost", "markup", "allowanceUsed",
 *                "charged"} (nano-USD, each also as "...Usd" text; present
 *                once the ended run is accounted: execengine/billing.h),
 *    "emailSent", "emailSentAt"?, "errorMessage"?, "n8nExecutionId"?,
 *    "idempotencyKey"?, "createdAt", "startedAt"?, "completedAt"?}
 * Dates are ISO 8601 UTC text. No secret is ever in a record: output
 * members whose names look secret (EXEC_SECRET_FIELDS) are dropped before
 * the output is stored.
 *
 * Threads: every call is thread-safe. Completion callbacks run on an
 * engine worker thread: they must not block for long and must not close
 * the engine.
 */
#ifndef EXECENGINE_EXEC_H
#define EXECENGINE_EXEC_H

#include "common.h"
#include "errors.h"
#include "engine.h"
#include "principal.h"

EE_BEGIN_DECLS

/** Largest request document accepted (bytes). */
#define EE_EXEC_REQUEST_MAX (1024 * 1024)
/** Room for an execution id: 24 hex characters and the terminator. */
#define EE_EXEC_ID_SIZE 25

/**
 * Called once when an execution started with ee_exec_submit() ends
 * (completed, failed or cancelled). Where it ended decides the thread:
 * - in this process: on the engine worker thread that ran it (or on the
 *   thread of the ee_exec_cancel() or ee_exec_ingest_webhook() call that
 *   ended it; rarely on the lease keeper's, which can find the settled run
 *   first - still once);
 * - in another process sharing the storage (several hosts on one database,
 *   or this engine opened with EXEC_WORKERS=0): on this engine's lease
 *   keeper thread, once the run is settled (its charge booked), within
 *   about EXEC_POLL_MS of that - up to 64 waiting callbacks are looked at
 *   a poll interval, oldest first.
 * `record_json` is the final record, borrowed for the call only; `status`
 * is EE_OK for "completed", else the status the run failed with
 * (EE_EUPSTREAM: the workflow failed in n8n; EE_ETIMEOUT; EE_ECANCELLED;
 * EE_ESPEND: the gateway refused a call past the run's budget; ...).
 * A run whose record and queue item are both gone without an end this
 * engine saw (removed by ee_exec_purge(), or its submit lost to a crash)
 * is reported EE_ENOTFOUND with "{}" once EXEC_LEASE_MS has passed since
 * the submit. A callback still waiting when the engine closes is not
 * called.
 */
typedef void (*ee_exec_done_fn)(const char *execution_id, ee_status status,
                                const char *record_json, void *payload);

/**
 * Start an execution of the catalog workflow `workflow_id` for `principal`
 * and return at once. `request_json` (at most EE_EXEC_REQUEST_MAX bytes):
 *   {"parameters": {...},           the workflow's inputs (default {})
 *    "useCustomApiKey": bool,       run on the customer's own LLM key
 *    "apiKeyId": "...",             which one (required with the above)
 *    "idempotencyKey": "...",       1..128 printable characters
 *    "email": {"to": "a@b.c"},      e-mail the result when it ends (a
 *                                   plain ASCII addr-spec: docs/email.md)
 *    "timeoutMs": n}                1000..86400000 (default: the entry's,
 *                                   else EXEC_TIMEOUT_MS)
 * Steps 1-6 of the header comment happen before it returns; the run itself
 * happens on a worker. `done` (may be NULL) is called when it ends.
 * *id_out receives the execution id (24 hex and NUL) - the first one's for
 * a repeated idempotencyKey (then `done` is not called).
 * On failure this thread's error detail has the figures (errors.h).
 * Returns EE_OK; EE_EINVAL (NULL argument, bad request member - named);
 * EE_EPARSE; EE_ETOOBIG; EE_ENOTFOUND (no such workflow for this
 * workspace); EE_ESTATE (the workflow cannot be triggered by webhook);
 * EE_EVALIDATION; EE_ERATELIMIT; EE_EQUOTA; EE_ESPEND; EE_ECONCURRENCY;
 * EE_ECREDENTIALS; EE_EBUSY (the backlog is full: EXEC_QUEUE_MAX);
 * EE_ENOMEM; storage and counters statuses.
 */
EE_API ee_status ee_exec_submit(ee_engine *engine, const ee_principal *principal,
                                const char *workflow_id, const char *request_json,
                                ee_exec_done_fn done, void *payload,
                                char id_out[EE_EXEC_ID_SIZE]);

/**
 * Start this engine's execution workers now: EXEC_WORKERS threads (default
 * MAX_CONCURRENT_EXECUTIONS; none when it is 0) that claim executions from
 * the queue in storage - those this process submits, those other processes
 * sharing the database queued, and those a dead process left (recovery).
 * Workers also start by themselves at the first ee_exec_submit(),
 * ee_exec_run() or ee_exec_wait(); a host that only runs what others queue,
 * or that must recover at once after a restart, calls this after
 * ee_engine_open(). They stop with ee_engine_close(). Once they run, the
 * host's clock and log callbacks are also called from worker threads.
 * With e-mail configured (docs/email.md) the outbox thread starts with
 * them (EMAIL_POLL_MS; 0: none). Idempotent. Returns EE_OK; EE_EINVAL (NULL engine); EE_ENOMEM (a thread
 * could not start: the message says which).
 */
EE_API ee_status ee_exec_workers_start(ee_engine *engine);

/**
 * Run an execution and wait for it to end: ee_exec_submit() then
 * ee_exec_wait() with the request's timeout (plus a margin). *out is the
 * final record (ee_free()), or the error document on a refusal.
 * Returns EE_OK when the run completed; the refusals of ee_exec_submit();
 * for a run that ended otherwise, the status it failed with (EE_EUPSTREAM,
 * EE_ETIMEOUT, EE_ECANCELLED, EE_ESPEND, ...) - *out is then its record.
 */
EE_API ee_status ee_exec_run(ee_engine *engine, const ee_principal *principal,
                             const char *workflow_id, const char *request_json, char **out);

/**
 * Wait up to timeout_ms (-1: no limit) for the execution to end; *out (may
 * be NULL) gets its record as ee_exec_get() renders it. An ended run is
 * returned once it is also accounted (quota committed or released, key
 * totals counted, its queue item gone), so usage read after the call
 * includes it; if accounting lags (its worker died) the wait gives it at
 * most EXEC_LEASE_MS more, within timeout_ms, then returns the ended record.
 * Returns EE_OK (completed); EE_ETIMEOUT (still pending or running: *out
 * has the current record); the run's failure status as ee_exec_run();
 * EE_ENOTFOUND (no such execution in the principal's workspace); EE_EINVAL.
 */
EE_API ee_status ee_exec_wait(ee_engine *engine, const ee_principal *principal,
                              const char *execution_id, int64_t timeout_ms, char **out);

/**
 * Cancel a pending or running execution: a queued one never runs; a
 * running one is stopped at n8n when possible and marked "cancelled";
 * its reservations are released. Returns EE_OK; EE_ESTATE (already ended:
 * nothing changed); EE_ENOTFOUND; EE_EINVAL; storage statuses.
 */
EE_API ee_status ee_exec_cancel(ee_engine *engine, const ee_principal *principal,
                                const char *execution_id);

/**
 * One execution of the principal's workspace, as the record in the header
 * comment (outputData included unless it is in the result store). *out is
 * the caller's (ee_free()). Returns EE_OK, EE_ENOTFOUND, EE_EINVAL,
 * EE_ENOMEM, storage statuses.
 */
EE_API ee_status ee_exec_get(ee_engine *engine, const ee_principal *principal,
                             const char *execution_id, char **out);

/**
 * The workspace's executions, newest first. `query_json` (may be NULL):
 *   {"workflowId": "...", "status": "...", "userId": "...",
 *    "limit": 1..100 (default 20), "cursor": "..."}
 * *out: {"data": [record without inputData/outputData, ...],
 *        "nextCursor": "..." | null}. Returns EE_OK, EE_EINVAL (a bad
 * member, named), EE_EPARSE, EE_ETOOBIG, EE_ENOMEM, storage statuses.
 */
EE_API ee_status ee_exec_list(ee_engine *engine, const ee_principal *principal,
                              const char *query_json, char **out);

/**
 * The results of one execution: {"executionId", "status", "outputData",
 * "executionTimeMs", "completedAt"} with the output read back from the
 * result store when it was kept there. Returns as ee_exec_get(); EE_ESTATE
 * when the execution has not ended; EE_ECORRUPT when the stored output is
 * missing or does not match its digest.
 */
EE_API ee_status ee_exec_results(ee_engine *engine, const ee_principal *principal,
                                 const char *execution_id, char **out);

/**
 * The cost breakdown of one execution:
 *   {"executionId", "apiKeyUsed": {...},
 *    "calls": [{"provider", "model"?, "promptTokens", "completionTokens",
 *               "totalTokens", "cost", "costUsd", "source"?, "status", "at"},
 *              ...] ("source": whose credential the gateway injected,
 *              "platform" | "customer" | "personal"; absent for a call
 *              refused before one was chosen),
 *    "totals": {"calls", "tokens", "cost", "costUsd"},
 *    "charge": the record's charge (markup, allowance used, charged), or
 *              null until the run is accounted}
 * Returns as ee_exec_get(); EE_ECORRUPT when the stored calls' tokens or
 * costs sum past int64 (the run's own total never does).
 */
EE_API ee_status ee_exec_cost(ee_engine *engine, const ee_principal *principal,
                              const char *execution_id, char **out);

/**
 * Apply a signed completion callback from a workflow (its "ee" member
 * names the URL). `headers_json` is {"name": "value", ...} of the request
 * (names compared case-insensitively); the signature is
 *   X-EE-Timestamp: <unix seconds>
 *   X-EE-Signature: v1=<hex HMAC-SHA256 over "<timestamp>.<body>">
 * keyed by the execution's callback key: the workflow gets it as
 * "ee.callbackKey", derived from the install's secret (EXEC_CALLBACK_SECRET,
 * else from API_KEY_ENCRYPTION_SECRET) and the execution id, so it signs
 * that execution's callback and nothing else. `body` (body_len bytes, at most
 * EE_EXEC_REQUEST_MAX) is {"executionId", "workspaceId" (the run's
 * "ee.workspaceId": records are per workspace), "status": "completed"|"failed",
 * "output"?: {...}, "error"?: "..."}. Compared in constant time; a
 * timestamp more than 300 s from the engine's clock is refused; a callback
 * is applied once (a repeat answers EE_OK and changes nothing).
 * *out (may be NULL) gets {"executionId", "applied": bool}.
 * Returns EE_OK; EE_EAUTH (missing or bad signature, old or future
 * timestamp); EE_EINVAL; EE_EPARSE; EE_ETOOBIG; EE_ENOTFOUND (no such
 * execution); storage statuses.
 */
EE_API ee_status ee_exec_ingest_webhook(ee_engine *engine, const char *headers_json,
                                        const char *body, size_t body_len, char **out);

/**
 * Delete the results of executions that ended more than
 * RESULT_RETENTION_DAYS ago (records and stored outputs; their storage
 * quota bytes released), and the results e-mails of the outbox that ended
 * (sent or failed) more than RESULT_RETENTION_DAYS ago - a queued one is
 * kept until it ends. The host schedules it. *deleted_out (may be NULL)
 * gets the count of execution records; each call leaves one audit entry,
 * "execution.purged", with the counts (records, stored outputs, e-mails).
 * Returns EE_OK, EE_EINVAL, storage statuses.
 */
EE_API ee_status ee_exec_purge(ee_engine *engine, uint64_t *deleted_out);

/**
 * The execution queue and workers of this engine: {"queued", "running"
 * (both read from storage: every engine sharing it), "runningHere",
 * "workers", "backlogMax", "leaseMs"}, and what this engine did since it
 * opened, per process (counters for a monitoring system: they start at 0
 * with each engine):
 *   "since": engine ms at open,
 *   "submitted": executions this engine queued,
 *   "started": runs this engine's workers started,
 *   "ended": {"completed", "failed", "cancelled", "timedOut"}: final writes
 *            this engine made (a failed run whose status is EE_ETIMEOUT
 *            counts as timedOut only),
 *   "executionTimeMs": {"le": [100, 250, ..., 300000] (bucket bounds),
 *            "<final status>": {"count", "sum", "buckets": cumulative counts
 *            per bound}} of the runs that started (one cancelled while
 *            queued has no execution time).
 * *out is the caller's (ee_free()). Thread-safe.
 * Returns EE_OK, EE_EINVAL, EE_ENOMEM, storage statuses.
 */
EE_API ee_status ee_exec_stats(ee_engine *engine, char **out);

EE_END_DECLS

#endif
