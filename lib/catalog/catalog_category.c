/* Workflow categories: create, get, update, list ordered by sortOrder. */
#include <stdlib.h>
#include <string.h>

#include "catalog/catalog_internal.h"

#define CATEGORY_DEPTH 8

static ee_status check(ee_engine *engine, const char *what)
{
    if (engine == NULL)
        return ee__error(EE_EINVAL, "%s: engine is NULL", what);
    return ee__catalog_state_of(engine) ? EE_OK : EE_ESTATE;
}

static ee_status check_id(const char *id, const char *what)
{
    if (id == NULL || !ee__cat_hex_id(id))
        return ee__error(EE_EINVAL, "%s: the id must be 24 lowercase hex characters", what);
    return EE_OK;
}

static ee_status name_taken(const json_t *rec, ee_status st)
{
    if (st != EE_EEXISTS)
        return st;
    char q[160];
    ee__quote_for_message(json_string_value(json_object_get(rec, "name")), q, sizeof q);
    return ee__error(EE_EEXISTS, "a category named \"%s\" already exists", q);
}

ee_status ee__cat_category_insert(ee_engine *engine, json_t *rec, char id[25])
{
    json_int_t now = ee_engine_now_ms(engine);
    if (json_object_set_new(rec, "createdAt", json_integer(now)) != 0
        || json_object_set_new(rec, "updatedAt", json_integer(now)) != 0)
        return ee__error(EE_ENOMEM, "out of memory");
    return name_taken(rec, ee__cat_insert(engine, EE__CAT_CATEGORIES, rec, id));
}

