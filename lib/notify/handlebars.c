/* Handlebars rendering (handlebars.h): parse to a tree, then render. */
#include "notify/handlebars.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define NAME_MAX_SHOWN 64

/* ---- the tree ---------------------------------------------------------------- */

typedef struct call call;

typedef enum { X_PATH, X_LIT, X_STR, X_UNDEF, X_SUB } expr_kind;

typedef struct {
    const char *s;
    size_t n;
} seg;

typedef struct {
    expr_kind kind;
    /* X_PATH */
    int up;           /* ../ count */
    bool data;        /* @name */
    bool scoped;      /* this, ./ or [..] first: never a helper */
    seg *segs;
    size_t nseg;
    const char *orig; /* the path as written */
    size_t orig_n;
    json_t *lit;      /* X_LIT: number, true, false, null */
    char *str;        /* X_STR: a string literal */
    size_t str_n;
    call *sub;        /* X_SUB */
} expr;

struct call {
    expr head;
    expr *params;
    size_t np;
    seg *hkeys;
    expr *hvals;
    size_t nh;
    seg bp[2];  /* block parameters: {{#each l as |item i|}} */
    int nbp;
};

typedef enum { N_TEXT, N_ESC, N_RAW, N_BLOCK, N_PARTIAL } node_kind;

typedef struct node node;

typedef struct {
    node *v;
    size_t n, cap;
} nodelist;

struct node {
    node_kind kind;
    const char *s; /* N_TEXT */
    size_t len;
    size_t at;     /* byte offset of the tag, for messages */
    call c;        /* mustaches, blocks, partials (head is the partial's name) */
    nodelist prog, inv;
    const char *indent; /* standalone partial */
    size_t indent_len;
};

static void expr_free(expr *e);

static void call_free(call *c)
{
    expr_free(&c->head);
    for (size_t i = 0; i < c->np; i++)
        expr_free(&c->params[i]);
    for (size_t i = 0; i < c->nh; i++)
        expr_free(&c->hvals[i]);
    free(c->params);
    free(c->hkeys);
    free(c->hvals);
}

static void expr_free(expr *e)
{
    free(e->segs);
    json_decref(e->lit);
    free(e->str);
    if (e->sub != NULL) {
        call_free(e->sub);
        free(e->sub);
    }
}

static void list_free(nodelist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        call_free(&l->v[i].c);
        list_free(&l->v[i].prog);
        list_free(&l->v[i].inv);
    }
    free(l->v);
}

static node *list_add(nodelist *l, node_kind kind, size_t at)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        node *grown = realloc(l->v, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        l->v = grown;
        l->cap = cap;
    }
    node *nd = &l->v[l->n++];
    *nd = (node){.kind = kind, .at = at};
    return nd;
}

/* ---- lexing and parsing ------------------------------------------------------------- */

typedef struct {
    nodelist *cur;  /* the list being filled */
    node *blk;      /* NULL for the root */
    bool chained;   /* opened by {{else helper}}: closed by its base's {{/name}} */
    bool seen_else;
} frame;

