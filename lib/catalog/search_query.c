/*
 * Searching the index (search.h). Per query word: six class bitmaps (the
 * word's exact term and the rest of its prefix range, each by name, tag and
 * description; the index's own bitmaps are read in place when one suffices),
 * turned into the word's score levels and added, 64 documents at a time,
 * into the bit slices of the summed score while the match set narrows
 * (search_bits.c). Then the filter's callback, the total, and the page by a
 * bit-sliced top-k threshold search whose counts stop early once decided.
 * Every step is a bounded number of passes over ndocs/64 words, in
 * per-thread scratch.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/search_bits.h"
#include "catalog/search_internal.h"
#include "core/core.h"

/* ---- the query's words ------------------------------------------------------- */

typedef struct {
    uint32_t lo, hi;   /* term ids with this prefix */
    bool exact;        /* terms[lo] is the word itself */
} word_range;

static word_range prefix_range(const ee__search_index *idx, const char *w)
{
    size_t wl = strlen(w), lo = 0, hi = idx->nterms;
    while (lo < hi) { /* first term >= w */
        size_t mid = (lo + hi) / 2;
        if (strcmp(idx->terms[mid], w) < 0) lo = mid + 1; else hi = mid;
    }
    size_t a = lo;
    hi = idx->nterms;
    while (lo < hi) { /* first term not starting with w */
        size_t mid = (lo + hi) / 2;
        if (strncmp(idx->terms[mid], w, wl) <= 0) lo = mid + 1; else hi = mid;
    }
    word_range r = {(uint32_t)a, (uint32_t)lo, a < lo && strcmp(idx->terms[a], w) == 0};
    return r;
}

static size_t parse_query(const char *query, char words[][EE__SEARCH_TERM_MAX + 1])
{
    size_t n = 0;
    const char *s = query;
    while (n < EE__SEARCH_MAX_WORDS && ee__search_next_token(&s, words[n])) {
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup = dup || strcmp(words[i], words[n]) == 0;
        if (!dup)
            n++;
    }
    return n;
}

/* ---- per-thread scratch ---------------------------------------------------------
 * Bitmaps over the documents, reused across searches so the hot path
 * allocates nothing; freed at thread exit. Every search writes a bitmap
 * before reading it, except ZERO and ONES, set when allocated. */

enum {
    SB_CLS = 0,                         /* 6: a word's classes when merged here */
    SB_ZERO = SB_CLS + 6,
    SB_ONES,
    SB_MATCH,
    SB_FILTER,                          /* the AND of two or more filter bitmaps */
    SB_SLICES,                          /* 8: bit slices of the summed score */
    SB_TOP = SB_SLICES + 8,             /* 4: better and tied sets of two top-k */
    SB_LIST = SB_TOP + 4,               /* a few matches with their scores */
    SB_COUNT
};

typedef struct {
    uint64_t *mem;
    size_t nwords;
} scratch;

static _Thread_local scratch tls_scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *unused)
{
    (void)unused;
    free(tls_scratch.mem);
    memset(&tls_scratch, 0, sizeof tls_scratch);
}

static void scratch_key_init(void)
{
    (void)pthread_key_create(&scratch_key, scratch_release);
}

static uint64_t *scratch_get(size_t nwords)
{
    scratch *sc = &tls_scratch;
    if (sc->mem == NULL || sc->nwords < nwords) {
        scratch_release(NULL);
        size_t nw = nwords ? nwords : 1;
        sc->mem = calloc(SB_COUNT * nw, sizeof *sc->mem);
        if (sc->mem == NULL)
            return NULL;
        memset(sc->mem + SB_ONES * nw, 0xff, nw * sizeof *sc->mem);
        sc->nwords = nw;
        (void)pthread_once(&scratch_once, scratch_key_init);
        (void)pthread_setspecific(scratch_key, sc);
    }
    return sc->mem;
}

/* ---- one search's state ------------------------------------------------------------ */

typedef struct {
    const ee__search_index *idx;
    uint64_t *mem;            /* scratch: SB_COUNT bitmaps of `stride` words */
    size_t stride, nw;        /* nw: the index's words per bitmap */
    /* The word's class bitmaps: ZERO (none yet), one of the index's (read
     * in place), or the scratch bitmap SB_CLS + k once owned. */
    ee__bits_word word;
    unsigned owned;           /* bit k: class k is its scratch bitmap */
    int nbits;                /* slices the summed score needs */
    int words;                /* query words: a score has at most this many bits set */
    uint32_t max_score;       /* the sum of the words' best possible scores */
    size_t total;
} query;

