/*
 * "pattern" and "patternProperties": ECMA-262 regular expressions run on
 * PCRE2.
 *
 * Each pattern is translated once at compile time, compiled with PCRE2
 * (JIT when available) and kept in the compiled schema; compiled PCRE2 code
 * is read-only and may be shared between threads. Matching uses per-
 * evaluation match data (ee__schema_matcher) and a match context carrying
 * hard limits, so a catastrophically backtracking pattern ends with a
 * "limit exceeded" answer instead of a hang.
 *
 * The translation (translate()) reads the pattern as ECMA-262 (with the u
 * flag, as JSON Schema's patterns are Unicode) and writes each construct in
 * the PCRE2 spelling of the same meaning:
 *   - PCRE2_UTF without PCRE2_UCP: \d \w \b stay ASCII as in ECMA-262
 *     (UCP would let \d match Arabic-Indic digits);
 *   - \s and \S are ECMA-262's Unicode white space, spelled out (a class
 *     holding \S becomes an alternation); \v is U+000B, not PCRE2's
 *     vertical space class;
 *   - "." is [^\n\r\u2028\u2029] (any character under the s modifier);
 *     "$" only at the very end (DOLLAR_ENDONLY); under the m modifier "^"
 *     and "$" are spelled as lookarounds on those line terminators;
 *   - [] matches nothing and [^] anything; a "[" inside a class is a
 *     plain character (PCRE2 would read [[:alpha:]] as a POSIX class);
 *   - \p{...} by ECMA-262's names (General_Category, Script, Script_
 *     Extensions, the binary properties) becomes PCRE2's spelling;
 *   - \uXXXX, surrogate pairs and \u{X...} are one code point each;
 *   - a back-reference to a group not (yet) set matches empty
 *     (MATCH_UNSET_BACKREF).
 * What is not ECMA-262 is refused rather than given PCRE2's meaning:
 * (?i) and other inline flags, (?P<n>...), (?#...), (?>...), possessive
 * quantifiers, \a \e \z \Q and every letter escape ECMA-262 does not
 * define, octal escapes, back-references to missing groups. The ES2025
 * modifiers (?ims-ims:...) are read. ECMA-262 that PCRE2 cannot run
 * (a lookbehind of unbounded length, \p and \w under the i modifier) is
 * EE_ENOTSUPPORTED; as a "regex" format value it is valid.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/core.h"
#include "schema/schema_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ee__schema_regex {
    pcre2_code *code;
    char *source;
};

struct ee__schema_matcher {
    pcre2_match_data *md;
    pcre2_match_context *mc;
};

/* ECMA-262 WhiteSpace and LineTerminator, in ALT_BSUX spelling (\\uhhhh;
 * \\x{...} is not recognised in that mode). */
#define ECMA_SPACES "\\t\\n\\u000b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029" \
                    "\\u202f\\u205f\\u3000\\ufeff"

/* ECMA-262's General_Category values, long and short names (exact case;
 * PCRE2 matches names loosely and knows only the short ones). */
static const struct {
    const char *lng, *shrt;
} gc_names[] = {
    {"Letter", "L"}, {"Cased_Letter", "LC"}, {"Uppercase_Letter", "Lu"},
    {"Lowercase_Letter", "Ll"}, {"Titlecase_Letter", "Lt"}, {"Modifier_Letter", "Lm"},
    {"Other_Letter", "Lo"}, {"Mark", "M"}, {"Combining_Mark", "M"}, {"Nonspacing_Mark", "Mn"},
    {"Spacing_Mark", "Mc"}, {"Enclosing_Mark", "Me"}, {"Number", "N"},
    {"Decimal_Number", "Nd"}, {"digit", "Nd"}, {"Letter_Number", "Nl"}, {"Other_Number", "No"},
    {"Punctuation", "P"}, {"punct", "P"}, {"Connector_Punctuation", "Pc"},
    {"Dash_Punctuation", "Pd"}, {"Open_Punctuation", "Ps"}, {"Close_Punctuation", "Pe"},
    {"Initial_Punctuation", "Pi"}, {"Final_Punctuation", "Pf"}, {"Other_Punctuation", "Po"},
    {"Symbol", "S"}, {"Math_Symbol", "Sm"}, {"Currency_Symbol", "Sc"},
    {"Modifier_Symbol", "Sk"}, {"Other_Symbol", "So"}, {"Separator", "Z"},
    {"Space_Separator", "Zs"}, {"Line_Separator", "Zl"}, {"Paragraph_Separator", "Zp"},
    {"Other", "C"}, {"Control", "Cc"}, {"cntrl", "Cc"}, {"Format", "Cf"},
    {"Surrogate", "Cs"}, {"Private_Use", "Co"}, {"Unassigned", "Cn"},
};

/* ECMA-262's binary properties (table "Binary Unicode property aliases"),
 * long and short names. */
