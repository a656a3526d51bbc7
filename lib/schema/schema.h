/*
 * lib/schema/schema.h - semi-private: what the library's other modules (the
 * catalog) call of the JSON Schema validator; never installed. The same
 * operations as execengine/schema.h on jansson values, so the catalog
 * validates a workflow's parameters without serialising and re-parsing
 * them, and the numbers jansson cannot hold, kept aside exactly. The
 * validator's own files share lib/schema/schema_internal.h (private).
 */
#ifndef EE_SCHEMA_SCHEMA_H
#define EE_SCHEMA_SCHEMA_H

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

/* ---- numbers jansson cannot hold (schema_bignum.c) ---------------------------------------- */

/* The numbers of a parsed document that jansson cannot hold exactly
 * (integers past int64, reals past a double), kept aside as written. */
typedef struct ee__schema_bigs ee__schema_bigs;

/* ee__json_parse() of a schema or instance text, numbers jansson cannot
 * hold set aside in *bigs (NULL when there are none; free with
 * ee__schema_bigs_free). EE_ETOOBIG also for a number past the bounds. */
ee_status ee__schema_parse_text(const char *text, size_t max_bytes, size_t max_depth,
                                const char *what, json_t **out, ee__schema_bigs **bigs);
void ee__schema_bigs_free(ee__schema_bigs *b);
/* Render `doc` (parsed with `bigs`, which may be NULL) as compact JSON
 * text with every big number as its token was written: the document a
 * caller gave back, defaults added, nothing rounded. *out is the caller's
 * (free()). EE_OK; EE_ENOMEM. */
ee_status ee__schema_bigs_dump(const json_t *doc, const ee__schema_bigs *bigs, char **out);
/* ee__schema_validate() of an instance parsed by ee__schema_parse_text(),
 * with its big numbers (`bigs`, may be NULL). */
ee_status ee__schema_validate_bigs(const ee_schema *schema, const json_t *instance,
                                   const ee__schema_bigs *bigs, json_t **report);

#endif
