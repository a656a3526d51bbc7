/*
 * Passes over document bitmaps for searching (search_query.c): the word
 * passes that turn class bitmaps into score levels and add them into the
 * bit slices, plain AND/OR passes, and population counts.
 *
 * The vector passes are plain C that GCC auto-vectorizes, which it does
 * here only when every bitmap is a separate restrict-qualified parameter
 * (not a struct field or a local), hence the long parameter lists behind
 * the short public signatures.
 *
 * Population counts use the POPCNT instruction when the CPU has it,
 * chosen at run time: the build targets baseline x86-64, where the
 * compiler's builtin is otherwise a library call per word.
 */
#include "catalog/search_bits.h"

#if defined(__x86_64__) && defined(__GNUC__)
#  define HW_POPCNT 1
#else
#  define HW_POPCNT 0
#endif

/* A pass is one call (its restrict parameters intact); helpers fold into
 * the pass that uses them. */
#if defined(__GNUC__)
#  define NOINLINE __attribute__((noinline))
#  define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#  define NOINLINE
#  define ALWAYS_INLINE inline
#endif

/* ---- plain passes ------------------------------------------------------------- */

static NOINLINE void or2(uint64_t *restrict dst, const uint64_t *restrict a,
                         const uint64_t *restrict b, size_t nw)
{
    for (size_t j = 0; j < nw; j++)
        dst[j] = a[j] | b[j];
}

static NOINLINE void or_into(uint64_t *restrict dst, const uint64_t *restrict a, size_t nw)
{
    for (size_t j = 0; j < nw; j++)
        dst[j] |= a[j];
}

static NOINLINE void and2(uint64_t *restrict dst, const uint64_t *restrict a,
                          const uint64_t *restrict b, size_t nw)
{
    for (size_t j = 0; j < nw; j++)
        dst[j] = a[j] & b[j];
}

static NOINLINE void and_into(uint64_t *restrict dst, const uint64_t *restrict a, size_t nw)
{
    for (size_t j = 0; j < nw; j++)
        dst[j] &= a[j];
}

static NOINLINE void andnot2(uint64_t *restrict dst, const uint64_t *restrict a,
                             const uint64_t *restrict b, size_t nw)
{
    for (size_t j = 0; j < nw; j++)
        dst[j] = a[j] & ~b[j];
}

static NOINLINE void andnot_into(uint64_t *restrict dst, const uint64_t *restrict a, size_t nw)
{
    for (size_t j = 0; j < nw; j++)
        dst[j] &= ~a[j];
}

static NOINLINE void or_and_into(uint64_t *restrict dst, const uint64_t *restrict a,
                                 const uint64_t *restrict b, size_t nw)
{
    for (size_t j = 0; j < nw; j++)
        dst[j] |= a[j] & b[j];
}

void ee__bits_or(uint64_t *dst, const uint64_t *a, const uint64_t *b, size_t nw)
{
    if (dst == a)
        or_into(dst, b, nw);
    else
        or2(dst, a, b, nw);
}

void ee__bits_and(uint64_t *dst, const uint64_t *a, const uint64_t *b, size_t nw)
{
    if (dst == a)
        and_into(dst, b, nw);
    else
        and2(dst, a, b, nw);
}

void ee__bits_andnot(uint64_t *dst, const uint64_t *a, const uint64_t *b, size_t nw)
{
    if (dst == a)
        andnot_into(dst, b, nw);
    else
        andnot2(dst, a, b, nw);
}

void ee__bits_or_and(uint64_t *dst, const uint64_t *a, const uint64_t *b, size_t nw)
{
    or_and_into(dst, a, b, nw);
}

/* ---- the word passes ------------------------------------------------------------ */

/* One word's score levels in 64 documents: bit b of the score set for the
 * documents scoring 1 << b (exact name 16; prefix name or exact tag 8;
 * prefix tag 4; exact description 2; prefix description 1). `seen` ends as
 * the documents the word matches. */
#define LEVELS(j)                                   \
    uint64_t l4 = en[j], seen = l4;                 \
    uint64_t l3 = (nn[j] | et[j]) & ~seen;          \
    seen |= l3;                                     \
    uint64_t l2 = nt[j] & ~seen;                    \
    seen |= l2;                                     \
    uint64_t l1 = ed[j] & ~seen;                    \
    seen |= l1;                                     \
    uint64_t l0 = nd[j] & ~seen;                    \
    seen |= l0

