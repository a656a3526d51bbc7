#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/search_internal.h"
#include "core/core.h"

typedef struct {
    const char *name, *desc;
    const char *tags[3];
} test_doc;

static const test_doc docs[] = {
    {"Daily AI research email", "Searches the web and emails a digest", {"research", "email", NULL}},
    {"Slack standup summary", "Summarises yesterday's Slack threads", {"slack", NULL}},
    {"Email summariser", "Reads your inbox and writes a summary", {"gmail", NULL}},
    {"Lead enrichment", "Looks up companies, then sends an email", {"crm", "hubspot", NULL}},
    {"Résumé screener", "Ranks résumés against a role", {"hr", NULL}},
    {"Notion sync", "Copies pages", {"notion", "EMAIL-free", NULL}},
};
#define NDOCS (sizeof docs / sizeof docs[0])

static ee__search_index *build(void)
{
    ee__search_builder *b = NULL;
    cr_assert_eq(ee__search_builder_new(&b), EE_OK);
    for (size_t i = 0; i < NDOCS; i++) {
        size_t nt = 0;
        while (nt < 3 && docs[i].tags[nt])
            nt++;
        cr_assert_eq(ee__search_builder_add(b, docs[i].name, docs[i].desc, docs[i].tags, nt), EE_OK);
    }
    ee__search_index *idx = NULL;
    cr_assert_eq(ee__search_build(b, &idx), EE_OK);
    return idx;
}

static size_t run(const ee__search_index *idx, const char *q, ee__search_hit *hits, size_t *total)
{
    size_t n = 0;
    cr_assert_eq(ee__search(idx, q, NULL, 0, 16, hits, &n, total), EE_OK);
    return n;
}

Test(search, ranks_name_over_tags_over_description)
{
    ee__search_index *idx = build();
    ee__search_hit h[16];
    size_t total;
    size_t n = run(idx, "email", h, &total);
    cr_assert_eq(n, 4, "got %zu", n); /* docs 0, 2, 3, 5 */
    cr_expect_eq(total, 4);
    /* Name matches (whole word: 16) first, tie broken by name. */
    cr_expect_eq(h[0].doc, 0);
    cr_expect_eq(h[0].score, 16);
    cr_expect_eq(h[1].doc, 2);
    /* Then the tag match "EMAIL-free" (tag whole word: 8), then description. */
    cr_expect_eq(h[2].doc, 5);
    cr_expect_eq(h[2].score, 8);
    cr_expect_eq(h[3].score, 2);
    ee__search_index_free(idx);
}

Test(search, prefixes_case_and_conjunction)
{
    ee__search_index *idx = build();
    ee__search_hit h[16];
    size_t total;
    cr_expect_eq(run(idx, "SUMM", h, &total), 2, "summary, summariser (and Summarises)");
    cr_expect_eq(run(idx, "summ slack", h, &total), 1);
    cr_expect_eq(h[0].doc, 1);
    cr_expect_eq(run(idx, "email gmail", h, &total), 1);
    cr_expect_eq(h[0].doc, 2);
    cr_expect_eq(run(idx, "email nothingmatches", h, &total), 0);
    cr_expect_eq(run(idx, "", h, &total), 0);
    cr_expect_eq(run(idx, "  --  ", h, &total), 0);
    cr_expect_eq(run(idx, "résumé", h, &total), 1, "UTF-8 words are words");
    cr_expect_eq(run(idx, "email email EMAIL", h, &total), 4, "repeated words count once");
    cr_expect_eq(h[0].score, 16);
    ee__search_index_free(idx);
}

static int only_even(uint32_t doc, void *payload)
{
    (void)payload;
    return doc % 2 == 0;
}

