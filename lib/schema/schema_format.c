/*
 * "format" assertion: the formats JSON Schema 2020-12 defines, checked
 * against the RFCs it cites. Each check is one linear pass over the string
 * (idn-* also run libidn2's IDNA2008 lookup, regex a PCRE2 compile of the
 * translated pattern), so its cost is charged by length (schema_validate.c).
 *
 *   date, time, date-time  RFC 3339 section 5.6 (full-date, full-time,
 *                          date-time; leap second only at 23:59:60 UTC)
 *   duration               RFC 3339 appendix A
 *   email, idn-email       RFC 5321 Mailbox (RFC 6531 for UTF-8)
 *   hostname, idn-hostname RFC 1123 / RFC 5890-5893 (IDNA2008, libidn2)
 *   ipv4, ipv6             RFC 2673 dotted quad, RFC 4291 section 2.2
 *   uri, uri-reference, iri RFC 3986 / RFC 3987
 *   uri-template           RFC 6570 (level 4 syntax)
 *   uuid                   RFC 4122 text form
 *   json-pointer           RFC 6901
 *   relative-json-pointer  draft-bhutton-relative-json-pointer-00
 *   regex                  ECMA-262, as "pattern" compiles it
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "schema/schema_internal.h"

#include <idn2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef bool (*format_fn)(const char *s, size_t n);

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* `n` ASCII digits at s as a number, or -1. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* ---- dates and times (RFC 3339) ------------------------------------------------- */

static bool full_date(const char *s, size_t n)
{
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || m < 1 || m > 12 || d < 1)
        return false;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

static bool full_time(const char *s, size_t n)
{
    if (n < 9 || s[2] != ':' || s[5] != ':')
        return false;
    int h = digits(s, 2), mi = digits(s + 3, 2), sec = digits(s + 6, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 60)
        return false;
    size_t i = 8;
    if (i < n && s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == start)
            return false;
    }
    int off = 0; /* minutes east of UTC */
    if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z')) {
        off = 0;
    } else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return false;
        off = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    } else {
        return false;
    }
    if (sec == 60) { /* a leap second is 23:59:60 in UTC */
        int utc = ((h * 60 + mi - off) % 1440 + 1440) % 1440;
        return utc == 23 * 60 + 59;
    }
    return true;
}

static bool f_date(const char *s, size_t n) { return full_date(s, n); }
static bool f_time(const char *s, size_t n) { return full_time(s, n); }

static bool f_date_time(const char *s, size_t n)
{
    return n > 11 && (s[10] == 'T' || s[10] == 't') && full_date(s, 10) &&
           full_time(s + 11, n - 11);
}

/* One run of digits and its designator; *i moves past it. */
static bool dur_part(const char *s, size_t n, size_t *i, char *designator)
{
    size_t start = *i;
    while (*i < n && is_digit(s[*i]))
        (*i)++;
    if (*i == start || *i == n)
        return false;
    *designator = s[(*i)++];
    return true;
}

/* One run of the designators `seq` ("YMD" or "HMS") at s[*i]: the ABNF's
 * dur-year = 1*DIGIT "Y" [dur-month], dur-month = 1*DIGIT "M" [dur-day]
 * ...: one or more parts, each the designator right after the one before
 * (contiguous: "P1Y2D" leaves out the month and is not a duration). Stops
 * before 'T' or at the end. */
static bool dur_run(const char *s, size_t n, size_t *i, const char *seq)
{
    char d;
    if (!dur_part(s, n, i, &d) || d == '\0')
        return false;
    const char *at = strchr(seq, d);
    if (at == NULL)
        return false;
    while (*i < n && s[*i] != 'T') {
        if (!dur_part(s, n, i, &d) || at[1] == '\0' || d != at[1])
            return false;
        at++;
    }
    return true;
}

/* RFC 3339 appendix A: "P" (dur-date ["T" dur-time] | "T" dur-time |
 * dur-week). */
