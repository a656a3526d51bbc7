/* Credential routing (routing.h): the typed core, and the JSON reading and
 * rendering the module's adapters share. */
#include "credentials/routing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define PLATFORM_WORKSPACE "platform"

const char *ee__cred_source_name(ee__cred_source source)
{
    switch (source) {
    case EE__CRED_SOURCE_PLATFORM:
        return "platform";
    case EE__CRED_SOURCE_PERSONAL:
        return "personal";
    case EE__CRED_SOURCE_CUSTOMER:
        return "customer";
    }
    return "unknown";
}

const char *ee__cred_gap_reason_text(ee__cred_gap_reason reason)
{
    switch (reason) {
    case EE__CRED_GAP_PLATFORM_MISSING:
        return "platform credential not provisioned";
    case EE__CRED_GAP_KEY_NOT_FOUND:
        return "customer API key not found in this workspace";
    case EE__CRED_GAP_KEY_INACTIVE:
        return "customer API key is inactive";
    case EE__CRED_GAP_NOT_STORED:
        break;
    }
    return NULL;
}

typedef struct {
    const ee__integrations *cat;
    const ee__cred_lookup *lookup;
    const char *workspace;
    const ee__cred_choice *choice; /* NULL: platform keys */
    ee__route_result *res;
} route_state;

static void add_mapping(route_state *rs, const char *node, const char *cred_id,
                        const char *cred_type, ee__cred_source source, const char *base_url)
{
    ee__cred_mapping *m = &rs->res->mappings[rs->res->n_mappings++];
    m->node_name = node;
    m->credential_name = cred_type;
    snprintf(m->credential_id, sizeof m->credential_id, "%s", cred_id);
    m->source = source;
    /* The key is another vendor's compatible API: the credential must point
     * at this base URL or the key does not work. */
    m->base_url_override = base_url;
}

static void add_gap(route_state *rs, const ee__integration *it, const char *cred_type,
                    ee__cred_gap_kind kind, ee__cred_gap_reason reason)
{
    for (size_t i = 0; i < rs->res->n_gaps; i++)
        if (strcmp(rs->res->gaps[i].credential_name, cred_type) == 0)
            return; /* once per credential type */
    ee__cred_gap *g = &rs->res->gaps[rs->res->n_gaps++];
    g->kind = kind;
    g->reason = reason;
    g->credential_name = cred_type;
    g->service = it ? it->service : NULL;
    g->is_personal = it == NULL || it->is_personal || kind == EE__CRED_GAP_API_KEY;
}

/* The customer's OpenRouter key replaces the platform's LLM credential. */
static ee_status route_customer_key(route_state *rs, const char *node, const char *cred_type,
                                    const ee__integration *it)
{
    const char *key_id = rs->choice->api_key_id;
    ee_status st = rs->lookup->customer_key(rs->lookup->ctx, rs->workspace, key_id);
    if (st == EE_OK) {
        add_mapping(rs, node, key_id, cred_type, EE__CRED_SOURCE_CUSTOMER, NULL);
        return EE_OK;
    }
    if (st == EE_ENOTFOUND || st == EE_ESTATE) {
        add_gap(rs, it, cred_type, EE__CRED_GAP_API_KEY,
                st == EE_ESTATE ? EE__CRED_GAP_KEY_INACTIVE : EE__CRED_GAP_KEY_NOT_FOUND);
        return EE_OK;
    }
    return st;
}

static ee_status route_credential(route_state *rs, const char *node, const char *cred_type)
{
    const ee__integration *it = ee__integrations_by_credential(rs->cat, cred_type);
    if (it != NULL && it->is_llm && rs->choice != NULL && rs->choice->use_customer_key)
        return route_customer_key(rs, node, cred_type, it);
    bool platform = it != NULL && !it->is_personal;
    char id[EE__CRED_ID_MAX] = "";
    ee_status st = rs->lookup->find(rs->lookup->ctx, platform ? PLATFORM_WORKSPACE : rs->workspace,
                                    cred_type, platform, id);
    if (st == EE_OK) {
        add_mapping(rs, node, id, cred_type,
                    platform ? EE__CRED_SOURCE_PLATFORM : EE__CRED_SOURCE_PERSONAL,
                    platform ? it->base_url_override : NULL);
        return EE_OK;
    }
    if (st != EE_ENOTFOUND)
        return st;
    add_gap(rs, it, cred_type, EE__CRED_GAP_CREDENTIAL,
            platform ? EE__CRED_GAP_PLATFORM_MISSING : EE__CRED_GAP_NOT_STORED);
    return EE_OK;
}