static NOINLINE uint64_t first_pass(const uint64_t *restrict en, const uint64_t *restrict et,
                                    const uint64_t *restrict ed, const uint64_t *restrict nn,
                                    const uint64_t *restrict nt, const uint64_t *restrict nd,
                                    const uint64_t *restrict filter, uint64_t *restrict m,
                                    uint64_t *restrict a0, uint64_t *restrict a1,
                                    uint64_t *restrict a2, uint64_t *restrict a3,
                                    uint64_t *restrict a4, size_t nw)
{
    uint64_t any = 0;
    for (size_t j = 0; j < nw; j++) {
        LEVELS(j);
        uint64_t in = seen & filter[j];
        m[j] = in;
        any |= in;
        a0[j] = l0;
        a1[j] = l1;
        a2[j] = l2;
        a3[j] = l3;
        a4[j] = l4;
    }
    return any;
}

/* Ripple-carry addition of the levels into nbits slices (the addend has at
 * most one bit per document, so it is l0..l4 as a 5-bit number). */
static ALWAYS_INLINE uint64_t add_pass(const uint64_t *restrict en, const uint64_t *restrict et,
                                       const uint64_t *restrict ed, const uint64_t *restrict nn,
                                       const uint64_t *restrict nt, const uint64_t *restrict nd,
                                       uint64_t *restrict m, uint64_t *restrict a0,
                                       uint64_t *restrict a1, uint64_t *restrict a2,
                                       uint64_t *restrict a3, uint64_t *restrict a4,
                                       uint64_t *restrict a5, uint64_t *restrict a6,
                                       uint64_t *restrict a7, size_t nw, const int nbits)
{
    uint64_t any = 0;
    for (size_t j = 0; j < nw; j++) {
        LEVELS(j);
        uint64_t in = m[j] & seen, c = 0, v;
        m[j] = in;
        any |= in;
#define ADD_BIT(a, x)                   \
        v = a[j];                       \
        a[j] = v ^ (x) ^ c;             \
        c = (v & (x)) | (c & (v ^ (x)))
        ADD_BIT(a0, l0);
        ADD_BIT(a1, l1);
        ADD_BIT(a2, l2);
        ADD_BIT(a3, l3);
        ADD_BIT(a4, l4);
#undef ADD_BIT
        if (nbits > 5) {
            v = a5[j];
            a5[j] = v ^ c;
            c &= v;
        }
        if (nbits > 6) {
            v = a6[j];
            a6[j] = v ^ c;
            c &= v;
        }
        if (nbits > 7)
            a7[j] ^= c;
    }
    return any;
}

#define ADD_PASS(name, nbits)                                                                   \
    static NOINLINE uint64_t name(                                                              \
        const uint64_t *restrict en, const uint64_t *restrict et, const uint64_t *restrict ed,  \
        const uint64_t *restrict nn, const uint64_t *restrict nt, const uint64_t *restrict nd,  \
        uint64_t *restrict m, uint64_t *restrict a0, uint64_t *restrict a1,                     \
        uint64_t *restrict a2, uint64_t *restrict a3, uint64_t *restrict a4,                    \
        uint64_t *restrict a5, uint64_t *restrict a6, uint64_t *restrict a7, size_t nw)         \
    {                                                                                           \
        return add_pass(en, et, ed, nn, nt, nd, m, a0, a1, a2, a3, a4, a5, a6, a7, nw, nbits);  \
    }
ADD_PASS(add6, 6)
ADD_PASS(add7, 7)
ADD_PASS(add8, 8)

bool ee__bits_first_word(const ee__bits_word *w, const uint64_t *filter, uint64_t *match,
                         uint64_t *slices, size_t stride, size_t nw)
{
    const uint64_t *const *c = w->cls;
    uint64_t *s = slices;
    size_t d = stride;
    return first_pass(c[0], c[1], c[2], c[3], c[4], c[5], filter, match, s, s + d, s + 2 * d,
                      s + 3 * d, s + 4 * d, nw) != 0;
}

