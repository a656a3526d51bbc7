/*
 * execengine/storage.h - document storage: the handle every module keeps its
 * data through, and the versioned table a backend author implements.
 *
 * Model. Documents are BSON (the bytes of a BSON document; libbson or any
 * other encoder may produce them) grouped in named collections. Each
 * document has a 12-byte ObjectId (`_id`, carried across this API as 24
 * lowercase hex characters) and a revision (1 on insert, +1 on each write)
 * used for optimistic concurrency. The collections, their indexed fields,
 * their time field and their unique keys are fixed by the library (see
 * docs/storage.md and ee_storage_collection_list()).
 *
 * Workspaces. Most collections are per-workspace: every call names the
 * workspace, and a document of workspace A is *not found* from workspace B.
 * Global collections (the catalog, categories, email templates, plans) take
 * workspace NULL or "". Platform credentials live in workspace "platform".
 *
 * Threads. An ee_storage handle may be used from any number of threads at
 * once (calls to a backend that does not declare EE_STORAGE_THREAD_SAFE are
 * serialised by the library). Free it once, after every other call on it
 * has returned. A handle must not be used in a child after fork(): open a
 * new one there.
 *
 * Sizes. Every input is bounded: the limits are the EE_STORAGE_*_MAX macros
 * below; going past one fails with EE_ETOOBIG and changes nothing.
 */
#ifndef EXECENGINE_STORAGE_H
#define EXECENGINE_STORAGE_H

#include "common.h"
#include "errors.h"

EE_BEGIN_DECLS

typedef struct ee_storage ee_storage;

/* ---- limits ------------------------------------------------------------ */

#define EE_STORAGE_ID_SIZE 12            /* bytes of an ObjectId */
#define EE_STORAGE_ID_HEX_LEN 24         /* its hex form, without terminator */
#define EE_STORAGE_DOC_MAX (16 * 1024 * 1024) /* bytes of one document */
#define EE_STORAGE_WORKSPACE_MAX 64      /* bytes of a workspace id */
#define EE_STORAGE_VALUE_MAX 256         /* bytes of one indexed value */
#define EE_STORAGE_CURSOR_MAX 128        /* bytes of a page cursor */
#define EE_STORAGE_FIELD_MAX 128         /* bytes of a field path */
#define EE_STORAGE_EQ_MAX 8              /* equality conditions per query */
#define EE_STORAGE_INC_MAX 16            /* fields per increment */
#define EE_STORAGE_LIMIT_DEFAULT 50      /* page size when limit is 0 */
#define EE_STORAGE_LIMIT_MAX 1000        /* largest page */

/* ---- caller's API ------------------------------------------------------ */

/** One equality condition: the indexed field `field` equals `value`.
 * Indexed values compare as text: strings as themselves, ObjectIds as 24
 * lowercase hex characters, booleans as "true"/"false", integers in
 * decimal. */
typedef struct ee_storage_eq {
    const char *field;
    const char *value;
} ee_storage_eq;

/** One increment: add `delta` to the int64 field `field` (a dotted path
 * such as "usage.totalCost" reaches into sub-documents). */
typedef struct ee_storage_inc {
    const char *field;
    int64_t delta;
} ee_storage_inc;

/* Orders of a query. Ties in time are broken by id in the same direction,
 * so every order is total and pages never repeat or skip a document. */
#define EE_STORAGE_ORDER_TIME_DESC 0     /* newest first (the default) */
#define EE_STORAGE_ORDER_TIME_ASC 1
#define EE_STORAGE_ORDER_ID_ASC 2
#define EE_STORAGE_ORDER_ID_DESC 3

/* ee_storage_query_spec.flags */
#define EE_STORAGE_QUERY_FROM 0x1u       /* time_from is set */
#define EE_STORAGE_QUERY_TO 0x2u         /* time_to is set */

#define EE_STORAGE_QUERY_VERSION 1

/**
 * A query. Zero-initialise it, set `version` to EE_STORAGE_QUERY_VERSION
 * and fill what you need; later versions only append fields.
 *   eq/n_eq     equality on the collection's indexed fields (AND)
 *   time_from   inclusive lower bound on the time field, ms since the
 *               epoch, when flags has EE_STORAGE_QUERY_FROM
 *   time_to     exclusive upper bound, when flags has EE_STORAGE_QUERY_TO
 *   order       EE_STORAGE_ORDER_*
 *   limit       page size, 0 = EE_STORAGE_LIMIT_DEFAULT
 *   cursor      NULL for the first page, else the `next_cursor` a previous
 *               call with the same query returned
 */
