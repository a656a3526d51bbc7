/*
 * Exact amounts: atto-USD prices, the one rounding rule (half to even, once,
 * to the nano-USD), the charge, and largest-remainder allocation.
 */
#include "cost_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTO_PER_USD INT64_C(1000000000000000000)

ee__u128 ee__cost_div_round(ee__u128 x, ee__u128 d)
{
    ee__u128 q = x / d, r = x % d;
    /* Compare 2r with d without overflowing: r > d - r. */
    if (r > d - r || (r == d - r && (q & 1)))
        q++;
    return q;
}

bool ee__cost_atto_to_nano(ee__u128 atto, int64_t *nano)
{
    ee__u128 q = ee__cost_div_round(atto, (ee__u128)EE__ATTO_PER_NANO);
    if (q > (ee__u128)INT64_MAX)
        return false;
    *nano = (int64_t)q;
    return true;
}

/* ---- exact decimal parsing --------------------------------------------------- */

/* Significant digits kept while parsing; more than fit int64 at 1e-18
 * resolution are either trailing zeros (dropped) or an error. */
#define SIG_MAX 80

ee_status ee__cost_parse_atto(const char *text, int64_t *atto, bool *negative)
{
    if (text == NULL)
        return EE_EINVAL;
    const char *p = text;
    *negative = *p == '-';
    if (*negative)
        p++;
    char sig[SIG_MAX];
    int nsig = 0, nfrac = 0, ndigits = 0;
    bool point = false;
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            ndigits++;
            if (point)
                nfrac++;
            if (nsig == 0 && *p == '0')
                continue; /* leading zero */
            if (nsig == SIG_MAX)
                return EE_EINVAL;
            sig[nsig++] = *p;
        } else if (*p == '.' && !point) {
            point = true;
        } else {
            break;
        }
    }
    if (ndigits == 0 || (point && p[-1] == '.'))
        return EE_EINVAL;
    long exp = 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        bool eneg = *p == '-';
        if (*p == '-' || *p == '+')
            p++;
        if (*p < '0' || *p > '9')
            return EE_EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
            exp = exp * 10 + (*p - '0');
            if (exp > 10000)
                return EE_EINVAL;
        }
        if (eneg)
            exp = -exp;
    }
    if (*p != '\0')
        return EE_EINVAL;
    /* value = sig x 10^shift atto-USD */
    long shift = exp - nfrac + 18;
    while (nsig > 0 && shift < 0 && sig[nsig - 1] == '0') {
        nsig--;
        shift++;
    }
    if (nsig == 0) {
        *atto = 0;
        return EE_OK;
    }
    if (shift < 0 || nsig + shift > 19)
        return EE_EINVAL; /* finer than 1e-18, or far past int64 */
    int64_t v = 0;
    for (int i = 0; i < nsig + shift; i++) {
        int d = i < nsig ? sig[i] - '0' : 0;
        if (v > (INT64_MAX - d) / 10)
            return EE_EINVAL;
        v = v * 10 + d;
    }
    *atto = v;
    return EE_OK;
}

ee_status ee__cost_json_atto(const json_t *v, int64_t *atto, bool *negative)
{
    if (json_is_string(v))
        return ee__cost_parse_atto(json_string_value(v), atto, negative);
    if (json_is_integer(v)) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return ee__cost_parse_atto(buf, atto, negative);
    }
    if (json_is_real(v)) {
        /* jansson already holds a double. We never compute with it: we
         * recover the decimal text it was written as (the shortest that
         * reads back to the same double) and parse that exactly. Beyond 15
         * significant digits the writer's text is not recoverable. */
        double d = json_real_value(v);
        if (!isfinite(d))
            return EE_EINVAL;
        char buf[48];
        for (int prec = 1; prec <= 15; prec++) {
            snprintf(buf, sizeof buf, "%.*g", prec, d);
            if (strtod(buf, NULL) == d)
                return ee__cost_parse_atto(buf, atto, negative);
        }
        return EE_EINVAL;
    }
    return EE_EINVAL;
}

void ee__cost_atto_format(int64_t atto, char buf[48])
{
    uint64_t mag = atto < 0 ? (uint64_t)0 - (uint64_t)atto : (uint64_t)atto;
    int n = snprintf(buf, 48, "%s%llu.%018llu", atto < 0 ? "-" : "",
                     (unsigned long long)(mag / (uint64_t)ATTO_PER_USD),
                     (unsigned long long)(mag % (uint64_t)ATTO_PER_USD));
    while (n > 0 && buf[n - 1] == '0')
        buf[--n] = '\0';
    if (n > 0 && buf[n - 1] == '.')
        buf[--n] = '\0';
}