static const char *const binary_props[] = {
    "ASCII", "ASCII_Hex_Digit", "AHex", "Alphabetic", "Alpha", "Any", "Assigned",
    "Bidi_Control", "Bidi_C", "Bidi_Mirrored", "Bidi_M", "Case_Ignorable", "CI", "Cased",
    "Changes_When_Casefolded", "CWCF", "Changes_When_Casemapped", "CWCM",
    "Changes_When_Lowercased", "CWL", "Changes_When_NFKC_Casefolded", "CWKCF",
    "Changes_When_Titlecased", "CWT", "Changes_When_Uppercased", "CWU", "Dash",
    "Default_Ignorable_Code_Point", "DI", "Deprecated", "Dep", "Diacritic", "Dia", "Emoji",
    "Emoji_Component", "EComp", "Emoji_Modifier", "EMod", "Emoji_Modifier_Base", "EBase",
    "Emoji_Presentation", "EPres", "Extended_Pictographic", "ExtPict", "Extender", "Ext",
    "Grapheme_Base", "Gr_Base", "Grapheme_Extend", "Gr_Ext", "Hex_Digit", "Hex",
    "IDS_Binary_Operator", "IDSB", "IDS_Trinary_Operator", "IDST", "ID_Continue", "IDC",
    "ID_Start", "IDS", "Ideographic", "Ideo", "Join_Control", "Join_C",
    "Logical_Order_Exception", "LOE", "Lowercase", "Lower", "Math", "Noncharacter_Code_Point",
    "NChar", "Pattern_Syntax", "Pat_Syn", "Pattern_White_Space", "Pat_WS", "Quotation_Mark",
    "QMark", "Radical", "Regional_Indicator", "RI", "Sentence_Terminal", "STerm",
    "Soft_Dotted", "SD", "Terminal_Punctuation", "Term", "Unified_Ideograph", "UIdeo",
    "Uppercase", "Upper", "Variation_Selector", "VS", "White_Space", "space",
    "XID_Continue", "XIDC", "XID_Start", "XIDS",
};

static bool name_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(name, want, n) == 0;
}

static const char *gc_short(const char *name, size_t n)
{
    for (size_t i = 0; i < sizeof gc_names / sizeof gc_names[0]; i++)
        if (name_is(name, n, gc_names[i].lng) || name_is(name, n, gc_names[i].shrt))
            return gc_names[i].shrt;
    return NULL;
}

enum { PROP_OK, PROP_UNKNOWN, PROP_BEYOND_PCRE2 };

/* \p{name} or \P{name} (`neg`) of ECMA-262 (`n` bytes at `name`) in the
 * PCRE2 spelling: General_Category=V / gc=V / V by either of its names
 * (PCRE2's short one; "LC" is its "L&"), Script=V / sc=V (PCRE2's sc:V;
 * its bare \p{V} is Script_Extensions), Script_Extensions=V / scx=V, and
 * the binary properties (Assigned is \P{Cn}). PROP_UNKNOWN for a name
 * ECMA-262 does not have; PROP_BEYOND_PCRE2 for one PCRE2 10.42 lacks.
 * Script names are left to PCRE2, which matches them loosely. */
static int put_property(ee__text *b, const char *name, size_t n, bool neg)
{
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '=')
            return PROP_UNKNOWN;
    const char *eq = memchr(name, '=', n), *gc = NULL, *prefix = "";
    const char *v = name;
    size_t vn = n;
    if (eq == NULL) {
        gc = gc_short(name, n);
        if (gc == NULL && name_is(name, n, "Assigned")) {
            gc = "Cn";
            neg = !neg;
        } else if (name_is(name, n, "Changes_When_NFKC_Casefolded") ||
                   name_is(name, n, "CWKCF")) {
            return PROP_BEYOND_PCRE2;
        } else if (gc == NULL) {
            bool binary = false;
            for (size_t i = 0; i < sizeof binary_props / sizeof binary_props[0]; i++)
                binary |= name_is(name, n, binary_props[i]);
            if (!binary)
                return PROP_UNKNOWN;
        }
    } else {
        size_t kn = (size_t)(eq - name);
        v = eq + 1;
        vn = n - kn - 1;
        if (vn == 0 || memchr(v, '=', vn) != NULL)
            return PROP_UNKNOWN;
        bool sc = name_is(name, kn, "Script") || name_is(name, kn, "sc");
        bool scx = name_is(name, kn, "Script_Extensions") || name_is(name, kn, "scx");
        if (name_is(name, kn, "General_Category") || name_is(name, kn, "gc")) {
            if ((gc = gc_short(v, vn)) == NULL)
                return PROP_UNKNOWN;
        } else if ((!sc && !scx) || gc_short(v, vn) != NULL) {
            return PROP_UNKNOWN;
        } else {
            prefix = sc ? "sc:" : "scx:";
        }
    }
    ee__text_puts(b, neg ? "\\P{" : "\\p{");
    ee__text_puts(b, prefix);
    if (gc != NULL)
        ee__text_puts(b, strcmp(gc, "LC") == 0 ? "L&" : gc);
    else
        ee__text_add(b, v, vn);
    ee__text_puts(b, "}");
    return PROP_OK;
}

