/*
 * execengine/notify.h - e-mail templates: render a Handlebars template
 * (handlebars.js 4.x compatible) over JSON data, so hosts can preview the
 * subject and body of a results e-mail exactly as it will be sent.
 *
 * docs/templates.md lists the syntax and helpers supported (if, else,
 * else if, unless, each with @index/@key/@first/@last, with, lookup, ../
 * paths, {{{raw}}} and {{&raw}}, ~ whitespace control, comments, partials
 * with a context and hash parameters), what handlebars.js does that this
 * does not, and where Handlebars differs from mustache.
 *
 * {{value}} escapes & < > " ' ` = as handlebars.js does (&amp; &lt; &gt;
 * &quot; &#x27; &#x60; &#x3D;). Values are data: text in a value that looks
 * like a template ("{{x}}") is printed, never parsed.
 *
 * E-mailed results (docs/email.md): a template per workflow
 * (executionEmailTemplates, admin-only), an e-mail about an ended execution
 * queued on demand or when a run started with {"email": {"to": ...}} ends,
 * and a persistent outbox delivered by SMTP (SMTP_HOST set) or a
 * Resend-style HTTP API (PLATFORM_RESEND_KEY set), from PLATFORM_FROM_EMAIL,
 * with retries, backoff and a per-user hourly limit.
 *
 * Limits (EE_ETOOBIG past them, with a message naming the limit): the
 * template and each partial up to EE_TEMPLATE_MAX_TEMPLATE bytes, the data
 * and partials JSON up to EE_TEMPLATE_MAX_DATA bytes and
 * EE_TEMPLATE_MAX_DEPTH levels, blocks and partials nested up to
 * EE_TEMPLATE_MAX_DEPTH, output up to EE_TEMPLATE_MAX_OUTPUT bytes, and a
 * work budget per render (nodes visited, names looked up, list items,
 * partial bytes parsed) so that no template runs unbounded.
 */
#ifndef EXECENGINE_NOTIFY_H
#define EXECENGINE_NOTIFY_H

#include <stddef.h>

#include <stdint.h>

#include "common.h"
#include "engine.h"
#include "errors.h"
#include "principal.h"

EE_BEGIN_DECLS

#define EE_TEMPLATE_MAX_TEMPLATE (1024 * 1024)
#define EE_TEMPLATE_MAX_DATA (16 * 1024 * 1024)
#define EE_TEMPLATE_MAX_OUTPUT (16 * 1024 * 1024)
#define EE_TEMPLATE_MAX_DEPTH 64

/**
 * Render the Handlebars template `template_text` (UTF-8, NUL-terminated)
 * against `data_json` (the JSON text of any value; NULL renders with no
 * data) with the partials of `partials_json` (NULL, or the JSON text of an
 * object mapping each partial's name to its template text).
 *
 * *out is the rendered text, owned by the caller (ee_free()). It is
 * NUL-terminated, but a value holding a NUL byte ("\u0000" in the data) is
 * rendered whole, so the text may hold NUL: use ee_template_render_len()
 * to get its length. On failure *out is NULL and ee_error_last_message()
 * says what was wrong and where (byte offset in the template).
 *
 * Returns:
 *   EE_OK;
 *   EE_EINVAL     template_text or out NULL, partials_json not an object
 *                 of strings;
 *   EE_EPARSE     data_json, partials_json or the template not UTF-8;
 *                 data_json or partials_json not JSON; the
 *                 template (or a partial it uses) malformed or using
 *                 syntax this renderer does not support (decorators
 *                 other than {{#*inline}}; under changed mustache
 *                 delimiters {{=<% %>=}}, the Handlebars-only forms
 *                 such as {{else}} or ~); a helper
 *                 called with the wrong arguments
 *                 ({{#if}} with none);
 *   EE_ENOTFOUND  a partial the template uses is not in partials_json nor
 *                 an inline partial in scope ({{> @partial-block}} outside
 *                 a partial block), or a helper it calls does not exist
 *                 ({{format date}}):
 *                 handlebars.js throws for both; a partial or helper in a
 *                 branch not taken is not looked up;
 *   EE_ETOOBIG    a limit above;
 *   EE_ENOMEM.
 * Thread-safe: pure, it shares no state between calls.
 */
EE_API ee_status ee_template_render(const char *template_text, const char *data_json,
                                    const char *partials_json, char **out);

/**
 * As ee_template_render(), also giving the length of *out in *out_len
 * (may be NULL; 0 on failure), which counts NUL bytes that values put in
 * the text.
 */
EE_API ee_status ee_template_render_len(const char *template_text, const char *data_json,
                                        const char *partials_json, char **out, size_t *out_len);

/* ---- e-mailed results ---------------------------------------------------- */

/** Largest template_json of ee_email_template_put(), bytes (both templates
 * at their largest, escaped, and the other members). */
#define EE_EMAIL_TEMPLATE_DOC_MAX (2 * EE_TEMPLATE_MAX_TEMPLATE + 16384)
/** Largest query_json of ee_email_template_list(), bytes. */
#define EE_EMAIL_QUERY_MAX 16384
/** Largest request_json of ee_email_send_execution(), bytes. */
#define EE_EMAIL_REQUEST_MAX 4096

