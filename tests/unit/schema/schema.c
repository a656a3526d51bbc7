/*
 * The JSON Schema validator beyond the conformance suite: the report
 * (pointers, messages, every violation), defaults, and every kind of bad
 * input (invalid schemas, deep / huge / non-UTF-8 instances, runaway
 * regexes and schemas), through the public text API and the internal
 * json_t one.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema/schema.h"
#include "schema_test.h"

/* Validate and return the report (new reference); status in *st. */
static json_t *validate(const ee_schema *s, const char *instance, ee_status *st)
{
    json_error_t err;
    json_t *inst = json_loads(instance, JSON_DECODE_ANY, &err);
    cr_assert_not_null(inst, "bad test instance %s: %s", instance, err.text);
    json_t *report = NULL;
    *st = ee__schema_validate(s, inst, &report);
    json_decref(inst);
    return report;
}

/* Find the error with this instancePath and keyword. */
static const json_t *find_error(const json_t *report, const char *ipath, const char *keyword)
{
    const json_t *errors = json_object_get(report, "errors");
    for (size_t i = 0; i < json_array_size(errors); i++) {
        const json_t *e = json_array_get(errors, i);
        if (strcmp(json_string_value(json_object_get(e, "instancePath")), ipath) == 0 &&
            strcmp(json_string_value(json_object_get(e, "keyword")), keyword) == 0)
            return e;
    }
    return NULL;
}

static void expect_error(const json_t *report, const char *ipath, const char *spath,
                         const char *keyword, const char *message)
{
    const json_t *e = find_error(report, ipath, keyword);
    char *dump = json_dumps(report, JSON_COMPACT);
    cr_assert_not_null(e, "no %s error at %s in %s", keyword, ipath, dump);
    cr_expect_str_eq(json_string_value(json_object_get(e, "schemaPath")), spath, "in %s", dump);
    if (message != NULL)
        cr_expect_str_eq(json_string_value(json_object_get(e, "message")), message);
    free(dump);
}

/* ---- the report ------------------------------------------------------------ */

Test(schema_report, pointers_escaped_and_every_violation_listed)
{
    ee_schema *s = compile_ok(
        "{\"type\":\"object\",\"properties\":{"
        "\"a\":{\"type\":\"array\",\"items\":{\"type\":\"integer\"}},"
        "\"b/c~d\":{\"type\":\"string\"}}}");
    ee_status st;
    json_t *r = validate(s, "{\"a\":[1,\"x\",3,\"y\"],\"b/c~d\":5}", &st);
    cr_assert_eq(st, EE_EVALIDATION);
    cr_expect(json_is_false(json_object_get(r, "valid")));
    cr_expect_eq(json_array_size(json_object_get(r, "errors")), 3);
    expect_error(r, "/a/1", "/properties/a/items/type", "type", "expected integer, got string");
    expect_error(r, "/a/3", "/properties/a/items/type", "type", NULL);
    expect_error(r, "/b~1c~0d", "/properties/b~1c~0d/type", "type",
                 "expected string, got integer");
    cr_expect_null(json_object_get(r, "truncated"));
    json_decref(r);
    ee_schema_free(s);
}

Test(schema_report, messages_per_keyword)
{
    ee_schema *s = compile_ok(
        "{\"type\":\"object\",\"required\":[\"name\",\"mode\"],\"additionalProperties\":false,"
        "\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":3,\"pattern\":\"^[a-z]+$\"},"
        "\"mode\":{\"enum\":[\"fast\",\"slow\"]},\"n\":{\"type\":\"integer\",\"maximum\":10,"
        "\"multipleOf\":3},\"tags\":{\"type\":\"array\",\"uniqueItems\":true,\"maxItems\":3}}}");
    ee_status st;
    json_t *r = validate(s, "{\"name\":\"A\",\"n\":12.5,\"tags\":[1,1.0,2,3],\"extra\":true}", &st);
    cr_assert_eq(st, EE_EVALIDATION);
    expect_error(r, "", "/required", "required", "required property \"mode\" is missing");
    expect_error(r, "/extra", "/additionalProperties", "additionalProperties",
                 "property \"extra\" is not allowed");
    expect_error(r, "/name", "/properties/name/minLength", "minLength",
                 "must be at least 3 characters long, got 1");
    expect_error(r, "/name", "/properties/name/pattern", "pattern",
                 "does not match pattern \"^[a-z]+$\"");
    expect_error(r, "/n", "/properties/n/type", "type", "expected integer, got number");
    expect_error(r, "/n", "/properties/n/maximum", "maximum", "must be <= 10, got 12.5");
    expect_error(r, "/n", "/properties/n/multipleOf", "multipleOf",
                 "must be a multiple of 3, got 12.5");
    expect_error(r, "/tags", "/properties/tags/uniqueItems", "uniqueItems",
                 "items 0 and 1 are equal; all items must be unique");
    expect_error(r, "/tags", "/properties/tags/maxItems", "maxItems",
                 "array has 4 items, at most 3 allowed");
    cr_expect_eq(json_array_size(json_object_get(r, "errors")), 9);
    json_decref(r);
    r = validate(s, "{\"name\":\"abc\",\"mode\":\"medium\"}", &st);
    cr_assert_eq(st, EE_EVALIDATION);
    expect_error(r, "/mode", "/properties/mode/enum", "enum",
                 "value must be one of [\"fast\",\"slow\"]");
    json_decref(r);
    r = validate(s, "{\"name\":\"abc\",\"mode\":\"fast\",\"n\":9}", &st);
    cr_expect_eq(st, EE_OK);
    cr_expect(json_is_true(json_object_get(r, "valid")));
    cr_expect_eq(json_array_size(json_object_get(r, "errors")), 0);
    json_decref(r);
    ee_schema_free(s);
}

