/*
 * libFuzzer: arbitrary bytes as the query documents of ee_catalog_list()
 * (first byte even) and ee_catalog_search() (odd); the rest is the query,
 * with "CATID" standing for the id of a real category. The memory engine
 * holds 23 entries (names, descriptions, tags, two categories, some
 * inactive, some needing an API key).
 * Invariants: documented statuses only (never EE_ENOMEM, EE_ECORRUPT or
 * EE_EIO for bad input); an answer is {"data": [...], "total": n,
 * "nextCursor": text | null} with no more items than the limit asked (or
 * EE_CATALOG_PAGE_MAX), a search ranked by "score"; a failure's answer the
 * error document of its status. Following nextCursor (the query with its
 * "cursor" replaced) is accepted and never returns an entry twice, and
 * every page reports the same total.
 */
#include "fuzz_engine.h"

static ee_engine *engine;
static char cat_id[32];

static const char *const words[] = {"report", "weekly", "lead", "scraper", "email", "digest",
                                    "slack", "notion", "invoice", "search", "summary"};

static void open_once(void)
{
    if (engine != NULL)
        return;
    engine = fz_engine_open(fz_config());
    char *out = NULL;
    CHECK(ee_catalog_category_create(engine, "{\"name\": \"Research\"}", &out) == EE_OK);
    json_t *doc = json_loads(out, 0, NULL);
    snprintf(cat_id, sizeof cat_id, "%s", json_string_value(json_object_get(doc, "id")));
    json_decref(doc);
    ee_free(out);
    for (int i = 0; i < 23; i++) {
        json_t *e = json_pack("{s:s+, s:s+, s:s, s:[s,s], s:b, s:b}", "n8nWorkflowId", "wf-",
                              words[i % 11], "name", words[i % 11], i % 3 ? " tool" : " agent",
                              "description", words[(i * 7) % 11], "tags", words[(i + 3) % 11],
                              i % 2 ? "Team" : "ops", "isActive", i % 5 != 4, "requiresApiKey",
                              i % 4 == 0);
        char id[64];
        snprintf(id, sizeof id, "wf-%d", i);
        json_object_set_new(e, "n8nWorkflowId", json_string(id));
        if (i % 3 == 0)
            json_object_set_new(e, "category", json_string(cat_id));
        char *text = json_dumps(e, 0);
        json_decref(e);
        CHECK(ee_catalog_create(engine, text, &out) == EE_OK);
        ee_free(out);
        free(text);
    }
}

/* `text` with "CATID" replaced by the category's id (free()). */
static char *with_category(const char *text)
{
    size_t n = 0;
    for (const char *p = strstr(text, "CATID"); p != NULL; p = strstr(p + 5, "CATID"))
        n++;
    char *out = malloc(strlen(text) + n * 24 + 1), *w = out;
    CHECK(out != NULL);
    for (const char *p = text;;) {
        const char *hit = strstr(p, "CATID");
        if (hit == NULL) {
            strcpy(w, p);
            break;
        }
        memcpy(w, p, (size_t)(hit - p));
        w += hit - p;
        memcpy(w, cat_id, strlen(cat_id));
        w += strlen(cat_id);
        p = hit + 5;
    }
    return out;
}

typedef ee_status (*query_fn)(ee_engine *, const ee_principal *, const char *, char **);

/* One page: checked, its ids appended to `seen` (failing on a repeat).
 * Returns the answer (json_decref()) or NULL for a failure. */
static json_t *page(query_fn fn, bool search, const char *query, size_t limit, json_t *seen,
                    bool follow)
{
    char *out = NULL;
    ee_status st = fn(engine, NULL, query, &out);
    if (follow)
        CHECK(st == EE_OK); /* a cursor the library gave is accepted */
    CHECK_STATUS(st, EE_OK, EE_EINVAL, EE_EPARSE, EE_ETOOBIG);
    json_t *doc = fz_answer(st, out);
    if (st != EE_OK) {
        json_decref(doc);
        return NULL;
    }
    const json_t *items = json_object_get(doc, "data");
    const json_t *next = json_object_get(doc, "nextCursor");
    CHECK(json_is_array(items) && json_is_integer(json_object_get(doc, "total")));
    CHECK(json_is_null(next) || (json_is_string(next) && json_string_length(next) > 0));
    CHECK(json_array_size(items) <= limit);
    double last = 1e300;
    size_t i;
    const json_t *it;
    json_array_foreach(items, i, it) {
        const char *id = json_string_value(json_object_get(it, "id"));
        CHECK(id != NULL);
        CHECK(json_object_get(seen, id) == NULL); /* never twice across pages */
        json_object_set_new(seen, id, json_true());
        if (search) {
            const json_t *score = json_object_get(it, "score");
            CHECK(json_is_number(score));
            CHECK(json_number_value(score) <= last);
            last = json_number_value(score);
        }
    }
    CHECK((size_t)json_integer_value(json_object_get(doc, "total")) >= json_object_size(seen));
    return doc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    open_once();
    bool search = data[0] & 1;
    query_fn fn = search ? ee_catalog_search : ee_catalog_list;
    char *raw = fz_text(data + 1, size - 1);
    char *query = with_category(raw);
    json_t *q = json_loads(query, 0, NULL);
    size_t limit = EE_CATALOG_PAGE_MAX;
    if (json_is_integer(json_object_get(q, "limit")) &&
        json_integer_value(json_object_get(q, "limit")) > 0 &&
        json_integer_value(json_object_get(q, "limit")) < EE_CATALOG_PAGE_MAX)
        limit = (size_t)json_integer_value(json_object_get(q, "limit"));
    json_t *seen = json_object();
    json_t *doc = page(fn, search, query, limit, seen, false);
    json_int_t total = doc ? json_integer_value(json_object_get(doc, "total")) : 0;
    /* Follow the cursors (a few pages). */
    for (int n = 0; doc != NULL && json_is_string(json_object_get(doc, "nextCursor")) && n < 4;
         n++) {
        CHECK(json_is_object(q)); /* only an object query can have been accepted */
        json_object_set(q, "cursor", json_object_get(doc, "nextCursor"));
        char *next_query = json_dumps(q, 0);
        CHECK(next_query != NULL);
        json_decref(doc);
        doc = page(fn, search, next_query, limit, seen, true);
        free(next_query);
        CHECK(json_integer_value(json_object_get(doc, "total")) == total);
    }
    json_decref(doc);
    json_decref(seen);
    json_decref(q);
    free(query);
    free(raw);
    ee_error_clear();
    return 0;
}
