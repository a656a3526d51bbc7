/*
 * lib/catalog/search.h - the catalog's full-text index: words across name,
 * description and tags, case-insensitive (ASCII folding; other UTF-8 bytes
 * compare as they are), every query word matched as a prefix, ranked.
 *
 * Ranking: per query word, the best field it matches in (name 8, tags 4,
 * description 1), doubled when the word is a whole term rather than a
 * prefix; summed over words. Ties: name, then the document's number,
 * ascending.
 *
 * Shape. Documents are renumbered internally in name order, so a tie in
 * score breaks by internal number; hits carry the caller's numbers. Terms
 * are kept sorted: the terms a word prefixes are one contiguous range. A
 * term in at least 1/64 of the documents is kept as bitmaps over all
 * documents (one per field that is its best field in a document), rarer
 * terms as posting lists. Prefix ranges (nodes of the trie of the terms)
 * whose postings would cost more than about 2,048 to walk get bitmaps of
 * their own; all bitmaps stay within a budget proportional to the
 * postings (search_bitmaps.c). A search turns each word into bitmaps of
 * its five possible scores (16, 8, 4, 2, 1: a document has at most one, so
 * they are the bit slices of the word's score) and adds them up, 64
 * documents per machine word, into the bit slices of the summed score
 * (search_bits.c). The matches are the AND of the words' and the filter's
 * bitmaps, so the total is a popcount. The page comes from a bit-sliced
 * top-k threshold search (a few counting passes, each stopping once its
 * outcome is decided) or, for few matches, a counting sort of their
 * scores. A search is thus a small bounded number of passes over ndocs/64
 * words, plus per word the postings of its rare terms (about 2,048 at
 * most, unless the bitmap budget ran out), whatever the words match;
 * filters without a bitmap add one callback per matching document.
 *
 * An index is immutable once built and safe to search from any number of
 * threads (each thread keeps its own scratch, reused across searches); a
 * catalog change builds a new one.
 */
#ifndef EE_CATALOG_SEARCH_H
#define EE_CATALOG_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "execengine/errors.h"

#define EE__SEARCH_MAX_WORDS 8      /* query words considered */
#define EE__SEARCH_TERM_MAX 64      /* bytes of one term (longer ones are cut) */
#define EE__SEARCH_QUERY_MAX 512    /* bytes of a query */

typedef struct ee__search_index ee__search_index;
typedef struct ee__search_builder ee__search_builder;
typedef struct ee__search_bitmap ee__search_bitmap;

typedef struct {
    uint32_t doc;   /* the document's number: its place in ee__search_builder_add() order */
    uint32_t score;
} ee__search_hit;

ee_status ee__search_builder_new(ee__search_builder **out);
void ee__search_builder_free(ee__search_builder *b);

/* Add a document; documents are numbered 0, 1, ... in the order added.
 * `tags` is an array of n_tags strings. `name` is also the tie-break key. */
ee_status ee__search_builder_add(ee__search_builder *b, const char *name, const char *description,
                                 const char *const *tags, size_t n_tags);

/* Where the index spends memory on bitmaps. Zero fields take the default;
 * the results never depend on these, only speed and memory do (tests set
 * extremes to reach every path on small catalogs). */
typedef struct {
    uint32_t dense_min_docs; /* terms in at least this many documents get bitmaps
                                (default ndocs / 64, at least 1; UINT32_MAX: none) */
    uint32_t block_min_cost; /* prefix ranges costing more to walk get bitmaps
                                (default 2048 postings; UINT32_MAX: none) */
    size_t budget_bytes;     /* all bitmaps together (default: twice the postings' size
                                plus 1 MiB; SIZE_MAX: unbounded) */
} ee__search_tuning;

/* Build the index; the builder is consumed (freed) whatever the result.
 * ee__search_build_tuned() with `tuning` NULL is ee__search_build(). */
ee_status ee__search_build(ee__search_builder *b, ee__search_index **out);
ee_status ee__search_build_tuned(ee__search_builder *b, const ee__search_tuning *tuning,
                                 ee__search_index **out);
void ee__search_index_free(ee__search_index *idx);
size_t ee__search_index_docs(const ee__search_index *idx);

/* A filter over one index's documents: the documents for which
 * pred(doc, payload) is non-zero (`doc` is the caller's number). Built
 * once per index and reused by any number of searches and threads; free it
 * before or after the index. */
ee_status ee__search_bitmap_new(const ee__search_index *idx,
                                int (*pred)(uint32_t doc, void *payload), void *payload,
                                ee__search_bitmap **out);
void ee__search_bitmap_free(ee__search_bitmap *bm);

/* What a search keeps: the documents in every bitmap (each made by
 * ee__search_bitmap_new() over the same index) for which accept (if not
 * NULL) returns non-zero. Bitmaps cost a few passes over ndocs/64 words;
 * accept is called once per document the words match, so it is for
 * filters that have no bitmap. */
typedef struct {
    const ee__search_bitmap *const *bitmaps;
    size_t n_bitmaps;
    int (*accept)(uint32_t doc, void *payload);
    void *payload;
} ee__search_filter;

/* Search. `filter` may be NULL (every document). Hits are ranked; `offset`
 * skips that many, up to `limit` are written to hits[]; *total_out (may be
 * NULL) receives how many matched after the filter. An empty query (no
 * words) matches nothing. Returns EE_OK, EE_ETOOBIG (query over
 * EE__SEARCH_QUERY_MAX bytes), EE_EINVAL (a bitmap of another index),
 * EE_ENOMEM. Thread-safe. */
ee_status ee__search(const ee__search_index *idx, const char *query,
                     const ee__search_filter *filter, size_t offset, size_t limit,
                     ee__search_hit *hits, size_t *n_hits, size_t *total_out);

#endif
