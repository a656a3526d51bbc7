/* Mustache rendering (mustache.h): parse to a tree, then render. */
#include "notify/mustache.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* ---- the tree ---------------------------------------------------------------- */

typedef enum { N_TEXT, N_ETAG, N_UTAG, N_SECTION, N_INVERTED, N_PARTIAL } node_kind;

typedef struct node {
    node_kind kind;
    const char *s;          /* text, or the tag's name (not NUL-terminated) */
    size_t len;
    const char *indent;     /* partial: its standalone indentation */
    size_t indent_len;
    struct node *kids;      /* sections */
    size_t n, cap;
} node;

static void node_free_kids(node *nd)
{
    for (size_t i = 0; i < nd->n; i++)
        node_free_kids(&nd->kids[i]);
    free(nd->kids);
}

static node *node_add(node *parent, node_kind kind, const char *s, size_t len)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        node *grown = realloc(parent->kids, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        parent->kids = grown;
        parent->cap = cap;
    }
    node *nd = &parent->kids[parent->n++];
    *nd = (node){.kind = kind, .s = s, .len = len};
    return nd;
}

/* ---- parsing --------------------------------------------------------------------- */

typedef struct {
    const char *t;
    size_t len;
    char open[EE__MUSTACHE_MAX_DELIM + 1], close[EE__MUSTACHE_MAX_DELIM + 1];
    size_t olen, clen;
    node *stack[EE__MUSTACHE_MAX_DEPTH + 1]; /* open sections; [0] is the root */
    int depth;
} parser;

static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen)
{
    for (size_t i = 0; nlen <= hlen && i + nlen <= hlen; i++)
        if (memcmp(hay + i, needle, nlen) == 0)
            return hay + i;
    return NULL;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && (is_blank(**s) || **s == '\n' || **s == '\r')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && (is_blank((*s)[*len - 1]) || (*s)[*len - 1] == '\n' || (*s)[*len - 1] == '\r'))
        (*len)--;
}

/* If the tag at [p, end) is alone on its line (only blanks around it),
 * *line_start gets the line's start and *next the position after its line
 * ending. */
static bool standalone(const parser *ps, size_t p, size_t end, size_t *line_start, size_t *next)
{
    size_t ls = p;
    while (ls > 0 && is_blank(ps->t[ls - 1]))
        ls--;
    if (ls > 0 && ps->t[ls - 1] != '\n')
        return false;
    size_t e = end;
    while (e < ps->len && is_blank(ps->t[e]))
        e++;
    if (e < ps->len && ps->t[e] == '\n')
        e++;
    else if (e + 1 < ps->len && ps->t[e] == '\r' && ps->t[e + 1] == '\n')
        e += 2;
    else if (e != ps->len)
        return false;
    *line_start = ls;
    *next = e;
    return true;
}

static ee_status set_delimiters(parser *ps, const char *s, size_t len, size_t at)
{
    trim(&s, &len);
    size_t a = 0;
    while (a < len && !is_blank(s[a]))
        a++;
    size_t b = a;
    while (b < len && is_blank(s[b]))
        b++;
    size_t clen = len - b;
    if (a == 0 || clen == 0 || a > EE__MUSTACHE_MAX_DELIM || clen > EE__MUSTACHE_MAX_DELIM ||
        memchr(s + b, ' ', clen) != NULL || memchr(s, '=', a) != NULL)
        return ee__error(EE_EPARSE, "template: bad delimiters at byte %zu", at);
    memcpy(ps->open, s, a);
    ps->open[a] = '\0';
    ps->olen = a;
    memcpy(ps->close, s + b, clen);
    ps->close[clen] = '\0';
    ps->clen = clen;
    return EE_OK;
}