/* PCRE2's default nesting limit: deeper is refused before PCRE2 sees it. */
#define MAX_NEST 250

/* ECMA-262 line terminators, in ALT_BSUX spelling: what "." does not
 * match, and where "^" and "$" match under the m modifier. */
#define ECMA_LINE_ENDS "\\n\\r\\u2028\\u2029"

enum { G_DOTALL = 1, G_MULTILINE = 2, G_ICASE = 4, G_LOOKBEHIND = 8 };

/* The translation of one pattern: the ECMA-262 source is read once, each
 * construct checked and written out in the PCRE2 spelling of the same
 * meaning. */
typedef struct {
    const char *p;
    size_t len, i;
    ee__text out;
    size_t ncaps;                  /* capturing groups of the pattern */
    bool named;                    /* some of them are named */
    unsigned char group[MAX_NEST + 1]; /* G_* of each open group; [0] the pattern's */
    size_t depth;
    bool atom;                     /* what was just written can take a quantifier */
    const char *why;               /* not ECMA-262: why (static text) */
    const char *unsupported;       /* ECMA-262 that PCRE2 cannot mean: what */
    bool stopped;                  /* ... and the translation stopped there */
} tr;

static bool fail(tr *t, const char *why)
{
    if (t->why == NULL)
        t->why = why;
    return false;
}

static size_t refuse(tr *t, const char *why)
{
    fail(t, why);
    return 0;
}

/* ECMA-262 that PCRE2 cannot run: translation stops, the pattern is
 * refused as unsupported (a valid "regex" format all the same). */
static bool cannot(tr *t, const char *what)
{
    if (t->unsupported == NULL)
        t->unsupported = what;
    t->stopped = true;
    return fail(t, what);
}

/* ECMA-262 under the i modifier folds the case of what \p, \w and \b
 * match (/\p{Lu}/ui matches "b", /\w/ui the Kelvin sign); PCRE2 does
 * not. */
static void case_folds_class(tr *t, unsigned char n, bool in_class)
{
    if ((t->group[t->depth] & G_ICASE) != 0 && n != '\0' && strchr("pPwWbB", n) != NULL &&
        !(in_class && n == 'b') && t->unsupported == NULL)
        t->unsupported = "\\p, \\P, \\w, \\W, \\b or \\B under the i modifier (ECMA-262 "
                         "folds the case of what they match, PCRE2 does not)";
}

static bool hex4(const char *p, size_t len, size_t i)
{
    if (i + 4 > len)
        return false;
    for (size_t k = 0; k < 4; k++)
        if (!isxdigit((unsigned char)p[i + k]))
            return false;
    return true;
}

static unsigned hex_value(const char *p, size_t n)
{
    unsigned v = 0;
    for (size_t k = 0; k < n; k++) {
        char c = p[k];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* Capturing groups: "(" not followed by "?", and "(?<name>". */
static void count_captures(tr *t)
{
    bool in_class = false;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->p[i];
        if (c == '\\') {
            i++;
        } else if (in_class) {
            in_class = c != ']';
        } else if (c == '[') {
            in_class = true;
        } else if (c == '(') {
            if (i + 1 < t->len && t->p[i + 1] != '?') {
                t->ncaps++;
            } else if (i + 3 < t->len && t->p[i + 2] == '<' && t->p[i + 3] != '=' &&
                       t->p[i + 3] != '!') {
                t->ncaps++;
                t->named = true;
            } else if (i + 1 == t->len) {
                t->ncaps++;
            }
        }
    }
}

/* \uXXXX, a surrogate pair of them, or \u{X...} at p[i] == '\\' (p[i+1]
 * == 'u'): written as one code point; bytes consumed, 0 if malformed. */
static size_t unicode_escape(tr *t, size_t i, bool in_class)
{
    const char *p = t->p;
    char buf[16];
    if (i + 2 < t->len && p[i + 2] == '{') {
        size_t k = i + 3;
        while (k < t->len && isxdigit((unsigned char)p[k]))
            k++;
        if (k == i + 3 || k >= t->len || p[k] != '}' || k - (i + 3) > 8)
            return 0;
        unsigned v = hex_value(p + i + 3, k - (i + 3));
        if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            return 0;
        snprintf(buf, sizeof buf, "\\u{%x}", v);
        ee__text_puts(&t->out, buf);
        return k + 1 - i;
    }
    if (!hex4(p, t->len, i + 2))
        return 0;
    unsigned v = hex_value(p + i + 2, 4);
    if (v >= 0xD800 && v <= 0xDBFF && i + 7 < t->len && p[i + 6] == '\\' && p[i + 7] == 'u' &&
        hex4(p, t->len, i + 8)) {
        unsigned lo = hex_value(p + i + 8, 4);
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            snprintf(buf, sizeof buf, "\\u{%x}", 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00));
            ee__text_puts(&t->out, buf);
            return 12;
        }
    }
    if (v >= 0xD800 && v <= 0xDFFF) { /* a lone surrogate: no UTF-8 text holds one */
        if (in_class) {
            cannot(t, "a lone surrogate in a character class");
            return 0;
        }
        ee__text_puts(&t->out, "(?:(?!))");
        return 6;
    }
    ee__text_add(&t->out, p + i, 6);
    return 6;
}