static void add_unknown(route_state *rs, const char *type)
{
    for (size_t i = 0; i < rs->res->n_unknown; i++)
        if (strcmp(rs->res->unknown[i], type) == 0)
            return;
    rs->res->unknown[rs->res->n_unknown++] = type;
}

/* The credential types a node needs: those its n8n definition names, else
 * the first credential type of the service its type belongs to, else none
 * for a node type listed as needing none. Any other node type is unknown:
 * reported, never assumed to need nothing. */
static ee_status route_node(route_state *rs, const ee__cred_node *node)
{
    if (node->n_credential_types > 0) {
        for (size_t i = 0; i < node->n_credential_types; i++) {
            ee_status st = route_credential(rs, node->name, node->credential_types[i]);
            if (st != EE_OK)
                return st;
        }
        return EE_OK;
    }
    const ee__integration *it = NULL;
    switch (ee__integrations_map_node(rs->cat, node->type, &it)) {
    case EE__NODE_SERVICE:
        return route_credential(rs, node->name,
                                json_string_value(json_array_get(it->credentials, 0)));
    case EE__NODE_NO_CREDENTIAL:
        return EE_OK;
    default:
        add_unknown(rs, node->type);
        return EE_OK;
    }
}

static ee_status check_choice(const ee__cred_choice *choice)
{
    if (choice == NULL || !choice->use_customer_key)
        return EE_OK;
    const char *id = choice->api_key_id;
    if (id == NULL || id[0] == '\0' || strlen(id) >= EE__CRED_ID_MAX)
        return ee__error(EE_EINVAL, "useCustomApiKey is true but apiKeyId is missing or too long");
    return EE_OK;
}

/* A chosen customer key must be one of the workspace's own, active keys,
 * also when no node of the workflow takes it: another workspace's key id
 * is a gap (as unknown), never recorded on the run. Nothing to do when a
 * node already routed it or found it missing. */
static ee_status check_key_owner(route_state *rs)
{
    if (rs->choice == NULL || !rs->choice->use_customer_key)
        return EE_OK;
    for (size_t i = 0; i < rs->res->n_mappings; i++)
        if (rs->res->mappings[i].source == EE__CRED_SOURCE_CUSTOMER)
            return EE_OK;
    for (size_t i = 0; i < rs->res->n_gaps; i++)
        if (rs->res->gaps[i].kind == EE__CRED_GAP_API_KEY)
            return EE_OK;
    ee_status st = rs->lookup->customer_key(rs->lookup->ctx, rs->workspace,
                                            rs->choice->api_key_id);
    if (st == EE_ENOTFOUND || st == EE_ESTATE) {
        add_gap(rs, NULL, "customerApiKey", EE__CRED_GAP_API_KEY,
                st == EE_ESTATE ? EE__CRED_GAP_KEY_INACTIVE : EE__CRED_GAP_KEY_NOT_FOUND);
        return EE_OK;
    }
    return st;
}

size_t ee__route_capacity(const ee__cred_node *nodes, size_t n)
{
    size_t cap = 1; /* the chosen customer key's own gap (check_key_owner) */
    for (size_t i = 0; i < n; i++)
        cap += nodes[i].n_credential_types > 0 ? nodes[i].n_credential_types : 1;
    return cap;
}

ee_status ee__route_typed(const ee__integrations *cat, const ee__cred_lookup *lookup,
                          const char *workspace, const ee__cred_node *nodes, size_t n,
                          const ee__cred_choice *choice, ee__route_result *res)
{
    res->n_mappings = res->n_gaps = res->n_unknown = 0;
    if (workspace == NULL || workspace[0] == '\0')
        return ee__error(EE_EINVAL, "routing needs a workspace id");
    if (n > EE__ROUTE_MAX_NODES)
        return ee__error(EE_ETOOBIG, "workflow has %zu nodes, the limit is %d", n,
                         EE__ROUTE_MAX_NODES);
    for (size_t i = 0; i < n; i++) {
        if (nodes[i].name == NULL || nodes[i].type == NULL)
            return ee__error(EE_EINVAL, "workflow node %zu needs a \"name\" and a \"type\"", i);
        for (size_t k = 0; k < nodes[i].n_credential_types; k++)
            if (nodes[i].credential_types == NULL || nodes[i].credential_types[k] == NULL)
                return ee__error(EE_EINVAL, "workflow node %zu: credential type %zu is NULL", i,
                                 k);
    }
    ee_status st = check_choice(choice);
    route_state rs = {cat, lookup, workspace, choice, res};
    for (size_t i = 0; st == EE_OK && i < n; i++)
        st = route_node(&rs, &nodes[i]);
    if (st == EE_OK)
        st = check_key_owner(&rs);
    return st;
}

