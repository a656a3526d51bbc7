/* The execution queue's suite on a host's version 1 backend table (no
 * claim slot: claims by query and revision-checked replace), forwarding
 * to the memory backend. */
#include "../storage/custom_backend.h"

#define QUEUE_SUITE queue_custom_v1

static ee_storage *queue_open(void)
{
    return custom_open(1);
}

static void queue_cleanup(void) {}

#include "queue_suite.h"
