/*
 * Prepared reservations (lib/counters/counters.h): the checks of each step
 * with their statuses, a custom table reached through the checked path
 * with the call's amounts, and a clock outside the range the requests were
 * checked for. How a prepared reservation counts on every built-in backend
 * is in the conformance suite (conformance.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "counters/counters.h"
#include "execengine/counters.h"
#include "execengine/errors.h"

#define T0 INT64_C(1700000000000)
#define LEASE INT64_C(600000)

static ee_counter_req req(const char *key, int64_t n, int64_t limit)
{
    ee_counter_req r = {key, n, limit, 0, 0};
    return r;
}

static int64_t value_of(ee_counters *c, const char *key, int64_t now)
{
    ee_counter_result r;
    cr_assert_eq(ee_counters_get(c, key, now, &r), EE_OK, "%s", ee_error_last_message());
    return r.value;
}

static const char *const keys3[3] = {"eeq/pred/o", "eeq/rate/u", "eeq/spend/o"};

/* Memory counters and *p prepared on keys3 with two requests set. */
static ee_counters *two_set(ee__counters_prepared *p)
{
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_memory_new(&c), EE_OK);
    cr_assert_eq(ee__counters_prepared_init(p, c, keys3, 3), EE_OK, "%s",
                 ee_error_last_message());
    ee_counter_req reqs[2] = {req(keys3[0], 1, 10), req(keys3[1], 1, 10)};
    int64_t leases[2] = {LEASE, LEASE};
    cr_assert_eq(ee__counters_prepared_set(p, reqs, leases, 2, T0), EE_OK, "%s",
                 ee_error_last_message());
    return c;
}

Test(prepared, init_checks_its_arguments_and_keys)
{
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_memory_new(&c), EE_OK);
    ee__counters_prepared p;
    cr_expect_eq(ee__counters_prepared_init(NULL, c, keys3, 3), EE_EINVAL);
    cr_expect_eq(ee__counters_prepared_init(&p, NULL, keys3, 3), EE_EINVAL);
    cr_expect_eq(ee__counters_prepared_init(&p, c, NULL, 3), EE_EINVAL);
    cr_expect_eq(ee__counters_prepared_init(&p, c, keys3, 0), EE_EINVAL, "no key");
    const char *seven[7] = {"k1", "k2", "k3", "k4", "k5", "k6", "k7"};
    cr_expect_eq(ee__counters_prepared_init(&p, c, seven, 7), EE_EINVAL, "more than 6 keys");
    cr_expect(strstr(ee_error_last_message(), "1..6") != NULL, "%s", ee_error_last_message());
    cr_expect_eq(ee__counters_prepared_init(&p, c, seven, 6), EE_OK, "six keys: %s",
                 ee_error_last_message());
    const char *empty[2] = {"a", ""};
    cr_expect_eq(ee__counters_prepared_init(&p, c, empty, 2), EE_EINVAL, "an empty key");
    const char *ctl[1] = {"a\x01b"};
    cr_expect_eq(ee__counters_prepared_init(&p, c, ctl, 1), EE_EINVAL, "a control character");
    const char *none[2] = {"a", NULL};
    cr_expect_eq(ee__counters_prepared_init(&p, c, none, 2), EE_EINVAL, "a NULL key");
    const char *twice[3] = {"a", "b", "a"};
    cr_expect_eq(ee__counters_prepared_init(&p, c, twice, 3), EE_EINVAL, "a repeated key");
    cr_expect(strstr(ee_error_last_message(), "repeated") != NULL, "%s",
              ee_error_last_message());
    /* Three keys of 200 bytes: 603 bytes with their terminators. */
    char big[3][201];
    for (int i = 0; i < 3; i++) {
        memset(big[i], 'a' + i, 200);
        big[i][200] = '\0';
    }
    const char *bigs[3] = {big[0], big[1], big[2]};
    cr_expect_eq(ee__counters_prepared_init(&p, c, bigs, 2), EE_OK, "402 bytes fit: %s",
                 ee_error_last_message());
    cr_expect_eq(ee__counters_prepared_init(&p, c, bigs, 3), EE_EINVAL, "603 bytes do not");
    /* A failed init leaves nothing usable. */
    ee_counter_req r = req("a", 1, 1);
    int64_t lease = LEASE;
    cr_expect_eq(ee__counters_prepared_set(&p, &r, &lease, 1, T0), EE_EINVAL);
    ee_counter_result res[1];
    int g = -1;
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 1, 0, T0, res, &g), EE_EINVAL);
    cr_expect_eq(g, 0);
    ee_counters_free(c);
}

