/*
 * References within one schema document: "$anchor", embedded schema
 * resources ("$id" in a subschema) with relative references resolved per
 * RFC 3986, JSON pointers relative to an embedded resource, "$dynamicRef"
 * / "$dynamicAnchor" with the draft 2020-12 dynamic scope (and its
 * bookending rule), what stays refused (other documents, $recursiveRef),
 * malformed identifiers, and the bounds on reference cycles and deep or
 * fanning-out dynamic references.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "schema/schema.h"
#include "schema_test.h"

static ee_status check(const ee_schema *s, const char *instance)
{
    return ee_schema_validate(s, instance, NULL);
}

static void expect_valid(const ee_schema *s, const char *instance)
{
    ee_status st = check(s, instance);
    cr_expect_eq(st, EE_OK, "%s: got %s (%s)", instance, ee_status_name(st),
                 ee_error_last_message());
}

static void expect_invalid(const ee_schema *s, const char *instance)
{
    ee_status st = check(s, instance);
    cr_expect_eq(st, EE_EVALIDATION, "%s: got %s", instance, ee_status_name(st));
}

/* The first violation's schemaPath of an invalid instance. */
static void expect_first_schema_path(const ee_schema *s, const char *instance, const char *spath)
{
    char *out = NULL;
    cr_assert_eq(ee_schema_validate(s, instance, &out), EE_EVALIDATION, "%s", instance);
    json_t *doc = json_loads(out, 0, NULL); /* the error document, the report its detail */
    cr_assert_not_null(doc);
    const json_t *rep = json_object_get(json_object_get(doc, "error"), "detail");
    const json_t *e = json_array_get(json_object_get(rep, "errors"), 0);
    cr_expect_str_eq(json_string_value(json_object_get(e, "schemaPath")), spath, "%s", out);
    json_decref(doc);
    ee_free(out);
}

/* ---- $anchor ------------------------------------------------------------------ */

Test(schema_refs, anchor_in_the_same_resource)
{
    ee_schema *s = compile_ok("{\"properties\":{\"n\":{\"$ref\":\"#count\"}},"
                              "\"$defs\":{\"c\":{\"$anchor\":\"count\",\"type\":\"integer\","
                              "\"minimum\":0}}}");
    expect_valid(s, "{\"n\":3}");
    expect_invalid(s, "{\"n\":\"3\"}");
    expect_first_schema_path(s, "{\"n\":-1}", "/properties/n/$ref/minimum");
    ee_schema_free(s);
}

Test(schema_refs, anchor_of_another_resource_of_the_document)
{
    /* "item.json#name": the anchor of the embedded resource item.json, not
     * the root's anchor of the same name */
    ee_schema *s = compile_ok(
        "{\"$id\":\"https://example.test/forms/root.json\","
        "\"properties\":{\"a\":{\"$ref\":\"item.json#name\"},\"b\":{\"$ref\":\"#name\"}},"
        "\"$defs\":{\"rootname\":{\"$anchor\":\"name\",\"type\":\"integer\"},"
        "\"item\":{\"$id\":\"item.json\",\"$defs\":{\"n\":{\"$anchor\":\"name\","
        "\"type\":\"string\"}}}}}");
    expect_valid(s, "{\"a\":\"x\",\"b\":1}");
    expect_invalid(s, "{\"a\":1}");
    expect_invalid(s, "{\"b\":\"x\"}");
    ee_schema_free(s);
    /* an absolute URI with the anchor, and a percent-encoded one */
    s = compile_ok("{\"$id\":\"urn:example:forms\",\"$ref\":\"urn:example:forms#%6Eame\","
                   "\"$defs\":{\"n\":{\"$anchor\":\"name\",\"maxLength\":2}}}");
    expect_valid(s, "\"ab\"");
    expect_invalid(s, "\"abc\"");
    ee_schema_free(s);
}

