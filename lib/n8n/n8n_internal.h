/*
 * lib/n8n/n8n_internal.h - the n8n client's parsers, shared by client.c,
 * the unit tests and the fuzz target. Every parser takes untrusted input
 * (whatever an n8n, or something pretending to be one, answered) and
 * either returns a validated, normalised document or EE_EPARSE with a
 * message; none of them crashes or reads past its input.
 */
#ifndef EE_N8N_INTERNAL_H
#define EE_N8N_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "execengine/n8n.h"

#define EE__N8N_DEFAULT_MAX_DEPTH 128
#define EE__N8N_MAX_NODES 10000
#define EE__N8N_MAX_TAGS 1000
#define EE__N8N_MESSAGE_MAX 500
/* Longest text the client's callers may hand it (core's bounded parse
 * refuses more with EE_ETOOBIG before reading it): options and listing
 * queries, a webhook body (n8n's own default payload cap is 16 MiB), and a
 * workflow for ee_n8n_workflow_trigger() (16 MiB too: twice what the cost
 * estimate takes; reading 64 MiB just to refuse more took longer than the
 * 10 ms a refusal may). */
#define EE__N8N_OPTIONS_MAX (64 * 1024)
#define EE__N8N_BODY_MAX (16 * 1024 * 1024)
#define EE__N8N_WORKFLOW_MAX (16 * 1024 * 1024)

/* Kinds of items a listing holds. */
typedef enum { EE__N8N_WORKFLOWS, EE__N8N_EXECUTIONS } ee__n8n_kind;

/* Parse `len` bytes as one JSON value, refusing nesting deeper than
 * max_depth before jansson sees it. *out is a new reference.
 * EE_EPARSE (message says why, with `what` naming the document) or EE_ENOMEM. */
ee_status ee__n8n_json_parse(const char *data, size_t len, size_t max_depth, const char *what,
                             json_t **out);

/* A workflow object as n8n returns it -> the normalised workflow of n8n.h
 * (new reference in *out). EE_EPARSE on a shape that is not a workflow. */
ee_status ee__n8n_workflow_normalise(const json_t *wf, json_t **out);

/* An execution object -> the normalised execution of n8n.h; `keep_data`
 * copies n8n's raw "data" into the result. EE_EPARSE on a bad shape. */
ee_status ee__n8n_execution_normalise(const json_t *ex, bool keep_data, json_t **out);

/* One listing page {"data": [...], "nextCursor": string|null}: appends the
 * normalised items to `into` and points *next at the cursor (borrowed from
 * `page`, NULL at the end). EE_EPARSE on a bad page. */
ee_status ee__n8n_page_parse(const json_t *page, ee__n8n_kind kind, bool keep_data, json_t *into,
                             const char **next);

/* The trigger document of ee_n8n_workflow_trigger() for a workflow object
 * (new reference). EE_EINVAL when wf has no "nodes" array. */
ee_status ee__n8n_trigger(const json_t *wf, json_t **out);

/* n8n's own message from an error answer's body (JSON {"message"} or
 * {"error"}, else the text), and its "hint" if any: control characters
 * replaced, cut to EE__N8N_MESSAGE_MAX bytes, secrets redacted. */
void ee__n8n_error_text(const char *body, size_t len, char *msg, size_t msg_cap, char *hint,
                        size_t hint_cap);

/* Whether a webhook path is one this client can call: non-empty, no
 * parameters (":id"), no expression, only URL path characters, no "..". */
bool ee__n8n_path_ok(const char *path, const char **why);

#endif