Test(search, filter_offset_limit)
{
    ee__search_index *idx = build();
    ee__search_hit h[16];
    size_t n, total;
    ee__search_filter even = {NULL, 0, only_even, NULL};
    cr_assert_eq(ee__search(idx, "email", &even, 0, 16, h, &n, &total), EE_OK);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(h[i].doc % 2, 0);
    cr_expect_eq(total, n);
    ee__search_hit all[16], page[2];
    size_t nall;
    cr_assert_eq(ee__search(idx, "email", NULL, 0, 16, all, &nall, NULL), EE_OK);
    cr_assert_eq(ee__search(idx, "email", NULL, 2, 2, page, &n, &total), EE_OK);
    cr_expect_eq(n, 2);
    cr_expect_eq(total, nall);
    cr_expect_eq(page[0].doc, all[2].doc);
    cr_expect_eq(page[1].doc, all[3].doc);
    char big[EE__SEARCH_QUERY_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_expect_eq(ee__search(idx, big, NULL, 0, 1, h, &n, NULL), EE_ETOOBIG);
    ee__search_index_free(idx);
}

Test(search, long_words_are_cut_on_a_character_boundary)
{
    ee__search_builder *b = NULL;
    cr_assert_eq(ee__search_builder_new(&b), EE_OK);
    char name[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(name, "\xc3\xa9"); /* 80 bytes of é */
    cr_assert_eq(ee__search_builder_add(b, name, NULL, NULL, 0), EE_OK);
    ee__search_index *idx = NULL;
    cr_assert_eq(ee__search_build(b, &idx), EE_OK);
    ee__search_hit h[1];
    size_t n;
    cr_assert_eq(ee__search(idx, "\xc3\xa9\xc3\xa9", NULL, 0, 1, h, &n, NULL), EE_OK);
    cr_expect_eq(n, 1);
    ee__search_index_free(idx);
}

/* ---- the index agrees with a brute-force scan on random catalogs -------- */

static const char *const vocab[] = {"email", "emails", "summary", "summarise", "slack", "sla",
                                    "research", "report", "lead", "leads", "crm", "notion",
                                    "digest", "daily", "weekly", "web", "webhook", "ai", "gmail",
                                    "invoice"};
#define NVOCAB (sizeof vocab / sizeof vocab[0])

typedef struct {
    char name[128], desc[256], tag[2][32];
} rdoc;

static void random_text(char *out, size_t cap, int words)
{
    out[0] = '\0';
    for (int i = 0; i < words; i++) {
        strncat(out, vocab[rand() % NVOCAB], cap - strlen(out) - 2);
        strncat(out, i % 3 == 2 ? ", " : " ", cap - strlen(out) - 1);
    }
}

static bool has_prefix_word(const char *text, const char *w, bool *exact)
{
    char tok[EE__SEARCH_TERM_MAX + 1];
    bool found = false;
    size_t wl = strlen(w);
    for (const char *p = text; *p;) {
        size_t n = 0;
        while (*p && !((*p >= 'a' && *p <= 'z')))
            p++;
        while (*p >= 'a' && *p <= 'z')
            tok[n++] = *p++;
        tok[n] = '\0';
        if (n >= wl && strncmp(tok, w, wl) == 0) {
            found = true;
            if (n == wl)
                *exact = true;
        }
    }
    return found;
}

static uint32_t brute_score(const rdoc *d, const char *w)
{
    uint32_t best = 0;
    const char *fields[] = {d->name, d->tag[0], d->tag[1], d->desc};
    const uint32_t weight[] = {8, 4, 4, 1};
    for (int f = 0; f < 4; f++) {
        bool exact = false;
        if (has_prefix_word(fields[f], w, &exact)) {
            uint32_t s = weight[f] * (exact ? 2 : 1);
            best = s > best ? s : best;
        }
    }
    return best;
}

Test(search, agrees_with_brute_force)
{
    enum { N = 1500, QUERIES = 400 };
    static rdoc rd[N];
    srand(20261123);
    ee__search_builder *b = NULL;
    cr_assert_eq(ee__search_builder_new(&b), EE_OK);
    for (int i = 0; i < N; i++) {
        random_text(rd[i].name, sizeof rd[i].name, 1 + rand() % 4);
        random_text(rd[i].desc, sizeof rd[i].desc, rand() % 12);
        snprintf(rd[i].tag[0], 32, "%s", vocab[rand() % NVOCAB]);
        snprintf(rd[i].tag[1], 32, "%s", vocab[rand() % NVOCAB]);
        const char *tags[] = {rd[i].tag[0], rd[i].tag[1]};
        cr_assert_eq(ee__search_builder_add(b, rd[i].name, rd[i].desc, tags, 2), EE_OK);
    }
    ee__search_index *idx = NULL;
    cr_assert_eq(ee__search_build(b, &idx), EE_OK);
    static ee__search_hit hits[N];
    for (int q = 0; q < QUERIES; q++) {
        char words[2][16];
        int nw = 1 + rand() % 2;
        char query[40] = "";
        for (int i = 0; i < nw; i++) {
            const char *v = vocab[rand() % NVOCAB];
            snprintf(words[i], sizeof words[i], "%.*s", 1 + rand() % (int)strlen(v), v);
            strcat(query, words[i]);
            strcat(query, " ");
        }
        if (nw == 2 && strcmp(words[0], words[1]) == 0)
            nw = 1;
        size_t n, total;
        cr_assert_eq(ee__search(idx, query, NULL, 0, N, hits, &n, &total), EE_OK);
        size_t expect = 0;
        for (int d = 0; d < N; d++) {
            uint32_t s = 0, w0 = brute_score(&rd[d], words[0]);
            uint32_t w1 = nw == 2 ? brute_score(&rd[d], words[1]) : 1;
            if (w0 && w1) {
                s = w0 + (nw == 2 ? w1 : 0);
                expect++;
                bool found = false;
                for (size_t k = 0; k < n && !found; k++)
                    if (hits[k].doc == (uint32_t)d) {
                        found = true;
                        cr_expect_eq(hits[k].score, s, "query \"%s\" doc %d", query, d);
                    }
                cr_expect(found, "query \"%s\" missed doc %d", query, d);
            }
        }
        cr_expect_eq(n, expect, "query \"%s\"", query);
        for (size_t k = 1; k < n; k++)
            cr_expect_geq(hits[k - 1].score, hits[k].score, "ranking order");
    }
    ee__search_index_free(idx);
}

/* ---- a reference oracle: every path of the index against brute force ------
 * Random catalogs over a small alphabet make deep prefix ranges (a, ab, abc,
 * abd ...), repeated names make ties, and tunings force every storage
 * choice: all postings, all bitmaps, prefix blocks everywhere, a budget too
 * small for anything, and the defaults on catalogs big enough for them. */

#include <pthread.h>

enum { OR_NAME = 96, OR_DESC = 200, OR_TAGS = 3, OR_TAG = 24, OR_TOKS = 48 };

typedef struct {
    char name[OR_NAME], desc[OR_DESC], tag[OR_TAGS][OR_TAG];
    size_t ntags;
    /* lower-cased tokens with their field weight (8 name, 4 tag, 1 description) */
    char tok[OR_TOKS][OR_TAG];
    uint32_t tok_w[OR_TOKS];
    size_t ntok;
} odoc;

typedef struct {
    odoc *d;
    size_t n;
    char vocab[400][12];
    size_t nvocab;
} corpus;

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

/* Skewed: low indices far more often, so some words are in most documents. */
static const char *pick_word(const corpus *c)
{
    uint32_t r = rnd((uint32_t)c->nvocab);
    return c->vocab[rnd(2) ? r : r % (1 + c->nvocab / 16)];
}

static void make_vocab(corpus *c, size_t n)
{
    static const char alpha[] = "abcd";
    c->nvocab = n;
    for (size_t i = 0; i < n; i++) {
        size_t len = 1 + rnd(i < 40 ? 3 : 7);
        for (size_t k = 0; k < len; k++)
            c->vocab[i][k] = alpha[rnd(4)];
        c->vocab[i][len] = '\0';
    }
}

static void words_text(const corpus *c, char *out, size_t cap, int n)
{
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        char w[16];
        snprintf(w, sizeof w, "%s", pick_word(c));
        if (rnd(5) == 0)
            w[0] = (char)(w[0] - 'a' + 'A'); /* case folds */
        strncat(out, w, cap - strlen(out) - 3);
        strncat(out, rnd(3) ? " " : ", ", cap - strlen(out) - 1);
    }
}

static void tokenize_into(odoc *d, const char *text, uint32_t w)
{
    for (const char *p = text; *p;) {
        while (*p && !isalnum((unsigned char)*p))
            p++;
        char t[OR_TAG];
        size_t n = 0;
        for (; isalnum((unsigned char)*p); p++)
            if (n + 1 < sizeof t)
                t[n++] = (char)tolower((unsigned char)*p);
        t[n] = '\0';
        if (n > 0 && d->ntok < OR_TOKS) {
            memcpy(d->tok[d->ntok], t, n + 1);
            d->tok_w[d->ntok++] = w;
        }
    }
}

static void make_corpus(corpus *c, size_t n, size_t nvocab)
{
    make_vocab(c, nvocab);
    c->n = n;
    c->d = calloc(n ? n : 1, sizeof *c->d);
    cr_assert_not_null(c->d);
    for (size_t i = 0; i < n; i++) {
        odoc *d = &c->d[i];
        if (i > 0 && rnd(8) == 0)
            memcpy(d->name, c->d[rnd((uint32_t)i)].name, sizeof d->name); /* a tie on name */
        else
            words_text(c, d->name, sizeof d->name, 1 + (int)rnd(3));
        words_text(c, d->desc, sizeof d->desc, (int)rnd(9));
        d->ntags = rnd(OR_TAGS + 1);
        for (size_t t = 0; t < d->ntags; t++)
            snprintf(d->tag[t], OR_TAG, "%s", pick_word(c));
        tokenize_into(d, d->name, 8);
        tokenize_into(d, d->desc, 1);
        for (size_t t = 0; t < d->ntags; t++)
            tokenize_into(d, d->tag[t], 4);
    }
}

static ee__search_index *index_corpus(const corpus *c, const ee__search_tuning *tuning)
{
    ee__search_builder *b = NULL;
    cr_assert_eq(ee__search_builder_new(&b), EE_OK);
    for (size_t i = 0; i < c->n; i++) {
        const char *tags[OR_TAGS];
        for (size_t t = 0; t < c->d[i].ntags; t++)
            tags[t] = c->d[i].tag[t];
        cr_assert_eq(ee__search_builder_add(b, c->d[i].name, c->d[i].desc, tags, c->d[i].ntags),
                     EE_OK);
    }
    ee__search_index *idx = NULL;
    cr_assert_eq(ee__search_build_tuned(b, tuning, &idx), EE_OK);
    cr_assert_eq(ee__search_index_docs(idx), c->n);
    return idx;
}

/* The query's words as the index reads them: lower-cased, first 8 distinct. */
static size_t oracle_words(const char *q, char words[][EE__SEARCH_TERM_MAX + 1])
{
    odoc tmp;
    tmp.ntok = 0;
    tokenize_into(&tmp, q, 0);
    size_t n = 0;
    for (size_t i = 0; i < tmp.ntok && n < EE__SEARCH_MAX_WORDS; i++) {
        bool dup = false;
        for (size_t k = 0; k < n; k++)
            dup = dup || strcmp(words[k], tmp.tok[i]) == 0;
        if (!dup)
            snprintf(words[n++], EE__SEARCH_TERM_MAX + 1, "%s", tmp.tok[i]);
    }
    return n;
}

static uint32_t oracle_word(const odoc *d, const char *w)
{
    uint32_t best = 0;
    size_t wl = strlen(w);
    for (size_t i = 0; i < d->ntok; i++)
        if (strncmp(d->tok[i], w, wl) == 0) {
            uint32_t s = d->tok_w[i] * (strlen(d->tok[i]) == wl ? 2 : 1);
            best = s > best ? s : best;
        }
    return best;
}

typedef struct {
    const corpus *c;
    int kind; /* 0 none, 1..3 a predicate family */
} pred_ctx;

static int pred(uint32_t doc, void *payload)
{
    const pred_ctx *p = payload;
    switch (p->kind) {
    case 1: return doc % 3 != 0;
    case 2: return (doc * 2654435761u >> 7) % 5 != 0;
    case 3: return strlen(p->c->d[doc].name) % 2 == 0;
    default: return 1;
    }
}

typedef struct {
    ee__search_hit *hits;
    size_t n, total;
} result;

static const corpus *sort_corpus;

static int cmp_oracle(const void *a, const void *b)
{
    const ee__search_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    int c = strcmp(sort_corpus->d[x->doc].name, sort_corpus->d[y->doc].name);
    return c ? c : (x->doc > y->doc) - (x->doc < y->doc);
}

/* Filters the oracle applies: bitmap predicates (ANDed) and a callback. */
typedef struct {
    pred_ctx bm[3];
    size_t nbm;
    pred_ctx cb;
    bool has_cb;
} ofilter;

static result oracle(const corpus *c, const char *q, const ofilter *f, size_t offset,
                     size_t limit)
{
    char words[EE__SEARCH_MAX_WORDS][EE__SEARCH_TERM_MAX + 1];
    size_t nw = oracle_words(q, words);
    result r = {calloc(c->n + 1, sizeof *r.hits), 0, 0};
    cr_assert_not_null(r.hits);
    for (size_t d = 0; d < c->n && nw > 0; d++) {
        bool ok = true;
        for (size_t i = 0; i < f->nbm; i++)
            ok = ok && pred((uint32_t)d, (void *)&f->bm[i]);
        if (!ok || (f->has_cb && !pred((uint32_t)d, (void *)&f->cb)))
            continue;
        uint32_t s = 0;
        for (size_t w = 0; w < nw && ok; w++) {
            uint32_t ws = oracle_word(&c->d[d], words[w]);
            ok = ws != 0;
            s += ws;
        }
        if (ok)
            r.hits[r.total++] = (ee__search_hit){(uint32_t)d, s};
    }
    sort_corpus = c;
    qsort(r.hits, r.total, sizeof *r.hits, cmp_oracle);
    size_t from = offset < r.total ? offset : r.total;
    r.n = r.total - from < limit ? r.total - from : limit;
    memmove(r.hits, r.hits + from, r.n * sizeof *r.hits);
    return r;
}

/* A query from the vocabulary: 1-3 words (sometimes up to 9), each a
 * prefix of a word, sometimes a word nothing has, sometimes repeated. */
static void random_query(const corpus *c, char *q, size_t cap)
{
    int nw = rnd(20) == 0 ? 1 + (int)rnd(9) : 1 + (int)rnd(3);
    q[0] = '\0';
    for (int i = 0; i < nw; i++) {
        const char *v = pick_word(c);
        char w[24];
        if (rnd(30) == 0)
            snprintf(w, sizeof w, "zq");
        else
            snprintf(w, sizeof w, "%.*s", 1 + (int)rnd((uint32_t)strlen(v)), v);
        if (rnd(6) == 0)
            w[0] = (char)toupper((unsigned char)w[0]);
        strncat(q, w, cap - strlen(q) - 3);
        strncat(q, rnd(4) ? " " : "-", cap - strlen(q) - 1);
    }
}

static void random_page(size_t ndocs, size_t *offset, size_t *limit)
{
    static const size_t limits[] = {0, 1, 3, 21, 101};
    *limit = rnd(6) == 0 ? ndocs + 7 : limits[rnd(5)];
    uint32_t r = rnd(4);
    *offset = r == 0 ? rnd((uint32_t)ndocs + 10) : r == 1 ? rnd(25) : 0;
}

static bool same_result(const result *want, const ee__search_hit *got, size_t n, size_t total)
{
    bool same = n == want->n && total == want->total;
    for (size_t i = 0; same && i < n; i++)
        same = got[i].doc == want->hits[i].doc && got[i].score == want->hits[i].score;
    return same;
}

static void expect_same(const result *want, const ee__search_hit *got, size_t n, size_t total,
                        const char *q, size_t offset, size_t limit)
{
    if (same_result(want, got, n, total))
        return;
    cr_assert_eq(total, want->total, "total for \"%s\": %zu, want %zu", q, total, want->total);
    cr_assert_eq(n, want->n, "hits for \"%s\" offset %zu limit %zu: %zu, want %zu", q, offset,
                 limit, n, want->n);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(got[i].doc, want->hits[i].doc, "\"%s\" offset %zu rank %zu: doc %u, want %u",
                     q, offset, i, got[i].doc, want->hits[i].doc);
        cr_assert_eq(got[i].score, want->hits[i].score, "\"%s\" rank %zu: score %u, want %u", q,
                     i, got[i].score, want->hits[i].score);
    }
}

