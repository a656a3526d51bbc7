/*
 * lib/catalog/schema.h - the JSON Schema validator's internal interface for
 * the catalog module: the same operations as execengine/schema.h on jansson
 * values, so the catalog validates a workflow's parameters without
 * serialising and re-parsing them.
 */
#ifndef EE_CATALOG_SCHEMA_H
#define EE_CATALOG_SCHEMA_H

#include <jansson.h>

#include "core/core.h"
#include "execengine/schema.h"

/* Compile a schema from a jansson value (deep-copied: the caller keeps its
 * reference). Statuses as ee_schema_compile(), except EE_EPARSE. */
ee_status ee__schema_compile(ee_schema **out, const json_t *schema);

/* Compile options. EE__SCHEMA_FORMAT_ANNOTATE: "format" is an annotation
 * only (the engine's SCHEMA_FORMAT_ASSERT=0); by default the formats
 * docs/schema.md lists are asserted. */
#define EE__SCHEMA_FORMAT_ANNOTATE 1u
ee_status ee__schema_compile_flags(ee_schema **out, const json_t *schema, unsigned flags);
/* ee_schema_compile() with options. */
ee_status ee__schema_compile_text(ee_schema **out, const char *schema_json, unsigned flags);

/* Validate `instance`. *report (optional) receives a new reference to the
 * report {"valid", "errors"[, "truncated"]} when the status is EE_OK or
 * EE_EVALIDATION, NULL otherwise. Returns EE_OK (valid), EE_EVALIDATION
 * (invalid: the report is also this thread's error detail), EE_ETOOBIG
 * (limits, see schema.h), EE_EINVAL (NULL arguments), EE_ENOMEM. */
ee_status ee__schema_validate(const ee_schema *schema, const json_t *instance, json_t **report);

/* Add the schema's defaults to `instance` in place (see
 * ee_schema_apply_defaults()). Returns EE_OK, EE_ETOOBIG, EE_EINVAL,
 * EE_ENOMEM; on failure the instance may hold some of the defaults. */
ee_status ee__schema_apply_defaults(const ee_schema *schema, json_t *instance);

/* Whether the schema document is the boolean schema `true` or an object
 * without any keyword that constrains (fast path for "no inputSchema"). */
bool ee__schema_accepts_all(const ee_schema *schema);

#endif
