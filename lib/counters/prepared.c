/*
 * Prepared reservations (counters/counters.h): a request set checked once
 * and reserved many times. The checks that cannot change between calls
 * (keys, limits, windows, leases, repeated counters) run when the set is
 * set; a call checks what it brings (the counters, how many requests, the
 * amount) and that its clock is inside the range the set was checked for,
 * then goes to the backend's own leased reserve - or through the checked
 * wrapper when there is no such direct path or the clock is outside that
 * range. Only this file calls a backend's reserve unchecked.
 */
#include <stdalign.h>
#include <stddef.h>
#include <string.h>

#include "counters/counters_internal.h"

#define P_MAX EE__COUNTERS_PREPARED_MAX
#define P_INIT UINT32_C(0x50434545)  /* "EECP": initialised, no request set */
#define P_READY UINT32_C(0x52434545) /* "EECR": requests set */

_Static_assert(P_MAX <= EE_COUNTERS_MANY_MAX, "a prepared set is one reserve_many");

typedef struct prep {
    /* From ee__counters_prepared_init, read when requests are set: the keys
     * (first, so that what every reservation reads ends the object, next to
     * what its holder reads after it). */
    char keys[EE__COUNTERS_PREPARED_KEY_BYTES];
    uint16_t key_off[P_MAX];
    void *key_handle[P_MAX];
    /* What every reservation reads, together: a reservation of k requests
     * reads this header, k leases, k handles, one lock order and k requests
     * - five contiguous cache lines for the quota module's three or four. */
    _Alignas(64) uint32_t state; /* P_INIT, P_READY, anything else: not initialised */
    uint8_t nkeys;
    uint8_t count; /* requests set */
    uint16_t pad_;
    ee_counters *counters;
    ee__counters_reserve_fn direct; /* the backend's own reserve, or NULL */
    void *direct_ctx;
    /* Direct calls for now_ms in [from, until): the set was checked at
     * `from`, and every window end and window length still holds before
     * `until`. Otherwise (and always without `direct`) the checked path. */
    int64_t from, until;
    int64_t leases[P_MAX];
    void *handles[P_MAX];        /* per request */
    uint8_t order[P_MAX][P_MAX]; /* order[k - 1]: lock order of the first k requests */
    ee_counter_req reqs[P_MAX];  /* keys point into keys[] above */
} prep;

_Static_assert(sizeof(prep) <= EE__COUNTERS_PREPARED_SIZE, "prepared layout too large");
_Static_assert(alignof(prep) <= 64, "prepared layout alignment");

static prep *prep_of(ee__counters_prepared *p)
{
    return (prep *)(void *)p->opaque_;
}

ee_status ee__counters_prepared_init(ee__counters_prepared *p, ee_counters *counters,
                                     const char *const *keys, size_t nkeys)
{
    if (p == NULL)
        return ee__error(EE_EINVAL, "ee__counters_prepared_init: p must not be NULL");
    prep *q = prep_of(p);
    q->state = 0;
    if (counters == NULL || keys == NULL)
        return ee__error(EE_EINVAL, "ee__counters_prepared_init: counters and keys must not be "
                                    "NULL");
    if (nkeys == 0 || nkeys > P_MAX)
        return ee__error(EE_EINVAL, "ee__counters_prepared_init: %zu keys; a prepared "
                                    "reservation has 1..%d", nkeys, P_MAX);
    memset(q, 0, sizeof *q);
    size_t off = 0;
    for (size_t i = 0; i < nkeys; i++) {
        void *h = NULL;
        /* checks the key (not NULL, length, characters) */
        ee_status st = ee__counters_resolve(counters, keys[i], &h);
        if (st != EE_OK)
            return st;
        for (size_t j = 0; j < i; j++)
            if (strcmp(keys[i], q->keys + q->key_off[j]) == 0)
                return ee__error(EE_EINVAL, "ee__counters_prepared_init: key \"%s\" is "
                                            "repeated", keys[i]);
        size_t len = strlen(keys[i]);
        if (len + 1 > sizeof q->keys - off)
            return ee__error(EE_EINVAL, "ee__counters_prepared_init: the keys take more than "
                                        "%d bytes together", EE__COUNTERS_PREPARED_KEY_BYTES);
        memcpy(q->keys + off, keys[i], len + 1);
        q->key_off[i] = (uint16_t)off;
        q->key_handle[i] = h;
        off += len + 1;
    }
    q->nkeys = (uint8_t)nkeys;
    q->counters = counters;
    ee__counters_direct(counters, &q->direct, &q->direct_ctx);
    q->state = P_INIT;
    return EE_OK;
}

/* The first instant past `now` at which a request checked at `now` would
 * fail the wrapper's checks: its window has ended, or its window length
 * runs past 2^53-1 (leases are checked on their own, not against now). */
static int64_t valid_until(const ee_counter_req *r)
{
    int64_t until = EE_COUNTERS_TIME_MAX + 1;
    if (r->window_end_ms != 0 && r->window_end_ms < until)
        until = r->window_end_ms;
    if (r->window_ms > 0 && EE_COUNTERS_TIME_MAX - r->window_ms + 1 < until)
        until = EE_COUNTERS_TIME_MAX - r->window_ms + 1;
    return until;
}

