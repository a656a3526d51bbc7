/*
 * Secret-looking members dropped from outputs (lib/exec/support.h,
 * secrets.c): the default list, case and separator variants, names that
 * contain a listed name where a word ends (dropped) or mid-word (kept),
 * nesting through arrays, the list's bounds, the depth bound, and a canary
 * scan of what is left.
 */
#include "support_test.h"

#define CANARY "CANARY-sk-or-v1-7f3e9c2d1b0a"

static ee__secret_names *defaults(void)
{
    ee__secret_names *n = NULL;
    cr_assert_eq(ee__secret_names_parse(NULL, &n), EE_OK, "%s", ee_error_last_message());
    return n;
}

/* Whether the default list drops a member named `name`. */
static bool dropped_by(const ee__secret_names *n, const char *name)
{
    json_t *doc = json_pack("{s:s, s:i}", name, CANARY, "keep", 1);
    size_t k = ee__drop_secrets(n, doc);
    bool gone = json_object_get(doc, name) == NULL;
    cr_assert_eq(k, gone ? 1u : 0u, "%s: the count says what went", name);
    cr_assert_not_null(json_object_get(doc, "keep"));
    json_decref(doc);
    return gone;
}

Test(exec_secrets, every_default_name_is_dropped)
{
    ee__secret_names *n = defaults();
    const char *names[] = {"password", "passwd", "token", "apiKey", "api_key", "secret",
                           "authorization", "accessToken", "refreshToken", "clientSecret",
                           "privateKey", "cookie"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect(dropped_by(n, names[i]), "%s", names[i]);
    ee__secret_names_free(n);
}

Test(exec_secrets, case_and_separator_variants_match)
{
    ee__secret_names *n = defaults();
    const char *names[] = {"API_KEY", "Api-Key", "apikey", "APIKEY", "api.key", "ApiKey",
                           "api key", "PASSWORD", "Pass_Word", "AUTHORIZATION", "Client-Secret",
                           "private_key", "ACCESS-TOKEN", "__token__"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect(dropped_by(n, names[i]), "%s", names[i]);
    ee__secret_names_free(n);
}

Test(exec_secrets, a_name_containing_a_listed_one_where_a_word_ends_matches)
{
    ee__secret_names *n = defaults();
    const char *names[] = {"x-api-key", "openaiApiKey", "openaiapikey", "BEARER_TOKEN",
                           "apiKeyId", "OPENAI_API_KEY", "XApiKey", "db_password_2",
                           "sessionCookie", "oauth2Token", "userPassword", "tokenValue",
                           "Proxy-Authorization", "setCookie", "github_pat_token"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect(dropped_by(n, names[i]), "%s", names[i]);
    ee__secret_names_free(n);
}

Test(exec_secrets, a_name_containing_a_listed_one_mid_word_is_kept)
{
    ee__secret_names *n = defaults();
    const char *names[] = {"tokensUsed", "total_tokens", "secretary", "passwordless",
                           "cookies", "keyId", "tokenizer", "summary", "authorizationsCount",
                           "apikeys", "model", "output"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        cr_expect(!dropped_by(n, names[i]), "%s", names[i]);
    ee__secret_names_free(n);
}

Test(exec_secrets, nested_objects_and_arrays_are_walked_and_a_canary_scan_is_clean)
{
    ee__secret_names *n = defaults();
    json_error_t err;
    json_t *doc = json_loads(
        "{\"summary\": \"ok\", \"password\": \"" CANARY "\","
        " \"items\": [{\"json\": {\"apiKey\": \"" CANARY "\", \"title\": \"a\"}},"
        "             [[{\"x-api-key\": \"" CANARY "\", \"n\": 1}]],"
        "             {\"headers\": {\"Authorization\": \"Bearer " CANARY "\","
        "                            \"content-type\": \"text/plain\"}}],"
        " \"usage\": {\"total_tokens\": 42, \"tokensUsed\": 42},"
        " \"deep\": {\"a\": {\"b\": {\"c\": [{\"d\": {\"refresh_token\": \"" CANARY "\"}}]}}},"
        " \"credentials\": {\"client_secret\": {\"value\": \"" CANARY "\"}}}",
        0, &err);
    cr_assert_not_null(doc, "%s", err.text);
    size_t k = ee__drop_secrets(n, doc);
    cr_expect_eq(k, 6, "six secret members, however deep");
    char *text = json_dumps(doc, JSON_SORT_KEYS);
    cr_expect_null(strstr(text, CANARY), "no canary left: %s", text);
    cr_expect_null(strstr(text, "sk-or-v1"), "no part of it either: %s", text);
    /* what is not secret stays, usage figures included */
    cr_expect_not_null(strstr(text, "\"summary\": \"ok\""), "%s", text);
    cr_expect_not_null(strstr(text, "\"title\": \"a\""), "%s", text);
    cr_expect_not_null(strstr(text, "\"total_tokens\": 42"), "%s", text);
    cr_expect_not_null(strstr(text, "\"tokensUsed\": 42"), "%s", text);
    cr_expect_not_null(strstr(text, "\"content-type\": \"text/plain\""), "%s", text);
    cr_expect_not_null(strstr(text, "\"n\": 1"), "%s", text);
    free(text);
    cr_expect_eq(ee__drop_secrets(n, doc), 0, "a second pass finds nothing");
    json_decref(doc);
    ee__secret_names_free(n);
}

Test(exec_secrets, a_key_with_an_embedded_nul_is_matched_whole)
{
    ee__secret_names *n = defaults();
    json_t *doc = json_object();
    json_object_setn_new(doc, "a\0apiKey", 8, json_string(CANARY));
    json_object_setn_new(doc, "apiKey\0x", 8, json_string("kept: apiKey ends a word"));
    json_object_set_new(doc, "a", json_string("not the same member"));
    cr_expect_eq(ee__drop_secrets(n, doc), 2);
    cr_expect_eq(json_object_size(doc), 1);
    cr_expect_str_eq(json_string_value(json_object_get(doc, "a")), "not the same member");
    json_decref(doc);
    ee__secret_names_free(n);
}

Test(exec_secrets, a_configured_list_replaces_the_default)
{
    ee__secret_names *n = NULL;
    cr_assert_eq(ee__secret_names_parse(" ssn , card_number,,_, ", &n), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect(dropped_by(n, "ssn"));
    cr_expect(dropped_by(n, "customerSSN"));
    cr_expect(dropped_by(n, "CardNumber"));
    cr_expect(!dropped_by(n, "password"), "the default list no longer applies");
    ee__secret_names_free(n);

    cr_assert_eq(ee__secret_names_parse("", &n), EE_OK);
    cr_expect(!dropped_by(n, "password"), "an empty list drops nothing");
    ee__secret_names_free(n);
}

Test(exec_secrets, the_list_is_bounded)
{
    char list[64 * 70 + 100] = "";
    for (int i = 0; i < 64; i++)
        sprintf(list + strlen(list), "%sname%d", i ? "," : "", i);
    ee__secret_names *n = NULL;
    cr_assert_eq(ee__secret_names_parse(list, &n), EE_OK, "64 names: %s", ee_error_last_message());
    cr_expect(dropped_by(n, "name63"));
    ee__secret_names_free(n);
    strcat(list, ",name64");
    n = NULL;
    cr_expect_eq(ee__secret_names_parse(list, &n), EE_EINVAL, "65 names");
    cr_expect_null(n);
    cr_expect_not_null(strstr(ee_error_last_message(), "EXEC_SECRET_FIELDS"), "%s",
                       ee_error_last_message());

    char name[80];
    memset(name, 'a', 64);
    name[64] = '\0';
    cr_assert_eq(ee__secret_names_parse(name, &n), EE_OK, "a 64-byte name");
    ee__secret_names_free(n);
    name[64] = 'a';
    name[65] = '\0';
    n = NULL;
    cr_expect_eq(ee__secret_names_parse(name, &n), EE_EINVAL, "a 65-byte name");
    cr_expect_null(n);
}

/* n levels of {"k": ...} around {"password": CANARY, "safe": 1}. */
static json_t *nested(int levels)
{
    json_t *doc = json_pack("{s:s, s:i}", "password", CANARY, "safe", 1);
    for (int i = 0; i < levels; i++)
        doc = json_pack("{s:o}", "k", doc);
    return doc;
}

Test(exec_secrets, depth_is_bounded_and_nothing_past_it_is_kept_unread)
{
    ee__secret_names *n = defaults();
    /* Within the bound: only the secret goes. */
    json_t *doc = nested(EE__SECRETS_DEPTH_MAX - 2);
    cr_expect_eq(ee__drop_secrets(n, doc), 1);
    char *text = json_dumps(doc, 0);
    cr_expect_null(strstr(text, CANARY));
    cr_expect_not_null(strstr(text, "\"safe\""), "kept within the bound");
    free(text);
    json_decref(doc);
    /* Past it: emptied, not walked and not kept. */
    doc = nested(EE__SECRETS_DEPTH_MAX + 50);
    cr_expect_gt(ee__drop_secrets(n, doc), 0);
    text = json_dumps(doc, 0);
    cr_expect_null(strstr(text, CANARY));
    free(text);
    json_decref(doc);
    ee__secret_names_free(n);
}

Test(exec_secrets, null_arguments_drop_nothing)
{
    ee__secret_names *n = defaults();
    cr_expect_eq(ee__drop_secrets(n, NULL), 0);
    json_t *doc = json_pack("{s:s}", "password", "x");
    cr_expect_eq(ee__drop_secrets(NULL, doc), 0);
    json_decref(doc);
    cr_expect_eq(ee__secret_names_parse("x", NULL), EE_EINVAL);
    ee__secret_names_free(n);
    ee__secret_names_free(NULL);
}

Test(exec_secrets, the_option_default_is_the_list_and_a_set_value_parses)
{
    ee_config *cfg = st_config(NULL, NULL);
    cr_expect_str_eq(ee__config_text(cfg, "EXEC_SECRET_FIELDS"), EE__EXEC_SECRET_FIELDS_DEFAULT);
    st_set(cfg, "EXEC_SECRET_FIELDS", "ssn,iban");
    ee__secret_names *n = NULL;
    cr_assert_eq(ee__secret_names_parse(ee__config_text(cfg, "EXEC_SECRET_FIELDS"), &n), EE_OK);
    cr_expect(dropped_by(n, "customer_iban"));
    cr_expect(!dropped_by(n, "apiKey"));
    ee__secret_names_free(n);
    ee_config_free(cfg);
}
