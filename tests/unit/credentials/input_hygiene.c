/* What the credentials module's doors take: the bytes of a key, the
 * characters of a name, one spelling per member, and the types of a run
 * choice. Every refusal is EE_EINVAL naming the member, never quoting a
 * secret, and stores nothing. */
#include "cred_test.h"

static int64_t now_ms = 1767225600000; /* 2026-01-01 */
static int64_t clock_fn(void *p) { return *(int64_t *)p; }

static ee_engine *open_engine(void)
{
    return ee_test_engine_open_config(ee_test_config_new("memory:", clock_fn, &now_ms));
}

#define KEY_A "sk-or-v1-aaaaaaaaaaaaaaaaaaaaaaaaaaaa1111"

/* The call failed with EE_EINVAL, its error document and message name
 * `member`, and neither holds `secret` (NULL: nothing to look for). */
static void expect_refused(ee_status st, char **out, const char *member, const char *secret,
                           const char *what)
{
    const char *msg = ee_error_last_message();
    cr_expect_eq(st, EE_EINVAL, "%s: got %s", what, ee_status_name(st));
    cr_expect_not_null(strstr(msg, member), "%s: the message does not name %s: %s", what, member,
                       msg);
    if (secret != NULL) {
        cr_expect_null(strstr(msg, secret), "%s: the message quotes the key: %s", what, msg);
        cr_expect(*out == NULL || strstr(*out, secret) == NULL,
                  "%s: the answer quotes the key: %s", what, *out);
    }
    ee_free(*out);
    *out = NULL;
}

static size_t count_keys(ee_engine *e, const ee_principal *p)
{
    char *out = NULL;
    json_t *r = answer(ee_cred_key_list(e, p, &out), EE_OK, &out);
    size_t n = json_array_size(json_object_get(r, "keys"));
    json_decref(r);
    return n;
}

/* ---- 1. a key is printable ASCII without spaces ---------------------------------- */

/* Keys that reach an HTTP header as they are. The distinct middle part
 * ("CANARY...") is what a message must never show. */
static const char *const bad_keys[] = {
    "sk-or-CANARY\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", /* sk-or-éééé: the audit's example */
    "sk-or-CANARY-nbsp\xc2\xa0tail",               /* U+00A0 */
    "sk-or-CANARY-c1\xc2\x85tail",                 /* U+0085, a C1 control */
    "sk-or-CANARY-\xe2\x80\x8b-zwsp",              /* U+200B */
    "sk-or-CANARY inner space",
    "sk-or-CANARY\\ttab",                          /* a JSON escape: a tab */
    "sk-or-CANARY\\u007fdel",
};

Test(keys, an_api_key_is_printable_ascii_without_spaces)
{
    ee_engine *e = open_engine();
    ee_principal *p = principal("ws-a", "alice");
    char *out = NULL, req[512];
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        static const char *const members[] = {"apiKey", "key"};
        for (size_t m = 0; m < 2; m++) {
            snprintf(req, sizeof req,
                     "{\"keyName\": \"k\", \"provider\": \"openrouter\", \"%s\": \"%s\"}",
                     members[m], bad_keys[i]);
            expect_refused(ee_cred_key_add(e, p, req, &out), &out, members[m], "CANARY", req);
        }
    }
    cr_expect_eq(count_keys(e, p), 0, "a refused key was stored");

    /* the same rule for a new key given to an existing record */
    char id[32];
    add_key(e, p, "k", KEY_A, id);
    json_t *before = answer(ee_cred_key_get(e, p, id, &out), EE_OK, &out);
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        snprintf(req, sizeof req, "{\"apiKey\": \"%s\"}", bad_keys[i]);
        expect_refused(ee_cred_key_update(e, p, id, req, &out), &out, "apiKey", "CANARY", req);
        snprintf(req, sizeof req, "{\"key\": \"%s\"}", bad_keys[i]);
        expect_refused(ee_cred_key_update(e, p, id, req, &out), &out, "key", "CANARY", req);
    }
    json_t *after = answer(ee_cred_key_get(e, p, id, &out), EE_OK, &out);
    cr_expect(json_equal(before, after), "a refused update changed the record");
    json_decref(before);
    json_decref(after);

    /* every printable ASCII byte but the space is taken */
    json_t *r = answer(ee_cred_key_add(e, p,
                                       "{\"keyName\": \"k2\", \"provider\": \"openrouter\", "
                                       "\"apiKey\": \"!\\\"#$%&'()*+,-./09:;<=>?@AZ[\\\\]^_`az{|}~\"}",
                                       &out),
                       EE_OK, &out);
    json_decref(r);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* A personal credential's API key and OAuth2 access token go into
 * headers too (n8n sends them as they are). */