Test(schema_refs, anchor_inside_a_value_is_not_an_identifier)
{
    /* an "$anchor" member of an enum value or of a const is data */
    expect_compile_fails("{\"$ref\":\"#x\",\"enum\":[{\"$anchor\":\"x\"}],"
                         "\"const\":{\"$anchor\":\"x\"}}",
                         EE_EINVAL, "$ref \"#x\" names an anchor that no subschema");
}

/* ---- embedded resources ($id in a subschema) ------------------------------------- */

Test(schema_refs, embedded_id_resolves_relative_refs_against_its_own_base)
{
    /* "#/$defs/zip" inside address/v1.json is address/v1.json's own $defs,
     * not the root's (whose zip is an integer) */
    ee_schema *s = compile_ok(
        "{\"$id\":\"https://example.test/schemas/order.json\","
        "\"properties\":{\"ship\":{\"$ref\":\"address/v1.json\"},"
        "\"zip\":{\"$ref\":\"#/$defs/zip\"}},"
        "\"$defs\":{\"zip\":{\"type\":\"integer\"},"
        "\"address\":{\"$id\":\"address/v1.json\",\"type\":\"object\","
        "\"properties\":{\"zip\":{\"$ref\":\"#/$defs/zip\"},"
        "\"country\":{\"$ref\":\"../common/country.json\"}},"
        "\"$defs\":{\"zip\":{\"type\":\"string\",\"pattern\":\"^[0-9]{5}$\"}}},"
        "\"country\":{\"$id\":\"https://example.test/schemas/common/country.json\","
        "\"enum\":[\"FR\",\"DE\"]}}}");
    expect_valid(s, "{\"ship\":{\"zip\":\"75001\",\"country\":\"FR\"},\"zip\":5}");
    expect_invalid(s, "{\"ship\":{\"zip\":75001}}");
    expect_invalid(s, "{\"ship\":{\"country\":\"XX\"}}");
    expect_invalid(s, "{\"zip\":\"75001\"}");
    expect_first_schema_path(s, "{\"ship\":{\"zip\":\"7500\"}}",
                             "/properties/ship/$ref/properties/zip/$ref/pattern");
    ee_schema_free(s);
}

Test(schema_refs, nested_ids_resolve_against_the_nearest_enclosing_resource)
{
    /* d.json inside b/c.json is https://example.test/b/d.json; an absolute
     * path reference keeps the authority */
    ee_schema *s = compile_ok(
        "{\"$id\":\"https://example.test/a.json\",\"allOf\":[{\"$ref\":\"b/d.json\"},"
        "{\"$ref\":\"/b/e.json\"}],"
        "\"$defs\":{\"x\":{\"$id\":\"b/c.json\",\"not\":{\"$defs\":{"
        "\"y\":{\"$id\":\"d.json\",\"type\":\"number\"},"
        "\"z\":{\"$id\":\"./e.json\",\"minimum\":0}}}}}}");
    expect_valid(s, "1");
    expect_invalid(s, "\"1\"");
    expect_invalid(s, "-1");
    ee_schema_free(s);
    /* no root $id: relative ids and refs still match each other */
    s = compile_ok("{\"$ref\":\"item\",\"$defs\":{\"i\":{\"$id\":\"item\",\"type\":\"integer\"}}}");
    expect_valid(s, "7");
    expect_invalid(s, "7.5");
    ee_schema_free(s);
}

