/* The catalog's full-text index (search.h). */
#include "catalog/search.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

enum { W_NAME = 8, W_TAG = 4, W_DESC = 1 };

struct ee__search_index {
    size_t nterms, ndocs;
    char **terms;          /* sorted, unique */
    uint32_t *post_start;  /* nterms + 1: CSR offsets = prefix sums of counts */
    uint32_t *post_doc;
    uint8_t *post_w;
    uint32_t *fwd_start;   /* ndocs + 1 */
    uint32_t *fwd_term;    /* per doc, ascending term ids */
    uint8_t *fwd_w;
    char **names;
    uint32_t *name_rank;   /* doc -> position in name order (ties: doc) */
};

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

/* Next token of *s into buf (lower-cased, cut at a UTF-8 boundary within
 * EE__SEARCH_TERM_MAX); false at the end. */
static bool next_token(const char **s, char buf[EE__SEARCH_TERM_MAX + 1])
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
    while (next_token(&s, tok))
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

static bool alloc_index(ee__search_index *idx, size_t nterms, size_t npost)
{
    idx->terms = calloc(nterms ? nterms : 1, sizeof *idx->terms);
    idx->post_start = calloc(nterms + 1, sizeof *idx->post_start);
    idx->post_doc = malloc((npost ? npost : 1) * sizeof *idx->post_doc);
    idx->post_w = malloc(npost ? npost : 1);
    idx->fwd_start = calloc(idx->ndocs + 2, sizeof *idx->fwd_start);
    idx->fwd_term = malloc((npost ? npost : 1) * sizeof *idx->fwd_term);
    idx->fwd_w = malloc(npost ? npost : 1);
    return idx->terms && idx->post_start && idx->post_doc && idx->post_w && idx->fwd_start &&
           idx->fwd_term && idx->fwd_w;
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

/* Postings by counting sort on the sorted term id, visiting weights from
 * best to worst and documents in name order, so each term's postings come
 * in rank order: a one-term query reads its best hits first. */
static void fill_postings(ee__search_index *idx, const ee__search_builder *b, const uint32_t *rank,
                          uint32_t *next, const uint32_t *by_name)
{
    static const uint8_t weights[] = {W_NAME, W_TAG, W_DESC};
    for (size_t i = 0; i < b->n; i++)
        idx->post_start[rank[b->pterm[i]] + 1]++;
    for (size_t t = 0; t < idx->nterms; t++)
        idx->post_start[t + 1] += idx->post_start[t];
    memcpy(next, idx->post_start, idx->nterms * sizeof *next);
    for (size_t w = 0; w < sizeof weights; w++)
        for (size_t k = 0; k < idx->ndocs; k++) {
            uint32_t d = by_name[k];
            uint32_t end = d + 1 < idx->ndocs ? b->doc_start[d + 1] : (uint32_t)b->n;
            for (uint32_t i = b->doc_start[d]; i < end; i++) {
                if (b->pw[i] != weights[w])
                    continue;
                uint32_t slot = next[rank[b->pterm[i]]]++;
                idx->post_doc[slot] = d;
                idx->post_w[slot] = b->pw[i];
            }
        }
}

/* Forward lists by counting sort; visiting terms in order keeps each
 * document's list ascending. */
static void fill_forward(ee__search_index *idx, size_t npost)
{
    for (size_t i = 0; i < npost; i++)
        idx->fwd_start[idx->post_doc[i] + 2]++;
    for (size_t d = 0; d < idx->ndocs; d++)
        idx->fwd_start[d + 2] += idx->fwd_start[d + 1];
    for (size_t t = 0; t < idx->nterms; t++)
        for (uint32_t i = idx->post_start[t]; i < idx->post_start[t + 1]; i++) {
            uint32_t slot = idx->fwd_start[idx->post_doc[i] + 1]++;
            idx->fwd_term[slot] = (uint32_t)t;
            idx->fwd_w[slot] = idx->post_w[i];
        }
}

static int cmp_doc_by_name(const void *a, const void *b, void *ctx)
{
    char *const *names = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int c = strcmp(names[x], names[y]);
    return c ? c : (x > y) - (x < y);
}

/* Ties in score are broken by name: precompute each document's position in
 * name order so ranking compares integers, not scattered strings. Returns
 * the documents in name order (caller frees), NULL on ENOMEM. */
static uint32_t *rank_names(ee__search_index *idx, char **names)
{
    uint32_t *order = malloc((idx->ndocs + 1) * sizeof *order);
    idx->name_rank = malloc((idx->ndocs + 1) * sizeof *idx->name_rank);
    if (order == NULL || idx->name_rank == NULL) {
        free(order);
        return NULL;
    }
    for (uint32_t d = 0; d < idx->ndocs; d++)
        order[d] = d;
    qsort_r(order, idx->ndocs, sizeof *order, cmp_doc_by_name, names);
    for (uint32_t i = 0; i < idx->ndocs; i++)
        idx->name_rank[order[i]] = i;
    return order;
}

ee_status ee__search_build(ee__search_builder *b, ee__search_index **out)
{
    *out = NULL;
    ee__search_index *idx = calloc(1, sizeof *idx);
    uint32_t *rank = malloc((b->nterms ? b->nterms : 1) * sizeof *rank);
    uint32_t *next = malloc((b->nterms ? b->nterms : 1) * sizeof *next);
    uint32_t *by_name = NULL;
    if (idx != NULL) {
        idx->ndocs = b->ndocs;
        idx->nterms = b->nterms;
    }
    bool ok = idx && rank && next && b->n < UINT32_MAX && alloc_index(idx, b->nterms, b->n) &&
              (by_name = rank_names(idx, b->names)) != NULL && sort_terms(idx, b, rank);
    if (ok) {
        fill_postings(idx, b, rank, next, by_name);
        fill_forward(idx, b->n);
        idx->names = b->names;
        b->names = NULL;
        b->ndocs = 0;
    }
    free(rank);
    free(next);
    free(by_name);
    ee__search_builder_free(b);
    if (!ok) {
        ee__search_index_free(idx);
        return ee__error(EE_ENOMEM, "out of memory building the search index");
    }
    *out = idx;
    return EE_OK;
}

void ee__search_index_free(ee__search_index *idx)
{
    if (idx == NULL)
        return;
    for (size_t t = 0; idx->terms && t < idx->nterms; t++)
        free(idx->terms[t]);
    for (size_t d = 0; idx->names && d < idx->ndocs; d++)
        free(idx->names[d]);
    free(idx->terms);
    free(idx->names);
    free(idx->name_rank);
    free(idx->post_start);
    free(idx->post_doc);
    free(idx->post_w);
    free(idx->fwd_start);
    free(idx->fwd_term);
    free(idx->fwd_w);
    free(idx);
}

size_t ee__search_index_docs(const ee__search_index *idx)
{
    return idx->ndocs;
}

/* ---- searching ----------------------------------------------------------------- */

typedef struct {
    uint32_t lo, hi;   /* term ids with this prefix */
    int64_t exact;     /* term id equal to the word, or -1 */
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
    word_range r = {(uint32_t)a, (uint32_t)lo, -1};
    if (a < lo && strcmp(idx->terms[a], w) == 0)
        r.exact = (int64_t)a;
    return r;
}

/* The document's best weight for a word, 0 if it has no term in range. */
static uint32_t word_score(const ee__search_index *idx, uint32_t doc, const word_range *r)
{
    uint32_t lo = idx->fwd_start[doc], hi = idx->fwd_start[doc + 1];
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (idx->fwd_term[mid] < r->lo) lo = mid + 1; else hi = mid;
    }
    uint32_t best = 0;
    for (uint32_t i = lo; i < idx->fwd_start[doc + 1] && idx->fwd_term[i] < r->hi; i++) {
        uint32_t s = idx->fwd_w[i] * ((int64_t)idx->fwd_term[i] == r->exact ? 2u : 1u);
        if (s > best)
            best = s;
    }
    return best;
}

