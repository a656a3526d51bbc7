/*
 * lib/storage/storage.h - the storage module's semi-private interface: what
 * other modules of the library (the engine, the modules' records) use beyond the public
 * execengine/storage.h. Never installed.
 */
#ifndef EE_STORAGE_STORAGE_H
#define EE_STORAGE_STORAGE_H

#include <bson/bson.h>

#include "core/core.h"
#include "core/record.h"
#include "execengine/storage.h"

/* ee_storage_open_uri() with the engine's logger (it must outlive the
 * handle), which receives the diagnostics of the libraries it uses (libpq
 * notices). `lg` may be NULL. */
ee_status ee__storage_open_uri_logged(ee_storage **out, const char *uri, const ee__logger *lg);

/* ---- claims (storage.c) ---------------------------------------------------- */

/* Build the document that replaces a claimed one: `row` is the document as
 * stored (borrowed), `out` an empty document to fill (the library frees
 * it). Return EE_OK to store it, any other status to store nothing: the
 * claim then returns that status. Called with the document locked (a
 * transaction or a backend's write lock): it must not call the storage. */
typedef ee_status (*ee__storage_claim_build_fn)(const ee_storage_row *row, bson_t *out,
                                                void *payload);

/* In one atomic step, pick the first document of `collection`/`workspace`
 * matching `query` (its equality conditions and time range; its order,
 * limit and cursor are ignored) in the order (order_field ASC, time ASC,
 * id ASC) - (time ASC, id ASC) when order_field is NULL -, skipping
 * documents other concurrent claimers hold, and replace it with what
 * `build` makes of it (revision + 1). Concurrent claims - threads,
 * processes, hosts on PostgreSQL - never get the same revision of a
 * document. id_out (25 bytes) and revision_out (both may be NULL) receive
 * the claimed document's id and new revision.
 *
 * PostgreSQL: SELECT ... FOR UPDATE SKIP LOCKED in one transaction;
 * SQLite: under BEGIN IMMEDIATE; memory: under its write lock; a custom
 * backend without the version 2 `claim` slot: query, then replace with a
 * revision check, the next candidate on EE_ECONFLICT.
 *
 * Returns EE_OK; EE_ENOTFOUND (nothing matches); `build`'s status; EE_EBUSY
 * (a custom backend's candidates were all taken by others, many times
 * over); the input statuses of ee_storage_query() and the backend's. */
ee_status ee__storage_claim(ee_storage *storage, const char *collection, const char *workspace,
                            const ee_storage_query_spec *query, const char *order_field,
                            ee__storage_claim_build_fn build, void *payload, char *id_out,
                            int64_t *revision_out);

/* ---- atomic scopes (atomic.c) ---------------------------------------------- */

/* The writes of one step of the library's own modules, made atomic. */
typedef ee_status (*ee__storage_atomic_fn)(ee_storage *storage, void *payload);

/* Call fn(storage, payload) inside one write transaction: every call the
 * calling thread makes on `storage` from fn (the public calls, claims,
 * records) joins it, sees its own writes, and is committed when fn
 * returns EE_OK - one commit, one fsync on SQLite - or rolled back, all of
 * it, when fn returns anything else (that status is returned, its message
 * kept). Other threads and processes see none of it before the commit;
 * writers among them wait (SQLite: the file's write lock is held for the
 * whole scope, so keep it short: no network call, no counters write - the
 * SQLite counters' own connection would wait for the lock; memory: readers
 * wait too, so fn must not wait for another thread that uses the store).
 *
 * PostgreSQL: a statement that fails inside the scope (a unique key
 * taken) ends the transaction there: fn should return that failure; if it
 * goes on regardless, the scope rolls back and returns EE_EIO. SQLite and
 * memory roll back only the failed call.
 *
 * A nested call on the same handle joins the outer scope (fn runs, nothing
 * is committed until the outer one ends). A custom backend (no
 * transactions) runs fn's calls one by one, each atomic on its own: a
 * failure leaves the calls before it applied - the weaker guarantee the
 * callers' recovery rules must allow for.
 *
 * Returns fn's status; EE_EINVAL (NULL argument, or a scope of another
 * handle open on this thread); the backend's (cannot begin or commit). */
ee_status ee__storage_atomic(ee_storage *storage, ee__storage_atomic_fn fn, void *payload);

/* ee__storage_atomic() whose commit need not reach the disk before it
 * returns: atomic, visible to everyone and ordered before every later
 * commit like any other (a later synced commit - or SQLite's checkpoint -
 * makes it durable too), but an operating-system crash or power loss may
 * lose it with the commits after it that were not synced. A process kill
 * loses nothing. For steps whose loss recovery already handles (a claim
 * lost before the run started is claimed again; a release lost after the
 * final record is redone by recovery). SQLite with synchronous=FULL: the
 * scope's connection commits with synchronous=NORMAL (no fsync);
 * PostgreSQL: SET LOCAL synchronous_commit = off; memory and custom
 * backends: as ee__storage_atomic(). A nested call joins the outer scope
 * and keeps its durability. */
