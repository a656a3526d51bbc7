/*
 * Numbers jansson cannot hold exactly - integers beyond int64, reals that
 * overflow or underflow a double, decimals with more significant digits
 * than a double keeps - are valid JSON and valid instances of "integer" and
 * "number". Before jansson parses a schema or an instance, such tokens are
 * kept aside as exact decimals (sign, digits, exponent) and replaced in a
 * copy of the text by a same-length placeholder jansson reads ("1   ",
 * "-0.5  "); after the parse, the placeholders are found by walking the
 * document in text order (jansson keeps members in insertion order). The
 * number keywords, "type", equality and hashing (schema_value.c) consult
 * the table while a compile or validation runs on this thread.
 */
#include "core/core.h"
#include "schema/schema_internal.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

/* The tables consulted by ee__schema_big_of() on this thread: the schema's
 * and the instance's (either may be NULL). */
static _Thread_local const ee__schema_bigs *tls_active[2];

struct ee__schema_bigs {
    ee__schema_big *v; /* sorted by key once keyed, by ord before */
    size_t n, cap;
};

void ee__schema_bigs_free(ee__schema_bigs *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->v[i].buf);
    free(b->v);
    free(b);
}

/* ---- reading a token --------------------------------------------------------- */

/* Length of the JSON number at s[0..len) (RFC 8259 grammar), or 0 when the
 * span is not exactly one number. */
static size_t number_len(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0') {
        i++;
    } else if (i < len && s[i] >= '1' && s[i] <= '9') {
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    } else {
        return 0;
    }
    if (i < len && s[i] == '.') {
        size_t f = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t f = i;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return 0;
    }
    return i == len ? len : 0;
}

/* Decompose a well-formed token into b (token and digits in mem, 2 * len +
 * 2 bytes): 0, or 1 when
 * its exponent or its digits exceed the bounds, -1 out of memory. A zero
 * gets nd == 0. */
static int decompose(const char *s, size_t len, ee__schema_big *b, char *mem)
{
    memset(b, 0, sizeof *b);
    if (mem == NULL)
        return -1;
    memcpy(mem, s, len);
    mem[len] = '\0';
    b->token = mem;
    b->token_len = len;
    char *d = mem + len + 1;
    size_t i = 0, nd = 0, nfrac = 0;
    b->neg = s[0] == '-';
    i += b->neg;
    bool frac = false;
    for (; i < len && s[i] != 'e' && s[i] != 'E'; i++) {
        if (s[i] == '.') {
            frac = true;
            continue;
        }
        if (nd == 0 && s[i] == '0') { /* a leading zero */
            nfrac += frac;
            continue;
        }
        d[nd++] = s[i];
        nfrac += frac;
    }
    b->integer_token = !frac && i == len;
    int64_t e = 0;
    if (i < len) {
        i++;
        bool eneg = s[i] == '-';
        i += s[i] == '-' || s[i] == '+';
        for (; i < len; i++) {
            if (e > EE__SCHEMA_BIG_MAX_EXP)
                return 1;
            e = e * 10 + (s[i] - '0');
        }
        if (e > EE__SCHEMA_BIG_MAX_EXP)
            return 1;
        e = eneg ? -e : e;
    }
    while (nd > 0 && d[nd - 1] == '0') {
        nd--;
        e++;
    }
    d[nd] = '\0';
    if (nd > EE__SCHEMA_BIG_MAX_DIGITS)
        return 1;
    b->digits = d;
    b->nd = nd;
    b->exp = nd == 0 ? 0 : e - (int64_t)nfrac;
    return 0;
}