Test(schema_refs, json_pointer_into_an_embedded_resource)
{
    const char *defs = "\"$defs\":{\"money\":{\"$id\":\"https://example.test/money\","
                       "\"$defs\":{\"amount\":{\"type\":\"number\",\"minimum\":0},"
                       "\"currency\":{\"$ref\":\"#/$defs/code\"},"
                       "\"code\":{\"pattern\":\"^[A-Z]{3}$\"}}}}";
    char text[1024];
    /* by the resource's URI plus a pointer relative to it */
    snprintf(text, sizeof text,
             "{\"properties\":{\"a\":{\"$ref\":\"https://example.test/money#/$defs/amount\"},"
             "\"c\":{\"$ref\":\"https://example.test/money#/$defs/currency\"}},%s}",
             defs);
    ee_schema *s = compile_ok(text);
    expect_valid(s, "{\"a\":1.5,\"c\":\"EUR\"}");
    expect_invalid(s, "{\"a\":-1}");
    expect_invalid(s, "{\"c\":\"eur\"}");
    ee_schema_free(s);
    /* and by a pointer from the root that crosses into it */
    snprintf(text, sizeof text, "{\"properties\":{\"c\":{\"$ref\":\"#/$defs/money/$defs/currency\"}},%s}",
             defs);
    s = compile_ok(text);
    expect_valid(s, "{\"c\":\"EUR\"}");
    expect_invalid(s, "{\"c\":\"eur\"}");
    ee_schema_free(s);
    /* a pointer outside the keywords that hold subschemas, inside an
     * embedded resource: compiled on demand, its refs against that
     * resource */
    s = compile_ok("{\"$ref\":\"https://example.test/r#/definitions/a\","
                   "\"$defs\":{\"r\":{\"$id\":\"https://example.test/r\","
                   "\"definitions\":{\"a\":{\"$ref\":\"#/definitions/b\"},"
                   "\"b\":{\"type\":\"boolean\"}}}}}");
    expect_valid(s, "true");
    expect_invalid(s, "1");
    ee_schema_free(s);
}

