/* Key validation against a local fake of OpenRouter's GET /key
 * (tests/support/fake_openrouter.py): valid, invalid, and the unknown
 * outcomes that must never read as invalid. */
#include "cred_test.h"

#include "credentials/cred_internal.h"
#include "engine/engine.h"
#include "fake_upstream.h"

#define KEY "sk-or-v1-validate-0123456789abcdef"

static ee_fake_upstream fake;

static void fake_start(void)
{
    ee_fake_upstream_start(&fake, "fake_openrouter.py");
}

static void fake_stop(void)
{
    ee_fake_upstream_stop(&fake);
}

TestSuite(validate, .init = fake_start, .fini = fake_stop);

/* An engine whose OPENROUTER_API_URL is the fake's scenario. */
static ee_engine *engine_for(const char *scenario)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/%s", fake.port, scenario);
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_test_config_set(cfg, "OPENROUTER_API_URL", url);
    ee_test_config_set(cfg, "OPENROUTER_APP_NAME", "ee-tests");
    ee_test_config_set(cfg, "OPENROUTER_APP_URL", "https://example.com/app");
    ee_engine *e = ee_test_engine_open_config(cfg);
    ee__cred_set_validate_timeout(e, 800);
    return e;
}

/* Validate a fresh key in `scenario`; returns the answer and checks that the
 * stored record carries the same status. */
static json_t *validate(const char *scenario, const char *key, ee_status want)
{
    ee_engine *e = engine_for(scenario);
    ee_principal *p = principal("ws-v", "val");
    char id[32], *out = NULL;
    add_key(e, p, "k", key, id);
    json_t *r = answer(ee_cred_key_validate(e, p, id, &out), want, &out);
    cr_assert_not_null(r, "an answer even when the outcome is unknown");
    json_t *rec = answer(ee_cred_key_get(e, p, id, &out), EE_OK, &out);
    const json_t *last = json_object_get(rec, "lastValidation");
    cr_expect_str_eq(jstr(last, "status"), jstr(r, "status"), "the result is kept on the record");
    json_decref(rec);
    cr_expect_null(strstr(ee_error_last_message(), key));
    ee_principal_free(p);
    ee_engine_close(e);
    return r;
}

Test(validate, valid_key_reports_limit_usage_and_tier)
{
    json_t *r = validate("valid", KEY, EE_OK);
    cr_expect_str_eq(jstr(r, "status"), "valid");
    cr_expect_eq(jint(r, "httpStatus"), 200);
    cr_expect_eq(json_number_value(json_object_get(r, "limit")), 100);
    cr_expect_eq(json_number_value(json_object_get(r, "usage")), 25.5);
    cr_expect_eq(json_number_value(json_object_get(r, "limitRemaining")), 74.5);
    cr_expect(json_is_false(json_object_get(r, "isFreeTier")));
    cr_expect_str_eq(jstr(r, "limitReset"), "monthly");
    json_decref(r);

    /* What was sent: a bearer token and the app headers. */
    char url[96];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/__last", fake.port);
    ee_transport *t;
    cr_assert_eq(ee_transport_curl_new(&t, NULL), EE_OK);
    ee_http_request *req;
    cr_assert_eq(ee_http_request_new(&req, "GET", url), EE_OK);
    ee_http_response *resp;
    cr_assert_eq(ee_transport_http(t, req, &resp), EE_OK);
    const void *body;
    size_t len;
    ee_http_response_body(resp, &body, &len);
    json_t *last = json_loadb(body, len, 0, NULL);
    cr_expect(json_is_true(json_object_get(last, "bearer")));
    cr_expect_str_eq(jstr(last, "x-title"), "ee-tests");
    cr_expect_str_eq(jstr(last, "http-referer"), "https://example.com/app");
    json_decref(last);
    ee_http_response_free(resp);
    ee_http_request_free(req);
    ee_transport_free(t);
}

Test(validate, free_tier_key_without_limit)
{
    json_t *r = validate("free", KEY, EE_OK);
    cr_expect_str_eq(jstr(r, "status"), "valid");
    cr_expect(json_is_null(json_object_get(r, "limit")));
    cr_expect(json_is_null(json_object_get(r, "limitRemaining")));
    cr_expect(json_is_true(json_object_get(r, "isFreeTier")));
    json_decref(r);
}

Test(validate, rejected_keys_are_invalid)
{
    const char *scenarios[] = {"401", "403"};
    for (size_t i = 0; i < 2; i++) {
        json_t *r = validate(scenarios[i], KEY, EE_OK);
        cr_expect_str_eq(jstr(r, "status"), "invalid", "%s", scenarios[i]);
        cr_expect_eq(jint(r, "httpStatus"), atoi(scenarios[i]));
        cr_expect_null(json_object_get(r, "usage"));
        json_decref(r);
    }
    /* The valid scenario refuses a key that is not an OpenRouter key. */
    json_t *r = validate("valid", "not-an-openrouter-key-123", EE_OK);
    cr_expect_str_eq(jstr(r, "status"), "invalid");
    json_decref(r);
}

Test(validate, failures_to_check_are_unknown_never_invalid)
{
    const char *scenarios[][2] = {{"429", "rate limited"}, {"500", "5xx"},
                                  {"slow", "in time"}, {"malformed", "malformed"},
                                  {"badshape", "malformed"}};
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        json_t *r = validate(scenarios[i][0], KEY, EE_EUNKNOWN);
        cr_expect_str_eq(jstr(r, "status"), "unknown", "%s", scenarios[i][0]);
        cr_expect_not_null(strstr(jstr(r, "reason"), scenarios[i][1]), "%s: %s", scenarios[i][0],
                           jstr(r, "reason"));
        json_decref(r);
    }
}

