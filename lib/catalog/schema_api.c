/*
 * The public text API of execengine/schema.h over the json_t one of
 * catalog/schema.h: bounds and encoding are checked on the text before
 * jansson parses it, so an oversized, too deeply nested or non-UTF-8 input
 * gets its own status and a message saying which limit it broke.
 */
#include "catalog/schema_internal.h"

#include <string.h>

/* Offset of the first byte that does not start a well-formed UTF-8
 * sequence, or len if there is none. */
static size_t utf8_bad_offset(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char b = (unsigned char)s[i];
        size_t n = b < 0x80 ? 1 : b < 0xC0 ? 0 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF8 ? 4 : 0;
        if (n == 0 || i + n > len || !ee__utf8_valid(s + i, n))
            return i;
        i += n;
    }
    return len;
}

/* Parse `text` as `what` ("schema", "instance") within the limits. */
static ee_status parse_text(const char *text, const char *what, size_t max_depth, json_t **out)
{
    *out = NULL;
    size_t len = strlen(text);
    if (len > EE_SCHEMA_MAX_TEXT)
        return ee__error(EE_ETOOBIG, "%s text is %zu bytes, more than the %d allowed", what, len,
                         EE_SCHEMA_MAX_TEXT);
    size_t bad = utf8_bad_offset(text, len);
    if (bad < len)
        return ee__error(EE_EPARSE, "%s text is not valid UTF-8 (byte offset %zu)", what, bad);
    if (!ee__json_depth_ok(text, len, max_depth))
        return ee__error(EE_ETOOBIG, "%s nests arrays/objects deeper than %zu levels", what,
                         max_depth);
    json_error_t err;
    *out = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (*out == NULL)
        return ee__error(EE_EPARSE, "%s is not valid JSON: %s (line %d, column %d)", what,
                         err.text, err.line, err.column);
    return EE_OK;
}

ee_status ee__schema_compile_text(ee_schema **out, const char *schema_json, unsigned flags)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL || schema_json == NULL)
        return ee__error(EE_EINVAL, "ee_schema_compile: out and schema_json must not be NULL");
    json_t *doc;
    ee_status st = parse_text(schema_json, "schema", EE_SCHEMA_MAX_SCHEMA_DEPTH, &doc);
    if (st == EE_OK)
        st = ee__schema_compile_flags(out, doc, flags);
    json_decref(doc);
    return st;
}

ee_status ee_schema_compile(ee_schema **out, const char *schema_json)
{
    return ee__schema_compile_text(out, schema_json, 0);
}

ee_status ee_schema_validate(const ee_schema *schema, const char *instance_json,
                             char **out_report)
{
    if (out_report != NULL)
        *out_report = NULL;
    if (schema == NULL || instance_json == NULL)
        return ee__error_out(out_report, ee__error(EE_EINVAL, "ee_schema_validate: schema and "
                                                              "instance_json must not be NULL"));
    json_t *inst, *report = NULL;
    ee_status st = parse_text(instance_json, "instance", EE_SCHEMA_MAX_DEPTH, &inst);
    if (st == EE_OK)
        st = ee__schema_validate_parsed(schema, inst, &report);
    json_decref(inst);
    if (st == EE_OK && out_report != NULL)
        return ee__json_out(out_report, report);
    json_decref(report);
    return ee__error_out(out_report, st);
}

ee_status ee_schema_apply_defaults(const ee_schema *schema, const char *instance_json,
                                   char **out_json)
{
    if (out_json != NULL)
        *out_json = NULL;
    if (schema == NULL || instance_json == NULL || out_json == NULL)
        return ee__error_out(out_json, ee__error(EE_EINVAL, "ee_schema_apply_defaults: schema, "
                                                            "instance_json and out_json must not "
                                                            "be NULL"));
    json_t *inst;
    ee_status st = parse_text(instance_json, "instance", EE_SCHEMA_MAX_DEPTH, &inst);
    if (st == EE_OK)
        st = ee__schema_apply_defaults(schema, inst);
    if (st != EE_OK) {
        json_decref(inst);
        return ee__error_out(out_json, st);
    }
    /* JSON_ENCODE_ANY: the instance may be a scalar. */
    char *text = json_dumps(inst, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(inst);
    if (text == NULL)
        return ee__error_out(out_json, ee__error(EE_ENOMEM, "out of memory serialising defaults"));
    *out_json = text;
    return EE_OK;
}
