/* Personal credentials of a workspace: API-key sets and OAuth2 token sets
 * for the personal services of data/integrations.json, stored sealed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit/audit.h"
#include "credentials/cred_internal.h"

#define SEALED_FIELD "secret"
#define TOKEN_MAX 16384
#define SCOPES_MAX 100
#define CRED_NAME_MAX 200

static const char *meta_str(const json_t *m, const char *k)
{
    return json_string_value(json_object_get(m, k));
}

/* What a caller may see of a personal credential. */
static json_t *public_meta(const json_t *meta, const char *id)
{
    json_t *r = json_object();
    static const char *const keep[] = {"credentialName", "service", "name", "type", "expiresAt",
                                       "scopes", "maskedToken", "userId", "createdAt",
                                       "updatedAt"};
    if (r == NULL)
        return NULL;
    json_object_set_new(r, "id", json_string(id));
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++) {
        json_t *v = json_object_get(meta, keep[i]);
        if (v != NULL)
            json_object_set(r, keep[i], v);
    }
    return r;
}

/* `header`: the secret goes into an HTTP header as it is (an API key, an
 * OAuth2 access token as Bearer), so it must be printable ASCII without
 * spaces; a refresh token only goes into a token request's form body. */
static ee_status token_field(const json_t *req, const char *k, bool required, bool header,
                             const char **out)
{
    const json_t *v = json_object_get(req, k);
    *out = NULL;
    if (v == NULL && !required)
        return EE_OK;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > TOKEN_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
        return ee__error(EE_EINVAL, "%s must be a non-empty string of at most %d bytes", k,
                         TOKEN_MAX);
    if (header && !ee__text_token_ok(json_string_value(v), json_string_length(v)))
        return ee__error(EE_EINVAL, "%s must be printable ASCII without spaces (bytes 0x21 to "
                                    "0x7E)", k);
    *out = json_string_value(v);
    return EE_OK;
}

/* The plaintext sealed for the credential, and its masked form. */
static ee_status secret_of(const json_t *req, const char *type, char **pt, char masked[48])
{
    const char *a = NULL, *b = NULL;
    json_t *sec = NULL;
    ee_status st;
    if (strcmp(type, "apiKey") == 0) {
        st = token_field(req, "apiKey", true, true, &a);
        if (st == EE_OK)
            sec = json_pack("{s:s}", "apiKey", a);
    } else {
        st = token_field(req, "accessToken", true, true, &a);
        if (st == EE_OK)
            st = token_field(req, "refreshToken", false, false, &b);
        if (st == EE_OK)
            sec = json_pack("{s:s, s:s*}", "accessToken", a, "refreshToken", b);
    }
    if (st != EE_OK)
        return st;
    ee__cred_mask(a, masked);
    *pt = sec ? json_dumps(sec, JSON_COMPACT) : NULL;
    /* Wipe jansson's copies before they go back to the allocator. */
    ee__cred_wipe_member(sec, "apiKey");
    ee__cred_wipe_member(sec, "accessToken");
    ee__cred_wipe_member(sec, "refreshToken");
    json_decref(sec);
    return *pt ? EE_OK : ee__error(EE_ENOMEM, "out of memory sealing a credential");
}

static ee_status check_meta(ee__cred_state *s, const json_t *req, const char **cred,
                            const char **type, const ee__integration **it)
{
    *cred = meta_str(req, "credentialName");
    *type = meta_str(req, "type");
    *it = NULL;
    const json_t *cred_v = json_object_get(req, "credentialName");
    if (*cred == NULL || strcmp(*cred, EE__WS_REGISTRY_NAME) == 0)
        return ee__error(EE_EINVAL, "credentialName must be a credential type such as "
                                    "\"gmailOAuth2\"");
    /* the catalog's rule for names: "\n" and "\u0007" were taken */
    if (!ee__text_name_ok(*cred, json_string_length(cred_v), CRED_NAME_MAX))
        return ee__error(EE_EINVAL, "credentialName must be text of 1 to %d bytes without "
                                    "control characters", CRED_NAME_MAX);
    *it = ee__integrations_by_credential(s->cat, *cred);
    if (*it != NULL && !(*it)->is_personal)
        return ee__error(EE_EINVAL, "%s is platform-managed: it cannot be stored as a personal "
                                    "credential", *cred);
    if (*type == NULL || (strcmp(*type, "apiKey") != 0 && strcmp(*type, "oauth2") != 0))
        return ee__error(EE_EINVAL, "type must be \"apiKey\" or \"oauth2\"");
    const json_t *name = json_object_get(req, "name");
    /* an empty name is still taken, as before */
    if (name != NULL && (!json_is_string(name) ||
                         (json_string_length(name) > 0 &&
                          !ee__text_name_ok(json_string_value(name), json_string_length(name),
                                            CRED_NAME_MAX))))
        return ee__error(EE_EINVAL, "name must be text of at most %d bytes without control "
                                    "characters", CRED_NAME_MAX);
    const json_t *exp = json_object_get(req, "expiresAt");
    if (exp != NULL && !json_is_null(exp) && (!json_is_integer(exp) || json_integer_value(exp) < 0))
        return ee__error(EE_EINVAL, "expiresAt must be milliseconds since the epoch");
    const json_t *scopes = json_object_get(req, "scopes");
    if (scopes != NULL) {
        if (!json_is_array(scopes) || json_array_size(scopes) > SCOPES_MAX)
            return ee__error(EE_EINVAL, "scopes must be an array of at most %d strings", SCOPES_MAX);
        size_t i;
        const json_t *v;
        json_array_foreach(scopes, i, v) {
            if (!json_is_string(v) || json_string_length(v) > 512)
                return ee__error(EE_EINVAL, "scopes[%zu] must be a string", i);
        }
    }
    return EE_OK;
}