typedef struct ee_storage_query_spec {
    unsigned version;
    unsigned flags;
    const ee_storage_eq *eq;
    size_t n_eq;
    int64_t time_from;
    int64_t time_to;
    int order;
    size_t limit;
    const char *cursor;
} ee_storage_query_spec;

/** A document handed to a row callback. Everything is borrowed for the
 * duration of the callback only. `time` is the collection's time field. */
typedef struct ee_storage_row {
    const uint8_t *id;                   /* EE_STORAGE_ID_SIZE bytes */
    int64_t revision;
    int64_t time;
    const uint8_t *data;                 /* BSON */
    size_t len;
} ee_storage_row;

/** Called once per document, in order. Return 0 to go on, anything else
 * to stop early (the call that drove it then returns EE_ECANCELLED). */
typedef int (*ee_storage_row_fn)(const ee_storage_row *row, void *payload);

/**
 * Open the store a URI names:
 *   sqlite:///abs/path/file.db   sqlite://relative/file.db
 *       (options after '?': synchronous=full|normal|off, busy_timeout=<ms>)
 *   postgres://user:pass@host:port/db   postgresql://...
 *       (any libpq URI; extra option `schema=<name>` puts the tables in
 *       that schema, created if missing)
 *   memory:
 * Migrations are applied on open. *out is owned by the caller
 * (ee_storage_free()), NULL on failure. Thread-safe.
 *
 * Returns EE_OK; EE_EINVAL (NULL argument, unknown scheme - the message
 * names it -, bad option); EE_ENOMEM; EE_EIO (file cannot be created or
 * opened); EE_ECORRUPT (not a database); EE_EVERSION (the database has a
 * newer schema than this library knows); EE_ENETWORK (server unreachable);
 * EE_EAUTH (server refused the credentials); EE_EBUSY.
 */
EE_API ee_status ee_storage_open_uri(ee_storage **out, const char *uri);

/**
 * Open (creating it and its parent directory if missing) the SQLite file
 * at `path`, with the defaults: WAL, synchronous=FULL, busy timeout 5 s.
 * Same statuses as ee_storage_open_uri().
 */
EE_API ee_status ee_storage_sqlite_new(ee_storage **out, const char *path);

/**
 * Connect to PostgreSQL with a libpq connection string or URI (the
 * password is never copied into a message). Same statuses as
 * ee_storage_open_uri().
 */
EE_API ee_status ee_storage_postgres_new(ee_storage **out, const char *conninfo);

/** A new empty in-memory store (gone when freed). Returns EE_OK,
 * EE_EINVAL (out NULL), EE_ENOMEM. */
EE_API ee_status ee_storage_memory_new(ee_storage **out);

/** Close a store and free everything it holds. Accepts NULL. */
EE_API void ee_storage_free(ee_storage *storage);

/** The backend's name ("sqlite", "postgres", "memory" or the custom
 * table's name). Borrowed for the handle's life; "" for NULL. */
EE_API const char *ee_storage_backend_name(const ee_storage *storage);

/**
 * Insert a document (BSON, at most EE_STORAGE_DOC_MAX bytes). If it has
 * `_id` it must be an ObjectId; otherwise one is generated and prepended.
 * A `workspaceId` field, if present, must equal `workspace`. The time field
 * (createdAt) must be present as a BSON date or integer of ms. If id_out is
 * not NULL it receives the id as 24 hex characters and a terminator.
 *
 * Returns EE_OK; EE_EINVAL (NULL argument, bad workspace, `_id` not an
 * ObjectId, workspaceId mismatch, missing time field); EE_EPARSE (not valid
 * BSON); EE_ETOOBIG; EE_ENOTSUPPORTED (unknown collection);
 * EE_EEXISTS (same id, or same unique key); EE_EIO; EE_EBUSY; EE_ENETWORK.
 */
EE_API ee_status ee_storage_insert(ee_storage *storage, const char *collection,
                                   const char *workspace, const uint8_t *data, size_t len,
                                   char *id_out);

