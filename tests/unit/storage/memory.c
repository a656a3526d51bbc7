/* The storage conformance suite against the memory backend. */
#include "execengine/storage.h"

#define CONF_SUITE storage_memory

static ee_storage *conf_open(void)
{
    ee_storage *s = NULL;
    return ee_storage_open_uri(&s, "memory:") == EE_OK ? s : NULL;
}

static void conf_cleanup(void) {}

#include "conformance.h"
