/*
 * The catalog's in-memory snapshot: one compact item per entry (the fields
 * filters and sorts need) plus the full-text index over name, description
 * and tags. Copy-on-write: a write bumps the state's generation; the next
 * reader builds a new snapshot from storage (one builder at a time) and
 * swaps it in under the lock, while readers holding the old one keep it
 * alive through its reference count.
 */
#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/catalog_internal.h"
#include "execengine/storage.h"

/* ---- freeing --------------------------------------------------------------------- */

static void item_free(ee__cat_item *it)
{
    free(it->name);
    free(it->n8n_id);
    for (size_t i = 0; i < it->n_tags; i++)
        free(it->tags[i]);
    free(it->tags);
    for (size_t i = 0; i < it->n_access_ids; i++)
        free(it->access_ids[i]);
    free(it->access_ids);
}

void ee__catalog_snapshot_free(ee__cat_snapshot *snap)
{
    if (snap == NULL)
        return;
    for (size_t i = 0; i < snap->n; i++)
        item_free(&snap->items[i]);
    free(snap->items);
    ee__search_index_free(snap->index);
    for (int s = 0; s < EE__CAT_SORT_COUNT; s++)
        free(snap->order[s]);
    for (int f = 0; f < EE__CAT_FILTER_FIXED; f++)
        ee__search_bitmap_free(snap->filter[f]);
    for (size_t c = 0; c < snap->n_category_filters; c++)
        ee__search_bitmap_free(snap->category_filter[c].bitmap);
    for (size_t v = 0; v < snap->n_visible; v++)
        ee__search_bitmap_free(snap->visible[v].bitmap);
    free(snap->categories);
    pthread_mutex_destroy(&snap->order_lock);
    free(snap);
}

/* ---- building ---------------------------------------------------------------------- */

typedef struct {
    ee__cat_item *items;
    size_t n, cap;
    ee__search_builder *b;
    ee_status st;
} build_ctx;

static char *iter_strdup(bson_iter_t *it)
{
    if (bson_iter_type(it) != BSON_TYPE_UTF8)
        return strdup("");
    uint32_t n;
    const char *s = bson_iter_utf8(it, &n);
    return strndup(s, n);
}

static int64_t iter_time(bson_iter_t *it)
{
    if (bson_iter_type(it) == BSON_TYPE_DATE_TIME)
        return bson_iter_date_time(it);
    return bson_iter_type(it) == BSON_TYPE_INT64 ? bson_iter_int64(it) : 0;
}

static bool read_tags(bson_iter_t *it, ee__cat_item *item)
{
    bson_iter_t child;
    if (bson_iter_type(it) != BSON_TYPE_ARRAY || !bson_iter_recurse(it, &child))
        return true;
    while (bson_iter_next(&child)) {
        if (bson_iter_type(&child) != BSON_TYPE_UTF8)
            continue;
        char **grown = realloc(item->tags, (item->n_tags + 1) * sizeof *grown);
        if (grown == NULL)
            return false;
        item->tags = grown;
        if ((item->tags[item->n_tags] = iter_strdup(&child)) == NULL)
            return false;
        item->n_tags++;
    }
    return true;
}

static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entry's "access" document: its mode and, for plans or workspaces,
 * the list it names (kept sorted for bsearch). */
