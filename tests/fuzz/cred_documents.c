/*
 * libFuzzer: arbitrary bytes as the documents and ids a workspace hands
 * the credentials door (memory engine). The first byte picks the call;
 * the rest is its text:
 *   0  ee_cred_key_add() request. Accepted: the key reads back (get, list),
 *      another user of the workspace gets EE_ENOTFOUND, it updates, resets
 *      and is deleted (then EE_ENOTFOUND).
 *   1  ee_cred_key_update() patch of the user's standing key.
 *   2  a key id: ee_cred_key_get, _reset_usage (the user), _update with a
 *      fixed patch and _delete (another user of the workspace); "KEYID"
 *      stands for the standing key.
 *   3  ee_cred_personal_put() request; "CREDID" stands for the id of the
 *      workspace's standing credential. One it created reads back and is
 *      deleted.
 *   4  a personal credential id: ee_cred_personal_get (the workspace),
 *      _delete (another workspace); "CREDID" as in 3.
 * Invariants: documented statuses only (never EE_ENOMEM, EE_ECORRUPT or
 * EE_EIO for outside input); answers are JSON, a failure's the error
 * document of its status; no answer or message shows a secret the
 * request held ("apiKey", "key", "accessToken", "refreshToken" values of
 * 12 bytes or more that the request holds nowhere else), nor the standing
 * secrets (canaries); a masked key shows at most its last four characters.
 * What accepted inputs add is deleted, so the store stays small; what an
 * input changes in the standing key or credential (their names, say - a
 * later answer would show them) is put back after it, and the answers of
 * putting it back show no standing secret.
 */
#include "fuzz_engine.h"

#define CANARY "Vb5Canary8Hx"
#define STANDING_KEY "sk-or-v1-" CANARY "-standing0001"
#define STANDING_TOKEN "ya29." CANARY "-personal0002"

static ee_engine *engine;
static ee_principal *user, *other_user, *other_ws;
static char key_id[32], cred_id[32];

static const char *id_of(const char *out, char id[32])
{
    json_t *doc = json_loads(out, 0, NULL);
    snprintf(id, 32, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    return id;
}

static void open_once(void)
{
    if (engine != NULL)
        return;
    engine = fz_engine_open(fz_config());
    CHECK(ee_principal_new(&user, "ws-fz", "u-fz", "org-fz") == EE_OK);
    CHECK(ee_principal_new(&other_user, "ws-fz", "u-other", "org-fz") == EE_OK);
    CHECK(ee_principal_new(&other_ws, "ws-other", "u-fz", "org-fz") == EE_OK);
    char *out = NULL;
    CHECK(ee_cred_key_add(engine, user, "{\"keyName\": \"standing\", \"provider\": "
                                        "\"openrouter\", \"apiKey\": \"" STANDING_KEY "\"}",
                          &out) == EE_OK);
    id_of(out, key_id);
    ee_free(out);
    CHECK(ee_cred_personal_put(engine, user, "{\"credentialName\": \"gmailOAuth2\", \"type\": "
                                             "\"oauth2\", \"accessToken\": \"" STANDING_TOKEN
                                             "\"}", &out) == EE_OK);
    id_of(out, cred_id);
    ee_free(out);
}

/* ---- secrets ------------------------------------------------------------------ */

typedef struct {
    const char *v[16];
    size_t n;
} secrets;

static bool secret_name(const char *k)
{
    return strcmp(k, "apiKey") == 0 || strcmp(k, "key") == 0 || strcmp(k, "accessToken") == 0 ||
           strcmp(k, "refreshToken") == 0;
}

/* How often `s` occurs in the names and string values of `v`. */
static size_t occurrences(const json_t *v, const char *s)
{
    size_t n = 0;
    if (json_is_string(v))
        return strstr(json_string_value(v), s) != NULL;
    const char *k;
    json_t *e;
    size_t i;
    if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, e)
            n += (strstr(k, s) != NULL) + occurrences(e, s);
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, e)
            n += occurrences(e, s);
    }
    return n;
}

/* The request's secrets that it holds nowhere else (its top level: where
 * the door reads them). */
