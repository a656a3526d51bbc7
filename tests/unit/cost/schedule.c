/* Monthly projections: runs of a schedule in the 30 days from startMs. */
#include "cost_test.h"

/* 2024-01-01T00:00:00Z, a Monday. */
#define JAN1_2024 INT64_C(1704067200000)
#define DAY INT64_C(86400000)
#define HOUR INT64_C(3600000)

static int64_t runs(const char *schedule, int64_t start)
{
    int64_t n = -1;
    cr_assert_eq(ee_cost_schedule_runs(schedule, start, &n), EE_OK, "%s: %s", schedule,
                 ee_error_last_message());
    return n;
}

Test(schedule, named_intervals)
{
    cr_expect_eq(runs("daily", 0), 30);
    cr_expect_eq(runs("hourly", 0), 720);
    cr_expect_eq(runs("weekly", 0), 4);
    cr_expect_eq(runs("monthly", 0), 1);
    cr_expect_eq(runs("Daily", JAN1_2024 + 12345), 30);
}

Test(schedule, every_15_minutes_is_2880_whatever_the_start)
{
    cr_expect_eq(runs("*/15 * * * *", JAN1_2024), 2880);
    cr_expect_eq(runs("*/15 * * * *", JAN1_2024 + 7 * 60000 + 123), 2880);
    cr_expect_eq(runs("0,15,30,45 * * * *", JAN1_2024 + 5 * HOUR), 2880);
    cr_expect_eq(runs("* * * * *", JAN1_2024), 43200);
}

Test(schedule, weekdays_at_nine_counted_exactly)
{
    /* Mon 2024-01-01 .. Tue 2024-01-30: 4 full weeks + Mon + Tue = 22 */
    cr_expect_eq(runs("0 9 * * 1-5", JAN1_2024), 22);
    /* from Mon 10:00: Jan 1 09:00 is before the start, but Wed Jan 31
     * 09:00 is inside the window (it ends Jan 31 10:00): still 22 */
    cr_expect_eq(runs("0 9 * * 1-5", JAN1_2024 + 10 * HOUR), 22);
    /* from Sat 2024-01-06: Jan 6 .. Feb 4 ends on a weekend: 20 */
    cr_expect_eq(runs("0 9 * * 1-5", JAN1_2024 + 5 * DAY), 20);
    /* names and 7 = Sunday */
    cr_expect_eq(runs("0 9 * * mon-fri", JAN1_2024), 22);
    cr_expect_eq(runs("0 9 * * 0", JAN1_2024), 4);
    cr_expect_eq(runs("0 9 * * 7", JAN1_2024), 4);
    cr_expect_eq(runs("0 9 * * SUN,sat", JAN1_2024), 8);
}

Test(schedule, day_fields_and_months)
{
    /* both day fields restricted: either matches (Vixie). From Jan 1 2024:
     * the 1st and 15th (Jan 1, Jan 15) plus Fridays (5, 12, 19, 26) = 6 */
    cr_expect_eq(runs("0 0 1,15 * 5", JAN1_2024), 6);
    /* day-of-month alone */
    cr_expect_eq(runs("0 0 1,15 * *", JAN1_2024), 2);
    /* Feb 30 never comes */
    cr_expect_eq(runs("0 0 30 2 *", JAN1_2024 + 31 * DAY), 0);
    /* 2024 is a leap year: Feb 29 does come */
    cr_expect_eq(runs("0 12 29 feb *", JAN1_2024 + 31 * DAY), 1);
    /* the month field: only January days in the window Jan 20 .. Feb 18 */
    cr_expect_eq(runs("0 0 * 1 *", JAN1_2024 + 19 * DAY), 12);
    /* ranges with steps, and "a/n" */
    cr_expect_eq(runs("0 8-18/2 * * *", JAN1_2024), 30 * 6);
    cr_expect_eq(runs("30 20/2 * * *", JAN1_2024), 30 * 2);
    cr_expect_eq(runs("@daily", JAN1_2024), 30);
    cr_expect_eq(runs("@hourly", JAN1_2024), 720);
    cr_expect_eq(runs("@weekly", JAN1_2024), 4); /* Sundays Jan 7, 14, 21, 28 */
    cr_expect_eq(runs("@monthly", JAN1_2024), 1);
    /* a partial first day */
    cr_expect_eq(runs("0 * * * *", JAN1_2024 + 30 * 60000), 720);
    cr_expect_eq(runs("0 0 * * *", JAN1_2024 + 1), 30); /* Jan 2 .. Jan 31 00:00 */
}

Test(schedule, malformed_schedules_are_refused)
{
    const char *bad[] = {"", "every day", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *",
                         "* * 0 * *", "* * 32 * *", "* * * 13 *", "* * * * 8", "*/0 * * * *",
                         "5-1 * * * *", "a * * * *", "1,,2 * * * *", "1- * * * *", "@fortnightly",
                         "* * * foo *", "1/ * * * *"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t n;
        cr_expect_eq(ee_cost_schedule_runs(bad[i], JAN1_2024, &n), EE_EINVAL, "accepted \"%s\"",
                     bad[i]);
    }
    int64_t n;
    cr_expect_eq(ee_cost_schedule_runs("* * * * *", -1, &n), EE_EINVAL);
    cr_expect_eq(ee_cost_schedule_runs("daily", 0, NULL), EE_EINVAL);
}