/**
 * Fetch a document by id (24 hex characters). On success *data_out (owned
 * by the caller, ee_free()) holds *len_out bytes of BSON and *revision_out
 * (may be NULL) its revision.
 *
 * Returns EE_OK; EE_ENOTFOUND (no such document in this workspace);
 * EE_EINVAL; EE_ETOOBIG (id longer than 24 characters);
 * EE_ENOTSUPPORTED (unknown collection); EE_ECORRUPT (the stored bytes are
 * not valid BSON); EE_ENOMEM; EE_EIO; EE_EBUSY; EE_ENETWORK.
 */
EE_API ee_status ee_storage_get(ee_storage *storage, const char *collection,
                                const char *workspace, const char *id, uint8_t **data_out,
                                size_t *len_out, int64_t *revision_out);

/**
 * Replace the document `id` if its revision is still `expected_revision`.
 * The new document's `_id`, if present, must equal `id` (it is prepended if
 * absent). *revision_out (may be NULL) receives the new revision.
 *
 * Returns EE_OK; EE_ECONFLICT (the stored revision differs: re-read and
 * retry); EE_ENOTFOUND; EE_EEXISTS (unique key taken); and the input
 * statuses of ee_storage_insert().
 */
EE_API ee_status ee_storage_replace(ee_storage *storage, const char *collection,
                                    const char *workspace, const char *id,
                                    int64_t expected_revision, const uint8_t *data, size_t len,
                                    int64_t *revision_out);

/** Delete a document. Returns EE_OK, EE_ENOTFOUND, and the input and
 * backend statuses of ee_storage_get(). */
EE_API ee_status ee_storage_delete(ee_storage *storage, const char *collection,
                                   const char *workspace, const char *id);

/**
 * Run a query and call `fn` for each document of the page, in order. `fn`
 * must not write to the same storage: a backend may hold a lock while it
 * calls `fn` (memory: its read lock), so collect what to change and write
 * after the call returns. If next_cursor_out is not NULL it receives
 * (owned by the caller, ee_free()) the cursor of the next page, or NULL
 * when this page was the last.
 *
 * Returns EE_OK; EE_EINVAL (a field that is not indexed, bad order, a
 * malformed cursor or one from another query); EE_ETOOBIG (limit, cursor
 * or value too long, too many conditions); EE_ENOTSUPPORTED (unknown
 * collection); EE_ECANCELLED (fn stopped it); EE_ECORRUPT; EE_ENOMEM;
 * EE_EIO; EE_EBUSY; EE_ENETWORK.
 */
EE_API ee_status ee_storage_query(ee_storage *storage, const char *collection,
                                  const char *workspace, const ee_storage_query_spec *query,
                                  ee_storage_row_fn fn, void *payload, char **next_cursor_out);

/** Count the documents matching `query` (its order, limit and cursor are
 * ignored; NULL counts the whole workspace). Statuses as ee_storage_query(). */
EE_API ee_status ee_storage_count(ee_storage *storage, const char *collection,
                                  const char *workspace, const ee_storage_query_spec *query,
                                  uint64_t *count_out);

/**
 * Atomically add each inc[i].delta to the integer field inc[i].field of the
 * document whose unique key is `key` (all of the collection's unique-key
 * fields, e.g. userId, workflowCatalogId, period for userWorkflowUsage),
 * creating it if missing (upsert) with the key fields, the deltas,
 * createdAt = updatedAt = now_ms; an existing one gets updatedAt = now_ms.
 * totals_out (may be NULL) receives n_inc values after the increment.
 * Concurrent increments never lose an update, across threads, processes
 * and (postgres) hosts.
 *
 * Returns EE_OK; EE_EINVAL (key does not match the unique key, a field is
 * indexed or not an integer in the stored document, overflow);
 * EE_ENOTSUPPORTED (unknown collection, or one without a unique key, or a
 * custom backend without the slot); EE_ECORRUPT; EE_EIO; EE_EBUSY;
 * EE_ENETWORK; EE_ENOMEM.
 */
EE_API ee_status ee_storage_increment(ee_storage *storage, const char *collection,
                                      const char *workspace, const ee_storage_eq *key,
                                      size_t n_key, const ee_storage_inc *inc, size_t n_inc,
                                      int64_t now_ms, int64_t *totals_out);