/* One escape at p[i] == '\\' into `out` (a class body when in_class; *has_S
 * is set for "\S" there, which the class then spells itself). Bytes
 * consumed, 0 when it is not an ECMA-262 escape. Escapes PCRE2 reads
 * differently (\v, \0, \1 ...) are written in a spelling it reads the
 * ECMA way; letters ECMA-262 does not define (\a \e \h \z \Q ...) are
 * refused, since PCRE2 would give them a meaning. */
static size_t escape(tr *t, size_t i, bool in_class, bool *has_S)
{
    const char *p = t->p;
    ee__text *b = &t->out;
    if (i + 1 >= t->len)
        return refuse(t, "\\ at the end of the pattern");
    unsigned char n = (unsigned char)p[i + 1];
    t->atom = true;
    case_folds_class(t, n, in_class);
    switch (n) {
    case 'd': case 'D': case 'w': case 'W': case 'f': case 'n': case 'r': case 't':
        ee__text_add(b, p + i, 2);
        return 2;
    case 'v': /* PCRE2's \v is any vertical space; ECMA-262's is U+000B */
        ee__text_puts(b, "\\u000b");
        return 2;
    case 's':
        ee__text_puts(b, in_class ? ECMA_SPACES : "[" ECMA_SPACES "]");
        return 2;
    case 'S':
        if (in_class)
            *has_S = true;
        else
            ee__text_puts(b, "[^" ECMA_SPACES "]");
        return 2;
    case 'b': case 'B':
        if (in_class && n == 'B')
            return refuse(t, "\\B in a character class");
        t->atom = in_class; /* [\b] is a backspace; \b an assertion */
        ee__text_add(b, p + i, 2);
        return 2;
    case 'c':
        if (i + 2 >= t->len || !isalpha((unsigned char)p[i + 2]) || (unsigned char)p[i + 2] > 0x7F)
            return refuse(t, "\\c not followed by a letter");
        ee__text_add(b, p + i, 3);
        return 3;
    case 'x':
        if (i + 3 >= t->len || !isxdigit((unsigned char)p[i + 2]) ||
            !isxdigit((unsigned char)p[i + 3]))
            return refuse(t, "\\x not followed by two hexadecimal digits");
        ee__text_add(b, p + i, 4);
        return 4;
    case 'u': {
        size_t used = unicode_escape(t, i, in_class);
        if (used == 0)
            return refuse(t, "\\u not followed by 4 hexadecimal digits, a surrogate pair or "
                           "{code point}");
        return used;
    }
    case 'p': case 'P': {
        const char *close = i + 2 < t->len && p[i + 2] == '{'
                                ? memchr(p + i + 3, '}', t->len - (i + 3))
                                : NULL;
        if (close == NULL)
            return refuse(t, "\\p or \\P without {property}");
        int prop = put_property(b, p + i + 3, (size_t)(close - (p + i + 3)), n == 'P');
        if (prop == PROP_UNKNOWN)
            return refuse(t, "\\p{...} of a property ECMA-262 does not have");
        if (prop == PROP_BEYOND_PCRE2) {
            cannot(t, "\\p{Changes_When_NFKC_Casefolded}, which PCRE2 10.42 lacks");
            return 0;
        }
        return (size_t)(close - (p + i)) + 1;
    }
    case 'k': {
        const char *close = !in_class && t->named && i + 2 < t->len && p[i + 2] == '<'
                                ? memchr(p + i + 3, '>', t->len - (i + 3))
                                : NULL;
        if (close == NULL)
            return refuse(t, "\\k without <name> of a named group");
        ee__text_puts(b, "(?:");
        ee__text_add(b, p + i, (size_t)(close - (p + i)) + 1);
        ee__text_puts(b, ")");
        return (size_t)(close - (p + i)) + 1;
    }
    case '0':
        if (i + 2 < t->len && isdigit((unsigned char)p[i + 2]))
            return refuse(t, "octal escape");
        ee__text_puts(b, "\\u0000");
        return 2;
    case '\0': /* an escaped NUL character: itself (the translation is a C string) */
        ee__text_puts(b, "\\u0000");
        return 2;
    default:
        break;
    }
    if (n >= '1' && n <= '9') { /* a back-reference, read whole */
        size_t k = i + 1, num = 0;
        while (k < t->len && isdigit((unsigned char)p[k]) && num <= t->ncaps)
            num = num * 10 + (size_t)(p[k++] - '0');
        if (in_class || num > t->ncaps)
            return refuse(t, "back-reference to a group that does not exist");
        /* grouped: PCRE2's JIT fails a quantified back-reference to a group
         * not set yet ((a)?\\1{1,2}b on "b"), which ECMA-262 matches empty */
        char buf[40];
        snprintf(buf, sizeof buf, "(?:\\g{%zu})", num);
        ee__text_puts(b, buf);
        return k - i;
    }
    if (isalnum(n))
        return refuse(t, "escape of a letter or digit that ECMA-262 does not define");
    /* \- \/ \. \( \@ ...: the character itself, in both dialects */
    size_t clen = n < 0x80 ? 1 : n < 0xE0 ? 2 : n < 0xF0 ? 3 : 4;
    if (i + 1 + clen > t->len)
        clen = t->len - i - 1;
    ee__text_add(b, p + i, 1 + clen);
    return 1 + clen;
}