static size_t parse_query(const char *query, char words[][EE__SEARCH_TERM_MAX + 1])
{
    size_t n = 0;
    const char *s = query;
    while (n < EE__SEARCH_MAX_WORDS && next_token(&s, words[n])) {
        bool dup = false;
        for (size_t i = 0; i < n; i++)
            dup = dup || strcmp(words[i], words[n]) == 0;
        if (!dup)
            n++;
    }
    return n;
}

/* ---- per-thread scratch ---------------------------------------------------------
 * Two byte arrays of one score per document, all zero between searches
 * (every search clears exactly what it set), and a candidate list. Reused
 * across searches so the hot path allocates nothing; freed at thread exit. */

typedef struct {
    uint8_t *acc, *tmp;
    size_t docs;
    uint32_t *cand;
    size_t cand_cap;
} scratch;

static _Thread_local scratch tls_scratch;
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *unused)
{
    (void)unused;
    free(tls_scratch.acc);
    free(tls_scratch.tmp);
    free(tls_scratch.cand);
    memset(&tls_scratch, 0, sizeof tls_scratch);
}

static void scratch_key_init(void)
{
    (void)pthread_key_create(&scratch_key, scratch_release);
}

static scratch *scratch_get(size_t docs, size_t cand)
{
    scratch *sc = &tls_scratch;
    if (sc->docs < docs) {
        scratch_release(NULL);
        sc->acc = calloc(docs, 1);
        sc->tmp = calloc(docs, 1);
        if (sc->acc == NULL || sc->tmp == NULL) {
            scratch_release(NULL);
            return NULL;
        }
        sc->docs = docs;
        (void)pthread_once(&scratch_once, scratch_key_init);
        (void)pthread_setspecific(scratch_key, sc);
    }
    if (sc->cand_cap < cand) {
        uint32_t *c = realloc(sc->cand, cand * sizeof *c);
        if (c == NULL)
            return NULL;
        sc->cand = c;
        sc->cand_cap = cand;
    }
    return sc;
}