static bool f_duration(const char *s, size_t n)
{
    if (n < 2 || s[0] != 'P')
        return false;
    size_t i = 1;
    if (s[i] != 'T') {
        size_t save = i;
        char d;
        if (dur_part(s, n, &save, &d) && d == 'W')
            return save == n;
        if (!dur_run(s, n, &i, "YMD"))
            return false;
        if (i == n)
            return true;
    }
    i++; /* 'T' */
    return i < n && dur_run(s, n, &i, "HMS") && i == n;
}

/* ---- addresses ------------------------------------------------------------------- */

static bool f_ipv4(const char *s, size_t n)
{
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        if (part > 0 && (i >= n || s[i++] != '.'))
            return false;
        size_t start = i;
        while (i < n && is_digit(s[i]) && i - start < 4)
            i++;
        size_t len = i - start;
        if (len == 0 || len > 3 || (len > 1 && s[start] == '0') || digits(s + start, len) > 255)
            return false;
    }
    return i == n;
}

static bool f_ipv6(const char *s, size_t n)
{
    int groups = 0;
    bool gap = false;
    size_t i = 0;
    if (n >= 2 && s[0] == ':' && s[1] == ':') {
        gap = true;
        i = 2;
        if (i == n)
            return true;
    } else if (n > 0 && s[0] == ':') {
        return false;
    }
    while (i < n) {
        size_t start = i;
        while (i < n && is_hex(s[i]) && i - start < 5)
            i++;
        if (i < n && s[i] == '.') { /* a trailing dotted quad: two groups */
            if (!f_ipv4(s + start, n - start))
                return false;
            groups += 2;
            i = n;
            break;
        }
        size_t len = i - start;
        if (len == 0 || len > 4)
            return false;
        groups++;
        if (i == n)
            break;
        if (s[i] != ':')
            return false;
        i++;
        if (i < n && s[i] == ':') {
            if (gap)
                return false;
            gap = true;
            i++;
            if (i == n)
                break;
        } else if (i == n) {
            return false; /* a single trailing ':' */
        }
    }
    return gap ? groups <= 7 : groups == 8;
}

/* Decode one UTF-8 sequence at s[*i] (the string is valid UTF-8). */
static uint32_t next_cp(const char *s, size_t n, size_t *i)
{
    unsigned char b = (unsigned char)s[*i];
    size_t len = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t cp = len == 1 ? b : len == 2 ? b & 0x1Fu : len == 3 ? b & 0x0Fu : b & 0x07u;
    for (size_t k = 1; k < len && *i + k < n; k++)
        cp = (cp << 6) | ((unsigned char)s[*i + k] & 0x3Fu);
    *i += len;
    return cp;
}

static bool is_greek(uint32_t c) { return (c >= 0x370 && c <= 0x3FF) || (c >= 0x1F00 && c <= 0x1FFF); }
static bool is_hebrew(uint32_t c) { return c >= 0x590 && c <= 0x5FF; }
static bool is_kana_han(uint32_t c)
{
    return (c >= 0x3040 && c <= 0x30FF && c != 0x30FB) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0xF900 && c <= 0xFAFF) ||
           (c >= 0x20000 && c <= 0x3FFFF);
}

/* RFC 5892 appendix A's CONTEXTO rules, which libidn2's lookup leaves to
 * the registry: checked on each label of [s, s + n). */
static bool contexto_label(const char *s, size_t n)
{
    uint32_t cps[256];
    size_t m = 0;
    for (size_t i = 0; i < n && m < sizeof cps / sizeof cps[0];)
        cps[m++] = next_cp(s, n, &i);
    bool arabic = false, extended = false, kana_han = false, katakana_dot = false;
    for (size_t k = 0; k < m; k++) {
        uint32_t c = cps[k];
        uint32_t before = k > 0 ? cps[k - 1] : 0, after = k + 1 < m ? cps[k + 1] : 0;
        if (c == 0xB7 && !(before == 'l' && after == 'l'))
            return false;
        if (c == 0x375 && !is_greek(after))
            return false;
        if ((c == 0x5F3 || c == 0x5F4) && !is_hebrew(before))
            return false;
        arabic |= c >= 0x660 && c <= 0x669;
        extended |= c >= 0x6F0 && c <= 0x6F9;
        kana_han |= is_kana_han(c);
        katakana_dot |= c == 0x30FB;
    }
    return !(arabic && extended) && !(katakana_dot && !kana_han);
}

