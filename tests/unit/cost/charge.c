/* Charges (markup, free allowance), the rounding rule, and largest-remainder
 * allocation: 1,000,000 random charges never create or lose a nano-dollar. */
#include <stdint.h>
#include <stdlib.h>

#include "cost/cost_internal.h"
#include "cost_test.h"

#define USD(x) ((int64_t)(x) * INT64_C(1000000000))

typedef struct {
    int64_t charged, consumed, after;
} charge;

static charge calc(int64_t cost, int64_t bp, int64_t allowance, int64_t used, int platform)
{
    charge c;
    cr_assert_eq(ee_cost_charge_calc(cost, bp, allowance, used, platform, &c.charged, &c.consumed,
                                     &c.after), EE_OK, "%s", ee_error_last_message());
    return c;
}

Test(charge, allowance_untouched_covers_the_run)
{
    /* $1 at 20 % = $1.20, all from a fresh $10 allowance */
    charge c = calc(USD(1), 2000, USD(10), 0, 1);
    cr_expect_eq(c.consumed, INT64_C(1200000000));
    cr_expect_eq(c.charged, 0);
    cr_expect_eq(c.after, INT64_C(1200000000));
}

Test(charge, allowance_partly_used)
{
    /* $9.50 of $10 used: $0.50 free, $0.70 of the $1.20 charged */
    charge c = calc(USD(1), 2000, USD(10), INT64_C(9500000000), 1);
    cr_expect_eq(c.consumed, INT64_C(500000000));
    cr_expect_eq(c.charged, INT64_C(700000000));
    cr_expect_eq(c.after, USD(10));
}

Test(charge, allowance_exhausted)
{
    charge c = calc(USD(2), 2000, USD(10), USD(10), 1);
    cr_expect_eq(c.consumed, 0);
    cr_expect_eq(c.charged, INT64_C(2400000000));
    cr_expect_eq(c.after, USD(10));
    /* used past the allowance (allowance lowered mid-month): still nothing free */
    c = calc(USD(2), 2000, USD(5), USD(10), 1);
    cr_expect_eq(c.consumed, 0);
    cr_expect_eq(c.charged, INT64_C(2400000000));
    cr_expect_eq(c.after, USD(10));
}

Test(charge, new_month_restores_the_allowance)
{
    /* The month's runs: $4, $4, $4 (x1.2 = $4.80 each) against $10. */
    int64_t used = 0, charged = 0;
    for (int i = 0; i < 3; i++) {
        charge c = calc(USD(4), 2000, USD(10), used, 1);
        used = c.after;
        charged += c.charged;
    }
    cr_expect_eq(used, USD(10));
    cr_expect_eq(charged, INT64_C(4400000000)); /* 14.40 - 10 */
    /* A new month: the billing period's used allowance starts again at 0. */
    charge c = calc(USD(4), 2000, USD(10), 0, 1);
    cr_expect_eq(c.charged, 0);
    cr_expect_eq(c.consumed, INT64_C(4800000000));
    cr_expect_eq(c.after, INT64_C(4800000000));
}

Test(charge, customer_key_is_free_and_keeps_the_allowance)
{
    charge c = calc(USD(3), 2000, USD(10), INT64_C(123), 0);
    cr_expect_eq(c.charged, 0);
    cr_expect_eq(c.consumed, 0);
    cr_expect_eq(c.after, 123);
}

Test(charge, markup_rounds_half_to_even)
{
    /* 1 nano x 1.5 = 1.5 -> 2; 3 x 1.5 = 4.5 -> 4; 5 x 1.5 = 7.5 -> 8 */
    cr_expect_eq(calc(1, 5000, 0, 0, 1).charged, 2);
    cr_expect_eq(calc(3, 5000, 0, 0, 1).charged, 4);
    cr_expect_eq(calc(5, 5000, 0, 0, 1).charged, 8);
    /* 7 x 1.2 = 8.4 -> 8; 8 x 1.2 = 9.6 -> 10; 0 markup is exact */
    cr_expect_eq(calc(7, 2000, 0, 0, 1).charged, 8);
    cr_expect_eq(calc(8, 2000, 0, 0, 1).charged, 10);
    cr_expect_eq(calc(INT64_C(123456789), 0, 0, 0, 1).charged, INT64_C(123456789));
    /* 12.5 % on 4 nano = 4.5 -> 4 */
    cr_expect_eq(calc(4, 1250, 0, 0, 1).charged, 4);
}

Test(charge, bad_input_is_refused)
{
    int64_t a;
    cr_expect_eq(ee_cost_charge_calc(-1, 0, 0, 0, 1, &a, NULL, NULL), EE_EINVAL);
    cr_expect_eq(ee_cost_charge_calc(1, -1, 0, 0, 1, &a, NULL, NULL), EE_EINVAL);
    cr_expect_eq(ee_cost_charge_calc(1, EE_COST_MARKUP_BP_MAX + 1, 0, 0, 1, &a, NULL, NULL),
                 EE_EINVAL);
    cr_expect_eq(ee_cost_charge_calc(1, 0, -5, 0, 1, &a, NULL, NULL), EE_EINVAL);
    cr_expect_eq(ee_cost_charge_calc(INT64_MAX, 2000, 0, 0, 1, &a, NULL, NULL), EE_EINVAL);
    cr_expect_eq(ee_cost_charge_calc(INT64_MAX, 0, 0, 0, 1, &a, NULL, NULL), EE_OK);
    cr_expect_eq(a, INT64_MAX);
}

