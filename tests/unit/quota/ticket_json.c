/*
 * A ticket kept as JSON is taken back strictly: a real ticket mutated one
 * field at a time is refused with EE_EPARSE by ee_quota_ticket_from_json()
 * and by ee_quota_finish_json(), and no counter changes - neither the
 * ticket's organisation's nor another organisation's that a forged key
 * names.
 */
#include "quota_test.h"
#include "engine/engine.h"

#include <jansson.h>

static const char *const keys[] = {"eeq/pred/o1",    "eeq/rate/u1",    "eeq/conc/ws1",
                                   "eeq/spend/o1",   "eeq/pred/victim", "eeq/rate/uv",
                                   "eeq/conc/wsv",   "eeq/spend/victim"};
#define NKEYS (sizeof keys / sizeof keys[0])

static void snapshot(ee_engine *e, int64_t v[NKEYS])
{
    for (size_t i = 0; i < NKEYS; i++) {
        ee_counter_result r;
        ee_status st = ee_counters_get(ee__engine_counters(e), keys[i], ee_engine_now_ms(e), &r);
        cr_assert_eq(st, EE_OK, "%s: %s", keys[i], ee_error_last_message());
        v[i] = r.value;
    }
}

static char *admit(ee_engine *e, ee_principal *p)
{
    char *out = NULL;
    ee_status st = ee_quota_admit(e, p, "{\"estimatedCostNanoUsd\": 100}", &out);
    cr_assert_eq(st, EE_OK, "%s", out);
    json_t *d = json_loads(out, 0, NULL);
    char *t = json_dumps(json_object_get(d, "ticket"), JSON_COMPACT);
    json_decref(d);
    ee_free(out);
    return t;
}

typedef struct {
    const char *what;
    const char *path;  /* "member" or "reservations/<i>/member" or "reservations" */
    const char *value; /* JSON text of the new value; NULL deletes the member */
} mutation;

static const mutation mutations[] = {
    {"version 2", "v", "2"},
    {"version as text", "v", "\"1\""},
    {"another organisation", "orgId", "\"victim\""},
    {"organisation not a string", "orgId", "5"},
    {"organisation not an id", "orgId", "\"o/1\""},
    {"failedRunsConsume not a boolean", "failedRunsConsume", "1"},
    {"negative cost", "estimatedCostNano", "-1"},
    {"cost 0 with a spend reservation", "estimatedCostNano", "0"},
    {"cost past 2^53-1", "estimatedCostNano", "9007199254740992"},
    {"fractional cost", "estimatedCostNano", "1.5"},
    {"lease 0", "leaseMs", "0"},
    {"lease past 2^53-1", "leaseMs", "9007199254740992"},
    {"lease null", "leaseMs", "null"},
    {"lease missing", "leaseMs", NULL},
    {"no reservations", "reservations", "[]"},
    {"reservations not an array", "reservations", "{}"},
    {"first reservation not predictions", "reservations/0/quota", "\"rate\""},
    {"unknown quota", "reservations/1/quota", "\"bogus\""},
    {"quota repeated", "reservations/2/quota", "\"rate\""},
    {"predictions key of another organisation", "reservations/0/key", "\"eeq/pred/victim\""},
    {"key outside the quota namespace", "reservations/0/key", "\"other/pred/o1\""},
    {"spend key of another organisation", "reservations/3/key", "\"eeq/spend/victim\""},
    {"spend key on the predictions counter", "reservations/3/key", "\"eeq/pred/o1\""},
    {"rate key with a bad id", "reservations/1/key", "\"eeq/rate/u 1\""},
    {"concurrency key of the platform-wide slot", "reservations/2/key", "\"eeq/conc-all\""},
    {"key missing", "reservations/0/key", NULL},
    {"id 0", "reservations/0/id", "\"0\""},
    {"id negative", "reservations/0/id", "\"-1\""},
    {"id with a space", "reservations/0/id", "\" 5\""},
    {"id with a sign", "reservations/0/id", "\"+5\""},
    {"id past 2^64-1", "reservations/0/id", "\"18446744073709551616\""},
    {"id with a leading zero", "reservations/0/id", "\"07\""},
    {"id as a number", "reservations/0/id", "5"},
    {"unknown member of a reservation", "reservations/0/extra", "1"},
    {"unknown member of the ticket", "extra", "1"},
};