static bool read_access(bson_iter_t *it, ee__cat_item *item)
{
    bson_iter_t child, list;
    item->access = EE__CAT_ACCESS_NOBODY;
    if (bson_iter_type(it) != BSON_TYPE_DOCUMENT || !bson_iter_recurse(it, &child)
        || !bson_iter_find(&child, "mode") || bson_iter_type(&child) != BSON_TYPE_UTF8)
        return true;
    item->access = (uint8_t)ee__cat_access_mode(bson_iter_utf8(&child, NULL));
    const char *member = item->access == EE__CAT_ACCESS_PLANS        ? "plans"
                         : item->access == EE__CAT_ACCESS_WORKSPACES ? "workspaces"
                                                                     : NULL;
    if (member == NULL || !bson_iter_recurse(it, &child) || !bson_iter_find(&child, member)
        || bson_iter_type(&child) != BSON_TYPE_ARRAY || !bson_iter_recurse(&child, &list))
        return true; /* no list: nobody is on it */
    while (bson_iter_next(&list)) {
        if (bson_iter_type(&list) != BSON_TYPE_UTF8)
            continue;
        char **grown = realloc(item->access_ids, (item->n_access_ids + 1) * sizeof *grown);
        if (grown == NULL)
            return false;
        item->access_ids = grown;
        if ((item->access_ids[item->n_access_ids] = iter_strdup(&list)) == NULL)
            return false;
        item->n_access_ids++;
    }
    if (item->n_access_ids > 1)
        qsort(item->access_ids, item->n_access_ids, sizeof *item->access_ids, cmp_strp);
    return true;
}

/* One stored entry -> one item + one document of the index. */
static int build_row(const ee_storage_row *row, void *payload)
{
    build_ctx *c = payload;
    if (c->n == c->cap) {
        ee__cat_item *grown = ee__grow(c->items, &c->cap, sizeof *grown, 256);
        if (grown == NULL) {
            c->st = ee__error(EE_ENOMEM, "out of memory building the catalog index");
            return 1;
        }
        c->items = grown;
    }
    ee__cat_item *it = &c->items[c->n];
    memset(it, 0, sizeof *it);
    ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, it->id);
    c->n++; /* counted now so a failure below frees what was read */
    bson_t b;
    bson_iter_t iter;
    if (!bson_init_static(&b, row->data, row->len) || !bson_iter_init(&iter, &b)) {
        c->st = ee__error(EE_ECORRUPT, "catalog entry %s is not valid BSON", it->id);
        return 1;
    }
    char *desc = NULL;
    bool ok = true;
    while (ok && bson_iter_next(&iter)) {
        const char *k = bson_iter_key(&iter);
        if (strcmp(k, "name") == 0)
            ok = (it->name = iter_strdup(&iter)) != NULL;
        else if (strcmp(k, "n8nWorkflowId") == 0)
            ok = (it->n8n_id = iter_strdup(&iter)) != NULL;
        else if (strcmp(k, "description") == 0)
            ok = (desc = iter_strdup(&iter)) != NULL;
        else if (strcmp(k, "tags") == 0)
            ok = read_tags(&iter, it);
        else if (strcmp(k, "category") == 0 && bson_iter_type(&iter) == BSON_TYPE_OID)
            bson_oid_to_string(bson_iter_oid(&iter), it->category);
        else if (strcmp(k, "isActive") == 0)
            it->active = BSON_ITER_HOLDS_BOOL(&iter) && bson_iter_bool(&iter);
        else if (strcmp(k, "requiresApiKey") == 0)
            it->requires_key = BSON_ITER_HOLDS_BOOL(&iter) && bson_iter_bool(&iter);
        else if (strcmp(k, "createdAt") == 0)
            it->created = iter_time(&iter);
        else if (strcmp(k, "updatedAt") == 0)
            it->updated = iter_time(&iter);
        else if (strcmp(k, "access") == 0)
            ok = read_access(&iter, it);
    }
    if (ok && it->name == NULL)
        ok = (it->name = strdup("")) != NULL;
    if (ok && it->n8n_id == NULL)
        ok = (it->n8n_id = strdup("")) != NULL;
    if (!ok) {
        free(desc);
        c->st = ee__error(EE_ENOMEM, "out of memory building the catalog index");
        return 1;
    }
    c->st = ee__search_builder_add(c->b, it->name, desc ? desc : "",
                                   (const char *const *)it->tags, it->n_tags);
    free(desc);
    return c->st != EE_OK;
}