bool ee__bits_add_word(const ee__bits_word *w, uint64_t *match, uint64_t *slices, size_t stride,
                       int nbits, size_t nw)
{
    const uint64_t *const *c = w->cls;
    uint64_t *s = slices;
    size_t d = stride;
    uint64_t (*pass)(const uint64_t *restrict, const uint64_t *restrict, const uint64_t *restrict,
                     const uint64_t *restrict, const uint64_t *restrict, const uint64_t *restrict,
                     uint64_t *restrict, uint64_t *restrict, uint64_t *restrict,
                     uint64_t *restrict, uint64_t *restrict, uint64_t *restrict,
                     uint64_t *restrict, uint64_t *restrict, uint64_t *restrict, size_t) =
        nbits <= 6 ? add6 : nbits == 7 ? add7 : add8;
    return pass(c[0], c[1], c[2], c[3], c[4], c[5], match, s, s + d, s + 2 * d, s + 3 * d,
                s + 4 * d, s + 5 * d, s + 6 * d, s + 7 * d, nw) != 0;
}

/* ---- population counts -------------------------------------------------------------- */

static ALWAYS_INLINE size_t count_body(const uint64_t *a, size_t nw)
{
    size_t c0 = 0, c1 = 0, j = 0; /* two chains: the adds overlap */
    for (; j + 2 <= nw; j += 2) {
        c0 += (size_t)__builtin_popcountll(a[j]);
        c1 += (size_t)__builtin_popcountll(a[j + 1]);
    }
    if (j < nw)
        c0 += (size_t)__builtin_popcountll(a[j]);
    return c0 + c1;
}

/* Documents in a & b, stopping once past `limit`. */
static ALWAYS_INLINE size_t count_and_body(const uint64_t *a, const uint64_t *b, size_t nw,
                                           size_t limit)
{
    size_t c = 0;
    for (size_t j = 0; j < nw && c <= limit; j++)
        c += (size_t)__builtin_popcountll(a[j] & b[j]);
    return c;
}

static ALWAYS_INLINE uint64_t take_body(uint64_t w, size_t *quota)
{
    size_t c = (size_t)__builtin_popcountll(w);
    if (c <= *quota) {
        *quota -= c;
        return w;
    }
    uint64_t r = 0;
    for (; *quota > 0; (*quota)--) {
        r |= w & -w;
        w &= w - 1;
    }
    return r;
}

static ALWAYS_INLINE size_t extract_body(const ee__bits_top *in, const ee__bits_top *out,
                                         size_t nw, ee__search_hit *hits, size_t want)
{
    size_t n = 0, qin = in->quota, qout = out->quota;
    for (size_t j = 0; j < nw && n < want; j++) {
        uint64_t w = in->better[j] | take_body(in->tied[j], &qin);
        if (w == 0)
            continue;
        w &= ~(out->better[j] | take_body(out->tied[j], &qout));
        for (; w != 0 && n < want; w &= w - 1)
            hits[n++].doc = (uint32_t)(j * 64 + (size_t)__builtin_ctzll(w));
    }
    return n;
}

#if HW_POPCNT
#  define POPCNT_TARGET __attribute__((target("popcnt")))
static POPCNT_TARGET size_t count_hw(const uint64_t *a, size_t nw)
{
    return count_body(a, nw);
}

static POPCNT_TARGET size_t count_and_hw(const uint64_t *a, const uint64_t *b, size_t nw,
                                         size_t limit)
{
    return count_and_body(a, b, nw, limit);
}

static POPCNT_TARGET size_t extract_hw(const ee__bits_top *in, const ee__bits_top *out,
                                       size_t nw, ee__search_hit *hits, size_t want)
{
    return extract_body(in, out, nw, hits, want);
}
#  define HAVE_POPCNT() __builtin_cpu_supports("popcnt")
#else
#  define count_hw count_body
#  define count_and_hw count_and_body
#  define extract_hw extract_body
#  define HAVE_POPCNT() 0
#endif

size_t ee__bits_count(const uint64_t *a, size_t nw)
{
    return HAVE_POPCNT() ? count_hw(a, nw) : count_body(a, nw);
}

size_t ee__bits_count_and(const uint64_t *a, const uint64_t *b, size_t nw, size_t limit)
{
    return HAVE_POPCNT() ? count_and_hw(a, b, nw, limit) : count_and_body(a, b, nw, limit);
}

size_t ee__bits_extract(const ee__bits_top *in, const ee__bits_top *out, size_t nw,
                        ee__search_hit *hits, size_t want)
{
    return HAVE_POPCNT() ? extract_hw(in, out, nw, hits, want)
                         : extract_body(in, out, nw, hits, want);
}