static void collect(const json_t *req, secrets *s)
{
    s->n = 0;
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)req, k, e) {
        if (s->n < 16 && secret_name(k) && json_is_string(e) && json_string_length(e) >= 12 &&
            strlen(json_string_value(e)) == json_string_length(e) &&
            occurrences(req, json_string_value(e)) == 1)
            s->v[s->n++] = json_string_value(e);
    }
}

static void no_secret(const char *text, const secrets *s, const char *input)
{
    for (size_t i = 0; i < s->n; i++)
        CHECK(strstr(text, s->v[i]) == NULL);
    static const char *const standing[] = {STANDING_KEY, STANDING_TOKEN, CANARY};
    for (size_t i = 0; i < 3; i++)
        CHECK(strstr(input, standing[i]) != NULL || strstr(text, standing[i]) == NULL);
}

/* The answer of a `char **out` call: checked (secrets, JSON) and freed;
 * the parsed answer (json_decref()). */
static json_t *answered(ee_status st, char *out, const secrets *s, const char *input)
{
    CHECK(out != NULL);
    no_secret(out, s, input);
    no_secret(ee_error_last_message(), s, input);
    json_t *doc = fz_answer(st, out);
    const char *masked = json_string_value(json_object_get(doc, "maskedKey"));
    if (masked != NULL && strncmp(masked, "sk-or-", 6) == 0)
        masked += 6; /* OpenRouter's prefix, shown as such */
    for (size_t i = 0; masked != NULL && i < s->n; i++) {
        /* at most the last four characters of the key */
        size_t n = strlen(s->v[i]);
        CHECK(strstr(masked, s->v[i] + n - 5) == NULL);
    }
    return doc;
}

static const secrets none = {{NULL}, 0};

/* ---- the calls ------------------------------------------------------------------ */