/* RFC 5893's Bidi rule, on PCRE2's Unicode Bidi_Class (no table of our
 * own): a label is right-to-left when it starts with R or AL, then holds
 * only R AL AN EN ES CS ET ON BN NSM, ends with R AL EN or AN (and NSMs),
 * and has not both EN and AN (conditions 1-4); or left-to-right when it
 * starts with L, holds only L EN ES CS ET ON BN NSM and ends with L or EN
 * (and NSMs) (conditions 1, 5, 6). */
#define BC(c) "\\p{bc=" c "}"
static const char bidi_rtl_src[] = "[" BC("R") BC("AL") BC("AN") "]";
static const char bidi_label_src[] =
    "\\A(?:(?!(?=.*" BC("EN") ")(?=.*" BC("AN") "))[" BC("R") BC("AL") "]"
    "(?:[" BC("R") BC("AL") BC("AN") BC("EN") BC("ES") BC("CS") BC("ET") BC("ON") BC("BN")
    BC("NSM") "]*[" BC("R") BC("AL") BC("EN") BC("AN") "])?"
    "|" BC("L") "(?:[" BC("L") BC("EN") BC("ES") BC("CS") BC("ET") BC("ON") BC("BN") BC("NSM")
    "]*[" BC("L") BC("EN") "])?)" BC("NSM") "*\\z";
#undef BC

static pcre2_code *bidi_rtl, *bidi_label;
static pthread_once_t bidi_once = PTHREAD_ONCE_INIT;

static void bidi_init(void)
{
    int err;
    PCRE2_SIZE off;
    bidi_rtl = pcre2_compile((PCRE2_SPTR)bidi_rtl_src, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err,
                             &off, NULL);
    bidi_label = pcre2_compile((PCRE2_SPTR)bidi_label_src, PCRE2_ZERO_TERMINATED,
                               PCRE2_UTF | PCRE2_DOTALL, &err, &off, NULL);
}

/* 1 match, 0 none, -1 could not tell (out of memory). The subjects are
 * labels of a host name that libidn2 accepted, so the match is short. */
static int bidi_match(const pcre2_code *code, pcre2_match_data *md, const char *s, size_t n)
{
    if (code == NULL || md == NULL)
        return -1;
    int rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, PCRE2_NO_UTF_CHECK, md, NULL);
    return rc >= 0 ? 1 : rc == PCRE2_ERROR_NOMATCH ? 0 : -1;
}

/* The Bidi rule holds for every label of a name in U-label form, or the
 * name is not a Bidi domain name (no R, AL or AN anywhere). */
static bool bidi_ok(const char *s, size_t n)
{
    (void)pthread_once(&bidi_once, bidi_init);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rtl = bidi_match(bidi_rtl, md, s, n);
    bool ok = rtl == 0;
    if (rtl == 1) {
        ok = true;
        for (size_t start = 0, i = 0; ok && i <= n; i++)
            if (i == n || s[i] == '.') {
                ok = bidi_match(bidi_label, md, s + start, i - start) == 1;
                start = i + 1;
            }
    }
    pcre2_match_data_free(md);
    return ok;
}

/* What IDNA2008 asks of U-labels beyond libidn2's lookup: RFC 5892's
 * CONTEXTO rules on each label and RFC 5893's Bidi rule on the name. */
static bool u_labels_ok(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || s[i] == '.') {
            if (!contexto_label(s + start, i - start))
                return false;
            start = i + 1;
        }
    return bidi_ok(s, n);
}

