/*
 * lib/catalog/search_bits.h - passes over document bitmaps (nw 64-bit
 * words each) for searching; search_bits.c says how they are made fast.
 */
#ifndef EE_CATALOG_SEARCH_BITS_H
#define EE_CATALOG_SEARCH_BITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/search.h"

/* One query word's class bitmaps: its exact term by name, tag, description,
 * then the rest of its prefix range likewise. None is NULL. */
typedef struct {
    const uint64_t *cls[6];
} ee__bits_word;

/* The best k matches, found by a bit-sliced top-k search: every document
 * of `better`, then the first `quota` of `tied` in document order. */
typedef struct {
    const uint64_t *better, *tied;
    size_t quota;
} ee__bits_top;

/* dst = a | b, a & b, a & ~b (dst may be a, not b); dst |= a & b (dst is
 * neither). */
void ee__bits_or(uint64_t *dst, const uint64_t *a, const uint64_t *b, size_t nw);
void ee__bits_and(uint64_t *dst, const uint64_t *a, const uint64_t *b, size_t nw);
void ee__bits_andnot(uint64_t *dst, const uint64_t *a, const uint64_t *b, size_t nw);
void ee__bits_or_and(uint64_t *dst, const uint64_t *a, const uint64_t *b, size_t nw);

/* The first word: match = its documents within filter; slices 0..4 its
 * score. The second and later: match narrows, the score adds into nbits
 * slices (6..8). Slice b starts at slices + b * stride. Both return
 * whether anything matches. */
bool ee__bits_first_word(const ee__bits_word *w, const uint64_t *filter, uint64_t *match,
                         uint64_t *slices, size_t stride, size_t nw);
bool ee__bits_add_word(const ee__bits_word *w, uint64_t *match, uint64_t *slices, size_t stride,
                       int nbits, size_t nw);

/* Documents in a. */
size_t ee__bits_count(const uint64_t *a, size_t nw);

/* Documents in a & b; counting stops past `limit` (the result is then
 * some value above it). */
size_t ee__bits_count_and(const uint64_t *a, const uint64_t *b, size_t nw, size_t limit);

/* The members of `in` that are not members of `out`, in document order,
 * at most `want` of them, into hits[].doc; returns how many. */
size_t ee__bits_extract(const ee__bits_top *in, const ee__bits_top *out, size_t nw,
                        ee__search_hit *hits, size_t want);

#endif