/**
 * Delete every document whose time field is in [time_from, time_to)
 * (retention). `workspace` NULL means every workspace of a per-workspace
 * collection. *deleted_out (may be NULL) receives the count.
 * Returns EE_OK, EE_EINVAL (time_from > time_to), and the backend statuses.
 */
EE_API ee_status ee_storage_delete_range(ee_storage *storage, const char *collection,
                                         const char *workspace, int64_t time_from,
                                         int64_t time_to, uint64_t *deleted_out);

/* ---- backend authors ---------------------------------------------------- */

/* ee_storage_collection.flags */
#define EE_STORAGE_COLL_PER_WORKSPACE 0x1u

/**
 * A collection as the library declares it (static, never freed). `fields`
 * are the indexed fields, in order; `indexes` lists the composite indexes
 * as arrays of positions into `fields`, each terminated by -1 (a backend
 * prefixes each with the workspace and suffixes it with time and id);
 * `unique` (n_unique positions, 0 if none) is the unique key within a
 * workspace.
 */
typedef struct ee_storage_collection {
    const char *name;
    unsigned flags;
    const char *time_field;
    size_t n_fields;
    const char *const *fields;
    size_t n_indexes;
    const int *const *indexes;
    size_t n_unique;
    const int *unique;
} ee_storage_collection;

/**
 * A document as the library hands it to a backend, already validated, its
 * indexed values extracted. `values` has collection->n_fields entries
 * aligned with collection->fields, NULL where the document lacks the
 * field. `workspace` is "" for global collections.
 */
typedef struct ee_storage_record {
    const uint8_t *id;                   /* EE_STORAGE_ID_SIZE bytes */
    const char *workspace;
    int64_t revision;                    /* the revision to store */
    int64_t time;
    const char *const *values;
    const uint8_t *data;
    size_t len;
} ee_storage_record;

/** A validated query for a backend: `values` has collection->n_fields
 * entries, non-NULL ones are equality conditions; the time bounds are
 * always set (INT64_MIN / INT64_MAX when open). */
typedef struct ee_storage_filter {
    const char *const *values;
    int64_t time_from;                   /* inclusive */
    int64_t time_to;                     /* exclusive */
    int order;                           /* EE_STORAGE_ORDER_* */
} ee_storage_filter;

/** Where the previous page stopped: return documents strictly after it in
 * the filter's order (time is ignored for the id orders). */
typedef struct ee_storage_position {
    int64_t time;
    uint8_t id[EE_STORAGE_ID_SIZE];
} ee_storage_position;

/**
 * Called by a backend's `claim` slot (version 2) with the document it
 * picked and holds (locked or under its write lock): the library builds
 * the replacement and returns it in *rec_out (borrowed until the next call
 * of the function or until the slot returns; its revision is
 * row->revision + 1, its id the row's). On EE_OK the backend stores it in
 * place of the row, in the same atomic step. Any other status: the backend
 * stores nothing and returns that status.
 */
typedef ee_status (*ee_storage_claim_fn)(const ee_storage_row *row,
                                         const ee_storage_record **rec_out, void *payload);

#define EE_STORAGE_BACKEND_VERSION 2

/* ee_storage_backend.flags */
#define EE_STORAGE_THREAD_SAFE 0x1u      /* may be called from many threads */
#define EE_STORAGE_TRANSACTIONAL 0x2u    /* each call is an atomic, isolated
                                            transaction, also between processes
                                            sharing the store */