/* Whether the decomposed token b is one jansson does not hold exactly. */
static bool needs_big(const ee__schema_big *b)
{
    if (b->nd == 0)
        return false;
    int64_t adj = b->exp + (int64_t)b->nd - 1; /* exponent of the leading digit */
    if (b->integer_token) {
        size_t ndig = b->nd + (size_t)b->exp; /* no fraction: exp >= 0 */
        if (ndig != 19)
            return ndig > 19;
        char full[20];
        memcpy(full, b->digits, b->nd);
        memset(full + b->nd, '0', 19 - b->nd);
        return memcmp(full, b->neg ? "9223372036854775808" : "9223372036854775807", 19) > 0;
    }
    if (b->nd > 17 || adj < -330 || adj > 310)
        return true; /* more digits than a double keeps, or far out of its range */
    if (adj >= -307 && adj <= 307)
        return false; /* a double holds it as well as any decimal of 17 digits */
    double x = strtod(b->token, NULL); /* near the ends of the range */
    if (x < 0)
        x = -x;
    return !(x >= DBL_MIN && x <= DBL_MAX);
}

static ee_status push(ee__schema_bigs *t, const ee__schema_big *b)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 8;
        ee__schema_big *v = realloc(t->v, cap * sizeof *v);
        if (v == NULL)
            return ee__error(EE_ENOMEM, "out of memory reading a number");
        t->v = v, t->cap = cap;
    }
    t->v[t->n++] = *b;
    return EE_OK;
}

/* ---- finding the placeholders --------------------------------------------- */

typedef struct {
    ee__schema_bigs *t;
    size_t next; /* index into t->v of the next big to place */
    size_t ord;  /* numbers seen so far */
} keyer;

static void key_walk(keyer *k, const json_t *v)
{
    if (k->next == k->t->n)
        return;
    if (json_is_number(v)) {
        if (k->t->v[k->next].ord == k->ord)
            k->t->v[k->next++].key = v;
        k->ord++;
    } else if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            key_walk(k, json_array_get(v, i));
    } else if (json_is_object(v)) {
        const char *name;
        const json_t *m;
        json_object_foreach((json_t *)v, name, m)
            key_walk(k, m);
    }
}

static int by_ord(const void *a, const void *b)
{
    size_t x = ((const ee__schema_big *)a)->ord, y = ((const ee__schema_big *)b)->ord;
    return x < y ? -1 : x > y;
}

static int by_key(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const ee__schema_big *)a)->key;
    uintptr_t y = (uintptr_t)((const ee__schema_big *)b)->key;
    return x < y ? -1 : x > y;
}

ee_status ee__schema_bigs_key(ee__schema_bigs *t, const json_t *doc)
{
    if (t == NULL || t->n == 0)
        return EE_OK;
    qsort(t->v, t->n, sizeof *t->v, by_ord);
    keyer k = {t, 0, 0};
    key_walk(&k, doc);
    if (k.next != t->n) /* cannot happen on a document parsed from the text */
        return ee__error(EE_ERROR, "big numbers do not match the parsed document");
    qsort(t->v, t->n, sizeof *t->v, by_key);
    return EE_OK;
}

/* ---- the parse ------------------------------------------------------------ */

