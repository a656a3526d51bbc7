/*
 * lib/notify/notify.h - semi-private: what the execution pipeline calls to
 * e-mail a run's results (docs/email.md). C types; the record is the JSON
 * the door renders anyway (ee_exec_get's), borrowed.
 */
#ifndef EE_NOTIFY_NOTIFY_H
#define EE_NOTIFY_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "execengine/engine.h"

/* One ended execution to e-mail about. Everything is borrowed. */
typedef struct ee__email_exec {
    const char *workspace;
    const char *user;          /* "" when none */
    const char *org;           /* "" when none */
    const char *execution_id;
    const char *workflow_id;   /* workflowCatalogId */
    const char *workflow_name; /* may be NULL */
    const json_t *record;      /* the public record, as ee_exec_get() renders it */
} ee__email_exec;

/* Whether a transport is configured (SMTP_HOST, else PLATFORM_RESEND_KEY)
 * with a sender (PLATFORM_FROM_EMAIL). False with a message when not. */
bool ee__email_configured(ee_engine *engine);

/* Take one message of the user's hourly sending limit
 * (EMAIL_MAX_PER_USER_PER_HOUR) on the engine's counters: a reservation
 * (*resv_out) to end with ee__email_reserve_end(). Not inside a storage
 * scope (the counters may share its database). EE_OK; EE_ERATELIMIT
 * (detail {"retryAfterMs"}); the counters' statuses. */
ee_status ee__email_reserve(ee_engine *engine, const char *workspace, const char *user,
                            uint64_t *resv_out);
/* Commit (the message was queued) or give back a reservation. */
void ee__email_reserve_end(ee_engine *engine, const char *workspace, const char *user,
                           uint64_t resv, bool commit);

/* Render the workflow's template (or the default one) over the record and
 * insert the queued message for `to`. May run inside the caller's storage
 * scope (the executions' final write: it commits with it). id_out (25
 * bytes, may be NULL) gets the message id. EE_OK; EE_EINVAL (the address,
 * CR/LF/NUL in the rendered subject); EE_EPARSE/EE_ENOTFOUND/EE_ETOOBIG
 * (the stored template no longer renders); the storage's statuses. */
ee_status ee__email_enqueue(ee_engine *engine, const ee__email_exec *x, const char *to,
                            char *id_out);

/* The email.failed audit entry of an e-mail a run asked for that is not
 * queued: `why` EE_ERATELIMIT (the user's hourly limit), EE_ENOTSUPPORTED
 * (e-mail not configured), or the status of a template that does not
 * render (a refused subject ...). No message exists: no target; the detail
 * is {"executionId", "reason"}, never the address. Written at the engine's
 * clock; inside the caller's storage scope it commits with it. */
void ee__email_audit_dropped(ee_engine *engine, const char *workspace, const char *org,
                             const char *execution_id, ee_status why);

/* Delete the outbox's ended messages (sent or failed: rendered bodies and
 * recipients) that ended before `before_ms`; a queued or sending message is
 * never deleted. *deleted_out (may be NULL) gets the count. EE_OK; the
 * storage's statuses. Called by ee_exec_purge() (RESULT_RETENTION_DAYS). */
ee_status ee__email_outbox_purge(ee_engine *engine, int64_t before_ms, uint64_t *deleted_out);

/* Start / stop the background outbox runner (EMAIL_POLL_MS; 0: none).
 * Started with the execution workers; stop is idempotent. */
ee_status ee__email_worker_start(ee_engine *engine);
void ee__email_worker_stop(ee_engine *engine);

/* Whether `s` is an address the engine sends to: at most 254 bytes and the
 * e-mail option type's check (ee__config_email_ok(): a plain ASCII
 * addr-spec, nothing a header would read as another address). */
bool ee__email_address_ok(const char *s);

#define EE__EMAIL_OUTBOX_COLL "emailOutbox"
#define EE__EMAIL_TEMPLATES_COLL "executionEmailTemplates"

#endif