static void key_add(const char *text)
{
    json_t *req = json_loads(text, 0, NULL);
    secrets s;
    collect(req, &s);
    char *out = NULL;
    ee_status st = ee_cred_key_add(engine, user, text, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
    json_t *doc = answered(st, out, &s, text);
    if (st == EE_OK) {
        char id[32];
        snprintf(id, sizeof id, "%s", json_string_value(json_object_get(doc, "id")));
        CHECK(id[0] != '\0');
        CHECK(json_is_string(json_object_get(doc, "maskedKey")));
        json_decref(answered(ee_cred_key_get(engine, user, id, &out), out, &s, text));
        CHECK(ee_cred_key_get(engine, other_user, id, &out) == EE_ENOTFOUND);
        ee_free(out);
        st = ee_cred_key_list(engine, user, &out);
        CHECK(st == EE_OK);
        json_decref(answered(st, out, &s, text));
        st = ee_cred_key_update(engine, user, id, "{\"isActive\": false, \"keyName\": \"x\"}",
                                &out);
        CHECK(st == EE_OK);
        json_decref(answered(st, out, &s, text));
        st = ee_cred_key_reset_usage(engine, user, id, &out);
        CHECK(st == EE_OK);
        json_decref(answered(st, out, &s, text));
        CHECK(ee_cred_key_delete(engine, user, id) == EE_OK);
        CHECK(ee_cred_key_get(engine, user, id, &out) == EE_ENOTFOUND);
        ee_free(out);
    }
    json_decref(doc);
    json_decref(req);
}

static bool key_update(const char *text)
{
    json_t *req = json_loads(text, 0, NULL);
    secrets s;
    collect(req, &s);
    char *out = NULL;
    ee_status st = ee_cred_key_update(engine, user, key_id, text, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
    json_t *doc = answered(st, out, &s, text);
    if (st == EE_OK)
        CHECK(strcmp(json_string_value(json_object_get(doc, "id")), key_id) == 0);
    json_decref(doc);
    json_decref(req);
    return st == EE_OK;
}

static void key_id_calls(const char *text)
{
    char *id = fz_text((const uint8_t *)text, strlen(text));
    char *hit = strstr(id, "KEYID");
    if (hit != NULL && strlen(id) == 5) {
        free(id);
        id = strdup(key_id);
    }
    char *out = NULL;
    ee_status st = ee_cred_key_get(engine, user, id, &out);
    CHECK_STATUS(st, EE_OK, EE_ENOTFOUND, EE_EINVAL);
    json_decref(answered(st, out, &none, text));
    st = ee_cred_key_reset_usage(engine, user, id, &out);
    CHECK_STATUS(st, EE_OK, EE_ENOTFOUND, EE_EINVAL);
    json_decref(answered(st, out, &none, text));
    st = ee_cred_key_update(engine, other_user, id, "{\"isActive\": false}", &out);
    CHECK_STATUS(st, EE_ENOTFOUND, EE_EINVAL);
    json_decref(answered(st, out, &none, text));
    st = ee_cred_key_delete(engine, other_user, id);
    CHECK_STATUS(st, EE_ENOTFOUND, EE_EINVAL);
    free(id);
}

static bool personal_put(const char *raw)
{
    char *text = fz_replace(raw, "CREDID", cred_id);
    json_t *req = json_loads(text, 0, NULL);
    secrets s;
    collect(req, &s);
    char *out = NULL;
    ee_status st = ee_cred_personal_put(engine, user, text, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_ENOTFOUND);
    json_t *doc = answered(st, out, &s, raw);
    bool standing = false;
    if (st == EE_OK) {
        const char *id = json_string_value(json_object_get(doc, "id"));
        CHECK(id != NULL);
        standing = strcmp(id, cred_id) == 0;
        st = ee_cred_personal_get(engine, user, id, &out);
        CHECK(st == EE_OK);
        json_decref(answered(st, out, &s, raw));
        CHECK(ee_cred_personal_get(engine, other_ws, id, &out) == EE_ENOTFOUND);
        ee_free(out);
        st = ee_cred_personal_list(engine, user, &out);
        CHECK(st == EE_OK);
        json_decref(answered(st, out, &s, raw));
        if (!standing)
            CHECK(ee_cred_personal_delete(engine, user, id) == EE_OK);
    }
    json_decref(doc);
    json_decref(req);
    free(text);
    return standing;
}

static void personal_id_calls(const char *text)
{
    const char *id = strcmp(text, "CREDID") == 0 ? cred_id : text;
    char *out = NULL;
    ee_status st = ee_cred_personal_get(engine, user, id, &out);
    CHECK_STATUS(st, EE_OK, EE_ENOTFOUND, EE_EINVAL);
    json_decref(answered(st, out, &none, text));
    st = ee_cred_personal_delete(engine, other_ws, id);
    CHECK_STATUS(st, EE_ENOTFOUND, EE_EINVAL);
}

/* Put the standing key and credential back as open_once() made them: an
 * input may have renamed them (the fuzzer learns the canary from the
 * comparisons above, and a name holding it would show in every later
 * answer) or replaced their secrets. */
static void restore_standing(void)
{
    ee_error_clear(); /* the input's own message may hold the canary */
    char *out = NULL;
    ee_status st = ee_cred_key_update(engine, user, key_id,
                                      "{\"keyName\": \"standing\", \"isActive\": true, "
                                      "\"apiKey\": \"" STANDING_KEY "\"}",
                                      &out);
    CHECK(st == EE_OK);
    json_decref(answered(st, out, &none, ""));
    char req[256];
    snprintf(req, sizeof req,
             "{\"id\": \"%s\", \"credentialName\": \"gmailOAuth2\", \"type\": "
             "\"oauth2\", \"accessToken\": \"" STANDING_TOKEN "\"}",
             cred_id);
    st = ee_cred_personal_put(engine, user, req, &out);
    CHECK(st == EE_OK);
    json_decref(answered(st, out, &none, ""));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    open_once();
    char *text = fz_text(data + 1, size - 1);
    switch (data[0] % 5) {
    case 0: key_add(text); break;
    case 1:
        if (key_update(text))
            restore_standing();
        break;
    case 2: key_id_calls(text); break;
    case 3:
        if (personal_put(text))
            restore_standing();
        break;
    default: personal_id_calls(text); break;
    }
    free(text);
    ee_error_clear();
    return 0;
}
