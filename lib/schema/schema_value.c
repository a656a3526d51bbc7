/*
 * JSON values as JSON Schema sees them: equality where 1 == 1.0, a hash
 * consistent with it (uniqueItems in O(n log n)), exact number comparison
 * and exact decimal multipleOf, code-point lengths, and recursion-free
 * measurement of untrusted documents.
 */
#include "schema/schema_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__extension__ typedef unsigned __int128 u128;

/* trunc() and fabs() without libm, which the library does not link: every
 * double of magnitude >= 2^53 is integral already. */
static double trunc_d(double d)
{
    return d >= 9.0e15 || d <= -9.0e15 ? d : (double)(long long)d;
}

static double fabs_d(double d)
{
    return d < 0 ? -d : d;
}

/* ---- numbers ------------------------------------------------------------- */

/* Compare an integer with a double exactly (no rounding of either). */
static int cmp_int_real(json_int_t i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double t = trunc_d(d); /* within int64 range now, so the cast is exact */
    json_int_t ti = (json_int_t)t;
    if (i != ti)
        return i < ti ? -1 : 1;
    double frac = d - t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

/* ---- big numbers (schema_bignum.c): exact decimals ------------------------ */

/* A number as sign, significant digits and exponent: a big number's own,
 * an ordinary one's integer digits or shortest decimal. */
typedef struct {
    bool neg;
    const char *d;
    size_t nd; /* 0 for zero */
    int64_t exp;
    char buf[24];
} bnum;

static void bnum_of(const json_t *v, bnum *o)
{
    const ee__schema_big *b = ee__schema_big_of(v);
    if (b != NULL) {
        o->neg = b->neg, o->d = b->digits, o->nd = b->nd, o->exp = b->exp;
        return;
    }
    sch_dec dec = ee__schema_dec_of(v);
    o->neg = json_is_integer(v) ? json_integer_value(v) < 0 : json_real_value(v) < 0;
    int n = snprintf(o->buf, sizeof o->buf, "%llu", (unsigned long long)dec.m);
    o->d = o->buf;
    o->nd = dec.m == 0 || n < 0 ? 0 : (size_t)n;
    o->exp = dec.e;
}

static int bnum_cmp(const bnum *a, const bnum *b)
{
    int sa = a->nd == 0 ? 0 : a->neg ? -1 : 1, sb = b->nd == 0 ? 0 : b->neg ? -1 : 1;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (sa == 0)
        return 0;
    int64_t ea = a->exp + (int64_t)a->nd, eb = b->exp + (int64_t)b->nd; /* magnitudes */
    int m = ea != eb ? (ea < eb ? -1 : 1) : 0;
    if (m == 0) {
        size_t n = a->nd < b->nd ? a->nd : b->nd;
        int r = memcmp(a->d, b->d, n);
        m = r != 0 ? (r < 0 ? -1 : 1) : a->nd == b->nd ? 0 : a->nd < b->nd ? -1 : 1;
    }
    return sa < 0 ? -m : m;
}

bool ee__schema_num_negative(const json_t *v)
{
    const ee__schema_big *b = ee__schema_big_of(v);
    if (b != NULL)
        return b->neg;
    return json_is_number(v) && json_number_value(v) < 0;
}

/* a (with k zeros appended) mod m, m > 0. */
static uint64_t digits_mod(const char *d, size_t nd, uint64_t k, uint64_t m)
{
    uint64_t r = 0;
    for (size_t i = 0; i < nd; i++)
        r = (uint64_t)(((u128)r * 10 + (uint64_t)(d[i] - '0')) % m);
    uint64_t p = 1 % m, base = 10 % m;
    for (; k > 0 && r != 0; k >>= 1) {
        if (k & 1u)
            p = (uint64_t)(((u128)p * base) % m);
        base = (uint64_t)(((u128)base * base) % m);
    }
    return (uint64_t)(((u128)r * p) % m);
}

/* Whether the digits d (then k zeros) are a multiple of the digits q (more
 * than 19 of them): schoolbook long division, one dividend digit at a time
 * against a remainder of nq + 1 digits. */
static int digits_multiple(const char *d, size_t nd, uint64_t k, const char *q, size_t nq)
{
    size_t w = nq + 1;
    unsigned char *r = calloc(2, w);
    if (r == NULL)
        return -2;
    unsigned char *div = r + w;
    for (size_t i = 0; i < nq; i++)
        div[i + 1] = (unsigned char)(q[i] - '0');
    for (uint64_t i = 0; i < nd + k; i++) {
        memmove(r, r + 1, w - 1);
        r[w - 1] = i < nd ? (unsigned char)(d[i] - '0') : 0;
        while (memcmp(r, div, w) >= 0) {
            int borrow = 0;
            for (size_t j = w; j-- > 0;) {
                int x = r[j] - div[j] - borrow;
                borrow = x < 0;
                r[j] = (unsigned char)(x < 0 ? x + 10 : x);
            }
        }
    }
    bool zero = true;
    for (size_t j = 0; j < w && zero; j++)
        zero = r[j] == 0;
    free(r);
    return zero;
}

int ee__schema_big_multiple(const json_t *a, const json_t *b, uint64_t budget, uint64_t *cost)
{
    bnum x, y;
    bnum_of(a, &x);
    bnum_of(b, &y);
    *cost = 1 + x.nd / 8;
    if (x.nd == 0)
        return 1;
    if (y.nd == 0 || x.exp < y.exp)
        return 0; /* x.d has no trailing zero to absorb a finer divisor */
    uint64_t k = (uint64_t)(x.exp - y.exp);
    if (y.nd <= 19) {
        uint64_t m = 0;
        for (size_t i = 0; i < y.nd; i++)
            m = m * 10 + (uint64_t)(y.d[i] - '0');
        return digits_mod(x.d, x.nd, k, m) == 0;
    }
    *cost = ((uint64_t)x.nd + k) * y.nd * EE__SCHEMA_COST_BIG_DIGIT;
    if (*cost > budget)
        return -1;
    return digits_multiple(x.d, x.nd, k, y.d, y.nd);
}

int ee__schema_num_cmp(const json_t *a, const json_t *b)
{
    if (ee__schema_bigs_active() && (ee__schema_big_of(a) != NULL || ee__schema_big_of(b) != NULL)) {
        bnum x, y;
        bnum_of(a, &x);
        bnum_of(b, &y);
        return bnum_cmp(&x, &y);
    }
    if (json_is_integer(a) && json_is_integer(b)) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b);
        return x < y ? -1 : x > y;
    }
    if (json_is_integer(a))
        return cmp_int_real(json_integer_value(a), json_real_value(b));
    if (json_is_integer(b))
        return -cmp_int_real(json_integer_value(b), json_real_value(a));
    double x = json_real_value(a), y = json_real_value(b);
    return x < y ? -1 : x > y;
}

