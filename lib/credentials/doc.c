/* Stored credential documents: BSON <-> metadata JSON plus one sealed
 * binary field, sealing helpers, masking, the workspace registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>
#include <openssl/crypto.h>

#include "credentials/cred_internal.h"

/* Longest request document accepted by this module. */
#define REQUEST_MAX (256 * 1024)
#define DEPTH_MAX 16

void ee__cdoc_clear(ee__cdoc *d)
{
    json_decref(d->meta);
    free(d->sealed);
    memset(d, 0, sizeof *d);
}

/* ---- BSON -> JSON ----------------------------------------------------------- */

static json_t *value_to_json(bson_iter_t *it, ee__cdoc *d, int depth);

static json_t *container_to_json(bson_iter_t *it, bool array, ee__cdoc *d, int depth)
{
    bson_iter_t child;
    if (depth > DEPTH_MAX || !bson_iter_recurse(it, &child))
        return NULL;
    json_t *out = array ? json_array() : json_object();
    while (out != NULL && bson_iter_next(&child)) {
        json_t *v = value_to_json(&child, d, depth + 1);
        if (v == NULL) {
            if (BSON_ITER_HOLDS_BINARY(&child))
                continue; /* only a top-level binary is the sealed field */
            json_decref(out);
            return NULL;
        }
        int rc = array ? json_array_append_new(out, v)
                       : json_object_set_new(out, bson_iter_key(&child), v);
        if (rc != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *value_to_json(bson_iter_t *it, ee__cdoc *d, int depth)
{
    (void)d;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_UTF8: {
        uint32_t len;
        const char *s = bson_iter_utf8(it, &len);
        return json_stringn(s, len);
    }
    case BSON_TYPE_INT32: return json_integer(bson_iter_int32(it));
    case BSON_TYPE_INT64: return json_integer(bson_iter_int64(it));
    case BSON_TYPE_DATE_TIME: return json_integer(bson_iter_date_time(it));
    case BSON_TYPE_DOUBLE: return json_real(bson_iter_double(it));
    case BSON_TYPE_BOOL: return json_boolean(bson_iter_bool(it));
    case BSON_TYPE_NULL: return json_null();
    case BSON_TYPE_OID: {
        char hex[25];
        bson_oid_to_string(bson_iter_oid(it), hex);
        return json_string(hex);
    }
    case BSON_TYPE_DOCUMENT: return container_to_json(it, false, d, depth);
    case BSON_TYPE_ARRAY: return container_to_json(it, true, d, depth);
    default: return NULL;
    }
}

ee_status ee__cdoc_from_bson(const uint8_t *data, size_t len, ee__cdoc *out)
{
    memset(out, 0, sizeof *out);
    bson_t b;
    bson_iter_t it;
    if (!bson_init_static(&b, data, len) || !bson_iter_init(&it, &b))
        return ee__error(EE_ECORRUPT, "stored credential document is not valid BSON");
    out->meta = json_object();
    if (out->meta == NULL)
        return ee__error(EE_ENOMEM, "out of memory reading a credential");
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (BSON_ITER_HOLDS_BINARY(&it)) {
            const uint8_t *bin;
            uint32_t blen;
            bson_subtype_t sub;
            bson_iter_binary(&it, &sub, &blen, &bin);
            if (out->sealed != NULL || strlen(key) >= sizeof out->sealed_field)
                continue;
            out->sealed = malloc(blen ? blen : 1);
            if (out->sealed == NULL) {
                ee__cdoc_clear(out);
                return ee__error(EE_ENOMEM, "out of memory reading a credential");
            }
            memcpy(out->sealed, bin, blen);
            out->sealed_len = blen;
            snprintf(out->sealed_field, sizeof out->sealed_field, "%s", key);
            continue;
        }
        json_t *v = value_to_json(&it, out, 0);
        if (v == NULL || json_object_set_new(out->meta, key, v) != 0) {
            ee__cdoc_clear(out);
            return ee__error(EE_ECORRUPT, "stored credential field '%s' has an unexpected type",
                             key);
        }
        if (strcmp(key, "_id") == 0 && json_is_string(v))
            snprintf(out->id, sizeof out->id, "%s", json_string_value(v));
    }
    return EE_OK;
}

/* ---- JSON -> BSON ----------------------------------------------------------- */

static bool append_json(bson_t *b, const char *key, const json_t *v, int depth);

static bool append_container(bson_t *b, const char *key, const json_t *v, int depth)
{
    bson_t child;
    bool ok;
    if (depth > DEPTH_MAX)
        return false;
    if (json_is_array(v)) {
        ok = bson_append_array_begin(b, key, -1, &child);
        size_t i;
        const json_t *x;
        json_array_foreach(v, i, x) {
            char idx[24];
            snprintf(idx, sizeof idx, "%zu", i);
            ok = ok && append_json(&child, idx, x, depth + 1);
        }
        return bson_append_array_end(b, &child) && ok;
    }
    ok = bson_append_document_begin(b, key, -1, &child);
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)v, k, x) ok = ok && append_json(&child, k, x, depth + 1);
    return bson_append_document_end(b, &child) && ok;
}

