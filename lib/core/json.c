/* JSON output helpers shared by every module. */
#include "core.h"

#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- compact text -------------------------------------------------------- */

typedef struct jtext {
    char *p;
    size_t n, cap;
    bool failed; /* out of memory, or a string that is not UTF-8 */
} jtext;

static void jt_put(jtext *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->cap - b->n <= n) {
        size_t cap = b->cap != 0 ? b->cap : 256;
        while (cap - b->n <= n) {
            if (cap > SIZE_MAX / 2) {
                b->failed = true;
                return;
            }
            cap *= 2;
        }
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void jt_string(jtext *b, const char *s, size_t n)
{
    if (!ee__utf8_valid(s, n)) {
        b->failed = true;
        return;
    }
    jt_put(b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jt_put(b, s + run, i - run);
        run = i + 1;
        char esc[8];
        switch (c) {
        case '"': jt_put(b, "\\\"", 2); break;
        case '\\': jt_put(b, "\\\\", 2); break;
        case '\b': jt_put(b, "\\b", 2); break;
        case '\f': jt_put(b, "\\f", 2); break;
        case '\n': jt_put(b, "\\n", 2); break;
        case '\r': jt_put(b, "\\r", 2); break;
        case '\t': jt_put(b, "\\t", 2); break;
        default:
            snprintf(esc, sizeof esc, "\\u%04X", (unsigned)c);
            jt_put(b, esc, 6);
        }
    }
    jt_put(b, s + run, n - run);
    jt_put(b, "\"", 1);
}

/* A real as its shortest decimal that reads back as the same double (the
 * 15-digit rounding when it reads back - then every shorter decimal that
 * does is it without trailing zeros - else 16, else 17 digits), placed as
 * JavaScript places it - plain from 1e-6 up to below 1e21, else with an
 * exponent (1e21, 1e-7, no '+') - and with ".0" on an integral value, as
 * jansson writes one, so that it reads back as a real. jansson itself
 * writes 17 digits: 0.000123 came out as 0.00012300000000000001. */
static void jt_real(jtext *b, double d)
{
    char e[40];
    int p = 15;
    for (;; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, d);
        if (p == 17 || strtod(e, NULL) == d)
            break;
    }
    /* e: [-]D.DDDDe[+-]X */
    char digits[20], out[48];
    size_t k = 0, o = 0;
    const char *c = e;
    if (*c == '-')
        out[o++] = *c++;
    for (; *c != 'e' && *c != '\0'; c++)
        if (*c >= '0' && *c <= '9' && k < sizeof digits)
            digits[k++] = *c;
    int x = *c == 'e' ? atoi(c + 1) : 0;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int n = x + 1; /* where the point goes, counted from the first digit */
    if (n > 21 || n < -5) {
        out[o++] = digits[0];
        if (k > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, k - 1);
            o += k - 1;
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "e%d", x);
    } else if (n <= 0) {
        memcpy(out + o, "0.", 2);
        o += 2;
        for (int z = 0; z < -n; z++)
            out[o++] = '0';
        memcpy(out + o, digits, k);
        o += k;
    } else if ((size_t)n >= k) {
        memcpy(out + o, digits, k);
        o += k;
        for (size_t z = k; z < (size_t)n; z++)
            out[o++] = '0';
        memcpy(out + o, ".0", 2);
        o += 2;
    } else {
        memcpy(out + o, digits, (size_t)n);
        o += (size_t)n;
        out[o++] = '.';
        memcpy(out + o, digits + n, k - (size_t)n);
        o += k - (size_t)n;
    }
    jt_put(b, out, o);
}

static void jt_value(jtext *b, const json_t *v)
{
    char num[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *m;
        bool first = true;
        jt_put(b, "{", 1);
        json_object_foreach((json_t *)v, key, m) {
            if (!first)
                jt_put(b, ",", 1);
            first = false;
            jt_string(b, key, strlen(key));
            jt_put(b, ":", 1);
            jt_value(b, m);
        }
        jt_put(b, "}", 1);
        break;
    }
    case JSON_ARRAY:
        jt_put(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i > 0)
                jt_put(b, ",", 1);
            jt_value(b, json_array_get(v, i));
        }
        jt_put(b, "]", 1);
        break;
    case JSON_STRING:
        jt_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        jt_put(b, num, (size_t)n);
        break;
    }
    case JSON_REAL:
        jt_real(b, json_real_value(v));
        break;
    case JSON_TRUE:
        jt_put(b, "true", 4);
        break;
    case JSON_FALSE:
        jt_put(b, "false", 5);
        break;
    case JSON_NULL:
        jt_put(b, "null", 4);
        break;
    }
}