Test(schema_report, schema_path_follows_ref_and_branches)
{
    ee_schema *s = compile_ok(
        "{\"$defs\":{\"port\":{\"type\":\"integer\",\"minimum\":1}},"
        "\"properties\":{\"p\":{\"$ref\":\"#/$defs/port\"},"
        "\"kind\":{\"type\":\"string\"},"
        "\"one\":{\"oneOf\":[{\"type\":\"integer\"},{\"minimum\":0}]},"
        "\"any\":{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"null\"}]},"
        "\"no\":{\"not\":{\"type\":\"string\"}},"
        "\"list\":{\"contains\":{\"const\":\"x\"},\"minContains\":2}},"
        "\"propertyNames\":{\"maxLength\":4},"
        "\"if\":{\"properties\":{\"kind\":{\"const\":\"email\"}}},"
        "\"then\":{\"required\":[\"to\"]},\"else\":{\"required\":[\"url\"]}}");
    ee_status st;
    json_t *r = validate(s, "{\"p\":0,\"kind\":\"email\",\"one\":5,\"any\":1,\"no\":\"s\","
                            "\"list\":[\"x\",\"y\"]}", &st);
    cr_assert_eq(st, EE_EVALIDATION);
    expect_error(r, "/p", "/properties/p/$ref/minimum", "minimum", "must be >= 1, got 0");
    expect_error(r, "", "/then/required", "required", "required property \"to\" is missing");
    expect_error(r, "/one", "/properties/one/oneOf", "oneOf",
                 "value matches oneOf subschemas 0 and 1; exactly one must match");
    expect_error(r, "/any", "/properties/any/anyOf", "anyOf",
                 "value does not match any of the 2 anyOf subschemas");
    expect_error(r, "/no", "/properties/no/not", "not",
                 "value must not match the \"not\" subschema");
    expect_error(r, "/list", "/properties/list/contains", "contains",
                 "array contains 1 matching items, at least 2 required");
    cr_expect_eq(json_array_size(json_object_get(r, "errors")), 6);
    json_decref(r);
    r = validate(s, "{\"kind\":\"web\",\"toolong\":1}", &st);
    cr_assert_eq(st, EE_EVALIDATION);
    expect_error(r, "", "/else/required", "required", "required property \"url\" is missing");
    expect_error(r, "/toolong", "/propertyNames", "propertyNames",
                 "property name \"toolong\" does not match the propertyNames schema");
    json_decref(r);
    ee_schema_free(s);
}

Test(schema_report, text_api_documents_and_error_detail)
{
    ee_schema *s = compile_ok("{\"type\":\"object\",\"properties\":{\"q\":{\"type\":\"string\"}}}");
    char *out = NULL;
    cr_assert_eq(ee_schema_validate(s, "{\"q\":\"x\"}", &out), EE_OK);
    cr_expect_str_eq(out, "{\"valid\":true,\"errors\":[]}");
    ee_free(out);
    cr_assert_eq(ee_schema_validate(s, "{\"q\":1}", &out), EE_EVALIDATION);
    json_t *doc = json_loads(out, 0, NULL);
    cr_assert_not_null(doc);
    const json_t *detail = json_object_get(json_object_get(doc, "error"), "detail");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(doc, "error"), "name")),
                     "EE_EVALIDATION");
    cr_expect(json_is_false(json_object_get(detail, "valid")));
    cr_expect_eq(json_array_size(json_object_get(detail, "errors")), 1);
    json_decref(doc);
    ee_free(out);
    cr_expect_eq(ee_error_last_status(), EE_EVALIDATION);
    cr_expect_str_eq(ee_error_last_message(),
                     "input failed validation: 1 violation; first at /q: expected string, got "
                     "integer");
    /* A NULL out is allowed: the status alone. */
    cr_expect_eq(ee_schema_validate(s, "{\"q\":true}", NULL), EE_EVALIDATION);
    cr_expect_eq(ee_schema_validate(s, "{}", NULL), EE_OK);
    ee_schema_free(s);
}

Test(schema_report, many_violations_truncated)
{
    ee_schema *s = compile_ok("{\"items\":{\"type\":\"integer\"}}");
    json_t *arr = json_array();
    for (int i = 0; i < 1000; i++)
        json_array_append_new(arr, json_string("no"));
    json_t *r = NULL;
    cr_assert_eq(ee__schema_validate(s, arr, &r), EE_EVALIDATION);
    cr_expect_eq(json_array_size(json_object_get(r, "errors")), EE_SCHEMA_MAX_ERRORS);
    cr_expect(json_is_true(json_object_get(r, "truncated")));
    json_decref(r);
    json_decref(arr);
    ee_schema_free(s);
}

Test(schema_report, exact_numbers_and_code_points)
{
    ee_schema *s = compile_ok("{\"multipleOf\":0.0001}");
    ee_status st;
    json_decref(validate(s, "0.0075", &st));
    cr_expect_eq(st, EE_OK);
    json_decref(validate(s, "0.00751", &st));
    cr_expect_eq(st, EE_EVALIDATION);
    json_decref(validate(s, "123456789", &st));
    cr_expect_eq(st, EE_OK);
    ee_schema_free(s);
    s = compile_ok("{\"multipleOf\":0.01}");
    json_decref(validate(s, "19.99", &st)); /* 19.99 / 0.01 is not integral in binary */
    cr_expect_eq(st, EE_OK);
    json_decref(validate(s, "1e308", &st));
    cr_expect_eq(st, EE_OK);
    json_decref(validate(s, "0.005", &st));
    cr_expect_eq(st, EE_EVALIDATION);
    ee_schema_free(s);
    s = compile_ok("{\"maxLength\":2,\"minLength\":2}");
    json_decref(validate(s, "\"\\ud83d\\udca9\\u00e9\"", &st)); /* 2 code points, 6 bytes */
    cr_expect_eq(st, EE_OK);
    json_decref(validate(s, "\"abc\"", &st));
    cr_expect_eq(st, EE_EVALIDATION);
    ee_schema_free(s);
    s = compile_ok("{\"maximum\":9007199254740992}");
    json_decref(validate(s, "9007199254740993", &st)); /* not representable as a double */
    cr_expect_eq(st, EE_EVALIDATION);
    json_decref(validate(s, "9007199254740992.0", &st));
    cr_expect_eq(st, EE_OK);
    ee_schema_free(s);
}

Test(schema_report, ecma_regex_semantics)
{
    ee_schema *s = compile_ok("{\"pattern\":\"^\\\\d+$\"}");
    ee_status st;
    json_decref(validate(s, "\"123\"", &st));
    cr_expect_eq(st, EE_OK);
    json_decref(validate(s, "\"\\u0663\"", &st)); /* ARABIC-INDIC DIGIT THREE: not \d in ECMA */
    cr_expect_eq(st, EE_EVALIDATION);
    json_decref(validate(s, "\"12\\n\"", &st)); /* $ is the very end */
    cr_expect_eq(st, EE_EVALIDATION);
    ee_schema_free(s);
    s = compile_ok("{\"pattern\":\"^\\\\p{Lowercase_Letter}\\\\s\\\\u0041$\"}");
    json_decref(validate(s, "\"\\u00e9\\u00a0A\"", &st));
    cr_expect_eq(st, EE_OK, "%s", ee_error_last_message());
    ee_schema_free(s);
}

