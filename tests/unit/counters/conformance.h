/*
 * The counters conformance suite, written once and included by one test
 * file per backend (tests/unit/counters/{memory,sqlite}.c,
 * tests/integration/counters_{postgres,redis}.c). Before including it, a
 * file defines:
 *
 *   CONF_SHARED       1 when two handles opened by conf_open() see the same
 *                     counters (sqlite, postgres, redis), 0 otherwise;
 *   void conf_open(ee_counters **out)
 *                     open a handle (asserting success). For shared
 *                     backends every handle of one test process reaches the
 *                     same store, also from a forked child.
 *
 * Keys carry a prefix unique to the test process (pid and random bytes), so
 * test files running at once against one server never collide.
 */
#ifndef EE_TESTS_COUNTERS_CONFORMANCE_H
#define EE_TESTS_COUNTERS_CONFORMANCE_H

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "counters/counters_internal.h"
#include "execengine/counters.h"

static void conf_open(ee_counters **out);

/* An arbitrary fixed "now": time only moves when a test moves it. */
#define T0 INT64_C(1700000000000)
#define LEASE INT64_C(600000)

/* ---- helpers -------------------------------------------------------------- */

/* "<prefix>:<name>" with a prefix unique to this test process. */
static const char *conf_key(const char *name)
{
    static char prefix[64];
    static char bufs[8][256];
    static unsigned next;
    if (prefix[0] == '\0') {
        unsigned r = 0;
        FILE *f = fopen("/dev/urandom", "rb");
        if (f != NULL) {
            if (fread(&r, sizeof r, 1, f) != 1)
                r = 0;
            fclose(f);
        }
        snprintf(prefix, sizeof prefix, "t%ld-%08x", (long)getpid(), r ^ (unsigned)time(NULL));
    }
    char *b = bufs[next++ % 8];
    snprintf(b, 256, "%s:%s", prefix, name);
    return b;
}

static ee_counter_req req_of(const char *key, int64_t n, int64_t limit)
{
    ee_counter_req r;
    memset(&r, 0, sizeof r);
    r.key = key;
    r.n = n;
    r.limit = limit;
    return r;
}

/* Reserve and return the id (0 if refused); the result goes to *res if given. */
static uint64_t try_reserve(ee_counters *c, ee_counter_req r, int64_t lease, int64_t now,
                            ee_counter_result *res)
{
    ee_counter_result tmp;
    if (res == NULL)
        res = &tmp;
    int granted = -1;
    ee_status st = ee_counters_reserve(c, &r, lease, now, res, &granted);
    cr_assert_eq(st, EE_OK, "reserve %s: %s (%s)", r.key, ee_status_name(st),
                 ee_error_last_message());
    cr_assert(granted == 0 || granted == 1);
    if (granted) {
        cr_assert_neq(res->resv_id, 0);
        cr_assert_eq(res->fits, 1);
        return res->resv_id;
    }
    cr_assert_eq(res->resv_id, 0);
    return 0;
}

static ee_counter_result get_now(ee_counters *c, const char *key, int64_t now)
{
    ee_counter_result r;
    ee_status st = ee_counters_get(c, key, now, &r);
    cr_assert_eq(st, EE_OK, "get %s: %s (%s)", key, ee_status_name(st), ee_error_last_message());
    return r;
}

static void expect_value(ee_counters *c, const char *key, int64_t now, int64_t value,
                         int64_t committed)
{
    ee_counter_result r = get_now(c, key, now);
    cr_expect_eq(r.value, value, "%s: value %lld, expected %lld", key, (long long)r.value,
                 (long long)value);
    cr_expect_eq(r.committed, committed, "%s: committed %lld, expected %lld", key,
                 (long long)r.committed, (long long)committed);
}

/* ---- reserve, commit, release ------------------------------------------------------ */

Test(conformance, grants_until_the_limit_then_refuses)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("limit");
    for (int i = 0; i < 3; i++)
        cr_assert_neq(try_reserve(c, req_of(k, 1, 3), LEASE, T0, NULL), 0);
    ee_counter_result r;
    cr_expect_eq(try_reserve(c, req_of(k, 1, 3), LEASE, T0, &r), 0);
    cr_expect_eq(r.fits, 0);
    cr_expect_eq(r.value, 3);
    cr_expect_eq(r.limit, 3);
    cr_expect_eq(r.committed, 0);
    cr_expect_eq(r.retry_at_ms, T0 + LEASE, "the earliest lease expiry frees room");
    expect_value(c, k, T0, 3, 0);
    ee_counters_free(c);
}

Test(conformance, never_past_the_limit_with_larger_amounts)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("amounts");
    ee_counter_result r;
    cr_assert_neq(try_reserve(c, req_of(k, 7, 10), LEASE, T0, &r), 0);
    cr_expect_eq(r.value, 7);
    cr_expect_eq(try_reserve(c, req_of(k, 4, 10), LEASE, T0, &r), 0);
    cr_expect_eq(r.value, 7);
    cr_assert_neq(try_reserve(c, req_of(k, 3, 10), LEASE, T0, &r), 0);
    cr_expect_eq(r.value, 10);
    cr_expect_eq(try_reserve(c, req_of(k, 11, 10), LEASE, T0, &r), 0);
    cr_expect_eq(r.retry_at_ms, 0, "n > limit never fits");
    cr_expect_eq(try_reserve(c, req_of(conf_key("zero"), 1, 0), LEASE, T0, &r), 0);
    expect_value(c, k, T0, 10, 0);
    ee_counters_free(c);
}

