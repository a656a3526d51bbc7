/*
 * Reading OpenRouter's usage: the cost's decimal text to nano-USD exactly
 * (no double in between), tokens, the model; the last SSE message carrying
 * usage; what is not usage is ignored.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "gateway/gateway_internal.h"

static int64_t nano(const char *text)
{
    int64_t v = -1;
    cr_assert(ee__gateway_nano_parse(text, strlen(text), &v), "%s parses", text);
    return v;
}

static bool nano_fails(const char *text)
{
    int64_t v = 0;
    return !ee__gateway_nano_parse(text, strlen(text), &v);
}

Test(gateway_meter, costs_parse_exactly_and_round_half_up)
{
    cr_expect_eq(nano("0"), 0);
    cr_expect_eq(nano("1"), 1000000000);
    cr_expect_eq(nano("0.000123456789"), 123457);
    cr_expect_eq(nano("0.0000001234"), 123);
    cr_expect_eq(nano("0.0000000015"), 2);
    cr_expect_eq(nano("0.0000000014999"), 1);
    cr_expect_eq(nano("12.5"), 12500000000);
    cr_expect_eq(nano("1.5e-5"), 15000);
    cr_expect_eq(nano("15E-6"), 15000);
    cr_expect_eq(nano("2e3"), 2000000000000);
    cr_expect_eq(nano("5e-10"), 1);
    cr_expect_eq(nano("4e-10"), 0);
    cr_expect_eq(nano("0.1"), 100000000, "0.1 has no exact double: read as text");
    cr_expect_eq(nano("0.30000000000000004"), 300000000);
    cr_expect(nano_fails("-0.1"));
    cr_expect(nano_fails(""));
    cr_expect(nano_fails("."));
    cr_expect(nano_fails("1e"));
    cr_expect(nano_fails("1.2.3"));
    cr_expect(nano_fails("null"));
    cr_expect(nano_fails("\"0.1\""));
    cr_expect(nano_fails("1e30"), "overflow");
    cr_expect(nano_fails("9300000000"), "overflow of int64 nano");
}

Test(gateway_meter, usage_from_a_body_skips_lookalikes)
{
    const char *body =
        "{\"id\": \"x\", \"choices\": [{\"message\": {\"content\": \"\\\"usage\\\": "
        "{\\\"cost\\\": 5}\"}}], \"model\": \"anthropic/claude-3-haiku\", "
        "\"meta\": {\"usage\": {\"cost\": 7}}, "
        "\"usage\": {\"prompt_tokens\": 100, \"completion_tokens\": 20, \"total_tokens\": 120, "
        "\"cost\": 0.00005, \"cost_details\": {\"upstream_inference_cost\": 9}}}";
    g_usage u;
    ee__gateway_usage_parse(body, strlen(body), false, &u);
    cr_assert(u.found);
    cr_expect_eq(u.prompt_tokens, 100);
    cr_expect_eq(u.completion_tokens, 20);
    cr_expect_eq(u.total_tokens, 120);
    cr_expect(u.has_cost);
    cr_expect_eq(u.cost_nano, 50000);
    cr_expect_str_eq(u.model, "anthropic/claude-3-haiku");
    const char *none = "{\"error\": {\"message\": \"bad\", \"code\": 400}}";
    ee__gateway_usage_parse(none, strlen(none), false, &u);
    cr_expect_not(u.found);
    cr_expect_eq(u.cost_nano, 0);
    ee__gateway_usage_parse("{\"usage\": {\"cost\": 1", 20, false, &u);
    cr_expect_not(u.found, "a cut body meters nothing");
}

Test(gateway_meter, usage_from_the_last_sse_message_carrying_it)
{
    const char *sse =
        ": keep-alive\r\n\r\n"
        "data: {\"model\": \"m/one\", \"choices\": []}\r\n\r\n"
        "data: {\"model\": \"m/one\", \"usage\": {\"prompt_tokens\": 1, \"completion_tokens\": "
        "1, \"cost\": 0.1}}\r\n\r\n"
        "data: {\"model\": \"m/one\", \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": "
        "4, \"cost\": 0.25}}\r\n\r\n"
        "data: [DONE]\r\n\r\n";
    g_usage u;
    ee__gateway_usage_parse(sse, strlen(sse), true, &u);
    cr_assert(u.found);
    cr_expect_eq(u.prompt_tokens, 3);
    cr_expect_eq(u.completion_tokens, 4);
    cr_expect_eq(u.total_tokens, 7, "no total_tokens: the sum");
    cr_expect_eq(u.cost_nano, 250000000);
    cr_expect_str_eq(u.model, "m/one");
}

/* The counts are the provider's word, each close to INT64_MAX: a missing
 * total_tokens is their sum, held at INT64_MAX (it overflowed before). */
Test(gateway_meter, a_total_of_huge_counts_does_not_overflow)
{
    const char *body = "{\"usage\": {\"prompt_tokens\": 9000000000000000000, "
                       "\"completion_tokens\": 9000000000000000000}}";
    g_usage u;
    ee__gateway_usage_parse(body, strlen(body), false, &u);
    cr_assert(u.found);
    cr_expect_eq(u.prompt_tokens, INT64_C(9000000000000000000));
    cr_expect_eq(u.total_tokens, INT64_MAX);
}

/* The model name is the upstream's text: one that is not UTF-8 or holds a
 * control character is dropped (it is stored with the call, listed in the
 * cost breakdown and counted by name); the usage still counts. Found by
 * tests/fuzz/gateway_meter.c. */
Test(gateway_meter, a_model_name_that_is_not_clean_text_is_dropped)
{
    static const char *const bad[] = {"{\"model\": \"m\xff\", \"usage\": {\"total_tokens\": 3}}",
                                      "{\"model\": \"a\x01z\", \"usage\": {\"total_tokens\": 3}}",
                                      "{\"model\": \"\xc0\xaf\", \"usage\": {\"total_tokens\": 3}}",
                                      "{\"model\": \"e\x7f\", \"usage\": {\"total_tokens\": 3}}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g_usage u;
        ee__gateway_usage_parse(bad[i], strlen(bad[i]), false, &u);
        cr_assert(u.found, "case %zu", i);
        cr_expect_eq(u.total_tokens, 3, "case %zu", i);
        cr_expect_str_eq(u.model, "", "case %zu", i);
    }
    const char *good = "{\"model\": \"mistral/\xc3\xa9t\xc3\xa9-7b\", \"usage\": {\"total_tokens\": 3}}";
    g_usage u;
    ee__gateway_usage_parse(good, strlen(good), false, &u);
    cr_expect_str_eq(u.model, "mistral/\xc3\xa9t\xc3\xa9-7b");
}

/* The embedded listener asks every request without an Accept header for a
 * stream whether its body wants one - a GET has no body, so it asks with
 * NULL and 0. The scan made its end pointer as NULL + 0 first (undefined
 * behaviour: clang's UndefinedBehaviorSanitizer stopped every GET through
 * the listener; found by the gateway_listen fuzz target). */
Test(gateway_meter, a_request_without_a_body_does_not_want_a_stream)
{
    cr_expect_not(ee__gateway_wants_stream(NULL, 0));
    cr_expect_not(ee__gateway_wants_stream("", 0));
    cr_expect(ee__gateway_wants_stream("{\"stream\": true}", 16));
}
