/*
 * Exact decimal parsing and formatting for money (nano-USD) and percentages
 * (basis points). No floating point touches an amount.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>

static int64_t pow10_i64(int n)
{
    int64_t p = 1;
    while (n-- > 0)
        p *= 10;
    return p;
}

/* Accumulate a run of digits into *acc; false on overflow. */
static bool add_digits(const char **p, int64_t *acc, int *count, int limit)
{
    while (**p >= '0' && **p <= '9') {
        if (limit >= 0 && *count >= limit)
            return false;
        int d = **p - '0';
        if (*acc > (INT64_MAX - d) / 10)
            return false;
        *acc = *acc * 10 + d;
        (*count)++;
        (*p)++;
    }
    return true;
}

ee_status ee__decimal_parse(const char *text, int scale, int64_t *out)
{
    if (text == NULL || out == NULL || scale < 0 || scale > 18)
        return EE_EINVAL;
    const char *p = text;
    int64_t whole = 0, frac = 0;
    int nwhole = 0, nfrac = 0;
    if (!add_digits(&p, &whole, &nwhole, -1))
        return EE_EINVAL;
    if (*p == '.') {
        p++;
        if (!add_digits(&p, &frac, &nfrac, scale) || nfrac == 0)
            return EE_EINVAL;
    }
    if (*p != '\0' || nwhole == 0)
        return EE_EINVAL;
    int64_t unit = pow10_i64(scale);
    if (whole > (INT64_MAX - frac * pow10_i64(scale - nfrac)) / unit)
        return EE_EINVAL;
    *out = whole * unit + frac * pow10_i64(scale - nfrac);
    return EE_OK;
}

void ee__decimal_format(int64_t value, int scale, char buf[32])
{
    uint64_t mag = value < 0 ? (uint64_t)0 - (uint64_t)value : (uint64_t)value;
    uint64_t unit = (uint64_t)pow10_i64(scale);
    if (scale == 0)
        snprintf(buf, 32, "%s%llu", value < 0 ? "-" : "", (unsigned long long)mag);
    else
        snprintf(buf, 32, "%s%llu.%0*llu", value < 0 ? "-" : "",
                 (unsigned long long)(mag / unit), scale, (unsigned long long)(mag % unit));
}

ee_status ee__int_parse(const char *text, int64_t *out)
{
    if (text == NULL || out == NULL)
        return EE_EINVAL;
    const char *p = text;
    bool neg = *p == '-';
    if (neg)
        p++;
    int64_t mag = 0;
    int n = 0;
    if (!add_digits(&p, &mag, &n, -1) || n == 0 || *p != '\0')
        return EE_EINVAL;
    *out = neg ? -mag : mag;
    return EE_OK;
}