Test(conformance, commit_keeps_the_value_release_gives_it_back)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("commit");
    uint64_t a = try_reserve(c, req_of(k, 2, 5), LEASE, T0, NULL);
    uint64_t b = try_reserve(c, req_of(k, 3, 5), LEASE, T0, NULL);
    cr_assert(a != 0 && b != 0 && a != b);
    cr_assert_eq(ee_counters_commit(c, k, a, EE_COUNTERS_ALL, T0 + 1), EE_OK);
    expect_value(c, k, T0 + 1, 5, 2);
    cr_assert_eq(ee_counters_release(c, k, b, T0 + 2), EE_OK);
    expect_value(c, k, T0 + 2, 2, 2);
    cr_assert_neq(try_reserve(c, req_of(k, 3, 5), LEASE, T0 + 3, NULL), 0);
    expect_value(c, k, T0 + 3, 5, 2);
    ee_counters_free(c);
}

Test(conformance, partial_commit_gives_back_the_rest)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("partial");
    uint64_t a = try_reserve(c, req_of(k, 10, 10), LEASE, T0, NULL);
    cr_assert_neq(a, 0);
    cr_expect_eq(ee_counters_commit(c, k, a, 11, T0), EE_EINVAL, "more than reserved");
    expect_value(c, k, T0, 10, 0);
    cr_assert_eq(ee_counters_commit(c, k, a, 4, T0), EE_OK);
    expect_value(c, k, T0, 4, 4);
    uint64_t b = try_reserve(c, req_of(k, 6, 10), LEASE, T0, NULL);
    cr_assert_neq(b, 0);
    cr_assert_eq(ee_counters_commit(c, k, b, 0, T0), EE_OK, "committing 0 = releasing");
    expect_value(c, k, T0, 4, 4);
    ee_counters_free(c);
}

Test(conformance, finished_or_unknown_reservations_are_not_found)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("finished");
    const char *other = conf_key("other");
    uint64_t a = try_reserve(c, req_of(k, 1, 5), LEASE, T0, NULL);
    uint64_t b = try_reserve(c, req_of(k, 1, 5), LEASE, T0, NULL);
    uint64_t o = try_reserve(c, req_of(other, 1, 5), LEASE, T0, NULL);
    cr_assert(a && b && o);
    cr_assert_eq(ee_counters_commit(c, k, a, EE_COUNTERS_ALL, T0), EE_OK);
    cr_expect_eq(ee_counters_commit(c, k, a, EE_COUNTERS_ALL, T0), EE_ENOTFOUND);
    cr_expect_eq(ee_counters_release(c, k, a, T0), EE_ENOTFOUND);
    cr_expect_eq(ee_counters_renew(c, k, a, LEASE, T0), EE_ENOTFOUND);
    cr_assert_eq(ee_counters_release(c, k, b, T0), EE_OK);
    cr_expect_eq(ee_counters_release(c, k, b, T0), EE_ENOTFOUND);
    cr_expect_eq(ee_counters_commit(c, k, b, EE_COUNTERS_ALL, T0), EE_ENOTFOUND);
    cr_expect_eq(ee_counters_commit(c, k, o, EE_COUNTERS_ALL, T0), EE_ENOTFOUND,
                 "an id of another counter");
    cr_expect_eq(ee_counters_release(c, k, UINT64_C(0x7fff00000000ff), T0), EE_ENOTFOUND);
    cr_expect_eq(ee_counters_release(c, k, 0, T0), EE_ENOTFOUND);
    cr_expect(strlen(ee_error_last_message()) > 0);
    expect_value(c, k, T0, 1, 1);
    expect_value(c, other, T0, 1, 0);
    ee_counters_free(c);
}

/* ---- leases --------------------------------------------------------------------- */

Test(conformance, an_uncommitted_reservation_comes_back_after_its_lease)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("lease");
    uint64_t a = try_reserve(c, req_of(k, 1, 1), 1000, T0, NULL);
    cr_assert_neq(a, 0);
    ee_counter_result r;
    cr_expect_eq(try_reserve(c, req_of(k, 1, 1), 1000, T0 + 999, &r), 0);
    cr_expect_eq(r.retry_at_ms, T0 + 1000);
    expect_value(c, k, T0 + 999, 1, 0);
    expect_value(c, k, T0 + 1000, 0, 0);
    cr_expect_eq(ee_counters_commit(c, k, a, EE_COUNTERS_ALL, T0 + 1000), EE_ENOTFOUND,
                 "an expired reservation is never committed");
    expect_value(c, k, T0 + 1000, 0, 0);
    uint64_t b = try_reserve(c, req_of(k, 1, 1), 1000, T0 + 1000, NULL);
    cr_assert_neq(b, 0);
    cr_assert_eq(ee_counters_commit(c, k, b, EE_COUNTERS_ALL, T0 + 1500), EE_OK);
    expect_value(c, k, T0 + 5000, 1, 1);
    ee_counters_free(c);
}

