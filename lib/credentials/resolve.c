/* Routing against the store (ee_cred_route) and, for the execution
 * pipeline, routing plus decryption of every mapped secret
 * (ee__cred_resolve). Lookups read a cached snapshot of each workspace's
 * credential metadata, so routing a workflow costs no storage round trip
 * once warm; the snapshot holds ciphertext only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credentials/cred_internal.h"
#include "credentials/routing.h"

typedef struct {
    ee__cred_state *s;
    ee_engine *engine;
    const ee_principal *principal;
    ee__cred_snapshot *snaps[2]; /* [0] platform, [1] the principal's workspace */
    bool want_customer_env;
    uint8_t *customer_env;
    size_t customer_env_len;
} lookup_ctx;

static ee_status snapshot_for(lookup_ctx *c, bool platform, ee__cred_snapshot **out)
{
    int i = platform ? 0 : 1;
    if (c->snaps[i] == NULL) {
        ee_status st = ee__cred_snapshot_get(
            c->s, platform ? EE__PLATFORM_WS : ee_principal_workspace(c->principal), &c->snaps[i]);
        if (st != EE_OK)
            return st;
    }
    *out = c->snaps[i];
    return EE_OK;
}

/* Platform: the active credentials of the type, one after the other across
 * calls. Personal: the newest active one. */
static ee_status find(void *ctx, const char *ws, const char *type, bool platform, char *id_out)
{
    (void)ws;
    lookup_ctx *c = ctx;
    ee__cred_snapshot *snap;
    ee_status st = snapshot_for(c, platform, &snap);
    if (st != EE_OK)
        return st;
    size_t n = 0, last = 0;
    for (size_t i = 0; i < snap->n; i++) {
        const ee__cred_entry *e = &snap->entries[i];
        if (e->active && e->platform == platform && strcmp(e->cred_name, type) == 0) {
            n++;
            last = i;
        }
    }
    if (n == 0)
        return EE_ENOTFOUND;
    size_t pick = last;
    if (platform && n > 1) {
        uint64_t want = ee__cred_next_turn(c->s, type) % n;
        for (size_t i = 0, k = 0; i < snap->n; i++) {
            const ee__cred_entry *e = &snap->entries[i];
            if (e->active && e->platform && strcmp(e->cred_name, type) == 0 && k++ == want) {
                pick = i;
                break;
            }
        }
    }
    memcpy(id_out, snap->entries[pick].id, sizeof snap->entries[pick].id);
    return EE_OK;
}

static ee_status customer_key(void *ctx, const char *ws, const char *key_id)
{
    lookup_ctx *c = ctx;
    ee__cdoc d;
    ee_status st = ee__cdoc_get(c->engine, EE__KEYS_COLL, ws, key_id, &d);
    if (st != EE_OK)
        return st;
    const char *owner = json_string_value(json_object_get(d.meta, "userId"));
    if (owner == NULL || strcmp(owner, ee_principal_user(c->principal)) != 0)
        st = EE_ENOTFOUND; /* another user's key is not this run's to use */
    else if (!json_is_true(json_object_get(d.meta, "isActive")))
        st = EE_ESTATE;
    if (st == EE_OK && c->want_customer_env) {
        free(c->customer_env);
        c->customer_env = d.sealed;
        c->customer_env_len = d.sealed_len;
        d.sealed = NULL;
    }
    ee__cdoc_clear(&d);
    return st;
}

static const ee__cred_entry *entry_by_id(const ee__cred_snapshot *snap, const char *id)
{
    for (size_t i = 0; snap != NULL && i < snap->n; i++)
        if (strcmp(snap->entries[i].id, id) == 0)
            return &snap->entries[i];
    return NULL;
}

static ee_status route_with(lookup_ctx *c, const json_t *workflow, const json_t *choice,
                            json_t **out)
{
    ee__cred_lookup lk = {find, customer_key, c};
    ee_status st = ee__route(c->s->cat, &lk, ee_principal_workspace(c->principal), workflow,
                             choice, out);
    /* An unknown node type may need a credential nobody can name: not ready. */
    if (st == EE_OK) {
        bool ready = json_array_size(json_object_get(*out, "gaps")) == 0 &&
                     json_array_size(json_object_get(*out, "unknownNodes")) == 0;
        json_object_set_new(*out, "ready", json_boolean(ready));
    }
    return st;
}

