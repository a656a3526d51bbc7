/*
 * execengine/schema.h - JSON Schema (draft 2020-12) validation of workflow
 * inputs.
 *
 * A schema is compiled once (ee_schema_compile()) into an immutable
 * ee_schema; every regular expression it holds is compiled once, every
 * $ref and $dynamicRef is resolved once, within the schema document (its
 * root and the subschemas with an "$id"; nothing is fetched). Validating
 * an instance never re-parses the schema. docs/schema.md lists the
 * supported keywords and their semantics.
 *
 * Validation report (JSON text):
 *     {"valid": false,
 *      "errors": [{"instancePath": "/a/0",
 *                  "schemaPath": "/properties/a/items/type",
 *                  "keyword": "type",
 *                  "message": "expected integer, got string"}, ...]}
 * Every violation is listed (up to EE_SCHEMA_MAX_ERRORS; past that the
 * report carries "truncated": true). Paths are RFC 6901 JSON pointers
 * ("~" and "/" in names escaped as "~0" and "~1"); "schemaPath" follows
 * the evaluation, through "$ref" ("/properties/a/$ref/type").
 *
 * Limits. Inputs beyond them are refused with EE_ETOOBIG and a message
 * naming the limit, never validated partially:
 *   EE_SCHEMA_MAX_TEXT        schema or instance text, in bytes
 *   EE_SCHEMA_MAX_DEPTH       nesting of an instance (arrays/objects)
 *   EE_SCHEMA_MAX_SCHEMA_DEPTH nesting of a schema document
 * Evaluation itself is bounded: one work budget per validation that
 * subschema evaluations, value comparisons, string scans and regular-
 * expression matching all draw from (EE_ETOOBIG when it runs out); see
 * docs/schema.md.
 *
 * "format" is asserted for the formats docs/schema.md lists (email,
 * date-time, uri, ipv4, uuid ...) unless the schema's root "$vocabulary"
 * lists format-annotation without format-assertion.
 *
 * Threads. A compiled ee_schema is immutable: any number of threads may
 * validate with it at once. ee_schema_free() must not race with its use.
 */
#ifndef EXECENGINE_SCHEMA_H
#define EXECENGINE_SCHEMA_H

#include "common.h"
#include "errors.h"

EE_BEGIN_DECLS

/** Largest schema or instance text accepted, in bytes (1 MiB). */
#define EE_SCHEMA_MAX_TEXT (1024 * 1024)
/** Deepest nesting of arrays and objects accepted in an instance. */
#define EE_SCHEMA_MAX_DEPTH 64
/** Deepest nesting of arrays and objects accepted in a schema document. */
#define EE_SCHEMA_MAX_SCHEMA_DEPTH 128
/** Most violations listed in one report. */
#define EE_SCHEMA_MAX_ERRORS 256

typedef struct ee_schema ee_schema;

/**
 * Compile the JSON Schema (draft 2020-12) in `schema_json` (UTF-8 JSON text,
 * an object or a boolean; copied). *out is owned by the caller
 * (ee_schema_free()) and is immutable: it may be shared between threads.
 *
 * Returns EE_OK;
 *   EE_EINVAL  out or schema_json NULL, or the schema is not a valid schema:
 *              not an object or boolean, a keyword of the wrong type
 *              ("minLength": "x"), a pattern that is not ECMA-262 or does
 *              not compile, a $ref
 *              whose target or anchor does not exist, an $id with a
 *              fragment, a malformed or duplicate anchor or $id, a $ref or
 *              $dynamicRef cycle that never reaches an instance member (the
 *              message names the schema path);
 *   EE_ENOTSUPPORTED  a $ref or $dynamicRef to another document (but the
 *              draft 2020-12 meta-schema), $recursiveRef, an $id reached
 *              only through a JSON pointer outside the subschema keywords,
 *              an ECMA-262 pattern PCRE2 cannot run ("(?<=a+)b");
 *   EE_EPARSE  the text is not JSON, or not UTF-8;
 *   EE_ETOOBIG the text exceeds EE_SCHEMA_MAX_TEXT or nests deeper than
 *              EE_SCHEMA_MAX_SCHEMA_DEPTH, or an $id resolves to a URI
 *              longer than 2048 bytes;
 *   EE_ENOMEM.
 * On failure *out is NULL and the message is in ee_error_last_message().
 */
EE_API ee_status ee_schema_compile(ee_schema **out, const char *schema_json);

/** Free a compiled schema. Accepts NULL. */
EE_API void ee_schema_free(ee_schema *schema);

/**
 * Validate the JSON text `instance_json` (any JSON value) against `schema`.
 *
 * *out_report (may be NULL if the caller only wants the status) is owned
 * by the caller (ee_free()):
 *   EE_OK           the instance is valid; *out_report is the report
 *                   {"valid": true, "errors": []};
 *   EE_EVALIDATION  the instance violates the schema; *out_report is the
 *                   error document of errors.h whose "detail" is the report
 *                   ({"valid": false, "errors": [...]}); the same report is
 *                   this thread's error detail, and the message summarises
 *                   the first violation;
 *   EE_EINVAL       schema or instance_json NULL;
 *   EE_EPARSE       the text is not JSON, or not UTF-8 (the message gives
 *                   the byte offset);
 *   EE_ETOOBIG      the instance exceeds a limit (size, depth, a number of
 *                   more than 10,000 digits), or its evaluation exceeded
 *                   the work bound;
 *   EE_ENOMEM.
 * On every failure *out_report holds the error document (or NULL on ENOMEM).
 * Thread-safe for a shared schema.
 */
EE_API ee_status ee_schema_validate(const ee_schema *schema, const char *instance_json,
                                    char **out_report);

/**
 * Apply the schema's defaults to `instance_json`: for every object the
 * instance holds where the schema (through "properties", "$ref" and
 * "allOf") declares a property with a "default" that the object lacks, the
 * default is added; present objects are filled recursively. The instance
 * is not validated (validate the result). *out_json (the new instance,
 * compact JSON) is owned by the caller (ee_free()).
 *
 * Returns EE_OK; EE_EINVAL (a NULL argument); EE_EPARSE; EE_ETOOBIG (as
 * ee_schema_validate(), or a default to copy holds a number beyond int64
 * or a double); EE_ENOMEM. On failure *out_json is the error
 * document of errors.h (or NULL on ENOMEM). Thread-safe for a shared schema.
 */
EE_API ee_status ee_schema_apply_defaults(const ee_schema *schema, const char *instance_json,
                                          char **out_json);

EE_END_DECLS

#endif