Test(personal, a_header_secret_is_printable_ascii_without_spaces)
{
    ee_engine *e = open_engine();
    ee_principal *p = principal("ws-a", "alice");
    char *out = NULL, req[512];
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        snprintf(req, sizeof req,
                 "{\"credentialName\": \"notionApi\", \"type\": \"apiKey\", \"apiKey\": \"%s\"}",
                 bad_keys[i]);
        expect_refused(ee_cred_personal_put(e, p, req, &out), &out, "apiKey", "CANARY", req);
        snprintf(req, sizeof req,
                 "{\"credentialName\": \"gmailOAuth2\", \"type\": \"oauth2\", "
                 "\"accessToken\": \"%s\"}",
                 bad_keys[i]);
        expect_refused(ee_cred_personal_put(e, p, req, &out), &out, "accessToken", "CANARY",
                       req);
    }
    json_t *r = answer(ee_cred_personal_list(e, p, &out), EE_OK, &out);
    cr_expect_eq(json_array_size(json_object_get(r, "credentials")), 0, "a refused one was stored");
    json_decref(r);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* ---- 2. names hold no control characters ------------------------------------------ */

/* JSON text of names holding a control character (a NUL is refused by the
 * parse already: EE_EPARSE). */
static const char *const bad_names[] = {
    "line\\nbreak", "bell\\u0007", "tab\\there", "del\\u007f", "esc\\u001b[31m",
    "c1\\u0085nel", "c1\\u009fapc",
};

Test(keys, a_key_name_holds_no_control_characters)
{
    ee_engine *e = open_engine();
    ee_principal *p = principal("ws-a", "alice");
    char *out = NULL, req[512];
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        static const char *const members[] = {"keyName", "name"};
        for (size_t m = 0; m < 2; m++) {
            snprintf(req, sizeof req,
                     "{\"%s\": \"%s\", \"provider\": \"openrouter\", \"apiKey\": \"" KEY_A "\"}",
                     members[m], bad_names[i]);
            expect_refused(ee_cred_key_add(e, p, req, &out), &out, members[m], NULL, req);
        }
    }
    cr_expect_eq(count_keys(e, p), 0, "a key with a refused name was stored");

    char id[32];
    add_key(e, p, "Plain name, \xc3\xa9t\xc3\xa9 \xe2\x82\xac", KEY_A, id); /* text is fine */
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        snprintf(req, sizeof req, "{\"keyName\": \"%s\"}", bad_names[i]);
        expect_refused(ee_cred_key_update(e, p, id, req, &out), &out, "keyName", NULL, req);
        snprintf(req, sizeof req, "{\"name\": \"%s\"}", bad_names[i]);
        expect_refused(ee_cred_key_update(e, p, id, req, &out), &out, "name", NULL, req);
    }
    json_t *r = answer(ee_cred_key_get(e, p, id, &out), EE_OK, &out);
    cr_expect_str_eq(jstr(r, "keyName"), "Plain name, \xc3\xa9t\xc3\xa9 \xe2\x82\xac");
    json_decref(r);
    ee_principal_free(p);
    ee_engine_close(e);
}

Test(personal, names_hold_no_control_characters)
{
    ee_engine *e = open_engine();
    ee_principal *p = principal("ws-a", "alice");
    char *out = NULL, req[512];
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        snprintf(req, sizeof req,
                 "{\"credentialName\": \"notionApi%s\", \"type\": \"apiKey\", "
                 "\"apiKey\": \"secret_notion_0123456789\"}",
                 bad_names[i]);
        expect_refused(ee_cred_personal_put(e, p, req, &out), &out, "credentialName", NULL, req);
        snprintf(req, sizeof req,
                 "{\"credentialName\": \"notionApi\", \"name\": \"%s\", \"type\": \"apiKey\", "
                 "\"apiKey\": \"secret_notion_0123456789\"}",
                 bad_names[i]);
        expect_refused(ee_cred_personal_put(e, p, req, &out), &out, "name", NULL, req);
    }
    json_t *r = answer(ee_cred_personal_list(e, p, &out), EE_OK, &out);
    cr_expect_eq(json_array_size(json_object_get(r, "credentials")), 0, "a refused one was stored");
    json_decref(r);
    r = answer(ee_cred_personal_put(e, p,
                                    "{\"credentialName\": \"notionApi\", \"name\": \"Caf\xc3\xa9 "
                                    "notes\", \"type\": \"apiKey\", \"apiKey\": "
                                    "\"secret_notion_0123456789\"}",
                                    &out),
               EE_OK, &out);
    cr_expect_str_eq(jstr(r, "name"), "Caf\xc3\xa9 notes");
    json_decref(r);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* ---- 3. one spelling per member ------------------------------------------------------ */

/* keyName/name and apiKey/key are one member each: given both, one was
 * dropped without a word. */
