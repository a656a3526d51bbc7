/*
 * A custom backend table (ee_storage_new_custom()) that forwards every slot
 * to a memory store, declared at version CUSTOM_VERSION. At version 1 the
 * bytes of the table past what version 1 defines are garbage, as in a host
 * built against the version 1 header: the library must not read them (the
 * claim then works by query and revision-checked replace). At version 2
 * the claim slot is forwarded too.
 */
#ifndef EE_TEST_STORAGE_CUSTOM_BACKEND_H
#define EE_TEST_STORAGE_CUSTOM_BACKEND_H

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "execengine/storage.h"
#include "storage/internal.h" /* ee__storage_backend(): the memory backend's table */

typedef struct fwd {
    ee_storage *inner;
    const ee_storage_backend *in;
    void *in_ctx;
    atomic_int claims, replaces;
    atomic_int queue_claims; /* the claims of the execution queue's collection */
    atomic_int record_gets;  /* the gets of execution records (workflowExecutions) */
    /* Run once after the next query (then cleared): a test's way to make
     * another writer act between a caller's read and its write. */
    void (*after_query)(struct fwd *f);
} fwd;

static void fwd_destroy(void *ctx)
{
    fwd *f = ctx;
    ee_storage_free(f->inner);
    free(f);
}

static ee_status fwd_insert(void *ctx, const ee_storage_collection *c,
                            const ee_storage_record *r)
{
    fwd *f = ctx;
    return f->in->insert(f->in_ctx, c, r);
}

static ee_status fwd_get(void *ctx, const ee_storage_collection *c, const char *ws,
                         const uint8_t *id, ee_storage_row_fn fn, void *payload)
{
    fwd *f = ctx;
    if (strcmp(c->name, "workflowExecutions") == 0)
        atomic_fetch_add(&f->record_gets, 1);
    return f->in->get(f->in_ctx, c, ws, id, fn, payload);
}

static ee_status fwd_replace(void *ctx, const ee_storage_collection *c, int64_t rev,
                             const ee_storage_record *r)
{
    fwd *f = ctx;
    atomic_fetch_add(&f->replaces, 1);
    return f->in->replace(f->in_ctx, c, rev, r);
}

static ee_status fwd_remove(void *ctx, const ee_storage_collection *c, const char *ws,
                            const uint8_t *id)
{
    fwd *f = ctx;
    return f->in->remove(f->in_ctx, c, ws, id);
}

static ee_status fwd_query(void *ctx, const ee_storage_collection *c, const char *ws,
                           const ee_storage_filter *flt, const ee_storage_position *after,
                           size_t limit, ee_storage_row_fn fn, void *payload)
{
    fwd *f = ctx;
    ee_status st = f->in->query(f->in_ctx, c, ws, flt, after, limit, fn, payload);
    void (*hook)(struct fwd *) = f->after_query;
    f->after_query = NULL;
    if (hook != NULL)
        hook(f);
    return st;
}

static ee_status fwd_count(void *ctx, const ee_storage_collection *c, const char *ws,
                           const ee_storage_filter *flt, uint64_t *out)
{
    fwd *f = ctx;
    return f->in->count(f->in_ctx, c, ws, flt, out);
}

static ee_status fwd_increment(void *ctx, const ee_storage_collection *c,
                               const ee_storage_record *r, const ee_storage_inc *inc, size_t n,
                               int64_t now, int64_t *totals)
{
    fwd *f = ctx;
    return f->in->increment(f->in_ctx, c, r, inc, n, now, totals);
}

static ee_status fwd_delete_range(void *ctx, const ee_storage_collection *c, const char *ws,
                                  int64_t from, int64_t to, uint64_t *deleted)
{
    fwd *f = ctx;
    return f->in->delete_range(f->in_ctx, c, ws, from, to, deleted);
}

static __attribute__((unused)) ee_status fwd_claim(void *ctx, const ee_storage_collection *c,
                                                   const char *ws, const ee_storage_filter *flt,
                                                   int k, ee_storage_claim_fn fn, void *payload)
{
    fwd *f = ctx;
    atomic_fetch_add(&f->claims, 1);
    if (strcmp(c->name, "executionQueue") == 0)
        atomic_fetch_add(&f->queue_claims, 1);
    return f->in->claim(f->in_ctx, c, ws, flt, k, fn, payload);
}

static fwd *custom_state;

static ee_storage *custom_open(unsigned version)
{
    fwd *f = calloc(1, sizeof *f);
    cr_assert_not_null(f);
    cr_assert_eq(ee_storage_open_uri(&f->inner, "memory:"), EE_OK);
    f->in = ee__storage_backend(f->inner, &f->in_ctx);
    /* The table as a host compiled against the header of `version` lays
     * it out; what follows is not the host's: garbage. */
    unsigned char *raw = malloc(sizeof(ee_storage_backend));
    cr_assert_not_null(raw);
    memset(raw, 0xA5, sizeof(ee_storage_backend));
    ee_storage_backend t = {
        .version = version,
        .flags = EE_STORAGE_THREAD_SAFE,
        .name = "forwarding",
        .destroy = fwd_destroy,
        .insert = fwd_insert,
        .get = fwd_get,
        .replace = fwd_replace,
        .remove = fwd_remove,
        .query = fwd_query,
        .count = fwd_count,
        .increment = fwd_increment,
        .delete_range = fwd_delete_range,
        .claim = version >= 2 ? fwd_claim : NULL,
    };
    size_t used = version >= 2 ? sizeof t
                               : offsetof(ee_storage_backend, delete_range) + sizeof(void *);
    memcpy(raw, &t, used);
    ee_storage *s = NULL;
    ee_status st = ee_storage_new_custom(&s, (const ee_storage_backend *)raw, f);
    free(raw);
    cr_assert_eq(st, EE_OK, "%s", ee_error_last_message());
    custom_state = f;
    return s;
}

#endif
