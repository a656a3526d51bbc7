/* Text helpers: UTF-8 validation, URI password masking, message quoting. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static size_t utf8_seq_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

/* The first continuation byte's range depends on the lead byte (no
 * overlongs, no surrogates, nothing past U+10FFFF). */
static bool second_byte_ok(unsigned char lead, unsigned char b)
{
    switch (lead) {
    case 0xE0: return b >= 0xA0 && b <= 0xBF;
    case 0xED: return b >= 0x80 && b <= 0x9F;
    case 0xF0: return b >= 0x90 && b <= 0xBF;
    case 0xF4: return b >= 0x80 && b <= 0x8F;
    default: return b >= 0x80 && b <= 0xBF;
    }
}

bool ee__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        /* ASCII, eight bytes at a time: most keys and values are */
        while (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if (w & UINT64_C(0x8080808080808080))
                break;
            i += 8;
        }
        if (i >= len)
            break;
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_seq_len(p[i]);
        if (n == 0 || i + n > len)
            return false;
        if (n > 1 && !second_byte_ok(p[i], p[i + 1]))
            return false;
        for (size_t k = 2; k < n; k++)
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
        i += n;
    }
    return true;
}

bool ee__text_token_ok(const char *s, size_t len)
{
    if (s == NULL || len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

const char *ee__key_list_next(const char **cursor, size_t *len)
{
    for (const char *p = *cursor; p != NULL;) {
        const char *end = strchr(p, ',');
        const char *a = p, *b = end != NULL ? end : p + strlen(p);
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        p = end != NULL ? end + 1 : NULL;
        if (b > a) {
            *cursor = p;
            *len = (size_t)(b - a);
            return a;
        }
    }
    *cursor = NULL;
    return NULL;
}

bool ee__text_name_ok(const char *s, size_t len, size_t max)
{
    if (s == NULL || len == 0 || len > max || !ee__utf8_valid(s, len))
        return false;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len; i++) /* valid UTF-8: a C2's next byte exists */
        if (ee__text_control_at(p + i) != 0)
            return false;
    return true;
}

bool ee__uri_password(const char *uri, size_t *start, size_t *len)
{
    const char *auth = strstr(uri, "://");
    if (auth == NULL)
        return false;
    auth += 3;
    size_t auth_len = strcspn(auth, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < auth_len; i++)
        if (auth[i] == '@')
            at = auth + i;
    if (at == NULL && auth_len > 0) {
        /* A password holding an unencoded '/', '?' or '#' ends the
         * authority early ("user:pa/ss@host"): its userinfo then ends at
         * the last '@', as ee__uri_skeleton() reads it. Not when what
         * follows the ':' is a port and the '@' is in the query or the
         * fragment ("host:6379/0?x=a@b"). */
        const char *last = strrchr(auth, '@');
        const char *colon = memchr(auth, ':', auth_len);
        size_t digits = colon != NULL ? strspn(colon + 1, "0123456789") : 0;
        bool port = colon != NULL && digits > 0 && digits <= 5 &&
                    colon + 1 + digits == auth + auth_len;
        size_t query = strcspn(auth, "?#");
        if (last != NULL && colon != NULL && (!port || last < auth + query))
            at = last;
    }
    if (at == NULL)
        return false;
    const char *colon = memchr(auth, ':', (size_t)(at - auth));
    if (colon == NULL || colon + 1 == at)
        return false;
    *start = (size_t)(colon + 1 - uri);
    *len = (size_t)(at - (colon + 1));
    return true;
}

char *ee__uri_masked(const char *uri)
{
    size_t start, len, total = strlen(uri);
    if (!ee__uri_password(uri, &start, &len)) {
        char *copy = malloc(total + 1);
        if (copy != NULL)
            memcpy(copy, uri, total + 1);
        return copy;
    }
    char *out = malloc(total - len + 4);
    if (out == NULL)
        return NULL;
    memcpy(out, uri, start);
    memcpy(out + start, "***", 3);
    memcpy(out + start + 3, uri + start + len, total - start - len + 1);
    return out;
}

size_t ee__utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    /* back off the continuation bytes of a sequence that would be split */
    while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
        cut--;
    return cut;
}

