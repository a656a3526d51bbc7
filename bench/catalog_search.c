/*
 * catalog.search: ranked prefix search over n catalog entries (n = 200 and
 * 100,000) against a linear case-insensitive strstr scan of the same
 * entries, both measured in this run. Target: at 100,000 entries, p99
 * under 100 us and at least 20x faster than the scan (slowdown <= 0.05).
 *
 * Two datasets, reported apart ("dataset"):
 *   broad60  - 60 words in all: every query word is in ~15% of entries, so
 *              every query matches thousands (the worst case);
 *   zipf5000 - 5,000 words drawn Zipf(1), queries drawn the same way (people
 *              search common words more often), as real text behaves.
 *
 * Each is run again with "filter": "active" - the customer's path: only
 * active entries (95% of them, fixed by the entry's number) count, through
 * a filter bitmap built once per index as the catalog does per snapshot;
 * the scan skips inactive entries too. Same entries and queries as the
 * unfiltered run.
 *
 * And with "filter": "active+access" - a workspace's search when some
 * entries are not open to everyone (catalog access): 10% of the entries
 * are restricted and this workspace may run half of those, so a second
 * bitmap (the one the catalog keeps per workspace and snapshot) is ANDed
 * in; the scan skips those entries too. When every entry is open to
 * everyone the catalog adds no bitmap: that is the "active" run.
 */
#include <ctype.h>

#include "bench_util.h"
#include "catalog/search.h"

static const char *const verbs[] = {"send", "summarise", "scrape", "enrich", "sync", "post",
                                    "track", "classify", "translate", "monitor", "archive",
                                    "notify", "score", "draft", "publish", "import", "export",
                                    "digest", "research", "review"};
static const char *const objects[] = {"email", "leads", "invoices", "tickets", "news", "prices",
                                      "reviews", "contacts", "orders", "tweets", "posts",
                                      "meetings", "documents", "resumes", "reports", "alerts",
                                      "competitors", "keywords", "videos", "podcasts"};
static const char *const channels[] = {"slack", "gmail", "notion", "hubspot", "salesforce",
                                       "shopify", "sheets", "outlook", "linkedin", "telegram",
                                       "discord", "airtable", "trello", "jira", "github",
                                       "stripe", "zendesk", "intercom", "webflow", "wordpress"};
#define PICK(a) a[rand() % (int)(sizeof a / sizeof a[0])]

typedef struct {
    char name[96], desc[192], tags[2][24];
    char lower[400]; /* what the linear scan searches */
    int active;
    int visible; /* this workspace may run it (the "active+access" run) */
} entry;

/* 95% active, spread by a hash of the entry's number (no rand() drawn, so
 * the data matches the unfiltered run's). */
static int entry_active(size_t i)
{
    return (uint32_t)(i * 2654435761u) % 20 != 0;
}

static void make_entry_broad(entry *e, int i);

/* ---- the Zipf dataset ---------------------------------------------------- */

#define ZIPF_WORDS 5000
static char zipf_vocab[ZIPF_WORDS][12];
static double zipf_cdf[ZIPF_WORDS];

static void zipf_init(void)
{
    static const char *const syl[] = {"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa",
                                      "qu", "bre", "dan", "fel", "gor", "hin", "jot", "wex"};
    double sum = 0;
    for (int i = 0; i < ZIPF_WORDS; i++) {
        int n = 2 + i % 3, v = i;
        zipf_vocab[i][0] = '\0';
        for (int k = 0; k < n; k++, v /= 18)
            strcat(zipf_vocab[i], syl[(v + k * 7) % 18]);
        sum += 1.0 / (i + 1);
        zipf_cdf[i] = sum;
    }
    for (int i = 0; i < ZIPF_WORDS; i++)
        zipf_cdf[i] /= sum;
}

static const char *zipf_word(void)
{
    double u = (double)rand() / ((double)RAND_MAX + 1);
    int lo = 0, hi = ZIPF_WORDS - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u) lo = mid + 1; else hi = mid;
    }
    return zipf_vocab[lo];
}

static void zipf_text(char *out, size_t cap, int words)
{
    out[0] = '\0';
    for (int i = 0; i < words; i++) {
        strncat(out, zipf_word(), cap - strlen(out) - 2);
        strcat(out, " ");
    }
}

static int use_zipf;

static void make_entry(entry *e, int i)
{
    if (use_zipf) {
        zipf_text(e->name, sizeof e->name, 3 + rand() % 4);
        zipf_text(e->desc, sizeof e->desc, 10 + rand() % 10);
        snprintf(e->tags[0], sizeof e->tags[0], "%s", zipf_word());
        snprintf(e->tags[1], sizeof e->tags[1], "%s", zipf_word());
        snprintf(e->lower, sizeof e->lower, "%s %s %s %s", e->name, e->desc, e->tags[0], e->tags[1]);
        return;
    }
    make_entry_broad(e, i);
}

