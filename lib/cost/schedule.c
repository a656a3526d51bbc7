/*
 * Runs per month of a schedule. The month is the 30 days
 * [start_ms, start_ms + 30 x 86400000); named intervals count their whole
 * intervals in it, cron expressions are counted exactly minute by minute in
 * UTC (a run at second 0 of each matching minute).
 */
#include "cost_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DAY_MS INT64_C(86400000)
#define MONTH_MS (30 * DAY_MS)
/* Latest start accepted: year 9999, far inside every computation's range. */
#define START_MAX_MS INT64_C(253402300799000)

typedef struct {
    uint64_t minute; /* bit m: minute m matches */
    uint32_t hour, dom, month; /* dom bits 1..31, month bits 1..12 */
    uint8_t dow;               /* bits 0..6, Sunday = 0 */
    bool dom_star, dow_star;   /* field began with '*' (Vixie's day rule) */
} cron_spec;

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* A number or (for months and weekdays) a three-letter name. */
static bool parse_value(const char **p, int field, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        int v = 0;
        while (isdigit((unsigned char)*s)) {
            v = v * 10 + (*s++ - '0');
            if (v > 1000)
                return false;
        }
        *p = s;
        *out = v;
        return true;
    }
    const char *const *names = field == 3 ? month_names : field == 4 ? dow_names : NULL;
    int count = field == 3 ? 12 : 7, base = field == 3 ? 1 : 0;
    if (names == NULL)
        return false;
    for (int i = 0; i < count; i++)
        if (strncasecmp(s, names[i], 3) == 0 && !isalpha((unsigned char)s[3])) {
            *p = s + 3;
            *out = i + base;
            return true;
        }
    return false;
}

/* One field: comma-separated items of '*', 'a', 'a-b', each with '/step'.
 * Sets bits lo..hi of *bits. */
static bool parse_field(const char *text, int field, int lo, int hi, uint64_t *bits, bool *star)
{
    const char *p = text;
    *bits = 0;
    *star = *p == '*';
    for (;;) {
        int a, b, step = 1;
        bool single = false;
        if (*p == '*') {
            a = lo;
            b = hi;
            p++;
        } else {
            if (!parse_value(&p, field, &a))
                return false;
            b = a;
            single = *p != '-';
            if (*p == '-') {
                p++;
                if (!parse_value(&p, field, &b))
                    return false;
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p) || !parse_value(&p, 0, &step) || step == 0)
                return false;
            if (single)
                b = hi; /* "a/n": from a to the end, as cronie reads it */
        }
        if (a < lo || b > hi || a > b)
            return false;
        for (int v = a; v <= b; v += step)
            *bits |= UINT64_C(1) << v;
        if (*p == ',') {
            p++;
            continue;
        }
        return *p == '\0';
    }
}

static bool parse_cron(const char *expr, cron_spec *c)
{
    static const struct {
        const char *name, *expr;
    } macros[] = {{"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},
                  {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
                  {"@monthly", "0 0 1 * *"},  {"@yearly", "0 0 1 1 *"},
                  {"@annually", "0 0 1 1 *"}};
    if (expr[0] == '@') {
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strcmp(expr, macros[i].name) == 0)
                return parse_cron(macros[i].expr, c);
        return false;
    }
    char buf[256], *fields[6];
    if (strlen(expr) >= sizeof buf)
        return false;
    strcpy(buf, expr);
    int nf = 0;
    for (char *save = NULL, *tok = strtok_r(buf, " \t", &save); tok != NULL;
         tok = strtok_r(NULL, " \t", &save)) {
        if (nf == 5)
            return false;
        fields[nf++] = tok;
    }
    if (nf != 5)
        return false;
    uint64_t b;
    bool star;
    memset(c, 0, sizeof *c);
    if (!parse_field(fields[0], 0, 0, 59, &b, &star))
        return false;
    c->minute = b;
    if (!parse_field(fields[1], 1, 0, 23, &b, &star))
        return false;
    c->hour = (uint32_t)b;
    if (!parse_field(fields[2], 2, 1, 31, &b, &c->dom_star))
        return false;
    c->dom = (uint32_t)b;
    if (!parse_field(fields[3], 3, 1, 12, &b, &star))
        return false;
    c->month = (uint32_t)b;
    if (!parse_field(fields[4], 4, 0, 7, &b, &c->dow_star))
        return false;
    if (b & (1u << 7))
        b |= 1; /* 7 is Sunday too */
    c->dow = (uint8_t)(b & 0x7f);
    return true;
}

/* Civil date of a day number (days since 1970-01-01), Howard Hinnant's
 * algorithm; valid for every day this file meets. */
static void civil(int64_t days, int *month, int *mday)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *mday = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
}

static bool day_matches(const cron_spec *c, int64_t day)
{
    int month, mday;
    civil(day, &month, &mday);
    if (!(c->month & (1u << month)))
        return false;
    int wday = (int)((day + 4) % 7); /* 1970-01-01 was a Thursday */
    bool dom = c->dom & (1u << mday), dow = c->dow & (1u << wday);
    /* Vixie cron: both restricted -> either; otherwise both must hold. */
    if (!c->dom_star && !c->dow_star)
        return dom || dow;
    return dom && dow;
}

static int64_t count_cron(const cron_spec *c, int64_t start, int64_t end)
{
    int64_t per_day = (int64_t)__builtin_popcountll(c->minute) * __builtin_popcount(c->hour);
    int64_t runs = 0;
    for (int64_t day = start / DAY_MS; day * DAY_MS < end; day++) {
        if (!day_matches(c, day))
            continue;
        int64_t d0 = day * DAY_MS;
        if (d0 >= start && d0 + DAY_MS <= end) {
            runs += per_day;
            continue;
        }
        for (int h = 0; h < 24; h++) {
            if (!(c->hour & (1u << h)))
                continue;
            for (int m = 0; m < 60; m++) {
                int64_t t = d0 + h * INT64_C(3600000) + m * INT64_C(60000);
                if ((c->minute & (UINT64_C(1) << m)) && t >= start && t < end)
                    runs++;
            }
        }
    }
    return runs;
}

/* Named intervals: their whole intervals in 30 days. */
static const struct {
    const char *name;
    int64_t runs;
} named[] = {{"hourly", 720}, {"daily", 30}, {"weekly", 4}, {"monthly", 1}};

static int named_index(const char *schedule)
{
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (strcasecmp(schedule, named[i].name) == 0)
            return (int)i;
    return -1;
}

bool ee__cost_schedule_is_interval(const char *schedule)
{
    return named_index(schedule) >= 0;
}

ee_status ee_cost_schedule_runs(const char *schedule, int64_t start_ms, int64_t *runs_out)
{
    if (runs_out == NULL || schedule == NULL)
        return ee__error(EE_EINVAL, "ee_cost_schedule_runs: NULL argument");
    int k = named_index(schedule);
    if (k >= 0) {
        *runs_out = named[k].runs;
        return EE_OK;
    }
    char q[120];
    ee__quote_for_message(schedule, q, sizeof q);
    cron_spec c;
    if (!parse_cron(schedule, &c))
        return ee__error(EE_EINVAL, "schedule \"%s\" is neither hourly, daily, weekly, monthly "
                         "nor a valid 5-field cron expression", q);
    if (start_ms < 0 || start_ms > START_MAX_MS)
        return ee__error(EE_EINVAL, "schedule \"%s\": startMs %lld is outside 0..%lld", q,
                         (long long)start_ms, (long long)START_MAX_MS);
    *runs_out = count_cron(&c, start_ms, start_ms + MONTH_MS);
    return EE_OK;
}
