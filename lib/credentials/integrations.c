/* The integration catalog: parsed once, indexed by node and credential type. */
#include "credentials/credentials.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

struct ee__integrations {
    json_t *doc;         /* the parsed file: owns every string below */
    json_t *by_node;     /* node type -> index */
    json_t *by_cred;     /* credential type -> index */
    json_t *no_cred;     /* node type or its short name -> true (needs no credential) */
    size_t n;
    ee__integration items[];
};

static ee_status shape_error(size_t i, const char *field, const char *what)
{
    return ee__error(EE_EINVAL, "integration catalog: services[%zu].%s %s", i, field, what);
}

static ee_status string_array(const json_t *svc, size_t i, const char *field, bool required,
                              const json_t **out)
{
    const json_t *arr = json_object_get(svc, field);
    *out = arr;
    if (arr == NULL)
        return required ? shape_error(i, field, "is missing") : EE_OK;
    if (!json_is_array(arr))
        return shape_error(i, field, "must be an array of strings");
    size_t k;
    const json_t *v;
    json_array_foreach(arr, k, v) {
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 200)
            return shape_error(i, field, "must hold non-empty strings of at most 200 bytes");
    }
    return EE_OK;
}

/* Record every name of `arr` in `index` -> i, refusing a name claimed twice. */
static ee_status index_names(json_t *index, const json_t *arr, size_t i, const char *what)
{
    size_t k;
    const json_t *v;
    json_array_foreach(arr, k, v) {
        const char *name = json_string_value(v);
        if (json_object_get(index, name) != NULL)
            return ee__error(EE_EINVAL, "integration catalog: %s \"%s\" listed by two services",
                             what, name);
        if (json_object_set_new(index, name, json_integer((json_int_t)i)) != 0)
            return ee__error(EE_ENOMEM, "out of memory indexing the integration catalog");
    }
    return EE_OK;
}

static ee_status parse_service(ee__integrations *cat, size_t i, const json_t *svc)
{
    ee__integration *it = &cat->items[i];
    if (!json_is_object(svc))
        return shape_error(i, "", "must be an object");
    it->service = json_string_value(json_object_get(svc, "service"));
    it->category = json_string_value(json_object_get(svc, "category"));
    const json_t *personal = json_object_get(svc, "isPersonal");
    if (it->service == NULL || it->service[0] == '\0')
        return shape_error(i, "service", "must be a non-empty string");
    if (!json_is_boolean(personal))
        return shape_error(i, "isPersonal", "must be true or false");
    it->is_personal = json_is_true(personal);
    it->is_llm = json_is_true(json_object_get(svc, "llm"));
    if (it->category == NULL)
        it->category = "other";
    ee_status st = string_array(svc, i, "nodes", true, &it->nodes);
    if (st == EE_OK)
        st = string_array(svc, i, "credentials", true, &it->credentials);
    if (st == EE_OK)
        st = string_array(svc, i, "platformEnv", !it->is_personal, &it->platform_env);
    const json_t *base = json_object_get(svc, "baseUrlOverride");
    it->base_url_override = json_string_value(base);
    if (st == EE_OK && base != NULL &&
        (it->base_url_override == NULL || strncmp(it->base_url_override, "https://", 8) != 0))
        st = shape_error(i, "baseUrlOverride", "must be an https:// URL");
    if (st == EE_OK && json_array_size(it->credentials) == 0)
        st = shape_error(i, "credentials", "must name at least one credential type");
    if (st == EE_OK)
        st = index_names(cat->by_node, it->nodes, i, "node type");
    if (st == EE_OK)
        st = index_names(cat->by_cred, it->credentials, i, "credential type");
    return st;
}

/* The part of a node type after its last '.', or NULL when it has none. */
static const char *short_name(const char *type)
{
    const char *dot = strrchr(type, '.');
    return dot != NULL && dot[1] != '\0' ? dot + 1 : NULL;
}

/* "noCredentialNodes": node types that run without any credential, indexed
 * by full type and short name. A name a service also claims is refused:
 * the two lists must never disagree. */
