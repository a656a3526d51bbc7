/* Version, ee_free(), the default clock and ISO dates. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "execengine/version.h"

const char *ee_version(void)
{
    return EE_VERSION_STRING;
}

int ee_version_num(void)
{
    return EE_VERSION_NUM;
}

void ee_free(void *ptr)
{
    free(ptr);
}

void *ee__grow(void *ptr, size_t *cap, size_t elem_size, size_t first_cap)
{
    size_t n = *cap ? *cap * 2 : first_cap;
    if (n < *cap || elem_size == 0 || n > SIZE_MAX / elem_size)
        return NULL;
    void *grown = realloc(ptr, n * elem_size);
    if (grown != NULL)
        *cap = n;
    return grown;
}

int64_t ee__clock_system_ms(void *payload)
{
    (void)payload;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ee__mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ee__deadline_after_ms(int64_t ms, struct timespec *out)
{
    clock_gettime(CLOCK_REALTIME, out);
    out->tv_sec += (time_t)(ms / 1000);
    out->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
}

void ee__time_iso(int64_t ms, char out[32])
{
    /* floored, so that an instant before the epoch reads .xyz >= 0 */
    int64_t rem = ms % 1000;
    if (rem < 0)
        rem += 1000;
    time_t s = (time_t)((ms - rem) / 1000);
    struct tm tm;
    char day[24];
    /* a year gmtime cannot represent (|ms| near INT64_MAX): no garbage */
    if (gmtime_r(&s, &tm) == NULL ||
        strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        snprintf(out, 32, "%s", ms < 0 ? "0000-01-01T00:00:00.000Z" : "9999-12-31T23:59:59.999Z");
        return;
    }
    snprintf(out, 32, "%s.%03dZ", day, (int)rem);
}