Test(conformance, reserve_leased_gives_each_request_its_own_lease)
{
    /* The quota module's admission: a rate unit held for its hour beside a
     * concurrency slot held for the run's lease, in one all-or-none call. */
    ee_counters *c;
    conf_open(&c);
    char ka[256], kb[256];
    snprintf(ka, sizeof ka, "%s", conf_key("leased-a"));
    snprintf(kb, sizeof kb, "%s", conf_key("leased-b"));
    ee_counter_req reqs[2] = {req_of(ka, 1, 1), req_of(kb, 1, 1)};
    void *h[2];
    cr_assert_eq(ee__counters_resolve(c, ka, &h[0]), EE_OK, "%s", ee_error_last_message());
    cr_assert_eq(ee__counters_resolve(c, kb, &h[1]), EE_OK, "%s", ee_error_last_message());
    int64_t leases[2] = {1000, 5000};
    ee_counter_result res[2];
    int g = -1;
    cr_assert_eq(ee__counters_reserve_leased(c, reqs, h, leases, 2, T0, res, &g), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(g, 1);
    cr_assert(res[0].resv_id != 0 && res[1].resv_id != 0);
    expect_value(c, ka, T0 + 999, 1, 0);
    expect_value(c, ka, T0 + 1000, 0, 0);
    expect_value(c, kb, T0 + 1000, 1, 0);
    cr_expect_eq(ee_counters_commit(c, ka, res[0].resv_id, EE_COUNTERS_ALL, T0 + 1000),
                 EE_ENOTFOUND, "the short lease ended");
    cr_expect_eq(ee_counters_release(c, kb, res[1].resv_id, T0 + 4999), EE_OK,
                 "the long one is still there");
    expect_value(c, kb, T0 + 4999, 0, 0);

    /* The public call (no handles), and all or none: b full refuses a too. */
    cr_assert_eq(ee_counters_reserve_many_leased(c, reqs, leases, 2, T0 + 6000, res, &g), EE_OK);
    cr_assert_eq(g, 1);
    cr_assert_eq(ee_counters_commit(c, kb, res[1].resv_id, EE_COUNTERS_ALL, T0 + 6001), EE_OK);
    cr_assert_eq(ee__counters_reserve_leased(c, reqs, h, leases, 2, T0 + 7000, res, &g), EE_OK);
    cr_expect_eq(g, 0);
    cr_expect_eq(res[0].fits, 1);
    cr_expect_eq(res[1].fits, 0);
    expect_value(c, ka, T0 + 7000, 0, 0);
    expect_value(c, kb, T0 + 7000, 1, 1);

    /* Bad input changes nothing. */
    int64_t bad[2] = {1000, 0};
    cr_expect_eq(ee__counters_reserve_leased(c, reqs, h, bad, 2, T0 + 7000, res, &g), EE_EINVAL);
    void *same[2] = {h[0], h[0]};
    ee_counter_req twice[2] = {req_of(ka, 1, 5), req_of(ka, 1, 5)};
    cr_expect_eq(ee__counters_reserve_leased(c, twice, same, leases, 2, T0 + 7000, res, &g),
                 EE_EINVAL);
    cr_expect_eq(ee__counters_reserve_leased(c, twice, NULL, leases, 2, T0 + 7000, res, &g),
                 EE_EINVAL);
    void *none = NULL;
    cr_expect_eq(ee__counters_resolve(c, "", &none), EE_EINVAL);
    expect_value(c, ka, T0 + 7000, 0, 0);
    ee_counters_free(c);
}

Test(conformance, mixed_amounts_expire_and_finish_exactly)
{
    /* Amounts of 1 beside larger ones (backends may store them apart). */
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("mixed");
    uint64_t one = try_reserve(c, req_of(k, 1, 10), 1000, T0, NULL);
    uint64_t three = try_reserve(c, req_of(k, 3, 10), 2000, T0, NULL);
    uint64_t two = try_reserve(c, req_of(k, 2, 10), 3000, T0, NULL);
    uint64_t last = try_reserve(c, req_of(k, 1, 10), 4000, T0, NULL);
    cr_assert(one && three && two && last);
    expect_value(c, k, T0, 7, 0);
    ee_counter_result r;
    /* 7 + 6 > 10: 3 must go, and the first to go with 3 are 1 + 3 at T0 + 2000. */
    cr_expect_eq(try_reserve(c, req_of(k, 6, 10), 1000, T0 + 10, &r), 0);
    cr_expect_eq(r.retry_at_ms, T0 + 2000);
    cr_expect_eq(r.value, 7);
    expect_value(c, k, T0 + 1000, 6, 0);
    cr_expect_eq(ee_counters_release(c, k, one, T0 + 1000), EE_ENOTFOUND);
    cr_expect_eq(ee_counters_commit(c, k, two, 1, T0 + 1500), EE_OK, "%s",
                 ee_error_last_message());
    expect_value(c, k, T0 + 1500, 5, 1);
    expect_value(c, k, T0 + 2000, 2, 1);
    cr_expect_eq(ee_counters_commit(c, k, three, EE_COUNTERS_ALL, T0 + 2000), EE_ENOTFOUND);
    cr_expect_eq(ee_counters_commit(c, k, last, EE_COUNTERS_ALL, T0 + 2500), EE_OK);
    expect_value(c, k, T0 + 9000, 2, 2);
    uint64_t big = try_reserve(c, req_of(k, 8, 10), 1000, T0 + 9000, NULL);
    cr_assert_neq(big, 0);
    cr_expect_eq(ee_counters_release(c, k, big, T0 + 9001), EE_OK);
    expect_value(c, k, T0 + 9001, 2, 2);
    ee_counters_free(c);
}

Test(conformance, leases_in_any_order_expire_in_order)
{
    /* Leases arriving out of expiry order, renewals to the same, a later
     * and an earlier expiry: each reservation leaves exactly once, when its
     * own lease ends (backends may keep in-order leases apart). */
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("order");
    uint64_t a = try_reserve(c, req_of(k, 1, 10), 1000, T0, NULL);
    uint64_t b = try_reserve(c, req_of(k, 2, 10), 2000, T0, NULL);
    cr_assert(a && b);
    cr_assert_eq(ee_counters_renew(c, k, a, 1000, T0), EE_OK, "the same expiry again");
    cr_assert_eq(ee_counters_renew(c, k, a, 2000, T0 + 500), EE_OK, "later: T0 + 2500");
    expect_value(c, k, T0 + 1999, 3, 0);
    expect_value(c, k, T0 + 2000, 1, 0);
    expect_value(c, k, T0 + 2499, 1, 0);
    expect_value(c, k, T0 + 2500, 0, 0);

    uint64_t d = try_reserve(c, req_of(k, 1, 10), 5000, T0 + 3000, NULL); /* ends T0 + 8000 */
    uint64_t e = try_reserve(c, req_of(k, 2, 10), 1000, T0 + 3000, NULL); /* T0 + 4000 */
    uint64_t f = try_reserve(c, req_of(k, 4, 10), 3000, T0 + 3000, NULL); /* T0 + 6000 */
    cr_assert(d && e && f);
    cr_assert_eq(ee_counters_renew(c, k, f, 100, T0 + 3000), EE_OK, "earlier: T0 + 3100");
    expect_value(c, k, T0 + 3099, 7, 0);
    expect_value(c, k, T0 + 3100, 3, 0);
    expect_value(c, k, T0 + 4000, 1, 0);
    cr_expect_eq(ee_counters_commit(c, k, d, EE_COUNTERS_ALL, T0 + 7999), EE_OK);
    expect_value(c, k, T0 + 9000, 1, 1);
    /* Empty again: in-order leases after out-of-order ones. */
    uint64_t g = try_reserve(c, req_of(k, 1, 10), 1000, T0 + 9000, NULL);
    uint64_t h = try_reserve(c, req_of(k, 1, 10), 2000, T0 + 9000, NULL);
    cr_assert(g && h);
    cr_expect_eq(ee_counters_release(c, k, g, T0 + 9001), EE_OK);
    expect_value(c, k, T0 + 9002, 2, 1);
    expect_value(c, k, T0 + 11000, 1, 1);
    ee_counters_free(c);
}

/* One reservation that stays while thousands come and go: renewed with
 * the others' lease length (leases arrive in expiry order), or holding a
 * longer one (they do not). */
static void long_head(const char *name, int64_t head_lease, int renew_every)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key(name);
    uint64_t head = try_reserve(c, req_of(k, 1, 1000000), head_lease, T0, NULL);
    cr_assert_neq(head, 0);
    int rounds = CONF_SHARED ? 300 : 20000;
    for (int i = 0; i < rounds; i++) {
        int64_t now = T0 + 1 + i;
        if (i % renew_every == 0)
            cr_assert_eq(ee_counters_renew(c, k, head, head_lease, now), EE_OK, "round %d", i);
        uint64_t x = try_reserve(c, req_of(k, 1, 1000000), 60000, now, NULL);
        uint64_t y = try_reserve(c, req_of(k, 1, 1000000), 60000, now, NULL);
        cr_assert(x && y, "round %d", i);
        cr_assert_eq(ee_counters_commit(c, k, x, EE_COUNTERS_ALL, now), EE_OK);
        cr_assert_eq(ee_counters_release(c, k, y, now), EE_OK);
    }
    expect_value(c, k, T0 + rounds, 1 + rounds, rounds);
    cr_assert_eq(ee_counters_release(c, k, head, T0 + rounds + 1), EE_OK);
    expect_value(c, k, T0 + rounds + 1, rounds, rounds);
    ee_counters_free(c);
}

