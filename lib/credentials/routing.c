/* Credential routing (routing.h). */
#include "credentials/routing.h"

#include <stdio.h>
#include <string.h>

#include "core/core.h"

#define PLATFORM_WORKSPACE "platform"

typedef struct {
    const ee__integrations *cat;
    const ee__cred_lookup *lookup;
    const char *workspace;
    bool use_customer_key;
    const char *api_key_id;
    json_t *mappings;
    json_t *gaps;
    json_t *gap_seen; /* credentialName -> true */
    json_t *unknown;  /* node types the integration catalog does not know, once each */
} route_state;

static ee_status add_mapping(route_state *rs, const char *node, const char *cred_id,
                             const char *cred_type, const char *source, const char *base_url)
{
    json_t *m = json_pack("{s:s, s:s, s:s, s:s}", "nodeName", node, "credentialId", cred_id,
                          "credentialName", cred_type, "source", source);
    /* The key is another vendor's compatible API: the credential must point
     * at this base URL or the key does not work. */
    if (m != NULL && base_url != NULL &&
        json_object_set_new(m, "baseUrlOverride", json_string(base_url)) != 0) {
        json_decref(m);
        m = NULL;
    }
    if (m == NULL || json_array_append_new(rs->mappings, m) != 0)
        return ee__error(EE_ENOMEM, "out of memory routing credentials");
    return EE_OK;
}

static ee_status add_gap(route_state *rs, const ee__integration *it, const char *cred_type,
                         const char *field_kind, const char *reason)
{
    if (json_object_get(rs->gap_seen, cred_type) != NULL)
        return EE_OK;
    char field[256], label[320];
    snprintf(field, sizeof field, "%s:%s", field_kind, cred_type);
    snprintf(label, sizeof label, "%s - %s", it ? it->service : cred_type, cred_type);
    /* a long credential type is cut: at a character, so the gap stays JSON */
    ee__utf8_trim(field);
    ee__utf8_trim(label);
    bool personal = it == NULL || it->is_personal || strcmp(field_kind, "apiKey") == 0;
    json_t *g = json_pack("{s:s, s:s, s:s, s:s, s:b}", "field", field, "label", label, "type",
                          field_kind, "credentialName", cred_type, "isPersonal", personal);
    if (g != NULL && reason != NULL)
        json_object_set_new(g, "reason", json_string(reason));
    if (g == NULL || json_array_append_new(rs->gaps, g) != 0 ||
        json_object_set_new(rs->gap_seen, cred_type, json_true()) != 0)
        return ee__error(EE_ENOMEM, "out of memory routing credentials");
    return EE_OK;
}

/* The customer's OpenRouter key replaces the platform's LLM credential. */
static ee_status route_customer_key(route_state *rs, const char *node, const char *cred_type,
                                    const ee__integration *it)
{
    ee_status st = rs->lookup->customer_key(rs->lookup->ctx, rs->workspace, rs->api_key_id);
    if (st == EE_OK)
        return add_mapping(rs, node, rs->api_key_id, cred_type, "customer", NULL);
    if (st == EE_ENOTFOUND || st == EE_ESTATE)
        return add_gap(rs, it, cred_type, "apiKey",
                       st == EE_ESTATE ? "customer API key is inactive"
                                       : "customer API key not found in this workspace");
    return st;
}

static ee_status route_credential(route_state *rs, const char *node, const char *cred_type)
{
    const ee__integration *it = ee__integrations_by_credential(rs->cat, cred_type);
    if (it != NULL && it->is_llm && rs->use_customer_key)
        return route_customer_key(rs, node, cred_type, it);
    bool platform = it != NULL && !it->is_personal;
    char id[EE__CRED_ID_MAX] = "";
    ee_status st = rs->lookup->find(rs->lookup->ctx, platform ? PLATFORM_WORKSPACE : rs->workspace,
                                    cred_type, platform, id);
    if (st == EE_OK)
        return add_mapping(rs, node, id, cred_type, platform ? "platform" : "personal",
                           platform ? it->base_url_override : NULL);
    if (st != EE_ENOTFOUND)
        return st;
    return add_gap(rs, it, cred_type, "credential",
                   platform ? "platform credential not provisioned" : NULL);
}

static ee_status add_unknown(route_state *rs, const char *type)
{
    size_t i;
    const json_t *v;
    json_array_foreach(rs->unknown, i, v) {
        if (strcmp(json_string_value(v), type) == 0)
            return EE_OK;
    }
    if (json_array_append_new(rs->unknown, json_string(type)) != 0)
        return ee__error(EE_ENOMEM, "out of memory routing credentials");
    return EE_OK;
}

/* The credential types a node needs: those its n8n definition names, else
 * the first credential type of the service its type belongs to, else none
 * for a node type listed as needing none. Any other node type is unknown:
 * reported, never assumed to need nothing. */