char *ee__json_text(const json_t *v, size_t *len)
{
    jtext b = {NULL, 0, 0, v == NULL};
    if (v != NULL)
        jt_value(&b, v);
    jt_put(&b, "", 1); /* the terminator */
    if (b.failed) {
        free(b.p);
        return NULL;
    }
    if (len != NULL)
        *len = b.n - 1;
    return b.p;
}

ee_status ee__json_out(char **out, json_t *doc)
{
    if (doc == NULL)
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory building a JSON document"));
    char *text = ee__json_text(doc, NULL);
    json_decref(doc);
    if (text == NULL)
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory serialising a JSON document"));
    *out = text;
    return EE_OK;
}

ee_status ee__json_page_args(const json_t *q, const char *what, size_t def, size_t max,
                             size_t *limit_out, const char **cursor_out)
{
    json_t *lim = json_object_get(q, "limit");
    if (lim != NULL && (!json_is_integer(lim) || json_integer_value(lim) < 1 ||
                        (uint64_t)json_integer_value(lim) > max))
        return ee__error(EE_EINVAL, "%s: \"limit\" (at /limit) must be an integer 1..%zu", what,
                         max);
    json_t *cur = json_object_get(q, "cursor");
    if (cur != NULL && !json_is_string(cur))
        return ee__error(EE_EINVAL, "%s: \"cursor\" (at /cursor) must be a string", what);
    *limit_out = lim != NULL ? (size_t)json_integer_value(lim) : def;
    *cursor_out = json_string_value(cur);
    return EE_OK;
}

ee_status ee__json_page_out(char **out, ee_status status, json_t *data, char *next)
{
    if (status != EE_OK) {
        json_decref(data);
        ee_free(next);
        return ee__error_out(out, status);
    }
    json_t *doc = json_pack("{s:o, s:s?}", "data", data, "nextCursor", next);
    ee_free(next);
    return ee__json_out(out, doc);
}

/* Index of the quote that closes the string opening at text[i], or len:
 * the one rule for skipping strings (and their escapes) that the scans of
 * raw JSON text below share. */
static size_t string_end(const char *text, size_t len, size_t i)
{
    for (i++; i < len; i++) {
        if (text[i] == '\\')
            i++;
        else if (text[i] == '"')
            return i;
    }
    return len;
}

bool ee__json_depth_ok(const char *text, size_t len, size_t max_depth)
{
    size_t depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '"') {
            i = string_end(text, len, i);
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth)
                return false;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return true;
}

/* The first number token of text[0..len) (outside strings) that is
 * negative zero or a non-zero value a double holds only as 0 or a
 * subnormal; len if none. */
static size_t inexact_number(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '"') {
            i = string_end(text, len, i);
            continue;
        }
        if (c != '-' && (c < '0' || c > '9'))
            continue;
        size_t start = i, j = i + (c == '-');
        bool nonzero = false, real = false;
        while (j < len && ((text[j] >= '0' && text[j] <= '9') || text[j] == '.')) {
            nonzero = nonzero || (text[j] >= '1' && text[j] <= '9');
            real = real || text[j] == '.';
            j++;
        }
        size_t mant_end = j;
        if (j < len && (text[j] == 'e' || text[j] == 'E')) {
            j++;
            while (j < len && ((text[j] >= '0' && text[j] <= '9') || text[j] == '+' ||
                               text[j] == '-'))
                j++;
        }
        i = j - 1;
        if (!nonzero) {
            if (c == '-' && mant_end > start + 1)
                return start; /* -0, -0.0, -0e5 */
            continue;
        }
        if (!real && mant_end == j)
            continue; /* an integer: jansson reads it exactly or refuses it */
        char small[64], *buf = j - start < sizeof small ? small : malloc(j - start + 1);
        if (buf == NULL)
            continue; /* jansson reads it; only the check is skipped */
        memcpy(buf, text + start, j - start);
        buf[j - start] = '\0';
        double d = strtod(buf, NULL);
        if (buf != small)
            free(buf);
        if (d == 0.0 || (d > -DBL_MIN && d < DBL_MIN))
            return start;
    }
    return len;
}

