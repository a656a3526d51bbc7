/*
 * lib/catalog/catalog_internal.h - the catalog module's shared internals:
 * per-engine state (search snapshot, schema cache, sync lock), the stored
 * record format and the helpers the catalog*.c, sync.c and categorize.c
 * files share.
 *
 * Stored record (collection workflowCatalog, global), as a JSON object
 * before conversion to BSON (catalog_doc.c):
 *   n8nWorkflowId, name, description, category (hex id | null, stored as an
 *   ObjectId), tags [], inputSchema / outputSchema (the schema's compact
 *   JSON *text* | null: a schema round-trips exactly and may nest deeper
 *   than BSON documents are allowed to), isActive, requiresApiKey,
 *   estimatedCost (int64 nano-USD), apiKeyProvider, emailTemplateId (hex |
 *   null, ObjectId), credentialTypes [], services [], trigger {...},
 *   adminEdited [], n8n {active, archived, versionId, updatedAt, hash,
 *   syncedAt, missing, source {...}} | null, createdAt, updatedAt (dates).
 */
#ifndef EE_CATALOG_CATALOG_INTERNAL_H
#define EE_CATALOG_CATALOG_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

/* schema/schema.h brings core/core.h: core.h must not be included twice in
 * one translation unit, so files including this header include neither. */
#include "audit/audit.h"
#include "catalog/catalog.h"
#include "schema/schema.h"
#include "catalog/search.h"
#include "core/record.h"
#include "storage/storage.h"
#include "execengine/catalog.h"
#include "engine/engine.h"

#define EE__CAT_COLL "workflowCatalog"
#define EE__CAT_CATEGORIES "workflowCategories"

/* ---- the search snapshot (catalog_index.c) ---------------------------------- */

typedef struct ee__cat_item {
    char id[25];
    char category[25]; /* "" when none */
    char *name;
    char *n8n_id;
    char **tags;
    size_t n_tags;
    bool active;
    bool requires_key;
    uint8_t access;       /* EE__CAT_ACCESS_*: who may run it (access.c) */
    char **access_ids;    /* the plans or workspaces it names, sorted (NULL for everyone) */
    size_t n_access_ids;
    int64_t created;
    int64_t updated;
} ee__cat_item;

enum { EE__CAT_SORT_NAME, EE__CAT_SORT_CREATED, EE__CAT_SORT_UPDATED, EE__CAT_SORT_COUNT };

/* Search filters kept as bitmaps over a snapshot's index. */
enum {
    EE__CAT_FILTER_ACTIVE,
    EE__CAT_FILTER_INACTIVE,
    EE__CAT_FILTER_KEY,         /* requiresApiKey */
    EE__CAT_FILTER_NO_KEY,
    EE__CAT_FILTER_NO_CATEGORY,
    EE__CAT_FILTER_NOTHING,     /* a category no entry has */
    EE__CAT_FILTER_FIXED,       /* the kinds above; then one per category id: */
    EE__CAT_FILTER_CATEGORY = EE__CAT_FILTER_FIXED
};
#define EE__CAT_FILTER_CATEGORIES 32 /* category bitmaps kept per snapshot */
#define EE__CAT_VISIBLE_MAX 64       /* "what this workspace may run" bitmaps kept per snapshot */

/* Who may run an entry (its "access" member; access.c). */
enum {
    EE__CAT_ACCESS_EVERYONE,
    EE__CAT_ACCESS_PLANS,      /* organisations on the listed plans */
    EE__CAT_ACCESS_WORKSPACES, /* the listed workspaces */
    EE__CAT_ACCESS_NOBODY      /* a mode this version does not know: fail closed */
};

typedef struct ee__cat_snapshot {
    int refs;                 /* guarded by the state's lock */
    uint64_t generation;      /* the state's generation when the build began */
    int64_t built_ms;
    size_t n;
    ee__cat_item *items;
    ee__search_index *index;  /* document numbers are item numbers */
    pthread_mutex_t order_lock; /* guards what is built lazily: */
    uint32_t *order[EE__CAT_SORT_COUNT]; /* item numbers sorted ascending */
    ee__search_bitmap *filter[EE__CAT_FILTER_FIXED];
    char (*categories)[25];   /* the entries' distinct categories, sorted */
    size_t n_categories;
    bool categories_known;
    struct {
        char id[25];
        ee__search_bitmap *bitmap;
    } category_filter[EE__CAT_FILTER_CATEGORIES]; /* the first categories asked for */
    size_t n_category_filters;
    /* Entries not open to everyone. When both are 0 (the common case) no
     * read looks at access at all. */
    size_t n_by_plan;         /* plans mode */
    size_t n_restricted;      /* any mode but everyone */
    struct {
        char key[2 * EE_PRINCIPAL_ID_MAX + 2]; /* workspace "\n" plan (see snapshot_visible) */
        ee__search_bitmap *bitmap;
    } visible[EE__CAT_VISIBLE_MAX]; /* the first workspaces (x plans) that searched */
    size_t n_visible;
} ee__cat_snapshot;

/* ---- compiled schema cache ------------------------------------------------------ */