/* A character class at p[i] == '['. ECMA-262 has no nested classes or
 * POSIX [:name:], so a "[" inside is a plain character; "\S" (which
 * PCRE2's ASCII \S cannot stand for) makes the class an alternation. */
static bool char_class(tr *t)
{
    const char *p = t->p;
    size_t i = t->i + 1;
    bool neg = i < t->len && p[i] == '^', has_S = false;
    i += neg;
    ee__text saved = t->out, body = {0};
    ee__text_add(&body, "", 0);
    t->out = body;
    bool closed = false;
    while (i < t->len) {
        char c = p[i];
        if (c == ']') {
            closed = true;
            i++;
            break;
        }
        if (c == '\\') {
            size_t used = escape(t, i, true, &has_S);
            if (used == 0)
                break;
            i += used;
        } else if (c == '[') {
            ee__text_puts(&t->out, "\\[");
            i++;
        } else if (c == '\0') {
            ee__text_puts(&t->out, "\\u0000");
            i++;
        } else {
            ee__text_add(&t->out, &c, 1);
            i++;
        }
    }
    body = t->out;
    t->out = saved;
    if (!closed) {
        free(body.p);
        return t->why != NULL ? false : fail(t, "missing ] at the end of a character class");
    }
    if (body.oom)
        t->out.oom = true;
    const char *x = body.p != NULL ? body.p : "";
    if (!has_S && x[0] == '\0') {
        /* [] matches nothing, [^] anything; PCRE2's own empty classes do
         * not take a quantifier of zero ([]* matched nothing) */
        ee__text_puts(&t->out, neg ? "(?s:.)" : "(?!)");
    } else if (!has_S) {
        ee__text_puts(&t->out, neg ? "[^" : "[");
        ee__text_puts(&t->out, x);
        ee__text_puts(&t->out, "]");
    } else if (!neg) { /* [x\S]: in x, or not white space */
        if (x[0] != '\0') {
            ee__text_puts(&t->out, "(?:[");
            ee__text_puts(&t->out, x);
            ee__text_puts(&t->out, "]|");
        }
        ee__text_puts(&t->out, "[^" ECMA_SPACES "]");
        if (x[0] != '\0')
            ee__text_puts(&t->out, ")");
    } else { /* [^x\S]: white space not in x */
        if (x[0] != '\0') {
            ee__text_puts(&t->out, "(?![");
            ee__text_puts(&t->out, x);
            ee__text_puts(&t->out, "])");
        }
        ee__text_puts(&t->out, "[" ECMA_SPACES "]");
    }
    free(body.p);
    t->i = i;
    t->atom = true;
    return true;
}

/* A quantifier {n}, {n,}, {n,m} at p[i] == '{': its length, 0 if the
 * brace is a literal one. */
static size_t braced_quantifier(const tr *t, size_t i)
{
    size_t k = i + 1, digits = 0;
    while (k < t->len && isdigit((unsigned char)t->p[k]))
        k++, digits++;
    if (digits == 0)
        return 0;
    if (k < t->len && t->p[k] == ',') {
        k++;
        while (k < t->len && isdigit((unsigned char)t->p[k]))
            k++;
    }
    return k < t->len && t->p[k] == '}' ? k + 1 - i : 0;
}

/* "(" at p[i]: the group's kind, its modifiers (ES2025 (?ims-ims:...)),
 * refused for the PCRE and Python forms ((?i) (?P<n>...) (?#...) (?>...)
 * (?|...) (?R) (?(1)...) ...), whose meaning PCRE2 would give them. */