Test(prepared, set_checks_the_requests_against_the_keys)
{
    ee__counters_prepared p;
    ee_counters *c = two_set(&p);
    ee_counter_req reqs[4] = {req(keys3[0], 1, 10), req(keys3[1], 1, 10), req(keys3[2], 1, 10),
                              req("eeq/conc/w", 1, 10)};
    int64_t leases[4] = {LEASE, LEASE, LEASE, LEASE};
    cr_expect_eq(ee__counters_prepared_set(NULL, reqs, leases, 2, T0), EE_EINVAL);
    cr_expect_eq(ee__counters_prepared_set(&p, NULL, leases, 2, T0), EE_EINVAL);
    cr_expect_eq(ee__counters_prepared_set(&p, reqs, NULL, 2, T0), EE_EINVAL);
    cr_expect_eq(ee__counters_prepared_set(&p, reqs, leases, 0, T0), EE_EINVAL, "no request");
    cr_expect_eq(ee__counters_prepared_set(&p, reqs, leases, 4, T0), EE_EINVAL,
                 "four requests on three keys");
    /* A key that was not prepared, even with a count that fits. */
    ee_counter_req other[2] = {req(keys3[0], 1, 10), req("eeq/conc/w", 1, 10)};
    cr_expect_eq(ee__counters_prepared_set(&p, other, leases, 2, T0), EE_EINVAL);
    cr_expect(strstr(ee_error_last_message(), "not one of the prepared keys") != NULL, "%s",
              ee_error_last_message());
    ee_counter_req twice[2] = {req(keys3[1], 1, 10), req(keys3[1], 1, 10)};
    cr_expect_eq(ee__counters_prepared_set(&p, twice, leases, 2, T0), EE_EINVAL);
    /* Numbers, as the checked call checks them. */
    ee_counter_req zero[1] = {req(keys3[0], 0, 10)};
    cr_expect_eq(ee__counters_prepared_set(&p, zero, leases, 1, T0), EE_EINVAL, "n = 0");
    ee_counter_req neg[1] = {req(keys3[0], 1, -1)};
    cr_expect_eq(ee__counters_prepared_set(&p, neg, leases, 1, T0), EE_EINVAL, "limit < 0");
    ee_counter_req ended[1] = {req(keys3[0], 1, 10)};
    ended[0].window_end_ms = T0;
    cr_expect_eq(ee__counters_prepared_set(&p, ended, leases, 1, T0), EE_EINVAL,
                 "a window that ends now");
    int64_t no_lease[1] = {0};
    cr_expect_eq(ee__counters_prepared_set(&p, reqs, no_lease, 1, T0), EE_EINVAL, "lease 0");
    /* After a failed set no request is set: reserving is a state error,
     * and nothing is reserved. */
    ee_counter_result res[3];
    int g = -1;
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 1, 0, T0, res, &g), EE_ESTATE);
    cr_expect_eq(g, 0);
    cr_expect_eq(value_of(c, keys3[0], T0), 0);
    /* A good set makes it usable again. */
    cr_assert_eq(ee__counters_prepared_set(&p, reqs, leases, 3, T0), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 3, 0, T0, res, &g), EE_OK);
    cr_expect_eq(g, 1);
    cr_expect_eq(value_of(c, keys3[2], T0), 1);
    ee_counters_free(c);
}