/* An A-label (s, len < 64 bytes, "xn--" in any case) is the Punycode of a
 * valid U-label that encodes back to it (RFC 5891 5.4): libidn2's lookup
 * of the decoded label (IDNA2008 code points, CONTEXTJ, the hyphen
 * rules) gives the same A-label. */
static bool a_label_ok(const char *l, size_t len)
{
    char label[64], *u = NULL;
    memcpy(label, l, len);
    label[len] = '\0';
    int rc = idn2_to_unicode_8z8z(label, &u, 0);
    bool ok = rc == IDN2_OK && u != NULL;
    if (ok) {
        char *back = NULL;
        ok = idn2_lookup_u8((const uint8_t *)u, (uint8_t **)&back, IDN2_NO_TR46) == IDN2_OK &&
             back != NULL && strlen(back) == len && strncasecmp(back, label, len) == 0;
        idn2_free(back);
    }
    idn2_free(u);
    return ok;
}

/* RFC 1123 host name in ASCII: labels of letters, digits and hyphens,
 * 1-63 bytes, not starting or ending with '-'; 253 bytes at most. An
 * A-label ("xn--") must be one (a_label_ok()), and the name's U-label
 * form must pass u_labels_ok(); other labels must not have "--" in
 * positions 3-4 (reserved, RFC 5891 4.2.3.1). */
static bool ascii_hostname(const char *s, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t start = 0;
    bool a_labels = false;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '.') {
            if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-')
                return false;
            continue;
        }
        size_t len = i - start;
        const char *l = s + start;
        if (len == 0 || len > 63 || l[0] == '-' || l[len - 1] == '-')
            return false;
        if (len >= 4 && l[2] == '-' && l[3] == '-') {
            if (!((l[0] == 'x' || l[0] == 'X') && (l[1] == 'n' || l[1] == 'N')))
                return false;
            if (!a_label_ok(l, len))
                return false;
            a_labels = true;
        }
        start = i + 1;
    }
    if (!a_labels)
        return true;
    char name[254], *u = NULL;
    memcpy(name, s, n);
    name[n] = '\0';
    bool ok = idn2_to_unicode_8z8z(name, &u, 0) == IDN2_OK && u != NULL &&
              u_labels_ok(u, strlen(u));
    idn2_free(u);
    return ok;
}

static bool f_hostname(const char *s, size_t n)
{
    return ascii_hostname(s, n);
}

/* IDNA2008 (RFC 5891 lookup, without UTS 46 mapping): the A-label form must
 * be a valid host name (which checks its U-label form too). "。", "．"
 * and "｡" separate labels too (RFC 3490). `nfc`: normalise to NFC first
 * (IDN2_NFC_INPUT) - for idn-email, where NFC is a SHOULD; a host name
 * must be in NFC already. */
static bool idn_hostname(const char *s, size_t n, bool nfc)
{
    if (n == 0 || n > 1024 || memchr(s, '\0', n) != NULL)
        return false;
    char *copy = malloc(n + 1), *p = copy;
    if (copy == NULL)
        return false;
    for (size_t i = 0; i < n;) {
        static const char *const dots[] = {"\xE3\x80\x82", "\xEF\xBC\x8E", "\xEF\xBD\xA1"};
        bool dot = false;
        for (size_t k = 0; k < 3 && !dot; k++)
            if (n - i >= 3 && memcmp(s + i, dots[k], 3) == 0)
                dot = true;
        if (dot) {
            *p++ = '.';
            i += 3;
        } else {
            *p++ = s[i++];
        }
    }
    *p = '\0';
    char *ascii = NULL;
    int rc = idn2_lookup_u8((const uint8_t *)copy, (uint8_t **)&ascii,
                            IDN2_NO_TR46 | (nfc ? IDN2_NFC_INPUT : 0));
    free(copy);
    bool ok = rc == IDN2_OK && ascii != NULL && ascii_hostname(ascii, strlen(ascii));
    idn2_free(ascii);
    return ok;
}

static bool f_idn_hostname(const char *s, size_t n)
{
    return idn_hostname(s, n, false);
}

