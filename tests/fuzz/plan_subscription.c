/*
 * libFuzzer: arbitrary bytes as a plan (first byte even) or a subscription
 * (odd) stored with ee_quota_plan_put() / ee_quota_subscription_put() on a
 * memory engine (data/plans.json's plans loaded).
 * Invariants: documented statuses only (never EE_ENOMEM, EE_ECORRUPT or
 * EE_EIO for bad input); answers are JSON, a failure's the error document
 * of its status. A stored plan reads back by its name, appears in the list
 * and is usable: a subscription to it is accepted and the organisation's
 * usage, check and admission work (no EE_ECORRUPT from what was stored).
 * A stored subscription likewise: its organisation's usage, check and
 * admission work. Stored plans are deleted afterwards.
 */
#include "fuzz_engine.h"

static ee_engine *engine;
static int64_t now_ms = 1760000000000;

static int64_t moving_clock(void *payload)
{
    (void)payload;
    return now_ms;
}

static void open_once(void)
{
    if (engine != NULL)
        return;
    ee_config *cfg = fz_config();
    CHECK(ee_config_set_clock(cfg, moving_clock, NULL) == EE_OK);
    engine = fz_engine_open(cfg);
}

/* The organisation's quotas answer, and one admission is decided. */
static void use_org(const char *org)
{
    ee_principal *p = NULL;
    if (ee_principal_new(&p, "ws-fuzz", "user-fuzz", org) != EE_OK)
        return; /* not an id a principal takes */
    char *out = NULL;
    ee_status st = ee_quota_usage(engine, p, &out);
    CHECK_STATUS(st, EE_OK);
    json_decref(fz_answer(st, out));
    out = NULL;
    st = ee_quota_check(engine, p, &out);
    CHECK_STATUS(st, EE_OK);
    json_decref(fz_answer(st, out));
    out = NULL;
    st = ee_quota_admit(engine, p, NULL, &out);
    CHECK_STATUS(st, EE_OK, EE_EQUOTA, EE_ESPEND, EE_ERATELIMIT, EE_ECONCURRENCY);
    json_t *doc = fz_answer(st, out);
    if (st == EE_OK) {
        char *ticket = json_dumps(json_object_get(doc, "ticket"), 0);
        CHECK(ee_quota_finish_json(engine, ticket, 0, 0) == EE_OK);
        free(ticket);
    }
    json_decref(doc);
    ee_principal_free(p);
}

static void plan(const char *text)
{
    char *out = NULL;
    ee_status st = ee_quota_plan_put(engine, text, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
    json_t *doc = fz_answer(st, out);
    if (st == EE_OK) {
        const char *name = json_string_value(json_object_get(doc, "name"));
        CHECK(name != NULL);
        out = NULL;
        CHECK(ee_quota_plan_get(engine, name, &out) == EE_OK);
        json_t *got = fz_answer(EE_OK, out);
        CHECK(strcmp(json_string_value(json_object_get(got, "name")), name) == 0);
        json_decref(got);
        out = NULL;
        CHECK(ee_quota_plan_list(engine, &out) == EE_OK);
        json_decref(fz_answer(EE_OK, out));
        /* Usable: an organisation on it. */
        json_t *sub = json_pack("{s:s, s:s}", "orgId", "org-plan", "plan", name);
        char *sub_text = json_dumps(sub, 0);
        json_decref(sub);
        out = NULL;
        st = ee_quota_subscription_put(engine, sub_text, &out);
        CHECK_STATUS(st, EE_OK);
        json_decref(fz_answer(st, out));
        free(sub_text);
        use_org("org-plan");
        CHECK(ee_quota_plan_delete(engine, name) == EE_OK);
    }
    json_decref(doc);
}

static void subscription(const char *text)
{
    char *out = NULL;
    ee_status st = ee_quota_subscription_put(engine, text, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG, EE_ENOTFOUND);
    json_t *doc = fz_answer(st, out);
    if (st == EE_OK) {
        const char *org = json_string_value(json_object_get(doc, "orgId"));
        CHECK(org != NULL);
        out = NULL;
        CHECK(ee_quota_subscription_get(engine, org, &out) == EE_OK);
        json_decref(fz_answer(EE_OK, out));
        use_org(org);
    }
    json_decref(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    open_once();
    now_ms += 3600 * 1000;
    char *text = fz_text(data + 1, size - 1);
    if (data[0] & 1)
        subscription(text);
    else
        plan(text);
    free(text);
    ee_error_clear();
    return 0;
}
