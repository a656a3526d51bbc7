/* Customer API keys (seed 1's customerApiKeys): add, list, get, update,
 * delete, usage totals, and validation against OpenRouter. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/record.h"
#include "credentials/cred_internal.h"
#include "execengine/transport.h"

#define SEALED_FIELD "encryptedApiKey"
#define NAME_MAX_LEN 200
#define KEY_MIN_LEN 8
#define KEY_MAX_LEN 4096
#define VALIDATE_MAX_BODY (1024 * 1024)

static ee_status check_args(ee_engine *e, const ee_principal *p, const void *x, const char *what)
{
    if (e == NULL || p == NULL || x == NULL)
        return ee__error(EE_EINVAL, "%s: NULL argument", what);
    return EE_OK;
}

/* The record as callers see it: no ciphertext, no execution-id log. */
static json_t *public_record(const ee__cdoc *d)
{
    json_t *r = json_deep_copy(d->meta);
    if (r == NULL)
        return NULL;
    json_object_del(r, "_id");
    json_object_del(r, "recentExecutions");
    json_object_set_new(r, "id", json_string(d->id));
    return r;
}

static ee_status record_out(char **out, const ee__cdoc *d)
{
    return ee__json_out(out, public_record(d));
}

/* A key of the principal's workspace *and* user: another user's key of the
 * same workspace answers not found too. */
static ee_status get_own(ee_engine *e, const ee_principal *p, const char *id, ee__cdoc *d)
{
    ee_status st = ee__cdoc_get(e, EE__KEYS_COLL, ee_principal_workspace(p), id, d);
    if (st != EE_OK)
        return st;
    const char *owner = json_string_value(json_object_get(d->meta, "userId"));
    if (owner == NULL || strcmp(owner, ee_principal_user(p)) != 0) {
        ee__cdoc_clear(d);
        return ee__error(EE_ENOTFOUND, "no API key %s for this user", id);
    }
    return EE_OK;
}

/* The key goes into an Authorization: Bearer header as it is (validation
 * here, the provider's requests in n8n): printable ASCII without spaces.
 * An 8-bit byte (valid UTF-8 in the JSON) used to pass and reach the
 * header raw. `member` is the spelling the caller used. */
static ee_status check_key_text(const json_t *v, const char *member, const char **out)
{
    *out = json_string_value(v);
    size_t len = json_string_length(v);
    if (*out == NULL || len < KEY_MIN_LEN || len > KEY_MAX_LEN || strlen(*out) != len)
        return ee__error(EE_EINVAL, "%s must be a string of %d to %d bytes", member, KEY_MIN_LEN,
                         KEY_MAX_LEN);
    if (!ee__text_token_ok(*out, len))
        return ee__error(EE_EINVAL, "%s must be printable ASCII without spaces (bytes 0x21 to "
                                    "0x7E)", member);
    return EE_OK;
}

/* A name is shown in lists, logs and UIs: the catalog's rule for names
 * (no control character, "\n" and "\u0007" were taken). `member` is the
 * spelling the caller used. */
static ee_status check_name(const json_t *v, const char *member)
{
    if (!json_is_string(v) || !ee__text_name_ok(json_string_value(v), json_string_length(v),
                                                NAME_MAX_LEN))
        return ee__error(EE_EINVAL, "%s must be text of 1 to %d bytes without control "
                                    "characters", member, NAME_MAX_LEN);
    return EE_OK;
}

/* A member with two spellings (keyName or name, apiKey or key): the one
 * given, and its spelling in *given for messages. Both at once are
 * refused: one of them used to be dropped without a word, and which one
 * depended on this code, not on the caller. */
static ee_status member2(const json_t *req, const char *a, const char *b, const json_t **out,
                         const char **given)
{
    const json_t *va = json_object_get(req, a), *vb = json_object_get(req, b);
    *out = va ? va : vb;
    *given = va ? a : b;
    if (va != NULL && vb != NULL)
        return ee__error(EE_EINVAL, "%s and %s are two spellings of one member: give one of them",
                         a, b);
    return EE_OK;
}

static void wipe_request(json_t *req)
{
    ee__cred_wipe_member(req, "apiKey");
    ee__cred_wipe_member(req, "key");
    json_decref(req);
}