static uint64_t *sb(const query *q, int slot)
{
    return q->mem + (size_t)slot * q->stride;
}

/* ---- a word's class bitmaps ----------------------------------------------------- */

/* Class k as its writable scratch bitmap, holding what it held. */
static uint64_t *cls_own(query *q, int k)
{
    uint64_t *dst = sb(q, SB_CLS + k);
    if (!(q->owned >> k & 1)) {
        memcpy(dst, q->word.cls[k], q->nw * sizeof *dst);
        q->word.cls[k] = dst;
        q->owned |= 1u << k;
    }
    return dst;
}

static void merge_bitmap(query *q, int k, const uint64_t *src)
{
    if (q->word.cls[k] == sb(q, SB_ZERO)) {
        q->word.cls[k] = src; /* the index's own bitmap, read in place */
        return;
    }
    uint64_t *dst = sb(q, SB_CLS + k);
    ee__bits_or(dst, q->word.cls[k], src, q->nw);
    q->word.cls[k] = dst;
    q->owned |= 1u << k;
}

static void merge_set(query *q, uint32_t set, int base)
{
    const ee__search_set *s = &q->idx->sets[set];
    for (int c = 0; c < EE__CLS_COUNT; c++)
        if (s->cls[c] != EE__SEARCH_NONE)
            merge_bitmap(q, base + c, q->idx->bits + (size_t)s->cls[c] * q->nw);
}

static void merge_term(query *q, uint32_t t, int base)
{
    const ee__search_index *idx = q->idx;
    if (idx->term_set[t] != EE__SEARCH_NONE) {
        merge_set(q, idx->term_set[t], base);
        return;
    }
    uint64_t *dst[EE__CLS_COUNT] = {NULL, NULL, NULL};
    for (uint32_t i = idx->post_start[t]; i < idx->post_start[t + 1]; i++) {
        uint32_t d = idx->post_doc[i], c = idx->post_cls[i];
        if (dst[c] == NULL)
            dst[c] = cls_own(q, base + (int)c);
        dst[c][d >> 6] |= 1ull << (d & 63);
    }
}

