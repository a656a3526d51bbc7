/*
 * The search index's bitmaps (search.h "Shape"): which terms and prefix
 * ranges get them, within a budget, and filling them; and the callers'
 * filter bitmaps.
 *
 * A term in at least dense_min_docs documents is cheaper to OR in as a
 * bitmap than to walk as postings. A prefix range - the terms under a node
 * of the trie of the sorted terms, with and without the node's own term
 * (a query word equal to that term scores it apart) - whose walk would
 * cost more than block_min_cost postings gets bitmaps of its own, so a
 * short prefix that covers thousands of rare terms costs one OR; a bitmap
 * counts as nwords / 2 postings. Terms go first (most documents first),
 * then ranges (costliest first), while the budget lasts; what does not fit
 * is walked as postings, more slowly, never wrongly.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog/search_internal.h"
#include "core/core.h"

typedef struct {
    uint32_t lo, hi;
    uint64_t cost;
} range_cand;

typedef struct {
    ee__search_index *idx;
    uint32_t dense_min, block_min;
    size_t budget, used;     /* bytes of bitmaps */
    uint8_t *mask;           /* per term: the classes it has postings in */
    bool *dense;             /* per term: gets bitmaps */
    uint64_t *light_ps;      /* nterms + 1: prefix sums of postings of terms without bitmaps */
    uint64_t *dense_ps;      /* nterms + 1: prefix sums of bitmaps of terms with them */
    uint32_t *cls_ps[EE__CLS_COUNT]; /* nterms + 1: prefix counts of terms in each class */
    range_cand *cand;
    size_t ncand, cap;
} planner;

static uint32_t df(const ee__search_index *idx, size_t t)
{
    return idx->post_start[t + 1] - idx->post_start[t];
}

static int popcount3(uint8_t m)
{
    return (m & 1) + (m >> 1 & 1) + (m >> 2 & 1);
}

static size_t set_bytes(const ee__search_index *idx, int nclasses)
{
    return (size_t)nclasses * idx->nwords * sizeof(uint64_t);
}

static bool fits(planner *p, size_t bytes)
{
    if (bytes > p->budget || p->used > p->budget - bytes)
        return false;
    p->used += bytes;
    return true;
}

static void defaults(planner *p, const ee__search_tuning *t)
{
    const ee__search_index *idx = p->idx;
    size_t npost = idx->post_start[idx->nterms];
    p->dense_min = t->dense_min_docs ? t->dense_min_docs
                   : idx->ndocs / 64 ? (uint32_t)(idx->ndocs / 64) : 1;
    p->block_min = t->block_min_cost ? t->block_min_cost : 2048;
    p->budget = t->budget_bytes ? t->budget_bytes : 2 * npost * (sizeof(uint32_t) + 1) + (1u << 20);
}

/* ---- which terms ----------------------------------------------------------- */

static int cmp_df_desc(const void *a, const void *b, void *ctx)
{
    const ee__search_index *idx = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    uint32_t dx = df(idx, x), dy = df(idx, y);
    return dx != dy ? (dx < dy) - (dx > dy) : (x > y) - (x < y);
}

static void term_masks(planner *p)
{
    const ee__search_index *idx = p->idx;
    for (size_t t = 0; t < idx->nterms; t++)
        for (uint32_t i = idx->post_start[t]; i < idx->post_start[t + 1]; i++)
            p->mask[t] |= (uint8_t)(1u << idx->post_cls[i]);
}

static bool choose_terms(planner *p)
{
    const ee__search_index *idx = p->idx;
    uint32_t *order = malloc((idx->nterms ? idx->nterms : 1) * sizeof *order);
    if (order == NULL)
        return false;
    size_t n = 0;
    for (size_t t = 0; t < idx->nterms; t++)
        if (df(idx, t) >= p->dense_min)
            order[n++] = (uint32_t)t;
    qsort_r(order, n, sizeof *order, cmp_df_desc, (void *)idx);
    for (size_t i = 0; i < n; i++)
        p->dense[order[i]] = fits(p, set_bytes(idx, popcount3(p->mask[order[i]])));
    free(order);
    return true;
}

