/* Routing against the store: the typed route of credentials.h
 * (ee__cred_route_nodes, ee__cred_route_open_secret), the public
 * ee_cred_route() as a thin adapter over it (bounded parse, typed call,
 * render), and, for the execution pipeline, routing plus decryption of every
 * mapped secret (ee__cred_resolve). Lookups read a cached snapshot of each
 * workspace's credential metadata, so routing a workflow costs no storage
 * round trip once warm; the snapshot holds ciphertext only. */
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
    if (st == EE_OK) {
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

/* What a route keeps beside its public part: the references that let a
 * secret be opened later exactly as routed (ciphertext only). */
struct ee__cred_route_state {
    ee__cred_state *s;
    const char *workspace;         /* the principal's, copied */
    ee__cred_snapshot *snaps[2];   /* [0] platform, [1] the workspace */
    uint8_t *customer_env;         /* the chosen customer key, sealed */
    size_t customer_env_len;
    ee__route_result res;
};

/* One allocation holds the route, its arrays and copies of its strings. */
typedef struct {
    ee__cred_route pub;
    struct ee__cred_route_state st;
} route_block;

static char *copy_str(char **arena, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = memcpy(*arena, s, n);
    *arena += n;
    return d;
}

/* The block for routing `nodes`, with the nodes copied into *copy. */
static ee_status route_alloc(const ee__cred_node *nodes, size_t n, const char *ws,
                             route_block **out, ee__cred_node **copy)
{
    size_t cap = ee__route_capacity(nodes, n), n_types = 0, bytes = strlen(ws) + 1;
    for (size_t i = 0; i < n; i++) {
        if (nodes[i].name == NULL || nodes[i].type == NULL)
            return ee__error(EE_EINVAL, "workflow node %zu needs a \"name\" and a \"type\"", i);
        bytes += strlen(nodes[i].name) + strlen(nodes[i].type) + 2;
        for (size_t k = 0; k < nodes[i].n_credential_types; k++) {
            if (nodes[i].credential_types == NULL || nodes[i].credential_types[k] == NULL)
                return ee__error(EE_EINVAL, "workflow node %zu: credential type %zu is NULL", i,
                                 k);
            bytes += strlen(nodes[i].credential_types[k]) + 1;
        }
        n_types += nodes[i].n_credential_types;
    }
    /* every part below is a multiple of 8 bytes but the strings, last */
    size_t size = sizeof(route_block) + cap * sizeof(ee__cred_mapping)
                + cap * sizeof(ee__cred_gap) + n * sizeof(const char *)
                + n * sizeof(ee__cred_node) + n_types * sizeof(const char *) + bytes;
    route_block *b = malloc(size);
    if (b == NULL)
        return ee__error(EE_ENOMEM, "out of memory routing credentials");
    memset(b, 0, sizeof *b);
    char *p = (char *)(b + 1);
    b->st.res.mappings = (ee__cred_mapping *)p;
    p += cap * sizeof(ee__cred_mapping);
    b->st.res.gaps = (ee__cred_gap *)p;
    p += cap * sizeof(ee__cred_gap);
    b->st.res.unknown = (const char **)p;
    p += n * sizeof(const char *);
    ee__cred_node *nc = (ee__cred_node *)p;
    p += n * sizeof(ee__cred_node);
    const char **types = (const char **)p;
    p += n_types * sizeof(const char *);
    b->st.workspace = copy_str(&p, ws);
    for (size_t i = 0; i < n; i++) {
        nc[i].name = copy_str(&p, nodes[i].name);
        nc[i].type = copy_str(&p, nodes[i].type);
        nc[i].credential_types = types;
        nc[i].n_credential_types = nodes[i].n_credential_types;
        for (size_t k = 0; k < nodes[i].n_credential_types; k++)
            *types++ = copy_str(&p, nodes[i].credential_types[k]);
    }
    b->pub.state = &b->st;
    *out = b;
    *copy = nc;
    return EE_OK;
}

ee_status ee__cred_route_nodes(ee_engine *engine, const ee_principal *principal,
                               const ee__cred_node *nodes, size_t n,
                               const ee__cred_choice *choice, ee__cred_route **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee__cred_route_nodes: out is NULL");
    *out = NULL;
    if (engine == NULL || principal == NULL || (nodes == NULL && n > 0))
        return ee__error(EE_EINVAL, "ee__cred_route_nodes: NULL argument");
    if (n > EE__ROUTE_MAX_NODES)
        return ee__error(EE_ETOOBIG, "workflow has %zu nodes, the limit is %d", n,
                         EE__ROUTE_MAX_NODES);
    ee__cred_state *s = ee__cred_state_of(engine);
    if (s == NULL)
        return ee__error(EE_ESTATE, "the engine's credentials module is not open");
    route_block *b = NULL;
    ee__cred_node *copy = NULL;
    ee_status st = route_alloc(nodes, n, ee_principal_workspace(principal), &b, &copy);
    if (st != EE_OK)
        return st;
    lookup_ctx c = {s, engine, principal, {NULL, NULL}, NULL, 0};
    ee__cred_lookup lk = {find, customer_key, &c};
    ee__cred_choice ch = choice ? *choice : (ee__cred_choice){false, NULL};
    st = ee__route_typed(s->cat, &lk, b->st.workspace, copy, n, &ch, &b->st.res);
    /* The route keeps what routing read, so a secret opens as routed. */
    b->st.s = s;
    b->st.snaps[0] = c.snaps[0];
    b->st.snaps[1] = c.snaps[1];
    b->st.customer_env = c.customer_env;
    b->st.customer_env_len = c.customer_env_len;
    ee__cred_route *r = &b->pub;
    r->n_mappings = b->st.res.n_mappings;
    r->mappings = b->st.res.mappings;
    r->n_gaps = b->st.res.n_gaps;
    r->gaps = b->st.res.gaps;
    r->n_unknown = b->st.res.n_unknown;
    r->unknown_nodes = b->st.res.unknown;
    /* An unknown node type may need a credential nobody can name: not ready. */
    r->ready = r->n_gaps == 0 && r->n_unknown == 0;
    if (st != EE_OK) {
        ee__cred_route_free(r);
        return st;
    }
    *out = r;
    return EE_OK;
}

void ee__cred_route_free(ee__cred_route *route)
{
    if (route == NULL)
        return;
    route_block *b = (route_block *)route;
    ee__cred_snapshot_release(b->st.s, b->st.snaps[0]);
    ee__cred_snapshot_release(b->st.s, b->st.snaps[1]);
    free(b->st.customer_env);
    free(b);
}

/* Where mapping i's sealed secret is, and under which workspace it opens. */
static ee_status locate(const ee__cred_route *route, size_t i, const uint8_t **env,
                        size_t *env_len, const char **ws, const ee__cred_entry **entry)
{
    const struct ee__cred_route_state *rs = route->state;
    const ee__cred_mapping *m = &route->mappings[i];
    *entry = NULL;
    *env = NULL;
    *env_len = 0;
    *ws = rs->workspace;
    if (m->source == EE__CRED_SOURCE_CUSTOMER) {
        *env = rs->customer_env;
        *env_len = rs->customer_env_len;
    } else {
        bool platform = m->source == EE__CRED_SOURCE_PLATFORM;
        *entry = entry_by_id(rs->snaps[platform ? 0 : 1], m->credential_id);
        if (*entry != NULL) {
            *env = (*entry)->env;
            *env_len = (*entry)->env_len;
        }
        if (platform)
            *ws = EE__PLATFORM_WS;
    }
    if (*env == NULL)
        return ee__error(EE_ECORRUPT, "credential %s vanished while resolving", m->credential_id);
    return EE_OK;
}

ee_status ee__cred_route_open_secret(const ee__cred_route *route, size_t i, char **secret_out,
                                     size_t *len_out, bool *is_json_out)
{
    if (secret_out != NULL)
        *secret_out = NULL;
    if (len_out != NULL)
        *len_out = 0;
    if (route == NULL || secret_out == NULL || len_out == NULL)
        return ee__error(EE_EINVAL, "ee__cred_route_open_secret: NULL argument");
    if (i >= route->n_mappings)
        return ee__error(EE_EINVAL, "ee__cred_route_open_secret: mapping %zu of %zu", i,
                         route->n_mappings);
    const uint8_t *env;
    size_t env_len;
    const char *ws;
    const ee__cred_entry *e;
    ee_status st = locate(route, i, &env, &env_len, &ws, &e);
    if (st != EE_OK)
        return st;
    uint8_t *pt = NULL;
    st = ee__open(route->state->s->ring, ws, route->mappings[i].credential_id, env, env_len, &pt,
                  len_out);
    *secret_out = (char *)pt;
    if (is_json_out != NULL)
        *is_json_out = route->mappings[i].source == EE__CRED_SOURCE_PERSONAL;
    return st;
}

void ee__cred_secret_free(char *secret, size_t len)
{
    if (secret != NULL)
        ee__plaintext_free((uint8_t *)secret, len);
}

const char *ee__cred_route_from_email(const ee__cred_route *route, size_t i)
{
    if (route == NULL || i >= route->n_mappings
        || route->mappings[i].source == EE__CRED_SOURCE_CUSTOMER)
        return NULL;
    bool platform = route->mappings[i].source == EE__CRED_SOURCE_PLATFORM;
    const ee__cred_entry *e =
        entry_by_id(route->state->snaps[platform ? 0 : 1], route->mappings[i].credential_id);
    return e ? e->from_email : NULL;
}

/* ---- for the execution pipeline: route and decrypt ---------------------------------- */

static ee_status check_principal(ee_engine *e, const ee_principal *p, const char *what)
{
    if (e == NULL || p == NULL)
        return ee__error(EE_EINVAL, "%s: NULL argument", what);
    return EE_OK;
}

/* Read a workflow and a choice document and route them. */
static ee_status route_json(ee_engine *engine, const ee_principal *principal,
                            const json_t *workflow, const json_t *choice, ee__cred_route **out)
{
    ee__route_nodes_json nodes;
    ee__cred_choice ch;
    ee_status st = ee__route_read_json(workflow, choice, &nodes, &ch);
    if (st == EE_OK)
        st = ee__cred_route_nodes(engine, principal, nodes.nodes, nodes.n, &ch, out);
    ee__route_nodes_json_clear(&nodes);
    return st;
}

ee_status ee__cred_resolve(ee_engine *engine, const ee_principal *principal,
                           const json_t *workflow, const json_t *choice, ee__cred_resolved **out)
{
    *out = NULL;
    ee_status st = check_principal(engine, principal, "ee__cred_resolve");
    if (st != EE_OK)
        return st;
    ee__cred_resolved *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ee__error(EE_ENOMEM, "out of memory resolving credentials");
    st = route_json(engine, principal, workflow, choice, &r->route);
    size_t n = r->route ? r->route->n_mappings : 0;
    if (st == EE_OK && n > 0 && (r->items = calloc(n, sizeof *r->items)) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory resolving credentials");
    for (size_t i = 0; st == EE_OK && i < n; i++) {
        const ee__cred_mapping *m = &r->route->mappings[i];
        ee__cred_secret *item = &r->items[i];
        item->node_name = m->node_name;
        item->credential_name = m->credential_name;
        item->credential_id = m->credential_id;
        item->source = ee__cred_source_name(m->source);
        item->from_email = ee__cred_route_from_email(r->route, i);
        st = ee__cred_route_open_secret(r->route, i, &item->secret, &item->secret_len,
                                        &item->is_json);
        r->n = i + 1;
    }
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
        ee__cred_secret_free(r->items[i].secret, r->items[i].secret_len);
    free(r->items);
    ee__cred_route_free(r->route);
    free(r);
}

/* ---- the public call: parse, typed route, render ------------------------------------ */

static ee_status parse_json(const char *text, const char *what, bool allow_null, json_t **out)
{
    *out = NULL;
    if (text == NULL)
        return allow_null ? EE_OK : ee__error(EE_EINVAL, "ee_cred_route: %s is NULL", what);
    char w[64];
    snprintf(w, sizeof w, "ee_cred_route: %s", what);
    return ee__json_parse(text, EE__CRED_ROUTE_JSON_MAX, EE__CRED_ROUTE_DEPTH_MAX, 0, w, out);
}

/* The route as the answer of ee_cred_route() (new reference, NULL on ENOMEM). */
static json_t *render_route(const ee__cred_route *r)
{
    json_t *doc = ee__route_render(&r->state->res);
    if (doc != NULL && json_object_set_new(doc, "ready", json_boolean(r->ready)) != 0) {
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

ee_status ee_cred_route(ee_engine *engine, const ee_principal *principal,
                        const char *workflow_json, const char *choice_json, char **out)
{
    if (out == NULL)
        return ee__error(EE_EINVAL, "ee_cred_route: out is NULL");
    *out = NULL;
    json_t *wf = NULL, *choice = NULL;
    ee__cred_route *r = NULL;
    ee_status st = check_principal(engine, principal, "ee_cred_route");
    if (st == EE_OK)
        st = parse_json(workflow_json, "workflow", false, &wf);
    if (st == EE_OK)
        st = parse_json(choice_json, "choice", true, &choice);
    if (st == EE_OK)
        st = route_json(engine, principal, wf, choice, &r);
    json_t *doc = NULL;
    if (st == EE_OK && (doc = render_route(r)) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory routing credentials");
    ee__cred_route_free(r);
    json_decref(wf);
    json_decref(choice);
    return st == EE_OK ? ee__json_out(out, doc) : ee__error_out(out, st);
}