Test(prepared, reserve_checks_each_call_and_changes_nothing_when_refused)
{
    ee__counters_prepared p;
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_memory_new(&c), EE_OK);
    ee_counter_result res[3];
    int g = -1;
    /* Zeroed storage was never initialised. */
    memset(&p, 0, sizeof p);
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 1, 0, T0, res, &g), EE_EINVAL);
    cr_expect_eq(g, 0);
    /* Initialised, no request set. */
    cr_assert_eq(ee__counters_prepared_init(&p, c, keys3, 3), EE_OK);
    g = -1;
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 1, 0, T0, res, &g), EE_ESTATE);
    cr_expect_eq(g, 0);
    ee_counters_free(c);

    c = two_set(&p);
    g = -1;
    cr_expect_eq(ee__counters_prepared_reserve(NULL, c, 1, 0, T0, res, &g), EE_EINVAL);
    cr_expect_eq(g, 0);
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 1, 0, T0, NULL, &g), EE_EINVAL);
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 1, 0, T0, res, NULL), EE_EINVAL);
    /* How many requests: 1..the two set. */
    g = -1;
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 0, 0, T0, res, &g), EE_EINVAL);
    cr_expect_eq(g, 0);
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 3, 0, T0, res, &g), EE_EINVAL,
                 "three of two set");
    cr_expect(strstr(ee_error_last_message(), "3 requests of 2") != NULL, "%s",
              ee_error_last_message());
    /* The call's amount: 0 or 1..2^53-1. */
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 2, -1, T0, res, &g), EE_EINVAL);
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 2, EE_COUNTERS_VALUE_MAX + 1, T0, res, &g),
                 EE_EINVAL);
    /* Other counters, or none: the handles and the direct path belong to
     * the counters it was prepared on. */
    ee_counters *other = NULL;
    cr_assert_eq(ee_counters_memory_new(&other), EE_OK);
    g = -1;
    cr_expect_eq(ee__counters_prepared_reserve(&p, other, 1, 0, T0, res, &g), EE_EINVAL);
    cr_expect_eq(g, 0);
    cr_expect(strstr(ee_error_last_message(), "not the ones") != NULL, "%s",
              ee_error_last_message());
    cr_expect_eq(ee__counters_prepared_reserve(&p, NULL, 1, 0, T0, res, &g), EE_EINVAL);
    cr_expect_eq(value_of(other, keys3[0], T0), 0);
    ee_counters_free(other);
    /* None of that reserved anything; a good call does. */
    cr_expect_eq(value_of(c, keys3[0], T0), 0);
    cr_expect_eq(value_of(c, keys3[1], T0), 0);
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 2, EE_COUNTERS_VALUE_MAX, T0, res, &g),
                 EE_OK);
    cr_expect_eq(g, 0, "2^53-1 on a limit of 10 is refused, not an error");
    cr_expect_eq(res[1].fits, 0);
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 2, 3, T0, res, &g), EE_OK);
    cr_expect_eq(g, 1);
    cr_expect_eq(value_of(c, keys3[0], T0), 1);
    cr_expect_eq(value_of(c, keys3[1], T0), 3);
    ee_counters_free(c);
}

Test(prepared, a_clock_outside_the_checked_range_takes_the_checked_path)
{
    ee__counters_prepared p;
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_memory_new(&c), EE_OK);
    cr_assert_eq(ee__counters_prepared_init(&p, c, keys3, 2), EE_OK);
    ee_counter_req reqs[2] = {req(keys3[0], 1, 10), req(keys3[1], 1, 10)};
    reqs[0].window_end_ms = T0 + 5000;
    reqs[1].window_ms = EE_COUNTERS_TIME_MAX - T0 - 10000; /* runs to 2^53-1 from T0 + 10000 */
    int64_t leases[2] = {1000, 1000};
    cr_assert_eq(ee__counters_prepared_set(&p, reqs, leases, 2, T0), EE_OK, "%s",
                 ee_error_last_message());
    ee_counter_result res[2];
    int g = -1;
    /* Before the time it was set at (a clock moved back): reserved all the
     * same, as the checked call would. */
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 2, 0, T0 - 1000, res, &g), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(g, 1);
    cr_expect_eq(value_of(c, keys3[0], T0 - 1000), 1);
    /* At the first request's window end: no longer valid. */
    g = -1;
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 2, 0, T0 + 5000, res, &g), EE_EINVAL);
    cr_expect_eq(g, 0);
    /* The second request alone is valid until its window length would run
     * past 2^53-1. */
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 2, 0, T0 + 4999, res, &g), EE_OK);
    cr_expect_eq(g, 1);
    ee_counter_req late[1] = {reqs[1]};
    cr_assert_eq(ee__counters_prepared_set(&p, late, leases, 1, T0), EE_OK);
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 1, 0, T0 + 10000, res, &g), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 1, 0, T0 + 10001, res, &g), EE_EINVAL);
    cr_expect_eq(g, 0);
    ee_counters_free(c);
}

