/*
 * libFuzzer: arbitrary bytes as OpenRouter's answer to a key validation
 * (ee_cred_key_validate). The engine's HTTP transport is a custom one:
 * the link wraps ee_transport_curl_new() (tests/fuzz/CMakeLists.txt,
 * EE_FUZZ_WRAPS_key_validation), and every request gets the status the
 * first byte picks (or a timeout / network failure) with the rest of the
 * input as its body.
 * Invariants: the status is EE_OK or EE_EUNKNOWN (never EE_ENOMEM,
 * EE_ECORRUPT, EE_EIO for any answer); *out is always the answer, a JSON
 * object whose "status" is valid, invalid or unknown: invalid exactly for
 * 401/403, never for EE_EUNKNOWN, valid only for a 200 with a numeric
 * "usage"; the record keeps the same lastValidation status; one attempt
 * only; the key (a canary) shows nowhere, unless the input holds it.
 */
#include "fuzz_engine.h"

#define CANARY "Vk3Canary8Yh"
#define KEY "sk-or-v1-" CANARY "-customer0001"

static fz_upstream upstream;
static ee_engine *engine;
static ee_principal *who;
static char key_id[32];

ee_status __wrap_ee_transport_curl_new(ee_transport **out, const ee_transport_options *opts);
ee_status __wrap_ee_transport_curl_new(ee_transport **out, const ee_transport_options *opts)
{
    (void)opts;
    *out = fz_transport_new(&upstream);
    return EE_OK;
}

static void open_once(void)
{
    if (engine != NULL)
        return;
    ee_config *cfg = fz_config();
    CHECK(ee_config_set(cfg, "OPENROUTER_API_URL", "https://openrouter.example/api/v1") == EE_OK);
    engine = fz_engine_open(cfg);
    CHECK(ee_principal_new(&who, "ws-fuzz", "user-fuzz", "org-fuzz") == EE_OK);
    char *out = NULL;
    CHECK(ee_cred_key_add(engine, who,
                          "{\"keyName\": \"mine\", \"provider\": \"openrouter\", \"apiKey\": \"" KEY
                          "\"}", &out) == EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    snprintf(key_id, sizeof key_id, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    ee_free(out);
}

static const int statuses[] = {200, 401, 403, 429, 500, 503, 404, 302, 200, 204, 400, 599};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    open_once();
    size_t pick = data[0] % (sizeof statuses / sizeof statuses[0] + 2);
    upstream.fail = pick == sizeof statuses / sizeof statuses[0] ? EE_ETIMEOUT
                    : pick == sizeof statuses / sizeof statuses[0] + 1 ? EE_ENETWORK : EE_OK;
    upstream.status = upstream.fail == EE_OK ? statuses[pick] : 0;
    upstream.body = data + 1;
    upstream.len = size - 1;
    upstream.calls = 0;
    bool echoes = memmem(data, size, CANARY, strlen(CANARY)) != NULL;

    char *out = NULL;
    ee_status st = ee_cred_key_validate(engine, who, key_id, &out);
    CHECK_STATUS(st, EE_OK, EE_EUNKNOWN);
    CHECK(upstream.calls == 1);
    CHECK(out != NULL);
    if (getenv("FZ_PRINT") != NULL)
        fprintf(stderr, "%s: %s\n", ee_status_name(st), out);
    if (!echoes) {
        CHECK(strstr(out, CANARY) == NULL);
        CHECK(strstr(ee_error_last_message(), CANARY) == NULL);
    }
    json_t *answer = json_loads(out, 0, NULL);
    ee_free(out);
    CHECK(json_is_object(answer));
    const char *verdict = json_string_value(json_object_get(answer, "status"));
    CHECK(verdict != NULL);
    bool refused = upstream.fail == EE_OK && (upstream.status == 401 || upstream.status == 403);
    if (strcmp(verdict, "invalid") == 0) {
        CHECK(refused && st == EE_OK);
    } else if (strcmp(verdict, "valid") == 0) {
        CHECK(st == EE_OK && upstream.fail == EE_OK && upstream.status == 200);
        CHECK(json_is_number(json_object_get(answer, "usage")));
    } else {
        CHECK(strcmp(verdict, "unknown") == 0);
        CHECK(st == EE_EUNKNOWN && !refused);
        CHECK(json_is_string(json_object_get(answer, "reason")));
    }
    /* The record keeps the verdict. */
    out = NULL;
    CHECK(ee_cred_key_get(engine, who, key_id, &out) == EE_OK);
    if (!echoes)
        CHECK(strstr(out, CANARY) == NULL);
    json_t *rec = fz_answer(EE_OK, out);
    const char *kept =
        json_string_value(json_object_get(json_object_get(rec, "lastValidation"), "status"));
    CHECK(kept != NULL && strcmp(kept, verdict) == 0);
    json_decref(rec);
    json_decref(answer);
    ee_error_clear();
    return 0;
}
