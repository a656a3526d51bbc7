/* The storage side of the record layer (storage/storage.h): the one
 * read-modify-write of a stored record under core's retry policy, the
 * newest record by a unique field, and create-or-replace. The field maps,
 * conversions and the retry driver are core's (core/record.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "storage/storage.h"

_Static_assert(EE__RECORD_ID_HEX_LEN == EE_STORAGE_ID_HEX_LEN, "record ids are storage ids");

ee_status ee__storage_query_all(ee_storage *storage, const char *collection,
                                const char *workspace, const ee_storage_query_spec *query,
                                ee_storage_row_fn fn, void *payload, const ee_status *fn_st)
{
    ee_storage_query_spec q = *query;
    char *cursor = NULL;
    ee_status st;
    do {
        q.cursor = cursor;
        char *next = NULL;
        st = ee_storage_query(storage, collection, workspace, &q, fn, payload, &next);
        ee_free(cursor);
        cursor = next;
        if (st == EE_ECANCELLED && *fn_st != EE_OK)
            st = *fn_st;
    } while (st == EE_OK && cursor != NULL);
    ee_free(cursor);
    return st;
}

#define DELETE_PAGE_MAX 256

typedef struct {
    char (*ids)[EE_STORAGE_ID_HEX_LEN + 1];
    size_t n, cap;
} id_page;

static int id_row(const ee_storage_row *row, void *payload)
{
    id_page *p = payload;
    ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, p->ids[p->n++]);
    return p->n == p->cap; /* a full page: stop (the limit says so too) */
}

ee_status ee__storage_delete_matching(ee_storage *storage, const char *collection,
                                      const char *workspace, const ee_storage_query_spec *query,
                                      uint64_t *found_out, uint64_t *deleted_out)
{
    uint64_t found = 0, deleted = 0;
    ee_storage_query_spec q = *query;
    q.cursor = NULL;
    if (q.limit == 0 || q.limit > DELETE_PAGE_MAX)
        q.limit = DELETE_PAGE_MAX;
    id_page page = {malloc(q.limit * sizeof *page.ids), 0, q.limit};
    ee_status st = page.ids != NULL ? EE_OK
                                    : ee__error(EE_ENOMEM, "out of memory deleting from %s",
                                                collection);
    while (st == EE_OK) {
        page.n = 0;
        st = ee_storage_query(storage, collection, workspace, &q, id_row, &page, NULL);
        if (st == EE_ECANCELLED) { /* id_row's stop at a full page */
            ee_error_clear();
            st = EE_OK;
        }
        for (size_t i = 0; st == EE_OK && i < page.n; i++) {
            found++;
            st = ee_storage_delete(storage, collection, workspace, page.ids[i]);
            if (st == EE_OK) {
                deleted++;
            } else if (st == EE_ENOTFOUND) { /* another call deleted it */
                ee_error_clear();
                st = EE_OK;
            }
        }
        if (page.n < page.cap)
            break;
    }
    free(page.ids);
    if (found_out != NULL)
        *found_out = found;
    if (deleted_out != NULL)
        *deleted_out = deleted;
    return st;
}

typedef struct upd {
    const ee__record_update_spec *spec;
    json_t *rec;
    int64_t revision;
} upd;

static ee_status update_attempt(int attempt, bool *final, void *payload)
{
    upd *u = payload;
    const ee__record_update_spec *s = u->spec;
    json_decref(u->rec);
    u->rec = NULL;
    ee_status st;
    if (attempt == 0 && s->seed != NULL) {
        u->rec = json_deep_copy(s->seed);
        u->revision = s->seed_revision;
        st = u->rec != NULL ? EE_OK : ee__error(EE_ENOMEM, "out of memory updating a %s",
                                                ee__record_what(s->map));
    } else {
        uint8_t *data = NULL;
        size_t len = 0;
        st = ee_storage_get(s->storage, s->collection, s->workspace, s->id, &data, &len,
                            &u->revision);
        if (st == EE_OK)
            st = ee__record_decode(s->map, data, len, false, &u->rec);
        ee_free(data);
    }
    if (st != EE_OK) {
        *final = true;
        return st;
    }
    if (s->expected != 0 && u->revision != s->expected) {
        *final = true;
        return ee__error(EE_ECONFLICT, "%s %s is at revision %lld, not %lld: re-read it",
                         ee__record_what(s->map), s->id, (long long)u->revision,
                         (long long)s->expected);
    }
    st = s->mutate(u->rec, s->payload);
    if (st == EE__RECORD_KEEP)
        return EE_OK;
    if (st != EE_OK) {
        *final = true;
        return st;
    }
    uint8_t *data = NULL;
    size_t len = 0;
    st = ee__record_encode(s->map, u->rec, &data, &len);
    int64_t rev = 0;
    if (st == EE_OK)
        st = ee_storage_replace(s->storage, s->collection, s->workspace, s->id, u->revision,
                                data, len, &rev);
    free(data);
    if (st == EE_OK)
        u->revision = rev;
    /* Only a concurrent write is retried: EE_EEXISTS is a unique key taken
     * by another record, and the caller's own stale revision stays stale. */
    *final = st != EE_ECONFLICT || s->expected != 0;
    return st;
}