static uint32_t range_postings(const ee__search_index *idx, const word_range *r)
{
    return idx->post_start[r->hi] - idx->post_start[r->lo];
}

/* Each document's best score for a word into `into` (max over the range's
 * terms). Returns the documents first set, appended to list if not NULL. */
static size_t spread(const ee__search_index *idx, const word_range *r, uint8_t *into,
                     uint32_t *list)
{
    size_t n = 0;
    for (uint32_t t = r->lo; t < r->hi; t++) {
        uint8_t mul = (int64_t)t == r->exact ? 2 : 1;
        for (uint32_t i = idx->post_start[t]; i < idx->post_start[t + 1]; i++) {
            uint32_t d = idx->post_doc[i];
            uint8_t s = (uint8_t)(idx->post_w[i] * mul);
            if (into[d] == 0 && list != NULL)
                list[n++] = d;
            if (s > into[d])
                into[d] = s;
        }
    }
    return n;
}

static void unspread(const ee__search_index *idx, const word_range *r, uint8_t *into)
{
    for (uint32_t i = idx->post_start[r->lo]; i < idx->post_start[r->hi]; i++)
        into[idx->post_doc[i]] = 0;
}

/* Keep the candidates that also match word r, adding its score. Chooses
 * streaming the word's postings (sequential) or a binary search in each
 * candidate's term list (random access), whichever touches less memory. */
static size_t intersect(const ee__search_index *idx, const word_range *r, scratch *sc, size_t n)
{
    size_t kept = 0;
    if ((uint64_t)n * 32 < range_postings(idx, r)) {
        for (size_t c = 0; c < n; c++) {
            uint32_t d = sc->cand[c], s = word_score(idx, d, r);
            if (s != 0 && sc->acc[d] + s <= 255) {
                sc->acc[d] = (uint8_t)(sc->acc[d] + s);
                sc->cand[kept++] = d;
            } else {
                sc->acc[d] = 0;
            }
        }
        return kept;
    }
    spread(idx, r, sc->tmp, NULL);
    for (size_t c = 0; c < n; c++) {
        uint32_t d = sc->cand[c];
        if (sc->tmp[d] != 0) {
            sc->acc[d] = (uint8_t)(sc->acc[d] + sc->tmp[d]);
            sc->cand[kept++] = d;
        } else {
            sc->acc[d] = 0;
        }
    }
    unspread(idx, r, sc->tmp);
    return kept;
}

static int cmp_hit(const void *a, const void *b, void *ctx)
{
    const ee__search_index *idx = ctx;
    const ee__search_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    uint32_t rx = idx->name_rank[x->doc], ry = idx->name_rank[y->doc];
    return (rx > ry) - (rx < ry);
}

/* ---- ranking: a bounded heap keeps the best `keep` hits ---------------------- */

typedef struct {
    const ee__search_index *idx;
    int (*accept)(uint32_t doc, void *payload);
    void *payload;
    ee__search_hit *heap; /* worst hit at the root */
    size_t n, keep, total;
} rank_state;

/* Whether a ranks after b (worse score, or equal score and later name). */
static bool worse(const rank_state *rs, const ee__search_hit *a, const ee__search_hit *b)
{
    return cmp_hit(a, b, (void *)rs->idx) > 0;
}

static void sift_down(rank_state *rs, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < rs->n && worse(rs, &rs->heap[l], &rs->heap[m])) m = l;
        if (r < rs->n && worse(rs, &rs->heap[r], &rs->heap[m])) m = r;
        if (m == i)
            return;
        ee__search_hit t = rs->heap[i];
        rs->heap[i] = rs->heap[m];
        rs->heap[m] = t;
        i = m;
    }
}