Test(conformance, one_long_lease_among_many_short_ones)
{
    long_head("longhead-inorder", 60000, 1);
    long_head("longhead-longer", 3600000, 4);
}

Test(conformance, renew_extends_a_lease)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("renew");
    uint64_t a = try_reserve(c, req_of(k, 1, 1), 1000, T0, NULL);
    cr_assert_neq(a, 0);
    cr_assert_eq(ee_counters_renew(c, k, a, 1000, T0 + 500), EE_OK);
    ee_counter_result r;
    cr_expect_eq(try_reserve(c, req_of(k, 1, 1), 1000, T0 + 1400, &r), 0);
    cr_expect_eq(r.retry_at_ms, T0 + 1500);
    cr_assert_eq(ee_counters_renew(c, k, a, 100, T0 + 1400), EE_OK, "a shorter lease too");
    expect_value(c, k, T0 + 1499, 1, 0);
    expect_value(c, k, T0 + 1500, 0, 0);
    cr_expect_eq(ee_counters_renew(c, k, a, 1000, T0 + 1500), EE_ENOTFOUND);
    ee_counters_free(c);
}

Test(conformance, leases_make_a_sliding_window)
{
    /* The rate-limit pattern: reservations never committed, lease = window. */
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("sliding");
    const int64_t hour = 3600000;
    for (int i = 0; i < 3; i++)
        cr_assert_neq(try_reserve(c, req_of(k, 1, 3), hour, T0 + i * 600000, NULL), 0);
    ee_counter_result r;
    cr_expect_eq(try_reserve(c, req_of(k, 1, 3), hour, T0 + 1800000, &r), 0);
    cr_expect_eq(r.retry_at_ms, T0 + hour);
    cr_expect_eq(try_reserve(c, req_of(k, 1, 3), hour, T0 + hour - 1, &r), 0);
    cr_assert_neq(try_reserve(c, req_of(k, 1, 3), hour, T0 + hour, &r), 0);
    cr_expect_eq(try_reserve(c, req_of(k, 1, 3), hour, T0 + hour + 1, &r), 0);
    cr_expect_eq(r.retry_at_ms, T0 + 600000 + hour);
    cr_expect_eq(try_reserve(c, req_of(k, 2, 3), hour, T0 + hour + 1, &r), 0);
    cr_expect_eq(r.retry_at_ms, T0 + 1200000 + hour, "two must expire for n = 2");
    ee_counters_free(c);
}

