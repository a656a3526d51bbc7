/* The catalog's full-text index (search.h): tokenising, the builder, and
 * the build up to the postings; search_bitmaps.c adds the bitmaps and
 * search_query.c searches. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/search_internal.h"
#include "core/core.h"

/* Builder weights: a document keeps a term's best field (highest weight). */
enum { W_NAME = 8, W_TAG = 4, W_DESC = 1 };

/* ---- tokenising ------------------------------------------------------------ */

static bool is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

/* Length of the longest prefix of buf[0..n) that ends on a whole UTF-8
 * sequence. */
static size_t utf8_complete_prefix(const char *buf, size_t n)
{
    size_t i = n;
    while (i > 0 && ((unsigned char)buf[i - 1] & 0xC0) == 0x80)
        i--;
    if (i == 0)
        return 0;
    unsigned char lead = (unsigned char)buf[i - 1];
    size_t want = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return (i - 1) + want <= n ? n : i - 1;
}

bool ee__search_next_token(const char **s, char buf[EE__SEARCH_TERM_MAX + 1])
{
    const unsigned char *p = (const unsigned char *)*s;
    while (*p && !is_word_byte(*p))
        p++;
    if (*p == '\0') {
        *s = (const char *)p;
        return false;
    }
    size_t n = 0;
    bool cut = false;
    for (; is_word_byte(*p); p++) {
        if (n < EE__SEARCH_TERM_MAX)
            buf[n++] = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
        else
            cut = true;
    }
    if (cut) /* drop a multi-byte sequence the cut left incomplete */
        n = utf8_complete_prefix(buf, n);
    buf[n] = '\0';
    *s = (const char *)p;
    return n > 0;
}

/* ---- building ----------------------------------------------------------------- */

/* The builder interns terms in an open-addressing table and keeps postings
 * as (term id, doc, weight) triples; the build sorts only the distinct
 * terms and places postings with a counting sort. */
struct ee__search_builder {
    char **tstr;            /* provisional term id -> string */
    uint32_t nterms, tcap;
    uint32_t *slots;        /* hash table of provisional id + 1 (0 = empty) */
    uint32_t nslots;
    uint32_t *pterm, *pdoc;
    uint8_t *pw;
    size_t n, cap;
    size_t doc_first;       /* first posting of the current document */
    uint32_t *doc_start;    /* per document: its first posting (ndocs + 1 at build) */
    char **names;
    size_t ndocs, names_cap;
};

