/*
 * libFuzzer: arbitrary bytes as a catalog to index and a query. The first
 * line is the query; every further line a document, its fields split by
 * tabs: name, description, then tags. Short catalogs are repeated (the
 * copies numbered in their names) up to 150 documents, so bitmaps span
 * several machine words. The same catalog is indexed with every storage
 * choice (postings only, every term a bitmap, prefix blocks everywhere, a
 * budget nothing fits in, the defaults), and each index must give the same
 * ranked page and total, unfiltered, through filter bitmaps and through an
 * accept callback; pages must be ranked. Any crash, leak, sanitizer report
 * or disagreement (abort) is a finding.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/search_internal.h"
#include "core/core.h"

#include "fuzz_check.h"

enum { MIN_DOCS = 150, MAX_DOCS = 400, MAX_TAGS = 4 };

static const ee__search_tuning tunings[] = {
    {0, 0, 0},                   /* defaults */
    {UINT32_MAX, UINT32_MAX, 0}, /* postings only */
    {1, UINT32_MAX, 0},          /* every term a bitmap */
    {UINT32_MAX, 1, 0},          /* prefix blocks everywhere */
    {1, 1, 1},                   /* a budget nothing fits in */
};
#define NTUNINGS (sizeof tunings / sizeof tunings[0])

/* Split text (modified in place) into lines. */
static size_t split_lines(char *text, char **lines, size_t max)
{
    size_t n = 0;
    for (char *p = text; p != NULL && n < max;) {
        lines[n++] = p;
        p = strchr(p, '\n');
        if (p != NULL)
            *p++ = '\0';
    }
    return n;
}

static void add_line(ee__search_builder *b, const char *line, size_t copy)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", line);
    char *fields[2 + MAX_TAGS] = {buf, NULL};
    size_t nf = 1;
    for (char *p = strchr(buf, '\t'); p != NULL && nf < 2 + MAX_TAGS; p = strchr(p, '\t')) {
        *p++ = '\0';
        fields[nf++] = p;
    }
    char name[4200];
    if (copy > 0)
        snprintf(name, sizeof name, "%s %zu", fields[0], copy);
    else
        snprintf(name, sizeof name, "%s", fields[0]);
    const char *tags[MAX_TAGS];
    size_t nt = nf > 2 ? nf - 2 : 0;
    for (size_t i = 0; i < nt; i++)
        tags[i] = fields[2 + i];
    CHECK(ee__search_builder_add(b, name, nf > 1 ? fields[1] : NULL, tags, nt) == EE_OK);
}

static ee__search_index *build(char **docs, size_t ndocs, const ee__search_tuning *t)
{
    ee__search_builder *b = NULL;
    CHECK(ee__search_builder_new(&b) == EE_OK);
    size_t total = ndocs == 0 ? 0 : ndocs < MIN_DOCS ? MIN_DOCS : ndocs;
    for (size_t i = 0; i < total; i++)
        add_line(b, docs[i % ndocs], i / ndocs);
    ee__search_index *idx = NULL;
    CHECK(ee__search_build_tuned(b, t, &idx) == EE_OK);
    return idx;
}

static int third(uint32_t doc, void *payload)
{
    (void)payload;
    return doc % 3 != 0;
}

static int odd(uint32_t doc, void *payload)
{
    (void)payload;
    return doc % 2 == 1;
}

typedef struct {
    ee__search_hit hits[MAX_DOCS];
    size_t n, total;
    ee_status st;
} answer;

static void ask(const ee__search_index *idx, const char *q, int filter, size_t offset,
                size_t limit, answer *a)
{
    ee__search_bitmap *bm = NULL;
    CHECK(ee__search_bitmap_new(idx, third, NULL, &bm) == EE_OK);
    const ee__search_bitmap *list[] = {bm, bm};
    ee__search_filter f = {list, filter == 1 ? 1 : filter == 3 ? 2 : 0,
                           filter >= 2 ? odd : NULL, NULL};
    a->st = ee__search(idx, q, filter ? &f : NULL, offset, limit, a->hits, &a->n, &a->total);
    ee__search_bitmap_free(bm);
    CHECK(a->st == EE_OK || a->st == EE_ETOOBIG);
    CHECK(a->n <= limit);
    CHECK(a->n == 0 || a->total >= offset + a->n);
    for (size_t i = 1; i < a->n; i++)
        CHECK(a->hits[i - 1].score >= a->hits[i].score);
}

static void same(const answer *x, const answer *y)
{
    CHECK(x->st == y->st && x->n == y->n && x->total == y->total);
    for (size_t i = 0; i < x->n; i++)
        CHECK(x->hits[i].doc == y->hits[i].doc && x->hits[i].score == y->hits[i].score);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    CHECK(text != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    static char *lines[MAX_DOCS + 1];
    size_t n = split_lines(text, lines, MAX_DOCS + 1);
    ee__search_index *idx[NTUNINGS];
    for (size_t t = 0; t < NTUNINGS; t++)
        idx[t] = build(lines + 1, n - 1, &tunings[t]);
    size_t offset = size % 7, limit = 1 + size % 13;
    static answer first, other;
    for (int filter = 0; filter < 4; filter++)
        for (int page = 0; page < 2; page++) {
            size_t o = page ? 0 : offset, l = page ? MAX_DOCS : limit;
            ask(idx[0], lines[0], filter, o, l, &first);
            for (size_t t = 1; t < NTUNINGS; t++) {
                ask(idx[t], lines[0], filter, o, l, &other);
                same(&first, &other);
            }
        }
    for (size_t t = 0; t < NTUNINGS; t++)
        ee__search_index_free(idx[t]);
    free(text);
    return 0;
}
