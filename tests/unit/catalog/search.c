#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/search.h"
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
    cr_assert_eq(ee__search(idx, q, NULL, NULL, 0, 16, hits, &n, total), EE_OK);
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
    cr_assert_eq(ee__search(idx, "email", only_even, NULL, 0, 16, h, &n, &total), EE_OK);
    for (size_t i = 0; i < n; i++)
        cr_expect_eq(h[i].doc % 2, 0);
    cr_expect_eq(total, n);
    ee__search_hit all[16], page[2];
    size_t nall;
    cr_assert_eq(ee__search(idx, "email", NULL, NULL, 0, 16, all, &nall, NULL), EE_OK);
    cr_assert_eq(ee__search(idx, "email", NULL, NULL, 2, 2, page, &n, &total), EE_OK);
    cr_expect_eq(n, 2);
    cr_expect_eq(total, nall);
    cr_expect_eq(page[0].doc, all[2].doc);
    cr_expect_eq(page[1].doc, all[3].doc);
    char big[EE__SEARCH_QUERY_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cr_expect_eq(ee__search(idx, big, NULL, NULL, 0, 1, h, &n, NULL), EE_ETOOBIG);
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
    cr_assert_eq(ee__search(idx, "\xc3\xa9\xc3\xa9", NULL, NULL, 0, 1, h, &n, NULL), EE_OK);
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
        cr_assert_eq(ee__search(idx, query, NULL, NULL, 0, N, hits, &n, &total), EE_OK);
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