json_t *ee__cost_money(int64_t nano)
{
    char buf[32];
    ee__decimal_format(nano, 9, buf);
    return json_pack("{s:I, s:s}", "nanoUsd", (json_int_t)nano, "usd", buf);
}

/* ---- the charge ----------------------------------------------------------------- */

ee_status ee__cost_charge_compute(const ee__cost_charge_input *in, ee__cost_charge *out)
{
    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (in == NULL || out == NULL)
        return ee__error(EE_EINVAL, "charge: NULL argument");
    int64_t cost_nano = in->cost_nano, markup_bp = in->markup_bp;
    int64_t allowance_nano = in->allowance_nano, allowance_used_nano = in->allowance_used_nano;
    if (cost_nano < 0 || allowance_nano < 0 || allowance_used_nano < 0)
        return ee__error(EE_EINVAL, "charge: amounts must not be negative (cost %lld, "
                         "allowance %lld, used %lld)", (long long)cost_nano,
                         (long long)allowance_nano, (long long)allowance_used_nano);
    if (markup_bp < 0 || markup_bp > EE_COST_MARKUP_BP_MAX)
        return ee__error(EE_EINVAL, "charge: markup %lld basis points is outside 0..%lld",
                         (long long)markup_bp, (long long)EE_COST_MARKUP_BP_MAX);
    int64_t marked_up = 0, consumed = 0, used_after = allowance_used_nano;
    if (in->platform_key) {
        ee__u128 exact = (ee__u128)cost_nano * (ee__u128)(EE__BP_ONE + markup_bp);
        ee__u128 marked = ee__cost_div_round(exact, (ee__u128)EE__BP_ONE);
        if (marked > (ee__u128)INT64_MAX)
            return ee__error(EE_EINVAL, "charge: cost %lld nano-USD with %lld bp markup "
                             "exceeds the int64 range", (long long)cost_nano,
                             (long long)markup_bp);
        marked_up = (int64_t)marked;
        int64_t remaining = allowance_used_nano >= allowance_nano
                                ? 0 : allowance_nano - allowance_used_nano;
        consumed = marked_up < remaining ? marked_up : remaining;
        used_after = allowance_used_nano + consumed; /* <= allowance: no overflow */
    }
    out->cost_nano = cost_nano;
    out->marked_up_nano = marked_up;
    out->markup_nano = in->platform_key ? marked_up - cost_nano : 0;
    out->allowance_used_nano = consumed;
    out->charged_nano = marked_up - consumed;
    out->allowance_used_after_nano = used_after;
    out->allowance_remaining_nano = allowance_nano > used_after ? allowance_nano - used_after : 0;
    return EE_OK;
}

ee_status ee_cost_charge_calc(int64_t cost_nano, int64_t markup_bp, int64_t allowance_nano,
                              int64_t allowance_used_nano, int is_platform_key,
                              int64_t *charged_out, int64_t *allowance_consumed_out,
                              int64_t *allowance_used_after_out)
{
    ee__cost_charge_input in = {cost_nano, markup_bp, allowance_nano, allowance_used_nano,
                                is_platform_key != 0};
    ee__cost_charge c;
    ee_status st = ee__cost_charge_compute(&in, &c);
    if (st != EE_OK)
        return st;
    if (charged_out)
        *charged_out = c.charged_nano;
    if (allowance_consumed_out)
        *allowance_consumed_out = c.allowance_used_nano;
    if (allowance_used_after_out)
        *allowance_used_after_out = c.allowance_used_after_nano;
    return EE_OK;
}

static int set_money(json_t *doc, const char *key, int64_t nano)
{
    return json_object_set_new(doc, key, ee__cost_money(nano));
}