static void random_filter(const corpus *c, ofilter *f)
{
    memset(f, 0, sizeof *f);
    uint32_t r = rnd(7);
    f->nbm = r >= 2 ? 1 + (r >= 5) + (r == 6) : 0;
    for (size_t i = 0; i < f->nbm; i++)
        f->bm[i] = (pred_ctx){c, 1 + (int)((i + rnd(3)) % 3)};
    f->has_cb = r == 1 || r == 4 || r == 6;
    f->cb = (pred_ctx){c, 1 + (int)rnd(3)};
}

/* The filter's bitmaps for this index, built from the same predicates. */
static void filter_for(const ee__search_index *idx, ofilter *of, ee__search_bitmap *bms[3],
                       ee__search_filter *f)
{
    for (size_t i = 0; i < of->nbm; i++)
        cr_assert_eq(ee__search_bitmap_new(idx, pred, &of->bm[i], &bms[i]), EE_OK);
    *f = (ee__search_filter){(const ee__search_bitmap *const *)bms, of->nbm,
                             of->has_cb ? pred : NULL, &of->cb};
}

static void check_queries(const corpus *c, const ee__search_index *idx, int queries)
{
    ee__search_hit *got = calloc(c->n + 8, sizeof *got);
    cr_assert_not_null(got);
    for (int i = 0; i < queries; i++) {
        char q[160];
        random_query(c, q, sizeof q);
        ofilter of;
        random_filter(c, &of);
        ee__search_bitmap *bms[3] = {NULL, NULL, NULL};
        ee__search_filter f;
        filter_for(idx, &of, bms, &f);
        size_t offset, limit, n, total;
        random_page(c->n, &offset, &limit);
        result want = oracle(c, q, &of, offset, limit);
        cr_assert_eq(ee__search(idx, q, rnd(2) || of.nbm || of.has_cb ? &f : NULL, offset, limit,
                                got, &n, &total), EE_OK, "\"%s\"", q);
        expect_same(&want, got, n, total, q, offset, limit);
        free(want.hits);
        for (int b = 0; b < 3; b++)
            ee__search_bitmap_free(bms[b]);
    }
    free(got);
}

