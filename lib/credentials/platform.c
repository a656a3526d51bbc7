/* The platform credential pool (workspace "platform"), provisioned from the
 * PLATFORM_* options as data/integrations.json's platformEnv maps them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit/audit.h"
#include "core/record.h"
#include "credentials/cred_internal.h"

#define SEALED_FIELD "secret"
#define MAX_KEYS_PER_VAR 64

/* One wanted credential: a credential type funded by the slot-th key of a
 * variable. */
typedef struct {
    const ee__integration *it;
    const char *cred_name;
    const char *source;
    int slot;
    char *key; /* owned, wiped */
    bool done;
} wanted;

typedef struct {
    wanted *items;
    size_t n, cap;
} wanted_list;

static void wanted_free(wanted_list *w)
{
    for (size_t i = 0; i < w->n; i++)
        ee__secret_free(w->items[i].key);
    free(w->items);
}

static ee_status wanted_add(wanted_list *w, const ee__integration *it, const char *cred,
                            const char *source, int slot, const char *a, size_t len)
{
    if (w->n == w->cap) {
        wanted *grown = ee__grow(w->items, &w->cap, sizeof *grown, 16);
        if (grown == NULL)
            return ee__error(EE_ENOMEM, "out of memory provisioning platform credentials");
        w->items = grown;
    }
    char *key = malloc(len + 1);
    if (key == NULL)
        return ee__error(EE_ENOMEM, "out of memory provisioning platform credentials");
    memcpy(key, a, len);
    key[len] = '\0';
    w->items[w->n++] = (wanted){it, cred, source, slot, key, false};
    return EE_OK;
}

/* Every (credential type, key) the configuration asks for. A service's
 * keys come from the first of its platformEnv variables that is set
 * (PLATFORM_OPENROUTER_KEY before PLATFORM_OPENROUTER_API_KEY). */
static ee_status collect_wanted(ee__cred_state *s, wanted_list *w)
{
    const ee_config *cfg = ee__engine_config(s->engine);
    for (size_t i = 0; i < ee__integrations_count(s->cat); i++) {
        const ee__integration *it = ee__integrations_at(s->cat, i);
        if (it->is_personal)
            continue;
        const char *source = NULL, *value = NULL;
        size_t k;
        const json_t *v;
        json_array_foreach(it->platform_env, k, v) {
            value = ee__config_text(cfg, json_string_value(v));
            if (value != NULL && value[0] != '\0') {
                source = json_string_value(v);
                break;
            }
        }
        if (source == NULL)
            continue;
        size_t len;
        const char *p = value, *key;
        for (int slot = 0; slot < MAX_KEYS_PER_VAR && (key = ee__key_list_next(&p, &len)) != NULL;
             slot++) {
            size_t c;
            const json_t *cred;
            json_array_foreach(it->credentials, c, cred) {
                ee_status st = wanted_add(w, it, json_string_value(cred), source, slot, key, len);
                if (st != EE_OK)
                    return st;
            }
        }
    }
    return EE_OK;
}

typedef struct {
    json_t *docs; /* array of {id, revision} read back one by one */
    ee_status st;
} ids_ctx;

static int ids_row(const ee_storage_row *row, void *payload)
{
    ids_ctx *ic = payload;
    char hex[EE_STORAGE_ID_HEX_LEN + 1];
    ee__hex_encode(row->id, EE_STORAGE_ID_SIZE, hex);
    if (json_array_append_new(ic->docs, json_string(hex)) != 0) {
        ic->st = ee__error(EE_ENOMEM, "out of memory");
        return 1;
    }
    return 0;
}

ee_status ee__cred_list_ids(ee_engine *e, const char *coll, const char *ws, json_t **out)
{
    ids_ctx ic = {json_array(), EE_OK};
    *out = NULL;
    if (ic.docs == NULL)
        return ee__error(EE_ENOMEM, "out of memory");
    ee_storage_query_spec q = {.version = EE_STORAGE_QUERY_VERSION,
                               .order = EE_STORAGE_ORDER_TIME_ASC, .limit = EE_STORAGE_LIMIT_MAX};
    ee_status st =
        ee__storage_query_all(ee__engine_storage(e), coll, ws, &q, ids_row, &ic, &ic.st);
    if (st != EE_OK) {
        json_decref(ic.docs);
        return st;
    }
    *out = ic.docs;
    return EE_OK;
}