ee_status ee__schema_parse_text(const char *text, size_t max_bytes, size_t max_depth,
                                const char *what, json_t **out, ee__schema_bigs **bigs)
{
    *out = NULL;
    *bigs = NULL;
    const size_t flags = JSON_DECODE_ANY | JSON_ALLOW_NUL;
    if (text == NULL)
        return ee__json_parse(text, max_bytes, max_depth, flags, what, out);
    size_t len = strnlen(text, max_bytes + 1);
    if (len > max_bytes)
        return ee__json_parse(text, max_bytes, max_depth, flags, what, out);
    ee__schema_bigs *t = NULL;
    char *copy = NULL;
    ee_status st = EE_OK;
    size_t ord = 0;
    for (size_t i = 0; i < len && st == EE_OK; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '"') { /* skip the string */
            for (i++; i < len && text[i] != '"'; i++)
                i += text[i] == '\\';
            continue;
        }
        if (c != '-' && (unsigned)(c - '0') > 9u)
            continue;
        size_t start = i, j = i + (c == '-');
        while (j < len && (unsigned)(text[j] - '0') <= 9u)
            j++;
        bool plain = j == len || (text[j] != '.' && text[j] != 'e' && text[j] != 'E' &&
                                  text[j] != '+' && text[j] != '-');
        unsigned mant_digits = (unsigned)(j - start) - (c == '-'), exp_digits = 0, expv = 0;
        bool in_exp = false;
        while (!plain && j < len &&
               ((text[j] >= '0' && text[j] <= '9') || text[j] == '.' || text[j] == 'e' ||
                text[j] == 'E' || text[j] == '+' || text[j] == '-')) {
            char ch = text[j];
            if (ch == 'e' || ch == 'E') {
                in_exp = true;
            } else if (ch >= '0' && ch <= '9') {
                if (!in_exp)
                    mant_digits++;
                else if (++exp_digits <= 3)
                    expv = expv * 10 + (unsigned)(ch - '0');
            }
            j++;
        }
        i = j - 1;
        size_t my_ord = ord++;
        /* the usual numbers, decided without a closer look: an int64, or at
         * most 17 digits well inside a double's range */
        if (plain ? j - start <= 18 : mant_digits <= 17 && exp_digits <= 3 && expv <= 290)
            continue;
        if (number_len(text + start, j - start) == 0)
            continue; /* not a number: jansson refuses the text */
        ee__schema_big b;
        char small[96];
        size_t need = 2 * (j - start) + 2;
        int rc = decompose(text + start, j - start, &b, need <= sizeof small ? small : NULL);
        if (rc == 0 && !needs_big(&b))
            continue;
        if (rc == 0 || need > sizeof small) { /* keep it: decompose into its own copy */
            char *mem = malloc(need);
            rc = decompose(text + start, j - start, &b, mem);
            b.buf = mem;
            if (rc == 0 && !needs_big(&b)) { /* a long spelling of an ordinary number */
                free(mem);
                continue;
            }
        }
        if (rc != 0) {
            free(b.buf);
            st = rc < 0 ? ee__error(EE_ENOMEM, "out of memory reading a number")
                        : ee__error(EE_ETOOBIG, "%s: the number at byte %zu has more than %d "
                                    "significant digits or an exponent beyond %lld", what, start,
                                    EE__SCHEMA_BIG_MAX_DIGITS, (long long)EE__SCHEMA_BIG_MAX_EXP);
            break;
        }
        b.ord = my_ord;
        if (t == NULL && (t = calloc(1, sizeof *t)) == NULL)
            st = ee__error(EE_ENOMEM, "out of memory reading a number");
        if (copy == NULL && st == EE_OK && (copy = malloc(len + 1)) != NULL)
            memcpy(copy, text, len + 1);
        if (st == EE_OK && copy == NULL)
            st = ee__error(EE_ENOMEM, "out of memory reading a number");
        if (st == EE_OK)
            st = push(t, &b);
        if (st != EE_OK) {
            free(b.buf);
            break;
        }
        /* same length, same sign, same integrality */
        const char *ph = b.exp >= 0 ? (b.neg ? "-1" : "1") : (b.neg ? "-0.5" : "0.5");
        memset(copy + start, ' ', j - start);
        memcpy(copy + start, ph, strlen(ph));
    }
    if (st != EE_OK) {
        free(copy);
        ee__schema_bigs_free(t);
        return st;
    }
    st = ee__json_parse(copy != NULL ? copy : text, max_bytes, max_depth, flags, what, out);
    free(copy);
    if (st == EE_OK)
        st = ee__schema_bigs_key(t, *out);
    if (st != EE_OK) {
        json_decref(*out);
        *out = NULL;
        ee__schema_bigs_free(t);
        return st;
    }
    *bigs = t;
    return EE_OK;
}

/* ---- lookup ----------------------------------------------------------------- */