static const ee__search_tuning tunings[] = {
    {0, 0, 0},                                   /* defaults */
    {UINT32_MAX, UINT32_MAX, 0},                 /* postings only */
    {1, UINT32_MAX, 0},                          /* every term a bitmap */
    {UINT32_MAX, 1, 0},                          /* prefix blocks everywhere */
    {2, 8, 0},                                   /* a mix */
    {1, 1, 1},                                   /* a budget nothing fits in */
    {3, 16, 40 * 1024},                          /* a budget that runs out part way */
};
#define NTUNINGS (sizeof tunings / sizeof tunings[0])

static void oracle_suite(size_t ndocs, size_t nvocab, int queries, uint64_t seed)
{
    rng_state = seed;
    corpus c;
    make_corpus(&c, ndocs, nvocab);
    for (size_t t = 0; t < NTUNINGS; t++) {
        ee__search_index *idx = index_corpus(&c, &tunings[t]);
        check_queries(&c, idx, queries);
        ee__search_index_free(idx);
    }
    free(c.d);
}

Test(search_oracle, tiny_catalogs)
{
    for (size_t n = 0; n <= 9; n++)
        oracle_suite(n, 12, 60, 0x9e3779b97f4a7c15ull + n);
}

Test(search_oracle, around_one_machine_word)
{
    oracle_suite(63, 30, 200, 11);
    oracle_suite(64, 30, 200, 12);
    oracle_suite(65, 30, 200, 13);
    oracle_suite(129, 60, 200, 14);
}