Test(schema_refs, defaults_follow_refs_into_embedded_resources)
{
    ee_schema *s = compile_ok(
        "{\"$id\":\"https://example.test/job\",\"properties\":{\"retry\":{\"$ref\":\"retry\"}},"
        "\"$defs\":{\"retry\":{\"$id\":\"retry\",\"type\":\"object\",\"default\":{},"
        "\"properties\":{\"times\":{\"$ref\":\"#/$defs/times\"}},"
        "\"$defs\":{\"times\":{\"type\":\"integer\",\"default\":3}}}}}");
    char *out = NULL;
    cr_assert_eq(ee_schema_apply_defaults(s, "{}", &out), EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(out, "{\"retry\":{\"times\":3}}");
    ee_free(out);
    ee_schema_free(s);
}

/* ---- $dynamicRef ------------------------------------------------------------------- */

/* A generic tree whose nodes are "$dynamicRef": "#node": alone it accepts
 * any member; extended by a schema that also declares "$dynamicAnchor":
 * "node", every level of the tree is checked by the extension. */
#define TREE                                                                                \
    "\"tree\":{\"$id\":\"https://example.test/tree\",\"$dynamicAnchor\":\"node\","         \
    "\"type\":\"object\",\"properties\":{\"data\":true,\"children\":{\"type\":\"array\","   \
    "\"items\":{\"$dynamicRef\":\"#node\"}}}}"

Test(schema_refs, dynamic_ref_extends_a_recursive_schema)
{
    ee_schema *strict = compile_ok("{\"$id\":\"https://example.test/strict-tree\","
                                   "\"$dynamicAnchor\":\"node\",\"$ref\":\"tree\","
                                   "\"unevaluatedProperties\":false,\"$defs\":{" TREE "}}");
    ee_schema *loose =
        compile_ok("{\"$id\":\"https://example.test/loose\",\"$ref\":\"tree\",\"$defs\":{" TREE "}}");
    const char *typo_deep = "{\"children\":[{\"data\":1,\"children\":[{\"daat\":2}]}]}";
    const char *fine_deep = "{\"children\":[{\"data\":1,\"children\":[{\"data\":2}]}]}";
    expect_valid(strict, fine_deep);
    expect_invalid(strict, typo_deep);  /* the nested node resolves to strict-tree */
    expect_invalid(strict, "{\"daat\":1}");
    expect_valid(loose, typo_deep);     /* only tree's own anchor is in scope */
    expect_invalid(loose, "{\"children\":[1]}");
    expect_first_schema_path(strict, "{\"children\":[{\"daat\":2}]}",
                             "/$ref/properties/children/items/$dynamicRef/unevaluatedProperties");
    ee_schema_free(strict);
    ee_schema_free(loose);
}

Test(schema_refs, dynamic_ref_generic_list_of_t)
{
    /* list's items are "#T"; its own T accepts anything (the bookend);
     * int-list and str-list each bring their own T */
    const char *list = "\"list\":{\"$id\":\"list\",\"type\":\"array\",\"items\":{\"$dynamicRef\":"
                       "\"#T\"},\"$defs\":{\"any\":{\"$dynamicAnchor\":\"T\"}}}";
    char text[1024];
    snprintf(text, sizeof text,
             "{\"$id\":\"https://example.test/lists\",\"properties\":{"
             "\"ints\":{\"$ref\":\"ints\"},\"strs\":{\"$ref\":\"strs\"},\"any\":{\"$ref\":\"list\"}},"
             "\"$defs\":{%s,"
             "\"ints\":{\"$id\":\"ints\",\"$ref\":\"list\",\"$defs\":{\"t\":{\"$dynamicAnchor\":"
             "\"T\",\"type\":\"integer\"}}},"
             "\"strs\":{\"$id\":\"strs\",\"$ref\":\"list\",\"$defs\":{\"t\":{\"$dynamicAnchor\":"
             "\"T\",\"type\":\"string\"}}}}}",
             list);
    ee_schema *s = compile_ok(text);
    expect_valid(s, "{\"ints\":[1,2],\"strs\":[\"a\"],\"any\":[1,\"a\",null]}");
    expect_invalid(s, "{\"ints\":[1,\"2\"]}");
    expect_invalid(s, "{\"strs\":[\"a\",2]}");
    expect_first_schema_path(s, "{\"ints\":[true]}",
                             "/properties/ints/$ref/$ref/items/$dynamicRef/type");
    ee_schema_free(s);
    /* the outermost declaration in scope wins: the root's T over ints' */
    snprintf(text, sizeof text,
             "{\"$id\":\"https://example.test/outer\",\"$ref\":\"ints\","
             "\"$defs\":{\"t\":{\"$dynamicAnchor\":\"T\",\"minimum\":10},%s,"
             "\"ints\":{\"$id\":\"ints\",\"$ref\":\"list\",\"$defs\":{\"t\":{\"$dynamicAnchor\":"
             "\"T\",\"type\":\"integer\"}}}}}",
             list);
    s = compile_ok(text);
    expect_valid(s, "[10, 11.5]");
    expect_invalid(s, "[9]");
    ee_schema_free(s);
}

Test(schema_refs, dynamic_ref_without_bookend_behaves_as_ref)
{
    /* the initial target is an $anchor, not a $dynamicAnchor of the same
     * name: the root's $dynamicAnchor "T" is not consulted */
    ee_schema *s = compile_ok(
        "{\"$id\":\"https://example.test/root\",\"$dynamicAnchor\":\"T\",\"type\":\"array\","
        "\"$ref\":\"list\",\"$defs\":{\"list\":{\"$id\":\"list\",\"items\":{\"$dynamicRef\":"
        "\"#T\"},\"$defs\":{\"t\":{\"$anchor\":\"T\",\"type\":\"integer\"}}}}}");
    expect_valid(s, "[1,2]");
    expect_invalid(s, "[[1]]");
    ee_schema_free(s);
    /* a JSON-pointer $dynamicRef is a $ref */
    s = compile_ok("{\"$id\":\"https://example.test/p\",\"$dynamicAnchor\":\"x\",\"$ref\":"
                   "\"inner\",\"$defs\":{\"inner\":{\"$id\":\"inner\",\"properties\":{\"a\":"
                   "{\"$dynamicRef\":\"#/$defs/b\"}},\"$defs\":{\"b\":{\"$dynamicAnchor\":\"x\","
                   "\"type\":\"null\"}}}}}");
    expect_valid(s, "{\"a\":null}");
    expect_invalid(s, "{\"a\":{}}");
    ee_schema_free(s);
}

Test(schema_refs, dynamic_scope_is_left_with_its_resource)
{
    /* "if" enters resource first, which declares the anchor: once "if"
     * is evaluated it is out of scope for the $dynamicRef reached from
     * "then" */
    ee_schema *s = compile_ok(
        "{\"$id\":\"https://example.test/main\","
        "\"if\":{\"$id\":\"first\",\"$defs\":{\"t\":{\"$dynamicAnchor\":\"t\",\"type\":\"number\"}}},"
        "\"then\":{\"$id\":\"second\",\"$ref\":\"start\",\"$defs\":{\"t\":{\"$dynamicAnchor\":\"t\","
        "\"type\":\"null\"}}},"
        "\"$defs\":{\"start\":{\"$id\":\"start\",\"$dynamicRef\":\"inner#t\"},"
        "\"inner\":{\"$id\":\"inner\",\"$dynamicAnchor\":\"t\",\"type\":\"string\"}}}");
    expect_valid(s, "null");
    expect_invalid(s, "42");
    expect_invalid(s, "\"s\"");
    ee_schema_free(s);
}

static void *validate_many(void *arg)
{
    const ee_schema *s = arg;
    intptr_t bad = 0;
    for (int i = 0; i < 300; i++) {
        bad += check(s, "{\"children\":[{\"data\":1,\"children\":[{\"data\":2}]}]}") != EE_OK;
        bad += check(s, "{\"children\":[{\"children\":[{\"daat\":2}]}]}") != EE_EVALIDATION;
    }
    return (void *)bad;
}

Test(schema_refs, dynamic_scope_is_per_validation_across_threads)
{
    ee_schema *s = compile_ok("{\"$id\":\"https://example.test/strict-tree\","
                              "\"$dynamicAnchor\":\"node\",\"$ref\":\"tree\","
                              "\"unevaluatedProperties\":false,\"$defs\":{" TREE "}}");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, validate_many, s), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        cr_expect_null(bad, "thread %d saw %ld wrong answers", i, (long)(intptr_t)bad);
    }
    ee_schema_free(s);
}