ee_status ee_catalog_category_create(ee_engine *engine, const char *category_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_catalog_category_create: out is NULL");
    *out = NULL;
    ee_status st = check(engine, "ee_catalog_category_create");
    json_t *input = NULL, *rec = NULL;
    if (st == EE_OK)
        st = ee__cat_json_parse(category_json, EE_CATALOG_DOC_MAX, CATEGORY_DEPTH, "category",
                                &input);
    if (st == EE_OK && (rec = json_object()) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory");
    if (st == EE_OK)
        st = ee__cat_category_apply(rec, input, true);
    char id[25] = "";
    if (st == EE_OK)
        st = ee__cat_category_insert(engine, rec, id);
    if (st == EE_OK) {
        ee__cat_audit(engine, EE__AUDIT_CATALOG_CATEGORY_CREATED, id, rec, NULL);
        st = ee__json_out(out, ee__cat_category_render(id, 1, rec));
    }
    json_decref(input);
    json_decref(rec);
    return st == EE_OK ? EE_OK : (*out ? st : ee__error_out(out, st));
}

ee_status ee_catalog_category_get(ee_engine *engine, const char *category_id, unsigned flags,
                                  char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_catalog_category_get: out is NULL");
    *out = NULL;
    ee_status st = check(engine, "ee_catalog_category_get");
    if (st == EE_OK)
        st = check_id(category_id, "ee_catalog_category_get");
    if (st == EE_OK && (flags & ~EE_CATALOG_INCLUDE_INACTIVE) != 0)
        st = ee__error(EE_EINVAL, "ee_catalog_category_get: unknown flags 0x%x", flags);
    json_t *rec = NULL;
    int64_t rev = 0;
    if (st == EE_OK)
        st = ee__cat_load(engine, EE__CAT_CATEGORIES, category_id, &rec, &rev);
    if (st == EE_OK && !(flags & EE_CATALOG_INCLUDE_INACTIVE)
        && !json_is_true(json_object_get(rec, "isActive")))
        st = ee__error(EE_ENOTFOUND, "no active category with id %s", category_id);
    if (st == EE_OK)
        st = ee__json_out(out, ee__cat_category_render(category_id, rev, rec));
    json_decref(rec);
    return st == EE_OK ? EE_OK : ee__error_out(out, st);
}

typedef struct category_update {
    ee_engine *engine;
    const json_t *patch;
    json_t *name; /* the name last written, for the message of a taken one */
} category_update;

static ee_status category_mutate(json_t *rec, void *payload)
{
    category_update *u = payload;
    ee_status st = ee__cat_category_apply(rec, u->patch, false);
    if (st != EE_OK)
        return st;
    int64_t now = ee_engine_now_ms(u->engine);
    int64_t prev = json_integer_value(json_object_get(rec, "updatedAt"));
    if (json_object_set_new(rec, "updatedAt", json_integer(now > prev ? now : prev)) != 0)
        return ee__error(EE_ENOMEM, "out of memory");
    json_decref(u->name);
    u->name = json_incref(json_object_get(rec, "name"));
    return EE_OK;
}

ee_status ee_catalog_category_update(ee_engine *engine, const char *category_id,
                                     const char *patch_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_catalog_category_update: out is NULL");
    *out = NULL;
    ee_status st = check(engine, "ee_catalog_category_update");
    if (st == EE_OK)
        st = check_id(category_id, "ee_catalog_category_update");
    json_t *patch = NULL, *rec = NULL;
    if (st == EE_OK)
        st = ee__cat_json_parse(patch_json, EE_CATALOG_DOC_MAX, CATEGORY_DEPTH, "category patch",
                                &patch);
    if (st == EE_OK && !json_is_object(patch))
        st = ee__error(EE_EINVAL, "a category patch must be a JSON object");
    int64_t expected = 0;
    if (st == EE_OK && json_object_get(patch, "revision") != NULL) {
        const json_t *r = json_object_get(patch, "revision");
        if (!json_is_integer(r) || json_integer_value(r) < 1)
            st = ee__error(EE_EINVAL, "\"revision\" must be a positive integer");
        else
            expected = json_integer_value(r);
    }
    int64_t rev = 0;
    if (st == EE_OK) {
        /* without "revision", a concurrent write re-applies the patch to the
         * fresh record (the record layer's retry policy) */
        category_update u = {engine, patch, NULL};
        st = ee__cat_update(engine, EE__CAT_CATEGORIES, category_id, expected, NULL,
                            category_mutate, &u, &rec, &rev);
        if (st == EE_EEXISTS) {
            json_t *named = json_pack("{s:O}", "name", u.name ? u.name : json_null());
            st = name_taken(named, st);
            json_decref(named);
        }
        json_decref(u.name);
    }
    if (st == EE_OK) {
        ee__cat_audit(engine, EE__AUDIT_CATALOG_CATEGORY_UPDATED, category_id, rec, patch);
        st = ee__json_out(out, ee__cat_category_render(category_id, rev, rec));
    }
    json_decref(patch);
    json_decref(rec);
    return st == EE_OK ? EE_OK : (*out ? st : ee__error_out(out, st));
}

typedef struct {
    json_t *list;
    bool admin;
} list_ctx;

static ee_status collect(const char *id, int64_t revision, json_t *rec, void *payload)
{
    list_ctx *c = payload;
    if (!c->admin && !json_is_true(json_object_get(rec, "isActive")))
        return EE_OK;
    json_t *doc = ee__cat_category_render(id, revision, rec);
    if (doc == NULL || json_array_append_new(c->list, doc) != 0)
        return ee__error(EE_ENOMEM, "out of memory");
    return EE_OK;
}

static int cmp_category(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t sx = json_integer_value(json_object_get(x, "sortOrder"));
    json_int_t sy = json_integer_value(json_object_get(y, "sortOrder"));
    if (sx != sy)
        return sx < sy ? -1 : 1;
    int c = strcmp(json_string_value(json_object_get(x, "name")),
                   json_string_value(json_object_get(y, "name")));
    return c ? c
             : strcmp(json_string_value(json_object_get(x, "id")),
                      json_string_value(json_object_get(y, "id")));
}

ee_status ee__cat_categories_all(ee_engine *engine, bool admin, json_t **out)
{
    *out = NULL;
    list_ctx c = {json_array(), admin};
    if (c.list == NULL)
        return ee__error(EE_ENOMEM, "out of memory");
    ee_status st = ee__cat_scan(engine, EE__CAT_CATEGORIES, collect, &c);
    if (st != EE_OK) {
        json_decref(c.list);
        return st;
    }
    size_t n = json_array_size(c.list);
    json_t **v = malloc((n ? n : 1) * sizeof *v);
    json_t *sorted = json_array();
    if (v == NULL || sorted == NULL) {
        free(v);
        json_decref(sorted);
        json_decref(c.list);
        return ee__error(EE_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(c.list, i);
    qsort(v, n, sizeof *v, cmp_category);
    for (size_t i = 0; i < n; i++)
        json_array_append(sorted, v[i]);
    free(v);
    json_decref(c.list);
    *out = sorted;
    return EE_OK;
}

ee_status ee_catalog_category_list(ee_engine *engine, const char *query_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_catalog_category_list: out is NULL");
    *out = NULL;
    ee_status st = check(engine, "ee_catalog_category_list");
    json_t *q = NULL, *all = NULL;
    if (st == EE_OK && query_json != NULL)
        st = ee__cat_json_parse(query_json, EE_CATALOG_DOC_MAX, CATEGORY_DEPTH, "category query",
                                &q);
    bool admin = false;
    if (st == EE_OK && q != NULL) {
        const char *key;
        json_t *v;
        static const char *const members[] = {"includeInactive", NULL};
        if (!json_is_object(q))
            st = ee__error(EE_EINVAL, "a category query must be a JSON object");
        else
            st = ee__json_check_members(q, members, "category query", "");
        json_object_foreach(q, key, v) {
            if (st != EE_OK)
                break;
            if (strcmp(key, "includeInactive") == 0 && json_is_boolean(v))
                admin = json_is_true(v);
            else
                st = ee__error(EE_EINVAL, "category query: only \"includeInactive\": bool is "
                                          "accepted");
        }
    }
    if (st == EE_OK)
        st = ee__cat_categories_all(engine, admin, &all);
    json_decref(q);
    if (st != EE_OK)
        return ee__error_out(out, st);
    return ee__json_out(out, json_pack("{s:o}", "data", all));
}
