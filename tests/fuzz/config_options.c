/*
 * libFuzzer: arbitrary bytes as the value of every configuration option.
 * The first byte picks the option among those ee_config_options_json()
 * lists (bit 7 set and a URI option: the value gets a password canary in
 * front, "postgres://fz:<canary>@" + text); the rest is the value, given
 * to ee_config_set() and, as "KEY=value", to ee_config_load_envp().
 * Invariants:
 *   - the status is EE_OK, EE_EINVAL or EE_ETOOBIG (EE_ETOOBIG for a value
 *     over 4096 bytes), and ee_config_load_envp() agrees with
 *     ee_config_set() (an empty value counts as unset there);
 *   - a refused value leaves the option unset and the message names the
 *     option; a secret option's message never holds its value (a canary
 *     appended to it must not show);
 *   - an accepted value: the option reads as set, the summary is a JSON
 *     object naming it and holding neither a secret's value nor a URI's
 *     password, a secret reads back as EE_EPERM, an integer-valued option
 *     reads as an integer.
 */
#include "fuzz_engine.h"

#define CANARY "Cnry7Qx2Vb9Lm4Ws"

typedef struct {
    char name[64];
    char type[32];
    bool secret;
} option;

static option opts[64];
static size_t nopts;

static void list_once(void)
{
    if (nopts > 0)
        return;
    char *out = NULL;
    CHECK(ee_config_options_json(&out) == EE_OK);
    json_t *arr = json_loads(out, 0, NULL);
    ee_free(out);
    CHECK(json_is_array(arr) && json_array_size(arr) > 0);
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        CHECK(nopts < sizeof opts / sizeof opts[0]);
        snprintf(opts[nopts].name, sizeof opts[nopts].name, "%s",
                 json_string_value(json_object_get(o, "name")));
        snprintf(opts[nopts].type, sizeof opts[nopts].type, "%s",
                 json_string_value(json_object_get(o, "type")));
        opts[nopts].secret = json_is_true(json_object_get(o, "secret"));
        nopts++;
    }
    json_decref(arr);
}

static bool integer_valued(const option *o)
{
    return strcmp(o->type, "integer") == 0 || strcmp(o->type, "percent") == 0 ||
           strcmp(o->type, "money-usd") == 0 || strcmp(o->type, "boolean") == 0;
}

static bool uri_valued(const option *o)
{
    return strstr(o->type, "uri") != NULL;
}

static void check_accepted(ee_config *cfg, const option *o, bool uri_canary)
{
    int set = -1;
    CHECK(ee_config_is_set(cfg, o->name, &set) == EE_OK && set == 1);
    char *out = NULL;
    CHECK(ee_config_summary_json(cfg, &out) == EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    CHECK(json_is_object(doc));
    CHECK(json_object_get(doc, o->name) != NULL);
    json_decref(doc);
    if (o->secret)
        CHECK(strstr(out, CANARY) == NULL); /* the value carries the canary */
    if (uri_canary)
        CHECK(strstr(out, CANARY) == NULL); /* a URI's password is masked */
    ee_free(out);
    char *text = NULL;
    if (o->secret) {
        CHECK(ee_config_get_string(cfg, o->name, &text) == EE_EPERM);
        CHECK(text == NULL);
    } else if (integer_valued(o)) {
        int64_t v;
        CHECK(ee_config_get_int64(cfg, o->name, &v) == EE_OK);
    } else {
        CHECK(ee_config_get_string(cfg, o->name, &text) == EE_OK);
        ee_free(text);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    list_once();
    const option *o = &opts[(data[0] & 0x7f) % nopts];
    char *raw = fz_text(data + 1, size - 1);
    /* Secrets carry the canary after the fuzzer's bytes; URIs may carry it
     * as their password. */
    size_t cap = strlen(raw) + 64;
    char *value = malloc(cap);
    CHECK(value != NULL);
    if (o->secret)
        snprintf(value, cap, "%s%s", raw, CANARY);
    else if (uri_valued(o) && (data[0] & 0x80))
        snprintf(value, cap, "postgres://fz:" CANARY "@%s", raw);
    else
        snprintf(value, cap, "%s", raw);

    /* The canary as a URI's password: checked unless the fuzzer copied it
     * into the rest of the URI, which messages and summaries do show. */
    bool uri_canary = uri_valued(o) && (data[0] & 0x80) && strstr(raw, CANARY) == NULL;

    ee_config *cfg = NULL;
    CHECK(ee_config_new(&cfg) == EE_OK);
    ee_status st = ee_config_set(cfg, o->name, value);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_ETOOBIG);
    if (strlen(value) > 4096)
        CHECK(st == EE_ETOOBIG);
    if (st == EE_OK) {
        check_accepted(cfg, o, uri_canary);
    } else {
        int set = -1;
        CHECK(ee_config_is_set(cfg, o->name, &set) == EE_OK && set == 0);
        const char *msg = ee_error_last_message();
        CHECK(strstr(msg, o->name) != NULL);
        if (o->secret || uri_canary)
            CHECK(strstr(msg, CANARY) == NULL);
    }
    ee_config_free(cfg);

    /* The same value from an environment block. */
    char *entry = malloc(strlen(o->name) + strlen(value) + 2);
    CHECK(entry != NULL);
    sprintf(entry, "%s=%s", o->name, value);
    const char *envp[] = {"EE_FUZZ_UNRELATED=1", entry, NULL};
    CHECK(ee_config_new(&cfg) == EE_OK);
    ee_status est = ee_config_load_envp(cfg, envp);
    CHECK(est == (value[0] == '\0' ? EE_OK : st));
    if (est != EE_OK) {
        CHECK(strstr(ee_error_last_message(), o->name) != NULL);
        if (o->secret || uri_canary)
            CHECK(strstr(ee_error_last_message(), CANARY) == NULL);
    }
    ee_config_free(cfg);
    free(entry);
    free(value);
    free(raw);
    ee_error_clear();
    return 0;
}
