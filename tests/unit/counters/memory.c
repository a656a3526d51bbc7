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

Test(memory, reserves_find_out_of_order_leases_ended)
{
    /* Each reserve finds for itself which leases ended (no get between),
     * the leases having arrived out of expiry order. */
    ee_counters *c;
    conf_open(&c);
    const char *k = "reserve-order";
    ee_counter_result r;
    uint64_t ids[4]; /* finished records, taken again below (the usual case) */
    for (int i = 0; i < 4; i++)
        cr_assert_neq(ids[i] = try_reserve(c, req_of(k, 1, 100), 1000, T0, NULL), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(ee_counters_release(c, k, ids[i], T0), EE_OK);
    cr_assert_neq(try_reserve(c, req_of(k, 1, 100), 5000, T0, &r), 0); /* ends T0 + 5000 */
    cr_assert_neq(try_reserve(c, req_of(k, 2, 100), 1000, T0, &r), 0); /* T0 + 1000 */
    cr_assert_neq(try_reserve(c, req_of(k, 4, 100), 3000, T0, &r), 0); /* T0 + 3000 */
    cr_expect_eq(r.value, 7);
    cr_assert_neq(try_reserve(c, req_of(k, 8, 100), 100, T0 + 1000, &r), 0); /* T0 + 1100 */
    cr_expect_eq(r.value, 1 + 4 + 8);
    cr_assert_neq(try_reserve(c, req_of(k, 16, 100), 5000, T0 + 3000, &r), 0);
    cr_expect_eq(r.value, 1 + 16);
    cr_expect_eq(try_reserve(c, req_of(k, 32, 48), 100, T0 + 4999, &r), 0);
    cr_expect_eq(r.value, 1 + 16);
    cr_expect_eq(r.retry_at_ms, T0 + 5000);
    cr_assert_neq(try_reserve(c, req_of(k, 32, 48), 100, T0 + 5000, &r), 0);
    cr_expect_eq(r.value, 16 + 32);
    ee_counters_free(c);
}

/* ---- leases against a model ------------------------------------------------------------
 * Random reserves, commits, releases and renewals on one counter, checked
 * after every step against a plain list: in-order leases (one length, time
 * moving forward, some reservations held long), out-of-order ones (random
 * lengths and renewals) and short in-order ones that keep ending (several
 * at once, or behind finished ones, as reserves find them), so both ways
 * the backend keeps leases - and its switching between them, dropping
 * finished leases, expiring and growing - are exercised. */

enum { M_IN_ORDER, M_OUT_OF_ORDER, M_ENDING };

typedef struct {
    uint64_t id;
    int64_t n, expires;
} model_resv;

typedef struct {
    model_resv live[4096];
    size_t n;
    int64_t committed;
    uint64_t rng;
} model;

static uint64_t model_rand(model *m, uint64_t below)
{
    m->rng = m->rng * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (m->rng >> 33) % below;
}

/* Drop what the model's leases ended by now; the value it expects. */
static int64_t model_value(model *m, int64_t now)
{
    int64_t v = m->committed;
    for (size_t i = 0; i < m->n;) {
        if (m->live[i].expires <= now) {
            m->live[i] = m->live[--m->n];
            continue;
        }
        v += m->live[i++].n;
    }
    return v;
}

static void model_step(ee_counters *c, model *m, const char *k, int64_t now, int mode)
{
    int64_t lease = mode == M_IN_ORDER ? 5000
                    : mode == M_ENDING ? 300
                                       : 1 + (int64_t)model_rand(m, 5000);
    uint64_t op = model_rand(m, 10);
    /* Now and then a late commit of a reservation whose lease just ended. */
    for (size_t i = 0; i < m->n && op == 0; i++)
        if (m->live[i].expires <= now) {
            cr_assert_eq(ee_counters_commit(c, k, m->live[i].id, EE_COUNTERS_ALL, now),
                         EE_ENOTFOUND);
            break;
        }
    int64_t before = model_value(m, now);
    if (m->n == 0 || op < 4 || (m->n < 8 && op < 6)) {
        int64_t n = 1 + (int64_t)model_rand(m, 3);
        ee_counter_result res;
        /* The reserve's own answers, from the leases it found ended itself
         * (the get after the step would hide one it missed): now and then
         * refused by one, then granted. */
        if (op == 1) {
            cr_assert_eq(try_reserve(c, req_of(k, n, before + n - 1), lease, now, &res), 0);
            cr_assert(res.value == before && res.committed == m->committed && !res.fits,
                      "refused: value %lld committed %lld, model %lld %lld",
                      (long long)res.value, (long long)res.committed, (long long)before,
                      (long long)m->committed);
        }
        uint64_t id = try_reserve(c, req_of(k, n, INT64_C(1) << 40), lease, now, &res);
        cr_assert_neq(id, 0);
        cr_assert(res.value == before + n && res.committed == m->committed,
                  "granted: value %lld committed %lld, model %lld %lld", (long long)res.value,
                  (long long)res.committed, (long long)(before + n), (long long)m->committed);
        cr_assert(m->n < sizeof m->live / sizeof m->live[0]);
        m->live[m->n++] = (model_resv){id, n, now + lease};
        return;
    }
    size_t pick = (size_t)model_rand(m, m->n);
    model_resv r = m->live[pick];
    if (op < 7) {
        if (mode == M_IN_ORDER && model_rand(m, 40) == 0)
            lease = 100; /* now and then out of order */
        cr_assert_eq(ee_counters_renew(c, k, r.id, lease, now), EE_OK, "%s",
                     ee_error_last_message());
        m->live[pick].expires = now + lease;
        return;
    }
    m->live[pick] = m->live[--m->n];
    if (op < 9) {
        cr_assert_eq(ee_counters_commit(c, k, r.id, EE_COUNTERS_ALL, now), EE_OK);
        m->committed += r.n;
    } else {
        cr_assert_eq(ee_counters_release(c, k, r.id, now), EE_OK);
    }
}

Test(memory, leases_in_and_out_of_order_match_a_model)
{
    ee_counters *c;
    conf_open(&c);
    static model m;
    memset(&m, 0, sizeof m);
    m.rng = 42;
    const char *k = "model";
    int64_t now = T0;
    /* A reservation held long at the front while thousands pass behind it. */
    uint64_t head = try_reserve(c, req_of(k, 1, INT64_C(1) << 40), 5000, now, NULL);
    cr_assert_neq(head, 0);
    m.live[m.n++] = (model_resv){head, 1, now + 5000};
    for (int phase = 0; phase < 9; phase++) {
        int mode = phase % 3;
        for (int i = 0; i < 3000; i++) {
            now += mode == M_IN_ORDER ? (i % 3 == 0)
                   : mode == M_ENDING ? (int64_t)model_rand(&m, 3)
                                      : (int64_t)model_rand(&m, 20);
            model_step(c, &m, k, now, mode);
            int64_t want = model_value(&m, now);
            ee_counter_result got = get_now(c, k, now);
            cr_assert(got.value == want && got.committed == m.committed,
                      "phase %d step %d: value %lld committed %lld, model %lld %lld", phase, i,
                      (long long)got.value, (long long)got.committed, (long long)want,
                      (long long)m.committed);
        }
        now += 6000; /* everything ends: the counter starts over */
        expect_value(c, k, now, m.committed, m.committed);
        m.n = 0;
    }
    ee_counters_free(c);
}
