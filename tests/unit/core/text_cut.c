/*
 * Text is cut at UTF-8 character boundaries everywhere it is cut, so what
 * the library answers stays JSON: core's helpers, the key's last four in
 * ee_config_summary_json(), and credential-type names in routing gaps
 * (before, each split a character and the answer was EE_ENOMEM or
 * "config": null).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <execengine/execengine.h>

#include "core/core.h"
#include "engine_fixture.h"

/* "é" is 2 bytes, "€" 3, "𝄞" 4 */
#define E2 "\xc3\xa9"
#define E3 "\xe2\x82\xac"
#define E4 "\xf0\x9d\x84\x9e"

Test(text_cut, utf8_cut_backs_off_to_a_character_boundary)
{
    const char *s = "ab" E3 E4; /* bytes: a b | 3 | 4 = 9 */
    size_t n = strlen(s);
    cr_expect_eq(ee__utf8_cut(s, n, 9), 9);
    cr_expect_eq(ee__utf8_cut(s, n, 2), 2);
    cr_expect_eq(ee__utf8_cut(s, n, 3), 2);
    cr_expect_eq(ee__utf8_cut(s, n, 4), 2);
    cr_expect_eq(ee__utf8_cut(s, n, 5), 5);
    cr_expect_eq(ee__utf8_cut(s, n, 8), 5);
    for (size_t max = 0; max <= n; max++)
        cr_expect(ee__utf8_valid(s, ee__utf8_cut(s, n, max)), "cut at %zu", max);
}

Test(text_cut, trim_and_copy_leave_valid_text)
{
    char buf[8];
    /* what snprintf leaves of "€€€" in 8 bytes: two characters and a third's head */
    memcpy(buf, E3 E3 E3, 7);
    buf[7] = '\0';
    cr_expect(!ee__utf8_valid(buf, strlen(buf)));
    ee__utf8_trim(buf);
    cr_expect_str_eq(buf, E3 E3);
    char tiny[4];
    memcpy(tiny, E4, 3);
    tiny[3] = '\0';
    ee__utf8_trim(tiny);
    cr_expect_str_eq(tiny, "");
    char whole[8] = "a" E2;
    ee__utf8_trim(whole);
    cr_expect_str_eq(whole, "a" E2);
    cr_expect(ee__utf8_copy(buf, sizeof buf, "x" E4 E4));
    cr_expect_str_eq(buf, "x" E4);
    cr_expect(!ee__utf8_copy(buf, sizeof buf, "x" E2));
    cr_expect_str_eq(buf, "x" E2);
}

Test(text_cut, quoting_for_a_message_cuts_at_a_character)
{
    char in[200], out[16];
    in[0] = '\0';
    for (int i = 0; i < 40; i++)
        strcat(in, E3);
    for (size_t cap = 5; cap <= sizeof out; cap++) {
        ee__quote_for_message(in, out, cap);
        cr_expect(ee__utf8_valid(out, strlen(out)), "cap %zu: %s", cap, out);
        cr_expect_lt(strlen(out), cap);
    }
}

/* Such a key once reached the summary, whose byte cut of the last four
 * split "é". A secret-key option now takes printable ASCII only (its keys
 * go into HTTP headers as they are): the key is refused at the door, the
 * config keeps no part of it, and the summary stays JSON. */
Test(text_cut, a_key_ending_in_multibyte_characters_keeps_a_json_summary)
{
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    /* the last four bytes are the tail of "é" and "€": a byte cut splits é */
    cr_expect_eq(ee_config_set(cfg, "PLATFORM_SERPER_KEY", "serper-key-0123456789-" E2 E3),
                 EE_EINVAL);
    ee_test_config_set(cfg, "PLATFORM_SERPER_KEY", "serper-key-0123456789-abcd");
    char *text = NULL;
    cr_assert_eq(ee_config_summary_json(cfg, &text), EE_OK, "%s", text);
    json_t *doc = json_loads(text, 0, NULL);
    cr_assert_not_null(doc, "%s", text);
    json_t *k = json_object_get(doc, "PLATFORM_SERPER_KEY");
    cr_expect_str_eq(json_string_value(json_object_get(k, "last4")), "\xe2\x80\xa6" "abcd");
    json_decref(doc);
    ee_free(text);
    ee_engine *e = ee_test_engine_open_config(cfg);
    cr_assert_eq(ee_engine_summary_json(e, &text), EE_OK, "%s", text);
    doc = json_loads(text, 0, NULL);
    cr_assert_not_null(doc);
    cr_expect(json_is_object(json_object_get(doc, "config")), "config is not an object: %s",
              text);
    json_decref(doc);
    ee_free(text);
    ee_engine_close(e);
}

