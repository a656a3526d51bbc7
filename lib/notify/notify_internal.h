/*
 * lib/notify/notify_internal.h - the e-mail files of lib/notify only
 * (email.c, email_template.c, email_outbox.c). docs/email.md.
 */
#ifndef EE_NOTIFY_NOTIFY_INTERNAL_H
#define EE_NOTIFY_NOTIFY_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/core.h"
#include "core/record.h"
#include "engine/engine.h"
#include "notify/notify.h"

typedef enum { N_NONE, N_SMTP, N_RESEND } n_transport;

typedef struct n_state {
    ee_engine *engine;
    n_transport via;
    int64_t max_attempts;
    int64_t backoff_ms;
    int64_t backoff_max_ms;
    int64_t lease_ms;
    int64_t per_user_hour;
    int64_t poll_ms;
    char owner[64];            /* this engine's claims: random */
    pthread_mutex_t lock;      /* the runner thread's fields */
    pthread_cond_t wake;
    pthread_t thread;
    bool started, stopping;
} n_state;

n_state *ee__notify_state(ee_engine *engine);

/* The stored template of a workflow (active or not): *out new reference;
 * EE_ENOTFOUND. */
ee_status ee__email_template_find(ee_engine *engine, const char *workflow_id, json_t **out);

/* The subject and body of the e-mail about `x` (malloc'ed). */
ee_status ee__email_render(ee_engine *engine, const ee__email_exec *x, char **subject_out,
                           char **body_out, size_t *body_len_out);

/* The default template (docs/email.md). */
extern const char *const ee__email_default_subject;
extern const char *const ee__email_default_body;

/* The outbox map (email_outbox.c). */
extern const ee__record_map ee__email_outbox_map;

#endif