/* ---- e-mail (RFC 5321 Mailbox, RFC 6531) ------------------------------------------- */

static bool atext(unsigned char c, bool utf8)
{
    return is_alpha((char)c) || is_digit((char)c) ||
           (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL) || (utf8 && c >= 0x80);
}

static bool email(const char *s, size_t n, bool idn)
{
    const char *at = NULL;
    size_t i = 0;
    if (n > 0 && s[0] == '"') { /* quoted-string */
        for (i = 1; i < n && s[i] != '"'; i++) {
            if (s[i] == '\\') {
                if (++i >= n || (unsigned char)s[i] < 0x20)
                    return false;
            } else if ((unsigned char)s[i] < 0x20 || (!idn && (unsigned char)s[i] >= 0x80)) {
                return false;
            }
        }
        if (i >= n || i == 1)
            return false;
        at = s + i + 1;
        if (at >= s + n || *at != '@')
            return false;
    } else { /* dot-atom */
        at = memchr(s, '@', n);
        if (at == NULL || at == s)
            return false;
        bool prev_dot = true;
        for (const char *c = s; c < at; c++) {
            if (*c == '.') {
                if (prev_dot)
                    return false;
                prev_dot = true;
            } else if (atext((unsigned char)*c, idn)) {
                prev_dot = false;
            } else {
                return false;
            }
        }
        if (prev_dot)
            return false;
    }
    const char *dom = at + 1;
    size_t dn = n - (size_t)(dom - s);
    if (dn >= 2 && dom[0] == '[' && dom[dn - 1] == ']') {
        if (dn > 7 && memcmp(dom + 1, "IPv6:", 5) == 0)
            return f_ipv6(dom + 6, dn - 7);
        return f_ipv4(dom + 1, dn - 2);
    }
    return idn ? idn_hostname(dom, dn, true) : ascii_hostname(dom, dn);
}

static bool f_email(const char *s, size_t n) { return email(s, n, false); }
static bool f_idn_email(const char *s, size_t n) { return email(s, n, true); }

/* ---- URIs (RFC 3986) and IRIs (RFC 3987) ------------------------------------------- */

static bool unreserved(unsigned char c, bool iri)
{
    return is_alpha((char)c) || is_digit((char)c) || c == '-' || c == '.' || c == '_' ||
           c == '~' || (iri && c >= 0x80);
}

static bool sub_delim(char c) { return strchr("!$&'()*+,;=", c) != NULL && c != '\0'; }

/* Characters of `s` in [i, end) from unreserved / pct-encoded / sub-delims
 * and `extra`. */
static bool uri_chars(const char *s, size_t i, size_t end, const char *extra, bool iri)
{
    for (; i < end; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= end || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 2;
        } else if (!unreserved(c, iri) && !sub_delim((char)c) &&
                   (c == '\0' || strchr(extra, c) == NULL)) {
            return false;
        }
    }
    return true;
}

static bool authority(const char *s, size_t i, size_t end, bool iri)
{
    const char *at = NULL;
    for (size_t k = i; k < end; k++)
        if (s[k] == '@')
            at = s + k;
    if (at != NULL) {
        if (!uri_chars(s, i, (size_t)(at - s), ":", iri))
            return false;
        i = (size_t)(at - s) + 1;
    }
    size_t host_end;
    if (i < end && s[i] == '[') {
        const char *close = memchr(s + i, ']', end - i);
        if (close == NULL)
            return false;
        size_t lit = (size_t)(close - s);
        if (lit > i + 1 && (s[i + 1] == 'v' || s[i + 1] == 'V')) { /* IPvFuture */
            const char *dot = memchr(s + i + 2, '.', lit - i - 2);
            if (dot == NULL || dot == s + i + 2 || (size_t)(dot - s) + 1 >= lit)
                return false;
            for (const char *h = s + i + 2; h < dot; h++)
                if (!is_hex(*h))
                    return false;
            if (!uri_chars(s, (size_t)(dot - s) + 1, lit, ":", false))
                return false;
        } else if (!f_ipv6(s + i + 1, lit - i - 1)) {
            return false;
        }
        host_end = lit + 1;
    } else {
        host_end = i;
        while (host_end < end && s[host_end] != ':')
            host_end++;
        if (!uri_chars(s, i, host_end, "", iri))
            return false;
    }
    if (host_end < end) {
        if (s[host_end] != ':')
            return false;
        for (size_t k = host_end + 1; k < end; k++)
            if (!is_digit(s[k]))
                return false;
    }
    return true;
}