/* The ticket with one mutation applied (malloc'ed text). */
static char *mutate(const char *ticket, const mutation *m)
{
    json_t *t = json_loads(ticket, 0, NULL);
    cr_assert_not_null(t);
    json_t *obj = t;
    char path[64];
    snprintf(path, sizeof path, "%s", m->path);
    char *member = path;
    if (strncmp(path, "reservations/", 13) == 0) {
        char *slash = strchr(path + 13, '/');
        *slash = '\0';
        obj = json_array_get(json_object_get(t, "reservations"), (size_t)atoi(path + 13));
        cr_assert_not_null(obj, "%s", m->what);
        member = slash + 1;
    }
    if (m->value == NULL) {
        cr_assert_eq(json_object_del(obj, member), 0, "%s", m->what);
    } else {
        json_t *v = json_loads(m->value, JSON_DECODE_ANY, NULL);
        cr_assert_not_null(v, "%s", m->value);
        json_object_set_new(obj, member, v);
    }
    char *text = json_dumps(t, JSON_COMPACT);
    json_decref(t);
    return text;
}

Test(ticket_json, a_ticket_changed_in_any_field_is_refused_and_counts_nothing)
{
    ee_engine *e = qt_engine();
    qt_plan(e, "{\"name\": \"all\", \"predictionsPerPeriod\": 100, \"executionsPerUserPerHour\": "
               "100, \"concurrentExecutionsPerWorkspace\": 10, \"monthlySpendCapNanoUsd\": "
               "1000000}");
    qt_subscribe(e, "o1", "all", QT_T0, NULL);
    qt_subscribe(e, "victim", "all", QT_T0, NULL);
    ee_principal *p = qt_principal("ws1", "u1", "o1");
    ee_principal *pv = qt_principal("wsv", "uv", "victim");
    char *ticket = admit(e, p);
    char *victim = admit(e, pv); /* the victim has a run in flight too */
    json_t *t = json_loads(ticket, 0, NULL);
    cr_assert_eq(json_array_size(json_object_get(t, "reservations")), 4, "%s", ticket);
    json_decref(t);

    int64_t before[NKEYS], after[NKEYS];
    snapshot(e, before);
    for (size_t i = 0; i < sizeof mutations / sizeof mutations[0]; i++) {
        char *doc = mutate(ticket, &mutations[i]);
        ee_quota_ticket parsed;
        ee_status st = ee_quota_ticket_from_json(doc, &parsed);
        cr_expect_eq(st, EE_EPARSE, "%s: %s (%s) for %s", mutations[i].what, ee_status_name(st),
                     ee_error_last_message(), doc);
        st = ee_quota_finish_json(e, doc, 1, 50);
        cr_expect_eq(st, EE_EPARSE, "finish, %s: %s (%s)", mutations[i].what,
                     ee_status_name(st), ee_error_last_message());
        snapshot(e, after);
        for (size_t k = 0; k < NKEYS; k++)
            cr_expect_eq(after[k], before[k], "%s changed %s: %lld -> %lld", mutations[i].what,
                         keys[k], (long long)before[k], (long long)after[k]);
        free(doc);
    }
    /* the real ticket is accepted: the refusals were the mutations' */
    ee_quota_ticket parsed;
    cr_assert_eq(ee_quota_ticket_from_json(ticket, &parsed), EE_OK, "%s", ee_error_last_message());
    char *again = NULL;
    cr_assert_eq(ee_quota_ticket_json(&parsed, &again), EE_OK);
    cr_expect_str_eq(again, ticket);
    ee_free(again);
    cr_expect_eq(ee_quota_finish_json(e, ticket, 1, 50), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_quota_finish_json(e, victim, 1, 0), EE_OK, "%s", ee_error_last_message());
    free(ticket);
    free(victim);
    ee_principal_free(p);
    ee_principal_free(pv);
    ee_engine_close(e);
}

Test(ticket_json, the_organisation_is_read_only_from_a_predictions_key)
{
    /* ee_quota_ticket_json() names the organisation from the predictions
     * key; it never reads past a key without that prefix. */
    ee_engine *e = qt_engine();
    ee_principal *p = qt_principal("ws1", "u1", "org-7");
    char *ticket = admit(e, p);
    json_t *t = json_loads(ticket, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(t, "orgId")), "org-7");
    json_decref(t);
    ee_quota_ticket parsed;
    cr_assert_eq(ee_quota_ticket_from_json(ticket, &parsed), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_quota_finish(e, &parsed, 0, 0), EE_OK);
    free(ticket);
    ee_principal_free(p);
    ee_engine_close(e);
}