/**
 * Store the e-mail template of a workflow (admin: `principal` must be NULL,
 * the host's own call; a principal gets EE_EPERM). `template_json` is
 * {"workflowCatalogId": 24 hex, "subjectTemplate": text (up to 4096
 * bytes), "bodyTemplate": HTML text (up to EE_TEMPLATE_MAX_TEMPLATE bytes),
 * "isActive": bool (default true)}: both templates are Handlebars,
 * compiled now. A workflow has one template: a second put replaces it.
 * *out gets the stored template ({"id", "workflowCatalogId",
 * "subjectTemplate", "bodyTemplate", "isActive", "createdAt",
 * "updatedAt"}), or the error document on failure (ee_free() both).
 * Returns EE_OK; EE_EINVAL (NULL argument, unknown or mistyped member);
 * EE_EPERM; EE_EPARSE (not JSON; a malformed template: the message names
 * the field and the byte offset); EE_ENOTFOUND (no such workflow in the
 * catalog; a helper or partial the template calls does not exist);
 * EE_ETOOBIG; EE_ENOMEM; the storage's statuses. Thread-safe.
 */
EE_API ee_status ee_email_template_put(ee_engine *engine, const ee_principal *principal,
                                       const char *template_json, char **out);

/**
 * The template of workflow `workflow_id` (admin: `principal` NULL), as put
 * returns it. Returns EE_OK; EE_EINVAL; EE_EPERM; EE_ENOTFOUND (none: its
 * e-mails use the default template, docs/email.md); the storage's.
 */
EE_API ee_status ee_email_template_get(ee_engine *engine, const ee_principal *principal,
                                       const char *workflow_id, char **out);

/**
 * One page of templates, newest first (admin: `principal` NULL).
 * `query_json` (NULL: {}) may hold "isActive" (bool), "limit" (1..1000,
 * default 50) and "cursor". *out is {"data": [...], "nextCursor": text or
 * null}. Returns EE_OK; EE_EINVAL (a bad member or cursor); EE_EPERM;
 * EE_EPARSE; the storage's.
 */
EE_API ee_status ee_email_template_list(ee_engine *engine, const ee_principal *principal,
                                        const char *query_json, char **out);

/**
 * Delete the template of a workflow (admin: `principal` NULL). Returns
 * EE_OK; EE_EINVAL; EE_EPERM; EE_ENOTFOUND; the storage's.
 */
EE_API ee_status ee_email_template_delete(ee_engine *engine, const ee_principal *principal,
                                          const char *workflow_id);

/**
 * Queue an e-mail of the results of ended execution `execution_id` of the
 * principal's workspace. `request_json` (NULL: {}) is {"to": address}
 * (default: the address the run was started with). The subject and body
 * are rendered now, from the workflow's active template or the default
 * one, over {"execution": the record as ee_exec_get() gives it, "results":
 * its outputData, "workflowName", "workflow": {"id", "name"},
 * "resultsText": the results as indented JSON}; delivery happens in the
 * outbox (ee_email_outbox_run() or the thread started with the workers).
 * Counts against the user's EMAIL_MAX_PER_USER_PER_HOUR. The execution is
 * marked, in the commit that queues the message, as one a results e-mail
 * was requested for (ee_billing_analytics()' "email.requested").
 * *out gets {"id", "executionId", "to", "status": "queued"} or the error
 * document. Returns EE_OK; EE_EINVAL (NULL argument, bad member, no
 * recipient, not an address, a line break or NUL in the rendered subject:
 * the message does not quote it); EE_ENOTFOUND (no such execution in the
 * workspace); EE_ESTATE (the execution has not ended); EE_ENOTSUPPORTED
 * (neither SMTP_HOST nor PLATFORM_RESEND_KEY, or no PLATFORM_FROM_EMAIL);
 * EE_ERATELIMIT (the hourly limit: the detail has "retryAfterMs");
 * EE_EPARSE, EE_ETOOBIG (the template); the storage's and counters'.
 * Thread-safe.
 */
EE_API ee_status ee_email_send_execution(ee_engine *engine, const ee_principal *principal,
                                         const char *execution_id, const char *request_json,
                                         char **out);

/**
 * Deliver up to `max` (>= 1) due outbox messages now, in this thread: each
 * is claimed under a lease (EMAIL_LEASE_MS), so concurrent runners - other
 * threads, processes or hosts on the database - never send one twice; sent
 * (the server accepted it: SMTP 250, API 2xx), it is marked sent with the
 * execution's emailSent/emailSentAt; refused for now (network, SMTP, HTTP
 * 429 or 5xx), retried after a backoff with jitter until
 * EMAIL_MAX_ATTEMPTS; refused for good (another HTTP 4xx), failed.
 * *sent_out (may be NULL) gets how many were sent. For hosts that run no
 * execution workers (the workers start a thread doing this every
 * EMAIL_POLL_MS). Returns EE_OK (also when some deliveries failed: they
 * are recorded); EE_EINVAL; the storage's statuses. Thread-safe.
 */
EE_API ee_status ee_email_outbox_run(ee_engine *engine, uint32_t max, uint64_t *sent_out);

/**
 * The outbox's counts for monitoring: {"queued", "sending", "sent",
 * "failed", "oldestQueuedAgeMs", "transport": "smtp" | "api" | "none"}.
 * "oldestQueuedAgeMs" is the age of the oldest of the (at most 1,000)
 * queued messages due first, so the call reads a bounded page however long
 * the queue grows (a lower bound when more wait, retried ones due later).
 * *out (ee_free()). Returns EE_OK; EE_EINVAL; the storage's statuses.
 */
EE_API ee_status ee_email_outbox_stats(ee_engine *engine, char **out);

EE_END_DECLS

#endif