Test(search_oracle, hundreds_of_documents)
{
    oracle_suite(700, 150, 300, 21);
}

/* Large enough that the defaults make dense bitmaps (1/64 of 5000 is 78
 * documents) and prefix blocks (ranges over 4096 postings). */
Test(search_oracle, defaults_on_a_large_catalog, .timeout = 120)
{
    rng_state = 31;
    corpus c;
    make_corpus(&c, 5000, 400);
    ee__search_index *idx = index_corpus(&c, NULL);
    cr_assert_gt(idx->nsets, 0, "dense terms have bitmaps");
    cr_assert_gt(idx->nblocks, 0, "heavy prefixes have bitmaps");
    check_queries(&c, idx, 400);
    ee__search_index_free(idx);
    free(c.d);
}

Test(search_oracle, the_oracle_can_fail)
{
    /* The comparison must be able to fail: the index's own answer passes,
     * the same answer with two neighbours of equal score swapped (a wrong
     * tie-break) or one score changed does not. */
    rng_state = 5;
    corpus c;
    make_corpus(&c, 300, 20);
    ofilter none;
    memset(&none, 0, sizeof none);
    result want = oracle(&c, "a", &none, 0, 300);
    ee__search_index *idx = index_corpus(&c, NULL);
    ee__search_hit got[300];
    size_t n, total;
    cr_assert_eq(ee__search(idx, "a", NULL, 0, 300, got, &n, &total), EE_OK);
    cr_assert(same_result(&want, got, n, total));
    size_t i = 1;
    while (i < n && got[i].score != got[i - 1].score)
        i++;
    cr_assert_lt(i, n, "the corpus has ties");
    ee__search_hit t = got[i];
    got[i] = got[i - 1];
    got[i - 1] = t;
    cr_expect_not(same_result(&want, got, n, total));
    got[i - 1] = got[i];
    got[i] = t;
    got[0].score++;
    cr_expect_not(same_result(&want, got, n, total));
    got[0].score--;
    cr_expect_not(same_result(&want, got, n, total + 1));
    ee__search_index_free(idx);
    free(want.hits);
    free(c.d);
}