Test(validate, unreachable_openrouter_is_unknown)
{
    fake_stop(); /* nothing listens on the port any more */
    json_t *r = validate("valid", KEY, EE_EUNKNOWN);
    cr_expect_str_eq(jstr(r, "status"), "unknown");
    cr_expect_not_null(strstr(jstr(r, "reason"), "unreachable"), "%s", jstr(r, "reason"));
    json_decref(r);
}

Test(validate, other_users_keys_are_not_found)
{
    ee_engine *e = engine_for("valid");
    ee_principal *p = principal("ws-v", "val"), *q = principal("ws-v", "other");
    char id[32], *out = NULL;
    add_key(e, p, "k", KEY, id);
    json_t *r = answer(ee_cred_key_validate(e, q, id, &out), EE_ENOTFOUND, &out);
    json_decref(r);
    ee_principal_free(p);
    ee_principal_free(q);
    ee_engine_close(e);
}

/* Whether the raw stored bytes of every key record of `ws` hold `text`. */
static bool stored_holds(ee_engine *e, const char *ws, const char *text)
{
    json_t *ids = NULL;
    cr_assert_eq(ee__cred_list_ids(e, EE__KEYS_COLL, ws, &ids), EE_OK);
    bool found = false;
    size_t i;
    const json_t *id;
    json_array_foreach(ids, i, id) {
        uint8_t *data = NULL;
        size_t len = 0;
        cr_assert_eq(ee_storage_get(ee__engine_storage(e), EE__KEYS_COLL, ws,
                                    json_string_value(id), &data, &len, NULL), EE_OK);
        found = found || memmem(data, len, text, strlen(text)) != NULL;
        ee_free(data);
    }
    json_decref(ids);
    return found;
}

/* An upstream that echoes the key in every field it returns: nothing of
 * it lands in the stored record or the answer, only typed values. */
Test(validate, echoed_key_is_never_stored_or_returned)
{
    const char *scenarios[][2] = {{"echo", "valid"}, {"echoall", "unknown"},
                                  {"echo401", "invalid"}};
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        ee_engine *e = engine_for(scenarios[i][0]);
        ee_principal *p = principal("ws-echo", "val");
        char id[32], *out = NULL;
        add_key(e, p, "k", KEY, id);
        ee_status st = ee_cred_key_validate(e, p, id, &out);
        cr_expect(st == EE_OK || st == EE_EUNKNOWN, "%s: %s", scenarios[i][0],
                  ee_status_name(st));
        cr_assert_not_null(out);
        cr_expect_null(strstr(out, KEY), "%s: the answer holds the key: %s", scenarios[i][0], out);
        /* Not even a piece of it (the label check works on 8-byte runs). */
        cr_expect_null(strstr(out, "validate-0123"), "%s: %s", scenarios[i][0], out);
        json_t *r = json_loads(out, 0, NULL);
        ee_free(out);
        cr_expect_str_eq(jstr(r, "status"), scenarios[i][1], "%s", scenarios[i][0]);
        if (strcmp(scenarios[i][0], "echo") == 0) {
            cr_expect_eq(json_number_value(json_object_get(r, "usage")), 1.5);
            cr_expect_eq(json_number_value(json_object_get(r, "limit")), 100);
            cr_expect_null(json_object_get(r, "limitReset"), "not one of the periods");
            cr_expect_str_eq(jstr(r, "label"), "sk-or-\xe2\x80\xa6" "cdef", "our masked form");
            /* Only the typed fields: nothing else upstream sent. */
            const char *allowed[] = {"status", "checkedAt", "httpStatus", "reason", "limit",
                                     "usage", "limitRemaining", "isFreeTier", "limitReset",
                                     "label"};
            const char *k;
            const json_t *v;
            json_object_foreach(r, k, v) {
                bool known = false;
                for (size_t a = 0; a < sizeof allowed / sizeof allowed[0]; a++)
                    known = known || strcmp(k, allowed[a]) == 0;
                cr_expect(known, "unexpected field %s in the answer", k);
            }
        }
        json_decref(r);
        cr_expect(!stored_holds(e, "ws-echo", KEY), "%s: the stored record holds the key",
                  scenarios[i][0]);
        cr_expect(!stored_holds(e, "ws-echo", "validate-0123"), "%s", scenarios[i][0]);
        r = answer(ee_cred_key_get(e, p, id, &out), EE_OK, &out);
        char *text = json_dumps(r, 0);
        cr_expect_null(strstr(text, KEY), "%s: %s", scenarios[i][0], text);
        free(text);
        json_decref(r);
        cr_expect_null(strstr(ee_error_last_message(), KEY));
        ee_principal_free(p);
        ee_engine_close(e);
    }
}

/* A label without the key's text is kept; one sharing a run of it is
 * replaced by our masked form; an overlong one too. */
Test(validate, label_is_bounded_and_never_the_keys_text)
{
    json_t *r = validate("labeled", KEY, EE_OK);
    cr_expect_str_eq(jstr(r, "label"), "Team key (prod)");
    json_decref(r);
    r = validate("longlabel", KEY, EE_OK);
    cr_expect_str_eq(jstr(r, "label"), "sk-or-\xe2\x80\xa6" "cdef");
    json_decref(r);
    /* The fake's usual label "sk-or-v1-au7...890" shares "sk-or-v1" with
     * every OpenRouter key. */
    r = validate("valid", KEY, EE_OK);
    cr_expect_str_eq(jstr(r, "label"), "sk-or-\xe2\x80\xa6" "cdef");
    json_decref(r);
}