static ee_status add_key(ee_engine *e, const ee_principal *p, const json_t *req, ee__cdoc *d)
{
    ee__cred_state *s = ee__cred_state_of(e);
    const json_t *name = NULL, *key_v = NULL;
    const char *name_member = NULL, *key_member = NULL;
    const char *provider = json_string_value(json_object_get(req, "provider"));
    const json_t *active = json_object_get(req, "isActive");
    const char *key = NULL;
    ee_status st = member2(req, "keyName", "name", &name, &name_member);
    if (st == EE_OK)
        st = member2(req, "apiKey", "key", &key_v, &key_member);
    if (st == EE_OK)
        st = check_name(name, name_member);
    if (st == EE_OK && (provider == NULL || strcmp(provider, "openrouter") != 0))
        st = ee__error(EE_EINVAL, "provider must be \"openrouter\"");
    if (st == EE_OK && active != NULL && !json_is_boolean(active))
        st = ee__error(EE_EINVAL, "isActive must be true or false");
    if (st == EE_OK)
        st = check_key_text(key_v, key_member, &key);
    if (st != EE_OK)
        return st;
    char masked[48];
    ee__cred_mask(key, masked);
    int64_t now = ee_engine_now_ms(e);
    const char *ws = ee_principal_workspace(p);
    st = ee_storage_id_new(d->id);
    d->meta = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:{s:I, s:I, s:I}, s:[], s:I, s:I}",
                        "workspaceId", ws, "userId", ee_principal_user(p), "provider", "openrouter",
                        "keyName", json_string_value(name), "maskedKey", masked, "isActive", active ? json_is_true(active) : 1,
                        "totalUsage", "executions", (json_int_t)0, "tokensUsed", (json_int_t)0,
                        "lastResetAt", (json_int_t)now, "recentExecutions", "createdAt",
                        (json_int_t)now, "updatedAt", (json_int_t)now);
    if (d->meta == NULL)
        return ee__error(EE_ENOMEM, "out of memory adding an API key");
    if (st == EE_OK)
        st = ee__cred_register_workspace(e, ws);
    if (st == EE_OK)
        st = ee__cdoc_seal(s, ws, d, SEALED_FIELD, key, strlen(key));
    if (st == EE_OK)
        st = ee__cdoc_insert(e, EE__KEYS_COLL, ws, d);
    return st;
}

ee_status ee_cred_key_add(ee_engine *engine, const ee_principal *principal,
                          const char *request_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_key_add: out is NULL");
    *out = NULL;
    ee_status st = check_args(engine, principal, request_json, "ee_cred_key_add");
    json_t *req = NULL;
    if (st == EE_OK)
        st = ee__cred_parse_request(request_json, "ee_cred_key_add", &req);
    if (st == EE_OK) {
        static const char *const members[] = {"keyName", "name", "provider", "isActive",
                                              "apiKey", "key", NULL};
        st = ee__json_check_members(req, members, "ee_cred_key_add request", "");
    }
    if (st != EE_OK) {
        if (req != NULL)
            wipe_request(req);
        return ee__error_out(out, st);
    }
    ee__cdoc d = {0};
    st = add_key(engine, principal, req, &d);
    wipe_request(req);
    if (st == EE_OK) {
        ee__log(ee__engine_logger(engine), EE_LOG_INFO, "credentials",
                "customer API key %s added for workspace %s", d.id,
                ee_principal_workspace(principal));
        ee__cred_audit(engine, principal, EE__AUDIT_KEY_ADDED, d.id,
                       json_pack("{s:s}", "provider", "openrouter"));
        st = record_out(out, &d);
    } else {
        st = ee__error_out(out, st);
    }
    ee__cdoc_clear(&d);
    return st;
}

typedef struct {
    json_t *list;
    const char *user;
    ee_status st;
} list_ctx;

static int list_row(const ee_storage_row *row, void *payload)
{
    list_ctx *lc = payload;
    ee__cdoc d;
    lc->st = ee__cdoc_from_bson(row->data, row->len, &d);
    if (lc->st != EE_OK)
        return 1;
    const char *owner = json_string_value(json_object_get(d.meta, "userId"));
    if (owner != NULL && strcmp(owner, lc->user) == 0 &&
        json_array_append_new(lc->list, public_record(&d)) != 0)
        lc->st = ee__error(EE_ENOMEM, "out of memory listing API keys");
    ee__cdoc_clear(&d);
    return lc->st != EE_OK;
}