/* ---- windows ------------------------------------------------------------------------ */

Test(conformance, a_window_length_rolls_over_when_now_moves)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("window");
    const int64_t w = 60000;
    ee_counter_req q = req_of(k, 1, 2);
    q.window_ms = w;
    ee_counter_result r;
    for (int i = 0; i < 2; i++) {
        uint64_t id = try_reserve(c, q, LEASE, T0 + i, &r);
        cr_assert_neq(id, 0);
        cr_assert_eq(ee_counters_commit(c, k, id, EE_COUNTERS_ALL, T0 + i), EE_OK);
    }
    cr_expect_eq(r.window_end_ms, T0 + w);
    cr_expect_eq(try_reserve(c, q, LEASE, T0 + w - 1, &r), 0);
    cr_expect_eq(r.retry_at_ms, T0 + w, "committed only drops when the window ends");
    cr_expect_eq(r.window_end_ms, T0 + w);
    ee_counter_result g = get_now(c, k, T0 + w - 1);
    cr_expect_eq(g.value, 2);
    cr_expect_eq(g.window_end_ms, T0 + w);
    g = get_now(c, k, T0 + w);
    cr_expect_eq(g.value, 0, "an ended window reads as 0");
    cr_expect_eq(g.window_end_ms, 0);
    cr_assert_neq(try_reserve(c, q, LEASE, T0 + w + 5, &r), 0);
    cr_expect_eq(r.value, 1);
    cr_expect_eq(r.committed, 0);
    cr_expect_eq(r.window_end_ms, T0 + w + 5 + w, "a new window starts at its first use");
    ee_counters_free(c);
}

Test(conformance, an_absolute_window_end_and_old_reservations)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("absolute");
    ee_counter_req q = req_of(k, 1, 1);
    q.window_end_ms = T0 + 1000;
    ee_counter_result r;
    uint64_t old = try_reserve(c, q, LEASE, T0, &r);
    cr_assert_neq(old, 0);
    cr_expect_eq(r.window_end_ms, T0 + 1000);
    q.window_end_ms = T0 + 5000; /* ignored while the first window runs */
    cr_expect_eq(try_reserve(c, q, LEASE, T0 + 999, &r), 0);
    cr_expect_eq(r.window_end_ms, T0 + 1000);
    cr_expect_eq(r.retry_at_ms, T0 + 1000);
    uint64_t fresh = try_reserve(c, q, LEASE, T0 + 1000, &r);
    cr_assert_neq(fresh, 0, "the old window's reservation is gone with it");
    cr_expect_eq(r.window_end_ms, T0 + 5000);
    cr_expect_eq(ee_counters_commit(c, k, old, EE_COUNTERS_ALL, T0 + 1001), EE_ENOTFOUND);
    expect_value(c, k, T0 + 1001, 1, 0);
    cr_assert_eq(ee_counters_commit(c, k, fresh, EE_COUNTERS_ALL, T0 + 1002), EE_OK);
    expect_value(c, k, T0 + 4999, 1, 1);
    ee_counters_free(c);
}

Test(conformance, without_a_window_values_persist)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("forever");
    uint64_t a = try_reserve(c, req_of(k, 3, 3), LEASE, T0, NULL);
    cr_assert_eq(ee_counters_commit(c, k, a, EE_COUNTERS_ALL, T0), EE_OK);
    ee_counter_result r;
    int64_t later = T0 + INT64_C(400) * 24 * 3600 * 1000;
    cr_expect_eq(try_reserve(c, req_of(k, 1, 3), LEASE, later, &r), 0);
    cr_expect_eq(r.window_end_ms, 0);
    cr_expect_eq(r.retry_at_ms, 0, "committed never drops without a window");
    expect_value(c, k, later, 3, 3);
    expect_value(c, conf_key("never-used"), later, 0, 0);
    ee_counters_free(c);
}

/* ---- several counters at once ----------------------------------------------------- */

Test(conformance, reserve_many_grants_all_or_none)
{
    ee_counters *c;
    conf_open(&c);
    const char *ka = conf_key("many-a"), *kb = conf_key("many-b"), *kc = conf_key("many-c");
    uint64_t hold = try_reserve(c, req_of(kb, 1, 1), LEASE, T0, NULL);
    cr_assert_neq(hold, 0);
    ee_counter_req reqs[3] = {req_of(ka, 2, 5), req_of(kb, 1, 1), req_of(kc, 1, 9)};
    ee_counter_result res[3];
    int granted = -1;
    cr_assert_eq(ee_counters_reserve_many(c, reqs, 3, LEASE, T0, res, &granted), EE_OK);
    cr_expect_eq(granted, 0);
    cr_expect_eq(res[0].fits, 1);
    cr_expect_eq(res[1].fits, 0);
    cr_expect_eq(res[2].fits, 1);
    cr_expect_eq(res[1].value, 1);
    cr_expect_eq(res[1].retry_at_ms, T0 + LEASE);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(res[i].resv_id, 0);
    expect_value(c, ka, T0, 0, 0);
    expect_value(c, kc, T0, 0, 0);
    cr_assert_eq(ee_counters_release(c, kb, hold, T0), EE_OK);
    cr_assert_eq(ee_counters_reserve_many(c, reqs, 3, LEASE, T0, res, &granted), EE_OK);
    cr_expect_eq(granted, 1);
    for (int i = 0; i < 3; i++) {
        cr_expect_neq(res[i].resv_id, 0);
        cr_expect_eq(res[i].fits, 1);
    }
    cr_expect_eq(res[0].value, 2);
    cr_expect_eq(res[1].value, 1);
    cr_expect_eq(res[2].limit, 9);
    cr_assert_eq(ee_counters_commit(c, ka, res[0].resv_id, 1, T0), EE_OK);
    cr_assert_eq(ee_counters_release(c, kb, res[1].resv_id, T0), EE_OK);
    expect_value(c, ka, T0, 1, 1);
    expect_value(c, kb, T0, 0, 0);
    expect_value(c, kc, T0, 1, 0);
    ee_counters_free(c);
}