static ee_status add_text(parser *ps, size_t from, size_t to)
{
    if (to > from && node_add(ps->stack[ps->depth], N_TEXT, ps->t + from, to - from) == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    return EE_OK;
}

/* Act on one tag: sigil, trimmed name, position for messages. */
static ee_status on_tag(parser *ps, char sigil, const char *name, size_t nlen, size_t at,
                        const char *indent, size_t indent_len)
{
    node *top = ps->stack[ps->depth];
    node *nd;
    switch (sigil) {
    case '#':
    case '^':
        if (ps->depth == EE__MUSTACHE_MAX_DEPTH)
            return ee__error(EE_ETOOBIG, "template: sections nested deeper than %d",
                             EE__MUSTACHE_MAX_DEPTH);
        if ((nd = node_add(top, sigil == '#' ? N_SECTION : N_INVERTED, name, nlen)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        ps->stack[++ps->depth] = nd;
        return EE_OK;
    case '/':
        if (ps->depth == 0 || top->len != nlen || memcmp(top->s, name, nlen) != 0)
            return ee__error(EE_EPARSE, "template: {{/%.*s}} at byte %zu closes no open section",
                             (int)(nlen > 64 ? 64 : nlen), name, at);
        ps->depth--;
        return EE_OK;
    case '!':
        return EE_OK;
    case '=':
        return set_delimiters(ps, name, nlen, at);
    case '>':
        if ((nd = node_add(top, N_PARTIAL, name, nlen)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        nd->indent = indent;
        nd->indent_len = indent_len;
        return EE_OK;
    default:
        if (node_add(top, sigil == '{' || sigil == '&' ? N_UTAG : N_ETAG, name, nlen) == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        return EE_OK;
    }
}

/* Parse one tag whose opening delimiter starts at p; *pos and *text_start
 * move past it. */
static ee_status parse_tag(parser *ps, size_t p, size_t *pos, size_t *text_start)
{
    size_t q = p + ps->olen;
    char sigil = q < ps->len && strchr("{&#^/!>=", ps->t[q]) != NULL ? ps->t[q] : 0;
    char closer[EE__MUSTACHE_MAX_DELIM + 2];
    size_t cl = 0;
    if (sigil == '{' || sigil == '=')
        closer[cl++] = sigil == '{' ? '}' : '=';
    memcpy(closer + cl, ps->close, ps->clen);
    cl += ps->clen;
    size_t body = q + (sigil ? 1 : 0);
    const char *c = find(ps->t + body, ps->len - body, closer, cl);
    if (c == NULL)
        return ee__error(EE_EPARSE, "template: tag at byte %zu is never closed", p);
    const char *name = ps->t + body;
    size_t nlen = (size_t)(c - name), end = (size_t)(c - ps->t) + cl;
    trim(&name, &nlen);
    size_t ls = p, next = end;
    bool alone = sigil && strchr("#^/!>=", sigil) && standalone(ps, p, end, &ls, &next);
    ee_status st = add_text(ps, *text_start, alone ? ls : p);
    if (st == EE_OK)
        st = on_tag(ps, sigil, name, nlen, p, ps->t + ls, alone ? p - ls : 0);
    *pos = *text_start = next;
    return st;
}

static ee_status parse(const char *t, size_t len, node *root)
{
    parser ps = {.t = t, .len = len, .open = "{{", .close = "}}", .olen = 2, .clen = 2};
    ps.stack[0] = root;
    size_t pos = 0, text_start = 0;
    for (;;) {
        const char *o = find(t + pos, len - pos, ps.open, ps.olen);
        if (o == NULL)
            break;
        ee_status st = parse_tag(&ps, (size_t)(o - t), &pos, &text_start);
        if (st != EE_OK)
            return st;
    }
    ee_status st = add_text(&ps, text_start, len);
    if (st == EE_OK && ps.depth != 0)
        st = ee__error(EE_EPARSE, "template: section {{#%.*s}} is never closed",
                       (int)(ps.stack[ps.depth]->len > 64 ? 64 : ps.stack[ps.depth]->len),
                       ps.stack[ps.depth]->s);
    return st;
}

/* ---- rendering --------------------------------------------------------------------- */

typedef struct {
    const json_t *stack[2 * EE__MUSTACHE_MAX_DEPTH + 2];
    int n;           /* context stack height */
    int depth;       /* sections + partials being rendered */
    const json_t *partials;
    char *buf;
    size_t len, cap;
    uint64_t work; /* units spent of EE__MUSTACHE_MAX_WORK */
} render_state;

/* Draw `units` from the render's work budget. */
static ee_status charge(render_state *rs, uint64_t units)
{
    rs->work += units;
    if (rs->work <= EE__MUSTACHE_MAX_WORK)
        return EE_OK;
    return ee__error(EE_ETOOBIG,
                     "rendering the template needs more than %u units of work (nodes visited, "
                     "names looked up): sections nest over too many list items",
                     EE__MUSTACHE_MAX_WORK);
}

/* Room for n more bytes (and the NUL) within the output cap. */
static ee_status reserve(render_state *rs, size_t n)
{
    if (rs->len + n > EE__MUSTACHE_MAX_OUTPUT)
        return ee__error(EE_ETOOBIG, "rendered text would exceed %d bytes", EE__MUSTACHE_MAX_OUTPUT);
    if (rs->len + n + 1 > rs->cap) {
        size_t cap = rs->cap ? rs->cap : 256;
        while (cap < rs->len + n + 1)
            cap *= 2;
        char *grown = realloc(rs->buf, cap);
        if (grown == NULL)
            return ee__error(EE_ENOMEM, "out of memory rendering a template");
        rs->buf = grown;
        rs->cap = cap;
    }
    return EE_OK;
}

static ee_status emit(render_state *rs, const char *s, size_t n)
{
    ee_status st = reserve(rs, n);
    if (st != EE_OK)
        return st;
    memcpy(rs->buf + rs->len, s, n);
    rs->len += n;
    rs->buf[rs->len] = '\0';
    return EE_OK;
}

/* Escaping sizes the result first and writes it in one pass: a value of
 * nothing but "<&" would otherwise cost two emit() calls a byte. */
static ee_status emit_escaped(render_state *rs, const char *s, size_t n)
{
    size_t out = n;
    for (size_t i = 0; i < n; i++)
        out += s[i] == '&' ? 4 : s[i] == '"' ? 5 : s[i] == '<' || s[i] == '>' ? 3 : 0;
    if (out == n)
        return emit(rs, s, n);
    ee_status st = reserve(rs, out);
    if (st != EE_OK)
        return st;
    char *w = rs->buf + rs->len;
    for (size_t i = 0; i < n; i++) {
        const char *rep = s[i] == '&' ? "&amp;" : s[i] == '"' ? "&quot;" : s[i] == '<' ? "&lt;"
                        : s[i] == '>' ? "&gt;" : NULL;
        if (rep == NULL) {
            *w++ = s[i];
        } else {
            size_t k = strlen(rep);
            memcpy(w, rep, k);
            w += k;
        }
    }
    rs->len += out;
    rs->buf[rs->len] = '\0';
    return EE_OK;
}

/* A name: "." is the top of the stack; else the first part is looked up
 * from the top down, the rest inside what it found. Each level inspected
 * costs a unit of work. */
static const json_t *lookup(render_state *rs, const char *name, size_t len)
{
    if (len == 1 && name[0] == '.')
        return rs->stack[rs->n - 1];
    const char *dot = memchr(name, '.', len);
    size_t first = dot ? (size_t)(dot - name) : len;
    const json_t *v = NULL;
    int i = rs->n - 1;
    for (; i >= 0 && v == NULL; i--)
        if (json_is_object(rs->stack[i]))
            v = json_object_getn(rs->stack[i], name, first);
    rs->work += (uint64_t)(rs->n - 1 - i);
    while (v != NULL && dot != NULL) {
        rs->work++;
        const char *part = dot + 1;
        dot = memchr(part, '.', len - (size_t)(part - name));
        size_t plen = dot ? (size_t)(dot - part) : len - (size_t)(part - name);
        v = json_is_object(v) ? json_object_getn(v, part, plen) : NULL;
    }
    return v;
}

/* Shortest decimal that reads back as the same double. */
static void format_real(double d, char buf[40])
{
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, 40, "%.*g", p, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

static ee_status interpolate(render_state *rs, const node *nd)
{
    const json_t *v = lookup(rs, nd->s, nd->len);
    char num[40];
    const char *s = NULL;
    size_t n = 0;
    if (json_is_string(v)) {
        s = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_integer(v)) {
        n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        s = num;
    } else if (json_is_real(v)) {
        format_real(json_real_value(v), num);
        s = num;
        n = strlen(num);
    } else if (json_is_boolean(v)) {
        s = json_is_true(v) ? "true" : "false";
        n = strlen(s);
    }
    if (s == NULL)
        return EE_OK;
    return nd->kind == N_ETAG ? emit_escaped(rs, s, n) : emit(rs, s, n);
}

static bool falsy(const json_t *v)
{
    return v == NULL || json_is_null(v) || json_is_false(v) ||
           (json_is_array(v) && json_array_size(v) == 0) ||
           (json_is_string(v) && json_string_length(v) == 0);
}

static ee_status render_nodes(render_state *rs, const node *parent);

static ee_status render_with(render_state *rs, const node *nd, const json_t *ctx)
{
    rs->stack[rs->n++] = ctx;
    ee_status st = render_nodes(rs, nd);
    rs->n--;
    return st;
}

static ee_status render_section(render_state *rs, const node *nd)
{
    const json_t *v = lookup(rs, nd->s, nd->len);
    if (nd->kind == N_INVERTED)
        return falsy(v) ? render_nodes(rs, nd) : EE_OK;
    if (falsy(v))
        return EE_OK;
    if (!json_is_array(v))
        return render_with(rs, nd, v);
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item) {
        ee_status st = charge(rs, 1);
        if (st == EE_OK)
            st = render_with(rs, nd, item);
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

/* A standalone partial's indentation goes before every line of its text. */
static char *indent_text(const char *t, size_t len, const char *ind, size_t ilen, size_t *out_len)
{
    size_t lines = 1;
    for (size_t i = 0; i + 1 < len; i++)
        lines += t[i] == '\n';
    char *out = malloc(len + lines * ilen + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (i == 0 || (t[i - 1] == '\n'))
            memcpy(out + o, ind, ilen), o += ilen;
        out[o++] = t[i];
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

static ee_status render_partial(render_state *rs, const node *nd)
{
    const json_t *p = rs->partials ? json_object_getn(rs->partials, nd->s, nd->len) : NULL;
    if (!json_is_string(p))
        return EE_OK; /* a missing partial renders as nothing */
    size_t len = json_string_length(p);
    if (len > EE__MUSTACHE_MAX_TEMPLATE)
        return ee__error(EE_ETOOBIG, "partial of %zu bytes exceeds %d", len, EE__MUSTACHE_MAX_TEMPLATE);
    /* it is parsed again at every use */
    ee_status cst = charge(rs, 1 + len / EE__MUSTACHE_BYTES_PER_UNIT);
    if (cst != EE_OK)
        return cst;
    char *text = indent_text(json_string_value(p), len, nd->indent, nd->indent_len, &len);
    if (text == NULL)
        return ee__error(EE_ENOMEM, "out of memory rendering a partial");
    node root = {0};
    ee_status st = parse(text, len, &root);
    if (st == EE_OK)
        st = render_nodes(rs, &root);
    node_free_kids(&root);
    free(text);
    return st;
}

static ee_status render_node(render_state *rs, const node *nd)
{
    ee_status st = charge(rs, 1);
    if (st != EE_OK)
        return st;
    switch (nd->kind) {
    case N_TEXT: return emit(rs, nd->s, nd->len);
    case N_ETAG:
    case N_UTAG: return interpolate(rs, nd);
    case N_SECTION:
    case N_INVERTED: return render_section(rs, nd);
    case N_PARTIAL: return render_partial(rs, nd);
    }
    return EE_OK;
}

static ee_status render_nodes(render_state *rs, const node *parent)
{
    if (rs->depth == EE__MUSTACHE_MAX_DEPTH)
        return ee__error(EE_ETOOBIG, "template: sections and partials nested deeper than %d",
                         EE__MUSTACHE_MAX_DEPTH);
    rs->depth++;
    ee_status st = EE_OK;
    for (size_t i = 0; st == EE_OK && i < parent->n; i++)
        st = render_node(rs, &parent->kids[i]);
    rs->depth--;
    return st;
}

ee_status ee__mustache_render(const char *tmpl, const json_t *data, const json_t *partials,
                              char **out)
{
    if (out != NULL)
        *out = NULL;
    if (tmpl == NULL || out == NULL)
        return ee__error(EE_EINVAL, "mustache: NULL template or out");
    size_t len = strlen(tmpl);
    if (len > EE__MUSTACHE_MAX_TEMPLATE)
        return ee__error(EE_ETOOBIG, "template of %zu bytes exceeds %d", len, EE__MUSTACHE_MAX_TEMPLATE);
    node root = {0};
    render_state rs = {.partials = json_is_object(partials) ? partials : NULL};
    rs.stack[rs.n++] = data;
    ee_status st = parse(tmpl, len, &root);
    if (st == EE_OK)
        st = emit(&rs, "", 0);
    if (st == EE_OK)
        st = render_nodes(&rs, &root);
    node_free_kids(&root);
    if (st != EE_OK) {
        free(rs.buf);
        return st;
    }
    *out = rs.buf;
    return EE_OK;
}
