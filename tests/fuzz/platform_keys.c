/*
 * libFuzzer: arbitrary bytes as a platform key list: the value of one
 * PLATFORM_*_KEY option (the first byte picks which), to which a canary
 * key is appended (",<canary key>"). A memory engine is opened with it,
 * the pool is provisioned and listed.
 * Invariants: ee_config_set() answers EE_OK, EE_EINVAL or EE_ETOOBIG;
 * an accepted list opens an engine; provisioning answers EE_OK with
 * JSON counts that match its items; provisioning again changes nothing
 * (idempotent: all "unchanged"); the list is JSON with a masked key per
 * credential; no key shows anywhere (the canary is checked, unless the
 * input itself holds it).
 */
#include "fuzz_engine.h"

#define CANARY "Pk5Canary2Xw"
#define CANARY_KEY "sk-" CANARY "-pool0001"

static const char *const vars[] = {
    "PLATFORM_OPENROUTER_API_KEY", "PLATFORM_OPENROUTER_KEY", "PLATFORM_SERPER_KEY",
    "PLATFORM_FIRECRAWL_KEY",      "PLATFORM_RESEND_KEY",     "PLATFORM_BRAVE_KEY",
    "PLATFORM_TAVILY_KEY",         "PLATFORM_YOUTUBE_KEY",
};

static void no_key(const char *text, bool echoes)
{
    if (!echoes)
        CHECK(strstr(text, CANARY) == NULL);
}

/* Provision; the answer's counts match its items. Returns the answer. */
static json_t *provision(ee_engine *e, bool echoes)
{
    char *out = NULL;
    ee_status st = ee_cred_platform_provision(e, &out);
    CHECK_STATUS(st, EE_OK);
    no_key(out, echoes);
    no_key(ee_error_last_message(), echoes);
    json_t *doc = fz_answer(st, out);
    const json_t *creds = json_object_get(doc, "credentials");
    CHECK(json_is_array(creds));
    json_int_t n[4] = {0};
    static const char *const kinds[4] = {"created", "updated", "unchanged", "removed"};
    size_t i;
    const json_t *c;
    json_array_foreach(creds, i, c) {
        const char *s = json_string_value(json_object_get(c, "status"));
        CHECK(s != NULL);
        int k = 0;
        while (k < 4 && strcmp(s, kinds[k]) != 0)
            k++;
        CHECK(k < 4);
        n[k]++;
    }
    for (int k = 0; k < 4; k++)
        CHECK(json_integer_value(json_object_get(doc, kinds[k])) == n[k]);
    return doc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *var = vars[data[0] % (sizeof vars / sizeof vars[0])];
    char *raw = fz_text(data + 1, size - 1);
    bool echoes = strstr(raw, CANARY) != NULL;
    size_t cap = strlen(raw) + sizeof CANARY_KEY + 2;
    char *value = malloc(cap);
    CHECK(value != NULL);
    snprintf(value, cap, "%s,%s", raw, CANARY_KEY);

    ee_config *cfg = fz_config();
    ee_status st = ee_config_set(cfg, var, value);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_ETOOBIG);
    no_key(ee_error_last_message(), false); /* a secret's value never shows */
    if (st != EE_OK) {
        ee_config_free(cfg);
        free(value);
        free(raw);
        return 0;
    }
    ee_engine *e = fz_engine_open(cfg);
    json_t *first = provision(e, echoes);
    CHECK(json_array_size(json_object_get(first, "credentials")) > 0); /* the canary's */
    json_decref(first);
    json_t *again = provision(e, echoes);
    CHECK(again != NULL);
    CHECK(json_integer_value(json_object_get(again, "created")) == 0);
    CHECK(json_integer_value(json_object_get(again, "updated")) == 0);
    CHECK(json_integer_value(json_object_get(again, "removed")) == 0);
    json_decref(again);

    char *out = NULL;
    st = ee_cred_platform_list(e, &out);
    CHECK_STATUS(st, EE_OK);
    no_key(out, echoes);
    json_t *list = fz_answer(st, out);
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(list, "credentials"), i, c)
        CHECK(json_is_string(json_object_get(c, "maskedKey")));
    CHECK(json_array_size(json_object_get(list, "credentials")) > 0);
    json_decref(list);
    ee_engine_close(e);
    free(value);
    free(raw);
    ee_error_clear();
    return 0;
}