ee_status ee__record_update(const ee__record_update_spec *spec, json_t **rec_out,
                            int64_t *revision_out)
{
    if (rec_out != NULL)
        *rec_out = NULL;
    upd u = {.spec = spec};
    char what[128];
    snprintf(what, sizeof what, "%s %s", ee__record_what(spec->map), spec->id);
    ee_status st = ee__record_retry(update_attempt, &u, what);
    if (st == EE_OK && revision_out != NULL)
        *revision_out = u.revision;
    if (st == EE_OK && rec_out != NULL)
        *rec_out = u.rec;
    else
        json_decref(u.rec);
    return st;
}

/* ---- create or replace by a unique field ------------------------------------------- */

static int take_newest(const ee_storage_row *row, void *payload)
{
    ee__record_found *f = payload;
    f->seen = true;
    f->revision = row->revision;
    ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, f->id);
    if (ee__record_decode(f->map, row->data, row->len, false, &f->rec) != EE_OK)
        snprintf(f->why, sizeof f->why, "%s", ee_error_last_message());
    return 1; /* one is enough */
}

ee_status ee__record_find(ee_storage *storage, const ee__record_map *map, const char *collection,
                          const char *workspace, const char *field, const char *value,
                          ee__record_found *out)
{
    memset(out, 0, sizeof *out);
    out->map = map;
    ee_storage_eq eq = {field, value};
    ee_storage_query_spec q = {0};
    q.version = EE_STORAGE_QUERY_VERSION;
    q.eq = &eq;
    q.n_eq = 1;
    q.order = EE_STORAGE_ORDER_TIME_DESC;
    q.limit = 1;
    ee_status st = ee_storage_query(storage, collection, workspace, &q, take_newest, out, NULL);
    if (st == EE_ECANCELLED)
        st = EE_OK;
    if (st != EE_OK)
        return st;
    return out->seen ? EE_OK : EE_ENOTFOUND;
}

typedef struct ups {
    ee_storage *storage;
    const ee__record_map *map;
    const char *coll, *ws, *field, *value, *insert_id;
    ee__record_mutate_fn mutate;
    void *payload;
} ups;

/* Insert `data` with the _id `id` (24 hex) prepended. */
static ee_status insert_with_id(const ups *u, const char *id, const uint8_t *data, size_t len)
{
    if (!bson_oid_is_valid(id, strlen(id)))
        return ee__error(EE_EINVAL, "%s: the id to insert is not 24 hex characters",
                         ee__record_what(u->map));
    bson_t doc, with_id;
    if (!bson_init_static(&doc, data, len))
        return ee__error(EE_EINVAL, "%s: not a BSON document", ee__record_what(u->map));
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, id);
    bson_init(&with_id);
    ee_status st = BSON_APPEND_OID(&with_id, "_id", &oid) && bson_concat(&with_id, &doc)
                       ? ee_storage_insert(u->storage, u->coll, u->ws, bson_get_data(&with_id),
                                           with_id.len, NULL)
                       : ee__error(EE_ETOOBIG, "%s: too large to add an _id",
                                   ee__record_what(u->map));
    bson_destroy(&with_id);
    return st;
}

static ee_status upsert_attempt(int attempt, bool *final, void *payload)
{
    (void)attempt;
    ups *u = payload;
    ee__record_found n;
    ee_status st = ee__record_find(u->storage, u->map, u->coll, u->ws, u->field, u->value, &n);
    if (st == EE_ENOTFOUND)
        st = EE_OK;
    json_t *rec = n.rec; /* NULL: none, or one that does not decode and is replaced */
    if (st == EE_OK && rec == NULL && (rec = json_object()) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory writing a %s", ee__record_what(u->map));
    if (st == EE_OK) {
        st = u->mutate(rec, u->payload);
        if (st == EE__RECORD_KEEP)
            st = EE_OK;
        else if (st == EE_OK) {
            uint8_t *data = NULL;
            size_t len = 0;
            st = ee__record_encode(u->map, rec, &data, &len);
            if (st == EE_OK && n.seen)
                st = ee_storage_replace(u->storage, u->coll, u->ws, n.id, n.revision, data, len,
                                        NULL);
            else if (st == EE_OK && u->insert_id != NULL)
                st = insert_with_id(u, u->insert_id, data, len);
            else if (st == EE_OK)
                st = ee_storage_insert(u->storage, u->coll, u->ws, data, len, NULL);
            free(data);
            /* a concurrent writer: conflict on replace, unique key on insert */
            *final = st != EE_ECONFLICT && st != EE_EEXISTS && st != EE_ENOTFOUND;
            json_decref(rec);
            return st == EE_ENOTFOUND ? EE_ECONFLICT : st;
        }
    }
    *final = true;
    json_decref(rec);
    return st;
}

ee_status ee__record_upsert(ee_storage *storage, const ee__record_map *map,
                            const char *collection, const char *workspace, const char *field,
                            const char *value, const char *insert_id,
                            ee__record_mutate_fn mutate, void *payload)
{
    ups u = {storage, map, collection, workspace, field, value, insert_id, mutate, payload};
    char what[160];
    snprintf(what, sizeof what, "%s \"%s\"", ee__record_what(map), value);
    return ee__record_retry(upsert_attempt, &u, what);
}