bool ee__schema_is_integral(const json_t *v)
{
    if (json_is_integer(v))
        return ee__schema_big_of(v) == NULL || ee__schema_big_of(v)->exp >= 0;
    if (!json_is_real(v))
        return false;
    const ee__schema_big *b = ee__schema_big_of(v);
    if (b != NULL)
        return b->exp >= 0;
    double d = json_real_value(v);
    return isfinite(d) && d == trunc_d(d);
}

static sch_dec dec_normalise(uint64_t m, int e)
{
    if (m == 0)
        return (sch_dec){0, 0};
    while (m % 10 == 0) {
        m /= 10;
        e++;
    }
    return (sch_dec){m, e};
}

/* The shortest "%.Ne" text that reads back as d: the decimal the JSON
 * author most likely wrote (0.0075, not 0.00749999999999999972). A double
 * carries 15.95 decimal digits, so when the 15-digit rounding reads back,
 * every shorter decimal that reads back is it without its trailing zeros;
 * otherwise 16 or 17 digits. At most three formatting rounds a value. */
sch_dec ee__schema_dec_of_double(double d)
{
    char buf[40];
    int p = 15;
    for (; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    uint64_t m = 0;
    const char *s = buf;
    for (; *s != 'e' && *s != '\0'; s++)
        if (*s >= '0' && *s <= '9')
            m = m * 10 + (uint64_t)(*s - '0');
    int exp10 = *s == 'e' ? atoi(s + 1) : 0;
    return dec_normalise(m, exp10 - (p - 1)); /* strips the trailing zeros */
}

sch_dec ee__schema_dec_of(const json_t *v)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        uint64_t mag = i < 0 ? (uint64_t)(-(i + 1)) + 1u : (uint64_t)i;
        return dec_normalise(mag, 0);
    }
    double d = fabs_d(json_real_value(v));
    if (d == 0 || !isfinite(d))
        return (sch_dec){0, 0};
    return ee__schema_dec_of_double(d);
}