static ee_status route_node(route_state *rs, const char *name, const char *type,
                            const json_t *creds)
{
    if (json_is_object(creds) && json_object_size(creds) > 0) {
        const char *cred_type;
        const json_t *v;
        json_object_foreach((json_t *)creds, cred_type, v) {
            ee_status st = route_credential(rs, name, cred_type);
            if (st != EE_OK)
                return st;
        }
        return EE_OK;
    }
    const ee__integration *it = NULL;
    switch (ee__integrations_map_node(rs->cat, type, &it)) {
    case EE__NODE_SERVICE:
        return route_credential(rs, name, json_string_value(json_array_get(it->credentials, 0)));
    case EE__NODE_NO_CREDENTIAL:
        return EE_OK;
    default:
        return add_unknown(rs, type);
    }
}

static ee_status route_nodes(route_state *rs, const json_t *nodes)
{
    size_t i;
    const json_t *node;
    json_array_foreach(nodes, i, node) {
        const char *name = json_string_value(json_object_get(node, "name"));
        const char *type = json_string_value(json_object_get(node, "type"));
        if (!json_is_object(node) || name == NULL || type == NULL)
            return ee__error(EE_EINVAL, "workflow node %zu needs a \"name\" and a \"type\"", i);
        ee_status st = route_node(rs, name, type, json_object_get(node, "credentials"));
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

static ee_status route_names(route_state *rs, const json_t *names)
{
    size_t i;
    const json_t *v;
    json_array_foreach(names, i, v) {
        const char *name = json_string_value(v);
        if (name == NULL)
            return ee__error(EE_EINVAL, "nodeNames[%zu] must be a string", i);
        ee_status st = route_node(rs, name, name, NULL);
        if (st != EE_OK)
            return st;
    }
    return EE_OK;
}

static ee_status read_choice(route_state *rs, const json_t *choice)
{
    if (choice == NULL || json_is_null(choice))
        return EE_OK;
    static const char *const members[] = {"useCustomApiKey", "apiKeyId", NULL};
    if (json_is_object(choice)) {
        ee_status st = ee__json_check_members(choice, members, "run choice", "");
        if (st != EE_OK)
            return st;
    }
    const json_t *use = json_object_get(choice, "useCustomApiKey");
    if (!json_is_object(choice) || (use != NULL && !json_is_boolean(use)))
        return ee__error(EE_EINVAL, "run choice must be {\"useCustomApiKey\": bool, \"apiKeyId\": id}");
    rs->use_customer_key = json_is_true(use);
    rs->api_key_id = json_string_value(json_object_get(choice, "apiKeyId"));
    if (rs->use_customer_key && (rs->api_key_id == NULL || rs->api_key_id[0] == '\0' ||
                                 strlen(rs->api_key_id) >= EE__CRED_ID_MAX))
        return ee__error(EE_EINVAL, "useCustomApiKey is true but apiKeyId is missing or too long");
    return EE_OK;
}

ee_status ee__route(const ee__integrations *cat, const ee__cred_lookup *lookup,
                    const char *workspace, const json_t *workflow, const json_t *choice,
                    json_t **out)
{
    *out = NULL;
    if (workspace == NULL || workspace[0] == '\0')
        return ee__error(EE_EINVAL, "routing needs a workspace id");
    const json_t *nodes = json_object_get(workflow, "nodes");
    const json_t *names = json_object_get(workflow, "nodeNames");
    const json_t *list = nodes ? nodes : names;
    if (!json_is_array(list))
        return ee__error(EE_EINVAL, "workflow must have a \"nodes\" or \"nodeNames\" array");
    if (json_array_size(list) > EE__ROUTE_MAX_NODES)
        return ee__error(EE_ETOOBIG, "workflow has %zu nodes, the limit is %d",
                         json_array_size(list), EE__ROUTE_MAX_NODES);
    route_state rs = {cat,          lookup,       workspace,     false,       NULL,
                      json_array(), json_array(), json_object(), json_array()};
    ee_status st = rs.mappings && rs.gaps && rs.gap_seen && rs.unknown
                       ? read_choice(&rs, choice)
                       : ee__error(EE_ENOMEM, "out of memory");
    if (st == EE_OK)
        st = nodes ? route_nodes(&rs, nodes) : route_names(&rs, names);
    json_decref(rs.gap_seen);
    if (st != EE_OK) {
        json_decref(rs.mappings);
        json_decref(rs.gaps);
        json_decref(rs.unknown);
        return st;
    }
    *out = json_pack("{s:o, s:o, s:o}", "credentialMappings", rs.mappings, "gaps", rs.gaps,
                     "unknownNodes", rs.unknown);
    return *out ? EE_OK : ee__error(EE_ENOMEM, "out of memory routing credentials");
}