ee_status ee__storage_atomic_deferred(ee_storage *storage, ee__storage_atomic_fn fn,
                                      void *payload);

/* Whether ee__storage_atomic() is one transaction on this handle. */
bool ee__storage_atomic_native(const ee_storage *storage);

/* ---- records over the storage (records.c) ------------------------------- */

/* Run `query` page after page (its cursor is ignored: the walk starts at
 * the first page) and call `fn` for every document. `fn` records its error
 * in *fn_st before it stops the walk; that status is returned in place of
 * EE_ECANCELLED. Otherwise the statuses of ee_storage_query(). */
ee_status ee__storage_query_all(ee_storage *storage, const char *collection,
                                const char *workspace, const ee_storage_query_spec *query,
                                ee_storage_row_fn fn, void *payload, const ee_status *fn_st);

/* Delete every document `query` matches (its limit is the page size,
 * 0 or over 256: 256; its cursor is ignored), page after page: each
 * page's ids are collected first and deleted after the query returned - a
 * backend may hold a lock while its query calls back (memory: its read
 * lock), so nothing is written from inside the callback - and the query
 * starts again until a page comes back short. *found_out (may be NULL)
 * counts the documents found, *deleted_out (may be NULL) those this call
 * deleted (a document another call deleted meanwhile is found, not
 * deleted). Statuses of ee_storage_query() and ee_storage_delete(). */
ee_status ee__storage_delete_matching(ee_storage *storage, const char *collection,
                                      const char *workspace, const ee_storage_query_spec *query,
                                      uint64_t *found_out, uint64_t *deleted_out);

/* The mutation of an update: change `rec` (the decoded stored record, read
 * afresh on each attempt) in place. Return EE_OK to write it,
 * EE__RECORD_KEEP to write nothing and succeed, or an error to stop. */
typedef ee_status (*ee__record_mutate_fn)(json_t *rec, void *payload);
#define EE__RECORD_KEEP ((ee_status)1)

typedef struct ee__record_update_spec {
    ee_storage *storage;
    const ee__record_map *map;
    const char *collection;
    const char *workspace; /* may be NULL (global collection) */
    const char *id;
    /* Non-zero: the revision the caller read; a record at another revision
     * is EE_ECONFLICT "<what> <id> is at revision R, not E: re-read it"
     * and is not retried. */
    int64_t expected;
    /* Optional: the record and revision already read (first attempt only). */
    const json_t *seed;
    int64_t seed_revision;
    ee__record_mutate_fn mutate;
    void *payload;
} ee__record_update_spec;

/* Read the record with its revision, mutate it, replace it if its revision
 * is still the one read; on EE_ECONFLICT read again and mutate the fresh
 * record (ee__record_retry's policy). With `expected`, and on EE_EEXISTS
 * (a unique key another record holds), it stops at once. On success *rec_out (may be NULL)
 * holds the record as written (or as read, when the mutation kept it) and
 * *revision_out (may be NULL) its revision. EE_ENOTFOUND when the record
 * does not exist. */
ee_status ee__record_update(const ee__record_update_spec *spec, json_t **rec_out,
                            int64_t *revision_out);

/* The newest record of `collection`/`workspace` whose indexed `field` is
 * `value`. EE_OK with out->rec (new reference) - or out->rec NULL and
 * out->why saying why, when the stored document does not decode - and its
 * id and revision; EE_ENOTFOUND; the storage's statuses. */
typedef struct ee__record_found {
    json_t *rec;
    char id[EE_STORAGE_ID_HEX_LEN + 1];
    int64_t revision;
    bool seen;
    const ee__record_map *map;
    char why[256];
} ee__record_found;

ee_status ee__record_find(ee_storage *storage, const ee__record_map *map, const char *collection,
                          const char *workspace, const char *field, const char *value,
                          ee__record_found *out);

/* Create-or-replace the record of `collection`/`workspace` whose indexed
 * (unique) `field` is `value`: the newest one is read (an empty object when
 * there is none), mutated and replaced, or inserted; a writer in between
 * (EE_ECONFLICT, or EE_EEXISTS on the unique key) makes it read again.
 * `insert_id` (24 hex, may be NULL: a new one) is the id of a record this
 * inserts: a collection whose `field` is not a unique key gets one record
 * per value under concurrency when the id derives from the value (the
 * second insert is EE_EEXISTS, and that writer replaces the first's). */
ee_status ee__record_upsert(ee_storage *storage, const ee__record_map *map,
                            const char *collection, const char *workspace, const char *field,
                            const char *value, const char *insert_id,
                            ee__record_mutate_fn mutate, void *payload);

#endif
