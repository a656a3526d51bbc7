/*
 * Periods: rolling 30-day windows from a subscription's start, and
 * calendar months starting on BILLING_CYCLE_DAY (UTC). Pure integer
 * arithmetic on the engine's milliseconds: no time zone, no libc time
 * functions (timegm is not standard C).
 */
#include <stdio.h>
#include <string.h>

#include "quota/quota_internal.h"

/* Floor division for a positive divisor. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

void ee__quota_month(int billing_day, int64_t now, int64_t *from, int64_t *to)
{
    if (billing_day < 1 || billing_day > 28)
        billing_day = 1;
    int64_t y, m, d;
    civil_from_days(floor_div(now, Q_DAY_MS), &y, &m, &d);
    if (d < billing_day) { /* still in the period that began last month */
        if (--m == 0) {
            m = 12;
            y--;
        }
    }
    int64_t ny = y, nm = m + 1;
    if (nm == 13) {
        nm = 1;
        ny++;
    }
    *from = days_from_civil(y, m, billing_day) * Q_DAY_MS;
    *to = days_from_civil(ny, nm, billing_day) * Q_DAY_MS;
}

void ee__quota_period(int kind, int64_t start, int billing_day, int64_t now, int64_t *from,
                      int64_t *to)
{
    if (kind == Q_PERIOD_CALENDAR) {
        ee__quota_month(billing_day, now, from, to);
        return;
    }
    int64_t k = floor_div(now - start, Q_ROLLING_MS);
    *from = start + k * Q_ROLLING_MS;
    *to = *from + Q_ROLLING_MS;
}

void ee__quota_month_name(int billing_day, int64_t now, char name[EE__QUOTA_MONTH_NAME_SIZE])
{
    int64_t from, to, y, m, d;
    ee__quota_month(billing_day, now, &from, &to);
    civil_from_days(floor_div(from, Q_DAY_MS), &y, &m, &d);
    if (y < 0)
        y = 0;
    if (y > 9999)
        y = 9999;
    snprintf(name, EE__QUOTA_MONTH_NAME_SIZE, "%04d-%02d", (int)y, (int)m);
}

bool ee__quota_month_named(int billing_day, const char *name, int64_t *from, int64_t *to)
{
    if (name == NULL || strlen(name) != 7 || name[4] != '-')
        return false;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (name[i] < '0' || name[i] > '9'))
            return false;
    int64_t y = (name[0] - '0') * 1000 + (name[1] - '0') * 100 + (name[2] - '0') * 10 +
                (name[3] - '0');
    int64_t m = (name[5] - '0') * 10 + (name[6] - '0');
    if (y < 1970 || m < 1 || m > 12)
        return false;
    if (billing_day < 1 || billing_day > 28)
        billing_day = 1;
    ee__quota_month(billing_day, days_from_civil(y, m, billing_day) * Q_DAY_MS, from, to);
    return true;
}
