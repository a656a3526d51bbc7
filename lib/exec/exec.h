/*
 * lib/exec/exec.h - semi-private: what other modules (billing's analytics)
 * read of the executions; C types, no JSON. The module's own types stay in
 * exec_internal.h.
 */
#ifndef EE_EXEC_EXEC_H
#define EE_EXEC_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "execengine/engine.h"

/* What analytics need of one execution. Borrowed for the callback. */
typedef struct ee__exec_fact {
    const char *user_id;     /* "" when none */
    const char *workflow_id; /* workflowCatalogId */
    int64_t created_at;
    bool ended;
    bool completed;
    int64_t exec_ms;
    /* a results e-mail was asked for: at the start (email.to) or later
     * (ee_email_send_execution()); email_sent implies it */
    bool email_requested;
    bool email_sent;
} ee__exec_fact;

/* Return 0 to go on, anything else to stop (the walk then answers EE_ECANCELLED). */
typedef int (*ee__exec_fact_fn)(const ee__exec_fact *fact, void *payload);

/* Call fn for each execution of `workspace` created in [from, to), oldest
 * first, reading at most `max` of them: one more is EE_ETOOBIG (nothing
 * more is called). Returns EE_OK; EE_ETOOBIG; EE_ECANCELLED; EE_ECORRUPT;
 * the storage's statuses. Thread-safe. */
ee_status ee__exec_walk(ee_engine *engine, const char *workspace, int64_t from, int64_t to,
                        uint64_t max, ee__exec_fact_fn fn, void *payload);

/* E-mail (lib/notify): the execution `id` of `workspace` as ee_exec_get()
 * renders it (*record_out, new reference) and the address its run asked
 * results to be sent to (*email_to_out, malloc'ed; NULL when none).
 * EE_OK; EE_ENOTFOUND; the storage's statuses. */
ee_status ee__exec_email_view(ee_engine *engine, const char *workspace, const char *id,
                              json_t **record_out, char **email_to_out);

/* Set emailSent and emailSentAt = at_ms on the execution (once: a record
 * already marked keeps its first time). Joins the caller's storage scope.
 * EE_OK; EE_ENOTFOUND; the storage's statuses. */
ee_status ee__exec_mark_email_sent(ee_engine *engine, const char *workspace, const char *id,
                                   int64_t at_ms);

/* Record on the execution that a results e-mail was queued for it on
 * demand (ee_email_send_execution()), so analytics count it as requested
 * (once: a record already marked is not written). Joins the caller's
 * storage scope. EE_OK; EE_ENOTFOUND; the storage's statuses. */
ee_status ee__exec_mark_email_requested(ee_engine *engine, const char *workspace, const char *id);

#endif
