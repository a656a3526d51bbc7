/* Key rotation: re-seal, under the current key, every stored secret sealed
 * with a previous one. Document by document with an optimistic replace, so
 * a run that is interrupted (crash, kill) is finished by running it again,
 * and a concurrent writer is never overwritten: a conflict re-reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/record.h"
#include "credentials/cred_internal.h"

typedef struct {
    uint64_t workspaces, scanned, rotated, current, failed;
    bool stopped;
} rotate_counts;

typedef struct rotate_one {
    ee__cred_state *s;
    const char *coll, *ws, *id;
    rotate_counts *rc;
    uint32_t current;
} rotate_one;

/* One attempt at re-sealing one document. */
static ee_status rotate_attempt(int attempt, bool *final, void *payload)
{
    rotate_one *r = payload;
    ee__cred_state *s = r->s;
    rotate_counts *rc = r->rc;
    const char *coll = r->coll, *ws = r->ws, *id = r->id;
    *final = true;
    ee__cdoc d;
    ee_status st = ee__cdoc_get(s->engine, coll, ws, id, &d);
    if (st == EE_ENOTFOUND)
        return EE_OK; /* deleted meanwhile */
    if (st != EE_OK)
        return st;
    /* A registry document (nothing sealed), or the key-check record,
     * which is re-sealed last (ee_cred_rotate()). */
    if (d.sealed == NULL || ee__cred_is_keycheck(d.meta)) {
        ee__cdoc_clear(&d);
        return EE_OK;
    }
    uint32_t key_id = 0;
    bool readable = ee__envelope_key_id(d.sealed, d.sealed_len, &key_id) == EE_OK;
    if (attempt == 0)
        rc->scanned++;
    if (!readable || key_id == r->current) {
        if (attempt == 0) {
            rc->current += readable;
            rc->failed += !readable;
        }
        ee__cdoc_clear(&d);
        return EE_OK;
    }
    uint8_t *pt = NULL;
    size_t pt_len = 0;
    st = ee__cdoc_open(s, ws, &d, &pt, &pt_len);
    if (st == EE_ECRYPTO) {
        ee__log(ee__engine_logger(s->engine), EE_LOG_WARN, "credentials",
                "rotation: %s %s in workspace %s does not open with any configured secret",
                coll, id, ws);
        rc->failed++;
        ee__cdoc_clear(&d);
        return EE_OK;
    }
    if (st == EE_OK)
        st = ee__cdoc_seal(s, ws, &d, d.sealed_field, (const char *)pt, pt_len);
    ee__plaintext_free(pt, pt_len);
    if (st == EE_OK)
        st = ee__cdoc_replace(s->engine, coll, ws, &d);
    ee__cdoc_clear(&d);
    if (st == EE_OK) {
        rc->rotated++;
        ee__cred_invalidate(s);
        if (s->rotate_hook != NULL && s->rotate_hook(s->rotate_payload, rc->rotated) != 0)
            rc->stopped = true;
        return EE_OK;
    }
    *final = st != EE_ECONFLICT; /* a concurrent writer: re-read */
    return st;
}

/* Re-seal one document if it needs it. */
static ee_status rotate_doc(ee__cred_state *s, const char *coll, const char *ws, const char *id,
                            rotate_counts *rc)
{
    rotate_one r = {s, coll, ws, id, rc, ee__keyring_current_id(s->ring)};
    char what[128];
    snprintf(what, sizeof what, "rotation: %s %s", coll, id);
    return ee__record_retry(rotate_attempt, &r, what);
}

static ee_status rotate_collection(ee__cred_state *s, const char *coll, const char *ws,
                                   rotate_counts *rc)
{
    json_t *ids = NULL;
    ee_status st = ee__cred_list_ids(s->engine, coll, ws, &ids);
    size_t i;
    const json_t *id;
    json_array_foreach(ids, i, id) {
        if (st != EE_OK || rc->stopped)
            break;
        st = rotate_doc(s, coll, ws, json_string_value(id), rc);
    }
    json_decref(ids);
    return st;
}

/* Workspace "platform" and every workspace of the registry. */
typedef struct workspaces_ctx {
    json_t *list;
    json_t *seen;
} workspaces_ctx;