static bool open_group(tr *t)
{
    const char *p = t->p;
    size_t i = t->i + 1;
    if (t->depth >= MAX_NEST)
        return cannot(t, "parentheses nested more than 250 deep");
    unsigned char g = t->group[t->depth] & (G_DOTALL | G_MULTILINE | G_ICASE);
    if (i < t->len && p[i] == '?') {
        i++;
        if (i < t->len && (p[i] == ':' || p[i] == '=' || p[i] == '!')) {
            ee__text_add(&t->out, p + t->i, 3);
            i++;
        } else if (i + 1 < t->len && p[i] == '<' && (p[i + 1] == '=' || p[i + 1] == '!')) {
            ee__text_add(&t->out, p + t->i, 4);
            i += 2;
            g |= G_LOOKBEHIND;
        } else if (i < t->len && p[i] == '<') {
            const char *close = memchr(p + i, '>', t->len - i);
            if (close == NULL || close == p + i + 1)
                return fail(t, "(?< without a group name and >");
            /* PCRE2 10.42 takes ASCII names of at most 32 characters;
             * ECMA-262's may also hold "$" and Unicode letters */
            bool ascii = true;
            for (const char *c = p + i + 1; c < close; c++) {
                unsigned char u = (unsigned char)*c;
                if (u >= 0x80 || *c == '$' || *c == '\\')
                    ascii = false;
                else if (!(isalnum(u) || *c == '_') || (c == p + i + 1 && isdigit(u)))
                    return fail(t, "a group name that is not an identifier");
            }
            if (!ascii || close - (p + i + 1) > 32)
                return cannot(t, "a group name of more than 32 characters, or with \"$\" or "
                                 "non-ASCII letters");
            ee__text_add(&t->out, p + t->i, (size_t)(close - (p + t->i)) + 1);
            i = (size_t)(close - p) + 1;
        } else { /* modifiers: (?ims-ims:...) */
            unsigned on = 0, off = 0, *set = &on;
            bool minus = false;
            for (; i < t->len && p[i] != ':'; i++) {
                char c = p[i];
                unsigned bit = c == 'i' ? 1u : c == 'm' ? 2u : c == 's' ? 4u : 0u;
                if (c == '-' && !minus) {
                    minus = true;
                    set = &off;
                    continue;
                }
                if (bit == 0 || ((on | off) & bit) != 0)
                    return fail(t, "group syntax (?...) that ECMA-262 does not have (inline "
                                   "flags, Python or PCRE groups)");
                *set |= bit;
            }
            if (i >= t->len || (minus && off == 0))
                return fail(t, "group syntax (?...) that ECMA-262 does not have (inline flags, "
                               "Python or PCRE groups)");
            i++; /* ':' */
            ee__text_puts(&t->out, (on & 1u) ? "(?i:" : (off & 1u) ? "(?-i:" : "(?:");
            g = (unsigned char)((g | ((on & 4u) ? G_DOTALL : 0) | ((on & 2u) ? G_MULTILINE : 0) |
                                 ((on & 1u) ? G_ICASE : 0)) &
                                ~(((off & 4u) ? G_DOTALL : 0) | ((off & 2u) ? G_MULTILINE : 0) |
                                  ((off & 1u) ? G_ICASE : 0)));
        }
    } else {
        ee__text_puts(&t->out, "(");
    }
    t->group[++t->depth] = g;
    t->i = i;
    t->atom = false;
    return true;
}

/* The PCRE2 pattern for an ECMA-262 one (malloc'd), or NULL with *why
 * (not ECMA-262) or without (ENOMEM). *unsupported (static text): the
 * pattern is ECMA-262, but PCRE2 would not mean the same by the
 * translation. */
