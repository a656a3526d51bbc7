/*
 * A host's own counters (ee_counters_new_custom() over memory counters)
 * pass the counters conformance suite, and quota admission through an
 * engine opened with them (ee_engine_open_parts()) reserves and finishes
 * on that table - not on counters of its own.
 */
#define CONF_SHARED 0
#include "../counters/conformance.h"

#include "counting_counters.h"
#include "engine_fixture.h"
#include "execengine/quota.h"
#include "engine/engine.h"

static void conf_open(ee_counters **out)
{
    counting_counters *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    c->free_self = true;
    *out = counting_counters_new(c);
    cr_assert_str_eq(ee_counters_backend_name(*out), "custom");
}

Test(engine_counters, quota_admission_goes_through_the_hosts_table)
{
    counting_counters tally = {0};
    ee_counters *mine = counting_counters_new(&tally);
    ee_config *cfg = ee_test_config_new(NULL, NULL, NULL);
    ee_engine_parts parts = {.version = EE_ENGINE_PARTS_VERSION, .counters = mine};
    ee_engine *e = NULL;
    ee_status st = ee_engine_open_parts(&e, cfg, &parts);
    ee_config_free(cfg);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee__engine_counters(e), mine, "the engine uses the host's handle");

    ee_principal *p = NULL;
    cr_assert_eq(ee_principal_new(&p, "ws-1", "user-1", "org-1"), EE_OK);
    ee_quota_subject *s = NULL;
    cr_assert_eq(ee_quota_subject_new(&s, e, p), EE_OK, "%s", ee_error_last_message());
    int reserves = atomic_load(&tally.reserves), commits = atomic_load(&tally.commits);
    for (int i = 0; i < 3; i++) {
        ee_quota_ticket t;
        st = ee_quota_admit_fast(e, s, 0, &t);
        cr_assert_eq(st, EE_OK, "admission %d: %s", i, ee_error_last_message());
        cr_assert_eq(ee_quota_finish(e, &t, 1, 0), EE_OK, "%s", ee_error_last_message());
    }
    cr_expect_geq(atomic_load(&tally.reserves) - reserves, 3, "each admission reserves");
    cr_expect_geq(atomic_load(&tally.commits) + atomic_load(&tally.releases) - commits, 3,
                  "each finish commits or releases");
    /* what admission counted is in the host's counters: the user's hourly
     * executions, read past the table from the memory counters behind it */
    ee_counter_result r;
    cr_assert_eq(ee_counters_get(tally.inner, "eeq/rate/user-1", ee_engine_now_ms(e), &r),
                 EE_OK);
    cr_expect_eq(r.value, 3, "the hourly count is the host's (%lld)", (long long)r.value);

    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
    cr_expect_eq(atomic_load(&tally.frees), 0, "the engine does not free the host's counters");
    ee_counters_free(mine);
    cr_expect_eq(atomic_load(&tally.frees), 1);
}

Test(engine_counters, threads_through_the_hosts_table_grant_exactly_the_limit)
{
    conf_contention(1, 8);
}
