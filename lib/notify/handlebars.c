/* Handlebars rendering (handlebars.h). The template is lexed by the rules
 * of handlebars.js 4.7's lexer, parsed by its grammar and put through its
 * whitespace-control pass (standalone lines, ~), so the same text is split,
 * stripped and refused at the same places; then the tree is rendered. */
#include "notify/handlebars.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define NAME_MAX_SHOWN 64

/* Out of the hot path: error paths and what typical templates never reach,
 * so that rendering's own code stays small (instruction cache). */
#if defined(__GNUC__)
#define COLD __attribute__((cold, noinline))
#define NOINLINE __attribute__((noinline))
#else
#define COLD
#define NOINLINE
#endif

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
    int up;      /* ../ count */
    bool data;   /* @name */
    bool scoped; /* handlebars' scopedId (starts with '.' or holds "this"): never a
                    helper nor a block parameter */
    seg *segs;
    size_t nseg;
    seg orig;    /* handlebars' `original`; for a literal, its String() */
    unsigned char helper; /* the built-in helper a simple name names (1 if, 2 unless,
                             3 each, 4 with, 5 lookup, 6 log), else 0 */
    char lit_class; /* literals' `original` compares by type: 's'tring, 'n'umber,
                       'b'oolean, 'u'ndefined, 'z' null, 0 for a path */
    json_t *lit; /* X_LIT: number, true, false, null */
    seg str;     /* X_STR */
    call *sub;   /* X_SUB */
} expr;

struct call {
    expr head;
    expr *params;
    size_t np;
    seg *hkeys;
    expr *hvals;
    size_t nh;
    seg *bp; /* block parameters: {{#each l as |item i|}} */
    size_t nbp;
};

typedef enum { N_TEXT, N_COMMENT, N_ESC, N_RAW, N_BLOCK, N_PARTIAL, N_PBLOCK, N_INLINE } node_kind;

typedef struct node node;

typedef struct {
    node *v;
    size_t n, cap;
    bool chained;    /* an inverse made of one {{else helper ...}} block */
    bool has_inline; /* holds {{#*inline}} definitions */
    size_t bad_deco; /* 1 + the offset of a decorator other than inline, or 0: handlebars.js
                        fails where it would run (when the program is made) */
} nodelist;

typedef struct {
    bool open, close;
} strip;

struct node {
    node_kind kind;
    size_t at; /* byte offset of the tag, for messages */
    /* N_TEXT: the text as lexed, and what whitespace control left of it */
    const char *orig;
    size_t orig_n;
    const char *s;
    size_t len;
    bool lstripped, rstripped;
    strip st, inv_st, close_st; /* a tag's ~ flags; a block's open, else, close */
    call c;                     /* mustaches, blocks, partials (head is the name) */
    nodelist prog, inv;
    bool has_prog, has_inv;
    bool inverted; /* {{^name}}: the block parameters are the inverse's */
    const char *indent; /* standalone partial */
    size_t indent_len;
};

/* What the tree owns besides its nodes (unescaped literals, [segments],
 * paths' segment arrays and built originals), in chunks freed together. */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(16) char b[];
} chunk;

typedef struct {
    nodelist root;
    chunk *strings;
} tree;

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
    free(c->bp);
}