ee_status ee_cred_key_list(ee_engine *engine, const ee_principal *principal, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_key_list: out is NULL");
    *out = NULL;
    ee_status st = check_args(engine, principal, "", "ee_cred_key_list");
    if (st != EE_OK)
        return ee__error_out(out, st);
    ee_storage_eq eq[1] = {{"userId", ee_principal_user(principal)}};
    list_ctx lc = {json_array(), ee_principal_user(principal), EE_OK};
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION, .eq = eq, .n_eq = 1,
                               .limit = EE_STORAGE_LIMIT_MAX};
    st = lc.list ? ee__storage_query_all(ee__engine_storage(engine), EE__KEYS_COLL,
                                         ee_principal_workspace(principal), &q, list_row, &lc,
                                         &lc.st)
                 : ee__error(EE_ENOMEM, "out of memory");
    if (st != EE_OK) {
        json_decref(lc.list);
        return ee__error_out(out, st);
    }
    return ee__json_out(out, json_pack("{s:o}", "keys", lc.list));
}

ee_status ee_cred_key_get(ee_engine *engine, const ee_principal *principal, const char *key_id,
                          char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_key_get: out is NULL");
    *out = NULL;
    ee_status st = check_args(engine, principal, key_id, "ee_cred_key_get");
    ee__cdoc d = {0};
    if (st == EE_OK)
        st = get_own(engine, principal, key_id, &d);
    st = st == EE_OK ? record_out(out, &d) : ee__error_out(out, st);
    ee__cdoc_clear(&d);
    return st;
}

/* Read-modify-replace with optimistic concurrency: `apply` edits the
 * freshly read document; a concurrent writer makes us re-read and retry. */
typedef ee_status (*edit_fn)(ee_engine *e, const ee_principal *p, ee__cdoc *d, void *arg);

typedef struct edit_ctx {
    ee_engine *e;
    const ee_principal *p;
    const char *id;
    edit_fn apply;
    void *arg;
    ee__cdoc *final;
} edit_ctx;

static ee_status edit_attempt(int attempt, bool *final, void *payload)
{
    (void)attempt;
    edit_ctx *c = payload;
    ee__cdoc d = {0};
    ee_status st = get_own(c->e, c->p, c->id, &d);
    if (st == EE_OK)
        st = c->apply(c->e, c->p, &d, c->arg);
    if (st == EE_OK) {
        json_object_set_new(d.meta, "updatedAt", json_integer(ee_engine_now_ms(c->e)));
        st = ee__cdoc_replace(c->e, EE__KEYS_COLL, ee_principal_workspace(c->p), &d);
    }
    if (st == EE_OK && c->final != NULL) {
        *c->final = d;
        return EE_OK;
    }
    ee__cdoc_clear(&d);
    *final = st != EE_ECONFLICT;
    return st;
}

static ee_status edit_key(ee_engine *e, const ee_principal *p, const char *id, edit_fn apply,
                          void *arg, ee__cdoc *final)
{
    edit_ctx c = {e, p, id, apply, arg, final};
    char what[64];
    snprintf(what, sizeof what, "API key %s", id);
    return ee__record_retry(edit_attempt, &c, what);
}

