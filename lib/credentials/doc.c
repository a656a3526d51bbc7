/* Stored credential documents: BSON <-> metadata JSON plus one sealed
 * binary field, sealing helpers, masking, the workspace registry. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bson/bson.h>
#include <openssl/crypto.h>

#include "core/record.h"
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

/* ---- BSON <-> metadata JSON, through core's record layer -------------------- *
 * A credential document is its metadata plus at most one top-level binary
 * field, the sealed secret, which the record layer leaves out (binaries
 * nested deeper are skipped, as they always were). The map keeps the
 * stored types: ObjectId _id, int64 (not date) timestamps. */

static const ee__rec_field cred_fields[] = {
    {.name = "_id", .kind = EE__REC_ID},
    {.name = "kind", .kind = EE__REC_STRING},
    {.name = "credentialName", .kind = EE__REC_STRING},
    {.name = "userId", .kind = EE__REC_STRING},
    {.name = "createdAt", .kind = EE__REC_INT64},
    {.name = "updatedAt", .kind = EE__REC_INT64},
};

static const ee__record_map cred_map = {"credential", cred_fields,
                                        sizeof cred_fields / sizeof cred_fields[0], false};

ee_status ee__cdoc_from_bson(const uint8_t *data, size_t len, ee__cdoc *out)
{
    memset(out, 0, sizeof *out);
    ee_status st = ee__record_decode(&cred_map, data, len, true, &out->meta);
    if (st != EE_OK)
        return st;
    bson_t b;
    bson_iter_t it;
    bool ok = bson_init_static(&b, data, len) && bson_iter_init(&it, &b);
    while (ok && bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        if (!BSON_ITER_HOLDS_BINARY(&it) || strlen(key) >= sizeof out->sealed_field)
            continue;
        const uint8_t *bin;
        uint32_t blen;
        bson_subtype_t sub;
        bson_iter_binary(&it, &sub, &blen, &bin);
        out->sealed = malloc(blen ? blen : 1);
        if (out->sealed == NULL) {
            ee__cdoc_clear(out);
            return ee__error(EE_ENOMEM, "out of memory reading a credential");
        }
        memcpy(out->sealed, bin, blen);
        out->sealed_len = blen;
        snprintf(out->sealed_field, sizeof out->sealed_field, "%s", key);
        break; /* the first one is the sealed field */
    }
    const char *id = json_string_value(json_object_get(out->meta, "_id"));
    if (id != NULL)
        snprintf(out->id, sizeof out->id, "%s", id);
    return EE_OK;
}

static ee_status to_bson(const ee__cdoc *d, bson_t *b)
{
    bson_init(b);
    bson_oid_t oid;
    if (!bson_oid_is_valid(d->id, strlen(d->id))) {
        bson_destroy(b);
        return ee__error(EE_EINVAL, "credential document has no valid id");
    }
    bson_oid_init_from_string(&oid, d->id);
    static const char *const skip[] = {"_id", NULL};
    ee_status st = bson_append_oid(b, "_id", -1, &oid)
                       ? ee__record_append(b, &cred_map, d->meta, skip)
                       : ee__error(EE_ENOMEM, "cannot encode a credential document");
    if (st == EE_OK && d->sealed != NULL
        && !bson_append_binary(b, d->sealed_field, -1, BSON_SUBTYPE_BINARY, d->sealed,
                               (uint32_t)d->sealed_len))
        st = ee__error(EE_ENOMEM, "cannot encode a credential document");
    if (st != EE_OK)
        bson_destroy(b);
    return st;
}

/* ---- storage ---------------------------------------------------------------- */

ee_status ee__cdoc_get(ee_engine *e, const char *coll, const char *ws, const char *id,
                       ee__cdoc *out)
{
    memset(out, 0, sizeof *out);
    /* lowercase only, as ids are written: storage reads "6B16..." to the
     * same document, and the answer would carry that second spelling as
     * "id" (and a run's apiKeyUsed) */
    bool lower = id != NULL;
    for (const char *c = id; lower && *c != '\0'; c++)
        lower = !(*c >= 'A' && *c <= 'F');
    if (!lower || strlen(id) != EE_STORAGE_ID_HEX_LEN || !bson_oid_is_valid(id, strlen(id)))
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
    /* the record layer's bounded parse: the size is checked before anything
     * is read, and its messages quote no input (the text may hold a secret) */
    return ee__record_parse(text, REQUEST_MAX, DEPTH_MAX, 0, what, out);
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
    ee_status st = ee_storage_query(ee__engine_storage(e), EE__CRED_COLL, EE__WS_REGISTRY_WS, &q,
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
        st = ee__cdoc_insert(e, EE__CRED_COLL, EE__WS_REGISTRY_WS, &d);
    ee__cdoc_clear(&d);
    return st;
}

/* A legacy registry document in workspace "platform": registered in its
 * own workspace, then deleted here. */
static ee_status move_doc(ee__cred_state *s, ee__cdoc *d, void *payload)
{
    (void)payload;
    const char *kind = json_string_value(json_object_get(d->meta, "kind"));
    const char *ws = json_string_value(json_object_get(d->meta, "userId"));
    if (kind == NULL || strcmp(kind, "workspace") != 0)
        return EE_OK;
    ee_status st = ws != NULL ? ee__cred_register_workspace(s->engine, ws) : EE_OK;
    if (st == EE_OK) {
        st = ee_storage_delete(ee__engine_storage(s->engine), EE__CRED_COLL, EE__PLATFORM_WS,
                               d->id);
        if (st == EE_ENOTFOUND) { /* another process moved it */
            ee_error_clear();
            st = EE_OK;
        }
    }
    return st;
}

ee_status ee__cred_registry_move(ee__cred_state *s)
{
    ee_storage_eq eq = {"credentialName", EE__WS_REGISTRY_NAME};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = &eq, .n_eq = 1,
                               .limit = 1};
    reg_ctx rc = {false};
    ee_status st = ee_storage_query(ee__engine_storage(s->engine), EE__CRED_COLL, EE__PLATFORM_WS,
                                    &q, reg_row, &rc, NULL);
    if (st == EE_ECANCELLED)
        st = EE_OK;
    if (st != EE_OK || !rc.found)
        return st; /* the usual case: nothing to move, one indexed look */
    return ee__cred_each_platform_doc(s, move_doc, NULL);
}
