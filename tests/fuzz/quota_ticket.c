/*
 * libFuzzer: arbitrary bytes as the quota module's JSON inputs (memory
 * engine). The first byte picks the call; the rest is its text:
 *   0  ee_quota_ticket_from_json(text): an accepted ticket must serialise
 *      (ee_quota_ticket_json), and that text must rebuild the same ticket;
 *      its refusal figures must read
 *   1  ee_quota_finish_json(text) as a host finishing a kept ticket
 *   2  ee_quota_admit(request text), then the ticket it answers is
 *      finished, so the store stays small
 * Each input first admits one real run and keeps its ticket text, and
 * finishes it afterwards: finish_json of the input then meets live
 * reservations too. Invariants: documented statuses only (never
 * EE_ENOMEM, EE_ECORRUPT or EE_EIO for bad input); answers are JSON, a
 * failure's answer the error document of its status.
 */
#include "fuzz_engine.h"

static ee_engine *engine;
static ee_principal *who;
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
    CHECK(ee_principal_new(&who, "ws-fuzz", "user-fuzz", "org-fuzz") == EE_OK);
}

/* The ticket text of an admitted run (free()), or NULL when refused. */
static char *admit(const char *request)
{
    char *out = NULL;
    ee_status st = ee_quota_admit(engine, who, request, &out);
    CHECK_STATUS(st, EE_OK, EE_EQUOTA, EE_ESPEND, EE_ERATELIMIT, EE_ECONCURRENCY, EE_EINVAL,
                 EE_EPARSE, EE_ETOOBIG);
    json_t *doc = fz_answer(st, out);
    char *ticket = NULL;
    if (st == EE_OK) {
        CHECK(json_is_true(json_object_get(doc, "allowed")));
        CHECK(json_is_object(json_object_get(doc, "ticket")));
        ticket = json_dumps(json_object_get(doc, "ticket"), JSON_COMPACT);
        CHECK(ticket != NULL);
    } else if (st == EE_EQUOTA || st == EE_ESPEND || st == EE_ERATELIMIT ||
               st == EE_ECONCURRENCY) {
        const json_t *detail = json_object_get(json_object_get(doc, "error"), "detail");
        CHECK(json_is_false(json_object_get(detail, "allowed")));
    }
    json_decref(doc);
    return ticket;
}

static void finish(const char *ticket_json, int success, int64_t cost)
{
    ee_status st = ee_quota_finish_json(engine, ticket_json, success, cost);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_ESTATE, EE_ENOTFOUND, EE_EPARSE, EE_ETOOBIG);
}

static void from_json(const char *text)
{
    ee_quota_ticket t;
    memset(&t, 0xa5, sizeof t);
    ee_status st = ee_quota_ticket_from_json(text, &t);
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
    if (st != EE_OK)
        return;
    const char *quota = NULL;
    int64_t usage, limit, resets, retry;
    ee_status rs = ee_quota_ticket_refusal(&t, &quota, &usage, &limit, &resets, &retry);
    CHECK_STATUS(rs, EE_OK, EE_EINVAL);
    char *out = NULL;
    st = ee_quota_ticket_json(&t, &out);
    CHECK_STATUS(st, EE_OK, EE_EINVAL);
    json_t *doc = fz_answer(st, out);
    json_decref(doc);
    if (st != EE_OK)
        return;
    /* Round trip: the text rebuilds a ticket that serialises the same. */
    CHECK(ee_quota_ticket_json(&t, &out) == EE_OK);
    ee_quota_ticket u;
    CHECK(ee_quota_ticket_from_json(out, &u) == EE_OK);
    char *again = NULL;
    CHECK(ee_quota_ticket_json(&u, &again) == EE_OK);
    CHECK(strcmp(out, again) == 0);
    ee_free(out);
    ee_free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    open_once();
    now_ms += 3600 * 1000; /* a new rate-limit hour for every input */
    char *text = fz_text(data + 1, size - 1);
    char *live = admit(NULL);
    switch (data[0] % 3) {
    case 0:
        from_json(text);
        break;
    case 1:
        finish(text, size & 1, (int64_t)(size * 1000));
        break;
    default: {
        char *ticket = admit(text);
        if (ticket != NULL)
            finish(ticket, 1, 0);
        free(ticket);
        break;
    }
    }
    if (live != NULL) {
        ee_status st = ee_quota_finish_json(engine, live, 0, 0);
        /* The input may have finished it already. */
        CHECK_STATUS(st, EE_OK, EE_ENOTFOUND, EE_ESTATE);
    }
    free(live);
    free(text);
    ee_error_clear();
    return 0;
}