static ee_status apply_patch(ee_engine *e, const ee_principal *p, ee__cdoc *d, void *arg)
{
    const json_t *patch = arg;
    static const char *const members[] = {"keyName", "name", "isActive", "apiKey", "key", NULL};
    ee_status mst = ee__json_check_members(patch, members, "ee_cred_key_update patch", "");
    const json_t *unused;
    const char *spelling;
    if (mst == EE_OK)
        mst = member2(patch, "keyName", "name", &unused, &spelling);
    if (mst == EE_OK)
        mst = member2(patch, "apiKey", "key", &unused, &spelling);
    if (mst != EE_OK)
        return mst;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)patch, k, v) {
        if (strcmp(k, "keyName") == 0 || strcmp(k, "name") == 0) {
            ee_status st = check_name(v, k);
            if (st != EE_OK)
                return st;
            json_object_set(d->meta, "keyName", (json_t *)v);
        } else if (strcmp(k, "isActive") == 0) {
            if (!json_is_boolean(v))
                return ee__error(EE_EINVAL, "isActive must be true or false");
            json_object_set(d->meta, "isActive", (json_t *)v);
        } else if (strcmp(k, "apiKey") == 0 || strcmp(k, "key") == 0) {
            const char *key;
            ee_status st = check_key_text(v, k, &key);
            if (st == EE_OK)
                st = ee__cred_check_opens(ee__cred_state_of(e), ee_principal_workspace(p), d);
            if (st == EE_OK)
                st = ee__cdoc_seal(ee__cred_state_of(e), ee_principal_workspace(p), d,
                                   SEALED_FIELD, key, strlen(key));
            if (st != EE_OK)
                return st;
            char masked[48];
            ee__cred_mask(key, masked);
            json_object_set_new(d->meta, "maskedKey", json_string(masked));
            json_object_del(d->meta, "lastValidation");
        }
    }
    return EE_OK;
}

ee_status ee_cred_key_update(ee_engine *engine, const ee_principal *principal,
                             const char *key_id, const char *patch_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_key_update: out is NULL");
    *out = NULL;
    ee_status st = check_args(engine, principal, key_id, "ee_cred_key_update");
    json_t *patch = NULL;
    if (st == EE_OK)
        st = ee__cred_parse_request(patch_json, "ee_cred_key_update", &patch);
    ee__cdoc d = {0};
    if (st == EE_OK)
        st = edit_key(engine, principal, key_id, apply_patch, patch, &d);
    if (st == EE_OK) {
        /* The names of the members changed, not their values. */
        json_t *fields = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(patch, k, v) {
            (void)v;
            json_array_append_new(fields, json_string(k));
        }
        ee__cred_audit(engine, principal, EE__AUDIT_KEY_UPDATED, key_id,
                       json_pack("{s:o}", "fields", fields));
    }
    if (patch != NULL)
        wipe_request(patch);
    st = st == EE_OK ? record_out(out, &d) : ee__error_out(out, st);
    ee__cdoc_clear(&d);
    return st;
}

static ee_status apply_reset(ee_engine *e, const ee_principal *p, ee__cdoc *d, void *arg)
{
    (void)p;
    (void)arg;
    json_t *u = json_pack("{s:I, s:I, s:I}", "executions", (json_int_t)0, "tokensUsed",
                          (json_int_t)0, "lastResetAt", (json_int_t)ee_engine_now_ms(e));
    return json_object_set_new(d->meta, "totalUsage", u) == 0
               ? EE_OK : ee__error(EE_ENOMEM, "out of memory");
}

ee_status ee_cred_key_reset_usage(ee_engine *engine, const ee_principal *principal,
                                  const char *key_id, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_key_reset_usage: out is NULL");
    *out = NULL;
    ee_status st = check_args(engine, principal, key_id, "ee_cred_key_reset_usage");
    ee__cdoc d = {0};
    if (st == EE_OK)
        st = edit_key(engine, principal, key_id, apply_reset, NULL, &d);
    st = st == EE_OK ? record_out(out, &d) : ee__error_out(out, st);
    ee__cdoc_clear(&d);
    return st;
}

ee_status ee_cred_key_delete(ee_engine *engine, const ee_principal *principal,
                             const char *key_id)
{
    ee_status st = check_args(engine, principal, key_id, "ee_cred_key_delete");
    ee__cdoc d = {0};
    if (st == EE_OK)
        st = get_own(engine, principal, key_id, &d);
    ee__cdoc_clear(&d);
    if (st == EE_OK)
        st = ee_storage_delete(ee__engine_storage(engine), EE__KEYS_COLL,
                               ee_principal_workspace(principal), key_id);
    if (st == EE_OK)
        ee__cred_audit(engine, principal, EE__AUDIT_KEY_DELETED, key_id, NULL);
    return st;
}

/* ---- usage, idempotent per execution ----------------------------------------- */

typedef struct {
    const char *execution_id;
    int64_t tokens;
    int counted;
} usage_arg;