/* A thread's scratch is sized by the largest index it searched: searches
 * of a smaller one after a larger one, and back, must not mix them up. */
Test(search_oracle, small_and_large_indexes_in_turn)
{
    rng_state = 41;
    corpus big, small;
    make_corpus(&big, 2000, 100);
    make_corpus(&small, 70, 30);
    ee__search_index *ib = index_corpus(&big, NULL), *is = index_corpus(&small, NULL);
    for (int round = 0; round < 40; round++) {
        check_queries(&big, ib, 3);
        check_queries(&small, is, 3);
    }
    ee__search_index_free(ib);
    ee__search_index_free(is);
    free(big.d);
    free(small.d);
}

/* Eight words each an exact name term: the summed score reaches 128, the
 * top of the slices; a ninth word is ignored. */
Test(search_oracle, eight_words_fill_the_slices)
{
    ee__search_builder *b = NULL;
    cr_assert_eq(ee__search_builder_new(&b), EE_OK);
    for (int i = 0; i < 100; i++) {
        char name[128];
        snprintf(name, sizeof name, "%s one two three four five six seven eight",
                 i % 2 ? "odd" : "even");
        cr_assert_eq(ee__search_builder_add(b, i % 3 ? name : "one", NULL, NULL, 0), EE_OK);
    }
    ee__search_index *idx = NULL;
    cr_assert_eq(ee__search_build(b, &idx), EE_OK);
    ee__search_hit h[100];
    size_t n, total;
    cr_assert_eq(ee__search(idx, "one two three four five six seven eight nine", NULL, 0, 100, h,
                            &n, &total), EE_OK);
    cr_expect_eq(total, 66);
    cr_expect_eq(n, 66);
    cr_expect_eq(h[0].score, 128);
    cr_expect_eq(h[0].doc, 2, "\"even ...\" sorts before \"odd ...\"");
    cr_expect_eq(h[65].score, 128);
    ee__search_index_free(idx);
}