static ee_status build(ee_engine *engine, uint64_t generation, ee__cat_snapshot **out)
{
    *out = NULL;
    build_ctx c = {0};
    c.st = ee__search_builder_new(&c.b);
    if (c.st != EE_OK)
        return c.st;
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .order = EE_STORAGE_ORDER_ID_ASC, .limit = EE_STORAGE_LIMIT_MAX};
    ee_status st = ee__storage_query_all(ee__engine_storage(engine), EE__CAT_COLL, NULL, &q,
                                         build_row, &c, &c.st);
    ee__cat_snapshot *snap = calloc(1, sizeof *snap);
    if (st == EE_OK && snap == NULL)
        st = ee__error(EE_ENOMEM, "out of memory building the catalog index");
    if (st != EE_OK) {
        ee__search_builder_free(c.b);
        for (size_t i = 0; i < c.n; i++)
            item_free(&c.items[i]);
        free(c.items);
        free(snap);
        return st;
    }
    st = ee__search_build(c.b, &snap->index); /* consumes the builder */
    snap->items = c.items;
    snap->n = c.n;
    for (size_t i = 0; i < c.n; i++) {
        snap->n_restricted += c.items[i].access != EE__CAT_ACCESS_EVERYONE;
        snap->n_by_plan += c.items[i].access == EE__CAT_ACCESS_PLANS;
    }
    snap->generation = generation;
    snap->built_ms = ee_engine_now_ms(engine);
    pthread_mutex_init(&snap->order_lock, NULL);
    if (st != EE_OK) {
        ee__catalog_snapshot_free(snap);
        return st;
    }
    *out = snap;
    return EE_OK;
}

/* ---- acquiring ------------------------------------------------------------------------ */

static bool fresh(const ee__catalog_state *st, const ee__cat_snapshot *snap, int64_t now)
{
    return snap != NULL && snap->generation == st->generation
        && now - snap->built_ms < EE_CATALOG_INDEX_TTL_MS && now >= snap->built_ms;
}

static bool take_if_fresh(ee__catalog_state *st, int64_t now, ee__cat_snapshot **out)
{
    pthread_mutex_lock(&st->lock);
    bool ok = fresh(st, st->snap, now);
    if (ok) {
        st->snap->refs++;
        *out = st->snap;
    }
    pthread_mutex_unlock(&st->lock);
    return ok;
}

ee_status ee__catalog_snapshot_acquire(ee__catalog_state *st, ee__cat_snapshot **out)
{
    *out = NULL;
    int64_t now = ee_engine_now_ms(st->engine);
    if (take_if_fresh(st, now, out))
        return EE_OK;
    /* Another thread's call waits for the build lock: no host callback
     * under it (the build's clock reading is `now`'s, its log lines wait). */
    ee__engine_hold h;
    ee__engine_hold_begin(st->engine, &h);
    pthread_mutex_lock(&st->build_lock);
    if (take_if_fresh(st, now, out)) {
        pthread_mutex_unlock(&st->build_lock);
        ee__engine_hold_end(&h);
        return EE_OK;
    }
    pthread_mutex_lock(&st->lock);
    uint64_t generation = st->generation;
    pthread_mutex_unlock(&st->lock);
    ee__cat_snapshot *snap = NULL;
    ee_status rc = build(st->engine, generation, &snap);
    if (rc == EE_OK) {
        pthread_mutex_lock(&st->lock);
        ee__cat_snapshot *old = st->snap;
        snap->refs = 2; /* the state's and the caller's */
        st->snap = snap;
        if (old != NULL && --old->refs == 0)
            ee__catalog_snapshot_free(old);
        pthread_mutex_unlock(&st->lock);
        *out = snap;
    }
    pthread_mutex_unlock(&st->build_lock);
    ee__engine_hold_end(&h);
    return rc;
}

void ee__catalog_snapshot_release(ee__catalog_state *st, ee__cat_snapshot *snap)
{
    if (snap == NULL)
        return;
    pthread_mutex_lock(&st->lock);
    bool last = --snap->refs == 0;
    pthread_mutex_unlock(&st->lock);
    if (last)
        ee__catalog_snapshot_free(snap);
}