/* ---- a custom table: the checked path, with the call's amounts ------------------------- */

typedef struct {
    int calls;
    size_t count;
    int64_t n[4], leases[4];
} seen;

static ee_status seen_reserve_leased(void *ctx, const ee_counter_req *reqs,
                                     const int64_t *leases, size_t count, int64_t now,
                                     ee_counter_result *res, int *granted)
{
    (void)now;
    seen *s = ctx;
    s->calls++;
    s->count = count;
    for (size_t i = 0; i < count && i < 4; i++) {
        s->n[i] = reqs[i].n;
        s->leases[i] = leases[i];
        res[i].resv_id = 100 + i;
        res[i].fits = 1;
    }
    *granted = 1;
    return EE_OK;
}

static void custom_case(unsigned flags)
{
    seen s;
    memset(&s, 0, sizeof s);
    ee_counters_backend t;
    memset(&t, 0, sizeof t);
    t.version = 2;
    t.flags = flags;
    t.reserve_leased = seen_reserve_leased;
    ee_counters *c = NULL;
    cr_assert_eq(ee_counters_new_custom(&c, &t, &s), EE_OK);
    ee__counters_prepared p;
    cr_assert_eq(ee__counters_prepared_init(&p, c, keys3, 3), EE_OK, "%s",
                 ee_error_last_message());
    ee_counter_req reqs[3] = {req(keys3[0], 1, 10), req(keys3[1], 2, 10), req(keys3[2], 5, 99)};
    int64_t leases[3] = {1000, 2000, 3000};
    cr_assert_eq(ee__counters_prepared_set(&p, reqs, leases, 3, T0), EE_OK);
    ee_counter_result res[3];
    int g = -1;
    cr_assert_eq(ee__counters_prepared_reserve(&p, c, 3, 77, T0, res, &g), EE_OK, "%s",
                 ee_error_last_message());
    cr_expect_eq(g, 1);
    cr_expect_eq(s.calls, 1);
    cr_expect_eq(s.count, 3);
    cr_expect_eq(s.n[0], 1);
    cr_expect_eq(s.n[1], 2);
    cr_expect_eq(s.n[2], 77, "the call's amount on the last request");
    cr_expect_eq(s.leases[2], 3000);
    cr_expect_eq(res[2].resv_id, 102);
    cr_assert_eq(ee__counters_prepared_reserve(&p, c, 3, 0, T0, res, &g), EE_OK);
    cr_expect_eq(s.n[2], 5, "the amount set, once the call that changed it is over");
    cr_assert_eq(ee__counters_prepared_reserve(&p, c, 2, 9, T0, res, &g), EE_OK);
    cr_expect_eq(s.count, 2);
    cr_expect_eq(s.n[1], 9, "the last request sent is the second");
    cr_assert_eq(ee__counters_prepared_reserve(&p, c, 2, 0, T0, res, &g), EE_OK);
    cr_expect_eq(s.n[1], 2);
    /* Refused calls never reach the table. */
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 4, 0, T0, res, &g), EE_EINVAL);
    cr_expect_eq(s.calls, 4);
    ee_counters_free(c);
}

Test(prepared, a_custom_table_gets_the_requests_through_the_checked_path)
{
    custom_case(EE_COUNTERS_THREAD_SAFE);
}

Test(prepared, a_custom_table_that_is_not_thread_safe_too)
{
    custom_case(0);
}