static char *translate(const char *p, size_t len, const char **why, char *why_buf, size_t cap,
                       const char **unsupported)
{
    tr t = {.p = p, .len = len};
    count_captures(&t);
    ee__text_add(&t.out, "", 0);
    while (t.i < len && t.why == NULL) {
        char ch = p[t.i];
        unsigned char g = t.group[t.depth];
        bool dummy;
        switch (ch) {
        case '\\': {
            size_t used = escape(&t, t.i, false, &dummy);
            t.i += used;
            break;
        }
        case '[':
            char_class(&t);
            break;
        case '(':
            open_group(&t);
            break;
        case ')':
            if (t.depth == 0) {
                fail(&t, "unmatched )");
                break;
            }
            ee__text_puts(&t.out, ")");
            t.atom = (t.group[t.depth--] & G_LOOKBEHIND) == 0;
            t.i++;
            break;
        case '|':
            ee__text_puts(&t.out, "|");
            t.atom = false;
            t.i++;
            break;
        case '^':
            ee__text_puts(&t.out, (g & G_MULTILINE) ? "(?<![^" ECMA_LINE_ENDS "])" : "^");
            t.atom = false;
            t.i++;
            break;
        case '$':
            ee__text_puts(&t.out, (g & G_MULTILINE) ? "(?![^" ECMA_LINE_ENDS "])" : "$");
            t.atom = false;
            t.i++;
            break;
        case '.':
            ee__text_puts(&t.out, (g & G_DOTALL) ? "(?s:.)" : "[^" ECMA_LINE_ENDS "]");
            t.atom = true;
            t.i++;
            break;
        case '*': case '+': case '?': case '{': {
            size_t q = ch == '{' ? braced_quantifier(&t, t.i) : 1;
            if (q == 0) { /* a literal brace */
                ee__text_puts(&t.out, "\\{");
                t.atom = true;
                t.i++;
                break;
            }
            if (!t.atom) {
                fail(&t, "nothing to repeat (a quantifier after a quantifier, an assertion or "
                         "nothing; possessive quantifiers are not ECMA-262)");
                break;
            }
            ee__text_add(&t.out, p + t.i, q);
            t.i += q;
            if (t.i < len && p[t.i] == '?') /* lazy */
                ee__text_add(&t.out, p + t.i++, 1);
            t.atom = false;
            break;
        }
        case '}': case ']':
            ee__text_puts(&t.out, ch == '}' ? "\\}" : "\\]");
            t.atom = true;
            t.i++;
            break;
        case '\0':
            ee__text_puts(&t.out, "\\u0000");
            t.atom = true;
            t.i++;
            break;
        default: { /* one character, its UTF-8 bytes whole */
            unsigned char c = (unsigned char)ch;
            size_t clen = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
            if (t.i + clen > len)
                clen = len - t.i;
            ee__text_add(&t.out, p + t.i, clen);
            t.i += clen;
            t.atom = true;
            break;
        }
        }
    }
    if (t.why == NULL && t.depth > 0)
        fail(&t, "missing )");
    *why = NULL;
    *unsupported = t.unsupported;
    if (t.stopped) {
        free(t.out.p);
        return NULL;
    }
    if (t.why != NULL) {
        snprintf(why_buf, cap, "%s", t.why);
        *why = why_buf;
        free(t.out.p);
        return NULL;
    }
    if (t.out.oom) {
        free(t.out.p);
        return NULL;
    }
    return t.out.p;
}

#define COMPILE_OPTIONS                                                                    \
    (PCRE2_UTF | PCRE2_NEVER_UCP | PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS |        \
     PCRE2_ALT_BSUX | PCRE2_NEVER_BACKSLASH_C | PCRE2_MATCH_UNSET_BACKREF)

/* PCRE2's errors for an ECMA-262 lookbehind it cannot run: ECMA-262
 * allows any lookbehind, PCRE2 10.42 only those of bounded length. */
static bool lookbehind_error(int err)
{
    return err == PCRE2_ERROR_LOOKBEHIND_NOT_FIXED_LENGTH ||
           err == PCRE2_ERROR_LOOKBEHIND_TOO_COMPLICATED ||
           err == PCRE2_ERROR_LOOKBEHIND_TOO_LONG;
}

/* PCRE2's errors for ECMA-262 it cannot run: an unbounded lookbehind, a
 * repeat count over 65535. */
static bool beyond_pcre2(int err)
{
    return lookbehind_error(err) || err == PCRE2_ERROR_QUANTIFIER_TOO_BIG;
}

/* Compile the translation; *err gets PCRE2's error code on failure. */
static pcre2_code *compile_pcre(const char *pcre, int *err)
{
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (cc == NULL) {
        *err = PCRE2_ERROR_NOMEMORY;
        return NULL;
    }
    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    /* "." "^" "$" are spelled out by translate(); LF as the newline keeps
     * PCRE2 from stepping over a CRLF as one when it retries a match at
     * the next position (under ANY, \D$ did not match ":" CR LF at its LF) */
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    PCRE2_SIZE off = 0;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pcre, PCRE2_ZERO_TERMINATED, COMPILE_OPTIONS,
                                     err, &off, cc);
    pcre2_compile_context_free(cc);
    return code;
}

ee_status ee__schema_regex_compile(ee__schema_regex **out, const char *pattern, size_t len,
                                   const char *path, bool jit)
{
    *out = NULL;
    char shown[96], why_buf[160];
    const char *why = NULL, *unsupported = NULL;
    ee__quote_for_message(pattern, shown, sizeof shown);
    char *pcre = translate(pattern, len, &why, why_buf, sizeof why_buf, &unsupported);
    if (why != NULL)
        return ee__error(EE_EINVAL,
                         "invalid schema at %s: pattern \"%s\" is not a valid regular "
                         "expression: %s",
                         path, shown, why);
    if (unsupported != NULL) {
        free(pcre);
        return ee__error(EE_ENOTSUPPORTED, "unsupported schema at %s: pattern \"%s\" uses %s",
                         path, shown, unsupported);
    }
    ee__schema_regex *re = calloc(1, sizeof *re);
    char *src = malloc(len + 1);
    if (pcre == NULL || re == NULL || src == NULL) {
        free(pcre), free(re), free(src);
        return ee__error(EE_ENOMEM, "out of memory compiling pattern at %s", path);
    }
    memcpy(src, pattern, len);
    src[len] = '\0';
    re->source = src;
    int err = 0;
    re->code = compile_pcre(pcre, &err);
    free(pcre);
    if (re->code == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        ee__schema_regex_free(re);
        if (err == PCRE2_ERROR_NOMEMORY)
            return ee__error(EE_ENOMEM, "out of memory compiling pattern at %s", path);
        if (beyond_pcre2(err))
            return ee__error(EE_ENOTSUPPORTED,
                             "unsupported schema at %s: pattern \"%s\" is ECMA-262 that PCRE2 "
                             "cannot run: %s",
                             path, shown, (const char *)msg);
        return ee__error(EE_EINVAL,
                         "invalid schema at %s: pattern \"%s\" is not a valid regular "
                         "expression: %s",
                         path, shown, (const char *)msg);
    }
    /* JIT is an optimisation only: without it PCRE2 interprets. */
    if (jit)
        (void)pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);
    *out = re;
    return EE_OK;
}