static ee_status apply_usage(ee_engine *e, const ee_principal *p, ee__cdoc *d, void *arg)
{
    (void)p;
    usage_arg *u = arg;
    json_t *recent = json_object_get(d->meta, "recentExecutions");
    if (!json_is_array(recent)) {
        recent = json_array();
        json_object_set_new(d->meta, "recentExecutions", recent);
    }
    size_t i;
    const json_t *v;
    json_array_foreach(recent, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), u->execution_id) == 0) {
            u->counted = 0;
            return EE_ECANCELLED; /* already counted: nothing to write */
        }
    }
    json_t *total = json_object_get(d->meta, "totalUsage");
    if (!json_is_object(total)) {
        total = json_object();
        json_object_set_new(d->meta, "totalUsage", total);
    }
    json_int_t ex = json_integer_value(json_object_get(total, "executions"));
    json_int_t tok = json_integer_value(json_object_get(total, "tokensUsed"));
    if (tok > INT64_MAX - u->tokens)
        return ee__error(EE_EINVAL, "tokensUsed would overflow");
    json_object_set_new(total, "executions", json_integer(ex + 1));
    json_object_set_new(total, "tokensUsed", json_integer(tok + u->tokens));
    json_object_set_new(d->meta, "lastUsedAt", json_integer(ee_engine_now_ms(e)));
    json_array_append_new(recent, json_string(u->execution_id));
    while (json_array_size(recent) > EE__KEY_RECENT_EXECUTIONS)
        json_array_remove(recent, 0);
    u->counted = 1;
    return EE_OK;
}

ee_status ee__cred_key_record_usage(ee_engine *engine, const ee_principal *principal,
                                    const char *key_id, const char *execution_id,
                                    int64_t tokens, int *counted_out)
{
    ee_status st = check_args(engine, principal, key_id, "ee__cred_key_record_usage");
    if (st != EE_OK)
        return st;
    if (execution_id == NULL || execution_id[0] == '\0' || strlen(execution_id) > 128 ||
        tokens < 0)
        return ee__error(EE_EINVAL, "usage needs an execution id and a non-negative token count");
    usage_arg u = {execution_id, tokens, 0};
    st = edit_key(engine, principal, key_id, apply_usage, &u, NULL);
    if (st == EE_ECANCELLED)
        st = EE_OK;
    if (counted_out != NULL)
        *counted_out = st == EE_OK ? u.counted : 0;
    return st;
}

/* ---- validation against OpenRouter ------------------------------------------- */

typedef struct {
    const char *status; /* valid | invalid | unknown */
    const char *reason;
    int http;
    json_t *data; /* OpenRouter's data object (borrowed from body) */
} verdict;

static ee_status build_request(ee_engine *e, const char *key, int64_t timeout_ms,
                               ee_http_request **out)
{
    const ee_config *cfg = ee__engine_config(e);
    const char *base = ee__config_text(cfg, "OPENROUTER_API_URL");
    char url[2100];
    size_t n = base ? strlen(base) : 0;
    while (n > 0 && base[n - 1] == '/')
        n--;
    snprintf(url, sizeof url, "%.*s/key", (int)n, base ? base : "");
    char *auth = malloc(strlen(key) + 8);
    if (auth == NULL)
        return ee__error(EE_ENOMEM, "out of memory");
    snprintf(auth, strlen(key) + 8, "Bearer %s", key);
    const char *app_name = ee__config_text(cfg, "OPENROUTER_APP_NAME");
    const char *app_url = ee__config_text(cfg, "OPENROUTER_APP_URL");
    ee_http_request *req = NULL;
    ee_status st = ee_http_request_new(&req, "GET", url);
    if (st == EE_OK)
        st = ee_http_request_add_header(req, "Authorization", auth);
    if (st == EE_OK)
        st = ee_http_request_add_header(req, "Accept", "application/json");
    if (st == EE_OK && app_name != NULL)
        st = ee_http_request_add_header(req, "X-Title", app_name);
    if (st == EE_OK && app_url != NULL)
        st = ee_http_request_add_header(req, "HTTP-Referer", app_url);
    /* One attempt: a validation is interactive, and a retried 429 would
     * only deepen the rate limit. */
    if (st == EE_OK)
        st = ee_http_request_set_retry_safe(req, 0);
    if (st == EE_OK)
        st = ee_http_request_set_limits(req, timeout_ms, timeout_ms, VALIDATE_MAX_BODY);
    ee__secret_free(auth);
    if (st != EE_OK) {
        ee_http_request_free(req);
        return st;
    }
    *out = req;
    return EE_OK;
}