ee_status ee__cred_each_platform_doc(ee__cred_state *s, ee__cred_doc_fn fn, void *payload)
{
    return ee__cred_each_doc(s, EE__PLATFORM_WS, fn, payload);
}

ee_status ee__cred_each_doc(ee__cred_state *s, const char *ws, ee__cred_doc_fn fn,
                            void *payload)
{
    json_t *ids = NULL;
    ee_status st = ee__cred_list_ids(s->engine, EE__CRED_COLL, ws, &ids);
    size_t i;
    const json_t *id;
    json_array_foreach(ids, i, id) {
        if (st != EE_OK)
            break;
        ee__cdoc d;
        st = ee__cdoc_get(s->engine, EE__CRED_COLL, ws, json_string_value(id), &d);
        if (st == EE_ENOTFOUND) {
            st = EE_OK; /* deleted meanwhile */
            continue;
        }
        if (st != EE_OK)
            break;
        st = fn(s, &d, payload);
        ee__cdoc_clear(&d);
    }
    json_decref(ids);
    return st;
}

static const char *meta_str(const ee__cdoc *d, const char *k)
{
    return json_string_value(json_object_get(d->meta, k));
}

static ee_status report_add(json_t *report, const char *id, const char *cred, const char *source,
                            int slot, const char *status)
{
    json_t *r = json_pack("{s:s, s:s, s:s, s:i, s:s}", "id", id, "credentialName", cred,
                          "source", source, "slot", slot, "status", status);
    json_t *counter = json_object_get(report, status);
    json_integer_set(counter, json_integer_value(counter) + 1);
    if (r == NULL || json_array_append_new(json_object_get(report, "credentials"), r) != 0)
        return ee__error(EE_ENOMEM, "out of memory");
    return EE_OK;
}

static bool same_text(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Bring an existing credential in line with what is wanted. */
static ee_status reconcile(ee__cred_state *s, ee__cdoc *d, wanted *w, const char *from_email,
                           json_t *report)
{
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    ee_status st = ee__cdoc_open(s, EE__PLATFORM_WS, d, &pt, &pt_len);
    /* A credential that does not open with our secrets is never re-sealed:
     * it is another secret's data (the key-check record at open is the
     * first line; this is the second). */
    bool same = st == EE_OK && pt_len == strlen(w->key) &&
                CRYPTO_memcmp(pt, w->key, pt_len) == 0;
    ee__plaintext_free(pt, pt_len);
    if (st == EE_ECRYPTO)
        return ee__error(EE_ECRYPTO, "platform credential %s (%s) does not open with this "
                                     "engine's secrets: not re-sealing it under another key",
                         d->id, w->cred_name);
    if (st != EE_OK)
        return st;
    const char *email = strcmp(w->cred_name, "resendApi") == 0 ? from_email : NULL;
    if (same && same_text(meta_str(d, "fromEmail"), email))
        return report_add(report, d->id, w->cred_name, w->source, w->slot, "unchanged");
    st = ee__cdoc_seal(s, EE__PLATFORM_WS, d, SEALED_FIELD, w->key, strlen(w->key));
    if (st != EE_OK)
        return st;
    char masked[48];
    ee__cred_mask(w->key, masked);
    json_object_set_new(d->meta, "maskedKey", json_string(masked));
    if (email != NULL)
        json_object_set_new(d->meta, "fromEmail", json_string(email));
    else
        json_object_del(d->meta, "fromEmail");
    json_object_set_new(d->meta, "updatedAt", json_integer(ee_engine_now_ms(s->engine)));
    st = ee__cdoc_replace(s->engine, EE__CRED_COLL, EE__PLATFORM_WS, d);
    return st == EE_OK ? report_add(report, d->id, w->cred_name, w->source, w->slot, "updated")
                       : st;
}

static ee_status create(ee__cred_state *s, wanted *w, const char *from_email, json_t *report)
{
    ee__cdoc d = {0};
    int64_t now = ee_engine_now_ms(s->engine);
    char masked[48], name[300];
    ee__cred_mask(w->key, masked);
    snprintf(name, sizeof name, "%s (platform) #%d", w->it->service, w->slot + 1);
    ee_status st = ee_storage_id_new(d.id);
    d.meta = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:b, s:I, s:I}", "workspaceId",
                       EE__PLATFORM_WS, "kind", "platform", "credentialName", w->cred_name,
                       "userId", EE__PLATFORM_WS, "service", w->it->service, "source", w->source,
                       "slot", w->slot, "maskedKey", masked, "isActive", 1, "createdAt",
                       (json_int_t)now, "updatedAt", (json_int_t)now);
    if (d.meta == NULL)
        st = ee__error(EE_ENOMEM, "out of memory");
    if (st == EE_OK)
        json_object_set_new(d.meta, "name", json_string(name));
    if (st == EE_OK && strcmp(w->cred_name, "resendApi") == 0 && from_email != NULL)
        json_object_set_new(d.meta, "fromEmail", json_string(from_email));
    if (st == EE_OK)
        st = ee__cdoc_seal(s, EE__PLATFORM_WS, &d, SEALED_FIELD, w->key, strlen(w->key));
    if (st == EE_OK)
        st = ee__cdoc_insert(s->engine, EE__CRED_COLL, EE__PLATFORM_WS, &d);
    if (st == EE_OK)
        st = report_add(report, d.id, w->cred_name, w->source, w->slot, "created");
    ee__cdoc_clear(&d);
    return st;
}

