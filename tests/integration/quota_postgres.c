/*
 * Quota admission with storage and counters in the real PostgreSQL the test
 * fixture started (EE_COUNTERS_URI "storage:"): exactly 10 of 500
 * concurrent admissions from 4 processes get the 10 predictions left, where
 * seed 2's check-then-increment lets more through. Plans and subscriptions
 * are shared through the storage too.
 */
#include "../unit/quota/quota_race.h"

#include "test_servers.h"

Test(quota_postgres, exactly_10_of_500_admissions_from_4_processes)
{
    const char *pg = ee_test_server_uri("EE_TEST_POSTGRES_URI");
    char uri[600];
    snprintf(uri, sizeof uri, "%s", pg);
    qr_run(uri, "storage:", false);
}

Test(quota_postgres, writers_of_one_subscription_at_once_leave_one)
{
    qr_subscription_race(ee_test_server_uri("EE_TEST_POSTGRES_URI"));
}