ee_status ee__counters_prepared_set(ee__counters_prepared *p, const ee_counter_req *reqs,
                                    const int64_t *leases, size_t count, int64_t now_ms)
{
    if (p == NULL)
        return ee__error(EE_EINVAL, "ee__counters_prepared_set: p must not be NULL");
    prep *q = prep_of(p);
    if (q->state != P_INIT && q->state != P_READY)
        return ee__error(EE_EINVAL, "ee__counters_prepared_set: not an initialised prepared "
                                    "reservation");
    q->state = P_INIT; /* no request set until every check passed */
    if (reqs == NULL || leases == NULL)
        return ee__error(EE_EINVAL, "ee__counters_prepared_set: requests and leases must not "
                                    "be NULL");
    if (count == 0 || count > q->nkeys)
        return ee__error(EE_EINVAL, "ee__counters_prepared_set: %zu requests on %u prepared "
                                    "keys (1..%u)", count, (unsigned)q->nkeys,
                         (unsigned)q->nkeys);
    ee_counter_req r[P_MAX];
    void *handles[P_MAX];
    bool used[P_MAX] = {false};
    for (size_t i = 0; i < count; i++) {
        const char *key = reqs[i].key;
        size_t k = 0;
        while (key != NULL && k < q->nkeys && strcmp(key, q->keys + q->key_off[k]) != 0)
            k++;
        if (key == NULL || k == q->nkeys) {
            char quoted[64];
            ee__quote_for_message(key != NULL ? key : "(null)", quoted, sizeof quoted);
            return ee__error(EE_EINVAL, "ee__counters_prepared_set: key \"%s\" is not one of "
                                        "the prepared keys", quoted);
        }
        if (used[k])
            return ee__error(EE_EINVAL, "ee__counters_prepared_set: key \"%s\" is repeated",
                             key);
        used[k] = true;
        r[i] = reqs[i];
        r[i].key = q->keys + q->key_off[k];
        handles[i] = q->key_handle[k];
    }
    ee_status st = ee__counters_check_prepared(r, handles, leases, count, now_ms);
    if (st != EE_OK)
        return st;
    int64_t until = EE_COUNTERS_TIME_MAX + 1;
    for (size_t i = 0; i < count; i++) {
        q->reqs[i] = r[i];
        q->leases[i] = leases[i];
        q->handles[i] = handles[i];
        int64_t u = valid_until(&r[i]);
        until = u < until ? u : until;
    }
    for (size_t k = 1; k <= count; k++)
        ee__counters_lock_order(q->counters, q->handles, k, q->order[k - 1]);
    q->count = (uint8_t)count;
    /* Without a direct path the range is empty: every call is checked. */
    q->from = q->direct != NULL ? now_ms : INT64_MAX;
    q->until = q->direct != NULL ? until : INT64_MIN;
    q->state = P_READY;
    return EE_OK;
}

/* Why a reservation was refused before reaching the counters (out of the
 * hot path: only a caller's mistake gets here). */
static ee_status refuse(const prep *q, const ee_counters *counters, size_t count,
                        int64_t last_n)
{
    if (q->state != P_READY && q->state != P_INIT)
        return ee__error(EE_EINVAL, "ee__counters_prepared_reserve: not an initialised "
                                    "prepared reservation");
    if (counters == NULL || counters != q->counters)
        return ee__error(EE_EINVAL, "ee__counters_prepared_reserve: the counters are not the "
                                    "ones the reservation was prepared on");
    if (q->state != P_READY)
        return ee__error(EE_ESTATE, "ee__counters_prepared_reserve: no request set (the last "
                                    "ee__counters_prepared_set failed or none was made)");
    if (count == 0 || count > q->count)
        return ee__error(EE_EINVAL, "ee__counters_prepared_reserve: %zu requests of %u set "
                                    "(1..%u)", count, (unsigned)q->count, (unsigned)q->count);
    return ee__error(EE_EINVAL, "ee__counters_prepared_reserve: amount %lld must be 0 or "
                                "1..2^53-1", (long long)last_n);
}

ee_status ee__counters_prepared_reserve(ee__counters_prepared *p, ee_counters *counters,
                                        size_t count, int64_t last_n, int64_t now_ms,
                                        ee_counter_result *results, int *granted)
{
    if (p == NULL || results == NULL || granted == NULL) {
        if (granted != NULL)
            *granted = 0;
        return ee__error(EE_EINVAL, "ee__counters_prepared_reserve: p, results and granted "
                                    "must not be NULL");
    }
    prep *q = prep_of(p);
    /* One test for every per-call mistake; refuse() says which. */
    if ((q->state != P_READY) | (counters != q->counters) | (count - 1 >= q->count) |
        ((uint64_t)last_n > (uint64_t)EE_COUNTERS_VALUE_MAX)) {
        *granted = 0;
        return refuse(q, counters, count, last_n);
    }
    ee_counter_req *last = &q->reqs[count - 1];
    int64_t n = last->n;
    if (last_n > 0)
        last->n = last_n;
    ee_status st;
    if (now_ms >= q->from && now_ms < q->until)
        st = q->direct(q->direct_ctx, q->reqs, q->handles, q->order[count - 1], q->leases,
                       count, now_ms, results, granted);
    else
        st = ee__counters_reserve_leased(counters, q->reqs, q->handles, q->leases, count, now_ms,
                                         results, granted);
    last->n = n;
    if (st != EE_OK)
        *granted = 0;
    return st;
}
