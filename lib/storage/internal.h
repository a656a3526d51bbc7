/*
 * lib/storage/internal.h - what the storage wrapper, its URI parser and the
 * built-in backends share (never installed). Backends reach the rest of the
 * library only through this header and execengine/storage.h.
 */
#ifndef EE_STORAGE_INTERNAL_H
#define EE_STORAGE_INTERNAL_H

#include <bson/bson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "execengine/storage.h"

/* The schema version of the SQL backends' tables (sqlite user_version, the
 * postgres meta row). Bump it, and add a migration step to both backends,
 * whenever a collection gains a field, an index or a unique key. */
#define EE__STORAGE_SCHEMA_VERSION 4

/* Version 1 -> 2: an organisation's subscription became unique per
 * (workspace, orgId). Keep each organisation's newest (by time, then id),
 * then index the key (a database created at version 2 already has the
 * index). The same SQL for SQLite and PostgreSQL, one statement each. */
#define EE__STORAGE_V2_DEDUPE                                                                  \
    "DELETE FROM \"ee_subscriptions\" WHERE EXISTS (SELECT 1 FROM \"ee_subscriptions\" AS n " \
    "WHERE n.ws = \"ee_subscriptions\".ws AND n.f_orgId = \"ee_subscriptions\".f_orgId AND "    \
    "(n.t > \"ee_subscriptions\".t OR (n.t = \"ee_subscriptions\".t AND "                     \
    "n.id > \"ee_subscriptions\".id)))"
#define EE__STORAGE_V2_INDEX                                                                   \
    "CREATE UNIQUE INDEX IF NOT EXISTS \"ee_subscriptions_u\" ON \"ee_subscriptions\" "         \
    "(ws, f_orgId)"

/* Version 2 -> 3: the execution queue's collections (executionQueue,
 * executionQueueCounters) and the credential gateway's (gatewayGrants,
 * gatewayCalls) are new. Each SQL backend runs its table
 * creation again with IF NOT EXISTS on every table and index: only the
 * missing ones are made (a database created at version 3 has them all). */

/* ---- collections (collections.c) ---------------------------------------- */

/* Every declared collection, in a fixed order; *count receives the size. */
const ee_storage_collection *const *ee__storage_collections(size_t *count);

/* The collection named `name`, or NULL. */
const ee_storage_collection *ee__storage_collection_find(const char *name);

/* Position of `field` among coll->fields, or -1. */
int ee__storage_field_index(const ee_storage_collection *coll, const char *field);

/* ---- documents (doc.c) -------------------------------------------------- */

/* Indexed values extracted from one document. `values[i]` points into
 * `buf` or is NULL. */
typedef struct ee__storage_extract {
    int64_t time;
    bool has_time;
    const char *values[32];
    char buf[32 * (EE_STORAGE_VALUE_MAX + 1)];
} ee__storage_extract;

/* Check that data[0..len) is one well-formed BSON document. Returns EE_OK
 * or `fail_status` with a message naming `what`. */
ee_status ee__storage_doc_check(const uint8_t *data, size_t len, ee_status fail_status,
                                const char *what);

/* The cheap check done on every read: a length header that matches `len`
 * and the terminator. Documents were fully checked when written; what a
 * caller iterates with libbson is bounds-checked by libbson itself. */
bool ee__storage_doc_framed(const uint8_t *data, size_t len);

/* Extract the indexed values and the time of a valid document. Returns
 * EE_OK, EE_ETOOBIG (an indexed value longer than EE_STORAGE_VALUE_MAX),
 * EE_ECORRUPT (the bytes are not a BSON document). */
ee_status ee__storage_doc_extract(const ee_storage_collection *coll, const uint8_t *data,
                                  size_t len, ee__storage_extract *out);