/* Whether `pattern` (JSON string text) matches `instance` (JSON text). */
static bool pattern_matches(const char *pattern, const char *instance)
{
    char schema[256];
    snprintf(schema, sizeof schema, "{\"pattern\":%s}", pattern);
    ee_schema *s = compile_ok(schema);
    ee_status st;
    json_decref(validate(s, instance, &st));
    ee_schema_free(s);
    cr_assert(st == EE_OK || st == EE_EVALIDATION, "%s on %s: %s", pattern, instance,
              ee_status_name(st));
    return st == EE_OK;
}

/* Where PCRE2's reading of a pattern differs from ECMA-262's, the
 * translation spells the ECMA-262 meaning out (each of these matched the
 * other way before). */
Test(schema_report, ecma_regex_meaning_where_pcre2_differs)
{
    /* "." stops at ECMA-262's four line terminators only */
    cr_expect(pattern_matches("\"^a.b$\"", "\"a\\fb\""));
    cr_expect(pattern_matches("\"^a.b$\"", "\"a\\u000bb\""));
    cr_expect(pattern_matches("\"^a.b$\"", "\"a\\u0085b\""));
    cr_expect_not(pattern_matches("\"^a.b$\"", "\"a\\u2028b\""));
    cr_expect_not(pattern_matches("\"^a.b$\"", "\"a\\rb\""));
    /* \v is U+000B, not PCRE2's vertical-space class */
    cr_expect(pattern_matches("\"^\\\\v$\"", "\"\\u000b\""));
    cr_expect_not(pattern_matches("\"^\\\\v$\"", "\"\\n\""));
    /* \S in a class is ECMA-262's, not PCRE2's ASCII one */
    cr_expect_not(pattern_matches("\"^[\\\\S]$\"", "\"\\u00a0\""));
    cr_expect(pattern_matches("\"^[^\\\\S]$\"", "\"\\u00a0\""));
    cr_expect(pattern_matches("\"^[a\\\\S]$\"", "\"x\""));
    cr_expect_not(pattern_matches("\"^[^ \\\\S]$\"", "\"  \""));
    cr_expect(pattern_matches("\"^[^ \\\\S]$\"", "\"\\t\""));
    /* no POSIX classes: [[:alpha:]] is a class of "[:alph" then "]" */
    cr_expect(pattern_matches("\"^[[:alpha:]]$\"", "\"a]\""));
    cr_expect_not(pattern_matches("\"^[[:alpha:]]$\"", "\"b\""));
    /* "$" is tried at every position, a CRLF's LF included */
    cr_expect(pattern_matches("\"\\\\D$\"", "\":\\r\\n\""));
    /* an empty class repeated zero times, an unset group's back-reference */
    cr_expect(pattern_matches("\"^[]*$\"", "\"\""));
    cr_expect(pattern_matches("\"^a[^]*$\"", "\"a\\n\\u2028\""));
    cr_expect(pattern_matches("\"^(a)?\\\\1{1,2}b$\"", "\"b\""));
    cr_expect(pattern_matches("\"^(a)\\\\1$\"", "\"aa\""));
    /* Script= is the Script property (PCRE2's bare \p{Greek} is
     * Script_Extensions); Assigned is a binary property */
    cr_expect_not(pattern_matches("\"^\\\\p{Script=Greek}$\"", "\"\\u0342\""));
    cr_expect(pattern_matches("\"^\\\\p{Script_Extensions=Greek}$\"", "\"\\u0342\""));
    cr_expect(pattern_matches("\"^\\\\p{sc=Grek}$\"", "\"\\u03a9\""));
    cr_expect_not(pattern_matches("\"^\\\\p{Assigned}$\"", "\"\\u0378\""));
    cr_expect(pattern_matches("\"^\\\\P{Assigned}$\"", "\"\\u0378\""));
    cr_expect(pattern_matches("\"^\\\\p{LC}$\"", "\"\\u01c5\""));
    /* a surrogate pair of escapes is one code point; \0 is U+0000 */
    cr_expect(pattern_matches("\"^\\\\uD83D\\\\uDE00+$\"", "\"\\ud83d\\ude00\\ud83d\\ude00\""));
    ee_schema *s = compile_ok("{\"pattern\":\"^a\\\\0$\"}");
    cr_expect_eq(ee_schema_validate(s, "\"a\\u0000\"", NULL), EE_OK);
    cr_expect_eq(ee_schema_validate(s, "\"a0\"", NULL), EE_EVALIDATION);
    ee_schema_free(s);
    /* ES2025 modifiers */
    cr_expect(pattern_matches("\"(?m:^b$)\"", "\"a\\nb\\nc\""));
    cr_expect_not(pattern_matches("\"^b$\"", "\"a\\nb\\nc\""));
    cr_expect(pattern_matches("\"^(?s:a.b)$\"", "\"a\\nb\""));
    cr_expect(pattern_matches("\"^(?i:abc)d$\"", "\"ABCd\""));
    cr_expect_not(pattern_matches("\"^(?i:abc)d$\"", "\"ABCD\""));
}

/* What is not ECMA-262 makes the schema invalid instead of taking PCRE2's
 * or Python's meaning ((?i) turned matching case-insensitive, \z was an
 * anchor, a++ possessive); ECMA-262 that PCRE2 cannot run is refused as
 * unsupported. */
