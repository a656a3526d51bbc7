/*
 * libFuzzer: arbitrary bytes as a workflow and a key choice given to
 * ee_cred_route(). The text up to the first NUL is the workflow, the rest
 * (if any) the choice; "KEYID" in the choice becomes the id of a real
 * customer key, "OTHERID" that of another user's key. The engine (memory)
 * has a platform pool (Serper, OpenRouter, Resend), a personal Gmail
 * credential and the two customer keys, every secret a canary.
 * Invariants: documented statuses only (never EE_ENOMEM, EE_ECORRUPT or
 * EE_EIO for bad input); the answer is JSON: "credentialMappings" and
 * "gaps" arrays, "ready" exactly when there is no gap, every mapping's
 * source platform, personal or customer, another user's key never
 * mapped; no secret in the answer or the message (unless the input itself
 * holds the canary, which a node name may echo).
 */
#include "fuzz_engine.h"

#define CANARY "Qk7Canary3Zp"
#define PLATFORM_KEY "sk-platform-" CANARY "-serper0001"
#define OPENROUTER_KEY "sk-or-v1-" CANARY "-platform0002"
#define PERSONAL_TOKEN "ya29." CANARY "-gmail0003"
#define CUSTOMER_KEY "sk-or-v1-" CANARY "-customer0004"
#define OTHER_KEY "sk-or-v1-" CANARY "-otheruser0005"

static ee_engine *engine;
static ee_principal *who;
static char key_id[32], other_id[32];

static void add_key(ee_principal *p, const char *key, char id[32])
{
    char req[256], *out = NULL;
    snprintf(req, sizeof req, "{\"keyName\": \"mine\", \"provider\": \"openrouter\", "
                              "\"apiKey\": \"%s\"}", key);
    CHECK(ee_cred_key_add(engine, p, req, &out) == EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    snprintf(id, 32, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    ee_free(out);
}

static void open_once(void)
{
    if (engine != NULL)
        return;
    ee_config *cfg = fz_config();
    CHECK(ee_config_set(cfg, "PLATFORM_SERPER_KEY", PLATFORM_KEY) == EE_OK);
    CHECK(ee_config_set(cfg, "PLATFORM_OPENROUTER_API_KEY", OPENROUTER_KEY) == EE_OK);
    CHECK(ee_config_set(cfg, "PLATFORM_RESEND_KEY", "re_" CANARY "_resend0006") == EE_OK);
    CHECK(ee_config_set(cfg, "PLATFORM_FROM_EMAIL", "noreply@example.com") == EE_OK);
    engine = fz_engine_open(cfg);
    char *out = NULL;
    CHECK(ee_cred_platform_provision(engine, &out) == EE_OK);
    ee_free(out);
    CHECK(ee_principal_new(&who, "ws-fuzz", "user-fuzz", "org-fuzz") == EE_OK);
    CHECK(ee_cred_personal_put(engine, who,
                               "{\"credentialName\": \"gmailOAuth2\", \"type\": \"oauth2\", "
                               "\"accessToken\": \"" PERSONAL_TOKEN "\"}", &out) == EE_OK);
    ee_free(out);
    add_key(who, CUSTOMER_KEY, key_id);
    ee_principal *other = NULL;
    CHECK(ee_principal_new(&other, "ws-fuzz", "user-other", "org-fuzz") == EE_OK);
    add_key(other, OTHER_KEY, other_id);
    ee_principal_free(other);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    open_once();
    char *workflow = NULL, *raw_choice = NULL;
    fz_split(data, size, &workflow, &raw_choice);
    char *choice = NULL;
    if (raw_choice != NULL) {
        char *tmp = fz_replace(raw_choice, "OTHERID", other_id);
        choice = fz_replace(tmp, "KEYID", key_id);
        free(tmp);
    }
    bool echoes = memmem(data, size, CANARY, strlen(CANARY)) != NULL;

    char *out = NULL;
    ee_status st = ee_cred_route(engine, who, workflow, choice, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
    if (!echoes) {
        CHECK(strstr(out, CANARY) == NULL);
        CHECK(strstr(ee_error_last_message(), CANARY) == NULL);
    }
    json_t *doc = fz_answer(st, out);
    if (st == EE_OK) {
        const json_t *maps = json_object_get(doc, "credentialMappings");
        const json_t *gaps = json_object_get(doc, "gaps");
        CHECK(json_is_array(maps) && json_is_array(gaps));
        CHECK(json_is_boolean(json_object_get(doc, "ready")));
        const json_t *unknown = json_object_get(doc, "unknownNodes");
        CHECK(json_is_array(unknown));
        CHECK(json_is_true(json_object_get(doc, "ready")) ==
              (json_array_size(gaps) == 0 && json_array_size(unknown) == 0));
        size_t i;
        const json_t *m;
        json_array_foreach(maps, i, m) {
            const char *src = json_string_value(json_object_get(m, "source"));
            CHECK(src != NULL);
            CHECK(strcmp(src, "platform") == 0 || strcmp(src, "personal") == 0 ||
                  strcmp(src, "customer") == 0);
            const char *id = json_string_value(json_object_get(m, "credentialId"));
            CHECK(id == NULL || strcmp(id, other_id) != 0); /* never another user's key */
        }
    }
    json_decref(doc);
    free(workflow);
    free(raw_choice);
    free(choice);
    ee_error_clear();
    return 0;
}