bool ee__schema_dec_multiple(sch_dec a, sch_dec b)
{
    if (a.m == 0)
        return true;
    if (b.m == 0)
        return false;
    /* a.m has no factor 10, so it cannot absorb a finer divisor exponent. */
    if (a.e < b.e)
        return false;
    /* a.m * 10^k mod b.m, with 10^k mod b.m by squaring: O(log k), not O(k)
     * (k reaches 600 for 1e300 against multipleOf 1e-300). */
    uint64_t r = a.m % b.m, p = 1 % b.m, base = 10 % b.m;
    for (unsigned k = (unsigned)(a.e - b.e); k > 0 && r != 0; k >>= 1) {
        if (k & 1u)
            p = (uint64_t)(((u128)p * base) % b.m);
        base = (uint64_t)(((u128)base * base) % b.m);
    }
    return (uint64_t)(((u128)r * p) % b.m) == 0;
}

/* ---- equality and hashing -------------------------------------------------- */

/* String bytes counted as one value by *visited. */
#define BYTES_PER_VALUE 32u

/* Significant digits of a big number (its comparisons and hash read them
 * like a string's bytes), 0 for an ordinary value. */
static size_t big_digits(const json_t *v)
{
    const ee__schema_big *b = ee__schema_big_of(v);
    return b != NULL ? b->nd : 0;
}

static bool equal(const json_t *a, const json_t *b, uint64_t *visited)
{
    (*visited)++;
    if (json_is_number(a) && json_is_number(b)) {
        if (ee__schema_bigs_active())
            *visited += (big_digits(a) + big_digits(b)) / BYTES_PER_VALUE;
        return ee__schema_num_cmp(a, b) == 0;
    }
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        *visited += json_string_length(a) / BYTES_PER_VALUE;
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return false;
        for (size_t i = 0; i < n; i++)
            if (!equal(json_array_get(a, i), json_array_get(b, i), visited))
                return false;
        return true;
    }
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *k;
        json_t *va;
        json_object_foreach((json_t *)a, k, va) {
            const json_t *vb = json_object_get(b, k);
            if (vb == NULL || !equal(va, vb, visited))
                return false;
        }
        return true;
    }
    default:
        return true; /* null, true, false */
    }
}

