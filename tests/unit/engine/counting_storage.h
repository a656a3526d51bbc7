/*
 * A host's own storage for the engine tests: an ee_storage_new_custom()
 * table that forwards every slot to the memory backend and counts the
 * calls, so a test sees what the engine and its modules did through it.
 */
#ifndef EE_TEST_COUNTING_STORAGE_H
#define EE_TEST_COUNTING_STORAGE_H

#include <criterion/criterion.h>
#include <stdatomic.h>

#include "execengine/storage.h"
#include "storage/internal.h" /* ee__storage_backend(): the memory backend's table */

typedef struct {
    ee_storage *inner; /* a memory: store, freed with the wrapper */
    const ee_storage_backend *in;
    void *in_ctx;
    atomic_int inserts, gets, replaces, removes, queries, counts, increments, ranges;
    void (*on_destroy)(void *payload); /* run first by destroy (may be NULL) */
    void *on_destroy_payload;
} counting_storage;

static void cs_destroy(void *ctx)
{
    counting_storage *c = ctx;
    if (c->on_destroy != NULL)
        c->on_destroy(c->on_destroy_payload);
    ee_storage_free(c->inner);
    free(c);
}

static ee_status cs_insert(void *ctx, const ee_storage_collection *coll,
                           const ee_storage_record *rec)
{
    counting_storage *c = ctx;
    atomic_fetch_add(&c->inserts, 1);
    return c->in->insert(c->in_ctx, coll, rec);
}

static ee_status cs_get(void *ctx, const ee_storage_collection *coll, const char *ws,
                        const uint8_t *id, ee_storage_row_fn fn, void *payload)
{
    counting_storage *c = ctx;
    atomic_fetch_add(&c->gets, 1);
    return c->in->get(c->in_ctx, coll, ws, id, fn, payload);
}

static ee_status cs_replace(void *ctx, const ee_storage_collection *coll, int64_t rev,
                            const ee_storage_record *rec)
{
    counting_storage *c = ctx;
    atomic_fetch_add(&c->replaces, 1);
    return c->in->replace(c->in_ctx, coll, rev, rec);
}

static ee_status cs_remove(void *ctx, const ee_storage_collection *coll, const char *ws,
                           const uint8_t *id)
{
    counting_storage *c = ctx;
    atomic_fetch_add(&c->removes, 1);
    return c->in->remove(c->in_ctx, coll, ws, id);
}

static ee_status cs_query(void *ctx, const ee_storage_collection *coll, const char *ws,
                          const ee_storage_filter *f, const ee_storage_position *after,
                          size_t limit, ee_storage_row_fn fn, void *payload)
{
    counting_storage *c = ctx;
    atomic_fetch_add(&c->queries, 1);
    return c->in->query(c->in_ctx, coll, ws, f, after, limit, fn, payload);
}

static ee_status cs_count(void *ctx, const ee_storage_collection *coll, const char *ws,
                          const ee_storage_filter *f, uint64_t *out)
{
    counting_storage *c = ctx;
    atomic_fetch_add(&c->counts, 1);
    return c->in->count(c->in_ctx, coll, ws, f, out);
}

static ee_status cs_increment(void *ctx, const ee_storage_collection *coll,
                              const ee_storage_record *if_absent, const ee_storage_inc *inc,
                              size_t n, int64_t now, int64_t *totals)
{
    counting_storage *c = ctx;
    atomic_fetch_add(&c->increments, 1);
    return c->in->increment(c->in_ctx, coll, if_absent, inc, n, now, totals);
}

static ee_status cs_delete_range(void *ctx, const ee_storage_collection *coll, const char *ws,
                                 int64_t from, int64_t to, uint64_t *deleted)
{
    counting_storage *c = ctx;
    atomic_fetch_add(&c->ranges, 1);
    return c->in->delete_range(c->in_ctx, coll, ws, from, to, deleted);
}

/* A custom storage over a fresh memory: store; *state_out sees its calls
 * (owned by the handle: freed by ee_storage_free()). */
static inline ee_storage *counting_storage_new(counting_storage **state_out)
{
    counting_storage *c = calloc(1, sizeof *c);
    cr_assert_not_null(c);
    cr_assert_eq(ee_storage_open_uri(&c->inner, "memory:"), EE_OK);
    c->in = ee__storage_backend(c->inner, &c->in_ctx);
    ee_storage_backend t = {
        .version = EE_STORAGE_BACKEND_VERSION,
        .flags = c->in->flags,
        .name = "counting",
        .destroy = cs_destroy,
        .insert = cs_insert,
        .get = cs_get,
        .replace = cs_replace,
        .remove = cs_remove,
        .query = cs_query,
        .count = cs_count,
        .increment = cs_increment,
        .delete_range = cs_delete_range,
    };
    ee_storage *s = NULL;
    cr_assert_eq(ee_storage_new_custom(&s, &t, c), EE_OK, "%s", ee_error_last_message());
    *state_out = c;
    return s;
}

#endif
