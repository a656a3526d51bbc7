/* The public call of execengine/notify.h: JSON texts in, text out. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "execengine/execengine.h"

Test(template_api, renders_with_data_and_partials)
{
    char *out = NULL;
    cr_assert_eq(ee_template_render("{{#each rows}}{{> row}}{{/each}}{{#unless rows}}none{{/unless}}",
                                    "{\"rows\": [{\"n\": \"<a>\"}, {\"n\": \"b\"}]}",
                                    "{\"row\": \"[{{n}}]\"}", &out),
                 EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(out, "[&lt;a&gt;][b]");
    ee_free(out);
    /* no data, no partials */
    cr_assert_eq(ee_template_render("x{{y}}z", NULL, NULL, &out), EE_OK);
    cr_expect_str_eq(out, "xz");
    ee_free(out);
}

Test(template_api, length_counts_nul_bytes)
{
    char *out = NULL;
    size_t len = 99;
    cr_assert_eq(ee_template_render_len("<{{v}}>", "{\"v\": \"a\\u0000b\"}", NULL, &out, &len), EE_OK,
                 "%s", ee_error_last_message());
    cr_expect_eq(len, 5);
    cr_expect(memcmp(out, "<a\0b>", 5) == 0);
    ee_free(out);
    cr_assert_eq(ee_template_render_len("x", NULL, NULL, &out, NULL), EE_OK);
    ee_free(out);
}

Test(template_api, every_status)
{
    char *out = (char *)1;
    size_t len = 7;
    cr_expect_eq(ee_template_render_len(NULL, NULL, NULL, &out, &len), EE_EINVAL);
    cr_expect_null(out);
    cr_expect_eq(len, 0);
    cr_expect_eq(ee_template_render("x", NULL, NULL, NULL), EE_EINVAL);
    cr_expect_eq(ee_template_render("x", "{\"a\": ", NULL, &out), EE_EPARSE);
    cr_expect_eq(ee_template_render("x", "\"\xff\"", NULL, &out), EE_EPARSE, "not UTF-8");
    cr_expect_eq(ee_template_render("x", NULL, "[\"p\"]", &out), EE_EINVAL);
    cr_expect_eq(ee_template_render("x", NULL, "{\"p\": 1}", &out), EE_EINVAL);
    cr_expect(strstr(ee_error_last_message(), "\"p\"") != NULL, "%s", ee_error_last_message());
    cr_expect_eq(ee_template_render("{{> p}}", NULL, "{\"q\": \"x\"}", &out), EE_ENOTFOUND);
    cr_expect_null(out);
    cr_expect_eq(ee_template_render("{{#if a}}", "{}", NULL, &out), EE_EPARSE);
    cr_expect_eq(ee_template_render("{{#if}}{{/if}}", "{}", NULL, &out), EE_EPARSE);
    /* data nested past the depth limit, before jansson recurses into it */
    char deep[2 * EE_TEMPLATE_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i <= EE_TEMPLATE_MAX_DEPTH + 1; i++)
        deep[n++] = '[';
    for (int i = 0; i <= EE_TEMPLATE_MAX_DEPTH + 1; i++)
        deep[n++] = ']';
    deep[n] = '\0';
    cr_expect_eq(ee_template_render("x", deep, NULL, &out), EE_ETOOBIG);
    /* a template past the size limit */
    char *big = malloc(EE_TEMPLATE_MAX_TEMPLATE + 2);
    memset(big, 'a', EE_TEMPLATE_MAX_TEMPLATE + 1);
    big[EE_TEMPLATE_MAX_TEMPLATE + 1] = '\0';
    cr_expect_eq(ee_template_render(big, NULL, NULL, &out), EE_ETOOBIG);
    free(big);
    /* data past the size limit */
    size_t dn = (size_t)EE_TEMPLATE_MAX_DATA + 16;
    char *data = malloc(dn + 1);
    memset(data, ' ', dn);
    data[0] = '"';
    data[dn - 1] = '"';
    data[dn] = '\0';
    cr_expect_eq(ee_template_render("x", data, NULL, &out), EE_ETOOBIG);
    free(data);
    cr_expect_null(out);
}

/* No secret-like value reaches the message of a failed render: the message
 * names the template's byte offset, never the data. */
Test(template_api, messages_hold_no_data)
{
    char *out = NULL;
    cr_expect_eq(ee_template_render("{{#each l}}{{> nope}}{{/each}}",
                                    "{\"l\": [\"CANARY-sk-live-51x\"]}", NULL, &out),
                 EE_ENOTFOUND);
    cr_expect_null(strstr(ee_error_last_message(), "CANARY"), "%s", ee_error_last_message());
}

/* The template's text is copied to the output as it is: a template that is
 * not UTF-8 is refused like data that is not (it rendered its bytes into
 * the answer before). */
Test(template_api, a_template_that_is_not_utf8_is_refused)
{
    const char *bad[] = {"caf\xe9 {{x}}", "{{x}}\xc3", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                         "\xc0\xaf"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *out = (char *)1;
        size_t len = 7;
        cr_expect_eq(ee_template_render_len(bad[i], "{\"x\": 1}", NULL, &out, &len), EE_EPARSE,
                     "template %zu", i);
        cr_expect_null(out);
        cr_expect_eq(len, 0);
        cr_expect_not_null(strstr(ee_error_last_message(), "UTF-8"), "%s",
                           ee_error_last_message());
    }
    char *out = NULL;
    cr_assert_eq(ee_template_render("caf\xc3\xa9 {{x}} \xf0\x9f\x93\xa7", "{\"x\": 1}", NULL, &out),
                 EE_OK, "%s", ee_error_last_message());
    cr_expect_str_eq(out, "caf\xc3\xa9 1 \xf0\x9f\x93\xa7");
    ee_free(out);
}

/* The name of a partial that is not a string is quoted in the message as
 * every quoted input is (ee__quote_for_message()): cut on a character
 * boundary, control characters replaced. A byte cut ("%.64s") split the
 * 2-byte character that straddled byte 64 and left invalid UTF-8 in the
 * message, and passed a control character through. */
Test(template_api, a_long_partial_name_is_quoted_whole_characters)
{
    char name[200], partials[300];
    memset(name, 'a', 63);
    strcpy(name + 63, "\xc3\xa9tail-of-a-long-partial-name");
    snprintf(partials, sizeof partials, "{\"%s\": 1}", name);
    char *out = NULL;
    cr_assert_eq(ee_template_render("x", NULL, partials, &out), EE_EINVAL);
    ee_free(out);
    const char *msg = ee_error_last_message();
    json_t *as_json = json_string(msg); /* NULL when msg is not UTF-8 */
    cr_expect_not_null(as_json, "message not UTF-8: %s", msg);
    json_decref(as_json);
    /* the 63 bytes before the character, then the cut mark (the error
     * layer turned the split byte into '?' before) */
    char want[100];
    memset(want, 'a', 63);
    strcpy(want + 63, "...\" is not a string");
    cr_expect_not_null(strstr(msg, want), "%s", msg);

    cr_assert_eq(ee_template_render("x", NULL, "{\"a\\u0001b\\nc\": 1}", &out), EE_EINVAL);
    ee_free(out);
    msg = ee_error_last_message();
    cr_expect_null(strchr(msg, '\x01'), "%s", msg);
    cr_expect_null(strchr(msg, '\n'), "%s", msg);
}