static void prefix_sums(planner *p)
{
    const ee__search_index *idx = p->idx;
    uint64_t per_bitmap = idx->nwords / 2 ? idx->nwords / 2 : 1; /* in postings */
    for (size_t t = 0; t < idx->nterms; t++) {
        p->light_ps[t + 1] = p->light_ps[t] + (p->dense[t] ? 0 : df(idx, t));
        uint64_t bitmaps = p->dense[t] ? (uint64_t)popcount3(p->mask[t]) : 0;
        p->dense_ps[t + 1] = p->dense_ps[t] + per_bitmap * bitmaps;
        for (int c = 0; c < EE__CLS_COUNT; c++)
            p->cls_ps[c][t + 1] = p->cls_ps[c][t] + (p->mask[t] >> c & 1);
    }
}

/* ---- which prefix ranges ------------------------------------------------------ */

static int range_classes(const planner *p, uint32_t lo, uint32_t hi)
{
    int n = 0;
    for (int c = 0; c < EE__CLS_COUNT; c++)
        n += p->cls_ps[c][hi] > p->cls_ps[c][lo];
    return n;
}

static bool add_cand(planner *p, uint32_t lo, uint32_t hi)
{
    uint64_t cost = p->light_ps[hi] - p->light_ps[lo] + p->dense_ps[hi] - p->dense_ps[lo];
    if (hi - lo < 2 || cost <= p->block_min)
        return true;
    if (p->ncand == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 256;
        range_cand *grown = realloc(p->cand, cap * sizeof *grown);
        if (grown == NULL)
            return false;
        p->cand = grown;
        p->cap = cap;
    }
    p->cand[p->ncand++] = (range_cand){lo, hi, cost};
    return true;
}

/* A node of the term trie: [lo, hi) share their first `len` bytes. Its
 * prefixes select [lo, hi) with no term equal to the query word, or, for
 * the prefix equal to terms[lo], [lo + 1, hi) beside that exact term. */
static bool add_node(planner *p, uint32_t lo, uint32_t hi, uint32_t len)
{
    bool ok = add_cand(p, lo, hi);
    if (ok && strlen(p->idx->terms[lo]) == len)
        ok = add_cand(p, lo + 1, hi);
    return ok;
}

static uint32_t common_prefix(const char *a, const char *b)
{
    uint32_t n = 0;
    while (a[n] != '\0' && a[n] == b[n])
        n++;
    return n;
}

/* Every trie node with two or more terms, from the common prefixes of
 * neighbouring sorted terms (the lcp-interval walk: the stack holds open
 * nodes by strictly rising prefix length, at most TERM_MAX + 1 of them). */
static bool trie_nodes(planner *p)
{
    const ee__search_index *idx = p->idx;
    struct { uint32_t len, lo; } st[EE__SEARCH_TERM_MAX + 2] = {{0, 0}};
    size_t top = 0;
    for (size_t i = 1; i <= idx->nterms; i++) {
        uint32_t cur = i < idx->nterms ? common_prefix(idx->terms[i - 1], idx->terms[i]) : 0;
        uint32_t lo = (uint32_t)i - 1;
        while (cur < st[top].len) {
            if (!add_node(p, st[top].lo, (uint32_t)i, st[top].len))
                return false;
            lo = st[top--].lo;
        }
        if (cur > st[top].len) {
            st[++top].len = cur;
            st[top].lo = lo;
        }
    }
    return true;
}

static int cmp_range(const void *a, const void *b)
{
    const range_cand *x = a, *y = b;
    if (x->lo != y->lo)
        return (x->lo > y->lo) - (x->lo < y->lo);
    return (x->hi < y->hi) - (x->hi > y->hi); /* wider first */
}

