/* Reading tokens and cost out of an OpenRouter answer (its usage
 * accounting: usage.prompt_tokens, completion_tokens, total_tokens, and
 * usage.cost in USD credits), in a JSON body or in the last SSE "data:"
 * message that carries a usage object.
 *
 * The cost is read from the number's text, never through a double: a
 * small scanner walks the JSON (strings, nesting) without building it, so
 * "0.000123456789" becomes 123457 nano-USD exactly (rounded half up past
 * the ninth decimal), whatever its size. */
#include <stdint.h>
#include <string.h>

#include "gateway/gateway_internal.h"

#define DEPTH_MAX 64

bool ee__gateway_nano_parse(const char *t, size_t n, int64_t *out)
{
    size_t i = 0;
    /* digits of the mantissa, the position of its point, the exponent */
    char digits[64];
    size_t nd = 0;
    long point = -1, exp = 0;
    bool any = false;
    if (i < n && t[i] == '-') {
        /* only "-0" and the like are non-negative; refuse them all */
        return false;
    }
    for (; i < n && ((t[i] >= '0' && t[i] <= '9') || t[i] == '.'); i++) {
        if (t[i] == '.') {
            if (point >= 0)
                return false;
            point = (long)nd;
            continue;
        }
        any = true;
        if (nd == 0 && t[i] == '0' && point < 0)
            continue; /* leading zeros of the integer part */
        if (nd >= sizeof digits)
            return false;
        digits[nd++] = t[i];
    }
    if (!any)
        return false;
    if (point < 0)
        point = (long)nd;
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        bool neg = false;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            neg = t[i++] == '-';
        if (i >= n || t[i] < '0' || t[i] > '9')
            return false;
        for (; i < n && t[i] >= '0' && t[i] <= '9'; i++) {
            exp = exp * 10 + (t[i] - '0');
            if (exp > 400)
                return false;
        }
        if (neg)
            exp = -exp;
    }
    if (i != n)
        return false;
    /* value = 0.digits * 10^(point + exp) (digits read as d0 d1 ... with the
     * point after `point` of them); nano = value * 10^9. */
    long whole = point + exp + 9; /* digits before the nano point */
    int64_t v = 0;
    for (long k = 0; k < whole; k++) {
        int d = k < (long)nd ? digits[k] - '0' : 0;
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    long next = whole < 0 ? -1 : whole; /* the first digit past the nano point */
    if (next >= 0 && next < (long)nd && digits[next] >= '5') {
        if (v == INT64_MAX)
            return false;
        v++;
    }
    *out = v;
    return true;
}

/* ---- a scanner over JSON text --------------------------------------------------- */

typedef struct {
    const char *p, *end;
    int depth;
} scan;

static void ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* Skip a string (s->p at its '"'); its raw content in [*a, *b). */
static bool str(scan *s, const char **a, const char **b)
{
    if (s->p >= s->end || *s->p != '"')
        return false;
    s->p++;
    *a = s->p;
    while (s->p < s->end && *s->p != '"') {
        if (*s->p == '\\')
            s->p++;
        s->p++;
    }
    if (s->p >= s->end)
        return false;
    *b = s->p++;
    return true;
}

static bool value(scan *s, const char **a, const char **b);

static bool skip_container(scan *s, char close)
{
    if (++s->depth > DEPTH_MAX)
        return false;
    s->p++;
    ws(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        s->depth--;
        return true;
    }
    for (;;) {
        const char *a, *b;
        ws(s);
        if (close == '}') {
            if (!str(s, &a, &b))
                return false;
            ws(s);
            if (s->p >= s->end || *s->p++ != ':')
                return false;
            ws(s);
        }
        if (!value(s, &a, &b))
            return false;
        ws(s);
        if (s->p >= s->end)
            return false;
        if (*s->p == ',') {
            s->p++;
            continue;
        }
        if (*s->p++ != close)
            return false;
        s->depth--;
        return true;
    }
}

/* Skip one value; a scalar's text in [*a, *b) (a string without quotes). */
static bool value(scan *s, const char **a, const char **b)
{
    ws(s);
    if (s->p >= s->end)
        return false;
    *a = s->p;
    if (*s->p == '"')
        return str(s, a, b);
    if (*s->p == '{' || *s->p == '[') {
        bool ok = skip_container(s, *s->p == '{' ? '}' : ']');
        *b = s->p;
        return ok;
    }
    while (s->p < s->end && !strchr(",}] \t\r\n", *s->p))
        s->p++;
    *b = s->p;
    return *b > *a;
}

static bool key_is(const char *a, const char *b, const char *k)
{
    return (size_t)(b - a) == strlen(k) && memcmp(a, k, (size_t)(b - a)) == 0;
}