/* [i, n): hier-part or relative-part, then ?query and #fragment. */
static bool uri_rest(const char *s, size_t i, size_t n, bool iri, bool relative)
{
    size_t q = i;
    while (q < n && s[q] != '?' && s[q] != '#')
        q++;
    size_t path = i;
    if (q - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
        size_t a = i + 2, e = a;
        while (e < q && s[e] != '/')
            e++;
        if (!authority(s, a, e, iri))
            return false;
        path = e;
    } else if (relative) { /* path-noscheme: no ':' in the first segment */
        for (size_t k = i; k < q && s[k] != '/'; k++)
            if (s[k] == ':')
                return false;
    }
    if (!uri_chars(s, path, q, ":@/", iri))
        return false;
    if (q < n && s[q] == '?') {
        size_t f = q + 1;
        while (f < n && s[f] != '#')
            f++;
        if (!uri_chars(s, q + 1, f, ":@/?", iri))
            return false;
        q = f;
    }
    if (q < n && s[q] == '#' && !uri_chars(s, q + 1, n, ":@/?", iri))
        return false;
    return true;
}

/* Length of the scheme ("http") before ':' or 0 when there is none. */
static size_t scheme_len(const char *s, size_t n)
{
    if (n == 0 || !is_alpha(s[0]))
        return 0;
    size_t i = 1;
    while (i < n && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '+' || s[i] == '-' ||
                     s[i] == '.'))
        i++;
    return i < n && s[i] == ':' ? i : 0;
}

static bool uri(const char *s, size_t n, bool iri, bool reference)
{
    size_t sl = scheme_len(s, n);
    if (sl > 0)
        return uri_rest(s, sl + 1, n, iri, false);
    return reference && uri_rest(s, 0, n, iri, true);
}

static bool f_uri(const char *s, size_t n) { return uri(s, n, false, false); }
static bool f_uri_reference(const char *s, size_t n) { return uri(s, n, false, true); }
static bool f_iri(const char *s, size_t n) { return uri(s, n, true, false); }
static bool f_iri_reference(const char *s, size_t n) { return uri(s, n, true, true); }

/* RFC 3987 ucschar and iprivate: the non-ASCII code points an IRI (and a
 * URI Template literal) may hold - not C1 controls, noncharacters, or
 * the tags block. */
static bool ucschar_or_private(uint32_t c)
{
    if (c < 0xA0 || (c >= 0xD800 && c <= 0xDFFF) || (c >= 0xFDD0 && c <= 0xFDEF))
        return false;
    if (c >= 0xE0000 && c <= 0xE0FFF)
        return false;
    return (c & 0xFFFFu) <= 0xFFFD && (c >= 0x10000 || c < 0xFFF0);
}

/* varchar = ALPHA / DIGIT / "_" / pct-encoded; *i moves past it. */
static bool tmpl_varchar(const char *s, size_t n, size_t *i)
{
    if (*i < n && (is_alpha(s[*i]) || is_digit(s[*i]) || s[*i] == '_')) {
        (*i)++;
        return true;
    }
    if (*i + 2 < n && s[*i] == '%' && is_hex(s[*i + 1]) && is_hex(s[*i + 2])) {
        *i += 3;
        return true;
    }
    return false;
}