Test(schema_bad_input, patterns_that_are_not_ecma262)
{
    static const char *const not_ecma[] = {
        "(?i)abc", "(?ims)abc", "(?P<name>x)", "(?P<n>a)(?P=n)", "(?#comment)a", "a++",
        "a*+", "a{2}+", "(?>a)", "(?|a)", "(?R)", "(?1)(a)", "(?(1)a|b)", "(*UCP)\\\\d",
        "\\\\a", "\\\\e", "\\\\z", "\\\\Z", "\\\\A", "\\\\G", "\\\\K", "\\\\h", "\\\\R", "\\\\X",
        "\\\\Qa\\\\E", "\\\\N", "\\\\g1", "\\\\012", "\\\\2(a)", "[\\\\1](a)", "\\\\k<n>",
        "\\\\pL", "\\\\p{L&}", "\\\\p{Xan}", "\\\\p{^L}", "\\\\p{Script=Letter}",
        "\\\\p{gc=Greek}", "\\\\p{bc=R}", "\\\\cZ\\\\c1", "\\\\x4", "\\\\u12", "[\\\\B]", "*a",
        "a|*", "^*", "(?=a)(?<=b)*", "(?-:a)", "(?ii:a)", "(?x:a)", "(?<1a>x)", "(a", "a)",
        "[a",
    };
    for (size_t i = 0; i < sizeof not_ecma / sizeof not_ecma[0]; i++) {
        char schema[128];
        snprintf(schema, sizeof schema, "{\"pattern\":\"%s\"}", not_ecma[i]);
        expect_compile_fails(schema, EE_EINVAL, "is not a valid regular expression");
    }
    expect_compile_fails("{\"pattern\":\"(?<=a+)b\"}", EE_ENOTSUPPORTED,
                         "is ECMA-262 that PCRE2 cannot run");
    expect_compile_fails("{\"pattern\":\"a{70000}\"}", EE_ENOTSUPPORTED,
                         "is ECMA-262 that PCRE2 cannot run");
    expect_compile_fails("{\"patternProperties\":{\"(?i:\\\\w)\":true}}", EE_ENOTSUPPORTED,
                         "under the i modifier");
    expect_compile_fails("{\"pattern\":\"(?<na$me>x)\"}", EE_ENOTSUPPORTED, "group name");
    /* ECMA-262 that stays valid */
    static const char *const ecma[] = {
        "(?<name>x)\\\\k<name>", "(?<=ab|c)d", "(?<!a)b", "[]", "[^]", "\\\\cA", "a{2,}?",
        "(?i:a)(?-i:b)(?s-m:.)", "\\\\u{1F600}", "\\\\-\\\\/\\\\.\\\\@", "x{", "a}", "]",
        "\\\\p{Letter}\\\\p{gc=Lu}\\\\p{Script=Latin}\\\\p{scx=Grek}\\\\p{ASCII}\\\\p{Any}",
        "(?=a)*", "[\\\\b]",
    };
    for (size_t i = 0; i < sizeof ecma / sizeof ecma[0]; i++) {
        char schema[160];
        snprintf(schema, sizeof schema, "{\"pattern\":\"%s\"}", ecma[i]);
        ee_schema_free(compile_ok(schema));
    }
}

Test(schema_report, uniqueness_of_large_arrays)
{
    ee_schema *s = compile_ok("{\"uniqueItems\":true}");
    json_t *arr = json_array();
    for (int i = 0; i < 20000; i++)
        json_array_append_new(arr, json_pack("{s:i, s:[i]}", "k", i, "v", i % 7));
    cr_expect_eq(ee__schema_validate(s, arr, NULL), EE_OK);
    json_array_append_new(arr, json_pack("{s:[f], s:f}", "v", 3.0, "k", 3.0)); /* == item 3 */
    json_t *r = NULL;
    cr_expect_eq(ee__schema_validate(s, arr, &r), EE_EVALIDATION);
    expect_error(r, "", "/uniqueItems", "uniqueItems",
                 "items 3 and 20000 are equal; all items must be unique");
    json_decref(r);
    json_decref(arr);
    ee_schema_free(s);
}

Test(schema_report, unevaluated_properties)
{
    ee_schema *s = compile_ok(
        "{\"allOf\":[{\"properties\":{\"a\":true}}],\"properties\":{\"b\":true},"
        "\"unevaluatedProperties\":false}");
    ee_status st;
    json_decref(validate(s, "{\"a\":1,\"b\":2}", &st));
    cr_expect_eq(st, EE_OK);
    json_t *r = validate(s, "{\"a\":1,\"c\":2}", &st);
    cr_expect_eq(st, EE_EVALIDATION);
    expect_error(r, "/c", "/unevaluatedProperties", "unevaluatedProperties",
                 "property \"c\" is not allowed");
    json_decref(r);
    ee_schema_free(s);
}

/* Draft 7's "dependencies", which draft 2020-12 split in two, still
 * works: an array member as dependentRequired, a schema as
 * dependentSchemas (it was ignored as an unknown keyword, so a draft-7
 * style schema accepted what its author meant to refuse). */
Test(schema_report, draft7_dependencies)
{
    ee_schema *s = compile_ok(
        "{\"dependencies\":{\"card\":[\"billing\",\"cvc\"],"
        "\"bar\":{\"properties\":{\"foo\":{\"type\":\"integer\"}},\"required\":[\"foo\"]},"
        "\"never\":false},\"unevaluatedProperties\":false,"
        "\"properties\":{\"card\":true,\"billing\":true,\"cvc\":true,\"bar\":true}}");
    ee_status st;
    json_decref(validate(s, "{\"card\":1,\"billing\":2,\"cvc\":3}", &st));
    cr_expect_eq(st, EE_OK);
    json_decref(validate(s, "{\"billing\":2}", &st));
    cr_expect_eq(st, EE_OK);
    json_decref(validate(s, "[\"card\"]", &st));
    cr_expect_eq(st, EE_OK);
    json_t *r = validate(s, "{\"card\":1,\"billing\":2}", &st);
    cr_expect_eq(st, EE_EVALIDATION);
    expect_error(r, "", "/dependencies/card", "dependencies",
                 "property \"cvc\" is required when \"card\" is present");
    json_decref(r);
    r = validate(s, "{\"bar\":1,\"foo\":\"x\"}", &st);
    cr_expect_eq(st, EE_EVALIDATION);
    expect_error(r, "/foo", "/dependencies/bar/properties/foo/type", "type", NULL);
    json_decref(r);
    /* the dependent schema's properties count as evaluated */
    json_decref(validate(s, "{\"bar\":1,\"foo\":2}", &st));
    cr_expect_eq(st, EE_OK);
    json_decref(validate(s, "{\"never\":1}", &st));
    cr_expect_eq(st, EE_EVALIDATION);
    ee_schema_free(s);
    expect_compile_fails("{\"dependencies\":{\"a\":[1]}}", EE_EINVAL,
                         "at /dependencies/a: expected an array of property names");
    expect_compile_fails("{\"dependencies\":{\"a\":3}}", EE_EINVAL,
                         "at /dependencies/a: a schema must be an object or a boolean");
    expect_compile_fails("{\"dependencies\":[]}", EE_EINVAL, "at /dependencies:");
    expect_compile_fails("{\"dependencies\":{\"a\":{\"$ref\":\"#\"}}}", EE_EINVAL,
                         "$ref cycle");
}