typedef struct {
    const char *t;
    size_t len;
    size_t pos;     /* lexing position inside a tag */
    size_t tag;     /* offset of the tag being parsed */
    frame stack[EE__TEMPLATE_MAX_DEPTH + 1];
    int depth;
    int sub_depth;
} parser;

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* Characters an identifier cannot hold (handlebars' ID rule). */
static bool id_char(unsigned char c)
{
    if (is_ws((char)c) || c == 0)
        return false;
    return strchr("!\"#%&'()*+,./;<=>@[\\]^`{|}~", c) == NULL;
}

/* What may follow a literal or an identifier. */
static bool lookahead_ok(const parser *ps, size_t p)
{
    return p >= ps->len || is_ws(ps->t[p]) || strchr("=~}/.)|", ps->t[p]) != NULL;
}

static ee_status syntax(const parser *ps, const char *what)
{
    return ee__error(EE_EPARSE, "template: %s at byte %zu", what, ps->tag);
}

static void skip_ws(parser *ps)
{
    while (ps->pos < ps->len && is_ws(ps->t[ps->pos]))
        ps->pos++;
}

static bool at_word(const parser *ps, const char *w)
{
    size_t n = strlen(w);
    return ps->pos + n <= ps->len && memcmp(ps->t + ps->pos, w, n) == 0 &&
           lookahead_ok(ps, ps->pos + n) &&
           (ps->pos + n >= ps->len || ps->t[ps->pos + n] != '=');
}

static ee_status parse_call(parser *ps, call *c, char closer);

static ee_status add_seg(expr *e, const char *s, size_t n)
{
    if ((e->nseg & (e->nseg - 1)) == 0) { /* 0, 1, 2, 4 ...: grow */
        seg *grown = realloc(e->segs, (e->nseg ? e->nseg * 2 : 1) * sizeof *grown);
        if (grown == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        e->segs = grown;
    }
    e->segs[e->nseg++] = (seg){s, n};
    return EE_OK;
}

/* A path: [@] then segments separated by . or /; leading .., . and this. */
static ee_status parse_path(parser *ps, expr *e)
{
    e->kind = X_PATH;
    size_t start = ps->pos;
    if (ps->t[ps->pos] == '@') {
        e->data = true;
        ps->pos++;
    }
    bool leading = true;
    for (;;) {
        const char *s = ps->t + ps->pos;
        size_t n = 0;
        bool literal = false;
        if (ps->pos < ps->len && ps->t[ps->pos] == '[') {
            const char *close = memchr(s + 1, ']', ps->len - ps->pos - 1);
            if (close == NULL)
                return syntax(ps, "unclosed [ in a path");
            s++;
            n = (size_t)(close - s);
            ps->pos += n + 2;
            literal = true;
        } else if (ps->pos + 1 < ps->len && s[0] == '.' && s[1] == '.') {
            n = 2;
            ps->pos += 2;
        } else if (ps->pos < ps->len && s[0] == '.' && (ps->pos + 1 >= ps->len || !id_char((unsigned char)s[1]) || s[1] == '.')) {
            n = 1;
            ps->pos += 1;
        } else {
            while (ps->pos < ps->len && id_char((unsigned char)ps->t[ps->pos]))
                ps->pos++;
            n = (size_t)(ps->t + ps->pos - s);
            if (n == 0)
                return syntax(ps, "expected a name");
        }
        if (!literal && n == 2 && s[0] == '.' && s[1] == '.') {
            if (!leading)
                return syntax(ps, "'..' in the middle of a path");
            e->up++;
        } else if (!literal && ((n == 1 && s[0] == '.') || (n == 4 && memcmp(s, "this", 4) == 0))) {
            if (!leading || e->data)
                return syntax(ps, "'this' or '.' in the middle of a path");
            e->scoped = true;
        } else {
            leading = false;
            ee_status st = add_seg(e, s, n);
            if (st != EE_OK)
                return st;
        }
        if (ps->pos < ps->len && (ps->t[ps->pos] == '.' || ps->t[ps->pos] == '/') &&
            ps->pos + 1 < ps->len &&
            (id_char((unsigned char)ps->t[ps->pos + 1]) || ps->t[ps->pos + 1] == '[' ||
             ps->t[ps->pos + 1] == '.')) {
            /* "../" and "./" already consumed their dots; the separator */
            ps->pos++;
            continue;
        }
        break;
    }
    if (e->up > 0 || (e->scoped && e->nseg == 0))
        e->scoped = true;
    e->orig = ps->t + start;
    e->orig_n = ps->pos - start;
    return EE_OK;
}

static ee_status parse_expr(parser *ps, expr *e)
{
    *e = (expr){.kind = X_UNDEF};
    if (ps->pos >= ps->len)
        return syntax(ps, "tag is never closed");
    char c = ps->t[ps->pos];
    if (c == '(') {
        if (ps->sub_depth == EE__TEMPLATE_MAX_DEPTH)
            return ee__error(EE_ETOOBIG, "template: subexpressions nested deeper than %d",
                             EE__TEMPLATE_MAX_DEPTH);
        ps->pos++;
        e->kind = X_SUB;
        if ((e->sub = calloc(1, sizeof *e->sub)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        ps->sub_depth++;
        ee_status st = parse_call(ps, e->sub, ')');
        ps->sub_depth--;
        return st;
    }
    if (c == '"' || c == '\'') {
        /* find the end first: the literal's own size is allocated */
        size_t end = ps->pos + 1;
        while (end < ps->len && ps->t[end] != c)
            end += ps->t[end] == '\\' && end + 1 < ps->len && ps->t[end + 1] == c ? 2 : 1;
        if (end >= ps->len)
            return syntax(ps, "unclosed string");
        size_t p = ps->pos + 1, n = 0;
        char *buf = malloc(end - p + 1);
        if (buf == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        for (; p < end; p++) {
            if (ps->t[p] == '\\' && p + 1 < end && ps->t[p + 1] == c)
                p++;
            buf[n++] = ps->t[p];
        }
        ps->pos = end + 1;
        e->kind = X_STR;
        e->str = buf;
        e->str_n = n;
        return EE_OK;
    }
    size_t p = ps->pos;
    if (p < ps->len && ps->t[p] == '-')
        p++;
    if (p < ps->len && ps->t[p] >= '0' && ps->t[p] <= '9') {
        while (p < ps->len && ps->t[p] >= '0' && ps->t[p] <= '9')
            p++;
        bool real = false;
        if (p + 1 < ps->len && ps->t[p] == '.' && ps->t[p + 1] >= '0' && ps->t[p + 1] <= '9') {
            real = true;
            p++;
            while (p < ps->len && ps->t[p] >= '0' && ps->t[p] <= '9')
                p++;
        }
        if (lookahead_ok(ps, p) && (p >= ps->len || ps->t[p] != '.' || real)) {
            char num[64];
            size_t n = p - ps->pos < sizeof num - 1 ? p - ps->pos : sizeof num - 1;
            memcpy(num, ps->t + ps->pos, n);
            num[n] = '\0';
            long long i = strtoll(num, NULL, 10);
            e->kind = X_LIT;
            e->lit = !real && n < 16 ? json_integer(i) : json_real(strtod(num, NULL));
            ps->pos = p;
            return e->lit ? EE_OK : ee__error(EE_ENOMEM, "out of memory parsing a template");
        }
    }
    static const char *const words[] = {"true", "false", "null", "undefined"};
    for (int w = 0; w < 4; w++) {
        if (at_word(ps, words[w])) {
            ps->pos += strlen(words[w]);
            if (w == 3)
                return EE_OK;
            e->kind = X_LIT;
            e->lit = w == 0 ? json_true() : w == 1 ? json_false() : json_null();
            return EE_OK;
        }
    }
    if (!id_char((unsigned char)c) && c != '@' && c != '[' && c != '.')
        return syntax(ps, "unexpected character in a tag");
    return parse_path(ps, e);
}

/* Whether a hash pair (key=) starts here. */
static bool at_hash_key(const parser *ps, size_t *key_end)
{
    size_t p = ps->pos;
    while (p < ps->len && id_char((unsigned char)ps->t[p]))
        p++;
    if (p == ps->pos)
        return false;
    size_t k = p;
    while (p < ps->len && is_ws(ps->t[p]))
        p++;
    if (p < ps->len && ps->t[p] == '=') {
        *key_end = k;
        return true;
    }
    return false;
}

/* A literal where a name goes ({{null}}, {{#true}}, {{"a b"}}) names a
 * member of the context, as in handlebars.js. */
static ee_status literal_head(parser *ps, expr *e, size_t at)
{
    if (e->kind != X_LIT && e->kind != X_UNDEF && e->kind != X_STR)
        return EE_OK;
    json_decref(e->lit);
    e->lit = NULL;
    e->orig = ps->t + at;
    e->orig_n = ps->pos - at;
    ee_status st = e->kind == X_STR ? add_seg(e, e->str, e->str_n) : add_seg(e, e->orig, e->orig_n);
    e->kind = X_PATH;
    e->scoped = true;
    return st;
}

static ee_status grow(void **v, size_t n, size_t size)
{
    if ((n & (n - 1)) != 0)
        return EE_OK;
    void *grown = realloc(*v, (n ? n * 2 : 1) * size);
    if (grown == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    *v = grown;
    return EE_OK;
}

/* head params* (key=value)* up to the closer: ')' for a subexpression,
 * 0 for a tag (stops before ~ or }). */
static ee_status parse_call(parser *ps, call *c, char closer)
{
    skip_ws(ps);
    size_t head_at = ps->pos;
    ee_status st = parse_expr(ps, &c->head);
    if (st == EE_OK)
        st = literal_head(ps, &c->head, head_at);
    for (;;) {
        if (st != EE_OK)
            return st;
        size_t before = ps->pos;
        skip_ws(ps);
        if (ps->pos >= ps->len)
            return syntax(ps, "tag is never closed");
        char ch = ps->t[ps->pos];
        if (closer == ')' && ch == ')') {
            ps->pos++;
            return EE_OK;
        }
        if (closer == 0 && (ch == '~' || ch == '}'))
            return EE_OK;
        if (ps->pos == before)
            return syntax(ps, "expected a space between arguments");
        if (ch == 'a' && at_word(ps, "as")) {
            size_t b = ps->pos + 2;
            while (b < ps->len && is_ws(ps->t[b]))
                b++;
            if (b < ps->len && ps->t[b] == '|') {
                if (closer != 0)
                    return syntax(ps, "block parameters in a subexpression");
                ps->pos = b + 1;
                for (;;) {
                    skip_ws(ps);
                    if (ps->pos < ps->len && ps->t[ps->pos] == '|')
                        break;
                    size_t from = ps->pos;
                    while (ps->pos < ps->len && id_char((unsigned char)ps->t[ps->pos]))
                        ps->pos++;
                    if (ps->pos == from)
                        return syntax(ps, "malformed block parameters (as |item index|)");
                    if (c->nbp < 2) /* a third name gets nothing, as in handlebars.js */
                        c->bp[c->nbp++] = (seg){ps->t + from, ps->pos - from};
                }
                if (c->nbp == 0)
                    return syntax(ps, "malformed block parameters (as |item index|)");
                ps->pos++;
                skip_ws(ps);
                if (ps->pos >= ps->len || (ps->t[ps->pos] != '~' && ps->t[ps->pos] != '}'))
                    return syntax(ps, "block parameters must end the tag");
                return EE_OK;
            }
        }
        size_t key_end;
        if (at_hash_key(ps, &key_end)) {
            if ((st = grow((void **)&c->hkeys, c->nh, sizeof *c->hkeys)) != EE_OK ||
                (st = grow((void **)&c->hvals, c->nh, sizeof *c->hvals)) != EE_OK)
                return st;
            c->hkeys[c->nh] = (seg){ps->t + ps->pos, key_end - ps->pos};
            c->hvals[c->nh] = (expr){.kind = X_UNDEF};
            ps->pos = key_end;
            skip_ws(ps);
            ps->pos++; /* = */
            skip_ws(ps);
            st = parse_expr(ps, &c->hvals[c->nh]);
            c->nh++;
            continue;
        }
        if (c->nh > 0)
            return syntax(ps, "a positional argument after key=value");
        if ((st = grow((void **)&c->params, c->np, sizeof *c->params)) != EE_OK)
            return st;
        c->params[c->np] = (expr){.kind = X_UNDEF};
        st = parse_expr(ps, &c->params[c->np]);
        c->np++;
    }
}

/* After the tag's contents: optional ~ then }} (or }}} for a triple).
 * Sets *end past it. */
static ee_status close_tag(parser *ps, bool triple, bool *strip, size_t *end)
{
    skip_ws(ps);
    *strip = false;
    if (triple) {
        if (ps->pos >= ps->len || ps->t[ps->pos] != '}')
            return syntax(ps, ps->pos >= ps->len ? "tag is never closed" : "unexpected text in a tag");
        ps->pos++;
    }
    if (ps->pos < ps->len && ps->t[ps->pos] == '~') {
        *strip = true;
        ps->pos++;
    }
    if (ps->pos + 2 > ps->len || memcmp(ps->t + ps->pos, "}}", 2) != 0)
        return syntax(ps, ps->pos >= ps->len ? "tag is never closed" : "unexpected text in a tag");
    *end = ps->pos + 2;
    return EE_OK;
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

static ee_status add_text(parser *ps, size_t from, size_t to)
{
    if (to <= from)
        return EE_OK;
    node *nd = list_add(ps->stack[ps->depth].cur, N_TEXT, from);
    if (nd == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    nd->s = ps->t + from;
    nd->len = to - from;
    return EE_OK;
}

static bool same_name(const expr *a, const expr *b)
{
    return a->kind == X_PATH && b->kind == X_PATH && a->orig_n == b->orig_n &&
           memcmp(a->orig, b->orig, a->orig_n) == 0;
}

/* Opens a block for the call c (the node takes it) in the current list,
 * its content going to the block's inverse or its program; a chained one
 * ({{else helper}}) closes with the block it continues. */
static ee_status open_block(parser *ps, call *c, bool inverse, bool chained)
{
    if (ps->depth == EE__TEMPLATE_MAX_DEPTH)
        return ee__error(EE_ETOOBIG, "template: blocks nested deeper than %d",
                         EE__TEMPLATE_MAX_DEPTH);
    node *nd = list_add(ps->stack[ps->depth].cur, N_BLOCK, ps->tag);
    if (nd == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    nd->c = *c;
    *c = (call){.head = {.kind = X_UNDEF}}; /* the node owns it */
    ps->stack[++ps->depth] = (frame){.cur = inverse ? &nd->inv : &nd->prog, .blk = nd,
                                     .chained = chained};
    return EE_OK;
}

/* What a tag does to the tree. `kind` is the sigil ('#', '^', '/', '>',
 * '!', 'e' for else, 0 for a mustache, '{' or '&' unescaped). */
static ee_status on_tag(parser *ps, char kind, call *c, const char *indent, size_t indent_len)
{
    frame *top = &ps->stack[ps->depth];
    node *nd;
    switch (kind) {
    case '#':
    case '^':
        return open_block(ps, c, kind == '^', false);
    case 'e':
        if (ps->depth == 0)
            return syntax(ps, "{{else}} outside a block");
        if (top->seen_else)
            return syntax(ps, "a second {{else}} in one block");
        top->seen_else = true;
        top->cur = top->cur == &top->blk->prog ? &top->blk->inv : &top->blk->prog;
        if (c->head.kind == X_UNDEF)
            return EE_OK;
        /* {{else helper ...}}: a block in the inverse, closed with the base */
        return open_block(ps, c, false, true);
    case '/':
        while (ps->depth > 0 && ps->stack[ps->depth].chained)
            ps->depth--;
        if (ps->depth == 0 || !same_name(&ps->stack[ps->depth].blk->c.head, &c->head))
            return syntax(ps, "a closing tag that matches no open block");
        ps->depth--;
        return EE_OK;
    case '>':
        if ((nd = list_add(top->cur, N_PARTIAL, ps->tag)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        nd->c = *c;
        *c = (call){.head = {.kind = X_UNDEF}}; /* the node owns it */
        nd->indent = indent;
        nd->indent_len = indent_len;
        return EE_OK;
    default:
        if ((nd = list_add(top->cur, kind == 0 ? N_ESC : N_RAW, ps->tag)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        nd->c = *c;
        *c = (call){.head = {.kind = X_UNDEF}}; /* the node owns it */
        return EE_OK;
    }
}

/* Find `needle` in t[from, len). */
static size_t find(const char *t, size_t len, size_t from, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = from; i + n <= len; i++)
        if (t[i] == needle[0] && memcmp(t + i, needle, n) == 0)
            return i;
    return len;
}

typedef struct {
    size_t text_start;
    bool strip_next; /* the previous tag ended with ~ */
} lexstate;

/* Parse the tag whose {{ starts at p. */
static ee_status parse_tag(parser *ps, size_t p, lexstate *lx, size_t *resume)
{
    ps->tag = p;
    size_t q = p + 2;
    bool triple = false, strip_open = false, strip_close = false;
    if (q + 1 < ps->len && ps->t[q] == '{' && ps->t[q + 1] == '{')
        return syntax(ps, "raw blocks ({{{{ }}}}) are not supported");
    if (q < ps->len && ps->t[q] == '~') {
        strip_open = true;
        q++;
    }
    if (q < ps->len && ps->t[q] == '{') {
        triple = true;
        q++;
    }
    char kind = 0;
    if (!triple && q < ps->len && strchr("#^/>&!=", ps->t[q]) != NULL) {
        kind = ps->t[q];
        q++;
    }
    if (kind == '=')
        return syntax(ps, "set delimiters ({{= =}}) are not supported by Handlebars");
    if (triple)
        kind = '{';
    if (kind == '#' && q < ps->len && (ps->t[q] == '>' || ps->t[q] == '*'))
        return syntax(ps, ps->t[q] == '>' ? "partial blocks ({{#> }}) are not supported"
                                          : "decorators and inline partials are not supported");
    size_t end = ps->len;
    call c = {.head = {.kind = X_UNDEF}};
    ee_status st = EE_OK;
    if (kind == '!') {
        bool long_form = q + 1 < ps->len && ps->t[q] == '-' && ps->t[q + 1] == '-';
        if (long_form) {
            /* up to "--}}" or "--~}}", one pass */
            size_t i = q; /* the opening "--" may close it too: {{!--}} */
            for (; (i = find(ps->t, ps->len, i, "--")) < ps->len; i++) {
                size_t k = i + 2;
                bool tilde = k < ps->len && ps->t[k] == '~';
                k += tilde;
                if (k + 1 < ps->len && ps->t[k] == '}' && ps->t[k + 1] == '}') {
                    strip_close = tilde;
                    end = k + 2;
                    break;
                }
            }
            if (i >= ps->len)
                return syntax(ps, "comment is never closed");
        } else {
            size_t close = find(ps->t, ps->len, q, "}}");
            if (close == ps->len)
                return syntax(ps, "comment is never closed");
            end = close + 2;
            strip_close = close > q && ps->t[close - 1] == '~';
        }
    } else {
        ps->pos = q;
        skip_ws(ps);
        if (kind == '^' && ps->pos < ps->len && (ps->t[ps->pos] == '}' || ps->t[ps->pos] == '~')) {
            kind = 'e'; /* {{^}} is {{else}} */
        } else if (kind == 0 && at_word(ps, "else")) {
            kind = 'e';
            ps->pos += 4;
            skip_ws(ps);
            if (ps->pos < ps->len && ps->t[ps->pos] != '}' && ps->t[ps->pos] != '~')
                st = parse_call(ps, &c, 0);
        } else {
            st = parse_call(ps, &c, 0);
        }
        if (st == EE_OK)
            st = close_tag(ps, triple, &strip_close, &end);
        if (st != EE_OK) {
            call_free(&c);
            return st;
        }
        if ((kind == '#' || kind == '^' || kind == '/') && c.head.kind != X_PATH) {
            call_free(&c);
            return syntax(ps, "a block needs a name");
        }
    }
    size_t text_end = p, next = end, ls = p;
    bool alone = kind != 0 && kind != '{' && kind != '&' && standalone(ps, p, end, &ls, &next);
    if (alone)
        text_end = ls;
    size_t from = lx->text_start;
    if (lx->strip_next)
        while (from < text_end && is_ws(ps->t[from]))
            from++;
    if (strip_open)
        while (text_end > from && is_ws(ps->t[text_end - 1]))
            text_end--;
    st = add_text(ps, from, text_end);
    if (st == EE_OK && kind != '!')
        st = on_tag(ps, kind, &c, ps->t + ls, alone ? p - ls : 0);
    call_free(&c); /* what on_tag did not give a node */
    lx->text_start = next;
    lx->strip_next = strip_close;
    *resume = next;
    return st;
}

static ee_status parse(const char *t, size_t len, nodelist *root)
{
    parser ps = {.t = t, .len = len};
    ps.stack[0] = (frame){.cur = root};
    lexstate lx = {0};
    size_t pos = 0;
    for (;;) {
        size_t o = find(t, len, pos, "{{");
        if (o == len)
            break;
        if (o > 0 && t[o - 1] == '\\') {
            if (o > 1 && t[o - 2] == '\\') {
                /* \\{{x}}: one backslash printed, the tag is a tag */
                ee_status st = add_text(&ps, lx.text_start, o - 1);
                if (st != EE_OK)
                    return st;
                lx.text_start = o;
                lx.strip_next = false;
            } else {
                /* \{{x}}: literal up to the next {{ */
                ee_status st = add_text(&ps, lx.text_start, o - 1);
                if (st != EE_OK)
                    return st;
                lx.text_start = o;
                lx.strip_next = false;
                pos = o + 2;
                continue;
            }
        }
        ee_status st = parse_tag(&ps, o, &lx, &pos);
        if (st != EE_OK)
            return st;
    }
    size_t from = lx.text_start;
    if (lx.strip_next)
        while (from < len && is_ws(t[from]))
            from++;
    ee_status st = add_text(&ps, from, len);
    if (st == EE_OK && ps.depth != 0) {
        while (ps.depth > 0 && ps.stack[ps.depth].chained)
            ps.depth--;
        const expr *h = &ps.stack[ps.depth].blk->c.head;
        st = ee__error(EE_EPARSE, "template: block {{#%.*s}} at byte %zu is never closed",
                       (int)(h->orig_n > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : h->orig_n), h->orig,
                       ps.stack[ps.depth].blk->at);
    }
    return st;
}

/* ---- values ------------------------------------------------------------------------ */

typedef enum { V_UNDEF, V_JSON, V_INT, V_BOOL, V_STR } val_kind;

typedef struct {
    val_kind k;
    const json_t *j;
    json_int_t i;
    bool b;
    const char *s;
    size_t n;
} val;

static val v_json(const json_t *j) { return j ? (val){.k = V_JSON, .j = j} : (val){.k = V_UNDEF}; }

static bool v_nullish(val v) { return v.k == V_UNDEF || (v.k == V_JSON && json_is_null(v.j)); }

/* JavaScript's truthiness. */
static bool v_truthy(val v)
{
    switch (v.k) {
    case V_UNDEF: return false;
    case V_INT: return v.i != 0;
    case V_BOOL: return v.b;
    case V_STR: return v.n > 0;
    case V_JSON:
        if (json_is_null(v.j) || json_is_false(v.j))
            return false;
        if (json_is_integer(v.j))
            return json_integer_value(v.j) != 0;
        if (json_is_real(v.j))
            return json_real_value(v.j) != 0 && !isnan(json_real_value(v.j));
        if (json_is_string(v.j))
            return json_string_length(v.j) > 0;
        return true;
    }
    return false;
}

static bool v_is_zero(val v)
{
    return (v.k == V_INT && v.i == 0) ||
           (v.k == V_JSON && json_is_number(v.j) && json_number_value(v.j) == 0);
}

/* handlebars' Utils.isEmpty. */
static bool v_empty(val v)
{
    if (!v_truthy(v) && !v_is_zero(v))
        return true;
    return v.k == V_JSON && json_is_array(v.j) && json_array_size(v.j) == 0;
}

static bool v_same(val a, val b)
{
    if (a.k != b.k)
        return false;
    switch (a.k) {
    case V_UNDEF: return true;
    case V_JSON: return a.j == b.j;
    case V_INT: return a.i == b.i;
    case V_BOOL: return a.b == b.b;
    case V_STR: return a.n == b.n && memcmp(a.s, b.s, a.n) == 0;
    }
    return false;
}

/* ---- rendering --------------------------------------------------------------------- */

typedef struct dframe {
    const struct dframe *parent;
    bool iter;  /* an each: these are set */
    val key;
    json_int_t index;
    bool first, last;
} dframe;

typedef struct {
    val ctx[EE__TEMPLATE_MAX_DEPTH + 4];
    struct {
        const call *c; /* its names */
        val v[2];
    } bps[EE__TEMPLATE_MAX_DEPTH + 4]; /* block parameters in scope, innermost last */
    int nbps;
    int bp_base; /* a partial sees only bps[bp_base..nbps) */
    int n;       /* context stack height */
    int base;    /* a partial sees only ctx[base..n) */
    int depth;   /* blocks + partials being rendered */
    const dframe *data;
    val root;
    const json_t *partials;
    json_t *scratch; /* values made while rendering (partial contexts) */
    char *buf;
    size_t len, cap;
    uint64_t work;
} render_state;

static ee_status charge(render_state *rs, uint64_t units)
{
    rs->work += units;
    if (rs->work <= EE__TEMPLATE_MAX_WORK)
        return EE_OK;
    return ee__error(EE_ETOOBIG,
                     "rendering the template needs more than %u units of work (nodes visited, "
                     "names looked up): blocks nest over too many list items",
                     EE__TEMPLATE_MAX_WORK);
}

static ee_status reserve(render_state *rs, size_t n)
{
    if (rs->len + n > EE__TEMPLATE_MAX_OUTPUT)
        return ee__error(EE_ETOOBIG, "rendered text would exceed %d bytes", EE__TEMPLATE_MAX_OUTPUT);
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
    if (n > 0)
        memcpy(rs->buf + rs->len, s, n);
    rs->len += n;
    rs->buf[rs->len] = '\0';
    return EE_OK;
}

/* handlebars.js escapes these seven. */
static const char *escape_of(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#x27;";
    case '`': return "&#x60;";
    case '=': return "&#x3D;";
    default: return NULL;
    }
}

static ee_status emit_escaped(render_state *rs, const char *s, size_t n)
{
    size_t out = n;
    for (size_t i = 0; i < n; i++) {
        const char *rep = escape_of(s[i]);
        if (rep != NULL)
            out += strlen(rep) - 1;
    }
    if (out == n)
        return emit(rs, s, n);
    ee_status st = reserve(rs, out);
    if (st != EE_OK)
        return st;
    char *w = rs->buf + rs->len;
    for (size_t i = 0; i < n; i++) {
        const char *rep = escape_of(s[i]);
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

/* A double as JavaScript's Number.prototype.toString prints it. */
static size_t js_number(double d, char buf[48])
{
    if (isnan(d))
        return (size_t)snprintf(buf, 48, "NaN");
    if (isinf(d))
        return (size_t)snprintf(buf, 48, d < 0 ? "-Infinity" : "Infinity");
    if (d == 0)
        return (size_t)snprintf(buf, 48, "0");
    char e[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    char digits[24];
    size_t k = 0;
    const char *c = e;
    bool neg = *c == '-';
    if (neg)
        c++;
    for (; *c != 'e'; c++)
        if (*c >= '0' && *c <= '9' && k < sizeof digits - 1)
            digits[k++] = *c;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int n = atoi(c + 1) + 1; /* the decimal point sits after n digits */
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    if ((int)k <= n && n <= 21) {
        memcpy(buf + o, digits, k), o += k;
        for (int i = (int)k; i < n; i++)
            buf[o++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(buf + o, digits, (size_t)n), o += (size_t)n;
        buf[o++] = '.';
        memcpy(buf + o, digits + n, k - (size_t)n), o += k - (size_t)n;
    } else if (-6 < n && n <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = 0; i < -n; i++)
            buf[o++] = '0';
        memcpy(buf + o, digits, k), o += k;
    } else {
        buf[o++] = digits[0];
        if (k > 1) {
            buf[o++] = '.';
            memcpy(buf + o, digits + 1, k - 1), o += k - 1;
        }
        o += (size_t)snprintf(buf + o, 48 - o, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
    }
    buf[o] = '\0';
    return o;
}

static ee_status emit_text(render_state *rs, const char *s, size_t n, bool esc)
{
    return esc ? emit_escaped(rs, s, n) : emit(rs, s, n);
}

/* A JSON value as JavaScript's String() prints it ("" for null inside an
 * array, "1,2" for [1,2], "[object Object]"). */
static ee_status emit_json(render_state *rs, const json_t *j, bool esc, bool in_array)
{
    char num[48];
    switch (json_typeof(j)) {
    case JSON_STRING: return emit_text(rs, json_string_value(j), json_string_length(j), esc);
    case JSON_INTEGER: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        return emit(rs, num, (size_t)n);
    }
    case JSON_REAL: {
        size_t n = js_number(json_real_value(j), num);
        return emit(rs, num, n);
    }
    case JSON_TRUE: return emit(rs, "true", 4);
    case JSON_FALSE: return emit(rs, "false", 5);
    case JSON_NULL: return in_array ? EE_OK : emit(rs, "", 0);
    case JSON_OBJECT: return emit(rs, "[object Object]", 15);
    case JSON_ARRAY: {
        size_t i;
        const json_t *item;
        json_array_foreach(j, i, item) {
            ee_status st = charge(rs, 1);
            if (st == EE_OK && i > 0)
                st = emit(rs, ",", 1);
            if (st == EE_OK)
                st = emit_json(rs, item, esc, true);
            if (st != EE_OK)
                return st;
        }
        return EE_OK;
    }
    }
    return EE_OK;
}

static ee_status emit_val(render_state *rs, val v, bool esc)
{
    char num[48];
    switch (v.k) {
    case V_UNDEF: return EE_OK;
    case V_INT: {
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, v.i);
        return emit(rs, num, (size_t)n);
    }
    case V_BOOL: return v.b ? emit(rs, "true", 4) : emit(rs, "false", 5);
    case V_STR: return emit_text(rs, v.s, v.n, esc);
    case V_JSON: return json_is_null(v.j) ? EE_OK : emit_json(rs, v.j, esc, false);
    }
    return EE_OK;
}

/* A member of a value: object members, array items by index, .length. */
static val member(val v, const char *s, size_t n)
{
    if (v.k == V_JSON && json_is_object(v.j))
        return v_json(json_object_getn(v.j, s, n));
    bool is_len = n == 6 && memcmp(s, "length", 6) == 0;
    if (v.k == V_JSON && json_is_array(v.j)) {
        if (is_len)
            return (val){.k = V_INT, .i = (json_int_t)json_array_size(v.j)};
        if (n == 0 || n > 18 || (n > 1 && s[0] == '0'))
            return (val){.k = V_UNDEF};
        size_t idx = 0;
        for (size_t i = 0; i < n; i++) {
            if (s[i] < '0' || s[i] > '9')
                return (val){.k = V_UNDEF};
            idx = idx * 10 + (size_t)(s[i] - '0');
        }
        return v_json(json_array_get(v.j, idx));
    }
    if (is_len && v.k == V_JSON && json_is_string(v.j))
        return (val){.k = V_INT, .i = (json_int_t)json_string_length(v.j)};
    if (is_len && v.k == V_STR)
        return (val){.k = V_INT, .i = (json_int_t)v.n};
    return (val){.k = V_UNDEF};
}

static val data_value(render_state *rs, const expr *e)
{
    const dframe *d = rs->data;
    for (int i = 0; i < e->up && d != NULL; i++)
        d = d->parent;
    if (e->nseg == 0)
        return (val){.k = V_UNDEF};
    const seg *s = &e->segs[0];
    val v = {.k = V_UNDEF};
    if (s->n == 4 && memcmp(s->s, "root", 4) == 0)
        v = rs->root;
    else if (d == NULL || !d->iter)
        v = (val){.k = V_UNDEF};
    else if (s->n == 5 && memcmp(s->s, "index", 5) == 0)
        v = (val){.k = V_INT, .i = d->index};
    else if (s->n == 3 && memcmp(s->s, "key", 3) == 0)
        v = d->key;
    else if (s->n == 5 && memcmp(s->s, "first", 5) == 0)
        v = (val){.k = V_BOOL, .b = d->first};
    else if (s->n == 4 && memcmp(s->s, "last", 4) == 0)
        v = (val){.k = V_BOOL, .b = d->last};
    for (size_t i = 1; i < e->nseg && !v_nullish(v); i++) {
        rs->work++;
        v = member(v, e->segs[i].s, e->segs[i].n);
    }
    return v;
}

/* A block parameter named by the path's first segment, innermost first. */
static bool block_param(render_state *rs, const expr *e, val *out)
{
    if (e->up > 0 || e->scoped || e->nseg == 0)
        return false;
    for (int i = rs->nbps - 1; i >= rs->bp_base; i--) {
        rs->work++;
        for (int k = 0; k < rs->bps[i].c->nbp; k++) {
            const seg *n = &rs->bps[i].c->bp[k];
            if (n->n == e->segs[0].n && memcmp(n->s, e->segs[0].s, n->n) == 0) {
                *out = rs->bps[i].v[k];
                return true;
            }
        }
    }
    return false;
}

static val path_value(render_state *rs, const expr *e)
{
    if (e->data)
        return data_value(rs, e);
    val bp;
    if (rs->nbps > rs->bp_base && block_param(rs, e, &bp)) {
        for (size_t i = 1; i < e->nseg && !v_nullish(bp); i++) {
            rs->work++;
            bp = member(bp, e->segs[i].s, e->segs[i].n);
        }
        return bp;
    }
    if (e->up >= rs->n - rs->base)
        return (val){.k = V_UNDEF};
    val v = rs->ctx[rs->n - 1 - e->up];
    rs->work += (uint64_t)e->up;
    for (size_t i = 0; i < e->nseg; i++) {
        rs->work++;
        if (v_nullish(v))
            return (val){.k = V_UNDEF};
        v = member(v, e->segs[i].s, e->segs[i].n);
    }
    return v;
}

typedef enum { H_NONE, H_IF, H_UNLESS, H_EACH, H_WITH, H_LOOKUP, H_LOG } helper;

static helper helper_of(const expr *head)
{
    if (head->kind != X_PATH || head->scoped || head->data || head->up > 0 || head->nseg != 1)
        return H_NONE;
    static const struct {
        const char *name;
        helper h;
    } names[] = {{"if", H_IF},         {"unless", H_UNLESS}, {"each", H_EACH},
                 {"with", H_WITH},     {"lookup", H_LOOKUP}, {"log", H_LOG}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (head->segs[0].n == strlen(names[i].name) &&
            memcmp(head->segs[0].s, names[i].name, head->segs[0].n) == 0)
            return names[i].h;
    return H_NONE;
}

static ee_status call_value(render_state *rs, const call *c, size_t at, val *out);

static ee_status eval(render_state *rs, const expr *e, size_t at, val *out)
{
    switch (e->kind) {
    case X_PATH: *out = path_value(rs, e); return EE_OK;
    case X_LIT: *out = v_json(e->lit); return EE_OK;
    case X_STR: *out = (val){.k = V_STR, .s = e->str, .n = e->str_n}; return EE_OK;
    case X_UNDEF: *out = (val){.k = V_UNDEF}; return EE_OK;
    case X_SUB: return call_value(rs, e->sub, at, out);
    }
    *out = (val){.k = V_UNDEF};
    return EE_OK;
}

static ee_status missing_helper(const call *c, size_t at)
{
    const expr *h = &c->head;
    return ee__error(EE_ENOTFOUND, "template: missing helper \"%.*s\" at byte %zu",
                     (int)(h->orig_n > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : h->orig_n),
                     h->kind == X_PATH ? h->orig : "", at);
}

/* lookup obj key: obj[key] (obj itself when falsy, as handlebars.js). */
static ee_status helper_lookup(render_state *rs, const call *c, size_t at, val *out)
{
    if (c->np != 2)
        return ee__error(EE_EPARSE, "template: lookup at byte %zu needs two arguments", at);
    val obj, key;
    ee_status st = eval(rs, &c->params[0], at, &obj);
    if (st == EE_OK)
        st = eval(rs, &c->params[1], at, &key);
    if (st != EE_OK)
        return st;
    if (!v_truthy(obj)) {
        *out = obj;
        return EE_OK;
    }
    char num[48];
    const char *s = NULL;
    size_t n = 0;
    if (key.k == V_STR) {
        s = key.s;
        n = key.n;
    } else if (key.k == V_INT) {
        n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, key.i);
        s = num;
    } else if (key.k == V_JSON && json_is_string(key.j)) {
        s = json_string_value(key.j);
        n = json_string_length(key.j);
    } else if (key.k == V_JSON && json_is_integer(key.j)) {
        n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(key.j));
        s = num;
    }
    rs->work++;
    *out = s != NULL ? member(obj, s, n) : (val){.k = V_UNDEF};
    return EE_OK;
}

/* The value of a mustache or subexpression: a helper's result, or a path. */
static ee_status call_value(render_state *rs, const call *c, size_t at, val *out)
{
    helper h = helper_of(&c->head);
    if (h == H_LOOKUP)
        return helper_lookup(rs, c, at, out);
    if (h == H_LOG) {
        *out = (val){.k = V_UNDEF};
        return EE_OK;
    }
    if (h != H_NONE)
        return ee__error(EE_EPARSE, "template: {{%.*s}} at byte %zu is a block helper: use {{#%.*s}}",
                         (int)c->head.orig_n, c->head.orig, at, (int)c->head.orig_n, c->head.orig);
    if (c->np > 0 || c->nh > 0 || c->head.kind == X_SUB)
        return missing_helper(c, at);
    return eval(rs, &c->head, at, out);
}

static ee_status render_list(render_state *rs, const nodelist *l);

/* A block's program with context `ctx` (pushed when it differs from the
 * current one, as handlebars.js does for ../) and data frame `d`. */
static ee_status run(render_state *rs, const nodelist *l, val ctx, const dframe *d)
{
    if (l->n == 0)
        return EE_OK;
    bool push = !v_same(ctx, rs->ctx[rs->n - 1]);
    if (push)
        rs->ctx[rs->n++] = ctx;
    const dframe *saved = rs->data;
    rs->data = d;
    ee_status st = render_list(rs, l);
    rs->data = saved;
    if (push)
        rs->n--;
    return st;
}

/* run() with the block's parameters (if it declares any) bound to a, b. */
static ee_status run_bp(render_state *rs, const node *nd, const nodelist *l, val ctx, val a, val b,
                        const dframe *d)
{
    if (nd->c.nbp == 0 || l->n == 0)
        return run(rs, l, ctx, d);
    if (rs->nbps == (int)(sizeof rs->bps / sizeof rs->bps[0]))
        return ee__error(EE_ETOOBIG, "template: blocks nested deeper than %d", EE__TEMPLATE_MAX_DEPTH);
    rs->bps[rs->nbps].c = &nd->c;
    rs->bps[rs->nbps].v[0] = a;
    rs->bps[rs->nbps].v[1] = b;
    rs->nbps++;
    ee_status st = run(rs, l, ctx, d);
    rs->nbps--;
    return st;
}

static ee_status each(render_state *rs, const node *nd, val v)
{
    dframe d = {.parent = rs->data, .iter = true};
    size_t count = 0;
    if (v.k == V_JSON && json_is_array(v.j)) {
        count = json_array_size(v.j);
        for (size_t i = 0; i < count; i++) {
            d.index = (json_int_t)i;
            d.key = (val){.k = V_INT, .i = (json_int_t)i};
            d.first = i == 0;
            d.last = i + 1 == count;
            ee_status st = charge(rs, 1);
            if (st == EE_OK)
                st = run_bp(rs, nd, &nd->prog, v_json(json_array_get(v.j, i)),
                            v_json(json_array_get(v.j, i)), d.key, &d);
            if (st != EE_OK)
                return st;
        }
    } else if (v.k == V_JSON && json_is_object(v.j)) {
        count = json_object_size(v.j);
        size_t i = 0;
        const char *key;
        size_t klen;
        json_t *item;
        json_object_keylen_foreach((json_t *)v.j, key, klen, item) {
            d.index = (json_int_t)i;
            d.key = (val){.k = V_STR, .s = key, .n = klen};
            d.first = i == 0;
            d.last = i + 1 == count;
            i++;
            ee_status st = charge(rs, 1);
            if (st == EE_OK)
                st = run_bp(rs, nd, &nd->prog, v_json(item), v_json(item), d.key, &d);
            if (st != EE_OK)
                return st;
        }
    }
    return count == 0 ? run(rs, &nd->inv, rs->ctx[rs->n - 1], rs->data) : EE_OK;
}

static bool hash_true(render_state *rs, const call *c, const char *key, size_t at)
{
    for (size_t i = 0; i < c->nh; i++) {
        if (c->hkeys[i].n == strlen(key) && memcmp(c->hkeys[i].s, key, c->hkeys[i].n) == 0) {
            val v;
            return eval(rs, &c->hvals[i], at, &v) == EE_OK && v_truthy(v);
        }
    }
    return false;
}

static ee_status render_block(render_state *rs, const node *nd)
{
    const call *c = &nd->c;
    helper h = helper_of(&c->head);
    val here = rs->ctx[rs->n - 1];
    val v;
    ee_status st;
    switch (h) {
    case H_IF:
    case H_UNLESS: {
        if (c->np != 1)
            return ee__error(EE_EPARSE, "template: #%s at byte %zu needs exactly one argument",
                             h == H_IF ? "if" : "unless", nd->at);
        if ((st = eval(rs, &c->params[0], nd->at, &v)) != EE_OK)
            return st;
        bool yes = !((!hash_true(rs, c, "includeZero", nd->at) && !v_truthy(v)) || v_empty(v));
        if (h == H_UNLESS)
            yes = !yes;
        return run(rs, yes ? &nd->prog : &nd->inv, here, rs->data);
    }
    case H_WITH:
        if (c->np != 1)
            return ee__error(EE_EPARSE, "template: #with at byte %zu needs exactly one argument",
                             nd->at);
        if ((st = eval(rs, &c->params[0], nd->at, &v)) != EE_OK)
            return st;
        return v_empty(v) ? run(rs, &nd->inv, here, rs->data)
                          : run_bp(rs, nd, &nd->prog, v, v, (val){.k = V_UNDEF}, rs->data);
    case H_EACH:
        if (c->np != 1)
            return ee__error(EE_EPARSE, "template: #each at byte %zu needs exactly one argument",
                             nd->at);
        if ((st = eval(rs, &c->params[0], nd->at, &v)) != EE_OK)
            return st;
        return each(rs, nd, v);
    case H_LOOKUP:
    case H_LOG:
    case H_NONE:
        if ((st = call_value(rs, c, nd->at, &v)) != EE_OK)
            return st;
        break;
    }
    /* handlebars' blockHelperMissing over a plain value */
    if (v.k == V_BOOL ? v.b : v.k == V_JSON && json_is_true(v.j))
        return run(rs, &nd->prog, here, rs->data);
    if (v_nullish(v) || (v.k == V_BOOL && !v.b) || (v.k == V_JSON && json_is_false(v.j)))
        return run(rs, &nd->inv, here, rs->data);
    if (v.k == V_JSON && json_is_array(v.j))
        return each(rs, nd, v);
    return run(rs, &nd->prog, v, rs->data);
}

/* Put `ind` before each line of the output written since `from`, as
 * handlebars.js indents a standalone partial's result. */
static ee_status indent_since(render_state *rs, size_t from, const char *ind, size_t ilen)
{
    size_t lines = 0;
    for (size_t i = from; i < rs->len; i++)
        if ((i == from || rs->buf[i - 1] == '\n'))
            lines++;
    if (lines == 0 || ilen == 0)
        return EE_OK;
    ee_status cst = charge(rs, lines + (rs->len - from) / 64);
    if (cst != EE_OK)
        return cst;
    size_t add = lines * ilen, old = rs->len;
    ee_status st = reserve(rs, add);
    if (st != EE_OK)
        return st;
    /* move right to left */
    size_t w = old + add;
    rs->buf[w] = '\0';
    for (size_t i = old; i-- > from;) {
        rs->buf[--w] = rs->buf[i];
        if (i == from || rs->buf[i - 1] == '\n') {
            w -= ilen;
            memcpy(rs->buf + w, ind, ilen);
        }
    }
    rs->len = old + add;
    return EE_OK;
}

static ee_status render_partial(render_state *rs, const node *nd)
{
    const call *c = &nd->c;
    const char *name;
    size_t nlen;
    val dyn;
    if (c->head.kind == X_SUB) {
        ee_status st = call_value(rs, c->head.sub, nd->at, &dyn);
        if (st != EE_OK)
            return st;
        if (dyn.k == V_JSON && json_is_string(dyn.j)) {
            name = json_string_value(dyn.j);
            nlen = json_string_length(dyn.j);
        } else if (dyn.k == V_STR) {
            name = dyn.s;
            nlen = dyn.n;
        } else {
            name = "";
            nlen = 0;
        }
    } else if (c->head.kind == X_PATH && c->head.str != NULL) { /* {{> "a name"}} */
        name = c->head.str;
        nlen = c->head.str_n;
    } else if (c->head.kind == X_PATH) {
        name = c->head.orig;
        nlen = c->head.orig_n;
    } else {
        return ee__error(EE_EPARSE, "template: bad partial name at byte %zu", nd->at);
    }
    const json_t *p = rs->partials ? json_object_getn(rs->partials, name, nlen) : NULL;
    if (!json_is_string(p))
        return ee__error(EE_ENOTFOUND, "template: the partial \"%.*s\" (byte %zu) could not be found",
                         (int)(nlen > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : nlen), name, nd->at);
    if (c->np > 1)
        return ee__error(EE_EPARSE, "template: a partial at byte %zu takes one context", nd->at);
    size_t len = json_string_length(p);
    if (len > EE__TEMPLATE_MAX_TEMPLATE)
        return ee__error(EE_ETOOBIG, "partial of %zu bytes exceeds %d", len, EE__TEMPLATE_MAX_TEMPLATE);
    ee_status st = charge(rs, 1 + len / EE__TEMPLATE_BYTES_PER_UNIT);
    if (st != EE_OK)
        return st;
    val ctx = rs->ctx[rs->n - 1];
    if (c->np == 1 && (st = eval(rs, &c->params[0], nd->at, &ctx)) != EE_OK)
        return st;
    if (c->nh > 0) {
        /* the context's members, then the hash's */
        json_t *merged = json_object();
        if (merged == NULL || json_array_append_new(rs->scratch, merged) != 0)
            return ee__error(EE_ENOMEM, "out of memory rendering a partial");
        if (ctx.k == V_JSON && json_is_object(ctx.j) &&
            ((st = charge(rs, json_object_size(ctx.j))) != EE_OK ||
             json_object_update(merged, (json_t *)ctx.j) != 0))
            return st != EE_OK ? st : ee__error(EE_ENOMEM, "out of memory rendering a partial");
        for (size_t i = 0; i < c->nh; i++) {
            val hv;
            if ((st = eval(rs, &c->hvals[i], nd->at, &hv)) != EE_OK)
                return st;
            json_t *j = hv.k == V_JSON ? json_incref((json_t *)hv.j)
                      : hv.k == V_INT ? json_integer(hv.i)
                      : hv.k == V_BOOL ? json_boolean(hv.b)
                      : hv.k == V_STR ? json_stringn_nocheck(hv.s, hv.n) : NULL;
            if (hv.k == V_UNDEF)
                continue;
            if (j == NULL ||
                json_object_setn_new_nocheck(merged, c->hkeys[i].s, c->hkeys[i].n, j) != 0)
                return ee__error(EE_ENOMEM, "out of memory rendering a partial");
        }
        ctx = v_json(merged);
    }
    nodelist root = {0};
    st = parse(json_string_value(p), len, &root);
    if (st == EE_OK && root.n > 0) {
        if (rs->depth == EE__TEMPLATE_MAX_DEPTH) {
            st = ee__error(EE_ETOOBIG, "template: blocks and partials nested deeper than %d",
                           EE__TEMPLATE_MAX_DEPTH);
        } else {
            int saved_base = rs->base, saved_bp_base = rs->bp_base;
            size_t from = rs->len;
            rs->base = rs->n;
            rs->bp_base = rs->nbps;
            rs->ctx[rs->n++] = ctx;
            st = render_list(rs, &root);
            rs->n--;
            rs->base = saved_base;
            rs->bp_base = saved_bp_base;
            if (st == EE_OK)
                st = indent_since(rs, from, nd->indent, nd->indent_len);
        }
    }
    list_free(&root);
    return st;
}

static ee_status render_node(render_state *rs, const node *nd)
{
    ee_status st = charge(rs, 1);
    if (st != EE_OK)
        return st;
    val v;
    switch (nd->kind) {
    case N_TEXT: return emit(rs, nd->s, nd->len);
    case N_ESC:
    case N_RAW:
        if ((st = call_value(rs, &nd->c, nd->at, &v)) != EE_OK)
            return st;
        return emit_val(rs, v, nd->kind == N_ESC);
    case N_BLOCK: return render_block(rs, nd);
    case N_PARTIAL: return render_partial(rs, nd);
    }
    return EE_OK;
}

static ee_status render_list(render_state *rs, const nodelist *l)
{
    if (rs->depth == EE__TEMPLATE_MAX_DEPTH)
        return ee__error(EE_ETOOBIG, "template: blocks and partials nested deeper than %d",
                         EE__TEMPLATE_MAX_DEPTH);
    rs->depth++;
    ee_status st = EE_OK;
    for (size_t i = 0; st == EE_OK && i < l->n; i++)
        st = render_node(rs, &l->v[i]);
    rs->depth--;
    return st;
}

ee_status ee__template_render(const char *tmpl, size_t tlen, const json_t *data,
                              const json_t *partials, char **out, size_t *out_len)
{
    if (out != NULL)
        *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (tmpl == NULL || out == NULL)
        return ee__error(EE_EINVAL, "template: NULL template or out");
    if (tlen > EE__TEMPLATE_MAX_TEMPLATE)
        return ee__error(EE_ETOOBIG, "template of %zu bytes exceeds %d", tlen,
                         EE__TEMPLATE_MAX_TEMPLATE);
    nodelist root = {0};
    render_state rs = {.partials = json_is_object(partials) ? partials : NULL,
                       .root = v_json(data),
                       .scratch = json_array()};
    rs.ctx[rs.n++] = v_json(data);
    ee_status st = rs.scratch ? parse(tmpl, tlen, &root)
                              : ee__error(EE_ENOMEM, "out of memory rendering a template");
    if (st == EE_OK)
        st = emit(&rs, "", 0);
    if (st == EE_OK)
        st = render_list(&rs, &root);
    list_free(&root);
    json_decref(rs.scratch);
    if (st != EE_OK) {
        free(rs.buf);
        return st;
    }
    *out = rs.buf;
    if (out_len != NULL)
        *out_len = rs.len;
    return EE_OK;
}