static ee_status add_workspace(ee__cred_state *s, ee__cdoc *d, void *payload)
{
    (void)s;
    workspaces_ctx *wc = payload;
    const char *kind = json_string_value(json_object_get(d->meta, "kind"));
    const char *ws = json_string_value(json_object_get(d->meta, "userId"));
    if (kind != NULL && strcmp(kind, "workspace") == 0 && ws != NULL &&
        json_object_get(wc->seen, ws) == NULL) {
        json_object_set_new(wc->seen, ws, json_true());
        json_array_append_new(wc->list, json_string(ws));
    }
    return EE_OK;
}

static ee_status workspaces(ee__cred_state *s, json_t **out)
{
    *out = json_array();
    if (*out == NULL)
        return ee__error(EE_ENOMEM, "out of memory");
    json_array_append_new(*out, json_string(EE__PLATFORM_WS));
    workspaces_ctx wc = {*out, json_object()};
    ee_status st = ee__cred_each_doc(s, EE__WS_REGISTRY_WS, add_workspace, &wc);
    if (st == EE_OK) /* and what a store not yet moved still holds there */
        st = ee__cred_each_platform_doc(s, add_workspace, &wc);
    json_decref(wc.seen);
    return st;
}

ee_status ee_cred_rotate(ee_engine *engine, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_rotate: out is NULL");
    *out = NULL;
    if (engine == NULL)
        return ee__error_out(out, ee__error(EE_EINVAL, "ee_cred_rotate: engine is NULL"));
    ee__cred_state *s = ee__cred_state_of(engine);
    rotate_counts rc = {0};
    json_t *wss = NULL;
    ee_status st = workspaces(s, &wss);
    size_t i;
    const json_t *ws;
    json_array_foreach(wss, i, ws) {
        if (st != EE_OK || rc.stopped)
            break;
        rc.workspaces++;
        st = rotate_collection(s, EE__CRED_COLL, json_string_value(ws), &rc);
        if (st == EE_OK && !rc.stopped && strcmp(json_string_value(ws), EE__PLATFORM_WS) != 0)
            st = rotate_collection(s, EE__KEYS_COLL, json_string_value(ws), &rc);
    }
    json_decref(wss);
    /* Only once nothing needs a previous secret: an engine configured
     * with the new secret alone then opens, and not before. */
    if (st == EE_OK && !rc.stopped && rc.failed == 0)
        st = ee__cred_keycheck_reseal(s);
    if (st != EE_OK)
        return ee__error_out(out, st);
    ee__log(ee__engine_logger(engine), EE_LOG_INFO, "credentials",
            "rotation: %llu re-sealed, %llu already current, %llu failed",
            (unsigned long long)rc.rotated, (unsigned long long)rc.current,
            (unsigned long long)rc.failed);
    json_t *detail = json_pack("{s:I, s:I, s:I, s:I, s:I, s:b}", "workspaces",
                               (json_int_t)rc.workspaces, "scanned", (json_int_t)rc.scanned,
                               "rotated", (json_int_t)rc.rotated, "current",
                               (json_int_t)rc.current, "failed", (json_int_t)rc.failed,
                               "complete", !rc.stopped);
    ee__audit_append(engine, &(ee__audit_entry){
                                 .action = EE__AUDIT_SECRET_ROTATED,
                                 .workspace = EE__PLATFORM_WS,
                                 .actor = EE__AUDIT_ACTOR_SYSTEM,
                                 .target_id = "API_KEY_ENCRYPTION_SECRET",
                                 .outcome = rc.failed > 0 ? EE__AUDIT_FAILED : EE__AUDIT_OK,
                                 .status = rc.failed > 0 ? EE_ECRYPTO : EE_OK,
                                 .detail = detail});
    json_decref(detail);
    st = ee__json_out(out, json_pack("{s:I, s:I, s:I, s:I, s:I, s:b}", "workspaces",
                                     (json_int_t)rc.workspaces, "scanned", (json_int_t)rc.scanned,
                                     "rotated", (json_int_t)rc.rotated, "current",
                                     (json_int_t)rc.current, "failed", (json_int_t)rc.failed,
                                     "complete", !rc.stopped));
    if (st == EE_OK && rc.failed > 0)
        return ee__error(EE_ECRYPTO, "rotation: %llu stored secrets do not open with any "
                                     "configured secret", (unsigned long long)rc.failed);
    return st;
}