static wanted *find_wanted(wanted_list *w, const char *cred, const char *source, int slot)
{
    for (size_t i = 0; i < w->n; i++)
        if (!w->items[i].done && strcmp(w->items[i].cred_name, cred) == 0 &&
            strcmp(w->items[i].source, source) == 0 && w->items[i].slot == slot)
            return &w->items[i];
    return NULL;
}

typedef struct provision_ctx {
    wanted_list *w;
    const char *from_email;
    json_t *report;
} provision_ctx;

/* One stored platform document: reconciled with the wanted one it matches,
 * or removed. */
static ee_status provision_doc(ee__cred_state *s, ee__cdoc *d, void *payload)
{
    provision_ctx *pc = payload;
    const char *kind = meta_str(d, "kind"), *cred = meta_str(d, "credentialName");
    const char *source = meta_str(d, "source");
    if (kind == NULL || strcmp(kind, "platform") != 0 || cred == NULL || source == NULL)
        return EE_OK;
    int slot = (int)json_integer_value(json_object_get(d->meta, "slot"));
    wanted *match = find_wanted(pc->w, cred, source, slot);
    if (match != NULL) {
        match->done = true;
        return reconcile(s, d, match, pc->from_email, pc->report);
    }
    ee_status st =
        ee_storage_delete(ee__engine_storage(s->engine), EE__CRED_COLL, EE__PLATFORM_WS, d->id);
    if (st == EE_OK || st == EE_ENOTFOUND)
        st = report_add(pc->report, d->id, cred, source, slot, "removed");
    return st;
}

static ee_status provision(ee__cred_state *s, json_t *report)
{
    wanted_list w = {0};
    provision_ctx pc = {
        &w, ee__config_text(ee__engine_config(s->engine), "PLATFORM_FROM_EMAIL"), report};
    ee_status st = collect_wanted(s, &w);
    if (st == EE_OK)
        st = ee__cred_each_platform_doc(s, provision_doc, &pc);
    for (size_t i = 0; st == EE_OK && i < w.n; i++)
        if (!w.items[i].done)
            st = create(s, &w.items[i], pc.from_email, report);
    wanted_free(&w);
    return st;
}

ee_status ee_cred_platform_provision(ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_platform_provision: out is NULL");
    *out = NULL;
    if (engine == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_cred_platform_provision: engine is NULL"));
    ee__cred_state *s = ee__cred_state_of(engine);
    json_t *report = json_pack("{s:[], s:i, s:i, s:i, s:i}", "credentials", "created", 0,
                               "updated", 0, "unchanged", 0, "removed", 0);
    if (report == NULL)
        return ee__error_out(out, ee__error(EE_ENOMEM, "out of memory"));
    /* One provisioning at a time in this process: two would both create. */
    static pthread_mutex_t provision_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&provision_lock);
    ee_status st = provision(s, report);
    pthread_mutex_unlock(&provision_lock);
    ee__cred_invalidate(s);
    if (st != EE_OK) {
        json_decref(report);
        return ee__error_out(out, st);
    }
    ee__log(ee__engine_logger(engine), EE_LOG_INFO, "credentials",
            "platform credentials provisioned: %lld created, %lld updated, %lld unchanged, "
            "%lld removed",
            (long long)json_integer_value(json_object_get(report, "created")),
            (long long)json_integer_value(json_object_get(report, "updated")),
            (long long)json_integer_value(json_object_get(report, "unchanged")),
            (long long)json_integer_value(json_object_get(report, "removed")));
    /* The counts only: the report's credentials carry no secret, but the
     * audit entry has no use for them. */
    json_t *counts = json_pack("{s:O, s:O, s:O, s:O}", "created",
                               json_object_get(report, "created"), "updated",
                               json_object_get(report, "updated"), "unchanged",
                               json_object_get(report, "unchanged"), "removed",
                               json_object_get(report, "removed"));
    ee__audit_append(engine, &(ee__audit_entry){.action = EE__AUDIT_PLATFORM_PROVISIONED,
                                                .workspace = EE__PLATFORM_WS,
                                                .actor = EE__AUDIT_ACTOR_SYSTEM,
                                                .target_id = EE__PLATFORM_WS,
                                                .outcome = EE__AUDIT_OK,
                                                .status = EE_OK,
                                                .detail = counts});
    json_decref(counts);
    return ee__json_out(out, report);
}