bool ee__schema_equal(const json_t *a, const json_t *b, uint64_t *visited)
{
    uint64_t n = 0;
    bool r = equal(a, b, &n);
    if (visited != NULL)
        *visited += n;
    return r;
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

static uint64_t bytes_hash(const char *s, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * UINT64_C(0x100000001b3);
    return mix64(h ^ n);
}

static uint64_t double_hash(double d)
{
    if (d == trunc_d(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
        return mix64((uint64_t)(json_int_t)d ^ 0x51);
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return mix64(bits ^ 0x52);
}

/* The hash of a big number: that of an equal ordinary number where one
 * can exist (an int64, or a double whose shortest decimal it is). */
static uint64_t big_hash(const ee__schema_big *b)
{
    int64_t adj = b->exp + (int64_t)b->nd - 1;
    if (b->exp >= 0 && adj <= 18) {
        uint64_t m = 0;
        for (size_t i = 0; i < b->nd; i++)
            m = m * 10 + (uint64_t)(b->digits[i] - '0');
        for (int64_t i = 0; i < b->exp; i++)
            m *= 10;
        if (m <= (b->neg ? UINT64_C(1) << 63 : (UINT64_C(1) << 63) - 1))
            return mix64((b->neg ? 0 - m : m) ^ 0x51);
    }
    if (b->nd <= 17 && adj >= -308 && adj <= 308) {
        char buf[48];
        snprintf(buf, sizeof buf, "%.*se%lld", (int)b->nd, b->digits, (long long)b->exp);
        double d = strtod(buf, NULL);
        if (isfinite(d) && d >= DBL_MIN) {
            sch_dec dec = ee__schema_dec_of_double(d);
            uint64_t m = 0;
            for (size_t i = 0; i < b->nd; i++)
                m = m * 10 + (uint64_t)(b->digits[i] - '0');
            if (dec.m == m && dec.e == b->exp)
                return double_hash(b->neg ? -d : d);
        }
    }
    return mix64(bytes_hash(b->digits, b->nd) ^ mix64((uint64_t)b->exp) ^ (b->neg ? 0x54 : 0x53));
}

static uint64_t number_hash(const json_t *v)
{
    const ee__schema_big *big = ee__schema_big_of(v);
    if (big != NULL)
        return big_hash(big);
    if (ee__schema_is_integral(v)) {
        if (json_is_integer(v))
            return mix64((uint64_t)json_integer_value(v) ^ 0x51);
        double d = json_real_value(v);
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0)
            return mix64((uint64_t)(json_int_t)d ^ 0x51);
    }
    double d = json_real_value(v);
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return mix64(bits ^ 0x52);
}

static uint64_t hash(const json_t *v, uint64_t *visited)
{
    (*visited)++;
    switch (json_typeof(v)) {
    case JSON_NULL: return 0x11;
    case JSON_TRUE: return 0x12;
    case JSON_FALSE: return 0x13;
    case JSON_INTEGER:
    case JSON_REAL:
        *visited += big_digits(v) / BYTES_PER_VALUE;
        return number_hash(v);
    case JSON_STRING:
        *visited += json_string_length(v) / BYTES_PER_VALUE;
        return bytes_hash(json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        uint64_t h = 0x14;
        for (size_t i = 0; i < json_array_size(v); i++)
            h = mix64(h ^ hash(json_array_get(v, i), visited));
        return h;
    }
    case JSON_OBJECT: {
        /* A sum, so that member order does not matter. */
        uint64_t h = 0x15;
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m) {
            size_t klen = strlen(k);
            *visited += klen / BYTES_PER_VALUE;
            h += mix64(bytes_hash(k, klen) ^ (hash(m, visited) * 31u));
        }
        return h;
    }
    }
    return 0;
}

uint64_t ee__schema_hash(const json_t *v, uint64_t *visited)
{
    uint64_t n = 0, h = hash(v, &n);
    if (visited != NULL)
        *visited += n;
    return h;
}

/* ---- text ----------------------------------------------------------------- */

const char *ee__schema_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: return "null";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    default: return ee__schema_is_integral(v) ? "integer" : "number";
    }
}