/* First block starting at or after term t. */
static size_t first_block(const ee__search_index *idx, uint32_t t)
{
    size_t lo = 0, hi = idx->nblocks;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (idx->blk_lo[mid] < t) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* Terms [lo, hi), none of them the word itself: the widest block starting
 * at each position that fits, else the term alone. */
static void merge_range(query *q, uint32_t lo, uint32_t hi)
{
    const ee__search_index *idx = q->idx;
    size_t b = first_block(idx, lo);
    for (uint32_t t = lo; t < hi;) {
        while (b < idx->nblocks && idx->blk_lo[b] < t)
            b++;
        size_t k = b;
        while (k < idx->nblocks && idx->blk_lo[k] == t && idx->blk_hi[k] > hi)
            k++;
        if (k < idx->nblocks && idx->blk_lo[k] == t) {
            merge_set(q, idx->blk_set[k], EE__CLS_COUNT);
            t = idx->blk_hi[k];
        } else {
            merge_term(q, t++, EE__CLS_COUNT);
        }
    }
}

/* The word's best possible score, from the classes it has. */
static uint32_t word_max(const query *q)
{
    static const uint32_t best[2 * EE__CLS_COUNT] = {16, 8, 2, 8, 4, 1};
    uint32_t m = 0;
    for (int k = 0; k < 2 * EE__CLS_COUNT; k++)
        if (q->word.cls[k] != sb(q, SB_ZERO) && best[k] > m)
            m = best[k];
    return m;
}

static void word_classes(query *q, const word_range *r)
{
    for (int k = 0; k < 2 * EE__CLS_COUNT; k++)
        q->word.cls[k] = sb(q, SB_ZERO);
    q->owned = 0;
    if (r->exact)
        merge_term(q, r->lo, 0);
    merge_range(q, r->lo + r->exact, r->hi);
    q->max_score += word_max(q);
}

/* ---- matching: words, filters, total ---------------------------------------------- */

static bool check_filter(const ee__search_index *idx, const ee__search_filter *f)
{
    for (size_t i = 0; f != NULL && i < f->n_bitmaps; i++)
        if (f->bitmaps[i] == NULL || f->bitmaps[i]->ndocs != idx->ndocs)
            return false;
    return true;
}

/* The AND of the filter's bitmaps (ONES: none), in place when one. */
static const uint64_t *filter_bitmaps(query *q, const ee__search_filter *f)
{
    if (f == NULL || f->n_bitmaps == 0)
        return sb(q, SB_ONES);
    if (f->n_bitmaps == 1)
        return f->bitmaps[0]->bits;
    uint64_t *m = sb(q, SB_FILTER);
    ee__bits_and(m, f->bitmaps[0]->bits, f->bitmaps[1]->bits, q->nw);
    for (size_t i = 2; i < f->n_bitmaps; i++)
        ee__bits_and(m, m, f->bitmaps[i]->bits, q->nw);
    return m;
}

static void filter_accept(query *q, const ee__search_filter *f)
{
    uint64_t *m = sb(q, SB_MATCH);
    for (size_t j = 0; j < q->nw; j++)
        for (uint64_t w = m[j]; w != 0; w &= w - 1) {
            uint32_t d = (uint32_t)(j * 64 + (size_t)__builtin_ctzll(w));
            if (!f->accept(q->idx->to_caller[d], f->payload))
                m[j] &= ~(1ull << (d & 63));
        }
}

/* Match set, slices and total for the words; false when nothing matches. */
static bool match(query *q, const word_range *r, size_t nw, const ee__search_filter *f)
{
    const uint64_t *filter = filter_bitmaps(q, f);
    uint64_t *m = sb(q, SB_MATCH), *slices = sb(q, SB_SLICES);
    for (size_t i = 0; i < nw; i++) {
        word_classes(q, &r[i]);
        bool any = i == 0 ? ee__bits_first_word(&q->word, filter, m, slices, q->stride, q->nw)
                          : ee__bits_add_word(&q->word, m, slices, q->stride, q->nbits, q->nw);
        if (!any)
            return false;
        if (i == 0) /* the slices above the first word's start at zero */
            for (int b = 5; b < q->nbits; b++)
                memset(slices + (size_t)b * q->stride, 0, q->nw * sizeof *m);
    }
    if (f != NULL && f->accept != NULL)
        filter_accept(q, f);
    q->total = ee__bits_count(m, q->nw);
    return q->total > 0;
}

/* ---- the page: bit-sliced top-k ------------------------------------------------------- */

/* The tied set's documents having slice s are strictly better than the
 * rest: move them to `better`; the tied set keeps the others (unless no
 * more of it is wanted). */
static void absorb(const query *q, ee__bits_top *t, const uint64_t *s, size_t c, uint64_t *better,
                   uint64_t *tied)
{
    if (t->better == sb(q, SB_ZERO))
        ee__bits_and(better, t->tied, s, q->nw);
    else
        ee__bits_or_and(better, t->tied, s, q->nw);
    t->better = better;
    t->quota -= c;
    if (t->quota > 0) {
        ee__bits_andnot(tied, t->tied, s, q->nw);
        t->tied = tied;
    }
}

/* The best k matches (O'Neil & Quass): from the top slice down, count
 * the tied set's documents having the bit (stopping once past the quota);
 * more than still wanted narrows the tied set to them, else they are all
 * in. k >= total keeps every match. Slices above the best possible score
 * are empty, and a score is a sum of `words` powers of two: once that many
 * bits are fixed set, the lower ones are clear. `which` picks the scratch
 * (two sets live at once). */
static void top_k(const query *q, size_t k, int which, ee__bits_top *t)
{
    const uint64_t *zero = sb(q, SB_ZERO);
    *t = (ee__bits_top){zero, k == 0 ? zero : sb(q, SB_MATCH), k};
    if (k == 0 || k >= q->total)
        return;
    uint64_t *better = sb(q, SB_TOP + 2 * which), *tied = better + q->stride;
    int b = 31 - __builtin_clz(q->max_score | 1), set = 0;
    for (b = b < q->nbits ? b : q->nbits - 1; b >= 0 && set < q->words && t->quota > 0; b--) {
        const uint64_t *s = sb(q, SB_SLICES + b);
        size_t c = ee__bits_count_and(t->tied, s, q->nw, t->quota);
        if (c > t->quota) { /* narrow */
            ee__bits_and(tied, t->tied, s, q->nw);
            t->tied = tied;
            set++;
        } else if (c > 0) {
            absorb(q, t, s, c, better, tied);
        }
    }
}

static uint32_t score_of(const query *q, uint32_t d)
{
    const uint64_t *slices = sb(q, SB_SLICES);
    uint32_t s = 0;
    for (int b = 0; b < q->nbits; b++)
        s |= (uint32_t)(slices[(size_t)b * q->stride + (d >> 6)] >> (d & 63) & 1) << b;
    return s;
}

static int cmp_hit(const void *a, const void *b)
{
    const ee__search_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return (x->doc > y->doc) - (x->doc < y->doc);
}

/* Few matches: score each and place it by a counting sort on the score
 * (stable, so ties stay in document order); keep ranks offset .. keep - 1. */
static size_t rank_few(const query *q, size_t offset, size_t keep, ee__search_hit *hits)
{
    uint32_t *docs = (uint32_t *)sb(q, SB_LIST);
    uint8_t *score = (uint8_t *)(docs + q->total);
    uint32_t count[256] = {0}, pos[256];
    const uint64_t *m = sb(q, SB_MATCH);
    size_t n = 0;
    for (size_t j = 0; j < q->nw; j++)
        for (uint64_t w = m[j]; w != 0; w &= w - 1) {
            docs[n] = (uint32_t)(j * 64 + (size_t)__builtin_ctzll(w));
            score[n] = (uint8_t)score_of(q, docs[n]);
            count[score[n++]]++;
        }
    pos[255] = 0;
    for (int v = 254; v >= 0; v--)
        pos[v] = pos[v + 1] + count[v + 1];
    for (size_t i = 0; i < n; i++) {
        size_t r = pos[score[i]]++;
        if (r >= offset && r < keep)
            hits[r - offset] = (ee__search_hit){q->idx->to_caller[docs[i]], score[i]};
    }
    return keep - offset;
}

/* The hits ranked offset .. keep - 1 (keep <= total): the best keep less
 * the best offset, in rank order. */
static size_t page(const query *q, size_t offset, size_t keep, ee__search_hit *hits)
{
    if (q->total <= q->nw / 2) /* 5 bytes each fit in one bitmap's 8 * nw */
        return rank_few(q, offset, keep, hits);
    ee__bits_top in, out;
    top_k(q, keep, 0, &in);
    top_k(q, offset, 1, &out);
    size_t n = ee__bits_extract(&in, &out, q->nw, hits, keep - offset);
    for (size_t i = 0; i < n; i++)
        hits[i].score = score_of(q, hits[i].doc);
    qsort(hits, n, sizeof *hits, cmp_hit);
    for (size_t i = 0; i < n; i++)
        hits[i].doc = q->idx->to_caller[hits[i].doc];
    return n;
}

/* ---- the search --------------------------------------------------------------------------- */

static int slices_for(size_t words)
{
    return words <= 1 ? 5 : words == 2 ? 6 : words <= 4 ? 7 : 8;
}

ee_status ee__search(const ee__search_index *idx, const char *query_text,
                     const ee__search_filter *filter, size_t offset, size_t limit,
                     ee__search_hit *hits, size_t *n_hits, size_t *total_out)
{
    *n_hits = 0;
    if (total_out)
        *total_out = 0;
    if (query_text == NULL || strlen(query_text) > EE__SEARCH_QUERY_MAX)
        return ee__error(EE_ETOOBIG, "search query longer than %d bytes", EE__SEARCH_QUERY_MAX);
    if (!check_filter(idx, filter))
        return ee__error(EE_EINVAL, "search filter bitmap of another index");
    char words[EE__SEARCH_MAX_WORDS][EE__SEARCH_TERM_MAX + 1];
    word_range r[EE__SEARCH_MAX_WORDS];
    size_t nw = parse_query(query_text, words);
    for (size_t i = 0; i < nw; i++) {
        r[i] = prefix_range(idx, words[i]);
        if (r[i].lo == r[i].hi)
            return EE_OK; /* a word nothing matches: no result */
    }
    if (nw == 0)
        return EE_OK;
    query q = {.idx = idx, .nw = idx->nwords, .nbits = slices_for(nw), .words = (int)nw};
    if ((q.mem = scratch_get(idx->nwords)) == NULL)
        return ee__error(EE_ENOMEM, "out of memory searching the catalog");
    q.stride = tls_scratch.nwords;
    if (!match(&q, r, nw, filter))
        return EE_OK;
    if (total_out)
        *total_out = q.total;
    size_t keep = offset + limit < offset ? SIZE_MAX : offset + limit;
    if (keep > q.total)
        keep = q.total;
    if (keep > offset)
        *n_hits = page(&q, offset, keep, hits);
    return EE_OK;
}