typedef struct set_active_ctx {
    ee_engine *engine;
    const char *id;
    int active;
} set_active_ctx;

static ee_status set_active_attempt(int attempt, bool *final, void *payload)
{
    (void)attempt;
    set_active_ctx *c = payload;
    ee__cdoc d;
    ee_status st = ee__cdoc_get(c->engine, EE__CRED_COLL, EE__PLATFORM_WS, c->id, &d);
    *final = true;
    if (st != EE_OK)
        return st;
    const char *kind = meta_str(&d, "kind");
    if (kind == NULL || strcmp(kind, "platform") != 0) {
        ee__cdoc_clear(&d);
        return ee__error(EE_ENOTFOUND, "no platform credential %s", c->id);
    }
    json_object_set_new(d.meta, "isActive", json_boolean(c->active != 0));
    json_object_set_new(d.meta, "updatedAt", json_integer(ee_engine_now_ms(c->engine)));
    st = ee__cdoc_replace(c->engine, EE__CRED_COLL, EE__PLATFORM_WS, &d);
    ee__cdoc_clear(&d);
    if (st == EE_ECONFLICT) {
        *final = false; /* a concurrent writer: read again */
        return st;
    }
    ee__cred_invalidate(ee__cred_state_of(c->engine));
    if (st == EE_OK)
        ee__log(ee__engine_logger(c->engine), EE_LOG_INFO, "credentials",
                "platform credential %s %s rotation", c->id,
                c->active ? "back in" : "taken out of");
    return st;
}

ee_status ee_cred_platform_set_active(ee_engine *engine, const char *credential_id, int active)
{
    if (engine == NULL || credential_id == NULL)
        return ee__error(EE_EINVAL, "ee_cred_platform_set_active: NULL argument");
    set_active_ctx c = {engine, credential_id, active};
    char what[64];
    snprintf(what, sizeof what, "platform credential %s", credential_id);
    ee_status st = ee__record_retry(set_active_attempt, &c, what);
    if (st == EE_OK) { /* once per call, whatever the attempts */
        json_t *detail = json_pack("{s:b}", "isActive", active != 0);
        ee__audit_append(engine, &(ee__audit_entry){.action = EE__AUDIT_PLATFORM_SWITCHED,
                                                    .workspace = EE__PLATFORM_WS,
                                                    .actor = EE__AUDIT_ACTOR_SYSTEM,
                                                    .target_id = credential_id,
                                                    .outcome = EE__AUDIT_OK,
                                                    .status = EE_OK,
                                                    .detail = detail});
        json_decref(detail);
    }
    return st;
}

ee_status ee_cred_platform_list(ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_platform_list: out is NULL");
    *out = NULL;
    if (engine == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_cred_platform_list: engine is NULL"));
    ee__cred_snapshot *snap = NULL;
    ee__cred_state *s = ee__cred_state_of(engine);
    ee_status st = ee__cred_snapshot_get(s, EE__PLATFORM_WS, &snap);
    if (st != EE_OK)
        return ee__error_out(out, st);
    json_t *list = json_array();
    size_t i;
    const json_t *m;
    json_array_foreach(snap->meta, i, m) {
        json_t *r = json_deep_copy(m);
        if (r == NULL)
            break;
        json_object_set(r, "id", json_object_get(r, "_id"));
        json_object_del(r, "_id");
        json_object_del(r, "kind");
        json_object_del(r, "userId");
        json_array_append_new(list, r);
    }
    ee__cred_snapshot_release(s, snap);
    return ee__json_out(out, json_pack("{s:o}", "credentials", list));
}