json_t *ee__cost_charge_doc(const ee__cost_charge_input *in, const ee__cost_charge *c)
{
    json_t *doc = json_object();
    int bad = doc == NULL;
    bad = bad || json_object_set_new(doc, "keyType",
                                     json_string(in->platform_key ? "platform" : "customer"));
    bad = bad || set_money(doc, "cost", c->cost_nano);
    bad = bad || json_object_set_new(doc, "markupBp",
                                     json_integer(in->platform_key ? in->markup_bp : 0));
    bad = bad || set_money(doc, "markedUp", c->marked_up_nano);
    bad = bad || set_money(doc, "allowanceConsumed", c->allowance_used_nano);
    bad = bad || set_money(doc, "charged", c->charged_nano);
    bad = bad || set_money(doc, "allowanceUsedBefore", in->allowance_used_nano);
    bad = bad || set_money(doc, "allowanceUsedAfter", c->allowance_used_after_nano);
    bad = bad || set_money(doc, "allowanceRemaining", c->allowance_remaining_nano);
    if (bad) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

ee_status ee_cost_charge(int64_t cost_nano, int64_t markup_bp, int64_t allowance_nano,
                         int64_t allowance_used_nano, int is_platform_key, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cost_charge: out is NULL");
    *out = NULL;
    ee__cost_charge_input in = {cost_nano, markup_bp, allowance_nano, allowance_used_nano,
                                is_platform_key != 0};
    ee__cost_charge c;
    ee_status st = ee__cost_charge_compute(&in, &c);
    if (st != EE_OK)
        return ee__error_out(out, st);
    return ee__json_out(out, ee__cost_charge_doc(&in, &c));
}

/* ---- largest remainder ------------------------------------------------------------ */

typedef struct {
    ee__u128 rem;
    size_t idx;
} rem_entry;

/* Larger remainder first; equal remainders by lower index (deterministic). */
static int rem_cmp(const void *a, const void *b)
{
    const rem_entry *x = a, *y = b;
    if (x->rem != y->rem)
        return x->rem > y->rem ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

ee_status ee_cost_allocate(int64_t total, const int64_t *weights, size_t n, int64_t *parts_out)
{
    if (n == 0 || parts_out == NULL || weights == NULL)
        return ee__error(EE_EINVAL, "allocate: need at least one part and non-NULL arrays");
    if (total == INT64_MIN)
        return ee__error(EE_EINVAL, "allocate: total INT64_MIN cannot be negated");
    if (n > ((size_t)1 << 40))
        return ee__error(EE_EINVAL, "allocate: too many parts (%zu)", n);
    ee__u128 sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (weights[i] < 0)
            return ee__error(EE_EINVAL, "allocate: weight %zu is negative (%lld)", i,
                             (long long)weights[i]);
        sum += (ee__u128)weights[i]; /* n <= 2^40, weights < 2^63: < 2^103 */
    }
    bool neg = total < 0;
    uint64_t t = neg ? (uint64_t)(-total) : (uint64_t)total;
    if (sum == 0) {
        if (t != 0)
            return ee__error(EE_EINVAL, "allocate: all weights are 0 but the total is %lld",
                             (long long)total);
        memset(parts_out, 0, n * sizeof *parts_out);
        return EE_OK;
    }
    rem_entry small[16];
    rem_entry *rems = n <= 16 ? small : malloc(n * sizeof *rems);
    if (rems == NULL)
        return ee__error(EE_ENOMEM, "allocate: out of memory for %zu parts", n);
    uint64_t given = 0;
    for (size_t i = 0; i < n; i++) {
        ee__u128 exact = (ee__u128)t * (ee__u128)weights[i]; /* < 2^126 */
        uint64_t floor_share = (uint64_t)(exact / sum);      /* <= t */
        rems[i].rem = exact % sum;
        rems[i].idx = i;
        parts_out[i] = (int64_t)floor_share;
        given += floor_share;
    }
    /* The floors lose less than 1 each, so fewer than n units are left. */
    uint64_t left = t - given;
    if (left > 0) {
        qsort(rems, n, sizeof *rems, rem_cmp);
        for (uint64_t k = 0; k < left; k++)
            parts_out[rems[k].idx]++;
    }
    if (neg)
        for (size_t i = 0; i < n; i++)
            parts_out[i] = -parts_out[i];
    if (rems != small)
        free(rems);
    return EE_OK;
}

ee_status ee__cost_split(int64_t *parts, int64_t total, const ee__u128 *atto, size_t n)
{
    if (n == 0)
        return EE_OK;
    int64_t small[16];
    int64_t *w = n <= 16 ? small : malloc(n * sizeof *w);
    if (w == NULL)
        return ee__error(EE_ENOMEM, "out of memory splitting a cost");
    ee__u128 sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += atto[i];
    bool exact = sum <= (ee__u128)INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        int64_t nano = INT64_MAX;
        if (!exact)
            (void)ee__cost_atto_to_nano(atto[i], &nano);
        w[i] = exact ? (int64_t)atto[i] : nano;
    }
    ee_status st;
    if (sum == 0) /* all free: split evenly (total is then 0 too) */
        for (size_t i = 0; i < n; i++)
            w[i] = 1;
    st = ee_cost_allocate(total, w, n, parts);
    if (w != small)
        free(w);
    return st;
}