/* ---- JSON at the door ------------------------------------------------------------ */

static ee_status read_choice(const json_t *choice, ee__cred_choice *out)
{
    *out = (ee__cred_choice){false, NULL};
    if (choice == NULL || json_is_null(choice))
        return EE_OK;
    static const char *const members[] = {"useCustomApiKey", "apiKeyId", NULL};
    if (!json_is_object(choice))
        return ee__error(EE_EINVAL, "run choice must be {\"useCustomApiKey\": bool, \"apiKeyId\": id}");
    ee_status st = ee__json_check_members(choice, members, "run choice", "");
    if (st != EE_OK)
        return st;
    /* Each member present is of its type, whatever the other says: an
     * apiKeyId of another type was read as absent and ignored unless
     * useCustomApiKey was true (ee_exec_submit() refuses it either way). */
    const json_t *use = json_object_get(choice, "useCustomApiKey");
    if (use != NULL && !json_is_boolean(use))
        return ee__error(EE_EINVAL, "useCustomApiKey must be true or false");
    const json_t *key_id = json_object_get(choice, "apiKeyId");
    if (key_id != NULL && !json_is_string(key_id))
        return ee__error(EE_EINVAL, "apiKeyId must be a string");
    out->use_customer_key = json_is_true(use);
    out->api_key_id = json_string_value(key_id);
    return check_choice(out);
}

void ee__route_nodes_json_clear(ee__route_nodes_json *nodes)
{
    free(nodes->nodes);
    free(nodes->types);
    *nodes = (ee__route_nodes_json){NULL, 0, NULL};
}

ee_status ee__route_read_json(const json_t *workflow, const json_t *choice,
                              ee__route_nodes_json *nodes_out, ee__cred_choice *choice_out)
{
    *nodes_out = (ee__route_nodes_json){NULL, 0, NULL};
    const json_t *nodes = json_object_get(workflow, "nodes");
    const json_t *names = json_object_get(workflow, "nodeNames");
    const json_t *list = nodes ? nodes : names;
    if (!json_is_array(list))
        return ee__error(EE_EINVAL, "workflow must have a \"nodes\" or \"nodeNames\" array");
    size_t n = json_array_size(list);
    if (n > EE__ROUTE_MAX_NODES)
        return ee__error(EE_ETOOBIG, "workflow has %zu nodes, the limit is %d", n,
                         EE__ROUTE_MAX_NODES);
    ee_status st = read_choice(choice, choice_out);
    if (st != EE_OK)
        return st;
    size_t n_types = 0;
    for (size_t i = 0; nodes != NULL && i < n; i++) {
        const json_t *creds = json_object_get(json_array_get(list, i), "credentials");
        if (json_is_object(creds))
            n_types += json_object_size(creds);
    }
    ee__route_nodes_json r = {calloc(n ? n : 1, sizeof *r.nodes), n,
                              calloc(n_types ? n_types : 1, sizeof *r.types)};
    if (r.nodes == NULL || r.types == NULL) {
        ee__route_nodes_json_clear(&r);
        return ee__error(EE_ENOMEM, "out of memory routing credentials");
    }
    size_t t = 0;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(list, i);
        ee__cred_node *node = &r.nodes[i];
        if (nodes == NULL) {
            node->name = node->type = json_string_value(v);
            if (node->name == NULL)
                st = ee__error(EE_EINVAL, "nodeNames[%zu] must be a string", i);
        } else {
            node->name = json_string_value(json_object_get(v, "name"));
            node->type = json_string_value(json_object_get(v, "type"));
            if (!json_is_object(v) || node->name == NULL || node->type == NULL)
                st = ee__error(EE_EINVAL, "workflow node %zu needs a \"name\" and a \"type\"", i);
            const json_t *creds = json_object_get(v, "credentials");
            if (st == EE_OK && json_is_object(creds) && json_object_size(creds) > 0) {
                node->credential_types = &r.types[t];
                const char *key;
                const json_t *x;
                json_object_foreach((json_t *)creds, key, x) {
                    r.types[t++] = key;
                    node->n_credential_types++;
                }
            }
        }
        if (st != EE_OK) {
            ee__route_nodes_json_clear(&r);
            return st;
        }
    }
    *nodes_out = r;
    return EE_OK;
}

