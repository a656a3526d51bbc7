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
 * ECMA-262 semantics kept:
 *   - PCRE2_UTF without PCRE2_UCP: \d \w \b stay ASCII as in ECMA-262
 *     (UCP would let \d match Arabic-Indic digits);
 *   - \s and \S are ECMA-262's Unicode white space, spelled out;
 *   - \p{Letter}, \p{General_Category=Letter}, \p{Script=Greek}: the long
 *     names PCRE2 10.42 does not know become its short ones;
 *   - "$" only at the very end (PCRE2_DOLLAR_ENDONLY), "." stops at line
 *     terminators (newline ANY), "[^]" matches anything and "[]" nothing
 *     (PCRE2_ALLOW_EMPTY_CLASS), \uXXXX and \u{X...} escapes (ALT_BSUX).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/core.h"
#include "schema/schema_internal.h"

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

/* ECMA-262 WhiteSpace and LineTerminator. */
/* ECMA-262 WhiteSpace and LineTerminator, in ALT_BSUX spelling (\\uhhhh;
 * \\x{...} is not recognised in that mode). */
#define ECMA_SPACES "\\t\\n\\u000b\\f\\r \\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029" \
                    "\\u202f\\u205f\\u3000\\ufeff"

static const struct {
    const char *lng, *shrt;
} gc_names[] = {
    {"Letter", "L"}, {"Cased_Letter", "L&"}, {"LC", "L&"}, {"Uppercase_Letter", "Lu"},
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


/* The PCRE2 spelling of a \p{...} name (value of `name`, `n` bytes). */
static void put_property(ee__text *b, const char *name, size_t n)
{
    static const char *const prefixes[] = {"General_Category=", "gc=", "Script_Extensions=",
                                           "scx=", "Script=", "sc="};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t pl = strlen(prefixes[i]);
        if (n > pl && memcmp(name, prefixes[i], pl) == 0) {
            name += pl;
            n -= pl;
            break;
        }
    }
    for (size_t i = 0; i < sizeof gc_names / sizeof gc_names[0]; i++)
        if (strlen(gc_names[i].lng) == n && memcmp(gc_names[i].lng, name, n) == 0) {
            ee__text_puts(b, gc_names[i].shrt);
            return;
        }
    ee__text_add(b, name, n); /* short names and scripts are PCRE2's already */
}

/* Translate one escape at p[i] == '\\'; returns the bytes consumed. */
static size_t translate_escape(ee__text *b, const char *p, size_t len, size_t i, bool in_class)
{
    if (i + 1 >= len) {
        ee__text_add(b, p + i, 1);
        return 1;
    }
    char n = p[i + 1];
    if ((n == 'p' || n == 'P') && i + 2 < len && p[i + 2] == '{') {
        const char *close = memchr(p + i + 3, '}', len - (i + 3));
        if (close != NULL) {
            ee__text_add(b, p + i, 3);
            put_property(b, p + i + 3, (size_t)(close - (p + i + 3)));
            ee__text_puts(b, "}");
            return (size_t)(close - (p + i)) + 1;
        }
    }
    if (n == 's')
        ee__text_puts(b, in_class ? ECMA_SPACES : "[" ECMA_SPACES "]");
    else if (n == 'S' && !in_class)
        ee__text_puts(b, "[^" ECMA_SPACES "]");
    else
        ee__text_add(b, p + i, 2);
    return 2;
}

/* The PCRE2 pattern for an ECMA-262 one (malloc'd), NULL on ENOMEM. */
static char *translate(const char *p, size_t len)
{
    ee__text b = {0};
    bool in_class = false;
    ee__text_add(&b, "", 0);
    for (size_t i = 0; i < len;) {
        char ch = p[i];
        if (ch == '\\') {
            i += translate_escape(&b, p, len, i, in_class);
            continue;
        }
        if (ch == '[' && !in_class) {
            in_class = true;
        } else if (ch == ']' && in_class) {
            in_class = false;
        }
        ee__text_add(&b, &ch, 1);
        i++;
    }
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

ee_status ee__schema_regex_compile(ee__schema_regex **out, const char *pattern, size_t len,
                                   const char *path, bool jit)
{
    *out = NULL;
    char shown[96];
    ee__quote_for_message(pattern, shown, sizeof shown);
    char *pcre = translate(pattern, len);
    ee__schema_regex *re = calloc(1, sizeof *re);
    char *src = malloc(len + 1);
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (pcre == NULL || re == NULL || src == NULL || cc == NULL) {
        free(pcre), free(re), free(src);
        pcre2_compile_context_free(cc);
        return ee__error(EE_ENOMEM, "out of memory compiling pattern at %s", path);
    }
    memcpy(src, pattern, len);
    src[len] = '\0';
    re->source = src;
    pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
    pcre2_set_newline(cc, PCRE2_NEWLINE_ANY);
    int err = 0;
    PCRE2_SIZE off = 0;
    re->code = pcre2_compile((PCRE2_SPTR)pcre, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_ALLOW_EMPTY_CLASS |
                                 PCRE2_ALT_BSUX | PCRE2_NEVER_BACKSLASH_C,
                             &err, &off, cc);
    pcre2_compile_context_free(cc);
    free(pcre);
    if (re->code == NULL) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        ee__schema_regex_free(re);
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
    /* \\a (bell) is PCRE2's, not an ECMA-262 control escape */
    for (size_t i = 0; i + 1 < len; i++) {
        if (pattern[i] != '\\')
            continue;
        if (pattern[i + 1] == 'a')
            return false;
        i++;
    }
    char *pcre = translate(pattern, len);
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    bool ok = false;
    if (pcre != NULL && cc != NULL) {
        pcre2_set_compile_extra_options(cc, PCRE2_EXTRA_ALT_BSUX);
        pcre2_set_newline(cc, PCRE2_NEWLINE_ANY);
        int err = 0;
        PCRE2_SIZE off = 0;
        pcre2_code *code = pcre2_compile((PCRE2_SPTR)pcre, PCRE2_ZERO_TERMINATED,
                                         PCRE2_UTF | PCRE2_DOLLAR_ENDONLY |
                                             PCRE2_ALLOW_EMPTY_CLASS | PCRE2_ALT_BSUX |
                                             PCRE2_NEVER_BACKSLASH_C,
                                         &err, &off, cc);
        ok = code != NULL;
        pcre2_code_free(code);
    }
    pcre2_compile_context_free(cc);
    free(pcre);
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