typedef struct ee__cat_schema {
    int refs;                 /* guarded by the state's lock */
    char id[25];
    int64_t revision;
    ee_schema *schema;        /* NULL: the entry has no inputSchema */
    struct ee__cat_schema *next;
} ee__cat_schema;

#define EE__CAT_SCHEMA_BUCKETS 256
#define EE__CAT_SCHEMA_CACHE_MAX 1024

/* Rendered entries of list and search pages by (id, stored revision): a
 * page still reads each entry's record from storage (its revision says
 * whether the cached rendering is current, in every process sharing the
 * storage), but decodes and renders it only when the revision changed.
 * Direct-mapped by the id's hash; the values are never modified (a page
 * takes a shallow copy). */
#define EE__CAT_RENDER_SLOTS 1024
typedef struct ee__cat_rendered {
    char id[25];
    int64_t revision;
    json_t *rec;  /* the stored record, decoded */
    json_t *full; /* ee__cat_entry_render(id, revision, rec, false), or NULL: not yet */
} ee__cat_rendered;

typedef struct ee__catalog_state {
    ee_engine *engine;
    pthread_mutex_t render_lock; /* the slots below */
    ee__cat_rendered *rendered;  /* EE__CAT_RENDER_SLOTS */
    pthread_mutex_t lock;       /* snapshot pointer, generation, schema cache */
    pthread_mutex_t build_lock; /* one snapshot build at a time */
    pthread_mutex_t sync_lock;  /* one sync at a time */
    uint64_t generation;        /* bumped after every catalog write */
    ee__cat_snapshot *snap;
    ee__cat_schema *schemas[EE__CAT_SCHEMA_BUCKETS];
    size_t n_schemas;
    unsigned schema_flags;      /* ee__schema_compile_flags() options from the config */
} ee__catalog_state;

struct ee__catalog_state;
/* The stored record of entry `id` at `revision` (its bytes `data`, as just
 * read), decoded: from the rendered slots when one holds that revision,
 * else decoded from `data` and kept there (the runs of a workflow decode
 * its entry once per revision, not twice a run). *rec is the caller's
 * reference, never to be modified (it is shared). EE_OK, EE_ECORRUPT,
 * EE_ENOMEM. */
ee_status ee__cat_record_at(struct ee__catalog_state *state, const char *id, int64_t revision,
                            const uint8_t *data, size_t len, json_t **rec);

/* The engine's catalog state, or NULL (after an EE_ESTATE error is set). */
ee__catalog_state *ee__catalog_state_of(ee_engine *engine);

/* Forget the search snapshot (the next read rebuilds it). */
void ee__catalog_invalidate(ee__catalog_state *st);

/* A fresh snapshot reference (release it with ee__catalog_snapshot_release). */
ee_status ee__catalog_snapshot_acquire(ee__catalog_state *st, ee__cat_snapshot **out);
void ee__catalog_snapshot_release(ee__catalog_state *st, ee__cat_snapshot *snap);
void ee__catalog_snapshot_free(ee__cat_snapshot *snap);
/* Item numbers sorted ascending by (key, id) for `sort` (EE__CAT_SORT_*). */
ee_status ee__catalog_snapshot_order(ee__cat_snapshot *snap, int sort, const uint32_t **out);

/* The filter bitmap of `kind` (EE__CAT_FILTER_*; `category` is the id for
 * EE__CAT_FILTER_CATEGORY), built on first use and kept with the snapshot.
 * *out is NULL, with EE_OK, when the snapshot keeps no more category
 * bitmaps: the caller filters that category itself. */
ee_status ee__catalog_snapshot_filter(ee__cat_snapshot *snap, int kind, const char *category,
                                      const ee__search_bitmap **out);

/* The entries `workspace` on `plan` may run (ee__cat_item_allows()), as a
 * bitmap kept with the snapshot; *out is NULL, with EE_OK, when the
 * snapshot keeps no more of them: the caller checks each item itself. */
ee_status ee__catalog_snapshot_visible(ee__cat_snapshot *snap, const char *workspace,
                                       const char *plan, const ee__search_bitmap **out);

/* Compare two items by (sort key, id) ascending. */
int ee__cat_item_cmp(const ee__cat_item *a, const ee__cat_item *b, int sort);

/* Schema cache: the compiled inputSchema of entry `id` at `revision`,
 * compiling `schema_text` (NULL: the entry has none) on a miss. */
ee_status ee__catalog_schema_get(ee__catalog_state *st, const char *id, int64_t revision,
                                 const char *schema_text, ee__cat_schema **out);
void ee__catalog_schema_release(ee__catalog_state *st, ee__cat_schema *s);
void ee__catalog_schemas_free(ee__catalog_state *st);

/* ---- documents (catalog_doc.c) ------------------------------------------------- */

/* Parse JSON text bounded by `max_bytes` and `max_depth`: EE_EINVAL for NULL,
 * EE_ETOOBIG past a bound, EE_EPARSE for non-UTF-8 or malformed text. The
 * message starts with `what`. */
ee_status ee__cat_json_parse(const char *text, size_t max_bytes, size_t max_depth,
                             const char *what, json_t **out);

