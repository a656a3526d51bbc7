/*
 * A host's own counters for the engine tests: an ee_counters_new_custom()
 * table that forwards every slot to a memory counters handle and counts the
 * calls, so a test sees what quota admission did through it.
 */
#ifndef EE_TEST_COUNTING_COUNTERS_H
#define EE_TEST_COUNTING_COUNTERS_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "execengine/counters.h"

typedef struct {
    ee_counters *inner; /* memory counters, freed with the wrapper */
    atomic_int reserves, commits, releases, renews, gets, frees;
    bool free_self; /* the handle frees this state too */
} counting_counters;

static ee_status cc_reserve_many(void *ctx, const ee_counter_req *reqs, size_t count,
                                 int64_t lease_ms, int64_t now_ms, ee_counter_result *results,
                                 int *granted)
{
    counting_counters *c = ctx;
    atomic_fetch_add(&c->reserves, 1);
    return ee_counters_reserve_many(c->inner, reqs, count, lease_ms, now_ms, results, granted);
}

static ee_status cc_reserve_leased(void *ctx, const ee_counter_req *reqs, const int64_t *leases,
                                   size_t count, int64_t now_ms, ee_counter_result *results,
                                   int *granted)
{
    counting_counters *c = ctx;
    atomic_fetch_add(&c->reserves, 1);
    return ee_counters_reserve_many_leased(c->inner, reqs, leases, count, now_ms, results,
                                           granted);
}

static ee_status cc_commit(void *ctx, const char *key, uint64_t id, int64_t amount, int64_t now)
{
    counting_counters *c = ctx;
    atomic_fetch_add(&c->commits, 1);
    return ee_counters_commit(c->inner, key, id, amount, now);
}

static ee_status cc_release(void *ctx, const char *key, uint64_t id, int64_t now)
{
    counting_counters *c = ctx;
    atomic_fetch_add(&c->releases, 1);
    return ee_counters_release(c->inner, key, id, now);
}

static ee_status cc_renew(void *ctx, const char *key, uint64_t id, int64_t lease, int64_t now)
{
    counting_counters *c = ctx;
    atomic_fetch_add(&c->renews, 1);
    return ee_counters_renew(c->inner, key, id, lease, now);
}

static ee_status cc_get(void *ctx, const char *key, int64_t now, ee_counter_result *out)
{
    counting_counters *c = ctx;
    atomic_fetch_add(&c->gets, 1);
    return ee_counters_get(c->inner, key, now, out);
}

/* Unless free_self, the state outlives the handle: a test reads its
 * tallies after the handle is gone. */
static void cc_free(void *ctx)
{
    counting_counters *c = ctx;
    atomic_fetch_add(&c->frees, 1);
    ee_counters_free(c->inner);
    c->inner = NULL;
    if (c->free_self)
        free(c);
}

/* A custom counters handle over fresh memory counters, tallying into *c
 * (zeroed here; free_self is kept). */
static inline ee_counters *counting_counters_new(counting_counters *c)
{
    bool free_self = c->free_self;
    memset(c, 0, sizeof *c);
    c->free_self = free_self;
    cr_assert_eq(ee_counters_memory_new(&c->inner), EE_OK);
    ee_counters_backend t = {
        .version = EE_COUNTERS_BACKEND_VERSION,
        .flags = EE_COUNTERS_THREAD_SAFE,
        .reserve_many = cc_reserve_many,
        .commit = cc_commit,
        .release = cc_release,
        .renew = cc_renew,
        .get = cc_get,
        .free = cc_free,
        .reserve_leased = cc_reserve_leased,
    };
    ee_counters *h = NULL;
    cr_assert_eq(ee_counters_new_custom(&h, &t, c), EE_OK, "%s", ee_error_last_message());
    return h;
}

#endif
