/*
 * The counters conformance suite on the memory backend, and its exactness
 * under contention. The memory backend lives in one process, so the
 * issue's "8 threads in each of 4 processes" becomes 32 threads sharing one
 * handle in this process: forked children could not share its memory.
 */
#define CONF_SHARED 0
#include "conformance.h"

static void conf_open(ee_counters **out)
{
    cr_assert_eq(ee_counters_memory_new(out), EE_OK, "%s", ee_error_last_message());
    cr_assert_str_eq(ee_counters_backend_name(*out), "memory");
}

Test(memory, thirty_two_threads_grant_exactly_the_limit)
{
    conf_contention(1, 32);
}

Test(memory, many_keys_and_reservations_grow_the_tables)
{
    ee_counters *c;
    conf_open(&c);
    char key[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "grow:%d", i);
        uint64_t id = try_reserve(c, req_of(key, 1, 2), LEASE, T0, NULL);
        cr_assert_neq(id, 0);
        if (i % 2 == 0)
            cr_assert_eq(ee_counters_commit(c, key, id, EE_COUNTERS_ALL, T0), EE_OK);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof key, "grow:%d", i);
        expect_value(c, key, T0, 1, i % 2 == 0 ? 1 : 0);
    }
    /* One hot key, many finished reservations: slots are recycled. */
    for (int i = 0; i < 20000; i++) {
        uint64_t id = try_reserve(c, req_of("hot", 1, 1), LEASE, T0, NULL);
        cr_assert_neq(id, 0);
        cr_assert_eq(ee_counters_release(c, "hot", id, T0), EE_OK);
    }
    expect_value(c, "hot", T0, 0, 0);
    ee_counters_free(c);
}