void ee__schema_bigs_enter(const ee__schema_bigs *schema_bigs, const ee__schema_bigs *inst_bigs,
                           const ee__schema_bigs *saved[2])
{
    saved[0] = tls_active[0], saved[1] = tls_active[1];
    tls_active[0] = schema_bigs != NULL && schema_bigs->n > 0 ? schema_bigs : NULL;
    tls_active[1] = inst_bigs != NULL && inst_bigs->n > 0 ? inst_bigs : NULL;
}

void ee__schema_bigs_leave(const ee__schema_bigs *const saved[2])
{
    tls_active[0] = saved[0], tls_active[1] = saved[1];
}

static const ee__schema_big *find(const ee__schema_bigs *t, const json_t *v)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if ((uintptr_t)t->v[mid].key < (uintptr_t)v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < t->n && t->v[lo].key == v ? &t->v[lo] : NULL;
}

const ee__schema_big *ee__schema_big_of(const json_t *v)
{
    if (tls_active[0] == NULL && tls_active[1] == NULL)
        return NULL; /* the usual case: one thread-local load */
    if (!json_is_number(v))
        return NULL;
    const ee__schema_big *b = tls_active[0] != NULL ? find(tls_active[0], v) : NULL;
    if (b == NULL && tls_active[1] != NULL)
        b = find(tls_active[1], v);
    return b;
}

bool ee__schema_bigs_active(void)
{
    return tls_active[0] != NULL || tls_active[1] != NULL;
}

bool ee__schema_bigs_within(const ee__schema_bigs *t, const json_t *v)
{
    if (t == NULL || t->n == 0)
        return false;
    if (json_is_number(v))
        return find(t, v) != NULL;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (ee__schema_bigs_within(t, json_array_get(v, i)))
                return true;
    } else if (json_is_object(v)) {
        const char *name;
        const json_t *m;
        json_object_foreach((json_t *)v, name, m)
            if (ee__schema_bigs_within(t, m))
                return true;
    }
    return false;
}

/* ---- rendering a document that holds big numbers ------------------------ */

static void put_scalar(ee__text *b, const json_t *v)
{
    size_t n = 0;
    char *s = ee__json_text(v, &n);
    if (s == NULL) {
        b->oom = true;
        return;
    }
    ee__text_add(b, s, n);
    free(s);
}

/* Compact JSON as ee__json_text() writes it, members in their order, each
 * big number as its token was written. */
static void dump_walk(ee__text *b, const ee__schema_bigs *t, const json_t *v)
{
    if (json_is_object(v)) {
        ee__text_add(b, "{", 1);
        const char *name;
        const json_t *m;
        bool first = true;
        json_object_foreach((json_t *)v, name, m) {
            if (!first)
                ee__text_add(b, ",", 1);
            first = false;
            json_t *k = json_string(name);
            if (k == NULL)
                b->oom = true;
            else
                put_scalar(b, k);
            json_decref(k);
            ee__text_add(b, ":", 1);
            dump_walk(b, t, m);
        }
        ee__text_add(b, "}", 1);
    } else if (json_is_array(v)) {
        ee__text_add(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                ee__text_add(b, ",", 1);
            dump_walk(b, t, json_array_get(v, i));
        }
        ee__text_add(b, "]", 1);
    } else {
        const ee__schema_big *big = json_is_number(v) ? find(t, v) : NULL;
        if (big != NULL)
            ee__text_add(b, big->token, big->token_len);
        else
            put_scalar(b, v);
    }
}

ee_status ee__schema_bigs_dump(const json_t *doc, const ee__schema_bigs *bigs, char **out)
{
    *out = NULL;
    if (bigs == NULL || bigs->n == 0) {
        *out = ee__json_text(doc, NULL);
        return *out != NULL ? EE_OK : ee__error(EE_ENOMEM, "out of memory rendering a document");
    }
    ee__text b = {0};
    dump_walk(&b, bigs, doc);
    if (b.oom || b.p == NULL) {
        free(b.p);
        return ee__error(EE_ENOMEM, "out of memory rendering a document");
    }
    *out = b.p;
    return EE_OK;
}