static bool append_json(bson_t *b, const char *key, const json_t *v, int depth)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return bson_append_utf8(b, key, -1, json_string_value(v), (int)json_string_length(v));
    case JSON_INTEGER: return bson_append_int64(b, key, -1, json_integer_value(v));
    case JSON_REAL: return bson_append_double(b, key, -1, json_real_value(v));
    case JSON_TRUE: return bson_append_bool(b, key, -1, true);
    case JSON_FALSE: return bson_append_bool(b, key, -1, false);
    case JSON_NULL: return bson_append_null(b, key, -1);
    default: return append_container(b, key, v, depth);
    }
}

static ee_status to_bson(const ee__cdoc *d, bson_t *b)
{
    bson_init(b);
    bson_oid_t oid;
    if (!bson_oid_is_valid(d->id, strlen(d->id)))
        return ee__error(EE_EINVAL, "credential document has no valid id");
    bson_oid_init_from_string(&oid, d->id);
    bool ok = bson_append_oid(b, "_id", -1, &oid);
    const char *k;
    const json_t *v;
    json_object_foreach(d->meta, k, v) {
        if (strcmp(k, "_id") != 0)
            ok = ok && append_json(b, k, v, 0);
    }
    if (d->sealed != NULL)
        ok = ok && bson_append_binary(b, d->sealed_field, -1, BSON_SUBTYPE_BINARY, d->sealed,
                                      (uint32_t)d->sealed_len);
    if (!ok) {
        bson_destroy(b);
        return ee__error(EE_ENOMEM, "cannot encode a credential document");
    }
    return EE_OK;
}

/* ---- storage ---------------------------------------------------------------- */

ee_status ee__cdoc_get(ee_engine *e, const char *coll, const char *ws, const char *id,
                       ee__cdoc *out)
{
    memset(out, 0, sizeof *out);
    if (id == NULL || strlen(id) != EE_STORAGE_ID_HEX_LEN || !bson_oid_is_valid(id, strlen(id)))
        return ee__error(EE_ENOTFOUND, "no credential with that id");
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t rev = 0;
    ee_status st = ee_storage_get(ee__engine_storage(e), coll, ws, id, &data, &len, &rev);
    if (st != EE_OK)
        return st == EE_ENOTFOUND ? ee__error(EE_ENOTFOUND, "no credential %s in this workspace", id)
                                  : st;
    st = ee__cdoc_from_bson(data, len, out);
    ee_free(data);
    if (st == EE_OK) {
        out->revision = rev;
        snprintf(out->id, sizeof out->id, "%s", id);
    }
    return st;
}

ee_status ee__cdoc_insert(ee_engine *e, const char *coll, const char *ws, const ee__cdoc *d)
{
    bson_t b;
    ee_status st = to_bson(d, &b);
    if (st != EE_OK)
        return st;
    st = ee_storage_insert(ee__engine_storage(e), coll, ws, bson_get_data(&b), b.len, NULL);
    bson_destroy(&b);
    return st;
}

ee_status ee__cdoc_replace(ee_engine *e, const char *coll, const char *ws, ee__cdoc *d)
{
    bson_t b;
    ee_status st = to_bson(d, &b);
    if (st != EE_OK)
        return st;
    int64_t rev = 0;
    st = ee_storage_replace(ee__engine_storage(e), coll, ws, d->id, d->revision,
                            bson_get_data(&b), b.len, &rev);
    bson_destroy(&b);
    if (st == EE_OK)
        d->revision = rev;
    return st;
}