Test(charge, document)
{
    char *out = NULL;
    cr_assert_eq(ee_cost_charge(USD(1), 2000, USD(10), INT64_C(9500000000), 1, &out), EE_OK);
    json_t *doc = cost_test_doc(out);
    cr_expect_str_eq(cost_test_str(doc, "keyType"), "platform");
    cr_expect_eq(cost_test_int(doc, "markedUp.nanoUsd"), 1200000000);
    cr_expect_str_eq(cost_test_str(doc, "charged.usd"), "0.700000000");
    cr_expect_eq(cost_test_int(doc, "allowanceConsumed.nanoUsd"), 500000000);
    cr_expect_eq(cost_test_int(doc, "allowanceRemaining.nanoUsd"), 0);
    cr_expect_eq(cost_test_int(doc, "allowanceUsedAfter.nanoUsd"), USD(10));
    json_decref(doc);

    cr_assert_eq(ee_cost_charge(-1, 0, 0, 0, 1, &out), EE_EINVAL);
    doc = cost_test_doc(out);
    cr_expect_str_eq(cost_test_str(doc, "error.name"), "EE_EINVAL");
    json_decref(doc);
}

/* ---- allocation ---------------------------------------------------------------- */

Test(allocate, examples)
{
    int64_t parts[3];
    int64_t w[3] = {1, 1, 1};
    cr_assert_eq(ee_cost_allocate(100, w, 3, parts), EE_OK);
    /* 33.33 each: the one unit left goes to the lowest index */
    cr_expect_eq(parts[0], 34);
    cr_expect_eq(parts[1], 33);
    cr_expect_eq(parts[2], 33);
    int64_t w2[3] = {1, 2, 7};
    cr_assert_eq(ee_cost_allocate(11, w2, 3, parts), EE_OK);
    /* 1.1, 2.2, 7.7 -> 1, 2, 8 */
    cr_expect_eq(parts[0], 1);
    cr_expect_eq(parts[1], 2);
    cr_expect_eq(parts[2], 8);
    cr_assert_eq(ee_cost_allocate(-11, w2, 3, parts), EE_OK);
    cr_expect_eq(parts[0] + parts[1] + parts[2], -11);
    cr_expect_eq(parts[2], -8);
    int64_t zero[3] = {0, 0, 0};
    cr_expect_eq(ee_cost_allocate(0, zero, 3, parts), EE_OK);
    cr_expect_eq(ee_cost_allocate(5, zero, 3, parts), EE_EINVAL);
    int64_t neg[2] = {1, -1};
    cr_expect_eq(ee_cost_allocate(5, neg, 2, parts), EE_EINVAL);
    cr_expect_eq(ee_cost_allocate(5, w, 0, parts), EE_EINVAL);
    cr_expect_eq(ee_cost_allocate(INT64_MIN, w, 3, parts), EE_EINVAL);
    /* extreme values stay exact */
    int64_t big[2] = {INT64_MAX, INT64_MAX - 1};
    cr_assert_eq(ee_cost_allocate(INT64_MAX, big, 2, parts), EE_OK);
    cr_expect_eq((uint64_t)parts[0] + (uint64_t)parts[1], (uint64_t)INT64_MAX);
}

Test(allocate, many_parts_use_the_heap)
{
    int64_t w[100], parts[100];
    for (int i = 0; i < 100; i++)
        w[i] = i % 7 + 1;
    cr_assert_eq(ee_cost_allocate(999999, w, 100, parts), EE_OK);
    int64_t sum = 0;
    for (int i = 0; i < 100; i++)
        sum += parts[i];
    cr_expect_eq(sum, 999999);
}

/* xorshift64*: reproducible and independent of the libc's rand(). */
static uint64_t rng_state = UINT64_C(0x9E3779B97F4A7C15);
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

