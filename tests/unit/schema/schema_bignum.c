/*
 * Numbers jansson cannot hold (lib/schema/schema_bignum.c): integers
 * beyond int64 and decimals beyond a double are valid JSON and valid
 * "integer"/"number" instances, compared exactly by minimum, maximum,
 * exclusive bounds, multipleOf, const, enum and uniqueItems, in schemas
 * and instances alike; the work they take stays bounded.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "execengine/errors.h"
#include "execengine/schema.h"

#define BIG_INT "12345678910111213141516171819202122232425262728293031"

/* The status of validating `inst` against `schema` (both JSON text). */
static ee_status run(const char *schema, const char *inst)
{
    ee_schema *s = NULL;
    cr_assert_eq(ee_schema_compile(&s, schema), EE_OK, "%s: %s", schema,
                 ee_error_last_message());
    ee_status st = ee_schema_validate(s, inst, NULL);
    ee_schema_free(s);
    return st;
}

static void valid(const char *schema, const char *inst)
{
    ee_status st = run(schema, inst);
    cr_expect_eq(st, EE_OK, "%s against %s: %s (%s)", inst, schema, ee_status_name(st),
                 st == EE_OK ? "" : ee_error_last_message());
}

static void invalid(const char *schema, const char *inst)
{
    ee_status st = run(schema, inst);
    cr_expect_eq(st, EE_EVALIDATION, "%s against %s: %s (%s)", inst, schema,
                 ee_status_name(st), st == EE_OK ? "" : ee_error_last_message());
}

Test(schema_bignum, types)
{
    valid("{\"type\":\"integer\"}", BIG_INT);
    valid("{\"type\":\"integer\"}", "-" BIG_INT);
    valid("{\"type\":\"number\"}", "98249283749234923498293171823948729348710298301928331");
    valid("{\"type\":\"number\"}", "-98249283749234923498293171823948729348710298301928331");
    valid("{\"type\":\"number\"}", "1e400");
    valid("{\"type\":\"number\"}", "-1e400");
    valid("{\"type\":\"integer\"}", "1e400");
    valid("{\"type\":\"number\"}", "1e-400");
    invalid("{\"type\":\"integer\"}", "1e-400");
    invalid("{\"type\":\"integer\"}", "12345678901234567890.5");
    valid("{\"type\":\"number\"}", "12345678901234567890.5");
    invalid("{\"type\":\"string\"}", BIG_INT);
    invalid("{\"type\":\"string\"}", "-" BIG_INT);
    invalid("{\"type\":\"string\"}", "98249283749234923498293171823948729348710298301928331");
    invalid("{\"type\":\"string\"}", "1e400");
    /* inside arrays and objects, next to ordinary numbers */
    valid("{\"items\":{\"type\":\"integer\"}}", "[1, " BIG_INT ", 2, -" BIG_INT "]");
    invalid("{\"properties\":{\"b\":{\"type\":\"integer\"}}}",
            "{\"a\":" BIG_INT ",\"b\":1e-400,\"c\":3}");
    valid("{\"properties\":{\"b\":{\"type\":\"integer\"}}}",
          "{\"a\":1e-400,\"b\":" BIG_INT ",\"c\":3.5}");
}

Test(schema_bignum, bounds)
{
    const char *max = "{\"maximum\":18446744073709551615}";
    valid(max, "18446744073709551600");
    valid(max, "18446744073709551615");
    invalid(max, "18446744073709551616");
    invalid(max, "18446744073709551615.000000000000001");
    valid(max, "3");
    invalid(max, "1e20");
    invalid(max, "1e400");
    const char *xmax = "{\"exclusiveMaximum\":972783798187987123879878123.18878137}";
    invalid(xmax, "972783798187987123879878123.188781371");
    invalid(xmax, "972783798187987123879878123.18878137");
    valid(xmax, "972783798187987123879878123.188781369");
    valid(xmax, "972783798187987123879878123");
    const char *min = "{\"minimum\":-18446744073709551615}";
    invalid(min, "-18446744073709551616");
    valid(min, "-18446744073709551615");
    valid(min, "-18446744073709551614");
    valid(min, "0");
    const char *xmin = "{\"exclusiveMinimum\":-972783798187987123879878123.18878137}";
    invalid(xmin, "-972783798187987123879878123.188781371");
    invalid(xmin, "-972783798187987123879878123.18878137");
    valid(xmin, "-972783798187987123879878123.188781369");
    /* an ordinary bound against a big instance and the reverse */
    valid("{\"minimum\":0}", "1e400");
    invalid("{\"maximum\":0}", "1e-400");
    valid("{\"minimum\":0}", "1e-400");
    invalid("{\"minimum\":0}", "-1e-400");
    valid("{\"maximum\":1e400}", "1.7976931348623157e308");
    invalid("{\"minimum\":1e400}", "1.7976931348623157e308");
    invalid("{\"maximum\":0.1}", "0.100000000000000000001");
    valid("{\"maximum\":0.1}", "0.099999999999999999999");
}

