/* The execution queue's suite on the memory backend. */
#include "execengine/storage.h"

#define QUEUE_SUITE queue_memory

static ee_storage *queue_open(void)
{
    ee_storage *s = NULL;
    return ee_storage_open_uri(&s, "memory:") == EE_OK ? s : NULL;
}

static void queue_cleanup(void) {}

#include "queue_suite.h"