static ee_status fill_meta(ee_engine *e, const ee_principal *p, const json_t *req, ee__cdoc *d,
                           const ee__integration *it, const char *masked)
{
    const char *cred = meta_str(req, "credentialName"), *type = meta_str(req, "type");
    const char *name = meta_str(req, "name");
    int64_t now = ee_engine_now_ms(e);
    json_t *created = json_object_get(d->meta, "createdAt");
    json_int_t created_at = created ? json_integer_value(created) : (json_int_t)now;
    json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I}", "workspaceId",
                          ee_principal_workspace(p), "kind", "personal", "credentialName", cred,
                          "service", it ? it->service : cred, "name", name ? name : cred, "type",
                          type, "maskedToken", masked, "isActive", 1, "createdAt", created_at,
                          "updatedAt", (json_int_t)now);
    if (m == NULL)
        return ee__error(EE_ENOMEM, "out of memory");
    json_object_set_new(m, "userId", json_string(ee_principal_user(p)));
    const json_t *exp = json_object_get(req, "expiresAt");
    if (json_is_integer(exp))
        json_object_set(m, "expiresAt", (json_t *)exp);
    const json_t *scopes = json_object_get(req, "scopes");
    if (scopes != NULL)
        json_object_set(m, "scopes", (json_t *)scopes);
    json_decref(d->meta);
    d->meta = m;
    return EE_OK;
}

static ee_status put(ee_engine *e, const ee_principal *p, const json_t *req, ee__cdoc *d)
{
    ee__cred_state *s = ee__cred_state_of(e);
    const char *ws = ee_principal_workspace(p), *cred = NULL, *type = NULL;
    const ee__integration *it = NULL;
    ee_status st = check_meta(s, req, &cred, &type, &it);
    char *pt = NULL, masked[48];
    if (st == EE_OK)
        st = secret_of(req, type, &pt, masked);
    if (st != EE_OK)
        return st;
    const char *id = meta_str(req, "id");
    bool replace = id != NULL;
    if (replace) {
        st = ee__cdoc_get(e, EE__CRED_COLL, ws, id, d);
        const char *kind = st == EE_OK ? meta_str(d->meta, "kind") : NULL;
        if (st == EE_OK && (kind == NULL || strcmp(kind, "personal") != 0))
            st = ee__error(EE_ENOTFOUND, "no personal credential %s in this workspace", id);
        if (st == EE_OK)
            st = ee__cred_check_opens(s, ws, d);
    } else {
        st = ee_storage_id_new(d->id);
        if (st == EE_OK)
            st = ee__cred_register_workspace(e, ws);
    }
    if (st == EE_OK)
        st = fill_meta(e, p, req, d, it, masked);
    if (st == EE_OK)
        st = ee__cdoc_seal(s, ws, d, SEALED_FIELD, pt, strlen(pt));
    if (st == EE_OK)
        st = replace ? ee__cdoc_replace(e, EE__CRED_COLL, ws, d)
                     : ee__cdoc_insert(e, EE__CRED_COLL, ws, d);
    OPENSSL_cleanse(pt, strlen(pt));
    free(pt);
    ee__cred_invalidate(s);
    return st;
}