Test(schema_bignum, multiple_of)
{
    valid("{\"type\":\"integer\",\"multipleOf\":0.5}", "1e308");
    valid("{\"multipleOf\":0.5}", "1e400");
    valid("{\"multipleOf\":0.5}", BIG_INT "5");
    valid("{\"multipleOf\":0.5}", BIG_INT ".5");
    invalid("{\"multipleOf\":0.5}", BIG_INT ".25");
    valid("{\"multipleOf\":7}", "70000000000000000000000000000000000000000000000000007");
    invalid("{\"multipleOf\":7}", "70000000000000000000000000000000000000000000000000008");
    valid("{\"multipleOf\":3}", "3e400");
    invalid("{\"multipleOf\":3}", "1e400"); /* 10^400 mod 3 is 1 */
    invalid("{\"multipleOf\":0.3}", "1e-400");
}

Test(schema_bignum, multiple_of_big_divisor)
{
    /* 12345678901234567890123 * 3 = 37037036703703703670369 */
    const char *s = "{\"multipleOf\":12345678901234567890123}";
    valid(s, "37037036703703703670369");
    invalid(s, "37037036703703703670370");
    valid(s, "0");
    valid(s, "12345678901234567890123e50");
    invalid(s, "12345678901234567890123e-1");
    valid("{\"multipleOf\":1.2345678901234567890123}", "3.7037036703703703670369");
    invalid("{\"multipleOf\":1.2345678901234567890123}", "3.703703670370370367037");
    valid("{\"multipleOf\":1e-400}", "1");
    valid("{\"multipleOf\":1e-400}", "1.5");
    invalid("{\"multipleOf\":1e400}", "1e399");
    valid("{\"multipleOf\":1e400}", "2e400");
}

Test(schema_bignum, const_enum_unique)
{
    const char *c = "{\"const\":12345678901234567890}";
    valid(c, "12345678901234567890");
    valid(c, "12345678901234567890.0");
    valid(c, "1.2345678901234567890e19");
    valid(c, "123456789012345678900e-1");
    invalid(c, "12345678901234567891");
    invalid(c, "12345678901234567890.000000000000000001");
    invalid(c, "12345678901234567000");
    const char *e = "{\"enum\":[1, \"a\", 12345678901234567890, 1e400, [" BIG_INT "]]}";
    valid(e, "12345678901234567890.0");
    valid(e, "1.2345678901234567890e19");
    valid(e, "10e399");
    valid(e, "[" BIG_INT ".0]");
    valid(e, "1.0");
    invalid(e, "12345678901234567891");
    invalid(e, "1e401");
    invalid(e, "[" BIG_INT "1]");
    /* a big number equal to an ordinary one (1e19 is exact in a double) */
    valid("{\"const\":1e19}", "10000000000000000000");
    valid("{\"enum\":[1e19]}", "10000000000000000000");
    valid("{\"enum\":[10000000000000000000]}", "1e19");
    valid("{\"enum\":[5]}", "5.000000000000000000000");
    valid("{\"enum\":[123456789012345678]}", "1234567890123456780.0000000000000000000e-1");
    invalid("{\"enum\":[123456789012345678]}", "123456789012345678.00000000000000000001");
    const char *u = "{\"uniqueItems\":true}";
    invalid(u, "[12345678901234567890, 1.2345678901234567890e19]");
    invalid(u, "[1e19, 10000000000000000000]");
    invalid(u, "[{\"a\":1e400}, {\"a\":10e399}]");
    valid(u, "[12345678901234567890, 12345678901234567891]");
    valid(u, "[1e400, -1e400, 1e-400, -1e-400, 0]");
}

Test(schema_bignum, messages_show_the_token)
{
    ee_schema *s = NULL;
    cr_assert_eq(ee_schema_compile(&s, "{\"maximum\":18446744073709551615}"), EE_OK);
    char *report = NULL;
    cr_assert_eq(ee_schema_validate(s, "18446744073709551616", &report), EE_EVALIDATION);
    cr_expect(strstr(report, "18446744073709551615") != NULL, "%s", report);
    cr_expect(strstr(report, "18446744073709551616") != NULL, "%s", report);
    ee_free(report);
    ee_schema_free(s);
    cr_assert_eq(ee_schema_compile(&s, "{\"enum\":[1, [1e400, {\"x\": -1e-400}], 2]}"), EE_OK);
    cr_assert_eq(ee_schema_validate(s, "3", &report), EE_EVALIDATION);
    cr_expect(strstr(report, "[1,[1e400,{\\\"x\\\":-1e-400}],2]") != NULL, "%s", report);
    ee_free(report);
    ee_schema_free(s);
}

