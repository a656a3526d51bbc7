/* Version, ee_free() and the default clock. */
#include "core.h"

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

int64_t ee__clock_system_ms(void *payload)
{
    (void)payload;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