static ee_status parse_no_credential(ee__integrations *cat, const json_t *doc)
{
    const json_t *arr = json_object_get(doc, "noCredentialNodes");
    if (arr == NULL)
        return EE_OK;
    if (!json_is_array(arr))
        return ee__error(EE_EINVAL, "integration catalog: \"noCredentialNodes\" must be an array "
                                    "of node types");
    size_t k;
    const json_t *v;
    json_array_foreach(arr, k, v) {
        const char *type = json_string_value(v);
        if (type == NULL || type[0] == '\0' || json_string_length(v) > 200)
            return ee__error(EE_EINVAL, "integration catalog: noCredentialNodes[%zu] must be a "
                                        "non-empty string of at most 200 bytes", k);
        const char *names[2] = {type, short_name(type)};
        for (int n = 0; n < 2 && names[n] != NULL; n++) {
            if (json_object_get(cat->by_node, names[n]) != NULL)
                return ee__error(EE_EINVAL, "integration catalog: node type \"%s\" is both a "
                                            "service's and in noCredentialNodes", names[n]);
            if (json_object_set_new(cat->no_cred, names[n], json_true()) != 0)
                return ee__error(EE_ENOMEM, "out of memory indexing the integration catalog");
        }
    }
    return EE_OK;
}

ee_status ee__integrations_parse(ee__integrations **out, const char *text, size_t len)
{
    *out = NULL;
    if (len > EE__INTEGRATIONS_MAX_BYTES)
        return ee__error(EE_ETOOBIG, "integration catalog of %zu bytes exceeds %d", len,
                         EE__INTEGRATIONS_MAX_BYTES);
    json_error_t jerr;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return ee__error(EE_EPARSE, "integration catalog is not JSON: %s at line %d", jerr.text,
                         jerr.line);
    const json_t *services = json_object_get(doc, "services");
    if (!json_is_array(services)) {
        json_decref(doc);
        return ee__error(EE_EINVAL, "integration catalog: \"services\" must be an array");
    }
    size_t n = json_array_size(services);
    ee__integrations *cat = calloc(1, sizeof *cat + n * sizeof(ee__integration));
    if (cat == NULL) {
        json_decref(doc);
        return ee__error(EE_ENOMEM, "out of memory loading the integration catalog");
    }
    cat->doc = doc;
    cat->n = n;
    cat->by_node = json_object();
    cat->by_cred = json_object();
    cat->no_cred = json_object();
    ee_status st = cat->by_node && cat->by_cred && cat->no_cred
                       ? EE_OK
                       : ee__error(EE_ENOMEM, "out of memory");
    for (size_t i = 0; st == EE_OK && i < n; i++)
        st = parse_service(cat, i, json_array_get(services, i));
    if (st == EE_OK)
        st = parse_no_credential(cat, doc);
    if (st != EE_OK) {
        ee__integrations_free(cat);
        return st;
    }
    *out = cat;
    return EE_OK;
}

ee_status ee__integrations_load_file(ee__integrations **out, const char *path)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    ee_status st = ee__read_file(path, EE__INTEGRATIONS_MAX_BYTES, &buf, &len);
    if (st == EE_ENOTFOUND)
        st = ee__error(EE_EIO, "cannot open integration catalog %s", path);
    if (st == EE_OK)
        st = ee__integrations_parse(out, buf, len);
    free(buf);
    return st;
}

void ee__integrations_free(ee__integrations *cat)
{
    if (cat == NULL)
        return;
    json_decref(cat->by_node);
    json_decref(cat->by_cred);
    json_decref(cat->no_cred);
    json_decref(cat->doc);
    free(cat);
}

size_t ee__integrations_count(const ee__integrations *cat)
{
    return cat->n;
}

const ee__integration *ee__integrations_at(const ee__integrations *cat, size_t i)
{
    return i < cat->n ? &cat->items[i] : NULL;
}

static const ee__integration *lookup(const ee__integrations *cat, const json_t *index,
                                     const char *name)
{
    if (name == NULL)
        return NULL;
    const json_t *i = json_object_get(index, name);
    return i ? &cat->items[json_integer_value(i)] : NULL;
}

static bool map_exact(const ee__integrations *cat, const char *name, ee__node_kind *kind,
                      const ee__integration **service_out)
{
    *service_out = lookup(cat, cat->by_node, name);
    if (*service_out != NULL)
        *kind = EE__NODE_SERVICE;
    else if (json_object_get(cat->no_cred, name) != NULL)
        *kind = EE__NODE_NO_CREDENTIAL;
    else
        return false;
    return true;
}

ee__node_kind ee__integrations_map_node(const ee__integrations *cat, const char *node_type,
                                        const ee__integration **service_out)
{
    ee__node_kind kind = EE__NODE_UNKNOWN;
    *service_out = NULL;
    if (cat == NULL || node_type == NULL)
        return kind;
    const char *short_type = short_name(node_type);
    if (!map_exact(cat, node_type, &kind, service_out) && short_type != NULL)
        map_exact(cat, short_type, &kind, service_out);
    return kind;
}

const ee__integration *ee__integrations_by_credential(const ee__integrations *cat,
                                                      const char *cred_type)
{
    return lookup(cat, cat->by_cred, cred_type);
}