Test(schema_bignum, defaults_keep_big_numbers_out)
{
    ee_schema *s = NULL;
    cr_assert_eq(ee_schema_compile(&s, "{\"properties\":{\"a\":{\"default\":1e400},"
                                       "\"b\":{\"default\":[2]}}}"),
                 EE_OK);
    char *out = NULL;
    /* a copy would hold the placeholder: refused, never a wrong number */
    cr_expect_eq(ee_schema_apply_defaults(s, "{}", &out), EE_ETOOBIG);
    ee_free(out);
    out = NULL;
    cr_expect_eq(ee_schema_apply_defaults(s, "{\"a\":1}", &out), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_str_eq(out, "{\"a\":1,\"b\":[2]}");
    ee_free(out);
    ee_schema_free(s);
}

Test(schema_bignum, bounded)
{
    /* more than 10,000 significant digits: refused, not computed with */
    size_t n = 10002;
    char *big = malloc(n + 1);
    cr_assert_not_null(big);
    memset(big, '7', n);
    big[n] = '\0';
    ee_schema *s = NULL;
    cr_assert_eq(ee_schema_compile(&s, "{\"type\":\"integer\"}"), EE_OK);
    cr_expect_eq(ee_schema_validate(s, big, NULL), EE_ETOOBIG, "%s", ee_error_last_message());
    big[10000] = '\0';
    cr_expect_eq(ee_schema_validate(s, big, NULL), EE_OK, "%s", ee_error_last_message());
    ee_schema_free(s);
    /* an exponent past the bound */
    cr_expect_eq(run("{}", "1e9999999999"), EE_ETOOBIG);
    cr_expect_eq(ee_schema_compile(&s, "{\"maximum\":1e9999999999}"), EE_ETOOBIG);
    cr_expect_null(s);
    /* a big divisor against a far larger exponent: the work budget ends it */
    cr_expect_eq(run("{\"multipleOf\":12345678901234567890123}", "1e900000000"), EE_ETOOBIG);
    /* an ordinary divisor handles any exponent span quickly */
    valid("{\"multipleOf\":7}", "7e900000000");
    invalid("{\"multipleOf\":7}", "1e900000000");
    free(big);
}

Test(schema_bignum, schema_keywords)
{
    ee_schema *s = NULL;
    /* counts cannot be beyond int64, a divisor must be positive */
    cr_expect_eq(ee_schema_compile(&s, "{\"maxLength\":" BIG_INT "}"), EE_EINVAL);
    cr_expect_eq(ee_schema_compile(&s, "{\"multipleOf\":-" BIG_INT "}"), EE_EINVAL);
    cr_expect_eq(ee_schema_compile(&s, "{\"multipleOf\":" BIG_INT "}"), EE_OK, "%s",
                 ee_error_last_message());
    ee_schema_free(s);
    /* not JSON stays not JSON */
    cr_expect_eq(run("{}", "1234567890123456789012345.") == EE_EPARSE, true);
    cr_expect_eq(run("{}", "01234567890123456789012345") == EE_EPARSE, true);
    cr_expect_eq(run("{}", "[12345678901234567890123 4]") == EE_EPARSE, true);
}

Test(schema_bignum, placement_in_the_document)
{
    /* each big number is found again at its own place: members in text
     * order, strings (with escaped quotes and number-like text) skipped */
    const char *s = "{\"properties\":{\"a\":{\"const\":1e400},\"b\":{\"const\":-1e400},"
                    "\"c\":{\"const\":1e-400},\"s\":{\"const\":\"1e400 \\\" 2e400\"}}}";
    valid(s, "{\"c\":1e-400,\"s\":\"1e400 \\\" 2e400\",\"a\":1e400,\"b\":-1e400}");
    valid(s, "{\"x\":[\"\\\\\",18446744073709551616,{\"y\":1e999}],\"b\":-1e400,\"a\":1e400}");
    invalid(s, "{\"c\":1e-400,\"a\":-1e400,\"b\":1e400}");
    invalid(s, "{\"a\":1e400,\"b\":-1e400,\"c\":1e-401}");
    invalid("{\"properties\":{\"b\":{\"maximum\":0}}}",
            "{\"s\":\"12345678901234567890123 \\\" -1e400\",\"b\":1e400}");
}