Test(schema_report, accepts_all)
{
    ee_schema *s = compile_ok("{\"$defs\":{\"x\":{\"type\":\"string\"}},\"title\":\"t\"}");
    cr_expect(ee__schema_accepts_all(s));
    ee_schema_free(s);
    s = compile_ok("true");
    cr_expect(ee__schema_accepts_all(s));
    ee_schema_free(s);
    s = compile_ok("{\"type\":\"object\"}");
    cr_expect_not(ee__schema_accepts_all(s));
    ee_schema_free(s);
}

/* ---- defaults ------------------------------------------------------------------ */

static void expect_defaults(const char *schema, const char *instance, const char *want)
{
    ee_schema *s = compile_ok(schema);
    char *out = NULL;
    cr_assert_eq(ee_schema_apply_defaults(s, instance, &out), EE_OK, "%s",
                 ee_error_last_message());
    json_t *got = json_loads(out, JSON_DECODE_ANY, NULL), *exp = json_loads(want, 0, NULL);
    cr_expect(json_equal(got, exp), "defaults of %s: got %s, want %s", instance, out, want);
    json_decref(got);
    json_decref(exp);
    ee_free(out);
    ee_schema_free(s);
}

Test(schema_defaults, missing_properties_filled_recursively)
{
    const char *schema =
        "{\"$defs\":{\"lang\":{\"type\":\"string\",\"default\":\"en\"}},"
        "\"properties\":{"
        "\"limit\":{\"type\":\"integer\",\"default\":10},"
        "\"lang\":{\"$ref\":\"#/$defs/lang\"},"
        "\"opts\":{\"type\":\"object\",\"default\":{},"
        "\"properties\":{\"deep\":{\"default\":true},\"n\":{\"default\":[1]}}},"
        "\"rows\":{\"items\":{\"properties\":{\"w\":{\"default\":1}}}}},"
        "\"allOf\":[{\"properties\":{\"fromAllOf\":{\"default\":\"y\"},"
        "\"limit\":{\"default\":99}}}],"
        "\"anyOf\":[{\"properties\":{\"never\":{\"default\":1}}}]}";
    expect_defaults(schema, "{}",
                    "{\"limit\":10,\"lang\":\"en\",\"opts\":{\"deep\":true,\"n\":[1]},"
                    "\"fromAllOf\":\"y\"}");
    expect_defaults(schema, "{\"limit\":3,\"opts\":{\"deep\":false},\"rows\":[{},{\"w\":5}]}",
                    "{\"limit\":3,\"lang\":\"en\",\"opts\":{\"deep\":false,\"n\":[1]},"
                    "\"rows\":[{\"w\":1},{\"w\":5}],\"fromAllOf\":\"y\"}");
    /* Not an object: nothing to fill, returned as is. */
    expect_defaults(schema, "[1,2]", "[1,2]");
}

Test(schema_defaults, result_validates_and_input_untouched)
{
    ee_schema *s = compile_ok("{\"required\":[\"mode\"],\"properties\":{\"mode\":"
                              "{\"enum\":[\"a\",\"b\"],\"default\":\"a\"}}}");
    json_t *inst = json_object();
    cr_expect_eq(ee__schema_validate(s, inst, NULL), EE_EVALIDATION);
    cr_assert_eq(ee__schema_apply_defaults(s, inst), EE_OK);
    cr_expect_str_eq(json_string_value(json_object_get(inst, "mode")), "a");
    cr_expect_eq(ee__schema_validate(s, inst, NULL), EE_OK);
    json_decref(inst);
    ee_schema_free(s);
}

/* ---- bad schemas ------------------------------------------------------------------ */

Test(schema_bad_input, invalid_schemas_name_their_path)
{
    expect_compile_fails("[1]", EE_EINVAL, "must be an object or a boolean, got array");
    expect_compile_fails("\"str\"", EE_EINVAL, "(root)");
    expect_compile_fails("{\"properties\":{\"a\":{\"minLength\":\"x\"}}}", EE_EINVAL,
                         "at /properties/a/minLength: expected a non-negative integer, got string");
    expect_compile_fails("{\"minItems\":-1}", EE_EINVAL, "/minItems");
    expect_compile_fails("{\"type\":\"float\"}", EE_EINVAL, "/type");
    expect_compile_fails("{\"required\":[1]}", EE_EINVAL, "/required");
    expect_compile_fails("{\"multipleOf\":0}", EE_EINVAL, "/multipleOf");
    expect_compile_fails("{\"allOf\":[]}", EE_EINVAL, "/allOf");
    expect_compile_fails("{\"items\":[{}]}", EE_EINVAL, "/items");
    expect_compile_fails("{\"properties\":{\"a\":{\"pattern\":\"(unclosed\"}}}", EE_EINVAL,
                         "at /properties/a/pattern: pattern \"(unclosed\" is not a valid regular "
                         "expression");
    expect_compile_fails("{\"patternProperties\":{\"[z-a]\":{}}}", EE_EINVAL,
                         "/patternProperties/[z-a]");
    expect_compile_fails("{\"$ref\":\"#/$defs/missing\"}", EE_EINVAL,
                         "$ref \"#/$defs/missing\" points at nothing");
    expect_compile_fails("{\"$ref\":\"#/$defs/a~2\",\"$defs\":{}}", EE_EINVAL,
                         "not a valid JSON pointer");
    expect_compile_fails("{\"properties\":{\"x\":{\"$ref\":\"#\"}},\"allOf\":[{\"$ref\":\"#\"}]}",
                         EE_EINVAL, "$ref cycle");
    expect_compile_fails("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"anyOf\":[{\"$ref\":"
                         "\"#/$defs/a\"}]}},\"$ref\":\"#/$defs/a\"}",
                         EE_EINVAL, "$ref cycle");
    expect_compile_fails("{\"$ref\":\"other.json#/x\"}", EE_ENOTSUPPORTED, "another document");
    expect_compile_fails("{\"$ref\":\"#anchor\"}", EE_EINVAL,
                         "$ref \"#anchor\" names an anchor that no subschema");
    expect_compile_fails("{\"$dynamicRef\":\"#meta\"}", EE_EINVAL,
                         "$dynamicRef \"#meta\" names an anchor that no subschema");
    expect_compile_fails("{\"$recursiveRef\":\"#\"}", EE_ENOTSUPPORTED, "$recursiveRef");
    expect_compile_fails("{\"type\":", EE_EPARSE, "schema is not JSON");
    expect_compile_fails("{\"a\":1,\"a\":2}", EE_EPARSE, "duplicate");
    expect_compile_fails("{\"description\":\"\xc3\x28\"}", EE_EPARSE,
                         "schema is not valid UTF-8 (byte offset 16)");
    cr_expect_eq(ee_schema_compile(NULL, "{}"), EE_EINVAL);
    ee_schema *s;
    cr_expect_eq(ee_schema_compile(&s, NULL), EE_EINVAL);
    ee_schema_free(NULL);
}

