/*
 * Quota admission on the real Redis the test fixture started: exactly 10 of
 * 500 concurrent admissions from 4 processes get the 10 predictions left,
 * where seed 2's check-then-increment lets more through. Storage is memory:
 * per process (each stores the plan itself); the counters are shared.
 */
#include "../unit/quota/quota_race.h"

#include "test_servers.h"

Test(quota_redis, exactly_10_of_500_admissions_from_4_processes)
{
    qr_run("memory:", ee_test_server_uri("EE_TEST_REDIS_URI"), true);
}

Test(quota_redis, a_refused_admission_changes_no_counter_and_a_lost_slot_comes_back)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine_kv("memory:", ee_test_server_uri("EE_TEST_REDIS_URI"), NULL);
    char org[64];
    snprintf(org, sizeof org, "org-rr-%d-%ld", (int)getpid(), (long)time(NULL));
    qt_plan(e, "{\"name\": \"one\", \"predictionsPerPeriod\": 5, "
               "\"executionsPerUserPerHour\": -1, \"concurrentExecutionsPerWorkspace\": 1}");
    qt_subscribe(e, org, "one", QT_T0, NULL);
    char ws[80];
    snprintf(ws, sizeof ws, "ws-%s", org);
    ee_principal *p = qt_principal(ws, "u-rr", org);
    ee_quota_subject *s = qt_subject(e, p);
    ee_quota_ticket a, b;
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &a), EE_OK, "%s", ee_error_last_message());
    int64_t pred = qt_counter(e, "pred", org), conc = qt_counter(e, "conc", ws);
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &b), EE_ECONCURRENCY);
    cr_expect_eq(qt_counter(e, "pred", org), pred);
    cr_expect_eq(qt_counter(e, "conc", ws), conc);
    /* The holder "crashed": after runLeaseMs the slot and its prediction are back. */
    qt_advance(15 * 60000);
    cr_expect_eq(qt_counter(e, "conc", ws), 0);
    cr_expect_eq(qt_counter(e, "pred", org), 0);
    cr_assert_eq(ee_quota_admit_fast(e, s, 0, &b), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee_quota_finish(e, &b, 1, 0), EE_OK);
    cr_expect_eq(qt_counter(e, "pred", org), 1);
    ee_quota_subject_free(s);
    ee_principal_free(p);
    ee_engine_close(e);
}

/* ee_quota_storage_commit of an unknown or released reservation is
 * EE_ENOTFOUND on Redis too, also when the sizes are equal (it answered
 * EE_OK without asking the counters). */
Test(quota_redis, storage_commit_of_an_unknown_reservation_is_not_found)
{
    qt_set_now(QT_T0);
    ee_engine *e = qt_engine_kv("memory:", ee_test_server_uri("EE_TEST_REDIS_URI"), NULL);
    char org[64];
    snprintf(org, sizeof org, "org-rsc-%d-%ld", (int)getpid(), (long)time(NULL));
    qt_plan(e, "{\"name\": \"bytes\", \"predictionsPerPeriod\": 5, \"storageBytes\": 1000}");
    qt_subscribe(e, org, "bytes", QT_T0, NULL);
    ee_principal *p = qt_principal("ws-rsc", "u-rsc", org);
    uint64_t id = 0, out = 7;
    cr_assert_eq(ee_quota_storage_reserve(e, p, 100, &id), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_quota_storage_commit(e, p, id, 100, 100, &out), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(out, id);
    cr_expect_eq(ee_quota_storage_commit(e, p, id + 1000, 100, 100, &out), EE_ENOTFOUND);
    cr_expect_eq(out, 0);
    cr_assert_eq(ee_quota_storage_release(e, p, id), EE_OK, "%s", ee_error_last_message());
    cr_expect_eq(ee_quota_storage_commit(e, p, id, 100, 100, &out), EE_ENOTFOUND);
    ee_principal_free(p);
    ee_engine_close(e);
}
