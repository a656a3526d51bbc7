/*
 * lib/credentials/integrations.h - the integration catalog
 * (data/integrations.json): service -> n8n node types, credential types,
 * personal or platform-funded, and the PLATFORM_* variables that fund it.
 * Immutable once loaded; safe to share between threads.
 */
#ifndef EE_CREDENTIALS_INTEGRATIONS_H
#define EE_CREDENTIALS_INTEGRATIONS_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "execengine/errors.h"

/* Largest catalog file accepted. */
#define EE__INTEGRATIONS_MAX_BYTES (1024 * 1024)

typedef struct ee__integrations ee__integrations;

typedef struct {
    const char *service;     /* "Gmail" */
    const char *category;    /* "email" */
    bool is_personal;
    bool is_llm;             /* an LLM credential a customer key may replace */
    const json_t *nodes;     /* array of node types / short names */
    const json_t *credentials; /* array of credential types */
    const json_t *platform_env; /* array of PLATFORM_* names (platform only) */
} ee__integration;

/* Parse a catalog from JSON text (copied). Returns EE_OK; EE_ETOOBIG;
 * EE_EPARSE (not JSON); EE_EINVAL (wrong shape: the message names the
 * service index and field; a node or credential type claimed by two
 * services); EE_ENOMEM. */
ee_status ee__integrations_parse(ee__integrations **out, const char *text, size_t len);
ee_status ee__integrations_load_file(ee__integrations **out, const char *path);
void ee__integrations_free(ee__integrations *cat);

size_t ee__integrations_count(const ee__integrations *cat);
const ee__integration *ee__integrations_at(const ee__integrations *cat, size_t i);
/* The service a node type (or short name) / credential type belongs to. */
const ee__integration *ee__integrations_by_node(const ee__integrations *cat, const char *node);
const ee__integration *ee__integrations_by_credential(const ee__integrations *cat,
                                                      const char *cred_type);

#endif