/* ---- what stays refused ------------------------------------------------------------ */

Test(schema_refs, other_documents_stay_refused)
{
    expect_compile_fails("{\"$ref\":\"https://example.test/other.json\"}", EE_ENOTSUPPORTED,
                         "$ref \"https://example.test/other.json\" names another document");
    /* relative to the root's $id: the message gives the resolved URI */
    expect_compile_fails("{\"$id\":\"https://example.test/a/root.json\","
                         "\"properties\":{\"x\":{\"$ref\":\"../defs.json#/$defs/x\"}}}",
                         EE_ENOTSUPPORTED, "(\"https://example.test/defs.json\")");
    /* an anchor of a document that is not this one */
    expect_compile_fails("{\"$id\":\"https://example.test/a\",\"$ref\":\"b#name\","
                         "\"$defs\":{\"n\":{\"$anchor\":\"name\"}}}",
                         EE_ENOTSUPPORTED, "names another document");
    expect_compile_fails("{\"$dynamicRef\":\"https://example.test/meta#meta\"}", EE_ENOTSUPPORTED,
                         "$dynamicRef");
    expect_compile_fails("{\"items\":{\"$recursiveRef\":\"#\"},\"$recursiveAnchor\":true}",
                         EE_ENOTSUPPORTED, "$recursiveRef (draft 2019-09) is not supported");
    /* an $id where no keyword defines a subschema, reached by a pointer */
    expect_compile_fails("{\"$ref\":\"#/definitions/a\",\"definitions\":{\"a\":{\"$id\":\"a\"}}}",
                         EE_ENOTSUPPORTED, "$id in a subschema reached only through a JSON pointer");
    /* the meta-schema is still the one remote document understood */
    ee_schema *s = compile_ok("{\"properties\":{\"s\":{\"$ref\":"
                              "\"https://json-schema.org/draft/2020-12/schema#\"}}}");
    expect_valid(s, "{\"s\":{\"$id\":\"https://example.test/x\",\"$anchor\":\"a\"}}");
    expect_invalid(s, "{\"s\":{\"$anchor\":\"not an anchor\"}}");
    expect_invalid(s, "{\"s\":{\"$id\":\"https://example.test/x#frag\"}}");
    ee_schema_free(s);
}