static int64_t int_of(const char *a, const char *b)
{
    int64_t v = 0;
    if (a == b)
        return 0;
    for (const char *p = a; p < b; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v;
}

/* The members of the object at s->p (depth 1 of the document): "model"
 * and "usage"{...}. */
static bool read_doc(const char *text, size_t len, g_usage *u)
{
    scan s = {text, text + len, 0};
    ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return false;
    s.p++;
    g_usage got = {0};
    for (;;) {
        const char *ka, *kb, *va, *vb;
        ws(&s);
        if (s.p < s.end && *s.p == '}')
            break;
        if (!str(&s, &ka, &kb))
            return false;
        ws(&s);
        if (s.p >= s.end || *s.p++ != ':')
            return false;
        ws(&s);
        if (key_is(ka, kb, "usage") && s.p < s.end && *s.p == '{') {
            /* walk the usage object's own members */
            s.p++;
            got.found = true;
            for (;;) {
                ws(&s);
                if (s.p < s.end && *s.p == '}') {
                    s.p++;
                    break;
                }
                const char *ua, *ub;
                if (!str(&s, &ua, &ub))
                    return false;
                ws(&s);
                if (s.p >= s.end || *s.p++ != ':')
                    return false;
                if (!value(&s, &va, &vb))
                    return false;
                if (key_is(ua, ub, "prompt_tokens"))
                    got.prompt_tokens = int_of(va, vb);
                else if (key_is(ua, ub, "completion_tokens"))
                    got.completion_tokens = int_of(va, vb);
                else if (key_is(ua, ub, "total_tokens"))
                    got.total_tokens = int_of(va, vb);
                else if (key_is(ua, ub, "cost"))
                    got.has_cost = ee__gateway_nano_parse(va, (size_t)(vb - va), &got.cost_nano);
                ws(&s);
                if (s.p < s.end && *s.p == ',')
                    s.p++;
            }
        } else {
            if (!value(&s, &va, &vb))
                return false;
            if (key_is(ka, kb, "model") && va < vb && va[-1] == '"' &&
                /* the upstream's text (escapes as written), kept only as a
                 * name: it is stored with the call, listed in the cost
                 * breakdown and counted by; another is dropped */
                ee__text_name_ok(va, (size_t)(vb - va), sizeof got.model - 1)) {
                memcpy(got.model, va, (size_t)(vb - va));
                got.model[vb - va] = '\0';
            }
        }
        ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (s.p < s.end && *s.p == '}')
            break;
        return false;
    }
    if (!got.found)
        return false;
    /* each count may be up to INT64_MAX: the provider's word, not ours */
    if (got.total_tokens == 0 &&
        __builtin_add_overflow(got.prompt_tokens, got.completion_tokens, &got.total_tokens))
        got.total_tokens = INT64_MAX;
    *u = got;
    return true;
}

bool ee__gateway_wants_stream(const char *body, size_t len)
{
    /* a request without a body (the listener's GET) has none to scan:
     * NULL + 0 is undefined behaviour, so no end pointer is made from it */
    if (body == NULL || len == 0)
        return false;
    scan s = {body, body + len, 0};
    ws(&s);
    if (s.p >= s.end || *s.p != '{')
        return false;
    s.p++;
    for (;;) {
        const char *ka, *kb, *va, *vb;
        ws(&s);
        if (!str(&s, &ka, &kb))
            return false;
        ws(&s);
        if (s.p >= s.end || *s.p++ != ':' || !value(&s, &va, &vb))
            return false;
        if (key_is(ka, kb, "stream"))
            return vb - va == 4 && memcmp(va, "true", 4) == 0;
        ws(&s);
        if (s.p >= s.end || *s.p++ != ',')
            return false;
    }
}

void ee__gateway_usage_parse(const char *body, size_t len, bool sse, g_usage *out)
{
    memset(out, 0, sizeof *out);
    if (body == NULL || len == 0)
        return;
    if (!sse) {
        read_doc(body, len, out);
        return;
    }
    /* every "data:" line; the last one that carries usage counts */
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *le = eol != NULL ? eol : end;
        if (le - p > 5 && memcmp(p, "data:", 5) == 0) {
            const char *d = p + 5;
            const char *de = le;
            if (de > d && de[-1] == '\r')
                de--;
            g_usage u;
            if (read_doc(d, (size_t)(de - d), &u)) {
                /* a later message without a model keeps the earlier one's */
                if (u.model[0] == '\0')
                    memcpy(u.model, out->model, sizeof u.model);
                *out = u;
            }
        }
        p = le + 1;
    }
}