/**
 * The table a backend implements. The first field is the version forever;
 * later versions only append slots. The library refuses version 0 or a
 * version newer than EE_STORAGE_BACKEND_VERSION, copies only the part the
 * declared version defines, and a NULL slot makes the matching call fail
 * with EE_ENOTSUPPORTED. Every slot receives validated input (known
 * collection, workspace checked, values bounded) and returns an ee_status;
 * when a slot of a custom backend fails, the library records a message
 * naming the backend and the operation. Expected statuses per slot:
 *   insert        EE_EEXISTS when the id or the unique key is taken
 *   get           calls fn once; EE_ENOTFOUND
 *   replace       EE_ENOTFOUND, EE_ECONFLICT (revision differs), EE_EEXISTS
 *   remove        EE_ENOTFOUND
 *   query         at most `limit` rows strictly after `after` (NULL: from
 *                 the start) in filter->order; stop (and return EE_OK)
 *                 as soon as fn returns non-zero
 *   count         documents matching the filter (order ignored)
 *   increment     find by (workspace, unique-key values of if_absent); if
 *                 absent store if_absent (which already holds the deltas);
 *                 else add the deltas, set updatedAt, bump the revision;
 *                 one atomic step. totals_out gets the values after.
 *   delete_range  workspace NULL = all workspaces
 *   destroy       release ctx (called once, by ee_storage_free()).
 * Version 2 appends:
 *   claim         in one atomic step: pick the first document matching
 *                 the filter (filter->order is ignored) in the order
 *                 (fields[order_field] ASC, time ASC, id ASC) - or
 *                 (time ASC, id ASC) when order_field is -1 -, skipping
 *                 documents another concurrent claim holds; call fn once
 *                 with it and store the record fn returns (revision + 1).
 *                 EE_ENOTFOUND when nothing matches; fn's status when it
 *                 fails. Documents lacking the order field may come in
 *                 any place. A backend without the slot (or a version 1
 *                 table) still supports claims: the library queries and
 *                 replaces with a revision check, trying the next
 *                 candidate on EE_ECONFLICT.
 */
typedef struct ee_storage_backend {
    unsigned version;
    unsigned flags;
    const char *name;
    void (*destroy)(void *ctx);
    ee_status (*insert)(void *ctx, const ee_storage_collection *coll,
                        const ee_storage_record *rec);
    ee_status (*get)(void *ctx, const ee_storage_collection *coll, const char *workspace,
                     const uint8_t *id, ee_storage_row_fn fn, void *payload);
    ee_status (*replace)(void *ctx, const ee_storage_collection *coll,
                         int64_t expected_revision, const ee_storage_record *rec);
    ee_status (*remove)(void *ctx, const ee_storage_collection *coll, const char *workspace,
                        const uint8_t *id);
    ee_status (*query)(void *ctx, const ee_storage_collection *coll, const char *workspace,
                       const ee_storage_filter *filter, const ee_storage_position *after,
                       size_t limit, ee_storage_row_fn fn, void *payload);
    ee_status (*count)(void *ctx, const ee_storage_collection *coll, const char *workspace,
                       const ee_storage_filter *filter, uint64_t *count_out);
    ee_status (*increment)(void *ctx, const ee_storage_collection *coll,
                           const ee_storage_record *if_absent, const ee_storage_inc *inc,
                           size_t n_inc, int64_t now_ms, int64_t *totals_out);
    ee_status (*delete_range)(void *ctx, const ee_storage_collection *coll,
                              const char *workspace, int64_t time_from, int64_t time_to,
                              uint64_t *deleted_out);
    /* version 2 */
    ee_status (*claim)(void *ctx, const ee_storage_collection *coll, const char *workspace,
                       const ee_storage_filter *filter, int order_field, ee_storage_claim_fn fn,
                       void *payload);
} ee_storage_backend;

/**
 * Wrap a custom backend. `backend` is copied (the part its version
 * defines); `ctx` is handed to every slot and to destroy() when the handle
 * is freed - also when this call fails after validating the table, so the
 * caller never frees ctx itself once it passed a valid table.
 * Returns EE_OK; EE_EINVAL (NULL out or backend); EE_EVERSION (version 0
 * or newer than EE_STORAGE_BACKEND_VERSION; ctx is then not destroyed);
 * EE_ENOMEM.
 */
EE_API ee_status ee_storage_new_custom(ee_storage **out, const ee_storage_backend *backend,
                                       void *ctx);

/**
 * The collections the library declares: *list_out points at a static
 * array of *count_out pointers (borrowed forever). Thread-safe.
 * Returns EE_OK or EE_EINVAL (NULL argument).
 */
EE_API ee_status ee_storage_collection_list(const ee_storage_collection *const **list_out,
                                            size_t *count_out);

/**
 * Generate a fresh ObjectId as 24 hex characters and a terminator into
 * out (25 bytes). Thread-safe. Returns EE_OK or EE_EINVAL (out NULL).
 */
EE_API ee_status ee_storage_id_new(char *out);

EE_END_DECLS

#endif