static void expr_free(expr *e)
{
    json_decref(e->lit);
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

static void tree_free(tree *t)
{
    list_free(&t->root);
    while (t->strings != NULL) {
        chunk *next = t->strings->next;
        free(t->strings);
        t->strings = next;
    }
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

/* ---- characters as JavaScript's regular expressions see them ------------------ */

/* The length of the JavaScript \s character at t[p] (0 if none): ASCII
 * blanks and the Unicode spaces, in UTF-8. */
static size_t js_space(const char *t, size_t len, size_t p)
{
    unsigned char c = (unsigned char)t[p];
    if (c == ' ' || (c >= '\t' && c <= '\r'))
        return 1;
    if (c < 0xC2)
        return 0;
    unsigned char c1 = p + 1 < len ? (unsigned char)t[p + 1] : 0;
    unsigned char c2 = p + 2 < len ? (unsigned char)t[p + 2] : 0;
    if (c == 0xC2)
        return c1 == 0xA0 ? 2 : 0; /* U+00A0 */
    if (c == 0xE1)
        return c1 == 0x9A && c2 == 0x80 ? 3 : 0; /* U+1680 */
    if (c == 0xE2) {
        if (c1 == 0x80 && ((c2 >= 0x80 && c2 <= 0x8A) || c2 == 0xA8 || c2 == 0xA9 || c2 == 0xAF))
            return 3; /* U+2000-200A, U+2028, U+2029, U+202F */
        return c1 == 0x81 && c2 == 0x9F ? 3 : 0; /* U+205F */
    }
    if (c == 0xE3)
        return c1 == 0x80 && c2 == 0x80 ? 3 : 0; /* U+3000 */
    if (c == 0xEF)
        return c1 == 0xBB && c2 == 0xBF ? 3 : 0; /* U+FEFF */
    return 0;
}

/* The start of the run of \s that ends t[0, n). */
static size_t ws_tail(const char *t, size_t n)
{
    size_t last = 0; /* end of the last character that is not \s */
    for (size_t p = 0; p < n;) {
        size_t k = js_space(t, n, p);
        if (k == 0) {
            p++;
            last = p;
        } else {
            p += k;
        }
    }
    return last;
}

/* The end of the run of \s that starts t[0, n). */
static size_t ws_head(const char *t, size_t n)
{
    size_t p = 0, k;
    while (p < n && (k = js_space(t, n, p)) > 0)
        p += k;
    return p;
}

static bool js_word(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* A character of handlebars' ID token: not \s, not one of these. */
static bool id_char(const char *t, size_t len, size_t p)
{
    /* ASCII: not a blank, not one of !"#%&'()*+,./;<=>@[\]^`{|}~ */
    static const unsigned char no[128] = {
        ['\t'] = 1, ['\n'] = 1, ['\v'] = 1, ['\f'] = 1, ['\r'] = 1, [' '] = 1, ['!'] = 1,
        ['"'] = 1,  ['#'] = 1,  ['%'] = 1,  ['&'] = 1,  ['\''] = 1, ['('] = 1, [')'] = 1,
        ['*'] = 1,  ['+'] = 1,  [','] = 1,  ['.'] = 1,  ['/'] = 1,  [';'] = 1, ['<'] = 1,
        ['='] = 1,  ['>'] = 1,  ['@'] = 1,  ['['] = 1,  ['\\'] = 1, [']'] = 1, ['^'] = 1,
        ['`'] = 1,  ['{'] = 1,  ['|'] = 1,  ['}'] = 1,  ['~'] = 1};
    unsigned char c = (unsigned char)t[p];
    if (c < 0x80)
        return !no[c];
    return js_space(t, len, p) == 0;
}

/* What may follow an ID: [=~}\s/.)|]; or the end of a tag's text when a
 * tag under changed delimiters is lexed (`end_ok`: len is then its end). */
static bool after_id(const char *t, size_t len, size_t p, bool end_ok)
{
    if (p >= len)
        return end_ok;
    if (t[p] != 0 && strchr("=~}/.)|", t[p]) != NULL)
        return true;
    return js_space(t, len, p) > 0;
}

/* What may follow a literal: [~}\s)]; or, as above, the end of a tag. */
static bool after_lit(const char *t, size_t len, size_t p, bool end_ok)
{
    if (p >= len)
        return end_ok;
    if (t[p] != 0 && strchr("~})", t[p]) != NULL)
        return true;
    return js_space(t, len, p) > 0;
}

#define STARTS(t, len, p, lit) \
    ((p) + sizeof(lit) - 1 <= (len) && memcmp((t) + (p), (lit), sizeof(lit) - 1) == 0)

static bool starts(const char *t, size_t len, size_t p, const char *w)
{
    size_t n = strlen(w);
    return p + n <= len && memcmp(t + p, w, n) == 0;
}

/* Find needle[0, n) in t[from, len); len if it is not there. */
static size_t findn(const char *t, size_t len, size_t from, const char *needle, size_t n)
{
    while (from + n <= len) {
        const char *hit = memchr(t + from, needle[0], len - from - n + 1);
        if (hit == NULL)
            break;
        size_t i = (size_t)(hit - t);
        if (memcmp(hit, needle, n) == 0)
            return i;
        from = i + 1;
    }
    return len;
}

static size_t find(const char *t, size_t len, size_t from, const char *needle)
{
    return findn(t, len, from, needle, strlen(needle));
}

/* ---- lexing: the rules of handlebars.js's lexer, in its order ------------------- */

typedef enum {
    T_EOF, T_CONTENT, T_COMMENT, T_OPEN_SEXPR, T_CLOSE_SEXPR, T_OPEN_RAW, T_CLOSE_RAW,
    T_END_RAW, T_OPEN_PARTIAL, T_OPEN_PBLOCK, T_OPEN_BLOCK, T_OPEN_END, T_INVERSE,
    T_OPEN_INVERSE, T_OPEN_CHAIN, T_OPEN_UNESC, T_OPEN, T_EQUALS, T_ID, T_SEP, T_CLOSE_UNESC,
    T_CLOSE, T_STRING, T_DATA, T_BOOL, T_UNDEF, T_NULL, T_NUMBER, T_OPEN_BP, T_CLOSE_BP,
    T_INVALID
} tok_kind;

typedef struct {
    tok_kind k;
    size_t at, end; /* the token's bytes */
    const char *s;  /* its text: content, an ID, a string's value, a raw block's name */
    size_t n;
    bool deco;      /* {{* or {{#* */
    bool unescaped; /* {{& */
    bool bracket;   /* an ID written [..] */
    bool custom;    /* a tag's edge under changed delimiters (never a ~) */
} token;

typedef struct {
    const char *t;
    size_t len, pos;
    enum { S_INIT, S_MU, S_EMU } st;
    size_t raw; /* nesting of raw blocks: the lexer's raw state when > 0 */
    chunk **strings;
    /* mustache's Set Delimiter ({{=<% %>=}}): when `custom`, tags are
     * open..close (pointers into the template) and only mustache's forms;
     * in_tag while a tag's text, t[.., tag_end), is lexed */
    bool custom, in_tag;
    const char *open, *close;
    size_t olen, clen, tag_end;
    size_t opened; /* 1 + where the last {{ was found (a {{= there sets delimiters) */
} lexer;

COLD static ee_status lex_error(size_t at)
{
    return ee__error(EE_EPARSE, "template: unrecognised text at byte %zu", at);
}

COLD static ee_status delim_error(size_t at, const char *what)
{
    return ee__error(EE_EPARSE, "template: %s (tag at byte %zu)", what, at);
}

/* The Set Delimiter tag whose open delimiter starts at `at`, its '=' at q:
 * "=" \s* open \s+ close \s* "=" close-delimiter. Sets the delimiters and
 * returns the tag as a comment (standalone-capable, renders nothing). */
static ee_status set_delimiters(lexer *L, token *tk, size_t at, size_t q)
{
    const char *t = L->t;
    size_t len = L->len;
    size_t e = q + 1; /* the '=' that the current close delimiter follows */
    for (;;) {
        e = findn(t, len, e, L->close, L->clen);
        if (e == len)
            return delim_error(at, "set-delimiter tag is never closed (expected '=' and the close "
                                   "delimiter)");
        if (e > q + 1 && t[e - 1] == '=')
            break;
        e++;
    }
    e--;
    size_t w[2][2], p = q + 1, k;
    for (int i = 0; i < 2; i++) {
        while (p < e && (k = js_space(t, len, p)) > 0)
            p += k;
        w[i][0] = p;
        while (p < e && js_space(t, len, p) == 0) {
            if (t[p] == '=')
                return delim_error(at, "a delimiter may not contain '='");
            if (t[p] == '\0')
                return delim_error(at, "a delimiter may not contain a NUL byte");
            p++;
        }
        w[i][1] = p;
        if (w[i][1] == w[i][0])
            return delim_error(at, "set-delimiter tag needs two delimiters, {{=open close=}}");
        if (i == 0 && p == e)
            return delim_error(at, "set-delimiter tag needs two delimiters, {{=open close=}}");
    }
    while (p < e && (k = js_space(t, len, p)) > 0)
        p += k;
    if (p != e)
        return delim_error(at, "set-delimiter tag has more than two delimiters (no whitespace "
                               "inside a delimiter)");
    size_t end = e + 1 + L->clen;
    L->open = t + w[0][0], L->olen = w[0][1] - w[0][0];
    L->close = t + w[1][0], L->clen = w[1][1] - w[1][0];
    L->custom = !(L->olen == 2 && memcmp(L->open, "{{", 2) == 0 && L->clen == 2 &&
                  memcmp(L->close, "}}", 2) == 0);
    *tk = (token){.k = T_COMMENT, .at = at, .end = end, .custom = true};
    L->pos = end;
    L->st = S_INIT;
    return EE_OK;
}

/* The open delimiter of a tag under changed delimiters, at p: mustache's
 * tags ({{!c}}, {{=a b=}}, {{#s}}, {{^s}}, {{/s}}, {{>p}}, {{&x}}, {{x}}),
 * their text lexed as handlebars' up to the first close delimiter. The
 * Handlebars-only forms that depend on {{ }} are refused. */
static ee_status lex_custom_open(lexer *L, token *tk, size_t p)
{
    const char *t = L->t;
    size_t len = L->len;
    size_t q = p + L->olen;
    if (q < len && t[q] == '=')
        return set_delimiters(L, tk, p, q);
    size_t c = findn(t, len, q, L->close, L->clen);
    if (c == len)
        return ee__error(EE_EPARSE, "template: tag at byte %zu is never closed", p);
    size_t end = c + L->clen;
    *tk = (token){.k = T_OPEN, .at = p, .end = q, .custom = true};
    if (q < c && t[q] == '!') {
        tk->k = T_COMMENT, tk->end = end;
        L->pos = end;
        L->st = S_INIT;
        return EE_OK;
    }
    if (q < c && (t[q] == '{' || t[q] == '~' || t[q] == '*' || t[c - 1] == '~'))
        return delim_error(p, t[q] == '{' ? "under changed delimiters, write {{&x}} (open & x close) "
                                            "for unescaped output, not {{{x}}}"
                              : t[q] == '*' ? "decorators need the default {{ }} delimiters"
                                            : "whitespace control (~) needs the default {{ }} "
                                              "delimiters");
    if (q + 1 < c && t[q] == '#' && (t[q + 1] == '>' || t[q + 1] == '*'))
        return delim_error(p, t[q + 1] == '>' ? "partial blocks need the default {{ }} delimiters"
                                              : "decorators need the default {{ }} delimiters");
    size_t r = q + (q < c && t[q] == '^'), k;
    while (r < c && (k = js_space(t, c, r)) > 0)
        r += k;
    if ((q < c && t[q] == '^' && r == c) ||
        (q < c && t[q] != '^' && STARTS(t, c, r, "else") && (r + 4 == c || !js_word(t[r + 4]))))
        return delim_error(p, "{{else}} and {{^}} need the default {{ }} delimiters (under "
                              "changed ones, close the section and open an inverted one)");
    if (q < c) {
        switch (t[q]) {
        case '#': tk->k = T_OPEN_BLOCK, tk->end = q + 1; break;
        case '^': tk->k = T_OPEN_INVERSE, tk->end = q + 1; break;
        case '/': tk->k = T_OPEN_END, tk->end = q + 1; break;
        case '>': tk->k = T_OPEN_PARTIAL, tk->end = q + 1; break;
        case '&':
            tk->unescaped = true, tk->end = q + 1;
            break;
        default: break;
        }
    }
    L->pos = tk->end;
    L->st = S_MU;
    L->in_tag = true;
    L->tag_end = c;
    return EE_OK;
}

static char *keep(chunk **strings, size_t n)
{
    size_t need = (n + 16) & ~(size_t)15;
    chunk *c = *strings;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = need > 2048 ? need : 2048;
        if ((c = malloc(sizeof *c + cap)) == NULL)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = *strings;
        *strings = c;
    }
    char *p = c->b + c->used;
    c->used += need;
    return p;
}

/* A quoted string or a [segment]: `close` ends it unless escaped by a
 * backslash; when no bare `close` follows, the regular expression backs off
 * to the last escaped one. Returns the end (past the closer) or 0. */
static size_t quoted_end(const char *t, size_t len, size_t p, char close)
{
    size_t last_escaped = 0;
    for (size_t i = p + 1; i < len;) {
        if (t[i] == '\\' && i + 1 < len && t[i + 1] == close) {
            last_escaped = i + 1;
            i += 2;
        } else if (t[i] == close) {
            return i + 1;
        } else {
            i++;
        }
    }
    return last_escaped ? last_escaped + 1 : 0;
}

static ee_status lex_next(lexer *L, token *tk)
{
    const char *t = L->t;
    size_t len = L->len;
again:;
    size_t p = L->pos;
    *tk = (token){.k = T_EOF, .at = p, .end = p};
    if (L->raw > 0) {
        if (p >= len)
            return EE_OK; /* EOF: the parser reports the unclosed block */
        if (STARTS(t, len, p, "{{{{") && p + 4 < len && t[p + 4] != '/') {
            L->raw++;
            *tk = (token){.k = T_CONTENT, .at = p, .end = p + 4, .s = t + p, .n = 4};
            L->pos = p + 4;
            return EE_OK;
        }
        if (STARTS(t, len, p, "{{{{/")) {
            size_t q = p + 5;
            while (q < len && id_char(t, len, q))
                q++;
            if (q > p + 5 && STARTS(t, len, q, "}}}}")) {
                L->raw--;
                L->pos = q + 4;
                *tk = (token){.k = L->raw > 0 ? T_CONTENT : T_END_RAW, .at = p, .end = q + 4,
                              .s = L->raw > 0 ? t + p : t + p + 5,
                              .n = L->raw > 0 ? q + 4 - p : q - p - 5};
                return EE_OK;
            }
        }
        size_t q = find(t, len, p + 1, "{{{{");
        if (q == len)
            return ee__error(EE_EPARSE, "template: a raw block is never closed (byte %zu)", p);
        if (memchr(t + p, 0, q - p) != NULL)
            return lex_error(p);
        *tk = (token){.k = T_CONTENT, .at = p, .end = q, .s = t + p, .n = q - p};
        L->pos = q;
        return EE_OK;
    }
    if (L->st == S_INIT) {
        if (p >= len)
            return EE_OK;
        size_t o = L->custom ? findn(t, len, p, L->open, L->olen) : find(t, len, p, "{{");
        const char *nul = memchr(t + p, 0, o - p);
        if (nul != NULL) {
            size_t z = (size_t)(nul - t);
            if (z == p)
                return lex_error(p);
            *tk = (token){.k = T_CONTENT, .at = p, .end = z, .s = t + p, .n = z - p};
            L->pos = z;
            return EE_OK;
        }
        if (o == len) {
            *tk = (token){.k = T_CONTENT, .at = p, .end = len, .s = t + p, .n = len - p};
            L->pos = len;
            return EE_OK;
        }
        size_t e = o;
        if (L->custom) {
            L->st = S_MU; /* no \{{ escapes under changed delimiters */
        } else if (o - p >= 2 && t[o - 1] == '\\' && t[o - 2] == '\\') {
            e = o - 1; /* \\{{x}}: one backslash, then the tag */
            L->st = S_MU;
        } else if (o - p >= 1 && t[o - 1] == '\\') {
            e = o - 1; /* \{{x}}: the braces are text */
            L->st = S_EMU;
        } else {
            L->st = S_MU;
        }
        L->pos = o;
        L->opened = o + 1;
        if (e == p)
            goto again;
        *tk = (token){.k = T_CONTENT, .at = p, .end = o, .s = t + p, .n = e - p};
        return EE_OK;
    }
    if (L->st == S_EMU) {
        size_t q = p + 2;
        while (q < len && !STARTS(t, len, q, "{{") && !STARTS(t, len, q, "\\{{") &&
               !STARTS(t, len, q, "\\\\{{"))
            q++;
        if (q > len || memchr(t + p, 0, (q > len ? len : q) - p) != NULL)
            return lex_error(p);
        *tk = (token){.k = T_CONTENT, .at = p, .end = q, .s = t + p, .n = q - p};
        L->pos = q;
        L->st = S_INIT;
        return EE_OK;
    }
    /* inside a tag */
    if (L->custom && !L->in_tag)
        return lex_custom_open(L, tk, p);
    bool in_tag = L->in_tag;
    if (in_tag)
        len = L->tag_end; /* the tag's text, up to its close delimiter */
    size_t k;
    while (p < len && (k = js_space(t, len, p)) > 0)
        p += k;
    L->pos = p;
    tk->at = tk->end = p;
    if (in_tag && p >= len) {
        *tk = (token){.k = T_CLOSE, .at = p, .end = p + L->clen, .custom = true};
        L->pos = p + L->clen;
        L->st = S_INIT;
        L->in_tag = false;
        return EE_OK;
    }
    if (p >= len)
        return EE_OK;
    tok_kind kind = T_INVALID;
    size_t end = p + 1;
    char c = t[p];
    if (!in_tag && p + 1 == L->opened && STARTS(t, len, p, "{{=")) {
        L->close = "}}", L->clen = 2;
        return set_delimiters(L, tk, p, p + 2);
    } else if (c == '(') {
        kind = T_OPEN_SEXPR;
    } else if (c == ')') {
        kind = T_CLOSE_SEXPR;
    } else if (!in_tag && STARTS(t, len, p, "{{{{")) {
        kind = T_OPEN_RAW, end = p + 4;
    } else if (!in_tag && STARTS(t, len, p, "}}}}")) {
        kind = T_CLOSE_RAW, end = p + 4;
        L->st = S_INIT;
        L->raw = 1;
    } else if (!in_tag && STARTS(t, len, p, "{{")) {
        size_t q = p + 2;
        if (q < len && t[q] == '~')
            q++;
        size_t r = q;
        while (r < len && (k = js_space(t, len, r)) > 0)
            r += k;
        bool at_else = STARTS(t, len, r, "else");
        size_t r2 = r + 4;
        if (at_else)
            while (r2 < len && (k = js_space(t, len, r2)) > 0)
                r2 += k;
        if (at_else && r2 < len && t[r2] == '~')
            r2++;
        size_t hat = q + 1;
        while (hat < len && (k = js_space(t, len, hat)) > 0)
            hat += k;
        if (hat < len && t[hat] == '~')
            hat++;
        if (q < len && t[q] == '>') {
            kind = T_OPEN_PARTIAL, end = q + 1;
        } else if (STARTS(t, len, q, "#>")) {
            kind = T_OPEN_PBLOCK, end = q + 2;
        } else if (q < len && t[q] == '#') {
            kind = T_OPEN_BLOCK, end = q + 1;
            if (end < len && t[end] == '*')
                tk->deco = true, end++;
        } else if (q < len && t[q] == '/') {
            kind = T_OPEN_END, end = q + 1;
        } else if (q < len && t[q] == '^' && STARTS(t, len, hat, "}}")) {
            kind = T_INVERSE, end = hat + 2;
            L->st = S_INIT;
        } else if (at_else && STARTS(t, len, r2, "}}")) {
            kind = T_INVERSE, end = r2 + 2;
            L->st = S_INIT;
        } else if (q < len && t[q] == '^') {
            kind = T_OPEN_INVERSE, end = q + 1;
        } else if (at_else && (r + 4 >= len || !js_word(t[r + 4]))) {
            kind = T_OPEN_CHAIN, end = r + 4;
        } else if (q < len && t[q] == '{') {
            kind = T_OPEN_UNESC, end = q + 1;
        } else if (q < len && t[q] == '&') {
            kind = T_OPEN, end = q + 1;
            tk->unescaped = true;
        } else if (STARTS(t, len, q, "!--")) {
            /* up to the first "--}}" or "--~}}", from the tag's start */
            size_t i = p;
            for (; (i = find(t, len, i, "--")) < len; i++)
                if (STARTS(t, len, i + 2, "}}") || STARTS(t, len, i + 2, "~}}"))
                    break;
            if (i >= len)
                return ee__error(EE_EPARSE, "template: comment at byte %zu is never closed", p);
            kind = T_COMMENT, end = i + (t[i + 2] == '~' ? 5 : 4);
            L->st = S_INIT;
        } else if (q < len && t[q] == '!' && find(t, len, q, "}}") < len) {
            kind = T_COMMENT, end = find(t, len, q, "}}") + 2;
            L->st = S_INIT;
        } else {
            kind = T_OPEN, end = q;
            if (end < len && t[end] == '*')
                tk->deco = true, end++;
        }
    } else if (c == '=') {
        kind = T_EQUALS;
    } else if (STARTS(t, len, p, "..")) {
        kind = T_ID, end = p + 2;
    } else if (c == '.' && after_id(t, len, p + 1, in_tag)) {
        kind = T_ID;
    } else if (c == '.' || c == '/') {
        kind = T_SEP;
    } else if (!in_tag && (STARTS(t, len, p, "}}}") || STARTS(t, len, p, "}~}}"))) {
        kind = T_CLOSE_UNESC, end = p + (t[p + 1] == '~' ? 4 : 3);
        L->st = S_INIT;
    } else if (!in_tag && (STARTS(t, len, p, "}}") || STARTS(t, len, p, "~}}"))) {
        kind = T_CLOSE, end = p + (c == '~' ? 3 : 2);
        L->st = S_INIT;
    } else if ((c == '"' || c == '\'') && (end = quoted_end(t, len, p, c)) != 0) {
        kind = T_STRING;
        char *v = keep(L->strings, end - p);
        if (v == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        size_t n = 0;
        for (size_t i = p + 1; i + 1 < end; i++) {
            if (t[i] == '\\' && i + 2 < end && t[i + 1] == c)
                i++;
            v[n++] = t[i];
        }
        tk->s = v;
        tk->n = n;
    } else if (c == '@') {
        kind = T_DATA;
    } else {
        static const struct {
            const char *w;
            tok_kind k;
        } words[] = {{"true", T_BOOL}, {"false", T_BOOL}, {"undefined", T_UNDEF}, {"null", T_NULL}};
        for (size_t w = 0; w < 4 && kind == T_INVALID; w++)
            if (starts(t, len, p, words[w].w) && after_lit(t, len, p + strlen(words[w].w), in_tag))
                kind = words[w].k, end = p + strlen(words[w].w);
        if (kind == T_INVALID) {
            /* -?[0-9]+(\.[0-9]+)? followed by [~}\s)], backing off */
            size_t q = p + (c == '-');
            size_t d = q;
            while (d < len && t[d] >= '0' && t[d] <= '9')
                d++;
            if (d > q) {
                size_t f = d;
                if (d + 1 < len && t[d] == '.' && t[d + 1] >= '0' && t[d + 1] <= '9') {
                    f = d + 1;
                    while (f < len && t[f] >= '0' && t[f] <= '9')
                        f++;
                }
                if (after_lit(t, len, f, in_tag))
                    kind = T_NUMBER, end = f;
                else if (f != d && after_lit(t, len, d, in_tag))
                    kind = T_NUMBER, end = d;
            }
        }
        if (kind == T_INVALID && STARTS(t, len, p, "as") && p + 2 < len &&
            js_space(t, len, p + 2) > 0) {
            size_t q = p + 2;
            while (q < len && (k = js_space(t, len, q)) > 0)
                q += k;
            if (q < len && t[q] == '|')
                kind = T_OPEN_BP, end = q + 1;
        }
        if (kind == T_INVALID && c == '|')
            kind = T_CLOSE_BP;
        if (kind == T_INVALID && id_char(t, len, p)) {
            size_t q = p;
            while (q < len && id_char(t, len, q))
                q++;
            if (after_id(t, len, q, in_tag))
                kind = T_ID, end = q;
        }
        if (kind == T_INVALID && c == '[' && (end = quoted_end(t, len, p, ']')) != 0) {
            kind = T_ID;
            tk->bracket = true;
            /* \] and \\ lose their backslash; the brackets go unless a line
             * break is inside (handlebars' id(): /^\[.*\]$/) */
            char *v = keep(L->strings, end - p);
            if (v == NULL)
                return ee__error(EE_ENOMEM, "out of memory parsing a template");
            size_t n = 0;
            for (size_t i = p; i < end; i++) {
                if (t[i] == '\\' && i + 1 < end && (t[i + 1] == ']' || t[i + 1] == '\\'))
                    i++;
                v[n++] = t[i];
            }
            bool line_break = false;
            for (size_t i = 0; i < n; i++)
                if (v[i] == '\n' || v[i] == '\r' ||
                    (i + 2 < n && (unsigned char)v[i] == 0xE2 && (unsigned char)v[i + 1] == 0x80 &&
                     ((unsigned char)v[i + 2] == 0xA8 || (unsigned char)v[i + 2] == 0xA9)))
                    line_break = true;
            tk->s = line_break ? v : v + 1;
            tk->n = line_break ? n : n - 2;
        }
        if (kind == T_INVALID)
            end = p + 1;
    }
    tk->k = kind;
    tk->at = p;
    tk->end = end;
    if (kind == T_ID && !tk->bracket) {
        tk->s = t + p;
        tk->n = end - p;
    }
    L->pos = end;
    return EE_OK;
}

/* ---- numbers as JavaScript prints them ---------------------------------------------- */

/* A double as JavaScript's Number.prototype.toString prints it. */
static size_t js_number(double d, char buf[48])
{
    if (isnan(d))
        return (size_t)snprintf(buf, 48, "NaN");
    if (isinf(d))
        return (size_t)snprintf(buf, 48, d < 0 ? "-Infinity" : "Infinity");
    if (d == 0)
        return (size_t)snprintf(buf, 48, "0");
    if (d > -1e15 && d < 1e15 && d == (double)(long long)d) { /* an integer: its digits */
        char rev[24];
        size_t k = 0, o = 0;
        unsigned long long v = (unsigned long long)(d < 0 ? -d : d);
        do
            rev[k++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        if (d < 0)
            buf[o++] = '-';
        while (k > 0)
            buf[o++] = rev[--k];
        buf[o] = '\0';
        return o;
    }
    /* the fewest significant digits that read back as d (short numbers
     * are common and cheap to print and read) */
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

/* ---- parsing: handlebars' grammar ----------------------------------------------- */

typedef struct {
    lexer L;
    token tok[2];
    int ntok;
    int depth; /* blocks open */
    int sub_depth;
} parser;

COLD static ee_status syntax(size_t at, const char *what)
{
    return ee__error(EE_EPARSE, "template: %s at byte %zu", what, at);
}

static ee_status peek(parser *P, int i, token **out)
{
    while (P->ntok <= i) {
        ee_status st = lex_next(&P->L, &P->tok[P->ntok]);
        if (st != EE_OK)
            return st;
        P->ntok++;
    }
    *out = &P->tok[i];
    return EE_OK;
}

static void advance(parser *P)
{
    P->tok[0] = P->tok[1];
    P->ntok--;
}

/* Consume a token of kind k (its copy in *out if not NULL). */
static ee_status expect(parser *P, tok_kind k, const char *what, token *out)
{
    token *t;
    ee_status st = peek(P, 0, &t);
    if (st != EE_OK)
        return st;
    if (t->k != k)
        return syntax(t->at, t->k == T_EOF ? "tag is never closed" : what);
    if (out != NULL)
        *out = *t;
    advance(P);
    return EE_OK;
}

static strip strip_of(const parser *P, const token *open, const token *close)
{
    return (strip){.open = !open->custom && open->at + 2 < P->L.len && P->L.t[open->at + 2] == '~',
                   .close = !close->custom && close->end - close->at >= 3 &&
                            P->L.t[close->end - 3] == '~'};
}

/* A path's segments, in the tree's chunks. */
static ee_status set_segs(parser *P, expr *e, size_t n)
{
    e->segs = n > 0 ? (seg *)(void *)keep(P->L.strings, n * sizeof *e->segs) : NULL;
    if (n > 0 && e->segs == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    return EE_OK;
}

static bool seg_is(seg s, const char *w) { return s.n == strlen(w) && memcmp(s.s, w, s.n) == 0; }

/* handlebars' scopedId: /^\.|this\b/ on the original. */
static bool scoped_id(seg o)
{
    if (o.n > 0 && o.s[0] == '.')
        return true;
    for (size_t i = 0; i + 4 <= o.n; i++)
        if (memcmp(o.s + i, "this", 4) == 0 && (i + 4 == o.n || !js_word(o.s[i + 4])))
            return true;
    return false;
}

/* The built-in helper a simple name (one part, not scoped, no ../) names:
 * handlebars' simpleId and knownHelpers. */
static unsigned char helper_id(const expr *e)
{
    static const char *const names[] = {"if", "unless", "each", "with", "lookup", "log"};
    if (e->nseg != 1 || e->scoped || e->up > 0)
        return 0;
    for (unsigned char i = 0; i < 6; i++)
        if (seg_is(e->segs[0], names[i]))
            return (unsigned char)(i + 1);
    return 0;
}

/* ID (SEP ID)*, after an optional @: handlebars' preparePath. */
typedef struct {
    seg part;
    bool literal, special;
    char sep;
} path_part;

static ee_status parse_path(parser *P, expr *e, bool data, size_t at)
{
    e->kind = X_PATH;
    e->data = data;
    size_t olen = data ? 1 : 0, np = 0, cap = 8, end = at + data;
    path_part few[8], *parts = few;
    bool contiguous = true; /* the original is the template's text itself */
    token *t;
    char sep = 0;
    ee_status st;
    for (;;) {
        if ((st = peek(P, 0, &t)) != EE_OK)
            break;
        if (t->k != T_ID) {
            st = syntax(t->at, np == 0 ? "expected a name" : "expected a name after a separator");
            break;
        }
        if (np == cap) {
            path_part *grown = malloc(2 * cap * sizeof *grown);
            if (grown == NULL) {
                st = ee__error(EE_ENOMEM, "out of memory parsing a template");
                break;
            }
            memcpy(grown, parts, np * sizeof *parts);
            if (parts != few)
                free(parts);
            parts = grown;
            cap *= 2;
        }
        parts[np].part = (seg){t->s, t->n};
        parts[np].literal = t->bracket && t->s != P->L.t + t->at;
        parts[np].sep = sep;
        contiguous = contiguous && !t->bracket && t->at == end;
        end = t->end;
        olen += t->n + (np > 0);
        np++;
        advance(P);
        if ((st = peek(P, 0, &t)) != EE_OK || t->k != T_SEP)
            break;
        sep = P->L.t[t->at];
        contiguous = contiguous && t->at == end;
        end = t->end;
        advance(P);
    }
    size_t ndig = 0;
    for (size_t i = 0; i < np; i++) {
        seg p = parts[i].part;
        /* '.', '..' and 'this' written bare are not members */
        parts[i].special = !parts[i].literal &&
                           ((p.n == 1 && p.s[0] == '.') || (p.n == 2 && p.s[0] == '.' && p.s[1] == '.') ||
                            (p.n == 4 && memcmp(p.s, "this", 4) == 0));
        ndig += !parts[i].special;
    }
    char *o = NULL;
    if (st == EE_OK && contiguous)
        o = (char *)P->L.t + at;
    else if (st == EE_OK && (o = keep(P->L.strings, olen)) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory parsing a template");
    if (st == EE_OK)
        st = set_segs(P, e, ndig);
    size_t w = 0;
    if (st == EE_OK && data && !contiguous)
        o[w] = '@';
    w += st == EE_OK && data;
    for (size_t i = 0; st == EE_OK && i < np; i++) {
        if (i > 0 && !contiguous)
            o[w] = parts[i].sep;
        w += i > 0;
        if (!contiguous)
            memcpy(o + w, parts[i].part.s, parts[i].part.n);
        w += parts[i].part.n;
        seg p = parts[i].part;
        if (parts[i].special) {
            if (e->nseg > 0)
                st = ee__error(EE_EPARSE, "template: invalid path %.*s at byte %zu",
                               (int)(w > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : w), o, at);
            else if (p.n == 2)
                e->up++;
        } else {
            e->segs[e->nseg++] = p;
        }
    }
    if (parts != few)
        free(parts);
    if (st == EE_OK) {
        e->orig = (seg){o, w};
        e->scoped = scoped_id(e->orig);
        e->helper = helper_id(e);
    }
    return st;
}

/* handlebars' helperName: a path, @data or a literal. */
static ee_status parse_name(parser *P, expr *e)
{
    *e = (expr){.kind = X_UNDEF};
    token *t;
    ee_status st = peek(P, 0, &t);
    if (st != EE_OK)
        return st;
    size_t at = t->at;
    const char *src = P->L.t + t->at;
    size_t n = t->end - t->at;
    switch (t->k) {
    case T_ID: return parse_path(P, e, false, at);
    case T_DATA:
        advance(P);
        return parse_path(P, e, true, at);
    case T_STRING:
        e->kind = X_STR;
        e->str = e->orig = (seg){t->s, t->n};
        e->lit_class = 's';
        advance(P);
        return EE_OK;
    case T_NUMBER: {
        char num[64];
        size_t k = n < sizeof num - 1 ? n : sizeof num - 1;
        memcpy(num, src, k);
        num[k] = '\0';
        e->kind = X_LIT;
        e->lit = json_real(strtod(num, NULL));
        e->lit_class = 'n';
        break;
    }
    case T_BOOL:
        e->kind = X_LIT;
        e->lit = n == 4 ? json_true() : json_false();
        e->lit_class = 'b';
        break;
    case T_UNDEF: e->lit_class = 'u'; break;
    case T_NULL:
        e->kind = X_LIT;
        e->lit = json_null();
        e->lit_class = 'z';
        break;
    case T_EOF: return syntax(at, "tag is never closed");
    case T_INVALID:
        if (!P->L.in_tag && find(P->L.t, P->L.len, at, "}}") == P->L.len)
            return syntax(at, "tag is never closed");
        return syntax(at, *src == '"' || *src == '\'' ? "unclosed string" : "unexpected text in a tag");
    case T_EQUALS:
        return syntax(at, "'=' where a name was expected (a set-delimiter tag is {{=a b=}})");
    default: return syntax(at, "expected a name or a value");
    }
    advance(P);
    if (e->kind == X_LIT && e->lit == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    e->orig = (seg){src, n};
    if (e->lit_class == 'n') {
        /* its original is a Number: 1.50 is 1.5, -0 is 0 */
        char buf[48];
        size_t k = js_number(json_real_value(e->lit), buf);
        char *o = keep(P->L.strings, k);
        if (o == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        memcpy(o, buf, k);
        e->orig = (seg){o, k};
    }
    return EE_OK;
}

static ee_status parse_call(parser *P, call *c, bool sexpr_head, bool block_params);
static ee_status literal_to_path(parser *P, expr *e);

static bool starts_param(tok_kind k)
{
    return k == T_ID || k == T_DATA || k == T_STRING || k == T_NUMBER || k == T_BOOL ||
           k == T_UNDEF || k == T_NULL || k == T_OPEN_SEXPR;
}

static ee_status parse_param(parser *P, expr *e)
{
    token *t;
    ee_status st = peek(P, 0, &t);
    if (st != EE_OK)
        return st;
    if (t->k != T_OPEN_SEXPR)
        return parse_name(P, e);
    *e = (expr){.kind = X_SUB, .lit_class = 'u', .orig = {"undefined", 9}};
    if (P->sub_depth == EE__TEMPLATE_MAX_DEPTH)
        return ee__error(EE_ETOOBIG, "template: subexpressions nested deeper than %d",
                         EE__TEMPLATE_MAX_DEPTH);
    if ((e->sub = calloc(1, sizeof *e->sub)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    advance(P);
    P->sub_depth++;
    st = parse_call(P, e->sub, false, false);
    P->sub_depth--;
    if (st == EE_OK)
        st = expect(P, T_CLOSE_SEXPR, "expected ')'", NULL);
    return st == EE_OK ? literal_to_path(P, &e->sub->head) : st;
}

/* A literal where a name goes ({{null}}, {{#true}}, {{"a b"}}) names a member
 * of the context: handlebars' transformLiteralToPath. */
static ee_status literal_to_path(parser *P, expr *e)
{
    if (e->kind == X_PATH || e->kind == X_SUB)
        return EE_OK;
    json_decref(e->lit);
    e->lit = NULL;
    e->kind = X_PATH;
    e->lit_class = 0;
    e->scoped = scoped_id(e->orig);
    ee_status st = set_segs(P, e, 1);
    if (st == EE_OK) {
        e->segs[e->nseg++] = e->orig;
        e->helper = helper_id(e);
    }
    return st;
}

/* name param* (key=value)* [as |a b|] */
static ee_status parse_call(parser *P, call *c, bool sexpr_head, bool block_params)
{
    token *t, *t1;
    ee_status st = peek(P, 0, &t);
    if (st != EE_OK)
        return st;
    st = sexpr_head && t->k == T_OPEN_SEXPR ? parse_param(P, &c->head) : parse_name(P, &c->head);
    while (st == EE_OK && (st = peek(P, 0, &t)) == EE_OK) {
        if (t->k == T_ID) {
            if ((st = peek(P, 1, &t1)) != EE_OK)
                return st;
            if (t1->k == T_EQUALS) {
                if ((st = grow((void **)&c->hkeys, c->nh, sizeof *c->hkeys)) != EE_OK ||
                    (st = grow((void **)&c->hvals, c->nh, sizeof *c->hvals)) != EE_OK)
                    return st;
                c->hkeys[c->nh] = (seg){t->s, t->n};
                c->hvals[c->nh] = (expr){.kind = X_UNDEF};
                advance(P);
                advance(P);
                st = parse_param(P, &c->hvals[c->nh++]);
                continue;
            }
        }
        if (c->nh > 0 && starts_param(t->k))
            return syntax(t->at, "a positional argument after key=value");
        if (!starts_param(t->k))
            break;
        if ((st = grow((void **)&c->params, c->np, sizeof *c->params)) != EE_OK)
            return st;
        c->params[c->np] = (expr){.kind = X_UNDEF};
        st = parse_param(P, &c->params[c->np++]);
    }
    if (st != EE_OK || !block_params || t->k != T_OPEN_BP)
        return st;
    advance(P);
    for (;;) {
        if ((st = peek(P, 0, &t)) != EE_OK)
            return st;
        if (t->k == T_CLOSE_BP && c->nbp > 0)
            break;
        if (t->k != T_ID)
            return syntax(t->at, "malformed block parameters (as |item index|)");
        if ((st = grow((void **)&c->bp, c->nbp, sizeof *c->bp)) != EE_OK)
            return st;
        c->bp[c->nbp++] = (seg){t->s, t->n};
        advance(P);
    }
    advance(P);
    return EE_OK;
}

static ee_status parse_program(parser *P, nodelist *out);

/* An opening tag's contents and its closer; the strip flags in *s. */
static ee_status parse_open(parser *P, call *c, bool sexpr_head, bool block_params, tok_kind closer,
                            strip *s)
{
    token open = P->tok[0], close = {0};
    advance(P);
    ee_status st = parse_call(P, c, sexpr_head, block_params);
    if (st == EE_OK)
        st = expect(P, closer, closer == T_CLOSE_UNESC ? "expected '}}}'" : "expected '}}'", &close);
    if (st == EE_OK)
        *s = strip_of(P, &open, &close);
    return st;
}

/* Whether a closing tag's name is the opening one's (handlebars compares
 * their `original`s: a path's text, a literal's value). */
static bool same_name(const expr *a, const expr *b)
{
    char ca = a->lit_class == 's' ? 0 : a->lit_class, cb = b->lit_class == 's' ? 0 : b->lit_class;
    if (a->kind == X_SUB)
        ca = 'u';
    return ca == cb && a->orig.n == b->orig.n && memcmp(a->orig.s, b->orig.s, a->orig.n) == 0;
}

static ee_status close_block(parser *P, const node *nd, strip *s)
{
    token open = {0}, close = {0}, *t;
    ee_status st = peek(P, 0, &t);
    if (st != EE_OK)
        return st;
    if (t->k == T_INVERSE || t->k == T_OPEN_CHAIN)
        return syntax(t->at, nd->kind == N_BLOCK ? "a second {{else}} in one block"
                                                 : "{{else}} where this block takes none");
    st = expect(P, T_OPEN_END, "a block is never closed", &open);
    if (st != EE_OK)
        return st == EE_EPARSE
                   ? ee__error(EE_EPARSE, "template: block {{#%.*s}} at byte %zu is never closed",
                               (int)(nd->c.head.orig.n > NAME_MAX_SHOWN ? NAME_MAX_SHOWN
                                                                        : nd->c.head.orig.n),
                               nd->c.head.orig.s, nd->at)
                   : st;
    expr name;
    st = parse_name(P, &name);
    if (st == EE_OK)
        st = expect(P, T_CLOSE, "expected '}}'", &close);
    if (st == EE_OK && !same_name(&nd->c.head, &name))
        st = ee__error(EE_EPARSE, "template: {{#%.*s}} at byte %zu is closed by {{/%.*s}} at byte %zu",
                       (int)(nd->c.head.orig.n > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : nd->c.head.orig.n),
                       nd->c.head.orig.s, nd->at,
                       (int)(name.orig.n > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : name.orig.n),
                       name.orig.s, open.at);
    if (st == EE_OK)
        *s = strip_of(P, &open, &close);
    expr_free(&name);
    return st;
}

static ee_status deeper(parser *P)
{
    if (P->depth == EE__TEMPLATE_MAX_DEPTH)
        return ee__error(EE_ETOOBIG, "template: blocks nested deeper than %d", EE__TEMPLATE_MAX_DEPTH);
    P->depth++;
    return EE_OK;
}

/* What follows a block's program: {{else}} and its program, or a chain of
 * {{else helper ...}} blocks (handlebars' inverseChain). */
typedef struct {
    bool present, chain;
    strip st;
    nodelist prog;
} inverse_part;

NOINLINE static ee_status parse_inverse(parser *P, bool chain_ok, inverse_part *out)
{
    token *t;
    ee_status st = peek(P, 0, &t);
    if (st != EE_OK)
        return st;
    *out = (inverse_part){0};
    if (t->k == T_INVERSE) {
        out->present = true;
        out->st = strip_of(P, t, t);
        advance(P);
        return parse_program(P, &out->prog);
    }
    if (t->k != T_OPEN_CHAIN || !chain_ok)
        return EE_OK;
    size_t at = t->at;
    if ((st = deeper(P)) != EE_OK)
        return st;
    out->present = out->chain = true;
    out->prog.chained = true;
    node *nd = list_add(&out->prog, N_BLOCK, at);
    if (nd == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    nd->c.head.kind = X_UNDEF;
    if ((st = parse_open(P, &nd->c, false, true, T_CLOSE, &nd->st)) != EE_OK ||
        (st = literal_to_path(P, &nd->c.head)) != EE_OK)
        return st;
    out->st = nd->st;
    nd->has_prog = true;
    if ((st = parse_program(P, &nd->prog)) != EE_OK)
        return st;
    inverse_part sub;
    st = parse_inverse(P, true, &sub);
    /* handlebars' prepareBlock(open, program, sub, close = sub) */
    nd = &out->prog.v[0];
    if (sub.present) {
        if (sub.chain)
            sub.prog.v[0].close_st = sub.st;
        nd->inv_st = sub.st;
        nd->close_st = sub.st;
        nd->inv = sub.prog;
        nd->has_inv = true;
    } else {
        list_free(&sub.prog);
    }
    P->depth--;
    return st;
}

static ee_status parse_block(parser *P, nodelist *out)
{
    token open = P->tok[0];
    ee_status st = deeper(P);
    if (st != EE_OK)
        return st;
    node *nd = list_add(out, N_BLOCK, open.at);
    if (nd == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    nd->c.head.kind = X_UNDEF;
    if ((st = parse_open(P, &nd->c, false, true, T_CLOSE, &nd->st)) != EE_OK)
        return st;
    nodelist prog = {0};
    inverse_part inv = {0};
    st = parse_program(P, &prog);
    if (st == EE_OK)
        st = parse_inverse(P, open.k == T_OPEN_BLOCK, &inv);
    nd = &out->v[out->n - 1]; /* the lists may have moved */
    if (open.k == T_OPEN_INVERSE) {
        nd->inverted = true;
        nd->inv = prog;
        nd->has_inv = true;
        nd->prog = inv.prog;
        nd->has_prog = inv.present;
    } else {
        nd->prog = prog;
        nd->has_prog = true;
        nd->inv = inv.prog;
        nd->has_inv = inv.present;
    }
    nd->inv_st = inv.st;
    if (st == EE_OK)
        st = close_block(P, nd, &nd->close_st);
    if (st == EE_OK && inv.chain)
        nd->inv.v[0].close_st = nd->close_st;
    if (st == EE_OK && open.deco) {
        if (inv.present)
            st = syntax(open.at, "{{else}} in a decorator block");
        if (st == EE_OK && !(nd->c.head.kind == X_PATH && seg_is(nd->c.head.orig, "inline"))) {
            nd->kind = N_COMMENT;
            if (out->bad_deco == 0)
                out->bad_deco = open.at + 1;
        } else {
            nd->kind = N_INLINE;
            out->has_inline = true;
        }
    }
    if (st == EE_OK)
        st = literal_to_path(P, &nd->c.head);
    P->depth--;
    return st;
}

NOINLINE static ee_status parse_raw_block(parser *P, nodelist *out)
{
    token open = P->tok[0];
    ee_status st = deeper(P);
    if (st != EE_OK)
        return st;
    node *nd = list_add(out, N_BLOCK, open.at);
    if (nd == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    nd->c.head.kind = X_UNDEF;
    strip ignored;
    if ((st = parse_open(P, &nd->c, false, false, T_CLOSE_RAW, &ignored)) != EE_OK)
        return st;
    nd->has_prog = true;
    token *t;
    while ((st = peek(P, 0, &t)) == EE_OK && t->k == T_CONTENT) {
        node *tx = list_add(&nd->prog, N_TEXT, t->at);
        if (tx == NULL)
            return ee__error(EE_ENOMEM, "out of memory parsing a template");
        tx->orig = tx->s = t->s;
        tx->orig_n = tx->len = t->n;
        advance(P);
    }
    if (st != EE_OK)
        return st;
    if (t->k != T_END_RAW)
        return ee__error(EE_EPARSE, "template: raw block {{{{%.*s}}}} at byte %zu is never closed",
                         (int)(nd->c.head.orig.n > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : nd->c.head.orig.n),
                         nd->c.head.orig.s, open.at);
    bool same = (nd->c.head.lit_class == 0 || nd->c.head.lit_class == 's') &&
                nd->c.head.kind != X_SUB && nd->c.head.orig.n == t->n &&
                memcmp(nd->c.head.orig.s, t->s, t->n) == 0;
    if (!same)
        return syntax(t->at, "a raw block closed by another name");
    advance(P);
    P->depth--;
    return literal_to_path(P, &nd->c.head);
}

NOINLINE static ee_status parse_partial(parser *P, nodelist *out, bool block)
{
    token open = P->tok[0];
    ee_status st = EE_OK;
    if (block && (st = deeper(P)) != EE_OK)
        return st;
    node *nd = list_add(out, block ? N_PBLOCK : N_PARTIAL, open.at);
    if (nd == NULL)
        return ee__error(EE_ENOMEM, "out of memory parsing a template");
    nd->c.head.kind = X_UNDEF;
    if ((st = parse_open(P, &nd->c, true, false, T_CLOSE, &nd->st)) != EE_OK)
        return st;
    if (nd->c.np > 1)
        return syntax(open.at, "a partial takes one context (unsupported number of partial arguments)");
    if (!block)
        return EE_OK;
    nodelist prog = {0};
    st = parse_program(P, &prog);
    nd = &out->v[out->n - 1];
    nd->prog = prog;
    nd->has_prog = true;
    if (st == EE_OK)
        st = close_block(P, nd, &nd->close_st);
    P->depth--;
    return st;
}

static ee_status parse_program(parser *P, nodelist *out)
{
    for (;;) {
        token *t;
        ee_status st = peek(P, 0, &t);
        if (st != EE_OK)
            return st;
        node *nd;
        switch (t->k) {
        case T_CONTENT:
            if ((nd = list_add(out, N_TEXT, t->at)) == NULL)
                return ee__error(EE_ENOMEM, "out of memory parsing a template");
            nd->orig = nd->s = t->s;
            nd->orig_n = nd->len = t->n;
            advance(P);
            break;
        case T_COMMENT:
            if ((nd = list_add(out, N_COMMENT, t->at)) == NULL)
                return ee__error(EE_ENOMEM, "out of memory parsing a template");
            nd->st = strip_of(P, t, t);
            advance(P);
            break;
        case T_OPEN:
        case T_OPEN_UNESC: {
            bool unesc = t->k == T_OPEN_UNESC || t->unescaped, deco = t->deco;
            if ((nd = list_add(out, unesc ? N_RAW : N_ESC, t->at)) == NULL)
                return ee__error(EE_ENOMEM, "out of memory parsing a template");
            nd->c.head.kind = X_UNDEF;
            size_t at = t->at;
            st = parse_open(P, &nd->c, false, false, t->k == T_OPEN ? T_CLOSE : T_CLOSE_UNESC,
                            &nd->st);
            if (st == EE_OK && deco) {
                if (!(nd->c.head.kind == X_PATH && seg_is(nd->c.head.orig, "inline"))) {
                    nd->kind = N_COMMENT;
                    if (out->bad_deco == 0)
                        out->bad_deco = at + 1;
                } else {
                    nd->kind = N_INLINE; /* {{*inline "x"}}: x defined as nothing */
                    out->has_inline = true;
                }
            }
            if (st == EE_OK)
                st = literal_to_path(P, &nd->c.head);
            if (st != EE_OK)
                return st;
            break;
        }
        case T_OPEN_BLOCK:
        case T_OPEN_INVERSE:
            if ((st = parse_block(P, out)) != EE_OK)
                return st;
            break;
        case T_OPEN_RAW:
            if ((st = parse_raw_block(P, out)) != EE_OK)
                return st;
            break;
        case T_OPEN_PARTIAL:
        case T_OPEN_PBLOCK:
            if ((st = parse_partial(P, out, t->k == T_OPEN_PBLOCK)) != EE_OK)
                return st;
            break;
        default: return EE_OK;
        }
    }
}

/* ---- whitespace control: handlebars' WhitespaceControl pass ------------------------ */

/* isPrevWhitespace(body, i, isRoot): the statement before i is text ending
 * in a line break and blanks (or all blanks, at the root's edge). */
static bool prev_ws(const nodelist *b, long i, bool root)
{
    if (i - 1 < 0 || i - 1 >= (long)b->n)
        return i - 1 < 0 ? root : false;
    const node *p = &b->v[i - 1];
    if (p->kind != N_TEXT)
        return false;
    bool loose = !(i - 2 >= 0) && root;
    size_t tail = ws_tail(p->orig, p->orig_n);
    if (loose && tail == 0)
        return true;
    return memchr(p->orig + tail, '\n', p->orig_n - tail) != NULL;
}

static bool next_ws(const nodelist *b, long i, bool root)
{
    if (i + 1 >= (long)b->n)
        return root;
    const node *nx = &b->v[i + 1];
    if (nx->kind != N_TEXT)
        return false;
    bool loose = !(i + 2 < (long)b->n) && root;
    size_t head = ws_head(nx->orig, nx->orig_n);
    if (loose && head == nx->orig_n)
        return true;
    return memchr(nx->orig, '\n', head) != NULL;
}

/* omitRight: strip the start of the text at index k. */
static void omit_right(nodelist *b, long k, bool multiple)
{
    if (k < 0 || k >= (long)b->n)
        return;
    node *c = &b->v[k];
    if (c->kind != N_TEXT || (!multiple && c->rstripped))
        return;
    size_t before = c->len, cut = 0;
    if (multiple) {
        cut = ws_head(c->s, c->len);
    } else {
        while (cut < c->len && (c->s[cut] == ' ' || c->s[cut] == '\t'))
            cut++;
        if (cut < c->len && c->s[cut] == '\r')
            cut++;
        if (cut < c->len && c->s[cut] == '\n')
            cut++;
    }
    c->s += cut;
    c->len -= cut;
    c->rstripped = c->len != before;
}

/* omitLeft: strip the end of the text at index k; whether it did. */
static bool omit_left(nodelist *b, long k, bool multiple)
{
    if (k < 0 || k >= (long)b->n)
        return false;
    node *c = &b->v[k];
    if (c->kind != N_TEXT || (!multiple && c->lstripped))
        return false;
    size_t before = c->len;
    if (multiple) {
        c->len = ws_tail(c->s, c->len);
    } else {
        while (c->len > 0 && (c->s[c->len - 1] == ' ' || c->s[c->len - 1] == '\t'))
            c->len--;
    }
    c->lstripped = c->len != before;
    return c->lstripped;
}

typedef struct {
    bool any, open, close, open_sa, close_sa, inline_sa;
} wstrip;

static void wsc_program(nodelist *body, bool root);

static wstrip wsc_block(node *b)
{
    if (b->has_prog)
        wsc_program(&b->prog, false);
    if (b->has_inv)
        wsc_program(&b->inv, false);
    nodelist *program = b->has_prog ? &b->prog : &b->inv;
    nodelist *inverse = b->has_prog && b->has_inv ? &b->inv : NULL;
    nodelist *first = inverse, *last = inverse;
    if (inverse != NULL && inverse->chained) {
        first = &inverse->v[0].prog;
        while (last->chained)
            last = &last->v[last->n - 1].prog;
    }
    wstrip s = {.any = true,
                .open = b->st.open,
                .close = b->close_st.close,
                .open_sa = next_ws(program, -1, false),
                .close_sa = prev_ws(first ? first : program, (long)(first ? first : program)->n, false)};
    if (b->st.close)
        omit_right(program, 0, true);
    if (inverse != NULL) {
        if (b->inv_st.open)
            omit_left(program, (long)program->n - 1, true);
        if (b->inv_st.close)
            omit_right(first, 0, true);
        if (b->close_st.open)
            omit_left(last, (long)last->n - 1, true);
        if (prev_ws(program, (long)program->n, false) && next_ws(first, -1, false)) {
            omit_left(program, (long)program->n - 1, false);
            omit_right(first, 0, false);
        }
    } else if (b->close_st.open) {
        omit_left(program, (long)program->n - 1, true);
    }
    return s;
}

static void wsc_program(nodelist *body, bool root)
{
    for (long i = 0; i < (long)body->n; i++) {
        node *cur = &body->v[i];
        wstrip s = {0};
        switch (cur->kind) {
        case N_TEXT: continue;
        case N_ESC:
        case N_RAW: s = (wstrip){.any = true, .open = cur->st.open, .close = cur->st.close}; break;
        case N_INLINE:
            if (!cur->has_prog) {
                s = (wstrip){.any = true, .open = cur->st.open, .close = cur->st.close};
                break;
            }
            s = wsc_block(cur); /* a decorator block is a block here */
            break;
        case N_BLOCK:
        case N_PBLOCK: s = wsc_block(cur); break;
        case N_PARTIAL:
        case N_COMMENT:
            s = (wstrip){.any = true, .inline_sa = true, .open = cur->st.open, .close = cur->st.close};
            break;
        }
        cur = &body->v[i];
        bool pw = prev_ws(body, i, root), nw = next_ws(body, i, root);
        bool open_sa = s.open_sa && pw, close_sa = s.close_sa && nw,
             inline_sa = s.inline_sa && pw && nw;
        if (s.close)
            omit_right(body, i + 1, true);
        if (s.open)
            omit_left(body, i - 1, true);
        if (inline_sa) {
            omit_right(body, i + 1, false);
            if (omit_left(body, i - 1, false) && cur->kind == N_PARTIAL) {
                const node *p = &body->v[i - 1];
                size_t k = p->orig_n;
                while (k > 0 && (p->orig[k - 1] == ' ' || p->orig[k - 1] == '\t'))
                    k--;
                cur->indent = p->orig + k;
                cur->indent_len = p->orig_n - k;
            }
        }
        if (open_sa) {
            omit_right(cur->has_prog ? &cur->prog : &cur->inv, 0, false);
            omit_left(body, i - 1, false);
        }
        if (close_sa) {
            omit_right(body, i + 1, false);
            nodelist *l = cur->has_inv ? &cur->inv : &cur->prog;
            omit_left(l, (long)l->n - 1, false);
        }
    }
}

static ee_status parse(const char *t, size_t len, tree *out)
{
    *out = (tree){0};
    parser P = {.L = {.t = t, .len = len, .strings = &out->strings}};
    ee_status st = parse_program(&P, &out->root);
    token *tk;
    if (st == EE_OK && (st = peek(&P, 0, &tk)) == EE_OK && tk->k != T_EOF)
        st = syntax(tk->at, tk->k == T_INVERSE || tk->k == T_OPEN_CHAIN ? "{{else}} outside a block"
                            : tk->k == T_OPEN_END ? "a closing tag that matches no open block"
                                                  : "unexpected text");
    if (st == EE_OK)
        wsc_program(&out->root, true);
    return st;
}

/* ---- values ------------------------------------------------------------------------ */

typedef struct pblock pblock;

/* V_PBLOCK is @partial-block: a function in handlebars.js, true here. */
typedef enum { V_UNDEF, V_JSON, V_INT, V_BOOL, V_STR, V_PBLOCK } val_kind;

typedef struct {
    /* 16 bytes: passed and returned in two registers, never through
     * memory (a wider value was copied through the stack in pieces, and
     * reading it back whole stalled). A string is at most 16 MiB. */
    uint32_t k; /* val_kind */
    uint32_t n; /* V_STR's length */
    union {     /* by k */
        const json_t *j;
        json_int_t i;
        bool b;
        const pblock *pb;
        const char *s;
    };
} val;

/* A member whose value is undefined (extend({}, ctx, {k: undefined}) keeps
 * the key): a null that jansson never frees (refcount -1, as its own
 * singletons), read back as undefined. */
static json_t undefined_member = {JSON_NULL, (size_t)-1};

static val v_json(const json_t *j)
{
    return j != NULL && j != &undefined_member ? (val){.k = V_JSON, .j = j} : (val){.k = V_UNDEF};
}

static bool v_nullish(val v) { return v.k == V_UNDEF || (v.k == V_JSON && json_is_null(v.j)); }

/* JavaScript's truthiness. */
static bool v_truthy(val v)
{
    switch (v.k) {
    case V_UNDEF: return false;
    case V_INT: return v.i != 0;
    case V_BOOL: return v.b;
    case V_STR: return v.n > 0;
    case V_PBLOCK: return true;
    case V_JSON:
        if (json_is_null(v.j) || json_is_false(v.j))
            return false;
        if (json_is_number(v.j))
            return json_number_value(v.j) != 0 && !isnan(json_number_value(v.j));
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

static bool v_string(val v, const char **s, size_t *n)
{
    if (v.k == V_STR) {
        *s = v.s, *n = v.n;
        return true;
    }
    if (v.k == V_JSON && json_is_string(v.j)) {
        *s = json_string_value(v.j), *n = json_string_length(v.j);
        return true;
    }
    return false;
}

static bool v_number(val v, double *d)
{
    if (v.k == V_INT) {
        *d = (double)v.i;
        return true;
    }
    if (v.k == V_JSON && json_is_number(v.j)) {
        *d = json_number_value(v.j);
        return true;
    }
    return false;
}

/* JavaScript's Number(string). */
COLD static double js_to_number(const char *s, size_t n)
{
    size_t a = ws_head(s, n), b = ws_tail(s, n);
    if (b <= a)
        return 0;
    char buf[128];
    size_t k = b - a;
    if (k >= sizeof buf)
        return NAN;
    memcpy(buf, s + a, k);
    buf[k] = '\0';
    if (k > 2 && buf[0] == '0' && strchr("xXoObB", buf[1]) != NULL) {
        int base = buf[1] == 'x' || buf[1] == 'X' ? 16 : buf[1] == 'o' || buf[1] == 'O' ? 8 : 2;
        double v = 0;
        for (size_t i = 2; i < k; i++) {
            int dgt = buf[i] >= '0' && buf[i] <= '9'   ? buf[i] - '0'
                      : buf[i] >= 'a' && buf[i] <= 'f' ? buf[i] - 'a' + 10
                      : buf[i] >= 'A' && buf[i] <= 'F' ? buf[i] - 'A' + 10
                                                       : 99;
            if (dgt >= base)
                return NAN;
            v = v * base + dgt;
        }
        return v;
    }
    const char *p = buf + (buf[0] == '+' || buf[0] == '-');
    if (strcmp(p, "Infinity") == 0)
        return buf[0] == '-' ? -INFINITY : INFINITY;
    /* digits, one point, an exponent: nothing strtod takes beyond that */
    bool digit = false;
    for (const char *q = p; *q != '\0' && *q != 'e' && *q != 'E'; q++) {
        if (*q >= '0' && *q <= '9')
            digit = true;
        else if (*q != '.')
            return NAN;
    }
    if (!digit)
        return NAN;
    char *end;
    double v = strtod(buf, &end);
    return *end == '\0' ? v : NAN;
}

/* ---- rendering --------------------------------------------------------------------- */

typedef struct cframe { /* handlebars' depths: the contexts ../ reaches */
    val v;
    const struct cframe *up;
} cframe;

typedef struct bpframe { /* block parameters in scope, innermost first */
    const call *c;
    val v[2];
    int nv;      /* how many the helper gave; later names are undefined */
    bool poison; /* handlebars.js throws when one is used (#if as |x|) */
    const struct bpframe *up;
    const nodelist *prog; /* the program they are declared for */
} bpframe;

typedef struct iscope { /* a running program's {{#*inline}} partials */
    const nodelist *prog;
    const cframe *ctx;
    const bpframe *bps;
    const struct iscope *up;
    const void *tmpl; /* the template (or partial) it is written in */
} iscope;

struct pblock { /* a {{#> partial}}'s block, for {{> @partial-block}} */
    const nodelist *body;
    const cframe *ctx;
    const bpframe *bps;
    const iscope *scope;
    const pblock *outer;
    const void *tmpl;
};

/* The partials a template had in scope when it called a partial: an inline
 * partial of that template, called from further in, runs with them (they
 * are its container's partials in handlebars.js). */
typedef struct callout {
    const void *tmpl;
    const iscope *scope;
    const struct callout *up;
} callout;

typedef struct dframe { /* handlebars' data frames (@index, ...) */
    const struct dframe *parent;
    bool iter; /* @index and its kin are set */
    val key;
    json_int_t index;
    bool first, last;
    const pblock *pb;
    bool no_root; /* a partial block called as a function has no @root */
} dframe;

typedef struct {
    val cur;             /* handlebars' depth0: the context */
    const cframe *ctx;   /* handlebars' depths: what ../ reaches */
    val nullctx;         /* handlebars' nullContext, {}: `this` for a helper where the
                            context is null or undefined */
    const bpframe *bps;
    const dframe *data;
    const iscope *scope;
    const void *tmpl;     /* the template being run */
    const callout *outs;  /* the templates that called the partials being run */
    int depth; /* blocks + partials being rendered */
    val root;
    const json_t *partials;
    json_t *scratch; /* values made while rendering (partial contexts) */
    char *buf;
    size_t len, cap;
    uint64_t work;
    /* handlebars.js joins a program's output with +: numbers and booleans
     * appended before any string ({{{n}}}{{{m}}}) add up. While acc_open,
     * such values are held here, not written; the first string writes them
     * (one as itself, more as their sum). */
    bool acc_open;
    int acc_count;
    double acc_sum;
    val acc_first;
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

static ee_status end_sum(render_state *rs);

static ee_status emit(render_state *rs, const char *s, size_t n)
{
    if (rs->acc_open) {
        ee_status held = end_sum(rs);
        if (held != EE_OK)
            return held;
    }
    ee_status st = reserve(rs, n);
    if (st != EE_OK)
        return st;
    if (n > 0)
        memcpy(rs->buf + rs->len, s, n);
    rs->len += n;
    rs->buf[rs->len] = '\0';
    return EE_OK;
}

/* handlebars.js escapes these seven: how many bytes each grows by. */
static const unsigned char escape_growth[256] = {['&'] = 4, ['<'] = 3, ['>'] = 3, ['"'] = 5,
                                                 ['\''] = 5, ['`'] = 5, ['='] = 5};

static const char *escape_of(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#x27;";
    case '`': return "&#x60;";
    default: return "&#x3D;";
    }
}

static ee_status emit_escaped(render_state *rs, const char *s, size_t n)
{
    size_t out = n;
    for (size_t i = 0; i < n; i++)
        out += escape_growth[(unsigned char)s[i]];
    if (rs->acc_open) {
        ee_status held = end_sum(rs);
        if (held != EE_OK)
            return held;
    }
    if (out == n)
        return emit(rs, s, n);
    ee_status st = reserve(rs, out);
    if (st != EE_OK)
        return st;
    char *w = rs->buf + rs->len;
    for (size_t i = 0; i < n; i++) {
        unsigned char g = escape_growth[(unsigned char)s[i]];
        if (g == 0) {
            *w++ = s[i];
        } else {
            memcpy(w, escape_of(s[i]), g + 1u);
            w += g + 1u;
        }
    }
    rs->len += out;
    rs->buf[rs->len] = '\0';
    return EE_OK;
}

static ee_status emit_text(render_state *rs, const char *s, size_t n, bool esc)
{
    return esc ? emit_escaped(rs, s, n) : emit(rs, s, n);
}

static ee_status emit_number(render_state *rs, double d)
{
    char num[48];
    size_t n = js_number(d, num);
    return emit(rs, num, n);
}

/* A JSON value as JavaScript's String() prints it ("" for null inside an
 * array, "1,2" for [1,2], "[object Object]"). Every number is a double, as
 * in JavaScript: 2^53 + 1 prints 9007199254740992. */
static ee_status emit_json(render_state *rs, const json_t *j, bool esc, bool in_array)
{
    switch (json_typeof(j)) {
    case JSON_STRING: return emit_text(rs, json_string_value(j), json_string_length(j), esc);
    case JSON_INTEGER: return emit_number(rs, (double)json_integer_value(j));
    case JSON_REAL: return emit_number(rs, json_real_value(j));
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
    case V_INT: return emit(rs, num, js_number((double)v.i, num));
    case V_BOOL: return v.b ? emit(rs, "true", 4) : emit(rs, "false", 5);
    case V_STR: return emit_text(rs, v.s, v.n, esc);
    case V_JSON: return json_is_null(v.j) ? EE_OK : emit_json(rs, v.j, esc, false);
    case V_PBLOCK:
        return ee__error(EE_EPARSE, "template: printing @partial-block is not supported (use "
                                    "{{> @partial-block}})");
    }
    return EE_OK;
}

/* JavaScript's String(v) - a property key - written at the end of the
 * output buffer (*mark is where to cut it off again) unless it is a string
 * already. */
static ee_status key_of(render_state *rs, val v, seg *out, size_t *mark)
{
    *mark = rs->len;
    if (v_string(v, &out->s, &out->n))
        return EE_OK;
    ee_status st = EE_OK;
    bool held = rs->acc_open;
    rs->acc_open = false; /* scratch text, not output */
    if (v.k == V_UNDEF)
        st = emit(rs, "undefined", 9);
    else if (v.k == V_JSON && json_is_null(v.j))
        st = emit(rs, "null", 4);
    else if (v.k == V_PBLOCK)
        st = emit(rs, "function", 8);
    else
        st = emit_val(rs, v, false);
    rs->acc_open = held;
    if (st != EE_OK)
        return st;
    *out = (seg){rs->buf + *mark, rs->len - *mark};
    return EE_OK;
}

static void key_done(render_state *rs, size_t mark)
{
    rs->len = mark;
    if (rs->buf != NULL)
        rs->buf[mark] = '\0';
}

/* JavaScript's == between two contexts (handlebars pushes a context for
 * ../ only when it != the current one). */
COLD static bool v_loose_eq(render_state *rs, val a, val b)
{
    if (v_nullish(a) || v_nullish(b))
        return v_nullish(a) && v_nullish(b);
    bool ao = a.k == V_JSON && (json_is_object(a.j) || json_is_array(a.j));
    bool bo = b.k == V_JSON && (json_is_object(b.j) || json_is_array(b.j));
    if (a.k == V_PBLOCK || b.k == V_PBLOCK)
        return a.k == b.k && a.pb == b.pb;
    if (ao && bo)
        return a.j == b.j;
    if ((ao && json_is_object(a.j)) || (bo && json_is_object(b.j))) {
        /* an object is "[object Object]" to a primitive: equal to that
         * string only (a number or boolean compares with NaN) */
        const char *ps;
        size_t pn;
        return v_string(ao ? b : a, &ps, &pn) && pn == 15 && memcmp(ps, "[object Object]", 15) == 0;
    }
    if (ao || bo) {
        /* the object as its string, then compared as a primitive */
        size_t mark = rs->len;
        bool held = rs->acc_open;
        rs->acc_open = false; /* scratch text, not output */
        ee_status st = emit_val(rs, ao ? a : b, false);
        rs->acc_open = held;
        if (st != EE_OK) {
            key_done(rs, mark);
            return false;
        }
        size_t n = rs->len - mark;
        char *copy = malloc(n + 1);
        if (copy == NULL) {
            key_done(rs, mark);
            return false;
        }
        memcpy(copy, rs->buf + mark, n);
        key_done(rs, mark);
        val s = {.k = V_STR, .s = copy, .n = n};
        bool eq = ao ? v_loose_eq(rs, s, b) : v_loose_eq(rs, a, s);
        free(copy);
        return eq;
    }
    const char *as, *bs;
    size_t an, bn;
    bool astr = v_string(a, &as, &an), bstr = v_string(b, &bs, &bn);
    if (astr && bstr)
        return an == bn && memcmp(as, bs, an) == 0;
    double x, y;
    if (a.k == V_BOOL || (a.k == V_JSON && json_is_boolean(a.j)))
        x = v_truthy(a) ? 1 : 0;
    else if (astr)
        x = js_to_number(as, an);
    else if (!v_number(a, &x))
        return false;
    if (b.k == V_BOOL || (b.k == V_JSON && json_is_boolean(b.j)))
        y = v_truthy(b) ? 1 : 0;
    else if (bstr)
        y = js_to_number(bs, bn);
    else if (!v_number(b, &y))
        return false;
    return x == y;
}

/* A canonical array index ("0", "17"; not "01", "-1" or 2^32 - 1). */
static bool array_index(const char *s, size_t n, size_t *idx)
{
    if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > 4294967294u)
        return false;
    *idx = (size_t)v;
    return true;
}

/* Length of a UTF-8 string in UTF-16 code units, as JavaScript counts. */
static size_t utf16_len(const char *s, size_t n)
{
    size_t units = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c & 0xC0) != 0x80)
            units += c >= 0xF0 ? 2 : 1;
    }
    return units;
}

/* s[idx] in UTF-16 code units: the character holding that unit (a
 * character beyond U+FFFF is two units; both give it whole). */
static bool utf16_at(const char *s, size_t n, size_t idx, seg *out)
{
    size_t units = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t k = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i + k > n)
            k = n - i;
        size_t w = c >= 0xF0 ? 2 : 1;
        if (idx < units + w) {
            *out = (seg){s + i, k};
            return true;
        }
        units += w;
        i += k;
    }
    return false;
}

/* A member of a value, as handlebars' lookupProperty: an object's own
 * members, an array's items and length, a string's characters and length. */
static val member(val v, const char *s, size_t n)
{
    if (v.k == V_JSON && json_is_object(v.j))
        return v_json(json_object_getn(v.j, s, n));
    bool is_len = n == 6 && memcmp(s, "length", 6) == 0;
    size_t idx;
    if (v.k == V_JSON && json_is_array(v.j)) {
        if (is_len)
            return (val){.k = V_INT, .i = (json_int_t)json_array_size(v.j)};
        if (!array_index(s, n, &idx))
            return (val){.k = V_UNDEF};
        return v_json(json_array_get(v.j, idx));
    }
    const char *str;
    size_t sn;
    if (v_string(v, &str, &sn)) {
        if (is_len)
            return (val){.k = V_INT, .i = (json_int_t)utf16_len(str, sn)};
        seg ch;
        if (array_index(s, n, &idx) && utf16_at(str, sn, idx, &ch))
            return (val){.k = V_STR, .s = ch.s, .n = ch.n};
    }
    return (val){.k = V_UNDEF};
}

/* The rest of a path's segments, from `from`, on v. */
static val walk(render_state *rs, val v, const expr *e, size_t from)
{
    for (size_t i = from; i < e->nseg && !v_nullish(v); i++) {
        rs->work++;
        v = member(v, e->segs[i].s, e->segs[i].n);
    }
    return v;
}

static val data_value(render_state *rs, const expr *e)
{
    const dframe *d = rs->data;
    for (int i = 0; i < e->up && d != NULL; i++)
        d = d->parent;
    if (d == NULL || e->nseg == 0)
        return (val){.k = V_UNDEF};
    seg s = e->segs[0];
    val v = {.k = V_UNDEF};
    if (seg_is(s, "root"))
        v = d->no_root ? (val){.k = V_UNDEF} : rs->root;
    else if (seg_is(s, "partial-block") && d->pb != NULL)
        v = (val){.k = V_PBLOCK, .pb = d->pb};
    else if (!d->iter)
        v = (val){.k = V_UNDEF};
    else if (seg_is(s, "index"))
        v = (val){.k = V_INT, .i = d->index};
    else if (seg_is(s, "key"))
        v = d->key;
    else if (seg_is(s, "first"))
        v = (val){.k = V_BOOL, .b = d->first};
    else if (seg_is(s, "last"))
        v = (val){.k = V_BOOL, .b = d->last};
    /* @data paths stop at the first falsy part (@index.x is 0 at 0) */
    for (size_t i = 1; i < e->nseg && v_truthy(v); i++) {
        rs->work++;
        v = member(v, e->segs[i].s, e->segs[i].n);
    }
    return v;
}

/* The block parameter a path names, if any (handlebars decides it when it
 * compiles: a simple name declared by an enclosing block). */
static const bpframe *block_param(render_state *rs, const expr *e, int *k)
{
    if (e->kind != X_PATH || e->up > 0 || e->scoped || e->nseg == 0)
        return NULL;
    for (const bpframe *f = rs->bps; f != NULL; f = f->up) {
        rs->work++;
        for (size_t i = 0; i < f->c->nbp; i++) {
            if (f->c->bp[i].n == e->segs[0].n && memcmp(f->c->bp[i].s, e->segs[0].s, f->c->bp[i].n) == 0) {
                *k = (int)i;
                return f;
            }
        }
    }
    return NULL;
}

static ee_status path_value(render_state *rs, const expr *e, size_t at, val *out)
{
    int k;
    const bpframe *f = rs->bps != NULL ? block_param(rs, e, &k) : NULL;
    if (f != NULL) {
        if (f->poison)
            return ee__error(EE_EPARSE,
                             "template: block parameter %.*s at byte %zu has no value: the helper "
                             "gives none (handlebars.js fails)",
                             (int)(e->segs[0].n > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : e->segs[0].n),
                             e->segs[0].s, at);
        *out = walk(rs, k < f->nv ? f->v[k] : (val){.k = V_UNDEF}, e, 1);
        return EE_OK;
    }
    if (e->data) {
        *out = data_value(rs, e);
        return EE_OK;
    }
    const cframe *c = rs->ctx;
    for (int i = 0; i < e->up && c != NULL; i++) {
        rs->work++;
        c = c->up;
    }
    val v = e->up == 0 ? rs->cur : c != NULL ? c->v : (val){.k = V_UNDEF};
    /* an empty first name ({{[]}}, {{[].x}}, {{""}}) is the context itself,
     * the rest unread (handlebars compiles it as `this`) */
    *out = e->nseg > 0 && e->segs[0].n == 0 ? v : walk(rs, v, e, 0);
    return EE_OK;
}

typedef enum { H_NONE, H_IF, H_UNLESS, H_EACH, H_WITH, H_LOOKUP, H_LOG } helper;

/* The built-in helper a call names (handlebars' simpleId, and not a block
 * parameter). */
static helper helper_of(render_state *rs, const expr *head)
{
    if (head->kind != X_PATH || head->helper == 0)
        return H_NONE;
    int k;
    return rs->bps != NULL && block_param(rs, head, &k) != NULL ? H_NONE : (helper)head->helper;
}

static ee_status call_value(render_state *rs, const call *c, size_t at, bool sub, val *out);

static ee_status eval(render_state *rs, const expr *e, size_t at, val *out)
{
    switch (e->kind) {
    case X_PATH: return path_value(rs, e, at, out);
    case X_LIT: *out = v_json(e->lit); return EE_OK;
    case X_STR: *out = (val){.k = V_STR, .s = e->str.s, .n = e->str.n}; return EE_OK;
    case X_UNDEF: *out = (val){.k = V_UNDEF}; return EE_OK;
    case X_SUB: return call_value(rs, e->sub, at, true, out);
    }
    *out = (val){.k = V_UNDEF};
    return EE_OK;
}

COLD static ee_status missing_helper(const call *c, size_t at)
{
    const expr *h = &c->head;
    return ee__error(EE_ENOTFOUND, "template: missing helper \"%.*s\" at byte %zu",
                     (int)(h->orig.n > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : h->orig.n),
                     h->orig.s != NULL ? h->orig.s : "", at);
}

static ee_status eval_all(render_state *rs, const call *c, size_t at)
{
    val v;
    for (size_t i = 0; i < c->np; i++) {
        ee_status st = eval(rs, &c->params[i], at, &v);
        if (st != EE_OK)
            return st;
    }
    for (size_t i = 0; i < c->nh; i++) {
        ee_status st = eval(rs, &c->hvals[i], at, &v);
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

/* lookup obj key: obj[key]; a falsy obj is the answer itself; with another
 * number of arguments handlebars.js's helper fails. */
NOINLINE static ee_status helper_lookup(render_state *rs, const call *c, size_t at, val *out)
{
    val obj = {.k = V_UNDEF}, key = {.k = V_UNDEF};
    ee_status st = c->np > 0 ? eval(rs, &c->params[0], at, &obj) : EE_OK;
    if (st == EE_OK && c->np > 1)
        st = eval(rs, &c->params[1], at, &key);
    for (size_t i = 0; st == EE_OK && i < c->nh; i++) {
        val ignored;
        st = eval(rs, &c->hvals[i], at, &ignored);
    }
    if (st != EE_OK)
        return st;
    if (c->np > 0 && !v_truthy(obj)) {
        *out = obj;
        return EE_OK;
    }
    if (c->np != 2)
        return ee__error(EE_EPARSE, "template: lookup at byte %zu needs two arguments", at);
    seg k;
    size_t mark;
    if ((st = key_of(rs, key, &k, &mark)) != EE_OK)
        return st;
    rs->work++;
    *out = member(obj, k.s, k.n);
    key_done(rs, mark);
    return EE_OK;
}

/* The value of a mustache or subexpression: a helper's result, or a path. */
static ee_status call_value(render_state *rs, const call *c, size_t at, bool sub, val *out)
{
    helper h = helper_of(rs, &c->head);
    if (h == H_LOOKUP)
        return helper_lookup(rs, c, at, out);
    if (h == H_LOG) {
        *out = (val){.k = V_UNDEF};
        return eval_all(rs, c, at);
    }
    if (h != H_NONE)
        return ee__error(EE_EPARSE, "template: {{%.*s}} at byte %zu is a block helper: use {{#%.*s}}",
                         (int)c->head.orig.n, c->head.orig.s, at, (int)c->head.orig.n,
                         c->head.orig.s);
    int k;
    if (rs->bps != NULL && c->head.kind == X_PATH && c->head.nseg == 1 &&
        block_param(rs, &c->head, &k) != NULL)
        return eval(rs, &c->head, at, out); /* a block parameter: its arguments are ignored */
    if (c->np > 0)
        return missing_helper(c, at);
    /* (name) and {{name k=v}} call what name holds: handlebars.js fails on a
     * value, and its helperMissing answers undefined for nothing */
    bool called = sub || c->nh > 0;
    ee_status st = called ? eval_all(rs, c, at) : EE_OK;
    if (st == EE_OK)
        st = eval(rs, &c->head, at, out);
    if (st == EE_OK && called && v_truthy(*out))
        return missing_helper(c, at);
    if (st == EE_OK && called)
        *out = (val){.k = V_UNDEF};
    return st;
}

static ee_status render_list(render_state *rs, const nodelist *l);

/* handlebars.js runs a program's decorators when it makes the program (a
 * block's, when the block is reached; the template's, when it starts): only
 * {{#*inline}} is supported. */
COLD static ee_status decorators_run(const nodelist *l);

static ee_status decorators(const nodelist *l)
{
    return l->bad_deco == 0 && !l->has_inline ? EE_OK : decorators_run(l);
}

COLD static ee_status decorators_run(const nodelist *l)
{
    if (l->bad_deco != 0)
        return ee__error(EE_EPARSE, "template: decorators other than {{#*inline}} are not supported "
                                    "(byte %zu)", l->bad_deco - 1);
    /* {{#*inline}} makes its own program then */
    for (size_t i = 0; l->has_inline && i < l->n; i++) {
        ee_status st = l->v[i].kind == N_INLINE ? decorators_run(&l->v[i].prog) : EE_OK;
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

static ee_status block_decorators(const node *nd)
{
    ee_status st = nd->has_prog ? decorators(&nd->prog) : EE_OK;
    return st == EE_OK && nd->has_inv ? decorators(&nd->inv) : st;
}

/* A program with context `ctx` (pushed when it != the current one, as
 * handlebars.js does for ../), data frame `d`, and its inline partials in
 * scope while it runs. */
static ee_status run(render_state *rs, const nodelist *l, val ctx, const dframe *d)
{
    if (l->n == 0)
        return end_sum(rs); /* an empty program (or none) returns "" */
    const cframe *saved_ctx = rs->ctx;
    const dframe *saved_data = rs->data;
    const iscope *saved_scope = rs->scope;
    val saved_cur = rs->cur;
    cframe pushed = {ctx, rs->ctx};
    /* inline partials keep the ../ chain and block parameters from before
     * this program's own (a parameter of the block defining one fails in
     * it, as in handlebars.js) */
    bpframe own;
    iscope inl;
    if (l->has_inline) {
        if (rs->bps != NULL && rs->bps->prog == l) {
            own = *rs->bps;
            own.poison = true;
        }
        inl = (iscope){l, rs->ctx, rs->bps != NULL && rs->bps->prog == l ? &own : rs->bps,
                       rs->scope, rs->tmpl};
        rs->scope = &inl;
    }
    if (rs->ctx == NULL ||
        !((ctx.k == V_JSON && rs->ctx->v.k == V_JSON && ctx.j == rs->ctx->v.j) ||
          v_loose_eq(rs, ctx, rs->ctx->v) ||
          (ctx.k == V_JSON && ctx.j == rs->nullctx.j && rs->ctx->v.k == V_JSON &&
           json_is_null(rs->ctx->v.j))))
        rs->ctx = &pushed;
    rs->cur = ctx;
    ee_status st = EE_OK;
    rs->data = d;
    if (st == EE_OK)
        st = render_list(rs, l);
    rs->ctx = saved_ctx;
    rs->cur = saved_cur;
    rs->data = saved_data;
    rs->scope = saved_scope;
    return st;
}

/* run() with the block's parameters (if it declares any) bound to the nv
 * first of a, b. */
static ee_status run_bp(render_state *rs, const node *nd, const nodelist *l, val ctx, val a, val b,
                        int nv, bool poison, const dframe *d)
{
    if (nd->c.nbp == 0 || l->n == 0)
        return run(rs, l, ctx, d);
    bpframe f = {&nd->c, {a, b}, nv, poison, rs->bps, l};
    const bpframe *saved = rs->bps;
    rs->bps = &f;
    ee_status st = run(rs, l, ctx, d);
    rs->bps = saved;
    return st;
}

static const nodelist no_program = {0};

static const nodelist *fn_of(const node *nd) { return nd->has_prog ? &nd->prog : &no_program; }
static const nodelist *inverse_of(const node *nd) { return nd->has_inv ? &nd->inv : &no_program; }

/* `this` for a helper: the context, or {} where it is null or undefined. */
static val this_of(const render_state *rs) { return v_nullish(rs->cur) ? rs->nullctx : rs->cur; }

/* The block's program (options.fn) with its parameters; in {{^name as |x|}}
 * the parameters belong to the inverse, which gets no values for them. */
static ee_status run_fn(render_state *rs, const node *nd, val ctx, val a, val b, int nv,
                        bool poison, const dframe *d)
{
    if (nd->inverted)
        return run(rs, fn_of(nd), ctx, d);
    return run_bp(rs, nd, fn_of(nd), ctx, a, b, nv, poison, d);
}

static ee_status run_inv(render_state *rs, const node *nd, val ctx, const dframe *d)
{
    if (!nd->inverted)
        return run(rs, inverse_of(nd), ctx, d);
    return run_bp(rs, nd, inverse_of(nd), ctx, ctx, ctx, 0, true, d);
}

typedef struct {
    size_t idx;
    const char *key;
    size_t klen;
    json_t *item;
} member_ref;

static int by_index(const void *a, const void *b)
{
    size_t x = ((const member_ref *)a)->idx, y = ((const member_ref *)b)->idx;
    return x < y ? -1 : x > y;
}

static ee_status each_item(render_state *rs, const node *nd, dframe *d, size_t i, size_t count,
                           val key, val item)
{
    d->index = (json_int_t)i;
    d->key = key;
    d->first = i == 0;
    d->last = i + 1 == count;
    ee_status st = charge(rs, 1);
    return st != EE_OK ? st : run_fn(rs, nd, item, item, key, 2, false, d);
}

static ee_status each(render_state *rs, const node *nd, val v)
{
    /* with items each returns a string: what is held is written first,
     * and each item's program sums on its own */
    if (((v.k == V_JSON && json_is_array(v.j) && json_array_size(v.j) > 0) ||
         (v.k == V_JSON && json_is_object(v.j) && json_object_size(v.j) > 0))) {
        ee_status st = end_sum(rs);
        if (st != EE_OK)
            return st;
    }
    dframe d = rs->data != NULL ? *rs->data : (dframe){0};
    d.parent = rs->data;
    d.iter = true;
    size_t count = 0;
    ee_status st = EE_OK;
    if (v.k == V_JSON && json_is_array(v.j)) {
        count = json_array_size(v.j);
        for (size_t i = 0; st == EE_OK && i < count; i++)
            st = each_item(rs, nd, &d, i, count, (val){.k = V_INT, .i = (json_int_t)i},
                           v_json(json_array_get(v.j, i)));
    } else if (v.k == V_JSON && json_is_object(v.j)) {
        /* Object.keys order: array indexes ascending, then the others as
         * inserted */
        count = json_object_size(v.j);
        const char *key;
        size_t klen, idx, nint = 0;
        json_t *item;
        json_object_keylen_foreach((json_t *)v.j, key, klen, item) {
            if (array_index(key, klen, &idx))
                nint++;
        }
        member_ref *order = NULL;
        if (nint > 0) {
            if ((st = charge(rs, count)) != EE_OK)
                return st;
            if ((order = malloc(count * sizeof *order)) == NULL)
                return ee__error(EE_ENOMEM, "out of memory rendering a template");
            size_t a = 0, b = nint;
            json_object_keylen_foreach((json_t *)v.j, key, klen, item) {
                if (array_index(key, klen, &idx))
                    order[a++] = (member_ref){idx, key, klen, item};
                else
                    order[b++] = (member_ref){0, key, klen, item};
            }
            qsort(order, nint, sizeof *order, by_index);
            for (size_t i = 0; st == EE_OK && i < count; i++)
                st = each_item(rs, nd, &d, i, count,
                               (val){.k = V_STR, .s = order[i].key, .n = order[i].klen},
                               v_json(order[i].item));
            free(order);
        } else {
            size_t i = 0;
            json_object_keylen_foreach((json_t *)v.j, key, klen, item) {
                if (st == EE_OK)
                    st = each_item(rs, nd, &d, i, count, (val){.k = V_STR, .s = key, .n = klen},
                                   v_json(item));
                i++;
            }
        }
    }
    if (st != EE_OK)
        return st;
    return count == 0 ? run_inv(rs, nd, this_of(rs), rs->data) : EE_OK;
}

static ee_status hash_true(render_state *rs, const call *c, const char *key, size_t at, bool *out)
{
    *out = false;
    for (size_t i = 0; i < c->nh; i++) {
        val v;
        ee_status st = eval(rs, &c->hvals[i], at, &v);
        if (st != EE_OK)
            return st;
    }
    for (size_t i = 0; i < c->nh; i++) {
        if (seg_is(c->hkeys[i], key)) { /* the first of equal keys wins */
            val v;
            ee_status st = eval(rs, &c->hvals[i], at, &v);
            *out = v_truthy(v);
            return st;
        }
    }
    return EE_OK;
}

static ee_status call_pblock(render_state *rs, val *v);
static ee_status append_raw(render_state *rs, val v);

static ee_status render_block(render_state *rs, const node *nd)
{
    const call *c = &nd->c;
    helper h = helper_of(rs, &c->head);
    val here = this_of(rs);
    val v;
    ee_status st = block_decorators(nd);
    if (st != EE_OK)
        return st;
    const char *hname = h == H_IF ? "#if" : h == H_UNLESS ? "#unless" : h == H_WITH ? "#with" : "#each";
    if ((h == H_IF || h == H_UNLESS || h == H_WITH || h == H_EACH) && c->np != 1)
        return ee__error(EE_EPARSE, "template: %s at byte %zu needs exactly one argument", hname,
                         nd->at);
    switch (h) {
    case H_IF:
    case H_UNLESS: {
        bool zero;
        if ((st = eval(rs, &c->params[0], nd->at, &v)) != EE_OK ||
            (st = hash_true(rs, c, "includeZero", nd->at, &zero)) != EE_OK ||
            (v.k == V_PBLOCK && (st = call_pblock(rs, &v)) != EE_OK))
            return st;
        bool yes = !((!zero && !v_truthy(v)) || v_empty(v));
        if (h == H_UNLESS)
            yes = !yes;
        return yes ? run_fn(rs, nd, here, v, v, 0, true, rs->data) : run_inv(rs, nd, here, rs->data);
    }
    case H_WITH:
        if ((st = eval(rs, &c->params[0], nd->at, &v)) != EE_OK || (v.k == V_PBLOCK && (st = call_pblock(rs, &v)) != EE_OK))
            return st;
        return v_empty(v) ? run_inv(rs, nd, here, rs->data)
                          : run_fn(rs, nd, v, v, v, 1, false, rs->data);
    case H_EACH:
        if ((st = eval(rs, &c->params[0], nd->at, &v)) != EE_OK || (v.k == V_PBLOCK && (st = call_pblock(rs, &v)) != EE_OK))
            return st;
        return each(rs, nd, v);
    case H_LOOKUP:
        /* a helper's block form prints what it returns, not escaped */
        if ((st = helper_lookup(rs, c, nd->at, &v)) != EE_OK)
            return st;
        return append_raw(rs, v);
    case H_LOG:
        st = eval_all(rs, c, nd->at);
        return st != EE_OK ? st : end_sum(rs);
    case H_NONE:
        if ((st = call_value(rs, c, nd->at, false, &v)) != EE_OK)
            return st;
        if (c->nh > 0 && c->np == 0 && !(rs->bps != NULL && block_param(rs, &c->head, &(int){0})))
            return end_sum(rs); /* helperMissing's undefined: the block prints "" */
        break;
    }
    /* handlebars' blockHelperMissing over a plain value; its `this` is the
     * context as it is (no nullContext) */
    here = rs->cur;
    if (v.k == V_BOOL ? v.b : v.k == V_JSON && json_is_true(v.j))
        return run_fn(rs, nd, here, v, v, 0, true, rs->data);
    if (v_nullish(v) || (v.k == V_BOOL && !v.b) || (v.k == V_JSON && json_is_false(v.j)))
        return run_inv(rs, nd, here, rs->data);
    if (v.k == V_JSON && json_is_array(v.j))
        return json_array_size(v.j) > 0 ? each(rs, nd, v) : run_inv(rs, nd, here, rs->data);
    return run_fn(rs, nd, v, v, v, 0, false, rs->data);
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

/* The name an {{#*inline}} defines (its first argument, as a string). */
static bool inline_named(const node *def, const char *name, size_t nlen)
{
    if (def->c.np == 0)
        return nlen == 9 && memcmp(name, "undefined", 9) == 0;
    const expr *e = &def->c.params[0];
    if (e->kind == X_STR)
        return e->str.n == nlen && memcmp(e->str.s, name, nlen) == 0;
    if (e->kind == X_PATH || e->kind == X_SUB)
        return false; /* names computed from data are not supported */
    return e->orig.n == nlen && memcmp(e->orig.s, name, nlen) == 0;
}

typedef struct {
    const node *inl;        /* an {{#*inline}} definition */
    const iscope *fr;       /* the program defining it */
    const json_t *text;     /* a partial of partials_json */
    const pblock *pb;       /* @partial-block */
} partial_ref;

/* The partial a name refers to: an inline one in scope (innermost first,
 * the last definition of a program), else one of partials_json. */
static ee_status find_partial(render_state *rs, const char *name, size_t nlen, partial_ref *out)
{
    *out = (partial_ref){0};
    for (const iscope *f = rs->scope; f != NULL; f = f->up) {
        const node *hit = NULL;
        for (size_t i = 0; i < f->prog->n; i++) {
            const node *d = &f->prog->v[i];
            if (d->kind == N_INLINE && inline_named(d, name, nlen))
                hit = d;
        }
        ee_status st = charge(rs, 1 + f->prog->n / 16);
        if (st != EE_OK)
            return st;
        if (hit != NULL) {
            if (hit->has_prog) {
                out->inl = hit;
                out->fr = f;
            }
            return EE_OK; /* {{*inline "x"}} defines x as nothing */
        }
    }
    const json_t *p = rs->partials ? json_object_getn(rs->partials, name, nlen) : NULL;
    out->text = json_is_string(p) ? p : NULL;
    return EE_OK;
}

/* extend({}, context, hash): the context's own members (an array's items,
 * a string's characters), then the hash's. */
COLD static ee_status partial_context(render_state *rs, const node *nd, val *ctx)
{
    const call *c = &nd->c;
    json_t *merged = json_object();
    if (merged == NULL || json_array_append_new(rs->scratch, merged) != 0)
        return ee__error(EE_ENOMEM, "out of memory rendering a partial");
    ee_status st = EE_OK;
    const char *s;
    size_t n;
    if (ctx->k == V_JSON && json_is_object(ctx->j)) {
        if ((st = charge(rs, json_object_size(ctx->j))) != EE_OK)
            return st;
        if (json_object_update(merged, (json_t *)ctx->j) != 0)
            return ee__error(EE_ENOMEM, "out of memory rendering a partial");
    } else if (ctx->k == V_JSON && json_is_array(ctx->j)) {
        size_t i;
        json_t *item;
        json_array_foreach(ctx->j, i, item) {
            char k[24];
            int kn = snprintf(k, sizeof k, "%zu", i);
            if ((st = charge(rs, 1)) != EE_OK)
                return st;
            if (json_object_setn_nocheck(merged, k, (size_t)kn, item) != 0)
                return ee__error(EE_ENOMEM, "out of memory rendering a partial");
        }
    } else if (v_string(*ctx, &s, &n)) {
        seg ch;
        for (size_t i = 0; utf16_at(s, n, i, &ch); i++) {
            char k[24];
            int kn = snprintf(k, sizeof k, "%zu", i);
            if ((st = charge(rs, 1)) != EE_OK)
                return st;
            if (json_object_setn_new_nocheck(merged, k, (size_t)kn, json_stringn_nocheck(ch.s, ch.n)) != 0)
                return ee__error(EE_ENOMEM, "out of memory rendering a partial");
        }
    }
    /* handlebars builds the hash from its last pair to its first: the
     * first of two equal keys wins, and new keys come in reverse */
    for (size_t r = c->nh; r-- > 0;) {
        size_t i = r;
        val hv;
        if ((st = eval(rs, &c->hvals[i], nd->at, &hv)) != EE_OK)
            return st;
        json_t *j = hv.k == V_JSON ? json_incref((json_t *)hv.j)
                    : hv.k == V_INT ? json_integer(hv.i)
                    : hv.k == V_BOOL ? json_boolean(hv.b)
                    : hv.k == V_STR ? json_stringn_nocheck(hv.s, hv.n)
                                    : NULL;
        if (hv.k == V_UNDEF || hv.k == V_PBLOCK)
            j = &undefined_member;
        if (j == NULL || json_object_setn_new_nocheck(merged, c->hkeys[i].s, c->hkeys[i].n, j) != 0)
            return ee__error(EE_ENOMEM, "out of memory rendering a partial");
    }
    *ctx = v_json(merged);
    return EE_OK;
}

/* Render a partial's tree in a fresh context stack (../ finds nothing). */
NOINLINE static ee_status render_text_partial(render_state *rs, const json_t *p, val ctx,
                                     const iscope *caller_scope)
{
    size_t len = json_string_length(p);
    if (len > EE__TEMPLATE_MAX_TEMPLATE)
        return ee__error(EE_ETOOBIG, "partial of %zu bytes exceeds %d", len, EE__TEMPLATE_MAX_TEMPLATE);
    ee_status st = charge(rs, 1 + len / EE__TEMPLATE_BYTES_PER_UNIT);
    if (st != EE_OK)
        return st;
    tree t;
    st = parse(json_string_value(p), len, &t);
    if (st == EE_OK)
        st = decorators(&t.root);
    if (st == EE_OK && t.root.n > 0) {
        const cframe *saved_ctx = rs->ctx;
        const bpframe *saved_bps = rs->bps;
        val saved_cur = rs->cur;
        const void *saved_tmpl = rs->tmpl;
        const callout *saved_outs = rs->outs;
        callout out = {rs->tmpl, caller_scope, rs->outs};
        rs->ctx = NULL;
        rs->bps = NULL;
        rs->tmpl = &t.root;
        rs->outs = &out;
        st = run(rs, &t.root, ctx, rs->data);
        rs->ctx = saved_ctx;
        rs->cur = saved_cur;
        rs->bps = saved_bps;
        rs->tmpl = saved_tmpl;
        rs->outs = saved_outs;
    }
    tree_free(&t);
    return st;
}

/* Run a program captured elsewhere (an inline partial, a partial block)
 * with its own ../ chain and block parameters. */
static ee_status render_captured(render_state *rs, const nodelist *l, const cframe *cctx,
                                 const bpframe *cbps, const iscope *scope, const void *tmpl,
                                 val ctx, const dframe *d)
{
    const cframe *saved_ctx = rs->ctx;
    const bpframe *saved_bps = rs->bps;
    const iscope *saved_scope = rs->scope;
    const void *saved_tmpl = rs->tmpl;
    rs->ctx = cctx;
    rs->bps = cbps;
    rs->scope = scope;
    rs->tmpl = tmpl;
    ee_status st = charge(rs, 1);
    if (st == EE_OK)
        st = run(rs, l, ctx, d);
    rs->ctx = saved_ctx;
    rs->bps = saved_bps;
    rs->scope = saved_scope;
    rs->tmpl = saved_tmpl;
    return st;
}

/* The partials in scope of template `tmpl` now: here's if it is the one
 * running, else what it had when it called out. */
static const iscope *scope_of(const render_state *rs, const void *tmpl, const iscope *here)
{
    if (tmpl == rs->tmpl)
        return here;
    for (const callout *o = rs->outs; o != NULL; o = o->up)
        if (o->tmpl == tmpl)
            return o->scope;
    return here;
}

/* if, unless, with and each call a function they are given: the block of
 * @partial-block, rendered with no context and no data, is then the value. */
COLD static ee_status call_pblock(render_state *rs, val *v)
{
    if (v->k != V_PBLOCK)
        return EE_OK;
    dframe d = {.pb = v->pb->outer, .no_root = true};
    size_t mark = rs->len;
    bool held = rs->acc_open; /* scratch text, not output */
    int held_count = rs->acc_count;
    double held_sum = rs->acc_sum;
    val held_first = rs->acc_first;
    rs->acc_open = false;
    ee_status st = render_captured(rs, v->pb->body, v->pb->ctx, v->pb->bps, v->pb->scope,
                                   v->pb->tmpl, (val){.k = V_UNDEF}, &d);
    if (st == EE_OK)
        st = end_sum(rs);
    rs->acc_open = held;
    rs->acc_count = held_count;
    rs->acc_sum = held_sum;
    rs->acc_first = held_first;
    if (st != EE_OK)
        return st;
    json_t *text = json_stringn_nocheck(rs->buf + mark, rs->len - mark);
    key_done(rs, mark);
    if (text == NULL || json_array_append_new(rs->scratch, text) != 0)
        return ee__error(EE_ENOMEM, "out of memory rendering a partial block");
    *v = v_json(text);
    return EE_OK;
}

COLD static ee_status not_found(const char *name, size_t nlen, size_t at)
{
    return ee__error(EE_ENOTFOUND, "template: the partial \"%.*s\" (byte %zu) could not be found",
                     (int)(nlen > NAME_MAX_SHOWN ? NAME_MAX_SHOWN : nlen), name, at);
}

/* {{> name}} and {{#> name}}block{{/name}}. */
NOINLINE static ee_status render_partial(render_state *rs, const node *nd)
{
    const call *c = &nd->c;
    seg name;
    size_t mark = rs->len;
    bool dynamic = c->head.kind == X_SUB;
    ee_status st = EE_OK;
    if (dynamic) {
        val dyn;
        if ((st = call_value(rs, c->head.sub, nd->at, false, &dyn)) != EE_OK)
            return st;
        /* a falsy name looks up "undefined", as handlebars.js */
        if ((st = key_of(rs, v_truthy(dyn) ? dyn : (val){.k = V_UNDEF}, &name, &mark)) != EE_OK)
            return st;
    } else {
        name = c->head.orig;
    }
    /* the name outlives what the context's evaluation may write */
    char *own = NULL;
    if (rs->len > mark) {
        if ((own = malloc(name.n + 1)) == NULL)
            return ee__error(EE_ENOMEM, "out of memory rendering a partial");
        memcpy(own, name.s, name.n);
        name.s = own;
        key_done(rs, mark);
    }
    partial_ref found = {0};
    if (!dynamic && seg_is(name, "@partial-block"))
        found.pb = rs->data != NULL ? rs->data->pb : NULL;
    else
        st = find_partial(rs, name.s, name.n, &found);
    val ctx = rs->cur;
    if (st == EE_OK && c->np == 1)
        st = eval(rs, &c->params[0], nd->at, &ctx);
    if (st == EE_OK && c->nh > 0)
        st = partial_context(rs, nd, &ctx);
    if (st == EE_OK && found.inl == NULL && found.text == NULL && found.pb == NULL &&
        nd->kind != N_PBLOCK)
        st = not_found(name.s, name.n, nd->at);
    if (st != EE_OK || rs->depth == EE__TEMPLATE_MAX_DEPTH) {
        free(own);
        return st != EE_OK ? st
                           : ee__error(EE_ETOOBIG, "template: blocks and partials nested deeper than %d",
                                       EE__TEMPLATE_MAX_DEPTH);
    }
    /* a partial block: @partial-block inside is this block, and the inline
     * partials it defines are the partial's too */
    dframe d = rs->data != NULL ? *rs->data : (dframe){0};
    pblock pb = {fn_of(nd), rs->ctx, rs->bps, rs->scope, rs->data ? rs->data->pb : NULL, rs->tmpl};
    iscope body_inlines = {fn_of(nd), rs->ctx, rs->bps, rs->scope, rs->tmpl};
    const iscope *saved_scope = rs->scope;
    const dframe *dd = rs->data;
    if (nd->kind == N_PBLOCK) {
        d.parent = rs->data;
        d.pb = &pb;
        dd = &d;
        if (found.inl == NULL && found.text == NULL && found.pb == NULL)
            found.pb = &pb; /* the partial is missing: the block stands in */
    }
    if (nd->kind == N_PBLOCK && (st = block_decorators(nd)) != EE_OK) {
        free(own);
        return st;
    }
    /* a partial of partials_json returns a string, and so does an indented
     * one; an inline partial or a partial block returns its program's value */
    if ((found.text != NULL || nd->indent_len > 0) && (st = end_sum(rs)) != EE_OK) {
        free(own);
        return st;
    }
    size_t from = rs->len;
    if (found.pb != NULL) {
        /* the block runs where it was written, with the data of here and
         * @partial-block back to the one around it */
        dframe inner = *dd;
        inner.parent = dd;
        inner.pb = found.pb->outer;
        st = render_captured(rs, found.pb->body, found.pb->ctx, found.pb->bps, found.pb->scope,
                             found.pb->tmpl, ctx, &inner);
    } else {
        if (nd->kind == N_PBLOCK && fn_of(nd)->has_inline)
            rs->scope = &body_inlines;
        if (found.inl != NULL) {
            st = render_captured(rs, &found.inl->prog, found.fr->ctx, found.fr->bps,
                                 scope_of(rs, found.fr->tmpl, saved_scope), found.fr->tmpl, ctx, dd);
        } else {
            const dframe *saved_data = rs->data;
            rs->data = dd;
            st = render_text_partial(rs, found.text, ctx, saved_scope);
            rs->data = saved_data;
        }
        rs->scope = saved_scope;
    }
    free(own);
    if (st == EE_OK)
        st = indent_since(rs, from, nd->indent, nd->indent_len);
    return st;
}

/* Write what is held (end_sum's numbers) and leave the sum: a string is
 * appended, if only "". */
static ee_status end_sum(render_state *rs)
{
    if (!rs->acc_open)
        return EE_OK;
    rs->acc_open = false;
    if (rs->acc_count == 0)
        return EE_OK;
    if (rs->acc_count == 1)
        return emit_val(rs, rs->acc_first, false);
    char num[48];
    return emit(rs, num, js_number(rs->acc_sum, num));
}

/* Append a value unescaped, as handlebars.js's `+` does: a number or a
 * boolean is held while the program has appended no string. */
static ee_status append_raw(render_state *rs, val v)
{
    double d;
    bool b = v.k == V_BOOL || (v.k == V_JSON && json_is_boolean(v.j));
    if (rs->acc_open && (b || v_number(v, &d))) {
        if (b)
            d = v_truthy(v) ? 1 : 0;
        if (rs->acc_count++ == 0)
            rs->acc_first = v;
        rs->acc_sum += d;
        return EE_OK;
    }
    ee_status st = end_sum(rs);
    return st != EE_OK ? st : emit_val(rs, v, false);
}

static ee_status render_node(render_state *rs, const node *nd)
{
    ee_status st = charge(rs, 1);
    if (st != EE_OK)
        return st;
    val v;
    switch (nd->kind) {
    case N_TEXT: return nd->len > 0 ? emit(rs, nd->s, nd->len) : EE_OK;
    case N_COMMENT:
    case N_INLINE: return EE_OK;
    case N_ESC:
    case N_RAW:
        if ((st = call_value(rs, &nd->c, nd->at, false, &v)) != EE_OK)
            return st;
        if (nd->kind == N_RAW)
            return append_raw(rs, v);
        if ((st = end_sum(rs)) != EE_OK)
            return st;
        return emit_val(rs, v, true);
    case N_BLOCK: return render_block(rs, nd);
    case N_PARTIAL:
    case N_PBLOCK: return render_partial(rs, nd);
    }
    return EE_OK;
}

static ee_status render_list(render_state *rs, const nodelist *l)
{
    if (rs->depth == EE__TEMPLATE_MAX_DEPTH)
        return ee__error(EE_ETOOBIG, "template: blocks and partials nested deeper than %d",
                         EE__TEMPLATE_MAX_DEPTH);
    rs->depth++;
    /* a program appended to a string starts its own sum, and ends it */
    bool fresh = !rs->acc_open;
    if (fresh) {
        rs->acc_open = true;
        rs->acc_count = 0;
        rs->acc_sum = 0;
    }
    ee_status st = EE_OK;
    for (size_t i = 0; st == EE_OK && i < l->n; i++)
        st = render_node(rs, &l->v[i]);
    if (st == EE_OK && fresh)
        st = end_sum(rs);
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
    tree t = {0};
    dframe top = {0};
    render_state rs = {.partials = json_is_object(partials) ? partials : NULL,
                       .root = v_json(data),
                       .data = &top,
                       .scratch = json_array()};
    json_t *nullctx = rs.scratch != NULL ? json_object() : NULL;
    bool made = nullctx != NULL && json_array_append_new(rs.scratch, nullctx) == 0;
    rs.nullctx = v_json(nullctx);
    ee_status st = made ? parse(tmpl, tlen, &t)
                        : ee__error(EE_ENOMEM, "out of memory rendering a template");
    if (st == EE_OK)
        st = decorators(&t.root);
    rs.tmpl = &t.root;
    if (st == EE_OK)
        st = emit(&rs, "", 0);
    if (st == EE_OK)
        st = run(&rs, &t.root, v_json(data), &top);
    tree_free(&t);
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