/* Offset of the first byte that does not start a well-formed UTF-8
 * sequence, or len if there is none. */
static size_t utf8_bad_offset(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char b = (unsigned char)s[i];
        size_t n = b < 0x80 ? 1 : b < 0xC0 ? 0 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : b < 0xF8 ? 4 : 0;
        if (n == 0 || i + n > len || !ee__utf8_valid(s + i, n))
            return i;
        i += n;
    }
    return len;
}

ee_status ee__json_parse(const char *text, size_t max_bytes, size_t max_depth, size_t flags,
                         const char *what, json_t **out)
{
    *out = NULL;
    if (text == NULL)
        return ee__error(EE_EINVAL, "%s is NULL", what);
    /* Look at no more than the limit: a 100 MB document costs the same
     * as one byte past the limit, and jansson never sees it. */
    size_t len = strnlen(text, max_bytes + 1);
    if (len > max_bytes)
        return ee__error(EE_ETOOBIG, "%s exceeds the size limit of %zu bytes", what, max_bytes);
    if (!ee__utf8_valid(text, len))
        return ee__error(EE_EPARSE, "%s is not valid UTF-8 (byte offset %zu)", what,
                         utf8_bad_offset(text, len));
    if (!ee__json_depth_ok(text, len, max_depth))
        return ee__error(EE_ETOOBIG, "%s nests deeper than %zu levels", what, max_depth);
    if (flags & EE__JSON_EXACT_NUMBERS) {
        size_t at = inexact_number(text, len);
        if (at < len)
            return ee__error(EE_EINVAL, "%s: the number at byte %zu cannot be represented (a "
                             "value that underflows to 0, or negative zero)", what, at);
    }
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, (flags & ~EE__JSON_EXACT_NUMBERS) | JSON_REJECT_DUPLICATES,
                             &jerr);
    if (doc == NULL) {
        /* jansson's reason may end in "near '<token>'": the token is the
         * caller's text (a key, a password), so it is left out. */
        char *near = strstr(jerr.text, " near '");
        if (near != NULL)
            *near = '\0';
        char q[160];
        ee__quote_for_message(jerr.text, q, sizeof q);
        return ee__error(EE_EPARSE, "%s is not JSON: %s at byte %d", what, q, jerr.position);
    }
    *out = doc;
    return EE_OK;
}

/* A member name as a JSON pointer token ('~' -> "~0", '/' -> "~1"), cut at a
 * character boundary to fit a message. */
static void pointer_token(const char *name, char *out, size_t cap)
{
    char esc[128];
    size_t n = 0;
    const char *p = name;
    for (; *p != '\0' && n + 3 < sizeof esc; p++) {
        if (*p == '~' || *p == '/') {
            esc[n++] = '~';
            esc[n++] = *p == '~' ? '0' : '1';
        } else {
            esc[n++] = *p;
        }
    }
    if (((unsigned char)*p & 0xC0) == 0x80) { /* stopped inside a character: drop it */
        while (n > 0 && ((unsigned char)esc[n - 1] & 0xC0) == 0x80)
            n--;
        if (n > 0 && (unsigned char)esc[n - 1] >= 0xC0)
            n--;
    }
    esc[n] = '\0';
    ee__quote_for_message(esc, out, cap);
}

ee_status ee__json_check_members(const json_t *obj, const char *const *allowed, const char *what,
                                 const char *pointer)
{
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        bool known = false;
        for (size_t i = 0; allowed != NULL && allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (!known) {
            char tok[96];
            pointer_token(key, tok, sizeof tok);
            return ee__error(EE_EINVAL, "%s: unknown member \"%s\" (at %s/%s)", what, tok,
                             pointer != NULL ? pointer : "", tok);
        }
    }
    return EE_OK;
}
