/* JSON output helpers shared by every module. */
#include "core.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

ee_status ee__json_out(char **out, json_t *doc)
{
    if (doc == NULL)
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory building a JSON document"));
    char *text = json_dumps(doc, JSON_COMPACT);
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