/* ---- sort orders ------------------------------------------------------------------------ */

/* (key, id) ascending; names compare case-insensitively, then exactly. */
static int cmp_items(const ee__cat_item *a, const ee__cat_item *b, int sort)
{
    int c = 0;
    if (sort == EE__CAT_SORT_NAME) {
        c = strcasecmp(a->name, b->name);
        if (c == 0)
            c = strcmp(a->name, b->name);
    } else {
        int64_t x = sort == EE__CAT_SORT_CREATED ? a->created : a->updated;
        int64_t y = sort == EE__CAT_SORT_CREATED ? b->created : b->updated;
        c = (x > y) - (x < y);
    }
    return c != 0 ? c : strcmp(a->id, b->id);
}

typedef struct {
    const ee__cat_item *items;
    int sort;
} order_ctx;

static int cmp_order(const void *a, const void *b, void *ctx)
{
    const order_ctx *o = ctx;
    return cmp_items(&o->items[*(const uint32_t *)a], &o->items[*(const uint32_t *)b], o->sort);
}

ee_status ee__catalog_snapshot_order(ee__cat_snapshot *snap, int sort, const uint32_t **out)
{
    pthread_mutex_lock(&snap->order_lock);
    if (snap->order[sort] == NULL) {
        uint32_t *o = malloc((snap->n ? snap->n : 1) * sizeof *o);
        if (o == NULL) {
            pthread_mutex_unlock(&snap->order_lock);
            return ee__error(EE_ENOMEM, "out of memory sorting the catalog");
        }
        for (size_t i = 0; i < snap->n; i++)
            o[i] = (uint32_t)i;
        order_ctx ctx = {snap->items, sort};
        qsort_r(o, snap->n, sizeof *o, cmp_order, &ctx);
        snap->order[sort] = o;
    }
    *out = snap->order[sort];
    pthread_mutex_unlock(&snap->order_lock);
    return EE_OK;
}

int ee__cat_item_cmp(const ee__cat_item *a, const ee__cat_item *b, int sort)
{
    return cmp_items(a, b, sort);
}

/* ---- search filter bitmaps ------------------------------------------------------------------ */

typedef struct {
    const ee__cat_snapshot *snap;
    int kind;
    const char *category;
} filter_ctx;

static int filter_pred(uint32_t doc, void *payload)
{
    const filter_ctx *f = payload;
    const ee__cat_item *it = &f->snap->items[doc];
    switch (f->kind) {
    case EE__CAT_FILTER_ACTIVE: return it->active;
    case EE__CAT_FILTER_INACTIVE: return !it->active;
    case EE__CAT_FILTER_KEY: return it->requires_key;
    case EE__CAT_FILTER_NO_KEY: return !it->requires_key;
    case EE__CAT_FILTER_NO_CATEGORY: return it->category[0] == '\0';
    case EE__CAT_FILTER_NOTHING: return 0;
    default: return strcmp(it->category, f->category) == 0;
    }
}

static int cmp_category(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The entries' distinct categories, sorted, so that a category no entry
 * has takes no bitmap slot. Under order_lock. */
static bool know_categories(ee__cat_snapshot *snap)
{
    if (snap->categories_known)
        return true;
    snap->categories = malloc((snap->n ? snap->n : 1) * sizeof *snap->categories);
    if (snap->categories == NULL)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < snap->n; i++)
        if (snap->items[i].category[0] != '\0')
            memcpy(snap->categories[n++], snap->items[i].category, sizeof *snap->categories);
    qsort(snap->categories, n, sizeof *snap->categories, cmp_category);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp(snap->categories[u - 1], snap->categories[i]) != 0)
            memcpy(snap->categories[u++], snap->categories[i], sizeof *snap->categories);
    snap->n_categories = u;
    snap->categories_known = true;
    return true;
}

/* The slot that holds (or will hold) the bitmap; NULL when the category
 * slots are full. Under order_lock. */