Test(search_oracle, a_bitmap_of_another_index_is_refused)
{
    rng_state = 9;
    corpus c1, c2;
    make_corpus(&c1, 70, 20);
    make_corpus(&c2, 200, 20);
    ee__search_index *i1 = index_corpus(&c1, NULL), *i2 = index_corpus(&c2, NULL);
    pred_ctx p = {&c1, 1};
    ee__search_bitmap *bm = NULL;
    cr_assert_eq(ee__search_bitmap_new(i1, pred, &p, &bm), EE_OK);
    const ee__search_bitmap *list[] = {bm};
    ee__search_filter f = {list, 1, NULL, NULL};
    ee__search_hit h[4];
    size_t n, total;
    cr_expect_eq(ee__search(i2, "a", &f, 0, 4, h, &n, &total), EE_EINVAL);
    cr_expect_eq(ee__search(i1, "a", &f, 0, 4, h, &n, &total), EE_OK);
    ee__search_bitmap_free(bm);
    ee__search_index_free(i1);
    ee__search_index_free(i2);
    free(c1.d);
    free(c2.d);
}

/* ---- one index, several threads ------------------------------------------------ */

enum { CONC_THREADS = 4, CONC_QUERIES = 150 };

typedef struct {
    const corpus *c;
    const ee__search_index *idx;
    const ee__search_bitmap *bm;
    char (*queries)[160];
    result *want;     /* per query, without and with the bitmap */
    int first;        /* each thread starts elsewhere in the list */
    int failures;
} conc_arg;