Test(schema_refs, malformed_identifiers_name_their_path)
{
    expect_compile_fails("{\"$defs\":{\"a\":{\"$id\":\"a.json#part\"}}}", EE_EINVAL,
                         "at /$defs/a/$id: $id \"a.json#part\" has a fragment");
    expect_compile_fails("{\"$defs\":{\"a\":{\"$anchor\":\"1st\"}}}", EE_EINVAL,
                         "at /$defs/a/$anchor: \"1st\" is not an anchor name");
    expect_compile_fails("{\"$dynamicAnchor\":\"a#b\"}", EE_EINVAL, "is not an anchor name");
    expect_compile_fails("{\"$anchor\":7}", EE_EINVAL, "/$anchor: expected a string");
    expect_compile_fails("{\"$dynamicRef\":[]}", EE_EINVAL, "$dynamicRef must be a string");
    /* a NUL would cut the URI short: "x\0y" is not "x" */
    expect_compile_fails("{\"$ref\":\"x\\u0000y\",\"$defs\":{\"a\":{\"$id\":\"x\"}}}", EE_EINVAL,
                         "at /$ref: $ref holds a NUL character");
    expect_compile_fails("{\"$defs\":{\"a\":{\"$id\":\"x\\u0000y\"}}}", EE_EINVAL,
                         "$id holds a NUL character");
    expect_compile_fails("{\"$defs\":{\"a\":{\"$anchor\":\"x\"},\"b\":{\"$anchor\":\"x\"}}}",
                         EE_EINVAL, "the anchor \"x\" is declared twice");
    expect_compile_fails("{\"$id\":\"https://example.test/r\",\"$defs\":{"
                         "\"a\":{\"$id\":\"s\"},\"b\":{\"$id\":\"https://example.test/s\"}}}",
                         EE_EINVAL, "$id names the resource \"https://example.test/s\"");
    expect_compile_fails("{\"$ref\":\"#nowhere\",\"$defs\":{\"a\":{\"$id\":\"a\","
                         "\"$anchor\":\"nowhere\"}}}",
                         EE_EINVAL, "names an anchor that no subschema of its resource declares");
    expect_compile_fails("{\"$id\":\"https://example.test/r\",\"$ref\":\"s#/$defs/none\","
                         "\"$defs\":{\"s\":{\"$id\":\"s\"}}}",
                         EE_EINVAL, "points at nothing");
    /* the same name on one subschema as $anchor and $dynamicAnchor is fine */
    ee_schema *s = compile_ok("{\"$ref\":\"#a\",\"$defs\":{\"x\":{\"$anchor\":\"a\","
                              "\"$dynamicAnchor\":\"a\",\"type\":\"null\"}}}");
    expect_valid(s, "null");
    ee_schema_free(s);
    /* a very long $id */
    size_t n = 5000;
    char *text = malloc(n + 64);
    int off = snprintf(text, n + 64, "{\"$defs\":{\"a\":{\"$id\":\"https://example.test/");
    memset(text + off, 'x', n);
    snprintf(text + off + n, 64, "\"}}}");
    expect_compile_fails(text, EE_ETOOBIG, "more than the 2048 allowed");
    free(text);
}

/* ---- bounds -------------------------------------------------------------------------- */

Test(schema_refs, dynamic_ref_cycles_that_never_consume_the_instance)
{
    /* the anchor the $dynamicRef may land on applies it again, in place */
    expect_compile_fails("{\"$dynamicAnchor\":\"a\",\"allOf\":[{\"$dynamicRef\":\"#a\"}]}",
                         EE_EINVAL, "$ref cycle");
    /* only through the dynamic scope: leaf's own "n" is harmless, but
     * the root's, outermost in scope, applies leaf again */
    expect_compile_fails(
        "{\"$id\":\"https://example.test/r\",\"$dynamicAnchor\":\"n\",\"$ref\":\"leaf\","
        "\"$defs\":{\"leaf\":{\"$id\":\"leaf\",\"anyOf\":[{\"$dynamicRef\":\"#n\"},true],"
        "\"$defs\":{\"n\":{\"$dynamicAnchor\":\"n\"}}}}}",
        EE_EINVAL, "$dynamicRef cycle through");
    /* through a member of the instance it is fine (the tree tests) */
}