const char *ee__utf8_tail(const char *s, size_t len, size_t chars)
{
    size_t start = len, n = 0;
    while (start > 0 && n < chars)
        if (((unsigned char)s[--start] & 0xC0) != 0x80)
            n++;
    return ee__utf8_valid(s + start, len - start) ? s + start : NULL;
}

void ee__utf8_trim(char *s)
{
    size_t len = strlen(s), back = 0;
    while (back < 3 && back < len && ((unsigned char)s[len - 1 - back] & 0xC0) == 0x80)
        back++;
    if (back == len)
        return; /* only continuation bytes: nothing to trim to */
    size_t lead = len - 1 - back;
    size_t n = utf8_seq_len((unsigned char)s[lead]);
    if (n > back + 1) /* the last character lost its tail */
        s[lead] = '\0';
}

bool ee__utf8_copy(char *out, size_t cap, const char *in)
{
    size_t n = strlen(in);
    size_t keep = ee__utf8_cut(in, n, cap - 1);
    memcpy(out, in, keep);
    out[keep] = '\0';
    return keep < n;
}

void ee__quote_for_message(const char *in, char *out, size_t cap)
{
    size_t n = strlen(in);
    size_t keep = n < cap ? n : ee__utf8_cut(in, n, cap - 4);
    for (size_t i = 0; i < keep; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (keep < n) {
        memcpy(out + keep, "...", 3);
        keep += 3;
    }
    out[keep] = '\0';
}

void ee__utf8_sanitize(char *s)
{
    size_t len = strlen(s), i = 0;
    while (i < len) {
        size_t n = utf8_seq_len((unsigned char)s[i]);
        if (n != 0 && i + n <= len && ee__utf8_valid(s + i, n)) {
            i += n;
            continue;
        }
        s[i++] = '?';
    }
}

void ee__hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int ee__hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

bool ee__hex_decode(const char *hex, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        int hi = ee__hex_digit(hex[2 * i]), lo = ee__hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool scheme_char(char c)
{
    return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '-' || c == '.';
}

static bool host_char(char c)
{
    return scheme_char(c) || c == '_' || c == '[' || c == ']' || c == ':';
}

bool ee__uri_skeleton(const char *uri, char *out, size_t cap)
{
    size_t n = strlen(uri), scheme = 0;
    while (scheme < n && scheme < 32 && scheme_char(uri[scheme]))
        scheme++;
    if (scheme == 0 || strncmp(uri + scheme, "://", 3) != 0 ||
        !((uri[0] | 0x20) >= 'a' && (uri[0] | 0x20) <= 'z'))
        return false; /* not scheme://...: it may be anything, a password too */
    char buf[128];
    size_t k = scheme + 3;
    memcpy(buf, uri, k);
    const char *rest = uri + k;
    /* The last '@' ends the userinfo even when its password holds an
     * unencoded '/', '?' or '#'. */
    const char *at = strrchr(rest, '@');
    if (at != NULL) {
        memcpy(buf + k, "***@", 4);
        k += 4;
        rest = at + 1;
    }
    size_t h = strcspn(rest, ":/?#");
    size_t port = rest[h] == ':' ? strspn(rest + h + 1, "0123456789") : 0;
    bool port_ok = rest[h] != ':' ||
                   (port > 0 && port <= 5 && strchr("/?#", rest[h + 1 + port]) != NULL);
    bool host_ok = h <= 64;
    for (size_t i = 0; host_ok && i < h; i++)
        host_ok = host_char(rest[i]);
    if (!host_ok || !port_ok) {
        /* "scheme://user:password" without a host, or no plain host. */
        memcpy(buf + k, "***", 3);
        k += 3;
        rest += strlen(rest);
    } else {
        size_t shown = h + (rest[h] == ':' ? 1 + port : 0);
        memcpy(buf + k, rest, shown);
        k += shown;
        rest += shown;
    }
    if (*rest != '\0') {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    ee__quote_for_message(buf, out, cap);
    return true;
}

void ee__text_add(ee__text *t, const void *data, size_t n)
{
    if (t->oom)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap != 0 ? t->cap : 256;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->p, cap);
        if (p == NULL) {
            t->oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
    if (n > 0)
        memcpy(t->p + t->len, data, n);
    t->len += n;
    t->p[t->len] = '\0';
}

void ee__text_puts(ee__text *t, const char *s)
{
    ee__text_add(t, s, strlen(s));
}