Test(text_cut, a_long_multibyte_credential_type_gives_a_gap_not_enomem)
{
    ee_engine *e = ee_test_engine_open(NULL, NULL, NULL);
    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws1", "u1", "o1"), EE_OK);
    /* "xy" then "€" x 120: 362 bytes, past the 256-byte field and the
     * 320-byte label; both byte cuts land inside a "€" */
    char type[400] = "xy";
    for (int i = 0; i < 120; i++)
        strcat(type, E3);
    char wf[1024];
    snprintf(wf, sizeof wf, "{\"nodes\": [{\"name\": \"n\", \"type\": \"t\", \"credentials\": "
                            "{\"%s\": {}}}]}", type);
    char *out = NULL;
    ee_status st = ee_cred_route(e, p, wf, NULL, &out);
    cr_assert_eq(st, EE_OK, "%s: %s", ee_status_name(st), out);
    json_t *doc = json_loads(out, 0, NULL);
    cr_assert_not_null(doc, "%s", out);
    json_t *gap = json_array_get(json_object_get(doc, "gaps"), 0);
    const char *field = json_string_value(json_object_get(gap, "field"));
    const char *label = json_string_value(json_object_get(gap, "label"));
    cr_assert_not_null(field);
    cr_assert_not_null(label);
    cr_expect_leq(strlen(field), 255);
    cr_expect_leq(strlen(label), 319);
    cr_expect_eq(strncmp(field, "credential:xy" E3, 16), 0, "%s", field);
    cr_expect_str_eq(json_string_value(json_object_get(gap, "credentialName")), type);
    json_decref(doc);
    ee_free(out);
    ee_principal_free(p);
    ee_engine_close(e);
}

#include "n8n/n8n_internal.h"

Test(text_cut, n8n_messages_are_cut_at_a_character_and_marked)
{
    /* n8n's message: 2 + 300 x "é" = 602 bytes, past the 500 kept */
    char body[700] = "{\"message\": \"xy";
    for (int i = 0; i < 300; i++)
        strcat(body, E2);
    strcat(body, "\"}");
    char msg[EE__N8N_MESSAGE_MAX + 8], hint[EE__N8N_MESSAGE_MAX + 8];
    ee__n8n_error_text(body, strlen(body), msg, sizeof msg, hint, sizeof hint);
    size_t n = strlen(msg);
    cr_expect(ee__utf8_valid(msg, n), "%s", msg);
    cr_expect_null(strchr(msg, '?'), "a character was replaced, not cut: %s", msg);
    cr_expect_geq(n, 4);
    cr_expect_str_eq(msg + n - 3, "...");
}

Test(text_cut, redaction_growing_past_the_buffer_cuts_at_a_character)
{
    char buf[48];
    /* "abcd" + 13 x "€" is 43 bytes; with "[REDACTED]" for "abcd" it would
     * be 49, so 37 bytes of the tail are kept: 12 "€" and one byte more */
    const char *shorty = "abcd";
    cr_assert_eq(ee__redact_register(shorty, strlen(shorty)), EE_OK);
    snprintf(buf, sizeof buf, "%s%s", shorty, E3 E3 E3 E3 E3 E3 E3 E3 E3 E3 E3 E3 E3);
    ee__redact(buf, sizeof buf);
    cr_expect(ee__utf8_valid(buf, strlen(buf)), "%s", buf);
    cr_expect_eq(strncmp(buf, "[REDACTED]", 10), 0, "%s", buf);
    ee__redact_unregister(shorty, strlen(shorty));
}