static void make_entry_broad(entry *e, int i)
{
    snprintf(e->name, sizeof e->name, "%s %s to %s %d", PICK(verbs), PICK(objects), PICK(channels), i);
    snprintf(e->desc, sizeof e->desc, "Every day, %s the %s from %s and %s them with AI",
             PICK(verbs), PICK(objects), PICK(channels), PICK(verbs));
    snprintf(e->tags[0], sizeof e->tags[0], "%s", PICK(channels));
    snprintf(e->tags[1], sizeof e->tags[1], "%s", PICK(objects));
    snprintf(e->lower, sizeof e->lower, "%s %s %s %s", e->name, e->desc, e->tags[0], e->tags[1]);
    for (char *p = e->lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* The baseline: does every query word occur in the entry's text? */
static size_t linear_scan(const entry *es, size_t n, char words[][24], int nw, int filtered)
{
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        int ok = !filtered || (es[i].active && (filtered < 2 || es[i].visible));
        for (int w = 0; w < nw && ok; w++)
            ok = strstr(es[i].lower, words[w]) != NULL;
        hits += (size_t)ok;
    }
    return hits;
}

static void make_query(char words[][24], int *nw, char *query, size_t cap)
{
    *nw = 1 + rand() % 2;
    query[0] = '\0';
    for (int w = 0; w < *nw; w++) {
        const char *src = use_zipf ? zipf_word() : rand() % 2 ? PICK(objects) : PICK(channels);
        int len = 3 + rand() % 4;
        snprintf(words[w], 24, "%.*s", len, src);
        strncat(query, words[w], cap - strlen(query) - 2);
        strcat(query, " ");
    }
}

static int is_active(uint32_t doc, void *payload)
{
    return ((const entry *)payload)[doc].active;
}

static int is_visible(uint32_t doc, void *payload)
{
    return ((const entry *)payload)[doc].visible;
}

/* 10% restricted, half of them to this workspace (a hash of the number,
 * independent of entry_active's) */
static int entry_visible(size_t i)
{
    uint32_t h = (uint32_t)(i * 2246822519u) >> 7;
    return h % 10 != 0 || h % 20 == 0;
}

static void run(size_t n, int queries, int baseline_queries, int filtered)
{
    entry *es = malloc(n * sizeof *es);
    ee__search_builder *b = NULL;
    ee__search_builder_new(&b);
    for (size_t i = 0; i < n; i++) {
        make_entry(&es[i], (int)i);
        es[i].active = entry_active(i);
        es[i].visible = entry_visible(i);
        const char *tags[] = {es[i].tags[0], es[i].tags[1]};
        ee__search_builder_add(b, es[i].name, es[i].desc, tags, 2);
    }
    ee__search_index *idx = NULL;
    uint64_t t0 = bench_now_ns();
    ee__search_build(b, &idx);
    uint64_t build_ms = (bench_now_ns() - t0) / 1000000;
    ee__search_bitmap *active = NULL, *visible = NULL;
    ee__search_bitmap_new(idx, is_active, es, &active);
    ee__search_bitmap_new(idx, is_visible, es, &visible);
    const ee__search_bitmap *bitmaps[] = {active, visible};
    ee__search_filter filter = {bitmaps, filtered > 1 ? 2 : 1, NULL, NULL};

    uint64_t *ours = malloc((size_t)queries * sizeof *ours);
    uint64_t *base = malloc((size_t)baseline_queries * sizeof *base);
    ee__search_hit hits[20];
    char words[2][24], query[64];
    int nw;
    volatile size_t sink = 0;
    for (int q = 0; q < queries; q++) {
        make_query(words, &nw, query, sizeof query);
        size_t nh, total;
        uint64_t s = bench_now_ns();
        ee__search(idx, query, filtered ? &filter : NULL, 0, 20, hits, &nh, &total);
        ours[q] = bench_now_ns() - s;
        sink += total;
    }
    for (int q = 0; q < baseline_queries; q++) {
        make_query(words, &nw, query, sizeof query);
        uint64_t s = bench_now_ns();
        sink += linear_scan(es, n, words, nw, filtered);
        base[q] = bench_now_ns() - s;
    }
    char extra[160];
    snprintf(extra, sizeof extra, "\"n\": %zu, \"dataset\": \"%s\"%s, \"build_ms\": %llu", n,
             use_zipf ? "zipf5000" : "broad60",
             filtered == 2 ? ", \"filter\": \"active+access\""
             : filtered   ? ", \"filter\": \"active\"" : "",
             (unsigned long long)build_ms);
    uint64_t p50 = bench_quantile(ours, (size_t)queries, 0.50);
    uint64_t p99 = bench_quantile(ours, (size_t)queries, 0.99);
    bench_report("catalog.search", "index", extra, p50, p99, "linear_strstr_scan",
                 bench_quantile(base, (size_t)baseline_queries, 0.50));
    (void)sink;
    free(ours);
    free(base);
    free(es);
    ee__search_bitmap_free(active);
    ee__search_bitmap_free(visible);
    ee__search_index_free(idx);
}

int main(int argc, char **argv)
{
    int quick = bench_quick(argc, argv);
    zipf_init();
    for (int filtered = 0; filtered <= 2; filtered++)
        for (use_zipf = 0; use_zipf <= 1; use_zipf++) {
            srand(42);
            run(200, quick ? 2000 : 20000, quick ? 500 : 5000, filtered);
            run(100000, quick ? 2000 : 20000, quick ? 30 : 200, filtered);
        }
    return 0;
}
