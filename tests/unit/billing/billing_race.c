/*
 * Three engines (two threads each) on one SQLite file account the same 200
 * ended executions of one workspace at once: each is booked once and the
 * free allowance is used exactly (billing_race.h). Checked against a build
 * whose booking is not one transaction: the month then counted 201-206
 * executions (4 runs of 4).
 */
#include "billing_race.h"

#include "temp_dir.h"

static char dir[64];

static void setup(void)
{
    ee_test_temp_dir("/tmp/ee-billing-race-XXXXXX", dir, sizeof dir);
    char uri[128];
    snprintf(uri, sizeof uri, "sqlite://%s/race.db", dir);
    br_open(uri);
}

static void teardown(void)
{
    br_close();
    ee_test_temp_dir_remove(dir);
}

TestSuite(billing_race, .init = setup, .fini = teardown, .timeout = 240);

Test(billing_race, engines_on_one_file_book_each_run_once_and_never_overspend_the_allowance)
{
    br_run();
}