/* Rewrite `data` adding the increments and setting updatedAt = now_ms into
 * *out (initialised by this call, bson_destroy() it), storing the totals.
 * Returns EE_OK; EE_ECORRUPT (stored bytes not BSON); EE_EINVAL (a field
 * exists and is not an integer, a path crosses a non-document, overflow). */
ee_status ee__storage_doc_apply_inc(const uint8_t *data, size_t len, const ee_storage_inc *inc,
                                    size_t n_inc, int64_t now_ms, bson_t *out,
                                    int64_t *totals_out);

/* Build the document an upsert inserts when the key is absent. */
ee_status ee__storage_doc_upsert(const ee_storage_collection *coll, const uint8_t id[12],
                                 const char *workspace, const ee_storage_eq *key, size_t n_key,
                                 const ee_storage_inc *inc, size_t n_inc, int64_t now_ms,
                                 bson_t *out);

/* ---- hex ids ------------------------------------------------------------- */

void ee__storage_id_hex(const uint8_t id[12], char out[25]);
/* EE_ENOTFOUND "<collection>: no document <id>", every backend's wording. */
ee_status ee__storage_not_found(const ee_storage_collection *c, const uint8_t *id);

/* ---- backends ------------------------------------------------------------- */

/* Wrap a built-in backend's table and context (taking ctx, destroyed on
 * failure too). */
ee_status ee__storage_wrap(ee_storage **out, const ee_storage_backend *backend, void *ctx);

/* A built-in backend's transactions (ee__storage_atomic()): begin() starts
 * a write transaction and binds it to the calling thread, so that every
 * slot that thread calls on `ctx` until end() joins it (the slots' own
 * transactions - increment, claim - become part of it); end() commits
 * (commit true) or rolls back, and unbinds. A thread holds at most one.
 * end(commit true) fails, having rolled back, when a statement inside
 * failed in a way that ended the transaction. */
/* ee__storage_atomic_deferred()'s scope (storage.h) */
#define EE__STORAGE_DEFERRED 1u

typedef struct ee__storage_tx_ops {
    /* flags: EE__STORAGE_DEFERRED (storage.h) or 0 */
    ee_status (*begin)(void *ctx, unsigned flags);
    ee_status (*end)(void *ctx, bool commit);
} ee__storage_tx_ops;

/* ee__storage_wrap() for a backend with transactions. */
ee_status ee__storage_wrap_tx(ee_storage **out, const ee_storage_backend *backend, void *ctx,
                              const ee__storage_tx_ops *tx);

/* The handle's transactions (NULL: none, a custom backend) and ctx. */
const ee__storage_tx_ops *ee__storage_tx(const ee_storage *s, void **ctx_out);

ee_status ee__storage_memory_open(ee_storage **out);

typedef struct ee__sqlite_options {
    const char *path;
    int synchronous;                     /* 0 off, 1 normal, 2 full */
    int busy_timeout_ms;
} ee__sqlite_options;
ee_status ee__storage_sqlite_open(ee_storage **out, const ee__sqlite_options *opts);

/* `schema` may be NULL (the connection's search_path decides). libpq's
 * notices (a server restart's "terminating connection" warning) go to `lg`
 * (may be NULL: dropped; it must outlive the handle), never to stderr. */
ee_status ee__storage_postgres_open(ee_storage **out, const char *conninfo, const char *schema,
                                    const ee__logger *lg);

/* The backend table and context of a handle, for tests that bypass the
 * wrapper's validation (fuzzing, corrupted-input tests). */
const ee_storage_backend *ee__storage_backend(const ee_storage *s, void **ctx_out);

/* ---- small helpers shared by the SQL backends ------------------------------ */

/* Name of the column holding fields[i] ("f_" + field with '.' as '_'). */
void ee__storage_column_name(const char *field, char *out, size_t cap);

/* Map a backend's row order to SQL: "t DESC, id DESC" etc. and the
 * comparison that means "after" ("<" or ">"). */
const char *ee__storage_order_sql(int order, bool *by_time, bool *desc);

#endif