static uint32_t hash_term(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static bool grow_slots(ee__search_builder *b)
{
    uint32_t n = b->nslots ? b->nslots * 2 : 4096;
    uint32_t *slots = calloc(n, sizeof *slots);
    if (slots == NULL)
        return false;
    for (uint32_t t = 0; t < b->nterms; t++) {
        uint32_t i = hash_term(b->tstr[t]) & (n - 1);
        while (slots[i])
            i = (i + 1) & (n - 1);
        slots[i] = t + 1;
    }
    free(b->slots);
    b->slots = slots;
    b->nslots = n;
    return true;
}

/* The provisional id of `term`, interning it; UINT32_MAX on ENOMEM. */
static uint32_t intern(ee__search_builder *b, const char *term)
{
    if ((b->nterms + 1) * 2 > b->nslots && !grow_slots(b))
        return UINT32_MAX;
    uint32_t i = hash_term(term) & (b->nslots - 1);
    for (; b->slots[i]; i = (i + 1) & (b->nslots - 1))
        if (strcmp(b->tstr[b->slots[i] - 1], term) == 0)
            return b->slots[i] - 1;
    if (b->nterms == b->tcap) {
        uint32_t cap = b->tcap ? b->tcap * 2 : 1024;
        char **grown = realloc(b->tstr, cap * sizeof *grown);
        if (grown == NULL)
            return UINT32_MAX;
        b->tstr = grown;
        b->tcap = cap;
    }
    char *copy = strdup(term);
    if (copy == NULL)
        return UINT32_MAX;
    b->tstr[b->nterms] = copy;
    b->slots[i] = b->nterms + 1;
    return b->nterms++;
}

ee_status ee__search_builder_new(ee__search_builder **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? EE_OK : ee__error(EE_ENOMEM, "out of memory building the search index");
}

void ee__search_builder_free(ee__search_builder *b)
{
    if (b == NULL)
        return;
    for (uint32_t t = 0; t < b->nterms; t++)
        free(b->tstr[t]);
    for (size_t i = 0; i < b->ndocs; i++)
        free(b->names[i]);
    free(b->tstr);
    free(b->slots);
    free(b->pterm);
    free(b->pdoc);
    free(b->pw);
    free(b->names);
    free(b->doc_start);
    free(b);
}

static bool grow_postings(ee__search_builder *b)
{
    size_t cap = b->cap ? b->cap * 2 : 4096;
    uint32_t *t = realloc(b->pterm, cap * sizeof *t);
    if (t != NULL)
        b->pterm = t;
    uint32_t *d = realloc(b->pdoc, cap * sizeof *d);
    if (d != NULL)
        b->pdoc = d;
    uint8_t *w = realloc(b->pw, cap);
    if (w != NULL)
        b->pw = w;
    if (t == NULL || d == NULL || w == NULL)
        return false;
    b->cap = cap;
    return true;
}

static bool add_posting(ee__search_builder *b, const char *term, uint8_t w)
{
    uint32_t id = intern(b, term);
    if (id == UINT32_MAX)
        return false;
    /* Within one document a term keeps its best weight. */
    for (size_t i = b->doc_first; i < b->n; i++)
        if (b->pterm[i] == id) {
            if (w > b->pw[i])
                b->pw[i] = w;
            return true;
        }
    if (b->n == b->cap && !grow_postings(b))
        return false;
    b->pterm[b->n] = id;
    b->pdoc[b->n] = (uint32_t)b->ndocs;
    b->pw[b->n++] = w;
    return true;
}

static bool add_text(ee__search_builder *b, const char *text, uint8_t w)
{
    char tok[EE__SEARCH_TERM_MAX + 1];
    const char *s = text ? text : "";
    while (ee__search_next_token(&s, tok))
        if (!add_posting(b, tok, w))
            return false;
    return true;
}

ee_status ee__search_builder_add(ee__search_builder *b, const char *name, const char *description,
                                 const char *const *tags, size_t n_tags)
{
    if (b->ndocs >= UINT32_MAX - 1)
        return ee__error(EE_ETOOBIG, "search index is full");
    if (b->ndocs == b->names_cap) {
        size_t cap = b->names_cap ? b->names_cap * 2 : 256;
        char **grown = realloc(b->names, cap * sizeof *grown);
        if (grown != NULL)
            b->names = grown;
        uint32_t *starts = realloc(b->doc_start, (cap + 1) * sizeof *starts);
        if (starts != NULL)
            b->doc_start = starts;
        if (grown == NULL || starts == NULL)
            return ee__error(EE_ENOMEM, "out of memory building the search index");
        b->names_cap = cap;
    }
    b->doc_first = b->n;
    bool ok = add_text(b, name, W_NAME) && add_text(b, description, W_DESC);
    for (size_t i = 0; ok && i < n_tags; i++)
        ok = add_text(b, tags[i], W_TAG);
    char *copy = strdup(name ? name : "");
    if (!ok || copy == NULL) {
        free(copy);
        b->n = b->doc_first; /* nothing of a failed document stays */
        return ee__error(EE_ENOMEM, "out of memory building the search index");
    }
    b->doc_start[b->ndocs] = (uint32_t)b->doc_first;
    b->names[b->ndocs++] = copy;
    return EE_OK;
}

static int cmp_term_ptr(const void *a, const void *b)
{
    return strcmp(**(char *const *const *)a, **(char *const *const *)b);
}

static bool alloc_index(ee__search_index *idx, size_t npost)
{
    size_t nt = idx->nterms ? idx->nterms : 1, np = npost ? npost : 1;
    idx->terms = calloc(nt, sizeof *idx->terms);
    idx->post_start = calloc(idx->nterms + 1, sizeof *idx->post_start);
    idx->post_doc = malloc(np * sizeof *idx->post_doc);
    idx->post_cls = malloc(np);
    idx->to_caller = malloc((idx->ndocs ? idx->ndocs : 1) * sizeof *idx->to_caller);
    return idx->terms && idx->post_start && idx->post_doc && idx->post_cls && idx->to_caller;
}

/* Sorted terms, and rank[provisional id] = sorted id. Strings move over. */
static bool sort_terms(ee__search_index *idx, ee__search_builder *b, uint32_t *rank)
{
    char ***order = malloc((b->nterms ? b->nterms : 1) * sizeof *order);
    if (order == NULL)
        return false;
    for (uint32_t t = 0; t < b->nterms; t++)
        order[t] = &b->tstr[t];
    qsort(order, b->nterms, sizeof *order, cmp_term_ptr);
    for (uint32_t r = 0; r < b->nterms; r++) {
        uint32_t prov = (uint32_t)(order[r] - b->tstr);
        rank[prov] = r;
        idx->terms[r] = b->tstr[prov];
    }
    for (uint32_t t = 0; t < b->nterms; t++)
        b->tstr[t] = NULL;
    free(order);
    return true;
}

static uint8_t class_of(uint8_t weight)
{
    return weight == W_NAME ? EE__CLS_NAME : weight == W_TAG ? EE__CLS_TAG : EE__CLS_DESC;
}

/* Postings by counting sort on the sorted term id, visiting documents in
 * internal (name) order, so each term's postings are ascending. */
static void fill_postings(ee__search_index *idx, const ee__search_builder *b, const uint32_t *rank,
                          uint32_t *next)
{
    for (size_t i = 0; i < b->n; i++)
        idx->post_start[rank[b->pterm[i]] + 1]++;
    for (size_t t = 0; t < idx->nterms; t++)
        idx->post_start[t + 1] += idx->post_start[t];
    memcpy(next, idx->post_start, idx->nterms * sizeof *next);
    for (uint32_t k = 0; k < idx->ndocs; k++) {
        uint32_t d = idx->to_caller[k];
        uint32_t end = d + 1 < idx->ndocs ? b->doc_start[d + 1] : (uint32_t)b->n;
        for (uint32_t i = b->doc_start[d]; i < end; i++) {
            uint32_t slot = next[rank[b->pterm[i]]]++;
            idx->post_doc[slot] = k;
            idx->post_cls[slot] = class_of(b->pw[i]);
        }
    }
}

static int cmp_doc_by_name(const void *a, const void *b, void *ctx)
{
    char *const *names = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = strcmp(names[x], names[y]);
    return c ? c : (x > y) - (x < y);
}

/* Internal numbers are positions in name order (ties: the caller's
 * number), so ranking breaks ties by comparing internal numbers. */
static void number_by_name(ee__search_index *idx, char **names)
{
    for (uint32_t d = 0; d < idx->ndocs; d++)
        idx->to_caller[d] = d;
    qsort_r(idx->to_caller, idx->ndocs, sizeof *idx->to_caller, cmp_doc_by_name, names);
}

static bool build_postings(ee__search_index *idx, ee__search_builder *b)
{
    uint32_t *rank = malloc((b->nterms ? b->nterms : 1) * sizeof *rank);
    uint32_t *next = malloc((b->nterms ? b->nterms : 1) * sizeof *next);
    bool ok = rank && next && b->n < UINT32_MAX && alloc_index(idx, b->n) &&
              sort_terms(idx, b, rank);
    if (ok) {
        number_by_name(idx, b->names);
        fill_postings(idx, b, rank, next);
    }
    free(rank);
    free(next);
    return ok;
}

ee_status ee__search_build_tuned(ee__search_builder *b, const ee__search_tuning *tuning,
                                 ee__search_index **out)
{
    *out = NULL;
    ee__search_tuning defaults = {0};
    ee__search_index *idx = calloc(1, sizeof *idx);
    if (idx != NULL) {
        idx->ndocs = b->ndocs;
        idx->nwords = (b->ndocs + 63) / 64;
        idx->nterms = b->nterms;
    }
    bool ok = idx && build_postings(idx, b) &&
              ee__search_plan_bitmaps(idx, tuning ? tuning : &defaults);
    ee__search_builder_free(b);
    if (!ok) {
        ee__search_index_free(idx);
        return ee__error(EE_ENOMEM, "out of memory building the search index");
    }
    *out = idx;
    return EE_OK;
}

ee_status ee__search_build(ee__search_builder *b, ee__search_index **out)
{
    return ee__search_build_tuned(b, NULL, out);
}

void ee__search_index_free(ee__search_index *idx)
{
    if (idx == NULL)
        return;
    for (size_t t = 0; idx->terms && t < idx->nterms; t++)
        free(idx->terms[t]);
    free(idx->terms);
    free(idx->post_start);
    free(idx->post_doc);
    free(idx->post_cls);
    free(idx->to_caller);
    free(idx->term_set);
    free(idx->blk_lo);
    free(idx->blk_hi);
    free(idx->blk_set);
    free(idx->sets);
    free(idx->bits);
    free(idx);
}

size_t ee__search_index_docs(const ee__search_index *idx)
{
    return idx->ndocs;
}
