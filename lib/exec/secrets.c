/*
 * Dropping secret-looking members from execution outputs (support.h): the
 * names of EXEC_SECRET_FIELDS, compared without case and separators, and
 * matched where a listed name ends a word of the member's name - so
 * "x-api-key", "openaiApiKey", "openaiapikey" and "BEARER_TOKEN" go, while
 * "tokensUsed" and "total_tokens" (usage figures, not secrets) stay.
 */
#include <stdlib.h>
#include <string.h>

#include "exec/support.h"
#include "exec/support_internal.h"

struct ee__secret_names {
    size_t n;
    size_t len[EE__SECRET_NAMES_MAX];
    char name[EE__SECRET_NAMES_MAX][EE__SECRET_NAME_MAX + 1]; /* normalised */
};

static bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_alnum(unsigned char c) { return is_lower(c) || is_upper(c) || is_digit(c); }
/* Bytes of a name that count: ASCII letters and digits, and every non-ASCII
 * byte (compared as they are); the rest ('_', '-', '.', spaces) separate. */
static bool counts(unsigned char c) { return is_alnum(c) || c >= 0x80; }
static unsigned char lower(unsigned char c) { return is_upper(c) ? (unsigned char)(c + 32) : c; }

ee_status ee__secret_names_parse(const char *list, ee__secret_names **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee__secret_names_parse: out is NULL");
    *out = NULL;
    if (list == NULL)
        list = EE__EXEC_SECRET_FIELDS_DEFAULT;
    ee__secret_names *names = calloc(1, sizeof *names);
    if (names == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing EXEC_SECRET_FIELDS");
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ",");
        /* Surrounding spaces are the list's, not the name's. */
        size_t a = 0, b = n;
        while (a < b && (p[a] == ' ' || p[a] == '\t'))
            a++;
        while (b > a && (p[b - 1] == ' ' || p[b - 1] == '\t'))
            b--;
        if (b - a > EE__SECRET_NAME_MAX) {
            size_t which = names->n + 1;
            free(names);
            return ee__error(EE_EINVAL, "EXEC_SECRET_FIELDS: name %zu is %zu bytes long, the "
                                        "limit is %d", which, b - a, EE__SECRET_NAME_MAX);
        }
        size_t k = 0;
        char norm[EE__SECRET_NAME_MAX + 1];
        for (size_t i = a; i < b; i++)
            if (counts((unsigned char)p[i]))
                norm[k++] = (char)lower((unsigned char)p[i]);
        if (k > 0) { /* an empty entry (",,", "_") names nothing */
            if (names->n == EE__SECRET_NAMES_MAX) {
                free(names);
                return ee__error(EE_EINVAL, "EXEC_SECRET_FIELDS: more than %d names",
                                 EE__SECRET_NAMES_MAX);
            }
            memcpy(names->name[names->n], norm, k);
            names->name[names->n][k] = '\0';
            names->len[names->n++] = k;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    *out = names;
    return EE_OK;
}

void ee__secret_names_free(ee__secret_names *names)
{
    free(names);
}

/* Member names longer than this are compared on their first bytes only
 * and, past them, dropped whole: no real output member is that long, and
 * a name cut in two could hide a listed word at its end. */
#define NAME_SCAN_MAX 256

static bool name_matches(const ee__secret_names *names, const char *key, size_t len)
{
    char norm[NAME_SCAN_MAX];
    bool word_end[NAME_SCAN_MAX];
    size_t k = 0;
    const unsigned char *s = (const unsigned char *)key;
    for (size_t i = 0; i < len; i++) {
        if (!counts(s[i]))
            continue;
        if (k == NAME_SCAN_MAX)
            return true;
        norm[k] = (char)lower(s[i]);
        /* This byte ends a word when the next counted byte starts another:
         * a separator (an embedded NUL too), lower -> Upper ("apiKey"),
         * UPPER -> Upper-lower ("APIKey"), a letter <-> digit switch, or
         * the end. */
        unsigned char c = s[i], d = i + 1 < len ? s[i + 1] : 0;
        unsigned char e = i + 2 < len ? s[i + 2] : 0;
        word_end[k] = !counts(d) || (is_lower(c) && is_upper(d)) ||
                      (is_upper(c) && is_upper(d) && is_lower(e)) ||
                      (is_digit(c) != is_digit(d) && is_alnum(c) && is_alnum(d));
        k++;
    }
    for (size_t j = 0; j < names->n; j++) {
        size_t n = names->len[j];
        for (size_t end = n; end <= k; end++)
            if (word_end[end - 1] && memcmp(norm + end - n, names->name[j], n) == 0)
                return true;
    }
    return false;
}

/* What a container past the depth bound held: each of its members counts
 * as dropped; nothing is walked further. */
static size_t count_members(const json_t *v)
{
    return json_is_object(v) ? json_object_size(v) : json_is_array(v) ? json_array_size(v) : 0;
}

static size_t drop(const ee__secret_names *names, json_t *v, size_t depth)
{
    size_t dropped = 0;
    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (depth >= EE__SECRETS_DEPTH_MAX) {
        /* Deeper than any parsed output can be: empty it rather than keep
         * what was not looked at. */
        dropped = count_members(v);
        if (json_is_object(v))
            json_object_clear(v);
        else
            json_array_clear(v);
        return dropped;
    }
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            dropped += drop(names, e, depth + 1);
        return dropped;
    }
    const char *key;
    json_t *e;
    void *tmp;
#if JANSSON_VERSION_HEX >= 0x020e00
    /* Keys built in C may hold a NUL byte (jansson's parser refuses them):
     * the whole key is matched, and the very member deleted. */
    size_t klen;
    json_object_keylen_foreach_safe(v, tmp, key, klen, e) {
        if (name_matches(names, key, klen)) {
            json_object_deln(v, key, klen);
            dropped++;
        } else {
            dropped += drop(names, e, depth + 1);
        }
    }
#else
    json_object_foreach_safe(v, tmp, key, e) {
        if (name_matches(names, key, strlen(key))) {
            json_object_del(v, key);
            dropped++;
        } else {
            dropped += drop(names, e, depth + 1);
        }
    }
#endif
    return dropped;
}

size_t ee__drop_secrets(const ee__secret_names *names, json_t *doc)
{
    if (names == NULL || doc == NULL)
        return 0;
    return drop(names, doc, 0);
}