Test(schema_bad_input, refs_recursive_through_instance_members_are_fine)
{
    ee_schema *s = compile_ok("{\"$defs\":{\"tree\":{\"type\":\"object\",\"properties\":{"
                              "\"kids\":{\"items\":{\"$ref\":\"#/$defs/tree\"}}},"
                              "\"required\":[\"name\"]}},\"$ref\":\"#/$defs/tree\"}");
    ee_status st;
    json_decref(validate(s, "{\"name\":1,\"kids\":[{\"name\":2,\"kids\":[]}]}", &st));
    cr_expect_eq(st, EE_OK);
    json_t *r = validate(s, "{\"name\":1,\"kids\":[{\"kids\":[]}]}", &st);
    cr_expect_eq(st, EE_EVALIDATION);
    expect_error(r, "/kids/0", "/$ref/properties/kids/items/$ref/required", "required", NULL);
    json_decref(r);
    ee_schema_free(s);
}

Test(schema_bad_input, schema_too_deep_or_too_big)
{
    size_t depth = EE_SCHEMA_MAX_SCHEMA_DEPTH + 10;
    char *text = malloc(depth * 8 + 16);
    char *w = text;
    for (size_t i = 0; i < depth; i++)
        w += sprintf(w, "{\"not\":");
    w += sprintf(w, "true");
    for (size_t i = 0; i < depth; i++)
        *w++ = '}';
    *w = '\0';
    expect_compile_fails(text, EE_ETOOBIG, "deeper than 128");
    free(text);
    size_t big = EE_SCHEMA_MAX_TEXT + 100;
    text = malloc(big + 32);
    memset(text, ' ', big);
    strcpy(text + big, "{}");
    expect_compile_fails(text, EE_ETOOBIG, "schema exceeds the size limit");
    free(text);
}

/* ---- bad instances ------------------------------------------------------------------- */

static char *nested_arrays(size_t depth)
{
    char *t = malloc(2 * depth + 1);
    memset(t, '[', depth);
    memset(t + depth, ']', depth);
    t[2 * depth] = '\0';
    return t;
}