/* How catalog records are stored (catalog_doc.c, through the record
 * layer): createdAt/updatedAt/syncedAt integers become dates and
 * category/emailTemplateId ids ObjectIds, at any depth. */
extern const ee__record_map ee__cat_record_map;
ee_status ee__cat_to_bson(const json_t *rec, uint8_t **data, size_t *len);
ee_status ee__cat_from_bson(const uint8_t *data, size_t len, json_t **out);

bool ee__cat_hex_id(const char *s);
/* Whether the array of strings `arr` holds `s`. */
bool ee__cat_listed(const json_t *arr, const char *s);

/* A stored record by id: *rec (new reference) and *revision. */
ee_status ee__cat_load(ee_engine *engine, const char *coll, const char *id, json_t **rec,
                       int64_t *revision);
/* Insert a record (createdAt/updatedAt set by the caller); id_out gets the id. */
ee_status ee__cat_insert(ee_engine *engine, const char *coll, const json_t *rec, char id_out[25]);
/* The audit entry of a committed catalog change (catalog_api.c): target
 * `id`; the detail names the record (`rec`'s "name", may be NULL) and the
 * members a patch set (`patch`, may be NULL), not their values. */
void ee__cat_audit(ee_engine *engine, ee__audit_action action, const char *id,
                   const json_t *rec, const json_t *patch);
/* Read-modify-write of record `id` through the record layer's update
 * (one retry policy): `expected` the caller's revision (0: none), `entry`
 * the {"rec", "revision"} a scan already read (NULL: read it). EE_ENOTFOUND
 * names the record. */
ee_status ee__cat_update(ee_engine *engine, const char *coll, const char *id, int64_t expected,
                         const json_t *entry, ee__record_mutate_fn mutate, void *payload,
                         json_t **rec_out, int64_t *revision_out);

/* Call fn for every record of `coll` (id order). */
typedef ee_status (*ee__cat_each_fn)(const char *id, int64_t revision, json_t *rec, void *payload);
ee_status ee__cat_scan(ee_engine *engine, const char *coll, ee__cat_each_fn fn, void *payload);

/* Entry record -> API document (`full`: with the schemas). New reference or NULL. */
json_t *ee__cat_entry_render(const char *id, int64_t revision, const json_t *rec, bool full);
json_t *ee__cat_category_render(const char *id, int64_t revision, const json_t *rec);

/* Validate an admin's entry object and apply it to `rec` (create: rec empty
 * and `create` true). Compiles the schemas. Records admin-edited fields. */
ee_status ee__cat_entry_apply(ee_engine *engine, json_t *rec, const json_t *input, bool create);
ee_status ee__cat_category_apply(json_t *rec, const json_t *input, bool create);

/* Insert a category record (sets createdAt/updatedAt; EE_EEXISTS names it). */
ee_status ee__cat_category_insert(ee_engine *engine, json_t *rec, char id[25]);
/* Every category as rendered, sorted by sortOrder, name, id (new array). */
ee_status ee__cat_categories_all(ee_engine *engine, bool admin, json_t **out);

/* The shared fields sync derives and an admin may edit. */
extern const char *const ee__cat_shared_fields[];
extern const size_t ee__cat_n_shared_fields;

/* Cut `s` to at most `max` bytes at a UTF-8 boundary (in place). */
void ee__cat_utf8_cut(char *s, size_t max);

/* The stored record a typed entry (catalog.h, entry.c) was built from, for
 * the adapters that render it: borrowed for the entry's life. */
const json_t *ee__cat_entry_record(const ee__catalog_entry *entry);

/* ---- access (access.c) -------------------------------------------------------- */

/* EE__CAT_ACCESS_* of a stored mode name (NULL or unknown: NOBODY). */
int ee__cat_access_mode(const char *mode);
/* Validate an admin's "access" value (null: everyone); *out (new reference)
 * is the stored form. EE_EINVAL/EE_ETOOBIG name the JSON pointer. */
ee_status ee__cat_access_parse(const json_t *v, json_t **out);
/* The record's access as the admin's view shows it (new reference or NULL). */
json_t *ee__cat_access_render(const json_t *rec);
/* The plan of `principal`'s organisation ("" when its subscription names a
 * plan that no longer exists). */
ee_status ee__cat_plan_of(ee_engine *engine, const ee_principal *principal,
                          char plan[EE_PRINCIPAL_ID_MAX + 1]);
/* Whether `principal` (NULL: the library or an admin - always) may run the
 * entry stored as `rec`. `plan` is the principal's plan when the caller
 * knows it, else NULL: read from the quota module only for a plans-mode
 * entry. */
ee_status ee__cat_access_check(ee_engine *engine, const json_t *rec,
                               const ee_principal *principal, const char *plan, bool *allowed);
/* The same for a snapshot item, with the principal's workspace and plan. */
bool ee__cat_item_allows(const ee__cat_item *it, const char *workspace, const char *plan);

/* Bump the generation: searches rebuild their snapshot. */
void ee__catalog_written(ee_engine *engine);

#endif