static ee__search_bitmap **filter_slot(ee__cat_snapshot *snap, int *kind, const char *category)
{
    if (*kind == EE__CAT_FILTER_CATEGORY
        && !bsearch(category, snap->categories, snap->n_categories, sizeof *snap->categories,
                    cmp_category))
        *kind = EE__CAT_FILTER_NOTHING;
    if (*kind != EE__CAT_FILTER_CATEGORY)
        return &snap->filter[*kind];
    for (size_t c = 0; c < snap->n_category_filters; c++)
        if (strcmp(snap->category_filter[c].id, category) == 0)
            return &snap->category_filter[c].bitmap;
    if (snap->n_category_filters == EE__CAT_FILTER_CATEGORIES)
        return NULL;
    size_t c = snap->n_category_filters;
    snprintf(snap->category_filter[c].id, sizeof snap->category_filter[c].id, "%s", category);
    snap->category_filter[c].bitmap = NULL;
    return &snap->category_filter[c].bitmap;
}

ee_status ee__catalog_snapshot_filter(ee__cat_snapshot *snap, int kind, const char *category,
                                      const ee__search_bitmap **out)
{
    *out = NULL;
    pthread_mutex_lock(&snap->order_lock);
    ee_status st = kind != EE__CAT_FILTER_CATEGORY || know_categories(snap)
                       ? EE_OK
                       : ee__error(EE_ENOMEM, "out of memory filtering the catalog");
    ee__search_bitmap **slot = st == EE_OK ? filter_slot(snap, &kind, category) : NULL;
    if (slot != NULL && *slot == NULL) {
        filter_ctx f = {snap, kind, category};
        st = ee__search_bitmap_new(snap->index, filter_pred, &f, slot);
        if (st == EE_OK && kind == EE__CAT_FILTER_CATEGORY)
            snap->n_category_filters++;
    }
    if (slot != NULL)
        *out = *slot;
    pthread_mutex_unlock(&snap->order_lock);
    return st;
}

/* ---- what a workspace may run ----------------------------------------------------------- */

typedef struct {
    const ee__cat_snapshot *snap;
    const char *workspace, *plan;
} visible_ctx;

static int visible_pred(uint32_t doc, void *payload)
{
    const visible_ctx *v = payload;
    return ee__cat_item_allows(&v->snap->items[doc], v->workspace, v->plan);
}

ee_status ee__catalog_snapshot_visible(ee__cat_snapshot *snap, const char *workspace,
                                       const char *plan, const ee__search_bitmap **out)
{
    *out = NULL;
    /* The plan decides only when a plans-mode entry exists, so without one
     * every organisation's workspace shares its bitmap whatever its plan. */
    char key[sizeof snap->visible[0].key];
    snprintf(key, sizeof key, "%s\n%s", workspace, snap->n_by_plan ? plan : "");
    ee_status st = EE_OK;
    pthread_mutex_lock(&snap->order_lock);
    size_t v = 0;
    while (v < snap->n_visible && strcmp(snap->visible[v].key, key) != 0)
        v++;
    if (v == snap->n_visible && v < EE__CAT_VISIBLE_MAX) {
        /* Kept for the snapshot's life (a search may hold it), so a full
         * table is not recycled: later workspaces are filtered per item. */
        visible_ctx ctx = {snap, workspace, plan};
        st = ee__search_bitmap_new(snap->index, visible_pred, &ctx, &snap->visible[v].bitmap);
        if (st == EE_OK) {
            memcpy(snap->visible[v].key, key, sizeof key);
            snap->n_visible++;
        }
    }
    if (st == EE_OK && v < snap->n_visible)
        *out = snap->visible[v].bitmap;
    pthread_mutex_unlock(&snap->order_lock);
    return st;
}

/* ---- the compiled-schema cache ------------------------------------------------------------ */