static ee_status decrypt_one(lookup_ctx *c, const json_t *m, ee__cred_secret *item)
{
    item->node_name = json_string_value(json_object_get(m, "nodeName"));
    item->credential_name = json_string_value(json_object_get(m, "credentialName"));
    item->credential_id = json_string_value(json_object_get(m, "credentialId"));
    item->source = json_string_value(json_object_get(m, "source"));
    const char *ws = ee_principal_workspace(c->principal);
    const uint8_t *env = NULL;
    size_t env_len = 0;
    if (strcmp(item->source, "customer") == 0) {
        env = c->customer_env;
        env_len = c->customer_env_len;
    } else {
        bool platform = strcmp(item->source, "platform") == 0;
        const ee__cred_entry *e = entry_by_id(c->snaps[platform ? 0 : 1], item->credential_id);
        if (e != NULL) {
            env = e->env;
            env_len = e->env_len;
            item->from_email = e->from_email;
            item->is_json = !platform;
        }
        if (platform)
            ws = EE__PLATFORM_WS;
    }
    if (env == NULL)
        return ee__error(EE_ECORRUPT, "credential %s vanished while resolving", item->credential_id);
    uint8_t *pt = NULL;
    size_t len = 0;
    ee_status st = ee__open(c->s->ring, ws, item->credential_id, env, env_len, &pt, &len);
    item->secret = (char *)pt;
    item->secret_len = len;
    return st;
}

static void ctx_release(lookup_ctx *c)
{
    ee__cred_snapshot_release(c->s, c->snaps[0]);
    ee__cred_snapshot_release(c->s, c->snaps[1]);
    free(c->customer_env);
}

static ee_status check_principal(ee_engine *e, const ee_principal *p, const char *what)
{
    if (e == NULL || p == NULL)
        return ee__error(EE_EINVAL, "%s: NULL argument", what);
    return EE_OK;
}

ee_status ee__cred_resolve(ee_engine *engine, const ee_principal *principal,
                           const json_t *workflow, const json_t *choice, ee__cred_resolved **out)
{
    *out = NULL;
    ee_status st = check_principal(engine, principal, "ee__cred_resolve");
    if (st != EE_OK)
        return st;
    lookup_ctx c = {ee__cred_state_of(engine), engine, principal, {NULL, NULL}, true, NULL, 0};
    ee__cred_resolved *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ee__error(EE_ENOMEM, "out of memory resolving credentials");
    r->state = c.s;
    st = route_with(&c, workflow, choice, &r->routing);
    const json_t *maps = json_object_get(r->routing, "credentialMappings");
    if (st == EE_OK && json_array_size(maps) > 0) {
        r->items = calloc(json_array_size(maps), sizeof *r->items);
        if (r->items == NULL)
            st = ee__error(EE_ENOMEM, "out of memory resolving credentials");
    }
    for (size_t i = 0; st == EE_OK && i < json_array_size(maps); i++) {
        st = decrypt_one(&c, json_array_get(maps, i), &r->items[i]);
        r->n = i + 1;
    }
    /* The snapshots stay referenced: items borrow from_email from them. */
    r->snaps[0] = c.snaps[0];
    r->snaps[1] = c.snaps[1];
    c.snaps[0] = c.snaps[1] = NULL;
    r->customer_env = c.customer_env;
    c.customer_env = NULL;
    ctx_release(&c);
    if (st != EE_OK) {
        ee__cred_resolved_free(r);
        return st;
    }
    *out = r;
    return EE_OK;
}

void ee__cred_resolved_free(ee__cred_resolved *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++)
        ee__plaintext_free((uint8_t *)r->items[i].secret, r->items[i].secret_len);
    free(r->items);
    ee__cred_snapshot_release(r->state, r->snaps[0]);
    ee__cred_snapshot_release(r->state, r->snaps[1]);
    free(r->customer_env);
    json_decref(r->routing);
    free(r);
}

static ee_status parse_json(const char *text, const char *what, bool allow_null, json_t **out)
{
    *out = NULL;
    if (text == NULL)
        return allow_null ? EE_OK : ee__error(EE_EINVAL, "ee_cred_route: %s is NULL", what);
    char w[64];
    snprintf(w, sizeof w, "ee_cred_route: %s", what);
    return ee__json_parse(text, EE__CRED_ROUTE_JSON_MAX, EE__CRED_ROUTE_DEPTH_MAX, 0, w, out);
}

ee_status ee_cred_route(ee_engine *engine, const ee_principal *principal,
                        const char *workflow_json, const char *choice_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_route: out is NULL");
    *out = NULL;
    json_t *wf = NULL, *choice = NULL, *routed = NULL;
    ee_status st = check_principal(engine, principal, "ee_cred_route");
    if (st == EE_OK)
        st = parse_json(workflow_json, "workflow", false, &wf);
    if (st == EE_OK)
        st = parse_json(choice_json, "choice", true, &choice);
    if (st == EE_OK) {
        lookup_ctx c = {ee__cred_state_of(engine), engine, principal, {NULL, NULL}, false, NULL, 0};
        st = route_with(&c, wf, choice, &routed);
        ctx_release(&c);
    }
    json_decref(wf);
    json_decref(choice);
    return st == EE_OK ? ee__json_out(out, routed) : ee__error_out(out, st);
}