ee_status ee__cdoc_seal(ee__cred_state *s, const char *ws, ee__cdoc *d, const char *field,
                        const char *pt, size_t pt_len)
{
    uint8_t *env = NULL;
    size_t env_len = 0;
    ee_status st = ee__seal(s->ring, ws, d->id, (const uint8_t *)pt, pt_len, &env, &env_len);
    if (st != EE_OK)
        return st;
    free(d->sealed);
    d->sealed = env;
    d->sealed_len = env_len;
    snprintf(d->sealed_field, sizeof d->sealed_field, "%s", field);
    return EE_OK;
}

ee_status ee__cdoc_open(ee__cred_state *s, const char *ws, const ee__cdoc *d, uint8_t **pt_out,
                        size_t *pt_len)
{
    if (d->sealed == NULL)
        return ee__error(EE_ECORRUPT, "credential %s holds no sealed secret", d->id);
    return ee__open(s->ring, ws, d->id, d->sealed, d->sealed_len, pt_out, pt_len);
}

ee_status ee__cred_check_opens(ee__cred_state *s, const char *ws, const ee__cdoc *d)
{
    if (d->sealed == NULL)
        return EE_OK;
    uint8_t *pt = NULL;
    size_t len = 0;
    ee_status st = ee__cdoc_open(s, ws, d, &pt, &len);
    ee__plaintext_free(pt, len);
    if (st == EE_ECRYPTO)
        return ee__error(EE_ECRYPTO, "credential %s does not open with this engine's secrets: "
                                     "not replacing it (configure the secret it was sealed with)",
                         d->id);
    return st;
}

/* ---- masking, requests, registry -------------------------------------------- */

void ee__cred_mask(const char *key, char out[48])
{
    size_t len = key ? strlen(key) : 0;
    /* Below 12 characters the last four would be a third of the key. */
    if (len < 12) {
        snprintf(out, 48, "\xe2\x80\xa6");
        return;
    }
    /* the last four characters, never a byte cut inside one (the mask goes
     * into JSON answers); a key that is not UTF-8 shows no tail */
    const char *prefix = strncmp(key, "sk-or-", 6) == 0 ? "sk-or-" : "";
    const char *tail = ee__utf8_tail(key, len, 4);
    snprintf(out, 48, "%s\xe2\x80\xa6%s", prefix, tail != NULL ? tail : "");
}

ee_status ee__cred_parse_request(const char *text, const char *what, json_t **out)
{
    /* core's bounded parse: the size is checked before anything is read,
     * and its messages quote no input (the text may hold a secret) */
    ee_status st = ee__json_parse(text, REQUEST_MAX, DEPTH_MAX, 0, what, out);
    if (st != EE_OK)
        return st;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return ee__error(EE_EINVAL, "%s: request must be a JSON object", what);
    }
    return EE_OK;
}

void ee__cred_wipe_member(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_string(v))
        OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

typedef struct {
    bool found;
} reg_ctx;

static int reg_row(const ee_storage_row *row, void *payload)
{
    (void)row;
    ((reg_ctx *)payload)->found = true;
    return 1;
}

ee_status ee__cred_register_workspace(ee_engine *e, const char *ws)
{
    if (strcmp(ws, EE__PLATFORM_WS) == 0)
        return EE_OK;
    ee_storage_eq eq[2] = {{"credentialName", EE__WS_REGISTRY_NAME}, {"userId", ws}};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = eq, .n_eq = 2,
                               .limit = 1};
    reg_ctx rc = {false};
    ee_status st = ee_storage_query(ee__engine_storage(e), EE__CRED_COLL, EE__PLATFORM_WS, &q,
                                    reg_row, &rc, NULL);
    if (st == EE_ECANCELLED)
        st = EE_OK;
    if (st != EE_OK || rc.found)
        return st;
    ee__cdoc d = {0};
    st = ee_storage_id_new(d.id);
    d.meta = json_pack("{s:s, s:s, s:s, s:I}", "kind", "workspace", "credentialName",
                       EE__WS_REGISTRY_NAME, "userId", ws, "createdAt",
                       (json_int_t)ee_engine_now_ms(e));
    if (st == EE_OK && d.meta == NULL)
        st = ee__error(EE_ENOMEM, "out of memory registering a workspace");
    if (st == EE_OK)
        st = ee__cdoc_insert(e, EE__CRED_COLL, EE__PLATFORM_WS, &d);
    ee__cdoc_clear(&d);
    return st;
}