static bool number_or_null(const json_t *v)
{
    return v == NULL || json_is_number(v) || json_is_null(v);
}

static void judge_response(const ee_http_response *resp, verdict *v, json_t **body_out)
{
    int code = ee_http_response_status(resp);
    v->http = code;
    if (code == 401 || code == 403) {
        v->status = "invalid";
        v->reason = code == 401 ? "OpenRouter rejected the key (401)" : "key forbidden (403)";
        return;
    }
    v->status = "unknown";
    if (code == 429) {
        v->reason = "rate limited by OpenRouter (429)";
        return;
    }
    if (code >= 500) {
        v->reason = "OpenRouter failed (5xx)";
        return;
    }
    if (code != 200) {
        v->reason = "unexpected HTTP status from OpenRouter";
        return;
    }
    const void *data;
    size_t len;
    ee_http_response_body(resp, &data, &len);
    json_t *body = json_loadb(data, len, 0, NULL);
    json_t *d = json_object_get(body, "data");
    if (!json_is_object(d) || !json_is_number(json_object_get(d, "usage")) ||
        !number_or_null(json_object_get(d, "limit")) ||
        !number_or_null(json_object_get(d, "limit_remaining"))) {
        json_decref(body);
        v->reason = "malformed answer from OpenRouter";
        return;
    }
    v->status = "valid";
    v->data = d;
    *body_out = body;
}

/* OpenRouter's answer is never stored or returned as it came: an upstream
 * may echo the key in any field. Only typed, bounded values are kept:
 * numbers (or null), a boolean, an enumerated reset period, and a label of
 * bounded length holding no run of the key's text. */
#define LABEL_MAX 64
#define KEY_WINDOW 8

static json_t *number_value(const json_t *v)
{
    return json_is_number(v) ? json_real(json_number_value(v)) : json_null();
}

static json_t *number_kept(const json_t *v)
{
    /* Integers stay integers (a limit of 100 reads 100, not 100.0). */
    return json_is_integer(v) ? json_integer(json_integer_value(v)) : number_value(v);
}

static json_t *reset_period(const json_t *v)
{
    static const char *const periods[] = {"daily", "weekly", "monthly"};
    const char *s = json_string_value(v);
    for (size_t i = 0; s != NULL && i < sizeof periods / sizeof periods[0]; i++)
        if (strcmp(s, periods[i]) == 0)
            return json_string(periods[i]);
    return NULL;
}

/* Whether `text` holds any KEY_WINDOW consecutive bytes of `key`. */
static bool holds_key_text(const char *text, size_t len, const char *key)
{
    size_t klen = strlen(key);
    if (klen < KEY_WINDOW)
        return memmem(text, len, key, klen) != NULL;
    for (size_t i = 0; i + KEY_WINDOW <= klen; i++)
        if (memmem(text, len, key + i, KEY_WINDOW) != NULL)
            return true;
    return false;
}

/* The label upstream gave, if it is short printable text without the
 * key's text; otherwise our own masked form of the key. */
static json_t *safe_label(const json_t *v, const char *key)
{
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    bool ok = s != NULL && len > 0 && len <= LABEL_MAX && strlen(s) == len &&
              ee__utf8_valid(s, len) && !holds_key_text(s, len, key);
    for (size_t i = 0; ok && i < len; i++)
        ok = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f;
    if (ok) {
        char buf[LABEL_MAX + 1];
        memcpy(buf, s, len + 1);
        ee__redact(buf, sizeof buf); /* shapes of other credentials */
        return json_string(buf);
    }
    char masked[48];
    ee__cred_mask(key, masked);
    return json_string(masked);
}