bool ee__schema_regex_valid(const char *pattern, size_t len)
{
    char why_buf[160];
    const char *why = NULL, *unsupported = NULL;
    char *pcre = translate(pattern, len, &why, why_buf, sizeof why_buf, &unsupported);
    if (pcre == NULL)
        return unsupported != NULL; /* stopped at ECMA-262 that PCRE2 cannot run */
    int err = 0;
    pcre2_code *code = compile_pcre(pcre, &err);
    free(pcre);
    /* a lookbehind PCRE2 cannot run is still ECMA-262 syntax */
    bool ok = code != NULL || beyond_pcre2(err);
    pcre2_code_free(code);
    return ok;
}

void ee__schema_regex_free(ee__schema_regex *re)
{
    if (re == NULL)
        return;
    pcre2_code_free(re->code);
    free(re->source);
    free(re);
}

const char *ee__schema_regex_source(const ee__schema_regex *re)
{
    return re->source;
}

void ee__schema_matcher_free(ee__schema_matcher *m)
{
    if (m == NULL)
        return;
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mc);
    free(m);
}

static ee__schema_matcher *matcher_new(void)
{
    ee__schema_matcher *m = calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->md = pcre2_match_data_create(1, NULL); /* only "did it match" matters */
    m->mc = pcre2_match_context_create(NULL);
    if (m->md == NULL || m->mc == NULL) {
        ee__schema_matcher_free(m);
        return NULL;
    }
    pcre2_set_depth_limit(m->mc, EE__SCHEMA_DEPTH_LIMIT);
    pcre2_set_heap_limit(m->mc, EE__SCHEMA_HEAP_LIMIT_KIB);
    return m;
}

/* First match limit tried; each retry multiplies it by 8. */
#define FIRST_LIMIT 256u

/*
 * PCRE2 does not say how much of its match limit a match used, only
 * whether it ran out. So a match first runs under a small limit, and on
 * running out runs again under one 8 times larger, until it ends, reaches
 * the per-match limit or the caller's budget. Charged: every limit that ran
 * out in full, plus an eighth of the last one (the work of a match that ended
 * under limit L exceeded L / 8, or it would have ended under the previous
 * limit), plus the subject's bytes, which a scan reads without counting
 * against the match limit. The total is within a small factor of the work
 * done, and every retry together costs at most 8/7 of the last.
 */
int ee__schema_regex_match(const ee__schema_regex *re, ee__schema_matcher **m, const char *s,
                           size_t len, uint64_t budget, uint64_t *used)
{
    *used = 0;
    if (*m == NULL && (*m = matcher_new()) == NULL)
        return -2;
    uint64_t per_subject = 1 + len / EE__SCHEMA_BYTES_PER_UNIT;
    for (uint64_t limit = FIRST_LIMIT;; limit *= 8) {
        if (limit > EE__SCHEMA_MATCH_LIMIT)
            limit = EE__SCHEMA_MATCH_LIMIT;
        uint64_t left = budget > *used + per_subject ? budget - *used - per_subject : 0;
        bool budget_bound = left < limit;
        if (budget_bound)
            limit = left;
        if (limit == 0) {
            *used = budget;
            return -3;
        }
        pcre2_set_match_limit((*m)->mc, (uint32_t)limit);
        int rc = pcre2_match(re->code, (PCRE2_SPTR)s, len, 0, 0, (*m)->md, (*m)->mc);
        *used += per_subject;
        if (rc != PCRE2_ERROR_MATCHLIMIT) {
            *used += limit / 8;
            if (rc >= 0)
                return 1; /* 0: matched, ovector too small for the groups */
            if (rc == PCRE2_ERROR_NOMATCH)
                return 0;
            if (rc == PCRE2_ERROR_NOMEMORY)
                return -2;
            return -1; /* DEPTHLIMIT, HEAPLIMIT, JIT_STACKLIMIT: give up on it */
        }
        *used += limit;
        if (budget_bound)
            return -3;
        if (limit == EE__SCHEMA_MATCH_LIMIT)
            return -1;
    }
}
