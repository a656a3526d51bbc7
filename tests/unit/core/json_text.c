/*
 * ee__json_text(), the compact writer behind every JSON answer: the same
 * text as json_dumps(JSON_COMPACT | JSON_ENCODE_ANY) for everything but
 * reals, which are their shortest decimal that reads back exactly.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/core.h"

static void same_as_jansson(const json_t *v)
{
    char *want = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    size_t len = 0;
    char *got = ee__json_text(v, &len);
    cr_assert_not_null(want);
    cr_assert_not_null(got);
    cr_expect_str_eq(got, want);
    cr_expect_eq(len, strlen(want));
    free(want);
    free(got);
}

Test(json_text, everything_but_reals_as_jansson_writes_it)
{
    json_t *doc = json_object();
    /* every byte below 0x20, the quote, the backslash, DEL, the slash */
    char all[0x80];
    for (int c = 1; c < 0x80; c++)
        all[c - 1] = (char)c;
    all[0x7f] = '\0';
    json_object_set_new(doc, "ascii", json_string(all));
    json_object_set_new(doc, "nul inside", json_stringn("a\0b", 3));
    json_object_set_new(doc, "unicode \xe2\x82\xac", json_string("caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8"));
    json_object_set_new(doc, "key \"quoted\"\n", json_string(""));
    json_object_set_new(doc, "ints", json_pack("[I,I,I,i]", (json_int_t)INT64_MAX,
                                               (json_int_t)INT64_MIN, (json_int_t)0, -1));
    json_object_set_new(doc, "lits", json_pack("[b,b,n]", 1, 0));
    json_object_set_new(doc, "empty", json_pack("{s:{},s:[],s:[[{}]]}", "o", "a", "n"));
    json_t *deep = json_array();
    json_t *at = deep;
    for (int i = 0; i < 40; i++) {
        json_t *next = json_object();
        json_array_append_new(at, next);
        at = json_array();
        json_object_set_new(next, "x", at);
    }
    json_object_set_new(doc, "deep", deep);
    same_as_jansson(doc);
    /* insertion order is kept, as json_dumps keeps it */
    json_t *ordered = json_object();
    const char *names[] = {"zeta", "alpha", "10", "2", "mid", "_id"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        json_object_set_new(ordered, names[i], json_integer((json_int_t)i));
    same_as_jansson(ordered);
    char *text = ee__json_text(ordered, NULL);
    cr_expect_str_eq(text, "{\"zeta\":0,\"alpha\":1,\"10\":2,\"2\":3,\"mid\":4,\"_id\":5}");
    free(text);
    /* scalars alone */
    json_t *s = json_string("x");
    same_as_jansson(s);
    json_decref(s);
    json_decref(ordered);
    json_decref(doc);
}

static void real_is(double d, const char *want)
{
    json_t *v = json_real(d);
    char *got = ee__json_text(v, NULL);
    cr_assert_not_null(got);
    cr_expect_str_eq(got, want, "%.17g", d);
    cr_expect(strtod(got, NULL) == d, "%s reads back as %.17g", got, d);
    /* and jansson reads it back as a real, not an integer */
    json_t *back = json_loads(got, JSON_DECODE_ANY, NULL);
    cr_expect(json_is_real(back), "%s", got);
    json_decref(back);
    free(got);
    json_decref(v);
}

Test(json_text, reals_are_their_shortest_decimal)
{
    real_is(0.000123, "0.000123");
    real_is(0.1, "0.1");
    real_is(0.1 + 0.2, "0.30000000000000004");
    real_is(1.0, "1.0");
    real_is(-0.0, "-0.0");
    real_is(100.0, "100.0");
    real_is(1e21, "1e21");
    real_is(1e20, "100000000000000000000.0");
    real_is(4277834443099750.0, "4277834443099750.0");
    real_is(1e-6, "0.000001");
    real_is(1.25e-6, "0.00000125");
    real_is(1.5e300, "1.5e300");
    real_is(1e-7, "1e-7");
    real_is(-2.5e-10, "-2.5e-10");
    real_is(123456789012345678.0, "123456789012345680.0");
    real_is(5e-324, "4.94065645841247e-324"); /* a subnormal: 15 digits read back */
    real_is(1.7976931348623157e308, "1.7976931348623157e308");
    real_is(2.0 / 3.0, "0.6666666666666666");
}

/* Significant digits of a number's text: leading and trailing zeros of
 * its mantissa are not. */
static size_t sig_digits(const char *t)
{
    char d[64];
    size_t n = 0;
    for (; *t != '\0' && *t != 'e' && n < sizeof d; t++)
        if (*t >= '0' && *t <= '9')
            d[n++] = *t;
    size_t a = 0;
    while (a < n && d[a] == '0')
        a++;
    while (n > a && d[n - 1] == '0')
        n--;
    return n - a;
}

Test(json_text, every_real_reads_back)
{
    /* doubles of every magnitude, with random mantissas */
    unsigned long long x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d))
            continue;
        json_t *v = json_real(d);
        char *got = ee__json_text(v, NULL);
        char *jan = json_dumps(v, JSON_ENCODE_ANY);
        cr_assert_not_null(got);
        cr_assert(strtod(got, NULL) == d, "%s does not read back as %.17g", got, d);
        cr_assert(sig_digits(got) <= sig_digits(jan), "%s has more digits than jansson's %s",
                  got, jan);
        free(got);
        free(jan);
        json_decref(v);
    }
}

Test(json_text, a_string_that_is_not_utf8_is_refused)
{
    json_t *doc = json_pack("{s:o}", "bad", json_stringn_nocheck("\xff", 1));
    cr_expect_null(ee__json_text(doc, NULL));
    cr_expect_null(json_dumps(doc, JSON_COMPACT), "jansson refuses it too");
    char *out = NULL;
    cr_expect_eq(ee__json_out(&out, doc), EE_ENOMEM);
    cr_expect_not_null(strstr(out != NULL ? out : "", "EE_ENOMEM"), "the error document: %s",
                       out != NULL ? out : "(null)");
    ee_free(out);
    cr_expect_null(ee__json_text(NULL, NULL));
}