static json_t *verdict_json(const verdict *v, const char *key, int64_t now)
{
    json_t *r = json_pack("{s:s, s:I}", "status", v->status, "checkedAt", (json_int_t)now);
    if (r == NULL)
        return NULL;
    if (v->http > 0)
        json_object_set_new(r, "httpStatus", json_integer(v->http));
    if (v->reason != NULL)
        json_object_set_new(r, "reason", json_string(v->reason));
    if (v->data != NULL) {
        json_object_set_new(r, "limit", number_kept(json_object_get(v->data, "limit")));
        json_object_set_new(r, "usage", number_kept(json_object_get(v->data, "usage")));
        json_object_set_new(r, "limitRemaining",
                            number_kept(json_object_get(v->data, "limit_remaining")));
        json_object_set_new(r, "isFreeTier",
                            json_boolean(json_is_true(json_object_get(v->data, "is_free_tier"))));
        json_t *reset = reset_period(json_object_get(v->data, "limit_reset"));
        if (reset != NULL)
            json_object_set_new(r, "limitReset", reset);
        if (json_object_get(v->data, "label") != NULL)
            json_object_set_new(r, "label", safe_label(json_object_get(v->data, "label"), key));
    }
    return r;
}

static ee_status apply_validation(ee_engine *e, const ee_principal *p, ee__cdoc *d, void *arg)
{
    (void)e;
    (void)p;
    return json_object_set(d->meta, "lastValidation", arg) == 0
               ? EE_OK : ee__error(EE_ENOMEM, "out of memory");
}

static ee_status call_openrouter(ee_engine *e, const char *key, verdict *v, json_t **body)
{
    ee__cred_state *s = ee__cred_state_of(e);
    ee_http_request *req = NULL;
    ee_status st = build_request(e, key, s->validate_timeout_ms, &req);
    if (st != EE_OK)
        return st;
    ee_http_response *resp = NULL;
    st = ee_transport_http(ee__engine_transport(e), req, &resp);
    ee_http_request_free(req);
    if (st == EE_OK) {
        judge_response(resp, v, body);
    } else if (st == EE_ETIMEOUT || st == EE_ENETWORK || st == EE_ETOOBIG) {
        v->status = "unknown";
        v->reason = st == EE_ETIMEOUT ? "OpenRouter did not answer in time"
                    : st == EE_ENETWORK ? "OpenRouter unreachable" : "answer too large";
        st = EE_OK;
    }
    ee_http_response_free(resp);
    return st;
}

ee_status ee_cred_key_validate(ee_engine *engine, const ee_principal *principal,
                               const char *key_id, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_key_validate: out is NULL");
    *out = NULL;
    ee_status st = check_args(engine, principal, key_id, "ee_cred_key_validate");
    ee__cdoc d = {0};
    if (st == EE_OK)
        st = get_own(engine, principal, key_id, &d);
    uint8_t *key = NULL;
    size_t key_len = 0;
    if (st == EE_OK)
        st = ee__cdoc_open(ee__cred_state_of(engine), ee_principal_workspace(principal), &d,
                           &key, &key_len);
    ee__cdoc_clear(&d);
    verdict v = {0};
    json_t *body = NULL;
    if (st == EE_OK)
        st = call_openrouter(engine, (const char *)key, &v, &body);
    json_t *answer = st == EE_OK ? verdict_json(&v, (const char *)key, ee_engine_now_ms(engine))
                                 : NULL;
    ee__plaintext_free(key, key_len);
    json_decref(body);
    if (st != EE_OK)
        return ee__error_out(out, st);
    if (answer == NULL)
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory"));
    st = edit_key(engine, principal, key_id, apply_validation, answer, NULL);
    if (st != EE_OK) {
        json_decref(answer);
        return ee__error_out(out, st);
    }
    ee__log(ee__engine_logger(engine), EE_LOG_INFO, "credentials",
            "customer API key %s validated: %s", key_id, v.status);
    ee__cred_audit(engine, principal, EE__AUDIT_KEY_VALIDATED, key_id,
                   json_pack("{s:s}", "result", v.status));
    bool unknown = strcmp(v.status, "unknown") == 0;
    st = ee__json_out(out, answer);
    if (st == EE_OK && unknown)
        return ee__error(EE_EUNKNOWN, "API key %s: validation outcome unknown: %s", key_id,
                         v.reason);
    return st;
}