static json_t *render_mapping(const ee__cred_mapping *m)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "nodeName", m->node_name, "credentialId",
                          m->credential_id, "credentialName", m->credential_name, "source",
                          ee__cred_source_name(m->source));
    if (o != NULL && m->base_url_override != NULL
        && json_object_set_new(o, "baseUrlOverride", json_string(m->base_url_override)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

static json_t *render_gap(const ee__cred_gap *g)
{
    const char *kind = g->kind == EE__CRED_GAP_API_KEY ? "apiKey" : "credential";
    char field[256], label[320];
    snprintf(field, sizeof field, "%s:%s", kind, g->credential_name);
    snprintf(label, sizeof label, "%s - %s", g->service ? g->service : g->credential_name,
             g->credential_name);
    /* a long credential type is cut: at a character, so the gap stays JSON */
    ee__utf8_trim(field);
    ee__utf8_trim(label);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b}", "field", field, "label", label, "type",
                          kind, "credentialName", g->credential_name, "isPersonal",
                          g->is_personal);
    const char *reason = ee__cred_gap_reason_text(g->reason);
    if (o != NULL && reason != NULL && json_object_set_new(o, "reason", json_string(reason)) != 0) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

json_t *ee__route_render(const ee__route_result *res)
{
    json_t *maps = json_array(), *gaps = json_array(), *unknown = json_array();
    bool ok = maps && gaps && unknown;
    for (size_t i = 0; ok && i < res->n_mappings; i++)
        ok = json_array_append_new(maps, render_mapping(&res->mappings[i])) == 0;
    for (size_t i = 0; ok && i < res->n_gaps; i++)
        ok = json_array_append_new(gaps, render_gap(&res->gaps[i])) == 0;
    for (size_t i = 0; ok && i < res->n_unknown; i++)
        ok = json_array_append_new(unknown, json_string(res->unknown[i])) == 0;
    if (!ok) {
        json_decref(maps);
        json_decref(gaps);
        json_decref(unknown);
        return NULL;
    }
    return json_pack("{s:o, s:o, s:o}", "credentialMappings", maps, "gaps", gaps, "unknownNodes",
                     unknown);
}

ee_status ee__route(const ee__integrations *cat, const ee__cred_lookup *lookup,
                    const char *workspace, const json_t *workflow, const json_t *choice,
                    json_t **out)
{
    *out = NULL;
    if (workspace == NULL || workspace[0] == '\0')
        return ee__error(EE_EINVAL, "routing needs a workspace id");
    ee__route_nodes_json nodes;
    ee__cred_choice ch;
    ee_status st = ee__route_read_json(workflow, choice, &nodes, &ch);
    if (st != EE_OK)
        return st;
    size_t cap = ee__route_capacity(nodes.nodes, nodes.n);
    ee__route_result res = {calloc(cap ? cap : 1, sizeof *res.mappings), 0,
                            calloc(cap ? cap : 1, sizeof *res.gaps), 0,
                            calloc(nodes.n ? nodes.n : 1, sizeof *res.unknown), 0};
    if (res.mappings == NULL || res.gaps == NULL || res.unknown == NULL)
        st = ee__error(EE_ENOMEM, "out of memory routing credentials");
    if (st == EE_OK)
        st = ee__route_typed(cat, lookup, workspace, nodes.nodes, nodes.n, &ch, &res);
    if (st == EE_OK && (*out = ee__route_render(&res)) == NULL)
        st = ee__error(EE_ENOMEM, "out of memory routing credentials");
    free(res.mappings);
    free(res.gaps);
    free(res.unknown);
    ee__route_nodes_json_clear(&nodes);
    return st;
}
