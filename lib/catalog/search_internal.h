/*
 * lib/catalog/search_internal.h - what the search index's files share
 * (search.c builds it, search_bitmaps.c plans and fills its bitmaps,
 * search_query.c searches it with the passes of search_bits.c). See
 * search.h for the shape.
 */
#ifndef EE_CATALOG_SEARCH_INTERNAL_H
#define EE_CATALOG_SEARCH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/search.h"

#define EE__SEARCH_NONE UINT32_MAX

/* Field classes, best first: a posting keeps the best field its term is
 * in for that document. */
enum { EE__CLS_NAME, EE__CLS_TAG, EE__CLS_DESC, EE__CLS_COUNT };

/* Bitmaps of one term or term range: per field class, the documents whose
 * best field for a term of the range is that class (classes of a range may
 * overlap: two terms, two fields). The offset of each in the index's
 * `bits`, in units of nwords; EE__SEARCH_NONE when empty. */
typedef struct {
    uint32_t cls[EE__CLS_COUNT];
} ee__search_set;

struct ee__search_index {
    size_t ndocs, nwords;  /* documents; 64-bit words of a bitmap over them */
    size_t nterms;
    char **terms;          /* sorted, unique */
    uint32_t *post_start;  /* nterms + 1: CSR offsets (terms with bitmaps have none) */
    uint32_t *post_doc;    /* internal numbers, ascending within a term */
    uint8_t *post_cls;     /* EE__CLS_* */
    uint32_t *to_caller;   /* internal number (name order) -> the caller's number */
    uint32_t *term_set;    /* nterms: the set of a term with bitmaps, or EE__SEARCH_NONE */
    size_t nblocks;        /* prefix ranges [blk_lo, blk_hi) with bitmaps, */
    uint32_t *blk_lo, *blk_hi, *blk_set; /* sorted by lo ascending, then hi descending */
    size_t nsets;
    ee__search_set *sets;
    uint64_t *bits;
};

struct ee__search_bitmap {
    size_t ndocs;
    uint64_t bits[];
};

/* Next token of *s into buf (lower-cased, cut at a UTF-8 boundary within
 * EE__SEARCH_TERM_MAX); false at the end. */
bool ee__search_next_token(const char **s, char buf[EE__SEARCH_TERM_MAX + 1]);

/* Plan and fill the bitmaps of a built index whose postings (all terms)
 * are in place, then drop the postings that bitmaps replace. False on
 * ENOMEM (the index is left consistent, to be freed). */
bool ee__search_plan_bitmaps(ee__search_index *idx, const ee__search_tuning *tuning);

#endif
