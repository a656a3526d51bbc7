/*
 * The public text API of execengine/schema.h over the json_t one of
 * schema/schema.h: bounds and encoding are checked on the text before
 * jansson parses it, so an oversized, too deeply nested or non-UTF-8 input
 * gets its own status and a message saying which limit it broke.
 */
#include "schema/schema_internal.h"

#include <string.h>

/* Parse `text` as `what` ("schema", "instance") within the limits, through
 * core's one bounded parse (a 100 MB text is refused unread). */
static ee_status parse_text(const char *text, const char *what, size_t max_depth, json_t **out)
{
    return ee__json_parse(text, EE_SCHEMA_MAX_TEXT, max_depth, JSON_DECODE_ANY | JSON_ALLOW_NUL,
                          what, out);
}

ee_status ee__schema_compile_text(ee_schema **out, const char *schema_json, unsigned flags)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL || schema_json == NULL)
        return ee__error(EE_EINVAL, "ee_schema_compile: out and schema_json must not be NULL");
    json_t *doc;
    ee__schema_bigs *bigs;
    ee_status st = ee__schema_parse_text(schema_json, EE_SCHEMA_MAX_TEXT,
                                         EE_SCHEMA_MAX_SCHEMA_DEPTH, "schema", &doc, &bigs);
    if (st == EE_OK)
        st = ee__schema_compile_bigs(out, doc, flags, bigs);
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
    ee__schema_bigs *bigs;
    ee_status st = ee__schema_parse_text(instance_json, EE_SCHEMA_MAX_TEXT, EE_SCHEMA_MAX_DEPTH,
                                         "instance", &inst, &bigs);
    if (st == EE_OK)
        st = ee__schema_validate_bigs(schema, inst, bigs, &report);
    json_decref(inst);
    ee__schema_bigs_free(bigs);
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
    /* the instance may be a scalar */
    char *text = ee__json_text(inst, NULL);
    json_decref(inst);
    if (text == NULL)
        return ee__error_out(out_json, ee__error(EE_ENOMEM, "out of memory serialising defaults"));
    *out_json = text;
    return EE_OK;
}