ee_status ee_cred_personal_put(ee_engine *engine, const ee_principal *principal,
                               const char *request_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_personal_put: out is NULL");
    *out = NULL;
    if (engine == NULL || principal == NULL || request_json == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_cred_personal_put: NULL argument"));
    json_t *req = NULL;
    ee_status st = ee__cred_parse_request(request_json, "ee_cred_personal_put", &req);
    if (st == EE_OK) {
        static const char *const members[] = {"id",     "credentialName", "type",
                                              "name",   "expiresAt",      "scopes",
                                              "apiKey", "accessToken",    "refreshToken", NULL};
        st = ee__json_check_members(req, members, "ee_cred_personal_put request", "");
    }
    if (st != EE_OK) {
        if (req != NULL) {
            ee__cred_wipe_member(req, "apiKey");
            ee__cred_wipe_member(req, "accessToken");
            ee__cred_wipe_member(req, "refreshToken");
            json_decref(req);
        }
        return ee__error_out(out, st);
    }
    ee__cdoc d = {0};
    bool replace = json_is_string(json_object_get(req, "id"));
    st = put(engine, principal, req, &d);
    ee__cred_wipe_member(req, "apiKey");
    ee__cred_wipe_member(req, "accessToken");
    ee__cred_wipe_member(req, "refreshToken");
    json_decref(req);
    if (st == EE_OK) {
        ee__log(ee__engine_logger(engine), EE_LOG_INFO, "credentials",
                "personal credential %s (%s) stored for workspace %s", d.id,
                meta_str(d.meta, "credentialName"), ee_principal_workspace(principal));
        ee__cred_audit(engine, principal, EE__AUDIT_PERSONAL_PUT, d.id,
                       json_pack("{s:s?, s:s?, s:b}", "credentialName",
                                 meta_str(d.meta, "credentialName"), "type",
                                 meta_str(d.meta, "type"), "replaced", replace));
        st = ee__json_out(out, public_meta(d.meta, d.id));
    } else {
        st = ee__error_out(out, st);
    }
    ee__cdoc_clear(&d);
    return st;
}

static ee_status get_personal(ee_engine *e, const ee_principal *p, const char *id, ee__cdoc *d)
{
    ee_status st = ee__cdoc_get(e, EE__CRED_COLL, ee_principal_workspace(p), id, d);
    if (st != EE_OK)
        return st;
    const char *kind = meta_str(d->meta, "kind");
    if (kind == NULL || strcmp(kind, "personal") != 0) {
        ee__cdoc_clear(d);
        return ee__error(EE_ENOTFOUND, "no personal credential %s in this workspace", id);
    }
    return EE_OK;
}

ee_status ee_cred_personal_get(ee_engine *engine, const ee_principal *principal,
                               const char *credential_id, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_personal_get: out is NULL");
    *out = NULL;
    if (engine == NULL || principal == NULL || credential_id == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_cred_personal_get: NULL argument"));
    ee__cdoc d = {0};
    ee_status st = get_personal(engine, principal, credential_id, &d);
    st = st == EE_OK ? ee__json_out(out, public_meta(d.meta, d.id)) : ee__error_out(out, st);
    ee__cdoc_clear(&d);
    return st;
}

ee_status ee_cred_personal_list(ee_engine *engine, const ee_principal *principal, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_personal_list: out is NULL");
    *out = NULL;
    if (engine == NULL || principal == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_cred_personal_list: NULL argument"));
    ee__cred_state *s = ee__cred_state_of(engine);
    ee__cred_snapshot *snap = NULL;
    ee_status st = ee__cred_snapshot_get(s, ee_principal_workspace(principal), &snap);
    if (st != EE_OK)
        return ee__error_out(out, st);
    json_t *list = json_array();
    for (size_t i = 0; list != NULL && i < snap->n; i++) {
        const json_t *m = json_array_get(snap->meta, i);
        if (!snap->entries[i].platform)
            json_array_append_new(list, public_meta(m, snap->entries[i].id));
    }
    ee__cred_snapshot_release(s, snap);
    return ee__json_out(out, json_pack("{s:o}", "credentials", list));
}

ee_status ee_cred_personal_delete(ee_engine *engine, const ee_principal *principal,
                                  const char *credential_id)
{
    if (engine == NULL || principal == NULL || credential_id == NULL)
        return ee__error(EE_EINVAL, "ee_cred_personal_delete: NULL argument");
    ee__cdoc d = {0};
    ee_status st = get_personal(engine, principal, credential_id, &d);
    ee__cdoc_clear(&d);
    if (st == EE_OK)
        st = ee_storage_delete(ee__engine_storage(engine), EE__CRED_COLL,
                               ee_principal_workspace(principal), credential_id);
    ee__cred_invalidate(ee__cred_state_of(engine));
    if (st == EE_OK)
        ee__cred_audit(engine, principal, EE__AUDIT_PERSONAL_DELETED, credential_id, NULL);
    return st;
}