size_t ee__schema_utf8_len(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

typedef struct {
    char *p;
    size_t len, cap;
} xbuf;

static void xput(xbuf *b, const char *s, size_t n)
{
    size_t room = b->cap - 1 - b->len;
    n = n < room ? n : room;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void xput_dump(xbuf *b, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (text != NULL)
        xput(b, text, strlen(text));
    free(text);
}

/* Compact text of v with big numbers as written, until b is full. */
static void excerpt_walk(xbuf *b, const json_t *v, int depth)
{
    if (b->len + 1 >= b->cap || depth > EE_SCHEMA_MAX_SCHEMA_DEPTH)
        return;
    const ee__schema_big *big = ee__schema_big_of(v);
    if (big != NULL) {
        xput(b, big->token, big->token_len);
    } else if (json_is_array(v)) {
        xput(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v) && b->len + 1 < b->cap; i++) {
            if (i > 0)
                xput(b, ",", 1);
            excerpt_walk(b, json_array_get(v, i), depth + 1);
        }
        xput(b, "]", 1);
    } else if (json_is_object(v)) {
        xput(b, "{", 1);
        const char *key;
        const json_t *m;
        size_t i = 0;
        json_object_foreach((json_t *)v, key, m) {
            if (b->len + 1 >= b->cap)
                break;
            if (i++ > 0)
                xput(b, ",", 1);
            json_t *k = json_string(key);
            if (k != NULL)
                xput_dump(b, k);
            json_decref(k);
            xput(b, ":", 1);
            excerpt_walk(b, m, depth + 1);
        }
        xput(b, "}", 1);
    } else {
        xput_dump(b, v);
    }
}

void ee__schema_excerpt(const json_t *v, char *out, size_t cap)
{
    if (ee__schema_bigs_active() && (ee__schema_big_of(v) != NULL || json_is_array(v) ||
                                     json_is_object(v))) {
        /* twice the room: a longer text is cut with "..." by the quoting */
        xbuf b = {malloc(2 * cap + 2), 0, 2 * cap + 2};
        if (b.p != NULL) {
            b.p[0] = '\0';
            excerpt_walk(&b, v, 0);
            ee__quote_for_message(b.p, out, cap);
            free(b.p);
            ee__utf8_sanitize(out);
            return;
        }
    }
    char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    ee__quote_for_message(text != NULL ? text : "?", out, cap);
    free(text);
    ee__utf8_sanitize(out); /* the cut may have split a sequence */
}

/* ---- measuring untrusted documents without recursion ------------------------ */

typedef struct {
    const json_t *v;
    void *iter;
    size_t idx; /* children returned so far */
} mframe;

/* The next child of f->v (NULL when done); *key is its member name for
 * objects, NULL for arrays. */
static const json_t *next_child(mframe *f, const char **key, size_t *key_len)
{
    *key = NULL;
    *key_len = 0;
    if (json_is_array(f->v))
        return f->idx < json_array_size(f->v) ? json_array_get(f->v, f->idx++) : NULL;
    if (f->iter == NULL)
        return NULL;
    const json_t *child = json_object_iter_value(f->iter);
    *key = json_object_iter_key(f->iter);
    *key_len = json_object_iter_key_len(f->iter);
    f->iter = json_object_iter_next((json_t *)f->v, f->iter);
    f->idx++;
    return child;
}

/* Bytes of a string's JSON text as jansson writes it (quotes, two-byte
 * escapes, \u00XX for other control characters). */
static size_t string_text_bytes(const char *s, size_t len)
{
    size_t n = len + 2;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\' || ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' ||
            ch == '\t')
            n += 1;
        else if (ch < 0x20)
            n += 5;
    }
    return n;
}

/* Bytes of a scalar's compact JSON text: what the text API would have been
 * given, measured rather than estimated (an estimate per value refused
 * [0,0,...] of a quarter of the limit). */