Test(allocate, one_million_random_charges_add_up)
{
    for (int i = 0; i < 1000000; i++) {
        /* a cost up to $1000, a markup up to 50 %, an allowance up to $20 */
        int64_t cost = (int64_t)(rnd() % UINT64_C(1000000000000));
        int64_t bp = (int64_t)(rnd() % 5001);
        int64_t allowance = (int64_t)(rnd() % UINT64_C(20000000000));
        int64_t used = (int64_t)(rnd() % UINT64_C(25000000000));
        int platform = (int)(rnd() % 4 != 0);
        charge c = calc(cost, bp, allowance, used, platform);

        /* the markup against an independent half-even reference */
        ee__u128 exact2 = (ee__u128)cost * (ee__u128)(10000 + bp) * 2; /* twice the product */
        ee__u128 q = exact2 / 20000, r = exact2 % 20000;
        if (r > 10000 || (r == 10000 && (q & 1)))
            q++;
        int64_t marked = platform ? (int64_t)q : 0;
        cr_assert_eq(c.charged + c.consumed, marked, "cost %lld bp %lld", (long long)cost,
                     (long long)bp);
        cr_assert(c.consumed >= 0 && c.charged >= 0);
        cr_assert_eq(c.after, used + c.consumed);
        if (platform && used < allowance)
            cr_assert(c.after <= allowance);

        /* split the charged amount over 1..8 parts (per node, per model) */
        size_t n = (size_t)(rnd() % 8 + 1);
        int64_t w[8], parts[8];
        ee__u128 wsum = 0;
        for (size_t k = 0; k < n; k++) {
            w[k] = (int64_t)(rnd() % (k == 0 ? 1000000 : 1000000000)) + (k == 0);
            wsum += (ee__u128)w[k];
        }
        cr_assert_eq(ee_cost_allocate(c.charged, w, n, parts), EE_OK);
        int64_t sum = 0;
        for (size_t k = 0; k < n; k++) {
            sum += parts[k];
            /* within 1 nano of the exact share: part*W - total*w in (-W, W) */
            ee__u128 lhs = (ee__u128)parts[k] * wsum, rhs = (ee__u128)c.charged * (ee__u128)w[k];
            ee__u128 diff = lhs > rhs ? lhs - rhs : rhs - lhs;
            cr_assert(diff < wsum, "part %zu of charge %d is more than 1 nano off", k, i);
        }
        cr_assert_eq(sum, c.charged, "charge %d: parts add to %lld, not %lld", i, (long long)sum,
                     (long long)c.charged);
    }
}

/* ---- exact amounts --------------------------------------------------------------- */

Test(amount, prices_parse_exactly)
{
    struct {
        const char *text;
        int64_t atto;
    } ok[] = {
        {"0.00000015", INT64_C(150000000000)},  {"0.0000006", INT64_C(600000000000)},
        {"0.0000000375", INT64_C(37500000000)}, {"0.000003", INT64_C(3000000000000)},
        {"0", 0},                               {"0.000000000000000001", 1},
        {"1.5e-7", INT64_C(150000000000)},      {"15E-8", INT64_C(150000000000)},
        {"0.000000150000000000000000", INT64_C(150000000000)},
        {"9.223372036854775807", INT64_MAX},    {"2", INT64_C(2000000000000000000)},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t v;
        bool neg;
        cr_expect_eq(ee__cost_parse_atto(ok[i].text, &v, &neg), EE_OK, "%s", ok[i].text);
        cr_expect_eq(v, ok[i].atto, "%s -> %lld", ok[i].text, (long long)v);
        cr_expect(!neg);
    }
    const char *bad[] = {"", "abc", "0.0000000000000000001", "1e-19", "10", "1.2.3", "0x1",
                         "1e", "1.", " 1", "1 ", "--1", "9.223372036854775808"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t v;
        bool neg;
        cr_expect_eq(ee__cost_parse_atto(bad[i], &v, &neg), EE_EINVAL, "accepted \"%s\"", bad[i]);
    }
    int64_t v;
    bool neg;
    cr_expect_eq(ee__cost_parse_atto("-1", &v, &neg), EE_OK);
    cr_expect(neg);
    char buf[48];
    ee__cost_atto_format(INT64_C(37500000000), buf);
    cr_expect_str_eq(buf, "0.0000000375");
    ee__cost_atto_format(0, buf);
    cr_expect_str_eq(buf, "0");
    ee__cost_atto_format(INT64_C(2000000000000000000), buf);
    cr_expect_str_eq(buf, "2");
}

Test(amount, json_numbers_read_as_written)
{
    int64_t v;
    bool neg;
    json_t *n = json_real(0.00042);
    cr_expect_eq(ee__cost_json_atto(n, &v, &neg), EE_OK);
    cr_expect_eq(v, INT64_C(420000000000000));
    json_decref(n);
    n = json_real(0.1 + 0.2); /* 0.30000000000000004: 17 digits, not recoverable */
    cr_expect_eq(ee__cost_json_atto(n, &v, &neg), EE_EINVAL);
    json_decref(n);
    n = json_integer(3);
    cr_expect_eq(ee__cost_json_atto(n, &v, &neg), EE_OK);
    cr_expect_eq(v, INT64_C(3000000000000000000));
    json_decref(n);
}

Test(amount, half_even_to_nano)
{
    int64_t n;
    cr_expect(ee__cost_atto_to_nano(500000000, &n));
    cr_expect_eq(n, 0);
    cr_expect(ee__cost_atto_to_nano(1500000000, &n));
    cr_expect_eq(n, 2);
    cr_expect(ee__cost_atto_to_nano(2500000000, &n));
    cr_expect_eq(n, 2);
    cr_expect(ee__cost_atto_to_nano(2500000001, &n));
    cr_expect_eq(n, 3);
    cr_expect(ee__cost_atto_to_nano(499999999, &n));
    cr_expect_eq(n, 0);
    cr_expect(!ee__cost_atto_to_nano((ee__u128)INT64_MAX * 1000000000 + 500000000, &n));
}