static void *conc_worker(void *p)
{
    conc_arg *a = p;
    ee__search_hit got[32];
    const ee__search_bitmap *list[] = {a->bm};
    ee__search_filter f = {list, 1, NULL, NULL};
    for (int round = 0; round < 3; round++)
        for (int k = 0; k < 2 * CONC_QUERIES; k++) {
            int i = (k + a->first) % (2 * CONC_QUERIES);
            size_t n, total;
            if (ee__search(a->idx, a->queries[i / 2], i % 2 ? &f : NULL, 0, 32, got, &n, &total)
                != EE_OK) {
                a->failures++;
                continue;
            }
            a->failures += !same_result(&a->want[i], got, n, total);
        }
    return NULL;
}

Test(search_oracle, threads_share_one_index, .timeout = 120)
{
    rng_state = 77;
    static corpus c;
    make_corpus(&c, 3000, 200);
    ee__search_index *idx = index_corpus(&c, NULL);
    static char queries[CONC_QUERIES][160];
    static result want[2 * CONC_QUERIES];
    ofilter none, half;
    memset(&none, 0, sizeof none);
    memset(&half, 0, sizeof half);
    half.nbm = 1;
    half.bm[0] = (pred_ctx){&c, 2};
    ee__search_bitmap *bm = NULL;
    cr_assert_eq(ee__search_bitmap_new(idx, pred, &half.bm[0], &bm), EE_OK);
    for (int i = 0; i < CONC_QUERIES; i++) {
        random_query(&c, queries[i], sizeof queries[i]);
        want[2 * i] = oracle(&c, queries[i], &none, 0, 32);
        want[2 * i + 1] = oracle(&c, queries[i], &half, 0, 32);
    }
    pthread_t th[CONC_THREADS];
    conc_arg args[CONC_THREADS];
    for (int t = 0; t < CONC_THREADS; t++) {
        args[t] = (conc_arg){&c, idx, bm, queries, want, t * 37, 0};
        cr_assert_eq(pthread_create(&th[t], NULL, conc_worker, &args[t]), 0);
    }
    for (int t = 0; t < CONC_THREADS; t++) {
        pthread_join(th[t], NULL);
        cr_expect_eq(args[t].failures, 0, "thread %d: %d searches differ", t, args[t].failures);
    }
    for (int i = 0; i < 2 * CONC_QUERIES; i++)
        free(want[i].hits);
    ee__search_bitmap_free(bm);
    ee__search_index_free(idx);
    free(c.d);
}