static size_t scalar_bytes(const json_t *v, bool exact_reals)
{
    char num[40];
    switch (json_typeof(v)) {
    case JSON_STRING: return string_text_bytes(json_string_value(v), json_string_length(v));
    case JSON_INTEGER: {
        json_int_t i = json_integer_value(v);
        uint64_t mag = i < 0 ? (uint64_t)(-(i + 1)) + 1u : (uint64_t)i;
        size_t n = i < 0 ? 2 : 1;
        while (mag >= 10)
            mag /= 10, n++;
        return n;
    }
    case JSON_REAL: {
        if (!exact_reals)
            return 3; /* the shortest a real is written: "1.0", "1e5" */
        /* jansson's own spelling: %.17g, with ".0" added when integral. */
        int n = snprintf(num, sizeof num, "%.17g", json_real_value(v));
        return n > 0 ? (size_t)n + (strpbrk(num, ".eE") == NULL ? 2 : 0) : 1;
    }
    case JSON_TRUE:
    case JSON_NULL: return 4;
    case JSON_FALSE: return 5;
    default: return 2; /* [] or {}; members and separators are added by the walk */
    }
}

static void walk(const json_t *v, size_t max_depth, bool exact_reals, size_t *depth,
                 size_t *values, size_t *bytes, size_t *reals)
{
    mframe st[EE_SCHEMA_MAX_SCHEMA_DEPTH + 1];
    if (max_depth > EE_SCHEMA_MAX_SCHEMA_DEPTH)
        max_depth = EE_SCHEMA_MAX_SCHEMA_DEPTH;
    size_t top = 0, maxd = 0, nvals = 1, nbytes = scalar_bytes(v, exact_reals);
    size_t nreals = json_is_real(v);
    if (json_is_array(v) || json_is_object(v)) {
        st[top++] = (mframe){v, json_object_iter((json_t *)v), 0};
        maxd = 1;
    }
    while (top > 0 && maxd <= max_depth) {
        const char *key;
        size_t klen;
        const json_t *c = next_child(&st[top - 1], &key, &klen);
        if (c == NULL) {
            top--;
            continue;
        }
        /* a comma before every child but the first; "key": for members */
        nbytes += (st[top - 1].idx > 1 ? 1 : 0) + scalar_bytes(c, exact_reals);
        nreals += json_is_real(c);
        if (key != NULL)
            nbytes += string_text_bytes(key, klen) + 1;
        nvals++;
        if (json_is_array(c) || json_is_object(c)) {
            if (top == max_depth) {
                maxd = max_depth + 1;
                break;
            }
            st[top++] = (mframe){c, json_object_iter((json_t *)c), 0};
            if (top > maxd)
                maxd = top;
        }
    }
    *depth = maxd;
    *values = nvals;
    *bytes = nbytes;
    *reals = nreals;
}

/* Longest text of a real beyond the 3 bytes counted at first
 * ("-1.7976931348623157e+308" is 24). */
#define REAL_EXTRA_MAX 21u

void ee__schema_measure(const json_t *v, size_t max_depth, size_t max_bytes, size_t *depth,
                        size_t *values, size_t *bytes)
{
    /* Formatting every real costs a few hundred ns each: count them at
     * their shortest, and format them only when that decides the limit. */
    size_t reals;
    walk(v, max_depth, false, depth, values, bytes, &reals);
    if (*depth <= max_depth && *bytes <= max_bytes && reals > 0 &&
        *bytes + REAL_EXTRA_MAX * reals > max_bytes)
        walk(v, max_depth, true, depth, values, bytes, &reals);
}

ee_status ee__schema_check_instance_size(const json_t *instance, size_t *values)
{
    size_t depth, bytes;
    ee__schema_measure(instance, EE_SCHEMA_MAX_DEPTH, EE_SCHEMA_MAX_TEXT, &depth, values, &bytes);
    if (depth > EE_SCHEMA_MAX_DEPTH)
        return ee__error(EE_ETOOBIG, "instance nests arrays/objects deeper than %d levels",
                         EE_SCHEMA_MAX_DEPTH);
    if (bytes > EE_SCHEMA_MAX_TEXT)
        return ee__error(EE_ETOOBIG, "instance is %zu bytes as JSON text, more than the %d allowed",
                         bytes, EE_SCHEMA_MAX_TEXT);
    return EE_OK;
}

