/*
 * lib/catalog/search.h - the catalog's full-text index: words across name,
 * description and tags, case-insensitive (ASCII folding; other UTF-8 bytes
 * compare as they are), every query word matched as a prefix, ranked.
 *
 * Shape. Terms are kept sorted, so the terms a prefix matches are one
 * contiguous range of term ids; prefix sums of posting counts give each
 * range's size in O(1). A search drives from the query word with the
 * fewest postings and checks the other words against each candidate's own
 * sorted term list by binary search, so its cost follows the rarest word,
 * not the catalog's size.
 *
 * Ranking: per query word, the best field it matches in (name 8, tags 4,
 * description 1), doubled when the word is a whole term rather than a
 * prefix; summed over words. Ties: name, then id, ascending.
 *
 * An index is immutable once built and safe to search from any number of
 * threads; a catalog change builds a new one.
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

typedef struct {
    uint32_t doc;   /* the index given to ee__search_builder_add() order */
    uint32_t score;
} ee__search_hit;

ee_status ee__search_builder_new(ee__search_builder **out);
void ee__search_builder_free(ee__search_builder *b);

/* Add a document; documents are numbered 0, 1, ... in the order added.
 * `tags` is an array of n_tags strings. `name` is also the tie-break key. */
ee_status ee__search_builder_add(ee__search_builder *b, const char *name, const char *description,
                                 const char *const *tags, size_t n_tags);

/* Build the index; the builder is consumed (freed) whatever the result. */
ee_status ee__search_build(ee__search_builder *b, ee__search_index **out);
void ee__search_index_free(ee__search_index *idx);
size_t ee__search_index_docs(const ee__search_index *idx);

/* Search. `accept(doc, payload)` (may be NULL) filters candidates (category,
 * active ...). Hits are ranked; `offset` skips that many, up to `limit` are
 * written to hits[]; *total_out (may be NULL) receives how many matched.
 * An empty query (no words) matches nothing. Returns EE_OK, EE_ETOOBIG
 * (query over EE__SEARCH_QUERY_MAX bytes), EE_ENOMEM. Thread-safe. */
ee_status ee__search(const ee__search_index *idx, const char *query,
                     int (*accept)(uint32_t doc, void *payload), void *payload, size_t offset,
                     size_t limit, ee__search_hit *hits, size_t *n_hits, size_t *total_out);

#endif