static size_t bucket_of(const char *id)
{
    size_t h = 5381;
    for (const char *p = id; *p; p++)
        h = h * 33 + (unsigned char)*p;
    return h % EE__CAT_SCHEMA_BUCKETS;
}

static void schema_unref_locked(ee__cat_schema *s, ee__cat_schema **dead)
{
    if (--s->refs == 0) {
        s->next = *dead;
        *dead = s;
    }
}

static void free_dead(ee__cat_schema *dead)
{
    while (dead != NULL) {
        ee__cat_schema *next = dead->next;
        ee_schema_free(dead->schema);
        free(dead);
        dead = next;
    }
}

void ee__catalog_schema_release(ee__catalog_state *st, ee__cat_schema *s)
{
    if (s == NULL)
        return;
    ee__cat_schema *dead = NULL;
    pthread_mutex_lock(&st->lock);
    schema_unref_locked(s, &dead);
    pthread_mutex_unlock(&st->lock);
    free_dead(dead);
}

/* Drop every cached schema (each freed once no caller holds it). */
static void schemas_clear_locked(ee__catalog_state *st, ee__cat_schema **dead)
{
    for (size_t b = 0; b < EE__CAT_SCHEMA_BUCKETS; b++) {
        ee__cat_schema *s = st->schemas[b];
        st->schemas[b] = NULL;
        while (s != NULL) {
            ee__cat_schema *next = s->next;
            schema_unref_locked(s, dead);
            s = next;
        }
    }
    st->n_schemas = 0;
}

void ee__catalog_schemas_free(ee__catalog_state *st)
{
    ee__cat_schema *dead = NULL;
    schemas_clear_locked(st, &dead);
    free_dead(dead);
}

/* The cached schema of entry `id` at `revision`, compiling `schema_text`
 * (NULL: no schema) on a miss. */
ee_status ee__catalog_schema_get(ee__catalog_state *st, const char *id, int64_t revision,
                                 const char *schema_text, ee__cat_schema **out)
{
    *out = NULL;
    size_t b = bucket_of(id);
    pthread_mutex_lock(&st->lock);
    for (ee__cat_schema *s = st->schemas[b]; s != NULL; s = s->next)
        if (strcmp(s->id, id) == 0 && s->revision == revision) {
            s->refs++;
            *out = s;
            break;
        }
    pthread_mutex_unlock(&st->lock);
    if (*out != NULL)
        return EE_OK;

    ee__cat_schema *fresh_s = calloc(1, sizeof *fresh_s);
    if (fresh_s == NULL)
        return ee__error(EE_ENOMEM, "out of memory caching a schema");
    snprintf(fresh_s->id, sizeof fresh_s->id, "%s", id);
    fresh_s->revision = revision;
    if (schema_text != NULL) {
        ee_status rc = ee__schema_compile_text(&fresh_s->schema, schema_text, st->schema_flags);
        if (rc != EE_OK) {
            free(fresh_s);
            return ee__error(rc == EE_ENOMEM ? EE_ENOMEM : EE_ECORRUPT,
                             "the stored inputSchema of catalog entry %s no longer compiles", id);
        }
    }
    fresh_s->refs = 2; /* the cache's and the caller's */
    ee__cat_schema *dead = NULL;
    pthread_mutex_lock(&st->lock);
    /* Replace older revisions of this entry; bound the cache's size. */
    for (ee__cat_schema **pp = &st->schemas[b]; *pp != NULL;) {
        ee__cat_schema *s = *pp;
        if (strcmp(s->id, id) == 0) {
            *pp = s->next;
            st->n_schemas--;
            schema_unref_locked(s, &dead);
        } else {
            pp = &s->next;
        }
    }
    if (st->n_schemas >= EE__CAT_SCHEMA_CACHE_MAX)
        schemas_clear_locked(st, &dead);
    fresh_s->next = st->schemas[b];
    st->schemas[b] = fresh_s;
    st->n_schemas++;
    pthread_mutex_unlock(&st->lock);
    free_dead(dead);
    *out = fresh_s;
    return EE_OK;
}
