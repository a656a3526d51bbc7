/*
 * lib/n8n/n8n.h - the n8n client's calls for the library's other modules
 * (semi-private; the public ones are in include/execengine/n8n.h).
 */
#ifndef EE_N8N_N8N_H
#define EE_N8N_N8N_H

#include <stdint.h>

#include "execengine/n8n.h"

/* ee_n8n_trigger_webhook() that waits for the answer at most timeout_ms
 * (the run's deadline), or the client's webhookTimeoutMs when that is
 * shorter or timeout_ms is 0. Past it: EE_ETIMEOUT (n8n may have received
 * the request: never sent again). Statuses of ee_n8n_trigger_webhook(). */
ee_status ee__n8n_trigger_webhook_within(ee_n8n *client, const char *method, const char *path,
                                         const char *body_json, int64_t timeout_ms, char **out);

#endif