Test(schema_bad_input, instance_nested_1000_deep)
{
    ee_schema *s = compile_ok("{\"items\":{\"$ref\":\"#\"}}");
    char *text = nested_arrays(1000), *out = NULL;
    cr_expect_eq(ee_schema_validate(s, text, &out), EE_ETOOBIG);
    cr_expect(strstr(ee_error_last_message(), "deeper than 64 levels") != NULL, "%s",
                 ee_error_last_message());
    cr_expect(out != NULL && strstr(out, "EE_ETOOBIG") != NULL);
    ee_free(out);
    cr_expect_eq(ee_schema_apply_defaults(s, text, &out), EE_ETOOBIG);
    ee_free(out);
    free(text);
    /* The same through the json_t API: measured without recursion. */
    json_t *root = json_array(), *cur = root;
    for (int i = 0; i < 1000; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    cr_expect_eq(ee__schema_validate(s, root, NULL), EE_ETOOBIG);
    cr_expect_eq(ee__schema_apply_defaults(s, root), EE_ETOOBIG);
    json_decref(root);
    /* At the limit it is validated. */
    text = nested_arrays(EE_SCHEMA_MAX_DEPTH);
    cr_expect_eq(ee_schema_validate(s, text, NULL), EE_OK, "%s", ee_error_last_message());
    free(text);
    ee_schema_free(s);
}

static char *string_param(size_t len)
{
    char *t = malloc(len + 16);
    strcpy(t, "{\"p\":\"");
    memset(t + 6, 'a', len);
    strcpy(t + 6 + len, "\"}");
    return t;
}

Test(schema_bad_input, huge_parameter_string)
{
    ee_schema *s = compile_ok("{\"properties\":{\"p\":{\"type\":\"string\",\"maxLength\":600000,"
                              "\"pattern\":\"^a*$\"}}}");
    char *text = string_param(10 * 1024 * 1024), *out = NULL;
    cr_expect_eq(ee_schema_validate(s, text, &out), EE_ETOOBIG);
    cr_expect(strstr(ee_error_last_message(), "exceeds the size limit of 1048576 bytes") != NULL, "%s",
              ee_error_last_message());
    ee_free(out);
    free(text);
    json_t *inst = json_pack("{s:s%}", "p", "", (size_t)0);
    char *big = malloc(2 * 1024 * 1024);
    memset(big, 'b', 2 * 1024 * 1024);
    json_object_set_new(inst, "p", json_stringn(big, 2 * 1024 * 1024));
    free(big);
    cr_expect_eq(ee__schema_validate(s, inst, NULL), EE_ETOOBIG);
    json_decref(inst);
    /* Under the limit: validated (linear: code points, one PCRE2 match). */
    text = string_param(512 * 1024);
    cr_expect_eq(ee_schema_validate(s, text, NULL), EE_OK, "%s", ee_error_last_message());
    free(text);
    text = string_param(700 * 1024);
    cr_expect_eq(ee_schema_validate(s, text, NULL), EE_EVALIDATION);
    cr_expect(strstr(ee_error_last_message(), "at most 600000 characters") != NULL);
    free(text);
    ee_schema_free(s);
}

Test(schema_bad_input, non_utf8_and_malformed_instances)
{
    ee_schema *s = compile_ok("{\"type\":\"string\"}");
    char *out = NULL;
    cr_expect_eq(ee_schema_validate(s, "\"ok\xff\"", &out), EE_EPARSE);
    cr_expect_str_eq(ee_error_last_message(), "instance is not valid UTF-8 (byte offset 3)");
    cr_expect(out != NULL && strstr(out, "EE_EPARSE") != NULL);
    ee_free(out);
    cr_expect_eq(ee_schema_validate(s, "\"\xed\xa0\x80\"", NULL), EE_EPARSE); /* surrogate */
    cr_expect_eq(ee_schema_validate(s, "{\"a\":", NULL), EE_EPARSE);
    cr_expect(strstr(ee_error_last_message(), "instance is not JSON") != NULL);
    cr_expect_eq(ee_schema_validate(s, "", NULL), EE_EPARSE);
    cr_expect_eq(ee_schema_validate(s, "\"nul\\u0000inside\"", NULL), EE_OK);
    cr_expect_eq(ee_schema_apply_defaults(s, "\"x\xc0\"", &out), EE_EPARSE);
    ee_free(out);
    cr_expect_eq(ee_schema_validate(NULL, "1", &out), EE_EINVAL);
    ee_free(out);
    cr_expect_eq(ee_schema_validate(s, NULL, NULL), EE_EINVAL);
    cr_expect_eq(ee_schema_apply_defaults(s, "{}", NULL), EE_EINVAL);
    ee_schema_free(s);
}

Test(schema_bad_input, catastrophic_regex_is_a_violation, .timeout = 30)
{
    ee_schema *s = compile_ok("{\"properties\":{\"p\":{\"pattern\":\"^(a|a)*$\"}},"
                              "\"patternProperties\":{\"^(x+x+)+y$\":{}}}");
    char text[256];
    snprintf(text, sizeof text, "{\"p\":\"%s!\"}", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    json_t *r = NULL;
    json_t *inst = json_loads(text, 0, NULL);
    cr_assert_eq(ee__schema_validate(s, inst, &r), EE_EVALIDATION, "%s", ee_error_last_message());
    expect_error(r, "/p", "/properties/p/pattern", "pattern",
                 "could not be checked against pattern \"^(a|a)*$\": the regular expression "
                 "exceeded its matching limits");
    json_decref(r);
    json_decref(inst);
    inst = json_pack("{s:i}", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxyz", 1); /* y present: no shortcut */
    cr_assert_eq(ee__schema_validate(s, inst, &r), EE_EVALIDATION);
    cr_expect_eq(json_array_size(json_object_get(r, "errors")), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(
                         json_object_get(r, "errors"), 0), "keyword")),
                     "patternProperties");
    json_decref(r);
    json_decref(inst);
    ee_schema_free(s);
}

Test(schema_bad_input, runaway_schemas_are_bounded, .timeout = 60)
{
    /* 2^30 evaluations if nothing stopped it. */
    json_t *defs = json_object();
    for (int i = 0; i < 30; i++) {
        char next[32];
        snprintf(next, sizeof next, "#/$defs/d%d", i + 1);
        char name[16];
        snprintf(name, sizeof name, "d%d", i);
        json_object_set_new(defs, name,
                            json_pack("{s:[{s:s},{s:s}]}", "allOf", "$ref", next, "$ref", next));
    }
    json_object_set_new(defs, "d30", json_pack("{s:s}", "type", "integer"));
    json_t *schema = json_pack("{s:o, s:s}", "$defs", defs, "$ref", "#/$defs/d0");
    ee_schema *s = NULL;
    cr_assert_eq(ee__schema_compile(&s, schema), EE_OK, "%s", ee_error_last_message());
    json_t *one = json_integer(1);
    cr_expect_eq(ee__schema_validate(s, one, NULL), EE_ETOOBIG);
    cr_expect(strstr(ee_error_last_message(), "work than its budget") != NULL, "%s",
              ee_error_last_message());
    ee_schema_free(s);
    json_decref(schema);
    /* A $ref chain longer than the evaluation depth allows. */
    defs = json_object();
    for (int i = 0; i < 1000; i++) {
        char name[16], next[32];
        snprintf(name, sizeof name, "c%d", i);
        snprintf(next, sizeof next, "#/$defs/c%d", i + 1);
        json_object_set_new(defs, name, json_pack("{s:s}", "$ref", next));
    }
    json_object_set_new(defs, "c1000", json_true());
    schema = json_pack("{s:o, s:s}", "$defs", defs, "$ref", "#/$defs/c0");
    cr_assert_eq(ee__schema_compile(&s, schema), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee__schema_validate(s, one, NULL), EE_ETOOBIG);
    cr_expect(strstr(ee_error_last_message(), "nested deeper than") != NULL);
    ee_schema_free(s);
    json_decref(schema);
    json_decref(one);
}

/* multipleOf across 600 decimal orders of magnitude, exactly and quickly. */
Test(schema_report, multiple_of_far_apart_scales)
{
    ee_status st;
    ee_schema *s = compile_ok("{\"multipleOf\":1e-300}");
    json_decref(validate(s, "1e300", &st));
    cr_expect_eq(st, EE_OK, "%s", ee_error_last_message());
    ee_schema_free(s);
    s = compile_ok("{\"multipleOf\":3e-300}");
    json_decref(validate(s, "1e300", &st)); /* 10^600 is not a multiple of 3 */
    cr_expect_eq(st, EE_EVALIDATION);
    json_decref(validate(s, "3e300", &st));
    cr_expect_eq(st, EE_OK, "%s", ee_error_last_message());
    ee_schema_free(s);
    /* reals read as their shortest decimal, 15 to 17 digits or fewer */
    s = compile_ok("{\"multipleOf\":0.1}");
    json_decref(validate(s, "0.30000000000000004", &st));
    cr_expect_eq(st, EE_EVALIDATION);
    json_decref(validate(s, "1.2345678901234567", &st));
    cr_expect_eq(st, EE_EVALIDATION);
    json_decref(validate(s, "123456789012345.6", &st));
    cr_expect_eq(st, EE_OK, "%s", ee_error_last_message());
    json_decref(validate(s, "0.3", &st));
    cr_expect_eq(st, EE_OK, "%s", ee_error_last_message());
    json_decref(validate(s, "1e-7", &st));
    cr_expect_eq(st, EE_EVALIDATION);
    ee_schema_free(s);
    s = compile_ok("{\"multipleOf\":0.0001}");
    json_decref(validate(s, "0.0075", &st));
    cr_expect_eq(st, EE_OK, "%s", ee_error_last_message());
    ee_schema_free(s);
    s = compile_ok("{\"multipleOf\":7}");
    json_decref(validate(s, "1e20", &st)); /* 10^20 mod 7 == 2 */
    cr_expect_eq(st, EE_EVALIDATION);
    json_decref(validate(s, "7e20", &st));
    cr_expect_eq(st, EE_OK, "%s", ee_error_last_message());
    ee_schema_free(s);
}

/* Text handed to the text API is measured as given: 170,000 copies of
 * "1e300" (1 MB) are within the limit, though jansson would write each as
 * 23 bytes. */
Test(schema_bad_input, text_api_measures_the_given_text)
{
    ee_schema *s = compile_ok("{\"items\":{\"type\":\"number\"}}");
    size_t n = 170000;
    char *text = malloc(n * 6 + 2), *p = text;
    *p++ = '[';
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%s1e300", i ? "," : "");
    strcpy(p, "]");
    cr_expect_eq(ee_schema_validate(s, text, NULL), EE_OK, "%s", ee_error_last_message());
    free(text);
    ee_schema_free(s);
}

/* The size limit measures the JSON text: [0,0,...] of a quarter of the
 * limit is accepted (an estimate of 8 bytes a value refused it), a string
 * whose escapes make its text larger than the limit is refused. */
Test(schema_bad_input, size_limit_measures_the_text)
{
    ee_schema *s = compile_ok("{\"items\":{\"type\":\"integer\"}}");
    size_t n = 117 * 1024; /* "0," each: 234 KiB of text */
    json_t *zeros = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(zeros, json_integer(0));
    cr_expect_eq(ee__schema_validate(s, zeros, NULL), EE_OK, "%s", ee_error_last_message());
    char *text = json_dumps(zeros, JSON_COMPACT);
    cr_expect_eq(ee_schema_validate(s, text, NULL), EE_OK, "%s", ee_error_last_message());
    free(text);
    json_decref(zeros);
    ee_schema_free(s);
    /* 600,000 quotes: 600,002 bytes estimated, 1,200,002 bytes of text. */
    s = compile_ok("{\"type\":\"string\"}");
    char *quotes = malloc(600000);
    memset(quotes, '"', 600000);
    json_t *str = json_stringn(quotes, 600000);
    free(quotes);
    cr_expect_eq(ee__schema_validate(s, str, NULL), EE_ETOOBIG);
    cr_expect(strstr(ee_error_last_message(), "1200002 bytes as JSON text") != NULL, "%s",
              ee_error_last_message());
    json_decref(str);
    /* Exactly at the limit is accepted: a string of 1 MiB - 2 plain bytes. */
    char *plain = malloc(EE_SCHEMA_MAX_TEXT);
    memset(plain, 'x', EE_SCHEMA_MAX_TEXT);
    str = json_stringn(plain, EE_SCHEMA_MAX_TEXT - 2);
    cr_expect_eq(ee__schema_validate(s, str, NULL), EE_OK, "%s", ee_error_last_message());
    json_decref(str);
    str = json_stringn(plain, EE_SCHEMA_MAX_TEXT - 1);
    cr_expect_eq(ee__schema_validate(s, str, NULL), EE_ETOOBIG);
    json_decref(str);
    free(plain);
    ee_schema_free(s);
}

/* Regular-expression work is drawn from the validation's one budget: many
 * strings that each backtrack up to the per-match limit end in EE_ETOOBIG
 * instead of taking the per-match limit times the number of strings. */
Test(schema_bad_input, regex_work_has_one_budget, .timeout = 60)
{
    ee_schema *s = compile_ok("{\"items\":{\"type\":\"string\",\"pattern\":\"^(a+)+$\"}}");
    json_t *inst = json_array();
    for (int i = 0; i < 2000; i++)
        json_array_append_new(inst, json_string("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"));
    json_t *report = NULL;
    cr_expect_eq(ee__schema_validate(s, inst, &report), EE_ETOOBIG, "%s",
                 ee_error_last_message());
    cr_expect(strstr(ee_error_last_message(), "work than its budget") != NULL, "%s",
              ee_error_last_message());
    cr_expect_null(report);
    json_decref(inst);
    /* One such string is still a violation of its own (the per-match limit). */
    inst = json_pack("[s]", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!");
    cr_expect_eq(ee__schema_validate(s, inst, &report), EE_EVALIDATION);
    expect_error(report, "/0", "/items/pattern", "pattern", NULL);
    json_decref(report);
    json_decref(inst);
    /* Many cheap matches fit the budget: 20,000 short strings are valid. */
    inst = json_array();
    for (int i = 0; i < 20000; i++)
        json_array_append_new(inst, json_string("aaaaaaaaaaaaaaaaaaaaaaaa"));
    cr_expect_eq(ee__schema_validate(s, inst, NULL), EE_OK, "%s", ee_error_last_message());
    json_decref(inst);
    ee_schema_free(s);
}

/* A wide enum is looked up by hash; members still compare by value. */
Test(schema_report, wide_enum)
{
    json_t *members = json_array();
    for (int i = 0; i < 50000; i++)
        json_array_append_new(members, json_sprintf("v%d", i));
    json_array_append_new(members, json_integer(7));
    json_array_append_new(members, json_pack("{s:[i,f]}", "k", 1, 2.5));
    json_t *schema = json_pack("{s:{s:o}}", "items", "enum", members);
    ee_schema *s = NULL;
    cr_assert_eq(ee__schema_compile(&s, schema), EE_OK, "%s", ee_error_last_message());
    json_decref(schema);
    json_t *inst = json_array();
    for (int i = 0; i < 50000; i += 7)
        json_array_append_new(inst, json_sprintf("v%d", i));
    json_array_append_new(inst, json_real(7.0));
    json_array_append_new(inst, json_pack("{s:[f,f]}", "k", 1.0, 2.5));
    cr_expect_eq(ee__schema_validate(s, inst, NULL), EE_OK, "%s", ee_error_last_message());
    json_array_append_new(inst, json_string("v50000"));
    json_t *report = NULL;
    cr_expect_eq(ee__schema_validate(s, inst, &report), EE_EVALIDATION);
    cr_expect_eq(json_array_size(json_object_get(report, "errors")), 1);
    char ip[32];
    snprintf(ip, sizeof ip, "/%zu", json_array_size(inst) - 1);
    expect_error(report, ip, "/items/enum", "enum", NULL);
    json_decref(report);
    json_decref(inst);
    ee_schema_free(s);
}

/* ---- threads ------------------------------------------------------------------------ */

static void *validate_many(void *arg)
{
    const ee_schema *s = arg;
    long bad = 0;
    for (int i = 0; i < 300; i++) {
        char text[96];
        snprintf(text, sizeof text, "{\"id\":\"ab%d\",\"n\":%d}", i, i);
        ee_status st = ee_schema_validate(s, text, NULL);
        bad += st != (i % 2 == 0 ? EE_OK : EE_EVALIDATION);
    }
    return (void *)bad;
}

Test(schema_threads, one_compiled_schema_many_threads)
{
    ee_schema *s = compile_ok("{\"properties\":{\"id\":{\"pattern\":\"^ab[0-9]+$\"},"
                              "\"n\":{\"multipleOf\":2}}}");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, validate_many, s), 0);
    for (int i = 0; i < 4; i++) {
        void *bad;
        pthread_join(t[i], &bad);
        cr_expect_eq((long)bad, 0);
    }
    ee_schema_free(s);
}