static int cmp_cost_desc(const void *a, const void *b)
{
    const range_cand *x = a, *y = b;
    if (x->cost != y->cost)
        return (x->cost < y->cost) - (x->cost > y->cost);
    return cmp_range(a, b);
}

/* Unique candidates, the costliest kept while the budget lasts, left in
 * lookup order (lo ascending, hi descending). */
static void choose_ranges(planner *p)
{
    if (p->ncand == 0)
        return; /* p->cand may be NULL */
    qsort(p->cand, p->ncand, sizeof *p->cand, cmp_range);
    size_t n = 0;
    for (size_t i = 0; i < p->ncand; i++)
        if (n == 0 || p->cand[i].lo != p->cand[n - 1].lo || p->cand[i].hi != p->cand[n - 1].hi)
            p->cand[n++] = p->cand[i];
    qsort(p->cand, n, sizeof *p->cand, cmp_cost_desc);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (fits(p, set_bytes(p->idx, range_classes(p, p->cand[i].lo, p->cand[i].hi))))
            p->cand[kept++] = p->cand[i];
    p->ncand = kept;
    qsort(p->cand, kept, sizeof *p->cand, cmp_range);
}

/* ---- filling -------------------------------------------------------------------- */

/* Give set `s` a bitmap per class present in [lo, hi); *next is the next
 * free offset in the arena (units of nwords). */
static void assign_set(ee__search_index *idx, const planner *p, uint32_t s, uint32_t lo,
                       uint32_t hi, uint32_t *next)
{
    for (int c = 0; c < EE__CLS_COUNT; c++)
        idx->sets[s].cls[c] = p->cls_ps[c][hi] > p->cls_ps[c][lo] ? (*next)++ : EE__SEARCH_NONE;
}

static void fill_set(ee__search_index *idx, uint32_t s, uint32_t lo, uint32_t hi)
{
    const ee__search_set *set = &idx->sets[s];
    for (uint32_t i = idx->post_start[lo]; i < idx->post_start[hi]; i++) {
        uint32_t d = idx->post_doc[i];
        uint64_t *bm = idx->bits + (size_t)set->cls[idx->post_cls[i]] * idx->nwords;
        bm[d >> 6] |= 1ull << (d & 63);
    }
}

static bool alloc_sets(ee__search_index *idx, const planner *p)
{
    size_t nterm_sets = 0;
    for (size_t t = 0; t < idx->nterms; t++)
        nterm_sets += p->dense[t];
    size_t units = idx->nwords ? p->used / (idx->nwords * sizeof(uint64_t)) : 0;
    idx->nsets = nterm_sets + p->ncand;
    idx->nblocks = p->ncand;
    idx->sets = malloc((idx->nsets ? idx->nsets : 1) * sizeof *idx->sets);
    idx->bits = calloc(units ? units * idx->nwords : 1, sizeof *idx->bits);
    idx->term_set = malloc((idx->nterms ? idx->nterms : 1) * sizeof *idx->term_set);
    idx->blk_lo = malloc((p->ncand ? p->ncand : 1) * sizeof *idx->blk_lo);
    idx->blk_hi = malloc((p->ncand ? p->ncand : 1) * sizeof *idx->blk_hi);
    idx->blk_set = malloc((p->ncand ? p->ncand : 1) * sizeof *idx->blk_set);
    return units < EE__SEARCH_NONE && idx->sets && idx->bits && idx->term_set && idx->blk_lo &&
           idx->blk_hi && idx->blk_set;
}

