/*
 * Writers of one organisation's subscription at once, from several
 * processes sharing one SQLite file: one subscription remains (the storage's
 * unique key on orgId; the quota module writes again over a concurrent
 * writer instead of failing).
 */
#include "quota_race.h"

Test(subscriptions, writers_of_one_subscription_at_once_leave_one, .timeout = 120)
{
    char dir[64], uri[128];
    snprintf(dir, sizeof dir, "/tmp/ee-quota-subs-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(uri, sizeof uri, "sqlite://%s/store.db", dir);
    qr_subscription_race(uri);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}
