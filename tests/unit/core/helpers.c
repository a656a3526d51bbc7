/* Internal helpers of core: exact decimals, UTF-8, URI masking. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

Test(decimal, parse_exactly)
{
    int64_t v;
    cr_expect_eq(ee__decimal_parse("10", 9, &v), EE_OK);
    cr_expect_eq(v, INT64_C(10000000000));
    cr_expect_eq(ee__decimal_parse("0.000000001", 9, &v), EE_OK);
    cr_expect_eq(v, 1);
    cr_expect_eq(ee__decimal_parse("12.5", 2, &v), EE_OK);
    cr_expect_eq(v, 1250);
    cr_expect_eq(ee__decimal_parse("0", 2, &v), EE_OK);
    cr_expect_eq(v, 0);
    cr_expect_eq(ee__decimal_parse("9223372036.854775807", 9, &v), EE_OK);
    cr_expect_eq(v, INT64_MAX);
    const char *bad[] = {"", ".5", "5.", "-1", "+1", "1e3", " 1", "1 ", "1.2.3", "0x10",
                         "9223372036.854775808", "99999999999999999999", "1.0000000001"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(ee__decimal_parse(bad[i], 9, &v), EE_EINVAL, "accepted \"%s\"", bad[i]);
}

Test(decimal, format_round_trips)
{
    char buf[32];
    ee__decimal_format(INT64_C(10000000000), 9, buf);
    cr_expect_str_eq(buf, "10.000000000");
    ee__decimal_format(-1, 9, buf);
    cr_expect_str_eq(buf, "-0.000000001");
    ee__decimal_format(INT64_MIN, 9, buf);
    cr_expect_str_eq(buf, "-9223372036.854775808");
    ee__decimal_format(1250, 2, buf);
    cr_expect_str_eq(buf, "12.50");
    ee__decimal_format(42, 0, buf);
    cr_expect_str_eq(buf, "42");
    srand(7);
    for (int i = 0; i < 100000; i++) {
        int64_t x = ((int64_t)rand() << 31 | rand()) % INT64_C(1000000000000000000);
        int64_t back;
        ee__decimal_format(x, 9, buf);
        cr_assert_eq(ee__decimal_parse(buf, 9, &back), EE_OK, "%s", buf);
        cr_assert_eq(back, x);
    }
}

Test(decimal, integers)
{
    int64_t v;
    cr_expect_eq(ee__int_parse("-42", &v), EE_OK);
    cr_expect_eq(v, -42);
    cr_expect_eq(ee__int_parse("9223372036854775807", &v), EE_OK);
    cr_expect_eq(ee__int_parse("9223372036854775808", &v), EE_EINVAL);
    cr_expect_eq(ee__int_parse("-", &v), EE_EINVAL);
    cr_expect_eq(ee__int_parse("4x", &v), EE_EINVAL);
}

Test(text, utf8_validation)
{
    cr_expect(ee__utf8_valid("plain", 5));
    cr_expect(ee__utf8_valid("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    cr_expect_not(ee__utf8_valid("\xc0\xaf", 2), "overlong");
    cr_expect_not(ee__utf8_valid("\xed\xa0\x80", 3), "surrogate");
    cr_expect_not(ee__utf8_valid("\xf4\x90\x80\x80", 4), "past U+10FFFF");
    cr_expect_not(ee__utf8_valid("\xe2\x82", 2), "truncated");
    cr_expect_not(ee__utf8_valid("\xff", 1));
    char s[] = "ok\xff\xe2\x82 end";
    ee__utf8_sanitize(s);
    cr_expect_str_eq(s, "ok??? end");
}

/* The eight-bytes-at-a-time ASCII path: a bad or multi-byte sequence at
 * every offset of a long ASCII run, across the word boundaries. */
Test(text, utf8_validation_at_every_offset)
{
    char buf[48];
    for (size_t at = 0; at + 4 <= sizeof buf; at++) {
        memset(buf, 'a', sizeof buf);
        memcpy(buf + at, "\xf0\x9f\x98\x80", 4); /* U+1F600 */
        cr_expect(ee__utf8_valid(buf, sizeof buf), "emoji at %zu", at);
        cr_expect_not(ee__utf8_valid(buf, at + 3), "emoji cut at %zu", at);
        buf[at + 2] = 'a'; /* a continuation byte missing */
        cr_expect_not(ee__utf8_valid(buf, sizeof buf), "broken emoji at %zu", at);
        memset(buf, 'a', sizeof buf);
        buf[at] = (char)0x80; /* a lone continuation byte */
        cr_expect_not(ee__utf8_valid(buf, sizeof buf), "0x80 at %zu", at);
        buf[at] = (char)0xc3; /* a lead byte whose continuation is ASCII */
        cr_expect_not(ee__utf8_valid(buf, sizeof buf), "0xc3 'a' at %zu", at);
        cr_expect_not(ee__utf8_valid(buf, at + 1), "0xc3 last, at %zu", at);
        cr_expect(ee__utf8_valid(buf, at), "the ASCII before %zu", at);
    }
}

Test(text, uri_password_masking)
{
    char *m = ee__uri_masked("postgres://user:s3cret@db:5432/x?sslmode=require");
    cr_expect_str_eq(m, "postgres://user:***@db:5432/x?sslmode=require");
    free(m);
    m = ee__uri_masked("redis://:pw@127.0.0.1:6379/0");
    cr_expect_str_eq(m, "redis://:***@127.0.0.1:6379/0");
    free(m);
    m = ee__uri_masked("redis://127.0.0.1:6379/0?x=a@b");
    cr_expect_str_eq(m, "redis://127.0.0.1:6379/0?x=a@b", "an @ after the host is not userinfo");
    free(m);
    m = ee__uri_masked("memory:");
    cr_expect_str_eq(m, "memory:");
    free(m);
}

Test(text, quoting_for_messages)
{
    char out[16];
    ee__quote_for_message("a\nb", out, sizeof out);
    cr_expect_str_eq(out, "a?b");
    ee__quote_for_message("0123456789abcdefghij", out, sizeof out);
    cr_expect_str_eq(out, "0123456789ab...");
}

/* A password holding an unencoded '/', '?' or '#' ends the authority before
 * its '@': it was shown whole (ee_config_get_string(), the config and
 * engine summaries) and not registered for redaction. Read as
 * ee__uri_skeleton() reads it, the userinfo ends at the last '@'. */
Test(text, uri_password_with_delimiters_is_masked)
{
    static const char *const cases[][2] = {
        {"postgres://u:pa/ss@host/db", "postgres://u:***@host/db"},
        {"postgres://u:pa?ss@host/db", "postgres://u:***@host/db"},
        {"postgres://u:pa#ss@host:5432/db?sslmode=require",
         "postgres://u:***@host:5432/db?sslmode=require"},
        {"redis://:1234/5@host:6379/0", "redis://:***@host:6379/0"},
        {"redis://127.0.0.1:6379/0?x=a@b", "redis://127.0.0.1:6379/0?x=a@b"},
        {"sqlite:///data/a:b@c.db", "sqlite:///data/a:b@c.db"},
        {"postgres://host/db?application_name=a:b@c", "postgres://host/db?application_name=a:b@c"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = ee__uri_masked(cases[i][0]);
        cr_expect_str_eq(m, cases[i][1], "%s", cases[i][0]);
        free(m);
    }
}