Test(keys, both_spellings_of_one_member_are_refused)
{
    ee_engine *e = open_engine();
    ee_principal *p = principal("ws-a", "alice");
    char *out = NULL;
    static const char *const both[][3] = {
        {"{\"keyName\": \"shown\", \"name\": \"dropped\", \"provider\": \"openrouter\", "
         "\"apiKey\": \"" KEY_A "\"}", "keyName", "name"},
        {"{\"keyName\": \"k\", \"provider\": \"openrouter\", \"apiKey\": \"" KEY_A "\", "
         "\"key\": \"sk-or-v1-CANARY-the-other-key-0000\"}", "apiKey", "key"},
        /* the same value twice is still two spellings */
        {"{\"keyName\": \"k\", \"name\": \"k\", \"provider\": \"openrouter\", "
         "\"apiKey\": \"" KEY_A "\"}", "keyName", "name"},
    };
    for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
        ee_status st = ee_cred_key_add(e, p, both[i][0], &out);
        cr_expect_not_null(strstr(ee_error_last_message(), both[i][2]), "%s: %s", both[i][0],
                           ee_error_last_message());
        expect_refused(st, &out, both[i][1], "CANARY", both[i][0]);
    }
    cr_expect_eq(count_keys(e, p), 0, "a request with both spellings was stored");

    /* either alone, as before */
    char id[32];
    json_t *r = answer(ee_cred_key_add(e, p, "{\"name\": \"alone\", \"provider\": \"openrouter\", "
                                             "\"key\": \"" KEY_A "\"}", &out), EE_OK, &out);
    cr_expect_str_eq(jstr(r, "keyName"), "alone");
    snprintf(id, sizeof id, "%s", jstr(r, "id"));
    json_decref(r);

    json_t *before = answer(ee_cred_key_get(e, p, id, &out), EE_OK, &out);
    static const char *const patches[][3] = {
        {"{\"keyName\": \"a\", \"name\": \"b\"}", "keyName", "name"},
        {"{\"apiKey\": \"sk-or-v1-CANARY-patch-one-0000\", "
         "\"key\": \"sk-or-v1-CANARY-patch-two-0000\"}", "apiKey", "key"},
    };
    for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++) {
        ee_status st = ee_cred_key_update(e, p, id, patches[i][0], &out);
        cr_expect_not_null(strstr(ee_error_last_message(), patches[i][2]), "%s: %s",
                           patches[i][0], ee_error_last_message());
        expect_refused(st, &out, patches[i][1], "CANARY", patches[i][0]);
    }
    json_t *after = answer(ee_cred_key_get(e, p, id, &out), EE_OK, &out);
    cr_expect(json_equal(before, after), "a refused patch changed the record");
    json_decref(before);
    json_decref(after);
    r = answer(ee_cred_key_update(e, p, id, "{\"name\": \"renamed\"}", &out), EE_OK, &out);
    cr_expect_str_eq(jstr(r, "keyName"), "renamed");
    json_decref(r);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* ---- 4. a run choice's members are of their type ------------------------------------ */

/* An apiKeyId of another type was read as absent: without
 * "useCustomApiKey": true it was ignored and the route answered EE_OK. */
Test(routing, a_choice_member_of_the_wrong_type_is_refused)
{
    ee_engine *e = open_engine();
    ee_principal *p = principal("ws-a", "alice");
    const char *wf = "{\"nodeNames\": [\"serper\", \"openAi\"]}";
    char *out = NULL, choice[160];
    static const char *const wrong[] = {"42", "true", "null", "{}", "[\"k\"]", "1.5"};
    static const char *const use[] = {"", "\"useCustomApiKey\": false, ",
                                      "\"useCustomApiKey\": true, "};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++)
        for (size_t u = 0; u < sizeof use / sizeof use[0]; u++) {
            snprintf(choice, sizeof choice, "{%s\"apiKeyId\": %s}", use[u], wrong[i]);
            ee_status st = ee_cred_route(e, p, wf, choice, &out);
            cr_expect_not_null(strstr(ee_error_last_message(), "apiKeyId must be a string"),
                               "%s: %s", choice, ee_error_last_message());
            expect_refused(st, &out, "apiKeyId", NULL, choice);
        }
    /* and useCustomApiKey is a boolean, whatever apiKeyId says */
    static const char *const not_bool[] = {"1", "\"true\"", "null", "{}"};
    static const char *const ids[] = {"", ", \"apiKeyId\": \"k\"", ", \"apiKeyId\": 7"};
    for (size_t i = 0; i < sizeof not_bool / sizeof not_bool[0]; i++)
        for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
            snprintf(choice, sizeof choice, "{\"useCustomApiKey\": %s%s}", not_bool[i], ids[k]);
            expect_refused(ee_cred_route(e, p, wf, choice, &out), &out, "useCustomApiKey", NULL,
                           choice);
        }
    /* what was taken still is */
    static const char *const fine[] = {"{}", "{\"useCustomApiKey\": false}",
                                       "{\"apiKeyId\": \"k\"}"};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++)
        json_decref(route(e, p, wf, fine[i]));
    json_decref(route(e, p, wf, NULL));
    ee_principal_free(p);
    ee_engine_close(e);
}