/* ---- prepared reservations (counters/counters.h) ----------------------------------------- */

Test(conformance, a_prepared_reservation_reserves_as_the_checked_call_does)
{
    /* The quota module's shape: requests checked once, then reserved with
     * or without the last one, whose amount a call may set. */
    ee_counters *c;
    conf_open(&c);
    char ka[256], kb[256], kc[256];
    snprintf(ka, sizeof ka, "%s", conf_key("prep-a"));
    snprintf(kb, sizeof kb, "%s", conf_key("prep-b"));
    snprintf(kc, sizeof kc, "%s", conf_key("prep-c"));
    const char *keys[3] = {ka, kb, kc};
    ee__counters_prepared p;
    cr_assert_eq(ee__counters_prepared_init(&p, c, keys, 3), EE_OK, "%s",
                 ee_error_last_message());
    ee_counter_req reqs[3] = {req_of(ka, 1, 2), req_of(kb, 1, 5), req_of(kc, 1, 100)};
    reqs[1].window_end_ms = T0 + 10000;
    int64_t leases[3] = {1000, LEASE, LEASE};
    cr_assert_eq(ee__counters_prepared_set(&p, reqs, leases, 3, T0), EE_OK, "%s",
                 ee_error_last_message());
    ee_counter_result res[3];
    int g = -1;

    /* The first two only. */
    cr_assert_eq(ee__counters_prepared_reserve(&p, c, 2, 0, T0, res, &g), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(g, 1);
    cr_expect(res[0].resv_id != 0 && res[1].resv_id != 0);
    cr_expect_eq(res[1].window_end_ms, T0 + 10000);
    expect_value(c, ka, T0, 1, 0);
    expect_value(c, kb, T0, 1, 0);
    expect_value(c, kc, T0, 0, 0);

    /* All three, the last one with this call's amount. */
    cr_assert_eq(ee__counters_prepared_reserve(&p, c, 3, 40, T0 + 1, res, &g), EE_OK, "%s",
                 ee_error_last_message());
    cr_assert_eq(g, 1);
    cr_expect_eq(res[2].value, 40);
    expect_value(c, kc, T0 + 1, 40, 0);

    /* a is full: all or nothing. */
    cr_assert_eq(ee__counters_prepared_reserve(&p, c, 3, 0, T0 + 2, res, &g), EE_OK);
    cr_expect_eq(g, 0);
    cr_expect_eq(res[0].fits, 0);
    cr_expect_eq(res[2].fits, 1);
    expect_value(c, kb, T0 + 2, 2, 0);
    expect_value(c, kc, T0 + 2, 40, 0);

    /* a's first unit ended with its own lease; the amount of 40 was that
     * call's only: c takes the amount set (1). */
    cr_assert_eq(ee__counters_prepared_reserve(&p, c, 3, 0, T0 + 1000, res, &g), EE_OK);
    cr_expect_eq(g, 1);
    cr_expect_eq(res[0].value, 2);
    cr_expect_eq(res[2].value, 41);

    /* A call's amount past c's limit is refused on c, nothing taken. */
    cr_assert_eq(ee__counters_prepared_reserve(&p, c, 3, 60, T0 + 1001, res, &g), EE_OK);
    cr_expect_eq(g, 0);
    cr_expect_eq(res[0].fits, 1);
    cr_expect_eq(res[2].fits, 0);
    expect_value(c, ka, T0 + 1001, 1, 0);
    expect_value(c, kc, T0 + 1001, 41, 0);

    /* Other counters than the ones it was prepared on: refused, nothing
     * reserved anywhere. */
    ee_counters *other;
    conf_open(&other);
    g = -1;
    cr_expect_eq(ee__counters_prepared_reserve(&p, other, 2, 0, T0 + 1001, res, &g), EE_EINVAL);
    cr_expect_eq(g, 0);
    expect_value(c, ka, T0 + 1001, 1, 0);
    ee_counters_free(other);

    /* b's window has ended: the requests are no longer valid, as the checked
     * call says, and nothing is reserved. */
    g = -1;
    cr_expect_eq(ee__counters_prepared_reserve(&p, c, 2, 0, T0 + 10000, res, &g), EE_EINVAL);
    cr_expect_eq(g, 0);
    expect_value(c, ka, T0 + 10000, 0, 0);
    ee_counters_free(c);
}

/* ---- bad input ------------------------------------------------------------------------ */

Test(conformance, bad_input_is_refused_and_changes_nothing)
{
    ee_counters *c;
    conf_open(&c);
    const char *k = conf_key("bad");
    uint64_t a = try_reserve(c, req_of(k, 1, 5), LEASE, T0, NULL);
    cr_assert_neq(a, 0);
    char longkey[EE_COUNTERS_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey);
    memcpy(longkey, k, strlen(k)); /* unique to this run, like every key */
    longkey[EE_COUNTERS_KEY_MAX + 1] = '\0';
    ee_counter_result r;
    int g = 7;
    struct {
        ee_counter_req req;
        int64_t lease, now;
        const char *needle;
    } bad[] = {
        {req_of(longkey, 1, 5), LEASE, T0, "longer than 200"},
        {req_of("", 1, 5), LEASE, T0, "empty"},
        {req_of("a\nb", 1, 5), LEASE, T0, "control"},
        {req_of("0123456789\t123456789", 1, 5), LEASE, T0, "control"},
        {req_of("0123456789ab\x7f" "3456789", 1, 5), LEASE, T0, "control"},
        {req_of("\xff\xfe", 1, 5), LEASE, T0, "UTF-8"},
        {req_of(k, 1, -1), LEASE, T0, "limit -1"},
        {req_of(k, 0, 5), LEASE, T0, "n = 0"},
        {req_of(k, -3, 5), LEASE, T0, "n = -3"},
        {req_of(k, 1, 5), 0, T0, "lease_ms 0"},
        {req_of(k, 1, 5), LEASE, -1, "now_ms -1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(ee_counters_reserve(c, &bad[i].req, bad[i].lease, bad[i].now, &r, &g),
                     EE_EINVAL, "case %zu", i);
        cr_expect_eq(g, 0);
        cr_expect(strstr(ee_error_last_message(), bad[i].needle) != NULL,
                  "case %zu: message \"%s\" lacks \"%s\"", i, ee_error_last_message(),
                  bad[i].needle);
    }
    ee_counter_req q = req_of(k, 1, 5);
    q.window_end_ms = T0;
    cr_expect_eq(ee_counters_reserve(c, &q, LEASE, T0, &r, &g), EE_EINVAL, "window end = now");
    ee_counter_req two[2] = {req_of(k, 1, 5), req_of(k, 1, 5)};
    ee_counter_result res2[2];
    cr_expect_eq(ee_counters_reserve_many(c, two, 2, LEASE, T0, res2, &g), EE_EINVAL);
    cr_expect(strstr(ee_error_last_message(), "repeated") != NULL);
    cr_expect_eq(ee_counters_reserve_many(c, two, 0, LEASE, T0, res2, &g), EE_EINVAL);
    cr_expect_eq(ee_counters_commit(c, k, a, -2, T0), EE_EINVAL);
    cr_expect_eq(ee_counters_commit(c, longkey, a, 1, T0), EE_EINVAL);
    cr_expect_eq(ee_counters_get(c, longkey, T0, &r), EE_EINVAL);
    cr_expect_eq(ee_counters_get(c, k, T0, NULL), EE_EINVAL);
    /* A key of exactly the maximum length is fine. */
    longkey[EE_COUNTERS_KEY_MAX] = '\0';
    cr_expect_neq(try_reserve(c, req_of(longkey, 1, 1), LEASE, T0, NULL), 0);
    expect_value(c, k, T0, 1, 0);
    cr_assert_eq(ee_counters_commit(c, k, a, EE_COUNTERS_ALL, T0), EE_OK,
                 "the reservation survived the bad calls");
    ee_counters_free(c);
}

/* ---- threads in one process ----------------------------------------------------------- */

typedef struct {
    ee_counters *c;
    const char *key;
    int64_t limit;
    atomic_int *attempts;
    atomic_int *granted;
    atomic_int *errors;
    char *last_error; /* 256 bytes, shared */
} conf_worker;

static void conf_worker_failed(conf_worker *w, const char *what)
{
    atomic_fetch_add(w->errors, 1);
    snprintf(w->last_error, 256, "%s: %s", what, ee_error_last_message());
}

static void *conf_worker_run(void *p)
{
    conf_worker *w = p;
    ee_counter_req q = req_of(w->key, 1, w->limit);
    for (;;) {
        if (atomic_fetch_sub(w->attempts, 1) <= 0)
            return NULL;
        ee_counter_result r;
        int g = 0;
        if (ee_counters_reserve(w->c, &q, LEASE, T0, &r, &g) != EE_OK) {
            conf_worker_failed(w, "reserve");
            continue;
        }
        if (!g)
            continue;
        if (ee_counters_commit(w->c, w->key, r.resv_id, EE_COUNTERS_ALL, T0) != EE_OK)
            conf_worker_failed(w, "commit");
        atomic_fetch_add(w->granted, 1);
    }
}

/* Shared between the processes of a contention run (anonymous shared map). */
typedef struct {
    atomic_int attempts, granted, errors;
    char last_error[256];
} conf_tally;

/* `threads` threads in this process race reserve(1)+commit. They share
 * `one` if given; otherwise each opens its own handle (as separate hosts
 * would). */
static void conf_race(conf_tally *t, const char *key, int64_t limit, int threads,
                      ee_counters *one)
{
    pthread_t tid[64];
    conf_worker w[64];
    for (int i = 0; i < threads; i++) {
        w[i].c = one;
        if (one == NULL)
            conf_open(&w[i].c);
        w[i].key = key;
        w[i].limit = limit;
        w[i].attempts = &t->attempts;
        w[i].granted = &t->granted;
        w[i].errors = &t->errors;
        w[i].last_error = t->last_error;
        pthread_create(&tid[i], NULL, conf_worker_run, &w[i]);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(tid[i], NULL);
        if (one == NULL)
            ee_counters_free(w[i].c);
    }
}

/* The exactness check: `procs` processes x `threads` threads race
 * 5000 reserve(1)+commit attempts against a limit of 1000. Exactly 1000 are
 * granted (summed over the processes through shared memory) and the stored
 * value is exactly 1000. With procs = 1 every thread shares one handle in
 * this process (the memory backend cannot be shared across fork). */
static void conf_contention(int procs, int threads)
{
    const char *key = conf_key("contention");
    conf_tally *t = mmap(NULL, sizeof *t, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                         -1, 0);
    cr_assert_neq(t, MAP_FAILED);
    atomic_init(&t->attempts, 5000);
    atomic_init(&t->granted, 0);
    atomic_init(&t->errors, 0);
    memset(t->last_error, 0, sizeof t->last_error);
    ee_counters *c;
    conf_open(&c);
    if (procs == 1) {
        conf_race(t, key, 1000, threads, c);
    } else {
        pid_t kids[16];
        for (int p = 0; p < procs; p++) {
            kids[p] = fork();
            cr_assert_neq(kids[p], -1);
            if (kids[p] == 0) {
                conf_race(t, key, 1000, threads, NULL);
                _exit(0);
            }
        }
        for (int p = 0; p < procs; p++) {
            int status = 0;
            cr_assert_eq(waitpid(kids[p], &status, 0), kids[p]);
            cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d failed", p);
        }
    }
    cr_expect_eq(atomic_load(&t->errors), 0, "%d operations failed under contention, e.g. %s",
                 atomic_load(&t->errors), t->last_error);
    cr_expect_eq(atomic_load(&t->granted), 1000, "granted %d of a limit of 1000",
                 atomic_load(&t->granted));
    expect_value(c, key, T0, 1000, 1000);
    ee_counters_free(c);
    munmap(t, sizeof *t);
}

Test(conformance, threads_in_one_process_never_pass_the_limit)
{
    const char *key = conf_key("threads");
    conf_tally t;
    memset(t.last_error, 0, sizeof t.last_error);
    atomic_init(&t.attempts, 400);
    atomic_init(&t.granted, 0);
    atomic_init(&t.errors, 0);
    ee_counters *c;
    conf_open(&c);
    conf_race(&t, key, 100, 4, c);
    cr_expect_eq(atomic_load(&t.errors), 0, "e.g. %s", t.last_error);
    cr_expect_eq(atomic_load(&t.granted), 100);
    expect_value(c, key, T0, 100, 100);
    ee_counters_free(c);
}

#if CONF_SHARED
/* ---- across handles and processes (shared backends) ------------------------------------- */

Test(conformance, two_handles_see_one_counter)
{
    ee_counters *a, *b;
    conf_open(&a);
    conf_open(&b);
    const char *k = conf_key("handles");
    uint64_t id = try_reserve(a, req_of(k, 1, 1), LEASE, T0, NULL);
    cr_assert_neq(id, 0);
    cr_expect_eq(try_reserve(b, req_of(k, 1, 1), LEASE, T0, NULL), 0);
    cr_assert_eq(ee_counters_commit(b, k, id, EE_COUNTERS_ALL, T0), EE_OK);
    expect_value(a, k, T0, 1, 1);
    ee_counters_free(a);
    ee_counters_free(b);
}

/* A child reserves the last unit and is killed with SIGKILL before it
 * commits: the unit comes back when its lease ends (now moved, no sleep). */
static void conf_killed_holder(void)
{
    const char *k = conf_key("killed");
    ee_counters *c; /* opened before the fork: the child reaches the same store */
    conf_open(&c);
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t kid = fork();
    cr_assert_neq(kid, -1);
    if (kid == 0) {
        close(fds[0]);
        c = NULL; /* the parent's handle is not used across fork */
        conf_open(&c);
        ee_counter_req q = req_of(k, 1, 1);
        ee_counter_result r;
        int g = 0;
        uint64_t id = 0;
        if (ee_counters_reserve(c, &q, 5000, T0, &r, &g) == EE_OK && g)
            id = r.resv_id;
        if (write(fds[1], &id, sizeof id) != (ssize_t)sizeof id)
            _exit(1);
        for (;;)
            pause();
    }
    close(fds[1]);
    uint64_t id = 0;
    cr_assert_eq(read(fds[0], &id, sizeof id), (ssize_t)sizeof id);
    close(fds[0]);
    cr_assert_neq(id, 0, "the child's reservation was not granted");
    cr_assert_eq(kill(kid, SIGKILL), 0);
    int status = 0;
    cr_assert_eq(waitpid(kid, &status, 0), kid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    ee_counter_result r;
    cr_expect_eq(try_reserve(c, req_of(k, 1, 1), 5000, T0 + 4999, &r), 0,
                 "the dead holder's lease still runs");
    cr_expect_eq(r.retry_at_ms, T0 + 5000);
    expect_value(c, k, T0 + 4999, 1, 0);
    cr_assert_neq(try_reserve(c, req_of(k, 1, 1), 5000, T0 + 5000, &r), 0,
                  "the lease ended: the unit is back");
    cr_expect_eq(ee_counters_commit(c, k, id, EE_COUNTERS_ALL, T0 + 5000), EE_ENOTFOUND);
    expect_value(c, k, T0 + 5000, 1, 0);
    ee_counters_free(c);
}

Test(conformance, a_killed_holders_reservation_comes_back_after_the_lease)
{
    conf_killed_holder();
}
#endif

#endif