/* expression = "{" [ operator ] variable-list "}" at s[*i] == '{'. */
static bool tmpl_expression(const char *s, size_t n, size_t *i)
{
    (*i)++;
    if (*i < n && s[*i] != '\0' && strchr("+#./;?&=,!@|", s[*i]) != NULL)
        (*i)++;
    for (;;) {
        /* varname = varchar *( ["."] varchar ) */
        if (!tmpl_varchar(s, n, i))
            return false;
        for (;;) {
            if (*i < n && s[*i] == '.') {
                (*i)++;
                if (!tmpl_varchar(s, n, i))
                    return false;
            } else if (!tmpl_varchar(s, n, i)) {
                break;
            }
        }
        /* prefix = ":" max-length (%x31-39 0*3DIGIT) / explode = "*" */
        if (*i < n && s[*i] == ':') {
            size_t start = ++(*i);
            while (*i < n && is_digit(s[*i]) && *i - start < 4)
                (*i)++;
            if (*i == start || s[start] == '0' || (*i < n && is_digit(s[*i])))
                return false;
        } else if (*i < n && s[*i] == '*') {
            (*i)++;
        }
        if (*i < n && s[*i] == ',') {
            (*i)++;
            continue;
        }
        if (*i < n && s[*i] == '}') {
            (*i)++;
            return true;
        }
        return false;
    }
}

/* RFC 6570 URI-Template = *( literals / expression ). A literal is any
 * character but CTL, SP, DQUOTE, "%" (but in pct-encoded), "<", ">",
 * "\", "^", "`", "{", "|", "}". The apostrophe is allowed: RFC 6570's
 * ABNF left it out by mistake (verified erratum 6937; its own example
 * '{var}' needs it). */
static bool f_uri_template(const char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '{') {
            if (!tmpl_expression(s, n, &i))
                return false;
        } else if (c == '%') {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                return false;
            i += 3;
        } else if (c < 0x80) {
            if (c <= 0x20 || c == 0x7F || strchr("\"<>\\^`|}", c) != NULL)
                return false;
            i++;
        } else if (!ucschar_or_private(next_cp(s, n, &i))) {
            return false;
        }
    }
    return true;
}

/* ---- identifiers, pointers, patterns -------------------------------------------------- */

static bool f_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++)
        if (i == 8 || i == 13 || i == 18 || i == 23 ? s[i] != '-' : !is_hex(s[i]))
            return false;
    return true;
}

static bool f_json_pointer(const char *s, size_t n)
{
    if (n > 0 && s[0] != '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')))
            return false;
    return true;
}

static bool f_relative_json_pointer(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n && is_digit(s[i]))
        i++;
    if (i == 0 || (i > 1 && s[0] == '0'))
        return false;
    if (i < n && (s[i] == '+' || s[i] == '-')) { /* index manipulation */
        size_t start = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == start || (i - start > 1 && s[start] == '0'))
            return false;
    }
    if (i + 1 == n && s[i] == '#')
        return true;
    return f_json_pointer(s + i, n - i);
}

static bool f_regex(const char *s, size_t n)
{
    return ee__schema_regex_valid(s, n);
}

static const struct {
    const char *name;
    format_fn fn;
} formats[] = {
    {"date", f_date},
    {"time", f_time},
    {"date-time", f_date_time},
    {"duration", f_duration},
    {"email", f_email},
    {"idn-email", f_idn_email},
    {"hostname", f_hostname},
    {"idn-hostname", f_idn_hostname},
    {"ipv4", f_ipv4},
    {"ipv6", f_ipv6},
    {"uri", f_uri},
    {"uri-reference", f_uri_reference},
    {"iri", f_iri},
    {"iri-reference", f_iri_reference},
    {"uri-template", f_uri_template},
    {"uuid", f_uuid},
    {"json-pointer", f_json_pointer},
    {"relative-json-pointer", f_relative_json_pointer},
    {"regex", f_regex},
};

int ee__schema_format_id(const char *name)
{
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (strcmp(formats[i].name, name) == 0)
            return (int)i;
    return -1;
}

bool ee__schema_format_check(int id, const char *s, size_t len)
{
    return formats[id].fn(s, len);
}