Test(schema_refs, deep_dynamic_scope_is_bounded, .timeout = 30)
{
    /* 600 resources, each $ref to the next, the last a $dynamicRef that
     * looks through all of them: evaluation nests past its 512 frames */
    size_t cap = 64 * 1024;
    char *text = malloc(cap);
    size_t len = (size_t)snprintf(text, cap, "{\"$id\":\"https://example.test/r0\","
                                             "\"$dynamicAnchor\":\"x\",\"$ref\":\"r1\",\"$defs\":{");
    for (int i = 1; i < 600; i++)
        len += (size_t)snprintf(text + len, cap - len, "\"d%d\":{\"$id\":\"r%d\",\"$ref\":\"r%d\"},",
                                i, i, i + 1);
    len += (size_t)snprintf(text + len, cap - len,
                            "\"d600\":{\"$id\":\"r600\",\"$dynamicAnchor\":\"x\","
                            "\"items\":{\"$dynamicRef\":\"#x\"}}}}");
    cr_assert_lt(len, cap);
    ee_schema *s = compile_ok(text);
    free(text);
    cr_expect_eq(check(s, "[]"), EE_ETOOBIG);
    cr_expect(strstr(ee_error_last_message(), "nested deeper than 512") != NULL, "%s",
              ee_error_last_message());
    ee_schema_free(s);
    /* a recursive tree as deep as an instance may nest is answered */
    s = compile_ok("{\"$id\":\"https://example.test/strict-tree\","
                   "\"$dynamicAnchor\":\"node\",\"$ref\":\"tree\","
                   "\"unevaluatedProperties\":false,\"$defs\":{" TREE "}}");
    char deep[2048] = "";
    for (int i = 0; i < 31; i++)
        strcat(deep, "{\"children\":[");
    strcat(deep, "{}");
    for (int i = 0; i < 31; i++)
        strcat(deep, "]}");
    expect_valid(s, deep);
    ee_schema_free(s);
}

Test(schema_refs, dynamic_ref_fan_out_is_bounded_by_the_work_budget, .timeout = 30)
{
    /* 2^30 paths: each level allOf's the next twice, through its own
     * resource, and the bottom scans the dynamic scope */
    size_t cap = 16 * 1024;
    char *text = malloc(cap);
    size_t len = (size_t)snprintf(text, cap, "{\"$id\":\"https://example.test/f0\","
                                             "\"$dynamicAnchor\":\"x\",\"$ref\":\"f1\",\"$defs\":{");
    for (int i = 1; i < 30; i++)
        len += (size_t)snprintf(text + len, cap - len,
                                "\"d%d\":{\"$id\":\"f%d\",\"allOf\":[{\"$ref\":\"f%d\"},"
                                "{\"$ref\":\"f%d\"}]},",
                                i, i, i + 1, i + 1);
    len += (size_t)snprintf(text + len, cap - len,
                            "\"d30\":{\"$id\":\"f30\",\"$dynamicAnchor\":\"x\","
                            "\"items\":{\"$dynamicRef\":\"#x\"}}}}");
    cr_assert_lt(len, cap);
    ee_schema *s = compile_ok(text);
    free(text);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    cr_expect_eq(check(s, "[[[1]]]"), EE_ETOOBIG);
    clock_gettime(CLOCK_MONOTONIC, &b);
    cr_expect(strstr(ee_error_last_message(), "work than its budget") != NULL, "%s",
              ee_error_last_message());
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    cr_expect_lt(ms, 5000.0, "took %.0f ms", ms);
    ee_schema_free(s);
}