static void fill_all(ee__search_index *idx, const planner *p)
{
    uint32_t s = 0, next = 0;
    for (size_t t = 0; t < idx->nterms; t++) {
        idx->term_set[t] = EE__SEARCH_NONE;
        if (!p->dense[t])
            continue;
        assign_set(idx, p, s, (uint32_t)t, (uint32_t)t + 1, &next);
        fill_set(idx, s, (uint32_t)t, (uint32_t)t + 1);
        idx->term_set[t] = s++;
    }
    for (size_t b = 0; b < p->ncand; b++) {
        const range_cand *c = &p->cand[b];
        assign_set(idx, p, s, c->lo, c->hi, &next);
        fill_set(idx, s, c->lo, c->hi);
        idx->blk_lo[b] = c->lo;
        idx->blk_hi[b] = c->hi;
        idx->blk_set[b] = s++;
    }
}

/* Postings stay only for the terms without bitmaps. */
static void drop_dense_postings(ee__search_index *idx)
{
    uint32_t w = 0;
    for (size_t t = 0; t < idx->nterms; t++) {
        uint32_t lo = idx->post_start[t], hi = idx->post_start[t + 1];
        idx->post_start[t] = w;
        if (idx->term_set[t] != EE__SEARCH_NONE)
            continue;
        memmove(idx->post_doc + w, idx->post_doc + lo, (hi - lo) * sizeof *idx->post_doc);
        memmove(idx->post_cls + w, idx->post_cls + lo, hi - lo);
        w += hi - lo;
    }
    idx->post_start[idx->nterms] = w;
    uint32_t *d = realloc(idx->post_doc, (w ? w : 1) * sizeof *d);
    if (d != NULL)
        idx->post_doc = d;
    uint8_t *c = realloc(idx->post_cls, w ? w : 1);
    if (c != NULL)
        idx->post_cls = c;
}

static bool planner_alloc(planner *p)
{
    size_t n = p->idx->nterms + 1;
    p->mask = calloc(n, 1);
    p->dense = calloc(n, sizeof *p->dense);
    p->light_ps = calloc(n, sizeof *p->light_ps);
    p->dense_ps = calloc(n, sizeof *p->dense_ps);
    bool ok = p->mask && p->dense && p->light_ps && p->dense_ps;
    for (int c = 0; c < EE__CLS_COUNT; c++)
        ok = (p->cls_ps[c] = calloc(n, sizeof *p->cls_ps[c])) != NULL && ok;
    return ok;
}

static void planner_free(planner *p)
{
    free(p->mask);
    free(p->dense);
    free(p->light_ps);
    free(p->dense_ps);
    for (int c = 0; c < EE__CLS_COUNT; c++)
        free(p->cls_ps[c]);
    free(p->cand);
}

bool ee__search_plan_bitmaps(ee__search_index *idx, const ee__search_tuning *tuning)
{
    planner p = {.idx = idx};
    defaults(&p, tuning);
    bool ok = planner_alloc(&p);
    if (ok) {
        term_masks(&p);
        ok = choose_terms(&p);
    }
    if (ok) {
        prefix_sums(&p);
        ok = trie_nodes(&p);
    }
    if (ok) {
        choose_ranges(&p);
        ok = alloc_sets(idx, &p);
    }
    if (ok) {
        fill_all(idx, &p);
        drop_dense_postings(idx);
    }
    planner_free(&p);
    return ok;
}

/* ---- the callers' filters ------------------------------------------------------ */

ee_status ee__search_bitmap_new(const ee__search_index *idx,
                                int (*pred)(uint32_t doc, void *payload), void *payload,
                                ee__search_bitmap **out)
{
    *out = calloc(1, sizeof **out + (idx->nwords ? idx->nwords : 1) * sizeof(uint64_t));
    if (*out == NULL)
        return ee__error(EE_ENOMEM, "out of memory building a search filter");
    (*out)->ndocs = idx->ndocs;
    for (uint32_t d = 0; d < idx->ndocs; d++)
        if (pred(idx->to_caller[d], payload))
            (*out)->bits[d >> 6] |= 1ull << (d & 63);
    return EE_OK;
}

void ee__search_bitmap_free(ee__search_bitmap *bm)
{
    free(bm);
}