static void sift_up(rank_state *rs, size_t i)
{
    while (i > 0 && worse(rs, &rs->heap[i], &rs->heap[(i - 1) / 2])) {
        ee__search_hit t = rs->heap[i];
        rs->heap[i] = rs->heap[(i - 1) / 2];
        rs->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static void consider(rank_state *rs, uint32_t doc, uint32_t score)
{
    if (rs->accept != NULL && !rs->accept(doc, rs->payload))
        return;
    rs->total++;
    ee__search_hit h = {doc, score};
    if (rs->keep == 0)
        return;
    if (rs->n < rs->keep) {
        rs->heap[rs->n++] = h;
        sift_up(rs, rs->n - 1);
    } else if (worse(rs, &rs->heap[0], &h)) {
        rs->heap[0] = h;
        sift_down(rs, 0);
    }
}

/* Candidates from the driver word, narrowed by every other word, ranked. */
static bool run_search(const ee__search_index *idx, const word_range *r, size_t nw, size_t driver,
                       rank_state *rs)
{
    scratch *sc = scratch_get(idx->ndocs, range_postings(idx, &r[driver]) + 1);
    if (sc == NULL)
        return false;
    size_t n = spread(idx, &r[driver], sc->acc, sc->cand);
    for (size_t i = 0; i < nw && n > 0; i++)
        if (i != driver)
            n = intersect(idx, &r[i], sc, n);
    for (size_t c = 0; c < n; c++) {
        consider(rs, sc->cand[c], sc->acc[sc->cand[c]]);
        sc->acc[sc->cand[c]] = 0;
    }
    return true;
}

/* One word matching one term: its postings are stored in rank order and
 * every score carries the same exact-match factor, so the page is a slice
 * and the total is the posting count. */
static ee_status single_term(const ee__search_index *idx, const word_range *r, size_t offset,
                             size_t limit, ee__search_hit *hits, size_t *n_hits, size_t *total_out)
{
    uint32_t t = r->lo, mul = (int64_t)t == r->exact ? 2u : 1u;
    uint32_t first = idx->post_start[t], count = idx->post_start[t + 1] - first;
    for (size_t i = offset; i < count && *n_hits < limit; i++)
        hits[(*n_hits)++] = (ee__search_hit){idx->post_doc[first + i], mul * idx->post_w[first + i]};
    if (total_out)
        *total_out = count;
    return EE_OK;
}

ee_status ee__search(const ee__search_index *idx, const char *query,
                     int (*accept)(uint32_t doc, void *payload), void *payload, size_t offset,
                     size_t limit, ee__search_hit *hits, size_t *n_hits, size_t *total_out)
{
    *n_hits = 0;
    if (total_out)
        *total_out = 0;
    if (query == NULL || strlen(query) > EE__SEARCH_QUERY_MAX)
        return ee__error(EE_ETOOBIG, "search query longer than %d bytes", EE__SEARCH_QUERY_MAX);
    char words[EE__SEARCH_MAX_WORDS][EE__SEARCH_TERM_MAX + 1];
    word_range r[EE__SEARCH_MAX_WORDS];
    size_t nw = parse_query(query, words), driver = 0;
    for (size_t i = 0; i < nw; i++) {
        r[i] = prefix_range(idx, words[i]);
        if (r[i].lo == r[i].hi)
            return EE_OK; /* a word nothing matches: no result */
        if (idx->post_start[r[i].hi] - idx->post_start[r[i].lo] <
            idx->post_start[r[driver].hi] - idx->post_start[r[driver].lo])
            driver = i;
    }
    if (nw == 0)
        return EE_OK;
    if (nw == 1 && r[0].hi - r[0].lo == 1 && accept == NULL)
        return single_term(idx, &r[0], offset, limit, hits, n_hits, total_out);
    size_t keep = offset + limit < offset ? SIZE_MAX : offset + limit;
    if (keep > idx->ndocs)
        keep = idx->ndocs;
    rank_state rs = {idx, accept, payload, malloc((keep ? keep : 1) * sizeof *rs.heap), 0, keep, 0};
    if (rs.heap == NULL || !run_search(idx, r, nw, driver, &rs)) {
        free(rs.heap);
        return ee__error(EE_ENOMEM, "out of memory searching the catalog");
    }
    qsort_r(rs.heap, rs.n, sizeof *rs.heap, cmp_hit, (void *)idx);
    for (size_t i = offset; i < rs.n && *n_hits < limit; i++)
        hits[(*n_hits)++] = rs.heap[i];
    if (total_out)
        *total_out = rs.total;
    free(rs.heap);
    return EE_OK;
}
